//! The EC2 Query API calls of the upload path: `DescribeSnapshots` (wait for the snapshot) and
//! `RegisterImage` (from the build's [`RegisterImage`] input).
//!
//! A Query API call is a form-encoded POST of `Action=…&Version=2016-11-15&…`, signed for
//! service `ec2`; the answer is a small XML document, read with [`xml_text`]. The parameters
//! are built by pure functions ([`register_image_params`]).

use crate::aws::{Call, Client, Error};
use crate::register::{RegisterImage, SNAPSHOT_PLACEHOLDER};

pub const API_VERSION: &str = "2016-11-15";

/// The `RegisterImage` parameters, flattened as the Query API wants them
/// (`BlockDeviceMapping.1.Ebs.SnapshotId`), in a fixed order. `Action` and `Version` first.
pub fn register_image_params(r: &RegisterImage) -> Vec<(String, String)> {
    let mut p: Vec<(String, String)> = vec![
        ("Action".into(), "RegisterImage".into()),
        ("Version".into(), API_VERSION.into()),
        ("Name".into(), r.name.clone()),
        ("Description".into(), r.description.clone()),
        ("Architecture".into(), r.architecture.clone()),
        ("VirtualizationType".into(), r.virtualization_type.clone()),
        ("EnaSupport".into(), r.ena_support.to_string()),
        ("SriovNetSupport".into(), r.sriov_net_support.clone()),
        ("BootMode".into(), r.boot_mode.clone()),
        ("ImdsSupport".into(), r.imds_support.clone()),
        ("RootDeviceName".into(), r.root_device_name.clone()),
    ];
    for (i, m) in r.block_device_mappings.iter().enumerate() {
        let k = |field: &str| format!("BlockDeviceMapping.{}.{field}", i + 1);
        p.push((k("DeviceName"), m.device_name.clone()));
        p.push((k("Ebs.SnapshotId"), m.ebs.snapshot_id.clone()));
        p.push((k("Ebs.VolumeSize"), m.ebs.volume_size.to_string()));
        p.push((k("Ebs.VolumeType"), m.ebs.volume_type.clone()));
        p.push((
            k("Ebs.DeleteOnTermination"),
            m.ebs.delete_on_termination.to_string(),
        ));
    }
    p
}

/// `DescribeSnapshots` of one snapshot.
pub fn describe_snapshots_params(snapshot_id: &str) -> Vec<(String, String)> {
    vec![
        ("Action".into(), "DescribeSnapshots".into()),
        ("Version".into(), API_VERSION.into()),
        ("SnapshotId.1".into(), snapshot_id.into()),
    ]
}

/// A form body (`application/x-www-form-urlencoded`), encoded as SigV4 encodes queries.
pub fn form_body(params: &[(String, String)]) -> String {
    params
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                crate::sigv4::uri_encode(k, false),
                crate::sigv4::uri_encode(v, false)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// The text of the first `<tag>…</tag>` element in `xml` (entities decoded), if any. Enough for
/// the flat answers of these calls; attributes on the element are allowed.
pub fn xml_text(xml: &str, tag: &str) -> Option<String> {
    let mut from = 0;
    loop {
        let start = from + xml[from..].find(&format!("<{tag}"))?;
        let after = start + 1 + tag.len();
        let rest = &xml[after..];
        let close = rest.find('>')?;
        // `<tagName>` must not match `<tag>`.
        if !(rest.starts_with('>')
            || rest.starts_with(char::is_whitespace)
            || rest.starts_with('/'))
        {
            from = after;
            continue;
        }
        if rest[..close].ends_with('/') {
            return Some(String::new());
        }
        let body = &rest[close + 1..];
        let end = body.find(&format!("</{tag}>"))?;
        return Some(unescape(body[..end].trim()));
    }
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// What `DescribeSnapshots` says about a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotState {
    /// `pending`, `completed`, `error` (or `recoverable`, `recovering`).
    pub status: String,
    pub progress: Option<String>,
    pub message: Option<String>,
}

/// The state of `snapshot_id` in a `DescribeSnapshots` answer.
pub fn parse_snapshot_state(xml: &str, snapshot_id: &str) -> Result<SnapshotState, String> {
    // Tags are items too: drop them, so each `<item>` left is one snapshot.
    let mut flat = xml.to_string();
    while let (Some(a), Some(b)) = (flat.find("<tagSet>"), flat.find("</tagSet>")) {
        if b < a {
            break;
        }
        flat.replace_range(a..b + "</tagSet>".len(), "");
    }
    let item = flat
        .split("<item>")
        .skip(1)
        .find(|item| xml_text(item, "snapshotId").as_deref() == Some(snapshot_id))
        .ok_or_else(|| format!("no snapshot {snapshot_id} in the answer"))?;
    let status = xml_text(item, "status").ok_or("no <status> for the snapshot")?;
    Ok(SnapshotState {
        status,
        progress: xml_text(item, "progress").filter(|p| !p.is_empty()),
        message: xml_text(item, "stateMessage").filter(|m| !m.is_empty()),
    })
}

/// One Query API call.
fn call(action: &str, params: &[(String, String)], idempotent: bool) -> Call {
    Call {
        service: "ec2",
        op: format!("EC2 {action}"),
        method: "POST",
        path: "/".into(),
        query: Vec::new(),
        headers: vec![(
            "Content-Type".into(),
            "application/x-www-form-urlencoded; charset=utf-8".into(),
        )],
        body: form_body(params).into_bytes(),
        unsigned_payload: false,
        idempotent,
    }
}

/// `DescribeSnapshots` of one snapshot.
pub fn describe_snapshot(client: &Client, snapshot_id: &str) -> Result<SnapshotState, Error> {
    let c = call(
        "DescribeSnapshots",
        &describe_snapshots_params(snapshot_id),
        true,
    );
    let r = client.send(&c)?;
    parse_snapshot_state(&String::from_utf8_lossy(&r.body), snapshot_id).map_err(|message| {
        Error::Protocol {
            op: c.op.clone(),
            message,
        }
    })
}

/// `RegisterImage`; returns the new image id. Refuses a request whose snapshot is still the
/// build-time placeholder.
pub fn register_image(client: &Client, request: &RegisterImage) -> Result<String, Error> {
    if request
        .block_device_mappings
        .iter()
        .any(|m| m.ebs.snapshot_id == SNAPSHOT_PLACEHOLDER || m.ebs.snapshot_id.is_empty())
    {
        return Err(Error::Input(
            "RegisterImage: the request has no snapshot id yet".into(),
        ));
    }
    // Not idempotent: a second RegisterImage of the same name fails, so only retried when the
    // first cannot have been processed.
    let c = call("RegisterImage", &register_image_params(request), false);
    let r = client.send(&c)?;
    let xml = String::from_utf8_lossy(&r.body);
    match xml_text(&xml, "imageId") {
        Some(id) if id.starts_with("ami-") => Ok(id),
        _ => Err(Error::Protocol {
            op: c.op,
            message: format!("no imageId in {}", xml.trim()),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::register::Image;

    fn request() -> RegisterImage {
        RegisterImage::new(&Image {
            id: "minimal".into(),
            name: "Minimal Linux".into(),
            version: "1.0.0".into(),
            channel: "alpha".into(),
            disk_size: 843_055_104,
        })
        .with_snapshot("snap-0123456789abcdef0")
    }

    #[test]
    fn register_image_flattened() {
        let got = form_body(&register_image_params(&request()));
        let want = [
            "Action=RegisterImage",
            "Version=2016-11-15",
            "Name=minimal-alpha-1.0.0-hvm",
            "Description=Minimal%20Linux%201.0.0%20%28alpha%29",
            "Architecture=x86_64",
            "VirtualizationType=hvm",
            "EnaSupport=true",
            "SriovNetSupport=simple",
            "BootMode=uefi",
            "ImdsSupport=v2.0",
            "RootDeviceName=%2Fdev%2Fxvda",
            "BlockDeviceMapping.1.DeviceName=%2Fdev%2Fxvda",
            "BlockDeviceMapping.1.Ebs.SnapshotId=snap-0123456789abcdef0",
            "BlockDeviceMapping.1.Ebs.VolumeSize=1",
            "BlockDeviceMapping.1.Ebs.VolumeType=gp3",
            "BlockDeviceMapping.1.Ebs.DeleteOnTermination=true",
        ]
        .join("&");
        assert_eq!(got, want);
    }

    #[test]
    fn describe_snapshots_flattened() {
        assert_eq!(
            form_body(&describe_snapshots_params("snap-1")),
            "Action=DescribeSnapshots&Version=2016-11-15&SnapshotId.1=snap-1"
        );
    }

    #[test]
    fn xml_answers() {
        let register = r#"<?xml version="1.0" encoding="UTF-8"?>
<RegisterImageResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
  <requestId>59dbff89-35bd-4eac-99ed-be587EXAMPLE</requestId>
  <imageId>ami-1234567890EXAMPLE</imageId>
</RegisterImageResponse>"#;
        assert_eq!(
            xml_text(register, "imageId").as_deref(),
            Some("ami-1234567890EXAMPLE")
        );
        assert_eq!(xml_text(register, "image"), None);
        assert_eq!(
            xml_text("<a><Message>x &lt; y &amp; z</Message></a>", "Message").as_deref(),
            Some("x < y & z")
        );
        assert_eq!(
            xml_text("<a><Message/></a>", "Message").as_deref(),
            Some("")
        );
        let describe = r#"<DescribeSnapshotsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
  <requestId>r</requestId>
  <snapshotSet>
    <item>
      <snapshotId>snap-other</snapshotId>
      <status>error</status>
    </item>
    <item>
      <snapshotId>snap-1</snapshotId>
      <tagSet><item><key>status</key><value>completed</value></item></tagSet>
      <volumeId>vol-1</volumeId>
      <status>pending</status>
      <startTime>2025-01-01T00:00:00.000Z</startTime>
      <progress>40%</progress>
      <tagSet><item><key>Name</key><value>status</value></item></tagSet>
    </item>
  </snapshotSet>
</DescribeSnapshotsResponse>"#;
        assert_eq!(
            parse_snapshot_state(describe, "snap-1").unwrap(),
            SnapshotState {
                status: "pending".into(),
                progress: Some("40%".into()),
                message: None,
            }
        );
        assert!(parse_snapshot_state(describe, "snap-2").is_err());
    }

    #[test]
    fn placeholder_is_refused_before_any_request() {
        let r = RegisterImage::new(&Image {
            id: "m".into(),
            name: "M".into(),
            version: "1.0.0".into(),
            channel: "alpha".into(),
            disk_size: 1,
        });
        let client = Client::new(crate::aws::Config {
            credentials: crate::sigv4::Credentials {
                access_key_id: "a".into(),
                secret_access_key: "b".into(),
                session_token: None,
            },
            region: "us-east-1".into(),
            // Nothing listens there; the refusal comes first.
            endpoint: Some("http://127.0.0.1:9".into()),
        })
        .unwrap();
        let e = register_image(&client, &r).unwrap_err().to_string();
        assert!(e.contains("no snapshot id"), "{e}");
    }
}
