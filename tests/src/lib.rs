//! Shared helpers for the integration tests: where the repository, the built binaries and the
//! package pool are, how to run `image-builder`, and scratch copies of specs.
//!
//! The tests use the real tools: the `image-builder` binary, the Debian packages that `make
//! test` put into `pool/`, QEMU with OVMF. Run them through `make test`, which prepares all of
//! that.

pub mod apt;
pub mod debs;
pub mod etcd;
pub mod http;
pub mod libvirt;
pub mod repo;
pub mod shared;
pub mod vagrant;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sha2::{Digest, Sha256};

pub use shared::{test_images, BuildLock};

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .expect("repository root")
}

/// The `image-builder` binary of the same build profile as this test (`make test` builds
/// `--release`).
pub fn image_builder_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> → target/<profile>/image-builder
    let p = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>")
        .join("image-builder");
    assert!(
        p.exists(),
        "{} is missing: run the tests through `make test`",
        p.display()
    );
    p
}

/// The `update-engine` binary of the same build profile as this test (`make test` builds every
/// binary of the workspace first).
pub fn update_engine_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let p = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>")
        .join("update-engine");
    assert!(
        p.exists(),
        "{} is missing: run the tests through `make test` (or cargo build --release -p update-engine)",
        p.display()
    );
    p
}

/// The pool of pinned Debian packages (`make pool`).
pub fn pool_dir() -> PathBuf {
    let p = repo_root().join("pool");
    assert!(
        p.is_dir(),
        "{} is missing: run the tests through `make test`",
        p.display()
    );
    p
}

/// The `.deb` of package `name` in `pool` (its file name starts with `name_`).
pub fn pool_package(pool: &Path, name: &str) -> PathBuf {
    let prefix = format!("{name}_");
    std::fs::read_dir(pool)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&prefix)
        })
        .unwrap_or_else(|| panic!("{name} in the pool {}", pool.display()))
}

/// `DIR/pool`: a pool of links to every package of the real pool ([`pool_dir`]), so a test can
/// swap or add single files.
pub fn linked_pool(dir: &Path) -> PathBuf {
    let pool = dir.join("pool");
    std::fs::create_dir(&pool).unwrap();
    for e in std::fs::read_dir(pool_dir()).unwrap() {
        let e = e.unwrap();
        std::os::unix::fs::symlink(e.path(), pool.join(e.file_name())).unwrap();
    }
    pool
}

/// The static initramfs /init (`make tools`).
pub fn init_bin() -> PathBuf {
    let p = repo_root().join("target/x86_64-unknown-linux-gnu/release/init");
    assert!(
        p.exists(),
        "{} is missing: run the tests through `make test`",
        p.display()
    );
    p
}

/// Run `image-builder ARGS` in `dir`.
pub fn image_builder(dir: &Path, args: &[&str]) -> Output {
    Command::new(image_builder_bin())
        .args(args)
        .current_dir(dir)
        .output()
        .expect("running image-builder")
}

/// Run `image-builder ARGS` in `dir`, asserting it succeeds; returns its stdout + stderr.
pub fn image_builder_ok(dir: &Path, args: &[&str]) -> String {
    let o = image_builder(dir, args);
    assert!(o.status.success(), "image-builder {args:?}:\n{}", text(&o));
    text(&o)
}

/// stdout + stderr as text.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A scratch workspace: `images/` with a copy of a shipped spec and its lock, `services/`
/// linked to the repository's, so `files:` resolve as in the repository.
pub struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new(spec: &str) -> Scratch {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = repo_root();
        std::fs::create_dir(dir.path().join("images")).unwrap();
        std::os::unix::fs::symlink(root.join("services"), dir.path().join("services")).unwrap();
        for ext in ["yaml", "lock", "user-data"] {
            let from = root.join(format!("images/{spec}.{ext}"));
            if ext == "user-data" && !from.exists() {
                continue;
            }
            std::fs::copy(&from, dir.path().join(format!("images/{spec}.{ext}"))).unwrap();
        }
        Scratch { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Links the repository's `target/` into the scratch directory, for specs that name
    /// `make tools` builds (`update.engine: target/...`) relative to the workspace.
    pub fn link_target(&self) {
        std::os::unix::fs::symlink(repo_root().join("target"), self.path().join("target")).unwrap();
    }

    pub fn spec(&self, name: &str) -> PathBuf {
        self.path().join(format!("images/{name}.yaml"))
    }

    /// Replace text in a spec (asserting the old text is there).
    pub fn edit_spec(&self, name: &str, from: &str, to: &str) {
        let p = self.spec(name);
        let s = std::fs::read_to_string(&p).unwrap();
        assert!(s.contains(from), "{from:?} not in {}", p.display());
        std::fs::write(&p, s.replacen(from, to, 1)).unwrap();
    }

    /// `image-builder lock` of a spec from `pool`.
    pub fn lock(&self, name: &str, pool: &Path) -> Output {
        let spec = self.spec(name);
        image_builder(
            self.path(),
            &[
                "lock",
                spec.to_str().unwrap(),
                "--pool",
                pool.to_str().unwrap(),
            ],
        )
    }

    /// `image-builder build` of a spec from the pool into `out` (relative to the scratch dir).
    pub fn build(&self, name: &str, out: &str, pool: &Path) -> Output {
        build_spec(self.path(), &self.spec(name), Path::new(out), pool)
    }
}

/// `image-builder build SPEC --out OUT --pool POOL --init <the static /init>`, run in `dir`.
pub fn build_spec(dir: &Path, spec: &Path, out: &Path, pool: &Path) -> Output {
    image_builder(
        dir,
        &[
            "build",
            spec.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--pool",
            pool.to_str().unwrap(),
            "--init",
            init_bin().to_str().unwrap(),
        ],
    )
}

/// The partition labelled `label` in a build.json's layout (asserted present).
pub fn partition<'a>(report: &'a serde_json::Value, label: &str) -> &'a serde_json::Value {
    report["layout"]["partitions"]
        .as_array()
        .expect("build.json lists the layout's partitions")
        .iter()
        .find(|p| p["label"] == label)
        .unwrap_or_else(|| panic!("no {label} partition in build.json"))
}

/// A free loopback port (bound, then released for the caller to use).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// sha256 of a file, hex.
pub fn sha256_file(path: &Path) -> String {
    let mut f = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h).unwrap();
    hex::encode(h.finalize())
}

/// Assert a command failed with one clear error and no panic.
pub fn assert_clean_failure(o: &Output, want: &str) {
    let t = text(o);
    assert!(!o.status.success(), "expected failure, got success:\n{t}");
    assert!(!t.contains("panicked"), "panic instead of an error:\n{t}");
    assert!(t.contains("error: "), "no `error:` line:\n{t}");
    assert!(t.contains(want), "error does not mention {want:?}:\n{t}");
}

/// A workspace under `target/test-images/<variant>/src` holding a shipped spec with `from`
/// replaced by `to` (asserted present), its lock, and `services/` and `target/` linked to the
/// repository's.
/// The spec is rewritten only when it changed, so an unchanged build is still skipped.
/// Returns the spec's path; builds go to `target/test-images/<variant>/out`. Call it with the
/// variant's [`BuildLock`] held: other test processes write the same files.
pub fn variant_spec(spec: &str, variant: &str, from: &str, to: &str) -> PathBuf {
    let src = test_images().join(variant).join("src");
    std::fs::create_dir_all(src.join("images")).unwrap();
    // The spec's files: services/, and the programs `make tools` built under target/.
    for dir in ["services", "target"] {
        let link = src.join(dir);
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(repo_root().join(dir), &link).unwrap();
        }
    }
    // The other files of images/ (the cluster's user-data).
    for e in std::fs::read_dir(repo_root().join("images")).unwrap() {
        let e = e.unwrap();
        let link = src.join("images").join(e.file_name());
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".yaml")
            && !name.ends_with(".lock")
            && std::fs::symlink_metadata(&link).is_err()
        {
            std::os::unix::fs::symlink(e.path(), &link).unwrap();
        }
    }
    let text = std::fs::read_to_string(repo_root().join(format!("images/{spec}.yaml"))).unwrap();
    assert!(
        text.contains(from),
        "images/{spec}.yaml no longer says {from:?}"
    );
    let text = text.replacen(from, to, 1);
    let spec_path = src.join(format!("images/{spec}.yaml"));
    if std::fs::read_to_string(&spec_path).ok().as_deref() != Some(text.as_str()) {
        std::fs::write(&spec_path, text).unwrap();
    }
    let lock = std::fs::read(repo_root().join(format!("images/{spec}.lock"))).unwrap();
    let lock_path = src.join(format!("images/{spec}.lock"));
    if std::fs::read(&lock_path).ok() != Some(lock.clone()) {
        std::fs::write(&lock_path, lock).unwrap();
    }
    spec_path
}

/// A build of a shipped spec shared by every test of the run, whatever its binary, kept under
/// `target/test-images/<spec>` so repeated runs reuse it (an unchanged build is skipped).
/// Returns the output directory.
pub fn shared_build(spec: &str) -> PathBuf {
    let out = test_images().join(spec);
    let _lock = BuildLock::acquire(&out);
    let spec_path = repo_root().join(format!("images/{spec}.yaml"));
    let o = build_spec(&repo_root(), &spec_path, &out, &pool_dir());
    assert!(o.status.success(), "build of {spec} failed:\n{}", text(&o));
    out
}

/// A build of `spec` with `from` replaced by `to` ([`variant_spec`]), shared like
/// [`shared_build`] under `target/test-images/<variant>`; returns its output directory.
pub fn shared_variant_build(spec: &str, variant: &str, from: &str, to: &str) -> PathBuf {
    let dir = test_images().join(variant);
    let _lock = BuildLock::acquire(&dir);
    let spec_path = variant_spec(spec, variant, from, to);
    let out = dir.join("out");
    let o = build_spec(&dir.join("src"), &spec_path, &out, &pool_dir());
    assert!(
        o.status.success(),
        "build of {variant} failed:\n{}",
        text(&o)
    );
    out
}
