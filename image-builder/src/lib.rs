//! Builds reproducible A/B disk images from a YAML spec and pinned Debian packages.
//!
//! The modules are the pipeline, in order (ARCHITECTURE.md has the map):
//!
//! 1. [`spec`]: the YAML spec, parsed and checked (pure);
//! 2. [`inputs`]: the lockfile, computing it, and the package sources verified against it;
//! 3. [`os`]: the packages extracted into the OS tree, the kernel and bootloader taken out, the
//!    spec's own content added;
//! 4. [`fs`]: the filesystem images (USR squashfs, initramfs, ESP in FAT32, ext4 ROOT and OEM);
//! 5. [`disk`]: the layout (pure), the GPT, the disk written; `inspect` reads one back;
//! 6. [`artifacts`]: the platform artifacts (qcow2, VMDK, VHD, OVA, Vagrant boxes, AMI, PXE);
//! 7. [`build`]: the steps above in order, into a staging directory, and [`report`]
//!    (`build.json`);
//! 8. [`publish`]: getting builds to machines: channel repositories, box catalogs, AWS.
//!
//! [`run`] boots a disk or a network boot in QEMU. [`cli`] and [`commands`] are the command
//! line: one function per subcommand.

pub mod artifacts;
pub mod build;
pub mod cli;
pub mod commands;
pub mod disk;
pub mod fs;
pub mod inputs;
pub mod os;
pub mod publish;
pub mod report;
pub mod run;
pub mod spec;
