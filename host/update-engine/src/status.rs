//! The engine's status (SPECS.md S12 status names): the state machine of one check/apply run
//! ([`Phase`], one method per transition, each refusing a move from the wrong place) and the
//! serde [`Status`] the daemon writes to `/run/update-engine/status.json` and `status` prints,
//! plain in Container Linux's `update_engine_client -status` form or as JSON with our extras.

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// `CURRENT_OP` values, as Container Linux's update_engine names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Operation {
    /// Nothing going on.
    #[default]
    #[serde(rename = "UPDATE_STATUS_IDLE")]
    Idle,
    /// Fetching and verifying keys.json and the channel manifest.
    #[serde(rename = "UPDATE_STATUS_CHECKING_FOR_UPDATE")]
    CheckingForUpdate,
    /// A newer release was found.
    #[serde(rename = "UPDATE_STATUS_UPDATE_AVAILABLE")]
    UpdateAvailable,
    /// Writing the slot.
    #[serde(rename = "UPDATE_STATUS_DOWNLOADING")]
    Downloading,
    /// Checking the last bytes, kernel and initramfs.
    #[serde(rename = "UPDATE_STATUS_VERIFYING")]
    Verifying,
    /// Writing the boot entry.
    #[serde(rename = "UPDATE_STATUS_FINALIZING")]
    Finalizing,
    /// Staged; the next boot tries it.
    #[serde(rename = "UPDATE_STATUS_UPDATED_NEED_REBOOT")]
    UpdatedNeedReboot,
    /// The run failed; `last_error` says why.
    #[serde(rename = "UPDATE_STATUS_REPORTING_ERROR_EVENT")]
    ReportingErrorEvent,
}

impl Operation {
    /// The `CURRENT_OP=` spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Idle => "UPDATE_STATUS_IDLE",
            Operation::CheckingForUpdate => "UPDATE_STATUS_CHECKING_FOR_UPDATE",
            Operation::UpdateAvailable => "UPDATE_STATUS_UPDATE_AVAILABLE",
            Operation::Downloading => "UPDATE_STATUS_DOWNLOADING",
            Operation::Verifying => "UPDATE_STATUS_VERIFYING",
            Operation::Finalizing => "UPDATE_STATUS_FINALIZING",
            Operation::UpdatedNeedReboot => "UPDATE_STATUS_UPDATED_NEED_REBOOT",
            Operation::ReportingErrorEvent => "UPDATE_STATUS_REPORTING_ERROR_EVENT",
        }
    }

    /// Whether a check or an apply is under way (from CHECKING_FOR_UPDATE to FINALIZING).
    pub fn is_running(self) -> bool {
        !matches!(
            self,
            Operation::Idle | Operation::UpdatedNeedReboot | Operation::ReportingErrorEvent
        )
    }
}

/// `update_engine_client -reset_status` asked while a run is under way.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot reset the status while the engine is at {0}: a check or an update is running (reset works from UPDATE_STATUS_UPDATED_NEED_REBOOT, UPDATE_STATUS_REPORTING_ERROR_EVENT or idle)")]
pub struct ResetRefused(pub Operation);

/// The release being installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Its version.
    pub version: String,
    /// Size of its slot image (bytes).
    pub size: u64,
}

/// Where a check/apply run is. Each transition method consumes the phase and refuses a move
/// from anywhere but its documented sources.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Phase {
    /// Nothing going on.
    #[default]
    Idle,
    /// Fetching keys.json and the manifest.
    Checking,
    /// A newer release was selected.
    UpdateAvailable(Target),
    /// `received` of `target.size` bytes are on the slot.
    Downloading {
        /// The release.
        target: Target,
        /// Bytes written so far.
        received: u64,
    },
    /// Slot image complete; kernel and initramfs being fetched and checked.
    Verifying(Target),
    /// Writing the boot entry.
    Finalizing(Target),
    /// The entry is staged.
    UpdatedNeedReboot(Target),
    /// The run failed.
    ReportingError {
        /// Why.
        error: String,
        /// The release, if one had been selected.
        target: Option<Target>,
    },
}

/// A transition asked from a phase it cannot start from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("illegal status transition {transition} from {from}")]
pub struct IllegalTransition {
    /// The transition.
    pub transition: &'static str,
    /// The phase it was asked from.
    pub from: Operation,
}

type Next = Result<Phase, IllegalTransition>;

impl Phase {
    fn illegal(&self, transition: &'static str) -> IllegalTransition {
        IllegalTransition {
            transition,
            from: self.operation(),
        }
    }

    /// Start a check: from idle, a finished run, or a failed one.
    pub fn check(self) -> Next {
        match self {
            Phase::Idle | Phase::UpdatedNeedReboot(_) | Phase::ReportingError { .. } => {
                Ok(Phase::Checking)
            }
            other => Err(other.illegal("check")),
        }
    }
    /// The check found nothing to do: back to idle.
    pub fn up_to_date(self) -> Next {
        match self {
            Phase::Checking => Ok(Phase::Idle),
            other => Err(other.illegal("up_to_date")),
        }
    }
    /// The check found `target`.
    pub fn found(self, target: Target) -> Next {
        match self {
            Phase::Checking => Ok(Phase::UpdateAvailable(target)),
            other => Err(other.illegal("found")),
        }
    }
    /// The check found `target` already staged by an earlier run.
    pub fn already_staged(self, target: Target) -> Next {
        match self {
            Phase::Checking => Ok(Phase::UpdatedNeedReboot(target)),
            other => Err(other.illegal("already_staged")),
        }
    }
    /// Start writing the slot.
    pub fn download(self) -> Next {
        match self {
            Phase::UpdateAvailable(target) => Ok(Phase::Downloading {
                target,
                received: 0,
            }),
            other => Err(other.illegal("download")),
        }
    }
    /// `received` bytes are on the slot (never backwards, never past the size).
    pub fn progress(self, received: u64) -> Next {
        match self {
            Phase::Downloading {
                target,
                received: before,
            } if received >= before && received <= target.size => {
                Ok(Phase::Downloading { target, received })
            }
            other => Err(other.illegal("progress")),
        }
    }
    /// Every byte of the slot image arrived and verified.
    pub fn verify(self) -> Next {
        match self {
            Phase::Downloading { target, received } if received == target.size => {
                Ok(Phase::Verifying(target))
            }
            other => Err(other.illegal("verify")),
        }
    }
    /// Kernel and initramfs verified: write the entry.
    pub fn finalize(self) -> Next {
        match self {
            Phase::Verifying(target) => Ok(Phase::Finalizing(target)),
            other => Err(other.illegal("finalize")),
        }
    }
    /// The entry is written.
    pub fn staged(self) -> Next {
        match self {
            Phase::Finalizing(target) => Ok(Phase::UpdatedNeedReboot(target)),
            other => Err(other.illegal("staged")),
        }
    }
    /// The run failed with `error`: from any phase of a running check or apply.
    pub fn fail(self, error: String) -> Next {
        let target = match self {
            Phase::Checking => None,
            Phase::UpdateAvailable(t)
            | Phase::Downloading { target: t, .. }
            | Phase::Verifying(t)
            | Phase::Finalizing(t) => Some(t),
            other => return Err(other.illegal("fail")),
        };
        Ok(Phase::ReportingError { error, target })
    }

    /// The `CURRENT_OP`.
    pub fn operation(&self) -> Operation {
        match self {
            Phase::Idle => Operation::Idle,
            Phase::Checking => Operation::CheckingForUpdate,
            Phase::UpdateAvailable(_) => Operation::UpdateAvailable,
            Phase::Downloading { .. } => Operation::Downloading,
            Phase::Verifying(_) => Operation::Verifying,
            Phase::Finalizing(_) => Operation::Finalizing,
            Phase::UpdatedNeedReboot(_) => Operation::UpdatedNeedReboot,
            Phase::ReportingError { .. } => Operation::ReportingErrorEvent,
        }
    }

    /// The release, if one is selected.
    pub fn target(&self) -> Option<&Target> {
        match self {
            Phase::Idle | Phase::Checking => None,
            Phase::UpdateAvailable(t)
            | Phase::Downloading { target: t, .. }
            | Phase::Verifying(t)
            | Phase::Finalizing(t)
            | Phase::UpdatedNeedReboot(t) => Some(t),
            Phase::ReportingError { target, .. } => target.as_ref(),
        }
    }

    /// `PROGRESS`: 0..1 while downloading, 1 after, 0 otherwise.
    pub fn progress_fraction(&self) -> f64 {
        match self {
            Phase::Downloading { target, received } if target.size > 0 => {
                *received as f64 / target.size as f64
            }
            Phase::Downloading { .. } => 0.0,
            Phase::Verifying(_) | Phase::Finalizing(_) | Phase::UpdatedNeedReboot(_) => 1.0,
            _ => 0.0,
        }
    }
}

/// A rollback the engine noticed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rollback {
    /// The version that failed to come up.
    pub failed_version: String,
    /// The version running now.
    pub running_version: String,
    /// `rolled back from X to Y`.
    pub message: String,
}

/// The status document. The upper-case fields are Container Linux's; the rest are ours.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Status {
    /// Last completed check, unix seconds (0: never).
    #[serde(rename = "LAST_CHECKED_TIME")]
    pub last_checked_time: u64,
    /// Download progress, 0..1.
    #[serde(rename = "PROGRESS")]
    pub progress: f64,
    /// The operation.
    #[serde(rename = "CURRENT_OP")]
    pub current_op: Operation,
    /// The version being installed or staged (`0.0.0`: none).
    #[serde(rename = "NEW_VERSION")]
    pub new_version: String,
    /// Its slot image size.
    #[serde(rename = "NEW_SIZE")]
    pub new_size: u64,
    /// `USR-A` / `USR-B`.
    #[serde(default)]
    pub booted_slot: Option<String>,
    /// `VERSION_ID` of the running OS.
    #[serde(default)]
    pub booted_version: Option<String>,
    /// The channel.
    #[serde(default)]
    pub channel: Option<String>,
    /// `REBOOT_STRATEGY`.
    #[serde(default)]
    pub reboot_strategy: Option<String>,
    /// Why the strategy does not do what it says (unimplemented locking strategies).
    #[serde(default)]
    pub reboot_note: Option<String>,
    /// The error of the last failed run.
    #[serde(default)]
    pub last_error: Option<String>,
    /// The last rollback.
    #[serde(default)]
    pub rollback: Option<Rollback>,
    /// Every version that failed to boot here.
    #[serde(default)]
    pub failed_versions: Vec<String>,
    /// Whether the booted slot passed its health check (its entry has no counter).
    #[serde(default)]
    pub booted_slot_good: Option<bool>,
    /// What in update.conf the engine cannot use, each naming its file, key and value: while
    /// there is any, it checks, downloads and reboots nothing.
    #[serde(default)]
    pub config_errors: Vec<String>,
}

/// `NEW_VERSION` when there is none.
pub const NO_VERSION: &str = "0.0.0";

impl Status {
    /// Sets the Container Linux fields from `phase` (and `last_error` when it failed).
    pub fn apply_phase(&mut self, phase: &Phase) {
        self.current_op = phase.operation();
        self.progress = phase.progress_fraction();
        match phase.target() {
            Some(t) => {
                self.new_version = t.version.clone();
                self.new_size = t.size;
            }
            None => {
                self.new_version = NO_VERSION.into();
                self.new_size = 0;
            }
        }
        if let Phase::ReportingError { error, .. } = phase {
            self.last_error = Some(error.clone());
        }
    }

    /// Container Linux's `ResetStatus`: from UPDATED_NEED_REBOOT back to IDLE with no new
    /// version; from REPORTING_ERROR_EVENT too (Container Linux's engine left that state for
    /// IDLE by itself; ours keeps it, with `last_error`, until the next run); nothing to do when
    /// idle; refused while a run is under way. Does not touch the disk.
    pub fn reset(&mut self) -> Result<(), ResetRefused> {
        if self.current_op.is_running() {
            return Err(ResetRefused(self.current_op));
        }
        self.apply_phase(&Phase::Idle);
        self.last_error = None;
        Ok(())
    }

    /// The five fields Container Linux's `GetStatus` returned, to tell two statuses apart.
    pub fn client_fields(&self) -> (u64, u64, Operation, &str, u64) {
        (
            self.last_checked_time,
            self.progress.to_bits(),
            self.current_op,
            &self.new_version,
            self.new_size,
        )
    }

    /// The `update_engine_client -status` text: Container Linux's five fields, then ours
    /// (only those that say something), in the same `KEY=VALUE` form.
    pub fn render_plain(&self) -> String {
        let mut out = format!(
            "LAST_CHECKED_TIME={}\nPROGRESS={:.6}\nCURRENT_OP={}\nNEW_VERSION={}\nNEW_SIZE={}\n",
            self.last_checked_time,
            self.progress,
            self.current_op.as_str(),
            if self.new_version.is_empty() {
                NO_VERSION
            } else {
                &self.new_version
            },
            self.new_size
        );
        let extra = [
            (
                "CONFIG_ERROR",
                (!self.config_errors.is_empty()).then(|| {
                    format!(
                        "{}; updates are off until update.conf is fixed",
                        self.config_errors.join("; ")
                    )
                }),
            ),
            ("REBOOT_NOTE", self.reboot_note.clone()),
            ("LAST_ERROR", self.last_error.clone()),
            (
                "ROLLBACK",
                self.rollback.as_ref().map(|r| r.message.clone()),
            ),
            (
                "FAILED_VERSIONS",
                (!self.failed_versions.is_empty()).then(|| self.failed_versions.join(",")),
            ),
        ];
        for (key, value) in extra {
            if let Some(value) = value {
                // One line per key, whatever the value holds.
                out.push_str(&format!("{key}={}\n", value.replace('\n', " ")));
            }
        }
        out
    }

    /// Reads a status file; a missing one is the idle status.
    pub fn load(path: &Path) -> std::io::Result<Status> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Status {
                new_version: NO_VERSION.into(),
                ..Status::default()
            }),
            Err(e) => Err(e),
        }
    }

    /// Writes the status file atomically.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let mut text = serde_json::to_vec_pretty(self).expect("status serializes");
        text.push(b'\n');
        std::fs::create_dir_all(util::fs::parent(path))
            .and_then(|()| util::fs::write_atomic(path, &text))
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t() -> Target {
        Target {
            version: "1.0.1".into(),
            size: 10,
        }
    }

    #[test]
    fn happy_path() {
        let p = Phase::Idle.check().unwrap().found(t()).unwrap();
        let p = p
            .download()
            .unwrap()
            .progress(4)
            .unwrap()
            .progress(10)
            .unwrap();
        assert_eq!(p.progress_fraction(), 1.0);
        let p = p.verify().unwrap().finalize().unwrap().staged().unwrap();
        assert_eq!(p.operation(), Operation::UpdatedNeedReboot);
        assert_eq!(p.check().unwrap(), Phase::Checking);
    }

    #[test]
    fn illegal_moves_are_refused() {
        let downloading = Phase::Downloading {
            target: t(),
            received: 5,
        };
        let cases: Vec<(&str, Next)> = vec![
            ("stage from idle", Phase::Idle.staged()),
            ("download before found", Phase::Checking.download()),
            ("verify before all bytes", downloading.clone().verify()),
            ("progress backwards", downloading.clone().progress(4)),
            ("progress past size", downloading.clone().progress(11)),
            ("check while downloading", downloading.clone().check()),
            ("finalize before verify", downloading.finalize()),
            ("found while idle", Phase::Idle.found(t())),
            ("fail while idle", Phase::Idle.fail("x".into())),
            (
                "up to date after found",
                Phase::UpdateAvailable(t()).up_to_date(),
            ),
        ];
        for (name, got) in cases {
            assert!(got.is_err(), "{name}: {got:?}");
        }
        let e = Phase::Idle.staged().unwrap_err();
        assert_eq!(
            e.to_string(),
            "illegal status transition staged from UPDATE_STATUS_IDLE"
        );
    }

    #[test]
    fn failure_keeps_target_and_error() {
        let p = Phase::UpdateAvailable(t()).fail("bad".into()).unwrap();
        let mut s = Status::default();
        s.apply_phase(&p);
        assert_eq!(s.current_op, Operation::ReportingErrorEvent);
        assert_eq!(s.new_version, "1.0.1");
        assert_eq!(s.last_error.as_deref(), Some("bad"));
    }

    #[test]
    fn reset_goes_back_to_idle_only_between_runs() {
        let staged = Status {
            last_checked_time: 5,
            current_op: Operation::UpdatedNeedReboot,
            progress: 1.0,
            new_version: "1.0.1".into(),
            new_size: 10,
            reboot_note: Some("REBOOT_STRATEGY=off: reboot to use it".into()),
            ..Status::default()
        };
        let mut s = staged.clone();
        s.reset().unwrap();
        assert_eq!(
            s.render_plain(),
            "LAST_CHECKED_TIME=5\nPROGRESS=0.000000\nCURRENT_OP=UPDATE_STATUS_IDLE\nNEW_VERSION=0.0.0\nNEW_SIZE=0\nREBOOT_NOTE=REBOOT_STRATEGY=off: reboot to use it\n"
        );
        let idle = s.clone();
        s.reset().unwrap();
        assert_eq!(s, idle, "idle: nothing to do");
        let mut failed = Status {
            current_op: Operation::ReportingErrorEvent,
            last_error: Some("HTTP 404".into()),
            ..staged.clone()
        };
        failed.reset().unwrap();
        assert_eq!(
            (failed.current_op, failed.last_error),
            (Operation::Idle, None)
        );
        for op in [
            Operation::CheckingForUpdate,
            Operation::UpdateAvailable,
            Operation::Downloading,
            Operation::Verifying,
            Operation::Finalizing,
        ] {
            let mut running = Status {
                current_op: op,
                ..staged.clone()
            };
            assert_eq!(running.reset(), Err(ResetRefused(op)));
            assert_eq!(running.current_op, op, "unchanged");
        }
    }

    #[test]
    fn plain_output_is_update_engine_client_style() {
        let s = Status {
            last_checked_time: 1_700_000_000,
            new_version: NO_VERSION.into(),
            ..Status::default()
        };
        assert_eq!(
            s.render_plain(),
            "LAST_CHECKED_TIME=1700000000\nPROGRESS=0.000000\nCURRENT_OP=UPDATE_STATUS_IDLE\nNEW_VERSION=0.0.0\nNEW_SIZE=0\n"
        );
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["CURRENT_OP"], "UPDATE_STATUS_IDLE");
        let rolled = Status {
            rollback: Some(Rollback {
                failed_version: "1.0.2".into(),
                running_version: "1.0.1".into(),
                message: "rolled back from 1.0.2 to 1.0.1".into(),
            }),
            failed_versions: vec!["1.0.0".into(), "1.0.2".into()],
            last_error: Some("GET x: HTTP 404\nmore".into()),
            ..s.clone()
        };
        assert!(rolled.render_plain().ends_with(
            "NEW_SIZE=0\nLAST_ERROR=GET x: HTTP 404 more\nROLLBACK=rolled back from 1.0.2 to 1.0.1\nFAILED_VERSIONS=1.0.0,1.0.2\n"
        ));
        let misconfigured = Status {
            config_errors: vec![
                "/etc/coreos/update.conf: LOCKSMITHD_REBOOT_WINDOW_LENGTH=\"-1h\": expected a duration like 1h30m (must not be negative)".into(),
                "/etc/update-engine/update.conf: GROUP=\"Beta\": expected x".into(),
            ],
            ..s.clone()
        };
        assert!(misconfigured.render_plain().ends_with(
            "NEW_SIZE=0\nCONFIG_ERROR=/etc/coreos/update.conf: LOCKSMITHD_REBOOT_WINDOW_LENGTH=\"-1h\": expected a duration like 1h30m (must not be negative); /etc/update-engine/update.conf: GROUP=\"Beta\": expected x; updates are off until update.conf is fixed\n"
        ));
        // A status file written before the field existed still reads.
        let old: Status = serde_json::from_str(
            r#"{"LAST_CHECKED_TIME":0,"PROGRESS":0.0,"CURRENT_OP":"UPDATE_STATUS_IDLE","NEW_VERSION":"0.0.0","NEW_SIZE":0}"#,
        )
        .unwrap();
        assert!(old.config_errors.is_empty());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run/update-engine/status.json");
        assert_eq!(Status::load(&path).unwrap().new_version, NO_VERSION);
        s.save(&path).unwrap();
        assert_eq!(Status::load(&path).unwrap(), s);
    }
}
