//! VMware guestinfo's network variables turned into systemd-networkd files: what
//! coreos-cloudinit's `vmware` datasource read (`FetchMetadata`) and `network/vmware.go`
//! (`ProcessVMwareNetconf`) made of it, as Container Linux's "VMware guestinfo" table lists them:
//!
//! | key | value |
//! |---|---|
//! | `guestinfo.interface.<n>.name` | interface name (networkd `Name=`; a glob works) |
//! | `guestinfo.interface.<n>.mac` | MAC address (`MACAddress=`) |
//! | `guestinfo.interface.<n>.dhcp` | `yes` or `no` |
//! | `guestinfo.interface.<n>.role` | `public` or `private`: fills `$public_ipv4` & co. |
//! | `guestinfo.interface.<n>.ip.<m>.address` | address with prefix length (`10.0.0.2/24`) |
//! | `guestinfo.interface.<n>.route.<l>.gateway` | IP address |
//! | `guestinfo.interface.<n>.route.<l>.destination` | network (`0.0.0.0/0`) |
//! | `guestinfo.dns.server.<x>` | IP address |
//! | `guestinfo.dns.domain.<y>` | search domain |
//!
//! As upstream:
//! - an interface with an address or a route is static (its `dhcp` is then not used), one with
//!   `dhcp=yes` and neither is DHCP; the DNS servers and search domains go into every static
//!   interface's file (a DHCP interface takes them from DHCP);
//! - `name` and `mac` both go to `[Match]` (both must match); no `.link` file is written (upstream
//!   wrote none: a `.link` renames only when udev sees the device appear, long before the agent
//!   runs);
//! - the files are runtime ones (`/run/systemd/network`): guestinfo is read again every boot;
//! - `$public_ipv4`/`$public_ipv6` (`$private_…`) come from the addresses of the interfaces whose
//!   role is `public` (`private`), the last such address winning.
//!
//! Where upstream stopped at the first bad key and applied no configuration at all, a bad or
//! partial key here skips the interface it belongs to, with one warning naming the key, and
//! the rest applies. Upstream read indexes from 0 up to the first missing one; the keys of an
//! OVF environment are all read, sorted by index (the backdoor cannot list its variables, so
//! [`probe_keys`] asks for them from 0 upwards, as upstream did). An interface with neither
//! `name` nor `mac` matches the physical Ethernet interfaces the image's `zz-default.network`
//! matches (upstream's matched every interface, Docker's included), in a file that sorts after
//! the files of named interfaces.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use cloudconfig::Addresses;

use crate::host::HostError;
use crate::metadata::{NetworkConfig, NetworkFile};

pub const INTERFACE_PREFIX: &str = "guestinfo.interface.";
pub const DNS_PREFIX: &str = "guestinfo.dns.";
pub const DNS_SERVER_PREFIX: &str = "guestinfo.dns.server.";
pub const DNS_DOMAIN_PREFIX: &str = "guestinfo.dns.domain.";
/// The largest index read (a vSphere VM has at most 10 NICs): it bounds the questions
/// [`probe_keys`] asks and keeps the file names sorting by index.
pub const MAX_INDEX: u32 = 99;
/// The `[Match]` of an interface with neither `name` nor `mac`: the image's default network's.
pub const ANY_ETHERNET_MATCH: &str = "Type=ether\nName=!veth* !docker*\n";
/// Longest interface name the kernel takes (`IFNAMSIZ` - 1).
const MAX_IFNAME_BYTES: usize = 15;

/// Whether `key` is one of the network variables (for picking them out of an OVF environment).
pub fn is_network_key(key: &str) -> bool {
    key.starts_with(INTERFACE_PREFIX) || key.starts_with(DNS_PREFIX)
}

/// A MAC address, written as networkd and `ip link` print it (`00:50:56:aa:bb:cc`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mac(pub [u8; 6]);

impl FromStr for Mac {
    type Err = ();
    /// `00:50:56:AA:BB:CC`, `00-50-56-aa-bb-cc` or `0050.56aa.bbcc` (what Go's `ParseMAC`,
    /// which upstream used, takes for 6 bytes).
    fn from_str(s: &str) -> Result<Mac, ()> {
        let (groups, width): (Vec<&str>, usize) = if s.contains('.') {
            (s.split('.').collect(), 4)
        } else if s.contains('-') {
            (s.split('-').collect(), 2)
        } else {
            (s.split(':').collect(), 2)
        };
        if groups.len() * width != 12 {
            return Err(());
        }
        let mut hex = String::with_capacity(12);
        for g in groups {
            if g.len() != width || !g.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(());
            }
            hex.push_str(g);
        }
        let mut bytes = [0u8; 6];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| ())?;
        }
        Ok(Mac(bytes))
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

/// An address with its prefix length (`10.0.0.2/24`, `fe00::100/64`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    /// The network: the address with the host bits cleared (`10.1.2.3/8` → `10.0.0.0/8`), as
    /// upstream wrote a route's destination.
    pub fn network(self) -> Cidr {
        let addr = match self.addr {
            IpAddr::V4(a) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::V4((u32::from(a) & mask).into())
            }
            IpAddr::V6(a) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::V6((u128::from(a) & mask).into())
            }
        };
        Cidr { addr, ..self }
    }
}

impl FromStr for Cidr {
    type Err = ();
    fn from_str(s: &str) -> Result<Cidr, ()> {
        let (addr, prefix) = s.split_once('/').ok_or(())?;
        let addr: IpAddr = addr.parse().map_err(|_| ())?;
        if prefix.is_empty() || prefix.len() > 3 || !prefix.bytes().all(|b| b.is_ascii_digit()) {
            return Err(());
        }
        let prefix: u8 = prefix.parse().map_err(|_| ())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if prefix > max {
            return Err(());
        }
        Ok(Cidr { addr, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub destination: Cidr,
    pub gateway: IpAddr,
}

/// `guestinfo.interface.<n>.role`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Public,
    Private,
}

/// One `guestinfo.interface.<n>`, checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Interface {
    pub index: u32,
    pub name: Option<String>,
    pub mac: Option<Mac>,
    pub dhcp: bool,
    pub role: Option<Role>,
    /// By `ip.<m>` index.
    pub addresses: Vec<Cidr>,
    /// By `route.<l>` index.
    pub routes: Vec<Route>,
}

impl Interface {
    /// Static (upstream's `configMethodStatic`): it has an address or a route.
    pub fn is_static(&self) -> bool {
        !self.addresses.is_empty() || !self.routes.is_empty()
    }

    /// `00-vmware-<n>.network`; `01-…` for one that matches any Ethernet interface, so that the
    /// named ones come first (networkd takes the first file, in name order, that matches).
    pub fn file_name(&self) -> String {
        let rank = if self.name.is_none() && self.mac.is_none() {
            1
        } else {
            0
        };
        format!("{rank:02}-vmware-{:02}.network", self.index)
    }

    /// What `[Match]` says, for messages.
    fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(name) = &self.name {
            parts.push(name.clone());
        }
        if let Some(mac) = self.mac {
            parts.push(mac.to_string());
        }
        if parts.is_empty() {
            parts.push("any ethernet".into());
        }
        format!("interface {} ({})", self.index, parts.join(" "))
    }
}

/// All the network variables, checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GuestNetwork {
    /// By index.
    pub interfaces: Vec<Interface>,
    /// By `dns.server.<x>` index.
    pub dns_servers: Vec<IpAddr>,
    /// By `dns.domain.<y>` index.
    pub domains: Vec<String>,
}

/// `"7"` → 7; not `"07"`, `"+7"`, `"x"` or above [`MAX_INDEX`] (so that each index has one
/// spelling, as upstream's `%d` wrote them).
pub fn parse_index(s: &str) -> Option<u32> {
    let canonical =
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    s.parse().ok().filter(|n| canonical && *n <= MAX_INDEX)
}

fn not_an_index(key: &str, what: &str) -> String {
    format!("{key}: {what:?} is not an index (0 to {MAX_INDEX})")
}

/// Checks the variables among `keys` (others are ignored; values are trimmed, empty ones
/// count as unset). Returns the configuration and one warning per problem: a bad interface
/// key skips its interface, a bad DNS key its server or domain, an unknown key is ignored.
pub fn parse(keys: &BTreeMap<String, String>) -> (GuestNetwork, Vec<String>) {
    let mut warnings = Vec::new();
    let mut servers = BTreeMap::new();
    let mut domains = BTreeMap::new();
    // Interface label (`0`, or a bad one) → its (key, field, value)s.
    let mut groups: BTreeMap<&str, Vec<(&str, &str, &str)>> = BTreeMap::new();
    for (key, value) in keys {
        let value = value.trim();
        if value.is_empty() {
            continue;
        }
        if let Some(x) = key.strip_prefix(DNS_SERVER_PREFIX) {
            match (parse_index(x), value.parse::<IpAddr>()) {
                (None, _) => warnings.push(format!("{}: server skipped", not_an_index(key, x))),
                (_, Err(_)) => warnings.push(format!(
                    "{key}: {value:?} is not an IP address: server skipped"
                )),
                (Some(x), Ok(ip)) => {
                    servers.insert(x, ip);
                }
            }
        } else if let Some(y) = key.strip_prefix(DNS_DOMAIN_PREFIX) {
            let bad = value.chars().any(|c| c.is_whitespace() || c.is_control());
            match parse_index(y) {
                None => warnings.push(format!("{}: domain skipped", not_an_index(key, y))),
                Some(_) if bad => warnings.push(format!(
                    "{key}: {value:?} is not a domain (it has blanks): domain skipped"
                )),
                Some(y) => {
                    domains.insert(y, value.to_string());
                }
            }
        } else if key.starts_with(DNS_PREFIX) {
            warnings.push(format!("{key}: unknown key, ignored"));
        } else if let Some(rest) = key.strip_prefix(INTERFACE_PREFIX) {
            match rest.split_once('.') {
                Some((label, field)) => groups.entry(label).or_default().push((key, field, value)),
                None => warnings.push(format!("{key}: unknown key, ignored")),
            }
        }
    }
    let mut interfaces = Vec::new();
    for (label, fields) in groups {
        let Some(index) = parse_index(label) else {
            let key = fields[0].0;
            warnings.push(format!(
                "{}: interface {label} skipped",
                not_an_index(key, label)
            ));
            continue;
        };
        match interface(index, &fields, &mut warnings) {
            Ok(iface) => interfaces.push(iface),
            Err(why) => warnings.push(format!("{why}: interface {index} skipped")),
        }
    }
    interfaces.sort_by_key(|i| i.index);
    let net = GuestNetwork {
        interfaces,
        dns_servers: servers.into_values().collect(),
        domains: domains.into_values().collect(),
    };
    if (!net.dns_servers.is_empty() || !net.domains.is_empty())
        && !net.interfaces.iter().any(Interface::is_static)
    {
        let first = keys
            .keys()
            .find(|k| k.starts_with(DNS_PREFIX))
            .map_or(DNS_PREFIX, String::as_str);
        warnings.push(format!(
            "{first} & co.: no interface with a static address to carry the DNS servers and \
             domains (a DHCP interface takes them from DHCP): not used"
        ));
    }
    (net, warnings)
}

/// One interface from its fields; `Err`: why it is skipped (naming the key). Unknown fields
/// add a warning and are ignored.
fn interface(
    index: u32,
    fields: &[(&str, &str, &str)],
    warnings: &mut Vec<String>,
) -> Result<Interface, String> {
    let mut iface = Interface {
        index,
        ..Interface::default()
    };
    let mut addresses = BTreeMap::new();
    // route index → (gateway, destination), each with its key.
    type Half<T> = Option<(T, String)>;
    let mut routes: BTreeMap<u32, (Half<IpAddr>, Half<Cidr>)> = BTreeMap::new();
    for &(key, field, value) in fields {
        let bad = |what: &str| format!("{key}: {value:?} is not {what}");
        match field {
            "name" => {
                let ok = value.len() <= MAX_IFNAME_BYTES
                    && !value.contains('/')
                    && !value.chars().any(|c| c.is_whitespace() || c.is_control());
                if !ok {
                    return Err(bad(
                        "an interface name (at most 15 bytes, no blanks or '/')",
                    ));
                }
                iface.name = Some(value.to_string());
            }
            "mac" => iface.mac = Some(value.parse().map_err(|_| bad("a MAC address"))?),
            "dhcp" => {
                iface.dhcp = match value {
                    "yes" => true,
                    "no" => false,
                    _ => return Err(bad("yes or no")),
                }
            }
            "role" => {
                iface.role = Some(match value {
                    "public" => Role::Public,
                    "private" => Role::Private,
                    _ => return Err(bad("public or private")),
                })
            }
            _ => {
                let (kind, sub) = field.split_once('.').unwrap_or((field, ""));
                let (sub_index, leaf) = sub.split_once('.').unwrap_or((sub, ""));
                match (kind, leaf) {
                    ("ip", "address") | ("route", "gateway") | ("route", "destination") => {}
                    _ => {
                        warnings.push(format!("{key}: unknown key, ignored"));
                        continue;
                    }
                }
                let n = parse_index(sub_index).ok_or_else(|| not_an_index(key, sub_index))?;
                let cidr = || {
                    value.parse::<Cidr>().map_err(|_| {
                        bad("an address with a prefix length (CIDR, like 10.0.0.2/24)")
                    })
                };
                match leaf {
                    "address" => {
                        addresses.insert(n, cidr()?);
                    }
                    "gateway" => {
                        let ip = value.parse().map_err(|_| bad("an IP address"))?;
                        routes.entry(n).or_default().0 = Some((ip, key.to_string()));
                    }
                    _ => routes.entry(n).or_default().1 = Some((cidr()?, key.to_string())),
                }
            }
        }
    }
    iface.addresses = addresses.into_values().collect();
    let prefix = format!("{INTERFACE_PREFIX}{index}");
    for (l, halves) in routes {
        let route = match halves {
            (Some((gateway, gw_key)), Some((destination, _))) => {
                if gateway.is_ipv4() != destination.addr.is_ipv4() {
                    return Err(format!(
                        "{gw_key}: gateway {gateway} and destination {destination} are not of one IP version"
                    ));
                }
                Route {
                    destination: destination.network(),
                    gateway,
                }
            }
            (None, Some((destination, _))) => {
                return Err(format!(
                    "{prefix}.route.{l}.gateway: missing (the route to {destination} needs one)"
                ))
            }
            (Some((gateway, _)), None) => {
                return Err(format!(
                    "{prefix}.route.{l}.destination: missing (the route via {gateway} needs one)"
                ))
            }
            (None, None) => continue,
        };
        iface.routes.push(route);
    }
    if !iface.is_static() && !iface.dhcp {
        return Err(format!(
            "{prefix}: no ip.<m>.address, route or dhcp=yes: nothing to configure"
        ));
    }
    Ok(iface)
}

impl GuestNetwork {
    pub fn is_empty(&self) -> bool {
        self.interfaces.is_empty()
    }

    /// The `.network` file of `iface` (upstream's layout: `[Match]`, `[Network]` with the
    /// search domains, DNS servers or DHCP, then one `[Address]` and one `[Route]` each).
    pub fn network_file(&self, iface: &Interface) -> String {
        let mut s = format!(
            "# coreos-cloudinit: {INTERFACE_PREFIX}{}.* of VMware guestinfo\n[Match]\n",
            iface.index
        );
        if let Some(name) = &iface.name {
            s += &format!("Name={name}\n");
        }
        if let Some(mac) = iface.mac {
            s += &format!("MACAddress={mac}\n");
        }
        if iface.name.is_none() && iface.mac.is_none() {
            s += ANY_ETHERNET_MATCH;
        }
        s += "\n[Network]\n";
        if iface.is_static() {
            if !self.domains.is_empty() {
                s += &format!("Domains={}\n", self.domains.join(" "));
            }
            for server in &self.dns_servers {
                s += &format!("DNS={server}\n");
            }
            for a in &iface.addresses {
                s += &format!("\n[Address]\nAddress={a}\n");
            }
            for r in &iface.routes {
                s += &format!(
                    "\n[Route]\nDestination={}\nGateway={}\n",
                    r.destination, r.gateway
                );
            }
        } else {
            s += "DHCP=yes\n";
        }
        s
    }

    /// The files, by interface index.
    pub fn files(&self) -> Vec<NetworkFile> {
        self.interfaces
            .iter()
            .map(|i| NetworkFile {
                name: i.file_name(),
                content: self.network_file(i),
            })
            .collect()
    }

    /// `$public_ipv4` & co. from the roles: the last address of the last interface of a role
    /// wins (upstream overwrote them in order).
    pub fn addresses(&self) -> Addresses {
        let mut out = Addresses::default();
        for iface in &self.interfaces {
            for a in &iface.addresses {
                let slot = match (iface.role, a.addr.is_ipv4()) {
                    (None, _) => continue,
                    (Some(Role::Public), true) => &mut out.public_ipv4,
                    (Some(Role::Public), false) => &mut out.public_ipv6,
                    (Some(Role::Private), true) => &mut out.private_ipv4,
                    (Some(Role::Private), false) => &mut out.private_ipv6,
                };
                *slot = Some(a.addr.to_string());
            }
        }
        out
    }

    /// One line for the journal: each interface, then DNS.
    pub fn summary(&self) -> String {
        let mut parts: Vec<String> = self
            .interfaces
            .iter()
            .map(|i| {
                let mut what: Vec<String> = i.addresses.iter().map(Cidr::to_string).collect();
                what.extend(
                    i.routes
                        .iter()
                        .map(|r| format!("route {} via {}", r.destination, r.gateway)),
                );
                if !i.is_static() {
                    what.push("DHCP".into());
                }
                if let Some(role) = i.role {
                    what.push(format!("role {}", role.as_str()));
                }
                format!("{}: {}", i.describe(), what.join(", "))
            })
            .collect();
        if self.interfaces.iter().any(Interface::is_static) {
            if !self.dns_servers.is_empty() {
                let servers: Vec<String> = self.dns_servers.iter().map(IpAddr::to_string).collect();
                parts.push(format!("DNS {}", servers.join(" ")));
            }
            if !self.domains.is_empty() {
                parts.push(format!("search {}", self.domains.join(" ")));
            }
        }
        parts.join("; ")
    }

    /// The files and their summary; `None` without interfaces.
    pub fn config(&self) -> Option<NetworkConfig> {
        (!self.is_empty()).then(|| NetworkConfig {
            files: self.files(),
            summary: self.summary(),
        })
    }
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Public => "public",
            Role::Private => "private",
        }
    }
}

/// The network variables set, asked for through `get` (`None` or empty: unset) from index 0
/// upwards, each list up to its first missing index, as upstream's `FetchMetadata` did: the DNS
/// servers and domains, then per interface its `name`, `mac`, `dhcp`, `role`, addresses and
/// routes; the interfaces end at the first one with none of these.
pub fn probe_keys(
    get: &dyn Fn(&str) -> Result<Option<String>, HostError>,
) -> Result<BTreeMap<String, String>, HostError> {
    let mut keys = BTreeMap::new();
    let mut ask = |key: String| -> Result<bool, HostError> {
        match get(&key)?.filter(|v| !v.trim().is_empty()) {
            Some(v) => {
                keys.insert(key, v);
                Ok(true)
            }
            None => Ok(false),
        }
    };
    for prefix in [DNS_SERVER_PREFIX, DNS_DOMAIN_PREFIX] {
        for x in 0..=MAX_INDEX {
            if !ask(format!("{prefix}{x}"))? {
                break;
            }
        }
    }
    for n in 0..=MAX_INDEX {
        let iface = format!("{INTERFACE_PREFIX}{n}");
        let mut found = false;
        for field in ["name", "mac", "dhcp", "role"] {
            found |= ask(format!("{iface}.{field}"))?;
        }
        for m in 0..=MAX_INDEX {
            if !ask(format!("{iface}.ip.{m}.address"))? {
                break;
            }
            found = true;
        }
        for l in 0..=MAX_INDEX {
            let gateway = ask(format!("{iface}.route.{l}.gateway"))?;
            let destination = ask(format!("{iface}.route.{l}.destination"))?;
            if !gateway && !destination {
                break;
            }
            found = true;
        }
        if !found {
            break;
        }
    }
    Ok(keys)
}

#[cfg(test)]
#[path = "network_tests.rs"]
mod tests;
