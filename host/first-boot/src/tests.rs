//! [`run`] on image files: the GPT path end to end without a kernel, in both target modes.
//! The sgdisk cross-checks and the loop-device (kernel) path are in `tests/first_boot.rs`.

use std::fs;

use super::locate::tests::fake_sysfs;
use super::table::tests::{builder_disk, MIB_SECTORS};
use super::table::Growth;
use super::*;

fn run_text(opts: &Options) -> (Result<(), Error>, String) {
    let mut out = Vec::new();
    let r = run(opts, &mut out);
    (r, String::from_utf8(out).unwrap())
}

/// A 64 MiB image of the builder's shape, grown to 128 MiB, in `dir/name`.
fn grown_image(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, builder_disk(64).image()).unwrap();
    File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(128 << 20)
        .unwrap();
    path
}

fn read_table(path: &Path) -> Table {
    Table::read(&mut File::open(path).unwrap(), 512).unwrap()
}

fn disk_opts(disk: &Path, partition: u32) -> Options {
    Options::new(Target::Disk {
        disk: disk.to_path_buf(),
        partition,
    })
}

#[test]
fn image_file_is_rewritten_once() {
    let tmp = tempfile::tempdir().unwrap();
    let disk = grown_image(tmp.path(), "disk.img");
    let before = read_table(&disk);
    let stamp = tmp.path().join("state/first-boot/done");
    let opts = Options {
        stamp: Some(stamp.clone()),
        ..disk_opts(&disk, 9)
    };
    let (r, text) = run_text(&opts);
    r.unwrap();
    for want in [
        "sectors of 512 bytes, partition 9",
        "first-boot: backup GPT moves from LBA 131071 to LBA 262143",
        "first-boot: partition 9 grows from LBA 34816-129023 to LBA 34816-260095 (+64 MiB)",
        "first-boot: partition table written",
        "is not a block device: no partition or file system to resize",
        "done (",
    ] {
        assert!(text.contains(want), "no {want:?} in:\n{text}");
    }
    let after = read_table(&disk);
    assert_ne!(after.primary.disk_guid, before.primary.disk_guid);
    assert!(after.primary.disk_guid.is_random());
    let plan = table::plan(&after, 9, Guid::random_v4([0; 16])).unwrap();
    assert!(plan.is_noop());
    assert_eq!(plan.partition.1, 127 * MIB_SECTORS - 1);
    assert!(stamp.exists());

    // The stamp stops the next run; without it, the run finds nothing to do.
    let bytes = fs::read(&disk).unwrap();
    let (r, text) = run_text(&opts);
    r.unwrap();
    assert!(text.contains("exists: nothing to do"), "{text}");
    let (r, text) = run_text(&disk_opts(&disk, 9));
    r.unwrap();
    assert!(text.contains("is random already, kept"), "{text}");
    assert!(text.contains("partition table unchanged"), "{text}");
    assert_eq!(fs::read(&disk).unwrap(), bytes);
}

#[test]
fn dry_run_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let disk = grown_image(tmp.path(), "disk.img");
    let bytes = fs::read(&disk).unwrap();
    let stamp = tmp.path().join("done");
    let opts = Options {
        dry_run: true,
        stamp: Some(stamp.clone()),
        ..disk_opts(&disk, 9)
    };
    let (r, text) = run_text(&opts);
    r.unwrap();
    assert!(text.contains("partition 9 grows"), "{text}");
    assert!(
        text.ends_with("first-boot: dry run: nothing written\n"),
        "{text}"
    );
    assert_eq!(fs::read(&disk).unwrap(), bytes);
    assert!(!stamp.exists());
}

#[test]
fn corrupt_primary_header_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let disk = grown_image(tmp.path(), "disk.img");
    let mut bytes = fs::read(&disk).unwrap();
    bytes[512 + 60] ^= 0x40; // the disk GUID, under the header CRC
    fs::write(&disk, &bytes).unwrap();
    let stamp = tmp.path().join("done");
    let (r, text) = run_text(&Options {
        stamp: Some(stamp.clone()),
        ..disk_opts(&disk, 9)
    });
    let e = r.unwrap_err().to_string();
    assert_eq!(
        e,
        format!(
            "{}: primary GPT header (LBA 1): GPT header CRC mismatch; nothing written",
            disk.display()
        )
    );
    assert_eq!(text, "");
    assert_eq!(fs::read(&disk).unwrap(), bytes);
    assert!(!stamp.exists());
}

#[test]
fn errors_are_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("missing.img");
    let (r, _) = run_text(&disk_opts(&missing, 9));
    assert_eq!(
        r.unwrap_err().to_string(),
        format!("opening {}: No such file or directory", missing.display())
    );
    let disk = grown_image(tmp.path(), "disk.img");
    let (r, _) = run_text(&disk_opts(&disk, 5));
    let e = r.unwrap_err().to_string();
    assert!(
        e.ends_with("partition 5 does not exist in the GPT; nothing written"),
        "{e}"
    );
    let empty = tmp.path().join("empty.img");
    fs::write(&empty, []).unwrap();
    let (r, _) = run_text(&disk_opts(&empty, 9));
    assert!(r.unwrap_err().to_string().contains("no GPT signature"));
}

fn root_opts(root: &Path, mountinfo: &str) -> Options {
    let path = root.join("mountinfo");
    fs::write(&path, mountinfo).unwrap();
    Options {
        mountinfo: path,
        sysfs: fake_sysfs(root),
        stamp: Some(root.join("done")),
        ..Options::new(Target::Root)
    }
}

#[test]
fn root_mode_finds_the_disk_of_slash() {
    let tmp = tempfile::tempdir().unwrap();
    fs::create_dir(tmp.path().join("dev")).unwrap();
    let disk = grown_image(&tmp.path().join("dev"), "vda");
    let opts = root_opts(
        tmp.path(),
        "25 1 254:3 / /usr ro - squashfs /dev/vda3 ro\n1 0 254:9 / / rw - ext4 /dev/vda9 rw\n",
    );
    let (r, text) = run_text(&opts);
    r.unwrap();
    assert!(
        text.contains(&format!(
            "{}: 262144 sectors of 512 bytes, partition 9",
            disk.display()
        )),
        "{text}"
    );
    let plan = table::plan(&read_table(&disk), 9, Guid::random_v4([0; 16])).unwrap();
    assert_eq!(plan.growth, Growth::Full { number: 9 });
    assert!(plan.is_noop());
    assert!(tmp.path().join("done").exists());
}

#[test]
fn root_not_on_a_partition_is_nothing_to_do() {
    for (mountinfo, want) in [
        (
            "1 0 0:30 / / rw - tmpfs tmpfs rw\n",
            "/ is tmpfs (tmpfs), not on a disk: nothing to do",
        ),
        (
            "1 0 254:0 / / rw - ext4 /dev/vda rw\n",
            "/ is on vda, a whole disk: no partition to grow",
        ),
        (
            "1 0 253:0 / / rw - ext4 /dev/dm-0 rw\n",
            "/ is on dm-0, a device-mapper device",
        ),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let (r, text) = run_text(&root_opts(tmp.path(), mountinfo));
        r.unwrap();
        assert!(text.contains(want), "{text}");
        assert!(tmp.path().join("done").exists());
    }
    let tmp = tempfile::tempdir().unwrap();
    let (r, _) = run_text(&root_opts(
        tmp.path(),
        "22 27 0:21 / /proc rw - proc proc rw\n",
    ));
    assert!(r
        .unwrap_err()
        .to_string()
        .ends_with("no file system is mounted at /"));
}
