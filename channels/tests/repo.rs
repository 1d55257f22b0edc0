//! A repository in a temp dir: init, payloads, publish, promote, rotation, verified the way a
//! client would from the files on disk.

use channels::*;
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

const NOW: u64 = 1_700_000_000;
const DAY: u64 = 86_400;

fn key(n: u8) -> SecretKey {
    SecretKey::from_seed(&[n; 32])
}

fn root_keys() -> RootKeys {
    RootKeys {
        keys: vec![key(1).public()],
    }
}

fn init(dir: &Path) {
    Repo::init(dir, &key(1), &[key(2).public()], NOW + 365 * DAY).unwrap();
}

fn release(dir: &Path, channel: &str, version: &str) -> Release {
    let usr = Repo::add_payload(dir, format!("usr {version}").as_bytes()).unwrap();
    let kernel = Repo::add_payload(dir, &b"kernel"[..]).unwrap();
    Release {
        channel: channel.into(),
        version: version.into(),
        release_time: NOW,
        expires: NOW + 7 * DAY,
        version_floor: None,
        payloads: BTreeMap::from([("usr.img".into(), usr), ("vmlinuz".into(), kernel)]),
    }
}

fn read(dir: &Path, rel: &str) -> Vec<u8> {
    fs::read(dir.join(rel)).unwrap()
}

#[test]
fn init_writes_verifiable_keys_and_refuses_reinit() {
    let dir = tempfile::tempdir().unwrap();
    init(dir.path());
    let root: RootKeys = canonical::from_slice(&read(dir.path(), ROOT_JSON)).unwrap();
    assert_eq!(root, root_keys());
    let keys = verify_keyset(
        &root,
        &read(dir.path(), KEYS_JSON),
        &read(dir.path(), KEYS_SIG),
        NOW,
        None,
    )
    .unwrap();
    assert_eq!(keys.version, 1);
    assert_eq!(keys.keys, vec![key(2).public()]);
    assert!(matches!(
        Repo::init(dir.path(), &key(1), &[key(2).public()], NOW + DAY),
        Err(RepoError::AlreadyInitialized { .. })
    ));
}

#[test]
fn payloads_are_content_addressed_and_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let a = Repo::add_payload(dir.path(), &b"hello"[..]).unwrap();
    assert_eq!(
        a.sha256,
        "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    );
    assert_eq!(a.size, 5);
    assert_eq!(read(dir.path(), &a.path()), b"hello");
    let file = dir.path().join("input");
    fs::write(&file, b"hello").unwrap();
    assert_eq!(Repo::add_payload_file(dir.path(), &file).unwrap(), a);
    let entries: Vec<_> = fs::read_dir(dir.path().join(PAYLOADS_DIR))
        .unwrap()
        .collect();
    assert_eq!(entries.len(), 1, "no temp files left behind, one copy");
    a.verify(&read(dir.path(), &a.path())).unwrap();
}

#[test]
fn publish_then_promote_keeps_payloads_and_bumps_sequences() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    init(d);
    let signer = key(2);

    let m1 = Repo::publish(d, release(d, "alpha", "1.0.0"), &signer, NOW, false).unwrap();
    assert_eq!(m1.sequence, 1);
    let m2 = Repo::publish(d, release(d, "alpha", "1.0.1"), &signer, NOW + 10, false).unwrap();
    assert_eq!(m2.sequence, 2);
    assert_eq!(
        Repo::check_channel(d, &root_keys(), "alpha", NOW + 20).unwrap(),
        m2
    );

    let payloads_before = fs::read_dir(d.join(PAYLOADS_DIR)).unwrap().count();
    let b1 = Repo::promote(d, "alpha", "beta", "1.0.1", &signer, NOW + 100).unwrap();
    assert_eq!(b1.channel, "beta");
    assert_eq!(b1.sequence, 1);
    assert_eq!(b1.payloads, m2.payloads);
    assert_eq!(b1.release_time, NOW + 100);
    assert_eq!(b1.expires - b1.release_time, m2.expires - m2.release_time);
    assert_eq!(
        fs::read_dir(d.join(PAYLOADS_DIR)).unwrap().count(),
        payloads_before,
        "no payload copied"
    );
    assert_eq!(
        Repo::check_channel(d, &root_keys(), "beta", NOW + 200).unwrap(),
        b1
    );

    // alpha's manifest is untouched by the promotion.
    assert_eq!(
        Repo::current_manifest(d, "alpha").unwrap(),
        Some(m2.clone())
    );

    // Promoting something that is not alpha's current release is refused.
    assert!(matches!(
        Repo::promote(d, "alpha", "beta", "1.0.0", &signer, NOW),
        Err(RepoError::NotCurrent { current, .. }) if current == "1.0.1"
    ));
    assert!(matches!(
        Repo::promote(d, "nowhere", "beta", "1.0.0", &signer, NOW),
        Err(RepoError::NotCurrent { current, .. }) if current == "nothing"
    ));
    // Promoting the same version again is not newer.
    assert!(matches!(
        Repo::promote(d, "alpha", "beta", "1.0.1", &signer, NOW),
        Err(RepoError::NotNewer { .. })
    ));

    // The client's sequence tracking sees alpha advance.
    let keys = Repo::keyset(d).unwrap();
    let m3 = Repo::publish(d, release(d, "alpha", "1.0.2"), &signer, NOW + 300, false).unwrap();
    assert_eq!(m3.sequence, 3);
    let seen = SeenManifest {
        sequence: 2,
        sha256: "00".repeat(32),
    };
    let doc = read(d, &manifest_path("alpha"));
    let sig = read(d, &manifest_sig_path("alpha"));
    assert_eq!(
        verify_manifest(&keys, &doc, &sig, "alpha", NOW + 400, Some(&seen)).unwrap(),
        m3
    );
}

#[test]
fn publish_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    init(d);
    let signer = key(2);
    Repo::publish(d, release(d, "alpha", "1.0.1"), &signer, NOW, false).unwrap();

    for older in ["1.0.1", "1.0.0", "0.9.99"] {
        let err = Repo::publish(d, release(d, "alpha", older), &signer, NOW, false).unwrap_err();
        assert!(matches!(err, RepoError::NotNewer { .. }), "{older}: {err}");
    }
    // Forced: allowed, with the next sequence (clients still refuse the downgrade in select_update).
    let forced = Repo::publish(d, release(d, "alpha", "1.0.0"), &signer, NOW, true).unwrap();
    assert_eq!(forced.sequence, 2);
    assert_eq!(
        select_update(&forced, "1.0.1").to_string(),
        "refused: version 1.0.0 is older than the booted version 1.0.1"
    );

    let err = Repo::publish(d, release(d, "alpha", "2.0.0"), &key(9), NOW, false).unwrap_err();
    assert!(matches!(err, RepoError::NotSigningKey { .. }), "{err}");

    let mut expired = release(d, "alpha", "2.0.0");
    expired.expires = NOW;
    assert!(matches!(
        Repo::publish(d, expired, &signer, NOW, false),
        Err(RepoError::Expired { .. })
    ));

    let mut missing = release(d, "alpha", "2.0.0");
    missing.payloads.insert(
        "initrd.img".into(),
        PayloadRef {
            sha256: "ef".repeat(32),
            size: 3,
        },
    );
    assert!(matches!(
        Repo::publish(d, missing, &signer, NOW, false),
        Err(RepoError::MissingPayload { .. })
    ));

    let mut below_floor = release(d, "alpha", "2.0.0");
    below_floor.version_floor = Some("3.0.0".into());
    assert!(matches!(
        Repo::publish(d, below_floor, &signer, NOW, false),
        Err(RepoError::Invalid(_))
    ));

    assert!(matches!(
        Repo::publish(d, release(d, "../etc", "2.0.0"), &signer, NOW, false),
        Err(RepoError::Invalid(_))
    ));
}

#[test]
fn rotation_replaces_signing_key_without_changing_root() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    init(d);
    let (old, new) = (key(2), key(3));
    Repo::publish(d, release(d, "alpha", "1.0.0"), &old, NOW, false).unwrap();
    let keys_v1 = verify_keyset(
        &root_keys(),
        &read(d, KEYS_JSON),
        &read(d, KEYS_SIG),
        NOW,
        None,
    )
    .unwrap();
    let (old_doc, old_sig) = (
        read(d, &manifest_path("alpha")),
        read(d, &manifest_sig_path("alpha")),
    );

    // Only a root key may rotate.
    assert!(matches!(
        Repo::rotate_keys(d, &old, &[new.public()], NOW + DAY),
        Err(RepoError::NotRootKey { .. })
    ));
    let rotated = Repo::rotate_keys(d, &key(1), &[new.public()], NOW + 365 * DAY).unwrap();
    assert_eq!(rotated.version, 2);
    let keys_v2 = verify_keyset(
        &root_keys(),
        &read(d, KEYS_JSON),
        &read(d, KEYS_SIG),
        NOW,
        Some(keys_v1.version),
    )
    .unwrap();
    assert_eq!(keys_v2, rotated);

    // The old key is refused, by the publisher and by clients.
    assert!(matches!(
        Repo::publish(d, release(d, "alpha", "1.0.1"), &old, NOW, false),
        Err(RepoError::NotSigningKey { .. })
    ));
    assert!(matches!(
        verify_manifest(&keys_v2, &old_doc, &old_sig, "alpha", NOW, None),
        Err(VerifyError::UnknownKey { .. })
    ));

    // The new key is accepted.
    let m = Repo::publish(d, release(d, "alpha", "1.0.1"), &new, NOW, false).unwrap();
    assert_eq!(m.sequence, 2);
    assert_eq!(
        Repo::check_channel(d, &root_keys(), "alpha", NOW).unwrap(),
        m
    );

    // A client that has seen v2 refuses the old keys.json served again.
    let (v1_json, v1_sig) = sign_document(&keys_v1, &key(1)).unwrap();
    assert_eq!(
        verify_keyset(&root_keys(), &v1_json, &v1_sig, NOW, Some(2)),
        Err(VerifyError::KeySetRollback { seen: 2, got: 1 })
    );
}

#[test]
fn files_on_disk_are_canonical_and_world_readable() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    init(d);
    let m = Repo::publish(d, release(d, "alpha", "1.0.0"), &key(2), NOW, false).unwrap();
    assert_eq!(
        read(d, &manifest_path("alpha")),
        canonical::to_vec(&m).unwrap()
    );
    #[cfg(unix)]
    for rel in [
        ROOT_JSON,
        KEYS_JSON,
        KEYS_SIG,
        &manifest_path("alpha"),
        &manifest_sig_path("alpha"),
        &m.payloads["usr.img"].path(),
    ] {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(d.join(rel)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644, "{rel}");
    }
    let leftovers: Vec<_> = fs::read_dir(d.join("channels/alpha"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 2, "{leftovers:?}");
}
