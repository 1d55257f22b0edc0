//! What the builder writes, the machines read back: each file of `contract` rendered by the
//! image builder from a spec and parsed by the program that reads it on the machine (the update
//! engine, the slot table), with the values compared. A change to either side that the other
//! does not follow fails here, before any image is booted.

use std::collections::BTreeMap;

use contract::slots::{parse_entry, Slot};
use contract::update_conf::RebootStrategy;
use image_builder::disk::layout::{self, DiskLayout};
use image_builder::spec::ImageSpec;
use update_engine::config::{parse_conf, Config};

/// The shipped minimal spec with `extra` appended (an `update:` section).
fn spec(extra: &str) -> ImageSpec {
    let path = tests::repo_root().join("images/minimal.yaml");
    let text = std::fs::read_to_string(&path).unwrap() + extra;
    ImageSpec::parse(&text, &path).unwrap_or_else(|e| panic!("{e}\n{extra}"))
}

/// The engine's configuration from the image's defaults alone.
fn engine_config(spec: &ImageSpec) -> Config {
    let u = spec.update.as_ref().expect("an update: section");
    let text = image_builder::os::content::update_conf(spec, u);
    let defaults = parse_conf("update.conf", &text).unwrap();
    Config::from_layers(&defaults, &BTreeMap::new())
        .unwrap_or_else(|e| panic!("the engine refuses the builder's update.conf: {e}\n{text}"))
}

#[test]
fn update_conf_every_strategy() {
    for strategy in RebootStrategy::ALL {
        let s = spec(&format!(
            "update:\n  engine: target/ue\n  server: http://updates.example/repo/\n  reboot_strategy: {strategy}\n  fleetlock:\n    url: http://lock:3333/\n"
        ));
        let c = engine_config(&s);
        assert_eq!(c.reboot_strategy, strategy);
        assert_eq!(c.group, "alpha", "GROUP defaults to os.channel");
        assert_eq!(c.server.as_deref(), Some("http://updates.example/repo"));
    }
}

#[test]
fn update_conf_locks_and_window() {
    let s = spec(concat!(
        "update:\n  engine: target/ue\n  group: beta\n  reboot_strategy: etcd-lock\n",
        "  locksmith:\n    endpoints: [\"http://10.0.0.1:2379\", \"http://10.0.0.2:2379\"]\n",
        "    group: workers\n    window_start: Thu 23:00\n    window_length: 1h30m\n",
        "  fleetlock:\n    url: http://lock:3333/\n    group: edge\n",
    ));
    let c = engine_config(&s);
    assert_eq!(c.group, "beta");
    assert_eq!(c.server, None);
    assert_eq!(c.reboot_strategy, RebootStrategy::EtcdLock);
    let l = &c.reboot_lock;
    assert_eq!(
        l.etcd.endpoints,
        ["http://10.0.0.1:2379", "http://10.0.0.2:2379"]
    );
    assert_eq!(l.etcd.group.as_deref(), Some("workers"));
    let w = l.window.as_ref().expect("a reboot window");
    assert_eq!(w.to_string(), "Thu 23:00 for 1h30m0s");
    assert_eq!(l.fleetlock_url.as_deref(), Some("http://lock:3333"));
    assert_eq!(l.fleetlock_group, "edge");
}

#[test]
fn os_release_identifies_the_image() {
    let s = spec("");
    let text = image_builder::os::content::os_release(&s);
    let read = update_engine::host::parse_os_release(&text).expect("ID and VERSION_ID");
    assert_eq!(read.id, s.os.id.0);
    assert_eq!(read.version_id, s.os.version.0);
    let fields = contract::os_release::parse(&text);
    assert_eq!(
        fields[contract::os_release::RELEASE_CHANNEL],
        s.os.channel.0
    );
}

#[test]
fn first_boot_entry_is_slot_a_with_the_specs_tries() {
    let s = spec("");
    let layout = DiskLayout::compute(&s);
    let entry = image_builder::fs::esp::first_entry(&s, &layout);
    let text = entry.render();
    let read = parse_entry(&s.os.id.0, &entry.file_name(), &text).expect("the engine's parse");
    assert_eq!(read.slot, Slot::A);
    assert_eq!(read.version, s.os.version.0);
    let counter = read.counter.expect("a boot counter");
    assert_eq!((counter.left, counter.done), (s.bootloader.tries.0, 0));
    // The kernel finds /usr by the partition the layout gave USR-A.
    let usr = format!("usr=PARTUUID={}", layout.part(layout::USR_A).guid);
    assert!(
        text.lines()
            .any(|l| l.starts_with("options ") && l.contains(&usr)),
        "{text}"
    );
}
