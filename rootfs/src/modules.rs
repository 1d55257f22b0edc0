//! Kernel modules: read `.modinfo` from `.ko` files, resolve the load closure of a set of
//! modules and write `modules.dep`.
//!
//! Debian's kernel packages ship uncompressed `.ko` files but no `modules.dep`, so the
//! dependencies come from each module's `.modinfo` ELF section (`depends=a,b`, as the
//! kernel's `modpost` writes it). Only ELF64 little-endian objects are read (the System V
//! gABI "Sections" chapter describes the layout); every offset is bounds-checked, so a
//! truncated or foreign file is an error, never a panic.
//!
//! Module names are normalised like kmod does: `-` becomes `_` (`dm-mod` is `dm_mod`).
//! Modules listed in `modules.builtin` are part of the kernel image: depending on one, or
//! asking for one, needs nothing loaded.
//!
//! [`ModuleIndex::depmod`] computes every file kmod's `depmod` writes (the binary indexes
//! `modprobe` reads among them, see [`depmod`] and [`kmod_index`]).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::tree::{Kind, Tree};

pub mod depmod;
pub mod kmod_index;

/// Why module information could not be read or resolved.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ModuleError {
    #[error("not an ELF file")]
    NotElf,
    #[error("unsupported ELF class {class} / data encoding {data} (need ELF64 little-endian)")]
    UnsupportedElf { class: u8, data: u8 },
    #[error(
        "truncated ELF: {what} at offset {offset} (+{len}) lies beyond the {file_len}-byte file"
    )]
    Truncated {
        what: &'static str,
        offset: u64,
        len: u64,
        file_len: usize,
    },
    #[error("bad ELF section header table: {reason}")]
    BadSectionTable { reason: &'static str },
    #[error("no .modinfo section")]
    NoModinfo,
    #[error(".modinfo has no name= entry")]
    NoName,
    #[error("module {path}: {source}")]
    InFile {
        path: String,
        source: Box<ModuleError>,
    },
    #[error("module {name:?} is provided by both {first} and {second}")]
    Duplicate {
        name: String,
        first: String,
        second: String,
    },
    #[error("no module directory {dir} in the tree")]
    NoModuleDir { dir: String },
    #[error("unknown module {name:?} ({})", needed_by_text(.needed_by))]
    Unknown {
        name: String,
        needed_by: Option<String>,
    },
    #[error("module dependency cycle: {}", .cycle.join(" -> "))]
    Cycle { cycle: Vec<String> },
    #[error("the file name gives no module name")]
    NoNameInPath,
    #[error("unterminated {what}")]
    UnterminatedString { what: &'static str },
    #[error("{file}: {source}")]
    Index {
        file: &'static str,
        source: kmod_index::IndexError,
    },
}

fn needed_by_text(needed_by: &Option<String>) -> String {
    match needed_by {
        Some(m) => format!("needed by {m}"),
        None => "requested".to_string(),
    }
}

/// The `.modinfo` section of one module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModInfo {
    /// `name=`, as written (not normalised).
    pub name: String,
    /// `depends=`, split on commas, empty items dropped (not normalised).
    pub depends: Vec<String>,
    /// `vermagic=`, e.g. `6.1.0-56-cloud-amd64 SMP preempt mod_unload modversions `.
    pub vermagic: Option<String>,
    /// Every `key=value` pair in section order (including the ones above); values that are
    /// not UTF-8 (some author names) are decoded lossily.
    pub fields: Vec<(String, String)>,
}

impl ModInfo {
    /// The first value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `key` (`alias` has many), in section order.
    pub fn values<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.fields
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Whether a module alias names a kind of device the kernel reports by `modalias`
/// (`pci:…`, `usb:…`, `virtio:…`, `scsi:…`, `acpi*:…`, `cpu:…`), as opposed to a filesystem
/// (`fs-vfat`), a device node (`devname:loop-control`, `block-major-7-*`) or an algorithm.
pub fn is_device_alias(alias: &str) -> bool {
    alias.contains(':') && !alias.starts_with("devname:")
}

/// A module name in kmod's canonical form: `-` replaced by `_`.
pub fn normalize_name(name: &str) -> String {
    name.replace('-', "_")
}

/// Parse the `.modinfo` section of an ELF64 little-endian kernel module.
pub fn modinfo(ko: &[u8]) -> Result<ModInfo, ModuleError> {
    let section = Elf::parse(ko)?
        .section_named(".modinfo")?
        .ok_or(ModuleError::NoModinfo)?;
    parse_modinfo(section)
}

fn parse_modinfo(section: &[u8]) -> Result<ModInfo, ModuleError> {
    let fields: Vec<(String, String)> = section
        .split(|&b| b == 0)
        .filter(|item| !item.is_empty())
        .filter_map(|item| {
            let text = String::from_utf8_lossy(item);
            let (k, v) = text.split_once('=')?;
            Some((k.to_string(), v.to_string()))
        })
        .collect();
    let value = |key: &str| {
        fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    };
    let name = value("name")
        .filter(|n| !n.is_empty())
        .ok_or(ModuleError::NoName)?;
    let depends = value("depends")
        .map(|d| {
            d.split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let vermagic = value("vermagic");
    Ok(ModInfo {
        name,
        depends,
        vermagic,
        fields,
    })
}

/// ELF constants (System V gABI).
const ELF_MAGIC: &[u8; 4] = b"\x7fELF";
const ELFCLASS64: u8 = 2;
const ELFDATA2LSB: u8 = 1;
const EHDR_LEN: u64 = 64;
const SHDR_LEN: u64 = 64;
const SHT_NOBITS: u32 = 8;
const SHN_XINDEX: u16 = 0xffff;

/// One section header, the fields this module needs.
#[derive(Debug, Clone, Copy)]
struct Section {
    name: u32,
    kind: u32,
    offset: u64,
    size: u64,
    link: u32,
}

/// A bounds-checked view of an ELF64 little-endian file's section table.
struct Elf<'a> {
    data: &'a [u8],
    shoff: u64,
    shentsize: u64,
    shnum: u64,
    shstrndx: u64,
}

impl<'a> Elf<'a> {
    fn parse(data: &'a [u8]) -> Result<Self, ModuleError> {
        if data.len() < 6 || &data[..4] != ELF_MAGIC {
            return Err(ModuleError::NotElf);
        }
        if (data[4], data[5]) != (ELFCLASS64, ELFDATA2LSB) {
            return Err(ModuleError::UnsupportedElf {
                class: data[4],
                data: data[5],
            });
        }
        let header = slice(data, 0, EHDR_LEN, "ELF header")?;
        let mut elf = Elf {
            data,
            shoff: le_u64(&header[0x28..0x30]),
            shentsize: le_u16(&header[0x3a..0x3c]).into(),
            shnum: le_u16(&header[0x3c..0x3e]).into(),
            shstrndx: le_u16(&header[0x3e..0x40]).into(),
        };
        if elf.shoff == 0 {
            return Err(ModuleError::BadSectionTable {
                reason: "no section header table",
            });
        }
        if elf.shentsize < SHDR_LEN {
            return Err(ModuleError::BadSectionTable {
                reason: "section header entries too small",
            });
        }
        elf.extended_numbering()?;
        Ok(elf)
    }

    /// Section counts and the string table index beyond 0xff00 live in section 0 (gABI).
    fn extended_numbering(&mut self) -> Result<(), ModuleError> {
        let first = self.raw_section(0)?;
        if self.shnum == 0 {
            self.shnum = first.size;
        }
        if self.shstrndx == u64::from(SHN_XINDEX) {
            self.shstrndx = first.link.into();
        }
        if self.shstrndx >= self.shnum {
            return Err(ModuleError::BadSectionTable {
                reason: "string table index out of range",
            });
        }
        Ok(())
    }

    /// The header of section `index`, without checking it against `shnum`.
    fn raw_section(&self, index: u64) -> Result<Section, ModuleError> {
        let offset = index
            .checked_mul(self.shentsize)
            .and_then(|o| o.checked_add(self.shoff))
            .ok_or(ModuleError::BadSectionTable {
                reason: "offset overflows",
            })?;
        let h = slice(self.data, offset, SHDR_LEN, "section header")?;
        Ok(Section {
            name: le_u32(&h[0..4]),
            kind: le_u32(&h[4..8]),
            offset: le_u64(&h[24..32]),
            size: le_u64(&h[32..40]),
            link: le_u32(&h[40..44]),
        })
    }

    /// The bytes of a section (empty for `SHT_NOBITS`).
    fn contents(&self, section: &Section) -> Result<&'a [u8], ModuleError> {
        if section.kind == SHT_NOBITS {
            return Ok(&[]);
        }
        slice(self.data, section.offset, section.size, "section contents")
    }

    /// The contents of the first section called `wanted`, if any.
    fn section_named(&self, wanted: &str) -> Result<Option<&'a [u8]>, ModuleError> {
        let strtab = self.contents(&self.raw_section(self.shstrndx)?)?;
        for index in 0..self.shnum {
            let section = self.raw_section(index)?;
            if c_string(strtab, section.name) == Some(wanted.as_bytes()) {
                return self.contents(&section).map(Some);
            }
        }
        Ok(None)
    }
}

/// `len` bytes at `offset`, or a `Truncated` error.
fn slice<'a>(
    data: &'a [u8],
    offset: u64,
    len: u64,
    what: &'static str,
) -> Result<&'a [u8], ModuleError> {
    let truncated = || ModuleError::Truncated {
        what,
        offset,
        len,
        file_len: data.len(),
    };
    let start = usize::try_from(offset).map_err(|_| truncated())?;
    let end = offset
        .checked_add(len)
        .and_then(|e| usize::try_from(e).ok())
        .ok_or_else(truncated)?;
    data.get(start..end).ok_or_else(truncated)
}

/// The NUL-terminated string at `offset` of a string table.
fn c_string(table: &[u8], offset: u32) -> Option<&[u8]> {
    let rest = table.get(usize::try_from(offset).ok()?..)?;
    let end = rest.iter().position(|&b| b == 0)?;
    Some(&rest[..end])
}

fn le_u16(b: &[u8]) -> u16 {
    u16::from_le_bytes([b[0], b[1]])
}

fn le_u32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

fn le_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}

/// One loadable module of the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Module {
    /// Normalised name (`dm_mod`).
    pub name: String,
    /// Path relative to the module directory, as in `modules.dep`
    /// (`kernel/drivers/block/virtio_blk.ko`).
    pub path: String,
    /// Path in the tree (`usr/lib/modules/<release>/kernel/...`).
    pub tree_path: String,
    /// Normalised direct dependencies, sorted, without duplicates.
    pub depends: Vec<String>,
    /// The `.ko` file's bytes.
    pub data: Arc<Vec<u8>>,
}

/// Every module of one kernel release in a tree, and the kernel's built-in modules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleIndex {
    kernel_release: String,
    modules: BTreeMap<String, Module>,
    builtin: BTreeSet<String>,
    /// The kernel's `modules.order`, `modules.builtin` and `modules.builtin.modinfo`.
    order: Option<Arc<Vec<u8>>>,
    builtin_list: Option<Arc<Vec<u8>>>,
    builtin_modinfo: Option<Arc<Vec<u8>>>,
}

/// Whether a walk stops on problems (`closure`) or steps over them (`modules.dep`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Strictness {
    Strict,
    Lenient,
}

impl ModuleIndex {
    /// Index every `usr/lib/modules/<kernel_release>/**/*.ko` (regular files and hard links;
    /// compressed `.ko.xz`/`.ko.zst` are not read) and `modules.builtin` if present (and
    /// keep `modules.order`, `modules.builtin` and `modules.builtin.modinfo` for
    /// [`ModuleIndex::depmod`]).
    pub fn from_tree(tree: &Tree, kernel_release: &str) -> Result<ModuleIndex, ModuleError> {
        let dir = module_dir(kernel_release);
        if !tree.get(&dir).is_some_and(|e| e.is_dir()) {
            return Err(ModuleError::NoModuleDir { dir });
        }
        let lead = format!("{dir}/");
        let mut modules: BTreeMap<String, Module> = BTreeMap::new();
        for (tree_path, entry) in tree.iter() {
            let Some(path) = tree_path.strip_prefix(&lead) else {
                continue;
            };
            if !path.ends_with(".ko") {
                continue;
            }
            let Some(data) = file_data(tree, &entry.kind) else {
                continue;
            };
            let module = read_module(path, tree_path, data)?;
            if let Some(first) = modules.get(&module.name) {
                let (first, second) = (first.path.clone(), module.path);
                return Err(ModuleError::Duplicate {
                    name: module.name,
                    first,
                    second,
                });
            }
            modules.insert(module.name.clone(), module);
        }
        let list = |name: &str| {
            let entry = tree.get(&format!("{lead}{name}"))?;
            file_data(tree, &entry.kind).map(Arc::clone)
        };
        let builtin_list = list("modules.builtin");
        let builtin = builtin_list
            .as_ref()
            .map(|text| parse_builtin(&String::from_utf8_lossy(text)))
            .unwrap_or_default();
        Ok(ModuleIndex {
            kernel_release: kernel_release.to_string(),
            modules,
            builtin,
            order: list("modules.order"),
            builtin_list,
            builtin_modinfo: list("modules.builtin.modinfo"),
        })
    }

    pub fn kernel_release(&self) -> &str {
        &self.kernel_release
    }

    /// The module called `name` (either spelling, `dm-mod` or `dm_mod`).
    pub fn get(&self, name: &str) -> Option<&Module> {
        self.modules.get(&normalize_name(name))
    }

    /// Whether `name` is built into the kernel image.
    pub fn is_builtin(&self, name: &str) -> bool {
        self.builtin.contains(&normalize_name(name))
    }

    /// All loadable modules, by name.
    pub fn modules(&self) -> impl Iterator<Item = &Module> {
        self.modules.values()
    }

    /// The same kernel with only the modules called `names` (unknown names are skipped): what
    /// an initramfs carries, for [`ModuleIndex::depmod`] over just those.
    pub fn subset<'n>(&self, names: impl IntoIterator<Item = &'n str>) -> ModuleIndex {
        let modules = names
            .into_iter()
            .filter_map(|n| self.modules.get(&normalize_name(n)))
            .map(|m| (m.name.clone(), m.clone()))
            .collect();
        ModuleIndex {
            kernel_release: self.kernel_release.clone(),
            modules,
            builtin: self.builtin.clone(),
            order: self.order.clone(),
            builtin_list: self.builtin_list.clone(),
            builtin_modinfo: self.builtin_modinfo.clone(),
        }
    }

    /// The modules to load for `wanted`, each after all of its dependencies: a depth-first
    /// walk taking `wanted` in order and each module's dependencies by name. Built-in
    /// modules are skipped; an unknown module or a dependency cycle is an error.
    pub fn closure(&self, wanted: &[&str]) -> Result<Vec<&Module>, ModuleError> {
        let mut walk = Walk::new(self, Strictness::Strict);
        for name in wanted {
            walk.visit(&normalize_name(name), None)?;
        }
        Ok(walk.order)
    }

    /// Every file kmod's `depmod` would write into the module directory
    /// ([`depmod::FILES`]: `modules.dep`, the binary indexes `modprobe` reads, ...), by
    /// file name, byte for byte as depmod 30 writes them. Dependencies come from the
    /// symbols each module exports and needs (as depmod finds them), not from `.modinfo`.
    pub fn depmod(&self) -> Result<BTreeMap<&'static str, Vec<u8>>, ModuleError> {
        let modules: Vec<(&str, &[u8])> = self
            .modules
            .values()
            .map(|m| (m.path.as_str(), m.data.as_slice()))
            .collect();
        depmod::depmod(&depmod::DepmodInput {
            modules: &modules,
            order: self.order.as_deref().map(Vec::as_slice),
            builtin: self.builtin_list.as_deref().map(Vec::as_slice),
            builtin_modinfo: self.builtin_modinfo.as_deref().map(Vec::as_slice),
        })
    }

    /// A `modules.dep` from the `.modinfo` dependencies (for [`ModuleIndex::depmod`]'s
    /// exact file, use that): one line per module, sorted by path,
    /// `path: dep dep ...` listing direct and indirect dependencies in reverse load order
    /// (modprobe loads them from the last to the first). Unknown dependencies are left out
    /// and cycles broken, as depmod does with a warning.
    pub fn modules_dep(&self) -> String {
        let mut by_path: Vec<&Module> = self.modules.values().collect();
        by_path.sort_by(|a, b| a.path.cmp(&b.path));
        let mut text = String::new();
        for module in by_path {
            let mut walk = Walk::new(self, Strictness::Lenient);
            // Lenient walks do not fail.
            let _ = walk.visit(&module.name, None);
            let deps: Vec<&str> = walk
                .order
                .iter()
                .rev()
                .skip(1)
                .map(|m| m.path.as_str())
                .collect();
            text.push_str(&module.path);
            text.push(':');
            for dep in deps {
                text.push(' ');
                text.push_str(dep);
            }
            text.push('\n');
        }
        text
    }
}

/// The module directory of a release inside a merged-/usr tree.
pub fn module_dir(kernel_release: &str) -> String {
    format!("usr/lib/modules/{kernel_release}")
}

/// The bytes of a regular file or of a hard link's target.
fn file_data<'a>(tree: &'a Tree, kind: &'a Kind) -> Option<&'a Arc<Vec<u8>>> {
    match kind {
        Kind::File(data) => Some(data),
        Kind::Hardlink(target) => match &tree.get(target)?.kind {
            Kind::File(data) => Some(data),
            _ => None,
        },
        _ => None,
    }
}

fn read_module(path: &str, tree_path: &str, data: &Arc<Vec<u8>>) -> Result<Module, ModuleError> {
    let in_file = |e| ModuleError::InFile {
        path: path.to_string(),
        source: Box::new(e),
    };
    let info = modinfo(data).map_err(in_file)?;
    let depends: BTreeSet<String> = info.depends.iter().map(|d| normalize_name(d)).collect();
    Ok(Module {
        name: normalize_name(&info.name),
        path: path.to_string(),
        tree_path: tree_path.to_string(),
        depends: depends.into_iter().collect(),
        data: Arc::clone(data),
    })
}

/// Names in `modules.builtin` (`kernel/fs/ext4/ext4.ko` lines), normalised.
fn parse_builtin(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|line| {
            let file = line.trim().rsplit('/').next()?;
            let name = file.strip_suffix(".ko")?;
            Some(normalize_name(name))
        })
        .collect()
}

/// A depth-first walk emitting modules in post-order (dependencies first).
struct Walk<'a> {
    index: &'a ModuleIndex,
    strictness: Strictness,
    done: BTreeSet<&'a str>,
    /// The current path from a wanted module down, for cycle detection and messages.
    stack: Vec<&'a str>,
    order: Vec<&'a Module>,
}

impl<'a> Walk<'a> {
    fn new(index: &'a ModuleIndex, strictness: Strictness) -> Self {
        Walk {
            index,
            strictness,
            done: BTreeSet::new(),
            stack: Vec::new(),
            order: Vec::new(),
        }
    }

    fn visit(&mut self, name: &str, needed_by: Option<&str>) -> Result<(), ModuleError> {
        if self.done.contains(name) || self.index.builtin.contains(name) {
            return Ok(());
        }
        let Some(module) = self.index.modules.get(name) else {
            return self.problem(ModuleError::Unknown {
                name: name.to_string(),
                needed_by: needed_by.map(str::to_string),
            });
        };
        if let Some(at) = self.stack.iter().position(|&m| m == name) {
            let mut cycle: Vec<String> = self.stack[at..].iter().map(|m| m.to_string()).collect();
            cycle.push(name.to_string());
            return self.problem(ModuleError::Cycle { cycle });
        }
        self.stack.push(&module.name);
        for dep in &module.depends {
            self.visit(dep, Some(&module.name))?;
        }
        self.stack.pop();
        self.done.insert(&module.name);
        self.order.push(module);
        Ok(())
    }

    fn problem(&self, error: ModuleError) -> Result<(), ModuleError> {
        match self.strictness {
            Strictness::Strict => Err(error),
            Strictness::Lenient => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::Entry;

    /// A minimal ELF64 LE relocatable: header, .shstrtab, .modinfo, then the section headers
    /// (last, so that every truncation cuts into the table).
    fn fake_ko(modinfo: &[u8]) -> Vec<u8> {
        let shstrtab = b"\0.shstrtab\0.modinfo\0";
        let strtab_off = 64u64;
        let modinfo_off = strtab_off + shstrtab.len() as u64;
        let shoff = (modinfo_off + modinfo.len() as u64).next_multiple_of(8);
        let mut elf = vec![0u8; 64];
        elf[..4].copy_from_slice(ELF_MAGIC);
        elf[4..7].copy_from_slice(&[ELFCLASS64, ELFDATA2LSB, 1]);
        elf[0x10..0x12].copy_from_slice(&1u16.to_le_bytes()); // ET_REL
        elf[0x12..0x14].copy_from_slice(&62u16.to_le_bytes()); // EM_X86_64
        elf[0x28..0x30].copy_from_slice(&shoff.to_le_bytes());
        elf[0x34..0x36].copy_from_slice(&64u16.to_le_bytes()); // e_ehsize
        elf[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
        elf[0x3c..0x3e].copy_from_slice(&3u16.to_le_bytes());
        elf[0x3e..0x40].copy_from_slice(&1u16.to_le_bytes());
        elf.extend_from_slice(shstrtab);
        elf.extend_from_slice(modinfo);
        elf.resize(shoff as usize, 0);
        elf.extend_from_slice(&[0u8; 64]); // SHN_UNDEF
        elf.extend_from_slice(&shdr(1, 3, strtab_off, shstrtab.len() as u64)); // SHT_STRTAB
        elf.extend_from_slice(&shdr(11, 1, modinfo_off, modinfo.len() as u64)); // SHT_PROGBITS
        elf
    }

    fn shdr(name: u32, kind: u32, offset: u64, size: u64) -> [u8; 64] {
        let mut h = [0u8; 64];
        h[0..4].copy_from_slice(&name.to_le_bytes());
        h[4..8].copy_from_slice(&kind.to_le_bytes());
        h[24..32].copy_from_slice(&offset.to_le_bytes());
        h[32..40].copy_from_slice(&size.to_le_bytes());
        h[48..56].copy_from_slice(&1u64.to_le_bytes()); // sh_addralign
        h
    }

    fn ko(name: &str, depends: &str) -> Vec<u8> {
        let info = format!(
            "license=GPL\0author=J\u{f6}rn\0depends={depends}\0intree=Y\0name={name}\0\
             vermagic=6.1.0-test SMP mod_unload \0"
        );
        fake_ko(info.as_bytes())
    }

    #[test]
    fn reads_modinfo() {
        let info = modinfo(&ko(
            "virtio_pci",
            "virtio_ring,virtio_pci_modern_dev,virtio",
        ))
        .unwrap();
        assert_eq!(info.name, "virtio_pci");
        assert_eq!(
            info.depends,
            ["virtio_ring", "virtio_pci_modern_dev", "virtio"]
        );
        assert_eq!(info.vermagic.as_deref(), Some("6.1.0-test SMP mod_unload "));
        assert_eq!(info.get("license"), Some("GPL"));
        assert_eq!(info.get("author"), Some("J\u{f6}rn"));
        assert_eq!(
            modinfo(&ko("virtio_ring", "")).unwrap().depends,
            Vec::<String>::new()
        );
    }

    #[test]
    fn modinfo_errors() {
        assert_eq!(modinfo(b""), Err(ModuleError::NotElf));
        assert_eq!(modinfo(b"#!/bin/sh\n"), Err(ModuleError::NotElf));
        let mut elf32 = ko("a", "");
        elf32[4] = 1;
        assert_eq!(
            modinfo(&elf32),
            Err(ModuleError::UnsupportedElf { class: 1, data: 1 })
        );
        assert_eq!(
            modinfo(&fake_ko(b"license=GPL\0")),
            Err(ModuleError::NoName)
        );
        let mut renamed = ko("a", "");
        let at = renamed.windows(8).position(|w| w == b".modinfo").unwrap();
        renamed[at + 1] = b'X';
        assert_eq!(modinfo(&renamed), Err(ModuleError::NoModinfo));
    }

    #[test]
    fn every_truncation_is_an_error() {
        let full = ko("virtio_blk", "virtio,virtio_ring");
        for len in 0..full.len() {
            assert!(
                modinfo(&full[..len]).is_err(),
                "prefix of {len} bytes accepted"
            );
        }
        assert!(modinfo(&full).is_ok());
    }

    #[test]
    fn hostile_headers_do_not_panic() {
        let full = ko("a", "b");
        let fields: [(usize, usize); 5] = [(0x28, 8), (0x3a, 2), (0x3c, 2), (0x3e, 2), (0, 0)];
        for (at, len) in fields {
            for fill in [0x00, 0x01, 0x7f, 0x80, 0xff] {
                let mut bad = full.clone();
                bad[at..at + len].fill(fill);
                let _ = modinfo(&bad);
            }
        }
        // Section headers pointing anywhere.
        let shoff = full.len() - 3 * 64;
        for field in [0usize, 24, 32, 40] {
            for value in [0u64, 1, u64::MAX, u64::MAX / 2, full.len() as u64] {
                let mut bad = full.clone();
                for section in 0..3 {
                    let at = shoff + section * 64 + field;
                    let width = if field == 0 || field == 40 { 4 } else { 8 };
                    bad[at..at + width].copy_from_slice(&value.to_le_bytes()[..width]);
                }
                let _ = modinfo(&bad);
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn garbage_does_not_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = modinfo(&bytes);
            let mut elf = b"\x7fELF\x02\x01\x01".to_vec();
            elf.extend_from_slice(&bytes);
            let _ = modinfo(&elf);
        }

        #[test]
        fn flipped_bytes_do_not_panic(pos in 0usize..1000, byte in proptest::num::u8::ANY) {
            let mut elf = ko("virtio_net", "net_failover,virtio,virtio_ring");
            let pos = pos % elf.len();
            elf[pos] = byte;
            let _ = modinfo(&elf);
        }
    }

    const KVER: &str = "6.1.0-test";

    fn tree_with(modules: &[(&str, &str, &str)], builtin: &str) -> Tree {
        let mut t = Tree::new();
        let dir = module_dir(KVER);
        t.insert(
            &format!("{dir}/modules.builtin"),
            Entry::file(builtin, 0o644),
        )
        .unwrap();
        for (path, name, depends) in modules {
            t.insert(
                &format!("{dir}/{path}"),
                Entry::file(ko(name, depends), 0o644),
            )
            .unwrap();
        }
        t
    }

    /// A small copy of the cloud kernel's graph (depends as in its .modinfo).
    fn virtio_tree() -> Tree {
        tree_with(
            &[
                ("kernel/drivers/virtio/virtio_ring.ko", "virtio_ring", ""),
                ("kernel/drivers/virtio/virtio.ko", "virtio", ""),
                (
                    "kernel/drivers/virtio/virtio_pci_modern_dev.ko",
                    "virtio_pci_modern_dev",
                    "",
                ),
                (
                    "kernel/drivers/virtio/virtio_pci_legacy_dev.ko",
                    "virtio_pci_legacy_dev",
                    "",
                ),
                (
                    "kernel/drivers/virtio/virtio_pci.ko",
                    "virtio_pci",
                    "virtio_ring,virtio_pci_modern_dev,virtio_pci_legacy_dev,virtio",
                ),
                (
                    "kernel/drivers/block/virtio_blk.ko",
                    "virtio_blk",
                    "virtio,virtio_ring",
                ),
                ("kernel/net/core/failover.ko", "failover", ""),
                (
                    "kernel/drivers/net/net_failover.ko",
                    "net_failover",
                    "failover",
                ),
                (
                    "kernel/drivers/net/virtio_net.ko",
                    "virtio_net",
                    "net_failover,virtio_ring,virtio",
                ),
                ("kernel/drivers/md/dm-mod.ko", "dm_mod", ""),
                (
                    "kernel/drivers/md/dm-verity.ko",
                    "dm_verity",
                    "dm-bufio,dm-mod,crc32c",
                ),
                ("kernel/drivers/md/dm-bufio.ko", "dm_bufio", ""),
            ],
            "kernel/fs/ext4/ext4.ko\nkernel/crypto/crc32c_generic.ko\nkernel/lib/crc32c.ko\n",
        )
    }

    fn names(modules: &[&Module]) -> Vec<String> {
        modules.iter().map(|m| m.name.clone()).collect()
    }

    #[test]
    fn index_reads_the_tree() {
        let index = ModuleIndex::from_tree(&virtio_tree(), KVER).unwrap();
        assert_eq!(index.modules().count(), 12);
        let dm = index.get("dm-mod").unwrap();
        assert_eq!(dm.path, "kernel/drivers/md/dm-mod.ko");
        assert_eq!(
            dm.tree_path,
            "usr/lib/modules/6.1.0-test/kernel/drivers/md/dm-mod.ko"
        );
        assert_eq!(
            index.get("dm_verity").unwrap().depends,
            ["crc32c", "dm_bufio", "dm_mod"]
        );
        assert!(index.is_builtin("ext4") && index.is_builtin("crc32c"));
        assert!(!index.is_builtin("virtio"));
        assert_eq!(
            ModuleIndex::from_tree(&virtio_tree(), "5.10.0").unwrap_err(),
            ModuleError::NoModuleDir {
                dir: "usr/lib/modules/5.10.0".into()
            }
        );
    }

    #[test]
    fn closure_orders_dependencies_first() {
        let index = ModuleIndex::from_tree(&virtio_tree(), KVER).unwrap();
        let order = index.closure(&[
            "virtio_pci",
            "virtio_blk",
            "virtio_net",
            "dm-verity",
            "ext4",
        ]);
        assert_eq!(
            names(&order.unwrap()),
            [
                "virtio",
                "virtio_pci_legacy_dev",
                "virtio_pci_modern_dev",
                "virtio_ring",
                "virtio_pci",
                "virtio_blk",
                "failover",
                "net_failover",
                "virtio_net",
                "dm_bufio",
                "dm_mod",
                "dm_verity",
            ]
        );
        // Wanted order breaks ties; repeats and both spellings collapse.
        let order = index
            .closure(&["dm_mod", "virtio", "dm-mod", "dm_mod"])
            .unwrap();
        assert_eq!(names(&order), ["dm_mod", "virtio"]);
        assert_eq!(index.closure(&[]).unwrap(), Vec::<&Module>::new());
    }

    #[test]
    fn closure_is_topological() {
        let index = ModuleIndex::from_tree(&virtio_tree(), KVER).unwrap();
        let all: Vec<&str> = index.modules().map(|m| m.name.as_str()).collect();
        let order = index.closure(&all).unwrap();
        assert_eq!(order.len(), all.len());
        for (i, m) in order.iter().enumerate() {
            for dep in m.depends.iter().filter(|d| !index.is_builtin(d)) {
                assert!(
                    order[..i].iter().any(|o| &o.name == dep),
                    "{dep} before {}",
                    m.name
                );
            }
        }
    }

    #[test]
    fn unknown_modules_name_who_needed_them() {
        let t = tree_with(&[("kernel/a.ko", "a", "b"), ("kernel/b.ko", "b", "c")], "");
        let index = ModuleIndex::from_tree(&t, KVER).unwrap();
        let err = index.closure(&["a"]).unwrap_err();
        assert_eq!(
            err,
            ModuleError::Unknown {
                name: "c".into(),
                needed_by: Some("b".into())
            }
        );
        assert_eq!(err.to_string(), "unknown module \"c\" (needed by b)");
        let err = index.closure(&["zz-top"]).unwrap_err();
        assert_eq!(
            err,
            ModuleError::Unknown {
                name: "zz_top".into(),
                needed_by: None
            }
        );
    }

    #[test]
    fn cycles_are_errors() {
        let t = tree_with(
            &[
                ("kernel/a.ko", "a", "b"),
                ("kernel/b.ko", "b", "c"),
                ("kernel/c.ko", "c", "a"),
            ],
            "",
        );
        let index = ModuleIndex::from_tree(&t, KVER).unwrap();
        let err = index.closure(&["b"]).unwrap_err();
        assert_eq!(
            err,
            ModuleError::Cycle {
                cycle: vec!["b".into(), "c".into(), "a".into(), "b".into()]
            }
        );
        // modules.dep still gets written, cycles broken.
        assert_eq!(index.modules_dep(), "kernel/a.ko: kernel/b.ko kernel/c.ko\nkernel/b.ko: kernel/c.ko kernel/a.ko\nkernel/c.ko: kernel/a.ko kernel/b.ko\n");
    }

    #[test]
    fn bad_and_duplicate_modules() {
        let mut t = tree_with(&[("kernel/a.ko", "a", "")], "");
        let dir = module_dir(KVER);
        t.insert(
            &format!("{dir}/extra/a.ko"),
            Entry::file(ko("a", ""), 0o644),
        )
        .unwrap();
        assert_eq!(
            ModuleIndex::from_tree(&t, KVER).unwrap_err(),
            ModuleError::Duplicate {
                name: "a".into(),
                first: "extra/a.ko".into(),
                second: "kernel/a.ko".into()
            }
        );
        let mut t = tree_with(&[], "");
        t.insert(
            &format!("{dir}/kernel/bad.ko"),
            Entry::file(b"garbage".to_vec(), 0o644),
        )
        .unwrap();
        let err = ModuleIndex::from_tree(&t, KVER).unwrap_err();
        assert!(
            matches!(&err, ModuleError::InFile { path, .. } if path == "kernel/bad.ko"),
            "{err}"
        );
    }

    #[test]
    fn hardlinked_modules_are_read() {
        let mut t = tree_with(&[("kernel/a.ko", "a", "")], "");
        let dir = module_dir(KVER);
        t.insert("other/b.ko", Entry::file(ko("b", "a"), 0o644))
            .unwrap();
        let link = Entry {
            kind: Kind::Hardlink("other/b.ko".into()),
            ..Entry::dir(0o644)
        };
        t.insert(&format!("{dir}/kernel/b.ko"), link).unwrap();
        let index = ModuleIndex::from_tree(&t, KVER).unwrap();
        assert_eq!(names(&index.closure(&["b"]).unwrap()), ["a", "b"]);
    }

    #[test]
    fn modules_dep_text() {
        let index = ModuleIndex::from_tree(&virtio_tree(), KVER).unwrap();
        let text = index.modules_dep();
        let line = |path: &str| {
            text.lines()
                .find(|l| l.starts_with(&format!("{path}:")))
                .unwrap()
                .to_string()
        };
        assert_eq!(
            line("kernel/drivers/net/virtio_net.ko"),
            "kernel/drivers/net/virtio_net.ko: kernel/drivers/virtio/virtio_ring.ko \
             kernel/drivers/virtio/virtio.ko kernel/drivers/net/net_failover.ko \
             kernel/net/core/failover.ko"
        );
        assert_eq!(
            line("kernel/drivers/virtio/virtio.ko"),
            "kernel/drivers/virtio/virtio.ko:"
        );
        let paths: Vec<&str> = text.lines().map(|l| l.split(':').next().unwrap()).collect();
        let mut sorted = paths.clone();
        sorted.sort();
        assert_eq!(paths, sorted);
        assert_eq!(paths.len(), 12);
        assert_eq!(text, index.modules_dep(), "deterministic");
    }
}
