//! Two builds of the same spec and lock, in different directories, with a different umask and
//! time zone, give byte-identical artifacts and intermediates; a third build with nothing
//! changed is skipped and leaves the same bytes.

use std::process::Command;

use tests::{image_builder_bin, init_bin, pool_dir, sha256_file, text, Scratch};

fn build_with(s: &Scratch, out: &str, umask: &str, tz: &str) -> serde_json::Value {
    let spec = s.spec("minimal");
    let cmd = format!(
        "umask {umask} && exec {} build {} --out {out} --pool {} --init {}",
        image_builder_bin().display(),
        spec.display(),
        pool_dir().display(),
        init_bin().display()
    );
    let o = Command::new("sh")
        .arg("-c")
        .arg(&cmd)
        .env("TZ", tz)
        .env("LC_ALL", "C")
        .current_dir(s.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "build failed:\n{}", text(&o));
    let json = std::fs::read_to_string(s.path().join(out).join("build.json")).unwrap();
    serde_json::from_str(&json).unwrap()
}

#[test]
fn builds_are_bit_for_bit_reproducible() {
    let a = Scratch::new("minimal");
    let b = Scratch::new("minimal");
    let ra = build_with(&a, "first/out", "022", "UTC");
    let rb = build_with(&b, "elsewhere/deeper/out", "077", "Pacific/Kiritimati");
    for key in ["artifacts", "intermediates"] {
        assert_eq!(ra[key], rb[key], "{key} differ");
    }
    assert_eq!(ra, rb, "build.json differs");
    let disk_a = sha256_file(&a.path().join("first/out/disk.raw"));
    let disk_b = sha256_file(&b.path().join("elsewhere/deeper/out/disk.raw"));
    assert_eq!(disk_a, disk_b);
    assert_eq!(ra["artifacts"]["disk.raw"]["sha256"], disk_a.as_str());
    for name in ["usr.img", "vmlinuz", "initrd.img"] {
        assert_eq!(
            sha256_file(&a.path().join("first/out").join(name)),
            ra["artifacts"][name]["sha256"].as_str().unwrap(),
            "{name} does not match build.json"
        );
    }

    // No change: the build is skipped and the bytes stay.
    let o = Command::new(image_builder_bin())
        .args([
            "build",
            a.spec("minimal").to_str().unwrap(),
            "--out",
            "first/out",
            "--pool",
        ])
        .arg(pool_dir())
        .arg("--init")
        .arg(init_bin())
        .current_dir(a.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("up to date"), "{}", text(&o));
    assert_eq!(sha256_file(&a.path().join("first/out/disk.raw")), disk_a);
}
