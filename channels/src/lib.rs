//! The channel repository format, shared by the publisher (`image-builder publish`) and the
//! client (`update-engine`): canonical JSON, ed25519 keys and signatures, the root → signing key
//! chain with rotation, channel manifests, update selection and streaming payload verification, and what a release's payload holds ([`release`]).
//!
//! Implements DESIGN.md "Update channel repository" and the TUF essentials of SPECS.md S14:
//! signatures over canonical bytes, expiry (freeze attacks), monotonic key set versions
//! (rollback) and manifest sequences (replay, fork), payloads fetched by hash and length.
//! No HTTP here: verification takes bytes; the engine's `ChannelClient` fetches them.

pub mod canonical;
pub mod documents;
pub mod keys;
pub mod payload;
pub mod release;
pub mod repo;
pub mod select;
pub mod verify;

pub use canonical::CanonicalError;
pub use documents::{
    manifest_path, manifest_sig_path, validate_channel_name, validate_payload_name, KeySet,
    Manifest, PayloadRef, Release, RootKeys, Version, VersionError, CHANNELS_DIR, KEYS_JSON,
    KEYS_SIG, PAYLOADS_DIR, ROOT_JSON,
};
pub use keys::{KeyError, KeyId, PublicKey, SecretKey, Signature};
pub use payload::{PayloadError, PayloadVerifier, VerifyingReader};
pub use release::{DiskInfo, FileInfo, ReleaseInfo};
pub use repo::{Repo, RepoError};
pub use select::{select_update, Decision, RefuseReason};
pub use verify::{sign_document, verify_keyset, verify_manifest, SeenManifest, VerifyError};
