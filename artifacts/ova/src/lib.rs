//! OVA artifacts (SPECS.md S7, S8): the streamOptimized VMDK writer ([`vmdk`]), the OVF
//! descriptor renderer ([`ovf`]), deterministic USTAR archives ([`ustar`]) and the OVA itself
//! ([`archive`]). The `vagrant` crate reuses the VMDK writer, the renderer and the archives for
//! the virtualbox box.
//!
//! What the VMDK writer shares with the other disk-format writers (errors, the raw-disk
//! reader, the compression pool) is the `diskfmt` crate's.

pub mod archive;
pub mod ovf;
pub mod ustar;
pub mod vmdk;

pub use archive::{write_file, OvaOptions, OvaWritten};
