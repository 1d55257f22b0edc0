//! libvirt for the tests that run the real Vagrant (vagrant-libvirt provider): its daemons
//! started by hand, as `../shared/HOST.md` says (no systemd on these machines), and everything
//! the run left behind removed afterwards.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

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

/// libvirt's daemons for one test. Those this test started are stopped when it is dropped,
/// after the networks it made are gone and the `LIBVIRT_*` firewall chains removed; daemons
/// that were already running are left alone (and their networks too).
pub struct Libvirt {
    started: Vec<(&'static str, PathBuf)>,
    networks_before: Vec<String>,
}

impl Libvirt {
    /// Starts virtlogd, virtlockd and libvirtd unless libvirtd already answers.
    pub fn up() -> Libvirt {
        let mut started = Vec::new();
        if !virsh(&["version"]).status.success() {
            let dir = PathBuf::from("/run/image-builder-tests");
            std::fs::create_dir_all(&dir).unwrap();
            for daemon in ["virtlogd", "virtlockd", "libvirtd"] {
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
                started.push((daemon, pid));
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
        Libvirt {
            networks_before: names(&["net-list", "--all", "--name"]),
            started,
        }
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
        for net in names(&["net-list", "--all", "--name"]) {
            if !self.networks_before.contains(&net) {
                let _ = virsh(&["net-destroy", &net]);
                let _ = virsh(&["net-undefine", &net]);
            }
        }
        if self.started.is_empty() {
            return;
        }
        for (_, pid) in self.started.iter().rev() {
            if let Some(pid) = std::fs::read_to_string(pid)
                .ok()
                .and_then(|p| p.trim().parse::<i32>().ok())
            {
                // SAFETY: kill(2) on the daemon this test started (its pid file).
                unsafe { libc::kill(pid, libc::SIGTERM) };
            }
        }
        remove_libvirt_chains();
    }
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
