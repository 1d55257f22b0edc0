//! Debian package versions: parsing and ordering exactly as dpkg does.
//!
//! Implements deb-version(7): `[epoch:]upstream_version[-debian_revision]`. The epoch is a
//! number; the revision is everything after the last `-`. Upstream and revision compare with
//! dpkg's `verrevcmp`: alternating non-digit and digit runs, where in non-digit runs `~` sorts
//! before everything (even the end of the string), letters sort before other characters, and
//! digit runs compare numerically. Mirrors `lib/dpkg/version.c` and `parsehelp.c` of dpkg.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

/// Largest epoch dpkg accepts (it stores the epoch in a C `int`).
const MAX_EPOCH: u32 = i32::MAX as u32;

/// A syntactically valid Debian version.
///
/// Equality and ordering follow dpkg, so `1.0`, `0:1.0` and `1.0-0` are all equal.
#[derive(Debug, Clone)]
pub struct Version {
    pub epoch: u32,
    pub upstream: String,
    /// Empty when the version has no `-`.
    pub revision: String,
}

/// Why a version string is not a valid Debian version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    #[error("version string is empty")]
    Empty,
    #[error("version {version:?} contains whitespace")]
    Whitespace { version: String },
    #[error("version {version:?} has an epoch that is not a number up to {MAX_EPOCH}")]
    BadEpoch { version: String },
    #[error("version {version:?} has an empty upstream version")]
    EmptyUpstream { version: String },
    #[error("version {version:?} has an empty revision after '-'")]
    EmptyRevision { version: String },
    #[error("version {version:?}: upstream version does not start with a digit")]
    UpstreamStart { version: String },
    #[error("version {version:?} contains the invalid character {ch:?}")]
    BadChar { version: String, ch: char },
}

/// Parse `v` strictly, refusing everything dpkg reports as bad syntax (including what dpkg
/// only warns about, such as an upstream version not starting with a digit).
pub fn parse(v: &str) -> Result<Version, VersionError> {
    let version = || v.to_string();
    if v.is_empty() {
        return Err(VersionError::Empty);
    }
    if v.chars().any(char::is_whitespace) {
        return Err(VersionError::Whitespace { version: version() });
    }
    let (epoch, rest) = match v.split_once(':') {
        Some((e, rest)) => (
            parse_epoch(e).ok_or_else(|| VersionError::BadEpoch { version: version() })?,
            rest,
        ),
        None => (0, v),
    };
    let (upstream, revision) = rest.rsplit_once('-').unwrap_or((rest, ""));
    if upstream.is_empty() {
        return Err(VersionError::EmptyUpstream { version: version() });
    }
    if rest.ends_with('-') {
        return Err(VersionError::EmptyRevision { version: version() });
    }
    if !upstream.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(VersionError::UpstreamStart { version: version() });
    }
    check_chars(v, upstream, ".-+~:")?;
    check_chars(v, revision, ".+~")?;
    Ok(Version {
        epoch,
        upstream: upstream.to_string(),
        revision: revision.to_string(),
    })
}

fn parse_epoch(e: &str) -> Option<u32> {
    if e.is_empty() || !e.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    e.parse::<u32>().ok().filter(|n| *n <= MAX_EPOCH)
}

fn check_chars(version: &str, part: &str, extra: &str) -> Result<(), VersionError> {
    match part
        .chars()
        .find(|c| !c.is_ascii_alphanumeric() && !extra.contains(*c))
    {
        Some(ch) => Err(VersionError::BadChar {
            version: version.to_string(),
            ch,
        }),
        None => Ok(()),
    }
}

/// Compare two version strings as `dpkg --compare-versions` does.
///
/// Never fails: strings that are not valid versions are split leniently (an epoch only if
/// the part before the first `:` is all digits, the revision after the last `-`), so the
/// result is still a total preorder that is reflexive and antisymmetric.
pub fn compare(a: &str, b: &str) -> Ordering {
    let (a, b) = (Parts::split(a), Parts::split(b));
    compare_epochs(a.epoch, b.epoch)
        .then_with(|| verrevcmp(a.upstream, b.upstream))
        .then_with(|| verrevcmp(a.revision, b.revision))
}

/// A version string cut into its three parts without validation.
struct Parts<'a> {
    /// Decimal digits, possibly empty (epoch 0) or with leading zeros.
    epoch: &'a str,
    upstream: &'a str,
    revision: &'a str,
}

impl<'a> Parts<'a> {
    fn split(v: &'a str) -> Self {
        let v = v.trim();
        let (epoch, rest) = match v.split_once(':') {
            Some((e, rest)) if !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit()) => (e, rest),
            _ => ("", v),
        };
        let (upstream, revision) = rest.rsplit_once('-').unwrap_or((rest, ""));
        Parts {
            epoch,
            upstream,
            revision,
        }
    }
}

/// Compare two decimal digit strings numerically, whatever their length.
fn compare_epochs(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.trim_start_matches('0'), b.trim_start_matches('0'));
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// dpkg's weight of one character inside a non-digit run; `None` is the end of the string.
fn order(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(b'~') => -1,
        Some(c) => i32::from(c) + 256,
    }
}

/// dpkg's `verrevcmp`: the comparison of an upstream version or a revision.
fn verrevcmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    let non_digit = |s: &[u8], k: usize| s.get(k).is_some_and(|c| !c.is_ascii_digit());
    let digit = |s: &[u8], k: usize| s.get(k).is_some_and(u8::is_ascii_digit);
    while i < a.len() || j < b.len() {
        while non_digit(a, i) || non_digit(b, j) {
            let (ac, bc) = (order(a.get(i).copied()), order(b.get(j).copied()));
            if ac != bc {
                return ac.cmp(&bc);
            }
            i += 1;
            j += 1;
        }
        while a.get(i) == Some(&b'0') {
            i += 1;
        }
        while b.get(j) == Some(&b'0') {
            j += 1;
        }
        let mut first_diff = Ordering::Equal;
        while digit(a, i) && digit(b, j) {
            first_diff = first_diff.then(a[i].cmp(&b[j]));
            i += 1;
            j += 1;
        }
        if digit(a, i) {
            return Ordering::Greater;
        }
        if digit(b, j) {
            return Ordering::Less;
        }
        if first_diff != Ordering::Equal {
            return first_diff;
        }
    }
    Ordering::Equal
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| verrevcmp(&self.upstream, &other.upstream))
            .then_with(|| verrevcmp(&self.revision, &other.revision))
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Version {}

impl FromStr for Version {
    type Err = VersionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse(s)
    }
}

/// dpkg's canonical form: the epoch only when non-zero, the revision only when non-empty.
impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.epoch > 0 {
            write!(f, "{}:", self.epoch)?;
        }
        f.write_str(&self.upstream)?;
        if !self.revision.is_empty() {
            write!(f, "-{}", self.revision)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use Ordering::{Equal, Greater, Less};

    struct Case {
        a: &'static str,
        b: &'static str,
        want: Ordering,
    }

    const fn case(a: &'static str, want: Ordering, b: &'static str) -> Case {
        Case { a, b, want }
    }

    /// Classic cases, from dpkg's own t/version tests and Debian policy.
    const CASES: &[Case] = &[
        case("1.0", Equal, "1.0"),
        case("0:1.0", Equal, "1.0"),
        case("1.0-0", Equal, "1.0"),
        case("1.0", Equal, "1.00"),
        case("1.0~rc1", Less, "1.0"),
        case("1.0~rc1", Less, "1.0~rc2"),
        case("1.0~~", Less, "1.0~"),
        case("1.0~~", Less, "1.0~~a"),
        case("1.0~~a", Less, "1.0~"),
        case("1.0~", Less, "1.0"),
        case("1:0.1", Greater, "2.0"),
        case("2:0.1", Greater, "1:9.9"),
        case("10:1", Greater, "9:1"),
        case("1.0-1", Less, "1.0-2"),
        case("1.0-1", Less, "1.0-1.1"),
        case("1.0-9", Less, "1.0-10"),
        case("1.0a", Less, "1.0b"),
        case("1.0", Less, "1.0a"),
        case("1.0a", Less, "1.0+"),
        case("1.0+", Less, "1.0."),
        case("1.0", Less, "1.0+dfsg"),
        case("1.0", Less, "1.0.1"),
        case("1.2", Less, "1.10"),
        case("1.0z", Less, "1.0."),
        case("0.9", Less, "1.0"),
        case("2.30-1", Greater, "2.4-1"),
        case("6.1.192-2", Greater, "6.1.176-1"),
        case("252.39-1~deb12u2", Greater, "252.38-1~deb12u1"),
        case("252.39-1~deb12u2", Less, "252.39-1"),
        case("252.39-1~deb12u2", Greater, "252.39-1~deb12u1"),
        case("1:1.35.0-4+deb12u1+b1", Greater, "1:1.35.0-4+deb12u1"),
        case("1:1.35.0-4+deb12u1+b1", Greater, "1.36.0-1"),
        case("1.0-a-1", Greater, "1.0-1"),
        case("3.0-1+b1", Greater, "3.0-1"),
    ];

    #[test]
    fn compare_table() {
        for c in CASES {
            assert_eq!(compare(c.a, c.b), c.want, "{} vs {}", c.a, c.b);
            assert_eq!(compare(c.b, c.a), c.want.reverse(), "{} vs {}", c.b, c.a);
            let (a, b) = (parse(c.a).unwrap(), parse(c.b).unwrap());
            assert_eq!(a.cmp(&b), c.want, "parsed {} vs {}", c.a, c.b);
        }
    }

    #[test]
    fn parse_parts() {
        let v = parse("1:1.35.0-4+deb12u1+b1").unwrap();
        assert_eq!(
            (v.epoch, v.upstream.as_str(), v.revision.as_str()),
            (1, "1.35.0", "4+deb12u1+b1")
        );
        assert_eq!(v.to_string(), "1:1.35.0-4+deb12u1+b1");
        let v = parse("2.0-rc1-3").unwrap();
        assert_eq!((v.upstream.as_str(), v.revision.as_str()), ("2.0-rc1", "3"));
        assert_eq!(parse("0:7").unwrap().to_string(), "7");
        assert_eq!("1.0-1".parse::<Version>().unwrap(), parse("1.0-1").unwrap());
    }

    #[test]
    fn parse_errors() {
        let v = |s: &str| s.to_string();
        let cases: &[(&str, VersionError)] = &[
            ("", VersionError::Empty),
            (
                "1.0 1",
                VersionError::Whitespace {
                    version: v("1.0 1"),
                },
            ),
            (
                "a:1.0",
                VersionError::BadEpoch {
                    version: v("a:1.0"),
                },
            ),
            (":1.0", VersionError::BadEpoch { version: v(":1.0") }),
            (
                "-1:1.0",
                VersionError::BadEpoch {
                    version: v("-1:1.0"),
                },
            ),
            (
                "99999999999:1",
                VersionError::BadEpoch {
                    version: v("99999999999:1"),
                },
            ),
            ("1:", VersionError::EmptyUpstream { version: v("1:") }),
            ("-1", VersionError::EmptyUpstream { version: v("-1") }),
            ("1.0-", VersionError::EmptyRevision { version: v("1.0-") }),
            ("a1.0", VersionError::UpstreamStart { version: v("a1.0") }),
            (
                "1.0_1",
                VersionError::BadChar {
                    version: v("1.0_1"),
                    ch: '_',
                },
            ),
            (
                "1.0-1:2",
                VersionError::BadEpoch {
                    version: v("1.0-1:2"),
                },
            ),
            (
                "1:1.0-1:2",
                VersionError::BadChar {
                    version: v("1:1.0-1:2"),
                    ch: ':',
                },
            ),
            (
                "1.0-1-",
                VersionError::EmptyRevision {
                    version: v("1.0-1-"),
                },
            ),
        ];
        for (input, want) in cases {
            assert_eq!(parse(input).unwrap_err(), *want, "{input:?}");
        }
    }

    fn version_strategy() -> impl Strategy<Value = String> {
        "([0-9]{1,2}:)?[0-9][0-9a-z.+~]{0,6}(-[0-9a-z.+~]{1,5})?"
    }

    proptest! {
        #[test]
        fn reflexive_and_antisymmetric(a in version_strategy(), b in version_strategy()) {
            prop_assert_eq!(compare(&a, &a), Equal);
            prop_assert_eq!(compare(&a, &b), compare(&b, &a).reverse());
        }

        #[test]
        fn any_string_antisymmetric(a in "\\PC{0,10}", b in "\\PC{0,10}") {
            prop_assert_eq!(compare(&a, &a), Equal);
            prop_assert_eq!(compare(&a, &b), compare(&b, &a).reverse());
        }

        #[test]
        fn transitive(a in version_strategy(), b in version_strategy(), c in version_strategy()) {
            let mut v = [a, b, c];
            v.sort_by(|x, y| compare(x, y));
            prop_assert_ne!(compare(&v[0], &v[2]), Greater);
        }

        #[test]
        fn parsed_order_agrees(a in version_strategy(), b in version_strategy()) {
            let (pa, pb) = (parse(&a).unwrap(), parse(&b).unwrap());
            prop_assert_eq!(pa.cmp(&pb), compare(&a, &b));
            prop_assert_eq!(compare(&pa.to_string(), &a), Equal);
        }
    }
}
