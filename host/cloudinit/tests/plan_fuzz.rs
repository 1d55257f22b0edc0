//! The agent's plan never panics: random documents (fragments, and structured documents with
//! every section the plan reads and odd values) are parsed, and every one that parses is
//! planned with random metadata and its actions printed.

use cloudconfig::{Addresses, UserData};
use cloudinit::apply::apply;
use cloudinit::host::OfflineHost;
use cloudinit::metadata::Metadata;
use cloudinit::plan::{plan_user_data, Action};
use cloudinit::units::UnitFiles;
use proptest::prelude::*;

/// Pieces of the keys the plan reads, with values of many shapes.
const FRAGMENTS: &[&str] = &[
    "\n",
    "\n  ",
    "\n    ",
    "\n      ",
    "- ",
    ": ",
    "[",
    "]",
    "{",
    "}",
    ",",
    "\"",
    "'",
    "|\n",
    "~",
    "\"\"",
    "yes",
    "off",
    "0755",
    "0",
    "-1",
    "hostname",
    "users",
    "name",
    "core",
    "root",
    "passwd",
    "groups",
    "homedir",
    "/home/x",
    "..",
    "/",
    "no_create_home",
    "system",
    "primary_group",
    "shell",
    "gecos",
    "a:b",
    "ssh_authorized_keys",
    "ssh-rsa AAAA",
    "write_files",
    "path",
    "/etc/x",
    "content",
    "encoding",
    "b64",
    "gzip",
    "YmFy",
    "owner",
    "permissions",
    "manage_etc_hosts",
    "localhost",
    "coreos",
    "units",
    "runtime",
    "enable",
    "mask",
    "command",
    "start",
    "reload-or-try-restart",
    "drop_ins",
    "x.service",
    "x.network",
    "x.conf",
    "x@.service",
    "update",
    "reboot_strategy",
    "etcd-lock",
    "group",
    "server",
    "locksmith",
    "window_start",
    "etcd_password",
    "etcd2",
    "discovery",
    "advertise_client_urls",
    "heartbeat_interval",
    "oem",
    "id",
    "%",
    "$private_ipv4",
    "é",
    "\t",
];

fn document() -> impl Strategy<Value = String> {
    proptest::collection::vec(proptest::sample::select(FRAGMENTS), 0..80)
        .prop_map(|parts| format!("#cloud-config\n{}", parts.concat()))
}

/// Values of many shapes for any key.
const SCALARS: &[&str] = &[
    "core",
    "root",
    "x.service",
    "x.network",
    "10-x.conf",
    "x@.service",
    "x@y.service",
    "fleet.service",
    "etcd2.service",
    "absent.service",
    "/etc/x",
    "/usr/x",
    "relative",
    "/home/../x",
    "/",
    "0644",
    "0755",
    "'0600'",
    "420",
    "yes",
    "off",
    "on",
    "true",
    "false",
    "~",
    "''",
    "\"a:b\"",
    "start",
    "stop",
    "reload-or-try-restart",
    "etcd-lock",
    "reboot",
    "b64",
    "base64",
    "gzip",
    "gz+b64",
    "YmFy",
    "H4sIABMVh1QAA0tKLAIAqoz/dgMAAAA=",
    "core:core",
    "1:2",
    "ghost",
    "'%n %%'",
    "'$private_ipv4'",
    "http://10.0.0.1:2379",
    "1h30m",
    "Sun 03:00",
    "-1",
    "0",
    "1e3",
    "é",
    "localhost",
    "'a\\b\"c'",
    "\"line\\nbreak\"",
];
const USER_KEYS: &[&str] = &[
    "passwd",
    "gecos",
    "homedir",
    "no_create_home",
    "primary_group",
    "no_user_group",
    "system",
    "no_log_init",
    "shell",
];
const FILE_KEYS: &[&str] = &["path", "content", "encoding", "owner", "permissions"];
const UNIT_KEYS: &[&str] = &["command", "enable", "runtime", "mask", "content"];
const UPDATE_KEYS: &[&str] = &["group", "server", "reboot_strategy"];
const LOCKSMITH_KEYS: &[&str] = &[
    "endpoint",
    "group",
    "window_start",
    "window_length",
    "etcd_password",
];
const ETCD_KEYS: &[&str] = &[
    "name",
    "discovery",
    "advertise_client_urls",
    "heartbeat_interval",
    "proxy",
];
const OEM_KEYS: &[&str] = &["id", "name", "version_id", "home_url", "bug_report_url"];
const FLANNEL_KEYS: &[&str] = &["interface", "etcd_endpoints", "etcd_password", "ip_masq"];
const FLEET_KEYS: &[&str] = &[
    "public_ip",
    "verbosity",
    "engine_reconcile_interval",
    "disable_engine",
];

fn scalar() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::sample::select(SCALARS).prop_map(str::to_string),
        "[a-zA-Z0-9 ./:_%$@'-]{0,16}".prop_map(|s| format!("'{}'", s.replace('\'', "''"))),
    ]
}

/// `key: value` lines at `indent` for some of `keys`.
fn fields(keys: &'static [&'static str], indent: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec((proptest::sample::select(keys), scalar()), 0..5).prop_map(
        move |kv| {
            kv.iter()
                .map(|(k, v)| format!("{}{k}: {v}\n", " ".repeat(indent)))
                .collect()
        },
    )
}

/// Mostly values the update engine accepts for `key` of `coreos.update` / `coreos.locksmith`,
/// else any scalar: a config with one value the engine cannot use is refused whole, and the
/// planner would rarely see the rest.
fn conf_value(key: &'static str) -> BoxedStrategy<String> {
    let good: &'static [&'static str] = match key {
        "group" => &["beta", "web"],
        "server" => &["http://10.0.0.1:8080/v1"],
        "reboot_strategy" => &["etcd-lock", "reboot", "'off'"],
        "endpoint" => &["http://10.0.0.1:2379"],
        "window_start" => &["Sun 03:00", "'04:00'"],
        "window_length" => &["1h30m", "45m"],
        _ => return scalar().boxed(),
    };
    prop_oneof![
        9 => proptest::sample::select(good).prop_map(str::to_string),
        1 => scalar(),
    ]
    .boxed()
}

/// [`fields`] with [`conf_value`]s.
fn conf_fields(keys: &'static [&'static str], indent: usize) -> impl Strategy<Value = String> {
    let field = proptest::sample::select(keys).prop_flat_map(|k| (Just(k), conf_value(k)));
    proptest::collection::vec(field, 0..5).prop_map(move |kv| {
        kv.iter()
            .map(|(k, v)| format!("{}{k}: {v}\n", " ".repeat(indent)))
            .collect()
    })
}

/// Mostly names the validator accepts for `what` (units: a file name with a suffix; drop-ins:
/// one ending in `.conf`), else any scalar: a config with one bad name is refused whole, and
/// the planner would rarely see units.
fn name(what: &'static str) -> BoxedStrategy<String> {
    let good: &'static [&'static str] = match what {
        "units" => &[
            "x.service",
            "x.network",
            "x@.service",
            "x@y.service",
            "fleet.service",
            "etcd2.service",
            "absent.service",
        ],
        "drop_ins" => &["10-x.conf", "20-y.conf"],
        _ => return scalar().boxed(),
    };
    prop_oneof![
        4 => proptest::sample::select(good).prop_map(str::to_string),
        1 => scalar(),
    ]
    .boxed()
}

/// A list under `key` at `indent` whose items are `name:` plus some of `keys`.
fn items(
    key: &'static str,
    keys: &'static [&'static str],
    indent: usize,
) -> impl Strategy<Value = String> {
    let item = (
        name(key),
        fields(keys, indent + 4),
        proptest::collection::vec(scalar(), 0..3),
        name("drop_ins"),
    );
    proptest::collection::vec(item, 0..4).prop_map(move |list| {
        let pad = " ".repeat(indent);
        let mut out = format!("{pad}{key}:\n");
        for (name, rest, extra, drop_in) in list {
            out.push_str(&format!("{pad}  - name: {name}\n{rest}"));
            if !extra.is_empty() {
                // Lists: groups and keys for users, drop-ins for units.
                out.push_str(&format!("{pad}    groups: [{}]\n", extra.join(", ")));
                out.push_str(&format!(
                    "{pad}    ssh_authorized_keys: [{}]\n",
                    extra.join(", ")
                ));
                out.push_str(&format!(
                    "{pad}    drop_ins:\n{pad}      - name: {drop_in}\n{pad}        content: {}\n",
                    extra[extra.len() - 1]
                ));
            }
        }
        out
    })
}

/// Structured documents: every section the planner reads, with odd values.
fn structured() -> impl Strategy<Value = String> {
    (
        proptest::option::of(scalar()),
        proptest::option::of(scalar()),
        proptest::collection::vec(scalar(), 0..3),
        items("users", USER_KEYS, 0),
        proptest::collection::vec(fields(FILE_KEYS, 4), 0..3),
        items("units", UNIT_KEYS, 2),
        (
            conf_fields(UPDATE_KEYS, 4),
            conf_fields(LOCKSMITH_KEYS, 4),
            fields(ETCD_KEYS, 4),
            fields(OEM_KEYS, 4),
            fields(FLANNEL_KEYS, 4),
            fields(FLEET_KEYS, 4),
        ),
    )
        .prop_map(
            |(
                hostname,
                hosts,
                keys,
                users,
                files,
                units,
                (update, locksmith, etcd, oem, flannel, fleet),
            )| {
                let mut doc = String::from("#cloud-config\n");
                if let Some(h) = hostname {
                    doc.push_str(&format!("hostname: {h}\n"));
                }
                if let Some(h) = hosts {
                    doc.push_str(&format!("manage_etc_hosts: {h}\n"));
                }
                doc.push_str(&format!("ssh_authorized_keys: [{}]\n", keys.join(", ")));
                doc.push_str(&users);
                doc.push_str("write_files:\n");
                for f in files {
                    doc.push_str(&format!("  - path: /etc/f\n{f}"));
                }
                doc.push_str("coreos:\n");
                doc.push_str(&units);
                for (section, body) in [
                    ("update", update),
                    ("locksmith", locksmith),
                    ("etcd2", etcd),
                    ("oem", oem),
                    ("flannel", flannel),
                    ("fleet", fleet),
                ] {
                    doc.push_str(&format!("  {section}:\n{body}"));
                }
                doc
            },
        )
}

fn metadata() -> impl Strategy<Value = Metadata> {
    (
        proptest::option::of("\\PC{0,20}"),
        proptest::collection::vec("\\PC{0,20}", 0..3),
        proptest::option::of("[0-9.]{0,15}"),
    )
        .prop_map(|(hostname, keys, ip)| Metadata {
            hostname,
            ssh_public_keys: keys,
            addresses: Addresses {
                private_ipv4: ip.clone(),
                public_ipv4: ip,
                ..Addresses::default()
            },
            ..Metadata::default()
        })
}

/// The machine the plans are for: some units, not others (so that commands get skipped).
fn unit_files() -> UnitFiles {
    UnitFiles::from_names(["x.service", "x@.service", "etcd.service"])
}

fn exercise(doc: &str, meta: &Metadata) -> Option<Vec<Action>> {
    let data = cloudconfig::substitute(doc.as_bytes(), &meta.addresses);
    let parsed = cloudconfig::parse(&data).ok()?;
    let actions = plan_user_data(&parsed, meta, &unit_files());
    for a in &actions {
        assert!(!a.to_string().is_empty());
    }
    // The plan is a function of its inputs.
    assert_eq!(plan_user_data(&parsed, meta, &unit_files()), actions);
    if let UserData::CloudConfig(_) = parsed {
        Some(actions)
    } else {
        None
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn plan_never_panics(doc in document(), meta in metadata()) {
        exercise(&doc, &meta);
    }

    #[test]
    fn plan_never_panics_on_structured_configs(doc in structured(), meta in metadata()) {
        exercise(&doc, &meta);
    }

    #[test]
    fn plan_never_panics_on_any_bytes(data in proptest::collection::vec(any::<u8>(), 0..300)) {
        let mut with_header = b"#cloud-config\n".to_vec();
        with_header.extend_from_slice(&data);
        for d in [&data, &with_header] {
            if let Ok(parsed) = cloudconfig::parse(d) {
                let _ = plan_user_data(&parsed, &Metadata::default(), &unit_files());
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Applying them under a temporary root (offline) does not panic either, and writes
    /// nothing outside it (paths are taken under the root, `..` refused).
    #[test]
    fn apply_never_panics_on_structured_configs(doc in structured(), meta in metadata()) {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(root.join("etc/passwd"), "root:x:0:0::/root:/bin/sh\ncore:x:500:500::/home/core:/bin/sh\n").unwrap();
        std::fs::write(root.join("etc/group"), "root:x:0:\ncore:x:500:\n").unwrap();
        if let Some(actions) = exercise(&doc, &meta) {
            let failures = apply(&actions, &root, &OfflineHost, &mut |_, _| {});
            prop_assert!(failures <= actions.len());
            let outside: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().filter_map(|e| e.ok()).map(|e| e.file_name()).collect();
            prop_assert_eq!(outside, vec![std::ffi::OsString::from("root")]);
        }
    }
}

/// The structured generator reaches the planner (a test that cannot fail is a defect): its
/// documents parse into plans with every kind of action but scripts.
#[test]
fn structured_documents_reach_the_planner() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let (strategy, meta) = (structured(), Metadata::default());
    let mut kinds = std::collections::BTreeSet::new();
    // Valid documents with every kind of unit entry are rare: 5000 reach them all.
    for _ in 0..5000 {
        let doc = strategy.new_tree(&mut runner).expect("value").current();
        for a in exercise(&doc, &meta).unwrap_or_default() {
            // The variant's name.
            let debug = format!("{a:?}");
            let end = debug.find([' ', '(', '{']).unwrap_or(debug.len());
            kinds.insert(debug[..end].to_string());
        }
    }
    // 15 kinds of action; a script and /etc/environment cannot come from a cloud-config.
    assert_eq!(kinds.len(), 13, "reached: {kinds:?}");
}
