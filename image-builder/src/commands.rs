//! One function per subcommand: it takes the subcommand's arguments ([`crate::cli`]), makes
//! the library calls and prints what the user reads. The work is in the stage modules.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::build::{self, BuildOptions};
use crate::cli::*;
use crate::disk::inspect;
use crate::inputs::{self, lock, resolve};
use crate::publish::{self, channel};
use crate::report::{BuildReport, DISK};
use crate::run::{self, Netboot, Outcome, RunOptions};
use crate::spec::{self, ImageSpec};

/// `lock`: resolve and pin, then write the lockfile.
pub fn lock(a: LockArgs) -> Result<ExitCode> {
    let spec = ImageSpec::load(&a.spec)?;
    let pool = a.download.then(|| a.source.pool_dir(&a.spec));
    let locked = resolve::lock(
        &spec,
        &resolve::LockOptions {
            spec_path: &a.spec,
            source: &a.source.source(&a.spec)?,
            download: pool.as_deref(),
            apt_lists: &a.apt_lists,
        },
    )?;
    let path = lock::path_for(&a.spec);
    util::fs::write_atomic(&path, locked.lock.to_text().as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
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

/// `fetch`: fill a pool with the locked packages.
pub fn fetch(a: FetchArgs) -> Result<ExitCode> {
    let lock_path = lock::path_for(&a.spec);
    let l = inputs::Lockfile::load(&lock_path)?;
    inputs::source::fill_pool(&a.pool, &l.packages, &a.spec)?;
    eprintln!(
        "pool {} holds every package of {}",
        a.pool.display(),
        lock_path.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `build`: build, then say what was made and how to boot it.
pub fn build(a: BuildArgs) -> Result<ExitCode> {
    let init = a.init.unwrap_or_else(|| {
        spec::repo_root(&a.spec).join("target/x86_64-unknown-linux-gnu/release/init")
    });
    let opts = BuildOptions {
        lock_path: lock::path_for(&a.spec),
        source: a.source.source(&a.spec)?,
        spec_path: a.spec,
        out: a.out,
        init,
        outputs: a.outputs,
        progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
        force: a.force,
    };
    let report = build::build(&opts)?;
    let exe = std::env::args()
        .next()
        .unwrap_or_else(|| "image-builder".into());
    print!("{}", build_summary(&report, &opts.out, &exe));
    Ok(ExitCode::SUCCESS)
}

/// What `build` prints: the disk's sha256, each output's files, how to boot and inspect. Pure.
pub fn build_summary(report: &BuildReport, out: &Path, exe: &str) -> String {
    let disk = &report.artifacts[DISK];
    let disk_path = out.join(DISK);
    let mut text = format!(
        "{}: {} bytes, sha256 {}\n",
        disk_path.display(),
        disk.size,
        disk.sha256
    );
    for (output, files) in &report.outputs {
        let paths: Vec<String> = files
            .iter()
            .map(|f| out.join(f).display().to_string())
            .collect();
        text.push_str(&format!("{output:<19} {}\n", paths.join(" ")));
    }
    text.push_str(&format!("boot it:    {exe} run {}\n", disk_path.display()));
    text.push_str(&format!(
        "inspect it: {exe} inspect {}\n",
        disk_path.display()
    ));
    if report.outputs.contains_key("pxe") {
        text.push_str(&format!(
            "netboot it: {exe} run --pxe {} [--firmware bios]\n",
            out.display()
        ));
    }
    if let Some(iso) = report.outputs.get("iso").and_then(|f| f.first()) {
        let ram = report
            .live_ram_mib
            .map(|m| format!(" --memory {m}"))
            .unwrap_or_default();
        text.push_str(&format!(
            "live boot:  {exe} run --cdrom {}{ram} [--firmware bios]  (or dd it to a USB stick)\n",
            out.join(iso).display()
        ));
    }
    text
}

/// `inspect`: a disk's table, slots and entries, as text or JSON.
pub fn inspect(a: InspectArgs) -> Result<ExitCode> {
    let report = inspect::inspect(&a.disk)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", inspect::render(&report));
    }
    Ok(ExitCode::SUCCESS)
}

/// `keygen`: a new key and its id.
pub fn keygen(a: KeygenArgs) -> Result<ExitCode> {
    let public = channel::keygen(&a.file)?;
    println!("{} key id {}", a.file.display(), public.key_id());
    println!("public {public}");
    Ok(ExitCode::SUCCESS)
}

/// `init-repo`.
pub fn init_repo(a: InitRepoArgs) -> Result<ExitCode> {
    channel::init_repo(
        &a.repo,
        &a.root_key,
        &a.signing_keys,
        unix_now(),
        a.expires_days,
    )?;
    println!("initialised {}", a.repo.display());
    Ok(ExitCode::SUCCESS)
}

/// `payload`: prints the payload directory.
pub fn payload(a: PayloadArgs) -> Result<ExitCode> {
    println!("{}", channel::payload(&a.build_dir)?.display());
    Ok(ExitCode::SUCCESS)
}

/// `publish`.
pub fn publish(a: PublishArgs) -> Result<ExitCode> {
    let m = channel::publish(&channel::PublishOptions {
        repo: &a.repo,
        channel: &a.channel,
        key: &a.key,
        build_dir: &a.build_dir,
        now: unix_now(),
        expires_days: a.expires_days,
        version_floor: a.version_floor,
        force: a.force,
    })?;
    println!(
        "published {} to {} (sequence {})",
        m.version, m.channel, m.sequence
    );
    Ok(ExitCode::SUCCESS)
}

/// `promote`.
pub fn promote(a: PromoteArgs) -> Result<ExitCode> {
    let m = channel::promote(&a.repo, &a.from, &a.to, &a.version, &a.key, unix_now())?;
    println!(
        "promoted {} from {} to {} (sequence {})",
        m.version, a.from, m.channel, m.sequence
    );
    Ok(ExitCode::SUCCESS)
}

/// `vagrant-catalog`.
pub fn vagrant_catalog(a: VagrantCatalogArgs) -> Result<ExitCode> {
    let c = publish::vagrant::vagrant_catalog(
        &a.build_dir,
        &a.base_url,
        &a.catalog,
        a.channel.as_deref(),
    )?;
    let versions: Vec<&str> = c.versions.iter().map(|v| v.version.as_str()).collect();
    println!(
        "{}: box {} versions {}",
        a.catalog.display(),
        c.name,
        versions.join(", ")
    );
    Ok(ExitCode::SUCCESS)
}

/// `ami-upload`.
pub fn ami_upload(a: AmiUploadArgs) -> Result<ExitCode> {
    let config = ami::aws::Config::from_env(a.region.as_deref(), a.endpoint_url.as_deref())?;
    let opts = ami::upload::Options {
        name: a.name,
        register: !a.no_register,
        threads: a.threads,
        ..Default::default()
    };
    let outcome = publish::ami::upload(&a.build_dir, config, &opts, &|line| {
        eprintln!("ami-upload: {line}")
    })?;
    println!("snapshot {}", outcome.snapshot_id);
    if let (Some(image), Some(path)) = (&outcome.image_id, &outcome.registered) {
        println!("image    {image}");
        println!("wrote    {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// `serve`: until killed.
pub fn serve(a: ServeArgs) -> Result<ExitCode> {
    publish::serve::serve(&a.repo, &a.listen)?;
    Ok(ExitCode::SUCCESS)
}

/// `validate-config`: findings as `FILE:LINE: kind: message`; failure if any is an error.
pub fn validate_config(a: ValidateConfigArgs) -> Result<ExitCode> {
    let data = std::fs::read(&a.file).with_context(|| format!("reading {}", a.file.display()))?;
    let report = cloudconfig::validate(&data);
    for e in report.entries() {
        println!("{}:{}: {}: {}", a.file.display(), e.line, e.kind, e.message);
    }
    Ok(if report.has_errors() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// `run`: boot in QEMU; success when the expected line came (or QEMU exited 0 without one).
pub fn run(a: RunArgs) -> Result<ExitCode> {
    let expect = a
        .expect
        .map(|e| regex::Regex::new(&e))
        .transpose()
        .context("--expect is not a valid regular expression")?;
    let netboot = a
        .pxe
        .map(|dir| Netboot::from_build(dir, a.bootfile))
        .transpose()?;
    let memory_mib = a
        .memory
        .unwrap_or(match netboot.is_some() || a.cdrom.is_some() {
            true => 1024,
            false => 512,
        });
    let opts = RunOptions {
        disk: a.disk,
        netboot,
        cdrom: a.cdrom,
        firmware: a.firmware,
        format: a.format,
        machine: a.machine,
        bus: a.disk_bus,
        nic: a.nic,
        memory_mib,
        snapshot: a.snapshot,
        expect,
        timeout: a.timeout.map(Duration::from_secs),
        forwards: a.forwards,
        qemu_args: a.qemu_args,
        echo: true,
    };
    let (outcome, console) = run::run(&opts)?;
    let failed = |what: &str| {
        eprintln!("\nimage-builder run: {what}; console tail:");
        eprintln!("{}", run::tail(&console, run::TAIL_LINES));
        ExitCode::FAILURE
    };
    Ok(match outcome {
        Outcome::Matched(line) => {
            eprintln!("\nimage-builder run: matched: {line}");
            ExitCode::SUCCESS
        }
        Outcome::Exited(Some(0)) if opts.expect.is_none() => ExitCode::SUCCESS,
        Outcome::Exited(code) => failed(&format!(
            "QEMU exited ({code:?}) before the expected output"
        )),
        Outcome::TimedOut => failed("timed out"),
    })
}

/// The wall clock, read only at this edge (release times and expiry of published manifests).
fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
