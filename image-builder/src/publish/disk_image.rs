//! The installable disk image of a release: the build's `disk.raw` as one zstd frame,
//! `payload/disk.img.zst` ([`channels::release::DISK_IMAGE`]), described in `release.json`
//! ([`DiskInfo`]) so that an installer can check the download, the decompressed stream and
//! what it wrote.
//!
//! The bytes are reproducible: one thread, a fixed level and fixed frame parameters (content
//! size and checksum in the frame, no dictionary), so the same `disk.raw` always gives the same
//! file. The raw disk is streamed (holes read as zeros without touching them, never held in
//! memory) and hashed on the way, so a `disk.raw` that is not build.json's is refused.

use std::io::{self, Write};
use std::path::Path;

use anyhow::{bail, Context, Result};
use channels::release::{DiskInfo, FileInfo, DISK_IMAGE};
use sha2::{Digest, Sha256};

use crate::disk::sparse;

/// zstd's level: its default, fast on the already-compressed slot and boot files, and on the
/// holes, which are most of a disk.
pub const ZSTD_LEVEL: i32 = 3;

/// Compress the raw disk at `raw` into `out` as one zstd frame, checking that it is `want`
/// (build.json's size and sha256 of it) while reading. Returns the compressed bytes' identity.
/// `out` has received a truncated frame when this fails; write to a temporary file.
pub fn compress(raw: &Path, want: &FileInfo, out: impl Write) -> Result<FileInfo> {
    let size = std::fs::metadata(raw)
        .with_context(|| format!("reading {}", raw.display()))?
        .len();
    if size != want.size {
        bail!(
            "{} does not match build.json ({size} bytes, build.json says {})",
            raw.display(),
            want.size
        );
    }
    let mut encoder = encoder(HashingWriter::new(out), size)
        .with_context(|| format!("starting to compress {}", raw.display()))?;
    let mut hasher = Sha256::new();
    sparse::for_each_chunk(raw, |_, chunk, _| {
        hasher.update(chunk);
        encoder.write_all(chunk)
    })
    .with_context(|| format!("compressing {}", raw.display()))?;
    let sha256 = hex::encode(hasher.finalize());
    if sha256 != want.sha256 {
        bail!(
            "{} does not match build.json (sha256 {sha256}, build.json says {})",
            raw.display(),
            want.sha256
        );
    }
    let mut hashed = encoder
        .finish()
        .with_context(|| format!("compressing {}", raw.display()))?;
    hashed.flush()?;
    Ok(hashed.identity())
}

/// The encoder of every disk image: the parameters that decide its bytes, all set here.
fn encoder<W: Write>(out: W, size: u64) -> io::Result<zstd::stream::write::Encoder<'static, W>> {
    let mut e = zstd::stream::write::Encoder::new(out, ZSTD_LEVEL)?;
    e.set_pledged_src_size(Some(size))?;
    e.include_contentsize(true)?;
    e.include_checksum(true)?;
    e.include_dictid(false)?;
    Ok(e)
}

/// Make `dir/disk.img.zst` from the raw disk `raw`, which build.json says is `want`, and
/// return its description for `release.json`. A file that `previous` (the description in the
/// release.json already in `dir`) says was made from the same disk, and that still has the
/// size it gave, is kept as it is; otherwise it is written afresh to a temporary name and
/// renamed into place.
pub fn write(
    raw: &Path,
    want: &FileInfo,
    dir: &Path,
    previous: Option<&DiskInfo>,
) -> Result<DiskInfo> {
    let path = dir.join(DISK_IMAGE);
    if let Some(previous) = previous.filter(|p| is_current(p, want, &path)) {
        return Ok(previous.clone());
    }
    let mut file = util::fs::AtomicFile::create(&path)
        .with_context(|| format!("creating {}", path.display()))?;
    let compressed = compress(raw, want, file.writer())?;
    file.commit()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(DiskInfo {
        file: DISK_IMAGE.to_string(),
        compressed,
        raw: want.clone(),
    })
}

/// Whether `path` is the image `previous` describes, made from the disk `want`: the cheap
/// check (names, the raw disk's identity, the file's size). `publish` hashes the file anyway
/// when it adds it to a repository, and refuses one that is not `previous.compressed`.
fn is_current(previous: &DiskInfo, want: &FileInfo, path: &Path) -> bool {
    previous.file == DISK_IMAGE
        && previous.raw == *want
        && std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.len() == previous.compressed.size)
}

/// A writer that hashes and counts what goes through it.
struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    size: u64,
}

impl<W: Write> HashingWriter<W> {
    fn new(inner: W) -> HashingWriter<W> {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            size: 0,
        }
    }

    fn identity(self) -> FileInfo {
        FileInfo {
            size: self.size,
            sha256: hex::encode(self.hasher.finalize()),
        }
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Seek, SeekFrom};

    /// A sparse 8 MiB "disk": a few data blocks between holes.
    fn sparse_disk(dir: &Path) -> (std::path::PathBuf, Vec<u8>) {
        let p = dir.join("disk.raw");
        let mut f = std::fs::File::create(&p).unwrap();
        f.set_len(8 << 20).unwrap();
        for (at, seed) in [(0u64, 1u8), (3 << 20, 7), ((8 << 20) - 4096, 9)] {
            let block: Vec<u8> = (0..4096u32)
                .map(|i| (i as u8).wrapping_mul(seed) ^ (i >> 5) as u8)
                .collect();
            f.seek(SeekFrom::Start(at)).unwrap();
            f.write_all(&block).unwrap();
        }
        drop(f);
        let bytes = std::fs::read(&p).unwrap();
        (p, bytes)
    }

    #[test]
    fn decompresses_to_the_raw_disk_and_is_reproducible() {
        let dir = tempfile::tempdir().unwrap();
        let (raw, bytes) = sparse_disk(dir.path());
        let want = FileInfo::of(&bytes);
        let mut a = Vec::new();
        let info = compress(&raw, &want, &mut a).unwrap();
        assert_eq!(info, FileInfo::of(&a));
        assert!(a.len() < 64 << 10, "holes compress: {} bytes", a.len());
        assert_eq!(zstd::decode_all(a.as_slice()).unwrap(), bytes);
        // The frame says how long the disk is (an installer can check the target's size first).
        assert_eq!(
            zstd::zstd_safe::get_frame_content_size(&a).unwrap(),
            Some(bytes.len() as u64)
        );

        let mut b = Vec::new();
        compress(&raw, &want, &mut b).unwrap();
        assert!(a == b, "the same disk gave other bytes");
    }

    #[test]
    fn refuses_a_disk_that_is_not_build_json_s() {
        let dir = tempfile::tempdir().unwrap();
        let (raw, bytes) = sparse_disk(dir.path());
        let mut wrong_size = FileInfo::of(&bytes);
        wrong_size.size += 512;
        let err = compress(&raw, &wrong_size, io::sink()).unwrap_err();
        assert!(
            err.to_string()
                .contains("disk.raw does not match build.json"),
            "{err}"
        );
        let mut wrong_hash = FileInfo::of(&bytes);
        wrong_hash.sha256 = "0".repeat(64);
        let err = compress(&raw, &wrong_hash, io::sink()).unwrap_err();
        assert!(
            err.to_string()
                .contains("disk.raw does not match build.json (sha256"),
            "{err}"
        );

        let out = dir.path().join("payload");
        std::fs::create_dir(&out).unwrap();
        assert!(write(&raw, &wrong_hash, &out, None).is_err());
        assert_eq!(
            std::fs::read_dir(&out).unwrap().count(),
            0,
            "nothing left behind"
        );
    }

    #[test]
    fn write_keeps_a_current_file_and_remakes_another() {
        let dir = tempfile::tempdir().unwrap();
        let (raw, bytes) = sparse_disk(dir.path());
        let want = FileInfo::of(&bytes);
        let out = dir.path().join("payload");
        std::fs::create_dir(&out).unwrap();
        let made = write(&raw, &want, &out, None).unwrap();
        let path = out.join(DISK_IMAGE);
        let file = std::fs::read(&path).unwrap();
        assert_eq!(made.file, DISK_IMAGE);
        assert_eq!(
            (made.compressed.clone(), made.raw.clone()),
            (FileInfo::of(&file), want.clone())
        );

        // Kept: the same description of the same disk, the file still its size.
        let mtime = || std::fs::metadata(&path).unwrap().modified().unwrap();
        let before = mtime();
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(write(&raw, &want, &out, Some(&made)).unwrap(), made);
        assert_eq!(mtime(), before, "rewritten although current");

        // Remade: a file cut short, or a description of another disk.
        std::fs::write(&path, &file[..10]).unwrap();
        assert_eq!(write(&raw, &want, &out, Some(&made)).unwrap(), made);
        assert_eq!(std::fs::read(&path).unwrap(), file);
        let mut other = made.clone();
        other.raw.sha256 = "1".repeat(64);
        std::fs::write(&path, b"stale").unwrap();
        other.compressed.size = 5;
        assert_eq!(write(&raw, &want, &out, Some(&other)).unwrap(), made);
        assert_eq!(std::fs::read(&path).unwrap(), file);
    }
}
