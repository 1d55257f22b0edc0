//! The agent's side effects outside the file tree, behind one small trait: loading a module,
//! mounting a seed drive (config drive, NoCloud seed), asking VMware for guestinfo (its backdoor
//! RPC, no VMware Tools), setting the hostname, `systemctl`, running the script. [`LiveHost`] does them on this machine; [`OfflineHost`] (any `--root`
//! other than `/`) does none, so only files under the root change. Tests use recording fakes.

use std::io;
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Command, Output};

use machine::{sys, vmware};

use super::metadata::{pick_interface_address, InterfaceAddress};

/// A side effect that failed: what was attempted and why it failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}: {reason}")]
pub struct HostError {
    /// The command or call, e.g. `systemctl start etcd.service`.
    pub what: String,
    pub reason: String,
}

impl HostError {
    pub fn new(what: impl Into<String>, reason: impl Into<String>) -> HostError {
        HostError {
            what: what.into(),
            reason: reason.into(),
        }
    }
}

/// Effects on the running machine.
pub trait Host {
    /// Whether effects reach the running machine; when false, the agent skips the calls that
    /// only make sense there (systemctl, hostname, scripts) and reports them as skipped.
    fn is_live(&self) -> bool;
    /// `modprobe MODULE`.
    fn modprobe(&self, module: &str) -> Result<(), HostError>;
    /// Mounts `device` read-only on `target`, trying iso9660 then vfat; returns the type used.
    fn mount_read_only(&self, device: &Path, target: &Path) -> Result<String, HostError>;
    fn unmount(&self, target: &Path) -> Result<(), HostError>;
    /// A VMware guestinfo variable (`guestinfo.hostname`); `None` when unset.
    fn guestinfo(&self, key: &str) -> Result<Option<String>, HostError>;
    /// Set a VMware guestinfo variable (`guestinfo.ip`).
    fn guestinfo_set(&self, key: &str, value: &str) -> Result<(), HostError>;
    /// The kernel's hostname (`sethostname(2)`).
    fn set_hostname(&self, name: &str) -> Result<(), HostError>;
    /// `systemctl ARGS...`.
    fn systemctl(&self, args: &[&str]) -> Result<(), HostError>;
    /// Runs `path` as the transient unit `unit` (`systemd-run --no-block --unit=UNIT PATH`).
    fn run_script(&self, unit: &str, path: &Path) -> Result<(), HostError>;
    /// The first non-loopback IPv4 address, if any.
    fn interface_ipv4(&self) -> Option<Ipv4Addr>;
}

/// This machine (`--root /`).
#[derive(Debug, Default, Clone, Copy)]
pub struct LiveHost;

/// Changes files only (`--root` elsewhere): every machine-level call is refused.
#[derive(Debug, Default, Clone, Copy)]
pub struct OfflineHost;

/// The filesystems a seed drive (config drive, NoCloud seed) is formatted with, in the order
/// tried.
pub const DRIVE_FSTYPES: [&str; 2] = ["iso9660", "vfat"];

impl Host for LiveHost {
    fn is_live(&self) -> bool {
        true
    }

    fn modprobe(&self, module: &str) -> Result<(), HostError> {
        run(
            Command::new("modprobe").arg(module),
            &format!("modprobe {module}"),
        )
    }

    fn mount_read_only(&self, device: &Path, target: &Path) -> Result<String, HostError> {
        let what = format!("mounting {} on {}", device.display(), target.display());
        let (dev, dir) = (device.to_string_lossy(), target.to_string_lossy());
        let mut reasons = Vec::new();
        for fstype in DRIVE_FSTYPES {
            match sys::mount(&dev, &dir, Some(fstype), sys::MS_RDONLY, None) {
                Ok(()) => return Ok(fstype.to_string()),
                Err(e) => reasons.push(format!("{fstype}: {}", sys::errno_text(&e))),
            }
        }
        Err(HostError::new(what, reasons.join(", ")))
    }

    fn unmount(&self, target: &Path) -> Result<(), HostError> {
        sys::umount(&target.to_string_lossy()).map_err(|e| {
            HostError::new(
                format!("unmounting {}", target.display()),
                sys::errno_text(&e),
            )
        })
    }

    fn guestinfo(&self, key: &str) -> Result<Option<String>, HostError> {
        let reply = vmware_rpc(&format!("info-get {key}"))?;
        Ok(vmware::info_get_value(&reply))
    }

    fn guestinfo_set(&self, key: &str, value: &str) -> Result<(), HostError> {
        let request = format!("info-set {key} {value}");
        let reply = vmware_rpc(&request)?;
        if reply.starts_with(b"1") {
            Ok(())
        } else {
            Err(HostError::new(
                format!("VMware RPC \"{request}\""),
                String::from_utf8_lossy(&reply).into_owned(),
            ))
        }
    }

    fn set_hostname(&self, name: &str) -> Result<(), HostError> {
        sys::sethostname(name)
            .map_err(|e| HostError::new(format!("sethostname {name}"), sys::errno_text(&e)))
    }

    fn systemctl(&self, args: &[&str]) -> Result<(), HostError> {
        run(
            Command::new("systemctl").args(args),
            &format!("systemctl {}", args.join(" ")),
        )
    }

    fn run_script(&self, unit: &str, path: &Path) -> Result<(), HostError> {
        run(
            Command::new("systemd-run")
                .arg("--no-block")
                .arg(format!("--unit={unit}"))
                .arg("--description=Unit generated and executed by coreos-cloudinit on behalf of user")
                .arg(path),
            &format!("systemd-run --unit={unit} {}", path.display()),
        )
    }

    fn interface_ipv4(&self) -> Option<Ipv4Addr> {
        let list: Vec<InterfaceAddress> = sys::ipv4_addresses()
            .ok()?
            .into_iter()
            .map(|(interface, address, loopback)| InterfaceAddress {
                interface,
                address,
                loopback,
            })
            .collect();
        pick_interface_address(&list)
    }
}

impl Host for OfflineHost {
    fn is_live(&self) -> bool {
        false
    }
    fn modprobe(&self, _module: &str) -> Result<(), HostError> {
        Ok(())
    }
    fn mount_read_only(&self, device: &Path, _target: &Path) -> Result<String, HostError> {
        Err(offline(format!("mounting {}", device.display())))
    }
    fn unmount(&self, target: &Path) -> Result<(), HostError> {
        Err(offline(format!("unmounting {}", target.display())))
    }
    fn guestinfo(&self, _key: &str) -> Result<Option<String>, HostError> {
        Ok(None)
    }
    fn guestinfo_set(&self, key: &str, _value: &str) -> Result<(), HostError> {
        Err(offline(format!("setting {key}")))
    }
    fn set_hostname(&self, name: &str) -> Result<(), HostError> {
        Err(offline(format!("sethostname {name}")))
    }
    fn systemctl(&self, args: &[&str]) -> Result<(), HostError> {
        Err(offline(format!("systemctl {}", args.join(" "))))
    }
    fn run_script(&self, unit: &str, _path: &Path) -> Result<(), HostError> {
        Err(offline(format!("systemd-run --unit={unit}")))
    }
    fn interface_ipv4(&self) -> Option<Ipv4Addr> {
        None
    }
}

/// One RPC to VMware over the backdoor port; the reply with its `1 `/`0 ` status.
fn vmware_rpc(request: &str) -> Result<Vec<u8>, HostError> {
    let what = format!("VMware RPC \"{request}\"");
    let mut port = vmware::IoPort::open().map_err(|e| {
        HostError::new(
            &what,
            format!("ioperm on the backdoor port: {}", sys::errno_text(&e)),
        )
    })?;
    vmware::rpc(&mut port, request.as_bytes()).map_err(|e| HostError::new(&what, e.to_string()))
}

fn offline(what: String) -> HostError {
    HostError::new(what, "not done with --root other than /")
}

/// Runs a command; a non-zero exit is an error carrying the end of its stderr.
fn run(cmd: &mut Command, what: &str) -> Result<(), HostError> {
    let output = cmd
        .output()
        .map_err(|e| HostError::new(what, spawn_error(&e)))?;
    check_output(what, &output)
}

fn check_output(what: &str, output: &Output) -> Result<(), HostError> {
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let last = stderr.lines().rev().find(|l| !l.trim().is_empty());
    let reason = match (output.status.code(), last) {
        (Some(code), Some(line)) => format!("exit status {code}: {}", line.trim()),
        (Some(code), None) => format!("exit status {code}"),
        (None, _) => "killed by a signal".to_string(),
    };
    Err(HostError::new(what, reason))
}

fn spawn_error(e: &io::Error) -> String {
    if e.kind() == io::ErrorKind::NotFound {
        "command not found".to_string()
    } else {
        sys::errno_text(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_commands_say_why() {
        let e = run(
            Command::new("sh").args(["-c", "echo one >&2; echo two >&2; exit 3"]),
            "x",
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "x: exit status 3: two");
        let e = run(&mut Command::new("/nonexistent/tool"), "tool").unwrap_err();
        assert_eq!(e.to_string(), "tool: command not found");
        assert!(run(&mut Command::new("true"), "true").is_ok());
    }

    #[test]
    fn offline_host_refuses_machine_calls() {
        let h = OfflineHost;
        assert!(!h.is_live());
        assert!(h.systemctl(&["daemon-reload"]).is_err());
        assert_eq!(h.guestinfo("guestinfo.hostname"), Ok(None));
        assert_eq!(h.interface_ipv4(), None);
    }
}

/// A recording host for tests: machine calls are logged, guestinfo comes from a map, and
/// "mounting" copies a directory into the mount point.
#[cfg(test)]
pub mod fake {
    use std::cell::RefCell;
    use std::collections::BTreeMap;
    use std::net::Ipv4Addr;
    use std::path::{Path, PathBuf};

    use super::{Host, HostError};

    #[derive(Debug, Default)]
    pub struct FakeHost {
        pub live: bool,
        pub calls: RefCell<Vec<String>>,
        pub guestinfo: BTreeMap<String, String>,
        /// The backdoor refuses every RPC, as QEMU's vmport does.
        pub guestinfo_refused: bool,
        /// The content "mounted" from any device.
        pub drive: Option<PathBuf>,
        /// `systemctl` fails when its arguments contain this word.
        pub fail_systemctl: Option<String>,
        pub ipv4: Option<Ipv4Addr>,
    }

    impl FakeHost {
        pub fn live() -> FakeHost {
            FakeHost {
                live: true,
                ..FakeHost::default()
            }
        }

        pub fn calls(&self) -> Vec<String> {
            self.calls.borrow().clone()
        }

        fn log(&self, call: String) {
            self.calls.borrow_mut().push(call);
        }

        /// The error of the real backdoor in QEMU, when [`FakeHost::guestinfo_refused`].
        fn refuse(&self, request: &str) -> Result<(), HostError> {
            if !self.guestinfo_refused {
                return Ok(());
            }
            Err(HostError::new(
                format!("VMware RPC \"{request}\""),
                machine::vmware::RpcError::Refused("opening an RPC channel").to_string(),
            ))
        }
    }

    pub fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(to)?;
        for entry in std::fs::read_dir(from)? {
            let entry = entry?;
            let dst = to.join(entry.file_name());
            if entry.file_type()?.is_dir() {
                copy_tree(&entry.path(), &dst)?;
            } else {
                std::fs::copy(entry.path(), dst)?;
            }
        }
        Ok(())
    }

    impl Host for FakeHost {
        fn is_live(&self) -> bool {
            self.live
        }
        fn modprobe(&self, module: &str) -> Result<(), HostError> {
            self.log(format!("modprobe {module}"));
            Err(HostError::new(format!("modprobe {module}"), "not found"))
        }
        fn mount_read_only(&self, device: &Path, target: &Path) -> Result<String, HostError> {
            self.log(format!("mount {} {}", device.display(), target.display()));
            let drive = self
                .drive
                .as_ref()
                .ok_or_else(|| HostError::new("mount", "no medium"))?;
            copy_tree(drive, target).map_err(|e| HostError::new("mount", e.to_string()))?;
            Ok("iso9660".into())
        }
        fn unmount(&self, target: &Path) -> Result<(), HostError> {
            self.log(format!("unmount {}", target.display()));
            let _ = std::fs::remove_dir_all(target);
            std::fs::create_dir(target).map_err(|e| HostError::new("unmount", e.to_string()))
        }
        fn guestinfo(&self, key: &str) -> Result<Option<String>, HostError> {
            self.log(format!("guestinfo {key}"));
            self.refuse(&format!("info-get {key}"))?;
            Ok(self.guestinfo.get(key).cloned())
        }
        fn guestinfo_set(&self, key: &str, value: &str) -> Result<(), HostError> {
            self.log(format!("guestinfo-set {key} {value}"));
            self.refuse(&format!("info-set {key} {value}"))
        }
        fn set_hostname(&self, name: &str) -> Result<(), HostError> {
            self.log(format!("sethostname {name}"));
            Ok(())
        }
        fn systemctl(&self, args: &[&str]) -> Result<(), HostError> {
            let call = format!("systemctl {}", args.join(" "));
            self.log(call.clone());
            match &self.fail_systemctl {
                Some(word) if args.contains(&word.as_str()) => {
                    Err(HostError::new(call, "exit status 5: Unit not found."))
                }
                _ => Ok(()),
            }
        }
        fn run_script(&self, unit: &str, path: &Path) -> Result<(), HostError> {
            self.log(format!("systemd-run --unit={unit} {}", path.display()));
            Ok(())
        }
        fn interface_ipv4(&self) -> Option<Ipv4Addr> {
            self.ipv4
        }
    }
}
