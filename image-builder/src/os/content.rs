//! The spec's own content in the OS tree: `/usr/lib/os-release`, the repository files and
//! units it lists, the update engine with its default `update.conf` and root keys, and
//! symlinks. The formats written here are the machines' contracts (`contract::os_release`,
//! `contract::update_conf`, `contract::paths`).

use std::path::Path;

use anyhow::{Context, Result};
use contract::paths;
use rootfs::tree::{Entry, Tree};

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
        tree.insert(&f.dst.tree_path(), Entry::file(data, f.mode.0))?;
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
    for s in &spec.symlinks {
        for link in &s.links {
            tree.insert(&link.tree_path(), Entry::symlink(s.target.clone()))?;
        }
    }
    Ok(())
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
    for name in ["update_engine_client", "locksmithctl"] {
        tree.insert(&format!("usr/bin/{name}"), Entry::symlink("update-engine"))?;
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
