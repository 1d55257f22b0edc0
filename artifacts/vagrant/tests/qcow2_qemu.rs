//! The qcow2 writer against the real `qemu-img`: `check` finds no errors and no leaks,
//! `compare` finds the raw disk, and the bytes depend on nothing but the input.

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use ova::RawDisk;
use vagrant::qcow2::{write, write_file, Qcow2Options};

const MIB: u64 = 1 << 20;

/// Pseudo-random (incompressible) bytes, the same on every run.
fn noise(len: usize, seed: u64) -> Vec<u8> {
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

/// A sparse raw disk of 600 MiB + 3 sectors (two L2 tables): noise, text starting mid-cluster,
/// written zeros, small scattered records (compressed clusters sharing host clusters), data
/// across the first L2 table's end (512 MiB) and a tail in a partial cluster.
fn test_disk(dir: &Path) -> PathBuf {
    let path = dir.join("disk.raw");
    let size = 600 * MIB + 1536;
    let mut f = File::create(&path).unwrap();
    f.set_len(size).unwrap();
    let mut put = |at: u64, bytes: &[u8]| {
        f.seek(SeekFrom::Start(at)).unwrap();
        f.write_all(bytes).unwrap();
    };
    put(0, &noise(MIB as usize, 1));
    put(2 * MIB + 1000, &b"Container Linux ".repeat(20_000));
    put(5 * MIB, &vec![0u8; 64 << 10]);
    for i in 0..40 {
        put(
            8 * MIB + i * 3 * (64 << 10) + 7,
            format!("record {i}").as_bytes(),
        );
    }
    put(512 * MIB - 5000, &noise(10_000, 2));
    put(size - 700, &noise(700, 3));
    path
}

fn qemu_img(args: &[&str]) -> (bool, String) {
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

/// `qemu-img check` output, asserted clean; `compare` asserted identical.
fn check_and_compare(raw: &Path, qcow2: &Path) -> String {
    let q = qcow2.to_str().unwrap();
    let (ok, check) = qemu_img(&["check", "-f", "qcow2", q]);
    assert!(
        ok && check.contains("No errors were found"),
        "qemu-img check:\n{check}"
    );
    assert!(!check.contains("leak"), "qemu-img check:\n{check}");
    let (ok, text) = qemu_img(&[
        "compare",
        "-f",
        "raw",
        "-F",
        "qcow2",
        raw.to_str().unwrap(),
        q,
    ]);
    assert!(
        ok && text.contains("Images are identical"),
        "qemu-img compare:\n{text}"
    );
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

    let (ok, info) = qemu_img(&["info", "--output=json", plain.to_str().unwrap()]);
    assert!(ok, "{info}");
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
