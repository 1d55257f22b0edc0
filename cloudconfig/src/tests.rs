//! Tests of classification, [`parse`] and the model. The validator's own suite (upstream's test
//! cases) is `tests/cases.rs`.

use super::*;

fn config(text: &str) -> CloudConfig {
    match parse(text.as_bytes()) {
        Ok(UserData::CloudConfig(c)) => *c,
        other => panic!("not a valid cloud-config: {other:?}"),
    }
}

fn lines(report: &Report) -> Vec<(usize, Kind)> {
    report.entries().iter().map(|e| (e.line, e.kind)).collect()
}

#[test]
fn classification() {
    assert_eq!(parse(b""), Ok(UserData::Empty));
    assert_eq!(
        parse(b"#!/bin/sh\necho $private_ipv4\n"),
        Ok(UserData::Script(
            b"#!/bin/sh\necho $private_ipv4\n".to_vec()
        ))
    );
    for ign in [
        &br#"{"ignitionVersion":1}"#[..],
        br#"{"ignition":{"version":"2.0.0"}}"#,
        br#" {"IGNITION":{"Version":"3.0.0"}} "#,
    ] {
        assert!(matches!(parse(ign), Ok(UserData::Ignition(_))), "{ign:?}");
    }
    for not_ign in [
        &br#"{"ignitionVersion":"1"}"#[..],
        br#"{"ignitionVersion":1.5}"#,
        br#"{"ignition":{"version":2}}"#,
        br#"{"ignitionVersion":null}"#,
        br#"[{"ignitionVersion":1}]"#,
        b"{}",
    ] {
        let e = parse(not_ign).expect_err("neither ignition nor cloud-config");
        assert_eq!(lines(e.report()), [(1, Kind::Error)], "{not_ign:?}");
    }
    for header in ["#cloud-config", "#cloud-config   ", "#cloud-config\r"] {
        let text = format!("{header}\nhostname: h\n");
        assert_eq!(config(&text).hostname.as_deref(), Some("h"), "{header:?}");
    }
    for bad in [
        " #cloud-config\n",
        "#Cloud-Config\n",
        "\u{feff}#cloud-config\n",
        "\n",
    ] {
        assert!(parse(bad.as_bytes()).is_err(), "{bad:?}");
    }
}

#[test]
fn reboot_strategy_off_stays_the_string_off() {
    for spelling in [
        "reboot-strategy: off",
        "reboot_strategy: off",
        "reboot-strategy: \"off\"",
    ] {
        let c = config(&format!(
            "#cloud-config\ncoreos:\n  update:\n    {spelling}\n"
        ));
        assert_eq!(c.coreos.update.reboot_strategy, Some(RebootStrategy::Off));
        assert_eq!(
            c.coreos.update.environment(),
            [("REBOOT_STRATEGY", "off".to_string())]
        );
    }
    // YAML 1.1 false/no are not "off": errors, so the config is refused.
    for value in ["false", "no", "OFF", "best-effort"] {
        let text = format!("#cloud-config\ncoreos:\n  update:\n    reboot-strategy: {value}\n");
        let e = parse(text.as_bytes()).expect_err(value);
        assert_eq!(lines(e.report()), [(4, Kind::Error)], "{value}");
        assert_eq!(
            e.report().entries()[0].message,
            format!("invalid value {value}")
        );
    }
}

#[test]
fn update_and_locksmith() {
    let c = config(
        "#cloud-config\ncoreos:\n  update:\n    reboot-strategy: etcd-lock\n    group: beta\n    \
         server: https://u.example/v1\n  locksmith:\n    endpoint: http://10.0.0.1:2379\n    \
         group: web\n    window-start: Thu 04:00\n    window-length: 1h\n",
    );
    let u = &c.coreos.update;
    assert_eq!(
        u.reboot_strategy.map(RebootStrategy::as_str),
        Some("etcd-lock")
    );
    assert_eq!(u.group.as_deref(), Some("beta"));
    let env = c.coreos.locksmith.environment();
    assert_eq!(
        env,
        [
            ("LOCKSMITHD_ENDPOINT", "http://10.0.0.1:2379".to_string()),
            ("LOCKSMITHD_GROUP", "web".to_string()),
            ("REBOOT_WINDOW_START", "Thu 04:00".to_string()),
            ("REBOOT_WINDOW_LENGTH", "1h".to_string()),
        ]
    );
}

#[test]
fn units_and_drop_ins() {
    let c = config(
        "#cloud-config
coreos:
  units:
    - name: etcd-member.service
      command: start
      enable: yes
      drop-ins:
        - name: 20-peer.conf
          content: |
            [Service]
            Environment=ETCD_NAME=node1
    - name: 50-eth0.network
      runtime: on
      content: |
        [Match]
        Name=eth0
    - name: docker.socket
      mask: true
      command: stop
    - name: quoted.service
      enable: \"true\"
",
    );
    let units = &c.coreos.units;
    assert_eq!(units.len(), 4);
    assert_eq!(units[0].command, Some(UnitCommand::Start));
    assert!(units[0].enable && !units[0].runtime && !units[0].mask);
    assert_eq!(
        units[0].drop_ins,
        [DropIn {
            name: "20-peer.conf".into(),
            content: "[Service]\nEnvironment=ETCD_NAME=node1\n".into(),
        }]
    );
    assert!(units[1].runtime && units[1].command.is_none());
    assert_eq!(units[1].content.as_deref(), Some("[Match]\nName=eth0\n"));
    assert!(units[2].mask);
    assert_eq!(units[2].command.map(UnitCommand::as_str), Some("stop"));
    // A quoted "true" is a string: a warning, and the flag stays false.
    assert!(!units[3].enable);
    let all = [
        "start",
        "stop",
        "restart",
        "reload",
        "try-restart",
        "reload-or-restart",
        "reload-or-try-restart",
    ];
    for name in all {
        assert_eq!(
            UnitCommand::from_name(name).map(UnitCommand::as_str),
            Some(name)
        );
    }
    assert_eq!(UnitCommand::from_name("tryrestart"), None);
}

#[test]
fn write_files_encodings_and_permissions() {
    // "bar", as in upstream's TestNewCloudConfigDecode.
    let c = config(
        "#cloud-config
write_files:
  - path: /etc/plain
    content: plain
  - path: /etc/b64
    encoding: b64
    content: YmFy
  - path: /etc/gzb64
    encoding: gzip+base64
    permissions: 0600
    owner: core:core
    content: |
      H4sIABMVh1QAA0tKLAIAqoz/dgMAAAA=
  - path: /etc/binary-gzip
    encoding: gzip
    permissions: '0744'
    content: !!binary H4sIABMVh1QAA0tKLAIAqoz/dgMAAAA=
  - path: /etc/decimal-looking
    permissions: 420
",
    );
    let f = &c.write_files;
    assert_eq!(f[0].content, b"plain");
    assert_eq!(f[0].mode(), FileMode::DEFAULT);
    assert_eq!(f[1].content, b"bar");
    assert_eq!(f[2].content, b"bar");
    assert_eq!(f[2].permissions, Some(FileMode(0o600)));
    assert_eq!(f[2].owner.as_deref(), Some("core:core"));
    assert_eq!(f[3].content, b"bar");
    assert_eq!(f[3].mode().to_string(), "0744");
    // Upstream read the text "420" as octal.
    assert_eq!(f[4].permissions, Some(FileMode(0o420)));
    assert!(f[4].content.is_empty());

    for (bad, line) in [
        ("  - path: /usr/share/x\n", 3),
        ("  - path: /x\n    encoding: gzip\n    content: YmFy\n", 5),
        ("  - path: /x\n    encoding: base64\n", 3),
        ("  - path: /x\n    permissions: 0800\n", 4),
    ] {
        let text = format!("#cloud-config\nwrite_files:\n{bad}");
        let e = parse(text.as_bytes()).expect_err(bad);
        assert_eq!(lines(e.report()), [(line, Kind::Error)], "{bad:?}");
    }
}

#[test]
fn users_and_keys() {
    let c = config(
        "#cloud-config
hostname: 4
ssh_authorized_keys:
  - ssh-ed25519 AAAA core@a
  - {not: a key}
users:
  - name: elroy
    passwd: $6$hash
    groups: [sudo, docker]
    ssh-authorized-keys: [ssh-rsa BBBB]
    no-create-home: y
    system: true
    shell: /bin/sh
  - just a string
",
    );
    assert_eq!(c.hostname.as_deref(), Some("4"));
    assert_eq!(c.ssh_authorized_keys, ["ssh-ed25519 AAAA core@a"]);
    assert_eq!(c.users.len(), 1);
    let u = &c.users[0];
    assert_eq!(u.name, "elroy");
    assert_eq!(u.passwd.as_deref(), Some("$6$hash"));
    assert_eq!(u.groups, ["sudo", "docker"]);
    assert_eq!(u.ssh_authorized_keys, ["ssh-rsa BBBB"]);
    assert!(u.no_create_home && u.system && !u.no_user_group);
    assert_eq!(u.shell.as_deref(), Some("/bin/sh"));
}

#[test]
fn etcd2_becomes_etcd_environment() {
    let c = config(
        "#cloud-config
coreos:
  etcd2:
    name: node1
    advertise-client-urls: http://$private_ipv4:2379
    proxy: on
    debug: yes
    client_cert_auth: false
    election-timeout: 0x3e8
    heartbeat_interval: 0
    experimental-new-thing: 1
",
    );
    let env = c.coreos.etcd2.environment();
    let want: Vec<(String, String)> = [
        ("ETCD_ADVERTISE_CLIENT_URLS", "http://$private_ipv4:2379"),
        ("ETCD_DEBUG", "true"),
        ("ETCD_ELECTION_TIMEOUT", "1000"),
        ("ETCD_EXPERIMENTAL_NEW_THING", "1"),
        ("ETCD_NAME", "node1"),
        ("ETCD_PROXY", "on"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(env, want);
    // The section is deprecated and the last key unknown: warnings only.
    let report = validate(b"#cloud-config\ncoreos:\n  etcd2:\n    proxy: yes\n");
    assert_eq!(lines(&report), [(3, Kind::Warning), (4, Kind::Error)]);
}

#[test]
fn unknown_keys_and_wrong_types_are_ignored_with_warnings() {
    let text = "#cloud-config\nhostname:\n  name: x\nsection_unknown: 1\ncoreos: true\n";
    let c = config(text);
    assert_eq!(c, CloudConfig::default());
    assert_eq!(
        lines(&validate(text.as_bytes())),
        [(2, Kind::Warning), (4, Kind::Warning), (5, Kind::Warning)]
    );
}

#[test]
fn yaml_errors_refuse_the_config() {
    let e = parse(b"#cloud-config\nhostname: [\n").expect_err("unclosed");
    assert_eq!(e.report().entries()[0].line, 2);
    assert!(
        e.to_string()
            .starts_with("invalid cloud-config: line 2: error:"),
        "{e}"
    );
    let e = parse(b"#cloud-config\nhostname: \xff\n").expect_err("not UTF-8");
    assert_eq!(lines(e.report()), [(2, Kind::Error)]);
}

#[test]
fn substitution_then_parse() {
    let addrs = Addresses {
        private_ipv4: Some("10.0.0.2".into()),
        ..Addresses::default()
    };
    let raw =
        b"#cloud-config\ncoreos:\n  etcd2:\n    listen-client-urls: http://$private_ipv4:2379\n";
    let c = match parse(&substitute(raw, &addrs)) {
        Ok(UserData::CloudConfig(c)) => c,
        other => panic!("{other:?}"),
    };
    let urls = c.coreos.etcd2.options().get("listen_client_urls").cloned();
    assert_eq!(urls.as_deref(), Some("http://10.0.0.2:2379"));
}

/// coreos-vagrant's `user-data.sample`, which users ship unchanged.
const VAGRANT_SAMPLE: &str = include_str!("../../tests/data/coreos-vagrant/user-data.sample");

#[test]
fn the_vagrant_sample_is_warned_about_what_this_os_lacks() {
    let report = validate(VAGRANT_SAMPLE.as_bytes());
    let got: Vec<String> = report.entries().iter().map(Entry::to_string).collect();
    let fleet = "fleet was retired in 2018; schedule containers with Kubernetes, or run each \
                 container as a systemd unit with docker";
    let flannel = "flanneld is not shipped; run flannel as a container (a Kubernetes DaemonSet) \
                   or use docker's own networks";
    assert_eq!(
        got,
        [
            "line 4: warning: deprecated key \"etcd2\" (etcd2 is no longer shipped in Container Linux)".to_string(),
            "line 14: warning: deprecated key \"fleet\" (fleet is no longer shipped in Container Linux)".to_string(),
            format!("line 16: warning: coreos.flannel: flanneld.service: not part of this OS ({flannel}); /run/flannel/options.env is still written"),
            "line 19: info: etcd2.service is etcd.service on this OS: its command, enable and drop-ins apply to etcd.service".to_string(),
            format!("line 21: warning: fleet.service: not part of this OS ({fleet})"),
            format!("line 23: warning: flanneld.service: not part of this OS ({flannel})"),
        ]
    );
    assert!(!report.has_errors(), "warnings only: the config applies");
}

#[test]
fn absent_units_are_warned_about_only_when_used_without_content() {
    let check = |units: &str| {
        let text = format!("#cloud-config\ncoreos:\n  units:\n{units}");
        lines(&validate(text.as_bytes()))
    };
    // Started, enabled, or given drop-ins (which then do nothing): warned about, on the name.
    for acts in [
        "      command: stop\n",
        "      enable: true\n",
        "      drop-ins:\n        - name: 10-window.conf\n          content: x\n",
    ] {
        let units = format!("    - name: locksmithd.service\n{acts}");
        assert_eq!(check(&units), [(4, Kind::Warning)], "{acts}");
    }
    // Instances are looked up as their template.
    assert_eq!(
        check("    - name: coreos-metadata-sshkeys@core.service\n      command: start\n"),
        [(4, Kind::Warning)]
    );
    // Masked only, given its content, disabled, or a unit this OS has: nothing to say.
    for quiet in [
        "    - name: locksmithd.service\n      mask: true\n",
        "    - name: fleet.service\n      command: start\n      content: \"[Service]\\nExecStart=/opt/bin/fleetd\\n\"\n",
        "    - name: rkt-gc.timer\n      enable: false\n",
        "    - name: etcd.service\n      command: start\n",
        "    - name: docker.service\n      command: restart\n",
    ] {
        assert_eq!(check(quiet), [], "{quiet}");
    }
    // flanneld given by the config: coreos.flannel configures it, no warning for the section.
    let own_flannel = "#cloud-config\ncoreos:\n  flannel:\n    interface: eth1\n  units:\n    - name: flanneld.service\n      content: \"[Service]\\nExecStart=/opt/bin/flanneld\\n\"\n";
    assert_eq!(lines(&validate(own_flannel.as_bytes())), []);
    // An empty section is not worth a word.
    assert_eq!(
        lines(&validate(b"#cloud-config\ncoreos:\n  flannel: {}\n")),
        []
    );
}

#[test]
fn flannel_options_as_upstream_wrote_them() {
    let c = config(
        "#cloud-config\ncoreos:\n  flannel:\n    interface: 172.17.8.101\n    etcd-endpoints: http://10.0.0.1:2379,http://10.0.0.2:2379\n    etcd_prefix: /coreos.com/network/tenant1\n    ip_masq: true\n    public_ip: ''\n    bogus: x\n",
    );
    assert_eq!(
        c.coreos.flannel.options_env().as_deref(),
        Some(
            "FLANNELD_ETCD_ENDPOINTS=http://10.0.0.1:2379,http://10.0.0.2:2379\n\
             FLANNELD_ETCD_PREFIX=/coreos.com/network/tenant1\n\
             FLANNELD_IP_MASQ=true\n\
             FLANNELD_IFACE=172.17.8.101"
        ),
        "field order, no quoting, no final newline, empty values left out"
    );
    let every = "#cloud-config\ncoreos:\n  flannel:\n    etcd_endpoints: e\n    etcd_cafile: ca\n    etcd_certfile: cert\n    etcd_keyfile: key\n    etcd_prefix: p\n    etcd_username: u\n    etcd_password: pw\n    ip_masq: 'true'\n    subnet_file: /run/f.env\n    interface: eth1\n    public_ip: 1.2.3.4\n";
    let names: Vec<&str> = config(every)
        .coreos
        .flannel
        .environment()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(
        names,
        [
            "FLANNELD_ETCD_ENDPOINTS",
            "FLANNELD_ETCD_CAFILE",
            "FLANNELD_ETCD_CERTFILE",
            "FLANNELD_ETCD_KEYFILE",
            "FLANNELD_ETCD_PREFIX",
            "FLANNELD_ETCD_USERNAME",
            "FLANNELD_ETCD_PASSWORD",
            "FLANNELD_IP_MASQ",
            "FLANNELD_SUBNET_FILE",
            "FLANNELD_IFACE",
            "FLANNELD_PUBLIC_IP",
        ]
    );
    assert_eq!(
        config("#cloud-config\ncoreos:\n  flannel: {}\n")
            .coreos
            .flannel
            .options_env(),
        None
    );
}

#[test]
fn fleet_environment_is_typed_as_upstream() {
    let c = config(
        "#cloud-config\ncoreos:\n  fleet:\n    verbosity: 2\n    public-ip: 10.0.0.1\n    metadata: region=us-west\n    disable_engine: true\n    verify_units: false\n    token_limit: 0\n    engine_reconcile_interval: 2\n    etcd_request_timeout: 1.5\n    agent_ttl: 30s\n",
    );
    let env: Vec<(&str, &str)> = c
        .coreos
        .fleet
        .environment()
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        env,
        [
            ("FLEET_AGENT_TTL", "30s"),
            ("FLEET_DISABLE_ENGINE", "true"),
            ("FLEET_ENGINE_RECONCILE_INTERVAL", "2"),
            ("FLEET_ETCD_REQUEST_TIMEOUT", "1.5"),
            ("FLEET_METADATA", "region=us-west"),
            ("FLEET_PUBLIC_IP", "10.0.0.1"),
            ("FLEET_VERBOSITY", "2"),
        ],
        "upstream's field order; false and 0 left out"
    );
    // A value of the wrong type is ignored (the validator warns).
    let c = config("#cloud-config\ncoreos:\n  fleet:\n    verbosity: lots\n");
    assert!(c.coreos.fleet.is_empty());
}

#[test]
fn floats_print_as_go_printed_them() {
    for (f, want) in [
        (2.0, "2"),
        (1.5, "1.5"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (123456.0, "123456"),
        (1234567.0, "1.234567e+06"),
        (1e21, "1e+21"),
        (-2.5e-7, "-2.5e-07"),
    ] {
        assert_eq!(model::go_float(f), want, "{f}");
    }
}

#[test]
fn paths_and_names_the_agent_refuses_are_errors() {
    let text = "#cloud-config\nwrite_files:\n  - path: /etc/../../root/x\n    content: x\n  - path: /etc/ok\n    content: y\ncoreos:\n  units:\n    - name: a/b.service\n      command: start\n    - name: good.service\n      drop_ins:\n        - name: 10-x.service\n          content: \"[Service]\"\n";
    let report = validate(text.as_bytes());
    let got: Vec<String> = report.entries().iter().map(Entry::to_string).collect();
    assert_eq!(
        got,
        [
            "line 3: error: path contains ..: the file would not be written",
            "line 9: error: unit name is not a file name (it has a /, NUL or line break): the unit would be skipped",
            "line 13: error: drop-in name does not end in .conf: the drop-in would be skipped",
        ]
    );
    assert!(report.has_errors());
}

#[test]
fn update_values_the_engine_cannot_use_are_errors() {
    let text = "#cloud-config\ncoreos:\n  update:\n    group: Beta\n    server: updates.example/v1\n  locksmith:\n    endpoint: http://10.0.0.1:2379,unix:///run/etcd.sock\n    window-start: Thu 04:00\n    window-length: -1h\n";
    let got: Vec<String> = validate(text.as_bytes())
        .entries()
        .iter()
        .map(Entry::to_string)
        .collect();
    let engine = "; the update engine cannot use";
    assert_eq!(
        got,
        [
            format!("line 4: error: invalid value Beta: expected channel name \"Beta\" must be 1-64 of [a-z0-9._-] starting with a letter or digit{engine} GROUP=\"Beta\""),
            format!("line 5: error: invalid value updates.example/v1: expected an http:// or https:// URL: a host, an optional port and path, no query, no spaces (no http:// or https://){engine} SERVER=\"updates.example/v1\""),
            format!("line 7: error: invalid value http://10.0.0.1:2379,unix:///run/etcd.sock: expected etcd client URLs, comma-separated, like http://10.0.0.1:2379 (\"unix:///run/etcd.sock\": scheme \"unix\" is not http or https){engine} LOCKSMITHD_ENDPOINT=\"http://10.0.0.1:2379,unix:///run/etcd.sock\""),
            format!("line 9: error: invalid value -1h: expected a duration like 1h30m (must not be negative){engine} REBOOT_WINDOW_LENGTH=\"-1h\""),
        ]
    );
    assert!(
        parse(text.as_bytes()).is_err(),
        "refused as a whole, as any error"
    );
}

#[test]
fn reboot_windows_are_checked_alone_and_together() {
    let check = |start: &str, length: &str| {
        let mut text = "#cloud-config\ncoreos:\n  locksmith:\n".to_string();
        if !start.is_empty() {
            text += &format!("    window_start: {start}\n");
        }
        if !length.is_empty() {
            text += &format!("    window_length: {length}\n");
        }
        let report = validate(text.as_bytes());
        report
            .entries()
            .iter()
            .map(|e| (e.line, e.message.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(check("Thu 04:00", "1h30m"), []);
    assert_eq!(check("04:00", ""), [], "the length may be in another file");
    assert_eq!(check("", "25h"), [], "a weekly window may be that long");
    // Upstream's pattern refuses the start already: one error, upstream's.
    assert_eq!(
        check("Blursday 25:61", "1h"),
        [(4, "invalid value Blursday 25:61".to_string())]
    );
    // Upstream's pattern wants a unit: "0" is its error.
    assert_eq!(check("04:00", "0"), [(5, "invalid value 0".to_string())]);
    for (length, why) in [
        ("0s", "must be at least 1s"),
        ("0.5s", "must be at least 1s"),
        ("-1h", "must not be negative"),
        ("1d", "unknown unit \"d\""),
        ("24h", "shorter than the window's period (a day)"),
    ] {
        let got = check("04:00", length);
        assert_eq!(got.len(), 1, "{length}: {got:?}");
        assert_eq!(got[0].0, 5, "{length}");
        assert!(
            got[0].1.starts_with(&format!(
                "invalid value {length}: expected a duration like 1h30m"
            )),
            "{got:?}"
        );
        assert!(got[0].1.contains(why), "{length}: {got:?}");
    }
    assert_eq!(check("Sat 04:00", "24h"), []);
}

#[test]
fn the_update_value_rule_knows_the_keys_the_agent_writes() {
    // Every field set to its own name: the environment the model gives names each field's key.
    let mut text = "#cloud-config\ncoreos:\n".to_string();
    for section in ["update", "locksmith"] {
        text += &format!("  {section}:\n");
        for (s, name, _) in validate::UPDATE_CONF_FIELDS {
            if s == section {
                let value = if name == "reboot_strategy" {
                    "reboot"
                } else {
                    name
                };
                text += &format!("    {name}: {value}\n");
            }
        }
    }
    let report = validate::run_rules(yaml::load(&text).unwrap().as_deref(), &[Rule::Structure]);
    assert!(report.is_empty(), "{report:?}");
    let root = yaml::load(&text).unwrap();
    let c = model::build(root.as_deref()).unwrap();
    let mut env: Vec<(&str, String)> = c.coreos.update.environment();
    env.extend(c.coreos.locksmith.environment());
    let want: Vec<(&str, String)> = validate::UPDATE_CONF_FIELDS
        .iter()
        .map(|(_, name, key)| {
            let value = if *name == "reboot_strategy" {
                "reboot"
            } else {
                name
            };
            (*key, value.to_string())
        })
        .collect();
    let (mut env, mut want) = (env, want);
    env.sort();
    want.sort();
    assert_eq!(env, want);
}
