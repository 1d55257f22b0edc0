//! The documents of a channel repository: root keys, the signed key set, channel manifests and
//! payload references, and the `x.y.z` versions they name.
//!
//! Repository layout (static files; DESIGN.md "Update channel repository"):
//! ```text
//! <repo>/root.json                          RootKeys (informational; the trusted copy is in the image)
//! <repo>/keys.json, keys.json.sig           KeySet, signed by a root key
//! <repo>/channels/<channel>/manifest.json   Manifest, signed by a key of the KeySet
//! <repo>/channels/<channel>/manifest.json.sig
//! <repo>/payloads/sha256/<hex>              payload bytes, content-addressed
//! ```
//! Documents ignore unknown fields when read (newer publishers may add some; they are still
//! covered by the signature, which is checked over the received bytes).

use crate::keys::PublicKey;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// `root.json`, relative to the repository root.
pub const ROOT_JSON: &str = "root.json";
/// `keys.json`, relative to the repository root.
pub const KEYS_JSON: &str = "keys.json";
/// `keys.json.sig`, relative to the repository root.
pub const KEYS_SIG: &str = "keys.json.sig";
/// Directory of the content-addressed payloads, relative to the repository root.
pub const PAYLOADS_DIR: &str = "payloads/sha256";
/// Directory of the channels, relative to the repository root.
pub const CHANNELS_DIR: &str = "channels";
/// Longest channel or payload name accepted.
pub const MAX_NAME_LEN: usize = contract::update_conf::MAX_CHANNEL_LEN;

/// `channels/<channel>/manifest.json`, relative to the repository root (also a URL path).
pub fn manifest_path(channel: &str) -> String {
    format!("{CHANNELS_DIR}/{channel}/manifest.json")
}

/// `channels/<channel>/manifest.json.sig`, relative to the repository root (also a URL path).
pub fn manifest_sig_path(channel: &str) -> String {
    format!("{CHANNELS_DIR}/{channel}/manifest.json.sig")
}

/// Checks a channel name: 1-64 of `[a-z0-9._-]`, starting with a letter or digit (so it is a
/// safe path component and URL segment). The rule is `update.conf`'s for `GROUP`, defined once
/// in `contract` for the publisher, the engine and the validators.
pub use contract::update_conf::validate_channel_name;

/// Checks a payload name (`usr.img`, `vmlinuz`, …): 1-64 of `[A-Za-z0-9._-]`, starting with a
/// letter or digit, so an engine may use it as a file name.
pub fn validate_payload_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    ok.then_some(()).ok_or_else(|| {
        format!("payload name {name:?} must be 1-{MAX_NAME_LEN} of [A-Za-z0-9._-] starting with a letter or digit")
    })
}

/// A release version `major.minor.patch`, compared numerically (`1.0.10 > 1.0.9`).
/// Decimal, no leading zeros, no suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    /// Major.
    pub major: u64,
    /// Minor.
    pub minor: u64,
    /// Patch.
    pub patch: u64,
}

/// A string that is not an `x.y.z` version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a version of the form x.y.z (decimal, no leading zeros)")]
pub struct VersionError(pub String);

impl FromStr for Version {
    type Err = VersionError;
    fn from_str(s: &str) -> Result<Version, VersionError> {
        let err = || VersionError(s.to_owned());
        let part = |p: &str| -> Result<u64, VersionError> {
            let digits = !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
            if !digits || (p.len() > 1 && p.starts_with('0')) {
                return Err(err());
            }
            p.parse().map_err(|_| err())
        };
        let parts: Vec<&str> = s.split('.').collect();
        match parts[..] {
            [a, b, c] => Ok(Version {
                major: part(a)?,
                minor: part(b)?,
                patch: part(c)?,
            }),
            _ => Err(err()),
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// The root public keys; what images carry (e.g. `/usr/share/<os>/root.json`). Any one of them
/// may sign the [`KeySet`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootKeys {
    /// The root keys.
    pub keys: Vec<PublicKey>,
}

/// `keys.json`: the channel signing keys, signed by a root key. A rotation publishes a new set
/// with a higher `version`; clients refuse a version lower than the highest they have seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeySet {
    /// Increases by one with each rotation.
    pub version: u64,
    /// Unix seconds after which the set is expired.
    pub expires: u64,
    /// Keys allowed to sign channel manifests.
    pub keys: Vec<PublicKey>,
}

/// One payload file of a release, fetched from `payloads/sha256/<sha256>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PayloadRef {
    /// Lowercase hex sha256 of the bytes.
    pub sha256: String,
    /// Exact length in bytes.
    pub size: u64,
}

impl PayloadRef {
    /// `payloads/sha256/<hex>`, relative to the repository root (also a URL path).
    pub fn path(&self) -> String {
        format!("{PAYLOADS_DIR}/{}", self.sha256)
    }

    /// Checks that `sha256` is 64 lowercase hex characters (so [`PayloadRef::path`] is safe).
    pub fn validate(&self) -> Result<(), String> {
        let ok = self.sha256.len() == 64
            && self
                .sha256
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        ok.then_some(()).ok_or_else(|| {
            format!(
                "sha256 {:?} is not 64 lowercase hex characters",
                self.sha256
            )
        })
    }
}

/// `channels/<channel>/manifest.json`: the current release of one channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The channel this manifest was signed for.
    pub channel: String,
    /// The release version, `x.y.z`.
    pub version: String,
    /// Strictly increasing with every publish or promote into this channel.
    pub sequence: u64,
    /// Unix seconds when the release entered this channel.
    pub release_time: u64,
    /// Unix seconds after which the manifest is expired.
    pub expires: u64,
    /// Versions below the floor must never be installed from this channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_floor: Option<String>,
    /// Payloads by name (`usr.img`, `vmlinuz`, `initrd.img`, `build.json`, …).
    pub payloads: BTreeMap<String, PayloadRef>,
}

impl Manifest {
    /// The parsed version.
    pub fn parsed_version(&self) -> Result<Version, VersionError> {
        self.version.parse()
    }

    /// The parsed floor, if any.
    pub fn parsed_floor(&self) -> Result<Option<Version>, VersionError> {
        self.version_floor.as_deref().map(str::parse).transpose()
    }

    /// Checks everything a manifest must satisfy beyond its shape: channel and payload names,
    /// versions, hashes, at least one payload, and a version not below its own floor.
    pub fn validate(&self) -> Result<(), String> {
        validate_channel_name(&self.channel)?;
        let version = self.parsed_version().map_err(|e| e.to_string())?;
        if let Some(floor) = self.parsed_floor().map_err(|e| e.to_string())? {
            if version < floor {
                return Err(format!(
                    "version {version} is below its own version_floor {floor}"
                ));
            }
        }
        if self.payloads.is_empty() {
            return Err("no payloads".to_owned());
        }
        for (name, payload) in &self.payloads {
            validate_payload_name(name)?;
            payload
                .validate()
                .map_err(|e| format!("payload {name}: {e}"))?;
        }
        Ok(())
    }
}

/// A manifest without its `sequence`: what a publisher provides; the repository assigns the
/// sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    /// Target channel.
    pub channel: String,
    /// `x.y.z`.
    pub version: String,
    /// Unix seconds.
    pub release_time: u64,
    /// Unix seconds.
    pub expires: u64,
    /// Optional floor, `x.y.z`.
    pub version_floor: Option<String>,
    /// Payloads by name.
    pub payloads: BTreeMap<String, PayloadRef>,
}

impl Release {
    /// The manifest of this release with `sequence`.
    pub fn into_manifest(self, sequence: u64) -> Manifest {
        Manifest {
            channel: self.channel,
            version: self.version,
            sequence,
            release_time: self.release_time,
            expires: self.expires,
            version_floor: self.version_floor,
            payloads: self.payloads,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_and_compare_numerically() {
        let v = |s: &str| s.parse::<Version>().unwrap();
        assert!(v("1.0.10") > v("1.0.9"));
        assert!(v("2.0.0") > v("1.99.99"));
        assert_eq!(v("0.0.0").to_string(), "0.0.0");
        for bad in [
            "",
            "1",
            "1.0",
            "1.0.0.0",
            "01.0.0",
            "1.0.0-rc1",
            "1..0",
            "a.b.c",
            " 1.0.0",
            "+1.0.0",
        ] {
            assert!(bad.parse::<Version>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn names() {
        for good in ["alpha", "beta", "stable-2", "lts.2024", "0"] {
            assert!(validate_channel_name(good).is_ok(), "{good}");
        }
        for bad in ["", "Alpha", "../x", "a/b", ".hidden", "-x", &"a".repeat(65)] {
            assert!(validate_channel_name(bad).is_err(), "{bad}");
        }
        for good in ["usr.img", "vmlinuz", "initrd.img", "build.json", "USR_A"] {
            assert!(validate_payload_name(good).is_ok(), "{good}");
        }
        for bad in ["", "../usr.img", "a/b", ".x", "a b"] {
            assert!(validate_payload_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn manifest_validation() {
        let payload = PayloadRef {
            sha256: "ab".repeat(32),
            size: 1,
        };
        let good = Manifest {
            channel: "alpha".into(),
            version: "1.0.1".into(),
            sequence: 1,
            release_time: 0,
            expires: 10,
            version_floor: Some("1.0.0".into()),
            payloads: [("usr.img".to_owned(), payload.clone())].into(),
        };
        assert_eq!(good.validate(), Ok(()));
        assert_eq!(
            payload.path(),
            format!("payloads/sha256/{}", "ab".repeat(32))
        );
        let bad = |f: fn(&mut Manifest)| {
            let mut m = good.clone();
            f(&mut m);
            m.validate().unwrap_err()
        };
        bad(|m| m.version = "1.0".into());
        bad(|m| m.version_floor = Some("1.0.2".into()));
        bad(|m| m.payloads.clear());
        bad(|m| m.channel = "../x".into());
        bad(|m| m.payloads.get_mut("usr.img").unwrap().sha256 = "../../etc/passwd".into());
        bad(|m| m.payloads.get_mut("usr.img").unwrap().sha256 = "AB".repeat(32));
    }

    #[test]
    fn optional_floor_is_omitted() {
        let m = Manifest {
            channel: "a".into(),
            version: "1.0.0".into(),
            sequence: 1,
            release_time: 0,
            expires: 1,
            version_floor: None,
            payloads: BTreeMap::new(),
        };
        let bytes = crate::canonical::to_vec(&m).unwrap();
        assert_eq!(
            String::from_utf8(bytes.clone()).unwrap(),
            r#"{"channel":"a","expires":1,"payloads":{},"release_time":0,"sequence":1,"version":"1.0.0"}"#
        );
        assert_eq!(crate::canonical::from_slice::<Manifest>(&bytes).unwrap(), m);
    }
}
