//! The reboot lock against a real etcd (SPECS.md S1, S2; DESIGN.md "Reboot coordination"):
//! - 20 nodes contend for 2 slots, through the library and through the FleetLock server; never
//!   more than 2 reboot at once, as counted in the process and as read back from etcd;
//! - etcd is killed in the middle of such a run and restarted: nobody gets the lock while it is
//!   down, and everybody finishes once it is back;
//! - the `update-engine lock` / `locksmithctl` command line and its locksmithctl output;
//! - `locksmithctl reboot`: the lock first (refused when full), the reboot, the release after
//!   the next boot (through the library on a host whose reboots are counted, never done);
//! - the values in etcd, read with the real `etcdctl`, are locksmith's bytes;
//! - a holder with a lease is removed once the lease runs out;
//! - a hand-edited semaphore whose fields disagree (a holder listed twice, more free slots than
//!   `max`, unsorted holders, an empty id) is reported by `locksmithctl status` and repaired by
//!   the next change, and nodes contending on one never exceed `max`.
//!
//! The timeouts here only fail a hung test; nothing asserts how long anything took.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Mutex, RwLock};
use std::thread;
use std::time::{Duration, Instant};

use tests::etcd::{free_port, Etcd};
use tests::{assert_clean_failure, text, update_engine_bin};
use update_engine::lock::etcd::{semaphore_key, DEFAULT_KEY};
use update_engine::lock::Semaphore;
use update_engine::lock::{EtcdConfig, EtcdError, EtcdLock, FleetLockClient, Locked};

const NODES: usize = 20;
const MAX: usize = 2;
/// Fails a hung test; a run takes a few seconds.
const HANG: Duration = Duration::from_secs(120);
/// How long a node "reboots" while holding its slot.
const REBOOT: Duration = Duration::from_millis(30);

fn config(etcd: &Etcd) -> EtcdConfig {
    EtcdConfig {
        endpoints: vec![etcd.endpoint()],
        timeout: Duration::from_secs(3),
        ..EtcdConfig::default()
    }
}

fn connect(config: &EtcdConfig) -> EtcdLock {
    EtcdLock::connect(config).expect("etcd client")
}

/// What the nodes of one run share; checked at the end.
#[derive(Default)]
struct Fleet {
    /// Nodes between "got the lock" and "about to release it".
    rebooting: AtomicUsize,
    /// Slots held by holders a hand edit left (no node runs under their ids).
    ghosts: AtomicUsize,
    finished: AtomicUsize,
    stop: AtomicBool,
    violations: Mutex<Vec<String>>,
}

impl Fleet {
    /// Records a broken guarantee and stops the run.
    fn violation(&self, what: String) {
        self.violations.lock().unwrap().push(what);
        self.stop.store(true, SeqCst);
    }

    /// A node holding the lock "reboots"; counts how many do at once (beside the ghosts).
    fn reboot(&self, id: &str) {
        let now = self.rebooting.fetch_add(1, SeqCst) + 1;
        let ghosts = self.ghosts.load(SeqCst);
        if now + ghosts > MAX {
            self.violation(format!(
                "{id}: {now} nodes rebooting at once, {ghosts} slots held by ghosts"
            ));
        }
        thread::sleep(REBOOT);
        self.rebooting.fetch_sub(1, SeqCst);
    }

    /// Calls `attempt` until it returns `Some`, pausing longer each time; `None` if stopped.
    fn retry<T>(&self, mut attempt: impl FnMut() -> Option<T>) -> Option<T> {
        let mut pause = Duration::from_millis(5);
        while !self.stop.load(SeqCst) {
            if let Some(t) = attempt() {
                return Some(t);
            }
            thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(100));
        }
        None
    }

    /// Waits for `cond`; false if the run stopped, or hung (then stops it and records that).
    fn wait_for(&self, what: &str, cond: impl Fn() -> bool) -> bool {
        let deadline = Instant::now() + HANG;
        while !cond() {
            if self.stop.load(SeqCst) {
                return false;
            }
            if Instant::now() > deadline {
                self.violation(format!("hung waiting for {what}"));
                self.stop.store(true, SeqCst);
                return false;
            }
            thread::sleep(Duration::from_millis(5));
        }
        true
    }

    /// Reads the semaphore until stopped: `max` is MAX; never more than MAX holders once a
    /// node is among them (the `ghosts` of a hand edit may be more); the fields agree, from the
    /// start if `consistent` (else from the first write on: every write repairs). Returns how
    /// many reads succeeded.
    fn observe(&self, config: &EtcdConfig, ghosts: &[&str], mut consistent: bool) -> usize {
        let lock = connect(config);
        let mut reads = 0;
        while !self.stop.load(SeqCst) {
            if let Ok(sem) = lock.get() {
                reads += 1;
                let mut distinct = sem.holders().to_vec();
                distinct.sort();
                distinct.dedup();
                let nodes = distinct
                    .iter()
                    .filter(|h| !ghosts.contains(&h.as_str()))
                    .count();
                let problems = sem.problems();
                if (nodes > 0 && distinct.len() > MAX)
                    || sem.max != MAX as i64
                    || (consistent && !problems.is_empty())
                {
                    self.violation(format!("etcd holds {}: {problems:?}", sem.to_json()));
                }
                consistent |= problems.is_empty();
            }
            thread::sleep(Duration::from_millis(2));
        }
        reads
    }

    fn check(&self) {
        let violations = self.violations.lock().unwrap();
        assert!(violations.is_empty(), "{violations:#?}");
        assert_eq!(self.finished.load(SeqCst), NODES);
    }
}

/// One node on the etcd lock: lock (retrying), reboot, unlock (retrying). With a `gate`, each
/// lock attempt runs under its read side, and `*gate` says whether etcd was up throughout.
fn etcd_node(fleet: &Fleet, config: &EtcdConfig, id: &str, gate: Option<&RwLock<bool>>) {
    let lock = connect(config);
    let locked = fleet.retry(|| {
        let up = gate.map(|g| g.read().unwrap_or_else(|e| e.into_inner()));
        let result = lock.lock(id);
        let etcd_was_up = up.as_deref().copied().unwrap_or(true);
        drop(up);
        match result {
            Ok(Locked::Acquired) if !etcd_was_up => {
                fleet.violation(format!("{id} got the lock while etcd was down"));
                Some(())
            }
            Ok(Locked::Acquired) => Some(()),
            Ok(Locked::AlreadyHeld) => {
                fleet.violation(format!("{id} held the lock before taking it"));
                Some(())
            }
            Err(
                EtcdError::Full { .. } | EtcdError::Unreachable { .. } | EtcdError::Conflict { .. },
            ) => None,
            Err(e) => {
                fleet.violation(format!("{id}: lock: {e}"));
                None
            }
        }
    });
    if locked.is_none() {
        return;
    }
    fleet.reboot(id);
    let unlocked = fleet.retry(|| match lock.unlock(id) {
        Ok(()) => Some(()),
        Err(EtcdError::Unreachable { .. } | EtcdError::Conflict { .. }) => None,
        Err(e) => {
            fleet.violation(format!("{id}: unlock: {e}"));
            None
        }
    });
    if unlocked.is_some() {
        fleet.finished.fetch_add(1, SeqCst);
    }
}

fn assert_released(config: &EtcdConfig) {
    let sem = connect(config).get().unwrap();
    assert_eq!(
        (sem.semaphore, sem.max, sem.holders().len()),
        (MAX as i64, MAX as i64, 0),
        "{}",
        sem.to_json()
    );
}

#[test]
fn twenty_etcd_lock_nodes_never_more_than_two_rebooting() {
    let etcd = Etcd::start();
    let cfg = config(&etcd);
    assert_eq!(connect(&cfg).set_max(MAX as u32).unwrap(), (1, MAX as i64));
    let fleet = Fleet::default();
    let reads = thread::scope(|s| {
        let observer = s.spawn(|| fleet.observe(&cfg, &[], true));
        for i in 0..NODES {
            let (fleet, cfg) = (&fleet, &cfg);
            s.spawn(move || etcd_node(fleet, cfg, &format!("node-{i:02}"), None));
        }
        fleet.wait_for("all nodes", || fleet.finished.load(SeqCst) == NODES);
        fleet.stop.store(true, SeqCst);
        observer.join().unwrap()
    });
    fleet.check();
    assert!(reads > 0, "the observer never read the semaphore");
    assert_released(&cfg);
}

#[test]
fn etcd_killed_mid_run_nobody_reboots_until_it_is_back() {
    let mut etcd = Etcd::start();
    let cfg = config(&etcd);
    connect(&cfg).set_max(MAX as u32).unwrap();
    let fleet = Fleet::default();
    // `true` while etcd runs; the killer flips it under the write lock, so a lock attempt made
    // under the read lock saw etcd up or down throughout.
    let gate = RwLock::new(true);
    let killed = AtomicBool::new(false);
    let probe = thread::scope(|s| {
        let observer = s.spawn(|| fleet.observe(&cfg, &[], true));
        for i in 0..NODES {
            let (fleet, cfg, gate, killed) = (&fleet, &cfg, &gate, &killed);
            s.spawn(move || {
                // The second half only starts once etcd is gone.
                if i >= NODES / 2 && !fleet.wait_for("the kill", || killed.load(SeqCst)) {
                    return;
                }
                etcd_node(fleet, cfg, &format!("node-{i:02}"), Some(gate));
            });
        }
        let mut probe = None;
        if fleet.wait_for("the first nodes", || fleet.finished.load(SeqCst) >= 2) {
            {
                let mut up = gate.write().unwrap();
                etcd.kill();
                *up = false;
            }
            killed.store(true, SeqCst);
            // While etcd is down a lock attempt is a clear error, not a hang.
            probe = Some(connect(&cfg).lock("probe"));
            // Let the nodes run into the outage for a while.
            thread::sleep(Duration::from_millis(500));
            let mut up = gate.write().unwrap();
            etcd.restart();
            *up = true;
        }
        fleet.wait_for("all nodes", || fleet.finished.load(SeqCst) == NODES);
        fleet.stop.store(true, SeqCst);
        observer.join().unwrap();
        probe
    });
    fleet.check();
    match probe {
        Some(Err(e @ EtcdError::Unreachable { .. })) => {
            assert!(e.to_string().contains(&etcd.endpoint()), "{e}")
        }
        other => panic!("lock with etcd down: {other:?}"),
    }
    assert_released(&cfg);
}

/// A semaphore as a hand edit (or an old client) left it, for nodes to contend on.
struct HandEdit {
    name: &'static str,
    stored: &'static str,
    /// Its holders: no node runs under these ids; the test unlocks them mid-run.
    ghosts: &'static [&'static str],
    /// Whether the nodes get a slot before the ghosts leave (`max` minus the ghosts is above 0).
    room: bool,
}

const HAND_EDITS: [HandEdit; 3] = [
    HandEdit {
        name: "a ghost listed twice, 5 slots counted free",
        stored: r#"{"semaphore":5,"max":2,"holders":["ghost","ghost"]}"#,
        ghosts: &["ghost"],
        room: true,
    },
    HandEdit {
        name: "three unsorted ghosts for 2 slots, 3 counted free",
        stored: r#"{"semaphore":3,"max":2,"holders":["g2","g1","g3"]}"#,
        ghosts: &["g1", "g2", "g3"],
        room: false,
    },
    HandEdit {
        name: "no holders, 9 slots counted free",
        stored: r#"{"semaphore":9,"max":2,"holders":[]}"#,
        ghosts: &[],
        room: true,
    },
];

#[test]
fn nodes_contending_on_a_hand_edited_semaphore_never_exceed_max() {
    let etcd = Etcd::start();
    let cfg = config(&etcd);
    let lock = connect(&cfg);
    for case in &HAND_EDITS {
        let o = etcd.etcdctl(&["put", DEFAULT_KEY, case.stored]);
        assert!(o.status.success(), "{}", text(&o));
        let fleet = Fleet::default();
        fleet.ghosts.store(case.ghosts.len(), SeqCst);
        let reads = thread::scope(|s| {
            let observer = s.spawn(|| fleet.observe(&cfg, case.ghosts, false));
            for i in 0..NODES {
                let (fleet, cfg) = (&fleet, &cfg);
                s.spawn(move || etcd_node(fleet, cfg, &format!("node-{i:02}"), None));
            }
            if case.room {
                // The nodes share what the ghosts leave.
                fleet.wait_for("the first nodes", || fleet.finished.load(SeqCst) >= 2);
            } else {
                thread::sleep(Duration::from_millis(500));
                if fleet.finished.load(SeqCst) > 0 || fleet.rebooting.load(SeqCst) > 0 {
                    fleet.violation("a node got a slot while ghosts held them all".into());
                }
                // Refused locks write nothing.
                let now = etcd.get(DEFAULT_KEY);
                if now.as_deref() != Some(case.stored) {
                    fleet.violation(format!("refused locks wrote {now:?}"));
                }
            }
            for ghost in case.ghosts {
                // Uncounted before it leaves, so the count never overstates what etcd admits.
                fleet.ghosts.fetch_sub(1, SeqCst);
                if let Err(e) = lock.unlock(ghost) {
                    fleet.violation(format!("unlocking ghost {ghost}: {e}"));
                }
            }
            fleet.wait_for("all nodes", || fleet.finished.load(SeqCst) == NODES);
            fleet.stop.store(true, SeqCst);
            observer.join().unwrap()
        });
        let violations = fleet.violations.lock().unwrap();
        assert!(violations.is_empty(), "{}: {violations:#?}", case.name);
        assert_eq!(fleet.finished.load(SeqCst), NODES, "{}", case.name);
        assert!(reads > 0, "the observer never read the semaphore");
        assert_released(&cfg);
    }
}

#[test]
fn an_endpoint_that_refuses_does_not_hide_the_one_that_answers() {
    // locksmithctl's default list is :2379 then :4001; etcd 3 listens on one of them only.
    let etcd = Etcd::start();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let refused = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    for endpoints in [
        vec![etcd.endpoint(), refused.clone()],
        vec![refused.clone(), etcd.endpoint()],
    ] {
        let lock = connect(&EtcdConfig {
            endpoints,
            ..config(&etcd)
        });
        assert_eq!(lock.lock("m").unwrap(), Locked::Acquired);
        lock.unlock("m").unwrap();
    }
    // Nothing answers: the client's own error, naming every endpoint.
    let e = EtcdLock::connect(&EtcdConfig {
        endpoints: vec![refused.clone(), refused.clone()],
        ..config(&etcd)
    })
    .and_then(|l| l.get().map(|_| ()))
    .unwrap_err();
    assert!(
        e.to_string().contains(&format!("{refused},{refused}")),
        "{e}"
    );
}

#[test]
fn values_in_etcd_are_locksmiths_bytes() {
    let etcd = Etcd::start();
    let lock = connect(&config(&etcd));
    assert_eq!(etcd.get(DEFAULT_KEY), None);
    let value = || etcd.get(DEFAULT_KEY).unwrap_or_default();
    // The same operations in locksmith (Go) write exactly these values.
    lock.get().unwrap();
    assert_eq!(value(), r#"{"semaphore":1,"max":1,"holders":null}"#);
    assert_eq!(lock.set_max(2).unwrap(), (1, 2));
    assert_eq!(value(), r#"{"semaphore":2,"max":2,"holders":null}"#);
    assert_eq!(lock.lock("b").unwrap(), Locked::Acquired);
    assert_eq!(lock.lock("a").unwrap(), Locked::Acquired);
    assert_eq!(value(), r#"{"semaphore":0,"max":2,"holders":["a","b"]}"#);
    assert_eq!(lock.lock("a").unwrap(), Locked::AlreadyHeld);
    lock.unlock("b").unwrap();
    lock.unlock("a").unwrap();
    assert_eq!(value(), r#"{"semaphore":2,"max":2,"holders":[]}"#);
    // No lease keys beside the semaphore without a TTL.
    let o = etcd.etcdctl(&["get", "--prefix", "--keys-only", "coreos.com/"]);
    assert_eq!(
        text(&o).split_whitespace().collect::<Vec<_>>(),
        [DEFAULT_KEY]
    );

    // A value another locksmith wrote, pretty-printed as in its README: read, and rewritten
    // compact after a change.
    let written = "{\n\t\"semaphore\": 0,\n\t\"max\": 1,\n\t\"holders\": [\"69d27b356a94476da859461d3a3bc6fd\"]\n}";
    let o = etcd.etcdctl(&["put", DEFAULT_KEY, written]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        lock.get().unwrap().holders(),
        ["69d27b356a94476da859461d3a3bc6fd"]
    );
    assert!(matches!(lock.lock("x"), Err(EtcdError::Full { .. })));
    lock.unlock("69d27b356a94476da859461d3a3bc6fd").unwrap();
    assert_eq!(value(), r#"{"semaphore":1,"max":1,"holders":[]}"#);

    // Groups: locksmith's key, created on first use.
    let mut group = connect(&EtcdConfig {
        group: Some("lb".into()),
        ..config(&etcd)
    });
    group.lock("m").unwrap();
    assert_eq!(
        etcd.get("coreos.com/updateengine/rebootlock/groups/lb/semaphore")
            .as_deref(),
        Some(r#"{"semaphore":0,"max":1,"holders":["m"]}"#)
    );
    group.set_group(Some("default"));
    assert_eq!(group.key(), DEFAULT_KEY);

    // Something else in the key: an error naming the key, and the key is left alone.
    etcd.etcdctl(&["put", DEFAULT_KEY, "not json"]);
    let e = lock.lock("x").unwrap_err();
    assert!(matches!(e, EtcdError::BadValue { .. }), "{e:?}");
    assert!(e.to_string().contains(DEFAULT_KEY), "{e}");
    assert_eq!(value(), "not json");
}

#[test]
fn a_leased_holder_frees_itself_after_its_ttl() {
    let etcd = Etcd::start();
    let plain = connect(&config(&etcd));
    let leased = |ttl| {
        connect(&EtcdConfig {
            holder_ttl_secs: Some(ttl),
            ..config(&etcd)
        })
    };
    let key = |kind: &str, id: &str| format!("{DEFAULT_KEY}/{kind}/{id}");
    plain.set_max(2).unwrap();

    // A holder with a long lease and one without: the semaphore is full and stays full.
    assert_eq!(leased(60).lock("keeper").unwrap(), Locked::Acquired);
    assert_eq!(plain.lock("manual").unwrap(), Locked::Acquired);
    assert!(etcd.get(&key("alive", "keeper")).is_some());
    assert_eq!(etcd.get(&key("leased", "keeper")).as_deref(), Some("60"));
    assert_eq!(etcd.get(&key("leased", "manual")), None);
    for attempt in [plain.lock("newcomer"), leased(60).lock("newcomer")] {
        assert!(
            matches!(attempt, Err(EtcdError::Full { .. })),
            "{attempt:?}"
        );
    }
    // Locking again, or refreshing, moves the holder onto a new lease.
    let lease_of = |id| etcd.get(&key("alive", id)).unwrap_or_default();
    let first = lease_of("keeper");
    assert_eq!(leased(60).lock("keeper").unwrap(), Locked::AlreadyHeld);
    let second = lease_of("keeper");
    leased(60).refresh("keeper").unwrap();
    assert!(first != second && second != lease_of("keeper") && !first.is_empty());

    // The keeper leaves (its records go too); a holder whose 2 s lease nobody renews comes.
    plain.unlock("keeper").unwrap();
    assert_eq!(
        (
            etcd.get(&key("alive", "keeper")),
            etcd.get(&key("leased", "keeper"))
        ),
        (None, None)
    );
    assert_eq!(leased(2).lock("mortal").unwrap(), Locked::Acquired);

    // Once its lease has run out, the next lock attempt removes it and takes the slot.
    let deadline = Instant::now() + HANG;
    loop {
        match plain.lock("newcomer") {
            Ok(Locked::Acquired) => break,
            Err(EtcdError::Full { holders, .. }) => assert_eq!(holders, ["manual", "mortal"]),
            other => panic!("{other:?}"),
        }
        assert!(
            Instant::now() < deadline,
            "the mortal holder was never removed"
        );
        thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(plain.get().unwrap().holders(), ["manual", "newcomer"]);
    assert_eq!(
        (
            etcd.get(&key("alive", "mortal")),
            etcd.get(&key("leased", "mortal"))
        ),
        (None, None)
    );
    let e = leased(2).refresh("mortal").unwrap_err();
    assert!(matches!(e, EtcdError::NotHeld { .. }), "{e:?}");
    // The lease-less holder is never removed, whatever happens to leases.
    assert!(matches!(plain.lock("third"), Err(EtcdError::Full { .. })));
}

// ---- the command line ----

fn run(bin: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(bin)
        .args(args)
        .env_remove("LOCKSMITHCTL_ENDPOINT")
        .env_remove("LOCKSMITHCTL_GROUP")
        .envs(env.iter().copied())
        .output()
        .expect("running update-engine")
}

fn stdout_of(o: &Output) -> String {
    assert!(o.status.success(), "{}", text(o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn update_engine_lock_cli_and_locksmithctl() {
    let etcd = Etcd::start();
    let ep = etcd.endpoint();
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    std::fs::create_dir_all(r.join("etc/update-engine")).unwrap();
    std::fs::write(r.join("etc/machine-id"), "0123abcd\n").unwrap();
    std::fs::write(
        r.join("etc/update-engine/update.conf"),
        format!("LOCKSMITHD_ENDPOINT={ep}\n"),
    )
    .unwrap();
    let bin = update_engine_bin();
    let root_arg = r.to_str().unwrap();
    let ue = |args: &[&str]| {
        let mut all = vec!["--root", root_arg, "lock"];
        all.extend_from_slice(args);
        run(&bin, &all, &[])
    };

    // The endpoint from update.conf.
    assert_eq!(stdout_of(&ue(&["status"])), "Available: 1\nMax: 1\n");
    assert_eq!(stdout_of(&ue(&["set-max", "2"])), "Old: 1\nNew: 2\n");
    assert_eq!(stdout_of(&ue(&["lock"])), "");
    assert_eq!(stdout_of(&ue(&["lock", "m2"])), "");
    assert_eq!(
        stdout_of(&ue(&["status"])),
        "Available: 0\nMax: 2\n\nMACHINE ID\n0123abcd\nm2\n"
    );
    assert_clean_failure(
        &ue(&["lock", "m3"]),
        "is full: 0 of 2 slots available, held by 0123abcd, m2",
    );
    assert_clean_failure(&ue(&["lock"]), "0123abcd already holds the reboot lock");
    assert_eq!(stdout_of(&ue(&["unlock", "m2"])), "");
    assert_clean_failure(&ue(&["unlock", "m2"]), "m2 does not hold the reboot lock");
    assert_clean_failure(&ue(&["set-max", "two"]), "invalid value 'two'");
    assert_clean_failure(&ue(&["set-max", "-1"]), "error: ");
    // A flag wins over update.conf.
    let dead = format!("http://127.0.0.1:{}", free_port());
    assert_clean_failure(&ue(&["--endpoint", &dead, "status"]), "is unreachable");
    // Groups.
    assert_eq!(
        stdout_of(&ue(&["--group", "lb", "set-max", "3"])),
        "Old: 1\nNew: 3\n"
    );
    assert_eq!(
        etcd.get(&semaphore_key(Some("lb"))).as_deref(),
        Some(r#"{"semaphore":3,"max":3,"holders":null}"#)
    );

    // The same binary as locksmithctl, with Go-style flags and locksmithctl's environment.
    let link = r.join("locksmithctl");
    std::os::unix::fs::symlink(&bin, &link).unwrap();
    let endpoint_flag = format!("-endpoint={ep}");
    assert_eq!(
        stdout_of(&run(&link, &[&endpoint_flag, "status"], &[])),
        "Available: 1\nMax: 2\n\nMACHINE ID\n0123abcd\n"
    );
    assert_eq!(
        stdout_of(&run(
            &link,
            &["status"],
            &[("LOCKSMITHCTL_ENDPOINT", &ep), ("LOCKSMITHCTL_GROUP", "lb")]
        )),
        "Available: 3\nMax: 3\n"
    );
    assert_eq!(
        stdout_of(&run(
            &link,
            &["--endpoint", &ep, "-group=lb", "lock", "x"],
            &[]
        )),
        ""
    );
    assert_eq!(
        stdout_of(&run(&link, &[&endpoint_flag, "unlock", "0123abcd"], &[])),
        ""
    );
    assert_eq!(
        stdout_of(&run(&link, &[&endpoint_flag, "status"], &[])),
        "Available: 2\nMax: 2\n"
    );
    assert_clean_failure(
        &run(&link, &[&endpoint_flag, "frobnicate"], &[]),
        "frobnicate",
    );

    // locksmithctl's -version, help, -debug; send-need-reboot without a daemon.
    let version = stdout_of(&run(&link, &["-version"], &[]));
    assert!(version.starts_with("locksmithctl version "), "{version}");
    assert_eq!(stdout_of(&run(&link, &["version"], &[])), version);
    for args in [&[][..], &["help"], &["-help"]] {
        let help = stdout_of(&run(&link, args, &[]));
        for sub in [
            "status",
            "lock",
            "unlock",
            "set-max",
            "reboot",
            "send-need-reboot",
        ] {
            assert!(help.contains(sub), "{args:?}: no {sub} in\n{help}");
        }
    }
    let o = run(&link, &[&endpoint_flag, "-debug", "status"], &[]);
    assert!(
        text(&o).contains(&format!("etcd endpoints {ep}")),
        "{}",
        text(&o)
    );
    let root_flag = format!("--root={root_arg}");
    assert_clean_failure(
        &run(&bin, &[&root_flag, "lock", "send-need-reboot"], &[]),
        "the update-engine daemon is not running",
    );
}

/// The `Warning:` lines of `o`'s stderr.
fn warnings(o: &Output) -> Vec<String> {
    String::from_utf8_lossy(&o.stderr)
        .lines()
        .filter(|l| l.starts_with("Warning:"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn locksmithctl_reports_an_inconsistent_semaphore_and_the_next_change_repairs_it() {
    let etcd = Etcd::start();
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("locksmithctl");
    std::os::unix::fs::symlink(update_engine_bin(), &link).unwrap();
    let endpoint_flag = format!("-endpoint={}", etcd.endpoint());
    let ctl = |args: &[&str]| {
        let mut all = vec![endpoint_flag.as_str()];
        all.extend_from_slice(args);
        run(&link, &all, &[])
    };
    let put = |v: &str| {
        let o = etcd.etcdctl(&["put", DEFAULT_KEY, v]);
        assert!(o.status.success(), "{}", text(&o));
    };
    let value = || etcd.get(DEFAULT_KEY).unwrap_or_default();
    let inconsistent = |p: &str| format!("Warning: the semaphore is inconsistent: {p}");
    let repair = |v: &str| {
        format!("Warning: the next change (lock, unlock, set-max) repairs it to {v} first")
    };
    let consistent = |want_stdout: &str| {
        let o = ctl(&["status"]);
        assert_eq!(stdout_of(&o), want_stdout);
        assert_eq!(warnings(&o), Vec::<String>::new());
    };

    // The issue's value: "a" listed twice. locksmith's unlock left 1 slot free of 1, and "a".
    let stored = r#"{"semaphore":0,"max":1,"holders":["a","a"]}"#;
    put(stored);
    let o = ctl(&["status"]);
    assert_eq!(stdout_of(&o), "Available: 0\nMax: 1\n\nMACHINE ID\na\na\n");
    assert_eq!(
        warnings(&o),
        [
            inconsistent(r#"holder "a" is listed 2 times"#),
            repair(r#"{"semaphore":0,"max":1,"holders":["a"]}"#)
        ]
    );
    assert_clean_failure(&ctl(&["lock", "b"]), "0 of 1 slots available, held by a");
    assert_eq!(value(), stored, "a refused lock writes nothing");
    assert_eq!(stdout_of(&ctl(&["unlock", "a"])), "");
    assert_eq!(value(), r#"{"semaphore":1,"max":1,"holders":[]}"#);
    consistent("Available: 1\nMax: 1\n");

    // More free slots than max: the holders decide; set-max repairs too.
    let stored = r#"{"semaphore":5,"max":1,"holders":["a"]}"#;
    put(stored);
    let o = ctl(&["status"]);
    assert_eq!(stdout_of(&o), "Available: 5\nMax: 1\n\nMACHINE ID\na\n");
    assert_eq!(
        warnings(&o),
        [
            inconsistent("Available is 5, but Max 1 minus 1 holder is 0"),
            repair(r#"{"semaphore":0,"max":1,"holders":["a"]}"#)
        ]
    );
    assert_clean_failure(&ctl(&["lock", "b"]), "0 of 1 slots available, held by a");
    assert_eq!(value(), stored);
    assert_eq!(stdout_of(&ctl(&["set-max", "2"])), "Old: 1\nNew: 2\n");
    assert_eq!(value(), r#"{"semaphore":1,"max":2,"holders":["a"]}"#);
    assert_eq!(stdout_of(&ctl(&["lock", "b"])), "");
    assert_clean_failure(&ctl(&["lock", "c"]), "0 of 2 slots available, held by a, b");
    consistent("Available: 0\nMax: 2\n\nMACHINE ID\na\nb\n");

    // More holders than max, unsorted, one listed twice, counted free: nobody until two leave.
    put(r#"{"semaphore":3,"max":2,"holders":["c","a","b","a"]}"#);
    assert_eq!(
        warnings(&ctl(&["status"])),
        [
            inconsistent(r#"holder "a" is listed 2 times"#),
            inconsistent("the holders are not sorted"),
            inconsistent("Available is 3, but Max 2 minus 3 holders is -1"),
            repair(r#"{"semaphore":-1,"max":2,"holders":["a","b","c"]}"#)
        ]
    );
    assert_clean_failure(
        &ctl(&["lock", "d"]),
        "-1 of 2 slots available, held by a, b, c",
    );
    assert_eq!(stdout_of(&ctl(&["unlock", "c"])), "");
    assert_eq!(value(), r#"{"semaphore":0,"max":2,"holders":["a","b"]}"#);
    assert_clean_failure(&ctl(&["lock", "d"]), "0 of 2 slots available, held by a, b");
    assert_eq!(stdout_of(&ctl(&["unlock", "a"])), "");
    assert_eq!(stdout_of(&ctl(&["lock", "d"])), "");
    consistent("Available: 0\nMax: 2\n\nMACHINE ID\nb\nd\n");

    // An empty holder id takes a slot until `unlock ""` removes it.
    put(r#"{"semaphore":1,"max":1,"holders":[""]}"#);
    assert_eq!(
        warnings(&ctl(&["status"])),
        [
            inconsistent(r#"a holder has an empty id (`locksmithctl unlock ""` removes it)"#),
            inconsistent("Available is 1, but Max 1 minus 1 holder is 0"),
            repair(r#"{"semaphore":0,"max":1,"holders":[""]}"#)
        ]
    );
    assert_clean_failure(&ctl(&["lock", "b"]), "0 of 1 slots available");
    assert_eq!(stdout_of(&ctl(&["unlock", ""])), "");
    assert_eq!(value(), r#"{"semaphore":1,"max":1,"holders":[]}"#);
    consistent("Available: 1\nMax: 1\n");
}

#[test]
fn locksmithctl_reboot_takes_the_lock_then_reboots() {
    use std::sync::atomic::AtomicU32;
    use update_engine::cli::locksmithctl::reboot;
    use update_engine::host::{FileHost, SlotDevice};
    use update_engine::lock::reboot_lock::{LockKind, LockRecord};
    use update_engine::{Config, Engine, Paths};

    let etcd = Etcd::start();
    let c = config(&etcd);
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("etc")).unwrap();
    std::fs::write(root.path().join("etc/machine-id"), "0123abcd\n").unwrap();
    let paths = Paths::new(root.path());
    let device = |n: &str| SlotDevice {
        path: root.path().join(n),
        partuuid: n.into(),
    };
    // Reboots are counted, never done.
    let host = FileHost {
        paths: paths.clone(),
        devices: [device("a"), device("b")],
        esp: root.path().join("esp"),
        processes: vec![],
        reboots: AtomicU32::new(0),
    };
    // update.conf's etcd, which the daemon releases the lock through after the boot.
    let mut conf = Config::default();
    conf.reboot_lock.etcd.endpoints = vec![etcd.endpoint()];
    let keys = channels::RootKeys { keys: vec![] };
    let engine = Engine {
        paths: &paths,
        config: &conf,
        root_keys: &keys,
        host: &host,
        policy: update_engine::http::Policy::CHANNEL,
    };
    let lock = connect(&c);
    lock.init().unwrap();
    assert_eq!(lock.lock("other").unwrap(), Locked::Acquired);
    let e = format!("{:#}", reboot(&engine, c.clone()).unwrap_err());
    assert!(e.contains("not rebooting") && e.contains("is full"), "{e}");
    assert_eq!(host.reboots.load(SeqCst), 0);

    lock.unlock("other").unwrap();
    let how = reboot(&engine, c.clone()).unwrap();
    assert!(how.contains("took the reboot lock"), "{how}");
    assert_eq!(host.reboots.load(SeqCst), 1);
    assert_eq!(lock.get().unwrap().holders(), ["0123abcd"]);
    let state = update_engine::state::State::load(&paths.state()).unwrap();
    assert_eq!(
        state.reboot_lock,
        Some(LockRecord {
            kind: LockKind::Etcd,
            id: "0123abcd".into(),
            acquired: true,
            uncertain: false
        })
    );
    // After the boot the daemon gives it back.
    let said = engine.release_reboot_lock().unwrap().unwrap();
    assert!(said.contains("released the reboot lock"), "{said}");
    assert!(lock.get().unwrap().holders().is_empty());
}

// ---- the FleetLock server ----

/// `update-engine lock-server` on a free port, killed on drop.
struct LockServer {
    child: Child,
    base: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl LockServer {
    fn start(etcd: &Etcd) -> LockServer {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("server.log");
        let addr = format!("127.0.0.1:{}", free_port());
        let child = Command::new(update_engine_bin())
            .args([
                "--root",
                dir.path().to_str().unwrap(),
                "lock-server",
                "--listen",
                &addr,
            ])
            .args(["--endpoint", &etcd.endpoint()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("starting update-engine lock-server");
        let mut server = LockServer {
            child,
            base: format!("http://{addr}"),
            log,
            _dir: dir,
        };
        // Up once a steady-state of an id holding nothing answers 200.
        let probe = server.client("default", "probe");
        let deadline = Instant::now() + HANG;
        while probe.steady_state().is_err() {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("lock-server exited with {status}:\n{}", server.log());
            }
            assert!(
                Instant::now() < deadline,
                "lock-server never answered:\n{}",
                server.log()
            );
            thread::sleep(Duration::from_millis(20));
        }
        server
    }

    fn client(&self, group: &str, id: &str) -> FleetLockClient {
        FleetLockClient::with_timeout(&self.base, group, id, Duration::from_secs(20)).unwrap()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for LockServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A raw HTTP/1.1 POST (to send what the FleetLock client never would); (status, body).
fn raw_post(base: &str, path: &str, headers: &str, body: &str) -> (u16, String) {
    let addr = base.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{headers}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).unwrap();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[test]
fn fleetlock_server_twenty_clients_never_more_than_two_rebooting() {
    let etcd = Etcd::start();
    let cfg = config(&etcd);
    connect(&cfg).set_max(MAX as u32).unwrap();
    let server = LockServer::start(&etcd);
    let fleet = Fleet::default();
    let reads = thread::scope(|s| {
        let observer = s.spawn(|| fleet.observe(&cfg, &[], true));
        for i in 0..NODES {
            let (fleet, server) = (&fleet, &server);
            s.spawn(move || {
                let id = format!("fleet-{i:02}");
                let client = server.client("default", &id);
                let acceptable = |e: &update_engine::lock::FleetLockError| {
                    e.is_semaphore_full() || e.status() == Some(500)
                };
                let locked = fleet.retry(|| match client.pre_reboot() {
                    Ok(()) => Some(()),
                    Err(e) if acceptable(&e) => None,
                    Err(e) => {
                        fleet.violation(format!("{id}: pre-reboot: {e}"));
                        None
                    }
                });
                if locked.is_none() {
                    return;
                }
                fleet.reboot(&id);
                let released = fleet.retry(|| match client.steady_state() {
                    Ok(()) => Some(()),
                    Err(e) if e.status() == Some(500) => None,
                    Err(e) => {
                        fleet.violation(format!("{id}: steady-state: {e}"));
                        None
                    }
                });
                if released.is_some() {
                    fleet.finished.fetch_add(1, SeqCst);
                }
            });
        }
        fleet.wait_for("all FleetLock clients", || {
            fleet.finished.load(SeqCst) == NODES
        });
        fleet.stop.store(true, SeqCst);
        observer.join().unwrap()
    });
    if !fleet.violations.lock().unwrap().is_empty() {
        eprintln!("lock-server log:\n{}", server.log());
    }
    fleet.check();
    assert!(reads > 0, "the observer never read the semaphore");
    assert_released(&cfg);
}

#[test]
fn fleetlock_server_answers_like_airlock_and_shares_the_etcd_lock() {
    let mut etcd = Etcd::start();
    let server = LockServer::start(&etcd);
    let body = r#"{"client_params":{"id":"m1","group":"default"}}"#;

    // Without the protocol header, or with a bad group: 400 invalid_client_identity.
    let (status, error) = raw_post(&server.base, "/v1/pre-reboot", "", body);
    assert_eq!(status, 400, "{error}");
    assert!(
        error.contains(r#""kind":"invalid_client_identity""#),
        "{error}"
    );
    let bad_group = r#"{"client_params":{"id":"m1","group":"no/slash"}}"#;
    let (status, error) = raw_post(
        &server.base,
        "/v1/pre-reboot",
        "fleet-lock-protocol: true\r\n",
        bad_group,
    );
    assert_eq!(status, 400, "{error}");
    assert!(error.contains("invalid_client_identity"), "{error}");
    let (status, _) = raw_post(
        &server.base,
        "/v1/pre-reboot",
        "fleet-lock-protocol: true\r\n",
        body,
    );
    assert_eq!(status, 200);

    // Recursive lock, and unlock when not held: 200.
    let m1 = server.client("default", "m1");
    m1.pre_reboot().unwrap();
    server.client("default", "m9").steady_state().unwrap();

    // One semaphore for FleetLock and etcd-lock clients: "default" is locksmith's key.
    let lock = connect(&config(&etcd));
    assert_eq!(lock.get().unwrap().holders(), ["m1"]);
    let e = server.client("default", "m2").pre_reboot().unwrap_err();
    assert!(e.is_semaphore_full(), "{e}");
    assert_eq!(e.status(), Some(409));
    m1.steady_state().unwrap();
    assert_eq!(lock.lock("etcd-node").unwrap(), Locked::Acquired);
    assert!(server
        .client("default", "m2")
        .pre_reboot()
        .unwrap_err()
        .is_semaphore_full());
    lock.unlock("etcd-node").unwrap();
    server.client("default", "m2").pre_reboot().unwrap();
    assert!(matches!(
        lock.lock("etcd-node"),
        Err(EtcdError::Full { .. })
    ));

    // Another group is locksmith's group key, created with one slot.
    server.client("workers", "w1").pre_reboot().unwrap();
    assert_eq!(
        etcd.get(&semaphore_key(Some("workers"))).as_deref(),
        Some(r#"{"semaphore":0,"max":1,"holders":["w1"]}"#)
    );

    // etcd down: 500 with a JSON error, and the server stays up for when it is back.
    etcd.kill();
    let e = server.client("default", "m2").steady_state().unwrap_err();
    assert_eq!(
        (e.status(), e.kind().as_str()),
        (Some(500), "failed_lock"),
        "{e}"
    );
    assert!(e.to_string().contains("unreachable"), "{e}");
    etcd.restart();
    server.client("default", "m2").steady_state().unwrap();
    assert_eq!(lock.get().unwrap().holders().len(), 0);
}

#[test]
fn fleetlock_server_and_leased_holders_go_by_the_holders_of_a_hand_edited_semaphore() {
    let etcd = Etcd::start();
    let server = LockServer::start(&etcd);
    let put = |v: &str| {
        let o = etcd.etcdctl(&["put", DEFAULT_KEY, v]);
        assert!(o.status.success(), "{}", text(&o));
    };
    let value = || etcd.get(DEFAULT_KEY).unwrap_or_default();

    // One slot, counted 5 times free, held by a ghost listed twice.
    let stored = r#"{"semaphore":5,"max":1,"holders":["ghost","ghost"]}"#;
    put(stored);
    let e = server.client("default", "m1").pre_reboot().unwrap_err();
    assert!(e.is_semaphore_full(), "{e}");
    assert!(e.to_string().contains("0 of 1 slots available"), "{e}");
    assert_eq!(value(), stored);
    server.client("default", "ghost").steady_state().unwrap();
    assert_eq!(value(), r#"{"semaphore":1,"max":1,"holders":[]}"#);
    server.client("default", "m1").pre_reboot().unwrap();
    assert!(server
        .client("default", "m2")
        .pre_reboot()
        .unwrap_err()
        .is_semaphore_full());
    server.client("default", "m1").steady_state().unwrap();
    assert_eq!(value(), r#"{"semaphore":1,"max":1,"holders":[]}"#);

    // A leased holder listed twice renewing its lease repairs the value on the way.
    put(r#"{"semaphore":4,"max":2,"holders":["k","k"]}"#);
    let leased = connect(&EtcdConfig {
        holder_ttl_secs: Some(60),
        ..config(&etcd)
    });
    assert_eq!(leased.lock("k").unwrap(), Locked::AlreadyHeld);
    assert_eq!(value(), r#"{"semaphore":1,"max":2,"holders":["k"]}"#);
    let repaired = Semaphore::from_json(value().as_bytes()).unwrap();
    assert!(repaired.problems().is_empty(), "{:?}", repaired.problems());
}
