//! The installer's argument parsing, image description, cloud-config check, target choice and
//! progress lines. The pipeline's tests are in `pipeline`, the disks' in `disks`, the whole
//! install over HTTP in `tests/install_http_tests.rs`.

use std::collections::BTreeMap;
use std::ffi::OsString;

use channels::release::{DiskInfo, FileInfo};
use channels::PayloadRef;

use super::*;
use crate::cli::{parse, Command};

fn args(a: &[&str]) -> Vec<OsString> {
    a.iter().map(OsString::from).collect()
}

fn install_args(argv: &[&str]) -> InstallArgs {
    match parse(args(argv))
        .unwrap_or_else(|e| panic!("{argv:?}: {e}"))
        .command
    {
        Command::Install(a) => a,
        other => panic!("{argv:?}: {other:?}"),
    }
}

#[test]
fn coreos_install_flags() {
    let want = InstallArgs {
        device: Some("/dev/sda".into()),
        channel: Some("stable".into()),
        version: "current".into(),
        base_url: None,
        cloud_config: Some("cloud-config.yml".into()),
        oem: None,
        image_file: None,
        network: false,
        smallest: false,
        force: false,
    };
    for argv0 in [
        "coreos-install",
        "/usr/bin/coreos-install",
        "minimal-install",
    ] {
        let a = install_args(&[
            argv0,
            "-d",
            "/dev/sda",
            "-C",
            "stable",
            "-c",
            "cloud-config.yml",
        ]);
        assert_eq!(a, want, "{argv0}");
    }
    let a = install_args(&[
        "update-engine",
        "install",
        "-d/dev/sda",
        "-Cstable",
        "-c",
        "cloud-config.yml",
    ]);
    assert_eq!(a, want);
    let a = install_args(&[
        "coreos-install",
        "-s",
        "-n",
        "-V",
        "1.2.3",
        "-b",
        "http://repo/x",
        "-o",
        "qemu",
        "-f",
        "/tmp/disk.img.zst",
        "--force",
    ]);
    assert_eq!(
        a,
        InstallArgs {
            device: None,
            channel: None,
            version: "1.2.3".into(),
            base_url: Some("http://repo/x".into()),
            cloud_config: None,
            oem: Some("qemu".into()),
            image_file: Some("/tmp/disk.img.zst".into()),
            network: true,
            smallest: true,
            force: true,
        }
    );
    // Combined short flags, as getopts took them.
    let a = install_args(&["coreos-install", "-ns", "-Cbeta"]);
    assert!(a.network && a.smallest && a.channel.as_deref() == Some("beta"));
    for bad in [
        &["coreos-install", "-x"][..],
        &["coreos-install", "-d"],
        &["coreos-install", "status"],
        &["update-engine", "install", "--frobnicate"],
    ] {
        assert!(parse(args(bad)).is_err(), "{bad:?}");
    }
    let e = parse(args(&["coreos-install", "-h"])).unwrap_err();
    assert_eq!(e.kind(), clap::error::ErrorKind::DisplayHelp);
    assert!(e.to_string().contains("-C <CHANNEL>"), "{e}");
    // Other names are not the installer.
    assert!(!is_installer(Path::new("/usr/bin/update-engine")));
    assert!(!is_installer(Path::new("installer")));
}

fn manifest(payloads: &[(&str, u64)]) -> Manifest {
    Manifest {
        channel: "alpha".into(),
        version: "1.0.1".into(),
        sequence: 1,
        release_time: 0,
        expires: 1,
        version_floor: None,
        payloads: payloads
            .iter()
            .map(|(n, size)| {
                (
                    n.to_string(),
                    PayloadRef {
                        sha256: "a".repeat(64),
                        size: *size,
                    },
                )
            })
            .collect(),
    }
}

fn info(disk: Option<(u64, u64)>) -> ReleaseInfo {
    let file = |size, c: &str| FileInfo {
        size,
        sha256: c.repeat(64),
    };
    ReleaseInfo {
        os_id: "minimal".into(),
        os_name: "Minimal Linux".into(),
        version: "1.0.1".into(),
        channel: "alpha".into(),
        kernel_release: "6.1".into(),
        usr_partition_size: 1,
        files: BTreeMap::new(),
        disk: disk.map(|(compressed, raw)| DiskInfo {
            file: DISK_IMG_ZST.into(),
            compressed: file(compressed, "a"),
            raw: file(raw, "b"),
        }),
    }
}

#[test]
fn the_disk_image_of_a_release() {
    let d = disk_image(
        &manifest(&[("disk.img.zst", 100), ("usr.img", 5)]),
        &info(Some((100, 1000))),
    )
    .unwrap();
    assert_eq!(
        d,
        DiskImage {
            compressed: PayloadRef {
                sha256: "a".repeat(64),
                size: 100
            },
            raw_size: 1000,
            raw_sha256: "b".repeat(64),
        }
    );
    let e = disk_image(&manifest(&[("usr.img", 5)]), &info(Some((100, 1)))).unwrap_err();
    assert!(
        e.to_string()
            .contains("the signed manifest lists no disk.img.zst"),
        "{e}"
    );
    let e = disk_image(&manifest(&[("disk.img.zst", 5)]), &info(None)).unwrap_err();
    assert!(e.to_string().contains("has no disk image"), "{e}");
    let e = disk_image(&manifest(&[("disk.img.zst", 5)]), &info(Some((6, 1)))).unwrap_err();
    assert!(e.to_string().contains("is not the manifest's"), "{e}");
}

#[test]
fn cloud_configs_are_validated() {
    let p = Path::new("cc.yml");
    check_cloud_config(p, b"#cloud-config\nhostname: a\n").unwrap();
    check_cloud_config(p, b"#!/bin/sh\necho hi\n").unwrap();
    let e = check_cloud_config(
        p,
        b"#cloud-config\ncoreos:\n  units:\n    - name: a.service\n      command: jump\n",
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.starts_with("refused: cc.yml is not a valid cloud-config: "),
        "{e}"
    );
    assert!(e.contains("line 5"), "{e}");
    let e = check_cloud_config(p, b"hostname: a\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("#cloud-config"), "{e}");
}

#[test]
fn targets() {
    let m = tempfile::tempdir().unwrap();
    let root = m.path();
    let w = |rel: &str, text: &str| {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    for (name, dev, sectors) in [("vda", "252:0", 8 << 21), ("vdb", "252:16", 4 << 21)] {
        w(&format!("sys/block/{name}/dev"), dev);
        w(&format!("sys/block/{name}/size"), &sectors.to_string());
        w(&format!("dev/{name}"), "");
    }
    w("sys/block/vda/vda9/partition", "9");
    w("sys/block/vda/vda9/dev", "252:9");
    w("dev/vda9", "");
    w("sys/class/block/vda9/partition", "9");
    w(
        "proc/self/mountinfo",
        "1 0 252:9 / / rw - ext4 /dev/vda9 rw\n",
    );
    w("images/disk.img", "");
    let a = |argv: &[&str]| install_args(&[&["coreos-install"], argv].concat());
    let gib = 1 << 30;
    let t = choose_target(root, &a(&["-s"]), gib).unwrap();
    assert!(matches!(&t, Target::Disk(d) if d.name == "vdb"), "{t:?}");
    assert_eq!(t.path(), Path::new("/dev/vdb"));
    let t = choose_target(root, &a(&["-d", "/dev/vdb"]), gib).unwrap();
    assert!(matches!(&t, Target::Disk(d) if d.name == "vdb"));
    let e = choose_target(root, &a(&["-d", "/dev/vda"]), gib).unwrap_err();
    assert!(
        e.to_string().contains("vda holds the running system"),
        "{e}"
    );
    let e = choose_target(root, &a(&["-d", "/dev/vdb"]), 5 * gib).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("refused: vdb has 4294967296 bytes"),
        "{e}"
    );
    let t = choose_target(root, &a(&["-d", "/images/disk.img"]), 5 * gib).unwrap();
    assert_eq!(t, Target::File(root.join("images/disk.img")));
    let e = choose_target(root, &a(&["-d", "/dev/vda9"]), gib).unwrap_err();
    assert!(e.to_string().contains("not a whole disk"), "{e}");
    let e = choose_target(root, &a(&["-d", "/srv/nothing"]), gib).unwrap_err();
    assert!(e.to_string().contains("not a disk"), "{e}");
    let e = choose_target(root, &a(&[]), gib).unwrap_err();
    assert!(e.to_string().contains("no target: give -d DEVICE"), "{e}");
    assert!(choose_target(root, &a(&["-s", "-d", "/dev/vdb"]), gib).is_err());
}

#[test]
fn progress_lines_every_five_percent() {
    let total = 1024 << 20;
    let mut last = None;
    let lines: Vec<String> = (1..=1024u64)
        .filter_map(|mib| progress_line(mib << 20, total, &mut last))
        .collect();
    assert_eq!(lines.len(), 21, "{lines:?}");
    assert_eq!(lines[0], "wrote 1 MiB of 1024 MiB");
    assert_eq!(lines[20], "wrote 1024 MiB of 1024 MiB");
}
