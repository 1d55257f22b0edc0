//! The update engine's reboot strategies against a real etcd (issue 4): machines (each its own
//! root, state and machine id, with a [`FileHost`] that counts reboots instead of doing them)
//! with an update staged follow `REBOOT_STRATEGY=etcd-lock`:
//! - with one slot, the first takes the lock and reboots, the second waits and says why, and gets
//!   the lock once the first gave it back after its good boot;
//! - two machines with the same machine id: the second is told so and does not reboot;
//! - etcd down: nobody reboots, the status says etcd is unreachable; once it is back, the
//!   machine reboots and the lock shows it as the holder.

use std::sync::atomic::{AtomicU32, Ordering::SeqCst};

use tests::etcd::Etcd;
use update_engine::config::{Config, Paths, RebootStrategy};
use update_engine::engine::AfterStaging;
use update_engine::engine::Engine;
use update_engine::host::{FileHost, SlotDevice};
use update_engine::http::Policy;
use update_engine::state::State;
use update_engine::status::Status;

const NOW: u64 = 1_700_000_000;
const KEY: &str = "coreos.com/updateengine/rebootlock/semaphore";

/// One simulated machine.
struct Machine {
    _dir: tempfile::TempDir,
    host: FileHost,
    config: Config,
}

impl Machine {
    fn new(etcd: &Etcd, machine_id: &str) -> Machine {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::new(dir.path().join("root"));
        let id_file = paths.machine_id();
        std::fs::create_dir_all(id_file.parent().unwrap()).unwrap();
        std::fs::write(&id_file, format!("{machine_id}\n")).unwrap();
        let device = |name: &str| SlotDevice {
            path: dir.path().join(name),
            partuuid: name.into(),
        };
        let host = FileHost {
            paths,
            devices: [device("usr-a"), device("usr-b")],
            esp: dir.path().join("esp"),
            processes: vec![],
            reboots: AtomicU32::new(0),
        };
        let mut config = Config {
            reboot_strategy: RebootStrategy::EtcdLock,
            ..Config::default()
        };
        config.reboot_lock.etcd.endpoints = vec![etcd.endpoint()];
        Machine {
            _dir: dir,
            host,
            config,
        }
    }

    fn with_engine<T>(&self, f: impl FnOnce(&Engine<FileHost>) -> T) -> T {
        let keys = channels::RootKeys { keys: Vec::new() };
        let engine = Engine {
            paths: &self.host.paths,
            config: &self.config,
            root_keys: &keys,
            host: &self.host,
            policy: Policy::CHANNEL,
        };
        f(&engine)
    }

    /// `REBOOT_STRATEGY` once, as the daemon does for a staged update.
    fn try_reboot(&self, attempt: u32) -> AfterStaging {
        self.with_engine(|e| e.after_staging(NOW, attempt).unwrap())
    }

    /// After the good boot: the daemon gives the lock back.
    fn release(&self) -> Option<String> {
        self.with_engine(|e| e.release_reboot_lock().unwrap())
    }

    fn reboots(&self) -> u32 {
        self.host.reboots.load(SeqCst)
    }

    fn note(&self) -> String {
        Status::load(&self.host.paths.status())
            .unwrap()
            .reboot_note
            .unwrap_or_default()
    }

    fn state(&self) -> State {
        State::load(&self.host.paths.state()).unwrap()
    }
}

fn waiting(next: &AfterStaging) -> &str {
    match next {
        AfterStaging::Waiting { reason, .. } => reason,
        other => panic!("expected to wait, got {other:?}"),
    }
}

fn semaphore(etcd: &Etcd) -> String {
    etcd.get(KEY).unwrap_or_default()
}

#[test]
fn one_slot_one_reboot_at_a_time_released_after_the_good_boot() {
    let etcd = Etcd::start();
    let a = Machine::new(&etcd, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    let b = Machine::new(&etcd, "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb");

    assert!(matches!(a.try_reboot(0), AfterStaging::Rebooting { .. }));
    assert_eq!(a.reboots(), 1);
    assert_eq!(
        semaphore(&etcd),
        r#"{"semaphore":0,"max":1,"holders":["aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"]}"#
    );
    assert!(a.state().reboot_lock.is_some_and(|r| r.acquired));

    let next = b.try_reboot(0);
    let why = waiting(&next);
    assert!(why.contains("waiting for the reboot lock"), "{why}");
    assert!(why.contains("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"), "{why}");
    assert_eq!(b.reboots(), 0);
    assert_eq!(b.note(), why);

    // a comes back, is marked good, gives the lock back; b gets it.
    let released = a.release().unwrap();
    assert!(released.contains("released the reboot lock"), "{released}");
    assert_eq!(a.state().reboot_lock, None);
    assert!(matches!(b.try_reboot(1), AfterStaging::Rebooting { .. }));
    assert_eq!(b.reboots(), 1);
    assert_eq!(
        semaphore(&etcd),
        r#"{"semaphore":0,"max":1,"holders":["bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"]}"#
    );
    b.release().unwrap();
    assert_eq!(semaphore(&etcd), r#"{"semaphore":1,"max":1,"holders":[]}"#);
    // Nothing recorded, nothing to release.
    assert_eq!(a.release(), None);
}

#[test]
fn a_duplicate_machine_id_is_reported_and_does_not_reboot() {
    let etcd = Etcd::start();
    let id = "dddddddddddddddddddddddddddddddd";
    let first = Machine::new(&etcd, id);
    let clone = Machine::new(&etcd, id);
    assert!(matches!(
        first.try_reboot(0),
        AfterStaging::Rebooting { .. }
    ));
    let next = clone.try_reboot(0);
    let why = waiting(&next);
    assert!(why.contains("same machine-id"), "{why}");
    assert_eq!(clone.reboots(), 0);
    // Still only the first machine's hold.
    assert_eq!(
        semaphore(&etcd),
        format!(r#"{{"semaphore":0,"max":1,"holders":["{id}"]}}"#)
    );
}

#[test]
fn no_reboot_while_etcd_is_down() {
    let mut etcd = Etcd::start();
    let m = Machine::new(&etcd, "cccccccccccccccccccccccccccccccc");
    etcd.kill();
    for attempt in 0..2 {
        let next = m.try_reboot(attempt);
        let why = waiting(&next);
        assert!(why.contains(&etcd.endpoint()), "{why}");
        assert_eq!(m.reboots(), 0);
    }
    assert!(m.note().contains("waiting for the reboot lock"));
    etcd.restart();
    assert!(matches!(m.try_reboot(2), AfterStaging::Rebooting { .. }));
    assert_eq!(m.reboots(), 1);
    assert!(semaphore(&etcd).contains("cccccccccccccccccccccccccccccccc"));
}
