//! The network variables: coreos-cloudinit's own test vectors (`network/vmware_test.go`,
//! `datasource/vmware/vmware_test.go`) as whole files, then what upstream refused outright and
//! we skip interface by interface, and the probing of the backdoor.

use std::cell::RefCell;

use super::*;

/// `guestinfo.`-prefixed keys (upstream's tests leave the prefix out).
fn gi(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (format!("guestinfo.{k}"), v.to_string()))
        .collect()
}

fn files(net: &GuestNetwork) -> Vec<(String, String)> {
    net.files()
        .into_iter()
        .map(|f| (f.name, f.content))
        .collect()
}

struct Case {
    name: &'static str,
    keys: &'static [(&'static str, &'static str)],
    want: &'static [(&'static str, &'static str)],
    warnings: &'static [&'static str],
}

fn check(cases: &[Case]) {
    for c in cases {
        let (net, warnings) = parse(&gi(c.keys));
        let want: Vec<(String, String)> = c
            .want
            .iter()
            .map(|(n, t)| (n.to_string(), t.to_string()))
            .collect();
        assert_eq!(files(&net), want, "{}", c.name);
        assert_eq!(warnings, c.warnings, "{}", c.name);
    }
}

/// `TestProcessVMwareNetconf`, each case's interfaces written out as networkd files.
#[test]
fn upstream_netconf_vectors() {
    check(&[
        Case {
            name: "nothing",
            keys: &[],
            want: &[],
            warnings: &[],
        },
        Case {
            name: "dhcp alone: any ethernet",
            keys: &[("interface.0.dhcp", "yes")],
            want: &[(
                "01-vmware-00.network",
                "# coreos-cloudinit: guestinfo.interface.0.* of VMware guestinfo\n\
                 [Match]\nType=ether\nName=!veth* !docker*\n\n[Network]\nDHCP=yes\n",
            )],
            warnings: &[],
        },
        Case {
            name: "dhcp by MAC",
            keys: &[
                ("interface.0.mac", "00:11:22:33:44:55"),
                ("interface.0.dhcp", "yes"),
            ],
            want: &[(
                "00-vmware-00.network",
                "# coreos-cloudinit: guestinfo.interface.0.* of VMware guestinfo\n\
                 [Match]\nMACAddress=00:11:22:33:44:55\n\n[Network]\nDHCP=yes\n",
            )],
            warnings: &[],
        },
        Case {
            name: "dhcp by name",
            keys: &[("interface.0.name", "eth0"), ("interface.0.dhcp", "yes")],
            want: &[(
                "00-vmware-00.network",
                "# coreos-cloudinit: guestinfo.interface.0.* of VMware guestinfo\n\
                 [Match]\nName=eth0\n\n[Network]\nDHCP=yes\n",
            )],
            warnings: &[],
        },
        Case {
            name: "static by MAC",
            keys: &[
                ("interface.0.mac", "00:11:22:33:44:55"),
                ("interface.0.ip.0.address", "10.0.0.100/24"),
                ("interface.0.route.0.gateway", "10.0.0.1"),
                ("interface.0.route.0.destination", "0.0.0.0/0"),
            ],
            want: &[(
                "00-vmware-00.network",
                "# coreos-cloudinit: guestinfo.interface.0.* of VMware guestinfo\n\
                 [Match]\nMACAddress=00:11:22:33:44:55\n\n[Network]\n\n\
                 [Address]\nAddress=10.0.0.100/24\n\n\
                 [Route]\nDestination=0.0.0.0/0\nGateway=10.0.0.1\n",
            )],
            warnings: &[],
        },
        Case {
            name: "three interfaces, DNS on the static ones",
            keys: &[
                ("dns.server.0", "1.2.3.4"),
                ("dns.server.1", "5.6.7.8"),
                ("dns.domain.0", "coreos.com"),
                ("dns.domain.1", "example.com"),
                ("interface.0.mac", "00:11:22:33:44:55"),
                ("interface.0.ip.0.address", "10.0.0.100/24"),
                ("interface.0.ip.1.address", "10.0.0.101/24"),
                ("interface.0.route.0.gateway", "10.0.0.1"),
                ("interface.0.route.0.destination", "0.0.0.0/0"),
                ("interface.1.name", "eth0"),
                ("interface.1.ip.0.address", "10.0.1.100/24"),
                ("interface.1.route.0.gateway", "10.0.1.1"),
                ("interface.1.route.0.destination", "0.0.0.0/0"),
                ("interface.2.dhcp", "yes"),
                ("interface.2.mac", "00:11:22:33:44:77"),
            ],
            want: &[
                (
                    "00-vmware-00.network",
                    "# coreos-cloudinit: guestinfo.interface.0.* of VMware guestinfo\n\
                     [Match]\nMACAddress=00:11:22:33:44:55\n\n\
                     [Network]\nDomains=coreos.com example.com\nDNS=1.2.3.4\nDNS=5.6.7.8\n\n\
                     [Address]\nAddress=10.0.0.100/24\n\n[Address]\nAddress=10.0.0.101/24\n\n\
                     [Route]\nDestination=0.0.0.0/0\nGateway=10.0.0.1\n",
                ),
                (
                    "00-vmware-01.network",
                    "# coreos-cloudinit: guestinfo.interface.1.* of VMware guestinfo\n\
                     [Match]\nName=eth0\n\n\
                     [Network]\nDomains=coreos.com example.com\nDNS=1.2.3.4\nDNS=5.6.7.8\n\n\
                     [Address]\nAddress=10.0.1.100/24\n\n\
                     [Route]\nDestination=0.0.0.0/0\nGateway=10.0.1.1\n",
                ),
                (
                    "00-vmware-02.network",
                    "# coreos-cloudinit: guestinfo.interface.2.* of VMware guestinfo\n\
                     [Match]\nMACAddress=00:11:22:33:44:77\n\n[Network]\nDHCP=yes\n",
                ),
            ],
            warnings: &[],
        },
        Case {
            // Upstream refused the whole configuration: "invalid nameserver".
            name: "a bad nameserver",
            keys: &[("dns.server.0", "test dns")],
            want: &[],
            warnings: &[
                "guestinfo.dns.server.0: \"test dns\" is not an IP address: server skipped",
            ],
        },
    ]);
}

/// `TestProcessAddressConfig`, `TestProcessRouteConfig`, `TestProcessDHCPConfig`.
#[test]
fn upstream_address_route_and_dhcp_vectors() {
    let static_file = |body: &str| {
        format!(
            "# coreos-cloudinit: guestinfo.interface.0.* of VMware guestinfo\n\
             [Match]\nName=eth0\n\n[Network]\n{body}"
        )
    };
    let one = |pairs: &[(&str, &str)]| {
        let mut all = vec![("interface.0.name", "eth0")];
        all.extend_from_slice(pairs);
        let (net, warnings) = parse(&gi(&all));
        (
            net.files()
                .into_iter()
                .map(|f| f.content)
                .collect::<Vec<_>>(),
            warnings,
        )
    };
    let ok = |pairs: &[(&str, &str)], body: &str| {
        assert_eq!(one(pairs), (vec![static_file(body)], vec![]), "{pairs:?}");
    };
    let skipped = |pairs: &[(&str, &str)], warning: &str| {
        assert_eq!(one(pairs), (vec![], vec![warning.to_string()]), "{pairs:?}");
    };
    ok(
        &[
            ("interface.0.ip.0.address", "10.0.0.100/24"),
            ("interface.0.ip.1.address", "10.0.0.101/24"),
            ("interface.0.ip.2.address", "10.0.0.102/24"),
        ],
        "\n[Address]\nAddress=10.0.0.100/24\n\n[Address]\nAddress=10.0.0.101/24\n\
         \n[Address]\nAddress=10.0.0.102/24\n",
    );
    ok(
        &[
            ("interface.0.ip.0.address", "fe00::100/64"),
            ("interface.0.ip.1.address", "fe00::101/64"),
        ],
        "\n[Address]\nAddress=fe00::100/64\n\n[Address]\nAddress=fe00::101/64\n",
    );
    skipped(
        &[("interface.0.ip.0.address", "test address")],
        "guestinfo.interface.0.ip.0.address: \"test address\" is not an address with a prefix \
         length (CIDR, like 10.0.0.2/24): interface 0 skipped",
    );
    ok(
        &[
            ("interface.0.route.0.gateway", "fe00::1"),
            ("interface.0.route.0.destination", "::/0"),
        ],
        "\n[Route]\nDestination=::/0\nGateway=fe00::1\n",
    );
    skipped(
        &[
            ("interface.0.route.0.gateway", "test gateway"),
            ("interface.0.route.0.destination", "0.0.0.0/0"),
        ],
        "guestinfo.interface.0.route.0.gateway: \"test gateway\" is not an IP address: \
         interface 0 skipped",
    );
    skipped(
        &[
            ("interface.0.route.0.gateway", "10.0.0.1"),
            ("interface.0.route.0.destination", "test destination"),
        ],
        "guestinfo.interface.0.route.0.destination: \"test destination\" is not an address with \
         a prefix length (CIDR, like 10.0.0.2/24): interface 0 skipped",
    );
    ok(&[("interface.0.dhcp", "yes")], "DHCP=yes\n");
    skipped(
        &[("interface.0.dhcp", "no")],
        "guestinfo.interface.0: no ip.<m>.address, route or dhcp=yes: nothing to configure: \
         interface 0 skipped",
    );
    skipped(
        &[("interface.0.dhcp", "blah")],
        "guestinfo.interface.0.dhcp: \"blah\" is not yes or no: interface 0 skipped",
    );
    // Static wins over dhcp=yes, as upstream's `configMethodStatic` did.
    ok(
        &[
            ("interface.0.dhcp", "yes"),
            ("interface.0.ip.0.address", "10.0.0.100/24"),
        ],
        "\n[Address]\nAddress=10.0.0.100/24\n",
    );
}

/// `TestFetchMetadata`/`TestOvfTransport`: the roles give `$public_ipv4` & co., the last
/// address of a role winning. (Upstream's vectors route to `0.0.0.0` and `::`, which its own
/// `ProcessVMwareNetconf` then refused; here they are CIDR.)
#[test]
fn roles_fill_the_addresses() {
    let (net, warnings) = parse(&gi(&[
        ("hostname", "test host"),
        ("interface.0.name", "ens192"),
        ("interface.0.role", "public"),
        ("interface.0.ip.0.address", "10.0.0.100/24"),
        ("interface.0.ip.1.address", "10.0.0.101/24"),
        ("interface.0.route.0.gateway", "10.0.0.1"),
        ("interface.0.route.0.destination", "0.0.0.0/0"),
        ("interface.1.mac", "00:50:56:aa:bb:cc"),
        ("interface.1.role", "private"),
        ("interface.1.route.0.gateway", "10.0.0.2"),
        ("interface.1.route.0.destination", "0.0.0.0/0"),
        ("interface.1.ip.0.address", "10.0.0.102/24"),
        ("interface.2.mac", "00:50:56:aa:bb:dd"),
        ("interface.2.role", "private"),
        ("interface.2.ip.0.address", "fe00::100/64"),
        ("interface.2.route.0.gateway", "fe00::1"),
        ("interface.2.route.0.destination", "::/0"),
        ("interface.3.name", "ens256"),
        ("interface.3.ip.0.address", "192.168.0.9/24"),
    ]));
    assert_eq!(warnings, Vec::<String>::new());
    assert_eq!(
        net.addresses(),
        Addresses {
            public_ipv4: Some("10.0.0.101".into()),
            private_ipv4: Some("10.0.0.102".into()),
            public_ipv6: None,
            private_ipv6: Some("fe00::100".into()),
        }
    );
    assert_eq!(
        net.summary(),
        "interface 0 (ens192): 10.0.0.100/24, 10.0.0.101/24, route 0.0.0.0/0 via 10.0.0.1, role public; \
         interface 1 (00:50:56:aa:bb:cc): 10.0.0.102/24, route 0.0.0.0/0 via 10.0.0.2, role private; \
         interface 2 (00:50:56:aa:bb:dd): fe00::100/64, route ::/0 via fe00::1, role private; \
         interface 3 (ens256): 192.168.0.9/24"
    );
    // A skipped interface gives no address either.
    let (net, _) = parse(&gi(&[
        ("interface.0.role", "public"),
        ("interface.0.ip.0.address", "10.0.0.100/24"),
        ("interface.0.route.0.destination", "0.0.0.0"),
    ]));
    assert_eq!(net.addresses(), Addresses::default());
}

/// Bad or partial keys: one warning naming the key, that interface skipped, the rest applied.
#[test]
fn bad_keys_skip_their_interface_only() {
    let good = ("interface.1.name", "ens224");
    let good_dhcp = ("interface.1.dhcp", "yes");
    struct Bad {
        keys: &'static [(&'static str, &'static str)],
        warning: &'static str,
    }
    let cases = [
        Bad {
            keys: &[("interface.0.ip.0.address", "10.0.0.100")],
            warning: "guestinfo.interface.0.ip.0.address: \"10.0.0.100\" is not an address with \
                      a prefix length (CIDR, like 10.0.0.2/24): interface 0 skipped",
        },
        Bad {
            keys: &[("interface.0.ip.0.address", "10.0.0.100/33")],
            warning: "guestinfo.interface.0.ip.0.address: \"10.0.0.100/33\" is not an address \
                      with a prefix length (CIDR, like 10.0.0.2/24): interface 0 skipped",
        },
        Bad {
            keys: &[
                ("interface.0.ip.0.address", "10.0.0.100/24"),
                ("interface.0.route.0.destination", "0.0.0.0/0"),
            ],
            warning: "guestinfo.interface.0.route.0.gateway: missing (the route to 0.0.0.0/0 \
                      needs one): interface 0 skipped",
        },
        Bad {
            keys: &[
                ("interface.0.ip.0.address", "10.0.0.100/24"),
                ("interface.0.route.1.gateway", "10.0.0.1"),
            ],
            warning: "guestinfo.interface.0.route.1.destination: missing (the route via \
                      10.0.0.1 needs one): interface 0 skipped",
        },
        Bad {
            keys: &[
                ("interface.0.route.0.gateway", "fe00::1"),
                ("interface.0.route.0.destination", "0.0.0.0/0"),
            ],
            warning: "guestinfo.interface.0.route.0.gateway: gateway fe00::1 and destination \
                      0.0.0.0/0 are not of one IP version: interface 0 skipped",
        },
        Bad {
            keys: &[
                ("interface.eth0.dhcp", "yes"),
                ("interface.eth0.name", "eth0"),
            ],
            warning: "guestinfo.interface.eth0.dhcp: \"eth0\" is not an index (0 to 99): \
                      interface eth0 skipped",
        },
        Bad {
            keys: &[("interface.01.dhcp", "yes")],
            warning: "guestinfo.interface.01.dhcp: \"01\" is not an index (0 to 99): \
                      interface 01 skipped",
        },
        Bad {
            keys: &[("interface.100.dhcp", "yes")],
            warning: "guestinfo.interface.100.dhcp: \"100\" is not an index (0 to 99): \
                      interface 100 skipped",
        },
        Bad {
            keys: &[("interface.0.ip.a.address", "10.0.0.100/24")],
            warning: "guestinfo.interface.0.ip.a.address: \"a\" is not an index (0 to 99): \
                      interface 0 skipped",
        },
        Bad {
            keys: &[("interface.0.mac", "test mac"), ("interface.0.dhcp", "yes")],
            warning: "guestinfo.interface.0.mac: \"test mac\" is not a MAC address: \
                      interface 0 skipped",
        },
        Bad {
            keys: &[("interface.0.role", "Public"), ("interface.0.dhcp", "yes")],
            warning: "guestinfo.interface.0.role: \"Public\" is not public or private: \
                      interface 0 skipped",
        },
        Bad {
            keys: &[("interface.0.name", "eth 0"), ("interface.0.dhcp", "yes")],
            warning: "guestinfo.interface.0.name: \"eth 0\" is not an interface name (at most \
                      15 bytes, no blanks or '/'): interface 0 skipped",
        },
        Bad {
            keys: &[("interface.0.name", "ens192")],
            warning: "guestinfo.interface.0: no ip.<m>.address, route or dhcp=yes: nothing to \
                      configure: interface 0 skipped",
        },
    ];
    for c in cases {
        let mut keys = vec![good, good_dhcp];
        keys.extend_from_slice(c.keys);
        let (net, warnings) = parse(&gi(&keys));
        assert_eq!(warnings, [c.warning], "{:?}", c.keys);
        let names: Vec<String> = net.files().into_iter().map(|f| f.name).collect();
        assert_eq!(names, ["00-vmware-01.network"], "{:?}", c.keys);
    }
}

#[test]
fn unknown_keys_are_ignored_with_a_warning() {
    let (net, warnings) = parse(&gi(&[
        ("interface.0.name", "ens192"),
        ("interface.0.dhcp", "yes"),
        ("interface.0.ip.0.adress", "10.0.0.100/24"),
        ("interface.0.mtu", "9000"),
        ("interface.x", "1"),
        ("dns.search", "example.com"),
        ("dns.domain.0", "bad domain"),
        ("dns.server.x", "1.1.1.1"),
        ("hostname", "not a network key"),
        ("interface.1.name", ""),
    ]));
    assert_eq!(
        warnings,
        [
            "guestinfo.dns.domain.0: \"bad domain\" is not a domain (it has blanks): domain skipped",
            "guestinfo.dns.search: unknown key, ignored",
            "guestinfo.dns.server.x: \"x\" is not an index (0 to 99): server skipped",
            "guestinfo.interface.x: unknown key, ignored",
            "guestinfo.interface.0.ip.0.adress: unknown key, ignored",
            "guestinfo.interface.0.mtu: unknown key, ignored",
        ]
    );
    assert_eq!(net.interfaces.len(), 1);
    assert!(net.interfaces[0].dhcp);
}

#[test]
fn dns_without_a_static_interface_is_not_used() {
    let (net, warnings) = parse(&gi(&[
        ("dns.server.0", "1.1.1.1"),
        ("interface.0.dhcp", "yes"),
    ]));
    assert_eq!(
        warnings,
        [
            "guestinfo.dns.server.0 & co.: no interface with a static address to carry the DNS \
          servers and domains (a DHCP interface takes them from DHCP): not used"
        ]
    );
    assert!(!net.summary().contains("DNS"), "{}", net.summary());
    assert!(!net.files()[0].content.contains("DNS="));
}

/// Indexes sort as numbers, gaps are fine (an OVF environment lists every key), servers and
/// domains keep their index order, and values are trimmed.
#[test]
fn order_by_index() {
    let (net, warnings) = parse(&gi(&[
        ("dns.server.10", "10.0.0.10"),
        ("dns.server.2", "10.0.0.2"),
        ("dns.domain.1", "b.example"),
        ("dns.domain.0", " a.example\n"),
        ("interface.10.name", "ens10"),
        ("interface.10.dhcp", "yes"),
        ("interface.2.name", "ens2"),
        ("interface.2.ip.10.address", "10.0.2.10/24"),
        ("interface.2.ip.9.address", "10.0.2.9/24"),
        ("interface.3.dhcp", "yes\n"),
    ]));
    assert_eq!(warnings, Vec::<String>::new());
    let names: Vec<String> = net.files().into_iter().map(|f| f.name).collect();
    assert_eq!(
        names,
        [
            "00-vmware-02.network",
            "01-vmware-03.network",
            "00-vmware-10.network"
        ]
    );
    assert_eq!(
        net.files()[0].content,
        "# coreos-cloudinit: guestinfo.interface.2.* of VMware guestinfo\n\
         [Match]\nName=ens2\n\n\
         [Network]\nDomains=a.example b.example\nDNS=10.0.0.2\nDNS=10.0.0.10\n\n\
         [Address]\nAddress=10.0.2.9/24\n\n[Address]\nAddress=10.0.2.10/24\n"
    );
}

#[test]
fn macs_and_cidrs() {
    let mac = Mac([0x00, 0x50, 0x56, 0xaa, 0xbb, 0xcc]);
    for s in ["00:50:56:AA:BB:CC", "00-50-56-aa-bb-cc", "0050.56aa.bbcc"] {
        assert_eq!(s.parse(), Ok(mac), "{s}");
    }
    assert_eq!(mac.to_string(), "00:50:56:aa:bb:cc");
    for bad in [
        "",
        "00:50:56:aa:bb",
        "00:50:56:aa:bb:cc:dd",
        "0:50:56:aa:bb:cc",
        "00:50-56:aa:bb:cc",
        "00:50:56:aa:bb:gg",
    ] {
        assert_eq!(bad.parse::<Mac>(), Err(()), "{bad}");
    }
    let c: Cidr = "10.1.2.3/8".parse().unwrap();
    assert_eq!(c.to_string(), "10.1.2.3/8");
    assert_eq!(c.network().to_string(), "10.0.0.0/8");
    assert_eq!(
        "10.1.2.3/0".parse::<Cidr>().unwrap().network().to_string(),
        "0.0.0.0/0"
    );
    assert_eq!(
        "10.1.2.3/32".parse::<Cidr>().unwrap().network().to_string(),
        "10.1.2.3/32"
    );
    assert_eq!(
        "fe00::1:2/112"
            .parse::<Cidr>()
            .unwrap()
            .network()
            .to_string(),
        "fe00::1:0/112"
    );
    assert_eq!(
        "::/0".parse::<Cidr>().unwrap().network().to_string(),
        "::/0"
    );
    for bad in [
        "10.0.0.1",
        "10.0.0.1/",
        "10.0.0.1/-1",
        "10.0.0.1/+8",
        "fe00::1/129",
        "x/8",
        "10.0.0.1/8/8",
    ] {
        assert_eq!(bad.parse::<Cidr>(), Err(()), "{bad}");
    }
    assert_eq!(parse_index("0"), Some(0));
    assert_eq!(parse_index("99"), Some(99));
    for bad in ["", "00", "07", "100", "-1", "+1", "1.5", "x"] {
        assert_eq!(parse_index(bad), None, "{bad}");
    }
}

#[test]
fn the_backdoor_is_asked_index_by_index() {
    let asked = RefCell::new(Vec::new());
    let vars = gi(&[
        ("dns.server.0", "1.1.1.1"),
        ("dns.server.2", "not asked: after a gap"),
        ("interface.0.name", "ens192"),
        ("interface.0.ip.0.address", "10.0.0.2/24"),
        ("interface.0.ip.1.address", " "),
        ("interface.0.route.0.gateway", "10.0.0.1"),
        ("interface.0.route.0.destination", "0.0.0.0/0"),
        ("interface.1.role", "private"),
        ("interface.3.dhcp", "not asked: interface 2 has nothing"),
        ("hostname", "not a network key"),
    ]);
    let get = |key: &str| -> Result<Option<String>, HostError> {
        asked.borrow_mut().push(key.to_string());
        Ok(vars.get(key).cloned())
    };
    let keys = probe_keys(&get).unwrap();
    assert_eq!(
        keys,
        gi(&[
            ("dns.server.0", "1.1.1.1"),
            ("interface.0.name", "ens192"),
            ("interface.0.ip.0.address", "10.0.0.2/24"),
            ("interface.0.route.0.gateway", "10.0.0.1"),
            ("interface.0.route.0.destination", "0.0.0.0/0"),
            ("interface.1.role", "private"),
        ])
    );
    let asked = asked.into_inner();
    let want: Vec<String> = [
        "dns.server.0",
        "dns.server.1",
        "dns.domain.0",
        "interface.0.name",
        "interface.0.mac",
        "interface.0.dhcp",
        "interface.0.role",
        "interface.0.ip.0.address",
        "interface.0.ip.1.address",
        "interface.0.route.0.gateway",
        "interface.0.route.0.destination",
        "interface.0.route.1.gateway",
        "interface.0.route.1.destination",
        "interface.1.name",
        "interface.1.mac",
        "interface.1.dhcp",
        "interface.1.role",
        "interface.1.ip.0.address",
        "interface.1.route.0.gateway",
        "interface.1.route.0.destination",
        "interface.2.name",
        "interface.2.mac",
        "interface.2.dhcp",
        "interface.2.role",
        "interface.2.ip.0.address",
        "interface.2.route.0.gateway",
        "interface.2.route.0.destination",
    ]
    .iter()
    .map(|k| format!("guestinfo.{k}"))
    .collect();
    assert_eq!(asked, want);
    // Probing is bounded even when the host answers every key.
    let count = RefCell::new(0usize);
    let always = |_: &str| -> Result<Option<String>, HostError> {
        *count.borrow_mut() += 1;
        Ok(Some("x".into()))
    };
    let keys = probe_keys(&always).unwrap();
    let n = (MAX_INDEX + 1) as usize;
    assert_eq!(keys.len(), 2 * n + n * (4 + n + 2 * n));
    assert_eq!(count.into_inner(), keys.len());
    // A host error ends the probe.
    let failing = |key: &str| -> Result<Option<String>, HostError> {
        Err(HostError::new(format!("info-get {key}"), "refused"))
    };
    assert_eq!(
        probe_keys(&failing).unwrap_err().to_string(),
        "info-get guestinfo.dns.server.0: refused"
    );
}
