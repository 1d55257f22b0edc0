//! `coreos-install` against a loopback repository made with `channels::Repo`: the release has a
//! `disk.img.zst` payload and a release.json describing the raw disk; the target is a regular
//! file (a disk image), so no block device is needed.

use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};
use std::time::Duration;

use channels::{sign_document, Release, Repo, SecretKey};
use sha2::{Digest, Sha256};
use update_engine::cli::{self, Cli, Command};
use update_engine::config::{load_root_keys, Config, Paths};
use update_engine::http::Policy;
use update_engine::install::{self, Env, InstallArgs, Installed, Target, HEAD_BYTES};

const NOW: u64 = 1_700_000_000;
const DAY: u64 = 86_400;
const RAW_LEN: usize = 3 * (1 << 20) + 4321;

/// Ranged requests served (`Range: bytes=N-`), for the resume test.
static RANGED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// Serves `root`'s files (200, or 206 for `Range: bytes=N-`); the first GET of a path ending
/// in `cut` breaks off after `cut_at` bytes.
fn serve(root: PathBuf, cut: Option<(&'static str, usize)>) -> String {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let url = format!("http://{}", server.server_addr().to_ip().unwrap());
    std::thread::spawn(move || {
        let mut cut = cut;
        for req in server.incoming_requests() {
            let path = root.join(req.url().trim_start_matches('/'));
            let Ok(bytes) = std::fs::read(&path) else {
                let _ = req.respond(tiny_http::Response::empty(404));
                continue;
            };
            let range = req
                .headers()
                .iter()
                .find(|h| h.field.equiv("Range"))
                .and_then(|h| h.value.as_str().strip_prefix("bytes="))
                .and_then(|r| r.strip_suffix('-'))
                .and_then(|s| s.parse::<usize>().ok());
            let total = bytes.len();
            if let Some(start) = range {
                RANGED
                    .lock()
                    .unwrap()
                    .push(format!("{} from {start}", req.url()));
                let cr = format!("bytes {start}-{}/{total}", total - 1);
                let h = tiny_http::Header::from_bytes("Content-Range", cr).unwrap();
                let part = bytes[start..].to_vec();
                let len = part.len();
                let resp = tiny_http::Response::new(
                    206.into(),
                    vec![h],
                    Cursor::new(part),
                    Some(len),
                    None,
                );
                let _ = req.respond(resp);
                continue;
            }
            if let Some((suffix, at)) = cut {
                if req.url().ends_with(suffix) {
                    cut = None;
                    struct Cut(Cursor<Vec<u8>>);
                    impl Read for Cut {
                        fn read(&mut self, b: &mut [u8]) -> std::io::Result<usize> {
                            match self.0.read(b)? {
                                0 => Err(std::io::Error::other("cut")),
                                n => Ok(n),
                            }
                        }
                    }
                    let body = Cut(Cursor::new(bytes[..at].to_vec()));
                    let resp =
                        tiny_http::Response::new(200.into(), vec![], body, Some(total), None);
                    let _ = req.respond(resp);
                    continue;
                }
            }
            let resp =
                tiny_http::Response::new(200.into(), vec![], Cursor::new(bytes), Some(total), None);
            let _ = req.respond(resp);
        }
    });
    url
}

fn raw_disk() -> Vec<u8> {
    (0..RAW_LEN)
        .map(|i| ((i as u32).wrapping_mul(2_654_435_761) >> 11) as u8 | 1)
        .collect()
}

fn write(path: &Path, bytes: impl AsRef<[u8]>) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

struct Fixture {
    _dir: tempfile::TempDir,
    repo: PathBuf,
    paths: Paths,
    raw: Vec<u8>,
    zst: Vec<u8>,
    target: PathBuf,
}

impl Fixture {
    fn new(cut: Option<(&'static str, usize)>) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("repo");
        std::fs::create_dir_all(&repo).unwrap();
        let root_key = SecretKey::from_seed(&[1; 32]);
        let signing = SecretKey::from_seed(&[2; 32]);
        Repo::init(&repo, &root_key, &[signing.public()], NOW + 365 * DAY).unwrap();
        let raw = raw_disk();
        let zst = zstd::encode_all(&raw[..], 3).unwrap();
        let release_json = serde_json::to_vec(&serde_json::json!({
            "os_id": "minimal", "os_name": "Minimal Linux", "version": "1.0.1",
            "channel": "alpha", "kernel_release": "6.1.0", "usr_partition_size": 1 << 20,
            "files": {},
            "disk": {
                "file": "disk.img.zst",
                "compressed": { "size": zst.len(), "sha256": hex::encode(Sha256::digest(&zst)) },
                "raw": { "size": raw.len(), "sha256": hex::encode(Sha256::digest(&raw)) },
            },
        }))
        .unwrap();
        let mut payloads = std::collections::BTreeMap::new();
        for (name, bytes) in [
            ("disk.img.zst", zst.clone()),
            ("usr.img", b"usr".to_vec()),
            ("release.json", release_json),
        ] {
            payloads.insert(
                name.to_owned(),
                Repo::add_payload(&repo, Cursor::new(bytes)).unwrap(),
            );
        }
        let release = Release {
            channel: "alpha".into(),
            version: "1.0.1".into(),
            release_time: NOW - 10,
            expires: NOW + 30 * DAY,
            version_floor: None,
            payloads,
        };
        Repo::publish(&repo, release, &signing, NOW - 10, true).unwrap();
        let url = serve(repo.clone(), cut);
        let root = dir.path().join("root");
        let paths = Paths::new(&root);
        write(
            &paths.root_keys(),
            std::fs::read(repo.join("root.json")).unwrap(),
        );
        write(
            &paths.defaults_conf(),
            format!("GROUP=alpha\nSERVER={url}\n"),
        );
        write(
            &paths.os_release(),
            "NAME=\"Minimal Linux\"\nID=minimal\nVERSION_ID=1.0.0\n",
        );
        // The target: a disk image file with an old system on it.
        let target = root.join("images/disk.img");
        write(&target, vec![0xEEu8; RAW_LEN + 512]);
        Fixture {
            _dir: dir,
            repo,
            paths,
            raw,
            zst,
            target,
        }
    }

    fn args(&self, extra: &[&str]) -> InstallArgs {
        let mut argv = vec!["coreos-install", "-d", "/images/disk.img"];
        argv.extend_from_slice(extra);
        match cli::parse(argv.iter().map(Into::into).collect())
            .unwrap()
            .command
        {
            Command::Install(a) => a,
            other => panic!("{other:?}"),
        }
    }

    fn install(&self, args: &InstallArgs) -> anyhow::Result<Installed> {
        let config = Config::load(&self.paths);
        let keys = load_root_keys(&self.paths).unwrap();
        let mut progress = |_, _| {};
        let mut say = |_: &str| {};
        let mut env = Env {
            paths: &self.paths,
            config: &config,
            root_keys: &keys,
            policy: Policy {
                attempts: 5,
                max_failures: 20,
                first_delay: Duration::from_millis(10),
                max_delay: Duration::from_millis(10),
                connect_timeout: Duration::from_secs(2),
                timeout: Duration::from_secs(2),
            },
            now: NOW,
            progress: &mut progress,
            say: &mut say,
        };
        install::install(args, &mut env)
    }

    fn target(&self) -> Vec<u8> {
        std::fs::read(&self.target).unwrap()
    }

    fn assert_installed(&self) {
        let t = self.target();
        assert_eq!(&t[..RAW_LEN], &self.raw[..], "the raw disk, byte for byte");
        assert!(t[RAW_LEN..].iter().all(|b| *b == 0xEE), "nothing past it");
    }

    fn assert_untouched(&self) {
        assert!(self.target().iter().all(|b| *b == 0xEE), "nothing written");
    }

    fn assert_head_zero(&self) {
        assert!(self.target()[..HEAD_BYTES as usize].iter().all(|b| *b == 0));
    }
}

#[test]
fn installs_the_channels_release_onto_a_file() {
    let fx = Fixture::new(None);
    let done = fx.install(&fx.args(&[])).unwrap();
    assert_eq!(done.version, "1.0.1");
    assert_eq!(done.bytes, RAW_LEN as u64);
    assert_eq!(done.target, Target::File(fx.target.clone()));
    fx.assert_installed();
    // -V with the manifest's version, -C and -b spelled out: the same.
    std::fs::write(&fx.target, vec![0xEEu8; RAW_LEN + 512]).unwrap();
    let server = Config::load(&fx.paths).server.unwrap();
    fx.install(&fx.args(&["-V", "1.0.1", "-C", "alpha", "-b", &server]))
        .unwrap();
    fx.assert_installed();
}

#[test]
fn the_command_line_installs_too() {
    let fx = Fixture::new(None);
    let cli = Cli {
        root: fx.paths.root.clone(),
        command: Command::Install(fx.args(&[])),
    };
    // The real clock is past the test manifest's expiry: the engine's verification says so.
    let e = cli::run(cli).unwrap_err();
    assert!(format!("{e:#}").contains("expired"), "{e:#}");
    fx.assert_untouched();
    // -c on a file target is refused before anything.
    let cc = fx.paths.root.join("cc.yml");
    write(&cc, "#cloud-config\nhostname: a\n");
    let cli = Cli {
        root: fx.paths.root.clone(),
        command: Command::Install(fx.args(&["-c", cc.to_str().unwrap()])),
    };
    let e = cli::run(cli).unwrap_err();
    assert!(format!("{e:#}").contains("need a block device"), "{e:#}");
    fx.assert_untouched();
}

#[test]
fn a_payload_cut_midway_resumes() {
    let raw_zst_len = zstd::encode_all(&raw_disk()[..], 3).unwrap().len();
    let sha = hex::encode(Sha256::digest(
        zstd::encode_all(&raw_disk()[..], 3).unwrap(),
    ));
    let suffix: &'static str = Box::leak(sha.into_boxed_str());
    let fx = Fixture::new(Some((suffix, raw_zst_len / 2)));
    fx.install(&fx.args(&[])).unwrap();
    fx.assert_installed();
    let ranged = RANGED.lock().unwrap().clone();
    assert!(
        ranged.iter().any(|r| r.contains(suffix)),
        "the payload was resumed with a ranged request: {ranged:?}"
    );
}

#[test]
fn an_unknown_key_is_refused_before_the_first_write() {
    let fx = Fixture::new(None);
    let m = Repo::current_manifest(&fx.repo, "alpha").unwrap().unwrap();
    let (doc, sig) = sign_document(&m, &SecretKey::from_seed(&[9; 32])).unwrap();
    std::fs::write(fx.repo.join(channels::manifest_path("alpha")), doc).unwrap();
    std::fs::write(fx.repo.join(channels::manifest_sig_path("alpha")), sig).unwrap();
    let e = fx.install(&fx.args(&[])).unwrap_err();
    assert!(format!("{e:#}").contains("unknown key"), "{e:#}");
    fx.assert_untouched();
}

#[test]
fn another_version_or_channel_is_refused_before_the_first_write() {
    let fx = Fixture::new(None);
    let e = fx.install(&fx.args(&["-V", "1.0.0"])).unwrap_err();
    let text = format!("{e:#}");
    assert!(
        text.contains("-V 1.0.0: channel alpha offers 1.0.1")
            && text.contains("serves only the current release"),
        "{text}"
    );
    let e = fx.install(&fx.args(&["-C", "beta"])).unwrap_err();
    assert!(format!("{e:#}").contains("channel beta"), "{e:#}");
    fx.assert_untouched();
}

#[test]
fn a_local_image_is_verified_against_the_manifest() {
    let fx = Fixture::new(None);
    let local = fx.paths.root.join("disk.img.zst");
    write(&local, &fx.zst);
    fx.install(&fx.args(&["-f", local.to_str().unwrap()]))
        .unwrap();
    fx.assert_installed();
    // A tampered local file: refused, the first MiB zero.
    let mut bad = fx.zst.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 1;
    write(&local, &bad);
    let e = fx
        .install(&fx.args(&["-f", local.to_str().unwrap()]))
        .unwrap_err();
    assert!(format!("{e:#}").contains("refused"), "{e:#}");
    fx.assert_head_zero();
}

#[test]
fn a_bad_cloud_config_is_refused_before_anything() {
    let fx = Fixture::new(None);
    let cc = fx.paths.root.join("cc.yml");
    write(
        &cc,
        "#cloud-config\ncoreos:\n  units:\n    - name: a.service\n      command: jump\n",
    );
    let e = fx
        .install(&fx.args(&["-c", cc.to_str().unwrap()]))
        .unwrap_err();
    assert!(
        format!("{e:#}").contains("is not a valid cloud-config"),
        "{e:#}"
    );
    fx.assert_untouched();
}

#[test]
fn a_too_small_file_is_refused_before_writing() {
    let fx = Fixture::new(None);
    write(&fx.target, vec![0xEEu8; RAW_LEN - 1]);
    let e = fx.install(&fx.args(&[])).unwrap_err();
    assert!(format!("{e:#}").contains("the image needs"), "{e:#}");
    assert!(fx.target().iter().all(|b| *b == 0xEE));
}
