//! `image-builder`: the command line. One subcommand, one library call.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use image_builder::build::{self, BuildOptions};
use image_builder::inputs::InputSource;
use image_builder::run::{self, Outcome, RunOptions};
use image_builder::{inspect, lock};

#[derive(Parser)]
#[command(
    name = "image-builder",
    version,
    about = "Build reproducible A/B OS disk images from pinned Debian packages"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Pin every input package of a spec in its lockfile (SPEC with .lock instead of .yaml).
    Lock {
        spec: PathBuf,
        #[command(flatten)]
        source: SourceArgs,
        /// First download the newest version of each package into the pool with apt-get.
        #[arg(long)]
        download: bool,
    },
    /// Download the locked packages into a pool directory with the host's apt-get.
    Fetch {
        spec: PathBuf,
        #[arg(long, default_value = "pool")]
        pool: PathBuf,
    },
    /// Build the disk image and artifacts of a spec into DIR.
    Build {
        spec: PathBuf,
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        source: SourceArgs,
        /// The static initramfs /init (default: target/x86_64-unknown-linux-gnu/release/init
        /// under the repository root).
        #[arg(long)]
        init: Option<PathBuf>,
        /// Rebuild even if nothing changed.
        #[arg(long)]
        force: bool,
    },
    /// Show a disk's partition table, slots and boot entries.
    Inspect {
        disk: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Boot a disk in QEMU with the serial console on stdout.
    Run {
        disk: PathBuf,
        /// Exit 0 as soon as a console line matches this regular expression.
        #[arg(long)]
        expect: Option<String>,
        /// Give up (exit 1, console tail on stderr) after this many seconds.
        #[arg(long)]
        timeout: Option<u64>,
        /// Disk image format for QEMU.
        #[arg(long, default_value = "raw")]
        format: String,
        #[arg(long, default_value_t = 512)]
        memory: u32,
        /// Discard writes to the disk.
        #[arg(long)]
        snapshot: bool,
        /// Extra arguments for qemu-system-x86_64 (after `--`).
        #[arg(last = true)]
        qemu_args: Vec<String>,
    },
}

#[derive(Args)]
struct SourceArgs {
    /// A directory of .deb files (default: `pool` under the repository root).
    #[arg(long, conflicts_with = "repo")]
    pool: Option<PathBuf>,
    /// An HTTP apt repository base URL (the directory holding dists/ and pool/).
    #[arg(long)]
    repo: Option<String>,
    #[arg(long, default_value = "bookworm")]
    suite: String,
    #[arg(long, default_value = "main")]
    component: String,
    /// Download cache for --repo (content-addressed).
    #[arg(long)]
    cache: Option<PathBuf>,
}

impl SourceArgs {
    fn pool_dir(&self, spec: &Path) -> PathBuf {
        self.pool
            .clone()
            .unwrap_or_else(|| build::repo_root(spec).join("pool"))
    }

    fn source(&self, spec: &Path) -> Result<InputSource> {
        match &self.repo {
            Some(url) => {
                let cache = self
                    .cache
                    .clone()
                    .unwrap_or_else(|| build::repo_root(spec).join("cache"));
                InputSource::repo(url, &self.suite, &self.component, &cache)
            }
            None => Ok(InputSource::pool(&self.pool_dir(spec))),
        }
    }
}

fn main() -> ExitCode {
    match dispatch(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}

fn dispatch(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Cmd::Lock {
            spec,
            source,
            download,
        } => cmd_lock(&spec, &source, download),
        Cmd::Fetch { spec, pool } => {
            let lock_path = lock::path_for(&spec);
            let l = lock::Lockfile::load(&lock_path)?;
            image_builder::inputs::fill_pool(&pool, &l.packages, &spec)?;
            eprintln!(
                "pool {} holds every package of {}",
                pool.display(),
                lock_path.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Build {
            spec,
            out,
            source,
            init,
            force,
        } => {
            let init = init.unwrap_or_else(|| {
                build::repo_root(&spec).join("target/x86_64-unknown-linux-gnu/release/init")
            });
            let opts = BuildOptions {
                lock_path: lock::path_for(&spec),
                source: source.source(&spec)?,
                spec_path: spec,
                out,
                init,
                progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
                force,
            };
            let report = build::build(&opts)?;
            let disk = &report.artifacts[build::DISK];
            println!(
                "{}: {} bytes, sha256 {}",
                opts.out.join(build::DISK).display(),
                disk.size,
                disk.sha256
            );
            let exe = std::env::args()
                .next()
                .unwrap_or_else(|| "image-builder".into());
            let disk_path = opts.out.join(build::DISK);
            println!("boot it:    {exe} run {}", disk_path.display());
            println!("inspect it: {exe} inspect {}", disk_path.display());
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Inspect { disk, json } => {
            let report = inspect::inspect(&disk)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", inspect::render(&report));
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Run {
            disk,
            expect,
            timeout,
            format,
            memory,
            snapshot,
            qemu_args,
        } => {
            let expect = expect
                .map(|e| regex::Regex::new(&e))
                .transpose()
                .context("--expect is not a valid regular expression")?;
            let opts = RunOptions {
                disk,
                format,
                memory_mib: memory,
                snapshot,
                expect,
                timeout: timeout.map(Duration::from_secs),
                qemu_args,
                echo: true,
            };
            let (outcome, console) = run::run(&opts)?;
            match outcome {
                Outcome::Matched(line) => {
                    eprintln!("\nimage-builder run: matched: {line}");
                    Ok(ExitCode::SUCCESS)
                }
                Outcome::Exited(code) if opts.expect.is_none() && code == Some(0) => {
                    Ok(ExitCode::SUCCESS)
                }
                Outcome::Exited(code) => {
                    eprintln!("\nimage-builder run: QEMU exited ({code:?}) before the expected output; console tail:");
                    eprintln!("{}", run::tail(&console, run::TAIL_LINES));
                    Ok(ExitCode::FAILURE)
                }
                Outcome::TimedOut => {
                    eprintln!("\nimage-builder run: timed out; console tail:");
                    eprintln!("{}", run::tail(&console, run::TAIL_LINES));
                    Ok(ExitCode::FAILURE)
                }
            }
        }
    }
}

fn cmd_lock(spec_path: &Path, source: &SourceArgs, download: bool) -> Result<ExitCode> {
    let spec = image_builder::spec::ImageSpec::load(spec_path)?;
    if download {
        image_builder::inputs::download_latest(&source.pool_dir(spec_path), &spec.package_names())?;
    }
    let src = source.source(spec_path)?;
    let candidates = src.candidates()?;
    let l = lock::resolve(&spec, &candidates, &src.describe())?;
    let path = lock::path_for(spec_path);
    image_builder::write_atomic(&path, l.to_text().as_bytes())?;
    for p in &l.packages {
        println!(
            "{} {} {} {}",
            p.package, p.version, p.architecture, p.sha256
        );
    }
    eprintln!("wrote {}", path.display());
    Ok(ExitCode::SUCCESS)
}
