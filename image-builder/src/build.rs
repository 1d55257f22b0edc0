//! `image-builder build`: spec + lock + inputs → `disk.raw`, the slot artifacts, the platform
//! artifacts of the spec's `outputs:` ([`crate::artifacts`]) and `build.json`.
//!
//! Outputs are made in a staging directory inside the output directory and renamed into place
//! only when everything succeeded, `build.json` last: a failed build never leaves a
//! `build.json` describing files it did not finish. A build whose inputs did not change since
//! the last one (same input digest, outputs intact) is skipped.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use rootfs::deb::ExtractOptions;
use rootfs::modules::ModuleIndex;
use rootfs::tree::{Entry, Kind, Tree};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::esp::{BootCounter, BootEntry, Slot};
use crate::inputs::InputSource;
use crate::layout::{self, DiskLayout};
use crate::lock::Lockfile;
use crate::spec::ImageSpec;
use crate::{esp, ext4, fat, gpt, initramfs, usr};

/// Bumped whenever the builder's output for the same inputs changes.
pub const BUILDER_OUTPUT_VERSION: u32 = 4;
pub const DISK: &str = "disk.raw";
pub const BUILD_JSON: &str = "build.json";
/// The slot artifacts: a release's payload files, under the same names.
pub use channels::release::{INITRD, KERNEL, USR_IMG};

/// What `build` needs besides the spec.
pub struct BuildOptions {
    pub spec_path: PathBuf,
    pub lock_path: PathBuf,
    pub out: PathBuf,
    pub source: InputSource,
    /// The static `/init` for the initramfs (the services crate, built with crt-static).
    pub init: PathBuf,
    pub progress: bool,
    /// Rebuild even when nothing changed.
    pub force: bool,
}

/// One file's identity in `build.json` (the same as in a release's `release.json`).
pub use channels::FileInfo;

/// `build.json`: what was built, from what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildReport {
    pub os: crate::spec::Os,
    pub kernel_release: String,
    /// sha256 over every input (spec, lock, repository files, /init, builder version).
    pub input_digest: String,
    /// Files written to the output directory.
    pub artifacts: BTreeMap<String, FileInfo>,
    /// The platform artifacts among them: output name (`ova`, `vagrant-libvirt`, ...) → files.
    #[serde(default)]
    pub outputs: BTreeMap<String, Vec<String>>,
    /// Partition images inside `disk.raw`.
    pub intermediates: BTreeMap<String, FileInfo>,
    pub layout: DiskLayout,
    pub inputs: Vec<crate::lock::LockedPackage>,
    /// Boot entry file names on the ESP.
    pub boot_entries: Vec<String>,
}

/// The repository root a spec's `files:` are relative to: the parent of the spec's directory.
pub fn repo_root(spec_path: &Path) -> PathBuf {
    let dir = spec_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    dir.join("..")
}

/// Build an image; returns the report (also written as `build.json`).
pub fn build(opts: &BuildOptions) -> Result<BuildReport> {
    let spec = ImageSpec::load(&opts.spec_path)?;
    let lock = Lockfile::load(&opts.lock_path)?;
    lock.check_matches(&spec, &opts.lock_path)?;
    let root = repo_root(&opts.spec_path);
    let init = std::fs::read(&opts.init).with_context(|| {
        format!(
            "reading the initramfs /init at {} (build it with `make tools`: a static build of the services crate's `init`)",
            opts.init.display()
        )
    })?;
    let digest = input_digest(&spec, &opts.spec_path, &opts.lock_path, &root, &init)?;
    if !opts.force {
        if let Some(report) = unchanged(&opts.out, &digest) {
            eprintln!(
                "{}: up to date (inputs unchanged)",
                opts.out.join(DISK).display()
            );
            return Ok(report);
        }
    }

    let mut timer = Timer::new();
    let mut tree = Tree::new();
    for p in &lock.packages {
        let deb = opts.source.fetch(p, opts.progress)?;
        rootfs::deb::extract(
            &deb,
            &p.package,
            &mut tree,
            &ExtractOptions {
                source_date_epoch: spec.source_date_epoch,
            },
        )
        .with_context(|| format!("extracting {} {}", p.package, p.version))?;
    }
    timer.lap("extract");
    let (kernel_release, kernel) = take_kernel(&mut tree)?;
    let bootx64 = match tree.get(esp::SDBOOT_IN_PACKAGE).map(|e| &e.kind) {
        Some(Kind::File(d)) => d.as_slice().to_vec(),
        _ => bail!(
            "package {} does not ship /{}",
            spec.bootloader.package.value,
            esp::SDBOOT_IN_PACKAGE
        ),
    };
    add_spec_content(&spec, &root, &mut tree)?;
    let index = ModuleIndex::from_tree(&tree, &kernel_release)?;
    // What depmod would write (modules.dep and the binary indexes modprobe reads).
    let module_dir = rootfs::modules::module_dir(&kernel_release);
    for (name, data) in index.depmod()? {
        let entry = Entry::file(data, 0o644).with_mtime(spec.source_date_epoch);
        tree.insert(&format!("{module_dir}/{name}"), entry)?;
    }
    tree.clamp_mtimes(spec.source_date_epoch);
    check_only_usr(&tree)?;

    timer.lap("tree");
    let layout = DiskLayout::compute(&spec);
    let usr_part = layout.part(layout::USR_A);
    let wanted: Vec<&str> = spec
        .kernel
        .initramfs_modules
        .iter()
        .map(|m| m.0.as_str())
        .collect();
    let wants_pxe = spec.output_list().contains(&crate::spec::Output::Pxe);
    // The squashfs and the initramfs are independent: make them side by side.
    let (usr_img, initrds) = std::thread::scope(|s| {
        let initrds = s.spawn(|| -> Result<(Vec<u8>, Option<Vec<u8>>)> {
            let epoch = spec.source_date_epoch;
            let t = initramfs::tree(&index, &wanted, &init, epoch)?;
            // A network boot mounts the USR image from RAM through a loop device.
            let pxe = match wants_pxe {
                true => {
                    let t =
                        initramfs::tree(&index, &initramfs::network_boot(&wanted), &init, epoch)?;
                    Some(initramfs::to_bytes(&t)?)
                }
                false => None,
            };
            Ok((initramfs::to_bytes(&t)?, pxe))
        });
        let usr_img = usr::build(&tree.subtree("usr"), spec.source_date_epoch, usr_part.size);
        let initrds = initrds
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the initramfs thread panicked")));
        (usr_img, initrds)
    });
    let (usr_img, (initrd, pxe_initrd)) = (usr_img?, initrds?);

    timer.lap("usr+initrd");
    let entry = BootEntry {
        os_id: spec.os.id.0.clone(),
        os_name: spec.os.name.0.clone(),
        version: spec.os.version.0.clone(),
        slot: Slot::A,
        usr_partuuid: usr_part.guid.to_string(),
        cmdline: spec.kernel.cmdline.clone(),
        counter: Some(BootCounter {
            left: spec.bootloader.tries.0,
            done: 0,
        }),
    };
    let esp_part = layout.part(layout::ESP);
    let esp_files = vec![
        fat::FatFile {
            path: esp::SDBOOT_ON_ESP.into(),
            data: bootx64,
        },
        fat::FatFile {
            path: esp::LOADER_CONF.into(),
            data: esp::loader_conf(spec.bootloader.timeout).into_bytes(),
        },
        fat::FatFile {
            path: format!("{}/{}", esp::ENTRIES_DIR, entry.file_name()),
            data: entry.render().into_bytes(),
        },
        fat::FatFile {
            path: entry.kernel_path(),
            data: kernel.clone(),
        },
        fat::FatFile {
            path: entry.initrd_path(),
            data: initrd.clone(),
        },
    ];
    let esp_params = fat::FatParams {
        size_bytes: esp_part.size,
        volume_id: u32::from_le_bytes(esp_part.guid.as_bytes()[..4].try_into().expect("4 bytes")),
        label: Some("EFI-SYSTEM".into()),
    };
    let esp_img =
        fat::build(&esp_params, &esp_files).context("writing the EFI system partition")?;

    timer.lap("esp");
    std::fs::create_dir_all(&opts.out)
        .with_context(|| format!("creating {}", opts.out.display()))?;
    let staging = tempfile::Builder::new()
        .prefix(".staging-")
        .tempdir_in(&opts.out)
        .with_context(|| format!("creating a staging directory in {}", opts.out.display()))?;
    let epoch = spec.source_date_epoch;
    let root_img = staging.path().join("root.img");
    let root_part = layout.part(layout::ROOT);
    ext4::make(
        Some(&root_tree(epoch)?),
        &root_img,
        root_part.size,
        layout::ROOT,
        &root_part.guid,
        epoch,
    )?;
    let oem_img = staging.path().join("oem.img");
    let oem_part = layout.part(layout::OEM);
    ext4::make(
        None,
        &oem_img,
        oem_part.size,
        layout::OEM,
        &oem_part.guid,
        epoch,
    )?;

    timer.lap("ext4");
    let mut intermediates = BTreeMap::new();
    intermediates.insert("esp.img".to_string(), FileInfo::of(&esp_img));
    intermediates.insert("root.img".to_string(), hash_file(&root_img)?);
    intermediates.insert("oem.img".to_string(), hash_file(&oem_img)?);

    // The disk, with the given OEM partition content.
    let disk_with_oem = |path: &Path, oem: &Path| {
        write_disk(
            &layout,
            path,
            &[
                (layout::ESP, Part::Bytes(&esp_img)),
                (layout::USR_A, Part::Bytes(&usr_img)),
                (layout::OEM, Part::File(oem)),
                (layout::ROOT, Part::File(&root_img)),
            ],
        )
    };
    let disk_tmp = staging.path().join(DISK);
    disk_with_oem(&disk_tmp, &oem_img)?;

    // The Vagrant boxes' disk: the same, with the Vagrant OEM configuration on OEM.
    let vagrant_disk = if spec
        .output_list()
        .into_iter()
        .any(|o| crate::artifacts::vagrant_provider(o).is_some())
    {
        let img = staging.path().join("oem-vagrant.img");
        ext4::make(
            Some(&vagrant_oem_tree(epoch)?),
            &img,
            oem_part.size,
            layout::OEM,
            &oem_part.guid,
            epoch,
        )?;
        intermediates.insert("oem-vagrant.img".to_string(), hash_file(&img)?);
        let disk = staging.path().join("disk-vagrant.raw");
        disk_with_oem(&disk, &img)?;
        Some(disk)
    } else {
        None
    };

    timer.lap("disk");
    let mut artifacts = BTreeMap::new();
    artifacts.insert(USR_IMG.to_string(), FileInfo::of(&usr_img));
    artifacts.insert(KERNEL.to_string(), FileInfo::of(&kernel));
    artifacts.insert(INITRD.to_string(), FileInfo::of(&initrd));
    artifacts.insert(DISK.to_string(), hash_file(&disk_tmp)?);
    std::fs::write(staging.path().join(USR_IMG), &usr_img)?;
    std::fs::write(staging.path().join(KERNEL), &kernel)?;
    std::fs::write(staging.path().join(INITRD), &initrd)?;

    timer.lap("hash+write");
    let sources = crate::artifacts::Sources {
        disk: &disk_tmp,
        kernel: &kernel,
        usr_img: &usr_img,
        pxe_initrd: pxe_initrd.as_deref(),
        vagrant_disk: vagrant_disk.as_deref(),
    };
    let outputs = crate::artifacts::write_all(&spec, &root, &sources, staging.path())?;
    for name in outputs.values().flatten() {
        artifacts.insert(name.clone(), hash_file(&staging.path().join(name))?);
    }

    timer.lap("outputs");
    let report = BuildReport {
        os: spec.os.clone(),
        kernel_release,
        input_digest: digest,
        artifacts,
        outputs,
        intermediates,
        layout,
        inputs: lock.packages.clone(),
        boot_entries: vec![entry.file_name()],
    };
    publish(staging.path(), &opts.out, &report)?;
    Ok(report)
}

/// The Vagrant boxes' OEM partition: `cloud-config.yml` (Vagrant's login key for core, the
/// watch for Vagrant's user-data file), applied on every boot by `oem-cloudinit.service`.
pub fn vagrant_oem_tree(epoch: u64) -> Result<Tree> {
    let mut t = Tree::new();
    t.insert(
        "cloud-config.yml",
        Entry::file(vagrant::boxes::OEM_CLOUD_CONFIG.as_bytes().to_vec(), 0o644).with_mtime(epoch),
    )?;
    Ok(t)
}

/// Move staged artifacts into place, `build.json` last (after removing the old one first).
fn publish(staging: &Path, out: &Path, report: &BuildReport) -> Result<()> {
    let json_path = out.join(BUILD_JSON);
    match std::fs::remove_file(&json_path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("removing {}", json_path.display())),
    }
    for name in report.artifacts.keys() {
        std::fs::rename(staging.join(name), out.join(name))
            .with_context(|| format!("moving {name} into {}", out.display()))?;
    }
    let mut text = serde_json::to_string_pretty(report)?;
    text.push('\n');
    let tmp = staging.join(BUILD_JSON);
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, &json_path)
        .with_context(|| format!("writing {}", json_path.display()))?;
    Ok(())
}

/// The previous report if its digest matches and its artifacts are intact.
fn unchanged(out: &Path, digest: &str) -> Option<BuildReport> {
    let text = std::fs::read_to_string(out.join(BUILD_JSON)).ok()?;
    let report: BuildReport = serde_json::from_str(&text).ok()?;
    if report.input_digest != digest {
        return None;
    }
    for (name, info) in &report.artifacts {
        if hash_file(&out.join(name)).ok()? != *info {
            return None;
        }
    }
    Some(report)
}

fn input_digest(
    spec: &ImageSpec,
    spec_path: &Path,
    lock_path: &Path,
    root: &Path,
    init: &[u8],
) -> Result<String> {
    let mut h = Sha256::new();
    let mut add = |label: &str, bytes: &[u8]| {
        h.update(label.as_bytes());
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    add(
        "builder",
        format!("{}/{}", env!("CARGO_PKG_VERSION"), BUILDER_OUTPUT_VERSION).as_bytes(),
    );
    add("spec", &std::fs::read(spec_path)?);
    add("lock", &std::fs::read(lock_path)?);
    add("init", init);
    for src in spec.source_files() {
        let path = root.join(src);
        add(
            src,
            &std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?,
        );
    }
    Ok(hex::encode(h.finalize()))
}

/// Remove `boot/vmlinuz-<release>` (and the rest of /boot) from the tree.
fn take_kernel(tree: &mut Tree) -> Result<(String, Vec<u8>)> {
    let boot = tree.remove_subtree("boot");
    let kernels: Vec<(String, Vec<u8>)> = boot
        .iter()
        .filter_map(|(path, e)| {
            let release = path.strip_prefix("boot/vmlinuz-")?;
            match &e.kind {
                Kind::File(d) => Some((release.to_string(), d.as_slice().to_vec())),
                _ => None,
            }
        })
        .collect();
    match kernels.len() {
        1 => Ok(kernels.into_iter().next().expect("one kernel")),
        0 => bail!("no kernel: the kernel package must ship /boot/vmlinuz-<release>"),
        n => bail!("{n} kernels found in /boot; the spec must name exactly one kernel package"),
    }
}

/// os-release, repository files, units and symlinks.
fn add_spec_content(spec: &ImageSpec, root: &Path, tree: &mut Tree) -> Result<()> {
    tree.insert(
        "usr/lib/os-release",
        Entry::file(os_release(spec).into_bytes(), 0o644),
    )?;
    for f in &spec.files {
        let path = root.join(&f.src.0);
        let data = std::fs::read(&path)
            .with_context(|| format!("reading {} (files: in the spec)", path.display()))?;
        tree.insert(&f.dst.tree_path(), Entry::file(data, f.mode.0))?;
    }
    for u in &spec.units {
        let path = root.join(&u.src.0);
        let data = std::fs::read(&path)
            .with_context(|| format!("reading {} (units: in the spec)", path.display()))?;
        let name = Path::new(&u.src.0)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        tree.insert(
            &format!("usr/lib/systemd/system/{name}"),
            Entry::file(data, 0o644),
        )?;
    }
    if let Some(u) = &spec.update {
        add_update_engine(spec, u, root, tree)?;
    }
    for s in &spec.symlinks {
        for link in &s.links {
            tree.insert(&link.tree_path(), Entry::symlink(s.target.clone()))?;
        }
    }
    Ok(())
}

/// The engine binary, its default `update.conf` and the root keys.
fn add_update_engine(
    spec: &ImageSpec,
    u: &crate::spec::UpdateSpec,
    root: &Path,
    tree: &mut Tree,
) -> Result<()> {
    let read = |rel: &str| {
        let path = root.join(rel);
        std::fs::read(&path)
            .with_context(|| format!("reading {} (update: in the spec)", path.display()))
    };
    let keys = match &u.root_keys {
        Some(rel) => {
            let keys = read(&rel.0)?;
            channels::canonical::from_slice::<channels::RootKeys>(&keys)
                .with_context(|| format!("{} is not a repository root.json", rel.0))?;
            Some(keys)
        }
        None => None,
    };
    tree.insert(
        "usr/bin/update-engine",
        Entry::file(read(&u.engine.0)?, 0o755),
    )?;
    // Container Linux's command names, answered by the same binary (it looks at argv[0]).
    for name in ["update_engine_client", "locksmithctl"] {
        tree.insert(&format!("usr/bin/{name}"), Entry::symlink("update-engine"))?;
    }
    if let Some(keys) = keys {
        tree.insert(
            "usr/share/update-engine/root.json",
            Entry::file(keys, 0o644),
        )?;
    }
    tree.insert(
        "usr/share/update-engine/update.conf",
        Entry::file(update_conf(spec, u).into_bytes(), 0o644),
    )?;
    Ok(())
}

/// The default `update.conf` (Container Linux format); `/etc/update-engine/update.conf`
/// overrides it key by key. Pure.
pub fn update_conf(spec: &ImageSpec, u: &crate::spec::UpdateSpec) -> String {
    use contract::update_conf::{keys, render};
    let value = |v: &Option<crate::spec::ConfValue>| v.as_ref().map(|v| v.0.clone());
    let group = u.group.as_ref().unwrap_or(&spec.os.channel);
    let mut pairs: Vec<(&str, Option<String>)> = vec![
        (keys::GROUP, Some(group.0.clone())),
        (keys::SERVER, value(&u.server)),
        (keys::REBOOT_STRATEGY, Some(u.reboot_strategy.to_string())),
    ];
    if let Some(l) = &u.locksmith {
        let endpoints: Vec<&str> = l.endpoints.iter().map(|e| e.0.as_str()).collect();
        pairs.extend([
            (
                keys::LOCKSMITHD_ENDPOINT,
                (!endpoints.is_empty()).then(|| endpoints.join(",")),
            ),
            (keys::LOCKSMITHD_GROUP, value(&l.group)),
            (keys::LOCKSMITHD_REBOOT_WINDOW_START, value(&l.window_start)),
            (
                keys::LOCKSMITHD_REBOOT_WINDOW_LENGTH,
                value(&l.window_length),
            ),
        ]);
    }
    if let Some(f) = &u.fleetlock {
        pairs.extend([
            (keys::FLEETLOCK_URL, Some(f.url.0.clone())),
            (keys::FLEETLOCK_GROUP, value(&f.group)),
        ]);
    }
    render(pairs.iter().filter_map(|(k, v)| Some((*k, v.as_deref()?))))
}

/// `/usr/lib/os-release` (os-release(5)) with the channel as `RELEASE_CHANNEL`. Pure.
pub fn os_release(spec: &ImageSpec) -> String {
    let os = &spec.os;
    contract::os_release::OsRelease {
        name: os.name.0.clone(),
        id: os.id.0.clone(),
        id_like: os.id_like.iter().map(|i| i.0.clone()).collect(),
        version: os.version.0.clone(),
        channel: os.channel.0.clone(),
    }
    .render()
}

/// Everything must live under /usr once packages are extracted.
fn check_only_usr(tree: &Tree) -> Result<()> {
    if let Some((path, _)) = tree
        .iter()
        .find(|(p, _)| *p != "usr" && !p.starts_with("usr/"))
    {
        bail!("/{path} is outside /usr; all OS content must live under /usr");
    }
    Ok(())
}

/// The ROOT filesystem's initial tree: merged-/usr links and empty state directories.
pub fn root_tree(epoch: u64) -> Result<Tree> {
    let mut t = Tree::new();
    for (link, target) in [
        ("bin", "usr/bin"),
        ("sbin", "usr/sbin"),
        ("lib", "usr/lib"),
        ("lib64", "usr/lib64"),
    ] {
        t.insert(link, Entry::symlink(target).with_mtime(epoch))?;
    }
    for (dir, mode) in [
        ("boot", 0o755),
        ("dev", 0o755),
        ("etc", 0o755),
        ("home", 0o755),
        ("media", 0o755),
        ("mnt", 0o755),
        ("proc", 0o555),
        ("root", 0o700),
        ("run", 0o755),
        ("sys", 0o555),
        ("tmp", 0o1777),
        ("usr", 0o755),
        ("var", 0o755),
    ] {
        t.insert(dir, Entry::dir(mode).with_mtime(epoch))?;
    }
    t.insert(
        "etc/os-release",
        Entry::symlink("../usr/lib/os-release").with_mtime(epoch),
    )?;
    Ok(t)
}

enum Part<'a> {
    Bytes(&'a [u8]),
    File(&'a Path),
}

/// Write a sparse disk: the GPT and each partition's content at its offset.
fn write_disk(layout: &DiskLayout, path: &Path, parts: &[(&str, Part)]) -> Result<()> {
    let mut f = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    f.set_len(layout.size)?;
    let g = gpt::render(layout);
    f.write_all(&g.head)?;
    f.seek(SeekFrom::Start(g.tail_offset))?;
    f.write_all(&g.tail)?;
    for (label, content) in parts {
        let p = layout.part(label);
        f.seek(SeekFrom::Start(p.offset))?;
        let written = match content {
            Part::Bytes(b) => {
                write_sparse(&mut f, b)?;
                b.len() as u64
            }
            Part::File(src) => crate::sparse::copy_into(src, &mut f, p.offset)
                .with_context(|| format!("copying {}", src.display()))?,
        };
        if written > p.size {
            bail!(
                "{label} content is {written} bytes, more than its {}-byte partition",
                p.size
            );
        }
    }
    f.sync_all()?;
    Ok(())
}

/// Write `data` at the current position, skipping all-zero 64 KiB blocks (the file was
/// created with `set_len`, so skipped blocks read as zeros and stay holes).
fn write_sparse(f: &mut File, data: &[u8]) -> std::io::Result<()> {
    const BLOCK: usize = 64 * 1024;
    for chunk in data.chunks(BLOCK) {
        if chunk.iter().all(|&b| b == 0) {
            f.seek(SeekFrom::Current(chunk.len() as i64))?;
        } else {
            f.write_all(chunk)?;
        }
    }
    Ok(())
}

/// sha256 and size of a file (holes are hashed without being read).
pub fn hash_file(path: &Path) -> Result<FileInfo> {
    let (sha256, size) =
        crate::sparse::sha256(path).with_context(|| format!("hashing {}", path.display()))?;
    Ok(FileInfo { size, sha256 })
}

/// Phase timings on stderr when `IMAGE_BUILDER_TIMINGS` is set (for benchmarks).
struct Timer {
    on: bool,
    last: std::time::Instant,
}

impl Timer {
    fn new() -> Timer {
        Timer {
            on: std::env::var_os("IMAGE_BUILDER_TIMINGS").is_some(),
            last: std::time::Instant::now(),
        }
    }
    fn lap(&mut self, phase: &str) {
        if self.on {
            eprintln!(
                "timing: {phase:<12} {:>7.2} s",
                self.last.elapsed().as_secs_f64()
            );
        }
        self.last = std::time::Instant::now();
    }
}
