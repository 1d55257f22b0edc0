//! Writing a disk image: the GPT and each partition's content at its offset, in a sparse file
//! (unwritten space stays a hole, so an 800 MiB disk takes what its content takes).

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

use anyhow::{bail, Context, Result};

use super::layout::DiskLayout;
use super::{gpt, sparse};
use crate::report::FileInfo;

/// A partition's content: bytes in memory or a (sparse) image file.
pub enum Content<'a> {
    Bytes(&'a [u8]),
    File(&'a Path),
}

/// Write a sparse disk at `path`: the GPT of `layout`, `boot_code` (legacy BIOS) in the
/// protective MBR, and each `(label, content)` at its partition's offset. Partitions not named
/// stay empty (holes). Fails if a content is larger than its partition.
pub fn write(
    layout: &DiskLayout,
    path: &Path,
    boot_code: Option<&[u8]>,
    parts: &[(&str, Content)],
) -> Result<()> {
    let mut f = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let err = || format!("writing {}", path.display());
    f.set_len(layout.size).with_context(err)?;
    let mut g = gpt::render(layout);
    if let Some(code) = boot_code {
        if code.len() > gpt::MBR_BOOT_CODE {
            bail!(
                "boot code is {} bytes, more than the MBR's {}",
                code.len(),
                gpt::MBR_BOOT_CODE
            );
        }
        g.head[..code.len()].copy_from_slice(code);
    }
    f.write_all(&g.head).with_context(err)?;
    f.seek(SeekFrom::Start(g.tail_offset)).with_context(err)?;
    f.write_all(&g.tail).with_context(err)?;
    for (label, content) in parts {
        let p = layout.part(label);
        f.seek(SeekFrom::Start(p.offset)).with_context(err)?;
        let written = match content {
            Content::Bytes(b) => {
                write_sparse(&mut f, b).with_context(err)?;
                b.len() as u64
            }
            Content::File(src) => sparse::copy_into(src, &mut f, p.offset)
                .with_context(|| format!("copying {}", src.display()))?,
        };
        if written > p.size {
            bail!(
                "{label} content is {written} bytes, more than its {}-byte partition",
                p.size
            );
        }
    }
    f.sync_all().with_context(err)?;
    Ok(())
}

/// Write `data` at the current position, skipping all-zero 64 KiB blocks (the file was
/// created with `set_len`, so skipped blocks read as zeros and stay holes).
fn write_sparse(f: &mut File, data: &[u8]) -> std::io::Result<()> {
    const BLOCK: usize = 64 * 1024;
    for chunk in data.chunks(BLOCK) {
        if chunk.iter().all(|&b| b == 0) {
            f.seek(SeekFrom::Current(chunk.len() as i64))?;
        } else {
            f.write_all(chunk)?;
        }
    }
    Ok(())
}

/// Size and sha256 of a file (holes are hashed without being read).
pub fn file_info(path: &Path) -> Result<FileInfo> {
    let (sha256, size) =
        sparse::sha256(path).with_context(|| format!("hashing {}", path.display()))?;
    Ok(FileInfo { size, sha256 })
}
