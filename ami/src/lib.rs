//! AMI artifacts (SPECS.md S9, S10). This crate owns the fixed VHD writer.

pub mod vhd;
