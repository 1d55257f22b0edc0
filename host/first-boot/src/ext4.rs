//! Growing the ext4 file system on ROOT to fill its partition: the superblock's size (pure
//! parse, kernel `fs/ext4/ext4.h` `struct ext4_super_block`), then `EXT4_IOC_RESIZE_FS` on the
//! mounted file system, with `resize2fs DEVICE` as the fallback (it uses older ioctls where
//! the kernel lacks that one).

use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;
use std::process::Command;

use super::kernel;

/// The superblock starts 1024 bytes into the device.
const SUPERBLOCK_OFFSET: u64 = 1024;
const SUPERBLOCK_LEN: usize = 1024;
const MAGIC: u16 = 0xef53;
/// `EXT4_FEATURE_INCOMPAT_64BIT`: `s_blocks_count_hi` is meaningful.
const INCOMPAT_64BIT: u32 = 0x80;

/// The size of an ext2/3/4 file system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size {
    pub block_size: u64,
    pub blocks: u64,
}

impl Size {
    /// Blocks of this size that fit in `bytes` (the partition).
    pub fn blocks_in(&self, bytes: u64) -> u64 {
        bytes / self.block_size
    }
}

/// Parses the superblock (the 1024 bytes at offset 1024).
pub fn parse_superblock(sb: &[u8]) -> Result<Size, &'static str> {
    if sb.len() < SUPERBLOCK_LEN {
        return Err("superblock truncated");
    }
    let u32_at = |at: usize| u32::from_le_bytes([sb[at], sb[at + 1], sb[at + 2], sb[at + 3]]);
    if u16::from_le_bytes([sb[56], sb[57]]) != MAGIC {
        return Err("no ext2/3/4 superblock");
    }
    let log = u32_at(24);
    if log > 6 {
        return Err("bad block size");
    }
    let mut blocks = u64::from(u32_at(4));
    if u32_at(96) & INCOMPAT_64BIT != 0 {
        blocks |= u64::from(u32_at(0x150)) << 32;
    }
    Ok(Size {
        block_size: 1024 << log,
        blocks,
    })
}

/// Reads the size of the file system on `dev` (a partition device or an image file).
pub fn read_size(dev: &mut (impl Read + Seek)) -> io::Result<Size> {
    dev.seek(SeekFrom::Start(SUPERBLOCK_OFFSET))?;
    let mut sb = vec![0u8; SUPERBLOCK_LEN];
    dev.read_exact(&mut sb)?;
    parse_superblock(&sb).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// How the file system was grown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Ioctl,
    Resize2fs,
}

/// Grows the ext4 on `device`, mounted at `mount_point`, to `blocks`: the ioctl, else
/// `resize2fs`. The error names both failures.
pub fn grow(mount_point: &Path, device: &Path, blocks: u64) -> Result<Method, String> {
    let ioctl = match kernel::ext4_resize(mount_point, blocks) {
        Ok(()) => return Ok(Method::Ioctl),
        Err(e) => e,
    };
    match resize2fs(device) {
        Ok(()) => Ok(Method::Resize2fs),
        Err(tool) => Err(format!(
            "EXT4_IOC_RESIZE_FS on {}: {}; resize2fs {}: {tool}",
            mount_point.display(),
            machine::sys::errno_text(&ioctl),
            device.display()
        )),
    }
}

/// `resize2fs DEVICE`: grows the file system to the size of its device, online if mounted.
pub fn resize2fs(device: &Path) -> Result<(), String> {
    let out = Command::new("resize2fs")
        .arg(device)
        .output()
        .map_err(|e| format!("cannot run it: {}", machine::sys::errno_text(&e)))?;
    if out.status.success() {
        return Ok(());
    }
    let text = String::from_utf8_lossy(&out.stderr);
    Err(failure_line(&text).unwrap_or_else(|| out.status.to_string()))
}

/// The line of `resize2fs`'s stderr that says why, skipping its version banner.
pub fn failure_line(stderr: &str) -> Option<String> {
    stderr
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty() && !l.starts_with("resize2fs 1."))
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn superblock(log: u32, lo: u32, hi: u32, bit64: bool) -> Vec<u8> {
        let mut dev = vec![0u8; 2048];
        let sb = &mut dev[1024..];
        sb[4..8].copy_from_slice(&lo.to_le_bytes());
        sb[24..28].copy_from_slice(&log.to_le_bytes());
        sb[56..58].copy_from_slice(&MAGIC.to_le_bytes());
        if bit64 {
            sb[96..100].copy_from_slice(&INCOMPAT_64BIT.to_le_bytes());
        }
        sb[0x150..0x154].copy_from_slice(&hi.to_le_bytes());
        dev
    }

    #[test]
    fn sizes() {
        let got = read_size(&mut Cursor::new(superblock(2, 1000, 0, false))).unwrap();
        assert_eq!(
            got,
            Size {
                block_size: 4096,
                blocks: 1000
            }
        );
        let got = read_size(&mut Cursor::new(superblock(0, 5, 1, true))).unwrap();
        assert_eq!(got.blocks, (1 << 32) + 5);
        assert_eq!(got.block_size, 1024);
        // Without the 64bit feature the high word is not used.
        let got = read_size(&mut Cursor::new(superblock(2, 5, 1, false))).unwrap();
        assert_eq!(got.blocks, 5);
        assert_eq!(got.blocks_in((1 << 20) + 4095), 256);
    }

    #[test]
    fn not_ext4() {
        assert!(read_size(&mut Cursor::new(vec![0u8; 4096])).is_err());
        assert!(read_size(&mut Cursor::new(vec![0u8; 100])).is_err());
        assert_eq!(
            parse_superblock(&superblock(9, 1, 0, false)[1024..]),
            Err("bad block size")
        );
    }

    #[test]
    fn resize2fs_failure_lines() {
        let text = "resize2fs 1.47.0 (5-Feb-2023)\nresize2fs: Bad magic number in super-block while trying to open x\nCouldn't find valid filesystem superblock.\n\n";
        assert_eq!(
            failure_line(text).as_deref(),
            Some("Couldn't find valid filesystem superblock.")
        );
        assert_eq!(failure_line("resize2fs 1.47.0 (5-Feb-2023)\n"), None);
    }

    /// The fallback on an unmounted image file (the ioctl path needs a mount: the
    /// container-host QEMU test). e2fsprogs is installed by scripts/setup-host.sh.
    #[test]
    fn resize2fs_grows_an_image_file() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("fs.img");
        std::fs::File::create(&img)
            .unwrap()
            .set_len(16 << 20)
            .unwrap();
        let out = Command::new("mkfs.ext4")
            .args(["-q", "-F", "-b", "4096"])
            .arg(&img)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let before = read_size(&mut std::fs::File::open(&img).unwrap()).unwrap();
        assert_eq!(
            before,
            Size {
                block_size: 4096,
                blocks: 4096
            }
        );
        std::fs::OpenOptions::new()
            .write(true)
            .open(&img)
            .unwrap()
            .set_len(48 << 20)
            .unwrap();
        resize2fs(&img).unwrap();
        let after = read_size(&mut std::fs::File::open(&img).unwrap()).unwrap();
        assert_eq!(after.blocks, 3 * 4096);
        let e = resize2fs(&dir.path().join("missing")).unwrap_err();
        assert!(!e.is_empty() && !e.contains('\n'), "{e}");
    }
}
