//! The OpenStack config drive: a block device whose filesystem (iso9660 or vfat) is labelled
//! `config-2`, holding `openstack/latest/user_data` and `openstack/latest/meta_data.json`
//! (coreos-cloudinit's `configdrive` datasource; OpenStack's "Config drive" documentation).
//!
//! The device is `/dev/disk/by-label/config-2` when udev made that link, else the first device
//! of `/sys/class/block` (sorted by name) whose first 64 KiB [`probe_label`] reads as labelled
//! `config-2` (case-insensitively, as cloud-init compares). The label comes from the iso9660
//! primary volume descriptor or the FAT boot sector's extended BPB (blkid also looks at the FAT
//! root directory's volume entry; mkfs.vfat writes both). The drive is mounted read-only on
//! `/run/coreos-cloudinit/config-drive`, read, and unmounted.
//!
//! Metadata: `hostname`, and `public_keys` (name → key, taken in name order) for `core`.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use machine::blockdev::parse_uevent;

use super::{Context, Found, SourceError};
use crate::metadata::Metadata;

/// The filesystem label of a config drive.
pub const LABEL: &str = "config-2";
/// Bytes of a device [`probe_label`] needs: the iso9660 descriptors end before 64 KiB.
pub const PROBE_BYTES: usize = 64 * 1024;
/// Where the drive is mounted, under the root.
pub const MOUNT_DIR: &str = "run/coreos-cloudinit/config-drive";
pub const USER_DATA: &str = "openstack/latest/user_data";
pub const META_DATA: &str = "openstack/latest/meta_data.json";

/// A filesystem [`probe_label`] recognises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsKind {
    Iso9660,
    Vfat,
}

/// The type and label found at the start of a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsLabel {
    pub kind: FsKind,
    pub label: String,
}

const ISO_FIRST_DESCRIPTOR: usize = 0x8000; // after the 32 KiB system area
const ISO_SECTOR: usize = 0x800;
const ISO_VOLUME_ID: std::ops::Range<usize> = 0x28..0x48;

/// The filesystem type and label from the first bytes of a device (pure; give it at least
/// [`PROBE_BYTES`] when the device has them). `None`: neither iso9660 nor FAT, or no label.
pub fn probe_label(head: &[u8]) -> Option<FsLabel> {
    iso9660_label(head)
        .map(|label| (FsKind::Iso9660, label))
        .or_else(|| fat_label(head).map(|label| (FsKind::Vfat, label)))
        .map(|(kind, label)| FsLabel { kind, label })
        .filter(|l| !l.label.is_empty())
}

/// The volume identifier of the primary volume descriptor (type 1, `CD001`), which may follow
/// a boot record; the set ends with a terminator (type 255).
fn iso9660_label(head: &[u8]) -> Option<String> {
    let mut at = ISO_FIRST_DESCRIPTOR;
    while let Some(d) = head.get(at..at + ISO_SECTOR) {
        if &d[1..6] != b"CD001" {
            return None;
        }
        match d[0] {
            1 => return Some(trim_label(&d[ISO_VOLUME_ID])),
            255 => return None,
            _ => at += ISO_SECTOR,
        }
    }
    None
}

/// The volume label of a FAT boot sector's extended BPB: at 0x2B on FAT12/16, at 0x47 on FAT32
/// (16-bit sectors-per-FAT zero); `NO NAME` means none.
fn fat_label(head: &[u8]) -> Option<String> {
    let sector = head.get(..512)?;
    let bytes_per_sector = u16::from_le_bytes([sector[0x0b], sector[0x0c]]);
    if sector[0x1fe..] != [0x55, 0xaa]
        || !bytes_per_sector.is_power_of_two()
        || !(512..=4096).contains(&bytes_per_sector)
    {
        return None;
    }
    let fat32 = u16::from_le_bytes([sector[0x16], sector[0x17]]) == 0;
    let (signature, label, fs_type) = if fat32 {
        (0x42, 0x47..0x52, 0x52..0x5a)
    } else {
        (0x26, 0x2b..0x36, 0x36..0x3e)
    };
    if sector[signature] != 0x29 || !sector[fs_type].starts_with(b"FAT") {
        return None;
    }
    Some(trim_label(&sector[label])).filter(|l| l != "NO NAME")
}

fn trim_label(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    text.trim_end_matches([' ', '\0']).to_string()
}

/// The config drive's device node (a path under `root`), if any: udev's link resolved, so a
/// drive has one name whichever way it was found (the agent's record of what it applied this
/// boot goes by it).
pub fn find_device(root: &Path) -> Option<PathBuf> {
    for label in [LABEL, "CONFIG-2"] {
        let link = root.join("dev/disk/by-label").join(label);
        if link.exists() {
            return Some(fs::canonicalize(&link).unwrap_or(link));
        }
    }
    let mut names: Vec<String> = fs::read_dir(root.join("sys/class/block"))
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names.into_iter().find_map(|name| {
        let sysfs = root.join("sys/class/block").join(&name);
        let uevent = fs::read_to_string(sysfs.join("uevent")).unwrap_or_default();
        let devname = parse_uevent(&uevent)
            .get("DEVNAME")
            .map_or(name.clone(), |d| d.to_string());
        let node = root.join("dev").join(devname);
        let head = read_head(&node).ok()?;
        let found = probe_label(&head)?;
        found.label.eq_ignore_ascii_case(LABEL).then_some(node)
    })
}

fn read_head(path: &Path) -> io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(PROBE_BYTES);
    fs::File::open(path)?
        .take(PROBE_BYTES as u64)
        .read_to_end(&mut head)?;
    Ok(head)
}

/// Mounts, reads and unmounts the config drive, if there is one.
pub fn probe(ctx: &Context) -> Result<Option<Found>, SourceError> {
    let Some(device) = find_device(ctx.root) else {
        return Ok(None);
    };
    let dir = ctx.root.join(MOUNT_DIR);
    fs::create_dir_all(&dir).map_err(|e| SourceError::io(&dir, e))?;
    ctx.host.mount_read_only(&device, &dir)?;
    let read = read_mounted(&dir);
    let unmounted = ctx.host.unmount(&dir);
    let _ = fs::remove_dir(&dir);
    let (user_data, metadata) = read?;
    unmounted?;
    Ok(Some(Found {
        source: format!("config drive {}", device.display()),
        user_data,
        metadata,
    }))
}

/// User-data and metadata of a mounted config drive; either file may be missing.
pub fn read_mounted(dir: &Path) -> Result<(Vec<u8>, Metadata), SourceError> {
    let read = |rel: &str| {
        let path = dir.join(rel);
        match fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(SourceError::io(&path, e)),
        }
    };
    let user_data = read(USER_DATA)?.unwrap_or_default();
    let metadata = match read(META_DATA)? {
        Some(json) => parse_meta_data(&json)?,
        None => Metadata::default(),
    };
    Ok((user_data, metadata))
}

/// `meta_data.json`: `hostname` and `public_keys`; other keys are ignored.
pub fn parse_meta_data(json: &[u8]) -> Result<Metadata, SourceError> {
    use serde_json::Value as J;
    let bad = |reason: String| SourceError::Invalid {
        what: META_DATA.into(),
        reason,
    };
    let value: J = serde_json::from_slice(json).map_err(|e| bad(e.to_string()))?;
    let J::Object(top) = value else {
        return Err(bad("not a JSON object".into()));
    };
    let hostname = top
        .get("hostname")
        .and_then(J::as_str)
        .filter(|h| !h.is_empty())
        .map(str::to_string);
    let keys: BTreeMap<&String, &str> = match top.get("public_keys") {
        Some(J::Object(map)) => map
            .iter()
            .filter_map(|(k, v)| Some((k, v.as_str()?)))
            .collect(),
        _ => BTreeMap::new(),
    };
    Ok(Metadata {
        hostname,
        ssh_public_keys: keys.values().map(|k| k.trim().to_string()).collect(),
        ..Metadata::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An iso9660 head: system area, optionally a boot record, the PVD, a terminator.
    pub fn iso_head(label: &str, boot_record: bool) -> Vec<u8> {
        let mut head = vec![0u8; PROBE_BYTES];
        let mut at = ISO_FIRST_DESCRIPTOR;
        let mut descriptor = |head: &mut Vec<u8>, kind: u8| {
            head[at] = kind;
            head[at + 1..at + 6].copy_from_slice(b"CD001");
            head[at + 6] = 1;
            at += ISO_SECTOR;
            at - ISO_SECTOR
        };
        if boot_record {
            descriptor(&mut head, 0);
        }
        let pvd = descriptor(&mut head, 1);
        let id = &mut head[pvd + ISO_VOLUME_ID.start..pvd + ISO_VOLUME_ID.end];
        id.fill(b' ');
        id[..label.len()].copy_from_slice(label.as_bytes());
        descriptor(&mut head, 255);
        head
    }

    /// A FAT boot sector as mkfs.vfat writes it (only the fields the probe reads).
    pub fn fat_head(label: &str, fat32: bool) -> Vec<u8> {
        let mut head = vec![0u8; 4096];
        head[0x0b..0x0d].copy_from_slice(&512u16.to_le_bytes());
        head[0x1fe] = 0x55;
        head[0x1ff] = 0xaa;
        let (sig, lab, ty, name): (usize, usize, usize, &[u8]) = if fat32 {
            (0x42, 0x47, 0x52, b"FAT32   ")
        } else {
            head[0x16..0x18].copy_from_slice(&32u16.to_le_bytes());
            (0x26, 0x2b, 0x36, b"FAT16   ")
        };
        head[sig] = 0x29;
        head[lab..lab + 11].fill(b' ');
        head[lab..lab + label.len()].copy_from_slice(label.as_bytes());
        head[ty..ty + 8].copy_from_slice(name);
        head
    }

    #[test]
    fn labels_of_hand_made_headers() {
        struct Case {
            name: &'static str,
            head: Vec<u8>,
            want: Option<(FsKind, &'static str)>,
        }
        let cases = [
            Case {
                name: "iso9660",
                head: iso_head("config-2", false),
                want: Some((FsKind::Iso9660, "config-2")),
            },
            Case {
                name: "iso9660 after a boot record",
                head: iso_head("CONFIG-2", true),
                want: Some((FsKind::Iso9660, "CONFIG-2")),
            },
            Case {
                name: "fat16",
                head: fat_head("config-2", false),
                want: Some((FsKind::Vfat, "config-2")),
            },
            Case {
                name: "fat32",
                head: fat_head("CONFIG-2", true),
                want: Some((FsKind::Vfat, "CONFIG-2")),
            },
            Case {
                name: "fat without a label",
                head: fat_head("NO NAME", true),
                want: None,
            },
            Case {
                name: "iso cut short",
                head: iso_head("config-2", false)[..0x8010].to_vec(),
                want: None,
            },
            Case {
                name: "zeros",
                head: vec![0; PROBE_BYTES],
                want: None,
            },
            Case {
                name: "empty",
                head: Vec::new(),
                want: None,
            },
        ];
        for c in cases {
            let got = probe_label(&c.head);
            let got = got.as_ref().map(|l| (l.kind, l.label.as_str()));
            assert_eq!(got, c.want, "{}", c.name);
        }
        // A FAT boot sector without the extended BPB signature has no label field.
        let mut head = fat_head("config-2", false);
        head[0x26] = 0;
        assert_eq!(probe_label(&head), None);
    }

    #[test]
    fn the_device_is_found_by_scanning_sysfs() {
        let tmp = tempfile::TempDir::with_prefix("configdrive-scan").unwrap();
        let root = tmp.path();
        for (name, head) in [
            ("sda", fat_head("EFI-SYSTEM", true)),
            ("sr0", iso_head("config-2", false)),
            ("vdb", fat_head("config-2", false)),
        ] {
            fs::create_dir_all(root.join("sys/class/block").join(name)).unwrap();
            let uevent = format!("MAJOR=11\nDEVNAME={name}\nDEVTYPE=disk\n");
            fs::write(
                root.join("sys/class/block").join(name).join("uevent"),
                uevent,
            )
            .unwrap();
            fs::create_dir_all(root.join("dev")).unwrap();
            fs::write(root.join("dev").join(name), head).unwrap();
        }
        assert_eq!(find_device(root), Some(root.join("dev/sr0")));
        // udev's link: the drive by its own name, as the scan finds it.
        fs::create_dir_all(root.join("dev/disk/by-label")).unwrap();
        std::os::unix::fs::symlink("../../vdb", root.join("dev/disk/by-label/config-2")).unwrap();
        assert_eq!(
            find_device(root),
            Some(root.canonicalize().unwrap().join("dev/vdb"))
        );
    }

    #[test]
    fn meta_data_json() {
        let json = br#"{"uuid": "x", "hostname": "node1.novalocal",
            "public_keys": {"zeta": "ssh-ed25519 BBBB z\n", "alpha": "ssh-rsa AAAA a"},
            "network_config": {"content_path": "/content/0000"}}"#;
        let m = parse_meta_data(json).unwrap();
        assert_eq!(
            m,
            Metadata {
                hostname: Some("node1.novalocal".into()),
                ssh_public_keys: vec!["ssh-rsa AAAA a".into(), "ssh-ed25519 BBBB z".into()],
                ..Metadata::default()
            }
        );
        assert_eq!(parse_meta_data(b"{}").unwrap(), Metadata::default());
        let e = parse_meta_data(b"[1]").unwrap_err();
        assert_eq!(
            e.to_string(),
            "openstack/latest/meta_data.json: not a JSON object"
        );
        assert!(parse_meta_data(b"{").is_err());
    }
}
