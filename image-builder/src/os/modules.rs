//! `kernel.modules`: which of the kernel package's modules stay in /usr. Debian's generic
//! kernel carries ~390 MB of modules (sound, media, GPUs, wireless...); a server image keeps
//! the drivers of servers. The choice is pure ([`keep`]); the tree edit is in `os::assemble`.

use std::collections::BTreeSet;

use rootfs::modules::{ModuleError, ModuleIndex};

use crate::spec::{ModuleRules, ModuleSubtree};

/// Why the rules cannot be applied.
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    #[error(
        "kernel.initramfs_modules names {module} ({path}), which kernel.modules.exclude removes \
         ({rule}): include it (kernel.modules.include) or take it out of the initramfs"
    )]
    NeededButExcluded {
        module: String,
        path: String,
        rule: String,
    },
    #[error("kernel.modules.{key}: {rule} matches none of the kernel's modules")]
    MatchesNothing { key: &'static str, rule: String },
    #[error("kernel modules: {0}")]
    Modules(#[from] ModuleError),
}

/// Whether `rule` covers the module at `path` (relative to the module directory): the rule
/// is a path under `kernel/`, matched whole components at a time, or `*` for every module.
pub fn covers(rule: &ModuleSubtree, path: &str) -> bool {
    if rule.0 == "*" {
        return true;
    }
    let rel = path.strip_prefix("kernel/").unwrap_or(path);
    let rule = rule.0.trim_end_matches('/');
    rel == rule || rel.strip_prefix(rule).is_some_and(|r| r.starts_with('/'))
}

/// The names of the modules to keep: every module no `exclude` covers or an `include`
/// covers, and everything those depend on. A module of `needed` (the initramfs's) that the
/// rules drop is an error, as is a rule that covers no module (a typo would drop nothing, or
/// everything, silently). Pure.
pub fn keep(
    index: &ModuleIndex,
    rules: &ModuleRules,
    needed: &[&str],
) -> Result<BTreeSet<String>, RuleError> {
    for (key, list) in [("include", &rules.include), ("exclude", &rules.exclude)] {
        if let Some(r) = list
            .iter()
            .find(|r| !index.modules().any(|m| covers(r, &m.path)))
        {
            return Err(RuleError::MatchesNothing {
                key,
                rule: r.0.clone(),
            });
        }
    }
    let excluded_by = |path: &str| -> Option<&ModuleSubtree> {
        if rules.include.iter().any(|r| covers(r, path)) {
            return None;
        }
        rules.exclude.iter().find(|r| covers(r, path))
    };
    for name in needed {
        if let Some(m) = index.get(name) {
            if let Some(rule) = excluded_by(&m.path) {
                return Err(RuleError::NeededButExcluded {
                    module: m.name.clone(),
                    path: m.path.clone(),
                    rule: rule.0.clone(),
                });
            }
        }
    }
    let chosen: Vec<&str> = index
        .modules()
        .filter(|m| excluded_by(&m.path).is_none())
        .map(|m| m.name.as_str())
        .collect();
    Ok(index
        .closure(&chosen)?
        .into_iter()
        .map(|m| m.name.clone())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(s: &str) -> ModuleSubtree {
        ModuleSubtree(s.to_string())
    }

    #[test]
    fn rules_cover_whole_components() {
        let p = "kernel/drivers/gpu/drm/amd/amdgpu/amdgpu.ko";
        assert!(covers(&rule("drivers/gpu/drm/amd/"), p));
        assert!(covers(&rule("drivers/gpu/drm/amd"), p));
        assert!(covers(&rule("drivers/gpu/drm/amd/amdgpu/amdgpu.ko"), p));
        assert!(!covers(&rule("drivers/gpu/drm/am"), p));
        assert!(!covers(&rule("sound/"), p));
        assert!(covers(&rule("sound"), "kernel/sound/core/snd.ko"));
        assert!(covers(&rule("*"), "kernel/sound/core/snd.ko"));
        assert!(covers(&rule("*"), "updates/dkms/x.ko"));
    }
}
