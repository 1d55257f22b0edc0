//! Builds reproducible A/B disk images from a YAML spec and pinned Debian packages.
//!
//! The modules follow the data flow of DESIGN.md: [`spec`] → [`lock`] → inputs (the `rootfs`
//! crate) → [`usr`] / [`initramfs`] / [`esp`] → [`layout`] → [`disk`] → [`build`].

pub mod gpt;
pub mod layout;
pub mod spec;
