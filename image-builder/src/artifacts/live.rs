//! The live medium (`iso` output): one hybrid file that boots BIOS and UEFI machines from a CD
//! and, written to a USB stick with `dd`, from the stick; the machine runs from RAM exactly as
//! after a network boot (the same kernel, the same initramfs carrying /usr, the same command
//! line: `kernel.cmdline` then `pxe.kernel_args`).
//!
//! ```text
//! blocks 0-15   MBR: GRUB's boot.img, loading the El Torito image's diskboot.img (BIOS, stick)
//!               GPT: one partition, the EFI image (UEFI, stick)
//! ISO 9660      BOOT/GRUB/GRUB.CFG      BIOS: loopback the EFI image, boot its kernel
//!               BOOT/GRUB/ELTORITO.IMG  El Torito BIOS entry: cdboot.img + GRUB's core image
//!               BOOT/BOOT.CAT           the boot catalog
//!               EFIBOOT.IMG             El Torito UEFI entry: FAT with systemd-boot, one loader
//!                                       entry, live/vmlinuz and live/initrd
//! end           backup GPT
//! ```
//!
//! The kernel and the initramfs are on the medium once, inside the FAT image: systemd-boot
//! reads them there, GRUB through `loopback`. Everything is computed from the spec and the
//! build's bytes ([`iso`] writes the volume), so the same build makes the same file.

use std::path::Path;

use anyhow::{Context, Result};
use contract::slots::ENTRIES_DIR;
use iso::{BootEntry, FileSpec, Layout, Platform, Volume};
use util::fs::AtomicFile;

use crate::disk::bios::{self, GrubPc};
use crate::disk::gpt;
use crate::disk::layout::{self, derive_uuid, DiskLayout, Partition, MIB, SECTOR};
use crate::fs::esp::{loader_conf, LOADER_CONF, SDBOOT_ON_ESP};
use crate::fs::fat::{self, FatError, FatFile, FatParams};
use crate::spec::{iso_label, ImageSpec};

/// Where the medium keeps its files (ISO 9660 level 1 names; Linux and GRUB show them lower
/// case).
pub const GRUB_CFG: &str = "BOOT/GRUB/GRUB.CFG";
pub const ELTORITO_IMG: &str = "BOOT/GRUB/ELTORITO.IMG";
pub const BOOT_CATALOG: &str = "BOOT/BOOT.CAT";
pub const EFI_IMG: &str = "EFIBOOT.IMG";
/// Inside the EFI image.
pub const KERNEL: &str = "live/vmlinuz";
pub const INITRD: &str = "live/initrd";
/// The GPT partition of the EFI image on a stick (not `EFI-SYSTEM`: an installed disk's ESP
/// next to the stick keeps its name to itself).
pub const EFI_PART_LABEL: &str = "LIVE-EFI";

/// RAM a machine needs to run the medium (or the network boot): the kernel, the initramfs
/// twice while the kernel unpacks it (the image as loaded and the files it unpacks to), and
/// room for the running system; in MiB, rounded up to 64. Pure.
pub fn ram_mib(kernel: u64, initrd: u64) -> u64 {
    const RUNNING_MIB: u64 = 192;
    let mib = (kernel + 2 * initrd).div_ceil(MIB) + RUNNING_MIB;
    mib.next_multiple_of(64)
}

/// What the medium is made of.
pub struct Live<'a> {
    pub spec: &'a ImageSpec,
    /// systemd-boot.
    pub bootloader: &'a [u8],
    /// GRUB for BIOS (`bootloader.bios`); `None`: the medium boots UEFI machines only.
    pub grub: Option<&'a GrubPc>,
    pub kernel: &'a [u8],
    /// The network-boot initramfs (carrying the USR image).
    pub initrd: &'a [u8],
    /// The kernel's arguments (the network boot's, without `initrd=`).
    pub cmdline: &'a str,
}

/// systemd-boot's entry for the live system.
fn loader_entry(spec: &ImageSpec, cmdline: &str) -> String {
    format!(
        "title {} {} (live)\nversion {}\nlinux /{KERNEL}\ninitrd /{INITRD}\noptions {cmdline}\n",
        spec.os.name.0, spec.os.version.0, spec.os.version.0
    )
}

/// GRUB's configuration on the medium: the serial console as on the disk, then the kernel and
/// initramfs from the EFI image. Pure.
pub fn grub_cfg(spec: &ImageSpec, cmdline: &str) -> String {
    format!(
        "# Written by image-builder: the live medium of {name} {version}. BIOS machines boot\n\
         # the kernel and initramfs UEFI machines boot, from the EFI image on the medium.\n\
         serial --unit=0 --speed=115200\n\
         terminal_input console serial\n\
         terminal_output console serial\n\
         set timeout={timeout}\n\
         menuentry \"{name} {version} (live)\" {{\n\
         \x20 loopback live /{EFI_IMG}\n\
         \x20 linux (live)/{KERNEL} {cmdline}\n\
         \x20 initrd (live)/{INITRD}\n\
         }}\n",
        name = spec.os.name.0,
        version = spec.os.version.0,
        timeout = spec.bootloader.timeout,
    )
}

/// The EFI image's files. Pure.
pub fn efi_files(live: &Live) -> Vec<FatFile> {
    vec![
        FatFile::new(SDBOOT_ON_ESP, live.bootloader),
        FatFile::new(LOADER_CONF, loader_conf(live.spec.bootloader.timeout)),
        FatFile::new(
            format!("{ENTRIES_DIR}/{}-live.conf", live.spec.os.id.0),
            loader_entry(live.spec, live.cmdline),
        ),
        FatFile::new(KERNEL, live.kernel),
        FatFile::new(INITRD, live.initrd),
    ]
}

/// The EFI image: FAT32 just large enough for `files` (whole MiB), serial and label from the
/// spec.
pub fn efi_image(spec: &ImageSpec, files: &[FatFile]) -> Result<Vec<u8>> {
    let data: u64 = files.iter().map(|f| f.data.len() as u64).sum();
    let mut size = (data + data / 32 + 2 * MIB)
        .max(fat::min_size_bytes())
        .next_multiple_of(MIB);
    let uuid = derive_uuid(spec, "live-efi");
    loop {
        let params = FatParams {
            size_bytes: size,
            volume_id: u32::from_le_bytes(uuid.as_bytes()[..4].try_into().expect("4 bytes")),
            label: Some(EFI_PART_LABEL.into()),
        };
        match fat::build(&params, files) {
            Err(FatError::NoSpace { needed, available }) => {
                size = (size + needed - available + MIB).next_multiple_of(MIB);
            }
            other => return other.context("making the live medium's EFI image"),
        }
    }
}

/// The system area (MBR boot code + protective MBR + primary GPT) and the backup GPT of a
/// medium whose EFI image lies at `efi` and that is `size` bytes long. Pure.
fn hybrid_tables(
    spec: &ImageSpec,
    size: u64,
    efi: iso::Extent,
    boot_code: Option<Vec<u8>>,
) -> (Vec<u8>, Vec<u8>) {
    let table = DiskLayout {
        disk_guid: derive_uuid(spec, "live-disk"),
        size,
        partitions: vec![Partition {
            number: 1,
            label: EFI_PART_LABEL.into(),
            type_guid: uuid::Uuid::parse_str(layout::types::ESP).expect("constant GUID"),
            guid: derive_uuid(spec, "live-efi-partition"),
            offset: efi.offset(),
            size: efi.len.next_multiple_of(SECTOR),
        }],
    };
    let rendered = gpt::render(&table);
    let mut system_area = rendered.head;
    if let Some(code) = boot_code {
        system_area[..code.len()].copy_from_slice(&code);
    }
    system_area.resize(iso::SYSTEM_AREA_BYTES, 0);
    (system_area, rendered.tail)
}

/// Bytes of the backup GPT at the end of the medium.
const GPT_TAIL_BYTES: u64 = (gpt::ENTRY_SECTORS + 1) * SECTOR;

/// Write the medium to `path` (a temporary name, then renamed).
pub fn write(live: &Live, path: &Path) -> Result<()> {
    let spec = live.spec;
    let efi = efi_image(spec, &efi_files(live))?;
    let cfg = grub_cfg(spec, live.cmdline);
    // The El Torito image's bytes depend on where it lands only through numbers patched
    // into it: plan with a first copy, then make it for its block.
    let provisional = match live.grub {
        Some(g) => Some(bios::eltorito_image(g, 0).context("legacy BIOS boot of the ISO")?),
        None => None,
    };
    let mut files = vec![FileSpec {
        path: GRUB_CFG.into(),
        len: cfg.len() as u64,
    }];
    let mut boot = Vec::new();
    if let Some(image) = &provisional {
        files.push(FileSpec {
            path: ELTORITO_IMG.into(),
            len: image.len() as u64,
        });
        boot.push(BootEntry {
            path: ELTORITO_IMG.into(),
            platform: Platform::Bios,
            load_sectors: Some(4),
            boot_info_table: true,
        });
    }
    // Last: a UEFI entry too large for El Torito's count reaches to the end of the volume.
    files.push(FileSpec {
        path: EFI_IMG.into(),
        len: efi.len() as u64,
    });
    boot.push(BootEntry {
        path: EFI_IMG.into(),
        platform: Platform::Efi,
        load_sectors: None,
        boot_info_table: false,
    });
    let volume = Volume {
        volume_id: iso_label(spec),
        application: "IMAGE-BUILDER".into(),
        epoch: spec.source_date_epoch,
        files,
        boot,
        catalog: BOOT_CATALOG.into(),
        tail_bytes: GPT_TAIL_BYTES,
    };
    let plan = Layout::plan(&volume).context("laying out the ISO 9660 volume")?;
    let efi_extent = plan.extent(EFI_IMG).expect("planned");
    let (eltorito, boot_code) = match live.grub {
        Some(g) => {
            let block = plan.extent(ELTORITO_IMG).expect("planned").block;
            let image = bios::eltorito_image(g, block).context("legacy BIOS boot of the ISO")?;
            let code = bios::boot_code(g, bios::eltorito_mbr_sector(block))
                .context("legacy BIOS boot of the ISO")?;
            (Some(image), Some(code))
        }
        None => (None, None),
    };
    let (system_area, tail) = hybrid_tables(spec, plan.size(), efi_extent, boot_code);
    let mut data: Vec<&[u8]> = vec![cfg.as_bytes()];
    if let Some(image) = &eltorito {
        data.push(image);
    }
    data.push(&efi);
    let write = || -> std::io::Result<()> {
        let mut f = AtomicFile::create(path)?;
        iso::write(&plan, &system_area, &data, &tail, f.writer())?;
        f.commit()
    };
    write().with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ram_covers_the_initramfs_twice() {
        assert_eq!(ram_mib(10 * MIB, 60 * MIB), 384);
        assert_eq!(ram_mib(0, 0), 192);
        assert_eq!(ram_mib(MIB, 0), 256);
    }
}
