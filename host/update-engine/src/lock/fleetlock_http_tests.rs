//! The FleetLock client against a loopback server started here: what it sends, and how it reads
//! each kind of answer.

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use super::*;

/// What the server saw of one request.
#[derive(Debug)]
struct Seen {
    method: String,
    path: String,
    header: Option<String>,
    body: String,
}

/// Serves `answers` (status, body) in order, reporting each request; returns the base URL.
fn serve(answers: Vec<(u16, &'static str)>) -> (String, mpsc::Receiver<Seen>) {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let base = format!("http://{}/", server.server_addr().to_ip().unwrap());
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for (status, body) in answers {
            let Ok(mut req) = server.recv() else { return };
            let mut text = String::new();
            let _ = req.as_reader().read_to_string(&mut text);
            let header = req
                .headers()
                .iter()
                .find(|h| h.field.equiv(PROTOCOL_HEADER))
                .map(|h| h.value.to_string());
            let _ = tx.send(Seen {
                method: req.method().to_string(),
                path: req.url().to_owned(),
                header,
                body: text,
            });
            let _ = req.respond(tiny_http::Response::from_string(body).with_status_code(status));
        }
    });
    (base, rx)
}

#[test]
fn sends_the_protocol_and_reads_success() {
    let (base, seen) = serve(vec![(200, ""), (200, "")]);
    let client = FleetLockClient::new(&base, "web", "m1").unwrap();
    client.pre_reboot().unwrap();
    client.steady_state().unwrap();
    let first = seen.recv().unwrap();
    assert_eq!(
        (
            first.method.as_str(),
            first.path.as_str(),
            first.header.as_deref()
        ),
        ("POST", "/v1/pre-reboot", Some("true"))
    );
    assert_eq!(first.body, r#"{"client_params":{"id":"m1","group":"web"}}"#);
    assert_eq!(seen.recv().unwrap().path, "/v1/steady-state");
}

#[test]
fn base_url_with_a_path() {
    let (base, seen) = serve(vec![(200, "")]);
    let client = FleetLockClient::new(&format!("{base}fleet/"), "default", "m1").unwrap();
    client.pre_reboot().unwrap();
    assert_eq!(seen.recv().unwrap().path, "/fleet/v1/pre-reboot");
}

#[test]
fn json_errors_keep_their_kind() {
    let (base, _seen) = serve(vec![(
        409,
        r#"{"kind":"failed_lock_semaphore_full","value":"semaphore currently full"}"#,
    )]);
    let e = FleetLockClient::new(&base, "default", "m1")
        .unwrap()
        .pre_reboot()
        .unwrap_err();
    assert!(e.is_semaphore_full(), "{e:?}");
    assert_eq!(e.status(), Some(409));
    assert!(e.to_string().contains("semaphore currently full"), "{e}");
}

#[test]
fn other_errors_are_generic_http() {
    let (base, _seen) = serve(vec![(500, "<html>oops</html>"), (404, "")]);
    let client = FleetLockClient::new(&base, "default", "m1").unwrap();
    assert_eq!(client.pre_reboot().unwrap_err().kind(), "generic_http_500");
    assert_eq!(
        client.steady_state().unwrap_err().kind(),
        "generic_http_404"
    );
}

#[test]
fn no_server_is_a_failed_request() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let client =
        FleetLockClient::new(&format!("http://127.0.0.1:{port}"), "default", "m1").unwrap();
    let e = client.pre_reboot().unwrap_err();
    assert_eq!(e.kind(), "client_failed_request");
    assert_eq!(e.status(), None);
}

#[test]
fn a_silent_server_times_out() {
    // Accepts the connection and never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let _hold = thread::spawn(move || {
        let conn = listener.accept();
        thread::sleep(Duration::from_secs(30));
        drop(conn);
    });
    let client = FleetLockClient::with_timeout(
        &format!("http://{addr}"),
        "default",
        "m1",
        Duration::from_millis(300),
    )
    .unwrap();
    let e = client.pre_reboot().unwrap_err();
    assert_eq!(e.kind(), "client_failed_request", "{e}");
}
