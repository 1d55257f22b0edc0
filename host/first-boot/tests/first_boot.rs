//! The `first-boot` binary against tables `sgdisk` writes and checks (gdisk package): an image
//! file that grew (`--no-kernel`), a corrupted one, ROOT not last. The kernel path (BLKPG,
//! growing the mounted ext4) runs in the container-host QEMU test, on a real first boot.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_first-boot");
/// A UUIDv5-shaped disk GUID, as the image builder makes.
const BUILD_GUID: &str = "6BA7B810-9DAD-51D1-80B4-00C04FD430C8";
const ROOT_TYPE: &str = "3884dd41-8582-4404-b9a8-e9b84f2df50e";
const MIB: u64 = 1 << 20;

fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"))
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn ok(cmd: &mut Command) -> String {
    let o = run(cmd);
    assert!(o.status.success(), "{cmd:?} failed:\n{}", text(&o));
    text(&o)
}

fn sgdisk(args: &[&str], disk: &Path) -> String {
    ok(Command::new("sgdisk").args(args).arg(disk))
}

fn set_len(path: &Path, len: u64) {
    fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(len)
        .unwrap();
}

/// The image builder's layout in `mib` MiB: ESP, USR-A, ROOT last with 1 MiB free after it.
fn builder_image(path: &Path, mib: u64, extra: &[&str]) {
    fs::File::create(path).unwrap().set_len(mib * MIB).unwrap();
    let root_end = (mib - 1) * 2048 - 1;
    let mut args = vec![
        "-U".to_string(),
        BUILD_GUID.into(),
        "-n".into(),
        "1:2048:18431".into(),
        "-t".into(),
        "1:ef00".into(),
        "-c".into(),
        "1:EFI-SYSTEM".into(),
        "-n".into(),
        "3:18432:34815".into(),
        "-c".into(),
        "3:USR-A".into(),
        "-n".into(),
        format!("9:34816:{root_end}"),
        "-t".into(),
        format!("9:{ROOT_TYPE}"),
        "-c".into(),
        "9:ROOT".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    sgdisk(&args, path);
}

fn first_boot(args: &[&str], disk: &Path) -> Output {
    run(Command::new(BIN).arg("--disk").arg(disk).args(args))
}

fn field<'a>(text: &'a str, label: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.strip_prefix(label))
        .unwrap_or_else(|| panic!("no {label:?} in:\n{text}"))
        .trim()
}

#[test]
fn grown_image_checks_out_with_sgdisk() {
    let tmp = tempfile::tempdir().unwrap();
    let disk = tmp.path().join("disk.img");
    builder_image(&disk, 64, &[]);
    let info: Vec<String> = ["1", "3", "9"]
        .iter()
        .map(|n| sgdisk(&["-i", n], &disk))
        .collect();
    set_len(&disk, 128 * MIB);
    let before = sgdisk(&["-v"], &disk);
    assert!(
        !before.contains("No problems found"),
        "sgdisk sees the moved end:\n{before}"
    );

    let o = first_boot(&["--partition", "9", "--no-kernel"], &disk);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("partition 9 grows from LBA 34816-129023 to LBA 34816-260095"));
    assert!(o.stderr.is_empty(), "{}", text(&o));

    let verify = sgdisk(&["-v"], &disk);
    assert!(verify.contains("No problems found"), "{verify}");
    let table = sgdisk(&["-p"], &disk);
    let guid = field(&table, "Disk identifier (GUID):");
    assert_ne!(guid, BUILD_GUID);
    assert_eq!(&guid[14..15], "4", "random GUID: {guid}");
    assert!(
        table.contains("last usable sector is 262110"),
        "backup array right below the last LBA:\n{table}"
    );
    let root = sgdisk(&["-i", "9"], &disk);
    assert_eq!(
        field(&root, "First sector:").split(' ').next(),
        Some("34816")
    );
    assert_eq!(
        field(&root, "Last sector:").split(' ').next(),
        Some("260095")
    );
    for (line, old) in [
        "Partition unique GUID:",
        "Partition GUID code:",
        "Partition name:",
    ]
    .iter()
    .map(|l| (l, &info[2]))
    {
        assert_eq!(field(&root, line), field(old, line));
    }
    for (n, old) in ["1", "3"].iter().zip(&info) {
        assert_eq!(&sgdisk(&["-i", n], &disk), old, "partition {n} unchanged");
    }

    // Second run: nothing to do, not a byte written.
    let bytes = fs::read(&disk).unwrap();
    let o = first_boot(&["--partition", "9", "--no-kernel"], &disk);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("partition table unchanged"),
        "{}",
        text(&o)
    );
    assert_eq!(fs::read(&disk).unwrap(), bytes);
}

#[test]
fn root_not_last_keeps_its_size() {
    let tmp = tempfile::tempdir().unwrap();
    let disk = tmp.path().join("disk.img");
    fs::File::create(&disk).unwrap().set_len(64 * MIB).unwrap();
    sgdisk(
        &[
            "-U",
            BUILD_GUID,
            "-n",
            "9:2048:+16M",
            "-c",
            "9:ROOT",
            "-n",
            "10:0:+16M",
        ],
        &disk,
    );
    let root = sgdisk(&["-i", "9"], &disk);
    set_len(&disk, 96 * MIB);
    let o = first_boot(&["--partition", "9", "--no-kernel"], &disk);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("partition 9 not grown: partition 10 lies after it"),
        "{}",
        text(&o)
    );
    assert!(sgdisk(&["-v"], &disk).contains("No problems found"));
    assert_eq!(sgdisk(&["-i", "9"], &disk), root);
}

#[test]
fn corrupt_primary_header_is_one_error_line_and_no_write() {
    let tmp = tempfile::tempdir().unwrap();
    let disk = tmp.path().join("disk.img");
    builder_image(&disk, 64, &[]);
    set_len(&disk, 128 * MIB);
    let mut bytes = fs::read(&disk).unwrap();
    bytes[512 + 16] ^= 0xff; // the header CRC itself
    fs::write(&disk, &bytes).unwrap();
    let stamp = tmp.path().join("done");
    let o = first_boot(
        &["--partition", "9", "--stamp", stamp.to_str().unwrap()],
        &disk,
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(o.stdout.is_empty());
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        format!(
            "first-boot: error: {}: primary GPT header (LBA 1): GPT header CRC mismatch; nothing written\n",
            disk.display()
        )
    );
    assert_eq!(fs::read(&disk).unwrap(), bytes);
    assert!(!stamp.exists());
}

#[test]
fn usage_errors_exit_2() {
    let o = run(Command::new(BIN).args(["--partition", "9"]));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let o = run(Command::new(BIN).arg("--help"));
    assert!(text(&o).contains("--no-kernel"));
}
