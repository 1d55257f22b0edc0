//! After the image: the installed system's ROOT (partition 9, ext4) gets the cloud-config, the
//! OEM id and the network units. [`customize`] writes into a directory (tested on a tempdir);
//! [`customize_disk`] finds ROOT in the GPT just written, asks the kernel to re-read the table
//! (`BLKRRPART`), and mounts, customizes, unmounts: the only part that needs a machine.

use std::fs;
use std::io;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use contract::partitions;
use contract::paths::{INSTALL_OEM, INSTALL_USER_DATA};
use machine::gpt::GptPartition;

/// The live system's network units, copied with `-n`.
pub const NETWORK_DIR: &str = "etc/systemd/network";

/// What goes onto the installed ROOT.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Customization {
    /// `-c`: the cloud-config's bytes.
    pub user_data: Option<Vec<u8>>,
    /// `-o`.
    pub oem: Option<String>,
    /// `-n`: (file name, bytes, mode).
    pub network_units: Vec<(String, Vec<u8>, u32)>,
}

impl Customization {
    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.user_data.is_none() && self.oem.is_none() && self.network_units.is_empty()
    }
}

/// The regular files of `dir` (a missing directory has none), by name.
pub fn network_units(dir: &Path) -> Result<Vec<(String, Vec<u8>, u32)>> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
    };
    let mut units = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
        let path = entry.path();
        let meta = fs::metadata(&path).with_context(|| format!("reading {}", path.display()))?;
        if !meta.is_file() {
            continue;
        }
        let bytes = fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        units.push((name, bytes, meta.permissions().mode() & 0o7777));
    }
    units.sort();
    Ok(units)
}

fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let dir = path.parent().expect("a file in a directory");
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let _ = fs::remove_file(path);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    io::Write::write_all(&mut f, bytes).with_context(|| format!("writing {}", path.display()))?;
    f.set_permissions(fs::Permissions::from_mode(mode))
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}

/// Writes `c` into the installed ROOT mounted at `root`.
pub fn customize(root: &Path, c: &Customization) -> Result<()> {
    if let Some(data) = &c.user_data {
        write_file(&root.join(INSTALL_USER_DATA), data, 0o600)?;
    }
    if let Some(oem) = &c.oem {
        write_file(
            &root.join(INSTALL_OEM),
            format!("{oem}\n").as_bytes(),
            0o644,
        )?;
    }
    for (name, bytes, mode) in &c.network_units {
        write_file(&root.join(NETWORK_DIR).join(name), bytes, *mode)?;
    }
    Ok(())
}

/// ROOT in a partition table: number 9, named ROOT, of the CoreOS root type.
pub fn find_root(table: &[GptPartition]) -> Result<&GptPartition> {
    let want = partitions::STANDARD
        .iter()
        .find(|p| p.label == partitions::ROOT)
        .expect("the standard layout has ROOT");
    let part = table
        .iter()
        .find(|p| p.number == want.number)
        .ok_or_else(|| anyhow!("the written disk has no partition {}", want.number))?;
    if part.name != want.label || part.type_guid != want.type_guid {
        bail!(
            "partition {} of the written disk is {:?} of type {}, not {} of type {}",
            want.number,
            part.name,
            part.type_guid,
            want.label,
            want.type_guid
        );
    }
    Ok(part)
}

/// The node of partition `number` of disk `name` in sysfs under `root` (`sda9`, `nvme0n1p9`).
pub fn partition_node(root: &Path, disk: &str, number: u32) -> Option<PathBuf> {
    let dir = root.join("sys/block").join(disk);
    for entry in fs::read_dir(&dir).ok()?.flatten() {
        let n = fs::read_to_string(entry.path().join("partition")).ok();
        if n.and_then(|n| n.trim().parse::<u32>().ok()) == Some(number) {
            return Some(Path::new("/dev").join(entry.file_name()));
        }
    }
    None
}

/// Step 6 on a block device: ROOT from the GPT just written, the kernel told, mounted on a
/// temporary directory, [`customize`]d, unmounted.
pub fn customize_disk(device: &Path, name: &str, c: &Customization) -> Result<()> {
    let mut disk =
        fs::File::open(device).with_context(|| format!("opening {}", device.display()))?;
    let table = machine::gpt::read(&mut disk, 512)
        .or_else(|_| machine::gpt::read(&mut disk, 4096))
        .map_err(|e| anyhow!("reading the partition table just written: {e}"))?;
    let root_part = find_root(&table)?.clone();
    drop(disk);
    reread_disk(device)?;
    // udev may take a moment to make the node.
    let mut node = None;
    for _ in 0..50 {
        node = partition_node(Path::new("/"), name, root_part.number).filter(|n| n.exists());
        if node.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let node = node.ok_or_else(|| {
        anyhow!(
            "the kernel shows no partition {} on {} after re-reading its table",
            root_part.number,
            device.display()
        )
    })?;
    let dir = tempfile::Builder::new()
        .prefix("coreos-install-root")
        .tempdir()
        .context("creating a mount point")?;
    let mnt = dir.path().to_str().ok_or_else(|| anyhow!("odd temp dir"))?;
    let node_s = node.to_string_lossy();
    machine::sys::mount(&node_s, mnt, Some("ext4"), 0, None)
        .with_context(|| format!("mounting {node_s} (ROOT, ext4)"))?;
    let result = customize(dir.path(), c);
    machine::sys::sync();
    let unmounted = machine::sys::umount(mnt).with_context(|| format!("unmounting {mnt}"));
    machine::sys::sync();
    result?;
    unmounted
}

/// `BLKRRPART` on `device`, retried while the disk is busy (udev probing it).
pub fn reread_disk(device: &Path) -> Result<()> {
    let disk = fs::File::open(device).with_context(|| format!("opening {}", device.display()))?;
    let mut last = None;
    for _ in 0..20 {
        match machine::sys::reread_partitions(&disk) {
            Ok(()) => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                last = Some(e);
                std::thread::sleep(Duration::from_millis(250));
            }
            Err(e) => {
                return Err(e).context(format!("re-reading {}'s partitions", device.display()))
            }
        }
    }
    Err(last.expect("tried"))
        .with_context(|| format!("re-reading {}'s partitions (busy)", device.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn customizes_a_root_tree() {
        let live = tempfile::tempdir().unwrap();
        let net = live.path().join(NETWORK_DIR);
        fs::create_dir_all(&net).unwrap();
        fs::write(net.join("10-eth.network"), "[Match]\nName=eth0\n").unwrap();
        fs::create_dir(net.join("subdir")).unwrap();
        let units = network_units(&net).unwrap();
        assert_eq!(units.len(), 1);
        assert!(network_units(&live.path().join("nothing"))
            .unwrap()
            .is_empty());
        let c = Customization {
            user_data: Some(b"#cloud-config\nhostname: a\n".to_vec()),
            oem: Some("qemu".into()),
            network_units: units,
        };
        let target = tempfile::tempdir().unwrap();
        customize(target.path(), &c).unwrap();
        let ud = target.path().join(INSTALL_USER_DATA);
        assert_eq!(fs::read(&ud).unwrap(), b"#cloud-config\nhostname: a\n");
        assert_eq!(
            fs::metadata(&ud).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            fs::read_to_string(target.path().join(INSTALL_OEM)).unwrap(),
            "qemu\n"
        );
        assert_eq!(
            fs::read_to_string(target.path().join(NETWORK_DIR).join("10-eth.network")).unwrap(),
            "[Match]\nName=eth0\n"
        );
        // Again: replaced, not appended.
        customize(target.path(), &c).unwrap();
        assert_eq!(fs::read(&ud).unwrap().len(), 26);
    }

    fn part(number: u32, name: &str, ty: &str) -> GptPartition {
        GptPartition {
            number,
            type_guid: ty.into(),
            unique_guid: "u".into(),
            name: name.into(),
        }
    }

    #[test]
    fn finds_root_by_number_label_and_type() {
        let good = [
            part(3, "USR-A", partitions::types::COREOS_USR),
            part(9, "ROOT", partitions::types::COREOS_ROOT),
        ];
        assert_eq!(find_root(&good).unwrap().number, 9);
        assert!(find_root(&good[..1]).is_err());
        let wrong = [part(9, "DATA", partitions::types::LINUX_DATA)];
        assert!(find_root(&wrong)
            .unwrap_err()
            .to_string()
            .contains("not ROOT"));
    }

    #[test]
    fn partition_nodes_from_sysfs() {
        let root = tempfile::tempdir().unwrap();
        for (d, p, n) in [
            ("sda", "sda9", 9),
            ("sda", "sda1", 1),
            ("nvme0n1", "nvme0n1p9", 9),
        ] {
            let dir = root.path().join("sys/block").join(d).join(p);
            fs::create_dir_all(&dir).unwrap();
            fs::write(dir.join("partition"), format!("{n}\n")).unwrap();
        }
        assert_eq!(
            partition_node(root.path(), "sda", 9),
            Some("/dev/sda9".into())
        );
        assert_eq!(
            partition_node(root.path(), "nvme0n1", 9),
            Some("/dev/nvme0n1p9".into())
        );
        assert_eq!(partition_node(root.path(), "sda", 4), None);
    }
}
