//! Hostile archives meet limits, not the builder's memory or patience: deep and long paths,
//! long names, many entries, decompression bombs. Each is refused with a message that names
//! the package, the entry and the limit, after work proportional to what was read.

use super::test_support::{ar, control_tar, Compress};
use super::*;
use crate::tree::{Limits, MAX_DEPTH, NAME_MAX, PATH_MAX};

const OPTS: ExtractOptions = ExtractOptions {
    source_date_epoch: 1_700_000_000,
};
const CONTROL: &str = "Package: evil\nVersion: 1\nArchitecture: amd64\nDescription: x\n";

/// A tar whose entries may have any path length (GNU long names, as dpkg-deb writes them).
fn tar_long(entries: &[(String, EntryType, Vec<u8>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, ty, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(*ty);
        h.set_size(data.len() as u64);
        h.set_mode(if *ty == EntryType::Directory {
            0o755
        } else {
            0o644
        });
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        b.append_data(&mut h, path, data.as_slice()).unwrap();
    }
    b.into_inner().unwrap()
}

fn deb_of(data_tar: &[u8], c: Compress) -> Vec<u8> {
    let control = control_tar(CONTROL, c);
    let data = c.apply(data_tar);
    ar(&[
        ("debian-binary", b"2.0\n"),
        (&format!("control.tar{}", c.suffix()), &control),
        (&format!("data.tar{}", c.suffix()), &data),
    ])
}

fn dir(path: String) -> (String, EntryType, Vec<u8>) {
    (path, EntryType::Directory, Vec::new())
}

fn extract_into(deb: &[u8], tree: &mut Tree) -> Result<usize, DebError> {
    extract(deb, "evil", tree, &OPTS)
}

fn message(deb: &[u8], tree: &mut Tree) -> String {
    let e = extract_into(deb, tree).expect_err("a hostile package must be refused");
    let text = e.to_string();
    assert!(text.starts_with("evil: "), "names the package: {text}");
    assert!(
        text.len() < 600,
        "a message, not a dump: {} bytes",
        text.len()
    );
    text
}

/// `usr/d/d/d/...`, `depth` directories below usr.
fn deep(depth: usize) -> Vec<(String, EntryType, Vec<u8>)> {
    let mut path = String::from("./usr/");
    let mut entries = vec![dir(path.clone())];
    for _ in 0..depth {
        path.push_str("d/");
        entries.push(dir(path.clone()));
    }
    entries
}

#[test]
fn the_deepest_allowed_path_extracts() {
    let deb = deb_of(&tar_long(&deep(MAX_DEPTH - 1)), Compress::Xz);
    let mut tree = Tree::new();
    assert_eq!(extract_into(&deb, &mut tree).unwrap(), MAX_DEPTH);
}

#[test]
fn a_path_deeper_than_allowed_is_refused() {
    let deb = deb_of(&tar_long(&deep(MAX_DEPTH)), Compress::Xz);
    let text = message(&deb, &mut Tree::new());
    assert!(
        text.contains(&format!("is {} directories deep", MAX_DEPTH + 1)),
        "{text}"
    );
    assert!(text.contains(&format!("at most {MAX_DEPTH}")), "{text}");
}

#[test]
fn thousands_of_levels_are_refused_at_the_limit() {
    // Each entry one level deeper: the old tree spent depth² per entry on this.
    let deb = deb_of(&tar_long(&deep(5000)), Compress::Zst);
    let text = message(&deb, &mut Tree::new());
    assert!(text.contains("directories deep"), "{text}");
}

#[test]
fn a_name_longer_than_the_filesystems_take_is_refused() {
    let ok = format!("./usr/{}", "n".repeat(NAME_MAX));
    let deb = deb_of(
        &tar_long(&[
            dir("./usr/".into()),
            (ok, EntryType::Regular, b"x".to_vec()),
        ]),
        Compress::Gz,
    );
    extract_into(&deb, &mut Tree::new()).unwrap();
    let long = "n".repeat(NAME_MAX + 1);
    let deb = deb_of(
        &tar_long(&[
            dir("./usr/".into()),
            (format!("./usr/{long}"), EntryType::Regular, b"x".to_vec()),
        ]),
        Compress::Gz,
    );
    let text = message(&deb, &mut Tree::new());
    assert!(
        text.contains("(256 bytes) is too long; names may have at most 255"),
        "{text}"
    );
}

#[test]
fn a_path_longer_than_path_max_is_refused() {
    let name = "p".repeat(200);
    let mut path = String::from("./usr");
    let mut entries = vec![dir("./usr/".into())];
    while path.len() < PATH_MAX + 10 {
        path.push('/');
        path.push_str(&name);
        entries.push(dir(format!("{path}/")));
    }
    let text = message(&deb_of(&tar_long(&entries), Compress::Xz), &mut Tree::new());
    assert!(text.contains("paths may have at most 4095"), "{text}");
}

#[test]
fn a_symlink_target_longer_than_path_max_is_refused() {
    let mut h = header(EntryType::Symlink);
    let mut b = tar::Builder::new(Vec::new());
    b.append_data(&mut dir_header(), "./usr/", &[][..]).unwrap();
    b.append_link(&mut h, "./usr/link", "t".repeat(PATH_MAX + 1))
        .unwrap();
    let text = message(
        &deb_of(&b.into_inner().unwrap(), Compress::Gz),
        &mut Tree::new(),
    );
    assert!(text.contains("4096-byte target"), "{text}");
}

fn dir_header() -> tar::Header {
    let mut h = header(EntryType::Directory);
    h.set_mode(0o755);
    h
}

/// A header with every numeric field set (tar::Header::new_gnu leaves them empty).
fn header(ty: EntryType) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(ty);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(0);
    h
}

#[test]
fn more_entries_than_the_tree_may_hold_are_refused() {
    let mut entries = vec![dir("./usr/".into())];
    entries.extend((0..2000).map(|i| (format!("./usr/f{i}"), EntryType::Regular, Vec::new())));
    let deb = deb_of(&tar_long(&entries), Compress::Zst);
    let limits = Limits {
        max_entries: 1000,
        ..Limits::DEFAULT
    };
    let text = message(&deb, &mut Tree::with_limits(limits));
    assert!(text.contains("more than 1000 entries"), "{text}");
    // The limit counts the whole tree, across packages.
    let mut tree = Tree::with_limits(Limits {
        max_entries: 2002,
        ..Limits::DEFAULT
    });
    extract_into(&deb, &mut tree).unwrap();
    assert!(extract_into(&deb_of(&tar_long(&deep(3)), Compress::Gz), &mut tree).is_err());
}

#[test]
fn a_file_bigger_than_the_tree_may_hold_is_refused_before_it_is_read() {
    // The header claims 1 GiB; the stream holds none of it. Refusing must not wait for it.
    let mut h = header(EntryType::Regular);
    h.set_size(1 << 30);
    h.set_path("./usr/bomb").unwrap();
    h.set_cksum();
    let mut data_tar = tar_long(&[dir("./usr/".into())]);
    data_tar.truncate(data_tar.len() - 1024); // drop the end-of-archive blocks
    data_tar.extend_from_slice(h.as_bytes());
    let limits = Limits {
        max_file_bytes: 1 << 20,
        ..Limits::DEFAULT
    };
    let text = message(
        &deb_of(&data_tar, Compress::None),
        &mut Tree::with_limits(limits),
    );
    assert!(text.contains("\"usr/bomb\""), "{text}");
    assert!(
        text.contains("would add up to 1073741824 bytes, more than the 1048576"),
        "{text}"
    );
}

#[test]
fn many_files_that_add_up_to_a_bomb_are_refused_at_the_limit() {
    let mut entries = vec![dir("./usr/".into())];
    entries.extend((0..64).map(|i| (format!("./usr/z{i}"), EntryType::Regular, vec![0; 1 << 16])));
    let deb = deb_of(&tar_long(&entries), Compress::Xz);
    let mut tree = Tree::with_limits(Limits {
        max_file_bytes: 1 << 20,
        ..Limits::DEFAULT
    });
    let text = message(&deb, &mut tree);
    assert!(
        text.contains("\"usr/z16\""),
        "the 17th 64 KiB file is one too many: {text}"
    );
    assert!(tree.file_bytes() <= 1 << 20);
}

#[test]
fn gigabytes_of_zeros_after_the_archive_are_refused() {
    // 64 MiB of zeros after the end-of-archive blocks, compressed to a few KiB.
    let mut data_tar = tar_long(&[dir("./usr/".into())]);
    data_tar.resize(data_tar.len() + (64 << 20), 0);
    let text = message(&deb_of(&data_tar, Compress::Zst), &mut Tree::new());
    assert!(text.contains("decompression bomb"), "{text}");
}

#[test]
fn a_long_name_of_megabytes_is_refused() {
    let mut h = header(EntryType::GNULongName);
    h.set_size(8 << 20);
    h.set_path("././@LongLink").unwrap();
    h.set_cksum();
    let mut data_tar = h.as_bytes().to_vec();
    data_tar.resize(512 + (8 << 20), b'a');
    data_tar.extend(tar_long(&[dir("./usr/".into())]));
    let text = message(&deb_of(&data_tar, Compress::Gz), &mut Tree::new());
    assert!(text.contains("decompression bomb"), "{text}");
}

#[test]
fn a_directory_with_data_is_refused() {
    let mut h = dir_header();
    h.set_size(1 << 30);
    h.set_path("./usr/").unwrap();
    h.set_cksum();
    let text = message(&deb_of(h.as_bytes(), Compress::None), &mut Tree::new());
    assert!(
        text.contains("a directory with 1073741824 bytes of data"),
        "{text}"
    );
}

#[test]
fn real_dpkg_deb_packages_still_extract() {
    // Within the limits with room to spare: a directory, a file, a link, 255-byte names.
    let name = "n".repeat(NAME_MAX);
    let entries = vec![
        dir("./usr/".into()),
        dir(format!("./usr/{name}/")),
        (
            format!("./usr/{name}/{name}"),
            EntryType::Regular,
            vec![7; 4096],
        ),
    ];
    for c in Compress::ALL {
        let mut tree = Tree::new();
        assert_eq!(
            extract_into(&deb_of(&tar_long(&entries), c), &mut tree).unwrap(),
            3
        );
        assert_eq!(tree.file_bytes(), 4096);
    }
}
