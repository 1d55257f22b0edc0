//! Debian inputs and the trees made from them.
//!
//! The build side's first stage: find and fetch pinned `.deb` packages (a local pool directory
//! or an HTTP apt repository), extract them into a deterministic in-memory [`tree::Tree`] with
//! merged /usr, and derive the initramfs (newc cpio) and the kernel module closure.
//! [`resolve`] computes the dependency closure of a package set from an index
//! ([`relation`] parses the relationship fields, [`version`] orders versions as dpkg does).

pub mod apt;
pub mod cpio;
pub mod deb;
pub mod modules;
pub mod pool;
pub mod relation;
pub mod resolve;
pub mod source;
pub mod tree;
pub mod version;
