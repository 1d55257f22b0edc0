//! Dependency resolution: the closure of a set of packages over a Debian package index,
//! computed deterministically (the same index and request always give the same result,
//! whatever the order of the index).
//!
//! What counts, as for `apt-get install --no-install-recommends`: `Pre-Depends` and `Depends`
//! (with versions, alternatives, `Provides`, `:any`/`:native` qualifiers), `Conflicts` and
//! `Breaks`; `Recommends`, `Suggests` and `Enhances` are ignored. Only packages of the requested
//! architecture and `all` exist for the resolver.
//!
//! The rules, in the order they apply:
//!
//! 1. **Roots** (the spec's packages, in its order) are selected first, each at its highest
//!    version. A root must be a real package; a virtual one is an error naming its providers.
//!    The dependencies of a root in [`Request::files_only`] are not followed.
//! 2. With [`Request::essential`], every package whose highest version says `Essential: yes` is
//!    selected next, in name order (what debootstrap's minbase variant starts from).
//! 3. Then, breadth first in the order packages were selected, each `Pre-Depends` and then each
//!    `Depends` group of each selected package is satisfied by, in this order:
//!    1. a package already selected that satisfies any alternative (alternatives in order; for
//!       one alternative, the real package before providers, providers in name order);
//!    2. an alternative naming a package of [`Request::exclude`]: the image provides it
//!       otherwise (e.g. our own initramfs instead of `initramfs-tools`), nothing is selected;
//!    3. the first alternative that has a candidate: the **highest version of the real
//!       package** that satisfies it, else a **provider** of the virtual package, ranked by:
//!       its place in [`Request::prefer`] (listed first), `Essential: yes` first, `Priority`
//!       (required, important, standard, optional, extra; none counts as optional), then
//!       name, at its highest version. Without `prefer` this is apt's own order for providers
//!       (`CompareProviders` in apt's depcache), with the name as the last word instead of
//!       the order of apt's cache. Among equally good candidates one that conflicts with
//!       nothing selected wins.
//!
//!    A package name is selected at most once: a later dependency that its selected version
//!    does not satisfy is an error.
//! 4. Finally `Conflicts` and `Breaks` between selected packages are errors naming both
//!    packages and why each is there (no backtracking: this is not a SAT solver).
//!
//! Every error names the chain from the spec to the failing dependency, e.g. `cannot resolve:
//! container-host needs openssh-server, openssh-server (1:9.2p1-2+deb12u3) depends on libssl3
//! (>= 3.0.9), no candidate: libssl3 3.0.8 is too old`.
//!
//! Semantics follow dpkg: version comparison is [`crate::version::compare`]; a versioned
//! dependency is satisfied by a `Provides: name (= version)` whose version satisfies it but never
//! by an unversioned `Provides`; `name:any` needs `Multi-Arch: allowed`; a package never conflicts
//! with itself (`Provides: x` + `Conflicts: x` is the usual "only one of these" idiom).

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::relation::{self, Alternatives, ArchQualifier, Relation, RelationError};
use crate::source::{Candidate, IndexEntry};
use crate::version;

/// What to resolve.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// Starts every chain in messages: the image's name (`container-host`).
    pub label: &'a str,
    /// The packages asked for, in order.
    pub roots: &'a [String],
    /// Also select every `Essential: yes` package.
    pub essential: bool,
    /// Providers of virtual packages to choose first, in this order.
    pub prefer: &'a [String],
    /// Packages never selected: dependencies on them count as satisfied.
    pub exclude: &'a [String],
    /// Roots taken for their files alone, their dependencies not followed (a legacy BIOS
    /// bootloader: the image uses its boot images, never runs its tools).
    pub files_only: &'a [String],
    /// The one architecture considered (besides `all`).
    pub arch: &'a str,
}

/// Why a package is in the closure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reason {
    /// The request names it.
    Root,
    /// `Essential: yes`, with [`Request::essential`].
    Essential,
    /// Another selected package depends on it.
    Dependency,
}

/// One package of the closure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub candidate: Candidate,
    pub reason: Reason,
    /// The selected packages whose `Depends`/`Pre-Depends` it satisfies, by name.
    pub required_by: BTreeSet<String>,
    /// `Installed-Size`, in KiB (0 when the index does not say).
    pub installed_size_kib: u64,
}

/// The closure, sorted by package name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    pub packages: Vec<Resolved>,
}

impl Resolution {
    /// Sum of `Installed-Size` in KiB.
    pub fn installed_size_kib(&self) -> u64 {
        self.packages.iter().map(|p| p.installed_size_kib).sum()
    }

    /// Sum of the `.deb` sizes in bytes.
    pub fn download_bytes(&self) -> u64 {
        self.packages.iter().map(|p| p.candidate.size).sum()
    }
}

/// Why a closure could not be computed. Each message names the packages and the chain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error("cannot resolve: {chain}, no candidate: {why}")]
    Unsatisfiable { chain: String, why: String },
    #[error("cannot resolve: {chain}: field {field} of {package} is malformed: {error}")]
    BadField {
        chain: String,
        /// `name (version)`.
        package: String,
        field: &'static str,
        error: RelationError,
    },
    #[error(transparent)]
    Conflict(Box<Conflict>),
    #[error("cannot resolve: {package} is both requested and excluded")]
    RootExcluded { package: String },
}

/// Two selected packages that cannot be installed together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "conflict between {package} and {other}: {package} ({version}) {verb} {relation}, which \
     {other} ({other_version}) {matches}; {package}: {chain}; {other}: {other_chain}"
)]
pub struct Conflict {
    pub package: String,
    pub version: String,
    /// `conflicts with` or `breaks`.
    pub verb: &'static str,
    pub relation: String,
    pub other: String,
    pub other_version: String,
    /// `is` or `provides`.
    pub matches: &'static str,
    /// How each of the two got into the selection.
    pub chain: String,
    pub other_chain: String,
}

/// Resolve `request` over `index`. Pure.
pub fn resolve(index: &[IndexEntry], request: &Request) -> Result<Resolution, ResolveError> {
    let universe = Universe::new(index, request.arch);
    let mut state = State::new(&universe, request);
    state.select_roots()?;
    if request.essential {
        state.select_essential();
    }
    while let Some(pkg) = state.queue.pop_front() {
        state.expand(pkg)?;
    }
    state.check_conflicts()?;
    Ok(state.into_resolution())
}

// ---------------------------------------------------------------------------------------
// The universe: the index, parsed and ordered once.

/// `Pre-Depends` or `Depends`, as chains name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DepKind {
    PreDepends,
    Depends,
}

impl DepKind {
    fn verb(self) -> &'static str {
        match self {
            DepKind::PreDepends => "pre-depends on",
            DepKind::Depends => "depends on",
        }
    }
}

/// The parsed relationship fields of one package.
#[derive(Debug, Default)]
struct Relations {
    pre_depends: Vec<Alternatives>,
    depends: Vec<Alternatives>,
    conflicts: Vec<Relation>,
    breaks: Vec<Relation>,
}

struct Pkg<'a> {
    entry: &'a IndexEntry,
    essential: bool,
    /// `Priority`: 0 required, 1 important, 2 standard, 3 optional (or none), 4 extra.
    priority: u8,
    multi_arch_allowed: bool,
    installed_size_kib: u64,
    provides: Vec<(String, Option<String>)>,
    /// A malformed field is reported only if the package is ever selected.
    relations: Result<Relations, (&'static str, RelationError)>,
}

impl<'a> Pkg<'a> {
    fn new(entry: &'a IndexEntry) -> Self {
        let yes = |f: &str| {
            entry
                .field(f)
                .is_some_and(|v| v.eq_ignore_ascii_case("yes"))
        };
        let provides = entry.field("Provides").map(relation::parse_provides);
        let (provides, provides_err) = match provides {
            None => (Vec::new(), None),
            Some(Ok(p)) => (p, None),
            Some(Err(e)) => (Vec::new(), Some(e)),
        };
        let relations = match provides_err {
            Some(e) => Err(("Provides", e)),
            None => parse_relations(entry),
        };
        let priority = match entry
            .field("Priority")
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("required") => 0,
            Some("important") => 1,
            Some("standard") => 2,
            Some("extra") => 4,
            _ => 3,
        };
        Pkg {
            entry,
            essential: yes("Essential"),
            priority,
            multi_arch_allowed: entry
                .field("Multi-Arch")
                .is_some_and(|v| v.eq_ignore_ascii_case("allowed")),
            installed_size_kib: entry
                .field("Installed-Size")
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0),
            provides,
            relations,
        }
    }

    fn name(&self) -> &'a str {
        &self.entry.candidate.package
    }

    fn version(&self) -> &'a str {
        &self.entry.candidate.version
    }

    /// `name (version)`, as chains show a package.
    fn label(&self) -> String {
        format!("{} ({})", self.name(), self.version())
    }
}

fn parse_relations(entry: &IndexEntry) -> Result<Relations, (&'static str, RelationError)> {
    let groups = |field: &'static str| {
        entry
            .field(field)
            .map_or(Ok(Vec::new()), relation::parse)
            .map_err(|e| (field, e))
    };
    let flat = |field: &'static str| groups(field).map(|g| g.into_iter().flatten().collect());
    Ok(Relations {
        pre_depends: groups("Pre-Depends")?,
        depends: groups("Depends")?,
        conflicts: flat("Conflicts")?,
        breaks: flat("Breaks")?,
    })
}

struct Universe<'a> {
    pkgs: Vec<Pkg<'a>>,
    /// Real packages by name, best first: highest version, then greatest sha256 (the order
    /// the exact lock mode uses too).
    by_name: BTreeMap<&'a str, Vec<usize>>,
    /// Virtual name → its providers, by provider name, then best first.
    providers: BTreeMap<String, Vec<usize>>,
    /// Names that exist only for other architectures, with those architectures.
    elsewhere: BTreeMap<&'a str, BTreeSet<&'a str>>,
    arch: &'a str,
}

impl<'a> Universe<'a> {
    fn new(index: &'a [IndexEntry], arch: &'a str) -> Self {
        let mut pkgs = Vec::new();
        let mut elsewhere: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for entry in index {
            let c = &entry.candidate;
            if c.architecture == arch || c.architecture == "all" {
                pkgs.push(Pkg::new(entry));
            } else {
                elsewhere
                    .entry(&c.package)
                    .or_default()
                    .insert(&c.architecture);
            }
        }
        // A total order, so that the order of the index never matters.
        let best_first = |pkgs: &[Pkg], a: &usize, b: &usize| {
            let (ea, eb) = (pkgs[*a].entry, pkgs[*b].entry);
            let (a, b) = (&ea.candidate, &eb.candidate);
            a.package
                .cmp(&b.package)
                .then_with(|| version::compare(&b.version, &a.version))
                .then_with(|| b.sha256.cmp(&a.sha256))
                .then_with(|| b.cmp(a))
                .then_with(|| eb.fields.cmp(&ea.fields))
        };
        let mut by_name: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        let mut providers: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, pkg) in pkgs.iter().enumerate() {
            by_name.entry(pkg.name()).or_default().push(i);
            for (virt, _) in &pkg.provides {
                providers.entry(virt.clone()).or_default().push(i);
            }
        }
        for list in by_name.values_mut().chain(providers.values_mut()) {
            list.sort_by(|a, b| best_first(&pkgs, a, b));
            list.dedup_by(|a, b| pkgs[*a].entry == pkgs[*b].entry);
        }
        elsewhere.retain(|name, _| !by_name.contains_key(name));
        Universe {
            pkgs,
            by_name,
            providers,
            elsewhere,
            arch,
        }
    }

    /// Whether a relation's architecture qualifier admits `pkg` (dpkg's `deparchsatisfied`
    /// for a single-architecture system: every package here is native or `all`).
    fn arch_ok(&self, rel: &Relation, pkg: &Pkg, for_conflict: bool) -> bool {
        match &rel.arch {
            ArchQualifier::None | ArchQualifier::Native => true,
            ArchQualifier::Any => for_conflict || pkg.multi_arch_allowed,
            ArchQualifier::Arch(a) => a == self.arch,
        }
    }

    /// Whether `pkg` itself (its name, not what it provides) satisfies `rel`.
    fn is(&self, rel: &Relation, pkg: &Pkg, for_conflict: bool) -> bool {
        pkg.name() == rel.name
            && self.arch_ok(rel, pkg, for_conflict)
            && rel
                .constraint
                .as_ref()
                .is_none_or(|c| c.satisfied_by(pkg.version()))
    }

    /// Whether one of `pkg`'s `Provides` satisfies `rel`.
    fn provides(&self, rel: &Relation, pkg: &Pkg, for_conflict: bool) -> bool {
        self.arch_ok(rel, pkg, for_conflict)
            && pkg.provides.iter().any(|(name, version)| {
                *name == rel.name
                    && match (&rel.constraint, version) {
                        (None, _) => true,
                        (Some(c), Some(v)) => c.satisfied_by(v),
                        (Some(_), None) => false,
                    }
            })
    }

    #[cfg(test)]
    fn satisfies(&self, rel: &Relation, pkg: &Pkg) -> bool {
        self.is(rel, pkg, false) || self.provides(rel, pkg, false)
    }

    fn real(&self, name: &str) -> &[usize] {
        self.by_name.get(name).map_or(&[], Vec::as_slice)
    }

    fn providers_of(&self, name: &str) -> &[usize] {
        self.providers.get(name).map_or(&[], Vec::as_slice)
    }

    /// Why nothing satisfies `rel`, given `selected` (name → package).
    fn explain(&self, rel: &Relation, selected: &BTreeMap<&str, Selection>) -> String {
        let name = rel.name.as_str();
        if let Some(sel) = selected.get(name) {
            let pkg = &self.pkgs[sel.pkg];
            if !self.is(rel, pkg, false) {
                return format!(
                    "{name} {} is already selected and does not satisfy {rel}",
                    pkg.version()
                );
            }
        }
        let real = self.real(name);
        if let Some(first) = real.first() {
            if !self.arch_ok(rel, &self.pkgs[*first], false) {
                return match &rel.arch {
                    ArchQualifier::Any => {
                        format!("{name} is not Multi-Arch: allowed, so {rel} cannot match it")
                    }
                    _ => format!("only {} packages are considered", self.arch),
                };
            }
            if let Some(c) = &rel.constraint {
                let versions: Vec<&str> = real.iter().map(|i| self.pkgs[*i].version()).collect();
                let side = |v: &&str| version::compare(v, &c.version);
                let verdict = if versions.iter().all(|v| side(v) == Ordering::Less) {
                    "too old".to_string()
                } else if versions.iter().all(|v| side(v) == Ordering::Greater) {
                    "too new".to_string()
                } else {
                    format!("not ({} {})", c.op.as_str(), c.version)
                };
                let verb = if versions.len() == 1 { "is" } else { "are" };
                return format!("{name} {} {verb} {verdict}", versions.join(", "));
            }
        }
        let providers: BTreeSet<&str> = self
            .providers_of(name)
            .iter()
            .map(|i| self.pkgs[*i].name())
            .collect();
        if !providers.is_empty() {
            let list = providers.into_iter().collect::<Vec<_>>().join(", ");
            return match &rel.constraint {
                Some(c) => format!(
                    "{name} is a virtual package, and none of its providers ({list}) provides it \
                     in a version ({} {})",
                    c.op.as_str(),
                    c.version
                ),
                None => format!(
                    "{name} is a virtual package whose providers ({list}) are all excluded or \
                     already selected in other versions"
                ),
            };
        }
        match self.elsewhere.get(name) {
            Some(arches) => format!(
                "{name} exists only for {}, not {}",
                arches.iter().copied().collect::<Vec<_>>().join(", "),
                self.arch
            ),
            None => format!("no package {name}"),
        }
    }
}

// ---------------------------------------------------------------------------------------
// The selection.

/// How a package entered the selection: the last link of its chain.
#[derive(Debug, Clone)]
enum Via {
    Root,
    Essential,
    Dependency {
        parent: usize,
        kind: DepKind,
        group: String,
    },
}

struct Selection {
    pkg: usize,
    reason: Reason,
    via: Via,
    required_by: BTreeSet<String>,
}

struct State<'u, 'a> {
    u: &'u Universe<'a>,
    request: &'u Request<'u>,
    selected: BTreeMap<&'a str, Selection>,
    queue: VecDeque<usize>,
}

impl<'u, 'a> State<'u, 'a> {
    fn new(u: &'u Universe<'a>, request: &'u Request<'u>) -> Self {
        State {
            u,
            request,
            selected: BTreeMap::new(),
            queue: VecDeque::new(),
        }
    }

    fn excluded(&self, name: &str) -> bool {
        self.request.exclude.iter().any(|e| e == name)
    }

    fn select(&mut self, pkg: usize, reason: Reason, via: Via) {
        let name = self.u.pkgs[pkg].name();
        self.selected.insert(
            name,
            Selection {
                pkg,
                reason,
                via,
                required_by: BTreeSet::new(),
            },
        );
        self.queue.push_back(pkg);
    }

    fn select_roots(&mut self) -> Result<(), ResolveError> {
        for root in self.request.roots {
            if self.excluded(root) {
                return Err(ResolveError::RootExcluded {
                    package: root.clone(),
                });
            }
            if self.selected.contains_key(root.as_str()) {
                continue;
            }
            let chain = format!("{} needs {root}", self.request.label);
            let Some(best) = self.u.real(root).first() else {
                let rel = Relation {
                    name: root.clone(),
                    arch: ArchQualifier::None,
                    constraint: None,
                };
                let providers: BTreeSet<&str> = self
                    .u
                    .providers_of(root)
                    .iter()
                    .map(|i| self.u.pkgs[*i].name())
                    .collect();
                let why = if providers.is_empty() {
                    self.u.explain(&rel, &self.selected)
                } else {
                    let list = providers.into_iter().collect::<Vec<_>>().join(", ");
                    format!("{root} is a virtual package: list one of its providers ({list})")
                };
                return Err(ResolveError::Unsatisfiable { chain, why });
            };
            self.select(*best, Reason::Root, Via::Root);
        }
        Ok(())
    }

    fn select_essential(&mut self) {
        let essential: Vec<usize> = self
            .u
            .by_name
            .iter()
            .filter(|(name, _)| !self.excluded(name) && !self.selected.contains_key(*name))
            .filter_map(|(_, list)| list.first().copied())
            .filter(|i| self.u.pkgs[*i].essential)
            .collect();
        for pkg in essential {
            self.select(pkg, Reason::Essential, Via::Essential);
        }
    }

    /// Satisfy every `Pre-Depends` and `Depends` group of a selected package.
    fn expand(&mut self, pkg: usize) -> Result<(), ResolveError> {
        let p = &self.u.pkgs[pkg];
        if self.request.files_only.iter().any(|n| n == p.name()) {
            return Ok(());
        }
        let relations = p
            .relations
            .as_ref()
            .map_err(|(field, error)| ResolveError::BadField {
                chain: self.chain(pkg),
                package: p.label(),
                field,
                error: error.clone(),
            })?;
        let groups = relations
            .pre_depends
            .iter()
            .map(|g| (DepKind::PreDepends, g))
            .chain(relations.depends.iter().map(|g| (DepKind::Depends, g)));
        for (kind, group) in groups {
            self.satisfy(pkg, kind, group)?;
        }
        Ok(())
    }

    fn satisfy(
        &mut self,
        pkg: usize,
        kind: DepKind,
        group: &[Relation],
    ) -> Result<(), ResolveError> {
        let parent = self.u.pkgs[pkg].name().to_owned();
        if let Some(name) = self.selected_satisfier(group) {
            if let Some(sel) = self.selected.get_mut(name) {
                if name != parent {
                    sel.required_by.insert(parent);
                }
            }
            return Ok(());
        }
        if group.iter().any(|rel| self.excluded(&rel.name)) {
            return Ok(());
        }
        for rel in group {
            if let Some(choice) = self.choose(rel) {
                let group = relation::group_to_string(group);
                self.select(
                    choice,
                    Reason::Dependency,
                    Via::Dependency {
                        parent: pkg,
                        kind,
                        group,
                    },
                );
                let name = self.u.pkgs[choice].name();
                if let Some(sel) = self.selected.get_mut(name) {
                    sel.required_by.insert(parent);
                }
                return Ok(());
            }
        }
        let why: Vec<String> = group
            .iter()
            .map(|rel| self.u.explain(rel, &self.selected))
            .collect();
        Err(ResolveError::Unsatisfiable {
            chain: format!("{}, {}", self.chain(pkg), self.link(pkg, kind, group)),
            why: why.join("; "),
        })
    }

    /// The name of a selected package satisfying one of the alternatives, if any.
    fn selected_satisfier(&self, group: &[Relation]) -> Option<&'a str> {
        group.iter().find_map(|rel| {
            let real = self
                .selected
                .get(rel.name.as_str())
                .filter(|sel| self.u.is(rel, &self.u.pkgs[sel.pkg], false))
                .map(|sel| self.u.pkgs[sel.pkg].name());
            real.or_else(|| {
                self.u.providers_of(&rel.name).iter().find_map(|i| {
                    let p = &self.u.pkgs[*i];
                    let chosen = self.selected.get(p.name()).is_some_and(|s| s.pkg == *i);
                    (chosen && self.u.provides(rel, p, false)).then(|| p.name())
                })
            })
        })
    }

    /// The package to select for one alternative: the real package's best satisfying
    /// version, else the preferred provider; among those, one conflicting with nothing.
    fn choose(&self, rel: &Relation) -> Option<usize> {
        let real: Vec<usize> = if self.selected.contains_key(rel.name.as_str()) {
            Vec::new()
        } else {
            self.u
                .real(&rel.name)
                .iter()
                .copied()
                .filter(|i| self.u.is(rel, &self.u.pkgs[*i], false))
                .collect()
        };
        if !real.is_empty() {
            return Some(self.least_conflicting(&real));
        }
        let mut providers: Vec<usize> = self
            .u
            .providers_of(&rel.name)
            .iter()
            .copied()
            .filter(|i| {
                let p = &self.u.pkgs[*i];
                !self.selected.contains_key(p.name())
                    && !self.excluded(p.name())
                    && self.u.provides(rel, p, false)
            })
            .collect();
        let rank = |i: &usize| {
            let p = &self.u.pkgs[*i];
            let preferred = self.request.prefer.iter().position(|n| n == p.name());
            (preferred.unwrap_or(usize::MAX), !p.essential, p.priority)
        };
        // Stable: within one rank the universe's order (name, then best version) stays.
        providers.sort_by_key(rank);
        (!providers.is_empty()).then(|| self.least_conflicting(&providers))
    }

    /// The first of `options` that conflicts with no selected package, else the first.
    fn least_conflicting(&self, options: &[usize]) -> usize {
        options
            .iter()
            .copied()
            .find(|i| {
                self.selected.values().all(|sel| {
                    self.conflict(*i, sel.pkg).is_none() && self.conflict(sel.pkg, *i).is_none()
                })
            })
            .unwrap_or(options[0])
    }

    /// The first `Conflicts`/`Breaks` relation of `a` that `b` matches, with its verb and
    /// whether `b` matches by name (`is`) or by `Provides`.
    fn conflict(&self, a: usize, b: usize) -> Option<(&'static str, &'u Relation, &'static str)> {
        let (pa, pb) = (&self.u.pkgs[a], &self.u.pkgs[b]);
        if pa.name() == pb.name() {
            return None;
        }
        let relations = pa.relations.as_ref().ok()?;
        let tagged = relations
            .conflicts
            .iter()
            .map(|r| ("conflicts with", r))
            .chain(relations.breaks.iter().map(|r| ("breaks", r)));
        for (verb, rel) in tagged {
            if self.u.is(rel, pb, true) {
                return Some((verb, rel, "is"));
            }
            if self.u.provides(rel, pb, true) {
                return Some((verb, rel, "provides"));
            }
        }
        None
    }

    fn check_conflicts(&self) -> Result<(), ResolveError> {
        for a in self.selected.values() {
            for b in self.selected.values() {
                if let Some((verb, rel, matches)) = self.conflict(a.pkg, b.pkg) {
                    let (pa, pb) = (&self.u.pkgs[a.pkg], &self.u.pkgs[b.pkg]);
                    return Err(ResolveError::Conflict(Box::new(Conflict {
                        package: pa.name().to_owned(),
                        version: pa.version().to_owned(),
                        verb,
                        relation: rel.to_string(),
                        other: pb.name().to_owned(),
                        other_version: pb.version().to_owned(),
                        matches,
                        chain: self.chain(a.pkg),
                        other_chain: self.chain(b.pkg),
                    })));
                }
            }
        }
        Ok(())
    }

    /// `openssh-server (1:9.2p1-2) depends on libssl3 (>= 3.0.9)`.
    fn link(&self, pkg: usize, kind: DepKind, group: &[Relation]) -> String {
        format!(
            "{} {} {}",
            self.u.pkgs[pkg].label(),
            kind.verb(),
            relation::group_to_string(group)
        )
    }

    /// How a selected package got in, from the request to it.
    fn chain(&self, pkg: usize) -> String {
        let mut links = Vec::new();
        let mut cur = pkg;
        loop {
            let p = &self.u.pkgs[cur];
            let Some(sel) = self.selected.get(p.name()) else {
                break;
            };
            match &sel.via {
                Via::Root => {
                    links.push(format!("{} needs {}", self.request.label, p.name()));
                    break;
                }
                Via::Essential => {
                    links.push(format!("essential package {}", p.name()));
                    break;
                }
                Via::Dependency {
                    parent,
                    kind,
                    group,
                } => {
                    let parent_pkg = &self.u.pkgs[*parent];
                    links.push(format!("{} {} {group}", parent_pkg.label(), kind.verb()));
                    cur = *parent;
                }
            }
        }
        links.reverse();
        links.join(", ")
    }

    fn into_resolution(self) -> Resolution {
        let packages = self
            .selected
            .into_values()
            .map(|sel| {
                let pkg = &self.u.pkgs[sel.pkg];
                Resolved {
                    candidate: pkg.entry.candidate.clone(),
                    reason: sel.reason,
                    required_by: sel.required_by,
                    installed_size_kib: pkg.installed_size_kib,
                }
            })
            .collect();
        Resolution { packages }
    }
}

#[cfg(test)]
mod tests;
