//! What the image builder writes and the machines read back. Each module is one contract with
//! one owner, so the two sides cannot drift apart:
//!
//! - [`cmdline`]: the kernel command line keys (`usr=`, `root=`, `init=`, `panic=`, ...), the
//!   network-boot USR image's path in the initramfs ([`cmdline::LIVE_USR_IMAGE`]) and the parser
//!   `/init` reads them with;
//! - [`slots`]: the USR slots and their Type #1 boot entries with boot counting (SPECS.md S4):
//!   the builder writes the first entry, the update engine stages, blesses and detects rollbacks.

pub mod cmdline;
pub mod slots;
