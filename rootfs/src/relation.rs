//! Debian package relationship fields: `Depends`, `Pre-Depends`, `Conflicts`, `Breaks` and
//! `Provides` of binary packages, parsed as dpkg does.
//!
//! Syntax (Debian Policy §7.1, deb-control(5)): a comma-separated list of groups, each a
//! `|`-separated list of alternatives `name[:archqual] [(op version)]`. Whitespace may appear
//! between tokens, including line breaks of a folded field. Operators are `<<`, `<=`, `=`, `>=`,
//! `>>`, plus the obsolete `<` and `>`, which dpkg still reads as `<=` and `>=`. Architecture
//! restrictions (`[amd64]`) and build profiles (`<!nocheck>`) belong to source packages only;
//! dpkg refuses them in a binary package, and so do we.
//!
//! Matching a relation against a package (name, version, architecture, `Multi-Arch`, the
//! `Provides` of the package) is in [`crate::resolve`]; this module is text only.

use std::cmp::Ordering;
use std::fmt;

use crate::version;

/// The `:qualifier` after a package name in a relation.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum ArchQualifier {
    /// No qualifier: the dependent package's own architecture (or `all`).
    None,
    /// `:any`: any architecture, if the target is `Multi-Arch: allowed`.
    Any,
    /// `:native`: the native architecture.
    Native,
    /// `:<arch>`, e.g. `:amd64`.
    Arch(String),
}

/// A version comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Op {
    /// `<<`
    Lt,
    /// `<=` (also the obsolete `<`)
    Le,
    /// `=`
    Eq,
    /// `>=` (also the obsolete `>`)
    Ge,
    /// `>>`
    Gt,
}

impl Op {
    /// Whether `ordering` (of the candidate's version against the constraint's) passes.
    pub fn accepts(self, ordering: Ordering) -> bool {
        match self {
            Op::Lt => ordering == Ordering::Less,
            Op::Le => ordering != Ordering::Greater,
            Op::Eq => ordering == Ordering::Equal,
            Op::Ge => ordering != Ordering::Less,
            Op::Gt => ordering == Ordering::Greater,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Op::Lt => "<<",
            Op::Le => "<=",
            Op::Eq => "=",
            Op::Ge => ">=",
            Op::Gt => ">>",
        }
    }
}

/// `(op version)`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Constraint {
    pub op: Op,
    pub version: String,
}

impl Constraint {
    /// Whether `version` satisfies the constraint (dpkg's comparison).
    pub fn satisfied_by(&self, version: &str) -> bool {
        self.op.accepts(version::compare(version, &self.version))
    }
}

/// One alternative: `name[:arch] [(op version)]`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Relation {
    pub name: String,
    pub arch: ArchQualifier,
    pub constraint: Option<Constraint>,
}

/// A group of alternatives (`a | b`): any one satisfies it.
pub type Alternatives = Vec<Relation>;

/// Why a relationship field could not be parsed; `text` is the offending item.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?}: {reason}")]
pub struct RelationError {
    pub text: String,
    pub reason: String,
}

/// Parse a `Depends`-like field into its groups of alternatives.
///
/// Empty items (a trailing comma, `a, , b`) are skipped, as apt does; anything else that is not
/// a relation is an error naming it.
pub fn parse(field: &str) -> Result<Vec<Alternatives>, RelationError> {
    field
        .split(',')
        .filter(|group| !group.trim().is_empty())
        .map(|group| {
            group
                .split('|')
                .map(parse_one)
                .collect::<Result<Alternatives, _>>()
        })
        .collect()
}

/// Parse a `Provides` field: a list of `name` or `name (= version)`, no alternatives, no
/// architecture qualifier, and `=` as the only operator (Debian Policy §7.5).
pub fn parse_provides(field: &str) -> Result<Vec<(String, Option<String>)>, RelationError> {
    let mut out = Vec::new();
    for group in parse(field)? {
        let bad = |reason: &str| RelationError {
            text: group
                .iter()
                .map(Relation::to_string)
                .collect::<Vec<_>>()
                .join(" | "),
            reason: reason.to_owned(),
        };
        let [rel] = group.as_slice() else {
            return Err(bad("Provides takes no alternatives"));
        };
        if rel.arch != ArchQualifier::None {
            return Err(bad("Provides takes no architecture qualifier"));
        }
        match &rel.constraint {
            None => out.push((rel.name.clone(), None)),
            Some(c) if c.op == Op::Eq => out.push((rel.name.clone(), Some(c.version.clone()))),
            Some(_) => return Err(bad("a versioned Provides must use `=`")),
        }
    }
    Ok(out)
}

fn parse_one(item: &str) -> Result<Relation, RelationError> {
    let text = item.trim();
    let bad = |reason: &str| RelationError {
        text: text.to_owned(),
        reason: reason.to_owned(),
    };
    if text.is_empty() {
        return Err(bad("empty alternative"));
    }
    if text.contains(['[', ']']) {
        return Err(bad(
            "architecture restrictions are not allowed in a binary package",
        ));
    }
    if text.contains(['<', '>']) && !text.contains('(') {
        return Err(bad("build profiles are not allowed in a binary package"));
    }
    let (head, constraint) = match text.split_once('(') {
        Some((head, rest)) => {
            let inner = rest
                .strip_suffix(')')
                .ok_or_else(|| bad("expected `)` at the end"))?;
            (
                head.trim(),
                Some(parse_constraint(inner).map_err(|r| bad(&r))?),
            )
        }
        None => (text, None),
    };
    let (name, arch) = match head.split_once(':') {
        Some((name, qual)) => (
            name.trim(),
            parse_qualifier(qual.trim()).map_err(|r| bad(&r))?,
        ),
        None => (head, ArchQualifier::None),
    };
    if !is_package_name(name) {
        return Err(bad(&format!("{name:?} is not a package name")));
    }
    Ok(Relation {
        name: name.to_owned(),
        arch,
        constraint,
    })
}

fn parse_qualifier(qual: &str) -> Result<ArchQualifier, String> {
    match qual {
        "any" => Ok(ArchQualifier::Any),
        "native" => Ok(ArchQualifier::Native),
        q if !q.is_empty()
            && q.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') =>
        {
            Ok(ArchQualifier::Arch(q.to_owned()))
        }
        q => Err(format!("{q:?} is not an architecture qualifier")),
    }
}

fn parse_constraint(inner: &str) -> Result<Constraint, String> {
    let inner = inner.trim();
    let ops: [(&str, Op); 7] = [
        ("<<", Op::Lt),
        ("<=", Op::Le),
        (">=", Op::Ge),
        (">>", Op::Gt),
        ("=", Op::Eq),
        ("<", Op::Le),
        (">", Op::Ge),
    ];
    let (op, rest) = ops
        .iter()
        .find_map(|(s, op)| inner.strip_prefix(s).map(|rest| (*op, rest)))
        .ok_or_else(|| format!("{inner:?} does not start with <<, <=, =, >= or >>"))?;
    let version = rest.trim();
    version::parse(version).map_err(|e| e.to_string())?;
    Ok(Constraint {
        op,
        version: version.to_owned(),
    })
}

/// Debian Policy §5.6.1, plus upper case, which old packages in the archive still carry.
pub fn is_package_name(name: &str) -> bool {
    name.len() >= 2
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

/// `name[:qual] (op version)`, as in a control file.
impl fmt::Display for Relation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        match &self.arch {
            ArchQualifier::None => {}
            ArchQualifier::Any => f.write_str(":any")?,
            ArchQualifier::Native => f.write_str(":native")?,
            ArchQualifier::Arch(a) => write!(f, ":{a}")?,
        }
        if let Some(c) = &self.constraint {
            write!(f, " ({} {})", c.op.as_str(), c.version)?;
        }
        Ok(())
    }
}

/// A group as a control file writes it: `a (>= 1) | b`.
pub fn group_to_string(group: &[Relation]) -> String {
    group
        .iter()
        .map(Relation::to_string)
        .collect::<Vec<_>>()
        .join(" | ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rel(name: &str, arch: ArchQualifier, c: Option<(Op, &str)>) -> Relation {
        Relation {
            name: name.into(),
            arch,
            constraint: c.map(|(op, v)| Constraint {
                op,
                version: v.into(),
            }),
        }
    }

    #[test]
    fn parses_real_fields() {
        struct Case {
            input: &'static str,
            want: Vec<Vec<Relation>>,
        }
        use ArchQualifier as A;
        let cases = [
            Case {
                input: "libc6 (>= 2.34), libssl3 (>= 3.0.9)",
                want: vec![
                    vec![rel("libc6", A::None, Some((Op::Ge, "2.34")))],
                    vec![rel("libssl3", A::None, Some((Op::Ge, "3.0.9")))],
                ],
            },
            Case {
                // the kernel's, folded over two lines as in a Packages file
                input: "kmod, linux-base (>= 4.3~),\n initramfs-tools (>= 0.120+deb8u2) | linux-initramfs-tool",
                want: vec![
                    vec![rel("kmod", A::None, None)],
                    vec![rel("linux-base", A::None, Some((Op::Ge, "4.3~")))],
                    vec![
                        rel("initramfs-tools", A::None, Some((Op::Ge, "0.120+deb8u2"))),
                        rel("linux-initramfs-tool", A::None, None),
                    ],
                ],
            },
            Case {
                input: "python3:any, perl:native, libfoo:amd64 (= 1:2.0-1)",
                want: vec![
                    vec![rel("python3", A::Any, None)],
                    vec![rel("perl", A::Native, None)],
                    vec![rel("libfoo", A::Arch("amd64".into()), Some((Op::Eq, "1:2.0-1")))],
                ],
            },
            Case {
                input: "aa(<<1),bb( >> 2 ),cc (<3),dd (>4), ee (<= 5)|ff(=6),",
                want: vec![
                    vec![rel("aa", A::None, Some((Op::Lt, "1")))],
                    vec![rel("bb", A::None, Some((Op::Gt, "2")))],
                    vec![rel("cc", A::None, Some((Op::Le, "3")))],
                    vec![rel("dd", A::None, Some((Op::Ge, "4")))],
                    vec![
                        rel("ee", A::None, Some((Op::Le, "5"))),
                        rel("ff", A::None, Some((Op::Eq, "6"))),
                    ],
                ],
            },
            Case {
                input: "",
                want: vec![],
            },
        ];
        for c in cases {
            assert_eq!(parse(c.input).unwrap(), c.want, "{}", c.input);
        }
    }

    #[test]
    fn errors_name_the_item() {
        let cases = [
            ("libc6 (>= 2.34", "expected `)`"),
            ("libc6 (~ 2)", "does not start with"),
            ("libc6 (>= )", "version string is empty"),
            ("libc6 (>= a1)", "does not start with a digit"),
            ("libc6 [amd64]", "architecture restrictions"),
            ("libc6 <!nocheck>", "build profiles"),
            ("libc6:", "not an architecture qualifier"),
            ("libc6:AMD64", "not an architecture qualifier"),
            ("lib c6", "is not a package name"),
            ("libc6 | ", "empty alternative"),
            ("_x", "is not a package name"),
            ("a (>= 1)", "is not a package name"),
        ];
        for (input, want) in cases {
            let err = parse(input).unwrap_err().to_string();
            assert!(err.contains(want), "{input}: {err}");
        }
    }

    #[test]
    fn provides() {
        assert_eq!(
            parse_provides("mail-transport-agent, libfoo-abi-2 (= 2.1-1), awk").unwrap(),
            [
                ("mail-transport-agent".to_string(), None),
                ("libfoo-abi-2".to_string(), Some("2.1-1".to_string())),
                ("awk".to_string(), None),
            ]
        );
        for (input, want) in [
            ("a1 | b1", "no alternatives"),
            ("a1:any", "no architecture qualifier"),
            ("a1 (>= 1)", "must use `=`"),
        ] {
            let err = parse_provides(input).unwrap_err().to_string();
            assert!(err.contains(want), "{input}: {err}");
        }
    }

    #[test]
    fn operators() {
        let c = |op, v: &str| Constraint {
            op,
            version: v.into(),
        };
        assert!(c(Op::Ge, "3.0.9").satisfied_by("3.0.11-1~deb12u2"));
        assert!(!c(Op::Ge, "3.0.9").satisfied_by("3.0.8"));
        assert!(c(Op::Lt, "2").satisfied_by("2~rc1"));
        assert!(!c(Op::Lt, "2").satisfied_by("2"));
        assert!(c(Op::Le, "2").satisfied_by("2"));
        assert!(c(Op::Eq, "1.0").satisfied_by("0:1.0-0"));
        assert!(c(Op::Gt, "1.0").satisfied_by("1.0+b1"));
        assert!(!c(Op::Gt, "1.0").satisfied_by("1.0"));
    }

    proptest! {
        #[test]
        fn display_round_trips(
            groups in proptest::collection::vec(
                proptest::collection::vec(
                    (
                        "[a-z0-9][a-z0-9+.-]{1,12}",
                        prop_oneof![
                            Just(ArchQualifier::None),
                            Just(ArchQualifier::Any),
                            Just(ArchQualifier::Native),
                            Just(ArchQualifier::Arch("amd64".into())),
                        ],
                        proptest::option::of((
                            proptest::sample::select(vec![Op::Lt, Op::Le, Op::Eq, Op::Ge, Op::Gt]),
                            "([0-9]:)?[0-9][0-9a-z.+~]{0,6}(-[0-9a-z.+~]{1,4})?",
                        )),
                    ),
                    1..4,
                ),
                0..5,
            )
        ) {
            let groups: Vec<Vec<Relation>> = groups
                .into_iter()
                .map(|g| g.into_iter().map(|(name, arch, c)| Relation {
                    name,
                    arch,
                    constraint: c.map(|(op, version)| Constraint { op, version }),
                }).collect())
                .collect();
            let text = groups.iter().map(|g| group_to_string(g)).collect::<Vec<_>>().join(", ");
            prop_assert_eq!(parse(&text).unwrap(), groups);
        }
    }
}
