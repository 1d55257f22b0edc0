//! `update.conf`, Container Linux's update configuration: `KEY=VALUE` lines, `#` comments,
//! optional quotes. The image carries defaults in `/usr/share/update-engine/update.conf` (the
//! builder renders them from the spec's `update:`), Container Linux users and their
//! cloud-configs' `write_files` put a machine's settings in `/etc/coreos/update.conf`, the
//! config agent writes its overrides to `/etc/update-engine/update.conf` (from cloud-config
//! `coreos.update` and `coreos.locksmith`), and the update engine reads the three in that
//! order, key by key, a later file's key winning (as Container Linux merged `coreos.update`
//! over the file). The keys, their syntax
//! and the reboot strategies are defined here once; what each value means is the engine's
//! business (`update_engine::config`).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// The keys (Container Linux's names where it had the setting; ours are marked).
pub mod keys {
    /// The channel.
    pub const GROUP: &str = "GROUP";
    /// The repository base URL.
    pub const SERVER: &str = "SERVER";
    /// [`super::RebootStrategy`].
    pub const REBOOT_STRATEGY: &str = "REBOOT_STRATEGY";
    /// Ours: seconds between two checks.
    pub const CHECK_INTERVAL: &str = "CHECK_INTERVAL";
    /// Ours: seconds a new slot may take to pass its health check.
    pub const HEALTH_TIMEOUT: &str = "HEALTH_TIMEOUT";
    /// etcd client URLs, comma-separated.
    pub const LOCKSMITHD_ENDPOINT: &str = "LOCKSMITHD_ENDPOINT";
    pub const LOCKSMITHD_ETCD_CAFILE: &str = "LOCKSMITHD_ETCD_CAFILE";
    pub const LOCKSMITHD_ETCD_CERTFILE: &str = "LOCKSMITHD_ETCD_CERTFILE";
    pub const LOCKSMITHD_ETCD_KEYFILE: &str = "LOCKSMITHD_ETCD_KEYFILE";
    pub const LOCKSMITHD_ETCD_USERNAME: &str = "LOCKSMITHD_ETCD_USERNAME";
    pub const LOCKSMITHD_ETCD_PASSWORD: &str = "LOCKSMITHD_ETCD_PASSWORD";
    /// The locksmith group (semaphore).
    pub const LOCKSMITHD_GROUP: &str = "LOCKSMITHD_GROUP";
    /// `Thu 23:00` or `23:00`, with the length.
    pub const LOCKSMITHD_REBOOT_WINDOW_START: &str = "LOCKSMITHD_REBOOT_WINDOW_START";
    /// `1h30m`.
    pub const LOCKSMITHD_REBOOT_WINDOW_LENGTH: &str = "LOCKSMITHD_REBOOT_WINDOW_LENGTH";
    /// locksmith's older spellings of the window, accepted too.
    pub const REBOOT_WINDOW_START: &str = "REBOOT_WINDOW_START";
    pub const REBOOT_WINDOW_LENGTH: &str = "REBOOT_WINDOW_LENGTH";
    /// Ours: seconds of etcd lease on an etcd-lock holder.
    pub const ETCD_LOCK_TTL: &str = "ETCD_LOCK_TTL";
    /// Ours, after Zincati's `fleet_lock.base_url`: the FleetLock server.
    pub const FLEETLOCK_URL: &str = "FLEETLOCK_URL";
    /// Ours, after Zincati's `identity.group`.
    pub const FLEETLOCK_GROUP: &str = "FLEETLOCK_GROUP";
}

/// `REBOOT_STRATEGY`: what a machine does once an update is staged (DESIGN.md "Reboot
/// coordination").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RebootStrategy {
    /// Stay in `UPDATED_NEED_REBOOT`; the operator reboots.
    Off,
    /// Reboot right away.
    Reboot,
    /// Take a slot of locksmith's semaphore in etcd first; no reboot while etcd is unreachable.
    EtcdLock,
    /// etcd-lock when etcd answers, else reboot.
    BestEffort,
    /// Take a slot from the FleetLock server at `FLEETLOCK_URL` first.
    FleetLock,
}

impl RebootStrategy {
    /// Every strategy, in the order of the docs.
    pub const ALL: [RebootStrategy; 5] = [
        RebootStrategy::Off,
        RebootStrategy::Reboot,
        RebootStrategy::EtcdLock,
        RebootStrategy::BestEffort,
        RebootStrategy::FleetLock,
    ];

    /// The `update.conf` spelling (also the spec's and cloud-config's).
    pub fn as_str(self) -> &'static str {
        match self {
            RebootStrategy::Off => "off",
            RebootStrategy::Reboot => "reboot",
            RebootStrategy::EtcdLock => "etcd-lock",
            RebootStrategy::BestEffort => "best-effort",
            RebootStrategy::FleetLock => "fleetlock",
        }
    }
}

impl fmt::Display for RebootStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `REBOOT_STRATEGY` value that names no strategy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown reboot strategy {0:?}: expected off, reboot, etcd-lock, best-effort or fleetlock")]
pub struct UnknownStrategy(pub String);

impl FromStr for RebootStrategy {
    type Err = UnknownStrategy;
    fn from_str(s: &str) -> Result<RebootStrategy, UnknownStrategy> {
        RebootStrategy::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownStrategy(s.to_owned()))
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for RebootStrategy {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// In a spec or any other serde document: the `update.conf` spelling.
#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for RebootStrategy {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A line that is neither `KEY=VALUE`, a comment nor blank.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: expected KEY=VALUE, got {text:?}")]
pub struct SyntaxError {
    /// The file (or `<input>`).
    pub file: String,
    /// 1-based line number.
    pub line: usize,
    /// The line.
    pub text: String,
}

/// Parses `update.conf` text into its keys (later lines win; values unquoted). `file` names it
/// in errors. Pure.
pub fn parse(file: &str, text: &str) -> Result<BTreeMap<String, String>, SyntaxError> {
    let mut out = BTreeMap::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let syntax = || SyntaxError {
            file: file.into(),
            line: i + 1,
            text: raw.into(),
        };
        let (key, value) = line.split_once('=').ok_or_else(syntax)?;
        let key = key.trim();
        if !valid_key(key) {
            return Err(syntax());
        }
        out.insert(key.to_owned(), unquote(value.trim()).to_owned());
    }
    Ok(out)
}

/// Whether `key` can be a key: letters, digits and `_`, not empty.
pub fn valid_key(key: &str) -> bool {
    !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `"x"` and `'x'` → `x`; anything else unchanged.
pub fn unquote(v: &str) -> &str {
    for q in ['"', '\''] {
        if let Some(inner) = v.strip_prefix(q).and_then(|r| r.strip_suffix(q)) {
            return inner;
        }
    }
    v
}

/// `KEY=VALUE` lines, in the given order. Pure.
pub fn render<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    pairs
        .into_iter()
        .map(|(k, v)| format!("{k}={v}\n"))
        .collect()
}

/// `a, b,,c` → `[a, b, c]` (list values such as `LOCKSMITHD_ENDPOINT`).
pub fn split_list(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strategies_round_trip() {
        for s in RebootStrategy::ALL {
            assert_eq!(s.as_str().parse::<RebootStrategy>(), Ok(s));
        }
        let err = "sometimes".parse::<RebootStrategy>().unwrap_err();
        assert!(err.to_string().contains("\"sometimes\""), "{err}");
    }

    #[test]
    fn parse_render_round_trip() {
        let text = render([
            (keys::GROUP, "beta"),
            (keys::SERVER, "http://u/"),
            (keys::REBOOT_STRATEGY, "etcd-lock"),
        ]);
        assert_eq!(
            text,
            "GROUP=beta\nSERVER=http://u/\nREBOOT_STRATEGY=etcd-lock\n"
        );
        let keys = parse("x", &text).unwrap();
        assert_eq!(keys["GROUP"], "beta");
        assert_eq!(keys["SERVER"], "http://u/");
        assert_eq!(keys.len(), 3);
    }

    #[test]
    fn comments_quotes_and_last_wins() {
        let keys = parse(
            "f",
            "# c\n\n  GROUP = 'a'\nSERVER=\"http://x\"\nGROUP=b\nEMPTY=\n",
        )
        .unwrap();
        assert_eq!(keys["GROUP"], "b");
        assert_eq!(keys["SERVER"], "http://x");
        assert_eq!(keys["EMPTY"], "");
    }

    #[test]
    fn syntax_errors_name_the_line() {
        for bad in ["no equals sign", "=value", "BAD KEY=1", "KEY-X=1"] {
            let err = parse("update.conf", &format!("GROUP=a\n{bad}\n")).unwrap_err();
            assert_eq!(err.line, 2, "{bad}");
            assert!(err.to_string().starts_with("update.conf:2:"), "{err}");
        }
    }

    #[test]
    fn lists() {
        assert_eq!(split_list(" a, b,,c ,"), ["a", "b", "c"]);
        assert!(split_list("").is_empty());
    }
}
