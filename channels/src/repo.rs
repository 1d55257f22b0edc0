//! The publisher's side: create and update a channel repository in a local directory (which is
//! then served as static files by any HTTP server or object store).
//!
//! Every file is written to a temporary name in its final directory, fsynced and renamed into
//! place, so a reader never sees a partial file. A manifest and its signature are two files: the
//! new `manifest.json.sig` is renamed first, then `manifest.json`. A client that fetches both
//! while a publish is in progress may get a mismatched pair; it sees
//! [`VerifyError::BadSignature`], keeps what it had, and
//! succeeds at its next check. Nothing unsigned is ever accepted. `keys.json` is written the
//! same way. Concurrent publishers to one directory are not coordinated; run one at a time.
//! DESIGN.md "Update channel repository".

use crate::canonical::{self, CanonicalError};
use crate::documents::{
    manifest_path, manifest_sig_path, KeySet, Manifest, PayloadRef, Release, RootKeys, Version,
    KEYS_JSON, KEYS_SIG, PAYLOADS_DIR, ROOT_JSON,
};
use crate::keys::{KeyId, PublicKey, SecretKey};
use crate::verify::{self, sign_document, VerifyError};
use sha2::{Digest, Sha256};
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// Why a repository operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// A file system operation failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done (`reading`, `writing`, …).
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// A repository file that is not canonical JSON of the expected shape.
    #[error("{}: {source}", path.display())]
    Canonical {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: CanonicalError,
    },
    /// `init` on a directory that already has a keys.json.
    #[error("{} already exists; the repository is initialized (use rotate_keys to change keys)", path.display())]
    AlreadyInitialized {
        /// The existing keys.json.
        path: PathBuf,
    },
    /// A key set with no signing keys.
    #[error("refusing a key set without signing keys")]
    NoSigningKeys,
    /// The key used to sign a manifest is not in keys.json.
    #[error("key {key_id} is not a channel signing key of this repository (not in keys.json)")]
    NotSigningKey {
        /// The key used.
        key_id: KeyId,
    },
    /// The key used to sign keys.json is not in root.json.
    #[error("key {key_id} is not a root key of this repository (not in root.json)")]
    NotRootKey {
        /// The key used.
        key_id: KeyId,
    },
    /// A publish of a version not newer than the channel's current one, without `force`.
    #[error("channel {channel} already has version {current}; refusing to publish {offered} (not newer; use force)")]
    NotNewer {
        /// The channel.
        channel: String,
        /// Its current version.
        current: String,
        /// The version offered.
        offered: String,
    },
    /// A promote of a version that is not the source channel's current release.
    #[error("channel {channel}'s current release is {current}, not {version}")]
    NotCurrent {
        /// The source channel.
        channel: String,
        /// The version asked for.
        version: String,
        /// The channel's current version (`nothing` if it has none).
        current: String,
    },
    /// A payload named by a release but absent from `payloads/sha256/`, or of another size.
    #[error("payload {name} ({sha256}, {size} bytes) is not in the repository; add it first")]
    MissingPayload {
        /// Payload name.
        name: String,
        /// Its hash.
        sha256: String,
        /// Its size.
        size: u64,
    },
    /// A release that is not a valid manifest.
    #[error("invalid release: {0}")]
    Invalid(String),
    /// An expiry that is already past.
    #[error("{what} would expire at {expires}, which is not after now ({now})")]
    Expired {
        /// `keys.json` or the manifest.
        what: String,
        /// The expiry.
        expires: u64,
        /// The clock used.
        now: u64,
    },
    /// The repository's own files do not verify.
    #[error(transparent)]
    Verify(#[from] VerifyError),
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> RepoError {
    let path = path.to_owned();
    move |source| RepoError::Io { op, path, source }
}

/// Operations on a repository directory. Each takes the directory and does its own IO.
#[derive(Debug)]
pub struct Repo;

impl Repo {
    /// Creates a repository in `dir`: `root.json` with the root key's public half and
    /// `keys.json(.sig)` (version 1) listing `signing`, signed by `root`. Refuses an
    /// initialized directory.
    pub fn init(
        dir: &Path,
        root: &SecretKey,
        signing: &[PublicKey],
        expires: u64,
    ) -> Result<KeySet, RepoError> {
        let keys_path = dir.join(KEYS_JSON);
        if keys_path.exists() {
            return Err(RepoError::AlreadyInitialized { path: keys_path });
        }
        let root_keys = RootKeys {
            keys: vec![root.public()],
        };
        write_atomic(
            &dir.join(ROOT_JSON),
            &to_canonical(&root_keys, &dir.join(ROOT_JSON))?,
        )?;
        let keyset = KeySet {
            version: 1,
            expires,
            keys: signing.to_vec(),
        };
        write_keyset(dir, &keyset, root)?;
        Ok(keyset)
    }

    /// Signs and writes a new `keys.json(.sig)` listing `new_signing`, with the version after the
    /// current one. `root` must be listed in `root.json`. Manifests signed by a key no longer
    /// listed stop verifying; republish them with a new key.
    pub fn rotate_keys(
        dir: &Path,
        root: &SecretKey,
        new_signing: &[PublicKey],
        expires: u64,
    ) -> Result<KeySet, RepoError> {
        let root_keys: RootKeys = read_canonical(&dir.join(ROOT_JSON))?;
        if !root_keys.keys.contains(&root.public()) {
            return Err(RepoError::NotRootKey {
                key_id: root.key_id(),
            });
        }
        let current = Repo::keyset(dir)?;
        let keyset = KeySet {
            version: current.version + 1,
            expires,
            keys: new_signing.to_vec(),
        };
        write_keyset(dir, &keyset, root)?;
        Ok(keyset)
    }

    /// Copies the bytes of `reader` into `payloads/sha256/<hex>` (temp file + rename) and returns
    /// their reference. Adding the same bytes again changes nothing.
    pub fn add_payload(dir: &Path, mut reader: impl Read) -> Result<PayloadRef, RepoError> {
        let payloads = dir.join(PAYLOADS_DIR);
        fs::create_dir_all(&payloads).map_err(io_err("creating", &payloads))?;
        let mut tmp = tempfile::NamedTempFile::new_in(&payloads)
            .map_err(io_err("creating a file in", &payloads))?;
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_err("reading payload for", &payloads)(e)),
            };
            hasher.update(&buf[..n]);
            tmp.write_all(&buf[..n])
                .map_err(io_err("writing", tmp.path()))?;
            size += n as u64;
        }
        let payload = PayloadRef {
            sha256: hex::encode(hasher.finalize()),
            size,
        };
        let target = dir.join(payload.path());
        if fs::metadata(&target).is_ok_and(|m| m.is_file() && m.len() == size) {
            return Ok(payload);
        }
        persist(tmp, &target)?;
        sync_dir(&payloads)?;
        Ok(payload)
    }

    /// [`Repo::add_payload`] of the file at `path`.
    pub fn add_payload_file(dir: &Path, path: &Path) -> Result<PayloadRef, RepoError> {
        let file = fs::File::open(path).map_err(io_err("opening", path))?;
        Repo::add_payload(dir, io::BufReader::new(file))
    }

    /// Publishes `release` as the current manifest of its channel, signed by `key`, with the
    /// channel's next sequence (1 for a new channel). Refuses: an invalid release, an expiry not
    /// after `now`, a key not in keys.json, an expired keys.json, payloads missing from the
    /// repository, and (unless `force`) a version not newer than the channel's current one.
    pub fn publish(
        dir: &Path,
        release: Release,
        key: &SecretKey,
        now: u64,
        force: bool,
    ) -> Result<Manifest, RepoError> {
        release
            .clone()
            .into_manifest(1)
            .validate()
            .map_err(RepoError::Invalid)?;
        let keyset = Repo::keyset(dir)?;
        if !keyset.keys.contains(&key.public()) {
            return Err(RepoError::NotSigningKey {
                key_id: key.key_id(),
            });
        }
        for (what, expires) in [
            (KEYS_JSON.to_owned(), keyset.expires),
            (manifest_path(&release.channel), release.expires),
        ] {
            if expires <= now {
                return Err(RepoError::Expired { what, expires, now });
            }
        }
        check_payloads(dir, &release)?;
        let current = Repo::current_manifest(dir, &release.channel)?;
        if let (Some(current), false) = (&current, force) {
            let (old, new) = (
                parse_version(&current.version)?,
                parse_version(&release.version)?,
            );
            if new <= old {
                return Err(RepoError::NotNewer {
                    channel: release.channel,
                    current: current.version.clone(),
                    offered: release.version,
                });
            }
        }
        let manifest = release.into_manifest(current.map_or(1, |m| m.sequence + 1));
        let doc_path = dir.join(manifest_path(&manifest.channel));
        let (doc, sig) = sign_document(&manifest, key).map_err(|source| RepoError::Canonical {
            path: doc_path.clone(),
            source,
        })?;
        write_pair(
            &doc_path,
            &doc,
            &dir.join(manifest_sig_path(&manifest.channel)),
            &sig,
        )?;
        Ok(manifest)
    }

    /// Promotes release `version`, which must be the current release of channel `from`, into
    /// channel `to`: same payload hashes (no payload is copied), same version floor, `to`'s next
    /// sequence, `release_time = now` and the same lifetime (`expires - release_time`) as in
    /// `from`. Refuses a version not newer than `to`'s current one.
    pub fn promote(
        dir: &Path,
        from: &str,
        to: &str,
        version: &str,
        key: &SecretKey,
        now: u64,
    ) -> Result<Manifest, RepoError> {
        let source = Repo::current_manifest(dir, from)?;
        let source = match source {
            Some(m) if m.version == version => m,
            other => {
                return Err(RepoError::NotCurrent {
                    channel: from.to_owned(),
                    version: version.to_owned(),
                    current: other.map_or_else(|| "nothing".to_owned(), |m| m.version),
                })
            }
        };
        let release = Release {
            channel: to.to_owned(),
            version: source.version,
            release_time: now,
            expires: now.saturating_add(source.expires.saturating_sub(source.release_time)),
            version_floor: source.version_floor,
            payloads: source.payloads,
        };
        Repo::publish(dir, release, key, now, false)
    }

    /// The repository's `keys.json`, parsed (not verified; see [`Repo::check_channel`]).
    pub fn keyset(dir: &Path) -> Result<KeySet, RepoError> {
        read_canonical(&dir.join(KEYS_JSON))
    }

    /// The current manifest of `channel`, parsed (not verified), or `None` if never published.
    pub fn current_manifest(dir: &Path, channel: &str) -> Result<Option<Manifest>, RepoError> {
        crate::documents::validate_channel_name(channel).map_err(RepoError::Invalid)?;
        let path = dir.join(manifest_path(channel));
        if !path.exists() {
            return Ok(None);
        }
        read_canonical(&path).map(Some)
    }

    /// Verifies `channel` in `dir` the way a client trusting `root` would at `now` (keys.json,
    /// then the manifest), and returns the manifest. Payloads are not re-hashed.
    pub fn check_channel(
        dir: &Path,
        root: &RootKeys,
        channel: &str,
        now: u64,
    ) -> Result<Manifest, RepoError> {
        let read = |rel: &str| {
            let path = dir.join(rel);
            fs::read(&path).map_err(io_err("reading", &path))
        };
        let keyset = verify::verify_keyset(root, &read(KEYS_JSON)?, &read(KEYS_SIG)?, now, None)?;
        let (doc, sig) = (
            read(&manifest_path(channel))?,
            read(&manifest_sig_path(channel))?,
        );
        Ok(verify::verify_manifest(
            &keyset, &doc, &sig, channel, now, None,
        )?)
    }
}

fn parse_version(v: &str) -> Result<Version, RepoError> {
    v.parse()
        .map_err(|e: crate::documents::VersionError| RepoError::Invalid(e.to_string()))
}

fn check_payloads(dir: &Path, release: &Release) -> Result<(), RepoError> {
    for (name, payload) in &release.payloads {
        let present = fs::metadata(dir.join(payload.path()))
            .is_ok_and(|m| m.is_file() && m.len() == payload.size);
        if !present {
            return Err(RepoError::MissingPayload {
                name: name.clone(),
                sha256: payload.sha256.clone(),
                size: payload.size,
            });
        }
    }
    Ok(())
}

fn write_keyset(dir: &Path, keyset: &KeySet, root: &SecretKey) -> Result<(), RepoError> {
    if keyset.keys.is_empty() {
        return Err(RepoError::NoSigningKeys);
    }
    let path = dir.join(KEYS_JSON);
    let (doc, sig) = sign_document(keyset, root).map_err(|source| RepoError::Canonical {
        path: path.clone(),
        source,
    })?;
    write_pair(&path, &doc, &dir.join(KEYS_SIG), &sig)
}

fn to_canonical<T: serde::Serialize>(value: &T, path: &Path) -> Result<Vec<u8>, RepoError> {
    canonical::to_vec(value).map_err(|source| RepoError::Canonical {
        path: path.to_owned(),
        source,
    })
}

fn read_canonical<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, RepoError> {
    let bytes = fs::read(path).map_err(io_err("reading", path))?;
    canonical::from_slice(&bytes).map_err(|source| RepoError::Canonical {
        path: path.to_owned(),
        source,
    })
}

/// Writes a document and its signature: both to temp files, then the signature is renamed into
/// place, then the document (see the module docs for what a racing reader sees).
fn write_pair(doc_path: &Path, doc: &[u8], sig_path: &Path, sig: &[u8]) -> Result<(), RepoError> {
    let doc_tmp = temp_with(doc_path, doc)?;
    let sig_tmp = temp_with(sig_path, sig)?;
    persist(sig_tmp, sig_path)?;
    persist(doc_tmp, doc_path)?;
    sync_dir(doc_path.parent().expect("file in a directory"))
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), RepoError> {
    persist(temp_with(path, bytes)?, path)?;
    sync_dir(path.parent().expect("file in a directory"))
}

/// A synced temp file with `bytes` next to `path`, readable by all (it is served publicly).
fn temp_with(path: &Path, bytes: &[u8]) -> Result<tempfile::NamedTempFile, RepoError> {
    let parent = path.parent().expect("file in a directory");
    fs::create_dir_all(parent).map_err(io_err("creating", parent))?;
    let mut tmp =
        tempfile::NamedTempFile::new_in(parent).map_err(io_err("creating a file in", parent))?;
    tmp.write_all(bytes)
        .map_err(io_err("writing", tmp.path()))?;
    Ok(tmp)
}

fn persist(tmp: tempfile::NamedTempFile, path: &Path) -> Result<(), RepoError> {
    tmp.as_file()
        .sync_all()
        .map_err(io_err("syncing", tmp.path()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o644))
            .map_err(io_err("setting mode of", tmp.path()))?;
    }
    tmp.persist(path).map_err(|e| RepoError::Io {
        op: "renaming into",
        path: path.to_owned(),
        source: e.error,
    })?;
    Ok(())
}

fn sync_dir(dir: &Path) -> Result<(), RepoError> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("syncing", dir))
}
