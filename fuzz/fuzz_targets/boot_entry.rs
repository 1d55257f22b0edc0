//! Boot entries and what reads them: entry file names with their boot counter, entry files
//! (`slots::parse_entry`), GRUB's environment block (the boot-try journal), the kernel command
//! line `/init` parses, and the command line the update engine carries into the next slot's
//! entry (`policy::cmdline_for_new_slot`). Nothing panics; a name, an entry and an environment
//! block each read back from what is written for them; GRUB's version rank sorts as
//! `version_key`; and a bootable entry (its options give `/init` its `usr=`) stays bootable
//! through an update: the next slot's entry gives `/init` the next slot's `usr=`.
//!
//! Input: `<file name>\0<entry text>\0<grubenv>`.

#![no_main]

use contract::cmdline::{self, DeviceSpec, UsrSpec};
use contract::slots::{grub, parse_entry, parse_file_name, version_key, BootEntry, Slot};
use libfuzzer_sys::fuzz_target;
use update_engine::policy::cmdline_for_new_slot;

const OS_ID: &str = "minimal";
const BOOTED_UUID: &str = "0d3f0c6e-8f0d-5c55-9d25-2b3e5a2f9a11";
const NEXT_UUID: &str = "6a1f8e3c-2b9d-5e47-8c10-4f7a9d3e2b61";

fuzz_target!(|data: &[u8]| {
    let parts = fuzz::split_nul(data, 3);
    let file_name = String::from_utf8_lossy(parts[0]);
    let text = String::from_utf8_lossy(parts[1]);

    if let Some((base, counter)) = parse_file_name(&file_name) {
        let again = match counter {
            Some(c) => format!("{base}+{}-{}.conf", c.left, c.done),
            None => format!("{base}.conf"),
        };
        assert_eq!(parse_file_name(&again), Some((base, counter)), "{again:?}");
    }
    let info = parse_entry(OS_ID, &file_name, &text);
    if let Some(info) = &info {
        assert_eq!(info.version, info.version.trim());
        assert_eq!(info.exhausted(), info.counter.is_some_and(|c| c.left == 0));
    }

    let version = text.lines().next().unwrap_or_default().trim();
    let (a, b) = (
        version,
        info.as_ref().map_or("1.0.0", |i| i.version.as_str()),
    );
    assert_eq!(
        grub::version_rank(a).cmp(&grub::version_rank(b)),
        version_key(a).cmp(&version_key(b)),
        "{a:?} vs {b:?}"
    );

    for line in text.lines() {
        let _ = cmdline::parse(line);
        let _ = cmdline::failure_action(line);
        for word in cmdline::split_args(line) {
            if let Some((_, value)) = word.split_once('=') {
                if let Ok(spec) = DeviceSpec::parse("usr", value) {
                    assert_eq!(DeviceSpec::parse("usr", &spec.to_string()).ok(), Some(spec));
                }
            }
        }
    }

    // The booted entry: this text under the name the builder or the engine gave it.
    let booted = BootEntry {
        os_id: OS_ID.into(),
        os_name: "Minimal Linux".into(),
        version: if version.is_empty() || version.contains(char::is_whitespace) {
            "1.0.0".into()
        } else {
            version.into()
        },
        slot: if data.len().is_multiple_of(2) {
            Slot::A
        } else {
            Slot::B
        },
        usr_partuuid: BOOTED_UUID.into(),
        cmdline: text.lines().last().unwrap_or_default().into(),
        counter: info.as_ref().and_then(|i| i.counter),
    };
    let rendered = booted.render();
    let read = parse_entry(OS_ID, &booted.file_name(), &rendered).expect("a rendered entry reads");
    assert_eq!(
        (read.slot, read.version.as_str(), read.counter),
        (booted.slot, booted.version.as_str(), booted.counter)
    );
    let _ = booted.grub_script();
    if usr_of(&rendered).as_deref() == Some(BOOTED_UUID) {
        let next = BootEntry {
            slot: booted.slot.other(),
            usr_partuuid: NEXT_UUID.into(),
            cmdline: cmdline_for_new_slot(&rendered).expect("a rendered entry has options"),
            ..booted.clone()
        };
        let next_text = next.render();
        assert_eq!(
            usr_of(&next_text).as_deref(),
            Some(NEXT_UUID),
            "a bootable entry {rendered:?} gives an entry /init cannot boot: {next_text:?}"
        );
    }

    if let Some(vars) = grub::parse_envblk(parts[2]) {
        let _ = grub::journaled_tries(&vars, Slot::A);
        if let Some(block) = grub::render_envblk(&vars) {
            assert_eq!(block.len(), grub::ENVBLK_SIZE);
            assert_eq!(grub::parse_envblk(&block), Some(vars));
        }
    }
});

/// The `usr=PARTUUID=` `/init` reads from an entry's `options` line.
fn usr_of(entry: &str) -> Option<String> {
    let options = entry.lines().find_map(|l| l.strip_prefix("options "))?;
    match cmdline::parse(options).ok()?.usr {
        UsrSpec::Device(DeviceSpec::PartUuid(uuid)) => Some(uuid),
        _ => None,
    }
}
