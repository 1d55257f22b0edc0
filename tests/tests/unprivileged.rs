//! `image-builder build` as an ordinary user (no root, no fakeroot, no user namespace: uid and
//! gid 65534 with no capabilities, through `setpriv`) gives the same bytes as root's build, and
//! a build that lacks a permission says which path and which operation.
//!
//! Everything the unprivileged build reads (the builder, `/init`, the spec, its files and the
//! locked packages) is copied into a directory it owns, so the test does not depend on where
//! the repository is checked out.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tests::{image_builder_bin, init_bin, pool_dir, repo_root, shared_build, text};

const NOBODY: u32 = 65534;

/// A directory tree owned by the unprivileged user, holding a copy of what the minimal image
/// is built from.
struct Workspace {
    dir: tempfile::TempDir,
}

impl Workspace {
    fn new() -> Workspace {
        // SAFETY: geteuid has no preconditions.
        assert_eq!(
            unsafe { libc::geteuid() },
            0,
            "this test switches to an unprivileged user: run it as root (make test)"
        );
        let dir = tempfile::Builder::new()
            .prefix("unprivileged-")
            .tempdir_in("/tmp")
            .unwrap();
        let root = repo_root();
        let w = Workspace { dir };
        for rel in ["images/minimal.yaml", "images/minimal.lock"] {
            w.copy(&root.join(rel), rel);
        }
        for entry in std::fs::read_dir(root.join("services/minimal")).unwrap() {
            let p = entry.unwrap().path();
            let rel = format!(
                "services/minimal/{}",
                p.file_name().unwrap().to_str().unwrap()
            );
            w.copy(&p, &rel);
        }
        let lock: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(root.join("images/minimal.lock")).unwrap(),
        )
        .unwrap();
        for p in lock["packages"].as_array().unwrap() {
            let name = p["filename"].as_str().unwrap();
            w.copy(&pool_dir().join(name), &format!("pool/{name}"));
        }
        w.copy(&image_builder_bin(), "bin/image-builder");
        w.copy(&init_bin(), "bin/init");
        chown_tree(w.path(), NOBODY);
        w
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn copy(&self, from: &Path, rel: &str) {
        let to = self.path().join(rel);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(from, &to).unwrap_or_else(|e| panic!("{}: {e}", from.display()));
    }

    /// `image-builder build` of the minimal image into `out`, as uid/gid 65534 without
    /// capabilities, with an empty environment but PATH.
    fn build_as_nobody(&self, out: &Path) -> Output {
        let w = self.path();
        let o = Command::new("setpriv")
            .args([
                &format!("--reuid={NOBODY}"),
                &format!("--regid={NOBODY}"),
                "--clear-groups",
                "--inh-caps=-all",
                "--bounding-set=-all",
                "--no-new-privs",
                "--",
            ])
            .arg(w.join("bin/image-builder"))
            .arg("build")
            .arg(w.join("images/minimal.yaml"))
            .arg("--out")
            .arg(out)
            .arg("--pool")
            .arg(w.join("pool"))
            .arg("--init")
            .arg(w.join("bin/init"))
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .current_dir(w)
            .output()
            .expect("running setpriv (util-linux)");
        o
    }
}

fn chown_tree(path: &Path, uid: u32) {
    std::os::unix::fs::lchown(path, Some(uid), Some(uid)).unwrap();
    if path.is_dir() && !path.is_symlink() {
        for e in std::fs::read_dir(path).unwrap() {
            chown_tree(&e.unwrap().path(), uid);
        }
    }
}

fn build_json(out: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("build.json")).unwrap()).unwrap()
}

#[test]
fn unprivileged_build_gives_roots_bytes() {
    let root_out = shared_build("minimal");
    let w = Workspace::new();
    let out = w.path().join("out");
    let o = w.build_as_nobody(&out);
    assert!(
        o.status.success(),
        "unprivileged build failed:\n{}",
        text(&o)
    );
    let (theirs, ours) = (build_json(&root_out), build_json(&out));
    for key in ["artifacts", "intermediates", "input_digest"] {
        assert_eq!(ours[key], theirs[key], "{key} differ from root's build");
    }
    // What the report says is what the files hold, and the user owns them.
    let disk = out.join("disk.raw");
    assert_eq!(
        tests::sha256_file(&disk),
        theirs["artifacts"]["disk.raw"]["sha256"].as_str().unwrap()
    );
    let meta = std::fs::metadata(&disk).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), NOBODY);
}

#[test]
fn missing_permission_names_path_and_operation() {
    let w = Workspace::new();
    // A directory the user may read but not write.
    let locked: PathBuf = w.path().join("readonly");
    std::fs::create_dir(&locked).unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).unwrap();
    let out = locked.join("out");
    let o = w.build_as_nobody(&out);
    let t = text(&o);
    assert!(
        !o.status.success(),
        "build into a read-only directory succeeded:\n{t}"
    );
    assert!(!t.contains("panicked"), "{t}");
    assert!(
        t.contains(&format!("error: creating {}", out.display())),
        "no path and operation:\n{t}"
    );
    assert!(t.contains("Permission denied"), "{t}");
    assert!(!out.exists());
}
