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

/// The control tar of a package `name` 1.0 (amd64).
fn control_of(name: &str) -> Vec<u8> {
    let control = format!(
        "Package: {name}\nVersion: 1.0\nArchitecture: amd64\n\
         Maintainer: t <t@example.invalid>\nDescription: a hostile package\n"
    );
    tar_xz(&[("./control", control.as_bytes(), b'0')])
}

/// The `.deb` of package `name` 1.0 whose `data.tar.<suffix>` holds `data` as given.
fn deb_with(name: &str, suffix: &str, data: Vec<u8>) -> Vec<u8> {
    let mut ar = ar::Builder::new(Vec::new());
    let members = [
        ("debian-binary".to_string(), b"2.0\n".to_vec()),
        ("control.tar.xz".to_string(), control_of(name)),
        (format!("data.tar.{suffix}"), data),
    ];
    for (n, d) in members {
        ar.append(
            &ar::Header::new(n.into_bytes(), d.len() as u64),
            d.as_slice(),
        )
        .unwrap();
    }
    ar.into_inner().unwrap()
}

/// A tar header with every field set, for `path` (any length: GNU long names as dpkg-deb
/// writes them) appended to `b`.
fn append(b: &mut tar::Builder<impl Write>, path: &str, ty: tar::EntryType, data: &[u8]) {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(ty);
    h.set_size(data.len() as u64);
    h.set_mode(if ty == tar::EntryType::Directory {
        0o755
    } else {
        0o644
    });
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    b.append_data(&mut h, path, data).unwrap();
}

fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::encode_all(data, 1).unwrap()
}

/// A package whose directories nest `depth` levels below /usr, one entry per level: what a
/// careless generator or a hostile packager makes.
pub fn deep_deb(name: &str, depth: usize) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut path = String::from("./usr/");
    append(&mut b, &path, tar::EntryType::Directory, b"");
    for _ in 0..depth {
        path.push_str("d/");
        append(&mut b, &path, tar::EntryType::Directory, b"");
    }
    deb_with(name, "zst", zstd(&b.into_inner().unwrap()))
}

/// A package with one file in /usr/share whose name is `len` bytes long.
pub fn long_name_deb(name: &str, len: usize) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    append(&mut b, "./usr/", tar::EntryType::Directory, b"");
    append(&mut b, "./usr/share/", tar::EntryType::Directory, b"");
    let file = format!("./usr/share/{}", "n".repeat(len));
    append(&mut b, &file, tar::EntryType::Regular, b"data\n");
    deb_with(name, "zst", zstd(&b.into_inner().unwrap()))
}

/// A package of `count` empty files in /usr/share/many (about 512 bytes of tar each, a few
/// bytes each once compressed).
pub fn many_entries_deb(name: &str, count: usize) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    append(&mut b, "./usr/", tar::EntryType::Directory, b"");
    append(&mut b, "./usr/share/", tar::EntryType::Directory, b"");
    append(&mut b, "./usr/share/many/", tar::EntryType::Directory, b"");
    for i in 0..count {
        append(
            &mut b,
            &format!("./usr/share/many/{i:x}"),
            tar::EntryType::Regular,
            b"",
        );
    }
    deb_with(name, "zst", zstd(&b.into_inner().unwrap()))
}

/// A decompression bomb: a valid package of about 1.5 MB whose data.tar.xz unpacks to one
/// file of `gib` GiB of zeros (concatenated xz streams, as xz(1) reads them).
pub fn bomb_deb(name: &str, gib: u64) -> Vec<u8> {
    const CHUNK: usize = 64 << 20;
    let xz = |data: &[u8]| {
        let mut e = liblzma::write::XzEncoder::new(Vec::new(), 0);
        e.write_all(data).unwrap();
        e.finish().unwrap()
    };
    let mut head = tar::Builder::new(Vec::new());
    append(&mut head, "./usr/", tar::EntryType::Directory, b"");
    let mut head = head.into_inner().unwrap();
    head.truncate(head.len() - 1024); // the end-of-archive blocks come last
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_size(gib << 30);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_path("./usr/zeros").unwrap();
    h.set_cksum();
    head.extend_from_slice(h.as_bytes());
    let mut data = xz(&head);
    let zeros = xz(&vec![0; CHUNK]);
    for _ in 0..(gib << 30) / CHUNK as u64 {
        data.extend_from_slice(&zeros);
    }
    data.extend_from_slice(&xz(&[0; 1024]));
    deb_with(name, "xz", data)
}
