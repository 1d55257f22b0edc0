//! The VMDK writer against the real `qemu-img`: `check` finds no errors, `compare` finds the
//! raw disk, and the bytes depend on nothing but the input.

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use diskfmt::RawDisk;
use diskfmt_testing::{assert_checks, assert_reads_back, info_json, noise, sparse_disk, MIB};
use ova::vmdk::{write, write_file, VmdkOptions};

/// A sparse raw disk of 40 MiB + 3 sectors: noise, text starting mid-grain, written zeros,
/// data across the first grain-table boundary (32 MiB), and a tail in a partial grain.
fn test_disk(dir: &Path) -> PathBuf {
    let size = 40 * MIB + 1536;
    let parts = [
        (0, noise(MIB as usize, 1)),
        (2 * MIB + 1000, b"Container Linux ".repeat(20_000)),
        (5 * MIB, vec![0u8; 64 << 10]),
        (32 * MIB - 5000, noise(10_000, 2)),
        (size - 700, noise(700, 3)),
    ];
    sparse_disk(dir, "disk.raw", size, &parts)
}

fn assert_check_and_compare(raw: &Path, vmdk: &Path) {
    assert_checks(vmdk, "vmdk");
    assert_reads_back(raw, vmdk, "vmdk");
}

#[test]
fn qemu_checks_and_reads_back_the_raw_disk() {
    let dir = tempfile::tempdir().unwrap();
    let raw = test_disk(dir.path());
    let vmdk = dir.path().join("disk.vmdk");
    let w = write_file(&raw, &vmdk, &VmdkOptions::new("disk.vmdk")).unwrap();
    assert_eq!(w.file_size, std::fs::metadata(&vmdk).unwrap().len());
    assert_eq!(w.capacity, 40 * MIB + 1536);
    assert_check_and_compare(&raw, &vmdk);

    let info = info_json(&vmdk, "vmdk");
    assert!(
        info.contains("\"create-type\": \"streamOptimized\""),
        "{info}"
    );
    assert!(info.contains(&format!("\"cid\": {}", w.cid)), "{info}");
    assert!(info.contains("\"compressed\": true"), "{info}");
}

#[test]
fn same_bytes_every_run_and_for_any_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    let raw = test_disk(dir.path());
    let mut outputs = Vec::new();
    for threads in [Some(1), Some(2), Some(5), None] {
        let mut opts = VmdkOptions::new("disk.vmdk");
        opts.threads = threads;
        let out = dir.path().join(format!("{threads:?}.vmdk"));
        write_file(&raw, &out, &opts).unwrap();
        outputs.push((threads, std::fs::read(&out).unwrap()));
    }
    // Reading every byte (no hole map) must give the same stream as skipping the holes.
    let mut dense = RawDisk::new(File::open(&raw).unwrap()).unwrap();
    let mut out = std::io::Cursor::new(Vec::new());
    write(&mut dense, &mut out, &VmdkOptions::new("disk.vmdk")).unwrap();
    outputs.push((Some(0), out.into_inner()));
    let (_, first) = &outputs[0];
    for (threads, bytes) in &outputs[1..] {
        assert!(bytes == first, "threads {threads:?} gave different bytes");
    }
    // The same disk under another name on the extent line: another descriptor, same grains.
    let other = dir.path().join("other.vmdk");
    write_file(&raw, &other, &VmdkOptions::new("other.vmdk")).unwrap();
    let other = std::fs::read(&other).unwrap();
    assert_eq!(other.len(), first.len());
    assert_eq!(other[64 << 10..], first[64 << 10..]);
}

#[test]
fn content_changes_the_cid() {
    let dir = tempfile::tempdir().unwrap();
    let raw = test_disk(dir.path());
    let opts = VmdkOptions::new("disk.vmdk");
    let a = write_file(&raw, &dir.path().join("a.vmdk"), &opts).unwrap();
    let mut f = File::options().write(true).open(&raw).unwrap();
    f.seek(SeekFrom::Start(20 * MIB)).unwrap();
    f.write_all(b"one more byte").unwrap();
    drop(f);
    let b = write_file(&raw, &dir.path().join("b.vmdk"), &opts).unwrap();
    assert_ne!(a.cid, b.cid);
}

#[test]
fn odd_sizes_and_empty_disks() {
    let dir = tempfile::tempdir().unwrap();
    // Not a whole sector: padded with zeros to the next one.
    let raw = dir.path().join("odd.raw");
    std::fs::write(&raw, noise(100_001, 4)).unwrap();
    let vmdk = dir.path().join("odd.vmdk");
    let w = write_file(&raw, &vmdk, &VmdkOptions::new("odd.vmdk")).unwrap();
    assert_eq!(w.capacity, 100_352);
    assert_check_and_compare(&raw, &vmdk);

    // All holes: no grains, no grain tables; still a valid, identical disk.
    let raw = dir.path().join("holes.raw");
    File::create(&raw).unwrap().set_len(70 * MIB).unwrap();
    let vmdk = dir.path().join("holes.vmdk");
    let w = write_file(&raw, &vmdk, &VmdkOptions::new("holes.vmdk")).unwrap();
    assert_eq!(w.populated, 0);
    assert_eq!(
        w.file_size,
        (128 + 2 + 2 + 1) * 512,
        "head, GD, footer, EOS"
    );
    assert_check_and_compare(&raw, &vmdk);

    let raw = dir.path().join("empty.raw");
    File::create(&raw).unwrap();
    let vmdk = dir.path().join("empty.vmdk");
    let err = write_file(&raw, &vmdk, &VmdkOptions::new("empty.vmdk")).unwrap_err();
    assert!(matches!(err, ova::vmdk::Error::EmptyDisk), "{err}");
    assert!(!vmdk.exists());

    let err = write_file(
        &dir.path().join("missing.raw"),
        &vmdk,
        &VmdkOptions::new("x.vmdk"),
    )
    .unwrap_err();
    assert!(matches!(err, ova::vmdk::Error::Open { .. }), "{err}");
}
