//! The USR slot image: a squashfs (zstd) of the `/usr` tree, written with `backhand`.
//!
//! Deterministic by construction: the tree is sorted and every timestamp (entries and the
//! superblock) comes from the tree or `source_date_epoch`.
//!
//! backhand compresses blocks one after another on one thread. To use every core without
//! changing a byte of the output, the image is written twice: a first pass with a compressor
//! that only records the blocks it is asked to compress, then every recorded block is
//! compressed in parallel (exactly as backhand would), and the real pass finds each result in a
//! cache. Blocks whose content depends on compressed sizes (metadata) miss the cache and are
//! compressed on the spot.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::{Cursor, Seek, Write};

use backhand::compression::{
    CompressionAction, CompressionOptions, Compressor, DefaultCompressor, Zstd,
};
use backhand::kind::Kind as SquashfsKind;
use backhand::{BackhandError, FilesystemCompressor, FilesystemWriter, NodeHeader, SuperBlock};
use rootfs::tree::{Kind, Tree};
use sha2::{Digest, Sha256};

/// zstd level for /usr: close to `mksquashfs -comp zstd` (level 15) in size, much faster.
pub const ZSTD_LEVEL: u32 = 15;

#[derive(Debug, thiserror::Error)]
pub enum UsrError {
    #[error("writing squashfs entry {path}: {source}")]
    Entry {
        path: String,
        source: backhand::BackhandError,
    },
    #[error("writing squashfs image: {0}")]
    Write(backhand::BackhandError),
    #[error("hard link {path} points to {target}, which is not a file under /usr")]
    DanglingHardlink { path: String, target: String },
    #[error("squashfs image is {size} bytes, more than the {limit}-byte USR partition; raise partitions.usr_mib")]
    TooLarge { size: u64, limit: u64 },
}

/// File data shared with the tree, readable through a `Cursor` without copying.
struct Shared(std::sync::Arc<Vec<u8>>);

impl AsRef<[u8]> for Shared {
    fn as_ref(&self) -> &[u8] {
        self.0.as_slice()
    }
}

fn header(mode: u32, uid: u32, gid: u32, mtime: u64) -> NodeHeader {
    NodeHeader::new(
        mode as u16 & 0o7777,
        uid,
        gid,
        mtime.min(u32::MAX as u64) as u32,
    )
}

/// What the compressor does on this thread.
enum Mode {
    /// Plain backhand behaviour.
    Direct,
    /// Remember every block, return it uncompressed (output discarded).
    Record(Vec<Vec<u8>>),
    /// Look blocks up by content; compress what is not there.
    Cached(HashMap<[u8; 32], Vec<u8>>),
}

thread_local! {
    static MODE: RefCell<Mode> = const { RefCell::new(Mode::Direct) };
}

/// The compressor handed to backhand; its behaviour is the calling thread's [`Mode`].
struct PrecomputedZstd;

static PRECOMPUTED: PrecomputedZstd = PrecomputedZstd;

fn key(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Compress one block exactly as backhand's zstd path does.
fn zstd_block(bytes: &[u8], level: u32) -> std::io::Result<Vec<u8>> {
    let mut encoder = zstd::bulk::Compressor::new(level as i32)?;
    let mut buf = Vec::with_capacity(zstd::zstd_safe::compress_bound(bytes.len()));
    encoder.compress_to_buffer(bytes, &mut buf)?;
    Ok(buf)
}

impl CompressionAction for PrecomputedZstd {
    type Error = BackhandError;
    type Compressor = Compressor;
    type FilesystemCompressor = FilesystemCompressor;
    type SuperBlock = SuperBlock;

    fn decompress(
        &self,
        bytes: &[u8],
        out: &mut Vec<u8>,
        compressor: Compressor,
    ) -> Result<(), BackhandError> {
        DefaultCompressor.decompress(bytes, out, compressor)
    }

    fn compress(
        &self,
        bytes: &[u8],
        fc: FilesystemCompressor,
        block_size: u32,
    ) -> Result<Vec<u8>, BackhandError> {
        let hit = MODE.with(|m| match &mut *m.borrow_mut() {
            Mode::Direct => None,
            Mode::Record(blocks) => {
                blocks.push(bytes.to_vec());
                Some(bytes.to_vec())
            }
            Mode::Cached(cache) => cache.get(&key(bytes)).cloned(),
        });
        match hit {
            Some(out) => Ok(out),
            None => DefaultCompressor.compress(bytes, fc, block_size),
        }
    }

    fn compression_options(
        &self,
        superblock: &mut SuperBlock,
        kind: &SquashfsKind,
        fs_compressor: FilesystemCompressor,
    ) -> Result<Option<Vec<u8>>, BackhandError> {
        DefaultCompressor.compression_options(superblock, kind, fs_compressor)
    }
}

/// A configured writer holding the whole tree.
fn writer(
    tree: &Tree,
    epoch: u64,
) -> Result<FilesystemWriter<'static, 'static, 'static>, UsrError> {
    let mut fs = FilesystemWriter::default();
    fs.set_kind(SquashfsKind::new_v4(&PRECOMPUTED));
    fs.set_time(epoch.min(u32::MAX as u64) as u32);
    fs.set_root_mode(0o755);
    fs.set_root_uid(0);
    fs.set_root_gid(0);
    let zstd = CompressionOptions::Zstd(Zstd {
        compression_level: ZSTD_LEVEL,
    });
    let compressor =
        FilesystemCompressor::new(Compressor::Zstd, Some(zstd)).map_err(UsrError::Write)?;
    fs.set_compressor(compressor);
    for (path, e) in tree.iter() {
        let h = header(e.mode, e.uid, e.gid, e.mtime);
        let entry_err = |source| UsrError::Entry {
            path: path.clone(),
            source,
        };
        match &e.kind {
            Kind::Dir => fs.push_dir(path, h).map_err(entry_err)?,
            Kind::File(data) => fs
                .push_file(Cursor::new(Shared(data.clone())), path, h)
                .map_err(entry_err)?,
            Kind::Symlink(target) => fs.push_symlink(target, path, h).map_err(entry_err)?,
            // squashfs in backhand has no hard links; duplicate detection stores the data once.
            Kind::Hardlink(target) => {
                let data = match tree.get(target).map(|t| &t.kind) {
                    Some(Kind::File(d)) => d.clone(),
                    _ => {
                        return Err(UsrError::DanglingHardlink {
                            path: path.clone(),
                            target: target.clone(),
                        })
                    }
                };
                fs.push_file(Cursor::new(Shared(data)), path, h)
                    .map_err(entry_err)?
            }
        }
    }
    Ok(fs)
}

/// Blocks compressed by one worker: (content key, compressed bytes).
type Compressed = Vec<([u8; 32], Vec<u8>)>;

/// Compress blocks on every core; results keyed by content.
fn compress_all(blocks: Vec<Vec<u8>>, level: u32) -> Result<HashMap<[u8; 32], Vec<u8>>, UsrError> {
    let mut unique: HashMap<[u8; 32], Vec<u8>> = HashMap::new();
    for b in blocks {
        unique.entry(key(&b)).or_insert(b);
    }
    let jobs: Vec<([u8; 32], Vec<u8>)> = unique.into_iter().collect();
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(jobs.len().max(1));
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<std::io::Result<Compressed>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some((k, block)) = jobs.get(i) else {
                            return Ok(done);
                        };
                        done.push((*k, zstd_block(block, level)?));
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(std::io::Error::other("compression thread panicked")))
            })
            .collect()
    });
    let mut cache = HashMap::new();
    for r in results {
        cache.extend(r.map_err(|e| UsrError::Write(BackhandError::StdIo(e)))?);
    }
    Ok(cache)
}

/// Write `tree` (already re-rooted at /usr) as a squashfs to `out`; returns the image size.
pub fn write_squashfs(
    tree: &Tree,
    epoch: u64,
    out: &mut (impl Write + Seek),
) -> Result<u64, UsrError> {
    // Pass 1: learn which blocks backhand will compress.
    MODE.with(|m| *m.borrow_mut() = Mode::Record(Vec::new()));
    let recorded = writer(tree, epoch)
        .and_then(|mut fs| fs.write(Cursor::new(Vec::new())).map_err(UsrError::Write));
    let blocks = match MODE.with(|m| std::mem::replace(&mut *m.borrow_mut(), Mode::Direct)) {
        Mode::Record(blocks) => blocks,
        _ => Vec::new(),
    };
    recorded?;
    // Compress them in parallel, then write for real from the cache.
    let cache = compress_all(blocks, ZSTD_LEVEL)?;
    MODE.with(|m| *m.borrow_mut() = Mode::Cached(cache));
    let written = writer(tree, epoch).and_then(|mut fs| fs.write(out).map_err(UsrError::Write));
    MODE.with(|m| *m.borrow_mut() = Mode::Direct);
    Ok(written?.1)
}

/// Build the squashfs in memory and check that it fits a USR partition of `limit` bytes.
pub fn build(tree: &Tree, epoch: u64, limit: u64) -> Result<Vec<u8>, UsrError> {
    let mut cur = Cursor::new(Vec::new());
    write_squashfs(tree, epoch, &mut cur)?;
    let img = cur.into_inner();
    if img.len() as u64 > limit {
        return Err(UsrError::TooLarge {
            size: img.len() as u64,
            limit,
        });
    }
    Ok(img)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rootfs::tree::Entry;

    fn sample() -> Tree {
        let mut t = Tree::new();
        t.insert(
            "bin/busybox",
            Entry::file(vec![7u8; 300_000], 0o755).with_mtime(100),
        )
        .unwrap();
        t.insert("bin/sh", Entry::symlink("busybox").with_mtime(100))
            .unwrap();
        t.insert(
            "lib/os-release",
            Entry::file(b"NAME=x\n".to_vec(), 0o644).with_mtime(100),
        )
        .unwrap();
        let mut su = Entry::file(b"suid".to_vec(), 0o4755);
        su.gid = 42;
        t.insert("bin/su", su).unwrap();
        let link = Entry {
            kind: Kind::Hardlink("bin/busybox".into()),
            ..Entry::dir(0o755)
        };
        t.insert("bin/busybox2", link).unwrap();
        t
    }

    #[test]
    fn deterministic_and_listable() {
        let a = build(&sample(), 1000, 1 << 30).unwrap();
        let b = build(&sample(), 1000, 1 << 30).unwrap();
        assert_eq!(a, b);
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("usr.img");
        std::fs::write(&img, &a).unwrap();
        let out = std::process::Command::new("unsquashfs")
            .args(["-lln"])
            .arg(&img)
            .output()
            .expect("unsquashfs");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{text}");
        assert!(text.contains("squashfs-root/bin/sh -> busybox"), "{text}");
        assert!(text.contains("-rwsr-xr-x 0/42"), "{text}");
        let sb = std::process::Command::new("unsquashfs")
            .arg("-s")
            .arg(&img)
            .output()
            .unwrap();
        let sb = String::from_utf8_lossy(&sb.stdout);
        assert!(sb.contains("Compression zstd"), "{sb}");
    }

    #[test]
    fn parallel_precompression_matches_plain_backhand() {
        let mut t = sample();
        for i in 0..40u32 {
            let data: Vec<u8> = (0..(i * 9000)).map(|j| (j * 7 / (i + 1)) as u8).collect();
            t.insert(&format!("lib/modules/m{i}.ko"), Entry::file(data, 0o644))
                .unwrap();
        }
        let fast = build(&t, 1000, 1 << 30).unwrap();
        let mut plain = Cursor::new(Vec::new());
        writer(&t, 1000).unwrap().write(&mut plain).unwrap();
        assert_eq!(fast, plain.into_inner());
    }

    #[test]
    fn too_large_is_refused() {
        let mut t = Tree::new();
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let noise: Vec<u8> = (0..200_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        t.insert("big", Entry::file(noise, 0o644)).unwrap();
        let err = build(&t, 0, 100_000).expect_err("incompressible 200 kB cannot fit 100 kB");
        assert!(matches!(err, UsrError::TooLarge { .. }), "{err}");
    }
}
