//! After boot: rollback detection, the health check and blessing (SPECS.md S4: the engine does
//! what systemd-bless-boot does), the manual `rollback`, and the daemon loop.
//!
//! Health: a `getty`/`agetty` process runs (the OS reached its login prompt), the engine itself
//! runs (it is the one checking), and every executable in `/etc/<os-id>/health.d/` exits 0.
//! Until the booted slot's entry is blessed, `update` refuses to write the other slot. If health
//! does not pass within `HEALTH_TIMEOUT`, the daemon reboots: the loader's counter then runs out
//! and the machine falls back to the other slot.
//!
//! update.conf never stops the daemon: with values it cannot use it still blesses the booted
//! slot (or reboots an unhealthy one), gives back its reboot lock when that lock's settings are
//! usable, answers `status`, and neither checks, downloads nor reboots for an update until the
//! files are fixed (then it exits, and the service manager starts it on them).

use std::path::Path;
use std::time::{Duration, Instant};

use contract::slots::{Slot, SlotTable};

use crate::config::Paths;
use crate::engine::AfterStaging;
use crate::engine::{Engine, EngineError, UpdateOutcome};
use crate::host::{Host, HEALTH_CHECK_TIMEOUT};
use crate::policy::jittered_interval;
use crate::reboot::retry_delay;
use crate::request::Request;
use crate::state::{FailedVersion, State};
use crate::status::Phase;

/// Names of the processes that show the login prompt is up.
pub const GETTY_NAMES: [&str; 2] = ["getty", "agetty"];
/// Time between two health probes while waiting.
pub const HEALTH_POLL: Duration = Duration::from_secs(5);

/// After a failed check, the daemon tries again this soon (seconds).
pub const RETRY_AFTER_ERROR_SECS: u64 = 30;
/// How often a daemon whose update.conf has values it cannot use reads the files again.
pub const CONFIG_POLL: Duration = Duration::from_secs(30);

/// What `mark-good` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MarkGood {
    /// The booted slot's entry had no counter already.
    AlreadyGood,
    /// The health check passed and the entry was blessed.
    Blessed,
    /// The health check did not pass (in time); the reason.
    Unhealthy(String),
}

/// What `rollback` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolledBack {
    /// The entry marked bad.
    pub marked_bad: String,
    /// The slot the loader boots next.
    pub next_slot: Slot,
    /// Its version.
    pub next_version: String,
}

/// One health probe: `Err` says what is not healthy yet.
pub fn health_check(paths: &Paths, host: &impl Host, os_id: &str) -> Result<(), String> {
    let names = host.process_names().map_err(|e| e.to_string())?;
    if !names.iter().any(|n| GETTY_NAMES.contains(&n.as_str())) {
        return Err("no getty running: the login prompt is not up".into());
    }
    for program in health_programs(&paths.health_dir(os_id))? {
        match host.run_check(&program, HEALTH_CHECK_TIMEOUT) {
            Ok(true) => {}
            Ok(false) => return Err(format!("health check {} failed", program.display())),
            Err(e) => return Err(format!("health check {}: {e}", program.display())),
        }
    }
    Ok(())
}

/// The executable regular files of `dir`, sorted; none if it does not exist.
fn health_programs(dir: &Path) -> Result<Vec<std::path::PathBuf>, String> {
    use std::os::unix::fs::PermissionsExt;
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("reading {}: {e}", dir.display())),
    };
    let mut programs: Vec<_> = entries
        .flatten()
        .filter(|e| {
            e.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
        .map(|e| e.path())
        .collect();
    programs.sort();
    Ok(programs)
}

impl<H: Host> Engine<'_, H> {
    fn table(&self) -> Result<(Slot, String, String, SlotTable, std::path::PathBuf), EngineError> {
        let slot = self.host.booted_slot()?;
        let os = self.host.os_release()?;
        let esp = self.host.esp()?;
        let table = crate::engine::load_slots(&esp, &os.id)?;
        Ok((slot, os.id, os.version_id, table, esp))
    }

    /// Records a rollback the loader did (the other slot's newer entry ran out of tries), and
    /// clears the pending update once it is the booted one. Returns the rollback, if any.
    pub fn after_boot(&self, now: u64) -> Result<Option<FailedVersion>, EngineError> {
        let (slot, _, version, table, _) = self.table()?;
        let mut state = State::load(&self.paths.state())?;
        let mut changed = false;
        let failed = table.rolled_back_from(slot).map(|e| FailedVersion {
            version: e.version.clone(),
            slot: e.slot.label().into(),
            rolled_back_to: version.clone(),
            detected_at: now,
        });
        if let Some(f) = &failed {
            changed |= state.record_failure(f.clone());
        }
        if state.pending.as_ref().is_some_and(|p| p.version == version) {
            state.pending = None;
            changed = true;
        }
        if changed {
            state.save(&self.paths.state())?;
        }
        let status = self.base_status(&state);
        let _ = status.save(&self.paths.status());
        Ok(failed)
    }

    /// Blesses the booted slot once it is healthy, probing every `poll` for up to `wait`
    /// (`Duration::ZERO`: probe once).
    pub fn mark_good(
        &self,
        now: u64,
        wait: Duration,
        poll: Duration,
    ) -> Result<MarkGood, EngineError> {
        self.after_boot(now)?;
        let (slot, os_id, _, mut table, esp) = self.table()?;
        match table.entry(slot) {
            None => return Err(EngineError::NoBootedEntry { slot, esp }),
            Some(e) if e.counter.is_none() => return Ok(MarkGood::AlreadyGood),
            Some(_) => {}
        }
        let start = Instant::now();
        loop {
            match health_check(self.paths, self.host, &os_id) {
                Ok(()) => break,
                Err(reason) if start.elapsed() + poll > wait => {
                    return Ok(MarkGood::Unhealthy(reason))
                }
                Err(_) => std::thread::sleep(poll),
            }
        }
        table.bless(slot).map_err(|source| EngineError::Io {
            what: format!("blessing the boot entry of {slot}"),
            source,
        })?;
        let state = State::load(&self.paths.state())?;
        let _ = self.base_status(&state).save(&self.paths.status());
        Ok(MarkGood::Blessed)
    }

    /// Marks the booted entry bad (`+0-N`) so the loader boots the other slot, which must have
    /// an entry with tries left. Reboots if `reboot`.
    pub fn rollback(&self, reboot: bool) -> Result<RolledBack, EngineError> {
        let (slot, _, _, mut table, esp) = self.table()?;
        let other = table
            .entry(slot.other())
            .filter(|e| !e.exhausted())
            .cloned()
            .ok_or(EngineError::NoFallback { slot: slot.other() })?;
        if table.entry(slot).is_none() {
            return Err(EngineError::NoBootedEntry { slot, esp });
        }
        let bad = table.mark_bad(slot).map_err(|source| EngineError::Io {
            what: format!("marking the boot entry of {slot} bad"),
            source,
        })?;
        if reboot {
            self.host.reboot()?;
        }
        Ok(RolledBack {
            marked_bad: bad,
            next_slot: other.slot,
            next_version: other.version,
        })
    }

    /// The daemon: rollback detection and the health check (rebooting when it does not pass
    /// within `HEALTH_TIMEOUT`), then `update` at start and every `CHECK_INTERVAL ± 10 %`.
    /// `clock` gives unix seconds; `wait` waits between rounds and ends early with a
    /// [`Request`] from the command line ([`crate::request::wait`]): `CheckNow` runs the next
    /// round at once, `RebootNeeded` follows `REBOOT_STRATEGY` as after staging an update; the
    /// request is answered ([`Request::done`]) when its round is over. `sleep` waits without
    /// requests (the lock-release retries); `rounds` bounds the loop (tests), `None` runs
    /// forever.
    pub fn daemon(
        &self,
        clock: &dyn Fn() -> u64,
        wait: &mut dyn FnMut(Duration) -> Option<Request>,
        machine_id: &[u8],
        rounds: Option<u64>,
    ) -> Result<(), EngineError> {
        // Requests taken and not answered yet, oldest first.
        let mut requests = std::collections::VecDeque::new();
        if let Some(f) = self.after_boot(clock())? {
            eprintln!(
                "update-engine: rolled back from {} to {}: {} did not come up on {}",
                f.version, f.rolled_back_to, f.version, f.slot
            );
        }
        let health_wait = Duration::from_secs(self.config.health_timeout_secs);
        match self.mark_good(clock(), health_wait, HEALTH_POLL.min(health_wait))? {
            MarkGood::Unhealthy(reason) => {
                eprintln!(
                    "update-engine: booted slot unhealthy after {}s ({reason}); rebooting",
                    health_wait.as_secs()
                );
                self.host.reboot()?;
                return Ok(());
            }
            outcome => {
                let slot = self.host.booted_slot()?;
                let version = self
                    .host
                    .os_release()
                    .map(|o| o.version_id)
                    .unwrap_or_default();
                match outcome {
                    MarkGood::Blessed => eprintln!("update-engine: marked {slot} good ({version})"),
                    _ => eprintln!("update-engine: {slot} ({version}) is already marked good"),
                }
            }
        }
        if !self.config.problems.is_empty() {
            return self.daemon_misconfigured(clock, wait, rounds);
        }
        let mut round = 0u64;
        // The reboot lock taken to come here (or to try a version that was rolled back from)
        // goes back only now that the booted slot is good.
        let mut failures = 0u32;
        let mut last_line = None;
        let mut say = |line: String| {
            if last_line.as_ref() != Some(&line) {
                eprintln!("update-engine: {line}");
                last_line = Some(line);
            }
        };
        loop {
            match self.release_reboot_lock() {
                Ok(Some(what)) => {
                    say(what);
                    // What the note said about the lock (taking it, not giving it back) is over.
                    self.note_reboot(None);
                    break;
                }
                Ok(None) => break,
                Err(reason) => {
                    self.note_reboot(Some(reason.clone()));
                    say(format!("{reason}; retrying"));
                    if rounds.is_some_and(|n| round >= n) {
                        return Ok(());
                    }
                    requests.extend(wait(Duration::from_secs(retry_delay(failures))));
                    failures = failures.saturating_add(1);
                    round += 1;
                }
            }
        }
        // Set while a staged update (or a reboot asked for) waits for its reboot (window,
        // lock): what waits, and the attempts so far, for the backoff.
        let mut waiting: Option<(Staged, u32)> = None;
        while rounds.is_none_or(|n| round < n) {
            let request = requests.pop_front();
            let interval = jittered_interval(self.config.check_interval_secs, machine_id, round);
            let mut last_op = None;
            let mut log_phase = |phase: &Phase| {
                let op = phase.operation();
                if last_op != Some(op) {
                    last_op = Some(op);
                    eprintln!("update-engine: {}", phase_line(phase));
                }
            };
            let staged = match (request, waiting.take()) {
                (Some(Request::RebootNeeded), before) => {
                    say("a reboot was asked for (locksmithctl send-need-reboot)".into());
                    // A staged update that waits already stays what waits.
                    let (what, attempt) = before.unwrap_or((Staged::Asked, 0));
                    self.after_staging(clock(), attempt)
                        .map(|next| Some((what, next, attempt)))
                }
                (_, Some((what, attempt))) => self
                    .after_staging(clock(), attempt)
                    .map(|next| Some((what, next, attempt))),
                (_, None) => self.update(clock(), &mut log_phase).map(|o| match o {
                    UpdateOutcome::Staged { version, next, .. } => {
                        Some((Staged::Update(version), next, 0))
                    }
                    UpdateOutcome::UpToDate { version } => {
                        say(format!("up to date ({version})"));
                        None
                    }
                }),
            };
            let next = match staged {
                Ok(None) => interval,
                Ok(Some((what, AfterStaging::Stay, _))) => {
                    say(match what {
                        Staged::Update(version) => {
                            format!("{version} is staged; REBOOT_STRATEGY=off: reboot to use it")
                        }
                        Staged::Asked => {
                            "not rebooting: REBOOT_STRATEGY=off (reboot by hand)".to_owned()
                        }
                    });
                    interval
                }
                // (The engine said so before rebooting.)
                Ok(Some((_, AfterStaging::Rebooting { .. }, _))) => interval,
                Ok(Some((what, AfterStaging::Waiting { reason, retry_in }, attempt))) => {
                    say(format!("{what}; not rebooting yet: {reason}"));
                    waiting = Some((what, attempt.saturating_add(1)));
                    retry_in.min(interval)
                }
                Err(e) => {
                    // The network may not be up yet (DHCP runs in the background at boot):
                    // try again soon rather than after a whole interval.
                    eprintln!("update-engine: {}", crate::http::error_chain(&e));
                    interval.min(RETRY_AFTER_ERROR_SECS)
                }
            };
            if let Some(r) = request {
                if let Err(e) = r.done(self.paths) {
                    eprintln!("update-engine: answering {r:?}: {e}");
                }
            }
            if requests.is_empty() {
                requests.extend(wait(Duration::from_secs(next)));
            }
            round += 1;
        }
        Ok(())
    }
}

impl<H: Host> Engine<'_, H> {
    /// The daemon once the booted slot is good, while update.conf has values it cannot use
    /// ([`crate::Config::problems`]): says so once on the console and in the status, gives back
    /// the reboot lock if that lock's own settings are usable (retrying every [`CONFIG_POLL`]),
    /// answers requests without checking or rebooting (a check fails naming the problems, a
    /// reboot asked for waits), and returns as soon as the files' problems are not these any
    /// more, for the service manager to start it again on the new files. `rounds` bounds the
    /// waits (tests).
    fn daemon_misconfigured(
        &self,
        clock: &dyn Fn() -> u64,
        wait: &mut dyn FnMut(Duration) -> Option<Request>,
        rounds: Option<u64>,
    ) -> Result<(), EngineError> {
        for problem in &self.config.problems {
            eprintln!("update-engine: {problem}");
        }
        eprintln!(
            "update-engine: updates are off until update.conf is fixed: not checking, \
             downloading or rebooting"
        );
        let state = State::load(&self.paths.state())?;
        let _ = self.base_status(&state).save(&self.paths.status());
        let mut last_line = None;
        let mut say = |line: String| {
            if last_line.as_ref() != Some(&line) {
                eprintln!("update-engine: {line}");
                last_line = Some(line);
            }
        };
        let mut lock_held = true;
        let mut round = 0u64;
        loop {
            if lock_held {
                match self.release_reboot_lock() {
                    Ok(what) => {
                        if let Some(what) = what {
                            say(what);
                        }
                        self.note_reboot(None);
                        lock_held = false;
                    }
                    Err(reason) => {
                        self.note_reboot(Some(reason.clone()));
                        say(reason);
                    }
                }
            }
            if rounds.is_some_and(|n| round >= n) {
                return Ok(());
            }
            let request = wait(CONFIG_POLL);
            round += 1;
            if let Some(r) = request {
                self.answer_misconfigured(r, clock(), &mut say);
            }
            if crate::Config::load(self.paths).problems != self.config.problems {
                eprintln!("update-engine: update.conf changed; starting again with it");
                return Ok(());
            }
        }
    }

    /// Answers a request while update.conf has values the engine cannot use: a check fails
    /// (its status names them), a reboot waits (its note says why).
    fn answer_misconfigured(&self, r: Request, now: u64, say: &mut dyn FnMut(String)) {
        match r {
            Request::CheckNow => {
                if let Err(e) = self.check(now, &mut |_| {}) {
                    say(crate::http::error_chain(&e));
                }
            }
            Request::RebootNeeded => match self.after_staging(now, 0) {
                Ok(AfterStaging::Waiting { reason, .. }) => {
                    say(format!("a reboot was asked for; {reason}"))
                }
                Ok(other) => say(format!("a reboot was asked for: {other:?}")),
                Err(e) => say(format!("a reboot was asked for: {e}")),
            },
        }
        if let Err(e) = r.done(self.paths) {
            eprintln!("update-engine: answering {r:?}: {e}");
        }
    }
}

/// What waits for a reboot in the daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Staged {
    /// This version, staged.
    Update(String),
    /// A reboot asked for without one (`locksmithctl send-need-reboot`).
    Asked,
}

impl std::fmt::Display for Staged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Staged::Update(version) => write!(f, "{version} is staged"),
            Staged::Asked => f.write_str("a reboot was asked for"),
        }
    }
}

/// One console line per phase the daemon enters.
fn phase_line(phase: &Phase) -> String {
    match phase {
        Phase::Idle => "idle".into(),
        Phase::Checking => "checking for an update".into(),
        Phase::UpdateAvailable(t) => format!("update available: {} ({} bytes)", t.version, t.size),
        Phase::Downloading { target, .. } => {
            format!("downloading {} to the other slot", target.version)
        }
        Phase::Verifying(t) => format!("verifying {}", t.version),
        Phase::Finalizing(t) => format!("writing the boot entry for {}", t.version),
        Phase::UpdatedNeedReboot(t) => format!("{} is ready; reboot needed", t.version),
        Phase::ReportingError { error, .. } => format!("error: {error}"),
    }
}
