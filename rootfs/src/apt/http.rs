//! The build side's HTTP client: blocking GETs under the workspace's one retry policy
//! ([`util::retry`]; [`Policy::DOWNLOAD`] unless told otherwise).
//!
//! Proxies come from the environment (`HTTP_PROXY`, `HTTPS_PROXY`, `NO_PROXY`, as reqwest reads
//! them by default); every request says `User-Agent: image-builder/<version>`.

use std::io::{self, Read};
use std::thread;

use reqwest::blocking::{Client, Response};
use reqwest::StatusCode;

use super::AptError;

/// `User-Agent` of every request.
pub const USER_AGENT: &str = concat!("image-builder/", env!("CARGO_PKG_VERSION"));
pub use util::retry::Policy;

/// A blocking HTTP client with a retry [`Policy`]; cheap to clone.
#[derive(Debug, Clone)]
pub struct HttpClient {
    inner: Client,
    retry: Policy,
}

/// A failed attempt, and whether another one may succeed.
pub(super) struct Failure {
    error: AptError,
    retry: bool,
}

impl From<AptError> for Failure {
    /// Errors are final unless made with [`Failure::transient`].
    fn from(error: AptError) -> Self {
        Self {
            error,
            retry: false,
        }
    }
}

impl Failure {
    fn transient(error: AptError) -> Self {
        Self { error, retry: true }
    }
}

impl HttpClient {
    /// A client with [`Policy::DOWNLOAD`].
    pub fn new() -> Result<Self, AptError> {
        Self::with_retry(Policy::DOWNLOAD)
    }

    /// A client with another retry policy (tests shorten the waits).
    pub fn with_retry(retry: Policy) -> Result<Self, AptError> {
        let inner = Client::builder()
            .user_agent(USER_AGENT)
            .connect_timeout(retry.connect_timeout)
            .timeout(retry.timeout)
            .build()
            .map_err(AptError::Client)?;
        Ok(Self { inner, retry })
    }

    /// The retry policy of this client.
    pub fn retry_policy(&self) -> Policy {
        self.retry
    }

    /// The whole body of `url`, refusing more than `limit` bytes.
    pub fn get_bytes(&self, url: &str, limit: u64) -> Result<Vec<u8>, AptError> {
        self.get_with(url, |response| {
            let mut out = Vec::new();
            read_body(url, response, limit, |chunk| {
                out.extend_from_slice(chunk);
                Ok(())
            })?;
            Ok(out)
        })
    }

    /// GETs `url` and hands a successful response to `on_success`, retrying both the request
    /// and `on_success`'s transient failures under the retry policy.
    ///
    /// A non-success status is [`AptError::Status`]; when the retries run out, the last error
    /// is wrapped in [`AptError::GaveUp`].
    pub(super) fn get_with<T>(
        &self,
        url: &str,
        mut on_success: impl FnMut(Response) -> Result<T, Failure>,
    ) -> Result<T, AptError> {
        let mut backoff = self.retry.start();
        loop {
            let failure = match self.inner.get(url).send() {
                Ok(response) if response.status().is_success() => match on_success(response) {
                    Ok(value) => return Ok(value),
                    Err(failure) => failure,
                },
                Ok(response) => status_failure(url, response.status()),
                Err(source) => Failure {
                    retry: is_transient(&source),
                    error: AptError::Transport {
                        url: url.to_owned(),
                        source,
                    },
                },
            };
            if !failure.retry {
                return Err(failure.error);
            }
            match backoff.failed(false) {
                Some(delay) => thread::sleep(delay),
                None => {
                    return Err(AptError::GaveUp {
                        url: url.to_owned(),
                        attempts: backoff.failures(),
                        source: Box::new(failure.error),
                    })
                }
            }
        }
    }
}

fn status_failure(url: &str, status: StatusCode) -> Failure {
    let status = status.as_u16();
    Failure {
        retry: util::retry::retryable_status(status),
        error: AptError::Status {
            url: url.to_owned(),
            status,
        },
    }
}

/// Connection errors and timeouts; not bad URLs, redirect loops and the like.
fn is_transient(err: &reqwest::Error) -> bool {
    err.is_connect() || err.is_timeout() || err.is_request() || err.is_body()
}

/// Streams the body of `response` into `sink`, returning its length.
///
/// Fails as soon as the body (or its announced `Content-Length`) passes `limit` bytes; a read
/// error (connection reset, body cut short, timeout) is transient, an error of `sink` final.
pub(super) fn read_body(
    url: &str,
    mut response: Response,
    limit: u64,
    mut sink: impl FnMut(&[u8]) -> Result<(), AptError>,
) -> Result<u64, Failure> {
    let too_long = || AptError::TooLong {
        url: url.to_owned(),
        limit,
    };
    if response.content_length().is_some_and(|len| len > limit) {
        return Err(too_long().into());
    }
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = match response.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(source) => {
                return Err(Failure::transient(AptError::Body {
                    url: url.to_owned(),
                    source,
                }))
            }
        };
        total += n as u64;
        if total > limit {
            return Err(too_long().into());
        }
        sink(&buf[..n])?;
    }
}

/// `" Not Found"` for 404: the reason phrase of a status, for messages.
pub(super) fn reason_suffix(status: u16) -> String {
    StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .map(|reason| format!(" {reason}"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_agent_names_the_builder() {
        assert!(USER_AGENT.starts_with("image-builder/"));
        assert_eq!(reason_suffix(404), " Not Found");
    }
}
