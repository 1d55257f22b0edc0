//! `image-builder run`: boot a disk in QEMU (UEFI through OVMF, TCG, virtio disk and NIC, serial
//! console on stdout) and optionally wait for a regular expression on the console.
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

pub const OVMF_CODE: &str = "/usr/share/OVMF/OVMF_CODE_4M.fd";
pub const OVMF_VARS: &str = "/usr/share/OVMF/OVMF_VARS_4M.fd";
/// How much console output to show when the expected text never came.
pub const TAIL_LINES: usize = 40;

/// What to boot and how.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub disk: PathBuf,
    /// `raw`, `qcow2`, `vmdk`, `vpc`.
    pub format: String,
    /// The controller the disk hangs on.
    pub bus: DiskBus,
    pub memory_mib: u32,
    /// Discard disk writes (`-snapshot`).
    pub snapshot: bool,
    /// Exit as soon as this matches a console line.
    pub expect: Option<Regex>,
    pub timeout: Option<Duration>,
    /// Extra QEMU arguments, appended as given.
    pub qemu_args: Vec<String>,
    /// Echo the console to stdout.
    pub echo: bool,
}

/// The disk controller: virtio-blk (QEMU's own), or the SCSI controllers the platform
/// artifacts are for (VirtualBox's VirtioSCSI, VMware's paravirtual SCSI).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DiskBus {
    #[default]
    Virtio,
    VirtioScsi,
    /// OVMF has no pvscsi driver: boot the kernel directly (`-kernel`, `-initrd`, `-append`).
    Pvscsi,
}

impl std::str::FromStr for DiskBus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "virtio" => Ok(DiskBus::Virtio),
            "virtio-scsi" => Ok(DiskBus::VirtioScsi),
            "pvscsi" => Ok(DiskBus::Pvscsi),
            _ => Err(format!("{s:?}: want virtio, virtio-scsi or pvscsi")),
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The expected pattern appeared, on this line.
    Matched(String),
    /// QEMU exited by itself (with no pattern given, or before it appeared).
    Exited(Option<i32>),
    TimedOut,
}

/// The QEMU command line for a disk. `vars` is the private OVMF variable store.
pub fn qemu_command(opts: &RunOptions, vars: &Path) -> Command {
    let mut cmd = Command::new("qemu-system-x86_64");
    cmd.args(["-machine", "q35,accel=tcg", "-cpu", "max", "-smp", "1"])
        .args(["-m", &opts.memory_mib.to_string()])
        .args(["-display", "none", "-serial", "stdio", "-monitor", "none"])
        .arg("-drive")
        .arg(format!(
            "if=pflash,format=raw,unit=0,readonly=on,file={OVMF_CODE}"
        ))
        .arg("-drive")
        .arg(format!(
            "if=pflash,format=raw,unit=1,file={}",
            vars.display()
        ))
        .args(disk_args(opts))
        .args([
            "-netdev",
            "user,id=net0",
            "-device",
            "virtio-net-pci,netdev=net0",
        ])
        .args(["-no-user-config", "-nodefaults"]);
    if opts.snapshot {
        cmd.arg("-snapshot");
    }
    cmd.args(&opts.qemu_args);
    cmd
}

/// The arguments that attach the disk.
fn disk_args(opts: &RunOptions) -> Vec<String> {
    let drive = |iface: &str| {
        format!(
            "file={},format={},{iface}",
            opts.disk.display(),
            opts.format
        )
    };
    let scsi = |controller: &str| {
        vec![
            "-device".into(),
            format!("{controller},id=scsi0"),
            "-drive".into(),
            drive("if=none,id=disk0"),
            "-device".into(),
            "scsi-hd,drive=disk0,bus=scsi0.0".into(),
        ]
    };
    match opts.bus {
        DiskBus::Virtio => vec!["-drive".into(), drive("if=virtio")],
        DiskBus::VirtioScsi => scsi("virtio-scsi-pci"),
        DiskBus::Pvscsi => scsi("pvscsi"),
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
    if !opts.disk.exists() {
        bail!("disk {} does not exist", opts.disk.display());
    }
    for fw in [OVMF_CODE, OVMF_VARS] {
        if !Path::new(fw).exists() {
            bail!("{fw} is missing: install the ovmf package (scripts/setup-host.sh does)");
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
            disk: "d.raw".into(),
            format: "raw".into(),
            bus: DiskBus::Virtio,
            memory_mib: 512,
            snapshot: true,
            expect: None,
            timeout: None,
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
        assert!(line.ends_with("-snapshot -fw_cfg name=opt/x,string=y"));
        opts.bus = DiskBus::VirtioScsi;
        let line = qemu_command(&opts, Path::new("/tmp/v.fd"))
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ");
        assert!(line.contains(
            "-device virtio-scsi-pci,id=scsi0 -drive file=d.raw,format=raw,if=none,id=disk0 -device scsi-hd,drive=disk0,bus=scsi0.0"
        ), "{line}");
        assert_eq!("pvscsi".parse::<DiskBus>(), Ok(DiskBus::Pvscsi));
        assert!("ide".parse::<DiskBus>().is_err());
    }
}
