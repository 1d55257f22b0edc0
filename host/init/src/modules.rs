//! The initramfs module list, `/etc/initrd-modules`, and loading its modules.
//!
//! The image builder writes one path per line, relative to `/lib/modules/<kernel release>/`
//! (e.g. `kernel/drivers/virtio/virtio_ring.ko`), already in dependency order (HOST.md gives the
//! order for virtio). Blank lines and `#` comments are allowed. `/init` loads them in that order
//! with `finit_module(2)`; there is no modprobe and no modules.dep in the initramfs.

use std::fs::File;
use std::io;
use std::path::{Component, Path, PathBuf};

use machine::sys;

/// Where the list lives in the initramfs: `/` + `contract::paths::INITRD_MODULES` (a test
/// holds the two together; `concat!` cannot read another crate's constant).
pub const LIST_PATH: &str = "/etc/initrd-modules";
/// Root of the module trees in the initramfs.
pub const MODULES_DIR: &str = "/lib/modules";

/// A line of the list that is not a usable path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// 1-based line number.
    pub line: usize,
    pub text: String,
    pub why: &'static str,
}

/// The parsed list: module paths in load order, and the lines that were refused.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModuleList {
    pub modules: Vec<String>,
    pub rejected: Vec<Rejected>,
}

fn check_entry(entry: &str) -> Result<(), &'static str> {
    let path = Path::new(entry);
    if path.is_absolute() {
        return Err("absolute path (want one relative to /lib/modules/<release>)");
    }
    if path
        .components()
        .any(|c| !matches!(c, Component::Normal(_)))
    {
        return Err("path leaves the module directory");
    }
    if entry.contains('\0') {
        return Err("NUL in path");
    }
    Ok(())
}

/// Parses the list text. Never fails: bad lines are returned in `rejected` for the console.
pub fn parse_list(text: &str) -> ModuleList {
    let mut list = ModuleList::default();
    for (i, raw) in text.lines().enumerate() {
        let entry = raw.trim();
        if entry.is_empty() || entry.starts_with('#') {
            continue;
        }
        match check_entry(entry) {
            Ok(()) => list.modules.push(entry.to_string()),
            Err(why) => list.rejected.push(Rejected {
                line: i + 1,
                text: entry.to_string(),
                why,
            }),
        }
    }
    list
}

/// `/lib/modules/<release>/<entry>`.
pub fn module_path(release: &str, entry: &str) -> PathBuf {
    Path::new(MODULES_DIR).join(release).join(entry)
}

/// What loading one module did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loaded {
    Now,
    /// `EEXIST`: built in or loaded before; fine.
    Already,
}

/// Loads one module file with `finit_module(2)` and no parameters.
pub fn load(path: &Path) -> io::Result<Loaded> {
    let file = File::open(path)?;
    match sys::finit_module(&file) {
        Ok(()) => Ok(Loaded::Now),
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(Loaded::Already),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_path_is_the_contract_path() {
        assert_eq!(LIST_PATH, format!("/{}", contract::paths::INITRD_MODULES));
    }

    #[test]
    fn list_in_order_with_comments() {
        let text = "# virtio disks\nkernel/drivers/virtio/virtio_ring.ko\n\n  kernel/drivers/virtio/virtio.ko  \n\
                    kernel/drivers/block/virtio_blk.ko\nkernel/fs/squashfs/squashfs.ko";
        let list = parse_list(text);
        assert_eq!(
            list.modules,
            [
                "kernel/drivers/virtio/virtio_ring.ko",
                "kernel/drivers/virtio/virtio.ko",
                "kernel/drivers/block/virtio_blk.ko",
                "kernel/fs/squashfs/squashfs.ko",
            ]
        );
        assert!(list.rejected.is_empty());
    }

    #[test]
    fn bad_lines_are_rejected_not_fatal() {
        let list = parse_list("a.ko\n/lib/modules/x/b.ko\n../c.ko\nkernel/./d.ko\ne.ko\n");
        assert_eq!(list.modules, ["a.ko", "kernel/./d.ko", "e.ko"]);
        let lines: Vec<usize> = list.rejected.iter().map(|r| r.line).collect();
        assert_eq!(lines, [2, 3]);
        assert_eq!(list.rejected[1].text, "../c.ko");
    }

    #[test]
    fn empty_list() {
        assert_eq!(parse_list(""), ModuleList::default());
        assert_eq!(parse_list("\n# nothing\n"), ModuleList::default());
    }

    #[test]
    fn paths() {
        assert_eq!(
            module_path("6.1.0-56-cloud-amd64", "kernel/fs/squashfs/squashfs.ko"),
            Path::new("/lib/modules/6.1.0-56-cloud-amd64/kernel/fs/squashfs/squashfs.ko")
        );
    }
}
