//! Build the minimal image and boot it in QEMU (UEFI, TCG): the console must show the banner,
//! the booted slot and a login prompt. `inspect` must describe the same disk.

use tests::{image_builder, pool_dir, text, Scratch};

#[test]
fn minimal_image_boots_to_banner_and_login() {
    let s = Scratch::new("minimal");
    let o = s.build("minimal", "out", &pool_dir());
    assert!(o.status.success(), "build failed:\n{}", text(&o));
    let disk = s.path().join("out/disk.raw");

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
