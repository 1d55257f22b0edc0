//! Loopback HTTP tests of [`AptRepo`] and [`HttpClient`]: each test builds a repository
//! directory (fake `.deb` bytes: this layer checks only size and sha256), serves it with a
//! `tiny_http` server on 127.0.0.1 in a thread of its own, and talks to it.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Cursor, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tiny_http::{Response, Server, StatusCode};

use super::*;

const SUITE: &str = "bookworm";
const PACKAGES: &str = "main/binary-amd64/Packages";

/// Retries at once, so that retry tests take milliseconds.
const FAST: Policy = Policy {
    attempts: 4,
    max_failures: 4,
    first_delay: Duration::from_millis(1),
    max_delay: Duration::from_millis(1),
    ..Policy::DOWNLOAD
};

fn client() -> HttpClient {
    HttpClient::with_retry(FAST).expect("HTTP client")
}

/// What the test server answers to one request.
struct Reply {
    status: u16,
    body: Vec<u8>,
    /// Chunked transfer encoding, no `Content-Length`.
    chunked: bool,
}

impl Reply {
    fn ok(body: Vec<u8>) -> Self {
        Self {
            status: 200,
            body,
            chunked: false,
        }
    }

    fn status(status: u16) -> Self {
        Self {
            status,
            body: Vec::new(),
            chunked: false,
        }
    }
}

/// One request the server saw: path and `User-Agent`.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    user_agent: String,
}

/// A tiny_http server on 127.0.0.1, answering from a handler in its own thread.
struct TestServer {
    url: String,
    server: Arc<Server>,
    thread: Option<JoinHandle<()>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl TestServer {
    fn start(mut handler: impl FnMut(&str) -> Reply + Send + 'static) -> Self {
        let server = Arc::new(Server::http("127.0.0.1:0").expect("binding 127.0.0.1"));
        let addr = server.server_addr().to_ip().expect("an IP listener");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let thread = {
            let (server, seen) = (server.clone(), seen.clone());
            thread::spawn(move || {
                while let Ok(request) = server.recv() {
                    let path = request.url().to_owned();
                    let user_agent = request
                        .headers()
                        .iter()
                        .find(|h| h.field.equiv("User-Agent"))
                        .map(|h| h.value.to_string())
                        .unwrap_or_default();
                    seen.lock().unwrap().push(Seen {
                        path: path.clone(),
                        user_agent,
                    });
                    let reply = handler(&path);
                    let len = (!reply.chunked).then_some(reply.body.len());
                    let response = Response::new(
                        StatusCode(reply.status),
                        vec![],
                        Cursor::new(reply.body),
                        len,
                        None,
                    )
                    .with_chunked_threshold(usize::MAX);
                    let _ = request.respond(response);
                }
            })
        };
        Self {
            url: format!("http://{addr}"),
            server,
            thread: Some(thread),
            seen,
        }
    }

    /// Serves the files under `root`; 404 for anything else.
    fn serve_dir(root: &Path) -> Self {
        let root = root.to_owned();
        Self::start(
            move |path| match fs::read(root.join(path.trim_start_matches('/'))) {
                Ok(bytes) => Reply::ok(bytes),
                Err(_) => Reply::status(404),
            },
        )
    }

    fn paths(&self) -> Vec<String> {
        let seen = self.seen.lock().unwrap();
        seen.iter().map(|s| s.path.clone()).collect()
    }

    fn stop(&mut self) {
        self.server.unblock();
        if let Some(thread) = self.thread.take() {
            thread.join().expect("server thread");
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Writes a repository for `debs` (name, version, bytes) under `root`, with `Packages` in each
/// of `suffixes` (`""`, `".gz"`, `".xz"`) listed in Release. Returns the candidates.
fn write_repo(root: &Path, debs: &[(&str, &str, &[u8])], suffixes: &[&str]) -> Vec<Candidate> {
    let mut entries = Vec::new();
    for (name, version, bytes) in debs {
        let filename = format!("pool/main/{}/{name}/{name}_{version}_amd64.deb", &name[..1]);
        write(&root.join(&filename), bytes);
        let cand = candidate(name, version, bytes, &filename);
        let extra = BTreeMap::from([("Depends".to_owned(), "libc6 (>= 2.34)".to_owned())]);
        entries.push((cand, extra));
    }
    let plain = render_packages(&entries).into_bytes();
    let files: Vec<(String, Vec<u8>)> = suffixes
        .iter()
        .map(|suffix| (format!("{PACKAGES}{suffix}"), compress(suffix, &plain)))
        .collect();
    let dist = root.join("dists").join(SUITE);
    for (path, content) in &files {
        write(&dist.join(path), content);
    }
    write(
        &dist.join("Release"),
        render_release(SUITE, &files).as_bytes(),
    );
    entries.into_iter().map(|(cand, _)| cand).collect()
}

fn candidate(name: &str, version: &str, bytes: &[u8], filename: &str) -> Candidate {
    Candidate {
        package: name.to_owned(),
        version: version.to_owned(),
        architecture: "amd64".to_owned(),
        size: bytes.len() as u64,
        sha256: hex::encode(Sha256::digest(bytes)),
        filename: filename.to_owned(),
    }
}

fn compress(suffix: &str, plain: &[u8]) -> Vec<u8> {
    match suffix {
        ".xz" => {
            let mut enc = liblzma::write::XzEncoder::new(Vec::new(), 6);
            enc.write_all(plain).unwrap();
            enc.finish().unwrap()
        }
        ".gz" => {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            enc.write_all(plain).unwrap();
            enc.finish().unwrap()
        }
        _ => plain.to_vec(),
    }
}

fn write(path: &Path, bytes: &[u8]) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, bytes).unwrap();
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

const DEBS: &[(&str, &str, &[u8])] = &[
    ("busybox", "1:1.35.0-4+b3", b"busybox deb bytes"),
    (
        "libc6",
        "2.36-9+deb12u7",
        b"libc6 deb bytes, a little longer",
    ),
];

fn index_with(suffixes: &[&str]) -> (Vec<Candidate>, Vec<Candidate>, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let want = write_repo(dir.path(), DEBS, suffixes);
    let server = TestServer::serve_dir(dir.path());
    let repo = AptRepo::new(&format!("{}/", server.url), SUITE, "main", "amd64");
    let got = repo.index(&client()).expect("index");
    (got, want, server.paths())
}

#[test]
fn index_prefers_xz() {
    let (got, want, paths) = index_with(&["", ".gz", ".xz"]);
    assert_eq!(got, want);
    let release = format!("/dists/{SUITE}/Release");
    assert_eq!(paths, [release, format!("/dists/{SUITE}/{PACKAGES}.xz")]);
}

#[test]
fn index_gz_only() {
    let (got, want, paths) = index_with(&[".gz"]);
    assert_eq!(got, want);
    assert_eq!(paths[1], format!("/dists/{SUITE}/{PACKAGES}.gz"));
}

#[test]
fn index_plain_only() {
    let (got, want, paths) = index_with(&[""]);
    assert_eq!(got, want);
    assert_eq!(paths[1], format!("/dists/{SUITE}/{PACKAGES}"));
}

#[test]
fn index_falls_back_when_a_listed_file_is_not_served() {
    // Debian's own Release lists a plain Packages it does not serve; the reverse happens too.
    let dir = tempfile::tempdir().unwrap();
    let want = write_repo(dir.path(), DEBS, &["", ".xz"]);
    fs::remove_file(dir.path().join(format!("dists/{SUITE}/{PACKAGES}.xz"))).unwrap();
    let server = TestServer::serve_dir(dir.path());
    let repo = AptRepo::new(&server.url, SUITE, "main", "amd64");
    assert_eq!(repo.index(&client()).unwrap(), want);
}

#[test]
fn index_for_an_unlisted_architecture() {
    let dir = tempfile::tempdir().unwrap();
    write_repo(dir.path(), DEBS, &[".xz"]);
    let server = TestServer::serve_dir(dir.path());
    let repo = AptRepo::new(&server.url, SUITE, "main", "riscv64");
    let err = repo.index(&client()).unwrap_err();
    assert!(
        matches!(&err, AptError::NoIndex { path, .. } if path == "main/binary-riscv64/Packages"),
        "{err:?}"
    );
}

#[test]
fn index_file_that_does_not_match_release() {
    struct Case {
        name: &'static str,
        tamper: fn(&mut Vec<u8>),
        want: fn(&AptError) -> bool,
    }
    let cases = [
        Case {
            name: "flipped byte",
            tamper: |bytes| bytes[10] ^= 1,
            want: |e| {
                matches!(e, AptError::IndexHash { url, expected, actual }
                if url.ends_with("Packages.xz") && expected != actual && actual.len() == 64)
            },
        },
        Case {
            name: "truncated",
            tamper: |bytes| bytes.truncate(bytes.len() - 1),
            want: |e| {
                matches!(e, AptError::IndexSize { url, expected, actual }
                if url.ends_with("Packages.xz") && *actual + 1 == *expected)
            },
        },
        Case {
            name: "longer",
            tamper: |bytes| bytes.push(0),
            want: |e| matches!(e, AptError::TooLong { url, .. } if url.ends_with("Packages.xz")),
        },
    ];
    for case in cases {
        let dir = tempfile::tempdir().unwrap();
        write_repo(dir.path(), DEBS, &[".xz"]);
        let path = dir.path().join(format!("dists/{SUITE}/{PACKAGES}.xz"));
        let mut bytes = fs::read(&path).unwrap();
        (case.tamper)(&mut bytes);
        fs::write(&path, bytes).unwrap();
        let server = TestServer::serve_dir(dir.path());
        let repo = AptRepo::new(&server.url, SUITE, "main", "amd64");
        let err = repo.index(&client()).unwrap_err();
        assert!((case.want)(&err), "case {}: {err:?}", case.name);
    }
}

#[test]
fn fetch_deb_then_from_cache_with_the_server_stopped() {
    let repo_dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let cands = write_repo(repo_dir.path(), DEBS, &[".xz"]);
    let mut server = TestServer::serve_dir(repo_dir.path());
    let repo = AptRepo::new(&server.url, SUITE, "main", "amd64");
    let client = client();

    let path = repo
        .fetch_deb(&client, &cands[0], cache.path(), false)
        .unwrap();
    let want_path = cache.path().join(format!("sha256/{}.deb", cands[0].sha256));
    assert_eq!(path, want_path);
    assert_eq!(fs::read(&path).unwrap(), DEBS[0].2);
    assert_eq!(
        files_under(cache.path()),
        std::slice::from_ref(&want_path),
        "no temp file left"
    );
    let seen = server.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].user_agent, USER_AGENT);

    server.stop();
    let again = repo
        .fetch_deb(&client, &cands[0], cache.path(), true)
        .unwrap();
    assert_eq!(again, want_path);
}

#[test]
fn corrupt_cache_entry_is_downloaded_again() {
    let repo_dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let cands = write_repo(repo_dir.path(), DEBS, &[".xz"]);
    let server = TestServer::serve_dir(repo_dir.path());
    let repo = AptRepo::new(&server.url, SUITE, "main", "amd64");
    let cached = cache.path().join(format!("sha256/{}.deb", cands[0].sha256));
    // Same size, other bytes: only the hash tells.
    write(&cached, &vec![b'x'; DEBS[0].2.len()]);

    let path = repo
        .fetch_deb(&client(), &cands[0], cache.path(), false)
        .unwrap();
    assert_eq!(fs::read(path).unwrap(), DEBS[0].2);
    assert_eq!(server.paths().len(), 1);
}

/// A candidate for `bytes` served by `handler` at `/pool/a.deb`, fetched into a fresh cache.
fn fetch_served(
    cand_bytes: &[u8],
    handler: impl FnMut(&str) -> Reply + Send + 'static,
) -> (Result<PathBuf, AptError>, Vec<PathBuf>, Vec<String>) {
    let cache = tempfile::tempdir().unwrap();
    let server = TestServer::start(handler);
    let cand = candidate("busybox", "1.0-1", cand_bytes, "pool/a.deb");
    let repo = AptRepo::new(&server.url, SUITE, "main", "amd64");
    let result = repo.fetch_deb(&client(), &cand, cache.path(), false);
    (result, files_under(cache.path()), server.paths())
}

#[test]
fn fetch_deb_hash_mismatch_leaves_nothing() {
    let (result, files, _) =
        fetch_served(b"the real bytes", |_| Reply::ok(b"other bytes!!!".to_vec()));
    let err = result.unwrap_err();
    let want_expected = hex::encode(Sha256::digest(b"the real bytes"));
    let want_actual = hex::encode(Sha256::digest(b"other bytes!!!"));
    assert!(
        matches!(&err, AptError::HashMismatch { package, expected, actual, .. }
            if package == "busybox" && *expected == want_expected && *actual == want_actual),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains(&want_expected) && message.contains(&want_actual));
    assert_eq!(files, Vec::<PathBuf>::new());
}

#[test]
fn fetch_deb_refuses_a_longer_body() {
    for chunked in [false, true] {
        let (result, files, paths) = fetch_served(b"short", move |_| Reply {
            status: 200,
            body: vec![b'x'; 100_000],
            chunked,
        });
        let err = result.unwrap_err();
        assert!(
            matches!(err, AptError::TooLong { limit: 5, .. }),
            "chunked {chunked}: {err:?}"
        );
        assert_eq!(files, Vec::<PathBuf>::new());
        assert_eq!(paths.len(), 1, "not retried");
    }
}

#[test]
fn fetch_deb_retries_server_errors() {
    let mut calls = 0;
    let (result, files, paths) = fetch_served(b"deb", move |_| {
        calls += 1;
        if calls <= 2 {
            Reply::status(500)
        } else {
            Reply::ok(b"deb".to_vec())
        }
    });
    let path = result.unwrap();
    assert_eq!(files, [path]);
    assert_eq!(paths.len(), 3);
}

#[test]
fn fetch_deb_gives_up_after_the_last_attempt() {
    let (result, _, paths) = fetch_served(b"deb", |_| Reply::status(503));
    let err = result.unwrap_err();
    assert!(
        matches!(&err, AptError::GaveUp { attempts: 4, source, .. }
            if matches!(**source, AptError::Status { status: 503, .. })),
        "{err:?}"
    );
    assert_eq!(paths.len(), 4);
}

#[test]
fn fetch_deb_404_says_to_relock() {
    let (result, files, paths) = fetch_served(b"deb", |_| Reply::status(404));
    let message = result.unwrap_err().to_string();
    assert!(
        message.contains("busybox 1.0-1 is no longer served by"),
        "{message}"
    );
    assert!(message.contains("/pool/a.deb"), "{message}");
    assert!(
        message.contains("re-lock with `image-builder lock`"),
        "{message}"
    );
    assert_eq!(files, Vec::<PathBuf>::new());
    assert_eq!(paths.len(), 1, "404 is not retried");
}

#[test]
fn other_client_errors_fail_at_once() {
    let (result, _, paths) = fetch_served(b"deb", |_| Reply::status(403));
    let err = result.unwrap_err();
    assert!(
        matches!(err, AptError::Status { status: 403, .. }),
        "{err:?}"
    );
    assert!(
        err.to_string().ends_with("/pool/a.deb: HTTP 403 Forbidden"),
        "{err}"
    );
    assert_eq!(paths.len(), 1);
}

/// A raw TCP server that answers every request with `Content-Length: declared` but only `body`,
/// then closes the connection (tiny_http keeps connections open, so it cannot do this).
struct TruncatingServer {
    url: String,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<usize>>,
}

impl TruncatingServer {
    fn start(declared: usize, body: &'static [u8]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            thread::spawn(move || {
                let mut served = 0;
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(mut stream) = stream else { continue };
                    read_request_head(&mut stream);
                    let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {declared}\r\n\r\n");
                    let _ = stream.write_all(head.as_bytes());
                    let _ = stream.write_all(body);
                    served += 1;
                }
                served
            })
        };
        Self {
            url,
            stop,
            thread: Some(thread),
        }
    }

    /// Stops the server and returns how many responses it sent.
    fn stop(&mut self) -> usize {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect(self.url.trim_start_matches("http://"));
        self.thread.take().map_or(0, |t| t.join().unwrap())
    }
}

impl Drop for TruncatingServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Reads up to the blank line ending a request's headers, so that closing the socket does not
/// reset the connection before the client reads the response.
fn read_request_head(stream: &mut TcpStream) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
}

#[test]
fn fetch_deb_truncated_body_is_retried_then_fails() {
    let cache = tempfile::tempdir().unwrap();
    let mut server = TruncatingServer::start(1000, b"only ten b");
    let mut cand = candidate("busybox", "1.0-1", b"", "pool/a.deb");
    cand.size = 1000;
    let repo = AptRepo::new(&server.url, SUITE, "main", "amd64");
    let client = HttpClient::with_retry(Policy {
        attempts: 2,
        max_failures: 2,
        first_delay: Duration::ZERO,
        ..Policy::DOWNLOAD
    })
    .unwrap();
    let err = repo
        .fetch_deb(&client, &cand, cache.path(), false)
        .unwrap_err();
    assert!(
        matches!(&err, AptError::GaveUp { attempts: 2, source, .. }
            if matches!(**source, AptError::Body { .. })),
        "{err:?}"
    );
    assert_eq!(server.stop(), 2);
    assert_eq!(files_under(cache.path()), Vec::<PathBuf>::new());
}

#[test]
fn fetch_deb_rejects_a_sha256_that_is_not_a_file_name() {
    let cache = tempfile::tempdir().unwrap();
    let mut cand = candidate("evil", "1", b"x", "pool/x.deb");
    cand.sha256 = "../../etc/passwd".to_owned();
    let repo = AptRepo::new("http://127.0.0.1:9", SUITE, "main", "amd64");
    let err = repo
        .fetch_deb(&client(), &cand, cache.path(), false)
        .unwrap_err();
    assert!(
        matches!(
            err,
            AptError::BadField {
                field: "SHA256",
                ..
            }
        ),
        "{err:?}"
    );
}
