//! GPT readers: the machines' (`machine::gpt`: `/init`, first-boot and the update engine find
//! partitions with it) and the builder's (`disk::gpt::parse`, `image-builder inspect`). Neither
//! panics on any disk, and where both accept the primary table they read the same partitions.
//!
//! Input: one flag byte, then the start of a disk. CRCs stop a fuzzer at the first check, so
//! the flags ask for them to be fixed up first: bit 0 the primary header's, bit 1 the primary
//! entry array's, bit 2 both of the backup table in the last sector.

#![no_main]

use std::io::Cursor;

use libfuzzer_sys::fuzz_target;
use machine::gpt as host;

const SECTOR: usize = 512;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, disk)) = data.split_first() else {
        return;
    };
    let mut disk = disk.to_vec();
    if disk.len() >= 2 * SECTOR {
        fix_crcs(&mut disk, SECTOR, flags & 1 != 0, flags & 2 != 0);
    }
    if flags & 4 != 0 && disk.len() >= 3 * SECTOR {
        let last = disk.len() / SECTOR * SECTOR - SECTOR;
        fix_crcs(&mut disk, last, true, true);
    }

    for sector in [512, 4096] {
        let _ = host::read(&mut Cursor::new(&disk), sector);
    }
    let builder = image_builder::disk::gpt::parse(&disk);
    let Ok((disk_guid, parts)) = builder else {
        return;
    };
    let header = host::parse_header(&disk[SECTOR..2 * SECTOR]).ok();
    let Some(header) = header else {
        return;
    };
    assert_eq!(header.disk_guid, disk_guid.to_string());
    let start = header.entries_lba as usize * SECTOR;
    let Ok(host_parts) = host::parse_entries(&header, &disk[start..]) else {
        return;
    };
    assert_eq!(host_parts.len(), parts.len());
    for (h, b) in host_parts.iter().zip(&parts) {
        assert_eq!(h.number, b.number);
        assert_eq!(h.name, b.label);
        assert_eq!(h.type_guid, b.type_guid.to_string());
        assert_eq!(h.unique_guid, b.guid.to_string());
    }
});

/// Recompute the entry array's CRC (`entries`) and then the header's (`header`) of the header
/// at byte `at`, where the fields make that possible.
fn fix_crcs(disk: &mut [u8], at: usize, header: bool, entries: bool) {
    let u32_at = |d: &[u8], i: usize| u32::from_le_bytes(d[at + i..at + i + 4].try_into().unwrap());
    if entries {
        let lba = u64::from_le_bytes(disk[at + 72..at + 80].try_into().unwrap());
        let len = u64::from(u32_at(disk, 80)) * u64::from(u32_at(disk, 84));
        let start = lba.saturating_mul(SECTOR as u64);
        if len <= 1 << 20 && start.saturating_add(len) <= disk.len() as u64 {
            let crc = host::crc32(&disk[start as usize..(start + len) as usize]);
            disk[at + 88..at + 92].copy_from_slice(&crc.to_le_bytes());
        }
    }
    let size = u32_at(disk, 12) as usize;
    if header && (92..=SECTOR).contains(&size) {
        disk[at + 16..at + 20].fill(0);
        let crc = host::crc32(&disk[at..at + size]);
        disk[at + 16..at + 20].copy_from_slice(&crc.to_le_bytes());
    }
}
