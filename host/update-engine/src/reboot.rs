//! After an update is staged: whether and when this machine reboots (DESIGN.md "Reboot
//! coordination"; issue 4).
//!
//! [`plan`] is the pure decision from `REBOOT_STRATEGY`, the reboot window and the clock:
//! stay (`off`), reboot now (`reboot`), wait for the window, or take a lock first (`etcd-lock`,
//! `fleetlock`; `best-effort` is etcd-lock when etcd answers, else reboot).
//! [`Engine::after_staging`] carries it out with the locks of [`crate::lock::reboot_lock`].
//!
//! The engine records in its state that it may hold the lock *before* asking for it, so a
//! reply lost on the way is still released after the next boot. It releases the lock only once
//! the booted slot is marked good, and an `AlreadyHeld` answer that no earlier attempt of this
//! machine explains means another machine has the same machine id: reported, and no reboot.

use crate::config::RebootStrategy;
use crate::engine::{AfterStaging, Engine, EngineError};
use crate::host::Host;
use crate::lock::reboot_lock::{
    judge, EtcdRebootLock, FleetRebootLock, LockKind, LockRecord, RebootLock, Verdict,
};
use crate::lock::RebootWindow;
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

/// What [`Engine::reboot_with_lock`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockedReboot {
    /// The lock is this machine's; rebooting (a real reboot does not return).
    Rebooting {
        /// E.g. "took the reboot lock (etcd http://…, group default)".
        how: String,
    },
    /// The lock answered no (full, a duplicate id) or did not answer: why.
    Refused(String),
}

impl<H: Host> Engine<'_, H> {
    /// This machine's holder id: `/etc/machine-id`.
    pub fn holder_id(&self) -> Result<String, String> {
        let path = self.paths.machine_id();
        let id = std::fs::read_to_string(&path)
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        let id = id.trim();
        if id.is_empty() {
            return Err(format!("{} is empty", path.display()));
        }
        Ok(id.to_owned())
    }

    /// The lock of `kind` for holder `id`, as update.conf configures it.
    pub fn lock_of(&self, kind: LockKind, id: &str) -> Result<Box<dyn RebootLock>, String> {
        let conf = &self.config.reboot_lock;
        Ok(match kind {
            LockKind::Etcd => Box::new(EtcdRebootLock::new(conf.etcd_config(), id)),
            LockKind::FleetLock => {
                let url = conf
                    .fleetlock_url
                    .as_deref()
                    .ok_or("REBOOT_STRATEGY=fleetlock needs FLEETLOCK_URL in update.conf")?;
                Box::new(FleetRebootLock::new(url, &conf.fleetlock_group, id)?)
            }
        })
    }

    /// Why the engine does not reboot (nor take a lock to): update.conf has values it cannot
    /// use, and what it would do with them is not what the operator wrote.
    fn no_reboot_while_misconfigured(&self) -> Option<String> {
        self.config
            .problems_text()
            .map(|problems| format!("not rebooting until update.conf is fixed: {problems}"))
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
        if let Some(why) = self.no_reboot_while_misconfigured() {
            self.note_reboot(Some(why.clone()));
            return Ok(AfterStaging::Waiting {
                reason: why,
                retry_in: retry_delay(attempt),
            });
        }
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
                let probe = EtcdRebootLock::new(self.config.reboot_lock.etcd_config(), "");
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
        match self.reboot_with_lock(lock.as_ref(), &id)? {
            LockedReboot::Rebooting { how } => Ok(AfterStaging::Rebooting { how }),
            LockedReboot::Refused(why) => wait(format!(
                "waiting for the reboot lock ({}): {why}",
                lock.describe()
            )),
        }
    }

    /// Takes `lock` for holder `id` and reboots once it is this machine's (`after_staging`,
    /// `locksmithctl reboot`). The attempt is recorded in the state before asking (module
    /// docs), so the daemon gives the lock back after the next good boot.
    pub fn reboot_with_lock(
        &self,
        lock: &dyn RebootLock,
        id: &str,
    ) -> Result<LockedReboot, EngineError> {
        if let Some(why) = self.no_reboot_while_misconfigured() {
            return Ok(LockedReboot::Refused(why));
        }
        let id = id.to_owned();
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
                let how = format!("took the reboot lock ({})", lock.describe());
                self.reboot_now(how.clone())?;
                Ok(LockedReboot::Rebooting { how })
            }
            Verdict::Wait(why) => Ok(LockedReboot::Refused(why)),
        }
    }

    /// Says so (the console keeps the line: a real reboot does not return), then reboots.
    fn reboot_now(&self, how: String) -> Result<AfterStaging, EngineError> {
        let into = State::load(&self.paths.state())
            .ok()
            .and_then(|s| s.pending)
            .map(|p| format!(" into {}", p.version))
            .unwrap_or_default();
        // One write: the line reaches whatever carries it to the console whole.
        let line = format!("update-engine: rebooting{into}: {how}\n");
        let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
        self.note_reboot(Some(format!("rebooting{into}: {how}")));
        self.host.reboot()?;
        Ok(AfterStaging::Rebooting { how })
    }

    /// After a good boot: gives back the reboot lock this machine may hold (recorded in the
    /// state), and for `fleetlock` reports steady state as the protocol asks at every start.
    /// `Ok(Some(what))` if it talked to a lock, `Ok(None)` if there was nothing to do. Talks to
    /// no lock whose settings in update.conf it cannot use ([`crate::Config::lock_problem`]):
    /// another server's "not held" would lose the record of the hold, so the record stays
    /// until they are fixed.
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
        if let Some(problem) = self.config.lock_problem(kind) {
            if state.reboot_lock.is_none() {
                // Only the steady-state report, which can wait for a usable URL and group.
                return Ok(None);
            }
            return Err(format!(
                "not giving back the {kind} reboot lock until update.conf is fixed: {problem}"
            ));
        }
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

    proptest! {
        #[test]
        fn retry_delays_grow_and_are_capped(n in 0u32..1000) {
            let d = retry_delay(n);
            prop_assert!((RETRY_MIN_SECS..=RETRY_MAX_SECS).contains(&d));
            prop_assert!(retry_delay(n + 1) >= d);
        }
    }
}
