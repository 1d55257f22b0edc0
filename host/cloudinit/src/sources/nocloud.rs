//! cloud-init's NoCloud seed: a filesystem (iso9660 or vfat) labelled `cidata` (any case)
//! holding `user-data` and `meta-data` at its root, optionally `network-config` and
//! `vendor-data` (cloud-init's "NoCloud" datasource documentation). `cloud-localds` and
//! `genisoimage -V cidata` make one; libvirt, virt-install (`--cloud-init`) and Proxmox attach
//! one as a CD-ROM.
//!
//! Found, mounted and read like the config drive ([`drive`]), on `/run/coreos-cloudinit/nocloud`.
//! `user-data` is the agent's user-data as from any source (`#cloud-config`, a `#!` script,
//! gzip). `meta-data` is YAML, of which the agent reads ([`parse_meta_data`]):
//! - `local-hostname`: the hostname (when the config has none);
//! - `public-keys`: SSH keys for `core`: one string (a key a line), a list of keys, or a map of
//!   name → key or list of keys, as cloud-init's `normalize_pubkey_data` takes them;
//! - `instance-id`: printed.
//!
//! Other keys are ignored. A meta-data that is not YAML, or not a mapping, is a warning naming the
//! file, and the user-data still applies. `network-config` and `vendor-data` are not supported:
//! one line each says so when the seed has them (the image's networkd configures every NIC with
//! DHCP).

use std::path::Path;

use cloudconfig::yaml::{self, Node, Value};

use super::drive;
use super::{Context, Found, SourceError};
use crate::metadata::Metadata;

/// The filesystem label of a NoCloud seed (cloud-init also accepts `CIDATA`; any case here).
pub const LABEL: &str = "cidata";
/// Where the seed is mounted, under the root.
pub const MOUNT_DIR: &str = "run/coreos-cloudinit/nocloud";
pub const USER_DATA: &str = "user-data";
pub const META_DATA: &str = "meta-data";
pub const NETWORK_CONFIG: &str = "network-config";
pub const VENDOR_DATA: &str = "vendor-data";

/// The seed's files the agent does not apply, and what is said about each when present.
const IGNORED: [(&str, &str); 2] = [
    (
        NETWORK_CONFIG,
        "ignored: not supported (networkd configures every NIC with DHCP)",
    ),
    (VENDOR_DATA, "ignored: not supported"),
];

/// Mounts, reads and unmounts the NoCloud seed, if there is one.
pub fn probe(ctx: &Context) -> Result<Option<Found>, SourceError> {
    let Some(device) = drive::find_device(ctx.root, LABEL) else {
        return Ok(None);
    };
    let (user_data, metadata) = drive::read_mounted(ctx, &device, MOUNT_DIR, read_mounted)?;
    Ok(Some(Found {
        source: format!("NoCloud seed {}", device.display()),
        user_data,
        metadata,
    }))
}

/// User-data and metadata of a mounted seed; either file may be missing.
pub fn read_mounted(dir: &Path) -> Result<(Vec<u8>, Metadata), SourceError> {
    let user_data = drive::read_file(dir, USER_DATA)?.unwrap_or_default();
    let mut metadata = match drive::read_file(dir, META_DATA)? {
        Some(yaml) => parse_meta_data(&yaml),
        None => Metadata::default(),
    };
    for (file, what) in IGNORED {
        if dir.join(file).exists() {
            metadata.notes.push(format!("{file} {what}"));
        }
    }
    Ok((user_data, metadata))
}

/// `meta-data` (module docs); what cannot be read of it goes to the warnings, never an error.
pub fn parse_meta_data(bytes: &[u8]) -> Metadata {
    let mut meta = Metadata::default();
    let ignored = |why: String| format!("{META_DATA} {why}: ignored, the user-data still applies");
    let top = match std::str::from_utf8(bytes).map(yaml::load) {
        Err(e) => {
            meta.warnings
                .push(ignored(format!("is not UTF-8 text ({e})")));
            return meta;
        }
        Ok(Err(e)) => {
            meta.warnings
                .push(ignored(format!("is not valid YAML ({e})")));
            return meta;
        }
        Ok(Ok(None)) => return meta,
        Ok(Ok(Some(top))) => top,
    };
    match top.value {
        Value::Map(_) => {}
        Value::Null => return meta,
        _ => {
            meta.warnings.push(ignored("is not a YAML mapping".into()));
            return meta;
        }
    }
    // The YAML loader spells keys with `_` for `-` (go-yaml v1's normalisation).
    if let Some(id) = text_of(&top, "instance_id", &mut meta.warnings) {
        meta.notes.push(format!("instance-id {id}"));
    }
    meta.hostname = text_of(&top, "local_hostname", &mut meta.warnings);
    if let Some(keys) = top.get("public_keys") {
        meta.ssh_public_keys = public_keys(keys, &mut meta.warnings);
    }
    meta
}

/// The trimmed text of the scalar `key` of `top`, unless absent, null or empty; another value
/// is a warning.
fn text_of(top: &Node, key: &str, warnings: &mut Vec<String>) -> Option<String> {
    let node = top.get(key)?;
    match node.scalar() {
        Some(s) => Some(s.text().trim().to_string()).filter(|t| !t.is_empty()),
        None => {
            warnings.push(format!(
                "{META_DATA} line {}: {} is not a string: ignored",
                node.line,
                key.replace('_', "-")
            ));
            None
        }
    }
}

/// `public-keys`: the keys of a string (one a line), of a list, or of a map's values (each a
/// string or a list), in document order; an entry that is neither is a warning and skipped.
fn public_keys(node: &Node, warnings: &mut Vec<String>) -> Vec<String> {
    let entries: Vec<&Node> = match &node.value {
        Value::Map(entries) => entries.iter().flat_map(|e| items(&e.value)).collect(),
        _ => items(node),
    };
    let mut keys = Vec::new();
    for n in entries {
        match &n.value {
            Value::Null => {}
            Value::Scalar(s) => keys.extend(
                s.text()
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(str::to_string),
            ),
            _ => warnings.push(not_a_key(n)),
        }
    }
    keys
}

/// A list's items, or the node itself.
fn items(node: &Node) -> Vec<&Node> {
    match &node.value {
        Value::Seq(items) => items.iter().map(|i| &**i).collect(),
        _ => vec![node],
    }
}

fn not_a_key(node: &Node) -> String {
    format!(
        "{META_DATA} line {}: public-keys: not a key (a string): skipped",
        node.line
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(v: &[&str]) -> Vec<String> {
        v.iter().map(|k| k.to_string()).collect()
    }

    #[test]
    fn meta_data_yaml() {
        struct Case {
            name: &'static str,
            yaml: &'static str,
            want: Metadata,
        }
        let cases = [
            Case {
                name: "cloud-localds",
                yaml: "instance-id: iid-local01\nlocal-hostname: cloudimg\n",
                want: Metadata {
                    hostname: Some("cloudimg".into()),
                    notes: keys(&["instance-id iid-local01"]),
                    ..Metadata::default()
                },
            },
            Case {
                name: "keys as a list",
                yaml: "instance-id: i-1\npublic-keys:\n  - ssh-ed25519 AAAA a\n  - \"ssh-rsa BBBB b\"\n",
                want: Metadata {
                    ssh_public_keys: keys(&["ssh-ed25519 AAAA a", "ssh-rsa BBBB b"]),
                    notes: keys(&["instance-id i-1"]),
                    ..Metadata::default()
                },
            },
            Case {
                name: "keys as a string, one a line",
                yaml: "public-keys: |\n  ssh-ed25519 AAAA a\n\n  ssh-rsa BBBB b\n",
                want: Metadata {
                    ssh_public_keys: keys(&["ssh-ed25519 AAAA a", "ssh-rsa BBBB b"]),
                    ..Metadata::default()
                },
            },
            Case {
                name: "keys as a map, in document order, each a key or a list",
                yaml: "local-hostname: n1.example.com\npublic-keys:\n  zeta: ssh-ed25519 ZZZZ z\n  alpha:\n    - ssh-rsa AAAA a1\n    - ssh-rsa AAAA a2\n  empty:\n",
                want: Metadata {
                    hostname: Some("n1.example.com".into()),
                    ssh_public_keys: keys(&[
                        "ssh-ed25519 ZZZZ z",
                        "ssh-rsa AAAA a1",
                        "ssh-rsa AAAA a2",
                    ]),
                    ..Metadata::default()
                },
            },
            Case {
                name: "what is not a key is skipped, with a warning",
                yaml: "public-keys:\n  - ssh-rsa AAAA a\n  - {nested: map}\n  - [a, list]\n  -\n",
                want: Metadata {
                    ssh_public_keys: keys(&["ssh-rsa AAAA a"]),
                    warnings: keys(&[
                        "meta-data line 3: public-keys: not a key (a string): skipped",
                        "meta-data line 4: public-keys: not a key (a string): skipped",
                    ]),
                    ..Metadata::default()
                },
            },
            Case {
                name: "a hostname that is not a string",
                yaml: "local-hostname: [a, b]\ninstance-id: ''\n",
                want: Metadata {
                    warnings: keys(&["meta-data line 1: local-hostname is not a string: ignored"]),
                    ..Metadata::default()
                },
            },
            Case {
                name: "other keys are ignored",
                yaml: "dsmode: local\nnetwork-interfaces: |\n  auto eth0\n",
                want: Metadata::default(),
            },
            Case {
                name: "empty",
                yaml: "",
                want: Metadata::default(),
            },
            Case {
                name: "comments only",
                yaml: "# nothing\n",
                want: Metadata::default(),
            },
            Case {
                name: "not YAML",
                yaml: "instance-id: a\n  local-hostname: b\n",
                want: Metadata {
                    warnings: keys(&[
                        "meta-data is not valid YAML (line 2: mapping values are not allowed \
                         in this context): ignored, the user-data still applies",
                    ]),
                    ..Metadata::default()
                },
            },
            Case {
                name: "not a mapping",
                yaml: "- instance-id\n",
                want: Metadata {
                    warnings: keys(&[
                        "meta-data is not a YAML mapping: ignored, the user-data still applies",
                    ]),
                    ..Metadata::default()
                },
            },
        ];
        for c in cases {
            assert_eq!(parse_meta_data(c.yaml.as_bytes()), c.want, "{}", c.name);
        }
        let m = parse_meta_data(b"local-hostname: \xff\n");
        assert_eq!(m.hostname, None);
        assert!(
            m.warnings[0].starts_with("meta-data is not UTF-8 text (invalid utf-8"),
            "{:?}",
            m.warnings
        );
    }

    #[test]
    fn mounted_seed_files() {
        let seed = tempfile::TempDir::with_prefix("nocloud-files").unwrap();
        let dir = seed.path();
        std::fs::write(dir.join(USER_DATA), "#!/bin/sh\necho hi\n").unwrap();
        std::fs::write(dir.join(META_DATA), "local-hostname: h\n").unwrap();
        let (user_data, meta) = read_mounted(dir).unwrap();
        assert_eq!(user_data, b"#!/bin/sh\necho hi\n");
        assert_eq!(meta.hostname.as_deref(), Some("h"));
        assert!(meta.notes.is_empty(), "{:?}", meta.notes);
        std::fs::write(dir.join(NETWORK_CONFIG), "version: 2\n").unwrap();
        std::fs::write(dir.join(VENDOR_DATA), "#cloud-config\n").unwrap();
        let (_, meta) = read_mounted(dir).unwrap();
        assert_eq!(
            meta.notes,
            [
                "network-config ignored: not supported (networkd configures every NIC with DHCP)",
                "vendor-data ignored: not supported",
            ]
        );
        // Neither file: an empty seed, still a source.
        let empty = tempfile::TempDir::with_prefix("nocloud-empty").unwrap();
        assert_eq!(
            read_mounted(empty.path()).unwrap(),
            (Vec::new(), Metadata::default())
        );
    }
}
