//! Type #1 boot entries (Boot Loader Specification) for the USR slots, with systemd-boot's
//! boot counter in the file name (SPECS.md S4): rendering and parsing, all pure.

use std::fmt;

/// Directory of the entries on the ESP.
pub const ENTRIES_DIR: &str = "loader/entries";
pub use crate::partitions::{USR_A, USR_B};
/// Tries a new slot's entry gets (`+3-0`) before the loader gives up on it.
pub const BOOT_TRIES: u32 = 3;

/// The counter in a boot entry's file name: `+LEFT-DONE` (S4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BootCounter {
    pub left: u32,
    pub done: u32,
}

/// A USR slot, named as its partition label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Slot {
    A,
    B,
}

impl Slot {
    /// The other slot.
    pub fn other(self) -> Slot {
        match self {
            Slot::A => Slot::B,
            Slot::B => Slot::A,
        }
    }
    /// The slot whose partition label is `label`.
    pub fn from_label(label: &str) -> Option<Slot> {
        match label.trim() {
            USR_A => Some(Slot::A),
            USR_B => Some(Slot::B),
            _ => None,
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            Slot::A => USR_A,
            Slot::B => USR_B,
        }
    }
    /// Lower-case form used in file names: `usr-a`.
    pub fn key(self) -> &'static str {
        match self {
            Slot::A => "usr-a",
            Slot::B => "usr-b",
        }
    }
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// A Type #1 boot entry for one slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootEntry {
    pub os_id: String,
    pub os_name: String,
    pub version: String,
    pub slot: Slot,
    pub usr_partuuid: String,
    pub cmdline: String,
    pub counter: Option<BootCounter>,
}

impl BootEntry {
    /// ESP directory holding this slot's kernel and initramfs.
    pub fn dir(&self) -> String {
        format!("{}/{}", self.os_id, self.slot.key())
    }
    pub fn kernel_path(&self) -> String {
        format!("{}/vmlinuz", self.dir())
    }
    pub fn initrd_path(&self) -> String {
        format!("{}/initrd", self.dir())
    }

    /// `minimal-usr-a+3-0.conf`; without a counter `minimal-usr-a.conf`.
    pub fn file_name(&self) -> String {
        let base = format!("{}-{}", self.os_id, self.slot.key());
        match self.counter {
            Some(c) => format!("{base}+{}-{}.conf", c.left, c.done),
            None => format!("{base}.conf"),
        }
    }

    /// The entry file's text. Entries share a `sort-key`, so systemd-boot orders them by
    /// `version`, newest first: the newest slot wins without a `default` line.
    pub fn render(&self) -> String {
        format!(
            "title {name} {version} ({slot})\nsort-key {id}\nversion {version}\nlinux /{kernel}\ninitrd /{initrd}\noptions {options}\n",
            name = self.os_name,
            version = self.version,
            slot = self.slot,
            id = self.os_id,
            kernel = self.kernel_path(),
            initrd = self.initrd_path(),
            options = self.options(),
        )
    }

    /// The kernel command line of this slot: the image's, then `usr=PARTUUID=<uuid>`.
    pub fn options(&self) -> String {
        options(&self.cmdline, &self.usr_partuuid)
    }
}

/// The kernel command line of a slot: `cmdline`, then `usr=PARTUUID=<usr_partuuid>`. Pure.
pub fn options(cmdline: &str, usr_partuuid: &str) -> String {
    format!("{} usr=PARTUUID={usr_partuuid}", cmdline.trim())
}

/// Parse a boot entry file name (`minimal-usr-a+2-1.conf`) into its base and counter.
pub fn parse_file_name(name: &str) -> Option<(String, Option<BootCounter>)> {
    let stem = name.strip_suffix(".conf")?;
    let Some((base, counter)) = stem.rsplit_once('+') else {
        return Some((stem.to_string(), None));
    };
    let (left, done) = match counter.split_once('-') {
        Some((l, d)) => (l.parse().ok()?, d.parse().ok()?),
        None => (counter.parse().ok()?, 0),
    };
    Some((base.to_string(), Some(BootCounter { left, done })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> BootEntry {
        BootEntry {
            os_id: "minimal".into(),
            os_name: "Minimal Linux".into(),
            version: "1.0.0".into(),
            slot: Slot::A,
            usr_partuuid: "0d3f0c6e-8f0d-5c55-9d25-2b3e5a2f9a11".into(),
            cmdline: "console=ttyS0 panic=10 ".into(),
            counter: Some(BootCounter { left: 3, done: 0 }),
        }
    }

    #[test]
    fn entry_text() {
        assert_eq!(
            entry().render(),
            "title Minimal Linux 1.0.0 (USR-A)\nsort-key minimal\nversion 1.0.0\nlinux /minimal/usr-a/vmlinuz\n\
             initrd /minimal/usr-a/initrd\noptions console=ttyS0 panic=10 usr=PARTUUID=0d3f0c6e-8f0d-5c55-9d25-2b3e5a2f9a11\n"
        );
        assert_eq!(entry().file_name(), "minimal-usr-a+3-0.conf");
        let blessed = BootEntry {
            counter: None,
            slot: Slot::B,
            ..entry()
        };
        assert_eq!(blessed.file_name(), "minimal-usr-b.conf");
    }

    #[test]
    fn file_names_parse() {
        let cases = [
            (
                "minimal-usr-a+3-0.conf",
                Some(("minimal-usr-a", Some((3, 0)))),
            ),
            (
                "minimal-usr-b+2.conf",
                Some(("minimal-usr-b", Some((2, 0)))),
            ),
            ("minimal-usr-b.conf", Some(("minimal-usr-b", None))),
            ("minimal-usr-b+x-1.conf", None),
            ("minimal-usr-b.efi", None),
        ];
        for (name, want) in cases {
            let got = parse_file_name(name);
            let got = got
                .as_ref()
                .map(|(b, c)| (b.as_str(), c.map(|c| (c.left, c.done))));
            assert_eq!(got, want, "{name}");
        }
    }
}
