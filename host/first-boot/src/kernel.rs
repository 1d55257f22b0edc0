//! Thin wrappers over the ioctls and syscalls first boot needs: the logical sector size
//! (`BLKSSZGET`), telling the kernel a partition's new size (`BLKPG_RESIZE_PARTITION`, what
//! util-linux `resizepart` does), growing a mounted ext4 (`EXT4_IOC_RESIZE_FS`, what `resize2fs`
//! does on a mounted file system), the udev lock on a disk being rewritten (`flock`, see
//! systemd's "Locking Block Device Access"), and random bytes (`getrandom`).

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::thread;
use std::time::Duration;

/// `<linux/fs.h>`: `_IO(0x12, 104)`.
const BLKSSZGET: libc::c_ulong = 0x1268;
/// `<linux/fs.h>`: `_IO(0x12, 105)`.
const BLKPG: libc::c_ulong = 0x1269;
/// `<linux/blkpg.h>`.
const BLKPG_RESIZE_PARTITION: libc::c_int = 3;
/// `<linux/ext4.h>` (`fs/ext4/ext4.h` before 6.x): `_IOW('f', 16, __u64)`.
const EXT4_IOC_RESIZE_FS: libc::c_ulong = 0x4008_6610;
/// How long to wait for udev's shared lock on the disk to go away.
const LOCK_ATTEMPTS: u32 = 100;
const LOCK_RETRY: Duration = Duration::from_millis(100); // 10 s in all

/// `struct blkpg_partition`.
#[repr(C)]
struct BlkpgPartition {
    /// Bytes.
    start: libc::c_longlong,
    /// Bytes.
    length: libc::c_longlong,
    pno: libc::c_int,
    devname: [libc::c_char; 64],
    volname: [libc::c_char; 64],
}

/// `struct blkpg_ioctl_arg`.
#[repr(C)]
struct BlkpgIoctlArg {
    op: libc::c_int,
    flags: libc::c_int,
    datalen: libc::c_int,
    data: *mut libc::c_void,
}

fn check(ret: libc::c_int) -> io::Result<()> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// The logical sector size of a block device.
pub fn logical_sector_size(disk: &File) -> io::Result<u64> {
    let mut size: libc::c_int = 0;
    // SAFETY: BLKSSZGET writes one int to the pointer, which is valid for the call.
    check(unsafe { libc::ioctl(disk.as_raw_fd(), BLKSSZGET, &mut size as *mut libc::c_int) })?;
    u64::try_from(size)
        .ok()
        .filter(|s| s.is_power_of_two() && *s >= 512)
        .ok_or_else(|| io::Error::other(format!("odd logical sector size {size}")))
}

/// Tells the kernel that partition `number` of `disk` now spans `length` bytes from `start`
/// (which must be where the kernel has it already). The partition may be mounted.
pub fn resize_partition(disk: &File, number: u32, start: u64, length: u64) -> io::Result<()> {
    let too_big = || io::Error::new(io::ErrorKind::InvalidInput, "partition beyond 2^63 bytes");
    let mut part = BlkpgPartition {
        start: i64::try_from(start).map_err(|_| too_big())?,
        length: i64::try_from(length).map_err(|_| too_big())?,
        pno: libc::c_int::try_from(number).map_err(|_| too_big())?,
        devname: [0; 64],
        volname: [0; 64],
    };
    let arg = BlkpgIoctlArg {
        op: BLKPG_RESIZE_PARTITION,
        flags: 0,
        datalen: std::mem::size_of::<BlkpgPartition>() as libc::c_int,
        data: (&mut part as *mut BlkpgPartition).cast(),
    };
    // SAFETY: BLKPG reads a blkpg_ioctl_arg whose data points to a blkpg_partition of datalen
    // bytes; both are repr(C) and alive for the call.
    check(unsafe { libc::ioctl(disk.as_raw_fd(), BLKPG, &arg as *const BlkpgIoctlArg) })
}

/// Grows the ext4 file system mounted at `mount_point` to `blocks` file system blocks.
pub fn ext4_resize(mount_point: &Path, blocks: u64) -> io::Result<()> {
    let dir = File::open(mount_point)?;
    // SAFETY: EXT4_IOC_RESIZE_FS reads one u64 from the pointer, valid for the call.
    check(unsafe { libc::ioctl(dir.as_raw_fd(), EXT4_IOC_RESIZE_FS, &blocks as *const u64) })
}

/// Takes the exclusive BSD lock on a whole disk, as tools that rewrite partition tables do, so
/// udev does not probe it half-written. Gives up after about 10 s.
pub fn lock_exclusive(disk: &File) -> io::Result<()> {
    for _ in 1..LOCK_ATTEMPTS {
        // SAFETY: flock on an fd we own.
        if unsafe { libc::flock(disk.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EWOULDBLOCK) {
            return Err(e);
        }
        thread::sleep(LOCK_RETRY);
    }
    // SAFETY: as above.
    check(unsafe { libc::flock(disk.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) })
}

/// 16 random bytes from the kernel (`getrandom(2)`, else `/dev/urandom`).
pub fn random_bytes() -> io::Result<[u8; 16]> {
    let mut buf = [0u8; 16];
    // SAFETY: the kernel writes at most buf.len() bytes into buf.
    let n = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n == buf.len() as isize {
        return Ok(buf);
    }
    File::open("/dev/urandom")?.read_exact(&mut buf)?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structs_match_the_kernel_abi() {
        assert_eq!(std::mem::size_of::<BlkpgPartition>(), 152);
        assert_eq!(std::mem::size_of::<BlkpgIoctlArg>(), 24);
    }

    #[test]
    fn random_bytes_differ() {
        assert_ne!(random_bytes().unwrap(), random_bytes().unwrap());
    }

    #[test]
    fn ioctls_on_a_regular_file_fail_cleanly() {
        let f = tempfile::tempfile().unwrap();
        assert!(logical_sector_size(&f).is_err());
        assert!(resize_partition(&f, 1, 0, 1 << 20).is_err());
        assert!(ext4_resize(Path::new("/nonexistent-first-boot-test"), 1).is_err());
        lock_exclusive(&f).unwrap();
    }
}
