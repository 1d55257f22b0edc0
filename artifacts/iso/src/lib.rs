//! ISO 9660 (ECMA-119) volumes with El Torito boot entries, as a live medium needs them,
//! written by us so that the same inputs give the same bytes: no clock (every date is the
//! caller's `epoch`), no directory order from a file system, no tool version in the output.
//!
//! - [`Layout::plan`] places everything from names and lengths alone (pure): the volume
//!   descriptors from block 16, the two path tables, the directories, the boot catalog, the
//!   files in the order given, and `tail_bytes` at the very end for the caller (a backup GPT);
//! - [`write`] streams the volume: the caller's 32 KiB system area first (on a hybrid medium
//!   an MBR and a GPT pointing into the volume), the descriptors, path tables and
//!   directories, each file (a BIOS boot image gets its El Torito boot info table, as
//!   `mkisofs -boot-info-table` writes it), zeros, the tail.
//!
//! Names are ISO 9660 level 1 (`NAME.EXT`, 8 + 3 upper-case letters, digits and `_`; at most 8
//! directory levels), which every reader takes: firmware, GRUB, Linux (which shows them in
//! lower case), Windows. A file's bytes are one extent (below 4 GiB).
//!
//! El Torito: the first boot entry is the default entry, each further one has a section of its
//! own (platform 0 for BIOS, 0xEF for UEFI). A BIOS entry is a no-emulation image of which the
//! firmware loads `load_sectors` 512-byte sectors; a UEFI entry is a FAT image whose sector
//! count is its length, or 0 when that does not fit in 16 bits: firmware then takes the rest
//! of the volume (EDK2's rule), which is why such an image should be the last file.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Write};

/// ISO 9660's logical block: every extent starts on one.
pub const BLOCK: u64 = 2048;
/// Blocks 0-15, the system area: the caller's bytes (an MBR and a primary GPT on a hybrid).
pub const SYSTEM_AREA_BYTES: usize = 16 * BLOCK as usize;
/// The block of the primary volume descriptor (what El Torito's boot info table points at).
pub const PVD_BLOCK: u64 = 16;
/// Directory depth ISO 9660 allows (the root counts as 1).
pub const MAX_DEPTH: usize = 8;

const SECTOR: u64 = 512;
const STANDARD_ID: &[u8; 5] = b"CD001";
const EL_TORITO_ID: &[u8] = b"EL TORITO SPECIFICATION";
/// `.` and `..`: 33 bytes of record plus a one-byte identifier.
const DOT_RECORD: usize = 34;

/// The firmware an El Torito entry is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    /// PC BIOS (platform id 0): a no-emulation boot image.
    Bios,
    /// UEFI (platform id 0xEF): a FAT image holding `\EFI\BOOT\BOOTX64.EFI`.
    Efi,
}

impl Platform {
    fn id(self) -> u8 {
        match self {
            Platform::Bios => 0,
            Platform::Efi => 0xef,
        }
    }
}

/// One El Torito boot entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootEntry {
    /// The volume file that is the boot image.
    pub path: String,
    pub platform: Platform,
    /// 512-byte sectors the BIOS loads (4 for GRUB's `cdboot.img`); `None`: the whole file
    /// (0 when it does not fit in 16 bits).
    pub load_sectors: Option<u16>,
    /// Patch the boot info table (primary volume descriptor block, the image's block and
    /// length, checksum) into bytes 8-63 of the image, as ISOLINUX and GRUB's `cdboot.img`
    /// expect.
    pub boot_info_table: bool,
}

/// A file of the volume: its path (`DIR/SUB/NAME.EXT`) and length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSpec {
    pub path: String,
    pub len: u64,
}

/// What the volume holds, by name and length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    /// The volume label: 1-32 of `A-Z 0-9 _`.
    pub volume_id: String,
    /// The application identifier (what made the volume), up to 128 printable ASCII.
    pub application: String,
    /// Every date on the volume, in Unix seconds.
    pub epoch: u64,
    /// In the order their bytes are laid out.
    pub files: Vec<FileSpec>,
    /// El Torito entries, the default one first; empty: not bootable from CD.
    pub boot: Vec<BootEntry>,
    /// The boot catalog's path (when `boot` is not empty).
    pub catalog: String,
    /// Bytes reserved at the very end of the volume for the caller (a backup GPT).
    pub tail_bytes: u64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IsoError {
    #[error("ISO 9660 name {path:?}: {reason}")]
    Name { path: String, reason: String },
    #[error("{0:?} is on the volume twice (as a file or a directory)")]
    Duplicate(String),
    #[error("{path} is {len} bytes: an ISO 9660 file holds less than 4 GiB")]
    TooBig { path: String, len: u64 },
    #[error("boot image {0:?} is not a file of the volume")]
    NoBootImage(String),
    #[error("boot image {path:?} is {len} bytes: too short for a boot info table")]
    ShortBootImage { path: String, len: u64 },
    #[error("volume id {0:?}: want 1 to 32 of A-Z, 0-9 and _")]
    VolumeId(String),
    #[error("application id {0:?}: want up to 128 printable ASCII characters")]
    Application(String),
    #[error("the volume would be {0} blocks of 2 KiB: more than ISO 9660 counts")]
    TooLarge(u64),
}

/// Where a file's bytes are: its first block and its length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extent {
    pub block: u64,
    pub len: u64,
}

impl Extent {
    /// Its first byte on the volume.
    pub fn offset(&self) -> u64 {
        self.block * BLOCK
    }
    fn blocks(&self) -> u64 {
        self.len.div_ceil(BLOCK)
    }
}

/// A directory of the plan, in path table order (root first).
#[derive(Debug, Clone)]
struct Dir {
    /// Identifier as recorded (`\0` for the root).
    id: Vec<u8>,
    /// Index of the parent in path table order (the root is its own).
    parent: usize,
    /// Children, sorted as ECMA-119 9.3 wants: (identifier as recorded, what it is).
    children: Vec<(Vec<u8>, Child)>,
    extent: Extent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Child {
    Dir(usize),
    /// Index into `Layout::files`.
    File(usize),
    Catalog,
}

/// Every block of the volume: computed by [`Layout::plan`], written by [`write`].
#[derive(Debug, Clone)]
pub struct Layout {
    volume: Volume,
    dirs: Vec<Dir>,
    files: Vec<Extent>,
    catalog: Option<Extent>,
    path_table_len: u64,
    l_path_table: u64,
    m_path_table: u64,
    blocks: u64,
}

impl Layout {
    /// Place every descriptor, directory and file of `volume`. Pure.
    pub fn plan(volume: &Volume) -> Result<Layout, IsoError> {
        check_id(&volume.volume_id, 32)
            .map_err(|_| IsoError::VolumeId(volume.volume_id.clone()))?;
        if volume.application.len() > 128
            || !volume
                .application
                .bytes()
                .all(|b| (0x20..0x7f).contains(&b))
        {
            return Err(IsoError::Application(volume.application.clone()));
        }
        let mut dirs = vec![DirBuild::new(b"\0".to_vec(), 0)];
        let mut by_path: BTreeMap<String, usize> = BTreeMap::from([(String::new(), 0)]);
        let mut taken: BTreeSet<String> = BTreeSet::new();
        let mut place = |path: &str, child: Child| -> Result<(), IsoError> {
            let (parent, leaf) = parse_path(path)?;
            let mut dir = 0;
            let mut so_far = String::new();
            for component in parent {
                if !so_far.is_empty() {
                    so_far.push('/');
                }
                so_far.push_str(component);
                if taken.contains(&so_far) {
                    return Err(IsoError::Duplicate(so_far));
                }
                dir = match by_path.get(&so_far) {
                    Some(&d) => d,
                    None => {
                        let d = dirs.len();
                        dirs.push(DirBuild::new(component.as_bytes().to_vec(), dir));
                        dirs[dir]
                            .children
                            .push((component.as_bytes().to_vec(), Child::Dir(d)));
                        by_path.insert(so_far.clone(), d);
                        d
                    }
                };
            }
            if by_path.contains_key(path) || !taken.insert(path.to_string()) {
                return Err(IsoError::Duplicate(path.to_string()));
            }
            dirs[dir]
                .children
                .push((format!("{leaf};1").into_bytes(), child));
            Ok(())
        };
        for (i, f) in volume.files.iter().enumerate() {
            if f.len > u64::from(u32::MAX) {
                return Err(IsoError::TooBig {
                    path: f.path.clone(),
                    len: f.len,
                });
            }
            place(&f.path, Child::File(i))?;
        }
        if !volume.boot.is_empty() {
            place(&volume.catalog, Child::Catalog)?;
        }
        for entry in &volume.boot {
            let Some(f) = volume.files.iter().find(|f| f.path == entry.path) else {
                return Err(IsoError::NoBootImage(entry.path.clone()));
            };
            if entry.boot_info_table && f.len < 64 {
                return Err(IsoError::ShortBootImage {
                    path: f.path.clone(),
                    len: f.len,
                });
            }
        }
        let mut dirs = path_table_order(dirs);

        // Blocks: system area, descriptors, path tables, directories, catalog, files, tail.
        let descriptors = if volume.boot.is_empty() { 2 } else { 3 };
        let mut next = PVD_BLOCK + descriptors;
        let path_table_len: u64 = dirs.iter().map(|d| path_record_len(&d.id) as u64).sum();
        let l_path_table = next;
        next += path_table_len.div_ceil(BLOCK);
        let m_path_table = next;
        next += path_table_len.div_ceil(BLOCK);
        for d in &mut dirs {
            let len = directory_len(&d.children);
            d.extent = Extent { block: next, len };
            next += len / BLOCK;
        }
        let catalog = (!volume.boot.is_empty()).then(|| {
            let e = Extent {
                block: next,
                len: BLOCK,
            };
            next += 1;
            e
        });
        let mut files = Vec::with_capacity(volume.files.len());
        for f in &volume.files {
            let e = Extent {
                block: if f.len == 0 { 0 } else { next },
                len: f.len,
            };
            next += e.blocks();
            files.push(e);
        }
        let blocks = next + volume.tail_bytes.div_ceil(BLOCK);
        if blocks > u64::from(u32::MAX) {
            return Err(IsoError::TooLarge(blocks));
        }
        Ok(Layout {
            volume: volume.clone(),
            dirs,
            files,
            catalog,
            path_table_len,
            l_path_table,
            m_path_table,
            blocks,
        })
    }

    /// The volume's size in bytes (a multiple of [`BLOCK`]).
    pub fn size(&self) -> u64 {
        self.blocks * BLOCK
    }

    /// Where the caller's tail starts: `tail_bytes` before the end.
    pub fn tail_offset(&self) -> u64 {
        self.size() - self.volume.tail_bytes
    }

    /// Where a file's bytes are.
    pub fn extent(&self, path: &str) -> Option<Extent> {
        let i = self.volume.files.iter().position(|f| f.path == path)?;
        Some(self.files[i])
    }

    /// The boot catalog's place, when the volume boots.
    pub fn catalog(&self) -> Option<Extent> {
        self.catalog
    }
}

/// A directory while the plan is being made.
struct DirBuild {
    id: Vec<u8>,
    parent: usize,
    children: Vec<(Vec<u8>, Child)>,
}

impl DirBuild {
    fn new(id: Vec<u8>, parent: usize) -> DirBuild {
        DirBuild {
            id,
            parent,
            children: Vec::new(),
        }
    }
}

/// The directories in path table order (ECMA-119 9.4: by level, then by parent's number,
/// then by identifier), children sorted, indexes renumbered.
fn path_table_order(built: Vec<DirBuild>) -> Vec<Dir> {
    let mut built = built;
    for d in &mut built {
        d.children
            .sort_by(|a, b| sort_key(&a.0).cmp(&sort_key(&b.0)));
    }
    let mut order = vec![0usize];
    let mut i = 0;
    while i < order.len() {
        for (_, child) in &built[order[i]].children {
            if let Child::Dir(d) = child {
                order.push(*d);
            }
        }
        i += 1;
    }
    let mut new_index = vec![0usize; built.len()];
    for (new, &old) in order.iter().enumerate() {
        new_index[old] = new;
    }
    order
        .iter()
        .map(|&old| {
            let d = &built[old];
            Dir {
                id: d.id.clone(),
                parent: new_index[d.parent],
                children: d
                    .children
                    .iter()
                    .map(|(id, c)| {
                        let c = match c {
                            Child::Dir(x) => Child::Dir(new_index[*x]),
                            other => *other,
                        };
                        (id.clone(), c)
                    })
                    .collect(),
                extent: Extent { block: 0, len: 0 },
            }
        })
        .collect()
}

/// ECMA-119 9.3: name, then extension, each padded with spaces (below every d-character, so
/// a shorter one sorts first), then the version.
fn sort_key(id: &[u8]) -> (&[u8], &[u8]) {
    let id = id.split(|&b| b == b';').next().unwrap_or(id);
    match id.iter().position(|&b| b == b'.') {
        Some(dot) => (&id[..dot], &id[dot + 1..]),
        None => (id, &[]),
    }
}

fn is_d_char(b: u8) -> bool {
    b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_'
}

fn check_id(s: &str, max: usize) -> Result<(), String> {
    if s.is_empty() || s.len() > max {
        return Err(format!("want 1 to {max} characters"));
    }
    if let Some(c) = s.bytes().find(|&b| !is_d_char(b)) {
        return Err(format!("{:?} is not one of A-Z, 0-9 and _", char::from(c)));
    }
    Ok(())
}

/// `DIR/SUB/NAME.EXT` → (directories, leaf), every component checked.
fn parse_path(path: &str) -> Result<(Vec<&str>, &str), IsoError> {
    let bad = |reason: String| IsoError::Name {
        path: path.to_string(),
        reason,
    };
    let parts: Vec<&str> = path.split('/').collect();
    if parts.len() > MAX_DEPTH {
        return Err(bad(format!(
            "{} levels of directories: ISO 9660 allows {}",
            parts.len() - 1,
            MAX_DEPTH - 1
        )));
    }
    let (leaf, dirs) = parts.split_last().expect("split yields one part");
    for d in dirs {
        check_id(d, 8).map_err(|r| bad(format!("directory {d:?}: {r}")))?;
    }
    let (name, ext) = leaf.split_once('.').unwrap_or((leaf, ""));
    check_id(name, 8).map_err(|r| bad(format!("name {name:?}: {r}")))?;
    if !ext.is_empty() {
        check_id(ext, 3).map_err(|r| bad(format!("extension {ext:?}: {r}")))?;
    }
    Ok((dirs.to_vec(), leaf))
}

fn record_len(id: &[u8]) -> usize {
    let len = 33 + id.len();
    len + len % 2
}

fn path_record_len(id: &[u8]) -> usize {
    8 + id.len() + id.len() % 2
}

/// A directory's length: `.`, `..` and the children, no record across a block boundary.
fn directory_len(children: &[(Vec<u8>, Child)]) -> u64 {
    let mut used = 2 * DOT_RECORD as u64;
    for (id, _) in children {
        let len = record_len(id) as u64;
        if used % BLOCK + len > BLOCK {
            used = used.next_multiple_of(BLOCK);
        }
        used += len;
    }
    used.next_multiple_of(BLOCK)
}

fn both16(v: u16) -> [u8; 4] {
    let (l, b) = (v.to_le_bytes(), v.to_be_bytes());
    [l[0], l[1], b[0], b[1]]
}

fn both32(v: u32) -> [u8; 8] {
    let (l, b) = (v.to_le_bytes(), v.to_be_bytes());
    [l[0], l[1], l[2], l[3], b[0], b[1], b[2], b[3]]
}

/// Seven bytes of a directory record: years since 1900, month, day, hour, minute, second, UTC.
fn record_date(epoch: u64) -> [u8; 7] {
    let t = util::time::Utc::from_unix(epoch);
    [
        (t.year - 1900).clamp(0, 255) as u8,
        t.month as u8,
        t.day as u8,
        t.hour as u8,
        t.minute as u8,
        t.second as u8,
        0,
    ]
}

/// Seventeen bytes of a volume descriptor date: `YYYYMMDDHHMMSScc` and the UTC offset.
fn descriptor_date(epoch: Option<u64>) -> [u8; 17] {
    let mut out = [b'0'; 17];
    out[16] = 0;
    if let Some(epoch) = epoch {
        let t = util::time::Utc::from_unix(epoch);
        let text = format!(
            "{:04}{:02}{:02}{:02}{:02}{:02}00",
            t.year.clamp(0, 9999),
            t.month,
            t.day,
            t.hour,
            t.minute,
            t.second
        );
        out[..16].copy_from_slice(text.as_bytes());
    }
    out
}

fn padded(text: &str, len: usize) -> Vec<u8> {
    let mut v = text.as_bytes().to_vec();
    v.resize(len, b' ');
    v
}

fn directory_record(id: &[u8], extent: Extent, is_dir: bool, epoch: u64) -> Vec<u8> {
    let len = record_len(id);
    let mut r = vec![0u8; len];
    r[0] = len as u8;
    r[2..10].copy_from_slice(&both32(extent.block as u32));
    r[10..18].copy_from_slice(&both32(extent.len as u32));
    r[18..25].copy_from_slice(&record_date(epoch));
    r[25] = if is_dir { 2 } else { 0 };
    r[28..32].copy_from_slice(&both16(1));
    r[32] = id.len() as u8;
    r[33..33 + id.len()].copy_from_slice(id);
    r
}

impl Layout {
    fn child_extent(&self, child: Child) -> (Extent, bool) {
        match child {
            Child::Dir(d) => (self.dirs[d].extent, true),
            Child::File(f) => (self.files[f], false),
            Child::Catalog => (
                self.catalog.expect("a catalog child means a catalog"),
                false,
            ),
        }
    }

    fn primary_descriptor(&self) -> Vec<u8> {
        let v = &self.volume;
        let mut d = vec![0u8; BLOCK as usize];
        d[0] = 1;
        d[1..6].copy_from_slice(STANDARD_ID);
        d[6] = 1;
        d[8..40].copy_from_slice(&padded("LINUX", 32));
        d[40..72].copy_from_slice(&padded(&v.volume_id, 32));
        d[80..88].copy_from_slice(&both32(self.blocks as u32));
        d[120..124].copy_from_slice(&both16(1));
        d[124..128].copy_from_slice(&both16(1));
        d[128..132].copy_from_slice(&both16(BLOCK as u16));
        d[132..140].copy_from_slice(&both32(self.path_table_len as u32));
        d[140..144].copy_from_slice(&(self.l_path_table as u32).to_le_bytes());
        d[148..152].copy_from_slice(&(self.m_path_table as u32).to_be_bytes());
        d[156..190].copy_from_slice(&directory_record(b"\0", self.dirs[0].extent, true, v.epoch));
        d[190..318].copy_from_slice(&padded("", 128));
        d[318..446].copy_from_slice(&padded("", 128));
        d[446..574].copy_from_slice(&padded("", 128));
        d[574..702].copy_from_slice(&padded(&v.application, 128));
        d[702..813].copy_from_slice(&padded("", 111));
        d[813..830].copy_from_slice(&descriptor_date(Some(v.epoch)));
        d[830..847].copy_from_slice(&descriptor_date(Some(v.epoch)));
        d[847..864].copy_from_slice(&descriptor_date(None));
        d[864..881].copy_from_slice(&descriptor_date(None));
        d[881] = 1;
        d
    }

    fn boot_record(&self, catalog: Extent) -> Vec<u8> {
        let mut d = vec![0u8; BLOCK as usize];
        d[1..6].copy_from_slice(STANDARD_ID);
        d[6] = 1;
        d[7..7 + EL_TORITO_ID.len()].copy_from_slice(EL_TORITO_ID);
        d[71..75].copy_from_slice(&(catalog.block as u32).to_le_bytes());
        d
    }

    fn terminator() -> Vec<u8> {
        let mut d = vec![0u8; BLOCK as usize];
        d[0] = 255;
        d[1..6].copy_from_slice(STANDARD_ID);
        d[6] = 1;
        d
    }

    fn path_table(&self, big_endian: bool) -> Vec<u8> {
        let mut t = Vec::with_capacity(self.path_table_len as usize);
        for d in &self.dirs {
            t.push(d.id.len() as u8);
            t.push(0);
            let (block, parent) = (d.extent.block as u32, (d.parent + 1) as u16);
            if big_endian {
                t.extend(block.to_be_bytes());
                t.extend(parent.to_be_bytes());
            } else {
                t.extend(block.to_le_bytes());
                t.extend(parent.to_le_bytes());
            }
            t.extend(&d.id);
            if d.id.len() % 2 == 1 {
                t.push(0);
            }
        }
        t
    }

    fn directory(&self, index: usize) -> Vec<u8> {
        let d = &self.dirs[index];
        let epoch = self.volume.epoch;
        let mut out = Vec::with_capacity(d.extent.len as usize);
        out.extend(directory_record(b"\0", d.extent, true, epoch));
        out.extend(directory_record(
            b"\x01",
            self.dirs[d.parent].extent,
            true,
            epoch,
        ));
        for (id, child) in &d.children {
            let (extent, is_dir) = self.child_extent(*child);
            let rec = directory_record(id, extent, is_dir, epoch);
            if out.len() as u64 % BLOCK + rec.len() as u64 > BLOCK {
                out.resize((out.len() as u64).next_multiple_of(BLOCK) as usize, 0);
            }
            out.extend(rec);
        }
        out.resize(d.extent.len as usize, 0);
        out
    }

    /// The boot catalog: validation entry, default entry, then one section per further entry.
    fn boot_catalog(&self) -> Vec<u8> {
        let boot = &self.volume.boot;
        let mut c = vec![0u8; BLOCK as usize];
        c[0] = 1;
        c[1] = boot[0].platform.id();
        c[30] = 0x55;
        c[31] = 0xaa;
        let sum = c[..32].chunks(2).fold(0u16, |s, w| {
            s.wrapping_add(u16::from_le_bytes([w[0], w[1]]))
        });
        c[28..30].copy_from_slice(&0u16.wrapping_sub(sum).to_le_bytes());
        let mut at = 32;
        for (i, entry) in boot.iter().enumerate() {
            if i > 0 {
                c[at] = if i + 1 == boot.len() { 0x91 } else { 0x90 };
                c[at + 1] = entry.platform.id();
                c[at + 2..at + 4].copy_from_slice(&1u16.to_le_bytes());
                at += 32;
            }
            let extent = self.extent(&entry.path).expect("checked by plan");
            let sectors = entry
                .load_sectors
                .unwrap_or_else(|| u16::try_from(extent.len.div_ceil(SECTOR)).unwrap_or(0));
            c[at] = 0x88;
            c[at + 6..at + 8].copy_from_slice(&sectors.to_le_bytes());
            c[at + 8..at + 12].copy_from_slice(&(extent.block as u32).to_le_bytes());
            at += 32;
        }
        c
    }
}

/// The boot info table written into bytes 8-63 of a BIOS boot image: the primary volume
/// descriptor's block, the image's block and length, and the 32-bit sum of the image's
/// little-endian words from byte 64 on. Pure.
pub fn boot_info_table(image: &[u8], extent: Extent) -> [u8; 56] {
    let mut sum = 0u32;
    for word in image[64.min(image.len())..].chunks(4) {
        let mut w = [0u8; 4];
        w[..word.len()].copy_from_slice(word);
        sum = sum.wrapping_add(u32::from_le_bytes(w));
    }
    let mut t = [0u8; 56];
    t[0..4].copy_from_slice(&(PVD_BLOCK as u32).to_le_bytes());
    t[4..8].copy_from_slice(&(extent.block as u32).to_le_bytes());
    t[8..12].copy_from_slice(&(extent.len as u32).to_le_bytes());
    t[12..16].copy_from_slice(&sum.to_le_bytes());
    t
}

/// Stream the volume of `layout` to `out`: `system_area` (exactly 32 KiB), the volume, the
/// files' bytes (`data[i]` for `Volume::files[i]`, each exactly as long as planned), zeros,
/// then `tail` (exactly `tail_bytes`) at the end.
pub fn write<W: Write>(
    layout: &Layout,
    system_area: &[u8],
    data: &[&[u8]],
    tail: &[u8],
    mut out: W,
) -> io::Result<()> {
    let invalid = |what: String| io::Error::new(io::ErrorKind::InvalidInput, what);
    let v = &layout.volume;
    if system_area.len() != SYSTEM_AREA_BYTES {
        return Err(invalid(format!(
            "the system area is {} bytes, want {SYSTEM_AREA_BYTES}",
            system_area.len()
        )));
    }
    if tail.len() as u64 != v.tail_bytes {
        return Err(invalid(format!(
            "the tail is {} bytes, want {}",
            tail.len(),
            v.tail_bytes
        )));
    }
    if data.len() != v.files.len() {
        return Err(invalid(format!(
            "{} files' bytes for {} files",
            data.len(),
            v.files.len()
        )));
    }
    for (f, bytes) in v.files.iter().zip(data) {
        if bytes.len() as u64 != f.len {
            return Err(invalid(format!(
                "{} is {} bytes, planned as {}",
                f.path,
                bytes.len(),
                f.len
            )));
        }
    }
    let mut out = Counting {
        inner: &mut out,
        written: 0,
    };
    let put = |out: &mut Counting<&mut W>, bytes: &[u8]| out.write_all(bytes);
    put(&mut out, system_area)?;
    put(&mut out, &layout.primary_descriptor())?;
    if let Some(catalog) = layout.catalog {
        put(&mut out, &layout.boot_record(catalog))?;
    }
    put(&mut out, &Layout::terminator())?;
    for big_endian in [false, true] {
        let mut t = layout.path_table(big_endian);
        t.resize(layout.path_table_len.next_multiple_of(BLOCK) as usize, 0);
        put(&mut out, &t)?;
    }
    for i in 0..layout.dirs.len() {
        put(&mut out, &layout.directory(i))?;
    }
    if layout.catalog.is_some() {
        put(&mut out, &layout.boot_catalog())?;
    }
    for (i, (f, bytes)) in v.files.iter().zip(data).enumerate() {
        let extent = layout.files[i];
        let info = v.boot.iter().any(|b| b.boot_info_table && b.path == f.path);
        if info {
            put(&mut out, &bytes[..8])?;
            put(&mut out, &boot_info_table(bytes, extent))?;
            put(&mut out, &bytes[64..])?;
        } else {
            put(&mut out, bytes)?;
        }
        let pad = extent.blocks() * BLOCK - extent.len;
        put(&mut out, &vec![0u8; pad as usize])?;
    }
    let zeros = layout.tail_offset() - out.written;
    let chunk = vec![0u8; BLOCK as usize * 16];
    let mut left = zeros;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        put(&mut out, &chunk[..n])?;
        left -= n as u64;
    }
    put(&mut out, tail)?;
    debug_assert_eq!(out.written, layout.size());
    out.flush()
}

/// A writer that counts what went through it.
struct Counting<W> {
    inner: W,
    written: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests;
