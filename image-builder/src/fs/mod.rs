//! The filesystem images a disk is made of, each a pure function of its content (a
//! [`rootfs::tree::Tree`] or a list of files) and the spec's epoch:
//!
//! - [`usr`]: the USR slot, a squashfs of the OS's /usr;
//! - [`initramfs`]: our `/init` and the kernel modules that reach /usr, a zstd cpio;
//! - [`esp`] + [`fat`]: the EFI System Partition (systemd-boot, boot entries, kernels) in FAT32;
//! - [`ext4`]: ROOT and OEM through `mke2fs -d`, owners and modes set inside the image.

pub mod esp;
pub mod ext4;
pub mod fat;
pub mod initramfs;
pub mod usr;
