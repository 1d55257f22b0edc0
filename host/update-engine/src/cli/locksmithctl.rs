//! `update-engine lock status | lock [ID] | unlock [ID] | set-max N | reboot |
//! send-need-reboot | version | help` (also run as `locksmithctl`, with its Go-style `-flag`s:
//! `-endpoint`, `-etcd-cafile`, `-etcd-certfile`, `-etcd-keyfile`, `-etcd-username`,
//! `-etcd-password`, `-group`, `-debug`, `-version`) and `update-engine lock-server --listen
//! ADDR`.
//!
//! Output is locksmithctl's (coreos/locksmith `locksmithctl/*.go`): `status` prints
//! `Available: N`, `Max: M` and, when there are holders, a blank line, `MACHINE ID` and one id
//! a line; `lock` and `unlock` print nothing. `set-max` prints `Old: 1` / `New: 2` as in
//! locksmith's README (its source prints `Old-Max:` / `Max:`). Locking an id that holds a slot
//! already fails, as with locksmithctl ("holder exists"). `-version` (and `version`) prints
//! `locksmithctl version X`; no subcommand prints the help, as there.
//!
//! `status` of a semaphore whose fields disagree (a holder listed twice, a count that is not
//! `max` minus the holders, ...: [`Semaphore::problems`]) prints the stored value as above and,
//! on stderr, a `Warning:` line per problem and one with the value the next change (`lock`,
//! `unlock`, `set-max`) starts from ([`Semaphore::repaired`]; a refused `lock` writes
//! nothing). A consistent semaphore gets no warning, so the output stays locksmithctl's.
//! `unlock ""` is accepted, to remove a holder with an empty id that a hand edit left.
//!
//! `reboot`, as locksmithctl's: as root only, takes the reboot lock for this machine's id, then
//! reboots at once (no reboot window: a person asked), and fails without rebooting when the
//! lock is full or does not answer. The lock is locksmith's etcd semaphore, as there, except
//! with `REBOOT_STRATEGY=fleetlock`, where the machines of this cluster coordinate through the
//! FleetLock server instead. The attempt is recorded in the engine's state before asking, as
//! the engine does for its own reboots, so the daemon gives the lock back once the booted slot
//! is marked good (locksmithd unlocked it after boot too; it does so through update.conf's
//! settings, so a lock taken with other `-endpoint`/`-group` flags is released by hand).
//!
//! `send-need-reboot`: locksmithctl emitted update_engine's D-Bus `StatusUpdate` signal with
//! `UPDATE_STATUS_UPDATED_NEED_REBOOT`, for locksmithd to act on as after an update. Here it
//! leaves the daemon a [`Request::RebootNeeded`]; the daemon then follows `REBOOT_STRATEGY`
//! (window, lock, reboot) as after staging an update. It fails when no daemon runs, and with
//! `REBOOT_STRATEGY=off`, where the daemon never reboots (locksmithd did not run then).
//!
//! Settings, first found wins: the flag, locksmithctl's environment variable
//! (`LOCKSMITHCTL_ENDPOINT`, `LOCKSMITHCTL_ETCD_CAFILE`, … `LOCKSMITHCTL_GROUP`), the
//! `LOCKSMITHD_*` key of update.conf, locksmithctl's default. Manual locks never get a holder
//! lease (`ETCD_LOCK_TTL` is for the engine): a lock taken by hand stays until unlocked by hand.

use std::path::PathBuf;

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Subcommand};

use crate::config::{Config, Paths, RebootStrategy};
use crate::engine::Engine;
use crate::host::{Host, RealHost};
use crate::http::Policy;
use crate::lock::etcd::{EtcdConfig, EtcdLock, EtcdSettings, Locked};
use crate::lock::reboot_lock::{EtcdRebootLock, LockKind, RebootLock};
use crate::lock::semaphore::Semaphore;
use crate::reboot::LockedReboot;
use crate::request::{self, Request};

/// The name locksmith's client is called by.
pub const LOCKSMITHCTL_NAME: &str = "locksmithctl";

/// How to reach etcd (locksmithctl's global flags).
#[derive(Debug, Clone, Default, PartialEq, Eq, Args)]
pub struct EtcdArgs {
    /// etcd endpoint; repeat it or separate with commas [default: LOCKSMITHD_ENDPOINT, else
    /// http://127.0.0.1:2379,http://127.0.0.1:4001]
    #[arg(
        long = "endpoint",
        value_name = "URL",
        value_delimiter = ',',
        global = true
    )]
    pub endpoints: Vec<String>,
    /// CA file for TLS to etcd [default: LOCKSMITHD_ETCD_CAFILE]
    #[arg(long = "etcd-cafile", value_name = "FILE", global = true)]
    pub ca_file: Option<PathBuf>,
    /// Client certificate file for etcd [default: LOCKSMITHD_ETCD_CERTFILE]
    #[arg(long = "etcd-certfile", value_name = "FILE", global = true)]
    pub cert_file: Option<PathBuf>,
    /// Client key file for etcd [default: LOCKSMITHD_ETCD_KEYFILE]
    #[arg(long = "etcd-keyfile", value_name = "FILE", global = true)]
    pub key_file: Option<PathBuf>,
    /// etcd user name [default: LOCKSMITHD_ETCD_USERNAME]
    #[arg(long = "etcd-username", value_name = "USER", global = true)]
    pub username: Option<String>,
    /// etcd password [default: LOCKSMITHD_ETCD_PASSWORD]
    #[arg(long = "etcd-password", value_name = "PASSWORD", global = true)]
    pub password: Option<String>,
}

/// `update-engine lock`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct LockArgs {
    /// etcd connection.
    #[command(flatten)]
    pub etcd: EtcdArgs,
    /// locksmith group [default: LOCKSMITHD_GROUP, else the default group]
    #[arg(long, global = true)]
    pub group: Option<String>,
    /// Print the etcd settings used to stderr.
    #[arg(long, global = true)]
    pub debug: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: LockCommand,
}

/// The lock subcommands (locksmithctl's).
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum LockCommand {
    /// Print the free slots, the maximum and the holders.
    Status,
    /// Take a slot for ID (default: this machine's /etc/machine-id).
    Lock {
        /// The holder id.
        id: Option<String>,
    },
    /// Release ID's slot (default: this machine's /etc/machine-id).
    Unlock {
        /// The holder id.
        id: Option<String>,
    },
    /// Set how many machines may hold the lock at once.
    SetMax {
        /// The new maximum.
        max: u32,
    },
    /// Reboot honoring reboot locks: take the lock for this machine, then reboot (as root).
    Reboot,
    /// Tell the update-engine daemon a reboot is needed: it follows REBOOT_STRATEGY (window,
    /// lock) as after an update.
    SendNeedReboot,
    /// Print the version (also -version).
    Version,
}

/// `update-engine lock-server`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct LockServerArgs {
    /// Address to serve FleetLock on, e.g. 0.0.0.0:3333.
    #[arg(long, value_name = "ADDR")]
    pub listen: String,
    /// etcd connection.
    #[command(flatten)]
    pub etcd: EtcdArgs,
}

/// locksmithctl's global flags that take a value.
const VALUE_FLAGS: [&str; 7] = [
    "endpoint",
    "etcd-cafile",
    "etcd-certfile",
    "etcd-keyfile",
    "etcd-username",
    "etcd-password",
    "group",
];

/// Go's spellings of true and false (`strconv.ParseBool`). Pure.
fn go_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// locksmithctl's arguments as `update-engine lock`'s: Go-style flags ([`go_flags_to_clap`]),
/// `-version` → `version`, `-debug=false` dropped, and `help` when no subcommand follows the
/// global flags (Go's flag package stops at the first argument that is not a flag). Pure.
pub fn locksmithctl_args(args: &[std::ffi::OsString]) -> Vec<std::ffi::OsString> {
    let mut out = Vec::new();
    let mut args = go_flags_to_clap(args).into_iter();
    while let Some(arg) = args.next() {
        let flag = match arg.to_str() {
            Some("--") | None => {
                out.push(arg);
                out.extend(args);
                return out;
            }
            Some(a) => match a.strip_prefix("--") {
                Some(f) => f.to_owned(),
                None => {
                    out.push(arg);
                    out.extend(args);
                    return out;
                }
            },
        };
        let (name, value) = match flag.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (flag.as_str(), None),
        };
        match (name, value.map(|v| go_bool(v).ok_or(v))) {
            ("version", None | Some(Ok(true))) => return vec!["version".into()],
            ("version" | "debug", Some(Ok(false))) => continue,
            ("debug", Some(Ok(true))) => out.push("--debug".into()),
            (name, None) if VALUE_FLAGS.contains(&name) => {
                out.push(arg);
                out.extend(args.next());
            }
            _ => out.push(arg),
        }
    }
    // No subcommand: locksmithctl shows its help.
    out.push("help".into());
    out
}

/// Go-style `-flag[=v]` → `--flag[=v]` (locksmithctl's flag package takes both). Pure.
pub fn go_flags_to_clap(args: &[std::ffi::OsString]) -> Vec<std::ffi::OsString> {
    args.iter()
        .map(|a| match a.to_str() {
            Some(s) if s.len() > 2 && s.starts_with('-') && !s.starts_with("--") => {
                format!("-{s}").into()
            }
            _ => a.clone(),
        })
        .collect()
}

impl EtcdArgs {
    /// The settings given on the command line (`group`: `--group`).
    pub fn settings(&self, group: Option<&str>) -> EtcdSettings {
        EtcdSettings {
            endpoints: self.endpoints.clone(),
            ca_file: self.ca_file.clone(),
            cert_file: self.cert_file.clone(),
            key_file: self.key_file.clone(),
            username: self.username.clone(),
            password: self.password.clone(),
            group: group.map(str::to_owned),
        }
    }
}

/// The etcd client configuration for `args` and `group`, each setting from the flag, else
/// `env("LOCKSMITHCTL_…")`, else update.conf, else the default. Pure.
pub fn etcd_config(
    args: &EtcdArgs,
    group: Option<&str>,
    conf: &Config,
    env: &dyn Fn(&str) -> Option<String>,
) -> EtcdConfig {
    EtcdConfig::resolve(&[
        &args.settings(group),
        &EtcdSettings::from_env(env),
        &conf.reboot_lock.etcd,
    ])
}

/// Refuses to reach etcd when update.conf's etcd settings have a value the engine cannot use:
/// its default in their place would be another etcd than the cluster's.
fn etcd_settings_usable(config: &Config) -> Result<()> {
    match config.lock_problem(LockKind::Etcd) {
        Some(problem) => bail!("update.conf's etcd settings cannot be used: {problem}"),
        None => Ok(()),
    }
}

/// locksmithctl's `status` text. Pure.
pub fn render_status(sem: &Semaphore) -> String {
    let mut out = format!("Available: {}\nMax: {}\n", sem.semaphore, sem.max);
    if !sem.holders().is_empty() {
        out.push_str("\nMACHINE ID\n");
        for h in sem.holders() {
            out.push_str(h);
            out.push('\n');
        }
    }
    out
}

/// What `status` adds on stderr when the semaphore's fields disagree: a line per problem and the
/// value the next change starts from; empty for a consistent semaphore. Pure.
pub fn render_status_warnings(sem: &Semaphore) -> String {
    let problems = sem.problems();
    if problems.is_empty() {
        return String::new();
    }
    let mut out = String::new();
    for p in problems {
        out.push_str(&format!("Warning: the semaphore is inconsistent: {p}\n"));
    }
    // Not for a problem the repair keeps (an empty holder id).
    let repaired = sem.repaired();
    if repaired != *sem {
        out.push_str(&format!(
            "Warning: the next change (lock, unlock, set-max) repairs it to {} first\n",
            repaired.to_json()
        ));
    }
    out
}

/// `set-max`'s text. Pure.
pub fn render_set_max(old: i64, new: i64) -> String {
    format!("Old: {old}\nNew: {new}\n")
}

/// This machine's id: `/etc/machine-id`, trimmed.
fn machine_id(paths: &Paths) -> Result<String> {
    let path = paths.machine_id();
    let id = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "reading the machine id from {} (or give an ID)",
            path.display()
        )
    })?;
    let id = id.trim();
    if id.is_empty() {
        bail!("{} is empty: give an ID", path.display());
    }
    Ok(id.to_owned())
}

/// `unlock`'s id: as [`id_or_machine`], except that an empty ID given on purpose is taken (a
/// hand edit may have listed one; [`Semaphore::problems`] points here).
fn unlock_id(id: &Option<String>, paths: &Paths) -> Result<String> {
    match id {
        Some(id) if id.is_empty() => Ok(String::new()),
        _ => id_or_machine(id, paths),
    }
}

fn id_or_machine(id: &Option<String>, paths: &Paths) -> Result<String> {
    match id {
        Some(id) if id.is_empty() => bail!("the holder ID is empty"),
        Some(id) => Ok(id.clone()),
        None => machine_id(paths),
    }
}

/// `reboot` is for root only (as locksmithctl's). Pure.
pub fn require_root(euid: u32) -> Result<()> {
    if euid != 0 {
        bail!("must be root to reboot (locksmithctl reboot takes the reboot lock, then reboots)");
    }
    Ok(())
}

/// The lock `locksmithctl reboot` takes under `strategy`: locksmith's etcd semaphore, or the
/// FleetLock server where the cluster coordinates through one. Pure.
pub fn reboot_lock_kind(strategy: RebootStrategy) -> LockKind {
    match strategy {
        RebootStrategy::FleetLock => LockKind::FleetLock,
        _ => LockKind::Etcd,
    }
}

/// `reboot`: takes the reboot lock for this machine (`etcd`: the semaphore's settings, from the
/// flags over the environment over update.conf), then reboots. Returns how, if the host's
/// reboot returns (a test's host); fails without rebooting when the lock is not ours.
pub fn reboot<H: Host>(engine: &Engine<H>, etcd: EtcdConfig) -> Result<String> {
    if let Some(problems) = engine.config.problems_text() {
        bail!("not rebooting until update.conf is fixed: {problems}");
    }
    let id = engine
        .holder_id()
        .map_err(|e| anyhow!("cannot read the machine id: {e}"))?;
    let lock: Box<dyn RebootLock> = match reboot_lock_kind(engine.config.reboot_strategy) {
        LockKind::Etcd => Box::new(EtcdRebootLock::new(
            EtcdConfig {
                holder_ttl_secs: engine.config.reboot_lock.etcd_holder_ttl_secs,
                ..etcd
            },
            &id,
        )),
        kind => engine.lock_of(kind, &id).map_err(|e| anyhow!(e))?,
    };
    match engine.reboot_with_lock(lock.as_ref(), &id)? {
        LockedReboot::Rebooting { how } => Ok(how),
        LockedReboot::Refused(why) => bail!(
            "not rebooting: the reboot lock ({}) is not this machine's: {why}",
            lock.describe()
        ),
    }
}

/// `send-need-reboot`: leaves the daemon a [`Request::RebootNeeded`]. Returns what to tell the
/// user.
pub fn send_need_reboot(paths: &Paths, config: &Config) -> Result<String> {
    if let Some(problems) = config.problems_text() {
        bail!("the update-engine daemon does not reboot until update.conf is fixed: {problems}");
    }
    if config.reboot_strategy == RebootStrategy::Off {
        bail!(
            "REBOOT_STRATEGY=off: the update-engine daemon never reboots by itself, so it would \
             ignore the notice (reboot by hand, or `locksmithctl reboot` to take the lock first)"
        );
    }
    let pid = request::daemon_pid(paths)?;
    let from = format!("locksmithctl send-need-reboot (pid {})", std::process::id());
    Request::RebootNeeded.send(paths, &from).with_context(|| {
        format!(
            "telling the update-engine daemon: writing {} (run it as root)",
            Request::RebootNeeded.path(paths).display()
        )
    })?;
    Ok(format!(
        "told the update-engine daemon (pid {pid}) a reboot is needed; it follows \
         REBOOT_STRATEGY={}",
        config.reboot_strategy
    ))
}

/// `version`'s line.
pub fn version_line() -> String {
    format!("{LOCKSMITHCTL_NAME} version {}", env!("CARGO_PKG_VERSION"))
}

/// Runs `update-engine lock …`: prints what locksmithctl prints.
pub fn run_lock(args: &LockArgs, paths: &Paths, config: &Config) -> Result<()> {
    let env = |k: &str| std::env::var(k).ok();
    let etcd = etcd_config(&args.etcd, args.group.as_deref(), config, &env);
    if args.debug {
        eprintln!(
            "{LOCKSMITHCTL_NAME}: etcd endpoints {}, group {}, CA file {:?}, certificate {:?}, \
             key {:?}, user {:?}",
            etcd.endpoints.join(","),
            etcd.group.as_deref().unwrap_or("(default)"),
            etcd.ca_file,
            etcd.cert_file,
            etcd.key_file,
            etcd.username
        );
    }
    match &args.command {
        LockCommand::Version => {
            println!("{}", version_line());
            return Ok(());
        }
        LockCommand::SendNeedReboot => {
            eprintln!("{}", send_need_reboot(paths, config)?);
            return Ok(());
        }
        LockCommand::Reboot => {
            // SAFETY: geteuid cannot fail.
            require_root(unsafe { libc::geteuid() })?;
            let host = RealHost::new(paths.clone());
            let no_keys = channels::RootKeys { keys: Vec::new() };
            let engine = Engine {
                paths,
                config,
                root_keys: &no_keys,
                host: &host,
                policy: Policy::CHANNEL,
            };
            reboot(&engine, etcd)?;
            return Ok(());
        }
        _ => {}
    }
    etcd_settings_usable(config)?;
    let lock = EtcdLock::connect(&etcd)?;
    match &args.command {
        LockCommand::Status => {
            let sem = lock.get()?;
            print!("{}", render_status(&sem));
            eprint!("{}", render_status_warnings(&sem));
        }
        LockCommand::Lock { id } => {
            let id = id_or_machine(id, paths)?;
            match lock.lock(&id).with_context(|| format!("locking {id}"))? {
                Locked::Acquired => {}
                Locked::AlreadyHeld => bail!("{id} already holds the reboot lock {}", lock.key()),
            }
        }
        LockCommand::Unlock { id } => {
            let id = unlock_id(id, paths)?;
            lock.unlock(&id)
                .with_context(|| format!("unlocking {id:?}"))?;
        }
        LockCommand::SetMax { max } => {
            let (old, new) = lock.set_max(*max)?;
            print!("{}", render_set_max(old, new));
        }
        LockCommand::Reboot | LockCommand::SendNeedReboot | LockCommand::Version => {}
    }
    Ok(())
}

/// Runs `update-engine lock-server`: serves until killed.
pub fn run_server(args: &LockServerArgs, config: &Config) -> Result<()> {
    let env = |k: &str| std::env::var(k).ok();
    let etcd = etcd_config(&args.etcd, None, config, &env);
    etcd_settings_usable(config)?;
    crate::lock::server::serve(&args.listen, &etcd)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_is_locksmithctls() {
        let sem = Semaphore::with_holders(0, 1, vec!["69d27b356a94476da859461d3a3bc6fd".into()]);
        assert_eq!(
            render_status(&sem),
            "Available: 0\nMax: 1\n\nMACHINE ID\n69d27b356a94476da859461d3a3bc6fd\n"
        );
        assert_eq!(render_status(&Semaphore::new()), "Available: 1\nMax: 1\n");
        assert_eq!(render_set_max(1, 4), "Old: 1\nNew: 4\n");
    }

    #[test]
    fn settings_precedence() {
        let mut conf = Config::default();
        conf.reboot_lock.etcd = EtcdSettings {
            endpoints: vec!["http://conf:2379".into()],
            group: Some("conf-group".into()),
            ca_file: Some("/conf/ca".into()),
            ..EtcdSettings::default()
        };
        let no_env = |_: &str| None;
        // Defaults.
        let c = etcd_config(&EtcdArgs::default(), None, &Config::default(), &no_env);
        assert_eq!(c.endpoints, crate::lock::etcd::DEFAULT_ENDPOINTS);
        assert_eq!((c.group, c.ca_file, c.holder_ttl_secs), (None, None, None));
        // update.conf.
        let c = etcd_config(&EtcdArgs::default(), None, &conf, &no_env);
        assert_eq!(c.endpoints, ["http://conf:2379"]);
        assert_eq!(c.group.as_deref(), Some("conf-group"));
        // Environment over update.conf.
        let env = |k: &str| match k {
            "LOCKSMITHCTL_ENDPOINT" => Some("http://e1:2379,http://e2:2379".to_owned()),
            "LOCKSMITHCTL_GROUP" => Some("env-group".to_owned()),
            "LOCKSMITHCTL_ETCD_CAFILE" => Some(String::new()),
            _ => None,
        };
        let c = etcd_config(&EtcdArgs::default(), None, &conf, &env);
        assert_eq!(c.endpoints, ["http://e1:2379", "http://e2:2379"]);
        assert_eq!(c.group.as_deref(), Some("env-group"));
        assert_eq!(c.ca_file, Some(PathBuf::from("/conf/ca")));
        // Flags over everything.
        let args = EtcdArgs {
            endpoints: vec!["http://flag:2379".into()],
            ca_file: Some("/flag/ca".into()),
            ..EtcdArgs::default()
        };
        let c = etcd_config(&args, Some("flag-group"), &conf, &env);
        assert_eq!(c.endpoints, ["http://flag:2379"]);
        assert_eq!(c.group.as_deref(), Some("flag-group"));
        assert_eq!(c.ca_file, Some(PathBuf::from("/flag/ca")));
    }

    #[test]
    fn go_flags() {
        let args: Vec<std::ffi::OsString> =
            ["-endpoint=http://x:1", "--group", "g", "-h", "status", "-"]
                .iter()
                .map(Into::into)
                .collect();
        let want: Vec<std::ffi::OsString> =
            ["--endpoint=http://x:1", "--group", "g", "-h", "status", "-"]
                .iter()
                .map(Into::into)
                .collect();
        assert_eq!(go_flags_to_clap(&args), want);
    }

    #[test]
    fn locksmithctl_arguments() {
        let conv = |a: &[&str]| -> Vec<String> {
            let args: Vec<std::ffi::OsString> = a.iter().map(Into::into).collect();
            locksmithctl_args(&args)
                .into_iter()
                .map(|a| a.into_string().unwrap())
                .collect()
        };
        assert_eq!(conv(&[]), ["help"]);
        assert_eq!(
            conv(&["-endpoint", "http://e:1"]),
            ["--endpoint", "http://e:1", "help"]
        );
        // A value flag's value is not the subcommand.
        assert_eq!(conv(&["-group", "status"]), ["--group", "status", "help"]);
        assert_eq!(conv(&["-group=lb", "status"]), ["--group=lb", "status"]);
        assert_eq!(conv(&["-version"]), ["version"]);
        assert_eq!(conv(&["-endpoint=x", "--version=1", "unlock"]), ["version"]);
        assert_eq!(conv(&["-version=false", "status"]), ["status"]);
        assert_eq!(conv(&["-debug=t", "status"]), ["--debug", "status"]);
        assert_eq!(conv(&["-debug=F", "status"]), ["status"]);
        // After the subcommand, nothing changes meaning (only Go's -flag spelling).
        assert_eq!(conv(&["lock", "-version"]), ["lock", "--version"]);
        assert_eq!(conv(&["--", "status"]), ["--", "status"]);
        // Not Go booleans: left for clap to refuse.
        assert_eq!(conv(&["-debug=yes", "status"]), ["--debug=yes", "status"]);
        assert_eq!(
            version_line(),
            format!("locksmithctl version {}", env!("CARGO_PKG_VERSION"))
        );
    }

    #[test]
    fn reboot_is_for_root_and_takes_the_strategys_lock() {
        assert!(require_root(0).is_ok());
        let e = require_root(1000).unwrap_err().to_string();
        assert!(e.contains("must be root"), "{e}");
        for s in RebootStrategy::ALL {
            let want = if s == RebootStrategy::FleetLock {
                LockKind::FleetLock
            } else {
                LockKind::Etcd
            };
            assert_eq!(reboot_lock_kind(s), want, "{s}");
        }
    }

    #[test]
    fn send_need_reboot_needs_a_daemon_that_reboots() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::new(dir.path());
        let off = Config {
            reboot_strategy: RebootStrategy::Off,
            ..Config::default()
        };
        let e = send_need_reboot(&paths, &off).unwrap_err().to_string();
        assert!(e.starts_with("REBOOT_STRATEGY=off"), "{e}");
        let e = format!(
            "{:#}",
            send_need_reboot(&paths, &Config::default()).unwrap_err()
        );
        assert!(e.contains("daemon is not running"), "{e}");
        assert!(!Request::RebootNeeded.is_pending(&paths));
        request::write_pid(&paths, std::process::id()).unwrap();
        let said = send_need_reboot(&paths, &Config::default()).unwrap();
        assert!(said.contains("REBOOT_STRATEGY=reboot"), "{said}");
        assert_eq!(Request::take(&paths), Some(Request::RebootNeeded));
    }

    #[test]
    fn machine_id_is_read_and_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::new(dir.path());
        let e = id_or_machine(&None, &paths).unwrap_err();
        assert!(format!("{e:#}").contains("etc/machine-id"), "{e:#}");
        std::fs::create_dir_all(dir.path().join("etc")).unwrap();
        std::fs::write(paths.machine_id(), "abc123\n").unwrap();
        assert_eq!(id_or_machine(&None, &paths).unwrap(), "abc123");
        assert_eq!(id_or_machine(&Some("x".into()), &paths).unwrap(), "x");
        assert!(id_or_machine(&Some(String::new()), &paths).is_err());
        assert_eq!(unlock_id(&Some(String::new()), &paths).unwrap(), "");
        assert_eq!(unlock_id(&None, &paths).unwrap(), "abc123");
    }

    #[test]
    fn status_warns_once_per_problem_and_shows_the_repair() {
        let consistent = Semaphore::with_holders(0, 2, vec!["a".into(), "b".into()]);
        assert_eq!(render_status_warnings(&consistent), "");
        assert_eq!(render_status_warnings(&Semaphore::new()), "");
        let sem =
            Semaphore::from_json(br#"{"semaphore":5,"max":1,"holders":["b","a","b"]}"#).unwrap();
        // The stored value, as locksmithctl prints it.
        assert_eq!(
            render_status(&sem),
            "Available: 5\nMax: 1\n\nMACHINE ID\nb\na\nb\n"
        );
        assert_eq!(
            render_status_warnings(&sem),
            "Warning: the semaphore is inconsistent: holder \"b\" is listed 2 times\n\
             Warning: the semaphore is inconsistent: the holders are not sorted\n\
             Warning: the semaphore is inconsistent: Available is 5, but Max 1 \
             minus 2 holders is -1\n\
             Warning: the next change (lock, unlock, set-max) repairs it to \
             {\"semaphore\":-1,\"max\":1,\"holders\":[\"a\",\"b\"]} first\n"
        );
        // What the repair keeps is reported, without a repair to announce.
        let empty = Semaphore::from_json(br#"{"semaphore":0,"max":1,"holders":[""]}"#).unwrap();
        assert_eq!(
            render_status_warnings(&empty),
            "Warning: the semaphore is inconsistent: a holder has an empty id \
             (`locksmithctl unlock \"\"` removes it)\n"
        );
    }

    #[test]
    fn an_unusable_update_conf_is_named_not_worked_around() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::new(dir.path());
        let conf = |text: &str| {
            let keys = crate::config::parse_conf("update.conf", text).unwrap();
            Config::merged(&[("update.conf", &keys)])
        };
        // Its default endpoints would be another etcd than the cluster's.
        let bad_endpoint = conf("LOCKSMITHD_ENDPOINT=etcd.example:port\n");
        let args = LockArgs {
            etcd: EtcdArgs::default(),
            group: None,
            debug: false,
            command: LockCommand::Status,
        };
        let e = run_lock(&args, &paths, &bad_endpoint)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("update.conf's etcd settings cannot be used: update.conf: LOCKSMITHD_ENDPOINT=\"etcd.example:port\""),
            "{e}"
        );
        let e = run_server(
            &LockServerArgs {
                listen: "127.0.0.1:0".into(),
                etcd: EtcdArgs::default(),
            },
            &bad_endpoint,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("LOCKSMITHD_ENDPOINT"), "{e}");
        // A daemon that does not reboot is not told to.
        let bad_window = conf("REBOOT_WINDOW_START=25:00\nREBOOT_WINDOW_LENGTH=1h\n");
        let e = send_need_reboot(&paths, &bad_window)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("the update-engine daemon does not reboot until update.conf is fixed: update.conf: REBOOT_WINDOW_START=\"25:00\""),
            "{e}"
        );
        // `version` needs no etcd.
        let version = LockArgs {
            command: LockCommand::Version,
            ..args
        };
        run_lock(&version, &paths, &bad_endpoint).unwrap();
    }
}
