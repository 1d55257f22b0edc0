//! Ed25519 keys, key ids and detached signatures (the `.sig` files of a channel repository).
//!
//! A [`KeyId`] is the lowercase hex sha256 of the 32-byte public key. A signature file is the
//! canonical JSON `{"key_id":"<64 hex>","sig":"<128 hex>"}` over the exact bytes of the signed
//! file. Secret key files are `{"key_id":…,"public":…,"secret":…,"type":"ed25519"}`.
//! See DESIGN.md "Update channel repository" and SPECS.md S14.

use crate::canonical::{self, CanonicalError};
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
use std::fmt;
use std::str::FromStr;

/// The only key type this repository format knows.
pub const KEY_TYPE_ED25519: &str = "ed25519";

/// Why a key, key id or signature could not be made or read.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The operating system's random source failed.
    #[error("reading OS randomness for a new key: {0}")]
    Random(String),
    /// A hex field of the wrong length or alphabet.
    #[error("{what}: expected {expected_len} lowercase hex characters, got {got:?}")]
    BadHex {
        /// Which field.
        what: &'static str,
        /// Expected number of hex characters.
        expected_len: usize,
        /// What was found (truncated to 80 characters).
        got: String,
    },
    /// 32 bytes that are not a valid ed25519 public key.
    #[error("not a valid ed25519 public key: {0}")]
    InvalidPublicKey(String),
    /// A key file whose `type` is not ed25519.
    #[error("unsupported key type {0:?} (only \"ed25519\")")]
    UnsupportedType(String),
    /// A key file whose `public` or `key_id` does not belong to its `secret`.
    #[error("key file inconsistent: {field} does not match the secret key (file says {claimed}, secret gives {actual})")]
    Mismatch {
        /// `public` or `key_id`.
        field: &'static str,
        /// The value in the file.
        claimed: String,
        /// The value derived from the secret.
        actual: String,
    },
    /// A key or signature file that is not the expected JSON.
    #[error("key file is not valid JSON of the expected shape: {0}")]
    Json(String),
    /// A canonical JSON problem.
    #[error(transparent)]
    Canonical(#[from] CanonicalError),
}

fn decode_hex<const N: usize>(what: &'static str, s: &str) -> Result<[u8; N], KeyError> {
    let bad = || KeyError::BadHex {
        what,
        expected_len: 2 * N,
        got: s.chars().take(80).collect(),
    };
    if s.len() != 2 * N
        || !s
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(bad());
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(s, &mut out).map_err(|_| bad())?;
    Ok(out)
}

/// The lowercase hex sha256 of a 32-byte ed25519 public key (64 characters).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct KeyId(String);

impl KeyId {
    /// The id of `key`.
    pub fn of(key: &PublicKey) -> KeyId {
        KeyId(hex::encode(Sha256::digest(key.0.as_bytes())))
    }

    /// The 64 hex characters.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for KeyId {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, KeyError> {
        decode_hex::<32>("key id", s)?;
        Ok(KeyId(s.to_owned()))
    }
}

impl<'de> Deserialize<'de> for KeyId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({})", self.0)
    }
}

/// An ed25519 public key; serialized as 64 lowercase hex characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    /// The key from its 32 bytes.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<PublicKey, KeyError> {
        VerifyingKey::from_bytes(bytes)
            .map(PublicKey)
            .map_err(|e| KeyError::InvalidPublicKey(e.to_string()))
    }

    /// The 32 bytes of the key.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The key's id.
    pub fn key_id(&self) -> KeyId {
        KeyId::of(self)
    }

    /// Whether `sig` is a valid (strict, non-malleable) signature of `message` by this key.
    /// The signature's `key_id` is not consulted here.
    pub fn verify(&self, message: &[u8], sig: &Signature) -> bool {
        self.0.verify_strict(message, &sig.sig).is_ok()
    }
}

impl FromStr for PublicKey {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, KeyError> {
        PublicKey::from_bytes(&decode_hex::<32>("public key", s)?)
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0.as_bytes()))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

impl Serialize for PublicKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PublicKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// An ed25519 secret (signing) key. `Debug` never prints the secret.
#[derive(Clone)]
pub struct SecretKey(SigningKey);

#[derive(Serialize, Deserialize)]
struct SecretKeyFile {
    #[serde(rename = "type")]
    kind: String,
    secret: String,
    public: String,
    key_id: String,
}

impl SecretKey {
    /// A new key from the operating system's random source.
    pub fn generate() -> Result<SecretKey, KeyError> {
        let mut seed = [0u8; 32];
        getrandom::getrandom(&mut seed).map_err(|e| KeyError::Random(e.to_string()))?;
        Ok(SecretKey::from_seed(&seed))
    }

    /// The key whose 32-byte secret (seed) is `seed`; for tests and reproducible fixtures.
    pub fn from_seed(seed: &[u8; 32]) -> SecretKey {
        SecretKey(SigningKey::from_bytes(seed))
    }

    /// The matching public key.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    /// The id of the matching public key.
    pub fn key_id(&self) -> KeyId {
        self.public().key_id()
    }

    /// Signs `message` (ed25519 is deterministic: same key and message, same signature).
    pub fn sign(&self, message: &[u8]) -> Signature {
        Signature {
            key_id: self.key_id(),
            sig: self.0.sign(message),
        }
    }

    /// The key file text: canonical JSON with `type`, `secret`, `public` and `key_id`, plus a
    /// trailing newline. Keep it private (mode 0600).
    pub fn to_file_text(&self) -> String {
        let file = SecretKeyFile {
            kind: KEY_TYPE_ED25519.to_owned(),
            secret: hex::encode(self.0.to_bytes()),
            public: self.public().to_string(),
            key_id: self.key_id().to_string(),
        };
        let bytes = canonical::to_vec(&file).expect("key file has no floats");
        String::from_utf8(bytes).expect("canonical JSON is UTF-8") + "\n"
    }

    /// Reads a key file written by [`SecretKey::to_file_text`] (surrounding whitespace allowed),
    /// refusing one whose `public` or `key_id` do not belong to its `secret`.
    pub fn from_file_text(text: &str) -> Result<SecretKey, KeyError> {
        let file: SecretKeyFile =
            serde_json::from_str(text.trim()).map_err(|e| KeyError::Json(e.to_string()))?;
        if file.kind != KEY_TYPE_ED25519 {
            return Err(KeyError::UnsupportedType(file.kind));
        }
        let key = SecretKey::from_seed(&decode_hex::<32>("secret key", &file.secret)?);
        let (public, key_id) = (key.public().to_string(), key.key_id().to_string());
        if file.public != public {
            return Err(KeyError::Mismatch {
                field: "public",
                claimed: file.public,
                actual: public,
            });
        }
        if file.key_id != key_id {
            return Err(KeyError::Mismatch {
                field: "key_id",
                claimed: file.key_id,
                actual: key_id,
            });
        }
        Ok(key)
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey(key_id={}, secret=<redacted>)", self.key_id())
    }
}

/// A detached signature: who signed (`key_id`) and the 64 signature bytes (`sig`, hex).
#[derive(Clone, PartialEq, Eq)]
pub struct Signature {
    /// The id of the signing key.
    pub key_id: KeyId,
    sig: ed25519_dalek::Signature,
}

#[derive(Serialize, Deserialize)]
struct SignatureFile {
    key_id: KeyId,
    sig: String,
}

impl Signature {
    /// The `.sig` file bytes (canonical JSON, no trailing newline).
    pub fn to_file_bytes(&self) -> Vec<u8> {
        canonical::to_vec(self).expect("signature has no floats")
    }

    /// Parses `.sig` file bytes, refusing non-canonical or truncated ones.
    pub fn from_file_bytes(bytes: &[u8]) -> Result<Signature, KeyError> {
        Ok(canonical::from_slice(bytes)?)
    }

    /// The 64 signature bytes.
    pub fn to_bytes(&self) -> [u8; 64] {
        self.sig.to_bytes()
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Signature(key_id={}, sig={})",
            self.key_id,
            hex::encode(self.to_bytes())
        )
    }
}

impl Serialize for Signature {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        SignatureFile {
            key_id: self.key_id.clone(),
            sig: hex::encode(self.to_bytes()),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Signature {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let file = SignatureFile::deserialize(d)?;
        let bytes = decode_hex::<64>("signature", &file.sig).map_err(serde::de::Error::custom)?;
        Ok(Signature {
            key_id: file.key_id,
            sig: ed25519_dalek::Signature::from_bytes(&bytes),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> SecretKey {
        SecretKey::from_seed(&[n; 32])
    }

    #[test]
    fn key_id_is_sha256_of_public_bytes() {
        let k = key(1).public();
        assert_eq!(
            k.key_id().as_str(),
            hex::encode(Sha256::digest(k.to_bytes()))
        );
        assert_eq!(k.key_id().as_str().len(), 64);
        assert_eq!(k.to_string().parse::<PublicKey>().unwrap(), k);
    }

    #[test]
    fn generated_keys_differ_and_sign() {
        let (a, b) = (
            SecretKey::generate().unwrap(),
            SecretKey::generate().unwrap(),
        );
        assert_ne!(a.public(), b.public());
        let sig = a.sign(b"hello");
        assert!(a.public().verify(b"hello", &sig));
        assert!(!b.public().verify(b"hello", &sig));
        assert!(!a.public().verify(b"hellp", &sig));
    }

    #[test]
    fn key_file_round_trip() {
        let k = key(7);
        let text = k.to_file_text();
        assert!(text.starts_with("{\"key_id\":\""), "{text}");
        let back = SecretKey::from_file_text(&text).unwrap();
        assert_eq!(back.public(), k.public());
        assert!(!format!("{back:?}").contains(&hex::encode([7u8; 32])));
    }

    #[test]
    fn key_file_refuses_mismatch() {
        let text = key(7).to_file_text();
        let other = key(8);
        let wrong_public = text.replace(&key(7).public().to_string(), &other.public().to_string());
        assert!(matches!(
            SecretKey::from_file_text(&wrong_public),
            Err(KeyError::Mismatch {
                field: "public",
                ..
            })
        ));
        let wrong_id = text.replace(key(7).key_id().as_str(), other.key_id().as_str());
        assert!(matches!(
            SecretKey::from_file_text(&wrong_id),
            Err(KeyError::Mismatch {
                field: "key_id",
                ..
            })
        ));
        let wrong_type = text.replace("ed25519", "rsa");
        assert!(matches!(
            SecretKey::from_file_text(&wrong_type),
            Err(KeyError::UnsupportedType(_))
        ));
        assert!(SecretKey::from_file_text(&text[..text.len() / 2]).is_err());
    }

    #[test]
    fn signature_file_round_trip_and_refusals() {
        let sig = key(1).sign(b"doc");
        let bytes = sig.to_file_bytes();
        assert_eq!(Signature::from_file_bytes(&bytes).unwrap(), sig);
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert_eq!(
            text,
            format!(
                r#"{{"key_id":"{}","sig":"{}"}}"#,
                sig.key_id,
                hex::encode(sig.to_bytes())
            )
        );
        assert!(
            Signature::from_file_bytes(&bytes[..bytes.len() - 1]).is_err(),
            "truncated"
        );
        assert!(
            Signature::from_file_bytes(text.replace("\",\"sig", "\", \"sig").as_bytes()).is_err(),
            "non-canonical"
        );
        let upper = text.replace(sig.key_id.as_str(), &sig.key_id.as_str().to_uppercase());
        assert!(
            Signature::from_file_bytes(upper.as_bytes()).is_err(),
            "uppercase key id"
        );
    }
}
