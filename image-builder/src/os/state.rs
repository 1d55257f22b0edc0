//! The initial content of the writable partitions: ROOT (merged-/usr links, empty state
//! directories, `/etc/os-release`, `/etc/lsb-release`) and the Vagrant boxes' OEM partition. `fs::ext4` writes
//! them; owners and modes are the tree's, whoever builds.

use anyhow::Result;
use rootfs::tree::{Entry, Tree};

/// The ROOT filesystem's initial tree: merged-/usr links and empty state directories.
pub fn root(epoch: u64) -> Result<Tree> {
    let mut t = Tree::new();
    for (link, target) in [
        ("bin", "usr/bin"),
        ("sbin", "usr/sbin"),
        ("lib", "usr/lib"),
        ("lib64", "usr/lib64"),
    ] {
        t.insert(link, Entry::symlink(target).with_mtime(epoch))?;
    }
    for (dir, mode) in [
        ("boot", 0o755),
        ("dev", 0o755),
        ("etc", 0o755),
        ("home", 0o755),
        ("media", 0o755),
        ("mnt", 0o755),
        ("proc", 0o555),
        ("root", 0o700),
        ("run", 0o755),
        ("sys", 0o555),
        ("tmp", 0o1777),
        ("usr", 0o755),
        ("var", 0o755),
    ] {
        t.insert(dir, Entry::dir(mode).with_mtime(epoch))?;
    }
    t.insert(
        "etc/os-release",
        Entry::symlink("../usr/lib/os-release").with_mtime(epoch),
    )?;
    t.insert(
        "etc/lsb-release",
        Entry::symlink(format!("../{}", contract::paths::LSB_RELEASE)).with_mtime(epoch),
    )?;
    Ok(t)
}

/// The Vagrant boxes' OEM partition: `cloud-config.yml` (Vagrant's login key for core, the
/// watch for Vagrant's user-data file), applied on every boot by `oem-cloudinit.service`.
pub fn vagrant_oem(epoch: u64) -> Result<Tree> {
    let mut t = Tree::new();
    t.insert(
        contract::paths::OEM_CLOUD_CONFIG,
        Entry::file(vagrant::boxes::OEM_CLOUD_CONFIG.as_bytes().to_vec(), 0o644).with_mtime(epoch),
    )?;
    Ok(t)
}
