//! `image-builder inspect`: read a disk image back: partition table, what each USR slot holds,
//! and the boot entries on the ESP with their counters.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::disk::gpt::{self, ReadPartition};
use crate::disk::layout::{self, SECTOR};
use contract::slots::{grub, parse_file_name, BootCounter, Slot, ENTRIES_DIR};

#[derive(Debug, Serialize)]
pub struct Inspection {
    pub disk_guid: String,
    pub size: u64,
    pub partitions: Vec<ReadPartition>,
    pub slots: Vec<SlotInfo>,
    pub boot_entries: Vec<EntryInfo>,
    /// Legacy BIOS boot: whether the MBR holds GRUB's boot code, and the boot tries GRUB
    /// journaled since the update engine last folded them into the entry names.
    pub bios: Option<BiosInfo>,
}

#[derive(Debug, Serialize)]
pub struct BiosInfo {
    pub mbr_boot_code: bool,
    /// `boot_tries_usr_a` / `boot_tries_usr_b` of `grub/grubenv` as counts.
    pub journaled_tries: std::collections::BTreeMap<String, u32>,
}

#[derive(Debug, Serialize)]
pub struct SlotInfo {
    pub label: String,
    pub partuuid: String,
    /// `squashfs` or `empty`.
    pub content: String,
    /// `VERSION_ID` from the slot's os-release, when it holds one.
    pub version: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct EntryInfo {
    pub file: String,
    pub title: String,
    pub version: String,
    /// `usr=PARTUUID=` of the entry, resolved to a slot label.
    pub slot: Option<String>,
    pub tries_left: Option<u32>,
    pub tries_done: Option<u32>,
}

fn read_at(f: &mut File, offset: u64, len: usize) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    f.seek(SeekFrom::Start(offset))?;
    f.read_exact(&mut buf)
        .context("the disk image is truncated")?;
    Ok(buf)
}

pub fn inspect(path: &Path) -> Result<Inspection> {
    let mut f = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let size = f.metadata()?.len();
    let head = read_at(&mut f, 0, 34 * SECTOR as usize)
        .with_context(|| format!("reading the GPT of {}", path.display()))?;
    let (disk_guid, partitions) =
        gpt::parse(&head).with_context(|| format!("{} has no valid GPT", path.display()))?;
    let part_bytes = |p: &ReadPartition| {
        (
            p.first_lba * SECTOR,
            (p.last_lba + 1 - p.first_lba) * SECTOR,
        )
    };

    let mut slots = Vec::new();
    for p in partitions
        .iter()
        .filter(|p| p.label == layout::USR_A || p.label == layout::USR_B)
    {
        let (off, len) = part_bytes(p);
        let magic = read_at(&mut f, off, 4)?;
        let (content, version) = if &magic == b"hsqs" {
            let img = read_at(&mut f, off, len as usize)?;
            ("squashfs".to_string(), slot_version(&img))
        } else {
            ("empty".to_string(), None)
        };
        slots.push(SlotInfo {
            label: p.label.clone(),
            partuuid: p.guid.to_string(),
            content,
            version,
        });
    }

    let mbr_boot_code = head[..gpt::MBR_BOOT_CODE].iter().any(|&b| b != 0);
    let mut bios = None;
    let mut boot_entries = Vec::new();
    if let Some(p) = partitions.iter().find(|p| p.label == layout::ESP) {
        let (off, len) = part_bytes(p);
        let img = read_at(&mut f, off, len as usize)?;
        let files = crate::fs::fat::read_files(&img).context("reading the EFI system partition")?;
        if let Some(env) = files.iter().find(|f| f.path == grub::GRUBENV) {
            let vars = grub::parse_envblk(&env.data).unwrap_or_default();
            bios = Some(BiosInfo {
                mbr_boot_code,
                journaled_tries: [Slot::A, Slot::B]
                    .into_iter()
                    .map(|s| (s.label().to_string(), grub::journaled_tries(&vars, s)))
                    .collect(),
            });
        }
        for file in files
            .iter()
            .filter(|f| f.path.starts_with(&format!("{}/", ENTRIES_DIR)))
        {
            let name = file.path.rsplit('/').next().unwrap_or_default().to_string();
            let text = String::from_utf8_lossy(&file.data);
            let field = |k: &str| {
                text.lines().find_map(|l| {
                    l.strip_prefix(k)
                        .and_then(|r| r.strip_prefix(' '))
                        .map(|v| v.trim().to_string())
                })
            };
            let counter: Option<BootCounter> = parse_file_name(&name).and_then(|(_, c)| c);
            let partuuid = field("options").and_then(|o| {
                o.split_whitespace()
                    .find_map(|a| a.strip_prefix("usr=PARTUUID=").map(|u| u.to_lowercase()))
            });
            let slot = partuuid.and_then(|u| {
                partitions
                    .iter()
                    .find(|p| p.guid.to_string() == u)
                    .map(|p| p.label.clone())
            });
            boot_entries.push(EntryInfo {
                file: name,
                title: field("title").unwrap_or_default(),
                version: field("version").unwrap_or_default(),
                slot,
                tries_left: counter.map(|c| c.left),
                tries_done: counter.map(|c| c.done),
            });
        }
    }
    Ok(Inspection {
        disk_guid: disk_guid.to_string(),
        size,
        partitions,
        slots,
        boot_entries,
        bios,
    })
}

/// `VERSION_ID` from `lib/os-release` inside a squashfs slot image.
fn slot_version(img: &[u8]) -> Option<String> {
    let reader = backhand::FilesystemReader::from_reader(std::io::Cursor::new(img)).ok()?;
    for node in reader.files() {
        if node.fullpath.as_path() != Path::new("/lib/os-release") {
            continue;
        }
        if let backhand::InnerNode::File(file) = &node.inner {
            let mut text = String::new();
            reader.file(file).reader().read_to_string(&mut text).ok()?;
            return text.lines().find_map(|l| {
                l.strip_prefix("VERSION_ID=")
                    .map(|v| v.trim_matches('"').to_string())
            });
        }
    }
    None
}

/// Human-readable form.
pub fn render(i: &Inspection) -> String {
    let mut s = format!("disk {} ({} MiB)\n\n", i.disk_guid, i.size / layout::MIB);
    s.push_str(" #  label       start(MiB)  size(MiB)  partuuid\n");
    for p in &i.partitions {
        s.push_str(&format!(
            "{:>2}  {:<10}  {:>10}  {:>9}  {}\n",
            p.number,
            p.label,
            p.first_lba * SECTOR / layout::MIB,
            (p.last_lba + 1 - p.first_lba) * SECTOR / layout::MIB,
            p.guid
        ));
    }
    s.push_str("\nslots:\n");
    for sl in &i.slots {
        let v = sl
            .version
            .as_deref()
            .map(|v| format!(" version {v}"))
            .unwrap_or_default();
        s.push_str(&format!("  {}  {}{}\n", sl.label, sl.content, v));
    }
    s.push_str("\nboot entries:\n");
    for e in &i.boot_entries {
        let counter = match (e.tries_left, e.tries_done) {
            (Some(l), Some(d)) => format!("tries left {l}, done {d}"),
            _ => "blessed (no counter)".to_string(),
        };
        s.push_str(&format!(
            "  {}  version {}  slot {}  {}\n",
            e.file,
            e.version,
            e.slot.as_deref().unwrap_or("?"),
            counter
        ));
    }
    if let Some(b) = &i.bios {
        let tries: Vec<String> = b
            .journaled_tries
            .iter()
            .map(|(slot, n)| format!("{slot} {n}"))
            .collect();
        s.push_str(&format!(
            "\nlegacy BIOS: GRUB {}, tries journaled in grub/grubenv: {}\n",
            if b.mbr_boot_code {
                "in the MBR"
            } else {
                "missing from the MBR"
            },
            tries.join(", ")
        ));
    }
    s
}
