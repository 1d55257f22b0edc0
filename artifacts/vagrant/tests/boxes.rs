//! The boxes as Vagrant and its providers see them: USTAR archives with the members in order,
//! metadata with the fields Vagrant and vagrant-libvirt require, Vagrantfiles Ruby accepts, a
//! descriptor naming the disk, and disks `qemu-img` reads back as the raw disk. Same input, same
//! bytes.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use ova::ovf::Product;
use vagrant::cluster::{config_rb, ClusterConfig, VAGRANTFILE};
use vagrant::{write_libvirt, write_virtualbox, BoxOptions};

const MIB: u64 = 1 << 20;

fn options() -> BoxOptions {
    BoxOptions {
        name: "minimal-1.0.0".into(),
        product: Product {
            name: "Minimal Linux".into(),
            version: "1.0.0".into(),
            full_version: "1.0.0 (alpha)".into(),
        },
        cpus: 2,
        memory_mib: 1024,
        mac_suffix: [1, 2, 3],
        source_date_epoch: 1_767_225_600,
        threads: Some(2),
    }
}

fn raw_disk(dir: &Path) -> PathBuf {
    let p = dir.join("disk.raw");
    let mut f = File::create(&p).unwrap();
    f.set_len(20 * MIB + 512).unwrap();
    for (at, byte) in [(0, 9u8), (7 * MIB + 3, 8), (20 * MIB - 100, 7)] {
        f.seek(SeekFrom::Start(at)).unwrap();
        f.write_all(&vec![byte; 200_000.min((20 * MIB + 512 - at) as usize)])
            .unwrap();
    }
    p
}

fn members(path: &Path) -> Vec<(String, Vec<u8>)> {
    tar::Archive::new(File::open(path).unwrap())
        .entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            assert!(e.header().as_ustar().is_some(), "not USTAR");
            assert_eq!(e.header().mtime().unwrap(), 1_767_225_600);
            let name = e.path().unwrap().to_string_lossy().into_owned();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            (name, data)
        })
        .collect()
}

fn qemu_img_identical(raw: &Path, fmt: &str, disk: &Path) {
    let o = Command::new("qemu-img")
        .args(["compare", "-f", "raw", "-F", fmt])
        .arg(raw)
        .arg(disk)
        .output()
        .expect("qemu-img");
    let t = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && t.contains("Images are identical"),
        "{t}"
    );
}

/// `ruby -c` when Ruby is installed (Debian's vagrant brings it); otherwise nothing to check.
fn ruby_syntax_ok(path: &Path) {
    let Ok(o) = Command::new("ruby").arg("-c").arg(path).output() else {
        eprintln!("ruby not installed: {} not syntax-checked", path.display());
        return;
    };
    let t = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && t.contains("Syntax OK"),
        "{}: {t}{}",
        path.display(),
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn virtualbox_box() {
    let dir = tempfile::tempdir().unwrap();
    let raw = raw_disk(dir.path());
    let out = dir.path().join("vb.box");
    let w = write_virtualbox(&raw, &out, &options()).unwrap();
    let m = members(&out);
    let names: Vec<&str> = m.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "metadata.json",
            "Vagrantfile",
            "box.ovf",
            "box-disk001.vmdk"
        ]
    );
    assert_eq!(names, w.members);
    let meta: serde_json::Value = serde_json::from_slice(&m[0].1).unwrap();
    assert_eq!(meta, serde_json::json!({"provider": "virtualbox"}));
    let vagrantfile = String::from_utf8(m[1].1.clone()).unwrap();
    assert!(vagrantfile.contains("config.vm.base_mac = \"080027010203\""));
    assert!(vagrantfile.contains("config.ssh.username = \"core\""));
    assert!(
        !vagrantfile.contains("modifyvm"),
        "VirtualBox's defaults boot it"
    );
    let ovf = String::from_utf8(m[2].1.clone()).unwrap();
    assert!(ovf.contains(&format!(
        "<File ovf:href=\"box-disk001.vmdk\" ovf:id=\"file1\" ovf:size=\"{}\"/>",
        m[3].1.len()
    )));
    assert!(ovf.contains("<rasd:ResourceSubType>AHCI</rasd:ResourceSubType>"));
    assert!(ovf.contains("<rasd:ResourceSubType>E1000</rasd:ResourceSubType>"));
    let vf = dir.path().join("Vagrantfile.vb");
    std::fs::write(&vf, &vagrantfile).unwrap();
    ruby_syntax_ok(&vf);
    let vmdk = dir.path().join("extracted.vmdk");
    std::fs::write(&vmdk, &m[3].1).unwrap();
    qemu_img_identical(&raw, "vmdk", &vmdk);

    let again = dir.path().join("again.box");
    write_virtualbox(&raw, &again, &options()).unwrap();
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&again).unwrap());
}

#[test]
fn libvirt_box() {
    let dir = tempfile::tempdir().unwrap();
    let raw = raw_disk(dir.path());
    let out = dir.path().join("lv.box");
    let w = write_libvirt(&raw, &out, &options()).unwrap();
    assert_eq!(w.disk_capacity, 20 * MIB + 512);
    let m = members(&out);
    let names: Vec<&str> = m.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["metadata.json", "Vagrantfile", "box.img"]);
    let meta: serde_json::Value = serde_json::from_slice(&m[0].1).unwrap();
    assert_eq!(
        meta,
        serde_json::json!({"provider": "libvirt", "format": "qcow2", "virtual_size": 1})
    );
    assert!(meta["virtual_size"].is_u64(), "must be an integer");
    let vagrantfile = String::from_utf8(m[1].1.clone()).unwrap();
    assert!(vagrantfile.contains("libvirt.loader = ovmf"));
    let vf = dir.path().join("Vagrantfile.lv");
    std::fs::write(&vf, &vagrantfile).unwrap();
    ruby_syntax_ok(&vf);
    let img = dir.path().join("box.img");
    std::fs::write(&img, &m[2].1).unwrap();
    qemu_img_identical(&raw, "qcow2", &img);
}

#[test]
fn cluster_files_are_ruby() {
    let dir = tempfile::tempdir().unwrap();
    let vf = dir.path().join("Vagrantfile");
    std::fs::write(&vf, VAGRANTFILE).unwrap();
    ruby_syntax_ok(&vf);
    let cfg = dir.path().join("config.rb");
    std::fs::write(
        &cfg,
        config_rb(&ClusterConfig {
            os_id: "minimal".into(),
            name: "Minimal \"Linux\"".into(),
            version: "1.0.0".into(),
            channel: "alpha".into(),
            box_files: vec![("libvirt".into(), "a#{b}.box".into())],
        }),
    )
    .unwrap();
    ruby_syntax_ok(&cfg);
}

#[test]
fn missing_disk_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.box");
    assert!(write_libvirt(&dir.path().join("nope.raw"), &out, &options()).is_err());
    assert!(write_virtualbox(&dir.path().join("nope.raw"), &out, &options()).is_err());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}
