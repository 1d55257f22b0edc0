//! `image-builder validate-config FILE`: findings as `FILE:LINE: kind: message`, exit 0 without
//! errors (warnings allowed), 1 with errors, non-zero with a clear message for an unreadable file.

use std::path::Path;
use std::process::{Command, Output};

use tests::{image_builder_bin, text};

fn validate(path: &Path) -> Output {
    Command::new(image_builder_bin())
        .arg("validate-config")
        .arg(path)
        .output()
        .expect("run image-builder")
}

fn write(dir: &Path, name: &str, content: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, content).expect("write config");
    p
}

#[test]
fn a_good_config_passes_with_its_warnings_listed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = write(
        dir.path(),
        "good.yaml",
        "#cloud-config
hostname: node1
ssh_authorized_keys:
  - ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG core@laptop
coreos:
  update:
    reboot-strategy: off
  units:
    - name: hello.service
      command: start
      content: |
        [Service]
        ExecStart=/bin/echo $private_ipv4
  etcd2:
    name: node1
",
    );
    let o = validate(&p);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    let want = format!(
        "{}:14: warning: deprecated key \"etcd2\" (etcd2 is no longer shipped in Container Linux)\n",
        p.display()
    );
    assert_eq!(stdout, want);
}

#[test]
fn a_config_with_errors_fails_and_names_the_lines() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = write(
        dir.path(),
        "bad.yaml",
        "#cloud-config
coreos:
  update:
    reboot-strategy: false
  units:
    - name: a.service
      command: lol
      enable: \"yes\"
write_files:
  - path: /usr/local/bin/x
    permissions: 0800
",
    );
    let o = validate(&p);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let d = p.display();
    let want = [
        format!("{d}:4: error: invalid value false"),
        format!("{d}:7: error: invalid value lol"),
        format!("{d}:8: warning: incorrect type for \"enable\" (want bool)"),
        format!("{d}:10: error: file cannot be written to a read-only filesystem"),
        format!("{d}:11: error: invalid value 0800"),
    ];
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(stdout.lines().collect::<Vec<_>>(), want);
}

#[test]
fn update_values_the_engine_cannot_use_fail_up_front() {
    // Issue 16: upstream's patterns let these through; the engine could not use them.
    let dir = tempfile::tempdir().expect("tempdir");
    let p = write(
        dir.path(),
        "update.yaml",
        "#cloud-config
coreos:
  update:
    reboot-strategy: reboot
    server: updates.example/v1
  locksmith:
    window-start: \"04:00\"
    window-length: -1h
",
    );
    let o = validate(&p);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let d = p.display();
    let want = [
        format!(
            "{d}:5: error: invalid value updates.example/v1: expected an http:// or https:// URL: \
             a host, an optional port and path, no query, no spaces (no http:// or https://); \
             the update engine cannot use SERVER=\"updates.example/v1\""
        ),
        format!(
            "{d}:8: error: invalid value -1h: expected a duration like 1h30m (must not be \
             negative); the update engine cannot use REBOOT_WINDOW_LENGTH=\"-1h\""
        ),
    ];
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(stdout.lines().collect::<Vec<_>>(), want);

    // Fine alone, but a daily window as long as a day is no window.
    let p = write(
        dir.path(),
        "window.yaml",
        "#cloud-config\ncoreos:\n  locksmith:\n    window-start: \"04:00\"\n    window-length: 24h\n",
    );
    let o = validate(&p);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.starts_with(&format!(
            "{}:5: error: invalid value 24h: expected a duration like 1h30m (must be shorter than \
             the window's period (a day))",
            p.display()
        )),
        "{stdout}"
    );
}

#[test]
fn yaml_errors_and_missing_headers_fail() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broken = write(dir.path(), "broken.yaml", "#cloud-config\nhostname: [a\n");
    let o = validate(&broken);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let prefix = format!("{}:2: error: ", broken.display());
    assert!(
        String::from_utf8_lossy(&o.stdout).starts_with(&prefix),
        "{}",
        text(&o)
    );

    let headless = write(dir.path(), "headless.yaml", "hostname: a\n");
    let o = validate(&headless);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let want = format!(
        "{}:1: error: must be \"#cloud-config\" or begin with \"#!\"\n",
        headless.display()
    );
    assert_eq!(String::from_utf8_lossy(&o.stdout), want);

    let script = write(dir.path(), "script.sh", "#!/bin/sh\necho hi\n");
    let o = validate(&script);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(o.stdout.is_empty());
}

#[test]
fn an_unreadable_file_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("missing.yaml");
    let o = validate(&missing);
    assert_ne!(o.status.code(), Some(0));
    assert!(o.status.code().is_some(), "killed by a signal");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains(&format!("error: reading {}", missing.display())),
        "{stderr}"
    );
    assert!(o.stdout.is_empty());
    // A directory cannot be read as a file either.
    let o = validate(dir.path());
    assert_ne!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stderr).contains("error: reading"));
}
