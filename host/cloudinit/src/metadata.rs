//! What a source tells about the machine besides user-data, and the addresses that fill
//! `$private_ipv4` & co. when the source knows none.
//!
//! Precedence for each address (upstream's `firstNonNull`, plus the interface fallback of
//! Container Linux's `coreos-setup-environment`): the source's metadata, then the `COREOS_*`
//! variables of `/etc/environment`, then the IPv4 address of the first non-loopback interface
//! (used for both `$private_ipv4` and `$public_ipv4`, as `coreos-setup-environment` did).

use std::net::Ipv4Addr;

use cloudconfig::Addresses;

/// Metadata of a source: merged into the config as upstream's `mergeConfigs` did (the hostname
/// when the config has none, the keys added to `core`'s).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    pub hostname: Option<String>,
    /// SSH public keys for the `core` user.
    pub ssh_public_keys: Vec<String>,
    pub addresses: Addresses,
    /// systemd-networkd files the source configures (VMware guestinfo's `interface.<n>.*`),
    /// written before the rest of the config.
    pub network: Option<NetworkConfig>,
    /// What the source skipped of its metadata, one line each (a bad key, and why): printed,
    /// and each counts as a failure.
    pub warnings: Vec<String>,
    /// What the source says about itself, one line each (an instance id, a file it ignores):
    /// printed, not a failure.
    pub notes: Vec<String>,
}

/// Network configuration from a source: runtime networkd files (`/run/systemd/network`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkConfig {
    /// In the order written.
    pub files: Vec<NetworkFile>,
    /// One line for the journal: what the files configure.
    pub summary: String,
}

/// One `.network` (`.netdev`, `.link`) file: its name in the networkd directory, and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkFile {
    pub name: String,
    pub content: String,
}

/// `KEY=VALUE` lines of an environment file (`/etc/environment`): comments and lines without
/// `=` are skipped, one pair of surrounding quotes is removed. Later lines win.
pub fn parse_env_file(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| {
            let k = k.trim().trim_start_matches("export ").trim();
            (k.to_string(), unquote(v.trim()).to_string())
        })
        .collect()
}

fn unquote(v: &str) -> &str {
    for q in ['"', '\''] {
        if let Some(inner) = v.strip_prefix(q).and_then(|r| r.strip_suffix(q)) {
            return inner;
        }
    }
    v
}

/// One IPv4 address of an interface, as `getifaddrs(3)` lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceAddress {
    pub interface: String,
    pub address: Ipv4Addr,
    pub loopback: bool,
}

/// The first address that is neither loopback nor link-local (169.254/16), in listing order.
pub fn pick_interface_address(addresses: &[InterfaceAddress]) -> Option<Ipv4Addr> {
    addresses
        .iter()
        .find(|a| !a.loopback && !a.address.is_loopback() && !a.address.is_link_local())
        .map(|a| a.address)
}

/// Both IPv4 variables set to one interface address.
pub fn interface_addresses(address: Option<Ipv4Addr>) -> Addresses {
    let text = address.map(|a| a.to_string());
    Addresses {
        public_ipv4: text.clone(),
        private_ipv4: text,
        ..Addresses::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_file_pairs() {
        let text =
            "# comment\nCOREOS_PUBLIC_IPV4=1.2.3.4\n  COREOS_PRIVATE_IPV4=\"10.0.0.2\"\nnoise\n";
        let vars = parse_env_file(text);
        assert_eq!(
            vars,
            vec![
                ("COREOS_PUBLIC_IPV4".to_string(), "1.2.3.4".to_string()),
                ("COREOS_PRIVATE_IPV4".to_string(), "10.0.0.2".to_string()),
            ]
        );
        let a = Addresses::from_env(vars);
        assert_eq!(a.private_ipv4.as_deref(), Some("10.0.0.2"));
    }

    #[test]
    fn first_usable_interface_address() {
        let addr = |interface: &str, a: [u8; 4], loopback| InterfaceAddress {
            interface: interface.into(),
            address: Ipv4Addr::from(a),
            loopback,
        };
        let list = [
            addr("lo", [127, 0, 0, 1], true),
            addr("eth0", [169, 254, 3, 4], false),
            addr("eth0", [10, 0, 2, 15], false),
            addr("eth1", [192, 168, 1, 2], false),
        ];
        assert_eq!(
            pick_interface_address(&list),
            Some(Ipv4Addr::new(10, 0, 2, 15))
        );
        assert_eq!(pick_interface_address(&list[..2]), None);
        let a = interface_addresses(Some(Ipv4Addr::new(10, 0, 2, 15)));
        assert_eq!(a.public_ipv4.as_deref(), Some("10.0.2.15"));
        assert_eq!(a.private_ipv4.as_deref(), Some("10.0.2.15"));
        assert_eq!(interface_addresses(None), Addresses::default());
    }
}
