//! The lockfile (`images/*.lock`): `Lockfile::parse` never panics; a lock it accepts writes
//! (`to_text`) as text that parses to the same lock, and that text is a fixed point. Checking it
//! against the shipped specs (`check_matches`) never panics either.

#![no_main]

use std::path::Path;
use std::sync::LazyLock;

use image_builder::inputs::Lockfile;
use image_builder::spec::ImageSpec;
use libfuzzer_sys::fuzz_target;

static SPECS: LazyLock<Vec<ImageSpec>> = LazyLock::new(|| {
    [
        include_str!("../../images/minimal.yaml"),
        include_str!("../../images/container-host.yaml"),
    ]
    .iter()
    .map(|text| ImageSpec::parse(text, Path::new("images/x.yaml")).expect("a shipped spec"))
    .collect()
});

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("images/fuzz.lock");
    let Ok(lock) = Lockfile::parse(text, path) else {
        return;
    };
    let written = lock.to_text();
    let again = Lockfile::parse(&written, path)
        .unwrap_or_else(|e| panic!("a written lock does not parse: {e}\n{written}"));
    assert_eq!(again, lock);
    assert_eq!(again.to_text(), written);
    for p in &lock.packages {
        let c = p.candidate();
        assert_eq!((&c.package, &c.sha256), (&p.package, &p.sha256));
    }
    for spec in SPECS.iter() {
        let _ = lock.check_matches(spec, path);
    }
});
