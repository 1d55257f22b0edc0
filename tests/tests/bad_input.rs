//! Bad input gets one clear message, a non-zero exit, no panic, and no output that looks
//! complete (no build.json, no disk.raw).

use std::path::Path;

use tests::{assert_clean_failure, image_builder, init_bin, pool_dir, Scratch};

fn assert_no_output(s: &Scratch) {
    for f in ["out/build.json", "out/disk.raw"] {
        assert!(!s.path().join(f).exists(), "{f} was left behind");
    }
}

/// A pool with links to the real packages, so single files can be swapped.
fn linked_pool(s: &Scratch) -> std::path::PathBuf {
    tests::linked_pool(s.path())
}

fn busybox_deb(pool: &Path) -> std::path::PathBuf {
    tests::pool_package(pool, "busybox-static")
}

#[test]
fn malformed_yaml() {
    let s = Scratch::new("minimal");
    s.edit_spec("minimal", "  version: 1.0.0", "  version: [1.0.0");
    let o = s.build("minimal", "out", &pool_dir());
    assert_clean_failure(&o, "minimal.yaml");
    assert_no_output(&s);
}

#[test]
fn unknown_key_names_file_line_and_key() {
    let s = Scratch::new("minimal");
    s.edit_spec(
        "minimal",
        "  channel: alpha",
        "  channel: alpha\n  colour: blue",
    );
    let o = s.build("minimal", "out", &pool_dir());
    assert_clean_failure(&o, "colour");
    assert_clean_failure(&o, "minimal.yaml:9");
    assert_no_output(&s);
}

#[test]
fn missing_package() {
    let s = Scratch::new("minimal");
    s.edit_spec(
        "minimal",
        "  - busybox-static",
        "  - busybox-static\n  - no-such-package",
    );
    assert_clean_failure(
        &s.lock("minimal", &pool_dir()),
        "no-such-package is not available from pool",
    );
    // With the old lock the build refuses the changed spec.
    let o = s.build("minimal", "out", &pool_dir());
    assert_clean_failure(&o, "no-such-package");
    assert_clean_failure(&o, "image-builder lock");
    assert_no_output(&s);
}

#[test]
fn package_missing_from_pool() {
    let s = Scratch::new("minimal");
    let pool = linked_pool(&s);
    std::fs::remove_file(busybox_deb(&pool)).unwrap();
    let o = s.build("minimal", "out", &pool);
    assert_clean_failure(&o, "busybox-static");
    assert_clean_failure(&o, "missing from the pool");
    assert_no_output(&s);
}

#[test]
fn hash_mismatch_names_package_expected_and_actual() {
    let s = Scratch::new("minimal");
    let pool = linked_pool(&s);
    let deb = busybox_deb(&pool);
    // The same size, one byte different.
    let mut bytes = std::fs::read(&deb).unwrap();
    *bytes.last_mut().unwrap() ^= 0xff;
    std::fs::remove_file(&deb).unwrap();
    std::fs::write(&deb, &bytes).unwrap();
    let o = s.build("minimal", "out", &pool);
    let lock: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(s.path().join("images/minimal.lock")).unwrap(),
    )
    .unwrap();
    let expected = lock["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["package"] == "busybox-static")
        .unwrap()["sha256"]
        .as_str()
        .unwrap()
        .to_string();
    assert_clean_failure(&o, "busybox-static");
    assert_clean_failure(&o, "sha256 mismatch");
    assert_clean_failure(&o, &expected);
    assert_clean_failure(&o, &tests::sha256_file(&deb));
    assert_no_output(&s);
}

#[test]
fn size_mismatch_says_size_not_sha256() {
    let s = Scratch::new("minimal");
    let pool = linked_pool(&s);
    let deb = busybox_deb(&pool);
    let mut bytes = std::fs::read(&deb).unwrap();
    let locked = bytes.len();
    bytes.push(b'\n');
    std::fs::remove_file(&deb).unwrap();
    std::fs::write(&deb, &bytes).unwrap();
    let o = s.build("minimal", "out", &pool);
    assert_clean_failure(&o, "busybox-static ");
    assert_clean_failure(
        &o,
        &format!(
            "size mismatch: the lock expects {locked} bytes, the input has {}",
            locked + 1
        ),
    );
    assert!(
        !tests::text(&o).contains("sha256 mismatch"),
        "{}",
        tests::text(&o)
    );
    assert_no_output(&s);
}

#[test]
fn truncated_deb() {
    let s = Scratch::new("minimal");
    let pool = linked_pool(&s);
    let deb = busybox_deb(&pool);
    let bytes = std::fs::read(&deb).unwrap();
    std::fs::remove_file(&deb).unwrap();
    std::fs::write(&deb, &bytes[..bytes.len() / 2]).unwrap();
    // Locking the truncated file pins its hash; extraction must still refuse it.
    let l = s.lock("minimal", &pool);
    let o = if l.status.success() {
        s.build("minimal", "out", &pool)
    } else {
        l
    };
    assert_clean_failure(&o, "busybox-static");
    assert_clean_failure(&o, "truncated");
    assert_no_output(&s);
}

#[test]
fn deb_with_escaping_entry() {
    let s = Scratch::new("minimal");
    let pool = linked_pool(&s);
    std::fs::write(
        pool.join("evil_1.0_amd64.deb"),
        tests::debs::evil_deb("evil", "../../../etc/cron.d/evil"),
    )
    .unwrap();
    s.edit_spec(
        "minimal",
        "  - busybox-static",
        "  - busybox-static\n  - evil",
    );
    let l = s.lock("minimal", &pool);
    assert!(l.status.success(), "{}", tests::text(&l));
    let o = s.build("minimal", "out", &pool);
    assert_clean_failure(&o, "evil");
    assert_clean_failure(&o, "escapes");
    assert_no_output(&s);
    assert!(!s.path().join("etc").exists() && !Path::new("/etc/cron.d/evil").exists());
}

#[test]
fn usr_larger_than_its_partition() {
    let s = Scratch::new("minimal");
    s.edit_spec("minimal", "usr_mib: 256", "usr_mib: 2");
    let o = s.build("minimal", "out", &pool_dir());
    assert_clean_failure(&o, "raise partitions.usr_mib");
    assert_no_output(&s);
    let _ = init_bin();
}

#[test]
fn pinned_version_no_longer_served_says_how_to_relock() {
    let s = Scratch::new("minimal");
    let lock_path = s.path().join("images/minimal.lock");
    let lock = std::fs::read_to_string(&lock_path).unwrap();
    let lock = lock.replace(
        "\"version\": \"1:1.35.0-4+deb12u1+b1\"",
        "\"version\": \"1:0.0.0-gone1\"",
    );
    let lock = lock.replace(
        "3d3fdbe91d4660c873e14b092c213fe81c1da6362daa236eb25d0171eb108744",
        "0000000000000000000000000000000000000000000000000000000000000000",
    );
    std::fs::write(&lock_path, lock).unwrap();
    let pool = s.path().join("pool");
    let spec = s.spec("minimal");
    let o = image_builder(
        s.path(),
        &[
            "fetch",
            spec.to_str().unwrap(),
            "--pool",
            pool.to_str().unwrap(),
        ],
    );
    assert_clean_failure(&o, "busybox-static 1:0.0.0-gone1 is no longer served");
    assert_clean_failure(&o, "image-builder lock");
}

/// `kernel.modules.exclude` that takes away a driver the initramfs needs: refused at build
/// time, naming the module, its path and the rule.
#[test]
fn module_rules_that_remove_an_initramfs_driver() {
    let s = Scratch::new("minimal");
    // The shipped spec keeps drivers/ata/ by an include over `exclude: ["*"]`.
    s.edit_spec("minimal", "include: [drivers/ata/, ", "include: [");
    let o = s.build("minimal", "out", &pool_dir());
    assert_clean_failure(&o, "kernel.initramfs_modules names ahci");
    assert_clean_failure(&o, "kernel/drivers/ata/ahci.ko");
    assert_clean_failure(&o, "which kernel.modules.exclude removes (*)");
    assert_no_output(&s);
}

/// A rule that matches nothing (a typo) would silently keep or drop everything: refused.
#[test]
fn module_rule_matching_nothing() {
    let s = Scratch::new("minimal");
    s.edit_spec(
        "minimal",
        "include: [drivers/ata/, ",
        "include: [drivers/sould/, ",
    );
    let o = s.build("minimal", "out", &pool_dir());
    assert_clean_failure(&o, "kernel.modules.include: drivers/sould/ matches none");
    assert_no_output(&s);
    let s = Scratch::new("minimal");
    s.edit_spec("minimal", "exclude: [\"*\"]", "exclude: [../etc]");
    let o = s.build("minimal", "out", &pool_dir());
    assert_clean_failure(&o, "want a path under the kernel's module directory");
    assert_no_output(&s);
}

/// A kernel package without modules cannot make an initramfs: one error naming the package
/// and what it lacks.
#[test]
fn kernel_package_without_modules() {
    let s = Scratch::new("minimal");
    let pool = linked_pool(&s);
    std::fs::write(
        pool.join("linux-image-9.9.9-test_1.0_amd64.deb"),
        tests::debs::kernel_deb_without_modules("linux-image-9.9.9-test", "9.9.9-test"),
    )
    .unwrap();
    s.edit_spec(
        "minimal",
        "package: linux-image-6.1.0-56-amd64",
        "package: linux-image-9.9.9-test",
    );
    let o = s.lock("minimal", &pool);
    assert!(o.status.success(), "{}", tests::text(&o));
    let o = s.build("minimal", "out", &pool);
    assert_clean_failure(
        &o,
        "reading the modules of kernel package linux-image-9.9.9-test (9.9.9-test)",
    );
    assert_clean_failure(&o, "no module directory usr/lib/modules/9.9.9-test");
    assert_no_output(&s);
}

#[test]
fn bios_boot_partition_too_small_for_grub() {
    let s = Scratch::new("minimal");
    s.edit_spec(
        "minimal",
        "root_mib: 128",
        "root_mib: 128\n  bios_boot_kib: 64",
    );
    let o = s.build("minimal", "out", &pool_dir());
    assert_clean_failure(
        &o,
        "but the BIOS-BOOT partition holds 65536 bytes: raise partitions.bios_boot_kib",
    );
    assert_no_output(&s);
}

#[test]
fn expiry_days_that_would_wrap_around_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        vec![
            "init-repo",
            "--repo",
            "r",
            "--root-key",
            "k",
            "--signing-key",
            "k",
        ],
        vec![
            "publish",
            "--repo",
            "r",
            "--channel",
            "alpha",
            "--key",
            "k",
            "out",
        ],
    ] {
        for days in ["3000000000000000", "0", "36501"] {
            let mut args = args.clone();
            args.extend(["--expires-days", days]);
            let o = image_builder(dir.path(), &args);
            assert_clean_failure(&o, "--expires-days");
            assert!(
                tests::text(&o).contains("out of range (1..=36500)"),
                "{}",
                tests::text(&o)
            );
        }
    }
    assert!(!dir.path().join("r").exists(), "nothing written");
}

#[test]
fn a_name_that_would_add_a_line_to_os_release_and_the_boot_entry() {
    let s = Scratch::new("minimal");
    s.edit_spec(
        "minimal",
        "  name: Minimal Linux",
        "  name: \"Minimal\\ntitle Evil\"",
    );
    let o = s.build("minimal", "out", &pool_dir());
    assert_clean_failure(&o, "cannot be in a name");
    assert_clean_failure(&o, "minimal.yaml:");
    assert_no_output(&s);
}

#[test]
fn a_failed_build_leaves_no_earlier_build_that_looks_complete() {
    let s = Scratch::new("minimal");
    let o = s.build("minimal", "out", &pool_dir());
    assert!(o.status.success(), "{}", tests::text(&o));
    assert!(s.path().join("out/build.json").exists());
    assert!(s.path().join("out/disk.raw").exists());
    s.edit_spec("minimal", "  version: 1.0.0", "  version: 01.0.0");
    let o = s.build("minimal", "out", &pool_dir());
    assert_clean_failure(&o, "leading zero");
    assert!(
        tests::text(&o).contains("the earlier build there was removed"),
        "{}",
        tests::text(&o)
    );
    assert_no_output(&s);
}

/// Edits busybox-static's entry of the scratch copy's minimal.lock.
fn edit_busybox_lock(s: &Scratch, edit: impl FnOnce(&mut serde_json::Value)) {
    let lock_path = s.path().join("images/minimal.lock");
    let mut lock: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&lock_path).unwrap()).unwrap();
    let entry = lock["packages"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|p| p["package"] == "busybox-static")
        .unwrap();
    edit(entry);
    std::fs::write(&lock_path, serde_json::to_string_pretty(&lock).unwrap()).unwrap();
}

#[test]
fn a_lock_field_that_disagrees_with_the_package_names_the_field() {
    let s = Scratch::new("minimal");
    let mut real = String::new();
    edit_busybox_lock(&s, |entry| {
        real = entry["version"].as_str().unwrap().to_string();
        entry["version"] = serde_json::Value::String(format!("{real}+edited"));
    });
    let o = s.build("minimal", "out", &pool_dir());
    assert_clean_failure(
        &o,
        &format!(
            "the lock's version is \"{real}+edited\", the package's control data says \"{real}\""
        ),
    );
    assert_no_output(&s);
}

/// Adds `deb` to a copy of the pool as package `evil`, locks and builds the minimal image with
/// it, and expects a clean failure that says each of `want`.
fn build_with_hostile_package(deb: &[u8], want: &[&str]) {
    let s = Scratch::new("minimal");
    let pool = linked_pool(&s);
    std::fs::write(pool.join("evil_1.0_amd64.deb"), deb).unwrap();
    s.edit_spec(
        "minimal",
        "  - busybox-static",
        "  - busybox-static\n  - evil",
    );
    let l = s.lock("minimal", &pool);
    assert!(l.status.success(), "{}", tests::text(&l));
    let o = s.build("minimal", "out", &pool);
    assert_clean_failure(&o, "extracting evil 1.0");
    for w in want {
        assert_clean_failure(&o, w);
    }
    let errors = tests::text(&o)
        .lines()
        .filter(|l| l.contains("error"))
        .count();
    assert_eq!(errors, 1, "one message: {}", tests::text(&o));
    assert!(
        tests::text(&o).len() < 2000,
        "a message, not a dump: {}",
        tests::text(&o)
    );
    assert_no_output(&s);
}

#[test]
fn a_package_thousands_of_directories_deep_is_refused_at_the_limit() {
    // The builder used to take minutes on this, then seemingly forever.
    build_with_hostile_package(
        &tests::debs::deep_deb("evil", 5000),
        &["is 257 directories deep; at most 256 are allowed"],
    );
}

#[test]
fn a_name_longer_than_squashfs_takes_is_refused() {
    // The builder used to make an image that unsquashfs called corrupted and that did not boot.
    build_with_hostile_package(
        &tests::debs::long_name_deb("evil", 300),
        &["(300 bytes) is too long; names may have at most 255"],
    );
}

#[test]
fn a_package_of_more_entries_than_an_image_may_hold_is_refused() {
    build_with_hostile_package(
        &tests::debs::many_entries_deb("evil", 1 << 20),
        &["the image would hold more than 1048576 entries"],
    );
}

#[test]
fn a_decompression_bomb_is_refused_before_it_is_unpacked() {
    build_with_hostile_package(
        &tests::debs::bomb_deb("evil", 9),
        &[
            "\"usr/zeros\"",
            "would add up to",
            "more than the 8589934592 allowed",
        ],
    );
}

#[test]
fn a_symlink_over_a_file_or_to_nothing_is_refused() {
    // busybox linked to itself used to build; the machine then said "Too many levels of
    // symbolic links" at boot.
    let s = Scratch::new("minimal");
    s.edit_spec(
        "minimal",
        "links: [/usr/bin/sh,",
        "links: [/usr/bin/busybox, /usr/bin/sh,",
    );
    let o = s.build("minimal", "out", &pool_dir());
    assert_clean_failure(
        &o,
        "symlinks: /usr/bin/busybox -> /usr/bin/busybox: /usr/bin/busybox is already in the \
         image (a file); a link there would replace it",
    );
    assert_no_output(&s);
    let s = Scratch::new("minimal");
    s.edit_spec(
        "minimal",
        "symlinks:\n",
        "symlinks:\n  - {target: /usr/bin/busybox-typo, links: [/usr/bin/edit]}\n\
         \x20 - {target: loop-b, links: [/usr/bin/loop-a]}\n\
         \x20 - {target: loop-a, links: [/usr/bin/loop-b]}\n",
    );
    let o = s.build("minimal", "out", &pool_dir());
    assert_clean_failure(
        &o,
        "symlinks: /usr/bin/edit -> /usr/bin/busybox-typo: /usr/bin/busybox-typo is not in the image",
    );
    assert_no_output(&s);
    s.edit_spec(
        "minimal",
        "  - {target: /usr/bin/busybox-typo, links: [/usr/bin/edit]}\n",
        "",
    );
    let o = s.build("minimal", "out", &pool_dir());
    assert_clean_failure(
        &o,
        "symlinks: /usr/bin/loop-a -> loop-b: following it never ends",
    );
    assert_no_output(&s);
}

#[test]
fn a_kernel_command_line_longer_than_the_efi_stub_takes_is_refused() {
    // It used to build; the stub cut the line, usr= with it, and the machine powered off.
    let s = Scratch::new("minimal");
    let padding = format!(" quiet{}", " loglevel=4".repeat(190));
    s.edit_spec("minimal", "loglevel=4\n", &format!("loglevel=4{padding}\n"));
    let o = s.build("minimal", "out", &pool_dir());
    assert_clean_failure(
        &o,
        "minimal.yaml: kernel.cmdline: the boot entries' command line",
    );
    assert_clean_failure(&o, "the kernel takes at most 2047");
    assert_no_output(&s);
}

#[test]
fn a_lock_filename_that_leaves_the_pool_or_names_another_package_is_refused() {
    let s = Scratch::new("minimal");
    let shadow = "../../../etc/shadow.deb";
    edit_busybox_lock(&s, |entry| {
        entry["filename"] = serde_json::Value::String(shadow.into());
    });
    let o = s.build("minimal", "out", &pool_dir());
    assert_clean_failure(
        &o,
        &format!(
            "minimal.lock is malformed: packages[3] (busybox-static): filename \"{shadow}\" \
             must be a relative path that stays inside the source"
        ),
    );
    assert_no_output(&s);
    // A Debian file name for another version: found in the pool by its control data, then
    // refused for the name.
    let s = Scratch::new("minimal");
    let mut version = String::new();
    edit_busybox_lock(&s, |entry| {
        version = entry["version"].as_str().unwrap().to_string();
        entry["filename"] = serde_json::Value::String("busybox-static_1.30.1-6_amd64.deb".into());
    });
    let o = s.build("minimal", "out", &pool_dir());
    let debian = version.split_once(':').map_or(&*version, |(_, v)| v);
    assert_clean_failure(
        &o,
        &format!(
            "the lock's filename is \"busybox-static_1.30.1-6_amd64.deb\", the package's control \
             data says \"busybox-static_{debian}_amd64.deb\""
        ),
    );
    assert_no_output(&s);
}
