//! `first-boot`: what Container Linux did on a machine's first boot (issue 6 item 3), on the
//! disk that holds ROOT (DESIGN.md, "Disk layout"):
//!
//! 1. give the disk its own random GUID, so clones of one image differ (the image builder
//!    derives every GUID with UUIDv5; partition GUIDs are kept: boot entries name
//!    `usr=PARTUUID=`);
//! 2. move the backup GPT to the end of a disk that grew since the image was written
//!    (`sgdisk -e`) and extend ROOT, if it is the last partition, to the end of the usable
//!    space aligned down to 1 MiB;
//! 3. tell the kernel the partition's new size (`BLKPG_RESIZE_PARTITION`: the disk is in use,
//!    so `BLKRRPART` is refused) and grow the mounted ext4 (`EXT4_IOC_RESIZE_FS`, else
//!    `resize2fs`).
//!
//! Pipeline, IO only at the ends: [`cli`] reads the command line; [`locate`] finds the
//! partition mounted at `/` (or takes `--disk`/`--partition`); [`table::Table::read`] reads and
//! checks both GPT copies (with `machine::gpt`); [`table::plan`] computes the new table (pure;
//! the only randomness is the new GUID, passed in); [`table::Plan::steps`] are written with
//! `pwrite` and `fsync` ([`run`]); then [`kernel`] (BLKPG) and [`ext4`] (the online grow).
//! Nothing is written unless the table passes every check.
//!
//! Idempotent: a disk GUID that is random already is kept, a backup at the end stays, a
//! partition that reaches the aligned end is not touched, a file system that fills its
//! partition is not resized. The unit `services/units/first-boot-grow.service` also skips the
//! run once the `--stamp` file exists (written at the end of a successful run).

pub mod cli;
pub mod ext4;
pub mod kernel;
pub mod locate;
pub mod table;

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use machine::sys::errno_text;

use self::locate::{Located, Partition, Sysfs};
use self::table::{Guid, Invalid, Plan, ReadError, Step, Table};

/// Prefix of every line printed (the journal shows it as the message start).
pub const PROGRAM: &str = "first-boot";
/// The stamp the unit checks.
pub const DEFAULT_STAMP: &str = "/var/lib/first-boot/done";

/// Which partition to grow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The one mounted at `/`.
    Root,
    /// Partition `partition` of `disk` (a block device or an image file).
    Disk { disk: PathBuf, partition: u32 },
}

/// One run's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub target: Target,
    /// Resize the partition in the kernel and grow its file system (block devices only).
    pub kernel: bool,
    /// Print the plan, write nothing.
    pub dry_run: bool,
    /// Skip the run if this file exists; write it at the end of a successful run.
    pub stamp: Option<PathBuf>,
    pub mountinfo: PathBuf,
    pub sysfs: Sysfs,
}

impl Options {
    pub fn new(target: Target) -> Options {
        Options {
            target,
            kernel: true,
            dry_run: false,
            stamp: None,
            mountinfo: "/proc/self/mountinfo".into(),
            sysfs: Sysfs::default(),
        }
    }
}

/// Why a run failed. Each is one line for the journal.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{what}: {}", errno_text(.source))]
    Io { what: String, source: io::Error },
    #[error("{}: {source}; nothing written", disk.display())]
    Refused { disk: PathBuf, source: Invalid },
    #[error("{}: reading: {}", disk.display(), errno_text(.source))]
    Read { disk: PathBuf, source: io::Error },
    #[error("{0}; nothing written")]
    KernelDisagrees(String),
    #[error("growing the file system: {0}")]
    Grow(String),
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> Error {
    let what = what.into();
    move |source| Error::Io { what, source }
}

fn say(out: &mut dyn Write, line: impl AsRef<str>) {
    // The journal is best effort: a closed stdout must not stop the work.
    let _ = writeln!(out, "{PROGRAM}: {}", line.as_ref());
}

/// The disk and partition to work on, and the kernel's view of the partition when known.
struct Resolved {
    disk: PathBuf,
    partition: u32,
    kernel: Option<Partition>,
}

/// Runs first boot. Progress goes to `out`, one line per change; the error is the failure.
pub fn run(opts: &Options, out: &mut dyn Write) -> Result<(), Error> {
    if let Some(stamp) = opts.stamp.as_deref().filter(|s| s.exists()) {
        say(out, format!("{} exists: nothing to do", stamp.display()));
        return Ok(());
    }
    let Some(target) = resolve(opts, out)? else {
        return finish(opts, out);
    };
    let Opened {
        disk,
        meta,
        block,
        sector_size,
        plan,
    } = open_and_plan(&target)?;
    say(
        out,
        format!(
            "{}: {} sectors of {sector_size} bytes, partition {}",
            target.disk.display(),
            plan.geometry.sectors,
            target.partition
        ),
    );
    for line in plan.describe() {
        say(out, line);
    }
    let kernel_part = if opts.kernel && block {
        Some(kernel_partition(opts, &target, &meta)?)
    } else {
        None
    };
    if let Some(p) = &kernel_part {
        check_kernel_agrees(p, &plan, sector_size)?;
    }
    if opts.dry_run {
        say(out, "dry run: nothing written");
        return Ok(());
    }
    write_plan(&target.disk, &plan, block, out)?;
    match kernel_part {
        Some(p) => {
            resize_in_kernel(&disk, &p, &plan, sector_size, out)?;
            grow_fs(opts, &p, &plan, sector_size, out)?;
        }
        None if !opts.kernel => say(
            out,
            "--no-kernel: partition and file system sizes not changed",
        ),
        None => say(
            out,
            format!(
                "{} is not a block device: no partition or file system to resize",
                target.disk.display()
            ),
        ),
    }
    finish(opts, out)
}

/// The disk open read-only, and the plan for its table.
struct Opened {
    disk: File,
    meta: fs::Metadata,
    block: bool,
    sector_size: u64,
    plan: Plan,
}

fn open_and_plan(target: &Resolved) -> Result<Opened, Error> {
    let path = &target.disk;
    let mut disk = File::open(path).map_err(io_err(format!("opening {}", path.display())))?;
    let meta = disk
        .metadata()
        .map_err(io_err(format!("stat {}", path.display())))?;
    let block = meta.file_type().is_block_device();
    let sector_size = if block {
        kernel::logical_sector_size(&disk)
            .map_err(io_err(format!("{}: BLKSSZGET", path.display())))?
    } else {
        512
    };
    let refused = |source| Error::Refused {
        disk: path.clone(),
        source,
    };
    let table = Table::read(&mut disk, sector_size).map_err(|e| match e {
        ReadError::Io(source) => Error::Read {
            disk: path.clone(),
            source,
        },
        ReadError::Invalid(source) => refused(source),
    })?;
    let fresh = kernel::random_bytes().map_err(io_err("getting random bytes"))?;
    let plan = table::plan(&table, target.partition, Guid::random_v4(fresh)).map_err(refused)?;
    Ok(Opened {
        disk,
        meta,
        block,
        sector_size,
        plan,
    })
}

/// The target, or `None` (after saying why) when `/` is not on a disk partition.
fn resolve(opts: &Options, out: &mut dyn Write) -> Result<Option<Resolved>, Error> {
    let (disk, partition) = match &opts.target {
        Target::Disk { disk, partition } => {
            return Ok(Some(Resolved {
                disk: disk.clone(),
                partition: *partition,
                kernel: None,
            }))
        }
        Target::Root => {
            let text = fs::read_to_string(&opts.mountinfo)
                .map_err(io_err(format!("reading {}", opts.mountinfo.display())))?;
            let mounts = locate::parse_mountinfo(&text);
            let root = locate::root_mount(&mounts).ok_or_else(|| Error::Io {
                what: format!("{}", opts.mountinfo.display()),
                source: io::Error::other("no file system is mounted at /"),
            })?;
            if root.dev.0 == 0 {
                say(
                    out,
                    format!(
                        "/ is {} ({}), not on a disk: nothing to do",
                        root.fstype, root.source
                    ),
                );
                return Ok(None);
            }
            match opts
                .sysfs
                .by_dev(root.dev)
                .map_err(io_err("finding the disk of /"))?
            {
                Located::Partition(p) => (p.disk_node.clone(), p),
                Located::NotAPartition(what) => {
                    say(out, format!("/ is on {what}: no partition to grow"));
                    return Ok(None);
                }
            }
        }
    };
    Ok(Some(Resolved {
        disk,
        partition: partition.number,
        kernel: Some(partition),
    }))
}

/// The kernel's view of the target partition (its sysfs entry), for BLKPG and the grow.
fn kernel_partition(
    opts: &Options,
    target: &Resolved,
    disk: &fs::Metadata,
) -> Result<Partition, Error> {
    if let Some(p) = &target.kernel {
        return Ok(p.clone());
    }
    let dev = locate::split_dev(disk.rdev());
    opts.sysfs
        .partition_of(dev, target.partition)
        .map_err(io_err(format!(
            "finding partition {} of {}",
            target.partition,
            target.disk.display()
        )))?
        .ok_or_else(|| {
            Error::KernelDisagrees(format!(
                "the kernel has no partition {} on {} (--no-kernel only rewrites the GPT)",
                target.partition,
                target.disk.display()
            ))
        })
}

/// Refuses to go on if the kernel's partition does not start where the GPT says: then the
/// table read is not the one the kernel uses.
fn check_kernel_agrees(p: &Partition, plan: &Plan, sector_size: u64) -> Result<(), Error> {
    let gpt_start = plan.partition.0 * sector_size;
    if p.start_bytes() != gpt_start {
        return Err(Error::KernelDisagrees(format!(
            "the kernel has {} starting at byte {}, the GPT at byte {gpt_start}",
            p.name,
            p.start_bytes()
        )));
    }
    Ok(())
}

fn write_plan(path: &Path, plan: &Plan, block: bool, out: &mut dyn Write) -> Result<(), Error> {
    if plan.is_noop() {
        say(out, "partition table unchanged");
        return Ok(());
    }
    let what = |w: &str| format!("{}: writing the {w}", path.display());
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(io_err(format!("opening {} for writing", path.display())))?;
    if block {
        kernel::lock_exclusive(&file).map_err(io_err(format!("{}: locking", path.display())))?;
    }
    let mut last = "partition table";
    for step in plan.steps() {
        match step {
            Step::Write {
                what: w,
                offset,
                bytes,
            } => {
                file.write_all_at(&bytes, offset).map_err(io_err(what(w)))?;
                last = w;
            }
            Step::Sync => file
                .sync_all()
                .map_err(io_err(what(&format!("{last} (fsync)"))))?,
        }
    }
    say(out, "partition table written");
    Ok(())
}

fn resize_in_kernel(
    disk: &File,
    p: &Partition,
    plan: &Plan,
    sector_size: u64,
    out: &mut dyn Write,
) -> Result<(), Error> {
    let want = (plan.partition.1 - plan.partition.0 + 1) * sector_size;
    if p.size_bytes() >= want {
        return Ok(());
    }
    kernel::resize_partition(disk, p.number, p.start_bytes(), want).map_err(io_err(format!(
        "telling the kernel the new size of {} (BLKPG)",
        p.name
    )))?;
    say(
        out,
        format!(
            "kernel: {} resized from {} to {} MiB",
            p.name,
            p.size_bytes() >> 20,
            want >> 20
        ),
    );
    Ok(())
}

fn grow_fs(
    opts: &Options,
    p: &Partition,
    plan: &Plan,
    sector_size: u64,
    out: &mut dyn Write,
) -> Result<(), Error> {
    let text = fs::read_to_string(&opts.mountinfo)
        .map_err(io_err(format!("reading {}", opts.mountinfo.display())))?;
    let mounts = locate::parse_mountinfo(&text);
    let Some(mount) = locate::mount_of(&mounts, p.dev) else {
        say(
            out,
            format!("{} is not mounted: file system not grown", p.name),
        );
        return Ok(());
    };
    if mount.fstype != "ext4" {
        say(
            out,
            format!("{} holds {}, not ext4: not grown", p.name, mount.fstype),
        );
        return Ok(());
    }
    let size = ext4::read_size(
        &mut File::open(&p.node).map_err(io_err(format!("opening {}", p.node.display())))?,
    )
    .map_err(io_err(format!(
        "{}: reading the ext4 superblock",
        p.node.display()
    )))?;
    let bytes = (plan.partition.1 - plan.partition.0 + 1) * sector_size;
    let blocks = size.blocks_in(bytes);
    if size.blocks >= blocks {
        say(
            out,
            format!(
                "ext4 on {} already fills {}",
                mount.mount_point.display(),
                p.name
            ),
        );
        return Ok(());
    }
    let how = ext4::grow(&mount.mount_point, &p.node, blocks).map_err(Error::Grow)?;
    say(
        out,
        format!(
            "ext4 on {} grown from {} to {blocks} blocks of {} bytes ({})",
            mount.mount_point.display(),
            size.blocks,
            size.block_size,
            match how {
                ext4::Method::Ioctl => "EXT4_IOC_RESIZE_FS",
                ext4::Method::Resize2fs => "resize2fs",
            }
        ),
    );
    Ok(())
}

/// Writes the stamp, if any.
fn finish(opts: &Options, out: &mut dyn Write) -> Result<(), Error> {
    let Some(stamp) = &opts.stamp else {
        return Ok(());
    };
    if opts.dry_run {
        return Ok(());
    }
    let what = || format!("writing {}", stamp.display());
    if let Some(dir) = stamp.parent() {
        fs::create_dir_all(dir).map_err(io_err(what()))?;
    }
    let mut f = File::create(stamp).map_err(io_err(what()))?;
    f.write_all(b"first boot done\n")
        .and_then(|()| f.sync_all())
        .map_err(io_err(what()))?;
    say(out, format!("done ({} written)", stamp.display()));
    Ok(())
}

#[cfg(test)]
mod tests;
