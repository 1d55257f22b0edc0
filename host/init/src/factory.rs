//! Populating `/etc` from the factory copy in `/usr/share/factory/etc`.
//!
//! Semantics of systemd-tmpfiles' `C` line applied per entry: every file, directory or symlink
//! of the factory tree that is missing from `/etc` is created (contents, mode and owner copied,
//! symlinks recreated as they are); nothing that exists in `/etc` is ever overwritten. An
//! existing directory is merged into; anything else that exists (a file, a symlink, even one
//! pointing to a directory) keeps its whole factory subtree out, so the copy never follows a
//! link out of `/etc`.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io;
use std::os::unix::fs::{fchown, lchown, symlink, DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The factory tree, relative to the new root.
pub const FACTORY_ETC: &str = "usr/share/factory/etc";

/// What a factory entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    Dir,
    File,
    Symlink {
        target: PathBuf,
    },
    /// Devices, FIFOs, sockets: never copied.
    Other,
}

/// One entry of the factory tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FactoryEntry {
    /// Relative to the factory root (and to `/etc`).
    pub path: PathBuf,
    pub kind: EntryKind,
    /// Permission bits including setuid/setgid/sticky (`0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// What is at an entry's destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    Missing,
    /// A real directory (not a symlink to one).
    Dir,
    Other,
}

/// The copy to do: entries to create, in order (parents first).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan<'a> {
    pub create: Vec<&'a FactoryEntry>,
    /// Entries left alone because something exists at their destination.
    pub kept: Vec<&'a Path>,
    /// Entries of a kind that is never copied.
    pub skipped: Vec<&'a Path>,
}

/// Plans the copy. `entries` must list parents before children (as [`scan`] does); `existing`
/// says what is at an entry's destination now.
pub fn plan(entries: &[FactoryEntry], mut existing: impl FnMut(&Path) -> Existing) -> Plan<'_> {
    let mut plan = Plan::default();
    let mut pruned: Vec<&Path> = Vec::new();
    for e in entries {
        if pruned.iter().any(|p| e.path.starts_with(p)) {
            continue;
        }
        match (&e.kind, existing(&e.path)) {
            (EntryKind::Other, _) => {
                plan.skipped.push(&e.path);
                pruned.push(&e.path);
            }
            (_, Existing::Missing) => plan.create.push(e),
            (EntryKind::Dir, Existing::Dir) => {}
            _ => {
                plan.kept.push(&e.path);
                pruned.push(&e.path);
            }
        }
    }
    plan
}

fn entry_of(root: &Path, rel: PathBuf) -> io::Result<FactoryEntry> {
    let full = root.join(&rel);
    let meta = fs::symlink_metadata(&full)?;
    let ft = meta.file_type();
    let kind = if ft.is_dir() {
        EntryKind::Dir
    } else if ft.is_file() {
        EntryKind::File
    } else if ft.is_symlink() {
        EntryKind::Symlink {
            target: fs::read_link(&full)?,
        }
    } else {
        EntryKind::Other
    };
    Ok(FactoryEntry {
        path: rel,
        kind,
        mode: meta.mode() & 0o7777,
        uid: meta.uid(),
        gid: meta.gid(),
    })
}

fn scan_dir(root: &Path, rel: &Path, out: &mut Vec<FactoryEntry>) -> io::Result<()> {
    let mut names: Vec<_> = fs::read_dir(root.join(rel))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<io::Result<_>>()?;
    names.sort();
    for name in names {
        let entry = entry_of(root, rel.join(name))?;
        let is_dir = entry.kind == EntryKind::Dir;
        let path = entry.path.clone();
        out.push(entry);
        if is_dir {
            scan_dir(root, &path, out)?;
        }
    }
    Ok(())
}

/// Lists the tree under `root` (not `root` itself) in sorted pre-order, without following links.
pub fn scan(root: &Path) -> io::Result<Vec<FactoryEntry>> {
    let mut out = Vec::new();
    scan_dir(root, Path::new(""), &mut out)?;
    Ok(out)
}

/// What is at `path` now, without following a final symlink.
pub fn existing_at(path: &Path) -> Existing {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_dir() => Existing::Dir,
        Ok(_) => Existing::Other,
        // Unreadable (EACCES, ELOOP...) counts as present: never overwrite what we cannot see.
        Err(e) if e.kind() == io::ErrorKind::NotFound => Existing::Missing,
        Err(_) => Existing::Other,
    }
}

/// Creates one planned entry at `dst_root/<path>` from `src_root/<path>`. Refuses to replace
/// anything (the file is opened with `O_EXCL`).
pub fn create(entry: &FactoryEntry, src_root: &Path, dst_root: &Path) -> io::Result<()> {
    let dst = dst_root.join(&entry.path);
    match &entry.kind {
        EntryKind::Dir => {
            DirBuilder::new().mode(0o700).create(&dst)?;
            lchown(&dst, Some(entry.uid), Some(entry.gid))?;
        }
        EntryKind::File => {
            let mut from = File::open(src_root.join(&entry.path))?;
            let mut to = OpenOptions::new().write(true).create_new(true).open(&dst)?;
            fs::set_permissions(&dst, fs::Permissions::from_mode(0o600))?;
            io::copy(&mut from, &mut to)?;
            fchown(&to, Some(entry.uid), Some(entry.gid))?;
            to.sync_all()?;
        }
        EntryKind::Symlink { target } => {
            symlink(target, &dst)?;
            return lchown(&dst, Some(entry.uid), Some(entry.gid));
        }
        EntryKind::Other => {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "not a file, directory or symlink",
            ))
        }
    }
    // Last, so that chown does not clear setuid/setgid bits and the umask does not apply.
    fs::set_permissions(&dst, fs::Permissions::from_mode(entry.mode))
}

/// The outcome of [`populate`], for the console.
#[derive(Debug, Default)]
pub struct Report {
    pub created: Vec<PathBuf>,
    pub kept: usize,
    pub skipped: Vec<PathBuf>,
    pub failed: Vec<(PathBuf, io::Error)>,
}

/// Copies what is missing from `src_root` (the factory `etc`) into `dst_root` (`/etc`, created
/// with mode 0755 if missing). Fails only if the factory cannot be read; a failed entry is
/// recorded in the report and the rest goes on.
pub fn populate(src_root: &Path, dst_root: &Path) -> io::Result<Report> {
    let entries = scan(src_root)?;
    if existing_at(dst_root) == Existing::Missing {
        DirBuilder::new().mode(0o755).create(dst_root)?;
        fs::set_permissions(dst_root, fs::Permissions::from_mode(0o755))?;
    }
    let plan = plan(&entries, |rel| existing_at(&dst_root.join(rel)));
    let mut report = Report {
        kept: plan.kept.len(),
        skipped: plan.skipped.iter().map(|p| p.to_path_buf()).collect(),
        ..Report::default()
    };
    for entry in plan.create {
        match create(entry, src_root, dst_root) {
            Ok(()) => report.created.push(entry.path.clone()),
            Err(e) => report.failed.push((entry.path.clone(), e)),
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn e(path: &str, kind: EntryKind) -> FactoryEntry {
        FactoryEntry {
            path: path.into(),
            kind,
            mode: 0o644,
            uid: 0,
            gid: 0,
        }
    }

    fn paths<'a>(v: impl IntoIterator<Item = &'a Path>) -> Vec<String> {
        v.into_iter().map(|p| p.display().to_string()).collect()
    }

    #[test]
    fn plan_merges_and_never_overwrites() {
        let entries = vec![
            e("hostname", EntryKind::File),
            e("issue", EntryKind::File),
            e("ssh", EntryKind::Dir),
            e("ssh/sshd_config", EntryKind::File),
            e("ssh/moduli", EntryKind::File),
            e("systemd", EntryKind::Dir),
            e("systemd/system", EntryKind::Dir),
            e("systemd/system/x.service", EntryKind::File),
            e("linked", EntryKind::Dir),
            e("linked/inside", EntryKind::File),
            e(
                "os-release",
                EntryKind::Symlink {
                    target: "../usr/lib/os-release".into(),
                },
            ),
            e("initctl", EntryKind::Other),
        ];
        let on_disk: BTreeMap<&str, Existing> = [
            ("hostname", Existing::Other),
            ("ssh", Existing::Dir),
            ("ssh/sshd_config", Existing::Other),
            ("linked", Existing::Other), // a symlink to a directory: not followed
        ]
        .into();
        let plan = plan(&entries, |p| {
            *on_disk
                .get(p.to_str().unwrap())
                .unwrap_or(&Existing::Missing)
        });
        assert_eq!(
            paths(plan.create.iter().map(|e| e.path.as_path())),
            [
                "issue",
                "ssh/moduli",
                "systemd",
                "systemd/system",
                "systemd/system/x.service",
                "os-release"
            ]
        );
        assert_eq!(paths(plan.kept), ["hostname", "ssh/sshd_config", "linked"]);
        assert_eq!(paths(plan.skipped), ["initctl"]);
    }

    #[test]
    fn a_file_where_the_factory_has_a_dir_keeps_the_subtree_out() {
        let entries = vec![
            e("d", EntryKind::Dir),
            e("d/f", EntryKind::File),
            e("d2", EntryKind::File),
        ];
        let plan = plan(&entries, |p| {
            if p == Path::new("d") {
                Existing::Other
            } else {
                Existing::Missing
            }
        });
        assert_eq!(paths(plan.create.iter().map(|e| e.path.as_path())), ["d2"]);
    }

    #[test]
    fn populate_copies_what_is_missing() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("factory");
        let dst = t.path().join("etc");
        fs::create_dir_all(src.join("sub/deeper")).unwrap();
        fs::write(src.join("passwd"), "factory passwd\n").unwrap();
        fs::write(src.join("sub/deeper/tool"), "#!/bin/sh\n").unwrap();
        fs::set_permissions(
            src.join("sub/deeper/tool"),
            fs::Permissions::from_mode(0o4755),
        )
        .unwrap();
        fs::set_permissions(src.join("sub"), fs::Permissions::from_mode(0o750)).unwrap();
        symlink("../usr/lib/os-release", src.join("os-release")).unwrap();
        fs::write(src.join("hostname"), "factory\n").unwrap();

        fs::create_dir(&dst).unwrap();
        fs::write(dst.join("hostname"), "mine\n").unwrap();

        let report = populate(&src, &dst).unwrap();
        assert!(report.failed.is_empty(), "{:?}", report.failed);
        assert_eq!(
            paths(report.created.iter().map(|p| p.as_path())),
            [
                "os-release",
                "passwd",
                "sub",
                "sub/deeper",
                "sub/deeper/tool"
            ]
        );
        assert_eq!(report.kept, 1);
        assert_eq!(fs::read_to_string(dst.join("hostname")).unwrap(), "mine\n");
        assert_eq!(
            fs::read_to_string(dst.join("passwd")).unwrap(),
            "factory passwd\n"
        );
        assert_eq!(
            fs::read_link(dst.join("os-release")).unwrap(),
            Path::new("../usr/lib/os-release")
        );
        let mode = |p: &str| fs::symlink_metadata(dst.join(p)).unwrap().mode() & 0o7777;
        assert_eq!(mode("sub"), 0o750);
        assert_eq!(mode("sub/deeper/tool"), 0o4755);

        // A second run finds everything in place and changes nothing.
        fs::write(dst.join("passwd"), "edited\n").unwrap();
        let again = populate(&src, &dst).unwrap();
        assert!(again.created.is_empty());
        assert_eq!(fs::read_to_string(dst.join("passwd")).unwrap(), "edited\n");
    }

    #[test]
    fn populate_creates_etc_and_reports_a_missing_factory() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("factory");
        fs::create_dir(&src).unwrap();
        let dst = t.path().join("etc");
        let report = populate(&src, &dst).unwrap();
        assert!(report.created.is_empty());
        assert_eq!(fs::metadata(&dst).unwrap().mode() & 0o7777, 0o755);
        assert!(populate(&t.path().join("nope"), &dst).is_err());
    }
}
