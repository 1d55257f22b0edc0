//! Just enough GPT reading to learn partition GUIDs (UEFI spec 2.10, section 5.3): `/init` and
//! the update engine resolve `PARTUUID=` with it, `first-boot` checks headers and CRCs with it.
//!
//! The 6.1 kernel's partition uevent carries `PARTN` and `PARTNAME` but not `PARTUUID` (that
//! patch never went upstream), so `usr=PARTUUID=` is resolved by reading the disk's own table:
//! the kernel numbers GPT partitions by entry index + 1, which joins them to `PARTN`.

use std::fmt;
use std::io::{self, Read, Seek, SeekFrom};

/// "EFI PART"
pub const SIGNATURE: &[u8; 8] = b"EFI PART";
const MIN_HEADER_SIZE: usize = 92;
const MIN_ENTRY_SIZE: u32 = 128;
/// Refuse absurd entry arrays instead of allocating them (the usual array is 16 KiB).
const MAX_ENTRIES_BYTES: u64 = 1 << 20; // 1 MiB

/// The fields of a GPT header that locate and check the entry array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GptHeader {
    pub disk_guid: String,
    pub entries_lba: u64,
    pub num_entries: u32,
    pub entry_size: u32,
    pub entries_crc32: u32,
}

impl GptHeader {
    /// Size in bytes of the entry array.
    pub fn entries_len(&self) -> u64 {
        u64::from(self.num_entries) * u64::from(self.entry_size)
    }
}

/// One used entry of the partition array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GptPartition {
    /// Kernel partition number (`PARTN`): entry index + 1.
    pub number: u32,
    /// Lower-case canonical form.
    pub type_guid: String,
    /// The PARTUUID, lower-case canonical form.
    pub unique_guid: String,
    /// The PARTLABEL/PARTNAME.
    pub name: String,
}

/// Why a table could not be read.
#[derive(Debug)]
pub enum GptError {
    NoSignature,
    BadHeader(&'static str),
    HeaderCrc,
    EntriesCrc,
    Io(io::Error),
}

impl fmt::Display for GptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GptError::NoSignature => f.write_str("no GPT signature"),
            GptError::BadHeader(why) => write!(f, "bad GPT header: {why}"),
            GptError::HeaderCrc => f.write_str("GPT header CRC mismatch"),
            GptError::EntriesCrc => f.write_str("GPT partition array CRC mismatch"),
            GptError::Io(e) => write!(f, "reading GPT: {e}"),
        }
    }
}

impl std::error::Error for GptError {}

impl From<io::Error> for GptError {
    fn from(e: io::Error) -> Self {
        GptError::Io(e)
    }
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

fn le_u64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// Formats 16 on-disk GUID bytes (first three fields little-endian) as `xxxxxxxx-xxxx-...`.
pub fn guid_to_string(b: &[u8; 16]) -> String {
    let mut s = String::with_capacity(36);
    let order = [3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15];
    for (i, &at) in order.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        s.push_str(&format!("{:02x}", b[at]));
    }
    s
}

fn guid_at(b: &[u8], at: usize) -> [u8; 16] {
    let mut g = [0u8; 16];
    g.copy_from_slice(&b[at..at + 16]);
    g
}

/// CRC-32 (IEEE 802.3, reflected, as GPT uses).
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Parses and checks the header sector (LBA 1, or the backup at the last LBA).
pub fn parse_header(sector: &[u8]) -> Result<GptHeader, GptError> {
    if sector.len() < MIN_HEADER_SIZE || &sector[..8] != SIGNATURE {
        return Err(GptError::NoSignature);
    }
    let size = le_u32(sector, 12) as usize;
    if size < MIN_HEADER_SIZE || size > sector.len() {
        return Err(GptError::BadHeader("header size"));
    }
    let mut copy = sector[..size].to_vec();
    copy[16..20].fill(0);
    if crc32(&copy) != le_u32(sector, 16) {
        return Err(GptError::HeaderCrc);
    }
    let header = GptHeader {
        disk_guid: guid_to_string(&guid_at(sector, 56)),
        entries_lba: le_u64(sector, 72),
        num_entries: le_u32(sector, 80),
        entry_size: le_u32(sector, 84),
        entries_crc32: le_u32(sector, 88),
    };
    if header.entry_size < MIN_ENTRY_SIZE || !header.entry_size.is_multiple_of(MIN_ENTRY_SIZE) {
        return Err(GptError::BadHeader("entry size"));
    }
    if header.entries_len() > MAX_ENTRIES_BYTES {
        return Err(GptError::BadHeader("partition array too large"));
    }
    Ok(header)
}

/// Parses the entry array of `header`, skipping unused entries (type GUID all zero).
pub fn parse_entries(header: &GptHeader, bytes: &[u8]) -> Result<Vec<GptPartition>, GptError> {
    let len = header.entries_len() as usize;
    if bytes.len() < len {
        return Err(GptError::BadHeader("partition array truncated"));
    }
    if crc32(&bytes[..len]) != header.entries_crc32 {
        return Err(GptError::EntriesCrc);
    }
    let size = header.entry_size as usize;
    let mut parts = Vec::new();
    for (i, e) in bytes[..len].chunks_exact(size).enumerate() {
        let type_guid = guid_at(e, 0);
        if type_guid == [0; 16] {
            continue;
        }
        let units: Vec<u16> = e[56..128]
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .take_while(|&u| u != 0)
            .collect();
        parts.push(GptPartition {
            number: i as u32 + 1,
            type_guid: guid_to_string(&type_guid),
            unique_guid: guid_to_string(&guid_at(e, 16)),
            name: String::from_utf16_lossy(&units),
        });
    }
    Ok(parts)
}

fn read_at(disk: &mut (impl Read + Seek), offset: u64, len: u64) -> io::Result<Vec<u8>> {
    disk.seek(SeekFrom::Start(offset))?;
    let mut buf = Vec::new();
    disk.take(len).read_to_end(&mut buf)?;
    Ok(buf)
}

fn read_table(
    disk: &mut (impl Read + Seek),
    header_lba: u64,
    sector_size: u64,
) -> Result<Vec<GptPartition>, GptError> {
    let sector = read_at(disk, header_lba * sector_size, sector_size)?;
    let header = parse_header(&sector)?;
    let entries = read_at(
        disk,
        header.entries_lba.saturating_mul(sector_size),
        header.entries_len(),
    )?;
    parse_entries(&header, &entries)
}

/// Reads the partition table of a whole disk: the primary header, else the backup one in the
/// last sector (as the kernel does).
pub fn read(
    disk: &mut (impl Read + Seek),
    sector_size: u64,
) -> Result<Vec<GptPartition>, GptError> {
    match read_table(disk, 1, sector_size) {
        Ok(parts) => Ok(parts),
        Err(primary) => {
            let sectors = disk.seek(SeekFrom::End(0))? / sector_size;
            if sectors < 2 {
                return Err(primary);
            }
            read_table(disk, sectors - 1, sector_size).map_err(|_| primary)
        }
    }
}

/// Test fixtures shared with `blockdev`'s tests.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::{crc32, SIGNATURE};

    pub(crate) fn guid_bytes(seed: u8) -> [u8; 16] {
        std::array::from_fn(|i| seed.wrapping_add(i as u8))
    }

    /// A disk of `sectors` 512-byte sectors with primary and backup tables holding `parts`
    /// (index, type, unique, name), 128 entries of 128 bytes.
    pub(crate) fn disk(sectors: u64, parts: &[(usize, [u8; 16], [u8; 16], &str)]) -> Vec<u8> {
        let mut img = vec![0u8; sectors as usize * 512];
        let mut entries = vec![0u8; 128 * 128];
        for (index, ty, uniq, name) in parts {
            let e = &mut entries[index * 128..(index + 1) * 128];
            e[0..16].copy_from_slice(ty);
            e[16..32].copy_from_slice(uniq);
            for (i, u) in name.encode_utf16().enumerate() {
                e[56 + 2 * i..58 + 2 * i].copy_from_slice(&u.to_le_bytes());
            }
        }
        let header = |entries_lba: u64| {
            let mut h = vec![0u8; 512];
            h[..8].copy_from_slice(SIGNATURE);
            h[8..12].copy_from_slice(&0x0001_0000u32.to_le_bytes());
            h[12..16].copy_from_slice(&92u32.to_le_bytes());
            h[56..72].copy_from_slice(&guid_bytes(0x40));
            h[72..80].copy_from_slice(&entries_lba.to_le_bytes());
            h[80..84].copy_from_slice(&128u32.to_le_bytes());
            h[84..88].copy_from_slice(&128u32.to_le_bytes());
            h[88..92].copy_from_slice(&crc32(&entries).to_le_bytes());
            let crc = crc32(&h[..92]);
            h[16..20].copy_from_slice(&crc.to_le_bytes());
            h
        };
        img[512..1024].copy_from_slice(&header(2));
        img[1024..1024 + entries.len()].copy_from_slice(&entries);
        let last = sectors as usize - 1;
        let backup_entries = last - 32;
        img[backup_entries * 512..last * 512].copy_from_slice(&entries);
        img[last * 512..].copy_from_slice(&header(backup_entries as u64));
        img
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::{disk, guid_bytes};
    use super::*;
    use std::io::Cursor;

    /// USR-A's type GUID from DESIGN.md, and its on-disk (mixed-endian) bytes.
    const USR_TYPE: &str = "5dfbf5f4-2848-4bac-aa5e-0d9a20b745a6";
    const USR_TYPE_BYTES: [u8; 16] = [
        0xf4, 0xf5, 0xfb, 0x5d, 0x48, 0x28, 0xac, 0x4b, 0xaa, 0x5e, 0x0d, 0x9a, 0x20, 0xb7, 0x45,
        0xa6,
    ];

    #[test]
    fn crc32_check_value() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
    }

    #[test]
    fn mixed_endian_guid() {
        assert_eq!(guid_to_string(&USR_TYPE_BYTES), USR_TYPE);
    }

    #[test]
    fn reads_used_entries_with_kernel_numbers() {
        let img = disk(
            128,
            &[
                (2, USR_TYPE_BYTES, guid_bytes(1), "USR-A"),
                (8, guid_bytes(9), guid_bytes(0xa0), "ROOT"),
            ],
        );
        let parts = read(&mut Cursor::new(img), 512).unwrap();
        assert_eq!(
            parts,
            vec![
                GptPartition {
                    number: 3,
                    type_guid: USR_TYPE.into(),
                    unique_guid: "04030201-0605-0807-090a-0b0c0d0e0f10".into(),
                    name: "USR-A".into(),
                },
                GptPartition {
                    number: 9,
                    type_guid: "0c0b0a09-0e0d-100f-1112-131415161718".into(),
                    unique_guid: "a3a2a1a0-a5a4-a7a6-a8a9-aaabacadaeaf".into(),
                    name: "ROOT".into(),
                },
            ]
        );
    }

    #[test]
    fn falls_back_to_backup_header() {
        let mut img = disk(128, &[(0, USR_TYPE_BYTES, guid_bytes(1), "USR-A")]);
        img[512 + 60] ^= 0xff; // the disk GUID, covered by the header CRC
        assert!(matches!(
            parse_header(&img[512..1024]),
            Err(GptError::HeaderCrc)
        ));
        let parts = read(&mut Cursor::new(img), 512).unwrap();
        assert_eq!(parts[0].name, "USR-A");
    }

    #[test]
    fn corrupt_entries_are_refused() {
        let mut img = disk(128, &[(0, USR_TYPE_BYTES, guid_bytes(1), "USR-A")]);
        img[1024 + 60] ^= 0xff; // primary array
        let last = 127 * 512;
        img[last - 32 * 512 + 60] ^= 0xff; // backup array
        assert!(matches!(
            read(&mut Cursor::new(img), 512),
            Err(GptError::EntriesCrc)
        ));
    }

    #[test]
    fn no_table() {
        let img = vec![0u8; 64 * 512];
        assert!(matches!(
            read(&mut Cursor::new(img), 512),
            Err(GptError::NoSignature)
        ));
        assert!(read(&mut Cursor::new(Vec::new()), 512).is_err());
    }

    #[test]
    fn absurd_array_is_refused() {
        let mut h = disk(128, &[])[512..1024].to_vec();
        h[80..84].copy_from_slice(&100_000u32.to_le_bytes());
        h[16..20].fill(0);
        let crc = crc32(&h[..92]);
        h[16..20].copy_from_slice(&crc.to_le_bytes());
        assert!(matches!(parse_header(&h), Err(GptError::BadHeader(_))));
    }
}
