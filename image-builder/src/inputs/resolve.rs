//! `image-builder lock`: from a spec and a package source to a [`Lockfile`].
//!
//! - `resolve.mode: exact` pins the newest version of each listed package ([`lock::resolve`]).
//! - `resolve.mode: closure` pins the dependency closure that [`rootfs::resolve`] computes
//!   (its module documentation states the rules) over a Packages index: the control files of
//!   the `--pool` .debs or the `--repo`'s Packages (`resolve.index: source`), or the host's apt
//!   lists (`resolve.index: apt-lists`), whose packages are pinned under the file names
//!   `apt-get download` gives them so that `image-builder fetch` fills the pool.
//!
//! `--download` first fills the pool with `apt-get download`: the newest version of each
//! listed package (exact), or the closure resolved from the host's apt lists (closure).
//!
//! The roots of a closure are the kernel, the bootloader and `packages:`; its chains start at
//! the spec's file stem (`container-host needs openssh-server, ...`).

use std::path::Path;

use anyhow::{bail, Context, Result};
use rootfs::apt::lists;
use rootfs::resolve::{self, Reason, Request, Resolution};
use rootfs::source::IndexEntry;

use crate::inputs::lock::{self, LockedPackage, Lockfile, ARCH, LOCK_FORMAT};
use crate::inputs::{self, InputSource};
use crate::spec::{ImageSpec, IndexSource, ResolveMode};

/// What `lock` needs besides the spec.
pub struct LockOptions<'a> {
    pub spec_path: &'a Path,
    pub source: &'a InputSource,
    /// `--download`: the pool directory to fill with `apt-get download` first.
    pub download: Option<&'a Path>,
    /// The host's apt lists (`/var/lib/apt/lists`).
    pub apt_lists: &'a Path,
}

/// A lock and, for a closure, its totals.
pub struct Locked {
    pub lock: Lockfile,
    pub summary: Option<Summary>,
}

/// Totals of a closure, for the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub packages: usize,
    pub roots: usize,
    pub essential: usize,
    pub installed_kib: u64,
    pub download_bytes: u64,
}

impl Summary {
    fn of(r: &Resolution) -> Summary {
        let count = |reason| r.packages.iter().filter(|p| p.reason == reason).count();
        Summary {
            packages: r.packages.len(),
            roots: count(Reason::Root),
            essential: count(Reason::Essential),
            installed_kib: r.installed_size_kib(),
            download_bytes: r.download_bytes(),
        }
    }

    /// `closure: 142 packages (12 requested, 0 essential), 312.4 MiB installed, 98.1 MiB of .debs`.
    pub fn render(&self) -> String {
        format!(
            "closure: {} packages ({} requested, {} essential), {:.1} MiB installed, {:.1} MiB of .debs",
            self.packages,
            self.roots,
            self.essential,
            self.installed_kib as f64 / 1024.0,
            self.download_bytes as f64 / (1024.0 * 1024.0)
        )
    }
}

/// Compute the lock of `spec` (no IO but reading the source and, with `download`, filling the
/// pool; the caller writes the lock).
pub fn lock(spec: &ImageSpec, opts: &LockOptions) -> Result<Locked> {
    if spec.resolve.mode == ResolveMode::Exact {
        if let Some(pool) = opts.download {
            inputs::source::download_latest(pool, &spec.package_names())?;
        }
        let candidates = opts.source.candidates()?;
        let lock = lock::resolve(spec, &candidates, &opts.source.describe())?;
        return Ok(Locked {
            lock,
            summary: None,
        });
    }
    let apt_lists = spec.resolve.index == IndexSource::AptLists;
    if apt_lists && !matches!(opts.source, InputSource::Pool(_)) {
        bail!("resolve.index: apt-lists pins packages for a pool: lock with --pool, not --repo");
    }
    let label = label(opts.spec_path);
    if let Some(pool) = opts.download {
        let host = host_index(opts.apt_lists)?;
        let (lock, _) = closure(spec, &host, "pool", &label)?;
        inputs::source::fill_pool(pool, &lock.packages, opts.spec_path)?;
    }
    let index = if apt_lists {
        host_index(opts.apt_lists)?
    } else {
        opts.source.index_entries()?
    };
    let (lock, summary) = closure(spec, &index, &opts.source.describe(), &label)?;
    Ok(Locked {
        lock,
        summary: Some(summary),
    })
}

/// The spec's name in chains: its file stem.
fn label(spec_path: &Path) -> String {
    spec_path
        .file_stem()
        .map_or_else(|| "the spec".into(), |s| s.to_string_lossy().into_owned())
}

/// The closure of `spec` over `index` as a lockfile, sorted by name. Pure.
pub fn closure(
    spec: &ImageSpec,
    index: &[IndexEntry],
    source_desc: &str,
    label: &str,
) -> Result<(Lockfile, Summary), resolve::ResolveError> {
    let names = |v: &[crate::spec::PackageName]| v.iter().map(|p| p.0.clone()).collect::<Vec<_>>();
    let roots = spec.package_names();
    let (prefer, exclude) = (names(&spec.resolve.prefer), names(&spec.resolve.exclude));
    let files_only: Vec<String> = spec
        .bootloader
        .bios
        .iter()
        .map(|p| p.value.0.clone())
        .collect();
    let request = Request {
        label,
        roots: &roots,
        essential: spec.resolve.essential,
        prefer: &prefer,
        exclude: &exclude,
        files_only: &files_only,
        arch: ARCH,
    };
    let resolution = resolve::resolve(index, &request)?;
    let packages = resolution
        .packages
        .iter()
        .map(|p| LockedPackage {
            root: p.reason == Reason::Root,
            essential: p.reason == Reason::Essential,
            required_by: p.required_by.iter().cloned().collect(),
            ..LockedPackage::of(&p.candidate, source_desc)
        })
        .collect();
    let lock = Lockfile {
        format: LOCK_FORMAT,
        resolve: Some(spec.resolve.clone()),
        packages,
    };
    Ok((lock, Summary::of(&resolution)))
}

/// Every package of the host's apt lists, each under the pool file name `apt-get download`
/// gives it.
pub fn host_index(dir: &Path) -> Result<Vec<IndexEntry>> {
    let lists = lists::read_lists(dir, ARCH)
        .with_context(|| format!("reading the host's apt lists in {}", dir.display()))?;
    if lists.is_empty() {
        bail!(
            "no Packages lists for {ARCH} in {}: run `apt-get update` first",
            dir.display()
        );
    }
    Ok(lists
        .into_iter()
        .flat_map(|(_, entries)| entries)
        .map(|mut e| {
            let c = &e.candidate;
            e.candidate.filename =
                lists::download_file_name(&c.package, &c.version, &c.architecture);
            e
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::path::Path;

    use rootfs::source::Candidate;

    fn entry(name: &str, version: &str, depends: &str) -> IndexEntry {
        let candidate = Candidate {
            package: name.into(),
            version: version.into(),
            architecture: "amd64".into(),
            size: 10,
            sha256: format!("{:0>64}", name.len()),
            filename: format!("{name}.deb"),
        };
        let mut fields = BTreeMap::new();
        if !depends.is_empty() {
            fields.insert("Depends".to_string(), depends.to_string());
        }
        fields.insert("Installed-Size".to_string(), "2048".to_string());
        IndexEntry::new(candidate, &fields)
    }

    fn spec(resolve: &str) -> ImageSpec {
        let text = format!(
            "os: {{name: T, id: t, version: 1.2.3, channel: alpha}}\nsource_date_epoch: 0\n\
             kernel: {{package: linux-image-x, cmdline: '', initramfs_modules: [virtio_blk]}}\n\
             bootloader: {{package: systemd-boot-efi}}\npackages: [sshd]\n\
             partitions: {{esp_mib: 64, usr_mib: 64, oem_mib: 8, root_mib: 64}}\n{resolve}"
        );
        ImageSpec::parse(&text, Path::new("images/host.yaml")).unwrap()
    }

    fn index() -> Vec<IndexEntry> {
        vec![
            entry("linux-image-x", "6.1", "kmod"),
            entry("kmod", "30", "libc6"),
            entry("systemd-boot-efi", "252", ""),
            entry("sshd", "9.2", "libssl3 (>= 3.0.9), libc6"),
            entry("libssl3", "3.0.11", "libc6"),
            entry("libc6", "2.36", ""),
        ]
    }

    #[test]
    fn closure_lock_is_sorted_with_reasons_and_checks_against_its_spec() {
        let s = spec("resolve: {mode: closure}\n");
        let (lock, summary) = closure(&s, &index(), "pool", "host").unwrap();
        let rows: Vec<(&str, bool, Vec<String>)> = lock
            .packages
            .iter()
            .map(|p| (p.package.as_str(), p.root, p.required_by.clone()))
            .collect();
        let v = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            rows,
            [
                ("kmod", false, v(&["linux-image-x"])),
                ("libc6", false, v(&["kmod", "libssl3", "sshd"])),
                ("libssl3", false, v(&["sshd"])),
                ("linux-image-x", true, v(&[])),
                ("sshd", true, v(&[])),
                ("systemd-boot-efi", true, v(&[])),
            ]
        );
        assert_eq!(summary.packages, 6);
        assert_eq!(summary.roots, 3);
        assert_eq!(summary.installed_kib, 6 * 2048);
        assert!(summary
            .render()
            .starts_with("closure: 6 packages (3 requested, 0 essential), 12.0 MiB installed"));

        let text = lock.to_text();
        assert!(
            text.contains("\"resolve\": {\n    \"mode\": \"closure\"\n  },"),
            "{text}"
        );
        assert!(text.contains("\"root\": true"), "{text}");
        let back: Lockfile = serde_json::from_str(&text).unwrap();
        assert_eq!(back, lock);
        back.check_matches(&s, Path::new("host.lock")).unwrap();

        // Another spec or other settings: stale.
        let exact = spec("");
        let err = back
            .check_matches(&exact, Path::new("host.lock"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("the spec asks for exact packages"), "{err}");
        let other = spec("resolve: {mode: closure, exclude: [kmod]}\n");
        let err = back
            .check_matches(&other, Path::new("host.lock"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("resolve: settings changed"), "{err}");
        let mut no_root = back.clone();
        no_root.packages.retain(|p| p.package != "sshd");
        let err = no_root
            .check_matches(&s, Path::new("host.lock"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("the spec needs \"sshd\""), "{err}");
        // An exact lock for a closure spec is stale too.
        let exact_lock = Lockfile {
            resolve: None,
            ..back.clone()
        };
        let err = exact_lock
            .check_matches(&s, Path::new("host.lock"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("the spec asks for resolve.mode: closure"),
            "{err}"
        );
    }

    #[test]
    fn unsatisfiable_names_the_chain_from_the_spec() {
        let s = spec("resolve: {mode: closure}\n");
        let mut idx = index();
        idx.retain(|e| e.candidate.package != "libssl3");
        idx.push(entry("libssl3", "3.0.8", ""));
        let err = closure(&s, &idx, "pool", "host").unwrap_err().to_string();
        assert_eq!(
            err,
            "cannot resolve: host needs sshd, sshd (9.2) depends on libssl3 (>= 3.0.9), \
             no candidate: libssl3 3.0.8 is too old"
        );
    }

    #[test]
    fn exclude_satisfies_without_pinning() {
        let s = spec("resolve: {mode: closure, exclude: [kmod]}\n");
        let (lock, _) = closure(&s, &index(), "pool", "host").unwrap();
        assert!(lock.packages.iter().all(|p| p.package != "kmod"));
    }
}
