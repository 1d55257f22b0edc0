//! Keys and signatures (`channels::keys`, `verify_keyset`): `.sig` files, public keys, key ids
//! and secret key files never make the readers panic, and each reads back from what it writes.
//! `keys.json` verification never panics on any document and signature; signed by a root key,
//! a document verifies exactly when it is an unexpired key set not older than the one seen.
//!
//! Input: `<keys.json>\0<.sig>\0<key text>`.

#![no_main]

use std::str::FromStr;

use channels::{verify_keyset, KeyId, KeySet, PublicKey, RootKeys, SecretKey, Signature};
use libfuzzer_sys::fuzz_target;

const NOW: u64 = 1_767_225_600;

fuzz_target!(|data: &[u8]| {
    let parts = fuzz::split_nul(data, 3);
    let (keys_json, sig_file, key_text) = (parts[0], parts[1], parts[2]);
    let key_text = String::from_utf8_lossy(key_text);

    if let Ok(sig) = Signature::from_file_bytes(sig_file) {
        let again = Signature::from_file_bytes(&sig.to_file_bytes()).expect("a .sig reads back");
        assert_eq!(again, sig);
    }
    if let Ok(id) = KeyId::from_str(&key_text) {
        assert_eq!(id.as_str(), key_text);
    }
    if let Ok(public) = PublicKey::from_str(&key_text) {
        assert_eq!(public.to_string(), key_text);
        assert_eq!(PublicKey::from_bytes(&public.to_bytes()).ok(), Some(public));
    }
    if let Ok(secret) = SecretKey::from_file_text(&key_text) {
        let again =
            SecretKey::from_file_text(&secret.to_file_text()).expect("a key file reads back");
        assert_eq!(again.public(), secret.public());
    }

    let root_key = SecretKey::from_seed(&[3; 32]);
    let root = RootKeys {
        keys: vec![root_key.public()],
    };
    let _ = verify_keyset(&root, keys_json, sig_file, NOW, None);

    let seen = Some(2);
    let sig = root_key.sign(keys_json).to_file_bytes();
    let result = verify_keyset(&root, keys_json, &sig, NOW, seen);
    let keyset = channels::canonical::from_slice::<KeySet>(keys_json).ok();
    let want = keyset.is_some_and(|k| k.expires > NOW && k.version >= 2);
    assert_eq!(result.is_ok(), want, "{result:?}");
});
