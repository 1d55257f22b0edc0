//! A real etcd (Debian's `etcd-server`, HOST.md "etcd") for the reboot lock tests: one member on
//! loopback, a temporary data directory, free ports; killed on drop, and restartable on the same
//! data directory and ports.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// How long etcd may take to become healthy (it takes under a second here).
const START_TIMEOUT: Duration = Duration::from_secs(30);

pub use crate::free_port;

/// A running etcd member.
pub struct Etcd {
    dir: tempfile::TempDir,
    client_port: u16,
    peer_port: u16,
    child: Option<Child>,
}

impl Etcd {
    /// Starts etcd on free loopback ports and waits until it is healthy.
    pub fn start() -> Etcd {
        let mut etcd = Etcd {
            dir: tempfile::tempdir().expect("tempdir"),
            client_port: free_port(),
            peer_port: free_port(),
            child: None,
        };
        etcd.spawn();
        etcd
    }

    /// The client URL (`http://127.0.0.1:PORT`).
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("etcd.log")
    }

    /// What etcd logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn spawn(&mut self) {
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("etcd log file");
        let child = Command::new("etcd")
            .arg("--name=test")
            .arg(format!(
                "--data-dir={}",
                self.dir.path().join("data").display()
            ))
            .arg(format!("--listen-client-urls={}", self.endpoint()))
            .arg(format!("--advertise-client-urls={}", self.endpoint()))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster=test={peer}"))
            .arg("--initial-cluster-state=new")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect(
                "starting etcd (Debian package etcd-server; scripts/setup-host.sh installs it)",
            );
        self.child = Some(child);
        self.wait_healthy();
    }

    fn wait_healthy(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!("etcd exited with {status}:\n{}", self.log());
            }
            if self.healthy() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "etcd not healthy within {START_TIMEOUT:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `GET /health` answers `"health":"true"`.
    fn healthy(&self) -> bool {
        let probe = || -> std::io::Result<String> {
            let addr = ([127, 0, 0, 1], self.client_port).into();
            let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
            s.set_read_timeout(Some(Duration::from_secs(2)))?;
            s.write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
            let mut text = String::new();
            s.read_to_string(&mut text)?;
            Ok(text)
        };
        probe().is_ok_and(|t| t.contains("\"health\":\"true\""))
    }

    /// Kills etcd (SIGKILL) and waits for it to be gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts etcd again on the same data directory and ports, and waits until it is healthy.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// `etcdctl ARGS` (API v3) against this etcd.
    pub fn etcdctl(&self, args: &[&str]) -> Output {
        Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={}", self.endpoint()))
            .args(args)
            .output()
            .expect("running etcdctl (Debian package etcd-client)")
    }

    /// The value of `key` read with `etcdctl get` (`None` when absent).
    pub fn get(&self, key: &str) -> Option<String> {
        let o = self.etcdctl(&["get", "--print-value-only", key]);
        assert!(o.status.success(), "etcdctl get {key}: {}", crate::text(&o));
        let value = String::from_utf8_lossy(&o.stdout);
        let value = value.strip_suffix('\n').unwrap_or(&value);
        (!value.is_empty()).then(|| value.to_owned())
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.kill();
    }
}
