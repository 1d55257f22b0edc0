//! Programs and data that run on the host, besides the update engine and the initramfs `/init`
//! (the `init` crate). The busybox userland's data files (inittab, rcS, ...) are in
//! `services/minimal/`.
//!
//! First-boot configuration: [`agent`] is `coreos-cloudinit`, which finds user-data
//! (kernel command line URL, QEMU fw_cfg, config drive, Vagrant, VMware guestinfo, EC2), plans
//! and applies it (`src/bin/coreos-cloudinit.rs`; its unit is `services/units/`).

pub mod agent;

#[cfg(test)]
mod testutil;
