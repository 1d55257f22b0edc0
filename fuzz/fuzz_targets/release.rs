//! An apt `Release` file: `parse_release` never panics and what it accepts lists lower-case
//! sha256 values; a Release that `render_release` writes for the same paths reads back to those
//! paths, sizes and hashes, and to its suite.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rootfs::apt::deb822;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(release) = deb822::parse_release(text) else {
        return;
    };
    for (path, (_, sha256)) in &release.sha256 {
        assert!(deb822::is_sha256_hex(sha256), "{path}: {sha256:?}");
        assert!(!path.is_empty() && !path.contains(char::is_whitespace));
    }

    // render_release takes the paths an index writer has: `dir/file` names without spaces.
    let files: Vec<(String, Vec<u8>)> = release
        .sha256
        .iter()
        .map(|(path, (size, _))| (path.clone(), size.to_le_bytes().to_vec()))
        .collect();
    let suite = match release.suite.as_deref() {
        Some(s) if !s.is_empty() && s.chars().all(|c| c.is_ascii_graphic()) => s,
        _ => "stable",
    };
    let rendered = deb822::render_release(suite, &files);
    let reread = deb822::parse_release(&rendered)
        .unwrap_or_else(|e| panic!("a rendered Release does not parse: {e}\n{rendered}"));
    assert_eq!(reread.suite.as_deref(), Some(suite));
    assert_eq!(reread.sha256.len(), files.len());
    for (path, content) in &files {
        let (size, _) = reread.sha256[path];
        assert_eq!(size, content.len() as u64, "{path}");
    }
});
