//! Vagrant boxes (SPECS.md S6): the qcow2 writer for the libvirt box ([`qcow2`]), the
//! virtualbox and libvirt boxes ([`boxes`], reusing `ova`'s VMDK writer, OVF renderer and USTAR
//! archives), the per-channel box catalog ([`catalog`]) and the coreos-vagrant style cluster
//! Vagrantfile ([`cluster`]).

pub mod boxes;
pub mod catalog;
pub mod cluster;
pub mod qcow2;

pub use boxes::{write_libvirt, write_virtualbox, BoxOptions, BoxWritten};
pub use catalog::{Catalog, CatalogProvider};
