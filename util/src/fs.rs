//! Files that appear whole or not at all: written to a temporary file in the same directory,
//! synced, renamed over the target, and the directory synced, so a crash or a failure leaves
//! the old file or the new one, never a part, and no temporary file behind.

use std::fs::{File, Permissions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

/// The mode of files written here unless told otherwise: readable by all (outputs, state and
/// status hold no secrets; secrets ask for their mode).
pub const DEFAULT_MODE: u32 = 0o644;
/// Writes through [`AtomicFile`] go through a 1 MiB buffer.
const BUFFER: usize = 1 << 20;

/// How [`write_atomic_with`] creates the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Permission bits, whatever the umask.
    pub mode: u32,
    /// Owner and group to give the file (`None`: the writer's).
    pub owner: (Option<u32>, Option<u32>),
}

impl Default for Options {
    fn default() -> Options {
        Options {
            mode: DEFAULT_MODE,
            owner: (None, None),
        }
    }
}

/// Write `bytes` to `path` atomically, mode 0644. The directory must exist.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic_with(path, bytes, &Options::default())
}

/// Write `bytes` to `path` atomically with the given mode and owner. The directory must exist.
pub fn write_atomic_with(path: &Path, bytes: &[u8], opts: &Options) -> io::Result<()> {
    let mut f = AtomicFile::with_mode(path, opts.mode)?;
    f.writer().write_all(bytes)?;
    if opts.owner != (None, None) {
        std::os::unix::fs::fchown(f.writer().get_ref().as_file(), opts.owner.0, opts.owner.1)?;
    }
    f.commit()
}

/// The directory a file is written in (`.` for a bare file name).
pub fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// fsync a directory, so a rename in it survives a crash.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// A file being written at `path`, invisible there until [`AtomicFile::commit`]. Dropped
/// without a commit, it leaves nothing behind.
#[derive(Debug)]
pub struct AtomicFile {
    path: PathBuf,
    writer: BufWriter<NamedTempFile>,
}

impl AtomicFile {
    /// Start writing `path`, mode 0644.
    pub fn create(path: &Path) -> io::Result<AtomicFile> {
        AtomicFile::with_mode(path, DEFAULT_MODE)
    }

    /// Start writing `path` with `mode`, whatever the umask.
    pub fn with_mode(path: &Path, mode: u32) -> io::Result<AtomicFile> {
        let tmp = tempfile::Builder::new()
            .prefix(".partial-")
            .permissions(Permissions::from_mode(mode))
            .tempfile_in(parent(path))?;
        // The umask may have cleared bits: set them exactly.
        tmp.as_file()
            .set_permissions(Permissions::from_mode(mode))?;
        Ok(AtomicFile {
            path: path.to_path_buf(),
            writer: BufWriter::with_capacity(BUFFER, tmp),
        })
    }

    /// The buffered writer (`Write + Seek`) over the temporary file.
    pub fn writer(&mut self) -> &mut BufWriter<NamedTempFile> {
        &mut self.writer
    }

    /// Flush, sync, rename into place and sync the directory.
    pub fn commit(self) -> io::Result<()> {
        let tmp = self.writer.into_inner().map_err(|e| e.into_error())?;
        tmp.as_file().sync_all()?;
        tmp.persist(&self.path).map_err(|e| e.error)?;
        sync_dir(parent(&self.path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn appears_only_on_commit() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.img");
        let mut f = AtomicFile::create(&p).unwrap();
        f.writer().write_all(b"abc").unwrap();
        assert!(!p.exists());
        f.commit().unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"abc");

        let mut f = AtomicFile::create(&p).unwrap();
        f.writer().write_all(b"partial").unwrap();
        drop(f);
        assert_eq!(std::fs::read(&p).unwrap(), b"abc");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "temporary left behind"
        );
    }

    #[test]
    fn mode_whatever_the_umask() {
        let dir = tempfile::tempdir().unwrap();
        let old = unsafe { libc::umask(0o077) };
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        let r = write_atomic(&a, b"x").and_then(|()| {
            write_atomic_with(
                &b,
                b"y",
                &Options {
                    mode: 0o600,
                    owner: (None, None),
                },
            )
        });
        unsafe { libc::umask(old) };
        r.unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().mode() & 0o7777;
        assert_eq!(mode(&a), 0o644);
        assert_eq!(mode(&b), 0o600);
        assert_eq!(std::fs::read(&b).unwrap(), b"y");
    }

    #[test]
    fn missing_directory_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = write_atomic(&dir.path().join("no/such/file"), b"x").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }
}
