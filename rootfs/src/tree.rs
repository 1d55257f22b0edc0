//! An in-memory file tree: the value every filesystem writer (squashfs, cpio, ext4 via a
//! directory) consumes.
//!
//! Paths are relative, `/`-separated, normalised (`usr/bin/busybox`), kept in a `BTreeMap` so
//! iteration order, and therefore every image made from a tree, is deterministic. The tree
//! keeps one invariant that makes materialising it safe: no entry lives beneath a symlink, so
//! writing the tree to a directory can never follow a link out of it.
//!
//! A tree also holds only what every filesystem an image is made of can store, so a hostile or
//! careless package is refused while it is read, not when `unsquashfs` or the kernel meets it:
//! names of at most [`NAME_MAX`] bytes, paths of at most [`PATH_MAX`] bytes and [`MAX_DEPTH`]
//! directories, and at most [`Limits`] entries and file bytes in all. Inserting costs time
//! linear in the length of the path (one lookup per missing parent), so a deep path cannot
//! make building a tree quadratic.

use std::collections::BTreeMap;
use std::sync::Arc;

/// What an entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File(Arc<Vec<u8>>),
    /// Target as stored in the archive (may be absolute or relative; never followed here).
    Symlink(String),
    /// A hard link to another regular file of the tree (normalised path).
    Hardlink(String),
}

/// One entry of the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub kind: Kind,
    /// Permission bits including setuid/setgid/sticky (`0o7777` mask).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Seconds since the epoch, already clamped by the caller when needed.
    pub mtime: u64,
}

impl Entry {
    pub fn dir(mode: u32) -> Self {
        Entry {
            kind: Kind::Dir,
            mode,
            uid: 0,
            gid: 0,
            mtime: 0,
        }
    }
    pub fn file(data: impl Into<Vec<u8>>, mode: u32) -> Self {
        Entry {
            kind: Kind::File(Arc::new(data.into())),
            mode,
            uid: 0,
            gid: 0,
            mtime: 0,
        }
    }
    pub fn symlink(target: impl Into<String>) -> Self {
        Entry {
            kind: Kind::Symlink(target.into()),
            mode: 0o777,
            uid: 0,
            gid: 0,
            mtime: 0,
        }
    }
    pub fn with_mtime(mut self, mtime: u64) -> Self {
        self.mtime = mtime;
        self
    }
    pub fn is_dir(&self) -> bool {
        matches!(self.kind, Kind::Dir)
    }
}

/// The longest file name, in bytes: Linux's `NAME_MAX`, where ext4 and FAT (255 UTF-16 units,
/// so fewer bytes for most names) stop; squashfs allows 256.
pub const NAME_MAX: usize = 255;
/// The longest path, in bytes, counting its leading `/`: Linux's `PATH_MAX` less the NUL. A
/// longer path cannot be opened in one system call, nor a longer symlink target be read.
pub const PATH_MAX: usize = 4095;
/// The deepest path, in components. No real package comes near it (Debian's deepest are about
/// 20); it bounds the recursion of every tool that walks the image.
pub const MAX_DEPTH: usize = 256;

/// How much a tree may hold in all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Entries (files, directories, links).
    pub max_entries: usize,
    /// Bytes of regular files (hard links not counted again).
    pub max_file_bytes: u64,
}

impl Limits {
    /// A million entries and 8 GiB: several times a full desktop's /usr, and what the builder
    /// can hold in memory on a small CI machine.
    pub const DEFAULT: Limits = Limits {
        max_entries: 1 << 20,
        max_file_bytes: 8 << 30,
    };
}

/// A path as error messages show it: whole when short, else its start and its length, so a
/// hostile 4 KiB path does not drown the message.
pub fn shown(path: &str) -> String {
    const SHOWN: usize = 60;
    if path.len() <= SHOWN {
        return format!("{path:?}");
    }
    let mut end = SHOWN;
    while !path.is_char_boundary(end) {
        end -= 1;
    }
    format!("{:?}... ({} bytes)", &path[..end], path.len())
}

/// Why an entry was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TreeError {
    #[error("path {} escapes the target directory", shown(path))]
    Escapes { path: String },
    #[error("path {} lies beneath symlink {}", shown(path), shown(link))]
    BeneathSymlink { path: String, link: String },
    #[error(
        "path {} needs {} to be a directory, but it is not",
        shown(path),
        shown(parent)
    )]
    ParentNotDir { path: String, parent: String },
    #[error(
        "hard link {} points to {}, which is not a regular file in the tree",
        shown(path),
        shown(target)
    )]
    BadHardlink { path: String, target: String },
    #[error("cannot replace directory {} with a non-directory", shown(path))]
    ReplacesDir { path: String },
    #[error(
        "path {}: the name {} is too long; names may have at most {NAME_MAX} bytes (ext4 and \
         FAT stop there, squashfs at 256)",
        shown(path),
        shown(name)
    )]
    NameTooLong { path: String, name: String },
    #[error(
        "path {} is too long: {bytes} bytes with its leading /, and paths may have at most \
         {PATH_MAX} (Linux's PATH_MAX)",
        shown(path),
        bytes = path.len() + 1
    )]
    PathTooLong { path: String },
    #[error(
        "path {} is {depth} directories deep; at most {MAX_DEPTH} are allowed",
        shown(path)
    )]
    TooDeep { path: String, depth: usize },
    #[error(
        "symlink {} has a {bytes}-byte target; targets may have at most {PATH_MAX} bytes",
        shown(path)
    )]
    SymlinkTooLong { path: String, bytes: usize },
    #[error("at {}: the image would hold more than {limit} entries", shown(path))]
    TooManyEntries { path: String, limit: usize },
    #[error(
        "at {}: the image's files would add up to {bytes} bytes, more than the {limit} allowed",
        shown(path)
    )]
    TooLarge {
        path: String,
        bytes: u64,
        limit: u64,
    },
}

/// Check a normalised, non-empty path against [`NAME_MAX`], [`PATH_MAX`] and [`MAX_DEPTH`].
pub fn check_path(path: &str) -> Result<(), TreeError> {
    if path.len() + 1 > PATH_MAX {
        return Err(TreeError::PathTooLong {
            path: path.to_string(),
        });
    }
    let mut depth = 0;
    for name in path.split('/') {
        depth += 1;
        if name.len() > NAME_MAX {
            return Err(TreeError::NameTooLong {
                path: path.to_string(),
                name: name.to_string(),
            });
        }
    }
    if depth > MAX_DEPTH {
        return Err(TreeError::TooDeep {
            path: path.to_string(),
            depth,
        });
    }
    Ok(())
}

/// Normalise an archive path: strip a leading `./` or `/`, drop `.` and empty components,
/// refuse `..`. Returns `""` for the root itself.
pub fn normalize(raw: &str) -> Result<String, TreeError> {
    let mut parts = Vec::new();
    for comp in raw.split('/') {
        match comp {
            "" | "." => {}
            ".." => {
                return Err(TreeError::Escapes {
                    path: raw.to_string(),
                })
            }
            c if c.contains('\0') => {
                return Err(TreeError::Escapes {
                    path: raw.to_string(),
                })
            }
            c => parts.push(c),
        }
    }
    Ok(parts.join("/"))
}

/// The parent of a normalised path (`""` for top-level entries).
pub fn parent(path: &str) -> &str {
    path.rfind('/').map_or("", |i| &path[..i])
}

/// The bytes an entry adds to [`Tree::file_bytes`].
fn file_len(entry: &Entry) -> u64 {
    match &entry.kind {
        Kind::File(data) => data.len() as u64,
        _ => 0,
    }
}

/// A deterministic file tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tree {
    entries: BTreeMap<String, Entry>,
    /// The sum of [`file_len`] over `entries`.
    file_bytes: u64,
    limits: Limits,
}

impl Default for Tree {
    fn default() -> Tree {
        Tree::with_limits(Limits::DEFAULT)
    }
}

impl Tree {
    pub fn new() -> Self {
        Tree::default()
    }

    /// An empty tree that holds at most `limits`.
    pub fn with_limits(limits: Limits) -> Self {
        Tree {
            entries: BTreeMap::new(),
            file_bytes: 0,
            limits,
        }
    }

    /// The bytes of all regular files.
    pub fn file_bytes(&self) -> u64 {
        self.file_bytes
    }

    /// Whether `bytes` more file data fit the limits; `path` names the entry in the error. For
    /// readers that know a file's size before reading it.
    pub fn check_room(&self, path: &str, bytes: u64) -> Result<(), TreeError> {
        let total = self.file_bytes.saturating_add(bytes);
        if total > self.limits.max_file_bytes {
            return Err(TreeError::TooLarge {
                path: path.to_string(),
                bytes: total,
                limit: self.limits.max_file_bytes,
            });
        }
        Ok(())
    }

    /// Insert an entry at `raw` (normalised first). Missing parents are created as
    /// `0755 root:root` directories with the entry's mtime. Refuses paths that escape, paths
    /// beneath a symlink, hard links to anything but an existing regular file, and paths,
    /// names and symlink targets longer or deeper than every filesystem of an image stores
    /// ([`check_path`]), and entries beyond the tree's [`Limits`]. An existing directory is
    /// kept (its metadata updated) when a directory is inserted again.
    pub fn insert(&mut self, raw: &str, entry: Entry) -> Result<String, TreeError> {
        let path = normalize(raw)?;
        if path.is_empty() {
            return Ok(path); // the root's metadata is not stored
        }
        check_path(&path)?;
        if let Kind::Symlink(target) = &entry.kind {
            if target.len() > PATH_MAX {
                return Err(TreeError::SymlinkTooLong {
                    path,
                    bytes: target.len(),
                });
            }
        }
        self.ensure_parents(&path, entry.mtime)?;
        if let Kind::Hardlink(target) = &entry.kind {
            let target = normalize(target).map_err(|_| TreeError::BadHardlink {
                path: path.clone(),
                target: target.clone(),
            })?;
            match self.entries.get(&target).map(|e| &e.kind) {
                Some(Kind::File(_)) => {}
                _ => return Err(TreeError::BadHardlink { path, target }),
            }
            let mut e = entry.clone();
            e.kind = Kind::Hardlink(target);
            return self.put(path, e);
        }
        self.put(path, entry)
    }

    fn put(&mut self, path: String, entry: Entry) -> Result<String, TreeError> {
        let old_bytes = match self.entries.get(&path) {
            Some(old) if old.is_dir() && !entry.is_dir() => {
                return Err(TreeError::ReplacesDir { path });
            }
            Some(old) => file_len(old),
            None => {
                self.check_count(&path, 1)?;
                0
            }
        };
        let total = (self.file_bytes - old_bytes).saturating_add(file_len(&entry));
        if total > self.limits.max_file_bytes {
            return Err(TreeError::TooLarge {
                path,
                bytes: total,
                limit: self.limits.max_file_bytes,
            });
        }
        self.file_bytes = total;
        self.entries.insert(path.clone(), entry);
        Ok(path)
    }

    fn check_count(&self, path: &str, more: usize) -> Result<(), TreeError> {
        if self.entries.len().saturating_add(more) > self.limits.max_entries {
            return Err(TreeError::TooManyEntries {
                path: path.to_string(),
                limit: self.limits.max_entries,
            });
        }
        Ok(())
    }

    /// Create the missing parents of `path`. Walks up from the parent to the first one that
    /// exists: every ancestor of a directory in the tree is a directory (they were made so when
    /// it was inserted, and a directory is never replaced), so one lookup settles most inserts.
    fn ensure_parents(&mut self, path: &str, mtime: u64) -> Result<(), TreeError> {
        let mut missing = Vec::new();
        let mut dir = parent(path);
        while !dir.is_empty() {
            match self.entries.get(dir).map(|e| &e.kind) {
                Some(Kind::Dir) => break,
                None => {
                    missing.push(dir);
                    dir = parent(dir);
                }
                Some(Kind::Symlink(_)) => {
                    return Err(TreeError::BeneathSymlink {
                        path: path.to_string(),
                        link: dir.to_string(),
                    })
                }
                Some(_) => {
                    return Err(TreeError::ParentNotDir {
                        path: path.to_string(),
                        parent: dir.to_string(),
                    })
                }
            }
        }
        let new = usize::from(!self.entries.contains_key(path));
        self.check_count(path, missing.len() + new)?;
        for dir in missing.into_iter().rev() {
            self.entries
                .insert(dir.to_string(), Entry::dir(0o755).with_mtime(mtime));
        }
        Ok(())
    }

    pub fn get(&self, path: &str) -> Option<&Entry> {
        self.entries.get(path)
    }

    /// Remove one entry (a file or a link; a directory's children stay).
    pub fn remove(&mut self, path: &str) -> Option<Entry> {
        let e = self.entries.remove(path)?;
        self.file_bytes -= file_len(&e);
        Some(e)
    }

    /// Remove the directories beneath `prefix` that hold nothing (after [`Tree::remove`]s),
    /// deepest first, so a directory emptied that way goes too.
    pub fn prune_empty_dirs(&mut self, prefix: &str) {
        let lead = format!("{prefix}/");
        let dirs: Vec<String> = self
            .entries
            .range(lead.clone()..)
            .take_while(|(k, _)| k.starts_with(&lead))
            .filter(|(_, e)| e.is_dir())
            .map(|(k, _)| k.clone())
            .collect();
        for dir in dirs.iter().rev() {
            let child = format!("{dir}/");
            let has_child = self
                .entries
                .range(child.clone()..)
                .next()
                .is_some_and(|(k, _)| k.starts_with(&child));
            if !has_child {
                self.entries.remove(dir);
            }
        }
    }

    /// Remove an entry and everything beneath it; returns the removed entries in order.
    pub fn remove_subtree(&mut self, path: &str) -> Vec<(String, Entry)> {
        let keys: Vec<String> = self
            .entries
            .keys()
            .filter(|k| *k == path || k.starts_with(&format!("{path}/")))
            .cloned()
            .collect();
        keys.into_iter()
            .map(|k| {
                let e = self.entries.remove(&k).expect("key listed above");
                self.file_bytes -= file_len(&e);
                (k, e)
            })
            .collect()
    }

    /// Entries in path order (parents before children).
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Entry)> {
        self.entries.iter()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Set every mtime above `epoch` to `epoch` (reproducible builds' `SOURCE_DATE_EPOCH`).
    pub fn clamp_mtimes(&mut self, epoch: u64) {
        for e in self.entries.values_mut() {
            e.mtime = e.mtime.min(epoch);
        }
    }

    /// The subtree below `prefix`, re-rooted (`usr/bin/x` becomes `bin/x` for prefix `usr`).
    pub fn subtree(&self, prefix: &str) -> Tree {
        let lead = format!("{prefix}/");
        let entries = self
            .entries
            .iter()
            .filter_map(|(k, e)| {
                let rest = k.strip_prefix(&lead)?;
                let mut e = e.clone();
                if let Kind::Hardlink(t) = &e.kind {
                    e.kind = Kind::Hardlink(t.strip_prefix(&lead).unwrap_or(t).to_string());
                }
                Some((rest.to_string(), e))
            })
            .collect::<BTreeMap<_, _>>();
        let file_bytes = entries.values().map(file_len).sum();
        Tree {
            entries,
            file_bytes,
            limits: self.limits,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prune_removes_emptied_directories_only() {
        let mut t = Tree::new();
        for f in [
            "m/k/sound/core/snd.ko",
            "m/k/net/a.ko",
            "m/k/net-x/b.ko",
            "m/k/d/e/f/g.ko",
        ] {
            t.insert(f, Entry::file(b"x".to_vec(), 0o644)).unwrap();
        }
        t.insert("m/k/empty", Entry::dir(0o755)).unwrap();
        for f in ["m/k/sound/core/snd.ko", "m/k/net-x/b.ko", "m/k/d/e/f/g.ko"] {
            assert!(t.remove(f).is_some());
        }
        t.prune_empty_dirs("m/k");
        let left: Vec<&str> = t.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(left, ["m", "m/k", "m/k/net", "m/k/net/a.ko"]);
    }

    #[test]
    fn normalize_cases() {
        assert_eq!(normalize("./usr/bin/x").unwrap(), "usr/bin/x");
        assert_eq!(normalize("/usr//bin/./x/").unwrap(), "usr/bin/x");
        assert_eq!(normalize("./").unwrap(), "");
        assert!(normalize("usr/../../etc").is_err());
        assert!(normalize("..").is_err());
    }

    #[test]
    fn parents_are_created() {
        let mut t = Tree::new();
        t.insert(
            "usr/bin/x",
            Entry::file(b"hi".to_vec(), 0o755).with_mtime(5),
        )
        .unwrap();
        assert!(t.get("usr").unwrap().is_dir());
        assert!(t.get("usr/bin").unwrap().is_dir());
        let keys: Vec<_> = t.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["usr", "usr/bin", "usr/bin/x"]);
    }

    #[test]
    fn refuses_beneath_symlink() {
        let mut t = Tree::new();
        t.insert("lib", Entry::symlink("/etc")).unwrap();
        let err = t
            .insert("lib/passwd", Entry::file(b"x".to_vec(), 0o644))
            .unwrap_err();
        assert_eq!(
            err,
            TreeError::BeneathSymlink {
                path: "lib/passwd".into(),
                link: "lib".into()
            }
        );
    }

    #[test]
    fn hardlink_needs_existing_file() {
        let mut t = Tree::new();
        let link = Entry {
            kind: Kind::Hardlink("usr/a".into()),
            ..Entry::dir(0o644)
        };
        assert!(matches!(
            t.insert("usr/b", link.clone()),
            Err(TreeError::BadHardlink { .. })
        ));
        t.insert("usr/a", Entry::file(b"x".to_vec(), 0o644))
            .unwrap();
        t.insert("usr/b", link).unwrap();
        assert_eq!(t.get("usr/b").unwrap().kind, Kind::Hardlink("usr/a".into()));
    }

    #[test]
    fn cannot_replace_dir_with_file() {
        let mut t = Tree::new();
        t.insert("usr/lib", Entry::dir(0o755)).unwrap();
        assert!(t.insert("usr/lib", Entry::symlink("x")).is_err());
        t.insert("usr/lib", Entry::dir(0o700)).unwrap();
        assert_eq!(t.get("usr/lib").unwrap().mode, 0o700);
    }

    #[test]
    fn limits_of_the_filesystems_hold_for_every_insert() {
        let mut t = Tree::new();
        let name = "n".repeat(NAME_MAX);
        t.insert(&format!("usr/{name}"), Entry::file(b"x".to_vec(), 0o644))
            .unwrap();
        let err = t
            .insert(&format!("usr/{name}x"), Entry::dir(0o755))
            .unwrap_err();
        assert!(matches!(err, TreeError::NameTooLong { .. }), "{err}");
        let deep = vec!["d"; MAX_DEPTH].join("/");
        t.insert(&deep, Entry::dir(0o755)).unwrap();
        let err = t
            .insert(&format!("{deep}/d"), Entry::dir(0o755))
            .unwrap_err();
        assert_eq!(err.to_string().matches("directories deep").count(), 1);
        let err = t
            .insert("usr/l", Entry::symlink("t".repeat(PATH_MAX + 1)))
            .unwrap_err();
        assert!(matches!(err, TreeError::SymlinkTooLong { bytes: 4096, .. }));
        let long = vec![name.as_str(); 17].join("/");
        let err = t.insert(&long, Entry::dir(0o755)).unwrap_err();
        assert!(matches!(err, TreeError::PathTooLong { .. }));
        assert!(
            err.to_string().contains("(4351 bytes) is too long"),
            "shortened: {err}"
        );
    }

    #[test]
    fn entries_and_bytes_are_counted_through_every_change() {
        let mut t = Tree::with_limits(Limits {
            max_entries: 4,
            max_file_bytes: 10,
        });
        t.insert("a/b", Entry::file(vec![0; 6], 0o644)).unwrap();
        assert_eq!((t.len(), t.file_bytes()), (2, 6));
        // Replacing a file counts its new size only.
        t.insert("a/b", Entry::file(vec![0; 9], 0o644)).unwrap();
        assert_eq!(t.file_bytes(), 9);
        let err = t.insert("a/c", Entry::file(vec![0; 2], 0o644)).unwrap_err();
        assert!(matches!(
            err,
            TreeError::TooLarge {
                bytes: 11,
                limit: 10,
                ..
            }
        ));
        assert!(t.check_room("a/c", 1).is_ok() && t.check_room("a/c", 2).is_err());
        t.remove("a/b").unwrap();
        assert_eq!(t.file_bytes(), 0);
        t.insert("a/b", Entry::file(vec![0; 10], 0o644)).unwrap();
        t.insert("a/c", Entry::symlink("b")).unwrap();
        // Four entries: a fifth, or new parents, are refused before anything is added.
        let err = t.insert("x/y", Entry::dir(0o755)).unwrap_err();
        assert!(matches!(err, TreeError::TooManyEntries { limit: 4, .. }));
        assert_eq!(t.len(), 3);
        t.insert("a/d", Entry::dir(0o755)).unwrap();
        assert!(t.insert("a/e", Entry::dir(0o755)).is_err());
        assert_eq!(t.remove_subtree("a").len(), 4);
        assert_eq!((t.len(), t.file_bytes()), (0, 0));
    }

    #[test]
    fn subtree_reroots() {
        let mut t = Tree::new();
        t.insert("usr/bin/x", Entry::file(b"1".to_vec(), 0o755))
            .unwrap();
        t.insert("etc/y", Entry::file(b"2".to_vec(), 0o644))
            .unwrap();
        let s = t.subtree("usr");
        let keys: Vec<_> = s.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["bin", "bin/x"]);
    }
}
