//! Update selection: given a verified manifest and the booted version, what to do (pure).
//!
//! `version_floor` is a security floor: a release whose version is below the floor of the
//! manifest offering it is never installed, even if signed (it protects against a compromised
//! signing key pushing a known-vulnerable old release). Independently, a release is installed
//! only if it is newer than the booted one: equal is [`Decision::UpToDate`], older is refused
//! (downgrades are not done by the update engine; `rollback` is a slot operation).

use crate::documents::{Manifest, Version, VersionError};
use std::fmt;

/// What the engine should do with a channel's current release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The channel offers the booted version.
    UpToDate,
    /// Install `version`.
    Update {
        /// The manifest's version.
        version: Version,
    },
    /// Do not install; the engine reports the reason.
    Refuse(RefuseReason),
}

/// Why a manifest's release is not installed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefuseReason {
    /// The offered version is below the manifest's version floor.
    #[error("version {offered} is below the version floor {floor}")]
    BelowFloor {
        /// The manifest's version.
        offered: Version,
        /// The manifest's floor.
        floor: Version,
    },
    /// The offered version is older than the booted one.
    #[error("version {offered} is older than the booted version {booted}")]
    Downgrade {
        /// The manifest's version.
        offered: Version,
        /// The booted version.
        booted: Version,
    },
    /// A version string that does not parse.
    #[error("{what}: {error}")]
    BadVersion {
        /// `manifest version`, `version floor` or `booted version`.
        what: &'static str,
        /// The parse error.
        error: VersionError,
    },
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Decision::UpToDate => f.write_str("up to date"),
            Decision::Update { version } => write!(f, "update to {version}"),
            Decision::Refuse(reason) => write!(f, "refused: {reason}"),
        }
    }
}

/// Decides whether to install the release of `manifest` on a machine booted from `booted_version`.
pub fn select_update(manifest: &Manifest, booted_version: &str) -> Decision {
    match decide(manifest, booted_version) {
        Ok(decision) => decision,
        Err(reason) => Decision::Refuse(reason),
    }
}

fn decide(manifest: &Manifest, booted_version: &str) -> Result<Decision, RefuseReason> {
    let bad = |what| move |error| RefuseReason::BadVersion { what, error };
    let offered = manifest.parsed_version().map_err(bad("manifest version"))?;
    if let Some(floor) = manifest.parsed_floor().map_err(bad("version floor"))? {
        if offered < floor {
            return Err(RefuseReason::BelowFloor { offered, floor });
        }
    }
    let booted: Version = booted_version.parse().map_err(bad("booted version"))?;
    Ok(match offered.cmp(&booted) {
        std::cmp::Ordering::Greater => Decision::Update { version: offered },
        std::cmp::Ordering::Equal => Decision::UpToDate,
        std::cmp::Ordering::Less => return Err(RefuseReason::Downgrade { offered, booted }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Case {
        name: &'static str,
        offered: &'static str,
        floor: Option<&'static str>,
        booted: &'static str,
        want: &'static str,
    }

    #[test]
    fn table() {
        let cases = [
            Case { name: "newer", offered: "1.0.1", floor: None, booted: "1.0.0", want: "update to 1.0.1" },
            Case { name: "numeric compare", offered: "1.0.10", floor: None, booted: "1.0.9", want: "update to 1.0.10" },
            Case { name: "equal", offered: "1.0.1", floor: None, booted: "1.0.1", want: "up to date" },
            Case { name: "older", offered: "1.0.0", floor: None, booted: "1.0.1", want: "refused: version 1.0.0 is older than the booted version 1.0.1" },
            Case { name: "at floor", offered: "1.2.0", floor: Some("1.2.0"), booted: "1.0.0", want: "update to 1.2.0" },
            Case { name: "below floor", offered: "1.1.0", floor: Some("1.2.0"), booted: "1.0.0", want: "refused: version 1.1.0 is below the version floor 1.2.0" },
            Case { name: "booted below floor may still update", offered: "2.0.0", floor: Some("1.5.0"), booted: "1.0.0", want: "update to 2.0.0" },
            Case { name: "bad booted", offered: "1.0.0", floor: None, booted: "dev", want: "refused: booted version: \"dev\" is not a version of the form x.y.z (decimal, no leading zeros)" },
            Case { name: "bad offered", offered: "1.0", floor: None, booted: "1.0.0", want: "refused: manifest version: \"1.0\" is not a version of the form x.y.z (decimal, no leading zeros)" },
        ];
        for case in cases {
            let manifest = Manifest {
                channel: "alpha".into(),
                version: case.offered.into(),
                sequence: 1,
                release_time: 0,
                expires: 1,
                version_floor: case.floor.map(Into::into),
                payloads: Default::default(),
            };
            assert_eq!(
                select_update(&manifest, case.booted).to_string(),
                case.want,
                "{}",
                case.name
            );
        }
    }
}
