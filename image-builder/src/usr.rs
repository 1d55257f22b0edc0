//! The USR slot image: a squashfs (zstd) of the `/usr` tree, written with `backhand`.
//!
//! Deterministic by construction: the tree is sorted, every timestamp (entries and the
//! superblock) comes from the tree or `source_date_epoch`, and backhand's parallel compression
//! keeps block order.

use std::io::{Cursor, Seek, Write};

use backhand::compression::{CompressionOptions, Compressor, Zstd};
use backhand::{FilesystemCompressor, FilesystemWriter, NodeHeader};
use rootfs::tree::{Kind, Tree};

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

/// Write `tree` (already re-rooted at /usr) as a squashfs to `out`; returns the image size.
pub fn write_squashfs(
    tree: &Tree,
    epoch: u64,
    out: &mut (impl Write + Seek),
) -> Result<u64, UsrError> {
    let mut fs = FilesystemWriter::default();
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
    let (_, size) = fs.write(out).map_err(UsrError::Write)?;
    Ok(size)
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
