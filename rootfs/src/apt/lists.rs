//! The package indexes the host's apt has already downloaded: `/var/lib/apt/lists`.
//!
//! apt stores each index as `<uri>_dists_<suite>_<component>_binary-<arch>_Packages[.ext]`,
//! the URI without its scheme and with `/` turned into `_`, compressed as apt is configured
//! (`.lz4` on Debian 12, or `.gz`, `.xz`, `.zst`, none). Next to them lies the suite's
//! `..._dists_<suite>_InRelease` (or `_Release`). apt checked both signatures and hashes when it
//! downloaded them, and every `.deb` a lock pins is checked against its sha256 anyway, so this
//! module only reads.
//!
//! A suite whose Release says `NotAutomatic: yes` (bookworm-backports) is left out: apt's
//! default pin (priority 1, or 100 with `ButAutomaticUpgrades`) never takes a candidate from it
//! over one of the normal suites (priority 500), and neither do we.

use std::fs;
use std::path::{Path, PathBuf};

use super::{decompress, index_entries, io_error, parse_error, parse_stanzas, utf8, AptError};
use crate::source::IndexEntry;

/// Where apt keeps its lists on a Debian host.
pub const HOST_LISTS: &str = "/var/lib/apt/lists";

/// One `Packages` list, its name taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackagesList {
    pub path: PathBuf,
    /// The repository URI as apt mangled it (`deb.debian.org_debian`).
    pub uri: String,
    /// The suite as apt mangled it (`bookworm-security`).
    pub suite: String,
    pub component: String,
    pub arch: String,
}

impl PackagesList {
    /// Takes apart a list file name; `None` for anything but a `Packages` list of a `dists/`
    /// repository.
    pub fn parse(path: &Path) -> Option<PackagesList> {
        let name = path.file_name()?.to_str()?;
        let (uri, rest) = name.split_once("_dists_")?;
        let (dist, tail) = rest.split_once("_binary-")?;
        let (arch, file) = tail.split_once('_')?;
        let ext = file.strip_prefix("Packages")?;
        if !(ext.is_empty() || [".lz4", ".gz", ".xz", ".zst"].contains(&ext)) {
            return None;
        }
        let (suite, component) = dist.rsplit_once('_')?;
        Some(PackagesList {
            path: path.to_path_buf(),
            uri: uri.to_owned(),
            suite: suite.to_owned(),
            component: component.to_owned(),
            arch: arch.to_owned(),
        })
    }

    /// `deb.debian.org/debian bookworm-security main`: how messages name the list.
    pub fn describe(&self) -> String {
        format!(
            "{} {} {}",
            self.uri.replace('_', "/"),
            self.suite,
            self.component
        )
    }

    /// The suite's Release file next to the list: `InRelease`, else `Release`.
    fn release_path(&self) -> Option<PathBuf> {
        let dir = self.path.parent()?;
        ["InRelease", "Release"]
            .iter()
            .map(|f| dir.join(format!("{}_dists_{}_{f}", self.uri, self.suite)))
            .find(|p| p.is_file())
    }
}

/// The `Packages` lists in `dir` for `arch` (and `all`), sorted by file name, without the
/// suites marked `NotAutomatic: yes`.
pub fn packages_lists(dir: &Path, arch: &str) -> Result<Vec<PackagesList>, AptError> {
    let read_dir = fs::read_dir(dir).map_err(|e| io_error("listing", dir, e))?;
    let mut lists = Vec::new();
    for entry in read_dir {
        let entry = entry.map_err(|e| io_error("listing", dir, e))?;
        let Some(list) = PackagesList::parse(&entry.path()) else {
            continue;
        };
        if (list.arch == arch || list.arch == "all") && !not_automatic(&list)? {
            lists.push(list);
        }
    }
    lists.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(lists)
}

/// Whether the list's suite says `NotAutomatic: yes` in its Release file.
fn not_automatic(list: &PackagesList) -> Result<bool, AptError> {
    let Some(path) = list.release_path() else {
        return Ok(false);
    };
    let text = fs::read(&path).map_err(|e| io_error("reading", &path, e))?;
    Ok(String::from_utf8_lossy(&text)
        .lines()
        .take_while(|l| !l.starts_with("-----BEGIN PGP SIGNATURE"))
        .filter_map(|l| l.split_once(':'))
        .any(|(k, v)| k.eq_ignore_ascii_case("NotAutomatic") && v.trim() == "yes"))
}

/// Every package of one list.
pub fn read_list(list: &PackagesList) -> Result<Vec<IndexEntry>, AptError> {
    let path = &list.path;
    let shown = path.display().to_string();
    let bytes = fs::read(path).map_err(|e| io_error("reading", path, e))?;
    let text = utf8(&shown, decompress(&shown, &shown, &bytes)?)?;
    parse_stanzas(&text)
        .and_then(|stanzas| index_entries(&stanzas))
        .map_err(|e| parse_error(&shown, e))
}

/// Every package of every list [`packages_lists`] finds, list by list.
pub fn read_lists(
    dir: &Path,
    arch: &str,
) -> Result<Vec<(PackagesList, Vec<IndexEntry>)>, AptError> {
    packages_lists(dir, arch)?
        .into_iter()
        .map(|list| read_list(&list).map(|entries| (list, entries)))
        .collect()
}

/// The file name `apt-get download` gives a package: `<name>_<version>_<arch>.deb`, with `:`
/// (the epoch) written `%3a` as apt's `QuoteString` does.
pub fn download_file_name(package: &str, version: &str, arch: &str) -> String {
    let quote = |s: &str| {
        let mut out = String::new();
        for c in s.chars() {
            if matches!(c, '_' | ':' | '%') || !c.is_ascii_graphic() {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("%{b:02x}"));
                }
            } else {
                out.push(c);
            }
        }
        out
    };
    format!("{}_{}_{}.deb", quote(package), quote(version), quote(arch))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const PACKAGES: &str = "\
Package: jq
Version: 1.6-2.1
Architecture: amd64
Depends: libjq1 (= 1.6-2.1), libc6 (>= 2.34)
Filename: pool/main/j/jq/jq_1.6-2.1_amd64.deb
Size: 64860
SHA256: 0c1b2a3948576f6e5d4c3b2a1908f7e6d5c4b3a29180f7e6d5c4b3a291807f6e
";

    fn lz4(text: &str) -> Vec<u8> {
        let mut enc = lz4_flex::frame::FrameEncoder::new(Vec::new());
        enc.write_all(text.as_bytes()).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn names_taken_apart() {
        let p = PackagesList::parse(Path::new(
            "/l/deb.debian.org_debian-security_dists_bookworm-security_main_binary-amd64_Packages.lz4",
        ))
        .unwrap();
        assert_eq!(
            (
                p.uri.as_str(),
                p.suite.as_str(),
                p.component.as_str(),
                p.arch.as_str()
            ),
            (
                "deb.debian.org_debian-security",
                "bookworm-security",
                "main",
                "amd64"
            )
        );
        assert_eq!(
            p.describe(),
            "deb.debian.org/debian-security bookworm-security main"
        );
        for other in [
            "deb.debian.org_debian_dists_bookworm_InRelease",
            "deb.debian.org_debian_dists_bookworm_main_dep11_Components-amd64.yml.gz",
            "deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages.diff_Index",
            "lock",
        ] {
            assert_eq!(PackagesList::parse(Path::new(other)), None, "{other}");
        }
    }

    #[test]
    fn reads_lists_skipping_not_automatic_suites_and_other_arches() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let write = |name: &str, bytes: &[u8]| fs::write(d.join(name), bytes).unwrap();
        write(
            "h_debian_dists_bookworm_main_binary-amd64_Packages.lz4",
            &lz4(PACKAGES),
        );
        write(
            "h_debian_dists_bookworm-updates_main_binary-amd64_Packages",
            PACKAGES.replace("1.6-2.1", "1.6-2.2").as_bytes(),
        );
        write(
            "h_debian_dists_bookworm_main_binary-arm64_Packages",
            PACKAGES.as_bytes(),
        );
        write(
            "h_debian_dists_bookworm-backports_main_binary-amd64_Packages",
            PACKAGES.replace("1.6-2.1", "1.7-1~bpo12+1").as_bytes(),
        );
        write(
            "h_debian_dists_bookworm-backports_InRelease",
            b"-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\nOrigin: Debian Backports\n\
              NotAutomatic: yes\nButAutomaticUpgrades: yes\n-----BEGIN PGP SIGNATURE-----\n",
        );
        write(
            "h_debian_dists_bookworm_InRelease",
            b"Origin: Debian\nSuite: stable\n",
        );
        let got = read_lists(d, "amd64").unwrap();
        let versions: Vec<(String, String, Option<String>)> = got
            .iter()
            .flat_map(|(list, entries)| {
                entries.iter().map(move |e| {
                    (
                        list.suite.clone(),
                        e.candidate.version.clone(),
                        e.field("Depends").map(str::to_owned),
                    )
                })
            })
            .collect();
        assert_eq!(
            versions,
            [
                // sorted by file name: `-` before `_`
                (
                    "bookworm-updates".to_string(),
                    "1.6-2.2".to_string(),
                    Some("libjq1 (= 1.6-2.2), libc6 (>= 2.34)".to_string())
                ),
                (
                    "bookworm".to_string(),
                    "1.6-2.1".to_string(),
                    Some("libjq1 (= 1.6-2.1), libc6 (>= 2.34)".to_string())
                ),
            ]
        );
    }

    #[test]
    fn broken_list_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let name = "h_debian_dists_bookworm_main_binary-amd64_Packages.lz4";
        fs::write(dir.path().join(name), b"not lz4").unwrap();
        let err = read_lists(dir.path(), "amd64").unwrap_err().to_string();
        assert!(err.contains(name), "{err}");
    }

    #[test]
    fn download_names_as_apt_get_writes_them() {
        assert_eq!(
            download_file_name("busybox-static", "1:1.35.0-4+deb12u1+b1", "amd64"),
            "busybox-static_1%3a1.35.0-4+deb12u1+b1_amd64.deb"
        );
        assert_eq!(
            download_file_name("systemd-boot-efi", "252.39-1~deb12u2", "amd64"),
            "systemd-boot-efi_252.39-1~deb12u2_amd64.deb"
        );
    }
}
