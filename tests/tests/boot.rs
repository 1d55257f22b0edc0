//! Build the minimal image and boot it in QEMU (UEFI, TCG): the console must show the banner,
//! the booted slot and a login prompt. `inspect` must describe the same disk.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::process::Command;

use tests::{image_builder, pool_dir, text, Scratch};

/// Copy one partition of the disk to a file, by its label in build.json's layout.
fn extract_partition(disk: &Path, report: &serde_json::Value, label: &str, to: &Path) {
    let part = report["layout"]["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["label"] == label)
        .unwrap();
    let (offset, size) = (
        part["offset"].as_u64().unwrap(),
        part["size"].as_u64().unwrap(),
    );
    let mut f = std::fs::File::open(disk).unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    let mut buf = vec![0u8; size as usize];
    f.read_exact(&mut buf).unwrap();
    std::fs::write(to, buf).unwrap();
}

fn check(cmd: &mut Command, want: &str) {
    let o = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let t = text(&o);
    assert!(o.status.success(), "{cmd:?} failed:\n{t}");
    assert!(t.contains(want), "{cmd:?} does not say {want:?}:\n{t}");
}

#[test]
fn minimal_image_boots_to_banner_and_login() {
    let s = Scratch::new("minimal");
    let o = s.build("minimal", "out", &pool_dir());
    assert!(o.status.success(), "build failed:\n{}", text(&o));
    let disk = s.path().join("out/disk.raw");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(s.path().join("out/build.json")).unwrap())
            .unwrap();

    // Every filesystem passes its own checker, and the GPT passes sgdisk.
    check(
        Command::new("sgdisk").arg("-v").arg(&disk),
        "No problems found",
    );
    let esp = s.path().join("esp.img");
    extract_partition(&disk, &report, "EFI-SYSTEM", &esp);
    check(Command::new("fsck.fat").arg("-n").arg(&esp), " files, ");
    let fsck = text(
        &Command::new("fsck.fat")
            .arg("-n")
            .arg(&esp)
            .output()
            .unwrap(),
    );
    assert_eq!(fsck.lines().count(), 2, "fsck.fat has complaints:\n{fsck}");
    check(
        Command::new("mdir")
            .env("MTOOLS_SKIP_CHECK", "1")
            .args(["-/", "-b", "-i"])
            .arg(&esp)
            .arg("::"),
        "BOOTX64.EFI",
    );
    for label in ["ROOT", "OEM"] {
        let img = s.path().join(format!("{label}.img"));
        extract_partition(&disk, &report, label, &img);
        check(Command::new("e2fsck").arg("-fn").arg(&img), label);
    }
    let usr = s.path().join("usr.img");
    extract_partition(&disk, &report, "USR-A", &usr);
    check(
        Command::new("unsquashfs").arg("-s").arg(&usr),
        "Compression zstd",
    );
    check(
        Command::new("unsquashfs").arg("-l").arg(&usr),
        "squashfs-root/lib/os-release",
    );

    let insp = image_builder(s.path(), &["inspect", disk.to_str().unwrap()]);
    let t = text(&insp);
    assert!(insp.status.success(), "{t}");
    assert!(t.contains("USR-A  squashfs version 1.0.0"), "{t}");
    assert!(t.contains("USR-B  empty"), "{t}");
    assert!(
        t.contains("minimal-usr-a+3-0.conf  version 1.0.0  slot USR-A  tries left 3, done 0"),
        "{t}"
    );

    // The loader renames the entry (boot counting) and so writes the disk: boot a snapshot.
    let run = image_builder(
        s.path(),
        &[
            "run",
            disk.to_str().unwrap(),
            "--snapshot",
            "--timeout",
            "240",
            "--expect",
            "login:",
        ],
    );
    let console = text(&run);
    assert!(run.status.success(), "no login prompt:\n{console}");
    let banner = console
        .find("Minimal Linux alpha (1.0.0)")
        .unwrap_or_else(|| panic!("no banner:\n{console}"));
    let slot = console
        .find("booted slot=USR-A version=1.0.0")
        .unwrap_or_else(|| panic!("no slot line:\n{console}"));
    let login = console.rfind("login:").unwrap();
    assert!(
        banner < login && slot < login,
        "banner and slot must come before the login prompt:\n{console}"
    );
}
