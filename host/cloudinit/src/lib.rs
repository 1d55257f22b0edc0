//! The config agent, `coreos-cloudinit`: once per boot, before sshd, etcd and docker start, it
//! finds user-data, validates it and applies it (issue 6 item 4; behaviour after
//! coreos-cloudinit f1f0405, sources after SPECS.md S15). The validator and the model are
//! [`cloudconfig`]'s.
//!
//! Pipeline, IO only at the ends:
//! 1. [`sources`]: the first source that has user-data (or `--from-file`/`--from-url`), with its
//!    metadata (hostname, SSH keys, addresses, network files; what it skipped of them is
//!    printed and counts as a failure, its notes are printed). Gzip-compressed user-data is
//!    decompressed.
//! 2. [`metadata`]: `$private_ipv4` & co. filled from the metadata, `/etc/environment` or the
//!    first interface, and substituted ([`cloudconfig::substitute`]). Only the four
//!    address variables exist, as upstream: `$hostname` is left alone (shell scripts use it).
//! 3. [`cloudconfig::validate`]: findings are printed with line numbers. A config with
//!    errors is not applied (only the metadata is, as upstream did: "Continuing..."), and the
//!    exit status is 1. An Ignition config is left alone (exit 0).
//! 4. [`plan`]: the actions (pure, given the unit files found under the root: a command for a
//!    unit the machine lacks is skipped with a warning); `--dry-run` prints them.
//! 5. [`apply`]: carried out under `--root` through [`host::Host`]; each failure is printed as
//!    `coreos-cloudinit: <action>: <error>` and the rest continues; exit status 1 if any failed.
//!    Warnings (a unit the machine does not have) print as `coreos-cloudinit: warning: ...`
//!    and are not failures.
//!
//! What the plan and its application lean on: [`accounts`] (passwd, shadow and group as
//! tables), [`ssh`] (`authorized_keys.d`), [`units`] (unit files, drop-ins, enablement links),
//! [`conf`] (`KEY=VALUE` files: update.conf, `/etc/environment`). [`cli`] is the binary's
//! command line; [`run`] the one call it makes. Syscalls and block devices are `machine`'s.
//!
//! Once per boot: a run over the sources keeps a record of the user-data it applied
//! (`/run/coreos-cloudinit/applied/`, by source and content), and a later run that finds the same
//! (a config drive or NoCloud seed udev reports after the boot's run,
//! `coreos-cloudinit-drive@.service`) says so and leaves it alone. `--from-file`,
//! `--from-url` and `--from-vmware-ovf-env` always apply: someone asked for that file.
//!
//! The boot unit is `services/units/coreos-cloudinit.service`.

pub mod accounts;
pub mod apply;
pub mod cli;
pub mod conf;
pub mod host;
pub mod metadata;
pub mod plan;
pub mod sources;
pub mod ssh;
pub mod units;

use std::io::Write;
use std::path::{Path, PathBuf};

use cloudconfig::{Addresses, UserData};
use util::retry::Policy;

use self::apply::Outcome;
use self::host::Host;
use self::metadata::{interface_addresses, parse_env_file, Metadata};
use self::sources::{Context, Found, SourceKind};

/// Prefix of every line the agent prints (the journal shows it as the message start).
pub const PROGRAM: &str = "coreos-cloudinit";
/// The record of user-data applied from the sources this boot, under the root ([`run`]).
pub const APPLIED_DIR: &str = "run/coreos-cloudinit/applied";

/// Where the user-data comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// `--from-sources` (all, platform checks on) or `--source NAME…` (those, checks off).
    Sources {
        only: Option<Vec<SourceKind>>,
    },
    File(PathBuf),
    Url(String),
    /// `--from-vmware-ovf-env PATH`: an OVF environment document ([`sources::vmware`]).
    VmwareOvfEnv(PathBuf),
}

/// One run's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub root: PathBuf,
    pub input: Input,
    /// Print the plan, change nothing.
    pub dry_run: bool,
    /// Print the validator's report, change nothing.
    pub validate_only: bool,
    pub ec2_base_url: String,
    /// The file in `~/.ssh/authorized_keys.d` the keys go to (upstream's `--ssh-key-name`):
    /// the OEM configuration uses its own, so user-data keys never replace the platform's.
    pub ssh_key_name: String,
    pub url_policy: Policy,
    pub imds_policy: Policy,
}

impl Options {
    /// Production settings for `input` under `root`.
    pub fn new(root: impl Into<PathBuf>, input: Input) -> Options {
        Options {
            root: root.into(),
            input,
            dry_run: false,
            validate_only: false,
            ec2_base_url: sources::ec2::DEFAULT_BASE_URL.to_string(),
            ssh_key_name: ssh::KEY_NAME.to_string(),
            url_policy: Policy::CONFIG_URL,
            imds_policy: Policy::METADATA,
        }
    }
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// The source used, if any.
    pub source: Option<String>,
    /// Source errors, validation errors and failed actions.
    pub failures: usize,
    /// The actions planned (applied unless `--dry-run`).
    pub actions: usize,
}

impl Summary {
    pub fn success(&self) -> bool {
        self.failures == 0
    }
}

/// The agent's output: progress to `out`, problems to `err`, each line prefixed by [`PROGRAM`].
pub struct Console<'a> {
    pub out: &'a mut dyn Write,
    pub err: &'a mut dyn Write,
}

impl Console<'_> {
    fn say(&mut self, msg: impl std::fmt::Display) {
        let _ = writeln!(self.out, "{PROGRAM}: {msg}");
    }
    fn warn(&mut self, msg: impl std::fmt::Display) {
        let _ = writeln!(self.err, "{PROGRAM}: {msg}");
    }
}

/// One run (module docs).
/// On VMware (DMI says so), the machine's IPv4 address as `guestinfo.ip`: the variable vSphere
/// shows as the VM's IP address (VMware Tools' daemon sets it when the VMX asks it to
/// broadcast the address; the image has no such daemon, so the agent sets it once a boot).
fn report_address_to_vmware(opts: &Options, host: &dyn Host, console: &mut Console) {
    if !host.is_live() || !sources::dmi::Dmi::read(&opts.root).is_vmware() {
        return;
    }
    let Some(ip) = host.interface_ipv4() else {
        return;
    };
    match host.guestinfo_set("guestinfo.ip", &ip.to_string()) {
        Ok(()) => console.say(format!("told VMware the address {ip} (guestinfo.ip)")),
        Err(e) => console.warn(format!("telling VMware the address {ip}: {e}")),
    }
}

pub fn run(opts: &Options, host: &dyn Host, console: &mut Console) -> Summary {
    let mut summary = Summary::default();
    if !opts.dry_run && !opts.validate_only {
        report_address_to_vmware(opts, host, console);
    }
    // `sshkey="..."` on the kernel command line (network boots) authorizes a key for core,
    // with or without user-data.
    let cmdline_keys = std::fs::read_to_string(opts.root.join("proc/cmdline"))
        .map(|c| sources::cmdline_ssh_keys(&c))
        .unwrap_or_default();
    let found = match find_user_data(opts, host, console, &mut summary) {
        Some(mut found) => {
            found.metadata.ssh_public_keys.extend(cmdline_keys);
            found
        }
        None if !cmdline_keys.is_empty() => Found {
            source: "kernel command line sshkey=".into(),
            user_data: Vec::new(),
            metadata: Metadata {
                ssh_public_keys: cmdline_keys,
                ..Metadata::default()
            },
        },
        None => return summary,
    };
    summary.source = Some(found.source.clone());
    console.say(format!(
        "user-data from {} ({} bytes)",
        found.source,
        found.user_data.len()
    ));
    let record =
        (matches!(opts.input, Input::Sources { .. }) && !opts.dry_run && !opts.validate_only)
            .then(|| opts.root.join(APPLIED_DIR).join(applied_record(&found)));
    if record.as_ref().is_some_and(|r| r.exists()) {
        console.say(format!(
            "{}: applied already this boot, nothing to do",
            found.source
        ));
        return summary;
    }
    // Parts of the metadata the source skipped (a bad network key): the rest applies.
    for note in &found.metadata.notes {
        console.say(format!("{}: {note}", found.source));
    }
    for w in &found.metadata.warnings {
        console.warn(format!("{}: {w}", found.source));
        summary.failures += 1;
    }
    let raw = match maybe_gunzip(&found.user_data) {
        Ok(raw) => raw,
        Err(e) => {
            console.warn(format!("{}: gzip-compressed user-data: {e}", found.source));
            summary.failures += 1;
            return summary;
        }
    };
    let addresses = found
        .metadata
        .addresses
        .clone()
        .or(env_file_addresses(&opts.root))
        .or(if host.is_live() {
            interface_addresses(host.interface_ipv4())
        } else {
            Addresses::default()
        });
    let user_data = cloudconfig::substitute(&raw, &addresses);
    let report = cloudconfig::validate(&user_data);
    if opts.validate_only {
        for e in report.entries() {
            let _ = writeln!(console.out, "{e}");
        }
        summary.failures += usize::from(report.has_errors());
        return summary;
    }
    for e in report.entries() {
        console.warn(format!("{}: {e}", found.source));
    }
    let parsed = if report.has_errors() {
        console.warn("user-data not applied: it has errors; applying the metadata only");
        summary.failures += 1;
        UserData::Empty
    } else {
        match cloudconfig::parse(&user_data) {
            Ok(parsed) => parsed,
            Err(e) => {
                console.warn(format!("user-data not applied: {e}"));
                summary.failures += 1;
                UserData::Empty
            }
        }
    };
    if let UserData::Ignition(_) = parsed {
        console.say("the user-data is an Ignition config: left to Ignition, nothing applied");
        return summary;
    }
    let unit_files = units::UnitFiles::read(&opts.root).unwrap_or_else(|e| {
        console.warn(format!(
            "warning: listing unit files: {e}; every unit is taken to exist"
        ));
        units::UnitFiles::Unknown
    });
    let mut actions = plan::plan_user_data(&parsed, &found.metadata, &unit_files);
    for a in &mut actions {
        if let plan::Action::AuthorizeKeys { name, .. } = a {
            name.clone_from(&opts.ssh_key_name);
        }
    }
    summary.actions = actions.len();
    if opts.dry_run {
        console.say(format!(
            "plan ({} actions, nothing applied):",
            actions.len()
        ));
        for (i, a) in actions.iter().enumerate() {
            let _ = writeln!(console.out, "  {}. {a}", i + 1);
        }
        return summary;
    }
    summary.failures += apply::apply(
        &actions,
        &opts.root,
        host,
        &mut |action, result| match result {
            Ok(Outcome::Done) => console.say(action),
            Ok(Outcome::Note(note)) => console.say(format!("{action}: {note}")),
            Ok(Outcome::Skipped(why)) => console.say(format!("{action}: skipped ({why})")),
            Ok(Outcome::Warning(warning)) => console.warn(format!("warning: {warning}")),
            Err(e) => console.warn(format!("{action}: {e}")),
        },
    );
    if let Some(record) = record {
        let written = std::fs::create_dir_all(opts.root.join(APPLIED_DIR))
            .and_then(|()| util::fs::write_atomic(&record, found.source.as_bytes()));
        if let Err(e) = written {
            console.warn(format!("recording {}: {e}", record.display()));
        }
    }
    summary
}

/// The name of the record of `found` in [`APPLIED_DIR`]: its source and its bytes, hashed.
fn applied_record(found: &Found) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(found.source.as_bytes());
    h.update([0]);
    h.update(&found.user_data);
    h.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn find_user_data(
    opts: &Options,
    host: &dyn Host,
    console: &mut Console,
    summary: &mut Summary,
) -> Option<Found> {
    let ctx = Context {
        root: &opts.root,
        host,
        ec2_base_url: opts.ec2_base_url.clone(),
        url_policy: opts.url_policy,
        imds_policy: opts.imds_policy,
    };
    let result = match &opts.input {
        Input::Sources { only } => {
            let kinds = only.clone().unwrap_or_else(|| SourceKind::ORDER.to_vec());
            let search = sources::search(&kinds, only.is_some(), &ctx);
            for (kind, e) in &search.errors {
                console.warn(format!("source {kind}: {e}"));
                summary.failures += 1;
            }
            if search.found.is_none() {
                console.say("no user-data found");
            }
            return search.found;
        }
        Input::File(path) => sources::from_file(path),
        Input::Url(url) => sources::from_url(url, &ctx),
        Input::VmwareOvfEnv(path) => sources::from_vmware_ovf_env(path, &ctx),
    };
    result
        .map_err(|e| {
            console.warn(e);
            summary.failures += 1;
        })
        .ok()
}

/// User-data as is, or decompressed when it is gzip (upstream's `decompressIfGzip`).
pub fn maybe_gunzip(data: &[u8]) -> Result<Vec<u8>, cloudconfig::DecodeError> {
    if data.starts_with(&[0x1f, 0x8b]) {
        cloudconfig::decode_content(data, "gzip")
    } else {
        Ok(data.to_vec())
    }
}

/// `COREOS_*_IPV4/6` from `/etc/environment` under `root`.
fn env_file_addresses(root: &Path) -> Addresses {
    let text = std::fs::read_to_string(root.join("etc/environment")).unwrap_or_default();
    Addresses::from_env(parse_env_file(&text))
}

#[cfg(test)]
mod tests;
