//! The Container Linux units a cloud-config may name that this OS does not ship as such: pure
//! data, with the reason written once for both readers. `validate-config` (off the machine) warns
//! from this table alone; the agent (`coreos-cloudinit`) looks at the machine's unit files first
//! and uses the table for the reason when a unit is missing.
//!
//! Two fates: a unit is [`Fate::Absent`] (fleet, flannel, rkt, locksmithd, ...: a command for it
//! is skipped with a warning, the rest of the config still applies), or [`Fate::Renamed`] (etcd2
//! and etcd-member: this OS's etcd 3 unit is Debian's `etcd.service`, which also carries
//! `Alias=etcd2.service`; the agent applies commands and drop-ins to it). Container Linux's own
//! `etcd.service` was etcd 0.4; here that name is etcd 3, so it is not listed.

/// What became of a Container Linux unit here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Not shipped; the text says why, and what to use instead.
    Absent(&'static str),
    /// Shipped under this name.
    Renamed(&'static str),
}

/// A Container Linux unit name and its fate on this OS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContainerLinuxUnit {
    /// A unit file name; templates as `name@.service`.
    pub name: &'static str,
    pub fate: Fate,
}

const FLEET: &str = "fleet was retired in 2018; schedule containers with Kubernetes, or run each \
                     container as a systemd unit with docker";
const FLANNEL: &str = "flanneld is not shipped; run flannel as a container (a Kubernetes \
                       DaemonSet) or use docker's own networks";
const RKT: &str = "rkt is not shipped (the project ended in 2020); run containers with docker";
const LOCKSMITHD: &str = "the update engine holds the reboot lock itself; set \
                          coreos.update.reboot-strategy, and coreos.locksmith for the etcd \
                          lock's endpoint, group and reboot window";
const NTPD: &str = "ntpd is not shipped; systemd-timesyncd keeps the time (servers in \
                    /etc/systemd/timesyncd.conf)";
const METADATA: &str = "coreos-metadata is not shipped; coreos-cloudinit puts the machine's \
                        addresses in /etc/environment (COREOS_PRIVATE_IPV4, ...) and installs \
                        the platform's SSH keys";
/// This OS's etcd server unit (Debian's `etcd-server` package).
pub const ETCD_UNIT: &str = "etcd.service";

/// The table, by unit name.
pub const CONTAINER_LINUX_UNITS: &[ContainerLinuxUnit] = &[
    absent("fleet.service", FLEET),
    absent("fleet.socket", FLEET),
    absent("flanneld.service", FLANNEL),
    absent("flannel-docker-opts.service", FLANNEL),
    absent("rkt-api.service", RKT),
    absent("rkt-gc.service", RKT),
    absent("rkt-gc.timer", RKT),
    absent("rkt-metadata.service", RKT),
    absent("rkt-metadata.socket", RKT),
    absent("locksmithd.service", LOCKSMITHD),
    absent("ntpd.service", NTPD),
    absent("coreos-metadata.service", METADATA),
    absent("coreos-metadata-sshkeys@.service", METADATA),
    renamed("etcd2.service", ETCD_UNIT),
    renamed("etcd-member.service", ETCD_UNIT),
];

const fn absent(name: &'static str, why: &'static str) -> ContainerLinuxUnit {
    ContainerLinuxUnit {
        name,
        fate: Fate::Absent(why),
    }
}

const fn renamed(name: &'static str, to: &'static str) -> ContainerLinuxUnit {
    ContainerLinuxUnit {
        name,
        fate: Fate::Renamed(to),
    }
}

/// The fate of `unit` (an instance `foo@bar.service` is looked up as its template), if the
/// table lists it.
pub fn container_linux_unit(unit: &str) -> Option<Fate> {
    let template = template_of(unit);
    CONTAINER_LINUX_UNITS
        .iter()
        .find(|u| u.name == unit || Some(u.name) == template.as_deref())
        .map(|u| u.fate)
}

/// `"fleet.service: not part of this OS (fleet was retired ...)"` for a unit the table lists as
/// absent.
pub fn not_shipped(unit: &str) -> Option<String> {
    match container_linux_unit(unit)? {
        Fate::Absent(why) => Some(format!("{unit}: not part of this OS ({why})")),
        Fate::Renamed(_) => None,
    }
}

/// The template of an instance name: `foo@bar.service` → `foo@.service`; `None` for a plain
/// name or a template itself.
pub fn template_of(unit: &str) -> Option<String> {
    let (prefix, rest) = unit.split_once('@')?;
    let dot = rest.rfind('.')?;
    (dot > 0).then(|| format!("{prefix}@{}", &rest[dot..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups() {
        assert_eq!(
            not_shipped("fleet.service").as_deref(),
            Some(
                "fleet.service: not part of this OS (fleet was retired in 2018; schedule \
                 containers with Kubernetes, or run each container as a systemd unit with docker)"
            )
        );
        assert!(not_shipped("locksmithd.service")
            .unwrap()
            .contains("set coreos.update.reboot-strategy"));
        assert!(not_shipped("rkt-gc.timer").unwrap().contains("rkt"));
        assert!(not_shipped("coreos-metadata-sshkeys@core.service").is_some());
        assert_eq!(
            container_linux_unit("etcd2.service"),
            Some(Fate::Renamed("etcd.service"))
        );
        assert_eq!(not_shipped("etcd2.service"), None, "renamed, not absent");
        for shipped in [
            "etcd.service",
            "docker.service",
            "update-engine.service",
            "x@y.service",
        ] {
            assert_eq!(container_linux_unit(shipped), None, "{shipped}");
        }
    }

    #[test]
    fn table_is_unique_and_well_formed() {
        for (i, u) in CONTAINER_LINUX_UNITS.iter().enumerate() {
            assert!(
                CONTAINER_LINUX_UNITS[i + 1..]
                    .iter()
                    .all(|o| o.name != u.name),
                "{}",
                u.name
            );
            assert!(u.name.contains('.') && !u.name.contains('/'), "{}", u.name);
            if let Fate::Absent(why) = u.fate {
                assert!(!why.is_empty() && !why.contains('\n'), "{}", u.name);
            }
        }
    }

    #[test]
    fn templates() {
        assert_eq!(
            template_of("getty@tty1.service").as_deref(),
            Some("getty@.service")
        );
        assert_eq!(template_of("a@.service"), None);
        assert_eq!(template_of("plain.service"), None);
    }
}
