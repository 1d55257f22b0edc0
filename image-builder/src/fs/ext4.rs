//! ext4 images (ROOT, OEM) through the host's `mke2fs -d`: no Rust crate writes ext4.
//!
//! Determinism (HOST.md): e2fsprogs ignores `SOURCE_DATE_EPOCH`, so the clock comes from
//! `E2FSPROGS_FAKE_TIME`, the UUID and the directory hash seed are given, and the root
//! directory's owner is fixed. The source directory is materialised from a [`Tree`] with
//! explicit modes, owners and mtimes, so the umask and the build user do not leak in.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use rootfs::tree::{Kind, Tree};
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum Ext4Error {
    #[error("materialising {path}: {source}")]
    Materialise {
        path: String,
        source: std::io::Error,
    },
    #[error("running mke2fs (package e2fsprogs): {0}")]
    Spawn(std::io::Error),
    #[error("mke2fs/debugfs failed for {label}: {stderr}")]
    Failed { label: String, stderr: String },
}

/// Write `tree` below the empty directory `dir` with exact modes, owners and mtimes.
pub fn materialise(tree: &Tree, dir: &Path) -> Result<(), Ext4Error> {
    for (path, e) in tree.iter() {
        let dst = dir.join(path);
        let err = |source| Ext4Error::Materialise {
            path: path.clone(),
            source,
        };
        match &e.kind {
            Kind::Dir => std::fs::create_dir(&dst).map_err(err)?,
            Kind::File(data) => std::fs::write(&dst, data.as_slice()).map_err(err)?,
            Kind::Symlink(target) => std::os::unix::fs::symlink(target, &dst).map_err(err)?,
            Kind::Hardlink(target) => std::fs::hard_link(dir.join(target), &dst).map_err(err)?,
        }
        if !matches!(e.kind, Kind::Symlink(_)) {
            std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(e.mode)).map_err(err)?;
        }
        std::os::unix::fs::lchown(&dst, Some(e.uid), Some(e.gid)).map_err(err)?;
    }
    // mtimes last, children before parents, so creating entries does not bump them.
    for (path, e) in tree.iter().collect::<Vec<_>>().into_iter().rev() {
        set_mtime(&dir.join(path), e.mtime).map_err(|source| Ext4Error::Materialise {
            path: path.clone(),
            source,
        })?;
    }
    set_mtime(dir, 0).map_err(|source| Ext4Error::Materialise {
        path: ".".into(),
        source,
    })
}

fn set_mtime(path: &Path, mtime: u64) -> std::io::Result<()> {
    let c = CString::new(path.as_os_str().as_bytes())?;
    let t = libc::timespec {
        tv_sec: mtime as libc::time_t,
        tv_nsec: 0,
    };
    let times = [t, t];
    // SAFETY: `c` is a valid NUL-terminated path and `times` has the two entries utimensat reads.
    let rc = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The `mke2fs` invocation for a reproducible ext4 image of `size` bytes at `out`.
pub fn mke2fs_command(
    src: Option<&Path>,
    out: &Path,
    size: u64,
    label: &str,
    uuid: &Uuid,
    epoch: u64,
) -> Command {
    let mut cmd = Command::new("mke2fs");
    cmd.env("E2FSPROGS_FAKE_TIME", epoch.to_string())
        .env("MKE2FS_DEVICE_SECTSIZE", "512")
        .args([
            "-q", "-F", "-t", "ext4", "-b", "4096", "-I", "256", "-m", "0", "-L", label,
        ])
        .arg("-U")
        .arg(uuid.to_string())
        .arg("-E")
        .arg(format!(
            "hash_seed={uuid},root_owner=0:0,lazy_itable_init=0,lazy_journal_init=0"
        ));
    if let Some(src) = src {
        cmd.arg("-d").arg(src);
    }
    cmd.arg(out).arg(format!("{}k", size / 1024));
    cmd
}

/// Make an ext4 image of `size` bytes at `out` holding `tree` (or empty).
pub fn make(
    tree: Option<&Tree>,
    out: &Path,
    size: u64,
    label: &str,
    uuid: &Uuid,
    epoch: u64,
) -> Result<(), Ext4Error> {
    let staging = tempfile::tempdir().map_err(Ext4Error::Spawn)?;
    let src = match tree {
        Some(t) => {
            let d = staging.path().join("src");
            std::fs::create_dir(&d).map_err(Ext4Error::Spawn)?;
            materialise(t, &d)?;
            Some(d)
        }
        None => None,
    };
    let _ = std::fs::remove_file(out);
    let output = mke2fs_command(src.as_deref(), out, size, label, uuid, epoch)
        .output()
        .map_err(Ext4Error::Spawn)?;
    if !output.status.success() {
        return Err(Ext4Error::Failed {
            label: label.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    if let Some(t) = tree {
        fix_ctimes(t, out, label, epoch, staging.path())?;
    }
    Ok(())
}

/// debugfs commands setting every inode's ctime to its mtime. `mke2fs -d` copies ctime from
/// the source files, where the kernel set it to the time they were materialised.
pub fn ctime_script(tree: &Tree) -> String {
    tree.iter()
        .map(|(path, e)| format!("sif \"/{path}\" ctime @{}\n", e.mtime))
        .collect()
}

fn fix_ctimes(
    tree: &Tree,
    img: &Path,
    label: &str,
    epoch: u64,
    scratch: &Path,
) -> Result<(), Ext4Error> {
    let script = scratch.join("ctimes.debugfs");
    std::fs::write(&script, ctime_script(tree)).map_err(Ext4Error::Spawn)?;
    let output = Command::new("debugfs")
        .env("E2FSPROGS_FAKE_TIME", epoch.to_string())
        .arg("-w")
        .arg("-f")
        .arg(&script)
        .arg(img)
        .output()
        .map_err(Ext4Error::Spawn)?;
    // debugfs exits 0 even when a command fails; it reports failures on stderr after the echo.
    let stderr = String::from_utf8_lossy(&output.stderr);
    let problems: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.starts_with("debugfs"))
        .collect();
    if !output.status.success() || !problems.is_empty() {
        return Err(Ext4Error::Failed {
            label: label.to_string(),
            stderr: problems.join("; "),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rootfs::tree::Entry;

    #[test]
    fn reproducible_and_clean() {
        let mut t = Tree::new();
        t.insert("bin", Entry::symlink("usr/bin").with_mtime(50))
            .unwrap();
        t.insert(
            "etc/hostname",
            Entry::file(b"x\n".to_vec(), 0o644).with_mtime(50),
        )
        .unwrap();
        t.insert("tmp", Entry::dir(0o1777).with_mtime(50)).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let uuid = Uuid::new_v5(&Uuid::NAMESPACE_DNS, b"root");
        let a = dir.path().join("a.img");
        let b = dir.path().join("b.img");
        make(Some(&t), &a, 8 << 20, "ROOT", &uuid, 1000).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1100));
        make(Some(&t), &b, 8 << 20, "ROOT", &uuid, 1000).unwrap();
        assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
        let out = Command::new("e2fsck")
            .args(["-fn"])
            .arg(&a)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        // ctime is the entry's mtime, not the time the source tree was written.
        let stat = Command::new("debugfs")
            .arg("-R")
            .arg("stat /etc/hostname")
            .arg(&a)
            .output()
            .unwrap();
        let stat = String::from_utf8_lossy(&stat.stdout);
        assert!(stat.contains("ctime: 0x00000032:00000000"), "{stat}");
        assert!(stat.contains("mtime: 0x00000032:00000000"), "{stat}");
    }

    #[test]
    fn mke2fs_failure_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let uuid = Uuid::nil();
        let err = make(None, &dir.path().join("x.img"), 4096, "ROOT", &uuid, 0).unwrap_err();
        assert!(err.to_string().contains("failed for ROOT"), "{err}");
    }
}
