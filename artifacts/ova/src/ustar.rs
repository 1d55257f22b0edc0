//! Deterministic USTAR archives (POSIX.1-1988 `ustar`, SPECS.md S7 and S6) for OVAs and
//! Vagrant boxes, on the `tar` crate.
//!
//! Every member is a regular file with mode 0644, uid and gid 0, no user or group name, and
//! the caller's mtime (`source_date_epoch`); members appear in the order they are appended.
//! Nothing of the build host (clock, owner, umask) reaches the archive. No GNU or PAX
//! extensions: a name that does not fit the 100 + 155 byte USTAR fields, or a file of 8 GiB
//! or more (the 11 octal digits of the size field), is an error instead.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

use util::fs::AtomicFile;

/// Mode of every member.
pub const MODE: u32 = 0o644;
/// The largest member USTAR's octal size field holds.
pub const MAX_MEMBER_SIZE: u64 = 0o777_7777_7777;

/// A USTAR archive being written to `W`.
pub struct Ustar<W: Write> {
    builder: tar::Builder<W>,
    mtime: u64,
}

impl<W: Write> Ustar<W> {
    /// Members get `mtime` (seconds since the epoch).
    pub fn new(out: W, mtime: u64) -> Self {
        Ustar {
            builder: tar::Builder::new(out),
            mtime,
        }
    }

    /// Append a member of `size` bytes read from `data` (which must hold exactly that many).
    pub fn append(&mut self, name: &str, size: u64, data: impl Read) -> io::Result<()> {
        let header = header(name, size, self.mtime)?;
        let mut counted = Counted {
            inner: data.take(size),
            count: 0,
        };
        self.builder.append(&header, &mut counted)?;
        if counted.count != size {
            return Err(invalid(format!(
                "{name}: {} bytes read, {size} announced",
                counted.count
            )));
        }
        Ok(())
    }

    /// Append a member holding `bytes`.
    pub fn append_bytes(&mut self, name: &str, bytes: &[u8]) -> io::Result<()> {
        self.append(name, bytes.len() as u64, bytes)
    }

    /// Append the file at `path` as member `name`.
    pub fn append_file(&mut self, name: &str, path: &Path) -> io::Result<()> {
        let file = File::open(path)?;
        let size = file.metadata()?.len();
        self.append(name, size, io::BufReader::with_capacity(1 << 20, file))
    }

    /// Write the end-of-archive marker (two zero blocks) and return the writer.
    pub fn finish(self) -> io::Result<W> {
        self.builder.into_inner()
    }
}

/// A member of an archive written whole by [`write_file`].
pub enum Member<'a> {
    Bytes(&'a str, &'a [u8]),
    File(&'a str, &'a Path),
}

impl Member<'_> {
    pub fn name(&self) -> &str {
        match self {
            Member::Bytes(n, _) | Member::File(n, _) => n,
        }
    }
}

/// Writes `members`, in order, as a USTAR archive at `out` (a temporary file beside it, synced
/// and renamed into place: `out` is complete or untouched). Returns the archive's size.
pub fn write_file(out: &Path, mtime: u64, members: &[Member]) -> Result<u64, diskfmt::Error> {
    let io_err = diskfmt::Error::io("writing", out);
    let mut file = AtomicFile::create(out).map_err(&io_err)?;
    let mut tar = Ustar::new(file.writer(), mtime);
    for m in members {
        match m {
            Member::Bytes(name, bytes) => tar.append_bytes(name, bytes),
            Member::File(name, path) => tar.append_file(name, path),
        }
        .map_err(&io_err)?;
    }
    tar.finish().map_err(&io_err)?;
    file.commit().map_err(&io_err)?;
    Ok(std::fs::metadata(out).map_err(&io_err)?.len())
}

/// A scratch directory beside `out` (the same file system, so large disks are not copied
/// across), for a disk before it goes into the archive; removed when dropped.
pub fn scratch_dir(out: &Path, prefix: &str) -> Result<tempfile::TempDir, diskfmt::Error> {
    let dir = util::fs::parent(out);
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(dir)
        .map_err(diskfmt::Error::io("creating a scratch directory in", dir))
}

/// The header of a regular-file member.
pub fn header(name: &str, size: u64, mtime: u64) -> io::Result<tar::Header> {
    if name.is_empty() || name.starts_with('/') || name.split('/').any(|c| c == "..") {
        return Err(invalid(format!(
            "member name {name:?} must be a relative path"
        )));
    }
    if !name.is_ascii() {
        return Err(invalid(format!("member name {name:?} must be ASCII")));
    }
    if size > MAX_MEMBER_SIZE {
        return Err(invalid(format!(
            "{name} is {size} bytes; a USTAR member holds at most {MAX_MEMBER_SIZE}"
        )));
    }
    let mut h = tar::Header::new_ustar();
    h.set_path(name)
        .map_err(|e| invalid(format!("member name {name:?}: {e}")))?;
    h.set_entry_type(tar::EntryType::Regular);
    h.set_size(size);
    h.set_mode(MODE);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(mtime);
    h.set_cksum();
    Ok(h)
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

/// Counts what passes through, to check a member's length against its header.
struct Counted<R> {
    inner: R,
    count: u64,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn octal(field: &[u8]) -> u64 {
        let s = std::str::from_utf8(field).unwrap();
        u64::from_str_radix(s.trim_matches(|c| c == '\0' || c == ' '), 8).unwrap()
    }

    #[test]
    fn headers_are_plain_ustar_without_host_data() {
        let h = header("box.ovf", 1234, 1_767_225_600).unwrap();
        let b = h.as_bytes();
        assert_eq!(&b[..7], b"box.ovf");
        assert_eq!(octal(&b[100..108]), 0o644, "mode");
        assert_eq!(octal(&b[108..116]), 0, "uid");
        assert_eq!(octal(&b[116..124]), 0, "gid");
        assert_eq!(octal(&b[124..136]), 1234, "size");
        assert_eq!(octal(&b[136..148]), 1_767_225_600, "mtime");
        assert_eq!(b[156], b'0', "regular file");
        assert_eq!(&b[257..265], b"ustar\x0000", "magic and version");
        assert!(b[265..297].iter().all(|&c| c == 0), "user name");
        assert!(b[297..329].iter().all(|&c| c == 0), "group name");
        let sum: u64 = b
            .iter()
            .enumerate()
            .map(|(i, &c)| {
                if (148..156).contains(&i) {
                    32
                } else {
                    c as u64
                }
            })
            .sum();
        assert_eq!(octal(&b[148..156]), sum, "checksum");
    }

    #[test]
    fn archive_keeps_order_and_reads_back() {
        let mut t = Ustar::new(Vec::new(), 7);
        t.append_bytes("b.ovf", b"descriptor").unwrap();
        t.append_bytes("a.mf", b"").unwrap();
        t.append_bytes("c.vmdk", &[1u8; 1000]).unwrap();
        let bytes = t.finish().unwrap();
        assert_eq!(bytes.len(), 512 * (1 + 1 + 1 + 1 + 2) + 1024);
        assert!(bytes[bytes.len() - 1024..].iter().all(|&b| b == 0));
        let mut archive = tar::Archive::new(bytes.as_slice());
        let names: Vec<(String, u64)> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.path().unwrap().to_string_lossy().into_owned(),
                    e.header().size().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            names,
            [
                ("b.ovf".to_string(), 10),
                ("a.mf".to_string(), 0),
                ("c.vmdk".to_string(), 1000)
            ]
        );
    }

    #[test]
    fn refuses_what_ustar_cannot_hold() {
        for bad in ["", "/abs", "a/../b", "caf\u{e9}"] {
            assert!(header(bad, 1, 0).is_err(), "{bad:?}");
        }
        assert!(header(&"x".repeat(101), 1, 0).is_err(), "long name");
        assert!(header("big.vmdk", MAX_MEMBER_SIZE + 1, 0).is_err());
        assert!(header("ok.vmdk", MAX_MEMBER_SIZE, 0).is_ok());
        let mut t = Ustar::new(Vec::new(), 0);
        let err = t.append("short", 10, &b"12345"[..]).unwrap_err();
        assert!(
            err.to_string().contains("5 bytes read, 10 announced"),
            "{err}"
        );
    }
}
