//! The OVA: a USTAR archive of the OVF descriptor, its manifest and the streamOptimized VMDK,
//! in that order (SPECS.md S7: descriptor first, so importers read it without scanning).
//!
//! ```text
//! <name>.ovf          the descriptor (ovf::render, VMware flavour)
//! <name>.mf           SHA1(<name>.ovf)= <hex>
//!                     SHA1(<name>-disk1.vmdk)= <hex>
//! <name>-disk1.vmdk   the disk (vmdk::write_file)
//! ```
//!
//! The VMDK is written to a scratch directory next to the output (so large files stay on the
//! same file system), then streamed into the archive; the archive appears at its path only when
//! complete ([`AtomicFile`]).

use std::fmt::Write as _;
use std::io::{self, Read};
use std::path::Path;

use sha1::{Digest, Sha1};

use crate::ovf::{self, Descriptor, DiskFile, Hypervisor, Product};
use crate::ustar::{self, Member};
use crate::vmdk::{self, VmdkOptions};

/// Why an OVA could not be written.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("appliance name {0:?}: want 1 to 80 characters of [A-Za-z0-9._-]")]
    InvalidName(String),
    /// The disk, the archive or the scratch directory (the error names which).
    #[error(transparent)]
    Disk(#[from] diskfmt::Error),
}

/// What the OVA describes besides the disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OvaOptions {
    /// Base name of the members and the VirtualSystem (`minimal-1.0.0`).
    pub name: String,
    pub product: Product,
    pub cpus: u32,
    pub memory_mib: u32,
    /// mtime of the archive members (the spec's `source_date_epoch`).
    pub source_date_epoch: u64,
    /// VMDK compression threads (`None`: one per CPU); the bytes do not depend on it.
    pub threads: Option<usize>,
}

/// What was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OvaWritten {
    pub file_size: u64,
    /// Member names, in archive order.
    pub members: Vec<String>,
    pub vmdk: vmdk::Written,
}

impl OvaOptions {
    pub fn ovf_name(&self) -> String {
        format!("{}.ovf", self.name)
    }
    pub fn manifest_name(&self) -> String {
        format!("{}.mf", self.name)
    }
    pub fn vmdk_name(&self) -> String {
        format!("{}-disk1.vmdk", self.name)
    }
}

/// The manifest text: one `SHA1(<file>)= <hex>` line per file, in the order given. OVF 1.x
/// (DSP0243 1.1, section 5.1) defines SHA-1 digests; OVF consumers that check the manifest
/// (COT, ovftool) take any other algorithm in a 1.x package for a mismatch.
pub fn manifest(files: &[(&str, [u8; 20])]) -> String {
    let mut s = String::new();
    for (name, digest) in files {
        let _ = writeln!(s, "SHA1({name})= {}", hex(digest));
    }
    s
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Whether `name` is usable as a base for member names (also inside XML and the manifest).
pub fn valid_name(name: &str) -> bool {
    (1..=80).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        && !name.starts_with('.')
}

/// Write the OVA for the raw disk at `raw` to `out`.
pub fn write_file(raw: &Path, out: &Path, opts: &OvaOptions) -> Result<OvaWritten, Error> {
    if !valid_name(&opts.name) {
        return Err(Error::InvalidName(opts.name.clone()));
    }
    let scratch = ustar::scratch_dir(out, ".ova-")?;
    let vmdk_name = opts.vmdk_name();
    let vmdk_path = scratch.path().join(&vmdk_name);
    let mut vmdk_opts = VmdkOptions::new(vmdk_name.clone());
    vmdk_opts.threads = opts.threads;
    let written = vmdk::write_file(raw, &vmdk_path, &vmdk_opts)?;

    let descriptor = ovf::render(&Descriptor {
        name: opts.name.clone(),
        product: opts.product.clone(),
        disk: DiskFile {
            href: vmdk_name.clone(),
            size: written.file_size,
            capacity: written.capacity,
            populated: written.populated,
        },
        cpus: opts.cpus,
        memory_mib: opts.memory_mib,
        hypervisor: Hypervisor::Vmware,
    });
    let ovf_name = opts.ovf_name();
    let vmdk_digest = sha1_file(&vmdk_path).map_err(diskfmt::Error::io("reading", &vmdk_path))?;
    let mf = manifest(&[
        (&ovf_name, Sha1::digest(descriptor.as_bytes()).into()),
        (&vmdk_name, vmdk_digest),
    ]);

    let mf_name = opts.manifest_name();
    let members = [
        Member::Bytes(&ovf_name, descriptor.as_bytes()),
        Member::Bytes(&mf_name, mf.as_bytes()),
        Member::File(&vmdk_name, &vmdk_path),
    ];
    let file_size = ustar::write_file(out, opts.source_date_epoch, &members)?;
    Ok(OvaWritten {
        file_size,
        members: members.iter().map(|m| m.name().to_string()).collect(),
        vmdk: written,
    })
}

/// SHA-1 of a file's bytes (for the manifest only: OVF 1.x's algorithm).
pub fn sha1_file(path: &Path) -> io::Result<[u8; 20]> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha1::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match f.read(&mut buf)? {
            0 => break,
            n => h.update(&buf[..n]),
        }
    }
    Ok(h.finalize().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_lines() {
        let text = manifest(&[("a.ovf", [0u8; 20]), ("a-disk1.vmdk", [0xab; 20])]);
        assert_eq!(
            text,
            format!(
                "SHA1(a.ovf)= {}\nSHA1(a-disk1.vmdk)= {}\n",
                "00".repeat(20),
                "ab".repeat(20)
            )
        );
    }

    #[test]
    fn names() {
        for ok in ["minimal-1.0.0", "a", "x_y.z"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["", ".hidden", "a b", "a/b", "a\"b", "é", &"x".repeat(81)] {
            assert!(!valid_name(bad), "{bad:?}");
        }
    }
}
