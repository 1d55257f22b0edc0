//! Apt repositories the tests write and serve on loopback: `dists/bookworm/Release` and
//! `dists/bookworm/main/binary-amd64/Packages.xz` over packages under `pool/main/`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use rootfs::source::Candidate;

/// Writes the index of `entries` (each package's candidate, its `filename` relative to `dir`,
/// and its extra control fields) as suite `bookworm`, component `main`, under `dir/dists/`.
pub fn write_index(dir: &Path, entries: &[(Candidate, BTreeMap<String, String>)]) {
    let packages = rootfs::apt::render_packages(entries);
    let mut xz = liblzma::write::XzEncoder::new(Vec::new(), 6);
    xz.write_all(packages.as_bytes()).unwrap();
    let packages_xz = xz.finish().unwrap();
    let index = dir.join("dists/bookworm/main/binary-amd64");
    std::fs::create_dir_all(&index).unwrap();
    std::fs::write(index.join("Packages.xz"), &packages_xz).unwrap();
    let release = rootfs::apt::render_release(
        "bookworm",
        &[("main/binary-amd64/Packages.xz".to_string(), packages_xz)],
    );
    std::fs::write(dir.join("dists/bookworm/Release"), release).unwrap();
}
