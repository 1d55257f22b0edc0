//! Publishing: keys, a repository, a build published into `alpha`, promoted to `beta` with the
//! same payload bytes, a newer build published after it, refusals, and the repository served over
//! loopback HTTP by `image-builder serve` — all checked with the client-side verification of
//! the `channels` crate. A release's installable disk image (`disk.img.zst`): what it
//! decompresses to, how release.json describes it, that it is reproducible and that a build
//! whose disk is not build.json's is refused.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use channels::release::{ReleaseInfo, DISK_IMAGE, RELEASE_JSON};
use channels::{FileInfo, Manifest, Repo, RootKeys};
use sha2::{Digest, Sha256};
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
    assert!(
        beta.payloads.contains_key(DISK_IMAGE),
        "promote carries the disk image"
    );
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

/// `path`'s size and sha256 (read plainly).
fn identity_of(mut reader: impl Read) -> FileInfo {
    let mut h = Sha256::new();
    let size = std::io::copy(&mut reader, &mut h).unwrap();
    FileInfo {
        size,
        sha256: hex::encode(h.finalize()),
    }
}

/// build.json's size and sha256 of `name`.
fn build_json_entry(build: &Path, name: &str) -> FileInfo {
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(build.join("build.json")).unwrap()).unwrap();
    serde_json::from_value(report["artifacts"][name].clone())
        .unwrap_or_else(|e| panic!("build.json's {name}: {e}"))
}

/// A build directory of its own beside `build` (same file system: hard links), holding its
/// build.json and slot files, and `disk` as its disk.raw (`None`: a link to the build's).
fn build_copy(build: &Path, disk: Option<&dyn Fn(&Path)>) -> tempfile::TempDir {
    let dir = tempfile::tempdir_in(build.parent().unwrap()).unwrap();
    for name in ["build.json", "usr.img", "vmlinuz", "initrd.img", "disk.raw"] {
        let to = dir.path().join(name);
        match (name, disk) {
            ("disk.raw", Some(make)) => make(&to),
            _ => std::fs::hard_link(build.join(name), &to).unwrap(),
        }
    }
    dir
}

/// The payload `name` of `manifest`, in the repository.
fn stored(repo: &Path, manifest: &Manifest, name: &str) -> PathBuf {
    repo.join(manifest.payloads[name].path())
}

#[test]
fn a_release_carries_its_disk_image() {
    let build = shared_build("minimal");
    let raw = build_json_entry(&build, "disk.raw");
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let repo = ChannelRepo::init(w);
    repo.publish("alpha", &build);
    let root_keys: RootKeys =
        channels::canonical::from_slice(&std::fs::read(repo.path().join("root.json")).unwrap())
            .unwrap();
    let alpha = Repo::check_channel(&repo.path(), &root_keys, "alpha", now()).unwrap();

    // The manifest lists it; the stored bytes are what it says, and decompress (streaming) to
    // exactly the build's disk.raw.
    let listed = &alpha.payloads[DISK_IMAGE];
    let zst = stored(&repo.path(), &alpha, DISK_IMAGE);
    let compressed = identity_of(std::fs::File::open(&zst).unwrap());
    assert_eq!(
        (compressed.size, compressed.sha256.as_str()),
        (listed.size, listed.sha256.as_str())
    );
    assert!(
        compressed.size < raw.size / 4,
        "{} compressed bytes for a {}-byte disk",
        compressed.size,
        raw.size
    );
    let decoder = zstd::stream::read::Decoder::new(std::fs::File::open(&zst).unwrap()).unwrap();
    assert_eq!(
        identity_of(decoder),
        raw,
        "decompressed disk.img.zst is not disk.raw"
    );

    // release.json (the signed one, from the repository) describes both.
    let info: ReleaseInfo =
        serde_json::from_slice(&std::fs::read(stored(&repo.path(), &alpha, RELEASE_JSON)).unwrap())
            .unwrap();
    let disk = info.disk.expect("release.json describes the disk image");
    assert_eq!(disk.file, DISK_IMAGE);
    assert_eq!(disk.compressed, compressed);
    assert_eq!(disk.raw, raw);
    assert!(
        !info.files.contains_key(DISK_IMAGE),
        "files are what a slot update needs"
    );

    // Promoted: beta lists the same entry.
    image_builder_ok(
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
    let beta = Repo::check_channel(&repo.path(), &root_keys, "beta", now()).unwrap();
    assert_eq!(beta.payloads[DISK_IMAGE], *listed);
    assert_eq!(beta.payloads[RELEASE_JSON], alpha.payloads[RELEASE_JSON]);

    // Reproducible: made afresh from the same build (another directory, no payload yet), the
    // payload is byte for byte the published one.
    let copy = build_copy(&build, None);
    let out = image_builder_ok(w, &["payload", copy.path().to_str().unwrap()]);
    let again = copy.path().join("payload");
    assert!(out.contains(again.to_str().unwrap()), "{out}");
    assert_eq!(tests::sha256_file(&again.join(DISK_IMAGE)), listed.sha256);
    assert_eq!(
        tests::sha256_file(&again.join(RELEASE_JSON)),
        alpha.payloads[RELEASE_JSON].sha256
    );
    // And publishing again (the payload there is kept) adds nothing new.
    let second = ChannelRepo::init(&w.join("second"));
    second.publish("alpha", copy.path());
    let m = Repo::check_channel(&second.path(), &root_keys_of(&second), "alpha", now()).unwrap();
    assert_eq!(m.payloads, alpha.payloads);
}

fn root_keys_of(repo: &ChannelRepo) -> RootKeys {
    channels::canonical::from_slice(&std::fs::read(repo.path().join("root.json")).unwrap()).unwrap()
}

#[test]
fn a_build_whose_disk_is_not_build_json_s_is_refused() {
    let build = shared_build("minimal");
    let raw = build_json_entry(&build, "disk.raw");
    let work = tempfile::tempdir().unwrap();
    let repo = ChannelRepo::init(work.path());
    // Same size (a sparse file), other bytes: found out while compressing.
    let other = |to: &Path| {
        let f = std::fs::File::create(to).unwrap();
        f.set_len(raw.size).unwrap();
        std::os::unix::fs::FileExt::write_all_at(&f, b"not the disk", 1 << 20).unwrap();
    };
    // Another size: found out before reading.
    let short = |to: &Path| std::fs::write(to, b"short").unwrap();
    for (make, want) in [
        (&other as &dyn Fn(&Path), "(sha256 "),
        (&short as &dyn Fn(&Path), "(5 bytes, build.json says"),
    ] {
        let copy = build_copy(&build, Some(make));
        let o = repo.publish_with("alpha", &repo.signing_key(), &[], copy.path());
        assert_clean_failure(&o, "disk.raw does not match build.json");
        assert_clean_failure(&o, want);
        let payload = copy.path().join("payload");
        let left: Vec<_> = std::fs::read_dir(&payload)
            .map(|d| d.map(|e| e.unwrap().file_name()).collect())
            .unwrap_or_default();
        assert!(
            !left.iter().any(|n| n.to_string_lossy().contains("disk")
                || n.to_string_lossy().starts_with(".partial")),
            "{left:?}"
        );
        assert!(
            !repo.path().join("channels/alpha").exists(),
            "nothing published"
        );
    }

    // A payload's disk image changed after it was made (same size, so `payload` keeps it):
    // publish hashes it on the way into the repository and refuses it.
    let copy = build_copy(&build, None);
    image_builder_ok(work.path(), &["payload", copy.path().to_str().unwrap()]);
    let zst = copy.path().join("payload").join(DISK_IMAGE);
    let mut bytes = std::fs::read(&zst).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::remove_file(&zst).unwrap();
    std::fs::write(&zst, &bytes).unwrap();
    let o = repo.publish_with("alpha", &repo.signing_key(), &[], copy.path());
    assert_clean_failure(&o, "disk.img.zst is not the file release.json describes");
    assert!(
        !repo.path().join("channels/alpha").exists(),
        "nothing published"
    );
}
