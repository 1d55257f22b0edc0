//! coreos-cloudinit's own validator test suite (`tests/data/cloud-config/cases.json`, see its
//! README) run against `cloudconfig`.
//!
//! - every upstream assertion (`expect`, for the function the upstream test calls) must give the
//!   same sorted `(line, kind)` pairs, and the same messages except YAML parser wording;
//! - the computed whole-validator expectations (`expect_all_rules`, `expect_validate_with_header`,
//!   `expect_validate`) must match too, except for the differences listed in
//!   [`KNOWN_DIFFERENCES`] — no more, no fewer;
//! - the parsed values upstream asserts (`parse_expect`) must match the typed model.

use std::collections::BTreeSet;
use std::path::PathBuf;

use cloudconfig::{CloudConfig, Report, Rule, UserData};
use serde_json::Value;

/// Where the computed expectations differ, on purpose (see `cloudconfig`'s validate.rs):
/// `(case, variant, why)`.
const KNOWN_DIFFERENCES: &[(&str, &str, &str)] = &[
    (
        "validate_test.go:TestParseCloudConfig#1",
        "all_rules",
        SPURIOUS,
    ),
    (
        "validate_test.go:TestParseCloudConfig#1",
        "with_header",
        SPURIOUS_AND_ZERO_BASED,
    ),
    (
        "validate_test.go:TestParseCloudConfig#2",
        "all_rules",
        SPURIOUS,
    ),
    (
        "validate_test.go:TestParseCloudConfig#2",
        "with_header",
        SPURIOUS,
    ),
    (
        "validate_test.go:TestParseCloudConfig#3",
        "all_rules",
        SPURIOUS,
    ),
    (
        "validate_test.go:TestParseCloudConfig#3",
        "with_header",
        SPURIOUS,
    ),
    (
        "validate_test.go:TestValidate#3",
        "all_rules",
        FLOW_KEY_LINE,
    ),
    (
        "rules_test.go:TestCheckStructure#2",
        "all_rules",
        NO_FLANNEL,
    ),
    (
        "rules_test.go:TestCheckStructure#2",
        "with_header",
        NO_FLANNEL,
    ),
    (
        "rules_test.go:TestCheckStructure#3",
        "all_rules",
        NO_FLANNEL,
    ),
    (
        "rules_test.go:TestCheckStructure#3",
        "with_header",
        NO_FLANNEL,
    ),
    (
        "validate_test.go:TestValidate#4",
        "all_rules",
        FLOW_KEY_LINE,
    ),
    ("rules_test.go:TestCheckValidity#3", "all_rules", NAMES),
    ("rules_test.go:TestCheckValidity#3", "with_header", NAMES),
    ("rules_test.go:TestCheckWriteFiles#4", "all_rules", NAMES),
    ("rules_test.go:TestCheckWriteFiles#4", "with_header", NAMES),
    (
        "locksmith_test.go:TestRebootWindowLength#1",
        "all_rules",
        UPDATE_VALUES,
    ),
    (
        "locksmith_test.go:TestRebootWindowLength#1",
        "with_header",
        UPDATE_VALUES,
    ),
    (
        "locksmith_test.go:TestRebootWindowLength#2",
        "all_rules",
        UPDATE_VALUES,
    ),
    (
        "locksmith_test.go:TestRebootWindowLength#2",
        "with_header",
        UPDATE_VALUES,
    ),
];

/// This OS's own rule ([`Rule::UpdateValues`]): `window_length: 1d` and `0d` pass upstream's
/// pattern (any lower-case unit), but a Go duration has no `d` and the update engine (like
/// locksmith, which then failed at the machine) cannot use them: errors here, up front.
const UPDATE_VALUES: &str =
    "window lengths upstream's pattern accepts but no engine can use are errors here";

/// This OS's own rule ([`Rule::Names`]): a unit name without a suffix and a `write_files` path
/// with `..` are refused by the agent, so the validator says so first (upstream wrote them).
const NAMES: &str = "unit names and write_files paths the agent refuses are errors here";

const SPURIOUS: &str = "upstream adds `line 0: warning: incorrect type for \"\" (want struct)` \
                        after a YAML syntax error; we do not";
const SPURIOUS_AND_ZERO_BASED: &str = "as above, and go-yaml v1 gave the tab on line 2 as \
                                       `line 1` (libyaml's 0-based line); we say 2";
const NO_FLANNEL: &str = "this OS does not ship flanneld: `coreos.flannel` gets a warning saying \
                          so (`Rule::NotShipped`, ours; upstream's scoped assertions still match)";
const FLOW_KEY_LINE: &str = "the quoted key of `{\"ignitionVersion\":0}` is on line 1; upstream's \
                             text scan for `ignitionVersion:` found no line and said 0";

/// Messages of go-yaml v1 / libyaml: our parser words them differently.
const YAML_LIBRARY_MESSAGES: &[&str] = &[
    "found character that cannot start any token",
    "could not find expected ':'",
];

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/cloud-config")
}

fn cases() -> Vec<Value> {
    let path = data_dir().join("cases.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let cases: Vec<Value> = serde_json::from_str(&text).expect("cases.json is JSON");
    assert_eq!(cases.len(), 160, "the suite has 160 cases");
    cases
}

fn str_field<'a>(case: &'a Value, key: &str) -> &'a str {
    case[key]
        .as_str()
        .unwrap_or_else(|| panic!("case without {key}: {case}"))
}

/// `(line, kind, message)` sorted; messages of the YAML library replaced by a placeholder.
fn normalise_expected(entries: &Value) -> Vec<(u64, String, String)> {
    let mut v: Vec<_> = entries
        .as_array()
        .expect("expectation list")
        .iter()
        .map(|e| {
            let message = str_field(e, "message");
            let message = if YAML_LIBRARY_MESSAGES.contains(&message) {
                "<yaml>".to_string()
            } else {
                message.to_string()
            };
            (
                e["line"].as_u64().expect("line"),
                str_field(e, "kind").to_string(),
                message,
            )
        })
        .collect();
    v.sort();
    v
}

/// Our entries in the same shape; a YAML error is any error whose upstream twin was a library
/// message, recognised by our YAML layer's errors not being rule messages.
fn normalise_got(report: &Report, yaml_error_expected: bool) -> Vec<(u64, String, String)> {
    let mut v: Vec<_> = report
        .entries()
        .iter()
        .map(|e| {
            let yaml = yaml_error_expected && e.kind == cloudconfig::Kind::Error;
            let message = if yaml {
                "<yaml>".to_string()
            } else {
                e.message.clone()
            };
            (e.line as u64, e.kind.to_string(), message)
        })
        .collect();
    v.sort();
    v
}

fn expects_yaml_error(entries: &Value) -> bool {
    entries.as_array().is_some_and(|a| {
        a.iter()
            .any(|e| YAML_LIBRARY_MESSAGES.contains(&str_field(e, "message")))
    })
}

fn compare(report: &Report, expected: &Value) -> Result<(), String> {
    let want = normalise_expected(expected);
    let got = normalise_got(report, expects_yaml_error(expected));
    if got == want {
        Ok(())
    } else {
        Err(format!("want {want:?}\n     got  {got:?}"))
    }
}

/// What the upstream test called, run with our API.
fn run_scope(case: &Value) -> Report {
    let config = str_field(case, "config").as_bytes();
    let one = |rule| cloudconfig::validate_cloud_config(config, &[rule]);
    match str_field(case, "scope") {
        "parseCloudConfig" => cloudconfig::validate_cloud_config(config, &[]),
        "checkDiscoveryUrl" => one(Rule::DiscoveryUrl),
        "checkEncoding" => one(Rule::Encoding),
        "checkStructure" => one(Rule::Structure),
        "checkValidity" => one(Rule::Validity),
        "checkWriteFiles" => one(Rule::WriteFiles),
        "checkWriteFilesUnderCoreos" => one(Rule::WriteFilesUnderCoreos),
        "validateCloudConfig" => cloudconfig::validate_cloud_config(config, &Rule::ALL),
        "Validate" => cloudconfig::validate(config),
        // Upstream injected a panicking rule to test its recover(); there is no such hook here
        // (and nothing panics), so the case runs with the real rules on its (empty) config.
        "validateCloudConfig(custom rules)" => {
            assert_eq!(case["portable"], Value::Bool(false));
            cloudconfig::validate_cloud_config(config, &Rule::ALL)
        }
        other => panic!("unknown scope {other}"),
    }
}

#[test]
fn every_upstream_assertion_matches() {
    let mut failures = Vec::new();
    let cases = cases();
    for case in &cases {
        if let Err(e) = compare(&run_scope(case), &case["expect"]) {
            failures.push(format!("{}:\n     {e}", str_field(case, "name")));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn computed_expectations_match_but_for_the_known_differences() {
    let mut differing = BTreeSet::new();
    let mut details = Vec::new();
    let mut compared = 0;
    for case in &cases() {
        let name = str_field(case, "name");
        let config = str_field(case, "config");
        let mut variants: Vec<(&str, Report, &Value)> = Vec::new();
        if !case["expect_all_rules"].is_null() {
            let r = cloudconfig::validate_cloud_config(config.as_bytes(), &Rule::ALL);
            variants.push(("all_rules", r, &case["expect_all_rules"]));
        }
        if !case["expect_validate_with_header"].is_null() {
            let r = cloudconfig::validate(format!("#cloud-config\n{config}").as_bytes());
            variants.push(("with_header", r, &case["expect_validate_with_header"]));
        }
        if !case["expect_validate"].is_null() {
            let r = cloudconfig::validate(config.as_bytes());
            variants.push(("validate", r, &case["expect_validate"]));
        }
        for (variant, report, expected) in variants {
            compared += 1;
            if let Err(e) = compare(&report, expected) {
                differing.insert((name.to_string(), variant.to_string()));
                details.push(format!("{name} [{variant}]:\n     {e}"));
            }
        }
    }
    let known: BTreeSet<(String, String)> = KNOWN_DIFFERENCES
        .iter()
        .map(|(n, v, _)| (n.to_string(), v.to_string()))
        .collect();
    assert_eq!(
        differing,
        known,
        "differences changed ({compared} comparisons):\n{}",
        details.join("\n")
    );
    assert_eq!(compared, 159 + 138);
}

#[test]
fn parsed_values_match_upstream() {
    let mut checked = 0;
    for case in &cases() {
        let Some(expect) = case.get("parse_expect") else {
            continue;
        };
        let name = str_field(case, "name");
        let config = str_field(case, "config");
        let text = if config.is_empty() || config.starts_with("#cloud-config") {
            config.to_string()
        } else {
            format!("#cloud-config\n{config}")
        };
        let parsed = match cloudconfig::parse(text.as_bytes()) {
            Ok(UserData::CloudConfig(c)) => *c,
            Ok(UserData::Empty) => CloudConfig::default(),
            // reboot-strategy: false is an error, so the whole config is refused (documented in
            // cloudconfig::parse); what upstream stored is still checked below.
            Ok(other) => panic!("{name}: {other:?}"),
            Err(e) => {
                assert_eq!(
                    expect["coreos.update.reboot_strategy"], "false",
                    "{name}: {e}"
                );
                checked += 1;
                continue;
            }
        };
        check_parsed(name, &parsed, expect);
        checked += 1;
    }
    assert_eq!(checked, 21);
}

fn check_parsed(name: &str, c: &CloudConfig, expect: &Value) {
    let obj = expect.as_object().expect("parse_expect is an object");
    for (key, want) in obj {
        match key.as_str() {
            "note" => {}
            "hostname" => assert_eq!(c.hostname.as_deref(), want.as_str(), "{name}"),
            "ssh_authorized_keys" => assert_eq!(&strings(&c.ssh_authorized_keys), want, "{name}"),
            "coreos.update.reboot_strategy" => {
                let got = c.coreos.update.reboot_strategy.map(|s| s.as_str());
                assert_eq!(got, want.as_str(), "{name}");
            }
            "coreos.oem.id" => assert_eq!(c.coreos.oem.id.as_deref(), want.as_str(), "{name}"),
            // etcd v0.4 is deprecated and not modelled; the validator still knows the key.
            "coreos.etcd.discovery" => {}
            "write_files" => check_list(name, key, want, c.write_files.len(), |i, k, v| {
                let f = &c.write_files[i];
                match k {
                    "path" => assert_eq!(f.path, str_of(v)),
                    "content" => assert_eq!(f.content, str_of(v).as_bytes()),
                    "owner" => assert_eq!(f.owner.as_deref(), Some(str_of(v))),
                    // Decoded: the encoding is cleared, as upstream's Decode() did.
                    "encoding" => assert_eq!(str_of(v), ""),
                    "permissions" => {
                        let mode = u32::from_str_radix(str_of(v), 8).expect("octal");
                        assert_eq!(f.permissions.map(|p| p.0), Some(mode));
                    }
                    other => panic!("{name}: write_files key {other}"),
                }
            }),
            "coreos.units" => check_list(name, key, want, c.coreos.units.len(), |i, k, v| {
                let u = &c.coreos.units[i];
                match k {
                    "name" => assert_eq!(u.name, str_of(v)),
                    "runtime" => assert_eq!(Some(u.runtime), v.as_bool()),
                    "content" => assert_eq!(u.content.as_deref(), Some(str_of(v))),
                    other => panic!("{name}: unit key {other}"),
                }
            }),
            "users" => check_list(name, key, want, c.users.len(), |i, k, v| {
                let u = &c.users[i];
                let opt = |o: &Option<String>| assert_eq!(o.as_deref(), Some(str_of(v)), "{k}");
                let flag = |b: bool| assert_eq!(Some(b), v.as_bool(), "{k}");
                match k {
                    "name" => assert_eq!(u.name, str_of(v)),
                    "passwd" => opt(&u.passwd),
                    "gecos" => opt(&u.gecos),
                    "homedir" => opt(&u.homedir),
                    "primary_group" => opt(&u.primary_group),
                    "shell" => opt(&u.shell),
                    "ssh_authorized_keys" => assert_eq!(&strings(&u.ssh_authorized_keys), v),
                    "groups" => assert_eq!(&strings(&u.groups), v),
                    "no_create_home" => flag(u.no_create_home),
                    "no_user_group" => flag(u.no_user_group),
                    "system" => flag(u.system),
                    "no_log_init" => flag(u.no_log_init),
                    // Deprecated remote key imports are not modelled (never fetched).
                    "coreos_ssh_import_github" | "coreos_ssh_import_url" => {}
                    other => panic!("{name}: user key {other}"),
                }
            }),
            other => panic!("{name}: parse_expect key {other} is not checked"),
        }
    }
}

fn check_list(
    name: &str,
    key: &str,
    want: &Value,
    len: usize,
    check: impl Fn(usize, &str, &Value),
) {
    let items = want.as_array().expect("list");
    assert_eq!(len, items.len(), "{name}: {key}");
    for (i, item) in items.iter().enumerate() {
        for (k, v) in item.as_object().expect("object") {
            if k != "note" {
                check(i, k, v);
            }
        }
    }
}

fn str_of(v: &Value) -> &str {
    v.as_str().expect("a string")
}

fn strings(v: &[String]) -> Value {
    Value::from(v.to_vec())
}
