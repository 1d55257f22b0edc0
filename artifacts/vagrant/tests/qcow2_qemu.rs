//! The qcow2 writer against the real `qemu-img`: `check` finds no errors and no leaks,
//! `compare` finds the raw disk, and the bytes depend on nothing but the input.

use std::fs::File;
use std::path::{Path, PathBuf};

use diskfmt::RawDisk;
use diskfmt_testing::{assert_checks, assert_reads_back, info_json, noise, sparse_disk, MIB};
use vagrant::qcow2::{write, write_file, Qcow2Options};

/// A sparse raw disk of 600 MiB + 3 sectors (two L2 tables): noise, text starting mid-cluster,
/// written zeros, small scattered records (compressed clusters sharing host clusters), data
/// across the first L2 table's end (512 MiB) and a tail in a partial cluster.
fn test_disk(dir: &Path) -> PathBuf {
    let size = 600 * MIB + 1536;
    let mut parts = vec![
        (0, noise(MIB as usize, 1)),
        (2 * MIB + 1000, b"Container Linux ".repeat(20_000)),
        (5 * MIB, vec![0u8; 64 << 10]),
    ];
    for i in 0..40 {
        parts.push((
            8 * MIB + i * 3 * (64 << 10) + 7,
            format!("record {i}").into_bytes(),
        ));
    }
    parts.push((512 * MIB - 5000, noise(10_000, 2)));
    parts.push((size - 700, noise(700, 3)));
    sparse_disk(dir, "disk.raw", size, &parts)
}

/// `qemu-img check` output, asserted clean and without leaks; `compare` asserted identical.
fn check_and_compare(raw: &Path, qcow2: &Path) -> String {
    let check = assert_checks(qcow2, "qcow2");
    assert!(!check.contains("leak"), "qemu-img check:\n{check}");
    assert_reads_back(raw, qcow2, "qcow2");
    check
}

#[test]
fn qemu_checks_and_reads_back_the_raw_disk() {
    let dir = tempfile::tempdir().unwrap();
    let raw = test_disk(dir.path());
    let plain = dir.path().join("plain.qcow2");
    let w = write_file(&raw, &plain, &Qcow2Options::default()).unwrap();
    assert_eq!(w.virtual_size, 600 * MIB + 1536);
    assert_eq!(w.file_size, std::fs::metadata(&plain).unwrap().len());
    let check = check_and_compare(&raw, &plain);
    assert!(check.contains("0.00% compressed clusters"), "{check}");

    let info = info_json(&plain, "qcow2");
    assert!(
        info.contains("\"compat\": \"1.1\""),
        "version 3 is compat 1.1:\n{info}"
    );
    assert!(info.contains("\"refcount-bits\": 16"), "{info}");
    assert!(info.contains("\"cluster-size\": 65536"), "{info}");

    let packed = dir.path().join("packed.qcow2");
    let opts = Qcow2Options {
        compress: true,
        threads: None,
    };
    let c = write_file(&raw, &packed, &opts).unwrap();
    assert_eq!(c.clusters, w.clusters);
    assert!(c.file_size < w.file_size, "{c:?} vs {w:?}");
    let check = check_and_compare(&raw, &packed);
    assert!(!check.contains(" 0.00% compressed clusters"), "{check}");
}

#[test]
fn same_bytes_every_run_and_for_any_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    let raw = test_disk(dir.path());
    for compress in [false, true] {
        let mut outputs = Vec::new();
        for threads in [Some(1), Some(3), None] {
            let out = dir.path().join(format!("{compress}-{threads:?}.qcow2"));
            write_file(&raw, &out, &Qcow2Options { compress, threads }).unwrap();
            outputs.push((threads, std::fs::read(&out).unwrap()));
        }
        // Reading every byte (no hole map) gives the same image as skipping the holes.
        let mut dense = RawDisk::new(File::open(&raw).unwrap()).unwrap();
        let mut out = std::io::Cursor::new(Vec::new());
        write(
            &mut dense,
            &mut out,
            &Qcow2Options {
                compress,
                threads: None,
            },
        )
        .unwrap();
        outputs.push((Some(0), out.into_inner()));
        let (_, first) = &outputs[0];
        for (threads, bytes) in &outputs[1..] {
            assert!(
                bytes == first,
                "compress {compress}, threads {threads:?}: other bytes"
            );
        }
    }
}

#[test]
fn odd_sizes_holes_and_empty_disks() {
    let dir = tempfile::tempdir().unwrap();
    // Not a whole sector: padded with zeros to the next one.
    let raw = dir.path().join("odd.raw");
    std::fs::write(&raw, noise(100_001, 4)).unwrap();
    for compress in [false, true] {
        let out = dir.path().join(format!("odd-{compress}.qcow2"));
        let opts = Qcow2Options {
            compress,
            threads: None,
        };
        let w = write_file(&raw, &out, &opts).unwrap();
        assert_eq!(w.virtual_size, 100_352);
        check_and_compare(&raw, &out);
    }

    // All holes: header, one (empty) L1 table cluster, refcount table and block.
    let raw = dir.path().join("holes.raw");
    File::create(&raw).unwrap().set_len(70 * MIB).unwrap();
    let out = dir.path().join("holes.qcow2");
    let w = write_file(&raw, &out, &Qcow2Options::default()).unwrap();
    assert_eq!((w.clusters, w.file_size), (0, 4 << 16));
    check_and_compare(&raw, &out);

    let raw = dir.path().join("empty.raw");
    File::create(&raw).unwrap();
    let out = dir.path().join("empty.qcow2");
    let err = write_file(&raw, &out, &Qcow2Options::default()).unwrap_err();
    assert!(matches!(err, vagrant::qcow2::Error::EmptyDisk), "{err}");
    assert!(!out.exists());
}
