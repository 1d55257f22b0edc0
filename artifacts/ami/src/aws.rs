//! The HTTP edge of the upload path: configuration from the environment, SigV4-signed requests
//! to the EBS and EC2 endpoints, bounded retries of transient failures, and AWS error answers
//! turned into one-line errors (`EC2 RegisterImage: Code: Message (HTTP 400)`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::sigv4::{self, Credentials};

/// Why an upload step failed. Every variant displays as one line.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Missing or bad configuration (credentials, region, endpoint, options).
    #[error("{0}")]
    Config(String),
    /// The service answered with an error.
    #[error("{op}: {code}: {message} (HTTP {status})")]
    Api {
        op: String,
        status: u16,
        code: String,
        message: String,
    },
    /// No answer (connection refused or reset, timeout), after the retries.
    #[error("{op}: {url}: {message}")]
    Transport {
        op: String,
        url: String,
        message: String,
    },
    /// An answer that does not say what the API documents.
    #[error("{op}: unexpected answer: {message}")]
    Protocol { op: String, message: String },
    /// Reading or writing a local file (the cause is part of the message, not a source).
    #[error("{}: {error}", path.display())]
    Io {
        path: std::path::PathBuf,
        error: std::io::Error,
    },
    /// The local input is not what build.json says, or not usable.
    #[error("{0}")]
    Input(String),
    #[error("{0}")]
    Timeout(String),
}

/// Where and as whom to call AWS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub credentials: Credentials,
    pub region: String,
    /// One endpoint for every service (a local emulator); `None`: the regional AWS endpoints.
    pub endpoint: Option<String>,
}

impl Config {
    /// Credentials from `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and optional
    /// `AWS_SESSION_TOKEN`; the region from `region` or `AWS_REGION` / `AWS_DEFAULT_REGION`;
    /// the endpoint from `endpoint` or `AWS_ENDPOINT_URL`.
    pub fn from_env(region: Option<&str>, endpoint: Option<&str>) -> Result<Config, Error> {
        Config::resolve(region, endpoint, &|name| std::env::var(name).ok())
    }

    /// [`Config::from_env`] over any variable lookup (pure; for tests).
    pub fn resolve(
        region: Option<&str>,
        endpoint: Option<&str>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, Error> {
        let var = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        let key = var("AWS_ACCESS_KEY_ID");
        let secret = var("AWS_SECRET_ACCESS_KEY");
        let region = region
            .map(str::to_string)
            .filter(|r| !r.trim().is_empty())
            .or_else(|| var("AWS_REGION"))
            .or_else(|| var("AWS_DEFAULT_REGION"));
        let mut missing = Vec::new();
        if key.is_none() || secret.is_none() {
            missing.push(
                "AWS credentials (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, and \
                 AWS_SESSION_TOKEN for temporary credentials)",
            );
        }
        if region.is_none() {
            missing.push("an AWS region (pass --region or set AWS_REGION or AWS_DEFAULT_REGION)");
        }
        let (Some(access_key_id), Some(secret_access_key), Some(region)) = (key, secret, region)
        else {
            return Err(Error::Config(format!("missing {}", missing.join(" and "))));
        };
        if !region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(Error::Config(format!(
                "{region:?} is not an AWS region name (like us-east-1)"
            )));
        }
        let endpoint = match endpoint
            .map(str::to_string)
            .or_else(|| var("AWS_ENDPOINT_URL"))
        {
            Some(e) => Some(check_endpoint(&e)?),
            None => None,
        };
        Ok(Config {
            credentials: Credentials {
                access_key_id,
                secret_access_key,
                session_token: var("AWS_SESSION_TOKEN"),
            },
            region,
            endpoint,
        })
    }

    /// The base URL of a service (`https://ebs.us-east-1.amazonaws.com`), or the override.
    pub fn endpoint(&self, service: &str) -> String {
        match &self.endpoint {
            Some(e) => e.clone(),
            None => format!("https://{service}.{}.amazonaws.com", self.region),
        }
    }
}

/// `scheme://host[:port]` without a trailing slash, or why not.
fn check_endpoint(e: &str) -> Result<String, Error> {
    let bad = |why: &str| Error::Config(format!("endpoint URL {e:?}: {why}"));
    let url = reqwest::Url::parse(e).map_err(|err| bad(&err.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("not http or https"));
    }
    if url.host_str().is_none() {
        return Err(bad("no host"));
    }
    if url.path() != "/" || url.query().is_some() || !url.username().is_empty() {
        return Err(bad("give only scheme://host[:port]"));
    }
    Ok(e.trim_end_matches('/').to_string())
}

/// One API call, before signing.
#[derive(Debug, Clone)]
pub struct Call {
    /// SigV4 service name (`ebs`, `ec2`).
    pub service: &'static str,
    /// For messages: `EBS PutSnapshotBlock (block 7)`.
    pub op: String,
    pub method: &'static str,
    /// Decoded path.
    pub path: String,
    pub query: Vec<(String, String)>,
    /// Headers besides Host and the signature's.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Sign `UNSIGNED-PAYLOAD` (sent as `x-amz-content-sha256`) instead of the body's hash.
    pub unsigned_payload: bool,
    /// Safe to send twice: retried after any transient failure. Otherwise retried only when
    /// the request cannot have been processed (no connection, throttled).
    pub idempotent: bool,
}

/// A successful (2xx) answer.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// How often and how patiently to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// Attempts in all (at least 1).
    pub attempts: u32,
    /// Wait before the second attempt; doubled each time, up to `max_delay`.
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            attempts: 6,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(8),
        }
    }
}

impl Retry {
    /// The wait before attempt `n` (1 = the first retry).
    pub fn delay(&self, n: u32) -> Duration {
        let factor = 1u32 << n.saturating_sub(1).min(16);
        self.base_delay.saturating_mul(factor).min(self.max_delay)
    }
}

/// Error codes that mean "try again later" whatever the HTTP status.
const RETRYABLE_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "RequestLimitExceeded",
    "RequestThrottledException",
    "InternalServerException",
    "InternalError",
    "ServiceUnavailable",
    "Unavailable",
];

/// Whether an error answer is transient; `processed` says whether the request may have taken
/// effect (a 500 may have; a 503 or a throttle did not).
pub fn transient(status: u16, code: &str) -> (bool, bool) {
    let throttled = status == 429
        || status == 503
        || code.contains("Throttl")
        || code == "RequestLimitExceeded";
    let transient = throttled || status >= 500 || RETRYABLE_CODES.contains(&code);
    (transient, transient && !throttled)
}

/// The error code and message of an AWS error answer: EC2's XML
/// (`<Response><Errors><Error><Code>…<Message>…`), the REST-JSON services' `x-amzn-ErrorType`
/// header and `{"message": …}` body, else the HTTP status and the start of the body.
pub fn parse_error(status: u16, headers: &[(String, String)], body: &[u8]) -> (String, String) {
    let text = String::from_utf8_lossy(body);
    if text.trim_start().starts_with('<') {
        if let Some(code) = crate::ec2::xml_text(&text, "Code") {
            let message = crate::ec2::xml_text(&text, "Message").unwrap_or_default();
            return (code, message);
        }
    }
    let header_code = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("x-amzn-errortype"))
        .map(|(_, v)| v.split(':').next().unwrap_or("").to_string())
        .filter(|c| !c.is_empty());
    let json: Option<serde_json::Value> = serde_json::from_str(&text).ok();
    let field = |names: &[&str]| {
        let j = json.as_ref()?;
        names
            .iter()
            .find_map(|n| j.get(*n).and_then(|v| v.as_str()).map(str::to_string))
    };
    let code = header_code
        .or_else(|| {
            field(&["__type", "code", "Code"])
                .map(|c| c.rsplit('#').next().unwrap_or("").to_string())
        })
        .unwrap_or_else(|| format!("HTTP {status}"));
    let mut message = field(&["message", "Message"]).unwrap_or_else(|| one_line(&text, 200));
    if let Some(reason) = field(&["Reason", "reason"]) {
        message = format!("{message} ({reason})");
    }
    (code, message)
}

/// The first `max` characters of `s` on one line.
fn one_line(s: &str, max: usize) -> String {
    let flat = s.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &flat[..i]),
        None => flat,
    }
}

/// Signs and sends calls; shared by the upload threads.
pub struct Client {
    http: reqwest::blocking::Client,
    config: Config,
    pub retry: Retry,
}

impl Client {
    pub fn new(config: Config) -> Result<Client, Error> {
        let http = reqwest::blocking::Client::builder()
            .connect_timeout(Duration::from_secs(15))
            .timeout(Duration::from_secs(120))
            .user_agent(concat!("image-builder-ami/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Config(format!("HTTP client: {}", chain(&e))))?;
        Ok(Client {
            http,
            config,
            retry: Retry::default(),
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Send `call` to its service's endpoint, retrying transient failures; a non-2xx answer
    /// is an [`Error::Api`].
    pub fn send(&self, call: &Call) -> Result<Response, Error> {
        let base = self.config.endpoint(call.service);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let last = attempt >= self.retry.attempts.max(1);
            let url = request_url(&base, call);
            match self.send_once(&base, call) {
                Ok(r) if (200..300).contains(&r.status) => return Ok(r),
                Ok(r) => {
                    let (code, message) = parse_error(r.status, &r.headers, &r.body);
                    let (transient, processed) = transient(r.status, &code);
                    if last || !transient || (processed && !call.idempotent) {
                        return Err(Error::Api {
                            op: call.op.clone(),
                            status: r.status,
                            code,
                            message,
                        });
                    }
                }
                Err(e) => {
                    let retry =
                        e.is_connect() || (call.idempotent && (e.is_timeout() || e.is_request()));
                    if last || !retry {
                        let tries = if attempt > 1 {
                            format!(" (after {attempt} attempts)")
                        } else {
                            String::new()
                        };
                        return Err(Error::Transport {
                            op: call.op.clone(),
                            url,
                            message: format!("{}{tries}", chain(&e.without_url())),
                        });
                    }
                }
            }
            std::thread::sleep(self.retry.delay(attempt));
        }
    }

    fn send_once(&self, base: &str, call: &Call) -> Result<Response, reqwest::Error> {
        let host = host_header(base);
        let payload_hash = if call.unsigned_payload {
            sigv4::UNSIGNED_PAYLOAD.to_string()
        } else {
            sigv4::sha256_hex(&call.body)
        };
        let mut headers = vec![("Host".to_string(), host)];
        headers.extend(call.headers.iter().cloned());
        if call.unsigned_payload {
            headers.push(("x-amz-content-sha256".into(), payload_hash.clone()));
        }
        let amz_date = sigv4::amz_date(unix_now());
        let signed = sigv4::sign(
            &sigv4::Request {
                method: call.method,
                path: &call.path,
                query: &call.query,
                headers: &headers,
                payload_hash: &payload_hash,
            },
            &self.config.credentials,
            &self.config.region,
            call.service,
            &amz_date,
        );
        let method = reqwest::Method::from_bytes(call.method.as_bytes()).expect("a valid method");
        let mut req = self.http.request(method, request_url(base, call));
        for (name, value) in &signed {
            req = req.header(name.as_str(), value.as_str());
        }
        let resp = req.body(call.body.clone()).send()?;
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = resp.bytes()?.to_vec();
        Ok(Response {
            status,
            headers,
            body,
        })
    }
}

/// The URL a call goes to: base + encoded path + canonical query (the signed forms).
pub fn request_url(base: &str, call: &Call) -> String {
    let query = sigv4::canonical_query(&call.query);
    let path = sigv4::canonical_uri(&call.path);
    if query.is_empty() {
        format!("{base}{path}")
    } else {
        format!("{base}{path}?{query}")
    }
}

/// The `Host` header for a base URL: host, plus the port when it is not the scheme's default.
pub fn host_header(base: &str) -> String {
    match reqwest::Url::parse(base) {
        Ok(u) => {
            let host = u.host_str().unwrap_or_default();
            match u.port() {
                Some(p) => format!("{host}:{p}"),
                None => host.to_string(),
            }
        }
        Err(_) => base.to_string(),
    }
}

/// An error and its causes on one line (`error sending request: connection refused`).
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

/// Seconds since the Unix epoch (request signing only).
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn config_from_variables_and_arguments() {
        let vars = [
            ("AWS_ACCESS_KEY_ID", "AKID"),
            ("AWS_SECRET_ACCESS_KEY", "SECRET"),
            ("AWS_SESSION_TOKEN", "TOKEN"),
            ("AWS_DEFAULT_REGION", "eu-west-1"),
        ];
        let c = Config::resolve(None, None, &env(&vars)).unwrap();
        assert_eq!(c.region, "eu-west-1");
        assert_eq!(c.credentials.session_token.as_deref(), Some("TOKEN"));
        assert_eq!(c.endpoint("ebs"), "https://ebs.eu-west-1.amazonaws.com");
        assert_eq!(c.endpoint("ec2"), "https://ec2.eu-west-1.amazonaws.com");
        let c = Config::resolve(
            Some("us-west-2"),
            Some("http://127.0.0.1:5000/"),
            &env(&vars),
        )
        .unwrap();
        assert_eq!(c.region, "us-west-2");
        assert_eq!(c.endpoint("ebs"), "http://127.0.0.1:5000");
        assert_eq!(c.endpoint("ec2"), "http://127.0.0.1:5000");
        // AWS_REGION wins over AWS_DEFAULT_REGION.
        let mut v = vars.to_vec();
        v.push(("AWS_REGION", "ap-south-1"));
        assert_eq!(
            Config::resolve(None, None, &env(&v)).unwrap().region,
            "ap-south-1"
        );
    }

    #[test]
    fn missing_configuration_is_one_error() {
        let e = Config::resolve(None, None, &env(&[]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("AWS_ACCESS_KEY_ID") && e.contains("--region"),
            "{e}"
        );
        let e = Config::resolve(None, None, &env(&[("AWS_ACCESS_KEY_ID", "a")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("AWS_SECRET_ACCESS_KEY"), "{e}");
        let creds = [("AWS_ACCESS_KEY_ID", "a"), ("AWS_SECRET_ACCESS_KEY", "b")];
        let e = Config::resolve(None, None, &env(&creds))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("missing an AWS region"), "{e}");
        for bad in ["ftp://x", "http://h:1/path", "not a url", "http://h:1/?q=1"] {
            let e = Config::resolve(Some("us-east-1"), Some(bad), &env(&creds)).unwrap_err();
            assert!(e.to_string().starts_with("endpoint URL"), "{bad}: {e}");
        }
        let e = Config::resolve(Some("US East"), None, &env(&creds)).unwrap_err();
        assert!(e.to_string().contains("not an AWS region"), "{e}");
    }

    #[test]
    fn error_answers() {
        let xml = br#"<?xml version="1.0" encoding="UTF-8"?>
<Response><Errors><Error><Code>InvalidAMIName.Duplicate</Code><Message>AMI name x is already in use by AMI ami-1</Message></Error></Errors><RequestID>r</RequestID></Response>"#;
        assert_eq!(
            parse_error(400, &[], xml),
            (
                "InvalidAMIName.Duplicate".into(),
                "AMI name x is already in use by AMI ami-1".into()
            )
        );
        let headers = vec![(
            "X-Amzn-ErrorType".to_string(),
            "ValidationException:http://internal.amazon.com/coral/".to_string(),
        )];
        let json = br#"{"Message":"The snapshot is not pending","Reason":"INVALID_SNAPSHOT_ID"}"#;
        assert_eq!(
            parse_error(400, &headers, json),
            (
                "ValidationException".into(),
                "The snapshot is not pending (INVALID_SNAPSHOT_ID)".into()
            )
        );
        let json = br#"{"__type":"com.amazon#AccessDeniedException","message":"no"}"#;
        assert_eq!(
            parse_error(403, &[], json),
            ("AccessDeniedException".into(), "no".into())
        );
        assert_eq!(
            parse_error(502, &[], b"<html>\n  bad   gateway</html>"),
            ("HTTP 502".into(), "<html> bad gateway</html>".into())
        );
    }

    #[test]
    fn what_is_retried() {
        assert_eq!(transient(500, "InternalError"), (true, true));
        assert_eq!(transient(503, "RequestLimitExceeded"), (true, false));
        assert_eq!(transient(400, "RequestThrottledException"), (true, false));
        assert_eq!(transient(429, "HTTP 429"), (true, false));
        assert_eq!(transient(400, "ValidationException"), (false, false));
        assert_eq!(transient(403, "AccessDeniedException"), (false, false));
        let r = Retry::default();
        assert_eq!(r.delay(1), Duration::from_millis(250));
        assert_eq!(r.delay(3), Duration::from_secs(1));
        assert_eq!(r.delay(30), Duration::from_secs(8));
    }

    #[test]
    fn urls_and_hosts() {
        let call = Call {
            service: "ebs",
            op: "x".into(),
            method: "PUT",
            path: "/snapshots/snap-1/blocks/7".into(),
            query: vec![("b".into(), "2 3".into()), ("a".into(), "1".into())],
            headers: vec![],
            body: vec![],
            unsigned_payload: true,
            idempotent: true,
        };
        assert_eq!(
            request_url("http://127.0.0.1:5000", &call),
            "http://127.0.0.1:5000/snapshots/snap-1/blocks/7?a=1&b=2%203"
        );
        assert_eq!(host_header("http://127.0.0.1:5000"), "127.0.0.1:5000");
        assert_eq!(
            host_header("https://ebs.us-east-1.amazonaws.com"),
            "ebs.us-east-1.amazonaws.com"
        );
        assert_eq!(host_header("https://h:443"), "h");
    }
}
