//! Skipping a build that would change nothing: a sha256 over every input (the builder's
//! output version, the spec, the lock, `/init`, every repository file the spec names, and the
//! outputs when `--outputs` overrides the spec's), compared with the last build's
//! `build.json`, whose artifacts must also still be intact.

use std::path::Path;

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

use crate::disk::write::file_info;
use crate::report::BuildReport;
use crate::spec::{ImageSpec, Output};

/// Bumped whenever the builder's output for the same inputs changes.
pub const BUILDER_OUTPUT_VERSION: u32 = 4;

/// What the digest covers besides the files the spec names.
pub struct DigestInputs<'a> {
    pub spec: &'a ImageSpec,
    pub spec_path: &'a Path,
    pub lock_path: &'a Path,
    /// The repository root the spec's paths are relative to.
    pub root: &'a Path,
    pub init: &'a [u8],
    /// `--outputs`, when it differs from the spec's own list.
    pub outputs: Option<&'a [Output]>,
}

/// The input digest, hex.
pub fn input_digest(i: &DigestInputs) -> Result<String> {
    let mut h = Sha256::new();
    let mut add = |label: &str, bytes: &[u8]| {
        h.update(label.as_bytes());
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    add(
        "builder",
        format!("{}/{}", env!("CARGO_PKG_VERSION"), BUILDER_OUTPUT_VERSION).as_bytes(),
    );
    let read =
        |path: &Path| std::fs::read(path).with_context(|| format!("reading {}", path.display()));
    add("spec", &read(i.spec_path)?);
    add("lock", &read(i.lock_path)?);
    add("init", i.init);
    for src in i.spec.source_files() {
        add(src, &read(&i.root.join(src))?);
    }
    if let Some(outputs) = i.outputs {
        let names: Vec<&str> = outputs.iter().map(|o| o.as_str()).collect();
        add("outputs", names.join(",").as_bytes());
    }
    Ok(hex::encode(h.finalize()))
}

/// The previous report in `out` if its digest is `digest` and its artifacts are intact.
pub fn up_to_date(out: &Path, digest: &str) -> Option<BuildReport> {
    let report = BuildReport::load(out).ok()?;
    if report.input_digest != digest {
        return None;
    }
    for (name, info) in &report.artifacts {
        if file_info(&out.join(name)).ok()? != *info {
            return None;
        }
    }
    Some(report)
}
