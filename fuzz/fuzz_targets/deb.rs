//! `.deb` packages (ar, then control and data tars, compressed or not): reading the control
//! paragraph and extracting the data tree never panic, and an extracted tree keeps the
//! invariants every filesystem writer relies on: normalised paths under `usr/` or `boot/`,
//! parents that are directories (nothing beneath a symlink), mtimes clamped to the epoch.
//! The tree is then materialised into a temporary directory as the ext4 writer does it
//! (`fs::ext4::materialise`), and nothing may appear outside that directory or beyond the
//! tree's paths; and it round-trips through the initramfs's cpio writer and reader.

#![no_main]

use std::collections::BTreeSet;

use libfuzzer_sys::fuzz_target;
use rootfs::deb::{self, ExtractOptions};
use rootfs::tree::{self, Kind, Tree};

const EPOCH: u64 = 1_767_225_600;
/// Materialising costs a directory per input: only for trees of a real package's size.
const MATERIALISE_MAX_ENTRIES: usize = 256;
const MATERIALISE_MAX_BYTES: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    if let Ok(control) = deb::read_control(data) {
        assert!(!control.package.is_empty() && !control.version.is_empty());
        assert!(rootfs::version::parse(&control.version).is_ok());
    }
    let mut tree = Tree::new();
    let opts = ExtractOptions {
        source_date_epoch: EPOCH,
    };
    if deb::extract(data, "fuzz.deb", &mut tree, &opts).is_err() {
        return;
    }
    check_invariants(&tree);
    check_cpio(&tree);
    let bytes: usize = tree
        .iter()
        .map(|(_, e)| match &e.kind {
            Kind::File(d) => d.len(),
            _ => 0,
        })
        .sum();
    if tree.len() <= MATERIALISE_MAX_ENTRIES && bytes <= MATERIALISE_MAX_BYTES {
        check_materialise(&tree);
    }
});

fn check_invariants(tree: &Tree) {
    for (path, entry) in tree.iter() {
        assert_eq!(tree::normalize(path).as_deref(), Ok(path.as_str()));
        let top = path.split('/').next().unwrap_or_default();
        assert!(
            top == "usr" || top == "boot",
            "{path:?} is outside /usr and /boot"
        );
        let parent = tree::parent(path);
        if !parent.is_empty() {
            let p = tree
                .get(parent)
                .unwrap_or_else(|| panic!("{path:?} has no parent"));
            assert!(p.is_dir(), "{path:?} lies beneath a non-directory");
        }
        assert!(entry.mtime <= EPOCH, "{path:?}: mtime {}", entry.mtime);
        assert_eq!(entry.mode & !0o7777, 0, "{path:?}: mode {:o}", entry.mode);
        if let Kind::Hardlink(target) = &entry.kind {
            assert_eq!(tree::normalize(target).as_deref(), Ok(target.as_str()));
        }
    }
}

/// The initramfs writes trees as newc cpio: what it writes reads back to the same paths.
fn check_cpio(tree: &Tree) {
    let mut archive = Vec::new();
    if rootfs::cpio::write_newc(tree, &mut archive).is_err() {
        return; // a hard link whose target was replaced: refused, not written
    }
    let entries = rootfs::cpio::read_newc(&archive).expect("the writer's archive reads back");
    let read: Vec<&str> = entries.iter().map(|(name, _, _)| name.as_str()).collect();
    let want: Vec<&str> = tree.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(read, want);
    for ((name, _, data), (_, entry)) in entries.iter().zip(tree.iter()) {
        if let Kind::File(want) = &entry.kind {
            assert_eq!(data, want.as_ref(), "{name}");
        }
    }
}

/// Materialise under `outer/tree`: afterwards `outer` holds `tree` alone and `tree` holds
/// nothing the tree does not name (symlinks are not followed while looking).
fn check_materialise(tree: &Tree) {
    let outer = tempfile::tempdir().expect("a temporary directory");
    let root = outer.path().join("tree");
    std::fs::create_dir(&root).expect("creating the tree's directory");
    let _ = image_builder::fs::ext4::materialise(tree, &root);
    let beside: Vec<_> = std::fs::read_dir(outer.path())
        .expect("listing the temporary directory")
        .map(|e| e.expect("a directory entry").file_name())
        .collect();
    assert_eq!(
        beside,
        [std::ffi::OsString::from("tree")],
        "written beside the tree"
    );
    let names: BTreeSet<&str> = tree.iter().map(|(p, _)| p.as_str()).collect();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).expect("listing a materialised directory") {
            let path = e.expect("a directory entry").path();
            let rel = path.strip_prefix(&root).expect("under the root");
            let rel = rel.to_str().expect("UTF-8, as the tree's paths");
            assert!(
                names.contains(rel),
                "{rel:?} was written but is not in the tree"
            );
            let meta = std::fs::symlink_metadata(&path).expect("stat without following");
            if meta.is_dir() {
                stack.push(path);
            }
        }
    }
}
