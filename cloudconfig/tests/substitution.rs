//! The `$public_ipv4`-style substitution vectors of coreos-cloudinit
//! (`tests/data/cloud-config/substitution_cases.json`: `initialize/env_test.go` plus computed
//! quirks) against `cloudconfig::substitute`.

use std::path::PathBuf;

use cloudconfig::{substitute, Addresses};
use serde_json::Value;

fn vectors() -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/cloud-config/substitution_cases.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("JSON")
}

/// Metadata addresses (`public_ipv4`...) as [`Addresses`].
fn metadata(v: &Value) -> Addresses {
    let get = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    Addresses {
        public_ipv4: get("public_ipv4"),
        private_ipv4: get("private_ipv4"),
        public_ipv6: get("public_ipv6"),
        private_ipv6: get("private_ipv6"),
    }
}

/// `COREOS_*` environment of a vector: an object, or "as above" for the file's default.
fn env(v: &Value, default: &Value) -> Addresses {
    let obj = match v {
        Value::String(s) if s == "as above" => default,
        other => other,
    };
    let vars = obj.as_object().expect("env object");
    Addresses::from_env(
        vars.iter()
            .map(|(k, v)| (k, v.as_str().expect("string").to_string())),
    )
}

fn check(case: &Value, env_addrs: Addresses) {
    let name = case["name"].as_str().expect("name");
    let addrs = metadata(&case["metadata"]).or(env_addrs);
    let input = case["input"].as_str().expect("input");
    let got = String::from_utf8(substitute(input.as_bytes(), &addrs)).expect("UTF-8");
    assert_eq!(got, case["output"].as_str().expect("output"), "{name}");
}

#[test]
fn upstream_vectors() {
    let v = vectors();
    let cases = v["cases"].as_array().expect("cases");
    assert_eq!(cases.len(), 6);
    for case in cases {
        check(case, env(&v["env"], &v["env"]));
    }
}

#[test]
fn computed_quirk_vectors() {
    let v = vectors();
    let cases = v["computed_cases"].as_array().expect("computed_cases");
    assert_eq!(cases.len(), 3);
    for case in cases {
        check(case, env(&case["env"], &v["env"]));
    }
}

#[test]
fn environment_file() {
    let v = vectors();
    let ef = &v["environment_file"];
    let addrs = metadata(&ef["metadata"]);
    let content: String = addrs
        .environment_file_vars()
        .iter()
        .map(|(k, v)| format!("{k}={v}\n"))
        .collect();
    assert_eq!(content, ef["content"].as_str().expect("content"));
    // TestEnvironmentFileNil: nothing known, nothing to write.
    assert!(Addresses::default().environment_file_vars().is_empty());
}
