//! The disk: [`layout`] computes the partition table from the spec (pure), [`gpt`] renders and
//! parses it, [`write`] puts the table and the partition images into a sparse file ([`sparse`]
//! walks such files without reading their holes), [`bios`] makes GRUB's legacy BIOS boot code
//! for the MBR and the BIOS-BOOT partition, and [`inspect`] reads a disk back.

pub mod bios;
pub mod gpt;
pub mod inspect;
pub mod layout;
pub mod sparse;
pub mod write;
