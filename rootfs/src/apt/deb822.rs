//! The text formats of an apt repository: deb822 paragraphs, `Release` and `Packages`.
//!
//! Pure parsers and renderers, no IO. Formats: deb822 in deb822(5) and Debian Policy §5.1
//! (<https://www.debian.org/doc/debian-policy/ch-controlfields.html>); Release and Packages in
//! <https://wiki.debian.org/DebianRepository/Format>. The renderers exist so that tests and
//! tools can build a repository directory from `.deb` files and serve it.

use std::collections::{BTreeMap, BTreeSet};

use sha2::{Digest, Sha256};

use super::AptError;
use crate::source::{Candidate, IndexEntry};

/// What we use of a `Release` file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Release {
    /// `Suite:` (`stable`, `bookworm-updates`, ...), if present.
    pub suite: Option<String>,
    /// `Codename:` (`bookworm`), if present.
    pub codename: Option<String>,
    /// The `SHA256:` section: path relative to `dists/<suite>/` → (size in bytes, lower-case
    /// hex sha256).
    pub sha256: BTreeMap<String, (u64, String)>,
}

/// Parses deb822 text into its paragraphs.
///
/// Paragraphs are separated by blank (or whitespace-only) lines; lines starting with `#` are
/// comments. Field names keep their case (look them up ignoring case, as deb822 says). A value
/// is the text after the colon, trimmed, followed by each continuation line (one that starts
/// with a space or tab) without its first character and trailing whitespace, joined by `\n`; so
/// a field whose first line is empty (`SHA256:` in Release) starts with `\n`.
pub fn parse_stanzas(text: &str) -> Result<Vec<BTreeMap<String, String>>, AptError> {
    let mut stanzas = Vec::new();
    let mut current = BTreeMap::<String, String>::new();
    let mut last_field: Option<String> = None;
    for (index, line) in text.lines().enumerate() {
        let syntax = |reason: &str| AptError::Syntax {
            line: index + 1,
            reason: reason.to_owned(),
        };
        if line.trim().is_empty() {
            if !current.is_empty() {
                stanzas.push(std::mem::take(&mut current));
            }
            last_field = None;
        } else if line.starts_with('#') {
            continue;
        } else if let Some(rest) = line.strip_prefix([' ', '\t']) {
            let value = last_field
                .as_ref()
                .and_then(|name| current.get_mut(name))
                .ok_or_else(|| syntax("continuation line outside a field"))?;
            value.push('\n');
            value.push_str(rest.trim_end());
        } else {
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| syntax("expected `Field: value`"))?;
            if !is_field_name(name) {
                return Err(syntax(&format!("invalid field name {name:?}")));
            }
            if current.keys().any(|k| k.eq_ignore_ascii_case(name)) {
                return Err(syntax(&format!("field {name} appears twice")));
            }
            current.insert(name.to_owned(), value.trim().to_owned());
            last_field = Some(name.to_owned());
        }
    }
    if !current.is_empty() {
        stanzas.push(current);
    }
    Ok(stanzas)
}

/// deb822: printable US-ASCII but space and colon, not starting with `-` or `#`.
fn is_field_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(['-', '#'])
        && name.bytes().all(|b| b.is_ascii_graphic() && b != b':')
}

/// The value of field `name` in `stanza`, matching the name without regard to case.
pub fn field<'a>(stanza: &'a BTreeMap<String, String>, name: &str) -> Option<&'a str> {
    stanza
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Parses a `Release` file (not `InRelease`: no PGP armour).
///
/// Needs exactly one paragraph with a `SHA256:` field; other checksum sections (`MD5Sum:`,
/// `SHA1:`) are ignored.
pub fn parse_release(text: &str) -> Result<Release, AptError> {
    let bad = |reason: String| AptError::BadRelease { reason };
    let stanzas = parse_stanzas(text)?;
    let [stanza] = stanzas.as_slice() else {
        return Err(bad(format!(
            "expected one paragraph, found {}",
            stanzas.len()
        )));
    };
    let list = field(stanza, "SHA256").ok_or_else(|| bad("no SHA256 field".to_owned()))?;
    let mut sha256 = BTreeMap::new();
    for line in list.lines().filter(|l| !l.trim().is_empty()) {
        let (path, entry) = parse_checksum_line(line).ok_or_else(|| {
            bad(format!(
                "SHA256 line {line:?} is not `<sha256> <size> <path>`"
            ))
        })?;
        if sha256.insert(path.to_owned(), entry).is_some() {
            return Err(bad(format!("SHA256 lists {path} twice")));
        }
    }
    Ok(Release {
        suite: field(stanza, "Suite").map(str::to_owned),
        codename: field(stanza, "Codename").map(str::to_owned),
        sha256,
    })
}

/// ` <sha256> <size> <path>` → (path, (size, lower-case sha256)).
fn parse_checksum_line(line: &str) -> Option<(&str, (u64, String))> {
    let mut words = line.split_whitespace();
    let (hash, size, path) = (words.next()?, words.next()?, words.next()?);
    if words.next().is_some() || !is_sha256_hex(&hash.to_ascii_lowercase()) {
        return None;
    }
    Some((path, (size.parse().ok()?, hash.to_ascii_lowercase())))
}

/// Exactly 64 lower-case hex digits.
pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// One [`Candidate`] per `Packages` paragraph.
///
/// `Package`, `Version`, `Architecture`, `Filename`, `Size` and `SHA256` are required; the
/// hash is lower-cased. An error names the package (or the paragraph's number when it has no
/// `Package`) and the field.
pub fn candidates(stanzas: &[BTreeMap<String, String>]) -> Result<Vec<Candidate>, AptError> {
    stanzas
        .iter()
        .enumerate()
        .map(|(i, stanza)| candidate(i + 1, stanza))
        .collect()
}

/// One [`IndexEntry`] per `Packages` paragraph: the [`Candidate`] as [`candidates`] reads it,
/// with the relationship fields the resolver needs.
pub fn index_entries(stanzas: &[BTreeMap<String, String>]) -> Result<Vec<IndexEntry>, AptError> {
    stanzas
        .iter()
        .enumerate()
        .map(|(i, stanza)| Ok(IndexEntry::new(candidate(i + 1, stanza)?, stanza)))
        .collect()
}

fn candidate(number: usize, stanza: &BTreeMap<String, String>) -> Result<Candidate, AptError> {
    let package = match field(stanza, "Package") {
        Some(name) if !name.is_empty() => name.to_owned(),
        _ => format!("(paragraph {number})"),
    };
    let get = |name: &'static str| match field(stanza, name) {
        Some(value) if !value.is_empty() => Ok(value),
        _ => Err(AptError::MissingField {
            package: package.clone(),
            field: name,
        }),
    };
    let bad = |name: &'static str, value: &str| AptError::BadField {
        package: package.clone(),
        field: name,
        value: value.to_owned(),
    };
    let size = get("Size")?;
    let sha256 = get("SHA256")?;
    let candidate = Candidate {
        package: get("Package")?.to_owned(),
        version: get("Version")?.to_owned(),
        architecture: get("Architecture")?.to_owned(),
        size: size.parse().map_err(|_| bad("Size", size))?,
        sha256: sha256.to_ascii_lowercase(),
        filename: get("Filename")?.to_owned(),
    };
    if !is_sha256_hex(&candidate.sha256) {
        return Err(bad("SHA256", sha256));
    }
    Ok(candidate)
}

/// The fields [`render_packages`] takes from the [`Candidate`] itself.
const CANDIDATE_FIELDS: [&str; 6] = [
    "Package",
    "Version",
    "Architecture",
    "Filename",
    "Size",
    "SHA256",
];

/// A `Packages` file: one paragraph per entry, in the given order.
///
/// Fields come as `Package`, `Version`, `Architecture`, the extra fields (`Depends`, ...) in
/// name order, then `Filename`, `Size`, `SHA256`. An extra field named like one of those is
/// left out: the [`Candidate`] is the truth. Multi-line values become continuation lines, an
/// empty line in them ` .` as deb822 requires.
pub fn render_packages(entries: &[(Candidate, BTreeMap<String, String>)]) -> String {
    let mut out = String::new();
    for (i, (cand, extra)) in entries.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        push_field(&mut out, "Package", &cand.package);
        push_field(&mut out, "Version", &cand.version);
        push_field(&mut out, "Architecture", &cand.architecture);
        for (name, value) in extra {
            if !CANDIDATE_FIELDS
                .iter()
                .any(|f| f.eq_ignore_ascii_case(name))
            {
                push_field(&mut out, name, value);
            }
        }
        push_field(&mut out, "Filename", &cand.filename);
        push_field(&mut out, "Size", &cand.size.to_string());
        push_field(&mut out, "SHA256", &cand.sha256);
    }
    out
}

fn push_field(out: &mut String, name: &str, value: &str) {
    let mut lines = value.split('\n');
    out.push_str(name);
    out.push(':');
    if let Some(first) = lines.next().filter(|first| !first.is_empty()) {
        out.push(' ');
        out.push_str(first);
    }
    for line in lines {
        out.push_str("\n ");
        out.push_str(if line.trim().is_empty() { "." } else { line });
    }
    out.push('\n');
}

/// A `Release` file for `suite` listing the size and sha256 of each `(path, content)`, paths
/// relative to `dists/<suite>/` (`main/binary-amd64/Packages.xz`), sorted by path.
///
/// `Components` and `Architectures` are derived from paths of the form
/// `<component>/binary-<arch>/...`. There is no `Date`: the output depends on the input only.
pub fn render_release(suite: &str, files: &[(String, Vec<u8>)]) -> String {
    let mut sorted: Vec<&(String, Vec<u8>)> = files.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut components = BTreeSet::new();
    let mut architectures = BTreeSet::new();
    for (path, _) in &sorted {
        let mut parts = path.split('/');
        if let (Some(component), Some(dir), Some(_)) = (parts.next(), parts.next(), parts.next()) {
            if let Some(arch) = dir.strip_prefix("binary-") {
                components.insert(component);
                architectures.insert(arch);
            }
        }
    }
    let mut out =
        format!("Origin: image-builder\nLabel: image-builder\nSuite: {suite}\nCodename: {suite}\n");
    if !architectures.is_empty() {
        let list: Vec<&str> = architectures.into_iter().collect();
        out.push_str(&format!("Architectures: {}\n", list.join(" ")));
        let list: Vec<&str> = components.into_iter().collect();
        out.push_str(&format!("Components: {}\n", list.join(" ")));
    }
    out.push_str("SHA256:\n");
    for (path, content) in sorted {
        let hash = hex::encode(Sha256::digest(content));
        out.push_str(&format!(" {hash} {:>8} {path}\n", content.len()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const BUSYBOX_SHA: &str = "5d3ea4f5e1d3f8b9a6c0b0d9e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4";
    const LIBC_SHA: &str = "0c1b2a3948576f6e5d4c3b2a1908f7e6d5c4b3a29180f7e6d5c4b3a291807f6e";

    /// Two paragraphs as they appear in bookworm's `main/binary-amd64/Packages`.
    const PACKAGES: &str = "\
Package: busybox
Version: 1:1.35.0-4+b3
Installed-Size: 1982
Maintainer: Debian Install System Team <debian-boot@lists.debian.org>
Architecture: amd64
Depends: libc6 (>= 2.34)
Description: Tiny utilities for small and embedded systems
 BusyBox combines tiny versions of many common UNIX utilities into a single
 small executable.
 .
 It provides minimalist replacements for the most common utilities.
Homepage: http://www.busybox.net
Section: utils
Priority: optional
Filename: pool/main/b/busybox/busybox_1.35.0-4+b3_amd64.deb
Size: 444872
MD5sum: 3c1bb1f0b0d5a4e2c6f7e8d9a0b1c2d3
SHA256: 5D3EA4F5E1D3F8B9A6C0B0D9E1F2A3B4C5D6E7F8091A2B3C4D5E6F708192A3B4

Package: libc6
Source: glibc
Version: 2.36-9+deb12u7
Architecture: amd64
Depends: libgcc-s1
Filename: pool/main/g/glibc/libc6_2.36-9+deb12u7_amd64.deb
Size: 2757936
SHA256: 0c1b2a3948576f6e5d4c3b2a1908f7e6d5c4b3a29180f7e6d5c4b3a291807f6e
";

    fn cand(package: &str, version: &str, size: u64, sha256: &str, filename: &str) -> Candidate {
        Candidate {
            package: package.into(),
            version: version.into(),
            architecture: "amd64".into(),
            size,
            sha256: sha256.into(),
            filename: filename.into(),
        }
    }

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parses_real_paragraphs_with_continuations() {
        let stanzas = parse_stanzas(PACKAGES).unwrap();
        assert_eq!(stanzas.len(), 2);
        assert_eq!(
            field(&stanzas[0], "description"),
            Some(
                "Tiny utilities for small and embedded systems\n\
                 BusyBox combines tiny versions of many common UNIX utilities into a single\n\
                 small executable.\n\
                 .\n\
                 It provides minimalist replacements for the most common utilities."
            )
        );
        assert_eq!(stanzas[1].get("Source").map(String::as_str), Some("glibc"));
        assert_eq!(
            candidates(&stanzas).unwrap(),
            [
                cand(
                    "busybox",
                    "1:1.35.0-4+b3",
                    444872,
                    BUSYBOX_SHA,
                    "pool/main/b/busybox/busybox_1.35.0-4+b3_amd64.deb"
                ),
                cand(
                    "libc6",
                    "2.36-9+deb12u7",
                    2757936,
                    LIBC_SHA,
                    "pool/main/g/glibc/libc6_2.36-9+deb12u7_amd64.deb"
                ),
            ]
        );
    }

    #[test]
    fn index_entries_keep_relationship_fields() {
        let stanzas = parse_stanzas(PACKAGES).unwrap();
        let entries = index_entries(&stanzas).unwrap();
        assert_eq!(entries[0].candidate, candidates(&stanzas).unwrap()[0]);
        assert_eq!(
            entries[0].fields,
            map(&[
                ("Depends", "libc6 (>= 2.34)"),
                ("Installed-Size", "1982"),
                ("Priority", "optional")
            ])
        );
        assert_eq!(entries[1].fields, map(&[("Depends", "libgcc-s1")]));
    }

    #[test]
    fn parse_stanzas_table() {
        struct Case {
            name: &'static str,
            input: &'static str,
            want: Result<Vec<Vec<(&'static str, &'static str)>>, &'static str>,
        }
        let cases = [
            Case {
                name: "empty",
                input: "",
                want: Ok(vec![]),
            },
            Case {
                name: "blank lines and whitespace-only lines separate",
                input: "\n\nA: 1\n  \t\nB: 2\n\n\n",
                want: Ok(vec![vec![("A", "1")], vec![("B", "2")]]),
            },
            Case {
                name: "case preserved, value trimmed, CRLF",
                input: "Pre-Depends:   libc6  \r\nsha256: ab\r\n",
                want: Ok(vec![vec![("Pre-Depends", "libc6"), ("sha256", "ab")]]),
            },
            Case {
                name: "empty first line, tab continuation",
                input: "SHA256:\n aa 1 x\n\tbb 2 y\n",
                want: Ok(vec![vec![("SHA256", "\naa 1 x\nbb 2 y")]]),
            },
            Case {
                name: "colon in value, comment skipped",
                input: "# comment\nHomepage: http://x:80/\n",
                want: Ok(vec![vec![("Homepage", "http://x:80/")]]),
            },
            Case {
                name: "continuation first",
                input: " orphan\nA: 1\n",
                want: Err("line 1: continuation line outside a field"),
            },
            Case {
                name: "continuation after blank line",
                input: "A: 1\n\n more\n",
                want: Err("line 3: continuation line outside a field"),
            },
            Case {
                name: "no colon",
                input: "A: 1\nnot a field\n",
                want: Err("line 2: expected `Field: value`"),
            },
            Case {
                name: "empty name",
                input: ": x\n",
                want: Err("line 1: invalid field name \"\""),
            },
            Case {
                name: "duplicate field ignoring case",
                input: "Package: a\npackage: b\n",
                want: Err("line 2: field package appears twice"),
            },
            Case {
                name: "PGP armour is not deb822",
                input: "-----BEGIN PGP SIGNED MESSAGE-----\n",
                want: Err("line 1: expected `Field: value`"),
            },
        ];
        for case in cases {
            let got = parse_stanzas(case.input).map_err(|e| e.to_string());
            let want = case
                .want
                .map(|stanzas| stanzas.iter().map(|pairs| map(pairs)).collect::<Vec<_>>())
                .map_err(str::to_owned);
            assert_eq!(got, want, "case {}", case.name);
        }
    }

    #[test]
    fn candidates_table() {
        struct Case {
            name: &'static str,
            input: String,
            want: &'static str,
        }
        let ok = format!("Package: a\nVersion: 1\nArchitecture: all\nFilename: p/a.deb\nSize: 3\nSHA256: {LIBC_SHA}\n");
        let without = |line: &str| ok.replace(line, "");
        let cases = [
            Case {
                name: "no Filename",
                input: "Filename: p/a.deb\n".into(),
                want: "package a: no Filename field",
            },
            Case {
                name: "no Size",
                input: "Size: 3\n".into(),
                want: "package a: no Size field",
            },
            Case {
                name: "no SHA256",
                input: format!("SHA256: {LIBC_SHA}\n"),
                want: "package a: no SHA256 field",
            },
            Case {
                name: "no Version",
                input: "Version: 1\n".into(),
                want: "package a: no Version field",
            },
            Case {
                name: "no Package",
                input: "Package: a\n".into(),
                want: "package (paragraph 1): no Package field",
            },
        ];
        for case in cases {
            let stanzas = parse_stanzas(&without(&case.input)).unwrap();
            let got = candidates(&stanzas).unwrap_err().to_string();
            assert_eq!(got, case.want, "case {}", case.name);
        }
        let bad = [
            (
                "Size: 3",
                "Size: -3",
                "package a: field Size has an invalid value \"-3\"",
            ),
            (
                "Size: 3",
                "Size: 3MB",
                "package a: field Size has an invalid value \"3MB\"",
            ),
            (
                LIBC_SHA,
                "abc",
                "package a: field SHA256 has an invalid value \"abc\"",
            ),
        ];
        for (from, to, want) in bad {
            let stanzas = parse_stanzas(&ok.replace(from, to)).unwrap();
            assert_eq!(candidates(&stanzas).unwrap_err().to_string(), want, "{to}");
        }
    }

    #[test]
    fn release_with_md5_and_sha256_sections() {
        let text = format!(
            "Origin: Debian\nLabel: Debian\nSuite: stable\nVersion: 12.7\nCodename: bookworm\n\
             Date: Sat, 31 Aug 2024 10:48:24 UTC\nArchitectures: all amd64 arm64\n\
             Components: main contrib non-free-firmware non-free\n\
             Description: Debian 12.7 Released 31 August 2024\n\
             MD5Sum:\n 0ed6d4c8891eb86358b94bb35d9e4da4  1484322 contrib/Contents-all\n\
             \x20d0a0325a97c42fd5f66a8c3e29bcea64    98581 contrib/Contents-all.gz\n\
             SHA256:\n {BUSYBOX_SHA}  1484322 contrib/Contents-all\n\
             \x20{}    98581 main/binary-amd64/Packages.xz\n",
            LIBC_SHA.to_uppercase()
        );
        let release = parse_release(&text).unwrap();
        assert_eq!(release.suite.as_deref(), Some("stable"));
        assert_eq!(release.codename.as_deref(), Some("bookworm"));
        let want: BTreeMap<String, (u64, String)> = [
            ("contrib/Contents-all", 1484322, BUSYBOX_SHA),
            ("main/binary-amd64/Packages.xz", 98581, LIBC_SHA),
        ]
        .into_iter()
        .map(|(p, s, h)| (p.to_owned(), (s, h.to_owned())))
        .collect();
        assert_eq!(release.sha256, want);
    }

    #[test]
    fn parse_release_errors() {
        struct Case {
            name: &'static str,
            input: String,
            want: &'static str,
        }
        let cases = [
            Case {
                name: "no SHA256",
                input: "Suite: x\nMD5Sum:\n 0ed6d4c8891eb86358b94bb35d9e4da4 1 a\n".into(),
                want: "Release: no SHA256 field",
            },
            Case {
                name: "two paragraphs",
                input: "Suite: x\n\nSuite: y\n".into(),
                want: "Release: expected one paragraph, found 2",
            },
            Case {
                name: "short hash",
                input: "SHA256:\n abcd 1 a\n".into(),
                want: "Release: SHA256 line \"abcd 1 a\" is not `<sha256> <size> <path>`",
            },
            Case {
                name: "bad size",
                input: format!("SHA256:\n {LIBC_SHA} x a\n"),
                want: "not `<sha256> <size> <path>`",
            },
            Case {
                name: "missing path",
                input: format!("SHA256:\n {LIBC_SHA} 1\n"),
                want: "not `<sha256> <size> <path>`",
            },
            Case {
                name: "duplicate path",
                input: format!("SHA256:\n {LIBC_SHA} 1 a\n {LIBC_SHA} 2 a\n"),
                want: "Release: SHA256 lists a twice",
            },
            Case {
                name: "syntax",
                input: "Suite x\n".into(),
                want: "line 1: expected `Field: value`",
            },
        ];
        for case in cases {
            let got = parse_release(&case.input).unwrap_err().to_string();
            assert!(got.contains(case.want), "case {}: {got}", case.name);
        }
    }

    #[test]
    fn render_packages_whole_text() {
        let entries = vec![
            (
                cand(
                    "busybox",
                    "1:1.35.0-4+b3",
                    444872,
                    BUSYBOX_SHA,
                    "pool/b.deb",
                ),
                map(&[
                    ("Depends", "libc6 (>= 2.34)"),
                    ("Description", "Tiny\nfirst\n\nsecond"),
                    ("size", "999"),
                ]),
            ),
            (
                cand("libc6", "2.36-9", 3, LIBC_SHA, "pool/l.deb"),
                BTreeMap::new(),
            ),
        ];
        let want = format!(
            "Package: busybox\nVersion: 1:1.35.0-4+b3\nArchitecture: amd64\n\
             Depends: libc6 (>= 2.34)\nDescription: Tiny\n first\n .\n second\n\
             Filename: pool/b.deb\nSize: 444872\nSHA256: {BUSYBOX_SHA}\n\
             \n\
             Package: libc6\nVersion: 2.36-9\nArchitecture: amd64\n\
             Filename: pool/l.deb\nSize: 3\nSHA256: {LIBC_SHA}\n"
        );
        assert_eq!(render_packages(&entries), want);
    }

    #[test]
    fn render_release_whole_text_and_round_trip() {
        let files = vec![
            ("main/binary-amd64/Packages.xz".to_owned(), b"xz".to_vec()),
            ("main/binary-amd64/Packages".to_owned(), b"plain".to_vec()),
        ];
        let text = render_release("bookworm", &files);
        let want = format!(
            "Origin: image-builder\nLabel: image-builder\nSuite: bookworm\nCodename: bookworm\n\
             Architectures: amd64\nComponents: main\nSHA256:\n \
             {}        5 main/binary-amd64/Packages\n \
             {}        2 main/binary-amd64/Packages.xz\n",
            hex::encode(Sha256::digest(b"plain")),
            hex::encode(Sha256::digest(b"xz")),
        );
        assert_eq!(text, want);
        let release = parse_release(&text).unwrap();
        assert_eq!(release.suite.as_deref(), Some("bookworm"));
        assert_eq!(
            release.sha256["main/binary-amd64/Packages.xz"],
            (2, hex::encode(Sha256::digest(b"xz")))
        );
    }

    fn arb_candidate() -> impl Strategy<Value = Candidate> {
        (
            "[a-z0-9][a-z0-9+.-]{0,20}",
            "[0-9]:[0-9][a-z0-9.+~-]{0,10}",
            "(amd64|arm64|all)",
            any::<u64>(),
            "[0-9a-f]{64}",
            "pool/[a-z0-9/_.+-]{1,40}",
        )
            .prop_map(|(package, version, architecture, size, sha256, filename)| {
                Candidate {
                    package,
                    version,
                    architecture,
                    size,
                    sha256,
                    filename,
                }
            })
    }

    proptest! {
        #[test]
        fn render_then_parse_gives_the_candidates(
            cands in proptest::collection::vec(arb_candidate(), 0..5),
            depends in "[a-z0-9 (>=).,|-]{0,30}",
        ) {
            let extra = map(&[("Depends", depends.as_str())]);
            let entries: Vec<_> = cands.iter().map(|c| (c.clone(), extra.clone())).collect();
            let parsed = candidates(&parse_stanzas(&render_packages(&entries)).unwrap()).unwrap();
            prop_assert_eq!(parsed, cands);
        }
    }
}
