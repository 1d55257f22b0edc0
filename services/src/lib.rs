//! Programs and data that run on the host, besides the update engine.
//!
//! Today this is the initramfs `/init` (see DESIGN.md, "Boot and slots"): the binary in
//! `src/bin/init.rs` is one call into [`initrd::run`]. The pure parts it relies on live in their own
//! modules and are unit-tested here:
//!
//! - the kernel command line (`usr=`, `root=`, ...) is parsed by `contract::cmdline`;
//! - [`blockdev`]: `/sys/class/block/*/uevent` records and matching them against `usr=`/`root=`;
//! - [`gpt`]: GPT parsing, because the 6.1 kernel's uevent has `PARTNAME` but no `PARTUUID`;
//! - [`modules`]: the `/etc/initrd-modules` list the image builder writes;
//! - [`factory`]: planning the copy of `/usr/share/factory/etc` into `/etc` (tmpfiles `C` semantics).
//!
//! The syscalls themselves are thin wrappers in [`sys`]; [`initrd`] strings everything together.
//! The busybox userland's data files (inittab, rcS, ...) are in `services/minimal/`.
//!
//! First-boot configuration: [`cloudconfig`] models, parses and validates Container Linux
//! `#cloud-config` user-data (pure); [`agent`] is `coreos-cloudinit`, which finds user-data
//! (kernel command line URL, QEMU fw_cfg, config drive, Vagrant, VMware guestinfo, EC2), plans
//! and applies it (`src/bin/coreos-cloudinit.rs`; its unit is `services/units/`).

pub mod agent;
pub mod blockdev;
pub mod cloudconfig;
pub mod factory;
pub mod firstboot;
pub mod gpt;
pub mod initrd;
pub mod modules;
pub mod sys;

#[cfg(test)]
mod testutil;
