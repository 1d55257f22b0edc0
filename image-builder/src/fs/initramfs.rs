//! The initramfs: our static `/init`, the kernel modules needed to reach /usr (their closure
//! from `.modinfo`), and `/etc/initrd-modules` listing them in load order. A newc cpio,
//! zstd-compressed (the Debian cloud kernel decompresses zstd initrds itself).

use rootfs::modules::ModuleIndex;
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

/// The initramfs tree: `/init`, the module closure and its load-order list. Pure.
pub fn tree(
    index: &ModuleIndex,
    wanted: &[&str],
    init: &[u8],
    epoch: u64,
) -> Result<Tree, InitramfsError> {
    let mut t = Tree::new();
    t.insert("init", Entry::file(init.to_vec(), 0o755).with_mtime(epoch))?;
    let mut list = String::new();
    for m in index.closure(wanted)? {
        let path = format!("lib/modules/{}/{}", index.kernel_release(), m.path);
        t.insert(
            &path,
            Entry::file(m.data.as_slice().to_vec(), 0o644).with_mtime(epoch),
        )?;
        list.push_str(&m.path);
        list.push('\n');
    }
    t.insert(
        MODULE_LIST,
        Entry::file(list.into_bytes(), 0o644).with_mtime(epoch),
    )?;
    for dir in ["dev", "proc", "sys", "run", "sysroot"] {
        t.insert(dir, Entry::dir(0o755).with_mtime(epoch))?;
    }
    t.clamp_mtimes(epoch);
    Ok(t)
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
