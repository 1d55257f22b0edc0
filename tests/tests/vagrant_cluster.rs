//! The Container Linux walkthrough with the real Vagrant (issue 7): the container host's libvirt
//! box and the cluster folder the build writes, `vagrant up` of three machines under TCG
//! (vagrant-libvirt; the Vagrantfile picks TCG itself where KVM is nested kvm-pvm, as here),
//! then an update through the channel.
//!
//! - The build has the update engine with `REBOOT_STRATEGY=etcd-lock` and a *dead* update
//!   server: the machines only find the repository because the cluster's user-data hands them
//!   the one of `config.rb` (`$update_server`, this host on the private network).
//! - Vagrant logs in as `core` with its insecure key (the box's OEM configuration), sets the
//!   hostnames and the private addresses 172.17.8.101-103 as cloud-config (the CoreOS guest
//!   plugin), and drops each machine's user-data: an etcd static cluster of the three.
//! - Checked over `vagrant ssh`: the login banner, `etcdctl member list` (three members),
//!   `etcdctl endpoint health --cluster`, `locksmithctl status`.
//! - 1.0.1 is published to `alpha`: every machine installs it and reboots into it. That no two
//!   machines ever held the reboot lock at once is read from etcd's own history of the
//!   semaphore (every revision of the key); that no two were down at once, from their journals
//!   (the last entry before each reboot and the first after it).
//!
//! Everything is destroyed afterwards, also on failure (which prints each machine's console
//! log tail and its engine's status first). About 20 minutes on 2 cores.

use std::thread::sleep;
use std::time::{Duration, Instant};

use tests::libvirt::Libvirt;
use tests::repo::ChannelRepo;
use tests::vagrant::Project;
use tests::{pool_dir, text, Scratch};

const NODES: [&str; 3] = ["core-01", "core-02", "core-03"];
const BOX: &str = "container-host-alpha";
const SEMAPHORE: &str = "coreos.com/updateengine/rebootlock/semaphore";
/// `vagrant up` of three machines under TCG on two cores: about 10 minutes.
const UP_TIMEOUT_SECS: u64 = 1800;
/// From publishing 1.0.1 until the three machines run it (three reboots, one at a time).
const UPDATE_TIMEOUT: Duration = Duration::from_secs(1800);

/// One reboot of a machine, from its journal: the last entry of the boot before, the first of
/// the boot after (seconds since the epoch).
#[derive(Debug, Clone, Copy)]
struct Downtime {
    from: f64,
    to: f64,
}

fn parse_downtime(node: &str, out: &str) -> Downtime {
    let mut nums = out.split_whitespace().map(|w| {
        w.parse::<f64>()
            .unwrap_or_else(|_| panic!("{node}: journal times: {out:?}"))
    });
    let (from, to) = (nums.next().unwrap(), nums.next().unwrap());
    assert!(
        from < to,
        "{node}: the boot before ends after the boot after: {out}"
    );
    Downtime { from, to }
}

/// The holders of every value the semaphore had, from `etcdctl watch --rev=1` (PUT, key, value).
fn semaphore_history(watch: &str) -> Vec<Vec<String>> {
    let lines: Vec<&str> = watch.lines().collect();
    let mut history = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i] == "PUT" && lines.get(i + 1) == Some(&SEMAPHORE) {
            let value: serde_json::Value = serde_json::from_str(lines[i + 2])
                .unwrap_or_else(|e| panic!("semaphore value {:?}: {e}", lines[i + 2]));
            let holders = value["holders"]
                .as_array()
                .map(|a| a.iter().map(|h| h.as_str().unwrap().to_string()).collect())
                .unwrap_or_default();
            history.push(holders);
            i += 3;
        } else {
            i += 1;
        }
    }
    history
}

#[test]
fn vagrant_up_three_nodes_form_etcd_and_update_one_at_a_time() {
    let s = Scratch::new("container-host");
    let w = s.path();
    s.link_target();
    let repo = ChannelRepo::init(w);

    // The image's own server is a dead address (TEST-NET-1): only the user-data's works.
    s.edit_spec(
        "container-host",
        "outputs: [raw]\n",
        "outputs: [raw, vagrant-libvirt]\n",
    );
    s.edit_spec(
        "container-host",
        "  reboot_strategy: best-effort\n",
        "  server: http://192.0.2.1:9/\n  reboot_strategy: etcd-lock\n  root_keys: keys/root.json\n",
    );
    let o = s.build("container-host", "v100", &pool_dir());
    assert!(o.status.success(), "{}", text(&o));
    s.edit_spec("container-host", "version: 1.0.0", "version: 1.0.1");
    let o = s.build("container-host", "v101", &pool_dir());
    assert!(o.status.success(), "{}", text(&o));
    repo.publish("alpha", &w.join("v100"));

    // The repository, for the machines: this host on the private network (172.17.8.1), which
    // exists only once Vagrant made it, so the server listens on every address.
    let port = {
        let l = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let _server = repo.serve(&format!("0.0.0.0:{port}"));

    // The cluster folder as a user edits it: config.rb's update server, and a shorter check
    // interval than the hour of the default in the user-data.
    let dir = w.join("v100");
    let config = std::fs::read_to_string(dir.join("config.rb")).unwrap();
    let default_server = "$update_server = \"http://172.17.8.1:8080/\"";
    assert!(config.contains(default_server), "{config}");
    assert!(config.contains("$num_instances = 3\n"), "{config}");
    std::fs::write(
        dir.join("config.rb"),
        config.replace(
            default_server,
            &format!("$update_server = \"http://172.17.8.1:{port}/\""),
        ),
    )
    .unwrap();
    let mut user_data = std::fs::read_to_string(dir.join("user-data")).unwrap();
    user_data.push_str(
        "write_files:\n  - path: /etc/update-engine/update.conf\n    content: |\n      CHECK_INTERVAL=20\n",
    );
    std::fs::write(dir.join("user-data"), user_data).unwrap();

    let _libvirt = Libvirt::up();
    let cluster = Project {
        dir: dir.clone(),
        home: w.join("vagrant.d"),
        nodes: NODES.iter().map(|n| n.to_string()).collect(),
        box_name: BOX.into(),
    };
    cluster.add_box(&dir.join("container-host_1.0.0_vagrant-libvirt.box"));
    let start = Instant::now();
    let o = cluster.vagrant(UP_TIMEOUT_SECS, &["up", "--provider=libvirt"]);
    assert!(o.status.success(), "vagrant up:\n{}", text(&o));
    eprintln!("vagrant up: {} s", start.elapsed().as_secs());

    // The walkthrough's checks.
    let machine_ids: Vec<String> = NODES
        .iter()
        .map(|node| {
            let out = cluster.must(node, "hostname; cat /run/motd.d/10-banner /etc/machine-id");
            let lines: Vec<&str> = out.lines().collect();
            assert_eq!(lines.first(), Some(node), "{out}");
            assert_eq!(lines.get(1), Some(&"Container Host alpha (1.0.0)"), "{out}");
            lines[2].trim().to_string()
        })
        .collect();
    // The greeting of a login (pam_motd; the shell then reads the end of its input).
    let o = cluster.vagrant(180, &["ssh", "core-01"]);
    assert!(
        text(&o).contains("Container Host alpha (1.0.0)"),
        "no banner at login:\n{}",
        text(&o)
    );
    let members = cluster.must("core-01", "etcdctl member list");
    for (i, node) in NODES.iter().enumerate() {
        let line = format!(
            "started, {node}, http://172.17.8.{0}:2380, http://172.17.8.{0}:2379",
            101 + i
        );
        assert!(members.contains(&line), "{line:?} not in:\n{members}");
    }
    assert_eq!(members.lines().count(), 3, "{members}");
    let health = cluster.must("core-02", "etcdctl endpoint health --cluster 2>&1");
    assert_eq!(health.matches(" is healthy").count(), 3, "{health}");
    let status = cluster.must("core-03", "locksmithctl status");
    assert!(
        status.contains("Available: 1") && status.contains("Max: 1"),
        "{status}"
    );

    // 1.0.1 into the channel: each machine installs it and reboots when it holds the lock.
    repo.publish("alpha", &w.join("v101"));
    let start = Instant::now();
    let mut pending: Vec<&str> = NODES.to_vec();
    while !pending.is_empty() {
        assert!(
            start.elapsed() < UPDATE_TIMEOUT,
            "still not on 1.0.1 after {} s: {pending:?}",
            UPDATE_TIMEOUT.as_secs()
        );
        sleep(Duration::from_secs(20));
        pending.retain(|node| {
            cluster
                .ssh(node, "grep -x VERSION_ID=1.0.1 /usr/lib/os-release")
                .is_none()
        });
    }
    eprintln!("update of 3 machines: {} s", start.elapsed().as_secs());

    // Every value the semaphore ever had: never two holders, never one holder straight after
    // another (each gave it back first), every machine once, and free at the end.
    let watch = cluster.must(
        "core-01",
        &format!("timeout 10 etcdctl watch --rev=1 {SEMAPHORE}; true"),
    );
    let history = semaphore_history(&watch);
    assert!(!history.is_empty(), "no semaphore history:\n{watch}");
    let mut held_by = Vec::new();
    for pair in history.windows(2) {
        assert!(pair[1].len() <= 1, "two holders at once: {history:?}");
        if !pair[0].is_empty() && !pair[1].is_empty() {
            assert_eq!(
                pair[0], pair[1],
                "the lock changed hands unreleased: {history:?}"
            );
        }
        if pair[1].len() == 1 && pair[0].is_empty() {
            held_by.push(pair[1][0].clone());
        }
    }
    assert_eq!(
        history.last().unwrap(),
        &Vec::<String>::new(),
        "{history:?}"
    );
    let mut holders = held_by.clone();
    holders.sort();
    let mut ids = machine_ids.clone();
    ids.sort();
    assert_eq!(
        holders, ids,
        "each machine takes the lock once: {held_by:?}"
    );

    // Their downtimes, from the journals: pairwise disjoint, and each after the banner moved on.
    let mut downtimes = Vec::new();
    for node in NODES {
        let out = cluster.must(
            node,
            "journalctl -q -b -1 -n 1 -o short-unix --no-pager | cut -d' ' -f1; \
             journalctl -q -b 0 -o short-unix --no-pager | head -n 1 | cut -d' ' -f1",
        );
        downtimes.push((node, parse_downtime(node, &out)));
        let banner = cluster.must(node, "cat /run/motd.d/10-banner");
        assert_eq!(banner.trim(), "Container Host alpha (1.0.1)");
    }
    for (i, (a, da)) in downtimes.iter().enumerate() {
        for (b, db) in &downtimes[i + 1..] {
            assert!(
                da.to < db.from || db.to < da.from,
                "{a} and {b} were down at the same time: {downtimes:?}"
            );
        }
    }
    eprintln!("downtimes: {downtimes:?}");
}

#[test]
fn semaphore_history_reads_etcdctl_watch() {
    let watch = format!(
        "PUT\n{SEMAPHORE}\n{{\"semaphore\":1,\"max\":1,\"holders\":null}}\n\
         PUT\n{SEMAPHORE}\n{{\"semaphore\":0,\"max\":1,\"holders\":[\"a\"]}}\n\
         PUT\nother/key\n{{}}\n\
         PUT\n{SEMAPHORE}\n{{\"semaphore\":1,\"max\":1,\"holders\":[]}}\n"
    );
    assert_eq!(
        semaphore_history(&watch),
        [vec![], vec!["a".to_string()], vec![]]
    );
    let d = parse_downtime("n", "100.5\n160.25\n");
    assert_eq!((d.from, d.to), (100.5, 160.25));
}
