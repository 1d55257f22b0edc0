//! Carrying out a plan under a root directory (the edge). Each action is independent: one that
//! fails is reported and the rest still run (upstream stopped at the first error).
//!
//! Files are written with [`util::fs::write_atomic_with`]: through a temporary file in the same
//! directory, then renamed over the target, with the mode set explicitly (no umask) and the owner set before the rename; parent
//! directories are created with mode 0755. Account files and `KEY=VALUE` files keep the mode
//! and owner they had. Paths from the config are taken under the root and may not contain `..`.
//! `/etc/passwd` & co. are edited without taking `/etc/.pwd.lock`: at boot nothing else does.
//!
//! Calls outside the file tree (`systemctl`, `sethostname`, `systemd-run`) go through [`Host`];
//! on an offline host they are skipped and reported as such. Unit commands use `--no-block`:
//! the agent runs ordered before the units it may start (etcd, docker), and waiting for their
//! start jobs would wait for the agent itself.

use std::fs;
use std::io;
use std::os::unix::fs::{symlink, DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use cloudconfig::User;

use super::accounts::{Accounts, AccountsError};
use super::conf::{merge, ConfError};
use super::host::{Host, HostError};
use super::metadata::NetworkFile;
use super::plan::{Action, ENVIRONMENT_FILE, HOSTNAME_FILE, HOSTS_FILE, SCRIPTS_DIR, UPDATE_CONF};
use super::ssh::{self, key_file, render_authorized_keys};
use super::units::{
    self, check_drop_in_name, check_unit_name, drop_in_path, enable_links, is_network_unit,
    parse_install, template_of, unit_path, BadUnitName, UNIT_SEARCH_PATH,
};

/// Largest hostname the kernel takes (`HOST_NAME_MAX`).
pub const MAX_HOSTNAME_BYTES: usize = 64;
const DIR_MODE: u32 = 0o755;
const HOME_MODE: u32 = 0o755;
const SSH_DIR_MODE: u32 = 0o700;
const SSH_FILE_MODE: u32 = 0o600;
const SCRIPT_MODE: u32 = 0o700;

/// Why an action failed.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error(transparent)]
    Accounts(#[from] AccountsError),
    #[error(transparent)]
    Conf(#[from] ConfError),
    #[error(transparent)]
    UnitName(#[from] BadUnitName),
    #[error(transparent)]
    Host(#[from] HostError),
    #[error("{0}")]
    Invalid(String),
    #[error("no user {0:?} in /etc/passwd")]
    NoSuchUser(String),
    #[error("no group {0:?} in /etc/group")]
    NoSuchGroup(String),
    #[error("no unit file {unit} in {}", UNIT_SEARCH_PATH.join(", "))]
    UnitNotFound { unit: String },
    #[error("{unit} is masked ({path} → /dev/null)")]
    Masked { unit: String, path: String },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ApplyError + '_ {
    move |source| ApplyError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// How an action ended when it did not fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Done,
    /// Done, with something worth saying.
    Note(String),
    /// Not done: it only makes sense on the running system.
    Skipped(String),
    /// Not done, and the operator should hear why (printed as a warning; not a failure).
    Warning(String),
}

/// Applies every action in order; `report` hears each result. Returns the number that failed.
pub fn apply(
    actions: &[Action],
    root: &Path,
    host: &dyn Host,
    report: &mut dyn FnMut(&Action, &Result<Outcome, ApplyError>),
) -> usize {
    let mut failed = 0;
    for action in actions {
        let result = apply_action(action, root, host);
        failed += usize::from(result.is_err());
        report(action, &result);
    }
    failed
}

/// One action.
pub fn apply_action(action: &Action, root: &Path, host: &dyn Host) -> Result<Outcome, ApplyError> {
    match action {
        Action::WriteNetwork { files, .. } => write_network(root, files),
        Action::SetHostname { hostname } => set_hostname(root, host, hostname),
        Action::EnsureUser(user) => ensure_user(root, user),
        Action::AuthorizeKeys { user, name, keys } => authorize_keys(root, user, name, keys),
        Action::WriteFile {
            path,
            content,
            mode,
            owner,
        } => {
            let target = under(root, path)?;
            let owner = match owner {
                Some(spec) => resolve_owner(spec, &load_accounts(root)?)?,
                None => (None, None),
            };
            write_atomic(&target, content, mode.0, owner)?;
            Ok(Outcome::Done)
        }
        Action::WriteEtcHosts { hostname } => write_etc_hosts(root, hostname.as_deref()),
        Action::WriteEnvironment { set } => merge_file(root, ENVIRONMENT_FILE, set, &[]),
        Action::WriteUpdateConf { set, unset } => merge_file(root, UPDATE_CONF, set, unset),
        Action::WriteUnit {
            unit,
            runtime,
            content,
        } => {
            check_unit_name(unit)?;
            write_atomic(
                &under(root, &unit_path(unit, *runtime))?,
                content.as_bytes(),
                0o644,
                (None, None),
            )?;
            Ok(Outcome::Done)
        }
        Action::WriteDropIn {
            unit,
            runtime,
            name,
            content,
        } => {
            check_unit_name(unit)?;
            check_drop_in_name(name)?;
            let path = under(root, &drop_in_path(unit, name, *runtime))?;
            write_atomic(&path, content.as_bytes(), 0o644, (None, None))?;
            Ok(Outcome::Done)
        }
        Action::MaskUnit { unit, runtime } => {
            check_unit_name(unit)?;
            replace_symlink(&under(root, &unit_path(unit, *runtime))?, "/dev/null")?;
            Ok(Outcome::Done)
        }
        Action::EnableUnit { unit, runtime } => enable_unit(root, unit, *runtime),
        Action::DaemonReload => systemctl(host, &["daemon-reload"]),
        Action::UnitCommand { unit, command } => {
            check_unit_name(unit)?;
            systemctl(host, &["--no-block", command.as_str(), unit])
        }
        Action::RunScript { name, content } => run_script(root, host, name, content),
        Action::SkipUnit { .. } => Ok(Outcome::Warning(action.to_string())),
    }
}

fn systemctl(host: &dyn Host, args: &[&str]) -> Result<Outcome, ApplyError> {
    if !host.is_live() {
        return Ok(Outcome::Skipped("offline".into()));
    }
    host.systemctl(args)?;
    Ok(Outcome::Done)
}

/// A path of the running system (`/etc/x`, or relative as upstream allowed) under `root`.
pub fn under(root: &Path, path: &str) -> Result<PathBuf, ApplyError> {
    // The validator's rule (`cloudconfig::names`): no `..`, a file named.
    if let Some(why) = cloudconfig::names::write_path_problem(path) {
        return Err(ApplyError::Invalid(format!("path {path:?} {why}")));
    }
    let mut out = root.to_path_buf();
    for c in Path::new(path).components() {
        if let Component::Normal(part) = c {
            out.push(part);
        }
    }
    Ok(out)
}

/// `user`, `user:group`, `user.group`, `:group`, numeric IDs: the IDs to chown to (`None`:
/// unchanged, as chown leaves the group of `chown user`).
pub fn resolve_owner(
    spec: &str,
    accounts: &Accounts,
) -> Result<(Option<u32>, Option<u32>), ApplyError> {
    // `user.group` is chown's old spelling; a user whose name has a dot wins over it.
    let split = match spec.split_once(':') {
        Some(pair) => Some(pair),
        None if accounts.user(spec).is_none() => spec.split_once('.'),
        None => None,
    };
    let (user, group) = match split {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let uid = match user {
        "" => None,
        u => Some(match accounts.user(u) {
            Some(e) => e.uid,
            None => u.parse().map_err(|_| ApplyError::NoSuchUser(u.into()))?,
        }),
    };
    let gid = match group.filter(|g| !g.is_empty()) {
        None => None,
        Some(g) => Some(match accounts.group_gid(g) {
            Some(gid) => gid,
            None => g.parse().map_err(|_| ApplyError::NoSuchGroup(g.into()))?,
        }),
    };
    Ok((uid, gid))
}

/// Writes `content` to `path` atomically with `mode` and owner ([`util::fs::write_atomic_with`]),
/// creating missing parent directories (mode 0755) first.
pub fn write_atomic(
    path: &Path,
    content: &[u8],
    mode: u32,
    owner: (Option<u32>, Option<u32>),
) -> Result<(), ApplyError> {
    let dir = path
        .parent()
        .ok_or_else(|| ApplyError::Invalid(format!("{} has no parent", path.display())))?;
    create_dirs(dir)?;
    util::fs::write_atomic_with(path, content, &util::fs::Options { mode, owner })
        .map_err(io_err(path))
}

/// Like [`write_atomic`], keeping the mode and owner of an existing file.
fn write_keeping_mode(path: &Path, content: &[u8], new_mode: u32) -> Result<(), ApplyError> {
    let (mode, owner) = match fs::metadata(path) {
        Ok(m) => (m.mode() & 0o7777, (Some(m.uid()), Some(m.gid()))),
        Err(_) => (new_mode, (None, None)),
    };
    write_atomic(path, content, mode, owner)
}

fn create_dirs(dir: &Path) -> Result<(), ApplyError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)
        .map_err(io_err(dir))
}

fn read_optional(path: &Path) -> Result<Option<String>, ApplyError> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(path)(e)),
    }
}

/// The source's networkd files, as runtime units (`/run/systemd/network`); the names are
/// checked first, so that a bad one writes nothing.
fn write_network(root: &Path, files: &[NetworkFile]) -> Result<Outcome, ApplyError> {
    for file in files {
        check_unit_name(&file.name)?;
        if !is_network_unit(&file.name) {
            return Err(BadUnitName(file.name.clone()).into());
        }
    }
    for file in files {
        let path = under(root, &unit_path(&file.name, true))?;
        write_atomic(&path, file.content.as_bytes(), 0o644, (None, None))?;
    }
    Ok(Outcome::Done)
}

fn set_hostname(root: &Path, host: &dyn Host, hostname: &str) -> Result<Outcome, ApplyError> {
    let valid = !hostname.is_empty()
        && hostname.len() <= MAX_HOSTNAME_BYTES
        && !hostname.starts_with(['-', '.'])
        && hostname
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
    if !valid {
        return Err(ApplyError::Invalid(format!(
            "{hostname:?} is not a hostname (letters, digits, '-', '.', at most {MAX_HOSTNAME_BYTES} bytes)"
        )));
    }
    let path = under(root, HOSTNAME_FILE)?;
    write_keeping_mode(&path, format!("{hostname}\n").as_bytes(), 0o644)?;
    if !host.is_live() {
        return Ok(Outcome::Note("kernel hostname not set (offline)".into()));
    }
    host.set_hostname(hostname)?;
    Ok(Outcome::Done)
}

const ACCOUNT_FILES: [(&str, u32); 4] = [
    ("/etc/passwd", 0o644),
    ("/etc/shadow", 0o600),
    ("/etc/group", 0o644),
    ("/etc/gshadow", 0o600),
];

fn load_accounts(root: &Path) -> Result<Accounts, ApplyError> {
    let mut texts = Vec::new();
    for (path, _) in ACCOUNT_FILES {
        texts.push(read_optional(&under(root, path)?)?);
    }
    Ok(Accounts::parse(
        texts[0].as_deref().unwrap_or(""),
        texts[1].as_deref(),
        texts[2].as_deref().unwrap_or(""),
        texts[3].as_deref(),
    ))
}

fn ensure_user(root: &Path, user: &User) -> Result<Outcome, ApplyError> {
    let before = load_accounts(root)?;
    let mut after = before.clone();
    let outcome = after.ensure_user(user)?;
    let tables = |a: &Accounts| {
        [
            Some(a.passwd.render()),
            a.shadow.as_ref().map(|t| t.render()),
            Some(a.group.render()),
            a.gshadow.as_ref().map(|t| t.render()),
        ]
    };
    // shadow and gshadow first: a passwd line never points to a missing shadow line.
    let order = [1, 3, 2, 0];
    let (old, new) = (tables(&before), tables(&after));
    for i in order {
        if let Some(text) = &new[i] {
            if old[i].as_ref() != Some(text) {
                let (path, mode) = ACCOUNT_FILES[i];
                write_keeping_mode(&under(root, path)?, text.as_bytes(), mode)?;
            }
        }
    }
    if outcome.create_home {
        let home = under(root, &outcome.home)?;
        if !home.exists() {
            if let Some(parent) = home.parent() {
                create_dirs(parent)?;
            }
            make_dir(&home, HOME_MODE, (outcome.uid, outcome.gid))?;
        }
    }
    Ok(Outcome::Note(outcome.to_string()))
}

/// Creates `dir` (not its parents) with `mode` and owner, or fixes an existing one's owner.
/// A symlink is refused: in a user's home it could point anywhere (`~/.ssh` → `/etc`), and the
/// agent runs as root.
fn make_dir(dir: &Path, mode: u32, (uid, gid): (u32, u32)) -> Result<(), ApplyError> {
    if fs::symlink_metadata(dir).is_ok_and(|m| !m.is_dir()) {
        return Err(ApplyError::Invalid(format!(
            "{} exists and is not a directory (symlinks are not followed)",
            dir.display()
        )));
    }
    match fs::DirBuilder::new().mode(mode).create(dir) {
        Ok(()) => {
            fs::set_permissions(dir, fs::Permissions::from_mode(mode)).map_err(io_err(dir))?
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io_err(dir)(e)),
    }
    std::os::unix::fs::lchown(dir, Some(uid), Some(gid)).map_err(io_err(dir))
}

fn authorize_keys(
    root: &Path,
    user: &str,
    name: &str,
    keys: &[String],
) -> Result<Outcome, ApplyError> {
    if name.is_empty() || name.starts_with('.') || name.contains(['/', '\0']) {
        return Err(ApplyError::Invalid(format!(
            "invalid key file name {name:?}"
        )));
    }
    let entry = load_accounts(root)?
        .user(user)
        .ok_or_else(|| ApplyError::NoSuchUser(user.into()))?;
    let owner = (entry.uid, entry.gid);
    let home = under(root, &entry.home)?;
    let ssh_dir = home.join(".ssh");
    let keys_dir = home.join(ssh::KEYS_DIR);
    let authorized = home.join(ssh::AUTHORIZED_KEYS);
    if !home.exists() {
        create_dirs(&home)?;
        std::os::unix::fs::lchown(&home, Some(entry.uid), Some(entry.gid))
            .map_err(io_err(&home))?;
    }
    make_dir(&ssh_dir, SSH_DIR_MODE, owner)?;
    let fresh = fs::symlink_metadata(&keys_dir).is_err();
    make_dir(&keys_dir, SSH_DIR_MODE, owner)?;
    // Keys put into authorized_keys by other means are kept (update-ssh-keys did so); only a
    // regular file is read (a symlink could point to any file root can read).
    let regular = fs::symlink_metadata(&authorized).is_ok_and(|m| m.is_file());
    if fresh && regular {
        if let Some(old) = read_optional(&authorized)? {
            let keep = keys_dir.join(ssh::OLD_KEYS_NAME);
            write_atomic(
                &keep,
                old.as_bytes(),
                SSH_FILE_MODE,
                (Some(owner.0), Some(owner.1)),
            )?;
        }
    }
    let ids = (Some(owner.0), Some(owner.1));
    write_atomic(
        &keys_dir.join(name),
        key_file(keys).as_bytes(),
        SSH_FILE_MODE,
        ids,
    )?;
    let mut files = Vec::new();
    for entry in fs::read_dir(&keys_dir).map_err(io_err(&keys_dir))? {
        let entry = entry.map_err(io_err(&keys_dir))?;
        if entry.file_type().map_err(io_err(&keys_dir))?.is_file() {
            let content = fs::read_to_string(entry.path()).map_err(io_err(&entry.path()))?;
            files.push((entry.file_name().to_string_lossy().into_owned(), content));
        }
    }
    write_atomic(
        &authorized,
        render_authorized_keys(&files).as_bytes(),
        SSH_FILE_MODE,
        ids,
    )?;
    Ok(Outcome::Done)
}

fn write_etc_hosts(root: &Path, hostname: Option<&str>) -> Result<Outcome, ApplyError> {
    let from_file = match hostname {
        Some(_) => None,
        None => read_optional(&under(root, HOSTNAME_FILE)?)?,
    };
    let hostname = hostname
        .or_else(|| {
            from_file
                .as_deref()
                .map(str::trim)
                .filter(|h| !h.is_empty())
        })
        .unwrap_or("localhost");
    write_keeping_mode(
        &under(root, HOSTS_FILE)?,
        etc_hosts(hostname).as_bytes(),
        0o644,
    )?;
    Ok(Outcome::Done)
}

/// `/etc/hosts` for `manage_etc_hosts: localhost`: upstream's `127.0.0.1 HOSTNAME` line, after
/// the usual `localhost` lines (upstream dropped them).
pub fn etc_hosts(hostname: &str) -> String {
    format!("127.0.0.1 localhost\n::1 localhost\n127.0.0.1 {hostname}\n")
}

fn merge_file(
    root: &Path,
    path: &str,
    set: &[(String, String)],
    unset: &[String],
) -> Result<Outcome, ApplyError> {
    let target = under(root, path)?;
    let old = read_optional(&target)?.unwrap_or_default();
    let new = merge(&old, set, unset)?;
    if new != old {
        write_keeping_mode(&target, new.as_bytes(), 0o644)?;
    }
    Ok(Outcome::Done)
}

/// Replaces whatever is at `path` by a symlink to `target`.
fn replace_symlink(path: &Path, target: &str) -> Result<(), ApplyError> {
    if let Some(dir) = path.parent() {
        create_dirs(dir)?;
    }
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => {
            return Err(ApplyError::Invalid(format!(
                "{} is a directory",
                path.display()
            )))
        }
        Ok(_) => fs::remove_file(path).map_err(io_err(path))?,
        Err(_) => {}
    }
    symlink(target, path).map_err(io_err(path))
}

/// The unit file of `unit` (or of its template) in the search path, as a running-system path.
fn find_unit_file(root: &Path, unit: &str) -> Result<String, ApplyError> {
    let names: Vec<String> = std::iter::once(unit.to_string())
        .chain(template_of(unit))
        .collect();
    for name in &names {
        for dir in UNIT_SEARCH_PATH {
            let path = format!("{dir}/{name}");
            let on_disk = under(root, &path)?;
            let Ok(meta) = fs::symlink_metadata(&on_disk) else {
                continue;
            };
            if meta.is_symlink()
                && fs::read_link(&on_disk).is_ok_and(|t| t == Path::new("/dev/null"))
            {
                return Err(ApplyError::Masked {
                    unit: unit.into(),
                    path,
                });
            }
            return Ok(path);
        }
    }
    Err(ApplyError::UnitNotFound { unit: unit.into() })
}

fn enable_unit(root: &Path, unit: &str, runtime: bool) -> Result<Outcome, ApplyError> {
    check_unit_name(unit)?;
    let file = find_unit_file(root, unit)?;
    let on_disk = under(root, &file)?;
    let text = fs::read_to_string(&on_disk).map_err(io_err(&on_disk))?;
    let install = parse_install(&text);
    let links = enable_links(unit, &file, &install, runtime);
    if links.is_empty() {
        return Ok(Outcome::Note(format!(
            "{file} has no [Install] WantedBy=, RequiredBy= or Alias=: nothing to enable"
        )));
    }
    for link in &links {
        replace_symlink(&under(root, &link.path)?, &link.target)?;
    }
    let made: Vec<String> = links.iter().map(units::Link::to_string).collect();
    Ok(Outcome::Note(made.join("; ")))
}

fn run_script(
    root: &Path,
    host: &dyn Host,
    name: &str,
    content: &[u8],
) -> Result<Outcome, ApplyError> {
    let path = format!("{SCRIPTS_DIR}/{name}");
    write_atomic(&under(root, &path)?, content, SCRIPT_MODE, (None, None))?;
    if !host.is_live() {
        return Ok(Outcome::Skipped("offline: written, not run".into()));
    }
    host.run_script(&format!("{name}.service"), Path::new(&path))?;
    Ok(Outcome::Done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_under_the_root() {
        let root = Path::new("/r");
        assert_eq!(under(root, "/etc/x").unwrap(), Path::new("/r/etc/x"));
        assert_eq!(under(root, "etc/./x").unwrap(), Path::new("/r/etc/x"));
        for bad in ["", "/", "/etc/../../x", "a\0b", "."] {
            assert!(under(root, bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn network_files_go_to_run_and_a_bad_name_writes_none() {
        let tmp = tempfile::TempDir::with_prefix("apply-network").unwrap();
        let file = |name: &str| NetworkFile {
            name: name.into(),
            content: "[Match]\nName=ens192\n".into(),
        };
        for bad in ["../x.network", "x.service"] {
            let e = write_network(tmp.path(), &[file("00-a.network"), file(bad)]).unwrap_err();
            assert_eq!(e.to_string(), format!("invalid unit name {bad:?}"));
            assert!(!tmp.path().join("run").exists(), "{bad}");
        }
        write_network(tmp.path(), &[file("00-a.network"), file("01-b.network")]).unwrap();
        let dir = tmp.path().join("run/systemd/network");
        assert_eq!(
            fs::read_to_string(dir.join("01-b.network")).unwrap(),
            "[Match]\nName=ens192\n"
        );
        let mode = fs::metadata(dir.join("00-a.network")).unwrap().mode() & 0o7777;
        assert_eq!(mode, 0o644);
    }

    #[test]
    fn owners() {
        let a = Accounts::parse(
            "root:x:0:0::/root:/bin/sh\ncore:x:500:501::/home/core:/bin/sh\na.b:x:7:7::/:/bin/sh\n",
            None,
            "root:x:0:\ncore:x:501:\ndocker:x:233:\n",
            None,
        );
        let ok = |s: &str| resolve_owner(s, &a).unwrap();
        assert_eq!(ok("core"), (Some(500), None));
        assert_eq!(ok("core:docker"), (Some(500), Some(233)));
        assert_eq!(ok("core.core"), (Some(500), Some(501)));
        assert_eq!(ok("a.b"), (Some(7), None));
        assert_eq!(ok(":docker"), (None, Some(233)));
        assert_eq!(ok("1234:5678"), (Some(1234), Some(5678)));
        assert_eq!(ok("root:"), (Some(0), None));
        assert!(
            matches!(resolve_owner("nobody", &a), Err(ApplyError::NoSuchUser(u)) if u == "nobody")
        );
        assert!(
            matches!(resolve_owner("core:wheel", &a), Err(ApplyError::NoSuchGroup(g)) if g == "wheel")
        );
    }
}
