//! PXE artifacts (SPECS.md S11): what a TFTP or HTTP server hands a machine that boots from
//! the network, computed as values (the caller writes the files).
//!
//! - the kernel, as it is;
//! - an initramfs that carries the USR image: a newc cpio holding only `usr.squashfs`, followed
//!   by the image's own (compressed) initramfs, the way early-microcode archives are prepended.
//!   The kernel unpacks both into one rootfs; `/init` finds the image and, with no `usr=` on the
//!   command line, mounts it as /usr through a loop device and ROOT on a tmpfs (or `root=`), so
//!   the machine runs from RAM and the update engine stays idle (Container Linux's PXE image
//!   worked the same way, with `/.noupdate`);
//! - an iPXE script and a pxelinux.cfg example that name these files relatively, so one
//!   directory served over TFTP or HTTP boots as it is.

use contract::cmdline::LIVE_USR_IMAGE;
use rootfs::tree::{Entry, Tree};

/// The served files, by name, and what the kernel line carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Boot {
    /// `os.name`, `os.version` and `os.channel`, for comments and the menu label.
    pub os_name: String,
    pub version: String,
    pub channel: String,
    /// Label for pxelinux (`os.id`).
    pub label: String,
    pub kernel: String,
    pub initrd: String,
    /// The image's kernel command line (console, log level...), then the spec's PXE arguments.
    pub cmdline: String,
}

impl Boot {
    /// The whole kernel command line: `initrd=<name>` (UEFI iPXE and EFI-stub kernels need it),
    /// then `cmdline`.
    pub fn kernel_args(&self) -> String {
        let mut args = format!("initrd={}", self.initrd);
        if !self.cmdline.trim().is_empty() {
            args.push(' ');
            args.push_str(self.cmdline.trim());
        }
        args
    }
}

/// Container Linux's kernel arguments for network-booted machines, explained in both files.
const ARGUMENT_HELP: &[&str] = &[
    "Kernel arguments a network-booted machine understands (add them to the kernel line):",
    "  coreos.autologin                          a shell on the consoles without a password",
    "  coreos.autologin=ttyS0                    ... on that console only",
    "  cloud-config-url=http://HOST/user-data    first-boot config (images with the config agent)",
    "  sshkey=\"ssh-ed25519 AAAA... user@host\"    an authorized key for user core (same)",
    "  root=/dev/sda9 rootfstype=ext4            keep / on a disk instead of in RAM",
    "  console=ttyS0,115200n8                    where kernel and login prompts go",
];

/// The iPXE script. Relative names resolve against the script's own URL, so it boots from
/// wherever it is served (TFTP or HTTP) next to the kernel and the initramfs. Pure.
pub fn ipxe_script(boot: &Boot) -> String {
    let mut s = String::from("#!ipxe\n");
    s.push_str(&format!(
        "# {} {} ({}): network boot: /usr runs from RAM, and / unless root= names a disk.\n",
        boot.os_name, boot.version, boot.channel
    ));
    s.push_str(&format!(
        "# Serve this script, {} and {} from one directory (TFTP or HTTP):\n",
        boot.kernel, boot.initrd
    ));
    s.push_str("# the names below are relative to the script's own location.\n#\n");
    for line in ARGUMENT_HELP {
        s.push_str(&format!("# {line}\n").replace("# \n", "#\n"));
    }
    s.push_str(&format!("kernel {} {}\n", boot.kernel, boot.kernel_args()));
    s.push_str(&format!("initrd {}\n", boot.initrd));
    s.push_str("boot\n");
    s
}

/// A `pxelinux.cfg/default` example for PXELINUX (BIOS) and syslinux.efi: the same kernel,
/// initramfs and arguments. Pure.
pub fn pxelinux_cfg(boot: &Boot) -> String {
    let mut s = format!(
        "# pxelinux.cfg/default for {} {} ({}): copy it to <tftp root>/pxelinux.cfg/default,\n\
         # next to pxelinux.0 (package pxelinux) and ldlinux.c32 (syslinux-common), and put\n\
         # {} and {} in the TFTP root.\n#\n",
        boot.os_name, boot.version, boot.channel, boot.kernel, boot.initrd
    );
    for line in ARGUMENT_HELP {
        s.push_str(&format!("# {line}\n"));
    }
    s.push_str(&format!(
        "DEFAULT {label}\nPROMPT 0\nTIMEOUT 0\n\nLABEL {label}\n  MENU LABEL {} {}\n  KERNEL {}\n  APPEND {}\n",
        boot.os_name,
        boot.version,
        boot.kernel,
        boot.kernel_args(),
        label = boot.label,
    ));
    s
}

/// The network-boot initramfs: a cpio holding `usr.squashfs` (read-only, `mtime` = `epoch`),
/// then `base` (the image's initramfs) as it is. Pure and deterministic.
pub fn initrd(usr_img: &[u8], base: &[u8], epoch: u64) -> Vec<u8> {
    let mut tree = Tree::new();
    // Where `/init` looks for it; the tree stores the path relative to the rootfs.
    tree.insert(
        LIVE_USR_IMAGE,
        Entry::file(usr_img.to_vec(), 0o444).with_mtime(epoch),
    )
    .expect("one file in an empty tree");
    let mut out = Vec::with_capacity(usr_img.len() + base.len() + 512);
    rootfs::cpio::write_newc(&tree, &mut out).expect("writing to memory");
    out.extend_from_slice(base);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boot() -> Boot {
        Boot {
            os_name: "Minimal Linux".into(),
            version: "1.0.0".into(),
            channel: "alpha".into(),
            label: "minimal".into(),
            kernel: "minimal_1.0.0_pxe.vmlinuz".into(),
            initrd: "minimal_1.0.0_pxe.cpio".into(),
            cmdline: "console=tty0 console=ttyS0,115200n8 panic=10 coreos.autologin".into(),
        }
    }

    #[test]
    fn ipxe_script_whole() {
        let want = r#"#!ipxe
# Minimal Linux 1.0.0 (alpha): network boot: /usr runs from RAM, and / unless root= names a disk.
# Serve this script, minimal_1.0.0_pxe.vmlinuz and minimal_1.0.0_pxe.cpio from one directory (TFTP or HTTP):
# the names below are relative to the script's own location.
#
# Kernel arguments a network-booted machine understands (add them to the kernel line):
#   coreos.autologin                          a shell on the consoles without a password
#   coreos.autologin=ttyS0                    ... on that console only
#   cloud-config-url=http://HOST/user-data    first-boot config (images with the config agent)
#   sshkey="ssh-ed25519 AAAA... user@host"    an authorized key for user core (same)
#   root=/dev/sda9 rootfstype=ext4            keep / on a disk instead of in RAM
#   console=ttyS0,115200n8                    where kernel and login prompts go
kernel minimal_1.0.0_pxe.vmlinuz initrd=minimal_1.0.0_pxe.cpio console=tty0 console=ttyS0,115200n8 panic=10 coreos.autologin
initrd minimal_1.0.0_pxe.cpio
boot
"#;
        assert_eq!(ipxe_script(&boot()), want);
    }

    #[test]
    fn pxelinux_whole() {
        let want = r#"# pxelinux.cfg/default for Minimal Linux 1.0.0 (alpha): copy it to <tftp root>/pxelinux.cfg/default,
# next to pxelinux.0 (package pxelinux) and ldlinux.c32 (syslinux-common), and put
# minimal_1.0.0_pxe.vmlinuz and minimal_1.0.0_pxe.cpio in the TFTP root.
#
# Kernel arguments a network-booted machine understands (add them to the kernel line):
#   coreos.autologin                          a shell on the consoles without a password
#   coreos.autologin=ttyS0                    ... on that console only
#   cloud-config-url=http://HOST/user-data    first-boot config (images with the config agent)
#   sshkey="ssh-ed25519 AAAA... user@host"    an authorized key for user core (same)
#   root=/dev/sda9 rootfstype=ext4            keep / on a disk instead of in RAM
#   console=ttyS0,115200n8                    where kernel and login prompts go
DEFAULT minimal
PROMPT 0
TIMEOUT 0

LABEL minimal
  MENU LABEL Minimal Linux 1.0.0
  KERNEL minimal_1.0.0_pxe.vmlinuz
  APPEND initrd=minimal_1.0.0_pxe.cpio console=tty0 console=ttyS0,115200n8 panic=10 coreos.autologin
"#;
        assert_eq!(pxelinux_cfg(&boot()), want);
    }

    #[test]
    fn kernel_args_without_a_cmdline() {
        let mut b = boot();
        b.cmdline = "  ".into();
        assert_eq!(b.kernel_args(), "initrd=minimal_1.0.0_pxe.cpio");
    }

    #[test]
    fn initrd_is_the_usr_archive_then_the_base() {
        let usr = b"hsqs not really a squashfs, 37 bytes".to_vec();
        let base_cpio = {
            let mut t = Tree::new();
            t.insert("init", Entry::file(b"#!/bin/sh\n".to_vec(), 0o755))
                .unwrap();
            let mut c = Vec::new();
            rootfs::cpio::write_newc(&t, &mut c).unwrap();
            c
        };
        let base = zstd::bulk::compress(&base_cpio, 3).unwrap();
        let out = initrd(&usr, &base, 1_767_225_600);
        assert_eq!(out, initrd(&usr, &base, 1_767_225_600), "deterministic");
        assert!(out.ends_with(&base), "the base initramfs follows unchanged");
        let head = &out[..out.len() - base.len()];
        assert_eq!(head.len() % 4, 0, "the kernel wants 4-byte alignment");
        let entries = rootfs::cpio::read_newc(head).unwrap();
        assert_eq!(
            entries,
            [("usr.squashfs".to_string(), 0o100444, usr.clone())]
        );
        // mtime: the 8 hex digits after magic, inode, mode, uid, gid and nlink.
        assert_eq!(&head[46..54], format!("{:08X}", 1_767_225_600).as_bytes());
    }
}
