//! Sparse files: disk images are mostly holes. Reading a hole makes the kernel allocate and
//! zero page-cache pages, so hashing or copying an 800 MiB image the naive way costs seconds.
//! These helpers take the data extents from `diskfmt`'s raw-disk map (`SEEK_DATA`/`SEEK_HOLE`)
//! and treat holes as zeros without touching them.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;

use diskfmt::raw::RawDisk;
use sha2::{Digest, Sha256};

const BUF: usize = 1 << 20;
static ZEROS: [u8; 64 * 1024] = [0u8; 64 * 1024];

/// Feed every byte of the file to `sink(offset, bytes, data)`, holes as zeros from a static
/// buffer (`data` false). Returns the file's size.
pub fn for_each_chunk(
    path: &Path,
    mut sink: impl FnMut(u64, &[u8], bool) -> io::Result<()>,
) -> io::Result<u64> {
    let map = RawDisk::open(path)?;
    let size = map.size();
    let mut f = File::open(path)?;
    let mut buf = vec![0u8; BUF];
    let mut at = 0;
    for r in map.data_ranges() {
        holes_until(&mut at, r.start, &mut sink)?;
        f.seek(SeekFrom::Start(r.start))?;
        while at < r.end {
            let n = (r.end - at).min(BUF as u64) as usize;
            f.read_exact(&mut buf[..n])?;
            sink(at, &buf[..n], true)?;
            at += n as u64;
        }
    }
    holes_until(&mut at, size, &mut sink)?;
    Ok(size)
}

/// Hand the hole from `*at` to `end` to `sink` as zeros.
fn holes_until(
    at: &mut u64,
    end: u64,
    sink: &mut impl FnMut(u64, &[u8], bool) -> io::Result<()>,
) -> io::Result<()> {
    while *at < end {
        let n = (end - *at).min(ZEROS.len() as u64) as usize;
        sink(*at, &ZEROS[..n], false)?;
        *at += n as u64;
    }
    Ok(())
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

        let mut holes = 0;
        for_each_chunk(&p, |_, chunk, data| {
            holes += if data { 0 } else { chunk.len() };
            Ok(())
        })
        .unwrap();
        assert!(holes > 0, "the holes were read");

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
