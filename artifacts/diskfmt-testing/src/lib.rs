//! What the disk-format writers' tests against the real `qemu-img` share (reproducible test
//! disks, qemu-img's verdicts on an image), and what their converter examples share
//! (`examples/to_*.rs`, which `bench/convert.sh` drives). A dev-dependency of `ova`, `vagrant`
//! and `ami` only.

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

pub const MIB: u64 = 1 << 20;

/// Pseudo-random (incompressible) bytes, the same on every run.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// A sparse file `dir/name` of `size` bytes holding `parts` (offset, bytes) and holes elsewhere.
pub fn sparse_disk(dir: &Path, name: &str, size: u64, parts: &[(u64, Vec<u8>)]) -> PathBuf {
    let path = dir.join(name);
    let mut f = File::create(&path).unwrap();
    f.set_len(size).unwrap();
    for (at, bytes) in parts {
        f.seek(SeekFrom::Start(*at)).unwrap();
        f.write_all(bytes).unwrap();
    }
    path
}

/// `qemu-img ARGS`: whether it succeeded, and its stdout + stderr.
pub fn qemu_img(args: &[&str]) -> (bool, String) {
    let out = Command::new("qemu-img")
        .args(args)
        .output()
        .expect("run qemu-img");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// `qemu-img check -f FORMAT IMAGE` finds no errors; returns what it said.
pub fn assert_checks(image: &Path, format: &str) -> String {
    let (ok, text) = qemu_img(&["check", "-f", format, image.to_str().unwrap()]);
    assert!(
        ok && text.contains("No errors were found"),
        "qemu-img check:\n{text}"
    );
    text
}

/// `qemu-img compare -f raw -F FORMAT RAW IMAGE`: the image reads back as the raw disk.
pub fn assert_reads_back(raw: &Path, image: &Path, format: &str) {
    let (ok, text) = qemu_img(&[
        "compare",
        "-f",
        "raw",
        "-F",
        format,
        raw.to_str().unwrap(),
        image.to_str().unwrap(),
    ]);
    assert!(
        ok && text.contains("Images are identical"),
        "qemu-img compare:\n{text}"
    );
}

/// `qemu-img info --output=json -f FORMAT IMAGE`, asserted to succeed.
pub fn info_json(image: &Path, format: &str) -> String {
    let (ok, info) = qemu_img(&[
        "info",
        "--output=json",
        "-f",
        format,
        image.to_str().unwrap(),
    ]);
    assert!(ok, "qemu-img info:\n{info}");
    info
}

/// The arguments of an example converter (`examples/to_*.rs`, which `bench/convert.sh`
/// drives): `RAW OUT` and at most `optional` more; `None` after printing `usage` when they are
/// not that.
pub fn converter_args(args: &[String], usage: &str, optional: usize) -> Option<(PathBuf, PathBuf)> {
    match args {
        [raw, out, rest @ ..] if rest.len() <= optional => {
            Some((PathBuf::from(raw), PathBuf::from(out)))
        }
        _ => {
            eprintln!("usage: {usage}");
            None
        }
    }
}

/// How an example converter ends: one line on what it wrote, or the error and its causes
/// (`error:` / `caused by:`) and a failure.
pub fn finish<T>(result: Result<T, diskfmt::Error>, said: impl FnOnce(&T) -> String) -> ExitCode {
    match result {
        Ok(written) => {
            println!("{}", said(&written));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprint!("{}", util::error::report(&e));
            ExitCode::FAILURE
        }
    }
}
