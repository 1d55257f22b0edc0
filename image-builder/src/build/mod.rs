//! `image-builder build`: spec + lock + inputs → the OS tree → the filesystem images → the disk
//! → the platform artifacts of the spec's `outputs:` → `build.json`. [`build`] is that list of
//! steps; each step is a function of the stage modules (`os`, `fs`, `disk`, `artifacts`).
//!
//! Everything is made in a [`staging::Staging`] directory and moved into place at the end,
//! `build.json` last. A build whose inputs did not change since the last one ([`digest`]) is
//! skipped.

pub mod digest;
pub mod staging;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::artifacts;
use crate::disk::bios;
use crate::disk::layout::{self, DiskLayout};
use crate::disk::write::{file_info, Content};
use crate::fs::{esp, ext4, initramfs, usr};
use crate::inputs::{InputSource, Lockfile};
use crate::os::{self, OsTree};
use crate::report::{BuildReport, FileInfo, DISK, INITRD, KERNEL, USR_IMG};
use crate::spec::{self, ImageSpec, Output};
use digest::DigestInputs;
use staging::Staging;

/// What `build` needs besides the spec.
pub struct BuildOptions {
    pub spec_path: PathBuf,
    pub lock_path: PathBuf,
    pub out: PathBuf,
    pub source: InputSource,
    /// The static `/init` for the initramfs (the `init` crate, built with crt-static).
    pub init: PathBuf,
    /// Outputs instead of the spec's `outputs:` (`--outputs`).
    pub outputs: Option<Vec<Output>>,
    pub progress: bool,
    /// Rebuild even when nothing changed.
    pub force: bool,
}

/// Build an image; returns the report (also written as `build.json`). A build that fails
/// leaves nothing of an earlier build in `out` that would look complete: the files its
/// `build.json` lists, and `build.json` last, are removed ([`forget_previous`]).
pub fn build(opts: &BuildOptions) -> Result<BuildReport> {
    build_or_fail(opts).inspect_err(|_| forget_previous(&opts.out))
}

/// Removes the build in `out` (the files its `build.json` lists, then `build.json`), if there
/// is one; what cannot be removed stays, the build's error is what is reported.
fn forget_previous(out: &Path) {
    let Ok(previous) = BuildReport::load(out) else {
        return;
    };
    for name in previous.artifacts.keys() {
        // Names from our own report; never a path outside `out`.
        if !name.contains('/') && name != ".." {
            let _ = std::fs::remove_file(out.join(name));
        }
    }
    let _ = std::fs::remove_file(out.join(crate::report::BUILD_JSON));
    eprintln!(
        "{}: the earlier build there was removed (this one failed)",
        out.display()
    );
}

fn build_or_fail(opts: &BuildOptions) -> Result<BuildReport> {
    let inputs = Inputs::load(opts)?;
    if !opts.force {
        if let Some(report) = digest::up_to_date(&opts.out, &inputs.digest) {
            let disk = opts.out.join(DISK);
            eprintln!("{}: up to date (inputs unchanged)", disk.display());
            return Ok(report);
        }
    }
    // Made first: a build that cannot write its output fails before any work.
    let staging = Staging::new(&opts.out)?;
    let spec = &inputs.spec;
    let mut timer = Timer::new();
    let os = os::assemble(
        spec,
        &inputs.lock,
        &opts.source,
        &inputs.root,
        opts.progress,
    )?;
    timer.lap("tree");
    let layout = DiskLayout::compute(spec);
    let boot = slot_images(spec, &layout, &os, &inputs.init)?;
    timer.lap("usr+initrd");
    let entry = esp::first_entry(spec, &layout);
    let esp_files = esp::files(spec, &entry, &os.bootloader, &os.kernel, &boot.initrd);
    let esp_img = esp::image(&layout, &esp_files).context("writing the EFI system partition")?;
    timer.lap("esp");
    let state = state_partitions(spec, &layout, &staging)?;
    timer.lap("ext4");
    let bios = bios_boot(&layout, &os)?;
    let disks = write_disks(
        &layout,
        &esp_img,
        &boot.usr,
        bios.as_ref(),
        &state,
        &staging,
    )?;
    timer.lap("disk");
    let mut files = BTreeMap::new();
    files.insert(USR_IMG.to_string(), staging.write(USR_IMG, &boot.usr)?);
    files.insert(KERNEL.to_string(), staging.write(KERNEL, &os.kernel)?);
    files.insert(INITRD.to_string(), staging.write(INITRD, &boot.initrd)?);
    files.insert(DISK.to_string(), file_info(&disks.disk)?);
    timer.lap("hash+write");
    let sources = artifacts::Sources {
        disk: &disks.disk,
        kernel: &os.kernel,
        usr_img: &boot.usr,
        pxe_initrd: boot.pxe_initrd.as_deref(),
        bootloader: &os.bootloader,
        grub: os.bios.as_ref(),
        vagrant_disk: disks.vagrant.as_deref(),
    };
    let outputs = artifacts::write_all(spec, &inputs.root, &sources, staging.path())?;
    for name in outputs.values().flatten() {
        files.insert(name.clone(), file_info(&staging.join(name))?);
    }
    timer.lap("outputs");
    let mut intermediates = state.infos;
    intermediates.insert("esp.img".to_string(), FileInfo::of(&esp_img));
    let report = BuildReport {
        os: spec.os.clone(),
        kernel_release: os.kernel_release,
        input_digest: inputs.digest,
        artifacts: files,
        outputs,
        intermediates,
        layout,
        inputs: inputs.lock.packages,
        boot_entries: vec![entry.file_name()],
        live_ram_mib: boot.pxe_initrd.as_ref().map(|base| {
            let initrd = base.len() as u64 + boot.usr.len() as u64;
            artifacts::live::ram_mib(os.kernel.len() as u64, initrd)
        }),
    };
    staging.publish(&report)?;
    Ok(report)
}

/// The spec (with `--outputs` applied), its checked lock, `/init` and the input digest.
struct Inputs {
    spec: ImageSpec,
    lock: Lockfile,
    /// The repository root the spec's paths are relative to.
    root: PathBuf,
    init: Vec<u8>,
    digest: String,
}

impl Inputs {
    fn load(opts: &BuildOptions) -> Result<Inputs> {
        let mut spec = ImageSpec::load(&opts.spec_path)?;
        let lock = Lockfile::load(&opts.lock_path)?;
        lock.check_matches(&spec, &opts.lock_path)?;
        let root = spec::repo_root(&opts.spec_path);
        let init = std::fs::read(&opts.init).with_context(|| {
            format!(
                "reading the initramfs /init at {} (build it with `make tools`: a static build of the `init` crate)",
                opts.init.display()
            )
        })?;
        let outputs = match &opts.outputs {
            Some(list) if *list != spec.output_list() => {
                spec.set_outputs(list)?;
                Some(list.as_slice())
            }
            _ => None,
        };
        let digest = digest::input_digest(&DigestInputs {
            spec: &spec,
            spec_path: &opts.spec_path,
            lock_path: &opts.lock_path,
            root: &root,
            init: &init,
            outputs,
        })?;
        Ok(Inputs {
            spec,
            lock,
            root,
            init,
            digest,
        })
    }
}

/// What goes into a slot: the USR image and the initramfs (plus the network-boot initramfs
/// when the spec has the `pxe` output).
struct SlotImages {
    usr: Vec<u8>,
    initrd: Vec<u8>,
    pxe_initrd: Option<Vec<u8>>,
}

/// The squashfs and the initramfs(es), made side by side (they are independent).
fn slot_images(
    spec: &ImageSpec,
    layout: &DiskLayout,
    os: &OsTree,
    init: &[u8],
) -> Result<SlotImages> {
    let epoch = spec.source_date_epoch;
    let wanted: Vec<&str> = spec
        .kernel
        .initramfs_modules
        .iter()
        .map(|m| m.0.as_str())
        .collect();
    let wants_pxe = spec
        .output_list()
        .iter()
        .any(|o| matches!(o, Output::Pxe | Output::Iso));
    let initrd = |modules: &[&str]| -> Result<Vec<u8>> {
        let tree = initramfs::tree(&os.modules, &os.kernel_modules, modules, init, epoch)?;
        Ok(initramfs::to_bytes(&tree)?)
    };
    let (usr, initrds) = std::thread::scope(|s| {
        let initrds = s.spawn(|| -> Result<(Vec<u8>, Option<Vec<u8>>)> {
            // A network boot mounts the USR image from RAM through a loop device.
            let pxe = match wants_pxe {
                true => Some(initrd(&initramfs::network_boot(&wanted))?),
                false => None,
            };
            Ok((initrd(&wanted)?, pxe))
        });
        let limit = layout.part(layout::USR_A).size;
        let usr = usr::build(&os.tree.subtree("usr"), epoch, limit);
        let initrds = initrds
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the initramfs thread panicked")));
        (usr, initrds)
    });
    let (initrd, pxe_initrd) = initrds?;
    Ok(SlotImages {
        usr: usr?,
        initrd,
        pxe_initrd,
    })
}

/// The ext4 images of the writable partitions, in the staging directory.
struct StatePartitions {
    root: PathBuf,
    oem: PathBuf,
    /// OEM with the Vagrant configuration, when the spec has a box output.
    vagrant_oem: Option<PathBuf>,
    /// Their identities, for `build.json`'s intermediates.
    infos: BTreeMap<String, FileInfo>,
}

fn state_partitions(
    spec: &ImageSpec,
    layout: &DiskLayout,
    staging: &Staging,
) -> Result<StatePartitions> {
    let epoch = spec.source_date_epoch;
    let mut infos = BTreeMap::new();
    let mut make =
        |name: &str, label: &str, tree: Option<&rootfs::tree::Tree>| -> Result<PathBuf> {
            let path = staging.join(name);
            let part = layout.part(label);
            ext4::make(tree, &path, part.size, label, &part.guid, epoch)?;
            infos.insert(name.to_string(), file_info(&path)?);
            Ok(path)
        };
    let root = make("root.img", layout::ROOT, Some(&os::state::root(epoch)?))?;
    let oem = make("oem.img", layout::OEM, None)?;
    let wants_boxes = spec
        .output_list()
        .into_iter()
        .any(|o| artifacts::vagrant_provider(o).is_some());
    let vagrant_oem = match wants_boxes {
        true => Some(make(
            "oem-vagrant.img",
            layout::OEM,
            Some(&os::state::vagrant_oem(epoch)?),
        )?),
        false => None,
    };
    Ok(StatePartitions {
        root,
        oem,
        vagrant_oem,
        infos,
    })
}

/// `disk.raw`, and the Vagrant boxes' disk (the same but for OEM) when there are boxes.
struct Disks {
    disk: PathBuf,
    vagrant: Option<PathBuf>,
}

/// Legacy BIOS boot (`bootloader.bios`): the MBR's boot code and GRUB's core image for the
/// BIOS-BOOT partition.
struct BiosBoot {
    boot_code: Vec<u8>,
    core: Vec<u8>,
}

fn bios_boot(layout: &DiskLayout, os: &OsTree) -> Result<Option<BiosBoot>> {
    let Some(grub) = &os.bios else {
        return Ok(None);
    };
    let part = layout.part(layout::BIOS_BOOT);
    let lba = part.offset / 512;
    let core = bios::core_image(grub, lba, part.size).context("legacy BIOS boot")?;
    let boot_code = bios::boot_code(grub, lba).context("legacy BIOS boot")?;
    Ok(Some(BiosBoot { boot_code, core }))
}

fn write_disks(
    layout: &DiskLayout,
    esp_img: &[u8],
    usr_img: &[u8],
    bios: Option<&BiosBoot>,
    state: &StatePartitions,
    staging: &Staging,
) -> Result<Disks> {
    let with_oem = |name: &str, oem: &Path| -> Result<PathBuf> {
        let path = staging.join(name);
        let mut parts = vec![
            (layout::ESP, Content::Bytes(esp_img)),
            (layout::USR_A, Content::Bytes(usr_img)),
            (layout::OEM, Content::File(oem)),
            (layout::ROOT, Content::File(&state.root)),
        ];
        if let Some(b) = bios {
            parts.push((layout::BIOS_BOOT, Content::Bytes(&b.core)));
        }
        crate::disk::write::write(layout, &path, bios.map(|b| b.boot_code.as_slice()), &parts)?;
        Ok(path)
    };
    Ok(Disks {
        disk: with_oem(DISK, &state.oem)?,
        vagrant: match &state.vagrant_oem {
            Some(oem) => Some(with_oem("disk-vagrant.raw", oem)?),
            None => None,
        },
    })
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
