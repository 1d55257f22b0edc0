//! The builder's extraction, alone, for `bench/extract.sh`: every `.deb` named on the command
//! line, in order, read from disk and extracted into one tree with the builder's limits; with
//! `--out DIR` the tree is then written there (files, directories, symlinks, hard links; no
//! owners), which is the work `dpkg-deb -x` does. Prints the entries and bytes extracted.
//!
//! Usage: extract [--out DIR] PACKAGE.deb...

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use rootfs::deb::{extract, ExtractOptions};
use rootfs::tree::{Kind, Tree};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1).peekable();
    let out = if args.peek().map(String::as_str) == Some("--out") {
        args.next();
        Some(PathBuf::from(args.next().ok_or("--out needs a directory")?))
    } else {
        None
    };
    let debs: Vec<String> = args.collect();
    if debs.is_empty() {
        return Err("usage: extract [--out DIR] PACKAGE.deb...".into());
    }
    let mut tree = Tree::new();
    let opts = ExtractOptions {
        source_date_epoch: 0,
    };
    for deb in &debs {
        let bytes = std::fs::read(deb).map_err(|e| format!("{deb}: {e}"))?;
        extract(&bytes, deb, &mut tree, &opts).map_err(|e| e.to_string())?;
    }
    if let Some(out) = out {
        write(&tree, &out).map_err(|e| format!("writing {}: {e}", out.display()))?;
    }
    println!("{} entries, {} bytes", tree.len(), tree.file_bytes());
    Ok(())
}

/// The tree as files under `out`, in path order (parents first).
fn write(tree: &Tree, out: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for (path, e) in tree.iter() {
        let dst = out.join(path);
        match &e.kind {
            Kind::Dir => std::fs::create_dir_all(&dst)?,
            Kind::File(data) => {
                std::fs::write(&dst, data.as_slice())?;
                std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(e.mode))?;
            }
            Kind::Symlink(target) => std::os::unix::fs::symlink(target, &dst)?,
            Kind::Hardlink(target) => std::fs::hard_link(out.join(target), &dst)?,
        }
    }
    Ok(())
}
