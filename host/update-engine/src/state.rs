//! What the engine remembers across runs, in `/var/lib/update-engine/state.json`: the last
//! manifest seen per channel and the highest keys.json version (replay and rollback protection,
//! SPECS.md S14), the staged update, the versions that failed to boot, the last check time, the
//! reboot lock it may hold.
//!
//! Written through a temporary file, fsync and rename, so a power cut leaves the old or the new
//! file. A missing file is a fresh machine.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use channels::SeenManifest;
use serde::{Deserialize, Serialize};

use crate::lock::reboot_lock::LockRecord;

/// An update staged on the inactive slot, waiting for a reboot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    /// Its version.
    pub version: String,
    /// The slot it was written to (`USR-A` / `USR-B`).
    pub slot: String,
}

/// A version that did not come up and was rolled back from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedVersion {
    /// The version that failed.
    pub version: String,
    /// Its slot.
    pub slot: String,
    /// The version the machine came back on.
    pub rolled_back_to: String,
    /// When the engine noticed (unix seconds).
    pub detected_at: u64,
}

/// The persisted state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// The last manifest accepted per channel.
    #[serde(default)]
    pub seen_manifests: BTreeMap<String, SeenManifest>,
    /// The highest keys.json version accepted.
    #[serde(default)]
    pub highest_keyset_version: Option<u64>,
    /// The staged update, if any.
    #[serde(default)]
    pub pending: Option<Pending>,
    /// Versions rolled back from, oldest first.
    #[serde(default)]
    pub failed_versions: Vec<FailedVersion>,
    /// The last completed check (unix seconds).
    #[serde(default)]
    pub last_check_time: Option<u64>,
    /// The cluster reboot lock this machine may hold (recorded before asking for it; cleared
    /// once released after a good boot).
    #[serde(default)]
    pub reboot_lock: Option<LockRecord>,
}

/// The state file could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("{op} {}: {source}", path.display())]
pub struct StateError {
    /// What was being done.
    pub op: &'static str,
    /// The file.
    pub path: PathBuf,
    /// The cause.
    pub source: io::Error,
}

impl State {
    /// Whether `version` failed to boot on this machine before.
    pub fn has_failed(&self, version: &str) -> bool {
        self.failed_versions.iter().any(|f| f.version == version)
    }

    /// Records a rollback once (a second detection of the same one changes nothing). Does not
    /// touch the disk. Returns whether it was new.
    pub fn record_failure(&mut self, failed: FailedVersion) -> bool {
        if self
            .failed_versions
            .iter()
            .any(|f| f.version == failed.version && f.slot == failed.slot)
        {
            return false;
        }
        if self.pending.as_ref().map(|p| &p.version) == Some(&failed.version) {
            self.pending = None;
        }
        self.failed_versions.push(failed);
        true
    }

    /// Reads the state at `path`; a missing file is the default state.
    pub fn load(path: &Path) -> Result<State, StateError> {
        let err = |op| {
            let path = path.to_owned();
            move |source| StateError { op, path, source }
        };
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
                .map_err(err("parsing")),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(State::default()),
            Err(e) => Err(err("reading")(e)),
        }
    }

    /// Writes the state to `path` atomically.
    pub fn save(&self, path: &Path) -> Result<(), StateError> {
        let mut text = serde_json::to_vec_pretty(self).expect("state serializes");
        text.push(b'\n');
        write_atomic(path, &text).map_err(|source| StateError {
            op: "writing",
            path: path.to_owned(),
            source,
        })
    }
}

/// Writes `bytes` to `path` through a synced temporary file in the same directory and a rename,
/// creating the directory. Mode 0644: the state and status hold no secrets, and
/// `update_engine_client -status` is for every user (as on Container Linux).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    std::fs::create_dir_all(util::fs::parent(path))?;
    util::fs::write_atomic(path, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_missing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("var/lib/update-engine/state.json");
        assert_eq!(State::load(&path).unwrap(), State::default());
        let mut s = State::default();
        s.seen_manifests.insert(
            "alpha".into(),
            SeenManifest {
                sequence: 3,
                sha256: "ab".into(),
            },
        );
        s.pending = Some(Pending {
            version: "1.0.1".into(),
            slot: "USR-B".into(),
        });
        s.save(&path).unwrap();
        assert_eq!(State::load(&path).unwrap(), s);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o777,
            0o644,
            "readable by update_engine_client -status as any user"
        );
        std::fs::write(&path, "{").unwrap();
        assert!(State::load(&path)
            .unwrap_err()
            .to_string()
            .contains("parsing"));
    }

    #[test]
    fn failures_recorded_once_and_clear_pending() {
        let mut s = State {
            pending: Some(Pending {
                version: "1.0.2".into(),
                slot: "USR-B".into(),
            }),
            ..State::default()
        };
        let f = FailedVersion {
            version: "1.0.2".into(),
            slot: "USR-B".into(),
            rolled_back_to: "1.0.1".into(),
            detected_at: 5,
        };
        assert!(s.record_failure(f.clone()));
        assert!(!s.record_failure(FailedVersion {
            detected_at: 9,
            ..f
        }));
        assert_eq!(s.pending, None);
        assert!(s.has_failed("1.0.2") && !s.has_failed("1.0.1"));
    }
}
