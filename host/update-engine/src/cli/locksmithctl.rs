//! `update-engine lock status | lock [ID] | unlock [ID] | set-max N` (also run as
//! `locksmithctl`, with its Go-style `-flag`s) and `update-engine lock-server --listen ADDR`.
//!
//! Output is locksmithctl's (flatcar/locksmith `locksmithctl/*.go`): `status` prints
//! `Available: N`, `Max: M` and, when there are holders, a blank line, `MACHINE ID` and one id
//! a line; `lock` and `unlock` print nothing. `set-max` prints `Old: 1` / `New: 2` as in
//! locksmith's README (its source prints `Old-Max:` / `Max:`). Locking an id that holds a slot
//! already fails, as with locksmithctl ("holder exists").
//!
//! Settings, first found wins: the flag, locksmithctl's environment variable
//! (`LOCKSMITHCTL_ENDPOINT`, `LOCKSMITHCTL_ETCD_CAFILE`, … `LOCKSMITHCTL_GROUP`), the
//! `LOCKSMITHD_*` key of update.conf, locksmithctl's default. Manual locks never get a holder
//! lease (`ETCD_LOCK_TTL` is for the engine): a lock taken by hand stays until unlocked by hand.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};

use crate::config::{Config, Paths};
use crate::lock::etcd::{EtcdConfig, EtcdLock, EtcdSettings, Locked};
use crate::lock::semaphore::Semaphore;

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

fn id_or_machine(id: &Option<String>, paths: &Paths) -> Result<String> {
    match id {
        Some(id) if id.is_empty() => bail!("the holder ID is empty"),
        Some(id) => Ok(id.clone()),
        None => machine_id(paths),
    }
}

/// Runs `update-engine lock …`: prints what locksmithctl prints.
pub fn run_lock(args: &LockArgs, paths: &Paths, config: &Config) -> Result<()> {
    let env = |k: &str| std::env::var(k).ok();
    let etcd = etcd_config(&args.etcd, args.group.as_deref(), config, &env);
    let lock = EtcdLock::connect(&etcd)?;
    match &args.command {
        LockCommand::Status => print!("{}", render_status(&lock.get()?)),
        LockCommand::Lock { id } => {
            let id = id_or_machine(id, paths)?;
            match lock.lock(&id).with_context(|| format!("locking {id}"))? {
                Locked::Acquired => {}
                Locked::AlreadyHeld => bail!("{id} already holds the reboot lock {}", lock.key()),
            }
        }
        LockCommand::Unlock { id } => {
            let id = id_or_machine(id, paths)?;
            lock.unlock(&id)
                .with_context(|| format!("unlocking {id}"))?;
        }
        LockCommand::SetMax { max } => {
            let (old, new) = lock.set_max(*max)?;
            print!("{}", render_set_max(old, new));
        }
    }
    Ok(())
}

/// Runs `update-engine lock-server`: serves until killed.
pub fn run_server(args: &LockServerArgs, config: &Config) -> Result<()> {
    let env = |k: &str| std::env::var(k).ok();
    let etcd = etcd_config(&args.etcd, None, config, &env);
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
    }
}
