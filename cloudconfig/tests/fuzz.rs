//! Hostile user-data never makes the cloud-config code panic: random bytes, and random documents
//! assembled from YAML and cloud-config fragments (to get past the header and the parser).

use cloudconfig::{Addresses, Kind, UserData};
use proptest::prelude::*;

/// Pieces that reach the deeper paths: keys of the schema, indentation, indicators, tabs, flow
/// collections, anchors/aliases/merges, tags, block scalars, encodings and odd scalars.
const FRAGMENTS: &[&str] = &[
    "\n",
    "\n  ",
    "\n    ",
    "  ",
    "\t",
    "- ",
    "-",
    ": ",
    ":",
    "? ",
    ",",
    "[",
    "]",
    "{",
    "}",
    "'",
    "\"",
    "\\",
    "#",
    "|\n",
    ">-\n",
    "---\n",
    "...\n",
    "&a ",
    "*a",
    "&b ",
    "*b",
    "<<: ",
    "!!binary ",
    "!!int ",
    "!!str ",
    "!!null ",
    "!!merge ",
    "!foo ",
    "~",
    "null",
    "off",
    "yes",
    "0744",
    "0800",
    "1e400",
    "0x",
    "-.inf",
    "coreos",
    "units",
    "drop-ins",
    "drop_ins",
    "write_files",
    "write-files",
    "users",
    "ssh_authorized_keys",
    "groups",
    "hostname",
    "etcd",
    "etcd2",
    "discovery",
    "update",
    "reboot-strategy",
    "locksmith",
    "window-start",
    "name",
    "command",
    "content",
    "encoding",
    "gzip",
    "base64",
    "gz+b64",
    "permissions",
    "path",
    "/usr/x",
    "H4sIABMVh1QAA0tKLAIAqoz/dgMAAAA=",
    "YmFy",
    "$private_ipv4",
    "\\$public_ipv4",
    "%25",
    "http://[::1",
    "é",
    "\u{feff}",
    "\r\n",
];

fn document() -> impl Strategy<Value = String> {
    proptest::collection::vec(proptest::sample::select(FRAGMENTS), 0..60)
        .prop_map(|parts| format!("#cloud-config\n{}", parts.concat()))
}

/// Everything the library offers on one input; each result must be self-consistent.
fn exercise(data: &[u8]) {
    let report = cloudconfig::validate(data);
    for e in report.entries() {
        let _ = e.to_string();
    }
    match cloudconfig::parse(data) {
        Ok(UserData::CloudConfig(c)) => {
            assert!(
                !report.has_errors(),
                "parsed although the validator found errors"
            );
            let _ = (
                c.coreos.etcd2.environment(),
                c.coreos.locksmith.environment(),
            );
        }
        Ok(_) => assert!(report.is_empty()),
        Err(e) => {
            assert!(e.report().entries().iter().any(|x| x.kind == Kind::Error));
            let _ = e.to_string();
        }
    }
    let addrs = Addresses {
        private_ipv4: Some("10.0.0.1".into()),
        ..Addresses::default()
    };
    let _ = cloudconfig::substitute(data, &addrs);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..400)) {
        exercise(&data);
        let mut with_header = b"#cloud-config\n".to_vec();
        with_header.extend_from_slice(&data);
        exercise(&with_header);
    }

    #[test]
    fn random_strings_never_panic(s in "\\PC{0,300}") {
        exercise(s.as_bytes());
        exercise(format!("#cloud-config\n{s}").as_bytes());
    }

    #[test]
    fn random_cloud_configs_never_panic(doc in document()) {
        exercise(doc.as_bytes());
    }
}

/// The fragment generator does reach the rules (a test that cannot fail is a defect): some
/// generated documents parse, and some produce each kind of finding.
#[test]
fn fragments_reach_the_rules() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = document();
    let (mut parsed, mut warnings, mut errors) = (0, 0, 0);
    for _ in 0..3000 {
        let doc = strategy.new_tree(&mut runner).expect("value").current();
        let report = cloudconfig::validate(doc.as_bytes());
        parsed += usize::from(cloudconfig::parse(doc.as_bytes()).is_ok());
        warnings += usize::from(report.entries().iter().any(|e| e.kind == Kind::Warning));
        errors += usize::from(report.has_errors());
    }
    assert!(
        parsed > 0 && warnings > 0 && errors > 0,
        "{parsed} {warnings} {errors}"
    );
}
