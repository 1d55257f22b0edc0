//! Tests of the pure GPT plan on tables built here byte by byte, with a CRC-32 of our own
//! (table-driven, unlike [`machine::gpt::crc32`]'s bitwise loop), so neither the parser nor the
//! writer checks itself.

use std::io::Cursor;

use proptest::prelude::*;

use super::*;

pub(crate) const MIB_SECTORS: u64 = 2048;

/// CRC-32/ISO-HDLC, table-driven.
pub(crate) fn crc(data: &[u8]) -> u32 {
    let table: Vec<u32> = (0..256u32)
        .map(|n| {
            (0..8).fold(n, |c, _| {
                if c & 1 == 1 {
                    0xedb8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                }
            })
        })
        .collect();
    !data.iter().fold(!0u32, |c, &b| {
        table[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8)
    })
}

/// A UUIDv5-shaped disk GUID, as the image builder makes (version nibble 5).
pub(crate) const V5_GUID: [u8; 16] = [
    0x10, 0x32, 0x54, 0x76, 0x98, 0xba, 0xdc, 0x5e, 0x8f, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd,
];
const FRESH: [u8; 16] = [0xa5; 16];

fn part_guid(n: u32) -> [u8; 16] {
    std::array::from_fn(|i| (n as u8) << 4 | i as u8)
}

pub(crate) struct Spec {
    sector_size: u64,
    sectors: u64,
    /// (number, first LBA, last LBA)
    parts: Vec<(u32, u64, u64)>,
    guid: [u8; 16],
}

impl Spec {
    fn mib(total_mib: u64, parts: &[(u32, u64, u64)]) -> Spec {
        Spec {
            sector_size: 512,
            sectors: total_mib * MIB_SECTORS,
            parts: parts.to_vec(),
            guid: V5_GUID,
        }
    }

    fn entry_sectors(&self) -> u64 {
        128 * 128 / self.sector_size
    }

    pub(crate) fn entries(&self) -> Vec<u8> {
        let mut a = vec![0u8; 128 * 128];
        for &(n, first, last) in &self.parts {
            let e = &mut a[(n as usize - 1) * 128..n as usize * 128];
            e[0..16].copy_from_slice(&[0x11; 16]); // any non-zero type
            e[16..32].copy_from_slice(&part_guid(n));
            e[32..40].copy_from_slice(&first.to_le_bytes());
            e[40..48].copy_from_slice(&last.to_le_bytes());
            e[56..58].copy_from_slice(&(u16::from(b'P')).to_le_bytes());
        }
        a
    }

    fn header(&self, my: u64, alt: u64, entries_lba: u64, entries_crc: u32) -> Vec<u8> {
        let last = self.sectors - 1;
        let mut h = vec![0u8; self.sector_size as usize];
        h[0..8].copy_from_slice(b"EFI PART");
        h[8..12].copy_from_slice(&0x0001_0000u32.to_le_bytes());
        h[12..16].copy_from_slice(&92u32.to_le_bytes());
        h[24..32].copy_from_slice(&my.to_le_bytes());
        h[32..40].copy_from_slice(&alt.to_le_bytes());
        h[40..48].copy_from_slice(&(2 + self.entry_sectors()).to_le_bytes());
        h[48..56].copy_from_slice(&(last - self.entry_sectors() - 1).to_le_bytes());
        h[56..72].copy_from_slice(&self.guid);
        h[72..80].copy_from_slice(&entries_lba.to_le_bytes());
        h[80..84].copy_from_slice(&128u32.to_le_bytes());
        h[84..88].copy_from_slice(&128u32.to_le_bytes());
        h[88..92].copy_from_slice(&entries_crc.to_le_bytes());
        let c = crc(&h[..92]);
        h[16..20].copy_from_slice(&c.to_le_bytes());
        h
    }

    pub(crate) fn image(&self) -> Vec<u8> {
        let ss = self.sector_size as usize;
        let last = self.sectors - 1;
        let mut img = vec![0u8; self.sectors as usize * ss];
        let mbr = &mut img[446..462];
        mbr[4] = 0xee;
        mbr[8..12].copy_from_slice(&1u32.to_le_bytes());
        mbr[12..16].copy_from_slice(&((last.min(u64::from(u32::MAX))) as u32).to_le_bytes());
        img[510..512].copy_from_slice(&[0x55, 0xaa]);
        let entries = self.entries();
        let c = crc(&entries);
        let backup_entries = last - self.entry_sectors();
        img[ss..2 * ss].copy_from_slice(&self.header(1, last, 2, c));
        img[2 * ss..2 * ss + entries.len()].copy_from_slice(&entries);
        let at = backup_entries as usize * ss;
        img[at..at + entries.len()].copy_from_slice(&entries);
        img[last as usize * ss..].copy_from_slice(&self.header(last, 1, backup_entries, c));
        img
    }
}

/// The disk of the image builder's shape: 1 MiB free at each end, ROOT (9) last.
pub(crate) fn builder_disk(total_mib: u64) -> Spec {
    Spec::mib(
        total_mib,
        &[
            (1, MIB_SECTORS, 9 * MIB_SECTORS - 1),
            (3, 9 * MIB_SECTORS, 17 * MIB_SECTORS - 1),
            (9, 17 * MIB_SECTORS, (total_mib - 1) * MIB_SECTORS - 1),
        ],
    )
}

fn read(img: &[u8], ss: u64) -> Result<Table, ReadError> {
    Table::read(&mut Cursor::new(img), ss)
}

fn apply(img: &mut [u8], steps: &[Step]) {
    for step in steps {
        if let Step::Write { offset, bytes, .. } = step {
            let at = *offset as usize;
            img[at..at + bytes.len()].copy_from_slice(bytes);
        }
    }
}

/// Checks a header sector with the independent CRC.
fn header_crc_ok(sector: &[u8]) -> bool {
    let mut h = sector[..92].to_vec();
    let stored = u32::from_le_bytes([h[16], h[17], h[18], h[19]]);
    h[16..20].fill(0);
    crc(&h) == stored
}

fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

#[test]
fn crc_implementations_agree() {
    assert_eq!(crc(b"123456789"), 0xcbf4_3926);
    let data: Vec<u8> = (0..20_000u32).map(|i| (i * 7 + i / 13) as u8).collect();
    assert_eq!(crc(&data), gpt::crc32(&data));
}

#[test]
fn random_guid_has_version_4_and_the_rfc_variant() {
    let g = Guid::random_v4([0xff; 16]);
    assert!(g.is_random());
    let s = g.to_string();
    assert_eq!(&s[14..15], "4", "{s}");
    assert!(matches!(&s[19..20], "8" | "9" | "a" | "b"), "{s}");
    assert!(!Guid(V5_GUID).is_random());
    assert_eq!(&Guid(V5_GUID).to_string()[14..15], "5");
    assert!(!Guid([0; 16]).is_random());
}

#[test]
fn grown_disk_gets_moved_backup_grown_root_and_new_guid() {
    let mut img = builder_disk(64).image();
    let before = read(&img, 512).unwrap();
    img.resize(128 << 20, 0); // the disk grew to 128 MiB
    let table = read(&img, 512).unwrap();
    assert_eq!(table.primary, before.primary, "the old table still reads");
    let plan = plan(&table, 9, Guid::random_v4(FRESH)).unwrap();
    let last = 128 * MIB_SECTORS - 1;
    assert_eq!(plan.backup_move, Some((64 * MIB_SECTORS - 1, last)));
    assert_eq!(
        plan.growth,
        Growth::Grow {
            number: 9,
            first: 17 * MIB_SECTORS,
            from: 63 * MIB_SECTORS - 1,
            to: 127 * MIB_SECTORS - 1,
        }
    );
    assert_eq!(plan.new_guid, Some(Guid::random_v4(FRESH)));
    apply(&mut img, &plan.steps());

    // Checked on the raw bytes with our own CRC.
    let ss = 512usize;
    let (primary, backup) = (&img[ss..2 * ss], &img[last as usize * ss..]);
    assert!(header_crc_ok(primary) && header_crc_ok(backup));
    assert_eq!(le64(primary, 24), 1);
    assert_eq!(le64(primary, 32), last);
    assert_eq!(le64(primary, 48), last - 33, "last usable");
    assert_eq!(le64(primary, 72), 2);
    assert_eq!(le64(backup, 24), last);
    assert_eq!(le64(backup, 32), 1);
    assert_eq!(le64(backup, 48), last - 33);
    assert_eq!(
        le64(backup, 72),
        last - 32,
        "backup array right below the header"
    );
    assert_eq!(primary[56..72], Guid::random_v4(FRESH).0);
    assert_eq!(primary[56..72], backup[56..72]);
    let array = &img[2 * ss..2 * ss + 16384];
    let backup_array = &img[(last as usize - 32) * ss..last as usize * ss];
    assert_eq!(array, backup_array);
    assert_eq!(crc(array), le32(primary, 88));
    assert_eq!(crc(array), le32(backup, 88));
    // ROOT ends 1 MiB before the end; its first LBA, and everything else, unchanged.
    let root = &array[8 * 128..9 * 128];
    assert_eq!(le64(root, 32), 17 * MIB_SECTORS);
    assert_eq!(le64(root, 40), 127 * MIB_SECTORS - 1);
    assert_eq!((le64(root, 40) + 1) % MIB_SECTORS, 0);
    let old = &before.entries;
    assert_eq!(array[..8 * 128], old[..8 * 128]);
    assert_eq!(array[8 * 128..8 * 128 + 40], old[8 * 128..8 * 128 + 40]);
    assert_eq!(array[8 * 128 + 48..], old[8 * 128 + 48..]);
    // The protective MBR covers the new disk.
    assert_eq!(le32(&img, 446 + 12), last as u32);

    // It reads back, and a second run has nothing to do.
    let again = read(&img, 512).unwrap();
    let second = super::plan(&again, 9, Guid::random_v4([0x5a; 16])).unwrap();
    assert!(second.is_noop(), "{:?}", second.describe());
    assert!(second.steps().is_empty());
    assert_eq!(second.growth, Growth::Full { number: 9 });
}

#[test]
fn unchanged_disk_only_gets_a_new_guid() {
    let img = builder_disk(64).image();
    let plan = plan(&read(&img, 512).unwrap(), 9, Guid::random_v4(FRESH)).unwrap();
    assert_eq!(plan.backup_move, None);
    assert_eq!(plan.growth, Growth::Full { number: 9 });
    assert!(plan.mbr.is_none());
    assert!(plan.new_guid.is_some() && !plan.is_noop());
    let mut out = img.clone();
    apply(&mut out, &plan.steps());
    let t = read(&out, 512).unwrap();
    assert_eq!(t.entries, read(&img, 512).unwrap().entries);
    assert_eq!(t.primary.disk_guid, Guid::random_v4(FRESH));
}

#[test]
fn root_not_last_is_not_grown_but_the_backup_moves() {
    let mut spec = builder_disk(64);
    spec.parts[2].2 = 40 * MIB_SECTORS - 1;
    spec.parts
        .push((10, 40 * MIB_SECTORS, 50 * MIB_SECTORS - 1));
    let mut img = spec.image();
    img.resize(100 << 20, 0);
    let plan = plan(&read(&img, 512).unwrap(), 9, Guid::random_v4(FRESH)).unwrap();
    assert_eq!(
        plan.growth,
        Growth::NotLast {
            number: 9,
            after: 10
        }
    );
    assert!(plan.backup_move.is_some());
    assert_eq!(plan.partition, (17 * MIB_SECTORS, 40 * MIB_SECTORS - 1));
    assert!(plan
        .describe()
        .iter()
        .any(|l| l.contains("partition 10 lies after it")));
    apply(&mut img, &plan.steps());
    let t = read(&img, 512).unwrap();
    assert_eq!(t.entries, spec.entries(), "entries untouched");
}

#[test]
fn root_grows_by_whole_mibs_only() {
    // 300 sectors more: the backup table now fits after the builder's 1 MiB gap, which ROOT takes.
    let mut img = builder_disk(64).image();
    img.resize((64 << 20) + 300 * 512, 0);
    let p = plan(&read(&img, 512).unwrap(), 9, Guid::random_v4(FRESH)).unwrap();
    assert_eq!(
        p.growth,
        Growth::Grow {
            number: 9,
            first: 17 * MIB_SECTORS,
            from: 63 * MIB_SECTORS - 1,
            to: 64 * MIB_SECTORS - 1
        }
    );
    apply(&mut img, &p.steps());
    // 300 more: not a whole MiB, ROOT stays; the backup still moves.
    img.resize(img.len() + 300 * 512, 0);
    let p = plan(&read(&img, 512).unwrap(), 9, Guid::random_v4(FRESH)).unwrap();
    assert_eq!(p.growth, Growth::Full { number: 9 });
    assert_eq!(p.new_guid, None);
    assert!(p.backup_move.is_some());
}

#[test]
fn four_kib_sectors() {
    let spec = Spec {
        sector_size: 4096,
        sectors: 16 * 256, // 16 MiB
        parts: vec![(1, 256, 8 * 256 - 1), (2, 8 * 256, 15 * 256 - 1)],
        guid: V5_GUID,
    };
    let mut img = spec.image();
    img.resize(64 << 20, 0);
    let table = read(&img, 4096).unwrap();
    let plan = plan(&table, 2, Guid::random_v4(FRESH)).unwrap();
    let last = 64 * 256 - 1;
    assert_eq!(plan.backup.entries_lba, last - 4);
    assert_eq!(plan.primary.last_usable_lba, last - 5);
    assert_eq!(
        plan.growth,
        Growth::Grow {
            number: 2,
            first: 8 * 256,
            from: 15 * 256 - 1,
            to: 63 * 256 - 1
        }
    );
    apply(&mut img, &plan.steps());
    assert!(header_crc_ok(&img[4096..8192]));
    assert!(read(&img, 4096).is_ok());
}

fn refused(img: &[u8]) -> String {
    match read(img, 512) {
        Ok(t) => match plan(&t, 9, Guid::random_v4(FRESH)) {
            Ok(p) => panic!("not refused: {:?}", p.describe()),
            Err(e) => e.to_string(),
        },
        Err(e) => e.to_string(),
    }
}

#[test]
fn bad_tables_are_refused() {
    struct Case {
        name: &'static str,
        img: Vec<u8>,
        want: &'static str,
    }
    let good = builder_disk(64).image();
    let last = (64 * MIB_SECTORS - 1) as usize * 512;
    let flip = |at: usize| {
        let mut img = good.clone();
        img[at] ^= 0x01;
        img
    };
    let mut overlap = builder_disk(64);
    overlap.parts[1].1 = 8 * MIB_SECTORS;
    let mut outside = builder_disk(64);
    outside.parts[2].2 = 64 * MIB_SECTORS - 10;
    let mut other_array = good.clone();
    let mut differing = builder_disk(64);
    differing.parts.pop();
    let backup_entries = last - 32 * 512;
    other_array[backup_entries..last].copy_from_slice(&differing.entries());
    let header = differing.header(
        64 * MIB_SECTORS - 1,
        1,
        64 * MIB_SECTORS - 33,
        crc(&differing.entries()),
    );
    other_array[last..].copy_from_slice(&header);
    let cases = [
        Case {
            name: "primary header CRC",
            img: flip(512 + 60),
            want: "primary GPT header (LBA 1): GPT header CRC mismatch",
        },
        Case {
            name: "primary array CRC",
            img: flip(2 * 512 + 8 * 128 + 40),
            want: "primary GPT partition array (LBA 2): CRC mismatch",
        },
        Case {
            name: "backup header CRC",
            img: flip(last + 60),
            want: "backup GPT header (LBA 131071): GPT header CRC mismatch",
        },
        Case {
            name: "backup array CRC",
            img: flip(backup_entries + 5),
            want: "backup GPT partition array (LBA 131039): CRC mismatch",
        },
        Case {
            name: "arrays differ",
            img: other_array,
            want: "primary and backup partition arrays differ",
        },
        Case {
            name: "no table",
            img: vec![0; 1 << 20],
            want: "no GPT signature",
        },
        Case {
            name: "overlap",
            img: overlap.image(),
            want: "partitions 1 and 3 overlap",
        },
        Case {
            name: "outside",
            img: outside.image(),
            want: "partition 9 (LBA 34816-131062) is outside the usable LBAs 34-131038",
        },
        Case {
            name: "shrunk",
            img: good[..32 << 20].to_vec(),
            want: "smaller than its GPT says",
        },
        Case {
            name: "tiny",
            img: vec![0; 512],
            want: "no GPT signature",
        },
    ];
    for case in cases {
        let got = refused(&case.img);
        assert!(got.contains(case.want), "{}: {got}", case.name);
    }
}

#[test]
fn missing_partition_is_refused() {
    let t = read(&builder_disk(64).image(), 512).unwrap();
    let e = plan(&t, 4, Guid::random_v4(FRESH)).unwrap_err();
    assert_eq!(e.to_string(), "partition 4 does not exist in the GPT");
}

/// A table the kernel would use: the primary, else the one at the last LBA (block/partitions/efi.c).
fn kernel_readable(img: &[u8]) -> bool {
    let ss = 512;
    if read(img, ss).is_ok() {
        return true;
    }
    let last = img.len() / 512 - 1;
    let Ok(h) = Header::parse(&img[last * 512..]) else {
        return false;
    };
    let at = h.entries_lba as usize * 512;
    h.my_lba == last as u64 && crc(&img[at..at + 16384]) == h.entries_crc32
}

#[test]
fn every_crash_point_leaves_a_usable_table() {
    let mut img = builder_disk(64).image();
    img.resize(96 << 20, 0);
    let plan = plan(&read(&img, 512).unwrap(), 9, Guid::random_v4(FRESH)).unwrap();
    let steps = plan.steps();
    assert_eq!(
        steps
            .iter()
            .map(|s| match s {
                Step::Write { what, .. } => what,
                Step::Sync => "sync",
            })
            .collect::<Vec<_>>(),
        [
            "backup partition array",
            "backup GPT header",
            "sync",
            "primary partition array",
            "primary GPT header",
            "sync",
            "protective MBR",
            "sync"
        ]
    );
    for done in 0..=steps.len() {
        let mut partial = img.clone();
        apply(&mut partial, &steps[..done]);
        assert!(kernel_readable(&partial), "after {done} steps");
    }
}

#[test]
fn protective_mbr_is_fixed_only_when_plain() {
    let img = builder_disk(64).image();
    let mbr = &img[..512];
    assert_eq!(
        protective_mbr_fix(mbr, 64 * MIB_SECTORS),
        None,
        "right size"
    );
    let fixed = protective_mbr_fix(mbr, 1 << 40).unwrap();
    assert_eq!(le32(&fixed, 446 + 12), u32::MAX, "clamped past 2 TiB");
    // GRUB's boot code (legacy BIOS) and the disk signature survive the fix.
    let mut with_code = mbr.to_vec();
    with_code[..440].fill(0xeb);
    with_code[440..444].copy_from_slice(b"sig!");
    let fixed = protective_mbr_fix(&with_code, 1 << 30).unwrap();
    assert_eq!(fixed[..444], with_code[..444]);
    let mut hybrid = mbr.to_vec();
    hybrid[446 + 16 + 4] = 0x83;
    assert_eq!(protective_mbr_fix(&hybrid, 1 << 30), None);
    let mut no_signature = mbr.to_vec();
    no_signature[510] = 0;
    assert_eq!(protective_mbr_fix(&no_signature, 1 << 30), None);
}

#[test]
fn describe_says_what_changes() {
    let mut img = builder_disk(64).image();
    img.resize(128 << 20, 0);
    let plan = plan(&read(&img, 512).unwrap(), 9, Guid::random_v4(FRESH)).unwrap();
    assert_eq!(
        plan.describe(),
        [
            format!("disk GUID {} -> {}", Guid(V5_GUID), Guid::random_v4(FRESH)),
            "backup GPT moves from LBA 131071 to LBA 262143 (the disk grew by 64 MiB)".into(),
            "partition 9 grows from LBA 34816-129023 to LBA 34816-260095 (+64 MiB)".into(),
            "protective MBR resized to the disk's 262144 sectors".into(),
        ]
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever the growth: the result reads back, ROOT ends aligned inside the usable space,
    /// other partitions and all partition GUIDs are unchanged, and a second run is a no-op.
    #[test]
    fn any_growth(total_mib in 20u64..80, extra in 0u64..200_000) {
        let spec = builder_disk(total_mib);
        let mut img = spec.image();
        img.resize(img.len() + extra as usize * 512, 0);
        let table = read(&img, 512).unwrap();
        let p = plan(&table, 9, Guid::random_v4(FRESH)).unwrap();
        apply(&mut img, &p.steps());
        let t = read(&img, 512).unwrap();
        let used = t.validate().unwrap();
        let old = table.validate().unwrap();
        prop_assert_eq!(used.len(), old.len());
        for (new, old) in used.iter().zip(&old) {
            prop_assert_eq!(new.unique_guid, old.unique_guid);
            prop_assert_eq!(new.first_lba, old.first_lba);
            if new.number != 9 {
                prop_assert_eq!(new.last_lba, old.last_lba);
            }
        }
        let root = used.iter().find(|e| e.number == 9).unwrap();
        prop_assert!(root.last_lba <= t.primary.last_usable_lba);
        prop_assert_eq!((root.last_lba + 1) % MIB_SECTORS, 0);
        prop_assert!(t.primary.last_usable_lba - root.last_lba < MIB_SECTORS);
        prop_assert_eq!(t.primary.alternate_lba, (img.len() / 512 - 1) as u64);
        prop_assert!(plan(&t, 9, Guid::random_v4([1; 16])).unwrap().is_noop());
    }
}
