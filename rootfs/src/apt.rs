//! Packages from an HTTP apt repository in the Debian archive layout.
//!
//! Layout (<https://wiki.debian.org/DebianRepository/Format>): `<base>/dists/<suite>/Release`
//! lists the sha256 and size of every index file; `<component>/binary-<arch>/Packages[.xz|.gz]`
//! has one deb822 paragraph per `.deb`, which lives at `<base>/<Filename>`.
//!
//! - [`AptRepo::index`] reads Release, fetches the best-compressed Packages it lists, checks
//!   that file against Release and returns one [`Candidate`] per paragraph.
//! - [`AptRepo::fetch_deb`] downloads one `.deb` into a content-addressed cache
//!   (`<cache>/sha256/<hex>.deb`), checking its size and sha256 before it enters the cache.
//!
//! The text formats (parsers and renderers) are in [`deb822`], the HTTP client and its one
//! retry policy in [`http`]; both are re-exported here. [`lists`] reads the indexes the host's
//! apt has already downloaded (`/var/lib/apt/lists`).

pub mod deb822;
pub mod http;
pub mod lists;

#[cfg(test)]
mod http_tests;

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};

pub use self::deb822::{
    candidates, index_entries, parse_release, parse_stanzas, render_packages, render_release,
    Release,
};
pub use self::http::{HttpClient, Policy, USER_AGENT};
use crate::source::{Candidate, IndexEntry};

/// Largest `Release` accepted (Debian bookworm's is about 150 KB).
pub const MAX_RELEASE_BYTES: u64 = 16 << 20; // 16 MiB
/// Largest decompressed `Packages` accepted (bookworm main/binary-amd64 is about 45 MiB).
pub const MAX_INDEX_BYTES: u64 = 1 << 30; // 1 GiB
/// Compressions of `Packages` in order of preference; the first one Release lists is used.
pub const INDEX_SUFFIXES: [&str; 3] = [".xz", ".gz", ""];

/// What can go wrong reading an apt repository.
#[derive(Debug, thiserror::Error)]
pub enum AptError {
    #[error("line {line}: {reason}")]
    Syntax { line: usize, reason: String },
    #[error("Release: {reason}")]
    BadRelease { reason: String },
    #[error("package {package}: no {field} field")]
    MissingField {
        package: String,
        field: &'static str,
    },
    #[error("package {package}: field {field} has an invalid value {value:?}")]
    BadField {
        package: String,
        field: &'static str,
        value: String,
    },
    #[error("parsing {url}")]
    Parse {
        url: String,
        #[source]
        source: Box<AptError>,
    },
    #[error("{url} is not UTF-8 text")]
    NotUtf8 { url: String },
    #[error("{release_url} lists none of {path}.xz, {path}.gz, {path} (wrong component or architecture?)")]
    NoIndex { release_url: String, path: String },
    #[error("{url} is {actual} bytes, but Release says {expected}")]
    IndexSize {
        url: String,
        expected: u64,
        actual: u64,
    },
    #[error("{url} has sha256 {actual}, but Release says {expected}")]
    IndexHash {
        url: String,
        expected: String,
        actual: String,
    },
    #[error("decompressing {url}")]
    Decompress {
        url: String,
        #[source]
        source: io::Error,
    },
    #[error("{url} decompresses to more than {limit} bytes")]
    IndexTooLarge { url: String, limit: u64 },
    #[error("building the HTTP client")]
    Client(#[source] reqwest::Error),
    #[error("GET {url}")]
    Transport {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("GET {url}: HTTP {status}{}", http::reason_suffix(*.status))]
    Status { url: String, status: u16 },
    #[error("GET {url}: reading the response body")]
    Body {
        url: String,
        #[source]
        source: io::Error,
    },
    #[error("GET {url}: the body is longer than the {limit} bytes expected")]
    TooLong { url: String, limit: u64 },
    #[error("GET {url}: giving up after {attempts} attempts")]
    GaveUp {
        url: String,
        attempts: u32,
        #[source]
        source: Box<AptError>,
    },
    #[error(
        "{package} {version} is no longer served by {url} (HTTP 404): the lock pins a version \
         the repository has dropped; re-lock with `image-builder lock`"
    )]
    NoLongerServed {
        package: String,
        version: String,
        url: String,
    },
    #[error("{package}: downloaded {actual} bytes from {url}, expected {expected}")]
    SizeMismatch {
        package: String,
        url: String,
        expected: u64,
        actual: u64,
    },
    #[error("{package}: sha256 of {url} is {actual}, expected {expected}")]
    HashMismatch {
        package: String,
        url: String,
        expected: String,
        actual: String,
    },
    #[error("{action} {}", .path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// One component and architecture of a suite of an HTTP apt repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AptRepo {
    /// `http://deb.debian.org/debian`, without a trailing `/`.
    pub base_url: String,
    /// `bookworm`, `bookworm-updates`, ...: the directory under `dists/`.
    pub suite: String,
    /// `main`, `contrib`, ...
    pub component: String,
    /// Debian architecture: `amd64`, `arm64`, ...
    pub arch: String,
}

impl AptRepo {
    /// Describes a repository; does no IO.
    pub fn new(base_url: &str, suite: &str, component: &str, arch: &str) -> Self {
        Self {
            base_url: base_url.trim_end_matches('/').to_owned(),
            suite: suite.to_owned(),
            component: component.to_owned(),
            arch: arch.to_owned(),
        }
    }

    /// URL of `path` under `dists/<suite>/`.
    pub fn dist_url(&self, path: &str) -> String {
        format!("{}/dists/{}/{}", self.base_url, self.suite, path)
    }

    /// URL of a candidate's `.deb`: `<base>/<Filename>`.
    pub fn deb_url(&self, cand: &Candidate) -> String {
        format!(
            "{}/{}",
            self.base_url,
            cand.filename.trim_start_matches('/')
        )
    }

    /// Every package of `Packages` for this component and architecture.
    ///
    /// Takes the first of `Packages.xz`, `.gz`, plain that Release lists (the next one if the
    /// server answers 404), and checks its size and sha256 against Release before
    /// decompressing it.
    ///
    /// Release's own GPG signature is not checked: every `.deb` the build uses is pinned by
    /// sha256 in the lockfile, and [`AptRepo::fetch_deb`] checks that hash, so integrity comes
    /// from the lock, not from the repository. An unsigned index can at worst offer wrong
    /// candidates to `image-builder lock`, whose result is reviewed like any other change.
    pub fn index(&self, client: &HttpClient) -> Result<Vec<Candidate>, AptError> {
        Ok(self
            .packages(client)?
            .into_iter()
            .map(|entry| entry.candidate)
            .collect())
    }

    /// Like [`AptRepo::index`], with the relationship fields of each package
    /// ([`crate::source::RESOLVER_FIELDS`]) for the dependency resolver.
    pub fn packages(&self, client: &HttpClient) -> Result<Vec<IndexEntry>, AptError> {
        let release_url = self.dist_url("Release");
        let text = utf8(
            &release_url,
            client.get_bytes(&release_url, MAX_RELEASE_BYTES)?,
        )?;
        let release = parse_release(&text).map_err(|e| parse_error(&release_url, e))?;
        let stem = format!("{}/binary-{}/Packages", self.component, self.arch);
        let mut result = Err(AptError::NoIndex {
            release_url,
            path: stem.clone(),
        });
        for suffix in INDEX_SUFFIXES {
            let path = format!("{stem}{suffix}");
            let Some((size, sha256)) = release.sha256.get(&path) else {
                continue;
            };
            result = self.fetch_index(client, &path, *size, sha256);
            if !matches!(result, Err(AptError::Status { status: 404, .. })) {
                break;
            }
        }
        result
    }

    /// Fetches one index file, checks it against Release's `size` and `sha256`, parses it.
    fn fetch_index(
        &self,
        client: &HttpClient,
        path: &str,
        size: u64,
        sha256: &str,
    ) -> Result<Vec<IndexEntry>, AptError> {
        let url = self.dist_url(path);
        let bytes = client.get_bytes(&url, size)?;
        if bytes.len() as u64 != size {
            return Err(AptError::IndexSize {
                url,
                expected: size,
                actual: bytes.len() as u64,
            });
        }
        let actual = hex::encode(Sha256::digest(&bytes));
        if actual != sha256 {
            return Err(AptError::IndexHash {
                url,
                expected: sha256.to_owned(),
                actual,
            });
        }
        let text = utf8(&url, decompress(&url, path, &bytes)?)?;
        parse_stanzas(&text)
            .and_then(|stanzas| index_entries(&stanzas))
            .map_err(|e| parse_error(&url, e))
    }

    /// The candidate's `.deb` in the content-addressed cache `cache_dir/sha256/<hex>.deb`,
    /// downloaded first unless already there.
    ///
    /// A cached file is re-hashed before use (and replaced if it does not match). A download
    /// streams into a temporary file in the same directory while hashing, with a progress bar
    /// on stderr when `progress` (hidden when stderr is not a terminal); it stops as soon as
    /// the body passes `cand.size`, and enters the cache (by an atomic rename) only once size
    /// and sha256 match. A 404 means the pinned version left the repository:
    /// [`AptError::NoLongerServed`].
    pub fn fetch_deb(
        &self,
        client: &HttpClient,
        cand: &Candidate,
        cache_dir: &Path,
        progress: bool,
    ) -> Result<PathBuf, AptError> {
        check_sha256_syntax(cand)?;
        let dir = cache_dir.join("sha256");
        let path = dir.join(format!("{}.deb", cand.sha256));
        if is_cached(&path, cand)? {
            return Ok(path);
        }
        fs::create_dir_all(&dir).map_err(|source| io_error("creating", &dir, source))?;
        let url = self.deb_url(cand);
        let mut part = PartFile::create(&dir, &cand.sha256)?;
        let bar = progress_bar(cand, progress);
        let result = client.get_with(&url, |response| {
            part.rewind()?;
            bar.set_position(0);
            let mut hasher = Sha256::new();
            let limit = cand.size;
            let len = http::read_body(&url, response, limit, |chunk| {
                hasher.update(chunk);
                bar.inc(chunk.len() as u64);
                part.write_all(chunk)
            })?;
            Ok((len, hex::encode(hasher.finalize())))
        });
        bar.finish_and_clear();
        let (len, actual) = result.map_err(|e| no_longer_served(e, cand))?;
        check_download(cand, &url, len, actual)?;
        part.persist(&path)?;
        Ok(path)
    }
}

/// The size and hash of a finished download against the candidate's.
fn check_download(cand: &Candidate, url: &str, len: u64, actual: String) -> Result<(), AptError> {
    if len != cand.size {
        return Err(AptError::SizeMismatch {
            package: cand.package.clone(),
            url: url.to_owned(),
            expected: cand.size,
            actual: len,
        });
    }
    if actual != cand.sha256 {
        return Err(AptError::HashMismatch {
            package: cand.package.clone(),
            url: url.to_owned(),
            expected: cand.sha256.clone(),
            actual,
        });
    }
    Ok(())
}

/// The sha256 names a cache file, so it must be exactly 64 lower-case hex digits.
fn check_sha256_syntax(cand: &Candidate) -> Result<(), AptError> {
    if deb822::is_sha256_hex(&cand.sha256) {
        Ok(())
    } else {
        Err(AptError::BadField {
            package: cand.package.clone(),
            field: "SHA256",
            value: cand.sha256.clone(),
        })
    }
}

/// Whether `path` holds the candidate's bytes; a file of the wrong size or hash is removed.
fn is_cached(path: &Path, cand: &Candidate) -> Result<bool, AptError> {
    let meta = match fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(source) => return Err(io_error("reading", path, source)),
    };
    if meta.len() == cand.size && sha256_file(path)? == cand.sha256 {
        return Ok(true);
    }
    fs::remove_file(path)
        .map_err(|source| io_error("removing corrupt cache entry", path, source))?;
    Ok(false)
}

fn sha256_file(path: &Path) -> Result<String, AptError> {
    let mut file = File::open(path).map_err(|source| io_error("opening", path, source))?;
    let mut hasher = Sha256::new();
    io::copy(&mut file, &mut hasher).map_err(|source| io_error("hashing", path, source))?;
    Ok(hex::encode(hasher.finalize()))
}

/// Maps a 404 (or 410) for a `.deb` to the message that tells the operator to re-lock.
fn no_longer_served(err: AptError, cand: &Candidate) -> AptError {
    match err {
        AptError::Status {
            url,
            status: 404 | 410,
        } => AptError::NoLongerServed {
            package: cand.package.clone(),
            version: cand.version.clone(),
            url,
        },
        other => other,
    }
}

fn progress_bar(cand: &Candidate, progress: bool) -> ProgressBar {
    if !progress {
        return ProgressBar::hidden();
    }
    let style = ProgressStyle::with_template(
        "{msg:24!} [{bar:30}] {bytes:>10}/{total_bytes:<10} {bytes_per_sec:>12}",
    )
    .map(|style| style.progress_chars("=> "))
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    let bar = ProgressBar::new(cand.size).with_style(style);
    bar.set_message(cand.package.clone());
    bar
}

/// Decompresses an index file according to the suffix of its `path` (`.xz`, `.gz`, and the
/// `.lz4` and `.zst` apt uses for its own lists), up to [`MAX_INDEX_BYTES`].
fn decompress(url: &str, path: &str, bytes: &[u8]) -> Result<Vec<u8>, AptError> {
    let reader: Box<dyn Read + '_> = if path.ends_with(".xz") {
        Box::new(liblzma::read::XzDecoder::new(bytes))
    } else if path.ends_with(".gz") {
        Box::new(flate2::read::GzDecoder::new(bytes))
    } else if path.ends_with(".lz4") {
        Box::new(lz4_flex::frame::FrameDecoder::new(bytes))
    } else if path.ends_with(".zst") {
        Box::new(zstd::stream::read::Decoder::new(bytes).map_err(|source| {
            AptError::Decompress {
                url: url.to_owned(),
                source,
            }
        })?)
    } else {
        return Ok(bytes.to_vec());
    };
    let mut out = Vec::new();
    reader
        .take(MAX_INDEX_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(|source| AptError::Decompress {
            url: url.to_owned(),
            source,
        })?;
    if out.len() as u64 > MAX_INDEX_BYTES {
        return Err(AptError::IndexTooLarge {
            url: url.to_owned(),
            limit: MAX_INDEX_BYTES,
        });
    }
    Ok(out)
}

fn utf8(url: &str, bytes: Vec<u8>) -> Result<String, AptError> {
    String::from_utf8(bytes).map_err(|_| AptError::NotUtf8 {
        url: url.to_owned(),
    })
}

fn parse_error(url: &str, source: AptError) -> AptError {
    AptError::Parse {
        url: url.to_owned(),
        source: Box::new(source),
    }
}

fn io_error(action: &'static str, path: &Path, source: io::Error) -> AptError {
    AptError::Io {
        action,
        path: path.to_owned(),
        source,
    }
}

/// A download in progress, `<dir>/.<hex>.<pid>-<n>.part`: removed on drop unless persisted.
struct PartFile {
    path: PathBuf,
    file: File,
    persisted: bool,
}

impl PartFile {
    fn create(dir: &Path, sha256: &str) -> Result<Self, AptError> {
        // pid and counter keep concurrent downloads of one package (threads or processes)
        // out of each other's way.
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!(".{sha256}.{}-{n}.part", std::process::id()));
        let file = File::create(&path).map_err(|source| io_error("creating", &path, source))?;
        Ok(Self {
            path,
            file,
            persisted: false,
        })
    }

    /// Empties the file for another attempt.
    fn rewind(&mut self) -> Result<(), AptError> {
        self.file
            .set_len(0)
            .and_then(|()| self.file.seek(SeekFrom::Start(0)).map(drop))
            .map_err(|source| io_error("truncating", &self.path, source))
    }

    fn write_all(&mut self, chunk: &[u8]) -> Result<(), AptError> {
        self.file
            .write_all(chunk)
            .map_err(|source| io_error("writing", &self.path, source))
    }

    /// Flushes the file to disk and renames it to `to`.
    fn persist(mut self, to: &Path) -> Result<(), AptError> {
        self.file
            .sync_all()
            .map_err(|source| io_error("syncing", &self.path, source))?;
        fs::rename(&self.path, to).map_err(|source| io_error("renaming", &self.path, source))?;
        self.persisted = true;
        Ok(())
    }
}

impl Drop for PartFile {
    fn drop(&mut self) {
        if !self.persisted {
            // Best effort: a leftover `.part` file is never mistaken for a cache entry.
            let _ = fs::remove_file(&self.path);
        }
    }
}
