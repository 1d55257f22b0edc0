//! AMI artifacts (SPECS.md S9, S10): the fixed VHD writer for VM Import ([`vhd`]) and the
//! `RegisterImage` input ([`register`]). The raw disk for the EBS direct APIs is the build's
//! raw disk itself.
//!
//! The upload path (`image-builder ami-upload`, [`upload`]): the raw disk goes to an EBS
//! snapshot through the EBS direct APIs ([`ebs`]), then EC2 registers the AMI ([`ec2`]);
//! requests are signed with AWS Signature Version 4 ([`sigv4`]) and sent by [`aws`].

pub mod aws;
pub mod ebs;
pub mod ec2;
pub mod register;
pub mod sigv4;
pub mod upload;
pub mod vhd;

pub use register::{Image, RegisterImage};
