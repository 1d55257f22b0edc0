//! Seed drives: a block device found by its filesystem label, mounted read-only, read and
//! unmounted. What the OpenStack config drive (`config-2`, [`super::configdrive`]) and
//! cloud-init's NoCloud seed (`cidata`, [`super::nocloud`]) share.
//!
//! The device is udev's `/dev/disk/by-label/<label>` when it made that link (any case; udev
//! writes a blank and other unsafe bytes as `\xNN`, so vSphere's `OVF ENV` is `OVF\x20ENV`
//! there), else the first device of `/sys/class/block` (sorted by name) whose first 64 KiB [`probe_label`] reads
//! as labelled so, compared case-insensitively as cloud-init compares. The label comes from the
//! iso9660 primary volume descriptor or the FAT boot sector's extended BPB (blkid also looks at
//! the FAT root directory's volume entry; mkfs.vfat writes both).

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use machine::blockdev::parse_uevent;

use super::{Context, SourceError};

/// Bytes of a device [`probe_label`] needs: the iso9660 descriptors end before 64 KiB.
pub const PROBE_BYTES: usize = 64 * 1024;

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

/// The device node (a path under `root`) of the filesystem labelled `label` (any case), if any:
/// udev's link resolved, so a drive has one name whichever way it was found (the agent's record
/// of what it applied this boot goes by it).
pub fn find_device(root: &Path, label: &str) -> Option<PathBuf> {
    by_label_link(root, label).or_else(|| scan_sysfs(root, label))
}

/// `/dev/disk/by-label/<label>` in any case (udev names the link as blkid read the label,
/// [`udev_unescape`]d here), the first by name when several exist; a dangling link does not
/// count.
fn by_label_link(root: &Path, label: &str) -> Option<PathBuf> {
    let dir = root.join("dev/disk/by-label");
    let mut links: Vec<PathBuf> = fs::read_dir(&dir)
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| udev_unescape(&e.file_name().to_string_lossy()).eq_ignore_ascii_case(label))
        .map(|e| e.path())
        .filter(|link| link.exists())
        .collect();
    links.sort();
    let link = links.into_iter().next()?;
    Some(fs::canonicalize(&link).unwrap_or(link))
}

/// A name of `/dev/disk/by-label` as the label it stands for: udev (`ID_FS_LABEL_ENC`, blkid's
/// `blkid_encode_string`) writes each byte that is not safe in a file name, a blank or a `\`
/// included, as `\xNN`; anything else is kept as written.
pub fn udev_unescape(name: &str) -> String {
    let mut bytes = Vec::with_capacity(name.len());
    let raw = name.as_bytes();
    let mut i = 0;
    while i < raw.len() {
        let hex = raw
            .get(i..i + 4)
            .filter(|e| {
                e.starts_with(b"\\x") && e[2].is_ascii_hexdigit() && e[3].is_ascii_hexdigit()
            })
            .and_then(|e| std::str::from_utf8(&e[2..]).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match hex {
            Some(b) => {
                bytes.push(b);
                i += 4;
            }
            None => {
                bytes.push(raw[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The first block device, by name, whose head [`probe_label`] reads as labelled `label`.
fn scan_sysfs(root: &Path, label: &str) -> Option<PathBuf> {
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
        found.label.eq_ignore_ascii_case(label).then_some(node)
    })
}

fn read_head(path: &Path) -> io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(PROBE_BYTES);
    fs::File::open(path)?
        .take(PROBE_BYTES as u64)
        .read_to_end(&mut head)?;
    Ok(head)
}

/// Mounts `device` read-only on `mount_dir` (under the root), gives the mounted tree to `read`,
/// then unmounts it and removes the mount point whatever `read` said; `read`'s error is the one
/// reported when both fail.
pub fn read_mounted<T>(
    ctx: &Context,
    device: &Path,
    mount_dir: &str,
    read: impl FnOnce(&Path) -> Result<T, SourceError>,
) -> Result<T, SourceError> {
    let dir = ctx.root.join(mount_dir);
    fs::create_dir_all(&dir).map_err(|e| SourceError::io(&dir, e))?;
    ctx.host.mount_read_only(device, &dir)?;
    let read = read(&dir);
    let unmounted = ctx.host.unmount(&dir);
    let _ = fs::remove_dir(&dir);
    let value = read?;
    unmounted?;
    Ok(value)
}

/// The file `rel` of a mounted drive; `None` when it is missing.
pub fn read_file(dir: &Path, rel: &str) -> Result<Option<Vec<u8>>, SourceError> {
    let path = dir.join(rel);
    match fs::read(&path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(SourceError::io(&path, e)),
    }
}

/// Hand-made device heads, for this module's tests and the sources'.
#[cfg(test)]
pub mod heads {
    use super::*;

    /// An iso9660 head: system area, optionally a boot record, the PVD, a terminator.
    pub fn iso(label: &str, boot_record: bool) -> Vec<u8> {
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
    pub fn fat(label: &str, fat32: bool) -> Vec<u8> {
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

    /// Block devices under `root`: a sysfs entry (`uevent` with `DEVNAME`) and a device node
    /// holding `head`, for each.
    pub fn block_devices(root: &Path, devices: &[(&str, Vec<u8>)]) {
        for (name, head) in devices {
            let sysfs = root.join("sys/class/block").join(name);
            fs::create_dir_all(&sysfs).unwrap();
            let uevent = format!("MAJOR=11\nDEVNAME={name}\nDEVTYPE=disk\n");
            fs::write(sysfs.join("uevent"), uevent).unwrap();
            fs::create_dir_all(root.join("dev")).unwrap();
            fs::write(root.join("dev").join(name), head).unwrap();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::heads::{block_devices, fat, iso};
    use super::*;

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
                head: iso("config-2", false),
                want: Some((FsKind::Iso9660, "config-2")),
            },
            Case {
                name: "iso9660 after a boot record",
                head: iso("CONFIG-2", true),
                want: Some((FsKind::Iso9660, "CONFIG-2")),
            },
            Case {
                name: "iso9660 NoCloud seed (genisoimage -V cidata)",
                head: iso("cidata", false),
                want: Some((FsKind::Iso9660, "cidata")),
            },
            Case {
                name: "fat16",
                head: fat("config-2", false),
                want: Some((FsKind::Vfat, "config-2")),
            },
            Case {
                name: "fat32",
                head: fat("CONFIG-2", true),
                want: Some((FsKind::Vfat, "CONFIG-2")),
            },
            Case {
                name: "fat NoCloud seed (mkfs.vfat -n CIDATA)",
                head: fat("CIDATA", false),
                want: Some((FsKind::Vfat, "CIDATA")),
            },
            Case {
                name: "fat without a label",
                head: fat("NO NAME", true),
                want: None,
            },
            Case {
                name: "iso cut short",
                head: iso("config-2", false)[..0x8010].to_vec(),
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
        let mut head = fat("config-2", false);
        head[0x26] = 0;
        assert_eq!(probe_label(&head), None);
    }

    #[test]
    fn each_label_finds_its_device_by_scanning_sysfs() {
        let tmp = tempfile::TempDir::with_prefix("drive-scan").unwrap();
        let root = tmp.path();
        block_devices(
            root,
            &[
                ("sda", fat("EFI-SYSTEM", true)),
                ("sr0", iso("config-2", false)),
                ("sr1", iso("CIDATA", false)),
                ("vdb", fat("config-2", false)),
                ("vdc", fat("cidata", false)),
            ],
        );
        assert_eq!(find_device(root, "config-2"), Some(root.join("dev/sr0")));
        assert_eq!(find_device(root, "cidata"), Some(root.join("dev/sr1")));
        assert_eq!(find_device(root, "CIDATA"), Some(root.join("dev/sr1")));
        assert_eq!(find_device(root, "EFI"), None);
    }

    #[test]
    fn udev_links_are_resolved_in_any_case() {
        let tmp = tempfile::TempDir::with_prefix("drive-links").unwrap();
        let root = tmp.path();
        block_devices(
            root,
            &[
                ("sr0", iso("config-2", false)),
                ("vdb", fat("config-2", false)),
                ("vdc", fat("CIDATA", false)),
            ],
        );
        let by_label = root.join("dev/disk/by-label");
        fs::create_dir_all(&by_label).unwrap();
        // udev's link: the drive by its own name, as the scan finds it.
        std::os::unix::fs::symlink("../../vdb", by_label.join("config-2")).unwrap();
        std::os::unix::fs::symlink("../../vdc", by_label.join("CIDATA")).unwrap();
        // A link left behind by a drive that is gone does not count.
        std::os::unix::fs::symlink("../../sr9", by_label.join("cidata")).unwrap();
        let dev = root.canonicalize().unwrap().join("dev");
        assert_eq!(find_device(root, "config-2"), Some(dev.join("vdb")));
        assert_eq!(find_device(root, "cidata"), Some(dev.join("vdc")));
        fs::remove_file(by_label.join("CIDATA")).unwrap();
        assert_eq!(
            find_device(root, "cidata"),
            Some(root.join("dev/vdc")),
            "no live link: the scan finds it"
        );
    }

    /// vSphere's OVF environment ISO: a label with a blank, which udev escapes in its link.
    #[test]
    fn a_label_with_a_blank_is_found_by_its_escaped_link_and_by_the_scan() {
        let tmp = tempfile::TempDir::with_prefix("drive-blank").unwrap();
        let root = tmp.path();
        block_devices(
            root,
            &[
                ("sr0", iso("OVF ENV", false)),
                ("sr1", iso("OVF ENV", true)),
            ],
        );
        assert_eq!(
            probe_label(&iso("OVF ENV", false)).map(|l| l.label),
            Some("OVF ENV".to_string())
        );
        assert_eq!(find_device(root, "ovf env"), Some(root.join("dev/sr0")));
        assert_eq!(find_device(root, "OVF_ENV"), None);
        let by_label = root.join("dev/disk/by-label");
        fs::create_dir_all(&by_label).unwrap();
        std::os::unix::fs::symlink("../../sr1", by_label.join("OVF\\x20ENV")).unwrap();
        let dev = root.canonicalize().unwrap().join("dev");
        assert_eq!(find_device(root, "OVF ENV"), Some(dev.join("sr1")));
    }

    #[test]
    fn udev_escapes() {
        for (name, want) in [
            ("OVF\\x20ENV", "OVF ENV"),
            ("config-2", "config-2"),
            ("a\\x5cx20b", "a\\x20b"),
            ("\\xZZ\\x2", "\\xZZ\\x2"),
            ("\\x+f", "\\x+f"),
            ("caf\\xc3\\xa9", "caf\u{e9}"),
        ] {
            assert_eq!(udev_unescape(name), want, "{name}");
        }
    }

    #[test]
    fn a_drive_is_unmounted_even_when_reading_it_fails() {
        use crate::host::fake::FakeHost;
        let tmp = tempfile::TempDir::with_prefix("drive-mount").unwrap();
        let content = tempfile::TempDir::with_prefix("drive-mount-content").unwrap();
        fs::write(content.path().join("f"), "x").unwrap();
        let host = FakeHost {
            drive: Some(content.path().to_path_buf()),
            ..FakeHost::default()
        };
        let ctx = Context::new(tmp.path(), &host);
        let dev = Path::new("/dev/sr0");
        let got = read_mounted(&ctx, dev, "run/m", |dir| read_file(dir, "f")).unwrap();
        assert_eq!(got, Some(b"x".to_vec()));
        let got = read_mounted(&ctx, dev, "run/m", |dir| read_file(dir, "missing")).unwrap();
        assert_eq!(got, None);
        let e = read_mounted(&ctx, dev, "run/m", |dir| -> Result<(), _> {
            Err(SourceError::Invalid {
                what: dir.display().to_string(),
                reason: "bad".into(),
            })
        })
        .unwrap_err();
        let mnt = tmp.path().join("run/m");
        assert_eq!(e.to_string(), format!("{}: bad", mnt.display()));
        let mount = format!("mount /dev/sr0 {}", mnt.display());
        let unmount = format!("unmount {}", mnt.display());
        assert_eq!(
            host.calls(),
            [&*mount, &*unmount, &*mount, &*unmount, &*mount, &*unmount]
        );
        assert!(!mnt.exists(), "the mount point is removed");
    }
}
