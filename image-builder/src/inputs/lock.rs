//! The lockfile (`images/<name>.lock`): every input package pinned by version, architecture,
//! size and sha256, with where it came from. `lock` writes it; `build` refuses any input that
//! differs from it.
//!
//! Two shapes, one format. With `resolve.mode: exact` (the default) the lock pins exactly the
//! spec's packages in spec order, nothing more. With `resolve.mode: closure` it pins their whole
//! dependency closure ([`crate::inputs::resolve`]) sorted by name, records the spec's `resolve:`
//! settings, and says for each package why it is there: `root` (the spec lists it),
//! `essential` (pulled as `Essential: yes`) and `required_by` (the packages depending on it).
//! Those fields are left out when empty, so an exact lock reads as it always did.

use std::path::{Path, PathBuf};

use rootfs::source::Candidate;
use serde::{Deserialize, Serialize};

use crate::spec::{ImageSpec, ResolveMode, ResolveSpec};

/// Format version of the lockfile.
pub const LOCK_FORMAT: u32 = 1;
/// The only architecture images are built for (and `all`).
pub const ARCH: &str = "amd64";

/// One pinned package.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedPackage {
    pub package: String,
    pub version: String,
    pub architecture: String,
    pub size: u64,
    pub sha256: String,
    /// Path inside the source (apt `Filename:` or the pool file name).
    pub filename: String,
    /// The source it was locked from: `pool` or the apt repository URL and suite.
    pub source: String,
    /// Closure locks: the spec lists this package.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub root: bool,
    /// Closure locks: pulled in as `Essential: yes` (`resolve.essential`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub essential: bool,
    /// Closure locks: the packages whose `Depends`/`Pre-Depends` this one satisfies.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub required_by: Vec<String>,
}

impl LockedPackage {
    /// The lock of candidate `c` from `source` (a direct lock: no closure fields).
    pub fn of(c: &Candidate, source: &str) -> LockedPackage {
        LockedPackage {
            package: c.package.clone(),
            version: c.version.clone(),
            architecture: c.architecture.clone(),
            size: c.size,
            sha256: c.sha256.clone(),
            filename: c.filename.clone(),
            source: source.to_string(),
            root: false,
            essential: false,
            required_by: Vec::new(),
        }
    }

    /// What the lock says of this package, checked field by field before anything is fetched:
    /// a name and version as dpkg takes them, a sha256, a `filename` that stays inside its
    /// source (it becomes a pool path or a URL) and, when it is named as Debian names
    /// packages (`<package>_<version>_<arch>.deb`), names this package; a `source` as
    /// `image-builder lock` writes it. Pure.
    pub fn check(&self) -> Result<(), String> {
        let field = |name: &str, value: &str, why: &str| Err(format!("{name} {value:?} {why}"));
        if !rootfs::relation::is_package_name(&self.package) {
            return field("package", &self.package, "is not a Debian package name");
        }
        if let Err(e) = rootfs::version::parse(&self.version) {
            return Err(format!("version: {e}"));
        }
        if self.architecture.is_empty()
            || !self
                .architecture
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return field(
                "architecture",
                &self.architecture,
                "is not a Debian architecture",
            );
        }
        if self.sha256.len() != 64
            || !self
                .sha256
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return field("sha256", &self.sha256, "is not 64 lower-case hex digits");
        }
        let f = &self.filename;
        if f.starts_with('/')
            || f.split('/').any(|c| c.is_empty() || c == "." || c == "..")
            || f.chars().any(|c| c.is_control() || c == '\\')
        {
            return field(
                "filename",
                f,
                "must be a relative path that stays inside the source",
            );
        }
        if !f.ends_with(".deb") {
            return field("filename", f, "is not a .deb");
        }
        let source_ok = self.source == "pool"
            || self.source.split_once(' ').is_some_and(|(url, suite)| {
                (url.starts_with("http://") || url.starts_with("https://"))
                    && !suite.is_empty()
                    && !suite.contains(char::is_whitespace)
            });
        if !source_ok {
            return field(
                "source",
                &self.source,
                "is neither \"pool\" nor \"<http(s) URL> <suite>\"",
            );
        }
        Ok(())
    }

    /// When the file name has Debian's form `<package>_<version>_<arch>.deb` (the version
    /// without its epoch, or with its colon as `%3a`) but names another package than
    /// `control`, the name it should have. Pool files may be named freely; other names are
    /// not compared. Pure.
    pub fn file_name_mismatch(&self, control: &rootfs::deb::Control) -> Option<String> {
        let base = self.filename.rsplit('/').next()?.strip_suffix(".deb")?;
        let parts: Vec<&str> = base.split('_').collect();
        let [package, version, arch] = parts[..] else {
            return None;
        };
        let bare = control
            .version
            .split_once(':')
            .map_or(&*control.version, |(_, v)| v);
        let encoded = control.version.replace(':', "%3a");
        let same = package == control.package
            && arch == control.architecture
            && (version == bare || version.eq_ignore_ascii_case(&encoded));
        (!same).then(|| format!("{}_{bare}_{}.deb", control.package, control.architecture))
    }

    pub fn candidate(&self) -> Candidate {
        Candidate {
            package: self.package.clone(),
            version: self.version.clone(),
            architecture: self.architecture.clone(),
            size: self.size,
            sha256: self.sha256.clone(),
            filename: self.filename.clone(),
        }
    }
}

/// The whole lockfile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lockfile {
    pub format: u32,
    /// The spec's `resolve:` settings, for a closure lock; absent for an exact one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolve: Option<ResolveSpec>,
    /// Exact: in spec order (kernel, bootloader, then `packages`). Closure: sorted by name.
    pub packages: Vec<LockedPackage>,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("package {package} is not available from {source_desc} for {arch} (have: {have})")]
    NotAvailable {
        package: String,
        source_desc: String,
        arch: String,
        have: String,
    },
    #[error("{path} is out of date: {reason}; run `image-builder lock` to update it")]
    Stale { path: PathBuf, reason: String },
    #[error("reading lockfile {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("lockfile {path} is malformed: {message}")]
    Malformed { path: PathBuf, message: String },
}

/// The newest candidate for each spec package, as a lockfile. Pure.
pub fn resolve(
    spec: &ImageSpec,
    candidates: &[Candidate],
    source_desc: &str,
) -> Result<Lockfile, LockError> {
    let packages = spec
        .package_names()
        .into_iter()
        .map(|name| {
            let best = candidates
                .iter()
                .filter(|c| {
                    c.package == name && (c.architecture == ARCH || c.architecture == "all")
                })
                .max_by(|a, b| {
                    rootfs::version::compare(&a.version, &b.version)
                        .then_with(|| a.sha256.cmp(&b.sha256))
                });
            let c = best.ok_or_else(|| LockError::NotAvailable {
                package: name.clone(),
                source_desc: source_desc.to_string(),
                arch: ARCH.to_string(),
                have: other_versions(candidates, &name),
            })?;
            Ok(LockedPackage::of(c, source_desc))
        })
        .collect::<Result<Vec<_>, LockError>>()?;
    Ok(Lockfile {
        format: LOCK_FORMAT,
        resolve: None,
        packages,
    })
}

fn other_versions(candidates: &[Candidate], name: &str) -> String {
    let v: Vec<String> = candidates
        .iter()
        .filter(|c| c.package == name)
        .map(|c| format!("{} {}", c.version, c.architecture))
        .collect();
    if v.is_empty() {
        "no version at all".into()
    } else {
        v.join(", ")
    }
}

impl Lockfile {
    /// Canonical text: pretty JSON with a trailing newline.
    pub fn to_text(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("lockfile serialises");
        s.push('\n');
        s
    }

    /// Read and parse the lockfile at `path`.
    pub fn load(path: &Path) -> Result<Lockfile, LockError> {
        let text = std::fs::read_to_string(path).map_err(|source| LockError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parse lockfile text; `path` only names the file in errors. Pure.
    pub fn parse(text: &str, path: &Path) -> Result<Lockfile, LockError> {
        let lock: Lockfile = serde_json::from_str(text).map_err(|e| LockError::Malformed {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        if lock.format != LOCK_FORMAT {
            return Err(LockError::Malformed {
                path: path.to_path_buf(),
                message: format!(
                    "format {} is not supported (expected {LOCK_FORMAT})",
                    lock.format
                ),
            });
        }
        for (i, p) in lock.packages.iter().enumerate() {
            p.check().map_err(|why| LockError::Malformed {
                path: path.to_path_buf(),
                message: format!("packages[{i}] ({}): {why}", p.package),
            })?;
        }
        Ok(lock)
    }

    /// An exact lock must pin exactly the spec's packages, in the spec's order; a closure lock
    /// must have been resolved with the spec's `resolve:` settings and pin each spec package
    /// as a root (and no other root), each name once.
    pub fn check_matches(&self, spec: &ImageSpec, path: &Path) -> Result<(), LockError> {
        let stale = |reason: String| LockError::Stale {
            path: path.to_path_buf(),
            reason,
        };
        match (spec.resolve.mode, &self.resolve) {
            (ResolveMode::Exact, None) => {}
            (ResolveMode::Closure, Some(r)) if *r == spec.resolve => {
                return self.check_closure(spec).map_err(stale)
            }
            (ResolveMode::Closure, Some(_)) => {
                return Err(stale("the spec's resolve: settings changed".into()))
            }
            (ResolveMode::Closure, None) => {
                return Err(stale(
                    "the spec asks for resolve.mode: closure, the lock pins exact packages".into(),
                ))
            }
            (ResolveMode::Exact, Some(_)) => {
                return Err(stale(
                    "the lock pins a dependency closure, the spec asks for exact packages".into(),
                ))
            }
        }
        let want = spec.package_names();
        let have: Vec<String> = self.packages.iter().map(|p| p.package.clone()).collect();
        if want == have {
            return Ok(());
        }
        let missing: Vec<&String> = want.iter().filter(|w| !have.contains(w)).collect();
        let extra: Vec<&String> = have.iter().filter(|h| !want.contains(h)).collect();
        let reason = match (missing.is_empty(), extra.is_empty()) {
            (false, _) => format!("the spec needs {missing:?}, which the lock does not pin"),
            (true, false) => format!("the lock pins {extra:?}, which the spec no longer lists"),
            (true, true) => "the package order differs from the spec".into(),
        };
        Err(LockError::Stale {
            path: path.to_path_buf(),
            reason,
        })
    }
}

impl Lockfile {
    fn check_closure(&self, spec: &ImageSpec) -> Result<(), String> {
        let names: Vec<&str> = self.packages.iter().map(|p| p.package.as_str()).collect();
        if let Some(w) = names.windows(2).find(|w| w[0] >= w[1]) {
            return Err(format!(
                "packages are not sorted by name with each once ({} before {})",
                w[0], w[1]
            ));
        }
        let want = spec.package_names();
        if let Some(missing) = want
            .iter()
            .find(|w| !self.packages.iter().any(|p| p.package == **w && p.root))
        {
            return Err(format!(
                "the spec needs {missing:?}, which the lock does not pin as requested"
            ));
        }
        if let Some(extra) = self
            .packages
            .iter()
            .find(|p| p.root && !want.contains(&p.package))
        {
            return Err(format!(
                "the lock pins {:?} as requested, which the spec no longer lists",
                extra.package
            ));
        }
        Ok(())
    }
}

/// The lockfile path next to a spec: `images/minimal.yaml` → `images/minimal.lock`.
pub fn path_for(spec_path: &Path) -> PathBuf {
    spec_path.with_extension("lock")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn locked(edit: impl FnOnce(&mut LockedPackage)) -> Result<(), String> {
        let mut p = LockedPackage {
            package: "busybox-static".into(),
            version: "1:1.35.0-4+b3".into(),
            architecture: "amd64".into(),
            size: 1,
            sha256: "ab".repeat(32),
            filename: "pool/main/b/busybox/busybox-static_1.35.0-4+b3_amd64.deb".into(),
            source: "http://deb.debian.org/debian bookworm".into(),
            root: false,
            essential: false,
            required_by: Vec::new(),
        };
        edit(&mut p);
        p.check()
    }

    #[test]
    fn a_debian_file_name_must_name_the_package() {
        let control = rootfs::deb::Control {
            package: "busybox-static".into(),
            version: "1:1.35.0-4+b3".into(),
            architecture: "amd64".into(),
            fields: Default::default(),
        };
        let named = |filename: &str| {
            let mut p =
                LockedPackage::of(&cand("busybox-static", "1:1.35.0-4+b3", "amd64"), "pool");
            p.filename = filename.into();
            p.file_name_mismatch(&control)
        };
        for same in [
            "pool/main/b/busybox/busybox-static_1.35.0-4+b3_amd64.deb",
            "busybox-static_1%3a1.35.0-4+b3_amd64.deb",
            "busybox.deb",
            "busybox-static_1.35.0_4_amd64.deb",
        ] {
            assert_eq!(named(same), None, "{same}");
        }
        let want = Some("busybox-static_1.35.0-4+b3_amd64.deb".to_string());
        for other in [
            "busybox-static_1.30.1-6_amd64.deb",
            "busybox_1.35.0-4+b3_amd64.deb",
            "busybox-static_1.35.0-4+b3_i386.deb",
        ] {
            assert_eq!(named(other), want, "{other}");
        }
    }

    #[test]
    fn every_locked_field_is_checked() {
        locked(|_| {}).unwrap();
        locked(|p| p.filename = "busybox.deb".into()).unwrap(); // pool files are named freely
        locked(|p| p.filename = "busybox-static_1%3a1.35.0-4+b3_amd64.deb".into()).unwrap();
        locked(|p| p.source = "pool".into()).unwrap();
        type Edit = dyn Fn(&mut LockedPackage);
        let cases: &[(&Edit, &str)] = &[
            (
                &|p| p.package = "Busy box".into(),
                "package \"Busy box\" is not",
            ),
            (&|p| p.version = "01:x".into(), "version: "),
            (
                &|p| p.architecture = "AMD64".into(),
                "architecture \"AMD64\"",
            ),
            (&|p| p.sha256 = "AB".repeat(32), "sha256 \"ABAB"),
            (
                &|p| p.filename = "../../etc/passwd.deb".into(),
                "stays inside the source",
            ),
            (
                &|p| p.filename = "/srv/x.deb".into(),
                "stays inside the source",
            ),
            (
                &|p| p.filename = "pool//x.deb".into(),
                "stays inside the source",
            ),
            (&|p| p.filename = "x.tar".into(), "is not a .deb"),
            (
                &|p| p.source = "ftp://x bookworm".into(),
                "source \"ftp://x bookworm\"",
            ),
            (&|p| p.source = "http://x".into(), "is neither"),
        ];
        for (edit, want) in cases {
            let err = locked(|p| edit(p)).expect_err(want);
            assert!(err.contains(want), "{err} (want {want})");
        }
    }

    fn cand(package: &str, version: &str, arch: &str) -> Candidate {
        Candidate {
            package: package.into(),
            version: version.into(),
            architecture: arch.into(),
            size: 1,
            sha256: format!("{package}-{version}"),
            filename: format!("{package}_{version}_{arch}.deb"),
        }
    }

    fn spec() -> ImageSpec {
        let text = "os: {name: T, id: t, version: 1.2.3, channel: alpha}\nsource_date_epoch: 0\n\
            kernel: {package: linux-image-x, cmdline: '', initramfs_modules: [virtio_blk]}\n\
            bootloader: {package: systemd-boot-efi}\npackages: [busybox-static]\n\
            partitions: {esp_mib: 64, usr_mib: 64, oem_mib: 8, root_mib: 64}\n";
        ImageSpec::parse(text, Path::new("t.yaml")).unwrap()
    }

    #[test]
    fn picks_newest_matching_arch() {
        let cands = [
            cand("linux-image-x", "6.1.176-1", "amd64"),
            cand("linux-image-x", "6.1.192-2", "amd64"),
            cand("linux-image-x", "6.1.999-1", "arm64"),
            cand("systemd-boot-efi", "252.39-1~deb12u2", "amd64"),
            cand("systemd-boot-efi", "252.39-1", "amd64"),
            cand("busybox-static", "1:1.35.0-4", "amd64"),
            cand("busybox-static", "1.36.0-1", "amd64"),
        ];
        let lock = resolve(&spec(), &cands, "pool").unwrap();
        let got: Vec<(&str, &str)> = lock
            .packages
            .iter()
            .map(|p| (p.package.as_str(), p.version.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("linux-image-x", "6.1.192-2"),
                ("systemd-boot-efi", "252.39-1"),
                ("busybox-static", "1:1.35.0-4")
            ]
        );
        let text = lock.to_text();
        assert_eq!(serde_json::from_str::<Lockfile>(&text).unwrap(), lock);
        lock.check_matches(&spec(), Path::new("t.lock")).unwrap();
    }

    #[test]
    fn missing_package_names_it() {
        let err = resolve(&spec(), &[cand("linux-image-x", "1", "arm64")], "pool")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("linux-image-x is not available from pool"),
            "{err}"
        );
        assert!(err.contains("1 arm64"), "{err}");
    }

    #[test]
    fn stale_lock_is_refused() {
        let mut lock = resolve(
            &spec(),
            &[
                cand("linux-image-x", "1", "amd64"),
                cand("systemd-boot-efi", "1", "amd64"),
                cand("busybox-static", "1", "amd64"),
            ],
            "pool",
        )
        .unwrap();
        lock.packages.pop();
        let err = lock
            .check_matches(&spec(), Path::new("t.lock"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("busybox-static") && err.contains("image-builder lock"),
            "{err}"
        );
    }
}
