//! The cloud-config validator: coreos-cloudinit's `config/validate` rules (RULES.md, "The rules")
//! over the node tree of [`super::yaml`], reporting `(line, kind, message)` entries.
//!
//! Run against upstream's own test suite (`cloudconfig/tests/data/cloud-config/cases.json`) it
//! gives the same sorted `(line, kind)` pairs for every upstream assertion. Deliberate
//! differences, each listed in `cloudconfig/tests/cases.rs` where it shows in the computed
//! expectations:
//! - **Line numbers come from the parser.** Upstream scanned the text for the first line looking
//!   like `KEY:` after the parent's line, which picks look-alike lines inside block scalars and
//!   gives line 0 for keys written in flow or quoted style (`{"ignitionVersion":0}`).
//! - **YAML syntax errors** carry the line where the problem is. go-yaml v1 printed libyaml's
//!   0-based line for errors found at a character (a tab on line 2 was "line 1") and no line at
//!   all on line 1 (upstream then used 1); messages are worded by `granit-parser`.
//! - **No spurious warning after a syntax error**: upstream then ran the rules on an empty tree
//!   and added `line 0: warning: incorrect type for "" (want struct)`.
//! - **`content cannot be decoded`** for an entry without `content` is reported on the entry's
//!   line (upstream: line 0); a corrupt gzip *body* is an error too (upstream only checked the
//!   header).
//! - **`/usr` prefix**: `file cannot be written to a read-only filesystem` is reported for a
//!   parent directory equal to `/usr` or under `/usr/`; upstream's plain string prefix also hit
//!   `/usrlocal/x`.
//! - **[`Rule::NotShipped`] is ours**: Container Linux units this OS does not ship (fleet,
//!   flanneld, rkt, locksmithd...) that a config starts, enables or gives drop-ins without their
//!   content are warned about on the unit's `name` line, Container Linux's etcd2 unit names get
//!   an info saying they are `etcd.service` here, and `coreos.flannel` gets a warning (flanneld
//!   is not shipped). Upstream's suite shows it only on the two `coreos.flannel` cases.
//! - **[`Rule::UpdateValues`] is ours**: `coreos.update` / `coreos.locksmith` values upstream's
//!   patterns accept but the update engine cannot use are errors (`window_length: 1d` and
//!   `0d` in upstream's suite; also `-1h`, `0`, a `server` that is no http(s) URL, a `group`
//!   that is no channel name).
//! - **Values upstream crashed on** (`permissions: [1]`, a mapping as `command`, a null
//!   `reboot_strategy`...) only get the type warning; upstream's validator panicked and
//!   coreos-cloudinit printed "Failed while validating user_data".

use std::fmt;

use contract::update_conf::{self, keys};

use super::decode::decode_content;
use super::schema::{self, Field, Ty};
use super::yaml::{Node, ScalarKind, Value, YamlError};

/// How serious an [`Entry`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// The config would not work: invalid values, unreadable YAML, files under `/usr`.
    Error,
    /// Probably a mistake: unknown keys, wrong types (the value is then ignored), deprecations.
    Warning,
    /// Worth knowing.
    Info,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Error => "error",
            Kind::Warning => "warning",
            Kind::Info => "info",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One finding: 1-based line of the user-data (0 only when no line applies), kind, message.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Entry {
    pub line: usize,
    pub kind: Kind,
    pub message: String,
}

impl fmt::Display for Entry {
    /// `line N: KIND: MESSAGE`, upstream's `Entry.String()`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}: {}", self.line, self.kind, self.message)
    }
}

/// The findings of a validation, ordered by line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    entries: Vec<Entry>,
}

impl Report {
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether any entry is an [`Kind::Error`].
    pub fn has_errors(&self) -> bool {
        self.entries.iter().any(|e| e.kind == Kind::Error)
    }

    pub(crate) fn push(&mut self, line: usize, kind: Kind, message: impl Into<String>) {
        self.entries.push(Entry {
            line,
            kind,
            message: message.into(),
        });
    }

    pub(crate) fn yaml_error(e: YamlError) -> Report {
        let mut r = Report::default();
        r.push(e.line, Kind::Error, e.message);
        r
    }

    /// Stable sort by line: rules keep their order within a line.
    fn sort(&mut self) {
        self.entries.sort_by_key(|e| e.line);
    }
}

/// The checks, in the order upstream runs them (`config/validate/rules.go`, `Rules`), then this
/// OS's own ([`Rule::NotShipped`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// `coreos.etcd.discovery` must be a request URI (warning).
    DiscoveryUrl,
    /// `write_files[].content` must decode with its `encoding` (error).
    Encoding,
    /// Keys must be known and values of the right type; deprecated keys (warnings).
    Structure,
    /// Enumerated and patterned values (errors).
    Validity,
    /// No file under `/usr` (error).
    WriteFiles,
    /// `coreos.write_files` is misplaced (info).
    WriteFilesUnderCoreos,
    /// Not upstream's: `coreos.units[]` that start, enable or configure a Container Linux unit
    /// this OS does not ship, without giving its content (warning), or one it ships under
    /// another name (info); `coreos.flannel`, whose daemon it does not ship (warning). The
    /// table is [`crate::CONTAINER_LINUX_UNITS`].
    NotShipped,
    /// Not upstream's: `write_files[].path` with a `..` component or naming no file, and
    /// `coreos.units[]` / `drop_ins[]` names that are not file names ([`crate::names`]): the
    /// agent refuses these actions, so the validator says so first (error).
    Names,
    /// Not upstream's: `coreos.update` and `coreos.locksmith` values that upstream's patterns
    /// let through but the update engine cannot use (`window_length: -1h`, `0`, `1d`; a
    /// `window_start` and `window_length` that make no window; `server: ftp://x`; a `group`
    /// that is no channel name; `endpoint: unix:///x`), by `contract::update_conf`'s rules, the
    /// engine's own (error). A value upstream's pattern refuses already is not reported twice.
    UpdateValues,
}

impl Rule {
    pub const ALL: [Rule; 9] = [
        Rule::DiscoveryUrl,
        Rule::Encoding,
        Rule::Structure,
        Rule::Validity,
        Rule::WriteFiles,
        Rule::WriteFilesUnderCoreos,
        Rule::NotShipped,
        Rule::Names,
        Rule::UpdateValues,
    ];

    fn check(self, root: &Node, report: &mut Report) {
        match self {
            Rule::DiscoveryUrl => check_discovery_url(root, report),
            Rule::Encoding => check_encoding(root, report),
            Rule::Structure => check_fields(root, schema::CLOUD_CONFIG, report),
            Rule::Validity => validity_fields(root, schema::CLOUD_CONFIG, report),
            Rule::WriteFiles => check_write_files(root, report),
            Rule::WriteFilesUnderCoreos => check_write_files_under_coreos(root, report),
            Rule::NotShipped => check_not_shipped(root, report),
            Rule::Names => check_names(root, report),
            Rule::UpdateValues => check_update_values(root, report),
        }
    }
}

/// Runs `rules` over a parsed document (`None`: no document, nothing to check). A root that is
/// not a mapping counts as an empty one, as upstream (silently) did.
pub(crate) fn run_rules(root: Option<&Node>, rules: &[Rule]) -> Report {
    let mut report = Report::default();
    if let Some(root) = root {
        for rule in Rule::ALL.iter().filter(|r| rules.contains(r)) {
            rule.check(root, &mut report);
        }
    }
    report.sort();
    report
}

fn check_fields(map: &Node, fields: &'static [Field], report: &mut Report) {
    for e in map.entries() {
        let Some(field) = schema::field(fields, &e.key) else {
            report.push(
                e.line,
                Kind::Warning,
                format!("unrecognized key {:?}", e.key),
            );
            continue;
        };
        if let Some(why) = field.deprecated {
            let msg = format!("deprecated key {:?} ({why})", e.key);
            report.push(e.line, Kind::Warning, msg);
        }
        check_node(&e.key, e.line, &e.value, field.ty, report);
    }
}

fn check_node(name: &str, line: usize, node: &Node, ty: Ty, report: &mut Report) {
    if !compatible(node, ty) {
        let msg = format!("incorrect type for {name:?} (want {})", ty.human());
        report.push(line, Kind::Warning, msg);
        return;
    }
    let item_ty = match ty {
        Ty::Struct(fields) => return check_fields(node, fields, report),
        Ty::StrList => Ty::Str,
        Ty::StructList(fields) => Ty::Struct(fields),
        Ty::Str | Ty::Int | Ty::Bool | Ty::Float => return,
    };
    for (i, item) in node.children().enumerate() {
        check_node(&format!("{name}[{i}]"), item.line, item, item_ty, report);
    }
}

/// upstream's `isCompatible`: strings take any scalar, floats take integers, nothing takes null.
fn compatible(node: &Node, ty: Ty) -> bool {
    match (&node.value, ty) {
        (Value::Scalar(_), Ty::Str) => true,
        (Value::Scalar(s), Ty::Int) => matches!(s.kind, ScalarKind::Int(_)),
        (Value::Scalar(s), Ty::Float) => {
            matches!(s.kind, ScalarKind::Int(_) | ScalarKind::Float(_))
        }
        (Value::Scalar(s), Ty::Bool) => matches!(s.kind, ScalarKind::Bool(_)),
        (Value::Map(_), Ty::Struct(_)) => true,
        (Value::Seq(_), Ty::StrList | Ty::StructList(_)) => true,
        _ => false,
    }
}

/// upstream's `checkNodeValidity`: it descends whatever the types (a mapping given for a list is
/// walked through its values).
fn validity_fields(map: &Node, fields: &'static [Field], report: &mut Report) {
    for e in map.entries() {
        if let Some(field) = schema::field(fields, &e.key) {
            validity_node(e.line, &e.value, field, report);
        }
    }
}

fn validity_node(line: usize, node: &Node, field: &Field, report: &mut Report) {
    if let (Some(valid), Some(s)) = (field.valid, node.scalar()) {
        let text = s.text();
        if !valid.accepts(&text) {
            report.push(line, Kind::Error, format!("invalid value {text}"));
        }
    }
    match field.ty {
        Ty::Struct(fields) => validity_fields(node, fields, report),
        Ty::StructList(fields) => {
            for item in node.children() {
                validity_fields(item, fields, report);
            }
        }
        _ => {}
    }
}

fn check_encoding(root: &Node, report: &mut Report) {
    let Some(files) = root.get("write_files") else {
        return;
    };
    for file in files.children() {
        let Some(encoding) = file.get("encoding").and_then(Node::scalar) else {
            continue;
        };
        let encoding = encoding.text();
        let content = file.entry("content");
        let line = content.map_or(file.line, |c| c.line);
        // Without a scalar content upstream decoded reflect's "<invalid Value>" text: an error
        // for every encoding but "".
        let decoded = match content.and_then(|c| c.value.scalar()) {
            Some(c) => decode_content(c.bytes(), &encoding).is_ok(),
            None => encoding.is_empty(),
        };
        if !decoded {
            let msg = format!("content cannot be decoded as {encoding:?}");
            report.push(line, Kind::Error, msg);
        }
    }
}

fn check_write_files(root: &Node, report: &mut Report) {
    let Some(files) = root.get("write_files") else {
        return;
    };
    for file in files.children() {
        let Some(path) = file.entry("path") else {
            continue;
        };
        let Some(p) = path.value.scalar() else {
            continue;
        };
        let dir = go_path_dir(&p.text());
        if dir == "/usr" || dir.starts_with("/usr/") {
            let msg = "file cannot be written to a read-only filesystem";
            report.push(path.line, Kind::Error, msg);
        }
    }
}

fn check_names(root: &Node, report: &mut Report) {
    let text = |n: &Node| n.scalar().map(|s| s.text().into_owned());
    for file in root.get("write_files").into_iter().flat_map(Node::children) {
        let Some(e) = file.entry("path") else {
            continue;
        };
        if let Some(why) = text(&e.value).and_then(|p| crate::names::write_path_problem(&p)) {
            report.push(
                e.line,
                Kind::Error,
                format!("path {why}: the file would not be written"),
            );
        }
    }
    let units = root.get("coreos").and_then(|c| c.get("units"));
    for unit in units.into_iter().flat_map(Node::children) {
        if let Some(e) = unit.entry("name") {
            if let Some(why) = text(&e.value).and_then(|n| crate::names::unit_name_problem(&n)) {
                report.push(
                    e.line,
                    Kind::Error,
                    format!("unit name {why}: the unit would be skipped"),
                );
            }
        }
        for d in unit.get("drop_ins").into_iter().flat_map(Node::children) {
            if let Some(e) = d.entry("name") {
                if let Some(why) =
                    text(&e.value).and_then(|n| crate::names::drop_in_name_problem(&n))
                {
                    report.push(
                        e.line,
                        Kind::Error,
                        format!("drop-in name {why}: the drop-in would be skipped"),
                    );
                }
            }
        }
    }
}

/// The `coreos.update` and `coreos.locksmith` keys and the `update.conf` keys the agent writes
/// them to (the model's `environment()`s; a test holds the two together).
pub(crate) const UPDATE_CONF_FIELDS: [(&str, &str, &str); 12] = [
    ("update", "reboot_strategy", keys::REBOOT_STRATEGY),
    ("update", "group", keys::GROUP),
    ("update", "server", keys::SERVER),
    ("locksmith", "endpoint", keys::LOCKSMITHD_ENDPOINT),
    ("locksmith", "etcd_cafile", keys::LOCKSMITHD_ETCD_CAFILE),
    ("locksmith", "etcd_certfile", keys::LOCKSMITHD_ETCD_CERTFILE),
    ("locksmith", "etcd_keyfile", keys::LOCKSMITHD_ETCD_KEYFILE),
    ("locksmith", "etcd_username", keys::LOCKSMITHD_ETCD_USERNAME),
    ("locksmith", "etcd_password", keys::LOCKSMITHD_ETCD_PASSWORD),
    ("locksmith", "group", keys::LOCKSMITHD_GROUP),
    ("locksmith", "window_start", keys::REBOOT_WINDOW_START),
    ("locksmith", "window_length", keys::REBOOT_WINDOW_LENGTH),
];

fn check_update_values(root: &Node, report: &mut Report) {
    let Some(coreos) = root.get("coreos") else {
        return;
    };
    let mut push = |line: usize, text: &str, bad: update_conf::BadValue| {
        let msg = format!(
            "invalid value {text}: expected {}; the update engine cannot use {}={text:?}",
            bad.expected, bad.key
        );
        report.push(line, Kind::Error, msg);
    };
    // The window's start and length as the agent writes them, (line, key, value), if usable.
    let mut window = Vec::new();
    for (section, name, key) in UPDATE_CONF_FIELDS {
        let Some(e) = coreos.get(section).and_then(|s| s.entry(name)) else {
            continue;
        };
        // Other types are the structure rule's warning (and ignored); empty is unset.
        let Some(text) = e.value.scalar().map(|s| s.text().into_owned()) else {
            continue;
        };
        let upstream = coreos_field(section, name).and_then(|f| f.valid);
        if text.is_empty() || upstream.is_some_and(|v| !v.accepts(&text)) {
            continue;
        }
        match update_conf::check_value(key, &text) {
            Err(bad) => push(e.line, &text, bad),
            Ok(()) if section == "locksmith" && name.starts_with("window_") => {
                window.push((e.line, key, text))
            }
            Ok(()) => {}
        }
    }
    // Each is fine alone; together a daily window must be shorter than a day. (One alone may
    // meet its other half in another update.conf on the machine: the engine says so there.)
    if let [(start_line, start_key, start), (length_line, length_key, length)] = &window[..] {
        let pair = update_conf::reboot_window(
            Some((start_key, start.as_str())),
            Some((length_key, length.as_str())),
        );
        if let Err(bad) = pair {
            let (line, text) = if bad.key == *start_key {
                (*start_line, start)
            } else {
                (*length_line, length)
            };
            push(line, text, bad);
        }
    }
}

/// A key of a section of `coreos` in the schema.
fn coreos_field(section: &str, name: &str) -> Option<&'static Field> {
    let Ty::Struct(coreos) = schema::field(schema::CLOUD_CONFIG, "coreos")?.ty else {
        return None;
    };
    let Ty::Struct(fields) = schema::field(coreos, section)?.ty else {
        return None;
    };
    schema::field(fields, name)
}

fn check_write_files_under_coreos(root: &Node, report: &mut Report) {
    let misplaced = root.get("coreos").and_then(|c| c.entry("write_files"));
    if let Some(e) = misplaced.filter(|e| !e.value.is_null()) {
        let msg = "write_files doesn't belong under coreos";
        report.push(e.line, Kind::Info, msg);
    }
}

/// `coreos.flannel` configures a daemon this OS does not ship: its unit, and what the agent
/// still writes. (`coreos.fleet` has upstream's deprecation warning, which says as much.)
const FLANNEL_SECTION: (&str, &str) = (
    "flanneld.service",
    "/run/flannel/options.env is still written",
);

fn check_not_shipped(root: &Node, report: &mut Report) {
    let Some(coreos) = root.get("coreos") else {
        return;
    };
    let units: Vec<&Node> = coreos
        .get("units")
        .map(|u| u.children().collect())
        .unwrap_or_default();
    let text = |n: &Node, key: &str| {
        n.get(key)
            .and_then(Node::scalar)
            .map(|s| s.text().into_owned())
            .filter(|t| !t.is_empty())
    };
    let provided: Vec<String> = units
        .iter()
        .filter(|u| text(u, "content").is_some())
        .filter_map(|u| text(u, "name"))
        .collect();
    let (unit, still) = FLANNEL_SECTION;
    let flannel = coreos
        .entry("flannel")
        .filter(|e| !e.value.entries().is_empty());
    if let (Some(e), Some(absent)) = (flannel, crate::not_shipped(unit)) {
        if !provided.iter().any(|p| p == unit) {
            let msg = format!("coreos.flannel: {absent}; {still}");
            report.push(e.line, Kind::Warning, msg);
        }
    }
    for u in units {
        let (Some(name), Some(line)) = (text(u, "name"), u.entry("name").map(|e| e.line)) else {
            continue;
        };
        let enables = matches!(
            u.get("enable").and_then(Node::scalar).map(|s| s.kind),
            Some(ScalarKind::Bool(true))
        );
        let drop_ins = u
            .get("drop_ins")
            .is_some_and(|d| d.children().next().is_some());
        let acts = text(u, "command").is_some() || enables || drop_ins;
        if provided.contains(&name) || !acts {
            continue;
        }
        if let Some(absent) = crate::not_shipped(&name) {
            report.push(line, Kind::Warning, absent);
        } else if let Some(crate::Fate::Renamed(ours)) = crate::container_linux_unit(&name) {
            let msg = format!(
                "{name} is {ours} on this OS: its command, enable and drop-ins apply to {ours}"
            );
            report.push(line, Kind::Info, msg);
        }
    }
}

fn check_discovery_url(root: &Node, report: &mut Report) {
    let entry = root
        .get("coreos")
        .and_then(|c| c.get("etcd"))
        .and_then(|e| e.entry("discovery"))
        .filter(|e| !e.value.is_null());
    if let Some(e) = entry {
        let ok = e.value.scalar().is_some_and(|s| is_request_uri(&s.text()));
        if !ok {
            report.push(e.line, Kind::Warning, "discovery URL is not valid");
        }
    }
}

/// Go's `path.Dir`: everything before the last `/`, lexically cleaned.
fn go_path_dir(p: &str) -> String {
    let dir = p.rfind('/').map_or("", |i| &p[..=i]);
    go_path_clean(dir)
}

/// Go's `path.Clean`.
fn go_path_clean(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let rooted = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for comp in p.split('/') {
        match comp {
            "" | "." => {}
            ".." if parts.last().is_some_and(|l| *l != "..") => {
                parts.pop();
            }
            ".." if rooted => {}
            c => parts.push(c),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

/// Whether Go's `url.ParseRequestURI` accepts `raw`: an absolute URI (`scheme:opaque` or
/// `scheme://authority/path`), an absolute path, or `*`; valid `%` escapes, a numeric port, no
/// control characters, only host characters Go allows.
fn is_request_uri(raw: &str) -> bool {
    if raw.is_empty() || raw.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return false;
    }
    if raw == "*" {
        return true;
    }
    let Some((scheme, rest)) = split_scheme(raw) else {
        return false;
    };
    let rest = match rest.strip_suffix('?') {
        Some(r) if !r.contains('?') => r,
        _ => rest.split_once('?').map_or(rest, |(r, _)| r),
    };
    if !rest.starts_with('/') {
        return !scheme.is_empty();
    }
    let path = match rest.strip_prefix("//").filter(|_| !scheme.is_empty()) {
        Some(after) => {
            let (authority, path) = after.find('/').map_or((after, ""), |i| after.split_at(i));
            if !valid_authority(authority) {
                return false;
            }
            path
        }
        None => rest,
    };
    valid_escapes(path)
}

/// Go's `getScheme`: `None` for a leading `:`.
fn split_scheme(raw: &str) -> Option<(&str, &str)> {
    for (i, c) in raw.bytes().enumerate() {
        match c {
            b'a'..=b'z' | b'A'..=b'Z' => {}
            b'0'..=b'9' | b'+' | b'-' | b'.' if i > 0 => {}
            b':' if i == 0 => return None,
            b':' => return Some((&raw[..i], &raw[i + 1..])),
            _ => return Some(("", raw)),
        }
    }
    Some(("", raw))
}

fn valid_authority(authority: &str) -> bool {
    let (userinfo, host) = match authority.rfind('@') {
        Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
        None => (None, authority),
    };
    let userinfo_ok = userinfo.is_none_or(|u| {
        u.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"-._:~!$&'()*+,;=%@".contains(&c))
            && valid_escapes(u)
    });
    userinfo_ok && valid_host(host)
}

fn valid_host(host: &str) -> bool {
    let port = if host.starts_with('[') {
        match host.rfind(']') {
            Some(i) => &host[i + 1..],
            None => return false,
        }
    } else {
        host.rfind(':').map_or("", |i| &host[i..])
    };
    let port_ok = port.is_empty()
        || port
            .strip_prefix(':')
            .is_some_and(|d| d.bytes().all(|b| b.is_ascii_digit()));
    let chars_ok = host
        .bytes()
        .all(|c| c >= 0x80 || c.is_ascii_alphanumeric() || b"-_.~!$&'()*+,;=:[]<>\"%".contains(&c));
    port_ok && chars_ok && valid_escapes(host)
}

/// Every `%` is followed by two hex digits.
fn valid_escapes(s: &str) -> bool {
    let b = s.as_bytes();
    b.iter().enumerate().all(|(i, c)| {
        *c != b'%'
            || (b.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_dir_as_go() {
        for (p, want) in [
            ("/usr/invalid", "/usr"),
            ("/tmp/../usr/invalid", "/usr"),
            ("/usr", "/"),
            ("/tmp/usr/valid", "/tmp/usr"),
            ("relative", "."),
            ("a/b/../../../c", ".."),
            ("//usr//x", "/usr"),
            ("/..//usr/./x", "/usr"),
        ] {
            assert_eq!(go_path_dir(p), want, "{p}");
        }
    }

    #[test]
    fn request_uris_as_go() {
        for (raw, want) in [
            (
                "https://discovery.etcd.io/00000000000000000000000000000000",
                true,
            ),
            ("http://custom.domain/mytoken", true),
            ("http://[::1]:4001/x", true),
            ("http://user:pw@host:4001/x?y=1", true),
            ("/absolute/path", true),
            ("mailto:someone", true),
            ("*", true),
            ("disco", false),
            ("", false),
            (":foo", false),
            ("http://host:port/", false),
            ("http://[::1/", false),
            ("http://ho st/", false),
            ("http://host/%zz", false),
            ("http://host/a\nb", false),
        ] {
            assert_eq!(is_request_uri(raw), want, "{raw:?}");
        }
    }

    #[test]
    fn entry_display_is_upstreams() {
        let e = Entry {
            line: 3,
            kind: Kind::Error,
            message: "invalid value false".into(),
        };
        assert_eq!(e.to_string(), "line 3: error: invalid value false");
    }
}
