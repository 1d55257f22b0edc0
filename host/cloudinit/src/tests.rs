//! Plans as whole values for representative configs, and whole runs (source → validation →
//! plan → apply) against a temporary root with a recording host.

use std::fs;
use std::path::Path;

use cloudconfig::{FileMode, UnitCommand, User};
use tempfile::TempDir;

use super::metadata::{Metadata, NetworkConfig, NetworkFile};
use super::plan::{plan, plan_user_data, script_name, Action};
use super::*;
use crate::host::fake::FakeHost;
use crate::units::UnitFiles;

fn parse(text: &str) -> UserData {
    cloudconfig::parse(text.as_bytes()).unwrap()
}

fn config(text: &str) -> cloudconfig::CloudConfig {
    match parse(text) {
        UserData::CloudConfig(c) => *c,
        other => panic!("not a cloud-config: {other:?}"),
    }
}

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

const CLUSTER_NODE: &str = r#"#cloud-config
hostname: node1
ssh_authorized_keys:
  - ssh-ed25519 AAAA top
users:
  - name: core
    ssh_authorized_keys: [ssh-ed25519 BBBB user-core]
  - name: elroy
    passwd: $6$5s2u6/jR$un0AvWnqilcgaNB3Mkxd5yYv6mTlWfOoCYHZmfi3LDKVltj.E8XNKEcwWm...
    groups: [sudo, docker]
    ssh_authorized_keys: [ssh-rsa CCCC elroy]
  - name: ""
write_files:
  - path: /etc/motd
    content: hello
  - path: /opt/bin/tool
    permissions: "0755"
    owner: elroy:docker
    encoding: b64
    content: IyEvYmluL3NoCg==
manage_etc_hosts: localhost
coreos:
  update:
    group: beta
    reboot-strategy: off
  locksmith:
    endpoint: http://10.0.0.1:2379
    window-start: Sun 03:00
    window-length: 1h
    etcd_password: secret
  etcd2:
    name: node1
    advertise-client-urls: http://$private_ipv4:2379
  units:
    - name: docker.service
      drop-ins:
        - name: 50-opts.conf
          content: "[Service]\nEnvironment=DOCKER_OPTS=--debug\n"
      command: restart
    - name: hello.service
      enable: true
      runtime: true
      content: "[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n"
      command: start
    - name: 10-static.network
      content: "[Match]\nName=eth0\n"
    - name: rpcbind.service
      mask: true
"#;

#[test]
fn plan_of_a_cluster_node() {
    let meta = Metadata::default();
    let c = config(CLUSTER_NODE);
    let elroy = c.users[1].clone();
    let want = vec![
        Action::SetHostname {
            hostname: "node1".into(),
        },
        Action::EnsureUser(User {
            name: "core".into(),
            ssh_authorized_keys: vec!["ssh-ed25519 BBBB user-core".into()],
            ..User::default()
        }),
        Action::EnsureUser(elroy),
        Action::AuthorizeKeys {
            user: "core".into(),
            name: "coreos-cloudinit".into(),
            keys: vec!["ssh-ed25519 BBBB user-core".into(), "ssh-ed25519 AAAA top".into()],
        },
        Action::AuthorizeKeys {
            user: "elroy".into(),
            name: "coreos-cloudinit".into(),
            keys: vec!["ssh-rsa CCCC elroy".into()],
        },
        Action::WriteFile {
            path: "/etc/motd".into(),
            content: b"hello".to_vec(),
            mode: FileMode(0o644),
            owner: None,
        },
        Action::WriteFile {
            path: "/opt/bin/tool".into(),
            content: b"#!/bin/sh\n".to_vec(),
            mode: FileMode(0o755),
            owner: Some("elroy:docker".into()),
        },
        Action::WriteEtcHosts {
            hostname: Some("node1".into()),
        },
        Action::WriteUpdateConf {
            set: pairs(&[
                ("REBOOT_STRATEGY", "off"),
                ("GROUP", "beta"),
                ("LOCKSMITHD_ENDPOINT", "http://10.0.0.1:2379"),
                ("LOCKSMITHD_ETCD_PASSWORD", "secret"),
                ("LOCKSMITHD_REBOOT_WINDOW_START", "Sun 03:00"),
                ("LOCKSMITHD_REBOOT_WINDOW_LENGTH", "1h"),
            ]),
            unset: vec!["REBOOT_WINDOW_START".into(), "REBOOT_WINDOW_LENGTH".into()],
        },
        Action::WriteDropIn {
            unit: "etcd.service".into(),
            runtime: true,
            name: "20-cloudinit.conf".into(),
            content: "[Service]\nEnvironment=\"ETCD_ADVERTISE_CLIENT_URLS=http://$private_ipv4:2379\"\nEnvironment=\"ETCD_NAME=node1\"\n".into(),
        },
        Action::EnableUnit {
            unit: "etcd.service".into(),
            runtime: true,
        },
        Action::WriteDropIn {
            unit: "docker.service".into(),
            runtime: false,
            name: "50-opts.conf".into(),
            content: "[Service]\nEnvironment=DOCKER_OPTS=--debug\n".into(),
        },
        Action::WriteUnit {
            unit: "hello.service".into(),
            runtime: true,
            content: "[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n".into(),
        },
        Action::EnableUnit {
            unit: "hello.service".into(),
            runtime: true,
        },
        Action::WriteUnit {
            unit: "10-static.network".into(),
            runtime: false,
            content: "[Match]\nName=eth0\n".into(),
        },
        Action::MaskUnit {
            unit: "rpcbind.service".into(),
            runtime: false,
        },
        Action::DaemonReload,
        Action::UnitCommand {
            unit: "systemd-networkd.service".into(),
            command: UnitCommand::Restart,
        },
        Action::UnitCommand {
            unit: "etcd.service".into(),
            command: UnitCommand::Start,
        },
        Action::UnitCommand {
            unit: "docker.service".into(),
            command: UnitCommand::Restart,
        },
        Action::UnitCommand {
            unit: "hello.service".into(),
            command: UnitCommand::Start,
        },
        Action::UnitCommand {
            unit: "update-engine.service".into(),
            command: UnitCommand::TryRestart,
        },
    ];
    assert_eq!(plan(&c, &meta, &UnitFiles::Unknown), want);
}

#[test]
fn dry_run_lines() {
    let lines: Vec<String> = plan(
        &config(CLUSTER_NODE),
        &Metadata::default(),
        &UnitFiles::Unknown,
    )
    .iter()
    .map(Action::to_string)
    .collect();
    assert_eq!(
        lines,
        [
            "set hostname node1",
            "create or update user core",
            "create or update user elroy (groups sudo,docker)",
            "authorize 2 SSH keys for core (authorized_keys.d/coreos-cloudinit)",
            "authorize 1 SSH key for elroy (authorized_keys.d/coreos-cloudinit)",
            "write /etc/motd (0644, 5 bytes)",
            "write /opt/bin/tool (0755, 10 bytes, owner elroy:docker)",
            "write /etc/hosts for node1",
            "set REBOOT_STRATEGY=off GROUP=beta LOCKSMITHD_ENDPOINT=http://10.0.0.1:2379 \
             LOCKSMITHD_ETCD_PASSWORD=(hidden) LOCKSMITHD_REBOOT_WINDOW_START=Sun 03:00 \
             LOCKSMITHD_REBOOT_WINDOW_LENGTH=1h in /etc/update-engine/update.conf, \
             remove REBOOT_WINDOW_START REBOOT_WINDOW_LENGTH",
            "write drop-in /run/systemd/system/etcd.service.d/20-cloudinit.conf",
            "enable etcd.service (runtime)",
            "write drop-in /etc/systemd/system/docker.service.d/50-opts.conf",
            "write unit /run/systemd/system/hello.service",
            "enable hello.service (runtime)",
            "write unit /etc/systemd/network/10-static.network",
            "mask rpcbind.service",
            "systemctl daemon-reload",
            "systemctl --no-block restart systemd-networkd.service",
            "systemctl --no-block start etcd.service",
            "systemctl --no-block restart docker.service",
            "systemctl --no-block start hello.service",
            "systemctl --no-block try-restart update-engine.service",
        ]
    );
}

#[test]
fn engine_restarts_only_when_its_config_changes() {
    let restarts = |text: &str| {
        plan(&config(text), &Metadata::default(), &UnitFiles::Unknown)
            .iter()
            .filter(|a| {
                matches!(a, Action::UnitCommand { unit, command: UnitCommand::TryRestart }
                    if unit == "update-engine.service")
            })
            .count()
    };
    assert_eq!(
        restarts(
            "#cloud-config
hostname: a
"
        ),
        0
    );
    assert_eq!(
        restarts(
            "#cloud-config
coreos:
  update:
    group: beta
"
        ),
        1
    );
    assert_eq!(
        restarts(
            "#cloud-config
coreos:
  locksmith:
    group: g
"
        ),
        1
    );
    let file = "#cloud-config
write_files:
  - path: /etc/update-engine/update.conf
    content: CHECK_INTERVAL=30
";
    assert_eq!(restarts(file), 1);
    // Container Linux's own file: the engine reads it too.
    let file = "#cloud-config
write_files:
  - path: /etc/coreos/update.conf
    content: REBOOT_STRATEGY=off
";
    assert_eq!(restarts(file), 1);
}

#[test]
fn plan_merges_metadata() {
    let meta = Metadata {
        hostname: Some("from-metadata".into()),
        ssh_public_keys: vec!["ssh-rsa META".into()],
        addresses: Addresses {
            private_ipv4: Some("10.1.2.3".into()),
            public_ipv4: Some("1.2.3.4".into()),
            ..Addresses::default()
        },
        ..Metadata::default()
    };
    let c = config("#cloud-config\nssh_authorized_keys: [ssh-rsa CONF]\ncoreos:\n  oem:\n    id: qemu\n    name: QEMU \"x\"\n");
    assert_eq!(
        plan(&c, &meta, &UnitFiles::Unknown),
        vec![
            Action::SetHostname {
                hostname: "from-metadata".into()
            },
            Action::EnsureUser(User {
                name: "core".into(),
                ..User::default()
            }),
            Action::AuthorizeKeys {
                user: "core".into(),
                name: "coreos-cloudinit".into(),
                keys: vec!["ssh-rsa CONF".into(), "ssh-rsa META".into()],
            },
            Action::WriteFile {
                path: "/etc/oem-release".into(),
                content: b"ID=qemu\nVERSION_ID=\nNAME=\"QEMU \\\"x\\\"\"\nHOME_URL=\"\"\nBUG_REPORT_URL=\"\"\n"
                    .to_vec(),
                mode: FileMode(0o644),
                owner: None,
            },
            Action::WriteEnvironment {
                set: pairs(&[
                    ("COREOS_PRIVATE_IPV4", "10.1.2.3"),
                    ("COREOS_PUBLIC_IPV4", "1.2.3.4"),
                ])
            },
        ]
    );
    // The config's hostname wins over the metadata's.
    let c = config("#cloud-config\nhostname: mine\n");
    assert_eq!(
        plan(&c, &meta, &UnitFiles::Unknown)[0],
        Action::SetHostname {
            hostname: "mine".into()
        }
    );
}

#[test]
fn plan_of_scripts_empty_and_ignition() {
    let meta = Metadata {
        ssh_public_keys: vec!["k".into()],
        ..Metadata::default()
    };
    let keys = Action::AuthorizeKeys {
        user: "core".into(),
        name: "coreos-cloudinit".into(),
        keys: vec!["k".into()],
    };
    let script = b"#!/bin/sh\necho hi\n".to_vec();
    let core = Action::EnsureUser(User {
        name: "core".into(),
        ..User::default()
    });
    assert_eq!(
        plan_user_data(
            &UserData::Script(script.clone()),
            &meta,
            &UnitFiles::Unknown
        ),
        vec![
            core.clone(),
            keys.clone(),
            Action::RunScript {
                name: script_name(&script),
                content: script.clone(),
            }
        ]
    );
    assert_eq!(script_name(&script), script_name(b"#!/bin/sh\necho hi\n"));
    assert!(script_name(&script).starts_with("coreos-cloudinit-"));
    assert_eq!(script_name(&script).len(), "coreos-cloudinit-".len() + 12);
    assert_eq!(
        plan_user_data(&UserData::Empty, &meta, &UnitFiles::Unknown),
        vec![core, keys]
    );
    assert!(plan_user_data(
        &UserData::Ignition(b"{}".to_vec()),
        &meta,
        &UnitFiles::Unknown
    )
    .is_empty());
    assert!(plan(
        &config("#cloud-config\n"),
        &Metadata::default(),
        &UnitFiles::Unknown
    )
    .is_empty());
}

/// A root with the minimal image's account files.
fn minimal_root(name: &str) -> TempDir {
    let tmp = TempDir::with_prefix(name).unwrap();
    let etc = tmp.path().join("etc");
    fs::create_dir_all(&etc).unwrap();
    let minimal = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../services/minimal");
    for f in ["passwd", "group", "shadow"] {
        fs::copy(minimal.join(f), etc.join(f)).unwrap();
    }
    tmp
}

fn run_with(opts: &Options, host: &FakeHost) -> (Summary, String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let summary = run(
        opts,
        host,
        &mut Console {
            out: &mut out,
            err: &mut err,
        },
    );
    let s = |b: Vec<u8>| String::from_utf8(b).unwrap();
    (summary, s(out), s(err))
}

fn file_input(tmp: &TempDir, user_data: &[u8]) -> Options {
    let path = tmp.path().join("user-data");
    fs::write(&path, user_data).unwrap();
    Options::new(tmp.path(), Input::File(path))
}

#[test]
fn a_live_run_calls_systemctl_in_plan_order() {
    let tmp = minimal_root("agent-live");
    let root = tmp.path();
    fs::create_dir_all(root.join("usr/lib/systemd/system")).unwrap();
    fs::write(
        root.join("usr/lib/systemd/system/etcd.service"),
        "[Service]\nExecStart=/usr/bin/etcd\n[Install]\nWantedBy=multi-user.target\n",
    )
    .unwrap();
    fs::write(root.join("usr/lib/systemd/system/docker.service"), "").unwrap();
    let host = FakeHost {
        ipv4: Some("10.0.2.15".parse().unwrap()),
        ..FakeHost::live()
    };
    let user_data = b"#cloud-config\nhostname: n1\ncoreos:\n  etcd2:\n    listen-client-urls: http://$private_ipv4:2379\n  units:\n    - name: docker.service\n      command: restart\n";
    let opts = file_input(&tmp, user_data);
    let (summary, out, err) = run_with(&opts, &host);
    let path = opts.root.join("user-data");
    assert_eq!(
        err,
        format!(
            "coreos-cloudinit: file {}: line 4: warning: deprecated key \"etcd2\" (etcd2 is no longer shipped in Container Linux)\n",
            path.display()
        ),
        "warnings are printed, and do not stop anything"
    );
    assert!(summary.success(), "{summary:?}");
    assert_eq!(
        host.calls(),
        [
            "sethostname n1",
            "systemctl daemon-reload",
            "systemctl --no-block start etcd.service",
            "systemctl --no-block restart docker.service",
        ]
    );
    let drop_in =
        fs::read_to_string(root.join("run/systemd/system/etcd.service.d/20-cloudinit.conf"))
            .unwrap();
    assert_eq!(
        drop_in, "[Service]\nEnvironment=\"ETCD_LISTEN_CLIENT_URLS=http://10.0.2.15:2379\"\n",
        "the interface address fills $private_ipv4"
    );
    let link = root.join("run/systemd/system/multi-user.target.wants/etcd.service");
    assert_eq!(
        fs::read_link(link).unwrap(),
        Path::new("/usr/lib/systemd/system/etcd.service")
    );
    assert_eq!(
        out,
        format!(
            "coreos-cloudinit: user-data from file {} ({} bytes)\n\
             coreos-cloudinit: set hostname n1\n\
             coreos-cloudinit: write drop-in /run/systemd/system/etcd.service.d/20-cloudinit.conf\n\
             coreos-cloudinit: enable etcd.service (runtime): /run/systemd/system/multi-user.target.wants/etcd.service → /usr/lib/systemd/system/etcd.service\n\
             coreos-cloudinit: systemctl daemon-reload\n\
             coreos-cloudinit: systemctl --no-block start etcd.service\n\
             coreos-cloudinit: systemctl --no-block restart docker.service\n",
            path.display(),
            user_data.len()
        )
    );
}

#[test]
fn failures_are_reported_and_the_rest_continues() {
    let tmp = minimal_root("agent-failures");
    let units = tmp.path().join("usr/lib/systemd/system");
    fs::create_dir_all(&units).unwrap();
    for unit in ["nosuch.service", "ok.service"] {
        fs::write(units.join(unit), "").unwrap();
    }
    let host = FakeHost {
        fail_systemctl: Some("nosuch.service".into()),
        ..FakeHost::live()
    };
    let opts = file_input(
        &tmp,
        b"#cloud-config\nwrite_files:\n  - path: /etc/a\n    owner: nobody-here\n    content: a\n  - path: /etc/b\n    content: b\ncoreos:\n  units:\n    - name: nosuch.service\n      command: start\n    - name: ok.service\n      command: stop\n",
    );
    let (summary, _, err) = run_with(&opts, &host);
    assert_eq!(summary.failures, 2);
    assert_eq!(
        err,
        "coreos-cloudinit: write /etc/a (0644, 1 bytes, owner nobody-here): no user \"nobody-here\" in /etc/passwd\n\
         coreos-cloudinit: systemctl --no-block start nosuch.service: systemctl --no-block start nosuch.service: exit status 5: Unit not found.\n"
    );
    assert!(!tmp.path().join("etc/a").exists());
    assert_eq!(fs::read(tmp.path().join("etc/b")).unwrap(), b"b");
    assert_eq!(
        host.calls().last().unwrap(),
        "systemctl --no-block stop ok.service"
    );
}

#[test]
fn invalid_user_data_is_not_applied_but_metadata_is() {
    let tmp = minimal_root("agent-invalid");
    let root = tmp.path();
    // A config drive whose meta_data gives a hostname and a key, and a bad user_data.
    fs::create_dir_all(root.join("dev/disk/by-label")).unwrap();
    fs::write(root.join("dev/disk/by-label/config-2"), b"").unwrap();
    let drive = TempDir::with_prefix("agent-invalid-drive").unwrap();
    let latest = drive.path().join("openstack/latest");
    fs::create_dir_all(&latest).unwrap();
    fs::write(
        latest.join("user_data"),
        "#cloud-config\nwrite_files:\n  - path: /usr/bin/x\n    content: x\ncoreos:\n  update:\n    reboot-strategy: sometimes\n",
    )
    .unwrap();
    fs::write(
        latest.join("meta_data.json"),
        r#"{"hostname": "os-node", "public_keys": {"k": "ssh-rsa KEY k"}}"#,
    )
    .unwrap();
    let host = FakeHost {
        drive: Some(drive.path().to_path_buf()),
        ..FakeHost::default()
    };
    let opts = Options::new(
        root,
        Input::Sources {
            only: Some(vec![SourceKind::ConfigDrive]),
        },
    );
    let (summary, out, err) = run_with(&opts, &host);
    let device = root.join("dev/disk/by-label/config-2");
    assert_eq!(
        err,
        format!(
            "coreos-cloudinit: config drive {dev}: line 3: error: file cannot be written to a read-only filesystem\n\
             coreos-cloudinit: config drive {dev}: line 7: error: invalid value sometimes\n\
             coreos-cloudinit: user-data not applied: it has errors; applying the metadata only\n",
            dev = device.display()
        )
    );
    assert_eq!(summary.failures, 1);
    assert!(
        out.contains("coreos-cloudinit: set hostname os-node: kernel hostname not set (offline)\n"),
        "{out}"
    );
    assert_eq!(
        fs::read_to_string(root.join("etc/hostname")).unwrap(),
        "os-node\n"
    );
    assert!(!root.join("usr/bin/x").exists());
    assert!(!root.join("etc/update-engine").exists());
    // The metadata's key, for core, which the minimal image lacks and the plan created.
    assert!(
        out.contains("create or update user core: created (uid 1000, gid 1000)"),
        "{out}"
    );
    assert_eq!(
        fs::read_to_string(root.join("home/core/.ssh/authorized_keys")).unwrap(),
        "# auto-generated by update-ssh-keys\nssh-rsa KEY k\n"
    );
}

#[test]
fn validate_only_and_dry_run_change_nothing() {
    let tmp = minimal_root("agent-dry");
    let opts = Options {
        validate_only: true,
        ..file_input(&tmp, b"#cloud-config\nhostname: a\nbogus: 1\n")
    };
    let host = FakeHost::live();
    let (summary, out, _) = run_with(&opts, &host);
    assert!(summary.success());
    assert!(
        out.ends_with("\nline 3: warning: unrecognized key \"bogus\"\n"),
        "{out}"
    );
    let opts = Options {
        dry_run: true,
        ..file_input(
            &tmp,
            b"#cloud-config\nhostname: a\nwrite_files:\n  - path: /etc/x\n    content: x\n",
        )
    };
    let (summary, out, _) = run_with(&opts, &host);
    assert_eq!(summary.actions, 2);
    assert!(out.ends_with(
        "coreos-cloudinit: plan (2 actions, nothing applied):\n  1. set hostname a\n  2. write /etc/x (0644, 1 bytes)\n"
    ), "{out}");
    assert!(host.calls().is_empty());
    assert!(!tmp.path().join("etc/x").exists() && !tmp.path().join("etc/hostname").exists());
    let opts = Options {
        validate_only: true,
        ..file_input(&tmp, b"hostname: a\n")
    };
    let (summary, out, _) = run_with(&opts, &host);
    assert!(!summary.success());
    assert!(
        out.ends_with("line 1: error: must be \"#cloud-config\" or begin with \"#!\"\n"),
        "{out}"
    );
}

#[test]
fn gzip_scripts_substitution_and_ignition() {
    use flate2::{write::GzEncoder, Compression};
    use std::io::Write as _;
    let tmp = minimal_root("agent-script");
    let root = tmp.path();
    fs::write(
        root.join("etc/environment"),
        "COREOS_PRIVATE_IPV4=192.168.7.7\n",
    )
    .unwrap();
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    gz.write_all(b"#!/bin/sh\necho $private_ipv4\n").unwrap();
    let host = FakeHost::live();
    let (summary, _, err) = run_with(&file_input(&tmp, &gz.finish().unwrap()), &host);
    assert_eq!(err, "");
    assert!(summary.success());
    let script = b"#!/bin/sh\necho 192.168.7.7\n";
    let name = script_name(script);
    let path = format!("/var/lib/coreos-cloudinit/scripts/{name}");
    assert_eq!(fs::read(root.join(&path[1..])).unwrap(), script);
    assert_eq!(
        host.calls(),
        [format!("systemd-run --unit={name}.service {path}")]
    );
    // Ignition: nothing is done, and that is not a failure.
    let host = FakeHost::live();
    let (summary, out, _) = run_with(
        &file_input(&tmp, br#"{"ignition": {"version": "3.0.0"}}"#),
        &host,
    );
    assert!(summary.success() && summary.actions == 0);
    assert!(out.contains("Ignition config"), "{out}");
    // Corrupt gzip is a failure, nothing applied.
    let (summary, _, err) = run_with(&file_input(&tmp, &[0x1f, 0x8b, 0, 1]), &host);
    assert_eq!(summary.failures, 1);
    assert!(
        err.ends_with("gzip-compressed user-data: invalid gzip data\n"),
        "{err}"
    );
    assert!(host.calls().is_empty());
}

#[test]
fn nothing_found_is_not_a_failure_but_a_broken_source_is() {
    let tmp = TempDir::with_prefix("agent-nothing").unwrap();
    fs::create_dir_all(tmp.path().join("sys/firmware/qemu_fw_cfg")).unwrap();
    let host = FakeHost::default();
    let opts = Options::new(tmp.path(), Input::Sources { only: None });
    let (summary, out, err) = run_with(&opts, &host);
    assert!(summary.success() && summary.source.is_none());
    assert_eq!(
        (out.as_str(), err.as_str()),
        ("coreos-cloudinit: no user-data found\n", "")
    );
    let opts = Options::new(tmp.path(), Input::File(tmp.path().join("nope")));
    let (summary, _, err) = run_with(&opts, &host);
    assert_eq!(summary.failures, 1);
    assert!(
        err.starts_with("coreos-cloudinit: ") && err.contains("nope: No such file"),
        "{err}"
    );
}

#[test]
fn sshkey_on_the_kernel_command_line_authorizes_core() {
    let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPxe pxe@host";
    assert_eq!(
        sources::cmdline_ssh_keys(&format!("console=ttyS0 sshkey=\"{key}\" sshkey= ro")),
        [key]
    );
    // Without user-data: the key alone is applied.
    let tmp = minimal_root("agent-sshkey");
    fs::create_dir_all(tmp.path().join("proc")).unwrap();
    fs::write(
        tmp.path().join("proc/cmdline"),
        format!("console=ttyS0 sshkey=\"{key}\"\n"),
    )
    .unwrap();
    let host = FakeHost::default();
    let opts = Options::new(tmp.path(), Input::Sources { only: None });
    let (summary, out, err) = run_with(&opts, &host);
    assert!(summary.success(), "{out}{err}");
    assert!(
        out.contains("user-data from kernel command line sshkey="),
        "{out}"
    );
    let keys = fs::read_to_string(tmp.path().join("home/core/.ssh/authorized_keys")).unwrap();
    assert!(keys.contains(key), "{keys}");
    // With user-data: both its keys and the command line's.
    let tmp2 = minimal_root("agent-sshkey-ud");
    fs::create_dir_all(tmp2.path().join("proc")).unwrap();
    fs::write(
        tmp2.path().join("proc/cmdline"),
        format!("sshkey=\"{key}\""),
    )
    .unwrap();
    let opts = file_input(
        &tmp2,
        b"#cloud-config\nssh_authorized_keys:\n  - ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIud ud@host\n",
    );
    let (summary, out, err) = run_with(&opts, &host);
    assert!(summary.success(), "{out}{err}");
    let keys = fs::read_to_string(tmp2.path().join("home/core/.ssh/authorized_keys")).unwrap();
    assert!(keys.contains(key) && keys.contains("ud@host"), "{keys}");
}

#[test]
fn oem_keys_survive_user_data_keys() {
    // The Vagrant box's OEM config (applied first, --ssh-key-name oem), then user-data with a
    // key of its own: both keys stay authorized, each in its own authorized_keys.d file.
    let tmp = minimal_root("agent-oem-keys");
    let host = FakeHost::default();
    let mut opts = file_input(
        &tmp,
        b"#cloud-config\nssh_authorized_keys: [ssh-rsa AAAAB3NzaC1yc2EAAAABIwAAAQEA6NF8 vagrant insecure public key]\n",
    );
    opts.ssh_key_name = "oem".into();
    let (summary, out, err) = run_with(&opts, &host);
    assert!(summary.success(), "{out}{err}");
    let opts = file_input(
        &tmp,
        b"#cloud-config\nssh_authorized_keys: [ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIud ud@host]\n",
    );
    let (summary, out, err) = run_with(&opts, &host);
    assert!(summary.success(), "{out}{err}");
    let ssh = tmp.path().join("home/core/.ssh");
    let oem = fs::read_to_string(ssh.join("authorized_keys.d/oem")).unwrap();
    assert!(oem.contains("vagrant insecure public key"), "{oem}");
    let keys = fs::read_to_string(ssh.join("authorized_keys")).unwrap();
    assert!(
        keys.contains("vagrant insecure public key") && keys.contains("ud@host"),
        "{keys}"
    );
}

#[test]
fn shipped_configs_are_valid_cloud_configs() {
    // The Vagrant boxes' OEM configuration, and the container host's cluster user-data with
    // its ERB parts filled in as the cluster Vagrantfile does.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let oem = fs::read(root.join("artifacts/vagrant/data/oem/cloud-config.yml")).unwrap();
    let template = fs::read_to_string(root.join("images/container-host.user-data")).unwrap();
    let rendered = template
        .replace("<%= initial_cluster %>", "core-01=http://172.17.8.101:2380")
        .replace("<%= channel %>", "alpha")
        .replace("<%- unless update_server.empty? -%>\n", "")
        .replace("<%- end -%>\n", "")
        .replace("<%= update_server %>", "http://172.17.8.1:8080/");
    assert!(!rendered.contains("<%"), "{rendered}");
    for (name, text) in [("oem", oem), ("user-data", rendered.into_bytes())] {
        // Warnings are fine (etcd2 is "deprecated" to the original validator, and still ours).
        let report = cloudconfig::validate(&text);
        let errors: Vec<_> = report
            .entries()
            .iter()
            .filter(|e| e.kind == cloudconfig::Kind::Error)
            .collect();
        assert!(errors.is_empty(), "{name}: {errors:?}");
    }
    let oem = fs::read_to_string(root.join("artifacts/vagrant/data/oem/cloud-config.yml")).unwrap();
    let UserData::CloudConfig(c) = parse(&oem) else {
        panic!("the OEM config is a cloud-config");
    };
    assert!(c.ssh_authorized_keys[0].ends_with("vagrant insecure public key"));
    let path_unit = &c.coreos.units[0];
    assert_eq!(path_unit.name, "vagrant-user-data.path");
    assert!(path_unit.content.as_deref().unwrap().contains(
        "Unit=user-cloudinit@var-lib-coreos\\x2dvagrant-vagrantfile\\x2duser\\x2ddata.service"
    ));
}

#[test]
fn on_vmware_the_address_goes_to_guestinfo_ip() {
    let tmp = minimal_root("agent-vmware-ip");
    let host = FakeHost {
        ipv4: Some("10.0.2.15".parse().unwrap()),
        ..FakeHost::live()
    };
    let opts = file_input(&tmp, b"#cloud-config\n");
    let (_, out, _) = run_with(&opts, &host);
    assert!(
        !host.calls().iter().any(|c| c.starts_with("guestinfo-set")),
        "not VMware: {:?}",
        host.calls()
    );
    assert!(!out.contains("guestinfo.ip"), "{out}");
    fs::create_dir_all(tmp.path().join("sys/class/dmi/id")).unwrap();
    fs::write(
        tmp.path().join("sys/class/dmi/id/sys_vendor"),
        "VMware, Inc.\n",
    )
    .unwrap();
    let (_, out, _) = run_with(&opts, &host);
    assert!(
        host.calls()
            .contains(&"guestinfo-set guestinfo.ip 10.0.2.15".to_string()),
        "{:?}",
        host.calls()
    );
    assert!(
        out.contains("coreos-cloudinit: told VMware the address 10.0.2.15 (guestinfo.ip)"),
        "{out}"
    );
}

#[test]
fn a_source_is_applied_once_per_boot() {
    let tmp = minimal_root("agent-once");
    let root = tmp.path();
    let file = root.join(sources::VAGRANT_USER_DATA);
    fs::create_dir_all(file.parent().unwrap()).unwrap();
    let config = |text: &str| {
        format!("#cloud-config\nwrite_files:\n  - path: /etc/x\n    content: {text}\n")
    };
    fs::write(&file, config("one")).unwrap();
    let host = FakeHost::default();
    let opts = Options::new(
        root,
        Input::Sources {
            only: Some(vec![SourceKind::Vagrant]),
        },
    );
    let (summary, out, err) = run_with(&opts, &host);
    assert!(summary.success() && summary.actions > 0, "{out}{err}");
    assert_eq!(fs::read_to_string(root.join("etc/x")).unwrap(), "one");
    // Found again (a device unit after the boot's run): left alone, and said so.
    fs::write(root.join("etc/x"), "changed since").unwrap();
    let (summary, out, err) = run_with(&opts, &host);
    assert!(summary.success(), "{out}{err}");
    assert!(
        out.ends_with(
            "coreos-cloudinit: Vagrant user-data /var/lib/coreos-vagrant/vagrantfile-user-data: \
             applied already this boot, nothing to do\n"
        ),
        "{out}"
    );
    assert_eq!(
        fs::read_to_string(root.join("etc/x")).unwrap(),
        "changed since"
    );
    // Other content from the same source is new: applied.
    fs::write(&file, config("two")).unwrap();
    let (summary, out, err) = run_with(&opts, &host);
    assert!(summary.success() && !out.contains("already"), "{out}{err}");
    assert_eq!(fs::read_to_string(root.join("etc/x")).unwrap(), "two");
    // A file named on the command line is applied whenever asked.
    let opts = Options::new(root, Input::File(file.clone()));
    run_with(&opts, &host);
    let (_, out, _) = run_with(&opts, &host);
    assert!(!out.contains("already"), "{out}");
    // Dry runs record nothing.
    let tmp = minimal_root("agent-once-dry");
    let file = tmp.path().join(sources::VAGRANT_USER_DATA);
    fs::create_dir_all(file.parent().unwrap()).unwrap();
    fs::write(&file, config("one")).unwrap();
    let mut opts = Options::new(
        tmp.path(),
        Input::Sources {
            only: Some(vec![SourceKind::Vagrant]),
        },
    );
    opts.dry_run = true;
    run_with(&opts, &host);
    assert!(!tmp.path().join(APPLIED_DIR).exists());
}

/// A root with a NoCloud seed the scan finds (`sr0`, labelled `cidata`), its content in a
/// directory the fake host "mounts", and the options of the drive unit's command line.
fn nocloud_run(name: &str, meta_data: &str) -> (TempDir, TempDir, Options) {
    use sources::drive::heads;
    let tmp = minimal_root(name);
    heads::block_devices(tmp.path(), &[("sr0", heads::iso("cidata", false))]);
    let seed = TempDir::with_prefix(format!("{name}-seed")).unwrap();
    fs::write(
        seed.path().join("user-data"),
        "#cloud-config\nwrite_files:\n  - path: /etc/motd\n    content: from the seed\n",
    )
    .unwrap();
    fs::write(seed.path().join("meta-data"), meta_data).unwrap();
    fs::write(seed.path().join("network-config"), "version: 2\n").unwrap();
    let unit = include_str!("../../../services/units/coreos-cloudinit-drive@.service");
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart=-/usr/bin/coreos-cloudinit "))
        .unwrap();
    let root = tmp.path().to_str().unwrap();
    let args = [PROGRAM, "--root", root]
        .into_iter()
        .chain(exec.split_whitespace())
        .map(std::ffi::OsString::from)
        .collect();
    let opts = cli::parse(args).unwrap().options();
    (tmp, seed, opts)
}

/// A NoCloud seed udev reports late: the drive unit's command line finds it, applies its
/// user-data and meta-data, says what it ignores, and a second run leaves it alone.
#[test]
fn a_nocloud_seed_is_applied_once_by_the_drive_unit() {
    let (tmp, seed, opts) = nocloud_run(
        "agent-nocloud",
        "instance-id: iid-local01\nlocal-hostname: seed-host\n\
         public-keys:\n  - ssh-ed25519 AAAA seed\n",
    );
    let root = tmp.path();
    let host = FakeHost {
        drive: Some(seed.path().to_path_buf()),
        ..FakeHost::default()
    };
    let (summary, out, err) = run_with(&opts, &host);
    assert!(summary.success(), "{out}{err}");
    assert_eq!(err, "");
    let dev = root.join("dev/sr0");
    let source = format!("NoCloud seed {}", dev.display());
    assert!(
        out.starts_with(&format!(
            "coreos-cloudinit: user-data from {source} (74 bytes)\n\
             coreos-cloudinit: {source}: instance-id iid-local01\n\
             coreos-cloudinit: {source}: network-config ignored: not supported (networkd \
             configures every NIC with DHCP)\n"
        )),
        "{out}"
    );
    assert_eq!(
        fs::read_to_string(root.join("etc/motd")).unwrap(),
        "from the seed"
    );
    assert_eq!(
        fs::read_to_string(root.join("etc/hostname")).unwrap(),
        "seed-host\n"
    );
    assert_eq!(
        fs::read_to_string(root.join("home/core/.ssh/authorized_keys")).unwrap(),
        "# auto-generated by update-ssh-keys\nssh-ed25519 AAAA seed\n"
    );
    // udev's change event for the same medium: once per boot.
    fs::write(root.join("etc/motd"), "changed since").unwrap();
    let (summary, out, _) = run_with(&opts, &host);
    assert!(summary.success());
    assert!(
        out.ends_with(&format!(
            "coreos-cloudinit: {source}: applied already this boot, nothing to do\n"
        )),
        "{out}"
    );
    assert_eq!(
        fs::read_to_string(root.join("etc/motd")).unwrap(),
        "changed since"
    );
}

/// A meta-data that is not YAML: one warning naming the file (a failure, as a source's skipped
/// metadata is), and the user-data still applies.
#[test]
fn a_nocloud_seed_with_bad_meta_data_still_applies_its_user_data() {
    let (tmp, seed, opts) = nocloud_run("agent-nocloud-bad", "local-hostname: [unclosed\n");
    let host = FakeHost {
        drive: Some(seed.path().to_path_buf()),
        ..FakeHost::default()
    };
    let (summary, out, err) = run_with(&opts, &host);
    let dev = tmp.path().join("dev/sr0");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(
        lines[0].starts_with(&format!(
            "coreos-cloudinit: NoCloud seed {}: meta-data is not valid YAML (line ",
            dev.display()
        )) && lines[0].ends_with("): ignored, the user-data still applies"),
        "{err}"
    );
    assert_eq!(summary.failures, 1);
    assert_eq!(
        fs::read_to_string(tmp.path().join("etc/motd")).unwrap(),
        "from the seed"
    );
    assert!(!tmp.path().join("etc/hostname").exists(), "{out}");
}

/// QEMU's case for the VMware source: DMI says VMware, the backdoor refuses, and vSphere's ISO
/// transport (`tests/data/vmware/ovf-env.xml` on `sr0`, labelled `OVF ENV`) carries the
/// environment. A whole run writes its network file, restarts networkd and applies the
/// user-data and hostname.
#[test]
fn a_run_on_vmware_without_the_backdoor_applies_the_ovf_environment_iso() {
    use sources::drive::heads;
    let tmp = minimal_root("agent-ovf-iso");
    let root = tmp.path();
    fs::create_dir_all(root.join("sys/class/dmi/id")).unwrap();
    fs::write(root.join("sys/class/dmi/id/sys_vendor"), "VMware, Inc.\n").unwrap();
    heads::block_devices(root, &[("sr0", heads::iso("OVF ENV", false))]);
    let iso = TempDir::with_prefix("agent-ovf-iso-content").unwrap();
    fs::write(
        iso.path().join("ovf-env.xml"),
        include_str!("../../../tests/data/vmware/ovf-env.xml"),
    )
    .unwrap();
    let host = FakeHost {
        guestinfo_refused: true,
        drive: Some(iso.path().to_path_buf()),
        ipv4: Some("10.0.2.15".parse().unwrap()),
        ..FakeHost::live()
    };
    let opts = Options::new(root, Input::Sources { only: None });
    let (summary, out, err) = run_with(&opts, &host);
    assert!(summary.success(), "{out}{err}");
    let source = format!(
        "VMware OVF environment on {}",
        root.join("dev/sr0").display()
    );
    assert!(
        out.contains(&format!(
            "coreos-cloudinit: user-data from {source} (121 bytes)\n\
             coreos-cloudinit: {source}: guestinfo variables not read: VMware RPC \
             \"info-get guestinfo.ovfEnv\": the VMware backdoor refused opening an RPC channel\n"
        )),
        "{out}"
    );
    assert_eq!(
        err,
        "coreos-cloudinit: telling VMware the address 10.0.2.15: VMware RPC \"info-set \
         guestinfo.ip 10.0.2.15\": the VMware backdoor refused opening an RPC channel\n"
    );
    assert_eq!(
        fs::read_to_string(root.join("run/systemd/network/00-vmware-00.network")).unwrap(),
        "# coreos-cloudinit: guestinfo.interface.0.* of VMware guestinfo\n\
         [Match]\nMACAddress=52:54:00:12:34:56\n\n\
         [Network]\nDNS=10.0.2.3\n\n\
         [Address]\nAddress=10.0.2.15/24\n\n\
         [Route]\nDestination=0.0.0.0/0\nGateway=10.0.2.2\n"
    );
    assert_eq!(
        fs::read_to_string(root.join("etc/motd.d/50-ovf-env")).unwrap(),
        "configured from the OVF environment ISO\n"
    );
    assert_eq!(
        fs::read_to_string(root.join("etc/hostname")).unwrap(),
        "ovf-iso-host\n"
    );
    let calls = host.calls();
    assert!(
        calls.contains(&"sethostname ovf-iso-host".to_string())
            && calls.contains(&"systemctl --no-block restart systemd-networkd.service".to_string()),
        "{calls:?}"
    );
    assert!(!root.join(sources::vmware::iso::MOUNT_DIR).exists());
}

/// `--from-vmware-ovf-env PATH` (upstream's flag) under an offline root: the document's
/// network file and user-data, without asking the backdoor.
#[test]
fn an_ovf_environment_file_named_on_the_command_line() {
    let tmp = minimal_root("agent-ovf-file");
    let root = tmp.path();
    let path = root.join("ovf-env.xml");
    fs::write(
        &path,
        include_str!("../../../tests/data/vmware/ovf-env.xml"),
    )
    .unwrap();
    let host = FakeHost::default();
    let opts = Options::new(root, Input::VmwareOvfEnv(path.clone()));
    let (summary, out, err) = run_with(&opts, &host);
    assert!(summary.success(), "{out}{err}");
    assert!(
        out.starts_with(&format!(
            "coreos-cloudinit: user-data from VMware OVF environment file {} (121 bytes)\n",
            path.display()
        )),
        "{out}"
    );
    assert!(root
        .join("run/systemd/network/00-vmware-00.network")
        .exists());
    assert!(root.join("etc/motd.d/50-ovf-env").exists());
    assert!(
        !host.calls().iter().any(|c| c.starts_with("guestinfo")),
        "{:?}",
        host.calls()
    );
    fs::write(&path, "not xml").unwrap();
    let (summary, _, err) = run_with(&opts, &host);
    assert_eq!(summary.failures, 1);
    assert_eq!(
        err,
        format!(
            "coreos-cloudinit: {}: is not XML (an OVF environment document, <Environment …>)\n",
            path.display()
        )
    );
}

/// The source's network files come first and networkd restarts for them, also with no units
/// in the config; an Ignition config gets neither (upstream exited before applying anything).
#[test]
fn plan_with_source_network_files() {
    let files = vec![NetworkFile {
        name: "00-vmware-00.network".into(),
        content: "[Match]\nName=ens192\n\n[Network]\nDHCP=yes\n".into(),
    }];
    let meta = Metadata {
        hostname: Some("vm1".into()),
        network: Some(NetworkConfig {
            files: files.clone(),
            summary: "interface 0 (ens192): DHCP".into(),
        }),
        ..Metadata::default()
    };
    let actions = plan_user_data(&UserData::Empty, &meta, &UnitFiles::Unknown);
    assert_eq!(
        actions,
        [
            Action::WriteNetwork {
                files,
                summary: "interface 0 (ens192): DHCP".into(),
            },
            Action::SetHostname {
                hostname: "vm1".into(),
            },
            Action::UnitCommand {
                unit: "systemd-networkd.service".into(),
                command: UnitCommand::Restart,
            },
        ]
    );
    assert_eq!(
        actions[0].to_string(),
        "configure network (interface 0 (ens192): DHCP): /run/systemd/network/00-vmware-00.network"
    );
    let ignition = parse("{\"ignition\": {\"version\": \"3.0.0\"}}");
    assert!(matches!(ignition, UserData::Ignition(_)));
    assert_eq!(plan_user_data(&ignition, &meta, &UnitFiles::Unknown), []);
}

/// coreos-vagrant's `user-data.sample`, as users ship it.
const VAGRANT_SAMPLE: &str = include_str!("../../../tests/data/coreos-vagrant/user-data.sample");

/// The container host's units that the sample touches: Debian's etcd (with its alias) and docker.
fn container_host_units() -> UnitFiles {
    UnitFiles::from_names([
        "etcd.service",
        "docker.service",
        "docker.socket",
        "getty@.service",
    ])
}

const FLEET_WHY: &str = "fleet.service: not part of this OS (fleet was retired in 2018; schedule \
                         containers with Kubernetes, or run each container as a systemd unit \
                         with docker)";
const FLANNEL_WHY: &str = "flanneld.service: not part of this OS (flanneld is not shipped; run \
                           flannel as a container (a Kubernetes DaemonSet) or use docker's own \
                           networks)";

#[test]
fn plan_of_the_vagrant_sample_skips_what_the_machine_lacks() {
    let addresses = cloudconfig::Addresses {
        public_ipv4: Some("172.17.8.101".into()),
        private_ipv4: Some("172.17.8.101".into()),
        ..cloudconfig::Addresses::default()
    };
    let text = cloudconfig::substitute(VAGRANT_SAMPLE.as_bytes(), &addresses);
    let c = config(std::str::from_utf8(&text).unwrap());
    let actions = plan(&c, &Metadata::default(), &container_host_units());
    let lines: Vec<String> = actions.iter().map(Action::to_string).collect();
    assert_eq!(
        lines,
        [
            "write /run/flannel/options.env (0644, 27 bytes)".to_string(),
            "write drop-in /run/systemd/system/etcd.service.d/20-cloudinit.conf".into(),
            "enable etcd.service (runtime)".into(),
            "write drop-in /run/systemd/system/fleet.service.d/20-cloudinit.conf".into(),
            "write drop-in /etc/systemd/system/flanneld.service.d/50-network-config.conf".into(),
            "write unit /etc/systemd/system/docker-tcp.socket".into(),
            "enable docker-tcp.socket".into(),
            "systemctl daemon-reload".into(),
            // etcd2.service is etcd.service here, started once.
            "systemctl --no-block start etcd.service".into(),
            format!("{FLEET_WHY}; start skipped"),
            format!("{FLANNEL_WHY}; start skipped"),
            "systemctl --no-block start docker-tcp.socket".into(),
        ]
    );
    let skipped: Vec<(&str, &str)> = actions
        .iter()
        .filter_map(|a| match a {
            Action::SkipUnit { unit, verb, .. } => Some((unit.as_str(), *verb)),
            _ => None,
        })
        .collect();
    assert_eq!(
        skipped,
        [("fleet.service", "start"), ("flanneld.service", "start")]
    );
    assert_eq!(
        c.coreos.flannel.options_env().as_deref(),
        Some("FLANNELD_IFACE=172.17.8.101")
    );
    assert_eq!(
        units::fleet_drop_in(&c.coreos.fleet),
        "[Service]\nEnvironment=\"FLEET_PUBLIC_IP=172.17.8.101\"\n"
    );
}

#[test]
fn presence_of_units() {
    use super::plan::{presence, Presence};
    let files = UnitFiles::from_names(["etcd.service", "getty@.service", "a.service"]);
    let provided: std::collections::BTreeSet<String> =
        ["mine.service".to_string(), "tpl@.service".to_string()].into();
    let p = |unit: &str| presence(unit, &provided, &files);
    assert_eq!(p("a.service"), Presence::Present);
    assert_eq!(p("getty@ttyS0.service"), Presence::Present, "its template");
    assert_eq!(p("mine.service"), Presence::Present, "the config writes it");
    assert_eq!(
        p("tpl@x.service"),
        Presence::Present,
        "the config writes its template"
    );
    assert_eq!(p("dev-sda.device"), Presence::Present, "systemd makes it");
    assert_eq!(p("10-eth.network"), Presence::Present, "not a systemd unit");
    assert_eq!(p("etcd2.service"), Presence::Renamed("etcd.service"));
    assert_eq!(p("etcd-member.service"), Presence::Renamed("etcd.service"));
    assert_eq!(p("fleet.service"), Presence::Absent(FLEET_WHY.into()));
    let Presence::Absent(why) = p("locksmithd.service") else {
        panic!("locksmithd is absent")
    };
    assert!(why.contains("coreos.update.reboot-strategy"), "{why}");
    assert_eq!(
        p("nosuch.service"),
        Presence::Absent(
            "nosuch.service: no unit file in /etc/systemd/system, /run/systemd/system, \
             /usr/local/lib/systemd/system, /usr/lib/systemd/system, /lib/systemd/system, \
             and the config gives none"
                .into()
        )
    );
    // Without etcd on the machine, etcd2.service has nowhere to go.
    let bare = UnitFiles::from_names(["a.service"]);
    assert!(matches!(
        presence("etcd2.service", &provided, &bare),
        Presence::Absent(_)
    ));
    // A machine nobody looked at has everything.
    assert_eq!(
        presence("fleet.service", &provided, &UnitFiles::Unknown),
        Presence::Present
    );
}

#[test]
fn units_written_by_the_config_count_as_present() {
    let c = config(
        "#cloud-config\nwrite_files:\n  - path: /etc/systemd/system/fleet.service\n    content: \"[Service]\\nExecStart=/opt/bin/fleetd\\n\"\n  - path: /etc/systemd/system.conf\n    content: x\ncoreos:\n  units:\n    - name: flanneld.service\n      content: \"[Service]\\n\"\n    - name: fleet.service\n      command: start\n    - name: flanneld.service\n      command: start\n",
    );
    assert_eq!(
        super::plan::provided_units(&c),
        ["fleet.service".to_string(), "flanneld.service".to_string()].into()
    );
    let actions = plan(
        &c,
        &Metadata::default(),
        &UnitFiles::from_names(["x.service"]),
    );
    assert!(
        !actions.iter().any(|a| matches!(a, Action::SkipUnit { .. })),
        "{actions:#?}"
    );
}

#[test]
fn etcd_section_on_a_machine_without_etcd() {
    let c = config("#cloud-config\ncoreos:\n  etcd2:\n    name: n1\n");
    let actions = plan(
        &c,
        &Metadata::default(),
        &UnitFiles::from_names(["x.service"]),
    );
    let why = "etcd.service: no unit file in /etc/systemd/system, /run/systemd/system, \
               /usr/local/lib/systemd/system, /usr/lib/systemd/system, /lib/systemd/system, \
               and the config gives none";
    assert_eq!(
        actions[1..],
        [
            Action::SkipUnit {
                unit: "etcd.service".into(),
                verb: "enable",
                why: why.into(),
            },
            Action::DaemonReload,
            Action::SkipUnit {
                unit: "etcd.service".into(),
                verb: "start",
                why: why.into(),
            },
        ]
    );
    assert!(
        matches!(&actions[0], Action::WriteDropIn { unit, .. } if unit == "etcd.service"),
        "the drop-in is still written"
    );
}

#[test]
fn a_live_run_of_the_vagrant_sample_warns_and_applies_the_rest() {
    let tmp = minimal_root("agent-vagrant-sample");
    let root = tmp.path();
    let lib = root.join("lib/systemd/system");
    fs::create_dir_all(&lib).unwrap();
    fs::write(
        lib.join("etcd.service"),
        "[Service]\nExecStart=/usr/bin/etcd $DAEMON_ARGS\n[Install]\nWantedBy=multi-user.target\nAlias=etcd2.service\n",
    )
    .unwrap();
    fs::write(
        lib.join("docker.service"),
        "[Service]\nExecStart=/usr/bin/dockerd\n",
    )
    .unwrap();
    let host = FakeHost {
        ipv4: Some("172.17.8.101".parse().unwrap()),
        ..FakeHost::live()
    };
    let opts = file_input(&tmp, VAGRANT_SAMPLE.as_bytes());
    let (summary, out, err) = run_with(&opts, &host);
    assert!(
        summary.success(),
        "warnings are not failures: {summary:?}\n{err}"
    );
    let source = format!("file {}", root.join("user-data").display());
    let err: Vec<&str> = err.lines().collect();
    assert_eq!(
        err,
        [
            format!("coreos-cloudinit: {source}: line 4: warning: deprecated key \"etcd2\" (etcd2 is no longer shipped in Container Linux)"),
            format!("coreos-cloudinit: {source}: line 14: warning: deprecated key \"fleet\" (fleet is no longer shipped in Container Linux)"),
            format!("coreos-cloudinit: {source}: line 16: warning: coreos.flannel: {FLANNEL_WHY}; /run/flannel/options.env is still written"),
            format!("coreos-cloudinit: {source}: line 19: info: etcd2.service is etcd.service on this OS: its command, enable and drop-ins apply to etcd.service"),
            format!("coreos-cloudinit: {source}: line 21: warning: {FLEET_WHY}"),
            format!("coreos-cloudinit: {source}: line 23: warning: {FLANNEL_WHY}"),
            format!("coreos-cloudinit: warning: {FLEET_WHY}; start skipped"),
            format!("coreos-cloudinit: warning: {FLANNEL_WHY}; start skipped"),
        ]
    );
    assert_eq!(
        host.calls(),
        [
            "systemctl daemon-reload",
            "systemctl --no-block start etcd.service",
            "systemctl --no-block start docker-tcp.socket",
        ],
        "no systemctl call for fleet or flanneld"
    );
    let read = |rel: &str| fs::read_to_string(root.join(rel)).unwrap();
    assert_eq!(
        read("run/systemd/system/etcd.service.d/20-cloudinit.conf"),
        "[Service]\n\
         Environment=\"ETCD_ADVERTISE_CLIENT_URLS=http://172.17.8.101:2379\"\n\
         Environment=\"ETCD_INITIAL_ADVERTISE_PEER_URLS=http://172.17.8.101:2380\"\n\
         Environment=\"ETCD_LISTEN_CLIENT_URLS=http://0.0.0.0:2379,http://0.0.0.0:4001\"\n\
         Environment=\"ETCD_LISTEN_PEER_URLS=http://172.17.8.101:2380,http://172.17.8.101:7001\"\n"
    );
    assert_eq!(
        fs::read_link(root.join("run/systemd/system/etcd2.service")).unwrap(),
        Path::new("/lib/systemd/system/etcd.service"),
        "enabling etcd makes its etcd2 alias"
    );
    assert_eq!(
        read("run/flannel/options.env"),
        "FLANNELD_IFACE=172.17.8.101"
    );
    assert_eq!(
        read("run/systemd/system/fleet.service.d/20-cloudinit.conf"),
        "[Service]\nEnvironment=\"FLEET_PUBLIC_IP=172.17.8.101\"\n"
    );
    assert!(
        read("etc/systemd/system/flanneld.service.d/50-network-config.conf")
            .starts_with("[Service]\nExecStartPre=/usr/bin/etcdctl set /coreos.com/network/config")
    );
    assert!(read("etc/systemd/system/docker-tcp.socket").contains("ListenStream=2375\n"));
    assert_eq!(
        fs::read_link(root.join("etc/systemd/system/sockets.target.wants/docker-tcp.socket"))
            .unwrap(),
        Path::new("/etc/systemd/system/docker-tcp.socket")
    );
    assert!(out.contains("coreos-cloudinit: write unit /etc/systemd/system/docker-tcp.socket\n"));
}
