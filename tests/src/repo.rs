//! A channel repository for the publishing and update tests, made with the real `image-builder
//! keygen`, `init-repo` and `publish`, and served with `image-builder serve`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use crate::{image_builder, image_builder_bin, image_builder_ok};

/// `DIR/keys/root.key` and `DIR/keys/signing.key` (`image-builder keygen`), the repository
/// `DIR/repo` (`init-repo`), and its root keys copied to `DIR/keys/root.json` (what a spec's
/// `update.root_keys` names, relative to a scratch workspace `DIR`).
pub struct ChannelRepo {
    dir: PathBuf,
}

impl ChannelRepo {
    /// Makes the keys and the repository under `dir`.
    pub fn init(dir: &Path) -> ChannelRepo {
        let r = ChannelRepo {
            dir: dir.to_path_buf(),
        };
        std::fs::create_dir_all(dir.join("keys")).unwrap();
        image_builder_ok(dir, &["keygen", &s(&r.root_key())]);
        image_builder_ok(dir, &["keygen", &s(&r.signing_key())]);
        image_builder_ok(
            dir,
            &[
                "init-repo",
                "--repo",
                &s(&r.path()),
                "--root-key",
                &s(&r.root_key()),
                "--signing-key",
                &s(&r.signing_key()),
            ],
        );
        std::fs::copy(r.path().join("root.json"), r.root_json()).unwrap();
        r
    }

    /// The repository.
    pub fn path(&self) -> PathBuf {
        self.dir.join("repo")
    }

    pub fn root_key(&self) -> PathBuf {
        self.dir.join("keys/root.key")
    }

    pub fn signing_key(&self) -> PathBuf {
        self.dir.join("keys/signing.key")
    }

    /// The repository's root keys (a copy of `repo/root.json`).
    pub fn root_json(&self) -> PathBuf {
        self.dir.join("keys/root.json")
    }

    /// `image-builder publish --repo REPO --channel CHANNEL --key KEY EXTRA... BUILD`.
    pub fn publish_with(&self, channel: &str, key: &Path, extra: &[&str], build: &Path) -> Output {
        let (repo, key, build) = (s(&self.path()), s(key), s(build));
        let mut args = vec![
            "publish",
            "--repo",
            &repo,
            "--channel",
            channel,
            "--key",
            &key,
        ];
        args.extend_from_slice(extra);
        args.push(&build);
        image_builder(&self.dir, &args)
    }

    /// Publishes `build` into `channel` with the signing key; returns the output (asserting
    /// success).
    pub fn publish(&self, channel: &str, build: &Path) -> String {
        let o = self.publish_with(channel, &self.signing_key(), &[], build);
        let t = crate::text(&o);
        assert!(o.status.success(), "publish {}:\n{t}", build.display());
        t
    }

    /// `image-builder serve` of the repository on `listen` (`ADDR:PORT`), until dropped.
    pub fn serve(&self, listen: &str) -> Served {
        let child = Command::new(image_builder_bin())
            .args(["serve", &s(&self.path()), "--listen", listen])
            .current_dir(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting image-builder serve");
        Served(child)
    }
}

/// A running `image-builder serve`, killed when dropped.
pub struct Served(Child);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn s(p: &Path) -> String {
    p.to_str().expect("a UTF-8 path").to_string()
}
