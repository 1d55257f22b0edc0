//! `update_engine_client`: Container Linux's client of its update engine
//! (coreos/update_engine `src/update_engine/update_engine_client.cc`), answered by this binary
//! when it runs under that name.
//!
//! Flags are gflags' (`-flag`, `--flag`, `-flag=true|false|1|0|yes|no`, `-noflag`; a string
//! flag takes `-flag=value` or `-flag value`), and, as there, the first of these that is set
//! decides what happens:
//!
//! - `-reset_status`: the status goes back to `UPDATE_STATUS_IDLE` from `UPDATED_NEED_REBOOT`
//!   (and from `REPORTING_ERROR_EVENT`, which ours keeps until the next run); refused while a
//!   run is under way. As on Container Linux the staged update stays: its boot entry still
//!   boots next ([`crate::status::Status::reset`]);
//! - `-status`: the status as `KEY=VALUE` lines (no flag at all does the same);
//! - `-check_for_update`: asks the daemon to check and apply now (`AttemptUpdate` over D-Bus
//!   there, [`crate::request`] here) and returns; as there, nothing is asked while a run is
//!   under way or an update waits for its reboot. `-app_version` and `-omaha_url` did the
//!   same, their values ignored, until Container Linux removed them in 2014: accepted, and the
//!   values ignored with a note;
//! - `-update`: the same, then follows the status, printing it each time it changes, until the
//!   run the request asked for is over: exit 0 once an update waits for its reboot ("Update
//!   succeeded -- reboot needed."), 1 otherwise (nothing newer, an error), as there;
//! - `-watch_for_updates`: prints each status change ("Got status update:" and its five
//!   fields) until interrupted;
//! - `-help` (`-h`, `-helpshort`, `-helpfull`) and `-version`.
//!
//! With no daemon running, `-check_for_update`, `-update` and `-watch_for_updates` say so and
//! exit 1 (Container Linux's failed to reach the service on D-Bus); `update-engine update`
//! updates without one.

use std::ffi::OsString;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::config::Paths;
use crate::request::{self, Request};
use crate::status::{Operation, Status};

/// The name Container Linux's client is called by.
pub const CLIENT_NAME: &str = "update_engine_client";

/// How often `-update` and `-watch_for_updates` read the status.
pub const FOLLOW_POLL: Duration = Duration::from_secs(1);

/// What an `update_engine_client` command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientAction {
    /// `-help`.
    Help,
    /// `-version`.
    Version,
    /// `-reset_status`.
    ResetStatus,
    /// `-status` (or no flag).
    Status,
    /// `-check_for_update`; `wait`: `-update`. `ignored`: the obsolete flags given.
    CheckForUpdate {
        /// Follow the run until it is over (`-update`).
        wait: bool,
        /// `-app_version=…`, `-omaha_url=…` as given, ignored.
        ignored: Vec<String>,
    },
    /// `-watch_for_updates`.
    WatchForUpdates,
}

const BOOL_FLAGS: [&str; 9] = [
    "check_for_update",
    "status",
    "reset_status",
    "update",
    "watch_for_updates",
    "help",
    "helpshort",
    "helpfull",
    "version",
];
const STRING_FLAGS: [&str; 2] = ["app_version", "omaha_url"];

/// `-help`'s text.
pub const HELP: &str = "\
update_engine_client: Container Linux's update engine client (this is update-engine)

Flags (-flag or --flag; -flag=true|false, -noflag):
  -status             print the status as KEY=VALUE lines (also with no flag)
  -check_for_update   ask the update-engine daemon to check for an update and apply it now
  -update             the same, then print the status as it changes until the update is over;
                      exit 0 once it waits for a reboot, 1 otherwise
  -watch_for_updates  print each status change until interrupted
  -reset_status       set the status back to UPDATE_STATUS_IDLE after UPDATED_NEED_REBOOT
                      (the staged update still boots next)
  -app_version=V, -omaha_url=U
                      ignored, as by Container Linux's client; they ask for a check
  -help, -version

The first of -reset_status, -status, -check_for_update/-update, -watch_for_updates given wins.
More: update-engine --help.
";

/// gflags' spellings of true and false. Pure.
fn gflags_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "t" | "yes" | "y" | "1" => Some(true),
        "false" | "f" | "no" | "n" | "0" => Some(false),
        _ => None,
    }
}

/// Parses the arguments after argv[0], gflags style. Pure.
pub fn parse_flags(args: &[OsString]) -> Result<ClientAction, String> {
    let mut set = std::collections::BTreeMap::<&str, bool>::new();
    let mut ignored = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let arg = args[i]
            .to_str()
            .ok_or_else(|| format!("argument {:?} is not UTF-8", args[i]))?;
        i += 1;
        let body = match arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')) {
            Some(b) if !b.is_empty() && !b.starts_with('-') => b,
            _ => {
                return Err(format!(
                    "unexpected argument {arg:?}: {CLIENT_NAME} takes only flags, e.g. -status"
                ))
            }
        };
        let (name, value) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (body, None),
        };
        if let Some(flag) = BOOL_FLAGS.iter().find(|f| **f == name) {
            let on = match value {
                None => true,
                Some(v) => gflags_bool(v).ok_or_else(|| {
                    format!("illegal value {v:?} for boolean flag -{name} (true or false)")
                })?,
            };
            set.insert(flag, on);
        } else if let Some(flag) = name
            .strip_prefix("no")
            .and_then(|n| BOOL_FLAGS.iter().find(|f| **f == n))
            .filter(|_| value.is_none())
        {
            set.insert(flag, false);
        } else if name == "h" && value.is_none() {
            set.insert("help", true);
        } else if STRING_FLAGS.contains(&name) {
            let v = match value {
                Some(v) => v.to_owned(),
                None => args
                    .get(i)
                    .and_then(|a| a.to_str())
                    .map(str::to_owned)
                    .ok_or_else(|| format!("flag -{name} is missing its value"))?,
            };
            if value.is_none() {
                i += 1;
            }
            ignored.push(format!("-{name}={v}"));
        } else {
            return Err(format!(
                "unknown flag {arg} (flags: -status, -check_for_update, -update, \
                 -watch_for_updates, -reset_status, -help)"
            ));
        }
    }
    let on = |f: &str| set.get(f).copied().unwrap_or(false);
    Ok(if on("help") || on("helpshort") || on("helpfull") {
        ClientAction::Help
    } else if on("version") {
        ClientAction::Version
    } else if on("reset_status") {
        ClientAction::ResetStatus
    } else if on("status") {
        ClientAction::Status
    } else if on("check_for_update") || on("update") || !ignored.is_empty() {
        ClientAction::CheckForUpdate {
            wait: on("update"),
            ignored,
        }
    } else if on("watch_for_updates") {
        ClientAction::WatchForUpdates
    } else {
        ClientAction::Status
    })
}

/// `-reset_status`: writes the reset status when it changed. Returns what to tell the user.
pub fn reset_status(paths: &Paths) -> Result<String> {
    let path = paths.status();
    let mut status = Status::load(&path).with_context(|| format!("reading {}", path.display()))?;
    let before = status.clone();
    status.reset().context("ResetStatus failed")?;
    if status == before {
        return Ok("ResetStatus succeeded (the status was idle already)".into());
    }
    status
        .save(&path)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(match before.current_op {
        Operation::UpdatedNeedReboot => format!(
            "ResetStatus succeeded; the boot entry staged for {} stays: the next boot still tries it",
            before.new_version
        ),
        _ => "ResetStatus succeeded".into(),
    })
}

/// `-check_for_update` / `-update`'s request: sends it unless a run is under way or an update
/// waits for its reboot (Container Linux's engine skipped the check then). Returns what to tell
/// the user.
pub fn ask_for_check(paths: &Paths) -> Result<String> {
    let pid = request::daemon_pid(paths)?;
    let status = load(paths)?;
    if status.current_op.is_running() {
        return Ok(format!(
            "the update-engine daemon (pid {pid}) is already at {}: no new check",
            status.current_op
        ));
    }
    if status.current_op == Operation::UpdatedNeedReboot {
        return Ok(format!(
            "{} waits for a reboot ({}): no new check",
            status.new_version, status.current_op
        ));
    }
    let from = format!("{CLIENT_NAME} (pid {})", std::process::id());
    Request::CheckNow.send(paths, &from).with_context(|| {
        format!(
            "asking the update-engine daemon to check: writing {} (run it as root)",
            Request::CheckNow.path(paths).display()
        )
    })?;
    Ok(format!(
        "asked the update-engine daemon (pid {pid}) to check for an update"
    ))
}

fn load(paths: &Paths) -> Result<Status> {
    let path = paths.status();
    Status::load(&path).with_context(|| format!("reading {}", path.display()))
}

/// Where `-update` is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Follow {
    /// The run is not over.
    Wait,
    /// An update waits for its reboot.
    Succeeded,
    /// The run ended without one: why.
    Failed(String),
}

/// `-update`'s judgement of a status, `asked` telling whether the request's round is not over
/// yet. Pure.
pub fn judge_follow(status: &Status, asked: bool) -> Follow {
    if asked || status.current_op.is_running() {
        return Follow::Wait;
    }
    match status.current_op {
        Operation::UpdatedNeedReboot => Follow::Succeeded,
        Operation::ReportingErrorEvent => Follow::Failed(
            status
                .last_error
                .clone()
                .unwrap_or_else(|| "the update failed".into()),
        ),
        _ => Follow::Failed(format!(
            "no update was installed ({}: the channel offers nothing newer)",
            status.current_op
        )),
    }
}

/// `-update` after [`ask_for_check`]: prints the status each time it changes until the run is
/// over; exit code 0 once an update waits for its reboot, else 1. Fails if the daemon goes away.
pub fn follow(
    paths: &Paths,
    out: &mut dyn Write,
    sleep: &mut dyn FnMut(Duration),
    poll: Duration,
) -> Result<i32> {
    let mut shown = None;
    loop {
        let asked = Request::CheckNow.is_pending(paths);
        let status = load(paths)?;
        let fields = owned_fields(&status);
        if shown.as_ref() != Some(&fields) {
            out.write_all(status.render_plain().as_bytes())?;
            out.flush()?;
            shown = Some(fields);
        }
        match judge_follow(&status, asked) {
            Follow::Wait => {}
            Follow::Succeeded => {
                eprintln!("Update succeeded -- reboot needed.");
                return Ok(0);
            }
            Follow::Failed(why) => {
                eprintln!("Update failed: {why}");
                return Ok(1);
            }
        }
        request::daemon_pid(paths).context("waiting for the update")?;
        sleep(poll);
    }
}

/// `-watch_for_updates`' text for one status change (Container Linux's client logged these
/// lines). Pure.
pub fn render_watch(s: &Status) -> String {
    format!(
        "Got status update:\n  last_checked_time: {}\n  progress: {}\n  current_operation: {}\n  \
         new_version: {}\n  new_size: {}\n",
        s.last_checked_time,
        short_float(s.progress),
        s.current_op,
        s.new_version,
        s.new_size
    )
}

/// A C++ stream's default rendering of a fraction: six decimals at most, no trailing zeros.
fn short_float(x: f64) -> String {
    let text = format!("{x:.6}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text.is_empty() || text == "-" {
        "0".into()
    } else {
        text.into()
    }
}

fn owned_fields(s: &Status) -> (u64, u64, Operation, String, u64) {
    let (t, p, op, v, n) = s.client_fields();
    (t, p, op, v.to_owned(), n)
}

/// `-watch_for_updates`: prints each change of the status; `rounds` bounds it (tests), `None`
/// watches until killed.
pub fn watch(
    paths: &Paths,
    out: &mut dyn Write,
    sleep: &mut dyn FnMut(Duration),
    poll: Duration,
    rounds: Option<u64>,
) -> Result<()> {
    let pid = request::daemon_pid(paths)?;
    eprintln!("watching the status of the update-engine daemon (pid {pid}) for changes");
    let mut shown = owned_fields(&load(paths)?);
    let mut round = 0;
    while rounds.is_none_or(|n| round < n) {
        sleep(poll);
        round += 1;
        let status = load(paths)?;
        let fields = owned_fields(&status);
        if fields != shown {
            out.write_all(render_watch(&status).as_bytes())?;
            out.flush()?;
            shown = fields;
        }
    }
    Ok(())
}

/// Runs a client action other than `-status` (which needs the engine): returns the exit code.
pub fn run(action: &ClientAction, paths: &Paths) -> Result<i32> {
    let mut stdout = std::io::stdout();
    let mut sleep = std::thread::sleep;
    match action {
        ClientAction::Help => print!("{HELP}"),
        ClientAction::Version => println!("{CLIENT_NAME} version {}", env!("CARGO_PKG_VERSION")),
        ClientAction::ResetStatus => eprintln!("{}", reset_status(paths)?),
        ClientAction::CheckForUpdate { wait, ignored } => {
            for flag in ignored {
                eprintln!(
                    "{CLIENT_NAME}: {flag} is ignored (as by Container Linux's client); the \
                     server and channel are SERVER= and GROUP= in update.conf"
                );
            }
            eprintln!("{}", ask_for_check(paths)?);
            if *wait {
                return follow(paths, &mut stdout, &mut sleep, FOLLOW_POLL);
            }
        }
        ClientAction::WatchForUpdates => {
            watch(paths, &mut stdout, &mut sleep, FOLLOW_POLL, None)?;
        }
        ClientAction::Status => bail!("-status is run by the engine"),
    }
    Ok(0)
}

/// Whether `argv0` names the client.
pub fn is_client(argv0: &Path) -> bool {
    argv0.file_name().is_some_and(|n| n == CLIENT_NAME)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(a: &[&str]) -> Result<ClientAction, String> {
        parse_flags(&a.iter().map(OsString::from).collect::<Vec<_>>())
    }

    fn check(wait: bool) -> ClientAction {
        ClientAction::CheckForUpdate {
            wait,
            ignored: vec![],
        }
    }

    #[test]
    fn gflags_spellings() {
        struct Case {
            args: &'static [&'static str],
            want: ClientAction,
        }
        let cases = [
            Case {
                args: &[],
                want: ClientAction::Status,
            },
            Case {
                args: &["-status"],
                want: ClientAction::Status,
            },
            Case {
                args: &["--status"],
                want: ClientAction::Status,
            },
            Case {
                args: &["-status=true"],
                want: ClientAction::Status,
            },
            Case {
                args: &["--status=1"],
                want: ClientAction::Status,
            },
            Case {
                args: &["-check_for_update"],
                want: check(false),
            },
            Case {
                args: &["-check_for_update=yes"],
                want: check(false),
            },
            Case {
                args: &["-update"],
                want: check(true),
            },
            Case {
                args: &["--update", "-check_for_update"],
                want: check(true),
            },
            Case {
                args: &["-watch_for_updates"],
                want: ClientAction::WatchForUpdates,
            },
            Case {
                args: &["-reset_status"],
                want: ClientAction::ResetStatus,
            },
            Case {
                args: &["-h"],
                want: ClientAction::Help,
            },
            Case {
                args: &["-help"],
                want: ClientAction::Help,
            },
            Case {
                args: &["--helpfull"],
                want: ClientAction::Help,
            },
            Case {
                args: &["-version"],
                want: ClientAction::Version,
            },
            // Container Linux's order: reset, status, check/update, watch.
            Case {
                args: &["-update", "-reset_status"],
                want: ClientAction::ResetStatus,
            },
            Case {
                args: &["-update", "-status"],
                want: ClientAction::Status,
            },
            Case {
                args: &["-watch_for_updates", "-check_for_update"],
                want: check(false),
            },
            // Turned off again.
            Case {
                args: &["-status", "-status=false", "-update"],
                want: check(true),
            },
            Case {
                args: &["-update", "-noupdate", "-watch_for_updates"],
                want: ClientAction::WatchForUpdates,
            },
            // The flags Container Linux removed in 2014 asked for a check.
            Case {
                args: &["-app_version", "ForcedUpdate", "--omaha_url=http://o/"],
                want: ClientAction::CheckForUpdate {
                    wait: false,
                    ignored: vec![
                        "-app_version=ForcedUpdate".into(),
                        "-omaha_url=http://o/".into(),
                    ],
                },
            },
        ];
        for case in cases {
            assert_eq!(parse(case.args), Ok(case.want), "{:?}", case.args);
        }
    }

    #[test]
    fn bad_flags_are_named() {
        for (args, want) in [
            (&["-frobnicate"][..], "unknown flag -frobnicate"),
            (
                &["-status=maybe"],
                "illegal value \"maybe\" for boolean flag -status",
            ),
            (&["-app_version"], "flag -app_version is missing its value"),
            (&["status"], "unexpected argument \"status\""),
            (&["---status"], "unexpected argument"),
            (&["-"], "unexpected argument"),
            (&["-nostatus=true"], "unknown flag"),
        ] {
            let e = parse(args).unwrap_err();
            assert!(e.contains(want), "{args:?}: {e}");
        }
    }

    fn status(op: Operation) -> Status {
        Status {
            current_op: op,
            new_version: "1.0.1".into(),
            ..Status::default()
        }
    }

    #[test]
    fn update_waits_for_the_round_it_asked_for() {
        use Operation::*;
        assert_eq!(judge_follow(&status(Idle), true), Follow::Wait);
        assert_eq!(judge_follow(&status(UpdatedNeedReboot), true), Follow::Wait);
        assert_eq!(judge_follow(&status(Downloading), false), Follow::Wait);
        assert_eq!(
            judge_follow(&status(UpdatedNeedReboot), false),
            Follow::Succeeded
        );
        let failed = Status {
            last_error: Some("GET x: HTTP 404".into()),
            ..status(ReportingErrorEvent)
        };
        assert_eq!(
            judge_follow(&failed, false),
            Follow::Failed("GET x: HTTP 404".into())
        );
        assert!(
            matches!(judge_follow(&status(Idle), false), Follow::Failed(w) if w.contains("nothing newer"))
        );
    }

    #[test]
    fn watch_lines() {
        let s = Status {
            last_checked_time: 1_700_000_000,
            progress: 0.5,
            current_op: Operation::Downloading,
            new_version: "1.0.1".into(),
            new_size: 300_000,
            ..Status::default()
        };
        assert_eq!(
            render_watch(&s),
            "Got status update:\n  last_checked_time: 1700000000\n  progress: 0.5\n  \
             current_operation: UPDATE_STATUS_DOWNLOADING\n  new_version: 1.0.1\n  \
             new_size: 300000\n"
        );
        for (x, want) in [
            (0.0, "0"),
            (1.0, "1"),
            (1.0 / 3.0, "0.333333"),
            (0.25, "0.25"),
        ] {
            assert_eq!(short_float(x), want);
        }
    }

    /// A daemon's side of one request, played by a thread: takes it, moves the status through
    /// a run, answers.
    fn fake_daemon(paths: Paths, phases: Vec<Status>) -> std::thread::JoinHandle<()> {
        std::thread::spawn(move || {
            let taken = request::wait(&paths, Duration::from_secs(30), Duration::from_millis(5));
            assert_eq!(taken, Some(Request::CheckNow));
            for s in phases {
                s.save(&paths.status()).unwrap();
                std::thread::sleep(Duration::from_millis(20));
            }
            Request::CheckNow.done(&paths).unwrap();
        })
    }

    #[test]
    fn update_asks_the_daemon_and_follows_its_run() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::new(dir.path());
        // No daemon: said, nothing asked.
        let e = format!("{:#}", ask_for_check(&paths).unwrap_err());
        assert!(e.contains("daemon is not running"), "{e}");
        assert!(!Request::CheckNow.is_pending(&paths));

        request::write_pid(&paths, std::process::id()).unwrap();
        let downloading = Status {
            progress: 0.5,
            new_size: 10,
            ..status(Operation::Downloading)
        };
        let staged = Status {
            progress: 1.0,
            new_size: 10,
            ..status(Operation::UpdatedNeedReboot)
        };
        let daemon = fake_daemon(paths.clone(), vec![downloading, staged]);
        assert!(ask_for_check(&paths)
            .unwrap()
            .contains("asked the update-engine daemon"));
        let mut out = Vec::new();
        let code = follow(
            &paths,
            &mut out,
            &mut std::thread::sleep,
            Duration::from_millis(5),
        )
        .unwrap();
        daemon.join().unwrap();
        assert_eq!(code, 0);
        let out = String::from_utf8(out).unwrap();
        // The status as it changes (how many blocks depends on the timing), ending staged.
        assert!(out.starts_with("LAST_CHECKED_TIME=0\nPROGRESS="), "{out}");
        assert!(
            out.ends_with(
                "CURRENT_OP=UPDATE_STATUS_UPDATED_NEED_REBOOT\nNEW_VERSION=1.0.1\nNEW_SIZE=10\n"
            ),
            "{out}"
        );

        // Staged already: no new check, and -update is done at once.
        let said = ask_for_check(&paths).unwrap();
        assert!(said.contains("waits for a reboot"), "{said}");
        assert!(!Request::CheckNow.is_pending(&paths));
        let mut out = Vec::new();
        assert_eq!(
            follow(&paths, &mut out, &mut |_| panic!("no wait"), Duration::ZERO).unwrap(),
            0
        );

        // After a reset, a check that finds nothing newer: exit 1.
        reset_status(&paths).unwrap();
        let daemon = fake_daemon(
            paths.clone(),
            vec![status(Operation::CheckingForUpdate), Status::default()],
        );
        ask_for_check(&paths).unwrap();
        let code = follow(
            &paths,
            &mut Vec::new(),
            &mut std::thread::sleep,
            Duration::from_millis(5),
        )
        .unwrap();
        daemon.join().unwrap();
        assert_eq!(code, 1);
    }

    #[test]
    fn update_fails_when_the_daemon_goes_away() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::new(dir.path());
        request::write_pid(&paths, std::process::id()).unwrap();
        ask_for_check(&paths).unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let gone = child.id();
        child.wait().unwrap();
        request::write_pid(&paths, gone).unwrap();
        let e = follow(&paths, &mut Vec::new(), &mut |_| {}, Duration::ZERO).unwrap_err();
        let e = format!("{e:#}");
        assert!(
            e.contains("waiting for the update") && e.contains("not running"),
            "{e}"
        );
    }

    #[test]
    fn reset_status_writes_idle() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::new(dir.path());
        // Nothing written: idle already.
        assert!(reset_status(&paths).unwrap().contains("idle already"));
        assert!(!paths.status().exists());
        Status {
            new_size: 10,
            ..status(Operation::UpdatedNeedReboot)
        }
        .save(&paths.status())
        .unwrap();
        let said = reset_status(&paths).unwrap();
        assert!(said.contains("1.0.1 stays"), "{said}");
        let now = Status::load(&paths.status()).unwrap();
        assert_eq!(
            (now.current_op, now.new_version.as_str(), now.new_size),
            (Operation::Idle, "0.0.0", 0)
        );
        status(Operation::Verifying).save(&paths.status()).unwrap();
        let e = format!("{:#}", reset_status(&paths).unwrap_err());
        assert!(e.starts_with("ResetStatus failed: cannot reset the status while the engine is at UPDATE_STATUS_VERIFYING"), "{e}");
    }

    #[test]
    fn watch_prints_changes_only() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::new(dir.path());
        assert!(watch(
            &paths,
            &mut Vec::new(),
            &mut |_| {},
            Duration::ZERO,
            Some(1)
        )
        .is_err());
        request::write_pid(&paths, std::process::id()).unwrap();
        let steps = [
            status(Operation::CheckingForUpdate),
            status(Operation::CheckingForUpdate),
            status(Operation::UpdatedNeedReboot),
        ];
        let mut n = 0;
        let mut out = Vec::new();
        let mut sleep = |_| {
            steps[n].save(&paths.status()).unwrap();
            n += 1;
        };
        watch(&paths, &mut out, &mut sleep, Duration::ZERO, Some(3)).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert_eq!(out.matches("Got status update:").count(), 2, "{out}");
        assert!(out.contains("current_operation: UPDATE_STATUS_CHECKING_FOR_UPDATE\n"));
        assert!(out.ends_with("current_operation: UPDATE_STATUS_UPDATED_NEED_REBOOT\n  new_version: 1.0.1\n  new_size: 0\n"));
    }
}
