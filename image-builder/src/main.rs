//! `image-builder`: the command line. One subcommand, one library call.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use image_builder::build::{self, BuildOptions};
use image_builder::inputs::InputSource;
use image_builder::run::{self, Outcome, RunOptions};
use image_builder::{inspect, lock, lock_resolve, publish, serve};

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
    /// Pin every input package of a spec in its lockfile (SPEC with .lock instead of .yaml):
    /// the listed packages, or their dependency closure with `resolve: {mode: closure}`.
    Lock {
        spec: PathBuf,
        #[command(flatten)]
        source: SourceArgs,
        /// First download into the pool with apt-get: the newest version of each package, or
        /// the closure resolved from the host's apt lists.
        #[arg(long)]
        download: bool,
        /// The host's apt lists (closure with `resolve.index: apt-lists`, or `--download`).
        #[arg(long, default_value = rootfs::apt::lists::HOST_LISTS)]
        apt_lists: PathBuf,
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
    /// Add a build's Vagrant boxes to a channel's box catalog, the JSON that
    /// `vagrant box add <catalog URL>` and `vagrant box update` follow.
    VagrantCatalog {
        /// The build output directory (build.json and the .box files).
        build_dir: PathBuf,
        /// Where the .box files are served from: the catalog's URLs are BASE_URL/<file>.
        #[arg(long)]
        base_url: String,
        /// The channel's catalog file: created if missing, else this version is added to it.
        #[arg(long)]
        catalog: PathBuf,
        /// The channel (default: the build's `os.channel`).
        #[arg(long)]
        channel: Option<String>,
    },
    /// Upload a build's AMI disk to an EBS snapshot (EBS direct APIs) and register the AMI.
    /// Credentials from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN).
    AmiUpload {
        /// The build output directory (build.json, with the `ami` output).
        build_dir: PathBuf,
        /// AWS region [default: AWS_REGION, else AWS_DEFAULT_REGION].
        #[arg(long)]
        region: Option<String>,
        /// One endpoint for EBS and EC2 instead of AWS's (an emulator) [default: AWS_ENDPOINT_URL].
        #[arg(long)]
        endpoint_url: Option<String>,
        /// AMI name instead of the build's (`<os>-<channel>-<version>-hvm`).
        #[arg(long)]
        name: Option<String>,
        /// Only make the snapshot; do not register an AMI.
        #[arg(long)]
        no_register: bool,
        /// Blocks uploaded at a time (1-64).
        #[arg(long, default_value_t = 8)]
        threads: usize,
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
        /// The disk to boot (optional with --pxe: then it is only attached).
        disk: Option<PathBuf>,
        /// Boot from the network: serve this directory (a build's output) over TFTP and boot
        /// its iPXE script through the NIC's iPXE ROM.
        #[arg(long, value_name = "DIR")]
        pxe: Option<PathBuf>,
        /// With --pxe: the DHCP boot file instead of the build's `<os>_<version>_pxe.ipxe`; a
        /// name in DIR or a URL (the host is 10.0.2.2 from the guest).
        #[arg(long, requires = "pxe")]
        bootfile: Option<String>,
        /// uefi (OVMF) or bios (SeaBIOS).
        #[arg(long, default_value = "uefi")]
        firmware: run::Firmware,
        /// Exit 0 as soon as a console line matches this regular expression.
        #[arg(long)]
        expect: Option<String>,
        /// Give up (exit 1, console tail on stderr) after this many seconds.
        #[arg(long)]
        timeout: Option<u64>,
        /// Disk image format for QEMU.
        #[arg(long, default_value = "raw")]
        format: String,
        /// Disk controller: virtio, virtio-scsi (VirtualBox boxes) or pvscsi (VMware; OVMF
        /// cannot boot from it: add -kernel/-initrd/-append after `--`).
        #[arg(long, default_value = "virtio")]
        disk_bus: run::DiskBus,
        /// MiB of RAM [default: 512, 1024 with --pxe: /usr and / are in RAM].
        #[arg(long)]
        memory: Option<u32>,
        /// Discard writes to the disk.
        #[arg(long)]
        snapshot: bool,
        /// Forward a host port on 127.0.0.1 to the guest: [tcp:|udp:]HOSTPORT:GUESTPORT, e.g.
        /// tcp:2222:22 for `ssh -p 2222 core@127.0.0.1` (repeatable).
        #[arg(long = "forward", value_name = "SPEC")]
        forwards: Vec<run::Forward>,
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
            apt_lists,
        } => cmd_lock(&spec, &source, download, &apt_lists),
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
            for (output, files) in &report.outputs {
                let paths: Vec<String> = files
                    .iter()
                    .map(|f| opts.out.join(f).display().to_string())
                    .collect();
                println!("{output:<19} {}", paths.join(" "));
            }
            let exe = std::env::args()
                .next()
                .unwrap_or_else(|| "image-builder".into());
            let disk_path = opts.out.join(build::DISK);
            println!("boot it:    {exe} run {}", disk_path.display());
            println!("inspect it: {exe} inspect {}", disk_path.display());
            if report.outputs.contains_key("pxe") {
                println!(
                    "netboot it: {exe} run --pxe {} [--firmware bios]",
                    opts.out.display()
                );
            }
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
        Cmd::VagrantCatalog {
            build_dir,
            base_url,
            catalog,
            channel,
        } => {
            let c = image_builder::artifacts::vagrant_catalog(
                &build_dir,
                &base_url,
                &catalog,
                channel.as_deref(),
            )?;
            let versions: Vec<&str> = c.versions.iter().map(|v| v.version.as_str()).collect();
            println!(
                "{}: box {} versions {}",
                catalog.display(),
                c.name,
                versions.join(", ")
            );
            Ok(ExitCode::SUCCESS)
        }
        Cmd::AmiUpload {
            build_dir,
            region,
            endpoint_url,
            name,
            no_register,
            threads,
        } => cmd_ami_upload(
            &build_dir,
            region.as_deref(),
            endpoint_url.as_deref(),
            ami::upload::Options {
                name,
                register: !no_register,
                threads,
                ..Default::default()
            },
        ),
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
            pxe,
            bootfile,
            firmware,
            expect,
            timeout,
            format,
            disk_bus,
            memory,
            snapshot,
            forwards,
            qemu_args,
        } => {
            let expect = expect
                .map(|e| regex::Regex::new(&e))
                .transpose()
                .context("--expect is not a valid regular expression")?;
            let netboot = match pxe {
                Some(dir) => {
                    let bootfile = match bootfile {
                        Some(b) => b,
                        None => pxe_script(&dir)?,
                    };
                    Some(run::Netboot {
                        tftp_root: dir,
                        bootfile,
                    })
                }
                None => None,
            };
            let memory = memory.unwrap_or(if netboot.is_some() { 1024 } else { 512 });
            let opts = RunOptions {
                disk,
                netboot,
                firmware,
                format,
                bus: disk_bus,
                memory_mib: memory,
                snapshot,
                expect,
                timeout: timeout.map(Duration::from_secs),
                forwards,
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

/// The iPXE script a build wrote to `dir` (its build.json's `pxe` output).
fn pxe_script(dir: &Path) -> Result<String> {
    let json = dir.join(build::BUILD_JSON);
    let text = std::fs::read_to_string(&json).with_context(|| {
        format!(
            "reading {} (--pxe wants a build's output directory, or give --bootfile)",
            json.display()
        )
    })?;
    let report: build::BuildReport = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a build.json", json.display()))?;
    report
        .outputs
        .get("pxe")
        .and_then(|files| files.iter().find(|f| f.ends_with(".ipxe")))
        .cloned()
        .with_context(|| {
            format!(
                "{} lists no pxe output: add pxe to the spec's outputs",
                json.display()
            )
        })
}

/// `ami-upload`: find the `ami` output's disk and RegisterImage input through build.json, then
/// let the ami crate verify, upload, wait and register.
fn cmd_ami_upload(
    build_dir: &Path,
    region: Option<&str>,
    endpoint: Option<&str>,
    opts: ami::upload::Options,
) -> Result<ExitCode> {
    let config = ami::aws::Config::from_env(region, endpoint)?;
    let json = build_dir.join(build::BUILD_JSON);
    let text =
        std::fs::read_to_string(&json).with_context(|| format!("reading {}", json.display()))?;
    let report: build::BuildReport = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a build.json", json.display()))?;
    let files = report.outputs.get("ami").with_context(|| {
        format!(
            "{} lists no ami output: add ami to the spec's outputs and rebuild",
            json.display()
        )
    })?;
    let find = |ext: &str| {
        files
            .iter()
            .find(|f| f.ends_with(&format!("_ami.{ext}")))
            .with_context(|| format!("{}: the ami output has no .{ext} file", json.display()))
    };
    let (img, request) = (find("img")?, find("json")?);
    let info = report
        .artifacts
        .get(img)
        .with_context(|| format!("{}: no size and sha256 for {img}", json.display()))?;
    let source = ami::upload::Source {
        img: build_dir.join(img),
        size: info.size,
        sha256: info.sha256.clone(),
        request: build_dir.join(request),
    };
    let outcome = ami::upload::run(&source, config, &opts, &|line| {
        eprintln!("ami-upload: {line}")
    })?;
    println!("snapshot {}", outcome.snapshot_id);
    if let (Some(image), Some(path)) = (&outcome.image_id, &outcome.registered) {
        println!("image    {image}");
        println!("wrote    {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn cmd_lock(
    spec_path: &Path,
    source: &SourceArgs,
    download: bool,
    apt_lists: &Path,
) -> Result<ExitCode> {
    let spec = image_builder::spec::ImageSpec::load(spec_path)?;
    let pool = download.then(|| source.pool_dir(spec_path));
    let locked = lock_resolve::lock(
        &spec,
        &lock_resolve::LockOptions {
            spec_path,
            source: &source.source(spec_path)?,
            download: pool.as_deref(),
            apt_lists,
        },
    )?;
    let path = lock::path_for(spec_path);
    image_builder::write_atomic(&path, locked.lock.to_text().as_bytes())?;
    for p in &locked.lock.packages {
        println!(
            "{} {} {} {}",
            p.package, p.version, p.architecture, p.sha256
        );
    }
    if let Some(summary) = &locked.summary {
        eprintln!("{}", summary.render());
    }
    eprintln!("wrote {}", path.display());
    Ok(ExitCode::SUCCESS)
}

fn cmd_validate_config(file: &Path) -> Result<ExitCode> {
    let data = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let report = cloudconfig::validate(&data);
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
