//! What the builder writes, the machines read back: each file of `contract` rendered by the
//! image builder from a spec (or by the config agent from a cloud-config) and parsed by the
//! program that reads it on the machine (the update engine, the slot table, `/init`'s command
//! line), with the values compared. A change to either side that the other
//! does not follow fails here, before any image is booted.

use std::collections::BTreeMap;

use cloudinit::metadata::Metadata;
use cloudinit::plan::{self, Action};
use cloudinit::units::UnitFiles;
use contract::cmdline::{self, BootConfig, DeviceSpec, UsrSpec};
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

#[test]
fn init_reads_the_first_entrys_command_line() {
    let s = spec("");
    let layout = DiskLayout::compute(&s);
    let text = image_builder::fs::esp::first_entry(&s, &layout).render();
    let options = text
        .lines()
        .find_map(|l| l.strip_prefix("options "))
        .unwrap_or_else(|| panic!("no options line\n{text}"));
    let boot: BootConfig =
        cmdline::parse(options).unwrap_or_else(|e| panic!("/init refuses {options:?}: {e}"));
    let usr_a = layout.part(layout::USR_A).guid.to_string().to_lowercase();
    assert_eq!(
        boot.usr,
        UsrSpec::Device(DeviceSpec::PartUuid(usr_a)),
        "/init mounts the layout's USR-A"
    );
}

/// The agent's `coreos.update` and `coreos.locksmith`, merged over the image's defaults the way
/// the engine layers them (machine file over image file).
#[test]
fn agent_update_conf_read_by_the_engine() {
    assert_eq!(
        plan::UPDATE_CONF.strip_prefix('/'),
        Some(contract::paths::UPDATE_CONF),
        "the agent writes where the engine reads"
    );
    let user_data = b"#cloud-config\ncoreos:\n  update:\n    group: beta\n    server: https://updates.example/v1/\n    reboot-strategy: etcd-lock\n  locksmith:\n    endpoint: http://10.0.0.9:2379\n    group: db\n    window-start: Sun 04:00\n    window-length: 2h\n";
    let config = match cloudconfig::parse(user_data) {
        Ok(cloudconfig::UserData::CloudConfig(c)) => c,
        other => panic!("not a cloud-config: {other:?}"),
    };
    let actions = plan::plan(&config, &Metadata::default(), &UnitFiles::Unknown);
    let (set, unset) = actions
        .iter()
        .find_map(|a| match a {
            Action::WriteUpdateConf { set, unset } => Some((set, unset)),
            _ => None,
        })
        .expect("an update.conf action");
    // An operator's file with a comment and a key of its own, as the agent finds it.
    let before = "# site settings\nREBOOT_WINDOW_START=Mon 01:00\nCUSTOM=kept\n";
    let machine = cloudinit::conf::merge(before, set, unset).unwrap();
    assert!(
        machine.contains("# site settings") && machine.contains("CUSTOM=kept"),
        "{machine}"
    );

    let image = spec("update:\n  engine: target/ue\n  reboot_strategy: reboot\n");
    let defaults_text =
        image_builder::os::content::update_conf(&image, image.update.as_ref().unwrap());
    let defaults = parse_conf("image update.conf", &defaults_text).unwrap();
    let overrides = parse_conf("machine update.conf", &machine).unwrap();
    let c = Config::from_layers(&defaults, &overrides)
        .unwrap_or_else(|e| panic!("the engine refuses the agent's update.conf: {e}\n{machine}"));
    assert_eq!(c.group, "beta");
    assert_eq!(c.server.as_deref(), Some("https://updates.example/v1"));
    assert_eq!(c.reboot_strategy, RebootStrategy::EtcdLock);
    let l = &c.reboot_lock;
    assert_eq!(l.etcd.endpoints, ["http://10.0.0.9:2379"]);
    assert_eq!(l.etcd.group.as_deref(), Some("db"));
    let w = l.window.as_ref().expect("the agent's reboot window");
    assert_eq!(w.to_string(), "Sun 04:00 for 2h0m0s");
}

/// Issue 16: the validator, the spec and the engine judge a reboot window by one rule. A window
/// the engine would refuse on the machine is refused by the spec and by `validate-config` (which
/// also keeps upstream's patterns, so it may refuse more, never less).
#[test]
fn validator_spec_and_engine_agree_on_reboot_windows() {
    let cases = [
        ("Thu 23:00", "1h30m", true),
        ("Sun 0:0", "167h", true),
        ("23:59", "23h59m59s", true),
        ("04:00", "1.5h", true),
        ("Sat 04:00", "24h", true),
        ("04:00", "24h", false),
        ("Sun 0:0", "168h", false),
        ("04:00", "-1h", false),
        ("04:00", "0s", false),
        ("04:00", "500ms", false),
        ("04:00", "1d", false),
        ("Blursday 25:61", "1h", false),
        ("000:00", "1h", false),
        ("24:00", "1h", false),
    ];
    let minimal = tests::repo_root().join("images/minimal.yaml");
    let base = std::fs::read_to_string(&minimal).unwrap();
    for (start, length, usable) in cases {
        let keys = parse_conf(
            "update.conf",
            &format!("REBOOT_WINDOW_START={start}\nREBOOT_WINDOW_LENGTH={length}\n"),
        )
        .unwrap();
        let engine = Config::merged(&[("update.conf", &keys)])
            .problems
            .is_empty();
        let spec = ImageSpec::parse(
            &format!(
                "{base}update:\n  engine: target/ue\n  locksmith:\n    window_start: \"{start}\"\n    window_length: \"{length}\"\n"
            ),
            &minimal,
        )
        .is_ok();
        let user_data = format!(
            "#cloud-config\ncoreos:\n  locksmith:\n    window-start: \"{start}\"\n    window-length: \"{length}\"\n"
        );
        let validator = !cloudconfig::validate(user_data.as_bytes()).has_errors();
        assert_eq!(
            (engine, spec, validator),
            (usable, usable, usable),
            "{start:?} {length:?}: (engine, spec, validate-config)"
        );
    }
}
