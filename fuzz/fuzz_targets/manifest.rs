//! The documents of a channel repository a machine reads: `keys.json` ([`KeySet`]), the root
//! keys, channel manifests and `release.json`. Parsing never panics and what parses writes back
//! to the same document. A manifest that validates offers no payload path outside
//! `payloads/sha256/` and is "up to date" on a machine booted from its own version. Signed
//! with a trusted key, the bytes verify exactly when they are a valid, unexpired manifest of
//! the channel; the same bytes again pass the replay check, an older sequence or a flipped
//! signature bit does not.

#![no_main]

use channels::canonical;
use channels::{
    select_update, verify_manifest, Decision, KeySet, Manifest, RootKeys, SecretKey, SeenManifest,
    Signature, VerifyError,
};
use libfuzzer_sys::fuzz_target;

/// The verifier's clock.
const NOW: u64 = 1_767_225_600;

fuzz_target!(|data: &[u8]| {
    round_trip::<KeySet>(data);
    round_trip::<RootKeys>(data);
    if let Ok(info) = serde_json::from_slice::<channels::ReleaseInfo>(data) {
        let text = serde_json::to_vec(&info).expect("release.json writes");
        let back: channels::ReleaseInfo = serde_json::from_slice(&text).expect("reads back");
        assert_eq!(back, info);
    }

    let manifest = round_trip::<Manifest>(data);
    let valid = manifest.as_ref().filter(|m| m.validate().is_ok());
    if let Some(m) = valid {
        for (name, payload) in &m.payloads {
            let path = payload.path();
            assert!(
                path.starts_with("payloads/sha256/") && !path.contains(".."),
                "{name}: {path}"
            );
        }
        assert_eq!(select_update(m, &m.version), Decision::UpToDate);
    }
    if let Some(m) = &manifest {
        let _ = select_update(m, "1.0.0");
    }

    let key = SecretKey::from_seed(&[7; 32]);
    let keys = KeySet {
        version: 1,
        expires: u64::MAX,
        keys: vec![key.public()],
    };
    let channel = manifest.as_ref().map_or("alpha", |m| m.channel.as_str());
    let sig = key.sign(data);
    let result = verify_manifest(&keys, data, &sig.to_file_bytes(), channel, NOW, None);
    let want = valid.is_some_and(|m| m.expires > NOW);
    assert_eq!(result.is_ok(), want, "{result:?}");
    let Ok(m) = result else {
        return;
    };
    let seen = SeenManifest::of(&m, data);
    assert!(verify_manifest(&keys, data, &sig.to_file_bytes(), channel, NOW, Some(&seen)).is_ok());
    if m.sequence < u64::MAX {
        let later = SeenManifest {
            sequence: m.sequence + 1,
            ..seen
        };
        let replay = verify_manifest(
            &keys,
            data,
            &sig.to_file_bytes(),
            channel,
            NOW,
            Some(&later),
        );
        assert!(
            matches!(replay, Err(VerifyError::Replay { .. })),
            "{replay:?}"
        );
    }
    let mut bytes = sig.to_bytes();
    bytes[data.len() % 64] ^= 1 << (data.len() % 8);
    let flipped = flipped_signature(&sig, &bytes);
    let bad = verify_manifest(&keys, data, &flipped, channel, NOW, None);
    assert!(
        matches!(bad, Err(VerifyError::BadSignature { .. })),
        "{bad:?}"
    );
});

/// The document in `data`, if it is one; asserts that it writes as canonical JSON that reads
/// back to the same document.
fn round_trip<T>(data: &[u8]) -> Option<T>
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let doc: T = canonical::from_slice(data).ok()?;
    let written = canonical::to_vec(&doc).expect("a document writes as canonical JSON");
    let back: T = canonical::from_slice(&written).expect("its canonical form reads back");
    assert_eq!(back, doc);
    Some(doc)
}

/// The `.sig` file of `sig` with its 64 signature bytes replaced by `bytes`.
fn flipped_signature(sig: &Signature, bytes: &[u8; 64]) -> Vec<u8> {
    format!(
        "{{\"key_id\":\"{}\",\"sig\":\"{}\"}}",
        sig.key_id,
        hex(bytes)
    )
    .into_bytes()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
