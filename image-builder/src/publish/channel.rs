//! Publishing builds into a channel repository (the format is the `channels` crate's):
//! `keygen`, `init-repo`, `payload`, `publish`, `promote`.
//!
//! A build's payload is what a machine needs to switch slots: the USR image, the kernel, the
//! initramfs; what an installer needs: the whole disk, compressed (`disk.img.zst`,
//! [`disk_image`]); and `release.json` describing them. `publish` adds those files to the
//! content-addressed payload store and signs a manifest naming them; `promote` re-signs the
//! same payload hashes for another channel (no rebuild, same bytes).

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use channels::{Manifest, PublicKey, Release, Repo, SecretKey};

use super::disk_image;
use crate::disk::write::file_info;
use crate::report::{BuildReport, DISK};

pub use channels::release::{ReleaseInfo, DISK_IMAGE, PAYLOAD_FILES, RELEASE_JSON};
pub const PAYLOAD_DIR: &str = "payload";
pub const DAY_SECS: u64 = 24 * 3600;

/// `now` plus `days` days, in seconds; an expiry past what the arithmetic holds is refused
/// rather than wrapped around to a time in the past.
pub fn expiry(now: u64, days: u64) -> Result<u64> {
    days.checked_mul(DAY_SECS)
        .and_then(|secs| now.checked_add(secs))
        .ok_or_else(|| anyhow::anyhow!("an expiry {days} days from now is out of range"))
}

/// Generate a signing key into `out` (mode 0600, never overwriting). Returns its public key.
pub fn keygen(out: &Path) -> Result<PublicKey> {
    let key = SecretKey::generate().context("generating a key")?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(out)
        .with_context(|| {
            format!(
                "creating {} (an existing key is never overwritten)",
                out.display()
            )
        })?;
    f.write_all(key.to_file_text().as_bytes())?;
    f.sync_all()?;
    Ok(key.public())
}

pub fn load_key(path: &Path) -> Result<SecretKey> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading key {}", path.display()))?;
    SecretKey::from_file_text(&text).with_context(|| {
        format!(
            "{} is not a key made by `image-builder keygen`",
            path.display()
        )
    })
}

/// Create a repository whose keys.json (signed by `root`) trusts `signing` keys.
pub fn init_repo(repo: &Path, root: &Path, signing: &[PathBuf], now: u64, days: u64) -> Result<()> {
    std::fs::create_dir_all(repo).with_context(|| format!("creating {}", repo.display()))?;
    let root = load_key(root)?;
    let keys: Vec<PublicKey> = signing
        .iter()
        .map(|p| load_key(p).map(|k| k.public()))
        .collect::<Result<_>>()?;
    Repo::init(repo, &root, &keys, expiry(now, days)?)?;
    Ok(())
}

/// Write `BUILD_DIR/payload/` (the slot image, kernel, initramfs, the compressed disk image and
/// release.json) from a build. Returns the payload directory. Idempotent; the slot files are
/// hard links (or copies) of the build's, the disk image is compressed again only when the one
/// there is not of this build's disk.
pub fn payload(build_dir: &Path) -> Result<PathBuf> {
    let report = BuildReport::load(build_dir)?;
    let mut files = BTreeMap::new();
    for name in PAYLOAD_FILES {
        let info = report
            .artifacts
            .get(name)
            .with_context(|| format!("build.json lists no {name}"))?;
        let actual = file_info(&build_dir.join(name))?;
        if &actual != info {
            bail!(
                "{} does not match build.json (sha256 {}, build.json says {})",
                name,
                actual.sha256,
                info.sha256
            );
        }
        files.insert(name.to_string(), info.clone());
    }
    let usr_partition_size = report
        .layout
        .partitions
        .iter()
        .find(|p| p.label == crate::disk::layout::USR_A)
        .map(|p| p.size)
        .unwrap_or_default();
    let raw = report
        .artifacts
        .get(DISK)
        .with_context(|| format!("build.json lists no {DISK}"))?;
    let dir = build_dir.join(PAYLOAD_DIR);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let previous = previous_release(&dir).and_then(|r| r.disk);
    let disk = disk_image::write(&build_dir.join(DISK), raw, &dir, previous.as_ref())?;
    let info = ReleaseInfo {
        os_id: report.os.id.0.clone(),
        os_name: report.os.name.0.clone(),
        version: report.os.version.0.clone(),
        channel: report.os.channel.0.clone(),
        kernel_release: report.kernel_release.clone(),
        usr_partition_size,
        files,
        disk: Some(disk),
    };
    for name in PAYLOAD_FILES {
        let dst = dir.join(name);
        let _ = std::fs::remove_file(&dst);
        if std::fs::hard_link(build_dir.join(name), &dst).is_err() {
            std::fs::copy(build_dir.join(name), &dst).with_context(|| format!("copying {name}"))?;
        }
    }
    let mut text = serde_json::to_string_pretty(&info)?;
    text.push('\n');
    util::fs::write_atomic(&dir.join(RELEASE_JSON), text.as_bytes())
        .with_context(|| format!("writing {}", dir.join(RELEASE_JSON).display()))?;
    Ok(dir)
}

/// The release.json already in a payload directory, if there is one that reads.
fn previous_release(dir: &Path) -> Option<ReleaseInfo> {
    let text = std::fs::read_to_string(dir.join(RELEASE_JSON)).ok()?;
    serde_json::from_str(&text).ok()
}

/// Options of `publish`.
pub struct PublishOptions<'a> {
    pub repo: &'a Path,
    pub channel: &'a str,
    pub key: &'a Path,
    pub build_dir: &'a Path,
    pub now: u64,
    pub expires_days: u64,
    pub version_floor: Option<String>,
    pub force: bool,
}

/// Publish a build as the current release of a channel.
pub fn publish(o: &PublishOptions) -> Result<Manifest> {
    let key = load_key(o.key)?;
    let dir = payload(o.build_dir)?;
    let info: ReleaseInfo =
        serde_json::from_str(&std::fs::read_to_string(dir.join(RELEASE_JSON))?)?;
    let disk = info.disk.as_ref().with_context(|| {
        format!(
            "{} describes no disk image",
            dir.join(RELEASE_JSON).display()
        )
    })?;
    let mut payloads = BTreeMap::new();
    for name in PAYLOAD_FILES
        .iter()
        .copied()
        .chain([DISK_IMAGE, RELEASE_JSON])
    {
        let r = Repo::add_payload_file(o.repo, &dir.join(name))
            .with_context(|| format!("adding {name} to the repository"))?;
        payloads.insert(name.to_string(), r);
    }
    // payload() kept a disk image it found by its size alone: its bytes are checked here.
    let added = &payloads[DISK_IMAGE];
    if (added.size, added.sha256.as_str())
        != (disk.compressed.size, disk.compressed.sha256.as_str())
    {
        bail!(
            "{} is not the file release.json describes (sha256 {}, release.json says {}): remove {} and publish again",
            dir.join(DISK_IMAGE).display(),
            added.sha256,
            disk.compressed.sha256,
            dir.display()
        );
    }
    let release = Release {
        channel: o.channel.to_string(),
        version: info.version.clone(),
        release_time: o.now,
        expires: expiry(o.now, o.expires_days)?,
        version_floor: o.version_floor.clone(),
        payloads,
    };
    Ok(Repo::publish(o.repo, release, &key, o.now, o.force)?)
}

/// Make the current release of `from` (which must be `version`) the current release of `to`.
pub fn promote(
    repo: &Path,
    from: &str,
    to: &str,
    version: &str,
    key: &Path,
    now: u64,
) -> Result<Manifest> {
    let key = load_key(key)?;
    Ok(Repo::promote(repo, from, to, version, &key, now)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiries_never_wrap_around() {
        assert_eq!(expiry(1_000, 2).unwrap(), 1_000 + 2 * DAY_SECS);
        let err = expiry(1_767_225_600, u64::MAX / DAY_SECS).unwrap_err();
        assert!(err.to_string().contains("out of range"), "{err}");
        assert!(expiry(u64::MAX, 1).is_err());
    }
}
