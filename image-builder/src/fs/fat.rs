//! Deterministic FAT32 writer for the EFI System Partition.
//!
//! Implements the on-disk format of Microsoft's "FAT: General Overview of On-Disk Format"
//! (fatgen103, version 1.03) with VFAT long file names, the format UEFI (2.10 §13.3) requires of
//! an ESP. We write it ourselves: `fatfs` 0.3.6 writes broken `.`/`..` entries (HOST.md).
//!
//! The image is a pure function of [`FatParams`] and the set of files (their order does not
//! matter), so identical input gives identical bytes:
//! - 512-byte sectors; 32 reserved sectors holding the boot sector (0), FSInfo (1) and their
//!   backups (6, 7); two identical FATs; the root directory at cluster 2; 0 hidden sectors.
//! - Sectors per cluster follow fatgen103's FAT32 table (1 up to 260 MiB, 8 up to 8 GiB, 16 up to
//!   16 GiB, 32 up to 32 GiB, then 64). A size giving fewer than 65525 clusters is not FAT32 and
//!   is refused ([`min_size_bytes`], about 33 MiB).
//! - Each directory and each file is one contiguous cluster run: first the directories in
//!   depth-first name order, then the files in path order. Empty files have no cluster.
//! - Directory entries are sorted by name (byte order); every timestamp is 1980-01-01 00:00:00.
//!
//! Short names follow Linux vfat's default (`shortname=mixed`), which agrees with Windows:
//! - a name whose uppercase form is a valid 8.3 name has that form as its short name (`EFI`,
//!   `BOOTX64.EFI`; `vmlinuz` → `VMLINUZ`, `initrd.img` → `INITRD.IMG`);
//! - any other name gets fatgen103's basis name with the lowest free numeric tail `~1` ..
//!   `~999999`: `loader.conf` → `LOADER~1.CON`, `minimal-1.0.0-usr-a+3-0.conf` →
//!   `MINIMA~1.CON` (Windows also switches to hashed tails after `~4`; we do not);
//! - every name that is not already an uppercase 8.3 name also gets VFAT long-name entries
//!   holding it exactly (the NT lowercase bits are never used).
//!
//! [`read_files`] reads an ESP back (for `inspect`), also after firmware or Linux changed it.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Cursor, Seek, SeekFrom, Write};

/// Bytes per sector, the only sector size written.
pub const SECTOR_BYTES: u64 = 512;
/// Fewest clusters of a FAT32 volume (fatgen103: fewer is FAT16).
pub const MIN_CLUSTERS: u64 = 65_525;
const RESERVED_SECTORS: u32 = 32;
const NUM_FATS: u32 = 2;
const FSINFO_SECTOR: u16 = 1;
const BACKUP_BOOT_SECTOR: u16 = 6;
const ROOT_CLUSTER: u32 = 2;
const DIR_ENTRY_BYTES: u64 = 32;
/// A directory holds at most 65536 entries (fatgen103, "FAT Directory Structure").
const MAX_DIR_ENTRIES: u64 = 65_536;
/// A long name has at most 255 UTF-16 code units.
const MAX_NAME_UNITS: usize = 255;
const LFN_UNITS_PER_ENTRY: usize = 13;
/// Byte offsets of the 13 UTF-16 units in a long-name entry.
const LFN_UNIT_OFFSETS: [usize; LFN_UNITS_PER_ENTRY] =
    [1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30];
const MAX_TAIL: u32 = 999_999;

/// FAT[0]: the media byte 0xF8 in the low byte, all other bits set.
const FAT_ENTRY_0: u32 = 0x0FFF_FFF8;
/// FAT[1]: end of chain with the clean-shutdown and no-IO-error bits set.
const FAT_ENTRY_1: u32 = 0x0FFF_FFFF;
const END_OF_CHAIN: u32 = 0x0FFF_FFFF;
const BAD_CLUSTER: u32 = 0x0FFF_FFF7;
const FREE_UNKNOWN: u32 = 0xFFFF_FFFF;

const JUMP: [u8; 3] = [0xEB, 0x58, 0x90];
const OEM_NAME: &[u8; 8] = b"MSWIN4.1";
const MEDIA_FIXED: u8 = 0xF8;
const SECTORS_PER_TRACK: u16 = 63;
const HEADS: u16 = 255;
const DRIVE_NUMBER: u8 = 0x80;
const EXTENDED_BOOT_SIGNATURE: u8 = 0x29;
const NO_LABEL: ShortName = *b"NO NAME    ";
const FS_TYPE: &[u8; 8] = b"FAT32   ";
/// Where the jump lands: `int 0x18` (no bootable disk, the BIOS tries the next one), then halt.
const BOOT_CODE_OFFSET: usize = 90;
const BOOT_CODE: [u8; 5] = [0xCD, 0x18, 0xF4, 0xEB, 0xFD];

const FSINFO_LEAD_SIGNATURE: u32 = 0x4161_5252;
const FSINFO_STRUCT_SIGNATURE: u32 = 0x6141_7272;
const FSINFO_TRAIL_SIGNATURE: u32 = 0xAA55_0000;

const ATTR_VOLUME_ID: u8 = 0x08;
const ATTR_DIRECTORY: u8 = 0x10;
const ATTR_ARCHIVE: u8 = 0x20;
const ATTR_LONG_NAME: u8 = 0x0F;
const LFN_LAST_ENTRY: u8 = 0x40;
/// 1980-01-01, the FAT epoch, as a date field: (year - 1980) << 9 | month << 5 | day.
const FIXED_DATE: u16 = (1 << 5) | 1;
/// 00:00:00 as a time field.
const FIXED_TIME: u16 = 0;
const DOT: ShortName = *b".          ";
const DOT_DOT: ShortName = *b"..         ";

/// Characters besides A-Z and 0-9 allowed in short names and labels (fatgen103).
const SHORT_NAME_PUNCTUATION: &[u8] = b"!#$%&'()-@^_`{}~";
/// Characters besides controls and '/' not allowed in long names (fatgen103).
const LONG_NAME_FORBIDDEN: &[char] = &['"', '*', ':', '<', '>', '?', '\\', '|'];

/// An 8.3 name as stored: 8 bytes of base and 3 of extension, padded with spaces.
type ShortName = [u8; 11];

/// A file to put on the filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FatFile {
    /// '/'-separated path without a leading '/', e.g. `EFI/BOOT/BOOTX64.EFI`. Directories are
    /// created as needed.
    pub path: String,
    pub data: Vec<u8>,
}

impl FatFile {
    pub fn new(path: impl Into<String>, data: impl Into<Vec<u8>>) -> FatFile {
        FatFile {
            path: path.into(),
            data: data.into(),
        }
    }
}

/// What the filesystem looks like apart from its files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FatParams {
    /// Size of the filesystem (the partition), a multiple of 512.
    pub size_bytes: u64,
    /// Volume serial number (shown as `XXXX-XXXX`, in `/dev/disk/by-uuid`).
    pub volume_id: u32,
    /// Up to 11 characters A-Z, 0-9, space and ``!#$%&'()-@^_`{}~``; `None` for `NO NAME`.
    pub label: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum FatError {
    #[error("bad path {path:?}: {reason}")]
    BadPath { path: String, reason: &'static str },
    #[error("duplicate path {path:?} (FAT names are case-insensitive; it clashes with {other:?})")]
    Duplicate { path: String, other: String },
    #[error("{path:?} is both a file and a directory")]
    FileAndDirectory { path: String },
    #[error("file {path:?} has {size} bytes; a FAT file holds at most 4 GiB - 1")]
    FileTooLarge { path: String, size: u64 },
    #[error("directory {path:?} needs {entries} entries; a FAT directory holds at most 65536")]
    DirectoryTooLarge { path: String, entries: u64 },
    #[error("filesystem size {size_bytes} is not a multiple of 512 bytes")]
    UnalignedSize { size_bytes: u64 },
    #[error("{size_bytes} bytes is too small for FAT32 (65525 clusters): at least {min_bytes}")]
    TooSmall { size_bytes: u64, min_bytes: u64 },
    #[error("{size_bytes} bytes is more than FAT32 with 512-byte sectors holds ({max_bytes})")]
    TooLarge { size_bytes: u64, max_bytes: u64 },
    #[error(
        "no space: the files and directories need {needed} bytes, the clusters hold {available}"
    )]
    NoSpace { needed: u64, available: u64 },
    #[error("bad volume label {label:?}: {reason}")]
    BadLabel { label: String, reason: &'static str },
    #[error("not a valid FAT32 filesystem: {reason}")]
    Invalid { reason: String },
    #[error("cannot allocate {size_bytes} bytes for the filesystem image")]
    OutOfMemory { size_bytes: u64 },
    #[error("writing the FAT image")]
    Io(#[from] io::Error),
}

/// Builds the whole filesystem image, exactly `params.size_bytes` long. For filesystems of many
/// GiB, [`write`] to a sparse file needs less memory.
pub fn build(params: &FatParams, files: &[FatFile]) -> Result<Vec<u8>, FatError> {
    let plan = Plan::compute(params, files)?;
    let out_of_memory = || FatError::OutOfMemory {
        size_bytes: params.size_bytes,
    };
    let len = usize::try_from(params.size_bytes).map_err(|_| out_of_memory())?;
    let mut image = Vec::new();
    image.try_reserve_exact(len).map_err(|_| out_of_memory())?;
    image.resize(len, 0);
    plan.write_to(&mut Cursor::new(&mut image))?;
    Ok(image)
}

/// Writes the filesystem to `out` at offset 0 and makes `out` at least `params.size_bytes` long.
///
/// Free clusters are not written: for byte-identical output, `out` must start zero-filled (a new
/// file or a sparse one). The filesystem is valid whatever they hold.
pub fn write<W: Write + Seek>(
    params: &FatParams,
    files: &[FatFile],
    out: &mut W,
) -> Result<(), FatError> {
    Plan::compute(params, files)?.write_to(out)
}

/// Smallest size [`build`] accepts: the first with 65525 one-sector clusters (34,093,568 bytes).
pub fn min_size_bytes() -> u64 {
    (MIN_CLUSTERS as u32..)
        .find(|&sectors| u64::from(Geometry::with(sectors, 1).clusters) >= MIN_CLUSTERS)
        .map_or(u64::MAX, |sectors| u64::from(sectors) * SECTOR_BYTES)
}

/// Where the regions of a FAT32 volume lie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    pub total_sectors: u32,
    pub sectors_per_cluster: u32,
    /// Sectors of one FAT.
    pub fat_sectors: u32,
    /// Data clusters, numbered from 2.
    pub clusters: u32,
}

impl Geometry {
    /// The geometry of a `size_bytes` FAT32 volume, or why there is none.
    pub fn compute(size_bytes: u64) -> Result<Geometry, FatError> {
        if !size_bytes.is_multiple_of(SECTOR_BYTES) {
            return Err(FatError::UnalignedSize { size_bytes });
        }
        let total = u32::try_from(size_bytes / SECTOR_BYTES).map_err(|_| FatError::TooLarge {
            size_bytes,
            max_bytes: u64::from(u32::MAX) * SECTOR_BYTES,
        })?;
        let geometry = Geometry::with(total, sectors_per_cluster(total));
        if u64::from(geometry.clusters) < MIN_CLUSTERS {
            return Err(FatError::TooSmall {
                size_bytes,
                min_bytes: min_size_bytes(),
            });
        }
        // At most 2^32 / 64 clusters: far below FAT32's limit of 0x0FFFFFF5.
        Ok(geometry)
    }

    fn with(total_sectors: u32, sectors_per_cluster: u32) -> Geometry {
        // fatgen103's FAT32 size formula: never too small, at most a few sectors too large.
        let after_reserved = total_sectors.saturating_sub(RESERVED_SECTORS);
        let per_fat_sector = (256 * sectors_per_cluster + NUM_FATS) / 2;
        let fat_sectors = after_reserved.div_ceil(per_fat_sector);
        let data_sectors = after_reserved.saturating_sub(NUM_FATS * fat_sectors);
        Geometry {
            total_sectors,
            sectors_per_cluster,
            fat_sectors,
            clusters: data_sectors / sectors_per_cluster,
        }
    }

    pub fn cluster_bytes(&self) -> u64 {
        u64::from(self.sectors_per_cluster) * SECTOR_BYTES
    }

    fn fat_offset(&self, copy: u32) -> u64 {
        (u64::from(RESERVED_SECTORS) + u64::from(copy) * u64::from(self.fat_sectors)) * SECTOR_BYTES
    }

    fn cluster_offset(&self, cluster: u32) -> u64 {
        self.fat_offset(NUM_FATS) + u64::from(cluster - 2) * self.cluster_bytes()
    }
}

/// fatgen103's `DskTableFAT32` for 512-byte sectors.
fn sectors_per_cluster(total_sectors: u32) -> u32 {
    if total_sectors <= 532_480 {
        1 // up to 260 MiB
    } else if total_sectors <= 16_777_216 {
        8 // up to 8 GiB
    } else if total_sectors <= 33_554_432 {
        16 // up to 16 GiB
    } else if total_sectors <= 67_108_864 {
        32 // up to 32 GiB
    } else {
        64
    }
}

#[derive(Debug, Clone, Copy)]
enum Node {
    Dir(usize),
    File(usize),
}

struct Dir {
    parent: usize,
    name: String,
    children: BTreeMap<String, Node>,
    /// Child names by their uppercase form, to refuse names differing only in case.
    folded: BTreeMap<String, String>,
}

impl Dir {
    fn new(parent: usize, name: &str) -> Dir {
        Dir {
            parent,
            name: name.to_string(),
            children: BTreeMap::new(),
            folded: BTreeMap::new(),
        }
    }
}

/// The directory tree of the files; `dirs[0]` is the root.
struct Tree {
    dirs: Vec<Dir>,
}

impl Tree {
    fn build(files: &[FatFile]) -> Result<Tree, FatError> {
        let mut tree = Tree {
            dirs: vec![Dir::new(0, "")],
        };
        for (index, file) in files.iter().enumerate() {
            if u32::try_from(file.data.len()).is_err() {
                return Err(FatError::FileTooLarge {
                    path: file.path.clone(),
                    size: file.data.len() as u64,
                });
            }
            tree.insert(files, index)?;
        }
        Ok(tree)
    }

    fn insert(&mut self, files: &[FatFile], index: usize) -> Result<(), FatError> {
        let path = &files[index].path;
        if path.is_empty() {
            return Err(bad_path(path, "empty path"));
        }
        let count = path.split('/').count();
        let mut dir = 0;
        let mut start = 0; // of the current component in `path`
        for (k, name) in path.split('/').enumerate() {
            check_name(name).map_err(|reason| bad_path(path, reason))?;
            let last = k + 1 == count;
            match (self.dirs[dir].children.get(name).copied(), last) {
                (Some(Node::Dir(child)), false) => dir = child,
                (Some(Node::Dir(_)), true) => {
                    return Err(FatError::FileAndDirectory { path: path.clone() })
                }
                (Some(Node::File(other)), true) => {
                    return Err(FatError::Duplicate {
                        path: path.clone(),
                        other: files[other].path.clone(),
                    })
                }
                (Some(Node::File(other)), false) => {
                    return Err(FatError::FileAndDirectory {
                        path: files[other].path.clone(),
                    })
                }
                (None, _) => {
                    let folded = fold_case(name);
                    if let Some(other) = self.dirs[dir].folded.get(&folded) {
                        return Err(FatError::Duplicate {
                            path: path[..start + name.len()].to_string(),
                            other: format!("{}{other}", &path[..start]),
                        });
                    }
                    let node = if last {
                        Node::File(index)
                    } else {
                        self.dirs.push(Dir::new(dir, name));
                        Node::Dir(self.dirs.len() - 1)
                    };
                    let parent = &mut self.dirs[dir];
                    parent.folded.insert(folded, name.to_string());
                    parent.children.insert(name.to_string(), node);
                    if let Node::Dir(child) = node {
                        dir = child;
                    }
                }
            }
            start += name.len() + 1;
        }
        Ok(())
    }

    /// Directories in depth-first order, children by name.
    fn preorder(&self) -> Vec<usize> {
        let mut order = Vec::with_capacity(self.dirs.len());
        let mut stack = vec![0];
        while let Some(dir) = stack.pop() {
            order.push(dir);
            let children = self.dirs[dir].children.values().rev();
            stack.extend(children.filter_map(|node| match node {
                Node::Dir(child) => Some(*child),
                Node::File(_) => None,
            }));
        }
        order
    }

    /// The path of a directory, for messages.
    fn path(&self, mut dir: usize) -> String {
        let mut names = Vec::new();
        while dir != 0 {
            names.push(self.dirs[dir].name.as_str());
            dir = self.dirs[dir].parent;
        }
        names.reverse();
        names.join("/")
    }
}

fn bad_path(path: &str, reason: &'static str) -> FatError {
    FatError::BadPath {
        path: path.to_string(),
        reason,
    }
}

/// Checks one path component against what VFAT long names allow.
fn check_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("empty component (leading, trailing or doubled '/')");
    }
    if name == "." || name == ".." {
        return Err("'.' and '..' are not allowed");
    }
    if name.ends_with(['.', ' ']) {
        return Err("a name cannot end with '.' or ' ' on FAT");
    }
    if name.encode_utf16().count() > MAX_NAME_UNITS {
        return Err("a name is longer than 255 UTF-16 units");
    }
    if name
        .chars()
        .any(|c| c < ' ' || LONG_NAME_FORBIDDEN.contains(&c))
    {
        return Err("a name cannot contain control characters or \" * : < > ? \\ |");
    }
    Ok(())
}

/// Uppercases character by character, as FAT's name comparison does (no `ß` → `SS`).
fn fold_case(name: &str) -> String {
    name.chars()
        .map(|c| {
            let mut upper = c.to_uppercase();
            match (upper.next(), upper.next()) {
                (Some(u), None) => u,
                _ => c,
            }
        })
        .collect()
}

fn is_short_name_char(b: u8) -> bool {
    b.is_ascii_uppercase() || b.is_ascii_digit() || SHORT_NAME_PUNCTUATION.contains(&b)
}

fn label_name(label: Option<&str>) -> Result<Option<ShortName>, FatError> {
    let Some(label) = label else {
        return Ok(None);
    };
    let bad = |reason| FatError::BadLabel {
        label: label.to_string(),
        reason,
    };
    if label.is_empty() {
        return Err(bad("empty (use no label instead)"));
    }
    if !label.bytes().all(|b| b == b' ' || is_short_name_char(b)) {
        return Err(bad(
            "only A-Z, 0-9, space and !#$%&'()-@^_`{}~ are allowed (uppercase)",
        ));
    }
    if label.len() > 11 {
        return Err(bad("longer than 11 characters"));
    }
    if label.starts_with(' ') {
        return Err(bad("starts with a space"));
    }
    let mut name = [b' '; 11];
    name[..label.len()].copy_from_slice(label.as_bytes());
    Ok(Some(name))
}

fn pad_short_name(base: &[u8], ext: &[u8]) -> ShortName {
    let mut name = [b' '; 11];
    for (to, from) in name[..8].iter_mut().zip(base) {
        *to = *from;
    }
    for (to, from) in name[8..].iter_mut().zip(ext) {
        *to = *from;
    }
    name
}

/// The short name of `name` if its uppercase form is a valid 8.3 name.
fn exact_short_name(name: &str) -> Option<ShortName> {
    let upper = name.to_ascii_uppercase();
    let (base, ext) = upper.split_once('.').unwrap_or((&upper, ""));
    let valid = (1..=8).contains(&base.len())
        && ext.len() <= 3
        && base.bytes().chain(ext.bytes()).all(is_short_name_char);
    valid.then(|| pad_short_name(base.as_bytes(), ext.as_bytes()))
}

/// Whether `name` needs long-name entries: whether it is not an uppercase 8.3 name.
fn needs_long_name(name: &str) -> bool {
    exact_short_name(name).is_none() || name.bytes().any(|b| b.is_ascii_lowercase())
}

/// fatgen103's basis name: uppercase, other characters as '_', spaces and leading or inner dots
/// dropped, the base cut to 8 characters and the extension (after the last dot) to 3.
fn basis_name(name: &str) -> (Vec<u8>, Vec<u8>) {
    let mapped: Vec<u8> = name
        .chars()
        .filter(|&c| c != ' ')
        .map(|c| match c {
            '.' => b'.',
            c if c.is_ascii() && is_short_name_char(c.to_ascii_uppercase() as u8) => {
                c.to_ascii_uppercase() as u8
            }
            _ => b'_',
        })
        .collect();
    let start = mapped
        .iter()
        .position(|&b| b != b'.')
        .unwrap_or(mapped.len());
    let trimmed = &mapped[start..];
    let (base, ext) = match trimmed.iter().rposition(|&b| b == b'.') {
        Some(dot) => (&trimmed[..dot], &trimmed[dot + 1..]),
        None => (trimmed, &[][..]),
    };
    let mut base: Vec<u8> = base
        .iter()
        .copied()
        .filter(|&b| b != b'.')
        .take(8)
        .collect();
    if base.is_empty() {
        base.push(b'_');
    }
    (base, ext.iter().copied().take(3).collect())
}

/// Short names of a directory's children (given in order), unique within the directory.
fn short_names(names: &[&str]) -> Option<Vec<ShortName>> {
    let exact: Vec<Option<ShortName>> = names.iter().map(|name| exact_short_name(name)).collect();
    // Exact names first: they cannot clash with each other (that would be a case-insensitive
    // duplicate), and a generated name must not take one.
    let mut used: BTreeSet<ShortName> = exact.iter().flatten().copied().collect();
    let mut next_tail: BTreeMap<(Vec<u8>, Vec<u8>), u32> = BTreeMap::new();
    let mut shorts = Vec::with_capacity(names.len());
    for (name, exact) in names.iter().zip(exact) {
        let short = match exact {
            Some(short) => short,
            None => {
                let (base, ext) = basis_name(name);
                let tail = next_tail.entry((base.clone(), ext.clone())).or_insert(1);
                let n =
                    (*tail..=MAX_TAIL).find(|&n| !used.contains(&tailed_name(&base, &ext, n)))?;
                *tail = n + 1;
                let short = tailed_name(&base, &ext, n);
                used.insert(short);
                short
            }
        };
        shorts.push(short);
    }
    Some(shorts)
}

fn tailed_name(base: &[u8], ext: &[u8], n: u32) -> ShortName {
    let tail = format!("~{n}");
    let keep = base.len().min(8 - tail.len());
    let mut with_tail = base[..keep].to_vec();
    with_tail.extend_from_slice(tail.as_bytes());
    pad_short_name(&with_tail, ext)
}

/// The checksum of a short name that its long-name entries carry (fatgen103).
pub fn lfn_checksum(short: &[u8; 11]) -> u8 {
    short
        .iter()
        .fold(0u8, |sum, &b| sum.rotate_right(1).wrapping_add(b))
}

fn put16(buf: &mut [u8], at: usize, value: u16) {
    buf[at..at + 2].copy_from_slice(&value.to_le_bytes());
}

fn put32(buf: &mut [u8], at: usize, value: u32) {
    buf[at..at + 4].copy_from_slice(&value.to_le_bytes());
}

fn short_entry(name: &ShortName, attr: u8, cluster: u32, size: u32) -> [u8; 32] {
    let mut entry = [0u8; 32];
    entry[..11].copy_from_slice(name);
    entry[11] = attr;
    put16(&mut entry, 14, FIXED_TIME); // creation
    put16(&mut entry, 16, FIXED_DATE);
    put16(&mut entry, 18, FIXED_DATE); // last access
    put16(&mut entry, 20, (cluster >> 16) as u16);
    put16(&mut entry, 22, FIXED_TIME); // last write
    put16(&mut entry, 24, FIXED_DATE);
    put16(&mut entry, 26, cluster as u16);
    put32(&mut entry, 28, size);
    entry
}

/// Long-name entries in on-disk order (last part first), before the short entry.
fn long_entries(name: &str, short: &ShortName) -> Vec<[u8; 32]> {
    let units: Vec<u16> = name.encode_utf16().collect();
    let count = units.len().div_ceil(LFN_UNITS_PER_ENTRY);
    let checksum = lfn_checksum(short);
    (1..=count)
        .rev()
        .map(|ordinal| {
            let mut entry = [0u8; 32];
            entry[0] = ordinal as u8 | if ordinal == count { LFN_LAST_ENTRY } else { 0 };
            entry[11] = ATTR_LONG_NAME;
            entry[13] = checksum;
            for (k, &offset) in LFN_UNIT_OFFSETS.iter().enumerate() {
                let i = (ordinal - 1) * LFN_UNITS_PER_ENTRY + k;
                // The name ends with one 0x0000 if it fits, the rest is 0xFFFF.
                let unit = match i.cmp(&units.len()) {
                    std::cmp::Ordering::Less => units[i],
                    std::cmp::Ordering::Equal => 0,
                    std::cmp::Ordering::Greater => 0xFFFF,
                };
                put16(&mut entry, offset, unit);
            }
            entry
        })
        .collect()
}

/// One child in a directory listing.
struct Listed<'a> {
    name: &'a str,
    node: Node,
    short: ShortName,
    long: bool,
}

impl Listed<'_> {
    fn entries(&self) -> u64 {
        let units = if self.long {
            self.name.encode_utf16().count()
        } else {
            0
        };
        1 + units.div_ceil(LFN_UNITS_PER_ENTRY) as u64
    }
}

fn listing<'t>(tree: &'t Tree, dir: usize, has_label: bool) -> Result<Vec<Listed<'t>>, FatError> {
    let too_large = |entries| FatError::DirectoryTooLarge {
        path: tree.path(dir),
        entries,
    };
    let children = &tree.dirs[dir].children;
    if children.len() as u64 > MAX_DIR_ENTRIES {
        return Err(too_large(children.len() as u64));
    }
    let names: Vec<&str> = children.keys().map(String::as_str).collect();
    let shorts = short_names(&names).ok_or_else(|| too_large(children.len() as u64))?;
    let listed: Vec<Listed> = children
        .iter()
        .zip(shorts)
        .map(|((name, node), short)| Listed {
            name,
            node: *node,
            short,
            long: needs_long_name(name),
        })
        .collect();
    let entries = entry_count(dir, has_label, &listed);
    if entries > MAX_DIR_ENTRIES {
        return Err(too_large(entries));
    }
    Ok(listed)
}

/// Entries of a directory: its children's, the label's in the root, `.` and `..` elsewhere.
fn entry_count(dir: usize, has_label: bool, listed: &[Listed]) -> u64 {
    let fixed = if dir == 0 { u64::from(has_label) } else { 2 };
    fixed + listed.iter().map(Listed::entries).sum::<u64>()
}

/// Where every directory and file starts: each is one run of clusters, directories first (the
/// root at cluster 2, then depth-first by name), then non-empty files in path order.
struct Allocation {
    dir_first: Vec<u32>,
    /// 0 for empty files.
    file_first: Vec<u32>,
    /// `(first cluster, cluster count)` in allocation order.
    runs: Vec<(u32, u32)>,
    used_clusters: u32,
    /// Indices of the non-empty files in allocation order.
    file_order: Vec<usize>,
}

impl Allocation {
    fn compute(
        geometry: &Geometry,
        tree: &Tree,
        dir_entries: &[u64],
        files: &[FatFile],
    ) -> Result<Allocation, FatError> {
        let cluster_bytes = geometry.cluster_bytes();
        let dir_order = tree.preorder();
        let mut file_order: Vec<usize> = (0..files.len())
            .filter(|&index| !files[index].data.is_empty())
            .collect();
        file_order.sort_by(|&a, &b| files[a].path.split('/').cmp(files[b].path.split('/')));
        // Even an empty root directory has a cluster.
        let dir_bytes = dir_order
            .iter()
            .map(|&dir| (dir_entries[dir] * DIR_ENTRY_BYTES).max(1));
        let file_bytes = file_order
            .iter()
            .map(|&index| files[index].data.len() as u64);
        let counts: Vec<u64> = dir_bytes
            .chain(file_bytes)
            .map(|bytes| bytes.div_ceil(cluster_bytes))
            .collect();
        let used: u64 = counts.iter().sum();
        if used > u64::from(geometry.clusters) {
            return Err(FatError::NoSpace {
                needed: used * cluster_bytes,
                available: u64::from(geometry.clusters) * cluster_bytes,
            });
        }
        // Every count and cluster number is now below `geometry.clusters + 2`, a u32.
        let mut next = ROOT_CLUSTER;
        let runs: Vec<(u32, u32)> = counts
            .iter()
            .map(|&count| {
                let run = (next, count as u32);
                next += count as u32;
                run
            })
            .collect();
        let mut dir_first = vec![0; tree.dirs.len()];
        for (&dir, &(first, _)) in dir_order.iter().zip(&runs) {
            dir_first[dir] = first;
        }
        let mut file_first = vec![0; files.len()];
        for (&index, &(first, _)) in file_order.iter().zip(&runs[dir_order.len()..]) {
            file_first[index] = first;
        }
        Ok(Allocation {
            dir_first,
            file_first,
            runs,
            used_clusters: used as u32,
            file_order,
        })
    }

    fn first_cluster(&self, node: Node) -> u32 {
        match node {
            Node::Dir(dir) => self.dir_first[dir],
            Node::File(index) => self.file_first[index],
        }
    }
}

/// The entries of directory `dir`, padded with zeros to whole clusters.
fn render_directory(
    tree: &Tree,
    dir: usize,
    listing: &[Listed],
    allocation: &Allocation,
    label: Option<&ShortName>,
    files: &[FatFile],
    cluster_bytes: u64,
) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut push = |entry: [u8; 32]| bytes.extend_from_slice(&entry);
    if dir == 0 {
        if let Some(label) = label {
            push(short_entry(label, ATTR_VOLUME_ID, 0, 0));
        }
    } else {
        let parent = tree.dirs[dir].parent;
        // `..` of a directory in the root points to cluster 0, not to the root's cluster.
        let parent_first = if parent == 0 {
            0
        } else {
            allocation.dir_first[parent]
        };
        push(short_entry(
            &DOT,
            ATTR_DIRECTORY,
            allocation.dir_first[dir],
            0,
        ));
        push(short_entry(&DOT_DOT, ATTR_DIRECTORY, parent_first, 0));
    }
    for child in listing {
        if child.long {
            long_entries(child.name, &child.short)
                .into_iter()
                .for_each(&mut push);
        }
        let (attr, size) = match child.node {
            Node::Dir(_) => (ATTR_DIRECTORY, 0),
            // Sizes were checked to fit in u32 by `Tree::build`.
            Node::File(index) => (ATTR_ARCHIVE, files[index].data.len() as u32),
        };
        push(short_entry(
            &child.short,
            attr,
            allocation.first_cluster(child.node),
            size,
        ));
    }
    let clusters = (bytes.len() as u64).div_ceil(cluster_bytes).max(1);
    bytes.resize((clusters * cluster_bytes) as usize, 0);
    bytes
}

/// Everything about the image but the file data, computed before any writing.
struct Plan<'a> {
    geometry: Geometry,
    volume_id: u32,
    label: Option<ShortName>,
    /// Cluster runs `(first, count)`, contiguous from cluster 2.
    runs: Vec<(u32, u32)>,
    used_clusters: u32,
    /// Directory contents (whole clusters) with their first cluster.
    dirs: Vec<(u32, Vec<u8>)>,
    /// Non-empty files with their first cluster.
    files: Vec<(u32, &'a [u8])>,
}

impl<'a> Plan<'a> {
    fn compute(params: &FatParams, files: &'a [FatFile]) -> Result<Plan<'a>, FatError> {
        let geometry = Geometry::compute(params.size_bytes)?;
        let label = label_name(params.label.as_deref())?;
        let tree = Tree::build(files)?;
        let listings = (0..tree.dirs.len())
            .map(|dir| listing(&tree, dir, label.is_some()))
            .collect::<Result<Vec<_>, _>>()?;
        let dir_entries: Vec<u64> = (0..tree.dirs.len())
            .map(|dir| entry_count(dir, label.is_some(), &listings[dir]))
            .collect();
        let allocation = Allocation::compute(&geometry, &tree, &dir_entries, files)?;
        let dirs = tree
            .preorder()
            .into_iter()
            .map(|dir| {
                let bytes = render_directory(
                    &tree,
                    dir,
                    &listings[dir],
                    &allocation,
                    label.as_ref(),
                    files,
                    geometry.cluster_bytes(),
                );
                (allocation.dir_first[dir], bytes)
            })
            .collect();
        let files = allocation
            .file_order
            .iter()
            .map(|&index| (allocation.file_first[index], files[index].data.as_slice()))
            .collect();
        Ok(Plan {
            geometry,
            volume_id: params.volume_id,
            label,
            used_clusters: allocation.used_clusters,
            runs: allocation.runs,
            dirs,
            files,
        })
    }

    fn boot_sector(&self) -> [u8; 512] {
        let g = &self.geometry;
        let mut sector = [0u8; 512];
        sector[..3].copy_from_slice(&JUMP);
        sector[3..11].copy_from_slice(OEM_NAME);
        put16(&mut sector, 11, SECTOR_BYTES as u16);
        sector[13] = g.sectors_per_cluster as u8;
        put16(&mut sector, 14, RESERVED_SECTORS as u16);
        sector[16] = NUM_FATS as u8;
        // 17..21 (root entries, 16-bit sector count) and 22..24 (16-bit FAT size) are 0 on FAT32.
        sector[21] = MEDIA_FIXED;
        put16(&mut sector, 24, SECTORS_PER_TRACK);
        put16(&mut sector, 26, HEADS);
        // 28..32: hidden sectors, 0.
        put32(&mut sector, 32, g.total_sectors);
        put32(&mut sector, 36, g.fat_sectors);
        // 40..44: flags 0 (all FATs mirrored), version 0.0.
        put32(&mut sector, 44, ROOT_CLUSTER);
        put16(&mut sector, 48, FSINFO_SECTOR);
        put16(&mut sector, 50, BACKUP_BOOT_SECTOR);
        sector[64] = DRIVE_NUMBER;
        sector[66] = EXTENDED_BOOT_SIGNATURE;
        put32(&mut sector, 67, self.volume_id);
        sector[71..82].copy_from_slice(self.label.as_ref().unwrap_or(&NO_LABEL));
        sector[82..90].copy_from_slice(FS_TYPE);
        sector[BOOT_CODE_OFFSET..BOOT_CODE_OFFSET + BOOT_CODE.len()].copy_from_slice(&BOOT_CODE);
        sector[510..].copy_from_slice(&[0x55, 0xAA]);
        sector
    }

    fn free_clusters(&self) -> u32 {
        self.geometry.clusters - self.used_clusters
    }

    fn fsinfo_sector(&self) -> [u8; 512] {
        let mut sector = [0u8; 512];
        put32(&mut sector, 0, FSINFO_LEAD_SIGNATURE);
        put32(&mut sector, 484, FSINFO_STRUCT_SIGNATURE);
        put32(&mut sector, 488, self.free_clusters());
        let next_free = if self.free_clusters() > 0 {
            ROOT_CLUSTER + self.used_clusters
        } else {
            FREE_UNKNOWN
        };
        put32(&mut sector, 492, next_free);
        put32(&mut sector, 508, FSINFO_TRAIL_SIGNATURE);
        sector
    }

    fn reserved_area(&self) -> Vec<u8> {
        let mut area = vec![0u8; RESERVED_SECTORS as usize * SECTOR_BYTES as usize];
        for boot in [0, usize::from(BACKUP_BOOT_SECTOR)] {
            let at = boot * SECTOR_BYTES as usize;
            area[at..at + 512].copy_from_slice(&self.boot_sector());
            area[at + 512..at + 1024].copy_from_slice(&self.fsinfo_sector());
        }
        area
    }

    /// The FAT up to the last used cluster; the rest is zero (free).
    fn fat_prefix(&self) -> Vec<u8> {
        let mut entries = vec![FAT_ENTRY_0, FAT_ENTRY_1];
        for &(first, count) in &self.runs {
            entries.extend(first + 1..first + count);
            entries.push(END_OF_CHAIN);
        }
        entries
            .iter()
            .flat_map(|entry| entry.to_le_bytes())
            .collect()
    }

    fn write_to<W: Write + Seek>(&self, out: &mut W) -> Result<(), FatError> {
        let g = &self.geometry;
        // Extend to the full size first: the last sector may belong to a file.
        out.seek(SeekFrom::Start(
            u64::from(g.total_sectors) * SECTOR_BYTES - 1,
        ))?;
        out.write_all(&[0])?;
        out.seek(SeekFrom::Start(0))?;
        out.write_all(&self.reserved_area())?;
        let fat = self.fat_prefix();
        let fat_bytes = u64::from(g.fat_sectors) * SECTOR_BYTES;
        for copy in 0..NUM_FATS {
            out.seek(SeekFrom::Start(g.fat_offset(copy)))?;
            out.write_all(&fat)?;
            write_zeros(out, fat_bytes - fat.len() as u64)?;
        }
        for (first, bytes) in &self.dirs {
            out.seek(SeekFrom::Start(g.cluster_offset(*first)))?;
            out.write_all(bytes)?;
        }
        for (first, data) in &self.files {
            out.seek(SeekFrom::Start(g.cluster_offset(*first)))?;
            out.write_all(data)?;
            let tail = data.len() as u64 % g.cluster_bytes();
            if tail != 0 {
                write_zeros(out, g.cluster_bytes() - tail)?;
            }
        }
        out.flush()?;
        Ok(())
    }
}

fn write_zeros<W: Write>(out: &mut W, mut len: u64) -> io::Result<()> {
    static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];
    while len > 0 {
        let chunk = len.min(ZEROS.len() as u64) as usize;
        out.write_all(&ZEROS[..chunk])?;
        len -= chunk as u64;
    }
    Ok(())
}

fn invalid(reason: impl Into<String>) -> FatError {
    FatError::Invalid {
        reason: reason.into(),
    }
}

fn get16(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([bytes[at], bytes[at + 1]])
}

fn get32(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// Reads back every file of a FAT32 filesystem, in path order; empty directories are not listed.
///
/// Accepts what firmware, Linux or mtools make of an image after [`build`] (systemd-boot renames
/// entries through the firmware's driver): deleted entries, fragmented chains, NT case bits.
/// Short names are decoded as Latin-1. A damaged image gives [`FatError::Invalid`].
pub fn read_files(image: &[u8]) -> Result<Vec<FatFile>, FatError> {
    let volume = Volume::parse(image)?;
    let data_bytes = u64::from(volume.clusters) * volume.cluster_bytes as u64;
    let mut total_bytes = 0u64;
    let mut files = Vec::new();
    let mut seen_dirs = BTreeSet::new();
    let mut stack = vec![(String::new(), volume.root_cluster)];
    while let Some((dir, first)) = stack.pop() {
        if !seen_dirs.insert(first) {
            return Err(invalid(format!("directory {dir:?} appears twice")));
        }
        for entry in parse_directory(&volume.read_directory(first)?) {
            if entry.is_dot() || entry.attr() & ATTR_VOLUME_ID != 0 {
                continue;
            }
            if entry.name.contains(['/', '\0']) {
                return Err(invalid(format!("bad name {:?} in {dir:?}", entry.name)));
            }
            let path = match dir.as_str() {
                "" => entry.name.clone(),
                _ => format!("{dir}/{}", entry.name),
            };
            if entry.attr() & ATTR_DIRECTORY != 0 {
                stack.push((path, entry.first_cluster()));
                continue;
            }
            // Cross-linked files could otherwise make the output far larger than the image.
            total_bytes += u64::from(entry.size());
            if total_bytes > data_bytes {
                return Err(invalid("files hold more bytes than the data area"));
            }
            let data = match entry.size() {
                0 => Vec::new(),
                size => volume.read_file(entry.first_cluster(), size)?,
            };
            files.push(FatFile { path, data });
        }
    }
    files.sort_by(|a, b| a.path.split('/').cmp(b.path.split('/')));
    Ok(files)
}

/// The regions of a FAT32 filesystem found from its boot sector.
struct Volume<'a> {
    image: &'a [u8],
    cluster_bytes: usize,
    data_start: usize,
    /// The active FAT, `clusters + 2` entries.
    fat: &'a [u8],
    clusters: u32,
    root_cluster: u32,
}

impl<'a> Volume<'a> {
    fn parse(image: &'a [u8]) -> Result<Volume<'a>, FatError> {
        let boot = image
            .get(..512)
            .ok_or_else(|| invalid("shorter than a boot sector"))?;
        if boot[510..] != [0x55, 0xAA] {
            return Err(invalid("no boot sector signature"));
        }
        let sector_bytes = usize::from(get16(boot, 11));
        let sectors_per_cluster = usize::from(boot[13]);
        let reserved = usize::from(get16(boot, 14));
        let fats = usize::from(boot[16]);
        if ![512, 1024, 2048, 4096].contains(&sector_bytes)
            || !sectors_per_cluster.is_power_of_two()
            || reserved == 0
            || fats == 0
        {
            return Err(invalid("bad BIOS parameter block"));
        }
        if get16(boot, 17) != 0 || get16(boot, 22) != 0 {
            return Err(invalid("FAT12 or FAT16, not FAT32"));
        }
        let total_sectors = match get16(boot, 19) {
            0 => get32(boot, 32) as usize,
            small => usize::from(small),
        };
        let fat_sectors = get32(boot, 36) as usize;
        let flags = get16(boot, 40);
        // Bit 7: only the FAT numbered in bits 0-3 is active (no mirroring).
        let active = if flags & 0x80 != 0 {
            usize::from(flags & 0x0F)
        } else {
            0
        };
        let metadata_sectors = reserved + fats * fat_sectors;
        let data_sectors = total_sectors
            .checked_sub(metadata_sectors)
            .ok_or_else(|| invalid("FATs larger than the filesystem"))?;
        let clusters = u32::try_from(data_sectors / sectors_per_cluster)
            .ok()
            .filter(|&c| c > 0 && c < 0x0FFF_FFF5)
            .ok_or_else(|| invalid("no valid cluster count"))?;
        let fat_len = (clusters as usize + 2) * 4;
        if active >= fats || fat_len > fat_sectors * sector_bytes {
            return Err(invalid("FAT too small for the clusters"));
        }
        let fat_start = (reserved + active * fat_sectors) * sector_bytes;
        let fat = image
            .get(fat_start..fat_start + fat_len)
            .ok_or_else(|| invalid("image shorter than its FAT"))?;
        Ok(Volume {
            image,
            cluster_bytes: sectors_per_cluster * sector_bytes,
            data_start: metadata_sectors * sector_bytes,
            fat,
            clusters,
            root_cluster: get32(boot, 44),
        })
    }

    /// The FAT entry of `cluster`; a cluster outside the FAT reads as bad.
    fn next(&self, cluster: u32) -> u32 {
        let at = cluster as usize * 4;
        self.fat
            .get(at..at + 4)
            .map_or(BAD_CLUSTER, |entry| get32(entry, 0) & 0x0FFF_FFFF)
    }

    fn cluster(&self, cluster: u32) -> Result<&'a [u8], FatError> {
        if !(2..self.clusters + 2).contains(&cluster) {
            return Err(invalid(format!("cluster {cluster} out of range")));
        }
        let start = self.data_start + (cluster as usize - 2) * self.cluster_bytes;
        self.image
            .get(start..start + self.cluster_bytes)
            .ok_or_else(|| invalid(format!("cluster {cluster} beyond the end of the image")))
    }

    /// The clusters of the directory starting at `first`, at most 2 MiB (65536 entries).
    fn read_directory(&self, first: u32) -> Result<Vec<u8>, FatError> {
        let mut data = Vec::new();
        let mut cluster = Some(first);
        while let Some(current) = cluster {
            if data.len() as u64 >= MAX_DIR_ENTRIES * DIR_ENTRY_BYTES {
                return Err(invalid(format!(
                    "directory at cluster {first} passes 2 MiB"
                )));
            }
            data.extend_from_slice(self.cluster(current)?);
            cluster = self.follow(first, current)?;
        }
        Ok(data)
    }

    /// The first `size` bytes of the chain starting at `first`; `size` is not 0.
    fn read_file(&self, first: u32, size: u32) -> Result<Vec<u8>, FatError> {
        let size = size as usize;
        let mut data = Vec::new();
        let mut cluster = first;
        loop {
            data.extend_from_slice(self.cluster(cluster)?);
            if data.len() >= size {
                data.truncate(size);
                return Ok(data);
            }
            cluster = self
                .follow(first, cluster)?
                .ok_or_else(|| invalid(format!("file at cluster {first} ends early")))?;
        }
    }

    /// The cluster after `cluster` in the chain from `first`, `None` at its end.
    fn follow(&self, first: u32, cluster: u32) -> Result<Option<u32>, FatError> {
        match self.next(cluster) {
            0x0FFF_FFF8.. => Ok(None),
            next @ (0 | 1 | BAD_CLUSTER) => Err(invalid(format!(
                "chain from cluster {first} reaches FAT entry {next:#x}"
            ))),
            next => Ok(Some(next)),
        }
    }
}

/// A live entry of a directory, with its long name if it has a valid one.
struct DirEntry {
    name: String,
    raw: [u8; 32],
}

impl DirEntry {
    fn attr(&self) -> u8 {
        self.raw[11]
    }

    fn first_cluster(&self) -> u32 {
        u32::from(get16(&self.raw, 20)) << 16 | u32::from(get16(&self.raw, 26))
    }

    fn size(&self) -> u32 {
        get32(&self.raw, 28)
    }

    fn is_dot(&self) -> bool {
        self.raw[..11] == DOT || self.raw[..11] == DOT_DOT
    }
}

/// A long name being collected, from its last part (stored first) down to part 1.
struct LongName {
    units: Vec<u16>,
    next_ordinal: u8,
    checksum: u8,
}

/// Live entries of a directory's clusters; long names whose parts or checksum do not match
/// their short entry are ignored, as fatgen103 asks.
fn parse_directory(bytes: &[u8]) -> Vec<DirEntry> {
    let mut entries = Vec::new();
    let mut long: Option<LongName> = None;
    for chunk in bytes.chunks_exact(32) {
        let mut raw = [0u8; 32];
        raw.copy_from_slice(chunk);
        match raw[0] {
            0x00 => break,
            0xE5 => long = None,
            _ if raw[11] & 0x3F == ATTR_LONG_NAME => long = continue_long_name(long.take(), &raw),
            _ => {
                let short: ShortName = raw[..11].try_into().unwrap_or(NO_LABEL);
                let name = match long.take() {
                    Some(long)
                        if long.next_ordinal == 0 && long.checksum == lfn_checksum(&short) =>
                    {
                        String::from_utf16(&long.units).ok()
                    }
                    _ => None,
                };
                let name = name.unwrap_or_else(|| decode_short_name(&short, raw[12]));
                entries.push(DirEntry { name, raw });
            }
        }
    }
    entries
}

fn continue_long_name(current: Option<LongName>, raw: &[u8; 32]) -> Option<LongName> {
    let ordinal = raw[0] & 0x3F;
    let checksum = raw[13];
    let units = LFN_UNIT_OFFSETS.map(|offset| get16(raw, offset));
    if ordinal == 0 || ordinal > 20 {
        return None;
    }
    if raw[0] & LFN_LAST_ENTRY != 0 {
        let end = units.iter().position(|&u| u == 0).unwrap_or(units.len());
        return Some(LongName {
            units: units[..end].to_vec(),
            next_ordinal: ordinal - 1,
            checksum,
        });
    }
    let mut long = current?;
    if ordinal != long.next_ordinal || checksum != long.checksum {
        return None;
    }
    long.units.splice(0..0, units);
    long.next_ordinal -= 1;
    Some(long)
}

/// `BASE    EXT` as `BASE.EXT`, lowercased per the NT case bits (0x08 base, 0x10 extension).
fn decode_short_name(short: &ShortName, case_bits: u8) -> String {
    let decode = |bytes: &[u8], lower: bool| -> String {
        let text: String = bytes
            .iter()
            .map(|&b| char::from(b))
            .map(|c| if lower { c.to_ascii_lowercase() } else { c })
            .collect();
        text.trim_end_matches(' ').to_string()
    };
    let mut bytes = *short;
    if bytes[0] == 0x05 {
        bytes[0] = 0xE5; // a name really starting with 0xE5 (fatgen103)
    }
    let base = decode(&bytes[..8], case_bits & 0x08 != 0);
    let ext = decode(&bytes[8..], case_bits & 0x10 != 0);
    if ext.is_empty() {
        base
    } else {
        format!("{base}.{ext}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use proptest::strategy::ValueTree;
    use std::path::Path;
    use std::process::{Command, Output};

    const MIB: u64 = 1 << 20;
    const ESP_SIZE_BYTES: u64 = 128 * MIB;
    const SETUP_HINT: &str = "install the host tools with scripts/setup-host.sh";

    fn params(size_bytes: u64, label: Option<&str>) -> FatParams {
        FatParams {
            size_bytes,
            volume_id: 0x1234_ABCD,
            label: label.map(str::to_string),
        }
    }

    /// Reproducible pseudo-random bytes (xorshift64*).
    fn noise(seed: u64, len: usize) -> Vec<u8> {
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..len)
            .map(|_| {
                state ^= state >> 12;
                state ^= state << 25;
                state ^= state >> 27;
                (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
            })
            .collect()
    }

    /// What an independent reader finds in an image.
    #[derive(Default, PartialEq, Eq)]
    struct Contents {
        label: Option<String>,
        dirs: BTreeSet<String>,
        files: BTreeMap<String, Vec<u8>>,
    }

    impl std::fmt::Debug for Contents {
        /// Sizes and a digest instead of whole files.
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            use std::hash::{Hash, Hasher};
            let digest = |data: &Vec<u8>| {
                let mut hasher = std::collections::hash_map::DefaultHasher::new();
                data.hash(&mut hasher);
                format!("{} bytes, hash {:016x}", data.len(), hasher.finish())
            };
            let files: BTreeMap<&String, String> = self
                .files
                .iter()
                .map(|(path, data)| (path, digest(data)))
                .collect();
            f.debug_struct("Contents")
                .field("label", &self.label)
                .field("dirs", &self.dirs)
                .field("files", &files)
                .finish()
        }
    }

    /// The contents `build` should produce for `files`.
    fn expected(files: &[FatFile], label: Option<&str>) -> Contents {
        let mut contents = Contents {
            label: label.map(str::to_string),
            ..Contents::default()
        };
        for file in files {
            let mut prefix = file.path.as_str();
            while let Some((dir, _)) = prefix.rsplit_once('/') {
                contents.dirs.insert(dir.to_string());
                prefix = dir;
            }
            contents.files.insert(file.path.clone(), file.data.clone());
        }
        contents
    }

    /// `files` in the order `read_files` returns them.
    fn sorted(files: &[FatFile]) -> Vec<FatFile> {
        let mut files = files.to_vec();
        files.sort_by(|a, b| a.path.split('/').cmp(b.path.split('/')));
        files
    }

    /// fatgen103's checksum, written as the document does, independent of `lfn_checksum`.
    fn reference_checksum(short: &[u8]) -> u8 {
        let mut sum: u8 = 0;
        for &b in short {
            let high = if sum & 1 != 0 { 0x80u8 } else { 0 };
            sum = high.wrapping_add(sum >> 1).wrapping_add(b);
        }
        sum
    }

    /// Reads an image back, checking every promise of `build` on the way; panics on a broken one.
    fn read_image(image: &[u8]) -> Contents {
        check_reserved_area_and_fats(image);
        let volume = Volume::parse(image).unwrap();
        let mut checker = Checker {
            used: vec![false; volume.clusters as usize + 2],
            volume,
            contents: Contents::default(),
        };
        // (path, first cluster, what `..` must hold)
        let mut stack = vec![(String::new(), ROOT_CLUSTER, 0)];
        while let Some((path, first, dot_dot)) = stack.pop() {
            stack.extend(checker.directory(&path, first, dot_dot));
        }
        checker.check_free_clusters(image);
        checker.contents
    }

    fn check_reserved_area_and_fats(image: &[u8]) {
        let boot = &image[..512];
        assert_eq!((&boot[..3], &boot[510..]), (&JUMP[..], &[0x55, 0xAA][..]));
        assert_eq!((get16(boot, 11), get16(boot, 14), boot[16]), (512, 32, 2));
        assert_eq!(
            (get16(boot, 17), get16(boot, 19), get16(boot, 22)),
            (0, 0, 0)
        );
        assert_eq!((boot[21], get32(boot, 28), get32(boot, 44)), (0xF8, 0, 2));
        assert_eq!((get16(boot, 48), get16(boot, 50), boot[66]), (1, 6, 0x29));
        assert_eq!(&boot[82..90], b"FAT32   ");
        assert_eq!(get32(boot, 32) as usize * 512, image.len());
        assert_eq!(image[..1024], image[6 * 512..8 * 512], "backup boot sector");
        let info = &image[512..1024];
        assert_eq!(
            (get32(info, 0), get32(info, 484)),
            (0x4161_5252, 0x6141_7272)
        );
        assert_eq!(info[508..], [0, 0, 0x55, 0xAA]);
        let g = Geometry::compute(image.len() as u64).unwrap();
        assert_eq!(
            (u32::from(boot[13]), get32(boot, 36)),
            (g.sectors_per_cluster, g.fat_sectors)
        );
        assert!(u64::from(g.clusters) >= MIN_CLUSTERS);
        let fat_bytes = g.fat_sectors as usize * 512;
        let fats = &image[32 * 512..][..2 * fat_bytes];
        assert!(fats[..fat_bytes] == fats[fat_bytes..], "FAT copies differ");
        assert_eq!((get32(fats, 0), get32(fats, 4)), (0x0FFF_FFF8, 0x0FFF_FFFF));
    }

    struct Checker<'a> {
        volume: Volume<'a>,
        used: Vec<bool>,
        contents: Contents,
    }

    impl Checker<'_> {
        /// The clusters of a chain, which must be contiguous and cross no other chain.
        fn chain(&mut self, first: u32) -> Vec<u8> {
            let mut data = Vec::new();
            let mut cluster = first;
            loop {
                assert!(
                    !self.used[cluster as usize],
                    "cluster {cluster} in two chains"
                );
                self.used[cluster as usize] = true;
                data.extend_from_slice(self.volume.cluster(cluster).unwrap());
                match self.volume.next(cluster) {
                    0x0FFF_FFF8.. => return data,
                    next => assert_eq!(next, cluster + 1, "chain of {first} not contiguous"),
                }
                cluster += 1;
            }
        }

        /// Checks directory `path` and returns its subdirectories.
        fn directory(&mut self, path: &str, first: u32, dot_dot: u32) -> Vec<(String, u32, u32)> {
            let bytes = self.chain(first);
            let end = bytes
                .chunks(32)
                .position(|e| e[0] == 0)
                .unwrap_or(bytes.len() / 32);
            assert!(
                bytes[end * 32..].iter().all(|&b| b == 0),
                "{path}: bytes after the end"
            );
            assert!(
                bytes.chunks(32).all(|e| e[0] != 0xE5),
                "{path}: deleted entry"
            );
            let mut subdirs = Vec::new();
            let mut names = Vec::new();
            let mut shorts = BTreeSet::new();
            for (index, entry) in parse_directory(&bytes).into_iter().enumerate() {
                let raw = &entry.raw;
                let times = [14, 22].map(|at| get16(raw, at));
                let dates = [16, 18, 24].map(|at| get16(raw, at));
                assert_eq!((times, dates), ([FIXED_TIME; 2], [FIXED_DATE; 3]), "{path}");
                let (attr, cluster, size) = (entry.attr(), entry.first_cluster(), entry.size());
                if path.is_empty() && attr == ATTR_VOLUME_ID {
                    assert_eq!((index, cluster, size), (0, 0, 0), "label entry");
                    let label = String::from_utf8_lossy(&raw[..11]).trim_end().to_string();
                    self.contents.label = Some(label);
                    continue;
                }
                if !path.is_empty() && index < 2 {
                    let want = [(DOT, first), (DOT_DOT, dot_dot)][index];
                    assert_eq!(
                        (raw[..11].try_into().unwrap(), cluster),
                        want,
                        "{path}: . .."
                    );
                    assert_eq!(attr, ATTR_DIRECTORY);
                    continue;
                }
                let short = &raw[..11];
                assert!(
                    short[0] != b' ' && short.iter().all(|&b| b == b' ' || is_short_name_char(b))
                );
                assert!(
                    shorts.insert(short.to_vec()),
                    "{path}: short name {short:?} twice"
                );
                let full = match path {
                    "" => entry.name.clone(),
                    _ => format!("{path}/{}", entry.name),
                };
                names.push(entry.name);
                if attr == ATTR_DIRECTORY {
                    assert_eq!(size, 0);
                    self.contents.dirs.insert(full.clone());
                    // `..` in a directory of the root holds 0.
                    subdirs.push((full, cluster, if path.is_empty() { 0 } else { first }));
                    continue;
                }
                assert_eq!(attr, ATTR_ARCHIVE, "{full}: attributes");
                let data = if cluster == 0 {
                    assert_eq!(size, 0);
                    Vec::new()
                } else {
                    let mut data = self.chain(cluster);
                    let size = size as usize;
                    let cluster_bytes = self.volume.cluster_bytes;
                    assert_eq!(
                        data.len(),
                        size.div_ceil(cluster_bytes) * cluster_bytes,
                        "{full}"
                    );
                    assert!(
                        data[size..].iter().all(|&b| b == 0),
                        "{full}: slack not zero"
                    );
                    data.truncate(size);
                    data
                };
                self.contents.files.insert(full, data);
            }
            assert!(
                names.windows(2).all(|w| w[0] < w[1]),
                "{path}: unsorted {names:?}"
            );
            subdirs.reverse();
            subdirs
        }

        fn check_free_clusters(&self, image: &[u8]) {
            let free: Vec<u32> = (2..self.volume.clusters + 2)
                .filter(|&cluster| {
                    let allocated = self.volume.next(cluster) != 0;
                    assert_eq!(allocated, self.used[cluster as usize], "cluster {cluster}");
                    !allocated
                })
                .collect();
            let info = &image[512..1024];
            assert_eq!(get32(info, 488) as usize, free.len(), "FSInfo free count");
            let next_free = free.first().copied().unwrap_or(0xFFFF_FFFF);
            assert_eq!(get32(info, 492), next_free, "FSInfo next free");
        }
    }

    /// Runs a host tool; a missing tool fails the test with the way to install it.
    fn run(command: &mut Command) -> Output {
        command
            .env("MTOOLS_SKIP_CHECK", "1")
            .env("LC_ALL", "C.UTF-8") // mtools prints non-ASCII names in the locale's charset
            .output()
            .unwrap_or_else(|e| panic!("running {command:?}: {e} ({SETUP_HINT})"))
    }

    fn fsck_fat(image: &Path) -> Output {
        run(Command::new("fsck.fat").arg("-n").arg("-v").arg(image))
    }

    /// Lines of `fsck.fat -n -v` output that are not the summary it always prints.
    fn fsck_complaints(output: &str) -> Vec<&str> {
        const EXACT: &[&str] = &[
            "Checking we can access the last sector of the filesystem",
            "Boot sector contents:",
            "Checking for unused clusters.",
            "Checking free cluster summary.",
        ];
        const PREFIXES: &[&str] = &[
            "fsck.fat ",
            "System ID ",
            "Media byte ",
            "First FAT starts at byte ",
            "Root directory start at cluster ",
            "Data area starts at byte ",
            "Volume ID is ",
            "Volume label is ",
        ];
        const SUFFIXES: &[&str] = &[
            " bytes per logical sector",
            " bytes per cluster",
            " reserved sectors",
            " FATs, 32 bit entries",
            " hidden sectors",
            " sectors total",
        ];
        output
            .lines()
            .map(str::trim)
            .filter(|line| {
                !(line.is_empty()
                    || EXACT.contains(line)
                    || PREFIXES.iter().any(|p| line.starts_with(p))
                    || SUFFIXES.iter().any(|s| line.ends_with(s))
                    || line.contains(" bytes per FAT (= ")
                    || line.contains(" data clusters (")
                    || line.contains(" sectors/track, ")
                    || (line.contains(" files, ") && line.ends_with(" clusters")))
            })
            .collect()
    }

    /// Asserts that fsck.fat finds nothing to complain about.
    fn assert_fsck_clean(image: &Path) {
        let output = fsck_fat(image);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(output.status.success(), "fsck.fat failed:\n{text}");
        assert_eq!(
            fsck_complaints(&text),
            Vec::<&str>::new(),
            "fsck.fat output:\n{text}"
        );
    }

    /// Paths `mdir -/ -b` lists: files, and directories with a trailing '/'.
    fn parse_mdir_bare(output: &str) -> BTreeSet<String> {
        output
            .lines()
            .filter_map(|line| line.strip_prefix("::/"))
            .map(str::to_string)
            .collect()
    }

    /// Checks an image with the host's fsck.fat and mtools against what it should contain.
    fn check_with_host_tools(image: &[u8], want: &Contents) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("esp.img");
        std::fs::write(&path, image).unwrap();
        assert_fsck_clean(&path);

        let listing = run(Command::new("mdir")
            .args(["-/", "-b", "-i"])
            .arg(&path)
            .arg("::"));
        assert!(listing.status.success(), "{listing:?}");
        let mut want_paths: BTreeSet<String> = want.files.keys().cloned().collect();
        want_paths.extend(want.dirs.iter().map(|d| format!("{d}/")));
        assert_eq!(
            parse_mdir_bare(&String::from_utf8_lossy(&listing.stdout)),
            want_paths
        );

        let label = run(Command::new("mdir").arg("-i").arg(&path).arg("::"));
        let label_line = match &want.label {
            Some(label) => format!("Volume in drive : is {label}"),
            None => "Volume in drive : has no label".to_string(),
        };
        assert!(
            String::from_utf8_lossy(&label.stdout).contains(&label_line),
            "{label:?}"
        );

        for (index, (name, data)) in want.files.iter().enumerate() {
            let copy = dir.path().join(format!("copy-{index}"));
            let output = run(Command::new("mcopy")
                .arg("-n")
                .arg("-i")
                .arg(&path)
                .arg(format!("::/{name}"))
                .arg(&copy));
            assert!(output.status.success(), "mcopy {name}: {output:?}");
            assert!(
                std::fs::read(&copy).unwrap() == *data,
                "mcopy {name}: other bytes"
            );
            if data.len() < 4096 {
                let output = run(Command::new("mtype")
                    .arg("-i")
                    .arg(&path)
                    .arg(format!("::/{name}")));
                assert!(
                    output.status.success() && output.stdout == *data,
                    "mtype {name}"
                );
            }
        }
    }

    fn realistic_esp() -> Vec<FatFile> {
        let long_name: String = "Long-Name_with+plus.and.dots ".repeat(7)[..199].to_string() + "x";
        vec![
            FatFile::new("EFI/BOOT/BOOTX64.EFI", noise(1, 140 * 1024)),
            FatFile::new("loader/loader.conf", "timeout 3\neditor no\n"),
            FatFile::new(
                "loader/entries/minimal-1.0.0-usr-a+3-0.conf",
                "title Minimal 1.0.0 (usr-a)\nlinux /minimal/1.0.0/vmlinuz\n",
            ),
            FatFile::new(
                "loader/entries/minimal-0.9.0-usr-b.conf",
                "title Minimal 0.9.0\n",
            ),
            FatFile::new("minimal/1.0.0/vmlinuz", noise(2, 14 * MIB as usize)),
            FatFile::new("minimal/1.0.0/initrd.img", noise(3, 3 * MIB as usize + 17)),
            FatFile::new("loader/random-seed", Vec::new()),
            FatFile::new(
                "deep/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q/r/s/t/leaf.txt",
                "leaf\n",
            ),
            FatFile::new(format!("long/{long_name}"), "long\n"),
            FatFile::new("collide/longfilename1.txt", "1"),
            FatFile::new("collide/longfilename2.txt", "2"),
            FatFile::new("collide/LONGFI~1.TXT", "literal"),
            FatFile::new("collide/Mixed Case.Name", "mixed"),
            FatFile::new("collide/gr\u{fc}\u{df}e.txt", "non-ASCII"),
        ]
    }

    #[test]
    fn realistic_esp_passes_fsck_and_mtools() {
        let files = realistic_esp();
        let image = build(&params(ESP_SIZE_BYTES, Some("EFI-SYSTEM")), &files).unwrap();
        assert_eq!(image.len() as u64, ESP_SIZE_BYTES);
        let want = expected(&files, Some("EFI-SYSTEM"));
        assert_eq!(read_image(&image), want);
        assert!(read_files(&image).unwrap() == sorted(&files));
        check_with_host_tools(&image, &want);
    }

    #[test]
    fn unlabeled_esp_with_larger_clusters_passes_fsck_and_mtools() {
        let files = realistic_esp();
        let image = build(&params(300 * MIB, None), &files).unwrap();
        assert_eq!(image[13], 8, "sectors per cluster above 260 MiB");
        assert_eq!(&image[71..82], b"NO NAME    ");
        let want = expected(&files, None);
        assert_eq!(read_image(&image), want);
        check_with_host_tools(&image, &want);
    }

    #[test]
    fn output_depends_only_on_the_file_set() {
        let files = realistic_esp();
        let mut reversed = files.clone();
        reversed.reverse();
        let p = params(64 * MIB, Some("ESP"));
        let first = build(&p, &files).unwrap();
        assert!(first == build(&p, &files).unwrap());
        assert!(first == build(&p, &reversed).unwrap());
    }

    #[test]
    fn write_to_sparse_file_matches_build() {
        let files = realistic_esp();
        let p = params(64 * MIB, Some("ESP"));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("esp.img");
        let mut file = std::fs::File::create(&path).unwrap();
        write(&p, &files, &mut file).unwrap();
        drop(file);
        assert!(std::fs::read(&path).unwrap() == build(&p, &files).unwrap());
    }

    #[test]
    fn lfn_checksum_matches_mtools() {
        // mtools 4.0.32 `mcopy loader.conf` wrote LOADER~1.CON with checksum 0xB6.
        assert_eq!(lfn_checksum(b"LOADER~1CON"), 0xB6);
        assert_eq!(
            lfn_checksum(b"VMLINUZ    "),
            reference_checksum(b"VMLINUZ    ")
        );
    }

    #[test]
    fn long_entries_layout() {
        // 13 units exactly: no terminator, no padding; 14 units: terminator then 0xFFFF.
        let short = *b"ABCDEF~1TXT";
        let exact = long_entries("abcdefghijklm", &short);
        assert_eq!(exact.len(), 1);
        assert_eq!(exact[0][0], 0x41);
        assert_eq!(get16(&exact[0], 30), u16::from(b'm'));
        let longer = long_entries("abcdefghijklmn", &short);
        assert_eq!(longer.len(), 2);
        assert_eq!((longer[0][0], longer[1][0]), (0x42, 0x01));
        assert_eq!(get16(&longer[0], 1), u16::from(b'n'));
        assert_eq!(get16(&longer[0], 3), 0);
        assert_eq!(get16(&longer[0], 5), 0xFFFF);
        assert_eq!(get16(&longer[0], 30), 0xFFFF);
        assert!(longer
            .iter()
            .all(|e| e[11] == 0x0F && e[13] == lfn_checksum(&short)));
    }

    #[test]
    fn short_name_rule() {
        // (name alone in a directory, short name, needs long-name entries)
        let cases: &[(&str, &[u8; 11], bool)] = &[
            ("EFI", b"EFI        ", false),
            ("BOOTX64.EFI", b"BOOTX64 EFI", false),
            ("FOO~1.TXT", b"FOO~1   TXT", false),
            ("vmlinuz", b"VMLINUZ    ", true),
            ("initrd.img", b"INITRD  IMG", true),
            ("Makefile", b"MAKEFILE   ", true),
            ("loader.conf", b"LOADER~1CON", true),
            ("minimal-1.0.0-usr-a+3-0.conf", b"MINIMA~1CON", true),
            ("1.0.0", b"10~1    0  ", true),
            (".hidden", b"HIDDEN~1   ", true),
            ("a+b", b"A_B~1      ", true),
            ("two words.txt", b"TWOWOR~1TXT", true),
            ("\u{fc}ber.efi", b"_BER~1  EFI", true),
        ];
        for &(name, short, long) in cases {
            assert_eq!(short_names(&[name]), Some(vec![*short]), "{name}");
            assert_eq!(needs_long_name(name), long, "{name}");
        }
        // A generated name skips short names taken by exact ones, wherever they sort.
        let names = ["LONGFI~1.TXT", "longfilename1.txt", "longfilename2.txt"];
        let want = [*b"LONGFI~1TXT", *b"LONGFI~2TXT", *b"LONGFI~3TXT"];
        assert_eq!(short_names(&names), Some(want.to_vec()));
    }

    #[test]
    fn numeric_tails_grow_past_nine() {
        let names: Vec<String> = (0..12).map(|i| format!("longfilename{i:02}.txt")).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let shorts = short_names(&names).unwrap();
        assert_eq!(&shorts[8], b"LONGFI~9TXT");
        assert_eq!(&shorts[9], b"LONGF~10TXT");
        assert_eq!(&shorts[11], b"LONGF~12TXT");
    }

    #[test]
    fn fsinfo_counts_free_clusters() {
        let size = min_size_bytes();
        let clusters = Geometry::compute(size).unwrap().clusters;
        let empty = build(&params(size, None), &[]).unwrap();
        assert_eq!(get32(&empty, 512 + 488), clusters - 1, "root only");
        assert_eq!(get32(&empty, 512 + 492), 3);
        // Label entry + one file of 1000 bytes: root 1 cluster, file 2 clusters.
        let files = [FatFile::new("A", vec![7; 1000])];
        let image = build(&params(size, Some("L")), &files).unwrap();
        assert_eq!(get32(&image, 512 + 488), clusters - 3);
        assert_eq!(get32(&image, 512 + 492), 5);
        assert_eq!(read_image(&image), expected(&files, Some("L")));
    }

    #[test]
    fn full_filesystem_has_no_free_cluster() {
        let size = min_size_bytes();
        let g = Geometry::compute(size).unwrap();
        let fill = (u64::from(g.clusters) - 1) * g.cluster_bytes();
        let files = [FatFile::new("fill", vec![1; fill as usize])];
        let image = build(&params(size, None), &files).unwrap();
        assert_eq!(get32(&image, 512 + 488), 0);
        assert_eq!(get32(&image, 512 + 492), 0xFFFF_FFFF);
        assert_eq!(read_image(&image), expected(&files, None));
        let more = [FatFile::new("fill", vec![1; fill as usize + 1])];
        match build(&params(size, None), &more) {
            Err(FatError::NoSpace { needed, available }) => {
                assert_eq!(needed, available + g.cluster_bytes());
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn sizes() {
        let min = min_size_bytes();
        assert_eq!(min, 34_093_568);
        assert_eq!(Geometry::compute(min).unwrap().clusters, 65_525);
        assert!(matches!(
            Geometry::compute(min - 512),
            Err(FatError::TooSmall { min_bytes, .. }) if min_bytes == min
        ));
        assert!(matches!(
            Geometry::compute(1000),
            Err(FatError::UnalignedSize { .. })
        ));
        assert!(matches!(
            Geometry::compute(3 << 40),
            Err(FatError::TooLarge { .. })
        ));
        let esp = Geometry::compute(ESP_SIZE_BYTES).unwrap();
        assert_eq!(esp.sectors_per_cluster, 1);
        assert!(esp.clusters > 250_000);
        assert_eq!(Geometry::compute(260 * MIB).unwrap().sectors_per_cluster, 1);
        assert_eq!(
            Geometry::compute(260 * MIB + 512)
                .unwrap()
                .sectors_per_cluster,
            8
        );
    }

    #[test]
    fn errors() {
        let bad_path = |e: &FatError| matches!(e, FatError::BadPath { .. });
        let duplicate = |e: &FatError| matches!(e, FatError::Duplicate { .. });
        let file_and_dir = |e: &FatError| matches!(e, FatError::FileAndDirectory { .. });
        let long_name = "n".repeat(256);
        type Want = fn(&FatError) -> bool;
        // (case, paths, expected error)
        let cases: &[(&str, &[&str], Want)] = &[
            ("empty path", &[""], bad_path),
            ("leading slash", &["/a"], bad_path),
            ("trailing slash", &["a/"], bad_path),
            ("double slash", &["a//b"], bad_path),
            ("dot dot", &["a/../b"], bad_path),
            ("dot", &["./a"], bad_path),
            ("colon", &["a:b"], bad_path),
            ("star", &["a*"], bad_path),
            ("control", &["a\nb"], bad_path),
            ("trailing dot", &["a."], bad_path),
            ("trailing space", &["d /a"], bad_path),
            ("256 units", &[&long_name], bad_path),
            ("duplicate", &["a/b", "a/b"], duplicate),
            ("case", &["A.txt", "a.TXT"], duplicate),
            ("directory case", &["a/x", "A/y"], duplicate),
            ("file then directory", &["a", "a/b"], file_and_dir),
            ("directory then file", &["a/b", "a"], file_and_dir),
        ];
        let fits = params(min_size_bytes(), None);
        for &(case, paths, want) in cases {
            let files: Vec<FatFile> = paths.iter().map(|p| FatFile::new(*p, "x")).collect();
            match Plan::compute(&fits, &files) {
                Err(e) => assert!(want(&e), "{case}: {e:?}"),
                Ok(_) => panic!("{case}: accepted"),
            }
        }
        assert!(Plan::compute(&fits, &[FatFile::new("n".repeat(255), "x")]).is_ok());

        for label in ["TWELVE CHARS", "esp", "", " ESP", "A.B"] {
            let result = Plan::compute(&params(min_size_bytes(), Some(label)), &[]);
            assert!(
                matches!(result, Err(FatError::BadLabel { .. })),
                "{label:?}"
            );
        }
        let result = Plan::compute(&params(16 * MIB, None), &[]);
        assert!(matches!(result, Err(FatError::TooSmall { .. })));
    }

    #[test]
    fn directory_entry_limit() {
        // 32768 names of 14-26 characters take 3 entries each: more than 65536.
        let files: Vec<FatFile> = (0..32_768)
            .map(|i| FatFile::new(format!("big/file-number-{i:05}"), Vec::new()))
            .collect();
        match Plan::compute(&params(min_size_bytes(), None), &files) {
            Err(FatError::DirectoryTooLarge { path, entries }) => {
                assert_eq!((path.as_str(), entries), ("big", 2 + 3 * 32_768));
            }
            other => panic!("{:?}", other.err()),
        }
    }

    #[test]
    fn fsck_complaints_keeps_only_findings() {
        // fsck.fat 4.2 on a 128 MiB image of this writer.
        let clean = [
            "fsck.fat 4.2 (2021-01-31)",
            "Checking we can access the last sector of the filesystem",
            "Boot sector contents:",
            "System ID \"MSWIN4.1\"",
            "Media byte 0xf8 (hard disk)",
            "       512 bytes per logical sector",
            "       512 bytes per cluster",
            "        32 reserved sectors",
            "First FAT starts at byte 16384 (sector 32)",
            "         2 FATs, 32 bit entries",
            "   1040384 bytes per FAT (= 2032 sectors)",
            "Root directory start at cluster 2 (arbitrary size)",
            "Data area starts at byte 2097152 (sector 4096)",
            "    258048 data clusters (132120576 bytes)",
            "63 sectors/track, 255 heads",
            "         0 hidden sectors",
            "    262144 sectors total",
            "Checking for unused clusters.",
            "Checking free cluster summary.",
            "/tmp/esp.img: 17 files, 35109/258048 clusters",
        ]
        .join("\n");
        assert_eq!(fsck_complaints(&clean), Vec::<&str>::new());
        let dirty = format!("{clean}\nFree cluster summary wrong (78733 vs. really 78732)\n");
        assert_eq!(
            fsck_complaints(&dirty),
            vec!["Free cluster summary wrong (78733 vs. really 78732)"]
        );
    }

    #[test]
    fn parse_mdir_bare_lists_paths() {
        let output = "::/loader.conf\n::/sub/\n::/sub/deep/x+1.conf\n";
        let want: BTreeSet<String> = ["loader.conf", "sub/", "sub/deep/x+1.conf"]
            .map(String::from)
            .into();
        assert_eq!(parse_mdir_bare(output), want);
    }

    /// File sets from a FAT-safe alphabet, without case-insensitive clashes or a file where a
    /// directory is.
    fn file_sets() -> impl Strategy<Value = Vec<FatFile>> {
        let dir = prop::sample::select(vec![
            "",
            "a/",
            "a/b/",
            "EFI/BOOT/",
            "loader/entries/",
            "long directory.name/",
            "x/y/z/w/v/",
        ]);
        let prefix =
            prop::sample::select(vec!["", "longfilename", "LOADER", "minimal-1.0.0-", "a.b."]);
        let name = "[a-zA-Z0-9+_~-]([a-zA-Z0-9+_~. -]{0,40}[a-zA-Z0-9+_~-])?";
        let size = prop_oneof![Just(0usize), 1..600usize, 0..5000usize];
        prop::collection::vec((dir, prefix, name, size), 0..40).prop_map(|specs| {
            let paths: Vec<(String, usize)> = specs
                .into_iter()
                .map(|(dir, prefix, name, size)| (format!("{dir}{prefix}{name}"), size))
                .collect();
            let dirs: BTreeSet<String> = paths
                .iter()
                .flat_map(|(path, _)| path.match_indices('/').map(|(i, _)| fold_case(&path[..i])))
                .collect();
            let mut seen = BTreeSet::new();
            paths
                .into_iter()
                .enumerate()
                .filter(|(_, (path, _))| {
                    !dirs.contains(&fold_case(path)) && seen.insert(fold_case(path))
                })
                .map(|(i, (path, size))| FatFile::new(path, noise(i as u64, size)))
                .collect()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

        #[test]
        fn random_file_sets_read_back(files in file_sets()) {
            let image = build(&params(min_size_bytes(), Some("RANDOM")), &files).unwrap();
            prop_assert_eq!(read_image(&image), expected(&files, Some("RANDOM")));
            prop_assert_eq!(read_files(&image).unwrap(), sorted(&files));
        }
    }

    proptest! {
        #[test]
        fn geometry_is_consistent(sectors in 66_000u32..) {
            let size = u64::from(sectors) * SECTOR_BYTES;
            if let Ok(g) = Geometry::compute(size) {
                prop_assert!(u64::from(g.clusters) >= MIN_CLUSTERS);
                prop_assert!(u64::from(g.fat_sectors) * 128 >= u64::from(g.clusters) + 2);
                let used = u64::from(RESERVED_SECTORS)
                    + 2 * u64::from(g.fat_sectors)
                    + u64::from(g.clusters) * u64::from(g.sectors_per_cluster);
                prop_assert!(used <= u64::from(sectors));
                prop_assert!(u64::from(sectors) - used < u64::from(g.sectors_per_cluster) + 2);
            } else {
                prop_assert!(size < min_size_bytes());
            }
        }

        #[test]
        fn lfn_checksum_is_fatgen103s(short in prop::array::uniform11(any::<u8>())) {
            prop_assert_eq!(lfn_checksum(&short), reference_checksum(&short));
        }

        #[test]
        fn any_paths_give_a_plan_or_an_error(
            paths in prop::collection::vec("(\\PC|[/. ]){0,12}", 0..12),
        ) {
            let files: Vec<FatFile> = paths.into_iter().map(|p| FatFile::new(p, "x")).collect();
            let _ = Plan::compute(&params(min_size_bytes(), None), &files);
        }
    }

    /// A small image whose metadata sectors the damage tests scribble on, and where they end.
    fn damage_target() -> &'static (Vec<u8>, usize) {
        static TARGET: std::sync::OnceLock<(Vec<u8>, usize)> = std::sync::OnceLock::new();
        TARGET.get_or_init(|| {
            let files = [
                FatFile::new("EFI/BOOT/BOOTX64.EFI", noise(1, 3000)),
                FatFile::new("loader/entries/minimal-1.0.0-usr-a+3-0.conf", "title x\n"),
            ];
            let image = build(&params(min_size_bytes(), Some("ESP")), &files).unwrap();
            let g = Geometry::compute(min_size_bytes()).unwrap();
            // Reserved sectors, FATs and the first 16 clusters: directories and files.
            (image, g.cluster_offset(18) as usize)
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        #[test]
        fn read_files_survives_damage(
            damage in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..16),
            in_fat in any::<bool>(),
        ) {
            let (image, metadata_end) = damage_target();
            let (mut image, metadata_end) = (image.clone(), *metadata_end);
            let fat = 32 * 512..32 * 512 + 512;
            for (index, byte) in damage {
                let at = if in_fat {
                    fat.start + index.index(fat.len())
                } else {
                    index.index(metadata_end)
                };
                image[at] = byte;
            }
            let _ = read_files(&image);
        }
    }

    #[test]
    fn read_files_rejects_what_is_not_fat32() {
        for image in [vec![], vec![0; 512], vec![0; 40 << 20]] {
            assert!(matches!(read_files(&image), Err(FatError::Invalid { .. })));
        }
        let (image, _) = damage_target();
        assert!(matches!(
            read_files(&image[..4096]),
            Err(FatError::Invalid { .. })
        ));
        let mut looped = image.clone();
        let fat = 32 * 512;
        // The root directory's chain points back to itself.
        looped[fat + 8..fat + 12].copy_from_slice(&2u32.to_le_bytes());
        assert!(matches!(read_files(&looped), Err(FatError::Invalid { .. })));
    }

    /// Sets FSInfo's next-free hint, which mtools allocates from.
    fn set_next_free(image: &Path, cluster: u32) {
        let mut bytes = std::fs::read(image).unwrap();
        bytes[512 + 492..512 + 496].copy_from_slice(&cluster.to_le_bytes());
        std::fs::write(image, bytes).unwrap();
    }

    /// mtools as another writer: fragmented files, deleted and renamed entries, NT case bits,
    /// a directory of several clusters.
    #[test]
    fn read_files_reads_what_mtools_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("esp.img");
        let mkfs = run(Command::new("mkfs.fat")
            .args([
                "-C", "-F", "32", "-s", "1", "-i", "12345678", "-n", "MTOOLS",
            ])
            .arg(&image)
            .arg("40960")); // KiB
        assert!(mkfs.status.success(), "{mkfs:?}");
        let mtools = |args: &[&str]| {
            let mut command = Command::new(args[0]);
            command.arg("-i").arg(&image).args(&args[1..]);
            let output = run(&mut command);
            assert!(output.status.success(), "{args:?}: {output:?}");
        };
        let local = |name: &str, data: &[u8]| {
            let path = dir.path().join(name);
            std::fs::write(&path, data).unwrap();
            path.to_str().unwrap().to_string()
        };
        let (hole, kept, big) = (noise(1, 3000), noise(2, 1000), noise(3, 20_000));
        mtools(&["mcopy", &local("hole", &hole), &local("kept", &kept), "::/"]);
        mtools(&["mdel", "::/hole"]);
        set_next_free(&image, 2);
        mtools(&["mcopy", &local("big", &big), "::/"]); // into the hole, then after `kept`
        mtools(&["mmd", "::/loader", "::/loader/entries"]);
        let mut want = vec![FatFile::new("big", big), FatFile::new("kept", kept)];
        for i in 0..24 {
            let name = format!("minimal-1.0.{i}-usr-a+3-0.conf");
            let text = format!("title {i}\n");
            mtools(&[
                "mcopy",
                &local(&name, text.as_bytes()),
                "::/loader/entries/",
            ]);
            want.push(FatFile::new(format!("loader/entries/{name}"), text));
        }
        // What systemd-boot's counting does through the firmware's driver.
        mtools(&[
            "mren",
            "::/loader/entries/minimal-1.0.0-usr-a+3-0.conf",
            "::/loader/entries/minimal-1.0.0-usr-a+2-1.conf",
        ]);
        want[2].path = "loader/entries/minimal-1.0.0-usr-a+2-1.conf".to_string();
        mtools(&["mcopy", &local("vmlinuz", b"kernel"), "::/"]); // 8.3: lowercase bit
        want.push(FatFile::new("vmlinuz", "kernel"));

        let bytes = std::fs::read(&image).unwrap();
        let volume = Volume::parse(&bytes).unwrap();
        let root = parse_directory(&volume.read_directory(2).unwrap());
        let big_entry = root.iter().find(|e| e.name == "big").unwrap();
        let chain: Vec<u32> =
            std::iter::successors(Some(big_entry.first_cluster()), |&c| Some(volume.next(c)))
                .take_while(|&c| c < 0x0FFF_FFF8)
                .collect();
        assert!(
            chain.windows(2).any(|w| w[1] != w[0] + 1),
            "not fragmented: {chain:?}"
        );
        assert!(root
            .iter()
            .any(|e| e.name == "vmlinuz" && e.raw[12] == 0x08));
        assert!(read_files(&bytes).unwrap() == sorted(&want));
    }

    #[test]
    fn random_file_sets_pass_fsck_and_mtools() {
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        for _ in 0..4 {
            let files = file_sets().new_tree(&mut runner).unwrap().current();
            let image = build(&params(min_size_bytes(), Some("RANDOM")), &files).unwrap();
            check_with_host_tools(&image, &expected(&files, Some("RANDOM")));
        }
    }
}
