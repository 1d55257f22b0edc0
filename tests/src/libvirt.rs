//! libvirt for the tests that run the real Vagrant (vagrant-libvirt provider): its daemons
//! started by hand, as `../shared/HOST.md` says (no systemd on these machines), shared by the
//! test processes that use them at the same time, and everything the tests left behind removed
//! when the last of them is done.

use std::fs::File;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::shared::flock;
use crate::text;

/// The system connection vagrant-libvirt uses.
pub const URI: &str = "qemu:///system";

/// `virsh -c qemu:///system ARGS`.
pub fn virsh(args: &[&str]) -> Output {
    Command::new("virsh")
        .arg("-c")
        .arg(URI)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("virsh (Debian package libvirt-clients; scripts/setup-host.sh installs it)")
}

/// Names virsh lists, one per line (`--name`).
fn names(args: &[&str]) -> Vec<String> {
    let o = virsh(args);
    text(&o)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// Where the tests keep libvirt's pid files and what the first user found.
const STATE_DIR: &str = "/run/image-builder-tests";
/// The daemons the tests start, in order.
const DAEMONS: [&str; 3] = ["virtlogd", "virtlockd", "libvirtd"];

/// libvirt's daemons for the tests that use them, shared by every test process: each user
/// holds a shared `flock` on `libvirt.users` while it uses libvirt; who starts or stops the
/// daemons, or joins or leaves, first holds `libvirt.lock`. The first user records the
/// networks there were, and starts the daemons unless libvirtd already answers; the last one
/// removes the networks the tests made and, if the tests started the daemons, stops them and
/// removes the `LIBVIRT_*` firewall chains. Daemons that were running before are left alone
/// (and their networks too).
pub struct Libvirt {
    users: File,
}

impl Libvirt {
    /// Joins the users of libvirt, starting virtlogd, virtlockd and libvirtd if libvirtd does
    /// not answer.
    pub fn up() -> Libvirt {
        let dir = Path::new(STATE_DIR);
        std::fs::create_dir_all(dir).unwrap();
        let guard = lock_file(&dir.join("libvirt.lock"));
        flock(&guard, libc::LOCK_EX).unwrap();
        let users = lock_file(&dir.join("libvirt.users"));
        if flock(&users, libc::LOCK_EX | libc::LOCK_NB).is_ok() {
            // The first user: what is there now is not the tests' to remove.
            let nets = names(&["net-list", "--all", "--name"]).join("\n");
            std::fs::write(dir.join("libvirt.networks"), nets).unwrap();
        }
        flock(&users, libc::LOCK_SH).unwrap();
        if !virsh(&["version"]).status.success() {
            start_daemons(dir);
        }
        Libvirt { users }
    }

    /// Deletes the volumes of the `default` pool whose names start with `prefix` (the box
    /// images vagrant-libvirt uploads; `vagrant destroy` leaves them).
    pub fn delete_volumes(prefix: &str) {
        // libvirt 9's vol-list has no --name: " Name  Path" and a rule, then one per line.
        let list = text(&virsh(&["vol-list", "default"]));
        let vols: Vec<&str> = list
            .lines()
            .skip(2)
            .filter_map(|l| l.split_whitespace().next())
            .collect();
        for vol in vols {
            if vol.starts_with(prefix) {
                let _ = virsh(&["vol-delete", "--pool", "default", vol]);
            }
        }
    }
}

impl Drop for Libvirt {
    fn drop(&mut self) {
        let dir = Path::new(STATE_DIR);
        let guard = lock_file(&dir.join("libvirt.lock"));
        if flock(&guard, libc::LOCK_EX).is_err() {
            return;
        }
        // The last user (no other shared lock left) cleans up after all of them.
        if flock(&self.users, libc::LOCK_EX | libc::LOCK_NB).is_err() {
            return;
        }
        let before = std::fs::read_to_string(dir.join("libvirt.networks")).unwrap_or_default();
        for net in names(&["net-list", "--all", "--name"]) {
            if !before.lines().any(|b| b == net) {
                let _ = virsh(&["net-destroy", &net]);
                let _ = virsh(&["net-undefine", &net]);
            }
        }
        let _ = std::fs::remove_file(dir.join("libvirt.networks"));
        if stop_daemons(dir) {
            remove_libvirt_chains();
        }
    }
}

/// Opens (creating) a lock file.
fn lock_file(path: &Path) -> File {
    File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .unwrap_or_else(|e| panic!("opening {}: {e}", path.display()))
}

/// Starts the daemons, each writing its pid file into `dir`, and waits until libvirtd answers.
fn start_daemons(dir: &Path) {
    for daemon in DAEMONS {
        let pid = dir.join(format!("{daemon}.pid"));
        let o = Command::new(daemon)
            .args(["-d", "-p"])
            .arg(&pid)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| {
                panic!("{daemon}: {e} (libvirt-daemon-system; scripts/setup-host.sh)")
            });
        assert!(o.status.success(), "{daemon}: {}", text(&o));
    }
    let start = Instant::now();
    while !virsh(&["version"]).status.success() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "libvirtd does not answer: {}",
            text(&virsh(&["version"]))
        );
        sleep(Duration::from_millis(200));
    }
}

/// Stops (SIGTERM) the daemons whose pid files the tests wrote, and removes the files; false
/// if there were none (the daemons were not the tests').
fn stop_daemons(dir: &Path) -> bool {
    let mut stopped = false;
    for daemon in DAEMONS.iter().rev() {
        let pid_file = dir.join(format!("{daemon}.pid"));
        let Ok(pid) = std::fs::read_to_string(&pid_file) else {
            continue;
        };
        let pid = pid.trim().parse::<i32>().ok();
        // A stale pid file may name another process by now: only the daemon is stopped.
        let comm = |pid| std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if let Some(pid) = pid.filter(|&pid| comm(pid).trim() == *daemon) {
            // SAFETY: kill(2) on a daemon the tests started (its pid file, its name).
            unsafe { libc::kill(pid, libc::SIGTERM) };
            stopped = true;
        }
        let _ = std::fs::remove_file(&pid_file);
    }
    stopped
}

/// Removes the `LIBVIRT_*` chains libvirt leaves in iptables (the jumps to them first).
fn remove_libvirt_chains() {
    for table in ["filter", "nat", "mangle"] {
        let o = Command::new("iptables")
            .args(["-t", table, "-S"])
            .stderr(Stdio::null())
            .output();
        let Ok(o) = o else { return };
        let rules = String::from_utf8_lossy(&o.stdout).into_owned();
        for rule in rules.lines() {
            // "-A INPUT -j LIBVIRT_INP" → "-D INPUT -j LIBVIRT_INP"
            if rule.starts_with("-A ")
                && !rule.starts_with("-A LIBVIRT_")
                && rule.contains("LIBVIRT_")
            {
                let args: Vec<&str> = rule[3..].split_whitespace().collect();
                let _ = Command::new("iptables")
                    .args(["-t", table, "-D"])
                    .args(&args)
                    .stderr(Stdio::null())
                    .status();
            }
        }
        let chains: Vec<&str> = rules
            .lines()
            .filter_map(|r| r.strip_prefix("-N "))
            .filter(|c| c.starts_with("LIBVIRT_"))
            .collect();
        // Flushed all before any is deleted: they jump to each other.
        for op in ["-F", "-X"] {
            for chain in &chains {
                let _ = Command::new("iptables")
                    .args(["-t", table, op, chain])
                    .stderr(Stdio::null())
                    .status();
            }
        }
    }
}
