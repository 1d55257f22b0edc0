//! The update path end to end, in QEMU: build 1.0.0 and 1.0.1 of the minimal image with the
//! update engine, publish 1.0.1 into `alpha` of a repository served on loopback (the guest
//! reaches the host at 10.0.2.2), boot 1.0.0 on USR-A and watch it update itself: download,
//! verify, write USR-B, reboot into 1.0.1 and mark it good.

use std::path::Path;
use std::process::{Child, Command, Stdio};

use tests::{image_builder, image_builder_bin, pool_dir, repo_root, text, Scratch};

struct Server(Child);
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let o = image_builder(dir, args);
    assert!(o.status.success(), "image-builder {args:?}:\n{}", text(&o));
    text(&o)
}

#[test]
fn boots_1_0_0_updates_itself_to_1_0_1_and_marks_it_good() {
    let s = Scratch::new("minimal");
    let w = s.path();
    let p = |rel: &str| w.join(rel).to_str().unwrap().to_string();
    std::os::unix::fs::symlink(repo_root().join("target"), w.join("target")).unwrap();
    std::fs::create_dir(w.join("keys")).unwrap();
    ok(w, &["keygen", &p("keys/root.key")]);
    ok(w, &["keygen", &p("keys/signing.key")]);
    ok(
        w,
        &[
            "init-repo",
            "--repo",
            &p("repo"),
            "--root-key",
            &p("keys/root.key"),
            "--signing-key",
            &p("keys/signing.key"),
        ],
    );
    std::fs::copy(w.join("repo/root.json"), w.join("keys/root.json")).unwrap();

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let update = format!(
        "update:\n  server: http://10.0.2.2:{port}/\n  reboot_strategy: reboot\n  root_keys: keys/root.json\n  engine: target/x86_64-unknown-linux-gnu/release/update-engine\n"
    );
    s.edit_spec(
        "minimal",
        "outputs: [raw]\n",
        &format!("outputs: [raw]\n{update}"),
    );
    let o = s.build("minimal", "v100", &pool_dir());
    assert!(o.status.success(), "{}", text(&o));
    s.edit_spec("minimal", "version: 1.0.0", "version: 1.0.1");
    let o = s.build("minimal", "v101", &pool_dir());
    assert!(o.status.success(), "{}", text(&o));
    ok(
        w,
        &[
            "publish",
            "--repo",
            &p("repo"),
            "--channel",
            "alpha",
            "--key",
            &p("keys/signing.key"),
            &p("v101"),
        ],
    );

    let _server = Server(
        Command::new(image_builder_bin())
            .args([
                "serve",
                &p("repo"),
                "--listen",
                &format!("127.0.0.1:{port}"),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let disk = w.join("disk.raw");
    std::fs::copy(w.join("v100/disk.raw"), &disk).unwrap();
    let run = image_builder(
        w,
        &[
            "run",
            disk.to_str().unwrap(),
            "--timeout",
            "900",
            "--expect",
            "update-engine: marked USR-B good",
        ],
    );
    let console = text(&run);
    assert!(run.status.success(), "no update to 1.0.1:\n{console}");
    let first = console
        .find("booted slot=USR-A version=1.0.0")
        .unwrap_or_else(|| panic!("{console}"));
    let second = console
        .find("booted slot=USR-B version=1.0.1")
        .unwrap_or_else(|| panic!("{console}"));
    assert!(first < second, "{console}");
    assert!(console.contains("Minimal Linux alpha (1.0.1)"), "{console}");

    let insp = ok(w, &["inspect", disk.to_str().unwrap()]);
    assert!(insp.contains("USR-B  squashfs version 1.0.1"), "{insp}");
    assert!(
        insp.contains("minimal-usr-b.conf  version 1.0.1  slot USR-B  blessed"),
        "{insp}"
    );
}
