//! After an update is staged: whether and when this machine reboots (DESIGN.md "Reboot
//! coordination"; issue 4).
//!
//! [`plan`] is the pure decision from `REBOOT_STRATEGY`, the reboot window and the clock:
//! stay (`off`), reboot now (`reboot`), wait for the window, or take a lock first (`etcd-lock`,
//! `fleetlock`; `best-effort` is etcd-lock when etcd answers, else reboot). The lock is behind
//! [`RebootLock`], with two implementations: locksmith's semaphore in etcd ([`EtcdRebootLock`])
//! and a FleetLock server ([`FleetRebootLock`]).
//!
//! The engine records in its state ([`LockRecord`]) that it may hold the lock *before* asking
//! for it, so a reply lost on the way (etcd applied the lock, the answer never came) is still
//! released after the next boot. It releases the lock only once the booted slot is marked good,
//! and an `AlreadyHeld` answer that no earlier attempt of this machine explains means another
//! machine has the same machine id: reported, and no reboot.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::config::{RebootLockConfig, RebootStrategy};
use crate::engine::{Engine, EngineError};
use crate::host::Host;
use crate::lock::cli::etcd_config;
use crate::lock::{EtcdError, EtcdLock, FleetLockClient, Locked, RebootWindow};
use crate::state::State;
use crate::status::Status;

/// The first wait after a failed attempt to take or release the lock.
pub const RETRY_MIN_SECS: u64 = 5;
/// The longest wait between two attempts.
pub const RETRY_MAX_SECS: u64 = 300;

/// Seconds to wait before attempt `failures + 1`: 5, 10, 20, ... capped at 5 minutes. Pure.
pub fn retry_delay(failures: u32) -> u64 {
    RETRY_MIN_SECS
        .saturating_mul(1u64 << failures.min(16))
        .min(RETRY_MAX_SECS)
}

/// Which lock a strategy takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LockKind {
    /// locksmith's semaphore in etcd.
    Etcd,
    /// A FleetLock server.
    #[serde(rename = "fleetlock")]
    FleetLock,
}

impl fmt::Display for LockKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LockKind::Etcd => "etcd",
            LockKind::FleetLock => "fleetlock",
        })
    }
}

/// What to do with a staged update now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// `off`: the operator reboots.
    Stay,
    /// Reboot now.
    Reboot,
    /// Outside the reboot window: it opens in `secs`.
    WaitForWindow {
        /// Seconds until the window opens.
        secs: u64,
    },
    /// Take this lock, then reboot.
    Lock(LockKind),
    /// `best-effort`: the etcd lock if etcd answers, else reboot.
    LockIfEtcdAnswers,
}

/// The decision for `strategy` at `now` (unix seconds, UTC) with an optional reboot window.
/// The window applies to every strategy that reboots by itself. Pure.
pub fn plan(strategy: RebootStrategy, window: Option<&RebootWindow>, now: u64) -> Plan {
    if strategy == RebootStrategy::Off {
        return Plan::Stay;
    }
    if let Some(w) = window {
        if !w.contains(now) {
            return Plan::WaitForWindow {
                secs: w.secs_until_open(now),
            };
        }
    }
    match strategy {
        RebootStrategy::Off => Plan::Stay,
        RebootStrategy::Reboot => Plan::Reboot,
        RebootStrategy::EtcdLock => Plan::Lock(LockKind::Etcd),
        RebootStrategy::FleetLock => Plan::Lock(LockKind::FleetLock),
        RebootStrategy::BestEffort => Plan::LockIfEtcdAnswers,
    }
}

/// What this machine knows about its hold on the reboot lock (persisted in the state).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockRecord {
    /// Which lock.
    pub kind: LockKind,
    /// The holder id used (the machine id).
    pub id: String,
    /// An attempt was answered "yes": this machine holds it.
    #[serde(default)]
    pub acquired: bool,
    /// An attempt failed without an answer: it may have been applied.
    #[serde(default)]
    pub uncertain: bool,
}

/// How an attempt to take the lock ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acquire {
    /// Taken now.
    Taken,
    /// This id already holds it.
    AlreadyHeld,
    /// Not taken; the lock answered why (full).
    Refused(String),
    /// No answer (unreachable, timeout): the attempt may or may not have been applied.
    NoAnswer(String),
}

/// A cluster-wide reboot lock, for one holder id.
pub trait RebootLock {
    /// Which lock this is.
    fn kind(&self) -> LockKind;
    /// Where it is, for messages.
    fn describe(&self) -> String;
    /// Takes a slot (recursive: holding it already is [`Acquire::AlreadyHeld`]).
    fn acquire(&self) -> Acquire;
    /// Gives the slot back if held; `Ok(true)` if it was held.
    fn release(&self) -> Result<bool, String>;
}

/// Whether an [`Acquire`] answer lets this machine reboot, given what it recorded before the
/// attempt; and the record to keep. Pure.
pub fn judge(before: Option<&LockRecord>, kind: LockKind, id: &str, answer: &Acquire) -> Judged {
    let mut record = before.cloned().unwrap_or(LockRecord {
        kind,
        id: id.to_owned(),
        acquired: false,
        uncertain: false,
    });
    let verdict = match answer {
        Acquire::Taken => {
            record.acquired = true;
            Verdict::Reboot
        }
        Acquire::AlreadyHeld if record.acquired || record.uncertain || kind != LockKind::Etcd => {
            // Ours (FleetLock locks are recursive by protocol and say nothing more).
            record.acquired = true;
            Verdict::Reboot
        }
        Acquire::AlreadyHeld => Verdict::Wait(format!(
            "the reboot lock already has a holder with this machine's id {id} that this machine \
             never took: another machine with the same machine-id? (if it is this one: \
             update-engine lock unlock {id})"
        )),
        Acquire::Refused(why) => Verdict::Wait(why.clone()),
        Acquire::NoAnswer(why) => {
            record.uncertain = true;
            Verdict::Wait(why.clone())
        }
    };
    Judged { record, verdict }
}

/// The outcome of [`judge`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judged {
    /// The record to persist.
    pub record: LockRecord,
    /// What to do.
    pub verdict: Verdict,
}

/// Reboot, or wait and say why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The lock is ours: reboot.
    Reboot,
    /// Not now, because of this.
    Wait(String),
}

/// locksmith's semaphore in etcd, for one holder id.
pub struct EtcdRebootLock {
    config: crate::lock::EtcdConfig,
    id: String,
}

impl EtcdRebootLock {
    /// The lock for `id` with the etcd settings of `conf`.
    pub fn new(conf: &RebootLockConfig, id: &str) -> EtcdRebootLock {
        let mut config = etcd_config(&Default::default(), None, conf, &|_| None);
        config.holder_ttl_secs = conf.etcd_holder_ttl_secs;
        EtcdRebootLock {
            config,
            id: id.to_owned(),
        }
    }

    /// Whether etcd answers (for `best-effort`).
    pub fn answers(&self) -> bool {
        EtcdLock::connect(&self.config)
            .and_then(|l| l.get())
            .is_ok()
    }
}

impl RebootLock for EtcdRebootLock {
    fn kind(&self) -> LockKind {
        LockKind::Etcd
    }
    fn describe(&self) -> String {
        let group = self.config.group.as_deref().unwrap_or("default");
        format!("etcd {} (group {group})", self.config.endpoints.join(","))
    }
    fn acquire(&self) -> Acquire {
        let result = EtcdLock::connect(&self.config).and_then(|l| {
            l.init()?;
            l.lock(&self.id)
        });
        match result {
            Ok(Locked::Acquired) => Acquire::Taken,
            Ok(Locked::AlreadyHeld) => Acquire::AlreadyHeld,
            Err(e @ EtcdError::Full { .. }) => Acquire::Refused(e.to_string()),
            Err(e) => Acquire::NoAnswer(e.to_string()),
        }
    }
    fn release(&self) -> Result<bool, String> {
        EtcdLock::connect(&self.config)
            .and_then(|l| l.unlock_if_held(&self.id))
            .map_err(|e| e.to_string())
    }
}

/// A FleetLock server, for one holder id.
pub struct FleetRebootLock {
    client: FleetLockClient,
    url: String,
    group: String,
}

impl FleetRebootLock {
    /// The lock for `id` at `FLEETLOCK_URL`; an error names what is missing or wrong.
    pub fn new(conf: &RebootLockConfig, id: &str) -> Result<FleetRebootLock, String> {
        let url = conf
            .fleetlock_url
            .clone()
            .ok_or("REBOOT_STRATEGY=fleetlock needs FLEETLOCK_URL in update.conf")?;
        let client = FleetLockClient::new(&url, &conf.fleetlock_group, id)
            .map_err(|e| format!("FleetLock client for {url}: {e}"))?;
        Ok(FleetRebootLock {
            client,
            url,
            group: conf.fleetlock_group.clone(),
        })
    }
}

impl RebootLock for FleetRebootLock {
    fn kind(&self) -> LockKind {
        LockKind::FleetLock
    }
    fn describe(&self) -> String {
        format!("FleetLock {} (group {})", self.url, self.group)
    }
    fn acquire(&self) -> Acquire {
        match self.client.pre_reboot() {
            Ok(()) => Acquire::Taken,
            Err(e) if e.status().is_some() => Acquire::Refused(e.to_string()),
            Err(e) => Acquire::NoAnswer(e.to_string()),
        }
    }
    fn release(&self) -> Result<bool, String> {
        // steady-state is "unlock if held": the protocol does not say whether it was.
        self.client
            .steady_state()
            .map(|()| true)
            .map_err(|e| e.to_string())
    }
}

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

impl<H: Host> Engine<'_, H> {
    /// This machine's holder id: `/etc/machine-id`.
    fn holder_id(&self) -> Result<String, String> {
        let path = self.paths.machine_id();
        let id = std::fs::read_to_string(&path)
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        let id = id.trim();
        if id.is_empty() {
            return Err(format!("{} is empty", path.display()));
        }
        Ok(id.to_owned())
    }

    fn lock_of(&self, kind: LockKind, id: &str) -> Result<Box<dyn RebootLock>, String> {
        let conf = &self.config.reboot_lock;
        Ok(match kind {
            LockKind::Etcd => Box::new(EtcdRebootLock::new(conf, id)),
            LockKind::FleetLock => Box::new(FleetRebootLock::new(conf, id)?),
        })
    }

    /// Writes why the engine is (not) rebooting into the status file (informational).
    pub(crate) fn note_reboot(&self, note: Option<String>) {
        let path = self.paths.status();
        let mut status = Status::load(&path).unwrap_or_default();
        status.reboot_note = note;
        if let Err(e) = status.save(&path) {
            eprintln!("warning: writing {}: {e}", path.display());
        }
    }

    /// Follows `REBOOT_STRATEGY` once for a staged update at `now`: stays, waits (for the
    /// window or the lock; `attempt` counts earlier waits, for the backoff), or takes the lock
    /// and reboots. The reason for waiting goes into the status (`REBOOT_NOTE`).
    pub fn after_staging(&self, now: u64, attempt: u32) -> Result<AfterStaging, EngineError> {
        let strategy = self.config.reboot_strategy;
        let window = self.config.reboot_lock.window.as_ref();
        let lock = match plan(strategy, window, now) {
            Plan::Stay => {
                self.note_reboot(Some("REBOOT_STRATEGY=off: reboot to use it".into()));
                return Ok(AfterStaging::Stay);
            }
            Plan::WaitForWindow { secs } => {
                let reason = format!(
                    "outside the reboot window ({}); it opens in {secs} s",
                    window.map(ToString::to_string).unwrap_or_default()
                );
                self.note_reboot(Some(reason.clone()));
                return Ok(AfterStaging::Waiting {
                    reason,
                    retry_in: secs.max(1),
                });
            }
            Plan::Reboot => return self.reboot_now("REBOOT_STRATEGY=reboot".into()),
            Plan::Lock(kind) => kind,
            Plan::LockIfEtcdAnswers => {
                let probe = EtcdRebootLock::new(&self.config.reboot_lock, "");
                if !probe.answers() {
                    return self.reboot_now(format!(
                        "REBOOT_STRATEGY=best-effort and {} does not answer",
                        probe.describe()
                    ));
                }
                LockKind::Etcd
            }
        };
        let wait = |reason: String| {
            self.note_reboot(Some(reason.clone()));
            Ok(AfterStaging::Waiting {
                reason,
                retry_in: retry_delay(attempt),
            })
        };
        let id = match self.holder_id() {
            Ok(id) => id,
            Err(e) => return wait(format!("no holder id for the reboot lock: {e}")),
        };
        let lock = match self.lock_of(lock, &id) {
            Ok(l) => l,
            Err(e) => return wait(e),
        };
        // Recorded before asking: an answer lost on the way is still released after boot.
        let path = self.paths.state();
        let mut state = State::load(&path)?;
        let before = state.reboot_lock.clone();
        if before.is_none() {
            state.reboot_lock = Some(LockRecord {
                kind: lock.kind(),
                id: id.clone(),
                acquired: false,
                uncertain: false,
            });
            state.save(&path)?;
        }
        let answer = lock.acquire();
        let judged = judge(before.as_ref(), lock.kind(), &id, &answer);
        state.reboot_lock = Some(judged.record);
        state.save(&path)?;
        match judged.verdict {
            Verdict::Reboot => {
                self.reboot_now(format!("took the reboot lock ({})", lock.describe()))
            }
            Verdict::Wait(why) => wait(format!(
                "waiting for the reboot lock ({}): {why}",
                lock.describe()
            )),
        }
    }

    /// Says so (the console keeps the line: a real reboot does not return), then reboots.
    fn reboot_now(&self, how: String) -> Result<AfterStaging, EngineError> {
        let into = State::load(&self.paths.state())
            .ok()
            .and_then(|s| s.pending)
            .map(|p| format!(" into {}", p.version))
            .unwrap_or_default();
        eprintln!("update-engine: rebooting{into}: {how}");
        self.note_reboot(Some(format!("rebooting{into}: {how}")));
        self.host.reboot()?;
        Ok(AfterStaging::Rebooting { how })
    }

    /// After a good boot: gives back the reboot lock this machine may hold (recorded in the
    /// state), and for `fleetlock` reports steady state as the protocol asks at every start.
    /// `Ok(Some(what))` if it talked to a lock, `Ok(None)` if there was nothing to do.
    pub fn release_reboot_lock(&self) -> Result<Option<String>, String> {
        let path = self.paths.state();
        let state = State::load(&path).map_err(|e| e.to_string())?;
        let (kind, id) = match &state.reboot_lock {
            Some(r) => (r.kind, r.id.clone()),
            None if self.config.reboot_strategy == RebootStrategy::FleetLock
                && self.config.reboot_lock.fleetlock_url.is_some() =>
            {
                (LockKind::FleetLock, self.holder_id()?)
            }
            None => return Ok(None),
        };
        let lock = self.lock_of(kind, &id)?;
        let held = lock
            .release()
            .map_err(|e| format!("releasing the reboot lock ({}): {e}", lock.describe()))?;
        if state.reboot_lock.is_some() {
            let mut state = State::load(&path).map_err(|e| e.to_string())?;
            state.reboot_lock = None;
            state.save(&path).map_err(|e| e.to_string())?;
        }
        Ok(Some(if held {
            format!("released the reboot lock ({})", lock.describe())
        } else {
            format!("the reboot lock ({}) was not held", lock.describe())
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const THU_2026_11_19_2300: u64 = 1_795_129_200; // a Thursday, 23:00 UTC

    #[test]
    fn plans() {
        let w = RebootWindow::parse("Thu 23:00", "1h30m").unwrap();
        assert!(w.contains(THU_2026_11_19_2300));
        let inside = THU_2026_11_19_2300 + 60;
        let before = THU_2026_11_19_2300 - 3600;
        use RebootStrategy::*;
        assert_eq!(plan(Off, Some(&w), inside), Plan::Stay);
        assert_eq!(plan(Off, None, inside), Plan::Stay);
        assert_eq!(plan(Reboot, None, before), Plan::Reboot);
        assert_eq!(plan(Reboot, Some(&w), inside), Plan::Reboot);
        assert_eq!(
            plan(Reboot, Some(&w), before),
            Plan::WaitForWindow { secs: 3600 }
        );
        assert_eq!(
            plan(EtcdLock, Some(&w), before),
            Plan::WaitForWindow { secs: 3600 }
        );
        assert_eq!(plan(EtcdLock, Some(&w), inside), Plan::Lock(LockKind::Etcd));
        assert_eq!(
            plan(FleetLock, None, inside),
            Plan::Lock(LockKind::FleetLock)
        );
        assert_eq!(plan(BestEffort, None, inside), Plan::LockIfEtcdAnswers);
    }

    #[test]
    fn judging_answers() {
        let id = "m1";
        let fresh = |a: &Acquire| judge(None, LockKind::Etcd, id, a);
        assert_eq!(fresh(&Acquire::Taken).verdict, Verdict::Reboot);
        assert!(fresh(&Acquire::Taken).record.acquired);
        // Already held with no attempt of ours behind it: a duplicate machine id.
        let dup = fresh(&Acquire::AlreadyHeld);
        assert!(
            matches!(&dup.verdict, Verdict::Wait(w) if w.contains("same machine-id")),
            "{dup:?}"
        );
        // An unanswered attempt, then "already held": ours.
        let lost = fresh(&Acquire::NoAnswer("etcd unreachable".into()));
        assert_eq!(
            lost.verdict,
            Verdict::Wait("etcd unreachable".into()),
            "{lost:?}"
        );
        assert!(lost.record.uncertain && !lost.record.acquired);
        let again = judge(
            Some(&lost.record),
            LockKind::Etcd,
            id,
            &Acquire::AlreadyHeld,
        );
        assert_eq!(again.verdict, Verdict::Reboot);
        assert!(again.record.acquired);
        // Taken before (e.g. the reboot itself failed), asked again: ours.
        let taken = fresh(&Acquire::Taken).record;
        assert_eq!(
            judge(Some(&taken), LockKind::Etcd, id, &Acquire::AlreadyHeld).verdict,
            Verdict::Reboot
        );
        // A full semaphore is a definite no: nothing becomes uncertain.
        let full = fresh(&Acquire::Refused("full".into()));
        assert_eq!(full.verdict, Verdict::Wait("full".into()));
        assert!(!full.record.uncertain && !full.record.acquired);
        // FleetLock is recursive by protocol.
        assert_eq!(
            judge(None, LockKind::FleetLock, id, &Acquire::AlreadyHeld).verdict,
            Verdict::Reboot
        );
    }

    #[test]
    fn record_round_trips() {
        let r = LockRecord {
            kind: LockKind::FleetLock,
            id: "abc".into(),
            acquired: true,
            uncertain: false,
        };
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(
            json,
            r#"{"kind":"fleetlock","id":"abc","acquired":true,"uncertain":false}"#
        );
        assert_eq!(serde_json::from_str::<LockRecord>(&json).unwrap(), r);
    }

    proptest! {
        #[test]
        fn retry_delays_grow_and_are_capped(n in 0u32..1000) {
            let d = retry_delay(n);
            prop_assert!((RETRY_MIN_SECS..=RETRY_MAX_SECS).contains(&d));
            prop_assert!(retry_delay(n + 1) >= d);
        }
    }
}
