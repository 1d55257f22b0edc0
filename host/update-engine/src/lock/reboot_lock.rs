//! The cluster reboot lock as this machine uses it: which lock ([`LockKind`]), what the
//! machine recorded about its hold before and after asking ([`LockRecord`], persisted in the
//! engine's state), the two locks behind one trait ([`RebootLock`]: locksmith's semaphore in
//! etcd, a FleetLock server), and the pure judgement of an answer ([`judge`]).
//!
//! The record is written *before* asking, so a reply lost on the way (etcd applied the lock,
//! the answer never came) is still released after the next boot; an `AlreadyHeld` answer that
//! no earlier attempt of this machine explains means another machine has the same machine id.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::etcd::{EtcdConfig, EtcdError, EtcdLock, Locked};
use super::fleetlock::FleetLockClient;

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
    config: EtcdConfig,
    id: String,
}

impl EtcdRebootLock {
    /// The lock for `id` in the etcd `config` names.
    pub fn new(config: EtcdConfig, id: &str) -> EtcdRebootLock {
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
    /// The lock for `id` at the FleetLock server `url`, in `group`.
    pub fn new(url: &str, group: &str, id: &str) -> Result<FleetRebootLock, String> {
        let client = FleetLockClient::new(url, group, id)
            .map_err(|e| format!("FleetLock client for {url}: {e}"))?;
        Ok(FleetRebootLock {
            client,
            url: url.to_owned(),
            group: group.to_owned(),
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
