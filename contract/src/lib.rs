//! What the image builder writes and the machines read back. Each module is one contract with
//! one owner, so the two sides cannot drift apart; everything here is pure (no IO beyond the
//! slot table's files on a mounted ESP).
//!
//! - [`cmdline`]: the kernel command line keys (`usr=`, `root=`, `init=`, `panic=`, ...), the
//!   network-boot USR image's path in the initramfs ([`cmdline::LIVE_USR_IMAGE`]) and the parser
//!   `/init` reads them with;
//! - [`partitions`]: partition numbers, names and type GUIDs of the disk (DESIGN.md "Disk
//!   layout");
//! - [`slots`]: the USR slots and their Type #1 boot entries with boot counting (SPECS.md S4):
//!   the builder writes the first entry, the update engine stages, blesses and detects rollbacks;
//! - [`update_conf`]: `update.conf` keys, syntax and the reboot strategies: the builder writes
//!   the image's defaults, the config agent a machine's overrides, the engine reads both;
//! - [`os_release`]: `/usr/lib/os-release`, written by the builder, read by the engine;
//! - [`paths`]: the files these contracts live in on the machine.

pub mod cmdline;
pub mod os_release;
pub mod partitions;
pub mod paths;
pub mod slots;
pub mod update_conf;
