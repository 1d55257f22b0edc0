//! Signing and client-side verification of keys.json and channel manifests (pure; bytes in,
//! documents out).
//!
//! Trust chain (SPECS.md S14, TUF essentials reduced to two roles): the image's [`RootKeys`]
//! sign the [`KeySet`]; a key of the KeySet signs each channel [`Manifest`]. A verifier:
//! 1. parses the `.sig` file and the document as canonical JSON (truncated or non-canonical
//!    bytes are [`VerifyError::Malformed`]);
//! 2. finds the signing key by id among the trusted keys ([`VerifyError::UnknownKey`]) and checks
//!    the signature over the exact received bytes ([`VerifyError::BadSignature`]);
//! 3. checks the channel, expiry (freeze attack), then version/sequence against what this machine has seen
//!    (rollback and replay attacks), then the channel.

use crate::canonical::{self, CanonicalError};
use crate::documents::{KeySet, Manifest, RootKeys};
use crate::keys::{KeyId, PublicKey, SecretKey, Signature};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// Why a document was refused. Every variant names the document (`what`) it is about.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The signature does not match the document bytes.
    #[error("{what}: bad signature by key {key_id}")]
    BadSignature {
        /// The document.
        what: String,
        /// The key the signature claims.
        key_id: KeyId,
    },
    /// The signature names a key that is not trusted for this document.
    #[error("{what}: signed by unknown key {key_id} (not in {trusted})")]
    UnknownKey {
        /// The document.
        what: String,
        /// The key the signature claims.
        key_id: KeyId,
        /// Where the key was looked for (`root keys` or `keys.json`).
        trusted: String,
    },
    /// Truncated, non-canonical or ill-shaped document or signature file.
    #[error("{what}: malformed: {reason}")]
    Malformed {
        /// The document or signature file.
        what: String,
        /// What is wrong.
        reason: String,
    },
    /// The document's `expires` is not after `now`.
    #[error("{what}: expired at {expired_at} (unix seconds), now is {now}")]
    Expired {
        /// The document.
        what: String,
        /// Its `expires`.
        expired_at: u64,
        /// The clock used.
        now: u64,
    },
    /// A sequence lower than one this machine has already seen.
    #[error("{what}: replayed: sequence {got} is older than the last seen sequence {seen}")]
    Replay {
        /// The document.
        what: String,
        /// Highest sequence seen before.
        seen: u64,
        /// The sequence received.
        got: u64,
    },
    /// The same sequence as one already seen, but different bytes: the channel forked (a
    /// compromised or misused signing key).
    #[error("{what}: fork: sequence {sequence} was already seen with different content (sha256 {seen_sha256}, now {got_sha256})")]
    Fork {
        /// The document.
        what: String,
        /// The sequence both documents carry.
        sequence: u64,
        /// sha256 of the bytes seen before.
        seen_sha256: String,
        /// sha256 of the bytes received.
        got_sha256: String,
    },
    /// A manifest signed for another channel.
    #[error("manifest is for channel {got:?}, expected {expected:?}")]
    WrongChannel {
        /// The channel asked for.
        expected: String,
        /// The channel in the manifest.
        got: String,
    },
    /// A keys.json older than the newest one this machine has seen.
    #[error("keys.json: rollback: version {got} is older than the last seen version {seen}")]
    KeySetRollback {
        /// Highest version seen before.
        seen: u64,
        /// The version received.
        got: u64,
    },
}

/// What a client remembers of the last manifest it accepted on a channel, to refuse replays
/// and forks. Store it (e.g. in the engine's state file) after a successful [`verify_manifest`].
/// Sequences are per channel: keep one per channel, and start afresh (`None`) when the machine
/// moves to another channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct SeenManifest {
    /// Its sequence.
    pub sequence: u64,
    /// Lowercase hex sha256 of its exact bytes.
    pub sha256: String,
}

impl SeenManifest {
    /// What to remember of the manifest whose bytes are `manifest_json`.
    pub fn of(manifest: &Manifest, manifest_json: &[u8]) -> SeenManifest {
        SeenManifest {
            sequence: manifest.sequence,
            sha256: hex::encode(Sha256::digest(manifest_json)),
        }
    }
}

/// Serializes `doc` as canonical JSON and signs it: `(document bytes, .sig file bytes)`.
pub fn sign_document<T: Serialize>(
    doc: &T,
    key: &SecretKey,
) -> Result<(Vec<u8>, Vec<u8>), CanonicalError> {
    let bytes = canonical::to_vec(doc)?;
    let sig = key.sign(&bytes).to_file_bytes();
    Ok((bytes, sig))
}

/// Verifies `keys.json` (`keys_json`, `sig`) against the image's root keys, at time `now`,
/// refusing a version below `highest_seen`.
pub fn verify_keyset(
    root: &RootKeys,
    keys_json: &[u8],
    sig: &[u8],
    now: u64,
    highest_seen: Option<u64>,
) -> Result<KeySet, VerifyError> {
    let what = crate::documents::KEYS_JSON;
    let keyset: KeySet = verify_signed(what, keys_json, sig, &root.keys, "root keys")?;
    check_expiry(what, keyset.expires, now)?;
    match highest_seen {
        Some(seen) if keyset.version < seen => Err(VerifyError::KeySetRollback {
            seen,
            got: keyset.version,
        }),
        _ => Ok(keyset),
    }
}

/// Verifies a channel manifest (`manifest_json`, `sig`) against a verified [`KeySet`] (which
/// must itself not be expired at `now`), for `channel`, refusing a sequence older than
/// `last_seen`, or the same sequence with different bytes. The same bytes again are accepted.
pub fn verify_manifest(
    keys: &KeySet,
    manifest_json: &[u8],
    sig: &[u8],
    channel: &str,
    now: u64,
    last_seen: Option<&SeenManifest>,
) -> Result<Manifest, VerifyError> {
    check_expiry(crate::documents::KEYS_JSON, keys.expires, now)?;
    let what = crate::documents::manifest_path(channel);
    let manifest: Manifest = verify_signed(&what, manifest_json, sig, &keys.keys, "keys.json")?;
    manifest
        .validate()
        .map_err(|reason| VerifyError::Malformed {
            what: what.clone(),
            reason,
        })?;
    if manifest.channel != channel {
        return Err(VerifyError::WrongChannel {
            expected: channel.to_owned(),
            got: manifest.channel,
        });
    }
    check_expiry(&what, manifest.expires, now)?;
    if let Some(seen) = last_seen {
        if manifest.sequence < seen.sequence {
            return Err(VerifyError::Replay {
                what,
                seen: seen.sequence,
                got: manifest.sequence,
            });
        }
        let got = SeenManifest::of(&manifest, manifest_json);
        if manifest.sequence == seen.sequence && got.sha256 != seen.sha256 {
            return Err(VerifyError::Fork {
                what,
                sequence: seen.sequence,
                seen_sha256: seen.sha256.clone(),
                got_sha256: got.sha256,
            });
        }
    }
    Ok(manifest)
}

fn verify_signed<T: serde::de::DeserializeOwned>(
    what: &str,
    bytes: &[u8],
    sig: &[u8],
    trusted: &[PublicKey],
    trusted_name: &str,
) -> Result<T, VerifyError> {
    let malformed = |what: String, reason: String| VerifyError::Malformed { what, reason };
    let signature = Signature::from_file_bytes(sig)
        .map_err(|e| malformed(format!("{what}.sig"), e.to_string()))?;
    let doc: T =
        canonical::from_slice(bytes).map_err(|e| malformed(what.to_owned(), e.to_string()))?;
    let key = trusted
        .iter()
        .find(|k| k.key_id() == signature.key_id)
        .ok_or_else(|| VerifyError::UnknownKey {
            what: what.to_owned(),
            key_id: signature.key_id.clone(),
            trusted: trusted_name.to_owned(),
        })?;
    if !key.verify(bytes, &signature) {
        return Err(VerifyError::BadSignature {
            what: what.to_owned(),
            key_id: signature.key_id,
        });
    }
    Ok(doc)
}

fn check_expiry(what: &str, expires: u64, now: u64) -> Result<(), VerifyError> {
    if now >= expires {
        return Err(VerifyError::Expired {
            what: what.to_owned(),
            expired_at: expires,
            now,
        });
    }
    Ok(())
}

#[cfg(test)]
#[path = "verify_tests.rs"]
mod tests;
