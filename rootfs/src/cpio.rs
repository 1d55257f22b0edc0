//! Deterministic newc ("070701") cpio archives: the format of the Linux initramfs.
//!
//! Format: the kernel's `Documentation/driver-api/early-userspace/buffer-format.rst` and
//! cpio(5) ("New ASCII Format"). Each entry is a 110-byte header of ASCII hex fields, the
//! NUL-terminated name, padding to a multiple of 4, the data and padding to a multiple of 4
//! again; the archive ends with an entry named `TRAILER!!!`.
//!
//! [`write_newc`] writes a [`Tree`] in its (sorted) path order, so parents always come before
//! their children and the same tree always gives the same bytes:
//! - names are the tree's relative paths (`usr/bin/busybox`); no `.` entry for the root;
//! - inode numbers count from 1 in write order; dev, rdev and check are 0;
//! - the mode carries the `S_IF*` type bits; symlinks store their target as data;
//! - hard links follow the newc convention: every path of one inode carries the same inode
//!   number and `nlink` = number of paths, and only the last path written carries the data
//!   (the others have filesize 0). All of them take the metadata (mode, owner, mtime) of the
//!   regular file they link to, since they are one inode;
//! - no padding after the trailer beyond the usual 4-byte alignment (no 512-byte blocks).
//!
//! [`read_newc`] is a strict reader for tests and inspection.

use std::collections::BTreeMap;
use std::io::{self, Write};

use crate::tree::{Entry, Kind, Tree};

const MAGIC: &[u8; 6] = b"070701";
const HEADER_LEN: usize = 110;
const TRAILER: &str = "TRAILER!!!";

/// File type bits of `st_mode`.
pub const S_IFMT: u32 = 0o170000;
pub const S_IFDIR: u32 = 0o040000;
pub const S_IFREG: u32 = 0o100000;
pub const S_IFLNK: u32 = 0o120000;
/// Permission bits including setuid, setgid and sticky.
const PERM_MASK: u32 = 0o7777;

/// Why an archive could not be written or read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CpioError {
    #[error("{path:?}: {field} {value} does not fit the 32-bit newc field")]
    TooLarge {
        path: String,
        field: &'static str,
        value: u64,
    },
    #[error("hard link {path:?} points to {target:?}, which is not a regular file in the tree")]
    DanglingHardlink { path: String, target: String },
    #[error("archive truncated at offset {offset}: {what} needs {needed} bytes, {left} left")]
    Truncated {
        offset: usize,
        what: &'static str,
        needed: usize,
        left: usize,
    },
    #[error("bad magic {found:?} at offset {offset} (only newc \"070701\" is supported)")]
    BadMagic { offset: usize, found: String },
    #[error("field {field} of the header at offset {offset} is not hexadecimal: {found:?}")]
    BadField {
        offset: usize,
        field: &'static str,
        found: String,
    },
    #[error("name of the entry at offset {offset} is not NUL-terminated or holds a NUL")]
    BadName { offset: usize },
    #[error("name of the entry at offset {offset} is not UTF-8")]
    NameNotUtf8 { offset: usize },
    #[error("archive ends without a TRAILER!!! entry")]
    MissingTrailer,
    #[error("unexpected bytes at offset {offset} after the trailer")]
    TrailingGarbage { offset: usize },
}

impl From<CpioError> for io::Error {
    fn from(e: CpioError) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidInput, e)
    }
}

/// The header fields that vary; the others (dev, rdev, check) are always 0 when writing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Header {
    ino: u32,
    mode: u32,
    uid: u32,
    gid: u32,
    nlink: u32,
    mtime: u32,
    filesize: u32,
    devmajor: u32,
    devminor: u32,
    namesize: u32,
}

impl Header {
    fn encode(&self) -> String {
        let fields = [
            self.ino,
            self.mode,
            self.uid,
            self.gid,
            self.nlink,
            self.mtime,
            self.filesize,
            self.devmajor,
            self.devminor,
            0, // rdevmajor
            0, // rdevminor
            self.namesize,
            0, // check
        ];
        let mut s = String::from_utf8_lossy(MAGIC).into_owned();
        for f in fields {
            s.push_str(&format!("{f:08X}"));
        }
        s
    }
}

/// Padding needed to bring `len` to a multiple of 4.
fn pad4(len: usize) -> usize {
    (4 - len % 4) % 4
}

/// A writer that counts what passes through it.
struct Counting<'a, W: Write> {
    inner: &'a mut W,
    written: u64,
}

impl<W: Write> Counting<'_, W> {
    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.inner.write_all(bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    /// One entry: header, name, NUL, padding, data, padding.
    fn entry(&mut self, mut header: Header, name: &str, data: &[u8]) -> io::Result<()> {
        let namesize = name.len() + 1;
        header.namesize = fit(name, "name size", namesize as u64)?;
        header.filesize = fit(name, "file size", data.len() as u64)?;
        self.put(header.encode().as_bytes())?;
        self.put(name.as_bytes())?;
        self.put(&[0u8; 4][..1 + pad4(HEADER_LEN + namesize)])?;
        self.put(data)?;
        self.put(&[0u8; 3][..pad4(data.len())])
    }
}

fn fit(path: &str, field: &'static str, value: u64) -> Result<u32, CpioError> {
    u32::try_from(value).map_err(|_| CpioError::TooLarge {
        path: path.to_string(),
        field,
        value,
    })
}

/// For every regular file with hard links: how many paths it has and which is written last.
#[derive(Debug, Default)]
struct LinkGroup<'a> {
    nlink: u32,
    last: &'a str,
}

fn link_groups(tree: &Tree) -> Result<BTreeMap<&str, LinkGroup<'_>>, CpioError> {
    let mut groups: BTreeMap<&str, LinkGroup> = BTreeMap::new();
    for (path, entry) in tree.iter() {
        if let Kind::Hardlink(_) = entry.kind {
            let (target, _) = inode_of(tree, path, entry)?;
            let group = groups.entry(target).or_insert(LinkGroup {
                nlink: 1,
                last: target,
            });
            group.nlink += 1;
            group.last = group.last.max(path.as_str());
        }
    }
    Ok(groups)
}

/// The inode `path` belongs to, named by its first path (a hard link's target, else the
/// path itself), and that inode's metadata.
fn inode_of<'a>(
    tree: &'a Tree,
    path: &'a str,
    entry: &'a Entry,
) -> Result<(&'a str, &'a Entry), CpioError> {
    let Kind::Hardlink(target) = &entry.kind else {
        return Ok((path, entry));
    };
    match tree.get(target) {
        Some(
            meta @ Entry {
                kind: Kind::File(_),
                ..
            },
        ) => Ok((target.as_str(), meta)),
        _ => Err(dangling(path, target)),
    }
}

fn dangling(path: &str, target: &str) -> CpioError {
    CpioError::DanglingHardlink {
        path: path.to_string(),
        target: target.to_string(),
    }
}

/// Write `tree` as a newc archive (see the module docs for the conventions); returns the
/// number of bytes written. Fails with `InvalidInput` (wrapping a [`CpioError`]) on a
/// dangling hard link or a size or mtime beyond 32 bits.
pub fn write_newc(tree: &Tree, out: &mut impl Write) -> io::Result<u64> {
    let groups = link_groups(tree)?;
    let mut inodes: BTreeMap<&str, u32> = BTreeMap::new();
    let mut w = Counting {
        inner: out,
        written: 0,
    };
    for (path, entry) in tree.iter() {
        let (key, meta) = inode_of(tree, path, entry)?;
        let next = inodes.len() as u32 + 1;
        let ino = *inodes.entry(key).or_insert(next);
        let (header, data) = describe(path, meta, groups.get(key))?;
        w.entry(Header { ino, ..header }, path, data)?;
    }
    w.entry(
        Header {
            nlink: 1,
            ..Header::default()
        },
        TRAILER,
        &[],
    )?;
    Ok(w.written)
}

/// Header fields (without inode and sizes) and data of `path`, whose inode metadata is `meta`.
fn describe<'a>(
    path: &str,
    meta: &'a Entry,
    group: Option<&LinkGroup>,
) -> Result<(Header, &'a [u8]), CpioError> {
    let perm = meta.mode & PERM_MASK;
    let (mode, nlink, data): (u32, u32, &[u8]) = match &meta.kind {
        Kind::Dir => (S_IFDIR | perm, 2, &[]),
        Kind::Symlink(target) => (S_IFLNK | perm, 1, target.as_bytes()),
        Kind::File(bytes) => match group {
            Some(g) if g.last != path => (S_IFREG | perm, g.nlink, &[]),
            Some(g) => (S_IFREG | perm, g.nlink, bytes.as_slice()),
            None => (S_IFREG | perm, 1, bytes.as_slice()),
        },
        // `inode_of` resolves hard links to their target's entry, a regular file.
        Kind::Hardlink(t) => return Err(dangling(path, t)),
    };
    let header = Header {
        mode,
        uid: meta.uid,
        gid: meta.gid,
        nlink,
        mtime: fit(path, "mtime", meta.mtime)?,
        ..Header::default()
    };
    Ok((header, data))
}

/// A cursor over the archive bytes that never reads out of bounds.
struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], CpioError> {
        let left = self.data.len() - self.pos;
        if n > left {
            return Err(CpioError::Truncated {
                offset: self.pos,
                what,
                needed: n,
                left,
            });
        }
        let bytes = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(bytes)
    }

    fn header(&mut self) -> Result<Header, CpioError> {
        let offset = self.pos;
        let raw = self.take(HEADER_LEN, "header")?;
        if &raw[..6] != MAGIC {
            let found = String::from_utf8_lossy(&raw[..6]).into_owned();
            return Err(CpioError::BadMagic { offset, found });
        }
        const NAMES: [&str; 13] = [
            "ino",
            "mode",
            "uid",
            "gid",
            "nlink",
            "mtime",
            "filesize",
            "devmajor",
            "devminor",
            "rdevmajor",
            "rdevminor",
            "namesize",
            "check",
        ];
        let mut f = [0u32; 13];
        for (i, field) in NAMES.iter().enumerate() {
            let text = &raw[6 + 8 * i..14 + 8 * i];
            f[i] = parse_hex(text).ok_or_else(|| CpioError::BadField {
                offset,
                field,
                found: lossy(text),
            })?;
        }
        Ok(Header {
            ino: f[0],
            mode: f[1],
            uid: f[2],
            gid: f[3],
            nlink: f[4],
            mtime: f[5],
            filesize: f[6],
            devmajor: f[7],
            devminor: f[8],
            namesize: f[11],
        })
    }

    /// One entry: its header, name and data, with the padding consumed.
    fn entry(&mut self) -> Result<(Header, String, &'a [u8]), CpioError> {
        let offset = self.pos;
        let header = self.header()?;
        let namesize = header.namesize as usize;
        let raw_name = self.take(namesize, "name")?;
        let name = match raw_name.split_last() {
            Some((0, name)) if !name.contains(&0) => name,
            _ => return Err(CpioError::BadName { offset }),
        };
        let name = std::str::from_utf8(name).map_err(|_| CpioError::NameNotUtf8 { offset })?;
        self.take(pad4(HEADER_LEN + namesize), "name padding")?;
        let data = self.take(header.filesize as usize, "data")?;
        self.take(pad4(data.len()), "data padding")?;
        Ok((header, name.to_string(), data))
    }

    /// Skip the NUL padding after a trailer; true if another archive follows.
    fn next_archive(&mut self) -> Result<bool, CpioError> {
        while self.pos < self.data.len() && self.data[self.pos] == 0 {
            self.pos += 1;
        }
        if self.pos == self.data.len() {
            return Ok(false);
        }
        if !self.pos.is_multiple_of(4) || !self.data[self.pos..].starts_with(MAGIC) {
            return Err(CpioError::TrailingGarbage { offset: self.pos });
        }
        Ok(true)
    }
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn parse_hex(text: &[u8]) -> Option<u32> {
    let text = std::str::from_utf8(text).ok()?;
    if !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(text, 16).ok()
}

/// One entry as returned by [`read_newc`]: name, mode (with type bits) and data.
pub type CpioEntry = (String, u32, Vec<u8>);

/// Read a newc archive strictly: every header, name and datum must be complete and padded,
/// and the archive must end with `TRAILER!!!`. Like the kernel, it accepts several archives
/// concatenated (NUL padding between them, each starting 4-byte aligned); compressed
/// segments are not supported. Hard links are resolved: every path of a multiply-linked
/// regular file gets the inode's data, whichever path carried it. The trailer is not returned.
pub fn read_newc(data: &[u8]) -> Result<Vec<CpioEntry>, CpioError> {
    let mut reader = Reader { data, pos: 0 };
    let mut entries = Vec::new();
    loop {
        read_archive(&mut reader, &mut entries)?;
        if !reader.next_archive()? {
            return Ok(entries);
        }
    }
}

/// Read one archive up to and including its trailer, appending to `entries`.
fn read_archive(reader: &mut Reader, entries: &mut Vec<CpioEntry>) -> Result<(), CpioError> {
    // Hard links are scoped to one archive, as in the kernel: (dev, ino) -> entry indices.
    let mut links: BTreeMap<(u32, u32, u32), Vec<usize>> = BTreeMap::new();
    loop {
        if reader.pos == reader.data.len() {
            return Err(CpioError::MissingTrailer);
        }
        let (header, name, data) = reader.entry()?;
        if name == TRAILER {
            resolve_links(entries, &links);
            return Ok(());
        }
        if header.mode & S_IFMT == S_IFREG && header.nlink >= 2 {
            let key = (header.devmajor, header.devminor, header.ino);
            links.entry(key).or_default().push(entries.len());
        }
        entries.push((name, header.mode, data.to_vec()));
    }
}

/// Give every path of a hard-linked inode the data of the (last) path that carried it.
fn resolve_links(entries: &mut [CpioEntry], links: &BTreeMap<(u32, u32, u32), Vec<usize>>) {
    for members in links.values() {
        let carrier = members.iter().rev().find(|&&i| !entries[i].2.is_empty());
        if let Some(&carrier) = carrier {
            let data = entries[carrier].2.clone();
            for &i in members {
                entries[i].2.clone_from(&data);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archive(tree: &Tree) -> Vec<u8> {
        let mut out = Vec::new();
        let n = write_newc(tree, &mut out).unwrap();
        assert_eq!(n, out.len() as u64);
        out
    }

    fn sample() -> Tree {
        let mut t = Tree::new();
        t.insert("init", Entry::file(b"#!/bin/sh\necho hi\n".to_vec(), 0o755))
            .unwrap();
        t.insert(
            "usr/bin/busybox",
            Entry::file(vec![7u8; 1001], 0o755).with_mtime(42),
        )
        .unwrap();
        t.insert("usr/bin/su", Entry::file(b"su".to_vec(), 0o4755))
            .unwrap();
        t.insert("bin", Entry::symlink("usr/bin")).unwrap();
        t.insert("usr/bin/sh", Entry::symlink("busybox")).unwrap();
        t.insert("etc", Entry::dir(0o700)).unwrap();
        t
    }

    /// The raw headers of an archive, walking it with the strict reader.
    fn headers(data: &[u8]) -> Vec<(usize, Header, String)> {
        let mut r = Reader { data, pos: 0 };
        let mut out = Vec::new();
        loop {
            let offset = r.pos;
            let (h, name, _) = r.entry().unwrap();
            let done = name == TRAILER;
            out.push((offset, h, name));
            if done {
                assert_eq!(r.pos, data.len(), "nothing after the trailer");
                return out;
            }
        }
    }

    #[test]
    fn round_trip() {
        let got = read_newc(&archive(&sample())).unwrap();
        let want: Vec<CpioEntry> = vec![
            ("bin".into(), 0o120777, b"usr/bin".to_vec()),
            ("etc".into(), 0o040700, vec![]),
            ("init".into(), 0o100755, b"#!/bin/sh\necho hi\n".to_vec()),
            ("usr".into(), 0o040755, vec![]),
            ("usr/bin".into(), 0o040755, vec![]),
            ("usr/bin/busybox".into(), 0o100755, vec![7u8; 1001]),
            ("usr/bin/sh".into(), 0o120777, b"busybox".to_vec()),
            ("usr/bin/su".into(), 0o104755, b"su".to_vec()),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn header_fields() {
        let data = archive(&sample());
        let hs = headers(&data);
        let inos: Vec<u32> = hs.iter().map(|(_, h, _)| h.ino).collect();
        assert_eq!(inos, [1, 2, 3, 4, 5, 6, 7, 8, 0]);
        let (_, etc, _) = &hs[1];
        assert_eq!((etc.nlink, etc.mode), (2, 0o040700));
        let (_, busybox, _) = &hs[5];
        assert_eq!(
            (busybox.nlink, busybox.mtime, busybox.filesize),
            (1, 42, 1001)
        );
        let (_, trailer, name) = &hs[8];
        assert_eq!(name, TRAILER);
        assert_eq!((trailer.nlink, trailer.mode, trailer.namesize), (1, 0, 11));
        // The trailer ends the archive: 110 + 11 bytes padded to 124.
        assert_eq!(data.len() - hs[8].0, 124);
        assert!(
            data.starts_with(b"070701000000010000A1FF"),
            "ino 1, mode 0120777, upper hex"
        );
    }

    #[test]
    fn owner_and_setuid() {
        let mut t = Tree::new();
        let e = Entry {
            uid: 1000,
            gid: 0x2a,
            ..Entry::file(b"x".to_vec(), 0o6711)
        };
        t.insert("x", e).unwrap();
        let (_, h, _) = headers(&archive(&t))[0];
        assert_eq!((h.mode, h.uid, h.gid), (0o106711, 1000, 42));
        assert_eq!(read_newc(&archive(&t)).unwrap()[0].1, 0o106711);
    }

    #[test]
    fn deterministic() {
        assert_eq!(archive(&sample()), archive(&sample()));
        let mut other = sample();
        other
            .insert("init", Entry::file(b"changed".to_vec(), 0o755))
            .unwrap();
        assert_ne!(archive(&sample()), archive(&other));
    }

    #[test]
    fn padding_for_every_length() {
        let mut t = Tree::new();
        let mut expected_len = 0;
        for name_len in 1..=8 {
            for data_len in 0..=8 {
                let name = format!("{}{}", "n".repeat(name_len), data_len);
                t.insert(&name, Entry::file(vec![b'd'; data_len], 0o644))
                    .unwrap();
                let name_part = HEADER_LEN + name.len() + 1;
                expected_len += name_part + pad4(name_part) + data_len + pad4(data_len);
            }
        }
        expected_len += 124; // trailer
        let data = archive(&t);
        assert_eq!(data.len(), expected_len);
        for (offset, h, name) in headers(&data) {
            assert_eq!(offset % 4, 0, "{name} starts aligned");
            let name_end = offset + HEADER_LEN + h.namesize as usize;
            let data_start = name_end + pad4(name_end);
            assert!(
                data[name_end - 1..data_start].iter().all(|&b| b == 0),
                "{name}"
            );
            let data_end = data_start + h.filesize as usize;
            assert!(data[data_end..data_end + pad4(data_end)]
                .iter()
                .all(|&b| b == 0));
        }
        let back = read_newc(&data).unwrap();
        assert_eq!(back.len(), 72);
        assert!(back
            .iter()
            .all(|(n, _, d)| d.len() == (n.as_bytes()[n.len() - 1] - b'0') as usize));
    }

    fn hardlinked() -> Tree {
        let mut t = sample();
        let link = |to: &str| Entry {
            kind: Kind::Hardlink(to.into()),
            ..Entry::dir(0o600)
        };
        t.insert(
            "usr/bin/gzip",
            Entry::file(b"gz".to_vec(), 0o755).with_mtime(9),
        )
        .unwrap();
        t.insert("usr/bin/gunzip", link("usr/bin/gzip")).unwrap();
        t.insert("usr/bin/zcat", link("usr/bin/gzip")).unwrap();
        t
    }

    #[test]
    fn hardlinks_share_an_inode_and_data_goes_last() {
        let data = archive(&hardlinked());
        let hs = headers(&data);
        let find = |n: &str| hs.iter().find(|(_, _, name)| name == n).unwrap().1;
        let (gunzip, gzip, zcat) = (
            find("usr/bin/gunzip"),
            find("usr/bin/gzip"),
            find("usr/bin/zcat"),
        );
        assert_eq!(gunzip.ino, gzip.ino);
        assert_eq!(zcat.ino, gzip.ino);
        for h in [gunzip, gzip, zcat] {
            assert_eq!(
                (h.nlink, h.mode, h.mtime),
                (3, 0o100755, 9),
                "target's metadata"
            );
        }
        assert_eq!((gunzip.filesize, gzip.filesize, zcat.filesize), (0, 0, 2));
        // Inodes stay dense: the three paths use one number.
        let max_ino = hs.iter().map(|(_, h, _)| h.ino).max().unwrap();
        assert_eq!(max_ino as usize, hs.len() - 1 - 2);
        let back = read_newc(&data).unwrap();
        for n in ["usr/bin/gunzip", "usr/bin/gzip", "usr/bin/zcat"] {
            assert_eq!(back.iter().find(|e| e.0 == n).unwrap().2, b"gz", "{n}");
        }
    }

    #[test]
    fn dangling_hardlink_is_an_error() {
        let mut t = hardlinked();
        t.remove_subtree("usr/bin/gzip");
        let err = write_newc(&t, &mut Vec::new()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("usr/bin/gunzip"), "{err}");
    }

    #[test]
    fn mtime_beyond_32_bits_is_an_error() {
        let mut t = Tree::new();
        t.insert("x", Entry::file(b"x".to_vec(), 0o644).with_mtime(1 << 32))
            .unwrap();
        let err = write_newc(&t, &mut Vec::new()).unwrap_err();
        assert!(err.to_string().contains("mtime"), "{err}");
    }

    #[test]
    fn empty_tree_is_just_a_trailer() {
        let data = archive(&Tree::new());
        assert_eq!(data.len(), 124);
        assert_eq!(read_newc(&data).unwrap(), vec![]);
    }

    #[test]
    fn reader_rejects_every_truncation() {
        let data = archive(&hardlinked());
        for len in 0..data.len() {
            assert!(
                read_newc(&data[..len]).is_err(),
                "prefix of {len} bytes accepted"
            );
        }
    }

    #[test]
    fn reader_errors() {
        let data = archive(&sample());
        let mut bad = data.clone();
        bad[5] = b'2';
        assert!(matches!(
            read_newc(&bad),
            Err(CpioError::BadMagic { offset: 0, .. })
        ));
        let mut bad = data.clone();
        bad[6] = b'g';
        assert!(matches!(
            read_newc(&bad),
            Err(CpioError::BadField { field: "ino", .. })
        ));
        let mut bad = data.clone();
        bad.extend_from_slice(b"\0\0\0\0junk");
        assert!(
            matches!(read_newc(&bad), Err(CpioError::TrailingGarbage { offset }) if offset == data.len() + 4)
        );
        let mut bad = data.clone();
        bad[6 + 11 * 8..6 + 12 * 8].copy_from_slice(b"00000000");
        assert!(matches!(
            read_newc(&bad),
            Err(CpioError::BadName { offset: 0 })
        ));
        // A huge file size must not allocate or panic.
        let mut bad = data;
        bad[6 + 6 * 8..6 + 7 * 8].copy_from_slice(b"FFFFFFFF");
        assert!(matches!(
            read_newc(&bad),
            Err(CpioError::Truncated { what: "data", .. })
        ));
    }

    #[test]
    fn reader_accepts_concatenated_archives() {
        let mut t = Tree::new();
        t.insert(
            "kernel/x86/microcode/GenuineIntel.bin",
            Entry::file(b"uc".to_vec(), 0o644),
        )
        .unwrap();
        let mut data = archive(&t);
        data.extend_from_slice(&[0; 512]);
        data.extend_from_slice(&archive(&hardlinked()));
        let entries = read_newc(&data).unwrap();
        assert_eq!(
            entries.len(),
            4 + read_newc(&archive(&hardlinked())).unwrap().len()
        );
    }

    proptest::proptest! {
        #[test]
        fn reader_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..400)) {
            let _ = read_newc(&bytes);
            let mut with_magic = MAGIC.to_vec();
            with_magic.extend_from_slice(&bytes);
            let _ = read_newc(&with_magic);
        }

        #[test]
        fn reader_survives_flipped_bytes(pos in 0usize..600, byte in proptest::num::u8::ANY) {
            let mut data = archive(&hardlinked());
            let pos = pos % data.len();
            data[pos] = byte;
            let _ = read_newc(&data);
        }
    }

    /// Cross-check with GNU cpio (installed by scripts/setup-host.sh).
    #[test]
    fn host_cpio_extracts_it() {
        use std::process::{Command, Stdio};
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new("cpio")
            .args([
                "-i",
                "--make-directories",
                "--no-absolute-filenames",
                "--quiet",
            ])
            .current_dir(dir.path())
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(&archive(&hardlinked()))
            .unwrap();
        assert!(child.wait().unwrap().success());
        let root = dir.path();
        assert_eq!(
            std::fs::read(root.join("usr/bin/busybox")).unwrap(),
            vec![7u8; 1001]
        );
        assert_eq!(
            std::fs::read_link(root.join("usr/bin/sh"))
                .unwrap()
                .to_str(),
            Some("busybox")
        );
        assert_eq!(std::fs::read(root.join("usr/bin/zcat")).unwrap(), b"gz");
        assert_eq!(std::fs::read(root.join("usr/bin/gunzip")).unwrap(), b"gz");
        use std::os::unix::fs::MetadataExt;
        let gzip = std::fs::metadata(root.join("usr/bin/gzip")).unwrap();
        assert_eq!(gzip.nlink(), 3);
        assert_eq!(
            gzip.ino(),
            std::fs::metadata(root.join("usr/bin/zcat")).unwrap().ino()
        );
        let su = std::fs::metadata(root.join("usr/bin/su")).unwrap();
        assert_eq!(su.mode(), 0o104755);
    }
}
