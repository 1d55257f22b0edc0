//! The plan: what applying a cloud-config means, as a list of [`Action`]s computed without
//! looking at the machine (pure). [`super::apply`] carries it out; `--dry-run` prints it.
//!
//! Order, as upstream's `initialize.Apply` and `main`:
//! 1. hostname (the config's, else the source's metadata's);
//! 2. `users[]` (create or update), then SSH keys per user (`core` gets its `users[]` keys, the
//!    top-level `ssh_authorized_keys` and the metadata's keys in one file: upstream wrote them one
//!    after the other into the same file, so the last write won). When `core` gets keys without a
//!    `users[]` entry, the plan ensures `core` exists (with defaults; nothing changes where the
//!    image has it, as Container Linux's did);
//! 3. `write_files[]`, `/etc/hosts` (`manage_etc_hosts: localhost`), `/etc/oem-release`
//!    (`coreos.oem` with an `id`), `/etc/environment` (`COREOS_*_IPV4/6` of the metadata);
//! 4. `/etc/update-engine/update.conf`: `coreos.update` (`GROUP`, `SERVER`, `REBOOT_STRATEGY`)
//!    and `coreos.locksmith` (`LOCKSMITHD_*`; the window as `LOCKSMITHD_REBOOT_WINDOW_START` and
//!    `_LENGTH`, which update-engine reads before the short `REBOOT_WINDOW_*` names, which are
//!    removed). Upstream wrote `/etc/coreos/update.conf` and a locksmithd drop-in;
//! 5. `coreos.etcd2`: the drop-in `/run/systemd/system/etcd.service.d/20-cloudinit.conf`, and
//!    etcd enabled (runtime) and started — upstream only wrote the drop-in ([`super::units`]);
//! 6. `coreos.units[]` in order: drop-ins, the unit file, enable (not for network files), mask;
//! 7. `systemctl daemon-reload` when any unit file changed; `systemd-networkd` restarted when a
//!    network file was written; then the units' commands (etcd's start first); last
//!    `try-restart update-engine.service` when one of its `update.conf`s changed (the agent's,
//!    or Container Linux's `/etc/coreos/update.conf` through `write_files`);
//! 8. a `#!` script user-data: written to `/var/lib/coreos-cloudinit/scripts/` and run as a
//!    transient unit.

use std::fmt;

use cloudconfig::{CloudConfig, FileMode, Oem, UnitCommand, User, UserData};
use contract::update_conf::keys;
use sha2::{Digest, Sha256};

use super::metadata::Metadata;
use super::ssh::KEY_NAME;
use super::units::{
    drop_in_path, etcd_drop_in, is_network_unit, unit_path, CLOUDINIT_DROP_IN, ETCD_UNIT,
};

pub const HOSTNAME_FILE: &str = "/etc/hostname";
pub const HOSTS_FILE: &str = "/etc/hosts";
pub const OEM_RELEASE: &str = "/etc/oem-release";
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
}

/// The actions for user-data of any kind (an Ignition config gives none: it is not ours).
pub fn plan_user_data(user_data: &UserData, meta: &Metadata) -> Vec<Action> {
    match user_data {
        UserData::CloudConfig(config) => plan(config, meta),
        UserData::Script(script) => {
            let mut actions = plan(&CloudConfig::default(), meta);
            actions.push(Action::RunScript {
                name: script_name(script),
                content: script.clone(),
            });
            actions
        }
        UserData::Empty => plan(&CloudConfig::default(), meta),
        UserData::Ignition(_) => Vec::new(),
    }
}

/// The actions for a cloud-config and the source's metadata (module docs give the order).
pub fn plan(config: &CloudConfig, meta: &Metadata) -> Vec<Action> {
    let mut actions = Vec::new();
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
    actions.extend(units(config));
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

fn units(config: &CloudConfig) -> Vec<Action> {
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
        actions.push(Action::EnableUnit {
            unit: ETCD_UNIT.to_string(),
            runtime: true,
        });
        commands.push(Action::UnitCommand {
            unit: ETCD_UNIT.to_string(),
            command: UnitCommand::Start,
        });
    }
    let mut network = false;
    for u in config.coreos.units.iter().filter(|u| !u.name.is_empty()) {
        let (unit, runtime) = (u.name.clone(), u.runtime);
        for d in &u.drop_ins {
            if !d.name.is_empty() && !d.content.is_empty() {
                actions.push(Action::WriteDropIn {
                    unit: unit.clone(),
                    runtime,
                    name: d.name.clone(),
                    content: d.content.clone(),
                });
            }
        }
        if let Some(content) = &u.content {
            network |= is_network_unit(&unit);
            actions.push(Action::WriteUnit {
                unit: unit.clone(),
                runtime,
                content: content.clone(),
            });
        }
        if u.enable && !is_network_unit(&unit) {
            actions.push(Action::EnableUnit {
                unit: unit.clone(),
                runtime,
            });
        }
        if u.mask {
            actions.push(Action::MaskUnit {
                unit: unit.clone(),
                runtime,
            });
        }
        if let Some(command) = u.command {
            commands.push(Action::UnitCommand { unit, command });
        }
    }
    if !actions.is_empty() {
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
        }
    }
}
