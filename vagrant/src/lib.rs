//! Vagrant boxes (SPECS.md S6). This crate owns the qcow2 writer for the libvirt box.

pub mod qcow2;
