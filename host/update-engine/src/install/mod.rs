//! `coreos-install` (issue 17): writes the current release of a channel onto a disk, as Container
//! Linux's `coreos-install -d /dev/sda -C stable -c cloud-config.yml` did. The same binary
//! answers to `coreos-install`, to any name ending in `-install` (`minimal-install`), and to
//! `update-engine install`, with Container Linux's flags ([`InstallArgs`]).
//!
//! In order, and nothing is written before the last of the checks:
//!
//! 1. `-c`: the cloud-config is validated (the `cloudconfig` crate, as `coreos-cloudinit
//!    --validate`); errors refuse the install, with their lines;
//! 2. the channel (`-C`, else `GROUP` of update.conf) and the repository (`-b`, else `SERVER`);
//!    keys.json and the manifest are verified exactly as the engine verifies them
//!    ([`crate::engine::fetch_manifest`]: the running system's root keys, signature, expiry,
//!    channel, what the engine saw before), then release.json ([`crate::engine::fetch_release_info`],
//!    the running system's OS id). `-V` other than `current` must equal the manifest's version:
//!    a repository serves only each channel's current manifest;
//! 3. the disk image: [`disk_image`] (the manifest's `disk.img.zst`, the raw size and sha256
//!    from release.json's `disk`);
//! 4. the target: `-d DEVICE` or `-s` (the smallest free disk), refused by [`disks::check`]; a
//!    regular file given to `-d` is written as a disk image file (no disk checks; it must
//!    already be as large as the image, unless `--force` and blank);
//! 5. [`pipeline::write_image`] from the repository (the engine's HTTP client, its retry policy
//!    and resume) or from `-f FILE`, verified against the manifest all the same;
//! 6. with `-c`, `-n` or `-o`, on a block device: the kernel re-reads the partition table,
//!    partition 9 (ROOT, ext4) of the GPT just written is mounted on a temporary directory and
//!    [`root::customize`] writes `var/lib/coreos-install/user_data` (0600, read by
//!    coreos-cloudinit's `install` source on every boot), `var/lib/coreos-install/oem` (the `-o`
//!    id, one line: recorded, nothing else reads it yet) and with `-n` the live system's
//!    `/etc/systemd/network/*` into `etc/systemd/network/`; unmounted, synced.

pub mod disks;
pub mod pipeline;
pub mod root;

use std::fs::{File, OpenOptions};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use channels::{Manifest, RootKeys};
use clap::Args;

pub use pipeline::{write_image, Device, DiskImage, PipelineError, HEAD as HEAD_BYTES};

use crate::config::{Config, Paths};
use crate::engine::{fetch_manifest, fetch_release_info, ReleaseInfo};
use crate::http::{Client, Policy};
use crate::state::State;

/// The compressed disk image's payload name in the signed manifest.
pub use channels::release::DISK_IMAGE as DISK_IMG_ZST;
/// The name the binary answers to as the installer (also any name ending in `-install`).
pub const INSTALL_NAME: &str = "coreos-install";

/// Whether argv[0] names the installer.
pub fn is_installer(argv0: &Path) -> bool {
    argv0
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.ends_with("-install"))
}

/// Container Linux's `coreos-install` flags.
#[derive(Debug, Clone, Default, PartialEq, Eq, Args)]
pub struct InstallArgs {
    /// The disk to write (/dev/sda, /dev/disk/by-id/…), or a regular file (a disk image).
    #[arg(short = 'd', value_name = "DEVICE")]
    pub device: Option<PathBuf>,
    /// The channel (default: GROUP of update.conf).
    #[arg(short = 'C', value_name = "CHANNEL")]
    pub channel: Option<String>,
    /// The version: `current` (what the channel's manifest says), or that same version.
    #[arg(short = 'V', value_name = "VERSION", default_value = "current")]
    pub version: String,
    /// The repository's base URL (default: SERVER of update.conf).
    #[arg(short = 'b', value_name = "BASE_URL")]
    pub base_url: Option<String>,
    /// A cloud-config to install (validated first), read on every boot of the new system.
    #[arg(short = 'c', value_name = "CLOUD_CONFIG")]
    pub cloud_config: Option<PathBuf>,
    /// The OEM id to record on the installed system (/var/lib/coreos-install/oem).
    #[arg(short = 'o', value_name = "OEM")]
    pub oem: Option<String>,
    /// A local disk.img.zst instead of the download (still verified against the manifest).
    #[arg(short = 'f', value_name = "IMAGE")]
    pub image_file: Option<PathBuf>,
    /// Copy this system's network units (/etc/systemd/network/*) to the installed system.
    #[arg(short = 'n')]
    pub network: bool,
    /// Install to the smallest unused disk.
    #[arg(short = 's')]
    pub smallest: bool,
    /// Install to a disk smaller than the image, if it is blank (first MiB zero).
    #[arg(long)]
    pub force: bool,
}

/// The disk image of a verified release: release.json's `disk` (the raw image's size and
/// sha256), its compressed file as the signed manifest lists it (and release.json must agree).
pub fn disk_image(manifest: &Manifest, info: &ReleaseInfo) -> Result<DiskImage> {
    let disk = info.disk.as_ref().ok_or_else(|| {
        anyhow!(
            "release {} of channel {} has no disk image (release.json has no disk): it was \
             published before releases carried one; it can be updated to, not installed",
            manifest.version,
            manifest.channel
        )
    })?;
    let compressed = manifest.payloads.get(&disk.file).ok_or_else(|| {
        anyhow!(
            "release {}: the signed manifest lists no {} (release.json's disk image)",
            manifest.version,
            disk.file
        )
    })?;
    if compressed.size != disk.compressed.size || compressed.sha256 != disk.compressed.sha256 {
        bail!(
            "release {}: release.json's {} ({} bytes, sha256 {}) is not the manifest's ({} \
             bytes, sha256 {})",
            manifest.version,
            disk.file,
            disk.compressed.size,
            disk.compressed.sha256,
            compressed.size,
            compressed.sha256
        );
    }
    Ok(DiskImage {
        compressed: compressed.clone(),
        raw_size: disk.raw.size,
        raw_sha256: disk.raw.sha256.clone(),
    })
}

/// Validates a cloud-config as `coreos-cloudinit --validate` does; errors refuse it.
pub fn check_cloud_config(path: &Path, bytes: &[u8]) -> Result<()> {
    let report = cloudconfig::validate(bytes);
    let errors: Vec<String> = report
        .entries()
        .iter()
        .filter(|e| e.kind == cloudconfig::Kind::Error)
        .map(ToString::to_string)
        .collect();
    if !errors.is_empty() {
        bail!(
            "refused: {} is not a valid cloud-config: {}",
            path.display(),
            errors.join("; ")
        );
    }
    Ok(())
}

/// Where the image goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A whole disk of `/sys/block`.
    Disk(disks::Disk),
    /// A regular file.
    File(PathBuf),
}

impl Target {
    /// What to open.
    pub fn path(&self) -> PathBuf {
        match self {
            Target::Disk(d) => d.path(),
            Target::File(p) => p.clone(),
        }
    }
}

/// Resolves `-d`/`-s` under `root` (sysfs, proc, dev) and refuses what may not be written.
pub fn choose_target(root: &Path, args: &InstallArgs, need: u64) -> Result<Target> {
    let mounts = || disks::read_mounts(root);
    match (&args.device, args.smallest) {
        (Some(_), true) => bail!("give either -d DEVICE or -s, not both"),
        (None, false) => bail!("no target: give -d DEVICE (or -s for the smallest unused disk)"),
        (None, true) => Ok(Target::Disk(disks::pick_smallest(
            &disks::scan(root)?,
            &mounts()?,
            need,
        )?)),
        (Some(dev), false) => {
            let rooted = root.join(dev.strip_prefix("/").unwrap_or(dev));
            let disk = disks::disk_name(root, dev).and_then(|n| disks::read_disk(root, &n));
            if let Some(disk) = disk {
                disks::check(&disk, &mounts()?, need, args.force)?;
                return Ok(Target::Disk(disk));
            }
            if let Some(name) = disks::disk_name(root, dev) {
                if root.join("sys/class/block").join(&name).exists() {
                    bail!(
                        "{}: {name} is not a whole disk (a partition? give its disk)",
                        dev.display()
                    );
                }
            }
            if std::fs::metadata(&rooted).is_ok_and(|m| m.is_file()) {
                return Ok(Target::File(rooted));
            }
            bail!(
                "{}: not a disk in /sys/block and not an existing regular file",
                dev.display()
            )
        }
    }
}

/// What the install needs besides its arguments.
pub struct Env<'a> {
    /// The running system's files (update.conf, root keys, os-release, state).
    pub paths: &'a Paths,
    /// Its update.conf.
    pub config: &'a Config,
    /// Its root keys.
    pub root_keys: &'a RootKeys,
    /// Download retries.
    pub policy: Policy,
    /// Now (seconds since the epoch), for expiry.
    pub now: u64,
    /// Progress: (raw bytes written, total).
    pub progress: &'a mut dyn FnMut(u64, u64),
    /// Messages for the operator.
    pub say: &'a mut dyn FnMut(&str),
}

/// What an install did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    /// The version written.
    pub version: String,
    /// Where.
    pub target: Target,
    /// Raw bytes written.
    pub bytes: u64,
}

/// Runs the install (module docs) up to and including the verified image on the target;
/// [`customize_installed`] does step 6.
pub fn install(args: &InstallArgs, env: &mut Env) -> Result<Installed> {
    let root = env.paths.root.clone();
    if let Some(path) = &args.cloud_config {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        check_cloud_config(path, &bytes)?;
    }
    let channel = args
        .channel
        .clone()
        .unwrap_or_else(|| env.config.group.clone());
    let base = args
        .base_url
        .clone()
        .or_else(|| env.config.server.clone())
        .ok_or_else(|| anyhow!("no repository: give -b BASE_URL (update.conf has no SERVER)"))?;
    let os = crate::host::read_os_release(env.paths)?;
    let client = Client::new(&base, env.policy)?;
    // The engine's record of what it accepted before (replays refused), not written back.
    let mut state = State::load(&env.paths.state()).unwrap_or_default();
    let manifest = fetch_manifest(&client, env.root_keys, &channel, &mut state, env.now)
        .with_context(|| format!("verifying channel {channel} of {base}"))?;
    if args.version != "current" && args.version != manifest.version {
        bail!(
            "refused: -V {}: channel {channel} offers {} (a repository serves only the current \
             release of each channel; use -V current or -V {})",
            args.version,
            manifest.version,
            manifest.version
        );
    }
    let info = fetch_release_info(&client, &manifest, &os.id)?;
    let image = disk_image(&manifest, &info)?;
    let target = choose_target(&root, args, image.raw_size)?;
    (env.say)(&format!(
        "installing {} {} (channel {channel}) onto {}",
        info.os_name,
        manifest.version,
        target.path().display()
    ));
    let mut options = OpenOptions::new();
    options.read(true).write(true);
    if let Target::Disk(_) = target {
        // An exclusive open: the kernel refuses it (EBUSY) while anything on the disk is
        // mounted or held, whatever mountinfo said a moment ago.
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_EXCL);
    }
    let mut device = options
        .open(target.path())
        .with_context(|| format!("opening {} for writing", target.path().display()))?;
    let written = match &args.image_file {
        Some(file) => {
            let src = File::open(file).with_context(|| format!("opening {}", file.display()))?;
            write_image(
                std::io::BufReader::with_capacity(1 << 20, src),
                &image,
                &mut device,
                args.force,
                env.progress,
            )
        }
        None => {
            let url = client.url(&image.compressed.path());
            let src = client.payload_reader(DISK_IMG_ZST, &image.compressed, &url);
            write_image(src, &image, &mut device, args.force, env.progress)
        }
    }
    .with_context(|| format!("installing onto {}", target.path().display()))?;
    Ok(Installed {
        version: manifest.version,
        target,
        bytes: written.raw_bytes,
    })
}

/// What step 6 writes, if anything.
pub fn customization(args: &InstallArgs, root: &Path) -> Result<Option<root::Customization>> {
    let user_data = match &args.cloud_config {
        Some(p) => Some(std::fs::read(p).with_context(|| format!("reading {}", p.display()))?),
        None => None,
    };
    let network_units = if args.network {
        root::network_units(&root.join(root::NETWORK_DIR))?
    } else {
        Vec::new()
    };
    let c = root::Customization {
        user_data,
        oem: args.oem.clone(),
        network_units,
    };
    Ok((!c.is_empty()).then_some(c))
}

/// After the image is on a disk: the kernel re-reads its partition table (a file has none).
pub fn reread_installed(installed: &Installed) -> Result<()> {
    match &installed.target {
        Target::Disk(disk) => root::reread_disk(&disk.path()),
        Target::File(_) => Ok(()),
    }
}

/// Step 6 on the installed target (block devices only).
pub fn customize_installed(installed: &Installed, c: &root::Customization) -> Result<()> {
    match &installed.target {
        Target::Disk(disk) => root::customize_disk(&disk.path(), &disk.name, c),
        Target::File(p) => bail!(
            "{} is a file, not a disk: -c, -n and -o need a block device (the kernel knows no \
             partitions in a file)",
            p.display()
        ),
    }
}

/// The progress reporter: a bar on a terminal, else a line every 5%.
pub fn progress_printer() -> Box<dyn FnMut(u64, u64)> {
    if std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "writing [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        Box::new(move |done, total| {
            bar.set_length(total);
            bar.set_position(done);
            if done >= total {
                bar.finish_and_clear();
            }
        })
    } else {
        let mut last = None;
        Box::new(move |done, total| {
            if let Some(line) = progress_line(done, total, &mut last) {
                eprintln!("{line}");
            }
        })
    }
}

/// `wrote 128 MiB of 1024 MiB` when `done` crosses another 5% of `total` (`last`: the last
/// step printed).
pub fn progress_line(done: u64, total: u64, last: &mut Option<u64>) -> Option<String> {
    let step = (done.saturating_mul(20)) / total.max(1);
    if *last == Some(step) {
        return None;
    }
    *last = Some(step);
    Some(format!("wrote {} MiB of {} MiB", done >> 20, total >> 20))
}

#[cfg(test)]
mod tests;
