//! A build's files are made in a staging directory inside the output directory and renamed
//! into place only when everything succeeded, `build.json` last (after the old one is
//! removed): a failed build never leaves a `build.json` describing files it did not finish.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::report::{BuildReport, FileInfo, BUILD_JSON};

/// The staging directory of one build (removed with everything left in it when dropped).
pub struct Staging {
    dir: tempfile::TempDir,
    out: PathBuf,
}

impl Staging {
    /// A fresh staging directory in `out` (created if missing).
    pub fn new(out: &Path) -> Result<Staging> {
        std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
        let dir = tempfile::Builder::new()
            .prefix(".staging-")
            .tempdir_in(out)
            .with_context(|| format!("creating a staging directory in {}", out.display()))?;
        Ok(Staging {
            dir,
            out: out.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `name` in the staging directory.
    pub fn join(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Write `bytes` as `name`; returns their identity.
    pub fn write(&self, name: &str, bytes: &[u8]) -> Result<FileInfo> {
        let path = self.join(name);
        std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
        Ok(FileInfo::of(bytes))
    }

    /// Move the report's artifacts into the output directory, then write `build.json`.
    pub fn publish(self, report: &BuildReport) -> Result<()> {
        let json_path = self.out.join(BUILD_JSON);
        match std::fs::remove_file(&json_path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("removing {}", json_path.display())),
        }
        for name in report.artifacts.keys() {
            std::fs::rename(self.join(name), self.out.join(name))
                .with_context(|| format!("moving {name} into {}", self.out.display()))?;
        }
        let tmp = self.join(BUILD_JSON);
        std::fs::write(&tmp, report.to_json()?)
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &json_path)
            .with_context(|| format!("writing {}", json_path.display()))?;
        Ok(())
    }
}
