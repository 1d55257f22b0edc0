//! The image spec: a strictly typed YAML document (`images/*.yaml`).
//!
//! Unknown keys, wrong types and impossible values are errors that name the file, the line and
//! the key. Values that have a shape (versions, sizes, package names, paths) are newtypes whose
//! `Deserialize` checks them, so the YAML parser reports where a bad value sits.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

pub use contract::update_conf::RebootStrategy;
use serde::{Deserialize, Deserializer, Serialize};
use serde_saphyr::Spanned;

/// A whole image spec.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageSpec {
    pub os: Os,
    /// Seconds since the epoch; every timestamp in every output is clamped to it.
    pub source_date_epoch: u64,
    pub kernel: Kernel,
    pub bootloader: Bootloader,
    /// Further binary packages (exact names; the lockfile pins their versions).
    #[serde(default)]
    pub packages: Vec<Spanned<PackageName>>,
    /// How `image-builder lock` turns the packages into pins; absent: `mode: exact`.
    #[serde(default)]
    pub resolve: ResolveSpec,
    /// Files copied from the repository (typically `services/...`) into the image.
    #[serde(default)]
    pub files: Vec<FileSpec>,
    /// Unit files from the repository, installed under `/usr/lib/systemd/system`.
    #[serde(default)]
    pub units: Vec<UnitSpec>,
    /// Symlinks to create, grouped by target (e.g. busybox applets).
    #[serde(default)]
    pub symlinks: Vec<SymlinkSpec>,
    pub partitions: Partitions,
    /// Platform artifacts written next to `disk.raw` (see [`Output`]).
    #[serde(default = "default_outputs")]
    pub outputs: Vec<Spanned<Output>>,
    /// The on-host update engine and its defaults; absent: the image does not update itself.
    #[serde(default)]
    pub update: Option<UpdateSpec>,
    /// Settings of the `pxe` output (and of the `iso` output, which boots the same line).
    #[serde(default)]
    pub pxe: PxeSpec,
    /// Settings of the `iso` output.
    #[serde(default)]
    pub iso: IsoSpec,
    /// Settings of the Vagrant outputs' cluster files.
    #[serde(default)]
    pub vagrant: VagrantSpec,
}

/// `vagrant:` — what the cluster folder next to the boxes holds besides the Vagrantfile.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VagrantSpec {
    /// The cluster's `user-data` (an ERB template the Vagrantfile renders per machine),
    /// relative to the repository root; absent: the build writes none.
    #[serde(default)]
    pub user_data: Option<RelPath>,
}

/// `pxe:` — what the network-boot files add to `kernel.cmdline`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PxeSpec {
    /// Appended to the kernel line of the iPXE script and the pxelinux example, e.g.
    /// `coreos.autologin`, `cloud-config-url=http://...`, `sshkey="..."`.
    #[serde(default)]
    pub kernel_args: Vec<String>,
}

/// `iso:` — the live medium's volume label.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IsoSpec {
    /// The ISO 9660 volume id (1-32 of `A-Z 0-9 _`, what `blkid` shows as LABEL); absent:
    /// `os.id` and `os.version` in capitals, e.g. `MINIMAL_1_0_0`.
    #[serde(default)]
    pub label: Option<String>,
}

/// The ISO's volume id: `iso.label`, or one made from `os.id` and `os.version`. Pure.
pub fn iso_label(spec: &ImageSpec) -> String {
    if let Some(label) = &spec.iso.label {
        return label.clone();
    }
    let mut label: String = format!("{}_{}", spec.os.id.0, spec.os.version.0)
        .chars()
        .map(|c| match c.to_ascii_uppercase() {
            c @ ('A'..='Z' | '0'..='9') => c,
            _ => '_',
        })
        .collect();
    label.truncate(32);
    label
}

/// `resolve:` — exact pins of the listed packages, or their dependency closure.
///
/// Recorded as is in a closure lock, so a build notices when these settings changed.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ResolveSpec {
    #[serde(default)]
    pub mode: ResolveMode,
    /// Also pull every `Essential: yes` package (closure only).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub essential: bool,
    /// Providers of virtual packages to choose first, in this order (closure only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prefer: Vec<PackageName>,
    /// Packages never pulled in: the image provides what they do otherwise, and dependencies
    /// on them count as satisfied (closure only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<PackageName>,
    /// Where the Packages index comes from (closure only).
    #[serde(default, skip_serializing_if = "IndexSource::is_default")]
    pub index: IndexSource,
}

/// `resolve.mode`.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum ResolveMode {
    /// Pin exactly the listed packages (their dependencies are the spec's business).
    #[default]
    Exact,
    /// Pin the listed packages and everything they depend on.
    Closure,
}

/// `resolve.index`.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum IndexSource {
    /// The source being locked from: the control files of the `--pool` .debs, or the
    /// `--repo`'s Packages.
    #[default]
    Source,
    /// The host's apt lists (`/var/lib/apt/lists`), for a `--pool` that `image-builder fetch`
    /// then fills.
    AptLists,
}

impl IndexSource {
    fn is_default(&self) -> bool {
        *self == IndexSource::Source
    }
}

/// `update:` — installs the update engine with `/usr/share/update-engine/update.conf`
/// (Container Linux format) and, when given, the repository's root keys. Without `root_keys`
/// a machine trusts `/etc/update-engine/root.json` from its config (cloud-config `write_files`)
/// and, until it has one, only marks its booted slot good; without `server` its config names
/// the server (`coreos.update.server`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateSpec {
    /// Repository base URL (`SERVER=`).
    #[serde(default)]
    pub server: Option<ServerUrl>,
    /// Channel (`GROUP=`); defaults to `os.channel`.
    #[serde(default)]
    pub group: Option<OsId>,
    /// `REBOOT_STRATEGY=`.
    #[serde(default = "default_strategy")]
    pub reboot_strategy: RebootStrategy,
    /// The repository's `root.json` (public root keys), relative to the repository root.
    #[serde(default)]
    pub root_keys: Option<RelPath>,
    /// The static `update-engine` binary, relative to the repository root.
    pub engine: RelPath,
    /// The etcd reboot lock (`etcd-lock`, `best-effort`): the `LOCKSMITHD_*` keys.
    #[serde(default)]
    pub locksmith: Option<LocksmithSpec>,
    /// The FleetLock server (`fleetlock`): `FLEETLOCK_URL`, `FLEETLOCK_GROUP`.
    #[serde(default)]
    pub fleetlock: Option<FleetLockSpec>,
}

/// `update.locksmith:` — Container Linux's `coreos.locksmith` settings as image defaults.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocksmithSpec {
    /// etcd client URLs (`LOCKSMITHD_ENDPOINT`).
    #[serde(default)]
    pub endpoints: Vec<EtcdEndpoint>,
    /// The locksmith group (`LOCKSMITHD_GROUP`).
    #[serde(default)]
    pub group: Option<ConfValue>,
    /// Reboot window start, e.g. `Thu 23:00` (`LOCKSMITHD_REBOOT_WINDOW_START`).
    #[serde(default)]
    pub window_start: Option<WindowStart>,
    /// Reboot window length, e.g. `1h30m` (`LOCKSMITHD_REBOOT_WINDOW_LENGTH`).
    #[serde(default)]
    pub window_length: Option<WindowLength>,
}

/// `update.fleetlock:` — the FleetLock server.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetLockSpec {
    /// Its base URL (`FLEETLOCK_URL`).
    pub url: FleetLockUrl,
    /// The group (`FLEETLOCK_GROUP`).
    #[serde(default)]
    pub group: Option<FleetLockGroup>,
}

fn default_strategy() -> RebootStrategy {
    RebootStrategy::Reboot
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Os {
    /// Human-readable name (`NAME=` in os-release, the boot entries' titles).
    pub name: DisplayName,
    /// Lower-case identifier (`ID=`), also used in ESP paths and boot entry names.
    pub id: OsId,
    pub version: SemVer,
    /// Release channel: alpha, beta, stable or any name of the same shape.
    pub channel: OsId,
    /// Operating systems this one is like (`ID_LIKE=`), e.g. `[coreos]`: Vagrant then treats
    /// the machines as Container Linux guests (hostname and networks set as cloud-config).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub id_like: Vec<OsId>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Kernel {
    pub package: Spanned<PackageName>,
    /// Kernel command line; the builder appends `usr=PARTUUID=…` for each slot.
    #[serde(deserialize_with = "kernel_cmdline")]
    pub cmdline: String,
    /// Modules the initramfs carries to reach /usr (their dependencies are added); `/init`
    /// loads a device's driver only when the machine has such a device.
    pub initramfs_modules: Vec<NonEmpty>,
    /// Which of the kernel's modules /usr keeps (all unless excluded).
    #[serde(default)]
    pub modules: ModuleRules,
}

/// `kernel.cmdline`, checked: the `usr=PARTUUID=` each boot entry appends must reach `/init`,
/// which reads the line with `contract::cmdline` (so does this check). No line break or other
/// control character (the entry's `options` line would end there), no unbalanced `"` (it would
/// quote `usr=`), no `--` (what follows it is init's, not the kernel's), nothing `/init` refuses.
fn kernel_cmdline<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    use contract::cmdline::{self, CmdlineError, DeviceSpec, UsrSpec};
    let s = String::deserialize(d)?;
    if let Some(c) = s.chars().find(|c| c.is_control()) {
        let why = format!("{s:?}: {c:?} cannot be in a kernel command line (it must fit one line of the boot entry)");
        return Err(serde::de::Error::custom(why));
    }
    const PROBE: &str = "00000000-0000-0000-0000-000000000000";
    match cmdline::parse(&format!("{s} usr=PARTUUID={PROBE}")).map(|c| c.usr) {
        Ok(UsrSpec::Device(DeviceSpec::PartUuid(u))) if u == PROBE => Ok(s),
        Ok(_) | Err(CmdlineError::MissingUsr) => Err(serde::de::Error::custom(format!(
            "{s:?}: an unbalanced '\"' or a '--' would hide the usr= each boot entry appends from /init"
        ))),
        Err(e) => Err(serde::de::Error::custom(format!("{s:?}: /init would refuse it: {e}"))),
    }
}

/// `kernel.modules`: subtrees of the kernel's module directory (relative to its `kernel/`,
/// e.g. `sound/`, `drivers/media/`, or one `.ko`; `*` is all of them). A module is kept unless an `exclude` entry
/// covers it, or when an `include` entry does (include wins, as in mkosi); the modules that
/// kept ones depend on are always kept; depmod's indexes describe what is left.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModuleRules {
    #[serde(default)]
    pub include: Vec<ModuleSubtree>,
    #[serde(default)]
    pub exclude: Vec<ModuleSubtree>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bootloader {
    /// Package that ships `systemd-bootx64.efi` (`systemd-boot-efi`).
    pub package: Spanned<PackageName>,
    /// Initial boot counter of a new slot's entry (`+N-0`).
    #[serde(default = "default_tries")]
    pub tries: Tries,
    /// Menu timeout in seconds (`timeout` in loader.conf, and GRUB's).
    #[serde(default)]
    pub timeout: u32,
    /// Package that ships GRUB for i386-pc (`grub-pc-bin`): the disk also boots on legacy BIOS,
    /// with the same slots and boot counting. Without it the disk boots with UEFI only.
    #[serde(default)]
    pub bios: Option<Spanned<PackageName>>,
}

fn default_tries() -> Tries {
    Tries(3)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSpec {
    /// Path relative to the repository root.
    pub src: RelPath,
    /// Absolute destination inside the image; must lie under /usr.
    pub dst: UsrPath,
    #[serde(default = "default_file_mode")]
    pub mode: Mode,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnitSpec {
    pub src: RelPath,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SymlinkSpec {
    pub target: String,
    pub links: Vec<UsrPath>,
}

fn default_file_mode() -> Mode {
    Mode(0o644)
}

/// Partition sizes in MiB; USR-B has the size of USR-A. BIOS-BOOT (GRUB's core image, legacy
/// BIOS) is 2 MiB unless `bios_boot_kib` says otherwise; the partition after it starts on the
/// next MiB boundary.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Partitions {
    pub esp_mib: SizeMib,
    pub usr_mib: SizeMib,
    pub oem_mib: SizeMib,
    pub root_mib: SizeMib,
    #[serde(default = "default_bios_boot")]
    pub bios_boot_kib: SizeKib,
}

fn default_bios_boot() -> SizeKib {
    SizeKib(2048)
}

/// Platform artifacts a build emits next to `disk.raw`, each named
/// `<os.id>_<os.version>_<output>.<ext>` ([`crate::artifacts`] writes them).
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum Output {
    /// `.img`: the raw GPT disk (bare metal, `dd`, any hypervisor).
    Raw,
    /// `.qcow2`: compressed qcow2 (QEMU/KVM, libvirt, OpenStack).
    Qcow2,
    /// `.vmdk`: streamOptimized VMDK (VMware, VirtualBox).
    Vmdk,
    /// `.vhd`: fixed VHD, whole MiB (Azure, Hyper-V, AWS VM Import).
    Vhd,
    /// `.ova`: OVF descriptor + manifest + VMDK (vSphere/ESXi, Workstation, Fusion).
    Ova,
    /// `.box`: Vagrant box for the virtualbox provider.
    VagrantVirtualbox,
    /// `.box`: Vagrant box for the libvirt provider.
    VagrantLibvirt,
    /// `.img` + `.vhd` + `.json`: the EC2 disk (raw for the EBS direct APIs, VHD for VM
    /// Import) and the `RegisterImage` input.
    Ami,
    /// `.vmlinuz` + `.cpio` + `.ipxe` + `.pxelinux.cfg`: network boot, running from RAM.
    Pxe,
    /// `.iso`: the live medium for CD or USB stick (BIOS and UEFI), running from RAM like `pxe`.
    Iso,
}

impl Output {
    /// Every output, in the order a build writes them.
    pub const ALL: [Output; 10] = [
        Output::Raw,
        Output::Qcow2,
        Output::Vmdk,
        Output::Vhd,
        Output::Ova,
        Output::VagrantVirtualbox,
        Output::VagrantLibvirt,
        Output::Ami,
        Output::Pxe,
        Output::Iso,
    ];

    /// The name in the spec (and in artifact file names).
    pub fn as_str(self) -> &'static str {
        match self {
            Output::Raw => "raw",
            Output::Qcow2 => "qcow2",
            Output::Vmdk => "vmdk",
            Output::Vhd => "vhd",
            Output::Ova => "ova",
            Output::VagrantVirtualbox => "vagrant-virtualbox",
            Output::VagrantLibvirt => "vagrant-libvirt",
            Output::Ami => "ami",
            Output::Pxe => "pxe",
            Output::Iso => "iso",
        }
    }
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Output {
    type Err = String;
    /// The spec's spelling (`raw`, `vagrant-libvirt`, ...).
    fn from_str(s: &str) -> Result<Output, String> {
        Output::ALL
            .into_iter()
            .find(|o| o.as_str() == s)
            .ok_or_else(|| {
                let all: Vec<&str> = Output::ALL.iter().map(|o| o.as_str()).collect();
                format!("unknown output {s:?} (one of: {})", all.join(", "))
            })
    }
}

fn default_outputs() -> Vec<Spanned<Output>> {
    let unknown = serde_saphyr::Location::UNKNOWN;
    vec![Spanned::new(Output::Raw, unknown, unknown)]
}

/// Why a spec could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("{path}:{line}: {message}")]
    At {
        path: PathBuf,
        line: u64,
        message: String,
    },
}

/// The repository root a spec's `files:` are relative to: the parent of the spec's directory.
pub fn repo_root(spec_path: &Path) -> PathBuf {
    let dir = spec_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    dir.join("..")
}

impl ImageSpec {
    /// Parse and check a spec file.
    pub fn load(path: &Path) -> Result<ImageSpec, SpecError> {
        let text = std::fs::read_to_string(path).map_err(|source| SpecError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parse and check spec text; `path` only names the file in errors.
    pub fn parse(text: &str, path: &Path) -> Result<ImageSpec, SpecError> {
        let spec: ImageSpec = serde_saphyr::from_str(text).map_err(|e| {
            let shown = path.display().to_string();
            let message = e.to_string().replace("<input>", &shown);
            SpecError::Invalid {
                path: path.to_path_buf(),
                message: message.trim_start_matches("error: ").to_string(),
            }
        })?;
        spec.check(path)?;
        Ok(spec)
    }

    fn check(&self, path: &Path) -> Result<(), SpecError> {
        let at = |line: u64, message: String| SpecError::At {
            path: path.to_path_buf(),
            line,
            message,
        };
        let mut seen = BTreeSet::new();
        for p in self.all_packages() {
            if !seen.insert(p.value.0.clone()) {
                return Err(at(
                    p.referenced.line(),
                    format!("packages: {} is listed twice", p.value),
                ));
            }
        }
        self.check_resolve(path)?;
        if self.kernel.initramfs_modules.is_empty() {
            return Err(SpecError::Invalid {
                path: path.to_path_buf(),
                message: "kernel.initramfs_modules: must name at least the modules that reach /usr"
                    .into(),
            });
        }
        if let Some(u) = &self.update {
            self.check_update(u, path)?;
        }
        self.check_kernel_lines(path)?;
        if let Some(label) = &self.iso.label {
            let ok = (1..=32).contains(&label.len())
                && label
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
            if !ok {
                return Err(SpecError::Invalid {
                    path: path.to_path_buf(),
                    message: format!(
                        "iso.label: {label:?} is not an ISO 9660 volume id (1 to 32 of A-Z, 0-9 and _)"
                    ),
                });
            }
        }
        let mut outputs = BTreeSet::new();
        for o in &self.outputs {
            if !outputs.insert(o.value) {
                return Err(at(
                    o.referenced.line(),
                    format!("outputs: {} is listed twice", o.value),
                ));
            }
        }
        let mut dsts = BTreeSet::new();
        for f in &self.files {
            if !dsts.insert(f.dst.0.clone()) {
                return Err(SpecError::Invalid {
                    path: path.to_path_buf(),
                    message: format!("files: destination {} is listed twice", f.dst.0),
                });
            }
        }
        Ok(())
    }

    /// The kernel command line and its PXE arguments: one line each (a control character would
    /// end the boot entry's `options` line), and every line the boot files carry short enough
    /// for the kernel to take whole ([`contract::cmdline::MAX_BYTES`]).
    fn check_kernel_lines(&self, path: &Path) -> Result<(), SpecError> {
        let invalid = |message: String| SpecError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        // kernel.cmdline's own characters are checked as it is read ([`kernel_cmdline`]).
        let args = self.pxe.kernel_args.iter().map(|a| ("pxe.kernel_args", a));
        for (key, value) in args {
            if let Some(c) = value.chars().find(|c| c.is_control()) {
                return Err(invalid(format!(
                    "{key}: {value:?} holds the control character {c:?}; kernel arguments \
                     are one line of printable text"
                )));
            }
        }
        let max = contract::cmdline::MAX_BYTES;
        for (what, line) in crate::artifacts::kernel_lines(self) {
            if line.len() > max {
                return Err(invalid(format!(
                    "kernel.cmdline: {what} would be {} bytes; the kernel takes at most {max} \
                     (the EFI stub and GRUB cut the rest, usr= with it, and the machine \
                     would not find /usr)",
                    line.len()
                )));
            }
        }
        Ok(())
    }

    /// What a value's own type cannot see: `GROUP` (`update.group`, else `os.channel`) as a
    /// channel name, and the reboot window's start and length together.
    fn check_update(&self, u: &UpdateSpec, path: &Path) -> Result<(), SpecError> {
        use contract::update_conf::{self, keys};
        let invalid = |message: String| SpecError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        let (field, group) = match &u.group {
            Some(g) => ("update.group", g),
            None => ("os.channel (the default update.group)", &self.os.channel),
        };
        update_conf::group(&group.0).map_err(|e| invalid(format!("{field}: {e}")))?;
        if let Some(l) = &u.locksmith {
            match (&l.window_start, &l.window_length) {
                (None, None) => {}
                (Some(start), Some(length)) => {
                    update_conf::reboot_window(
                        Some((keys::LOCKSMITHD_REBOOT_WINDOW_START, &start.0)),
                        Some((keys::LOCKSMITHD_REBOOT_WINDOW_LENGTH, &length.0)),
                    )
                    .map_err(|e| {
                        invalid(format!(
                            "update.locksmith: window_start {:?} and window_length {:?} make no \
                             window the engine can use: {e}",
                            start.0, length.0
                        ))
                    })?;
                }
                _ => {
                    return Err(invalid(
                        "update.locksmith: window_start and window_length go together".into(),
                    ))
                }
            }
        }
        Ok(())
    }

    fn check_resolve(&self, path: &Path) -> Result<(), SpecError> {
        let invalid = |message: String| SpecError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        let r = &self.resolve;
        if r.mode == ResolveMode::Exact {
            let closure_only = [
                ("essential", r.essential),
                ("prefer", !r.prefer.is_empty()),
                ("exclude", !r.exclude.is_empty()),
                ("index", r.index != IndexSource::Source),
            ];
            if let Some((key, _)) = closure_only.iter().find(|(_, set)| *set) {
                return Err(invalid(format!(
                    "resolve.{key} needs resolve.mode: closure"
                )));
            }
        }
        if let Some(p) = r
            .exclude
            .iter()
            .find(|e| self.package_names().contains(&e.0))
        {
            return Err(invalid(format!(
                "resolve.exclude: {p} is also listed as a package"
            )));
        }
        Ok(())
    }

    /// Every package the image needs, kernel and bootloader first, in spec order.
    pub fn all_packages(&self) -> Vec<&Spanned<PackageName>> {
        let mut v = vec![&self.kernel.package, &self.bootloader.package];
        v.extend(self.bootloader.bios.iter());
        v.extend(self.packages.iter());
        v
    }

    /// Repository files the image is made from (for the input digest).
    pub fn source_files(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.files.iter().map(|f| f.src.0.as_str()).collect();
        v.extend(self.units.iter().map(|u| u.src.0.as_str()));
        if let Some(u) = &self.update {
            v.extend(u.root_keys.iter().map(|k| k.0.as_str()));
            v.push(&u.engine.0);
        }
        v.extend(self.vagrant.user_data.iter().map(|p| p.0.as_str()));
        v
    }

    /// The outputs, in spec order.
    pub fn output_list(&self) -> Vec<Output> {
        self.outputs.iter().map(|o| o.value).collect()
    }

    /// Replace the outputs (`image-builder build --outputs`), refusing one listed twice.
    pub fn set_outputs(&mut self, outputs: &[Output]) -> Result<(), SpecError> {
        let mut seen = BTreeSet::new();
        if let Some(o) = outputs.iter().find(|o| !seen.insert(**o)) {
            return Err(SpecError::Invalid {
                path: PathBuf::from("--outputs"),
                message: format!("{o} is listed twice"),
            });
        }
        let unknown = serde_saphyr::Location::UNKNOWN;
        self.outputs = outputs
            .iter()
            .map(|&o| Spanned::new(o, unknown, unknown))
            .collect();
        Ok(())
    }

    /// Names of every package, in spec order.
    pub fn package_names(&self) -> Vec<String> {
        self.all_packages()
            .iter()
            .map(|p| p.value.0.clone())
            .collect()
    }
}

macro_rules! checked_newtype {
    ($(#[$doc:meta])* $name:ident($inner:ty), $check:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(pub $inner);

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = <$inner>::deserialize(d)?;
                let check: fn(&$inner) -> Result<(), String> = $check;
                check(&raw).map_err(serde::de::Error::custom)?;
                Ok($name(raw))
            }
        }
    };
}

checked_newtype!(
    /// A non-empty string.
    NonEmpty(String),
    |s| if s.trim().is_empty() { Err("must not be empty".into()) } else { Ok(()) }
);

checked_newtype!(
    /// A name shown to people (os-release's `NAME=`, boot entry titles, GRUB's menu): one line
    /// of at most 128 characters, none that a double-quoted os-release value or a boot entry
    /// line would have to escape (control characters, `"`, `\`, `$`, `` ` ``).
    DisplayName(String),
    |s| {
        if s.trim().is_empty() {
            Err("must not be empty".into())
        } else if s.chars().count() > 128 {
            Err(format!("{s:?}: longer than 128 characters"))
        } else if let Some(c) = s.chars().find(|c| c.is_control() || "\"\\$`".contains(*c)) {
            Err(format!("{s:?}: {c:?} cannot be in a name (it must fit one os-release line and one boot entry title)"))
        } else {
            Ok(())
        }
    }
);

/// A value of an `update.conf` line: non-empty, one line, no control characters, and read
/// back as written (`contract::update_conf::parse` strips surrounding spaces and quotes).
fn conf_value(s: &str) -> Result<(), String> {
    if s.trim().is_empty() || s.chars().any(char::is_control) {
        Err(format!("{s:?}: must be a non-empty single line"))
    } else if s.trim() != s || contract::update_conf::unquote(s) != s {
        Err(format!(
            "{s:?}: update.conf would read it without its surrounding spaces or quotes"
        ))
    } else {
        Ok(())
    }
}

checked_newtype!(
    /// A value of an `update.conf` line: non-empty, one line, no control characters.
    ConfValue(String),
    |s| conf_value(s)
);

/// A newtype for the spec field `$field`, written to update.conf's `$key`: a [`ConfValue`] the
/// update engine can use (`contract::update_conf::check_value`, the engine's own rule).
macro_rules! update_conf_value {
    ($(#[$doc:meta])* $name:ident, $field:literal, $key:expr) => {
        checked_newtype!(
            $(#[$doc])* $name(String),
            |s| {
                conf_value(s)?;
                contract::update_conf::check_value($key, s)
                    .map_err(|e| format!("{}: {e}", $field))
            }
        );
    };
}

update_conf_value!(
    /// `update.server` (`SERVER`): an http(s) base URL.
    ServerUrl,
    "update.server",
    contract::update_conf::keys::SERVER
);
update_conf_value!(
    /// An `update.locksmith.endpoints` item (`LOCKSMITHD_ENDPOINT`): an etcd client URL.
    EtcdEndpoint,
    "update.locksmith.endpoints",
    contract::update_conf::keys::LOCKSMITHD_ENDPOINT
);
update_conf_value!(
    /// `update.locksmith.window_start` (`LOCKSMITHD_REBOOT_WINDOW_START`): `HH:MM` or
    /// `Day HH:MM`.
    WindowStart,
    "update.locksmith.window_start",
    contract::update_conf::keys::LOCKSMITHD_REBOOT_WINDOW_START
);
update_conf_value!(
    /// `update.locksmith.window_length` (`LOCKSMITHD_REBOOT_WINDOW_LENGTH`): a Go duration of
    /// at least a second.
    WindowLength,
    "update.locksmith.window_length",
    contract::update_conf::keys::LOCKSMITHD_REBOOT_WINDOW_LENGTH
);
update_conf_value!(
    /// `update.fleetlock.url` (`FLEETLOCK_URL`): an http(s) base URL.
    FleetLockUrl,
    "update.fleetlock.url",
    contract::update_conf::keys::FLEETLOCK_URL
);
update_conf_value!(
    /// `update.fleetlock.group` (`FLEETLOCK_GROUP`): letters, digits, `.` and `-`.
    FleetLockGroup,
    "update.fleetlock.group",
    contract::update_conf::keys::FLEETLOCK_GROUP
);

checked_newtype!(
    /// `[a-z0-9][a-z0-9._-]*`, as os-release wants for `ID=`, of at most 64 characters (it
    /// names the ESP's directories, boot entry files and every artifact file).
    OsId(String),
    |s| {
        let ok = s.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
            && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c));
        if !ok {
            Err(format!("{s:?} is not a lower-case identifier ([a-z0-9][a-z0-9._-]*)"))
        } else if s.len() > 64 {
            Err(format!("{s:?} is {} characters long; identifiers may have at most 64", s.len()))
        } else {
            Ok(())
        }
    }
);

checked_newtype!(
    /// A Debian package name.
    PackageName(String),
    |s| {
        let ok = s.len() >= 2
            && s.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
            && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c));
        if ok { Ok(()) } else { Err(format!("{s:?} is not a Debian package name")) }
    }
);

checked_newtype!(
    /// A path under the kernel's `kernel/` module directory: relative, no `.` or `..`.
    ModuleSubtree(String),
    |s| {
        let trimmed = s.trim_end_matches('/');
        let ok = s == "*" || !trimmed.is_empty()
            && !s.starts_with('/')
            && trimmed.split('/').all(|c| !c.is_empty() && c != "." && c != "..")
            && s.chars().all(|c| c.is_ascii_graphic());
        if ok { Ok(()) } else { Err(format!("{s:?}: want a path under the kernel's module directory, like drivers/media/")) }
    }
);

checked_newtype!(
    /// A version `x.y.z` (numbers only).
    SemVer(String),
    |s| {
        let parts: Vec<&str> = s.split('.').collect();
        let ok = parts.len() == 3
            && parts.iter().all(|p| !p.is_empty() && p.len() <= 9 && p.chars().all(|c| c.is_ascii_digit()));
        let padded = parts.iter().any(|p| p.len() > 1 && p.starts_with('0'));
        if !ok {
            Err(format!("version {s:?} is not of the form x.y.z"))
        } else if padded {
            Err(format!("version {s:?}: a number with a leading zero (publish and the machines compare versions as numbers; write {})", parts.iter().map(|p| p.trim_start_matches('0')).map(|p| if p.is_empty() { "0" } else { p }).collect::<Vec<_>>().join(".")))
        } else {
            Ok(())
        }
    }
);

checked_newtype!(
    /// A size in MiB, at least 1 and at most 1 TiB.
    SizeMib(u64),
    |n| if (1..=1 << 20).contains(n) { Ok(()) } else { Err(format!("size {n} MiB is out of range (1..=1048576)")) }
);

checked_newtype!(
    /// A size in KiB, at least 1 and at most 1 GiB.
    SizeKib(u64),
    |n| if (1..=1 << 20).contains(n) { Ok(()) } else { Err(format!("size {n} KiB is out of range (1..=1048576)")) }
);

checked_newtype!(
    /// A boot counter start value, 1..=15.
    Tries(u32),
    |n| if (1..=15).contains(n) { Ok(()) } else { Err(format!("tries {n} is out of range (1..=15)")) }
);

checked_newtype!(
    /// Permission bits (`0o644`), at most `0o7777`.
    Mode(u32),
    |n| if *n <= 0o7777 { Ok(()) } else { Err(format!("mode {n:o} has bits above 0o7777")) }
);

checked_newtype!(
    /// A relative path inside the repository without `..`.
    RelPath(String),
    |s| {
        if s.is_empty() || s.starts_with('/') || s.split('/').any(|c| c == "..") {
            Err(format!("{s:?} must be a relative path inside the repository"))
        } else {
            Ok(())
        }
    }
);

checked_newtype!(
    /// An absolute path under /usr: all OS content lives there.
    UsrPath(String),
    |s| {
        let norm = rootfs::tree::normalize(s).map_err(|e| e.to_string())?;
        if !s.starts_with('/') || !norm.starts_with("usr/") {
            Err(format!("{s:?} must be an absolute path under /usr"))
        } else if let Some(c) = s.chars().find(|c| c.is_control()) {
            Err(format!("{s:?}: the control character {c:?} has no place in a path"))
        } else {
            rootfs::tree::check_path(&norm).map_err(|e| e.to_string())
        }
    }
);

impl fmt::Display for PackageName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for SemVer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl UsrPath {
    /// The tree path (`usr/bin/x`).
    pub fn tree_path(&self) -> String {
        rootfs::tree::normalize(&self.0).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
os:
  name: Minimal Linux
  id: minimal
  version: 1.0.0
  channel: alpha
source_date_epoch: 1767225600
kernel:
  package: linux-image-6.1.0-56-cloud-amd64
  cmdline: console=ttyS0
  initramfs_modules: [virtio_blk, squashfs]
bootloader:
  package: systemd-boot-efi
packages: [busybox-static]
files:
  - src: services/minimal/inittab
    dst: /usr/share/factory/etc/inittab
symlinks:
  - target: busybox
    links: [/usr/bin/sh]
partitions:
  esp_mib: 64
  usr_mib: 128
  oem_mib: 16
  root_mib: 64
"#;

    fn parse(text: &str) -> Result<ImageSpec, SpecError> {
        ImageSpec::parse(text, Path::new("images/test.yaml"))
    }

    #[test]
    fn good_spec_parses() {
        let s = parse(GOOD).unwrap();
        assert_eq!(s.os.version.0, "1.0.0");
        assert_eq!(s.bootloader.tries.0, 3);
        assert_eq!(s.files[0].mode.0, 0o644);
        assert_eq!(
            s.package_names(),
            [
                "linux-image-6.1.0-56-cloud-amd64",
                "systemd-boot-efi",
                "busybox-static"
            ]
        );
        assert_eq!(s.output_list(), [Output::Raw]);
    }

    struct Case {
        name: &'static str,
        from: &'static str,
        to: &'static str,
        want: &'static str,
    }

    #[test]
    fn bad_specs_name_file_line_and_key() {
        let cases = [
            Case {
                name: "unknown key",
                from: "  channel: alpha",
                to: "  channel: alpha\n  colour: red",
                want: "colour",
            },
            Case {
                name: "wrong type",
                from: "source_date_epoch: 1767225600",
                to: "source_date_epoch: soon",
                want: "source_date_epoch",
            },
            Case {
                name: "bad version",
                from: "version: 1.0.0",
                to: "version: 1.0",
                want: "x.y.z",
            },
            Case {
                name: "zero size",
                from: "usr_mib: 128",
                to: "usr_mib: 0",
                want: "out of range",
            },
            Case {
                name: "dst outside usr",
                from: "dst: /usr/share/factory/etc/inittab",
                to: "dst: /etc/inittab",
                want: "under /usr",
            },
            Case {
                name: "src escapes",
                from: "src: services/minimal/inittab",
                to: "src: ../etc/passwd",
                want: "inside the repository",
            },
            Case {
                name: "bad id",
                from: "id: minimal",
                to: "id: Minimal",
                want: "lower-case",
            },
            Case {
                name: "tries",
                from: "package: systemd-boot-efi",
                to: "package: systemd-boot-efi\n  tries: 99",
                want: "tries",
            },
            Case {
                name: "dup package",
                from: "packages: [busybox-static]",
                to: "packages: [busybox-static, busybox-static]",
                want: "listed twice",
            },
            Case {
                name: "missing key",
                from: "  oem_mib: 16\n",
                to: "",
                want: "oem_mib",
            },
        ];
        for c in cases {
            assert!(GOOD.contains(c.from), "{}: fixture", c.name);
            let text = GOOD.replacen(c.from, c.to, 1);
            let err = parse(&text).expect_err(c.name).to_string();
            assert!(err.contains("images/test.yaml"), "{}: {err}", c.name);
            assert!(err.contains(c.want), "{}: {err}", c.name);
        }
    }

    #[test]
    fn errors_carry_line_numbers() {
        let text = GOOD.replacen("version: 1.0.0", "version: one", 1);
        let err = parse(&text).unwrap_err().to_string();
        assert!(err.contains("line 5 column 12"), "{err}");
        assert!(err.contains("images/test.yaml:5:12"), "{err}");
    }

    #[test]
    fn names_and_versions_that_would_break_what_is_written_from_them() {
        for (from, to, want) in [
            (
                "name: Minimal Linux",
                "name: \"Minimal\\nLinux\"",
                "'\\n' cannot be in a name",
            ),
            (
                "name: Minimal Linux",
                "name: Minimal \"Linux\"",
                "cannot be in a name",
            ),
            (
                "name: Minimal Linux",
                "name: Minimal $HOME",
                "'$' cannot be in a name",
            ),
            (
                "version: 1.0.0",
                "version: 01.0.0",
                "leading zero (publish and the machines compare versions as numbers; write 1.0.0)",
            ),
            ("version: 1.0.0", "version: 1.00.0", "write 1.0.0"),
        ] {
            let text = GOOD.replacen(from, to, 1);
            assert_ne!(text, GOOD, "{from}");
            let err = parse(&text).unwrap_err().to_string();
            assert!(err.contains(want), "{to}: {err}");
            assert!(err.contains("images/test.yaml:"), "{err}");
        }
        let long = GOOD.replacen(
            "name: Minimal Linux",
            &format!("name: {}", "x".repeat(129)),
            1,
        );
        assert!(parse(&long)
            .unwrap_err()
            .to_string()
            .contains("longer than 128"));
        for ok in ["version: 1.0.10", "version: 0.0.0", "version: 10.20.30"] {
            parse(&GOOD.replacen("version: 1.0.0", ok, 1)).unwrap();
        }
    }

    /// Caught by the `spec` fuzz target's checks: these command lines built images whose first boot
    /// entry gave /init no `usr=` (or one it refused), so the disk could not boot.
    #[test]
    fn kernel_cmdlines_that_would_hide_usr_from_init() {
        let from = "cmdline: console=ttyS0";
        for (to, want) in [
            (
                "cmdline: console=ttyS0 -- single",
                "'--' would hide the usr=",
            ),
            ("cmdline: console=ttyS0 x=\"a", "unbalanced"),
            (
                "cmdline: \"console=ttyS0\\nversion 9.9.9\"",
                "'\\n' cannot be in a kernel command line",
            ),
            (
                "cmdline: console=ttyS0 init=sbin/init",
                "/init would refuse it",
            ),
            ("cmdline: console=ttyS0 root=", "/init would refuse it"),
        ] {
            let text = GOOD.replacen(from, to, 1);
            assert_ne!(text, GOOD, "{to}");
            let err = parse(&text).unwrap_err().to_string();
            assert!(err.contains(want), "{to}: {err}");
            assert!(err.contains("images/test.yaml:"), "{err}");
        }
        for ok in [
            "cmdline: console=ttyS0 x=\"a b\" usr=PARTUUID=00000000-0000-0000-0000-000000000001",
            "cmdline: \"\"",
        ] {
            parse(&GOOD.replacen(from, ok, 1)).unwrap();
        }
    }

    #[test]
    fn paths_and_identifiers_fit_what_they_name() {
        let long = format!("/usr/lib/{}", "n".repeat(256));
        let text = GOOD.replace("links: [/usr/bin/sh]", &format!("links: [{long}]"));
        let err = parse(&text).unwrap_err().to_string();
        assert!(err.contains("names may have at most 255 bytes"), "{err}");
        let text = GOOD.replace("links: [/usr/bin/sh]", "links: [\"/usr/bin/a\\nb\"]");
        let err = parse(&text).unwrap_err().to_string();
        assert!(err.contains("control character"), "{err}");
        let text = GOOD.replace("  id: minimal", &format!("  id: {}", "m".repeat(65)));
        let err = parse(&text).unwrap_err().to_string();
        assert!(
            err.contains("is 65 characters long; identifiers may have at most 64"),
            "{err}"
        );
        parse(&GOOD.replace("  id: minimal", &format!("  id: {}", "m".repeat(64)))).unwrap();
    }

    #[test]
    fn kernel_lines_fit_the_kernel_and_are_one_line() {
        let with = |cmdline: &str, pxe: &str| {
            GOOD.replace("cmdline: console=ttyS0", &format!("cmdline: {cmdline}"))
                + &format!("pxe:\n  kernel_args: [{pxe}]\n")
        };
        // usr=PARTUUID=<36> adds 50 bytes to the boot entries' line.
        let longest = "a".repeat(contract::cmdline::MAX_BYTES - 50);
        parse(&with(&longest, "b")).unwrap();
        let err = parse(&with(&format!("{longest}a"), "b"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("the boot entries' command line"), "{err}");
        assert!(
            err.contains("would be 2048 bytes; the kernel takes at most 2047"),
            "{err}"
        );
        let err = parse(&with("quiet", &"x".repeat(2040)))
            .unwrap_err()
            .to_string();
        assert!(err.contains("the network boot's command line"), "{err}");
        let err = parse(&with("\"quiet\\ntitle evil\"", "b"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("cannot be in a kernel command line"), "{err}");
        let err = parse(&with("quiet", "\"a\\tb\"")).unwrap_err().to_string();
        assert!(err.contains("pxe.kernel_args:"), "{err}");
    }

    #[test]
    fn os_release_names_id_like() {
        let plain = crate::os::content::os_release(&parse(GOOD).unwrap());
        assert_eq!(
            plain,
            "NAME=\"Minimal Linux\"\nID=minimal\nVERSION=1.0.0\nVERSION_ID=1.0.0\nBUILD_ID=2026-01-01-0000\nPRETTY_NAME=\"Minimal Linux 1.0.0 (alpha)\"\nRELEASE_CHANNEL=alpha\nCOREOS_BOARD=\"amd64-usr\"\n"
        );
        let like = GOOD.replace(
            "  channel: alpha\n",
            "  channel: alpha\n  id_like: [coreos, flatcar]\n",
        );
        let text = crate::os::content::os_release(&parse(&like).unwrap());
        assert!(
            text.contains("\nID=minimal\nID_LIKE=coreos flatcar\nVERSION="),
            "{text}"
        );
        let bad = GOOD.replace(
            "  channel: alpha\n",
            "  channel: alpha\n  id_like: [\"Core OS\"]\n",
        );
        assert!(parse(&bad).is_err());
    }

    #[test]
    fn update_section() {
        let text = format!(
            "{GOOD}update:\n  server: http://10.0.2.2:8080/\n  root_keys: keys/root.json\n  engine: target/ue\n"
        );
        let s = parse(&text).unwrap();
        let u = s.update.as_ref().unwrap();
        assert_eq!(u.reboot_strategy, RebootStrategy::Reboot);
        assert!(s.source_files().contains(&"keys/root.json"));
        let bad = text.replace(
            "  engine: target/ue\n",
            "  engine: target/ue\n  reboot_strategy: sometimes\n",
        );
        assert!(parse(&bad).unwrap_err().to_string().contains("sometimes"));
        assert!(parse(GOOD).unwrap().update.is_none());
        // The engine alone: keys and server come from each machine's config.
        let bare = parse(&format!("{GOOD}update:\n  engine: target/ue\n")).unwrap();
        let u = bare.update.as_ref().unwrap();
        assert!(u.root_keys.is_none() && u.server.is_none());
        assert_eq!(bare.source_files().last(), Some(&"target/ue"));
        let two = text.replace(
            "server: http://10.0.2.2:8080/",
            "server: \"http://10.0.2.2:8080/\\nGROUP=x\"",
        );
        assert!(parse(&two).is_err(), "one line");
        let locks = format!(
            "{text}  locksmith:\n    endpoints: [\"http://10.0.2.2:2379\"]\n    window_start: Thu 23:00\n    window_length: 1h\n  fleetlock:\n    url: http://lock/\n"
        );
        let u = parse(&locks).unwrap().update.unwrap();
        assert_eq!(u.locksmith.unwrap().endpoints[0].0, "http://10.0.2.2:2379");
        assert_eq!(u.fleetlock.unwrap().url.0, "http://lock/");
        let half = locks.replace("    window_length: 1h\n", "");
        assert!(parse(&half)
            .unwrap_err()
            .to_string()
            .contains("go together"));
        let two_lines = locks.replace("url: http://lock/", "url: \"a\\nREBOOT_STRATEGY=off\"");
        assert!(parse(&two_lines)
            .unwrap_err()
            .to_string()
            .contains("single line"));
    }

    /// Caught by the `spec` fuzz target's checks: the machines read these values of update.conf without
    /// their surrounding spaces or quotes, so not as the spec wrote them.
    #[test]
    fn update_conf_values_read_back_as_written() {
        // LOCKSMITHD_GROUP is a plain value: only the read-back rule applies.
        let text =
            format!("{GOOD}update:\n  engine: target/ue\n  locksmith:\n    group: http://u/\n");
        for bad in [
            "\" http://u/\"",
            "\"http://u/ \"",
            "'\"http://u/\"'",
            "\"'http://u/'\"",
        ] {
            let err = parse(&text.replace("group: http://u/", &format!("group: {bad}")))
                .unwrap_err()
                .to_string();
            assert!(err.contains("surrounding spaces or quotes"), "{bad}: {err}");
        }
        for ok in ["http://u/a b", "\"'http://u/\"", "\"a\\\"b\""] {
            parse(&text.replace("group: http://u/", &format!("group: {ok}"))).unwrap();
        }
    }

    #[test]
    fn update_values_the_engine_cannot_use_are_refused() {
        let base = format!(
            "{GOOD}update:\n  engine: target/ue\n  server: http://10.0.2.2:8080/\n  locksmith:\n    window_start: Thu 23:00\n    window_length: 1h\n  fleetlock:\n    url: http://lock/\n    group: workers\n"
        );
        parse(&base).unwrap();
        let line_of =
            |text: &str, needle: &str| 1 + text[..text.find(needle).unwrap()].matches('\n').count();
        for (from, to, want) in [
            (
                "window_start: Thu 23:00",
                "window_start: Blursday 25:61",
                "update.locksmith.window_start: LOCKSMITHD_REBOOT_WINDOW_START=\"Blursday 25:61\": expected HH:MM or Day HH:MM",
            ),
            (
                "window_start: Thu 23:00",
                "window_start: Thu 23:61",
                "minute must be 0 to 59",
            ),
            (
                "window_length: 1h",
                "window_length: -1h",
                "update.locksmith.window_length: LOCKSMITHD_REBOOT_WINDOW_LENGTH=\"-1h\": expected a duration like 1h30m (must not be negative)",
            ),
            ("window_length: 1h", "window_length: \"0\"", "must be at least 1s"),
            ("window_length: 1h", "window_length: 1d", "unknown unit \"d\""),
            (
                "server: http://10.0.2.2:8080/",
                "server: ftp://10.0.2.2/",
                "update.server: SERVER=\"ftp://10.0.2.2/\": expected an http:// or https:// URL",
            ),
            (
                "url: http://lock/",
                "url: lock:3333",
                "update.fleetlock.url: FLEETLOCK_URL=\"lock:3333\"",
            ),
            ("group: workers", "group: a_b", "update.fleetlock.group: FLEETLOCK_GROUP=\"a_b\""),
        ] {
            let text = base.replacen(from, to, 1);
            assert_ne!(text, base, "{from}");
            let err = parse(&text).unwrap_err().to_string();
            let line = line_of(&text, to);
            assert!(err.contains(&format!("images/test.yaml:{line}:")), "{to}: {err}");
            assert!(err.contains(want), "{to}: {err}");
        }
        let endpoints = base.replace(
            "  locksmith:\n",
            "  locksmith:\n    endpoints: [\"http://10.0.0.1:2379\", \"unix:///run/etcd\"]\n",
        );
        let err = parse(&endpoints).unwrap_err().to_string();
        assert!(
            err.contains("update.locksmith.endpoints: LOCKSMITHD_ENDPOINT=\"unix:///run/etcd\""),
            "{err}"
        );
        // Together: a daily window must be shorter than a day.
        let daily = base
            .replace("window_start: Thu 23:00", "window_start: \"23:00\"")
            .replace("window_length: 1h", "window_length: 24h");
        let err = parse(&daily).unwrap_err().to_string();
        assert!(
            err.contains("update.locksmith: window_start \"23:00\" and window_length \"24h\" make no window the engine can use: LOCKSMITHD_REBOOT_WINDOW_LENGTH=\"24h\""),
            "{err}"
        );
        assert!(err.contains("(a day)"), "{err}");
        parse(&daily.replace("window_length: 24h", "window_length: 23h59m")).unwrap();
        // GROUP, from update.group or os.channel, must be a channel name.
        let long = "c".repeat(65);
        let err = parse(&base.replace(
            "  engine: target/ue\n",
            &format!("  engine: target/ue\n  group: {long}\n"),
        ))
        .unwrap_err()
        .to_string();
        // (Identifiers, channels among them, have the channel names' 64 characters at most.)
        assert!(err.contains("identifiers may have at most 64"), "{err}");
        let err = parse(&base.replace("channel: alpha", &format!("channel: {long}")))
            .unwrap_err()
            .to_string();
        assert!(err.contains("identifiers may have at most 64"), "{err}");
    }

    #[test]
    fn resolve_section() {
        let s = parse(GOOD).unwrap();
        assert_eq!(s.resolve, ResolveSpec::default());
        assert_eq!(s.resolve.mode, ResolveMode::Exact);
        let text = format!(
            "{GOOD}resolve:\n  mode: closure\n  essential: true\n  prefer: [mawk]\n  exclude: [initramfs-tools]\n  index: apt-lists\n"
        );
        let r = parse(&text).unwrap().resolve;
        assert_eq!(r.mode, ResolveMode::Closure);
        assert!(r.essential);
        assert_eq!(r.prefer[0].0, "mawk");
        assert_eq!(r.index, IndexSource::AptLists);
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"mode":"closure","essential":true,"prefer":["mawk"],"exclude":["initramfs-tools"],"index":"apt-lists"}"#
        );
        let cases = [
            (
                "resolve:\n  mode: exact\n  essential: true\n",
                "resolve.essential needs resolve.mode: closure",
            ),
            (
                "resolve:\n  prefer: [mawk]\n",
                "resolve.prefer needs resolve.mode: closure",
            ),
            (
                "resolve:\n  mode: closure\n  exclude: [busybox-static]\n",
                "busybox-static is also listed",
            ),
            ("resolve:\n  mode: everything\n", "everything"),
            (
                "resolve:\n  mode: closure\n  recommends: true\n",
                "recommends",
            ),
        ];
        for (extra, want) in cases {
            let err = parse(&format!("{GOOD}{extra}")).unwrap_err().to_string();
            assert!(err.contains(want), "{extra}: {err}");
        }
    }

    #[test]
    fn iso_label_is_a_volume_id() {
        let spec = parse(GOOD).unwrap();
        assert_eq!(iso_label(&spec), "MINIMAL_1_0_0");
        let set = parse(&format!("{GOOD}iso:\n  label: MY_OS_2\n")).unwrap();
        assert_eq!(iso_label(&set), "MY_OS_2");
        for bad in ["my-os", "\"\"", &"A".repeat(33)] {
            let err = parse(&format!("{GOOD}iso:\n  label: {bad}\n"))
                .unwrap_err()
                .to_string();
            assert!(err.contains("iso.label"), "{bad}: {err}");
        }
    }

    #[test]
    fn outputs_parse_and_bad_ones_name_the_line() {
        let all = format!(
            "{GOOD}outputs: [raw, qcow2, vmdk, vhd, ova, vagrant-virtualbox, vagrant-libvirt, ami, pxe, iso]\n"
        );
        assert_eq!(parse(&all).unwrap().output_list(), Output::ALL);
        let pxe = parse(&format!(
            "{GOOD}pxe:\n  kernel_args: [coreos.autologin, \"sshkey=ssh-ed25519 AAAA\"]\n"
        ))
        .unwrap();
        assert_eq!(
            pxe.pxe.kernel_args,
            ["coreos.autologin", "sshkey=ssh-ed25519 AAAA"]
        );
        let err = parse(&format!("{GOOD}pxe:\n  args: [x]\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("args"), "{err}");
        for o in Output::ALL {
            let one = format!("{GOOD}outputs: [{o}]\n");
            assert_eq!(parse(&one).unwrap().output_list(), [o]);
        }
        let line = GOOD.lines().count() + 1;
        let unknown = format!("{GOOD}outputs: [raw, vagrant-virtualbx]\n");
        let err = parse(&unknown).unwrap_err().to_string();
        assert!(err.contains(&format!("images/test.yaml:{line}:")), "{err}");
        assert!(err.contains("vagrant-virtualbx"), "{err}");
        assert!(
            err.contains("vagrant-virtualbox"),
            "lists the valid names: {err}"
        );
        let twice = format!("{GOOD}outputs:\n  - ova\n  - raw\n  - ova\n");
        let err = parse(&twice).unwrap_err().to_string();
        assert!(
            err.contains(&format!(
                "images/test.yaml:{}: outputs: ova is listed twice",
                line + 3
            )),
            "{err}"
        );
    }

    #[test]
    fn malformed_yaml_is_an_error() {
        assert!(parse("os: [unclosed").is_err());
        assert!(parse("").is_err());
    }
}
