//! What the disk-format writers share: `ova`'s streamOptimized VMDK (SPECS.md S8), `vagrant`'s
//! qcow2 and `ami`'s fixed VHD (S9) each convert a [`RawDisk`] and report failures as one
//! [`Error`] type, compress on one [`Pool`], and write their files through [`write_file`]
//! (a temporary file renamed into place, [`util::fs::AtomicFile`]).
//!
//! What their tests and examples share is the `diskfmt-testing` crate's.

use std::fmt;
use std::fs::File;
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;
use util::fs::AtomicFile;

pub mod pool;
pub mod raw;

pub use pool::Pool;
pub use raw::{is_zero, RawDisk};

/// The disk formats written here, as their errors name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Vmdk,
    Qcow2,
    Vhd,
}

impl Format {
    /// What a unit of compression is called in the format (for [`Error::Compress`]).
    fn unit(self) -> &'static str {
        match self {
            Format::Vmdk => "grain",
            Format::Qcow2 => "cluster",
            Format::Vhd => "chunk",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Vmdk => "VMDK",
            Format::Qcow2 => "qcow2 image",
            Format::Vhd => "VHD",
        })
    }
}

/// Why a disk image could not be written.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the raw disk is empty")]
    EmptyDisk,
    #[error("the raw disk is {size} bytes; a {format} holds at most {max} bytes")]
    DiskTooLarge { format: Format, size: u64, max: u64 },
    #[error("the {format} would pass {max} bytes, the most its tables address")]
    FileTooLarge { format: Format, max: u64 },
    #[error("deflate failed on {} {index}", format.unit())]
    Compress { format: Format, index: u64 },
    #[error("starting {threads} compression threads")]
    ThreadPool {
        threads: usize,
        #[source]
        source: rayon::ThreadPoolBuildError,
    },
    #[error("reading the raw disk")]
    Read(#[source] io::Error),
    #[error("writing the {0}")]
    Write(Format, #[source] io::Error),
    #[error("opening {}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("creating {}", path.display())]
    Create {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Any other file operation: `what` names it ("writing", "creating a scratch directory in").
    #[error("{what} {}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// VMDK: the descriptor's extent line cannot hold the name.
    #[error("extent file name {0:?}: want 1 to 255 printable characters, no '\"'")]
    InvalidExtentName(String),
    /// qcow2: more compressed clusters share a host cluster than its refcount counts.
    #[error("host cluster {cluster} is shared by more compressed clusters than a refcount holds")]
    RefcountOverflow { cluster: u64 },
    /// VHD: the footer's timestamp counts seconds from 2000 in 32 bits.
    #[error("source_date_epoch {0} is not between 2000-01-01 and 2136-02-07 (a VHD timestamp)")]
    Timestamp(u64),
}

impl Error {
    /// [`Error::Io`] of `what` on `path`, for `map_err`.
    pub fn io<'p>(what: &'static str, path: &'p Path) -> impl Fn(io::Error) -> Error + 'p {
        move |source| Error::Io {
            what,
            path: path.to_path_buf(),
            source,
        }
    }

    /// [`Error::Write`] of `format`, for `map_err`.
    pub fn writing(format: Format) -> impl FnOnce(io::Error) -> Error {
        move |source| Error::Write(format, source)
    }
}

/// The output file a writer fills: buffered, seekable, renamed into place when complete.
pub type Output = BufWriter<NamedTempFile>;

/// Opens the raw disk file `raw` (its holes mapped, never read) and has `write` convert it
/// into `out`, through a temporary file in the same directory that is synced and renamed into
/// place: `out` is either complete or untouched.
pub fn write_file<T>(
    raw: &Path,
    out: &Path,
    write: impl FnOnce(&mut RawDisk<File>, &mut Output) -> Result<T, Error>,
) -> Result<T, Error> {
    let mut disk = RawDisk::open(raw).map_err(|source| Error::Open {
        path: raw.to_path_buf(),
        source,
    })?;
    let create = |source| Error::Create {
        path: out.to_path_buf(),
        source,
    };
    let mut file = AtomicFile::create(out).map_err(create)?;
    let written = write(&mut disk, file.writer())?;
    file.commit().map_err(create)?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn messages_name_the_format() {
        let cases = [
            (
                Error::DiskTooLarge {
                    format: Format::Vhd,
                    size: 10,
                    max: 5,
                },
                "the raw disk is 10 bytes; a VHD holds at most 5 bytes",
            ),
            (
                Error::Compress {
                    format: Format::Vmdk,
                    index: 7,
                },
                "deflate failed on grain 7",
            ),
            (
                Error::Compress {
                    format: Format::Qcow2,
                    index: 8,
                },
                "deflate failed on cluster 8",
            ),
            (
                Error::Write(Format::Qcow2, io::ErrorKind::Other.into()),
                "writing the qcow2 image",
            ),
        ];
        for (err, want) in cases {
            assert_eq!(err.to_string(), want);
        }
    }

    #[test]
    fn write_file_appears_whole_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("disk.raw");
        std::fs::write(&raw, b"raw bytes").unwrap();
        let out = dir.path().join("disk.img");
        let n = write_file(&raw, &out, |disk, w| {
            w.write_all(b"converted")
                .map_err(|e| Error::Write(Format::Vhd, e))?;
            Ok(disk.size())
        })
        .unwrap();
        assert_eq!(n, 9);
        assert_eq!(std::fs::read(&out).unwrap(), b"converted");

        let err = write_file(&raw, &dir.path().join("failed.img"), |_, w| {
            w.write_all(b"partial").unwrap();
            Err::<(), _>(Error::EmptyDisk)
        })
        .unwrap_err();
        assert!(matches!(err, Error::EmptyDisk));
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "only disk.raw and disk.img: {names:?}");

        let err = write_file(&dir.path().join("missing.raw"), &out, |_, _| Ok(())).unwrap_err();
        assert!(matches!(err, Error::Open { .. }), "{err}");
    }
}
