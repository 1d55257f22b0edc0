//! The raw disk a disk-format writer converts: its bytes, its size, and where data may be.
//!
//! Disk images are mostly holes, and reading a hole makes the kernel zero page-cache pages, so
//! a [`RawDisk`] opened from a path maps the file's data extents once (`SEEK_DATA`/`SEEK_HOLE`)
//! and writers skip the holes without reading them. Any other `Read + Seek` counts as all data.
//! Either way, chunks whose bytes are all zero are found by [`is_zero`]: the map only saves reads.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::ops::Range;
use std::os::unix::io::AsRawFd;
use std::path::Path;

/// A raw disk image and the byte ranges of it that may hold non-zero bytes.
#[derive(Debug)]
pub struct RawDisk<R> {
    reader: R,
    size: u64,
    /// Sorted, disjoint, within `0..size`.
    data: Vec<Range<u64>>,
}

impl RawDisk<File> {
    /// Open a raw disk file and map its data extents (holes are never read).
    pub fn open(path: &Path) -> io::Result<Self> {
        let mut file = File::open(path)?;
        let size = file.seek(SeekFrom::End(0))?;
        let data = data_extents(&file, size)?;
        Ok(RawDisk {
            reader: file,
            size,
            data,
        })
    }
}

impl<R: Read + Seek> RawDisk<R> {
    /// Any seekable reader; all of it counts as data.
    pub fn new(mut reader: R) -> io::Result<Self> {
        let size = reader.seek(SeekFrom::End(0))?;
        Ok(RawDisk {
            reader,
            size,
            data: whole(size),
        })
    }

    /// Size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The byte ranges that may hold data, sorted and disjoint.
    pub fn data_ranges(&self) -> &[Range<u64>] {
        &self.data
    }

    /// Fill `buf` with the chunks `first..` of `chunk` bytes each (`buf.len()` a multiple of
    /// `chunk`) and say, per chunk, whether it may hold data. Chunks that lie entirely in holes
    /// or past the end of the disk are not read and their part of `buf` is left as it was; the
    /// part of a chunk past the end of the disk reads as zeros.
    pub fn read_chunks(
        &mut self,
        chunk: usize,
        first: u64,
        buf: &mut [u8],
    ) -> io::Result<Vec<bool>> {
        let count = buf.len() / chunk;
        let chunk64 = chunk as u64;
        let start = first * chunk64;
        let end = start + (count as u64) * chunk64;
        let mut flags = vec![false; count];
        let from = self.data.partition_point(|r| r.end <= start);
        for r in self.data[from..].iter().take_while(|r| r.start < end) {
            let a = r.start.max(start);
            let b = r.end.min(end);
            let (lo, hi) = ((a - start) / chunk64, (b - 1 - start) / chunk64);
            flags[lo as usize..=hi as usize].fill(true);
        }
        // One read per run of flagged chunks: holes inside a run are small and read as zeros.
        let mut i = 0;
        while i < count {
            if !flags[i] {
                i += 1;
                continue;
            }
            let j = i + flags[i..].iter().take_while(|&&f| f).count();
            let run_start = start + i as u64 * chunk64;
            let run = &mut buf[i * chunk..j * chunk];
            let in_disk = (self.size.saturating_sub(run_start)).min(run.len() as u64) as usize;
            self.reader.seek(SeekFrom::Start(run_start))?;
            self.reader.read_exact(&mut run[..in_disk])?;
            run[in_disk..].fill(0);
            i = j;
        }
        Ok(flags)
    }
}

/// Whether every byte is zero (vectorizes: no early exit inside a 64-byte block).
pub fn is_zero(buf: &[u8]) -> bool {
    let mut blocks = buf.chunks_exact(64);
    blocks
        .by_ref()
        .all(|b| b.iter().fold(0u8, |acc, &x| acc | x) == 0)
        && blocks.remainder().iter().all(|&x| x == 0)
}

/// The data extents of `file` (of `size` bytes), merged; everything if the file system cannot say.
fn data_extents(file: &File, size: u64) -> io::Result<Vec<Range<u64>>> {
    let fd = file.as_raw_fd();
    let mut out = Vec::new();
    let mut pos = 0u64;
    while pos < size {
        let Some(data) = lseek(fd, pos, libc::SEEK_DATA)? else {
            break; // ENXIO: no data after pos
        };
        if data >= size {
            break;
        }
        let hole = lseek(fd, data, libc::SEEK_HOLE)?.unwrap_or(size).min(size);
        if hole <= data {
            // A file system that answers nonsense: fall back to reading everything.
            return Ok(whole(size));
        }
        out.push(data..hole);
        pos = hole;
    }
    Ok(out)
}

/// `lseek` for `SEEK_DATA`/`SEEK_HOLE`: `None` on ENXIO (nothing more); an error that means
/// "not supported here" (block devices, some file systems) pretends the whole rest is data.
fn lseek(fd: i32, pos: u64, whence: i32) -> io::Result<Option<u64>> {
    let off =
        libc::off_t::try_from(pos).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: lseek on a descriptor owned by a live `File`; it does not touch memory.
    let r = unsafe { libc::lseek(fd, off, whence) };
    if r >= 0 {
        return Ok(Some(r as u64));
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::ENXIO) => Ok(None),
        Some(libc::EINVAL) | Some(libc::EOPNOTSUPP) if whence == libc::SEEK_DATA => Ok(Some(pos)),
        Some(libc::EINVAL) | Some(libc::EOPNOTSUPP) => Ok(Some(u64::MAX)),
        _ => Err(err),
    }
}

/// One range covering the whole disk.
fn whole(size: u64) -> Vec<Range<u64>> {
    std::iter::once(0..size).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Cursor, Write};

    #[test]
    fn zero_detection() {
        assert!(is_zero(&[]));
        assert!(is_zero(&[0; 65536]));
        for at in [0, 63, 64, 65535, 100] {
            let mut v = vec![0u8; 65536 + 37];
            v[at] = 1;
            assert!(!is_zero(&v), "byte {at}");
        }
        let mut v = vec![0u8; 65536 + 37];
        v[65536 + 36] = 9;
        assert!(!is_zero(&v), "remainder");
    }

    #[test]
    fn sparse_file_maps_holes_and_reads_like_a_dense_one() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("disk.raw");
        let mut f = File::create(&p).unwrap();
        f.set_len(8 << 20).unwrap();
        f.seek(SeekFrom::Start(3 << 20)).unwrap();
        f.write_all(&[7u8; 100_000]).unwrap();
        drop(f);
        let dense = std::fs::read(&p).unwrap();

        let mut disk = RawDisk::open(&p).unwrap();
        assert_eq!(disk.size(), 8 << 20);
        let mapped: u64 = disk.data_ranges().iter().map(|r| r.end - r.start).sum();
        assert!(
            mapped < 1 << 20,
            "holes were mapped as data: {:?}",
            disk.data_ranges()
        );

        let chunk = 64 << 10;
        let mut buf = vec![0xAAu8; 128 * chunk]; // 8 MiB: the whole disk
        let flags = disk.read_chunks(chunk, 0, &mut buf).unwrap();
        let first = (3 << 20) / chunk;
        let last = ((3 << 20) + 100_000 - 1) / chunk;
        for (i, f) in flags.iter().enumerate() {
            assert_eq!(*f, (first..=last).contains(&i), "chunk {i}");
            if *f {
                assert_eq!(
                    &buf[i * chunk..(i + 1) * chunk],
                    &dense[i * chunk..(i + 1) * chunk]
                );
            }
        }
    }

    #[test]
    fn reads_past_the_end_as_zeros() {
        let mut disk = RawDisk::new(Cursor::new(vec![5u8; 1000])).unwrap();
        let mut buf = vec![0xAAu8; 1024];
        let flags = disk.read_chunks(512, 0, &mut buf).unwrap();
        assert_eq!(flags, [true, true]);
        assert!(buf[..1000].iter().all(|&b| b == 5));
        assert!(buf[1000..].iter().all(|&b| b == 0));
        let flags = disk.read_chunks(512, 2, &mut buf).unwrap();
        assert_eq!(flags, [false, false]);
    }
}
