//! The local sources against files under a temporary root, with a recording host.

use std::fs;
use std::path::Path;

use tempfile::TempDir;

use super::*;
use crate::host::fake::FakeHost;

fn write(root: &Path, rel: &str, content: impl AsRef<[u8]>) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, content).unwrap();
}

fn local_kinds() -> Vec<SourceKind> {
    SourceKind::ORDER.to_vec()
}

#[test]
fn cmdline_urls() {
    struct Case {
        cmdline: &'static str,
        want: Option<&'static str>,
    }
    let cases = [
        Case {
            cmdline: "ro usr=PARTLABEL=USR-A cloud-config-url=http://10.0.0.1/a\n",
            want: Some("http://10.0.0.1/a"),
        },
        Case {
            cmdline: "cloud-config-url=http://x/1 cloud-config-url=http://x/2",
            want: Some("http://x/2"),
        },
        Case {
            cmdline: "coreos.config.url=http://x/ign cloud-config-url=http://x/cc",
            want: Some("http://x/cc"),
        },
        Case {
            cmdline: "coreos.config.url=https://x/c",
            want: Some("https://x/c"),
        },
        Case {
            cmdline: "cloud-config-url= console=ttyS0",
            want: None,
        },
        Case {
            cmdline: "quiet -- cloud-config-url=http://for-init/",
            want: None,
        },
        Case {
            cmdline: "",
            want: None,
        },
    ];
    for c in cases {
        assert_eq!(cmdline_url(c.cmdline).as_deref(), c.want, "{:?}", c.cmdline);
    }
}

#[test]
fn nothing_anywhere() {
    let tmp = TempDir::with_prefix("sources-none").unwrap();
    write(tmp.path(), "proc/cmdline", "ro quiet\n");
    let host = FakeHost::default();
    let ctx = Context::new(tmp.path(), &host);
    let s = search(&local_kinds(), false, &ctx);
    assert!(s.found.is_none() && s.errors.is_empty(), "{s:?}");
    // fw_cfg's module is asked for; VMware and EC2 are not tried without DMI saying so.
    assert_eq!(host.calls(), ["modprobe qemu_fw_cfg"]);
}

#[test]
fn fw_cfg_then_vagrant_first_found_wins() {
    let tmp = TempDir::with_prefix("sources-local").unwrap();
    let root = tmp.path();
    write(
        root,
        VAGRANT_USER_DATA,
        "#cloud-config\nhostname: vagrant\n",
    );
    write(root, FW_CFG_CONFIG, "#cloud-config\nhostname: qemu\n");
    let host = FakeHost::default();
    let ctx = Context::new(root, &host);
    let found = search(&local_kinds(), false, &ctx).found.unwrap();
    assert_eq!(
        found,
        Found {
            source: "QEMU fw_cfg /sys/firmware/qemu_fw_cfg/by_name/opt/com.coreos/config/raw"
                .into(),
            user_data: b"#cloud-config\nhostname: qemu\n".to_vec(),
            metadata: Metadata::default(),
        }
    );
    assert!(host.calls().is_empty(), "the firmware directory exists");
    let found = search(&[SourceKind::Vagrant], true, &ctx).found.unwrap();
    assert_eq!(
        found.source,
        "Vagrant user-data /var/lib/coreos-vagrant/vagrantfile-user-data"
    );
    assert_eq!(found.user_data, b"#cloud-config\nhostname: vagrant\n");
    // An empty file is still a source (its metadata would apply).
    write(root, VAGRANT_USER_DATA, "");
    fs::remove_file(root.join(FW_CFG_CONFIG)).unwrap();
    let found = search(&local_kinds(), false, &ctx).found.unwrap();
    assert!(found.source.starts_with("Vagrant") && found.user_data.is_empty());
}

#[test]
fn install_after_cmdline_before_fw_cfg() {
    let tmp = TempDir::with_prefix("sources-install").unwrap();
    let root = tmp.path();
    write(
        root,
        INSTALL_USER_DATA,
        "#cloud-config\nhostname: installed\n",
    );
    write(root, FW_CFG_CONFIG, "#cloud-config\nhostname: qemu\n");
    write(
        root,
        VAGRANT_USER_DATA,
        "#cloud-config\nhostname: vagrant\n",
    );
    write(root, "proc/cmdline", "ro quiet\n");
    let host = FakeHost::default();
    let ctx = Context::new(root, &host);
    let found = search(&local_kinds(), false, &ctx).found.unwrap();
    assert_eq!(
        found,
        Found {
            source: "installer user-data /var/lib/coreos-install/user_data".into(),
            user_data: b"#cloud-config\nhostname: installed\n".to_vec(),
            metadata: Metadata::default(),
        }
    );
    assert!(host.calls().is_empty(), "fw_cfg is not probed after a find");
    let order = SourceKind::ORDER;
    let at = |k| order.iter().position(|o| *o == k).unwrap();
    assert_eq!(at(SourceKind::Install), at(SourceKind::Cmdline) + 1);
    // Missing: not there, the next source wins.
    fs::remove_file(root.join(INSTALL_USER_DATA)).unwrap();
    let found = search(&local_kinds(), false, &ctx).found.unwrap();
    assert!(found.source.starts_with("QEMU fw_cfg"), "{found:?}");
    // Unreadable (a directory in its place): an error, and the search goes on.
    fs::create_dir_all(root.join(INSTALL_USER_DATA)).unwrap();
    let s = search(&[SourceKind::Install, SourceKind::Vagrant], true, &ctx);
    assert_eq!(s.errors.len(), 1, "{s:?}");
    assert_eq!(s.errors[0].0, SourceKind::Install);
    assert!(s.found.unwrap().source.starts_with("Vagrant"));
}

fn config_drive_root(tmp: &TempDir) -> &Path {
    let root = tmp.path();
    write(
        root,
        "sys/class/block/sr0/uevent",
        "MAJOR=11\nMINOR=0\nDEVNAME=sr0\nDEVTYPE=disk\n",
    );
    write(
        root,
        "sys/class/block/vda/uevent",
        "DEVNAME=vda\nDEVTYPE=disk\n",
    );
    write(root, "dev/vda", vec![0u8; 4096]);
    write(root, "dev/sr0", drive::heads::iso("config-2", false));
    root
}

#[test]
fn config_drive_is_found_mounted_read_and_unmounted() {
    let tmp = TempDir::with_prefix("sources-configdrive").unwrap();
    let root = config_drive_root(&tmp);
    let drive = TempDir::with_prefix("sources-configdrive-content").unwrap();
    write(
        drive.path(),
        configdrive::USER_DATA,
        "#cloud-config\nssh_authorized_keys: [a]\n",
    );
    write(
        drive.path(),
        configdrive::META_DATA,
        r#"{"hostname": "node7", "public_keys": {"k": "ssh-rsa AAAA k"}}"#,
    );
    let host = FakeHost {
        drive: Some(drive.path().to_path_buf()),
        ..FakeHost::default()
    };
    let ctx = Context::new(root, &host);
    let found = search(&[SourceKind::ConfigDrive], false, &ctx)
        .found
        .unwrap();
    let dev = root.join("dev/sr0");
    let mnt = root.join(configdrive::MOUNT_DIR);
    assert_eq!(
        found,
        Found {
            source: format!("config drive {}", dev.display()),
            user_data: b"#cloud-config\nssh_authorized_keys: [a]\n".to_vec(),
            metadata: Metadata {
                hostname: Some("node7".into()),
                ssh_public_keys: vec!["ssh-rsa AAAA k".into()],
                ..Metadata::default()
            },
        }
    );
    assert_eq!(
        host.calls(),
        [
            format!("mount {} {}", dev.display(), mnt.display()),
            format!("unmount {}", mnt.display()),
        ]
    );
    assert!(!mnt.exists(), "the mount point is removed");
}

#[test]
fn a_broken_config_drive_is_reported_unmounted_and_the_next_source_wins() {
    let tmp = TempDir::with_prefix("sources-configdrive-bad").unwrap();
    let root = config_drive_root(&tmp);
    write(root, VAGRANT_USER_DATA, "#cloud-config\n");
    let drive = TempDir::with_prefix("sources-configdrive-bad-content").unwrap();
    write(drive.path(), configdrive::META_DATA, "{not json");
    let host = FakeHost {
        drive: Some(drive.path().to_path_buf()),
        ..FakeHost::default()
    };
    let ctx = Context::new(root, &host);
    let s = search(&local_kinds(), false, &ctx);
    assert!(s.found.unwrap().source.starts_with("Vagrant"));
    assert_eq!(s.errors.len(), 1);
    let (kind, e) = &s.errors[0];
    assert_eq!(*kind, SourceKind::ConfigDrive);
    assert!(
        e.to_string()
            .starts_with("openstack/latest/meta_data.json: key must be a string"),
        "{e}"
    );
    assert!(host.calls().iter().any(|c| c.starts_with("unmount ")));
    // A drive that cannot be mounted (no medium; offline) is an error too, not a panic.
    let host = FakeHost::default();
    let ctx = Context::new(root, &host);
    let e = probe(SourceKind::ConfigDrive, &ctx).unwrap_err();
    assert_eq!(e.to_string(), "mount: no medium");
}

/// A NoCloud seed on a CD-ROM the scan finds (`CIDATA`, as `mkisofs -V CIDATA` labels it).
fn nocloud_root(tmp: &TempDir) -> &Path {
    let root = tmp.path();
    drive::heads::block_devices(
        root,
        &[
            ("sr0", drive::heads::iso("CIDATA", false)),
            ("vda", vec![0u8; 4096]),
        ],
    );
    root
}

#[test]
fn nocloud_seed_is_found_mounted_read_and_unmounted() {
    let tmp = TempDir::with_prefix("sources-nocloud").unwrap();
    let root = nocloud_root(&tmp);
    let seed = TempDir::with_prefix("sources-nocloud-content").unwrap();
    write(
        seed.path(),
        nocloud::USER_DATA,
        "#cloud-config
hostname: from-user-data
",
    );
    write(
        seed.path(),
        nocloud::META_DATA,
        "instance-id: iid-local01
local-hostname: seed1
public-keys:
  - ssh-ed25519 AAAA k
",
    );
    write(
        seed.path(),
        nocloud::NETWORK_CONFIG,
        "version: 2
ethernets: {}
",
    );
    let host = FakeHost {
        drive: Some(seed.path().to_path_buf()),
        ..FakeHost::default()
    };
    let ctx = Context::new(root, &host);
    // What --from-sources tries: the config drive first (none here), then the seed.
    let s = search(&local_kinds(), false, &ctx);
    assert!(s.errors.is_empty(), "{:?}", s.errors);
    let dev = root.join("dev/sr0");
    let mnt = root.join(nocloud::MOUNT_DIR);
    assert_eq!(
        s.found.unwrap(),
        Found {
            source: format!("NoCloud seed {}", dev.display()),
            user_data: b"#cloud-config\nhostname: from-user-data\n".to_vec(),
            metadata: Metadata {
                hostname: Some("seed1".into()),
                ssh_public_keys: vec!["ssh-ed25519 AAAA k".into()],
                notes: vec![
                    "instance-id iid-local01".into(),
                    "network-config ignored: not supported (networkd configures every NIC with \
                     DHCP)"
                        .into()
                ],
                ..Metadata::default()
            },
        }
    );
    assert_eq!(
        host.calls(),
        [
            "modprobe qemu_fw_cfg".to_string(),
            format!("mount {} {}", dev.display(), mnt.display()),
            format!("unmount {}", mnt.display()),
        ]
    );
    assert!(!mnt.exists(), "the mount point is removed");
}

#[test]
fn a_config_drive_comes_before_a_nocloud_seed_and_each_is_asked_for_by_name() {
    let tmp = TempDir::with_prefix("sources-both-drives").unwrap();
    let root = config_drive_root(&tmp);
    drive::heads::block_devices(root, &[("vdb", drive::heads::fat("cidata", true))]);
    let content = TempDir::with_prefix("sources-both-drives-content").unwrap();
    let host = FakeHost {
        drive: Some(content.path().to_path_buf()),
        ..FakeHost::default()
    };
    let ctx = Context::new(root, &host);
    let both = [SourceKind::NoCloud, SourceKind::ConfigDrive];
    let found = search(&both, true, &ctx).found.unwrap();
    assert_eq!(
        found.source,
        format!("config drive {}", root.join("dev/sr0").display())
    );
    let found = search(&[SourceKind::NoCloud], true, &ctx).found.unwrap();
    assert_eq!(
        found.source,
        format!("NoCloud seed {}", root.join("dev/vdb").display())
    );
    // An empty seed is a source (its metadata, none here, would apply).
    assert_eq!(found.user_data, b"");
    assert_eq!(found.metadata, Metadata::default());
}

#[test]
fn a_nocloud_seed_with_bad_meta_data_is_still_found() {
    let tmp = TempDir::with_prefix("sources-nocloud-bad").unwrap();
    let root = nocloud_root(&tmp);
    write(root, VAGRANT_USER_DATA, "#cloud-config\n");
    let seed = TempDir::with_prefix("sources-nocloud-bad-content").unwrap();
    write(seed.path(), nocloud::USER_DATA, "#!/bin/sh\ntrue\n");
    write(seed.path(), nocloud::META_DATA, "{instance-id: [\n");
    let host = FakeHost {
        drive: Some(seed.path().to_path_buf()),
        ..FakeHost::default()
    };
    let ctx = Context::new(root, &host);
    let s = search(&local_kinds(), false, &ctx);
    assert!(s.errors.is_empty(), "{:?}", s.errors);
    let found = s.found.unwrap();
    assert!(
        found.source.starts_with("NoCloud seed "),
        "{}",
        found.source
    );
    assert_eq!(found.user_data, b"#!/bin/sh\ntrue\n");
    assert_eq!(found.metadata.warnings.len(), 1, "{:?}", found.metadata);
    assert!(
        found.metadata.warnings[0].starts_with("meta-data is not valid YAML (line "),
        "{:?}",
        found.metadata.warnings
    );
    // A seed that cannot be mounted is an error, and the next source is tried.
    let host = FakeHost::default();
    let ctx = Context::new(root, &host);
    let s = search(&local_kinds(), false, &ctx);
    assert!(s.found.unwrap().source.starts_with("Vagrant"));
    assert_eq!(s.errors.len(), 1);
    assert_eq!(s.errors[0].0, SourceKind::NoCloud);
    assert_eq!(s.errors[0].1.to_string(), "mount: no medium");
}

#[test]
fn vmware_only_where_dmi_says_vmware() {
    let tmp = TempDir::with_prefix("sources-vmware").unwrap();
    let root = tmp.path();
    let host = FakeHost {
        guestinfo: [
            (vmware::DATA_KEY, "I2Nsb3VkLWNvbmZpZwo="),
            (vmware::ENCODING_KEY, "base64"),
            (vmware::HOSTNAME_KEY, "vm1"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
        ..FakeHost::default()
    };
    let ctx = Context::new(root, &host);
    write(root, "sys/firmware/qemu_fw_cfg/rev", "3");
    assert!(search(&local_kinds(), false, &ctx).found.is_none());
    assert!(
        host.calls().is_empty(),
        "guestinfo not asked: {:?}",
        host.calls()
    );
    write(root, "sys/class/dmi/id/sys_vendor", "VMware, Inc.\n");
    let found = search(&local_kinds(), false, &ctx).found.unwrap();
    assert_eq!(
        found,
        Found {
            source: "VMware guestinfo".into(),
            user_data: b"#cloud-config\n".to_vec(),
            metadata: Metadata {
                hostname: Some("vm1".into()),
                ..Metadata::default()
            },
        }
    );
    assert_eq!(host.calls()[0], "guestinfo guestinfo.ovfEnv");
}

#[test]
fn vmware_ovf_environment_first_then_variables() {
    let tmp = TempDir::with_prefix("sources-vmware-ovf").unwrap();
    let ovf = r##"<Environment xmlns:oe="http://schemas.dmtf.org/ovf/environment/1"><PropertySection>
        <Property oe:key="guestinfo.coreos.config.data" oe:value="#cloud-config&#10;"/>
        <Property oe:key="guestinfo.coreos.config.data.encoding" oe:value=""/>
        <Property oe:key="guestinfo.hostname" oe:value=""/>
        </PropertySection></Environment>"##;
    let host = FakeHost {
        guestinfo: [
            (vmware::OVF_ENV_KEY, ovf),
            (vmware::HOSTNAME_KEY, "from-variable"),
            (vmware::DATA_KEY, "ignored: the OVF environment has data"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
        ..FakeHost::default()
    };
    let ctx = Context::new(tmp.path(), &host);
    let found = search(&[SourceKind::Vmware], true, &ctx).found.unwrap();
    assert_eq!(found.source, "VMware OVF environment");
    assert_eq!(found.user_data, b"#cloud-config\n");
    assert_eq!(found.metadata.hostname.as_deref(), Some("from-variable"));
    // Nothing set at all: not found.
    let host = FakeHost::default();
    let ctx = Context::new(tmp.path(), &host);
    assert!(search(&[SourceKind::Vmware], true, &ctx).found.is_none());
}

#[test]
fn names_of_sources() {
    for k in SourceKind::ORDER {
        assert_eq!(k.as_str().parse::<SourceKind>(), Ok(k));
    }
    assert_eq!(
        "gce".parse::<SourceKind>(),
        Err(
            "unknown source \"gce\" (known: cmdline, install, qemu-fw-cfg, config-drive, nocloud, vagrant, \
             vmware, ec2)"
                .into()
        )
    );
}

#[test]
fn from_file_reads_the_path_as_given() {
    let tmp = TempDir::with_prefix("sources-file").unwrap();
    write(tmp.path(), "u", "#!/bin/sh\n");
    let f = from_file(&tmp.path().join("u")).unwrap();
    assert_eq!(f.user_data, b"#!/bin/sh\n");
    let e = from_file(&tmp.path().join("missing")).unwrap_err();
    assert!(
        e.to_string()
            .ends_with("missing: No such file or directory (os error 2)"),
        "{e}"
    );
}

fn guestinfo(pairs: &[(&str, &str)]) -> FakeHost {
    FakeHost {
        guestinfo: pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..FakeHost::default()
    }
}

/// Network variables alone make the source found: their files, the roles' addresses, and a
/// warning for the interface with a bad key.
#[test]
fn vmware_network_variables_over_the_backdoor() {
    let tmp = TempDir::with_prefix("sources-vmware-net").unwrap();
    let host = guestinfo(&[
        ("guestinfo.dns.server.0", "10.0.0.53"),
        ("guestinfo.dns.domain.0", "example.com"),
        ("guestinfo.interface.0.name", "ens192"),
        ("guestinfo.interface.0.role", "public"),
        ("guestinfo.interface.0.ip.0.address", "10.0.0.2/24"),
        ("guestinfo.interface.0.route.0.gateway", "10.0.0.1"),
        ("guestinfo.interface.0.route.0.destination", "0.0.0.0/0"),
        ("guestinfo.interface.1.mac", "00:50:56:aa:bb:cc"),
        ("guestinfo.interface.1.role", "private"),
        ("guestinfo.interface.1.ip.0.address", "192.168.0.2"),
        ("guestinfo.interface.2.name", "ens256"),
        ("guestinfo.interface.2.dhcp", "yes"),
    ]);
    let ctx = Context::new(tmp.path(), &host);
    let found = probe(SourceKind::Vmware, &ctx).unwrap().unwrap();
    assert_eq!(found.source, "VMware guestinfo");
    assert!(found.user_data.is_empty());
    let meta = found.metadata;
    assert_eq!(
        meta.warnings,
        [
            "guestinfo.interface.1.ip.0.address: \"192.168.0.2\" is not an address with a prefix \
          length (CIDR, like 10.0.0.2/24): interface 1 skipped"
        ]
    );
    assert_eq!(meta.addresses.public_ipv4.as_deref(), Some("10.0.0.2"));
    assert_eq!(meta.addresses.private_ipv4, None);
    let net = meta.network.unwrap();
    let names: Vec<&str> = net.files.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["00-vmware-00.network", "00-vmware-02.network"]);
    assert_eq!(
        net.files[0].content,
        "# coreos-cloudinit: guestinfo.interface.0.* of VMware guestinfo\n\
         [Match]\nName=ens192\n\n\
         [Network]\nDomains=example.com\nDNS=10.0.0.53\n\n\
         [Address]\nAddress=10.0.0.2/24\n\n\
         [Route]\nDestination=0.0.0.0/0\nGateway=10.0.0.1\n"
    );
    assert_eq!(
        net.summary,
        "interface 0 (ens192): 10.0.0.2/24, route 0.0.0.0/0 via 10.0.0.1, role public; \
         interface 2 (ens256): DHCP; DNS 10.0.0.53; search example.com"
    );
}

/// Upstream's `TestOvfTransport` document (its placeholders made real, its routes CIDR), plus
/// what only an OVF environment can carry: a gap in the indexes and a key with a bad index.
#[test]
fn vmware_network_in_the_ovf_environment() {
    let tmp = TempDir::with_prefix("sources-vmware-ovf-net").unwrap();
    let ovf = r#"<?xml version="1.0" encoding="UTF-8"?>
<Environment xmlns="http://schemas.dmtf.org/ovf/environment/1"
     xmlns:oe="http://schemas.dmtf.org/ovf/environment/1" oe:id="CoreOS-vmw">
   <PropertySection>
      <Property oe:key="foo" oe:value="42"/>
      <Property oe:key="guestinfo.hostname" oe:value="test-host"/>
      <Property oe:key="guestinfo.interface.0.name" oe:value="ens192"/>
      <Property oe:key="guestinfo.interface.0.role" oe:value="public"/>
      <Property oe:key="guestinfo.interface.0.ip.0.address" oe:value="10.0.0.100/24"/>
      <Property oe:key="guestinfo.interface.0.ip.1.address" oe:value="10.0.0.101/24"/>
      <Property oe:key="guestinfo.interface.0.route.0.gateway" oe:value="10.0.0.1"/>
      <Property oe:key="guestinfo.interface.0.route.0.destination" oe:value="0.0.0.0/0"/>
      <Property oe:key="guestinfo.interface.1.mac" oe:value="00:50:56:aa:bb:cc"/>
      <Property oe:key="guestinfo.interface.1.role" oe:value="private"/>
      <Property oe:key="guestinfo.interface.1.route.0.gateway" oe:value="10.0.0.2"/>
      <Property oe:key="guestinfo.interface.1.route.0.destination" oe:value="0.0.0.0/0"/>
      <Property oe:key="guestinfo.interface.1.ip.0.address" oe:value="10.0.0.102/24"/>
      <Property oe:key="guestinfo.interface.3.dhcp" oe:value="yes"/>
      <Property oe:key="guestinfo.interface.eth9.dhcp" oe:value="yes"/>
      <Property oe:key="guestinfo.interface.4.ip.0.address" oe:value=""/>
   </PropertySection>
</Environment>"#;
    let host = guestinfo(&[(vmware::OVF_ENV_KEY, ovf)]);
    let ctx = Context::new(tmp.path(), &host);
    let found = probe(SourceKind::Vmware, &ctx).unwrap().unwrap();
    assert_eq!(found.source, "VMware OVF environment");
    let meta = found.metadata;
    assert_eq!(meta.hostname.as_deref(), Some("test-host"));
    assert_eq!(meta.addresses.public_ipv4.as_deref(), Some("10.0.0.101"));
    assert_eq!(meta.addresses.private_ipv4.as_deref(), Some("10.0.0.102"));
    assert_eq!(
        meta.warnings,
        ["guestinfo.interface.eth9.dhcp: \"eth9\" is not an index (0 to 99): interface eth9 skipped"]
    );
    let names: Vec<String> = meta
        .network
        .unwrap()
        .files
        .into_iter()
        .map(|f| f.name)
        .collect();
    assert_eq!(
        names,
        [
            "00-vmware-00.network",
            "00-vmware-01.network",
            "01-vmware-03.network"
        ]
    );
}

/// vSphere's ISO transport, as the QEMU tests give it: `tests/data/vmware/ovf-env.xml`.
const OVF_ENV_ISO: &str = include_str!("../../../../tests/data/vmware/ovf-env.xml");

/// A root where DMI says VMware and `sr0` is an iso9660 volume labelled `OVF ENV`, and the
/// drive's content (`file` holding `xml`), for the fake host to "mount".
fn ovf_iso_root(name: &str, file: &str, xml: &str) -> (TempDir, TempDir) {
    let tmp = TempDir::with_prefix(name).unwrap();
    write(tmp.path(), "sys/class/dmi/id/sys_vendor", "VMware, Inc.\n");
    drive::heads::block_devices(
        tmp.path(),
        &[
            ("sda", drive::heads::fat("EFI-SYSTEM", true)),
            ("sr0", drive::heads::iso("OVF ENV", false)),
        ],
    );
    let content = TempDir::with_prefix(format!("{name}-iso")).unwrap();
    write(content.path(), file, xml);
    (tmp, content)
}

/// QEMU: DMI says VMware, the backdoor refuses (vmport has no RPC channel), and the ISO's
/// document is all there is: user-data, hostname, network files, addresses; a note says the
/// variables were not read. The drive is mounted, read and unmounted.
#[test]
fn vmware_ovf_environment_on_an_iso_when_the_backdoor_refuses() {
    let (tmp, content) = ovf_iso_root("sources-ovf-iso", "OVF-ENV.XML", OVF_ENV_ISO);
    let root = tmp.path();
    let host = FakeHost {
        guestinfo_refused: true,
        drive: Some(content.path().to_path_buf()),
        ..FakeHost::default()
    };
    let ctx = Context::new(root, &host);
    let s = search(&local_kinds(), false, &ctx);
    assert!(s.errors.is_empty(), "{:?}", s.errors);
    let found = s.found.unwrap();
    let dev = root.join("dev/sr0");
    assert_eq!(
        found.source,
        format!("VMware OVF environment on {}", dev.display())
    );
    assert_eq!(
        found.user_data,
        b"#cloud-config\nwrite_files:\n  - path: /etc/motd.d/50-ovf-env\n    content: |\n      \
          configured from the OVF environment ISO\n"
    );
    let meta = found.metadata;
    assert_eq!(meta.hostname.as_deref(), Some("ovf-iso-host"));
    assert_eq!(meta.addresses.public_ipv4.as_deref(), Some("10.0.2.15"));
    assert_eq!(meta.warnings, Vec::<String>::new());
    assert_eq!(
        meta.notes,
        [
            "guestinfo variables not read: VMware RPC \"info-get guestinfo.ovfEnv\": the VMware \
             backdoor refused opening an RPC channel"
        ]
    );
    let net = meta.network.unwrap();
    assert_eq!(net.files.len(), 1);
    assert_eq!(net.files[0].name, "00-vmware-00.network");
    assert_eq!(
        net.files[0].content,
        "# coreos-cloudinit: guestinfo.interface.0.* of VMware guestinfo\n\
         [Match]\nMACAddress=52:54:00:12:34:56\n\n\
         [Network]\nDNS=10.0.2.3\n\n\
         [Address]\nAddress=10.0.2.15/24\n\n\
         [Route]\nDestination=0.0.0.0/0\nGateway=10.0.2.2\n"
    );
    let mnt = root.join(vmware::iso::MOUNT_DIR);
    assert_eq!(
        host.calls()[1..],
        [
            "guestinfo guestinfo.ovfEnv".to_string(),
            format!("mount {} {}", dev.display(), mnt.display()),
            format!("unmount {}", mnt.display()),
        ],
        "the backdoor is asked once; fw_cfg's modprobe first"
    );
    assert!(!mnt.exists());
    // Not VMware: neither the backdoor nor the drive.
    fs::remove_file(root.join("sys/class/dmi/id/sys_vendor")).unwrap();
    let host = FakeHost {
        guestinfo_refused: true,
        drive: Some(content.path().to_path_buf()),
        ..FakeHost::default()
    };
    let ctx = Context::new(root, &host);
    assert!(search(&local_kinds(), false, &ctx).found.is_none());
    assert_eq!(host.calls(), ["modprobe qemu_fw_cfg"]);
}

/// A backdoor that answers without `guestinfo.ovfEnv`: the ISO's properties come first, the
/// variables fill what they leave empty, as with `guestinfo.ovfEnv`. With `guestinfo.ovfEnv`,
/// the drive is not looked at.
#[test]
fn vmware_iso_properties_first_then_variables() {
    let xml = r##"<Environment xmlns:oe="http://schemas.dmtf.org/ovf/environment/1">
        <PropertySection>
        <Property oe:key="guestinfo.coreos.config.data" oe:value="#cloud-config&#10;"/>
        <Property oe:key="guestinfo.hostname" oe:value=""/>
        <Property oe:key="guestinfo.interface.0.dhcp" oe:value="yes"/>
        </PropertySection></Environment>"##;
    let (tmp, content) = ovf_iso_root("sources-ovf-iso-vars", "ovf-env.xml", xml);
    let mut host = guestinfo(&[
        (vmware::HOSTNAME_KEY, "from-variable"),
        (vmware::DATA_KEY, "ignored: the ISO has data"),
        ("guestinfo.interface.1.dhcp", "yes"),
    ]);
    host.drive = Some(content.path().to_path_buf());
    let ctx = Context::new(tmp.path(), &host);
    let found = probe(SourceKind::Vmware, &ctx).unwrap().unwrap();
    let dev = tmp.path().join("dev/sr0");
    assert_eq!(
        found.source,
        format!("VMware OVF environment on {}", dev.display())
    );
    assert_eq!(found.user_data, b"#cloud-config\n");
    assert_eq!(found.metadata.hostname.as_deref(), Some("from-variable"));
    assert!(
        found.metadata.notes.is_empty(),
        "{:?}",
        found.metadata.notes
    );
    let files: Vec<String> = found
        .metadata
        .network
        .unwrap()
        .files
        .into_iter()
        .map(|f| f.name)
        .collect();
    assert_eq!(files, ["01-vmware-00.network", "01-vmware-01.network"]);
    // The backdoor's own OVF environment wins: no mount.
    let mut host = guestinfo(&[(vmware::OVF_ENV_KEY, OVF_ENV_ISO)]);
    host.drive = Some(content.path().to_path_buf());
    let ctx = Context::new(tmp.path(), &host);
    let found = probe(SourceKind::Vmware, &ctx).unwrap().unwrap();
    assert_eq!(found.source, "VMware OVF environment");
    assert_eq!(found.metadata.hostname.as_deref(), Some("ovf-iso-host"));
    assert!(
        !host.calls().iter().any(|c| c.starts_with("mount")),
        "{:?}",
        host.calls()
    );
}

/// A drive labelled `OVF ENV` whose document is not one: one error naming the file and the
/// drive, or, when the variables give something, one warning on it; the drive is unmounted.
#[test]
fn a_bad_ovf_environment_iso_is_named_in_one_message() {
    struct Case {
        name: &'static str,
        file: &'static str,
        xml: &'static str,
        want: &'static str,
    }
    let cases = [
        Case {
            name: "not XML",
            file: "OVF_ENV.XML",
            xml: "guestinfo.hostname = vm1\n",
            want: "OVF_ENV.XML on {dev}: is not XML (an OVF environment document, \
                   <Environment …>)",
        },
        Case {
            name: "no properties",
            file: "ovf-env.xml",
            xml: "<Environment><PropertySection></PropertySection></Environment>",
            want: "ovf-env.xml on {dev}: has no properties (no <Property oe:key=\"…\" \
                   oe:value=\"…\"/> element)",
        },
        Case {
            name: "no document",
            file: "user-data",
            xml: "#cloud-config\n",
            want: "drive {dev} (label \"OVF ENV\"): no ovf-env.xml on it",
        },
    ];
    for c in cases {
        let (tmp, content) = ovf_iso_root("sources-ovf-iso-bad", c.file, c.xml);
        let dev = tmp.path().join("dev/sr0");
        let want = c.want.replace("{dev}", &dev.display().to_string());
        let mut host = FakeHost {
            guestinfo_refused: true,
            drive: Some(content.path().to_path_buf()),
            ..FakeHost::default()
        };
        let ctx = Context::new(tmp.path(), &host);
        let s = search(&local_kinds(), false, &ctx);
        assert!(s.found.is_none(), "{}", c.name);
        let errors: Vec<String> = s.errors.iter().map(|(k, e)| format!("{k}: {e}")).collect();
        assert_eq!(errors, [format!("vmware: {want}")], "{}", c.name);
        assert_eq!(
            host.calls().last().map(String::as_str),
            Some(&*format!(
                "unmount {}",
                tmp.path().join(vmware::iso::MOUNT_DIR).display()
            )),
            "{}",
            c.name
        );
        // The backdoor answers with a variable: found, with the same line as a warning.
        host.guestinfo_refused = false;
        host.guestinfo = [(vmware::HOSTNAME_KEY.to_string(), "vm1".to_string())].into();
        let ctx = Context::new(tmp.path(), &host);
        let found = probe(SourceKind::Vmware, &ctx).unwrap().unwrap();
        assert_eq!(found.source, "VMware guestinfo", "{}", c.name);
        assert_eq!(found.metadata.hostname.as_deref(), Some("vm1"));
        assert_eq!(found.metadata.warnings, [want], "{}", c.name);
    }
    // Neither the backdoor nor a drive: the backdoor's refusal, as before.
    let tmp = TempDir::with_prefix("sources-ovf-iso-none").unwrap();
    let host = FakeHost {
        guestinfo_refused: true,
        ..FakeHost::default()
    };
    let ctx = Context::new(tmp.path(), &host);
    let e = probe(SourceKind::Vmware, &ctx).unwrap_err();
    assert_eq!(
        e.to_string(),
        "VMware RPC \"info-get guestinfo.ovfEnv\": the VMware backdoor refused opening an RPC \
         channel"
    );
}

/// `--from-vmware-ovf-env PATH`: the file's document, no backdoor.
#[test]
fn an_ovf_environment_file() {
    let tmp = TempDir::with_prefix("sources-ovf-file").unwrap();
    let path = tmp.path().join("ovf-env.xml");
    write(tmp.path(), "ovf-env.xml", OVF_ENV_ISO);
    let found = vmware::from_ovf_env_file(&path, || unreachable!("no URL")).unwrap();
    assert_eq!(
        found.source,
        format!("VMware OVF environment file {}", path.display())
    );
    assert_eq!(found.metadata.hostname.as_deref(), Some("ovf-iso-host"));
    assert!(found.user_data.starts_with(b"#cloud-config\n"));
    assert_eq!(found.metadata.network.unwrap().files.len(), 1);
    write(tmp.path(), "ovf-env.xml", "{}");
    let e = vmware::from_ovf_env_file(&path, || unreachable!()).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "{}: is not XML (an OVF environment document, <Environment …>)",
            path.display()
        )
    );
    // Properties, all empty: found, nothing in it.
    write(
        tmp.path(),
        "ovf-env.xml",
        "<Environment><Property oe:key=\"guestinfo.hostname\" oe:value=\"\"/></Environment>",
    );
    let found = vmware::from_ovf_env_file(&path, || unreachable!()).unwrap();
    assert!(found.user_data.is_empty() && found.metadata == Metadata::default());
}
