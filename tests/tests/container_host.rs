//! The container-host image in QEMU, configured on first boot by a Container Linux
//! `#cloud-config` from QEMU's fw_cfg, from a config drive on an IDE CD-ROM, and from VMware's
//! OVF environment on a CD-ROM (vSphere's ISO transport, static networking included): the test
//! logs in over SSH (a host port forwarded to the guest's 22) with the key the config
//! authorised, and checks the hostname, the key, `systemctl is-system-running`, a read-only
//! /usr, the banner, `docker info`, and that etcd runs when the config turns it on; on a disk
//! larger than the image, the first boot grows ROOT to fill it and gives the disk a GUID of its
//! own. A seed drive inserted long after boot (AHCI) is applied when udev sees it; `toolbox`
//! runs an image made by the test. A network-booted machine (BIOS and UEFI, through the e1000e
//! NIC's iPXE) takes its config from `cloud-config-url=`, under BIOS with exactly Container
//! Linux's documented kernel arguments.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tests::{etcd::free_port, image_builder_bin, shared_build, shared_variant_build, text};

/// Time for a first boot under TCG (systemd, sshd host keys, docker) before SSH answers.
const BOOT_TIMEOUT: Duration = Duration::from_secs(600);

/// What ssh and scp are run with: quiet, no prompts, the VM's (new) host key accepted and
/// not remembered.
const SSH_OPTIONS: [&str; 7] = [
    "-q",
    "-o",
    "BatchMode=yes",
    "-o",
    "StrictHostKeyChecking=no",
    "-o",
    "UserKnownHostsFile=/dev/null",
];

/// A booted VM; killed (with `image-builder run` and QEMU, one process group) when dropped.
struct Vm {
    child: Child,
    console: mpsc::Receiver<String>,
    log: Vec<String>,
    ssh_port: u16,
    key: PathBuf,
}

impl Drop for Vm {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the process group this test created for the VM.
        unsafe { libc::kill(-(self.child.id() as i32), libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

impl Vm {
    /// Boots `disk` in `format` with `run`'s `run_args` (firmware, hardware) and extra QEMU
    /// arguments; `key` is the private key the config authorises for `core`. A raw disk is
    /// booted as a snapshot, other formats are taken to be throw-away overlays.
    fn boot_with(
        disk: &Path,
        format: &str,
        key: &Path,
        run_args: &[&str],
        qemu_args: &[String],
    ) -> Vm {
        let mut args = vec![disk.to_str().unwrap(), "--format", format];
        if format == "raw" {
            args.push("--snapshot");
        }
        args.extend_from_slice(run_args);
        Vm::start(&args, "1536", key, qemu_args)
    }

    /// `image-builder run ARGS` with `memory` MiB, SSH forwarded; see [`Vm::boot_with`].
    fn start(args: &[&str], memory: &str, key: &Path, qemu_args: &[String]) -> Vm {
        let ssh_port = free_port();
        let mut cmd = Command::new(image_builder_bin());
        cmd.arg("run").args(args).args(["--memory", memory]);
        cmd.args([
            "--timeout",
            "1200",
            "--forward",
            &format!("tcp:{ssh_port}:22"),
        ])
        .arg("--")
        .args(qemu_args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0);
        let mut child = cmd.spawn().expect("starting image-builder run");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).split(b'\n') {
                let Ok(line) = line else { break };
                let line = String::from_utf8_lossy(&line).replace('\r', "");
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Vm {
            child,
            console: rx,
            log: Vec::new(),
            ssh_port,
            key: key.to_path_buf(),
        }
    }

    /// The console so far.
    fn console(&mut self) -> String {
        while let Ok(l) = self.console.try_recv() {
            self.log.push(l);
        }
        self.log.join("\n")
    }

    /// Runs `command` as core over SSH; `None` if SSH is not up (yet).
    fn ssh(&self, command: &str) -> Option<std::process::Output> {
        let o = Command::new("ssh")
            .args(SSH_OPTIONS)
            .args(["-o", "ConnectTimeout=10", "-i"])
            .arg(&self.key)
            .args(["-p", &self.ssh_port.to_string(), "core@127.0.0.1", command])
            .output()
            .expect("running ssh");
        // 255: ssh itself failed (connection refused, auth not ready).
        (o.status.code() != Some(255)).then_some(o)
    }

    /// Copies `local` to `remote` on the machine (scp as core).
    fn copy_in(&self, local: &Path, remote: &str) {
        let o = Command::new("scp")
            .args(SSH_OPTIONS)
            .arg("-i")
            .arg(&self.key)
            .args(["-P", &self.ssh_port.to_string()])
            .arg(local)
            .arg(format!("core@127.0.0.1:{remote}"))
            .output()
            .expect("running scp");
        assert!(o.status.success(), "scp: {}", text(&o));
    }

    /// `command`'s stdout once SSH answers; fails the test with the console tail after
    /// [`BOOT_TIMEOUT`].
    fn run(&mut self, command: &str) -> String {
        let start = Instant::now();
        loop {
            if let Some(o) = self.ssh(command) {
                return String::from_utf8_lossy(&o.stdout).trim().to_string();
            }
            if start.elapsed() > BOOT_TIMEOUT {
                let console = self.console();
                let tail: Vec<&str> = console.lines().rev().take(60).collect();
                panic!(
                    "no SSH after {BOOT_TIMEOUT:?}; console tail:\n{}",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                );
            }
            std::thread::sleep(Duration::from_secs(3));
        }
    }

    /// Polls `command` until its output satisfies `ok` (systemd settling, docker starting).
    fn wait_for(&mut self, command: &str, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let out = self.run(command);
            if ok(&out) {
                return out;
            }
            if start.elapsed() > Duration::from_secs(300) {
                let diag =
                    self.run("systemctl --failed --no-legend; journalctl -b -n 60 --no-pager");
                panic!("{what}: `{command}` still says {out:?}\n{diag}");
            }
            std::thread::sleep(Duration::from_secs(3));
        }
    }
}

fn keypair(dir: &Path) -> (PathBuf, String) {
    let key = dir.join("id_ed25519");
    let o = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "test@host", "-f"])
        .arg(&key)
        .output()
        .expect("ssh-keygen");
    assert!(o.status.success(), "{}", text(&o));
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    (key, public.trim().to_string())
}

/// The agent's journal lines `agent` say it read user-data from `source` and wrote `file`
/// once (a second application would say "applied already", or write it again).
fn applied_once(agent: &str, source: &str, file: &str) {
    assert!(
        agent.contains(&format!("coreos-cloudinit: user-data from {source}")),
        "{agent}"
    );
    assert_eq!(
        agent.matches(&format!("write {file} ")).count(),
        1,
        "{agent}"
    );
}

/// An OpenStack config drive as an ISO 9660 image labelled config-2, holding
/// `openstack/latest/user_data`.
fn config_drive_iso(dir: &Path, user_data: &str) -> PathBuf {
    seed_iso(
        dir,
        "config-2",
        &[("openstack/latest/user_data", user_data)],
    )
}

/// An ISO 9660 image (genisoimage, Rock Ridge and Joliet names) labelled `label`, holding
/// `files` (path, content).
fn seed_iso(dir: &Path, label: &str, files: &[(&str, &str)]) -> PathBuf {
    let tree = tempfile::tempdir_in(dir).unwrap();
    for (path, content) in files {
        let path = tree.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
    let iso = tempfile::Builder::new()
        .suffix(".iso")
        .tempfile_in(dir)
        .unwrap()
        .into_temp_path()
        .keep()
        .unwrap();
    let o = Command::new("genisoimage")
        .args(["-quiet", "-V", label, "-J", "-R", "-o"])
        .arg(&iso)
        .arg(tree.path())
        .output()
        .expect("genisoimage (scripts/setup-host.sh installs it)");
    assert!(o.status.success(), "genisoimage: {}", text(&o));
    iso
}

/// A container image's root file system as a tar (for `docker import`): busybox from the
/// pool's `busybox-static`, with the applets the toolbox test runs.
fn busybox_rootfs_tar(dir: &Path) -> PathBuf {
    let deb = tests::pool_package(&tests::pool_dir(), "busybox-static");
    let x = tempfile::tempdir_in(dir).unwrap();
    let o = Command::new("dpkg-deb")
        .arg("-x")
        .arg(&deb)
        .arg(x.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let rootfs = x.path().join("rootfs");
    for d in ["bin", "root", "tmp", "media"] {
        std::fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    std::fs::copy(x.path().join("bin/busybox"), rootfs.join("bin/busybox")).unwrap();
    for applet in ["sh", "cat", "ls", "touch", "id", "head", "sleep", "true"] {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
    }
    let tar = dir.join("toolbox-rootfs.tar");
    let o = Command::new("tar")
        .args(["--owner=0", "--group=0", "-C"])
        .arg(&rootfs)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    tar
}

/// One command to QEMU's human monitor on the unix socket `socket`; its answer.
fn monitor(socket: &Path, command: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(socket).expect("QEMU monitor");
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    s.write_all(format!("{command}\n").as_bytes()).unwrap();
    let mut answer = Vec::new();
    let mut buf = [0; 4096];
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&answer).into_owned()
}

/// With `updates`, the machine also gets the update repository's root keys and server (the
/// image has neither).
fn user_data(hostname: &str, public_key: &str, etcd: bool, updates: bool) -> String {
    let mut s = format!(
        "#cloud-config\nhostname: {hostname}\nssh_authorized_keys:\n  - {public_key}\n\
         write_files:\n  - path: /etc/motd.d/50-test\n    content: written by cloud-config\n"
    );
    if updates {
        let root = channels::RootKeys {
            keys: vec![channels::SecretKey::from_seed(&[7; 32]).public()],
        };
        let json = String::from_utf8(channels::canonical::to_vec(&root).unwrap()).unwrap();
        s.push_str(&format!(
            "  - path: /etc/update-engine/root.json\n    content: '{json}'\n"
        ));
    }
    s.push_str("coreos:\n");
    if etcd {
        s.push_str(
            "  etcd2:\n    name: node-a\n    \
             advertise-client-urls: http://127.0.0.1:2379\n    \
             listen-client-urls: http://127.0.0.1:2379\n",
        );
    }
    if updates {
        s.push_str("  update:\n    server: http://10.0.2.2:9/\n");
    }
    s
}

/// The checks every configured machine must pass.
fn check_machine(vm: &mut Vm, hostname: &str, public_key: &str) {
    assert_eq!(vm.run("hostname"), hostname);
    let keys = vm.run("cat ~/.ssh/authorized_keys");
    assert!(keys.contains(public_key), "{keys}");
    let state = vm.wait_for("systemctl is-system-running", "system state", |s| {
        s == "running" || s == "degraded"
    });
    assert_eq!(
        state,
        "running",
        "{}",
        vm.run("systemctl --failed --no-legend")
    );
    let usr = vm.run("findmnt -no OPTIONS /usr");
    assert!(usr.split(',').any(|o| o == "ro"), "/usr mounted {usr}");
    assert_eq!(vm.run("sudo -n id -u"), "0", "core has passwordless sudo");
    let touch = vm.ssh("sudo touch /usr/x").unwrap();
    assert!(!touch.status.success(), "/usr is writable");
    assert_eq!(
        vm.run("cat /run/motd.d/10-banner"),
        "Container Host alpha (1.0.0)"
    );
    assert!(vm.console().contains("Container Host alpha (1.0.0)"));
    // The console's greeting (agetty, /etc/issue) names this OS, not Debian.
    let issue = vm.run("cat /etc/issue");
    assert!(!issue.contains("Debian"), "/etc/issue: {issue}");
    let console = vm.console();
    assert!(
        console
            .lines()
            .any(|l| l.contains("Container Host 1.0.0 (alpha) ") && l.ends_with(" ttyS0")),
        "no greeting naming the OS on the serial console:\n{console}"
    );
    assert!(!console.contains("Debian GNU/Linux"), "{console}");
    assert_eq!(vm.run("cat /etc/motd.d/50-test"), "written by cloud-config");
    let info = vm.wait_for(
        "docker info --format '{{.ServerVersion}} {{.Driver}}'",
        "docker",
        |s| s.split(' ').count() == 2 && !s.is_empty() && !s.contains("rror"),
    );
    assert!(info.ends_with("overlay2"), "docker info: {info}");
    // The update engine ships: it marked the booted slot good, for every user to see.
    vm.wait_for(
        "journalctl -q -b -u update-engine --no-pager",
        "the update engine",
        |s| s.contains("marked USR-A good (1.0.0)"),
    );
    let status = vm.run("update_engine_client -status");
    assert!(status.contains("CURRENT_OP=UPDATE_STATUS_"), "{status}");
    assert_eq!(vm.run("systemctl is-active update-engine"), "active");
}

/// On a bare-metal-like machine: legacy BIOS (GRUB), an AHCI disk and an Intel 82574L NIC.
#[test]
fn fw_cfg_config_is_applied_and_etcd_runs() {
    let out = shared_build("container-host");
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = keypair(dir.path());
    let config = dir.path().join("user-data");
    std::fs::write(&config, user_data("fwcfg-host", &public, true, true)).unwrap();
    let monitor_socket = dir.path().join("monitor.sock");
    let mut vm = Vm::boot_with(
        &out.join("disk.raw"),
        "raw",
        &key,
        &[
            "--firmware",
            "bios",
            "--disk-bus",
            "ahci",
            "--nic",
            "e1000e",
        ],
        &[
            "-fw_cfg".into(),
            format!("name=opt/com.coreos/config,file={}", config.display()),
            // An empty CD-ROM drive on the disk's AHCI controller, for a config drive later.
            "-drive".into(),
            "if=none,id=cd0,media=cdrom,readonly=on".into(),
            "-device".into(),
            "ide-cd,bus=sata0.1,drive=cd0".into(),
            "-monitor".into(),
            format!("unix:{},server=on,wait=off", monitor_socket.display()),
        ],
    );
    check_machine(&mut vm, "fwcfg-host", &public);
    assert!(
        vm.console()
            .contains("GRUB: booting Container Host 1.0.0 (USR-A)"),
        "not booted by GRUB:\n{}",
        vm.console()
    );
    // The disk's controller and the NIC, by their drivers.
    let drivers = vm.run(
        "for l in /sys/block/sda/device/../../../../driver /sys/class/net/*/device/driver; \
         do basename $(readlink $l); done",
    );
    assert_eq!(
        drivers.split_whitespace().collect::<Vec<_>>(),
        ["ahci", "e1000e"],
        "{drivers}"
    );
    let engine = vm.run("journalctl -q -b -u update-engine --no-pager");
    assert!(
        engine.contains("GRUB booted USR-A 1 time(s) since the last count"),
        "{engine}"
    );
    vm.wait_for("systemctl is-active etcd", "etcd", |s| s == "active");
    let members = vm.wait_for("etcdctl member list", "etcd members", |s| {
        s.contains("node-a")
    });
    assert!(members.contains("http://127.0.0.1:2379"), "{members}");
    // The root keys and server from the config: the engine checks the channel (whose server
    // does not answer here).
    let engine = vm.wait_for(
        "journalctl -q -b -u update-engine --no-pager",
        "the engine with the config's keys",
        |s| s.contains("checking for an update"),
    );
    assert!(!engine.contains("updates are off"), "{engine}");
    assert_eq!(
        vm.run("grep ^SERVER= /etc/update-engine/update.conf"),
        "SERVER=http://10.0.2.2:9/"
    );

    // A seed drive that appears long after the boot (a CD inserted into the AHCI drive; here
    // cloud-init's NoCloud seed, label cidata): udev sees its label, and its config is applied
    // then, once.
    let late = seed_iso(
        dir.path(),
        "cidata",
        &[
            ("meta-data", "instance-id: late-1\n"),
            (
                "user-data",
                "#cloud-config\nwrite_files:\n  - path: /etc/motd.d/60-late\n    content: from a late drive\n",
            ),
        ],
    );
    let answer = monitor(
        &monitor_socket,
        &format!("change cd0 {} raw", late.display()),
    );
    assert!(!answer.contains("rror"), "QEMU monitor: {answer}");
    vm.wait_for(
        "cat /etc/motd.d/60-late 2>&1",
        "the late config drive",
        |s| s == "from a late drive",
    );
    let agent = vm.run(
        "sudo -n journalctl -q -b --no-pager -o cat -u coreos-cloudinit-drive@sr0 | \
         grep coreos-cloudinit:",
    );
    applied_once(&agent, "NoCloud seed /dev/sr0", "/etc/motd.d/60-late");

    // toolbox, with an image made here (no registry) named in /etc/default/toolbox.
    vm.copy_in(&busybox_rootfs_tar(dir.path()), "toolbox.tar");
    vm.run("docker import toolbox.tar localhost/toolbox:test");
    vm.run(
        "printf 'TOOLBOX_DOCKER_IMAGE=localhost/toolbox\\nTOOLBOX_DOCKER_TAG=test\\n' | \
         sudo tee /etc/default/toolbox",
    );
    let first = vm.run("toolbox cat /media/root/etc/hostname 2>&1");
    assert_eq!(
        first,
        "Spawning container core-localhost_toolbox-test on localhost/toolbox:test.\nfwcfg-host"
    );
    // The same container next time (what was made in it stays), as root, with the host's /usr.
    vm.run("toolbox touch /root/made-here");
    assert_eq!(
        vm.run(
            "toolbox -c 'ls /root/made-here; id -u; head -n 1 /media/root/usr/lib/os-release' 2>&1"
        ),
        "/root/made-here\n0\nNAME=\"Container Host\""
    );
    // ~/.toolboxrc overrides: an image this host does not have, and no registry to pull from.
    let o = vm
        .ssh("echo TOOLBOX_DOCKER_TAG=absent > ~/.toolboxrc; toolbox true")
        .unwrap();
    assert!(!o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("toolbox: cannot pull localhost/toolbox:absent"),
        "{}",
        text(&o)
    );
}

#[test]
fn config_drive_config_is_applied_and_etcd_stays_off() {
    let out = shared_build("container-host");
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = keypair(dir.path());
    // An OpenStack config drive as OpenStack attaches one: an ISO 9660 CD-ROM labelled
    // config-2, here on the IDE controller of a PIIX machine (`pc`), where the CD-ROM shows up
    // late in the boot.
    let drive = config_drive_iso(dir.path(), &user_data("drive-host", &public, false, false));
    // A disk that grew since the image was written (as a cloud volume larger than the
    // image): a 4 GiB qcow2 overlay over disk.raw.
    let disk = dir.path().join("grown.qcow2");
    let o = Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2", "-F", "raw", "-b"])
        .arg(out.join("disk.raw"))
        .arg(&disk)
        .arg("4G")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let mut vm = Vm::boot_with(
        &disk,
        "qcow2",
        &key,
        &["--machine", "pc"],
        &[
            "-cdrom".into(),
            drive.display().to_string(),
            // DMI says VMware: the agent speaks VMware's backdoor RPC on the real I/O port.
            // QEMU's vmport knows no RPC channel, so VMware refuses, and the agent goes on.
            "-smbios".into(),
            "type=1,manufacturer=VMware,, Inc.".into(),
        ],
    );
    check_machine(&mut vm, "drive-host", &public);
    let agent = vm.run("sudo -n journalctl -q -b --no-pager | grep 'coreos-cloudinit: '");
    // Applied once, whichever run saw the drive first (the boot's, or udev's when the CD-ROM
    // came after it).
    applied_once(&agent, "config drive /dev/sr0", "/etc/motd.d/50-test");
    assert!(
        agent.contains(
            "telling VMware the address 10.0.2.15: VMware RPC \"info-set guestinfo.ip 10.0.2.15\": \
             the VMware backdoor refused opening an RPC channel"
        ),
        "{agent}"
    );
    // First boot: ROOT (partition 9, 1 GiB in the image) and its ext4 grew to the end of the
    // 4 GiB disk (more than 2.5 GiB after the ESP and the two USR slots), and the
    // disk has a GUID of its own.
    let sectors: u64 = vm.run("cat /sys/class/block/vda9/size").parse().unwrap();
    assert!(
        sectors * 512 > 5 << 29,
        "ROOT is {sectors} sectors (it was 1 GiB)"
    );
    let fs_bytes: u64 = vm.run("findmnt -bno SIZE /").parse().unwrap();
    assert!(fs_bytes > 5 << 29, "/ is {fs_bytes} bytes (it was 1 GiB)");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("build.json")).unwrap()).unwrap();
    let built = report["layout"]["disk_guid"]
        .as_str()
        .unwrap()
        .to_ascii_lowercase();
    let console = vm.console().to_ascii_lowercase();
    assert!(
        console.contains(&format!("first-boot: disk guid {built} -> ")),
        "no disk GUID change from {built}:\n{console}"
    );
    // An OS with udev loads its own drivers: /init leaves /usr's modules to it.
    assert!(
        !console.contains("init: drivers from /usr"),
        "/init coldplugged from /usr on an OS with udev:\n{console}"
    );
    assert_eq!(
        vm.ssh("systemctl is-active etcd")
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap(),
        "inactive"
    );
    // Neither the image nor the config has root keys: the engine says so, and waits.
    let engine = vm.wait_for(
        "journalctl -q -b -u update-engine --no-pager",
        "the engine without keys",
        |s| s.contains("updates are off: no root keys"),
    );
    assert!(!engine.contains("checking for an update"), "{engine}");
}

/// A machine booted from the network (`pxe` output): the e1000e NIC's iPXE ROM fetches the
/// script, the kernel and the initramfs carrying /usr over HTTP, under BIOS and UEFI; the machine
/// runs from RAM and takes its cloud-config from `cloud-config-url=` on the kernel line, as
/// Container Linux documented for PXE. Under BIOS the kernel line has exactly Container Linux's
/// documented arguments and nothing else.
#[test]
fn pxe_boot_takes_its_config_from_cloud_config_url() {
    let out = shared_variant_build(
        "container-host",
        "container-host-pxe",
        "outputs: [raw]",
        "outputs: [pxe]",
    );
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = keypair(dir.path());
    let www = dir.path().join("www");
    std::fs::create_dir(&www).unwrap();
    let base = "container-host_1.0.0_pxe";
    for ext in ["vmlinuz", "cpio"] {
        std::os::unix::fs::symlink(
            out.join(format!("{base}.{ext}")),
            www.join(format!("{base}.{ext}")),
        )
        .unwrap();
    }
    std::fs::write(
        www.join("user-data"),
        user_data("pxe-host", &public, false, false),
    )
    .unwrap();
    let server = tests::http::StaticServer::start(&www);
    let port = server.url.rsplit(':').next().unwrap().to_string();
    let config_url = format!("http://10.0.2.2:{port}/user-data");
    // BIOS: a script as Container Linux documented them, with nothing on the kernel line but
    // its arguments (no console, no init=, nothing that keeps a first boot from asking
    // questions), so only the image's own settings can make it boot.
    let cl_args = format!("coreos.autologin cloud-config-url={config_url}");
    let documented = format!(
        "#!ipxe\n\nset base-url http://10.0.2.2:{port}\n\
         kernel ${{base-url}}/{base}.vmlinuz {cl_args}\n\
         initrd ${{base-url}}/{base}.cpio\nboot\n"
    );
    std::fs::write(www.join("bios.ipxe"), documented).unwrap();
    // UEFI: the build's script, with the config's URL on its kernel line (the guest reaches
    // the host's loopback as 10.0.2.2).
    let script = std::fs::read_to_string(out.join(format!("{base}.ipxe"))).unwrap();
    let script: String = script
        .lines()
        .map(|l| {
            if l.starts_with("kernel ") {
                format!("{l} cloud-config-url={config_url}\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    assert!(script.contains("cloud-config-url=http://"), "{script}");
    std::fs::write(www.join("uefi.ipxe"), script).unwrap();
    let empty = tempfile::tempdir().unwrap();
    for firmware in ["bios", "uefi"] {
        let bootfile = format!("http://10.0.2.2:{port}/{firmware}.ipxe");
        let before = server.requests().len();
        let mut vm = Vm::start(
            &[
                "--pxe",
                empty.path().to_str().unwrap(),
                "--bootfile",
                &bootfile,
                "--firmware",
                firmware,
                "--nic",
                "e1000e",
            ],
            "3072",
            &key,
            &[],
        );
        assert_eq!(vm.run("hostname"), "pxe-host", "{firmware}");
        let keys = vm.run("cat ~/.ssh/authorized_keys");
        assert!(keys.contains(&public), "{firmware}: {keys}");
        assert_eq!(vm.run("cat /etc/motd.d/50-test"), "written by cloud-config");
        let agent = vm.run("sudo -n journalctl -q -b --no-pager | grep 'user-data from'");
        assert!(
            agent.contains(&format!(
                "user-data from kernel command line URL http://10.0.2.2:{port}/user-data"
            )),
            "{firmware}: {agent}"
        );
        if firmware == "bios" {
            assert_eq!(vm.run("cat /proc/cmdline"), cl_args);
            // The first boot asked nothing, and coreos.autologin reached the first console.
            assert_eq!(
                vm.run("systemctl is-active systemd-firstboot"),
                "active",
                "{firmware}"
            );
            let getty = vm.run("systemctl cat getty@tty1.service");
            assert!(getty.contains("--autologin core"), "{getty}");
        }
        let fetched = server.requests()[before..].to_vec();
        let script = format!("/{firmware}.ipxe");
        for file in [script.as_str(), "/user-data"] {
            assert!(fetched.iter().any(|r| r == file), "{firmware}: {fetched:?}");
        }
        let driver = vm.run("basename $(readlink /sys/class/net/*/device/driver)");
        assert_eq!(driver, "e1000e", "{firmware}");
    }
}

/// An OVF environment document as vSphere writes it (`ovf-env.xml`), with `properties`.
fn ovf_environment(properties: &[(&str, &str)]) -> String {
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <Environment xmlns=\"http://schemas.dmtf.org/ovf/environment/1\" \
         xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" \
         xmlns:oe=\"http://schemas.dmtf.org/ovf/environment/1\" \
         xmlns:ve=\"http://www.vmware.com/schema/ovfenv\" oe:id=\"\" ve:vCenterId=\"vm-1001\">\n\
         <PlatformSection><Kind>VMware ESXi</Kind><Version>7.0.3</Version>\
         <Vendor>VMware, Inc.</Vendor><Locale>en</Locale></PlatformSection>\n\
         <PropertySection>\n",
    );
    for (key, value) in properties {
        xml.push_str(&format!(
            "<Property oe:key=\"{key}\" oe:value=\"{value}\"/>\n"
        ));
    }
    xml.push_str("</PropertySection>\n</Environment>\n");
    xml
}

/// On VMware's virtual hardware as QEMU models it (DMI says VMware, a VMXNET3 NIC), deployed
/// as vSphere does with the ISO transport of the OVF environment (a CD-ROM labelled `OVF ENV`):
/// the user-data and Container Linux's static network variables (`guestinfo.interface.0.*`,
/// `guestinfo.dns.server.0`) are its properties. QEMU's vmport refuses the backdoor RPC, so the
/// CD-ROM is the agent's only way in. The address is the one QEMU's DHCP would hand out, so SSH
/// keeps working; that it is static shows in networkd's file and the address's lifetime.
#[test]
fn vmware_ovf_environment_iso_configures_static_networking() {
    let out = shared_build("container-host");
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = keypair(dir.path());
    let mut config = user_data("ovf-host", &public, false, false);
    config.push_str(
        "  - path: /etc/motd.d/60-address\n    content: public $public_ipv4 private $private_ipv4\n",
    );
    let config = config.replace("coreos:\n", "");
    let ovf_env = ovf_environment(&[
        (
            "guestinfo.coreos.config.data",
            &util::base64::encode(config.as_bytes()),
        ),
        ("guestinfo.coreos.config.data.encoding", "base64"),
        ("guestinfo.interface.0.mac", "52:54:00:12:34:56"),
        ("guestinfo.interface.0.role", "public"),
        ("guestinfo.interface.0.ip.0.address", "10.0.2.15/24"),
        ("guestinfo.interface.0.route.0.gateway", "10.0.2.2"),
        ("guestinfo.interface.0.route.0.destination", "0.0.0.0/0"),
        ("guestinfo.dns.server.0", "10.0.2.3"),
        ("guestinfo.dns.domain.0", "vsphere.test"),
    ]);
    let iso = seed_iso(dir.path(), "OVF ENV", &[("ovf-env.xml", &ovf_env)]);
    let mut vm = Vm::boot_with(
        &out.join("disk.raw"),
        "raw",
        &key,
        &["--nic", "vmxnet3"],
        &[
            "-cdrom".into(),
            iso.display().to_string(),
            "-smbios".into(),
            "type=1,manufacturer=VMware,, Inc.".into(),
        ],
    );
    assert_eq!(vm.run("hostname"), "ovf-host");
    let agent = vm.run("sudo -n journalctl -q -b --no-pager -o cat | grep 'coreos-cloudinit: '");
    applied_once(
        &agent,
        "VMware OVF environment on /dev/sr0",
        "/etc/motd.d/60-address",
    );
    assert!(
        agent.contains(
            "coreos-cloudinit: configure network (interface 0 (52:54:00:12:34:56): 10.0.2.15/24"
        ),
        "{agent}"
    );
    let iface = vm.run("basename $(dirname $(grep -l 52:54:00:12:34:56 /sys/class/net/*/address))");
    assert_eq!(
        vm.run(&format!(
            "basename $(readlink /sys/class/net/{iface}/device/driver)"
        )),
        "vmxnet3"
    );
    let network = vm.wait_for(
        &format!("networkctl status --no-pager {iface}"),
        "networkd with the VMware network file",
        |s| s.contains("/run/systemd/network/00-vmware-00.network") && s.contains("configured"),
    );
    assert!(network.contains("10.0.2.15"), "{network}");
    // Static: no lease, so no lifetime (a DHCP address says "dynamic").
    let addr = vm.run(&format!("ip -4 -o addr show dev {iface}"));
    assert!(
        addr.contains("10.0.2.15/24") && !addr.contains("dynamic"),
        "{addr}"
    );
    let dns = vm.run(&format!(
        "resolvectl dns {iface}; resolvectl domain {iface}"
    ));
    assert!(
        dns.contains("10.0.2.3") && dns.contains("vsphere.test"),
        "{dns}"
    );
    // The role's address fills $public_ipv4 (and, with no private interface, $private_ipv4).
    assert_eq!(
        vm.run("cat /etc/motd.d/60-address"),
        "public 10.0.2.15 private 10.0.2.15"
    );
}
