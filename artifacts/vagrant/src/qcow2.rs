//! qcow2 version 3 writer (qemu `docs/interop/qcow2.txt`), for the libvirt box's `box.img`.
//!
//! One pass over the raw disk, metadata last:
//!
//! ```text
//! cluster 0      header (written at the end, when the offsets are known)
//! clusters 1..   the non-zero guest clusters in disk order: whole clusters, or with
//!                `compress`, raw-deflate data packed byte after byte (a cluster that does
//!                not shrink is stored whole, cluster-aligned)
//! then           L2 tables (only those that map something), the L1 table,
//!                the refcount table, the refcount blocks
//! ```
//!
//! 64 KiB clusters, 16-bit refcounts, no backing file, no snapshots, no extensions. Zero
//! clusters stay unallocated (they read as zeros). The layout of the metadata is computed as a
//! value ([`Layout::compute`]); compression runs per cluster in parallel and is written in disk
//! order, so the bytes do not depend on the thread count.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use diskfmt::{is_zero, Format, Pool, RawDisk};
use rayon::prelude::*;
use zlib_rs::{Deflate, DeflateFlush, Status};

pub const CLUSTER_BITS: u32 = 16;
pub const CLUSTER_SIZE: u64 = 1 << CLUSTER_BITS;
/// Entries of an L2 table (one cluster of u64).
pub const L2_ENTRIES: u64 = CLUSTER_SIZE / 8;
/// Refcounts are 16 bits (`refcount_order` 4, the only width qcow2 version 2 knows).
pub const REFCOUNT_ORDER: u32 = 4;
/// Refcounts per refcount block.
pub const REFCOUNT_ENTRIES: u64 = CLUSTER_SIZE * 8 / 16;
/// Header fields through `compression_type`, padded to 8 (what qemu writes).
pub const HEADER_LENGTH: u32 = 112;
/// L1/L2 entry bit: the cluster's refcount is exactly one.
pub const OFLAG_COPIED: u64 = 1 << 63;
/// L2 entry bit: compressed cluster.
pub const OFLAG_COMPRESSED: u64 = 1 << 62;
/// Compressed descriptor: the sector count starts at bit 62 - (cluster_bits - 8).
pub const CSIZE_SHIFT: u32 = 62 - (CLUSTER_BITS - 8);
/// Host offsets of compressed clusters fit below the sector-count field.
pub const MAX_COMPRESSED_OFFSET: u64 = 1 << CSIZE_SHIFT;
/// qemu refuses L1 tables over 32 MiB.
pub const MAX_L1_BYTES: u64 = 32 << 20;
/// Raw deflate level and window (qemu decompresses with a 4 KiB window: `-12`).
pub const COMPRESSION_LEVEL: i32 = 6;
pub const COMPRESSION_WINDOW_BITS: u8 = 12;
const SECTOR_SIZE: u64 = 512;
/// Clusters read and processed per round (4 MiB: stays in cache, enough work for threads).
const BATCH_CLUSTERS: usize = 64;

/// Why a qcow2 image could not be written: the errors of every disk-format writer.
pub use diskfmt::Error;

const FORMAT: Format = Format::Qcow2;

/// How to write the image. Neither field changes what a reader sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Qcow2Options {
    /// Store clusters deflate-compressed (smaller file, like `qemu-img convert -c`).
    pub compress: bool,
    /// Compression threads; `None` uses rayon's global pool. The output is the same for any
    /// value.
    pub threads: Option<usize>,
}

/// What was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    pub file_size: u64,
    /// Virtual disk size in bytes (the raw size rounded up to a sector).
    pub virtual_size: u64,
    /// Guest clusters stored (not zero).
    pub clusters: u64,
}

/// The version 3 header (the rest of cluster 0 is zero: no extensions, end marker included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub size: u64,
    pub l1_size: u32,
    pub l1_table_offset: u64,
    pub refcount_table_offset: u64,
    pub refcount_table_clusters: u32,
}

impl Header {
    pub fn to_bytes(&self) -> [u8; HEADER_LENGTH as usize] {
        let mut b = [0u8; HEADER_LENGTH as usize];
        b[0..4].copy_from_slice(b"QFI\xfb");
        b[4..8].copy_from_slice(&3u32.to_be_bytes());
        // 8..20: no backing file.
        b[20..24].copy_from_slice(&CLUSTER_BITS.to_be_bytes());
        b[24..32].copy_from_slice(&self.size.to_be_bytes());
        // 32..36: no encryption.
        b[36..40].copy_from_slice(&self.l1_size.to_be_bytes());
        b[40..48].copy_from_slice(&self.l1_table_offset.to_be_bytes());
        b[48..56].copy_from_slice(&self.refcount_table_offset.to_be_bytes());
        b[56..60].copy_from_slice(&self.refcount_table_clusters.to_be_bytes());
        // 60..72: no snapshots; 72..96: no incompatible, compatible or autoclear features.
        b[96..100].copy_from_slice(&REFCOUNT_ORDER.to_be_bytes());
        b[100..104].copy_from_slice(&HEADER_LENGTH.to_be_bytes());
        // 104: compression_type 0 = zlib; 105..112 padding.
        b
    }
}

/// Where the metadata goes once the data ends, in bytes (all cluster-aligned).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub l2_offset: u64,
    pub l1_offset: u64,
    pub l1_clusters: u64,
    pub refcount_table_offset: u64,
    pub refcount_table_clusters: u64,
    pub refcount_blocks_offset: u64,
    pub refcount_blocks: u64,
    /// End of the file.
    pub end: u64,
}

impl Layout {
    /// The metadata after `data_end` (cluster-aligned): `l2_tables` L2 tables, an L1 table of
    /// `l1_size` entries, then a refcount table and enough refcount blocks to count every
    /// cluster of the file, themselves included.
    pub fn compute(data_end: u64, l2_tables: u64, l1_size: u64) -> Layout {
        debug_assert_eq!(data_end % CLUSTER_SIZE, 0);
        let l1_offset = data_end + l2_tables * CLUSTER_SIZE;
        let l1_clusters = (l1_size * 8).div_ceil(CLUSTER_SIZE);
        let refcount_table_offset = l1_offset + l1_clusters * CLUSTER_SIZE;
        let fixed = refcount_table_offset / CLUSTER_SIZE;
        // Blocks and table count themselves: grow both until they cover the whole file.
        let (mut table, mut blocks) = (0u64, 0u64);
        loop {
            let clusters = fixed + table + blocks;
            let need_blocks = clusters.div_ceil(REFCOUNT_ENTRIES);
            let need_table = (need_blocks * 8).div_ceil(CLUSTER_SIZE);
            if (need_table, need_blocks) == (table, blocks) {
                break;
            }
            (table, blocks) = (need_table.max(table), need_blocks.max(blocks));
        }
        let refcount_blocks_offset = refcount_table_offset + table * CLUSTER_SIZE;
        Layout {
            l2_offset: data_end,
            l1_offset,
            l1_clusters,
            refcount_table_offset,
            refcount_table_clusters: table,
            refcount_blocks_offset,
            refcount_blocks: blocks,
            end: refcount_blocks_offset + blocks * CLUSTER_SIZE,
        }
    }
}

/// L2 entry of a compressed cluster of `len` bytes at host byte `offset`: the offset, and the
/// number of 512-byte sectors it reaches into beyond the one holding its first byte.
pub fn compressed_entry(offset: u64, len: u64) -> u64 {
    let extra_sectors = (offset + len - 1) / SECTOR_SIZE - offset / SECTOR_SIZE;
    OFLAG_COMPRESSED | (extra_sectors << CSIZE_SHIFT) | offset
}

/// The host clusters a compressed cluster holds a reference to: every cluster its sectors
/// touch (qemu counts to the end of the last sector).
pub fn compressed_clusters(offset: u64, len: u64) -> std::ops::RangeInclusive<u64> {
    let end = (offset + len).next_multiple_of(SECTOR_SIZE);
    offset / CLUSTER_SIZE..=(end - 1) / CLUSTER_SIZE
}

/// Convert a raw disk into a qcow2 image written to `out` from its current position. A raw
/// size that is not a whole number of sectors is padded with zeros to the next sector (qemu
/// counts qcow2 sizes in sectors).
pub fn write<R: Read + Seek, W: Write + Seek>(
    raw: &mut RawDisk<R>,
    out: &mut W,
    opts: &Qcow2Options,
) -> Result<Written, Error> {
    let size = raw.size();
    if size == 0 {
        return Err(Error::EmptyDisk);
    }
    let virtual_size = size.next_multiple_of(SECTOR_SIZE);
    let clusters = virtual_size.div_ceil(CLUSTER_SIZE);
    let l1_size = clusters.div_ceil(L2_ENTRIES);
    if l1_size * 8 > MAX_L1_BYTES {
        return Err(Error::DiskTooLarge {
            format: FORMAT,
            size,
            max: MAX_L1_BYTES / 8 * L2_ENTRIES * CLUSTER_SIZE,
        });
    }
    let pool =
        Pool::new(opts.threads.filter(|_| opts.compress)).map_err(|source| Error::ThreadPool {
            threads: opts.threads.unwrap_or(0),
            source,
        })?;
    let base = out.stream_position().map_err(Error::writing(FORMAT))?;
    let mut image = Image::new(&mut *out);
    image.put(&vec![0u8; CLUSTER_SIZE as usize])?; // the header's cluster, filled in last
    image.refcounts[0] = 1;

    let mut buf = vec![0u8; BATCH_CLUSTERS * CLUSTER_SIZE as usize];
    for first in (0..clusters).step_by(BATCH_CLUSTERS) {
        let n = (clusters - first).min(BATCH_CLUSTERS as u64) as usize;
        let batch = &mut buf[..n * CLUSTER_SIZE as usize];
        let flags = raw
            .read_chunks(CLUSTER_SIZE as usize, first, batch)
            .map_err(Error::Read)?;
        if !flags.contains(&true) {
            continue;
        }
        let stored = classify(batch, &flags, first, opts, &pool)?;
        for (i, (stored, data)) in stored
            .iter()
            .zip(batch.chunks(CLUSTER_SIZE as usize))
            .enumerate()
        {
            let guest = first + i as u64;
            match stored {
                None => {}
                Some(Stored::Whole) => image.whole(guest, data)?,
                Some(Stored::Deflated(bytes)) => image.deflated(guest, bytes)?,
            }
        }
    }
    let header = image.finish(virtual_size, l1_size)?;
    let (end, stored) = (image.pos, image.stored);
    drop(image);
    out.seek(SeekFrom::Start(base))
        .and_then(|_| out.write_all(&header.to_bytes()))
        .and_then(|_| out.seek(SeekFrom::Start(base + end)))
        .map_err(Error::writing(FORMAT))?;
    Ok(Written {
        file_size: end,
        virtual_size,
        clusters: stored,
    })
}

/// [`write`] from a raw disk file to `out`, through a temporary file in the same directory that
/// is synced and renamed into place: `out` is either complete or untouched.
pub fn write_file(raw: &Path, out: &Path, opts: &Qcow2Options) -> Result<Written, Error> {
    diskfmt::write_file(raw, out, |disk, file| write(disk, file, opts))
}

/// How each cluster of a batch (clusters `first..`) is stored, in order; `None` for zeros.
/// `flags` says which clusters may hold data at all.
fn classify(
    batch: &[u8],
    flags: &[bool],
    first: u64,
    opts: &Qcow2Options,
    pool: &Pool,
) -> Result<Vec<Option<Stored>>, Error> {
    let keep = |(i, (data, &maybe)): (usize, (&[u8], &bool))| match maybe && !is_zero(data) {
        false => Ok(None),
        true if !opts.compress => Ok(Some(Stored::Whole)),
        true => deflate(first + i as u64, data).map(Some),
    };
    let cluster = CLUSTER_SIZE as usize;
    if opts.compress {
        pool.run(|| {
            let chunks = batch.par_chunks(cluster).zip(flags.par_iter());
            chunks.enumerate().map(keep).collect()
        })
    } else {
        // The work per cluster is a zero check: threads would only wait on each other.
        let chunks = batch.chunks(cluster).zip(flags.iter());
        chunks.enumerate().map(keep).collect()
    }
}

/// How a non-zero guest cluster is stored.
enum Stored {
    Whole,
    Deflated(Vec<u8>),
}

thread_local! {
    /// One raw-deflate state per thread, reset for every cluster.
    static DEFLATE: RefCell<Option<Deflate>> = const { RefCell::new(None) };
}

/// Compress a cluster; keep it whole when that does not make it smaller than a cluster
/// (qemu's rule: compressed data must fit in `cluster_size - 1` bytes).
fn deflate(cluster: u64, data: &[u8]) -> Result<Stored, Error> {
    let mut out = vec![0u8; zlib_rs::compress_bound(data.len())];
    let n = DEFLATE.with_borrow_mut(|d| {
        let d = d
            .get_or_insert_with(|| Deflate::new(COMPRESSION_LEVEL, false, COMPRESSION_WINDOW_BITS));
        d.reset();
        match d.compress(data, &mut out, DeflateFlush::Finish) {
            Ok(Status::StreamEnd) => Some(d.total_out() as usize),
            _ => None,
        }
    });
    let n = n.ok_or(Error::Compress {
        format: FORMAT,
        index: cluster,
    })?;
    if n as u64 >= CLUSTER_SIZE {
        return Ok(Stored::Whole);
    }
    out.truncate(n);
    Ok(Stored::Deflated(out))
}

/// The image being appended to: position, mappings and refcounts.
struct Image<W> {
    out: W,
    pos: u64,
    /// L2 tables by L1 index, only those that map something.
    l2: BTreeMap<u64, Vec<u64>>,
    /// Refcount of every host cluster so far.
    refcounts: Vec<u16>,
    stored: u64,
}

impl<W: Write> Image<W> {
    fn new(out: W) -> Self {
        Image {
            out,
            pos: 0,
            l2: BTreeMap::new(),
            refcounts: vec![0],
            stored: 0,
        }
    }

    fn put(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.out.write_all(bytes).map_err(Error::writing(FORMAT))?;
        self.pos += bytes.len() as u64;
        let clusters = self.pos.div_ceil(CLUSTER_SIZE) as usize;
        if self.refcounts.len() < clusters {
            self.refcounts.resize(clusters, 0);
        }
        Ok(())
    }

    /// Zeros up to the next cluster boundary.
    fn align(&mut self) -> Result<(), Error> {
        let pad = self.pos.next_multiple_of(CLUSTER_SIZE) - self.pos;
        self.put(&vec![0u8; pad as usize])
    }

    fn map(&mut self, guest: u64, entry: u64) {
        let table = self
            .l2
            .entry(guest / L2_ENTRIES)
            .or_insert_with(|| vec![0; L2_ENTRIES as usize]);
        table[(guest % L2_ENTRIES) as usize] = entry;
        self.stored += 1;
    }

    fn reference(&mut self, cluster: u64) -> Result<(), Error> {
        let count = &mut self.refcounts[cluster as usize];
        *count = count
            .checked_add(1)
            .ok_or(Error::RefcountOverflow { cluster })?;
        Ok(())
    }

    fn whole(&mut self, guest: u64, data: &[u8]) -> Result<(), Error> {
        self.align()?;
        let at = self.pos;
        self.put(data)?; // always a whole cluster: the reader pads the last one
        self.reference(at / CLUSTER_SIZE)?;
        self.map(guest, at | OFLAG_COPIED);
        Ok(())
    }

    fn deflated(&mut self, guest: u64, data: &[u8]) -> Result<(), Error> {
        let at = self.pos;
        if at + data.len() as u64 >= MAX_COMPRESSED_OFFSET {
            return Err(Error::FileTooLarge {
                format: FORMAT,
                max: MAX_COMPRESSED_OFFSET,
            });
        }
        self.put(data)?;
        for cluster in compressed_clusters(at, data.len() as u64) {
            if cluster as usize >= self.refcounts.len() {
                self.refcounts.resize(cluster as usize + 1, 0);
            }
            self.reference(cluster)?;
        }
        self.map(guest, compressed_entry(at, data.len() as u64));
        Ok(())
    }

    /// Append the L2 tables, the L1 table and the refcount structures; return the header.
    fn finish(&mut self, size: u64, l1_size: u64) -> Result<Header, Error> {
        self.align()?;
        let layout = Layout::compute(self.pos, self.l2.len() as u64, l1_size);
        let mut l1 = vec![0u64; l1_size as usize];
        let tables = std::mem::take(&mut self.l2);
        for (k, (index, table)) in tables.iter().enumerate() {
            l1[*index as usize] = (layout.l2_offset + k as u64 * CLUSTER_SIZE) | OFLAG_COPIED;
            self.put(&be_bytes(table))?;
        }
        self.put(&be_bytes(&l1))?;
        self.align()?;

        // Every metadata cluster, the refcount ones included, is referenced once.
        let first_metadata = layout.l2_offset / CLUSTER_SIZE;
        self.refcounts
            .resize((layout.end / CLUSTER_SIZE) as usize, 0);
        self.refcounts[first_metadata as usize..].fill(1);

        let blocks = (0..layout.refcount_blocks)
            .map(|j| layout.refcount_blocks_offset + j * CLUSTER_SIZE)
            .collect::<Vec<_>>();
        self.put(&be_bytes(&blocks))?;
        self.align()?;
        let mut counts: Vec<u8> = self
            .refcounts
            .iter()
            .flat_map(|c| c.to_be_bytes())
            .collect();
        counts.resize((layout.refcount_blocks * CLUSTER_SIZE) as usize, 0);
        self.put(&counts)?;
        debug_assert_eq!(self.pos, layout.end);
        Ok(Header {
            size,
            l1_size: l1_size as u32,
            l1_table_offset: layout.l1_offset,
            refcount_table_offset: layout.refcount_table_offset,
            refcount_table_clusters: layout.refcount_table_clusters as u32,
        })
    }
}

fn be_bytes(values: &[u64]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_be_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn be32(b: &[u8], at: usize) -> u32 {
        u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
    }
    fn be64(b: &[u8], at: usize) -> u64 {
        u64::from_be_bytes(b[at..at + 8].try_into().unwrap())
    }

    #[test]
    fn header_fields_at_their_offsets() {
        let h = Header {
            size: 843_055_104,
            l1_size: 2,
            l1_table_offset: 0x10_0000,
            refcount_table_offset: 0x11_0000,
            refcount_table_clusters: 1,
        }
        .to_bytes();
        assert_eq!(&h[0..4], b"QFI\xfb");
        assert_eq!(be32(&h, 4), 3, "version");
        assert_eq!(be64(&h, 8), 0, "backing_file_offset");
        assert_eq!(be32(&h, 16), 0, "backing_file_size");
        assert_eq!(be32(&h, 20), 16, "cluster_bits");
        assert_eq!(be64(&h, 24), 843_055_104, "size");
        assert_eq!(be32(&h, 32), 0, "crypt_method");
        assert_eq!(be32(&h, 36), 2, "l1_size");
        assert_eq!(be64(&h, 40), 0x10_0000, "l1_table_offset");
        assert_eq!(be64(&h, 48), 0x11_0000, "refcount_table_offset");
        assert_eq!(be32(&h, 56), 1, "refcount_table_clusters");
        assert_eq!(be32(&h, 60), 0, "nb_snapshots");
        assert_eq!(be64(&h, 64), 0, "snapshots_offset");
        assert_eq!(&h[72..96], &[0u8; 24], "feature bits");
        assert_eq!(be32(&h, 96), 4, "refcount_order");
        assert_eq!(be32(&h, 100), 112, "header_length");
        assert_eq!(&h[104..], &[0u8; 8], "compression_type zlib + padding");
    }

    #[test]
    fn layout_of_a_small_image() {
        // Header + 3 data clusters, 1 L2 table, L1 of 1 entry: one refcount block suffices.
        let l = Layout::compute(4 * CLUSTER_SIZE, 1, 1);
        assert_eq!(l.l2_offset, 4 * CLUSTER_SIZE);
        assert_eq!(l.l1_offset, 5 * CLUSTER_SIZE);
        assert_eq!(l.l1_clusters, 1);
        assert_eq!(l.refcount_table_offset, 6 * CLUSTER_SIZE);
        assert_eq!(l.refcount_table_clusters, 1);
        assert_eq!(l.refcount_blocks_offset, 7 * CLUSTER_SIZE);
        assert_eq!(l.refcount_blocks, 1);
        assert_eq!(l.end, 8 * CLUSTER_SIZE);
    }

    #[test]
    fn refcount_blocks_count_themselves() {
        // Data that exactly fills one refcount block: the table and the block spill into a
        // second block.
        let data_end = (REFCOUNT_ENTRIES - 1) * CLUSTER_SIZE;
        let l = Layout::compute(data_end, 0, 0);
        assert_eq!((l.refcount_table_clusters, l.refcount_blocks), (1, 2));
        for (data_clusters, l2, l1) in [(1, 0, 1), (100_000, 12, 13), (5_000_000, 611, 611)] {
            let l = Layout::compute(data_clusters * CLUSTER_SIZE, l2, l1);
            let clusters = l.end / CLUSTER_SIZE;
            assert!(l.refcount_blocks * REFCOUNT_ENTRIES >= clusters, "{l:?}");
            assert!(
                (l.refcount_blocks - 1) * REFCOUNT_ENTRIES < clusters,
                "{l:?}: too many"
            );
            assert!(
                l.refcount_table_clusters * L2_ENTRIES >= l.refcount_blocks,
                "{l:?}"
            );
        }
    }

    #[test]
    fn compressed_descriptors() {
        // 100 bytes inside one sector: no extra sector.
        assert_eq!(compressed_entry(70_000, 100), OFLAG_COMPRESSED | 70_000);
        // Crossing into the next sector: one extra.
        let e = compressed_entry(511, 2);
        assert_eq!(e, OFLAG_COMPRESSED | (1 << 54) | 511);
        assert_eq!(e & OFLAG_COPIED, 0);
        assert_eq!(compressed_clusters(70_000, 100), 1..=1);
        // Ending exactly on a cluster boundary does not touch the next cluster.
        assert_eq!(compressed_clusters(CLUSTER_SIZE - 1000, 1000), 0..=0);
        // Its last sector ends past the boundary: both clusters hold a reference.
        assert_eq!(compressed_clusters(CLUSTER_SIZE - 1000, 1001), 0..=1);
        assert_eq!(compressed_clusters(CLUSTER_SIZE - 10, 5), 0..=0);
    }

    #[test]
    fn bad_inputs_are_errors() {
        let mut empty = RawDisk::new(Cursor::new(Vec::new())).unwrap();
        let err = write(
            &mut empty,
            &mut Cursor::new(Vec::new()),
            &Qcow2Options::default(),
        )
        .unwrap_err();
        assert!(matches!(err, Error::EmptyDisk), "{err}");
    }

    /// Two clusters of data in different L2 tables, read back through the tables by hand.
    #[test]
    fn tables_map_the_data() {
        let size = (L2_ENTRIES + 2) * CLUSTER_SIZE;
        let mut raw = vec![0u8; size as usize];
        raw[5] = 1;
        let far = ((L2_ENTRIES + 1) * CLUSTER_SIZE) as usize;
        raw[far..far + 3].copy_from_slice(b"far");
        let mut disk = RawDisk::new(Cursor::new(raw)).unwrap();
        let mut out = Cursor::new(Vec::new());
        let w = write(&mut disk, &mut out, &Qcow2Options::default()).unwrap();
        let f = out.into_inner();
        assert_eq!(w.clusters, 2);
        assert_eq!(w.file_size, f.len() as u64);
        // header, 2 data clusters, 2 L2 tables, L1, refcount table, refcount block
        assert_eq!(f.len() as u64, 8 * CLUSTER_SIZE);
        assert_eq!(be32(&f, 36), 2, "l1_size");
        let l1 = be64(&f, 40) as usize;
        let lookup = |guest: u64| {
            let l2 = be64(&f, l1 + 8 * (guest / L2_ENTRIES) as usize);
            assert_eq!(l2 & OFLAG_COPIED, OFLAG_COPIED);
            let l2 = (l2 & !OFLAG_COPIED) as usize;
            let e = be64(&f, l2 + 8 * (guest % L2_ENTRIES) as usize);
            (e & !OFLAG_COPIED) as usize
        };
        assert_eq!(lookup(0), CLUSTER_SIZE as usize);
        assert_eq!(f[CLUSTER_SIZE as usize + 5], 1);
        let at = lookup(L2_ENTRIES + 1);
        assert_eq!(&f[at..at + 3], b"far");
        assert_eq!(lookup(1), 0, "zero cluster unallocated");
        // Every cluster of the file has refcount 1.
        let rt = be64(&f, 48) as usize;
        let rb = be64(&f, rt) as usize;
        for c in 0..8 {
            assert_eq!(
                u16::from_be_bytes([f[rb + 2 * c], f[rb + 2 * c + 1]]),
                1,
                "{c}"
            );
        }
        assert_eq!(u16::from_be_bytes([f[rb + 16], f[rb + 17]]), 0);
    }
}
