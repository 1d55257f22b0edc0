//! Writing a release's disk image onto a device: the pure-ish heart of `coreos-install`, over any
//! [`Read`] source and any [`Device`] (a block device's [`File`], a regular file, a `Cursor` in
//! tests).
//!
//! In order, and nothing else:
//!
//! 1. size: the device must hold the raw image (`force`: only on a blank device, whose first
//!    MiB is all zero);
//! 2. the first MiB ([`HEAD`]) is zeroed and synced, before a byte of the image is written: a
//!    previous OS on the device no longer boots, no stale partition table is left, and from
//!    here on a device whose install did not finish has no partition table;
//! 3. the compressed stream is verified while it streams (size and sha256 of the signed
//!    manifest's `disk.img.zst`: [`VerifyingReader`]), zstd-decoded, the raw bytes counted and
//!    hashed; the first MiB is kept in memory, the rest written from offset 1 MiB on;
//! 4. at the end: the compressed stream verified, the raw size and sha256 equal to
//!    release.json's, the device synced; only then the first MiB is written, and synced;
//! 5. the whole written range is read back (the page cache dropped first where the device
//!    allows it) and its sha256 compared with release.json's once more.
//!
//! Any failure before step 4's last write leaves the first MiB zero. Memory stays bounded: the
//! first MiB, one [`CHUNK`] buffer, zstd's window (at most 2^[`MAX_WINDOW_LOG`] bytes).

use std::fs::File;
use std::io::{self, BufReader, Cursor, Read, Seek, SeekFrom, Write};

use crate::http::fill;
use channels::{PayloadError, PayloadRef, VerifyingReader};
use sha2::{Digest, Sha256};

/// The part of the device written last: its partition tables (MBR, GPT header and entries).
pub const HEAD: u64 = 1 << 20;
/// Bytes per read and write.
pub const CHUNK: usize = 1 << 20;
/// The largest zstd window accepted (32 MiB): the image must be compressed with a window no
/// larger (zstd levels 1-19 without `--long` use at most 8 MiB).
pub const MAX_WINDOW_LOG: u32 = 25;

/// The disk image of a release, as the signed manifest and its release.json describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskImage {
    /// `disk.img.zst`: the compressed file, from the signed manifest.
    pub compressed: PayloadRef,
    /// The raw disk's length.
    pub raw_size: u64,
    /// The raw disk's sha256, lowercase hex.
    pub raw_sha256: String,
}

/// What the image is written onto.
pub trait Device: Read + Write + Seek {
    /// Flushes the written bytes to stable storage.
    fn sync(&mut self) -> io::Result<()>;
    /// Drops cached pages so a read back reads the medium (best effort).
    fn drop_cache(&mut self) {}
}

impl Device for File {
    fn sync(&mut self) -> io::Result<()> {
        self.sync_all()
    }
    fn drop_cache(&mut self) {
        use std::os::fd::AsRawFd;
        // SAFETY: an advice call on an fd we own; it does not touch memory.
        unsafe {
            libc::posix_fadvise(self.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED);
        }
    }
}

impl Device for Cursor<Vec<u8>> {
    fn sync(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Why the image was not (completely) written. Unless said otherwise the device's first MiB is
/// zero.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The device is smaller than the raw image.
    #[error("refused: the disk has {have} bytes, the image needs {need}{hint}")]
    TooSmall {
        /// The raw image's size.
        need: u64,
        /// The device's.
        have: u64,
        /// Why `--force` does not help, if it was given.
        hint: &'static str,
    },
    /// Reading, writing, seeking or syncing the device failed.
    #[error("{what}: {source}")]
    Device {
        /// What was being done.
        what: String,
        /// The cause.
        source: io::Error,
    },
    /// The compressed bytes do not match the signed manifest.
    #[error("refused: disk.img.zst does not match the signed manifest: {0}")]
    Compressed(PayloadError),
    /// Reading the compressed bytes failed (the download gave up, the file is unreadable).
    #[error("reading disk.img.zst: {0}")]
    Source(io::Error),
    /// zstd refused the stream.
    #[error("refused: decompressing disk.img.zst: {0}")]
    Decode(io::Error),
    /// The raw image is not what release.json says.
    #[error("refused: the decompressed disk image is {got_size} bytes with sha256 {got_sha256}, release.json says {want_size} bytes with sha256 {want_sha256}")]
    Raw {
        /// release.json's size.
        want_size: u64,
        /// release.json's sha256.
        want_sha256: String,
        /// What came out (a lower bound when it was longer).
        got_size: u64,
        /// Its sha256 (empty when it was longer than declared).
        got_sha256: String,
    },
    /// The bytes read back differ from those written.
    #[error("read back {size} bytes with sha256 {actual}, written {expected}: the disk does not keep what is written to it (its first MiB holds the written partition table)")]
    Readback {
        /// Bytes read back.
        size: u64,
        /// The image's sha256.
        expected: String,
        /// What was read.
        actual: String,
    },
}

fn dev_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> PipelineError {
    let what = what.into();
    move |source| PipelineError::Device { what, source }
}

/// The length of `device` (its end).
pub fn device_len(device: &mut impl Seek) -> io::Result<u64> {
    device.seek(SeekFrom::End(0))
}

/// Whether the first MiB (or all, if shorter) of `device` is zero.
pub fn is_blank(device: &mut (impl Read + Seek)) -> io::Result<bool> {
    device.seek(SeekFrom::Start(0))?;
    let mut buf = vec![0u8; CHUNK];
    let mut left = HEAD;
    while left > 0 {
        let want = usize::try_from(left.min(CHUNK as u64)).unwrap_or(CHUNK);
        let n = fill(device, &mut buf[..want])?;
        if n == 0 {
            break;
        }
        if buf[..n].iter().any(|b| *b != 0) {
            return Ok(false);
        }
        left -= n as u64;
    }
    Ok(true)
}

/// What was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// Raw bytes written (and read back).
    pub raw_bytes: u64,
}

/// Writes `image`, whose compressed bytes `source` yields (unverified: they are verified here),
/// onto `device` (module docs). `progress(written, total)` follows the raw bytes.
pub fn write_image<D: Device>(
    source: impl Read,
    image: &DiskImage,
    device: &mut D,
    force: bool,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Written, PipelineError> {
    // 1. Size.
    let have = device_len(device).map_err(dev_err("sizing the disk"))?;
    if have < image.raw_size {
        let blank = force && is_blank(device).map_err(dev_err("reading the disk's first MiB"))?;
        if !blank {
            return Err(PipelineError::TooSmall {
                need: image.raw_size,
                have,
                hint: if force {
                    " (--force relaxes the size check only on a blank disk, whose first MiB is zero)"
                } else {
                    ""
                },
            });
        }
    }
    // 2. No partition table from here until the image verified.
    let zeros = vec![0u8; usize::try_from(HEAD.min(have.max(image.raw_size))).unwrap_or(0)];
    device
        .seek(SeekFrom::Start(0))
        .and_then(|_| device.write_all(&zeros))
        .and_then(|()| device.sync())
        .map_err(dev_err("zeroing the disk's first MiB"))?;
    drop(zeros);

    // 3. Stream.
    let verifying = VerifyingReader::new(source, &image.compressed);
    let mut decoder =
        zstd::stream::read::Decoder::with_buffer(BufReader::with_capacity(128 << 10, verifying))
            .map_err(PipelineError::Decode)?;
    decoder
        .window_log_max(MAX_WINDOW_LOG)
        .map_err(PipelineError::Decode)?;
    let head_len = usize::try_from(HEAD.min(image.raw_size)).unwrap_or(0);
    let mut head = Vec::with_capacity(head_len);
    let mut buf = vec![0u8; CHUNK];
    let mut hasher = Sha256::new();
    let mut raw = 0u64;
    device
        .seek(SeekFrom::Start(HEAD))
        .map_err(dev_err("seeking the disk"))?;
    loop {
        let n = fill(&mut decoder, &mut buf).map_err(stream_error)?;
        if n == 0 {
            break;
        }
        let chunk = &buf[..n];
        if raw + n as u64 > image.raw_size {
            return Err(PipelineError::Raw {
                want_size: image.raw_size,
                want_sha256: image.raw_sha256.clone(),
                got_size: raw + n as u64,
                got_sha256: String::new(),
            });
        }
        hasher.update(chunk);
        let into_head = head_len.saturating_sub(head.len()).min(n);
        head.extend_from_slice(&chunk[..into_head]);
        let rest = &chunk[into_head..];
        if !rest.is_empty() {
            device.write_all(rest).map_err(|e| {
                dev_err(format!(
                    "writing the disk at byte {}",
                    raw + into_head as u64
                ))(e)
            })?;
        }
        raw += n as u64;
        progress(raw, image.raw_size);
    }
    // The compressed stream must have been read to its end (and so verified).
    let mut rest = decoder.finish();
    io::copy(&mut rest, &mut io::sink()).map_err(stream_error)?;
    if !rest.into_inner().is_verified() {
        return Err(PipelineError::Source(io::Error::other(
            "the compressed stream was not read to its end",
        )));
    }

    // 4. Raw size and hash, then the head.
    let sha = hex::encode(hasher.finalize());
    if raw != image.raw_size || sha != image.raw_sha256 {
        return Err(PipelineError::Raw {
            want_size: image.raw_size,
            want_sha256: image.raw_sha256.clone(),
            got_size: raw,
            got_sha256: sha,
        });
    }
    device.sync().map_err(dev_err("syncing the disk"))?;
    device
        .seek(SeekFrom::Start(0))
        .and_then(|_| device.write_all(&head))
        .and_then(|()| device.sync())
        .map_err(dev_err("writing the disk's first MiB"))?;
    drop(head);

    // 5. Read back.
    device.drop_cache();
    device
        .seek(SeekFrom::Start(0))
        .map_err(dev_err("seeking the disk"))?;
    let mut hasher = Sha256::new();
    let mut left = image.raw_size;
    while left > 0 {
        let want = usize::try_from(left.min(CHUNK as u64)).unwrap_or(CHUNK);
        let n = fill(device, &mut buf[..want]).map_err(dev_err("reading the disk back"))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        left -= n as u64;
    }
    let actual = hex::encode(hasher.finalize());
    if left != 0 || actual != image.raw_sha256 {
        return Err(PipelineError::Readback {
            size: image.raw_size - left,
            expected: image.raw_sha256.clone(),
            actual,
        });
    }
    Ok(Written { raw_bytes: raw })
}

/// Sorts an error out of the decoder: the manifest's verdict on the compressed bytes, the
/// source's own failure, or zstd's.
fn stream_error(e: io::Error) -> PipelineError {
    if let Some(p) = PayloadError::from_io(&e) {
        return PipelineError::Compressed(p.clone());
    }
    let from_source = e
        .get_ref()
        .is_some_and(|inner| inner.is::<crate::http::FetchError>())
        || !matches!(
            e.kind(),
            io::ErrorKind::Other
                | io::ErrorKind::InvalidData
                | io::ErrorKind::InvalidInput
                | io::ErrorKind::UnexpectedEof
        );
    if from_source {
        PipelineError::Source(e)
    } else {
        PipelineError::Decode(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A raw disk of `len` bytes: a recognizable first MiB, then varied bytes.
    pub(crate) fn raw_disk(len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| ((i as u32).wrapping_mul(2_654_435_761) >> 13) as u8 | 1)
            .collect()
    }

    pub(crate) fn image_of(raw: &[u8]) -> (Vec<u8>, DiskImage) {
        let zst = zstd::encode_all(raw, 3).unwrap();
        let image = DiskImage {
            compressed: PayloadRef {
                sha256: hex::encode(Sha256::digest(&zst)),
                size: zst.len() as u64,
            },
            raw_size: raw.len() as u64,
            raw_sha256: hex::encode(Sha256::digest(raw)),
        };
        (zst, image)
    }

    /// A device of `len` bytes with an old OS on it (0xEE everywhere).
    fn old_disk(len: usize) -> Cursor<Vec<u8>> {
        Cursor::new(vec![0xEE; len])
    }

    fn head_is_zero(dev: &Cursor<Vec<u8>>) -> bool {
        dev.get_ref()[..HEAD as usize].iter().all(|b| *b == 0)
    }

    const RAW: usize = 3 * HEAD as usize + 12345;

    #[test]
    fn writes_the_exact_bytes_and_reads_them_back() {
        let raw = raw_disk(RAW);
        let (zst, image) = image_of(&raw);
        let mut dev = old_disk(RAW + 4096);
        let mut seen = Vec::new();
        let w = write_image(&zst[..], &image, &mut dev, false, &mut |a, b| {
            seen.push((a, b))
        })
        .unwrap();
        assert_eq!(w.raw_bytes, RAW as u64);
        assert_eq!(&dev.get_ref()[..RAW], &raw[..]);
        assert!(
            dev.get_ref()[RAW..].iter().all(|b| *b == 0xEE),
            "past the image: untouched"
        );
        assert_eq!(seen.last(), Some(&(RAW as u64, RAW as u64)));
        assert!(seen.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn a_regular_file_works_too() {
        let raw = raw_disk(RAW);
        let (zst, image) = image_of(&raw);
        let mut file = tempfile::tempfile().unwrap();
        file.set_len(RAW as u64).unwrap();
        write_image(&zst[..], &image, &mut file, false, &mut |_, _| {}).unwrap();
        file.seek(SeekFrom::Start(0)).unwrap();
        let mut back = Vec::new();
        file.read_to_end(&mut back).unwrap();
        assert_eq!(back, raw);
    }

    #[test]
    fn a_tampered_compressed_byte_is_refused_with_the_head_zero() {
        let raw = raw_disk(RAW);
        let (mut zst, image) = image_of(&raw);
        // Every position: the frame header, a block, the end.
        for at in [5, zst.len() / 2, zst.len() - 1] {
            zst[at] ^= 0x40;
            let mut dev = old_disk(RAW);
            let e = write_image(&zst[..], &image, &mut dev, false, &mut |_, _| {}).unwrap_err();
            assert!(
                matches!(
                    e,
                    PipelineError::Compressed(_)
                        | PipelineError::Decode(_)
                        | PipelineError::Raw { .. }
                ),
                "{at}: {e}"
            );
            assert!(e.to_string().starts_with("refused: "), "{e}");
            assert!(head_is_zero(&dev), "{at}: first MiB must be zero");
            zst[at] ^= 0x40;
        }
    }

    #[test]
    fn a_wrong_raw_hash_is_refused_with_the_head_zero() {
        let raw = raw_disk(RAW);
        let (zst, mut image) = image_of(&raw);
        image.raw_sha256 = hex::encode(Sha256::digest(b"another disk"));
        let mut dev = old_disk(RAW);
        let e = write_image(&zst[..], &image, &mut dev, false, &mut |_, _| {}).unwrap_err();
        assert!(matches!(e, PipelineError::Raw { .. }), "{e}");
        assert!(e.to_string().contains("release.json says"), "{e}");
        assert!(head_is_zero(&dev));
        // A raw size that differs: longer than declared stops at once, shorter at the end.
        for size in [RAW as u64 - 1, RAW as u64 + 1] {
            let (zst, mut image) = image_of(&raw);
            image.raw_size = size;
            let mut dev = old_disk(RAW + 10);
            let e = write_image(&zst[..], &image, &mut dev, false, &mut |_, _| {}).unwrap_err();
            assert!(matches!(e, PipelineError::Raw { .. }), "{e}");
            assert!(head_is_zero(&dev));
        }
    }

    #[test]
    fn a_truncated_download_is_refused_with_the_head_zero() {
        let raw = raw_disk(RAW);
        let (zst, image) = image_of(&raw);
        for len in [0, 10, zst.len() / 2, zst.len() - 1] {
            let mut dev = old_disk(RAW);
            let e = write_image(&zst[..len], &image, &mut dev, false, &mut |_, _| {}).unwrap_err();
            assert!(
                matches!(e, PipelineError::Compressed(_) | PipelineError::Decode(_)),
                "{len}: {e}"
            );
            assert!(head_is_zero(&dev), "{len}");
        }
        // A source that fails: its error, the head zero.
        struct Broken;
        impl Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::new(io::ErrorKind::ConnectionReset, "gone"))
            }
        }
        let mut dev = old_disk(RAW);
        let e = write_image(Broken, &image, &mut dev, false, &mut |_, _| {}).unwrap_err();
        assert!(matches!(e, PipelineError::Source(_)), "{e}");
        assert!(head_is_zero(&dev));
    }

    #[test]
    fn a_small_disk_is_refused_before_writing() {
        let raw = raw_disk(RAW);
        let (zst, image) = image_of(&raw);
        for force in [false, true] {
            let mut dev = old_disk(RAW - 1);
            let e = write_image(&zst[..], &image, &mut dev, force, &mut |_, _| {}).unwrap_err();
            assert!(matches!(e, PipelineError::TooSmall { .. }), "{e}");
            assert_eq!(e.to_string().contains("--force"), force, "{e}");
            assert!(dev.get_ref().iter().all(|b| *b == 0xEE), "nothing written");
        }
        // --force on a blank (first MiB zero) disk: written (a Cursor grows, like a file).
        let mut dev = Cursor::new(vec![0u8; HEAD as usize]);
        write_image(&zst[..], &image, &mut dev, true, &mut |_, _| {}).unwrap();
        assert_eq!(dev.get_ref(), &raw);
    }

    #[test]
    fn a_tiny_image_shorter_than_the_head() {
        let raw = raw_disk(5000);
        let (zst, image) = image_of(&raw);
        let mut dev = old_disk(8192);
        write_image(&zst[..], &image, &mut dev, false, &mut |_, _| {}).unwrap();
        assert_eq!(&dev.get_ref()[..5000], &raw[..]);
    }

    /// A device that loses what is written past the head: the read back says so.
    #[test]
    fn a_device_that_forgets_fails_the_read_back() {
        struct Forgetful(Cursor<Vec<u8>>);
        impl Read for Forgetful {
            fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
                let at = self.0.position();
                let n = self.0.read(b)?;
                if at + n as u64 > 2 * HEAD {
                    b[..n].fill(0);
                }
                Ok(n)
            }
        }
        impl Write for Forgetful {
            fn write(&mut self, b: &[u8]) -> io::Result<usize> {
                self.0.write(b)
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        impl Seek for Forgetful {
            fn seek(&mut self, p: SeekFrom) -> io::Result<u64> {
                self.0.seek(p)
            }
        }
        impl Device for Forgetful {
            fn sync(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let raw = raw_disk(RAW);
        let (zst, image) = image_of(&raw);
        let mut dev = Forgetful(old_disk(RAW));
        let e = write_image(&zst[..], &image, &mut dev, false, &mut |_, _| {}).unwrap_err();
        assert!(matches!(e, PipelineError::Readback { .. }), "{e}");
    }
}
