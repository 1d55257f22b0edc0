//! Finding the disk and partition to grow: the file system mounted at `/` in
//! `/proc/self/mountinfo` (proc(5)) gives a device number; `/sys/dev/block/MAJ:MIN` leads to
//! the partition's sysfs directory, which sits inside its disk's (sysfs-block ABI: `partition`,
//! `start`, `size`, `dev`, `uevent`).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use machine::blockdev::parse_uevent;

/// One line of mountinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub dev: (u32, u32),
    pub mount_point: PathBuf,
    pub fstype: String,
    pub source: String,
}

/// Undoes mountinfo's octal escapes (`\040` for a space, `\011`, `\012`, `\134`).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match octal {
            Some(d) if b[i] == b'\\' => {
                let v = d.iter().fold(0u32, |v, c| v * 8 + u32::from(c - b'0'));
                out.push(v as u8);
                i += 4;
            }
            _ => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_line(line: &str) -> Option<Mount> {
    // id parent MAJ:MIN root mount-point options [optional...] - fstype source super-options
    let (left, right) = line.split_once(" - ")?;
    let left: Vec<&str> = left.split(' ').collect();
    let mut right = right.split(' ');
    let (maj, min) = left.get(2)?.split_once(':')?;
    Some(Mount {
        dev: (maj.parse().ok()?, min.parse().ok()?),
        mount_point: PathBuf::from(unescape(left.get(4)?)),
        fstype: right.next()?.to_string(),
        source: unescape(right.next()?),
    })
}

/// The mounts in `text`, in order (later lines are mounted on top). Odd lines are skipped.
pub fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines().filter_map(parse_line).collect()
}

/// The mount at `/` that is visible: the last one.
pub fn root_mount(mounts: &[Mount]) -> Option<&Mount> {
    mounts
        .iter()
        .rev()
        .find(|m| m.mount_point == Path::new("/"))
}

/// A mount of device `dev`, `/` preferred.
pub fn mount_of(mounts: &[Mount], dev: (u32, u32)) -> Option<&Mount> {
    let all = || mounts.iter().filter(|m| m.dev == dev);
    all()
        .find(|m| m.mount_point == Path::new("/"))
        .or_else(|| all().next())
}

/// A partition as the kernel has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    /// `vda9`.
    pub name: String,
    pub number: u32,
    pub dev: (u32, u32),
    /// `/dev/vda9`.
    pub node: PathBuf,
    /// The kernel's idea of its place, in 512-byte units (whatever the sector size).
    pub start: u64,
    pub size: u64,
    /// `/dev/vda`.
    pub disk_node: PathBuf,
}

impl Partition {
    pub fn start_bytes(&self) -> u64 {
        self.start * 512
    }

    pub fn size_bytes(&self) -> u64 {
        self.size * 512
    }
}

/// What holds a device, when it is not a partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Located {
    Partition(Partition),
    /// Why there is no partition to grow (a whole disk, a device-mapper device, ...).
    NotAPartition(String),
}

/// `/sys` and `/dev`, movable for tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sysfs {
    pub sys: PathBuf,
    pub dev: PathBuf,
}

impl Default for Sysfs {
    fn default() -> Self {
        Sysfs {
            sys: "/sys".into(),
            dev: "/dev".into(),
        }
    }
}

fn read_trimmed(path: &Path) -> io::Result<String> {
    Ok(fs::read_to_string(path)?.trim().to_string())
}

fn read_number<T: std::str::FromStr>(path: &Path) -> io::Result<T> {
    let text = read_trimmed(path)?;
    text.parse().map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: not a number: {text:?}", path.display()),
        )
    })
}

fn parse_dev(text: &str) -> Option<(u32, u32)> {
    let (maj, min) = text.trim().split_once(':')?;
    Some((maj.parse().ok()?, min.parse().ok()?))
}

impl Sysfs {
    fn block_dir(&self, dev: (u32, u32)) -> io::Result<PathBuf> {
        let link = self.sys.join(format!("dev/block/{}:{}", dev.0, dev.1));
        fs::canonicalize(&link).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("{}: {}", link.display(), machine::sys::errno_text(&e)),
            )
        })
    }

    /// `/dev/<DEVNAME>` of the sysfs directory `dir`.
    fn node(&self, dir: &Path) -> io::Result<PathBuf> {
        let uevent = fs::read_to_string(dir.join("uevent"))?;
        let kv = parse_uevent(&uevent);
        let name = kv
            .get("DEVNAME")
            .copied()
            .map(str::to_string)
            .or_else(|| dir.file_name().map(|n| n.to_string_lossy().into_owned()));
        Ok(self.dev.join(name.unwrap_or_default()))
    }

    fn partition_at(&self, dir: &Path) -> io::Result<Partition> {
        let disk = dir
            .parent()
            .ok_or_else(|| io::Error::other(format!("{}: no parent disk", dir.display())))?;
        Ok(Partition {
            name: dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            number: read_number(&dir.join("partition"))?,
            dev: parse_dev(&read_trimmed(&dir.join("dev"))?).ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidData, format!("{}/dev", dir.display()))
            })?,
            node: self.node(dir)?,
            start: read_number(&dir.join("start"))?,
            size: read_number(&dir.join("size"))?,
            disk_node: self.node(disk)?,
        })
    }

    /// The partition with device number `dev`, or why it is not one.
    pub fn by_dev(&self, dev: (u32, u32)) -> io::Result<Located> {
        let dir = self.block_dir(dev)?;
        if dir.join("partition").exists() {
            return self.partition_at(&dir).map(Located::Partition);
        }
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let kind = if dir.join("dm").exists() {
            "a device-mapper device"
        } else {
            "a whole disk"
        };
        Ok(Located::NotAPartition(format!("{name}, {kind}")))
    }

    /// Partition `number` of the disk with device number `disk`, if the kernel has it.
    pub fn partition_of(&self, disk: (u32, u32), number: u32) -> io::Result<Option<Partition>> {
        let dir = self.block_dir(disk)?;
        for entry in fs::read_dir(&dir)? {
            let path = entry?.path();
            let n: Option<u32> = read_number(&path.join("partition")).ok();
            if n == Some(number) {
                return self.partition_at(&path).map(Some);
            }
        }
        Ok(None)
    }
}

/// The major and minor numbers of a `dev_t`.
pub fn split_dev(dev: u64) -> (u32, u32) {
    (libc::major(dev), libc::minor(dev))
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    const MOUNTINFO: &str = "\
22 27 0:21 / /proc rw,relatime - proc proc rw
1 0 254:9 / / rw,relatime shared:1 - ext4 /dev/vda9 rw
25 1 254:3 / /usr ro,relatime shared:2 - squashfs /dev/vda3 ro
30 1 254:9 /home /home\\040dir rw master:4 - ext4 /dev/vda9 rw
garbage
31 1 0:40 / / rw - overlay over\\134lay rw
";

    #[test]
    fn mountinfo() {
        let mounts = parse_mountinfo(MOUNTINFO);
        assert_eq!(mounts.len(), 5);
        assert_eq!(
            mounts[1],
            Mount {
                dev: (254, 9),
                mount_point: "/".into(),
                fstype: "ext4".into(),
                source: "/dev/vda9".into(),
            }
        );
        assert_eq!(mounts[3].mount_point, Path::new("/home dir"));
        assert_eq!(mounts[4].source, "over\\lay");
        assert_eq!(root_mount(&mounts).unwrap().fstype, "overlay");
        assert_eq!(root_mount(&mounts[..4]).unwrap().dev, (254, 9));
        assert_eq!(
            mount_of(&mounts, (254, 9)).unwrap().mount_point,
            Path::new("/")
        );
        assert_eq!(
            mount_of(&mounts, (254, 3)).unwrap().mount_point,
            Path::new("/usr")
        );
        assert_eq!(mount_of(&mounts, (254, 1)), None);
        assert_eq!(unescape("a\\0b\\040"), "a\\0b ");
    }

    /// A sysfs tree: vda with partitions vda3 and vda9, and dm-0.
    pub(crate) fn fake_sysfs(root: &Path) -> Sysfs {
        let sys = root.join("sys");
        let vda = sys.join("devices/pci0000:00/virtio1/block/vda");
        for (name, n, start, size) in [("vda3", 3, 34816, 1048576), ("vda9", 9, 2131968, 2097152)] {
            let d = vda.join(name);
            fs::create_dir_all(&d).unwrap();
            fs::write(d.join("partition"), format!("{n}\n")).unwrap();
            fs::write(d.join("start"), format!("{start}\n")).unwrap();
            fs::write(d.join("size"), format!("{size}\n")).unwrap();
            fs::write(d.join("dev"), format!("254:{n}\n")).unwrap();
            fs::write(
                d.join("uevent"),
                format!("MAJOR=254\nMINOR={n}\nDEVNAME={name}\nDEVTYPE=partition\nPARTN={n}\n"),
            )
            .unwrap();
        }
        fs::write(
            vda.join("uevent"),
            "MAJOR=254\nMINOR=0\nDEVNAME=vda\nDEVTYPE=disk\n",
        )
        .unwrap();
        fs::write(vda.join("dev"), "254:0\n").unwrap();
        let dm = sys.join("devices/virtual/block/dm-0");
        fs::create_dir_all(dm.join("dm")).unwrap();
        fs::write(dm.join("uevent"), "DEVNAME=dm-0\n").unwrap();
        let links = sys.join("dev/block");
        fs::create_dir_all(&links).unwrap();
        symlink(
            "../../devices/pci0000:00/virtio1/block/vda",
            links.join("254:0"),
        )
        .unwrap();
        symlink(
            "../../devices/pci0000:00/virtio1/block/vda/vda3",
            links.join("254:3"),
        )
        .unwrap();
        symlink(
            "../../devices/pci0000:00/virtio1/block/vda/vda9",
            links.join("254:9"),
        )
        .unwrap();
        symlink("../../devices/virtual/block/dm-0", links.join("253:0")).unwrap();
        Sysfs {
            sys,
            dev: root.join("dev"),
        }
    }

    #[test]
    fn partitions_from_sysfs() {
        let tmp = tempfile::tempdir().unwrap();
        let sysfs = fake_sysfs(tmp.path());
        let want = Partition {
            name: "vda9".into(),
            number: 9,
            dev: (254, 9),
            node: tmp.path().join("dev/vda9"),
            start: 2131968,
            size: 2097152,
            disk_node: tmp.path().join("dev/vda"),
        };
        assert_eq!(
            sysfs.by_dev((254, 9)).unwrap(),
            Located::Partition(want.clone())
        );
        assert_eq!(sysfs.partition_of((254, 0), 9).unwrap(), Some(want));
        assert_eq!(sysfs.partition_of((254, 0), 4).unwrap(), None);
        assert_eq!(
            sysfs.by_dev((254, 0)).unwrap(),
            Located::NotAPartition("vda, a whole disk".into())
        );
        assert_eq!(
            sysfs.by_dev((253, 0)).unwrap(),
            Located::NotAPartition("dm-0, a device-mapper device".into())
        );
        let e = sysfs.by_dev((8, 1)).unwrap_err().to_string();
        assert!(
            e.ends_with("dev/block/8:1: No such file or directory"),
            "{e}"
        );
    }

    #[test]
    fn this_machines_root_resolves() {
        let Ok(text) = fs::read_to_string("/proc/self/mountinfo") else {
            return;
        };
        let mounts = parse_mountinfo(&text);
        let root = root_mount(&mounts).expect("a / mount");
        if root.dev.0 != 0 {
            // Whatever it is, it resolves without error.
            Sysfs::default().by_dev(root.dev).unwrap();
        }
    }
}
