//! Hand-made `.deb` packages for the bad-input and dependency-resolution tests.

use std::io::Write;

fn tar_xz(entries: &[(&str, &[u8], u8)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data, kind) in entries {
        let mut h = tar::Header::new_gnu();
        // Set the name bytes directly: tar::Builder refuses `..`, a hostile archive does not.
        let name = &mut h.as_old_mut().name;
        name[..path.len()].copy_from_slice(path.as_bytes());
        h.set_size(data.len() as u64);
        h.set_mode(if *kind == b'5' { 0o755 } else { 0o644 });
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::new(*kind));
        h.set_cksum();
        b.append(&h, *data).unwrap();
    }
    let tar = b.into_inner().unwrap();
    let mut xz = liblzma::write::XzEncoder::new(Vec::new(), 6);
    xz.write_all(&tar).unwrap();
    xz.finish().unwrap()
}

/// The `.deb` (an ar archive) of a control and a data tarball.
fn deb(control_tar: Vec<u8>, data_tar: Vec<u8>) -> Vec<u8> {
    let mut ar = ar::Builder::new(Vec::new());
    for (n, d) in [
        ("debian-binary", b"2.0\n".to_vec()),
        ("control.tar.xz", control_tar),
        ("data.tar.xz", data_tar),
    ] {
        ar.append(
            &ar::Header::new(n.as_bytes().to_vec(), d.len() as u64),
            d.as_slice(),
        )
        .unwrap();
    }
    ar.into_inner().unwrap()
}

/// A package `name` 1.0 (amd64) whose data.tar holds one regular file at `hostile_path`.
pub fn evil_deb(name: &str, hostile_path: &str) -> Vec<u8> {
    let control = format!("Package: {name}\nVersion: 1.0\nArchitecture: amd64\nMaintainer: t <t@example.invalid>\nDescription: test\n");
    let control_tar = tar_xz(&[("./control", control.as_bytes(), b'0')]);
    let data_tar = tar_xz(&[
        ("./usr/", b"", b'5'),
        (hostile_path, b"* * * * * root rm -rf /\n", b'0'),
    ]);
    deb(control_tar, data_tar)
}

/// A well-formed package: `name` `version` for `arch`, with `fields` (`Depends: ...\n` lines)
/// in its control file and one file, `/usr/share/doc/<name>/<name>`.
pub fn package_deb(name: &str, version: &str, arch: &str, fields: &str) -> Vec<u8> {
    let control = format!(
        "Package: {name}\nVersion: {version}\nArchitecture: {arch}\n{fields}\
         Maintainer: t <t@example.invalid>\nDescription: test package {name}\n"
    );
    let control_tar = tar_xz(&[("./control", control.as_bytes(), b'0')]);
    let doc = format!("./usr/share/doc/{name}/{name}");
    let dirs = [
        "./usr/".to_string(),
        "./usr/share/".to_string(),
        "./usr/share/doc/".to_string(),
        format!("./usr/share/doc/{name}/"),
    ];
    let mut entries: Vec<(&str, &[u8], u8)> =
        dirs.iter().map(|d| (d.as_str(), &b""[..], b'5')).collect();
    entries.push((&doc, name.as_bytes(), b'0'));
    let data_tar = tar_xz(&entries);
    deb(control_tar, data_tar)
}

/// A kernel package `name` that ships `/boot/vmlinuz-<release>` and no modules at all.
pub fn kernel_deb_without_modules(name: &str, release: &str) -> Vec<u8> {
    let control = format!(
        "Package: {name}\nVersion: 1.0\nArchitecture: amd64\n\
         Maintainer: t <t@example.invalid>\nDescription: a kernel without modules\n"
    );
    let control_tar = tar_xz(&[("./control", control.as_bytes(), b'0')]);
    let vmlinuz = format!("./boot/vmlinuz-{release}");
    let data_tar = tar_xz(&[
        ("./boot/", b"", b'5'),
        (&vmlinuz, b"not really a kernel", b'0'),
    ]);
    deb(control_tar, data_tar)
}
