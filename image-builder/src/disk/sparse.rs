//! Sparse files: disk images are mostly holes. Reading a hole makes the kernel allocate and
//! zero page-cache pages, so hashing or copying an 800 MiB image the naive way costs seconds.
//! These helpers walk the data extents with `SEEK_DATA`/`SEEK_HOLE` and treat holes as zeros
//! without touching them.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::io::AsRawFd;
use std::path::Path;

use sha2::{Digest, Sha256};

const BUF: usize = 1 << 20;
static ZEROS: [u8; 64 * 1024] = [0u8; 64 * 1024];

/// A run of a file: `len` bytes at `offset`, either data or a hole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extent {
    pub offset: u64,
    pub len: u64,
    pub data: bool,
}

/// The data and hole extents of a file, in order, covering it exactly.
pub fn extents(f: &File) -> io::Result<Vec<Extent>> {
    let size = f.metadata()?.len();
    let fd = f.as_raw_fd();
    let mut out = Vec::new();
    let mut pos = 0u64;
    while pos < size {
        // SAFETY: lseek on a valid descriptor we own; it does not touch memory.
        let data = unsafe { libc::lseek(fd, pos as libc::off_t, libc::SEEK_DATA) };
        let data = if data < 0 {
            match io::Error::last_os_error().raw_os_error() {
                Some(libc::ENXIO) => size, // no more data: the rest is a hole
                Some(libc::EINVAL) => {
                    return Ok(vec![Extent {
                        offset: 0,
                        len: size,
                        data: true,
                    }])
                }
                _ => return Err(io::Error::last_os_error()),
            }
        } else {
            data as u64
        };
        if data > pos {
            out.push(Extent {
                offset: pos,
                len: data - pos,
                data: false,
            });
        }
        if data >= size {
            break;
        }
        // SAFETY: as above.
        let hole = unsafe { libc::lseek(fd, data as libc::off_t, libc::SEEK_HOLE) };
        let hole = if hole < 0 {
            return Err(io::Error::last_os_error());
        } else {
            (hole as u64).min(size)
        };
        out.push(Extent {
            offset: data,
            len: hole - data,
            data: true,
        });
        pos = hole;
    }
    Ok(out)
}

/// Feed every byte of the file to `sink`, holes as zeros from a static buffer.
pub fn for_each_chunk(
    path: &Path,
    mut sink: impl FnMut(u64, &[u8], bool) -> io::Result<()>,
) -> io::Result<u64> {
    let mut f = File::open(path)?;
    let mut buf = vec![0u8; BUF];
    let mut total = 0;
    for e in extents(&f)? {
        let mut left = e.len;
        let mut at = e.offset;
        if e.data {
            f.seek(SeekFrom::Start(e.offset))?;
        }
        while left > 0 {
            let n = left.min(if e.data { BUF } else { ZEROS.len() } as u64) as usize;
            if e.data {
                f.read_exact(&mut buf[..n])?;
                sink(at, &buf[..n], true)?;
            } else {
                sink(at, &ZEROS[..n], false)?;
            }
            left -= n as u64;
            at += n as u64;
        }
        total += e.len;
    }
    Ok(total)
}

/// sha256 (hex) and size of a file, holes hashed as zeros without reading them.
pub fn sha256(path: &Path) -> io::Result<(String, u64)> {
    let mut h = Sha256::new();
    let size = for_each_chunk(path, |_, chunk, _| {
        h.update(chunk);
        Ok(())
    })?;
    Ok((hex::encode(h.finalize()), size))
}

/// Copy the data extents of `src` into `out` at `base`; holes are skipped (the target was
/// created sparse, so they stay zeros). Returns the source size.
pub fn copy_into(src: &Path, out: &mut File, base: u64) -> io::Result<u64> {
    for_each_chunk(src, |at, chunk, data| {
        if data && chunk.iter().any(|&b| b != 0) {
            out.seek(SeekFrom::Start(base + at))?;
            out.write_all(chunk)?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_sparse_files_like_dense_ones() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sparse");
        let mut f = File::create(&p).unwrap();
        f.set_len(10 << 20).unwrap();
        f.seek(SeekFrom::Start(3 << 20)).unwrap();
        f.write_all(b"data in the middle").unwrap();
        f.seek(SeekFrom::Start((10 << 20) - 1)).unwrap();
        f.write_all(b"!").unwrap();
        drop(f);
        let dense = std::fs::read(&p).unwrap();
        let want = hex::encode(Sha256::digest(&dense));
        assert_eq!(sha256(&p).unwrap(), (want, 10 << 20));

        let f = File::open(&p).unwrap();
        let ext = extents(&f).unwrap();
        assert_eq!(ext.iter().map(|e| e.len).sum::<u64>(), 10 << 20);
        assert!(ext.iter().any(|e| !e.data), "{ext:?}");

        let q = dir.path().join("copy");
        let mut out = File::create(&q).unwrap();
        out.set_len(12 << 20).unwrap();
        copy_into(&p, &mut out, 1 << 20).unwrap();
        drop(out);
        let copied = std::fs::read(&q).unwrap();
        assert_eq!(&copied[1 << 20..11 << 20], dense.as_slice());
    }

    #[test]
    fn empty_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("empty");
        File::create(&p).unwrap();
        assert_eq!(sha256(&p).unwrap().1, 0);
    }
}
