//! `image-builder ami-upload`: the `ami` output of a build (found through its `build.json`)
//! uploaded to an EBS snapshot and registered as an AMI by the `ami` crate, which verifies the
//! disk against the size and sha256 the build recorded before sending a byte.

use std::path::Path;

use anyhow::{Context, Result};

use crate::report::BuildReport;
use crate::spec::Output;

/// Upload the AMI disk of the build in `build_dir`; `log` gets progress lines.
pub fn upload(
    build_dir: &Path,
    config: ami::aws::Config,
    opts: &ami::upload::Options,
    log: &dyn Fn(&str),
) -> Result<ami::upload::Outcome> {
    let report = BuildReport::load(build_dir)?;
    let files = report.output_files(build_dir, Output::Ami)?;
    let json = build_dir.join(crate::report::BUILD_JSON);
    let find = |ext: &str| {
        files
            .iter()
            .find(|f| f.ends_with(&format!("_ami.{ext}")))
            .with_context(|| format!("{}: the ami output has no .{ext} file", json.display()))
    };
    let (img, request) = (find("img")?, find("json")?);
    let info = report
        .artifacts
        .get(img)
        .with_context(|| format!("{}: no size and sha256 for {img}", json.display()))?;
    let source = ami::upload::Source {
        img: build_dir.join(img),
        size: info.size,
        sha256: info.sha256.clone(),
        request: build_dir.join(request),
    };
    Ok(ami::upload::run(&source, config, opts, log)?)
}
