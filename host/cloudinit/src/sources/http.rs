//! Blocking HTTP for the sources (reqwest with rustls: no OpenSSL in the image), with the
//! workspace's one retry policy ([`util::retry`]).
//!
//! A request is retried on connection errors, timeouts, a body that breaks off, and the
//! statuses 408, 429 and 5xx ([`retryable_status`], the statuses update-engine retries); other
//! statuses (403, 404, ...) fail at once. The waits between attempts double from `first_delay`
//! up to `max_delay`; after `attempts` attempts the request fails with the last reason. The
//! policy's `timeout` bounds one whole attempt (connect, head and body).
//! [`Policy::CONFIG_URL`] (user-data URLs) bounds one request at about 80 s in all;
//! [`Policy::METADATA`] (the link-local EC2 service, which answers at once or not at all) at
//! about 5 s when nothing listens. Bodies are bounded by [`MAX_USER_DATA_BYTES`].

use std::io::Read;

use reqwest::blocking::Client;
use reqwest::Method;
use util::retry::{retryable_status, Policy};

/// Largest user-data or metadata document accepted.
pub const MAX_USER_DATA_BYTES: u64 = 64 << 20; // 64 MiB, as write_files content

/// A request that did not give a body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// The client could not be built (TLS setup).
    #[error("HTTP client: {0}")]
    Client(String),
    /// Only http:// and https:// are fetched.
    #[error("{url}: only http:// and https:// URLs are supported")]
    Scheme { url: String },
    /// A status that is not retried, or a retried one at the end.
    #[error("{method} {url}: HTTP {status}")]
    Status {
        method: String,
        url: String,
        status: u16,
    },
    /// Connection errors or timeouts until the attempts ran out.
    #[error("{method} {url}: giving up after {attempts} attempts: {last}")]
    GaveUp {
        method: String,
        url: String,
        attempts: u32,
        last: String,
    },
    #[error("{url}: more than {limit} bytes")]
    TooLarge { url: String, limit: u64 },
}

impl HttpError {
    /// The HTTP status, for callers that treat some (404) as "nothing there".
    pub fn status(&self) -> Option<u16> {
        match self {
            HttpError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// A blocking client with its policy.
#[derive(Debug, Clone)]
pub struct Http {
    client: Client,
    policy: Policy,
}

/// Why one attempt failed, and whether to try again.
enum Attempt {
    /// Worth another attempt; `status` when the server answered.
    Retry {
        reason: String,
        status: Option<u16>,
    },
    Fail(HttpError),
}

impl Http {
    /// A client; `proxies`: honour `HTTPS_PROXY` & co. (never for the link-local IMDS).
    pub fn new(policy: Policy, proxies: bool) -> Result<Http, HttpError> {
        let mut builder = Client::builder()
            .connect_timeout(policy.connect_timeout)
            .timeout(policy.timeout)
            .user_agent(concat!("coreos-cloudinit/", env!("CARGO_PKG_VERSION")));
        if !proxies {
            builder = builder.no_proxy();
        }
        let client = builder
            .build()
            .map_err(|e| HttpError::Client(util::error::chain(&e)))?;
        Ok(Http { client, policy })
    }

    pub fn get(&self, url: &str, headers: &[(&str, &str)]) -> Result<Vec<u8>, HttpError> {
        self.request(Method::GET, url, headers)
    }

    pub fn put(&self, url: &str, headers: &[(&str, &str)]) -> Result<Vec<u8>, HttpError> {
        self.request(Method::PUT, url, headers)
    }

    fn request(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
    ) -> Result<Vec<u8>, HttpError> {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(HttpError::Scheme { url: url.into() });
        }
        let mut backoff = self.policy.start();
        let (last, last_status) = loop {
            match self.attempt(&method, url, headers) {
                Ok(body) => return Ok(body),
                Err(Attempt::Fail(e)) => return Err(e),
                Err(Attempt::Retry { reason, status }) => match backoff.failed(false) {
                    Some(wait) => std::thread::sleep(wait),
                    None => break (reason, status),
                },
            }
        };
        // A server that kept answering 5xx is reported by its status.
        if let Some(status) = last_status {
            return Err(HttpError::Status {
                method: method.to_string(),
                url: url.into(),
                status,
            });
        }
        Err(HttpError::GaveUp {
            method: method.to_string(),
            url: url.into(),
            attempts: backoff.failures(),
            last,
        })
    }

    fn attempt(
        &self,
        method: &Method,
        url: &str,
        headers: &[(&str, &str)],
    ) -> Result<Vec<u8>, Attempt> {
        let mut req = self.client.request(method.clone(), url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let retry = |reason: String| Attempt::Retry {
            reason,
            status: None,
        };
        let resp = req.send().map_err(|e| retry(util::error::chain(&e)))?;
        let status = resp.status().as_u16();
        if !resp.status().is_success() {
            if retryable_status(status) {
                return Err(Attempt::Retry {
                    reason: format!("HTTP {status}"),
                    status: Some(status),
                });
            }
            return Err(Attempt::Fail(HttpError::Status {
                method: method.to_string(),
                url: url.into(),
                status,
            }));
        }
        let mut body = Vec::new();
        resp.take(MAX_USER_DATA_BYTES + 1)
            .read_to_end(&mut body)
            .map_err(|e| retry(format!("reading the body: {}", util::error::chain(&e))))?;
        if body.len() as u64 > MAX_USER_DATA_BYTES {
            return Err(Attempt::Fail(HttpError::TooLarge {
                url: url.into(),
                limit: MAX_USER_DATA_BYTES,
            }));
        }
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::time::Duration;

    /// The bound the module docs promise: a user-data URL gives up after about 80 s.
    #[test]
    fn a_url_request_is_bounded() {
        let p = Policy::CONFIG_URL;
        let mut b = p.start();
        let waits: Duration = std::iter::from_fn(|| b.failed(false)).sum();
        assert_eq!(b.failures(), 6);
        assert_eq!(waits + p.timeout * b.failures(), Duration::from_secs(83));
    }

    #[test]
    fn other_schemes_are_refused() {
        let http = Http::new(Policy::CONFIG_URL, false).unwrap();
        let e = http.get("tftp://10.0.0.1/config", &[]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "tftp://10.0.0.1/config: only http:// and https:// URLs are supported"
        );
    }
}
