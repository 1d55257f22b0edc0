//! The initramfs: our static `/init`, the kernel modules needed to reach /usr (their closure
//! from `.modinfo`) and two ways for `/init` to load them. Modules that drive a device (a
//! `pci:`, `usb:`, `virtio:`, `scsi:` alias) are loaded only when the machine has one:
//! `/init` matches the devices' `modalias` against `modules.alias` and loads the match after
//! its `modules.dep` dependencies (both written by our depmod over just the initramfs's
//! modules). The others (filesystems, code pages, `loop`) are listed in `/etc/initrd-modules`
//! in load order and always loaded. A newc cpio, zstd-compressed (the Debian kernels
//! decompress zstd initrds themselves).

use rootfs::modules::{is_device_alias, modinfo, Module, ModuleIndex};
use rootfs::tree::{Entry, Tree, TreeError};

/// zstd level for the initramfs (small input; a high level costs little).
pub const ZSTD_LEVEL: i32 = 19;
/// The file /init reads: module paths relative to `/lib/modules/<release>/`, in load order.
pub use contract::paths::INITRD_MODULES as MODULE_LIST;

#[derive(Debug, thiserror::Error)]
pub enum InitramfsError {
    #[error("kernel modules: {0}")]
    Modules(#[from] rootfs::modules::ModuleError),
    #[error("initramfs tree: {0}")]
    Tree(#[from] TreeError),
    #[error("compressing the initramfs: {0}")]
    Io(#[from] std::io::Error),
}

/// The initramfs tree: `/init`, the closure of `wanted` in `index` (the modules /usr keeps),
/// the list of those always loaded, the coldplug indexes, and the storage drivers of
/// `kernel` (the whole kernel package) it lacks. Pure.
pub fn tree(
    index: &ModuleIndex,
    kernel: &ModuleIndex,
    wanted: &[&str],
    init: &[u8],
    epoch: u64,
) -> Result<Tree, InitramfsError> {
    let mut t = Tree::new();
    t.insert("init", Entry::file(init.to_vec(), 0o755).with_mtime(epoch))?;
    let dir = format!("lib/modules/{}", index.kernel_release());
    let closure = index.closure(wanted)?;
    for m in &closure {
        t.insert(
            &format!("{dir}/{}", m.path),
            Entry::file(m.data.as_slice().to_vec(), 0o644).with_mtime(epoch),
        )?;
    }
    let mut always = Vec::new();
    for name in wanted {
        if let Some(m) = index.get(name) {
            if !drives_a_device(m)? {
                always.push(name.to_owned());
            }
        }
    }
    let mut list = String::new();
    for m in index.closure(&always)? {
        list.push_str(&m.path);
        list.push('\n');
    }
    t.insert(
        MODULE_LIST,
        Entry::file(list.into_bytes(), 0o644).with_mtime(epoch),
    )?;
    let carried: Vec<&str> = closure.iter().map(|m| m.name.as_str()).collect();
    let mut indexes = index.subset(carried.iter().copied()).depmod()?;
    t.insert(
        &format!("{dir}/{STORAGE_ALIASES}"),
        Entry::file(storage_aliases(kernel, &carried)?.into_bytes(), 0o644).with_mtime(epoch),
    )?;
    for name in COLDPLUG_INDEXES {
        let bytes = indexes.remove(name).unwrap_or_default();
        t.insert(
            &format!("{dir}/{name}"),
            Entry::file(bytes, 0o644).with_mtime(epoch),
        )?;
    }
    for dir in ["dev", "proc", "sys", "run", "sysroot"] {
        t.insert(dir, Entry::dir(0o755).with_mtime(epoch))?;
    }
    t.clamp_mtimes(epoch);
    Ok(t)
}

/// The depmod files `/init`'s coldplug reads (text: it has no kmod).
pub const COLDPLUG_INDEXES: [&str; 2] = ["modules.alias", "modules.dep"];

/// Where the kernel keeps the drivers of disk controllers (and the buses disks hang on).
pub const STORAGE_DRIVER_DIRS: [&str; 8] = [
    "kernel/drivers/ata/",
    "kernel/drivers/block/",
    "kernel/drivers/message/fusion/",
    "kernel/drivers/mmc/host/",
    "kernel/drivers/nvme/host/",
    "kernel/drivers/scsi/",
    "kernel/drivers/usb/host/",
    "kernel/drivers/usb/storage/",
];

pub use contract::paths::INITRD_STORAGE_ALIASES as STORAGE_ALIASES;

/// `alias <pattern> <module>` lines for the device aliases of the kernel's storage drivers
/// ([`STORAGE_DRIVER_DIRS`]) that are not `carried`, by module path. Pure.
pub fn storage_aliases(index: &ModuleIndex, carried: &[&str]) -> Result<String, InitramfsError> {
    let mut text = String::new();
    let mut modules: Vec<&Module> = index
        .modules()
        .filter(|m| STORAGE_DRIVER_DIRS.iter().any(|d| m.path.starts_with(d)))
        .filter(|m| !carried.contains(&m.name.as_str()))
        .collect();
    modules.sort_by(|a, b| a.path.cmp(&b.path));
    for m in modules {
        for alias in modinfo(&m.data)?
            .values("alias")
            .filter(|a| is_device_alias(a))
        {
            text.push_str(&format!("alias {alias} {}\n", m.name));
        }
    }
    Ok(text)
}

/// Whether `m` has an alias of a device kind (then `/init` loads it only for such a device).
fn drives_a_device(m: &Module) -> Result<bool, InitramfsError> {
    Ok(modinfo(&m.data)?.values("alias").any(is_device_alias))
}

/// Modules a network boot needs besides the image's: the loop device that turns the USR image
/// in RAM into a block device, and squashfs to mount it.
pub const NETWORK_BOOT_MODULES: [&str; 2] = ["loop", "squashfs"];

/// The image's module list plus [`NETWORK_BOOT_MODULES`] (each once, in that order). Pure.
pub fn network_boot<'a>(wanted: &[&'a str]) -> Vec<&'a str> {
    let mut all = wanted.to_vec();
    for m in NETWORK_BOOT_MODULES {
        if !all.contains(&m) {
            all.push(m);
        }
    }
    all
}

/// Serialise and compress an initramfs tree.
pub fn to_bytes(tree: &Tree) -> Result<Vec<u8>, InitramfsError> {
    let mut cpio = Vec::new();
    rootfs::cpio::write_newc(tree, &mut cpio)?;
    Ok(zstd::bulk::compress(&cpio, ZSTD_LEVEL)?)
}
