//! coreos/coreos-vagrant as the Container Linux books had their readers use it (issue 15): its
//! own `Vagrantfile` and `user-data.sample` (tests/data/coreos-vagrant, unchanged but for the
//! discovery line, which becomes a static cluster of one), our container-host box added under
//! the name that Vagrantfile asks for (`coreos-alpha`), and the real `vagrant up` of one machine
//! through vagrant-libvirt: Vagrant's own file and shell provisioners drop the user-data
//! (`mv /tmp/vagrantfile-user-data /var/lib/coreos-vagrant/`), the box's OEM configuration
//! applies it as it appears.
//!
//! Checked over `vagrant ssh`, as the book's walkthrough goes: the login banner, `etcdctl member
//! list`, `locksmithctl set-max 2` (`Old: 1`, `New: 2`) and the semaphore in etcd; and what the
//! sample asks for beyond that: docker's API on `docker-tcp.socket` (docker socket-activated),
//! and a clear word for the units this OS does not ship (fleet, flanneld) while the rest applies.

use tests::libvirt::Libvirt;
use tests::vagrant::Project;
use tests::{repo_root, shared_variant_build};

/// The box name coreos-vagrant's Vagrantfile asks for (`"coreos-%s" % $update_channel`).
const BOX: &str = "coreos-alpha";
const NODE: &str = "core-01";
/// `vagrant up` of one container host under TCG, provisioners included.
const UP_TIMEOUT_SECS: u64 = 1200;

/// `user-data.sample` with its (commented) discovery line replaced by a static cluster of this
/// one machine: etcd's name is the hostname Vagrant gives the machine.
fn user_data(sample: &str) -> String {
    let discovery = "    #discovery: https://discovery.etcd.io/<token>\n";
    assert!(sample.contains(discovery), "{sample}");
    sample.replace(
        discovery,
        &format!("    initial-cluster: {NODE}=http://$private_ipv4:2380\n"),
    )
}

#[test]
fn coreos_vagrant_vagrantfile_and_user_data_sample_work_unchanged() {
    let out = shared_variant_build(
        "container-host",
        "container-host-vagrant",
        "outputs: [raw]",
        "outputs: [vagrant-libvirt]",
    );
    let upstream = repo_root().join("tests/data/coreos-vagrant");
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("coreos-vagrant");
    std::fs::create_dir(&dir).unwrap();
    std::fs::copy(upstream.join("Vagrantfile"), dir.join("Vagrantfile")).unwrap();
    let sample = std::fs::read_to_string(upstream.join("user-data.sample")).unwrap();
    std::fs::write(dir.join("user-data"), user_data(&sample)).unwrap();

    let _libvirt = Libvirt::up();
    let project = Project {
        dir,
        home: work.path().join("vagrant.d"),
        nodes: vec![NODE.into()],
        box_name: BOX.into(),
    };
    project.add_box(&out.join("container-host_1.0.0_vagrant-libvirt.box"));
    let o = project.vagrant(UP_TIMEOUT_SECS, &["up", "--provider=libvirt"]);
    let up = tests::text(&o);
    assert!(o.status.success(), "vagrant up:\n{up}");
    assert!(up.contains("Running provisioner: shell"), "{up}");

    // The user-data arrived where the OEM configuration watches, and was applied once.
    let agent = project.must(
        NODE,
        "sudo journalctl -b --no-pager -o cat -u 'user-cloudinit@*' | grep coreos-cloudinit",
    );
    assert!(
        agent.contains("/var/lib/coreos-vagrant/vagrantfile-user-data"),
        "{agent}"
    );
    // fleet and flanneld: named, with why they are absent; their starts skipped, the rest
    // applied. flannel's options are written as coreos-cloudinit wrote them ($public_ipv4 is
    // what Vagrant's CoreOS plugin put in /etc/environment: no public network, 127.0.0.1).
    for unit in ["fleet.service", "flanneld.service"] {
        assert!(
            agent.contains(&format!("warning: {unit}: not part of this OS (")),
            "{unit}: {agent}"
        );
    }
    assert_eq!(agent.matches("; start skipped").count(), 2, "{agent}");
    assert_eq!(
        project.must(NODE, "cat /run/flannel/options.env"),
        "FLANNELD_IFACE=127.0.0.1"
    );

    // The book: the banner at login, etcd, the reboot lock.
    let login = project.vagrant(180, &["ssh", NODE]);
    assert!(
        tests::text(&login).contains("Container Host alpha (1.0.0)"),
        "no banner at login:\n{}",
        tests::text(&login)
    );
    let members = wait_for(&project, "etcdctl member list", |s| s.contains("started"));
    assert!(
        members.contains(&format!(
            "started, {NODE}, http://172.17.8.101:2380, http://127.0.0.1:2379"
        )),
        "{members}"
    );
    assert_eq!(members.lines().count(), 1, "{members}");
    let set_max = project.must(NODE, "locksmithctl set-max 2");
    assert_eq!(set_max, "Old: 1\nNew: 2\n");
    let status = project.must(NODE, "locksmithctl status");
    assert!(
        status.contains("Available: 2") && status.contains("Max: 2"),
        "{status}"
    );
    let semaphore = project.must(
        NODE,
        "etcdctl get --print-value-only coreos.com/updateengine/rebootlock/semaphore",
    );
    // As locksmith made it (no holders: Go's nil slice), with the new maximum.
    assert_eq!(
        semaphore.trim(),
        r#"{"semaphore":2,"max":2,"holders":null}"#
    );

    // docker-tcp.socket started (docker itself waits for its sockets), and it serves the API.
    assert_eq!(
        project
            .must(NODE, "systemctl is-active docker-tcp.socket")
            .trim(),
        "active"
    );
    let ping = wait_for(&project, "curl -s http://127.0.0.1:2375/_ping", |s| {
        s == "OK"
    });
    assert_eq!(ping, "OK");
    assert_eq!(
        project.must(NODE, "systemctl is-active docker").trim(),
        "active"
    );
}

/// Polls `cmd` on the machine until its trimmed output satisfies `ok` (about 5 minutes).
fn wait_for(project: &Project, cmd: &str, ok: impl Fn(&str) -> bool) -> String {
    let mut last = String::new();
    for _ in 0..60 {
        if let Some(out) = project.ssh(NODE, cmd) {
            let out = out.trim().to_string();
            if ok(&out) {
                return out;
            }
            last = out;
        }
        std::thread::sleep(std::time::Duration::from_secs(5));
    }
    panic!("`{cmd}` still says {last:?}");
}
