//! `coreos-cloudinit`'s plan applied to a temporary root in offline mode (files only): account
//! files, SSH keys, write_files with every encoding and owner, units, drop-ins, enablement
//! symlinks, masks, runtime units, update.conf merging and the etcd drop-in.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use cloudconfig::Addresses;
use cloudinit::apply::{apply, Outcome};
use cloudinit::host::OfflineHost;
use cloudinit::metadata::Metadata;
use cloudinit::plan::plan_user_data;
use cloudinit::units::UnitFiles;
use cloudinit::{Console, Input, Options};
use util::base64::encode as base64;

/// A root with the minimal image's account files.
fn root() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let etc = tmp.path().join("etc");
    fs::create_dir_all(&etc).unwrap();
    let minimal = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../services/minimal");
    for f in ["passwd", "group", "shadow"] {
        fs::copy(minimal.join(f), etc.join(f)).unwrap();
    }
    tmp
}

fn put(root: &Path, rel: &str, content: &str) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, content).unwrap();
}

fn read(root: &Path, rel: &str) -> String {
    fs::read_to_string(root.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn mode(root: &Path, rel: &str) -> (u32, u32, u32) {
    let m = fs::symlink_metadata(root.join(rel)).unwrap();
    (m.permissions().mode() & 0o7777, m.uid(), m.gid())
}

fn link(root: &Path, rel: &str) -> String {
    fs::read_link(root.join(rel))
        .unwrap_or_else(|e| panic!("{rel}: {e}"))
        .to_string_lossy()
        .into_owned()
}

/// Parses, plans (for the unit files under `root`, as the agent does) and applies; returns the
/// failure count and one line per action.
fn apply_text(root: &Path, user_data: &str, meta: &Metadata) -> (usize, Vec<String>) {
    let parsed = cloudconfig::parse(user_data.as_bytes()).expect("valid user-data");
    let unit_files = UnitFiles::read(root).expect("listing the unit files");
    let actions = plan_user_data(&parsed, meta, &unit_files);
    let mut lines = Vec::new();
    let failures = apply(&actions, root, &OfflineHost, &mut |action, result| {
        lines.push(match result {
            Ok(Outcome::Done) => format!("{action}"),
            Ok(Outcome::Note(n)) => format!("{action}: {n}"),
            Ok(Outcome::Skipped(w)) => format!("{action}: skipped ({w})"),
            Ok(Outcome::Warning(w)) => format!("WARNING {w}"),
            Err(e) => format!("{action}: ERROR {e}"),
        })
    });
    (failures, lines)
}

const MINIMAL_PASSWD: &str = include_str!("../../../services/minimal/passwd");
const MINIMAL_GROUP: &str = include_str!("../../../services/minimal/group");
const MINIMAL_SHADOW: &str = include_str!("../../../services/minimal/shadow");

#[test]
fn users_groups_and_ssh_keys() {
    let tmp = root();
    let r = tmp.path();
    put(
        r,
        "etc/passwd",
        &format!("{MINIMAL_PASSWD}ops:x:900:900:Ops:/home/ops:/bin/sh\n"),
    );
    put(
        r,
        "home/ops/.ssh/authorized_keys",
        "ssh-rsa HANDMADE ops@laptop\n",
    );
    fs::set_permissions(r.join("etc/shadow"), fs::Permissions::from_mode(0o640)).unwrap();
    let config = "#cloud-config
ssh_authorized_keys:
  - ssh-ed25519 AAAA top
users:
  - name: core
    passwd: $6$salt$hash
    groups: [docker, users]
    ssh_authorized_keys: [ssh-ed25519 BBBB core]
  - name: svc
    system: true
    no_create_home: true
    homedir: /var/lib/svc
    shell: /usr/sbin/nologin
    primary_group: disk
  - name: ops
    ssh_authorized_keys: [ssh-ed25519 CCCC ops]
";
    let meta = Metadata {
        ssh_public_keys: vec!["ssh-rsa META cloud".into()],
        ..Metadata::default()
    };
    let (failures, lines) = apply_text(r, config, &meta);
    assert_eq!(failures, 0, "{lines:#?}");
    assert_eq!(
        lines,
        [
            "create or update user core (groups docker,users): created (uid 1000, gid 1000), new groups: core, docker",
            "create or update user svc: created (uid 999, gid 6)",
            "create or update user ops: updated (uid 900, gid 900)",
            "authorize 3 SSH keys for core (authorized_keys.d/coreos-cloudinit)",
            "authorize 1 SSH key for ops (authorized_keys.d/coreos-cloudinit)",
        ]
    );
    assert_eq!(
        read(r, "etc/passwd"),
        format!(
            "{MINIMAL_PASSWD}ops:x:900:900:Ops:/home/ops:/bin/sh\n\
             core:x:1000:1000::/home/core:/bin/sh\n\
             svc:x:999:6::/var/lib/svc:/usr/sbin/nologin\n"
        )
    );
    let users_line = MINIMAL_GROUP
        .lines()
        .find(|l| l.starts_with("users:"))
        .unwrap();
    assert_eq!(
        read(r, "etc/group"),
        format!("{MINIMAL_GROUP}core:x:1000:\ndocker:x:999:core\n")
            .replace(&format!("{users_line}\n"), &format!("{users_line}core\n"))
    );
    assert_eq!(
        read(r, "etc/shadow"),
        format!("{MINIMAL_SHADOW}core:$6$salt$hash::0:99999:7:::\nsvc:*::0:99999:7:::\n")
    );
    assert_eq!(mode(r, "etc/shadow").0, 0o640, "shadow keeps its mode");
    assert!(!r.join("etc/gshadow").exists(), "no gshadow is created");
    assert_eq!(mode(r, "home/core"), (0o755, 1000, 1000));
    assert!(!r.join("var/lib/svc").exists());
    // core's keys: users[] entry, top-level, metadata, in one file.
    assert_eq!(mode(r, "home/core/.ssh"), (0o700, 1000, 1000));
    assert_eq!(
        mode(r, "home/core/.ssh/authorized_keys.d"),
        (0o700, 1000, 1000)
    );
    let core_keys = "ssh-ed25519 BBBB core\nssh-ed25519 AAAA top\nssh-rsa META cloud\n";
    assert_eq!(
        read(r, "home/core/.ssh/authorized_keys.d/coreos-cloudinit"),
        core_keys
    );
    assert_eq!(
        read(r, "home/core/.ssh/authorized_keys"),
        format!("# auto-generated by update-ssh-keys\n{core_keys}")
    );
    assert_eq!(
        mode(r, "home/core/.ssh/authorized_keys"),
        (0o600, 1000, 1000)
    );
    // ops had a hand-made authorized_keys: kept.
    assert_eq!(
        read(r, "home/ops/.ssh/authorized_keys.d/old_authorized_keys"),
        "ssh-rsa HANDMADE ops@laptop\n"
    );
    assert_eq!(
        read(r, "home/ops/.ssh/authorized_keys"),
        "# auto-generated by update-ssh-keys\nssh-ed25519 CCCC ops\nssh-rsa HANDMADE ops@laptop\n"
    );
    // Applying again changes nothing.
    let files = [
        "etc/passwd",
        "etc/group",
        "etc/shadow",
        "home/core/.ssh/authorized_keys",
        "home/ops/.ssh/authorized_keys",
    ];
    let before: Vec<String> = files.iter().map(|f| read(r, f)).collect();
    let (failures, _) = apply_text(r, config, &meta);
    assert_eq!(failures, 0);
    let after: Vec<String> = files.iter().map(|f| read(r, f)).collect();
    assert_eq!(before, after);
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use flate2::{write::GzEncoder, Compression};
    use std::io::Write;
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

#[test]
fn write_files_with_every_encoding_and_owner() {
    let tmp = root();
    let r = tmp.path();
    let content = b"hello\nworld\n";
    let b64 = base64(content);
    let gz_b64 = base64(&gzip(content));
    let mut config = String::from(
        "#cloud-config\nusers:\n  - name: core\nwrite_files:\n  - path: /etc/plain\n    content: |\n      hello\n      world\n",
    );
    for enc in ["b64", "base64"] {
        config.push_str(&format!(
            "  - path: /etc/enc/{enc}\n    encoding: {enc}\n    content: {b64}\n"
        ));
    }
    for enc in ["gz", "gzip"] {
        // Raw gzip bytes reach YAML as !!binary, as upstream's documentation shows.
        config.push_str(&format!(
            "  - path: /etc/enc/{enc}\n    encoding: {enc}\n    content: !!binary {gz_b64}\n"
        ));
    }
    for enc in ["gz+base64", "gzip+base64", "gz+b64", "gzip+b64"] {
        config.push_str(&format!(
            "  - path: /etc/enc/{enc}\n    encoding: {enc}\n    content: {gz_b64}\n"
        ));
    }
    config.push_str(
        "  - path: /home/core/owned
    owner: core:core
    permissions: '0600'
    content: mine
  - path: /srv/numeric
    owner: '1234:5678'
    permissions: 0755
    content: n
  - path: relative/file
    owner: core
    content: r
  - path: /etc/nobody
    owner: ghost
    content: x
",
    );
    let (failures, lines) = apply_text(r, &config, &Metadata::default());
    assert_eq!(failures, 1, "{lines:#?}");
    assert_eq!(
        lines.last().unwrap(),
        "write /etc/nobody (0644, 1 bytes, owner ghost): ERROR no user \"ghost\" in /etc/passwd"
    );
    assert_eq!(read(r, "etc/plain"), "hello\nworld\n");
    assert_eq!(mode(r, "etc/plain"), (0o644, 0, 0));
    for enc in [
        "b64",
        "base64",
        "gz",
        "gzip",
        "gz+base64",
        "gzip+base64",
        "gz+b64",
        "gzip+b64",
    ] {
        assert_eq!(
            read(r, &format!("etc/enc/{enc}")),
            "hello\nworld\n",
            "{enc}"
        );
    }
    assert_eq!(read(r, "home/core/owned"), "mine");
    assert_eq!(mode(r, "home/core/owned"), (0o600, 1000, 1000));
    assert_eq!(mode(r, "srv/numeric"), (0o755, 1234, 5678));
    assert_eq!(
        mode(r, "relative/file"),
        (0o644, 1000, 0),
        "chown user keeps the group"
    );
    assert_eq!(mode(r, "srv").0, 0o755, "parents are 0755");
    assert!(!r.join("etc/nobody").exists());
    let leftovers: Vec<_> = fs::read_dir(r.join("etc"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

#[test]
fn units_drop_ins_enable_mask_runtime_and_etcd() {
    let tmp = root();
    let r = tmp.path();
    put(
        r,
        "usr/lib/systemd/system/etcd.service",
        "[Unit]\nDescription=etcd\n[Service]\nExecStart=/usr/bin/etcd $DAEMON_ARGS\n[Install]\nWantedBy=multi-user.target\nAlias=etcd2.service\n",
    );
    put(
        r,
        "usr/lib/systemd/system/getty@.service",
        "[Service]\nExecStart=-/sbin/agetty %I\n[Install]\nWantedBy=getty.target\n",
    );
    put(
        r,
        "etc/systemd/system/rpcbind.service",
        "[Service]\nExecStart=/bin/false\n",
    );
    put(
        r,
        "lib/systemd/system/docker.service",
        "[Service]\nExecStart=/usr/bin/dockerd\n",
    );
    let config = r#"#cloud-config
coreos:
  etcd2:
    name: node1
    initial-cluster: node1=http://10.0.0.1:2380
    discovery: https://discovery.example/abc%20
  units:
    - name: hello.service
      enable: true
      content: |
        [Service]
        ExecStart=/usr/bin/echo hello
        [Install]
        WantedBy=multi-user.target
        Alias=hi.service
    - name: rt.service
      runtime: true
      enable: true
      content: |
        [Service]
        ExecStart=/bin/true
        [Install]
        WantedBy=default.target
    - name: docker.service
      drop-ins:
        - name: 10-opts.conf
          content: |
            [Service]
            Environment=DOCKER_OPTS=--debug
        - name: empty.conf
      command: restart
    - name: rpcbind.service
      mask: true
    - name: getty@ttyS1.service
      enable: true
    - name: 10-eth.network
      enable: true
      content: |
        [Match]
        Name=eth0
    - name: plain.service
      enable: true
      content: "[Service]\nExecStart=/bin/true\n"
    - name: missing.service
      enable: true
"#;
    let (failures, lines) = apply_text(r, config, &Metadata::default());
    assert_eq!(
        lines,
        [
            "write drop-in /run/systemd/system/etcd.service.d/20-cloudinit.conf",
            "enable etcd.service (runtime): /run/systemd/system/etcd2.service → /usr/lib/systemd/system/etcd.service; /run/systemd/system/multi-user.target.wants/etcd.service → /usr/lib/systemd/system/etcd.service",
            "write unit /etc/systemd/system/hello.service",
            "enable hello.service: /etc/systemd/system/hi.service → /etc/systemd/system/hello.service; /etc/systemd/system/multi-user.target.wants/hello.service → /etc/systemd/system/hello.service",
            "write unit /run/systemd/system/rt.service",
            "enable rt.service (runtime): /run/systemd/system/default.target.wants/rt.service → /run/systemd/system/rt.service",
            "write drop-in /etc/systemd/system/docker.service.d/10-opts.conf",
            "mask rpcbind.service",
            "enable getty@ttyS1.service: /etc/systemd/system/getty.target.wants/getty@ttyS1.service → /usr/lib/systemd/system/getty@.service",
            "write unit /etc/systemd/network/10-eth.network",
            "write unit /etc/systemd/system/plain.service",
            "enable plain.service: /etc/systemd/system/plain.service has no [Install] WantedBy=, RequiredBy= or Alias=: nothing to enable",
            "WARNING missing.service: no unit file in /etc/systemd/system, /run/systemd/system, /usr/local/lib/systemd/system, /usr/lib/systemd/system, /lib/systemd/system, and the config gives none; enable skipped",
            "systemctl daemon-reload: skipped (offline)",
            "systemctl --no-block restart systemd-networkd.service: skipped (offline)",
            "systemctl --no-block start etcd.service: skipped (offline)",
            "systemctl --no-block restart docker.service: skipped (offline)",
        ]
    );
    assert_eq!(failures, 0, "a unit the machine lacks is a warning");
    assert_eq!(
        read(r, "run/systemd/system/etcd.service.d/20-cloudinit.conf"),
        "[Service]\n\
         Environment=\"ETCD_DISCOVERY=https://discovery.example/abc%%20\"\n\
         Environment=\"ETCD_INITIAL_CLUSTER=node1=http://10.0.0.1:2380\"\n\
         Environment=\"ETCD_NAME=node1\"\n"
    );
    assert_eq!(
        link(r, "run/systemd/system/multi-user.target.wants/etcd.service"),
        "/usr/lib/systemd/system/etcd.service"
    );
    assert_eq!(read(r, "etc/systemd/system/hello.service"), "[Service]\nExecStart=/usr/bin/echo hello\n[Install]\nWantedBy=multi-user.target\nAlias=hi.service\n");
    assert_eq!(mode(r, "etc/systemd/system/hello.service").0, 0o644);
    assert_eq!(
        link(
            r,
            "etc/systemd/system/multi-user.target.wants/hello.service"
        ),
        "/etc/systemd/system/hello.service"
    );
    assert_eq!(
        link(r, "etc/systemd/system/hi.service"),
        "/etc/systemd/system/hello.service"
    );
    assert_eq!(
        link(r, "run/systemd/system/default.target.wants/rt.service"),
        "/run/systemd/system/rt.service"
    );
    assert!(!r.join("etc/systemd/system/rt.service").exists());
    assert_eq!(
        read(r, "etc/systemd/system/docker.service.d/10-opts.conf"),
        "[Service]\nEnvironment=DOCKER_OPTS=--debug\n"
    );
    assert!(!r
        .join("etc/systemd/system/docker.service.d/empty.conf")
        .exists());
    assert_eq!(link(r, "etc/systemd/system/rpcbind.service"), "/dev/null");
    assert_eq!(
        read(r, "etc/systemd/network/10-eth.network"),
        "[Match]\nName=eth0\n"
    );
    // A masked unit cannot be enabled; writing its content unmasks it.
    let (failures, lines) = apply_text(
        r,
        "#cloud-config\ncoreos:\n  units:\n    - name: rpcbind.service\n      enable: true\n",
        &Metadata::default(),
    );
    assert_eq!(failures, 1);
    assert_eq!(
        lines[0],
        "enable rpcbind.service: ERROR rpcbind.service is masked (/etc/systemd/system/rpcbind.service → /dev/null)"
    );
    let (failures, _) = apply_text(
        r,
        "#cloud-config\ncoreos:\n  units:\n    - name: rpcbind.service\n      content: \"[Service]\\n\"\n",
        &Metadata::default(),
    );
    assert_eq!(failures, 0);
    assert!(
        !fs::symlink_metadata(r.join("etc/systemd/system/rpcbind.service"))
            .unwrap()
            .is_symlink()
    );
}

#[test]
fn update_conf_is_merged() {
    let tmp = root();
    let r = tmp.path();
    put(
        r,
        "etc/update-engine/update.conf",
        "# set by the image\nGROUP=stable\nSERVER=https://updates.example/\nREBOOT_WINDOW_START=Mon 01:00\nREBOOT_WINDOW_LENGTH=2h\nCHECK_INTERVAL=600\n",
    );
    fs::set_permissions(
        r.join("etc/update-engine/update.conf"),
        fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    let config = "#cloud-config
coreos:
  update:
    group: beta
    reboot-strategy: off
  locksmith:
    endpoint: http://10.0.0.1:2379,http://10.0.0.2:2379
    group: web
    window-start: Sun 03:00
    window-length: 1h30m
";
    let (failures, lines) = apply_text(r, config, &Metadata::default());
    assert_eq!(failures, 0, "{lines:?}");
    assert_eq!(
        read(r, "etc/update-engine/update.conf"),
        "# set by the image\nGROUP=beta\nSERVER=https://updates.example/\nCHECK_INTERVAL=600\n\
         REBOOT_STRATEGY=off\nLOCKSMITHD_ENDPOINT=http://10.0.0.1:2379,http://10.0.0.2:2379\n\
         LOCKSMITHD_GROUP=web\nLOCKSMITHD_REBOOT_WINDOW_START=Sun 03:00\nLOCKSMITHD_REBOOT_WINDOW_LENGTH=1h30m\n"
    );
    assert_eq!(mode(r, "etc/update-engine/update.conf").0, 0o640);
    // Without a file: created.
    let tmp = root();
    let (failures, _) = apply_text(
        tmp.path(),
        "#cloud-config\ncoreos:\n  update:\n    reboot-strategy: etcd-lock\n",
        &Metadata::default(),
    );
    assert_eq!(failures, 0);
    assert_eq!(
        read(tmp.path(), "etc/update-engine/update.conf"),
        "REBOOT_STRATEGY=etcd-lock\n"
    );
}

#[test]
fn hostname_hosts_environment_and_oem() {
    let tmp = root();
    let r = tmp.path();
    put(
        r,
        "etc/environment",
        "PATH=/usr/bin\nCOREOS_PUBLIC_IPV4=old\n",
    );
    let meta = Metadata {
        hostname: Some("meta-host".into()),
        addresses: Addresses {
            public_ipv4: Some("54.1.2.3".into()),
            private_ipv4: Some("10.0.0.5".into()),
            ..Addresses::default()
        },
        ..Metadata::default()
    };
    let config = "#cloud-config\nmanage_etc_hosts: localhost\ncoreos:\n  oem:\n    id: rackspace\n    name: Rackspace Cloud Servers\n    version_id: 168.0.0\n    home_url: https://www.rackspace.com/cloud/servers/\n";
    let (failures, lines) = apply_text(r, config, &meta);
    assert_eq!(failures, 0, "{lines:?}");
    assert_eq!(
        lines[0],
        "set hostname meta-host: kernel hostname not set (offline)"
    );
    assert_eq!(read(r, "etc/hostname"), "meta-host\n");
    assert_eq!(
        read(r, "etc/hosts"),
        "127.0.0.1 localhost\n::1 localhost\n127.0.0.1 meta-host\n"
    );
    assert_eq!(
        read(r, "etc/environment"),
        "PATH=/usr/bin\nCOREOS_PUBLIC_IPV4=54.1.2.3\nCOREOS_PRIVATE_IPV4=10.0.0.5\n"
    );
    assert_eq!(
        read(r, "etc/oem-release"),
        "ID=rackspace\nVERSION_ID=168.0.0\nNAME=\"Rackspace Cloud Servers\"\nHOME_URL=\"https://www.rackspace.com/cloud/servers/\"\nBUG_REPORT_URL=\"\"\n"
    );
    // Without any hostname, /etc/hosts takes /etc/hostname's.
    let (_, _) = apply_text(
        r,
        "#cloud-config\nmanage_etc_hosts: localhost\n",
        &Metadata::default(),
    );
    assert_eq!(
        read(r, "etc/hosts"),
        "127.0.0.1 localhost\n::1 localhost\n127.0.0.1 meta-host\n"
    );
    // A hostname the kernel would refuse is an error, not a file.
    let (failures, lines) = apply_text(
        r,
        "#cloud-config\nhostname: \"bad name\"\n",
        &Metadata::default(),
    );
    assert_eq!(failures, 1);
    assert!(
        lines[0].contains("ERROR \"bad name\" is not a hostname"),
        "{lines:?}"
    );
    assert_eq!(read(r, "etc/hostname"), "meta-host\n");
}

#[test]
fn symlinks_in_a_home_are_not_followed() {
    let tmp = root();
    let r = tmp.path();
    put(
        r,
        "etc/passwd",
        &format!("{MINIMAL_PASSWD}mallory:x:1000:1000::/home/mallory:/bin/sh\n"),
    );
    put(r, "secret/file", "root only\n");
    fs::create_dir_all(r.join("home/mallory")).unwrap();
    // ~/.ssh pointing elsewhere: refused, the target keeps its owner.
    std::os::unix::fs::symlink(r.join("secret"), r.join("home/mallory/.ssh")).unwrap();
    let config = "#cloud-config\nusers:\n  - name: mallory\n    ssh_authorized_keys: [ssh-rsa K]\n";
    let (failures, lines) = apply_text(r, config, &Metadata::default());
    assert_eq!(failures, 1);
    assert!(
        lines[1].contains("exists and is not a directory (symlinks are not followed)"),
        "{lines:?}"
    );
    assert_eq!(mode(r, "secret").1, 0);
    // authorized_keys pointing at a file root can read: not copied into the user's keys.
    fs::remove_file(r.join("home/mallory/.ssh")).unwrap();
    fs::create_dir_all(r.join("home/mallory/.ssh")).unwrap();
    std::os::unix::fs::symlink(
        r.join("secret/file"),
        r.join("home/mallory/.ssh/authorized_keys"),
    )
    .unwrap();
    let (failures, lines) = apply_text(r, config, &Metadata::default());
    assert_eq!(failures, 0, "{lines:?}");
    assert!(!r
        .join("home/mallory/.ssh/authorized_keys.d/old_authorized_keys")
        .exists());
    assert_eq!(
        read(r, "home/mallory/.ssh/authorized_keys"),
        "# auto-generated by update-ssh-keys\nssh-rsa K\n"
    );
    assert_eq!(
        read(r, "secret/file"),
        "root only\n",
        "the link was replaced, not followed"
    );
}

/// coreos-vagrant's `user-data.sample` through the whole agent (`cloudinit::run`, offline) on a
/// container-host-like root: warnings for fleet and flanneld, which the image lacks, and the
/// rest applied.
#[test]
fn the_vagrant_sample_applies_with_warnings_for_what_the_image_lacks() {
    let tmp = root();
    let r = tmp.path();
    put(
        r,
        "lib/systemd/system/etcd.service",
        "[Service]\nExecStart=/usr/bin/etcd $DAEMON_ARGS\n[Install]\nWantedBy=multi-user.target\nAlias=etcd2.service\n",
    );
    put(r, "lib/systemd/system/docker.service", "[Service]\n");
    put(
        r,
        "etc/environment",
        "COREOS_PUBLIC_IPV4=192.168.121.5\nCOREOS_PRIVATE_IPV4=172.17.8.101\n",
    );
    let sample = include_str!("../../../tests/data/coreos-vagrant/user-data.sample");
    put(r, "user-data", sample);
    let opts = Options::new(r, Input::File(r.join("user-data")));
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let summary = cloudinit::run(
        &opts,
        &OfflineHost,
        &mut Console {
            out: &mut out,
            err: &mut err,
        },
    );
    let (out, err) = (
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    );
    assert!(summary.success(), "{summary:?}\n{err}");
    let agent_warnings: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("coreos-cloudinit: warning: "))
        .collect();
    assert_eq!(
        agent_warnings,
        [
            "coreos-cloudinit: warning: fleet.service: not part of this OS (fleet was retired in \
             2018; schedule containers with Kubernetes, or run each container as a systemd unit \
             with docker); start skipped",
            "coreos-cloudinit: warning: flanneld.service: not part of this OS (flanneld is not \
             shipped; run flannel as a container (a Kubernetes DaemonSet) or use docker's own \
             networks); start skipped",
        ]
    );
    assert_eq!(
        err.lines().count(),
        8,
        "six validator findings, two skipped units:\n{err}"
    );
    assert_eq!(
        read(r, "run/systemd/system/etcd.service.d/20-cloudinit.conf"),
        "[Service]\n\
         Environment=\"ETCD_ADVERTISE_CLIENT_URLS=http://192.168.121.5:2379\"\n\
         Environment=\"ETCD_INITIAL_ADVERTISE_PEER_URLS=http://172.17.8.101:2380\"\n\
         Environment=\"ETCD_LISTEN_CLIENT_URLS=http://0.0.0.0:2379,http://0.0.0.0:4001\"\n\
         Environment=\"ETCD_LISTEN_PEER_URLS=http://172.17.8.101:2380,http://172.17.8.101:7001\"\n"
    );
    assert_eq!(
        link(r, "run/systemd/system/multi-user.target.wants/etcd.service"),
        "/lib/systemd/system/etcd.service"
    );
    assert_eq!(
        read(r, "etc/systemd/system/docker-tcp.socket"),
        "[Unit]\nDescription=Docker Socket for the API\n\n[Socket]\nListenStream=2375\n\
         Service=docker.service\nBindIPv6Only=both\n\n[Install]\nWantedBy=sockets.target\n"
    );
    assert_eq!(
        link(
            r,
            "etc/systemd/system/sockets.target.wants/docker-tcp.socket"
        ),
        "/etc/systemd/system/docker-tcp.socket"
    );
    assert_eq!(
        read(r, "run/flannel/options.env"),
        "FLANNELD_IFACE=192.168.121.5"
    );
    assert_eq!(mode(r, "run/flannel/options.env").0, 0o644);
    assert_eq!(
        read(r, "run/systemd/system/fleet.service.d/20-cloudinit.conf"),
        "[Service]\nEnvironment=\"FLEET_PUBLIC_IP=192.168.121.5\"\n"
    );
    assert_eq!(
        read(r, "etc/systemd/system/flanneld.service.d/50-network-config.conf"),
        "[Service]\nExecStartPre=/usr/bin/etcdctl set /coreos.com/network/config '{ \"Network\": \"10.1.0.0/16\" }'\n"
    );
    assert!(
        out.contains(
            "coreos-cloudinit: systemctl --no-block start etcd.service: skipped (offline)\n"
        ),
        "{out}"
    );
    assert!(!out.contains("fleet.service: skipped"), "{out}");
}
