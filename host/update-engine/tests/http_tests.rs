//! Loopback HTTP tests: a repository made with `channels::Repo` in a tempdir, served by a
//! `tiny_http` server that can inject faults (a body cut off once, 503s, a body longer than
//! declared), applied onto a [`FileHost`] (slot devices are sparse files, the ESP a tempdir).

use std::collections::BTreeMap;
use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use channels::{sign_document, Manifest, Release, Repo, SecretKey};
use contract::slots::{BootCounter, BootEntry, Slot, SlotTable, ENTRIES_DIR};
use update_engine::cli::client;
use update_engine::config::RebootStrategy;
use update_engine::config::{load_root_keys, Config, Paths};
use update_engine::engine::AfterStaging;
use update_engine::engine::{CheckOutcome, Engine, EngineError, UpdateOutcome};
use update_engine::host::{FileHost, SlotDevice};
use update_engine::http::Policy;
use update_engine::lifecycle::MarkGood;
use update_engine::lock::RebootWindow;
use update_engine::request::{self, Request};
use update_engine::state::State;
use update_engine::status::{Operation, Status};

const NOW: u64 = 1_700_000_000;
const DAY: u64 = 86_400;
const SLOT_SIZE: u64 = 1 << 20;
const UUID_A: &str = "aaaaaaaa-0000-5000-8000-000000000001";
const UUID_B: &str = "bbbbbbbb-0000-5000-8000-000000000002";
const BOOTED_BYTES: u8 = 0xA5;

/// Faults the server injects.
#[derive(Default)]
struct Faults {
    /// Cut the first full GET of a path ending in this suffix after this many bytes.
    truncate_once: Option<(String, usize)>,
    /// Answer 503 this many times to paths ending in the suffix.
    fail_503: Option<(String, u32)>,
    /// Stall the first full GET of a path ending in this suffix after this many bytes, for
    /// longer than the client's timeout.
    stall_once: Option<(String, usize)>,
    /// Set while a stalled body hangs: a ranged request for the path releases it.
    stalled: Option<(String, std::sync::mpsc::Sender<()>)>,
    /// Whether a stalled body was released by the client's ranged request (not by giving up).
    released_by_resume: Arc<std::sync::atomic::AtomicBool>,
    /// Serve extra bytes after this payload (with a Content-Length if true).
    longer: Option<(String, bool)>,
    /// (url, Range header) of every request.
    log: Vec<(String, Option<String>)>,
}

struct Server {
    url: String,
    faults: Arc<Mutex<Faults>>,
}

impl Server {
    fn start(root: PathBuf) -> Server {
        let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
        let url = format!("http://{}", server.server_addr().to_ip().unwrap());
        let faults = Arc::new(Mutex::new(Faults::default()));
        let f = faults.clone();
        std::thread::spawn(move || {
            for req in server.incoming_requests() {
                serve(&root, &f, req);
            }
        });
        Server { url, faults }
    }
    fn log(&self) -> Vec<(String, Option<String>)> {
        self.faults.lock().unwrap().log.clone()
    }
}

/// A reader that yields `n` bytes and then fails (the connection breaks mid-body).
struct Cut(Cursor<Vec<u8>>);
impl Read for Cut {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self.0.read(buf)? {
            0 => Err(std::io::Error::other("cut")),
            n => Ok(n),
        }
    }
}

/// A reader that yields its bytes, then hangs (a server that stops sending) until the client
/// asks for the rest with a ranged request, or 60 s pass; then it fails.
struct Stall {
    bytes: Cursor<Vec<u8>>,
    release: std::sync::mpsc::Receiver<()>,
    released_by_resume: Arc<std::sync::atomic::AtomicBool>,
}
impl Read for Stall {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self.bytes.read(buf)? {
            0 => {
                if self.release.recv_timeout(Duration::from_secs(60)).is_ok() {
                    self.released_by_resume
                        .store(true, std::sync::atomic::Ordering::SeqCst);
                }
                Err(std::io::Error::other("stalled"))
            }
            n => Ok(n),
        }
    }
}

fn respond<R: Read>(
    req: tiny_http::Request,
    code: u16,
    body: R,
    len: Option<usize>,
    extra: Vec<tiny_http::Header>,
) {
    let resp = tiny_http::Response::new(tiny_http::StatusCode(code), extra, body, len, None)
        .with_chunked_threshold(usize::MAX);
    let _ = req.respond(resp);
}

fn serve(root: &Path, faults: &Mutex<Faults>, req: tiny_http::Request) {
    let url = req.url().to_owned();
    let range = req
        .headers()
        .iter()
        .find(|h| h.field.equiv("Range"))
        .map(|h| h.value.to_string());
    let mut f = faults.lock().unwrap();
    f.log.push((url.clone(), range.clone()));
    if let Some((suffix, n)) = f.fail_503.as_mut() {
        if url.ends_with(suffix.as_str()) && *n > 0 {
            *n -= 1;
            drop(f);
            return respond(req, 503, Cursor::new(Vec::new()), Some(0), vec![]);
        }
    }
    let Ok(mut bytes) = std::fs::read(root.join(url.trim_start_matches('/'))) else {
        drop(f);
        return respond(req, 404, Cursor::new(Vec::new()), Some(0), vec![]);
    };
    if let Some((suffix, with_len)) = &f.longer {
        if url.ends_with(suffix.as_str()) {
            bytes.extend_from_slice(&[0u8; 4096]);
            let len = with_len.then_some(bytes.len());
            drop(f);
            let resp = tiny_http::Response::new(
                tiny_http::StatusCode(200),
                vec![],
                Cursor::new(bytes),
                len,
                None,
            );
            let resp = if len.is_some() {
                resp.with_chunked_threshold(usize::MAX)
            } else {
                resp
            };
            let _ = req.respond(resp);
            return;
        }
    }
    let start = range
        .as_deref()
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|s| s.parse::<usize>().ok());
    if let Some(start) = start {
        if let Some((suffix, release)) = f.stalled.take() {
            if url.ends_with(suffix.as_str()) {
                let _ = release.send(());
            } else {
                f.stalled = Some((suffix, release));
            }
        }
        drop(f);
        let total = bytes.len();
        let part = bytes[start.min(total)..].to_vec();
        let cr = format!("bytes {start}-{}/{total}", total - 1);
        let header = tiny_http::Header::from_bytes("Content-Range", cr).unwrap();
        let len = part.len();
        return respond(req, 206, Cursor::new(part), Some(len), vec![header]);
    }
    if let Some((suffix, n)) = f.truncate_once.clone() {
        if url.ends_with(suffix.as_str()) {
            f.truncate_once = None;
            drop(f);
            let len = bytes.len();
            return respond(
                req,
                200,
                Cut(Cursor::new(bytes[..n].to_vec())),
                Some(len),
                vec![],
            );
        }
    }
    if let Some((suffix, n)) = f.stall_once.clone() {
        if url.ends_with(suffix.as_str()) {
            f.stall_once = None;
            let (tx, release) = std::sync::mpsc::channel();
            f.stalled = Some((suffix, tx));
            let released_by_resume = f.released_by_resume.clone();
            drop(f);
            let len = bytes.len();
            // Served from its own thread: the server keeps answering while this one hangs.
            std::thread::spawn(move || {
                let body = Stall {
                    bytes: Cursor::new(bytes[..n].to_vec()),
                    release,
                    released_by_resume,
                };
                respond(req, 200, body, Some(len), vec![]);
            });
            return;
        }
    }
    drop(f);
    let len = bytes.len();
    respond(req, 200, Cursor::new(bytes), Some(len), vec![]);
}

/// The repository, the host's files and the server.
struct Fixture {
    _dir: tempfile::TempDir,
    repo: PathBuf,
    host: FileHost,
    config: Config,
    server: Server,
    signing: SecretKey,
    usr: Vec<u8>,
}

fn usr_bytes(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 8) as u8)
        .collect()
}

fn release_json(os_id: &str, version: &str, usr_partition_size: u64) -> Vec<u8> {
    serde_json::to_vec_pretty(&serde_json::json!({
        "os_id": os_id, "os_name": "Minimal Linux", "version": version, "channel": "alpha",
        "kernel_release": "6.1.0", "usr_partition_size": usr_partition_size, "files": {},
    }))
    .unwrap()
}

/// The payloads of a release, added to the repository.
fn add_release(
    repo: &Path,
    version: &str,
    usr: &[u8],
    release: &[u8],
) -> BTreeMap<String, channels::PayloadRef> {
    let mut payloads = BTreeMap::new();
    for (name, bytes) in [
        ("usr.img", usr.to_vec()),
        ("vmlinuz", format!("kernel {version}").into_bytes()),
        ("initrd.img", format!("initrd {version}").into_bytes()),
        ("release.json", release.to_vec()),
    ] {
        payloads.insert(
            name.to_owned(),
            Repo::add_payload(repo, Cursor::new(bytes)).unwrap(),
        );
    }
    payloads
}

fn publish(repo: &Path, key: &SecretKey, version: &str, usr: &[u8]) -> Manifest {
    let payloads = add_release(
        repo,
        version,
        usr,
        &release_json("minimal", version, SLOT_SIZE),
    );
    let release = Release {
        channel: "alpha".into(),
        version: version.into(),
        release_time: NOW - 10,
        expires: NOW + 30 * DAY,
        version_floor: None,
        payloads,
    };
    Repo::publish(repo, release, key, NOW - 10, true).unwrap()
}

/// Writes `manifest` signed by `key` as the channel's manifest, bypassing the publisher's checks.
fn write_manifest(repo: &Path, manifest: &Manifest, key: &SecretKey) {
    let (doc, sig) = sign_document(manifest, key).unwrap();
    std::fs::write(repo.join(channels::manifest_path("alpha")), doc).unwrap();
    std::fs::write(repo.join(channels::manifest_sig_path("alpha")), sig).unwrap();
}

fn write(path: &Path, text: impl AsRef<[u8]>) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn entry(slot: Slot, version: &str, counter: Option<(u32, u32)>) -> BootEntry {
    BootEntry {
        os_id: "minimal".into(),
        os_name: "Minimal Linux".into(),
        version: version.into(),
        slot,
        usr_partuuid: if slot == Slot::A { UUID_A } else { UUID_B }.into(),
        cmdline: "console=ttyS0 panic=10".into(),
        counter: counter.map(|(left, done)| BootCounter { left, done }),
    }
}

impl Fixture {
    /// Booted from USR-A running `booted`, its entry blessed; the channel offers 1.0.1.
    fn new(booted: &str) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("repo");
        let root = dir.path().join("root");
        std::fs::create_dir_all(&repo).unwrap();
        let root_key = SecretKey::from_seed(&[1; 32]);
        let signing = SecretKey::from_seed(&[2; 32]);
        Repo::init(&repo, &root_key, &[signing.public()], NOW + 365 * DAY).unwrap();
        let usr = usr_bytes(300_000, 7);
        publish(&repo, &signing, "1.0.1", &usr);
        let server = Server::start(repo.clone());

        let paths = Paths::new(&root);
        write(
            &paths.root_keys(),
            std::fs::read(repo.join("root.json")).unwrap(),
        );
        write(
            &paths.defaults_conf(),
            format!("GROUP=alpha\nSERVER={}\nREBOOT_STRATEGY=off\n", server.url),
        );
        write(&paths.boot_slot(), "USR-A\n");
        write(
            &paths.os_release(),
            format!("NAME=\"Minimal Linux\"\nID=minimal\nVERSION_ID={booted}\n"),
        );
        let esp = dir.path().join("esp");
        std::fs::create_dir_all(esp.join(ENTRIES_DIR)).unwrap();
        SlotTable::load(&esp, "minimal")
            .unwrap()
            .stage(&entry(Slot::A, booted, None), b"k", b"i")
            .unwrap();
        let dev_a = dir.path().join("usr-a.img");
        std::fs::write(&dev_a, vec![BOOTED_BYTES; SLOT_SIZE as usize]).unwrap();
        let dev_b = dir.path().join("usr-b.img");
        std::fs::File::create(&dev_b)
            .unwrap()
            .set_len(SLOT_SIZE)
            .unwrap();
        let host = FileHost {
            paths: paths.clone(),
            devices: [
                SlotDevice {
                    path: dev_a,
                    partuuid: UUID_A.into(),
                },
                SlotDevice {
                    path: dev_b,
                    partuuid: UUID_B.into(),
                },
            ],
            esp,
            processes: vec!["init".into(), "getty".into()],
            reboots: AtomicU32::new(0),
        };
        let config = Config::load(&paths).usable().unwrap();
        Fixture {
            _dir: dir,
            repo,
            host,
            config,
            server,
            signing,
            usr,
        }
    }

    fn paths(&self) -> &Paths {
        &self.host.paths
    }

    fn update_at(&self, now: u64) -> Result<UpdateOutcome, EngineError> {
        let keys = load_root_keys(self.paths()).unwrap();
        let engine = self.engine(&keys);
        let result = engine.update(now, &mut |_| {});
        self.assert_booted_untouched();
        result
    }

    fn update(&self) -> Result<UpdateOutcome, EngineError> {
        self.update_at(NOW)
    }

    fn engine<'a>(&'a self, keys: &'a channels::RootKeys) -> Engine<'a, FileHost> {
        Engine {
            paths: &self.host.paths,
            config: &self.config,
            root_keys: keys,
            host: &self.host,
            policy: Policy {
                attempts: 5,
                max_failures: 20,
                first_delay: Duration::from_millis(10),
                max_delay: Duration::from_millis(10),
                connect_timeout: Duration::from_secs(2),
                timeout: Duration::from_secs(2),
            },
        }
    }

    fn table(&self) -> SlotTable {
        SlotTable::load(&self.host.esp, "minimal").unwrap()
    }

    fn status(&self) -> Status {
        Status::load(&self.paths().status()).unwrap()
    }

    fn state(&self) -> State {
        State::load(&self.paths().state()).unwrap()
    }

    fn slot_b(&self) -> Vec<u8> {
        std::fs::read(&self.host.devices[1].path).unwrap()
    }

    fn assert_booted_untouched(&self) {
        let a = std::fs::read(&self.host.devices[0].path).unwrap();
        assert_eq!(a.len() as u64, SLOT_SIZE);
        assert!(
            a.iter().all(|b| *b == BOOTED_BYTES),
            "the booted slot was written"
        );
    }

    /// The update was refused with an error containing `want`, USR-B has no entry.
    fn assert_refused(&self, result: Result<UpdateOutcome, EngineError>, want: &str) {
        let err = result.expect_err("refused");
        let text = update_engine::http::error_chain(&err);
        assert!(text.contains(want), "{text:?} does not contain {want:?}");
        assert_eq!(
            self.table().entry(Slot::B),
            None,
            "USR-B must have no entry"
        );
        let status = self.status();
        assert_eq!(status.current_op, Operation::ReportingErrorEvent);
        assert!(status.last_error.unwrap().contains(want));
        assert_eq!(self.state().pending, None);
    }
}

#[test]
fn happy_path_stages_the_other_slot() {
    let fx = Fixture::new("1.0.0");
    let outcome = fx.update().unwrap();
    assert_eq!(
        outcome,
        UpdateOutcome::Staged {
            version: "1.0.1".into(),
            slot: Slot::B,
            next: AfterStaging::Stay,
        }
    );
    let b = fx.slot_b();
    assert_eq!(&b[..fx.usr.len()], &fx.usr[..], "slot B holds usr.img");
    assert!(
        b[fx.usr.len()..].iter().all(|x| *x == 0),
        "nothing past usr.img"
    );

    let table = fx.table();
    let staged = table.entry(Slot::B).unwrap();
    assert_eq!(staged.file_name, "minimal-usr-b+3-0.conf");
    assert_eq!(staged.version, "1.0.1");
    assert_eq!(table.preferred().unwrap().slot, Slot::B);
    let text =
        std::fs::read_to_string(fx.host.esp.join(ENTRIES_DIR).join(&staged.file_name)).unwrap();
    assert!(
        text.contains(&format!(
            "options console=ttyS0 panic=10 usr=PARTUUID={UUID_B}\n"
        )),
        "{text}"
    );
    assert_eq!(
        std::fs::read(fx.host.esp.join("minimal/usr-b/vmlinuz")).unwrap(),
        b"kernel 1.0.1"
    );
    assert_eq!(
        std::fs::read(fx.host.esp.join("minimal/usr-b/initrd")).unwrap(),
        b"initrd 1.0.1"
    );

    let status = fx.status();
    assert_eq!(status.current_op, Operation::UpdatedNeedReboot);
    assert_eq!(
        (status.new_version.as_str(), status.new_size),
        ("1.0.1", fx.usr.len() as u64)
    );
    assert_eq!(status.progress, 1.0);
    assert_eq!(status.last_checked_time, NOW);
    assert_eq!(status.booted_slot.as_deref(), Some("USR-A"));
    let state = fx.state();
    assert_eq!(state.pending.as_ref().unwrap().version, "1.0.1");
    assert_eq!(state.seen_manifests["alpha"].sequence, 1);
    assert_eq!(state.highest_keyset_version, Some(1));
    assert_eq!(
        fx.host.reboots.load(Ordering::SeqCst),
        0,
        "REBOOT_STRATEGY=off"
    );

    // A second run finds it staged and downloads nothing.
    let before = fx.server.log().len();
    let again = fx.update().unwrap();
    assert!(matches!(again, UpdateOutcome::Staged { .. }));
    assert!(fx.server.log()[before..]
        .iter()
        .all(|(u, _)| !u.contains("payloads")));
    assert_eq!(fx.status().current_op, Operation::UpdatedNeedReboot);
}

#[test]
fn reboot_strategy_reboots() {
    let mut fx = Fixture::new("1.0.0");
    fx.config.reboot_strategy = update_engine::RebootStrategy::Reboot;
    assert!(matches!(
        fx.update().unwrap(),
        UpdateOutcome::Staged {
            next: AfterStaging::Rebooting { .. },
            ..
        }
    ));
    assert_eq!(fx.host.reboots.load(Ordering::SeqCst), 1);
    assert_eq!(
        fx.state().reboot_lock,
        None,
        "no lock for REBOOT_STRATEGY=reboot"
    );
}

#[test]
fn reboots_wait_for_the_window() {
    let mut fx = Fixture::new("1.0.0");
    fx.config.reboot_strategy = update_engine::RebootStrategy::Reboot;
    // NOW (2023-11-14 22:13:20 UTC, a Tuesday) is an hour and 46 min 40 s before Wed 00:00.
    fx.config.reboot_lock.window = Some(RebootWindow::parse("Wed 00:00", "1h").unwrap());
    let outcome = fx.update().unwrap();
    let UpdateOutcome::Staged {
        next: AfterStaging::Waiting { reason, retry_in },
        ..
    } = outcome
    else {
        panic!("{outcome:?}");
    };
    assert_eq!(retry_in, 6400);
    assert!(reason.contains("outside the reboot window"), "{reason}");
    assert_eq!(fx.host.reboots.load(Ordering::SeqCst), 0);
    assert_eq!(fx.status().reboot_note.as_deref(), Some(reason.as_str()));
    assert!(fx
        .status()
        .render_plain()
        .contains("REBOOT_NOTE=outside the reboot window"));

    let keys = load_root_keys(fx.paths()).unwrap();
    let next = fx.engine(&keys).after_staging(NOW + 6400, 1).unwrap();
    assert!(matches!(next, AfterStaging::Rebooting { .. }), "{next:?}");
    assert_eq!(fx.host.reboots.load(Ordering::SeqCst), 1);
}

#[test]
fn etcd_lock_without_etcd_never_reboots() {
    let mut fx = Fixture::new("1.0.0");
    fx.config.reboot_strategy = update_engine::RebootStrategy::EtcdLock;
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    fx.config.reboot_lock.etcd.endpoints = vec![endpoint.clone()];
    write(
        &fx.paths().machine_id(),
        "0123456789abcdef0123456789abcdef\n",
    );
    let outcome = fx.update().unwrap();
    let UpdateOutcome::Staged {
        next: AfterStaging::Waiting { reason, retry_in },
        ..
    } = outcome
    else {
        panic!("{outcome:?}");
    };
    assert!(reason.contains("waiting for the reboot lock"), "{reason}");
    assert!(reason.contains(&endpoint), "{reason}");
    assert_eq!(retry_in, update_engine::reboot::RETRY_MIN_SECS);
    assert_eq!(fx.host.reboots.load(Ordering::SeqCst), 0);
    let record = fx.state().reboot_lock.unwrap();
    assert!(record.uncertain && !record.acquired, "{record:?}");

    // best-effort reboots when etcd does not answer.
    fx.config.reboot_strategy = update_engine::RebootStrategy::BestEffort;
    let keys = load_root_keys(fx.paths()).unwrap();
    let next = fx.engine(&keys).after_staging(NOW, 0).unwrap();
    assert!(
        matches!(&next, AfterStaging::Rebooting { how } if how.contains("does not answer")),
        "{next:?}"
    );
}

/// A FleetLock server for one test: answers pre-reboot with `full` (409) the first
/// `refuse` times, then 200; steady-state always 200. Logs (path, body).
/// (path, body) of every request.
type RequestLog = Arc<Mutex<Vec<(String, String)>>>;

fn fleetlock_server(refuse: u32) -> (String, RequestLog) {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let url = format!("http://{}", server.server_addr().to_ip().unwrap());
    let log = Arc::new(Mutex::new(Vec::new()));
    let l = log.clone();
    std::thread::spawn(move || {
        let mut refuse = refuse;
        for mut req in server.incoming_requests() {
            let mut body = String::new();
            let _ = req.as_reader().read_to_string(&mut body);
            let header = req
                .headers()
                .iter()
                .any(|h| h.field.equiv("fleet-lock-protocol") && h.value == "true");
            l.lock().unwrap().push((req.url().to_owned(), body));
            let (code, text) = if !header {
                (
                    400,
                    r#"{"kind":"invalid_client_identity","value":"no header"}"#,
                )
            } else if req.url() == "/v1/pre-reboot" && refuse > 0 {
                refuse -= 1;
                (
                    409,
                    r#"{"kind":"failed_lock_semaphore_full","value":"semaphore full"}"#,
                )
            } else {
                (200, "")
            };
            let _ = req.respond(
                tiny_http::Response::from_string(text)
                    .with_status_code(tiny_http::StatusCode(code)),
            );
        }
    });
    (url, log)
}

#[test]
fn fleetlock_locks_before_the_reboot_and_releases_after_mark_good() {
    let mut fx = Fixture::new("1.0.0");
    let (url, log) = fleetlock_server(1);
    fx.config.reboot_strategy = update_engine::RebootStrategy::FleetLock;
    fx.config.reboot_lock.fleetlock_url = Some(url.clone());
    write(
        &fx.paths().machine_id(),
        "0123456789abcdef0123456789abcdef\n",
    );
    let outcome = fx.update().unwrap();
    let UpdateOutcome::Staged {
        next: AfterStaging::Waiting { reason, .. },
        ..
    } = outcome
    else {
        panic!("{outcome:?}");
    };
    assert!(reason.contains("semaphore full"), "{reason}");
    assert_eq!(fx.host.reboots.load(Ordering::SeqCst), 0);

    let keys = load_root_keys(fx.paths()).unwrap();
    let next = fx.engine(&keys).after_staging(NOW, 1).unwrap();
    assert!(
        matches!(&next, AfterStaging::Rebooting { how } if how.contains("took the reboot lock")),
        "{next:?}"
    );
    assert_eq!(fx.host.reboots.load(Ordering::SeqCst), 1);
    assert!(fx.state().reboot_lock.unwrap().acquired);
    let body = r#"{"client_params":{"id":"0123456789abcdef0123456789abcdef","group":"default"}}"#;
    assert_eq!(
        log.lock().unwrap().clone(),
        vec![
            ("/v1/pre-reboot".to_owned(), body.to_owned()),
            ("/v1/pre-reboot".to_owned(), body.to_owned()),
        ]
    );

    // The machine comes up on USR-B with 1.0.1: the daemon marks it good, then releases.
    write(&fx.paths().boot_slot(), "USR-B\n");
    write(
        &fx.paths().os_release(),
        "NAME=\"Minimal Linux\"\nID=minimal\nVERSION_ID=1.0.1\n",
    );
    let mut order = Vec::new();
    fx.engine(&keys)
        .daemon(
            &|| NOW,
            &mut |_| {
                order.push("sleep");
                None
            },
            b"machine",
            Some(1),
        )
        .unwrap();
    assert!(
        fx.table().entry(Slot::B).unwrap().counter.is_none(),
        "blessed"
    );
    assert_eq!(fx.state().reboot_lock, None);
    let log = log.lock().unwrap().clone();
    assert_eq!(log.len(), 3, "{log:?}");
    assert_eq!(log[2], ("/v1/steady-state".to_owned(), body.to_owned()));
}

#[test]
fn up_to_date_is_idle() {
    let fx = Fixture::new("1.0.1");
    assert_eq!(
        fx.update().unwrap(),
        UpdateOutcome::UpToDate {
            version: "1.0.1".into()
        }
    );
    assert_eq!(fx.status().current_op, Operation::Idle);
    assert_eq!(fx.table().entry(Slot::B), None);
}

#[test]
fn check_only_reports_without_writing() {
    let fx = Fixture::new("1.0.0");
    let keys = load_root_keys(fx.paths()).unwrap();
    let found = fx.engine(&keys).check(NOW, &mut |_| {}).unwrap();
    assert!(matches!(found, CheckOutcome::Available(f) if f.manifest.version == "1.0.1"));
    assert_eq!(fx.status().current_op, Operation::UpdateAvailable);
    assert!(fx.slot_b().iter().all(|b| *b == 0));
}

#[test]
fn a_release_with_a_disk_image_updates_without_downloading_it() {
    // Releases carry the whole disk for installers: listed in the manifest and in release.json,
    // never fetched by an update.
    let fx = Fixture::new("1.0.0");
    let disk = vec![0x5Au8; 200_000];
    let disk_ref = Repo::add_payload(&fx.repo, Cursor::new(disk.clone())).unwrap();
    let mut release: serde_json::Value =
        serde_json::from_slice(&release_json("minimal", "1.0.2", SLOT_SIZE)).unwrap();
    release["disk"] = serde_json::json!({
        "file": "disk.img.zst",
        "compressed": {"size": disk_ref.size, "sha256": disk_ref.sha256},
        "raw": {"size": 1u64 << 30, "sha256": "ab".repeat(32)},
    });
    let mut payloads = add_release(
        &fx.repo,
        "1.0.2",
        &fx.usr,
        &serde_json::to_vec(&release).unwrap(),
    );
    payloads.insert(channels::release::DISK_IMAGE.to_owned(), disk_ref.clone());
    let release = Release {
        channel: "alpha".into(),
        version: "1.0.2".into(),
        release_time: NOW - 5,
        expires: NOW + 30 * DAY,
        version_floor: None,
        payloads,
    };
    Repo::publish(&fx.repo, release, &fx.signing, NOW - 5, false).unwrap();

    let outcome = fx.update().unwrap();
    assert!(
        matches!(&outcome, UpdateOutcome::Staged { version, .. } if version == "1.0.2"),
        "{outcome:?}"
    );
    assert_eq!(&fx.slot_b()[..fx.usr.len()], &fx.usr[..]);
    assert_eq!(
        fx.status().new_size,
        fx.usr.len() as u64,
        "the slot's size, not the disk's"
    );
    let log = fx.server.log();
    assert!(
        log.iter().all(|(u, _)| !u.contains(&disk_ref.sha256)),
        "the disk image was requested: {log:?}"
    );
}

#[test]
fn resumes_after_a_dropped_connection() {
    let fx = Fixture::new("1.0.0");
    fx.server.faults.lock().unwrap().truncate_once = Some((fx.usr_payload_suffix(), 100_000));
    fx.update().unwrap();
    fx.assert_resumed();
}

#[test]
fn resumes_after_a_stalled_body() {
    let fx = Fixture::new("1.0.0");
    fx.server.faults.lock().unwrap().stall_once = Some((fx.usr_payload_suffix(), 200_000));
    fx.update().unwrap();
    fx.assert_resumed();
    // The client gave up on the silent connection by itself (its timeout), not the server.
    let released = fx.server.faults.lock().unwrap().released_by_resume.clone();
    // (The stalled thread sets the flag as the ranged request arrives; give it a moment.)
    for _ in 0..100 {
        if released.load(std::sync::atomic::Ordering::SeqCst) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(released.load(std::sync::atomic::Ordering::SeqCst));
}

impl Fixture {
    /// The update completed after a resumed download: slot B holds usr.img, a ranged request
    /// asked for the rest, and 1.0.1 is staged.
    fn assert_resumed(&self) {
        assert_eq!(&self.slot_b()[..self.usr.len()], &self.usr[..]);
        let ranged: Vec<_> = self
            .server
            .log()
            .into_iter()
            .filter_map(|(_, r)| r)
            .collect();
        assert!(
            ranged
                .iter()
                .any(|r| r.starts_with("bytes=") && r != "bytes=0-"),
            "{ranged:?}"
        );
        assert_eq!(self.table().entry(Slot::B).unwrap().version, "1.0.1");
    }

    fn usr_payload_suffix(&self) -> String {
        let m = Repo::current_manifest(&self.repo, "alpha")
            .unwrap()
            .unwrap();
        m.payloads["usr.img"].sha256.clone()
    }
}

#[test]
fn retries_503_then_succeeds() {
    let fx = Fixture::new("1.0.0");
    fx.server.faults.lock().unwrap().fail_503 = Some(("keys.json".into(), 2));
    fx.update().unwrap();
    let keys_requests = fx
        .server
        .log()
        .iter()
        .filter(|(u, _)| u.ends_with("/keys.json"))
        .count();
    assert_eq!(keys_requests, 3);
}

#[test]
fn gives_up_on_endless_503() {
    let fx = Fixture::new("1.0.0");
    fx.server.faults.lock().unwrap().fail_503 = Some(("manifest.json".into(), 1000));
    fx.assert_refused(fx.update(), "giving up after 5 failures");
}

#[test]
fn refuses_a_body_longer_than_declared() {
    for with_length in [true, false] {
        let fx = Fixture::new("1.0.0");
        fx.server.faults.lock().unwrap().longer = Some((fx.usr_payload_suffix(), with_length));
        fx.assert_refused(fx.update(), "more than the declared");
        assert!(fx.slot_b().len() as u64 == SLOT_SIZE);
    }
}

#[test]
fn refuses_a_tampered_manifest() {
    let fx = Fixture::new("1.0.0");
    let path = fx.repo.join(channels::manifest_path("alpha"));
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("1.0.1", "1.0.9");
    std::fs::write(&path, text).unwrap();
    fx.assert_refused(fx.update(), "bad signature");
    assert!(fx.slot_b().iter().all(|b| *b == 0), "slot untouched");
}

#[test]
fn refuses_an_unknown_key() {
    let fx = Fixture::new("1.0.0");
    let m = Repo::current_manifest(&fx.repo, "alpha").unwrap().unwrap();
    write_manifest(&fx.repo, &m, &SecretKey::from_seed(&[9; 32]));
    fx.assert_refused(fx.update(), "unknown key");
}

#[test]
fn refuses_an_expired_manifest() {
    let fx = Fixture::new("1.0.0");
    fx.assert_refused(fx.update_at(NOW + 31 * DAY), "expired");
}

#[test]
fn refuses_a_replayed_manifest() {
    let fx = Fixture::new("1.0.0");
    let mut state = State::default();
    state.seen_manifests.insert(
        "alpha".into(),
        channels::SeenManifest {
            sequence: 5,
            sha256: "00".into(),
        },
    );
    state.save(&fx.paths().state()).unwrap();
    fx.assert_refused(fx.update(), "replayed");
}

#[test]
fn refuses_below_floor_and_downgrade() {
    let fx = Fixture::new("1.0.0");
    let mut m = Repo::current_manifest(&fx.repo, "alpha").unwrap().unwrap();
    m.version_floor = Some("2.0.0".into());
    m.sequence += 1;
    write_manifest(&fx.repo, &m, &fx.signing);
    fx.assert_refused(fx.update(), "below its own version_floor");

    let fx = Fixture::new("1.0.2");
    fx.assert_refused(fx.update(), "older than the booted version");
}

#[test]
fn refuses_payloads_that_differ() {
    // Same size, one byte flipped: the hash check fails after streaming, no entry.
    let fx = Fixture::new("1.0.0");
    let path = fx
        .repo
        .join("payloads/sha256")
        .join(fx.usr_payload_suffix());
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[1234] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    fx.assert_refused(fx.update(), "sha256 mismatch");

    // Shorter than declared.
    let fx = Fixture::new("1.0.0");
    let path = fx
        .repo
        .join("payloads/sha256")
        .join(fx.usr_payload_suffix());
    std::fs::write(&path, &fx.usr[..1000]).unwrap();
    fx.assert_refused(fx.update(), "ended after 1000 of");
}

#[test]
fn refuses_another_os_and_a_too_small_slot() {
    let fx = Fixture::new("1.0.0");
    let payloads = add_release(
        &fx.repo,
        "1.0.2",
        &fx.usr,
        &release_json("other", "1.0.2", SLOT_SIZE),
    );
    let mut m = Repo::current_manifest(&fx.repo, "alpha").unwrap().unwrap();
    (m.version, m.payloads, m.sequence) = ("1.0.2".into(), payloads, m.sequence + 1);
    write_manifest(&fx.repo, &m, &fx.signing);
    fx.assert_refused(fx.update(), "release is for OS \"other\"");

    let payloads = add_release(
        &fx.repo,
        "1.0.3",
        &fx.usr,
        &release_json("minimal", "1.0.3", SLOT_SIZE * 2),
    );
    (m.version, m.payloads, m.sequence) = ("1.0.3".into(), payloads, m.sequence + 1);
    write_manifest(&fx.repo, &m, &fx.signing);
    fx.assert_refused(fx.update(), "usr_partition_size needs 2097152 bytes");
}

#[test]
fn refuses_to_write_the_booted_partition() {
    let mut fx = Fixture::new("1.0.0");
    fx.host.devices[1] = SlotDevice {
        path: fx.host.devices[0].path.clone(),
        partuuid: UUID_B.into(),
    };
    fx.assert_refused(fx.update(), "it is the booted slot's partition");
}

#[test]
fn a_staged_entry_is_removed_before_the_slot_is_rewritten() {
    let fx = Fixture::new("1.0.0");
    fx.table()
        .stage(&entry(Slot::B, "0.9.0", None), b"k", b"i")
        .unwrap();
    let path = fx
        .repo
        .join("payloads/sha256")
        .join(fx.usr_payload_suffix());
    std::fs::write(&path, &fx.usr[..1000]).unwrap();
    fx.assert_refused(fx.update(), "ended after");
}

#[test]
fn update_is_refused_before_the_booted_slot_is_blessed() {
    let fx = Fixture::new("1.0.0");
    let mut table = fx.table();
    table
        .stage(&entry(Slot::A, "1.0.0", Some((2, 1))), b"k", b"i")
        .unwrap();
    fx.assert_refused(fx.update(), "not marked good yet");
    assert!(fx.server.log().is_empty(), "nothing fetched");
    assert!(fx.slot_b().iter().all(|b| *b == 0));
}

#[test]
fn rollback_is_detected_and_failed_version_not_retried() {
    // Booted 1.0.0 on A (unblessed); B holds 1.0.1 with no tries left: the loader fell back.
    let fx = Fixture::new("1.0.0");
    let mut table = fx.table();
    table
        .stage(&entry(Slot::A, "1.0.0", Some((2, 1))), b"k", b"i")
        .unwrap();
    table
        .stage(&entry(Slot::B, "1.0.1", Some((0, 3))), b"k", b"i")
        .unwrap();
    let keys = load_root_keys(fx.paths()).unwrap();
    let engine = fx.engine(&keys);
    let failed = engine.after_boot(NOW).unwrap().unwrap();
    assert_eq!(
        (failed.version.as_str(), failed.rolled_back_to.as_str()),
        ("1.0.1", "1.0.0")
    );
    let status = fx.status();
    assert_eq!(
        status.rollback.unwrap().message,
        "rolled back from 1.0.1 to 1.0.0"
    );
    assert_eq!(status.failed_versions, ["1.0.1"]);

    assert_eq!(
        engine
            .mark_good(NOW, Duration::ZERO, Duration::ZERO)
            .unwrap(),
        MarkGood::Blessed
    );
    assert_eq!(
        fx.table().entry(Slot::A).unwrap().file_name,
        "minimal-usr-a.conf"
    );
    assert_eq!(
        engine
            .mark_good(NOW, Duration::ZERO, Duration::ZERO)
            .unwrap(),
        MarkGood::AlreadyGood
    );
    assert_eq!(fx.state().failed_versions.len(), 1, "recorded once");
    fx.assert_refused_keep_entry(fx.update(), "failed to boot on this machine before");
}

impl Fixture {
    fn assert_refused_keep_entry(&self, result: Result<UpdateOutcome, EngineError>, want: &str) {
        let text = update_engine::http::error_chain(&result.expect_err("refused"));
        assert!(text.contains(want), "{text}");
        assert_eq!(self.status().current_op, Operation::ReportingErrorEvent);
    }
}

#[test]
fn health_gates_blessing() {
    let mut fx = Fixture::new("1.0.0");
    fx.table()
        .stage(&entry(Slot::A, "1.0.0", Some((3, 0))), b"k", b"i")
        .unwrap();
    fx.host.processes = vec!["init".into()];
    let keys = load_root_keys(fx.paths()).unwrap();
    let outcome = fx
        .engine(&keys)
        .mark_good(NOW, Duration::ZERO, Duration::ZERO)
        .unwrap();
    assert!(matches!(outcome, MarkGood::Unhealthy(r) if r.contains("getty")));

    fx.host.processes = vec!["agetty".into()];
    let check = fx.paths().health_dir("minimal").join("10-fails");
    write(&check, "#!/bin/sh\nexit 1\n");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&check, std::fs::Permissions::from_mode(0o755)).unwrap();
    let outcome = fx
        .engine(&keys)
        .mark_good(NOW, Duration::ZERO, Duration::ZERO)
        .unwrap();
    assert!(matches!(outcome, MarkGood::Unhealthy(r) if r.contains("10-fails")));
    assert!(fx.table().entry(Slot::A).unwrap().counter.is_some());

    write(&check, "#!/bin/sh\nexit 0\n");
    let outcome = fx
        .engine(&keys)
        .mark_good(NOW, Duration::ZERO, Duration::ZERO)
        .unwrap();
    assert_eq!(outcome, MarkGood::Blessed);
    assert!(fx.table().entry(Slot::A).unwrap().counter.is_none());
}

#[test]
fn daemon_reboots_an_unhealthy_slot_and_updates_a_healthy_one() {
    let mut fx = Fixture::new("1.0.0");
    fx.config.health_timeout_secs = 1;
    fx.table()
        .stage(&entry(Slot::A, "1.0.0", Some((3, 0))), b"k", b"i")
        .unwrap();
    fx.host.processes = vec![];
    let keys = load_root_keys(fx.paths()).unwrap();
    let mut slept = Vec::new();
    fx.engine(&keys)
        .daemon(
            &|| NOW,
            &mut |d| {
                slept.push(d);
                None
            },
            b"machine",
            Some(2),
        )
        .unwrap();
    assert_eq!(fx.host.reboots.load(Ordering::SeqCst), 1);
    assert!(slept.is_empty(), "no check on an unhealthy slot");
    assert_eq!(fx.table().entry(Slot::B), None);

    fx.host.processes = vec!["getty".into()];
    fx.engine(&keys)
        .daemon(
            &|| NOW,
            &mut |d| {
                slept.push(d);
                None
            },
            b"machine",
            Some(2),
        )
        .unwrap();
    assert_eq!(slept.len(), 2);
    assert!(
        slept.iter().all(|d| (3240..=3960).contains(&d.as_secs())),
        "{slept:?}"
    );
    assert_eq!(fx.table().entry(Slot::B).unwrap().version, "1.0.1");
}

#[test]
fn manual_rollback_marks_the_booted_entry_bad() {
    let fx = Fixture::new("1.0.0");
    let keys = load_root_keys(fx.paths()).unwrap();
    let engine = fx.engine(&keys);
    assert!(matches!(
        engine.rollback(false),
        Err(EngineError::NoFallback { .. })
    ));
    fx.table()
        .stage(&entry(Slot::B, "0.9.0", None), b"k", b"i")
        .unwrap();
    let r = engine.rollback(false).unwrap();
    assert_eq!(r.marked_bad, "minimal-usr-a+0-1.conf");
    assert_eq!(fx.table().preferred().unwrap().slot, Slot::B);
    assert_eq!(fx.host.reboots.load(Ordering::SeqCst), 0);
}

// ---- requests from the command line to the daemon ----

#[test]
fn the_daemon_checks_when_asked_and_answers_after_the_round() {
    let fx = Fixture::new("1.0.1");
    let keys = load_root_keys(fx.paths()).unwrap();
    let mut waits = Vec::new();
    fx.engine(&keys)
        .daemon(
            &|| NOW,
            &mut |d| {
                waits.push(d);
                if waits.len() > 1 {
                    return None;
                }
                // Up to date after the first round; then 1.0.2 comes out and someone asks.
                assert_eq!(fx.status().current_op, Operation::Idle);
                publish(&fx.repo, &fx.signing, "1.0.2", &usr_bytes(200_000, 3));
                Request::CheckNow.send(fx.paths(), "test").unwrap();
                Request::take(fx.paths())
            },
            b"machine",
            Some(2),
        )
        .unwrap();
    assert_eq!(waits.len(), 2);
    assert_eq!(fx.table().entry(Slot::B).unwrap().version, "1.0.2");
    assert_eq!(fx.status().current_op, Operation::UpdatedNeedReboot);
    assert!(!Request::CheckNow.is_pending(fx.paths()), "answered");
}

#[test]
fn the_daemon_follows_the_strategy_when_a_reboot_is_asked_for() {
    for (strategy, reboots) in [(RebootStrategy::Off, 0), (RebootStrategy::Reboot, 1)] {
        let mut fx = Fixture::new("1.0.1");
        fx.config.reboot_strategy = strategy;
        let keys = load_root_keys(fx.paths()).unwrap();
        let mut asked = false;
        fx.engine(&keys)
            .daemon(
                &|| NOW,
                &mut |_| {
                    if std::mem::replace(&mut asked, true) {
                        return None;
                    }
                    Request::RebootNeeded.send(fx.paths(), "test").unwrap();
                    Request::take(fx.paths())
                },
                b"machine",
                Some(2),
            )
            .unwrap();
        assert_eq!(
            fx.host.reboots.load(Ordering::SeqCst),
            reboots,
            "{strategy}"
        );
        assert_eq!(fx.table().entry(Slot::B), None, "nothing staged");
        assert!(!Request::RebootNeeded.is_pending(fx.paths()));
        let note = fx.status().reboot_note.unwrap_or_default();
        let want = match strategy {
            RebootStrategy::Off => "REBOOT_STRATEGY=off",
            _ => "rebooting: REBOOT_STRATEGY=reboot",
        };
        assert!(note.contains(want), "{strategy}: {note}");
    }
}

#[test]
fn update_engine_client_update_follows_the_daemon_to_the_staged_update() {
    let fx = Fixture::new("1.0.1");
    let keys = load_root_keys(fx.paths()).unwrap();
    let paths = fx.paths().clone();
    request::write_pid(&paths, std::process::id()).unwrap();
    let (first_round_over, rounds_over) = std::sync::mpsc::channel();
    std::thread::scope(|scope| {
        let daemon = scope.spawn(|| {
            let mut waits = 0;
            fx.engine(&keys).daemon(
                &|| NOW,
                &mut |d| {
                    waits += 1;
                    first_round_over.send(waits).unwrap();
                    if waits > 1 {
                        return None;
                    }
                    // The daemon's own wait, bounded so a failing test ends.
                    request::wait(
                        fx.paths(),
                        d.min(Duration::from_secs(60)),
                        Duration::from_millis(5),
                    )
                },
                b"machine",
                Some(2),
            )
        });
        assert_eq!(rounds_over.recv().unwrap(), 1, "up to date at start");
        publish(&fx.repo, &fx.signing, "1.0.2", &usr_bytes(200_000, 3));
        let said = client::ask_for_check(&paths).unwrap();
        assert!(said.contains("asked the update-engine daemon"), "{said}");
        let mut out = Vec::new();
        let code = client::follow(
            &paths,
            &mut out,
            &mut std::thread::sleep,
            Duration::from_millis(5),
        )
        .unwrap();
        daemon.join().unwrap().unwrap();
        let out = String::from_utf8(out).unwrap();
        assert_eq!(code, 0, "{out}");
        // Each change once, ending staged (with the note once the strategy has run).
        assert!(out.starts_with("LAST_CHECKED_TIME="), "{out}");
        assert!(
            out.contains(
                "PROGRESS=1.000000\nCURRENT_OP=UPDATE_STATUS_UPDATED_NEED_REBOOT\nNEW_VERSION=1.0.2\nNEW_SIZE=200000\n"
            ),
            "{out}"
        );
        let last = out.rsplit("LAST_CHECKED_TIME=").next().unwrap();
        assert!(last.contains("UPDATED_NEED_REBOOT"), "{out}");
    });
    assert_eq!(fx.table().entry(Slot::B).unwrap().version, "1.0.2");
    // Again: staged already, so no new check and done at once.
    assert!(client::ask_for_check(&paths)
        .unwrap()
        .contains("1.0.2 waits for a reboot"));
    let code = client::follow(&paths, &mut Vec::new(), &mut |_| {}, Duration::ZERO).unwrap();
    assert_eq!(code, 0);
}

// ---- an update.conf the engine cannot use ----

impl Fixture {
    /// Writes `/etc/coreos/update.conf` and reads the configuration again from the files.
    fn misconfigure(&mut self, coreos_conf: &str) {
        write(&self.paths().coreos_conf(), coreos_conf);
        self.config = Config::load(self.paths());
    }
}

#[test]
fn an_unusable_update_conf_leaves_the_machine_safe_and_says_why() {
    let mut fx = Fixture::new("1.0.0");
    // Freshly booted: the entry still counts tries.
    fx.table()
        .stage(&entry(Slot::A, "1.0.0", Some((2, 1))), b"k", b"i")
        .unwrap();
    fx.misconfigure(
        "REBOOT_STRATEGY=reboot\nLOCKSMITHD_REBOOT_WINDOW_START=Blursday 25:61\n\
         LOCKSMITHD_REBOOT_WINDOW_LENGTH=-1h\nCHECK_INTERVAL=soon\n",
    );
    assert_eq!(fx.config.problems.len(), 2, "{:?}", fx.config.problems);
    let keys = load_root_keys(fx.paths()).unwrap();
    let mut waits = Vec::new();
    fx.engine(&keys)
        .daemon(
            &|| NOW,
            &mut |d| {
                waits.push(d);
                // Someone asks for a check, then for a reboot.
                let r = [Request::CheckNow, Request::RebootNeeded][waits.len() - 1];
                r.send(fx.paths(), "test").unwrap();
                Request::take(fx.paths())
            },
            b"machine",
            Some(2),
        )
        .unwrap();
    // Safe: the booted slot is blessed; nothing was fetched, written or rebooted.
    assert!(fx.table().entry(Slot::A).unwrap().counter.is_none());
    assert_eq!(fx.server.log(), []);
    assert_eq!(fx.table().entry(Slot::B), None);
    assert_eq!(fx.host.reboots.load(Ordering::SeqCst), 0);
    assert_eq!(waits, [update_engine::lifecycle::CONFIG_POLL; 2]);
    // Both requests were answered, each saying why not.
    assert!(!Request::CheckNow.is_pending(fx.paths()));
    assert!(!Request::RebootNeeded.is_pending(fx.paths()));
    let status = fx.status();
    let file = fx.paths().coreos_conf().display().to_string();
    assert_eq!(
        status.config_errors,
        [
            format!("{file}: CHECK_INTERVAL=\"soon\": expected a positive number of seconds"),
            format!(
                "{file}: LOCKSMITHD_REBOOT_WINDOW_START=\"Blursday 25:61\": expected HH:MM or Day \
                 HH:MM, e.g. \"Thu 23:00\" (unknown day \"Blursday\" (Sun, Mon, … Sat))"
            ),
        ]
    );
    assert_eq!(status.current_op, Operation::ReportingErrorEvent);
    let error = status.last_error.clone().unwrap();
    assert!(
        error.starts_with("updates are off until update.conf is fixed: ")
            && error.contains("Blursday 25:61"),
        "{error}"
    );
    let note = status.reboot_note.clone().unwrap();
    assert!(
        note.starts_with("not rebooting until update.conf is fixed: ") && note.contains("soon"),
        "{note}"
    );
    assert_eq!(status.booted_slot_good, Some(true));
    // update_engine_client -status names them too.
    let plain = status.render_plain();
    assert!(
        plain.contains(&format!("\nCONFIG_ERROR={file}: CHECK_INTERVAL=\"soon\"")),
        "{plain}"
    );
    assert!(
        plain.contains("; updates are off until update.conf is fixed\n"),
        "{plain}"
    );
    // And so does a check or an update by hand, and locksmithctl reboot takes no lock.
    let err = fx.update().unwrap_err();
    assert!(
        matches!(&err, EngineError::BadConfig(p) if p.contains("Blursday 25:61")),
        "{err}"
    );
    assert_eq!(fx.server.log(), []);
    write(
        &fx.paths().machine_id(),
        "0123456789abcdef0123456789abcdef\n",
    );
    let err = update_engine::cli::locksmithctl::reboot(&fx.engine(&keys), Default::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("not rebooting until update.conf is fixed: "),
        "{err}"
    );
    let lock = update_engine::lock::reboot_lock::EtcdRebootLock::new(
        Default::default(),
        "0123456789abcdef0123456789abcdef",
    );
    let refused = fx
        .engine(&keys)
        .reboot_with_lock(&lock, "0123456789abcdef0123456789abcdef")
        .unwrap();
    assert!(
        matches!(&refused, update_engine::reboot::LockedReboot::Refused(why) if why.contains("Blursday")),
        "{refused:?}"
    );
    assert_eq!(fx.state().reboot_lock, None, "no attempt recorded");
    assert_eq!(fx.host.reboots.load(Ordering::SeqCst), 0);
}

#[test]
fn the_reboot_lock_goes_back_only_through_usable_lock_settings() {
    let mut fx = Fixture::new("1.0.1");
    let (url, log) = fleetlock_server(0);
    write(
        &fx.paths().machine_id(),
        "0123456789abcdef0123456789abcdef\n",
    );
    write(
        &fx.paths().overrides_conf(),
        format!("REBOOT_STRATEGY=fleetlock\nFLEETLOCK_URL={url}\n"),
    );
    let hold = |fx: &Fixture| {
        let mut state = fx.state();
        state.reboot_lock = Some(update_engine::lock::reboot_lock::LockRecord {
            kind: update_engine::lock::reboot_lock::LockKind::FleetLock,
            id: "0123456789abcdef0123456789abcdef".into(),
            acquired: true,
            uncertain: false,
        });
        state.save(&fx.paths().state()).unwrap();
    };
    hold(&fx);
    let keys = load_root_keys(fx.paths()).unwrap();

    // A bad window is not the lock's business: the lock goes back.
    fx.misconfigure(
        "LOCKSMITHD_REBOOT_WINDOW_START=Thu 23:00\nLOCKSMITHD_REBOOT_WINDOW_LENGTH=0\n",
    );
    fx.engine(&keys)
        .daemon(&|| NOW, &mut |_| None, b"machine", Some(0))
        .unwrap();
    assert_eq!(fx.state().reboot_lock, None);
    assert_eq!(log.lock().unwrap().len(), 1);
    assert_eq!(log.lock().unwrap()[0].0, "/v1/steady-state");

    // A bad FleetLock group: giving back in the default group would lose the record of the
    // hold in the real one, so the record stays and the status says why.
    hold(&fx);
    fx.misconfigure("FLEETLOCK_GROUP=a_b\n");
    fx.engine(&keys)
        .daemon(&|| NOW, &mut |_| None, b"machine", Some(1))
        .unwrap();
    assert!(fx.state().reboot_lock.is_some(), "still recorded");
    assert_eq!(
        log.lock().unwrap().len(),
        1,
        "the lock server was not asked"
    );
    let note = fx.status().reboot_note.unwrap();
    assert!(
        note.starts_with("not giving back the fleetlock reboot lock until update.conf is fixed")
            && note.contains("FLEETLOCK_GROUP=\"a_b\""),
        "{note}"
    );

    // The file is fixed while the daemon waits: it returns to start again on the new files...
    let mut waits = 0;
    fx.engine(&keys)
        .daemon(
            &|| NOW,
            &mut |_| {
                waits += 1;
                write(&fx.paths().coreos_conf(), "FLEETLOCK_GROUP=workers\n");
                None
            },
            b"machine",
            Some(5),
        )
        .unwrap();
    assert_eq!(waits, 1);
    assert!(fx.state().reboot_lock.is_some());
    // ...where it gives the lock back in the group the operator meant.
    fx.config = Config::load(fx.paths());
    assert_eq!(fx.config.problems, []);
    fx.engine(&keys)
        .daemon(&|| NOW, &mut |_| None, b"machine", Some(0))
        .unwrap();
    assert_eq!(fx.state().reboot_lock, None);
    let log = log.lock().unwrap().clone();
    assert_eq!(log.len(), 2);
    assert_eq!(
        log[1],
        (
            "/v1/steady-state".to_owned(),
            r#"{"client_params":{"id":"0123456789abcdef0123456789abcdef","group":"workers"}}"#
                .to_owned()
        )
    );
    assert_eq!(fx.status().reboot_note, None);
}
