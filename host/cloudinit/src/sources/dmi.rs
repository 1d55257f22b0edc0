//! Platform detection from SMBIOS/DMI (`/sys/class/dmi/id/*`) and Xen's `/sys/hypervisor/uuid`,
//! so that the network sources are only asked where they exist.
//!
//! EC2: Nitro instances say `Amazon EC2` in `sys_vendor` and `board_vendor`; Xen instances say
//! `Xen` but their `product_uuid` (and `/sys/hypervisor/uuid`) starts with `ec2` (the UUID of some
//! is byte-swapped, `2ec…`, which cloud-init treats as not EC2; so do we). VMware: `sys_vendor`
//! is `VMware, Inc.`.

use std::path::Path;

/// The DMI strings the agent looks at (trimmed; empty when unreadable).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dmi {
    pub sys_vendor: String,
    pub board_vendor: String,
    pub product_uuid: String,
    /// `/sys/hypervisor/uuid` (Xen guests).
    pub hypervisor_uuid: String,
}

impl Dmi {
    /// Reads the files under `root`.
    pub fn read(root: &Path) -> Dmi {
        let read = |rel: &str| {
            std::fs::read_to_string(root.join(rel))
                .map(|s| s.trim().to_string())
                .unwrap_or_default()
        };
        Dmi {
            sys_vendor: read("sys/class/dmi/id/sys_vendor"),
            board_vendor: read("sys/class/dmi/id/board_vendor"),
            product_uuid: read("sys/class/dmi/id/product_uuid"),
            hypervisor_uuid: read("sys/hypervisor/uuid"),
        }
    }

    pub fn is_ec2(&self) -> bool {
        let ec2_uuid = |u: &str| u.get(..3).is_some_and(|p| p.eq_ignore_ascii_case("ec2"));
        self.sys_vendor == "Amazon EC2"
            || self.board_vendor == "Amazon EC2"
            || ec2_uuid(&self.product_uuid)
            || ec2_uuid(&self.hypervisor_uuid)
    }

    pub fn is_vmware(&self) -> bool {
        self.sys_vendor == "VMware, Inc."
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms() {
        struct Case {
            name: &'static str,
            dmi: Dmi,
            ec2: bool,
            vmware: bool,
        }
        let dmi = |sys: &str, board: &str, uuid: &str, hv: &str| Dmi {
            sys_vendor: sys.into(),
            board_vendor: board.into(),
            product_uuid: uuid.into(),
            hypervisor_uuid: hv.into(),
        };
        let cases = [
            Case {
                name: "nitro",
                dmi: dmi(
                    "Amazon EC2",
                    "Amazon EC2",
                    "EC2E1916-9099-7CAF-FD21-012345678901",
                    "",
                ),
                ec2: true,
                vmware: false,
            },
            Case {
                name: "xen instance",
                dmi: dmi("Xen", "", "ec2e1916-9099-7caf-fd21-012345678901", ""),
                ec2: true,
                vmware: false,
            },
            Case {
                name: "xen, uuid only in /sys/hypervisor",
                dmi: dmi("Xen", "", "", "ec2e1916-9099-7caf-fd21-012345678901"),
                ec2: true,
                vmware: false,
            },
            Case {
                name: "qemu",
                dmi: dmi("QEMU", "", "2ec91e16-9099-7caf-fd21-012345678901", ""),
                ec2: false,
                vmware: false,
            },
            Case {
                name: "vmware",
                dmi: dmi("VMware, Inc.", "Intel Corporation", "564d0000", ""),
                ec2: false,
                vmware: true,
            },
            Case {
                name: "nothing readable",
                dmi: Dmi::default(),
                ec2: false,
                vmware: false,
            },
        ];
        for c in cases {
            assert_eq!(c.dmi.is_ec2(), c.ec2, "{}", c.name);
            assert_eq!(c.dmi.is_vmware(), c.vmware, "{}", c.name);
        }
    }
}
