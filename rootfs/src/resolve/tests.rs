//! Resolver tests on small synthetic indexes: one rule per test, then properties over random
//! indexes (closure, no conflicts, independence from index order).

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;

/// A package of architecture amd64 with the given control fields.
fn pkg(name: &str, version: &str, fields: &[(&str, &str)]) -> IndexEntry {
    pkg_arch(name, version, "amd64", fields)
}

fn pkg_arch(name: &str, version: &str, arch: &str, fields: &[(&str, &str)]) -> IndexEntry {
    use sha2::{Digest, Sha256};
    let candidate = Candidate {
        package: name.into(),
        version: version.into(),
        architecture: arch.into(),
        size: 1000,
        sha256: hex::encode(Sha256::digest(format!(
            "{name} {version} {arch} {fields:?}"
        ))),
        filename: format!("{name}_{version}_{arch}.deb"),
    };
    let para: BTreeMap<String, String> = fields
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    IndexEntry::new(candidate, &para)
}

struct Req {
    roots: Vec<String>,
    essential: bool,
    prefer: Vec<String>,
    exclude: Vec<String>,
    files_only: Vec<String>,
}

fn req(roots: &[&str]) -> Req {
    Req {
        roots: roots.iter().map(|s| s.to_string()).collect(),
        essential: false,
        prefer: Vec::new(),
        exclude: Vec::new(),
        files_only: Vec::new(),
    }
}

impl Req {
    fn run(&self, index: &[IndexEntry]) -> Result<Resolution, ResolveError> {
        resolve(
            index,
            &Request {
                label: "img",
                roots: &self.roots,
                essential: self.essential,
                prefer: &self.prefer,
                exclude: &self.exclude,
                files_only: &self.files_only,
                arch: "amd64",
            },
        )
    }

    /// `name version` of each selected package, sorted.
    fn names(&self, index: &[IndexEntry]) -> Vec<String> {
        match self.run(index) {
            Ok(r) => r
                .packages
                .iter()
                .map(|p| format!("{} {}", p.candidate.package, p.candidate.version))
                .collect(),
            Err(e) => panic!("{e}"),
        }
    }

    fn error(&self, index: &[IndexEntry]) -> String {
        match self.run(index) {
            Ok(r) => panic!("resolved: {r:?}"),
            Err(e) => e.to_string(),
        }
    }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn closure_follows_depends_and_pre_depends() {
    let index = [
        pkg(
            "app",
            "1",
            &[
                ("Depends", "libfoo (>= 1), tool"),
                ("Pre-Depends", "init-helper"),
            ],
        ),
        pkg("libfoo", "1.2", &[("Depends", "libc6 (>= 2.34)")]),
        pkg("tool", "3", &[]),
        pkg("init-helper", "1", &[("Depends", "libc6")]),
        pkg("libc6", "2.36-9", &[]),
        pkg("unrelated", "1", &[]),
        pkg("app-doc", "1", &[]),
    ];
    let index = [
        index.to_vec(),
        vec![pkg("rec", "1", &[])],
        vec![pkg(
            "app2",
            "1",
            &[("Recommends", "rec"), ("Suggests", "app-doc")],
        )],
    ]
    .concat();
    assert_eq!(
        req(&["app", "app2"]).names(&index),
        strings(&[
            "app 1",
            "app2 1",
            "init-helper 1",
            "libc6 2.36-9",
            "libfoo 1.2",
            "tool 3"
        ])
    );
    let r = req(&["app"]).run(&index).unwrap();
    let libc = r
        .packages
        .iter()
        .find(|p| p.candidate.package == "libc6")
        .unwrap();
    assert_eq!(libc.reason, Reason::Dependency);
    assert_eq!(
        libc.required_by.iter().collect::<Vec<_>>(),
        ["init-helper", "libfoo"]
    );
    let app = r
        .packages
        .iter()
        .find(|p| p.candidate.package == "app")
        .unwrap();
    assert_eq!(app.reason, Reason::Root);
    assert!(app.required_by.is_empty());
}

#[test]
fn highest_satisfying_version_wins() {
    let index = [
        pkg("app", "1", &[("Depends", "lib (<< 2.0)")]),
        pkg("lib", "1.5", &[]),
        pkg("lib", "1.9~rc1", &[]),
        pkg("lib", "2.0", &[]),
        pkg("lib", "1:0.1", &[]),
        pkg("other", "1", &[("Depends", "lib")]),
    ];
    assert_eq!(
        req(&["app"]).names(&index),
        strings(&["app 1", "lib 1.9~rc1"])
    );
    // Unconstrained: the epoch makes 1:0.1 the highest.
    assert_eq!(
        req(&["other"]).names(&index),
        strings(&["lib 1:0.1", "other 1"])
    );
}

#[test]
fn every_operator() {
    let versions = ["0.9", "1.0", "1.0+b1", "1.1"];
    let cases = [
        ("<< 1.0", "0.9"),
        ("<= 1.0", "1.0"),
        ("= 1.0", "1.0"),
        (">= 1.0", "1.1"),
        (">> 1.0+b1", "1.1"),
        ("< 1.0+b1", "1.0+b1"),
        ("> 1.0", "1.1"),
    ];
    for (constraint, want) in cases {
        let mut index: Vec<IndexEntry> = versions.iter().map(|v| pkg("lib", v, &[])).collect();
        index.push(pkg(
            "app",
            "1",
            &[("Depends", &format!("lib ({constraint})"))],
        ));
        assert_eq!(
            req(&["app"]).names(&index),
            strings(&["app 1", &format!("lib {want}")]),
            "{constraint}"
        );
    }
}

#[test]
fn first_satisfiable_alternative() {
    let index = [
        pkg(
            "app",
            "1",
            &[("Depends", "missing | old (>= 2) | good | better")],
        ),
        pkg("old", "1", &[]),
        pkg("good", "1", &[]),
        pkg("better", "1", &[]),
    ];
    assert_eq!(req(&["app"]).names(&index), strings(&["app 1", "good 1"]));
}

#[test]
fn an_already_selected_alternative_is_preferred() {
    let index = [
        pkg("app", "1", &[("Depends", "mawk | gawk")]),
        pkg("mawk", "1", &[]),
        pkg("gawk", "1", &[]),
    ];
    assert_eq!(
        req(&["gawk", "app"]).names(&index),
        strings(&["app 1", "gawk 1"])
    );
}

#[test]
fn real_package_before_providers_and_providers_by_rule() {
    let index = [
        pkg("app", "1", &[("Depends", "awk")]),
        pkg("awk", "1", &[]),
        pkg("mawk", "1", &[("Provides", "awk")]),
        pkg("gawk", "1", &[("Provides", "awk")]),
        pkg("app2", "1", &[("Depends", "mta")]),
        pkg("postfix", "3", &[("Provides", "mta")]),
        pkg("exim4", "4", &[("Provides", "mta")]),
        pkg("dma", "0.13", &[("Provides", "mta")]),
    ];
    assert_eq!(req(&["app"]).names(&index), strings(&["app 1", "awk 1"]));
    // No real `mta`: providers by name.
    assert_eq!(
        req(&["app2"]).names(&index),
        strings(&["app2 1", "dma 0.13"])
    );
    // prefer: wins over name order, in its own order.
    let mut r = req(&["app2"]);
    r.prefer = strings(&["nonexistent", "postfix", "exim4"]);
    assert_eq!(r.names(&index), strings(&["app2 1", "postfix 3"]));
    // Without prefer: Essential first, then Priority, then name.
    let index2 = [
        pkg("app", "1", &[("Depends", "awk")]),
        pkg(
            "gawk",
            "1",
            &[("Provides", "awk"), ("Priority", "optional")],
        ),
        pkg(
            "mawk",
            "1",
            &[("Provides", "awk"), ("Priority", "required")],
        ),
        pkg("aawk", "1", &[("Provides", "awk")]),
        pkg("app2", "1", &[("Depends", "sh")]),
        pkg("ash", "1", &[("Provides", "sh"), ("Priority", "required")]),
        pkg("dash", "1", &[("Provides", "sh"), ("Essential", "yes")]),
    ];
    assert_eq!(req(&["app"]).names(&index2), strings(&["app 1", "mawk 1"]));
    assert_eq!(
        req(&["app2"]).names(&index2),
        strings(&["app2 1", "dash 1"])
    );
    let mut r = req(&["app"]);
    r.prefer = strings(&["gawk"]);
    assert_eq!(r.names(&index2), strings(&["app 1", "gawk 1"]));
    // An already selected provider satisfies it.
    assert_eq!(
        req(&["exim4", "app2"]).names(&index),
        strings(&["app2 1", "exim4 4"])
    );
}

#[test]
fn versioned_provides() {
    let index = [
        pkg("app", "1", &[("Depends", "api (>= 2)")]),
        pkg("impl-a", "1", &[("Provides", "api (= 1)")]),
        pkg("impl-b", "1", &[("Provides", "api")]),
        pkg("impl-c", "1", &[("Provides", "api (= 2.5)")]),
        pkg("app2", "1", &[("Depends", "api")]),
    ];
    // Unversioned provides never satisfy a versioned dependency.
    assert_eq!(req(&["app"]).names(&index), strings(&["app 1", "impl-c 1"]));
    // Any provides satisfies an unversioned one; name order picks.
    assert_eq!(
        req(&["app2"]).names(&index),
        strings(&["app2 1", "impl-a 1"])
    );
    let err = req(&["app"]).error(&index[..3]);
    assert!(
        err.contains("api is a virtual package, and none of its providers (impl-a, impl-b)"),
        "{err}"
    );
}

#[test]
fn architecture_qualifiers() {
    let index = [
        pkg(
            "app",
            "1",
            &[("Depends", "python3:any, perl:native, libx:amd64")],
        ),
        pkg("python3", "3.11", &[("Multi-Arch", "allowed")]),
        pkg("perl", "5.36", &[]),
        pkg("libx", "1", &[]),
        pkg_arch("data", "1", "all", &[]),
        pkg("needs-data", "1", &[("Depends", "data")]),
        pkg("bad-any", "1", &[("Depends", "perl:any")]),
        pkg("bad-arch", "1", &[("Depends", "libx:i386")]),
        pkg_arch("armonly", "1", "arm64", &[]),
        pkg("needs-arm", "1", &[("Depends", "armonly")]),
    ];
    assert_eq!(
        req(&["app"]).names(&index),
        strings(&["app 1", "libx 1", "perl 5.36", "python3 3.11"])
    );
    assert_eq!(
        req(&["needs-data"]).names(&index),
        strings(&["data 1", "needs-data 1"])
    );
    let err = req(&["bad-any"]).error(&index);
    assert!(
        err.contains("perl is not Multi-Arch: allowed, so perl:any cannot match it"),
        "{err}"
    );
    let err = req(&["bad-arch"]).error(&index);
    assert!(err.contains("only amd64 packages are considered"), "{err}");
    let err = req(&["needs-arm"]).error(&index);
    assert!(
        err.contains("armonly exists only for arm64, not amd64"),
        "{err}"
    );
    let err = req(&["armonly"]).error(&index);
    assert!(
        err.contains("img needs armonly, no candidate: armonly exists only for arm64"),
        "{err}"
    );
}

#[test]
fn cycles_terminate() {
    let index = [
        pkg("a1", "1", &[("Depends", "b1")]),
        pkg("b1", "1", &[("Pre-Depends", "c1")]),
        pkg("c1", "1", &[("Depends", "a1 (= 1), c1")]),
    ];
    let r = req(&["a1"]).run(&index).unwrap();
    assert_eq!(r.packages.len(), 3);
    let a = &r.packages[0];
    assert_eq!(a.required_by.iter().collect::<Vec<_>>(), ["c1"]);
    // A package depending on itself is not its own dependent.
    assert!(r.packages[2].required_by.contains("b1") && !r.packages[2].required_by.contains("c1"));
}

#[test]
fn unsatisfiable_names_the_chain() {
    let index = [
        pkg(
            "openssh-server",
            "1:9.2p1-2+deb12u3",
            &[("Depends", "openssh-client")],
        ),
        pkg(
            "openssh-client",
            "1:9.2p1-2+deb12u3",
            &[("Depends", "libssl3 (>= 3.0.9)")],
        ),
        pkg("libssl3", "3.0.8", &[]),
    ];
    let mut r = req(&["openssh-server"]);
    assert_eq!(
        r.error(&index),
        "cannot resolve: img needs openssh-server, openssh-server (1:9.2p1-2+deb12u3) depends \
         on openssh-client, openssh-client (1:9.2p1-2+deb12u3) depends on libssl3 (>= 3.0.9), \
         no candidate: libssl3 3.0.8 is too old"
    );
    let index = [
        pkg(
            "openssh-server",
            "1:9.2p1-2+deb12u3",
            &[("Depends", "libssl3 (>= 3.0.9)")],
        ),
        pkg("libssl3", "3.0.8", &[]),
        pkg("libssl3", "3.0.7", &[]),
    ];
    assert_eq!(
        r.error(&index),
        "cannot resolve: img needs openssh-server, openssh-server (1:9.2p1-2+deb12u3) depends \
         on libssl3 (>= 3.0.9), no candidate: libssl3 3.0.8, 3.0.7 are too old"
    );
    let index = [
        pkg("app", "1", &[("Depends", "lib (<< 1) | nothere")]),
        pkg("lib", "2", &[]),
    ];
    r.roots = strings(&["app"]);
    assert_eq!(
        r.error(&index),
        "cannot resolve: img needs app, app (1) depends on lib (<< 1) | nothere, no candidate: \
         lib 2 is too new; no package nothere"
    );
    r.roots = strings(&["ghost"]);
    assert_eq!(
        r.error(&index),
        "cannot resolve: img needs ghost, no candidate: no package ghost"
    );
}

#[test]
fn a_selected_version_is_never_replaced() {
    let index = [
        pkg("app", "1", &[("Depends", "lib (= 1)")]),
        pkg("lib", "1", &[]),
        pkg("lib", "2", &[]),
    ];
    let err = req(&["lib", "app"]).error(&index);
    assert!(
        err.contains("app (1) depends on lib (= 1), no candidate: lib 2 is already selected and does not satisfy lib (= 1)"),
        "{err}"
    );
}

#[test]
fn virtual_root_is_refused_with_its_providers() {
    let index = [
        pkg("mawk", "1", &[("Provides", "awk")]),
        pkg("gawk", "1", &[("Provides", "awk")]),
    ];
    let err = req(&["awk"]).error(&index);
    assert!(
        err.contains("awk is a virtual package: list one of its providers (gawk, mawk)"),
        "{err}"
    );
}

#[test]
fn conflicts_and_breaks_name_both_packages() {
    let index = [
        pkg("a1", "1", &[("Depends", "b1")]),
        pkg("b1", "2", &[]),
        pkg("c1", "1", &[("Conflicts", "b1 (<< 3)")]),
        pkg("d1", "1", &[("Breaks", "virt")]),
        pkg("e1", "1", &[("Provides", "virt")]),
    ];
    let err = req(&["a1", "c1"]).error(&index);
    assert_eq!(
        err,
        "conflict between c1 and b1: c1 (1) conflicts with b1 (<< 3), which b1 (2) is; \
         c1: img needs c1; b1: img needs a1, a1 (1) depends on b1"
    );
    let err = req(&["e1", "d1"]).error(&index);
    assert!(
        err.starts_with("conflict between d1 and e1: d1 (1) breaks virt, which e1 (1) provides"),
        "{err}"
    );
    // Version outside the range, or a package conflicting with what it provides itself: fine.
    let index = [
        pkg("b1", "3", &[]),
        pkg(
            "c1",
            "1",
            &[("Conflicts", "b1 (<< 3), mta"), ("Provides", "mta")],
        ),
    ];
    assert_eq!(req(&["b1", "c1"]).names(&index), strings(&["b1 3", "c1 1"]));
}

#[test]
fn conflicting_candidates_are_avoided_when_possible() {
    let index = [
        pkg("app", "1", &[("Depends", "mta")]),
        pkg(
            "aaa-mta",
            "1",
            &[("Provides", "mta"), ("Conflicts", "tool")],
        ),
        pkg("bbb-mta", "1", &[("Provides", "mta")]),
        pkg("tool", "1", &[]),
    ];
    assert_eq!(
        req(&["tool", "app"]).names(&index),
        strings(&["app 1", "bbb-mta 1", "tool 1"])
    );
}

#[test]
fn essential_set_and_exclusions() {
    let index = [
        pkg(
            "app",
            "1",
            &[("Depends", "initramfs-tools | linux-initramfs-tool, kmod")],
        ),
        pkg("initramfs-tools", "1", &[("Depends", "busybox")]),
        pkg("kmod", "30", &[]),
        pkg("busybox", "1", &[]),
        pkg(
            "bash",
            "5",
            &[("Essential", "yes"), ("Depends", "base-files")],
        ),
        pkg("base-files", "12", &[("Essential", "yes")]),
        pkg("dpkg", "1.21", &[("Essential", "yes")]),
        pkg("old-ess", "1", &[("Essential", "yes")]),
        pkg("old-ess", "2", &[]),
    ];
    let mut r = req(&["app"]);
    r.exclude = strings(&["initramfs-tools"]);
    assert_eq!(r.names(&index), strings(&["app 1", "kmod 30"]));
    r.essential = true;
    r.exclude.push("dpkg".into());
    let got = r.run(&index).unwrap();
    let reasons: Vec<(String, Reason)> = got
        .packages
        .iter()
        .map(|p| (p.candidate.package.clone(), p.reason))
        .collect();
    assert_eq!(
        reasons,
        [
            ("app".to_string(), Reason::Root),
            ("base-files".to_string(), Reason::Essential),
            ("bash".to_string(), Reason::Essential),
            ("kmod".to_string(), Reason::Dependency),
        ]
    );
    r.roots.push("dpkg".into());
    assert_eq!(
        r.error(&index),
        "cannot resolve: dpkg is both requested and excluded"
    );
}

#[test]
fn malformed_fields_are_reported_only_when_used() {
    let index = [
        pkg("app", "1", &[("Depends", "lib")]),
        pkg("lib", "1", &[("Depends", "libc6 (>= )")]),
        pkg("broken-elsewhere", "1", &[("Depends", "x [amd64]")]),
    ];
    let err = req(&["app"]).error(&index);
    assert!(
        err.starts_with("cannot resolve: img needs app, app (1) depends on lib: field Depends of lib (1) is malformed:"),
        "{err}"
    );
    let index = [
        pkg("app", "1", &[]),
        pkg("broken-elsewhere", "1", &[("Depends", "x [amd64]")]),
    ];
    assert_eq!(req(&["app"]).names(&index), strings(&["app 1"]));
}

#[test]
fn sizes_are_summed() {
    let index = [
        pkg("app", "1", &[("Depends", "lib"), ("Installed-Size", "100")]),
        pkg("lib", "1", &[("Installed-Size", "23")]),
    ];
    let r = req(&["app"]).run(&index).unwrap();
    assert_eq!(r.installed_size_kib(), 123);
    assert_eq!(r.download_bytes(), 2000);
}

// ---------------------------------------------------------------------------------------
// Properties over random indexes.

const NAMES: [&str; 8] = ["pa", "pb", "pc", "pd", "pe", "pf", "pg", "ph"];
const VIRTUALS: [&str; 2] = ["va", "vb"];

fn arb_relation(with_virtual: bool) -> impl Strategy<Value = String> {
    let names: Vec<&str> = if with_virtual {
        NAMES.iter().chain(VIRTUALS.iter()).copied().collect()
    } else {
        NAMES.to_vec()
    };
    (
        proptest::sample::select(names),
        proptest::option::weighted(
            0.3,
            (
                proptest::sample::select(vec!["<<", "<=", "=", ">=", ">>"]),
                1u8..4,
            ),
        ),
    )
        .prop_map(|(name, c)| match c {
            Some((op, v)) => format!("{name} ({op} {v})"),
            None => name.to_string(),
        })
}

fn arb_field(max_groups: usize, with_virtual: bool) -> impl Strategy<Value = String> {
    proptest::collection::vec(
        proptest::collection::vec(arb_relation(with_virtual), 1..3)
            .prop_map(|alts| alts.join(" | ")),
        0..max_groups,
    )
    .prop_map(|groups| groups.join(", "))
}

/// Every name has one or two versions (so most requests resolve), with random Depends over
/// real and virtual names, now and then a Conflicts, a Provides or Essential.
fn arb_index() -> impl Strategy<Value = Vec<IndexEntry>> {
    let one = |name: &'static str| {
        (
            1u8..4,
            arb_field(3, true),
            proptest::option::weighted(0.2, arb_field(2, false)),
            proptest::option::of((
                proptest::sample::select(VIRTUALS.to_vec()),
                proptest::option::of(1u8..4),
            )),
            proptest::bool::weighted(0.15),
        )
            .prop_map(move |(version, depends, conflicts, provides, essential)| {
                let mut fields = vec![("Depends", depends)];
                if let Some(c) = conflicts.filter(|c| !c.is_empty()) {
                    fields.push(("Conflicts", c));
                }
                if let Some((v, ver)) = provides {
                    let p = match ver {
                        Some(ver) => format!("{v} (= {ver})"),
                        None => v.to_string(),
                    };
                    fields.push(("Provides", p));
                }
                if essential {
                    fields.push(("Essential", "yes".to_string()));
                }
                let fields: Vec<(&str, &str)> =
                    fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
                pkg(name, &version.to_string(), &fields)
            })
    };
    let per_name: Vec<_> = NAMES
        .iter()
        .map(|name| proptest::collection::vec(one(name), 1..3))
        .collect();
    per_name.prop_map(|lists| lists.into_iter().flatten().collect())
}

/// Every dependency group of every selected package is satisfied inside the selection.
fn check_closed(index: &[IndexEntry], roots: &[String], r: &Resolution) -> Result<(), String> {
    let u = Universe::new(index, "amd64");
    let chosen: Vec<&Pkg> = r
        .packages
        .iter()
        .map(|p| {
            u.pkgs
                .iter()
                .find(|k| k.entry.candidate == p.candidate)
                .expect("selected from the index")
        })
        .collect();
    for root in roots {
        if !chosen.iter().any(|p| p.name() == root) {
            return Err(format!("root {root} missing"));
        }
    }
    for p in &chosen {
        let rels = p.relations.as_ref().map_err(|e| format!("{e:?}"))?;
        for group in rels.depends.iter().chain(&rels.pre_depends) {
            let ok = group
                .iter()
                .any(|rel| chosen.iter().any(|q| u.satisfies(rel, q)));
            if !ok {
                return Err(format!("{} {:?} unsatisfied", p.name(), group));
            }
        }
        for rel in rels.conflicts.iter() {
            for q in &chosen {
                if q.name() != p.name() && (u.is(rel, q, true) || u.provides(rel, q, true)) {
                    return Err(format!("{} conflicts with {}", p.name(), q.name()));
                }
            }
        }
    }
    let mut names: Vec<&str> = chosen.iter().map(|p| p.name()).collect();
    let sorted = names.clone();
    names.dedup();
    if names != sorted || !sorted.windows(2).all(|w| w[0] < w[1]) {
        return Err("names not sorted and unique".into());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn resolutions_are_closed_and_conflict_free(
        index in arb_index(),
        roots in proptest::collection::vec(proptest::sample::select(NAMES.to_vec()), 1..3),
        essential in any::<bool>(),
    ) {
        let mut r = req(&[]);
        r.roots = roots.iter().map(|s| s.to_string()).collect();
        r.roots.dedup();
        r.essential = essential;
        if let Ok(res) = r.run(&index) {
            prop_assert_eq!(check_closed(&index, &r.roots, &res), Ok(()));
        }
    }

    #[test]
    fn index_order_does_not_matter(
        index in arb_index(),
        roots in proptest::collection::vec(proptest::sample::select(NAMES.to_vec()), 1..3),
        seed in any::<u64>(),
    ) {
        let mut r = req(&[]);
        r.roots = roots.iter().map(|s| s.to_string()).collect();
        r.roots.dedup();
        r.prefer = strings(&["pc", "pa"]);
        let mut shuffled = index.clone();
        // A deterministic Fisher-Yates driven by the seed.
        let mut state = seed | 1;
        for i in (1..shuffled.len()).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            shuffled.swap(i, (state % (i as u64 + 1)) as usize);
        }
        prop_assert_eq!(r.run(&index), r.run(&shuffled));
    }
}

#[test]
fn files_only_roots_bring_no_dependencies() {
    let index = vec![
        pkg(
            "grub-pc-bin",
            "2.06",
            &[("Depends", "grub-common (= 2.06), libc6")],
        ),
        pkg("libc6", "2.36", &[]),
        pkg("app", "1", &[("Depends", "libc6")]),
    ];
    let mut r = req(&["grub-pc-bin", "app"]);
    r.files_only = strings(&["grub-pc-bin"]);
    assert_eq!(
        r.names(&index),
        strings(&["app 1", "grub-pc-bin 2.06", "libc6 2.36"])
    );
    r.files_only.clear();
    assert!(r.run(&index).is_err(), "grub-common has no candidate");
}
