//! The plan: what applying a cloud-config means, as a list of [`Action`]s computed without
//! looking at the machine (pure). [`super::apply`] carries it out; `--dry-run` prints it.
//!
//! Order, as upstream's `initialize.Apply` and `main`:
//! 0. the source's network files (VMware guestinfo's `interface.<n>.*`), so that they are in
//!    place before anything else (upstream wrote them with the units, after everything else);
//! 1. hostname (the config's, else the source's metadata's);
//! 2. `users[]` (create or update), then SSH keys per user (`core` gets its `users[]` keys, the
//!    top-level `ssh_authorized_keys` and the metadata's keys in one file: upstream wrote them one
//!    after the other into the same file, so the last write won). When `core` gets keys without a
//!    `users[]` entry, the plan ensures `core` exists (with defaults; nothing changes where the
//!    image has it, as Container Linux's did);
//! 3. `write_files[]`, `/etc/hosts` (`manage_etc_hosts: localhost`), `/etc/oem-release`
//!    (`coreos.oem` with an `id`), `/run/flannel/options.env` (`coreos.flannel`, as upstream
//!    wrote it, although this OS does not ship flanneld), `/etc/environment` (`COREOS_*_IPV4/6`
//!    of the metadata);
//! 4. `/etc/update-engine/update.conf`: `coreos.update` (`GROUP`, `SERVER`, `REBOOT_STRATEGY`)
//!    and `coreos.locksmith` (`LOCKSMITHD_*`; the window as `LOCKSMITHD_REBOOT_WINDOW_START` and
//!    `_LENGTH`, which update-engine reads before the short `REBOOT_WINDOW_*` names, which are
//!    removed). Upstream wrote `/etc/coreos/update.conf` and a locksmithd drop-in;
//! 5. `coreos.etcd2`: the drop-in `/run/systemd/system/etcd.service.d/20-cloudinit.conf`, and
//!    etcd enabled (runtime) and started — upstream only wrote the drop-in ([`super::units`]);
//!    `coreos.fleet`: upstream's drop-in `/run/systemd/system/fleet.service.d/20-cloudinit.conf`
//!    (harmless: this OS does not ship fleet, and the validator says so);
//! 6. `coreos.units[]` in order: drop-ins, the unit file, enable (not for network files), mask.
//!    A unit the machine does not have ([`UnitFiles`]) and whose content the config does not
//!    give is not enabled and gets no command: [`Action::SkipUnit`] says why instead (the
//!    reason from [`cloudconfig::CONTAINER_LINUX_UNITS`] when Container Linux had it); its
//!    drop-ins are still written. Container Linux's `etcd2.service` and `etcd-member.service`
//!    are `etcd.service` here: their commands, enable and drop-ins go to it ([`presence`]);
//! 7. `systemctl daemon-reload` when any unit file changed; `systemd-networkd` restarted (once)
//!    when a network file was written, the source's or the config's; then the units' commands
//!    (etcd's start first); last `try-restart update-engine.service` when one of its
//!    `update.conf`s changed (the agent's, or Container Linux's `/etc/coreos/update.conf`
//!    through `write_files`);
//! 8. a `#!` script user-data: written to `/var/lib/coreos-cloudinit/scripts/` and run as a
//!    transient unit.

use std::collections::BTreeSet;
use std::fmt;

use cloudconfig::{CloudConfig, Fate, FileMode, Oem, UnitCommand, User, UserData};
use contract::update_conf::keys;
use sha2::{Digest, Sha256};

use super::metadata::{Metadata, NetworkFile};
use super::ssh::KEY_NAME;
use super::units::{
    drop_in_path, etcd_drop_in, fleet_drop_in, is_network_unit, template_of, unit_path, UnitFiles,
    CLOUDINIT_DROP_IN, ETCD_UNIT, FLEET_UNIT, UNIT_SEARCH_PATH,
};

pub const HOSTNAME_FILE: &str = "/etc/hostname";
pub const HOSTS_FILE: &str = "/etc/hosts";
pub const OEM_RELEASE: &str = "/etc/oem-release";
/// flanneld's options (`coreos.flannel`), where Container Linux's flanneld unit read them.
pub const FLANNEL_OPTIONS: &str = "/run/flannel/options.env";
pub const ENVIRONMENT_FILE: &str = "/etc/environment";
pub const UPDATE_CONF: &str = "/etc/update-engine/update.conf";
/// Container Linux's `update.conf`, which update-engine reads too (under [`UPDATE_CONF`]).
pub const COREOS_UPDATE_CONF: &str = "/etc/coreos/update.conf";
pub const SCRIPTS_DIR: &str = "/var/lib/coreos-cloudinit/scripts";
pub const NETWORKD_UNIT: &str = "systemd-networkd.service";
/// The update engine's daemon, restarted (when running) after its configuration changed.
pub const UPDATE_ENGINE_UNIT: &str = "update-engine.service";
/// The user that top-level `ssh_authorized_keys` and metadata keys are for.
pub const DEFAULT_USER: &str = "core";

/// One step of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// The source's networkd files, written to `/run/systemd/network`; `summary` says what
    /// they configure.
    WriteNetwork {
        files: Vec<NetworkFile>,
        summary: String,
    },
    /// `/etc/hostname`, and the kernel's hostname on a live system.
    SetHostname {
        hostname: String,
    },
    /// Create the user, or update the password and groups of an existing one.
    EnsureUser(User),
    /// `~user/.ssh/authorized_keys.d/NAME`, then `~user/.ssh/authorized_keys` regenerated.
    AuthorizeKeys {
        user: String,
        name: String,
        keys: Vec<String>,
    },
    WriteFile {
        path: String,
        content: Vec<u8>,
        mode: FileMode,
        /// `user`, `user:group`, numeric IDs allowed.
        owner: Option<String>,
    },
    /// `/etc/hosts` for `manage_etc_hosts: localhost`; the hostname is read from
    /// `/etc/hostname` when the plan has none.
    WriteEtcHosts {
        hostname: Option<String>,
    },
    /// Keys merged into `/etc/environment`.
    WriteEnvironment {
        set: Vec<(String, String)>,
    },
    /// Keys merged into (and removed from) `/etc/update-engine/update.conf`.
    WriteUpdateConf {
        set: Vec<(String, String)>,
        unset: Vec<String>,
    },
    WriteUnit {
        unit: String,
        runtime: bool,
        content: String,
    },
    WriteDropIn {
        unit: String,
        runtime: bool,
        name: String,
        content: String,
    },
    MaskUnit {
        unit: String,
        runtime: bool,
    },
    /// The `[Install]` symlinks, made by the agent itself.
    EnableUnit {
        unit: String,
        runtime: bool,
    },
    DaemonReload,
    /// `systemctl --no-block COMMAND UNIT`.
    UnitCommand {
        unit: String,
        command: UnitCommand,
    },
    /// Written to [`SCRIPTS_DIR`]`/NAME` and run as the transient unit `NAME.service`.
    RunScript {
        name: String,
        content: Vec<u8>,
    },
    /// Not done, with a warning: `verb` (`enable`, `start`, ...) for a unit the machine does
    /// not have; `why` names the unit and says why it is absent.
    SkipUnit {
        unit: String,
        verb: &'static str,
        why: String,
    },
}

/// Whether the machine will have a unit the config names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presence {
    /// The machine has its file (or its template's), or the config gives it.
    Present,
    /// Container Linux's name for a unit this OS has under the name given.
    Renamed(&'static str),
    /// Neither: the message names the unit and says why.
    Absent(String),
}

/// Where `unit` stands: `provided` are the units the config itself writes (see
/// [`provided_units`]), `files` what the machine has. Pure.
pub fn presence(unit: &str, provided: &BTreeSet<String>, files: &UnitFiles) -> Presence {
    let known = |u: &str| {
        files.has(u)
            || provided.contains(u)
            || template_of(u).is_some_and(|t| provided.contains(&t))
    };
    if known(unit) || is_network_unit(unit) {
        return Presence::Present;
    }
    match cloudconfig::container_linux_unit(unit) {
        Some(Fate::Renamed(ours)) if known(ours) => Presence::Renamed(ours),
        _ => Presence::Absent(cloudconfig::not_shipped(unit).unwrap_or_else(|| {
            format!(
                "{unit}: no unit file in {}, and the config gives none",
                UNIT_SEARCH_PATH.join(", ")
            )
        })),
    }
}

/// The units the config writes itself: `coreos.units[]` with content, and `write_files[]`
/// into a unit directory.
pub fn provided_units(config: &CloudConfig) -> BTreeSet<String> {
    let from_units = config
        .coreos
        .units
        .iter()
        .filter(|u| u.content.is_some() && !u.name.is_empty())
        .map(|u| u.name.clone());
    let from_files = config.write_files.iter().filter_map(|f| {
        let (dir, name) = f.path.rsplit_once('/')?;
        let dir = dir.trim_end_matches('/');
        UNIT_SEARCH_PATH
            .contains(&dir)
            .then(|| name.to_string())
            .filter(|n| !n.is_empty())
    });
    from_units.chain(from_files).collect()
}

/// The actions for user-data of any kind (an Ignition config gives none: it is not ours), on a
/// machine that has `unit_files`.
pub fn plan_user_data(
    user_data: &UserData,
    meta: &Metadata,
    unit_files: &UnitFiles,
) -> Vec<Action> {
    match user_data {
        UserData::CloudConfig(config) => plan(config, meta, unit_files),
        UserData::Script(script) => {
            let mut actions = plan(&CloudConfig::default(), meta, unit_files);
            actions.push(Action::RunScript {
                name: script_name(script),
                content: script.clone(),
            });
            actions
        }
        UserData::Empty => plan(&CloudConfig::default(), meta, unit_files),
        UserData::Ignition(_) => Vec::new(),
    }
}

/// The actions for a cloud-config and the source's metadata on a machine that has `unit_files`
/// (module docs give the order).
pub fn plan(config: &CloudConfig, meta: &Metadata, unit_files: &UnitFiles) -> Vec<Action> {
    let mut actions = Vec::new();
    let network = meta.network.as_ref().filter(|n| !n.files.is_empty());
    if let Some(n) = network {
        actions.push(Action::WriteNetwork {
            files: n.files.clone(),
            summary: n.summary.clone(),
        });
    }
    let hostname = config.hostname.clone().or_else(|| meta.hostname.clone());
    if let Some(hostname) = &hostname {
        actions.push(Action::SetHostname {
            hostname: hostname.clone(),
        });
    }
    let users: Vec<&User> = config.users.iter().filter(|u| !u.name.is_empty()).collect();
    actions.extend(users.iter().map(|u| Action::EnsureUser((*u).clone())));
    let keys = ssh_keys(config, &users, meta);
    let core_has_keys = keys
        .iter()
        .any(|a| matches!(a, Action::AuthorizeKeys { user, .. } if user == DEFAULT_USER));
    if core_has_keys && !users.iter().any(|u| u.name == DEFAULT_USER) {
        // Container Linux images had `core`; ours may not. A no-op where it exists.
        actions.push(Action::EnsureUser(User {
            name: DEFAULT_USER.to_string(),
            ..User::default()
        }));
    }
    actions.extend(keys);
    actions.extend(files(config, &hostname, meta));
    let update = update_conf(config);
    let engine_config_changed = update.is_some()
        || config
            .write_files
            .iter()
            .any(|f| f.path == UPDATE_CONF || f.path == COREOS_UPDATE_CONF);
    actions.extend(update);
    actions.extend(units(config, unit_files, network.is_some()));
    if engine_config_changed {
        // The daemon reads its configuration when it starts (upstream restarted it too): a
        // running one (user-data that arrives after boot, as Vagrant's) starts over with it.
        actions.push(Action::UnitCommand {
            unit: UPDATE_ENGINE_UNIT.to_string(),
            command: UnitCommand::TryRestart,
        });
    }
    actions
}

fn ssh_keys(config: &CloudConfig, users: &[&User], meta: &Metadata) -> Vec<Action> {
    let mut per_user: Vec<(String, Vec<String>)> = Vec::new();
    let mut add = |user: &str, keys: &[String]| {
        if keys.is_empty() {
            return;
        }
        match per_user.iter_mut().find(|(u, _)| u == user) {
            Some((_, list)) => list.extend(keys.iter().cloned()),
            None => per_user.push((user.to_string(), keys.to_vec())),
        }
    };
    for u in users {
        add(&u.name, &u.ssh_authorized_keys);
    }
    add(DEFAULT_USER, &config.ssh_authorized_keys);
    add(DEFAULT_USER, &meta.ssh_public_keys);
    per_user
        .into_iter()
        .map(|(user, keys)| Action::AuthorizeKeys {
            user,
            name: KEY_NAME.to_string(),
            keys,
        })
        .collect()
}

fn files(config: &CloudConfig, hostname: &Option<String>, meta: &Metadata) -> Vec<Action> {
    let mut actions: Vec<Action> = config
        .write_files
        .iter()
        .filter(|f| !f.path.is_empty())
        .map(|f| Action::WriteFile {
            path: f.path.clone(),
            content: f.content.clone(),
            mode: f.mode(),
            owner: f.owner.clone(),
        })
        .collect();
    if config.manage_etc_hosts.as_deref() == Some("localhost") {
        actions.push(Action::WriteEtcHosts {
            hostname: hostname.clone(),
        });
    }
    actions.extend(oem_release(&config.coreos.oem));
    if let Some(options) = config.coreos.flannel.options_env() {
        actions.push(Action::WriteFile {
            path: FLANNEL_OPTIONS.to_string(),
            content: options.into_bytes(),
            mode: FileMode::DEFAULT,
            owner: None,
        });
    }
    let env: Vec<(String, String)> = meta
        .addresses
        .environment_file_vars()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    if !env.is_empty() {
        actions.push(Action::WriteEnvironment { set: env });
    }
    actions
}

/// `/etc/oem-release` as upstream wrote it (only when `id` is set).
fn oem_release(oem: &Oem) -> Option<Action> {
    let id = oem.id.as_ref()?;
    let quoted = |v: &Option<String>| {
        let v = v.as_deref().unwrap_or("");
        format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
    };
    let content = format!(
        "ID={id}\nVERSION_ID={}\nNAME={}\nHOME_URL={}\nBUG_REPORT_URL={}\n",
        oem.version_id.as_deref().unwrap_or(""),
        quoted(&oem.name),
        quoted(&oem.home_url),
        quoted(&oem.bug_report_url),
    );
    Some(Action::WriteFile {
        path: OEM_RELEASE.to_string(),
        content: content.into_bytes(),
        mode: FileMode::DEFAULT,
        owner: None,
    })
}

fn update_conf(config: &CloudConfig) -> Option<Action> {
    let mut set: Vec<(String, String)> = config
        .coreos
        .update
        .environment()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    let mut unset = Vec::new();
    for (k, v) in config.coreos.locksmith.environment() {
        let key = match k {
            // Written under locksmithd's own names; the older spellings go (they would
            // shadow nothing, but a reader should find one window).
            keys::REBOOT_WINDOW_START => {
                unset.push(k.to_string());
                keys::LOCKSMITHD_REBOOT_WINDOW_START.to_string()
            }
            keys::REBOOT_WINDOW_LENGTH => {
                unset.push(k.to_string());
                keys::LOCKSMITHD_REBOOT_WINDOW_LENGTH.to_string()
            }
            k => k.to_string(),
        };
        set.push((key, v));
    }
    (!set.is_empty()).then_some(Action::WriteUpdateConf { set, unset })
}

/// `source_network`: the source wrote network files (networkd is restarted for them too).
fn units(config: &CloudConfig, files: &UnitFiles, source_network: bool) -> Vec<Action> {
    let provided = provided_units(config);
    let mut actions = Vec::new();
    let mut commands = Vec::new();
    let etcd = &config.coreos.etcd2;
    if !etcd.is_empty() {
        actions.push(Action::WriteDropIn {
            unit: ETCD_UNIT.to_string(),
            runtime: true,
            name: CLOUDINIT_DROP_IN.to_string(),
            content: etcd_drop_in(etcd),
        });
        let present = presence(ETCD_UNIT, &provided, files);
        actions.push(enable_or_skip(ETCD_UNIT, &present, true));
        commands.push(command_or_skip(ETCD_UNIT, &present, UnitCommand::Start));
    }
    if !config.coreos.fleet.is_empty() {
        actions.push(Action::WriteDropIn {
            unit: FLEET_UNIT.to_string(),
            runtime: true,
            name: CLOUDINIT_DROP_IN.to_string(),
            content: fleet_drop_in(&config.coreos.fleet),
        });
    }
    let mut network = source_network;
    for u in config.coreos.units.iter().filter(|u| !u.name.is_empty()) {
        let runtime = u.runtime;
        let present = presence(&u.name, &provided, files);
        let target = match present {
            Presence::Renamed(ours) => ours.to_string(),
            _ => u.name.clone(),
        };
        for d in &u.drop_ins {
            if !d.name.is_empty() && !d.content.is_empty() {
                actions.push(Action::WriteDropIn {
                    unit: target.clone(),
                    runtime,
                    name: d.name.clone(),
                    content: d.content.clone(),
                });
            }
        }
        if let Some(content) = &u.content {
            network |= is_network_unit(&u.name);
            actions.push(Action::WriteUnit {
                unit: u.name.clone(),
                runtime,
                content: content.clone(),
            });
        }
        if u.enable && !is_network_unit(&u.name) {
            actions.push(enable_or_skip(&u.name, &present, runtime));
        }
        if u.mask {
            actions.push(Action::MaskUnit {
                unit: u.name.clone(),
                runtime,
            });
        }
        if let Some(command) = u.command {
            let action = command_or_skip(&u.name, &present, command);
            // etcd2.service and the etcd2 section both start etcd.service: once is enough.
            if !commands.contains(&action) {
                commands.push(action);
            }
        }
    }
    if actions
        .iter()
        .any(|a| !matches!(a, Action::SkipUnit { .. }))
    {
        actions.push(Action::DaemonReload);
    }
    if network {
        actions.push(Action::UnitCommand {
            unit: NETWORKD_UNIT.to_string(),
            command: UnitCommand::Restart,
        });
    }
    actions.extend(commands);
    actions
}

/// `enable UNIT`, on the name the machine has it under, or the warning that it has none.
fn enable_or_skip(unit: &str, present: &Presence, runtime: bool) -> Action {
    match present {
        Presence::Present => Action::EnableUnit {
            unit: unit.to_string(),
            runtime,
        },
        Presence::Renamed(ours) => Action::EnableUnit {
            unit: ours.to_string(),
            runtime,
        },
        Presence::Absent(why) => Action::SkipUnit {
            unit: unit.to_string(),
            verb: "enable",
            why: why.clone(),
        },
    }
}

/// `systemctl COMMAND UNIT`, likewise.
fn command_or_skip(unit: &str, present: &Presence, command: UnitCommand) -> Action {
    match present {
        Presence::Present => Action::UnitCommand {
            unit: unit.to_string(),
            command,
        },
        Presence::Renamed(ours) => Action::UnitCommand {
            unit: ours.to_string(),
            command,
        },
        Presence::Absent(why) => Action::SkipUnit {
            unit: unit.to_string(),
            verb: command.as_str(),
            why: why.clone(),
        },
    }
}

/// The script's name: its hash, so that the same script gets the same name (no clock).
pub fn script_name(script: &[u8]) -> String {
    let hash = hex::encode(Sha256::digest(script));
    format!("coreos-cloudinit-{}", &hash[..12])
}

/// Keys whose values are not printed.
fn is_secret(key: &str) -> bool {
    key.contains("PASSWORD")
}

fn pairs(set: &[(String, String)]) -> String {
    set.iter()
        .map(|(k, v)| {
            if is_secret(k) {
                format!("{k}=(hidden)")
            } else {
                format!("{k}={v}")
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

impl fmt::Display for Action {
    /// One line for `--dry-run` and for messages (no passwords or file contents).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::WriteNetwork { files, summary } => {
                let paths: Vec<String> = files.iter().map(|n| unit_path(&n.name, true)).collect();
                write!(f, "configure network ({summary}): {}", paths.join(", "))
            }
            Action::SetHostname { hostname } => write!(f, "set hostname {hostname}"),
            Action::EnsureUser(u) => {
                write!(f, "create or update user {}", u.name)?;
                if !u.groups.is_empty() {
                    write!(f, " (groups {})", u.groups.join(","))?;
                }
                Ok(())
            }
            Action::AuthorizeKeys { user, name, keys } => write!(
                f,
                "authorize {} SSH key{} for {user} (authorized_keys.d/{name})",
                keys.len(),
                if keys.len() == 1 { "" } else { "s" }
            ),
            Action::WriteFile {
                path,
                content,
                mode,
                owner,
            } => {
                write!(f, "write {path} ({mode}, {} bytes", content.len())?;
                if let Some(o) = owner {
                    write!(f, ", owner {o}")?;
                }
                write!(f, ")")
            }
            Action::WriteEtcHosts { hostname } => match hostname {
                Some(h) => write!(f, "write {HOSTS_FILE} for {h}"),
                None => write!(f, "write {HOSTS_FILE} for the hostname in {HOSTNAME_FILE}"),
            },
            Action::WriteEnvironment { set } => {
                write!(f, "set {} in {ENVIRONMENT_FILE}", pairs(set))
            }
            Action::WriteUpdateConf { set, unset } => {
                write!(f, "set {} in {UPDATE_CONF}", pairs(set))?;
                if !unset.is_empty() {
                    write!(f, ", remove {}", unset.join(" "))?;
                }
                Ok(())
            }
            Action::WriteUnit { unit, runtime, .. } => {
                write!(f, "write unit {}", unit_path(unit, *runtime))
            }
            Action::WriteDropIn {
                unit,
                runtime,
                name,
                ..
            } => write!(f, "write drop-in {}", drop_in_path(unit, name, *runtime)),
            Action::MaskUnit { unit, runtime } => {
                write!(f, "mask {unit}{}", if *runtime { " (runtime)" } else { "" })
            }
            Action::EnableUnit { unit, runtime } => {
                write!(
                    f,
                    "enable {unit}{}",
                    if *runtime { " (runtime)" } else { "" }
                )
            }
            Action::DaemonReload => write!(f, "systemctl daemon-reload"),
            Action::UnitCommand { unit, command } => {
                write!(f, "systemctl --no-block {} {unit}", command.as_str())
            }
            Action::RunScript { name, content } => write!(
                f,
                "run script {SCRIPTS_DIR}/{name} ({} bytes) as {name}.service",
                content.len()
            ),
            Action::SkipUnit { verb, why, .. } => write!(f, "{why}; {verb} skipped"),
        }
    }
}
