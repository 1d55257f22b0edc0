//! The initramfs `/init`: from the kernel's hand-off to the OS init on the real root.
//!
//! - this file: the steps below, in order ([`run`]), and the halt every failure ends in;
//! - [`modules`]: the `/etc/initrd-modules` list the image builder writes, and loading it;
//! - [`coldplug`]: the drivers of the devices present, chosen by their `modalias`;
//! - [`factory`]: copying what `/etc` lacks from `/usr/share/factory/etc` (tmpfiles `C`);
//! - from the shared crates: the kernel command line ([`contract::cmdline`]), block devices,
//!   GPT reading and the syscall wrappers ([`machine`]).
//!
//! Steps (DESIGN.md, "Boot and slots"): mount the API filesystems and take the console; load
//! the modules of `/etc/initrd-modules`, then the drivers of the devices present (coldplug,
//! repeated while waiting for a late disk); read `usr=`/`root=` from `/proc/cmdline`; wait for
//! both partitions; mount ROOT read-write at `/sysroot` and the usr slot read-only at
//! `/sysroot/usr`, and the OEM partition of the same disk (when it has one) read-only at
//! `/sysroot/oem`; move `/proc`, `/sys`, `/dev` over, mount `/run` and record the booted slot
//! in `/run/boot-slot` and `/run/boot-usr-partuuid`; copy missing `/etc` entries from the
//! factory; free the initramfs; switch root and exec the OS init.
//!
//! A network boot (no `usr=`, the USR image in the initramfs, see [`cmdline::LIVE_USR_IMAGE`])
//! mounts that image through a loop device and ROOT on a tmpfs (or `root=`), and writes
//! `/run/boot-live` instead of the slot files.
//!
//! Every failure ends in [`halt`]: `init: FATAL: <what>: <why>` and hints on the console, sync,
//! then a clean power-off after [`FATAL_PAUSE_SECS`] (or, with `panic=N` on the command line, a
//! reboot after N seconds so boot counting can fall back to the other slot). Never an exit,
//! which would panic the kernel.

pub mod coldplug;
pub mod factory;
pub mod modules;

use std::convert::Infallible;
use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{symlink, DirBuilderExt, MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;
use std::thread::sleep;
use std::time::{Duration, Instant};

use contract::cmdline::{self, BootConfig, FailureAction, RootSpec, UsrSpec};
use machine::blockdev::{self, BlockDevice, Probe};
use machine::sys::{self, errno_text, RebootCmd};

/// Where the new root is assembled.
pub const SYSROOT: &str = "/sysroot";
/// How long to wait for the usr and root partitions to appear.
pub const DEVICE_TIMEOUT_SECS: u64 = 20;
/// Between two scans of `/sys/class/block`.
pub const POLL_INTERVAL_MS: u64 = 50;
/// Announce the wait after this long, so a slow disk does not look like a hang.
const WAIT_NOTICE_MS: u64 = 1000;
/// Time to read a fatal message before the machine powers off.
pub const FATAL_PAUSE_SECS: u64 = 5;
/// Files `/init` leaves in the new root's `/run` for the update engine (`contract::paths`).
pub use contract::paths::{BOOT_LIVE as BOOT_LIVE_FILE, BOOT_SLOT as BOOT_SLOT_FILE};
/// Beside [`BOOT_SLOT_FILE`]: the PARTUUID of the partition mounted as /usr.
pub const BOOT_USR_PARTUUID_FILE: &str = "run/boot-usr-partuuid";
/// The partition name of platform-specific configuration (DESIGN.md, "Disk layout").
pub use contract::partitions::OEM as OEM_LABEL;
/// Where the OEM partition is mounted, read-only (Flatcar's place; Container Linux used
/// `/usr/share/oem`). Its `cloud-config.yml` is applied first at boot (oem-cloudinit.service).
pub use contract::paths::OEM_MOUNT as OEM_DIR;

/// Decided once the command line is read; before that a failure powers off.
static FAILURE_ACTION: OnceLock<FailureAction> = OnceLock::new();

/// A failure that stops the boot.
#[derive(Debug)]
pub struct Fatal {
    pub what: String,
    pub why: String,
    /// Extra lines that help (devices seen, module failures).
    pub hints: Vec<String>,
}

impl Fatal {
    pub fn new(what: impl Into<String>, why: impl fmt::Display) -> Self {
        Fatal {
            what: what.into(),
            why: why.to_string(),
            hints: Vec::new(),
        }
    }

    fn io(what: impl Into<String>, e: &io::Error) -> Self {
        Fatal::new(what, errno_text(e))
    }

    fn hint(mut self, line: impl Into<String>) -> Self {
        self.hints.push(line.into());
        self
    }
}

impl fmt::Display for Fatal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.what, self.why)
    }
}

/// Prints `init: <msg>` on the console (fd 1). Errors are ignored: there is nowhere else to go.
pub fn say(msg: impl fmt::Display) {
    let line = format!("init: {msg}\n");
    let _ = io::stdout().lock().write_all(line.as_bytes());
}

/// Prints the failure, syncs and powers off (or reboots, see the module doc). Never returns.
pub fn halt(fatal: &Fatal) -> ! {
    say(format_args!("FATAL: {fatal}"));
    for h in &fatal.hints {
        say(format_args!("  {h}"));
    }
    sys::sync();
    let action = FAILURE_ACTION
        .get()
        .copied()
        .unwrap_or(FailureAction::PowerOff);
    let (cmd, secs) = match action {
        FailureAction::PowerOff => {
            say(format_args!("powering off in {FATAL_PAUSE_SECS} s"));
            (RebootCmd::PowerOff, FATAL_PAUSE_SECS)
        }
        FailureAction::Reboot { after_secs } => {
            say(format_args!(
                "rebooting in {after_secs} s (panic={after_secs})"
            ));
            (RebootCmd::Restart, after_secs)
        }
    };
    sleep(Duration::from_secs(secs));
    sys::sync();
    let e = sys::reboot(cmd);
    say(format_args!(
        "reboot failed: {}; halting here",
        errno_text(&e)
    ));
    loop {
        sleep(Duration::from_secs(3600));
    }
}

/// Routes panics to [`halt`], so a bug ends in a message and a power-off, not a kernel panic.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| halt(&Fatal::new("panic in /init", info))));
}

/// Runs the whole boot; returns only on failure (on success it has exec'd the OS init).
pub fn run() -> Result<Infallible, Fatal> {
    mount_api_filesystems()?;
    if sys::console_to_stdio("/dev/console").is_err() {
        let _ = sys::console_to_stdio("/dev/kmsg");
    }
    say(format_args!("starting (kernel {})", kernel_release()));

    let cmdline =
        fs::read_to_string("/proc/cmdline").map_err(|e| Fatal::io("reading /proc/cmdline", &e))?;
    let _ = FAILURE_ACTION.set(cmdline::failure_action(&cmdline));
    let live_image = Path::new(cmdline::LIVE_USR_IMAGE)
        .is_file()
        .then_some(cmdline::LIVE_USR_IMAGE);
    let cfg = cmdline::parse_with_image(&cmdline, live_image).map_err(|e| {
        Fatal::new("kernel command line", e).hint(format!("cmdline: {}", cmdline.trim()))
    })?;

    let module_failures = load_modules();
    let mut drivers = start_coldplug();
    let devices = wait_for_devices(&cfg, &module_failures, &mut drivers)?;
    mount_sysroot(&cfg, &devices)?;
    usr_coldplug();
    root_skeleton();
    if let Some(oem) = &devices.oem {
        mount_oem(oem);
    }
    move_api_filesystems()?;
    mount_run(&cfg, devices.usr.as_ref())?;
    populate_etc();
    free_initramfs();
    switch_root()?;
    Err(exec_init(&cfg))
}

fn mount_api_filesystems() -> Result<(), Fatal> {
    let mounts = [
        (
            "proc",
            "/proc",
            "proc",
            sys::MS_NOSUID | sys::MS_NODEV | libc::MS_NOEXEC,
            None,
        ),
        (
            "sysfs",
            "/sys",
            "sysfs",
            sys::MS_NOSUID | sys::MS_NODEV | libc::MS_NOEXEC,
            None,
        ),
        (
            "devtmpfs",
            "/dev",
            "devtmpfs",
            sys::MS_NOSUID,
            Some("mode=0755"),
        ),
    ];
    for (source, target, fstype, flags, data) in mounts {
        mkdir(target)?;
        sys::mount(source, target, Some(fstype), flags, data)
            .map_err(|e| Fatal::io(format!("mounting {fstype} on {target}"), &e))?;
    }
    Ok(())
}

fn mkdir(path: &str) -> Result<(), Fatal> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(path)
        .map_err(|e| Fatal::io(format!("creating {path}"), &e))
}

fn kernel_release() -> String {
    fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".to_string())
}

/// Loads the listed modules in order; returns one line per failure for later hints.
fn load_modules() -> Vec<String> {
    let text = match fs::read_to_string(modules::LIST_PATH) {
        Ok(t) => t,
        Err(e) => {
            say(format_args!(
                "no module list {}: {}; loading none",
                modules::LIST_PATH,
                errno_text(&e)
            ));
            return Vec::new();
        }
    };
    let list = modules::parse_list(&text);
    let mut failures = Vec::new();
    for r in &list.rejected {
        say(format_args!(
            "{} line {}: ignoring {}: {}",
            modules::LIST_PATH,
            r.line,
            r.text,
            r.why
        ));
    }
    let release = kernel_release();
    let (mut loaded, mut already) = (0, 0);
    for entry in &list.modules {
        let path = modules::module_path(&release, entry);
        match modules::load(&path) {
            Ok(modules::Loaded::Now) => loaded += 1,
            Ok(modules::Loaded::Already) => already += 1,
            Err(e) => {
                let line = format!("loading {} failed: {}", path.display(), errno_text(&e));
                say(&line);
                failures.push(line);
            }
        }
    }
    say(format_args!(
        "loaded {loaded} modules ({already} already present, {} failed)",
        failures.len()
    ));
    failures
}

/// Rounds of coldplug one settle may take (each loads what the last one's drivers revealed:
/// a host controller, then its disks).
const COLDPLUG_ROUNDS: usize = 8;

/// Loads a module file for [`coldplug`]; loaded before is fine.
fn load_driver(path: &Path) -> io::Result<()> {
    modules::load(path).map(|_| ())
}

/// Loads the drivers of the devices present, and says which.
fn start_coldplug() -> coldplug::Coldplug {
    let dir = modules::module_path(&kernel_release(), "");
    let (mut c, problem) = coldplug::Coldplug::open(dir);
    if let Some(p) = problem {
        say(p);
    }
    coldplug_settle(&mut c, "drivers");
    c
}

/// An OS with udev loads its own drivers (`systemd-udev-trigger`).
const UDEVD: &str = "usr/lib/systemd/systemd-udevd";
/// Where the kernel looks for firmware first; pointed at /usr's for the coldplug below.
const FIRMWARE_PATH_PARAM: &str = "/sys/module/firmware_class/parameters/path";

/// The drivers the initramfs does not carry (network cards, ...), from the kernel's whole
/// module tree on the mounted /usr: what udev's coldplug would load, done here for an OS
/// without udev (the minimal image), so that it has its NIC too; with the firmware of /usr in
/// reach. Failures are printed, not fatal.
fn usr_coldplug() {
    // Not `exists()`: the link's target is absolute, meant for after the switch.
    if fs::symlink_metadata(Path::new(SYSROOT).join(UDEVD)).is_ok() {
        return;
    }
    let dir = Path::new(SYSROOT)
        .join("usr/lib/modules")
        .join(kernel_release());
    if !dir.is_dir() {
        say(format_args!(
            "no modules for this kernel in /usr ({})",
            dir.display()
        ));
        return;
    }
    let (mut c, problem) = coldplug::Coldplug::open(dir);
    if let Some(p) = problem {
        say(p);
        return;
    }
    let firmware = format!("{SYSROOT}/usr/lib/firmware");
    let pointed = fs::write(FIRMWARE_PATH_PARAM, &firmware).is_ok();
    coldplug_settle(&mut c, "drivers from /usr");
    if pointed {
        // After the switch, /usr/lib/firmware is the kernel's own default again.
        let _ = fs::write(FIRMWARE_PATH_PARAM, "");
    }
}

/// One settle; prints the drivers it loaded and the loads that failed.
fn coldplug_settle(c: &mut coldplug::Coldplug, what: &str) {
    let (before, failed_before) = (c.loaded.len(), c.failures.len());
    c.settle(
        Path::new(coldplug::SYS_BUS),
        COLDPLUG_ROUNDS,
        &mut load_driver,
    );
    if c.loaded.len() > before {
        let names: Vec<String> = c.loaded[before..]
            .iter()
            .map(|p| format!("{} ({})", p.module, p.device))
            .collect();
        say(format_args!("{what}: {}", names.join(", ")));
    }
    for f in &c.failures[failed_before..] {
        say(f);
    }
}

fn node_exists(dev: &BlockDevice) -> bool {
    Path::new(&dev.dev_path()).exists()
}

fn partname(dev: &BlockDevice) -> &str {
    dev.partname.as_deref().unwrap_or("no partition name")
}

/// The block devices a boot needs: none for a network boot with ROOT in RAM.
struct Devices {
    usr: Option<BlockDevice>,
    root: Option<BlockDevice>,
    /// The OEM partition on the usr disk, when it has one (never waited for).
    oem: Option<BlockDevice>,
}

/// Polls `/sys/class/block` until usr and root are there (with their `/dev` nodes); for a
/// network boot only a `root=` disk is waited for.
fn wait_for_devices(
    cfg: &BootConfig,
    module_failures: &[String],
    drivers: &mut coldplug::Coldplug,
) -> Result<Devices, Fatal> {
    if matches!(cfg.usr, UsrSpec::Image(_)) && cfg.root == RootSpec::Ram {
        return Ok(Devices {
            usr: None,
            root: None,
            oem: None,
        });
    }
    let mut probe = Probe::new("/sys/class/block", "/dev");
    let start = Instant::now();
    let mut announced = false;
    loop {
        let (devices, scan_error) = match probe.scan() {
            Ok(d) => (d, None),
            Err(e) => (Vec::new(), Some(errno_text(&e))),
        };
        // Each wanted device with what names it and what was found.
        let wanted: Vec<(&str, String, Option<blockdev::Found>)> = match (&cfg.usr, &cfg.root) {
            (UsrSpec::Device(spec), root) => {
                let usr = blockdev::find(&devices, spec, None);
                let root_found = usr.and_then(|u| blockdev::find_root(&devices, root, u.device));
                vec![
                    ("usr", cfg.usr.to_string(), usr),
                    ("root", root.to_string(), root_found),
                ]
            }
            (UsrSpec::Image(_), RootSpec::Device(spec)) => vec![(
                "root",
                cfg.root.to_string(),
                blockdev::find(&devices, spec, None),
            )],
            (UsrSpec::Image(_), _) => Vec::new(),
        };
        let ready = wanted
            .iter()
            .all(|(_, _, f)| f.is_some_and(|f| node_exists(f.device)));
        if ready {
            let mut found = Devices {
                usr: None,
                root: None,
                oem: None,
            };
            for (key, _, f) in &wanted {
                let f = f.expect("checked above");
                say(format_args!(
                    "{key}={} ({})",
                    f.device.dev_path(),
                    partname(f.device)
                ));
                if f.candidates > 1 {
                    say(format_args!(
                        "warning: {} devices match {key}=; using the first",
                        f.candidates
                    ));
                }
                match *key {
                    "usr" => found.usr = Some(f.device.clone()),
                    _ => found.root = Some(f.device.clone()),
                }
            }
            // The disk's partitions appear together: the OEM one is there with usr, or never.
            if let Some(usr) = &found.usr {
                let label = RootSpec::LabelOnUsrDisk(OEM_LABEL.to_string());
                found.oem = blockdev::find_root(&devices, &label, usr)
                    .filter(|f| node_exists(f.device))
                    .map(|f| f.device.clone());
            }
            return Ok(found);
        }
        let elapsed = start.elapsed();
        if elapsed >= Duration::from_secs(DEVICE_TIMEOUT_SECS) {
            let (what, spec, _) = wanted
                .iter()
                .find(|(_, _, f)| f.is_none())
                .or(wanted.first())
                .expect("something is waited for");
            let mut fatal = Fatal::new(
                format!("finding {what} partition {spec}"),
                format!("not found after {DEVICE_TIMEOUT_SECS} s"),
            );
            fatal.hints = device_hints(&devices, &probe, scan_error, module_failures);
            fatal.hints.extend(driver_hints(drivers));
            return Err(fatal);
        }
        if !announced && elapsed >= Duration::from_millis(WAIT_NOTICE_MS) {
            say(format_args!(
                "waiting up to {DEVICE_TIMEOUT_SECS} s for usr={} and root={}",
                cfg.usr, cfg.root
            ));
            announced = true;
        }
        sleep(Duration::from_millis(POLL_INTERVAL_MS));
        // A disk behind a late bus (USB) shows up now: load its drivers.
        coldplug_settle(drivers, "drivers");
    }
}

/// The PCI devices seen, with their drivers or what was missing, and the failed loads.
fn driver_hints(drivers: &coldplug::Coldplug) -> Vec<String> {
    let mut hints = Vec::new();
    match coldplug::scan(Path::new(coldplug::SYS_BUS)) {
        Ok(devices) => {
            hints.push("PCI devices seen:".to_string());
            hints.extend(
                coldplug::describe_pci(&devices, &drivers.index, &drivers.kernel_storage)
                    .into_iter()
                    .map(|l| format!("  {l}")),
            );
        }
        Err(e) => hints.push(format!("reading {}: {}", coldplug::SYS_BUS, errno_text(&e))),
    }
    hints.extend(drivers.failures.iter().cloned());
    hints
}

fn device_hints(
    devices: &[BlockDevice],
    probe: &Probe,
    scan_error: Option<String>,
    module_failures: &[String],
) -> Vec<String> {
    let mut hints = Vec::new();
    if let Some(e) = scan_error {
        hints.push(format!("reading /sys/class/block: {e}"));
    }
    if devices.is_empty() {
        hints.push("no block devices at all (disk driver module missing?)".to_string());
    } else {
        hints.push("block devices seen:".to_string());
        hints.extend(devices.iter().map(|d| format!("  {}", d.describe())));
    }
    for (disk, e) in &probe.gpt_errors {
        hints.push(format!("{disk}: {e}"));
    }
    hints.extend(module_failures.iter().cloned());
    hints
}

/// Kernel's errno for a mount, translated into what to check.
pub fn mount_hint(errno: Option<i32>, fstype: &str) -> Option<String> {
    match errno? {
        libc::ENODEV => Some(format!(
            "the kernel does not know filesystem type {fstype}: is its module in {}?",
            modules::LIST_PATH
        )),
        libc::EINVAL => Some(format!(
            "not a {fstype} filesystem, or one using a feature this kernel lacks (see the kernel messages above)"
        )),
        libc::ENXIO | libc::ENOENT => Some("the device node is missing".to_string()),
        libc::EBUSY => Some("the device or mount point is already in use".to_string()),
        _ => None,
    }
}

fn mount_dev(
    role: &str,
    dev: &BlockDevice,
    target: &str,
    fstype: &str,
    flags: libc::c_ulong,
) -> Result<(), Fatal> {
    sys::mount(&dev.dev_path(), target, Some(fstype), flags, None).map_err(|e| {
        let mut f = Fatal::io(
            format!(
                "mounting {role} {} ({}, {fstype}) at {target}",
                dev.dev_path(),
                partname(dev)
            ),
            &e,
        );
        f.hints.extend(mount_hint(e.raw_os_error(), fstype));
        f
    })
}

fn mount_sysroot(cfg: &BootConfig, devices: &Devices) -> Result<(), Fatal> {
    mkdir(SYSROOT)?;
    match &devices.root {
        Some(root) => mount_dev("root", root, SYSROOT, &cfg.root_fstype, 0)?,
        None => {
            sys::mount(
                "tmpfs",
                SYSROOT,
                Some(&cfg.root_fstype),
                0,
                Some("mode=0755"),
            )
            .map_err(|e| Fatal::io(format!("mounting a {} root", cfg.root_fstype), &e))?;
            say(format_args!("root={} on {SYSROOT}", cfg.root));
        }
    }
    let usr_dir = format!("{SYSROOT}/usr");
    mkdir(&usr_dir)?;
    let flags = sys::MS_RDONLY | sys::MS_NODEV;
    match (&devices.usr, &cfg.usr) {
        (Some(usr), _) => mount_dev("usr", usr, &usr_dir, &cfg.usr_fstype, flags),
        (None, UsrSpec::Image(image)) => {
            // `_open` keeps the autoclear device attached until the mount holds it.
            let (dev, _open) = sys::loop_attach_read_only(image).map_err(|e| {
                Fatal::io(format!("attaching {image} to a loop device"), &e)
                    .hint("the initramfs needs the loop module (image-builder adds it for pxe)")
            })?;
            sys::mount(&dev, &usr_dir, Some(&cfg.usr_fstype), flags, None).map_err(|e| {
                let mut f = Fatal::io(
                    format!(
                        "mounting usr {image} ({dev}, {}) at {usr_dir}",
                        cfg.usr_fstype
                    ),
                    &e,
                );
                f.hints
                    .extend(mount_hint(e.raw_os_error(), &cfg.usr_fstype));
                f
            })?;
            say(format_args!("usr={image} on {dev} (in RAM)"));
            Ok(())
        }
        (None, UsrSpec::Device(spec)) => Err(Fatal::new(
            format!("mounting usr {spec}"),
            "no device was found for it",
        )),
    }
}

/// Mounts the OEM partition read-only at `/sysroot/oem`. Not fatal: a machine without its
/// platform configuration still boots (and says why on the console).
fn mount_oem(oem: &BlockDevice) {
    let target = format!("{SYSROOT}/{OEM_DIR}");
    if let Err(e) = fs::DirBuilder::new().mode(0o755).create(&target) {
        if e.kind() != io::ErrorKind::AlreadyExists {
            say(format_args!(
                "warning: creating {target}: {}",
                errno_text(&e)
            ));
            return;
        }
    }
    let flags = sys::MS_RDONLY | sys::MS_NODEV | sys::MS_NOSUID | sys::MS_NOEXEC;
    match sys::mount(&oem.dev_path(), &target, Some("ext4"), flags, None) {
        Ok(()) => say(format_args!("oem={} on /{OEM_DIR}", oem.dev_path())),
        Err(e) => say(format_args!(
            "warning: mounting the OEM partition {} at {target}: {}",
            oem.dev_path(),
            errno_text(&e)
        )),
    }
}

/// Makes a blank ROOT bootable: the API mount points and the merged-/usr links (only for
/// directories the usr slot has). Existing entries are left alone.
fn root_skeleton() {
    for dir in ["proc", "sys", "dev", "run", "etc", "tmp", "var"] {
        let path = format!("{SYSROOT}/{dir}");
        if fs::symlink_metadata(&path).is_err() {
            if let Err(e) = fs::DirBuilder::new().mode(0o755).create(&path) {
                say(format_args!("warning: creating {path}: {}", errno_text(&e)));
            } else if dir == "tmp" {
                let _ = fs::set_permissions(&path, fs::Permissions::from_mode(0o1777));
            }
        }
    }
    for link in ["bin", "sbin", "lib", "lib64"] {
        let path = format!("{SYSROOT}/{link}");
        let usr_dir = format!("{SYSROOT}/usr/{link}");
        if fs::symlink_metadata(&path).is_err() && Path::new(&usr_dir).is_dir() {
            match symlink(format!("usr/{link}"), &path) {
                Ok(()) => say(format_args!("created /{link} -> usr/{link}")),
                Err(e) => say(format_args!(
                    "warning: creating /{link}: {}",
                    errno_text(&e)
                )),
            }
        }
    }
}

fn move_api_filesystems() -> Result<(), Fatal> {
    for dir in ["/dev", "/proc", "/sys"] {
        let target = format!("{SYSROOT}{dir}");
        mkdir(&target)?;
        sys::move_mount(dir, &target)
            .map_err(|e| Fatal::io(format!("moving {dir} to {target}"), &e))?;
    }
    Ok(())
}

fn mount_run(cfg: &BootConfig, usr: Option<&BlockDevice>) -> Result<(), Fatal> {
    let run = format!("{SYSROOT}/run");
    mkdir(&run)?;
    sys::mount(
        "tmpfs",
        &run,
        Some("tmpfs"),
        sys::MS_NOSUID | sys::MS_NODEV,
        Some("mode=0755"),
    )
    .map_err(|e| Fatal::io(format!("mounting tmpfs on {run}"), &e))?;
    let Some(usr) = usr else {
        // No slot: the update engine reads this and leaves the machine alone.
        let path = format!("{SYSROOT}/{BOOT_LIVE_FILE}");
        return fs::write(&path, format!("usr={} root={}\n", cfg.usr, cfg.root))
            .map_err(|e| Fatal::io(format!("writing {path}"), &e));
    };
    let files = [
        (BOOT_SLOT_FILE, usr.partname.as_deref()),
        (BOOT_USR_PARTUUID_FILE, usr.partuuid.as_deref()),
    ];
    for (file, value) in files {
        let path = format!("{SYSROOT}/{file}");
        match value {
            Some(v) => fs::write(&path, format!("{v}\n"))
                .map_err(|e| Fatal::io(format!("writing {path}"), &e))?,
            None => say(format_args!(
                "warning: usr {} has no value for /{file}",
                usr.dev_path()
            )),
        }
    }
    Ok(())
}

fn populate_etc() {
    let src = format!("{SYSROOT}/{}", factory::FACTORY_ETC);
    let dst = format!("{SYSROOT}/etc");
    if !Path::new(&src).is_dir() {
        say(format_args!(
            "no /{} in this slot; /etc left as it is",
            factory::FACTORY_ETC
        ));
        return;
    }
    match factory::populate(Path::new(&src), Path::new(&dst)) {
        Ok(report) => {
            say(format_args!(
                "/etc: {} entries copied from the factory, {} kept",
                report.created.len(),
                report.kept
            ));
            for p in &report.skipped {
                say(format_args!(
                    "warning: /etc/{}: not a file, directory or symlink; skipped",
                    p.display()
                ));
            }
            for (p, e) in &report.failed {
                say(format_args!(
                    "warning: /etc/{}: copy failed: {}",
                    p.display(),
                    errno_text(e)
                ));
            }
        }
        Err(e) => say(format_args!(
            "warning: reading {src}: {}; /etc left as it is",
            errno_text(&e)
        )),
    }
}

/// Deletes the initramfs contents (they would pin RAM for the machine's lifetime), as
/// busybox's switch_root does. Only on a ramfs/tmpfs root, and never crossing into another
/// filesystem: `/sysroot` and everything mounted is skipped by device number.
fn free_initramfs() {
    match sys::fs_type("/") {
        Ok(t) if t == sys::RAMFS_MAGIC || t == sys::TMPFS_MAGIC => {}
        _ => return,
    }
    let Ok(root_dev) = fs::symlink_metadata("/").map(|m| m.dev()) else {
        return;
    };
    if let Ok(entries) = fs::read_dir("/") {
        for entry in entries.flatten() {
            remove_tree(&entry.path(), root_dev);
        }
    }
}

fn remove_tree(path: &Path, root_dev: u64) {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return;
    };
    if meta.dev() != root_dev {
        return;
    }
    if meta.is_dir() {
        if let Ok(entries) = fs::read_dir(path) {
            for entry in entries.flatten() {
                remove_tree(&entry.path(), root_dev);
            }
        }
        if path != Path::new(SYSROOT) {
            let _ = fs::remove_dir(path);
        }
    } else {
        let _ = fs::remove_file(path);
    }
}

fn switch_root() -> Result<(), Fatal> {
    std::env::set_current_dir(SYSROOT).map_err(|e| Fatal::io(format!("chdir {SYSROOT}"), &e))?;
    sys::move_mount(".", "/").map_err(|e| Fatal::io(format!("moving {SYSROOT} to /"), &e))?;
    std::os::unix::fs::chroot(".").map_err(|e| Fatal::io("chroot into the new root", &e))?;
    std::env::set_current_dir("/").map_err(|e| Fatal::io("chdir / in the new root", &e))
}

fn exec_init(cfg: &BootConfig) -> Fatal {
    say(format_args!("switching root, starting {}", cfg.init));
    let e = Command::new(&cfg.init)
        .arg0(&cfg.init)
        .args(std::env::args_os().skip(1))
        .exec();
    let mut f = Fatal::io(format!("starting {}", cfg.init), &e);
    if e.kind() == io::ErrorKind::NotFound {
        f = f.hint(format!(
            "{} (or its interpreter) is not in this usr slot; is init= right?",
            cfg.init
        ));
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_hints() {
        assert!(mount_hint(Some(libc::ENODEV), "squashfs")
            .unwrap()
            .contains("squashfs"));
        assert!(mount_hint(Some(libc::EINVAL), "ext4")
            .unwrap()
            .contains("not a ext4"));
        assert_eq!(mount_hint(Some(libc::EPERM), "ext4"), None);
        assert_eq!(mount_hint(None, "ext4"), None);
    }

    #[test]
    fn fatal_display() {
        let f = Fatal::io("mounting x", &io::Error::from_raw_os_error(libc::ENOENT)).hint("h");
        assert_eq!(f.to_string(), "mounting x: No such file or directory");
        assert_eq!(f.hints, ["h"]);
    }
}
