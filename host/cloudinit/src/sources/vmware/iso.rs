//! vSphere's other OVF environment transport, "ISO image" (`ovf:transport="iso"`; vApp Options
//! → OVF environment transport: ISO image): the VM gets a CD-ROM whose iso9660 volume is
//! labelled `OVF ENV` and holds `ovf-env.xml`, the document the `com.vmware.guestInfo`
//! transport puts in `guestinfo.ovfEnv` (DMTF DSP0243, "OVF environment": the ISO transport).
//!
//! The drive is found by its label in any case ([`drive::find_device`]: udev's link, which
//! spells the blank `\x20`, or a scan of the block devices), mounted read-only on
//! `/run/coreos-cloudinit/vmware-ovf-env`, read and unmounted. The file is looked up without
//! regard to case, as `ovf-env.xml` or `ovf_env.xml` (the names cloud-init's OVF datasource
//! tries: a plain iso9660 name without Rock Ridge or Joliet has no `-`).
//!
//! A drive so labelled without such a file, or a file that is not XML or sets no property, is
//! an error naming the file and the drive ([`super::probe`] decides what it then says).

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use super::{parse_ovf_env, OvfEnv};
use crate::sources::{drive, Context, SourceError};

/// vSphere's volume label for the ISO (iso9660 volume ids are upper-case; any case here).
pub const LABEL: &str = "OVF ENV";
/// Where the drive is mounted, under the root.
pub const MOUNT_DIR: &str = "run/coreos-cloudinit/vmware-ovf-env";
/// The names of the document on the drive, in the order preferred (compared in any case).
pub const ENV_FILES: [&str; 2] = ["ovf-env.xml", "ovf_env.xml"];

/// The OVF environment of the ISO, if a drive labelled [`LABEL`] is there.
pub fn read(ctx: &Context) -> Result<Option<OvfEnv>, SourceError> {
    let Some(device) = drive::find_device(ctx.root, LABEL) else {
        return Ok(None);
    };
    let on = format!("on {}", device.display());
    let (name, bytes) = drive::read_mounted(ctx, &device, MOUNT_DIR, |dir| {
        let Some(name) = env_file(dir)? else {
            return Err(SourceError::Invalid {
                what: format!("drive {} (label {LABEL:?})", device.display()),
                reason: format!("no {} on it", ENV_FILES[0]),
            });
        };
        let bytes = drive::read_file(dir, &name)?.unwrap_or_default();
        Ok((name, bytes))
    })?;
    let props = properties(&bytes).map_err(|reason| SourceError::Invalid {
        what: format!("{name} {on}"),
        reason,
    })?;
    Ok(Some(OvfEnv {
        source: format!("VMware OVF environment {on}"),
        props,
    }))
}

/// The name of the environment document in `dir` as the drive spells it, if there is one.
pub fn env_file(dir: &Path) -> Result<Option<String>, SourceError> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map_err(|e| SourceError::io(dir, e))?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    Ok(ENV_FILES
        .iter()
        .find_map(|want| names.iter().find(|n| n.eq_ignore_ascii_case(want)).cloned()))
}

/// The properties of an OVF environment document read from a file (the ISO's, or
/// `--from-vmware-ovf-env`'s); `Err`: why it is not one.
pub fn properties(bytes: &[u8]) -> Result<BTreeMap<String, String>, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("is not UTF-8 text ({e})"))?;
    let text = text.trim_start_matches('\u{feff}').trim_start();
    if !text.starts_with('<') {
        return Err("is not XML (an OVF environment document, <Environment …>)".into());
    }
    let props = parse_ovf_env(text);
    if props.is_empty() {
        return Err(
            "has no properties (no <Property oe:key=\"…\" oe:value=\"…\"/> element)".into(),
        );
    }
    Ok(props)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_that_are_not_environments() {
        struct Case {
            name: &'static str,
            bytes: &'static [u8],
            want: Result<usize, &'static str>,
        }
        let cases = [
            Case {
                name: "a property, after a byte order mark and blank lines",
                bytes:
                    "\u{feff}\n\n<Environment><Property oe:key=\"k\" oe:value=\"\"/></Environment>"
                        .as_bytes(),
                want: Ok(1),
            },
            Case {
                name: "not XML",
                bytes: b"guestinfo.hostname=vm1\n",
                want: Err("is not XML (an OVF environment document, <Environment …>)"),
            },
            Case {
                name: "empty",
                bytes: b"",
                want: Err("is not XML (an OVF environment document, <Environment …>)"),
            },
            Case {
                name: "no properties",
                bytes: b"<?xml version=\"1.0\"?><Environment><PropertySection/></Environment>",
                want: Err("has no properties (no <Property oe:key=\"…\" oe:value=\"…\"/> element)"),
            },
            Case {
                name: "truncated in the first property",
                bytes: b"<Environment><PropertySection><Property oe:key=\"guestinfo.hostname",
                want: Err("has no properties (no <Property oe:key=\"…\" oe:value=\"…\"/> element)"),
            },
        ];
        for c in cases {
            let got = properties(c.bytes).map(|p| p.len());
            assert_eq!(got, c.want.map_err(str::to_string), "{}", c.name);
        }
        let e = properties(b"<\xff>").unwrap_err();
        assert!(e.starts_with("is not UTF-8 text (invalid utf-8"), "{e}");
    }

    #[test]
    fn the_document_is_found_in_any_case() {
        let tmp = tempfile::TempDir::with_prefix("ovf-iso-names").unwrap();
        let dir = tmp.path();
        assert_eq!(env_file(dir).unwrap(), None);
        fs::create_dir(dir.join("ovf-env.xml")).unwrap();
        fs::write(dir.join("README"), "").unwrap();
        assert_eq!(env_file(dir).unwrap(), None, "a directory is not the file");
        fs::write(dir.join("OVF_ENV.XML"), "").unwrap();
        assert_eq!(env_file(dir).unwrap().as_deref(), Some("OVF_ENV.XML"));
        fs::write(dir.join("OVF-ENV.XML"), "").unwrap();
        assert_eq!(env_file(dir).unwrap().as_deref(), Some("OVF-ENV.XML"));
        assert!(env_file(&dir.join("missing")).is_err());
    }
}
