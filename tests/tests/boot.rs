//! Build the minimal image and boot it in QEMU (UEFI, TCG): the console must show the banner,
//! the booted slot and a login prompt; every filesystem passes its checker; `inspect` describes
//! the disk; `/init` failures are reported and end in a clean power-off; `run` gives up with the
//! console tail.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::process::{Command, Output};

use tests::{image_builder, repo_root, shared_build, text};

/// Copy one partition of the disk to a file, by its label in build.json's layout.
fn extract_partition(disk: &Path, report: &serde_json::Value, label: &str, to: &Path) {
    let part = tests::partition(report, label);
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

/// `image-builder run DISK --snapshot ARGS`: the loader renames the entry it boots (boot
/// counting) and so writes the disk; every boot here is of a throw-away snapshot.
fn run_snapshot(disk: &Path, args: &[&str]) -> Output {
    let mut all = vec!["run", disk.to_str().unwrap(), "--snapshot"];
    all.extend_from_slice(args);
    image_builder(&repo_root(), &all)
}

fn check(cmd: &mut Command, want: &str) {
    let o = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let t = text(&o);
    assert!(o.status.success(), "{cmd:?} failed:\n{t}");
    assert!(t.contains(want), "{cmd:?} does not say {want:?}:\n{t}");
}

#[test]
fn every_filesystem_passes_its_checker() {
    let out = shared_build("minimal");
    let disk = out.join("disk.raw");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("build.json")).unwrap()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    check(
        Command::new("sgdisk").arg("-v").arg(&disk),
        "No problems found",
    );
    let esp = tmp.path().join("esp.img");
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
        let img = tmp.path().join(format!("{label}.img"));
        extract_partition(&disk, &report, label, &img);
        check(Command::new("e2fsck").arg("-fn").arg(&img), label);
    }
    let usr = tmp.path().join("usr.img");
    extract_partition(&disk, &report, "USR-A", &usr);
    check(
        Command::new("unsquashfs").arg("-s").arg(&usr),
        "Compression zstd",
    );
    check(
        Command::new("unsquashfs").arg("-l").arg(&usr),
        "squashfs-root/lib/os-release",
    );
    // The slot holds usr.img, then zeros to the end of the partition.
    let slot = std::fs::read(&usr).unwrap();
    let img = std::fs::read(out.join("usr.img")).unwrap();
    assert_eq!(&slot[..img.len()], &img[..], "USR-A does not hold usr.img");
    assert!(slot[img.len()..].iter().all(|&b| b == 0));
}

#[test]
fn inspect_shows_slots_and_boot_entries() {
    let out = shared_build("minimal");
    let disk = out.join("disk.raw");
    let insp = image_builder(&repo_root(), &["inspect", disk.to_str().unwrap()]);
    let t = text(&insp);
    assert!(insp.status.success(), "{t}");
    assert!(t.contains("USR-A  squashfs version 1.0.0"), "{t}");
    assert!(t.contains("USR-B  empty"), "{t}");
    assert!(
        t.contains("minimal-usr-a+3-0.conf  version 1.0.0  slot USR-A  tries left 3, done 0"),
        "{t}"
    );
    let json = image_builder(&repo_root(), &["inspect", disk.to_str().unwrap(), "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["boot_entries"][0]["tries_left"], 3);
    assert_eq!(v["partitions"].as_array().unwrap().len(), 6);
}

#[test]
fn minimal_image_boots_to_banner_and_login() {
    let out = shared_build("minimal");
    let disk = out.join("disk.raw");
    let run = run_snapshot(&disk, &["--timeout", "300", "--expect", "login:"]);
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
    assert!(console.contains("init: usr=/dev/vda3 (USR-A)"), "{console}");
    // The disk's drivers were chosen by the devices' modalias (coldplug), not a fixed list:
    // the PCI transport for the virtio PCI device, then the block driver for its virtio disk;
    // the NIC's driver came from /usr (the minimal OS has no udev).
    let line = |prefix: &str| {
        console
            .lines()
            .find(|l| l.contains(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} line:\n{console}"))
    };
    let drivers = line("init: drivers: ");
    for want in ["virtio_pci (pci/", "virtio_blk (virtio/"] {
        assert!(drivers.contains(want), "{want} missing from {drivers:?}");
    }
    assert!(line("init: drivers from /usr: ").contains("virtio_net (virtio/"));
}

#[test]
fn init_failure_is_reported_and_powers_off_cleanly() {
    let out = shared_build("minimal");
    let disk = out.join("disk.raw");
    // Direct kernel boot with a usr= that names no partition: /init must say what failed, list
    // what it saw, and power off (QEMU then exits by itself) instead of a kernel panic.
    let append = "console=ttyS0 usr=PARTUUID=00000000-0000-4000-8000-000000000001";
    let run = run_snapshot(
        &disk,
        &[
            "--timeout",
            "300",
            "--",
            "-kernel",
            out.join("vmlinuz").to_str().unwrap(),
            "-initrd",
            out.join("initrd.img").to_str().unwrap(),
            "-append",
            append,
        ],
    );
    let console = text(&run);
    assert!(
        run.status.success(),
        "QEMU must exit by itself (clean power-off):\n{console}"
    );
    assert!(console.contains("init: FATAL"), "{console}");
    assert!(
        console.contains("00000000-0000-4000-8000-000000000001"),
        "{console}"
    );
    assert!(
        console.contains("USR-A"),
        "the hint lists the partitions seen:\n{console}"
    );
    assert!(
        console.contains("PCI devices seen:") && console.contains(": driver virtio-pci"),
        "the hint lists the PCI devices and their drivers:\n{console}"
    );
    assert!(console.contains("reboot: Power down"), "{console}");
    assert!(!console.contains("Kernel panic"), "{console}");
}

#[test]
fn run_gives_up_with_the_console_tail() {
    let out = shared_build("minimal");
    let disk = out.join("disk.raw");
    let run = run_snapshot(&disk, &["--timeout", "8", "--expect", "this never appears"]);
    let t = text(&run);
    assert!(!run.status.success(), "{t}");
    assert!(t.contains("timed out; console tail:"), "{t}");
}
