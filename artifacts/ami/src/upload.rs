//! The upload path behind `image-builder ami-upload`: verify the raw disk against the build's
//! record, write it to an EBS snapshot ([`crate::ebs`]), wait for the snapshot, register the
//! AMI ([`crate::ec2`]) and record the result next to the build's `RegisterImage` input.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::aws::{Client, Config, Error};
use crate::ebs::{self, StartSnapshot};
use crate::register::RegisterImage;

/// The build's files for the upload, with what build.json says of the disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The raw disk (`<os>_<version>_ami.img`).
    pub img: PathBuf,
    /// Its size and hex sha256 as build.json records them.
    pub size: u64,
    pub sha256: String,
    /// The `RegisterImage` input (`<os>_<version>_ami.json`).
    pub request: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// AMI name instead of the build's.
    pub name: Option<String>,
    /// Register the AMI after the snapshot completed.
    pub register: bool,
    /// Blocks uploaded at a time.
    pub threads: usize,
    /// How long to wait for the snapshot to be `completed`.
    pub wait_timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            name: None,
            register: true,
            threads: 8,
            wait_timeout: Duration::from_secs(30 * 60),
        }
    }
}

/// What the upload made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub snapshot_id: String,
    /// The registered AMI, unless not asked to register.
    pub image_id: Option<String>,
    /// The `RegisterImage` request as sent (with the snapshot id).
    pub request: RegisterImage,
    /// `<…>_ami.registered.json`, when registered.
    pub registered: Option<PathBuf>,
    /// Blocks written (non-zero) and in all.
    pub changed_blocks: u64,
    pub total_blocks: u64,
}

/// The registered image's record: the request as sent, then its id.
#[derive(Debug, Serialize)]
struct Registered<'a> {
    #[serde(flatten)]
    request: &'a RegisterImage,
    #[serde(rename = "ImageId")]
    image_id: &'a str,
}

/// The registration record's JSON (pretty, final newline).
pub fn registered_json(request: &RegisterImage, image_id: &str) -> String {
    let mut s = serde_json::to_string_pretty(&Registered { request, image_id })
        .expect("plain data serialises");
    s.push('\n');
    s
}

/// `x_ami.json` → `x_ami.registered.json`.
pub fn registered_path(request: &Path) -> PathBuf {
    let stem = request
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    request.with_file_name(format!("{stem}.registered.json"))
}

/// Whether `name` is a valid AMI name: 3 to 128 characters of letters, digits and `()[] ./-'@_`.
pub fn check_ami_name(name: &str) -> Result<(), Error> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || "()[] ./-'@_".contains(c);
    if (3..=128).contains(&name.len()) && name.chars().all(ok_char) {
        Ok(())
    } else {
        Err(Error::Input(format!(
            "AMI name {name:?}: 3 to 128 characters of letters, digits and ()[] ./-'@_"
        )))
    }
}

/// The build's `RegisterImage` input, with the name replaced if asked.
pub fn load_request(path: &Path, name: Option<&str>) -> Result<RegisterImage, Error> {
    let text = std::fs::read_to_string(path).map_err(|error| Error::Io {
        path: path.to_path_buf(),
        error,
    })?;
    let mut r: RegisterImage = serde_json::from_str(&text).map_err(|e| {
        Error::Input(format!(
            "{}: not a RegisterImage input: {e}",
            path.display()
        ))
    })?;
    if let Some(n) = name {
        r.name = n.to_string();
    }
    check_ami_name(&r.name)?;
    if r.block_device_mappings.len() != 1 {
        return Err(Error::Input(format!(
            "{}: expected one block device mapping (the root volume), found {}",
            path.display(),
            r.block_device_mappings.len()
        )));
    }
    Ok(r)
}

/// Check a file's size and sha256 against the build's record.
pub fn verify(path: &Path, size: u64, sha256: &str) -> Result<(), Error> {
    let io_err = |error| Error::Io {
        path: path.to_path_buf(),
        error,
    };
    let mut f = std::fs::File::open(path).map_err(io_err)?;
    let actual = f.metadata().map_err(io_err)?.len();
    if actual != size {
        return Err(Error::Input(format!(
            "{} is {actual} bytes, build.json says {size}: the file changed after the build; \
             rebuild it (nothing was uploaded)",
            path.display()
        )));
    }
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 4 << 20];
    loop {
        let n = f.read(&mut buf).map_err(io_err)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    let got = hex::encode(h.finalize());
    if got != sha256 {
        return Err(Error::Input(format!(
            "{}: sha256 {got} differs from build.json's {sha256}: the file changed after the \
             build; rebuild it (nothing was uploaded)",
            path.display()
        )));
    }
    Ok(())
}

/// Write a small file whole or not at all ([`util::fs::write_atomic`]).
fn write_atomic(path: &Path, text: &str) -> Result<(), Error> {
    util::fs::write_atomic(path, text.as_bytes()).map_err(|error| Error::Io {
        path: path.to_path_buf(),
        error,
    })
}

/// Verify, upload, wait, register. `log` gets progress lines (for stderr).
pub fn run(
    source: &Source,
    config: Config,
    opts: &Options,
    log: &dyn Fn(&str),
) -> Result<Outcome, Error> {
    if !(1..=64).contains(&opts.threads) {
        return Err(Error::Config(format!(
            "--threads {}: give 1 to 64",
            opts.threads
        )));
    }
    let request = load_request(&source.request, opts.name.as_deref())?;
    let volume = request.block_device_mappings[0].ebs.volume_size;
    let needed = ebs::volume_size_gib(source.size);
    if needed > volume {
        return Err(Error::Input(format!(
            "{} needs a {needed} GiB volume but {} asks for {volume} GiB",
            source.img.display(),
            source.request.display()
        )));
    }

    log(&format!(
        "verifying {} ({} MiB) against build.json",
        source.img.display(),
        source.size >> 20
    ));
    verify(&source.img, source.size, &source.sha256)?;

    let client = Client::new(config)?;
    log(&format!(
        "starting a {needed} GiB snapshot at {} (region {})",
        client.config().endpoint("ebs"),
        client.config().region
    ));
    let started = ebs::start_snapshot(
        &client,
        &StartSnapshot {
            volume_size: needed,
            description: request.description.clone(),
            client_token: ebs::client_token(&source.sha256),
            timeout_minutes: ebs::SNAPSHOT_TIMEOUT_MINUTES,
            tags: vec![("Name".into(), request.name.clone())],
        },
    )?;
    let snapshot_id = started.snapshot_id.clone();
    let (changed_blocks, total_blocks) = match started.status.as_str() {
        "pending" => {
            log(&format!(
                "snapshot {snapshot_id}: writing the non-zero blocks of {} bytes, {} at a time",
                started.block_size, opts.threads
            ));
            let uploaded = ebs::upload_blocks(
                &client,
                &source.img,
                source.size,
                &source.sha256,
                &started,
                opts.threads,
                log,
            )?;
            log(&format!(
                "snapshot {snapshot_id}: {} of {} blocks written; completing",
                uploaded.changed_blocks, uploaded.total_blocks
            ));
            ebs::complete_snapshot(&client, &snapshot_id, &uploaded)?;
            (uploaded.changed_blocks, uploaded.total_blocks)
        }
        // The same client token (same image) answered an earlier, finished snapshot.
        "completed" => {
            log(&format!(
                "snapshot {snapshot_id} of this image is already completed; reusing it"
            ));
            (0, 0)
        }
        other => {
            return Err(Error::Protocol {
                op: "EBS StartSnapshot".into(),
                message: format!("snapshot {snapshot_id} is in state {other}"),
            })
        }
    };
    ebs::wait_completed(&client, &snapshot_id, opts.wait_timeout, log)?;
    log(&format!("snapshot {snapshot_id} completed"));

    let request = request.with_snapshot(&snapshot_id);
    let mut outcome = Outcome {
        snapshot_id,
        image_id: None,
        request,
        registered: None,
        changed_blocks,
        total_blocks,
    };
    if opts.register {
        log(&format!("registering AMI {}", outcome.request.name));
        let image_id = crate::ec2::register_image(&client, &outcome.request)?;
        let path = registered_path(&source.request);
        write_atomic(&path, &registered_json(&outcome.request, &image_id))?;
        outcome.image_id = Some(image_id);
        outcome.registered = Some(path);
    }
    Ok(outcome)
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
            disk_size: 1 << 20,
        })
    }

    #[test]
    fn registered_record() {
        let r = request().with_snapshot("snap-1");
        let json = registered_json(&r, "ami-1");
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["ImageId"], "ami-1");
        assert_eq!(v["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"], "snap-1");
        // The request's fields first, in its order, then the id.
        assert!(json.starts_with("{\n  \"Name\": \"minimal-alpha-1.0.0-hvm\",\n"));
        assert!(json.ends_with("  \"ImageId\": \"ami-1\"\n}\n"), "{json}");
        assert_eq!(
            registered_path(Path::new("/b/minimal_1.0.0_ami.json")),
            Path::new("/b/minimal_1.0.0_ami.registered.json")
        );
    }

    #[test]
    fn ami_names() {
        assert!(check_ami_name("minimal-alpha-1.0.0-hvm").is_ok());
        assert!(check_ami_name("a (b) [c] d/e'f@g_h").is_ok());
        for bad in ["ab", "a\u{e9}bc", "x*y", &"a".repeat(129)] {
            assert!(check_ami_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn verify_and_load() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("d.img");
        std::fs::write(&img, b"abc").unwrap();
        let sha = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        verify(&img, 3, sha).unwrap();
        let e = verify(&img, 4, sha).unwrap_err().to_string();
        assert!(e.contains("is 3 bytes, build.json says 4"), "{e}");
        let e = verify(&img, 3, &"0".repeat(64)).unwrap_err().to_string();
        assert!(
            e.contains("differs from build.json") && e.contains("nothing was uploaded"),
            "{e}"
        );

        let json = dir.path().join("r.json");
        std::fs::write(&json, request().to_json()).unwrap();
        assert_eq!(load_request(&json, None).unwrap(), request());
        assert_eq!(
            load_request(&json, Some("other-name")).unwrap().name,
            "other-name"
        );
        assert!(load_request(&json, Some("no*")).is_err());
        std::fs::write(&json, "{}").unwrap();
        let e = load_request(&json, None).unwrap_err().to_string();
        assert!(e.contains("not a RegisterImage input"), "{e}");
    }

    #[test]
    fn write_is_atomic_and_readable() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.registered.json");
        write_atomic(&p, "one\n").unwrap();
        write_atomic(&p, "two\n").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "two\n");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "no temporary file left");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o644
        );
    }
}
