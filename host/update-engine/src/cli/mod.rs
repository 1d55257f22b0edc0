//! The command line: `update-engine status [--json] | check | update | rollback | mark-good |
//! daemon | lock … | lock-server | install …`, and under Container Linux's names (argv[0])
//! `update_engine_client` with its gflags ([`client`]: `-status`, `-check_for_update`,
//! `-update`, `-watch_for_updates`, `-reset_status`, …) and `locksmithctl` with its Go flags
//! ([`locksmithctl`]: `status`, `lock`, `unlock`, `set-max`, `reboot`, `send-need-reboot`,
//! `help`, `-version`), and `coreos-install` (any name ending in `-install`: `update-engine
//! install` with Container Linux's installer flags, [`crate::install`]). Each subcommand is one
//! call into the library.
//!
//! The daemon and the clients share `/run/update-engine/`: the daemon writes its status and
//! its pid there, the clients read the status and leave requests ([`crate::request`]).

use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub mod client;
pub mod locksmithctl;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use crate::config::{load_root_keys, Config, ConfigError, Paths};
use crate::engine::AfterStaging;
use crate::engine::{CheckOutcome, Engine, UpdateOutcome};
use crate::host::RealHost;
use crate::http::Policy;
use crate::install::{InstallArgs, INSTALL_NAME};
use crate::lifecycle::{MarkGood, HEALTH_POLL};
use crate::request::{self, Request};
use crate::state::State;
use crate::status::Phase;
use client::ClientAction;
pub use client::CLIENT_NAME;
use locksmithctl::{LockArgs, LockServerArgs, LOCKSMITHCTL_NAME};

/// `update-engine`.
#[derive(Debug, Parser)]
#[command(
    name = "update-engine",
    version,
    about = "Signed A/B updates of the USR partition"
)]
pub struct Cli {
    /// The file system root (tests and chroots).
    #[arg(long, global = true, default_value = "/")]
    pub root: PathBuf,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// Print the status (update_engine_client -status fields; --json adds slot, rollback, errors).
    Status {
        /// The whole status as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Check the channel and print what it offers, without installing.
    Check,
    /// Check and apply now; then follow REBOOT_STRATEGY.
    Update,
    /// Mark the booted slot bad so the loader boots the other one, then reboot.
    Rollback {
        /// Do not reboot.
        #[arg(long)]
        no_reboot: bool,
    },
    /// Run the health check once and, if it passes, mark the booted slot good.
    MarkGood,
    /// Mark good after boot (rebooting if unhealthy), then check periodically.
    Daemon,
    /// The cluster reboot lock in etcd, like locksmithctl: status, lock, unlock, set-max.
    Lock(LockArgs),
    /// Serve FleetLock (/v1/pre-reboot, /v1/steady-state) on the etcd reboot lock.
    LockServer(LockServerArgs),
    /// Write the channel's current release onto a disk, like Container Linux's coreos-install
    /// (also under the names coreos-install and <os>-install).
    #[command(disable_version_flag = true)]
    Install(InstallArgs),
    /// `update_engine_client`'s flags (only under that name).
    #[command(skip)]
    Client(ClientAction),
}

/// Parses `args` (argv[0] included): as `update_engine_client` or `locksmithctl` when argv[0]
/// names it.
pub fn parse(args: Vec<OsString>) -> Result<Cli, clap::Error> {
    let argv0 = args.first().map(PathBuf::from).unwrap_or_default();
    if client::is_client(&argv0) {
        let action = client::parse_flags(&args[1..]).map_err(|e| {
            clap::Error::raw(
                clap::error::ErrorKind::UnknownArgument,
                format!("{CLIENT_NAME}: {e}\n"),
            )
        })?;
        return Ok(Cli {
            root: PathBuf::from("/"),
            command: Command::Client(action),
        });
    }
    if crate::install::is_installer(&argv0) {
        // `coreos-install ARGS` is `update-engine install ARGS`.
        let argv = [OsString::from(INSTALL_NAME), OsString::from("install")];
        return Cli::try_parse_from(argv.into_iter().chain(args.into_iter().skip(1)));
    }
    if argv0.file_name().is_some_and(|n| n == LOCKSMITHCTL_NAME) {
        // `locksmithctl ARGS` is `update-engine lock ARGS`, Go-style `-flag`s included.
        let rest = locksmithctl::locksmithctl_args(args.get(1..).unwrap_or_default());
        let argv = [OsString::from(LOCKSMITHCTL_NAME), OsString::from("lock")];
        return Cli::try_parse_from(argv.into_iter().chain(rest));
    }
    Cli::try_parse_from(args)
}

/// How often a daemon without root keys looks for them.
const NO_KEYS_POLL: Duration = Duration::from_secs(30);

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Runs `cli`; returns the exit code.
pub fn run(cli: Cli) -> Result<i32> {
    let paths = Paths::new(&cli.root);
    // Never fails: what the engine cannot use is in `config.problems`, and each command does
    // what it safely can with them (the daemon: lifecycle's module docs).
    let config = Config::load(&paths);
    match &cli.command {
        Command::Lock(args) => return locksmithctl::run_lock(args, &paths, &config).map(|()| 0),
        Command::LockServer(args) => return locksmithctl::run_server(args, &config).map(|()| 0),
        Command::Install(args) => return install(args, &paths, &config).map(|()| 0),
        Command::Client(action) if *action != ClientAction::Status => {
            return client::run(action, &paths)
        }
        _ => {}
    }
    let needs_keys = matches!(
        cli.command,
        Command::Check | Command::Update | Command::Daemon
    );
    let mut no_keys = None;
    let root_keys = if needs_keys {
        match load_root_keys(&paths) {
            Ok(keys) => keys,
            // The daemon still has the booted slot to mark good.
            Err(e @ ConfigError::NoRootKeys { .. }) if matches!(cli.command, Command::Daemon) => {
                no_keys = Some(e);
                channels::RootKeys { keys: Vec::new() }
            }
            Err(e) => return Err(e).context("loading the root keys"),
        }
    } else {
        channels::RootKeys { keys: Vec::new() }
    };
    let host = RealHost::new(paths.clone());
    let engine = Engine {
        paths: &paths,
        config: &config,
        root_keys: &root_keys,
        host: &host,
        policy: Policy::CHANNEL,
    };
    match cli.command {
        Command::Client(_) => {
            let state = State::load(&paths.state())?;
            print!("{}", engine.base_status(&state).render_plain());
        }
        Command::Status { json } => {
            let state = State::load(&paths.state())?;
            let status = engine.base_status(&state);
            if json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                print!("{}", status.render_plain());
            }
        }
        Command::Check => match engine.check(now(), &mut |_| {})? {
            CheckOutcome::UpToDate { version } => println!("up to date: {version}"),
            CheckOutcome::AlreadyStaged { version } => {
                println!("{version} is staged on the other slot; reboot to use it")
            }
            CheckOutcome::Available(found) => println!(
                "update available: {} ({} bytes)",
                found.manifest.version,
                found
                    .manifest
                    .payloads
                    .get(crate::engine::USR_IMG)
                    .map_or(0, |p| p.size)
            ),
        },
        Command::Update => update(&engine)?,
        Command::Rollback { no_reboot } => {
            let r = engine.rollback(!no_reboot)?;
            println!(
                "marked {} bad; the loader boots {} ({}) next",
                r.marked_bad, r.next_slot, r.next_version
            );
        }
        Command::MarkGood => match engine.mark_good(now(), Duration::ZERO, HEALTH_POLL)? {
            MarkGood::AlreadyGood => println!("booted slot is already marked good"),
            MarkGood::Blessed => println!("healthy: booted slot marked good"),
            MarkGood::Unhealthy(reason) => {
                eprintln!("not healthy: {reason}");
                return Ok(1);
            }
        },
        Command::Daemon => {
            let machine_id = std::fs::read(paths.machine_id()).unwrap_or_default();
            // Without it the clients cannot ask, but the updates go on.
            if let Err(e) = request::write_pid(&paths, std::process::id()) {
                eprintln!(
                    "update-engine: writing {}: {e}; update_engine_client cannot reach this daemon",
                    paths.daemon_pid().display()
                );
            }
            request::requeue(&paths);
            let mut wait = |d| request::wait(&paths, d, request::POLL);
            let Some(why) = no_keys else {
                engine.daemon(&now, &mut wait, &machine_id, None)?;
                return Ok(0);
            };
            // Mark the booted slot good (and give back a reboot lock), then wait for keys: the
            // machine's config may write them later. Exiting then lets the service manager
            // start the daemon again, with them.
            engine.daemon(&now, &mut wait, &machine_id, Some(0))?;
            eprintln!("update-engine: updates are off: {why}");
            loop {
                if !matches!(load_root_keys(&paths), Err(ConfigError::NoRootKeys { .. })) {
                    eprintln!("update-engine: root keys found; starting over");
                    break;
                }
                if Config::load(&paths).problems != config.problems {
                    eprintln!("update-engine: update.conf changed; starting over");
                    break;
                }
                if let Some(r) = request::wait(&paths, NO_KEYS_POLL, request::POLL) {
                    answer_without_keys(&engine, r, &why.to_string());
                }
            }
        }
        // Handled above, without the engine.
        Command::Lock(_) | Command::LockServer(_) | Command::Install(_) => {}
    }
    Ok(0)
}

/// A request to a daemon that has no root keys: a check fails saying why (in the status, where
/// `update_engine_client -update` reads it); a reboot follows `REBOOT_STRATEGY` once.
fn answer_without_keys(engine: &Engine<RealHost>, r: Request, why: &str) {
    match r {
        Request::CheckNow => {
            let mut status =
                engine.base_status(&State::load(&engine.paths.state()).unwrap_or_default());
            status.apply_phase(&Phase::ReportingError {
                error: format!("updates are off: {why}"),
                target: None,
            });
            if let Err(e) = status.save(&engine.paths.status()) {
                eprintln!(
                    "update-engine: writing {}: {e}",
                    engine.paths.status().display()
                );
            }
        }
        Request::RebootNeeded => match engine.after_staging(now(), 0) {
            Ok(next) => eprintln!("update-engine: a reboot was asked for: {next:?}"),
            Err(e) => eprintln!("update-engine: a reboot was asked for: {e}"),
        },
    }
    if let Err(e) = r.done(engine.paths) {
        eprintln!("update-engine: answering {r:?}: {e}");
    }
}

/// `coreos-install`: the install, then ROOT's customization.
fn install(args: &InstallArgs, paths: &Paths, config: &Config) -> Result<()> {
    // update.conf's problems concern updates and reboots; the installer uses only GROUP and
    // SERVER, and -C and -b can replace them.
    let root_keys = load_root_keys(paths).context("loading the root keys")?;
    let customization = crate::install::customization(args, &paths.root)?;
    let mut progress = crate::install::progress_printer();
    let mut say = |line: &str| eprintln!("{line}");
    let mut env = crate::install::Env {
        paths,
        config,
        root_keys: &root_keys,
        policy: Policy::CHANNEL,
        now: now(),
        progress: &mut *progress,
        say: &mut say,
    };
    if customization.is_some()
        && args.device.as_ref().is_some_and(|d| {
            std::fs::metadata(paths.root.join(d.strip_prefix("/").unwrap_or(d)))
                .is_ok_and(|m| m.is_file())
        })
    {
        anyhow::bail!(
            "-c, -n and -o need a block device: a regular file target has no partitions the \
             kernel knows"
        );
    }
    let installed = crate::install::install(args, &mut env)?;
    if let Err(e) = crate::install::reread_installed(&installed) {
        eprintln!("coreos-install: warning: {e:#}; the new partitions appear after a reboot");
    }
    if let Some(c) = &customization {
        crate::install::customize_installed(&installed, c)
            .context("the image is installed and verified, but customizing its ROOT failed")?;
    }
    println!(
        "installed {} onto {} ({} bytes, read back and verified)",
        installed.version,
        installed.target.path().display(),
        installed.bytes
    );
    Ok(())
}

fn update(engine: &Engine<RealHost>) -> Result<()> {
    let bar = if std::io::stdout().is_terminal() {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template(
                "{msg} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let mut observe = |phase: &Phase| {
        if let Some(t) = phase.target() {
            bar.set_length(t.size);
        }
        bar.set_message(phase.operation().as_str());
        if let Phase::Downloading { received, .. } = phase {
            bar.set_position(*received);
        }
    };
    let outcome = engine.update(now(), &mut observe);
    bar.finish_and_clear();
    match outcome? {
        UpdateOutcome::UpToDate { version } => println!("up to date: {version}"),
        UpdateOutcome::Staged {
            version,
            slot,
            next,
        } => {
            let next = match next {
                AfterStaging::Stay => format!(
                    "reboot to use it (REBOOT_STRATEGY={})",
                    engine.config.reboot_strategy
                ),
                AfterStaging::Rebooting { how } => format!("rebooting: {how}"),
                AfterStaging::Waiting { reason, .. } => {
                    format!("not rebooting yet: {reason} (the daemon keeps trying)")
                }
            };
            println!("{version} staged on {slot}; {next}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<OsString> {
        a.iter().map(OsString::from).collect()
    }

    #[test]
    fn parses() {
        let c = parse(args(&["update-engine", "status", "--json"])).unwrap();
        assert_eq!(c.command, Command::Status { json: true });
        let c = parse(args(&[
            "update-engine",
            "--root",
            "/tmp/x",
            "rollback",
            "--no-reboot",
        ]))
        .unwrap();
        assert_eq!(
            (c.root, c.command),
            (
                PathBuf::from("/tmp/x"),
                Command::Rollback { no_reboot: true }
            )
        );
        assert!(parse(args(&["update-engine", "frobnicate"])).is_err());
    }

    #[test]
    fn answers_to_update_engine_client() {
        let c = parse(args(&["/usr/bin/update_engine_client", "-status"])).unwrap();
        assert_eq!(c.command, Command::Client(ClientAction::Status));
        let c = parse(args(&["update_engine_client", "-check_for_update"])).unwrap();
        assert_eq!(
            c.command,
            Command::Client(ClientAction::CheckForUpdate {
                wait: false,
                ignored: vec![]
            })
        );
        for (flag, want) in [
            ("-reset_status", ClientAction::ResetStatus),
            ("--watch_for_updates", ClientAction::WatchForUpdates),
            ("-h", ClientAction::Help),
        ] {
            let c = parse(args(&["update_engine_client", flag])).unwrap();
            assert_eq!(c.command, Command::Client(want), "{flag}");
        }
        let e = parse(args(&["update_engine_client", "-frobnicate"])).unwrap_err();
        assert!(e.to_string().contains("unknown flag -frobnicate"), "{e}");
        // The client's flags are not update-engine's subcommands.
        assert!(parse(args(&["update-engine", "client"])).is_err());
    }

    #[test]
    fn lock_commands() {
        use locksmithctl::{EtcdArgs, LockCommand};
        let c = parse(args(&[
            "update-engine",
            "lock",
            "--endpoint",
            "http://a:2379,http://b:2379",
            "--endpoint=http://c:2379",
            "set-max",
            "2",
            "--group",
            "lb",
        ]))
        .unwrap();
        let Command::Lock(lock) = c.command else {
            panic!("{:?}", c.command)
        };
        assert_eq!(
            lock.etcd.endpoints,
            ["http://a:2379", "http://b:2379", "http://c:2379"]
        );
        assert_eq!(lock.group.as_deref(), Some("lb"));
        assert_eq!(lock.command, LockCommand::SetMax { max: 2 });
        let c = parse(args(&["update-engine", "lock", "unlock", "m1"])).unwrap();
        assert_eq!(
            c.command,
            Command::Lock(LockArgs {
                etcd: EtcdArgs::default(),
                group: None,
                debug: false,
                command: LockCommand::Unlock {
                    id: Some("m1".into())
                }
            })
        );
        for bad in [
            &["update-engine", "lock", "set-max", "-1"][..],
            &["update-engine", "lock", "set-max", "two"],
            &["update-engine", "lock", "set-max"],
            &["update-engine", "lock"],
            &["update-engine", "lock-server"],
        ] {
            assert!(parse(args(bad)).is_err(), "{bad:?}");
        }
        let c = parse(args(&[
            "update-engine",
            "lock-server",
            "--listen",
            "0.0.0.0:3333",
        ]))
        .unwrap();
        assert!(matches!(c.command, Command::LockServer(s) if s.listen == "0.0.0.0:3333"));
    }

    #[test]
    fn answers_to_locksmithctl() {
        use locksmithctl::LockCommand;
        let c = parse(args(&[
            "/usr/bin/locksmithctl",
            "-endpoint=http://e:2379",
            "-group",
            "lb",
            "status",
        ]))
        .unwrap();
        let Command::Lock(lock) = c.command else {
            panic!("{:?}", c.command)
        };
        assert_eq!(
            (lock.etcd.endpoints, lock.group, lock.command),
            (
                vec!["http://e:2379".to_owned()],
                Some("lb".to_owned()),
                LockCommand::Status
            )
        );
        let c = parse(args(&["locksmithctl", "lock", "m1"])).unwrap();
        assert!(
            matches!(c.command, Command::Lock(l) if l.command == LockCommand::Lock { id: Some("m1".into()) })
        );
        for (argv, want) in [
            (&["locksmithctl", "reboot"][..], LockCommand::Reboot),
            (
                &["locksmithctl", "-group=lb", "send-need-reboot"],
                LockCommand::SendNeedReboot,
            ),
            (&["locksmithctl", "-version"], LockCommand::Version),
            (
                &["locksmithctl", "--version", "status"],
                LockCommand::Version,
            ),
            (&["locksmithctl", "-version=true"], LockCommand::Version),
            (&["locksmithctl", "version"], LockCommand::Version),
            (
                &["locksmithctl", "-version=false", "-debug", "status"],
                LockCommand::Status,
            ),
        ] {
            let c = parse(args(argv)).unwrap();
            assert!(
                matches!(&c.command, Command::Lock(l) if l.command == want),
                "{argv:?}: {:?}",
                c.command
            );
        }
        let c = parse(args(&[
            "locksmithctl",
            "-debug=true",
            "-endpoint",
            "http://e:1",
            "status",
        ]))
        .unwrap();
        assert!(
            matches!(c.command, Command::Lock(l) if l.debug && l.etcd.endpoints == ["http://e:1"])
        );
        // No subcommand, or `help`: the help, exit 0 (clap's DisplayHelp).
        for argv in [
            &["locksmithctl"][..],
            &["locksmithctl", "-endpoint", "http://e:1"],
            &["locksmithctl", "help"],
            &["locksmithctl", "-help"],
            &["locksmithctl", "help", "reboot"],
        ] {
            let e = parse(args(argv)).unwrap_err();
            assert_eq!(
                e.kind(),
                clap::error::ErrorKind::DisplayHelp,
                "{argv:?}: {e}"
            );
        }
        let e = parse(args(&["locksmithctl", "frobnicate"])).unwrap_err();
        assert!(e.to_string().contains("frobnicate"), "{e}");
    }

    /// A root whose `/etc/coreos/update.conf` has an impossible reboot window (issue 16).
    fn misconfigured_root() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("etc/coreos/update.conf");
        std::fs::create_dir_all(conf.parent().unwrap()).unwrap();
        std::fs::write(
            &conf,
            "LOCKSMITHD_REBOOT_WINDOW_START=Blursday 25:61\nLOCKSMITHD_REBOOT_WINDOW_LENGTH=-1h\n",
        )
        .unwrap();
        let keys = Paths::new(dir.path()).root_keys();
        std::fs::create_dir_all(keys.parent().unwrap()).unwrap();
        let no_keys = channels::RootKeys { keys: Vec::new() };
        std::fs::write(&keys, channels::canonical::to_vec(&no_keys).unwrap()).unwrap();
        dir
    }

    #[test]
    fn status_answers_and_check_refuses_with_an_unusable_update_conf() {
        let dir = misconfigured_root();
        let cli = |command| Cli {
            root: dir.path().to_owned(),
            command,
        };
        assert_eq!(run(cli(Command::Status { json: true })).unwrap(), 0);
        assert_eq!(run(cli(Command::Status { json: false })).unwrap(), 0);
        assert_eq!(run(cli(Command::Client(ClientAction::Status))).unwrap(), 0);
        let err = format!("{:#}", run(cli(Command::Check)).unwrap_err());
        assert!(
            err.starts_with("updates are off until update.conf is fixed: ")
                && err.contains(
                    "etc/coreos/update.conf: LOCKSMITHD_REBOOT_WINDOW_START=\"Blursday 25:61\""
                ),
            "{err}"
        );
        // The status file says it too, for the clients.
        let status = crate::status::Status::load(&Paths::new(dir.path()).status()).unwrap();
        assert_eq!(status.config_errors.len(), 1, "{status:?}");
        assert!(status.render_plain().contains("\nCONFIG_ERROR="));
    }
}
