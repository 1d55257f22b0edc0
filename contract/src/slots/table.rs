//! The slot table: the boot entries of one OS on a mounted ESP, the single source of truth for
//! slot state (DESIGN.md, "Boot and slots"). Reading is `load`; every mutator writes the ESP
//! itself, each file through a temporary name and a rename, so a power cut leaves either the old
//! or the new file, never half of one.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::entry::{parse_file_name, BootCounter, BootEntry, Slot, ENTRIES_DIR};
use super::grub;

/// A boot entry as found on the ESP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryInfo {
    pub file_name: String,
    pub slot: Slot,
    pub version: String,
    pub counter: Option<BootCounter>,
}

impl EntryInfo {
    /// A counter that ran out: the loader tries this entry last.
    pub fn exhausted(&self) -> bool {
        matches!(self.counter, Some(c) if c.left == 0)
    }
}

/// Parse an entry file of `os_id` (`<os_id>-usr-a+2-1.conf`); `None` for other files.
pub fn parse_entry(os_id: &str, file_name: &str, text: &str) -> Option<EntryInfo> {
    let (base, counter) = parse_file_name(file_name)?;
    let slot = match base.strip_prefix(os_id)?.strip_prefix('-')? {
        "usr-a" => Slot::A,
        "usr-b" => Slot::B,
        _ => return None,
    };
    let version = text
        .lines()
        .find_map(|l| l.strip_prefix("version "))
        .unwrap_or_default()
        .trim()
        .to_string();
    Some(EntryInfo {
        file_name: file_name.to_string(),
        slot,
        version,
        counter,
    })
}

/// Compare `x.y.z` versions numerically (anything unparsable sorts lowest).
pub fn version_key(v: &str) -> Vec<u64> {
    v.split('.').map(|p| p.parse().unwrap_or(0)).collect()
}

/// The entries of one OS on an ESP mounted at `esp`.
#[derive(Debug, Clone)]
pub struct SlotTable {
    esp: PathBuf,
    os_id: String,
    entries: Vec<EntryInfo>,
}

impl SlotTable {
    pub fn load(esp: &Path, os_id: &str) -> io::Result<SlotTable> {
        let dir = esp.join(ENTRIES_DIR);
        let mut entries = Vec::new();
        for e in fs::read_dir(&dir)? {
            let e = e?;
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let text = fs::read_to_string(e.path()).unwrap_or_default();
            if let Some(info) = parse_entry(os_id, &name, &text) {
                entries.push(info);
            }
        }
        entries.sort_by(|a, b| a.file_name.cmp(&b.file_name));
        Ok(SlotTable {
            esp: esp.to_path_buf(),
            os_id: os_id.to_string(),
            entries,
        })
    }

    pub fn entries(&self) -> &[EntryInfo] {
        &self.entries
    }

    pub fn entry(&self, slot: Slot) -> Option<&EntryInfo> {
        self.entries.iter().find(|e| e.slot == slot)
    }

    /// The entry systemd-boot boots: entries with tries left (or blessed) before exhausted
    /// ones, then the highest version.
    pub fn preferred(&self) -> Option<&EntryInfo> {
        self.entries.iter().max_by(|a, b| {
            (!a.exhausted(), version_key(&a.version))
                .cmp(&(!b.exhausted(), version_key(&b.version)))
        })
    }

    /// When `booted` runs but the other slot's entry is newer and exhausted, the loader fell
    /// back: that entry is the release that failed to come up.
    pub fn rolled_back_from(&self, booted: Slot) -> Option<&EntryInfo> {
        let mine = self.entry(booted)?;
        self.entry(booted.other())
            .filter(|o| o.exhausted() && version_key(&o.version) > version_key(&mine.version))
    }

    fn entries_dir(&self) -> PathBuf {
        self.esp.join(ENTRIES_DIR)
    }

    /// Remove the entry of `slot` (before its partition is rewritten, so a half-written slot is
    /// never bootable).
    pub fn remove(&mut self, slot: Slot) -> io::Result<()> {
        for e in self.entries.iter().filter(|e| e.slot == slot) {
            match fs::remove_file(self.entries_dir().join(&e.file_name)) {
                Err(err) if err.kind() != io::ErrorKind::NotFound => return Err(err),
                _ => {}
            }
        }
        self.entries.retain(|e| e.slot != slot);
        sync_dir(&self.entries_dir())
    }

    /// Install `kernel` and `initrd` for the entry's slot, then the entry itself, last: only a
    /// complete slot gets an entry.
    pub fn stage(&mut self, entry: &BootEntry, kernel: &[u8], initrd: &[u8]) -> io::Result<()> {
        if entry.os_id != self.os_id {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "boot entry of another OS",
            ));
        }
        self.remove(entry.slot)?;
        let dir = self.esp.join(entry.dir());
        fs::create_dir_all(&dir)?;
        write_replace(&self.esp.join(entry.kernel_path()), kernel)?;
        write_replace(&self.esp.join(entry.initrd_path()), initrd)?;
        write_replace(
            &self.esp.join(entry.grub_script_path()),
            entry.grub_script().as_bytes(),
        )?;
        sync_dir(&dir)?;
        write_replace(
            &self.entries_dir().join(entry.file_name()),
            entry.render().as_bytes(),
        )?;
        sync_dir(&self.entries_dir())?;
        self.entries.push(EntryInfo {
            file_name: entry.file_name(),
            slot: entry.slot,
            version: entry.version.clone(),
            counter: entry.counter,
        });
        Ok(())
    }

    /// Mark `slot` good: drop the counter from its entry's name (what systemd-bless-boot does).
    /// Returns whether anything changed.
    pub fn bless(&mut self, slot: Slot) -> io::Result<bool> {
        let Some(e) = self
            .entries
            .iter_mut()
            .find(|e| e.slot == slot && e.counter.is_some())
        else {
            return Ok(false);
        };
        let blessed = format!("{}-{}.conf", self.os_id, slot.key());
        fs::rename(
            self.esp.join(ENTRIES_DIR).join(&e.file_name),
            self.esp.join(ENTRIES_DIR).join(&blessed),
        )?;
        e.file_name = blessed;
        e.counter = None;
        sync_dir(&self.esp.join(ENTRIES_DIR))?;
        Ok(true)
    }
}

impl SlotTable {
    /// Fold the tries GRUB journaled in `grub/grubenv` (legacy BIOS boots, see [`super::grub`])
    /// into the entry names, then empty the journal. Entry names first: a power cut in between
    /// counts those tries twice, never loses one. Returns the tries folded per slot; nothing
    /// to do without a grubenv (an ESP without GRUB).
    pub fn fold_grub_journal(&mut self) -> io::Result<Vec<(Slot, u32)>> {
        let path = self.esp.join(grub::GRUBENV);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let Some(mut vars) = grub::parse_envblk(&bytes) else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} is not a GRUB environment block", path.display()),
            ));
        };
        let journal = vars.clone();
        let mut folded = Vec::new();
        for slot in [Slot::A, Slot::B] {
            let tries = grub::journaled_tries(&vars, slot);
            if tries == 0 {
                continue;
            }
            vars.remove(&grub::tries_var(slot));
            let dir = self.esp.join(ENTRIES_DIR);
            let os_id = self.os_id.clone();
            let Some(e) = self
                .entries
                .iter_mut()
                .find(|e| e.slot == slot && e.counter.is_some())
            else {
                continue;
            };
            let c = e.counter.expect("counted");
            let left = c.left.saturating_sub(tries);
            let done = c.done + (c.left - left);
            let name = format!("{os_id}-{}+{left}-{done}.conf", slot.key());
            fs::rename(dir.join(&e.file_name), dir.join(&name))?;
            e.file_name = name;
            e.counter = Some(BootCounter { left, done });
            folded.push((slot, tries));
        }
        if vars == journal {
            return Ok(folded);
        }
        sync_dir(&self.esp.join(ENTRIES_DIR))?;
        let block = grub::render_envblk(&vars).unwrap_or_else(grub::empty_envblk);
        write_replace(&path, &block)?;
        sync_dir(&self.esp.join(grub::GRUB_DIR))?;
        Ok(folded)
    }

    /// Mark `slot` bad: rename its entry to `+0-N` (exhausted), so the loader prefers the other
    /// slot. Returns the new file name.
    pub fn mark_bad(&mut self, slot: Slot) -> io::Result<String> {
        let Some(e) = self.entries.iter_mut().find(|e| e.slot == slot) else {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("no boot entry for {slot}"),
            ));
        };
        let tries = e.counter.map_or(1, |c| (c.left + c.done).max(1));
        let bad = format!("{}-{}+0-{tries}.conf", self.os_id, slot.key());
        let dir = self.esp.join(ENTRIES_DIR);
        fs::rename(dir.join(&e.file_name), dir.join(&bad))?;
        e.file_name = bad.clone();
        e.counter = Some(BootCounter {
            left: 0,
            done: tries,
        });
        sync_dir(&dir)?;
        Ok(bad)
    }
}

/// Write through a temporary file in the same directory and rename over `path`.
fn write_replace(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_file_name(format!(
        ".{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file")
    ));
    let mut f = fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    fs::rename(&tmp, path)
}

/// Flush the whole filesystem holding `dir`. On vfat (the ESP) an fsync of a directory does
/// not write the renamed or new directory entries; a power cut right after would leave a
/// zero-length entry the loader ignores. `syncfs` writes everything.
fn sync_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::io::AsRawFd;
    let d = fs::File::open(dir)?;
    d.sync_all()?;
    // SAFETY: syncfs on a descriptor we own; no memory is passed.
    if unsafe { libc::syncfs(d.as_raw_fd()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(slot: Slot, version: &str, counter: Option<(u32, u32)>) -> BootEntry {
        BootEntry {
            os_id: "minimal".into(),
            os_name: "Minimal".into(),
            version: version.into(),
            slot,
            usr_partuuid: "u".into(),
            cmdline: "console=ttyS0".into(),
            counter: counter.map(|(left, done)| BootCounter { left, done }),
        }
    }

    fn esp() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir_all(d.path().join(ENTRIES_DIR)).unwrap();
        d
    }

    #[test]
    fn stage_bless_and_prefer() {
        let d = esp();
        let mut t = SlotTable::load(d.path(), "minimal").unwrap();
        t.stage(&entry(Slot::A, "1.0.0", Some((3, 0))), b"k", b"i")
            .unwrap();
        assert!(t.bless(Slot::A).unwrap());
        assert!(!t.bless(Slot::A).unwrap());
        t.stage(&entry(Slot::B, "1.0.1", Some((3, 0))), b"k2", b"i2")
            .unwrap();
        let t = SlotTable::load(d.path(), "minimal").unwrap();
        let names: Vec<&str> = t.entries().iter().map(|e| e.file_name.as_str()).collect();
        assert_eq!(names, ["minimal-usr-a.conf", "minimal-usr-b+3-0.conf"]);
        assert_eq!(t.preferred().unwrap().slot, Slot::B);
        assert_eq!(
            fs::read(d.path().join("minimal/usr-b/vmlinuz")).unwrap(),
            b"k2"
        );
        assert_eq!(t.rolled_back_from(Slot::A), None);
    }

    #[test]
    fn exhausted_newer_entry_is_a_rollback() {
        let d = esp();
        let mut t = SlotTable::load(d.path(), "minimal").unwrap();
        t.stage(&entry(Slot::A, "1.0.1", None), b"k", b"i").unwrap();
        t.stage(&entry(Slot::B, "1.0.2", Some((0, 3))), b"k", b"i")
            .unwrap();
        fs::write(
            d.path().join(ENTRIES_DIR).join("other-usr-a.conf"),
            "version 9.9.9\n",
        )
        .unwrap();
        let t = SlotTable::load(d.path(), "minimal").unwrap();
        assert_eq!(t.entries().len(), 2, "entries of other OSes are ignored");
        assert_eq!(t.preferred().unwrap().slot, Slot::A);
        assert_eq!(t.rolled_back_from(Slot::A).unwrap().version, "1.0.2");
    }

    #[test]
    fn restaging_replaces_the_old_entry_of_the_slot() {
        let d = esp();
        let mut t = SlotTable::load(d.path(), "minimal").unwrap();
        t.stage(&entry(Slot::B, "1.0.1", Some((0, 3))), b"k", b"i")
            .unwrap();
        t.stage(&entry(Slot::B, "1.0.3", Some((3, 0))), b"k", b"i")
            .unwrap();
        let t = SlotTable::load(d.path(), "minimal").unwrap();
        let names: Vec<&str> = t.entries().iter().map(|e| e.file_name.as_str()).collect();
        assert_eq!(names, ["minimal-usr-b+3-0.conf"]);
    }

    #[test]
    fn mark_bad_exhausts_the_entry() {
        let d = esp();
        let mut t = SlotTable::load(d.path(), "minimal").unwrap();
        t.stage(&entry(Slot::A, "1.0.0", None), b"k", b"i").unwrap();
        t.stage(&entry(Slot::B, "1.0.1", Some((2, 1))), b"k", b"i")
            .unwrap();
        assert_eq!(t.mark_bad(Slot::B).unwrap(), "minimal-usr-b+0-3.conf");
        let t = SlotTable::load(d.path(), "minimal").unwrap();
        assert_eq!(t.preferred().unwrap().slot, Slot::A);
        assert_eq!(t.rolled_back_from(Slot::A).unwrap().version, "1.0.1");
    }

    #[test]
    fn grub_journal_folds_into_the_entry_names_once() {
        let d = esp();
        let mut t = SlotTable::load(d.path(), "minimal").unwrap();
        assert_eq!(
            t.fold_grub_journal().unwrap(),
            [],
            "no grubenv: nothing to do"
        );
        t.stage(&entry(Slot::A, "1.0.0", None), b"k", b"i").unwrap();
        t.stage(&entry(Slot::B, "1.0.1", Some((3, 0))), b"k", b"i")
            .unwrap();
        assert!(
            fs::read_to_string(d.path().join("minimal/usr-b/entry.grub"))
                .unwrap()
                .contains("set entry_options='console=ttyS0 usr=PARTUUID=u'")
        );
        fs::create_dir_all(d.path().join(grub::GRUB_DIR)).unwrap();
        let env = d.path().join(grub::GRUBENV);
        let journal = |vars: &[(&str, &str)]| {
            let vars = vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            fs::write(&env, grub::render_envblk(&vars).unwrap()).unwrap();
        };
        journal(&[
            ("boot_tries_usr_b", "xx"),
            ("boot_tries_usr_a", "x"),
            ("keep", "1"),
        ]);
        let mut t = SlotTable::load(d.path(), "minimal").unwrap();
        assert_eq!(t.fold_grub_journal().unwrap(), [(Slot::B, 2)]);
        let t = SlotTable::load(d.path(), "minimal").unwrap();
        let names: Vec<&str> = t.entries().iter().map(|e| e.file_name.as_str()).collect();
        assert_eq!(names, ["minimal-usr-a.conf", "minimal-usr-b+1-2.conf"]);
        let vars = grub::parse_envblk(&fs::read(&env).unwrap()).unwrap();
        assert_eq!(vars.len(), 1, "{vars:?}");
        assert_eq!(fs::read(&env).unwrap().len(), grub::ENVBLK_SIZE);
        // More tries than left: exhausted, and the loader prefers the other slot.
        journal(&[("boot_tries_usr_b", "xxxxx")]);
        let mut t = SlotTable::load(d.path(), "minimal").unwrap();
        assert_eq!(t.fold_grub_journal().unwrap(), [(Slot::B, 5)]);
        assert_eq!(
            t.entry(Slot::B).unwrap().file_name,
            "minimal-usr-b+0-3.conf"
        );
        assert_eq!(t.preferred().unwrap().slot, Slot::A);
        assert_eq!(t.rolled_back_from(Slot::A).unwrap().version, "1.0.1");
        fs::write(&env, b"garbage").unwrap();
        let mut t = SlotTable::load(d.path(), "minimal").unwrap();
        assert!(t.fold_grub_journal().is_err());
    }

    #[test]
    fn versions_compare_numerically() {
        assert!(version_key("1.0.10") > version_key("1.0.9"));
    }
}
