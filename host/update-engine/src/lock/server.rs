//! A FleetLock server (SPECS.md S1; coreos/airlock `internal/server`) on locksmith's etcd
//! semaphore, so machines using the etcd lock and FleetLock clients (ours, Zincati) share one
//! lock. `POST /v1/pre-reboot` is [`EtcdLock::lock`] (recursive: a holder asking again gets 200),
//! `POST /v1/steady-state` is [`EtcdLock::unlock_if_held`] (200 also when not held).
//!
//! The FleetLock group selects the semaphore as in [`super::etcd::semaphore_key`]: `default` is
//! locksmith's default semaphore, another group `…/groups/<group>/semaphore`. A group's
//! semaphore is created with locksmith's initial value (one slot) on first use; set its size
//! with `update-engine lock --group G set-max N`. Unlike airlock there is no list of configured
//! groups: any valid group name is accepted.
//!
//! Answers: 200 with an empty body, or a JSON `{"kind","value"}` error:
//!
//! | status | kind | when |
//! |---|---|---|
//! | 400 | `invalid_client_identity` | no `fleet-lock-protocol: true` header, a body that is not `{"client_params":{"id","group"}}`, an empty id, a group not matching `^[a-zA-Z0-9.-]+$` (airlock's kind) |
//! | 409 | `failed_lock_semaphore_full` | all slots taken (the protocol's example kind; airlock answers 500 `failed_lock`) |
//! | 500 | `failed_lock` | etcd unreachable or refusing, or a bad value in etcd (airlock's kind) |
//! | 404, 405 | `not_found`, `method_not_allowed` | another path, or not POST |
//!
//! Requests are served by a fixed pool of [`DEFAULT_WORKERS`] threads, each with its own etcd
//! connection.

use std::io::Read;
use std::net::SocketAddr;
use std::sync::Arc;

use super::etcd::{EtcdConfig, EtcdError, EtcdLock, Locked};
use super::fleetlock::{
    valid_group, ClientParams, RemoteError, Request, KIND_SEMAPHORE_FULL, PRE_REBOOT_PATH,
    PROTOCOL_HEADER, STEADY_STATE_PATH,
};

/// Worker threads (concurrent requests in service; more wait in the queue).
pub const DEFAULT_WORKERS: usize = 8;
/// The largest request body read.
const MAX_BODY: u64 = 64 * 1024;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The listen address cannot be used.
    #[error("listening on {addr}: {cause}")]
    Listen {
        /// The address.
        addr: String,
        /// Why not.
        cause: String,
    },
    /// The etcd client configuration is unusable.
    #[error(transparent)]
    Etcd(#[from] EtcdError),
}

/// A FleetLock operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// `/v1/pre-reboot`: take a slot.
    PreReboot,
    /// `/v1/steady-state`: release the slot.
    SteadyState,
}

/// An answer: HTTP status and body (empty on success, else a [`RemoteError`] document).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Body.
    pub body: String,
}

impl Reply {
    fn ok() -> Reply {
        Reply {
            status: 200,
            body: String::new(),
        }
    }

    fn error(status: u16, kind: &str, value: impl Into<String>) -> Reply {
        let error = RemoteError {
            kind: kind.to_owned(),
            value: value.into(),
        };
        Reply {
            status,
            body: serde_json::to_string(&error).unwrap_or_default(),
        }
    }
}

/// Checks a request: its method and path name the operation, the protocol header is `true`, the
/// body names a valid client. Pure.
pub fn parse_request(
    method: &str,
    path: &str,
    protocol_header: Option<&str>,
    body: &[u8],
) -> Result<(Operation, ClientParams), Reply> {
    let op = match path.split('?').next().unwrap_or_default() {
        PRE_REBOOT_PATH => Operation::PreReboot,
        STEADY_STATE_PATH => Operation::SteadyState,
        other => {
            return Err(Reply::error(
                404,
                "not_found",
                format!("no endpoint {other:?}: FleetLock serves POST {PRE_REBOOT_PATH} and {STEADY_STATE_PATH}"),
            ))
        }
    };
    if method != "POST" {
        return Err(Reply::error(
            405,
            "method_not_allowed",
            format!("{method} {path}: FleetLock requests are POST"),
        ));
    }
    let invalid = |why: &str| {
        Reply::error(
            400,
            "invalid_client_identity",
            format!("failed to validate client identity: {why}"),
        )
    };
    if protocol_header != Some("true") {
        return Err(invalid("wrong 'fleet-lock-protocol' header"));
    }
    let request: Request = serde_json::from_slice(body).map_err(|e| {
        invalid(&format!(
            "body is not {{\"client_params\":{{\"id\",\"group\"}}}}: {e}"
        ))
    })?;
    let params = request.client_params;
    if params.id.is_empty() {
        return Err(invalid("empty client ID"));
    }
    if !valid_group(&params.group) {
        return Err(invalid(&format!(
            "group {:?} does not match ^[a-zA-Z0-9.-]+$",
            params.group
        )));
    }
    Ok((op, params))
}

/// Runs `op` for `client` on `etcd` (switched to the client's group).
pub fn execute(op: Operation, client: &ClientParams, etcd: &mut EtcdLock) -> Reply {
    etcd.set_group(Some(&client.group));
    let result = match op {
        Operation::PreReboot => etcd.lock(&client.id).map(|locked| match locked {
            Locked::Acquired => format!("{} took a slot of {}", client.id, etcd.key()),
            Locked::AlreadyHeld => format!("{} holds a slot of {} already", client.id, etcd.key()),
        }),
        Operation::SteadyState => etcd.unlock_if_held(&client.id).map(|released| {
            if released {
                format!("{} released its slot of {}", client.id, etcd.key())
            } else {
                format!("{} holds no slot of {}", client.id, etcd.key())
            }
        }),
    };
    match result {
        Ok(event) => {
            eprintln!("{event}");
            Reply::ok()
        }
        Err(e @ EtcdError::Full { .. }) => Reply::error(409, KIND_SEMAPHORE_FULL, e.to_string()),
        Err(e) => {
            eprintln!("error: {e}");
            Reply::error(500, "failed_lock", e.to_string())
        }
    }
}

/// A bound FleetLock server, not yet serving.
pub struct LockServer {
    http: Arc<tiny_http::Server>,
    etcd: EtcdConfig,
    workers: usize,
}

impl LockServer {
    /// Listens on `listen` (e.g. `0.0.0.0:3333`, or port 0 for any) and checks the etcd client
    /// configuration (TLS files, credentials); etcd itself need not be up yet.
    pub fn bind(listen: &str, etcd: &EtcdConfig) -> Result<LockServer, ServerError> {
        match EtcdLock::connect(etcd) {
            Ok(_) | Err(EtcdError::Unreachable { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        let http = tiny_http::Server::http(listen).map_err(|e| ServerError::Listen {
            addr: listen.to_owned(),
            cause: e.to_string(),
        })?;
        Ok(LockServer {
            http: Arc::new(http),
            etcd: etcd.clone(),
            workers: DEFAULT_WORKERS,
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.http.server_addr().to_ip()
    }

    /// Serves until the listener fails.
    pub fn run(self) {
        let workers: Vec<_> = (0..self.workers)
            .map(|_| {
                let http = Arc::clone(&self.http);
                let config = self.etcd.clone();
                std::thread::spawn(move || worker(&http, &config))
            })
            .collect();
        for w in workers {
            let _ = w.join();
        }
    }
}

/// Binds and serves (`update-engine lock-server`).
pub fn serve(listen: &str, etcd: &EtcdConfig) -> Result<(), ServerError> {
    let server = LockServer::bind(listen, etcd)?;
    if let Some(addr) = server.local_addr() {
        eprintln!("FleetLock server listening on {addr}");
    }
    server.run();
    Ok(())
}

/// One worker: its own etcd connection, made on first use and again after a failed attempt.
fn worker(http: &tiny_http::Server, config: &EtcdConfig) {
    let mut etcd: Option<EtcdLock> = None;
    while let Ok(mut request) = http.recv() {
        let reply = match read_request(&mut request) {
            Err(reply) => reply,
            Ok((op, client)) => {
                if etcd.is_none() {
                    etcd = EtcdLock::connect(config)
                        .map_err(|e| eprintln!("error: {e}"))
                        .ok();
                }
                match etcd.as_mut() {
                    Some(etcd) => execute(op, &client, etcd),
                    None => Reply::error(500, "failed_sem_init", "cannot connect to etcd"),
                }
            }
        };
        let mut response =
            tiny_http::Response::from_string(reply.body).with_status_code(reply.status);
        if reply.status != 200 {
            if let Ok(h) = "Content-Type: application/json".parse::<tiny_http::Header>() {
                response.add_header(h);
            }
        }
        let _ = request.respond(response);
    }
}

fn read_request(request: &mut tiny_http::Request) -> Result<(Operation, ClientParams), Reply> {
    let header = request
        .headers()
        .iter()
        .find(|h| h.field.equiv(PROTOCOL_HEADER))
        .map(|h| h.value.as_str().to_owned());
    let mut body = Vec::new();
    request
        .as_reader()
        .take(MAX_BODY)
        .read_to_end(&mut body)
        .map_err(|e| {
            Reply::error(
                400,
                "invalid_client_identity",
                format!("reading the body: {e}"),
            )
        })?;
    let method = request.method().as_str().to_owned();
    parse_request(&method, request.url(), header.as_deref(), &body)
}

#[cfg(test)]
#[path = "server_http_tests.rs"]
mod http_tests;

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = br#"{"client_params":{"id":"m1","group":"default"}}"#;

    fn kind(r: Reply) -> (u16, String) {
        let e: RemoteError = serde_json::from_str(&r.body).unwrap();
        (r.status, e.kind)
    }

    #[test]
    fn good_requests() {
        let (op, params) = parse_request("POST", "/v1/pre-reboot", Some("true"), BODY).unwrap();
        assert_eq!(op, Operation::PreReboot);
        assert_eq!(
            (params.id.as_str(), params.group.as_str()),
            ("m1", "default")
        );
        let (op, _) = parse_request("POST", "/v1/steady-state", Some("true"), BODY).unwrap();
        assert_eq!(op, Operation::SteadyState);
    }

    struct Case {
        name: &'static str,
        method: &'static str,
        path: &'static str,
        header: Option<&'static str>,
        body: &'static [u8],
        want: (u16, &'static str),
    }

    #[test]
    fn bad_requests() {
        const INVALID: (u16, &str) = (400, "invalid_client_identity");
        let post = |name, header, body, want| Case {
            name,
            method: "POST",
            path: PRE_REBOOT_PATH,
            header,
            body,
            want,
        };
        let cases = [
            post("no header", None, BODY, INVALID),
            post("header not true", Some("false"), BODY, INVALID),
            post("no client_params", Some("true"), b"{}", INVALID),
            post("not JSON", Some("true"), b"not json", INVALID),
            post(
                "empty id",
                Some("true"),
                br#"{"client_params":{"id":"","group":"default"}}"#,
                INVALID,
            ),
            post(
                "group with a slash",
                Some("true"),
                br#"{"client_params":{"id":"m","group":"a/b"}}"#,
                INVALID,
            ),
            post(
                "empty group",
                Some("true"),
                br#"{"client_params":{"id":"m","group":""}}"#,
                INVALID,
            ),
            Case {
                name: "GET",
                method: "GET",
                path: PRE_REBOOT_PATH,
                header: Some("true"),
                body: BODY,
                want: (405, "method_not_allowed"),
            },
            Case {
                name: "v2",
                method: "POST",
                path: "/v2/pre-reboot",
                header: Some("true"),
                body: BODY,
                want: (404, "not_found"),
            },
        ];
        for c in cases {
            let reply = parse_request(c.method, c.path, c.header, c.body).unwrap_err();
            assert_eq!(kind(reply), (c.want.0, c.want.1.to_owned()), "{}", c.name);
        }
    }
}
