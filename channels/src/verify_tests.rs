//! Signature cases for keys.json and manifests: good, flipped byte, truncated, unknown key,
//! expired, replayed, forked, wrong channel, rollback, non-canonical.

use super::*;
use crate::documents::PayloadRef;

const NOW: u64 = 1_700_000_000;
const DAY: u64 = 86_400;

fn root() -> SecretKey {
    SecretKey::from_seed(&[1; 32])
}
fn signer() -> SecretKey {
    SecretKey::from_seed(&[2; 32])
}
fn stranger() -> SecretKey {
    SecretKey::from_seed(&[3; 32])
}
fn root_keys() -> RootKeys {
    RootKeys {
        keys: vec![root().public()],
    }
}
fn keyset(version: u64) -> KeySet {
    KeySet {
        version,
        expires: NOW + 30 * DAY,
        keys: vec![signer().public()],
    }
}

fn manifest(sequence: u64) -> Manifest {
    Manifest {
        channel: "alpha".into(),
        version: "1.0.1".into(),
        sequence,
        release_time: NOW - DAY,
        expires: NOW + 7 * DAY,
        version_floor: Some("1.0.0".into()),
        payloads: [(
            "usr.img".to_owned(),
            PayloadRef {
                sha256: "ab".repeat(32),
                size: 1 << 20,
            },
        )]
        .into(),
    }
}

fn signed<T: Serialize>(doc: &T, key: &SecretKey) -> (Vec<u8>, Vec<u8>) {
    sign_document(doc, key).unwrap()
}

fn check(doc: &[u8], sig: &[u8]) -> Result<Manifest, VerifyError> {
    verify_manifest(&keyset(1), doc, sig, "alpha", NOW, None)
}

#[test]
fn good() {
    let (keys_json, keys_sig) = signed(&keyset(1), &root());
    assert_eq!(
        verify_keyset(&root_keys(), &keys_json, &keys_sig, NOW, None),
        Ok(keyset(1))
    );
    let (doc, sig) = signed(&manifest(1), &signer());
    assert_eq!(check(&doc, &sig), Ok(manifest(1)));
}

#[test]
fn flipped_byte_in_manifest() {
    let (doc, sig) = signed(&manifest(1), &signer());
    // A flip that keeps the JSON valid and canonical is caught by the signature.
    let pos = doc.windows(5).position(|w| w == b"1.0.1").unwrap() + 4;
    let mut bad = doc.clone();
    bad[pos] = b'2';
    assert!(matches!(
        check(&bad, &sig),
        Err(VerifyError::BadSignature { .. })
    ));
    // Every single-bit flip anywhere is refused.
    for i in 0..doc.len() {
        let mut bad = doc.clone();
        bad[i] ^= 0x01;
        assert!(check(&bad, &sig).is_err(), "flip at {i} accepted");
    }
}

#[test]
fn flipped_byte_in_sig() {
    let (doc, sig) = signed(&manifest(1), &signer());
    let text = String::from_utf8(sig.clone()).unwrap();
    let hex_start = text.find("\"sig\":\"").unwrap() + 7;
    let mut bad = sig.clone();
    bad[hex_start + 10] = if bad[hex_start + 10] == b'0' {
        b'1'
    } else {
        b'0'
    };
    assert!(matches!(
        check(&doc, &bad),
        Err(VerifyError::BadSignature { .. })
    ));
    for i in 0..sig.len() {
        let mut bad = sig.clone();
        bad[i] ^= 0x01;
        assert!(check(&doc, &bad).is_err(), "flip at {i} accepted");
    }
}

#[test]
fn truncated() {
    let (doc, sig) = signed(&manifest(1), &signer());
    for len in [0, 1, doc.len() / 2, doc.len() - 1] {
        let err = check(&doc[..len], &sig).unwrap_err();
        assert!(
            matches!(&err, VerifyError::Malformed { what, .. } if what == "channels/alpha/manifest.json"),
            "{err}"
        );
    }
    for len in [0, sig.len() / 2, sig.len() - 1] {
        let err = check(&doc, &sig[..len]).unwrap_err();
        assert!(
            matches!(&err, VerifyError::Malformed { what, .. } if what.ends_with(".sig")),
            "{err}"
        );
    }
    let (keys_json, keys_sig) = signed(&keyset(1), &root());
    let err = verify_keyset(
        &root_keys(),
        &keys_json[..keys_json.len() - 1],
        &keys_sig,
        NOW,
        None,
    )
    .unwrap_err();
    assert!(matches!(err, VerifyError::Malformed { .. }), "{err}");
    let err = verify_keyset(&root_keys(), &keys_json, &keys_sig[..10], NOW, None).unwrap_err();
    assert!(matches!(err, VerifyError::Malformed { .. }), "{err}");
}

#[test]
fn unknown_key() {
    let (doc, sig) = signed(&manifest(1), &stranger());
    let err = check(&doc, &sig).unwrap_err();
    assert_eq!(
        err,
        VerifyError::UnknownKey {
            what: "channels/alpha/manifest.json".into(),
            key_id: stranger().key_id(),
            trusted: "keys.json".into()
        }
    );
    assert!(
        err.to_string().contains(stranger().key_id().as_str()),
        "{err}"
    );
    let (keys_json, keys_sig) = signed(&keyset(1), &stranger());
    assert!(matches!(
        verify_keyset(&root_keys(), &keys_json, &keys_sig, NOW, None),
        Err(VerifyError::UnknownKey { .. })
    ));
}

#[test]
fn root_key_cannot_sign_manifests_nor_signing_key_keysets() {
    let (doc, sig) = signed(&manifest(1), &root());
    assert!(
        matches!(check(&doc, &sig), Err(VerifyError::UnknownKey { key_id, .. }) if key_id == root().key_id())
    );
    let (keys_json, keys_sig) = signed(&keyset(2), &signer());
    assert!(matches!(
        verify_keyset(&root_keys(), &keys_json, &keys_sig, NOW, None),
        Err(VerifyError::UnknownKey { .. })
    ));
}

#[test]
fn signature_from_another_key_claiming_a_trusted_id() {
    let (doc, _) = signed(&manifest(1), &signer());
    let mut forged = stranger().sign(&doc);
    forged.key_id = signer().key_id();
    assert!(matches!(
        check(&doc, &forged.to_file_bytes()),
        Err(VerifyError::BadSignature { .. })
    ));
}

#[test]
fn expired() {
    let (doc, sig) = signed(&manifest(1), &signer());
    let at = NOW + 7 * DAY;
    let err = verify_manifest(&keyset(1), &doc, &sig, "alpha", at, None).unwrap_err();
    assert_eq!(
        err,
        VerifyError::Expired {
            what: "channels/alpha/manifest.json".into(),
            expired_at: at,
            now: at
        }
    );
    assert!(verify_manifest(&keyset(1), &doc, &sig, "alpha", at - 1, None).is_ok());

    let (keys_json, keys_sig) = signed(&keyset(1), &root());
    let later = NOW + 30 * DAY + 5;
    assert!(matches!(
        verify_keyset(&root_keys(), &keys_json, &keys_sig, later, None),
        Err(VerifyError::Expired { expired_at, now, .. }) if expired_at == NOW + 30 * DAY && now == later
    ));
    // A manifest is refused under an expired key set even if it has not expired itself.
    let short = KeySet {
        expires: NOW,
        ..keyset(1)
    };
    assert!(matches!(
        verify_manifest(&short, &doc, &sig, "alpha", NOW, None),
        Err(VerifyError::Expired { what, .. }) if what == "keys.json"
    ));
}

#[test]
fn replayed_and_forked() {
    let (doc5, sig5) = signed(&manifest(5), &signer());
    let accepted = check(&doc5, &sig5).unwrap();
    let seen = SeenManifest::of(&accepted, &doc5);

    let (doc4, sig4) = signed(&manifest(4), &signer());
    let err = verify_manifest(&keyset(1), &doc4, &sig4, "alpha", NOW, Some(&seen)).unwrap_err();
    assert_eq!(
        err,
        VerifyError::Replay {
            what: "channels/alpha/manifest.json".into(),
            seen: 5,
            got: 4
        }
    );

    // The same document again is fine (a periodic check that finds nothing new).
    assert!(verify_manifest(&keyset(1), &doc5, &sig5, "alpha", NOW, Some(&seen)).is_ok());

    let other = Manifest {
        version: "1.0.2".into(),
        ..manifest(5)
    };
    let (fork, fork_sig) = signed(&other, &signer());
    assert!(matches!(
        verify_manifest(&keyset(1), &fork, &fork_sig, "alpha", NOW, Some(&seen)),
        Err(VerifyError::Fork { sequence: 5, .. })
    ));

    let (doc6, sig6) = signed(&manifest(6), &signer());
    assert!(verify_manifest(&keyset(1), &doc6, &sig6, "alpha", NOW, Some(&seen)).is_ok());
}

#[test]
fn wrong_channel() {
    let beta = Manifest {
        channel: "beta".into(),
        ..manifest(1)
    };
    let (doc, sig) = signed(&beta, &signer());
    assert_eq!(
        check(&doc, &sig),
        Err(VerifyError::WrongChannel {
            expected: "alpha".into(),
            got: "beta".into()
        })
    );
}

#[test]
fn keyset_rollback() {
    let (keys_json, keys_sig) = signed(&keyset(2), &root());
    assert_eq!(
        verify_keyset(&root_keys(), &keys_json, &keys_sig, NOW, Some(3)),
        Err(VerifyError::KeySetRollback { seen: 3, got: 2 })
    );
    assert!(verify_keyset(&root_keys(), &keys_json, &keys_sig, NOW, Some(2)).is_ok());
    assert!(verify_keyset(&root_keys(), &keys_json, &keys_sig, NOW, Some(1)).is_ok());
}

#[test]
fn non_canonical_bytes_are_refused_even_when_signed() {
    let pretty = serde_json::to_vec_pretty(&manifest(1)).unwrap();
    let sig = signer().sign(&pretty).to_file_bytes();
    let err = check(&pretty, &sig).unwrap_err();
    assert!(
        matches!(&err, VerifyError::Malformed { reason, .. } if reason.contains("canonical")),
        "{err}"
    );

    let (doc, sig) = signed(&manifest(1), &signer());
    let spaced = String::from_utf8(sig).unwrap().replace(',', ", ");
    assert!(matches!(
        check(&doc, spaced.as_bytes()),
        Err(VerifyError::Malformed { .. })
    ));
}

#[test]
fn signed_but_invalid_manifest_is_malformed() {
    let mut bad = manifest(1);
    bad.payloads.insert(
        "../../boot".into(),
        PayloadRef {
            sha256: "cd".repeat(32),
            size: 1,
        },
    );
    let (doc, sig) = signed(&bad, &signer());
    assert!(matches!(
        check(&doc, &sig),
        Err(VerifyError::Malformed { .. })
    ));
    let (doc, sig) = signed(&keyset(1), &signer());
    assert!(
        matches!(check(&doc, &sig), Err(VerifyError::Malformed { .. })),
        "a keys.json is not a manifest"
    );
}
