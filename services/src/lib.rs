//! Programs and data that run on the host, besides the update engine.
//!
//! Today this is the initramfs `/init` (see DESIGN.md, "Boot and slots"): the binary in
//! `src/bin/init.rs` is one call into [`initrd::run`]. The pure parts it relies on live in their own
//! modules and are unit-tested here:
//!
//! - the kernel command line (`usr=`, `root=`, ...) is parsed by `contract::cmdline`;
//! - block devices, GPT parsing and the syscall wrappers are the `machine` crate's;
//! - [`modules`]: the `/etc/initrd-modules` list the image builder writes;
//! - [`factory`]: planning the copy of `/usr/share/factory/etc` into `/etc` (tmpfiles `C` semantics).
//!
//! [`initrd`] strings everything together.
//! The busybox userland's data files (inittab, rcS, ...) are in `services/minimal/`.
//!
//! First-boot configuration: [`cloudconfig`] models, parses and validates Container Linux
//! `#cloud-config` user-data (pure); [`agent`] is `coreos-cloudinit`, which finds user-data
//! (kernel command line URL, QEMU fw_cfg, config drive, Vagrant, VMware guestinfo, EC2), plans
//! and applies it (`src/bin/coreos-cloudinit.rs`; its unit is `services/units/`).

pub mod agent;
pub mod cloudconfig;
pub mod factory;
pub mod firstboot;
pub mod initrd;
pub mod modules;

#[cfg(test)]
mod testutil;
