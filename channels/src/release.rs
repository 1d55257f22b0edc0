//! A release's payload: the files a machine needs to switch slots, under the names the signed
//! manifest lists them by, the whole disk image for installing the release onto a disk, and
//! `release.json` describing them. `image-builder payload` writes it from a build, `publish`
//! puts it in the repository, the update engine reads `release.json` (after checking its hash
//! against the manifest) before it writes a slot.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The USR slot image (squashfs).
pub const USR_IMG: &str = "usr.img";
/// The kernel.
pub const KERNEL: &str = "vmlinuz";
/// The initramfs.
pub const INITRD: &str = "initrd.img";
/// The release metadata ([`ReleaseInfo`]).
pub const RELEASE_JSON: &str = "release.json";
/// The files a slot update needs besides [`RELEASE_JSON`], in the order they are written.
/// [`DISK_IMAGE`] is not among them: an update never downloads the whole disk.
pub const PAYLOAD_FILES: [&str; 3] = [USR_IMG, KERNEL, INITRD];
/// The whole raw disk image, zstd-compressed ([`DiskInfo`]): what an installer writes to a
/// machine's disk.
pub const DISK_IMAGE: &str = "disk.img.zst";

/// One file's identity: its length and sha256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileInfo {
    pub size: u64,
    /// Lowercase hex.
    pub sha256: String,
}

impl FileInfo {
    /// The identity of `bytes`.
    pub fn of(bytes: &[u8]) -> FileInfo {
        FileInfo {
            size: bytes.len() as u64,
            sha256: hex::encode(Sha256::digest(bytes)),
        }
    }
}

/// `release.json`: what the payload is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseInfo {
    /// `ID` of the OS (a machine refuses another OS's release).
    pub os_id: String,
    /// `NAME` of the OS.
    pub os_name: String,
    pub version: String,
    /// The channel it was built for.
    pub channel: String,
    /// The kernel's release (`uname -r`).
    pub kernel_release: String,
    /// Size of the USR partition the image was built for (bytes); a slot must be at least this.
    pub usr_partition_size: u64,
    /// [`PAYLOAD_FILES`] by name.
    pub files: BTreeMap<String, FileInfo>,
    /// The installable disk image; absent from releases published before there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk: Option<DiskInfo>,
}

/// The whole disk of a release: the raw image an installer writes, and the compressed payload
/// it downloads. The installer checks the download against `compressed` (the manifest lists the
/// same size and sha256 under `file`), the decompressed stream against `raw`, and reads `raw`'s
/// size back from the disk to check what it wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskInfo {
    /// The payload's name in the manifest ([`DISK_IMAGE`]): one zstd frame of the raw image.
    pub file: String,
    /// The compressed file.
    pub compressed: FileInfo,
    /// The raw disk image (GPT; the disk it is written to must hold at least `raw.size` bytes).
    pub raw: FileInfo,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shape() {
        let info = ReleaseInfo {
            os_id: "minimal".into(),
            os_name: "Minimal Linux".into(),
            version: "1.0.1".into(),
            channel: "alpha".into(),
            kernel_release: "6.1.0-56-cloud-amd64".into(),
            usr_partition_size: 256 << 20,
            files: BTreeMap::from([(USR_IMG.to_string(), FileInfo::of(b"usr"))]),
            disk: None,
        };
        let text = serde_json::to_string(&info).unwrap();
        assert!(
            text.starts_with("{\"os_id\":\"minimal\",\"os_name\":"),
            "{text}"
        );
        assert!(
            text.contains("\"usr.img\":{\"size\":3,\"sha256\":\""),
            "{text}"
        );
        assert_eq!(serde_json::from_str::<ReleaseInfo>(&text).unwrap(), info);
        assert!(!text.contains("disk"), "no disk, no key: {text}");
    }

    #[test]
    fn the_disk_is_optional_and_round_trips() {
        // A release.json written before releases carried a disk image.
        let old = r#"{"os_id":"minimal","os_name":"Minimal Linux","version":"1.0.0",
            "channel":"alpha","kernel_release":"6.1.0","usr_partition_size":1024,"files":{}}"#;
        let mut info: ReleaseInfo = serde_json::from_str(old).unwrap();
        assert_eq!(info.disk, None);

        info.disk = Some(DiskInfo {
            file: DISK_IMAGE.into(),
            compressed: FileInfo::of(b"zst"),
            raw: FileInfo::of(b"raw disk"),
        });
        let text = serde_json::to_string(&info).unwrap();
        assert!(
            text.ends_with(&format!(
                r#""disk":{{"file":"disk.img.zst","compressed":{{"size":3,"sha256":"{}"}},"raw":{{"size":8,"sha256":"{}"}}}}}}"#,
                FileInfo::of(b"zst").sha256,
                FileInfo::of(b"raw disk").sha256
            )),
            "{text}"
        );
        assert_eq!(serde_json::from_str::<ReleaseInfo>(&text).unwrap(), info);
        assert!(
            !PAYLOAD_FILES.contains(&DISK_IMAGE),
            "a slot update needs no disk"
        );
    }
}
