//! A loopback static file server (real HTTP, `tiny_http`) for repository tests.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Serves a directory on 127.0.0.1 until dropped.
pub struct StaticServer {
    pub url: String,
    stop: Arc<AtomicBool>,
    /// Requests answered so far.
    pub hits: Arc<AtomicUsize>,
    /// Their paths, in order.
    paths: Arc<Mutex<Vec<String>>>,
    thread: Option<JoinHandle<()>>,
}

impl StaticServer {
    pub fn start(root: &Path) -> StaticServer {
        let server = tiny_http::Server::http("127.0.0.1:0").expect("bind loopback");
        let url = format!(
            "http://{}",
            server.server_addr().to_ip().expect("ip address")
        );
        let stop = Arc::new(AtomicBool::new(false));
        let hits = Arc::new(AtomicUsize::new(0));
        let paths = Arc::new(Mutex::new(Vec::new()));
        let root: PathBuf = root.to_path_buf();
        let (s, h, p) = (stop.clone(), hits.clone(), paths.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                let Ok(Some(req)) = server.recv_timeout(std::time::Duration::from_millis(100))
                else {
                    continue;
                };
                h.fetch_add(1, Ordering::SeqCst);
                p.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(req.url().to_string());
                let rel = req
                    .url()
                    .trim_start_matches('/')
                    .split('?')
                    .next()
                    .unwrap_or_default()
                    .to_string();
                let path = root.join(&rel);
                let resp = if rel.split('/').any(|c| c == "..") || !path.is_file() {
                    req.respond(tiny_http::Response::from_string("not found").with_status_code(404))
                } else {
                    let file = std::fs::File::open(&path).unwrap();
                    // With its length, never chunked (tiny_http chunks bodies over 32 KiB
                    // for HTTP/1.1 clients): the iPXE of QEMU's e1000e ROM boots nothing it
                    // got chunked.
                    req.respond(
                        tiny_http::Response::from_file(file).with_chunked_threshold(usize::MAX),
                    )
                };
                let _ = resp;
            }
        });
        StaticServer {
            url,
            stop,
            hits,
            paths,
            thread: Some(thread),
        }
    }

    /// The paths requested so far, in order.
    pub fn requests(&self) -> Vec<String> {
        self.paths.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Drop for StaticServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
