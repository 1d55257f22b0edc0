//! The kernel command line: the keys the boot entries and the PXE artifacts carry, and the parser
//! the initramfs `/init` reads `/proc/cmdline` with ([`split_args`] is also the config agent's).
//!
//! Keys (Container Linux names, see DESIGN.md "Boot and slots"):
//!
//! | key | values | default |
//! |---|---|---|
//! | `usr=` | `PARTUUID=<uuid>`, `PARTLABEL=<name>`, `/dev/<name>` | required, unless the initramfs carries [`LIVE_USR_IMAGE`] |
//! | `usrfstype=` | a filesystem type | `squashfs` |
//! | `root=` | as `usr=` | the partition labelled `ROOT` on the disk holding usr; a tmpfs when /usr comes from RAM |
//! | `rootfstype=` | a filesystem type | `ext4` (`tmpfs` for a RAM root) |
//! | `init=` | an absolute path | `/usr/sbin/init` |
//! | `panic=` | seconds, as for the kernel | power off on failure |
//!
//! `ro`/`rw` and every other word are ignored. The last occurrence of a key wins, as in the kernel.
//!
//! A network-booted machine (the PXE artifact) has no usr partition: its initramfs carries the
//! USR image as [`LIVE_USR_IMAGE`], and without `usr=` that image is /usr, running from RAM, with
//! ROOT on a tmpfs unless `root=` names a disk (Container Linux's PXE image did the same).

use std::fmt;

/// The longest kernel command line x86 Linux takes, in bytes: `COMMAND_LINE_SIZE` (2048) less
/// the NUL. The EFI stub and GRUB's `linux` both cut a longer one there, and a cut line loses
/// its last argument, `usr=`, so the machine cannot find /usr.
pub const MAX_BYTES: usize = 2047;

/// `usrfstype=` when absent.
pub const DEFAULT_USR_FSTYPE: &str = "squashfs";
/// `rootfstype=` when absent.
pub const DEFAULT_ROOT_FSTYPE: &str = "ext4";
/// `init=` when absent: busybox init in the minimal image, systemd in later ones.
pub const DEFAULT_INIT: &str = "/usr/sbin/init";
/// GPT partition name of the writable partition (DESIGN.md, "Disk layout").
pub const DEFAULT_ROOT_LABEL: &str = crate::partitions::ROOT;
/// Where a network-boot initramfs carries the USR image.
pub const LIVE_USR_IMAGE: &str = "/usr.squashfs";
/// `rootfstype=` when ROOT is in RAM.
pub const RAM_ROOT_FSTYPE: &str = "tmpfs";

/// One way of naming a block device on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceSpec {
    /// `PARTUUID=<uuid>`: the GPT unique partition GUID, stored lower-case.
    PartUuid(String),
    /// `PARTLABEL=<name>`: the GPT partition name, compared exactly.
    PartLabel(String),
    /// `/dev/<name>`: a kernel device name.
    Path(String),
}

impl DeviceSpec {
    /// Parses the value of `key=` (`key` only names the argument in errors).
    pub fn parse(key: &'static str, value: &str) -> Result<Self, CmdlineError> {
        let bad = || CmdlineError::BadDevice {
            key,
            value: value.to_string(),
        };
        if let Some(uuid) = value.strip_prefix("PARTUUID=") {
            if !is_uuid(uuid) {
                return Err(CmdlineError::NotAUuid {
                    key,
                    value: uuid.to_string(),
                });
            }
            Ok(DeviceSpec::PartUuid(uuid.to_ascii_lowercase()))
        } else if let Some(label) = value.strip_prefix("PARTLABEL=") {
            if label.is_empty() {
                return Err(bad());
            }
            Ok(DeviceSpec::PartLabel(label.to_string()))
        } else if let Some(name) = value.strip_prefix("/dev/") {
            if name.is_empty() {
                return Err(bad());
            }
            Ok(DeviceSpec::Path(value.to_string()))
        } else {
            Err(bad())
        }
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceSpec::PartUuid(u) => write!(f, "PARTUUID={u}"),
            DeviceSpec::PartLabel(l) => write!(f, "PARTLABEL={l}"),
            DeviceSpec::Path(p) => f.write_str(p),
        }
    }
}

/// Where /usr comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UsrSpec {
    /// `usr=`: a slot partition.
    Device(DeviceSpec),
    /// No `usr=` and the initramfs carries this image (network boot): /usr runs from RAM.
    Image(String),
}

impl fmt::Display for UsrSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UsrSpec::Device(d) => d.fmt(f),
            UsrSpec::Image(path) => write!(f, "{path} (in RAM)"),
        }
    }
}

/// Where the writable root comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootSpec {
    /// `root=` was given.
    Device(DeviceSpec),
    /// No `root=`: the partition with this GPT name on the same disk as usr.
    LabelOnUsrDisk(String),
    /// No `root=` and /usr in RAM: a tmpfs, gone at power-off.
    Ram,
}

impl fmt::Display for RootSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RootSpec::Device(d) => d.fmt(f),
            RootSpec::LabelOnUsrDisk(l) => write!(f, "PARTLABEL={l} on the usr disk"),
            RootSpec::Ram => f.write_str("tmpfs (in RAM)"),
        }
    }
}

/// Everything `/init` needs from the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootConfig {
    pub usr: UsrSpec,
    pub usr_fstype: String,
    pub root: RootSpec,
    pub root_fstype: String,
    /// The OS init to exec after switching root; always absolute.
    pub init: String,
}

/// What `/init` does after printing a fatal error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureAction {
    /// No positive `panic=`: a clean power-off, so a broken boot never loops unattended.
    PowerOff,
    /// `panic=N`: the operator asked for a reboot after a failure, which is what boot counting
    /// needs to fall back to the other slot. `panic=-1` (immediately) maps to 0 seconds.
    Reboot { after_secs: u64 },
}

/// A command line `/init` cannot boot from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CmdlineError {
    MissingUsr,
    NotAUuid { key: &'static str, value: String },
    BadDevice { key: &'static str, value: String },
    Empty { key: &'static str },
    RelativeInit { value: String },
}

impl fmt::Display for CmdlineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CmdlineError::MissingUsr => f.write_str(
                "no usr= argument (want usr=PARTUUID=<uuid>) and no /usr image in the initramfs",
            ),
            CmdlineError::NotAUuid { key, value } => {
                write!(f, "{key}=PARTUUID={value}: not a UUID")
            }
            CmdlineError::BadDevice { key, value } => write!(
                f,
                "{key}={value}: want PARTUUID=<uuid>, PARTLABEL=<name> or /dev/<name>"
            ),
            CmdlineError::Empty { key } => write!(f, "{key}= is empty"),
            CmdlineError::RelativeInit { value } => write!(f, "init={value}: not an absolute path"),
        }
    }
}

impl std::error::Error for CmdlineError {}

/// Splits a command line into words the way the kernel does (`lib/cmdline.c`): whitespace
/// separates words except inside double quotes, the quotes themselves are dropped, and `--`
/// ends the kernel's part (what follows belongs to init).
pub fn split_args(cmdline: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quoted = false;
    for c in cmdline.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                in_word = true;
            }
            c if c.is_whitespace() && !quoted => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    if let Some(end) = words.iter().position(|w| w == "--") {
        words.truncate(end);
    }
    words
}

/// The value of the last `key=` word, if any.
fn last_value<'a>(words: &'a [String], key: &str) -> Option<&'a str> {
    words
        .iter()
        .rev()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
}

fn non_empty<'a>(words: &'a [String], key: &'static str) -> Result<Option<&'a str>, CmdlineError> {
    match last_value(words, key) {
        Some("") => Err(CmdlineError::Empty { key }),
        other => Ok(other),
    }
}

/// Parses `/proc/cmdline` into a [`BootConfig`], for an initramfs without a USR image.
pub fn parse(cmdline: &str) -> Result<BootConfig, CmdlineError> {
    parse_with_image(cmdline, None)
}

/// Parses `/proc/cmdline` into a [`BootConfig`]; `live_image` is the USR image the initramfs
/// carries, if any (used when there is no `usr=`).
pub fn parse_with_image(
    cmdline: &str,
    live_image: Option<&str>,
) -> Result<BootConfig, CmdlineError> {
    let words = split_args(cmdline);
    let usr = match (non_empty(&words, "usr")?, live_image) {
        (Some(v), _) => UsrSpec::Device(DeviceSpec::parse("usr", v)?),
        (None, Some(image)) => UsrSpec::Image(image.to_string()),
        (None, None) => return Err(CmdlineError::MissingUsr),
    };
    let root = match (non_empty(&words, "root")?, &usr) {
        (Some(v), _) => RootSpec::Device(DeviceSpec::parse("root", v)?),
        (None, UsrSpec::Device(_)) => RootSpec::LabelOnUsrDisk(DEFAULT_ROOT_LABEL.to_string()),
        (None, UsrSpec::Image(_)) => RootSpec::Ram,
    };
    let default_root_fstype = match root {
        RootSpec::Ram => RAM_ROOT_FSTYPE,
        _ => DEFAULT_ROOT_FSTYPE,
    };
    let init = non_empty(&words, "init")?.unwrap_or(DEFAULT_INIT);
    if !init.starts_with('/') {
        return Err(CmdlineError::RelativeInit {
            value: init.to_string(),
        });
    }
    Ok(BootConfig {
        usr,
        usr_fstype: non_empty(&words, "usrfstype")?
            .unwrap_or(DEFAULT_USR_FSTYPE)
            .to_string(),
        root,
        root_fstype: non_empty(&words, "rootfstype")?
            .unwrap_or(default_root_fstype)
            .to_string(),
        init: init.to_string(),
    })
}

/// What to do after a fatal error, from `panic=` (read even when [`parse`] fails).
pub fn failure_action(cmdline: &str) -> FailureAction {
    let words = split_args(cmdline);
    match last_value(&words, "panic").and_then(|v| v.parse::<i64>().ok()) {
        Some(n) if n > 0 => FailureAction::Reboot {
            after_secs: n.unsigned_abs(),
        },
        Some(n) if n < 0 => FailureAction::Reboot { after_secs: 0 },
        _ => FailureAction::PowerOff,
    }
}

/// `8-4-4-4-12` hex digits, either case.
pub fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const UUID: &str = "5DFBF5F4-2848-4BAC-AA5E-0D9A20B745A6";

    #[test]
    fn split_like_the_kernel() {
        struct Case {
            name: &'static str,
            input: &'static str,
            want: &'static [&'static str],
        }
        let cases = [
            Case {
                name: "plain",
                input: "console=ttyS0  ro\tusr=/dev/vda3\n",
                want: &["console=ttyS0", "ro", "usr=/dev/vda3"],
            },
            Case {
                name: "quoted value",
                input: r#"a="b c" d"#,
                want: &["a=b c", "d"],
            },
            Case {
                name: "double dash ends kernel args",
                input: "usr=/dev/vda3 -- single usr=/dev/vdb",
                want: &["usr=/dev/vda3"],
            },
            Case {
                name: "empty",
                input: "  \n",
                want: &[],
            },
            Case {
                name: "empty quotes are a word",
                input: r#"x="""#,
                want: &["x="],
            },
        ];
        for c in cases {
            assert_eq!(split_args(c.input), c.want, "{}", c.name);
        }
    }

    #[test]
    fn defaults() {
        let cfg = parse(&format!(
            "BOOT_IMAGE=/x console=ttyS0 ro usr=PARTUUID={UUID}\n"
        ))
        .unwrap();
        assert_eq!(
            cfg,
            BootConfig {
                usr: UsrSpec::Device(DeviceSpec::PartUuid(UUID.to_ascii_lowercase())),
                usr_fstype: "squashfs".into(),
                root: RootSpec::LabelOnUsrDisk("ROOT".into()),
                root_fstype: "ext4".into(),
                init: "/usr/sbin/init".into(),
            }
        );
    }

    #[test]
    fn everything_given_last_wins() {
        let cfg = parse(
            "usr=/dev/vda4 usr=PARTLABEL=USR-B usrfstype=erofs root=PARTLABEL=STATE \
             rootfstype=xfs init=/usr/lib/systemd/systemd rw",
        )
        .unwrap();
        assert_eq!(
            cfg.usr,
            UsrSpec::Device(DeviceSpec::PartLabel("USR-B".into()))
        );
        assert_eq!(cfg.usr_fstype, "erofs");
        assert_eq!(
            cfg.root,
            RootSpec::Device(DeviceSpec::PartLabel("STATE".into()))
        );
        assert_eq!(cfg.root_fstype, "xfs");
        assert_eq!(cfg.init, "/usr/lib/systemd/systemd");
    }

    #[test]
    fn device_forms() {
        assert_eq!(
            DeviceSpec::parse("usr", "/dev/vda3"),
            Ok(DeviceSpec::Path("/dev/vda3".into()))
        );
        assert_eq!(
            DeviceSpec::parse("root", &format!("PARTUUID={UUID}"))
                .unwrap()
                .to_string(),
            format!("PARTUUID={}", UUID.to_ascii_lowercase())
        );
    }

    #[test]
    fn errors() {
        struct Case {
            name: &'static str,
            input: &'static str,
            want: CmdlineError,
        }
        let cases = [
            Case {
                name: "no usr",
                input: "console=ttyS0 root=/dev/vda9",
                want: CmdlineError::MissingUsr,
            },
            Case {
                name: "usr= something else",
                input: "usr=LABEL=x",
                want: CmdlineError::BadDevice {
                    key: "usr",
                    value: "LABEL=x".into(),
                },
            },
            Case {
                name: "bad uuid",
                input: "usr=PARTUUID=1234",
                want: CmdlineError::NotAUuid {
                    key: "usr",
                    value: "1234".into(),
                },
            },
            Case {
                name: "empty label",
                input: "usr=/dev/vda root=PARTLABEL=",
                want: CmdlineError::BadDevice {
                    key: "root",
                    value: "PARTLABEL=".into(),
                },
            },
            Case {
                name: "empty usr",
                input: "usr=",
                want: CmdlineError::Empty { key: "usr" },
            },
            Case {
                name: "relative init",
                input: "usr=/dev/vda3 init=sbin/init",
                want: CmdlineError::RelativeInit {
                    value: "sbin/init".into(),
                },
            },
        ];
        for c in cases {
            assert_eq!(parse(c.input), Err(c.want), "{}", c.name);
        }
    }

    #[test]
    fn similar_keys_do_not_match() {
        // `usrfstype=` must not be read as `usr=`, nor `rootwait` as `root=`.
        let cfg = parse("usrfstype=ext4 rootwait usr=/dev/vda3").unwrap();
        assert_eq!(
            cfg.usr,
            UsrSpec::Device(DeviceSpec::Path("/dev/vda3".into()))
        );
        assert_eq!(cfg.usr_fstype, "ext4");
        assert_eq!(cfg.root, RootSpec::LabelOnUsrDisk("ROOT".into()));
    }

    #[test]
    fn network_boot_runs_usr_from_the_initramfs_image() {
        let image = Some(LIVE_USR_IMAGE);
        let cfg = parse_with_image("console=ttyS0 coreos.autologin", image).unwrap();
        assert_eq!(cfg.usr, UsrSpec::Image("/usr.squashfs".into()));
        assert_eq!(cfg.usr_fstype, "squashfs");
        assert_eq!(cfg.root, RootSpec::Ram);
        assert_eq!(cfg.root_fstype, "tmpfs");
        // State on a disk, as Container Linux's `root=` did for PXE machines.
        let cfg = parse_with_image("root=/dev/sda9 rootfstype=btrfs", image).unwrap();
        assert_eq!(cfg.usr, UsrSpec::Image("/usr.squashfs".into()));
        assert_eq!(
            cfg.root,
            RootSpec::Device(DeviceSpec::Path("/dev/sda9".into()))
        );
        assert_eq!(cfg.root_fstype, "btrfs");
        let cfg = parse_with_image("root=PARTLABEL=ROOT", image).unwrap();
        assert_eq!(cfg.root_fstype, "ext4");
        // usr= still wins: the image is only for machines without a usr partition.
        let cfg = parse_with_image("usr=/dev/vda3", image).unwrap();
        assert_eq!(
            cfg.usr,
            UsrSpec::Device(DeviceSpec::Path("/dev/vda3".into()))
        );
        assert_eq!(cfg.root, RootSpec::LabelOnUsrDisk("ROOT".into()));
        assert_eq!(parse_with_image("", None), Err(CmdlineError::MissingUsr));
    }

    #[test]
    fn failure_actions() {
        assert_eq!(failure_action("console=ttyS0"), FailureAction::PowerOff);
        assert_eq!(failure_action("panic=0"), FailureAction::PowerOff);
        assert_eq!(failure_action("panic=x"), FailureAction::PowerOff);
        assert_eq!(
            failure_action("panic=10"),
            FailureAction::Reboot { after_secs: 10 }
        );
        assert_eq!(
            failure_action("panic=-1"),
            FailureAction::Reboot { after_secs: 0 }
        );
    }

    #[test]
    fn uuids() {
        assert!(is_uuid(UUID));
        assert!(is_uuid(&UUID.to_ascii_lowercase()));
        assert!(!is_uuid("5dfbf5f4-2848-4bac-aa5e-0d9a20b745a"));
        assert!(!is_uuid("5dfbf5f4x2848-4bac-aa5e-0d9a20b745a6"));
        assert!(!is_uuid("5dfbf5f4-2848-4bac-aa5e-0d9a20b745ag"));
    }
}
