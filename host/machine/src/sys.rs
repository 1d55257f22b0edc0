//! Thin, safe wrappers over the Linux syscalls the host programs (`/init`, `coreos-cloudinit`,
//! `first-boot`, `update-engine`) need and `std` does not offer: mount, umount, finit_module,
//! reboot, sync, statfs, sethostname, getifaddrs, loop devices, and wiring the console to fds 0-2.

use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, IntoRawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::ptr;

/// `mount(2)` flags, re-exported so callers need not name `libc`.
pub use libc::{MS_MOVE, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_RDONLY};
/// `statfs(2)` magic numbers of the filesystems an initramfs can live on.
pub const RAMFS_MAGIC: i64 = 0x8584_58f6;
pub const TMPFS_MAGIC: i64 = 0x0102_1994;

fn cstring(s: &str) -> io::Result<CString> {
    CString::new(s).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL byte in argument"))
}

fn check(ret: libc::c_long) -> io::Result<()> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `mount(2)`.
pub fn mount(
    source: &str,
    target: &str,
    fstype: Option<&str>,
    flags: libc::c_ulong,
    data: Option<&str>,
) -> io::Result<()> {
    let source = cstring(source)?;
    let target = cstring(target)?;
    let fstype = fstype.map(cstring).transpose()?;
    let data = data.map(cstring).transpose()?;
    // SAFETY: every pointer is a valid NUL-terminated string or null, alive for the call.
    let ret = unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            fstype.as_ref().map_or(ptr::null(), |s| s.as_ptr()),
            flags,
            data.as_ref().map_or(ptr::null(), |s| s.as_ptr().cast()),
        )
    };
    check(ret.into())
}

/// `mount --move from to`.
pub fn move_mount(from: &str, to: &str) -> io::Result<()> {
    mount(from, to, None, MS_MOVE, None)
}

/// `umount(2)`.
pub fn umount(target: &str) -> io::Result<()> {
    let target = cstring(target)?;
    // SAFETY: a valid NUL-terminated path, alive for the call.
    let ret = unsafe { libc::umount(target.as_ptr()) };
    check(ret.into())
}

/// `<linux/fs.h>`: `_IO(0x12, 95)`.
const BLKRRPART: libc::c_ulong = 0x125f;

/// `BLKRRPART`: the kernel re-reads the partition table of a whole disk (refused with `EBUSY`
/// while one of its partitions is in use).
pub fn reread_partitions(disk: &File) -> io::Result<()> {
    // SAFETY: BLKRRPART takes no argument; the fd is ours.
    let ret = unsafe { libc::ioctl(disk.as_raw_fd(), BLKRRPART as _) };
    check(ret.into())
}

/// `sethostname(2)`.
pub fn sethostname(name: &str) -> io::Result<()> {
    // SAFETY: pointer and length describe `name`'s bytes, alive for the call.
    let ret = unsafe { libc::sethostname(name.as_ptr().cast(), name.len()) };
    check(ret.into())
}

/// The IPv4 addresses of all interfaces (`getifaddrs(3)`), in the kernel's order, with whether
/// the interface is a loopback.
pub fn ipv4_addresses() -> io::Result<Vec<(String, std::net::Ipv4Addr, bool)>> {
    let mut head: *mut libc::ifaddrs = ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list we free below.
    check(unsafe { libc::getifaddrs(&mut head) }.into())?;
    let mut out = Vec::new();
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned, not yet freed.
        let ifa = unsafe { &*cur };
        if !ifa.ifa_addr.is_null() {
            // SAFETY: ifa_addr points to a sockaddr of the family it names.
            let family = unsafe { (*ifa.ifa_addr).sa_family };
            if i32::from(family) == libc::AF_INET {
                // SAFETY: an AF_INET address is a sockaddr_in.
                let sin = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in) };
                let addr = std::net::Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
                // SAFETY: ifa_name is a NUL-terminated string owned by the list.
                let name = unsafe { std::ffi::CStr::from_ptr(ifa.ifa_name) };
                let loopback = ifa.ifa_flags & (libc::IFF_LOOPBACK as libc::c_uint) != 0;
                out.push((name.to_string_lossy().into_owned(), addr, loopback));
            }
        }
        cur = ifa.ifa_next;
    }
    // SAFETY: the list from getifaddrs, freed once.
    unsafe { libc::freeifaddrs(head) };
    Ok(out)
}

/// `finit_module(2)` with no parameters and no flags.
pub fn finit_module(module: &File) -> io::Result<()> {
    // SAFETY: a valid open fd and an empty NUL-terminated parameter string.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_finit_module,
            module.as_raw_fd(),
            c"".as_ptr(),
            0 as libc::c_int,
        )
    };
    check(ret)
}

/// Opens `path` (normally `/dev/console`) and makes it fds 0, 1 and 2.
///
/// Safe when fds 0-2 are closed (the kernel hands /init none if the initramfs lacks
/// `/dev/console`): the open then lands on one of them and is kept.
pub fn console_to_stdio(path: &str) -> io::Result<()> {
    let fd = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open(path)?
        .into_raw_fd();
    for target in 0..=2 {
        // SAFETY: dup2 on an fd we own; replacing 0-2 is the point.
        if fd != target && unsafe { libc::dup2(fd, target) } < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    if fd > 2 {
        // SAFETY: our own fd, duplicated above and not used again.
        unsafe { libc::close(fd) };
    }
    Ok(())
}

/// `sync(2)`.
pub fn sync() {
    // SAFETY: no arguments, cannot fail.
    unsafe { libc::sync() }
}

/// What [`reboot`] asks the kernel for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RebootCmd {
    PowerOff,
    Restart,
}

/// `reboot(2)`; returns only if the kernel refused.
pub fn reboot(cmd: RebootCmd) -> io::Error {
    let cmd = match cmd {
        RebootCmd::PowerOff => libc::RB_POWER_OFF,
        RebootCmd::Restart => libc::RB_AUTOBOOT,
    };
    // SAFETY: a plain syscall with a valid command.
    unsafe { libc::reboot(cmd) };
    io::Error::last_os_error()
}

/// `statfs(2)` `f_type` of the filesystem holding `path`.
pub fn fs_type(path: &str) -> io::Result<i64> {
    let path = cstring(path)?;
    // SAFETY: statfs fills the zeroed struct; the path is NUL-terminated.
    let mut buf: libc::statfs = unsafe { std::mem::zeroed() };
    let ret = unsafe { libc::statfs(path.as_ptr(), &mut buf) };
    check(ret.into())?;
    Ok(buf.f_type as i64)
}

/// `<linux/loop.h>`: the control device's and a loop device's ioctls, and the flags we set.
const LOOP_CONTROL: &str = "/dev/loop-control";
const LOOP_CTL_GET_FREE: libc::c_ulong = 0x4C82;
const LOOP_CONFIGURE: libc::c_ulong = 0x4C0A;
const LO_FLAGS_READ_ONLY: u32 = 1;
const LO_FLAGS_AUTOCLEAR: u32 = 4;

/// `struct loop_info64`.
#[repr(C)]
struct LoopInfo64 {
    device: u64,
    inode: u64,
    rdevice: u64,
    offset: u64,
    sizelimit: u64,
    number: u32,
    encrypt_type: u32,
    encrypt_key_size: u32,
    flags: u32,
    file_name: [u8; 64],
    crypt_name: [u8; 64],
    encrypt_key: [u8; 32],
    init: [u64; 2],
}

/// `struct loop_config` (Linux 5.8+).
#[repr(C)]
struct LoopConfig {
    fd: u32,
    block_size: u32,
    info: LoopInfo64,
    reserved: [u64; 8],
}

/// Attaches `file` read-only to a free loop device; returns the device's path, `/dev/loopN`,
/// and the device open. With autoclear, the device detaches when its last user goes: keep the
/// returned file open until the device is mounted, then the mount is that user.
pub fn loop_attach_read_only(file: &str) -> io::Result<(String, File)> {
    let control = OpenOptions::new()
        .read(true)
        .write(true)
        .open(LOOP_CONTROL)?;
    // SAFETY: LOOP_CTL_GET_FREE takes no argument and returns a device number or -1.
    let n = unsafe { libc::ioctl(control.as_raw_fd(), LOOP_CTL_GET_FREE) };
    check(n.into())?;
    let device = format!("/dev/loop{n}");
    let backing = File::open(file)?;
    let dev = OpenOptions::new().read(true).open(&device)?;
    let mut name = [0u8; 64];
    let len = file.len().min(63);
    name[..len].copy_from_slice(&file.as_bytes()[..len]);
    let config = LoopConfig {
        fd: backing.as_raw_fd() as u32,
        block_size: 0,
        info: LoopInfo64 {
            device: 0,
            inode: 0,
            rdevice: 0,
            offset: 0,
            sizelimit: 0,
            number: 0,
            encrypt_type: 0,
            encrypt_key_size: 0,
            flags: LO_FLAGS_READ_ONLY | LO_FLAGS_AUTOCLEAR,
            file_name: name,
            crypt_name: [0; 64],
            encrypt_key: [0; 32],
            init: [0; 2],
        },
        reserved: [0; 8],
    };
    // SAFETY: LOOP_CONFIGURE reads a `struct loop_config`, which `config` is (repr(C)), alive
    // for the call; the kernel takes its own reference to the backing file.
    let ret = unsafe {
        libc::ioctl(
            dev.as_raw_fd(),
            LOOP_CONFIGURE,
            &config as *const LoopConfig,
        )
    };
    check(ret.into())?;
    Ok((device, dev))
}

/// An error's text without std's ` (os error N)` suffix: `No such file or directory`.
pub fn errno_text(e: &io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error ") {
        Some(at) => s[..at].to_string(),
        None => s,
    }
}

#[cfg(test)]
mod loop_tests {
    use super::*;

    #[test]
    fn loop_structs_match_the_kernel_abi() {
        assert_eq!(std::mem::size_of::<LoopInfo64>(), 232);
        assert_eq!(std::mem::size_of::<LoopConfig>(), 304);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_texts() {
        assert_eq!(
            errno_text(&io::Error::from_raw_os_error(libc::ENOENT)),
            "No such file or directory"
        );
        assert_eq!(errno_text(&io::Error::other("custom")), "custom");
    }

    #[test]
    fn strings_with_nul_are_refused_not_panicking() {
        let e = mount("a\0b", "/nonexistent", None, 0, None).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn loopback_is_listed() {
        let addrs = ipv4_addresses().unwrap();
        assert!(addrs.iter().all(|(n, _, _)| !n.is_empty()));
        if let Some((_, a, lo)) = addrs.iter().find(|(n, _, _)| n == "lo") {
            assert!(a.is_loopback() && *lo);
        }
    }

    #[test]
    fn statfs_works() {
        assert!(fs_type("/").is_ok());
        assert!(fs_type("/nonexistent-path-for-test").is_err());
    }
}
