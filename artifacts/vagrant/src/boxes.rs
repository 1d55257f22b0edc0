//! Vagrant boxes (SPECS.md S6): deterministic USTAR archives with `metadata.json`, a
//! `Vagrantfile` and the provider's disk.
//!
//! ```text
//! virtualbox:  metadata.json  {"provider":"virtualbox"}
//!              Vagrantfile    base MAC, the core user, EFI firmware, virtio NIC
//!              box.ovf        ova::ovf (VirtualBox flavour)
//!              box-disk001.vmdk   streamOptimized (ova::vmdk)
//! libvirt:     metadata.json  {"provider":"libvirt","format":"qcow2","virtual_size":<GiB>}
//!              Vagrantfile    the core user, q35 + OVMF, the libvirt driver
//!              box.img        qcow2, compressed (crate::qcow2)
//! ```
//!
//! Vagrant reads plain tar as well as tar.gz; the disks are compressed already, so the boxes
//! are plain tar (nothing like gzip's name and mtime fields to pin down). Text members are
//! rendered by pure functions; the archive appears at its path only when complete.

use std::fmt::Write as _;
use std::path::Path;

use ova::ovf::{self, Descriptor, DiskFile, Hypervisor, Product};
use ova::ustar::{self, Member};
use ova::vmdk::{self, VmdkOptions};
use serde::Serialize;

use crate::qcow2::{self, Qcow2Options};

pub const METADATA: &str = "metadata.json";
pub const VAGRANTFILE: &str = "Vagrantfile";
/// `cloud-config.yml` of the boxes' OEM partition: Vagrant's insecure login key for `core` and
/// the watch for the user-data file Vagrant's provisioner drops (`data/oem/cloud-config.yml`).
pub const OEM_CLOUD_CONFIG: &str = include_str!("../data/oem/cloud-config.yml");
pub const VIRTUALBOX_OVF: &str = "box.ovf";
pub const VIRTUALBOX_DISK: &str = "box-disk001.vmdk";
pub const LIBVIRT_DISK: &str = "box.img";
/// VirtualBox's OUI: its generated MAC addresses start with 08:00:27.
pub const VIRTUALBOX_MAC_PREFIX: [u8; 3] = [0x08, 0x00, 0x27];
const GIB: u64 = 1 << 30;

/// Why a box could not be written: its disk (VMDK or qcow2), the archive or the scratch
/// directory; the error names which.
pub use diskfmt::Error;

/// What a box says besides its disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoxOptions {
    /// The machine name in `box.ovf` (`minimal-1.0.0`).
    pub name: String,
    pub product: Product,
    pub cpus: u32,
    pub memory_mib: u32,
    /// The last three bytes of the virtualbox box's base MAC (derived from the spec).
    pub mac_suffix: [u8; 3],
    /// mtime of the archive members.
    pub source_date_epoch: u64,
    /// Compression threads (`None`: one per CPU); the bytes do not depend on it.
    pub threads: Option<usize>,
}

/// What was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoxWritten {
    pub file_size: u64,
    /// Member names in archive order.
    pub members: Vec<String>,
    /// Virtual size of the disk in bytes.
    pub disk_capacity: u64,
}

#[derive(Serialize)]
struct LibvirtMetadata {
    provider: &'static str,
    format: &'static str,
    virtual_size: u64,
}

/// `metadata.json` of the virtualbox box.
pub fn virtualbox_metadata() -> String {
    "{\"provider\":\"virtualbox\"}\n".to_string()
}

/// `metadata.json` of the libvirt box; `virtual_size` is an integer number of GiB, rounded up
/// (vagrant-libvirt refuses fractions).
pub fn libvirt_metadata(capacity: u64) -> String {
    let m = LibvirtMetadata {
        provider: "libvirt",
        format: "qcow2",
        virtual_size: virtual_size_gib(capacity),
    };
    serde_json::to_string(&m).expect("plain data serialises") + "\n"
}

/// Whole GiB holding `bytes` (at least 1).
pub fn virtual_size_gib(bytes: u64) -> u64 {
    bytes.div_ceil(GIB).max(1)
}

/// `080027xxxxxx`, as `config.vm.base_mac` wants it.
pub fn base_mac(suffix: [u8; 3]) -> String {
    VIRTUALBOX_MAC_PREFIX
        .iter()
        .chain(suffix.iter())
        .fold(String::new(), |mut s, b| {
            let _ = write!(s, "{b:02X}");
            s
        })
}

/// A one-line, comment-safe form of a product's full name.
fn title(p: &Product) -> String {
    let t = format!("{} {}", p.name, p.full_version);
    t.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// The virtualbox box's `Vagrantfile`.
pub fn virtualbox_vagrantfile(opts: &BoxOptions) -> String {
    format!(
        r#"# Vagrantfile of the {title} box for VirtualBox (written by image-builder).
Vagrant.configure("2") do |config|
  # The first NIC's MAC address, fixed per image (VirtualBox's 08:00:27 prefix).
  config.vm.base_mac = "{mac}"
  # Log in as "core" with Vagrant's insecure key; no guest additions, so no shared folders.
  config.ssh.username = "core"
  config.ssh.insert_key = false
  config.vm.synced_folder ".", "/vagrant", disabled: true

  config.vm.provider :virtualbox do |vb|
    vb.check_guest_additions = false
    vb.functional_vboxsf = false
    vb.memory = {memory}
    vb.cpus = {cpus}
    # VirtualBox's defaults boot it: BIOS (GRUB in the MBR), the SATA (AHCI) disk and the
    # Intel PRO/1000 NIC of box.ovf. With `--firmware efi` systemd-boot boots the same slots.
  end
end
"#,
        title = title(&opts.product),
        mac = base_mac(opts.mac_suffix),
        memory = opts.memory_mib,
        cpus = opts.cpus,
    )
}

/// The libvirt box's `Vagrantfile`.
pub fn libvirt_vagrantfile(opts: &BoxOptions) -> String {
    format!(
        r#"# Vagrantfile of the {title} box for libvirt (written by image-builder).
Vagrant.configure("2") do |config|
  # Log in as "core" with Vagrant's insecure key; no shared folders.
  config.ssh.username = "core"
  config.ssh.insert_key = false
  config.vm.synced_folder ".", "/vagrant", disabled: true

  config.vm.provider :libvirt do |libvirt|
    # KVM with hardware virtualization (kvm_intel, kvm_amd), else "qemu" (TCG, slow but works
    # everywhere, e.g. under nested kvm-pvm); VAGRANT_LIBVIRT_DRIVER=kvm|qemu decides instead.
    libvirt.driver = ENV.fetch("VAGRANT_LIBVIRT_DRIVER") {{
      hw = %w[kvm_intel kvm_amd].any? {{ |m| File.directory?("/sys/module/#{{m}}") }}
      File.exist?("/dev/kvm") && hw ? "kvm" : "qemu"
    }}
    libvirt.machine_type = "q35"
    libvirt.memory = {memory}
    libvirt.cpus = {cpus}
    libvirt.disk_bus = "virtio"
    libvirt.nic_model_type = "virtio"
    # UEFI: OVMF as a ROM image, so no per-machine variable store is needed (systemd-boot
    # counts boot tries on the ESP). VAGRANT_LIBVIRT_OVMF names another firmware file.
    ovmf = ENV["VAGRANT_LIBVIRT_OVMF"] ||
      ["/usr/share/ovmf/OVMF.fd", "/usr/share/qemu/OVMF.fd"].find {{ |f| File.exist?(f) }}
    libvirt.loader = ovmf if ovmf
  end
end
"#,
        title = title(&opts.product),
        memory = opts.memory_mib,
        cpus = opts.cpus,
    )
}

/// Write the virtualbox box for the raw disk at `raw` to `out`.
pub fn write_virtualbox(raw: &Path, out: &Path, opts: &BoxOptions) -> Result<BoxWritten, Error> {
    let scratch = ustar::scratch_dir(out, ".box-")?;
    let vmdk_path = scratch.path().join(VIRTUALBOX_DISK);
    let mut vmdk_opts = VmdkOptions::new(VIRTUALBOX_DISK);
    vmdk_opts.threads = opts.threads;
    let written = vmdk::write_file(raw, &vmdk_path, &vmdk_opts)?;
    let descriptor = ovf::render(&Descriptor {
        name: opts.name.clone(),
        product: opts.product.clone(),
        disk: DiskFile {
            href: VIRTUALBOX_DISK.into(),
            size: written.file_size,
            capacity: written.capacity,
            populated: written.populated,
        },
        cpus: opts.cpus,
        memory_mib: opts.memory_mib,
        hypervisor: Hypervisor::VirtualBox,
    });
    let (metadata, vagrantfile) = (virtualbox_metadata(), virtualbox_vagrantfile(opts));
    let members = [
        Member::Bytes(METADATA, metadata.as_bytes()),
        Member::Bytes(VAGRANTFILE, vagrantfile.as_bytes()),
        Member::Bytes(VIRTUALBOX_OVF, descriptor.as_bytes()),
        Member::File(VIRTUALBOX_DISK, &vmdk_path),
    ];
    let file_size = ustar::write_file(out, opts.source_date_epoch, &members)?;
    Ok(BoxWritten {
        file_size,
        members: members.iter().map(|m| m.name().to_string()).collect(),
        disk_capacity: written.capacity,
    })
}

/// Write the libvirt box for the raw disk at `raw` to `out`.
pub fn write_libvirt(raw: &Path, out: &Path, opts: &BoxOptions) -> Result<BoxWritten, Error> {
    let scratch = ustar::scratch_dir(out, ".box-")?;
    let img_path = scratch.path().join(LIBVIRT_DISK);
    let written = qcow2::write_file(
        raw,
        &img_path,
        &Qcow2Options {
            compress: true,
            threads: opts.threads,
        },
    )?;
    let metadata = libvirt_metadata(written.virtual_size);
    let vagrantfile = libvirt_vagrantfile(opts);
    let members = [
        Member::Bytes(METADATA, metadata.as_bytes()),
        Member::Bytes(VAGRANTFILE, vagrantfile.as_bytes()),
        Member::File(LIBVIRT_DISK, &img_path),
    ];
    let file_size = ustar::write_file(out, opts.source_date_epoch, &members)?;
    Ok(BoxWritten {
        file_size,
        members: members.iter().map(|m| m.name().to_string()).collect(),
        disk_capacity: written.virtual_size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> BoxOptions {
        BoxOptions {
            name: "minimal-1.0.0".into(),
            product: Product {
                name: "Minimal Linux".into(),
                version: "1.0.0".into(),
                full_version: "1.0.0 (alpha)".into(),
            },
            cpus: 2,
            memory_mib: 1024,
            mac_suffix: [0xa1, 0x02, 0xff],
            source_date_epoch: 1_767_225_600,
            threads: None,
        }
    }

    #[test]
    fn metadata_fields() {
        assert_eq!(virtualbox_metadata(), "{\"provider\":\"virtualbox\"}\n");
        assert_eq!(
            libvirt_metadata(843_055_104),
            "{\"provider\":\"libvirt\",\"format\":\"qcow2\",\"virtual_size\":1}\n"
        );
        assert_eq!(virtual_size_gib(GIB), 1);
        assert_eq!(virtual_size_gib(GIB + 512), 2);
        assert_eq!(virtual_size_gib(0), 1);
    }

    #[test]
    fn virtualbox_vagrantfile_whole_text() {
        let want = r#"# Vagrantfile of the Minimal Linux 1.0.0 (alpha) box for VirtualBox (written by image-builder).
Vagrant.configure("2") do |config|
  # The first NIC's MAC address, fixed per image (VirtualBox's 08:00:27 prefix).
  config.vm.base_mac = "080027A102FF"
  # Log in as "core" with Vagrant's insecure key; no guest additions, so no shared folders.
  config.ssh.username = "core"
  config.ssh.insert_key = false
  config.vm.synced_folder ".", "/vagrant", disabled: true

  config.vm.provider :virtualbox do |vb|
    vb.check_guest_additions = false
    vb.functional_vboxsf = false
    vb.memory = 1024
    vb.cpus = 2
    # VirtualBox's defaults boot it: BIOS (GRUB in the MBR), the SATA (AHCI) disk and the
    # Intel PRO/1000 NIC of box.ovf. With `--firmware efi` systemd-boot boots the same slots.
  end
end
"#;
        assert_eq!(virtualbox_vagrantfile(&opts()), want);
    }

    #[test]
    fn libvirt_vagrantfile_whole_text() {
        let want = r#"# Vagrantfile of the Minimal Linux 1.0.0 (alpha) box for libvirt (written by image-builder).
Vagrant.configure("2") do |config|
  # Log in as "core" with Vagrant's insecure key; no shared folders.
  config.ssh.username = "core"
  config.ssh.insert_key = false
  config.vm.synced_folder ".", "/vagrant", disabled: true

  config.vm.provider :libvirt do |libvirt|
    # KVM with hardware virtualization (kvm_intel, kvm_amd), else "qemu" (TCG, slow but works
    # everywhere, e.g. under nested kvm-pvm); VAGRANT_LIBVIRT_DRIVER=kvm|qemu decides instead.
    libvirt.driver = ENV.fetch("VAGRANT_LIBVIRT_DRIVER") {
      hw = %w[kvm_intel kvm_amd].any? { |m| File.directory?("/sys/module/#{m}") }
      File.exist?("/dev/kvm") && hw ? "kvm" : "qemu"
    }
    libvirt.machine_type = "q35"
    libvirt.memory = 1024
    libvirt.cpus = 2
    libvirt.disk_bus = "virtio"
    libvirt.nic_model_type = "virtio"
    # UEFI: OVMF as a ROM image, so no per-machine variable store is needed (systemd-boot
    # counts boot tries on the ESP). VAGRANT_LIBVIRT_OVMF names another firmware file.
    ovmf = ENV["VAGRANT_LIBVIRT_OVMF"] ||
      ["/usr/share/ovmf/OVMF.fd", "/usr/share/qemu/OVMF.fd"].find { |f| File.exist?(f) }
    libvirt.loader = ovmf if ovmf
  end
end
"#;
        assert_eq!(libvirt_vagrantfile(&opts()), want);
    }

    #[test]
    fn titles_stay_on_one_line() {
        let mut o = opts();
        o.product.name = "Evil\nVagrant.configure".into();
        let v = virtualbox_vagrantfile(&o);
        assert!(v.starts_with("# Vagrantfile of the Evil Vagrant.configure 1.0.0"));
        assert_eq!(v.matches("Vagrant.configure").count(), 2);
    }
}
