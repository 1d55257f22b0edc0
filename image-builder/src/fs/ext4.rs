//! ext4 images (ROOT, OEM) through the host's `mke2fs -d`: no Rust crate writes ext4.
//!
//! Determinism (HOST.md): e2fsprogs ignores `SOURCE_DATE_EPOCH`, so the clock comes from
//! `E2FSPROGS_FAKE_TIME`, the UUID and the directory hash seed are given, and the root
//! directory's owner is fixed. The source directory is materialised from a [`Tree`] with
//! explicit mtimes; then `debugfs` sets every inode's mode, owner, group and ctime to the
//! tree's inside the image ([`inode_script`]). So neither the umask nor the build user leaks
//! in, and an unprivileged user builds the same bytes as root: nothing is ever `chown`ed on the
//! host.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use rootfs::tree::{Kind, Tree};
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum Ext4Error {
    #[error("materialising the image's source tree: {op} {path}: {source}")]
    Materialise {
        /// What was being done (`creating the directory`, `writing`, ...).
        op: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error("running mke2fs (package e2fsprogs): {0}")]
    Spawn(std::io::Error),
    #[error("mke2fs/debugfs failed for {label}: {stderr}")]
    Failed { label: String, stderr: String },
}

/// Write `tree` below the empty directory `dir` with exact mtimes. Modes on the host are the
/// owner's alone (directories 0700, files 0600), enough for the builder to fill and `mke2fs`
/// to read them whatever the tree says; [`inode_script`] gives the image the tree's modes and
/// owners.
pub fn materialise(tree: &Tree, dir: &Path) -> Result<(), Ext4Error> {
    for (path, e) in tree.iter() {
        let dst = dir.join(path);
        let err = |op: &'static str| {
            let path = path.clone();
            move |source| Ext4Error::Materialise { op, path, source }
        };
        match &e.kind {
            Kind::Dir => {
                std::fs::create_dir(&dst).map_err(err("creating the directory"))?;
                std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(0o700))
                    .map_err(err("setting the mode of"))?;
            }
            Kind::File(data) => {
                std::fs::write(&dst, data.as_slice()).map_err(err("writing"))?;
                std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(0o600))
                    .map_err(err("setting the mode of"))?;
            }
            Kind::Symlink(target) => {
                std::os::unix::fs::symlink(target, &dst).map_err(err("making the symlink"))?
            }
            Kind::Hardlink(target) => {
                std::fs::hard_link(dir.join(target), &dst).map_err(err("making the hard link"))?
            }
        }
    }
    // mtimes last, children before parents, so creating entries does not bump them.
    for (path, e) in tree.iter().collect::<Vec<_>>().into_iter().rev() {
        set_mtime(&dir.join(path), e.mtime).map_err(|source| Ext4Error::Materialise {
            op: "setting the mtime of",
            path: path.clone(),
            source,
        })?;
    }
    set_mtime(dir, 0).map_err(|source| Ext4Error::Materialise {
        op: "setting the mtime of",
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
        set_inodes(t, out, label, epoch, staging.path())?;
    }
    Ok(())
}

/// debugfs commands giving every inode of `tree` the tree's mode, owner, group and a ctime
/// equal to its mtime. `mke2fs -d` copies these from the source files, where the builder could
/// only set what an unprivileged user may (and the kernel set ctime to the time they were
/// written). Hard links share their target's inode; a symlink's mode is always 0777. Pure.
pub fn inode_script(tree: &Tree) -> String {
    let mut script = String::new();
    for (path, e) in tree.iter() {
        let file_type = match e.kind {
            Kind::Dir => Some(libc::S_IFDIR),
            Kind::File(_) => Some(libc::S_IFREG),
            Kind::Symlink(_) => None,
            Kind::Hardlink(_) => continue,
        };
        if let Some(t) = file_type {
            script.push_str(&format!("sif \"/{path}\" mode 0{:o}\n", t | e.mode));
        }
        script.push_str(&format!("sif \"/{path}\" uid {}\n", e.uid));
        script.push_str(&format!("sif \"/{path}\" gid {}\n", e.gid));
        script.push_str(&format!("sif \"/{path}\" ctime @{}\n", e.mtime));
    }
    script
}

fn set_inodes(
    tree: &Tree,
    img: &Path,
    label: &str,
    epoch: u64,
    scratch: &Path,
) -> Result<(), Ext4Error> {
    let script = scratch.join("inodes.debugfs");
    std::fs::write(&script, inode_script(tree)).map_err(Ext4Error::Spawn)?;
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

    /// Modes and owners in the image are the tree's, not what the builder could set on the
    /// host: a read-only directory with children, an unreadable file, set-id bits, another
    /// user's files.
    #[test]
    fn modes_and_owners_come_from_the_tree() {
        let mut t = Tree::new();
        let mut owned = |path: &str, e: Entry, uid: u32, gid: u32| {
            let mut e = e.with_mtime(50);
            (e.uid, e.gid) = (uid, gid);
            t.insert(path, e).unwrap();
        };
        owned("ro", Entry::dir(0o555), 0, 0);
        owned("ro/secret", Entry::file(b"s".to_vec(), 0o000), 1000, 1000);
        owned("ro/su", Entry::file(b"#!".to_vec(), 0o4755), 0, 0);
        owned("shared", Entry::dir(0o2775), 1000, 50);
        owned("link", Entry::symlink("ro/su"), 1000, 1000);
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("x.img");
        make(Some(&t), &img, 8 << 20, "OEM", &Uuid::nil(), 1000).unwrap();
        let stat = |path: &str| {
            let o = Command::new("debugfs")
                .arg("-R")
                .arg(format!("stat {path}"))
                .arg(&img)
                .output()
                .unwrap();
            String::from_utf8_lossy(&o.stdout).into_owned()
        };
        for (path, want) in [
            ("/ro", "Mode:  0555"),
            ("/ro/secret", "Mode:  0000"),
            ("/ro/su", "Mode:  04755"),
            ("/shared", "Mode:  02775"),
        ] {
            let s = stat(path);
            assert!(s.contains(want), "{path}: want {want}:\n{s}");
        }
        assert!(stat("/ro/secret").contains("User:  1000   Group:  1000"));
        assert!(stat("/shared").contains("User:  1000   Group:    50"));
        assert!(stat("/link").contains("User:  1000   Group:  1000"));
        assert!(stat("/ro/su").contains("User:     0   Group:     0"));
        assert!(inode_script(&t).contains("sif \"/ro/su\" mode 0104755\n"));
    }

    #[test]
    fn mke2fs_failure_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let uuid = Uuid::nil();
        let err = make(None, &dir.path().join("x.img"), 4096, "ROOT", &uuid, 0).unwrap_err();
        assert!(err.to_string().contains("failed for ROOT"), "{err}");
    }
}
