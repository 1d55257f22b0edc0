//! `update.conf` (`contract::update_conf`) and what the update engine makes of it
//! (`config::Config`, the reboot window). Nothing panics; the keys read from a file write
//! (`render`) as text that reads back to the same keys, for every value `render` can carry;
//! and a reboot window that parses behaves: its next opening lies after `now` and is inside
//! the window, and it is open exactly when it needs no wait.
//!
//! Input: `<update.conf>\0<overrides>\0<now, 8 bytes little-endian>`.

#![no_main]

use contract::update_conf;
use libfuzzer_sys::fuzz_target;
use update_engine::config::{parse_conf, Config};
use update_engine::lock::window::parse_go_duration;

fuzz_target!(|data: &[u8]| {
    let parts = fuzz::split_text(data, 3);
    let Ok(keys) = update_conf::parse("update.conf", &parts[0]) else {
        return;
    };
    let simple = keys
        .values()
        .all(|v| v.trim() == v && update_conf::unquote(v) == v && !v.contains(['\n', '\r']));
    if simple {
        let text = update_conf::render(keys.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let again = update_conf::parse("update.conf", &text).expect("rendered keys parse");
        assert_eq!(again, keys, "{text:?}");
    }
    for v in keys.values() {
        let _ = update_conf::split_list(v);
        let _ = parse_go_duration(v);
    }

    let overrides = parse_conf("override.conf", &parts[1]).unwrap_or_default();
    // Bad values are problems of the config, never a failure (the engine keeps running).
    let config = Config::merged(&[("update.conf", &keys), ("override.conf", &overrides)]);
    for problem in &config.problems {
        let _ = problem.to_string();
    }
    let _ = config.reboot_lock.etcd_config();
    let Some(window) = config.reboot_lock.window else {
        return;
    };
    let _ = window.to_string();
    let mut now = [0u8; 8];
    for (n, b) in now.iter_mut().zip(parts[2].as_bytes()) {
        *n = *b;
    }
    let now = u64::from_le_bytes(now) >> 8; // far beyond any clock, far from u64::MAX
    let next = window.next_start(now);
    assert!(next > now && next - now <= window.period_secs());
    assert!(
        window.contains(next),
        "{window} is closed at its own start {next}"
    );
    assert_eq!(window.secs_until_open(now) == 0, window.contains(now));
});
