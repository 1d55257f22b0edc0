//! Which disk `coreos-install` may write: the disks in `/sys/block`, the mounts in
//! `/proc/self/mountinfo`, all under an injectable root (tests use a fake tree in a tempdir).
//!
//! A disk is refused when it holds the running system (the device of the mounted `/` or
//! `/usr`), when any of its partitions (or itself) is mounted or held by another device
//! (device mapper, RAID: `holders/`), when it is read-only, or when it is smaller than the raw
//! image (`--force` leaves the size to the writer, which allows it only on a blank disk).
//! `-s` picks the smallest disk that passes, among all but `loop`, `ram`, `zram`, `sr`, `fd`
//! and `nbd` devices (ties: by name).

use std::fs;
use std::path::{Path, PathBuf};

/// Device names `-s` never picks.
pub const IGNORED_PREFIXES: [&str; 7] = ["loop", "ram", "zram", "sr", "fd", "nbd", "dm-"];

/// One whole disk of `/sys/block`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disk {
    /// `sda`.
    pub name: String,
    /// Bytes (`size` is in 512-byte sectors whatever the logical sector size).
    pub size: u64,
    /// `removable`.
    pub removable: bool,
    /// `ro`.
    pub read_only: bool,
    /// `major:minor` of the disk.
    pub dev: String,
    /// Its partitions: name and `major:minor`.
    pub partitions: Vec<(String, String)>,
    /// Names of devices holding it or one of its partitions (`holders/`).
    pub holders: Vec<String>,
}

impl Disk {
    /// `/dev/<name>`.
    pub fn path(&self) -> PathBuf {
        Path::new("/dev").join(&self.name)
    }
}

/// A mount of `/proc/self/mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// `major:minor` of the mounted device.
    pub dev: String,
    /// Where.
    pub mount_point: String,
}

/// Why a disk may not be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiskError {
    /// Not a disk of `/sys/block`.
    #[error("{0} is not a whole disk in /sys/block{1}")]
    NotADisk(String, &'static str),
    /// It holds `/` or `/usr`.
    #[error("refused: {disk} holds the running system ({mount_point} is mounted from it)")]
    RunningSystem {
        /// The disk.
        disk: String,
        /// `/` or `/usr`.
        mount_point: String,
    },
    /// Something on it is mounted.
    #[error("refused: {disk} is in use: {part} is mounted on {mount_point}")]
    Mounted {
        /// The disk.
        disk: String,
        /// The mounted partition (or the disk).
        part: String,
        /// Where.
        mount_point: String,
    },
    /// Another device sits on it.
    #[error("refused: {disk} is in use: held by {holder}")]
    Held {
        /// The disk.
        disk: String,
        /// The holder (`dm-0`, `md127`).
        holder: String,
    },
    /// Read-only.
    #[error("refused: {0} is read-only")]
    ReadOnly(String),
    /// Too small.
    #[error("refused: {disk} has {have} bytes, the image needs {need} (--force allows a smaller blank disk)")]
    TooSmall {
        /// The disk.
        disk: String,
        /// Its size.
        have: u64,
        /// The raw image's size.
        need: u64,
    },
    /// `-s` found nothing.
    #[error("no disk to install to: {0}")]
    NoneFree(String),
    /// sysfs or mountinfo could not be read.
    #[error("{0}")]
    Read(String),
}

fn read_trim(path: &Path) -> Option<String> {
    fs::read_to_string(path).ok().map(|s| s.trim().to_owned())
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The disk `name` of `<root>/sys/block`.
pub fn read_disk(root: &Path, name: &str) -> Option<Disk> {
    let dir = root.join("sys/block").join(name);
    let dev = read_trim(&dir.join("dev"))?;
    let sectors: u64 = read_trim(&dir.join("size"))?.parse().ok()?;
    let flag = |f: &str| read_trim(&dir.join(f)).is_some_and(|v| v == "1");
    let mut partitions = Vec::new();
    let mut holders = names(&dir.join("holders"));
    for entry in names(&dir) {
        let sub = dir.join(&entry);
        if !sub.join("partition").is_file() {
            continue;
        }
        if let Some(d) = read_trim(&sub.join("dev")) {
            partitions.push((entry.clone(), d));
        }
        holders.extend(names(&sub.join("holders")));
    }
    Some(Disk {
        name: name.to_owned(),
        size: sectors.saturating_mul(512),
        removable: flag("removable"),
        read_only: flag("ro"),
        dev,
        partitions,
        holders,
    })
}

/// Every disk of `<root>/sys/block`, by name.
pub fn scan(root: &Path) -> Result<Vec<Disk>, DiskError> {
    let dir = root.join("sys/block");
    if !dir.is_dir() {
        return Err(DiskError::Read(format!("{} is missing", dir.display())));
    }
    Ok(names(&dir)
        .iter()
        .filter_map(|n| read_disk(root, n))
        .collect())
}

/// Parses mountinfo text (`36 35 98:0 /mnt1 /mnt2 rw … - ext3 /dev/root rw`); octal escapes
/// in mount points (`\040`) are decoded.
pub fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split(' ').collect();
            Some(Mount {
                dev: (*f.get(2)?).to_owned(),
                mount_point: unescape(f.get(4)?),
            })
        })
        .collect()
}

fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(u8::is_ascii_digit) {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 4], 8) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `<root>/proc/self/mountinfo`.
pub fn read_mounts(root: &Path) -> Result<Vec<Mount>, DiskError> {
    let path = root.join("proc/self/mountinfo");
    fs::read_to_string(&path)
        .map(|t| parse_mountinfo(&t))
        .map_err(|e| DiskError::Read(format!("reading {}: {e}", path.display())))
}

/// Refuses `disk` if it may not be written (module docs); `need`: the raw image's size, not
/// checked with `force`.
pub fn check(disk: &Disk, mounts: &[Mount], need: u64, force: bool) -> Result<(), DiskError> {
    let devices: Vec<(&str, &str)> = std::iter::once((disk.name.as_str(), disk.dev.as_str()))
        .chain(
            disk.partitions
                .iter()
                .map(|(n, d)| (n.as_str(), d.as_str())),
        )
        .collect();
    let on_disk = |m: &&Mount| devices.iter().find(|(_, d)| *d == m.dev);
    for system in ["/", "/usr"] {
        if mounts
            .iter()
            .filter(|m| m.mount_point == system)
            .any(|m| on_disk(&m).is_some())
        {
            return Err(DiskError::RunningSystem {
                disk: disk.name.clone(),
                mount_point: system.to_owned(),
            });
        }
    }
    if let Some((m, (part, _))) = mounts.iter().find_map(|m| on_disk(&m).map(|d| (m, d))) {
        return Err(DiskError::Mounted {
            disk: disk.name.clone(),
            part: (*part).to_owned(),
            mount_point: m.mount_point.clone(),
        });
    }
    if let Some(holder) = disk.holders.first() {
        return Err(DiskError::Held {
            disk: disk.name.clone(),
            holder: holder.clone(),
        });
    }
    if disk.read_only {
        return Err(DiskError::ReadOnly(disk.name.clone()));
    }
    if !force && disk.size < need {
        return Err(DiskError::TooSmall {
            disk: disk.name.clone(),
            have: disk.size,
            need,
        });
    }
    Ok(())
}

/// `-s`: the smallest disk that passes [`check`] (sizes included), ignoring
/// [`IGNORED_PREFIXES`] and empty devices.
pub fn pick_smallest(disks: &[Disk], mounts: &[Mount], need: u64) -> Result<Disk, DiskError> {
    let mut why = Vec::new();
    let mut ok: Vec<&Disk> = Vec::new();
    for d in disks {
        if IGNORED_PREFIXES.iter().any(|p| d.name.starts_with(p)) || d.size == 0 {
            continue;
        }
        match check(d, mounts, need, false) {
            Ok(()) => ok.push(d),
            Err(e) => why.push(e.to_string().trim_start_matches("refused: ").to_owned()),
        }
    }
    ok.sort_by(|a, b| a.size.cmp(&b.size).then(a.name.cmp(&b.name)));
    ok.first().map(|d| (*d).clone()).ok_or_else(|| {
        DiskError::NoneFree(if why.is_empty() {
            "no disks besides loop, RAM, optical and network devices".into()
        } else {
            why.join("; ")
        })
    })
}

/// The disk name of a `-d` argument: `/dev/sda`, a `/dev/disk/by-*/…` link (resolved under
/// `root`), or a bare `sda`. `None` for a path that is not under `/dev`.
pub fn disk_name(root: &Path, arg: &Path) -> Option<String> {
    if arg.components().count() == 1 {
        return arg.to_str().map(str::to_owned);
    }
    let rooted = root.join(arg.strip_prefix("/").unwrap_or(arg));
    let real = fs::canonicalize(&rooted).unwrap_or(rooted);
    let rel = real.strip_prefix(root).ok()?;
    let rest = rel.strip_prefix("dev").ok()?;
    let name = rest.to_str()?;
    (!name.contains('/')).then(|| name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake root: disks (name, sectors, removable, ro, partitions), mountinfo.
    pub(crate) fn fake_root(
        disks: &[(&str, u64, bool, bool, &[&str])],
        mountinfo: &str,
    ) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let w = |rel: String, text: String| {
            let p = dir.path().join(rel);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, text).unwrap();
        };
        for (major, (name, sectors, removable, ro, parts)) in (8u32..).zip(disks) {
            let base = format!("sys/block/{name}");
            w(format!("{base}/dev"), format!("{major}:0\n"));
            w(format!("{base}/size"), format!("{sectors}\n"));
            w(
                format!("{base}/removable"),
                format!("{}\n", u8::from(*removable)),
            );
            w(format!("{base}/ro"), format!("{}\n", u8::from(*ro)));
            fs::create_dir_all(dir.path().join(format!("{base}/holders"))).unwrap();
            for (minor, p) in (1u32..).zip(parts.iter()) {
                w(format!("{base}/{p}/dev"), format!("{major}:{minor}\n"));
                w(format!("{base}/{p}/partition"), format!("{minor}\n"));
            }
            fs::create_dir_all(dir.path().join(format!("{base}/queue"))).unwrap();
        }
        w("proc/self/mountinfo".into(), mountinfo.into());
        dir
    }

    const GIB: u64 = 1 << 30;
    const SECTORS_PER_GIB: u64 = GIB / 512;

    /// sda (8:x) runs the system; sdb (9:x) 20 GiB has a mounted partition; sdc (10:x) 8 GiB
    /// free; sdd (11:x) 4 GiB free; sde (12:x) 2 GiB too small; sr0, loop0; sdf read-only.
    fn machine() -> tempfile::TempDir {
        let mountinfo = "\
22 1 8:3 / / rw,relatime shared:1 - ext4 /dev/sda9 rw
23 22 8:2 / /usr ro,relatime shared:2 - squashfs /dev/sda3 ro
24 22 0:21 / /proc rw shared:3 - proc proc rw
40 22 9:1 / /mnt/my\\040data rw shared:9 - ext4 /dev/sdb1 rw
41 22 13:0 / /media/cd ro shared:10 - iso9660 /dev/sr0 ro
";
        fake_root(
            &[
                (
                    "sda",
                    10 * SECTORS_PER_GIB,
                    false,
                    false,
                    &["sda1", "sda3", "sda9"],
                ),
                ("sdb", 20 * SECTORS_PER_GIB, false, false, &["sdb1"]),
                ("sdc", 8 * SECTORS_PER_GIB, false, false, &["sdc1"]),
                ("sdd", 4 * SECTORS_PER_GIB, true, false, &[]),
                ("sde", 2 * SECTORS_PER_GIB, false, false, &[]),
                ("sr0", SECTORS_PER_GIB, true, false, &[]),
                ("loop0", 3 * SECTORS_PER_GIB, false, false, &[]),
                ("sdf", 3 * SECTORS_PER_GIB, false, true, &[]),
            ],
            mountinfo,
        )
    }

    fn get(root: &Path, name: &str) -> Disk {
        read_disk(root, name).unwrap()
    }

    #[test]
    fn reads_sysfs_and_mountinfo() {
        let m = machine();
        let sda = get(m.path(), "sda");
        assert_eq!(sda.size, 10 * GIB);
        assert_eq!(sda.dev, "8:0");
        assert_eq!(sda.partitions[2], ("sda9".into(), "8:3".into()));
        assert!(get(m.path(), "sdd").removable && get(m.path(), "sdf").read_only);
        let mounts = read_mounts(m.path()).unwrap();
        assert_eq!(mounts[3].mount_point, "/mnt/my data");
        assert_eq!(mounts[1].dev, "8:2");
        assert_eq!(scan(m.path()).unwrap().len(), 8);
        assert!(read_disk(m.path(), "sdz").is_none());
    }

    #[test]
    fn refusals() {
        let m = machine();
        let mounts = read_mounts(m.path()).unwrap();
        let check_of = |name, need, force| check(&get(m.path(), name), &mounts, need, force);
        let e = check_of("sda", GIB, false).unwrap_err();
        assert!(
            matches!(&e, DiskError::RunningSystem { mount_point, .. } if mount_point == "/"),
            "{e}"
        );
        let e = check_of("sdb", GIB, true).unwrap_err();
        assert_eq!(
            e.to_string(),
            "refused: sdb is in use: sdb1 is mounted on /mnt/my data"
        );
        assert!(matches!(
            check_of("sr0", 1, false),
            Err(DiskError::Mounted { .. })
        ));
        assert_eq!(
            check_of("sdf", 1, false),
            Err(DiskError::ReadOnly("sdf".into()))
        );
        let e = check_of("sde", 3 * GIB, false).unwrap_err();
        assert!(
            e.to_string()
                .contains("has 2147483648 bytes, the image needs 3221225472"),
            "{e}"
        );
        // --force leaves the size to the writer (blank disks only), nothing else.
        assert_eq!(check_of("sde", 3 * GIB, true), Ok(()));
        assert!(check_of("sda", 3 * GIB, true).is_err());
        assert_eq!(check_of("sdc", 3 * GIB, false), Ok(()));
        // A device-mapper holder.
        fs::create_dir_all(m.path().join("sys/block/sdc/sdc1/holders/dm-0")).unwrap();
        assert_eq!(
            check_of("sdc", GIB, false),
            Err(DiskError::Held {
                disk: "sdc".into(),
                holder: "dm-0".into()
            })
        );
    }

    #[test]
    fn the_running_system_by_usr_alone() {
        // A RAM root (live boot) with /usr from a disk's partition: still refused.
        let m = fake_root(
            &[("vda", 8 * SECTORS_PER_GIB, false, false, &["vda3"])],
            "1 0 0:2 / / rw - tmpfs tmpfs rw\n2 1 8:1 / /usr ro - squashfs /dev/vda3 ro\n",
        );
        let mounts = read_mounts(m.path()).unwrap();
        let e = check(&get(m.path(), "vda"), &mounts, 1, false).unwrap_err();
        assert!(
            matches!(&e, DiskError::RunningSystem { mount_point, .. } if mount_point == "/usr"),
            "{e}"
        );
    }

    #[test]
    fn smallest_free_disk() {
        let m = machine();
        let disks = scan(m.path()).unwrap();
        let mounts = read_mounts(m.path()).unwrap();
        // sde (2 GiB) for a 1 GiB image; loop0 and the read-only sdf are never picked.
        assert_eq!(pick_smallest(&disks, &mounts, GIB).unwrap().name, "sde");
        // sdd (4 GiB, removable but not in use) for a 3 GiB image.
        assert_eq!(pick_smallest(&disks, &mounts, 3 * GIB).unwrap().name, "sdd");
        assert_eq!(pick_smallest(&disks, &mounts, 5 * GIB).unwrap().name, "sdc");
        let e = pick_smallest(&disks, &mounts, 9 * GIB).unwrap_err();
        let text = e.to_string();
        assert!(
            text.starts_with("no disk to install to: sda holds the running system"),
            "{text}"
        );
        assert!(
            text.contains("sdb is in use") && text.contains("sdf is read-only"),
            "{text}"
        );
        assert!(!text.contains("loop0"), "{text}");
    }

    #[test]
    fn names_of_disks() {
        let m = machine();
        let root = m.path();
        fs::create_dir_all(root.join("dev/disk/by-id")).unwrap();
        fs::write(root.join("dev/sdc"), b"").unwrap();
        std::os::unix::fs::symlink("../../sdc", root.join("dev/disk/by-id/ata-X")).unwrap();
        assert_eq!(
            disk_name(root, Path::new("/dev/sdc")).as_deref(),
            Some("sdc")
        );
        assert_eq!(
            disk_name(root, Path::new("/dev/disk/by-id/ata-X")).as_deref(),
            Some("sdc")
        );
        assert_eq!(disk_name(root, Path::new("sdc")).as_deref(), Some("sdc"));
        assert_eq!(disk_name(root, Path::new("/tmp/disk.img")), None);
    }
}
