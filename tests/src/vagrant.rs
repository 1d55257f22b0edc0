//! A Vagrant project folder driven with the real `vagrant` (vagrant-libvirt provider), for the
//! tests that run `vagrant up` as users do: a private `VAGRANT_HOME`, bounded commands, and
//! everything destroyed when dropped (after printing what tells why, when the test failed).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::libvirt::{virsh, Libvirt};
use crate::text;

/// A Vagrant project folder and the machines its Vagrantfile defines.
pub struct Project {
    pub dir: PathBuf,
    pub home: PathBuf,
    pub nodes: Vec<String>,
    /// The name the box was added under (its uploaded volumes are removed at the end).
    pub box_name: String,
}

impl Project {
    /// `timeout SECS vagrant ARGS` in the folder, with the private `VAGRANT_HOME`.
    pub fn vagrant(&self, secs: u64, args: &[&str]) -> Output {
        Command::new("timeout")
            .arg(secs.to_string())
            .arg("vagrant")
            .args(args)
            .current_dir(&self.dir)
            .env("VAGRANT_HOME", &self.home)
            .env("VAGRANT_CHECKPOINT_DISABLE", "1")
            // As shipped: the box's Vagrantfile chooses the libvirt driver.
            .env_remove("VAGRANT_LIBVIRT_DRIVER")
            .stdin(Stdio::null())
            .output()
            .expect("vagrant (Debian package vagrant; scripts/setup-host.sh installs it)")
    }

    /// `vagrant box add --name NAME FILE`, which must succeed.
    pub fn add_box(&self, file: &Path) {
        let o = self.vagrant(
            300,
            &[
                "box",
                "add",
                "--name",
                &self.box_name,
                file.to_str().unwrap(),
            ],
        );
        assert!(o.status.success(), "vagrant box add:\n{}", text(&o));
    }

    /// `vagrant ssh NODE -c CMD`: its output, or None when it failed (a machine rebooting).
    pub fn ssh(&self, node: &str, cmd: &str) -> Option<String> {
        let o = self.vagrant(180, &["ssh", node, "-c", cmd]);
        o.status
            .success()
            .then(|| String::from_utf8_lossy(&o.stdout).into_owned())
    }

    /// [`Project::ssh`] that must succeed.
    pub fn must(&self, node: &str, cmd: &str) -> String {
        let o = self.vagrant(180, &["ssh", node, "-c", cmd]);
        assert!(o.status.success(), "{node}: {cmd}:\n{}", text(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Where a Vagrantfile that logs the serial console to a file puts it.
    pub fn console_log(&self, node: &str) -> PathBuf {
        self.dir
            .join(".vagrant/console")
            .join(format!("{node}.log"))
    }

    /// vagrant-libvirt's domain prefix: the folder's name.
    fn domain(&self, node: &str) -> String {
        let dir = self.dir.file_name().unwrap().to_string_lossy();
        format!("{dir}_{node}")
    }

    fn diagnostics(&self) {
        for node in &self.nodes {
            let log = std::fs::read(self.console_log(node)).unwrap_or_default();
            let log = String::from_utf8_lossy(&log);
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!("==== {node}: console (last 40 lines)");
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
            eprintln!("==== {node}: update engine, config agent");
            let o = self.vagrant(
                90,
                &[
                    "ssh",
                    node,
                    "-c",
                    "update_engine_client -status; sudo journalctl -b -u update-engine \
                     -u user-cloudinit@* -u coreos-cloudinit -n 60 --no-pager",
                ],
            );
            eprintln!("{}", text(&o));
        }
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.diagnostics();
        }
        let o = self.vagrant(600, &["destroy", "-f"]);
        if !o.status.success() {
            eprintln!("vagrant destroy -f:\n{}", text(&o));
            for node in &self.nodes {
                let domain = self.domain(node);
                let _ = virsh(&["destroy", &domain]);
                let _ = virsh(&["undefine", &domain, "--nvram"]);
                let _ = virsh(&["vol-delete", "--pool", "default", &format!("{domain}.img")]);
            }
        }
        Libvirt::delete_volumes(&format!("{}_vagrant_box_image_", self.box_name));
    }
}
