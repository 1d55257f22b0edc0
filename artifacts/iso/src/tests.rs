//! The writer's volumes read back by `isoinfo` (genisoimage's reader, not ours), plus the
//! rules a reader cannot show: sort order, records within blocks, the boot structures.

use std::path::Path;
use std::process::Command;

use super::*;

fn volume(files: &[(&str, usize)]) -> Volume {
    Volume {
        volume_id: "TEST_1_0_0".into(),
        application: "IMAGE-BUILDER".into(),
        epoch: 1_767_225_600,
        files: files
            .iter()
            .map(|(p, len)| FileSpec {
                path: p.to_string(),
                len: *len as u64,
            })
            .collect(),
        boot: Vec::new(),
        catalog: "BOOT.CAT".into(),
        tail_bytes: 0,
    }
}

fn content(i: usize, len: usize) -> Vec<u8> {
    (0..len).map(|b| (b * 7 + i * 13) as u8).collect()
}

fn render(v: &Volume, tail: &[u8]) -> (Layout, Vec<u8>) {
    let layout = Layout::plan(v).unwrap();
    let data: Vec<Vec<u8>> = v
        .files
        .iter()
        .enumerate()
        .map(|(i, f)| content(i, f.len as usize))
        .collect();
    let refs: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
    let mut out = Vec::new();
    write(&layout, &[0xee; SYSTEM_AREA_BYTES], &refs, tail, &mut out).unwrap();
    assert_eq!(out.len() as u64, layout.size());
    (layout, out)
}

fn isoinfo(image: &Path, args: &[&str]) -> Vec<u8> {
    let out = Command::new("isoinfo")
        .arg("-i")
        .arg(image)
        .args(args)
        .output()
        .expect("isoinfo (genisoimage) runs: scripts/setup-host.sh installs it");
    assert!(
        out.status.success(),
        "isoinfo {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn isoinfo_reads_names_dates_and_bytes() {
    let files = [
        ("README.TXT", 100),
        ("BOOT/GRUB/GRUB.CFG", 3000),
        ("BOOT/GRUB/ELTORITO.IMG", 40_000),
        ("LIVE/VMLINUZ", 0),
        ("EFIBOOT.IMG", 5000),
        ("A/B/C/D/E/F/G.X", 1),
    ];
    let v = volume(&files);
    let (_, bytes) = render(&v, &[]);
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("t.iso");
    std::fs::write(&image, &bytes).unwrap();
    let info = String::from_utf8(isoinfo(&image, &["-d"])).unwrap();
    assert!(info.contains("Volume id: TEST_1_0_0"), "{info}");
    assert!(info.contains("Application id: IMAGE-BUILDER"), "{info}");
    assert!(
        info.contains(&format!("Volume size is: {}", bytes.len() / 2048)),
        "{info}"
    );
    assert!(info.contains("NO Rock Ridge present"), "{info}");
    for (i, (path, len)) in files.iter().enumerate() {
        let got = isoinfo(&image, &["-x", &format!("/{path};1")]);
        assert_eq!(got, content(i, *len), "{path}");
    }
    let long = String::from_utf8(isoinfo(&image, &["-l"])).unwrap();
    assert!(
        long.contains("Jan  1 2026 ["),
        "dates from the epoch: {long}"
    );
    let listing = String::from_utf8(isoinfo(&image, &["-f"])).unwrap();
    let want = [
        "/A",
        "/BOOT",
        "/EFIBOOT.IMG;1",
        "/LIVE",
        "/README.TXT;1",
        "/A/B",
        "/BOOT/GRUB",
        "/LIVE/VMLINUZ;1",
    ];
    for w in want {
        assert!(listing.lines().any(|l| l == w), "{w} in {listing}");
    }
}

#[test]
fn isoinfo_reads_the_el_torito_catalog() {
    let mut v = volume(&[
        ("BOOT/GRUB/ELTORITO.IMG", 30_000),
        ("EFIBOOT.IMG", 40 << 20),
    ]);
    v.boot = vec![
        BootEntry {
            path: "BOOT/GRUB/ELTORITO.IMG".into(),
            platform: Platform::Bios,
            load_sectors: Some(4),
            boot_info_table: true,
        },
        BootEntry {
            path: "EFIBOOT.IMG".into(),
            platform: Platform::Efi,
            load_sectors: None,
            boot_info_table: false,
        },
    ];
    v.tail_bytes = 33 * 512;
    let tail = vec![0x5a; 33 * 512];
    let (layout, bytes) = render(&v, &tail);
    assert_eq!(&bytes[bytes.len() - tail.len()..], tail.as_slice());
    assert_eq!(layout.tail_offset(), layout.size() - tail.len() as u64);
    assert_eq!(&bytes[..SYSTEM_AREA_BYTES], &[0xee; SYSTEM_AREA_BYTES][..]);
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("t.iso");
    std::fs::write(&image, &bytes).unwrap();
    let info = String::from_utf8(isoinfo(&image, &["-d"])).unwrap();
    let bios = layout.extent("BOOT/GRUB/ELTORITO.IMG").unwrap();
    assert!(info.contains("El Torito VD version 1 found"), "{info}");
    assert!(info.contains("Arch 0 (x86)"), "{info}");
    assert!(info.contains("Bootoff"), "{info}");
    assert!(
        info.contains(&format!("Bootoff {:x} {}", bios.block, bios.block)),
        "{info}"
    );
    assert!(info.contains("Nsect 4"), "{info}");
    // The boot info table, patched into the copy on the volume only.
    let at = bios.offset() as usize;
    let image_bytes = &bytes[at..at + bios.len as usize];
    assert_eq!(&image_bytes[8..12], &16u32.to_le_bytes());
    assert_eq!(&image_bytes[12..16], &(bios.block as u32).to_le_bytes());
    assert_eq!(&image_bytes[16..20], &30_000u32.to_le_bytes());
    let sum = image_bytes[64..]
        .chunks(4)
        .map(|w| u32::from_le_bytes(w.try_into().unwrap()))
        .fold(0u32, u32::wrapping_add);
    assert_eq!(&image_bytes[20..24], &sum.to_le_bytes());
    assert_eq!(&image_bytes[..8], &content(0, 8)[..]);
    assert_eq!(&image_bytes[64..], &content(0, 30_000)[64..]);

    // The catalog: validation entry sums to zero, default BIOS entry, final UEFI section
    // whose 40 MiB image does not fit a 16-bit count (0: the rest of the volume).
    let catalog = layout.catalog().unwrap();
    let c = &bytes[catalog.offset() as usize..][..64 + 64];
    let sum = c[..32]
        .chunks(2)
        .map(|w| u16::from_le_bytes([w[0], w[1]]))
        .fold(0u16, u16::wrapping_add);
    assert_eq!(sum, 0);
    assert_eq!((c[0], c[1], c[30], c[31]), (1, 0, 0x55, 0xaa));
    assert_eq!(c[32], 0x88);
    assert_eq!((c[64], c[65], c[66]), (0x91, 0xef, 1));
    assert_eq!(c[96], 0x88);
    assert_eq!(&c[96 + 6..96 + 8], &[0, 0]);
    let efi = layout.extent("EFIBOOT.IMG").unwrap();
    assert_eq!(&c[96 + 8..96 + 12], &(efi.block as u32).to_le_bytes());
    // Boot record at block 17 points at the catalog.
    let br = &bytes[17 * 2048..18 * 2048];
    assert_eq!(&br[1..6], b"CD001");
    assert_eq!(&br[7..30], EL_TORITO_ID);
    assert_eq!(&br[71..75], &(catalog.block as u32).to_le_bytes());
}

#[test]
fn the_same_volume_is_the_same_bytes() {
    let v = volume(&[("X.IMG", 10_000), ("D/Y", 5)]);
    assert_eq!(render(&v, &[]).1, render(&v, &[]).1);
    let mut w = v.clone();
    w.epoch += 1;
    assert_ne!(render(&v, &[]).1, render(&w, &[]).1);
}

#[test]
fn children_sort_by_name_then_extension() {
    let v = volume(&[
        ("AB", 1),
        ("A.Z", 1),
        ("A", 1),
        ("A.B", 1),
        ("A_", 1),
        ("B", 1),
    ]);
    let layout = Layout::plan(&v).unwrap();
    let ids: Vec<String> = layout.dirs[0]
        .children
        .iter()
        .map(|(id, _)| String::from_utf8(id.clone()).unwrap())
        .collect();
    assert_eq!(ids, ["A;1", "A.B;1", "A.Z;1", "AB;1", "A_;1", "B;1"]);
}

#[test]
fn records_never_cross_a_block() {
    let names: Vec<String> = (0..200).map(|i| format!("D/F{i:05}.TXT")).collect();
    let files: Vec<(&str, usize)> = names.iter().map(|n| (n.as_str(), 3)).collect();
    let v = volume(&files);
    let (layout, bytes) = render(&v, &[]);
    let d = layout.dirs[1].extent;
    assert!(d.len > BLOCK, "200 records take more than one block");
    let dir = &bytes[d.offset() as usize..][..d.len as usize];
    let mut seen = 0;
    for block in dir.chunks(BLOCK as usize) {
        let mut at = 0;
        while at < block.len() && block[at] != 0 {
            at += block[at] as usize;
            seen += 1;
        }
        assert!(at <= block.len());
    }
    assert_eq!(seen, 202, "., .. and 200 files");
}

#[test]
fn refusals_name_the_problem() {
    let bad = |path: &str| Layout::plan(&volume(&[(path, 1)])).unwrap_err().to_string();
    assert!(
        bad("readme.txt").contains("\"readme\""),
        "{}",
        bad("readme.txt")
    );
    assert!(bad("TOOLONGNAME.TXT").contains("1 to 8"));
    assert!(bad("A.TEXT").contains("extension"));
    assert!(bad("A/B/C/D/E/F/G/H/I.X").contains("levels of directories"));
    assert!(bad("").contains("name"));
    let dup = Layout::plan(&volume(&[("A/B", 1), ("A", 1)])).unwrap_err();
    assert_eq!(dup, IsoError::Duplicate("A".into()));
    let dup = Layout::plan(&volume(&[("A", 1), ("A/B", 1)])).unwrap_err();
    assert_eq!(dup, IsoError::Duplicate("A".into()));
    let mut v = volume(&[("A", 1)]);
    v.volume_id = "lower".into();
    assert!(matches!(Layout::plan(&v), Err(IsoError::VolumeId(_))));
    v.volume_id = "OK".into();
    v.boot = vec![BootEntry {
        path: "NOPE".into(),
        platform: Platform::Bios,
        load_sectors: Some(4),
        boot_info_table: true,
    }];
    assert_eq!(
        Layout::plan(&v).unwrap_err(),
        IsoError::NoBootImage("NOPE".into())
    );
    v.boot[0].path = "A".into();
    assert!(matches!(
        Layout::plan(&v),
        Err(IsoError::ShortBootImage { .. })
    ));
    let big = Layout::plan(&volume(&[("BIG", 0)])).unwrap();
    let mut out = Vec::new();
    let err = write(&big, &[0; 10], &[&[]], &[], &mut out).unwrap_err();
    assert!(err.to_string().contains("system area"));
    let err = write(&big, &[0; SYSTEM_AREA_BYTES], &[&[1]], &[], &mut out).unwrap_err();
    assert!(err.to_string().contains("planned as 0"));
}
