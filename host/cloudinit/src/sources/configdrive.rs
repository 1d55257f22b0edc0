//! The OpenStack config drive: a block device whose filesystem (iso9660 or vfat) is labelled
//! `config-2`, holding `openstack/latest/user_data` and `openstack/latest/meta_data.json`
//! (coreos-cloudinit's `configdrive` datasource; OpenStack's "Config drive" documentation).
//!
//! The drive is found by its label ([`drive::find_device`]: udev's link or a scan of the block
//! devices), mounted read-only on `/run/coreos-cloudinit/config-drive`, read, and unmounted.
//!
//! Metadata: `hostname`, and `public_keys` (name → key, taken in name order) for `core`.

use std::collections::BTreeMap;
use std::path::Path;

use super::drive;
use super::{Context, Found, SourceError};
use crate::metadata::Metadata;

/// The filesystem label of a config drive.
pub const LABEL: &str = "config-2";
/// Where the drive is mounted, under the root.
pub const MOUNT_DIR: &str = "run/coreos-cloudinit/config-drive";
pub const USER_DATA: &str = "openstack/latest/user_data";
pub const META_DATA: &str = "openstack/latest/meta_data.json";

/// Mounts, reads and unmounts the config drive, if there is one.
pub fn probe(ctx: &Context) -> Result<Option<Found>, SourceError> {
    let Some(device) = drive::find_device(ctx.root, LABEL) else {
        return Ok(None);
    };
    let (user_data, metadata) = drive::read_mounted(ctx, &device, MOUNT_DIR, read_mounted)?;
    Ok(Some(Found {
        source: format!("config drive {}", device.display()),
        user_data,
        metadata,
    }))
}

/// User-data and metadata of a mounted config drive; either file may be missing.
pub fn read_mounted(dir: &Path) -> Result<(Vec<u8>, Metadata), SourceError> {
    let user_data = drive::read_file(dir, USER_DATA)?.unwrap_or_default();
    let metadata = match drive::read_file(dir, META_DATA)? {
        Some(json) => parse_meta_data(&json)?,
        None => Metadata::default(),
    };
    Ok((user_data, metadata))
}

/// `meta_data.json`: `hostname` and `public_keys`; other keys are ignored.
pub fn parse_meta_data(json: &[u8]) -> Result<Metadata, SourceError> {
    use serde_json::Value as J;
    let bad = |reason: String| SourceError::Invalid {
        what: META_DATA.into(),
        reason,
    };
    let value: J = serde_json::from_slice(json).map_err(|e| bad(e.to_string()))?;
    let J::Object(top) = value else {
        return Err(bad("not a JSON object".into()));
    };
    let hostname = top
        .get("hostname")
        .and_then(J::as_str)
        .filter(|h| !h.is_empty())
        .map(str::to_string);
    let keys: BTreeMap<&String, &str> = match top.get("public_keys") {
        Some(J::Object(map)) => map
            .iter()
            .filter_map(|(k, v)| Some((k, v.as_str()?)))
            .collect(),
        _ => BTreeMap::new(),
    };
    Ok(Metadata {
        hostname,
        ssh_public_keys: keys.values().map(|k| k.trim().to_string()).collect(),
        ..Metadata::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_data_json() {
        let json = br#"{"uuid": "x", "hostname": "node1.novalocal",
            "public_keys": {"zeta": "ssh-ed25519 BBBB z\n", "alpha": "ssh-rsa AAAA a"},
            "network_config": {"content_path": "/content/0000"}}"#;
        let m = parse_meta_data(json).unwrap();
        assert_eq!(
            m,
            Metadata {
                hostname: Some("node1.novalocal".into()),
                ssh_public_keys: vec!["ssh-rsa AAAA a".into(), "ssh-ed25519 BBBB z".into()],
                ..Metadata::default()
            }
        );
        assert_eq!(parse_meta_data(b"{}").unwrap(), Metadata::default());
        let e = parse_meta_data(b"[1]").unwrap_err();
        assert_eq!(
            e.to_string(),
            "openstack/latest/meta_data.json: not a JSON object"
        );
        assert!(parse_meta_data(b"{").is_err());
    }
}
