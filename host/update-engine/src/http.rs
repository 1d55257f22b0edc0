//! The channel client: GETs repository files from `SERVER` with one written-down retry policy,
//! and streams payloads with resume.
//!
//! Retry policy: the workspace's one policy ([`util::retry`]), with [`Policy::CHANNEL`]'s bounds
//! by default: a request is retried on connection errors, timeouts, a body that breaks off, and
//! the statuses 408, 429 and 5xx, 5 s apart; it gives up after 12 failures without a byte of
//! progress in between (about a minute of waiting) or 100 failures in all for one file. Other
//! statuses (403, 404, ...) fail at once.
//! A payload download that breaks off resumes with `Range: bytes=<received>-`, continuing the
//! same sha256; a server that answers a range with 200 has the bytes already received skipped.
//! Proxies come from the environment (`HTTPS_PROXY`, `HTTP_PROXY`, `NO_PROXY`: reqwest's default).
//! Never more bytes than declared are read: documents are bounded by [`MAX_DOCUMENT_BYTES`],
//! payloads by their [`PayloadRef`] size ([`VerifyingReader`]).
//!
//! Speed: the client drives reqwest's async API on its own current-thread runtime, so body
//! chunks arrive in the calling thread (no hand-off between threads per chunk), and a payload
//! streams through two threads: this one receives and hashes, a writer thread writes
//! [`CHUNK_BYTES`] buffers, [`BUFFERS`] of them in flight. The policy's `connect_timeout` bounds the
//! connect, its `timeout` the wait for the response head and the wait for each body chunk: a slow but moving download never
//! times out, a stalled one does.

use std::io::{self, Read, Write};
use std::sync::{mpsc, Arc};

use bytes::Bytes;
use channels::{PayloadError, PayloadRef, VerifyingReader};
use reqwest::{Response, StatusCode};
use util::retry::Backoff;

/// Largest keys.json, manifest or signature accepted.
pub const MAX_DOCUMENT_BYTES: u64 = 1 << 20; // 1 MiB
/// Bytes per write when streaming a payload.
pub const CHUNK_BYTES: usize = 1 << 20; // 1 MiB
/// Payload buffers in flight between the receiving and the writing thread.
pub const BUFFERS: usize = 4;

pub use util::retry::{retryable_status, Policy};

/// A download failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The client could not be built (TLS setup).
    #[error("HTTP client: {0}")]
    Client(String),
    /// A status that is not retried, or a retried one at the end.
    #[error("GET {url}: HTTP {status}")]
    Status {
        /// The URL.
        url: String,
        /// The status.
        status: u16,
    },
    /// Retries exhausted.
    #[error("GET {url}: giving up after {failures} failures; last: {last}")]
    GaveUp {
        /// The URL.
        url: String,
        /// Failures counted.
        failures: u32,
        /// The last failure.
        last: String,
    },
    /// A document larger than [`MAX_DOCUMENT_BYTES`].
    #[error("GET {url}: more than {limit} bytes")]
    TooLarge {
        /// The URL.
        url: String,
        /// The limit.
        limit: u64,
    },
    /// A payload whose bytes do not match the manifest.
    #[error("{name}: {source}")]
    Payload {
        /// The payload's name.
        name: String,
        /// What is wrong.
        source: PayloadError,
    },
    /// A 206 for another range than asked.
    #[error("GET {url}: asked for bytes from {asked}, got Content-Range {got:?}")]
    BadRange {
        /// The URL.
        url: String,
        /// The offset asked for.
        asked: u64,
        /// The header received.
        got: String,
    },
    /// Writing the received bytes failed.
    #[error("writing {name}: {source}")]
    Write {
        /// The payload's name.
        name: String,
        /// The cause.
        source: io::Error,
    },
}

/// A client for one repository base URL.
#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    http: reqwest::Client,
    runtime: Arc<tokio::runtime::Runtime>,
    policy: Policy,
}

/// Counts failures of one file against the policy, sleeping between them.
struct Failures<'a> {
    backoff: Backoff,
    url: &'a str,
    /// Bytes arrived since the last failure.
    progress: bool,
}

impl Failures<'_> {
    fn failed(&mut self, what: String) -> Result<(), FetchError> {
        match self.backoff.failed(std::mem::take(&mut self.progress)) {
            Some(delay) => {
                std::thread::sleep(delay);
                Ok(())
            }
            None => Err(FetchError::GaveUp {
                url: self.url.to_owned(),
                failures: self.backoff.failures(),
                last: what,
            }),
        }
    }
    fn progressed(&mut self) {
        self.progress = true;
    }
}

/// What [`Client::open`] got.
enum Opened {
    /// A body starting at the offset asked for, after skipping `skip` bytes.
    Body { response: Response, skip: u64 },
    /// The server has no bytes at that offset (416).
    End,
}

impl Client {
    /// A client for the repository at `base` (`http://host:port/path`, no trailing slash needed).
    pub fn new(base: &str, policy: Policy) -> Result<Client, FetchError> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("update-engine/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(policy.connect_timeout)
            .build()
            .map_err(|e| FetchError::Client(error_chain(&e)))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| FetchError::Client(format!("runtime: {e}")))?;
        Ok(Client {
            base: base.trim_end_matches('/').to_owned(),
            http,
            runtime: Arc::new(runtime),
            policy,
        })
    }

    /// The URL of repository path `rel`.
    pub fn url(&self, rel: &str) -> String {
        format!("{}/{}", self.base, rel.trim_start_matches('/'))
    }

    /// One GET from `offset`, retried per the policy until a usable response.
    fn open(&self, url: &str, offset: u64, failures: &mut Failures) -> Result<Opened, FetchError> {
        loop {
            let mut req = self.http.get(url);
            if offset > 0 {
                req = req.header(reqwest::header::RANGE, format!("bytes={offset}-"));
            }
            let sent = self
                .runtime
                .block_on(async { tokio::time::timeout(self.policy.timeout, req.send()).await });
            let resp = match sent {
                Ok(Ok(r)) => r,
                Ok(Err(e)) => {
                    failures.failed(error_chain(&e))?;
                    continue;
                }
                Err(_) => {
                    failures.failed(format!(
                        "no response within {} s",
                        self.policy.timeout.as_secs_f32()
                    ))?;
                    continue;
                }
            };
            let status = resp.status();
            if status == StatusCode::RANGE_NOT_SATISFIABLE && offset > 0 {
                return Ok(Opened::End);
            }
            if retryable_status(status.as_u16()) {
                failures.failed(format!("HTTP {status}"))?;
                continue;
            }
            if status == StatusCode::OK {
                return Ok(Opened::Body {
                    response: resp,
                    skip: offset,
                });
            }
            if status == StatusCode::PARTIAL_CONTENT && offset > 0 {
                let got = resp
                    .headers()
                    .get(reqwest::header::CONTENT_RANGE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                if !got.starts_with(&format!("bytes {offset}-")) {
                    return Err(FetchError::BadRange {
                        url: url.to_owned(),
                        asked: offset,
                        got,
                    });
                }
                return Ok(Opened::Body {
                    response: resp,
                    skip: 0,
                });
            }
            return Err(FetchError::Status {
                url: url.to_owned(),
                status: status.as_u16(),
            });
        }
    }

    /// GETs a repository document (keys.json, a manifest, a signature), at most
    /// [`MAX_DOCUMENT_BYTES`].
    pub fn get_document(&self, rel: &str) -> Result<Vec<u8>, FetchError> {
        let url = self.url(rel);
        let mut failures = self.failures(&url);
        'request: loop {
            let Opened::Body { mut response, .. } = self.open(&url, 0, &mut failures)? else {
                unreachable!("416 is only handled for ranged requests");
            };
            let mut body = Vec::new();
            loop {
                match self.next_chunk(&mut response) {
                    Ok(Some(chunk)) => {
                        if (body.len() + chunk.len()) as u64 > MAX_DOCUMENT_BYTES {
                            return Err(FetchError::TooLarge {
                                url,
                                limit: MAX_DOCUMENT_BYTES,
                            });
                        }
                        body.extend_from_slice(&chunk);
                    }
                    Ok(None) => return Ok(body),
                    Err(e) => {
                        failures.failed(error_chain(&e))?;
                        continue 'request;
                    }
                }
            }
        }
    }

    /// The next chunk of a body (`None` at its end), waiting at most the policy's timeout.
    fn next_chunk(&self, response: &mut Response) -> io::Result<Option<Bytes>> {
        match self
            .runtime
            .block_on(async { tokio::time::timeout(self.policy.timeout, response.chunk()).await })
        {
            Ok(Ok(chunk)) => Ok(chunk),
            Ok(Err(e)) => Err(io::Error::other(error_chain(&e))),
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no bytes for {} s", self.policy.timeout.as_secs_f32()),
            )),
        }
    }

    fn failures<'a>(&'a self, url: &'a str) -> Failures<'a> {
        Failures {
            backoff: self.policy.start(),
            url,
            progress: false,
        }
    }

    /// GETs payload `name` into memory, verified against `payload`.
    pub fn get_payload(&self, name: &str, payload: &PayloadRef) -> Result<Vec<u8>, FetchError> {
        let mut out = Vec::with_capacity(usize::try_from(payload.size).unwrap_or(0).min(1 << 28));
        self.stream_payload(name, payload, &mut out, &mut |_| {})?;
        Ok(out)
    }

    /// Payload `name`'s bytes as a reader, resuming after interruptions with the same retry
    /// policy, bounded by `payload`'s size but **not verified**: wrap it in a
    /// [`VerifyingReader`] (the installer verifies while it decompresses). Errors are
    /// `io::Error`s wrapping a [`FetchError`].
    pub fn payload_reader<'a>(
        &'a self,
        name: &'a str,
        payload: &'a PayloadRef,
        url: &'a str,
    ) -> impl Read + 'a {
        self.resuming_body(name, payload, url)
    }

    /// A download of payload `name` from `url` that resumes where it was cut.
    fn resuming_body<'a>(
        &'a self,
        name: &'a str,
        payload: &'a PayloadRef,
        url: &'a str,
    ) -> ResumingBody<'a> {
        ResumingBody {
            client: self,
            url,
            name,
            payload,
            offset: 0,
            skip: 0,
            response: None,
            pending: Bytes::new(),
            failures: self.failures(url),
        }
    }

    /// Streams payload `name` into `out`, verifying size and sha256 on the way and resuming
    /// after interruptions. `progress` gets the bytes written so far. On success every byte
    /// written verified; on error `out` may hold a prefix.
    pub fn stream_payload(
        &self,
        name: &str,
        payload: &PayloadRef,
        out: &mut (impl Write + Send),
        progress: &mut dyn FnMut(u64),
    ) -> Result<(), FetchError> {
        let url = self.url(&payload.path());
        let body = self.resuming_body(name, payload, &url);
        let mut reader = VerifyingReader::new(body, payload);
        let write_error = |source| FetchError::Write {
            name: name.to_owned(),
            source,
        };
        // Full buffers go to the writer; it sends them back (with their length) once written.
        let (full_tx, full_rx) = mpsc::sync_channel::<Vec<u8>>(BUFFERS);
        let (done_tx, done_rx) = mpsc::channel::<Vec<u8>>();
        std::thread::scope(|scope| {
            let writer = scope.spawn(move || -> io::Result<()> {
                for buf in full_rx {
                    out.write_all(&buf)?;
                    if done_tx.send(buf).is_err() {
                        break;
                    }
                }
                Ok(())
            });
            let mut written = 0u64;
            let mut spare: Vec<Vec<u8>> = (0..BUFFERS).map(|_| vec![0u8; CHUNK_BYTES]).collect();
            let mut account = |buf: Vec<u8>, spare: &mut Vec<Vec<u8>>| {
                written += buf.len() as u64;
                progress(written);
                spare.push(buf);
            };
            let read_result = loop {
                let mut buf = match spare.pop() {
                    Some(buf) => buf,
                    None => match done_rx.recv() {
                        Ok(buf) => {
                            account(buf, &mut spare);
                            continue;
                        }
                        // The writer stopped: its error is reported below.
                        Err(_) => break Ok(()),
                    },
                };
                while let Ok(done) = done_rx.try_recv() {
                    account(done, &mut spare);
                }
                buf.resize(CHUNK_BYTES, 0);
                let filled = match fill(&mut reader, &mut buf) {
                    Ok(n) => n,
                    Err(e) => break Err(read_error(name, e)),
                };
                if filled == 0 {
                    break Ok(());
                }
                buf.truncate(filled);
                if full_tx.send(buf).is_err() {
                    break Ok(());
                }
            };
            drop(full_tx);
            let write_result = writer
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("writer thread panicked")));
            for done in done_rx.try_iter() {
                account(done, &mut spare);
            }
            read_result?;
            write_result.map_err(write_error)
        })
    }
}

/// Reads until `buf` is full or the reader ends; the bytes read.
pub(crate) fn fill(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Maps an error out of a [`VerifyingReader`] over a [`ResumingBody`] back to what it was.
fn read_error(name: &str, e: io::Error) -> FetchError {
    if let Some(p) = PayloadError::from_io(&e) {
        return FetchError::Payload {
            name: name.to_owned(),
            source: p.clone(),
        };
    }
    match e.into_inner().map(|inner| inner.downcast::<FetchError>()) {
        Some(Ok(fetch)) => *fetch,
        Some(Err(other)) => FetchError::Client(other.to_string()),
        None => FetchError::Client("read failed".into()),
    }
}

/// A payload body that reconnects with `Range` when the connection breaks.
struct ResumingBody<'a> {
    client: &'a Client,
    url: &'a str,
    name: &'a str,
    payload: &'a PayloadRef,
    offset: u64,
    skip: u64,
    response: Option<Response>,
    /// Received bytes not yet handed out.
    pending: Bytes,
    failures: Failures<'a>,
}

impl ResumingBody<'_> {
    fn connect(&mut self) -> io::Result<bool> {
        match self.client.open(self.url, self.offset, &mut self.failures) {
            Ok(Opened::Body { response, skip }) => {
                let remaining = self.payload.size.saturating_sub(self.offset);
                if let Some(len) = response.content_length() {
                    // Refuse before reading a byte of a body announced longer than declared.
                    if len.saturating_sub(skip) > remaining {
                        return Err(io::Error::other(FetchError::Payload {
                            name: self.name.to_owned(),
                            source: PayloadError::TooLong {
                                sha256: self.payload.sha256.clone(),
                                expected: self.payload.size,
                            },
                        }));
                    }
                }
                self.response = Some(response);
                self.skip = skip;
                Ok(true)
            }
            Ok(Opened::End) => Ok(false),
            Err(e) => Err(io::Error::other(e)),
        }
    }
}

impl Read for ResumingBody<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if !self.pending.is_empty() {
                let n = self.pending.len().min(buf.len());
                buf[..n].copy_from_slice(&self.pending.split_to(n));
                self.offset += n as u64;
                return Ok(n);
            }
            if self.response.is_none() && !self.connect()? {
                return Ok(0);
            }
            let Some(response) = self.response.as_mut() else {
                return Ok(0);
            };
            match self.client.next_chunk(response) {
                Ok(Some(mut chunk)) => {
                    if !chunk.is_empty() {
                        self.failures.progressed();
                    }
                    // A 200 answer to a ranged request: drop what we already have.
                    let dropped = (chunk.len() as u64).min(self.skip);
                    self.skip -= dropped;
                    self.pending = chunk.split_off(dropped as usize);
                }
                Ok(None) => return Ok(0),
                Err(e) => {
                    self.response = None;
                    self.failures
                        .failed(format!(
                            "body broke off at byte {}: {}",
                            self.offset,
                            error_chain(&e)
                        ))
                        .map_err(io::Error::other)?;
                }
            }
        }
    }
}

/// `error: cause: cause` on one line.
pub use util::error::chain as error_chain;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let c = Client::new("http://h:1/repo/", Policy::CHANNEL).unwrap();
        assert_eq!(c.url("/keys.json"), "http://h:1/repo/keys.json");
        assert_eq!(
            c.url("channels/a/manifest.json"),
            "http://h:1/repo/channels/a/manifest.json"
        );
    }
}
