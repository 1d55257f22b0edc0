//! The minimal image on QEMU's models of real hardware (HOST.md, "Real hardware in QEMU"):
//! `/init` must pick the disk controller's drivers by the devices' `modalias` (coldplug), load
//! the NIC's driver from /usr (the minimal OS has no udev), and the OS must lease an address
//! by DHCP on that NIC. A machine whose disk controller has no driver in the image gets a
//! device list naming the kernel's driver it lacked, then a clean power-off.
//!
//! Each cell is one boot of the shared minimal build (a snapshot), with UEFI (OVMF →
//! systemd-boot) or legacy BIOS (SeaBIOS → GRUB). Where OVMF cannot boot from a controller (it
//! has no pvscsi or LSI driver) the kernel comes directly, as vSphere's firmware would hand it
//! over.

use std::path::Path;

use tests::{image_builder, partition, repo_root, shared_build, text};

/// The console line that proves the NIC works: the OS's DHCP client got QEMU's lease.
const LEASE: &str = r"udhcpc: eth0 bound 10\.0\.2\.15";

/// `-kernel`/`-initrd`/`-append` for a direct boot of the build in `out` (the `usr=` the
/// loader would have added from the boot entry).
fn direct_kernel(out: &Path) -> Vec<String> {
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("build.json")).unwrap()).unwrap();
    let guid = partition(&report, "USR-A")["guid"].as_str().unwrap();
    vec![
        "--".into(),
        "-kernel".into(),
        out.join("vmlinuz").display().to_string(),
        "-initrd".into(),
        out.join("initrd.img").display().to_string(),
        "-append".into(),
        format!("console=ttyS0 usr=PARTUUID={guid}"),
    ]
}

/// Boots the shared minimal disk with `args` (and the kernel directly when `direct`) until
/// `expect`, or until QEMU exits; whether `run` succeeded, and the console.
fn boot(args: &[&str], direct: bool, expect: Option<&str>) -> (bool, String) {
    let out = shared_build("minimal");
    let disk = out.join("disk.raw");
    let mut all: Vec<String> = [
        "run",
        disk.to_str().unwrap(),
        "--snapshot",
        "--timeout",
        "300",
    ]
    .map(String::from)
    .to_vec();
    if let Some(e) = expect {
        all.extend(["--expect".into(), e.into()]);
    }
    all.extend(args.iter().map(|a| a.to_string()));
    if direct {
        all.extend(direct_kernel(&out));
    }
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    let run = image_builder(&repo_root(), &all);
    (run.status.success(), text(&run))
}

/// The first console line containing `prefix`.
fn line<'a>(console: &'a str, prefix: &str) -> &'a str {
    console
        .lines()
        .find(|l| l.contains(prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} line:\n{console}"))
}

/// One cell: boots to the DHCP lease; the initramfs bound `disk_drivers` (in that order of
/// appearance, each `name (bus/`), /usr gave the NIC `nic_driver`, and /usr is the slot on
/// `usr_dev`.
fn cell(args: &[&str], direct: bool, disk_drivers: &[&str], nic_driver: &str, usr_dev: &str) {
    let (ok, console) = boot(args, direct, Some(LEASE));
    assert!(ok, "{args:?}: no DHCP lease:\n{console}");
    let drivers: String = console
        .lines()
        .filter(|l| l.contains("init: drivers: "))
        .collect::<Vec<_>>()
        .join(" ");
    for d in disk_drivers {
        assert!(
            drivers.contains(&format!("{d} (")),
            "{args:?}: {d} not coldplugged: {drivers}\n{console}"
        );
    }
    assert!(
        line(&console, "init: drivers from /usr: ").contains(&format!("{nic_driver} (pci/")),
        "{args:?}: {nic_driver} not loaded from /usr:\n{console}"
    );
    let usr = format!("init: usr={usr_dev} (USR-A)");
    assert!(console.contains(&usr), "{args:?}: want {usr:?}:\n{console}");
    assert!(
        console.contains("Minimal Linux alpha (1.0.0)"),
        "{args:?}: no banner:\n{console}"
    );
    if args.windows(2).any(|w| w == ["--firmware", "bios"]) {
        assert!(
            console.contains("GRUB: booting Minimal Linux 1.0.0 (USR-A)"),
            "{args:?}: not booted by GRUB from the disk:\n{console}"
        );
    }
}

/// Bare metal and VirtualBox's SATA: q35's AHCI disk, Intel 82574L NIC, UEFI.
#[test]
fn ahci_disk_e1000e_nic_uefi() {
    cell(
        &["--disk-bus", "ahci", "--nic", "e1000e"],
        false,
        &["ahci", "sd_mod"],
        "e1000e",
        "/dev/sda3",
    );
}

/// VirtualBox's defaults and older hypervisors: i440fx, PIIX IDE, Intel PRO/1000, legacy BIOS
/// (SeaBIOS → GRUB in the MBR and BIOS-BOOT → the same kernel and slots).
#[test]
fn piix_ide_disk_e1000_nic_bios() {
    cell(
        &[
            "--machine",
            "pc",
            "--disk-bus",
            "ide",
            "--nic",
            "e1000",
            "--firmware",
            "bios",
        ],
        false,
        &["ata_piix", "sd_mod"],
        "e1000",
        "/dev/sda3",
    );
}

/// A current server: NVMe disk, Intel 82576 NIC, UEFI.
#[test]
fn nvme_disk_igb_nic_uefi() {
    cell(
        &["--disk-bus", "nvme", "--nic", "igb"],
        false,
        &["nvme"],
        "igb",
        "/dev/nvme0n1p3",
    );
}

/// A RAID server in legacy BIOS mode: MegaRAID SAS (SeaBIOS boots from it), Intel PRO/1000.
#[test]
fn megaraid_disk_e1000_nic_bios() {
    cell(
        &[
            "--disk-bus",
            "megasas",
            "--nic",
            "e1000",
            "--firmware",
            "bios",
        ],
        false,
        &["megaraid_sas", "sd_mod"],
        "e1000",
        "/dev/sda3",
    );
}

/// vSphere's paravirtual pair: pvscsi disk, vmxnet3 NIC; OVMF has no pvscsi driver, so the
/// kernel comes directly (vSphere's own EFI firmware has one).
#[test]
fn pvscsi_disk_vmxnet3_nic() {
    cell(
        &["--disk-bus", "pvscsi", "--nic", "vmxnet3"],
        true,
        &["vmw_pvscsi", "sd_mod"],
        "vmxnet3",
        "/dev/sda3",
    );
}

/// The image written to a USB stick: usb-storage on xHCI (the disk appears only after the
/// host controller's driver, then the USB device's, then the SCSI disk's), Realtek NIC, UEFI.
#[test]
fn usb_stick_rtl8139_nic_uefi() {
    cell(
        &["--disk-bus", "usb", "--nic", "rtl8139"],
        false,
        &["xhci_pci", "usb_storage", "sd_mod"],
        "8139too",
        "/dev/sda3",
    );
}

/// The same vSphere pair on a BIOS virtual machine: SeaBIOS boots GRUB from the pvscsi disk.
#[test]
fn pvscsi_disk_vmxnet3_nic_bios() {
    cell(
        &[
            "--disk-bus",
            "pvscsi",
            "--nic",
            "vmxnet3",
            "--firmware",
            "bios",
        ],
        false,
        &["vmw_pvscsi", "sd_mod"],
        "vmxnet3",
        "/dev/sda3",
    );
}

/// The USB stick on a legacy BIOS machine: SeaBIOS boots GRUB from it over xHCI.
#[test]
fn usb_stick_rtl8139_nic_bios() {
    cell(
        &[
            "--disk-bus",
            "usb",
            "--nic",
            "rtl8139",
            "--firmware",
            "bios",
        ],
        false,
        &["xhci_pci", "usb_storage", "sd_mod"],
        "8139too",
        "/dev/sda3",
    );
}

/// A disk controller whose driver the image leaves out (LSI 53C895A: the kernel's sym53c8xx
/// is in neither the initramfs nor /usr): `/init` waits, then lists the block and PCI devices
/// it saw, names the kernel's driver the controller lacked, and powers off cleanly.
#[test]
fn disk_without_a_driver_is_named_then_power_off() {
    let (ok, console) = boot(&["--disk-bus", "lsi"], true, None);
    assert!(ok, "QEMU must exit by itself (clean power-off):\n{console}");
    assert!(
        console.contains("init: FATAL: finding usr partition"),
        "{console}"
    );
    assert!(console.contains("no block devices at all"), "{console}");
    assert!(console.contains("init:   PCI devices seen:"), "{console}");
    assert!(
        console.contains("1000:0012 class 01.00.00: no driver (the kernel has sym53c8xx"),
        "the SCSI controller is listed with the driver it lacked:\n{console}"
    );
    assert!(console.contains("reboot: Power down"), "{console}");
    assert!(!console.contains("Kernel panic"), "{console}");
}
