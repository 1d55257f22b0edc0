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
//!
//! Which values the engine can use is defined here once too ([`check_value`], [`reboot_window`]
//! and the typed readers [`reboot_strategy`], [`seconds`], [`base_url`], [`etcd_endpoints`]):
//! the engine reads its files with them, `validate-config` checks a cloud-config's
//! `coreos.update` and `coreos.locksmith` with them and the image builder its spec's `update:`,
//! so a value one of them accepts the others accept too. [`window`] is locksmith's reboot window.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

pub mod window;

pub use window::{RebootWindow, WindowError};

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
    let (keys, mut errors) = parse_lenient(file, text);
    if errors.is_empty() {
        Ok(keys)
    } else {
        Err(errors.swap_remove(0))
    }
}

/// [`parse`] that skips the lines it cannot read and returns them too, in order: the update
/// engine uses what it can of a file rather than nothing. Pure.
pub fn parse_lenient(file: &str, text: &str) -> (BTreeMap<String, String>, Vec<SyntaxError>) {
    let mut out = BTreeMap::new();
    let mut errors = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let pair = line
            .split_once('=')
            .map(|(k, v)| (k.trim(), v))
            .filter(|(k, _)| valid_key(k));
        match pair {
            Some((key, value)) => {
                out.insert(key.to_owned(), unquote(value.trim()).to_owned());
            }
            None => errors.push(SyntaxError {
                file: file.into(),
                line: i + 1,
                text: raw.into(),
            }),
        }
    }
    (out, errors)
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

/// Longest channel name (`GROUP`): a path component of the update repository.
pub const MAX_CHANNEL_LEN: usize = 64;

/// Checks a channel name (`GROUP`, the repository's `channels/<name>/`): 1-64 of `[a-z0-9._-]`,
/// starting with a letter or digit, so it is a safe path component and URL segment.
pub fn validate_channel_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= MAX_CHANNEL_LEN
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    ok.then_some(()).ok_or_else(|| {
        format!("channel name {name:?} must be 1-{MAX_CHANNEL_LEN} of [a-z0-9._-] starting with a letter or digit")
    })
}

/// Whether `group` is a valid FleetLock group (`FLEETLOCK_GROUP`, Zincati's rule):
/// `^[a-zA-Z0-9.-]+$`.
pub fn valid_fleetlock_group(group: &str) -> bool {
    !group.is_empty()
        && group
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
}

/// A value the update engine cannot use: the key, the value and what the key takes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}={value:?}: expected {expected}")]
pub struct BadValue {
    /// The key.
    pub key: String,
    /// Its value.
    pub value: String,
    /// What the key takes.
    pub expected: String,
}

impl BadValue {
    fn new(key: &str, value: &str, expected: impl Into<String>) -> BadValue {
        BadValue {
            key: key.to_owned(),
            value: value.to_owned(),
            expected: expected.into(),
        }
    }
}

/// `REBOOT_STRATEGY`.
pub fn reboot_strategy(value: &str) -> Result<RebootStrategy, BadValue> {
    value.parse().map_err(|_| {
        BadValue::new(
            keys::REBOOT_STRATEGY,
            value,
            "off, reboot, etcd-lock, best-effort or fleetlock",
        )
    })
}

/// `CHECK_INTERVAL`, `HEALTH_TIMEOUT`, `ETCD_LOCK_TTL`: a positive number of seconds.
pub fn seconds(key: &str, value: &str) -> Result<u64, BadValue> {
    value
        .parse::<u64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| BadValue::new(key, value, "a positive number of seconds"))
}

/// What `SERVER` and `FLEETLOCK_URL` take.
const BASE_URL: &str =
    "an http:// or https:// URL: a host, an optional port and path, no query, no spaces";

/// `SERVER`, `FLEETLOCK_URL`: the base URL of a service the engine appends paths to:
/// `http://` or `https://`, a host, an optional port and path; no query or fragment. Returned
/// without its trailing `/`s.
pub fn base_url(key: &str, value: &str) -> Result<String, BadValue> {
    match url_problem(value, true) {
        None => Ok(value.trim_end_matches('/').to_owned()),
        Some(why) => Err(BadValue::new(key, value, format!("{BASE_URL} ({why})"))),
    }
}

/// `LOCKSMITHD_ENDPOINT`: etcd client URLs, comma-separated (`http://host:2379`,
/// `https://…`, or `host:port`, which the etcd client prefixes with `http://`, or `https://`
/// with TLS files).
pub fn etcd_endpoints(value: &str) -> Result<Vec<String>, BadValue> {
    let list = split_list(value);
    for endpoint in &list {
        if let Some(why) = url_problem(endpoint, false) {
            return Err(BadValue::new(
                keys::LOCKSMITHD_ENDPOINT,
                value,
                format!(
                    "etcd client URLs, comma-separated, like http://10.0.0.1:2379 ({endpoint:?}: {why})"
                ),
            ));
        }
    }
    Ok(list)
}

/// Why `value` is not a URL the engine can use (`None`: it is). `base`: the scheme is required
/// (else `host:port` passes).
fn url_problem(value: &str, base: bool) -> Option<String> {
    if let Some(c) = value.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Some(format!("it contains {c:?}"));
    }
    let rest = match value.find("://") {
        Some(i) => {
            let scheme = &value[..i];
            if !["http", "https"]
                .iter()
                .any(|s| s.eq_ignore_ascii_case(scheme))
            {
                return Some(format!("scheme {scheme:?} is not http or https"));
            }
            &value[i + 3..]
        }
        None if base => return Some("no http:// or https://".into()),
        None => value,
    };
    if rest.contains(['?', '#']) {
        return Some("a query or fragment".into());
    }
    let authority = rest.split('/').next().unwrap_or_default();
    let host_port = authority.rsplit('@').next().unwrap_or_default();
    let (host, port) = if let Some(v6) = host_port.strip_prefix('[') {
        match v6.split_once(']') {
            Some((host, after)) => (host, after.strip_prefix(':')),
            None => return Some("an unclosed [".into()),
        }
    } else {
        match host_port.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        }
    };
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-_~%:".contains(c) || !c.is_ascii());
    if !host_ok {
        return Some(format!("host {host:?}"));
    }
    if let Some(port) = port {
        if port.parse::<u16>().is_err() || port.starts_with('+') {
            return Some(format!("port {port:?}"));
        }
    }
    None
}

/// `GROUP`: a channel name ([`validate_channel_name`]).
pub fn group(value: &str) -> Result<(), BadValue> {
    validate_channel_name(value).map_err(|reason| BadValue::new(keys::GROUP, value, reason))
}

/// `FLEETLOCK_GROUP` ([`valid_fleetlock_group`]).
pub fn fleetlock_group(value: &str) -> Result<(), BadValue> {
    if valid_fleetlock_group(value) {
        Ok(())
    } else {
        Err(BadValue::new(
            keys::FLEETLOCK_GROUP,
            value,
            "letters, digits, '.' and '-'",
        ))
    }
}

/// What the window's start takes.
const WINDOW_START: &str = "HH:MM or Day HH:MM, e.g. \"Thu 23:00\"";
/// What the window's length takes.
const WINDOW_LENGTH: &str = "a duration like 1h30m";

fn window_error(start: (&str, &str), length: (&str, &str), e: WindowError) -> BadValue {
    match e {
        WindowError::Start { reason, .. } => {
            BadValue::new(start.0, start.1, format!("{WINDOW_START} ({reason})"))
        }
        WindowError::Length { reason, .. } => {
            BadValue::new(length.0, length.1, format!("{WINDOW_LENGTH} ({reason})"))
        }
    }
}

/// The reboot window from its start and length, each `(key, value)` when set (the keys are
/// `LOCKSMITHD_REBOOT_WINDOW_*` or locksmith's older `REBOOT_WINDOW_*`): both or neither.
pub fn reboot_window(
    start: Option<(&str, &str)>,
    length: Option<(&str, &str)>,
) -> Result<Option<RebootWindow>, BadValue> {
    match (start, length) {
        (None, None) => Ok(None),
        (Some((k, v)), None) => Err(BadValue::new(
            k,
            v,
            format!("{} set too", keys::LOCKSMITHD_REBOOT_WINDOW_LENGTH),
        )),
        (None, Some((k, v))) => Err(BadValue::new(
            k,
            v,
            format!("{} set too", keys::LOCKSMITHD_REBOOT_WINDOW_START),
        )),
        (Some(start), Some(length)) => RebootWindow::parse(start.1, length.1)
            .map(Some)
            .map_err(|e| window_error(start, length, e)),
    }
}

/// Checks one key's value on its own, as the engine reads it: `Ok` for keys without a rule
/// (unknown keys, file names, credentials) and for empty values (unset). The window's start
/// and length are checked each alone here (a length up to a week); [`reboot_window`] checks
/// them together.
pub fn check_value(key: &str, value: &str) -> Result<(), BadValue> {
    if value.is_empty() {
        return Ok(());
    }
    match key {
        keys::GROUP => group(value),
        keys::SERVER | keys::FLEETLOCK_URL => base_url(key, value).map(drop),
        keys::REBOOT_STRATEGY => reboot_strategy(value).map(drop),
        keys::CHECK_INTERVAL | keys::HEALTH_TIMEOUT | keys::ETCD_LOCK_TTL => {
            seconds(key, value).map(drop)
        }
        keys::LOCKSMITHD_ENDPOINT => etcd_endpoints(value).map(drop),
        keys::FLEETLOCK_GROUP => fleetlock_group(value),
        keys::LOCKSMITHD_REBOOT_WINDOW_START | keys::REBOOT_WINDOW_START => {
            window::check_start(value).map_err(|e| window_error((key, value), ("", ""), e))
        }
        keys::LOCKSMITHD_REBOOT_WINDOW_LENGTH | keys::REBOOT_WINDOW_LENGTH => {
            window::check_length(value).map_err(|e| window_error(("", ""), (key, value), e))
        }
        _ => Ok(()),
    }
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

    struct Case {
        key: &'static str,
        value: &'static str,
        /// `None`: accepted; else a part of the error.
        want: Option<&'static str>,
    }

    #[test]
    fn values_the_engine_cannot_use() {
        let cases = [
            Case { key: "GROUP", value: "beta", want: None },
            Case { key: "GROUP", value: "../x", want: Some("GROUP=\"../x\": expected channel name") },
            Case { key: "GROUP", value: "", want: None },
            Case { key: "SERVER", value: "https://u.example/v1/", want: None },
            Case { key: "SERVER", value: "HTTP://[::1]:8080/repo", want: None },
            Case { key: "SERVER", value: "updates.example", want: Some("(no http:// or https://)") },
            Case { key: "SERVER", value: "ftp://u.example", want: Some("scheme \"ftp\" is not http or https") },
            Case { key: "SERVER", value: "http://", want: Some("host \"\"") },
            Case { key: "SERVER", value: "http://u:port/", want: Some("port \"port\"") },
            Case { key: "SERVER", value: "http://u:99999/", want: Some("port \"99999\"") },
            Case { key: "SERVER", value: "http://u/a b", want: Some("it contains ' '") },
            Case { key: "SERVER", value: "http://u/?channel=x", want: Some("a query or fragment") },
            Case { key: "FLEETLOCK_URL", value: "http://fleet:3333", want: None },
            Case { key: "FLEETLOCK_URL", value: "fleet:3333", want: Some("FLEETLOCK_URL=\"fleet:3333\": expected an http:// or https:// URL") },
            Case { key: "FLEETLOCK_GROUP", value: "a_b", want: Some("letters, digits") },
            Case { key: "REBOOT_STRATEGY", value: "fleetlock", want: None },
            Case { key: "REBOOT_STRATEGY", value: "sometimes", want: Some("REBOOT_STRATEGY=\"sometimes\": expected off, reboot") },
            Case { key: "CHECK_INTERVAL", value: "0", want: Some("a positive number of seconds") },
            Case { key: "HEALTH_TIMEOUT", value: "-5", want: Some("a positive number of seconds") },
            Case { key: "ETCD_LOCK_TTL", value: "900", want: None },
            Case { key: "LOCKSMITHD_ENDPOINT", value: "http://a:2379, https://b:2379,10.0.0.3:2379", want: None },
            Case { key: "LOCKSMITHD_ENDPOINT", value: "http://a:2379,unix:///run/etcd", want: Some("(\"unix:///run/etcd\": scheme \"unix\"") },
            Case { key: "LOCKSMITHD_REBOOT_WINDOW_START", value: "Blursday 25:61", want: Some("LOCKSMITHD_REBOOT_WINDOW_START=\"Blursday 25:61\": expected HH:MM or Day HH:MM, e.g. \"Thu 23:00\" (unknown day \"Blursday\"") },
            Case { key: "REBOOT_WINDOW_START", value: "23:61", want: Some("minute must be 0 to 59") },
            Case { key: "LOCKSMITHD_REBOOT_WINDOW_LENGTH", value: "-1h", want: Some("LOCKSMITHD_REBOOT_WINDOW_LENGTH=\"-1h\": expected a duration like 1h30m (must not be negative)") },
            Case { key: "REBOOT_WINDOW_LENGTH", value: "0", want: Some("at least 1s") },
            Case { key: "REBOOT_WINDOW_LENGTH", value: "1d", want: Some("unknown unit \"d\"") },
            Case { key: "LOCKSMITHD_ETCD_CAFILE", value: "anything", want: None },
            Case { key: "PXE", value: "anything", want: None },
        ];
        for c in cases {
            let got = check_value(c.key, c.value);
            match (got, c.want) {
                (Ok(()), None) => {}
                (Err(e), Some(want)) => {
                    assert_eq!((e.key.as_str(), e.value.as_str()), (c.key, c.value));
                    assert!(e.to_string().contains(want), "{}={}: {e}", c.key, c.value);
                }
                (got, want) => panic!("{}={:?}: got {got:?}, want {want:?}", c.key, c.value),
            }
        }
    }

    #[test]
    fn windows_go_in_pairs() {
        let start = |v| Some((keys::LOCKSMITHD_REBOOT_WINDOW_START, v));
        let length = |v| Some((keys::REBOOT_WINDOW_LENGTH, v));
        assert_eq!(reboot_window(None, None), Ok(None));
        let w = reboot_window(start("Thu 23:00"), length("1h30m")).unwrap();
        assert_eq!(w.unwrap().to_string(), "Thu 23:00 for 1h30m0s");
        let e = reboot_window(start("14:00"), None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "LOCKSMITHD_REBOOT_WINDOW_START=\"14:00\": expected LOCKSMITHD_REBOOT_WINDOW_LENGTH set too"
        );
        let e = reboot_window(None, length("1h")).unwrap_err();
        assert_eq!(e.key, "REBOOT_WINDOW_LENGTH");
        // The start's error names the start, the length's the length.
        let e = reboot_window(start("Blursday 25:61"), length("-1h")).unwrap_err();
        assert_eq!(e.key, "LOCKSMITHD_REBOOT_WINDOW_START");
        let e = reboot_window(start("14:00"), length("25h")).unwrap_err();
        assert_eq!(e.key, "REBOOT_WINDOW_LENGTH");
        assert!(e.expected.contains("a day"), "{e}");
        // Alone, 25h is a length some start takes.
        assert_eq!(check_value(keys::REBOOT_WINDOW_LENGTH, "25h"), Ok(()));
    }

    #[test]
    fn channel_names() {
        for good in ["stable", "beta-2", "0.x", &"a".repeat(MAX_CHANNEL_LEN)] {
            assert!(validate_channel_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "Beta",
            "-x",
            "a/b",
            "..",
            &"a".repeat(MAX_CHANNEL_LEN + 1),
        ] {
            assert!(validate_channel_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn lenient_parsing_keeps_the_good_lines() {
        let (keys, errors) = parse_lenient("f", "GROUP=beta\nBlursday\nSERVER=http://x\n");
        assert_eq!(keys.len(), 2);
        assert_eq!(keys["SERVER"], "http://x");
        assert_eq!(errors.len(), 1);
        assert_eq!(
            errors[0].to_string(),
            "f:2: expected KEY=VALUE, got \"Blursday\""
        );
    }

    #[test]
    fn lists() {
        assert_eq!(split_list(" a, b,,c ,"), ["a", "b", "c"]);
        assert!(split_list("").is_empty());
    }
}
