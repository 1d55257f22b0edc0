//! The files kmod's `depmod` writes into `/usr/lib/modules/<release>/`, computed from the
//! module files themselves, so that the image's `modprobe` (which reads only these) works
//! without running depmod at build time.
//!
//! The aim is depmod's exact bytes (kmod 30, as in Debian 12, on an x86-64 host, without
//! configuration files and without `-E`/`-F`), so this follows what `tools/depmod.c` and
//! libkmod do, step by step:
//!
//! * **Names.** A module's name comes from its file name (up to the first `.`, `-` read as
//!   `_`), not from `.modinfo`.
//! * **Order.** Modules start in the iteration order of depmod's name hash table (Paul
//!   Hsieh's "superfast" hash, 512 buckets, names sorted by `strcmp` inside a bucket), then
//!   a stable sort puts the ones listed in `modules.order` first, in that order. A module's
//!   position is the priority of its values in the binary indexes.
//! * **Symbols.** A module exports the names of its `__crc_*` symbols (`.symtab`), or, with
//!   none, the strings of `__ksymtab_strings`; the last module in order exporting a name
//!   owns it. It needs its undefined `.symtab` symbols, then the `__versions` entries no
//!   undefined symbol matched. A module depends on the owners of the symbols it needs.
//! * **Dependencies.** Modules are numbered by a topological sort run as depmod runs it
//!   (users before what they use; a stack seeded with the unused modules in order, each
//!   module's dependencies taken in the order first needed). A `modules.dep` line lists
//!   every direct and indirect dependency by that number. A cycle is an error (depmod
//!   writes nothing then either).
//! * **Text files and other indexes.** `modules.alias`, `modules.softdep` and
//!   `modules.devname` come from `alias=`/`softdep=` in `.modinfo`; `modules.symbols` walks
//!   depmod's symbol hash table (2048 buckets); `modules.builtin.bin` and
//!   `modules.builtin.alias.bin` come from the kernel's `modules.builtin` and
//!   `modules.builtin.modinfo` (a missing input gives an empty file, as with depmod).
//!
//! Where depmod would read outside a section or the file (unterminated strings), this
//! returns an error naming the module; where it quietly falls back (a missing `.symtab`, a
//! symbol name offset past `.strtab`), so does this.

use std::collections::{BTreeMap, HashMap};

use super::kmod_index::IndexBuilder;
use super::{c_string, le_u16, le_u32, Elf, ModuleError};

/// Every file depmod writes, in the order it writes them.
pub const FILES: [&str; 10] = [
    "modules.dep",
    "modules.dep.bin",
    "modules.alias",
    "modules.alias.bin",
    "modules.softdep",
    "modules.symbols",
    "modules.symbols.bin",
    "modules.builtin.bin",
    "modules.builtin.alias.bin",
    "modules.devname",
];

/// What depmod reads: the module files (path relative to the module directory, bytes) and
/// the kernel's lists shipped next to them.
#[derive(Debug, Clone, Copy, Default)]
pub struct DepmodInput<'a> {
    pub modules: &'a [(&'a str, &'a [u8])],
    /// `modules.order`.
    pub order: Option<&'a [u8]>,
    /// `modules.builtin`.
    pub builtin: Option<&'a [u8]>,
    /// `modules.builtin.modinfo`.
    pub builtin_modinfo: Option<&'a [u8]>,
}

/// glibc's `PATH_MAX`, the size of depmod's line and name buffers.
const PATH_MAX: usize = 4096;
const SYMBOL_SIZE: usize = 24;
const MODVERSION_SIZE: usize = 64;
const MODULE_BUCKETS: u32 = 512;
const SYMBOL_BUCKETS: u32 = 2048;

/// What depmod uses of one module.
struct Mod<'a> {
    name: String,
    path: &'a str,
    /// `.modinfo` as `(key, value)` pairs, in section order.
    info: Vec<(&'a [u8], &'a [u8])>,
    exports: Vec<&'a [u8]>,
    needs: Vec<&'a [u8]>,
}

impl Mod<'_> {
    fn info<'s>(&'s self, key: &'s [u8]) -> impl Iterator<Item = &'s [u8]> + 's {
        self.info
            .iter()
            .filter(move |(k, _)| *k == key)
            .map(|(_, v)| *v)
    }

    fn error(&self, source: ModuleError) -> ModuleError {
        ModuleError::InFile {
            path: self.path.to_string(),
            source: Box::new(source),
        }
    }

    /// The path depmod matches `modules.order` lines against: the directory, then as many
    /// bytes as the name has, then three more (`.ko`).
    fn uncompressed_path(&self) -> &[u8] {
        let path = self.path.as_bytes();
        let base = path.iter().rposition(|&b| b == b'/').map_or(0, |i| i + 1);
        &path[..(base + self.name.len() + 3).min(path.len())]
    }
}

/// Compute every file of [`FILES`].
pub fn depmod(input: &DepmodInput) -> Result<BTreeMap<&'static str, Vec<u8>>, ModuleError> {
    let mods = input
        .modules
        .iter()
        .map(|&(path, data)| load(path, data))
        .collect::<Result<Vec<_>, _>>()?;
    outputs(mods, input)
}

/// The files for loaded modules (in any order).
fn outputs(
    mut mods: Vec<Mod>,
    input: &DepmodInput,
) -> Result<BTreeMap<&'static str, Vec<u8>>, ModuleError> {
    mods.sort_by_cached_key(|m| {
        let bucket = superfast(m.name.as_bytes()) & (MODULE_BUCKETS - 1);
        (bucket, m.name.clone())
    });
    if let Some(pair) = mods.windows(2).find(|w| w[0].name == w[1].name) {
        let mut paths = [pair[0].path, pair[1].path];
        paths.sort();
        return Err(ModuleError::Duplicate {
            name: pair[0].name.clone(),
            first: paths[0].to_string(),
            second: paths[1].to_string(),
        });
    }
    if let Some(order) = input.order {
        sort_by_order(&mut mods, order);
    }

    let mut owners: HashMap<&[u8], usize> = HashMap::new();
    for (i, m) in mods.iter().enumerate() {
        for &symbol in &m.exports {
            owners.insert(symbol, i);
        }
    }
    let deps: Vec<Vec<usize>> = mods
        .iter()
        .map(|m| {
            let mut deps: Vec<usize> = Vec::new();
            for need in &m.needs {
                let name = need.strip_prefix(b".").unwrap_or(need);
                if let Some(&owner) = owners.get(name) {
                    if !deps.contains(&owner) {
                        deps.push(owner);
                    }
                }
            }
            deps
        })
        .collect();
    let rank = topological_ranks(&mods, &deps)?;

    let mut out = BTreeMap::new();
    let (dep, dep_bin) = modules_dep(&mods, &deps, &rank)?;
    out.insert("modules.dep", dep);
    out.insert("modules.dep.bin", dep_bin);
    let (alias, alias_bin) = modules_alias(&mods)?;
    out.insert("modules.alias", alias);
    out.insert("modules.alias.bin", alias_bin);
    out.insert("modules.softdep", modules_softdep(&mods));
    let (symbols, symbols_bin) = modules_symbols(&mods, &owners)?;
    out.insert("modules.symbols", symbols);
    out.insert("modules.symbols.bin", symbols_bin);
    out.insert(
        "modules.builtin.bin",
        input
            .builtin
            .map(builtin_bin)
            .transpose()?
            .unwrap_or_default(),
    );
    out.insert(
        "modules.builtin.alias.bin",
        input
            .builtin_modinfo
            .map(builtin_alias_bin)
            .transpose()?
            .unwrap_or_default(),
    );
    out.insert("modules.devname", modules_devname(&mods));
    Ok(out)
}

/// A module name from a file path as kmod derives it: the file name up to the first `.`,
/// `-` replaced by `_`.
pub fn name_from_path(path: &str) -> Option<String> {
    let file = path.rsplit('/').next().unwrap_or(path);
    let stem = file.split('.').next().unwrap_or(file);
    (!stem.is_empty()).then(|| stem.replace('-', "_"))
}

fn load<'a>(path: &'a str, data: &'a [u8]) -> Result<Mod<'a>, ModuleError> {
    let in_file = |source| ModuleError::InFile {
        path: path.to_string(),
        source: Box::new(source),
    };
    let name = name_from_path(path).ok_or_else(|| in_file(ModuleError::NoNameInPath))?;
    let read = || -> Result<_, ModuleError> {
        let elf = Elf::parse(data)?;
        let info = elf
            .section_named(".modinfo")?
            .map(strings)
            .unwrap_or_default()
            .into_iter()
            .map(|s| match s.iter().position(|&b| b == b'=') {
                Some(eq) => (&s[..eq], &s[eq + 1..]),
                None => (s, &[][..]),
            })
            .collect();
        Ok((info, exports(&elf)?, needs(&elf)?))
    };
    let (info, exports, needs) = read().map_err(in_file)?;
    Ok(Mod {
        name,
        path,
        info,
        exports,
        needs,
    })
}

/// The NUL-separated strings of a section as libkmod splits them: leading NULs skipped,
/// empty strings dropped, a last unterminated string kept, a one-byte rest ignored.
fn strings(section: &[u8]) -> Vec<&[u8]> {
    let start = section
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(section.len())
        .min(section.len().saturating_sub(1));
    let rest = &section[start..];
    if rest.len() <= 1 {
        return Vec::new();
    }
    rest.split(|&b| b == 0).filter(|s| !s.is_empty()).collect()
}

/// `.symtab` and `.strtab`.
struct SymbolTable<'a> {
    symtab: &'a [u8],
    strtab: &'a [u8],
}

/// `.symtab` and `.strtab`, if both exist and the table is a whole number of entries.
fn symbol_table<'a>(elf: &Elf<'a>) -> Result<Option<SymbolTable<'a>>, ModuleError> {
    let strtab = elf.section_named(".strtab")?;
    let symtab = elf.section_named(".symtab")?;
    Ok(match (symtab, strtab) {
        (Some(symtab), Some(strtab)) if symtab.len() % SYMBOL_SIZE == 0 => {
            Some(SymbolTable { symtab, strtab })
        }
        _ => None,
    })
}

/// The name of a symbol, or `None` when its offset lies past the string table.
fn symbol_name<'a>(strtab: &'a [u8], entry: &[u8]) -> Result<Option<&'a [u8]>, ModuleError> {
    let offset = le_u32(&entry[0..4]);
    if usize::try_from(offset).map_or(true, |o| o >= strtab.len()) {
        return Ok(None);
    }
    c_string(strtab, offset)
        .map(Some)
        .ok_or(ModuleError::UnterminatedString {
            what: "symbol name",
        })
}

/// The symbols a module exports (libkmod's `kmod_elf_get_symbols`).
fn exports<'a>(elf: &Elf<'a>) -> Result<Vec<&'a [u8]>, ModuleError> {
    if let Some(SymbolTable { symtab, strtab }) = symbol_table(elf)? {
        let mut names = Vec::new();
        let mut complete = true;
        for entry in symtab.chunks_exact(SYMBOL_SIZE).skip(1) {
            let Some(name) = symbol_name(strtab, entry)? else {
                complete = false;
                break;
            };
            if let Some(symbol) = name.strip_prefix(b"__crc_") {
                names.push(symbol);
            }
        }
        if complete && !names.is_empty() {
            names.retain(|n| !n.is_empty());
            return Ok(names);
        }
    }
    Ok(elf
        .section_named("__ksymtab_strings")?
        .map(strings)
        .unwrap_or_default())
}

/// The symbols a module needs (libkmod's `kmod_elf_get_dependency_symbols`).
fn needs<'a>(elf: &Elf<'a>) -> Result<Vec<&'a [u8]>, ModuleError> {
    let versions = elf
        .section_named("__versions")?
        .filter(|v| v.len() % MODVERSION_SIZE == 0)
        .unwrap_or_default();
    let Some(SymbolTable { symtab, strtab }) = symbol_table(elf)? else {
        return Ok(Vec::new());
    };
    let version_names = versions
        .chunks_exact(MODVERSION_SIZE)
        .enumerate()
        .map(|(i, _)| {
            let at = i * MODVERSION_SIZE + 8;
            c_string(&versions[at..], 0).ok_or(ModuleError::UnterminatedString {
                what: "__versions entry",
            })
        })
        .collect::<Result<Vec<&[u8]>, _>>()?;
    let mut first_version: HashMap<&[u8], usize> = HashMap::new();
    for (i, name) in version_names.iter().enumerate() {
        first_version.entry(name).or_insert(i);
    }
    let mut visited = vec![false; version_names.len()];
    let mut names = Vec::new();
    for entry in symtab.chunks_exact(SYMBOL_SIZE).skip(1) {
        if le_u16(&entry[6..8]) != 0 {
            continue; // defined here (not SHN_UNDEF)
        }
        let Some(name) = symbol_name(strtab, entry)? else {
            return Ok(Vec::new()); // libkmod gives up on the whole list
        };
        if name.is_empty() {
            continue;
        }
        if let Some(&i) = first_version.get(name) {
            visited[i] = true;
        }
        names.push(name);
    }
    names.extend(
        version_names
            .iter()
            .zip(&visited)
            .filter(|(name, seen)| !**seen && !name.is_empty())
            .map(|(name, _)| *name),
    );
    Ok(names)
}

/// Paul Hsieh's SuperFastHash as kmod's `shared/hash.c` computes it on x86-64 (16-bit
/// loads little-endian, `char` signed).
fn superfast(key: &[u8]) -> u32 {
    let signed = |b: u8| b as i8 as i32 as u32;
    let pair = |a: u8, b: u8| u32::from(u16::from_le_bytes([a, b]));
    let mut hash = key.len() as u32;
    let mut chunks = key.chunks_exact(4);
    for c in &mut chunks {
        hash = hash.wrapping_add(pair(c[0], c[1]));
        let tmp = (pair(c[2], c[3]) << 11) ^ hash;
        hash = (hash << 16) ^ tmp;
        hash = hash.wrapping_add(hash >> 11);
    }
    match *chunks.remainder() {
        [a, b, c] => {
            hash = hash.wrapping_add(pair(a, b));
            hash ^= hash << 16;
            hash ^= signed(c) << 18;
            hash = hash.wrapping_add(hash >> 11);
        }
        [a, b] => {
            hash = hash.wrapping_add(pair(a, b));
            hash ^= hash << 11;
            hash = hash.wrapping_add(hash >> 17);
        }
        [a] => {
            hash = hash.wrapping_add(signed(a));
            hash ^= hash << 10;
            hash = hash.wrapping_add(hash >> 1);
        }
        _ => {}
    }
    hash ^= hash << 3;
    hash = hash.wrapping_add(hash >> 5);
    hash ^= hash << 4;
    hash = hash.wrapping_add(hash >> 17);
    hash ^= hash << 25;
    hash = hash.wrapping_add(hash >> 6);
    hash
}

/// The lines `fgets` with a `PATH_MAX` buffer returns, each cut at its first NUL.
fn fgets_lines(text: &[u8]) -> Vec<&[u8]> {
    let mut lines = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let max = rest.len().min(PATH_MAX - 1);
        let len = rest[..max]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(max, |p| p + 1);
        let line = &rest[..len];
        rest = &rest[len..];
        lines.push(&line[..line.iter().position(|&b| b == 0).unwrap_or(len)]);
    }
    lines
}

/// Stable-sort the modules named in `modules.order` to the front, in its order. A line
/// without its newline makes depmod skip the sort altogether.
fn sort_by_order(mods: &mut [Mod], order: &[u8]) {
    let lines = fgets_lines(order);
    if lines
        .iter()
        .any(|l| !l.is_empty() && l.last() != Some(&b'\n'))
    {
        return;
    }
    let total = lines.len() as i64 + 1;
    let mut position: HashMap<&[u8], i64> = HashMap::new();
    for (n, line) in lines.iter().enumerate() {
        if let Some(path) = line.strip_suffix(b"\n") {
            position.insert(path, n as i64 + 1 - total);
        }
    }
    mods.sort_by_key(|m| position.get(m.uncompressed_path()).copied().unwrap_or(1));
}

/// depmod's topological numbering: modules nothing uses first.
fn topological_ranks(mods: &[Mod], deps: &[Vec<usize>]) -> Result<Vec<usize>, ModuleError> {
    let mut users = vec![0usize; mods.len()];
    for d in deps.iter().flatten() {
        users[*d] += 1;
    }
    let mut stack: Vec<usize> = (0..mods.len()).filter(|&i| users[i] == 0).collect();
    let mut rank = vec![usize::MAX; mods.len()];
    let mut sorted = 0;
    while let Some(src) = stack.pop() {
        rank[src] = sorted;
        sorted += 1;
        for &dst in &deps[src] {
            users[dst] -= 1;
            if users[dst] == 0 {
                stack.push(dst);
            }
        }
    }
    if sorted == mods.len() {
        return Ok(rank);
    }
    // Every module left over is used by another one left over: walk up users until a
    // module repeats.
    let left = |i: usize| rank[i] == usize::MAX;
    let mut walk = vec![(0..mods.len()).find(|&i| left(i)).unwrap_or(0)];
    loop {
        let last = walk[walk.len() - 1];
        let user = (0..mods.len())
            .find(|&u| left(u) && deps[u].contains(&last))
            .unwrap_or(last);
        if let Some(at) = walk.iter().position(|&m| m == user) {
            // `user` needs walk[last], which needs walk[last - 1], ... back to `user`.
            let name = |m: usize| mods[m].name.clone();
            let mut cycle = vec![name(user)];
            cycle.extend(walk[at + 1..].iter().rev().map(|&m| name(m)));
            cycle.push(name(user));
            return Err(ModuleError::Cycle { cycle });
        }
        walk.push(user);
    }
}

fn index_error(file: &'static str) -> impl Fn(super::kmod_index::IndexError) -> ModuleError {
    move |source| ModuleError::Index { file, source }
}

/// `modules.dep` and `modules.dep.bin`.
fn modules_dep(
    mods: &[Mod],
    deps: &[Vec<usize>],
    rank: &[usize],
) -> Result<(Vec<u8>, Vec<u8>), ModuleError> {
    let mut text = Vec::new();
    let mut index = IndexBuilder::new();
    let mut seen = vec![usize::MAX; mods.len()];
    for (i, m) in mods.iter().enumerate() {
        let mut all = Vec::new();
        let mut todo: Vec<usize> = deps[i].clone();
        while let Some(d) = todo.pop() {
            if seen[d] != i {
                seen[d] = i;
                all.push(d);
                todo.extend(&deps[d]);
            }
        }
        all.sort_by_key(|&d| rank[d]);
        let mut line = format!("{}:", m.path);
        for d in all {
            line.push(' ');
            line.push_str(mods[d].path);
        }
        index
            .insert(m.name.as_bytes(), line.as_bytes(), i as u32)
            .map_err(|e| m.error(index_error("modules.dep.bin")(e)))?;
        text.extend_from_slice(line.as_bytes());
        text.push(b'\n');
    }
    let bin = index.write().map_err(index_error("modules.dep.bin"))?;
    Ok((text, bin))
}

/// kmod's `alias_normalize`: `-` becomes `_` outside `[...]`; `None` for unmatched brackets.
fn alias_normalize(alias: &[u8]) -> Option<Vec<u8>> {
    let at = |i: usize| alias.get(i).copied().unwrap_or(0);
    let mut out = Vec::with_capacity(alias.len());
    let mut i = 0;
    while i < PATH_MAX - 1 {
        match at(i) {
            0 => break,
            b'-' => out.push(b'_'),
            b']' => return None,
            b'[' => {
                while at(i) != b']' && at(i) != 0 {
                    out.push(at(i));
                    i += 1;
                }
                if at(i) != b']' {
                    return None;
                }
                out.push(b']');
            }
            c => out.push(c),
        }
        i += 1;
    }
    Some(out)
}

/// `modules.alias` and `modules.alias.bin`.
fn modules_alias(mods: &[Mod]) -> Result<(Vec<u8>, Vec<u8>), ModuleError> {
    let mut text = b"# Aliases extracted from modules themselves.\n".to_vec();
    let mut index = IndexBuilder::new();
    for (i, m) in mods.iter().enumerate() {
        for alias in m.info(b"alias") {
            text.extend_from_slice(b"alias ");
            text.extend_from_slice(alias);
            text.push(b' ');
            text.extend_from_slice(m.name.as_bytes());
            text.push(b'\n');
            if let Some(key) = alias_normalize(alias) {
                index
                    .insert(&key, m.name.as_bytes(), i as u32)
                    .map_err(|e| m.error(index_error("modules.alias.bin")(e)))?;
            }
        }
    }
    let bin = index.write().map_err(index_error("modules.alias.bin"))?;
    Ok((text, bin))
}

/// `modules.softdep`.
fn modules_softdep(mods: &[Mod]) -> Vec<u8> {
    let mut text = b"# Soft dependencies extracted from modules themselves.\n".to_vec();
    for m in mods {
        for softdep in m.info(b"softdep") {
            text.extend_from_slice(b"softdep ");
            text.extend_from_slice(m.name.as_bytes());
            text.push(b' ');
            text.extend_from_slice(softdep);
            text.push(b'\n');
        }
    }
    text
}

/// `modules.symbols` and `modules.symbols.bin`, in depmod's symbol hash table order.
fn modules_symbols(
    mods: &[Mod],
    owners: &HashMap<&[u8], usize>,
) -> Result<(Vec<u8>, Vec<u8>), ModuleError> {
    let mut symbols: Vec<(u32, &[u8], usize)> = owners
        .iter()
        .map(|(&name, &owner)| (superfast(name) & (SYMBOL_BUCKETS - 1), name, owner))
        .collect();
    symbols.sort();
    let mut text = b"# Aliases for symbols, used by symbol_request().\n".to_vec();
    let mut index = IndexBuilder::new();
    for (_, name, owner) in symbols {
        let m = &mods[owner];
        let mut key = b"symbol:".to_vec();
        key.extend_from_slice(name);
        text.extend_from_slice(b"alias ");
        text.extend_from_slice(&key);
        text.push(b' ');
        text.extend_from_slice(m.name.as_bytes());
        text.push(b'\n');
        index
            .insert(&key, m.name.as_bytes(), owner as u32)
            .map_err(|e| m.error(index_error("modules.symbols.bin")(e)))?;
    }
    let bin = index.write().map_err(index_error("modules.symbols.bin"))?;
    Ok((text, bin))
}

/// `modules.builtin.bin` from `modules.builtin`: every name with an empty value.
fn builtin_bin(builtin: &[u8]) -> Result<Vec<u8>, ModuleError> {
    let mut index = IndexBuilder::new();
    // depmod reuses its name buffer: a line naming no file repeats the previous name.
    let mut name: Option<Vec<u8>> = None;
    for line in fgets_lines(builtin) {
        if !line.first().is_some_and(u8::is_ascii_alphabetic) {
            continue;
        }
        let file = &line[line.iter().rposition(|&b| b == b'/').map_or(0, |i| i + 1)..];
        if !file.is_empty() {
            let stem = file.split(|&b| b == b'.').next().unwrap_or(file);
            name = Some(
                stem.iter()
                    .map(|&b| if b == b'-' { b'_' } else { b })
                    .collect(),
            );
        }
        if let Some(name) = &name {
            index
                .insert(name, b"", 0)
                .map_err(index_error("modules.builtin.bin"))?;
        }
    }
    index.write().map_err(index_error("modules.builtin.bin"))
}

/// A byte stream read the way depmod reads `modules.builtin.modinfo` with `fgetc`.
struct Stream<'a> {
    data: &'a [u8],
    pos: usize,
    eof: bool,
}

impl<'a> Stream<'a> {
    fn getc(&mut self) -> Option<u8> {
        let c = self.data.get(self.pos).copied();
        match c {
            Some(_) => self.pos += 1,
            None => self.eof = true,
        }
        c
    }

    /// depmod's `flush_stream_to`: the bytes up to `end`, or an empty slice when a NUL or
    /// the end of the file comes first (the bytes are consumed either way).
    fn read_to(&mut self, end: u8) -> &'a [u8] {
        let start = self.pos;
        let mut len = 0;
        let stop = loop {
            let c = self.getc();
            match c {
                Some(b) if b != end && b != 0 && len < PATH_MAX => len += 1,
                _ => break c,
            }
        };
        if len == PATH_MAX {
            len -= 1;
        }
        match stop {
            Some(b) if b == end => &self.data[start..start + len],
            _ => &[],
        }
    }

    /// depmod's `flush_stream`: skip to the next NUL.
    fn skip_entry(&mut self) {
        while self.getc().is_some_and(|b| b != 0) {}
    }
}

/// `modules.builtin.alias.bin` from `modules.builtin.modinfo` (`name.key=value\0` entries):
/// every `alias` of a built-in module.
fn builtin_alias_bin(modinfo: &[u8]) -> Result<Vec<u8>, ModuleError> {
    let mut index = IndexBuilder::new();
    let mut s = Stream {
        data: modinfo,
        pos: 0,
        eof: false,
    };
    while !s.eof {
        let name = s.read_to(b'.');
        if name.is_empty() {
            continue;
        }
        if s.read_to(b'=') != b"alias" {
            s.skip_entry();
            continue;
        }
        let value = s.read_to(0);
        if value.is_empty() {
            continue;
        }
        if let Some(alias) = alias_normalize(value) {
            index
                .insert(&alias, name, 0)
                .map_err(index_error("modules.builtin.alias.bin"))?;
        }
    }
    index
        .write()
        .map_err(index_error("modules.builtin.alias.bin"))
}

/// `sscanf(value, "<lead>%u-%u")`.
fn major_minor(value: &[u8], lead: &[u8]) -> Option<(u32, u32)> {
    let (major, rest) = scan_unsigned(value.strip_prefix(lead)?)?;
    let (minor, _) = scan_unsigned(rest.strip_prefix(b"-")?)?;
    Some((major, minor))
}

/// One `%u` conversion as glibc does it: spaces, a sign, decimal digits; out of range gives
/// `ULONG_MAX`, a minus sign negates, and the result is cut to 32 bits.
fn scan_unsigned(s: &[u8]) -> Option<(u32, &[u8])> {
    let s = &s[s
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r'))
        .unwrap_or(s.len())..];
    let (negative, s) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let digits = s.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 {
        return None;
    }
    let value = s[..digits].iter().try_fold(0u64, |v, &d| {
        v.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    });
    let value = match value {
        None => u64::MAX,
        Some(v) if negative => v.wrapping_neg(),
        Some(v) => v,
    };
    Some((value as u32, &s[digits..]))
}

/// `modules.devname`: modules with a `devname:` alias and a `char-major-`/`block-major-`
/// one, for static device nodes that load the module when opened.
fn modules_devname(mods: &[Mod]) -> Vec<u8> {
    let mut text = Vec::new();
    for m in mods {
        let mut devname: Option<&[u8]> = None;
        let mut node: Option<(u8, u32, u32)> = None;
        for alias in m.info(b"alias") {
            if let Some(name) = alias.strip_prefix(b"devname:") {
                devname = Some(name);
            } else if let Some((major, minor)) = major_minor(alias, b"char-major-") {
                node = Some((b'c', major, minor));
            } else if let Some((major, minor)) = major_minor(alias, b"block-major-") {
                node = Some((b'b', major, minor));
            }
            if node.is_some() && devname.is_some() {
                break;
            }
        }
        if let (Some(devname), Some((kind, major, minor))) = (devname, node) {
            if text.is_empty() {
                text.extend_from_slice(b"# Device nodes to trigger on-demand module loading.\n");
            }
            text.extend_from_slice(m.name.as_bytes());
            text.push(b' ');
            text.extend_from_slice(devname);
            text.extend_from_slice(format!(" {}{major}:{minor}\n", kind as char).as_bytes());
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::kmod_index::IndexReader;

    /// A module as depmod would load it, from `key=value` strings and symbol names.
    fn module<'a>(
        path: &'a str,
        info: &[&'a str],
        exports: &[&'a str],
        needs: &[&'a str],
    ) -> Mod<'a> {
        Mod {
            name: name_from_path(path).unwrap(),
            path,
            info: info
                .iter()
                .map(|s| {
                    let (k, v) = s.split_once('=').unwrap_or((s, ""));
                    (k.as_bytes(), v.as_bytes())
                })
                .collect(),
            exports: exports.iter().map(|s| s.as_bytes()).collect(),
            needs: needs.iter().map(|s| s.as_bytes()).collect(),
        }
    }

    fn text(files: &BTreeMap<&str, Vec<u8>>, name: &str) -> String {
        String::from_utf8(files[name].clone()).unwrap()
    }

    fn lookup(files: &BTreeMap<&str, Vec<u8>>, name: &str, key: &str) -> Vec<(u32, String)> {
        IndexReader::new(&files[name])
            .unwrap()
            .get(key.as_bytes())
            .unwrap()
            .into_iter()
            .map(|(p, v)| (p, String::from_utf8(v).unwrap()))
            .collect()
    }

    /// virtio_net needs net_failover and virtio_ring; net_failover needs failover.
    fn virtio() -> Vec<Mod<'static>> {
        vec![
            module(
                "kernel/drivers/net/virtio_net.ko",
                &["alias=virtio:d00000001v*", "softdep=pre: crc32c"],
                &[],
                &["virtqueue_add_sgs", "net_failover_create", "printk"],
            ),
            module(
                "kernel/drivers/virtio/virtio_ring.ko",
                &[],
                &["virtqueue_add_sgs"],
                &[],
            ),
            module(
                "kernel/drivers/net/net_failover.ko",
                &[],
                &["net_failover_create"],
                &["failover_register"],
            ),
            module(
                "kernel/net/core/failover.ko",
                &[],
                &["failover_register"],
                &[],
            ),
        ]
    }

    #[test]
    fn dependencies_follow_symbols_and_modules_order() {
        let order = b"kernel/net/core/failover.ko\nkernel/drivers/net/net_failover.ko\n\
            kernel/drivers/virtio/virtio_ring.ko\nkernel/drivers/net/virtio_net.ko\n";
        let input = DepmodInput {
            order: Some(order),
            ..DepmodInput::default()
        };
        let files = outputs(virtio(), &input).unwrap();
        assert_eq!(
            text(&files, "modules.dep"),
            "kernel/net/core/failover.ko:\n\
             kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko\n\
             kernel/drivers/virtio/virtio_ring.ko:\n\
             kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko \
             kernel/net/core/failover.ko kernel/drivers/virtio/virtio_ring.ko\n"
        );
        // Values carry the module's position as priority.
        assert_eq!(
            lookup(&files, "modules.dep.bin", "net_failover"),
            [(
                1,
                "kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko".to_string()
            )]
        );
        assert_eq!(
            lookup(&files, "modules.alias.bin", "virtio:d00000001v*"),
            [(3, "virtio_net".to_string())]
        );
        assert_eq!(
            lookup(&files, "modules.symbols.bin", "symbol:failover_register"),
            [(0, "failover".to_string())]
        );
        assert_eq!(
            text(&files, "modules.softdep"),
            "# Soft dependencies extracted from modules themselves.\nsoftdep virtio_net pre: crc32c\n"
        );
        assert_eq!(text(&files, "modules.devname"), "");
        assert_eq!(files["modules.builtin.bin"], b"");
        assert_eq!(files["modules.builtin.alias.bin"], b"");
        assert_eq!(files.keys().copied().collect::<Vec<_>>(), {
            let mut f = FILES.to_vec();
            f.sort();
            f
        });
        // Without modules.order: the hash table's order, same dependencies.
        let unordered = outputs(virtio(), &DepmodInput::default()).unwrap();
        let lines = |f: &BTreeMap<&str, Vec<u8>>| -> Vec<String> {
            text(f, "modules.dep").lines().map(String::from).collect()
        };
        let (mut a, mut b) = (lines(&files), lines(&unordered));
        assert_ne!(a, b);
        a.sort();
        b.sort();
        assert_eq!(a, b);
        assert_eq!(
            outputs(virtio(), &DepmodInput::default()).unwrap(),
            unordered
        );
    }

    #[test]
    fn cycles_and_duplicates_are_errors() {
        let mods = vec![
            module("kernel/a.ko", &[], &["a_fn"], &["c_fn"]),
            module("kernel/b.ko", &[], &["b_fn"], &["a_fn"]),
            module("kernel/c.ko", &[], &["c_fn"], &["b_fn"]),
            module("kernel/d.ko", &[], &[], &["a_fn"]),
        ];
        match outputs(mods, &DepmodInput::default()) {
            Err(ModuleError::Cycle { cycle }) => {
                assert_eq!(cycle.len(), 4, "{cycle:?}");
                assert_eq!(cycle.first(), cycle.last());
                let mut members = cycle[1..].to_vec();
                members.sort();
                assert_eq!(members, ["a", "b", "c"]);
            }
            other => panic!("{other:?}"),
        }
        let mods = vec![
            module("kernel/x/dm-mod.ko", &[], &[], &[]),
            module("extra/dm_mod.ko", &[], &[], &[]),
        ];
        assert_eq!(
            outputs(mods, &DepmodInput::default()).unwrap_err(),
            ModuleError::Duplicate {
                name: "dm_mod".into(),
                first: "extra/dm_mod.ko".into(),
                second: "kernel/x/dm-mod.ko".into()
            }
        );
    }

    #[test]
    fn non_ascii_index_text_names_the_module() {
        let mods = vec![module("kernel/a.ko", &["alias=caf\u{e9}"], &[], &[])];
        let err = outputs(mods, &DepmodInput::default()).unwrap_err();
        assert!(
            matches!(&err, ModuleError::InFile { path, source } if path == "kernel/a.ko"
                && matches!(**source, ModuleError::Index { file: "modules.alias.bin", .. })),
            "{err}"
        );
    }

    #[test]
    fn names_from_paths() {
        assert_eq!(
            name_from_path("kernel/md/dm-mod.ko").as_deref(),
            Some("dm_mod")
        );
        assert_eq!(name_from_path("a.b.ko").as_deref(), Some("a"));
        assert_eq!(name_from_path("kernel/.ko"), None);
        assert_eq!(name_from_path("kernel/"), None);
        let m = module("kernel/foo.bar.ko", &[], &[], &[]);
        assert_eq!(m.uncompressed_path(), b"kernel/foo.ba");
    }

    #[test]
    fn superfast_matches_kmods_c() {
        // Printed by kmod's hash_superfast compiled with gcc on x86-64.
        let cases: [(&[u8], u32); 10] = [
            (b"", 0),
            (b"a", 291415938),
            (b"ab", 1366002500),
            (b"abc", 3535673738),
            (b"abcd", 3671636187),
            (b"virtio_net", 241856578),
            (b"\xe9t\xe9", 1774056205),
            (b"x\xff", 3371177469),
            (b"ab\x80", 2175421397),
            (b"symbol:virtqueue_add_sgs", 3896738257),
        ];
        for (key, want) in cases {
            assert_eq!(superfast(key), want, "{key:?}");
        }
    }

    #[test]
    fn section_strings() {
        assert!(strings(b"").is_empty());
        assert!(strings(b"\0\0\0").is_empty());
        assert!(
            strings(b"\0a").is_empty(),
            "one byte left after the padding"
        );
        assert_eq!(strings(b"\0\0ab\0\0cd\0"), [&b"ab"[..], b"cd"]);
        assert_eq!(strings(b"ab\0cd"), [&b"ab"[..], b"cd"]);
    }

    #[test]
    fn alias_normalisation() {
        let n = |s: &str| alias_normalize(s.as_bytes()).map(|v| String::from_utf8(v).unwrap());
        assert_eq!(n("pci:v-1[a-c]-x").as_deref(), Some("pci:v_1[a-c]_x"));
        assert_eq!(n("").as_deref(), Some(""));
        assert_eq!(n("a[b"), None);
        assert_eq!(n("a]b"), None);
        let long = "-".repeat(5000);
        assert_eq!(n(&long).unwrap().len(), PATH_MAX - 1);
    }

    #[test]
    fn major_minor_scanning() {
        assert_eq!(
            major_minor(b"char-major-10-229", b"char-major-"),
            Some((10, 229))
        );
        assert_eq!(
            major_minor(b"char-major-10-229-x", b"char-major-"),
            Some((10, 229))
        );
        assert_eq!(
            major_minor(b"char-major- \t+4-5", b"char-major-"),
            Some((4, 5))
        );
        assert_eq!(
            major_minor(b"char-major--5-1", b"char-major-"),
            Some((u32::MAX - 4, 1))
        );
        assert_eq!(
            major_minor(
                b"char-major-4294967297-99999999999999999999999",
                b"char-major-"
            ),
            Some((1, u32::MAX))
        );
        for bad in [
            "char-major-10",
            "char-major-10-",
            "char-major-x-1",
            "char-major-1 -2",
            "block-major-1-2",
        ] {
            assert_eq!(major_minor(bad.as_bytes(), b"char-major-"), None, "{bad}");
        }
    }

    #[test]
    fn devnames() {
        let mods = vec![
            module(
                "kernel/fuse.ko",
                &["alias=char-major-10-229", "alias=devname:fuse"],
                &[],
                &[],
            ),
            module(
                "kernel/loop.ko",
                &[
                    "alias=devname:loop-control",
                    "alias=block-major-7-*",
                    "alias=char-major-10-237",
                ],
                &[],
                &[],
            ),
            module("kernel/nomajor.ko", &["alias=devname:x"], &[], &[]),
        ];
        let files = outputs(mods, &DepmodInput::default()).unwrap();
        let mut lines: Vec<String> = text(&files, "modules.devname")
            .lines()
            .map(String::from)
            .collect();
        assert_eq!(
            lines.remove(0),
            "# Device nodes to trigger on-demand module loading."
        );
        lines.sort();
        assert_eq!(lines, ["fuse fuse c10:229", "loop loop-control c10:237"]);
    }

    #[test]
    fn builtin_lists() {
        let input = DepmodInput {
            builtin: Some(b"kernel/fs/ext4/ext4.ko\n1x\nkernel/a/b-c.ko\nkernel/a/b-c.ko\n"),
            builtin_modinfo: Some(
                b"ext4.alias=fs-ext4\0ext4.license=GPL\0nodot\0q.alias\0skipped.alias=s\0\
                  b_c.alias=b-c\0b_c.alias=bee\0b_c.alias=b-c\0",
            ),
            ..DepmodInput::default()
        };
        let files = outputs(Vec::new(), &input).unwrap();
        let builtin = IndexReader::new(&files["modules.builtin.bin"])
            .unwrap()
            .entries()
            .unwrap();
        let keys: Vec<&[u8]> = builtin.keys().map(Vec::as_slice).collect();
        assert_eq!(keys, [&b"b_c"[..], b"ext4"]);
        assert_eq!(builtin[&b"b_c"[..]], [(0, Vec::new()), (0, Vec::new())]);
        let aliases = IndexReader::new(&files["modules.builtin.alias.bin"])
            .unwrap()
            .entries()
            .unwrap();
        let keys: Vec<&[u8]> = aliases.keys().map(Vec::as_slice).collect();
        assert_eq!(keys, [&b"b_c"[..], b"bee", b"fs_ext4"]);
        assert_eq!(aliases[&b"b_c"[..]].len(), 2);
        // With no module at all the other files are headers or empty indexes.
        assert_eq!(text(&files, "modules.dep"), "");
        assert!(IndexReader::new(&files["modules.dep.bin"])
            .unwrap()
            .entries()
            .unwrap()
            .is_empty());
    }

    /// A minimal ELF64 LE relocatable with the given sections.
    fn elf(sections: &[(&str, &[u8])]) -> Vec<u8> {
        let mut shstrtab = vec![0u8];
        let mut names = Vec::new();
        for (name, _) in sections {
            names.push(shstrtab.len() as u32);
            shstrtab.extend_from_slice(name.as_bytes());
            shstrtab.push(0);
        }
        names.push(shstrtab.len() as u32);
        shstrtab.extend_from_slice(b".shstrtab\0");
        let mut out = vec![0u8; 64];
        let mut headers = vec![[0u8; 64]];
        let all = sections
            .iter()
            .map(|(_, d)| *d)
            .chain([shstrtab.as_slice()]);
        for (i, data) in all.enumerate() {
            let mut h = [0u8; 64];
            h[0..4].copy_from_slice(&names[i].to_le_bytes());
            h[4..8].copy_from_slice(&1u32.to_le_bytes());
            h[24..32].copy_from_slice(&(out.len() as u64).to_le_bytes());
            h[32..40].copy_from_slice(&(data.len() as u64).to_le_bytes());
            headers.push(h);
            out.extend_from_slice(data);
        }
        let shoff = out.len() as u64;
        for h in &headers {
            out.extend_from_slice(h);
        }
        out[..7].copy_from_slice(b"\x7fELF\x02\x01\x01");
        out[0x28..0x30].copy_from_slice(&shoff.to_le_bytes());
        out[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
        out[0x3c..0x3e].copy_from_slice(&(headers.len() as u16).to_le_bytes());
        out[0x3e..0x40].copy_from_slice(&(sections.len() as u16 + 1).to_le_bytes());
        out
    }

    fn symbol(name_at: u32, shndx: u16) -> [u8; 24] {
        let mut s = [0u8; 24];
        s[0..4].copy_from_slice(&name_at.to_le_bytes());
        s[4] = 0x10;
        s[6..8].copy_from_slice(&shndx.to_le_bytes());
        s
    }

    /// exports crc_sym, needs ext_sym, and __versions names module_layout and ext_sym.
    fn sample_ko() -> Vec<u8> {
        let strtab = b"\0__crc_crc_sym\0crc_sym\0ext_sym\0";
        let mut symtab = vec![0u8; 24];
        symtab.extend_from_slice(&symbol(1, 0xfff1));
        symtab.extend_from_slice(&symbol(15, 1));
        symtab.extend_from_slice(&symbol(23, 0));
        let mut versions = vec![0u8; 128];
        versions[8..21].copy_from_slice(b"module_layout");
        versions[72..79].copy_from_slice(b"ext_sym");
        elf(&[
            (".modinfo", b"alias=x\0name=sample\0"),
            (".strtab", strtab),
            (".symtab", &symtab),
            ("__versions", &versions),
            ("__ksymtab_strings", b"\0ignored\0"),
        ])
    }

    #[test]
    fn reads_symbols_from_elf() {
        let ko = sample_ko();
        let m = load("kernel/sample.ko", &ko).unwrap();
        assert_eq!(m.name, "sample");
        assert_eq!(m.exports, [&b"crc_sym"[..]]);
        assert_eq!(m.needs, [&b"ext_sym"[..], b"module_layout"]);
        assert_eq!(m.info, [(&b"alias"[..], &b"x"[..]), (b"name", b"sample")]);
        // No __crc_ symbols: __ksymtab_strings.
        let plain = elf(&[
            (".strtab", b"\0a\0"),
            (".symtab", &[0u8; 48]),
            ("__ksymtab_strings", b"\0one\0two\0"),
        ]);
        let m = load("kernel/plain.ko", &plain).unwrap();
        assert_eq!(m.exports, [&b"one"[..], b"two"]);
        assert!(m.needs.is_empty() && m.info.is_empty());
        // A name offset past .strtab: libkmod falls back, and needs nothing.
        let mut symtab = vec![0u8; 24];
        symtab.extend_from_slice(&symbol(99, 0));
        let odd = elf(&[
            (".strtab", b"\0__crc_x\0"),
            (".symtab", &symtab),
            ("__ksymtab_strings", b"\0y\0"),
        ]);
        let m = load("kernel/odd.ko", &odd).unwrap();
        assert_eq!((m.exports, m.needs.len()), (vec![&b"y"[..]], 0));
    }

    #[test]
    fn unterminated_names_are_errors_with_the_path() {
        let mut symtab = vec![0u8; 24];
        symtab.extend_from_slice(&symbol(1, 0));
        let ko = elf(&[(".strtab", b"\0abc"), (".symtab", &symtab)]);
        let err = load("kernel/bad.ko", &ko).err().unwrap();
        assert_eq!(
            err.to_string(),
            "module kernel/bad.ko: unterminated symbol name"
        );
    }

    proptest::proptest! {
        #[test]
        fn garbage_modules_do_not_panic(pos in 0usize..2000, byte in proptest::num::u8::ANY, cut in 0usize..2000) {
            let mut ko = sample_ko();
            let pos = pos % ko.len();
            ko[pos] = byte;
            let _ = load("kernel/x.ko", &ko);
            let cut = cut % ko.len();
            if let Ok(m) = load("kernel/x.ko", &ko[..cut]) {
                let _ = outputs(vec![m], &DepmodInput::default());
            }
        }

        #[test]
        fn garbage_lists_do_not_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..600)) {
            let input = DepmodInput {
                order: Some(&bytes),
                builtin: Some(&bytes),
                builtin_modinfo: Some(&bytes),
                ..DepmodInput::default()
            };
            let _ = outputs(virtio(), &input);
        }
    }
}
