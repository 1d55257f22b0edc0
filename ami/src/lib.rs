//! AMI artifacts (SPECS.md S9, S10): the fixed VHD writer for VM Import ([`vhd`]) and the
//! `RegisterImage` input ([`register`]). The raw disk for the EBS direct APIs is the build's
//! raw disk itself.

pub mod register;
pub mod vhd;

pub use register::{Image, RegisterImage};
