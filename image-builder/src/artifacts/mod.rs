//! Platform artifacts: the spec's `outputs:` (SPECS.md S6-S10), each written from `disk.raw` by
//! its artifact crate (`ova`, `vagrant`, `ami`) into the build's staging directory, named
//! `<os.id>_<os.version>_<output>.<ext>`:
//!
//! | output | files |
//! |---|---|
//! | `raw` | `.img` (a sparse copy of `disk.raw`) |
//! | `qcow2` | `.qcow2` (compressed) |
//! | `vmdk` | `.vmdk` (streamOptimized) |
//! | `vhd` | `.vhd` (fixed, whole MiB) |
//! | `ova` | `.ova` |
//! | `vagrant-virtualbox`, `vagrant-libvirt` | `.box`, plus the cluster `Vagrantfile` and `config.rb` |
//! | `ami` | `.img` (raw, for the EBS direct APIs), `.vhd` (VM Import), `.json` (`RegisterImage` input) |
//! | `pxe` | `.vmlinuz`, `.cpio` (initramfs carrying the USR image), `.ipxe` (script), `.pxelinux.cfg` (example) |
//! | `iso` | `.iso`: the hybrid live medium, CD or USB stick, BIOS and UEFI ([`live`]) |
//!
//! Everything that varies per image comes from the spec: UUIDs are UUIDv5 of the spec identity
//! ([`crate::disk::layout::derive_uuid`]), times are `source_date_epoch`. Every file is written to a
//! temporary name and renamed; the build then moves the staging directory's files into place.

pub mod live;

use std::collections::BTreeMap;
use std::fs::Permissions;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{Context, Result};
use ova::ovf::Product;
use util::fs::AtomicFile;

use crate::disk::layout::derive_uuid;
use crate::spec::{ImageSpec, Os, Output};

/// Virtual hardware the OVA and the boxes ask for.
pub const CPUS: u32 = 2;
pub const MEMORY_MIB: u32 = 1024;
/// The cluster files written next to the Vagrant boxes.
pub const CLUSTER_VAGRANTFILE: &str = "Vagrantfile";
pub const CLUSTER_CONFIG: &str = "config.rb";
/// The cluster's user-data template, when the spec names one (`vagrant.user_data`).
pub const CLUSTER_USER_DATA: &str = "user-data";

/// `<os.id>_<os.version>`, the start of every artifact's name.
pub fn base_name(os: &Os) -> String {
    format!("{}_{}", os.id.0, os.version.0)
}

/// `<base>_<output>.<ext>`.
pub fn file_name(os: &Os, output: Output, ext: &str) -> String {
    format!("{}_{}.{ext}", base_name(os), output.as_str())
}

/// The files an output writes, in the order it writes them. Pure.
pub fn file_names(os: &Os, output: Output) -> Vec<String> {
    let one = |ext| vec![file_name(os, output, ext)];
    match output {
        Output::Raw => one("img"),
        Output::Qcow2 => one("qcow2"),
        Output::Vmdk => one("vmdk"),
        Output::Vhd => one("vhd"),
        Output::Ova => one("ova"),
        Output::VagrantVirtualbox | Output::VagrantLibvirt => vec![
            file_name(os, output, "box"),
            CLUSTER_VAGRANTFILE.into(),
            CLUSTER_CONFIG.into(),
        ],
        Output::Ami => ["img", "vhd", "json"]
            .iter()
            .map(|ext| file_name(os, output, ext))
            .collect(),
        Output::Pxe => ["vmlinuz", "cpio", "ipxe", "pxelinux.cfg"]
            .iter()
            .map(|ext| file_name(os, output, ext))
            .collect(),
        Output::Iso => one("iso"),
    }
}

/// What the outputs are made from.
pub struct Sources<'a> {
    /// The raw disk.
    pub disk: &'a Path,
    pub kernel: &'a [u8],
    pub usr_img: &'a [u8],
    /// The network-boot initramfs base (the image's modules plus `loop`); `pxe` and `iso`
    /// need it.
    pub pxe_initrd: Option<&'a [u8]>,
    /// systemd-boot and GRUB for BIOS (when the spec has `bootloader.bios`): the `iso` boots
    /// with them.
    pub bootloader: &'a [u8],
    pub grub: Option<&'a crate::disk::bios::GrubPc>,
    /// The raw disk with the Vagrant OEM configuration; the Vagrant boxes need it.
    pub vagrant_disk: Option<&'a Path>,
}

/// The Vagrant provider of a box output.
pub fn vagrant_provider(output: Output) -> Option<&'static str> {
    match output {
        Output::VagrantVirtualbox => Some("virtualbox"),
        Output::VagrantLibvirt => Some("libvirt"),
        _ => None,
    }
}

fn product(os: &Os) -> Product {
    Product {
        name: os.name.0.clone(),
        version: os.version.0.clone(),
        full_version: format!("{} ({})", os.version.0, os.channel.0),
    }
}

/// Write every output the spec lists from `sources` into `dir` (`root`: the repository root
/// the spec's paths are relative to). Returns, per output name, the files written (all
/// directly in `dir`).
pub fn write_all(
    spec: &ImageSpec,
    root: &Path,
    sources: &Sources,
    dir: &Path,
) -> Result<BTreeMap<String, Vec<String>>> {
    let mut written = BTreeMap::new();
    let outputs = spec.output_list();
    for &output in &outputs {
        let mut names = file_names(&spec.os, output);
        if vagrant_provider(output).is_some() && spec.vagrant.user_data.is_some() {
            names.push(CLUSTER_USER_DATA.to_string());
        }
        write_output(spec, output, sources, dir, &names)
            .with_context(|| format!("writing the {output} output ({})", names[0]))?;
        written.insert(output.as_str().to_string(), names);
    }
    let boxes: Vec<(String, String)> = outputs
        .iter()
        .filter_map(|&o| {
            Some((
                vagrant_provider(o)?.to_string(),
                file_name(&spec.os, o, "box"),
            ))
        })
        .collect();
    if !boxes.is_empty() {
        write_cluster_files(spec, root, dir, boxes).context("writing the cluster Vagrantfile")?;
    }
    Ok(written)
}

fn write_output(
    spec: &ImageSpec,
    output: Output,
    sources: &Sources,
    dir: &Path,
    names: &[String],
) -> Result<()> {
    let disk = sources.disk;
    let path = |i: usize| dir.join(&names[i]);
    let epoch = spec.source_date_epoch;
    match output {
        Output::Raw => sparse_copy(disk, &path(0))?,
        Output::Qcow2 => {
            let opts = vagrant::qcow2::Qcow2Options {
                compress: true,
                threads: None,
            };
            vagrant::qcow2::write_file(disk, &path(0), &opts)?;
        }
        Output::Vmdk => {
            let opts = ova::vmdk::VmdkOptions::new(names[0].clone());
            ova::vmdk::write_file(disk, &path(0), &opts)?;
        }
        Output::Vhd => write_vhd(spec, disk, &path(0))?,
        Output::Ova => {
            let opts = ova::OvaOptions {
                name: format!("{}-{}", spec.os.id.0, spec.os.version.0),
                product: product(&spec.os),
                cpus: CPUS,
                memory_mib: MEMORY_MIB,
                source_date_epoch: epoch,
                threads: None,
            };
            ova::write_file(disk, &path(0), &opts)?;
        }
        Output::VagrantVirtualbox => {
            vagrant::write_virtualbox(vagrant_disk(sources)?, &path(0), &box_options(spec))?;
        }
        Output::VagrantLibvirt => {
            vagrant::write_libvirt(vagrant_disk(sources)?, &path(0), &box_options(spec))?;
        }
        Output::Ami => {
            sparse_copy(disk, &path(0))?;
            write_vhd(spec, disk, &path(1))?;
            let size = std::fs::metadata(disk)?.len();
            let request = ami::RegisterImage::new(&ami::Image {
                id: spec.os.id.0.clone(),
                name: spec.os.name.0.clone(),
                version: spec.os.version.0.clone(),
                channel: spec.os.channel.0.clone(),
                disk_size: ami::vhd::disk_size(size),
            });
            write_text(&path(2), &request.to_json())?;
        }
        Output::Pxe => {
            let base = sources
                .pxe_initrd
                .context("no network-boot initramfs was made for the pxe output")?;
            let boot = pxe_boot(spec, &names[0], &names[1]);
            write_bytes(&path(0), sources.kernel)?;
            write_bytes(&path(1), &pxe::initrd(sources.usr_img, base, epoch))?;
            write_text(&path(2), &pxe::ipxe_script(&boot))?;
            write_text(&path(3), &pxe::pxelinux_cfg(&boot))?;
        }
        Output::Iso => {
            let base = sources
                .pxe_initrd
                .context("no network-boot initramfs was made for the iso output")?;
            let initrd = pxe::initrd(sources.usr_img, base, epoch);
            let cmdline = live_cmdline(spec);
            let medium = live::Live {
                spec,
                bootloader: sources.bootloader,
                grub: sources.grub,
                kernel: sources.kernel,
                initrd: &initrd,
                cmdline: &cmdline,
            };
            live::write(&medium, &path(0))?;
        }
    }
    Ok(())
}

/// Every kernel command line the image's boot files carry, each with what carries it: the
/// slots' boot entries (systemd-boot and GRUB) and the network boot's. Pure.
pub fn kernel_lines(spec: &ImageSpec) -> Vec<(&'static str, String)> {
    // A PARTUUID has a fixed length; which one does not matter here.
    let uuid = "00000000-0000-0000-0000-000000000000";
    let names = file_names(&spec.os, Output::Pxe);
    vec![
        (
            "the boot entries' command line (kernel.cmdline and usr=PARTUUID=...)",
            contract::slots::entry::options(&spec.kernel.cmdline, uuid),
        ),
        (
            "the network boot's command line (initrd=..., kernel.cmdline and pxe.kernel_args)",
            pxe_boot(spec, &names[0], &names[1]).kernel_args(),
        ),
    ]
}

/// The live system's kernel arguments (network boot and live medium): `kernel.cmdline`, then
/// `pxe.kernel_args`. Pure.
pub fn live_cmdline(spec: &ImageSpec) -> String {
    let mut cmdline = spec.kernel.cmdline.trim().to_string();
    for arg in &spec.pxe.kernel_args {
        cmdline.push(' ');
        cmdline.push_str(arg);
    }
    cmdline
}

/// The network boot of the image: its kernel command line, then `pxe.kernel_args`.
fn pxe_boot(spec: &ImageSpec, kernel: &str, initrd: &str) -> pxe::Boot {
    let cmdline = live_cmdline(spec);
    pxe::Boot {
        os_name: spec.os.name.0.clone(),
        version: spec.os.version.0.clone(),
        channel: spec.os.channel.0.clone(),
        label: spec.os.id.0.clone(),
        kernel: kernel.to_string(),
        initrd: initrd.to_string(),
        cmdline,
    }
}

fn write_vhd(spec: &ImageSpec, disk: &Path, out: &Path) -> Result<()> {
    let uuid = derive_uuid(spec, "vhd");
    let opts = ami::vhd::VhdOptions::new(spec.source_date_epoch, uuid.into_bytes());
    ami::vhd::write_file(disk, out, &opts)?;
    Ok(())
}

fn box_options(spec: &ImageSpec) -> vagrant::BoxOptions {
    let mac = derive_uuid(spec, "virtualbox-mac");
    let b = mac.as_bytes();
    vagrant::BoxOptions {
        name: format!("{}-{}", spec.os.id.0, spec.os.version.0),
        product: product(&spec.os),
        cpus: CPUS,
        memory_mib: MEMORY_MIB,
        mac_suffix: [b[0], b[1], b[2]],
        source_date_epoch: spec.source_date_epoch,
        threads: None,
    }
}

fn write_cluster_files(
    spec: &ImageSpec,
    root: &Path,
    dir: &Path,
    boxes: Vec<(String, String)>,
) -> Result<()> {
    let config = vagrant::cluster::config_rb(&vagrant::cluster::ClusterConfig {
        os_id: spec.os.id.0.clone(),
        name: spec.os.name.0.clone(),
        version: spec.os.version.0.clone(),
        channel: spec.os.channel.0.clone(),
        box_files: boxes,
    });
    write_text(
        &dir.join(CLUSTER_VAGRANTFILE),
        vagrant::cluster::VAGRANTFILE,
    )?;
    write_text(&dir.join(CLUSTER_CONFIG), &config)?;
    if let Some(rel) = &spec.vagrant.user_data {
        let path = root.join(&rel.0);
        let text = std::fs::read(&path).with_context(|| {
            format!("reading {} (vagrant.user_data in the spec)", path.display())
        })?;
        write_bytes(&dir.join(CLUSTER_USER_DATA), &text)?;
    }
    Ok(())
}

fn vagrant_disk<'a>(sources: &Sources<'a>) -> Result<&'a Path> {
    sources
        .vagrant_disk
        .context("no disk with the Vagrant OEM configuration was made for the box")
}

/// Copy a sparse file's data into a new sparse file at `to` (temporary name, then rename).
fn sparse_copy(from: &Path, to: &Path) -> Result<()> {
    let size = std::fs::metadata(from)
        .with_context(|| format!("reading {}", from.display()))?
        .len();
    let dir = util::fs::parent(to);
    let mut tmp = tempfile::Builder::new()
        .prefix(".partial-")
        .permissions(Permissions::from_mode(0o644))
        .tempfile_in(dir)
        .with_context(|| format!("creating a file in {}", dir.display()))?;
    tmp.as_file().set_len(size)?;
    crate::disk::sparse::copy_into(from, tmp.as_file_mut(), 0)
        .with_context(|| format!("copying {}", from.display()))?;
    tmp.as_file().sync_all()?;
    tmp.persist(to)
        .map_err(|e| e.error)
        .with_context(|| format!("writing {}", to.display()))?;
    Ok(())
}

/// Write a small file whole or not at all, mode 0644 (as the writers' outputs).
pub(crate) fn write_text(path: &Path, text: &str) -> Result<()> {
    write_bytes(path, text.as_bytes())
}

/// Write a file whole or not at all, mode 0644.
fn write_bytes(path: &Path, data: &[u8]) -> Result<()> {
    let write = || -> std::io::Result<()> {
        let mut f = AtomicFile::create(path)?;
        f.writer().write_all(data)?;
        f.commit()
    };
    write().with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{DisplayName, OsId, SemVer};

    fn os() -> Os {
        Os {
            name: DisplayName("Minimal Linux".into()),
            id: OsId("minimal".into()),
            version: SemVer("1.0.0".into()),
            channel: OsId("alpha".into()),
            id_like: Vec::new(),
        }
    }

    #[test]
    fn names_follow_os_version_output() {
        let want: [(Output, &[&str]); 10] = [
            (Output::Raw, &["minimal_1.0.0_raw.img"]),
            (Output::Qcow2, &["minimal_1.0.0_qcow2.qcow2"]),
            (Output::Vmdk, &["minimal_1.0.0_vmdk.vmdk"]),
            (Output::Vhd, &["minimal_1.0.0_vhd.vhd"]),
            (Output::Ova, &["minimal_1.0.0_ova.ova"]),
            (
                Output::VagrantVirtualbox,
                &[
                    "minimal_1.0.0_vagrant-virtualbox.box",
                    "Vagrantfile",
                    "config.rb",
                ],
            ),
            (
                Output::VagrantLibvirt,
                &[
                    "minimal_1.0.0_vagrant-libvirt.box",
                    "Vagrantfile",
                    "config.rb",
                ],
            ),
            (
                Output::Ami,
                &[
                    "minimal_1.0.0_ami.img",
                    "minimal_1.0.0_ami.vhd",
                    "minimal_1.0.0_ami.json",
                ],
            ),
            (
                Output::Pxe,
                &[
                    "minimal_1.0.0_pxe.vmlinuz",
                    "minimal_1.0.0_pxe.cpio",
                    "minimal_1.0.0_pxe.ipxe",
                    "minimal_1.0.0_pxe.pxelinux.cfg",
                ],
            ),
            (Output::Iso, &["minimal_1.0.0_iso.iso"]),
        ];
        for (output, names) in want {
            assert_eq!(file_names(&os(), output), names, "{output}");
        }
        assert_eq!(Output::ALL.len(), want.len());
    }
}
