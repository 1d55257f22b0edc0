//! `build.json`: what a build made (every file with its size and sha256), from what (the
//! locked packages, a digest of every input) and how the disk is laid out. The build writes it
//! last; `payload`, `publish`, `vagrant-catalog`, `ami-upload` and `run --pxe` read a build
//! through it.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

pub use channels::FileInfo;

use crate::disk::layout::DiskLayout;
use crate::inputs::LockedPackage;
use crate::spec::{Os, Output};

/// The report's file name in a build's output directory.
pub const BUILD_JSON: &str = "build.json";
/// The disk image every build writes.
pub const DISK: &str = "disk.raw";
/// The slot artifacts: a release's payload files, under the same names.
pub use channels::release::{INITRD, KERNEL, USR_IMG};

/// `build.json`: what was built, from what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildReport {
    pub os: Os,
    pub kernel_release: String,
    /// sha256 over every input (spec, lock, repository files, /init, builder version).
    pub input_digest: String,
    /// Files written to the output directory.
    pub artifacts: BTreeMap<String, FileInfo>,
    /// The platform artifacts among them: output name (`ova`, `vagrant-libvirt`, ...) → files.
    #[serde(default)]
    pub outputs: BTreeMap<String, Vec<String>>,
    /// Partition images inside `disk.raw`.
    pub intermediates: BTreeMap<String, FileInfo>,
    pub layout: DiskLayout,
    pub inputs: Vec<LockedPackage>,
    /// Boot entry file names on the ESP.
    pub boot_entries: Vec<String>,
    /// RAM (MiB) a machine needs to run the image from RAM, when the build made the network
    /// boot or the live medium (`artifacts::live::ram_mib`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live_ram_mib: Option<u64>,
}

impl BuildReport {
    /// The report of the build in `dir`.
    pub fn load(dir: &Path) -> Result<BuildReport> {
        let path = dir.join(BUILD_JSON);
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "reading {} ({} is not a finished build)",
                path.display(),
                dir.display()
            )
        })?;
        serde_json::from_str(&text)
            .with_context(|| format!("{} is not a build.json", path.display()))
    }

    /// The files of `output` (e.g. `pxe`), or an error naming the build and what to do.
    pub fn output_files(&self, dir: &Path, output: Output) -> Result<&[String]> {
        self.outputs
            .get(output.as_str())
            .map(Vec::as_slice)
            .with_context(|| {
                format!(
                    "{} lists no {output} output: add {output} to the spec's outputs (or build with --outputs) and rebuild",
                    dir.join(BUILD_JSON).display()
                )
            })
    }

    /// The text written to `build.json`.
    pub fn to_json(&self) -> Result<String> {
        let mut text = serde_json::to_string_pretty(self)?;
        text.push('\n');
        Ok(text)
    }
}
