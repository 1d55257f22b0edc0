//! VMware guestinfo (coreos-cloudinit's `vmware` datasource, Container Linux's "VMware
//! guestinfo" documentation; SPECS.md S15 "vmware").
//!
//! Variables, read with the RPC `info-get guestinfo.KEY` over VMware's backdoor
//! ([`machine::vmware`], what `vmware-rpctool` does):
//! - `guestinfo.coreos.config.data`: the user-data, encoded as
//!   `guestinfo.coreos.config.data.encoding` says: empty (as is), `base64`/`b64`, `gzip+base64`
//!   & co. (coreos-cloudinit's `write_files` encodings, as upstream decoded it);
//! - `guestinfo.coreos.config.url`: where to fetch the user-data when there is no data;
//! - `guestinfo.hostname`: the hostname (metadata);
//! - `guestinfo.interface.<n>.*` and `guestinfo.dns.*`: static or DHCP networking, written as
//!   networkd files, and the addresses of `$public_ipv4` & co. ([`network`]).
//!
//! The OVF environment: when vSphere deploys our OVA, the ProductSection properties (declared by
//! `ova/src/ovf.rs` with exactly those `guestinfo.*` keys) arrive as an XML document
//! (`<Property oe:key="guestinfo.hostname" oe:value="…"/>`) by one of two transports:
//! - `com.vmware.guestInfo` (the OVA's): the variable `guestinfo.ovfEnv`, over the backdoor;
//! - `iso` ("ISO image"): `ovf-env.xml` on a CD-ROM labelled `OVF ENV` ([`iso`]), looked for
//!   only when the backdoor gives no `guestinfo.ovfEnv` (with both transports chosen, the
//!   backdoor's copy is used). The only way in where the backdoor refuses, as in QEMU.
//!
//! Either way its properties are looked up first, then the plain variables (upstream used only
//! the OVF environment when it was present; a property left empty there now falls back to a
//! variable set directly): an ISO's property wins over a variable exactly as a
//! `guestinfo.ovfEnv` property does. The generic keys of other appliances' OVF environments,
//! `user-data` (always base64, cloud-init's OVF convention) and `hostname`, are read as well.
//! Empty values count as unset. `--from-vmware-ovf-env PATH` reads such a document from a file
//! ([`from_ovf_env_file`]), without the variables, as upstream's flag did.
//!
//! The source counts as found when any of these is set, the network variables alone included.

pub mod iso;
pub mod network;

use std::collections::BTreeMap;

use cloudconfig::{decode_content, go_base64, DecodeError};

use super::http::Http;
use super::{Context, Found, SourceError};
use crate::host::{Host, HostError};
use crate::metadata::Metadata;

pub const OVF_ENV_KEY: &str = "guestinfo.ovfEnv";
pub const DATA_KEY: &str = "guestinfo.coreos.config.data";
pub const ENCODING_KEY: &str = "guestinfo.coreos.config.data.encoding";
pub const URL_KEY: &str = "guestinfo.coreos.config.url";
pub const HOSTNAME_KEY: &str = "guestinfo.hostname";
/// OVF environment properties of the generic convention.
pub const OVF_USER_DATA_KEY: &str = "user-data";
pub const OVF_HOSTNAME_KEY: &str = "hostname";

/// What the guestinfo variables say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GuestConfig {
    /// Decoded user-data.
    pub user_data: Option<Vec<u8>>,
    pub url: Option<String>,
    pub hostname: Option<String>,
}

impl GuestConfig {
    fn is_empty(&self) -> bool {
        self.user_data.is_none() && self.url.is_none() && self.hostname.is_none()
    }
}

/// Reads the variables through `get` (`None` or empty: unset). Pure apart from `get`.
pub fn read_guest_config(
    get: &dyn Fn(&str) -> Result<Option<String>, HostError>,
) -> Result<GuestConfig, SourceError> {
    let get = |key: &str| -> Result<Option<String>, SourceError> {
        Ok(get(key)?.filter(|v| !v.is_empty()))
    };
    let user_data = match get(DATA_KEY)? {
        Some(data) => {
            let encoding = get(ENCODING_KEY)?.unwrap_or_default();
            Some(
                decode_data(&data, &encoding).map_err(|e| SourceError::Decode {
                    what: format!("{DATA_KEY} ({ENCODING_KEY}={encoding:?})"),
                    error: e,
                })?,
            )
        }
        None => match get(OVF_USER_DATA_KEY)? {
            Some(data) => {
                Some(
                    go_base64(data.trim().as_bytes()).ok_or_else(|| SourceError::Decode {
                        what: format!("OVF property {OVF_USER_DATA_KEY}"),
                        error: DecodeError::Base64,
                    })?,
                )
            }
            None => None,
        },
    };
    let hostname = match get(HOSTNAME_KEY)? {
        Some(h) => Some(h),
        None => get(OVF_HOSTNAME_KEY)?,
    };
    Ok(GuestConfig {
        user_data,
        url: get(URL_KEY)?,
        hostname: hostname.map(|h| h.trim().to_string()),
    })
}

/// `guestinfo.coreos.config.data` in `encoding` (empty: as is).
pub fn decode_data(data: &str, encoding: &str) -> Result<Vec<u8>, DecodeError> {
    match encoding.trim() {
        "" => Ok(data.as_bytes().to_vec()),
        // govc and the vSphere UI often leave a trailing newline or blanks around base64.
        enc => decode_content(data.trim().as_bytes(), enc),
    }
}

/// The properties of an OVF environment document (`<Property oe:key=… oe:value=…/>`, any
/// namespace prefix), entities decoded. A tolerant scan, not a validating parser: anything that
/// is not a well-formed Property element is skipped.
pub fn parse_ovf_env(xml: &str) -> BTreeMap<String, String> {
    let mut props = BTreeMap::new();
    let mut rest = xml;
    while let Some(lt) = rest.find('<') {
        rest = &rest[lt + 1..];
        let name_end = rest
            .find(|c: char| c.is_whitespace() || c == '/' || c == '>')
            .unwrap_or(rest.len());
        let local = rest[..name_end].rsplit(':').next().unwrap_or_default();
        if local != "Property" {
            continue;
        }
        let (attrs, consumed) = attributes(&rest[name_end..]);
        rest = &rest[name_end + consumed..];
        if let (Some(k), Some(v)) = (attrs.get("key"), attrs.get("value")) {
            props.insert(k.clone(), v.clone());
        }
    }
    props
}

/// Attributes up to the end of the tag, by local name; and the bytes consumed.
fn attributes(s: &str) -> (BTreeMap<String, String>, usize) {
    let mut attrs = BTreeMap::new();
    let b = s.as_bytes();
    let mut i = 0;
    loop {
        while i < b.len() && (b[i] as char).is_ascii_whitespace() {
            i += 1;
        }
        if i >= b.len() || b[i] == b'>' || b[i] == b'/' || b[i] == b'<' {
            return (attrs, i);
        }
        let name_start = i;
        while i < b.len()
            && !matches!(b[i], b'=' | b'>' | b'/' | b'<')
            && !b[i].is_ascii_whitespace()
        {
            i += 1;
        }
        let name = &s[name_start..i];
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= b.len() || b[i] != b'=' {
            continue;
        }
        i += 1;
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        let Some(&quote) = b.get(i).filter(|q| matches!(q, b'"' | b'\'')) else {
            return (attrs, i);
        };
        let value_start = i + 1;
        let Some(len) = s[value_start..].find(quote as char) else {
            return (attrs, s.len());
        };
        let local = name.rsplit(':').next().unwrap_or(name);
        attrs.insert(
            local.to_string(),
            unescape(&s[value_start..value_start + len]),
        );
        i = value_start + len + 1;
    }
}

/// XML entities: the five named ones and character references; unknown ones stay as written.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let decoded = rest.find(';').and_then(|semi| {
            let c = match &rest[1..semi] {
                "amp" => '&',
                "lt" => '<',
                "gt" => '>',
                "quot" => '"',
                "apos" => '\'',
                e => {
                    let n = match e.strip_prefix("#x").or_else(|| e.strip_prefix("#X")) {
                        Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                        None => e.strip_prefix('#')?.parse().ok()?,
                    };
                    char::from_u32(n)?
                }
            };
            Some((c, semi + 1))
        });
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// An OVF environment's properties, and where the document came from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OvfEnv {
    /// For messages: `VMware OVF environment` (the backdoor's), `VMware OVF environment on
    /// /dev/sr0` (the ISO's), `VMware OVF environment file PATH`.
    pub source: String,
    pub props: BTreeMap<String, String>,
}

/// The source name of the backdoor's OVF environment (`guestinfo.ovfEnv`).
pub const OVF_ENV_SOURCE: &str = "VMware OVF environment";
/// The source name of the variables alone.
pub const GUESTINFO_SOURCE: &str = "VMware guestinfo";

/// The VMware source (module docs): the OVF environment's properties, from the backdoor or
/// else from the ISO ([`iso`]), then the variables.
///
/// When the backdoor refuses (QEMU's vmport has no RPC channel; a machine that only claims to
/// be VMware), the ISO's properties are all there is, and a note says the variables were not
/// read; with neither, the backdoor's refusal is the error. An ISO that cannot be read, or
/// whose document is not one, is an error when nothing else is found, and otherwise a warning
/// on what the variables gave.
pub fn probe(
    ctx: &Context,
    http: impl FnOnce() -> Result<Http, SourceError>,
) -> Result<Option<Found>, SourceError> {
    let host = ctx.host;
    let backdoor = host.guestinfo(OVF_ENV_KEY);
    let (env, iso_error) = match &backdoor {
        Ok(Some(xml)) if !xml.trim().is_empty() => {
            let env = OvfEnv {
                source: OVF_ENV_SOURCE.into(),
                props: parse_ovf_env(xml),
            };
            (Some(env), None)
        }
        _ => match iso::read(ctx) {
            Ok(env) => (env, None),
            Err(e) => (None, Some(e)),
        },
    };
    let (variables, note) = match (backdoor, &env, iso_error) {
        (Ok(_), _, iso_error) => (Some(host), iso_error),
        (Err(e), Some(_), _) => {
            let note = format!("guestinfo variables not read: {e}");
            let mut found = read_env(env.as_ref(), None, http)?;
            if let Some(f) = &mut found {
                f.metadata.notes.push(note);
            }
            return Ok(found);
        }
        (Err(_), None, Some(iso_error)) => return Err(iso_error),
        (Err(e), None, None) => return Err(e.into()),
    };
    match (read_env(env.as_ref(), variables, http)?, note) {
        (None, Some(iso_error)) => Err(iso_error),
        (Some(mut found), Some(iso_error)) => {
            found.metadata.warnings.insert(0, iso_error.to_string());
            Ok(Some(found))
        }
        (found, None) => Ok(found),
    }
}

/// `--from-vmware-ovf-env PATH` (upstream's flag): the properties of an OVF environment
/// document in a file, read as given (not under the root), and no variables (as upstream). Found
/// even when it sets nothing.
pub fn from_ovf_env_file(
    path: &std::path::Path,
    http: impl FnOnce() -> Result<Http, SourceError>,
) -> Result<Found, SourceError> {
    let bytes = std::fs::read(path).map_err(|e| SourceError::io(path, e))?;
    let props = iso::properties(&bytes).map_err(|reason| SourceError::Invalid {
        what: path.display().to_string(),
        reason,
    })?;
    let env = OvfEnv {
        source: format!("VMware OVF environment file {}", path.display()),
        props,
    };
    Ok(read_env(Some(&env), None, http)?.unwrap_or_else(|| Found {
        source: env.source,
        user_data: Vec::new(),
        metadata: Metadata::default(),
    }))
}

/// The source from `env`'s properties, then the variables `backdoor` answers (`None`: not
/// asked); `Ok(None)` when nothing is set.
fn read_env(
    env: Option<&OvfEnv>,
    backdoor: Option<&dyn Host>,
    http: impl FnOnce() -> Result<Http, SourceError>,
) -> Result<Option<Found>, SourceError> {
    let empty = BTreeMap::new();
    let props = env.map_or(&empty, |e| &e.props);
    let get = |key: &str| -> Result<Option<String>, HostError> {
        if let Some(v) = props.get(key).filter(|v| !v.is_empty()) {
            return Ok(Some(v.clone()));
        }
        match backdoor {
            Some(host) if key.starts_with("guestinfo.") => host.guestinfo(key),
            _ => Ok(None),
        }
    };
    let config = read_guest_config(&get)?;
    let mut net_keys = network::probe_keys(&get)?;
    // The backdoor is asked index by index; an OVF environment lists all of its keys (a gap
    // or a bad index among them then gets its warning).
    for (k, v) in props {
        if network::is_network_key(k) && !v.trim().is_empty() {
            net_keys.insert(k.clone(), v.clone());
        }
    }
    if config.is_empty() && net_keys.is_empty() {
        return Ok(None);
    }
    let (net, mut warnings) = network::parse(&net_keys);
    let transport = env.map_or(GUESTINFO_SOURCE, |e| e.source.as_str());
    let (user_data, source) = match (config.user_data, &config.url) {
        (Some(data), _) => (data, transport.to_string()),
        (None, Some(url)) => match http().and_then(|h| Ok(h.get(url, &[])?)) {
            Ok(data) => (data, format!("{transport} ({url})")),
            // The URL may be out of reach precisely because the network is not configured
            // yet: the network still applies (upstream went on with the metadata too).
            Err(e) if !net.is_empty() => {
                warnings.push(format!(
                    "{URL_KEY} {url}: {e}: no user-data; the network configuration still applies"
                ));
                (Vec::new(), format!("{transport} ({url})"))
            }
            Err(e) => return Err(e),
        },
        (None, None) => (Vec::new(), transport.to_string()),
    };
    Ok(Some(Found {
        source,
        user_data,
        metadata: Metadata {
            hostname: config.hostname,
            ssh_public_keys: Vec::new(),
            addresses: net.addresses(),
            network: net.config(),
            warnings,
            notes: Vec::new(),
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An OVF environment as vSphere writes it for our OVA (abridged).
    const OVF_ENV: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<Environment
     xmlns="http://schemas.dmtf.org/ovf/environment/1"
     xmlns:oe="http://schemas.dmtf.org/ovf/environment/1"
     xmlns:ve="http://www.vmware.com/schema/ovfenv"
     oe:id=""
     ve:vCenterId="vm-42">
   <PlatformSection>
      <Kind>VMware ESXi</Kind>
      <Locale>en</Locale>
   </PlatformSection>
   <PropertySection>
         <Property oe:key="guestinfo.coreos.config.data" oe:value="I2Nsb3VkLWNvbmZpZwpob3N0bmFtZTogYQo="/>
         <Property oe:key="guestinfo.coreos.config.data.encoding" oe:value="base64"/>
         <Property oe:key="guestinfo.coreos.config.url" oe:value=""/>
         <Property oe:key="guestinfo.hostname" oe:value="node&amp;1 &#x41;&#66;&lt;&gt;"/>
   </PropertySection>
   <ve:EthernetAdapterSection>
      <ve:Adapter ve:mac="00:50:56:aa:bb:cc" ve:network="VM Network" ve:unitNumber="7"/>
   </ve:EthernetAdapterSection>
</Environment>"#;

    #[test]
    fn ovf_environment_properties() {
        let props = parse_ovf_env(OVF_ENV);
        let want: BTreeMap<String, String> = [
            (
                "guestinfo.coreos.config.data",
                "I2Nsb3VkLWNvbmZpZwpob3N0bmFtZTogYQo=",
            ),
            ("guestinfo.coreos.config.data.encoding", "base64"),
            ("guestinfo.coreos.config.url", ""),
            ("guestinfo.hostname", "node&1 AB<>"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(props, want);
    }

    #[test]
    fn ovf_environment_oddities() {
        struct Case {
            name: &'static str,
            xml: &'static str,
            want: &'static [(&'static str, &'static str)],
        }
        let cases = [
            Case {
                name: "single quotes, other prefix, value first",
                xml: "<ovfenv:Property ovfenv:value='v' ovfenv:key='k'></ovfenv:Property>",
                want: &[("k", "v")],
            },
            Case {
                name: "no prefix, spaces around =, '>' inside a value",
                xml: r#"<Property key = "a" value="x>y" />"#,
                want: &[("a", "x>y")],
            },
            Case {
                name: "unknown entity kept, bad reference kept",
                xml: r#"<Property oe:key="a" oe:value="&nbsp;&#xZZ;&"/>"#,
                want: &[("a", "&nbsp;&#xZZ;&")],
            },
            Case {
                name: "PropertySection is not a Property; missing value",
                xml: r#"<PropertySection><Property oe:key="a"/></PropertySection>"#,
                want: &[],
            },
            Case {
                name: "truncated",
                xml: r#"<Property oe:key="a" oe:value="b"#,
                want: &[],
            },
            Case {
                name: "not XML",
                xml: "hello <",
                want: &[],
            },
        ];
        for c in cases {
            let got = parse_ovf_env(c.xml);
            let want: BTreeMap<String, String> = c
                .want
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            assert_eq!(got, want, "{}", c.name);
        }
    }

    #[test]
    fn data_encodings() {
        // "#cloud-config\n" gzipped then base64-encoded.
        let gz_b64 = "H4sIAAAAAAACA1NOzskvTdFNzs9Ly0znAgAFVrO4DgAAAA==";
        let plain = b"#cloud-config\n".to_vec();
        assert_eq!(decode_data("#cloud-config\n", ""), Ok(plain.clone()));
        assert_eq!(
            decode_data("I2Nsb3VkLWNvbmZpZwo=\n", "base64"),
            Ok(plain.clone())
        );
        assert_eq!(
            decode_data("I2Nsb3VkLWNvbmZpZwo=", "b64"),
            Ok(plain.clone())
        );
        for enc in ["gzip+base64", "gz+base64", "gz+b64", "gzip+b64"] {
            assert_eq!(decode_data(gz_b64, enc), Ok(plain.clone()), "{enc}");
        }
        assert_eq!(decode_data("@@", "base64"), Err(DecodeError::Base64));
        assert_eq!(decode_data("x", "rot13"), Err(DecodeError::Unsupported));
    }

    fn lookup(
        vars: &'static [(&'static str, &'static str)],
    ) -> impl Fn(&str) -> Result<Option<String>, HostError> {
        move |key| {
            Ok(vars
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.to_string()))
        }
    }

    #[test]
    fn guest_config_from_variables() {
        let c = read_guest_config(&lookup(&[
            (DATA_KEY, "I2Nsb3VkLWNvbmZpZwo="),
            (ENCODING_KEY, "base64"),
            (HOSTNAME_KEY, "vm1\n"),
        ]))
        .unwrap();
        assert_eq!(
            c,
            GuestConfig {
                user_data: Some(b"#cloud-config\n".to_vec()),
                url: None,
                hostname: Some("vm1".into()),
            }
        );
        // The generic OVF keys.
        let c = read_guest_config(&lookup(&[
            (OVF_USER_DATA_KEY, "IyEvYmluL3NoCg=="),
            (OVF_HOSTNAME_KEY, "vm2"),
            (ENCODING_KEY, "base64"),
            (DATA_KEY, ""),
        ]))
        .unwrap();
        assert_eq!(c.user_data.as_deref(), Some(&b"#!/bin/sh\n"[..]));
        assert_eq!(c.hostname.as_deref(), Some("vm2"));
        // The OVA's default encoding with no data: nothing.
        let c = read_guest_config(&lookup(&[(ENCODING_KEY, "base64"), (URL_KEY, "")])).unwrap();
        assert!(c.is_empty());
        let e = read_guest_config(&lookup(&[(DATA_KEY, "%%"), (ENCODING_KEY, "gzip+base64")]))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "guestinfo.coreos.config.data (guestinfo.coreos.config.data.encoding=\"gzip+base64\"): invalid base64"
        );
    }
}
