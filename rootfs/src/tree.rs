//! An in-memory file tree: the value every filesystem writer (squashfs, cpio, ext4 via a
//! directory) consumes.
//!
//! Paths are relative, `/`-separated, normalised (`usr/bin/busybox`), kept in a `BTreeMap` so
//! iteration order, and therefore every image made from a tree, is deterministic. The tree
//! keeps one invariant that makes materialising it safe: no entry lives beneath a symlink, so
//! writing the tree to a directory can never follow a link out of it.

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

/// Why an entry was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TreeError {
    #[error("path {path:?} escapes the target directory")]
    Escapes { path: String },
    #[error("path {path:?} lies beneath symlink {link:?}")]
    BeneathSymlink { path: String, link: String },
    #[error("path {path:?} needs {parent:?} to be a directory, but it is not")]
    ParentNotDir { path: String, parent: String },
    #[error("hard link {path:?} points to {target:?}, which is not a regular file in the tree")]
    BadHardlink { path: String, target: String },
    #[error("cannot replace directory {path:?} with a non-directory")]
    ReplacesDir { path: String },
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

/// A deterministic file tree.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tree {
    entries: BTreeMap<String, Entry>,
}

impl Tree {
    pub fn new() -> Self {
        Tree::default()
    }

    /// Insert an entry at `raw` (normalised first). Missing parents are created as
    /// `0755 root:root` directories with the entry's mtime. Refuses paths that escape, paths
    /// beneath a symlink, and hard links to anything but an existing regular file. An existing
    /// directory is kept (its metadata updated) when a directory is inserted again.
    pub fn insert(&mut self, raw: &str, entry: Entry) -> Result<String, TreeError> {
        let path = normalize(raw)?;
        if path.is_empty() {
            return Ok(path); // the root's metadata is not stored
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
        if let Some(old) = self.entries.get(&path) {
            if old.is_dir() && !entry.is_dir() {
                return Err(TreeError::ReplacesDir { path });
            }
        }
        self.entries.insert(path.clone(), entry);
        Ok(path)
    }

    fn ensure_parents(&mut self, path: &str, mtime: u64) -> Result<(), TreeError> {
        let mut prefix = String::new();
        let comps: Vec<&str> = path.split('/').collect();
        for comp in &comps[..comps.len() - 1] {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(comp);
            match self.entries.get(&prefix).map(|e| &e.kind) {
                None => {
                    self.entries
                        .insert(prefix.clone(), Entry::dir(0o755).with_mtime(mtime));
                }
                Some(Kind::Dir) => {}
                Some(Kind::Symlink(_)) => {
                    return Err(TreeError::BeneathSymlink {
                        path: path.to_string(),
                        link: prefix,
                    })
                }
                Some(_) => {
                    return Err(TreeError::ParentNotDir {
                        path: path.to_string(),
                        parent: prefix,
                    })
                }
            }
        }
        Ok(())
    }

    pub fn get(&self, path: &str) -> Option<&Entry> {
        self.entries.get(path)
    }

    /// Remove one entry (a file or a link; a directory's children stay).
    pub fn remove(&mut self, path: &str) -> Option<Entry> {
        self.entries.remove(path)
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
            .collect();
        Tree { entries }
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
