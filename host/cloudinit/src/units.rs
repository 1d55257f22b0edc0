//! systemd unit files, drop-ins, masks and enablement done with files only (no `systemctl` is
//! needed offline), and the etcd drop-in of `coreos.etcd2`. Pure: paths and texts; the files are
//! written by [`super::apply`].
//!
//! Places (upstream's `Unit.Destination`): units go to `/etc/systemd/system`, or
//! `/run/systemd/system` with `runtime: true`; `.network`, `.netdev` and `.link` files go to
//! `/etc/systemd/network` (`/run/…`) instead. Enabling reads the unit's `[Install]` section
//! (`WantedBy=`, `RequiredBy=`, `Alias=`, `DefaultInstance=`) and makes the symlinks `systemctl
//! enable` makes: `<dir>/<target>.wants/<unit>` → the unit file, in `/etc/systemd/system`, or in
//! `/run/systemd/system` with `runtime: true` (`systemctl enable --runtime`). `Also=` is not
//! followed. An instance (`foo@bar.service`) is enabled from its template's file.
//!
//! Which units a machine has ([`UnitFiles`]): the file names in systemd's unit directories under
//! the root, read once; whether a given unit is there is then a pure question.
//!
//! etcd: Container Linux's etcd2 unit was `etcd2.service`, and coreos-cloudinit wrote
//! `/run/systemd/system/etcd2.service.d/20-cloudinit.conf`. Debian's `etcd-server` package, which
//! our images use, names it `etcd.service`, so the drop-in goes to `etcd.service.d`. Debian's unit
//! also reads `EnvironmentFile=-/etc/default/etcd`, whose variables win over `Environment=`.

use std::collections::BTreeSet;
use std::fmt;
use std::io;
use std::path::Path;

use cloudconfig::{Etcd2, Fleet};

/// The template of an instance name: `foo@bar.service` → `foo@.service`.
pub use cloudconfig::template_of;
/// The etcd server unit of Debian's `etcd-server` package.
pub use cloudconfig::ETCD_UNIT;
/// fleet's unit, which gets the `coreos.fleet` drop-in (this OS does not ship fleet).
pub const FLEET_UNIT: &str = "fleet.service";
/// The drop-in the `coreos.etcd2` options go to (upstream's name).
pub const CLOUDINIT_DROP_IN: &str = "20-cloudinit.conf";
/// Where systemd looks for unit files, in its order (the subset a unit file can be in here).
pub const UNIT_SEARCH_PATH: [&str; 5] = [
    "/etc/systemd/system",
    "/run/systemd/system",
    "/usr/local/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
];
/// Where else systemd finds units when the agent runs: the generators' output (fstab mounts,
/// SysV scripts...) and transient units.
pub const GENERATED_UNIT_DIRS: [&str; 4] = [
    "/run/systemd/generator.early",
    "/run/systemd/generator",
    "/run/systemd/generator.late",
    "/run/systemd/transient",
];
const NETWORK_SUFFIXES: [&str; 3] = [".network", ".netdev", ".link"];
/// Units systemd makes without a file.
const FILELESS_SUFFIXES: [&str; 2] = [".device", ".scope"];
const FILELESS_UNITS: [&str; 2] = ["-.slice", "-.mount"];

/// A unit name that cannot be used as a file name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid unit name {0:?}")]
pub struct BadUnitName(pub String);

/// A file name without `/`, NUL or newlines, with a suffix (`foo.service`)
/// ([`cloudconfig::names`], which the validator reads too).
pub fn check_unit_name(name: &str) -> Result<(), BadUnitName> {
    match cloudconfig::names::unit_name_problem(name) {
        None => Ok(()),
        Some(_) => Err(BadUnitName(name.to_string())),
    }
}

/// A drop-in name: a file name ending in `.conf`.
pub fn check_drop_in_name(name: &str) -> Result<(), BadUnitName> {
    match cloudconfig::names::drop_in_name_problem(name) {
        None => Ok(()),
        Some(_) => Err(BadUnitName(name.to_string())),
    }
}

/// A `.network`, `.netdev` or `.link` file (systemd-networkd/udev, not the service manager).
pub fn is_network_unit(name: &str) -> bool {
    NETWORK_SUFFIXES.iter().any(|s| name.ends_with(s))
}

/// The directory a unit (or its drop-ins) is written to.
pub fn unit_dir(name: &str, runtime: bool) -> String {
    let base = if runtime { "/run" } else { "/etc" };
    let kind = if is_network_unit(name) {
        "network"
    } else {
        "system"
    };
    format!("{base}/systemd/{kind}")
}

pub fn unit_path(name: &str, runtime: bool) -> String {
    format!("{}/{name}", unit_dir(name, runtime))
}

pub fn drop_in_path(unit: &str, name: &str, runtime: bool) -> String {
    format!("{}/{unit}.d/{name}", unit_dir(unit, runtime))
}

/// The unit files a machine has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnitFiles {
    /// Not looked at: every unit counts as present (nothing is skipped).
    Unknown,
    /// The file names (units, templates, aliases, masks) found in the unit directories.
    Listed(BTreeSet<String>),
}

impl UnitFiles {
    pub fn from_names<S: Into<String>>(names: impl IntoIterator<Item = S>) -> UnitFiles {
        UnitFiles::Listed(names.into_iter().map(Into::into).collect())
    }

    /// The names in [`UNIT_SEARCH_PATH`] and [`GENERATED_UNIT_DIRS`] under `root` (a missing
    /// directory holds none).
    pub fn read(root: &Path) -> io::Result<UnitFiles> {
        let mut names = BTreeSet::new();
        for dir in UNIT_SEARCH_PATH.iter().chain(&GENERATED_UNIT_DIRS) {
            let path = root.join(dir.trim_start_matches('/'));
            let entries = match std::fs::read_dir(&path) {
                Ok(entries) => entries,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", path.display()))),
            };
            for entry in entries {
                let name = entry?.file_name().to_string_lossy().into_owned();
                let is_dir_of_unit = [".d", ".wants", ".requires", ".upholds"]
                    .iter()
                    .any(|s| name.ends_with(s));
                if check_unit_name(&name).is_ok() && !is_dir_of_unit {
                    names.insert(name);
                }
            }
        }
        Ok(UnitFiles::Listed(names))
    }

    /// Whether the machine has `unit`: its file, or its template's for an instance. Units
    /// systemd makes without a file (`.device`, `.scope`, `-.slice`) always count.
    pub fn has(&self, unit: &str) -> bool {
        let UnitFiles::Listed(names) = self else {
            return true;
        };
        names.contains(unit)
            || template_of(unit).is_some_and(|t| names.contains(&t))
            || FILELESS_UNITS.contains(&unit)
            || FILELESS_SUFFIXES.iter().any(|s| unit.ends_with(s))
    }
}

/// The `[Install]` section of a unit file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Install {
    pub wanted_by: Vec<String>,
    pub required_by: Vec<String>,
    pub alias: Vec<String>,
    pub default_instance: Option<String>,
}

impl Install {
    pub fn is_empty(&self) -> bool {
        self.wanted_by.is_empty() && self.required_by.is_empty() && self.alias.is_empty()
    }
}

/// Reads `[Install]` as systemd does: comments (`#`, `;`), continuation lines ending in `\`,
/// space-separated lists that accumulate, an empty assignment resetting a list.
pub fn parse_install(text: &str) -> Install {
    let mut install = Install::default();
    let mut in_install = false;
    for line in logical_lines(text) {
        let line = line.trim();
        if line.is_empty() || line.starts_with(['#', ';']) {
            continue;
        }
        if line.starts_with('[') {
            in_install = line == "[Install]";
            continue;
        }
        if !in_install {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let list = match key.trim() {
            "WantedBy" => &mut install.wanted_by,
            "RequiredBy" => &mut install.required_by,
            "Alias" => &mut install.alias,
            "DefaultInstance" => {
                install.default_instance = Some(value.trim().to_string()).filter(|v| !v.is_empty());
                continue;
            }
            _ => continue,
        };
        if value.trim().is_empty() {
            list.clear();
        }
        list.extend(value.split_whitespace().map(str::to_string));
    }
    install
}

/// Lines with `\`-newline continuations joined (by a space, as systemd does).
fn logical_lines(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in text.lines() {
        match line.strip_suffix('\\') {
            Some(head) => {
                cur.push_str(head);
                cur.push(' ');
            }
            None => {
                cur.push_str(line);
                out.push(std::mem::take(&mut cur));
            }
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// A symlink to create: `path` → `target` (absolute paths on the running system).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Link {
    pub path: String,
    pub target: String,
}

impl fmt::Display for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} → {}", self.path, self.target)
    }
}

/// The links `systemctl enable [--runtime] UNIT` makes for a unit whose file is `unit_file` and
/// whose `[Install]` is `install`, sorted. A template without an instance is enabled as its
/// `DefaultInstance=`, or not at all.
pub fn enable_links(unit: &str, unit_file: &str, install: &Install, runtime: bool) -> Vec<Link> {
    let name = match unit.split_once('@') {
        Some((prefix, rest)) if rest.starts_with('.') => match &install.default_instance {
            Some(instance) => format!("{prefix}@{instance}{rest}"),
            None => return Vec::new(),
        },
        _ => unit.to_string(),
    };
    let dir = if runtime {
        "/run/systemd/system"
    } else {
        "/etc/systemd/system"
    };
    let wants = install.wanted_by.iter().map(|t| (t, "wants"));
    let requires = install.required_by.iter().map(|t| (t, "requires"));
    let mut links: Vec<Link> = wants
        .chain(requires)
        .filter(|(t, _)| check_unit_name(t).is_ok())
        .map(|(t, kind)| Link {
            path: format!("{dir}/{t}.{kind}/{name}"),
            target: unit_file.to_string(),
        })
        .chain(
            install
                .alias
                .iter()
                .filter(|a| check_unit_name(a).is_ok() && **a != name)
                .map(|a| Link {
                    path: format!("{dir}/{a}"),
                    target: unit_file.to_string(),
                }),
        )
        .collect();
    links.sort();
    links.dedup();
    links
}

/// The drop-in for `coreos.etcd2`: one `Environment="ETCD_KEY=value"` line per option.
pub fn etcd_drop_in(etcd: &Etcd2) -> String {
    environment_drop_in(etcd.environment())
}

/// The drop-in for `coreos.fleet`: one `Environment="FLEET_KEY=value"` line per option.
pub fn fleet_drop_in(fleet: &Fleet) -> String {
    environment_drop_in(fleet.environment().iter().cloned())
}

fn environment_drop_in(vars: impl IntoIterator<Item = (String, String)>) -> String {
    let mut out = String::from("[Service]\n");
    for (k, v) in vars {
        out.push_str(&format!(
            "Environment={}\n",
            systemd_quote(&format!("{k}={v}"))
        ));
    }
    out
}

/// A double-quoted systemd value: `\` and `"` escaped, newlines as `\n`, and `%` doubled (unit
/// files expand specifiers in `Environment=`; upstream wrote values as they were).
pub fn systemd_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '%' => out.push_str("%%"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_places() {
        for ok in ["foo.service", "a@b.service", "20-x.network", "x.mount"] {
            assert!(check_unit_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "foo",
            "../x.service",
            "a/b.service",
            ".service",
            "a\n.service",
        ] {
            assert!(check_unit_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_drop_in_name("10-x.conf").is_ok());
        assert!(check_drop_in_name("10-x.txt").is_err());
        assert_eq!(
            unit_path("a.service", false),
            "/etc/systemd/system/a.service"
        );
        assert_eq!(
            unit_path("a.service", true),
            "/run/systemd/system/a.service"
        );
        assert_eq!(
            unit_path("10-e.network", false),
            "/etc/systemd/network/10-e.network"
        );
        assert_eq!(
            unit_path("10-e.link", true),
            "/run/systemd/network/10-e.link"
        );
        assert_eq!(
            drop_in_path("etcd.service", "20-cloudinit.conf", true),
            "/run/systemd/system/etcd.service.d/20-cloudinit.conf"
        );
        assert_eq!(
            template_of("getty@tty1.service").as_deref(),
            Some("getty@.service")
        );
        assert_eq!(
            template_of("a@.service"),
            None,
            "a template is its own file"
        );
        assert_eq!(template_of("plain.service"), None);
    }

    #[test]
    fn install_sections() {
        let text = "[Unit]\nWantedBy=not-this.target\n[Service]\nExecStart=/bin/true\n\n\
                    [Install]\n# comment\nWantedBy=multi-user.target \\\n  default.target\n\
                    RequiredBy=a.service\nRequiredBy=\nRequiredBy=b.service\nAlias=x.service\n\
                    DefaultInstance=one\n";
        assert_eq!(
            parse_install(text),
            Install {
                wanted_by: vec!["multi-user.target".into(), "default.target".into()],
                required_by: vec!["b.service".into()],
                alias: vec!["x.service".into()],
                default_instance: Some("one".into()),
            }
        );
        assert!(parse_install("[Service]\nExecStart=/bin/true\n").is_empty());
    }

    #[test]
    fn links_as_systemctl_enable_makes_them() {
        let install = Install {
            wanted_by: vec!["multi-user.target".into()],
            required_by: vec!["b.service".into()],
            alias: vec!["x.service".into()],
            default_instance: None,
        };
        let file = "/etc/systemd/system/a.service";
        assert_eq!(
            enable_links("a.service", file, &install, false),
            vec![
                Link {
                    path: "/etc/systemd/system/b.service.requires/a.service".into(),
                    target: file.into()
                },
                Link {
                    path: "/etc/systemd/system/multi-user.target.wants/a.service".into(),
                    target: file.into()
                },
                Link {
                    path: "/etc/systemd/system/x.service".into(),
                    target: file.into()
                },
            ]
        );
        let runtime = enable_links(
            "getty@tty2.service",
            "/usr/lib/systemd/system/getty@.service",
            &install,
            true,
        );
        assert_eq!(
            runtime[1].path,
            "/run/systemd/system/multi-user.target.wants/getty@tty2.service"
        );
        assert!(enable_links("t@.service", "/x", &install, false).is_empty());
        let with_default = Install {
            default_instance: Some("d".into()),
            ..install
        };
        assert_eq!(
            enable_links("t@.service", "/x", &with_default, false)[1].path,
            "/etc/systemd/system/multi-user.target.wants/t@d.service"
        );
    }

    #[test]
    fn unit_files_under_a_root() {
        let tmp = tempfile::tempdir().unwrap();
        let r = tmp.path();
        let touch = |rel: &str| {
            let p = r.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "").unwrap();
        };
        touch("usr/lib/systemd/system/etcd.service");
        touch("lib/systemd/system/getty@.service");
        touch("etc/systemd/system/mine.service");
        touch("etc/systemd/system/docker.service.d/10-x.conf");
        touch("etc/systemd/system/multi-user.target.wants/ignored.service");
        touch("run/systemd/generator/home.mount");
        touch("usr/lib/systemd/system/README");
        std::os::unix::fs::symlink("/dev/null", r.join("etc/systemd/system/masked.service"))
            .unwrap();
        let files = UnitFiles::read(r).unwrap();
        assert_eq!(
            files,
            UnitFiles::from_names([
                "etcd.service",
                "getty@.service",
                "home.mount",
                "masked.service",
                "mine.service",
            ]),
            "unit files, templates and masks; not drop-in or .wants directories, nor README"
        );
        for (unit, has) in [
            ("etcd.service", true),
            ("getty@tty1.service", true),
            ("home.mount", true),
            ("dev-vda.device", true),
            ("-.slice", true),
            ("fleet.service", false),
            ("docker.service", false),
            ("ignored.service", false),
        ] {
            assert_eq!(files.has(unit), has, "{unit}");
        }
        assert!(UnitFiles::Unknown.has("fleet.service"));
        // An empty root has no units (the minimal image has no systemd).
        let empty = tempfile::tempdir().unwrap();
        assert_eq!(
            UnitFiles::read(empty.path()).unwrap(),
            UnitFiles::from_names(Vec::<String>::new())
        );
    }

    #[test]
    fn quoting() {
        assert_eq!(systemd_quote("A=b c"), "\"A=b c\"");
        assert_eq!(
            systemd_quote("A=\"q\" \\ 50%\nx"),
            r#""A=\"q\" \\ 50%%\nx""#
        );
    }
}
