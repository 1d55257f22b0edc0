//! The whole GPT as first boot rewrites it (UEFI spec 2.10 §5.3.2 header, §5.3.3 entries), and
//! the pure plan: new disk GUID, backup table moved to the end of a grown disk (`sgdisk -e`),
//! ROOT extended to the last usable LBA aligned down to 1 MiB.
//!
//! [`Table::read`] reads and checks both copies; [`plan`] computes the new table and
//! [`Plan::steps`] the writes, in the order `sgdisk` uses: backup array and header at the new
//! end first, sync, then the primary array and header, sync, then the protective MBR. A crash
//! at any point leaves a valid table either at LBA 1 or at the last LBA, which is where the
//! kernel looks when the primary is damaged. Signature, header CRC and entry size checks are
//! [`machine::gpt`]'s.

use std::fmt;
use std::io::{self, Read, Seek, SeekFrom};

use machine::gpt::{self, GptError};

/// 1 MiB: partition ends are aligned to it, as the image builder aligns its partitions.
pub const ALIGN_BYTES: u64 = 1 << 20;
/// The protective MBR lives in the first 512 bytes of LBA 0 whatever the sector size.
const MBR_LEN: usize = 512;

/// A GUID in its on-disk (mixed-endian) byte order.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Guid(pub [u8; 16]);

impl Guid {
    /// A random (version 4) GUID from 16 random bytes, in on-disk order.
    pub fn random_v4(mut bytes: [u8; 16]) -> Guid {
        // The version is the high nibble of the third field, stored little-endian at 6..8;
        // the variant is the top two bits of byte 8, stored as is.
        bytes[7] = (bytes[7] & 0x0f) | 0x40;
        bytes[8] = (bytes[8] & 0x3f) | 0x80;
        Guid(bytes)
    }

    /// Whether this is a random (RFC 4122 version 4) GUID. The image builder derives its GUIDs
    /// with UUIDv5 (DESIGN.md, "Disk layout"), so a version-4 disk GUID was randomised already.
    pub fn is_random(&self) -> bool {
        self.0[7] >> 4 == 4 && self.0[8] & 0xc0 == 0x80
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&gpt::guid_to_string(&self.0))
    }
}

impl fmt::Debug for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// A GPT header: the fields first boot reads or changes, and the sector it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub my_lba: u64,
    pub alternate_lba: u64,
    pub first_usable_lba: u64,
    pub last_usable_lba: u64,
    pub disk_guid: Guid,
    pub entries_lba: u64,
    pub num_entries: u32,
    pub entry_size: u32,
    pub entries_crc32: u32,
    /// The sector as read: revision, header size and reserved bytes are written back as found.
    sector: Vec<u8>,
}

impl Header {
    /// Parses a header sector; signature, header CRC and entry geometry are checked.
    pub fn parse(sector: &[u8]) -> Result<Header, GptError> {
        gpt::parse_header(sector)?;
        let mut guid = [0u8; 16];
        guid.copy_from_slice(&sector[56..72]);
        Ok(Header {
            my_lba: u64_at(sector, 24),
            alternate_lba: u64_at(sector, 32),
            first_usable_lba: u64_at(sector, 40),
            last_usable_lba: u64_at(sector, 48),
            disk_guid: Guid(guid),
            entries_lba: u64_at(sector, 72),
            num_entries: u32_at(sector, 80),
            entry_size: u32_at(sector, 84),
            entries_crc32: u32_at(sector, 88),
            sector: sector.to_vec(),
        })
    }

    /// The header sector, its CRC recomputed (over `HeaderSize` bytes, CRC field zeroed).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut s = self.sector.clone();
        s[24..32].copy_from_slice(&self.my_lba.to_le_bytes());
        s[32..40].copy_from_slice(&self.alternate_lba.to_le_bytes());
        s[40..48].copy_from_slice(&self.first_usable_lba.to_le_bytes());
        s[48..56].copy_from_slice(&self.last_usable_lba.to_le_bytes());
        s[56..72].copy_from_slice(&self.disk_guid.0);
        s[72..80].copy_from_slice(&self.entries_lba.to_le_bytes());
        s[80..84].copy_from_slice(&self.num_entries.to_le_bytes());
        s[84..88].copy_from_slice(&self.entry_size.to_le_bytes());
        s[88..92].copy_from_slice(&self.entries_crc32.to_le_bytes());
        let size = u32_at(&s, 12) as usize; // checked against the sector length by parse
        s[16..20].fill(0);
        let crc = gpt::crc32(&s[..size]);
        s[16..20].copy_from_slice(&crc.to_le_bytes());
        s
    }

    /// Bytes of the entry array.
    pub fn entries_len(&self) -> u64 {
        u64::from(self.num_entries) * u64::from(self.entry_size)
    }

    /// Sectors the entry array takes (32 for the usual 128 × 128 bytes in 512-byte sectors).
    pub fn entries_sectors(&self, sector_size: u64) -> u64 {
        self.entries_len().div_ceil(sector_size)
    }
}

/// One used entry of the partition array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Kernel partition number: entry index + 1.
    pub number: u32,
    pub first_lba: u64,
    pub last_lba: u64,
    pub unique_guid: Guid,
}

/// The used entries of an entry array (type GUID not all zero).
pub fn entries(array: &[u8], entry_size: u32) -> Vec<Entry> {
    array
        .chunks_exact(entry_size as usize)
        .enumerate()
        .filter(|(_, e)| e[..16].iter().any(|&b| b != 0))
        .map(|(i, e)| {
            let mut guid = [0u8; 16];
            guid.copy_from_slice(&e[16..32]);
            Entry {
                number: i as u32 + 1,
                first_lba: u64_at(e, 32),
                last_lba: u64_at(e, 40),
                unique_guid: Guid(guid),
            }
        })
        .collect()
}

/// The disk's size in sectors, and the sector size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    pub sector_size: u64,
    pub sectors: u64,
}

impl Geometry {
    pub fn last_lba(&self) -> u64 {
        self.sectors - 1
    }
}

/// Why a table is refused. Nothing is written to a disk whose table is refused.
#[derive(Debug, thiserror::Error)]
pub enum Invalid {
    #[error("primary GPT header (LBA 1): {0}")]
    Primary(GptError),
    #[error("backup GPT header (LBA {lba}): {error}")]
    Backup { lba: u64, error: GptError },
    #[error("{which} GPT partition array (LBA {lba}): CRC mismatch")]
    EntriesCrc { which: &'static str, lba: u64 },
    #[error("the disk ({sectors} sectors) is smaller than its GPT says: backup header at LBA {alternate}")]
    DiskShrank { sectors: u64, alternate: u64 },
    #[error("partitions {a} and {b} overlap")]
    Overlap { a: u32, b: u32 },
    #[error("partition {number} (LBA {first}-{last}) is outside the usable LBAs {lo}-{hi}")]
    OutOfBounds {
        number: u32,
        first: u64,
        last: u64,
        lo: u64,
        hi: u64,
    },
    #[error("partition {0} does not exist in the GPT")]
    NoSuchPartition(u32),
    #[error("bad GPT: {0}")]
    Inconsistent(String),
}

/// A disk's partition table as read: both headers, the entry array, the protective MBR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub geometry: Geometry,
    pub primary: Header,
    pub backup: Header,
    /// The primary entry array (the backup one is checked equal).
    pub entries: Vec<u8>,
    /// The first 512 bytes of LBA 0.
    pub mbr: Vec<u8>,
}

/// Reading failed: IO, or a table that is refused.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("reading: {0}")]
    Io(#[from] io::Error),
    #[error(transparent)]
    Invalid(#[from] Invalid),
}

fn read_exact_at(disk: &mut (impl Read + Seek), offset: u64, len: u64) -> io::Result<Vec<u8>> {
    disk.seek(SeekFrom::Start(offset))?;
    let mut buf = vec![0u8; len as usize];
    disk.read_exact(&mut buf)?;
    Ok(buf)
}

fn inconsistent(why: String) -> Invalid {
    Invalid::Inconsistent(why)
}

impl Table {
    /// Reads the protective MBR, the primary table at LBA 1 and the backup table where the
    /// primary header says it is (at the old end of a disk that grew), and checks them (see
    /// [`Table::validate`]).
    pub fn read(disk: &mut (impl Read + Seek), sector_size: u64) -> Result<Table, ReadError> {
        let size = disk.seek(SeekFrom::End(0))?;
        let geometry = Geometry {
            sector_size,
            sectors: size / sector_size,
        };
        if geometry.sectors < 3 {
            return Err(Invalid::Primary(GptError::NoSignature).into());
        }
        let mbr = read_exact_at(disk, 0, MBR_LEN as u64)?;
        let primary = Header::parse(&read_exact_at(disk, sector_size, sector_size)?)
            .map_err(Invalid::Primary)?;
        if primary.my_lba != 1 {
            return Err(inconsistent(format!(
                "primary header says it is at LBA {}",
                primary.my_lba
            ))
            .into());
        }
        let alternate = primary.alternate_lba;
        if alternate >= geometry.sectors {
            return Err(Invalid::DiskShrank {
                sectors: geometry.sectors,
                alternate,
            }
            .into());
        }
        let entries = read_array(disk, &primary, geometry)?;
        if gpt::crc32(&entries) != primary.entries_crc32 {
            return Err(Invalid::EntriesCrc {
                which: "primary",
                lba: primary.entries_lba,
            }
            .into());
        }
        let backup = Header::parse(&read_exact_at(disk, alternate * sector_size, sector_size)?)
            .map_err(|error| Invalid::Backup {
                lba: alternate,
                error,
            })?;
        let backup_entries = read_array(disk, &backup, geometry)?;
        if gpt::crc32(&backup_entries) != backup.entries_crc32 {
            return Err(Invalid::EntriesCrc {
                which: "backup",
                lba: backup.entries_lba,
            }
            .into());
        }
        if backup_entries != entries {
            return Err(
                inconsistent("the primary and backup partition arrays differ".into()).into(),
            );
        }
        let table = Table {
            geometry,
            primary,
            backup,
            entries,
            mbr,
        };
        table.validate()?;
        Ok(table)
    }

    /// Checks what [`Header::parse`] cannot see alone: the two headers point at each other and
    /// agree, the arrays lie outside the usable LBAs, and partitions are in bounds and disjoint.
    pub fn validate(&self) -> Result<Vec<Entry>, Invalid> {
        let (p, b, g) = (&self.primary, &self.backup, self.geometry);
        if b.my_lba != p.alternate_lba || b.alternate_lba != p.my_lba {
            return Err(inconsistent(format!(
                "the backup header at LBA {} says it is at LBA {} with its alternate at LBA {}",
                p.alternate_lba, b.my_lba, b.alternate_lba
            )));
        }
        let same = p.disk_guid == b.disk_guid
            && p.first_usable_lba == b.first_usable_lba
            && p.last_usable_lba == b.last_usable_lba
            && p.num_entries == b.num_entries
            && p.entry_size == b.entry_size
            && p.entries_crc32 == b.entries_crc32;
        if !same {
            return Err(inconsistent("the primary and backup headers differ".into()));
        }
        let n = p.entries_sectors(g.sector_size);
        let in_order = p.entries_lba >= 2
            && p.entries_lba + n <= p.first_usable_lba
            && p.first_usable_lba <= p.last_usable_lba
            && p.last_usable_lba < b.entries_lba
            && b.entries_lba + n <= b.my_lba;
        if !in_order {
            return Err(inconsistent(format!(
                "primary array at LBA {}, usable LBAs {}-{}, backup array at LBA {}, backup header at LBA {}: not in this order",
                p.entries_lba, p.first_usable_lba, p.last_usable_lba, b.entries_lba, b.my_lba
            )));
        }
        let mut used = entries(&self.entries, p.entry_size);
        for e in &used {
            if e.first_lba > e.last_lba
                || e.first_lba < p.first_usable_lba
                || e.last_lba > p.last_usable_lba
            {
                return Err(Invalid::OutOfBounds {
                    number: e.number,
                    first: e.first_lba,
                    last: e.last_lba,
                    lo: p.first_usable_lba,
                    hi: p.last_usable_lba,
                });
            }
        }
        used.sort_by_key(|e| e.first_lba);
        for pair in used.windows(2) {
            if pair[1].first_lba <= pair[0].last_lba {
                return Err(Invalid::Overlap {
                    a: pair[0].number,
                    b: pair[1].number,
                });
            }
        }
        used.sort_by_key(|e| e.number);
        Ok(used)
    }
}

fn read_array(
    disk: &mut (impl Read + Seek),
    header: &Header,
    g: Geometry,
) -> Result<Vec<u8>, ReadError> {
    let end = header
        .entries_lba
        .checked_add(header.entries_sectors(g.sector_size))
        .filter(|&end| end <= g.sectors);
    if end.is_none() {
        return Err(inconsistent(format!(
            "partition array at LBA {} runs past the end of the disk",
            header.entries_lba
        ))
        .into());
    }
    Ok(read_exact_at(
        disk,
        header.entries_lba * g.sector_size,
        header.entries_len(),
    )?)
}

/// What happens to the ROOT partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Growth {
    /// Its last LBA moves from `from` to `to`.
    Grow {
        number: u32,
        first: u64,
        from: u64,
        to: u64,
    },
    /// Another partition lies after it: growing it would need moving that one.
    NotLast { number: u32, after: u32 },
    /// It already reaches the aligned end of the usable space.
    Full { number: u32 },
}

/// The new table and what changed. Computing it touches no disk; [`Plan::steps`] says what to
/// write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub geometry: Geometry,
    pub old_guid: Guid,
    /// The new disk GUID, or `None` when the disk GUID is random already.
    pub new_guid: Option<Guid>,
    /// The backup header's LBA before and after, when it moves to the end of the disk.
    pub backup_move: Option<(u64, u64)>,
    pub growth: Growth,
    /// ROOT's first and last LBA in the new table.
    pub partition: (u64, u64),
    pub primary: Header,
    pub backup: Header,
    pub entries: Vec<u8>,
    /// The protective MBR with its size fixed, when it needs fixing.
    pub mbr: Option<Vec<u8>>,
}

/// The last LBA of a partition that ends at the end of the usable space aligned down to
/// [`ALIGN_BYTES`].
pub fn aligned_last_lba(last_usable_lba: u64, sector_size: u64) -> u64 {
    let align = (ALIGN_BYTES / sector_size).max(1);
    ((last_usable_lba + 1) / align * align).saturating_sub(1)
}

/// Computes the new table for `table` on first boot: the disk GUID becomes `fresh` unless it is
/// random already (so a second run keeps it); the backup table moves to the last LBA; partition
/// `root` grows to the aligned end of the usable space if it is the last partition. Partition
/// GUIDs never change (boot entries name `usr=PARTUUID=`). Pure.
pub fn plan(table: &Table, root: u32, fresh: Guid) -> Result<Plan, Invalid> {
    let used = table.validate()?;
    let g = table.geometry;
    let target = used
        .iter()
        .find(|e| e.number == root)
        .ok_or(Invalid::NoSuchPartition(root))?;
    let n = table.primary.entries_sectors(g.sector_size);
    let backup_entries_lba = g.last_lba() - n;
    let last_usable = backup_entries_lba - 1;
    if last_usable < table.primary.last_usable_lba {
        // Not reachable after validate (the old backup fits in the disk); kept as a guard.
        return Err(Invalid::DiskShrank {
            sectors: g.sectors,
            alternate: table.primary.alternate_lba,
        });
    }
    let new_guid = (!table.primary.disk_guid.is_random()).then_some(fresh);
    let guid = new_guid.unwrap_or(table.primary.disk_guid);
    let backup_move = (table.primary.alternate_lba != g.last_lba())
        .then_some((table.primary.alternate_lba, g.last_lba()));

    let growth = growth(&used, target, aligned_last_lba(last_usable, g.sector_size));
    let mut entries = table.entries.clone();
    let mut partition = (target.first_lba, target.last_lba);
    if let Growth::Grow { to, .. } = growth {
        let at = (root as usize - 1) * table.primary.entry_size as usize + 40;
        entries[at..at + 8].copy_from_slice(&to.to_le_bytes());
        partition.1 = to;
    }
    let crc = gpt::crc32(&entries);
    let primary = Header {
        alternate_lba: g.last_lba(),
        last_usable_lba: last_usable,
        disk_guid: guid,
        entries_crc32: crc,
        ..table.primary.clone()
    };
    let backup = Header {
        my_lba: g.last_lba(),
        alternate_lba: 1,
        last_usable_lba: last_usable,
        disk_guid: guid,
        entries_lba: backup_entries_lba,
        entries_crc32: crc,
        ..table.backup.clone()
    };
    Ok(Plan {
        geometry: g,
        old_guid: table.primary.disk_guid,
        new_guid,
        backup_move,
        growth,
        partition,
        primary,
        backup,
        entries,
        mbr: protective_mbr_fix(&table.mbr, g.sectors),
    })
}

fn growth(used: &[Entry], target: &Entry, aligned_last: u64) -> Growth {
    if let Some(after) = used.iter().find(|e| e.first_lba > target.last_lba) {
        return Growth::NotLast {
            number: target.number,
            after: after.number,
        };
    }
    if aligned_last <= target.last_lba {
        return Growth::Full {
            number: target.number,
        };
    }
    Growth::Grow {
        number: target.number,
        first: target.first_lba,
        from: target.last_lba,
        to: aligned_last,
    }
}

/// The protective MBR with its 0xEE partition resized to cover the disk (`min(sectors - 1,
/// 2^32 - 1)`), when `mbr` is a plain protective MBR (one 0xEE entry from LBA 1) of another
/// size. Hybrid or foreign MBRs are left alone.
pub fn protective_mbr_fix(mbr: &[u8], sectors: u64) -> Option<Vec<u8>> {
    if mbr.len() < MBR_LEN || mbr[510..512] != [0x55, 0xaa] {
        return None;
    }
    let entry = |i: usize| &mbr[446 + 16 * i..462 + 16 * i];
    let protective =
        entry(0)[4] == 0xee && u32_at(entry(0), 8) == 1 && (1..4).all(|i| entry(i)[4] == 0);
    let want = (sectors - 1).min(u64::from(u32::MAX)) as u32;
    if !protective || u32_at(entry(0), 12) == want {
        return None;
    }
    let mut fixed = mbr[..MBR_LEN].to_vec();
    fixed[446 + 12..446 + 16].copy_from_slice(&want.to_le_bytes());
    Some(fixed)
}

/// One step of writing a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Write {
        what: &'static str,
        offset: u64,
        bytes: Vec<u8>,
    },
    /// fsync: everything written before is on the disk.
    Sync,
}

impl Plan {
    /// Whether the GPT itself changes.
    pub fn gpt_changes(&self) -> bool {
        self.new_guid.is_some()
            || self.backup_move.is_some()
            || matches!(self.growth, Growth::Grow { .. })
    }

    /// Whether nothing is to be written.
    pub fn is_noop(&self) -> bool {
        !self.gpt_changes() && self.mbr.is_none()
    }

    /// The writes, in order: backup array, backup header, sync, primary array, primary header,
    /// sync, protective MBR, sync. Empty when nothing changes.
    pub fn steps(&self) -> Vec<Step> {
        let ss = self.geometry.sector_size;
        let mut steps = Vec::new();
        if self.gpt_changes() {
            steps.extend([
                Step::Write {
                    what: "backup partition array",
                    offset: self.backup.entries_lba * ss,
                    bytes: self.entries.clone(),
                },
                Step::Write {
                    what: "backup GPT header",
                    offset: self.backup.my_lba * ss,
                    bytes: self.backup.to_bytes(),
                },
                Step::Sync,
                Step::Write {
                    what: "primary partition array",
                    offset: self.primary.entries_lba * ss,
                    bytes: self.entries.clone(),
                },
                Step::Write {
                    what: "primary GPT header",
                    offset: self.primary.my_lba * ss,
                    bytes: self.primary.to_bytes(),
                },
                Step::Sync,
            ]);
        }
        if let Some(mbr) = &self.mbr {
            steps.extend([
                Step::Write {
                    what: "protective MBR",
                    offset: 0,
                    bytes: mbr.clone(),
                },
                Step::Sync,
            ]);
        }
        steps
    }

    /// One line per change (or the reason for no change), for the journal.
    pub fn describe(&self) -> Vec<String> {
        let mib = |sectors: u64| sectors * self.geometry.sector_size / ALIGN_BYTES;
        let mut lines = Vec::new();
        match self.new_guid {
            Some(new) => lines.push(format!("disk GUID {} -> {new}", self.old_guid)),
            None => lines.push(format!(
                "disk GUID {} is random already, kept",
                self.old_guid
            )),
        }
        if let Some((from, to)) = self.backup_move {
            lines.push(format!(
                "backup GPT moves from LBA {from} to LBA {to} (the disk grew by {} MiB)",
                mib(to - from)
            ));
        }
        lines.push(match self.growth {
            Growth::Grow {
                number,
                first,
                from,
                to,
            } => format!(
                "partition {number} grows from LBA {first}-{from} to LBA {first}-{to} (+{} MiB)",
                mib(to - from)
            ),
            Growth::NotLast { number, after } => {
                format!("partition {number} not grown: partition {after} lies after it")
            }
            Growth::Full { number } => {
                format!("partition {number} already reaches the end of the disk")
            }
        });
        if self.mbr.is_some() {
            lines.push(format!(
                "protective MBR resized to the disk's {} sectors",
                self.geometry.sectors
            ));
        }
        lines
    }
}

#[cfg(test)]
#[path = "table_tests.rs"]
pub(super) mod tests;
