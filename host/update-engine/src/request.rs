//! What the command line asks of the running daemon, and how it knows one runs.
//!
//! Container Linux's clients talked to their daemons over D-Bus: `update_engine_client
//! -check_for_update` called update_engine's `AttemptUpdate`, and `locksmithctl
//! send-need-reboot` emitted the `StatusUpdate` signal with `UPDATE_STATUS_UPDATED_NEED_REBOOT`
//! that locksmithd acts on. Here the daemon and its clients share files in
//! `/run/update-engine/` instead (the daemon already publishes its status there):
//!
//! - `daemon.pid`: written by the daemon when it starts. A client asks only a daemon whose pid
//!   answers `kill(pid, 0)`, and says so when there is none (as a D-Bus call without its
//!   service failed);
//! - `check-now` ([`Request::CheckNow`]): check and apply now, as at the end of an interval;
//! - `reboot-needed` ([`Request::RebootNeeded`]): follow `REBOOT_STRATEGY` (window, lock,
//!   reboot) as after staging an update, without one.
//!
//! The daemon looks for requests between its rounds, about once a second ([`POLL`]). Taking
//! one renames its file to `<name>.taken`; the daemon removes that only once the round the
//! request asked for is over, so a client that waits for both names to go
//! (`update_engine_client -update`) then reads that round's final status, and a request sent
//! during a round waits for the next one. A daemon that starts puts back what an earlier one
//! took and never answered ([`requeue`]).
//! Requests are files under `/run`, so asking needs root (Container Linux let the `core` user
//! call `AttemptUpdate`); reading the status does not.

use std::io;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::config::Paths;

/// How often the daemon looks for requests while it waits.
pub const POLL: Duration = Duration::from_secs(1);

/// A request to the daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// Check (and apply) now.
    CheckNow,
    /// A reboot is needed: follow `REBOOT_STRATEGY`.
    RebootNeeded,
}

impl Request {
    /// Every request, in the order the daemon takes them.
    pub const ALL: [Request; 2] = [Request::CheckNow, Request::RebootNeeded];

    /// Its file.
    pub fn path(self, paths: &Paths) -> PathBuf {
        match self {
            Request::CheckNow => paths.check_request(),
            Request::RebootNeeded => paths.reboot_request(),
        }
    }

    /// Its file once the daemon took it.
    pub fn taken_path(self, paths: &Paths) -> PathBuf {
        let mut path = self.path(paths).into_os_string();
        path.push(".taken");
        path.into()
    }

    /// Leaves the request for the daemon (its file says who asked, for a person reading it).
    pub fn send(self, paths: &Paths, from: &str) -> io::Result<()> {
        crate::state::write_atomic(&self.path(paths), format!("{from}\n").as_bytes())
    }

    /// Whether the request waits for the daemon, or its round is not over.
    pub fn is_pending(self, paths: &Paths) -> bool {
        self.path(paths).exists() || self.taken_path(paths).exists()
    }

    /// The daemon's answer: the round the request asked for is over. A missing file is fine.
    pub fn done(self, paths: &Paths) -> io::Result<()> {
        match std::fs::remove_file(self.taken_path(paths)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Takes the first request waiting, if any (the daemon).
    pub fn take(paths: &Paths) -> Option<Request> {
        Request::ALL
            .into_iter()
            .find(|r| std::fs::rename(r.path(paths), r.taken_path(paths)).is_ok())
    }
}

/// Puts back the requests an earlier daemon took and never answered (the daemon, at start).
pub fn requeue(paths: &Paths) {
    for r in Request::ALL {
        let _ = std::fs::rename(r.taken_path(paths), r.path(paths));
    }
}

/// Waits up to `total` for a request and takes it, looking every `poll`; the daemon's sleep.
pub fn wait(paths: &Paths, total: Duration, poll: Duration) -> Option<Request> {
    let start = Instant::now();
    loop {
        if let Some(r) = Request::take(paths) {
            return Some(r);
        }
        let left = total.saturating_sub(start.elapsed());
        if left.is_zero() {
            return None;
        }
        std::thread::sleep(left.min(poll));
    }
}

/// Why no daemon can be asked.
#[derive(Debug, thiserror::Error)]
pub enum NoDaemon {
    /// No pid file.
    #[error("the update-engine daemon is not running ({} does not exist; start update-engine.service, or run `update-engine update` to update without it)", path.display())]
    NoPidFile {
        /// The pid file.
        path: PathBuf,
    },
    /// A pid file that is not a pid.
    #[error("{}: {text:?} is not a process id", path.display())]
    BadPidFile {
        /// The pid file.
        path: PathBuf,
        /// What it holds.
        text: String,
    },
    /// The pid file names a process that is gone.
    #[error("the update-engine daemon is not running (pid {pid} from {} is gone; start update-engine.service, or run `update-engine update` to update without it)", path.display())]
    Gone {
        /// The pid.
        pid: i32,
        /// The pid file.
        path: PathBuf,
    },
    /// The pid file cannot be read.
    #[error("reading {}: {source}", path.display())]
    Io {
        /// The pid file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
}

/// Records the daemon's pid (the daemon, when it starts).
pub fn write_pid(paths: &Paths, pid: u32) -> io::Result<()> {
    crate::state::write_atomic(&paths.daemon_pid(), format!("{pid}\n").as_bytes())
}

/// The pid of the running daemon, from its pid file.
pub fn daemon_pid(paths: &Paths) -> Result<i32, NoDaemon> {
    let path = paths.daemon_pid();
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(NoDaemon::NoPidFile { path }),
        Err(source) => return Err(NoDaemon::Io { path, source }),
    };
    let pid = parse_pid(&text).ok_or_else(|| NoDaemon::BadPidFile {
        path: path.clone(),
        text: text.trim().to_owned(),
    })?;
    if !alive(pid) {
        return Err(NoDaemon::Gone { pid, path });
    }
    Ok(pid)
}

/// A positive pid (never 0 or -1: `kill` gives those other meanings). Pure.
fn parse_pid(text: &str) -> Option<i32> {
    text.trim().parse::<i32>().ok().filter(|p| *p > 0)
}

/// Whether process `pid` exists (a process of another user counts).
fn alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists and may be signalled.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_files_the_daemon_removes() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::new(dir.path());
        assert_eq!(Request::take(&paths), None);
        assert_eq!(
            wait(&paths, Duration::from_millis(30), Duration::from_millis(10)),
            None
        );
        Request::RebootNeeded.send(&paths, "test").unwrap();
        Request::CheckNow.send(&paths, "test").unwrap();
        assert!(paths
            .check_request()
            .ends_with("run/update-engine/check-now"));
        assert_eq!(Request::take(&paths), Some(Request::CheckNow));
        // Taken, not answered: still pending for a client, not taken twice.
        assert!(Request::CheckNow.is_pending(&paths));
        // Sent again during its round: waits for the next round.
        Request::CheckNow.send(&paths, "test").unwrap();
        Request::CheckNow.done(&paths).unwrap();
        assert!(Request::CheckNow.is_pending(&paths));
        assert_eq!(Request::take(&paths), Some(Request::CheckNow));
        Request::CheckNow.done(&paths).unwrap();
        Request::CheckNow.done(&paths).unwrap();
        assert!(!Request::CheckNow.is_pending(&paths));
        assert_eq!(
            wait(&paths, Duration::from_secs(60), Duration::from_millis(10)),
            Some(Request::RebootNeeded)
        );
        // A daemon that died with it: the next one takes it again.
        assert_eq!(Request::take(&paths), None);
        requeue(&paths);
        assert_eq!(Request::take(&paths), Some(Request::RebootNeeded));
        Request::RebootNeeded.done(&paths).unwrap();
        assert!(!Request::RebootNeeded.is_pending(&paths));
    }

    #[test]
    fn a_request_arriving_during_the_wait_ends_it() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::new(dir.path());
        let sender = paths.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            Request::CheckNow.send(&sender, "test").unwrap();
        });
        let start = Instant::now();
        let got = wait(&paths, Duration::from_secs(60), Duration::from_millis(10));
        t.join().unwrap();
        assert_eq!(got, Some(Request::CheckNow));
        assert!(start.elapsed() < Duration::from_secs(30));
    }

    #[test]
    fn the_daemon_is_found_by_its_pid() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::new(dir.path());
        let e = daemon_pid(&paths).unwrap_err().to_string();
        assert!(e.contains("not running") && e.contains("daemon.pid"), "{e}");
        write_pid(&paths, std::process::id()).unwrap();
        assert_eq!(daemon_pid(&paths).unwrap(), std::process::id() as i32);
        // A process that ended.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let gone = child.id();
        child.wait().unwrap();
        write_pid(&paths, gone).unwrap();
        let e = daemon_pid(&paths).unwrap_err().to_string();
        assert!(
            e.contains(&format!("pid {gone}")) && e.contains("gone"),
            "{e}"
        );
        for bad in ["", "x", "0", "-1"] {
            std::fs::write(paths.daemon_pid(), bad).unwrap();
            assert!(
                matches!(daemon_pid(&paths), Err(NoDaemon::BadPidFile { .. })),
                "{bad:?}"
            );
        }
    }
}
