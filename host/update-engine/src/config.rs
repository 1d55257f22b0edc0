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

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use channels::RootKeys;
use contract::paths;
pub use contract::update_conf::split_list;
use contract::update_conf::{self, keys};

use crate::lock::etcd::{EtcdConfig, EtcdSettings};
use crate::lock::fleetlock;
use crate::lock::window::{RebootWindow, WindowError};

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

/// Why the configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A line that is neither `KEY=VALUE`, a comment nor blank.
    #[error("{file}:{line}: expected KEY=VALUE, got {text:?}")]
    Syntax {
        /// The file (or `<input>`).
        file: String,
        /// 1-based line number.
        line: usize,
        /// The line.
        text: String,
    },
    /// A value of the wrong form.
    #[error("{key}={value:?}: expected {expected}")]
    BadValue {
        /// The key.
        key: String,
        /// Its value.
        value: String,
        /// What was expected.
        expected: String,
    },
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

impl RebootLockConfig {
    /// The engine's etcd client configuration: update.conf's settings, with the holder TTL.
    pub fn etcd_config(&self) -> EtcdConfig {
        EtcdConfig {
            holder_ttl_secs: self.etcd_holder_ttl_secs,
            ..EtcdConfig::resolve(&[&self.etcd])
        }
    }

    /// From the merged keys (`get` returns non-empty values only).
    fn from_keys(get: &dyn Fn(&str) -> Option<String>) -> Result<RebootLockConfig, ConfigError> {
        let bad = |key: &str, value: &str, expected: &str| ConfigError::BadValue {
            key: key.into(),
            value: value.into(),
            expected: expected.into(),
        };
        let mut c = RebootLockConfig {
            etcd: EtcdSettings {
                endpoints: get(keys::LOCKSMITHD_ENDPOINT)
                    .map(|v| split_list(&v))
                    .unwrap_or_default(),
                ca_file: get(keys::LOCKSMITHD_ETCD_CAFILE).map(PathBuf::from),
                cert_file: get(keys::LOCKSMITHD_ETCD_CERTFILE).map(PathBuf::from),
                key_file: get(keys::LOCKSMITHD_ETCD_KEYFILE).map(PathBuf::from),
                username: get(keys::LOCKSMITHD_ETCD_USERNAME),
                password: get(keys::LOCKSMITHD_ETCD_PASSWORD),
                group: get(keys::LOCKSMITHD_GROUP),
            },
            ..RebootLockConfig::default()
        };
        if let Some(v) = get(keys::ETCD_LOCK_TTL) {
            c.etcd_holder_ttl_secs = Some(seconds(keys::ETCD_LOCK_TTL, &v)?);
        }
        let start = [
            keys::LOCKSMITHD_REBOOT_WINDOW_START,
            keys::REBOOT_WINDOW_START,
        ]
        .into_iter()
        .find_map(|k| Some((k, get(k)?)));
        let length = [
            keys::LOCKSMITHD_REBOOT_WINDOW_LENGTH,
            keys::REBOOT_WINDOW_LENGTH,
        ]
        .into_iter()
        .find_map(|k| Some((k, get(k)?)));
        c.window = match (start, length) {
            (None, None) => None,
            (Some((k, v)), None) => {
                return Err(bad(k, &v, "LOCKSMITHD_REBOOT_WINDOW_LENGTH set too"))
            }
            (None, Some((k, v))) => {
                return Err(bad(k, &v, "LOCKSMITHD_REBOOT_WINDOW_START set too"))
            }
            (Some((sk, sv)), Some((lk, lv))) => {
                Some(RebootWindow::parse(&sv, &lv).map_err(|e| match e {
                    WindowError::Start { reason, .. } => bad(
                        sk,
                        &sv,
                        &format!("HH:MM or Day HH:MM, e.g. \"Thu 23:00\" ({reason})"),
                    ),
                    WindowError::Length { reason, .. } => {
                        bad(lk, &lv, &format!("a duration like 1h30m ({reason})"))
                    }
                })?)
            }
        };
        if let Some(url) = get(keys::FLEETLOCK_URL) {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(bad(keys::FLEETLOCK_URL, &url, "an http:// or https:// URL"));
            }
            c.fleetlock_url = Some(url.trim_end_matches('/').to_owned());
        }
        if let Some(group) = get(keys::FLEETLOCK_GROUP) {
            if !fleetlock::valid_group(&group) {
                return Err(bad(
                    keys::FLEETLOCK_GROUP,
                    &group,
                    "letters, digits, '.' and '-'",
                ));
            }
            c.fleetlock_group = group;
        }
        Ok(c)
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
        }
    }
}

/// Parses `update.conf` text into its keys (later lines win). `file` names it in errors. Pure.
pub fn parse_conf(file: &str, text: &str) -> Result<BTreeMap<String, String>, ConfigError> {
    update_conf::parse(file, text).map_err(|e| ConfigError::Syntax {
        file: e.file,
        line: e.line,
        text: e.text,
    })
}

impl Config {
    /// The configuration from `defaults` overridden key by key by `overrides`. Pure.
    pub fn from_layers(
        defaults: &BTreeMap<String, String>,
        overrides: &BTreeMap<String, String>,
    ) -> Result<Config, ConfigError> {
        Config::merged(&[defaults, overrides])
    }

    /// The configuration from `layers`, each overriding the ones before key by key. Pure.
    pub fn merged(layers: &[&BTreeMap<String, String>]) -> Result<Config, ConfigError> {
        let mut merged = BTreeMap::new();
        for layer in layers {
            merged.extend(layer.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        Config::from_keys(&merged)
    }

    fn from_keys(keys: &BTreeMap<String, String>) -> Result<Config, ConfigError> {
        let mut config = Config::default();
        let get = |k: &str| keys.get(k).map(String::as_str).filter(|v| !v.is_empty());
        if let Some(group) = get(keys::GROUP) {
            channels::validate_channel_name(group).map_err(|reason| ConfigError::BadValue {
                key: keys::GROUP.into(),
                value: group.into(),
                expected: reason,
            })?;
            config.group = group.into();
        }
        config.server = get(keys::SERVER).map(|s| s.trim_end_matches('/').to_owned());
        if let Some(s) = get(keys::REBOOT_STRATEGY) {
            config.reboot_strategy = s.parse().map_err(|_| ConfigError::BadValue {
                key: keys::REBOOT_STRATEGY.into(),
                value: s.into(),
                expected: "off, reboot, etcd-lock, best-effort or fleetlock".into(),
            })?;
        }
        if let Some(v) = get(keys::CHECK_INTERVAL) {
            config.check_interval_secs = seconds(keys::CHECK_INTERVAL, v)?;
        }
        if let Some(v) = get(keys::HEALTH_TIMEOUT) {
            config.health_timeout_secs = seconds(keys::HEALTH_TIMEOUT, v)?;
        }
        config.reboot_lock = RebootLockConfig::from_keys(&|k| get(k).map(str::to_owned))?;
        Ok(config)
    }

    /// Reads the three files under `paths`, in order (module docs; a missing file counts as
    /// empty).
    pub fn load(paths: &Paths) -> Result<Config, ConfigError> {
        let defaults = read_conf(&paths.defaults_conf())?;
        let coreos = read_conf(&paths.coreos_conf())?;
        let overrides = read_conf(&paths.overrides_conf())?;
        Config::merged(&[&defaults, &coreos, &overrides])
    }
}

fn seconds(key: &str, v: &str) -> Result<u64, ConfigError> {
    v.parse::<u64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| ConfigError::BadValue {
            key: key.into(),
            value: v.into(),
            expected: "a positive number of seconds".into(),
        })
}

fn read_conf(path: &Path) -> Result<BTreeMap<String, String>, ConfigError> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse_conf(&path.display().to_string(), &text),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(source) => Err(ConfigError::Io {
            path: path.to_owned(),
            source,
        }),
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
            Case { name: "bad strategy", defaults: "REBOOT_STRATEGY=sometimes\n", overrides: "", want: Err("REBOOT_STRATEGY=\"sometimes\": expected off, reboot, etcd-lock, best-effort or fleetlock") },
            Case { name: "no equals", defaults: "GROUP alpha\n", overrides: "", want: Err("d:1: expected KEY=VALUE, got \"GROUP alpha\"") },
            Case { name: "bad group", defaults: "GROUP=../x\n", overrides: "", want: Err("GROUP") },
        ];
        for case in cases {
            let got = parse_conf("d", case.defaults)
                .and_then(|d| Ok((d, parse_conf("o", case.overrides)?)))
                .and_then(|(d, o)| Config::from_layers(&d, &o));
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
            Config::from_layers(&parse_conf("d", text).unwrap(), &BTreeMap::new())
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
            ("LOCKSMITHD_REBOOT_WINDOW_START=14:00\n", "LOCKSMITHD_REBOOT_WINDOW_START=\"14:00\": expected LOCKSMITHD_REBOOT_WINDOW_LENGTH set too"),
            ("REBOOT_WINDOW_LENGTH=1h\n", "REBOOT_WINDOW_LENGTH=\"1h\": expected LOCKSMITHD_REBOOT_WINDOW_START set too"),
            ("LOCKSMITHD_REBOOT_WINDOW_START=Thursday 23:00\nLOCKSMITHD_REBOOT_WINDOW_LENGTH=1h\n", "LOCKSMITHD_REBOOT_WINDOW_START=\"Thursday 23:00\": expected HH:MM or Day HH:MM"),
            ("LOCKSMITHD_REBOOT_WINDOW_START=23:00\nLOCKSMITHD_REBOOT_WINDOW_LENGTH=1x\n", "LOCKSMITHD_REBOOT_WINDOW_LENGTH=\"1x\": expected a duration like 1h30m (unknown unit"),
            ("ETCD_LOCK_TTL=-5\n", "ETCD_LOCK_TTL=\"-5\": expected a positive number of seconds"),
            ("FLEETLOCK_URL=fleet:3333\n", "FLEETLOCK_URL=\"fleet:3333\": expected an http:// or https:// URL"),
            ("FLEETLOCK_GROUP=a_b\n", "FLEETLOCK_GROUP=\"a_b\""),
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
        let c = Config::load(&paths).unwrap();
        assert_eq!(c.group, "beta");
        assert_eq!(c.server.as_deref(), Some("http://image"));
        assert_eq!(c.reboot_strategy, RebootStrategy::EtcdLock);
        assert_eq!(c.reboot_lock.etcd.endpoints, ["http://etcd:2379"]);
        assert_eq!(c.reboot_lock.etcd.group.as_deref(), Some("lb"));
        // The agent's file (cloud-config coreos.update) wins key by key.
        write(paths.overrides_conf(), "REBOOT_STRATEGY=off\n");
        let c = Config::load(&paths).unwrap();
        assert_eq!(
            (c.group.as_str(), c.reboot_strategy),
            ("beta", RebootStrategy::Off)
        );
        // Its errors name it.
        write(paths.coreos_conf(), "GROUP beta\n");
        let e = Config::load(&paths).unwrap_err().to_string();
        assert!(e.contains("etc/coreos/update.conf:1:"), "{e}");
    }

    #[test]
    fn load_from_files() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::new(dir.path());
        assert_eq!(Config::load(&paths).unwrap(), Config::default());
        std::fs::create_dir_all(paths.defaults_conf().parent().unwrap()).unwrap();
        std::fs::create_dir_all(paths.overrides_conf().parent().unwrap()).unwrap();
        std::fs::write(paths.defaults_conf(), "GROUP=alpha\nSERVER=http://s\n").unwrap();
        std::fs::write(paths.overrides_conf(), "REBOOT_STRATEGY=off\n").unwrap();
        let c = Config::load(&paths).unwrap();
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
}
