//! Fixed VHD writer (SPECS.md S9; Microsoft "Virtual Hard Disk Image Format Specification",
//! read back by qemu `block/vpc.c`), for AWS VM Import and Azure.
//!
//! A fixed VHD is the raw disk, padded with zeros to a whole MiB (Azure wants whole MiB virtual
//! sizes; AWS does not mind), then a 512-byte big-endian footer. Zero regions of the raw disk
//! are skipped rather than written, so the output stays as sparse as the input. Nothing in the
//! footer comes from the clock or a random source: the timestamp is `source_date_epoch` and the
//! UUID is the caller's (derived from the image spec).

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use diskfmt::{is_zero, Format, RawDisk};

pub const FOOTER_SIZE: usize = 512;
pub const COOKIE: &[u8; 8] = b"conectix";
/// Bit 1, "reserved", must always be set.
pub const FEATURES: u32 = 0x0000_0002;
pub const FORMAT_VERSION: u32 = 0x0001_0000;
/// A fixed disk has no dynamic header.
pub const DATA_OFFSET_NONE: u64 = u64::MAX;
pub const DISK_TYPE_FIXED: u32 = 2;
/// 2000-01-01T00:00:00Z, the origin of VHD timestamps, in Unix seconds.
pub const VHD_EPOCH: u64 = 946_684_800;
/// The raw size is padded to this.
pub const ALIGNMENT: u64 = 1 << 20;
/// 2040 GiB: qemu's and Azure's limit for a VHD (`VHD_MAX_SECTORS`).
pub const MAX_SIZE: u64 = 0xff00_0000 * 512;
/// Cap of the CHS geometry (65535 cylinders x 16 heads x 255 sectors).
const MAX_CHS_SECTORS: u64 = 65535 * 16 * 255;
/// Zero runs shorter than this are written, not skipped.
const CHUNK: usize = 64 << 10;
/// Bytes read per round.
const READ_SIZE: usize = 4 << 20;

/// Why a VHD could not be written: the errors of every disk-format writer.
pub use diskfmt::Error;

const FORMAT: Format = Format::Vhd;

/// What goes into the footer besides the size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VhdOptions {
    /// Unix seconds (the spec's `source_date_epoch`); stored as seconds since 2000-01-01.
    pub source_date_epoch: u64,
    /// The disk's unique id, derived by the caller from the spec.
    pub uuid: [u8; 16],
    /// Creator application. Older qemu takes the disk size from the footer only for apps it
    /// knows do so ("qem2", "win ", "d2v ", ...) and otherwise from the CHS geometry, which
    /// truncates disks that are not a whole number of cylinders (qemu 10 reads the footer
    /// size for unknown apps too). "qem2" is what `qemu-img convert -O vpc -o force_size`
    /// writes, so what Flatcar and Fedora CoreOS ship to Azure; Azure and AWS read the footer
    /// size whatever the app.
    pub creator_app: [u8; 4],
    /// Creator version, major in the high 16 bits.
    pub creator_version: u32,
    pub creator_os: [u8; 4],
}

impl VhdOptions {
    pub fn new(source_date_epoch: u64, uuid: [u8; 16]) -> Self {
        VhdOptions {
            source_date_epoch,
            uuid,
            creator_app: *b"qem2",
            creator_version: 0x0005_0003,
            creator_os: *b"Wi2k",
        }
    }
}

/// What was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// Size of the VHD file: the padded disk plus the footer.
    pub file_size: u64,
    /// The disk size the footer announces (the raw size padded to a whole MiB).
    pub disk_size: u64,
}

/// Cylinders, heads and sectors per track.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    pub cylinders: u16,
    pub heads: u8,
    pub sectors: u8,
}

/// The CHS geometry of a disk of `total_sectors`, by the algorithm in the VHD specification
/// (appendix "CHS Calculation"). It may address fewer sectors than the disk has.
pub fn geometry(total_sectors: u64) -> Geometry {
    let total = total_sectors.min(MAX_CHS_SECTORS);
    let (sectors, heads, cylinders_times_heads);
    if total >= 65535 * 16 * 63 {
        sectors = 255;
        heads = 16;
        cylinders_times_heads = total / sectors;
    } else {
        let mut s = 17;
        let mut cth = total / s;
        let mut h = cth.div_ceil(1024).max(4);
        if cth >= h * 1024 || h > 16 {
            s = 31;
            h = 16;
            cth = total / s;
        }
        if cth >= h * 1024 {
            s = 63;
            h = 16;
            cth = total / s;
        }
        (sectors, heads, cylinders_times_heads) = (s, h, cth);
    }
    Geometry {
        cylinders: (cylinders_times_heads / heads) as u16,
        heads: heads as u8,
        sectors: sectors as u8,
    }
}

/// The disk size a raw size becomes: padded to a whole MiB.
pub fn disk_size(raw_size: u64) -> u64 {
    raw_size.next_multiple_of(ALIGNMENT)
}

/// The footer of a fixed disk of `disk_size` bytes.
pub fn footer(disk_size: u64, opts: &VhdOptions) -> Result<[u8; FOOTER_SIZE], Error> {
    let timestamp = opts
        .source_date_epoch
        .checked_sub(VHD_EPOCH)
        .and_then(|t| u32::try_from(t).ok())
        .ok_or(Error::Timestamp(opts.source_date_epoch))?;
    let g = geometry(disk_size / 512);
    let mut b = [0u8; FOOTER_SIZE];
    b[0..8].copy_from_slice(COOKIE);
    b[8..12].copy_from_slice(&FEATURES.to_be_bytes());
    b[12..16].copy_from_slice(&FORMAT_VERSION.to_be_bytes());
    b[16..24].copy_from_slice(&DATA_OFFSET_NONE.to_be_bytes());
    b[24..28].copy_from_slice(&timestamp.to_be_bytes());
    b[28..32].copy_from_slice(&opts.creator_app);
    b[32..36].copy_from_slice(&opts.creator_version.to_be_bytes());
    b[36..40].copy_from_slice(&opts.creator_os);
    b[40..48].copy_from_slice(&disk_size.to_be_bytes()); // original size
    b[48..56].copy_from_slice(&disk_size.to_be_bytes()); // current size
    b[56..58].copy_from_slice(&g.cylinders.to_be_bytes());
    b[58] = g.heads;
    b[59] = g.sectors;
    b[60..64].copy_from_slice(&DISK_TYPE_FIXED.to_be_bytes());
    b[68..84].copy_from_slice(&opts.uuid);
    // 84: saved state 0; 85..512 reserved, zero.
    let sum = checksum(&b);
    b[64..68].copy_from_slice(&sum.to_be_bytes());
    Ok(b)
}

/// One's complement of the byte sum, the checksum field (64..68) counted as zero.
pub fn checksum(footer: &[u8; FOOTER_SIZE]) -> u32 {
    let sum = footer
        .iter()
        .enumerate()
        .filter(|(i, _)| !(64..68).contains(i))
        .fold(0u32, |s, (_, &b)| s.wrapping_add(u32::from(b)));
    !sum
}

/// Convert a raw disk into a fixed VHD written to `out` from its current position. Chunks in
/// the disk's holes are not read, and zero chunks are skipped with a seek, so a file target
/// stays sparse: `out` must read as zeros past its position (a new file, an empty buffer).
pub fn write<R: Read + Seek, W: Write + Seek>(
    raw: &mut RawDisk<R>,
    out: &mut W,
    opts: &VhdOptions,
) -> Result<Written, Error> {
    let size = raw.size();
    if size == 0 {
        return Err(Error::EmptyDisk);
    }
    let disk_size = disk_size(size);
    if disk_size > MAX_SIZE {
        return Err(Error::DiskTooLarge {
            format: FORMAT,
            size,
            max: MAX_SIZE,
        });
    }
    let footer = footer(disk_size, opts)?;
    let base = out.stream_position().map_err(Error::writing(FORMAT))?;
    let mut at = base; // where `out` is
    let chunk = CHUNK as u64;
    let chunks = size.div_ceil(chunk);
    let per_read = (READ_SIZE / CHUNK) as u64;
    let mut buf = vec![0u8; READ_SIZE];
    for first in (0..chunks).step_by(per_read as usize) {
        let n = (chunks - first).min(per_read) as usize;
        let batch = &mut buf[..n * CHUNK];
        let flags = raw.read_chunks(CHUNK, first, batch).map_err(Error::Read)?;
        for (i, (data, &maybe)) in batch.chunks(CHUNK).zip(&flags).enumerate() {
            if !maybe || is_zero(data) {
                continue;
            }
            let from = (first + i as u64) * chunk;
            let len = (size - from).min(chunk) as usize; // the last chunk ends with the disk
            let to = base + from;
            if to != at {
                out.seek(SeekFrom::Start(to))
                    .map_err(Error::writing(FORMAT))?;
            }
            out.write_all(&data[..len])
                .map_err(Error::writing(FORMAT))?;
            at = to + len as u64;
        }
    }
    out.seek(SeekFrom::Start(base + disk_size))
        .and_then(|_| out.write_all(&footer))
        .map_err(Error::writing(FORMAT))?;
    Ok(Written {
        file_size: disk_size + FOOTER_SIZE as u64,
        disk_size,
    })
}

/// [`write`] from a raw disk file, whose holes are not even read, to `out`, through a temporary
/// file in the same directory that is synced and renamed into place.
pub fn write_file(raw: &Path, out: &Path, opts: &VhdOptions) -> Result<Written, Error> {
    diskfmt::write_file(raw, out, |disk, file| write(disk, file, opts))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn opts() -> VhdOptions {
        VhdOptions::new(1_767_225_600, *b"0123456789abcdef")
    }

    fn be32(b: &[u8], at: usize) -> u32 {
        u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
    }
    fn be64(b: &[u8], at: usize) -> u64 {
        u64::from_be_bytes(b[at..at + 8].try_into().unwrap())
    }

    #[test]
    fn footer_fields_at_their_offsets() {
        let f = footer(843_055_104, &opts()).unwrap();
        assert_eq!(&f[0..8], b"conectix");
        assert_eq!(be32(&f, 8), 2, "features");
        assert_eq!(be32(&f, 12), 0x0001_0000, "version");
        assert_eq!(be64(&f, 16), u64::MAX, "data offset");
        // 2026-01-01T00:00:00Z is 820540800 s after 2000-01-01.
        assert_eq!(be32(&f, 24), 820_540_800, "timestamp");
        assert_eq!(&f[28..32], b"qem2");
        assert_eq!(be32(&f, 32), 0x0005_0003, "creator version");
        assert_eq!(&f[36..40], b"Wi2k");
        assert_eq!(be64(&f, 40), 843_055_104, "original size");
        assert_eq!(be64(&f, 48), 843_055_104, "current size");
        assert_eq!(u16::from_be_bytes([f[56], f[57]]), 1633, "cylinders");
        assert_eq!((f[58], f[59]), (16, 63), "heads, sectors");
        assert_eq!(be32(&f, 60), 2, "disk type");
        assert_eq!(&f[68..84], b"0123456789abcdef", "uuid");
        assert_eq!(f[84], 0, "saved state");
        assert!(f[85..].iter().all(|&b| b == 0));
        // The checksum makes the byte sum (checksum bytes excluded) plus it all ones.
        let sum: u32 = f
            .iter()
            .take(64)
            .chain(&f[68..])
            .map(|&b| u32::from(b))
            .sum();
        assert_eq!(be32(&f, 64), !sum);
    }

    #[test]
    fn chs_by_the_spec_algorithm() {
        struct Case {
            sectors: u64,
            want: (u16, u8, u8),
        }
        // Cross-checked: `qemu-img create -f vpc -o subformat=fixed` gives the same geometry
        // for disks of exactly C x H x S sectors (its calculate_geometry is the same algorithm).
        let cases = [
            // Small disks: 17 sectors per track, at least 4 heads.
            Case {
                sectors: 8192,
                want: (120, 4, 17),
            },
            Case {
                sectors: 8160,
                want: (120, 4, 17),
            },
            // 17 x 4 would pass 1024 cylinders: 5 heads.
            Case {
                sectors: 76500,
                want: (900, 5, 17),
            },
            // 804 MiB: 17 and 31 sectors per track overflow 1024 cylinders; 63 x 16.
            Case {
                sectors: 1_646_592,
                want: (1633, 16, 63),
            },
            Case {
                sectors: 1_646_064,
                want: (1633, 16, 63),
            },
            // From 65535 x 16 x 63 sectors on: 255 sectors per track.
            Case {
                sectors: 65535 * 16 * 63,
                want: (16191, 16, 255),
            },
            // Capped at 65535 x 16 x 255.
            Case {
                sectors: 1 << 33,
                want: (65535, 16, 255),
            },
        ];
        for c in cases {
            let g = geometry(c.sectors);
            assert_eq!(
                (g.cylinders, g.heads, g.sectors),
                c.want,
                "{} sectors",
                c.sectors
            );
            assert!(
                u64::from(g.cylinders) * u64::from(g.heads) * u64::from(g.sectors) <= c.sectors
            );
        }
    }

    #[test]
    fn sizes_pad_to_whole_mib() {
        assert_eq!(disk_size(1), 1 << 20);
        assert_eq!(disk_size(1 << 20), 1 << 20);
        assert_eq!(disk_size((1 << 20) + 1), 2 << 20);
    }

    #[test]
    fn timestamps_outside_the_vhd_range_are_errors() {
        let mut o = opts();
        o.source_date_epoch = VHD_EPOCH - 1;
        assert!(matches!(footer(1 << 20, &o), Err(Error::Timestamp(_))));
        o.source_date_epoch = VHD_EPOCH + u64::from(u32::MAX) + 1;
        assert!(matches!(footer(1 << 20, &o), Err(Error::Timestamp(_))));
        o.source_date_epoch = VHD_EPOCH;
        assert_eq!(be32(&footer(1 << 20, &o).unwrap(), 24), 0);
    }

    #[test]
    fn image_is_padded_data_then_footer() {
        let raw: Vec<u8> = (0..1_500_000u32).map(|i| (i % 251) as u8).collect();
        let mut out = Cursor::new(Vec::new());
        let mut disk = RawDisk::new(Cursor::new(&raw)).unwrap();
        let w = write(&mut disk, &mut out, &opts()).unwrap();
        let f = out.into_inner();
        assert_eq!(w.disk_size, 2 << 20);
        assert_eq!(f.len() as u64, w.file_size);
        assert_eq!(&f[..raw.len()], raw.as_slice());
        assert!(f[raw.len()..2 << 20].iter().all(|&b| b == 0));
        assert_eq!(&f[2 << 20..], &footer(2 << 20, &opts()).unwrap());

        let err = write(
            &mut RawDisk::new(Cursor::new(Vec::new())).unwrap(),
            &mut Cursor::new(Vec::new()),
            &opts(),
        );
        assert!(matches!(err, Err(Error::EmptyDisk)));
    }
}
