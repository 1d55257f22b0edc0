//! Where user-data comes from. With `--from-sources` the sources are tried in this fixed order
//! and the first that has something wins ([`SourceKind::ORDER`]):
//!
//! 1. **cmdline**: `cloud-config-url=URL` on the kernel command line (`/proc/cmdline`; the
//!    Ignition-era `coreos.config.url=` is an alias, read when the first is absent), fetched
//!    over http/https with [`Policy::CONFIG_URL`]. First because an operator who typed a URL
//!    means it.
//! 2. **install**: `/var/lib/coreos-install/user_data`, the cloud-config `coreos-install -c`
//!    (the update engine's installer) wrote onto the ROOT of the disk it installed
//!    ([`contract::paths::INSTALL_USER_DATA`]), as Container Linux's installer did.
//! 3. **qemu-fw-cfg**: `/sys/firmware/qemu_fw_cfg/by_name/opt/com.coreos/config/raw` (QEMU's
//!    `-fw_cfg name=opt/com.coreos/config,file=…`); `modprobe qemu_fw_cfg` is tried first when
//!    the firmware directory is missing (a failure only means: not QEMU, or no module).
//! 4. **config-drive**: an OpenStack config drive, label `config-2` ([`configdrive`]).
//! 5. **nocloud**: cloud-init's NoCloud seed, label `cidata` ([`nocloud`]). Both drives are
//!    found by label, mounted and read the same way ([`drive`]).
//! 6. **vagrant**: `/var/lib/coreos-vagrant/vagrantfile-user-data`, dropped by coreos-vagrant's
//!    provisioner (upstream ran the agent again from a path unit when it appeared; once per
//!    boot is enough here).
//! 7. **vmware**: guestinfo variables and the OVF environment, over VMware's backdoor or on
//!    vSphere's `OVF ENV` ISO ([`vmware`]), only when DMI says VMware.
//! 8. **ec2**: the instance metadata service ([`ec2`]), only when DMI says EC2 ([`dmi`]).
//!
//! `--source NAME` tries only the named sources (in this order) and skips their platform check.
//! A source that fails (a URL answering 404, a timeout, an unreadable drive, bad encodings) is
//! reported and the next one is tried. A source that exists counts as found even when its
//! user-data is empty: its metadata (hostname, SSH keys) still applies.

pub mod configdrive;
pub mod dmi;
pub mod drive;
pub mod ec2;
pub mod http;
pub mod nocloud;
pub mod vmware;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use cloudconfig::DecodeError;
use contract::cmdline::split_args;
use util::retry::Policy;

use self::http::{Http, HttpError};
use super::host::{Host, HostError};
use super::metadata::Metadata;

/// The kernel command line argument naming a user-data URL.
pub const CMDLINE_URL_KEY: &str = "cloud-config-url";
/// The alias read when [`CMDLINE_URL_KEY`] is absent.
pub const CMDLINE_URL_ALIAS: &str = "coreos.config.url";
pub const FW_CFG_DIR: &str = "sys/firmware/qemu_fw_cfg";
pub const FW_CFG_CONFIG: &str = "sys/firmware/qemu_fw_cfg/by_name/opt/com.coreos/config/raw";
pub const FW_CFG_MODULE: &str = "qemu_fw_cfg";
pub const VAGRANT_USER_DATA: &str = "var/lib/coreos-vagrant/vagrantfile-user-data";
pub const INSTALL_USER_DATA: &str = contract::paths::INSTALL_USER_DATA;

/// One kind of source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SourceKind {
    Cmdline,
    Install,
    QemuFwCfg,
    ConfigDrive,
    NoCloud,
    Vagrant,
    Vmware,
    Ec2,
}

impl SourceKind {
    /// The order `--from-sources` tries them in.
    pub const ORDER: [SourceKind; 8] = [
        SourceKind::Cmdline,
        SourceKind::Install,
        SourceKind::QemuFwCfg,
        SourceKind::ConfigDrive,
        SourceKind::NoCloud,
        SourceKind::Vagrant,
        SourceKind::Vmware,
        SourceKind::Ec2,
    ];

    /// The `--source` spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Cmdline => "cmdline",
            SourceKind::Install => "install",
            SourceKind::QemuFwCfg => "qemu-fw-cfg",
            SourceKind::ConfigDrive => "config-drive",
            SourceKind::NoCloud => "nocloud",
            SourceKind::Vagrant => "vagrant",
            SourceKind::Vmware => "vmware",
            SourceKind::Ec2 => "ec2",
        }
    }
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SourceKind {
    type Err = String;
    fn from_str(s: &str) -> Result<SourceKind, String> {
        SourceKind::ORDER
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = SourceKind::ORDER.iter().map(|k| k.as_str()).collect();
                format!("unknown source {s:?} (known: {})", names.join(", "))
            })
    }
}

/// User-data found, with the source's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// For messages: `cmdline cloud-config-url=http://…`, `config drive /dev/sr0`,
    /// `NoCloud seed /dev/sr0`, ….
    pub source: String,
    pub user_data: Vec<u8>,
    pub metadata: Metadata,
}

/// A source that exists but could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(transparent)]
    Http(#[from] HttpError),
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error(transparent)]
    Host(#[from] HostError),
    #[error("{what}: {error}")]
    Decode { what: String, error: DecodeError },
    #[error("{what}: {reason}")]
    Invalid { what: String, reason: String },
}

impl SourceError {
    pub fn io(path: &Path, source: io::Error) -> SourceError {
        SourceError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// What the sources need: the root, the host's effects, the HTTP settings.
pub struct Context<'a> {
    pub root: &'a Path,
    pub host: &'a dyn Host,
    /// EC2 instance metadata base URL ([`ec2::DEFAULT_BASE_URL`]).
    pub ec2_base_url: String,
    /// For user-data URLs.
    pub url_policy: Policy,
    /// For the EC2 instance metadata service.
    pub imds_policy: Policy,
}

impl<'a> Context<'a> {
    /// The production settings.
    pub fn new(root: &'a Path, host: &'a dyn Host) -> Context<'a> {
        Context {
            root,
            host,
            ec2_base_url: ec2::DEFAULT_BASE_URL.to_string(),
            url_policy: Policy::CONFIG_URL,
            imds_policy: Policy::METADATA,
        }
    }

    fn url_client(&self) -> Result<Http, SourceError> {
        Ok(Http::new(self.url_policy, true)?)
    }
}

/// The outcome of trying sources in order.
#[derive(Debug, Default)]
pub struct Search {
    pub found: Option<Found>,
    /// The sources that failed before one was found, in order.
    pub errors: Vec<(SourceKind, SourceError)>,
}

/// Tries `kinds` in [`SourceKind::ORDER`]; `forced`: skip the platform checks (`--source`).
pub fn search(kinds: &[SourceKind], forced: bool, ctx: &Context) -> Search {
    let dmi = dmi::Dmi::read(ctx.root);
    let mut out = Search::default();
    for kind in SourceKind::ORDER.into_iter().filter(|k| kinds.contains(k)) {
        let applies = forced
            || match kind {
                SourceKind::Vmware => dmi.is_vmware(),
                SourceKind::Ec2 => dmi.is_ec2(),
                _ => true,
            };
        if !applies {
            continue;
        }
        match probe(kind, ctx) {
            Ok(Some(found)) => {
                out.found = Some(found);
                break;
            }
            Ok(None) => {}
            Err(e) => out.errors.push((kind, e)),
        }
    }
    out
}

/// One source: `Ok(None)` when it is not there.
pub fn probe(kind: SourceKind, ctx: &Context) -> Result<Option<Found>, SourceError> {
    match kind {
        SourceKind::Cmdline => probe_cmdline(ctx),
        SourceKind::Install => read_optional(ctx.root, INSTALL_USER_DATA, "installer user-data"),
        SourceKind::QemuFwCfg => probe_fw_cfg(ctx),
        SourceKind::ConfigDrive => configdrive::probe(ctx),
        SourceKind::NoCloud => nocloud::probe(ctx),
        SourceKind::Vagrant => read_optional(ctx.root, VAGRANT_USER_DATA, "Vagrant user-data"),
        SourceKind::Vmware => vmware::probe(ctx, || ctx.url_client()),
        SourceKind::Ec2 => {
            let http = Http::new(ctx.imds_policy, false)?;
            ec2::fetch(&http, &ctx.ec2_base_url).map(Some)
        }
    }
}

/// The user-data URL of a kernel command line: the last `cloud-config-url=`, else the last
/// `coreos.config.url=`; empty values are ignored.
pub fn cmdline_url(cmdline: &str) -> Option<String> {
    let words = split_args(cmdline);
    [CMDLINE_URL_KEY, CMDLINE_URL_ALIAS]
        .into_iter()
        .find_map(|key| {
            words
                .iter()
                .rev()
                .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        })
}

/// The SSH keys of a kernel command line: every `sshkey="..."` (Container Linux's PXE argument,
/// an authorized key for `core`), in order; empty values are ignored.
pub fn cmdline_ssh_keys(cmdline: &str) -> Vec<String> {
    split_args(cmdline)
        .iter()
        .filter_map(|w| w.strip_prefix("sshkey="))
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(str::to_string)
        .collect()
}

fn probe_cmdline(ctx: &Context) -> Result<Option<Found>, SourceError> {
    let path = ctx.root.join("proc/cmdline");
    let cmdline = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(SourceError::io(&path, e)),
    };
    let Some(url) = cmdline_url(&cmdline) else {
        return Ok(None);
    };
    let user_data = ctx.url_client()?.get(&url, &[])?;
    Ok(Some(Found {
        source: format!("kernel command line URL {url}"),
        user_data,
        metadata: Metadata::default(),
    }))
}

fn probe_fw_cfg(ctx: &Context) -> Result<Option<Found>, SourceError> {
    if !ctx.root.join(FW_CFG_DIR).exists() {
        // Not QEMU, or the module is not loaded yet: either way, the answer is in the retry.
        let _ = ctx.host.modprobe(FW_CFG_MODULE);
    }
    read_optional(ctx.root, FW_CFG_CONFIG, "QEMU fw_cfg")
}

/// A file under `root` as a source: missing means not there.
fn read_optional(root: &Path, rel: &str, name: &str) -> Result<Option<Found>, SourceError> {
    let path = root.join(rel);
    match std::fs::read(&path) {
        Ok(user_data) => Ok(Some(Found {
            source: format!("{name} /{rel}"),
            user_data,
            metadata: Metadata::default(),
        })),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(SourceError::io(&path, e)),
    }
}

/// `--from-file PATH` (read as given, not under the root).
pub fn from_file(path: &Path) -> Result<Found, SourceError> {
    let user_data = std::fs::read(path).map_err(|e| SourceError::io(path, e))?;
    Ok(Found {
        source: format!("file {}", path.display()),
        user_data,
        metadata: Metadata::default(),
    })
}

/// `--from-url URL`.
pub fn from_url(url: &str, ctx: &Context) -> Result<Found, SourceError> {
    Ok(Found {
        source: format!("URL {url}"),
        user_data: ctx.url_client()?.get(url, &[])?,
        metadata: Metadata::default(),
    })
}

/// `--from-vmware-ovf-env PATH` (read as given, not under the root; [`vmware::from_ovf_env_file`]).
pub fn from_vmware_ovf_env(path: &Path, ctx: &Context) -> Result<Found, SourceError> {
    vmware::from_ovf_env_file(path, || ctx.url_client())
}

#[cfg(test)]
mod http_tests;
#[cfg(test)]
mod tests;
