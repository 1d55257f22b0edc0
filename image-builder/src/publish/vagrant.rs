//! `image-builder vagrant-catalog`: a build's Vagrant boxes added to a channel's box catalog,
//! the JSON that `vagrant box add <catalog URL>` and `vagrant box update` follow (the format is
//! the `vagrant` crate's).

use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::artifacts::{file_name, vagrant_provider, write_text};
use crate::report::{BuildReport, FileInfo};
use crate::spec::Output;

/// Add the Vagrant boxes of the build in `build_dir` to the box catalog at `catalog` (created
/// if missing), as version `os.version` of the `<os.id>-<channel>` box, with URLs under
/// `base_url`. `channel` defaults to the build's. Returns the catalog written.
pub fn vagrant_catalog(
    build_dir: &Path,
    base_url: &str,
    catalog: &Path,
    channel: Option<&str>,
) -> Result<vagrant::Catalog> {
    let json_path = build_dir.join(crate::report::BUILD_JSON);
    let report = BuildReport::load(build_dir)?;
    let channel = channel.unwrap_or(&report.os.channel.0);
    let providers = catalog_providers(&report, base_url);
    if providers.is_empty() {
        bail!(
            "{} lists no Vagrant box: add vagrant-libvirt or vagrant-virtualbox to the spec's outputs",
            json_path.display()
        );
    }
    let name = vagrant::catalog::box_name(&report.os.id.0, channel);
    let mut c = match std::fs::read_to_string(catalog) {
        Ok(text) => vagrant::Catalog::from_json(&text)
            .with_context(|| format!("{} is not a box catalog", catalog.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            vagrant::Catalog::new(&name, &format!("{} ({channel})", report.os.name.0))
        }
        Err(e) => return Err(e).with_context(|| format!("reading {}", catalog.display())),
    };
    if c.name != name {
        bail!(
            "{} is the catalog of box {:?}, not {name:?}",
            catalog.display(),
            c.name
        );
    }
    c.add(&report.os.version.0, providers);
    write_text(catalog, &c.to_json())?;
    Ok(c)
}

/// One catalog provider per box the build made.
fn catalog_providers(report: &BuildReport, base_url: &str) -> Vec<vagrant::CatalogProvider> {
    Output::ALL
        .iter()
        .filter_map(|&o| {
            let provider = vagrant_provider(o)?;
            let file = file_name(&report.os, o, "box");
            let info: &FileInfo = report.artifacts.get(&file)?;
            let url = format!("{}/{file}", base_url.trim_end_matches('/'));
            Some(vagrant::CatalogProvider::new(provider, &url, &info.sha256))
        })
        .collect()
}
