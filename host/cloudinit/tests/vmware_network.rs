//! The whole agent (`cloudinit::run`, `--source vmware`) on a temporary root, offline, with
//! guestinfo from a map: the network variables become runtime networkd files written before
//! the rest of the config, the roles fill `$public_ipv4`/`$private_ipv4`, a bad interface is
//! reported and skipped, and networkd is restarted once.

use std::collections::BTreeMap;
use std::fs;
use std::net::Ipv4Addr;
use std::path::Path;

use cloudinit::host::{Host, HostError};
use cloudinit::sources::SourceKind;
use cloudinit::{run, Console, Input, Options};

/// guestinfo from a map; every machine-level call refused (an offline root).
struct Guestinfo(BTreeMap<String, String>);

impl Host for Guestinfo {
    fn is_live(&self) -> bool {
        false
    }
    fn modprobe(&self, m: &str) -> Result<(), HostError> {
        Err(HostError::new(format!("modprobe {m}"), "offline"))
    }
    fn mount_read_only(&self, d: &Path, _: &Path) -> Result<String, HostError> {
        Err(HostError::new(format!("mount {}", d.display()), "offline"))
    }
    fn unmount(&self, t: &Path) -> Result<(), HostError> {
        Err(HostError::new(format!("umount {}", t.display()), "offline"))
    }
    fn guestinfo(&self, key: &str) -> Result<Option<String>, HostError> {
        Ok(self.0.get(key).cloned())
    }
    fn guestinfo_set(&self, key: &str, _: &str) -> Result<(), HostError> {
        Err(HostError::new(format!("info-set {key}"), "offline"))
    }
    fn set_hostname(&self, _: &str) -> Result<(), HostError> {
        Err(HostError::new("sethostname", "offline"))
    }
    fn systemctl(&self, _: &[&str]) -> Result<(), HostError> {
        Err(HostError::new("systemctl", "offline"))
    }
    fn run_script(&self, unit: &str, _: &Path) -> Result<(), HostError> {
        Err(HostError::new(format!("systemd-run {unit}"), "offline"))
    }
    fn interface_ipv4(&self) -> Option<Ipv4Addr> {
        None
    }
}

const USER_DATA: &str = "#cloud-config
write_files:
  - path: /etc/addresses
    content: public=$public_ipv4 private=$private_ipv4
coreos:
  units:
    - name: 50-extra.network
      content: \"[Match]\\nName=ens256\\n\"
";

fn read(root: &Path, rel: &str) -> String {
    fs::read_to_string(root.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

#[test]
fn guestinfo_network_applied_first() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let vars: BTreeMap<String, String> = [
        ("guestinfo.coreos.config.data", USER_DATA),
        ("guestinfo.hostname", "vm1"),
        ("guestinfo.dns.server.0", "10.0.0.53"),
        ("guestinfo.dns.server.1", "10.0.0.54"),
        ("guestinfo.dns.domain.0", "example.com"),
        ("guestinfo.interface.0.name", "ens192"),
        ("guestinfo.interface.0.mac", "00:50:56:AA:BB:CC"),
        ("guestinfo.interface.0.role", "public"),
        ("guestinfo.interface.0.ip.0.address", "203.0.113.10/24"),
        ("guestinfo.interface.0.route.0.gateway", "203.0.113.1"),
        ("guestinfo.interface.0.route.0.destination", "0.0.0.0/0"),
        ("guestinfo.interface.1.name", "ens224"),
        ("guestinfo.interface.1.role", "private"),
        ("guestinfo.interface.1.ip.0.address", "10.0.0.20/16"),
        ("guestinfo.interface.1.route.0.destination", "10.1.0.0/16"),
        ("guestinfo.interface.2.mac", "00:50:56:aa:bb:dd"),
        ("guestinfo.interface.2.role", "private"),
        ("guestinfo.interface.2.ip.0.address", "10.0.0.30/16"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let host = Guestinfo(vars);
    let opts = Options::new(
        root,
        Input::Sources {
            only: Some(vec![SourceKind::Vmware]),
        },
    );
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let summary = run(
        &opts,
        &host,
        &mut Console {
            out: &mut out,
            err: &mut err,
        },
    );
    let (out, err) = (
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    );
    // The interface without a gateway is the one failure.
    assert_eq!(summary.failures, 1, "{out}{err}");
    assert_eq!(
        err,
        "coreos-cloudinit: VMware guestinfo: guestinfo.interface.1.route.0.gateway: missing \
         (the route to 10.1.0.0/16 needs one): interface 1 skipped\n"
    );
    let lines: Vec<&str> = out.lines().collect();
    let first = format!(
        "coreos-cloudinit: user-data from VMware guestinfo ({} bytes)",
        USER_DATA.len()
    );
    assert_eq!(
        lines,
        [
            first.as_str(),
            "coreos-cloudinit: configure network (interface 0 (ens192 00:50:56:aa:bb:cc): \
             203.0.113.10/24, route 0.0.0.0/0 via 203.0.113.1, role public; interface 2 \
             (00:50:56:aa:bb:dd): 10.0.0.30/16, role private; DNS 10.0.0.53 10.0.0.54; search \
             example.com): /run/systemd/network/00-vmware-00.network, \
             /run/systemd/network/00-vmware-02.network",
            "coreos-cloudinit: set hostname vm1: kernel hostname not set (offline)",
            "coreos-cloudinit: write /etc/addresses (0644, 37 bytes)",
            "coreos-cloudinit: set COREOS_PRIVATE_IPV4=10.0.0.30 COREOS_PUBLIC_IPV4=203.0.113.10 \
             in /etc/environment",
            "coreos-cloudinit: write unit /etc/systemd/network/50-extra.network",
            "coreos-cloudinit: systemctl daemon-reload: skipped (offline)",
            "coreos-cloudinit: systemctl --no-block restart systemd-networkd.service: skipped \
             (offline)",
        ]
    );
    assert_eq!(
        read(root, "run/systemd/network/00-vmware-00.network"),
        "# coreos-cloudinit: guestinfo.interface.0.* of VMware guestinfo\n\
         [Match]\nName=ens192\nMACAddress=00:50:56:aa:bb:cc\n\n\
         [Network]\nDomains=example.com\nDNS=10.0.0.53\nDNS=10.0.0.54\n\n\
         [Address]\nAddress=203.0.113.10/24\n\n\
         [Route]\nDestination=0.0.0.0/0\nGateway=203.0.113.1\n"
    );
    assert_eq!(
        read(root, "run/systemd/network/00-vmware-02.network"),
        "# coreos-cloudinit: guestinfo.interface.2.* of VMware guestinfo\n\
         [Match]\nMACAddress=00:50:56:aa:bb:dd\n\n\
         [Network]\nDomains=example.com\nDNS=10.0.0.53\nDNS=10.0.0.54\n\n\
         [Address]\nAddress=10.0.0.30/16\n"
    );
    let network_dir: Vec<String> = fs::read_dir(root.join("run/systemd/network"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(network_dir.len(), 2, "{network_dir:?}");
    assert_eq!(
        read(root, "etc/addresses"),
        "public=203.0.113.10 private=10.0.0.30"
    );
    assert_eq!(read(root, "etc/hostname"), "vm1\n");
}
