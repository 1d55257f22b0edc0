//! FleetLock client (SPECS.md S1; coreos/zincati `docs/development/fleetlock/protocol.md`,
//! `src/fleet_lock/mod.rs`): `POST {base}/v1/pre-reboot` takes this node's reboot slot,
//! `POST {base}/v1/steady-state` releases it. Both are idempotent on the server (recursive lock,
//! unlock-if-held), so the caller simply repeats a call until it succeeds; this client makes one
//! request per call and does not retry.
//!
//! Errors keep the server's `{"kind","value"}`; other failures get Zincati's kinds:
//! `generic_http_<code>` (a non-JSON error body), `client_failed_request` (no HTTP answer) and
//! `client_failed_build` (bad parameters).

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The pre-reboot endpoint, relative to the base URL.
pub const PRE_REBOOT_PATH: &str = "/v1/pre-reboot";
/// The steady-state endpoint, relative to the base URL.
pub const STEADY_STATE_PATH: &str = "/v1/steady-state";
/// The protocol header; servers refuse requests without it.
pub const PROTOCOL_HEADER: &str = "fleet-lock-protocol";
/// FleetLock's default group.
pub const DEFAULT_GROUP: &str = "default";
/// The `kind` of a refusal because all slots are taken (the protocol's example, which our
/// server uses).
pub const KIND_SEMAPHORE_FULL: &str = "failed_lock_semaphore_full";
/// How long one request may take. Zincati allows 30 minutes for slow lock managers; a lock
/// manager that takes longer than this is treated as down, and the call is repeated.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// The request body: `{"client_params":{"id":…,"group":…}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// The node's identity.
    pub client_params: ClientParams,
}

/// Who is asking.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientParams {
    /// Node id: non-empty, case-sensitive (the machine-id).
    pub id: String,
    /// Reboot group: `^[a-zA-Z0-9.-]+$`.
    pub group: String,
}

/// A FleetLock error document: `{"kind": …, "value": …}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteError {
    /// Machine-friendly kind, of bounded cardinality.
    pub kind: String,
    /// Human-friendly explanation.
    pub value: String,
}

/// Why a FleetLock call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FleetLockError {
    /// The server refused with a FleetLock error document.
    #[error("FleetLock server {url}: HTTP {status}: {} ({})", .error.value, .error.kind)]
    Remote {
        /// The URL called.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The server's error.
        error: RemoteError,
    },
    /// A non-200 answer without a FleetLock error document.
    #[error("FleetLock server {url}: HTTP {status}")]
    Http {
        /// The URL called.
        url: String,
        /// The HTTP status.
        status: u16,
    },
    /// No HTTP answer (connection refused, timeout, TLS, ...).
    #[error("FleetLock server {url}: {cause}")]
    Request {
        /// The URL called.
        url: String,
        /// What happened.
        cause: String,
    },
    /// The client cannot be built (bad URL, id or group).
    #[error("FleetLock client: {0}")]
    Build(String),
}

impl FleetLockError {
    /// The kind, as Zincati reports it: the server's, or `generic_http_<code>`,
    /// `client_failed_request`, `client_failed_build`.
    pub fn kind(&self) -> String {
        match self {
            FleetLockError::Remote { error, .. } => error.kind.clone(),
            FleetLockError::Http { status, .. } => format!("generic_http_{status}"),
            FleetLockError::Request { .. } => "client_failed_request".into(),
            FleetLockError::Build(_) => "client_failed_build".into(),
        }
    }

    /// The HTTP status, if the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            FleetLockError::Remote { status, .. } | FleetLockError::Http { status, .. } => {
                Some(*status)
            }
            _ => None,
        }
    }

    /// Whether the server said all slots are taken (worth waiting and asking again).
    pub fn is_semaphore_full(&self) -> bool {
        self.kind() == KIND_SEMAPHORE_FULL
    }
}

/// Whether `group` is a valid FleetLock group: `^[a-zA-Z0-9.-]+$` (update.conf's
/// `FLEETLOCK_GROUP` rule, defined in `contract`).
pub use contract::update_conf::valid_fleetlock_group as valid_group;

/// A FleetLock client for one node.
#[derive(Debug, Clone)]
pub struct FleetLockClient {
    base_url: String,
    body: String,
    http: reqwest::blocking::Client,
}

impl FleetLockClient {
    /// A client of the server at `base_url` (endpoint paths are appended to it) for node `id` in
    /// `group`, with [`DEFAULT_TIMEOUT`].
    pub fn new(base_url: &str, group: &str, id: &str) -> Result<FleetLockClient, FleetLockError> {
        FleetLockClient::with_timeout(base_url, group, id, DEFAULT_TIMEOUT)
    }

    /// [`FleetLockClient::new`] with another bound on each request.
    pub fn with_timeout(
        base_url: &str,
        group: &str,
        id: &str,
        timeout: Duration,
    ) -> Result<FleetLockClient, FleetLockError> {
        let url = reqwest::Url::parse(base_url)
            .map_err(|e| FleetLockError::Build(format!("base URL {base_url:?}: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(FleetLockError::Build(format!(
                "base URL {base_url:?}: not http:// or https://"
            )));
        }
        if id.is_empty() {
            return Err(FleetLockError::Build("empty node id".into()));
        }
        if !valid_group(group) {
            return Err(FleetLockError::Build(format!(
                "group {group:?}: expected letters, digits, '.' and '-'"
            )));
        }
        let body = serde_json::to_string(&Request {
            client_params: ClientParams {
                id: id.to_owned(),
                group: group.to_owned(),
            },
        })
        .map_err(|e| FleetLockError::Build(e.to_string()))?;
        let http = reqwest::blocking::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .build()
            .map_err(|e| FleetLockError::Build(e.to_string()))?;
        Ok(FleetLockClient {
            base_url: base_url.trim_end_matches('/').to_owned(),
            body,
            http,
        })
    }

    /// Takes this node's reboot slot (recursive: succeeds again while held).
    pub fn pre_reboot(&self) -> Result<(), FleetLockError> {
        self.post(PRE_REBOOT_PATH)
    }

    /// Releases this node's reboot slot (succeeds when not held).
    pub fn steady_state(&self) -> Result<(), FleetLockError> {
        self.post(STEADY_STATE_PATH)
    }

    fn post(&self, path: &str) -> Result<(), FleetLockError> {
        let url = format!("{}{path}", self.base_url);
        let response = self
            .http
            .post(&url)
            .header(PROTOCOL_HEADER, "true")
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(self.body.clone())
            .send()
            .map_err(|e| FleetLockError::Request {
                url: url.clone(),
                cause: error_chain(&e),
            })?;
        let status = response.status().as_u16();
        if status == 200 {
            return Ok(());
        }
        let body = response.bytes().unwrap_or_default();
        Err(match serde_json::from_slice::<RemoteError>(&body) {
            Ok(error) => FleetLockError::Remote { url, status, error },
            Err(_) => FleetLockError::Http { url, status },
        })
    }
}

use util::error::chain as error_chain;

#[cfg(test)]
#[path = "fleetlock_http_tests.rs"]
mod http_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups() {
        for good in ["default", "a", "web-1.prod", "A9"] {
            assert!(valid_group(good), "{good}");
        }
        for bad in ["", "a b", "a/b", "a_b", "ü", "a\n"] {
            assert!(!valid_group(bad), "{bad:?}");
        }
    }

    #[test]
    fn body_is_the_protocols() {
        let body = serde_json::to_string(&Request {
            client_params: ClientParams {
                id: "c988d2509fdf4cdcbed39037c56406fb".into(),
                group: "default".into(),
            },
        })
        .unwrap();
        assert_eq!(
            body,
            r#"{"client_params":{"id":"c988d2509fdf4cdcbed39037c56406fb","group":"default"}}"#
        );
    }

    #[test]
    fn bad_parameters_fail_to_build() {
        for (url, group, id, want) in [
            ("not a url", "default", "m", "base URL"),
            ("ftp://x/", "default", "m", "not http"),
            ("http://x/", "default", "", "empty node id"),
            ("http://x/", "a b", "m", "group \"a b\""),
        ] {
            let e = FleetLockClient::new(url, group, id).unwrap_err();
            assert_eq!(e.kind(), "client_failed_build");
            assert!(e.to_string().contains(want), "{e}");
        }
    }

    #[test]
    fn kinds() {
        let remote = FleetLockError::Remote {
            url: "u".into(),
            status: 409,
            error: RemoteError {
                kind: KIND_SEMAPHORE_FULL.into(),
                value: "full".into(),
            },
        };
        assert!(remote.is_semaphore_full());
        assert_eq!(remote.status(), Some(409));
        let http = FleetLockError::Http {
            url: "u".into(),
            status: 502,
        };
        assert_eq!(
            (http.kind(), http.status()),
            ("generic_http_502".into(), Some(502))
        );
        assert!(!http.is_semaphore_full());
    }
}
