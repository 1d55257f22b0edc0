//! `ModuleIndex::depmod` against kmod's real `depmod` (the `kmod` binary of the pool's kmod
//! package, run through a `depmod` symlink) on the pool's kernel package: every file depmod
//! writes must come out byte for byte the same. Three module sets:
//!
//! * the whole kernel package as shipped;
//! * every other module, without `modules.order` and `modules.builtin.modinfo` (modules in
//!   depmod's hash table order, an empty `modules.builtin.alias.bin`);
//! * every module with a `modules.order` listing half of them backwards (the rest sorted
//!   after them in hash table order).
//!
//! Then the real `modprobe --show-depends` reads our files for every module name and a
//! sample of aliases and must print what it prints with depmod's files.
//!
//! Needs `pool/kmod_*.deb` and `pool/linux-image-*.deb` (both are in
//! images/container-host.lock: `image-builder fetch images/container-host.yaml --pool pool`).

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use rootfs::deb::{extract, ExtractOptions};
use rootfs::modules::{depmod::FILES, module_dir, ModuleIndex};
use rootfs::tree::{Entry, Kind, Tree};

fn pool() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../pool")
}

/// The one package of the container host's lock whose name `is` accepts, from the pool (the
/// pool may hold other versions, or another kernel flavour, beside it).
fn pool_deb(what: &str, is: impl Fn(&str) -> bool) -> Vec<u8> {
    let lock_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../images/container-host.lock");
    let lock: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&lock_path).unwrap()).unwrap();
    let found: Vec<&str> = lock["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| is(p["package"].as_str().unwrap()))
        .map(|p| p["filename"].as_str().unwrap())
        .collect();
    assert_eq!(
        found.len(),
        1,
        "want one {what} package in {}: {found:?}",
        lock_path.display()
    );
    let path = pool().join(found[0]);
    fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (image-builder fetch images/container-host.yaml --pool pool)",
            path.display()
        )
    })
}

fn unpack(deb: &[u8], name: &str) -> Tree {
    let mut tree = Tree::new();
    let opts = ExtractOptions {
        source_date_epoch: u64::MAX,
    };
    extract(deb, name, &mut tree, &opts).unwrap();
    tree
}

fn file<'a>(tree: &'a Tree, path: &str) -> &'a [u8] {
    match &tree.get(path).unwrap_or_else(|| panic!("no {path}")).kind {
        Kind::File(data) => data,
        other => panic!("{path} is {other:?}"),
    }
}

/// kmod's binary with `depmod` and `modprobe` links to it.
struct Kmod {
    _dir: tempfile::TempDir,
    depmod: PathBuf,
    modprobe: PathBuf,
}

fn kmod() -> Kmod {
    let tree = unpack(&pool_deb("kmod", |p| p == "kmod"), "kmod");
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("kmod");
    fs::write(&bin, file(&tree, "usr/bin/kmod")).unwrap();
    fs::set_permissions(&bin, fs::Permissions::from_mode(0o755)).unwrap();
    let (depmod, modprobe) = (dir.path().join("depmod"), dir.path().join("modprobe"));
    symlink(&bin, &depmod).unwrap();
    symlink(&bin, &modprobe).unwrap();
    Kmod {
        _dir: dir,
        depmod,
        modprobe,
    }
}

/// The kernel package's tree and its release.
fn kernel() -> (Tree, String) {
    let tree = unpack(
        &pool_deb("kernel", |p| p.starts_with("linux-image-")),
        "linux-image",
    );
    let releases: Vec<String> = tree
        .iter()
        .filter_map(|(p, e)| {
            let rest = p.strip_prefix("usr/lib/modules/")?;
            (e.is_dir() && !rest.contains('/')).then(|| rest.to_string())
        })
        .collect();
    assert_eq!(releases.len(), 1, "{releases:?}");
    let release = releases[0].clone();
    (tree, release)
}

/// Write the tree's module directory to `root/lib/modules/<release>/` (where `depmod -b` and
/// `modprobe -d` look), plus `extra` files next to the modules.
fn write_module_dir(tree: &Tree, release: &str, root: &Path, extra: &BTreeMap<&str, Vec<u8>>) {
    let lead = format!("{}/", module_dir(release));
    let dir = root.join("lib/modules").join(release);
    fs::create_dir_all(&dir).unwrap();
    for (path, entry) in tree.iter() {
        let Some(rel) = path.strip_prefix(&lead) else {
            continue;
        };
        match &entry.kind {
            Kind::Dir => fs::create_dir_all(dir.join(rel)).unwrap(),
            Kind::File(data) => fs::write(dir.join(rel), data.as_slice()).unwrap(),
            other => panic!("unexpected {other:?} at {path}"),
        }
    }
    for (name, data) in extra {
        fs::write(dir.join(name), data).unwrap();
    }
}

/// Run the real depmod on `tree` and return the files it wrote.
fn real_depmod(kmod: &Kmod, tree: &Tree, release: &str) -> BTreeMap<&'static str, Vec<u8>> {
    let root = tempfile::tempdir().unwrap();
    write_module_dir(tree, release, root.path(), &BTreeMap::new());
    // An empty configuration directory: the host's /etc/depmod.d must not matter.
    let config = root.path().join("depmod.d");
    fs::create_dir(&config).unwrap();
    let out = Command::new(&kmod.depmod)
        .arg("-b")
        .arg(root.path())
        .arg("-C")
        .arg(&config)
        .arg(release)
        .output()
        .unwrap();
    // Warnings (odd aliases, missing lists) are fine; the test cases look at them.
    assert!(
        out.status.success(),
        "depmod: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = root.path().join("lib/modules").join(release);
    FILES
        .iter()
        .map(|&name| (name, fs::read(dir.join(name)).unwrap()))
        .collect()
}

/// Where two files first differ, readably.
fn first_difference(ours: &[u8], theirs: &[u8]) -> String {
    let at = ours
        .iter()
        .zip(theirs)
        .position(|(a, b)| a != b)
        .unwrap_or(ours.len().min(theirs.len()));
    let line = theirs[..at.min(theirs.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count();
    let around = |d: &[u8]| {
        String::from_utf8_lossy(&d[at.saturating_sub(80)..(at + 80).min(d.len())]).into_owned()
    };
    format!(
        "lengths {} (ours) / {} (depmod), first difference at byte {at} (line {}):\n\
         ours:   {:?}\ndepmod: {:?}",
        ours.len(),
        theirs.len(),
        line + 1,
        around(ours),
        around(theirs)
    )
}

fn assert_same(
    what: &str,
    tree: &Tree,
    release: &str,
    kmod: &Kmod,
) -> BTreeMap<&'static str, Vec<u8>> {
    let ours = ModuleIndex::from_tree(tree, release)
        .unwrap()
        .depmod()
        .unwrap();
    let theirs = real_depmod(kmod, tree, release);
    assert_eq!(
        ours.keys().collect::<Vec<_>>(),
        theirs.keys().collect::<Vec<_>>()
    );
    for (name, want) in &theirs {
        let got = &ours[name];
        assert!(
            got == want,
            "{what}: {name} differs: {}",
            first_difference(got, want)
        );
    }
    ours
}

fn module_paths(tree: &Tree, release: &str) -> Vec<String> {
    let lead = format!("{}/", module_dir(release));
    tree.iter()
        .filter(|(p, _)| p.starts_with(&lead) && p.ends_with(".ko"))
        .map(|(p, _)| p.clone())
        .collect()
}

#[test]
fn depmod_outputs_match_real_depmod() {
    let kmod = kmod();
    let (tree, release) = kernel();
    let dir = module_dir(&release);

    // 1. The package as shipped.
    let ours = assert_same("whole kernel", &tree, &release, &kmod);
    let dep = String::from_utf8(ours["modules.dep"].clone()).unwrap();
    assert!(
        dep.lines().count() > 1000,
        "{} modules",
        dep.lines().count()
    );
    assert!(
        dep.lines()
            .any(|l| l.starts_with("kernel/fs/overlayfs/overlay.ko:")),
        "overlay is a module"
    );
    assert!(ours["modules.devname"].starts_with(b"# Device nodes"));
    assert!(!ours["modules.builtin.alias.bin"].is_empty());

    // 2. Every other module, no modules.order, no modules.builtin.modinfo.
    let mut half = tree.clone();
    for path in module_paths(&tree, &release).iter().step_by(2) {
        half.remove_subtree(path);
    }
    half.remove_subtree(&format!("{dir}/modules.order"));
    half.remove_subtree(&format!("{dir}/modules.builtin.modinfo"));
    let ours = assert_same("half, unordered", &half, &release, &kmod);
    assert!(ours["modules.builtin.alias.bin"].is_empty());

    // 3. All modules, modules.order naming half of them backwards.
    let order = String::from_utf8(file(&tree, &format!("{dir}/modules.order")).to_vec()).unwrap();
    let partial: String = order
        .lines()
        .rev()
        .step_by(2)
        .map(|l| format!("{l}\n"))
        .collect();
    let mut reordered = tree.clone();
    reordered
        .insert(&format!("{dir}/modules.order"), Entry::file(partial, 0o644))
        .unwrap();
    assert_same("partial order", &reordered, &release, &kmod);
}

/// `modprobe --show-depends` for `names`, with the module directory under `root` (written
/// `ROOT` in the output).
fn show_depends(
    kmod: &Kmod,
    root: &Path,
    release: &str,
    names: &[String],
) -> (bool, String, String) {
    let out = Command::new(&kmod.modprobe)
        .arg("-d")
        .arg(root)
        .arg("-S")
        .arg(release)
        .arg("-a")
        .arg("--show-depends")
        .args(names)
        .output()
        .unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).replace(&*root.to_string_lossy(), "ROOT");
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

#[test]
fn modprobe_reads_our_indexes() {
    let kmod = kmod();
    let (tree, release) = kernel();
    let ours = ModuleIndex::from_tree(&tree, &release)
        .unwrap()
        .depmod()
        .unwrap();
    let theirs = real_depmod(&kmod, &tree, &release);
    let (our_root, their_root) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    write_module_dir(&tree, &release, our_root.path(), &ours);
    write_module_dir(&tree, &release, their_root.path(), &theirs);

    let dep = String::from_utf8(ours["modules.dep"].clone()).unwrap();
    let mut names: Vec<String> = dep
        .lines()
        .map(|l| {
            let path = l.split(':').next().unwrap();
            rootfs::modules::depmod::name_from_path(path).unwrap()
        })
        .collect();
    // Aliases (every 7th), symbols, built-in modules and their aliases, and a miss.
    let alias = String::from_utf8(ours["modules.alias"].clone()).unwrap();
    names.extend(
        alias
            .lines()
            .filter_map(|l| l.strip_prefix("alias ")?.split(' ').next())
            .step_by(7)
            .map(str::to_string),
    );
    names.extend(
        [
            "symbol:virtqueue_add_sgs",
            "ext4",
            "crc32c",
            "fs-ext4",
            "8250",
            "nonexistent_module",
        ]
        .map(String::from),
    );
    let (ok, stdout, stderr) = show_depends(&kmod, our_root.path(), &release, &names);
    let want = show_depends(&kmod, their_root.path(), &release, &names);
    assert_eq!((ok, &stderr), (want.0, &want.2));
    if stdout != want.1 {
        let (ours, theirs): (Vec<&str>, Vec<&str>) =
            (stdout.lines().collect(), want.1.lines().collect());
        let at = ours.iter().zip(&theirs).position(|(a, b)| a != b);
        panic!(
            "modprobe output differs ({} / {} lines), first at line {at:?}: {:?} / {:?}",
            ours.len(),
            theirs.len(),
            at.map(|i| ours[i]),
            at.map(|i| theirs[i])
        );
    }
    assert!(
        stdout.lines().count() > 2000,
        "{} lines",
        stdout.lines().count()
    );
    for needed in [
        "overlay.ko",
        "br_netfilter.ko",
        "nf_tables.ko",
        "virtio_net.ko",
    ] {
        assert!(stdout.contains(needed), "{needed} not resolved");
    }
    assert!(
        stdout.contains("builtin 8250"),
        "built-in modules resolve: {}",
        &stdout[..stdout.len().min(300)]
    );
    assert!(stderr.contains("nonexistent_module"), "{stderr}");
}

/// A minimal ELF64 little-endian relocatable with the given sections (and `.shstrtab`).
fn elf(sections: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let all: Vec<(&str, Vec<u8>)> = sections
        .iter()
        .cloned()
        .chain([(".shstrtab", Vec::new())])
        .collect();
    let mut shstrtab = vec![0u8];
    let mut name_at = Vec::new();
    for (name, _) in &all {
        name_at.push(shstrtab.len() as u32);
        shstrtab.extend_from_slice(name.as_bytes());
        shstrtab.push(0);
    }
    let mut out = vec![0u8; 64];
    let mut headers = vec![[0u8; 64]];
    for (i, (name, data)) in all.iter().enumerate() {
        let data = if *name == ".shstrtab" {
            &shstrtab
        } else {
            data
        };
        out.resize(out.len().next_multiple_of(8), 0);
        let kind: u32 = match *name {
            ".symtab" => 2,
            ".strtab" | ".shstrtab" => 3,
            _ => 1,
        };
        let mut h = [0u8; 64];
        h[0..4].copy_from_slice(&name_at[i].to_le_bytes());
        h[4..8].copy_from_slice(&kind.to_le_bytes());
        h[24..32].copy_from_slice(&(out.len() as u64).to_le_bytes());
        h[32..40].copy_from_slice(&(data.len() as u64).to_le_bytes());
        h[48..56].copy_from_slice(&1u64.to_le_bytes());
        if kind == 2 {
            h[56..64].copy_from_slice(&24u64.to_le_bytes());
        }
        headers.push(h);
        out.extend_from_slice(data);
    }
    out.resize(out.len().next_multiple_of(8), 0);
    let shoff = out.len() as u64;
    for h in &headers {
        out.extend_from_slice(h);
    }
    out[..4].copy_from_slice(b"\x7fELF");
    out[4..7].copy_from_slice(&[2, 1, 1]);
    out[0x10..0x12].copy_from_slice(&1u16.to_le_bytes()); // ET_REL
    out[0x12..0x14].copy_from_slice(&62u16.to_le_bytes()); // EM_X86_64
    out[0x14..0x18].copy_from_slice(&1u32.to_le_bytes());
    out[0x28..0x30].copy_from_slice(&shoff.to_le_bytes());
    out[0x34..0x36].copy_from_slice(&64u16.to_le_bytes());
    out[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
    out[0x3c..0x3e].copy_from_slice(&(headers.len() as u16).to_le_bytes());
    out[0x3e..0x40].copy_from_slice(&(all.len() as u16).to_le_bytes());
    out
}

/// What a fake module exports and needs.
#[derive(Default)]
struct Fake<'a> {
    modinfo: &'a [&'a str],
    /// Exported with a `__crc_` symbol.
    crc: &'a [&'a str],
    /// Listed in `__ksymtab_strings` only.
    ksymtab: &'a [&'a str],
    /// Undefined symbols, `true` for weak ones.
    undefined: &'a [(&'a str, bool)],
    /// `__versions` entries.
    versions: &'a [&'a str],
}

fn fake_ko(f: &Fake) -> Vec<u8> {
    let mut modinfo = Vec::new();
    for item in f.modinfo {
        modinfo.extend_from_slice(item.as_bytes());
        modinfo.push(0);
    }
    let mut strtab = vec![0u8];
    let mut symtab = vec![0u8; 24];
    let mut symbol = |name: &str, info: u8, shndx: u16| {
        let mut s = [0u8; 24];
        s[0..4].copy_from_slice(&(strtab.len() as u32).to_le_bytes());
        s[4] = info;
        s[6..8].copy_from_slice(&shndx.to_le_bytes());
        symtab.extend_from_slice(&s);
        strtab.extend_from_slice(name.as_bytes());
        strtab.push(0);
    };
    symbol("local_helper", 0x02, 1); // STB_LOCAL STT_FUNC, defined
    for name in f.crc {
        symbol(&format!("__crc_{name}"), 0x00, 0xfff1); // STB_LOCAL, SHN_ABS
        symbol(name, 0x12, 1); // STB_GLOBAL STT_FUNC
    }
    for (name, weak) in f.undefined {
        symbol(name, if *weak { 0x20 } else { 0x10 }, 0);
    }
    let mut sections = vec![
        (".modinfo", modinfo),
        (".strtab", strtab),
        (".symtab", symtab),
    ];
    if !f.versions.is_empty() {
        let mut v = Vec::new();
        for name in f.versions {
            let mut entry = [0u8; 64];
            entry[..8].copy_from_slice(&0x1234_5678u64.to_le_bytes());
            entry[8..8 + name.len()].copy_from_slice(name.as_bytes());
            v.extend_from_slice(&entry);
        }
        sections.push(("__versions", v));
    }
    if !f.ksymtab.is_empty() {
        let mut s = vec![0u8]; // leading padding, skipped
        for name in f.ksymtab {
            s.extend_from_slice(name.as_bytes());
            s.push(0);
        }
        sections.push(("__ksymtab_strings", s));
    }
    elf(&sections)
}

/// A module tree of fake modules and kernel lists.
fn fake_tree(release: &str, modules: &[(&str, Fake)], lists: &[(&str, &[u8])]) -> Tree {
    let dir = module_dir(release);
    let mut tree = Tree::new();
    tree.insert(&dir, Entry::dir(0o755)).unwrap();
    for (path, fake) in modules {
        tree.insert(&format!("{dir}/{path}"), Entry::file(fake_ko(fake), 0o644))
            .unwrap();
    }
    for (name, data) in lists {
        tree.insert(&format!("{dir}/{name}"), Entry::file(data.to_vec(), 0o644))
            .unwrap();
    }
    tree
}

#[test]
fn odd_modules_match_real_depmod() {
    let kmod = kmod();
    let release = "6.1.0-test";
    let modules = [
        (
            "kernel/drivers/a-core.ko",
            Fake {
                modinfo: &[
                    "license=GPL",
                    "alias=pci:v0000ABCDd*sv*sd*bc*sc*i*",
                    "alias=char-major-10-200",
                    "alias=devname:acore",
                    "softdep=pre: b_lib post: c",
                    "alias=a-dash-alias",
                    "weird",
                    "alias=usb:v1234p[0-9A-F-]*d-*",
                    "alias=foo[abc",
                    "alias=bar]x",
                    "name=a_core",
                ],
                crc: &["core_fn", "shared_sym"],
                undefined: &[("lib_fn", false), ("printk", false)],
                versions: &["module_layout", "lib_fn", "printk"],
                ..Fake::default()
            },
        ),
        (
            "kernel/lib/b-lib.ko",
            Fake {
                modinfo: &["alias=block-major-7-*", "name=b_lib"],
                crc: &["lib_fn", "shared_sym"],
                ..Fake::default()
            },
        ),
        (
            "kernel/drivers/c.ko",
            Fake {
                modinfo: &[
                    "alias=devname:cdev",
                    "alias=block-major-259-0",
                    "alias=devname:cdev2",
                    "alias=char-major-1-2",
                    "name=c",
                ],
                ksymtab: &["c_fn", "c_other"],
                undefined: &[("core_fn", false), ("lib_fn", false)],
                ..Fake::default()
            },
        ),
        (
            "kernel/drivers/d.ko",
            Fake {
                modinfo: &["alias=devname:nomajor", "alias=char-major- +7-x", "name=d"],
                undefined: &[("unknown_sym", false)],
                ..Fake::default()
            },
        ),
        (
            "kernel/drivers/e.ko",
            Fake {
                modinfo: &[
                    "alias=char-major--5-4294967297",
                    "alias=devname:e",
                    "name=e",
                ],
                undefined: &[(".lib_fn", false)],
                versions: &["c_fn", "module_layout"],
                ..Fake::default()
            },
        ),
        (
            "kernel/extra/f.ko",
            Fake {
                modinfo: &["alias=f-alias", "name=f"],
                undefined: &[("shared_sym", false)],
                ..Fake::default()
            },
        ),
        (
            "kernel/extra/f2.ko",
            Fake {
                modinfo: &["alias=f-alias", "name=f2"],
                crc: &["f2_fn"],
                ..Fake::default()
            },
        ),
        (
            "kernel/x/g.ko",
            Fake {
                modinfo: &["name=g"],
                undefined: &[("c_other", true), ("f2_fn", false)],
                ..Fake::default()
            },
        ),
    ];
    let order: &[u8] = b"kernel/drivers/c.ko\nkernel/drivers/a-core.ko\nkernel/gone.ko\n\
        kernel/lib/b-lib.ko\nkernel/drivers/e.ko\nkernel/drivers/d.ko\nkernel/x/g.ko\n";
    let builtin: &[u8] = b"kernel/fs/ext4/ext4.ko\nkernel/foo/bar-baz.ko\n1bad\nkernel/noext\n\
        kernel/dup.ko\nkernel/dup.ko\nkernel/dir/\n";
    let modinfo: &[u8] = b"ext4.alias=fs-ext4\0ext4.alias=ext3\0ext4.license=GPL\0noperiod\0\
        bar_baz.alias=bar-[a-c]-x\0x.alias=\0y.alias\0z.alias=skipped\0dup.alias=dup\0\
        dup.alias=dup\0w.alias=un[closed\0";
    let tree = fake_tree(
        release,
        &modules,
        &[
            ("modules.order", order),
            ("modules.builtin", builtin),
            ("modules.builtin.modinfo", modinfo),
        ],
    );
    let ours = assert_same("odd modules", &tree, release, &kmod);
    let dep = String::from_utf8(ours["modules.dep"].clone()).unwrap();
    assert!(
        dep.starts_with("kernel/drivers/c.ko: kernel/drivers/a-core.ko kernel/lib/b-lib.ko\n"),
        "{dep}"
    );
    assert!(String::from_utf8_lossy(&ours["modules.devname"]).contains("c cdev b259:0\n"));

    // Unterminated lists: depmod keeps the hash order and still reads the last line.
    let tree = fake_tree(
        release,
        &modules,
        &[
            ("modules.order", b"kernel/x/g.ko\nkernel/drivers/c.ko"),
            ("modules.builtin", b"kernel/fs/ext4/ext4.ko"),
            ("modules.builtin.modinfo", b"ext4.alias=fs-ext4"),
        ],
    );
    assert_same("unterminated lists", &tree, release, &kmod);
}

#[test]
fn cycles_fail_like_depmod() {
    let kmod = kmod();
    let release = "6.1.0-test";
    let modules = [
        (
            "kernel/p.ko",
            Fake {
                modinfo: &["name=p"],
                crc: &["p_fn"],
                undefined: &[("q_fn", false)],
                ..Fake::default()
            },
        ),
        (
            "kernel/q.ko",
            Fake {
                modinfo: &["name=q"],
                crc: &["q_fn"],
                undefined: &[("p_fn", false)],
                ..Fake::default()
            },
        ),
        (
            "kernel/r.ko",
            Fake {
                modinfo: &["name=r"],
                undefined: &[("p_fn", false)],
                ..Fake::default()
            },
        ),
    ];
    let tree = fake_tree(release, &modules, &[]);
    let err = ModuleIndex::from_tree(&tree, release)
        .unwrap()
        .depmod()
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text == "module dependency cycle: p -> q -> p"
            || text == "module dependency cycle: q -> p -> q",
        "{text}"
    );
    let root = tempfile::tempdir().unwrap();
    write_module_dir(&tree, release, root.path(), &BTreeMap::new());
    let out = Command::new(&kmod.depmod)
        .arg("-b")
        .arg(root.path())
        .arg(release)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Cycle detected"));
}
