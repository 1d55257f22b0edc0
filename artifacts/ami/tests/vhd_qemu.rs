//! The fixed VHD writer against the real `qemu-img` (`-f vpc`: it would guess raw): `info`
//! sees the padded size, `compare` finds the raw disk, and the footer matches what
//! `qemu-img convert -o subformat=fixed,force_size=on` writes but for the fields that are
//! ours (timestamp, UUID, geometry).

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use ami::vhd::{footer, write_file, VhdOptions};
use diskfmt::RawDisk;
use diskfmt_testing::{assert_reads_back, qemu_img, sparse_disk, MIB};

fn opts() -> VhdOptions {
    VhdOptions::new(1_767_225_600, *b"vhd-test-uuid-01")
}

/// A sparse raw disk of `size` bytes with data at the start, in the middle and at the end.
fn test_disk(dir: &Path, name: &str, size: u64) -> PathBuf {
    let parts = [
        (0, vec![0xEB; 4096]),
        (size / 2 - 100, b"middle".repeat(1000)),
        (size - 10, b"last bytes".to_vec()),
    ];
    sparse_disk(dir, name, size, &parts)
}

/// qemu-img reads the VHD (`-f vpc`: it would guess raw) back as the raw disk.
fn compare(raw: &Path, vhd: &Path) {
    assert_reads_back(raw, vhd, "vpc");
}

/// The image's virtual size as `qemu-img info` reports it (bytes).
fn virtual_size(vhd: &Path) -> u64 {
    let (ok, info) = qemu_img(&["info", "-f", "vpc", vhd.to_str().unwrap()]);
    assert!(ok, "qemu-img info:\n{info}");
    // "virtual size: 64 MiB (67108864 bytes)"; the file node's lines come after the image's.
    let line = info
        .lines()
        .find(|l| l.starts_with("virtual size:"))
        .unwrap_or_default();
    let bytes = line
        .rsplit('(')
        .next()
        .unwrap_or_default()
        .trim_end_matches(" bytes)");
    bytes
        .parse()
        .unwrap_or_else(|_| panic!("no virtual size in:\n{info}"))
}

#[test]
fn qemu_reads_back_the_raw_disk() {
    let dir = tempfile::tempdir().unwrap();
    let raw = test_disk(dir.path(), "disk.raw", 64 * MIB);
    let vhd = dir.path().join("disk.vhd");
    let w = write_file(&raw, &vhd, &opts()).unwrap();
    assert_eq!((w.disk_size, w.file_size), (64 * MIB, 64 * MIB + 512));
    let meta = std::fs::metadata(&vhd).unwrap();
    assert_eq!(meta.len(), 64 * MIB + 512);
    assert!(
        meta.blocks() * 512 < 4 * MIB,
        "holes were written: {} blocks",
        meta.blocks()
    );
    assert_eq!(virtual_size(&vhd), 64 * MIB);
    compare(&raw, &vhd);
}

#[test]
fn raw_sizes_are_padded_to_whole_mib() {
    let dir = tempfile::tempdir().unwrap();
    let size = 5 * MIB + 1000; // not even a whole sector
    let raw = test_disk(dir.path(), "odd.raw", size);
    let vhd = dir.path().join("odd.vhd");
    let w = write_file(&raw, &vhd, &opts()).unwrap();
    assert_eq!(w.disk_size, 6 * MIB);
    assert_eq!(virtual_size(&vhd), 6 * MIB);
    compare(&raw, &vhd); // the padding reads as zeros, as qemu-img compare wants of the excess
    let bytes = std::fs::read(&vhd).unwrap();
    assert_eq!(&bytes[size as usize - 10..size as usize], b"last bytes");
    assert!(bytes[size as usize..6 * MIB as usize]
        .iter()
        .all(|&b| b == 0));
}

#[test]
fn same_bytes_every_run() {
    let dir = tempfile::tempdir().unwrap();
    let raw = test_disk(dir.path(), "disk.raw", 16 * MIB);
    let (a, b) = (dir.path().join("a.vhd"), dir.path().join("b.vhd"));
    write_file(&raw, &a, &opts()).unwrap();
    write_file(&raw, &b, &opts()).unwrap();
    assert!(std::fs::read(&a).unwrap() == std::fs::read(&b).unwrap());
    // Reading through the generic writer (no hole map) gives the same bytes.
    let mut out = std::io::Cursor::new(Vec::new());
    let mut dense = RawDisk::new(File::open(&raw).unwrap()).unwrap();
    ami::vhd::write(&mut dense, &mut out, &opts()).unwrap();
    assert!(out.into_inner() == std::fs::read(&a).unwrap());
}

#[test]
fn footer_matches_qemu_but_for_our_fields() {
    let dir = tempfile::tempdir().unwrap();
    let raw = test_disk(dir.path(), "disk.raw", 20 * MIB);
    let theirs = dir.path().join("qemu.vhd");
    let (ok, text) = qemu_img(&[
        "convert",
        "-f",
        "raw",
        "-O",
        "vpc",
        "-o",
        "subformat=fixed,force_size=on",
        raw.to_str().unwrap(),
        theirs.to_str().unwrap(),
    ]);
    assert!(ok, "{text}");
    let theirs = std::fs::read(&theirs).unwrap();
    let theirs = &theirs[theirs.len() - 512..];
    let ours = footer(20 * MIB, &opts()).unwrap();
    // Timestamp (24..28), geometry (56..60: qemu's force_size writes the maximum), checksum
    // (64..68) and UUID (68..84) differ by design; everything else is the same.
    for (i, (a, b)) in ours.iter().zip(theirs).enumerate() {
        let ours_by_design = [24..28, 56..60, 64..68, 68..84]
            .iter()
            .any(|r| r.contains(&i));
        if !ours_by_design {
            assert_eq!(a, b, "footer byte {i}");
        }
    }
}

#[test]
fn empty_and_missing_inputs_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("empty.raw");
    File::create(&raw).unwrap();
    let vhd = dir.path().join("empty.vhd");
    let err = write_file(&raw, &vhd, &opts()).unwrap_err();
    assert!(matches!(err, ami::vhd::Error::EmptyDisk), "{err}");
    assert!(!vhd.exists());
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "temporary left behind"
    );
    let err = write_file(&dir.path().join("missing.raw"), &vhd, &opts()).unwrap_err();
    assert!(matches!(err, ami::vhd::Error::Open { .. }), "{err}");
}
