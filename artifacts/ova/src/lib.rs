//! OVA artifacts (SPECS.md S7, S8): the streamOptimized VMDK writer ([`vmdk`]), the OVF
//! descriptor renderer ([`ovf`]), deterministic USTAR archives ([`ustar`]) and the OVA itself
//! ([`archive`]). The `vagrant` crate reuses the VMDK writer, the renderer and the archives for
//! the virtualbox box.
//!
//! [`raw::RawDisk`], [`pool::Pool`] and [`output::AtomicFile`] are shared with the other
//! disk-format writers of the artifact crates.

pub mod archive;
pub mod output;
pub mod ovf;
pub mod pool;
pub mod raw;
pub mod ustar;
pub mod vmdk;

pub use archive::{write_file, OvaOptions, OvaWritten};
pub use raw::RawDisk;
