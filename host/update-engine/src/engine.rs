//! The check and apply pipeline (DESIGN.md "Update channel repository", "Boot and slots").
//!
//! Check: keys.json against the root keys, the channel manifest against keys.json and the last
//! manifest seen (recorded only once verified), `select_update`, then release.json (verified by
//! hash) for the OS id and the slot size. Apply, onto the slot that did **not** boot: remove its
//! boot entry first, stream `usr.img` onto its partition through the sha256 verifier (resuming
//! after interruptions), fsync, fetch and verify the kernel and initramfs, and only then stage a
//! boot entry with a `+3-0` counter (SPECS.md S4). Any refusal leaves that slot without an entry.
//! Every step moves the [`Phase`] state machine and rewrites the status file.

use std::fs::OpenOptions;
use std::io::{Seek, SeekFrom};
use std::path::PathBuf;

use channels::{
    manifest_path, manifest_sig_path, select_update, verify_keyset, verify_manifest, Decision,
    Manifest, PayloadRef, RefuseReason, RootKeys, SeenManifest, VerifyError, KEYS_JSON, KEYS_SIG,
};
use contract::slots::grub::GRUBENV;
use contract::slots::{BootCounter, BootEntry, Slot, SlotTable, ENTRIES_DIR};
use contract::update_conf::keys;

use crate::config::{Config, Paths};
use crate::host::{Host, HostError, OsRelease, SlotDevice};
use crate::http::{Client, FetchError, Policy};
use crate::policy::cmdline_for_new_slot;
use crate::state::{State, StateError};
use crate::status::{IllegalTransition, Phase, Rollback, Status, Target};

pub use channels::release::{
    ReleaseInfo, INITRD as INITRD_IMG, KERNEL as VMLINUZ, RELEASE_JSON, USR_IMG,
};
pub use contract::slots::BOOT_TRIES;

/// What the reboot strategy did with a staged update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterStaging {
    /// `REBOOT_STRATEGY=off`: the operator reboots.
    Stay,
    /// The machine reboots (holding the lock, if the strategy takes one): `how` says so.
    Rebooting {
        /// E.g. "took the reboot lock (etcd http://…, group default)".
        how: String,
    },
    /// Not now: why, and the seconds after which to try again.
    Waiting {
        /// Why (outside the window, lock full, etcd unreachable, duplicate id, ...).
        reason: String,
        /// When to try again.
        retry_in: u64,
    },
}

/// Why a check or an apply stopped. Each says what was refused or what failed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// `SERVER` is not set.
    #[error("no SERVER configured in update.conf")]
    NoServer,
    /// update.conf has values the engine cannot use ([`crate::config::ConfigProblem`], all of
    /// them `; `-separated): no check, download or reboot until they are fixed.
    #[error("updates are off until update.conf is fixed: {0}")]
    BadConfig(String),
    /// A download failed.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// keys.json or the manifest was refused.
    #[error(transparent)]
    Verify(#[from] VerifyError),
    /// `select_update` refused the release.
    #[error("refused: {0}")]
    Refused(#[from] RefuseReason),
    /// The release failed to boot here before.
    #[error("refused: version {version} failed to boot on this machine before (rolled back); not installing it again")]
    FailedBefore {
        /// The version.
        version: String,
    },
    /// The manifest lacks a payload a release must have.
    #[error("manifest of {version} has no payload {name}")]
    MissingPayload {
        /// The release.
        version: String,
        /// The payload.
        name: &'static str,
    },
    /// release.json is not what a release's metadata looks like.
    #[error("release.json: {0}")]
    BadReleaseInfo(String),
    /// A release of another OS.
    #[error("refused: release is for OS {got:?}, this machine runs {expected:?}")]
    WrongOs {
        /// The host's OS id.
        expected: String,
        /// release.json's.
        got: String,
    },
    /// The slot is smaller than the release needs.
    #[error("refused: {what} needs {need} bytes, slot {slot} has {have}")]
    TooBig {
        /// What does not fit.
        what: &'static str,
        /// Bytes needed.
        need: u64,
        /// The slot.
        slot: Slot,
        /// Its size.
        have: u64,
    },
    /// The target would be the booted partition.
    #[error("refusing to write {}: it is the booted slot's partition", path.display())]
    WouldWriteBooted {
        /// The device.
        path: PathBuf,
    },
    /// The booted slot has not passed its health check yet.
    #[error("refused: the booted slot {slot} is not marked good yet (its entry still counts boot attempts); run mark-good first")]
    NotBlessed {
        /// The booted slot.
        slot: Slot,
    },
    /// The ESP has no entry for the booted slot.
    #[error("no boot entry for the booted slot {slot} in {}", esp.display())]
    NoBootedEntry {
        /// The booted slot.
        slot: Slot,
        /// The ESP.
        esp: PathBuf,
    },
    /// `rollback` without a bootable other slot.
    #[error("refused: slot {slot} has no boot entry with tries left to fall back to")]
    NoFallback {
        /// The other slot.
        slot: Slot,
    },
    /// A host operation failed.
    #[error(transparent)]
    Host(#[from] HostError),
    /// The state file.
    #[error(transparent)]
    State(#[from] StateError),
    /// A file on the ESP or the slot device.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A bug: the pipeline asked for an impossible status move.
    #[error(transparent)]
    Transition(#[from] IllegalTransition),
}

/// The slot table of `os_id` on the ESP mounted at `esp`, with the tries GRUB journaled (legacy
/// BIOS boots) folded into the entry names first.
pub(crate) fn load_slots(esp: &std::path::Path, os_id: &str) -> Result<SlotTable, EngineError> {
    let mut table = SlotTable::load(esp, os_id).map_err(io_err(format!(
        "reading boot entries in {}",
        esp.join(ENTRIES_DIR).display()
    )))?;
    let folded = table.fold_grub_journal().map_err(io_err(format!(
        "folding GRUB's boot tries ({}) into the boot entries",
        esp.join(GRUBENV).display()
    )))?;
    for (slot, tries) in folded {
        eprintln!("update-engine: GRUB booted {slot} {tries} time(s) since the last count");
    }
    Ok(table)
}

fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> EngineError {
    let what = what.into();
    move |source| EngineError::Io { what, source }
}

/// A release selected for installation, with everything verified so far.
#[derive(Debug, Clone)]
pub struct Found {
    /// The verified manifest.
    pub manifest: Manifest,
    /// Its verified release.json.
    pub info: ReleaseInfo,
}

/// The payload `name` of `manifest`.
pub fn payload_of<'m>(
    manifest: &'m Manifest,
    name: &'static str,
) -> Result<&'m PayloadRef, EngineError> {
    manifest
        .payloads
        .get(name)
        .ok_or_else(|| EngineError::MissingPayload {
            version: manifest.version.clone(),
            name,
        })
}

/// What a check found.
#[derive(Debug, Clone)]
pub enum CheckOutcome {
    /// The channel offers the booted version.
    UpToDate {
        /// The booted version.
        version: String,
    },
    /// The channel's release is already staged on the other slot.
    AlreadyStaged {
        /// Its version.
        version: String,
    },
    /// A newer release.
    Available(Box<Found>),
}

/// What `update` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpdateOutcome {
    /// Nothing to do.
    UpToDate {
        /// The booted version.
        version: String,
    },
    /// `version` is staged on `slot` (now or earlier); `next` is what the reboot strategy did.
    Staged {
        /// The version.
        version: String,
        /// The slot.
        slot: Slot,
        /// What `REBOOT_STRATEGY` did about it.
        next: AfterStaging,
    },
}

/// Called on every status change (the CLI's progress bar).
pub type Observer<'a> = &'a mut dyn FnMut(&Phase);

/// Moves the [`Phase`] and writes the status file (progress at most once per percent).
struct Reporter<'a> {
    phase: Phase,
    status: Status,
    path: PathBuf,
    observer: Observer<'a>,
    written_percent: Option<u64>,
}

impl Reporter<'_> {
    fn to(
        &mut self,
        f: impl FnOnce(Phase) -> Result<Phase, IllegalTransition>,
    ) -> Result<(), EngineError> {
        self.phase = f(std::mem::take(&mut self.phase))?;
        (self.observer)(&self.phase);
        let percent = (self.phase.progress_fraction() * 100.0) as u64;
        if matches!(self.phase, Phase::Downloading { .. }) && self.written_percent == Some(percent)
        {
            return Ok(());
        }
        self.written_percent = Some(percent);
        self.status.apply_phase(&self.phase);
        // The status file is informational: failing to write it must not fail an update.
        if let Err(e) = self.status.save(&self.path) {
            eprintln!("warning: writing {}: {e}", self.path.display());
        }
        Ok(())
    }
}

/// The engine for one host and configuration.
pub struct Engine<'a, H: Host> {
    /// Files.
    pub paths: &'a Paths,
    /// update.conf.
    pub config: &'a Config,
    /// The image's root keys.
    pub root_keys: &'a RootKeys,
    /// The machine.
    pub host: &'a H,
    /// Download retries.
    pub policy: Policy,
}

/// What the engine knows about the running system.
struct Booted {
    slot: Slot,
    os: OsRelease,
    table: SlotTable,
    esp: PathBuf,
}

impl<H: Host> Engine<'_, H> {
    fn booted(&self) -> Result<Booted, EngineError> {
        let slot = self.host.booted_slot()?;
        let os = self.host.os_release()?;
        let esp = self.host.esp()?;
        let table = load_slots(&esp, &os.id)?;
        Ok(Booted {
            slot,
            os,
            table,
            esp,
        })
    }

    /// The status the engine reports outside a run: booted slot and version, strategy,
    /// rollbacks from `state`.
    pub fn base_status(&self, state: &State) -> Status {
        let mut status = Status::load(&self.paths.status()).unwrap_or_default();
        status.last_checked_time = state.last_check_time.unwrap_or(0);
        // A setting whose value was refused is at its default, which is not what the files say.
        let said = |key| !self.config.refused(key);
        status.channel = said(keys::GROUP).then(|| self.config.group.clone());
        status.reboot_strategy =
            said(keys::REBOOT_STRATEGY).then(|| self.config.reboot_strategy.as_str().into());
        status.config_errors = self
            .config
            .problems
            .iter()
            .map(ToString::to_string)
            .collect();
        status.booted_slot = self.host.booted_slot().ok().map(|s| s.label().into());
        status.booted_version = self.host.os_release().ok().map(|o| o.version_id);
        status.failed_versions = state
            .failed_versions
            .iter()
            .map(|f| f.version.clone())
            .collect();
        status.rollback = state.failed_versions.last().map(|f| Rollback {
            failed_version: f.version.clone(),
            running_version: f.rolled_back_to.clone(),
            message: format!("rolled back from {} to {}", f.version, f.rolled_back_to),
        });
        if let Ok(b) = self.booted() {
            status.booted_slot_good =
                Some(b.table.entry(b.slot).is_some_and(|e| e.counter.is_none()));
        }
        status
    }

    fn reporter<'o>(&self, state: &State, observer: Observer<'o>) -> Reporter<'o> {
        let mut status = self.base_status(state);
        // A new run: the previous run's error is history.
        status.last_error = None;
        Reporter {
            phase: Phase::Idle,
            status,
            path: self.paths.status(),
            observer,
            written_percent: None,
        }
    }

    /// Checks the channel at `now` and reports what it offers (status ends in IDLE,
    /// UPDATE_AVAILABLE, UPDATED_NEED_REBOOT or REPORTING_ERROR_EVENT).
    pub fn check(&self, now: u64, observer: Observer) -> Result<CheckOutcome, EngineError> {
        let mut state = State::load(&self.paths.state())?;
        let mut rep = self.reporter(&state, observer);
        let result = self.check_inner(&mut state, now, &mut rep);
        if let Err(e) = &result {
            fail(&mut rep, e);
        }
        result
    }

    /// Checks and applies at `now`, then follows the reboot strategy once (see
    /// [`Engine::after_staging`]).
    pub fn update(&self, now: u64, observer: Observer) -> Result<UpdateOutcome, EngineError> {
        let mut state = State::load(&self.paths.state())?;
        let mut rep = self.reporter(&state, observer);
        let result = self.update_inner(&mut state, now, &mut rep);
        if let Err(e) = &result {
            fail(&mut rep, e);
        }
        match result? {
            UpdateOutcome::Staged { version, slot, .. } => Ok(UpdateOutcome::Staged {
                version,
                slot,
                next: self.after_staging(now, 0)?,
            }),
            other => Ok(other),
        }
    }

    fn check_inner(
        &self,
        state: &mut State,
        now: u64,
        rep: &mut Reporter,
    ) -> Result<CheckOutcome, EngineError> {
        rep.to(Phase::check)?;
        if let Some(problems) = self.config.problems_text() {
            return Err(EngineError::BadConfig(problems));
        }
        let booted = self.booted()?;
        let client = Client::new(
            self.config.server.as_deref().ok_or(EngineError::NoServer)?,
            self.policy,
        )?;
        let manifest = self.fetch_manifest(&client, state, now)?;
        state.last_check_time = Some(now);
        rep.status.last_checked_time = now;
        state.save(&self.paths.state())?;
        let version = match select_update(&manifest, &booted.os.version_id) {
            Decision::UpToDate => {
                rep.to(Phase::up_to_date)?;
                return Ok(CheckOutcome::UpToDate {
                    version: manifest.version,
                });
            }
            Decision::Refuse(reason) => return Err(reason.into()),
            Decision::Update { version } => version.to_string(),
        };
        if state.has_failed(&version) {
            return Err(EngineError::FailedBefore { version });
        }
        let target = Target {
            version: version.clone(),
            size: payload_of(&manifest, USR_IMG)?.size,
        };
        let staged = booted.table.entry(booted.slot.other());
        if staged.is_some_and(|e| e.version == version && !e.exhausted()) {
            rep.to(|p| p.already_staged(target))?;
            return Ok(CheckOutcome::AlreadyStaged { version });
        }
        let info = self.fetch_release_info(&client, &manifest, &booted.os)?;
        rep.to(|p| p.found(target))?;
        Ok(CheckOutcome::Available(Box::new(Found { manifest, info })))
    }

    /// keys.json then the channel manifest, verified; records what was accepted in `state`.
    fn fetch_manifest(
        &self,
        client: &Client,
        state: &mut State,
        now: u64,
    ) -> Result<Manifest, EngineError> {
        fetch_manifest(client, self.root_keys, &self.config.group, state, now)
    }

    fn fetch_release_info(
        &self,
        client: &Client,
        manifest: &Manifest,
        os: &OsRelease,
    ) -> Result<ReleaseInfo, EngineError> {
        fetch_release_info(client, manifest, &os.id)
    }

    fn update_inner(
        &self,
        state: &mut State,
        now: u64,
        rep: &mut Reporter,
    ) -> Result<UpdateOutcome, EngineError> {
        let booted = self.booted()?;
        match booted.table.entry(booted.slot) {
            None => {
                return Err(EngineError::NoBootedEntry {
                    slot: booted.slot,
                    esp: booted.esp,
                })
            }
            Some(e) if e.counter.is_some() => {
                return Err(EngineError::NotBlessed { slot: booted.slot })
            }
            Some(_) => {}
        }
        let found = match self.check_inner(state, now, rep)? {
            CheckOutcome::UpToDate { version } => return Ok(UpdateOutcome::UpToDate { version }),
            CheckOutcome::AlreadyStaged { version } => {
                return Ok(UpdateOutcome::Staged {
                    version,
                    slot: booted.slot.other(),
                    next: AfterStaging::Stay,
                })
            }
            CheckOutcome::Available(found) => found,
        };
        let client = Client::new(
            self.config.server.as_deref().ok_or(EngineError::NoServer)?,
            self.policy,
        )?;
        self.apply(&client, booted, &found, state, rep)?;
        Ok(UpdateOutcome::Staged {
            version: found.manifest.version.clone(),
            slot: self.host.booted_slot()?.other(),
            next: AfterStaging::Stay,
        })
    }

    fn apply(
        &self,
        client: &Client,
        booted: Booted,
        found: &Found,
        state: &mut State,
        rep: &mut Reporter,
    ) -> Result<(), EngineError> {
        let Booted {
            slot,
            os,
            mut table,
            esp,
        } = booted;
        let inactive = slot.other();
        // Everything that can be checked without touching the slot, first.
        let booted_entry = table.entry(slot).ok_or(EngineError::NoBootedEntry {
            slot,
            esp: esp.clone(),
        })?;
        let entry_path = esp.join(ENTRIES_DIR).join(&booted_entry.file_name);
        let entry_text = std::fs::read_to_string(&entry_path)
            .map_err(io_err(format!("reading {}", entry_path.display())))?;
        let cmdline = cmdline_for_new_slot(&entry_text).ok_or_else(|| EngineError::Io {
            what: format!("{}: no options line", entry_path.display()),
            source: std::io::ErrorKind::InvalidData.into(),
        })?;
        let target_dev = self.host.slot_device(inactive)?;
        ensure_not_booted(&self.host.slot_device(slot)?, &target_dev)?;
        let mut device = OpenOptions::new()
            .write(true)
            .open(&target_dev.path)
            .map_err(io_err(format!("opening {}", target_dev.path.display())))?;
        let have = device
            .seek(SeekFrom::End(0))
            .map_err(io_err(format!("sizing {}", target_dev.path.display())))?;
        let usr = payload_of(&found.manifest, USR_IMG)?;
        for (what, need) in [
            (
                "release.json usr_partition_size",
                found.info.usr_partition_size,
            ),
            ("usr.img", usr.size),
        ] {
            if need > have {
                return Err(EngineError::TooBig {
                    what,
                    need,
                    slot: inactive,
                    have,
                });
            }
        }
        let (kernel_ref, initrd_ref) = (
            payload_of(&found.manifest, VMLINUZ)?.clone(),
            payload_of(&found.manifest, INITRD_IMG)?.clone(),
        );

        // From here on the slot is not bootable until its entry is staged again.
        table
            .remove(inactive)
            .map_err(io_err(format!("removing the boot entry of {inactive}")))?;
        if state.pending.take().is_some() {
            state.save(&self.paths.state())?;
        }
        rep.to(Phase::download)?;
        device
            .seek(SeekFrom::Start(0))
            .map_err(io_err(format!("seeking {}", target_dev.path.display())))?;
        let mut progress_err = None;
        client.stream_payload(USR_IMG, usr, &mut device, &mut |received| {
            if let Err(e) = rep.to(|p| p.progress(received)) {
                progress_err.get_or_insert(e);
            }
        })?;
        if let Some(e) = progress_err {
            return Err(e);
        }
        device
            .sync_all()
            .map_err(io_err(format!("syncing {}", target_dev.path.display())))?;
        drop(device);
        rep.to(Phase::verify)?;
        let kernel = client.get_payload(VMLINUZ, &kernel_ref)?;
        let initrd = client.get_payload(INITRD_IMG, &initrd_ref)?;
        rep.to(Phase::finalize)?;
        let entry = BootEntry {
            os_id: os.id.clone(),
            os_name: found.info.os_name.clone(),
            version: found.manifest.version.clone(),
            slot: inactive,
            usr_partuuid: target_dev.partuuid.clone(),
            cmdline,
            counter: Some(BootCounter {
                left: BOOT_TRIES,
                done: 0,
            }),
        };
        table
            .stage(&entry, &kernel, &initrd)
            .map_err(io_err(format!(
                "staging {} on {}",
                entry.file_name(),
                esp.display()
            )))?;
        state.pending = Some(crate::state::Pending {
            version: entry.version.clone(),
            slot: inactive.label().into(),
        });
        state.save(&self.paths.state())?;
        rep.to(Phase::staged)?;
        Ok(())
    }
}

/// keys.json (against `root_keys`) then `channel`'s manifest (against keys.json, the time and
/// what `state` saw before), verified; records what was accepted in `state`. The one chain of
/// verification, for the engine and the installer.
pub fn fetch_manifest(
    client: &Client,
    root_keys: &RootKeys,
    channel: &str,
    state: &mut State,
    now: u64,
) -> Result<Manifest, EngineError> {
    let keys = client.get_document(KEYS_JSON)?;
    let keys_sig = client.get_document(KEYS_SIG)?;
    let keyset = verify_keyset(
        root_keys,
        &keys,
        &keys_sig,
        now,
        state.highest_keyset_version,
    )?;
    let doc = client.get_document(&manifest_path(channel))?;
    let sig = client.get_document(&manifest_sig_path(channel))?;
    let manifest = verify_manifest(
        &keyset,
        &doc,
        &sig,
        channel,
        now,
        state.seen_manifests.get(channel),
    )?;
    state.highest_keyset_version = Some(
        state
            .highest_keyset_version
            .unwrap_or(0)
            .max(keyset.version),
    );
    state
        .seen_manifests
        .insert(channel.to_owned(), SeenManifest::of(&manifest, &doc));
    Ok(manifest)
}

/// The verified `manifest`'s release.json, fetched and checked against its hash, its OS id
/// (`os_id`'s) and version (the manifest's).
pub fn fetch_release_info(
    client: &Client,
    manifest: &Manifest,
    os_id: &str,
) -> Result<ReleaseInfo, EngineError> {
    let bytes = client.get_payload(RELEASE_JSON, payload_of(manifest, RELEASE_JSON)?)?;
    let info: ReleaseInfo =
        serde_json::from_slice(&bytes).map_err(|e| EngineError::BadReleaseInfo(e.to_string()))?;
    if info.os_id != os_id {
        return Err(EngineError::WrongOs {
            expected: os_id.to_owned(),
            got: info.os_id,
        });
    }
    if info.version != manifest.version {
        return Err(EngineError::BadReleaseInfo(format!(
            "version {} does not match the manifest's {}",
            info.version, manifest.version
        )));
    }
    Ok(info)
}

fn fail(rep: &mut Reporter, e: &EngineError) {
    let text = crate::http::error_chain(e);
    if rep.to(|p| p.fail(text.clone())).is_err() {
        // Failed before a run started (e.g. not blessed): report it all the same.
        rep.phase = Phase::ReportingError {
            error: text,
            target: None,
        };
        rep.status.apply_phase(&rep.phase);
        let _ = rep.status.save(&rep.path);
    }
}

/// Refuses a target that is the booted partition, by path (resolved) or PARTUUID.
pub fn ensure_not_booted(booted: &SlotDevice, target: &SlotDevice) -> Result<(), EngineError> {
    let resolve = |p: &std::path::Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_owned());
    if resolve(&booted.path) == resolve(&target.path)
        || booted.partuuid.eq_ignore_ascii_case(&target.partuuid)
    {
        return Err(EngineError::WouldWriteBooted {
            path: target.path.clone(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_booted_partition_is_never_a_target() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        std::fs::write(&a, b"").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&a, &link).unwrap();
        let dev = |p: &std::path::Path, u: &str| SlotDevice {
            path: p.to_owned(),
            partuuid: u.into(),
        };
        assert!(ensure_not_booted(&dev(&a, "1"), &dev(&link, "2")).is_err());
        assert!(ensure_not_booted(&dev(&a, "1"), &dev(&dir.path().join("b"), "1")).is_err());
        assert!(ensure_not_booted(&dev(&a, "1"), &dev(&dir.path().join("b"), "2")).is_ok());
    }
}
