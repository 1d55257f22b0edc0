//! The spec's own content in the OS tree: `/usr/lib/os-release`, the repository files and
//! units it lists, the update engine with its default `update.conf` and root keys, and
//! symlinks. The formats written here are the machines' contracts (`contract::os_release`,
//! `contract::update_conf`, `contract::paths`).

use std::path::Path;

use anyhow::{bail, Context, Result};
use contract::paths;
use rootfs::tree::{Entry, Kind, Tree};

use crate::spec::{ConfValue, ImageSpec, UpdateSpec};

/// os-release, repository files, units and symlinks.
pub fn add(spec: &ImageSpec, root: &Path, tree: &mut Tree) -> Result<()> {
    let os = identity(spec);
    for (path, text) in [
        (paths::OS_RELEASE, os.render()),
        (paths::COREOS_RELEASE, os.coreos_release()),
        (paths::LSB_RELEASE, os.lsb_release()),
    ] {
        tree.insert(path, Entry::file(text.into_bytes(), 0o644))?;
    }
    for f in &spec.files {
        let path = root.join(&f.src.0);
        let data = std::fs::read(&path)
            .with_context(|| format!("reading {} (files: in the spec)", path.display()))?;
        tree.insert(&f.dst.tree_path(), Entry::file(data, f.mode.0))
            .with_context(|| format!("files: {} -> {}", f.src.0, f.dst.0))?;
    }
    for u in &spec.units {
        let path = root.join(&u.src.0);
        let data = std::fs::read(&path)
            .with_context(|| format!("reading {} (units: in the spec)", path.display()))?;
        let name = Path::new(&u.src.0)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        tree.insert(
            &format!("usr/lib/systemd/system/{name}"),
            Entry::file(data, 0o644),
        )?;
    }
    if let Some(u) = &spec.update {
        add_update_engine(spec, u, root, tree)?;
    }
    add_symlinks(spec, tree)
}

/// The spec's symlinks. A link may replace a package's symlink (an alternative, say), never a
/// file or directory; once all are in, each must lead to something in the image, in at most
/// [`MAX_SYMLINKS`] steps, or to a path outside /usr (which the tree cannot check).
fn add_symlinks(spec: &ImageSpec, tree: &mut Tree) -> Result<()> {
    let mut seen = std::collections::BTreeSet::new();
    for s in &spec.symlinks {
        for link in &s.links {
            let path = link.tree_path();
            let what = || format!("symlinks: {} -> {}", link.0, s.target);
            if !seen.insert(path.clone()) {
                bail!("{}: {} is listed twice", what(), link.0);
            }
            match tree.get(&path).map(|e| &e.kind) {
                None | Some(Kind::Symlink(_)) => {}
                Some(kind) => bail!(
                    "{}: {} is already in the image (a {}); a link there would replace it",
                    what(),
                    link.0,
                    kind_name(kind)
                ),
            }
            tree.insert(&path, Entry::symlink(s.target.clone()))
                .with_context(what)?;
        }
    }
    for s in &spec.symlinks {
        for link in &s.links {
            let what = || format!("symlinks: {} -> {}", link.0, s.target);
            match follow(tree, &link.tree_path()) {
                Lands::Entry | Lands::Outside => {}
                Lands::Missing(path) => bail!(
                    "{}: /{path} is not in the image (no package or file provides it)",
                    what()
                ),
                Lands::Loop => bail!(
                    "{}: following it never ends (more than {MAX_SYMLINKS} links: the machine \
                     would say \"Too many levels of symbolic links\")",
                    what()
                ),
            }
        }
    }
    Ok(())
}

fn kind_name(kind: &Kind) -> &'static str {
    match kind {
        Kind::Dir => "directory",
        Kind::File(_) => "file",
        Kind::Symlink(_) => "symlink",
        Kind::Hardlink(_) => "hard link",
    }
}

/// Linux's `MAXSYMLINKS`: the links one path lookup follows before `ELOOP`.
const MAX_SYMLINKS: usize = 40;

/// Where a path of the image leads.
#[derive(Debug, PartialEq, Eq)]
enum Lands {
    /// On an entry of the tree.
    Entry,
    /// Outside /usr (/etc, /var, ...: the writable partition's, not known here).
    Outside,
    /// On nothing: this tree path (the first component missing) does not exist.
    Missing(String),
    /// More than [`MAX_SYMLINKS`] links.
    Loop,
}

/// Resolve tree path `path` as the kernel would on the running machine, where `/bin`, `/sbin`
/// and `/lib*` lead into `/usr`. Pure.
fn follow(tree: &Tree, path: &str) -> Lands {
    let mut pending: std::collections::VecDeque<String> =
        path.split('/').map(str::to_string).collect();
    let mut at: Vec<String> = Vec::new();
    let mut links = 0;
    while let Some(name) = pending.pop_front() {
        match name.as_str() {
            "" | "." => continue,
            ".." => {
                at.pop();
                continue;
            }
            _ => at.push(name),
        }
        if at.len() == 1 && at[0] != "usr" {
            match rootfs::deb::merged_usr_path(&at[0]) {
                Ok(Some(mapped)) if mapped.starts_with("usr/") && !mapped.contains("factory") => {
                    at = mapped.split('/').map(str::to_string).collect();
                }
                _ => return Lands::Outside,
            }
        }
        let here = at.join("/");
        match tree.get(&here).map(|e| &e.kind) {
            None => return Lands::Missing(here),
            Some(Kind::Symlink(target)) => {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Lands::Loop;
                }
                at.pop();
                if target.starts_with('/') {
                    at.clear();
                }
                for name in target.split('/').rev() {
                    pending.push_front(name.to_string());
                }
            }
            Some(_) => {}
        }
    }
    Lands::Entry
}

/// The engine binary, its default `update.conf` and the root keys.
fn add_update_engine(spec: &ImageSpec, u: &UpdateSpec, root: &Path, tree: &mut Tree) -> Result<()> {
    let read = |rel: &str| {
        let path = root.join(rel);
        std::fs::read(&path)
            .with_context(|| format!("reading {} (update: in the spec)", path.display()))
    };
    let keys = match &u.root_keys {
        Some(rel) => {
            let keys = read(&rel.0)?;
            channels::canonical::from_slice::<channels::RootKeys>(&keys)
                .with_context(|| format!("{} is not a repository root.json", rel.0))?;
            Some(keys)
        }
        None => None,
    };
    tree.insert(
        "usr/bin/update-engine",
        Entry::file(read(&u.engine.0)?, 0o755),
    )?;
    // Container Linux's command names, answered by the same binary (it looks at argv[0]).
    for name in ["update_engine_client", "locksmithctl", "coreos-install"] {
        tree.insert(&format!("usr/bin/{name}"), Entry::symlink("update-engine"))?;
    }
    // And the installer under the OS's own name (`<os.id>-install`).
    if spec.os.id.0 != "coreos" {
        let name = format!("usr/bin/{}-install", spec.os.id.0);
        tree.insert(&name, Entry::symlink("update-engine"))?;
    }
    if let Some(keys) = keys {
        tree.insert(paths::ROOT_KEYS, Entry::file(keys, 0o644))?;
    }
    tree.insert(
        paths::UPDATE_CONF_DEFAULTS,
        Entry::file(update_conf(spec, u).into_bytes(), 0o644),
    )?;
    Ok(())
}

/// The default `update.conf` (Container Linux format); `/etc/update-engine/update.conf`
/// overrides it key by key. Pure.
pub fn update_conf(spec: &ImageSpec, u: &UpdateSpec) -> String {
    use contract::update_conf::{keys, render};
    let value = |v: &Option<ConfValue>| v.as_ref().map(|v| v.0.clone());
    let group = u.group.as_ref().unwrap_or(&spec.os.channel);
    let mut pairs: Vec<(&str, Option<String>)> = vec![
        (keys::GROUP, Some(group.0.clone())),
        (keys::SERVER, u.server.as_ref().map(|v| v.0.clone())),
        (keys::REBOOT_STRATEGY, Some(u.reboot_strategy.to_string())),
    ];
    if let Some(l) = &u.locksmith {
        let endpoints: Vec<&str> = l.endpoints.iter().map(|e| e.0.as_str()).collect();
        pairs.extend([
            (
                keys::LOCKSMITHD_ENDPOINT,
                (!endpoints.is_empty()).then(|| endpoints.join(",")),
            ),
            (keys::LOCKSMITHD_GROUP, value(&l.group)),
            (
                keys::LOCKSMITHD_REBOOT_WINDOW_START,
                l.window_start.as_ref().map(|v| v.0.clone()),
            ),
            (
                keys::LOCKSMITHD_REBOOT_WINDOW_LENGTH,
                l.window_length.as_ref().map(|v| v.0.clone()),
            ),
        ]);
    }
    if let Some(f) = &u.fleetlock {
        pairs.extend([
            (keys::FLEETLOCK_URL, Some(f.url.0.clone())),
            (keys::FLEETLOCK_GROUP, f.group.as_ref().map(|v| v.0.clone())),
        ]);
    }
    render(pairs.iter().filter_map(|(k, v)| Some((*k, v.as_deref()?))))
}

/// What the image says about itself: the spec's `os:`, built at its `source_date_epoch`. Pure.
fn identity(spec: &ImageSpec) -> contract::os_release::OsRelease {
    let os = &spec.os;
    contract::os_release::OsRelease {
        name: os.name.0.clone(),
        id: os.id.0.clone(),
        id_like: os.id_like.iter().map(|i| i.0.clone()).collect(),
        version: os.version.0.clone(),
        channel: os.channel.0.clone(),
        build_id: contract::os_release::build_id(spec.source_date_epoch),
    }
}

/// `/usr/lib/os-release` (os-release(5)) with the channel as `RELEASE_CHANNEL`. Pure.
pub fn os_release(spec: &ImageSpec) -> String {
    identity(spec).render()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(links: &[(&str, &str)]) -> Tree {
        let mut t = Tree::new();
        t.insert("usr/bin/busybox", Entry::file(b"elf".to_vec(), 0o755))
            .unwrap();
        t.insert(
            "usr/lib/systemd/systemd",
            Entry::file(b"elf".to_vec(), 0o755),
        )
        .unwrap();
        for (link, target) in links {
            t.insert(link, Entry::symlink(*target)).unwrap();
        }
        t
    }

    #[test]
    fn links_are_followed_as_the_kernel_would() {
        let t = tree(&[
            ("usr/bin/sh", "busybox"),
            ("usr/bin/ash", "/bin/sh"),
            ("usr/sbin/init", "../lib/systemd/systemd"),
            ("usr/lib/x", "/usr/lib/./systemd/../systemd/systemd"),
            ("usr/bin/conf", "/etc/conf"),
            ("usr/bin/up", "../../../../etc/x"),
            ("usr/bin/gone", "nothere"),
            ("usr/bin/deep", "../nodir/x"),
            ("usr/bin/a", "b"),
            ("usr/bin/b", "a"),
            ("usr/bin/self", "self"),
        ]);
        for ok in ["usr/bin/sh", "usr/bin/ash", "usr/sbin/init", "usr/lib/x"] {
            assert_eq!(follow(&t, ok), Lands::Entry, "{ok}");
        }
        assert_eq!(follow(&t, "usr/bin/conf"), Lands::Outside);
        assert_eq!(follow(&t, "usr/bin/up"), Lands::Outside);
        assert_eq!(
            follow(&t, "usr/bin/gone"),
            Lands::Missing("usr/bin/nothere".into())
        );
        assert_eq!(
            follow(&t, "usr/bin/deep"),
            Lands::Missing("usr/nodir".into())
        );
        for looping in ["usr/bin/a", "usr/bin/self"] {
            assert_eq!(follow(&t, looping), Lands::Loop, "{looping}");
        }
    }

    #[test]
    fn a_chain_of_forty_links_resolves_and_forty_one_loop() {
        let mut links: Vec<(String, String)> = (0..40)
            .map(|i| (format!("usr/bin/l{i}"), format!("l{}", i + 1)))
            .collect();
        links.push(("usr/bin/l40".into(), "busybox".into()));
        let pairs: Vec<(&str, &str)> = links
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        let t = tree(&pairs);
        assert_eq!(follow(&t, "usr/bin/l1"), Lands::Entry);
        assert_eq!(follow(&t, "usr/bin/l0"), Lands::Loop);
    }
}
