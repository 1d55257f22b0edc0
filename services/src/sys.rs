//! Thin, safe wrappers over the Linux syscalls `/init` needs and `std` does not offer: mount,
//! finit_module, reboot, sync, statfs, and wiring the console to fds 0-2.

use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, IntoRawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::ptr;

/// `mount(2)` flags, re-exported so callers need not name `libc`.
pub use libc::{MS_MOVE, MS_NODEV, MS_NOSUID, MS_RDONLY};
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

/// An error's text without std's ` (os error N)` suffix: `No such file or directory`.
pub fn errno_text(e: &io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error ") {
        Some(at) => s[..at].to_string(),
        None => s,
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
    fn statfs_works() {
        assert!(fs_type("/").is_ok());
        assert!(fs_type("/nonexistent-path-for-test").is_err());
    }
}
