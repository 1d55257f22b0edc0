//! The OS: the locked packages extracted into one tree, the kernel and the bootloader taken out
//! of it, the spec's own content added ([`content`]: os-release, files, units, the update
//! engine, symlinks) and depmod's indexes written. The USR slot, the initramfs and the ESP are
//! all made from an [`OsTree`]. [`state`] has the initial content of the writable partitions.

pub mod content;
pub mod modules;
pub mod state;

use std::path::Path;

use anyhow::{bail, Context, Result};
use rootfs::deb::ExtractOptions;
use rootfs::modules::ModuleIndex;
use rootfs::tree::{Entry, Kind, Tree};

use crate::disk::bios::{GrubPc, GRUB_PC_DIR};
use crate::inputs::{InputSource, Lockfile};
use crate::spec::ImageSpec;

/// Where systemd-boot lives in its package.
pub const SDBOOT_IN_PACKAGE: &str = "usr/lib/systemd/boot/efi/systemd-bootx64.efi";

/// What the image is made of.
pub struct OsTree {
    /// Everything under /usr (the only top-level directory left).
    pub tree: Tree,
    /// The kernel image (`/boot/vmlinuz-<release>`, taken out of the tree).
    pub kernel: Vec<u8>,
    /// `uname -r` of that kernel.
    pub kernel_release: String,
    /// systemd-boot's EFI binary.
    pub bootloader: Vec<u8>,
    /// GRUB for legacy BIOS (`bootloader.bios`), taken out of the tree.
    pub bios: Option<GrubPc>,
    /// The modules /usr keeps (`kernel.modules`), for the initramfs.
    pub modules: ModuleIndex,
    /// Every module of the kernel package, kept or not: what `/init` can name as missing.
    pub kernel_modules: ModuleIndex,
}

/// Extract the locked packages from `source`, then add the spec's content (`root`: the
/// repository root its paths are relative to).
pub fn assemble(
    spec: &ImageSpec,
    lock: &Lockfile,
    source: &InputSource,
    root: &Path,
    progress: bool,
) -> Result<OsTree> {
    let mut tree = extract(spec, lock, source, progress)?;
    let (kernel_release, kernel) = take_kernel(&mut tree)?;
    let bootloader = bootloader(spec, &tree)?;
    let bios = take_grub_pc(spec, &mut tree)?;
    content::add(spec, root, &mut tree)?;
    let kernel_modules = ModuleIndex::from_tree(&tree, &kernel_release).with_context(|| {
        format!(
            "reading the modules of kernel package {} ({kernel_release})",
            spec.kernel.package.value
        )
    })?;
    let modules = apply_module_rules(spec, &kernel_modules, &mut tree)?;
    add_depmod_indexes(&modules, spec.source_date_epoch, &mut tree)?;
    tree.clamp_mtimes(spec.source_date_epoch);
    check_only_usr(&tree)?;
    Ok(OsTree {
        tree,
        kernel,
        kernel_release,
        bootloader,
        bios,
        modules,
        kernel_modules,
    })
}

/// Every locked package, verified and extracted into one tree, in lock order.
fn extract(
    spec: &ImageSpec,
    lock: &Lockfile,
    source: &InputSource,
    progress: bool,
) -> Result<Tree> {
    let mut tree = Tree::new();
    let opts = ExtractOptions {
        source_date_epoch: spec.source_date_epoch,
    };
    for p in &lock.packages {
        let deb = source.fetch(p, progress)?;
        rootfs::deb::extract(&deb, &p.package, &mut tree, &opts)
            .with_context(|| format!("extracting {} {}", p.package, p.version))?;
    }
    Ok(tree)
}

/// Remove `boot/vmlinuz-<release>` (and the rest of /boot) from the tree.
fn take_kernel(tree: &mut Tree) -> Result<(String, Vec<u8>)> {
    let boot = tree.remove_subtree("boot");
    let kernels: Vec<(String, Vec<u8>)> = boot
        .iter()
        .filter_map(|(path, e)| {
            let release = path.strip_prefix("boot/vmlinuz-")?;
            match &e.kind {
                Kind::File(d) => Some((release.to_string(), d.as_slice().to_vec())),
                _ => None,
            }
        })
        .collect();
    match kernels.len() {
        1 => Ok(kernels.into_iter().next().expect("one kernel")),
        0 => bail!("no kernel: the kernel package must ship /boot/vmlinuz-<release>"),
        n => bail!("{n} kernels found in /boot; the spec must name exactly one kernel package"),
    }
}

/// systemd-boot's binary from the bootloader package.
fn bootloader(spec: &ImageSpec, tree: &Tree) -> Result<Vec<u8>> {
    match tree.get(SDBOOT_IN_PACKAGE).map(|e| &e.kind) {
        Some(Kind::File(d)) => Ok(d.as_slice().to_vec()),
        _ => bail!(
            "package {} does not ship /{SDBOOT_IN_PACKAGE}",
            spec.bootloader.package.value
        ),
    }
}

/// GRUB's i386-pc files from the `bootloader.bios` package, removed from /usr (the disk's boot
/// code is made from them; the running system does not need them).
fn take_grub_pc(spec: &ImageSpec, tree: &mut Tree) -> Result<Option<GrubPc>> {
    let Some(package) = &spec.bootloader.bios else {
        return Ok(None);
    };
    let dir = tree.remove_subtree("usr/lib/grub");
    let prefix = format!("{GRUB_PC_DIR}/");
    let files: std::collections::BTreeMap<String, Vec<u8>> = dir
        .iter()
        .filter_map(|(path, e)| match &e.kind {
            Kind::File(d) => Some((
                path.strip_prefix(&prefix)?.to_string(),
                d.as_slice().to_vec(),
            )),
            _ => None,
        })
        .filter(|(name, _)| !name.contains('/'))
        .collect();
    if !files.contains_key("kernel.img") {
        bail!(
            "bootloader.bios: package {} does not ship /{GRUB_PC_DIR}/kernel.img (want grub-pc-bin)",
            package.value
        );
    }
    Ok(Some(GrubPc { files }))
}

/// Drops the modules `kernel.modules` leaves out from the tree; the index of what is left.
fn apply_module_rules(
    spec: &ImageSpec,
    index: &ModuleIndex,
    tree: &mut Tree,
) -> Result<ModuleIndex> {
    let rules = &spec.kernel.modules;
    if rules.include.is_empty() && rules.exclude.is_empty() {
        return Ok(index.clone());
    }
    let needed: Vec<&str> = spec
        .kernel
        .initramfs_modules
        .iter()
        .map(|m| m.0.as_str())
        .collect();
    let keep = modules::keep(index, rules, &needed)?;
    for m in index.modules().filter(|m| !keep.contains(&m.name)) {
        tree.remove(&m.tree_path);
    }
    tree.prune_empty_dirs(&rootfs::modules::module_dir(index.kernel_release()));
    Ok(index.subset(keep.iter().map(String::as_str)))
}

/// What depmod would write (modules.dep and the binary indexes modprobe reads).
fn add_depmod_indexes(modules: &ModuleIndex, epoch: u64, tree: &mut Tree) -> Result<()> {
    let dir = rootfs::modules::module_dir(modules.kernel_release());
    for (name, data) in modules.depmod()? {
        let entry = Entry::file(data, 0o644).with_mtime(epoch);
        tree.insert(&format!("{dir}/{name}"), entry)?;
    }
    Ok(())
}

/// Everything must live under /usr once packages are extracted.
fn check_only_usr(tree: &Tree) -> Result<()> {
    if let Some((path, _)) = tree
        .iter()
        .find(|(p, _)| *p != "usr" && !p.starts_with("usr/"))
    {
        bail!("/{path} is outside /usr; all OS content must live under /usr");
    }
    Ok(())
}
