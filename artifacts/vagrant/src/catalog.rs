//! The per-channel box catalog (SPECS.md S6): the JSON `vagrant box add <URL>` reads to learn a
//! box's versions and where each provider's box file is, with its sha256. Serving one catalog
//! per channel and adding each release to it makes `vagrant box update` follow the channel.
//!
//! ```json
//! {"name": "minimal-alpha", "description": "...",
//!  "versions": [{"version": "1.0.0",
//!                "providers": [{"name": "libvirt", "url": "...", "checksum_type": "sha256",
//!                               "checksum": "...", "architecture": "amd64"}]}]}
//! ```
//!
//! [`Catalog`] is a value: [`Catalog::add`] inserts or replaces one version (versions stay
//! sorted, oldest first; providers sorted by name) and [`Catalog::to_json`] renders it.

use serde::{Deserialize, Serialize};

/// The architecture every box of this project is for.
pub const ARCHITECTURE: &str = "amd64";

/// A box catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Catalog {
    pub name: String,
    pub description: String,
    pub versions: Vec<CatalogVersion>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogVersion {
    pub version: String,
    pub providers: Vec<CatalogProvider>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogProvider {
    /// `virtualbox` or `libvirt`.
    pub name: String,
    pub url: String,
    pub checksum_type: String,
    /// sha256 of the box file, hex.
    pub checksum: String,
    pub architecture: String,
}

impl CatalogProvider {
    pub fn new(name: &str, url: &str, sha256: &str) -> CatalogProvider {
        CatalogProvider {
            name: name.into(),
            url: url.into(),
            checksum_type: "sha256".into(),
            checksum: sha256.into(),
            architecture: ARCHITECTURE.into(),
        }
    }
}

/// The name of a channel's box (and of its catalog): `<os id>-<channel>`.
pub fn box_name(os_id: &str, channel: &str) -> String {
    format!("{os_id}-{channel}")
}

impl Catalog {
    /// An empty catalog.
    pub fn new(name: &str, description: &str) -> Catalog {
        Catalog {
            name: name.into(),
            description: description.into(),
            versions: Vec::new(),
        }
    }

    /// Insert `version` with these providers, replacing what that version had. Does not touch
    /// any file.
    pub fn add(&mut self, version: &str, mut providers: Vec<CatalogProvider>) {
        providers.sort_by(|a, b| a.name.cmp(&b.name));
        self.versions.retain(|v| v.version != version);
        self.versions.push(CatalogVersion {
            version: version.into(),
            providers,
        });
        self.versions.sort_by_key(|v| version_key(&v.version));
    }

    /// Pretty JSON with a final newline.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("plain data serialises");
        s.push('\n');
        s
    }

    /// Parse a catalog (one this module wrote, or any Vagrant catalog with these fields).
    pub fn from_json(text: &str) -> Result<Catalog, serde_json::Error> {
        serde_json::from_str(text)
    }
}

/// Sort key of a dotted version: numeric parts compare as numbers, the rest as text.
fn version_key(v: &str) -> Vec<(u64, String)> {
    v.split('.')
        .map(|p| match p.parse::<u64>() {
            Ok(n) => (n, String::new()),
            Err(_) => (u64::MAX, p.to_string()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_json() {
        let mut c = Catalog::new("minimal-alpha", "Minimal Linux (alpha)");
        c.add(
            "1.0.0",
            vec![
                CatalogProvider::new("virtualbox", "https://x/vb.box", "bb"),
                CatalogProvider::new("libvirt", "https://x/lv.box", "aa"),
            ],
        );
        let want = r#"{
  "name": "minimal-alpha",
  "description": "Minimal Linux (alpha)",
  "versions": [
    {
      "version": "1.0.0",
      "providers": [
        {
          "name": "libvirt",
          "url": "https://x/lv.box",
          "checksum_type": "sha256",
          "checksum": "aa",
          "architecture": "amd64"
        },
        {
          "name": "virtualbox",
          "url": "https://x/vb.box",
          "checksum_type": "sha256",
          "checksum": "bb",
          "architecture": "amd64"
        }
      ]
    }
  ]
}
"#;
        assert_eq!(c.to_json(), want);
        assert_eq!(Catalog::from_json(want).unwrap(), c);
    }

    #[test]
    fn versions_sort_numerically_and_replace() {
        let mut c = Catalog::new("m-alpha", "");
        for v in ["1.10.0", "1.2.0", "1.9.3"] {
            c.add(v, vec![CatalogProvider::new("libvirt", v, "0")]);
        }
        c.add("1.2.0", vec![CatalogProvider::new("libvirt", "again", "1")]);
        let got: Vec<(&str, &str)> = c
            .versions
            .iter()
            .map(|v| (v.version.as_str(), v.providers[0].url.as_str()))
            .collect();
        assert_eq!(
            got,
            [("1.2.0", "again"), ("1.9.3", "1.9.3"), ("1.10.0", "1.10.0")]
        );
    }
}
