//! The image spec (`images/*.yaml`): `ImageSpec::parse` never panics, and a spec it accepts
//! keeps the promises its checks make to the rest of the build. The pure renderers a build
//! feeds from the spec are run too: os-release and the update.conf defaults read back to the
//! spec's values, the disk layout's GPT reads back, through the builder's reader and the
//! machines' (`machine::gpt`), to the layout, and the image's first boot entry reads back as
//! the slot, version and tries it was written with, with a command line that gives `/init`
//! the `usr=` of USR-A.

#![no_main]

use std::collections::BTreeSet;
use std::path::Path;

use contract::cmdline::{self, DeviceSpec, UsrSpec};
use contract::slots::{parse_entry, Slot};
use contract::update_conf::keys;
use image_builder::disk::{gpt, layout::DiskLayout};
use image_builder::fs::esp;
use image_builder::os::content;
use image_builder::spec::ImageSpec;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(spec) = ImageSpec::parse(text, Path::new("images/fuzz.yaml")) else {
        return;
    };
    let names = spec.package_names();
    assert_eq!(
        names.iter().collect::<BTreeSet<_>>().len(),
        names.len(),
        "a package listed twice was accepted: {names:?}"
    );
    let mut again = spec.clone();
    again
        .set_outputs(&spec.output_list())
        .expect("the spec's own outputs are each listed once");
    let _ = spec.source_files();

    let release = contract::os_release::parse(&content::os_release(&spec));
    assert_eq!(release["ID"], spec.os.id.0);
    assert_eq!(release["VERSION_ID"], spec.os.version.0);
    assert_eq!(release["RELEASE_CHANNEL"], spec.os.channel.0);
    assert_eq!(release["NAME"], spec.os.name.0.replace('"', "'"));

    if let Some(u) = &spec.update {
        let conf = content::update_conf(&spec, u);
        let read = contract::update_conf::parse("update.conf", &conf)
            .unwrap_or_else(|e| panic!("the rendered update.conf does not parse: {e}\n{conf}"));
        let group = u.group.as_ref().unwrap_or(&spec.os.channel);
        assert_eq!(read[keys::GROUP], group.0, "{conf}");
        assert_eq!(read[keys::REBOOT_STRATEGY], u.reboot_strategy.as_str());
        if let Some(server) = &u.server {
            assert_eq!(read[keys::SERVER], server.0, "{conf}");
        }
        if let Some(f) = &u.fleetlock {
            assert_eq!(read[keys::FLEETLOCK_URL], f.url.0, "{conf}");
        }
    }

    let layout = DiskLayout::compute(&spec);
    let rendered = gpt::render(&layout);
    let (disk_guid, parts) = gpt::parse(&rendered.head).expect("the builder reads its own GPT");
    assert_eq!(disk_guid, layout.disk_guid);
    assert_eq!(parts.len(), layout.partitions.len());
    for (read, want) in parts.iter().zip(&layout.partitions) {
        assert_eq!(
            (
                read.number,
                &read.label,
                read.guid,
                read.first_lba,
                read.last_lba
            ),
            (
                want.number,
                &want.label,
                want.guid,
                want.first_lba(),
                want.last_lba()
            )
        );
    }
    let mut head = std::io::Cursor::new(rendered.head);
    let machine = machine::gpt::read(&mut head, 512).expect("the machines read the GPT");
    assert_eq!(machine.len(), layout.partitions.len());
    for (read, want) in machine.iter().zip(&layout.partitions) {
        assert_eq!(read.number, want.number);
        assert_eq!(read.name, want.label);
        assert_eq!(read.unique_guid, want.guid.to_string());
    }

    let entry = esp::first_entry(&spec, &layout);
    let text = entry.render();
    let read = parse_entry(&spec.os.id.0, &entry.file_name(), &text).expect("the entry reads");
    assert_eq!(read.slot, Slot::A);
    assert_eq!(read.version, spec.os.version.0);
    assert_eq!(read.counter.map(|c| c.left), Some(spec.bootloader.tries.0));
    let options = text
        .lines()
        .find_map(|l| l.strip_prefix("options "))
        .expect("options");
    let usr = cmdline::parse(options).map(|c| c.usr);
    let want = UsrSpec::Device(DeviceSpec::PartUuid(entry.usr_partuuid.clone()));
    assert_eq!(
        usr.as_ref().ok(),
        Some(&want),
        "kernel.cmdline {:?} hides usr= from /init:\n{text}",
        spec.kernel.cmdline
    );
    let _ = entry.grub_script();
});
