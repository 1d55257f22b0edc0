//! OVA artifacts (SPECS.md S7, S8). This crate owns the streamOptimized VMDK writer, which the
//! `vagrant` crate reuses for the virtualbox box; the OVF renderer and the OVA tar come later.
//!
//! [`raw::RawDisk`], [`pool::Pool`] and [`output::AtomicFile`] are shared with the other
//! disk-format writers of the artifact crates.

pub mod output;
pub mod pool;
pub mod raw;
pub mod vmdk;

pub use raw::RawDisk;
