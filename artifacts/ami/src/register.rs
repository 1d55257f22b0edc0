//! The EC2 `RegisterImage` request for an image, as the JSON `aws ec2 register-image
//! --cli-input-json` reads (SPECS.md S10; AWS EC2 API `RegisterImage`).
//!
//! A pure function of the image's identity and disk size. The snapshot does not exist at build
//! time: [`SNAPSHOT_PLACEHOLDER`] stands in its place until an upload fills it in with
//! [`RegisterImage::with_snapshot`].

use serde::{Deserialize, Serialize};

/// What `SnapshotId` says until the disk is uploaded.
pub const SNAPSHOT_PLACEHOLDER: &str = "<filled at upload>";
pub const ROOT_DEVICE: &str = "/dev/xvda";
const GIB: u64 = 1 << 30;

/// The identity of the image being registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// `os.id` (`minimal`).
    pub id: String,
    /// `os.name` (`Minimal Linux`).
    pub name: String,
    pub version: String,
    pub channel: String,
    /// Size of the disk in bytes (the root volume is at least this, in whole GiB).
    pub disk_size: u64,
}

/// `RegisterImage` input, fields in the order the API documents them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct RegisterImage {
    pub name: String,
    pub description: String,
    pub architecture: String,
    pub virtualization_type: String,
    pub ena_support: bool,
    pub sriov_net_support: String,
    pub boot_mode: String,
    pub imds_support: String,
    pub root_device_name: String,
    pub block_device_mappings: Vec<BlockDeviceMapping>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct BlockDeviceMapping {
    pub device_name: String,
    pub ebs: Ebs,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Ebs {
    pub snapshot_id: String,
    /// GiB.
    pub volume_size: u64,
    pub volume_type: String,
    pub delete_on_termination: bool,
}

impl RegisterImage {
    /// The request for an image: hvm, x86_64, ENA, UEFI boot, IMDSv2 only, a gp3 root volume
    /// on `/dev/xvda` from the uploaded snapshot.
    pub fn new(image: &Image) -> RegisterImage {
        RegisterImage {
            name: format!("{}-{}-{}-hvm", image.id, image.channel, image.version),
            description: format!("{} {} ({})", image.name, image.version, image.channel),
            architecture: "x86_64".into(),
            virtualization_type: "hvm".into(),
            ena_support: true,
            sriov_net_support: "simple".into(),
            boot_mode: "uefi".into(),
            imds_support: "v2.0".into(),
            root_device_name: ROOT_DEVICE.into(),
            block_device_mappings: vec![BlockDeviceMapping {
                device_name: ROOT_DEVICE.into(),
                ebs: Ebs {
                    snapshot_id: SNAPSHOT_PLACEHOLDER.into(),
                    volume_size: image.disk_size.div_ceil(GIB).max(1),
                    volume_type: "gp3".into(),
                    delete_on_termination: true,
                },
            }],
        }
    }

    /// The same request for an uploaded snapshot.
    pub fn with_snapshot(mut self, snapshot_id: &str) -> RegisterImage {
        for m in &mut self.block_device_mappings {
            m.ebs.snapshot_id = snapshot_id.to_string();
        }
        self
    }

    /// Pretty JSON with a final newline.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("plain data serialises");
        s.push('\n');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image() -> Image {
        Image {
            id: "minimal".into(),
            name: "Minimal Linux".into(),
            version: "1.0.0".into(),
            channel: "alpha".into(),
            disk_size: 843_055_104,
        }
    }

    #[test]
    fn whole_json() {
        let want = r#"{
  "Name": "minimal-alpha-1.0.0-hvm",
  "Description": "Minimal Linux 1.0.0 (alpha)",
  "Architecture": "x86_64",
  "VirtualizationType": "hvm",
  "EnaSupport": true,
  "SriovNetSupport": "simple",
  "BootMode": "uefi",
  "ImdsSupport": "v2.0",
  "RootDeviceName": "/dev/xvda",
  "BlockDeviceMappings": [
    {
      "DeviceName": "/dev/xvda",
      "Ebs": {
        "SnapshotId": "<filled at upload>",
        "VolumeSize": 1,
        "VolumeType": "gp3",
        "DeleteOnTermination": true
      }
    }
  ]
}
"#;
        assert_eq!(RegisterImage::new(&image()).to_json(), want);
    }

    #[test]
    fn volume_rounds_up_to_whole_gib_and_snapshot_fills_in() {
        let mut i = image();
        i.disk_size = GIB + 1;
        let r = RegisterImage::new(&i).with_snapshot("snap-0123456789abcdef0");
        let ebs = &r.block_device_mappings[0].ebs;
        assert_eq!(ebs.volume_size, 2);
        assert_eq!(ebs.snapshot_id, "snap-0123456789abcdef0");
        let back: RegisterImage = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(back, r);
    }
}
