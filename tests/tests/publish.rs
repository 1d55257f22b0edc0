//! Publishing: keys, a repository, a build published into `alpha`, promoted to `beta` with the
//! same payload bytes, a newer build published after it, refusals, and the repository served over
//! loopback HTTP by `image-builder serve` — all checked with the client-side verification of
//! the `channels` crate.

use std::io::{Read, Write};

use channels::{Repo, RootKeys};
use tests::repo::ChannelRepo;
use tests::{
    assert_clean_failure, image_builder, image_builder_ok, init_bin, pool_dir, shared_build, text,
    Scratch,
};

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
    let repo = ChannelRepo::init(w);
    assert_clean_failure(
        &image_builder(w, &["keygen", repo.root_key().to_str().unwrap()]),
        "never overwritten",
    );

    let out = repo.publish("alpha", &build);
    assert!(
        out.contains("published 1.0.0 to alpha (sequence 1)"),
        "{out}"
    );
    let root_keys: RootKeys =
        channels::canonical::from_slice(&std::fs::read(repo.path().join("root.json")).unwrap())
            .unwrap();
    let alpha = Repo::check_channel(&repo.path(), &root_keys, "alpha", now()).unwrap();
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(build.join("build.json")).unwrap()).unwrap();
    for name in ["usr.img", "vmlinuz", "initrd.img"] {
        assert_eq!(
            alpha.payloads[name].sha256,
            report["artifacts"][name]["sha256"].as_str().unwrap(),
            "{name}"
        );
        let stored = repo.path().join(alpha.payloads[name].path());
        assert_eq!(tests::sha256_file(&stored), alpha.payloads[name].sha256);
    }

    // The same version again is refused; a signing key that keys.json does not list too.
    let again = repo.publish_with("alpha", &repo.signing_key(), &[], &build);
    assert_clean_failure(&again, "1.0.0");
    let rogue = repo.publish_with("alpha", &repo.root_key(), &["--force"], &build);
    assert_clean_failure(&rogue, "key");

    // Promote: same payload bytes in beta.
    let out = image_builder_ok(
        w,
        &[
            "promote",
            "--repo",
            repo.path().to_str().unwrap(),
            "--from",
            "alpha",
            "--to",
            "beta",
            "--key",
            repo.signing_key().to_str().unwrap(),
            "1.0.0",
        ],
    );
    assert!(out.contains("promoted 1.0.0 from alpha to beta"), "{out}");
    let beta = Repo::check_channel(&repo.path(), &root_keys, "beta", now()).unwrap();
    assert_eq!(beta.payloads, alpha.payloads);
    assert_eq!(beta.channel, "beta");

    // A newer build goes to alpha with the next sequence.
    let scratch = Scratch::new("minimal");
    scratch.edit_spec("minimal", "version: 1.0.0", "version: 1.0.1");
    let b2 = scratch.build("minimal", "out", &pool_dir());
    assert!(b2.status.success(), "{}", text(&b2));
    let _ = init_bin();
    let out = repo.publish("alpha", &scratch.path().join("out"));
    assert!(
        out.contains("published 1.0.1 to alpha (sequence 2)"),
        "{out}"
    );
    let alpha2 = Repo::check_channel(&repo.path(), &root_keys, "alpha", now()).unwrap();
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
    let server = repo.serve(&addr);
    let mut got = None;
    for _ in 0..100 {
        if std::net::TcpStream::connect(&addr).is_ok() {
            got = Some(http_get(&addr, "/channels/alpha/manifest.json"));
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // The root key is one level above the repository: never served.
    assert!(repo.root_key().exists());
    let escaped = http_get(&addr, "/../keys/root.key");
    // A large file to an HTTP/1.1 client (iPXE) goes with its length, never chunked.
    let usr = alpha2.payloads["usr.img"].path();
    let mut conn = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        conn,
        "GET /{usr} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut big = Vec::new();
    conn.read_to_end(&mut big).unwrap();
    let split = big.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let big_head = String::from_utf8_lossy(&big[..split]).to_lowercase();
    let size = std::fs::metadata(repo.path().join(&usr)).unwrap().len();
    assert!(
        big_head.contains(&format!("content-length: {size}")),
        "{big_head}"
    );
    assert!(!big_head.contains("chunked"), "{big_head}");
    assert_eq!(big.len() - split - 4, size as usize);
    drop(server);
    let (head, body) = got.expect("image-builder serve answered");
    assert!(head.starts_with("HTTP/1.0 200"), "{head}");
    assert_eq!(
        body,
        std::fs::read(repo.path().join("channels/alpha/manifest.json")).unwrap()
    );
    assert!(escaped.0.starts_with("HTTP/1.0 404"), "{}", escaped.0);
}
