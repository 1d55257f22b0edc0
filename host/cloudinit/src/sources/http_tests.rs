//! The network sources against HTTP servers started on loopback: EC2's IMDSv2 (the server
//! refuses requests without the session token) and `cloud-config-url=`, including 404, 500 and
//! timeouts.

use std::fs;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cloudconfig::Addresses;
use tempfile::TempDir;

use super::http::{Http, HttpError};
use super::*;
use crate::host::fake::FakeHost;

/// A request as the server saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    method: String,
    url: String,
    ttl: Option<String>,
    token: Option<String>,
}

type Handler = dyn Fn(&Seen) -> (u16, String) + Send + Sync;

/// A loopback server answering with `handler`, recording every request.
struct Server {
    http: Arc<tiny_http::Server>,
    base: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Server {
    fn start(handler: impl Fn(&Seen) -> (u16, String) + Send + Sync + 'static) -> Server {
        let http = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
        let port = http.server_addr().to_ip().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (h, s) = (http.clone(), seen.clone());
        let handler: Box<Handler> = Box::new(handler);
        std::thread::spawn(move || {
            for req in h.incoming_requests() {
                let header = |name: &'static str| {
                    req.headers()
                        .iter()
                        .find(|x| x.field.equiv(name))
                        .map(|x| x.value.to_string())
                };
                let seen = Seen {
                    method: req.method().to_string(),
                    url: req.url().to_string(),
                    ttl: header(ec2::TOKEN_TTL_HEADER),
                    token: header(ec2::TOKEN_HEADER),
                };
                s.lock().unwrap().push(seen.clone());
                let (status, body) = handler(&seen);
                let _ =
                    req.respond(tiny_http::Response::from_string(body).with_status_code(status));
            }
        });
        Server {
            http,
            base: format!("http://127.0.0.1:{port}"),
            seen,
        }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.http.unblock();
    }
}

/// Fast retries for tests.
const FAST: Policy = Policy {
    attempts: 3,
    max_failures: 3,
    first_delay: Duration::from_millis(10),
    max_delay: Duration::from_millis(20),
    connect_timeout: Duration::from_secs(2),
    timeout: Duration::from_secs(5),
};

const TOKEN: &str = "AQAEAFake-Token==";

/// IMDSv2 as AWS serves it: a token from PUT, required on every GET (401 without).
fn imds(user_data: Option<&'static str>) -> impl Fn(&Seen) -> (u16, String) {
    move |req| {
        if req.method == "PUT" {
            return match (req.url.as_str(), req.ttl.as_deref()) {
                (ec2::TOKEN_PATH, Some("21600")) => (200, TOKEN.into()),
                (ec2::TOKEN_PATH, _) => (400, "missing TTL".into()),
                _ => (405, String::new()),
            };
        }
        if req.token.as_deref() != Some(TOKEN) {
            return (401, String::new());
        }
        let meta = |item: &str| format!("{}{item}", ec2::META_DATA_PATH);
        let body = match req.url.as_str() {
            ec2::USER_DATA_PATH => user_data.map(str::to_string),
            u if u == meta("local-ipv4") => Some("10.0.0.5".into()),
            u if u == meta("public-ipv4") => Some("54.1.2.3".into()),
            u if u == meta("hostname") => Some("ip-10-0-0-5.ec2.internal".into()),
            u if u == meta("public-keys/") => Some("0=my-key\n1=other".into()),
            u if u == meta("public-keys/0/openssh-key") => Some("ssh-ed25519 AAAA my-key\n".into()),
            u if u == meta("public-keys/1/openssh-key") => Some("ssh-rsa BBBB other".into()),
            _ => None,
        };
        match body {
            Some(b) => (200, b),
            None => (404, "Not Found".into()),
        }
    }
}

fn expected_metadata() -> Metadata {
    Metadata {
        hostname: Some("ip-10-0-0-5.ec2.internal".into()),
        ssh_public_keys: vec![
            "ssh-ed25519 AAAA my-key".into(),
            "ssh-rsa BBBB other".into(),
        ],
        addresses: Addresses {
            private_ipv4: Some("10.0.0.5".into()),
            public_ipv4: Some("54.1.2.3".into()),
            ..Addresses::default()
        },
        ..Metadata::default()
    }
}

#[test]
fn ec2_imdsv2_token_first_then_every_get_carries_it() {
    let server = Server::start(imds(Some("#cloud-config\nhostname: web1\n")));
    let http = Http::new(FAST, false).unwrap();
    let found = ec2::fetch(&http, &server.base).unwrap();
    assert_eq!(
        found,
        Found {
            source: format!("EC2 instance metadata {}", server.base),
            user_data: b"#cloud-config\nhostname: web1\n".to_vec(),
            metadata: expected_metadata(),
        }
    );
    let seen = server.seen();
    assert_eq!(
        seen[0],
        Seen {
            method: "PUT".into(),
            url: "/latest/api/token".into(),
            ttl: Some("21600".into()),
            token: None,
        }
    );
    assert!(seen[1..]
        .iter()
        .all(|s| s.method == "GET" && s.token.as_deref() == Some(TOKEN)));
    assert!(seen
        .iter()
        .all(|s| s.method == "PUT" || s.url.starts_with("/latest/")));
    // The server does enforce the token.
    let e = http
        .get(&format!("{}/latest/user-data", server.base), &[])
        .unwrap_err();
    assert_eq!(e.status(), Some(401));
}

#[test]
fn ec2_without_user_data_still_gives_metadata() {
    let server = Server::start(imds(None));
    let http = Http::new(FAST, false).unwrap();
    let found = ec2::fetch(&http, &format!("{}/", server.base)).unwrap();
    assert!(found.user_data.is_empty());
    assert_eq!(found.metadata, expected_metadata());
}

#[test]
fn ec2_compatible_services_without_tokens() {
    let server = Server::start(|req: &Seen| match (req.method.as_str(), req.url.as_str()) {
        ("PUT", _) => (405, String::new()),
        (_, ec2::USER_DATA_PATH) if req.token.is_none() => (200, "#!/bin/sh\n".into()),
        _ => (404, String::new()),
    });
    let http = Http::new(FAST, false).unwrap();
    let found = ec2::fetch(&http, &server.base).unwrap();
    assert_eq!(found.user_data, b"#!/bin/sh\n");
    assert_eq!(found.metadata, Metadata::default());
}

#[test]
fn ec2_only_where_dmi_says_ec2_or_forced() {
    let server = Server::start(imds(Some("#cloud-config\n")));
    let tmp = TempDir::with_prefix("http-ec2-dmi").unwrap();
    let root = tmp.path();
    fs::create_dir_all(root.join("sys/firmware/qemu_fw_cfg")).unwrap();
    let host = FakeHost::default();
    let ctx = Context {
        ec2_base_url: server.base.clone(),
        imds_policy: FAST,
        ..Context::new(root, &host)
    };
    assert!(search(&SourceKind::ORDER, false, &ctx).found.is_none());
    assert!(
        server.seen().is_empty(),
        "IMDS asked although DMI does not say EC2"
    );
    let found = search(&[SourceKind::Ec2], true, &ctx).found.unwrap();
    assert_eq!(found.user_data, b"#cloud-config\n");
    fs::create_dir_all(root.join("sys/class/dmi/id")).unwrap();
    fs::write(root.join("sys/class/dmi/id/board_vendor"), "Amazon EC2\n").unwrap();
    let found = search(&SourceKind::ORDER, false, &ctx).found.unwrap();
    assert_eq!(
        found.metadata.hostname.as_deref(),
        Some("ip-10-0-0-5.ec2.internal")
    );
}

#[test]
fn ec2_unreachable_is_an_error_quickly() {
    // A port nothing listens on: connection refused at once, three times.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let http = Http::new(FAST, false).unwrap();
    let e = ec2::fetch(&http, &format!("http://127.0.0.1:{port}")).unwrap_err();
    let text = e.to_string();
    assert!(
        text.starts_with(&format!(
            "PUT http://127.0.0.1:{port}/latest/api/token: giving up after 3 attempts: "
        )),
        "{text}"
    );
}

fn cmdline_root(url: &str) -> TempDir {
    let tmp = TempDir::with_prefix("http-cmdline").unwrap();
    let root = tmp.path();
    fs::create_dir_all(root.join("proc")).unwrap();
    fs::write(
        root.join("proc/cmdline"),
        format!("ro cloud-config-url={url} quiet\n"),
    )
    .unwrap();
    fs::create_dir_all(root.join("sys/firmware/qemu_fw_cfg")).unwrap();
    tmp
}

#[test]
fn cmdline_url_is_fetched() {
    let server = Server::start(|req: &Seen| match req.url.as_str() {
        "/cc.yaml" => (200, "#cloud-config\nhostname: pxe1\n".into()),
        _ => (404, String::new()),
    });
    let url = format!("{}/cc.yaml", server.base);
    let tmp = cmdline_root(&url);
    let host = FakeHost::default();
    let ctx = Context {
        url_policy: FAST,
        ..Context::new(tmp.path(), &host)
    };
    let s = search(&SourceKind::ORDER, false, &ctx);
    assert_eq!(
        s.found.unwrap(),
        Found {
            source: format!("kernel command line URL {url}"),
            user_data: b"#cloud-config\nhostname: pxe1\n".to_vec(),
            metadata: Metadata::default(),
        }
    );
    assert!(s.errors.is_empty());
    assert_eq!(from_url(&url, &ctx).unwrap().source, format!("URL {url}"));
}

/// Runs the sources with a cmdline URL served by `handler` and a Vagrant file as fallback.
fn cmdline_failure(
    handler: impl Fn(&Seen) -> (u16, String) + Send + Sync + 'static,
    policy: Policy,
) -> (String, String, usize) {
    let server = Server::start(handler);
    let url = format!("{}/cc.yaml", server.base);
    let tmp = cmdline_root(&url);
    fs::create_dir_all(tmp.path().join("var/lib/coreos-vagrant")).unwrap();
    fs::write(tmp.path().join(VAGRANT_USER_DATA), "#cloud-config\n").unwrap();
    let host = FakeHost::default();
    let ctx = Context {
        url_policy: policy,
        ..Context::new(tmp.path(), &host)
    };
    let s = search(&SourceKind::ORDER, false, &ctx);
    assert!(
        s.found.unwrap().source.starts_with("Vagrant"),
        "the next source is used"
    );
    assert_eq!(s.errors.len(), 1);
    assert_eq!(s.errors[0].0, SourceKind::Cmdline);
    (url, s.errors[0].1.to_string(), server.seen().len())
}

#[test]
fn cmdline_url_404_is_not_retried() {
    let (url, e, requests) = cmdline_failure(|_: &Seen| (404, String::new()), FAST);
    assert_eq!(e, format!("GET {url}: HTTP 404"));
    assert_eq!(requests, 1);
}

#[test]
fn cmdline_url_500_is_retried_then_reported() {
    let (url, e, requests) = cmdline_failure(|_: &Seen| (500, "oops".into()), FAST);
    assert_eq!(e, format!("GET {url}: HTTP 500"));
    assert_eq!(requests, 3);
}

#[test]
fn cmdline_url_timeout_is_reported() {
    let slow = Policy {
        attempts: 2,
        timeout: Duration::from_millis(300),
        ..FAST
    };
    let (url, e, _) = cmdline_failure(
        |_: &Seen| {
            std::thread::sleep(Duration::from_millis(800));
            (200, "#cloud-config\n".into())
        },
        slow,
    );
    assert!(
        e.starts_with(&format!("GET {url}: giving up after 2 attempts: ")),
        "{e}"
    );
    assert!(e.contains("timed out"), "{e}");
}

#[test]
fn a_transient_500_is_retried_away() {
    let count = Arc::new(Mutex::new(0));
    let c = count.clone();
    let server = Server::start(move |_: &Seen| {
        let mut n = c.lock().unwrap();
        *n += 1;
        if *n == 1 {
            (503, String::new())
        } else {
            (200, "ok".into())
        }
    });
    let http = Http::new(FAST, true).unwrap();
    assert_eq!(http.get(&format!("{}/x", server.base), &[]).unwrap(), b"ok");
    assert_eq!(server.seen().len(), 2);
    let e = HttpError::Status {
        method: "GET".into(),
        url: "u".into(),
        status: 503,
    };
    assert_eq!(e.status(), Some(503));
}

/// `guestinfo.coreos.config.url` out of reach: with network variables the source is still
/// found (the network may be what the URL needs), its metadata carrying the failure; without
/// them the source fails.
#[test]
fn vmware_url_failure_keeps_the_network() {
    let server = Server::start(|req: &Seen| match req.url.as_str() {
        "/cc.yaml" => (200, "#cloud-config\nhostname: from-url\n".into()),
        _ => (404, String::new()),
    });
    let tmp = TempDir::with_prefix("http-vmware").unwrap();
    let vars = |url: &str, network: bool| {
        let mut g = vec![(vmware::URL_KEY.to_string(), url.to_string())];
        if network {
            g.push(("guestinfo.interface.0.name".into(), "ens192".into()));
            g.push(("guestinfo.interface.0.dhcp".into(), "yes".into()));
        }
        FakeHost {
            guestinfo: g.into_iter().collect(),
            ..FakeHost::default()
        }
    };
    let run = |host: &FakeHost| {
        let ctx = Context {
            url_policy: FAST,
            ..Context::new(tmp.path(), host)
        };
        probe(SourceKind::Vmware, &ctx)
    };
    let good = format!("{}/cc.yaml", server.base);
    let found = run(&vars(&good, true)).unwrap().unwrap();
    assert_eq!(found.user_data, b"#cloud-config\nhostname: from-url\n");
    assert_eq!(found.source, format!("VMware guestinfo ({good})"));
    assert!(found.metadata.warnings.is_empty());
    let bad = format!("{}/missing", server.base);
    let found = run(&vars(&bad, true)).unwrap().unwrap();
    assert!(found.user_data.is_empty());
    assert_eq!(found.metadata.network.unwrap().files.len(), 1);
    assert_eq!(
        found.metadata.warnings,
        [format!(
            "guestinfo.coreos.config.url {bad}: GET {bad}: HTTP 404: no user-data; the network \
             configuration still applies"
        )]
    );
    let e = run(&vars(&bad, false)).unwrap_err();
    assert_eq!(e.to_string(), format!("GET {bad}: HTTP 404"));
}
