//! `image-builder`: the command line. One subcommand, one library call.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use image_builder::build::{self, BuildOptions};
use image_builder::inputs::InputSource;
use image_builder::run::{self, Outcome, RunOptions};
use image_builder::{inspect, lock, publish, serve};

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
    /// Generate an ed25519 key (root or signing) into FILE.
    Keygen { file: PathBuf },
    /// Create a channel repository trusting the given signing keys, signed by the root key.
    InitRepo {
        #[arg(long)]
        repo: PathBuf,
        #[arg(long)]
        root_key: PathBuf,
        #[arg(long = "signing-key", required = true)]
        signing_keys: Vec<PathBuf>,
        #[arg(long, default_value_t = 365)]
        expires_days: u64,
    },
    /// Write BUILD_DIR/payload: the slot image, kernel, initramfs and release.json.
    Payload { build_dir: PathBuf },
    /// Publish a build as the current release of a channel.
    Publish(PublishCmd),
    /// Make the current release of one channel (same bytes) the release of another.
    Promote {
        #[arg(long)]
        repo: PathBuf,
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
        #[arg(long)]
        key: PathBuf,
        version: String,
    },
    /// Serve a repository over HTTP (GET, HEAD, byte ranges) for local use.
    Serve {
        repo: PathBuf,
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
    },
    /// Check a Container Linux cloud-config (user-data) file: prints `FILE:LINE: kind: message`
    /// for each finding; exits 1 if any is an error (warnings and infos are allowed).
    ValidateConfig { file: PathBuf },
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
struct PublishCmd {
    /// The repository directory.
    #[arg(long)]
    repo: PathBuf,
    #[arg(long)]
    channel: String,
    /// A signing key listed in the repository's keys.json.
    #[arg(long)]
    key: PathBuf,
    /// Days until the manifest expires (machines refuse an expired manifest).
    #[arg(long, default_value_t = 30)]
    expires_days: u64,
    /// Machines never install a version below this one from this manifest.
    #[arg(long)]
    version_floor: Option<String>,
    /// Publish even if the channel already has the same or a newer version.
    #[arg(long)]
    force: bool,
    /// The build output directory (holding build.json).
    build_dir: PathBuf,
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
        Cmd::Keygen { file } => {
            let public = publish::keygen(&file)?;
            println!("{} key id {}", file.display(), public.key_id());
            println!("public {public}");
            Ok(ExitCode::SUCCESS)
        }
        Cmd::InitRepo {
            repo,
            root_key,
            signing_keys,
            expires_days,
        } => {
            publish::init_repo(&repo, &root_key, &signing_keys, unix_now(), expires_days)?;
            println!("initialised {}", repo.display());
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Payload { build_dir } => {
            println!("{}", publish::payload(&build_dir)?.display());
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Publish(p) => {
            let m = publish::publish(&publish::PublishOptions {
                repo: &p.repo,
                channel: &p.channel,
                key: &p.key,
                build_dir: &p.build_dir,
                now: unix_now(),
                expires_days: p.expires_days,
                version_floor: p.version_floor,
                force: p.force,
            })?;
            println!(
                "published {} to {} (sequence {})",
                m.version, m.channel, m.sequence
            );
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Promote {
            repo,
            from,
            to,
            key,
            version,
        } => {
            let m = publish::promote(&repo, &from, &to, &version, &key, unix_now())?;
            println!(
                "promoted {} from {from} to {} (sequence {})",
                m.version, m.channel, m.sequence
            );
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Serve { repo, listen } => {
            serve::serve(&repo, &listen)?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::ValidateConfig { file } => cmd_validate_config(&file),
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

fn cmd_validate_config(file: &Path) -> Result<ExitCode> {
    let data = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let report = services::cloudconfig::validate(&data);
    for e in report.entries() {
        println!("{}:{}: {}: {}", file.display(), e.line, e.kind, e.message);
    }
    Ok(if report.has_errors() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// The wall clock, read only at this edge (release times and expiry of published manifests).
fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
