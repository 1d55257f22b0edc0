//! The OVA as its consumers see it: a USTAR archive whose members come in order (descriptor,
//! manifest, disk), whose manifest hashes match the members, whose descriptor passes the DMTF
//! OVF 1.1 schema (`xmllint`, schema copied into `tests/data/ovf-schema`) and references the
//! disk by its real size, and whose VMDK `qemu-img` reads back as the raw disk. Same input, same
//! bytes.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use ova::ovf::{self, Descriptor, DiskFile, Hypervisor, Product};
use ova::{write_file, OvaOptions};
use sha1::Digest;

const MIB: u64 = 1 << 20;

fn schema() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/ovf-schema/dsp8023_1.1.1.xsd")
}

/// `xmllint --schema` on a descriptor: Ok, or the complaints.
fn xmllint(ovf: &Path) -> Result<(), String> {
    let out = Command::new("xmllint")
        .args(["--nonet", "--noout", "--schema"])
        .arg(schema())
        .arg(ovf)
        .output()
        .expect("xmllint (package libxml2-utils; scripts/setup-host.sh installs it)");
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    if out.status.success() && text.contains("validates") {
        Ok(())
    } else {
        Err(text)
    }
}

fn options() -> OvaOptions {
    OvaOptions {
        name: "minimal-1.0.0".into(),
        product: Product {
            name: "Minimal Linux".into(),
            version: "1.0.0".into(),
            full_version: "1.0.0 (alpha)".into(),
        },
        cpus: 2,
        memory_mib: 1024,
        source_date_epoch: 1_767_225_600,
        threads: Some(2),
    }
}

/// A sparse 24 MiB raw disk with a little data in a few places.
fn raw_disk(dir: &Path) -> PathBuf {
    let p = dir.join("disk.raw");
    let mut f = File::create(&p).unwrap();
    f.set_len(24 * MIB).unwrap();
    for (at, byte) in [(0, 1u8), (5 * MIB + 77, 2), (23 * MIB, 3)] {
        f.seek(SeekFrom::Start(at)).unwrap();
        f.write_all(&vec![byte; 300_000]).unwrap();
    }
    p
}

/// (name, bytes) of every member, in order.
fn members(ova: &Path) -> Vec<(String, Vec<u8>)> {
    let mut archive = tar::Archive::new(File::open(ova).unwrap());
    archive
        .entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let h = e.header();
            assert_eq!(h.as_ustar().map(|_| ()), Some(()), "not a USTAR header");
            assert_eq!(h.mode().unwrap(), 0o644);
            assert_eq!((h.uid().unwrap(), h.gid().unwrap()), (0, 0));
            assert_eq!(h.mtime().unwrap(), 1_767_225_600);
            assert_eq!(h.username().unwrap(), Some(""));
            let name = e.path().unwrap().to_string_lossy().into_owned();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            (name, data)
        })
        .collect()
}

#[test]
fn ova_members_manifest_descriptor_and_disk() {
    let dir = tempfile::tempdir().unwrap();
    let raw = raw_disk(dir.path());
    let out = dir.path().join("minimal.ova");
    let w = write_file(&raw, &out, &options()).unwrap();
    assert_eq!(w.file_size, std::fs::metadata(&out).unwrap().len());
    let m = members(&out);
    let names: Vec<&str> = m.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "minimal-1.0.0.ovf",
            "minimal-1.0.0.mf",
            "minimal-1.0.0-disk1.vmdk"
        ]
    );
    assert_eq!(names, w.members);

    // The manifest covers every other member, with the right hashes.
    let mf = String::from_utf8(m[1].1.clone()).unwrap();
    let want: String = [&m[0], &m[2]]
        .iter()
        .map(|(n, d)| format!("SHA1({n})= {}\n", hex(&sha1::Sha1::digest(d))))
        .collect();
    assert_eq!(mf, want);

    // The descriptor names the disk with its real size and the writer's capacity.
    let ovf_text = String::from_utf8(m[0].1.clone()).unwrap();
    let vmdk = &m[2].1;
    assert!(ovf_text.contains(&format!(
        "<File ovf:href=\"minimal-1.0.0-disk1.vmdk\" ovf:id=\"file1\" ovf:size=\"{}\"/>",
        vmdk.len()
    )));
    assert!(ovf_text.contains(&format!("ovf:capacity=\"{}\"", 24 * MIB)));
    assert!(ovf_text.contains(&format!("ovf:populatedSize=\"{}\"", w.vmdk.populated)));
    assert_eq!(w.vmdk.file_size, vmdk.len() as u64);
    let ovf_path = dir.path().join("extracted.ovf");
    std::fs::write(&ovf_path, &ovf_text).unwrap();
    xmllint(&ovf_path).unwrap_or_else(|e| panic!("schema:\n{e}\n{ovf_text}"));

    // The disk inside is the raw disk.
    let vmdk_path = dir.path().join("extracted.vmdk");
    std::fs::write(&vmdk_path, vmdk).unwrap();
    let cmp = Command::new("qemu-img")
        .args(["compare", "-f", "raw", "-F", "vmdk"])
        .arg(&raw)
        .arg(&vmdk_path)
        .output()
        .expect("qemu-img");
    let text = String::from_utf8_lossy(&cmp.stdout);
    assert!(
        cmp.status.success() && text.contains("Images are identical"),
        "{text}"
    );

    // Same input, same bytes; no scratch files left.
    let again = dir.path().join("again.ova");
    write_file(&raw, &again, &options()).unwrap();
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&again).unwrap());
    let mut left: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(
        left,
        [
            "again.ova",
            "disk.raw",
            "extracted.ovf",
            "extracted.vmdk",
            "minimal.ova"
        ]
    );
}

#[test]
fn both_descriptor_flavours_pass_the_schema() {
    let dir = tempfile::tempdir().unwrap();
    for h in [Hypervisor::Vmware, Hypervisor::VirtualBox] {
        let text = ovf::render(&Descriptor {
            name: "x-1.2.3".into(),
            product: Product {
                name: "X & Y <Linux>".into(),
                version: "1.2.3".into(),
                full_version: "1.2.3 (beta)".into(),
            },
            disk: DiskFile {
                href: "x-disk1.vmdk".into(),
                size: 4096,
                capacity: 1 << 30,
                populated: 0,
            },
            cpus: 1,
            memory_mib: 512,
            hypervisor: h,
        });
        let p = dir.path().join(format!("{h:?}.ovf"));
        std::fs::write(&p, &text).unwrap();
        xmllint(&p).unwrap_or_else(|e| panic!("{h:?}:\n{e}\n{text}"));
    }
}

#[test]
fn schema_rejects_a_broken_descriptor() {
    // The check has teeth: an Item with its elements out of the schema's order fails.
    let dir = tempfile::tempdir().unwrap();
    let good = ovf::render(&Descriptor {
        name: "x".into(),
        product: Product {
            name: "X".into(),
            version: "1".into(),
            full_version: "1".into(),
        },
        disk: DiskFile {
            href: "x.vmdk".into(),
            size: 1,
            capacity: 512,
            populated: 0,
        },
        cpus: 1,
        memory_mib: 64,
        hypervisor: Hypervisor::Vmware,
    });
    let bad = good.replacen(
        "        <rasd:InstanceID>1</rasd:InstanceID>\n        <rasd:ResourceType>3</rasd:ResourceType>",
        "        <rasd:ResourceType>3</rasd:ResourceType>\n        <rasd:InstanceID>1</rasd:InstanceID>",
        1,
    );
    assert_ne!(good, bad);
    let p = dir.path().join("bad.ovf");
    std::fs::write(&p, bad).unwrap();
    assert!(xmllint(&p).is_err());
}

#[test]
fn bad_name_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let raw = raw_disk(dir.path());
    let out = dir.path().join("x.ova");
    let mut opts = options();
    opts.name = "has space".into();
    assert!(matches!(
        write_file(&raw, &out, &opts),
        Err(ova::archive::Error::InvalidName(_))
    ));
    let err = write_file(&dir.path().join("missing.raw"), &out, &options()).unwrap_err();
    assert!(
        format!("{err}: {:?}", std::error::Error::source(&err)).contains("missing.raw"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "leftovers"
    );
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
