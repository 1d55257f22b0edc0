//! The FleetLock server over loopback HTTP, with an etcd that is not there (the tests crate
//! drives it against a real etcd).

use std::time::Duration;

use super::*;
use crate::lock::fleetlock::FleetLockClient;

fn dead_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A server on a free port whose etcd refuses connections; returns its base URL.
fn server_without_etcd() -> String {
    let etcd = EtcdConfig {
        endpoints: vec![format!("http://127.0.0.1:{}", dead_port())],
        timeout: Duration::from_secs(2),
        ..EtcdConfig::default()
    };
    let server = LockServer::bind("127.0.0.1:0", &etcd).unwrap();
    let base = format!("http://{}", server.local_addr().unwrap());
    std::thread::spawn(move || server.run());
    base
}

#[test]
fn missing_header_is_invalid_client_identity() {
    let base = server_without_etcd();
    let response = reqwest::blocking::Client::new()
        .post(format!("{base}/v1/pre-reboot"))
        .body(r#"{"client_params":{"id":"m1","group":"default"}}"#)
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    let error: RemoteError = serde_json::from_slice(&response.bytes().unwrap()).unwrap();
    assert_eq!(error.kind, "invalid_client_identity");
}

#[test]
fn unreachable_etcd_is_a_500_json_error() {
    let base = server_without_etcd();
    let client = FleetLockClient::new(&base, "default", "m1").unwrap();
    for e in [
        client.pre_reboot().unwrap_err(),
        client.steady_state().unwrap_err(),
    ] {
        assert_eq!(
            (e.status(), e.kind().as_str()),
            (Some(500), "failed_lock"),
            "{e}"
        );
        assert!(e.to_string().contains("unreachable"), "{e}");
    }
}

#[test]
fn bad_listen_address_and_tls_files_fail_to_bind() {
    let etcd = EtcdConfig::default();
    let e = LockServer::bind("not an address", &etcd).err().unwrap();
    assert!(e.to_string().contains("not an address"), "{e}");
    let etcd = EtcdConfig {
        ca_file: Some("/nonexistent/ca.pem".into()),
        ..EtcdConfig::default()
    };
    let e = LockServer::bind("127.0.0.1:0", &etcd).err().unwrap();
    assert!(e.to_string().contains("/nonexistent/ca.pem"), "{e}");
}
