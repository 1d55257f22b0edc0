//! The update path end to end, in QEMU: build 1.0.0 and 1.0.1 of the minimal image with the
//! update engine, publish 1.0.1 into `alpha` of a repository served on loopback (the guest
//! reaches the host at 10.0.2.2), boot 1.0.0 on USR-A and
//! - cut the power while it downloads 1.0.1 onto USR-B: the next boot is 1.0.0 again (no entry
//!   for a half-written slot), and the engine completes the update;
//! - watch it reboot into 1.0.1 on USR-B and mark it good;
//! - publish a broken 1.0.2 (its initramfs cannot mount /usr): it is written to USR-A, fails to
//!   boot until its counter runs out, the loader comes back to 1.0.1 by itself, and the engine
//!   reports the rollback.
//!
//! The machine runs `REBOOT_STRATEGY=etcd-lock` against a real etcd on the host: it does not
//! reboot while another holder fills the semaphore, takes the lock before rebooting, and gives it
//! back only once the slot it boots is marked good (also after the rollback).

use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Stdio};

use tests::etcd::Etcd;
use tests::repo::ChannelRepo;
use tests::{image_builder_bin, image_builder_ok, pool_dir, text, update_engine_bin, Scratch};

#[test]
fn power_cut_update_to_1_0_1_and_rollback_from_broken_1_0_2() {
    let etcd = Etcd::start();
    let etcd_port = etcd.endpoint().rsplit(':').next().unwrap().to_owned();
    let (s, repo, port) = updating_workspace(
        "etcd-lock",
        &format!("  locksmith:\n    endpoints: [\"http://10.0.2.2:{etcd_port}\"]\n"),
    );
    let w = s.path();
    build(&s, "v100");
    // The engine answers to Container Linux's command names too.
    let o = Command::new("unsquashfs")
        .arg("-ll")
        .arg(w.join("v100/usr.img"))
        .output()
        .unwrap();
    let listing = text(&o);
    for name in ["update_engine_client", "locksmithctl"] {
        assert!(
            listing.contains(&format!("/bin/{name} -> update-engine")),
            "{listing}"
        );
    }
    s.edit_spec("minimal", "version: 1.0.0", "version: 1.0.1");
    build(&s, "v101");
    repo.publish("alpha", &w.join("v101"));

    let _server = repo.serve(&format!("127.0.0.1:{port}"));
    let disk = w.join("disk.raw");
    std::fs::copy(w.join("v100/disk.raw"), &disk).unwrap();
    let inspect = || image_builder_ok(w, &["inspect", disk.to_str().unwrap()]);
    let lock = |args: &[&str]| {
        let o = Command::new(update_engine_bin())
            .args(["lock", "--endpoint", &etcd.endpoint()])
            .args(args)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "update-engine lock {args:?}: {}",
            text(&o)
        );
        text(&o)
    };
    let semaphore = || etcd.get("coreos.com/updateengine/rebootlock/semaphore");
    // Another machine holds the only slot: this one must wait for it.
    lock(&["lock", "other-node"]);
    assert_eq!(
        semaphore().as_deref(),
        Some(r#"{"semaphore":0,"max":1,"holders":["other-node"]}"#)
    );

    // Power cut in the middle of the apply (QEMU is killed as soon as the download starts).
    let console = boot_watching(
        w,
        &disk,
        "update-engine: downloading 1.0.1 to the other slot",
        |_| {},
    );
    assert!(
        console.contains("update-engine: marked USR-A good (1.0.0)"),
        "{console}"
    );
    let insp = inspect();
    assert!(
        !insp.contains("minimal-usr-b"),
        "a half-written slot has no entry:\n{insp}"
    );

    // Next boot: still 1.0.0 on USR-A; the engine completes the update, waits while the lock is
    // full, takes it once the other node lets go, and 1.0.1 comes up, is marked good and gives
    // the lock back.
    let mut released_other = false;
    let console = boot_watching(
        w,
        &disk,
        "update-engine: released the reboot lock",
        |line| {
            if !released_other && line.contains("not rebooting yet: waiting for the reboot lock") {
                assert!(
                    line.contains("semaphore") || line.contains("full"),
                    "{line}"
                );
                lock(&["unlock", "other-node"]);
                released_other = true;
            }
        },
    );
    assert!(released_other, "it never waited for the lock:\n{console}");
    in_order(
        &console,
        &[
            "booted slot=USR-A version=1.0.0",
            "not rebooting yet: waiting for the reboot lock",
            "update-engine: rebooting into 1.0.1: took the reboot lock",
            "booted slot=USR-B version=1.0.1",
            "update-engine: marked USR-B good (1.0.1)",
            "update-engine: released the reboot lock",
        ],
    );
    assert!(console.contains("Minimal Linux alpha (1.0.1)"), "{console}");
    assert_eq!(
        semaphore().as_deref(),
        Some(r#"{"semaphore":1,"max":1,"holders":[]}"#)
    );
    let insp = inspect();
    assert!(insp.contains("USR-B  squashfs version 1.0.1"), "{insp}");
    assert!(
        insp.contains("minimal-usr-b.conf  version 1.0.1  slot USR-B  blessed"),
        "{insp}"
    );

    // A broken 1.0.2: /init cannot mount /usr (no squashfs module), so the kernel command
    // line's panic=10 makes it reboot until the loader gives up on it.
    publish_broken_1_0_2(&s, &repo);
    let console = boot_watching(w, &disk, "update-engine: released the reboot lock", |_| {});
    in_order(
        &console,
        &[
            "update-engine: rebooting into 1.0.2: took the reboot lock",
            "init: FATAL",
            "booted slot=USR-B version=1.0.1",
            "update-engine: rolled back from 1.0.2 to 1.0.1",
            "update-engine: released the reboot lock",
        ],
    );
    assert_eq!(
        semaphore().as_deref(),
        Some(r#"{"semaphore":1,"max":1,"holders":[]}"#)
    );
    let insp = inspect();
    let bad = "minimal-usr-a+0-3.conf  version 1.0.2  slot USR-A  tries left 0, done 3";
    assert!(insp.contains(bad), "{insp}");
    assert!(insp.contains("minimal-usr-b.conf  version 1.0.1"), "{insp}");

    // What the machine recorded: `update-engine status` over the state on its ROOT partition.
    let root = w.join("machine-root");
    copy_from_root(
        &disk,
        "/var/lib/update-engine/state.json",
        &root.join("var/lib/update-engine/state.json"),
    );
    let o = Command::new(update_engine_bin())
        .arg("--root")
        .arg(&root)
        .arg("status")
        .output()
        .unwrap();
    let status = text(&o);
    assert!(o.status.success(), "{status}");
    assert!(
        status.contains("ROLLBACK=rolled back from 1.0.2 to 1.0.1\nFAILED_VERSIONS=1.0.2\n"),
        "{status}"
    );
}

/// The same update path on a legacy BIOS machine: GRUB boots the slots from the same entries,
/// journals its tries in grubenv, and the engine folds them into the entry names, so the update
/// to 1.0.1 and the rollback from a broken 1.0.2 happen exactly as under UEFI.
#[test]
fn bios_machine_updates_and_rolls_back_like_uefi() {
    let (s, repo, port) = updating_workspace("reboot", "");
    let w = s.path();
    build(&s, "v100");
    s.edit_spec("minimal", "version: 1.0.0", "version: 1.0.1");
    build(&s, "v101");
    repo.publish("alpha", &w.join("v101"));
    let _server = repo.serve(&format!("127.0.0.1:{port}"));
    let disk = w.join("disk.raw");
    std::fs::copy(w.join("v100/disk.raw"), &disk).unwrap();
    let inspect = || image_builder_ok(w, &["inspect", disk.to_str().unwrap()]);

    let console = boot_with(
        w,
        &disk,
        "bios",
        r"update-engine: marked USR-B good \(1\.0\.1\)",
        |_| {},
    );
    in_order(
        &console,
        &[
            "GRUB: booting Minimal Linux 1.0.0 (USR-A)",
            "booted slot=USR-A version=1.0.0",
            "update-engine: GRUB booted USR-A 1 time(s) since the last count",
            "update-engine: marked USR-A good (1.0.0)",
            "update-engine: rebooting into 1.0.1",
            "GRUB: booting Minimal Linux 1.0.1 (USR-B)",
            "booted slot=USR-B version=1.0.1",
            "update-engine: GRUB booted USR-B 1 time(s) since the last count",
            "update-engine: marked USR-B good (1.0.1)",
        ],
    );
    let insp = inspect();
    assert!(
        insp.contains("minimal-usr-b.conf  version 1.0.1  slot USR-B  blessed"),
        "{insp}"
    );
    assert!(
        insp.contains(
            "legacy BIOS: GRUB in the MBR, tries journaled in grub/grubenv: USR-A 0, USR-B 0"
        ),
        "{insp}"
    );

    // A broken 1.0.2 (no squashfs module in its initramfs): GRUB tries it three times, then
    // boots 1.0.1 again by itself; the engine reports the rollback.
    publish_broken_1_0_2(&s, &repo);
    let console = boot_with(
        w,
        &disk,
        "bios",
        "update-engine: rolled back from 1.0.2 to 1.0.1",
        |_| {},
    );
    in_order(
        &console,
        &[
            "update-engine: rebooting into 1.0.2",
            "GRUB: booting Minimal Linux 1.0.2 (USR-A)",
            "init: FATAL",
            "GRUB: booting Minimal Linux 1.0.2 (USR-A)",
            "init: FATAL",
            "GRUB: booting Minimal Linux 1.0.2 (USR-A)",
            "init: FATAL",
            "GRUB: booting Minimal Linux 1.0.1 (USR-B)",
            "booted slot=USR-B version=1.0.1",
            "update-engine: GRUB booted USR-A 3 time(s) since the last count",
        ],
    );
    let insp = inspect();
    let bad = "minimal-usr-a+0-3.conf  version 1.0.2  slot USR-A  tries left 0, done 3";
    assert!(insp.contains(bad), "{insp}");
    assert!(insp.contains("minimal-usr-b.conf  version 1.0.1"), "{insp}");
}

/// A workspace whose minimal spec updates itself from the repository it makes, served at a free
/// loopback port (the guest's 10.0.2.2) with `REBOOT_STRATEGY=strategy` and `extra` lines of the
/// `update:` section; the workspace, the repository and the port.
fn updating_workspace(strategy: &str, extra: &str) -> (Scratch, ChannelRepo, u16) {
    let s = Scratch::new("minimal");
    s.link_target();
    let repo = ChannelRepo::init(s.path());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let update = format!(
        "update:\n  server: http://10.0.2.2:{port}/\n  reboot_strategy: {strategy}\n  root_keys: keys/root.json\n  engine: target/x86_64-unknown-linux-gnu/release/update-engine\n{extra}"
    );
    s.edit_spec(
        "minimal",
        "outputs: [raw]\n",
        &format!("outputs: [raw]\n{update}"),
    );
    (s, repo, port)
}

/// Builds the workspace's minimal spec into `out`; the build must succeed.
fn build(s: &Scratch, out: &str) {
    let o = s.build("minimal", out, &pool_dir());
    assert!(o.status.success(), "{}", text(&o));
}

/// Builds and publishes 1.0.2 (after 1.0.1), broken: /init cannot mount /usr without the
/// squashfs module, so the kernel command line's panic=10 reboots it until the loader gives up.
fn publish_broken_1_0_2(s: &Scratch, repo: &ChannelRepo) {
    s.edit_spec("minimal", "version: 1.0.1", "version: 1.0.2");
    s.edit_spec("minimal", "crc32c_generic, squashfs, ", "crc32c_generic, ");
    build(s, "v102");
    repo.publish("alpha", &s.path().join("v102"));
}

/// Boots `disk` until a console line matches `expect`, calling `on_line` with every console line
/// as it arrives; returns the console.
fn boot_watching(dir: &Path, disk: &Path, expect: &str, on_line: impl FnMut(&str)) -> String {
    boot_with(dir, disk, "uefi", expect, on_line)
}

/// [`boot_watching`] with `firmware` (`uefi` or `bios`).
fn boot_with(
    dir: &Path,
    disk: &Path,
    firmware: &str,
    expect: &str,
    mut on_line: impl FnMut(&str),
) -> String {
    let mut child = Command::new(image_builder_bin())
        .current_dir(dir)
        .args([
            "run",
            disk.to_str().unwrap(),
            "--firmware",
            firmware,
            "--timeout",
            "900",
            "--expect",
            expect,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let errors = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
    let mut console = String::new();
    for line in std::io::BufReader::new(child.stdout.take().unwrap()).split(b'\n') {
        let line = String::from_utf8_lossy(&line.unwrap()).into_owned();
        on_line(&line);
        console.push_str(&line);
        console.push('\n');
    }
    let status = child.wait().unwrap();
    let errors = errors.join().unwrap();
    assert!(
        status.success(),
        "never saw {expect:?}:\n{console}\n{errors}"
    );
    console
}

/// Asserts that `console` holds every one of `lines`, in this order.
fn in_order(console: &str, lines: &[&str]) {
    let mut from = 0;
    for l in lines {
        match console[from..].find(l) {
            Some(at) => from += at + l.len(),
            None => panic!("{l:?} missing, or not after {lines:?}'s earlier ones:\n{console}"),
        }
    }
}

/// Copies `path` out of the ext4 ROOT partition of `disk` with debugfs.
fn copy_from_root(disk: &Path, path: &str, to: &Path) {
    let json = image_builder_ok(
        disk.parent().unwrap(),
        &["inspect", "--json", disk.to_str().unwrap()],
    );
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let part = v["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["label"] == "ROOT")
        .expect("a ROOT partition");
    let (first, last) = (
        part["first_lba"].as_u64().unwrap(),
        part["last_lba"].as_u64().unwrap(),
    );
    let mut f = std::fs::File::open(disk).unwrap();
    let image = disk.with_file_name("root-partition.img");
    let mut out = std::fs::File::create(&image).unwrap();
    use std::io::{Read, Seek, SeekFrom};
    f.seek(SeekFrom::Start(first * 512)).unwrap();
    std::io::copy(&mut f.take((last + 1 - first) * 512), &mut out).unwrap();
    // The VM was killed: the newest metadata may still be in the journal. Replay it (e2fsck
    // exits 1 when it changed something, which replaying is).
    let o = Command::new("e2fsck")
        .arg("-p")
        .arg(&image)
        .output()
        .unwrap();
    assert!(
        o.status.code().is_some_and(|c| c <= 1),
        "e2fsck: {}",
        text(&o)
    );
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    let o = Command::new("debugfs")
        .arg("-R")
        .arg(format!("dump {path} {}", to.display()))
        .arg(&image)
        .output()
        .unwrap();
    assert!(o.status.success() && to.exists(), "debugfs: {}", text(&o));
    std::fs::remove_file(&image).unwrap();
}
