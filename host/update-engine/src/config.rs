//! Configuration: Container Linux's `update.conf` (`KEY=VALUE` lines, `#` comments, optional
//! quotes) from three files, each overriding the ones before key by key: the image's defaults
//! (`/usr/share/update-engine/update.conf`), Container Linux's `/etc/coreos/update.conf` (an
//! operator's or a cloud-config's `write_files`), then `/etc/update-engine/update.conf` (the
//! config agent's `coreos.update` and `coreos.locksmith`, which Container Linux also merged
//! over the file); and the image's root keys (`root.json`, canonical JSON).
//!
//! Keys: `GROUP` (the channel), `SERVER` (the repository base URL), `REBOOT_STRATEGY` (DESIGN.md
//! "Reboot coordination"), plus ours: `CHECK_INTERVAL` and `HEALTH_TIMEOUT` (seconds). Other
//! Container Linux keys (`PXE`, ...) are accepted and ignored.
//!
//! The reboot lock ([`RebootLockConfig`], used by [`crate::lock`]), with locksmith's names for
//! what locksmith had (its daemon read them from the same file):
//! - `LOCKSMITHD_ENDPOINT`: etcd client URLs, comma-separated (unset: locksmithctl's
//!   `http://127.0.0.1:2379,http://127.0.0.1:4001`);
//! - `LOCKSMITHD_ETCD_CAFILE`, `LOCKSMITHD_ETCD_CERTFILE`, `LOCKSMITHD_ETCD_KEYFILE`: PEM files
//!   for TLS to etcd; `LOCKSMITHD_ETCD_USERNAME`, `LOCKSMITHD_ETCD_PASSWORD`: etcd credentials;
//! - `LOCKSMITHD_GROUP`: the locksmith group (unset: the default semaphore);
//! - `LOCKSMITHD_REBOOT_WINDOW_START` (`Thu 23:00`, `23:00`) and
//!   `LOCKSMITHD_REBOOT_WINDOW_LENGTH` (`1h30m`), both or neither; `REBOOT_WINDOW_START` /
//!   `REBOOT_WINDOW_LENGTH` are accepted too, as by locksmith;
//! - ours: `ETCD_LOCK_TTL`: seconds; when set, etcd-lock holders get an etcd lease of that TTL
//!   and a holder whose lease ran out can be removed by the next machine that finds the
//!   semaphore full (see [`crate::lock::etcd`]). It must cover a reboot and the health check;
//! - ours, after Zincati's `fleet_lock.base_url` and `identity.group`: `FLEETLOCK_URL`, the
//!   FleetLock server's base URL (`http://…` or `https://…`), and `FLEETLOCK_GROUP` (default
//!   `default`, `^[a-zA-Z0-9.-]+$`).
//!
//! Which values are usable is `contract::update_conf`'s rule (the validators use it too). A
//! value that is not, a malformed line or an unreadable file does not stop the engine: it is a
//! [`ConfigProblem`] in [`Config::problems`], the setting keeps its default, and the engine
//! does what keeps the machine safe and nothing more until the files are fixed
//! ([`crate::lifecycle`]).

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use channels::RootKeys;
use contract::paths;
pub use contract::update_conf::split_list;
use contract::update_conf::{self, keys, BadValue, SyntaxError};

use crate::lock::etcd::{EtcdConfig, EtcdSettings};
use crate::lock::fleetlock;
use crate::lock::reboot_lock::LockKind;
use crate::lock::RebootWindow;

/// Time between two checks of the daemon, before jitter.
pub const DEFAULT_CHECK_INTERVAL_SECS: u64 = 3600; // 1 hour
/// How long a freshly booted slot may take to pass its health check before the engine reboots.
pub const DEFAULT_HEALTH_TIMEOUT_SECS: u64 = 300; // 5 minutes
/// The channel when `GROUP` is not set (Container Linux's default).
pub const DEFAULT_GROUP: &str = "stable";

/// Every file the engine reads or writes, under one root (`/` in production, a tempdir in tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    /// The file system root.
    pub root: PathBuf,
}

impl Paths {
    /// Paths under `root`.
    pub fn new(root: impl Into<PathBuf>) -> Paths {
        Paths { root: root.into() }
    }
    fn at(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }
    /// `/usr/share/update-engine/update.conf`: the image's defaults.
    pub fn defaults_conf(&self) -> PathBuf {
        self.at(paths::UPDATE_CONF_DEFAULTS)
    }
    /// `/etc/coreos/update.conf`: Container Linux's file for the machine's settings.
    pub fn coreos_conf(&self) -> PathBuf {
        self.at(paths::COREOS_UPDATE_CONF)
    }
    /// `/etc/update-engine/update.conf`: the machine's overrides (the config agent's).
    pub fn overrides_conf(&self) -> PathBuf {
        self.at(paths::UPDATE_CONF)
    }
    /// `/usr/share/update-engine/root.json`: the root keys baked into the image.
    pub fn root_keys(&self) -> PathBuf {
        self.at(paths::ROOT_KEYS)
    }
    /// `/etc/update-engine/root.json`: the machine's root keys, for an image built without
    /// them (written by its first-boot config).
    pub fn machine_root_keys(&self) -> PathBuf {
        self.at(paths::MACHINE_ROOT_KEYS)
    }
    /// `/var/lib/update-engine/state.json`.
    pub fn state(&self) -> PathBuf {
        self.at("var/lib/update-engine/state.json")
    }
    /// `/run/update-engine/status.json`.
    pub fn status(&self) -> PathBuf {
        self.at("run/update-engine/status.json")
    }
    /// `/run/update-engine/daemon.pid`: the running daemon ([`crate::request`]).
    pub fn daemon_pid(&self) -> PathBuf {
        self.at("run/update-engine/daemon.pid")
    }
    /// `/run/update-engine/check-now`: asks the daemon to check now ([`crate::request`]).
    pub fn check_request(&self) -> PathBuf {
        self.at("run/update-engine/check-now")
    }
    /// `/run/update-engine/reboot-needed`: tells the daemon a reboot is needed
    /// ([`crate::request`]).
    pub fn reboot_request(&self) -> PathBuf {
        self.at("run/update-engine/reboot-needed")
    }
    /// `/run/boot-slot`, written by the initramfs `/init`.
    pub fn boot_slot(&self) -> PathBuf {
        self.at(paths::BOOT_SLOT)
    }
    /// `/run/boot-live`, written by `/init` instead of `/run/boot-slot` when /usr runs from RAM
    /// (a network boot): such a machine has no slot to update.
    pub fn boot_live(&self) -> PathBuf {
        self.at(paths::BOOT_LIVE)
    }
    /// `/usr/lib/os-release`.
    pub fn os_release(&self) -> PathBuf {
        self.at(paths::OS_RELEASE)
    }
    /// `/etc/machine-id` (seeds the check jitter).
    pub fn machine_id(&self) -> PathBuf {
        self.at("etc/machine-id")
    }
    /// `/etc/<os_id>/health.d`: optional executable health checks.
    pub fn health_dir(&self, os_id: &str) -> PathBuf {
        self.at("etc").join(os_id).join("health.d")
    }
    /// `/proc`.
    pub fn proc(&self) -> PathBuf {
        self.at("proc")
    }
}

pub use contract::update_conf::RebootStrategy;

/// Something in the `update.conf` files the engine cannot use. The setting stays at its default
/// and, while any problem is there, the engine checks, downloads and reboots nothing; it still
/// marks the booted slot good, gives back its reboot lock if the lock's own settings are fine,
/// and says what is wrong in its status and on its console ([`crate::lifecycle`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigProblem {
    /// A value the engine cannot use ([`update_conf::check_value`]), in the file that set it.
    #[error("{file}: {bad}")]
    BadValue {
        /// The file (the last one that set the key).
        file: String,
        /// The key, its value and what it takes.
        bad: BadValue,
    },
    /// A line that is neither `KEY=VALUE`, a comment nor blank: it may have meant any key.
    #[error("{0}")]
    Syntax(SyntaxError),
    /// A file that exists but cannot be read: any of its keys may be missing.
    #[error("reading {file}: {reason}")]
    Unreadable {
        /// The file.
        file: String,
        /// The cause.
        reason: String,
    },
}

impl ConfigProblem {
    /// The key at fault; `None` when it may be any key (a malformed line, an unreadable file).
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigProblem::BadValue { bad, .. } => Some(&bad.key),
            ConfigProblem::Syntax(_) | ConfigProblem::Unreadable { .. } => None,
        }
    }

    /// Whether it may concern one of `keys`.
    pub fn concerns(&self, keys: &[&str]) -> bool {
        self.key().is_none_or(|k| keys.contains(&k))
    }
}

/// The keys the etcd reboot lock is reached with (its holder TTL is not needed to give it back).
pub const ETCD_LOCK_KEYS: [&str; 7] = [
    keys::LOCKSMITHD_ENDPOINT,
    keys::LOCKSMITHD_ETCD_CAFILE,
    keys::LOCKSMITHD_ETCD_CERTFILE,
    keys::LOCKSMITHD_ETCD_KEYFILE,
    keys::LOCKSMITHD_ETCD_USERNAME,
    keys::LOCKSMITHD_ETCD_PASSWORD,
    keys::LOCKSMITHD_GROUP,
];
/// The keys the FleetLock server is reached with.
pub const FLEETLOCK_KEYS: [&str; 2] = [keys::FLEETLOCK_URL, keys::FLEETLOCK_GROUP];

/// Why the configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Something in update.conf.
    #[error(transparent)]
    Problem(#[from] ConfigProblem),
    /// A file that exists but cannot be read.
    #[error("reading {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// root.json that is not canonical JSON root keys.
    #[error("{}: {reason}", path.display())]
    RootKeys {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Neither the image nor the machine has root keys: nothing can be verified.
    #[error("no root keys: neither {} (the image's) nor {} (the machine's) exists", image.display(), machine.display())]
    NoRootKeys { image: PathBuf, machine: PathBuf },
}

/// The engine's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `GROUP`: the channel.
    pub group: String,
    /// `SERVER`: the repository base URL (`None`: not configured, checks fail saying so).
    pub server: Option<String>,
    /// `REBOOT_STRATEGY`.
    pub reboot_strategy: RebootStrategy,
    /// `CHECK_INTERVAL` in seconds.
    pub check_interval_secs: u64,
    /// `HEALTH_TIMEOUT` in seconds.
    pub health_timeout_secs: u64,
    /// The reboot lock settings.
    pub reboot_lock: RebootLockConfig,
    /// What the files set that the engine cannot use (each such setting is at its default):
    /// while there is any, no check, download or reboot ([`ConfigProblem`]).
    pub problems: Vec<ConfigProblem>,
}

/// The reboot lock settings (module docs list the keys). Parsed and checked here; used by
/// [`crate::lock`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RebootLockConfig {
    /// `LOCKSMITHD_ENDPOINT`, `LOCKSMITHD_ETCD_CAFILE`, `…_CERTFILE`, `…_KEYFILE`,
    /// `…_USERNAME`, `…_PASSWORD`, `LOCKSMITHD_GROUP`.
    pub etcd: EtcdSettings,
    /// `ETCD_LOCK_TTL` in seconds.
    pub etcd_holder_ttl_secs: Option<u64>,
    /// `LOCKSMITHD_REBOOT_WINDOW_START` + `_LENGTH`.
    pub window: Option<RebootWindow>,
    /// `FLEETLOCK_URL`, without a trailing `/`.
    pub fleetlock_url: Option<String>,
    /// `FLEETLOCK_GROUP`.
    pub fleetlock_group: String,
}

impl Default for RebootLockConfig {
    fn default() -> RebootLockConfig {
        RebootLockConfig {
            etcd: EtcdSettings::default(),
            etcd_holder_ttl_secs: None,
            window: None,
            fleetlock_url: None,
            fleetlock_group: fleetlock::DEFAULT_GROUP.into(),
        }
    }
}

/// The values read so far that the engine cannot use.
#[derive(Default)]
struct Refused(Vec<BadValue>);

impl Refused {
    /// The value, or `None` with its problem noted.
    fn take<T>(&mut self, read: Result<T, BadValue>) -> Option<T> {
        read.map_err(|bad| self.0.push(bad)).ok()
    }
}

/// A key's (non-empty) value in the merged files.
type Get<'a> = dyn Fn(&str) -> Option<&'a str> + 'a;

impl RebootLockConfig {
    /// The engine's etcd client configuration: update.conf's settings, with the holder TTL.
    pub fn etcd_config(&self) -> EtcdConfig {
        EtcdConfig {
            holder_ttl_secs: self.etcd_holder_ttl_secs,
            ..EtcdConfig::resolve(&[&self.etcd])
        }
    }

    /// From the merged keys; a value it cannot use is noted in `refused` and left unset.
    fn from_keys<'a>(get: &Get<'a>, refused: &mut Refused) -> RebootLockConfig {
        let owned = |k: &str| get(k).map(str::to_owned);
        let mut c = RebootLockConfig {
            etcd: EtcdSettings {
                endpoints: get(keys::LOCKSMITHD_ENDPOINT)
                    .and_then(|v| refused.take(update_conf::etcd_endpoints(v)))
                    .unwrap_or_default(),
                ca_file: get(keys::LOCKSMITHD_ETCD_CAFILE).map(PathBuf::from),
                cert_file: get(keys::LOCKSMITHD_ETCD_CERTFILE).map(PathBuf::from),
                key_file: get(keys::LOCKSMITHD_ETCD_KEYFILE).map(PathBuf::from),
                username: owned(keys::LOCKSMITHD_ETCD_USERNAME),
                password: owned(keys::LOCKSMITHD_ETCD_PASSWORD),
                group: owned(keys::LOCKSMITHD_GROUP),
            },
            ..RebootLockConfig::default()
        };
        c.etcd_holder_ttl_secs = get(keys::ETCD_LOCK_TTL)
            .and_then(|v| refused.take(update_conf::seconds(keys::ETCD_LOCK_TTL, v)));
        let first = |names: [&'static str; 2]| names.into_iter().find_map(|k| Some((k, get(k)?)));
        let start = first([
            keys::LOCKSMITHD_REBOOT_WINDOW_START,
            keys::REBOOT_WINDOW_START,
        ]);
        let length = first([
            keys::LOCKSMITHD_REBOOT_WINDOW_LENGTH,
            keys::REBOOT_WINDOW_LENGTH,
        ]);
        c.window = refused
            .take(update_conf::reboot_window(start, length))
            .flatten();
        c.fleetlock_url = get(keys::FLEETLOCK_URL)
            .and_then(|v| refused.take(update_conf::base_url(keys::FLEETLOCK_URL, v)));
        if let Some(group) = get(keys::FLEETLOCK_GROUP) {
            if refused.take(update_conf::fleetlock_group(group)).is_some() {
                c.fleetlock_group = group.to_owned();
            }
        }
        c
    }
}

impl Default for Config {
    fn default() -> Config {
        Config {
            group: DEFAULT_GROUP.into(),
            server: None,
            reboot_strategy: RebootStrategy::Reboot,
            check_interval_secs: DEFAULT_CHECK_INTERVAL_SECS,
            health_timeout_secs: DEFAULT_HEALTH_TIMEOUT_SECS,
            reboot_lock: RebootLockConfig::default(),
            problems: Vec::new(),
        }
    }
}

/// Parses `update.conf` text into its keys (later lines win). `file` names it in errors. Pure.
pub fn parse_conf(file: &str, text: &str) -> Result<BTreeMap<String, String>, ConfigError> {
    update_conf::parse(file, text).map_err(|e| ConfigProblem::Syntax(e).into())
}

/// One file's keys and where they came from (its path, or a name in tests).
pub type Layer<'a> = (&'a str, &'a BTreeMap<String, String>);

impl Config {
    /// The configuration from `defaults` overridden key by key by `overrides`, or its first
    /// problem. Pure.
    pub fn from_layers(
        defaults: &BTreeMap<String, String>,
        overrides: &BTreeMap<String, String>,
    ) -> Result<Config, ConfigError> {
        Config::merged(&[("defaults", defaults), ("overrides", overrides)]).usable()
    }

    /// The configuration from `layers`, each overriding the ones before key by key. A value the
    /// engine cannot use leaves its setting at the default and is one of [`Config::problems`],
    /// naming the file that set it. Pure.
    pub fn merged(layers: &[Layer]) -> Config {
        let mut merged: BTreeMap<&str, (&str, &str)> = BTreeMap::new();
        for (file, keys) in layers {
            for (k, v) in keys.iter() {
                merged.insert(k, (v, file));
            }
        }
        let get = |k: &str| merged.get(k).map(|(v, _)| *v).filter(|v| !v.is_empty());
        let mut refused = Refused::default();
        let mut config = Config::from_keys(&get, &mut refused);
        config.problems = refused
            .0
            .into_iter()
            .map(|bad| ConfigProblem::BadValue {
                file: merged
                    .get(bad.key.as_str())
                    .map_or("", |(_, f)| f)
                    .to_owned(),
                bad,
            })
            .collect();
        config
    }

    fn from_keys<'a>(get: &Get<'a>, refused: &mut Refused) -> Config {
        let mut config = Config::default();
        if let Some(group) = get(keys::GROUP) {
            if refused.take(update_conf::group(group)).is_some() {
                config.group = group.into();
            }
        }
        config.server =
            get(keys::SERVER).and_then(|v| refused.take(update_conf::base_url(keys::SERVER, v)));
        if let Some(s) = get(keys::REBOOT_STRATEGY) {
            if let Some(s) = refused.take(update_conf::reboot_strategy(s)) {
                config.reboot_strategy = s;
            }
        }
        let mut seconds = |key: &str, default: u64| {
            get(key)
                .and_then(|v| refused.take(update_conf::seconds(key, v)))
                .unwrap_or(default)
        };
        config.check_interval_secs = seconds(keys::CHECK_INTERVAL, DEFAULT_CHECK_INTERVAL_SECS);
        config.health_timeout_secs = seconds(keys::HEALTH_TIMEOUT, DEFAULT_HEALTH_TIMEOUT_SECS);
        config.reboot_lock = RebootLockConfig::from_keys(get, refused);
        config
    }

    /// `self` if the engine can use every value, else the first problem.
    pub fn usable(mut self) -> Result<Config, ConfigError> {
        if self.problems.is_empty() {
            Ok(self)
        } else {
            Err(self.problems.swap_remove(0).into())
        }
    }

    /// Every problem, `; `-separated (`None`: there is none).
    pub fn problems_text(&self) -> Option<String> {
        (!self.problems.is_empty()).then(|| {
            self.problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        })
    }

    /// The first problem that may concern the settings the lock of `kind` is reached with
    /// ([`ETCD_LOCK_KEYS`], [`FLEETLOCK_KEYS`]): with one, the engine might talk to another
    /// lock than the one it holds, so it talks to none.
    pub fn lock_problem(&self, kind: LockKind) -> Option<&ConfigProblem> {
        let keys: &[&str] = match kind {
            LockKind::Etcd => &ETCD_LOCK_KEYS,
            LockKind::FleetLock => &FLEETLOCK_KEYS,
        };
        self.problems.iter().find(|p| p.concerns(keys))
    }

    /// Whether `key`'s value is one the engine could not use (its setting is the default).
    pub fn refused(&self, key: &str) -> bool {
        self.problems.iter().any(|p| p.key() == Some(key))
    }

    /// Reads the three files under `paths`, in order (module docs; a missing file counts as
    /// empty). Never fails: what it cannot use is in [`Config::problems`].
    pub fn load(paths: &Paths) -> Config {
        let files = [
            paths.defaults_conf(),
            paths.coreos_conf(),
            paths.overrides_conf(),
        ];
        let mut problems = Vec::new();
        let read: Vec<(String, BTreeMap<String, String>)> = files
            .iter()
            .map(|path| {
                let file = path.display().to_string();
                let keys = read_conf(path, &file, &mut problems);
                (file, keys)
            })
            .collect();
        let layers: Vec<Layer> = read.iter().map(|(f, k)| (f.as_str(), k)).collect();
        let mut config = Config::merged(&layers);
        problems.append(&mut config.problems);
        config.problems = problems;
        config
    }
}

/// The keys of one file; what cannot be read of it goes to `problems`.
fn read_conf(
    path: &Path,
    file: &str,
    problems: &mut Vec<ConfigProblem>,
) -> BTreeMap<String, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let (keys, errors) = update_conf::parse_lenient(file, &text);
            problems.extend(errors.into_iter().map(ConfigProblem::Syntax));
            keys
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => BTreeMap::new(),
        Err(e) => {
            problems.push(ConfigProblem::Unreadable {
                file: file.to_owned(),
                reason: e.to_string(),
            });
            BTreeMap::new()
        }
    }
}

/// Reads the root keys: the image's, else the machine's ([`Paths::machine_root_keys`]);
/// [`ConfigError::NoRootKeys`] when neither file exists.
pub fn load_root_keys(paths: &Paths) -> Result<RootKeys, ConfigError> {
    let image = paths.root_keys();
    let path = if image.exists() {
        image
    } else {
        let machine = paths.machine_root_keys();
        if !machine.exists() {
            return Err(ConfigError::NoRootKeys { image, machine });
        }
        machine
    };
    let bytes = std::fs::read(&path).map_err(|source| ConfigError::Io {
        path: path.clone(),
        source,
    })?;
    channels::canonical::from_slice(&bytes).map_err(|e| ConfigError::RootKeys {
        path,
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Case {
        name: &'static str,
        defaults: &'static str,
        overrides: &'static str,
        want: Result<(&'static str, Option<&'static str>, RebootStrategy), &'static str>,
    }

    #[test]
    fn table() {
        use RebootStrategy::*;
        let cases = [
            Case { name: "empty", defaults: "", overrides: "", want: Ok(("stable", None, Reboot)) },
            Case { name: "plain", defaults: "GROUP=alpha\nSERVER=http://10.0.2.2:8080/\nREBOOT_STRATEGY=off\n", overrides: "", want: Ok(("alpha", Some("http://10.0.2.2:8080"), Off)) },
            Case { name: "quotes comments blanks", defaults: "# image defaults\n\n  GROUP = \"beta\"\nSERVER='http://x/repo'\n", overrides: "", want: Ok(("beta", Some("http://x/repo"), Reboot)) },
            Case { name: "override key by key", defaults: "GROUP=alpha\nSERVER=http://a\nREBOOT_STRATEGY=reboot\n", overrides: "GROUP=beta\n", want: Ok(("beta", Some("http://a"), Reboot)) },
            Case { name: "later line wins", defaults: "GROUP=alpha\nGROUP=beta\n", overrides: "", want: Ok(("beta", None, Reboot)) },
            Case { name: "locking strategies parse", defaults: "REBOOT_STRATEGY=etcd-lock\n", overrides: "REBOOT_STRATEGY=fleetlock", want: Ok(("stable", None, FleetLock)) },
            Case { name: "best-effort", defaults: "REBOOT_STRATEGY=best-effort\n", overrides: "", want: Ok(("stable", None, BestEffort)) },
            Case { name: "unknown keys ignored", defaults: "LOCKSMITHD_ENDPOINT=http://e:2379\n", overrides: "", want: Ok(("stable", None, Reboot)) },
            Case { name: "bad strategy", defaults: "REBOOT_STRATEGY=sometimes\n", overrides: "", want: Err("d: REBOOT_STRATEGY=\"sometimes\": expected off, reboot, etcd-lock, best-effort or fleetlock") },
            Case { name: "no equals", defaults: "GROUP alpha\n", overrides: "", want: Err("d:1: expected KEY=VALUE, got \"GROUP alpha\"") },
            Case { name: "bad group", defaults: "GROUP=../x\n", overrides: "", want: Err("d: GROUP=\"../x\"") },
            Case { name: "bad override names its file", defaults: "", overrides: "SERVER=updates.example\n", want: Err("o: SERVER=\"updates.example\": expected an http:// or https:// URL") },
        ];
        for case in cases {
            let got = parse_conf("d", case.defaults)
                .and_then(|d| Ok((d, parse_conf("o", case.overrides)?)))
                .and_then(|(d, o)| Config::merged(&[("d", &d), ("o", &o)]).usable());
            match (got, case.want) {
                (Ok(c), Ok((group, server, strategy))) => {
                    assert_eq!(c.group, group, "{}", case.name);
                    assert_eq!(c.server.as_deref(), server, "{}", case.name);
                    assert_eq!(c.reboot_strategy, strategy, "{}", case.name);
                }
                (Err(e), Err(want)) => {
                    assert!(e.to_string().starts_with(want), "{}: {e}", case.name)
                }
                (got, want) => panic!("{}: got {got:?}, want {want:?}", case.name),
            }
        }
    }

    #[test]
    fn intervals() {
        let d = parse_conf("d", "CHECK_INTERVAL=600\nHEALTH_TIMEOUT=30\n").unwrap();
        let c = Config::from_layers(&d, &BTreeMap::new()).unwrap();
        assert_eq!((c.check_interval_secs, c.health_timeout_secs), (600, 30));
        let d = parse_conf("d", "CHECK_INTERVAL=0\n").unwrap();
        assert!(Config::from_layers(&d, &BTreeMap::new()).is_err());
    }

    #[test]
    fn reboot_lock_keys() {
        let conf = |text: &str| {
            Config::merged(&[("d", &parse_conf("d", text).unwrap())])
                .usable()
                .map(|c| c.reboot_lock)
        };
        assert_eq!(conf("").unwrap(), RebootLockConfig::default());
        let c = conf(
            "LOCKSMITHD_ENDPOINT=\"http://a:2379, http://b:2379,\"\n\
             LOCKSMITHD_ETCD_CAFILE=/etc/ssl/etcd/ca.pem\n\
             LOCKSMITHD_ETCD_CERTFILE=/etc/ssl/etcd/c.pem\n\
             LOCKSMITHD_ETCD_KEYFILE=/etc/ssl/etcd/k.pem\n\
             LOCKSMITHD_ETCD_USERNAME=root\nLOCKSMITHD_ETCD_PASSWORD=pw\n\
             LOCKSMITHD_GROUP=lb\nETCD_LOCK_TTL=900\n\
             LOCKSMITHD_REBOOT_WINDOW_START=\"Thu 23:00\"\nLOCKSMITHD_REBOOT_WINDOW_LENGTH=1h30m\n\
             FLEETLOCK_URL=http://fleet:3333/\nFLEETLOCK_GROUP=workers\n",
        )
        .unwrap();
        assert_eq!(c.etcd.endpoints, ["http://a:2379", "http://b:2379"]);
        assert_eq!(c.etcd.ca_file, Some(PathBuf::from("/etc/ssl/etcd/ca.pem")));
        assert_eq!(c.etcd.cert_file, Some(PathBuf::from("/etc/ssl/etcd/c.pem")));
        assert_eq!(c.etcd.key_file, Some(PathBuf::from("/etc/ssl/etcd/k.pem")));
        assert_eq!(
            (c.etcd.username.as_deref(), c.etcd.password.as_deref()),
            (Some("root"), Some("pw"))
        );
        assert_eq!(
            (c.etcd.group.as_deref(), c.etcd_holder_ttl_secs),
            (Some("lb"), Some(900))
        );
        assert_eq!(
            c.window,
            Some(RebootWindow::parse("Thu 23:00", "1h30m").unwrap())
        );
        assert_eq!(c.fleetlock_url.as_deref(), Some("http://fleet:3333"));
        assert_eq!(c.fleetlock_group, "workers");
        // locksmith's short names for the window.
        let c = conf("REBOOT_WINDOW_START=14:00\nREBOOT_WINDOW_LENGTH=1h\n").unwrap();
        assert_eq!(c.window, Some(RebootWindow::parse("14:00", "1h").unwrap()));
        for (text, want) in [
            ("LOCKSMITHD_REBOOT_WINDOW_START=14:00\n", "d: LOCKSMITHD_REBOOT_WINDOW_START=\"14:00\": expected LOCKSMITHD_REBOOT_WINDOW_LENGTH set too"),
            ("REBOOT_WINDOW_LENGTH=1h\n", "d: REBOOT_WINDOW_LENGTH=\"1h\": expected LOCKSMITHD_REBOOT_WINDOW_START set too"),
            ("LOCKSMITHD_REBOOT_WINDOW_START=Thursday 23:00\nLOCKSMITHD_REBOOT_WINDOW_LENGTH=1h\n", "d: LOCKSMITHD_REBOOT_WINDOW_START=\"Thursday 23:00\": expected HH:MM or Day HH:MM"),
            ("LOCKSMITHD_REBOOT_WINDOW_START=23:00\nLOCKSMITHD_REBOOT_WINDOW_LENGTH=1x\n", "d: LOCKSMITHD_REBOOT_WINDOW_LENGTH=\"1x\": expected a duration like 1h30m (unknown unit"),
            ("LOCKSMITHD_REBOOT_WINDOW_START=23:00\nLOCKSMITHD_REBOOT_WINDOW_LENGTH=-1h\n", "d: LOCKSMITHD_REBOOT_WINDOW_LENGTH=\"-1h\": expected a duration like 1h30m (must not be negative)"),
            ("ETCD_LOCK_TTL=-5\n", "d: ETCD_LOCK_TTL=\"-5\": expected a positive number of seconds"),
            ("LOCKSMITHD_ENDPOINT=http://a:2379,ftp://b\n", "d: LOCKSMITHD_ENDPOINT=\"http://a:2379,ftp://b\": expected etcd client URLs"),
            ("FLEETLOCK_URL=fleet:3333\n", "d: FLEETLOCK_URL=\"fleet:3333\": expected an http:// or https:// URL"),
            ("FLEETLOCK_GROUP=a_b\n", "d: FLEETLOCK_GROUP=\"a_b\""),
        ] {
            let e = conf(text).unwrap_err().to_string();
            assert!(e.starts_with(want), "{text:?}: {e}");
        }
    }

    #[test]
    fn coreos_update_conf_sits_between_the_image_and_the_agent() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::new(dir.path());
        let write = |path: PathBuf, text: &str| {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        assert_eq!(
            paths.coreos_conf(),
            dir.path().join("etc/coreos/update.conf")
        );
        write(
            paths.defaults_conf(),
            "GROUP=stable\nSERVER=http://image\nREBOOT_STRATEGY=reboot\n",
        );
        // A Container Linux user's file (or a cloud-config's write_files), as they wrote it.
        write(
            paths.coreos_conf(),
            "GROUP=beta\nREBOOT_STRATEGY=etcd-lock\nLOCKSMITHD_ENDPOINT=http://etcd:2379\n\
             LOCKSMITHD_GROUP=lb\nPXE=true\n",
        );
        let c = Config::load(&paths).usable().unwrap();
        assert_eq!(c.group, "beta");
        assert_eq!(c.server.as_deref(), Some("http://image"));
        assert_eq!(c.reboot_strategy, RebootStrategy::EtcdLock);
        assert_eq!(c.reboot_lock.etcd.endpoints, ["http://etcd:2379"]);
        assert_eq!(c.reboot_lock.etcd.group.as_deref(), Some("lb"));
        // The agent's file (cloud-config coreos.update) wins key by key.
        write(paths.overrides_conf(), "REBOOT_STRATEGY=off\n");
        let c = Config::load(&paths).usable().unwrap();
        assert_eq!(
            (c.group.as_str(), c.reboot_strategy),
            ("beta", RebootStrategy::Off)
        );
        // Its errors name it.
        write(paths.coreos_conf(), "GROUP beta\n");
        let e = Config::load(&paths).usable().unwrap_err().to_string();
        assert!(e.contains("etc/coreos/update.conf:1:"), "{e}");
    }

    #[test]
    fn load_from_files() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::new(dir.path());
        assert_eq!(Config::load(&paths), Config::default());
        std::fs::create_dir_all(paths.defaults_conf().parent().unwrap()).unwrap();
        std::fs::create_dir_all(paths.overrides_conf().parent().unwrap()).unwrap();
        std::fs::write(paths.defaults_conf(), "GROUP=alpha\nSERVER=http://s\n").unwrap();
        std::fs::write(paths.overrides_conf(), "REBOOT_STRATEGY=off\n").unwrap();
        let c = Config::load(&paths).usable().unwrap();
        assert_eq!(c.group, "alpha");
        assert_eq!(c.reboot_strategy, RebootStrategy::Off);
        let e = load_root_keys(&paths).unwrap_err();
        assert!(matches!(e, ConfigError::NoRootKeys { .. }), "{e}");
        assert!(e.to_string().contains("etc/update-engine/root.json"), "{e}");
        // The machine's keys serve when the image has none; the image's win.
        let key = |seed: u8| channels::SecretKey::from_seed(&[seed; 32]).public();
        let root = |seed: u8| channels::RootKeys {
            keys: vec![key(seed)],
        };
        let write = |path: PathBuf, seed: u8| {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, channels::canonical::to_vec(&root(seed)).unwrap()).unwrap();
        };
        write(paths.machine_root_keys(), 1);
        assert_eq!(load_root_keys(&paths).unwrap(), root(1));
        write(paths.root_keys(), 2);
        assert_eq!(load_root_keys(&paths).unwrap(), root(2));
        std::fs::write(paths.root_keys(), "{").unwrap();
        assert!(matches!(
            load_root_keys(&paths),
            Err(ConfigError::RootKeys { .. })
        ));
    }

    fn write_file(path: PathBuf, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn a_value_the_engine_cannot_use_is_a_problem_not_a_failure() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::new(dir.path());
        write_file(
            paths.defaults_conf(),
            "GROUP=alpha\nSERVER=http://image\nREBOOT_STRATEGY=etcd-lock\nCHECK_INTERVAL=600\n",
        );
        write_file(
            paths.coreos_conf(),
            "LOCKSMITHD_REBOOT_WINDOW_START=Blursday 25:61\nLOCKSMITHD_REBOOT_WINDOW_LENGTH=1h\n",
        );
        write_file(paths.overrides_conf(), "HEALTH_TIMEOUT=-1\nGROUP=beta\n");
        let c = Config::load(&paths);
        // The usable values are read; the others keep their defaults.
        assert_eq!((c.group.as_str(), c.check_interval_secs), ("beta", 600));
        assert_eq!(c.reboot_strategy, RebootStrategy::EtcdLock);
        assert_eq!(c.health_timeout_secs, DEFAULT_HEALTH_TIMEOUT_SECS);
        assert_eq!(c.reboot_lock.window, None);
        // Each problem names its file, its key and its value.
        let text: Vec<String> = c.problems.iter().map(ToString::to_string).collect();
        let coreos = paths.coreos_conf().display().to_string();
        let overrides = paths.overrides_conf().display().to_string();
        assert_eq!(text.len(), 2, "{text:?}");
        assert!(
            text[0].starts_with(&format!(
                "{overrides}: HEALTH_TIMEOUT=\"-1\": expected a positive number"
            )),
            "{text:?}"
        );
        assert!(
            text[1].starts_with(&format!("{coreos}: LOCKSMITHD_REBOOT_WINDOW_START=\"Blursday 25:61\": expected HH:MM or Day HH:MM")),
            "{text:?}"
        );
        assert_eq!(c.problems[1].key(), Some("LOCKSMITHD_REBOOT_WINDOW_START"));
        assert!(c.problems_text().unwrap().contains("; "));
        assert!(c.refused(keys::HEALTH_TIMEOUT) && !c.refused(keys::GROUP));
        // A window is neither lock's settings: both locks can still be given back.
        assert_eq!(c.lock_problem(LockKind::Etcd), None);
        assert_eq!(c.lock_problem(LockKind::FleetLock), None);
        assert!(Config::load(&paths).usable().is_err());
    }

    #[test]
    fn malformed_lines_and_unreadable_files_are_problems_too() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::new(dir.path());
        write_file(
            paths.coreos_conf(),
            "GROUP=beta\nLOCKSMITHD_ENDPOINT http://etcd:2379\nREBOOT_STRATEGY=off\n",
        );
        // A directory where the agent's file should be: it cannot be read.
        std::fs::create_dir_all(paths.overrides_conf()).unwrap();
        let c = Config::load(&paths);
        assert_eq!(
            (c.group.as_str(), c.reboot_strategy),
            ("beta", RebootStrategy::Off)
        );
        assert_eq!(c.problems.len(), 2, "{:?}", c.problems);
        assert!(matches!(&c.problems[0], ConfigProblem::Syntax(e) if e.line == 2));
        assert!(
            c.problems[1]
                .to_string()
                .starts_with(&format!("reading {}: ", paths.overrides_conf().display())),
            "{}",
            c.problems[1]
        );
        // Either may have meant a lock's settings: no lock is talked to.
        assert!(c.lock_problem(LockKind::Etcd).is_some());
        assert!(c.lock_problem(LockKind::FleetLock).is_some());
    }

    #[test]
    fn lock_problems_are_the_problems_of_that_locks_keys() {
        let conf = |text: &str| Config::merged(&[("f", &parse_conf("f", text).unwrap())]);
        let c = conf("FLEETLOCK_URL=fleet:3333\nETCD_LOCK_TTL=0\n");
        assert_eq!(
            c.lock_problem(LockKind::Etcd),
            None,
            "the TTL is not needed to unlock"
        );
        let p = c.lock_problem(LockKind::FleetLock).unwrap();
        assert_eq!(p.key(), Some(keys::FLEETLOCK_URL));
        assert_eq!(c.reboot_lock.fleetlock_url, None);
        let c = conf("LOCKSMITHD_ENDPOINT=ftp://etcd\nFLEETLOCK_GROUP=a_b\n");
        assert_eq!(
            c.lock_problem(LockKind::Etcd).and_then(ConfigProblem::key),
            Some(keys::LOCKSMITHD_ENDPOINT)
        );
        assert!(c.reboot_lock.etcd.endpoints.is_empty());
        assert_eq!(
            c.lock_problem(LockKind::FleetLock)
                .and_then(ConfigProblem::key),
            Some(keys::FLEETLOCK_GROUP)
        );
        assert_eq!(c.reboot_lock.fleetlock_group, fleetlock::DEFAULT_GROUP);
    }
}
