//! `/etc/passwd`, `/etc/shadow`, `/etc/group` and `/etc/gshadow` as text tables, and the
//! `users[]` entry applied to them the way upstream's `useradd` call did (pure: the caller reads
//! and writes the files).
//!
//! A user that exists keeps everything but its password (`passwd`, as upstream) and gains the
//! listed supplementary `groups` (upstream did not add them). A new user gets, as `useradd`:
//! - a UID: `system` users the highest free one in 100..=999, others one more than the highest
//!   in 1000..=60000 (or the lowest free one when that is taken);
//! - a primary group: `primary_group` (a name or a GID) if given; else with `no_user_group` the
//!   `users` group (GID 100); else its own group, named after it, with GID = UID when free (an
//!   existing group of that name is reused, where useradd would stop);
//! - `homedir` (default `/home/NAME`), created unless `no_create_home`; `shell` (default
//!   `/bin/sh`, `useradd`'s default); `gecos`;
//! - in shadow its `passwd` hash, or `*` (no password login; SSH keys still work); the date of
//!   the last change is left empty (no wall clock in outputs).
//!
//! Supplementary groups that do not exist are created as system groups (highest free GID in
//! 100..=999; `useradd` would refuse the user). gshadow is kept in step when it exists; shadow
//! is created when missing. Lines are kept byte for byte except those changed.

use std::fmt;

use cloudconfig::User;

pub const UID_MIN: u32 = 1000;
pub const UID_MAX: u32 = 60000;
pub const SYS_UID_MIN: u32 = 100;
pub const SYS_UID_MAX: u32 = 999;
pub const DEFAULT_SHELL: &str = "/bin/sh";
/// The `users` group's usual GID, for `no_user_group` when there is no such group.
pub const USERS_GID: u32 = 100;
/// Longest user or group name (`useradd`'s limit).
pub const MAX_NAME_LEN: usize = 32;

/// Why a `users[]` entry could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountsError {
    #[error("invalid user or group name {0:?}")]
    BadName(String),
    #[error("{field} of {user} must not contain ':' or a newline: {value:?}")]
    BadField {
        user: String,
        field: &'static str,
        value: String,
    },
    #[error("homedir of {user} must be an absolute path: {value:?}")]
    RelativeHome { user: String, value: String },
    #[error("primary_group {0:?} does not exist")]
    NoGroup(String),
    #[error("no free {0} left")]
    NoFreeId(&'static str),
}

/// One of the colon-separated files, as lines of fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table {
    lines: Vec<Vec<String>>,
}

impl Table {
    pub fn parse(text: &str) -> Table {
        Table {
            lines: text
                .lines()
                .map(|l| l.split(':').map(str::to_string).collect())
                .collect(),
        }
    }

    /// The text, each line ending in a newline.
    pub fn render(&self) -> String {
        self.lines
            .iter()
            .map(|fields| fields.join(":") + "\n")
            .collect()
    }

    fn find(&self, name: &str) -> Option<usize> {
        self.lines.iter().position(|f| f[0] == name)
    }

    fn field(&self, line: usize, i: usize) -> &str {
        self.lines[line].get(i).map_or("", String::as_str)
    }

    fn set_field(&mut self, line: usize, i: usize, value: &str) {
        let fields = &mut self.lines[line];
        if fields.len() <= i {
            fields.resize(i + 1, String::new());
        }
        fields[i] = value.to_string();
    }

    fn push(&mut self, fields: &[&str]) {
        self.lines
            .push(fields.iter().map(|f| f.to_string()).collect());
    }

    /// The numeric field `i` of every line that has one.
    fn ids(&self, i: usize) -> impl Iterator<Item = u32> + '_ {
        self.lines
            .iter()
            .filter_map(move |f| f.get(i)?.parse().ok())
    }

    /// Adds `member` to the comma list in field `i` of `line`.
    fn add_member(&mut self, line: usize, i: usize, member: &str) {
        let current = self.field(line, i).to_string();
        let mut members: Vec<&str> = current.split(',').filter(|m| !m.is_empty()).collect();
        if !members.contains(&member) {
            members.push(member);
            self.set_field(line, i, &members.join(","));
        }
    }
}

/// A user as `/etc/passwd` has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswdEntry {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: String,
}

/// What [`Accounts::ensure_user`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserOutcome {
    pub created: bool,
    pub uid: u32,
    pub gid: u32,
    pub home: String,
    /// The home directory is to be created (new user, not `no_create_home`).
    pub create_home: bool,
    /// Groups that did not exist and were created.
    pub created_groups: Vec<String>,
}

/// The four account files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Accounts {
    pub passwd: Table,
    /// `None`: the file does not exist (it is created when a password goes in).
    pub shadow: Option<Table>,
    pub group: Table,
    /// `None`: the file does not exist (and is not created).
    pub gshadow: Option<Table>,
}

impl Accounts {
    /// From the files' texts (`None`: missing).
    pub fn parse(passwd: &str, shadow: Option<&str>, group: &str, gshadow: Option<&str>) -> Self {
        Accounts {
            passwd: Table::parse(passwd),
            shadow: shadow.map(Table::parse),
            group: Table::parse(group),
            gshadow: gshadow.map(Table::parse),
        }
    }

    pub fn user(&self, name: &str) -> Option<PasswdEntry> {
        let line = self.passwd.find(name)?;
        let num = |i| self.passwd.field(line, i).parse().ok();
        Some(PasswdEntry {
            name: name.to_string(),
            uid: num(2)?,
            gid: num(3)?,
            home: self.passwd.field(line, 5).to_string(),
        })
    }

    pub fn group_gid(&self, name: &str) -> Option<u32> {
        let line = self.group.find(name)?;
        self.group.field(line, 2).parse().ok()
    }

    /// Creates or updates the user of a `users[]` entry (module docs). Does not touch the disk.
    pub fn ensure_user(&mut self, u: &User) -> Result<UserOutcome, AccountsError> {
        check_entry(u)?;
        let outcome = match self.user(&u.name) {
            Some(existing) => {
                if let Some(hash) = &u.passwd {
                    self.set_password(&u.name, hash);
                }
                UserOutcome {
                    created: false,
                    uid: existing.uid,
                    gid: existing.gid,
                    home: existing.home,
                    create_home: false,
                    created_groups: Vec::new(),
                }
            }
            None => self.create_user(u)?,
        };
        let mut created_groups = outcome.created_groups;
        for g in &u.groups {
            if self.add_to_group(g, &u.name)? {
                created_groups.push(g.clone());
            }
        }
        Ok(UserOutcome {
            created_groups,
            ..outcome
        })
    }

    fn create_user(&mut self, u: &User) -> Result<UserOutcome, AccountsError> {
        let uid = if u.system {
            self.free_system_id(self.passwd.ids(2).collect())
                .ok_or(AccountsError::NoFreeId("system UID"))?
        } else {
            next_id(self.passwd.ids(2).collect()).ok_or(AccountsError::NoFreeId("UID"))?
        };
        let mut created_groups = Vec::new();
        let gid = match (&u.primary_group, u.no_user_group) {
            (Some(g), _) => match self.group_gid(g) {
                Some(gid) => gid,
                None => g
                    .parse()
                    .ok()
                    .filter(|gid| self.group.ids(2).any(|x| x == *gid))
                    .ok_or_else(|| AccountsError::NoGroup(g.clone()))?,
            },
            (None, true) => self.group_gid("users").unwrap_or(USERS_GID),
            (None, false) => match self.group_gid(&u.name) {
                Some(gid) => gid,
                None => {
                    let used: Vec<u32> = self.group.ids(2).collect();
                    let gid = if used.contains(&uid) {
                        let next = if u.system {
                            self.free_system_id(used)
                        } else {
                            next_id(used)
                        };
                        next.ok_or(AccountsError::NoFreeId("GID"))?
                    } else {
                        uid
                    };
                    self.add_group(&u.name, gid, None);
                    created_groups.push(u.name.clone());
                    gid
                }
            },
        };
        let home = u
            .homedir
            .clone()
            .unwrap_or_else(|| format!("/home/{}", u.name));
        let (uid_s, gid_s) = (uid.to_string(), gid.to_string());
        self.passwd.push(&[
            &u.name,
            "x",
            &uid_s,
            &gid_s,
            u.gecos.as_deref().unwrap_or(""),
            &home,
            u.shell.as_deref().unwrap_or(DEFAULT_SHELL),
        ]);
        let hash = u.passwd.as_deref().unwrap_or("*");
        self.shadow
            .get_or_insert_with(Table::default)
            .push(&[&u.name, hash, "", "0", "99999", "7", "", "", ""]);
        Ok(UserOutcome {
            created: true,
            uid,
            gid,
            home,
            create_home: !u.no_create_home,
            created_groups,
        })
    }

    fn set_password(&mut self, name: &str, hash: &str) {
        let Some(pw_line) = self.passwd.find(name) else {
            return;
        };
        let shadowed = self.shadow.is_some() || self.passwd.field(pw_line, 1) == "x";
        if !shadowed {
            self.passwd.set_field(pw_line, 1, hash);
            return;
        }
        self.passwd.set_field(pw_line, 1, "x");
        let shadow = self.shadow.get_or_insert_with(Table::default);
        match shadow.find(name) {
            Some(line) => shadow.set_field(line, 1, hash),
            None => shadow.push(&[name, hash, "", "0", "99999", "7", "", "", ""]),
        }
    }

    /// Adds `user` to `group`, creating the group (a system group) if missing; true if created.
    fn add_to_group(&mut self, group: &str, user: &str) -> Result<bool, AccountsError> {
        if let Some(line) = self.group.find(group) {
            self.group.add_member(line, 3, user);
            if let Some(gs) = &mut self.gshadow {
                match gs.find(group) {
                    Some(l) => gs.add_member(l, 3, user),
                    None => gs.push(&[group, "!", "", user]),
                }
            }
            return Ok(false);
        }
        let gid = self
            .free_system_id(self.group.ids(2).collect())
            .ok_or(AccountsError::NoFreeId("system GID"))?;
        self.add_group(group, gid, Some(user));
        Ok(true)
    }

    fn add_group(&mut self, name: &str, gid: u32, member: Option<&str>) {
        let member = member.unwrap_or("");
        self.group.push(&[name, "x", &gid.to_string(), member]);
        if let Some(gs) = &mut self.gshadow {
            gs.push(&[name, "!", "", member]);
        }
    }

    /// The highest ID in the system range not in `used`.
    fn free_system_id(&self, used: Vec<u32>) -> Option<u32> {
        (SYS_UID_MIN..=SYS_UID_MAX)
            .rev()
            .find(|id| !used.contains(id))
    }
}

/// One more than the highest ID in the regular range, else the lowest free one in it.
fn next_id(used: Vec<u32>) -> Option<u32> {
    let in_range = used
        .iter()
        .copied()
        .filter(|id| (UID_MIN..=UID_MAX).contains(id));
    match in_range.max() {
        None => Some(UID_MIN),
        Some(max) if max < UID_MAX => Some(max + 1),
        Some(_) => (UID_MIN..=UID_MAX).find(|id| !used.contains(id)),
    }
}

/// A user or group name `useradd` would accept (and nothing that breaks the files).
pub fn check_name(name: &str) -> Result<(), AccountsError> {
    let body = name.strip_suffix('$').unwrap_or(name);
    let ok = !body.is_empty()
        && name.len() <= MAX_NAME_LEN
        && body.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && body
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(AccountsError::BadName(name.to_string()))
    }
}

/// Everything that can be refused is checked before anything changes.
fn check_entry(u: &User) -> Result<(), AccountsError> {
    check_name(&u.name)?;
    for g in &u.groups {
        check_name(g)?;
    }
    let fields = [
        ("passwd", &u.passwd),
        ("gecos", &u.gecos),
        ("homedir", &u.homedir),
        ("shell", &u.shell),
        ("primary_group", &u.primary_group),
    ];
    for (field, value) in fields {
        if let Some(v) = value.as_deref().filter(|v| v.contains([':', '\n'])) {
            return Err(AccountsError::BadField {
                user: u.name.clone(),
                field,
                value: v.to_string(),
            });
        }
    }
    if let Some(home) = u.homedir.as_deref().filter(|h| !h.starts_with('/')) {
        return Err(AccountsError::RelativeHome {
            user: u.name.clone(),
            value: home.to_string(),
        });
    }
    Ok(())
}

impl fmt::Display for UserOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = if self.created { "created" } else { "updated" };
        write!(f, "{verb} (uid {}, gid {})", self.uid, self.gid)?;
        if !self.created_groups.is_empty() {
            write!(f, ", new groups: {}", self.created_groups.join(", "))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The minimal image's files (services/minimal/).
    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";
    const SHADOW: &str =
        "root::19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\nnobody:*:19000:0:99999:7:::\n";
    const GROUP: &str =
        "root:x:0:\ndaemon:x:1:\ntty:x:5:\ndisk:x:6:\nusers:x:100:\nnogroup:x:65534:\n";

    fn minimal() -> Accounts {
        Accounts::parse(PASSWD, Some(SHADOW), GROUP, None)
    }

    fn user(name: &str) -> User {
        User {
            name: name.into(),
            ..User::default()
        }
    }

    #[test]
    fn unchanged_files_render_byte_for_byte() {
        let odd = "a:b\n\n# comment\nc:::\n";
        assert_eq!(Table::parse(odd).render(), odd);
        assert_eq!(minimal().passwd.render(), PASSWD);
    }

    #[test]
    fn new_user_with_private_group_and_groups() {
        let mut a = minimal();
        let out = a
            .ensure_user(&User {
                passwd: Some("$6$salt$hash".into()),
                groups: vec!["sudo".into(), "docker".into(), "users".into()],
                gecos: Some("Core User".into()),
                ..user("core")
            })
            .unwrap();
        assert_eq!(
            out,
            UserOutcome {
                created: true,
                uid: 1000,
                gid: 1000,
                home: "/home/core".into(),
                create_home: true,
                created_groups: vec!["core".into(), "sudo".into(), "docker".into()],
            }
        );
        assert_eq!(
            a.passwd.render(),
            format!("{PASSWD}core:x:1000:1000:Core User:/home/core:/bin/sh\n")
        );
        assert_eq!(
            a.shadow.unwrap().render(),
            format!("{SHADOW}core:$6$salt$hash::0:99999:7:::\n")
        );
        assert_eq!(
            a.group.render(),
            "root:x:0:\ndaemon:x:1:\ntty:x:5:\ndisk:x:6:\nusers:x:100:core\nnogroup:x:65534:\n\
             core:x:1000:\nsudo:x:999:core\ndocker:x:998:core\n"
        );
    }

    #[test]
    fn system_user_without_home_and_given_primary_group() {
        let mut a = minimal();
        let out = a
            .ensure_user(&User {
                system: true,
                no_create_home: true,
                homedir: Some("/var/lib/etcd".into()),
                primary_group: Some("disk".into()),
                shell: Some("/usr/sbin/nologin".into()),
                ..user("etcd")
            })
            .unwrap();
        assert_eq!((out.uid, out.gid, out.create_home), (999, 6, false));
        assert!(a
            .passwd
            .render()
            .ends_with("etcd:x:999:6::/var/lib/etcd:/usr/sbin/nologin\n"));
        assert_eq!(a.group.render(), GROUP);
        // A numeric primary group must exist too.
        let e = a
            .ensure_user(&User {
                primary_group: Some("4242".into()),
                ..user("x")
            })
            .unwrap_err();
        assert_eq!(e, AccountsError::NoGroup("4242".into()));
        let out = a
            .ensure_user(&User {
                primary_group: Some("100".into()),
                ..user("y")
            })
            .unwrap();
        assert_eq!(out.gid, 100);
    }

    #[test]
    fn uids_follow_the_highest_and_private_gid_avoids_taken_ones() {
        let passwd =
            format!("{PASSWD}a:x:1000:1000::/home/a:/bin/sh\nb:x:1500:1500::/home/b:/bin/sh\n");
        let group = format!("{GROUP}a:x:1000:\nb:x:1500:\nc:x:1501:\n");
        let mut a = Accounts::parse(&passwd, Some(SHADOW), &group, Some(""));
        let out = a.ensure_user(&user("core")).unwrap();
        assert_eq!((out.uid, out.gid), (1501, 1502));
        assert_eq!(a.gshadow.as_ref().unwrap().render(), "core:!::\n");
        let out = a
            .ensure_user(&User {
                no_user_group: true,
                ..user("d")
            })
            .unwrap();
        assert_eq!((out.uid, out.gid, out.created_groups.len()), (1502, 100, 0));
        assert_eq!(next_id(vec![60000, 1000]), Some(1001));
        assert_eq!(next_id(vec![]), Some(1000));
    }

    #[test]
    fn existing_user_gets_password_and_groups_only() {
        let mut a = Accounts::parse(
            &format!("{PASSWD}core:x:500:500:Core:/home/core:/bin/bash\n"),
            Some(SHADOW),
            &format!("{GROUP}core:x:500:\ndocker:x:233:\n"),
            Some("docker:!::\n"),
        );
        let out = a
            .ensure_user(&User {
                passwd: Some("$6$new".into()),
                groups: vec!["docker".into()],
                shell: Some("/bin/zsh".into()),
                ..user("core")
            })
            .unwrap();
        assert_eq!(
            out,
            UserOutcome {
                created: false,
                uid: 500,
                gid: 500,
                home: "/home/core".into(),
                create_home: false,
                created_groups: vec![],
            }
        );
        assert!(a
            .passwd
            .render()
            .ends_with("core:x:500:500:Core:/home/core:/bin/bash\n"));
        assert!(a
            .shadow
            .as_ref()
            .unwrap()
            .render()
            .ends_with("core:$6$new::0:99999:7:::\n"));
        assert!(a.group.render().ends_with("docker:x:233:core\n"));
        assert_eq!(a.gshadow.as_ref().unwrap().render(), "docker:!::core\n");
        // Twice is the same as once.
        let before = a.clone();
        a.ensure_user(&User {
            passwd: Some("$6$new".into()),
            groups: vec!["docker".into()],
            ..user("core")
        })
        .unwrap();
        assert_eq!(a, before);
    }

    #[test]
    fn passwords_without_shadow() {
        let mut a = Accounts::parse("u:oldhash:5:5::/:/bin/sh\n", None, "u:x:5:\n", None);
        a.ensure_user(&User {
            passwd: Some("newhash".into()),
            ..user("u")
        })
        .unwrap();
        assert_eq!(a.passwd.render(), "u:newhash:5:5::/:/bin/sh\n");
        assert!(a.shadow.is_none());
        let mut a = Accounts::parse("u:x:5:5::/:/bin/sh\n", None, "u:x:5:\n", None);
        a.ensure_user(&User {
            passwd: Some("h".into()),
            ..user("u")
        })
        .unwrap();
        assert_eq!(a.shadow.unwrap().render(), "u:h::0:99999:7:::\n");
    }

    #[test]
    fn entries_that_would_corrupt_the_files_are_refused() {
        let mut a = minimal();
        for name in ["", "-x", "a:b", "a b", "1abc", "x\n", &"a".repeat(33)] {
            assert_eq!(
                a.ensure_user(&user(name)),
                Err(AccountsError::BadName(name.into())),
                "{name:?}"
            );
        }
        for ok in ["core", "_x", "a.b-c", "machine$", "A1"] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        let e = a
            .ensure_user(&User {
                gecos: Some("a:b".into()),
                ..user("u")
            })
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "gecos of u must not contain ':' or a newline: \"a:b\""
        );
        let e = a
            .ensure_user(&User {
                homedir: Some("home/u".into()),
                ..user("u")
            })
            .unwrap_err();
        assert!(matches!(e, AccountsError::RelativeHome { .. }));
        let e = a
            .ensure_user(&User {
                groups: vec!["bad group".into()],
                ..user("u")
            })
            .unwrap_err();
        assert_eq!(e, AccountsError::BadName("bad group".into()));
        assert_eq!(a, minimal(), "nothing changes when an entry is refused");
    }
}
