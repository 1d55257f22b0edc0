//! Where packages come from: one [`Candidate`] per available `.deb`, whatever the source, and
//! an [`IndexEntry`] when the dependency resolver also needs its relationship fields.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One available binary package, as an index (pool scan or apt `Packages`) describes it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Candidate {
    pub package: String,
    pub version: String,
    pub architecture: String,
    /// Size of the .deb in bytes.
    pub size: u64,
    /// Lower-case hex sha256 of the .deb.
    pub sha256: String,
    /// Where it is inside its source: the apt `Filename:` (`pool/main/b/busybox/...deb`) or
    /// the file name inside a pool directory.
    pub filename: String,
}

/// The control fields [`crate::resolve`] reads, in the spelling an [`IndexEntry`] stores them.
pub const RESOLVER_FIELDS: [&str; 9] = [
    "Breaks",
    "Conflicts",
    "Depends",
    "Essential",
    "Installed-Size",
    "Multi-Arch",
    "Pre-Depends",
    "Priority",
    "Provides",
];

/// A candidate with the control fields dependency resolution needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    pub candidate: Candidate,
    /// Those of [`RESOLVER_FIELDS`] the package has, keyed by their spelling there.
    pub fields: BTreeMap<String, String>,
}

impl IndexEntry {
    /// Keeps the [`RESOLVER_FIELDS`] of a paragraph (field names compared ignoring case).
    pub fn new(candidate: Candidate, paragraph: &BTreeMap<String, String>) -> Self {
        let fields = paragraph
            .iter()
            .filter_map(|(name, value)| {
                RESOLVER_FIELDS
                    .iter()
                    .find(|f| f.eq_ignore_ascii_case(name))
                    .map(|f| (f.to_string(), value.clone()))
            })
            .collect();
        IndexEntry { candidate, fields }
    }

    /// A field's value, if the package has it.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_resolver_fields_in_canonical_spelling() {
        let cand = Candidate {
            package: "a".into(),
            version: "1".into(),
            architecture: "all".into(),
            size: 1,
            sha256: "00".into(),
            filename: "a.deb".into(),
        };
        let para: BTreeMap<String, String> = [
            ("Package", "a"),
            ("pre-depends", "b"),
            ("DEPENDS", "c"),
            ("Description", "x"),
            ("Essential", "yes"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let e = IndexEntry::new(cand, &para);
        assert_eq!(
            e.fields.keys().collect::<Vec<_>>(),
            ["Depends", "Essential", "Pre-Depends"]
        );
        assert_eq!(e.field("Pre-Depends"), Some("b"));
        assert_eq!(e.field("Description"), None);
    }
}
