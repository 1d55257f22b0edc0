//! The EFI System Partition's content: systemd-boot, `loader.conf`, and per slot a kernel, an
//! initramfs and a Type #1 boot entry (Boot Loader Specification) with a boot counter
//! (SPECS.md S4). Everything here renders values; `fat` turns them into a filesystem.

pub use contract::slots::{parse_file_name, BootCounter, BootEntry, Slot, ENTRIES_DIR};

/// Where systemd-boot lives in its package and on the ESP.
pub const SDBOOT_IN_PACKAGE: &str = "usr/lib/systemd/boot/efi/systemd-bootx64.efi";
pub const SDBOOT_ON_ESP: &str = "EFI/BOOT/BOOTX64.EFI";
pub const LOADER_CONF: &str = "loader/loader.conf";

/// `loader.conf`. Deliberately no `default` line: it would override boot counting and boot an
/// exhausted entry (HOST.md).
pub fn loader_conf(timeout: u32) -> String {
    format!("timeout {timeout}\nconsole-mode keep\neditor no\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loader_conf_has_no_default() {
        assert!(!loader_conf(0).contains("default"));
    }
}
