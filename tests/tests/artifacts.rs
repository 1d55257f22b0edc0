//! Platform artifacts of a real build of the minimal image with every output: built twice in
//! different directories (umask, time zone) they are byte-identical; the virtualbox box (on the
//! hardware its box.ovf declares, BIOS and EFI), the VHD and the qcow2 boot in QEMU to the login prompt, the OVA's disk
//! reaches /usr on VMware's paravirtual SCSI controller; the OVA and the boxes have the layout
//! their consumers expect (member order, manifest hashes, the OVF schema, metadata fields);
//! Debian's `vagrant` adds the boxes from a per-channel catalog; the PXE files network-boot
//! through iPXE (TFTP and HTTP, BIOS and UEFI) and run from RAM; the ISO boots from a CD and
//! as a USB stick, BIOS and UEFI, in the RAM its build says it needs, and isoinfo, sgdisk,
//! blkid and mtools read it as what it claims to be; bad input is one clear error.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tests::{
    assert_clean_failure, image_builder, image_builder_bin, init_bin, partition, pool_dir,
    repo_root, sha256_file, test_images, text, variant_spec, BuildLock, Scratch,
};

const ALL_OUTPUTS: &str =
    "outputs: [raw, qcow2, vmdk, vhd, ova, vagrant-virtualbox, vagrant-libvirt, ami, pxe, iso]
pxe:
  kernel_args: [coreos.autologin]";
const BASE: &str = "minimal_1.0.0";
const GIB: u64 = 1 << 30;

/// The minimal spec with every output, as a scratch workspace's `images/minimal.yaml`.
fn scratch_with_all_outputs() -> Scratch {
    let s = Scratch::new("minimal");
    s.edit_spec("minimal", "outputs: [raw]", ALL_OUTPUTS);
    s
}

/// The build every test of this file reads, under `target/test-images/minimal-artifacts`, its
/// spec beside it (the workspace stays as is). Made once per test run with `--force`, by the
/// first test process that needs it (the others wait for it): the artifact writers are code of
/// the builder, which the skip-if-unchanged digest does not cover, and the reproducibility test
/// compares this build with a fresh one.
fn shared() -> PathBuf {
    let dir = test_images().join("minimal-artifacts");
    let out = dir.join("out");
    let lock = BuildLock::acquire(&dir);
    if lock.made_in_this_run() {
        return out;
    }
    let spec = variant_spec(
        "minimal",
        "minimal-artifacts",
        "outputs: [raw]",
        ALL_OUTPUTS,
    );
    let src = spec.parent().unwrap().parent().unwrap().to_path_buf();
    let o = build(&src, &out, "022", true, &[]);
    assert!(o.status.success(), "build failed:\n{}", text(&o));
    lock.mark_made_in_this_run();
    out
}

/// `image-builder build` of the workspace's minimal spec into `out`, with a umask and extra
/// environment (time zone, locale).
fn build(workspace: &Path, out: &Path, umask: &str, force: bool, env: &[(&str, &str)]) -> Output {
    let spec = workspace.join("images/minimal.yaml");
    let force = if force { " --force" } else { "" };
    Command::new("sh")
        .arg("-c")
        .arg(format!(
            "umask {umask} && exec {} build {} --out {} --pool {} --init {}{force}",
            image_builder_bin().display(),
            spec.display(),
            out.display(),
            pool_dir().display(),
            init_bin().display()
        ))
        .current_dir(workspace)
        .envs(env.iter().copied())
        .output()
        .expect("running image-builder build")
}

fn report(out: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("build.json")).unwrap()).unwrap()
}

fn name(output: &str, ext: &str) -> String {
    format!("{BASE}_{output}.{ext}")
}

/// (name, bytes) of every member of a tar archive, in order, checking USTAR headers.
fn members(path: &Path) -> Vec<(String, Vec<u8>)> {
    tar::Archive::new(File::open(path).unwrap())
        .entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let h = e.header();
            assert!(h.as_ustar().is_some(), "{}: not USTAR", path.display());
            assert_eq!(h.mtime().unwrap(), 1_767_225_600, "source_date_epoch");
            assert_eq!((h.uid().unwrap(), h.gid().unwrap()), (0, 0));
            let name = e.path().unwrap().to_string_lossy().into_owned();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            (name, data)
        })
        .collect()
}

fn member<'a>(m: &'a [(String, Vec<u8>)], name: &str) -> &'a [u8] {
    &m.iter().find(|(n, _)| n == name).unwrap().1
}

/// `sha1sum` of `data`, by the coreutils tool.
fn sha1sum(data: &[u8]) -> String {
    let mut child = Command::new("sha1sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), data).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout).unwrap()[..40].to_string()
}

fn ok(cmd: &mut Command) -> String {
    let o = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let t = text(&o);
    assert!(o.status.success(), "{cmd:?} failed:\n{t}");
    t
}

/// Boot a disk with `image-builder run` and wait for `expect`; returns the console.
fn boot(disk: &Path, format: &str, bus: &str, expect: &str, extra: &[&str]) -> String {
    let mut args = vec![
        "run",
        disk.to_str().unwrap(),
        "--format",
        format,
        "--disk-bus",
        bus,
        "--snapshot",
        "--timeout",
        "300",
        "--expect",
        expect,
    ];
    if !extra.is_empty() {
        args.push("--");
        args.extend_from_slice(extra);
    }
    let run = image_builder(&repo_root(), &args);
    let console = text(&run);
    assert!(
        run.status.success(),
        "{} ({format}, {bus}) did not reach {expect:?}:\n{console}",
        disk.display()
    );
    console
}

fn assert_login(console: &str) {
    assert!(console.contains("Minimal Linux alpha (1.0.0)"), "{console}");
    assert!(
        console.contains("booted slot=USR-A version=1.0.0"),
        "{console}"
    );
}

#[test]
fn every_artifact_is_reproducible_and_listed() {
    let a = shared();
    let ra = report(&a);
    let b = scratch_with_all_outputs();
    let o = build(
        b.path(),
        &b.path().join("elsewhere/out"),
        "077",
        false,
        &[("TZ", "Pacific/Kiritimati"), ("LC_ALL", "C")],
    );
    assert!(o.status.success(), "{}", text(&o));
    let rb = report(&b.path().join("elsewhere/out"));
    assert_eq!(ra["artifacts"], rb["artifacts"], "artifacts differ");
    assert_eq!(ra["outputs"], rb["outputs"]);

    // Every output's files exist, are listed with their sha256, and are named as documented.
    let outputs: BTreeMap<String, Vec<String>> =
        serde_json::from_value(ra["outputs"].clone()).unwrap();
    let want: BTreeMap<String, Vec<String>> = [
        ("raw", vec![name("raw", "img")]),
        ("qcow2", vec![name("qcow2", "qcow2")]),
        ("vmdk", vec![name("vmdk", "vmdk")]),
        ("vhd", vec![name("vhd", "vhd")]),
        ("ova", vec![name("ova", "ova")]),
        (
            "vagrant-virtualbox",
            vec![
                name("vagrant-virtualbox", "box"),
                "Vagrantfile".into(),
                "config.rb".into(),
            ],
        ),
        (
            "vagrant-libvirt",
            vec![
                name("vagrant-libvirt", "box"),
                "Vagrantfile".into(),
                "config.rb".into(),
            ],
        ),
        (
            "ami",
            vec![name("ami", "img"), name("ami", "vhd"), name("ami", "json")],
        ),
        (
            "pxe",
            vec![
                name("pxe", "vmlinuz"),
                name("pxe", "cpio"),
                name("pxe", "ipxe"),
                name("pxe", "pxelinux.cfg"),
            ],
        ),
        ("iso", vec![name("iso", "iso")]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(outputs, want);
    let disk = &ra["artifacts"]["disk.raw"];
    for file in outputs.values().flatten() {
        let listed = &ra["artifacts"][file];
        assert!(listed["sha256"].is_string(), "{file} not in build.json");
        let meta = std::fs::metadata(a.join(file)).unwrap();
        assert_eq!(listed["size"].as_u64(), Some(meta.len()), "{file}");
        // Dense hashing of the sparse 800 MiB disks is slow; they are compared below.
        if meta.len() < GIB / 4 {
            assert_eq!(
                listed["sha256"].as_str().unwrap(),
                sha256_file(&a.join(file)),
                "{file}"
            );
        }
    }
    // The raw copies are disk.raw; both VHDs are the same disk.
    assert_eq!(ra["artifacts"][name("raw", "img")], *disk);
    assert_eq!(ra["artifacts"][name("ami", "img")], *disk);
    assert_eq!(
        ra["artifacts"][name("vhd", "vhd")],
        ra["artifacts"][name("ami", "vhd")]
    );
    // No temporary or staging files left behind.
    for e in std::fs::read_dir(&a).unwrap() {
        let n = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!n.starts_with('.'), "{n} left in the build directory");
    }
}

/// The virtualbox box on the hardware its `box.ovf` declares, read from the descriptor as
/// VirtualBox's importer would: the controller and NIC models, and the firmware (none declared:
/// VirtualBox's default, BIOS, boots it through GRUB). Set to EFI, it boots too.
#[test]
fn virtualbox_box_boots_on_the_hardware_its_ovf_declares() {
    let out = shared();
    let tmp = tempfile::tempdir().unwrap();
    let m = members(&out.join(name("vagrant-virtualbox", "box")));
    let ovf = String::from_utf8(member(&m, "box.ovf").to_vec()).unwrap();
    let sub_types: Vec<&str> = ovf
        .lines()
        .filter_map(|l| {
            l.trim()
                .strip_prefix("<rasd:ResourceSubType>")?
                .strip_suffix("</rasd:ResourceSubType>")
        })
        .collect();
    // VirtualBox's names: a SATA controller is "AHCI", the Intel PRO/1000 MT NIC "E1000".
    let bus = match sub_types.first() {
        Some(&"AHCI") => "ahci",
        other => panic!("box.ovf's disk controller {other:?} has no QEMU model here:\n{ovf}"),
    };
    let nic = match sub_types.get(1) {
        Some(&"E1000") => "e1000",
        other => panic!("box.ovf's NIC {other:?} has no QEMU model here:\n{ovf}"),
    };
    assert!(
        !ovf.contains("firmware"),
        "box.ovf leaves the firmware to VirtualBox:\n{ovf}"
    );
    let vmdk = tmp.path().join("box-disk001.vmdk");
    std::fs::write(&vmdk, member(&m, "box-disk001.vmdk")).unwrap();
    for firmware in ["bios", "uefi"] {
        // A streamOptimized VMDK is read-only for QEMU: -snapshot (run's --snapshot).
        let run = image_builder(
            &repo_root(),
            &[
                "run",
                vmdk.to_str().unwrap(),
                "--format",
                "vmdk",
                "--snapshot",
                "--machine",
                "pc",
                "--disk-bus",
                bus,
                "--nic",
                nic,
                "--firmware",
                firmware,
                "--timeout",
                "300",
                "--expect",
                r"udhcpc: eth0 bound 10\.0\.2\.15",
            ],
        );
        let console = text(&run);
        assert!(
            run.status.success(),
            "{firmware}: no DHCP lease:\n{console}"
        );
        assert_login(&console);
        assert!(console.contains("init: usr=/dev/sda3 (USR-A)"), "{console}");
        assert!(
            console.contains("init: drivers from /usr: e1000 (pci/"),
            "{console}"
        );
        assert_eq!(
            console.contains("GRUB: booting Minimal Linux 1.0.0 (USR-A)"),
            firmware == "bios",
            "{firmware}:\n{console}"
        );
    }
}

#[test]
fn ova_disk_reaches_usr_on_vmwares_controller() {
    let out = shared();
    let r = report(&out);
    let tmp = tempfile::tempdir().unwrap();
    let m = members(&out.join(name("ova", "ova")));
    let vmdk = tmp.path().join("disk.vmdk");
    std::fs::write(&vmdk, member(&m, "minimal-1.0.0-disk1.vmdk")).unwrap();
    let usr = partition(&r, "USR-A")["guid"].as_str().unwrap().to_string();
    // OVMF has no pvscsi driver: the kernel boots directly, /init must find its disk through
    // vmw_pvscsi (and VMware's vmxnet3 NIC is there too).
    let append = format!("console=ttyS0 usr=PARTUUID={usr}");
    let console = boot(
        &vmdk,
        "vmdk",
        "pvscsi",
        "booted slot=USR-A",
        &[
            "-kernel",
            out.join("vmlinuz").to_str().unwrap(),
            "-initrd",
            out.join("initrd.img").to_str().unwrap(),
            "-append",
            &append,
            "-netdev",
            "user,id=vmnet",
            "-device",
            "vmxnet3,netdev=vmnet",
        ],
    );
    assert!(console.contains("init: usr=/dev/sda3 (USR-A)"), "{console}");
}

#[test]
fn vhd_boots() {
    let out = shared();
    // qemu-img would guess a fixed VHD as raw: the format is explicit.
    let console = boot(
        &out.join(name("vhd", "vhd")),
        "vpc",
        "virtio",
        "login:",
        &[],
    );
    assert_login(&console);
}

#[test]
fn qcow2_boots_and_is_the_libvirt_boxs_disk() {
    let out = shared();
    let qcow2 = out.join(name("qcow2", "qcow2"));
    ok(Command::new("qemu-img")
        .args(["check", "-f", "qcow2"])
        .arg(&qcow2));
    let console = boot(&qcow2, "qcow2", "virtio", "login:", &[]);
    assert_login(&console);

    // The box's disk is disk.raw but for the OEM partition, which holds the Vagrant
    // configuration (applied at boot from /oem/cloud-config.yml).
    let tmp = tempfile::tempdir().unwrap();
    let m = members(&out.join(name("vagrant-libvirt", "box")));
    std::fs::write(tmp.path().join("box.img"), member(&m, "box.img")).unwrap();
    ok(Command::new("qemu-img")
        .args(["check", "-f", "qcow2"])
        .arg(tmp.path().join("box.img")));
    ok(Command::new("qemu-img")
        .args(["convert", "-f", "qcow2", "-O", "raw"])
        .arg(tmp.path().join("box.img"))
        .arg(tmp.path().join("box.raw")));
    let boxed = std::fs::read(tmp.path().join("box.raw")).unwrap();
    let raw = std::fs::read(out.join("disk.raw")).unwrap();
    assert_eq!(boxed.len(), raw.len());
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("build.json")).unwrap()).unwrap();
    let oem = partition(&report, "OEM");
    let start = oem["offset"].as_u64().unwrap() as usize;
    let end = start + oem["size"].as_u64().unwrap() as usize;
    assert!(
        boxed[..start] == raw[..start],
        "the box's disk differs before OEM"
    );
    assert!(
        boxed[end..] == raw[end..],
        "the box's disk differs after OEM"
    );
    std::fs::write(tmp.path().join("oem.img"), &boxed[start..end]).unwrap();
    let o = Command::new("debugfs")
        .args(["-R", "cat /cloud-config.yml"])
        .arg(tmp.path().join("oem.img"))
        .output()
        .unwrap();
    let want =
        std::fs::read_to_string(repo_root().join("artifacts/vagrant/data/oem/cloud-config.yml"))
            .unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout), want);
}

#[test]
fn disks_read_back_as_disk_raw() {
    let out = shared();
    let raw = out.join("disk.raw");
    for (file, format) in [
        (name("vmdk", "vmdk"), "vmdk"),
        (name("ami", "vhd"), "vpc"),
        (name("qcow2", "qcow2"), "qcow2"),
    ] {
        let t = ok(Command::new("qemu-img")
            .args(["compare", "-f", "raw", "-F", format])
            .arg(&raw)
            .arg(out.join(&file)));
        assert!(t.contains("Images are identical"), "{file}: {t}");
    }
}

/// COT (the Common OVF Tool, not ours; `make test` installs it) reads the OVA as a consumer:
/// manifest digests verified, the disk, controller and NIC understood, no error or warning.
#[test]
fn ova_reads_clean_in_an_independent_ovf_tool() {
    let out = shared();
    let ova = out.join(name("ova", "ova"));
    let o = Command::new("/opt/image-builder/cot/bin/cot")
        .args(["--force", "info"])
        .arg(&ova)
        .output()
        .expect("COT (scripts/setup-host.sh installs it)");
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    for bad in ["ERROR", "WARNING", "tampered"] {
        assert!(!t.contains(bad), "COT says {bad}:\n{t}");
    }
    for want in [
        "minimal-1.0.0-disk1.vmdk",
        "harddisk @ SCSI 0:0",
        "VirtualSCSI",
        "VmxNet3",
    ] {
        assert!(t.contains(want), "COT does not see {want:?}:\n{t}");
    }
}

#[test]
fn ova_layout_manifest_and_schema() {
    let out = shared();
    let r = report(&out);
    let m = members(&out.join(name("ova", "ova")));
    let names: Vec<&str> = m.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "minimal-1.0.0.ovf",
            "minimal-1.0.0.mf",
            "minimal-1.0.0-disk1.vmdk"
        ],
        "descriptor first, then the manifest, then the disk"
    );
    let mf = String::from_utf8(m[1].1.clone()).unwrap();
    let lines: Vec<&str> = mf.lines().collect();
    assert_eq!(lines.len(), 2, "{mf}");
    // OVF 1.x manifests carry SHA-1 digests (DSP0243 1.1); checked with coreutils' sha1sum.
    for ((n, data), line) in [&m[0], &m[2]].into_iter().zip(&lines) {
        assert_eq!(*line, format!("SHA1({n})= {}", sha1sum(data)));
    }
    let ovf = String::from_utf8(m[0].1.clone()).unwrap();
    let disk_size = r["artifacts"]["disk.raw"]["size"].as_u64().unwrap();
    for want in [
        format!(
            "<File ovf:href=\"minimal-1.0.0-disk1.vmdk\" ovf:id=\"file1\" ovf:size=\"{}\"/>",
            m[2].1.len()
        ),
        format!("ovf:capacity=\"{disk_size}\""),
        "<VirtualSystem ovf:id=\"minimal-1.0.0\">".into(),
        "<OperatingSystemSection ovf:id=\"101\" vmw:osType=\"otherLinux64Guest\">".into(),
        "<VirtualHardwareSection ovf:transport=\"com.vmware.guestInfo\">".into(),
        "<rasd:ResourceSubType>VmxNet3</rasd:ResourceSubType>".into(),
        "<vmw:Config ovf:required=\"false\" vmw:key=\"firmware\" vmw:value=\"efi\"/>".into(),
        "ovf:key=\"guestinfo.hostname\"".into(),
        "ovf:key=\"guestinfo.coreos.config.data\"".into(),
        "ovf:key=\"guestinfo.coreos.config.data.encoding\"".into(),
        "<FullVersion>1.0.0 (alpha)</FullVersion>".into(),
    ] {
        assert!(ovf.contains(&want), "{want:?} not in:\n{ovf}");
    }
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("minimal.ovf");
    std::fs::write(&p, &ovf).unwrap();
    let t = ok(Command::new("xmllint")
        .args(["--nonet", "--noout", "--schema"])
        .arg(repo_root().join("artifacts/ova/tests/data/ovf-schema/dsp8023_1.1.1.xsd"))
        .arg(&p));
    assert!(t.contains("validates"), "{t}");
    // The VMDK in the OVA passes qemu-img's checks.
    let vmdk = tmp.path().join("disk.vmdk");
    std::fs::write(&vmdk, &m[2].1).unwrap();
    ok(Command::new("qemu-img")
        .args(["check", "-f", "vmdk"])
        .arg(&vmdk));
}

#[test]
fn box_layouts_and_cluster_files() {
    let out = shared();
    let r = report(&out);
    let disk_size = r["artifacts"]["disk.raw"]["size"].as_u64().unwrap();
    let tmp = tempfile::tempdir().unwrap();

    let vb = members(&out.join(name("vagrant-virtualbox", "box")));
    let names: Vec<&str> = vb.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "metadata.json",
            "Vagrantfile",
            "box.ovf",
            "box-disk001.vmdk"
        ]
    );
    let meta: serde_json::Value = serde_json::from_slice(member(&vb, "metadata.json")).unwrap();
    assert_eq!(meta, serde_json::json!({"provider": "virtualbox"}));
    let vagrantfile = String::from_utf8(member(&vb, "Vagrantfile").to_vec()).unwrap();
    for want in [
        "config.ssh.username = \"core\"",
        "config.vm.base_mac = \"080027",
    ] {
        assert!(vagrantfile.contains(want), "{want:?}:\n{vagrantfile}");
    }
    let ovf = String::from_utf8(member(&vb, "box.ovf").to_vec()).unwrap();
    assert!(ovf.contains(&format!(
        "ovf:href=\"box-disk001.vmdk\" ovf:id=\"file1\" ovf:size=\"{}\"",
        member(&vb, "box-disk001.vmdk").len()
    )));
    let ovf_path = tmp.path().join("box.ovf");
    std::fs::write(&ovf_path, &ovf).unwrap();
    ok(Command::new("xmllint")
        .args(["--nonet", "--noout", "--schema"])
        .arg(repo_root().join("artifacts/ova/tests/data/ovf-schema/dsp8023_1.1.1.xsd"))
        .arg(&ovf_path));

    let lv = members(&out.join(name("vagrant-libvirt", "box")));
    let names: Vec<&str> = lv.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["metadata.json", "Vagrantfile", "box.img"]);
    let meta: serde_json::Value = serde_json::from_slice(member(&lv, "metadata.json")).unwrap();
    assert_eq!(meta["provider"], "libvirt");
    assert_eq!(meta["format"], "qcow2");
    assert_eq!(meta["virtual_size"].as_u64(), Some(disk_size.div_ceil(GIB)));
    assert!(member(&lv, "box.img").starts_with(b"QFI\xfb"));

    // The box Vagrantfiles and the cluster files are Ruby; Vagrant loads the cluster's.
    for (n, text) in [
        ("vb", member(&vb, "Vagrantfile")),
        ("lv", member(&lv, "Vagrantfile")),
    ] {
        let p = tmp.path().join(format!("Vagrantfile.{n}"));
        std::fs::write(&p, text).unwrap();
        ok(Command::new("ruby").arg("-c").arg(&p));
    }
    let cluster = tmp.path().join("cluster");
    std::fs::create_dir(&cluster).unwrap();
    for f in ["Vagrantfile", "config.rb"] {
        std::fs::copy(out.join(f), cluster.join(f)).unwrap();
    }
    let config = std::fs::read_to_string(cluster.join("config.rb")).unwrap();
    assert!(config.contains(&format!("libvirt: \"{}\"", name("vagrant-libvirt", "box"))));
    let vagrant_home = tmp.path().join("vagrant.d");
    let t = ok(Command::new("vagrant")
        .args(["validate", "--ignore-provider"])
        .current_dir(&cluster)
        .env("VAGRANT_HOME", &vagrant_home)
        .env("VAGRANT_CHECKPOINT_DISABLE", "1"));
    assert!(t.contains("Vagrantfile validated successfully"), "{t}");
    assert!(t.contains("core-01"), "{t}");
}

#[test]
fn vagrant_adds_the_boxes_from_a_channel_catalog() {
    let out = shared();
    let tmp = tempfile::tempdir().unwrap();
    let catalog = tmp.path().join("alpha.json");
    let base_url = format!("file://{}", out.display());
    let o = image_builder(
        tmp.path(),
        &[
            "vagrant-catalog",
            out.to_str().unwrap(),
            "--base-url",
            &base_url,
            "--catalog",
            catalog.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let c: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&catalog).unwrap()).unwrap();
    assert_eq!(c["name"], "minimal-alpha");
    let providers = c["versions"][0]["providers"].as_array().unwrap();
    let r = report(&out);
    for (p, output) in providers
        .iter()
        .zip(["vagrant-libvirt", "vagrant-virtualbox"])
    {
        assert_eq!(p["checksum_type"], "sha256");
        assert_eq!(p["checksum"], r["artifacts"][name(output, "box")]["sha256"]);
        assert_eq!(p["url"], format!("{base_url}/{}", name(output, "box")));
    }

    let vagrant = |args: &[&str]| {
        Command::new("vagrant")
            .args(args)
            .current_dir(tmp.path())
            .env("VAGRANT_HOME", tmp.path().join("vagrant.d"))
            .env("VAGRANT_CHECKPOINT_DISABLE", "1")
            .output()
            .expect("vagrant (Debian package vagrant; scripts/setup-host.sh installs it)")
    };
    let url = format!("file://{}", catalog.display());
    for provider in ["libvirt", "virtualbox"] {
        let o = vagrant(&["box", "add", &url, "--provider", provider]);
        assert!(o.status.success(), "box add {provider}:\n{}", text(&o));
    }
    let list = text(&vagrant(&["box", "list"]));
    assert!(list.contains("minimal-alpha (libvirt, 1.0.0)"), "{list}");
    assert!(list.contains("minimal-alpha (virtualbox, 1.0.0)"), "{list}");
    let unpacked = tmp
        .path()
        .join("vagrant.d/boxes/minimal-alpha/1.0.0/libvirt");
    for f in ["metadata.json", "Vagrantfile", "box.img"] {
        assert!(unpacked.join(f).exists(), "{f} not unpacked");
    }

    // A catalog whose checksum does not match the box is refused.
    let bad = std::fs::read_to_string(&catalog).unwrap().replacen(
        r["artifacts"][name("vagrant-libvirt", "box")]["sha256"]
            .as_str()
            .unwrap(),
        &"0".repeat(64),
        1,
    );
    let bad_path = tmp.path().join("bad.json");
    std::fs::write(&bad_path, bad).unwrap();
    let o = vagrant(&[
        "box",
        "add",
        &format!("file://{}", bad_path.display()),
        "--provider",
        "libvirt",
        "--force",
    ]);
    assert!(!o.status.success(), "bad checksum accepted:\n{}", text(&o));
    assert!(text(&o).to_lowercase().contains("checksum"), "{}", text(&o));
}

#[test]
fn ami_register_input() {
    let out = shared();
    let r = report(&out);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join(name("ami", "json"))).unwrap())
            .unwrap();
    let disk_size = r["artifacts"]["disk.raw"]["size"].as_u64().unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "Name": "minimal-alpha-1.0.0-hvm",
            "Description": "Minimal Linux 1.0.0 (alpha)",
            "Architecture": "x86_64",
            "VirtualizationType": "hvm",
            "EnaSupport": true,
            "SriovNetSupport": "simple",
            "BootMode": "uefi",
            "ImdsSupport": "v2.0",
            "RootDeviceName": "/dev/xvda",
            "BlockDeviceMappings": [{
                "DeviceName": "/dev/xvda",
                "Ebs": {
                    "SnapshotId": "<filled at upload>",
                    "VolumeSize": disk_size.div_ceil(GIB),
                    "VolumeType": "gp3",
                    "DeleteOnTermination": true
                }
            }]
        })
    );
    // The VHD is the disk padded to a whole MiB plus the 512-byte footer.
    let vhd = std::fs::metadata(out.join(name("ami", "vhd")))
        .unwrap()
        .len();
    assert_eq!(vhd, disk_size.next_multiple_of(1 << 20) + 512);
}

/// Network-boots the shared build's PXE files: QEMU's DHCP hands out `bootfile`, the NIC's iPXE
/// ROM fetches it (from `tftp_root` over TFTP, or a URL), then the kernel and the initramfs the
/// script names. Waits for the autologin shell (`pxe.kernel_args: [coreos.autologin]`).
fn netboot(firmware: &str, nic: &str, tftp_root: &Path, bootfile: &str) -> String {
    let run = image_builder(
        &repo_root(),
        &[
            "run",
            "--pxe",
            tftp_root.to_str().unwrap(),
            "--bootfile",
            bootfile,
            "--firmware",
            firmware,
            "--nic",
            nic,
            "--timeout",
            "400",
            "--expect",
            r"root@\S+:~# ?$",
        ],
    );
    let console = text(&run);
    assert!(
        run.status.success(),
        "{firmware} network boot of {bootfile} did not reach the autologin shell:\n{console}"
    );
    // /usr from the initramfs through a loop device, / on a tmpfs, no slot.
    for want in [
        "init: usr=/usr.squashfs on /dev/loop",
        "init: root=tmpfs (in RAM) on /sysroot",
        "Minimal Linux alpha (1.0.0)",
        "booted from RAM (live: network boot or ISO) version=1.0.0",
    ] {
        assert!(console.contains(want), "{want:?} missing:\n{console}");
    }
    console
}

/// Through a real NIC's boot ROM: the iPXE of QEMU's Intel 82574L (e1000e) on q35, as bare
/// metal boots; the booted OS loads the NIC's driver from the /usr it carries.
#[test]
fn pxe_files_boot_over_tftp_with_bios_and_uefi() {
    let out = shared();
    let script = name("pxe", "ipxe");
    for firmware in ["bios", "uefi"] {
        let console = netboot(firmware, "e1000e", &out, &script);
        assert!(
            console
                .lines()
                .any(|l| l.contains("init: drivers from /usr: ") && l.contains("e1000e (pci/")),
            "{firmware}: e1000e not loaded from the carried /usr:\n{console}"
        );
    }
}

#[test]
fn pxe_files_boot_over_http_with_bios_and_uefi() {
    let out = shared();
    // Only HTTP has the files: the TFTP root is empty.
    let empty = tempfile::tempdir().unwrap();
    let server = tests::http::StaticServer::start(&out);
    let port = server.url.rsplit(':').next().unwrap().to_string();
    // The guest reaches the host's loopback as 10.0.2.2 (QEMU user networking).
    let url = format!("http://10.0.2.2:{port}/{}", name("pxe", "ipxe"));
    for firmware in ["bios", "uefi"] {
        let before = server.requests().len();
        netboot(firmware, "virtio", empty.path(), &url);
        let got: Vec<String> = server.requests()[before..].to_vec();
        for file in [
            name("pxe", "ipxe"),
            name("pxe", "vmlinuz"),
            name("pxe", "cpio"),
        ] {
            assert!(
                got.iter().any(|r| r == &format!("/{file}")),
                "{firmware}: {file} was not fetched over HTTP: {got:?}"
            );
        }
    }
}

#[test]
fn pxe_files_are_what_the_image_boots() {
    let out = shared();
    // The kernel is the image's; the initramfs is the USR image in a cpio, then an initramfs
    // like the disk's (plus the loop module).
    assert_eq!(
        std::fs::read(out.join(name("pxe", "vmlinuz"))).unwrap(),
        std::fs::read(out.join("vmlinuz")).unwrap()
    );
    let cpio = std::fs::read(out.join(name("pxe", "cpio"))).unwrap();
    let usr = std::fs::read(out.join("usr.img")).unwrap();
    // newc: a 110-byte header, the NUL-terminated name and the data, each 4-byte aligned.
    assert_eq!(&cpio[..6], b"070701");
    assert_eq!(&cpio[110..123], b"usr.squashfs\0");
    let data_at = (110 + 13usize).next_multiple_of(4);
    assert_eq!(&cpio[data_at..data_at + usr.len()], &usr[..]);
    let rest = &cpio[(data_at + usr.len()).next_multiple_of(4)..];
    let trailer_end = (110 + 11usize).next_multiple_of(4);
    assert_eq!(&rest[110..120], b"TRAILER!!!");
    let base = &rest[trailer_end..];
    assert_eq!(
        &base[..4],
        &[0x28, 0xb5, 0x2f, 0xfd],
        "zstd initramfs follows"
    );
    let script = std::fs::read_to_string(out.join(name("pxe", "ipxe"))).unwrap();
    assert!(script.starts_with("#!ipxe\n"), "{script}");
    let kernel_line = format!(
        "kernel {} initrd={} console=tty0 console=ttyS0,115200n8 panic=10 quiet loglevel=4 coreos.autologin\n",
        name("pxe", "vmlinuz"),
        name("pxe", "cpio")
    );
    assert!(script.contains(&kernel_line), "{script}");
    let pxelinux = std::fs::read_to_string(out.join(name("pxe", "pxelinux.cfg"))).unwrap();
    assert!(
        pxelinux.contains(&format!(
            "  KERNEL {}\n  APPEND initrd={}",
            name("pxe", "vmlinuz"),
            name("pxe", "cpio")
        )),
        "{pxelinux}"
    );
}

/// The live medium (`iso`) boots four ways with a blank AHCI disk attached (what an installer
/// would find): from a CD-ROM drive through El Torito (GRUB's cdboot.img under SeaBIOS, the
/// EFI image under OVMF) and as a USB stick (the MBR's boot.img under SeaBIOS, the GPT's EFI
/// partition under OVMF), each in exactly the RAM `build.json` says the live system needs,
/// to the autologin shell, running from RAM as after a network boot.
#[test]
fn iso_boots_from_cd_and_usb_stick_with_bios_and_uefi() {
    let out = shared();
    let iso = out.join(name("iso", "iso"));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("build.json")).unwrap()).unwrap();
    let ram = report["live_ram_mib"]
        .as_u64()
        .expect("build.json: live_ram_mib");
    let dir = tempfile::tempdir().unwrap();
    let blank = dir.path().join("blank.raw");
    File::create(&blank).unwrap().set_len(2 * GIB).unwrap();
    let ram = ram.to_string();
    // GRUB names its entry (SeaBIOS prints nothing on the serial line), OVMF its boot device;
    // /init names the driver of the medium it was loaded from.
    let grub = "Booting `Minimal Linux 1.0.0 (live)'";
    let cases = [
        ("bios", "cd", grub, "sr_mod (scsi/"),
        (
            "uefi",
            "cd",
            "BdsDxe: starting Boot0001 \"UEFI QEMU DVD-ROM",
            "sr_mod (scsi/",
        ),
        ("bios", "usb", grub, "usb_storage (usb/"),
        (
            "uefi",
            "usb",
            "BdsDxe: starting Boot0001 \"UEFI QEMU QEMU USB HARDDRIVE",
            "usb_storage (usb/",
        ),
    ];
    for (firmware, medium, firmware_line, driver) in cases {
        let mut args: Vec<String> = vec!["run".into()];
        match medium {
            "cd" => args.extend(["--cdrom".into(), iso.display().to_string()]),
            _ => args.extend([iso.display().to_string(), "--disk-bus".into(), "usb".into()]),
        }
        args.extend(
            [
                "--snapshot",
                "--firmware",
                firmware,
                "--memory",
                &ram,
                "--timeout",
                "400",
                "--expect",
                r"root@\S+:~# ?$",
                "--",
                "-device",
                "ich9-ahci,id=blank",
                "-drive",
                &format!("file={},format=raw,if=none,id=blankdisk", blank.display()),
                "-device",
                "ide-hd,bus=blank.0,drive=blankdisk",
            ]
            .map(String::from),
        );
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = image_builder(&repo_root(), &args);
        let console = text(&run);
        assert!(
            run.status.success(),
            "{firmware} {medium}: no autologin shell ({args:?}):\n{console}"
        );
        for want in [
            firmware_line,
            driver,
            "init: usr=/usr.squashfs on /dev/loop",
            "init: root=tmpfs (in RAM) on /sysroot",
            "Minimal Linux alpha (1.0.0)",
            "booted from RAM (live: network boot or ISO) version=1.0.0",
        ] {
            assert!(
                console.contains(want),
                "{firmware} {medium}: {want:?} missing:\n{console}"
            );
        }
    }
}

/// The ISO as its consumers read it: isoinfo (volume, El Torito catalog, files), sgdisk (the
/// hybrid GPT, verified, with the EFI image as its partition), blkid (an iso9660 with the
/// spec's label), mtools (the EFI image's loader entry and kernel, from the partition).
#[test]
fn iso_is_what_its_readers_expect() {
    let out = shared();
    let iso = out.join(name("iso", "iso"));
    let tool = |cmd: &str, args: &[&str]| -> String {
        let o = Command::new(cmd).args(args).output().unwrap();
        assert!(o.status.success(), "{cmd} {args:?}: {}", text(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let path = iso.to_str().unwrap();
    let info = tool("isoinfo", &["-d", "-i", path]);
    for want in [
        "Volume id: MINIMAL_1_0_0",
        "El Torito VD version 1 found",
        "Nsect 4",
    ] {
        assert!(info.contains(want), "{want:?}:\n{info}");
    }
    let cfg = tool("isoinfo", &["-i", path, "-x", "/BOOT/GRUB/GRUB.CFG;1"]);
    assert!(cfg.contains("loopback live /EFIBOOT.IMG"), "{cfg}");
    assert!(
        cfg.contains("console=ttyS0,115200n8 panic=10 quiet loglevel=4 coreos.autologin"),
        "{cfg}"
    );
    let blkid = tool("blkid", &["-p", "-o", "export", path]);
    assert!(blkid.contains("LABEL=MINIMAL_1_0_0"), "{blkid}");
    assert!(blkid.contains("TYPE=iso9660"), "{blkid}");
    let gpt = tool("sgdisk", &["-v", path]);
    assert!(gpt.contains("No problems found"), "{gpt}");
    let table = tool("sgdisk", &["-p", path]);
    assert!(table.contains("LIVE-EFI"), "{table}");
    let part = tool("sgdisk", &["-i", "1", path]);
    assert!(
        part.contains("C12A7328-F81F-11D2-BA4B-00A0C93EC93B"),
        "{part}"
    );
    let first: u64 = part
        .lines()
        .find_map(|l| l.strip_prefix("First sector: "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .parse()
        .unwrap();
    let fat = format!("{path}@@{}", first * 512);
    let entry = tool(
        "mtype",
        &["-i", &fat, "::/loader/entries/minimal-live.conf"],
    );
    assert!(
        entry.contains("linux /live/vmlinuz\ninitrd /live/initrd\n"),
        "{entry}"
    );
    assert!(entry.contains("options console=tty0"), "{entry}");
    let kernel = dir_file(&fat, "::/live/vmlinuz");
    assert_eq!(kernel, std::fs::read(out.join("vmlinuz")).unwrap());
    let initrd = dir_file(&fat, "::/live/initrd");
    assert_eq!(
        initrd,
        std::fs::read(out.join(name("pxe", "cpio"))).unwrap()
    );
}

/// A file out of a FAT image with mtools' `mcopy`.
fn dir_file(image: &str, path: &str) -> Vec<u8> {
    let o = Command::new("mcopy")
        .args(["-n", "-i", image, path, "-"])
        .output()
        .unwrap();
    assert!(o.status.success(), "mcopy {path}: {}", text(&o));
    o.stdout
}

#[test]
fn unknown_output_is_one_clear_error() {
    let s = Scratch::new("minimal");
    s.edit_spec("minimal", "outputs: [raw]", "outputs: [raw, floppy]");
    let o = s.build("minimal", "out", &pool_dir());
    assert_clean_failure(&o, "floppy");
    assert_clean_failure(&o, "vagrant-libvirt");
    let line = std::fs::read_to_string(s.spec("minimal"))
        .unwrap()
        .lines()
        .position(|l| l.starts_with("outputs:"))
        .unwrap()
        + 1;
    assert_clean_failure(&o, &format!("minimal.yaml:{line}:"));
    assert_eq!(text(&o).matches("error: ").count(), 1, "{}", text(&o));
    assert!(!s.path().join("out").exists(), "output directory created");
}

#[test]
fn failed_artifact_leaves_no_build_json_and_no_partial_files() {
    let s = Scratch::new("minimal");
    s.edit_spec("minimal", "outputs: [raw]", "outputs: [raw, vhd]");
    // A directory where the VHD should go: the build fails when it moves the artifacts in.
    let out = s.path().join("out");
    std::fs::create_dir_all(out.join(name("vhd", "vhd")).join("occupied")).unwrap();
    let o = s.build("minimal", "out", &pool_dir());
    assert_clean_failure(&o, &name("vhd", "vhd"));
    assert!(!out.join("build.json").exists(), "build.json left behind");
    for e in std::fs::read_dir(&out).unwrap() {
        let n = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!n.starts_with('.'), "{n}: temporary file left behind");
    }
}

/// What vSphere does with the OVA: the ProductSection's defaults, a cloud-config pasted as is
/// into the user-data property, the OVF environment the guest gets, read by the config agent's
/// own parser. The config must arrive as pasted (upstream: an empty encoding is plain text).
#[test]
fn ova_takes_a_cloud_config_pasted_into_vsphere_as_is() {
    let out = shared();
    let m = members(&out.join(name("ova", "ova")));
    let ovf = String::from_utf8(member(&m, "minimal-1.0.0.ovf").to_vec()).unwrap();
    let attr = |line: &str, a: &str| -> Option<String> {
        let start = line.find(&format!("{a}=\""))? + a.len() + 2;
        Some(line[start..start + line[start..].find('"')?].to_string())
    };
    let pasted = "#cloud-config\nhostname: pasted-in-vsphere\n";
    let mut env = String::from(
        "<Environment xmlns=\"http://schemas.dmtf.org/ovf/environment/1\" \
         xmlns:oe=\"http://schemas.dmtf.org/ovf/environment/1\"><PropertySection>",
    );
    let mut keys = Vec::new();
    for line in ovf
        .lines()
        .filter(|l| l.trim_start().starts_with("<Property "))
    {
        let key = attr(line, "ovf:key").unwrap();
        let mut value = attr(line, "ovf:value").unwrap();
        if key == "guestinfo.coreos.config.data" {
            value = pasted.replace('\n', "&#10;");
        }
        env.push_str(&format!(
            "<Property oe:key=\"{key}\" oe:value=\"{value}\"/>"
        ));
        keys.push(key);
    }
    env.push_str("</PropertySection></Environment>");
    assert!(
        keys.contains(&"guestinfo.coreos.config.data.encoding".to_string()),
        "{keys:?}"
    );
    let props = cloudinit::sources::vmware::parse_ovf_env(&env);
    let config =
        cloudinit::sources::vmware::read_guest_config(&|k: &str| Ok(props.get(k).cloned()))
            .unwrap();
    assert_eq!(
        config.user_data.as_deref(),
        Some(pasted.as_bytes()),
        "{env}"
    );
}
