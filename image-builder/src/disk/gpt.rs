//! GUID Partition Table (UEFI spec 2.10 §5.3): protective MBR, primary header and entries at
//! LBA 1-33, backup entries and header at the end of the disk.
//!
//! `render` is pure: it returns the two byte ranges to place on the disk. `parse` reads a
//! table back (for `inspect` and tests). GUIDs are stored mixed-endian.

use uuid::Uuid;

use crate::disk::layout::{DiskLayout, Partition, SECTOR};

pub const ENTRY_COUNT: u32 = 128;
pub const ENTRY_SIZE: u32 = 128;
/// Sectors taken by the entry array (128 × 128 bytes = 16 KiB).
pub const ENTRY_SECTORS: u64 = (ENTRY_COUNT as u64 * ENTRY_SIZE as u64) / SECTOR;
const SIGNATURE: &[u8; 8] = b"EFI PART";
const REVISION: u32 = 0x0001_0000;
const HEADER_SIZE: u32 = 92;

/// Bytes to write at the start and at the end of the disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedGpt {
    /// Protective MBR + primary header + entries; written at offset 0.
    pub head: Vec<u8>,
    /// Backup entries + backup header; written at `tail_offset`.
    pub tail: Vec<u8>,
    pub tail_offset: u64,
}

/// GUID in the on-disk mixed-endian form.
pub fn guid_bytes(u: &Uuid) -> [u8; 16] {
    u.to_bytes_le()
}

pub fn guid_from_bytes(b: &[u8]) -> Uuid {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[..16]);
    Uuid::from_bytes_le(a)
}

fn entry_bytes(p: &Partition) -> [u8; ENTRY_SIZE as usize] {
    let mut e = [0u8; ENTRY_SIZE as usize];
    e[0..16].copy_from_slice(&guid_bytes(&p.type_guid));
    e[16..32].copy_from_slice(&guid_bytes(&p.guid));
    e[32..40].copy_from_slice(&p.first_lba().to_le_bytes());
    e[40..48].copy_from_slice(&p.last_lba().to_le_bytes());
    // attributes (48..56) stay zero: slot state lives in boot entries, not GPT bits.
    for (i, unit) in p.label.encode_utf16().take(36).enumerate() {
        e[56 + 2 * i..58 + 2 * i].copy_from_slice(&unit.to_le_bytes());
    }
    e
}

fn entries(layout: &DiskLayout) -> Vec<u8> {
    let mut v = vec![0u8; (ENTRY_COUNT * ENTRY_SIZE) as usize];
    for p in &layout.partitions {
        let i = (p.number - 1) as usize * ENTRY_SIZE as usize;
        v[i..i + ENTRY_SIZE as usize].copy_from_slice(&entry_bytes(p));
    }
    v
}

fn header(
    layout: &DiskLayout,
    my_lba: u64,
    alt_lba: u64,
    entries_lba: u64,
    entries_crc: u32,
) -> Vec<u8> {
    let last_lba = layout.size / SECTOR - 1;
    let mut h = vec![0u8; SECTOR as usize];
    h[0..8].copy_from_slice(SIGNATURE);
    h[8..12].copy_from_slice(&REVISION.to_le_bytes());
    h[12..16].copy_from_slice(&HEADER_SIZE.to_le_bytes());
    h[24..32].copy_from_slice(&my_lba.to_le_bytes());
    h[32..40].copy_from_slice(&alt_lba.to_le_bytes());
    h[40..48].copy_from_slice(&(2 + ENTRY_SECTORS).to_le_bytes()); // first usable
    h[48..56].copy_from_slice(&(last_lba - ENTRY_SECTORS - 1).to_le_bytes()); // last usable
    h[56..72].copy_from_slice(&guid_bytes(&layout.disk_guid));
    h[72..80].copy_from_slice(&entries_lba.to_le_bytes());
    h[80..84].copy_from_slice(&ENTRY_COUNT.to_le_bytes());
    h[84..88].copy_from_slice(&ENTRY_SIZE.to_le_bytes());
    h[88..92].copy_from_slice(&entries_crc.to_le_bytes());
    let crc = crc32fast::hash(&h[..HEADER_SIZE as usize]);
    h[16..20].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Bytes of boot code the protective MBR has room for (before the disk signature).
pub const MBR_BOOT_CODE: usize = 440;

fn protective_mbr(layout: &DiskLayout) -> Vec<u8> {
    let mut m = vec![0u8; SECTOR as usize];
    let sectors = (layout.size / SECTOR - 1).min(u32::MAX as u64) as u32;
    let e = &mut m[446..462];
    e[1..4].copy_from_slice(&[0x00, 0x02, 0x00]); // CHS of LBA 1
    e[4] = 0xEE;
    e[5..8].copy_from_slice(&[0xFF, 0xFF, 0xFF]);
    e[8..12].copy_from_slice(&1u32.to_le_bytes());
    e[12..16].copy_from_slice(&sectors.to_le_bytes());
    m[510] = 0x55;
    m[511] = 0xAA;
    m
}

/// Render the protective MBR and both GPT copies for `layout`. Pure.
pub fn render(layout: &DiskLayout) -> RenderedGpt {
    let last_lba = layout.size / SECTOR - 1;
    let ents = entries(layout);
    let crc = crc32fast::hash(&ents);
    let backup_entries_lba = last_lba - ENTRY_SECTORS;
    let mut head = protective_mbr(layout);
    head.extend(header(layout, 1, last_lba, 2, crc));
    head.extend(&ents);
    let mut tail = ents;
    tail.extend(header(layout, last_lba, 1, backup_entries_lba, crc));
    RenderedGpt {
        head,
        tail,
        tail_offset: backup_entries_lba * SECTOR,
    }
}

/// A partition as read back from a disk.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReadPartition {
    pub number: u32,
    pub label: String,
    pub type_guid: Uuid,
    pub guid: Uuid,
    pub first_lba: u64,
    pub last_lba: u64,
    pub attributes: u64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GptError {
    #[error("no GPT header (signature missing at LBA 1)")]
    NoHeader,
    #[error("GPT header CRC mismatch")]
    HeaderCrc,
    #[error("GPT entry array CRC mismatch")]
    EntriesCrc,
    #[error("GPT header is malformed: {0}")]
    Malformed(&'static str),
}

/// Parse the primary GPT from the first `34 * 512` bytes of a disk.
pub fn parse(head: &[u8]) -> Result<(Uuid, Vec<ReadPartition>), GptError> {
    let h = head.get(512..1024).ok_or(GptError::NoHeader)?;
    if &h[0..8] != SIGNATURE {
        return Err(GptError::NoHeader);
    }
    let size = u32::from_le_bytes(h[12..16].try_into().unwrap()) as usize;
    if !(92..=512).contains(&size) {
        return Err(GptError::Malformed("header size"));
    }
    let mut copy = h[..size].to_vec();
    copy[16..20].fill(0);
    if crc32fast::hash(&copy) != u32::from_le_bytes(h[16..20].try_into().unwrap()) {
        return Err(GptError::HeaderCrc);
    }
    let lba = u64::from_le_bytes(h[72..80].try_into().unwrap());
    let count = u32::from_le_bytes(h[80..84].try_into().unwrap()) as usize;
    let esize = u32::from_le_bytes(h[84..88].try_into().unwrap()) as usize;
    if esize < 128 || count > 1024 || lba != 2 {
        return Err(GptError::Malformed("entry array geometry"));
    }
    let start = 512 * lba as usize;
    let arr = head
        .get(start..start + count * esize)
        .ok_or(GptError::Malformed("entry array truncated"))?;
    if crc32fast::hash(arr) != u32::from_le_bytes(h[88..92].try_into().unwrap()) {
        return Err(GptError::EntriesCrc);
    }
    let parts = arr
        .chunks(esize)
        .enumerate()
        .filter(|(_, e)| e[0..16].iter().any(|&b| b != 0))
        .map(|(i, e)| {
            let name: Vec<u16> = e[56..128]
                .chunks(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .take_while(|&u| u != 0)
                .collect();
            ReadPartition {
                number: i as u32 + 1,
                label: String::from_utf16_lossy(&name),
                type_guid: guid_from_bytes(&e[0..16]),
                guid: guid_from_bytes(&e[16..32]),
                first_lba: u64::from_le_bytes(e[32..40].try_into().unwrap()),
                last_lba: u64::from_le_bytes(e[40..48].try_into().unwrap()),
                attributes: u64::from_le_bytes(e[48..56].try_into().unwrap()),
            }
        })
        .collect();
    Ok((guid_from_bytes(&h[56..72]), parts))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::layout::{types, MIB};

    fn layout() -> DiskLayout {
        let p = |number, label: &str, ty: &str, offset, size| Partition {
            number,
            label: label.into(),
            type_guid: Uuid::parse_str(ty).unwrap(),
            guid: Uuid::new_v5(&Uuid::NAMESPACE_DNS, label.as_bytes()),
            offset,
            size,
        };
        DiskLayout {
            disk_guid: Uuid::new_v5(&Uuid::NAMESPACE_DNS, b"disk"),
            size: 10 * MIB,
            partitions: vec![
                p(1, "EFI-SYSTEM", types::ESP, MIB, 4 * MIB),
                p(3, "USR-A", types::COREOS_USR, 5 * MIB, 2 * MIB),
                p(9, "ROOT", types::COREOS_ROOT, 7 * MIB, 2 * MIB),
            ],
        }
    }

    #[test]
    fn round_trip() {
        let l = layout();
        let r = render(&l);
        assert_eq!(r.head.len(), 34 * 512);
        assert_eq!(r.tail.len(), 33 * 512);
        assert_eq!(r.tail_offset + r.tail.len() as u64, l.size);
        let (disk, parts) = parse(&r.head).unwrap();
        assert_eq!(disk, l.disk_guid);
        let got: Vec<(u32, &str, u64)> = parts
            .iter()
            .map(|p| (p.number, p.label.as_str(), p.first_lba))
            .collect();
        assert_eq!(
            got,
            [
                (1, "EFI-SYSTEM", 2048),
                (3, "USR-A", 10240),
                (9, "ROOT", 14336)
            ]
        );
        assert_eq!(parts[1].guid, l.partitions[1].guid);
        assert_eq!(parts[1].last_lba, 14335);
    }

    #[test]
    fn guid_is_mixed_endian() {
        let u = Uuid::parse_str("c12a7328-f81f-11d2-ba4b-00a0c93ec93b").unwrap();
        assert_eq!(
            hex::encode(guid_bytes(&u)),
            "28732ac11ff8d211ba4b00a0c93ec93b"
        );
    }

    #[test]
    fn corruption_is_detected() {
        let r = render(&layout());
        let mut bad = r.head.clone();
        bad[512 + 40] ^= 1;
        assert_eq!(parse(&bad), Err(GptError::HeaderCrc));
        let mut bad = r.head.clone();
        bad[1024 + 60] ^= 1;
        assert_eq!(parse(&bad), Err(GptError::EntriesCrc));
        assert_eq!(parse(&r.head[..100]), Err(GptError::NoHeader));
        assert!(parse(&r.head[..2000]).is_err());
    }

    #[test]
    fn sgdisk_accepts_the_table() {
        let l = layout();
        let r = render(&l);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disk.raw");
        let mut disk = vec![0u8; l.size as usize];
        disk[..r.head.len()].copy_from_slice(&r.head);
        disk[r.tail_offset as usize..].copy_from_slice(&r.tail);
        std::fs::write(&path, &disk).unwrap();
        let out = std::process::Command::new("sgdisk")
            .arg("-v")
            .arg(&path)
            .output()
            .expect("sgdisk (gdisk) is installed by scripts/setup-host.sh");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{text}");
        assert!(text.contains("No problems found"), "{text}");
    }
}
