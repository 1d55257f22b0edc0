//! The typed cloud-config: what coreos-cloudinit's `config.CloudConfig` held after parsing and
//! `Decode()`, for the keys this project applies (config/config.go, user.go, file.go, unit.go,
//! update.go, locksmith.go, etcd2.go, oem.go).
//!
//! Values follow go-yaml v1's typed decoding: a string key takes the literal text of any scalar
//! (`reboot-strategy: off` is `"off"`, `permissions: 0744` is `"0744"`), a boolean key takes only a
//! YAML 1.1 boolean (`yes`, `on`, `True`...), and a value of the wrong type is ignored (the field
//! keeps its default, the validator warns). Empty strings count as absent. The deprecated keys
//! `coreos.etcd` (etcd 0.4) and `users[].coreos_ssh_import_*` are not modelled; `coreos.flannel`
//! and the deprecated `coreos.fleet` are, as the environment upstream wrote for them (this OS
//! ships neither daemon; [`crate::CONTAINER_LINUX_UNITS`]).

use std::collections::BTreeMap;
use std::fmt;

use contract::update_conf::keys;

use super::decode::decode_content;
use super::schema::{self, Ty};
use super::yaml::{Node, Scalar, ScalarKind, Value};

/// A parsed `#cloud-config`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CloudConfig {
    pub hostname: Option<String>,
    /// Keys for the `core` user.
    pub ssh_authorized_keys: Vec<String>,
    pub users: Vec<User>,
    pub write_files: Vec<WriteFile>,
    /// Only `localhost` is meaningful (`127.0.0.1 <hostname>` in `/etc/hosts`).
    pub manage_etc_hosts: Option<String>,
    pub coreos: CoreOs,
}

/// The `coreos:` section.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CoreOs {
    pub units: Vec<Unit>,
    pub update: Update,
    pub locksmith: Locksmith,
    pub etcd2: Etcd2,
    pub flannel: Flannel,
    pub fleet: Fleet,
    pub oem: Oem,
}

/// `users[]`. Upstream creates the user if missing, else only sets `passwd`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct User {
    /// Entries without a name are skipped when applied.
    pub name: String,
    /// A crypt(3) hash.
    pub passwd: Option<String>,
    pub ssh_authorized_keys: Vec<String>,
    pub gecos: Option<String>,
    pub homedir: Option<String>,
    pub no_create_home: bool,
    pub primary_group: Option<String>,
    pub groups: Vec<String>,
    pub no_user_group: bool,
    pub system: bool,
    pub no_log_init: bool,
    pub shell: Option<String>,
}

/// `write_files[]`, with `content` already decoded from its `encoding`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteFile {
    pub path: String,
    pub content: Vec<u8>,
    /// `user`, `user:group` (applied with chown).
    pub owner: Option<String>,
    pub permissions: Option<FileMode>,
}

impl WriteFile {
    /// The mode to create the file with (upstream's default is 0644).
    pub fn mode(&self) -> FileMode {
        self.permissions.unwrap_or(FileMode::DEFAULT)
    }
}

/// A file mode, from the octal text of `permissions` (`"0744"`, `744`, and also `420`, which is
/// octal 420 as upstream read it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileMode(pub u32);

impl FileMode {
    pub const DEFAULT: FileMode = FileMode(0o644);
}

impl fmt::Display for FileMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04o}", self.0)
    }
}

/// `coreos.units[]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Unit {
    /// Units without a name are skipped when applied.
    pub name: String,
    pub command: Option<UnitCommand>,
    pub enable: bool,
    /// Under `/run/systemd` instead of `/etc/systemd`.
    pub runtime: bool,
    pub mask: bool,
    /// The unit file; written only when present.
    pub content: Option<String>,
    pub drop_ins: Vec<DropIn>,
}

/// `coreos.units[].drop_ins[]` (also spelt `drop-ins`); written only if both are non-empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DropIn {
    pub name: String,
    pub content: String,
}

/// `coreos.units[].command`: the systemctl verb run after the units are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnitCommand {
    Start,
    Stop,
    Restart,
    Reload,
    TryRestart,
    ReloadOrRestart,
    ReloadOrTryRestart,
}

impl UnitCommand {
    const ALL: [UnitCommand; 7] = [
        UnitCommand::Start,
        UnitCommand::Stop,
        UnitCommand::Restart,
        UnitCommand::Reload,
        UnitCommand::TryRestart,
        UnitCommand::ReloadOrRestart,
        UnitCommand::ReloadOrTryRestart,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            UnitCommand::Start => "start",
            UnitCommand::Stop => "stop",
            UnitCommand::Restart => "restart",
            UnitCommand::Reload => "reload",
            UnitCommand::TryRestart => "try-restart",
            UnitCommand::ReloadOrRestart => "reload-or-restart",
            UnitCommand::ReloadOrTryRestart => "reload-or-try-restart",
        }
    }

    pub fn from_name(s: &str) -> Option<UnitCommand> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// `coreos.update`, rendered into `/etc/coreos/update.conf`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Update {
    pub reboot_strategy: Option<RebootStrategy>,
    pub group: Option<String>,
    pub server: Option<String>,
}

impl Update {
    /// `update.conf` variables, in upstream's field order.
    pub fn environment(&self) -> Vec<(&'static str, String)> {
        let strategy = self.reboot_strategy.map(|s| s.as_str().to_string());
        env_pairs([
            (keys::REBOOT_STRATEGY, &strategy),
            (keys::GROUP, &self.group),
            (keys::SERVER, &self.server),
        ])
    }
}

/// `coreos.update.reboot-strategy`: the machines' strategies ([`contract::update_conf`]); a
/// cloud-config may name exactly the ones upstream accepted ([`CLOUD_CONFIG_STRATEGIES`]).
pub use contract::update_conf::RebootStrategy;

/// The strategies upstream's cloud-config accepted (`best-effort` and `fleetlock` are set in
/// `update.conf` itself). A bare `off` must be quoted: YAML 1.1 reads it as false.
pub const CLOUD_CONFIG_STRATEGIES: [RebootStrategy; 3] = [
    RebootStrategy::EtcdLock,
    RebootStrategy::Reboot,
    RebootStrategy::Off,
];

/// `coreos.locksmith`: the reboot manager's settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Locksmith {
    pub endpoint: Option<String>,
    pub etcd_cafile: Option<String>,
    pub etcd_certfile: Option<String>,
    pub etcd_keyfile: Option<String>,
    pub etcd_username: Option<String>,
    pub etcd_password: Option<String>,
    pub group: Option<String>,
    /// `[Day ]HH:MM`, e.g. `Sun 03:00`.
    pub window_start: Option<String>,
    /// A Go duration, e.g. `1h30m`.
    pub window_length: Option<String>,
}

impl Locksmith {
    /// The variables upstream put into locksmithd's drop-in, in its field order.
    pub fn environment(&self) -> Vec<(&'static str, String)> {
        env_pairs([
            (keys::LOCKSMITHD_ENDPOINT, &self.endpoint),
            (keys::LOCKSMITHD_ETCD_CAFILE, &self.etcd_cafile),
            (keys::LOCKSMITHD_ETCD_CERTFILE, &self.etcd_certfile),
            (keys::LOCKSMITHD_ETCD_KEYFILE, &self.etcd_keyfile),
            (keys::LOCKSMITHD_ETCD_USERNAME, &self.etcd_username),
            (keys::LOCKSMITHD_ETCD_PASSWORD, &self.etcd_password),
            (keys::LOCKSMITHD_GROUP, &self.group),
            (keys::REBOOT_WINDOW_START, &self.window_start),
            (keys::REBOOT_WINDOW_LENGTH, &self.window_length),
        ])
    }
}

fn env_pairs<const N: usize>(
    fields: [(&'static str, &Option<String>); N],
) -> Vec<(&'static str, String)> {
    fields
        .into_iter()
        .filter_map(|(k, v)| v.clone().map(|v| (k, v)))
        .collect()
}

/// `coreos.etcd2`: any key, passed to etcd as `ETCD_<KEY>` (upper case, `_` spelling). Known
/// boolean keys read YAML 1.1 booleans and known integer keys integers, as upstream's struct did;
/// zero values (false, 0, empty) are left out, as upstream did. Unknown keys (warned about by the
/// validator) are passed through as written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Etcd2 {
    options: BTreeMap<String, String>,
}

impl Etcd2 {
    /// Option name (`_` spelling) → value as etcd reads it.
    pub fn options(&self) -> &BTreeMap<String, String> {
        &self.options
    }

    pub fn is_empty(&self) -> bool {
        self.options.is_empty()
    }

    /// `ETCD_NAME=...`-style variables, sorted by name.
    pub fn environment(&self) -> Vec<(String, String)> {
        self.options
            .iter()
            .map(|(k, v)| (format!("ETCD_{}", k.to_ascii_uppercase()), v.clone()))
            .collect()
    }
}

/// `coreos.flannel`: flanneld's options, which upstream wrote to `/run/flannel/options.env`
/// (config/flannel.go, system/flannel.go).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flannel {
    pub etcd_endpoints: Option<String>,
    pub etcd_cafile: Option<String>,
    pub etcd_certfile: Option<String>,
    pub etcd_keyfile: Option<String>,
    pub etcd_prefix: Option<String>,
    pub etcd_username: Option<String>,
    pub etcd_password: Option<String>,
    pub ip_masq: Option<String>,
    pub subnet_file: Option<String>,
    pub interface: Option<String>,
    pub public_ip: Option<String>,
}

impl Flannel {
    /// `FLANNELD_*` variables in upstream's field order (`interface` is `FLANNELD_IFACE`).
    pub fn environment(&self) -> Vec<(&'static str, String)> {
        env_pairs([
            ("FLANNELD_ETCD_ENDPOINTS", &self.etcd_endpoints),
            ("FLANNELD_ETCD_CAFILE", &self.etcd_cafile),
            ("FLANNELD_ETCD_CERTFILE", &self.etcd_certfile),
            ("FLANNELD_ETCD_KEYFILE", &self.etcd_keyfile),
            ("FLANNELD_ETCD_PREFIX", &self.etcd_prefix),
            ("FLANNELD_ETCD_USERNAME", &self.etcd_username),
            ("FLANNELD_ETCD_PASSWORD", &self.etcd_password),
            ("FLANNELD_IP_MASQ", &self.ip_masq),
            ("FLANNELD_SUBNET_FILE", &self.subnet_file),
            ("FLANNELD_IFACE", &self.interface),
            ("FLANNELD_PUBLIC_IP", &self.public_ip),
        ])
    }

    /// `/run/flannel/options.env` as upstream wrote it: `KEY=value` lines as given (no quoting),
    /// without a final newline; `None` when no option is set (upstream wrote no file).
    pub fn options_env(&self) -> Option<String> {
        let lines: Vec<String> = self
            .environment()
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        (!lines.is_empty()).then(|| lines.join("\n"))
    }
}

/// `coreos.fleet` (deprecated upstream): `FLEET_<KEY>` variables in upstream's field order
/// (config/fleet.go). Booleans count only when true and numbers only when non-zero, as upstream
/// left out zero values; floats are printed as Go's `%v` printed them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fleet {
    environment: Vec<(String, String)>,
}

impl Fleet {
    /// `FLEET_AGENT_TTL=...`-style variables.
    pub fn environment(&self) -> &[(String, String)] {
        &self.environment
    }

    pub fn is_empty(&self) -> bool {
        self.environment.is_empty()
    }
}

/// `coreos.oem`: written to `/etc/oem-release`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Oem {
    pub id: Option<String>,
    pub name: Option<String>,
    pub version_id: Option<String>,
    pub home_url: Option<String>,
    pub bug_report_url: Option<String>,
}

/// A value that passed validation but cannot be represented (a validator/model mismatch).
pub(crate) type BuildError = (usize, String);

/// Builds the typed config from a document root that validated without errors.
pub(crate) fn build(root: Option<&Node>) -> Result<CloudConfig, BuildError> {
    let Some(root) = root.filter(|r| matches!(r.value, Value::Map(_))) else {
        return Ok(CloudConfig::default());
    };
    let coreos = root.get("coreos");
    let coreos_section = |key| coreos.and_then(|c| section(c, key));
    Ok(CloudConfig {
        hostname: string(root, "hostname"),
        ssh_authorized_keys: strings(root, "ssh_authorized_keys"),
        users: maps(root, "users").map(user).collect(),
        write_files: maps(root, "write_files")
            .map(write_file)
            .collect::<Result<_, _>>()?,
        manage_etc_hosts: string(root, "manage_etc_hosts"),
        coreos: CoreOs {
            units: coreos
                .map(|c| maps(c, "units").map(unit).collect::<Result<_, _>>())
                .transpose()?
                .unwrap_or_default(),
            update: coreos_section("update")
                .map(update)
                .transpose()?
                .unwrap_or_default(),
            locksmith: coreos_section("locksmith")
                .map(locksmith)
                .unwrap_or_default(),
            etcd2: coreos_section("etcd2").map(etcd2).unwrap_or_default(),
            flannel: coreos_section("flannel").map(flannel).unwrap_or_default(),
            fleet: coreos_section("fleet").map(fleet).unwrap_or_default(),
            oem: coreos_section("oem").map(oem).unwrap_or_default(),
        },
    })
}

fn user(m: &Node) -> User {
    User {
        name: string(m, "name").unwrap_or_default(),
        passwd: string(m, "passwd"),
        ssh_authorized_keys: strings(m, "ssh_authorized_keys"),
        gecos: string(m, "gecos"),
        homedir: string(m, "homedir"),
        no_create_home: boolean(m, "no_create_home"),
        primary_group: string(m, "primary_group"),
        groups: strings(m, "groups"),
        no_user_group: boolean(m, "no_user_group"),
        system: boolean(m, "system"),
        no_log_init: boolean(m, "no_log_init"),
        shell: string(m, "shell"),
    }
}

fn write_file(m: &Node) -> Result<WriteFile, BuildError> {
    let raw = m.get("content").and_then(Node::scalar);
    let encoding = string(m, "encoding").unwrap_or_default();
    let content = decode_content(raw.map_or(&[][..], |s| s.bytes()), &encoding).map_err(|e| {
        (
            m.line,
            format!("content cannot be decoded as {encoding:?}: {e:?}"),
        )
    })?;
    let permissions = match string(m, "permissions") {
        None => None,
        Some(p) => Some(FileMode(u32::from_str_radix(&p, 8).map_err(|_| {
            (m.line, format!("permissions {p:?} are not an octal mode"))
        })?)),
    };
    Ok(WriteFile {
        path: string(m, "path").unwrap_or_default(),
        content,
        owner: string(m, "owner"),
        permissions,
    })
}

fn unit(m: &Node) -> Result<Unit, BuildError> {
    let command = match string(m, "command") {
        None => None,
        Some(c) => {
            Some(UnitCommand::from_name(&c).ok_or_else(|| (m.line, format!("invalid value {c}")))?)
        }
    };
    Ok(Unit {
        name: string(m, "name").unwrap_or_default(),
        command,
        enable: boolean(m, "enable"),
        runtime: boolean(m, "runtime"),
        mask: boolean(m, "mask"),
        content: string(m, "content"),
        drop_ins: maps(m, "drop_ins")
            .map(|d| DropIn {
                name: string(d, "name").unwrap_or_default(),
                content: string(d, "content").unwrap_or_default(),
            })
            .collect(),
    })
}

fn update(m: &Node) -> Result<Update, BuildError> {
    let reboot_strategy = match string(m, "reboot_strategy") {
        None => None,
        Some(s) => Some(
            CLOUD_CONFIG_STRATEGIES
                .into_iter()
                .find(|r| r.as_str() == s)
                .ok_or_else(|| (m.line, format!("invalid value {s}")))?,
        ),
    };
    Ok(Update {
        reboot_strategy,
        group: string(m, "group"),
        server: string(m, "server"),
    })
}

fn locksmith(m: &Node) -> Locksmith {
    Locksmith {
        endpoint: string(m, "endpoint"),
        etcd_cafile: string(m, "etcd_cafile"),
        etcd_certfile: string(m, "etcd_certfile"),
        etcd_keyfile: string(m, "etcd_keyfile"),
        etcd_username: string(m, "etcd_username"),
        etcd_password: string(m, "etcd_password"),
        group: string(m, "group"),
        window_start: string(m, "window_start"),
        window_length: string(m, "window_length"),
    }
}

fn etcd2(m: &Node) -> Etcd2 {
    let mut options = BTreeMap::new();
    for e in m.entries() {
        let Some(s) = e.value.scalar() else { continue };
        let known = schema::field(schema::ETCD2, &e.key).map(|f| f.ty);
        if let Some(v) = typed_text(known, s) {
            options.insert(e.key.clone(), v);
        }
    }
    Etcd2 { options }
}

/// A scalar as upstream's typed field held it and `%v` printed it; `None` for a zero value or
/// a value of the wrong type. Unknown keys (`None`) keep their text.
fn typed_text(ty: Option<Ty>, s: &Scalar) -> Option<String> {
    match (ty, s.kind) {
        (Some(Ty::Bool), ScalarKind::Bool(b)) => b.then(|| "true".to_string()),
        (Some(Ty::Bool), _) => None,
        (Some(Ty::Int), ScalarKind::Int(i)) => (i != 0).then(|| i.to_string()),
        // go-yaml truncated floats given for integer fields.
        (Some(Ty::Int), ScalarKind::Float(f)) => {
            let i = f.trunc() as i64;
            (i != 0).then(|| i.to_string())
        }
        (Some(Ty::Int), _) => None,
        (Some(Ty::Float), ScalarKind::Int(i)) => (i != 0).then(|| go_float(i as f64)),
        (Some(Ty::Float), ScalarKind::Float(f)) => (f != 0.0).then(|| go_float(f)),
        (Some(Ty::Float), _) => None,
        _ => Some(s.text().into_owned()).filter(|t| !t.is_empty()),
    }
}

/// Go's `%v` of a float64 (`strconv`'s shortest `'g'`): the shortest digits, in exponent form
/// (`1e+06`, `1.5e-05`) when the decimal exponent is below -4 or at least 6.
pub(crate) fn go_float(f: f64) -> String {
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..6).contains(&exp) {
        return format!("{f}");
    }
    let sign = if exp < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exp.abs())
}

fn flannel(m: &Node) -> Flannel {
    Flannel {
        etcd_endpoints: string(m, "etcd_endpoints"),
        etcd_cafile: string(m, "etcd_cafile"),
        etcd_certfile: string(m, "etcd_certfile"),
        etcd_keyfile: string(m, "etcd_keyfile"),
        etcd_prefix: string(m, "etcd_prefix"),
        etcd_username: string(m, "etcd_username"),
        etcd_password: string(m, "etcd_password"),
        ip_masq: string(m, "ip_masq"),
        subnet_file: string(m, "subnet_file"),
        interface: string(m, "interface"),
        public_ip: string(m, "public_ip"),
    }
}

fn fleet(m: &Node) -> Fleet {
    let environment = schema::FLEET
        .iter()
        .filter_map(|f| {
            let s = m.get(f.name)?.scalar()?;
            let v = typed_text(Some(f.ty), s)?;
            Some((format!("FLEET_{}", f.name.to_ascii_uppercase()), v))
        })
        .collect();
    Fleet { environment }
}

fn oem(m: &Node) -> Oem {
    Oem {
        id: string(m, "id"),
        name: string(m, "name"),
        version_id: string(m, "version_id"),
        home_url: string(m, "home_url"),
        bug_report_url: string(m, "bug_report_url"),
    }
}

/// A mapping-valued key.
fn section<'a>(m: &'a Node, key: &str) -> Option<&'a Node> {
    m.get(key).filter(|n| matches!(n.value, Value::Map(_)))
}

/// A string key: the literal text of any scalar; empty counts as absent.
fn string(m: &Node, key: &str) -> Option<String> {
    let s = m.get(key)?.scalar()?;
    Some(s.text().into_owned()).filter(|t| !t.is_empty())
}

/// A boolean key: only YAML 1.1 booleans count, anything else is false.
fn boolean(m: &Node, key: &str) -> bool {
    let kind = m.get(key).and_then(Node::scalar).map(|s| s.kind);
    matches!(kind, Some(ScalarKind::Bool(true)))
}

/// A list-of-strings key: the scalar items (go-yaml dropped items of another type).
fn strings(m: &Node, key: &str) -> Vec<String> {
    match m.get(key).map(|n| &n.value) {
        Some(Value::Seq(items)) => items
            .iter()
            .filter_map(|n| n.scalar())
            .map(|s| s.text().into_owned())
            .collect(),
        _ => Vec::new(),
    }
}

/// A list-of-structs key: the mapping items.
fn maps<'a>(m: &'a Node, key: &str) -> impl Iterator<Item = &'a Node> {
    let items = match m.get(key).map(|n| &n.value) {
        Some(Value::Seq(items)) => items.as_slice(),
        _ => &[],
    };
    items
        .iter()
        .map(|n| &**n)
        .filter(|n| matches!(n.value, Value::Map(_)))
}
