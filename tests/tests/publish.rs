//! Publishing: keys, a repository, a build published into `alpha`, promoted to `beta` with the
//! same payload bytes, a newer build published after it, refusals, and the repository served over
//! loopback HTTP by `image-builder serve` — all checked with the client-side verification of
//! the `channels` crate.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use channels::{Repo, RootKeys};
use tests::{
    assert_clean_failure, image_builder, init_bin, pool_dir, repo_root, shared_build, text, Scratch,
};

fn ok(dir: &Path, args: &[&str]) -> String {
    let o = image_builder(dir, args);
    assert!(o.status.success(), "image-builder {args:?}:\n{}", text(&o));
    text(&o)
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn http_get(addr: &str, path: &str) -> (String, Vec<u8>) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let split = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    (
        String::from_utf8_lossy(&out[..split]).into_owned(),
        out[split + 4..].to_vec(),
    )
}

#[test]
fn publish_promote_and_serve() {
    let build = shared_build("minimal");
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let s = |p: &str| w.join(p).to_str().unwrap().to_string();
    ok(w, &["keygen", &s("root.key")]);
    ok(w, &["keygen", &s("signing.key")]);
    assert_clean_failure(
        &image_builder(w, &["keygen", &s("root.key")]),
        "never overwritten",
    );
    ok(
        w,
        &[
            "init-repo",
            "--repo",
            &s("repo"),
            "--root-key",
            &s("root.key"),
            "--signing-key",
            &s("signing.key"),
        ],
    );

    let out = ok(
        w,
        &[
            "publish",
            "--repo",
            &s("repo"),
            "--channel",
            "alpha",
            "--key",
            &s("signing.key"),
            build.to_str().unwrap(),
        ],
    );
    assert!(
        out.contains("published 1.0.0 to alpha (sequence 1)"),
        "{out}"
    );
    let root_keys: RootKeys =
        channels::canonical::from_slice(&std::fs::read(w.join("repo/root.json")).unwrap()).unwrap();
    let alpha = Repo::check_channel(&w.join("repo"), &root_keys, "alpha", now()).unwrap();
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(build.join("build.json")).unwrap()).unwrap();
    for name in ["usr.img", "vmlinuz", "initrd.img"] {
        assert_eq!(
            alpha.payloads[name].sha256,
            report["artifacts"][name]["sha256"].as_str().unwrap(),
            "{name}"
        );
        let stored = w.join("repo").join(alpha.payloads[name].path());
        assert_eq!(tests::sha256_file(&stored), alpha.payloads[name].sha256);
    }

    // The same version again is refused; a signing key that keys.json does not list too.
    let again = image_builder(
        w,
        &[
            "publish",
            "--repo",
            &s("repo"),
            "--channel",
            "alpha",
            "--key",
            &s("signing.key"),
            build.to_str().unwrap(),
        ],
    );
    assert_clean_failure(&again, "1.0.0");
    let rogue = image_builder(
        w,
        &[
            "publish",
            "--repo",
            &s("repo"),
            "--channel",
            "alpha",
            "--key",
            &s("root.key"),
            "--force",
            build.to_str().unwrap(),
        ],
    );
    assert_clean_failure(&rogue, "key");

    // Promote: same payload bytes in beta.
    let out = ok(
        w,
        &[
            "promote",
            "--repo",
            &s("repo"),
            "--from",
            "alpha",
            "--to",
            "beta",
            "--key",
            &s("signing.key"),
            "1.0.0",
        ],
    );
    assert!(out.contains("promoted 1.0.0 from alpha to beta"), "{out}");
    let beta = Repo::check_channel(&w.join("repo"), &root_keys, "beta", now()).unwrap();
    assert_eq!(beta.payloads, alpha.payloads);
    assert_eq!(beta.channel, "beta");

    // A newer build goes to alpha with the next sequence.
    let scratch = Scratch::new("minimal");
    scratch.edit_spec("minimal", "version: 1.0.0", "version: 1.0.1");
    let b2 = scratch.build("minimal", "out", &pool_dir());
    assert!(b2.status.success(), "{}", text(&b2));
    let _ = init_bin();
    let out = ok(
        w,
        &[
            "publish",
            "--repo",
            &s("repo"),
            "--channel",
            "alpha",
            "--key",
            &s("signing.key"),
            scratch.path().join("out").to_str().unwrap(),
        ],
    );
    assert!(
        out.contains("published 1.0.1 to alpha (sequence 2)"),
        "{out}"
    );
    let alpha2 = Repo::check_channel(&w.join("repo"), &root_keys, "alpha", now()).unwrap();
    assert_eq!(alpha2.version, "1.0.1");
    assert_ne!(alpha2.payloads["usr.img"], alpha.payloads["usr.img"]);
    assert_eq!(
        alpha2.payloads["vmlinuz"], alpha.payloads["vmlinuz"],
        "same kernel, same content address"
    );

    // Serve it over loopback HTTP.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut server = Command::new(tests::image_builder_bin())
        .args(["serve", w.join("repo").to_str().unwrap(), "--listen", &addr])
        .current_dir(repo_root())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut got = None;
    for _ in 0..100 {
        if std::net::TcpStream::connect(&addr).is_ok() {
            got = Some(http_get(&addr, "/channels/alpha/manifest.json"));
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let escaped = http_get(&addr, "/../root.key");
    let _ = server.kill();
    let _ = server.wait();
    let (head, body) = got.expect("image-builder serve answered");
    assert!(head.starts_with("HTTP/1.0 200"), "{head}");
    assert_eq!(
        body,
        std::fs::read(w.join("repo/channels/alpha/manifest.json")).unwrap()
    );
    assert!(escaped.0.starts_with("HTTP/1.0 404"), "{}", escaped.0);
}
