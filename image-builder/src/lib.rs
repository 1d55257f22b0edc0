//! Builds reproducible A/B disk images from a YAML spec and pinned Debian packages.
//!
//! The modules follow the data flow of DESIGN.md: [`spec`] → [`lock`] (computed by
//! [`lock_resolve`]) → [`inputs`] (the
//! `rootfs` crate extracts them) → [`usr`] / [`initramfs`] / [`esp`] + [`fat`] / [`ext4`] →
//! [`layout`] + [`gpt`] → [`build`] (disk.raw, build.json) → [`artifacts`] (the platform
//! artifacts, through the `ova`, `vagrant` and `ami` crates). [`inspect`] and [`run`] read and
//! boot the result.

pub mod artifacts;
pub mod build;
pub mod esp;
pub mod ext4;
pub mod fat;
pub mod gpt;
pub mod initramfs;
pub mod inputs;
pub mod inspect;
pub mod layout;
pub mod lock;
pub mod lock_resolve;
pub mod publish;
pub mod run;
pub mod serve;
pub mod sparse;
pub mod spec;
pub mod usr;
