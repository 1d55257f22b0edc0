//! The disk's partitions as the builder lays them out and the machines find them again
//! (DESIGN.md "Disk layout", SPECS.md S5): Container Linux numbering, GPT partition names
//! (labels) and type GUIDs. `/init` finds ROOT by label, the update engine finds the USR slots
//! by label, first boot grows ROOT.

/// GPT partition names.
pub const ESP: &str = "EFI-SYSTEM";
pub const BIOS_BOOT: &str = "BIOS-BOOT";
pub const USR_A: &str = "USR-A";
pub const USR_B: &str = "USR-B";
pub const OEM: &str = "OEM";
pub const ROOT: &str = "ROOT";

/// Partition type GUIDs (SPECS.md S5), lower-case text.
pub mod types {
    /// EFI System Partition.
    pub const ESP: &str = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b";
    /// BIOS boot partition (GRUB's core image).
    pub const BIOS_BOOT: &str = "21686148-6449-6e6f-744e-656564454649";
    /// CoreOS /usr partition (both slots).
    pub const COREOS_USR: &str = "5dfbf5f4-2848-4bac-aa5e-0d9a20b745a6";
    /// Linux filesystem data (OEM).
    pub const LINUX_DATA: &str = "0fc63daf-8483-4772-8e79-3d69d8477de4";
    /// CoreOS resizable root (ROOT).
    pub const COREOS_ROOT: &str = "3884dd41-8582-4404-b9a8-e9b84f2df50e";
}

/// One partition of the standard layout: its GPT entry number, name and type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standard {
    pub number: u32,
    pub label: &'static str,
    pub type_guid: &'static str,
}

/// The standard partitions in number order (Container Linux numbering: 5, 7 and 8 stay free).
pub const STANDARD: [Standard; 6] = [
    Standard {
        number: 1,
        label: ESP,
        type_guid: types::ESP,
    },
    Standard {
        number: 2,
        label: BIOS_BOOT,
        type_guid: types::BIOS_BOOT,
    },
    Standard {
        number: 3,
        label: USR_A,
        type_guid: types::COREOS_USR,
    },
    Standard {
        number: 4,
        label: USR_B,
        type_guid: types::COREOS_USR,
    },
    Standard {
        number: 6,
        label: OEM,
        type_guid: types::LINUX_DATA,
    },
    Standard {
        number: 9,
        label: ROOT,
        type_guid: types::COREOS_ROOT,
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_ascend_and_labels_are_unique() {
        for pair in STANDARD.windows(2) {
            assert!(pair[0].number < pair[1].number);
        }
        let mut labels: Vec<&str> = STANDARD.iter().map(|p| p.label).collect();
        labels.sort();
        labels.dedup();
        assert_eq!(labels.len(), STANDARD.len());
    }
}
