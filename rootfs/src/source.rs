//! Where packages come from: one [`Candidate`] per available `.deb`, whatever the source.

use serde::{Deserialize, Serialize};

/// One available binary package, as an index (pool scan or apt `Packages`) describes it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Candidate {
    pub package: String,
    pub version: String,
    pub architecture: String,
    /// Size of the .deb in bytes.
    pub size: u64,
    /// Lower-case hex sha256 of the .deb.
    pub sha256: String,
    /// Where it is inside its source: the apt `Filename:` (`pool/main/b/busybox/...deb`) or
    /// the file name inside a pool directory.
    pub filename: String,
}
