//! Builds that several test processes share: one build of each shipped spec (and of each
//! variant a test file needs) under `target/test-images/`, made by whichever test process comes
//! first and reused by every other test of every binary.
//!
//! The test runner (`make test`: cargo-nextest) runs each test in a process of its own and two
//! at a time, so an in-process `Mutex` no longer orders the builds. A [`BuildLock`] is an
//! exclusive `flock(2)` on a lock file next to the build directory: the second process waits
//! for the first build to finish instead of building into the same directory at the same time.
//! The kernel drops the lock when its holder exits, also when a test panics or is killed.
//!
//! A build that must be made afresh once per run (a `--force` build: the artifact writers are
//! code the builder's skip-if-unchanged digest does not cover) records the run's id next to
//! it ([`BuildLock::made_in_this_run`]): nextest gives every process of one run the same
//! `NEXTEST_RUN_ID`; under plain `cargo test` the run is the test process.

use std::fs::File;
use std::io;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Where the shared builds live: `target/test-images/`.
pub fn test_images() -> PathBuf {
    crate::repo_root().join("target/test-images")
}

/// An exclusive lock on a build directory, held until dropped.
#[derive(Debug)]
pub struct BuildLock {
    _file: File,
    /// The file that names the run which last made the build.
    stamp: PathBuf,
}

impl BuildLock {
    /// Waits for, and takes, the lock of the build directory `dir` (the lock file is
    /// `<dir>.lock`, beside it, so nothing is added to the directory the tests read).
    pub fn acquire(dir: &Path) -> BuildLock {
        let name = dir.file_name().expect("a build directory name");
        let parent = dir.parent().expect("a build directory's parent");
        std::fs::create_dir_all(parent)
            .unwrap_or_else(|e| panic!("creating {}: {e}", parent.display()));
        let lock_path = parent.join(format!("{}.lock", name.to_string_lossy()));
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .unwrap_or_else(|e| panic!("opening {}: {e}", lock_path.display()));
        flock(&file, libc::LOCK_EX)
            .unwrap_or_else(|e| panic!("locking {}: {e}", lock_path.display()));
        BuildLock {
            _file: file,
            stamp: parent.join(format!("{}.run", name.to_string_lossy())),
        }
    }

    /// Whether a process of this test run already made the build (and said so with
    /// [`BuildLock::mark_made_in_this_run`]).
    pub fn made_in_this_run(&self) -> bool {
        std::fs::read_to_string(&self.stamp).is_ok_and(|id| id == run_id())
    }

    /// Records that this test run made the build.
    pub fn mark_made_in_this_run(&self) {
        std::fs::write(&self.stamp, run_id())
            .unwrap_or_else(|e| panic!("writing {}: {e}", self.stamp.display()));
    }
}

/// `flock(2)` on `file`, retried when a signal interrupts the wait.
pub(crate) fn flock(file: &File, op: libc::c_int) -> io::Result<()> {
    loop {
        // SAFETY: flock on a descriptor owned by a live `File`; it does not touch memory.
        if unsafe { libc::flock(file.as_raw_fd(), op) } == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// The id of this test run: nextest's `NEXTEST_RUN_ID` (the same in every test process of a
/// run), else one made up once per process (`cargo test` runs a binary's tests in one process).
pub fn run_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| match std::env::var("NEXTEST_RUN_ID") {
        Ok(id) if !id.is_empty() => id,
        _ => {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default();
            format!("process-{}-{nanos}", std::process::id())
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn a_second_holder_waits_for_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let build = dir.path().join("spec");
        let first = BuildLock::acquire(&build);
        assert!(dir.path().join("spec.lock").exists());
        assert!(
            !build.exists(),
            "the lock adds nothing inside the build directory"
        );
        let waited = std::thread::scope(|s| {
            let second = s.spawn(|| {
                let start = Instant::now();
                // A lock of its own (another open file description), as another process has.
                let _second = BuildLock::acquire(&build);
                start.elapsed()
            });
            std::thread::sleep(Duration::from_millis(300));
            drop(first);
            second.join().unwrap()
        });
        assert!(waited >= Duration::from_millis(250), "waited {waited:?}");
    }

    #[test]
    fn made_in_this_run_only_after_marking() {
        let dir = tempfile::tempdir().unwrap();
        let build = dir.path().join("spec");
        let lock = BuildLock::acquire(&build);
        assert!(!lock.made_in_this_run());
        std::fs::write(dir.path().join("spec.run"), "an earlier run").unwrap();
        assert!(!lock.made_in_this_run());
        lock.mark_made_in_this_run();
        assert!(lock.made_in_this_run());
        drop(lock);
        assert!(BuildLock::acquire(&build).made_in_this_run());
    }
}
