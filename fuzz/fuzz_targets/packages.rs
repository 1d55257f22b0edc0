//! An apt `Packages` index: deb822 paragraphs, their candidates and relationship fields, and the
//! dependency closure over them. Nothing panics; `render_packages` of what was read reads back
//! to the same entries; a relationship field that parses prints (`group_to_string`) as text
//! that parses to the same relations; dpkg's version order is reflexive and antisymmetric; and
//! the closure does not depend on the order of the index.

#![no_main]

use std::cmp::Ordering;

use libfuzzer_sys::fuzz_target;
use rootfs::apt::deb822;
use rootfs::relation;
use rootfs::resolve::{resolve, Request};
use rootfs::version;

const GROUP_FIELDS: [&str; 4] = ["Depends", "Pre-Depends", "Conflicts", "Breaks"];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(stanzas) = deb822::parse_stanzas(text) else {
        return;
    };
    for stanza in &stanzas {
        for (name, value) in stanza {
            if GROUP_FIELDS.iter().any(|f| f.eq_ignore_ascii_case(name)) {
                check_relations(value);
            } else if name.eq_ignore_ascii_case("Provides") {
                let _ = relation::parse_provides(value);
            } else if name.eq_ignore_ascii_case("Version") {
                let _ = version::parse(value);
                assert_eq!(version::compare(value, value), Ordering::Equal);
            }
        }
    }
    let _ = deb822::candidates(&stanzas);
    let Ok(entries) = deb822::index_entries(&stanzas) else {
        return;
    };

    let pairs: Vec<_> = entries
        .iter()
        .zip(&stanzas)
        .map(|(e, s)| (e.candidate.clone(), s.clone()))
        .collect();
    let rendered = deb822::render_packages(&pairs);
    let reread = deb822::parse_stanzas(&rendered)
        .and_then(|s| deb822::index_entries(&s))
        .unwrap_or_else(|e| panic!("a rendered index does not parse: {e}\n{rendered}"));
    assert_eq!(reread, entries, "{rendered}");

    for (a, b) in entries.iter().zip(entries.iter().skip(1)) {
        let (a, b) = (&a.candidate.version, &b.candidate.version);
        assert_eq!(version::compare(a, b), version::compare(b, a).reverse());
    }

    let mut roots: Vec<String> = entries
        .iter()
        .map(|e| e.candidate.package.clone())
        .collect();
    roots.sort();
    roots.dedup();
    roots.truncate(2);
    let request = Request {
        label: "fuzz",
        roots: &roots,
        essential: true,
        prefer: &[],
        exclude: &[],
        files_only: &[],
        arch: "amd64",
    };
    let forward = resolve(&entries, &request);
    let mut reversed = entries.clone();
    reversed.reverse();
    assert_eq!(
        resolve(&reversed, &request),
        forward,
        "the index order changed the closure"
    );
});

fn check_relations(value: &str) {
    let Ok(groups) = relation::parse(value) else {
        return;
    };
    let printed: Vec<String> = groups
        .iter()
        .map(|g| relation::group_to_string(g))
        .collect();
    let printed = printed.join(", ");
    let again = relation::parse(&printed)
        .unwrap_or_else(|e| panic!("{printed:?} (printed from {value:?}) does not parse: {e}"));
    assert_eq!(again, groups, "{value:?} printed as {printed:?}");
}
