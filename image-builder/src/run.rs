//! `image-builder run`: boot a disk in QEMU (UEFI through OVMF, TCG, virtio disk and NIC, serial
//! console on stdout) and optionally wait for a regular expression on the console.
//!
//! Or boot from the network (`--pxe DIR`): QEMU's user network serves DIR over TFTP and hands
//! out the iPXE script (or any `--bootfile`, also an `http://` URL: the host is 10.0.2.2 from
//! the guest) by DHCP; the NIC boots through Debian's iPXE ROM, under OVMF or SeaBIOS.
//!
//! QEMU always gets a private copy of the OVMF variable store, and is always killed when `run`
//! returns, whatever the outcome (the guard owns the child).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use regex::Regex;

use crate::report::BuildReport;
use crate::spec::Output;

pub const OVMF_CODE: &str = "/usr/share/OVMF/OVMF_CODE_4M.fd";
pub const OVMF_VARS: &str = "/usr/share/OVMF/OVMF_VARS_4M.fd";
/// iPXE option ROMs for virtio-net (package ipxe-qemu). Their PCI id is the modern 1af4:1041,
/// so the NIC must be `disable-legacy=on` or the firmware ignores an explicit `romfile=`.
pub const IPXE_ROM_BIOS: &str = "/usr/lib/ipxe/qemu/pxe-virtio.rom";
pub const IPXE_ROM_UEFI: &str = "/usr/lib/ipxe/qemu/efi-virtio.rom";
/// How much console output to show when the expected text never came.
pub const TAIL_LINES: usize = 40;

/// What to boot and how.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The disk; optional for a network boot.
    pub disk: Option<PathBuf>,
    /// Boot from the network instead of the disk.
    pub netboot: Option<Netboot>,
    /// Boot this ISO from a CD-ROM drive (an IDE CD on the chipset's own controller) instead
    /// of the disk.
    pub cdrom: Option<PathBuf>,
    pub firmware: Firmware,
    /// `raw`, `qcow2`, `vmdk`, `vpc`.
    pub format: String,
    /// The chipset.
    pub machine: Machine,
    /// The controller the disk hangs on.
    pub bus: DiskBus,
    /// The network card (for `--pxe`, the one that boots).
    pub nic: Nic,
    pub memory_mib: u32,
    /// Discard disk writes (`-snapshot`).
    pub snapshot: bool,
    /// Exit as soon as this matches a console line.
    pub expect: Option<Regex>,
    pub timeout: Option<Duration>,
    /// Host ports forwarded to the guest (`tcp:2222:22`: host 127.0.0.1:2222 to guest 22).
    pub forwards: Vec<Forward>,
    /// Extra QEMU arguments, appended as given.
    pub qemu_args: Vec<String>,
    /// Echo the console to stdout.
    pub echo: bool,
}

/// A network boot through QEMU's user network (DHCP and TFTP built in).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Netboot {
    /// Served over TFTP.
    pub tftp_root: PathBuf,
    /// The DHCP boot file: a name under `tftp_root`, or a URL iPXE fetches.
    pub bootfile: String,
}

impl Netboot {
    /// Boot the build in `dir` from the network: its iPXE script (the `pxe` output in its
    /// `build.json`), or `bootfile` (a name in `dir` or a URL) when given.
    pub fn from_build(dir: PathBuf, bootfile: Option<String>) -> Result<Netboot> {
        let bootfile = match bootfile {
            Some(b) => b,
            None => {
                let report = BuildReport::load(&dir)
                    .context("--pxe wants a build's output directory, or give --bootfile")?;
                report
                    .output_files(&dir, Output::Pxe)?
                    .iter()
                    .find(|f| f.ends_with(".ipxe"))
                    .cloned()
                    .with_context(|| {
                        format!("{}: the pxe output has no .ipxe script", dir.display())
                    })?
            }
        };
        Ok(Netboot {
            tftp_root: dir,
            bootfile,
        })
    }
}

/// A host port forwarded into the guest through QEMU's user network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forward {
    pub udp: bool,
    pub host_port: u16,
    pub guest_port: u16,
}

impl std::str::FromStr for Forward {
    type Err = String;
    /// `[tcp:|udp:]HOSTPORT:GUESTPORT`.
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?}: want [tcp:|udp:]HOSTPORT:GUESTPORT, e.g. tcp:2222:22");
        let (udp, rest) = match s.split_once(':') {
            Some(("tcp", r)) => (false, r),
            Some(("udp", r)) => (true, r),
            _ => (false, s),
        };
        let (h, g) = rest.split_once(':').ok_or_else(bad)?;
        Ok(Forward {
            udp,
            host_port: h.parse().map_err(|_| bad())?,
            guest_port: g.parse().map_err(|_| bad())?,
        })
    }
}

impl Forward {
    /// QEMU's `hostfwd=` value, bound to the host's loopback only.
    fn hostfwd(&self) -> String {
        let proto = if self.udp { "udp" } else { "tcp" };
        format!(
            "hostfwd={proto}:127.0.0.1:{}-:{}",
            self.host_port, self.guest_port
        )
    }
}

/// The machine's firmware.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Firmware {
    /// OVMF.
    #[default]
    Uefi,
    /// SeaBIOS, QEMU's default.
    Bios,
}

impl std::str::FromStr for Firmware {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "uefi" => Ok(Firmware::Uefi),
            "bios" => Ok(Firmware::Bios),
            _ => Err(format!("{s:?}: want uefi or bios")),
        }
    }
}

/// A value of a small closed set, spelled as on the command line.
trait Named: Copy + PartialEq + 'static {
    const ALL: &'static [(&'static str, Self)];
    const WHAT: &'static str;
    fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, v)| *v == self)
            .map(|(n, _)| *n)
            .expect("every value is named")
    }
    fn parse(s: &str) -> Result<Self, String> {
        Self::ALL
            .iter()
            .find(|(n, _)| *n == s)
            .map(|(_, v)| *v)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|(n, _)| *n).collect();
                format!("{s:?}: want a {} of {}", Self::WHAT, names.join(", "))
            })
    }
}

/// The chipset: q35 (PCIe, ICH9; the default) or i440fx (`pc`: PIIX IDE, VirtualBox's
/// and older hypervisors' model).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Machine {
    #[default]
    Q35,
    Pc,
}

impl Named for Machine {
    const ALL: &'static [(&'static str, Machine)] = &[("q35", Machine::Q35), ("pc", Machine::Pc)];
    const WHAT: &'static str = "machine";
}

/// The disk controller: virtio-blk (QEMU's own), or the controllers of real machines and of
/// the platforms the artifacts are for (HOST.md, "Real hardware in QEMU").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DiskBus {
    #[default]
    Virtio,
    /// VirtualBox's VirtioSCSI.
    VirtioScsi,
    /// VMware's paravirtual SCSI. OVMF has no pvscsi driver: boot the kernel directly
    /// (`-kernel`, `-initrd`, `-append`).
    Pvscsi,
    /// SATA through an ICH9 AHCI controller (bare metal, VirtualBox's default).
    Ahci,
    /// PIIX IDE: the `pc` machine only.
    Ide,
    Nvme,
    /// LSI MegaRAID SAS (`megasas-gen2`).
    Megasas,
    /// LSI SAS 1068 (`mptsas1068`: vSphere's "LSI Logic SAS").
    Mptsas,
    /// A USB stick: `usb-storage` on an xHCI controller.
    Usb,
    /// LSI 53C895A parallel SCSI (`sym53c8xx`); neither firmware boots from it.
    Lsi,
}

impl Named for DiskBus {
    const ALL: &'static [(&'static str, DiskBus)] = &[
        ("virtio", DiskBus::Virtio),
        ("virtio-scsi", DiskBus::VirtioScsi),
        ("pvscsi", DiskBus::Pvscsi),
        ("ahci", DiskBus::Ahci),
        ("ide", DiskBus::Ide),
        ("nvme", DiskBus::Nvme),
        ("megasas", DiskBus::Megasas),
        ("mptsas", DiskBus::Mptsas),
        ("usb", DiskBus::Usb),
        ("lsi", DiskBus::Lsi),
    ];
    const WHAT: &'static str = "disk bus";
}

/// The network card.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Nic {
    #[default]
    Virtio,
    /// Intel PRO/1000 MT (VirtualBox's default).
    E1000,
    /// Intel 82574L (vSphere's default for new VMs).
    E1000e,
    /// Intel 82576 (servers).
    Igb,
    /// VMware's paravirtual NIC.
    Vmxnet3,
    /// Realtek RTL8139.
    Rtl8139,
}

impl Named for Nic {
    const ALL: &'static [(&'static str, Nic)] = &[
        ("virtio", Nic::Virtio),
        ("e1000", Nic::E1000),
        ("e1000e", Nic::E1000e),
        ("igb", Nic::Igb),
        ("vmxnet3", Nic::Vmxnet3),
        ("rtl8139", Nic::Rtl8139),
    ];
    const WHAT: &'static str = "NIC";
}

impl Nic {
    /// QEMU's device name.
    fn device(self) -> &'static str {
        match self {
            Nic::Virtio => "virtio-net-pci",
            other => other.name(),
        }
    }
}

macro_rules! named_str {
    ($($t:ty),*) => {$(
        impl std::str::FromStr for $t {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                <$t as Named>::parse(s)
            }
        }
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }
    )*};
}
named_str!(Machine, DiskBus, Nic);

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The expected pattern appeared, on this line.
    Matched(String),
    /// QEMU exited by itself (with no pattern given, or before it appeared).
    Exited(Option<i32>),
    TimedOut,
}

/// The QEMU command line. `vars` is the private OVMF variable store (unused for BIOS).
pub fn qemu_command(opts: &RunOptions, vars: &Path) -> Command {
    let mut cmd = Command::new("qemu-system-x86_64");
    cmd.args(["-machine", &format!("{},accel=tcg", opts.machine)])
        .args(["-cpu", "max", "-smp", "1"])
        .args(["-m", &opts.memory_mib.to_string()])
        .args(["-display", "none", "-serial", "stdio", "-monitor", "none"]);
    if opts.firmware == Firmware::Uefi {
        cmd.arg("-drive")
            .arg(format!(
                "if=pflash,format=raw,unit=0,readonly=on,file={OVMF_CODE}"
            ))
            .arg("-drive")
            .arg(format!(
                "if=pflash,format=raw,unit=1,file={}",
                vars.display()
            ));
    }
    if let Some(disk) = &opts.disk {
        cmd.args(disk_args(opts, disk));
    }
    if let Some(iso) = &opts.cdrom {
        // ide.1: the second IDE bus of both chipsets (PIIX on pc, the ICH9 AHCI on q35).
        cmd.arg("-drive")
            .arg(format!(
                "file={},format=raw,if=none,id=cd0,media=cdrom,readonly=on",
                iso.display()
            ))
            .args(["-device", "ide-cd,bus=ide.1,drive=cd0,bootindex=0"]);
    }
    cmd.args(net_args(opts))
        .args(["-no-user-config", "-nodefaults"]);
    if opts.snapshot {
        cmd.arg("-snapshot");
    }
    cmd.args(&opts.qemu_args);
    cmd
}

/// The NIC on QEMU's user network; for a network boot with its iPXE ROM and the boot file
/// by DHCP (virtio-net gets Debian's ROM explicitly, the others QEMU's default ROM, which is
/// the same iPXE for BIOS and UEFI).
fn net_args(opts: &RunOptions) -> Vec<String> {
    let forwards: String = opts
        .forwards
        .iter()
        .map(|f| format!(",{}", f.hostfwd()))
        .collect();
    let nic = opts.nic.device();
    let Some(net) = &opts.netboot else {
        return vec![
            "-netdev".into(),
            format!("user,id=net0{forwards}"),
            "-device".into(),
            format!("{nic},netdev=net0"),
        ];
    };
    let rom = match opts.firmware {
        Firmware::Uefi => IPXE_ROM_UEFI,
        Firmware::Bios => IPXE_ROM_BIOS,
    };
    let device = match opts.nic {
        Nic::Virtio => {
            format!("{nic},netdev=net0,disable-legacy=on,romfile={rom},bootindex=1")
        }
        _ => format!("{nic},netdev=net0,bootindex=1"),
    };
    vec![
        "-netdev".into(),
        format!(
            "user,id=net0,tftp={},bootfile={}{forwards}",
            qemu_opt(&net.tftp_root.display().to_string()),
            qemu_opt(&net.bootfile)
        ),
        "-device".into(),
        device,
    ]
}

/// A value inside a QEMU `-netdev` option list: commas are doubled.
fn qemu_opt(value: &str) -> String {
    value.replace(',', ",,")
}

/// The arguments that attach the disk.
fn disk_args(opts: &RunOptions, disk: &Path) -> Vec<String> {
    let drive = |iface: &str| format!("file={},format={},{iface}", disk.display(), opts.format);
    // The disk boots before disks without an index (SeaBIOS would boot only the first hard
    // disk it finds, whichever controller it is on), after a kernel given with `-kernel`
    // (QEMU's linuxboot ROM takes index 0), the CD-ROM (0) and the network (1).
    let bootindex = if opts.cdrom.is_some() || opts.netboot.is_some() {
        2
    } else {
        1
    };
    // A controller, then the disk on it.
    let on = |controller: Option<&str>, disk: &str| {
        let mut args: Vec<String> = Vec::new();
        if let Some(c) = controller {
            args.extend(["-device".into(), c.to_string()]);
        }
        args.extend([
            "-drive".into(),
            drive("if=none,id=disk0"),
            "-device".into(),
            format!("{disk},drive=disk0,bootindex={bootindex}"),
        ]);
        args
    };
    match opts.bus {
        DiskBus::Virtio => vec!["-drive".into(), drive("if=virtio")],
        DiskBus::VirtioScsi => on(Some("virtio-scsi-pci,id=scsi0"), "scsi-hd,bus=scsi0.0"),
        DiskBus::Pvscsi => on(Some("pvscsi,id=scsi0"), "scsi-hd,bus=scsi0.0"),
        DiskBus::Megasas => on(Some("megasas-gen2,id=scsi0"), "scsi-hd,bus=scsi0.0"),
        DiskBus::Mptsas => on(Some("mptsas1068,id=scsi0"), "scsi-hd,bus=scsi0.0"),
        DiskBus::Ahci => on(Some("ich9-ahci,id=sata0"), "ide-hd,bus=sata0.0"),
        DiskBus::Ide => on(None, "ide-hd,bus=ide.0"),
        DiskBus::Nvme => on(None, "nvme,serial=image0"),
        DiskBus::Usb => on(
            Some("qemu-xhci,id=xhci"),
            "usb-storage,bus=xhci.0,removable=on",
        ),
        DiskBus::Lsi => on(Some("lsi53c895a,id=scsi0"), "scsi-hd,bus=scsi0.0"),
    }
}

/// Kills and reaps QEMU when dropped.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Boot and watch the console. Returns the outcome and the whole console text.
pub fn run(opts: &RunOptions) -> Result<(Outcome, String)> {
    if opts.bus == DiskBus::Ide && opts.machine != Machine::Pc {
        bail!("--disk-bus ide needs --machine pc (q35 has no IDE controller)");
    }
    match (&opts.disk, &opts.netboot, &opts.cdrom) {
        (Some(disk), _, _) if !disk.exists() => bail!("disk {} does not exist", disk.display()),
        (_, _, Some(iso)) if !iso.exists() => bail!("ISO {} does not exist", iso.display()),
        (None, None, None) => bail!("nothing to boot: give a disk, an ISO or a network boot"),
        _ => {}
    }
    if opts.firmware == Firmware::Uefi {
        for fw in [OVMF_CODE, OVMF_VARS] {
            if !Path::new(fw).exists() {
                bail!("{fw} is missing: install the ovmf package (scripts/setup-host.sh does)");
            }
        }
    }
    if let Some(net) = &opts.netboot {
        if !net.tftp_root.is_dir() {
            bail!("{} is not a directory", net.tftp_root.display());
        }
        let rom = match opts.firmware {
            Firmware::Uefi => IPXE_ROM_UEFI,
            Firmware::Bios => IPXE_ROM_BIOS,
        };
        if !Path::new(rom).exists() {
            bail!("{rom} is missing: install the ipxe-qemu package (scripts/setup-host.sh does)");
        }
    }
    let vars_dir =
        tempfile::tempdir().context("creating a directory for the OVMF variable store")?;
    let vars = vars_dir.path().join("OVMF_VARS.fd");
    std::fs::copy(OVMF_VARS, &vars).with_context(|| format!("copying {OVMF_VARS}"))?;
    let mut cmd = qemu_command(opts, &vars);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd
        .spawn()
        .context("starting qemu-system-x86_64 (package qemu-system-x86)")?;
    let mut guard = ChildGuard(child);
    let stdout = guard.0.stdout.take().expect("piped stdout");
    let stderr = guard.0.stderr.take().expect("piped stderr");

    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || pump(stdout, tx));
    let err_thread = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = { stderr }.read_to_string(&mut s);
        s
    });

    let start = Instant::now();
    let mut console = Vec::new();
    let mut line = Vec::new();
    let outcome = loop {
        let wait = match opts.timeout {
            Some(t) => match t.checked_sub(start.elapsed()) {
                Some(left) => left,
                None => break Outcome::TimedOut,
            },
            None => Duration::from_secs(3600),
        };
        match rx.recv_timeout(wait.min(Duration::from_millis(500))) {
            Ok(chunk) => {
                if opts.echo {
                    let mut out = std::io::stdout().lock();
                    let _ = out.write_all(&chunk);
                    let _ = out.flush();
                }
                console.extend_from_slice(&chunk);
                if let Some(found) = scan(&mut line, &chunk, opts.expect.as_ref()) {
                    break Outcome::Matched(found);
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = guard.0.wait().ok().and_then(|s| s.code());
                break Outcome::Exited(status);
            }
        }
    };
    drop(guard);
    let qemu_err = err_thread.join().unwrap_or_default();
    let mut text = String::from_utf8_lossy(&console).into_owned();
    if matches!(outcome, Outcome::Exited(Some(c)) if c != 0) && !qemu_err.trim().is_empty() {
        text.push_str("\n[qemu stderr] ");
        text.push_str(qemu_err.trim());
    }
    Ok((outcome, text))
}

fn pump(mut r: impl Read, tx: mpsc::Sender<Vec<u8>>) {
    let mut buf = [0u8; 4096];
    while let Ok(n) = r.read(&mut buf) {
        if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
            break;
        }
    }
}

/// Feed console bytes; return the first complete line (ANSI escapes removed) matching `re`.
fn scan(line: &mut Vec<u8>, chunk: &[u8], re: Option<&Regex>) -> Option<String> {
    let re = re?;
    for &b in chunk {
        if b == b'\n' {
            let text = clean(&String::from_utf8_lossy(line));
            line.clear();
            if re.is_match(&text) {
                return Some(text);
            }
        } else {
            line.push(b);
        }
    }
    // A prompt such as `login:` has no newline after it.
    let partial = clean(&String::from_utf8_lossy(line));
    re.is_match(&partial).then_some(partial)
}

/// Strip ANSI escape sequences and carriage returns.
pub fn clean(s: &str) -> String {
    // Compiled once: `scan` cleans every console chunk.
    static ANSI: std::sync::LazyLock<Regex> = std::sync::LazyLock::new(|| {
        Regex::new(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Za-z0-9]|\r").expect("constant regex")
    });
    ANSI.replace_all(s, "").trim_end().to_string()
}

/// The last `n` lines of a console log, cleaned.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<String> = text.lines().map(clean).collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_matches_across_chunks_and_prompts() {
        let re = Regex::new("booted slot=USR-A").unwrap();
        let mut line = Vec::new();
        assert_eq!(scan(&mut line, b"noise\r\nbooted sl", Some(&re)), None);
        assert_eq!(
            scan(&mut line, b"ot=USR-A version=1.0.0\r\n", Some(&re)).as_deref(),
            Some("booted slot=USR-A version=1.0.0")
        );
        let re = Regex::new("login: $").unwrap();
        let mut line = Vec::new();
        assert_eq!(
            scan(&mut line, b"\x1b[0mhost login: ", Some(&re)),
            None,
            "trailing space is trimmed"
        );
        let re = Regex::new("login:$").unwrap();
        assert_eq!(
            scan(&mut line, b"", Some(&re)).as_deref(),
            Some("host login:")
        );
    }

    #[test]
    fn tail_cleans() {
        assert_eq!(tail("a\r\nb\x1b[1m\nc\n", 2), "b\nc");
    }

    #[test]
    fn command_has_private_vars_and_tcg() {
        let mut opts = RunOptions {
            disk: Some("d.raw".into()),
            netboot: None,
            cdrom: None,
            firmware: Firmware::Uefi,
            format: "raw".into(),
            machine: Machine::Q35,
            bus: DiskBus::Virtio,
            nic: Nic::Virtio,
            memory_mib: 512,
            snapshot: true,
            expect: None,
            timeout: None,
            forwards: vec!["tcp:2222:22".parse().unwrap()],
            qemu_args: vec!["-fw_cfg".into(), "name=opt/x,string=y".into()],
            echo: false,
        };
        let cmd = qemu_command(&opts, Path::new("/tmp/v.fd"));
        let args: Vec<String> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let line = args.join(" ");
        assert!(line.contains("q35,accel=tcg"));
        assert!(line.contains("unit=1,file=/tmp/v.fd"));
        assert!(line.contains("file=d.raw,format=raw,if=virtio"));
        assert!(
            line.contains("-netdev user,id=net0,hostfwd=tcp:127.0.0.1:2222-:22 "),
            "{line}"
        );
        assert!(line.ends_with("-snapshot -fw_cfg name=opt/x,string=y"));
        opts.bus = DiskBus::VirtioScsi;
        let line = qemu_command(&opts, Path::new("/tmp/v.fd"))
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ");
        assert!(line.contains(
            "-device virtio-scsi-pci,id=scsi0 -drive file=d.raw,format=raw,if=none,id=disk0 -device scsi-hd,bus=scsi0.0,drive=disk0,bootindex=1"
        ), "{line}");
        assert_eq!("pvscsi".parse::<DiskBus>(), Ok(DiskBus::Pvscsi));
        assert!("floppy"
            .parse::<DiskBus>()
            .unwrap_err()
            .contains("virtio, virtio-scsi, pvscsi, ahci, ide"));
    }

    #[test]
    fn real_hardware_models() {
        let mut opts = RunOptions {
            disk: Some("d.raw".into()),
            netboot: None,
            cdrom: None,
            firmware: Firmware::Bios,
            format: "raw".into(),
            machine: Machine::Pc,
            bus: DiskBus::Ide,
            nic: Nic::E1000,
            memory_mib: 512,
            snapshot: true,
            expect: None,
            timeout: None,
            forwards: Vec::new(),
            qemu_args: Vec::new(),
            echo: false,
        };
        let line = |opts: &RunOptions| {
            qemu_command(opts, Path::new("/tmp/v.fd"))
                .get_args()
                .map(|a| a.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        };
        let l = line(&opts);
        assert!(l.starts_with("-machine pc,accel=tcg"), "{l}");
        assert!(l.contains("-drive file=d.raw,format=raw,if=none,id=disk0 -device ide-hd,bus=ide.0,drive=disk0,bootindex=1"), "{l}");
        assert!(l.contains("-device e1000,netdev=net0"), "{l}");
        for (bus, want) in [
            (DiskBus::Ahci, "-device ich9-ahci,id=sata0 -drive file=d.raw,format=raw,if=none,id=disk0 -device ide-hd,bus=sata0.0,drive=disk0,bootindex=1"),
            (DiskBus::Nvme, "-device nvme,serial=image0,drive=disk0,bootindex=1"),
            (DiskBus::Megasas, "-device megasas-gen2,id=scsi0 "),
            (DiskBus::Mptsas, "-device mptsas1068,id=scsi0 "),
            (DiskBus::Usb, "-device qemu-xhci,id=xhci -drive file=d.raw,format=raw,if=none,id=disk0 -device usb-storage,bus=xhci.0,removable=on,drive=disk0,bootindex=1"),
        ] {
            opts.bus = bus;
            let l = line(&opts);
            assert!(l.contains(want), "{bus}: {l}");
        }
        opts.nic = Nic::E1000e;
        opts.netboot = Some(Netboot {
            tftp_root: "/srv".into(),
            bootfile: "x.ipxe".into(),
        });
        let l = line(&opts);
        assert!(l.contains("-device e1000e,netdev=net0,bootindex=1"), "{l}");
        assert!(l.contains("drive=disk0,bootindex=2"), "{l}");
        opts.netboot = None;
        opts.cdrom = Some("live.iso".into());
        let l = line(&opts);
        assert!(
            l.contains("-drive file=live.iso,format=raw,if=none,id=cd0,media=cdrom,readonly=on -device ide-cd,bus=ide.1,drive=cd0,bootindex=0"),
            "{l}"
        );
        assert!(l.contains("drive=disk0,bootindex=2"), "{l}");
        assert_eq!("q35".parse::<Machine>(), Ok(Machine::Q35));
        assert_eq!(Nic::Vmxnet3.to_string(), "vmxnet3");
        assert_eq!(Nic::Virtio.device(), "virtio-net-pci");
        assert!("isa".parse::<Machine>().is_err());
    }

    #[test]
    fn network_boot_command() {
        let mut opts = RunOptions {
            disk: None,
            cdrom: None,
            netboot: Some(Netboot {
                tftp_root: "/srv/tftp,1".into(),
                bootfile: "minimal_1.0.0_pxe.ipxe".into(),
            }),
            firmware: Firmware::Bios,
            format: "raw".into(),
            machine: Machine::Q35,
            bus: DiskBus::Virtio,
            nic: Nic::Virtio,
            memory_mib: 1024,
            snapshot: false,
            expect: None,
            timeout: None,
            forwards: Vec::new(),
            qemu_args: Vec::new(),
            echo: false,
        };
        let line = |opts: &RunOptions| {
            qemu_command(opts, Path::new("/tmp/v.fd"))
                .get_args()
                .map(|a| a.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        };
        let bios = line(&opts);
        assert!(!bios.contains("pflash"), "{bios}");
        assert!(!bios.contains("-drive"), "{bios}");
        assert!(
            bios.contains(
                "-netdev user,id=net0,tftp=/srv/tftp,,1,bootfile=minimal_1.0.0_pxe.ipxe -device virtio-net-pci,netdev=net0,disable-legacy=on,romfile=/usr/lib/ipxe/qemu/pxe-virtio.rom,bootindex=1"
            ),
            "{bios}"
        );
        opts.firmware = Firmware::Uefi;
        let uefi = line(&opts);
        assert!(uefi.contains("unit=1,file=/tmp/v.fd"), "{uefi}");
        assert!(
            uefi.contains("romfile=/usr/lib/ipxe/qemu/efi-virtio.rom"),
            "{uefi}"
        );
        assert_eq!("bios".parse::<Firmware>(), Ok(Firmware::Bios));
        assert_eq!(
            "udp:5353:53".parse::<Forward>(),
            Ok(Forward {
                udp: true,
                host_port: 5353,
                guest_port: 53
            })
        );
        assert!("2222".parse::<Forward>().is_err());
        assert!("tcp:x:22".parse::<Forward>().is_err());
        assert!("coreboot".parse::<Firmware>().is_err());
    }
}
