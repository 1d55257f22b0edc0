//! A local pool: a directory of `.deb` files, indexed by reading each one.
//!
//! [`scan`] yields one [`Candidate`] per `*.deb` directly in the directory, sorted by file
//! name so the result is deterministic; [`scan_index`] also keeps the relationship fields of
//! each control file, so the pool can serve as the dependency resolver's index. Each file is
//! streamed once: the sha256 and size are computed over the same bytes the control paragraph
//! is read from, so large packages (the kernel) are never held in memory.

use std::fs::{self, File};
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::deb::{self, DebError};
use crate::source::{Candidate, IndexEntry};

/// Why a pool directory could not be indexed; every variant names the directory or file.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    #[error("listing pool directory {}: {error}", dir.display())]
    ReadDir { dir: PathBuf, error: io::Error },
    #[error("pool file name {name:?} in {} is not UTF-8", dir.display())]
    NonUtf8Name { dir: PathBuf, name: String },
    #[error("reading pool file {}: {error}", path.display())]
    Io { path: PathBuf, error: io::Error },
    /// The package's own error, labelled with the file's path.
    #[error("{error}")]
    Deb { path: PathBuf, error: Box<DebError> },
}

/// Index every `*.deb` file directly in `dir` (symlinks to files count; subdirectories are
/// not searched), sorted by file name.
pub fn scan(dir: &Path) -> Result<Vec<Candidate>, PoolError> {
    Ok(scan_index(dir)?
        .into_iter()
        .map(|entry| entry.candidate)
        .collect())
}

/// Like [`scan`], with the fields of each control file the resolver reads
/// ([`crate::source::RESOLVER_FIELDS`]).
pub fn scan_index(dir: &Path) -> Result<Vec<IndexEntry>, PoolError> {
    deb_files(dir)?
        .into_iter()
        .map(|(name, path)| entry(&path, name))
        .collect()
}

/// `(file name, path)` of each `*.deb` file in `dir`, sorted by name.
fn deb_files(dir: &Path) -> Result<Vec<(String, PathBuf)>, PoolError> {
    let read_dir_err = |error| PoolError::ReadDir {
        dir: dir.to_path_buf(),
        error,
    };
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).map_err(read_dir_err)? {
        let entry = entry.map_err(read_dir_err)?;
        let path = entry.path();
        let os_name = entry.file_name();
        let Some(name) = os_name.to_str() else {
            if os_name.as_encoded_bytes().ends_with(b".deb") {
                let name = os_name.to_string_lossy().into_owned();
                return Err(PoolError::NonUtf8Name {
                    dir: dir.to_path_buf(),
                    name,
                });
            }
            continue;
        };
        if !name.ends_with(".deb") {
            continue;
        }
        let meta = fs::metadata(&path).map_err(|error| PoolError::Io {
            path: path.clone(),
            error,
        })?;
        if meta.is_file() {
            files.push((name.to_string(), path));
        }
    }
    files.sort();
    Ok(files)
}

/// Read one `.deb`: control paragraph, size and sha256 in a single pass.
fn entry(path: &Path, filename: String) -> Result<IndexEntry, PoolError> {
    let io_err = |error| PoolError::Io {
        path: path.to_path_buf(),
        error,
    };
    let file = File::open(path).map_err(io_err)?;
    let mut reader = HashingReader::new(BufReader::new(file));
    let label = path.display().to_string();
    let control = deb::read_control_from(&mut reader, &label).map_err(|error| PoolError::Deb {
        path: path.to_path_buf(),
        error: Box::new(error),
    })?;
    io::copy(&mut reader, &mut io::sink()).map_err(io_err)?;
    let (size, sha256) = reader.finish();
    let candidate = Candidate {
        package: control.package,
        version: control.version,
        architecture: control.architecture,
        size,
        sha256,
        filename,
    };
    Ok(IndexEntry::new(candidate, &control.fields))
}

/// Counts and hashes every byte read through it.
struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    bytes: u64,
}

impl<R: Read> HashingReader<R> {
    fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    /// Bytes read and their lower-case hex sha256.
    fn finish(self) -> (u64, String) {
        (self.bytes, hex::encode(self.hasher.finalize()))
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deb::test_support::{build_deb, Compress, Item};

    fn deb(package: &str, version: &str) -> Vec<u8> {
        let control = format!("Package: {package}\nVersion: {version}\nArchitecture: amd64\n");
        build_deb(
            &control,
            &[Item::dir("./usr/"), Item::file("./usr/x", b"x")],
            Compress::Xz,
        )
    }

    fn sha256(data: &[u8]) -> String {
        hex::encode(Sha256::digest(data))
    }

    #[test]
    fn scans_sorted_with_size_and_hash() {
        let dir = tempfile::tempdir().unwrap();
        let b = deb("beta", "1:2.0-1");
        let a = deb("alpha", "1.0~rc1");
        fs::write(dir.path().join("b_2.0-1_amd64.deb"), &b).unwrap();
        fs::write(dir.path().join("a_1.0_amd64.deb"), &a).unwrap();
        fs::write(dir.path().join("README"), b"not a package").unwrap();
        fs::create_dir(dir.path().join("sub.deb")).unwrap();
        fs::write(dir.path().join("sub.deb/c.deb"), deb("gamma", "1")).unwrap();

        let got = scan(dir.path()).unwrap();
        let want = vec![
            Candidate {
                package: "alpha".into(),
                version: "1.0~rc1".into(),
                architecture: "amd64".into(),
                size: a.len() as u64,
                sha256: sha256(&a),
                filename: "a_1.0_amd64.deb".into(),
            },
            Candidate {
                package: "beta".into(),
                version: "1:2.0-1".into(),
                architecture: "amd64".into(),
                size: b.len() as u64,
                sha256: sha256(&b),
                filename: "b_2.0-1_amd64.deb".into(),
            },
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn scan_index_keeps_relationship_fields() {
        let dir = tempfile::tempdir().unwrap();
        let control = "Package: alpha\nVersion: 1.0\nArchitecture: all\n\
            Depends: libc6 (>= 2.34),\n beta | gamma\nProvides: alpha-api (= 1)\n\
            Description: x\n";
        let bytes = build_deb(control, &[Item::dir("./usr/")], Compress::Gz);
        fs::write(dir.path().join("alpha_1.0_all.deb"), &bytes).unwrap();
        let got = scan_index(dir.path()).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].candidate.sha256, sha256(&bytes));
        assert_eq!(
            got[0].field("Depends"),
            Some("libc6 (>= 2.34),\n beta | gamma")
        );
        assert_eq!(got[0].field("Provides"), Some("alpha-api (= 1)"));
        assert_eq!(got[0].fields.len(), 2);
    }

    #[test]
    fn empty_dir_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(scan(dir.path()).unwrap(), vec![]);
    }

    #[test]
    fn missing_dir_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let err = scan(&missing).unwrap_err();
        assert!(matches!(err, PoolError::ReadDir { .. }), "{err}");
        assert!(err.to_string().contains("nope"), "{err}");
    }

    #[test]
    fn broken_debs_name_the_file() {
        let good = deb("alpha", "1.0");
        let cases: &[(&str, Vec<u8>)] = &[
            ("truncated.deb", good[..good.len() / 2].to_vec()),
            ("text.deb", b"hello".to_vec()),
            ("empty.deb", Vec::new()),
        ];
        for (name, bytes) in cases {
            let dir = tempfile::tempdir().unwrap();
            fs::write(dir.path().join("ok.deb"), &good).unwrap();
            fs::write(dir.path().join(name), bytes).unwrap();
            let err = scan(dir.path()).unwrap_err();
            assert!(matches!(err, PoolError::Deb { .. }), "{name}: {err}");
            assert!(err.to_string().contains(name), "{name}: {err}");
        }
    }
}
