//! `coreos-install`: writes a release of the channel onto a disk (issue 17).

pub mod disks;
pub mod pipeline;

pub use pipeline::{write_image, Device, DiskImage, PipelineError};
