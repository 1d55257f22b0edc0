//! The machine behind a small trait: which slot booted, the running OS, the USR partitions, the
//! ESP, processes, health check programs and reboot. [`RealHost`] talks to the kernel
//! (`/run/boot-slot`, `/sys/class/block`, the disk's GPT via `machine::gpt`, `/proc`, `mount(2)`,
//! `reboot(2)`); [`FileHost`] uses plain files as slot devices and a directory as ESP, for tests
//! and benchmarks. DESIGN.md "Boot and slots".

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use contract::slots::Slot;
use machine::blockdev::{BlockDevice, DevType, Probe};

use crate::config::Paths;

/// The partition label of the ESP.
pub const ESP_LABEL: &str = "EFI-SYSTEM";
/// Where the ESP is mounted.
pub const ESP_MOUNTPOINT: &str = "boot";
/// Longest a single health check program may run.
pub const HEALTH_CHECK_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a live reboot waits before reboot(2), for the engine's last lines to reach the
/// journal and the console.
pub const REBOOT_DRAIN: Duration = Duration::from_millis(500);

/// A host operation failed.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// A file or syscall failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        source: io::Error,
    },
    /// The host is not in a shape the engine can work with.
    #[error("{0}")]
    Unsupported(String),
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> HostError {
    let what = what.into();
    move |source| HostError::Io { what, source }
}

/// The block device of a USR slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotDevice {
    /// Its node (`/dev/vda4`) or, for a [`FileHost`], a file.
    pub path: PathBuf,
    /// Its GPT partition GUID, lower case.
    pub partuuid: String,
}

/// The fields of `/usr/lib/os-release` the engine uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OsRelease {
    /// `ID`.
    pub id: String,
    /// `VERSION_ID`.
    pub version_id: String,
}

/// What the engine needs from the machine.
pub trait Host {
    /// The slot the running system booted from.
    fn booted_slot(&self) -> Result<Slot, HostError>;
    /// The running OS.
    fn os_release(&self) -> Result<OsRelease, HostError>;
    /// The partition of `slot`.
    fn slot_device(&self, slot: Slot) -> Result<SlotDevice, HostError>;
    /// The mounted ESP (mounting it if needed).
    fn esp(&self) -> Result<PathBuf, HostError>;
    /// Reboots. Returns only on failure (or, for a fake host, after recording the request).
    fn reboot(&self) -> Result<(), HostError>;
    /// The `comm` names of running processes.
    fn process_names(&self) -> Result<Vec<String>, HostError>;
    /// Runs a health check program; `Ok(true)` if it exited 0 within `timeout`.
    fn run_check(&self, program: &Path, timeout: Duration) -> Result<bool, HostError> {
        run_with_timeout(program, timeout)
    }
}

/// `/run/boot-slot` under `paths`.
pub fn read_boot_slot(paths: &Paths) -> Result<Slot, HostError> {
    if let Ok(how) = std::fs::read_to_string(paths.boot_live()) {
        return Err(HostError::Unsupported(format!(
            "this machine runs from RAM (network boot: {}): there is no USR slot on a disk to \
             update; boot a new image over the network instead",
            how.trim()
        )));
    }
    let path = paths.boot_slot();
    let text = std::fs::read_to_string(&path).map_err(io_err(format!(
        "reading {} (written by the initramfs /init)",
        path.display()
    )))?;
    Slot::from_label(&text).ok_or_else(|| {
        HostError::Unsupported(format!(
            "{}: {:?} is not USR-A or USR-B",
            path.display(),
            text.trim()
        ))
    })
}

/// Parses os-release text (last `KEY=` wins, quotes removed). Pure.
pub fn parse_os_release(text: &str) -> Option<OsRelease> {
    use contract::os_release::{parse, ID, VERSION_ID};
    let mut fields = parse(text);
    let mut take = |k: &str| fields.remove(k).filter(|v| !v.is_empty());
    Some(OsRelease {
        id: take(ID)?,
        version_id: take(VERSION_ID)?,
    })
}

/// `/usr/lib/os-release` under `paths`.
pub fn read_os_release(paths: &Paths) -> Result<OsRelease, HostError> {
    let path = paths.os_release();
    let text =
        std::fs::read_to_string(&path).map_err(io_err(format!("reading {}", path.display())))?;
    parse_os_release(&text)
        .ok_or_else(|| HostError::Unsupported(format!("{}: no ID or VERSION_ID", path.display())))
}

/// `comm` of every process in `proc` (a process that exits mid-scan is skipped).
pub fn scan_process_names(proc: &Path) -> Result<Vec<String>, HostError> {
    let mut names = Vec::new();
    let dir = std::fs::read_dir(proc).map_err(io_err(format!("reading {}", proc.display())))?;
    for entry in dir.flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if let Ok(comm) = std::fs::read_to_string(entry.path().join("comm")) {
            names.push(comm.trim().to_owned());
        }
    }
    Ok(names)
}

/// Runs `program` and waits up to `timeout` for it; kills it on timeout.
pub fn run_with_timeout(program: &Path, timeout: Duration) -> Result<bool, HostError> {
    let mut child = Command::new(program)
        .spawn()
        .map_err(io_err(format!("running {}", program.display())))?;
    let start = Instant::now();
    loop {
        if let Some(status) = child
            .try_wait()
            .map_err(io_err(format!("waiting for {}", program.display())))?
        {
            return Ok(status.success());
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether `/proc/mounts` text has something mounted on `mountpoint`. Pure.
pub fn is_mounted(proc_mounts: &str, mountpoint: &str) -> bool {
    proc_mounts
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .any(|m| m == mountpoint)
}

/// The real machine, its files under `paths.root` (normally `/`).
#[derive(Debug)]
pub struct RealHost {
    paths: Paths,
    devices: OnceLock<Vec<BlockDevice>>,
}

impl RealHost {
    /// The machine whose root is `paths.root`.
    pub fn new(paths: Paths) -> RealHost {
        RealHost {
            paths,
            devices: OnceLock::new(),
        }
    }

    fn devices(&self) -> Result<&[BlockDevice], HostError> {
        if let Some(d) = self.devices.get() {
            return Ok(d);
        }
        let mut probe = Probe::new(
            self.paths.root.join("sys/class/block"),
            self.paths.root.join("dev"),
        );
        let scanned = probe.scan().map_err(io_err("reading /sys/class/block"))?;
        Ok(self.devices.get_or_init(|| scanned))
    }

    /// The partition labelled `label` on the disk holding the booted USR partition.
    fn partition(&self, label: &str) -> Result<&BlockDevice, HostError> {
        let devices = self.devices()?;
        let booted = read_boot_slot(&self.paths)?;
        let disk = devices
            .iter()
            .find(|d| {
                d.devtype == DevType::Partition && d.partname.as_deref() == Some(booted.label())
            })
            .and_then(|d| d.disk.clone())
            .ok_or_else(|| {
                HostError::Unsupported(format!(
                    "no partition labelled {} in /sys/class/block",
                    booted.label()
                ))
            })?;
        devices
            .iter()
            .find(|d| d.disk.as_deref() == Some(&disk) && d.partname.as_deref() == Some(label))
            .ok_or_else(|| HostError::Unsupported(format!("no partition {label} on disk {disk}")))
    }
}

impl Host for RealHost {
    fn booted_slot(&self) -> Result<Slot, HostError> {
        read_boot_slot(&self.paths)
    }
    fn os_release(&self) -> Result<OsRelease, HostError> {
        read_os_release(&self.paths)
    }
    fn slot_device(&self, slot: Slot) -> Result<SlotDevice, HostError> {
        let dev = self.partition(slot.label())?;
        let partuuid = dev.partuuid.clone().ok_or_else(|| {
            HostError::Unsupported(format!(
                "{}: PARTUUID unknown (GPT unreadable)",
                dev.describe()
            ))
        })?;
        Ok(SlotDevice {
            path: self.paths.root.join("dev").join(&dev.devname),
            partuuid,
        })
    }
    fn esp(&self) -> Result<PathBuf, HostError> {
        let target = self.paths.root.join(ESP_MOUNTPOINT);
        let mounts = std::fs::read_to_string(self.paths.proc().join("mounts"))
            .map_err(io_err("reading /proc/mounts"))?;
        if is_mounted(&mounts, &target.to_string_lossy()) {
            return Ok(target);
        }
        let dev = self.partition(ESP_LABEL)?;
        let source = self.paths.root.join("dev").join(&dev.devname);
        std::fs::create_dir_all(&target)
            .map_err(io_err(format!("creating {}", target.display())))?;
        machine::sys::mount(
            &source.to_string_lossy(),
            &target.to_string_lossy(),
            Some("vfat"),
            machine::sys::MS_NODEV | machine::sys::MS_NOSUID,
            None,
        )
        .map_err(io_err(format!(
            "mounting {} (the ESP) on {}",
            source.display(),
            target.display()
        )))?;
        Ok(target)
    }
    fn reboot(&self) -> Result<(), HostError> {
        // A moment for the processes that carry our last lines (journald, a `tee` to the
        // console) to write them: reboot(2) stops everything at once.
        std::thread::sleep(REBOOT_DRAIN);
        machine::sys::sync();
        Err(HostError::Io {
            what: "reboot(2)".into(),
            source: machine::sys::reboot(machine::sys::RebootCmd::Restart),
        })
    }
    fn process_names(&self) -> Result<Vec<String>, HostError> {
        scan_process_names(&self.paths.proc())
    }
}

/// A host whose slot devices are files and whose ESP is a directory; `/run/boot-slot` and
/// os-release come from `paths` as on a real host. Reboots are counted, not done.
#[derive(Debug)]
pub struct FileHost {
    /// Files and directories under a root.
    pub paths: Paths,
    /// USR-A's and USR-B's devices.
    pub devices: [SlotDevice; 2],
    /// The ESP directory.
    pub esp: PathBuf,
    /// What [`Host::process_names`] returns.
    pub processes: Vec<String>,
    /// How many times [`Host::reboot`] was called.
    pub reboots: AtomicU32,
}

impl Host for FileHost {
    fn booted_slot(&self) -> Result<Slot, HostError> {
        read_boot_slot(&self.paths)
    }
    fn os_release(&self) -> Result<OsRelease, HostError> {
        read_os_release(&self.paths)
    }
    fn slot_device(&self, slot: Slot) -> Result<SlotDevice, HostError> {
        Ok(self.devices[match slot {
            Slot::A => 0,
            Slot::B => 1,
        }]
        .clone())
    }
    fn esp(&self) -> Result<PathBuf, HostError> {
        Ok(self.esp.clone())
    }
    fn reboot(&self) -> Result<(), HostError> {
        self.reboots.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    fn process_names(&self) -> Result<Vec<String>, HostError> {
        Ok(self.processes.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_release_parsing() {
        let text = "NAME=\"Minimal Linux\"\nID=minimal\nVERSION_ID=1.0.0\nID=\"minimal\"\n";
        assert_eq!(
            parse_os_release(text),
            Some(OsRelease {
                id: "minimal".into(),
                version_id: "1.0.0".into()
            })
        );
        assert_eq!(parse_os_release("ID=x\n"), None);
    }

    #[test]
    fn a_machine_running_from_ram_has_no_slot() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::new(dir.path());
        std::fs::create_dir_all(dir.path().join("run")).unwrap();
        std::fs::write(paths.boot_slot(), "USR-A\n").unwrap();
        assert_eq!(read_boot_slot(&paths).unwrap(), Slot::A);
        std::fs::write(
            paths.boot_live(),
            "usr=/usr.squashfs (in RAM) root=tmpfs (in RAM)\n",
        )
        .unwrap();
        let e = read_boot_slot(&paths).unwrap_err().to_string();
        assert!(e.contains("runs from RAM (network boot"), "{e}");
    }

    #[test]
    fn mounts() {
        let m = "proc /proc proc rw 0 0\n/dev/vda1 /boot vfat rw 0 0\n";
        assert!(is_mounted(m, "/boot"));
        assert!(!is_mounted(m, "/boot/efi"));
    }

    #[test]
    fn processes_and_checks() {
        let dir = tempfile::tempdir().unwrap();
        for (pid, comm) in [("1", "init\n"), ("77", "agetty\n"), ("self", "x")] {
            std::fs::create_dir_all(dir.path().join(pid)).unwrap();
            std::fs::write(dir.path().join(pid).join("comm"), comm).unwrap();
        }
        let mut names = scan_process_names(dir.path()).unwrap();
        names.sort();
        assert_eq!(names, ["agetty", "init"]);
        assert!(run_with_timeout(Path::new("/bin/true"), Duration::from_secs(5)).unwrap());
        assert!(!run_with_timeout(Path::new("/bin/false"), Duration::from_secs(5)).unwrap());
    }
}
