//! Block devices as `/init` and the update engine see them in `/sys/class/block`, and matching
//! them against the `usr=`/`root=` arguments ([`contract::cmdline`]).
//!
//! Each `/sys/class/block/<name>/uevent` holds `KEY=value` lines (`DEVNAME`, `DEVTYPE`, `PARTN`,
//! `PARTNAME`, on some kernels `PARTUUID`); the `/sys/class/block/<name>` symlink points into the
//! device tree, where a partition's directory sits inside its disk's. The kernel's devtmpfs
//! creates `/dev/<DEVNAME>` for each.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use contract::cmdline::{DeviceSpec, RootSpec};

use crate::gpt::{self, GptPartition};

/// `DEVTYPE=` of a block device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DevType {
    Disk,
    Partition,
    Other(String),
}

/// One entry of `/sys/class/block`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockDevice {
    /// Name in `/sys/class/block`.
    pub name: String,
    /// `DEVNAME=`: the node is `/dev/<devname>`.
    pub devname: String,
    pub devtype: DevType,
    /// `PARTN=`: partition number on its disk.
    pub partn: Option<u32>,
    /// `PARTNAME=` (the GPT partition name), else filled from the GPT.
    pub partname: Option<String>,
    /// `PARTUUID=`, lower-case, from the uevent or filled from the GPT.
    pub partuuid: Option<String>,
    /// For a partition, the sysfs name of its disk.
    pub disk: Option<String>,
}

/// Parses uevent text into its `KEY=value` pairs (lines without `=` are ignored).
pub fn parse_uevent(text: &str) -> BTreeMap<&str, &str> {
    text.lines()
        .filter_map(|line| line.split_once('='))
        .collect()
}

/// The disk a partition belongs to, from the target of its `/sys/class/block/<name>` link
/// (`../../devices/pci0000:00/.../block/vda/vda3` → `vda`).
pub fn parent_disk(link: &str) -> Option<String> {
    let mut parts = link.trim_end_matches('/').rsplit('/');
    parts.next()?;
    parts
        .next()
        .filter(|p| !p.is_empty() && *p != "." && *p != "..")
        .map(str::to_string)
}

impl BlockDevice {
    /// Builds a device from its sysfs name, uevent text and (for partitions) link target.
    pub fn from_uevent(name: &str, uevent: &str, link: Option<&str>) -> Self {
        let kv = parse_uevent(uevent);
        let devtype = match kv.get("DEVTYPE").copied() {
            Some("disk") => DevType::Disk,
            Some("partition") => DevType::Partition,
            other => DevType::Other(other.unwrap_or("").to_string()),
        };
        let disk = match devtype {
            DevType::Partition => link.and_then(parent_disk),
            _ => None,
        };
        BlockDevice {
            name: name.to_string(),
            devname: kv.get("DEVNAME").unwrap_or(&name).to_string(),
            devtype,
            partn: kv.get("PARTN").and_then(|n| n.parse().ok()),
            partname: kv.get("PARTNAME").map(|s| s.to_string()),
            partuuid: kv.get("PARTUUID").map(|s| s.to_ascii_lowercase()),
            disk,
        }
    }

    /// `/dev/<devname>`.
    pub fn dev_path(&self) -> String {
        format!("/dev/{}", self.devname)
    }

    /// Fills `partuuid` (and a missing `partname`) from its disk's partition table.
    pub fn fill_from_gpt(&mut self, table: &[GptPartition]) {
        let Some(entry) = table.iter().find(|p| Some(p.number) == self.partn) else {
            return;
        };
        if self.partuuid.is_none() {
            self.partuuid = Some(entry.unique_guid.clone());
        }
        if self.partname.is_none() && !entry.name.is_empty() {
            self.partname = Some(entry.name.clone());
        }
    }

    /// One line for the console: `vda3 partition 3 of vda, PARTNAME=USR-A, PARTUUID=...`.
    pub fn describe(&self) -> String {
        let mut s = self.name.clone();
        match (&self.devtype, &self.disk) {
            (DevType::Disk, _) => s.push_str(" disk"),
            (DevType::Partition, Some(disk)) => {
                s.push_str(&format!(" partition {} of {disk}", self.partn.unwrap_or(0)))
            }
            (DevType::Partition, None) => s.push_str(" partition"),
            (DevType::Other(t), _) => s.push_str(&format!(" {t}")),
        }
        if let Some(n) = &self.partname {
            s.push_str(&format!(", PARTNAME={n}"));
        }
        if let Some(u) = &self.partuuid {
            s.push_str(&format!(", PARTUUID={u}"));
        }
        s
    }
}

/// Whether `dev` is the device `spec` names. PARTUUIDs compare case-insensitively, labels
/// exactly (GPT names are case-sensitive, as in udev's by-partlabel).
pub fn matches(spec: &DeviceSpec, dev: &BlockDevice) -> bool {
    match spec {
        DeviceSpec::PartUuid(u) => dev
            .partuuid
            .as_deref()
            .is_some_and(|p| p.eq_ignore_ascii_case(u)),
        DeviceSpec::PartLabel(l) => dev.partname.as_deref() == Some(l.as_str()),
        DeviceSpec::Path(p) => p.strip_prefix("/dev/") == Some(dev.devname.as_str()),
    }
}

/// A lookup result: the chosen device and how many matched (more than one deserves a warning).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Found<'a> {
    pub device: &'a BlockDevice,
    pub candidates: usize,
}

fn pick<'a>(mut hits: Vec<&'a BlockDevice>, prefer_disk: Option<&str>) -> Option<Found<'a>> {
    let candidates = hits.len();
    // Stable: devices come sorted by name, so the first on the preferred disk, else the first.
    hits.sort_by_key(|d| prefer_disk.is_none() || d.disk.as_deref() != prefer_disk);
    hits.first().map(|&device| Found { device, candidates })
}

/// The device `spec` names, preferring one on `prefer_disk` when several match.
pub fn find<'a>(
    devices: &'a [BlockDevice],
    spec: &DeviceSpec,
    prefer_disk: Option<&str>,
) -> Option<Found<'a>> {
    pick(
        devices.iter().filter(|d| matches(spec, d)).collect(),
        prefer_disk,
    )
}

/// The root device: `root=` if given (preferring usr's disk), else the partition with the
/// default label on usr's disk (on any disk if usr is a whole disk). A RAM root has none.
pub fn find_root<'a>(
    devices: &'a [BlockDevice],
    root: &RootSpec,
    usr: &BlockDevice,
) -> Option<Found<'a>> {
    match root {
        RootSpec::Device(spec) => find(devices, spec, usr.disk.as_deref()),
        RootSpec::LabelOnUsrDisk(label) => pick(
            devices
                .iter()
                .filter(|d| d.partname.as_deref() == Some(label.as_str()))
                .filter(|d| usr.disk.is_none() || d.disk == usr.disk)
                .collect(),
            None,
        ),
        RootSpec::Ram => None,
    }
}

/// Reads `/sys/class/block` (and disks' GPTs, for PARTUUIDs the uevent lacks).
#[derive(Debug)]
pub struct Probe {
    sys_block: PathBuf,
    dev: PathBuf,
    tables: BTreeMap<String, Vec<GptPartition>>,
    /// The last GPT read failure per disk, for the failure hint.
    pub gpt_errors: BTreeMap<String, String>,
}

impl Probe {
    /// A probe of `sys_block` (normally `/sys/class/block`) with nodes in `dev` (`/dev`).
    pub fn new(sys_block: impl Into<PathBuf>, dev: impl Into<PathBuf>) -> Self {
        Probe {
            sys_block: sys_block.into(),
            dev: dev.into(),
            tables: BTreeMap::new(),
            gpt_errors: BTreeMap::new(),
        }
    }

    /// All block devices, sorted by name. A device that vanishes mid-scan is skipped.
    pub fn scan(&mut self) -> io::Result<Vec<BlockDevice>> {
        let mut devices = Vec::new();
        for entry in fs::read_dir(&self.sys_block)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let Ok(uevent) = fs::read_to_string(entry.path().join("uevent")) else {
                continue;
            };
            let link = fs::read_link(entry.path()).ok();
            let link = link.as_deref().map(Path::to_string_lossy);
            devices.push(BlockDevice::from_uevent(&name, &uevent, link.as_deref()));
        }
        devices.sort_by(|a, b| a.name.cmp(&b.name));
        self.fill_partuuids(&mut devices);
        Ok(devices)
    }

    fn fill_partuuids(&mut self, devices: &mut [BlockDevice]) {
        let disks: Vec<String> = devices
            .iter()
            .filter(|d| d.partuuid.is_none())
            .filter_map(|d| d.disk.clone())
            .collect();
        for disk in disks {
            if self.tables.contains_key(&disk) {
                continue;
            }
            match self.read_gpt(&disk) {
                Ok(table) => {
                    self.gpt_errors.remove(&disk);
                    self.tables.insert(disk, table);
                }
                Err(e) => {
                    self.gpt_errors.insert(disk, e.to_string());
                }
            }
        }
        for dev in devices.iter_mut() {
            if let Some(table) = dev.disk.as_ref().and_then(|d| self.tables.get(d)) {
                dev.fill_from_gpt(table);
            }
        }
    }

    fn read_gpt(&self, disk: &str) -> Result<Vec<GptPartition>, gpt::GptError> {
        let sysfs = self.sys_block.join(disk);
        let uevent = fs::read_to_string(sysfs.join("uevent"))?;
        let dev = BlockDevice::from_uevent(disk, &uevent, None);
        let sector_size = fs::read_to_string(sysfs.join("queue/logical_block_size"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(512);
        let mut file = fs::File::open(self.dev.join(&dev.devname))?;
        gpt::read(&mut file, sector_size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpt::fixtures::{disk, guid_bytes};
    use std::os::unix::fs::symlink;

    const VDA3: &str =
        "MAJOR=254\nMINOR=3\nDEVNAME=vda3\nDEVTYPE=partition\nDISKSEQ=9\nPARTN=3\nPARTNAME=USR-A\n";
    const LINK3: &str = "../../devices/pci0000:00/0000:00:02.0/virtio2/block/vda/vda3";

    fn part(name: &str, disk: &str, n: u32, label: &str, uuid: Option<&str>) -> BlockDevice {
        BlockDevice {
            name: name.into(),
            devname: name.into(),
            devtype: DevType::Partition,
            partn: Some(n),
            partname: Some(label.into()),
            partuuid: uuid.map(str::to_string),
            disk: Some(disk.into()),
        }
    }

    #[test]
    fn uevent_of_a_partition() {
        let dev = BlockDevice::from_uevent("vda3", VDA3, Some(LINK3));
        assert_eq!(dev, part("vda3", "vda", 3, "USR-A", None));
        assert_eq!(dev.dev_path(), "/dev/vda3");
        assert_eq!(dev.describe(), "vda3 partition 3 of vda, PARTNAME=USR-A");
    }

    #[test]
    fn uevent_of_a_disk_and_patched_kernels() {
        let disk =
            BlockDevice::from_uevent("vda", "DEVNAME=vda\nDEVTYPE=disk\n", Some("x/block/vda"));
        assert_eq!(disk.devtype, DevType::Disk);
        assert_eq!(disk.disk, None);
        assert_eq!(disk.describe(), "vda disk");
        let p = BlockDevice::from_uevent(
            "nvme0n1p1",
            "DEVNAME=nvme0n1p1\nDEVTYPE=partition\nPARTN=1\nPARTUUID=AB-CD\n",
            Some("../../devices/x/nvme/nvme0/nvme0n1/nvme0n1p1"),
        );
        assert_eq!(p.partuuid.as_deref(), Some("ab-cd"));
        assert_eq!(p.disk.as_deref(), Some("nvme0n1"));
        assert_eq!(p.partname, None);
    }

    #[test]
    fn uevent_parsing_is_tolerant() {
        let kv = parse_uevent("A=1\nnoise\nB=x=y\n\n");
        assert_eq!(kv.get("A"), Some(&"1"));
        assert_eq!(kv.get("B"), Some(&"x=y"));
        assert_eq!(kv.len(), 2);
        let d = BlockDevice::from_uevent("loop0", "", None);
        assert_eq!(d.devname, "loop0");
        assert_eq!(d.devtype, DevType::Other(String::new()));
    }

    #[test]
    fn parent_disks() {
        assert_eq!(parent_disk(LINK3).as_deref(), Some("vda"));
        assert_eq!(parent_disk("vda3"), None);
        assert_eq!(parent_disk("../vda3").as_deref(), None);
    }

    #[test]
    fn gpt_fills_missing_fields_only() {
        let table = vec![GptPartition {
            number: 3,
            type_guid: "t".into(),
            unique_guid: "uuid-3".into(),
            name: "FROM-GPT".into(),
        }];
        let mut dev = BlockDevice::from_uevent("vda3", VDA3, Some(LINK3));
        dev.fill_from_gpt(&table);
        assert_eq!(dev.partuuid.as_deref(), Some("uuid-3"));
        assert_eq!(dev.partname.as_deref(), Some("USR-A"));
        let mut other = part("vda4", "vda", 4, "USR-B", None);
        other.fill_from_gpt(&table);
        assert_eq!(other.partuuid, None);
    }

    #[test]
    fn matching() {
        let dev = part(
            "vda3",
            "vda",
            3,
            "USR-A",
            Some("0a0b0c0d-0000-0000-0000-000000000003"),
        );
        let yes = [
            DeviceSpec::PartUuid("0A0B0C0D-0000-0000-0000-000000000003".into()),
            DeviceSpec::PartLabel("USR-A".into()),
            DeviceSpec::Path("/dev/vda3".into()),
        ];
        let no = [
            DeviceSpec::PartUuid("0a0b0c0d-0000-0000-0000-000000000004".into()),
            DeviceSpec::PartLabel("usr-a".into()),
            DeviceSpec::Path("/dev/vda".into()),
            DeviceSpec::Path("vda3".into()),
        ];
        for s in &yes {
            assert!(matches(s, &dev), "{s}");
        }
        for s in &no {
            assert!(!matches(s, &dev), "{s}");
        }
    }

    fn two_disks() -> Vec<BlockDevice> {
        vec![
            part("vda3", "vda", 3, "USR-A", None),
            part("vda9", "vda", 9, "ROOT", None),
            part("vdb3", "vdb", 3, "USR-A", None),
            part("vdb9", "vdb", 9, "ROOT", None),
        ]
    }

    #[test]
    fn find_prefers_the_given_disk() {
        let devs = two_disks();
        let spec = DeviceSpec::PartLabel("USR-A".into());
        let f = find(&devs, &spec, None).unwrap();
        assert_eq!((f.device.name.as_str(), f.candidates), ("vda3", 2));
        let f = find(&devs, &spec, Some("vdb")).unwrap();
        assert_eq!(f.device.name, "vdb3");
        assert!(find(&devs, &DeviceSpec::PartLabel("USR-B".into()), None).is_none());
    }

    #[test]
    fn default_root_is_on_the_usr_disk() {
        let devs = two_disks();
        let root = RootSpec::LabelOnUsrDisk("ROOT".into());
        let f = find_root(&devs, &root, &devs[2]).unwrap();
        assert_eq!((f.device.name.as_str(), f.candidates), ("vdb9", 1));
        // Not on another disk, even if one has it.
        let lone = vec![
            part("vda3", "vda", 3, "USR-A", None),
            part("vdb9", "vdb", 9, "ROOT", None),
        ];
        assert!(find_root(&lone, &root, &lone[0]).is_none());
        // An explicit root= may be anywhere, usr's disk first.
        let explicit = RootSpec::Device(DeviceSpec::PartLabel("ROOT".into()));
        assert_eq!(
            find_root(&lone, &explicit, &lone[0]).unwrap().device.name,
            "vdb9"
        );
        assert_eq!(
            find_root(&devs, &explicit, &devs[2]).unwrap().device.name,
            "vdb9"
        );
    }

    /// A fake `/sys/class/block` + `/dev` laid out as the kernel does: class entries are links
    /// into the device tree, partitions inside their disk's directory.
    #[test]
    fn probe_reads_sysfs_and_the_gpt() {
        let t = tempfile::tempdir().unwrap();
        let sys = t.path().join("sys");
        let class = sys.join("class/block");
        let vda = sys.join("devices/virtio1/block/vda");
        fs::create_dir_all(&class).unwrap();
        fs::create_dir_all(vda.join("queue")).unwrap();
        fs::write(
            vda.join("uevent"),
            "MAJOR=254\nMINOR=0\nDEVNAME=vda\nDEVTYPE=disk\n",
        )
        .unwrap();
        fs::write(vda.join("queue/logical_block_size"), "512\n").unwrap();
        symlink("../../devices/virtio1/block/vda", class.join("vda")).unwrap();
        for (n, label) in [(3, "USR-A"), (9, "ROOT")] {
            let dir = vda.join(format!("vda{n}"));
            fs::create_dir(&dir).unwrap();
            let uevent =
                format!("DEVNAME=vda{n}\nDEVTYPE=partition\nPARTN={n}\nPARTNAME={label}\n");
            fs::write(dir.join("uevent"), uevent).unwrap();
            symlink(
                format!("../../devices/virtio1/block/vda/vda{n}"),
                class.join(format!("vda{n}")),
            )
            .unwrap();
        }
        let dev = t.path().join("dev");
        fs::create_dir(&dev).unwrap();
        let mut probe = Probe::new(&class, &dev);

        // Before the node exists the GPT cannot be read: no PARTUUIDs yet, an error noted.
        let devs = probe.scan().unwrap();
        assert_eq!(
            devs.iter().map(|d| d.name.as_str()).collect::<Vec<_>>(),
            ["vda", "vda3", "vda9"]
        );
        assert_eq!(devs[1].partuuid, None);
        assert!(probe.gpt_errors.contains_key("vda"));

        let usr_type = guid_bytes(0x10);
        let image = disk(
            128,
            &[
                (2, usr_type, guid_bytes(0x30), "USR-A"),
                (8, usr_type, guid_bytes(0x90), "ROOT"),
            ],
        );
        fs::write(dev.join("vda"), image).unwrap();
        let devs = probe.scan().unwrap();
        assert!(probe.gpt_errors.is_empty());
        assert_eq!(devs[1].disk.as_deref(), Some("vda"));
        assert_eq!(
            devs[1].partuuid.as_deref(),
            Some("33323130-3534-3736-3839-3a3b3c3d3e3f")
        );
        let spec =
            DeviceSpec::PartUuid("33323130-3534-3736-3839-3A3B3C3D3E3F".to_ascii_lowercase());
        let usr = find(&devs, &spec, None).unwrap().device;
        assert_eq!(usr.dev_path(), "/dev/vda3");
        let root = find_root(&devs, &RootSpec::LabelOnUsrDisk("ROOT".into()), usr).unwrap();
        assert_eq!(
            root.device.partuuid.as_deref(),
            Some("93929190-9594-9796-9899-9a9b9c9d9e9f")
        );
    }
}
