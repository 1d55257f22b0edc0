//! Blocking HTTP for the sources (reqwest with rustls: no OpenSSL in the image), with one
//! written-down retry policy.
//!
//! Retry policy ([`RetryPolicy`]): a request is retried on connection errors, timeouts, a body
//! that breaks off, and the statuses 408, 429 and 5xx (the statuses update-engine retries);
//! other statuses (403, 404, ...) fail at once. The waits between attempts double from
//! `first_delay` up to `max_delay`; after `attempts` attempts the request fails with the last
//! reason. [`RetryPolicy::URL`] (user-data URLs) bounds one request at about 80 s in all;
//! [`RetryPolicy::IMDS`] (the link-local EC2 service, which answers at once or not at all)
//! at about 5 s when nothing listens. Bodies are bounded by [`MAX_USER_DATA_BYTES`].

use std::io::Read;
use std::time::Duration;

use reqwest::blocking::Client;
use reqwest::Method;

/// Largest user-data or metadata document accepted.
pub const MAX_USER_DATA_BYTES: u64 = 64 << 20; // 64 MiB, as write_files content

/// When and how often to retry (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all (at least one).
    pub attempts: u32,
    /// Wait after the first failure; doubled after each further one.
    pub first_delay: Duration,
    pub max_delay: Duration,
    pub connect_timeout: Duration,
    /// Bound on one whole attempt (connect, head and body).
    pub timeout: Duration,
}

impl RetryPolicy {
    /// `cloud-config-url=`, `--from-url`, guestinfo URLs: 6 attempts, waits 1+2+4+8+8 s,
    /// 10 s per attempt.
    pub const URL: RetryPolicy = RetryPolicy {
        attempts: 6,
        first_delay: Duration::from_secs(1),
        max_delay: Duration::from_secs(8),
        connect_timeout: Duration::from_secs(5),
        timeout: Duration::from_secs(10),
    };
    /// EC2 instance metadata: 3 attempts, waits 0.5+1 s, 1 s to connect, 5 s per attempt.
    pub const IMDS: RetryPolicy = RetryPolicy {
        attempts: 3,
        first_delay: Duration::from_millis(500),
        max_delay: Duration::from_secs(1),
        connect_timeout: Duration::from_secs(1),
        timeout: Duration::from_secs(5),
    };

    /// The wait after failure number `failure` (0-based).
    pub fn delay(&self, failure: u32) -> Duration {
        let factor = 1u32.checked_shl(failure.min(16)).unwrap_or(u32::MAX);
        self.first_delay.saturating_mul(factor).min(self.max_delay)
    }
}

/// Whether a status is worth retrying: 408, 429 and 5xx.
pub fn retryable_status(status: u16) -> bool {
    status == 408 || status == 429 || (500..600).contains(&status)
}

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
    policy: RetryPolicy,
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
    pub fn new(policy: RetryPolicy, proxies: bool) -> Result<Http, HttpError> {
        let mut builder = Client::builder()
            .connect_timeout(policy.connect_timeout)
            .timeout(policy.timeout)
            .user_agent(concat!("coreos-cloudinit/", env!("CARGO_PKG_VERSION")));
        if !proxies {
            builder = builder.no_proxy();
        }
        let client = builder
            .build()
            .map_err(|e| HttpError::Client(error_chain(&e)))?;
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
        let attempts = self.policy.attempts.max(1);
        let (mut last, mut last_status) = (String::new(), None);
        for n in 0..attempts {
            if n > 0 {
                std::thread::sleep(self.policy.delay(n - 1));
            }
            match self.attempt(&method, url, headers) {
                Ok(body) => return Ok(body),
                Err(Attempt::Fail(e)) => return Err(e),
                Err(Attempt::Retry { reason, status }) => (last, last_status) = (reason, status),
            }
        }
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
            attempts,
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
        let resp = req.send().map_err(|e| retry(error_chain(&e)))?;
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
            .map_err(|e| retry(format!("reading the body: {}", error_chain(&e))))?;
        if body.len() as u64 > MAX_USER_DATA_BYTES {
            return Err(Attempt::Fail(HttpError::TooLarge {
                url: url.into(),
                limit: MAX_USER_DATA_BYTES,
            }));
        }
        Ok(body)
    }
}

/// reqwest's error and its causes on one line (its own text omits the interesting part:
/// "error sending request" / "operation timed out").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(c) = cur {
        let text = c.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cur = c.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap() {
        let p = RetryPolicy::URL;
        let waits: Vec<u64> = (0..6).map(|n| p.delay(n).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 8, 8]);
        assert_eq!(p.delay(u32::MAX), p.max_delay);
        let total: Duration = (0..p.attempts - 1).map(|n| p.delay(n)).sum();
        assert_eq!(total + p.timeout * p.attempts, Duration::from_secs(83));
    }

    #[test]
    fn retryable_statuses() {
        for s in [408, 429, 500, 502, 503, 599] {
            assert!(retryable_status(s), "{s}");
        }
        for s in [200, 301, 400, 401, 403, 404, 405] {
            assert!(!retryable_status(s), "{s}");
        }
    }

    #[test]
    fn other_schemes_are_refused() {
        let http = Http::new(RetryPolicy::URL, false).unwrap();
        let e = http.get("tftp://10.0.0.1/config", &[]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "tftp://10.0.0.1/config: only http:// and https:// URLs are supported"
        );
    }
}
