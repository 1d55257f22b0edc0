//! Legacy BIOS boot: GRUB for i386-pc from the pinned `grub-pc-bin` package, put on the disk
//! the way `grub-mkimage` and `grub-bios-setup` would (no `grub-install`, no loop device, no
//! root), all pure and reproducible:
//!
//! - [`core_image`]: `kernel.img`'s sections flattened at GRUB's link address, the modules it
//!   needs (dependencies first, from `moddep.lst`) and the prefix after it (`mimg` module
//!   info), LZMA-compressed behind `lzma_decompress.img`, with `diskboot.img` in front whose
//!   block list loads the rest from the BIOS-BOOT partition;
//! - [`boot_code`]: `boot.img` as the protective MBR's boot code, pointed at that partition.
//!
//! The BIOS loads the MBR, which loads `diskboot.img`, which loads the rest of `core.img`;
//! GRUB then reads `grub/grub.cfg` on the ESP (partition 1 of the disk it booted from).

use std::collections::BTreeMap;

use thiserror::Error;

/// GRUB's files for i386-pc (`/usr/lib/grub/i386-pc` of `grub-pc-bin`), by file name.
#[derive(Debug, Clone, Default)]
pub struct GrubPc {
    pub files: BTreeMap<String, Vec<u8>>,
}

/// Where the files live in `grub-pc-bin`.
pub const GRUB_PC_DIR: &str = "usr/lib/grub/i386-pc";

/// The modules `core.img` carries: the disk, the partition table and filesystem of the ESP,
/// the script language and commands `grub.cfg` uses, the serial console, the Linux loader.
pub const MODULES: [&str; 14] = [
    "biosdisk",
    "part_gpt",
    "fat",
    "normal",
    "configfile",
    "test",
    "regexp",
    "loadenv",
    "echo",
    "sleep",
    "reboot",
    "serial",
    "terminal",
    "linux",
];

/// GRUB's prefix: `grub/` on partition 1 (the ESP) of the disk the BIOS booted.
pub const PREFIX: &str = "(,gpt1)/grub";

/// The modules of a live medium's core image: ISO 9660 on the CD or the USB stick it boots
/// from, the FAT image inside it (through `loopback`) that holds the kernel and initramfs it
/// shares with UEFI, and what `grub.cfg` uses.
pub const ISO_MODULES: [&str; 14] = [
    "biosdisk",
    "iso9660",
    "loopback",
    "fat",
    "normal",
    "configfile",
    "test",
    "echo",
    "sleep",
    "reboot",
    "serial",
    "terminal",
    "linux",
    "search",
];

/// A live medium's prefix: `/boot/grub` on the device the BIOS booted (the CD, or the whole
/// USB stick, where ISO 9660 starts at the first sector too).
pub const ISO_PREFIX: &str = "()/boot/grub";

const SECTOR: usize = 512;
/// `GRUB_KERNEL_I386_PC_LINK_ADDR`: where `kernel.img` runs.
const LINK_ADDR: u32 = 0x9000;
/// `GRUB_MODULE_MAGIC`: "mimg".
const MODULE_MAGIC: u32 = 0x676d_696d;
const OBJ_TYPE_ELF: u32 = 0;
const OBJ_TYPE_PREFIX: u32 = 3;
/// Offsets in `lzma_decompress.img` (`GRUB_DECOMPRESSOR_I386_PC_*`).
const COMPRESSED_SIZE_AT: usize = 0x08;
const UNCOMPRESSED_SIZE_AT: usize = 0x0c;
const NO_REED_SOLOMON_LENGTH_AT: usize = 0x14;
/// In `boot.img` (`GRUB_BOOT_MACHINE_*`).
const BPB_START: usize = 0x3;
const BPB_END: usize = 0x5a;
const KERNEL_SECTOR_AT: usize = 0x5c;
const BOOT_DRIVE_AT: usize = 0x64;
const DRIVE_CHECK_AT: usize = 0x66;
/// Boot code ends where the disk signature and the partition table begin.
pub const BOOT_CODE_LEN: usize = 0x1b8;
/// `diskboot.img`'s first block list entry, at the end of its sector: start (u64), length
/// (u16), segment (u16).
const BLOCKLIST_AT: usize = SECTOR - 12;
/// Segment the first block list entry loads to (`GRUB_BOOT_I386_PC_KERNEL_SEG + 0x20`).
const BLOCKLIST_SEGMENT: u16 = 0x820;
/// Above this `core.img` does not fit below the BIOS's data (`grub-mkimage`'s check).
const CORE_LIMIT: usize = 0x78000 - LINK_ADDR as usize;
const KERNEL_LIMIT: usize = 0x68000 - LINK_ADDR as usize;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum BiosError {
    #[error("grub-pc-bin lacks {0} (want /{GRUB_PC_DIR}/{0})")]
    Missing(String),
    #[error("{file}: {what}")]
    Malformed { file: &'static str, what: String },
    #[error("GRUB module {0} is not in moddep.lst")]
    UnknownModule(String),
    #[error(
        "GRUB's core image is {size} bytes ({sectors} sectors) but the BIOS-BOOT partition holds \
         {capacity} bytes: raise partitions.bios_boot_kib"
    )]
    PartitionTooSmall {
        size: usize,
        sectors: usize,
        capacity: u64,
    },
    #[error("GRUB's core image is too big ({0} bytes)")]
    TooBig(usize),
    #[error("compressing GRUB's core image: {0}")]
    Lzma(String),
}

impl GrubPc {
    fn file(&self, name: &str) -> Result<&[u8], BiosError> {
        self.files
            .get(name)
            .map(Vec::as_slice)
            .ok_or_else(|| BiosError::Missing(name.to_string()))
    }
}

/// `core.img` for a disk whose BIOS-BOOT partition starts at `first_lba`, holding
/// `capacity` bytes. Pure.
pub fn core_image(grub: &GrubPc, first_lba: u64, capacity: u64) -> Result<Vec<u8>, BiosError> {
    core_with(grub, &MODULES, PREFIX, first_lba, capacity)
}

/// The El Torito boot image of a live medium whose copy of it starts at 2 KiB block `block`
/// (what `grub-mkimage -O i386-pc-eltorito` and `xorriso --grub2-boot-info` make):
/// `cdboot.img`, which a BIOS booting the CD runs and which loads the rest and jumps past
/// `diskboot.img`; and the core image, whose `diskboot.img` is what the MBR of the same
/// medium booted as a USB disk loads (512-byte sector `block * 4 + 4`, see
/// [`eltorito_mbr_sector`]), its block list pointing at the sectors after it. Pure.
pub fn eltorito_image(grub: &GrubPc, block: u64) -> Result<Vec<u8>, BiosError> {
    let cdboot = grub.file("cdboot.img")?;
    if cdboot.len() != 2048 {
        return Err(BiosError::Malformed {
            file: "cdboot.img",
            what: format!("{} bytes, want 2048", cdboot.len()),
        });
    }
    let core = core_with(
        grub,
        &ISO_MODULES,
        ISO_PREFIX,
        eltorito_mbr_sector(block),
        u64::MAX,
    )?;
    let mut image = cdboot.to_vec();
    image.extend(core);
    Ok(image)
}

/// The 512-byte sector of the El Torito image's `diskboot.img`, which the MBR's `boot.img`
/// loads when the medium boots as a disk: 2 KiB `block` of the image, past `cdboot.img`.
pub fn eltorito_mbr_sector(block: u64) -> u64 {
    block * 4 + 4
}

fn core_with(
    grub: &GrubPc,
    modules: &[&str],
    prefix: &str,
    first_lba: u64,
    capacity: u64,
) -> Result<Vec<u8>, BiosError> {
    let (mut image, kernel_size) = flatten_kernel(grub.file("kernel.img")?)?;
    image.truncate(kernel_size);
    let modules = resolve_modules(grub, modules)?;
    // The module area: info header, then each object behind its (type, size) header.
    let mut area = Vec::new();
    for name in &modules {
        let m = grub.file(&format!("{name}.mod"))?;
        push_object(&mut area, OBJ_TYPE_ELF, m);
    }
    let mut prefix = prefix.as_bytes().to_vec();
    prefix.push(0);
    push_object(&mut area, OBJ_TYPE_PREFIX, &prefix);
    let total = (12 + area.len()) as u32;
    image.extend(MODULE_MAGIC.to_le_bytes());
    image.extend(12u32.to_le_bytes());
    image.extend(total.to_le_bytes());
    image.extend(area);

    let compressed = lzma(&image)?;
    let mut decompressor = grub.file("lzma_decompress.img")?.to_vec();
    if decompressor.len() < 0x20 || decompressor.len() > LINK_ADDR as usize - 0x8200 {
        return Err(BiosError::Malformed {
            file: "lzma_decompress.img",
            what: format!("{} bytes", decompressor.len()),
        });
    }
    let no_rs = u16::from_le_bytes([
        decompressor[NO_REED_SOLOMON_LENGTH_AT],
        decompressor[NO_REED_SOLOMON_LENGTH_AT + 1],
    ]);
    if no_rs == 0xffff {
        return Err(BiosError::Malformed {
            file: "lzma_decompress.img",
            what: "version mismatch (no Reed-Solomon length)".into(),
        });
    }
    put32(
        &mut decompressor,
        COMPRESSED_SIZE_AT,
        compressed.len() as u32,
    );
    put32(&mut decompressor, UNCOMPRESSED_SIZE_AT, image.len() as u32);
    let mut core = decompressor;
    core.extend(compressed);
    if core.len() > CORE_LIMIT || kernel_size > KERNEL_LIMIT {
        return Err(BiosError::TooBig(core.len()));
    }

    let mut diskboot = grub.file("diskboot.img")?.to_vec();
    if diskboot.len() != SECTOR {
        return Err(BiosError::Malformed {
            file: "diskboot.img",
            what: format!("{} bytes, want {SECTOR}", diskboot.len()),
        });
    }
    let rest = core.len().div_ceil(SECTOR);
    let segment = u16::from_le_bytes([diskboot[BLOCKLIST_AT + 10], diskboot[BLOCKLIST_AT + 11]]);
    if segment != BLOCKLIST_SEGMENT {
        return Err(BiosError::Malformed {
            file: "diskboot.img",
            what: format!("block list segment {segment:#x}, want {BLOCKLIST_SEGMENT:#x}"),
        });
    }
    diskboot[BLOCKLIST_AT..BLOCKLIST_AT + 8].copy_from_slice(&(first_lba + 1).to_le_bytes());
    diskboot[BLOCKLIST_AT + 8..BLOCKLIST_AT + 10].copy_from_slice(&(rest as u16).to_le_bytes());
    let mut out = diskboot;
    out.extend(core);
    out.resize((1 + rest) * SECTOR, 0);
    if out.len() as u64 > capacity {
        return Err(BiosError::PartitionTooSmall {
            size: out.len(),
            sectors: out.len() / SECTOR,
            capacity,
        });
    }
    Ok(out)
}

/// The MBR's boot code (its first [`BOOT_CODE_LEN`] bytes): `boot.img` loading the core image
/// from `core_lba`, with an empty BIOS parameter block and the boot drive check off (a buggy
/// BIOS may pass a wrong drive number), as `grub-bios-setup` writes it for a hard disk. Pure.
pub fn boot_code(grub: &GrubPc, core_lba: u64) -> Result<Vec<u8>, BiosError> {
    let boot = grub.file("boot.img")?;
    if boot.len() != SECTOR || boot[510..] != [0x55, 0xaa] {
        return Err(BiosError::Malformed {
            file: "boot.img",
            what: "not a 512-byte boot sector".into(),
        });
    }
    let mut code = boot[..BOOT_CODE_LEN].to_vec();
    code[BPB_START..BPB_END].fill(0);
    code[KERNEL_SECTOR_AT..KERNEL_SECTOR_AT + 8].copy_from_slice(&core_lba.to_le_bytes());
    code[BOOT_DRIVE_AT] = 0xff;
    code[DRIVE_CHECK_AT..DRIVE_CHECK_AT + 2].copy_from_slice(&[0x90, 0x90]);
    Ok(code)
}

fn push_object(area: &mut Vec<u8>, kind: u32, data: &[u8]) {
    let padded = data.len().next_multiple_of(4);
    area.extend(kind.to_le_bytes());
    area.extend(((padded + 8) as u32).to_le_bytes());
    area.extend(data);
    area.resize(area.len() + padded - data.len(), 0);
}

fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

/// `names` and what they depend on (`moddep.lst`), each after its dependencies, each once.
fn resolve_modules(grub: &GrubPc, names: &[&str]) -> Result<Vec<String>, BiosError> {
    let text = String::from_utf8_lossy(grub.file("moddep.lst")?).into_owned();
    let deps: BTreeMap<&str, Vec<&str>> = text
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(m, d)| (m.trim(), d.split_whitespace().collect()))
        .collect();
    fn add(
        name: &str,
        deps: &BTreeMap<&str, Vec<&str>>,
        out: &mut Vec<String>,
        visiting: &mut Vec<String>,
    ) -> Result<(), BiosError> {
        if out.iter().any(|m| m == name) || visiting.iter().any(|m| m == name) {
            return Ok(());
        }
        let Some(ds) = deps.get(name) else {
            return Err(BiosError::UnknownModule(name.to_string()));
        };
        visiting.push(name.to_string());
        // grub-mkimage visits them last listed first: same order, same bytes.
        for d in ds.iter().rev() {
            add(d, deps, out, visiting)?;
        }
        visiting.pop();
        out.push(name.to_string());
        Ok(())
    }
    let mut out = Vec::new();
    for n in names {
        add(n, &deps, &mut out, &mut Vec::new())?;
    }
    Ok(out)
}

/// `kernel.img` (an ELF executable linked at [`LINK_ADDR`]) as the memory image GRUB's boot
/// code jumps into: every allocated PROGBITS section at its address minus the link address.
/// Returns the image and its size (bss excluded), like `grub-mkimage`'s loader.
fn flatten_kernel(elf: &[u8]) -> Result<(Vec<u8>, usize), BiosError> {
    let bad = |what: &str| BiosError::Malformed {
        file: "kernel.img",
        what: what.to_string(),
    };
    let u16_at = |o: usize| -> Result<u16, BiosError> {
        elf.get(o..o + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
            .ok_or_else(|| bad("truncated"))
    };
    let u32_at = |o: usize| -> Result<u32, BiosError> {
        elf.get(o..o + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or_else(|| bad("truncated"))
    };
    if elf.len() < 52 || &elf[..4] != b"\x7fELF" || elf[4] != 1 || elf[5] != 1 {
        return Err(bad("not a 32-bit little-endian ELF file"));
    }
    let shoff = u32_at(0x20)? as usize;
    let shentsize = u16_at(0x2e)? as usize;
    let shnum = u16_at(0x30)? as usize;
    if shentsize < 40 {
        return Err(bad("section headers too small"));
    }
    const SHT_PROGBITS: u32 = 1;
    const SHF_ALLOC: u32 = 2;
    const SHF_EXECINSTR: u32 = 4;
    struct Section {
        addr: u32,
        offset: usize,
        size: usize,
    }
    let mut text = Vec::new();
    let mut data = Vec::new();
    for i in 0..shnum {
        let h = shoff + i * shentsize;
        let (kind, flags) = (u32_at(h + 4)?, u32_at(h + 8)?);
        if kind != SHT_PROGBITS || flags & SHF_ALLOC == 0 {
            continue;
        }
        let s = Section {
            addr: u32_at(h + 12)?,
            offset: u32_at(h + 16)? as usize,
            size: u32_at(h + 20)? as usize,
        };
        if s.addr < LINK_ADDR {
            return Err(bad("a section below the link address"));
        }
        if flags & SHF_EXECINSTR != 0 {
            text.push(s);
        } else {
            data.push(s);
        }
    }
    match text.first() {
        Some(t) if t.addr == LINK_ADDR => {}
        _ => return Err(bad("its code does not start at the link address 0x9000")),
    }
    // grub-mkimage's size: where the last section (code, then data, in file order) ends.
    let size = text
        .iter()
        .chain(&data)
        .last()
        .map(|s| (s.addr - LINK_ADDR) as usize + s.size)
        .unwrap_or(0);
    let mut image = vec![0u8; size];
    for s in text.iter().chain(&data) {
        let at = (s.addr - LINK_ADDR) as usize;
        let src = elf
            .get(s.offset..s.offset + s.size)
            .ok_or_else(|| bad("a section beyond the end of the file"))?;
        image
            .get_mut(at..at + s.size)
            .ok_or_else(|| bad("sections out of order"))?
            .copy_from_slice(src);
    }
    Ok((image, size))
}

/// The raw LZMA1 filter of GRUB's i386-pc decompressor: lc=3 lp=0 pb=2, a 64 KiB dictionary.
fn lzma_filters() -> Result<liblzma::stream::Filters, liblzma::stream::Error> {
    let mut opts = liblzma::stream::LzmaOptions::new_preset(9)?;
    opts.dict_size(1 << 16)
        .literal_context_bits(3)
        .literal_position_bits(0)
        .position_bits(2);
    let mut filters = liblzma::stream::Filters::new();
    filters.lzma1(&opts);
    Ok(filters)
}

/// Raw LZMA (no header), [`lzma_filters`]: what GRUB's i386-pc decompressor
/// decodes (it knows the sizes; the end marker liblzma adds is never read).
fn lzma(data: &[u8]) -> Result<Vec<u8>, BiosError> {
    use liblzma::stream::{Action, Status, Stream};
    let err = |e: liblzma::stream::Error| BiosError::Lzma(e.to_string());
    let mut stream = Stream::new_raw_encoder(&lzma_filters().map_err(err)?).map_err(err)?;
    let mut out = Vec::with_capacity(data.len() + 1024);
    let mut input = data;
    loop {
        if out.capacity() == out.len() {
            out.reserve(64 * 1024);
        }
        let before = stream.total_in();
        let status = stream
            .process_vec(input, &mut out, Action::Finish)
            .map_err(err)?;
        input = &input[(stream.total_in() - before) as usize..];
        if status == Status::StreamEnd {
            return Ok(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grub() -> GrubPc {
        let mut files = BTreeMap::new();
        files.insert(
            "moddep.lst".to_string(),
            b"normal: extcmd crypto\nextcmd:\ncrypto:\nfat: fshelp\nfshelp:\n".to_vec(),
        );
        let mut boot = vec![0xabu8; 512];
        boot[510] = 0x55;
        boot[511] = 0xaa;
        files.insert("boot.img".to_string(), boot);
        GrubPc { files }
    }

    #[test]
    fn modules_come_after_their_dependencies_once() {
        let got = resolve_modules(&grub(), &["normal", "fat", "extcmd"]).unwrap();
        assert_eq!(got, ["crypto", "extcmd", "normal", "fshelp", "fat"]);
        assert_eq!(
            resolve_modules(&grub(), &["nope"]),
            Err(BiosError::UnknownModule("nope".into()))
        );
    }

    #[test]
    fn boot_code_points_at_the_core_image() {
        let code = boot_code(&grub(), 0x1234_5678).unwrap();
        assert_eq!(code.len(), BOOT_CODE_LEN);
        assert_eq!(&code[..3], &[0xab; 3]);
        assert!(code[BPB_START..BPB_END].iter().all(|&b| b == 0));
        assert_eq!(&code[0x5c..0x64], &0x1234_5678u64.to_le_bytes());
        assert_eq!(code[0x64], 0xff);
        assert_eq!(&code[0x66..0x68], &[0x90, 0x90]);
        let mut g = grub();
        g.files.remove("boot.img");
        assert_eq!(boot_code(&g, 1), Err(BiosError::Missing("boot.img".into())));
    }

    #[test]
    fn lzma_is_raw_lzma1_that_decodes() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let packed = lzma(&data).unwrap();
        assert!(packed.len() < data.len() / 10);
        // Decode it raw with the same properties.
        use liblzma::stream::{Action, Stream};
        let mut dec = Stream::new_raw_decoder(&lzma_filters().unwrap()).unwrap();
        let mut out = Vec::with_capacity(data.len() + 16);
        dec.process_vec(&packed, &mut out, Action::Finish).unwrap();
        assert_eq!(out, data);
    }
}
