//! Coldplug: load the initramfs's drivers for the devices this machine has, and only those.
//!
//! The image builder puts each driver the spec names into the initramfs with kmod's own index
//! files for them (`modules.alias`, `modules.dep`, written by the builder's depmod). The kernel
//! gives every device it found a `modalias` in sysfs (`/sys/bus/pci/devices/*/modalias`:
//! `pci:v00008086d00002922sv…`); a driver whose alias pattern (`fnmatch(3)`, as modprobe
//! matches) covers one is loaded, after its dependencies (`modules.dep` lists them in reverse
//! load order). Loading a bus driver makes new devices appear (xHCI → USB devices →
//! `usb-storage` → SCSI disks → `sd_mod`), so [`Coldplug::round`] is repeated until a round
//! loads nothing, and again while `/init` waits for a late disk.
//!
//! Pure parts (parsing, matching, planning) are separate from the sysfs scan and the loads.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Where the sysfs buses are.
pub const SYS_BUS: &str = "/sys/bus";

/// One `alias PATTERN MODULE` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alias {
    pub pattern: String,
    pub module: String,
}

/// `modules.alias` text: `alias <pattern> <module>` lines, `#` comments. Other lines are
/// skipped (the file is the builder's; nothing in it is worth stopping a boot for).
pub fn parse_aliases(text: &str) -> Vec<Alias> {
    text.lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            match (words.next(), words.next(), words.next()) {
                (Some("alias"), Some(pattern), Some(module)) => Some(Alias {
                    pattern: pattern.to_string(),
                    module: normalize(module),
                }),
                _ => None,
            }
        })
        .collect()
}

/// A module's file and what must be loaded before it, in load order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DepEntry {
    /// Relative to `/lib/modules/<release>/`.
    pub path: String,
    /// Dependencies' paths, first to load first.
    pub load_first: Vec<String>,
}

/// `modules.dep` text (`path: dep dep ...`, dependencies in reverse load order), by module
/// name. Lines without a `:` are skipped.
pub fn parse_deps(text: &str) -> BTreeMap<String, DepEntry> {
    text.lines()
        .filter_map(|l| {
            let (path, deps) = l.split_once(':')?;
            let path = path.trim();
            let mut load_first: Vec<String> = deps.split_whitespace().map(str::to_string).collect();
            load_first.reverse();
            Some((
                module_name(path),
                DepEntry {
                    path: path.to_string(),
                    load_first,
                },
            ))
        })
        .collect()
}

/// `kernel/drivers/ata/ahci.ko` → `ahci`; `-` spelled `_`, as the kernel names modules.
pub fn module_name(path: &str) -> String {
    let file = path.rsplit('/').next().unwrap_or(path);
    let stem = [".ko.zst", ".ko.xz", ".ko.gz", ".ko"]
        .iter()
        .find_map(|ext| file.strip_suffix(ext))
        .unwrap_or(file);
    normalize(stem)
}

fn normalize(name: &str) -> String {
    name.replace('-', "_")
}

/// `fnmatch(3)` without flags, as kmod matches aliases: `*`, `?`, bracket expressions with
/// ranges and `!`/`^` negation, and `\` quoting the next character.
pub fn fnmatch(pattern: &str, text: &str) -> bool {
    // Bytes, as fnmatch in the C locale: aliases and modaliases are ASCII; no allocation on
    // this path, which /init runs for every alias and device on every poll.
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    // Iterative matcher with one backtrack point for the last `*` (enough for fnmatch).
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        let step = match p.get(pi) {
            Some(b'*') => {
                star = Some((pi + 1, ti));
                pi += 1;
                continue;
            }
            Some(b'?') => Some(pi + 1),
            Some(b'[') => bracket(p, pi, t[ti]),
            Some(b'\\') if pi + 1 < p.len() => (p[pi + 1] == t[ti]).then_some(pi + 2),
            Some(&c) => (c == t[ti]).then_some(pi + 1),
            None => None,
        };
        match step {
            Some(next) => {
                pi = next;
                ti += 1;
            }
            None => match star {
                Some((sp, st)) => {
                    pi = sp;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// Matches `c` against the bracket expression at `p[start]` (`[`): the index after its `]`,
/// or `None`. An unterminated `[` matches itself, as fnmatch does.
fn bracket(p: &[u8], start: usize, c: u8) -> Option<usize> {
    let mut i = start + 1;
    let negate = matches!(p.get(i), Some(b'!') | Some(b'^'));
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    loop {
        let lo = match p.get(i) {
            None => return (c == b'[').then_some(start + 1),
            Some(b']') if !first => break,
            Some(b'\\') if i + 1 < p.len() => {
                i += 1;
                p[i]
            }
            Some(&x) => x,
        };
        first = false;
        if p.get(i + 1) == Some(&b'-') && p.get(i + 2).is_some_and(|&h| h != b']') {
            let hi = p[i + 2];
            matched |= lo <= c && c <= hi;
            i += 3;
        } else {
            matched |= lo == c;
            i += 1;
        }
    }
    (matched != negate).then_some(i + 1)
}

/// A device the kernel found, with what it would load a driver by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// `pci/0000:00:1f.2`: the bus and the device's name on it.
    pub id: String,
    pub modalias: String,
    /// The driver bound to it, if any.
    pub driver: Option<String>,
}

/// The drivers of the index.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Index {
    pub aliases: Vec<Alias>,
    pub deps: BTreeMap<String, DepEntry>,
}

impl Index {
    pub fn parse(aliases: &str, deps: &str) -> Index {
        Index {
            aliases: parse_aliases(aliases),
            deps: parse_deps(deps),
        }
    }

    /// The modules whose aliases match `modalias`, in the index's order, each once.
    pub fn drivers_for(&self, modalias: &str) -> Vec<&str> {
        let mut seen = BTreeSet::new();
        self.aliases
            .iter()
            .filter(|a| fnmatch(&a.pattern, modalias))
            .map(|a| a.module.as_str())
            .filter(|m| seen.insert(*m))
            .collect()
    }

    /// The module files to load for `module`, dependencies first; `None` when the index has
    /// no file for it (an alias of a module that is not in the initramfs).
    pub fn load_order(&self, module: &str) -> Option<Vec<&str>> {
        let entry = self.deps.get(module)?;
        let mut paths: Vec<&str> = entry.load_first.iter().map(String::as_str).collect();
        paths.push(&entry.path);
        Some(paths)
    }
}

/// What one coldplug round decided for one module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    pub module: String,
    /// The first device it was chosen for (`pci/0000:00:1f.2`).
    pub device: String,
}

/// The modules to load for `devices`: for each device without a driver, every matching
/// module not yet `tried`, in device order. Pure.
pub fn plan(index: &Index, devices: &[Device], tried: &BTreeSet<String>) -> Vec<Planned> {
    let mut out: Vec<Planned> = Vec::new();
    for d in devices.iter().filter(|d| d.driver.is_none()) {
        for m in index.drivers_for(&d.modalias) {
            if !tried.contains(m) && !out.iter().any(|p| p.module == m) {
                out.push(Planned {
                    module: m.to_string(),
                    device: d.id.clone(),
                });
            }
        }
    }
    out
}

/// Every device under `sys_bus` (`<bus>/devices/<name>/modalias`), sorted by id. Unreadable
/// entries are skipped: a device that vanished mid-scan is not an error.
pub fn scan(sys_bus: &Path) -> io::Result<Vec<Device>> {
    let mut out = Vec::new();
    for bus in fs::read_dir(sys_bus)?.flatten() {
        let bus_name = bus.file_name().to_string_lossy().into_owned();
        let Ok(devices) = fs::read_dir(bus.path().join("devices")) else {
            continue;
        };
        for dev in devices.flatten() {
            let dir = dev.path();
            let Ok(modalias) = fs::read_to_string(dir.join("modalias")) else {
                continue;
            };
            let modalias = modalias.trim();
            if modalias.is_empty() {
                continue;
            }
            let driver = fs::read_link(dir.join("driver"))
                .ok()
                .and_then(|l| l.file_name().map(|n| n.to_string_lossy().into_owned()));
            out.push(Device {
                id: format!("{bus_name}/{}", dev.file_name().to_string_lossy()),
                modalias: modalias.to_string(),
                driver,
            });
        }
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

/// The coldplug state across rounds: the index, and what was loaded or failed.
#[derive(Debug, Default)]
pub struct Coldplug {
    pub index: Index,
    /// Module directory of the running kernel (`/lib/modules/<release>`).
    pub dir: PathBuf,
    /// Every module a round chose, loaded or not (never tried twice).
    pub tried: BTreeSet<String>,
    /// Chosen and loaded, in order, with the device each was for.
    pub loaded: Vec<Planned>,
    /// `loading <path> for <device> failed: <why>` lines.
    pub failures: Vec<String>,
    /// The kernel's storage drivers by alias, for a failed boot's hints (may be empty).
    pub kernel_storage: Vec<Alias>,
    /// The devices of the last round: a scan that finds them unchanged has nothing to plan
    /// (every driver matching them was tried), which spares the matching on every poll.
    last_scan: Vec<Device>,
}

impl Coldplug {
    /// Reads `modules.alias` and `modules.dep` from `dir`; a missing file gives an empty index
    /// (an initramfs without drivers), returned with the reason.
    pub fn open(dir: PathBuf) -> (Coldplug, Option<String>) {
        let read = |name: &str| fs::read_to_string(dir.join(name));
        let (index, problem) = match (read("modules.alias"), read("modules.dep")) {
            (Ok(a), Ok(d)) => (Index::parse(&a, &d), None),
            (Err(e), _) | (_, Err(e)) => (
                Index::default(),
                Some(format!(
                    "no driver index in {}: {}",
                    dir.display(),
                    machine::sys::errno_text(&e)
                )),
            ),
        };
        let kernel_storage = read(KERNEL_STORAGE_ALIASES)
            .map(|t| parse_aliases(&t))
            .unwrap_or_default();
        (
            Coldplug {
                index,
                dir,
                kernel_storage,
                ..Coldplug::default()
            },
            problem,
        )
    }

    /// One round over `devices`: loads what [`plan`] chose, with `load` (a path to a module
    /// file; `Ok(())` also when it was loaded already). Returns how many modules it loaded.
    pub fn round(
        &mut self,
        devices: &[Device],
        load: &mut dyn FnMut(&Path) -> io::Result<()>,
    ) -> usize {
        let planned = plan(&self.index, devices, &self.tried);
        let mut count = 0;
        for p in planned {
            self.tried.insert(p.module.clone());
            let Some(paths) = self.index.load_order(&p.module) else {
                continue;
            };
            let mut ok = true;
            for rel in paths {
                let path = self.dir.join(rel);
                match load(&path) {
                    Ok(()) => continue,
                    // The module found nothing it drives here (acpi-cpufreq on a VM): as
                    // udev, not worth a word.
                    Err(e) if e.raw_os_error() == Some(libc::ENODEV) => {
                        ok = false;
                        break;
                    }
                    Err(e) => {
                        self.failures.push(format!(
                            "loading {} for {} failed: {}",
                            path.display(),
                            p.device,
                            machine::sys::errno_text(&e)
                        ));
                        ok = false;
                        break;
                    }
                }
            }
            if ok {
                count += 1;
                self.loaded.push(p);
            }
        }
        count
    }

    /// Rounds over fresh scans of `sys_bus` until one loads nothing (at most `max_rounds`).
    pub fn settle(
        &mut self,
        sys_bus: &Path,
        max_rounds: usize,
        load: &mut dyn FnMut(&Path) -> io::Result<()>,
    ) -> usize {
        let mut total = 0;
        for _ in 0..max_rounds {
            let Ok(devices) = scan(sys_bus) else {
                break;
            };
            if devices == self.last_scan {
                break;
            }
            let loaded = self.round(&devices, load);
            self.last_scan = devices;
            match loaded {
                0 => break,
                n => total += n,
            }
        }
        total
    }
}

/// The kernel's disk-controller drivers the initramfs leaves out, by alias: named in a failed
/// boot's device list.
pub use contract::paths::INITRD_STORAGE_ALIASES as KERNEL_STORAGE_ALIASES;

/// One line per PCI device for a failed boot: its ids, class and driver; for one without a
/// driver, the initramfs driver that failed to take it, or the kernel's driver that the
/// initramfs lacks (from `kernel`, the kernel's storage aliases). Pure.
pub fn describe_pci(devices: &[Device], index: &Index, kernel: &[Alias]) -> Vec<String> {
    devices
        .iter()
        .filter(|d| d.id.starts_with("pci/"))
        .map(|d| {
            let what = pci_ids(&d.modalias).unwrap_or_else(|| d.modalias.clone());
            let line = |state: String| format!("{} {what}: {state}", d.id);
            if let Some(drv) = &d.driver {
                return line(format!("driver {drv}"));
            }
            if let ms @ [_, ..] = index.drivers_for(&d.modalias).as_slice() {
                return line(format!(
                    "no driver bound ({} did not take it)",
                    ms.join(", ")
                ));
            }
            let mut lacking: Vec<&str> = kernel
                .iter()
                .filter(|a| fnmatch(&a.pattern, &d.modalias))
                .map(|a| a.module.as_str())
                .collect();
            lacking.dedup();
            match lacking.as_slice() {
                [] => line("no driver".to_string()),
                ms => line(format!(
                    "no driver (the kernel has {}: add it to kernel.initramfs_modules)",
                    ms.join(", ")
                )),
            }
        })
        .collect()
}

/// `pci:v00008086d00002922sv…bc01sc06i01` → `8086:2922 class 01.06.01`.
pub fn pci_ids(modalias: &str) -> Option<String> {
    let rest = modalias.strip_prefix("pci:v")?;
    let vendor = rest.get(4..8)?;
    let rest = rest.get(8..)?.strip_prefix('d')?;
    let device = rest.get(4..8)?;
    let class = rest.split_once("bc").map(|(_, c)| c)?;
    let base = class.get(0..2)?;
    let sub = class.get(4..6)?;
    let prog = class.get(7..9)?;
    Some(format!("{vendor}:{device} class {base}.{sub}.{prog}").to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnmatch_as_kmod_uses_it() {
        let ahci = "pci:v00008086d00002922sv00001AF4sd00001100bc01sc06i01";
        assert!(fnmatch("pci:v*d*sv*sd*bc01sc06i01*", ahci));
        assert!(fnmatch("pci:v00008086d00002922sv*sd*bc*sc*i*", ahci));
        assert!(!fnmatch("pci:v00008086d00002923sv*sd*bc*sc*i*", ahci));
        assert!(fnmatch("virtio:d00000002v*", "virtio:d00000002v00001AF4"));
        assert!(!fnmatch("virtio:d00000002v*", "virtio:d00000001v00001AF4"));
        assert!(fnmatch("scsi:t-0x00*", "scsi:t-0x00"));
        assert!(fnmatch("scsi:t-0x0[05]*", "scsi:t-0x05"));
        assert!(!fnmatch("scsi:t-0x0[!05]*", "scsi:t-0x05"));
        assert!(fnmatch(
            "usb:v*p*d*dc*dsc*dp*ic08isc06ip50in*",
            "usb:v46F4p0001d0000dc00dsc00dp00ic08isc06ip50in00"
        ));
        assert!(fnmatch("a?c", "abc") && !fnmatch("a?c", "ac"));
        assert!(fnmatch("[a-c]x", "bx") && !fnmatch("[a-c]x", "dx"));
        assert!(fnmatch("a\\*", "a*") && !fnmatch("a\\*", "ab"));
        assert!(fnmatch("*", "") && fnmatch("**", "x") && !fnmatch("", "x"));
        assert!(fnmatch("[", "[") && !fnmatch("[", "a"));
        assert!(fnmatch("[]]", "]"));
    }

    const ALIASES: &str = "# Aliases extracted from modules themselves.\n\
        alias pci:v*d*sv*sd*bc01sc06i01* ahci\n\
        alias pci:v00001AF4d00001042sv*sd*bc*sc*i* virtio_pci\n\
        alias virtio:d00000002v* virtio_blk\n\
        alias scsi:t-0x00* sd_mod\n\
        alias fs-squashfs squashfs\n";
    const DEPS: &str =
        "kernel/drivers/ata/ahci.ko: kernel/drivers/ata/libahci.ko kernel/drivers/ata/libata.ko\n\
        kernel/drivers/ata/libahci.ko: kernel/drivers/ata/libata.ko\n\
        kernel/drivers/ata/libata.ko:\n\
        kernel/drivers/scsi/sd_mod.ko:\n";

    fn dev(id: &str, modalias: &str, driver: Option<&str>) -> Device {
        Device {
            id: id.into(),
            modalias: modalias.into(),
            driver: driver.map(Into::into),
        }
    }

    #[test]
    fn index_and_load_order() {
        let index = Index::parse(ALIASES, DEPS);
        assert_eq!(index.aliases.len(), 5);
        assert_eq!(
            index.load_order("ahci").unwrap(),
            [
                "kernel/drivers/ata/libata.ko",
                "kernel/drivers/ata/libahci.ko",
                "kernel/drivers/ata/ahci.ko"
            ]
        );
        assert_eq!(index.load_order("virtio_blk"), None, "alias without a file");
        assert_eq!(
            module_name("kernel/fs/nls/nls_iso8859-1.ko"),
            "nls_iso8859_1"
        );
        assert_eq!(module_name("a/b/usb-storage.ko.zst"), "usb_storage");
    }

    #[test]
    fn plan_skips_bound_and_tried_devices() {
        let index = Index::parse(ALIASES, DEPS);
        let devices = [
            dev(
                "pci/0000:00:1f.2",
                "pci:v00008086d00002922sv00001AF4sd00001100bc01sc06i01",
                None,
            ),
            dev(
                "pci/0000:00:1f.3",
                "pci:v00008086d00002930sv00001AF4sd00001100bc0Csc05i00",
                None,
            ),
            dev(
                "pci/0000:00:02.0",
                "pci:v00001AF4d00001042sv00001AF4sd00001100bc01sc00i00",
                Some("virtio-pci"),
            ),
            dev("scsi/0:0:0:0", "scsi:t-0x00", None),
            dev("scsi/1:0:0:0", "scsi:t-0x00", None),
        ];
        let got = plan(&index, &devices, &BTreeSet::new());
        let names: Vec<(&str, &str)> = got
            .iter()
            .map(|p| (p.module.as_str(), p.device.as_str()))
            .collect();
        assert_eq!(
            names,
            [("ahci", "pci/0000:00:1f.2"), ("sd_mod", "scsi/0:0:0:0")]
        );
        let tried: BTreeSet<String> = ["ahci".to_string()].into();
        let got = plan(&index, &devices, &tried);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].module, "sd_mod");
    }

    #[test]
    fn rounds_load_dependencies_first_and_record_failures() {
        let mut c = Coldplug {
            index: Index::parse(ALIASES, DEPS),
            dir: PathBuf::from("/lib/modules/r"),
            ..Coldplug::default()
        };
        let devices = [
            dev(
                "pci/0000:00:1f.2",
                "pci:v00008086d00002922sv00001AF4sd00001100bc01sc06i01",
                None,
            ),
            dev("scsi/0:0:0:0", "scsi:t-0x00", None),
        ];
        let mut loads = Vec::new();
        let n = c.round(&devices, &mut |p: &Path| {
            loads.push(p.display().to_string());
            if p.ends_with("sd_mod.ko") {
                Err(io::Error::from_raw_os_error(libc::ENOEXEC))
            } else if p.ends_with("libahci.ko") {
                Err(io::Error::from_raw_os_error(libc::ENODEV))
            } else {
                Ok(())
            }
        });
        // ENODEV (nothing to drive) stops that module quietly; other errors are reported.
        assert_eq!(n, 0);
        assert_eq!(
            loads,
            [
                "/lib/modules/r/kernel/drivers/ata/libata.ko",
                "/lib/modules/r/kernel/drivers/ata/libahci.ko",
                "/lib/modules/r/kernel/drivers/scsi/sd_mod.ko",
            ]
        );
        assert!(c.loaded.is_empty());
        assert_eq!(c.failures.len(), 1);
        assert!(
            c.failures[0].contains("sd_mod.ko for scsi/0:0:0:0 failed"),
            "{}",
            c.failures[0]
        );
        // Nothing is tried twice.
        assert_eq!(c.round(&devices, &mut |_: &Path| Ok(())), 0);
    }

    #[test]
    fn scan_reads_sysfs_layout() {
        let tmp = tempfile::tempdir().unwrap();
        let bus = tmp.path();
        let d = bus.join("pci/devices/0000:00:1f.2");
        fs::create_dir_all(&d).unwrap();
        fs::write(
            d.join("modalias"),
            "pci:v00008086d00002922sv00001AF4sd00001100bc01sc06i01\n",
        )
        .unwrap();
        let d = bus.join("pci/devices/0000:00:00.0");
        fs::create_dir_all(&d).unwrap();
        fs::write(
            d.join("modalias"),
            "pci:v00008086d000029C0sv00001AF4sd00001100bc06sc00i00\n",
        )
        .unwrap();
        fs::create_dir_all(bus.join("pci/drivers/lpc_ich")).unwrap();
        std::os::unix::fs::symlink("../../../pci/drivers/lpc_ich", d.join("driver")).unwrap();
        fs::create_dir_all(bus.join("usb/devices/usb1")).unwrap(); // no modalias: skipped
        let got = scan(bus).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].id, "pci/0000:00:00.0");
        assert_eq!(got[0].driver.as_deref(), Some("lpc_ich"));
        assert_eq!(got[1].driver, None);
        let index = Index::parse(ALIASES, DEPS);
        assert_eq!(
            describe_pci(&got, &Index::default(), &[]),
            [
                "pci/0000:00:00.0 8086:29c0 class 06.00.00: driver lpc_ich",
                "pci/0000:00:1f.2 8086:2922 class 01.06.01: no driver",
            ]
        );
        assert_eq!(
            describe_pci(&got[1..], &index, &[]),
            ["pci/0000:00:1f.2 8086:2922 class 01.06.01: no driver bound (ahci did not take it)"]
        );
        let kernel = parse_aliases("alias pci:v*d*sv*sd*bc01sc06i01* ahci\nalias pci:v000015ADd000007C0sv*sd*bc*sc*i* vmw_pvscsi\n");
        assert_eq!(
            describe_pci(&got[1..], &Index::default(), &kernel),
            ["pci/0000:00:1f.2 8086:2922 class 01.06.01: no driver (the kernel has ahci: add it to kernel.initramfs_modules)"]
        );
    }
}
