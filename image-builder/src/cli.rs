//! The command line: one clap struct per subcommand, each handed whole to its function in
//! [`crate::commands`]. Nothing here does work.

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::{Args, Parser, Subcommand};

use crate::inputs::InputSource;
use crate::run;
use crate::spec::{self, Output};

#[derive(Parser)]
#[command(
    name = "image-builder",
    version,
    about = "Build reproducible A/B OS disk images from pinned Debian packages"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Subcommand)]
pub enum Cmd {
    /// Pin every input package of a spec in its lockfile (SPEC with .lock instead of .yaml):
    /// the listed packages, or their dependency closure with `resolve: {mode: closure}`.
    Lock(LockArgs),
    /// Download the locked packages into a pool directory with the host's apt-get.
    Fetch(FetchArgs),
    /// Build the disk image and artifacts of a spec into DIR.
    Build(BuildArgs),
    /// Show a disk's partition table, slots and boot entries.
    Inspect(InspectArgs),
    /// Generate an ed25519 key (root or signing) into FILE.
    Keygen(KeygenArgs),
    /// Create a channel repository trusting the given signing keys, signed by the root key.
    InitRepo(InitRepoArgs),
    /// Write BUILD_DIR/payload: the slot image, kernel, initramfs, the compressed disk image
    /// (disk.img.zst) and release.json.
    Payload(PayloadArgs),
    /// Publish a build as the current release of a channel.
    Publish(PublishArgs),
    /// Make the current release of one channel (same bytes) the release of another.
    Promote(PromoteArgs),
    /// Add a build's Vagrant boxes to a channel's box catalog, the JSON that
    /// `vagrant box add <catalog URL>` and `vagrant box update` follow.
    VagrantCatalog(VagrantCatalogArgs),
    /// Upload a build's AMI disk to an EBS snapshot (EBS direct APIs) and register the AMI.
    /// Credentials from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN).
    AmiUpload(AmiUploadArgs),
    /// Serve a repository over HTTP (GET, HEAD, byte ranges) for local use.
    Serve(ServeArgs),
    /// Check a Container Linux cloud-config (user-data) file: prints `FILE:LINE: kind: message`
    /// for each finding; exits 1 if any is an error (warnings and infos are allowed).
    ValidateConfig(ValidateConfigArgs),
    /// Boot a disk in QEMU with the serial console on stdout.
    Run(RunArgs),
}

#[derive(Args)]
pub struct LockArgs {
    pub spec: PathBuf,
    #[command(flatten)]
    pub source: SourceArgs,
    /// First download into the pool with apt-get: the newest version of each package, or
    /// the closure resolved from the host's apt lists.
    #[arg(long)]
    pub download: bool,
    /// The host's apt lists (closure with `resolve.index: apt-lists`, or `--download`).
    #[arg(long, default_value = rootfs::apt::lists::HOST_LISTS)]
    pub apt_lists: PathBuf,
}

#[derive(Args)]
pub struct FetchArgs {
    pub spec: PathBuf,
    #[arg(long, default_value = "pool")]
    pub pool: PathBuf,
}

#[derive(Args)]
pub struct BuildArgs {
    pub spec: PathBuf,
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub source: SourceArgs,
    /// The static initramfs /init (default: target/x86_64-unknown-linux-gnu/release/init
    /// under the repository root).
    #[arg(long)]
    pub init: Option<PathBuf>,
    /// Platform artifacts to write instead of the spec's `outputs:`, comma-separated: raw,
    /// qcow2, vmdk, vhd, ova, vagrant-virtualbox, vagrant-libvirt, ami, pxe, iso.
    #[arg(long, value_delimiter = ',', num_args = 1..)]
    pub outputs: Option<Vec<Output>>,
    /// Rebuild even if nothing changed.
    #[arg(long)]
    pub force: bool,
}

#[derive(Args)]
pub struct InspectArgs {
    pub disk: PathBuf,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct KeygenArgs {
    pub file: PathBuf,
}

#[derive(Args)]
pub struct InitRepoArgs {
    #[arg(long)]
    pub repo: PathBuf,
    #[arg(long)]
    pub root_key: PathBuf,
    #[arg(long = "signing-key", required = true)]
    pub signing_keys: Vec<PathBuf>,
    /// Days until the root document and keys expire (1 to 36500).
    #[arg(long, default_value_t = 365, value_parser = expires_days)]
    pub expires_days: u64,
}

#[derive(Args)]
pub struct PayloadArgs {
    pub build_dir: PathBuf,
}

#[derive(Args)]
pub struct PublishArgs {
    /// The repository directory.
    #[arg(long)]
    pub repo: PathBuf,
    #[arg(long)]
    pub channel: String,
    /// A signing key listed in the repository's keys.json.
    #[arg(long)]
    pub key: PathBuf,
    /// Days until the manifest expires (machines refuse an expired manifest).
    #[arg(long, default_value_t = 30, value_parser = expires_days)]
    pub expires_days: u64,
    /// Machines never install a version below this one from this manifest.
    #[arg(long)]
    pub version_floor: Option<String>,
    /// Publish even if the channel already has the same or a newer version.
    #[arg(long)]
    pub force: bool,
    /// The build output directory (holding build.json).
    pub build_dir: PathBuf,
}

#[derive(Args)]
pub struct PromoteArgs {
    #[arg(long)]
    pub repo: PathBuf,
    #[arg(long)]
    pub from: String,
    #[arg(long)]
    pub to: String,
    #[arg(long)]
    pub key: PathBuf,
    pub version: String,
}

#[derive(Args)]
pub struct VagrantCatalogArgs {
    /// The build output directory (build.json and the .box files).
    pub build_dir: PathBuf,
    /// Where the .box files are served from: the catalog's URLs are BASE_URL/<file>.
    #[arg(long)]
    pub base_url: String,
    /// The channel's catalog file: created if missing, else this version is added to it.
    #[arg(long)]
    pub catalog: PathBuf,
    /// The channel (default: the build's `os.channel`).
    #[arg(long)]
    pub channel: Option<String>,
}

#[derive(Args)]
pub struct AmiUploadArgs {
    /// The build output directory (build.json, with the `ami` output).
    pub build_dir: PathBuf,
    /// AWS region [default: AWS_REGION, else AWS_DEFAULT_REGION].
    #[arg(long)]
    pub region: Option<String>,
    /// One endpoint for EBS and EC2 instead of AWS's (an emulator) [default: AWS_ENDPOINT_URL].
    #[arg(long)]
    pub endpoint_url: Option<String>,
    /// AMI name instead of the build's (`<os>-<channel>-<version>-hvm`).
    #[arg(long)]
    pub name: Option<String>,
    /// Only make the snapshot; do not register an AMI.
    #[arg(long)]
    pub no_register: bool,
    /// Blocks uploaded at a time (1-64).
    #[arg(long, default_value_t = 8)]
    pub threads: usize,
}

#[derive(Args)]
pub struct ServeArgs {
    pub repo: PathBuf,
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: String,
}

#[derive(Args)]
pub struct ValidateConfigArgs {
    pub file: PathBuf,
}

#[derive(Args)]
pub struct RunArgs {
    /// The disk to boot (optional with --pxe: then it is only attached).
    pub disk: Option<PathBuf>,
    /// Boot from the network: serve this directory (a build's output) over TFTP and boot
    /// its iPXE script through the NIC's iPXE ROM.
    #[arg(long, value_name = "DIR")]
    pub pxe: Option<PathBuf>,
    /// With --pxe: the DHCP boot file instead of the build's `<os>_<version>_pxe.ipxe`; a
    /// name in DIR or a URL (the host is 10.0.2.2 from the guest).
    #[arg(long, requires = "pxe")]
    pub bootfile: Option<String>,
    /// Boot this ISO (the `iso` output) from a CD-ROM drive; the disk, if any, is only
    /// attached. (To boot it as a USB stick, give it as the disk with --disk-bus usb.)
    #[arg(long, value_name = "ISO", conflicts_with = "pxe")]
    pub cdrom: Option<PathBuf>,
    /// uefi (OVMF) or bios (SeaBIOS).
    #[arg(long, default_value = "uefi")]
    pub firmware: run::Firmware,
    /// Exit 0 as soon as a console line matches this regular expression.
    #[arg(long)]
    pub expect: Option<String>,
    /// Give up (exit 1, console tail on stderr) after this many seconds.
    #[arg(long)]
    pub timeout: Option<u64>,
    /// Disk image format for QEMU.
    #[arg(long, default_value = "raw")]
    pub format: String,
    /// Chipset: q35 (ICH9, PCIe) or pc (i440fx with PIIX IDE).
    #[arg(long, default_value = "q35")]
    pub machine: run::Machine,
    /// Disk controller: virtio, virtio-scsi (VirtualBox boxes), pvscsi or mptsas (VMware),
    /// ahci, ide (with --machine pc), nvme, megasas, usb (a stick on xHCI), lsi (53C895A).
    /// OVMF cannot boot from pvscsi or lsi: add -kernel/-initrd/-append after `--`.
    #[arg(long, default_value = "virtio")]
    pub disk_bus: run::DiskBus,
    /// Network card: virtio, e1000, e1000e, igb, vmxnet3 or rtl8139 (with --pxe, the one
    /// that boots, through its iPXE ROM).
    #[arg(long, default_value = "virtio")]
    pub nic: run::Nic,
    /// MiB of RAM [default: 512, 1024 with --pxe or --cdrom: /usr and / are in RAM].
    #[arg(long)]
    pub memory: Option<u32>,
    /// Discard writes to the disk.
    #[arg(long)]
    pub snapshot: bool,
    /// Forward a host port on 127.0.0.1 to the guest: [tcp:|udp:]HOSTPORT:GUESTPORT, e.g.
    /// tcp:2222:22 for `ssh -p 2222 core@127.0.0.1` (repeatable).
    #[arg(long = "forward", value_name = "SPEC")]
    pub forwards: Vec<run::Forward>,
    /// Extra arguments for qemu-system-x86_64 (after `--`).
    #[arg(last = true)]
    pub qemu_args: Vec<String>,
}

/// Where input packages come from.
#[derive(Args)]
pub struct SourceArgs {
    /// A directory of .deb files (default: `pool` under the repository root).
    #[arg(long, conflicts_with = "repo")]
    pub pool: Option<PathBuf>,
    /// An HTTP apt repository base URL (the directory holding dists/ and pool/).
    #[arg(long)]
    pub repo: Option<String>,
    #[arg(long, default_value = "bookworm")]
    pub suite: String,
    #[arg(long, default_value = "main")]
    pub component: String,
    /// Download cache for --repo (content-addressed).
    #[arg(long)]
    pub cache: Option<PathBuf>,
}

impl SourceArgs {
    /// The pool directory: `--pool`, else `pool` under the spec's repository root.
    pub fn pool_dir(&self, spec: &Path) -> PathBuf {
        self.pool
            .clone()
            .unwrap_or_else(|| spec::repo_root(spec).join("pool"))
    }

    /// The package source the arguments name.
    pub fn source(&self, spec: &Path) -> Result<InputSource> {
        match &self.repo {
            Some(url) => {
                let cache = self
                    .cache
                    .clone()
                    .unwrap_or_else(|| spec::repo_root(spec).join("cache"));
                InputSource::repo(url, &self.suite, &self.component, &cache)
            }
            None => Ok(InputSource::pool(&self.pool_dir(spec))),
        }
    }
}

/// `--expires-days`: 1 to 36500 (a hundred years), so the expiry never wraps around.
fn expires_days(s: &str) -> Result<u64, String> {
    let days: u64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number of days"))?;
    if (1..=MAX_EXPIRES_DAYS).contains(&days) {
        Ok(days)
    } else {
        Err(format!(
            "{days} days is out of range (1..={MAX_EXPIRES_DAYS})"
        ))
    }
}

/// The longest `--expires-days`.
pub const MAX_EXPIRES_DAYS: u64 = 36_500;
