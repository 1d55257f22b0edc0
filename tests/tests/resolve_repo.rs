//! Dependency resolution through the real `image-builder lock`: a spec with
//! `resolve: {mode: closure}` against an apt repository the test builds from hand-made `.deb`s
//! and serves on loopback, and against a pool directory (where the lock then also builds).
//!
//! - the closure follows Pre-Depends/Depends with versions, alternatives, versioned and
//!   virtual Provides (with `prefer`), `:any`, `exclude`, and ignores Recommends;
//! - the lock is sorted, says why each package is there, and is the same on every run;
//! - an unsatisfiable dependency fails with the chain from the spec, a conflict names both
//!   packages, and in both cases the lock file is left as it was;
//! - the minimal image (exact mode) re-locks to the committed lock, byte for byte.

use std::collections::BTreeMap;
use std::path::Path;

use rootfs::source::Candidate;
use sha2::{Digest, Sha256};
use tests::debs::package_deb;
use tests::http::StaticServer;
use tests::{assert_clean_failure, image_builder, text, Scratch};

/// One synthetic package: name, version, architecture, control fields.
type Pkg = (&'static str, &'static str, &'static str, &'static str);

/// The repository: the kernel and bootloader of the spec are stand-ins (nothing is built).
const PACKAGES: &[Pkg] = &[
    (
        "ch-kernel",
        "6.1-1",
        "amd64",
        "Depends: ch-kmod, initramfs-tools (>= 0.120) | linux-initramfs-tool\n",
    ),
    ("ch-kmod", "30-1", "amd64", "Depends: libc-x (>= 2)\n"),
    ("initramfs-tools", "0.142", "all", "Depends: big-thing\n"),
    ("big-thing", "1", "amd64", ""),
    ("ch-boot", "252-1", "amd64", "Breaks: systemd (<< 251)\n"),
    (
        "app",
        "2.0-1",
        "amd64",
        "Pre-Depends: libc-x (>= 2.1)\n\
         Depends: mail-transport-agent, awk-x:any | awk-y, libssl-x (>= 3.0.9), api (>= 2)\n\
         Recommends: docs-x\nSuggests: big-thing\n",
    ),
    ("libc-x", "2.0-1", "amd64", ""),
    (
        "libc-x",
        "2.1-1",
        "amd64",
        "Depends: libc-x-common (= 2.1-1)\n",
    ),
    ("libc-x-common", "2.1-1", "all", "Depends: libc-x\n"),
    (
        "exim-x",
        "4.96-1",
        "amd64",
        "Provides: mail-transport-agent\nConflicts: mail-transport-agent\n",
    ),
    (
        "postfix-x",
        "3.7-1",
        "amd64",
        "Provides: mail-transport-agent\nConflicts: mail-transport-agent\n",
    ),
    ("awk-x", "1.3-1", "amd64", "Multi-Arch: allowed\n"),
    ("awk-y", "5.2-1", "amd64", ""),
    ("libssl-x", "3.0.11-1", "amd64", "Depends: libc-x\n"),
    ("api-v1", "1", "all", "Provides: api (= 1.5)\n"),
    ("api-v2", "1", "all", "Provides: api (= 2.3)\n"),
    ("docs-x", "1", "all", ""),
    ("mail-tool", "1", "all", "Depends: postfix-x\n"),
    ("libc-x", "9.9-1", "arm64", ""),
];

/// `Key: value` lines as a map.
fn control_fields(fields: &str) -> BTreeMap<String, String> {
    fields
        .lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Writes `dist/` (Release, Packages.xz) and `pool/` for `packages` under `dir`.
fn make_repository(dir: &Path, packages: &[Pkg]) {
    let pool = dir.join("pool/main");
    std::fs::create_dir_all(&pool).unwrap();
    let mut entries = Vec::new();
    for (name, version, arch, fields) in packages {
        let deb = package_deb(name, version, arch, fields);
        let file = format!("{name}_{version}_{arch}.deb");
        std::fs::write(pool.join(&file), &deb).unwrap();
        let cand = Candidate {
            package: name.to_string(),
            version: version.to_string(),
            architecture: arch.to_string(),
            size: deb.len() as u64,
            sha256: hex::encode(Sha256::digest(&deb)),
            filename: format!("pool/main/{file}"),
        };
        entries.push((cand, control_fields(fields)));
    }
    tests::apt::write_index(dir, &entries);
}

const SPEC: &str = "\
os: {name: Container Host, id: ch, version: 1.0.0, channel: alpha}
source_date_epoch: 1767225600
kernel: {package: ch-kernel, cmdline: '', initramfs_modules: [virtio_blk]}
bootloader: {package: ch-boot}
packages: [app]
partitions: {esp_mib: 64, usr_mib: 64, oem_mib: 8, root_mib: 64}
resolve:
  mode: closure
  prefer: [postfix-x]
  exclude: [initramfs-tools]
";

/// A scratch directory with `images/ch.yaml`.
fn scratch(spec: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("images")).unwrap();
    let path = dir.path().join("images/ch.yaml");
    std::fs::write(&path, spec).unwrap();
    (dir, path)
}

fn lock_from(dir: &Path, spec: &Path, url: &str) -> std::process::Output {
    image_builder(
        dir,
        &[
            "lock",
            spec.to_str().unwrap(),
            "--repo",
            url,
            "--suite",
            "bookworm",
        ],
    )
}

fn read_lock(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("images/ch.lock")).unwrap()).unwrap()
}

#[test]
fn closure_from_a_loopback_apt_repository() {
    let repo = tempfile::tempdir().unwrap();
    make_repository(repo.path(), PACKAGES);
    let server = StaticServer::start(repo.path());
    let (dir, spec) = scratch(SPEC);

    let o = lock_from(dir.path(), &spec, &server.url);
    assert!(o.status.success(), "lock: {}", text(&o));
    let lock = read_lock(dir.path());
    let rows: Vec<String> = lock["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            format!(
                "{} {}{} <- {}",
                p["package"].as_str().unwrap(),
                p["version"].as_str().unwrap(),
                if p["root"] == true { " (root)" } else { "" },
                p["required_by"]
                    .as_array()
                    .map(|v| v
                        .iter()
                        .map(|s| s.as_str().unwrap())
                        .collect::<Vec<_>>()
                        .join(","))
                    .unwrap_or_default()
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            "api-v2 1 <- app",
            "app 2.0-1 (root) <- ",
            "awk-x 1.3-1 <- app",
            "ch-boot 252-1 (root) <- ",
            "ch-kernel 6.1-1 (root) <- ",
            "ch-kmod 30-1 <- ch-kernel",
            "libc-x 2.1-1 <- app,ch-kmod,libc-x-common,libssl-x",
            "libc-x-common 2.1-1 <- libc-x",
            "libssl-x 3.0.11-1 <- app",
            "postfix-x 3.7-1 <- app",
        ],
        "{}",
        text(&o)
    );
    assert_eq!(
        lock["resolve"],
        serde_json::json!({"mode": "closure", "prefer": ["postfix-x"], "exclude": ["initramfs-tools"]})
    );
    let source = format!("{} bookworm", server.url);
    assert!(lock["packages"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["source"] == source.as_str()));
    assert!(
        text(&o).contains("closure: 10 packages (3 requested, 0 essential)"),
        "{}",
        text(&o)
    );

    // Deterministic: locking again gives the same bytes.
    let first = std::fs::read(dir.path().join("images/ch.lock")).unwrap();
    let o = lock_from(dir.path(), &spec, &server.url);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        std::fs::read(dir.path().join("images/ch.lock")).unwrap(),
        first
    );
}

#[test]
fn unsatisfiable_and_conflicting_closures_fail_clearly_and_keep_the_lock() {
    let (dir, spec) = scratch(SPEC);
    let lock_path = dir.path().join("images/ch.lock");
    std::fs::write(&lock_path, "the previous lock\n").unwrap();

    // libssl-x is too old.
    let old_ssl: Vec<Pkg> = PACKAGES
        .iter()
        .map(|p| match p.0 {
            "libssl-x" => ("libssl-x", "3.0.8-1", "amd64", "Depends: libc-x\n"),
            _ => *p,
        })
        .collect();
    let repo = tempfile::tempdir().unwrap();
    make_repository(repo.path(), &old_ssl);
    let server = StaticServer::start(repo.path());
    let o = lock_from(dir.path(), &spec, &server.url);
    assert_clean_failure(
        &o,
        "error: cannot resolve: ch needs app, app (2.0-1) depends on libssl-x (>= 3.0.9), \
         no candidate: libssl-x 3.0.8-1 is too old",
    );
    assert_eq!(
        std::fs::read_to_string(&lock_path).unwrap(),
        "the previous lock\n"
    );

    // A deeper chain: the kernel's module tool needs a libc that does not exist.
    let no_libc: Vec<Pkg> = PACKAGES
        .iter()
        .copied()
        .filter(|p| p.0 != "libc-x" || p.2 == "arm64")
        .collect();
    let repo = tempfile::tempdir().unwrap();
    make_repository(repo.path(), &no_libc);
    let server = StaticServer::start(repo.path());
    std::fs::write(&spec, SPEC.replace("packages: [app]", "packages: []")).unwrap();
    let o = lock_from(dir.path(), &spec, &server.url);
    assert_clean_failure(
        &o,
        "cannot resolve: ch needs ch-kernel, ch-kernel (6.1-1) depends on ch-kmod, ch-kmod (30-1) \
         depends on libc-x (>= 2), no candidate: libc-x exists only for arm64, not amd64",
    );
    assert_eq!(
        std::fs::read_to_string(&lock_path).unwrap(),
        "the previous lock\n"
    );

    // Both mail transport agents: the spec's exim-x serves app's mail-transport-agent, but
    // mail-tool needs postfix-x itself, and the two conflict through what they provide.
    let repo = tempfile::tempdir().unwrap();
    make_repository(repo.path(), PACKAGES);
    let server = StaticServer::start(repo.path());
    let both = SPEC.replace("packages: [app]", "packages: [app, exim-x, mail-tool]");
    std::fs::write(&spec, both).unwrap();
    let o = lock_from(dir.path(), &spec, &server.url);
    assert_clean_failure(
        &o,
        "conflict between exim-x and postfix-x: exim-x (4.96-1) conflicts with \
         mail-transport-agent, which postfix-x (3.7-1) provides; exim-x: ch needs exim-x; \
         postfix-x: ch needs mail-tool, mail-tool (1) depends on postfix-x",
    );
    assert_eq!(
        std::fs::read_to_string(&lock_path).unwrap(),
        "the previous lock\n"
    );
}

/// A pool with the real kernel, bootloader and busybox plus two hand-made packages: a closure
/// locked from the pool's control files builds, and the packages it pulled in are in the image.
#[test]
fn closure_from_a_pool_builds() {
    let s = Scratch::new("minimal");
    let pool = tests::linked_pool(s.path());
    let extra: &[Pkg] = &[
        (
            "hello-x",
            "1.0",
            "amd64",
            "Depends: busybox (>= 1:1.30), hello-data\n",
        ),
        ("hello-data", "1.0", "all", ""),
    ];
    for (name, version, arch, fields) in extra {
        let deb = package_deb(name, version, arch, fields);
        std::fs::write(pool.join(format!("{name}_{version}_{arch}.deb")), deb).unwrap();
    }
    // The exact minimal lock is what `lock` gives from this pool, byte for byte.
    let committed = std::fs::read(s.path().join("images/minimal.lock")).unwrap();
    let spec = s.spec("minimal");
    let relock = |s: &Scratch| s.lock("minimal", &pool);
    let o = relock(&s);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        std::fs::read(s.path().join("images/minimal.lock")).unwrap(),
        committed,
        "re-locking minimal.yaml changed its lock"
    );

    // busybox is provided by busybox-static (versioned dependency on an unversioned Provides
    // would fail: busybox-static provides `busybox` without a version).
    s.edit_spec(
        "minimal",
        "  - busybox-static\n",
        "  - busybox-static\n  - hello-x\n",
    );
    // The kernel's own dependencies serve maintainer scripts we do not run.
    let mut yaml = std::fs::read_to_string(&spec).unwrap();
    yaml.push_str("\nresolve:\n  mode: closure\n  exclude: [kmod, linux-base, initramfs-tools]\n");
    std::fs::write(&spec, yaml).unwrap();
    let o = relock(&s);
    assert_clean_failure(
        &o,
        "hello-x (1.0) depends on busybox (>= 1:1.30), no candidate: busybox is a virtual \
         package, and none of its providers (busybox-static) provides it in a version",
    );
    std::fs::write(
        pool.join("hello-x_1.0_amd64.deb"),
        package_deb("hello-x", "1.0", "amd64", "Depends: busybox, hello-data\n"),
    )
    .unwrap();
    let o = relock(&s);
    assert!(o.status.success(), "{}", text(&o));
    let lock: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(s.path().join("images/minimal.lock")).unwrap(),
    )
    .unwrap();
    let names: Vec<&str> = lock["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["package"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "busybox-static",
            // Its files only: grub-common and libdevmapper are not in the pool.
            "grub-pc-bin",
            "hello-data",
            "hello-x",
            "linux-image-6.1.0-56-amd64",
            "systemd-boot-efi"
        ]
    );

    let o = s.build("minimal", "out", &pool);
    assert!(o.status.success(), "build: {}", text(&o));
    let unsquash = std::process::Command::new("unsquashfs")
        .arg("-l")
        .arg(s.path().join("out/usr.img"))
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&unsquash.stdout);
    for path in [
        "squashfs-root/share/doc/hello-x/hello-x",
        "squashfs-root/share/doc/hello-data/hello-data",
        "squashfs-root/bin/busybox",
    ] {
        assert!(
            listing.lines().any(|l| l == path),
            "{path} not in usr.img:\n{listing}"
        );
    }
}

/// `resolve.index: apt-lists`: the index is the host's apt lists (here a directory the test
/// writes, passed as `--apt-lists`), and each package is pinned under the name `apt-get
/// download` gives its file, for `image-builder fetch` to fill the pool.
#[test]
fn closure_from_apt_lists_pins_apt_get_file_names() {
    let lists = tempfile::tempdir().unwrap();
    let entries: Vec<(Candidate, BTreeMap<String, String>)> = [
        ("ch-kernel", "6.1-1", "Depends: libc-x\n"),
        ("ch-boot", "1:252-1", ""),
        ("app", "2.0-1", "Depends: libc-x (>= 2)\n"),
        ("libc-x", "2.1-1", ""),
    ]
    .iter()
    .map(|(name, version, fields)| {
        let cand = Candidate {
            package: name.to_string(),
            version: version.to_string(),
            architecture: "amd64".into(),
            size: 100,
            sha256: hex::encode(Sha256::digest(name.as_bytes())),
            filename: format!("pool/main/x/{name}.deb"),
        };
        (cand, control_fields(fields))
    })
    .collect();
    std::fs::write(
        lists
            .path()
            .join("mirror_debian_dists_bookworm_main_binary-amd64_Packages"),
        rootfs::apt::render_packages(&entries),
    )
    .unwrap();
    let spec_text = SPEC
        .replace("  prefer: [postfix-x]\n", "  index: apt-lists\n")
        .replace("  exclude: [initramfs-tools]\n", "");
    let (dir, spec) = scratch(&spec_text);
    let pool = dir.path().join("pool");
    let lock = |lists: &Path| {
        image_builder(
            dir.path(),
            &[
                "lock",
                spec.to_str().unwrap(),
                "--pool",
                pool.to_str().unwrap(),
                "--apt-lists",
                lists.to_str().unwrap(),
            ],
        )
    };
    let o = lock(lists.path());
    assert!(o.status.success(), "{}", text(&o));
    let got = read_lock(dir.path());
    let files: Vec<(&str, &str)> = got["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["filename"].as_str().unwrap(),
                p["source"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        files,
        [
            ("app_2.0-1_amd64.deb", "pool"),
            ("ch-boot_1%3a252-1_amd64.deb", "pool"),
            ("ch-kernel_6.1-1_amd64.deb", "pool"),
            ("libc-x_2.1-1_amd64.deb", "pool"),
        ]
    );
    assert_eq!(got["resolve"]["index"], "apt-lists");

    let empty = tempfile::tempdir().unwrap();
    assert_clean_failure(&lock(empty.path()), "run `apt-get update` first");
    let o = image_builder(
        dir.path(),
        &[
            "lock",
            spec.to_str().unwrap(),
            "--repo",
            "http://127.0.0.1:9/",
        ],
    );
    assert_clean_failure(&o, "resolve.index: apt-lists pins packages for a pool");
}
