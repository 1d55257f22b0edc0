//! Where input packages come from (a pool directory or an HTTP apt repository) and how they
//! are verified against the lockfile before use.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use rootfs::apt::{AptRepo, HttpClient};
use rootfs::source::Candidate;
use sha2::{Digest, Sha256};

use crate::inputs::lock::LockedPackage;

/// A package source.
pub enum InputSource {
    /// A directory of `.deb` files.
    Pool(PathBuf),
    /// An HTTP apt repository; downloads are cached by content hash in `cache`.
    Repo {
        repo: AptRepo,
        client: Box<HttpClient>,
        cache: PathBuf,
        url: String,
        suite: String,
    },
}

/// A package's input does not match the lockfile: the size first (a different size says so
/// without comparing hashes), then the sha256.
#[derive(Debug, thiserror::Error)]
pub enum InputMismatch {
    #[error("{package} {version}: size mismatch: the lock expects {expected} bytes, the input has {actual}")]
    Size {
        package: String,
        version: String,
        expected: u64,
        actual: u64,
    },
    #[error(
        "{package} {version}: sha256 mismatch: the lock expects {expected}, the input is {actual}"
    )]
    Sha256 {
        package: String,
        version: String,
        expected: String,
        actual: String,
    },
    #[error("{package} {version}: the lock's {field} is {expected:?}, the package's control data says {actual:?}")]
    Control {
        package: String,
        version: String,
        field: &'static str,
        expected: String,
        actual: String,
    },
}

impl InputSource {
    pub fn pool(dir: &Path) -> InputSource {
        InputSource::Pool(dir.to_path_buf())
    }

    pub fn repo(url: &str, suite: &str, component: &str, cache: &Path) -> Result<InputSource> {
        Ok(InputSource::Repo {
            repo: AptRepo::new(url, suite, component, crate::inputs::lock::ARCH),
            client: Box::new(HttpClient::new()?),
            cache: cache.to_path_buf(),
            url: url.to_string(),
            suite: suite.to_string(),
        })
    }

    /// How the lockfile records this source.
    pub fn describe(&self) -> String {
        match self {
            InputSource::Pool(_) => "pool".into(),
            InputSource::Repo { url, suite, .. } => {
                format!("{} {suite}", url.trim_end_matches('/'))
            }
        }
    }

    /// Every package the source offers.
    pub fn candidates(&self) -> Result<Vec<Candidate>> {
        match self {
            InputSource::Pool(dir) => rootfs::pool::scan(dir)
                .with_context(|| format!("reading package pool {}", dir.display())),
            InputSource::Repo {
                repo, client, url, ..
            } => repo
                .index(client)
                .with_context(|| format!("reading apt repository {url}")),
        }
    }

    /// Every package the source offers, with the fields the dependency resolver reads.
    pub fn index_entries(&self) -> Result<Vec<rootfs::source::IndexEntry>> {
        match self {
            InputSource::Pool(dir) => rootfs::pool::scan_index(dir)
                .with_context(|| format!("reading package pool {}", dir.display())),
            InputSource::Repo {
                repo, client, url, ..
            } => repo
                .packages(client)
                .with_context(|| format!("reading apt repository {url}")),
        }
    }

    /// The bytes of a locked package, verified against the lock's size and sha256, then its
    /// control data against the lock's package, version and architecture.
    pub fn fetch(&self, p: &LockedPackage, progress: bool) -> Result<Vec<u8>> {
        let path = match self {
            InputSource::Pool(dir) => find_in_pool(dir, p)?,
            InputSource::Repo {
                repo,
                client,
                cache,
                ..
            } => repo.fetch_deb(client, &p.candidate(), cache, progress)?,
        };
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        verify(p, &bytes)?;
        let control = rootfs::deb::read_control(&bytes)
            .with_context(|| format!("{} {}: reading its control data", p.package, p.version))?;
        verify_control(p, &control)?;
        Ok(bytes)
    }
}

/// Check bytes against the lock entry.
pub fn verify(p: &LockedPackage, bytes: &[u8]) -> Result<(), InputMismatch> {
    let size = bytes.len() as u64;
    if size != p.size {
        return Err(InputMismatch::Size {
            package: p.package.clone(),
            version: p.version.clone(),
            expected: p.size,
            actual: size,
        });
    }
    let actual = hex::encode(Sha256::digest(bytes));
    if actual != p.sha256 {
        return Err(InputMismatch::Sha256 {
            package: p.package.clone(),
            version: p.version.clone(),
            expected: p.sha256.clone(),
            actual,
        });
    }
    Ok(())
}

/// Check the package's own control data against the lock entry: the lock is the whole truth
/// of what a build used (`build.json` copies it), so a field edited by hand is caught here.
pub fn verify_control(
    p: &LockedPackage,
    control: &rootfs::deb::Control,
) -> Result<(), InputMismatch> {
    for (field, expected, actual) in [
        ("package", &p.package, &control.package),
        ("version", &p.version, &control.version),
        ("architecture", &p.architecture, &control.architecture),
    ] {
        if expected != actual {
            return Err(InputMismatch::Control {
                package: p.package.clone(),
                version: p.version.clone(),
                field,
                expected: expected.clone(),
                actual: actual.clone(),
            });
        }
    }
    if let Some(actual) = p.file_name_mismatch(control) {
        return Err(InputMismatch::Control {
            package: p.package.clone(),
            version: p.version.clone(),
            field: "filename",
            expected: p.filename.clone(),
            actual,
        });
    }
    Ok(())
}

/// The pool file for a locked package: its recorded file name, else the file whose control
/// data names the same package, version and architecture.
fn find_in_pool(dir: &Path, p: &LockedPackage) -> Result<PathBuf> {
    let direct = dir.join(&p.filename);
    if !p.filename.contains('/') && direct.is_file() {
        return Ok(direct);
    }
    let found = rootfs::pool::scan(dir)
        .with_context(|| format!("reading package pool {}", dir.display()))?
        .into_iter()
        .find(|c| {
            c.package == p.package && c.version == p.version && c.architecture == p.architecture
        });
    match found {
        Some(c) => Ok(dir.join(c.filename)),
        None => bail!(
            "package {} {} ({}) is missing from the pool {}; run `make pool` (or `image-builder fetch`) to download it",
            p.package,
            p.version,
            p.architecture,
            dir.display()
        ),
    }
}

/// Fill a pool directory with the locked packages using the host's `apt-get download`.
/// A version the host's apt sources no longer serve is reported with the way out: re-lock.
///
/// The missing packages are fetched by one `apt-get download`; only if that fails are they
/// fetched one by one, to name the package at fault.
pub fn fill_pool(dir: &Path, packages: &[LockedPackage], spec_path: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let have = rootfs::pool::scan(dir)
        .with_context(|| format!("reading package pool {}", dir.display()))?;
    let missing: Vec<&LockedPackage> = packages
        .iter()
        .filter(|p| !have.iter().any(|c| c.sha256 == p.sha256))
        .collect();
    if missing.len() > 1 {
        eprintln!("fetching {} packages with apt-get download", missing.len());
        let all: Vec<String> = missing
            .iter()
            .map(|p| format!("{}={}", p.package, p.version))
            .collect();
        if apt_get_download_all(dir, &all)?.status.success() {
            return Ok(());
        }
    }
    let have = rootfs::pool::scan(dir)
        .with_context(|| format!("reading package pool {}", dir.display()))?;
    for p in missing {
        if have.iter().any(|c| c.sha256 == p.sha256) {
            continue;
        }
        eprintln!("fetching {} {} with apt-get download", p.package, p.version);
        let out = apt_get_download(dir, &format!("{}={}", p.package, p.version))?;
        if !out.status.success() {
            bail!(
                "{} {} is no longer served by this host's apt sources ({}); re-lock with \
                 `image-builder lock {} --pool {} --download` to pin the versions served now",
                p.package,
                p.version,
                String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .find(|l| l.starts_with("E:"))
                    .unwrap_or("apt-get failed")
                    .trim(),
                spec_path.display(),
                dir.display(),
            );
        }
    }
    Ok(())
}

/// Download the newest version of each named package into `dir` (for re-locking).
pub fn download_latest(dir: &Path, names: &[String]) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for name in names {
        let out = apt_get_download(dir, name)?;
        if !out.status.success() {
            bail!(
                "apt-get download {name} failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
    }
    Ok(())
}

/// `apt-get download` of one package in `dir`.
fn apt_get_download(dir: &Path, what: &str) -> Result<std::process::Output> {
    apt_get_download_all(dir, &[what.to_string()])
}

/// `apt-get download` in `dir` (the one wrapper around the host tool).
fn apt_get_download_all(dir: &Path, what: &[String]) -> Result<std::process::Output> {
    Command::new("apt-get")
        .args(["download", "-q"])
        .args(what)
        .current_dir(dir)
        .output()
        .context("running apt-get (this command needs a Debian host)")
}
