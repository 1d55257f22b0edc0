//! The cloud-config key schema: every key coreos-cloudinit knew, its type, its `valid` pattern and
//! its deprecation note, transcribed from the Go structs at commit f1f0405 (config/*.go; the tables
//! in RULES.md, "Full key schema"). Key names use the `_` spelling.

use std::sync::LazyLock;

use regex::Regex;

/// What a key's value must be (`checkStructure`'s "want" types).
#[derive(Debug, Clone, Copy)]
pub enum Ty {
    Str,
    Int,
    Bool,
    Float,
    Struct(&'static [Field]),
    StrList,
    StructList(&'static [Field]),
}

impl Ty {
    /// The Go type name upstream prints in `incorrect type for "K" (want T)`.
    pub fn human(self) -> &'static str {
        match self {
            Ty::Str => "string",
            Ty::Int => "int",
            Ty::Bool => "bool",
            Ty::Float => "float64",
            Ty::Struct(_) => "struct",
            Ty::StrList => "[]string",
            Ty::StructList(_) => "[]struct",
        }
    }
}

/// A key of a cloud-config section.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    pub name: &'static str,
    pub ty: Ty,
    pub valid: Option<Valid>,
    pub deprecated: Option<&'static str>,
}

/// The value patterns upstream checks (the `valid:"..."` struct tags), on the literal text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Valid {
    RebootStrategy,
    UnitCommand,
    Etcd2Proxy,
    Encoding,
    Permissions,
    WindowStart,
    WindowLength,
}

const VALID_ALL: [Valid; 7] = [
    Valid::RebootStrategy,
    Valid::UnitCommand,
    Valid::Etcd2Proxy,
    Valid::Encoding,
    Valid::Permissions,
    Valid::WindowStart,
    Valid::WindowLength,
];

impl Valid {
    /// The Go regular expression, verbatim.
    pub fn pattern(self) -> &'static str {
        match self {
            Valid::RebootStrategy => "^(etcd-lock|reboot|off)$",
            Valid::UnitCommand => {
                "^(start|stop|restart|reload|try-restart|reload-or-restart|reload-or-try-restart)$"
            }
            Valid::Etcd2Proxy => "^(on|off|readonly)$",
            Valid::Encoding => {
                r"^(base64|b64|gz|gzip|gz\+base64|gzip\+base64|gz\+b64|gzip\+b64)$"
            }
            Valid::Permissions => "^0?[0-7]{3,4}$",
            Valid::WindowStart => {
                "^((?i:sun|mon|tue|wed|thu|fri|sat|sun) )?0*([0-9]|1[0-9]|2[0-3]):0*([0-9]|[1-5][0-9])$"
            }
            Valid::WindowLength => r"^[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+$",
        }
    }

    /// Whether `value` is accepted; empty values always are (upstream skips zero values).
    pub fn accepts(self, value: &str) -> bool {
        static COMPILED: LazyLock<Vec<Option<Regex>>> = LazyLock::new(|| {
            VALID_ALL
                .iter()
                .map(|v| Regex::new(v.pattern()).ok())
                .collect()
        });
        let index = VALID_ALL.iter().position(|v| *v == self);
        let re = index.and_then(|i| COMPILED.get(i)).and_then(Option::as_ref);
        value.is_empty() || re.is_some_and(|re| re.is_match(value))
    }
}

const fn f(name: &'static str, ty: Ty) -> Field {
    Field {
        name,
        ty,
        valid: None,
        deprecated: None,
    }
}

const fn valid(name: &'static str, valid: Valid) -> Field {
    Field {
        name,
        ty: Ty::Str,
        valid: Some(valid),
        deprecated: None,
    }
}

const fn old(name: &'static str, ty: Ty, why: &'static str) -> Field {
    Field {
        name,
        ty,
        valid: None,
        deprecated: Some(why),
    }
}

/// Looks a key up in a section.
pub fn field(fields: &'static [Field], name: &str) -> Option<&'static Field> {
    fields.iter().find(|f| f.name == name)
}

use Ty::{Bool, Float, Int, Str, StrList};

/// The top level of a cloud-config (config.CloudConfig).
pub const CLOUD_CONFIG: &[Field] = &[
    f("ssh_authorized_keys", StrList),
    f("coreos", Ty::Struct(COREOS)),
    f("write_files", Ty::StructList(FILE)),
    f("hostname", Str),
    f("users", Ty::StructList(USER)),
    f("manage_etc_hosts", Str),
];

const NOT_SHIPPED_ETCD: &str = "etcd is no longer shipped in Container Linux";
const NOT_SHIPPED_ETCD2: &str = "etcd2 is no longer shipped in Container Linux";
const NOT_SHIPPED_FLEET: &str = "fleet is no longer shipped in Container Linux";
const ETCD2_ONLY: &str = "etcd2 options no longer work for etcd";
const REMOTE_KEYS: &str =
    "trying to fetch from a remote endpoint introduces too many intermittent errors";

const COREOS: &[Field] = &[
    old("etcd", Ty::Struct(ETCD), NOT_SHIPPED_ETCD),
    old("etcd2", Ty::Struct(ETCD2), NOT_SHIPPED_ETCD2),
    f("flannel", Ty::Struct(FLANNEL)),
    old("fleet", Ty::Struct(FLEET), NOT_SHIPPED_FLEET),
    f("locksmith", Ty::Struct(LOCKSMITH)),
    f("oem", Ty::Struct(OEM)),
    f("update", Ty::Struct(UPDATE)),
    f("units", Ty::StructList(UNIT)),
];

/// etcd v0.4 (config/etcd.go).
const ETCD: &[Field] = &[
    f("addr", Str),
    old("advertise_client_urls", Str, ETCD2_ONLY),
    f("bind_addr", Str),
    f("ca_file", Str),
    f("cert_file", Str),
    f("cluster_active_size", Int),
    f("cluster_remove_delay", Float),
    f("cluster_sync_interval", Float),
    f("cors", Str),
    f("data_dir", Str),
    f("discovery", Str),
    old("discovery_fallback", Str, ETCD2_ONLY),
    old("discovery_srv", Str, ETCD2_ONLY),
    old("discovery_proxy", Str, ETCD2_ONLY),
    old("election_timeout", Int, ETCD2_ONLY),
    old("force_new_cluster", Bool, ETCD2_ONLY),
    f("graphite_host", Str),
    old("heartbeat_interval", Int, ETCD2_ONLY),
    f("http_read_timeout", Float),
    f("http_write_timeout", Float),
    old("initial_advertise_peer_urls", Str, ETCD2_ONLY),
    old("initial_cluster", Str, ETCD2_ONLY),
    old("initial_cluster_state", Str, ETCD2_ONLY),
    old("initial_cluster_token", Str, ETCD2_ONLY),
    f("key_file", Str),
    old("listen_client_urls", Str, ETCD2_ONLY),
    old("listen_peer_urls", Str, ETCD2_ONLY),
    f("max_result_buffer", Int),
    f("max_retry_attempts", Int),
    old("max_snapshots", Int, ETCD2_ONLY),
    old("max_wals", Int, ETCD2_ONLY),
    f("name", Str),
    f("peer_addr", Str),
    f("peer_bind_addr", Str),
    f("peer_ca_file", Str),
    f("peer_cert_file", Str),
    f("peer_election_timeout", Int),
    f("peer_heartbeat_interval", Int),
    f("peer_key_file", Str),
    f("peers", Str),
    f("peers_file", Str),
    old("proxy", Str, ETCD2_ONLY),
    f("retry_interval", Float),
    f("snapshot", Bool),
    f("snapshot_count", Int),
    f("trace", Str),
    f("verbose", Bool),
    f("very_verbose", Bool),
    f("very_very_verbose", Bool),
];

/// etcd2 (config/etcd2.go); each key becomes `ETCD_<KEY IN UPPER CASE>`.
pub const ETCD2: &[Field] = &[
    f("advertise_client_urls", Str),
    old(
        "ca_file",
        Str,
        "ca_file obsoleted by trusted_ca_file and client_cert_auth",
    ),
    f("cert_file", Str),
    f("client_cert_auth", Bool),
    f("cors", Str),
    f("data_dir", Str),
    f("debug", Bool),
    f("discovery", Str),
    f("discovery_fallback", Str),
    f("discovery_srv", Str),
    f("discovery_proxy", Str),
    f("election_timeout", Int),
    f("enable_pprof", Bool),
    f("force_new_cluster", Bool),
    f("heartbeat_interval", Int),
    f("initial_advertise_peer_urls", Str),
    f("initial_cluster", Str),
    f("initial_cluster_state", Str),
    f("initial_cluster_token", Str),
    f("key_file", Str),
    f("listen_client_urls", Str),
    f("listen_peer_urls", Str),
    f("log_package_levels", Str),
    f("max_snapshots", Int),
    f("max_wals", Int),
    f("name", Str),
    old(
        "peer_ca_file",
        Str,
        "peer_ca_file obsoleted peer_trusted_ca_file and peer_client_cert_auth",
    ),
    f("peer_cert_file", Str),
    f("peer_key_file", Str),
    f("peer_client_cert_auth", Bool),
    f("peer_trusted_ca_file", Str),
    valid("proxy", Valid::Etcd2Proxy),
    f("proxy_dial_timeout", Int),
    f("proxy_failure_wait", Int),
    f("proxy_read_timeout", Int),
    f("proxy_refresh_interval", Int),
    f("proxy_write_timeout", Int),
    f("snapshot_count", Int),
    f("strict_reconfig_check", Bool),
    f("trusted_ca_file", Str),
    f("wal_dir", Str),
];

const FLANNEL: &[Field] = &[
    f("etcd_endpoints", Str),
    f("etcd_cafile", Str),
    f("etcd_certfile", Str),
    f("etcd_keyfile", Str),
    f("etcd_prefix", Str),
    f("etcd_username", Str),
    f("etcd_password", Str),
    f("ip_masq", Str),
    f("subnet_file", Str),
    f("interface", Str),
    f("public_ip", Str),
];

/// fleet (config/fleet.go); each key becomes `FLEET_<KEY IN UPPER CASE>`.
pub const FLEET: &[Field] = &[
    f("agent_ttl", Str),
    f("authorized_keys_file", Str),
    f("disable_engine", Bool),
    f("engine_reconcile_interval", Float),
    f("etcd_cafile", Str),
    f("etcd_certfile", Str),
    f("etcd_keyfile", Str),
    f("etcd_key_prefix", Str),
    f("etcd_request_timeout", Float),
    f("etcd_servers", Str),
    f("etcd_username", Str),
    f("etcd_password", Str),
    f("metadata", Str),
    f("public_ip", Str),
    f("token_limit", Int),
    f("verbosity", Int),
    f("verify_units", Bool),
];

const LOCKSMITH: &[Field] = &[
    f("endpoint", Str),
    f("etcd_cafile", Str),
    f("etcd_certfile", Str),
    f("etcd_keyfile", Str),
    f("etcd_username", Str),
    f("etcd_password", Str),
    f("group", Str),
    valid("window_start", Valid::WindowStart),
    valid("window_length", Valid::WindowLength),
];

const OEM: &[Field] = &[
    f("id", Str),
    f("name", Str),
    f("version_id", Str),
    f("home_url", Str),
    f("bug_report_url", Str),
];

const UPDATE: &[Field] = &[
    valid("reboot_strategy", Valid::RebootStrategy),
    f("group", Str),
    f("server", Str),
];

const UNIT: &[Field] = &[
    f("name", Str),
    f("mask", Bool),
    f("enable", Bool),
    f("runtime", Bool),
    f("content", Str),
    valid("command", Valid::UnitCommand),
    f("drop_ins", Ty::StructList(DROP_IN)),
];

const DROP_IN: &[Field] = &[f("name", Str), f("content", Str)];

const FILE: &[Field] = &[
    valid("encoding", Valid::Encoding),
    f("content", Str),
    f("owner", Str),
    f("path", Str),
    valid("permissions", Valid::Permissions),
];

const USER: &[Field] = &[
    f("name", Str),
    f("passwd", Str),
    f("ssh_authorized_keys", StrList),
    old("coreos_ssh_import_github", Str, REMOTE_KEYS),
    old("coreos_ssh_import_github_users", StrList, REMOTE_KEYS),
    old("coreos_ssh_import_url", Str, REMOTE_KEYS),
    f("gecos", Str),
    f("homedir", Str),
    f("no_create_home", Bool),
    f("primary_group", Str),
    f("groups", StrList),
    f("no_user_group", Bool),
    f("system", Bool),
    f("no_log_init", Bool),
    f("shell", Str),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pattern_compiles() {
        for v in VALID_ALL {
            assert!(Regex::new(v.pattern()).is_ok(), "{v:?}");
        }
    }

    #[test]
    fn patterns_accept_what_upstream_accepts() {
        let cases: &[(Valid, &str, bool)] = &[
            (Valid::RebootStrategy, "off", true),
            (Valid::RebootStrategy, "OFF", false),
            (Valid::RebootStrategy, "best-effort", false),
            (Valid::RebootStrategy, "off\n", false),
            (Valid::Permissions, "0744", true),
            (Valid::Permissions, "01744", true),
            (Valid::Permissions, "11744", false),
            (Valid::WindowStart, "sUn 23:59", true),
            (Valid::WindowStart, "thur 0:0", false),
            (Valid::WindowLength, "0.5h", true),
            (Valid::WindowLength, "1 hour", false),
            (Valid::Etcd2Proxy, "readonly", true),
            (Valid::Encoding, "gzip+b64", true),
            (Valid::Encoding, "gzip+", false),
            (Valid::UnitCommand, "", true),
        ];
        for (v, value, want) in cases {
            assert_eq!(v.accepts(value), *want, "{v:?} {value:?}");
        }
    }

    #[test]
    fn sections_have_unique_keys() {
        fn walk(fields: &'static [Field], seen: &mut usize) {
            *seen += 1;
            for (i, a) in fields.iter().enumerate() {
                assert!(
                    fields[i + 1..].iter().all(|b| b.name != a.name),
                    "{}",
                    a.name
                );
                if let Ty::Struct(sub) | Ty::StructList(sub) = a.ty {
                    walk(sub, seen);
                }
            }
        }
        let mut sections = 0;
        walk(CLOUD_CONFIG, &mut sections);
        // top, coreos, write_files, users, etcd, etcd2, flannel, fleet, locksmith, oem, update,
        // units, drop_ins
        assert_eq!(sections, 13);
    }
}
