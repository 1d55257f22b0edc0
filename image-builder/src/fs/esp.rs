//! The EFI System Partition: systemd-boot, `loader.conf`, GRUB's `grub.cfg` and `grubenv` (legacy
//! BIOS), and per slot a kernel, an initramfs, GRUB's view of the entry
//! and a Type #1 boot entry (Boot Loader Specification) with a boot counter (SPECS.md S4). The
//! content is rendered as values here; [`super::fat`] turns them into a filesystem.

use contract::slots::{grub, BootCounter, BootEntry, Slot, ENTRIES_DIR};

use super::fat::{self, FatError, FatFile, FatParams};
use crate::disk::layout::{self, DiskLayout};
use crate::spec::ImageSpec;

/// Where systemd-boot lives on the ESP (the removable-media path every firmware boots).
pub const SDBOOT_ON_ESP: &str = "EFI/BOOT/BOOTX64.EFI";
pub const LOADER_CONF: &str = "loader/loader.conf";

/// `loader.conf`. Deliberately no `default` line: it would override boot counting and boot an
/// exhausted entry (HOST.md).
pub fn loader_conf(timeout: u32) -> String {
    format!("timeout {timeout}\nconsole-mode keep\neditor no\n")
}

/// The entry of the image's own slot, USR-A, with the spec's boot tries. Pure.
pub fn first_entry(spec: &ImageSpec, layout: &DiskLayout) -> BootEntry {
    BootEntry {
        os_id: spec.os.id.0.clone(),
        os_name: spec.os.name.0.clone(),
        version: spec.os.version.0.clone(),
        slot: Slot::A,
        usr_partuuid: layout.part(layout::USR_A).guid.to_string(),
        cmdline: spec.kernel.cmdline.clone(),
        counter: Some(BootCounter {
            left: spec.bootloader.tries.0,
            done: 0,
        }),
    }
}

/// The files of the ESP: the loader, its configuration, and `entry` with its kernel and
/// initramfs; with legacy BIOS boot (`bootloader.bios`) GRUB's configuration and its empty
/// boot-try journal. Pure.
pub fn files(
    spec: &ImageSpec,
    entry: &BootEntry,
    bootloader: &[u8],
    kernel: &[u8],
    initrd: &[u8],
) -> Vec<FatFile> {
    let mut files = vec![
        FatFile::new(SDBOOT_ON_ESP, bootloader),
        FatFile::new(LOADER_CONF, loader_conf(spec.bootloader.timeout)),
        FatFile::new(
            format!("{ENTRIES_DIR}/{}", entry.file_name()),
            entry.render(),
        ),
        FatFile::new(entry.kernel_path(), kernel),
        FatFile::new(entry.initrd_path(), initrd),
        FatFile::new(entry.grub_script_path(), entry.grub_script()),
    ];
    if spec.bootloader.bios.is_some() {
        files.push(FatFile::new(
            grub::GRUB_CFG,
            grub::grub_cfg(&entry.os_id, spec.bootloader.timeout),
        ));
        files.push(FatFile::new(grub::GRUBENV, grub::empty_envblk()));
    }
    files
}

/// The ESP's FAT32 image, sized for its partition in `layout`, volume id from its GUID.
pub fn image(layout: &DiskLayout, files: &[FatFile]) -> Result<Vec<u8>, FatError> {
    let part = layout.part(layout::ESP);
    let params = FatParams {
        size_bytes: part.size,
        volume_id: u32::from_le_bytes(part.guid.as_bytes()[..4].try_into().expect("4 bytes")),
        label: Some(layout::ESP.into()),
    };
    fat::build(&params, files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loader_conf_has_no_default() {
        assert!(!loader_conf(0).contains("default"));
    }
}
