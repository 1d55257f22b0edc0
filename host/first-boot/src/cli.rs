//! The command line of `first-boot`: no arguments works on the partition mounted at `/`;
//! `--disk PATH --partition N` names one (a block device, or an image file for tests, where
//! only the GPT is rewritten). Then one call to [`super::run`].

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;

use clap::Parser;

use super::{Options, Target, PROGRAM};

/// `first-boot`.
#[derive(Debug, Parser)]
#[command(
    name = "first-boot",
    version,
    about = "First boot: give the disk a random GUID, move the backup GPT to the end of a grown \
             disk, grow the ROOT partition and its ext4 file system"
)]
pub struct Cli {
    /// The disk (block device or image file); default: the disk of the partition mounted at /
    #[arg(long, value_name = "PATH", requires = "partition")]
    pub disk: Option<PathBuf>,
    /// The partition of --disk to grow (GPT entry number, as in /dev/vda9)
    #[arg(long, value_name = "N", requires = "disk", value_parser = clap::value_parser!(u32).range(1..))]
    pub partition: Option<u32>,
    /// Only rewrite the partition table: no BLKPG partition resize, no file system resize
    #[arg(long)]
    pub no_kernel: bool,
    /// Print what would change, write nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Do nothing if this file exists; write it after a successful run
    #[arg(long, value_name = "PATH")]
    pub stamp: Option<PathBuf>,
}

/// Parses `args` (argv[0] included).
pub fn parse(args: Vec<OsString>) -> Result<Cli, clap::Error> {
    Cli::try_parse_from(args)
}

impl Cli {
    pub fn options(&self) -> Options {
        let target = match (&self.disk, self.partition) {
            (Some(disk), Some(partition)) => Target::Disk {
                disk: disk.clone(),
                partition,
            },
            _ => Target::Root,
        };
        Options {
            kernel: !self.no_kernel,
            dry_run: self.dry_run,
            stamp: self.stamp.clone(),
            ..Options::new(target)
        }
    }
}

/// Runs; returns the exit status. A failure is one `first-boot: error: ...` line on stderr.
pub fn run(cli: Cli) -> i32 {
    let stdout = std::io::stdout();
    match super::run(&cli.options(), &mut stdout.lock()) {
        Ok(()) => 0,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "{PROGRAM}: error: {e}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli(args: &[&str]) -> Result<Cli, clap::Error> {
        parse(
            std::iter::once(PROGRAM)
                .chain(args.iter().copied())
                .map(OsString::from)
                .collect(),
        )
    }

    #[test]
    fn options() {
        let o = cli(&[]).unwrap().options();
        assert_eq!(o.target, Target::Root);
        assert!(o.kernel && !o.dry_run && o.stamp.is_none());
        let o = cli(&[
            "--disk",
            "/dev/vda",
            "--partition",
            "9",
            "--no-kernel",
            "--dry-run",
        ])
        .unwrap()
        .options();
        assert_eq!(
            o.target,
            Target::Disk {
                disk: "/dev/vda".into(),
                partition: 9
            }
        );
        assert!(!o.kernel && o.dry_run);
        let o = cli(&["--stamp", crate::DEFAULT_STAMP]).unwrap().options();
        assert_eq!(
            o.stamp.as_deref(),
            Some(std::path::Path::new("/var/lib/first-boot/done"))
        );
    }

    #[test]
    fn the_boot_unit_runs_a_valid_command_line() {
        let unit = include_str!("../../../services/units/first-boot-grow.service");
        let exec = unit
            .lines()
            .find_map(|l| l.strip_prefix("ExecStart="))
            .expect("ExecStart=");
        let mut words = exec.split_whitespace();
        assert_eq!(words.next(), Some("/usr/bin/first-boot"));
        let o = cli(&words.collect::<Vec<_>>()).unwrap().options();
        assert_eq!(o.target, Target::Root);
        assert!(o.kernel && !o.dry_run);
        let stamp = crate::DEFAULT_STAMP;
        assert_eq!(o.stamp.as_deref(), Some(std::path::Path::new(stamp)));
        assert!(unit.contains(&format!("ConditionPathExists=!{stamp}\n")));
        // Enabled for sysinit.target: the one line of its `[Install]` section.
        let (_, install) = unit.split_once("\n[Install]\n").expect("[Install]");
        assert_eq!(install.trim_end(), "WantedBy=sysinit.target");
    }

    #[test]
    fn bad_usage() {
        assert!(cli(&["--disk", "/dev/vda"]).is_err());
        assert!(cli(&["--partition", "9"]).is_err());
        assert!(cli(&["--disk", "/dev/vda", "--partition", "0"]).is_err());
        assert!(cli(&["--disk", "/dev/vda", "--partition", "x"]).is_err());
        assert!(cli(&["extra"]).is_err());
    }
}
