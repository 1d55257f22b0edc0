//! Legacy BIOS boot with the same slots (SPECS.md S4): GRUB (i386-pc) reads the very entries
//! systemd-boot reads, so the entry file names stay the one slot-state truth for both loaders.
//!
//! GRUB cannot rename a file, so it cannot count down `+LEFT-DONE` itself. It journals instead:
//! each boot of a counted entry appends one `x` to `boot_tries_usr_a` (or `_usr_b`) in
//! `grub/grubenv` on the ESP, the only write GRUB can do (`save_env` overwrites the file's
//! sectors in place). An entry is exhausted for GRUB when its journal holds at least LEFT tries.
//! At the next boot of Linux the update engine folds the journal into the entry's name
//! ([`super::SlotTable::fold_grub_journal`]: `+3-0` with `xx` becomes `+1-2`) and empties it,
//! before it reads the slot state: from then on it is systemd-boot's state, whatever loader ran.
//!
//! Everything GRUB needs of an entry besides its name is in a small script next to the slot's
//! kernel ([`BootEntry::grub_script`]): its title, its version as a string that sorts like
//! [`super::version_key`], and its kernel command line. It is staged with the kernel, before the
//! entry, like the kernel.

use std::collections::BTreeMap;

use super::entry::{BootEntry, Slot, ENTRIES_DIR};
use super::table::version_key;

/// GRUB's directory on the ESP (its prefix): `grub.cfg` and `grubenv`.
pub const GRUB_DIR: &str = "grub";
/// The configuration GRUB's `normal` reads.
pub const GRUB_CFG: &str = "grub/grub.cfg";
/// GRUB's environment block: the boot-try journal.
pub const GRUBENV: &str = "grub/grubenv";
/// Size of an environment block (GRUB's `save_env` only rewrites, never resizes).
pub const ENVBLK_SIZE: usize = 1024;
const ENVBLK_SIGNATURE: &str = "# GRUB Environment Block\n";

/// The grubenv variable journaling GRUB's tries of `slot`'s entry, one `x` per boot.
pub fn tries_var(slot: Slot) -> String {
    format!("boot_tries_{}", slot.key().replace('-', "_"))
}

/// A version as a string whose byte order is [`version_key`]'s order (GRUB compares strings,
/// not numbers): each component zero-padded to 20 digits.
pub fn version_rank(version: &str) -> String {
    version_key(version)
        .iter()
        .map(|n| format!("{n:020}"))
        .collect::<Vec<_>>()
        .join(".")
}

/// Quote `s` for GRUB's script language: single quotes, which expand nothing.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

impl BootEntry {
    /// ESP path of the entry's GRUB script.
    pub fn grub_script_path(&self) -> String {
        format!("{}/entry.grub", self.dir())
    }

    /// What GRUB needs of this entry besides its file name.
    pub fn grub_script(&self) -> String {
        format!(
            "set entry_title={}\nset entry_rank={}\nset entry_options={}\n",
            quote(&format!(
                "{} {} ({})",
                self.os_name, self.version, self.slot
            )),
            quote(&version_rank(&self.version)),
            quote(&self.options()),
        )
    }
}

/// An environment block holding `vars` (GRUB's format: a signature line, `name=value` lines,
/// `#` up to [`ENVBLK_SIZE`]). `None` if they do not fit.
pub fn render_envblk(vars: &BTreeMap<String, String>) -> Option<Vec<u8>> {
    let mut text = String::from(ENVBLK_SIGNATURE);
    for (k, v) in vars {
        let v = v.replace('\\', r"\\").replace('\n', "\\\n");
        text.push_str(&format!("{k}={v}\n"));
    }
    if text.len() > ENVBLK_SIZE {
        return None;
    }
    let mut bytes = text.into_bytes();
    bytes.resize(ENVBLK_SIZE, b'#');
    Some(bytes)
}

/// The variables of an environment block; `None` if it is not one.
pub fn parse_envblk(bytes: &[u8]) -> Option<BTreeMap<String, String>> {
    let text = std::str::from_utf8(bytes).ok()?;
    let body = text.strip_prefix(ENVBLK_SIGNATURE)?;
    let mut vars = BTreeMap::new();
    let mut lines = body.split('\n').peekable();
    while let Some(line) = lines.next() {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        // A value continues on the next line after a backslash-escaped newline.
        let mut value = String::new();
        let mut raw = v.to_string();
        loop {
            let mut chars = raw.chars().peekable();
            let mut continued = false;
            while let Some(c) = chars.next() {
                if c == '\\' {
                    match chars.next() {
                        Some(n) => value.push(n),
                        None => {
                            value.push('\n');
                            continued = true;
                        }
                    }
                } else {
                    value.push(c);
                }
            }
            match lines.next_if(|_| continued) {
                Some(next) => raw = next.to_string(),
                None => break,
            }
        }
        vars.insert(k.to_string(), value);
    }
    Some(vars)
}

/// Tries journaled for `slot` in an environment block's variables.
pub fn journaled_tries(vars: &BTreeMap<String, String>, slot: Slot) -> u32 {
    vars.get(&tries_var(slot))
        .map_or(0, |v| v.chars().filter(|&c| c == 'x').count() as u32)
}

/// The empty journal: what the builder writes and the engine leaves after folding.
pub fn empty_envblk() -> Vec<u8> {
    render_envblk(&BTreeMap::new()).expect("an empty block fits")
}

/// `grub.cfg`: choose the slot as systemd-boot would (entries with tries left before exhausted
/// ones, then the newest version), journal the try, boot its kernel. `timeout` is the menu's
/// (both slots are listed, the chosen one first). Pure.
pub fn grub_cfg(os_id: &str, timeout: u32) -> String {
    let mut s = format!(
        "# Written by image-builder; the update engine reads what this journals (see
# contract::slots::grub). Boots the USR slots of {os_id} exactly as systemd-boot does, from
# the same /{ENTRIES_DIR}/{os_id}-usr-*.conf entries.
serial --unit=0 --speed=115200
terminal_input console serial
terminal_output console serial
set timeout={timeout}
set timeout_style=menu
load_env

"
    );
    for slot in [Slot::A, Slot::B] {
        s.push_str(&probe_slot(os_id, slot));
    }
    let a = var_prefix(Slot::A);
    let b = var_prefix(Slot::B);
    s.push_str(&format!(
        "# Preference: found, then not exhausted, then the higher version rank.
set first=
if [ \"${a}found\" = 1 ]; then set first={ka}; fi
if [ \"${b}found\" = 1 ]; then
  if [ -z \"$first\" ]; then
    set first={kb}
  elif [ \"${a}live\" != \"${b}live\" ]; then
    if [ \"${b}live\" = 1 ]; then set first={kb}; fi
  elif [ \"${b}rank\" \">\" \"${a}rank\" ]; then
    set first={kb}
  fi
fi
if [ -z \"$first\" ]; then
  echo \"No boot entry of {os_id} in /{ENTRIES_DIR}: nothing to boot.\"
  sleep 10
  reboot
fi
if [ \"$first\" = {ka} ]; then set second={kb}; else set second={ka}; fi
# A menu entry runs in a new context that sees exported variables only.
export {a}counted {a}options {b}counted {b}options {ta} {tb}
{menus}",
        a = a,
        b = b,
        ka = Slot::A.key(),
        kb = Slot::B.key(),
        ta = tries_var(Slot::A),
        tb = tries_var(Slot::B),
        menus = menus(os_id),
    ));
    s
}

/// Variable name prefix of a slot in grub.cfg (`a_`, `b_`).
fn var_prefix(slot: Slot) -> &'static str {
    match slot {
        Slot::A => "a_",
        Slot::B => "b_",
    }
}

/// grub.cfg lines setting `<p>found`, `<p>counted`, `<p>left`, `<p>live`, `<p>rank`,
/// `<p>title`, `<p>options` for one slot.
fn probe_slot(os_id: &str, slot: Slot) -> String {
    let p = var_prefix(slot);
    let key = slot.key();
    let var = tries_var(slot);
    let dir = format!("/{ENTRIES_DIR}/{os_id}-{key}");
    format!(
        "# {slot}: its entry (blessed, or counted: +LEFT-DONE) and its journaled tries.
set {p}found=0
set {p}counted=0
set {p}live=0
for f in {dir}.conf {dir}+*.conf; do
  if [ -f \"$f\" ]; then
    set {p}found=1
    if regexp --set=1:{p}left '\\+([0-9]+)(-[0-9]+)?\\.conf$' \"$f\"; then set {p}counted=1; fi
  fi
done
if [ \"${p}found\" = 1 ]; then
  set entry_title=
  set entry_rank=
  set entry_options=
  source /{os_id}/{key}/entry.grub
  set {p}title=\"$entry_title\"
  set {p}rank=\"$entry_rank\"
  set {p}options=\"$entry_options\"
  set {p}live=1
  if [ \"${p}counted\" = 1 ]; then
    if regexp \"^x{{${p}left}}\" \"${var}\"; then set {p}live=0; fi
  fi
fi

"
    )
}

/// The two menu entries, the chosen slot's first. Booting a counted entry journals the try.
fn menus(os_id: &str) -> String {
    let mut s = String::new();
    for which in ["first", "second"] {
        s.push_str(&format!("if [ \"${which}\" = {} ]; then\n", Slot::A.key()));
        s.push_str(&menu(os_id, Slot::A));
        s.push_str("else\n");
        s.push_str(&menu(os_id, Slot::B));
        s.push_str("fi\n");
    }
    s
}

fn menu(os_id: &str, slot: Slot) -> String {
    let p = var_prefix(slot);
    let key = slot.key();
    let var = tries_var(slot);
    format!(
        "  if [ \"${p}found\" = 1 ]; then
    menuentry \"${p}title\" {{
      if [ \"${p}counted\" = 1 ]; then
        set {var}=\"${{{var}}}x\"
        save_env {var}
      fi
      echo \"GRUB: booting ${p}title\"
      linux /{os_id}/{key}/vmlinuz ${p}options
      initrd /{os_id}/{key}/initrd
    }}
  fi
"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envblk_round_trips_and_is_1024_bytes() {
        let mut vars = BTreeMap::new();
        vars.insert(tries_var(Slot::B), "xx".to_string());
        vars.insert("odd".to_string(), "a\\b\nc".to_string());
        let b = render_envblk(&vars).unwrap();
        assert_eq!(b.len(), ENVBLK_SIZE);
        assert!(b.starts_with(b"# GRUB Environment Block\nboot_tries_usr_b=xx\n"));
        let back = parse_envblk(&b).unwrap();
        assert_eq!(back, vars);
        assert_eq!(journaled_tries(&back, Slot::B), 2);
        assert_eq!(journaled_tries(&back, Slot::A), 0);
        assert_eq!(parse_envblk(&empty_envblk()).unwrap(), BTreeMap::new());
        assert_eq!(parse_envblk(b"not an environment block"), None);
        let mut big = BTreeMap::new();
        big.insert("v".to_string(), "x".repeat(2000));
        assert_eq!(render_envblk(&big), None);
    }

    #[test]
    fn what_grub_editenv_writes_parses() {
        // `grub-editenv grubenv set boot_tries_usr_a=x` on an empty block.
        let mut b = b"# GRUB Environment Block\nboot_tries_usr_a=x\n".to_vec();
        b.resize(1024, b'#');
        assert_eq!(journaled_tries(&parse_envblk(&b).unwrap(), Slot::A), 1);
    }

    #[test]
    fn ranks_sort_like_version_keys() {
        let versions = ["1.0.9", "1.0.10", "1.0", "2.0.0", "1.0.0", "0.99.1"];
        for a in versions {
            for b in versions {
                assert_eq!(
                    version_rank(a).cmp(&version_rank(b)),
                    version_key(a).cmp(&version_key(b)),
                    "{a} vs {b}"
                );
            }
        }
    }

    #[test]
    fn entry_script_quotes_what_it_carries() {
        let e = BootEntry {
            os_id: "minimal".into(),
            os_name: "Minimal 'Linux'".into(),
            version: "1.0.2".into(),
            slot: Slot::B,
            usr_partuuid: "u-u".into(),
            cmdline: "console=ttyS0 $x ".into(),
            counter: None,
        };
        assert_eq!(e.grub_script_path(), "minimal/usr-b/entry.grub");
        assert_eq!(
            e.grub_script(),
            "set entry_title='Minimal '\\''Linux'\\'' 1.0.2 (USR-B)'\n\
             set entry_rank='00000000000000000001.00000000000000000000.00000000000000000002'\n\
             set entry_options='console=ttyS0 $x usr=PARTUUID=u-u'\n"
        );
    }

    #[test]
    fn config_probes_both_slots_and_journals_tries() {
        let c = grub_cfg("minimal", 0);
        for needle in [
            "for f in /loader/entries/minimal-usr-a.conf /loader/entries/minimal-usr-a+*.conf; do",
            "source /minimal/usr-b/entry.grub",
            "set boot_tries_usr_b=\"${boot_tries_usr_b}x\"",
            "save_env boot_tries_usr_a",
            "linux /minimal/usr-a/vmlinuz $a_options",
            "if regexp \"^x{$b_left}\" \"$boot_tries_usr_b\"; then set b_live=0; fi",
            "set timeout=0",
        ] {
            assert!(c.contains(needle), "{needle:?} missing from:\n{c}");
        }
    }
}
