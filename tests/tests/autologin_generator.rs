//! The container host's `coreos-autologin` systemd generator (a shell script in
//! services/container-host/): which getty drop-ins it writes for which kernel command line.

use std::process::Command;

use tests::repo_root;

/// Runs the generator for `cmdline`; returns (relative path, content) of every file written.
fn generate(cmdline: &str) -> Vec<(String, String)> {
    let dir = tempfile::tempdir().unwrap();
    let cmdline_file = dir.path().join("cmdline");
    std::fs::write(&cmdline_file, format!("{cmdline}\n")).unwrap();
    let out = dir.path().join("out");
    let script = repo_root().join("services/container-host/autologin-generator");
    let o = Command::new("sh")
        .arg(&script)
        .arg(&out)
        .arg(dir.path().join("early"))
        .arg(dir.path().join("late"))
        .env("PROC_CMDLINE", &cmdline_file)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut files = Vec::new();
    if out.exists() {
        for unit in std::fs::read_dir(&out).unwrap() {
            let unit = unit.unwrap();
            for f in std::fs::read_dir(unit.path()).unwrap() {
                let f = f.unwrap();
                files.push((
                    format!(
                        "{}/{}",
                        unit.file_name().to_string_lossy(),
                        f.file_name().to_string_lossy()
                    ),
                    std::fs::read_to_string(f.path()).unwrap(),
                ));
            }
        }
    }
    files.sort();
    files
}

const SERIAL: &str = "[Service]\nExecStart=\nExecStart=-/sbin/agetty --autologin core --keep-baud 115200,57600,38400,9600 %I $TERM\n";
const VT: &str =
    "[Service]\nExecStart=\nExecStart=-/sbin/agetty --autologin core --noclear %I $TERM\n";

#[test]
fn every_console_one_console_or_none() {
    assert_eq!(generate("console=ttyS0 quiet"), []);
    assert_eq!(
        generate("console=ttyS0 coreos.autologin"),
        [
            (
                "getty@.service.d/10-autologin.conf".to_string(),
                VT.to_string()
            ),
            (
                "serial-getty@.service.d/10-autologin.conf".to_string(),
                SERIAL.to_string()
            ),
        ]
    );
    assert_eq!(
        generate("flatcar.autologin=ttyS0"),
        [(
            "serial-getty@ttyS0.service.d/10-autologin.conf".to_string(),
            SERIAL.to_string()
        )]
    );
    assert_eq!(
        generate("coreos.autologin=tty1"),
        [(
            "getty@tty1.service.d/10-autologin.conf".to_string(),
            VT.to_string()
        )]
    );
}
