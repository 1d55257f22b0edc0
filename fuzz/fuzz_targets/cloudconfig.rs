//! User-data (`#cloud-config`, scripts, Ignition): `validate`, `parse` and `substitute` never
//! panic, and they agree: user-data `parse` accepts has no validation error, what it refuses
//! has at least one, and the files and units of an accepted cloud-config have names the agent
//! can use (`cloudconfig::names`), so no `write_files` path leaves the root it writes under.

#![no_main]

use cloudconfig::{names, Addresses, UserData};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    check(data);
    let addresses = Addresses {
        public_ipv4: Some("203.0.113.7".into()),
        private_ipv4: Some("10.0.0.7".into()),
        public_ipv6: None,
        private_ipv6: Some("fd00::7".into()),
    };
    let substituted = cloudconfig::substitute(data, &addresses);
    if !data.contains(&b'$') {
        assert_eq!(substituted, data, "substituted without a variable");
    }
    check(&substituted);
});

fn check(data: &[u8]) {
    let report = cloudconfig::validate(data);
    match cloudconfig::parse(data) {
        Ok(UserData::CloudConfig(config)) => {
            assert!(!report.has_errors(), "parsed, yet invalid: {report:?}");
            // Entries without a path (or a name) are skipped by the agent, as upstream did.
            for f in config.write_files.iter().filter(|f| !f.path.is_empty()) {
                assert_eq!(names::write_path_problem(&f.path), None, "{:?}", f.path);
            }
            for u in config.coreos.units.iter().filter(|u| !u.name.is_empty()) {
                assert_eq!(names::unit_name_problem(&u.name), None, "{:?}", u.name);
                for d in u.drop_ins.iter().filter(|d| !d.name.is_empty()) {
                    assert_eq!(names::drop_in_name_problem(&d.name), None, "{:?}", d.name);
                }
            }
            let _ = config.coreos.update.environment();
        }
        Ok(_) => {}
        Err(e) => {
            assert!(e.report().has_errors(), "refused without an error: {e}");
            let _ = e.to_string();
        }
    }
    let _ = report.entries().iter().map(ToString::to_string).count();
}
