//! The disk layout: a pure function from the spec to a GPT with Container Linux numbering
//! (DESIGN.md, "Disk layout"): 1 EFI-SYSTEM, 2 BIOS-BOOT, 3 USR-A, 4 USR-B, 6 OEM, 9 ROOT.
//!
//! Partitions start on 1 MiB boundaries; GUIDs are UUIDv5 values derived from the OS id and
//! version, so the same spec always yields the same table.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use contract::partitions::STANDARD;

use crate::spec::ImageSpec;

pub const SECTOR: u64 = 512;
pub const MIB: u64 = 1024 * 1024;
/// Room before the first partition (protective MBR, primary GPT) and after the last (backup).
pub const GPT_RESERVED_MIB: u64 = 1;

/// Partition names and type GUIDs: the machines find partitions by them.
pub use contract::partitions::{types, BIOS_BOOT, ESP, OEM, ROOT, USR_A, USR_B};

/// Namespace of every UUIDv5 this project derives (a fixed, arbitrary UUID).
pub const NAMESPACE: Uuid = Uuid::from_u128(0x6f1d_2c3a_9b7e_4e21_8a55_0c3e_71d2_b9f4);

/// Derive a stable UUID from the spec identity and a purpose string.
pub fn derive_uuid(spec: &ImageSpec, what: &str) -> Uuid {
    let name = format!("{}/{}/{}", spec.os.id.0, spec.os.version.0, what);
    Uuid::new_v5(&NAMESPACE, name.as_bytes())
}

/// One partition of the table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Partition {
    /// GPT entry number (1-based), Container Linux numbering.
    pub number: u32,
    pub label: String,
    pub type_guid: Uuid,
    pub guid: Uuid,
    /// First byte on the disk.
    pub offset: u64,
    /// Size in bytes.
    pub size: u64,
}

impl Partition {
    pub fn first_lba(&self) -> u64 {
        self.offset / SECTOR
    }
    pub fn last_lba(&self) -> u64 {
        (self.offset + self.size) / SECTOR - 1
    }
    pub fn end(&self) -> u64 {
        self.offset + self.size
    }
}

/// The whole disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskLayout {
    pub disk_guid: Uuid,
    /// Total disk size in bytes.
    pub size: u64,
    /// In partition-number order.
    pub partitions: Vec<Partition>,
}

impl DiskLayout {
    /// Compute the layout from the spec's sizes. Pure.
    pub fn compute(spec: &ImageSpec) -> DiskLayout {
        let p = &spec.partitions;
        let size = |label: &str| match label {
            ESP => p.esp_mib.0 * MIB,
            BIOS_BOOT => p.bios_boot_kib.0 * 1024,
            USR_A | USR_B => p.usr_mib.0 * MIB,
            OEM => p.oem_mib.0 * MIB,
            _ => p.root_mib.0 * MIB,
        };
        let mut offset = GPT_RESERVED_MIB * MIB;
        let partitions = STANDARD
            .iter()
            .map(|std| {
                let (label, size) = (std.label, size(std.label));
                let part = Partition {
                    number: std.number,
                    label: label.to_string(),
                    type_guid: Uuid::parse_str(std.type_guid).expect("constant GUID"),
                    guid: derive_uuid(spec, &format!("partition/{label}")),
                    offset,
                    size,
                };
                offset = (offset + size).next_multiple_of(MIB);
                part
            })
            .collect();
        DiskLayout {
            disk_guid: derive_uuid(spec, "disk"),
            size: offset + GPT_RESERVED_MIB * MIB,
            partitions,
        }
    }

    pub fn by_label(&self, label: &str) -> Option<&Partition> {
        self.partitions.iter().find(|p| p.label == label)
    }

    /// The partition with this label; the layout always has all six.
    pub fn part(&self, label: &str) -> &Partition {
        self.by_label(label)
            .expect("layout has every standard partition")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{Partitions, SizeKib, SizeMib};
    use proptest::prelude::*;

    pub(crate) fn spec_with(parts: Partitions) -> ImageSpec {
        let text = format!(
            "os: {{name: T, id: t, version: 1.2.3, channel: alpha}}\nsource_date_epoch: 0\n\
             kernel: {{package: linux-image-x, cmdline: '', initramfs_modules: [virtio_blk]}}\n\
             bootloader: {{package: systemd-boot-efi}}\n\
             partitions: {{esp_mib: {}, usr_mib: {}, oem_mib: {}, root_mib: {}, bios_boot_kib: {}}}\n",
            parts.esp_mib.0, parts.usr_mib.0, parts.oem_mib.0, parts.root_mib.0, parts.bios_boot_kib.0
        );
        ImageSpec::parse(&text, std::path::Path::new("t.yaml")).unwrap()
    }

    #[test]
    fn container_linux_numbering_and_labels() {
        let parts = Partitions {
            esp_mib: SizeMib(128),
            usr_mib: SizeMib(256),
            oem_mib: SizeMib(16),
            root_mib: SizeMib(64),
            bios_boot_kib: SizeKib(2048),
        };
        let l = DiskLayout::compute(&spec_with(parts));
        let got: Vec<(u32, &str)> = l
            .partitions
            .iter()
            .map(|p| (p.number, p.label.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (1, ESP),
                (2, BIOS_BOOT),
                (3, USR_A),
                (4, USR_B),
                (6, OEM),
                (9, ROOT)
            ]
        );
        assert_eq!(l.part(USR_A).size, l.part(USR_B).size);
        assert_eq!(l.part(ESP).offset, MIB);
        assert_eq!(l.size, (1 + 128 + 2 + 256 * 2 + 16 + 64 + 1) * MIB);
    }

    #[test]
    fn guids_are_stable_and_distinct() {
        let parts = Partitions {
            esp_mib: SizeMib(64),
            usr_mib: SizeMib(64),
            oem_mib: SizeMib(8),
            root_mib: SizeMib(64),
            bios_boot_kib: SizeKib(2048),
        };
        let a = DiskLayout::compute(&spec_with(parts.clone()));
        let b = DiskLayout::compute(&spec_with(parts));
        assert_eq!(a, b);
        let mut guids: Vec<Uuid> = a.partitions.iter().map(|p| p.guid).collect();
        guids.push(a.disk_guid);
        guids.sort();
        guids.dedup();
        assert_eq!(guids.len(), 7);
        assert_eq!(a.disk_guid.get_version_num(), 5);
    }

    proptest! {
        #[test]
        fn no_overlap_aligned_and_fits(esp in 1u64..2048, usr in 1u64..4096, oem in 1u64..512, root in 1u64..8192, bios in 1u64..4096) {
            let parts = Partitions { esp_mib: SizeMib(esp), usr_mib: SizeMib(usr), oem_mib: SizeMib(oem), root_mib: SizeMib(root), bios_boot_kib: SizeKib(bios) };
            let l = DiskLayout::compute(&spec_with(parts));
            let mut sorted = l.partitions.clone();
            sorted.sort_by_key(|p| p.offset);
            // The primary GPT (LBA 0-33) fits before the first partition.
            prop_assert!(sorted[0].offset >= 34 * SECTOR);
            for w in sorted.windows(2) {
                prop_assert!(w[0].end() <= w[1].offset, "overlap {:?} {:?}", w[0], w[1]);
            }
            for p in &l.partitions {
                prop_assert_eq!(p.offset % MIB, 0);
                if p.label == BIOS_BOOT {
                    prop_assert_eq!(p.size, bios * 1024);
                } else {
                    prop_assert_eq!(p.size % MIB, 0);
                }
                prop_assert!(p.size > 0);
            }
            // The backup GPT (33 sectors) fits after the last partition.
            prop_assert!(sorted.last().unwrap().end() + 33 * SECTOR <= l.size);
            prop_assert_eq!(l.size % MIB, 0);
        }
    }
}
