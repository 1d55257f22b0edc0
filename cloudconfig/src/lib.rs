//! Container Linux `#cloud-config` user-data: classification, the typed model, the validator and
//! the `$private_ipv4`-style substitution, all pure (no IO). The format crate of the config agent
//! (`coreos-cloudinit`) and of `image-builder validate-config`. Behaviour follows coreos-cloudinit
//! at commit f1f0405 (2018), whose validator test suite is kept as data in
//! `cloudconfig/tests/data/cloud-config/` (its `RULES.md` states the rules in plain words).
//!
//! - [`validate()`]: the `coreos-cloudinit --validate` report, `(line, kind, message)` entries;
//! - [`parse`]: user-data → [`UserData`]; a cloud-config must validate without errors (warnings
//!   are allowed: unknown keys and values of the wrong type are then ignored, as upstream did);
//! - [`substitute()`]: `$public_ipv4` & co., applied to the raw bytes before parsing;
//! - [`CONTAINER_LINUX_UNITS`]: the Container Linux units this OS does not ship (with the reason,
//!   written once for the validator and the agent) or ships under another name.
//!
//! Modules (private, their items re-exported here, except [`yaml`]): `yaml` builds the node tree
//! with lines, as go-yaml v1 saw it (public: the agent reads other YAML with it, a NoCloud seed's
//! `meta-data`), and `resolve` types its plain scalars; `schema` is the key schema; `validate`
//! runs the rules over the tree; `model` is the typed config [`parse`] fills; `decode` decodes
//! `write_files` contents; `substitute` replaces the address variables; `shipped` is the table
//! of Container Linux units.
//!
//! User-data is one of: empty; a script (first line starts with `#!`); an Ignition config (JSON
//! with `ignitionVersion` or `ignition.version`, left to an Ignition implementation); a
//! cloud-config (first line, trailing whitespace ignored, is exactly `#cloud-config`). Anything
//! else is refused with `must be "#cloud-config" or begin with "#!"` on line 1.

mod decode;
mod model;
pub mod names;
mod resolve;
mod schema;
mod shipped;
mod substitute;
mod validate;
pub mod yaml;

use std::fmt;

pub use decode::{decode_content, go_base64, DecodeError, MAX_CONTENT_BYTES};
pub use model::{
    CloudConfig, CoreOs, DropIn, Etcd2, FileMode, Flannel, Fleet, Locksmith, Oem, RebootStrategy,
    Unit, UnitCommand, Update, User, WriteFile,
};
pub use shipped::{
    container_linux_unit, not_shipped, template_of, ContainerLinuxUnit, Fate,
    CONTAINER_LINUX_UNITS, ETCD_UNIT,
};
pub use substitute::{substitute, Addresses};
pub use validate::{Entry, Kind, Report, Rule};
pub use yaml::{MAX_DEPTH, MAX_NODES};

/// The header line that makes user-data a cloud-config.
pub const HEADER: &str = "#cloud-config";

/// What user-data turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserData {
    /// Nothing to do.
    Empty,
    /// A `#!` script, to be run as is.
    Script(Vec<u8>),
    /// An Ignition config (JSON), which coreos-cloudinit left alone.
    Ignition(Vec<u8>),
    CloudConfig(Box<CloudConfig>),
}

/// User-data that is not a usable cloud-config; the report lists every finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    report: Report,
}

impl ParseError {
    /// All findings, warnings included; at least one is an error.
    pub fn report(&self) -> &Report {
        &self.report
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let errors: Vec<&Entry> = self
            .report
            .entries()
            .iter()
            .filter(|e| e.kind == Kind::Error)
            .collect();
        write!(f, "invalid cloud-config")?;
        if let Some(first) = errors.first() {
            write!(f, ": {first}")?;
        }
        if errors.len() > 1 {
            write!(f, " (and {} more errors)", errors.len() - 1)?;
        }
        Ok(())
    }
}

impl std::error::Error for ParseError {}

/// Validates user-data as `coreos-cloudinit --validate` did: scripts, Ignition configs and empty
/// input are not checked; a cloud-config is checked with every [`Rule`]; anything else is an error
/// on line 1. Entries are sorted by line.
pub fn validate(user_data: &[u8]) -> Report {
    match classify(user_data) {
        Class::CloudConfig => validate_cloud_config(user_data, &Rule::ALL),
        Class::Unknown => not_user_data(),
        Class::Empty | Class::Script | Class::Ignition => Report::default(),
    }
}

/// Runs `rules` over `text` as a cloud-config, whatever its first line (upstream's
/// `validateCloudConfig`). YAML errors are reported whatever the rules.
pub fn validate_cloud_config(text: &[u8], rules: &[Rule]) -> Report {
    match load(text) {
        Ok(root) => validate::run_rules(root.as_deref(), rules),
        Err(report) => report,
    }
}

/// Parses user-data. A cloud-config that has validation errors is refused; see [`validate()`].
pub fn parse(user_data: &[u8]) -> Result<UserData, ParseError> {
    match classify(user_data) {
        Class::Empty => Ok(UserData::Empty),
        Class::Script => Ok(UserData::Script(user_data.to_vec())),
        Class::Ignition => Ok(UserData::Ignition(user_data.to_vec())),
        Class::Unknown => Err(ParseError {
            report: not_user_data(),
        }),
        Class::CloudConfig => {
            let root = load(user_data).map_err(|report| ParseError { report })?;
            let report = validate::run_rules(root.as_deref(), &Rule::ALL);
            if report.has_errors() {
                return Err(ParseError { report });
            }
            let config = model::build(root.as_deref()).map_err(|(line, message)| {
                let mut report = report.clone();
                report.push(line, Kind::Error, message);
                ParseError { report }
            })?;
            Ok(UserData::CloudConfig(Box::new(config)))
        }
    }
}

/// Whether the first line is the `#cloud-config` header (trailing whitespace allowed).
pub fn is_cloud_config(user_data: &[u8]) -> bool {
    let first = first_line(user_data);
    std::str::from_utf8(first).is_ok_and(|l| l.trim_end() == HEADER)
}

/// Whether user-data is a script (its first line starts with `#!`).
pub fn is_script(user_data: &[u8]) -> bool {
    first_line(user_data).starts_with(b"#!")
}

enum Class {
    Empty,
    Script,
    Ignition,
    CloudConfig,
    Unknown,
}

fn classify(user_data: &[u8]) -> Class {
    if user_data.is_empty() {
        Class::Empty
    } else if is_script(user_data) {
        Class::Script
    } else if is_ignition(user_data) {
        Class::Ignition
    } else if is_cloud_config(user_data) {
        Class::CloudConfig
    } else {
        Class::Unknown
    }
}

fn first_line(data: &[u8]) -> &[u8] {
    data.split(|b| *b == b'\n').next().unwrap_or(data)
}

fn not_user_data() -> Report {
    let mut r = Report::default();
    r.push(
        1,
        Kind::Error,
        r##"must be "#cloud-config" or begin with "#!""##,
    );
    r
}

/// The YAML tree of a cloud-config, or the report of why there is none.
fn load(text: &[u8]) -> Result<Option<std::rc::Rc<yaml::Node>>, Report> {
    let text = std::str::from_utf8(text).map_err(|e| {
        let line = 1 + text[..e.valid_up_to()]
            .iter()
            .filter(|b| **b == b'\n')
            .count();
        let mut r = Report::default();
        r.push(line, Kind::Error, "invalid UTF-8 sequence");
        r
    })?;
    yaml::load(text).map_err(Report::yaml_error)
}

/// upstream's `IsIgnitionConfig`: Go's `encoding/json` into `{ignitionVersion *int; ignition
/// {version *string}}` (field names matched case-insensitively) succeeds and sets a version.
fn is_ignition(user_data: &[u8]) -> bool {
    use serde_json::Value as J;
    let Ok(J::Object(top)) = serde_json::from_slice::<J>(user_data) else {
        return false;
    };
    let mut version = false;
    for (k, v) in &top {
        if k.eq_ignore_ascii_case("ignitionVersion") {
            match v {
                J::Null => {}
                J::Number(n) if n.is_i64() => version = true,
                _ => return false,
            }
        } else if k.eq_ignore_ascii_case("ignition") {
            match v {
                J::Null => {}
                J::Object(inner) => {
                    for (k, v) in inner {
                        if k.eq_ignore_ascii_case("version") {
                            match v {
                                J::Null => {}
                                J::String(_) => version = true,
                                _ => return false,
                            }
                        }
                    }
                }
                _ => return false,
            }
        }
    }
    version
}

#[cfg(test)]
mod tests;
