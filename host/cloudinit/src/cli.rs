//! The command line of `coreos-cloudinit`, with upstream's flag names where they exist
//! (`--from-file`, `--from-url`, `--from-vmware-ovf-env`, `--validate`): one of
//! `--from-sources`, `--from-file PATH`, `--from-url URL`, `--from-vmware-ovf-env PATH` or
//! `--source NAME…`, then [`super::run`]. A `--root` other than `/` is the
//! offline mode: only files under it change (see [`super::host::OfflineHost`]).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::{ArgGroup, Parser};

use super::host::{Host, LiveHost, OfflineHost};
use super::sources::{ec2, SourceKind};
use super::{Console, Input, Options};

/// `coreos-cloudinit`.
#[derive(Debug, Parser)]
#[command(
    name = "coreos-cloudinit",
    version,
    about = "Apply Container Linux cloud-config user-data at boot",
    group(ArgGroup::new("input").required(true).args(["from_sources", "from_file", "from_url", "from_vmware_ovf_env", "source"]))
)]
pub struct Cli {
    /// Try every source in order: cmdline, install, qemu-fw-cfg, config-drive, nocloud, vagrant, vmware, ec2
    #[arg(long)]
    pub from_sources: bool,
    /// Read user-data from a file
    #[arg(long, value_name = "PATH")]
    pub from_file: Option<PathBuf>,
    /// Fetch user-data from an http:// or https:// URL
    #[arg(long, value_name = "URL")]
    pub from_url: Option<String>,
    /// Read user-data and network settings from a VMware OVF environment document (ovf-env.xml)
    #[arg(long, value_name = "PATH")]
    pub from_vmware_ovf_env: Option<PathBuf>,
    /// Try only this source, without its platform check (repeatable)
    #[arg(long, value_name = "NAME")]
    pub source: Vec<SourceKind>,
    /// Only validate the user-data found and print the findings
    #[arg(long)]
    pub validate: bool,
    /// Print the plan, change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// The file system root; anything but / changes files only (no systemctl, hostname, scripts)
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,
    /// The file in ~/.ssh/authorized_keys.d that SSH keys go to
    #[arg(long, value_name = "NAME", default_value = super::ssh::KEY_NAME, value_parser = key_name)]
    pub ssh_key_name: String,
    /// Base URL of the EC2 instance metadata service
    #[arg(long, value_name = "URL", default_value = ec2::DEFAULT_BASE_URL)]
    pub ec2_metadata_url: String,
}

/// Parses `args` (argv[0] included).
pub fn parse(args: Vec<OsString>) -> Result<Cli, clap::Error> {
    Cli::try_parse_from(args)
}

impl Cli {
    /// The run's options.
    pub fn options(&self) -> Options {
        let input = if let Some(path) = &self.from_file {
            Input::File(path.clone())
        } else if let Some(url) = &self.from_url {
            Input::Url(url.clone())
        } else if let Some(path) = &self.from_vmware_ovf_env {
            Input::VmwareOvfEnv(path.clone())
        } else if !self.source.is_empty() {
            Input::Sources {
                only: Some(self.source.clone()),
            }
        } else {
            Input::Sources { only: None }
        };
        Options {
            dry_run: self.dry_run,
            validate_only: self.validate,
            ec2_base_url: self.ec2_metadata_url.clone(),
            ssh_key_name: self.ssh_key_name.clone(),
            ..Options::new(&self.root, input)
        }
    }
}

/// A file name for `authorized_keys.d`: letters, digits, `.`, `_`, `-`, not starting with `.`.
fn key_name(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && !s.starts_with('.')
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(s.to_string())
    } else {
        Err(format!(
            "{s:?} is not a key file name (letters, digits, '.', '_', '-')"
        ))
    }
}

/// Whether `root` is this system's root.
pub fn is_live_root(root: &Path) -> bool {
    root.canonicalize().is_ok_and(|p| p == Path::new("/"))
}

/// Runs the agent; returns the exit status (0: nothing failed).
pub fn run(cli: Cli) -> i32 {
    let opts = cli.options();
    let (stdout, stderr) = (std::io::stdout(), std::io::stderr());
    let (mut out, mut err) = (stdout.lock(), stderr.lock());
    let mut console = Console {
        out: &mut out,
        err: &mut err,
    };
    let host: &dyn Host = if is_live_root(&opts.root) {
        &LiveHost
    } else {
        console.say(format!(
            "offline mode under {}: files only, no systemctl, hostname or scripts",
            opts.root.display()
        ));
        &OfflineHost
    };
    let summary = super::run(&opts, host, &mut console);
    if summary.success() {
        0
    } else {
        console.warn(format!("{} problem(s), see above", summary.failures));
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PROGRAM;

    fn cli(args: &[&str]) -> Result<Cli, clap::Error> {
        parse(
            std::iter::once(PROGRAM)
                .chain(args.iter().copied())
                .map(OsString::from)
                .collect(),
        )
    }

    #[test]
    fn inputs() {
        let o = cli(&["--from-sources"]).unwrap().options();
        assert_eq!(o.input, Input::Sources { only: None });
        assert_eq!(o.root, Path::new("/"));
        assert_eq!(o.ec2_base_url, "http://169.254.169.254");
        let o = cli(&["--source", "ec2", "--source", "vagrant", "--dry-run"])
            .unwrap()
            .options();
        assert_eq!(
            o.input,
            Input::Sources {
                only: Some(vec![SourceKind::Ec2, SourceKind::Vagrant])
            }
        );
        assert!(o.dry_run);
        let o = cli(&["--from-file", "/tmp/u", "--root", "/mnt", "--validate"])
            .unwrap()
            .options();
        assert_eq!(o.input, Input::File("/tmp/u".into()));
        assert!(o.validate_only);
        assert_eq!(
            cli(&["--from-url", "http://x/y"]).unwrap().options().input,
            Input::Url("http://x/y".into())
        );
        assert_eq!(
            cli(&["--from-vmware-ovf-env", "/media/ovfenv/ovf-env.xml"])
                .unwrap()
                .options()
                .input,
            Input::VmwareOvfEnv("/media/ovfenv/ovf-env.xml".into())
        );
    }

    #[test]
    fn ssh_key_names() {
        let o = cli(&["--from-sources"]).unwrap().options();
        assert_eq!(o.ssh_key_name, "coreos-cloudinit");
        let o = cli(&[
            "--from-file",
            "/oem/cloud-config.yml",
            "--ssh-key-name",
            "oem",
        ]);
        assert_eq!(o.unwrap().options().ssh_key_name, "oem");
        for bad in ["", ".hidden", "a/b", "../x", "sp ace"] {
            assert!(
                cli(&["--from-sources", "--ssh-key-name", bad]).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn refused_command_lines() {
        assert!(cli(&[]).is_err(), "a source is required");
        assert!(cli(&["--from-sources", "--from-file", "x"]).is_err());
        assert!(cli(&["--from-vmware-ovf-env", "x", "--from-url", "http://x/"]).is_err());
        let e = cli(&["--source", "azure"]).unwrap_err().to_string();
        assert!(e.contains("unknown source \"azure\""), "{e}");
    }

    #[test]
    fn the_boot_unit_runs_a_valid_command_line() {
        let unit = include_str!("../../../services/units/coreos-cloudinit.service");
        let exec = unit
            .lines()
            .find_map(|l| l.strip_prefix("ExecStart=-"))
            .expect("ExecStart=-");
        let mut words = exec.split_whitespace();
        assert_eq!(words.next(), Some("/usr/bin/coreos-cloudinit"));
        let args: Vec<&str> = words.collect();
        assert_eq!(
            cli(&args).unwrap().options().input,
            Input::Sources { only: None }
        );
        let install = crate::units::parse_install(unit);
        assert_eq!(install.wanted_by, ["multi-user.target"]);
    }

    /// The command line of the unit udev starts for a late drive, and the labels it starts it
    /// for: both kinds of seed drive, in the two cases cloud-init looks for.
    #[test]
    fn the_drive_unit_and_its_udev_rule_cover_both_seed_drives() {
        use crate::sources::{configdrive, nocloud};
        let unit = include_str!("../../../services/units/coreos-cloudinit-drive@.service");
        let exec = unit
            .lines()
            .find_map(|l| l.strip_prefix("ExecStart=-/usr/bin/coreos-cloudinit "))
            .expect("ExecStart=-/usr/bin/coreos-cloudinit");
        let args: Vec<&str> = exec.split_whitespace().collect();
        assert_eq!(
            cli(&args).unwrap().options().input,
            Input::Sources {
                only: Some(vec![SourceKind::ConfigDrive, SourceKind::NoCloud])
            }
        );
        let rules =
            include_str!("../../../services/container-host/90-coreos-cloudinit-drive.rules");
        let rule = rules
            .lines()
            .find(|l| !l.starts_with('#') && !l.trim().is_empty())
            .expect("a rule");
        let labels = rule
            .split("ENV{ID_FS_LABEL}==\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .expect("ENV{ID_FS_LABEL}==");
        let labels: Vec<&str> = labels.split('|').collect();
        for label in [configdrive::LABEL, nocloud::LABEL] {
            assert!(labels.contains(&label), "{label} in {labels:?}");
            let upper = label.to_ascii_uppercase();
            assert!(labels.contains(&upper.as_str()), "{upper} in {labels:?}");
        }
        assert!(
            rule.ends_with(
                "RUN+=\"/usr/bin/systemctl --no-block start coreos-cloudinit-drive@%k.service\""
            ),
            "{rule}"
        );
    }

    /// The unit udev starts for a late OVF environment ISO, and the label it starts it for, as
    /// udev spells it (`ID_FS_LABEL`: a blank becomes `_`): the vmware source alone.
    #[test]
    fn the_ovf_environment_unit_and_its_udev_rule() {
        use crate::sources::vmware;
        let unit = include_str!("../../../services/units/coreos-cloudinit-ovf-env@.service");
        let exec = unit
            .lines()
            .find_map(|l| l.strip_prefix("ExecStart=-/usr/bin/coreos-cloudinit "))
            .expect("ExecStart=-/usr/bin/coreos-cloudinit");
        let args: Vec<&str> = exec.split_whitespace().collect();
        assert_eq!(
            cli(&args).unwrap().options().input,
            Input::Sources {
                only: Some(vec![SourceKind::Vmware])
            }
        );
        let rules =
            include_str!("../../../services/container-host/90-coreos-cloudinit-drive.rules");
        let start =
            "RUN+=\"/usr/bin/systemctl --no-block start coreos-cloudinit-ovf-env@%k.service\"";
        let rule = rules
            .lines()
            .find(|l| !l.starts_with('#') && l.ends_with(start))
            .expect("a rule starting the unit");
        let labels = rule
            .split("ENV{ID_FS_LABEL}==\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .expect("ENV{ID_FS_LABEL}==");
        let udev_label = vmware::iso::LABEL.replace(' ', "_");
        assert_eq!(
            labels.split('|').collect::<Vec<_>>(),
            [udev_label.clone(), udev_label.to_ascii_lowercase()]
        );
    }

    #[test]
    fn live_root() {
        assert!(is_live_root(Path::new("/")));
        assert!(is_live_root(Path::new("/.")));
        assert!(!is_live_root(Path::new("/tmp")));
        assert!(!is_live_root(Path::new("/nonexistent-root")));
    }
}
