//! The EBS direct APIs, as coldsnap uses them: `StartSnapshot`, `PutSnapshotBlock` for every
//! block of the raw disk that is not all zeroes (a snapshot reads zeroes where nothing was
//! written), several at a time, then `CompleteSnapshot` with the linear aggregate checksum;
//! then EC2 `DescribeSnapshots` until the snapshot is `completed`.
//!
//! The block size is the one `StartSnapshot` answers (524288 bytes on AWS). Each block carries
//! its base64 SHA-256 (`x-amz-Checksum`); the body itself is signed as `UNSIGNED-PAYLOAD`, as
//! the API documents. The file is read once, front to back, and hashed whole on the way: the
//! snapshot is completed only if those bytes are the ones build.json names.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::aws::{Call, Client, Error};

/// The block size of the EBS direct APIs on AWS.
pub const AWS_BLOCK_SIZE: usize = 512 << 10;
/// Minutes of inactivity after which AWS cancels a pending snapshot.
pub const SNAPSHOT_TIMEOUT_MINUTES: u32 = 60;
const GIB: u64 = 1 << 30;
const MIB: u64 = 1 << 20;
/// How often the upload reports progress.
const PROGRESS_EVERY: Duration = Duration::from_secs(10);

/// `StartSnapshot` input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartSnapshot {
    /// GiB.
    pub volume_size: u64,
    pub description: String,
    pub client_token: String,
    pub timeout_minutes: u32,
    pub tags: Vec<(String, String)>,
}

/// What `StartSnapshot` answered.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Started {
    pub snapshot_id: String,
    pub block_size: u64,
    pub status: String,
}

/// The blocks written to a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uploaded {
    /// Blocks written (the non-zero ones).
    pub changed_blocks: u64,
    /// Base64 SHA-256 over the blocks' SHA-256 digests in block order.
    pub checksum: String,
    /// Blocks in the disk, written or not.
    pub total_blocks: u64,
}

/// Whole GiB holding `size` bytes (at least 1): the snapshot's volume size.
pub fn volume_size_gib(size: u64) -> u64 {
    size.div_ceil(GIB).max(1)
}

/// `StartSnapshot`'s idempotency token: the image's sha256 (hex), so a repeated upload of the
/// same image within AWS's idempotency window gets the same snapshot back.
pub fn client_token(image_sha256: &str) -> String {
    format!("sha256-{image_sha256}")
}

/// The JSON body of `StartSnapshot`.
pub fn start_snapshot_body(s: &StartSnapshot) -> String {
    let tags: Vec<serde_json::Value> = s
        .tags
        .iter()
        .map(|(k, v)| serde_json::json!({"Key": k, "Value": v}))
        .collect();
    serde_json::json!({
        "VolumeSize": s.volume_size,
        "Description": s.description,
        "ClientToken": s.client_token,
        "Timeout": s.timeout_minutes,
        "Tags": tags,
    })
    .to_string()
}

/// Standard base64 with padding (RFC 4648).
pub use util::base64::encode as base64;

/// SHA-256 of a block (its `x-amz-Checksum` is the base64 of this).
pub fn block_digest(block: &[u8]) -> [u8; 32] {
    Sha256::digest(block).into()
}

/// `CompleteSnapshot`'s `x-amz-Checksum` with the `LINEAR` aggregation: base64 SHA-256 over
/// the concatenated raw SHA-256 digests of the written blocks, in ascending block index order.
pub fn aggregate_checksum(digests: &BTreeMap<u64, [u8; 32]>) -> String {
    let mut h = Sha256::new();
    for d in digests.values() {
        h.update(d);
    }
    base64(&h.finalize())
}

/// Whether a block holds only zeroes (and so need not be written).
pub fn is_zero(block: &[u8]) -> bool {
    let mut words = block.chunks_exact(8);
    words
        .by_ref()
        .all(|w| u64::from_ne_bytes(w.try_into().expect("8 bytes")) == 0)
        && words.remainder().iter().all(|&b| b == 0)
}

/// The `PutSnapshotBlock` call of one block.
pub fn put_block_call(snapshot_id: &str, index: u64, block: Vec<u8>, digest: &[u8; 32]) -> Call {
    Call {
        service: "ebs",
        op: format!("EBS PutSnapshotBlock (block {index})"),
        method: "PUT",
        path: format!("/snapshots/{snapshot_id}/blocks/{index}"),
        query: Vec::new(),
        headers: vec![
            ("Content-Type".into(), "application/octet-stream".into()),
            ("x-amz-Data-Length".into(), block.len().to_string()),
            ("x-amz-Checksum".into(), base64(digest)),
            ("x-amz-Checksum-Algorithm".into(), "SHA256".into()),
        ],
        body: block,
        unsigned_payload: true,
        idempotent: true,
    }
}

/// The `CompleteSnapshot` call.
pub fn complete_call(snapshot_id: &str, changed_blocks: u64, checksum: &str) -> Call {
    Call {
        service: "ebs",
        op: "EBS CompleteSnapshot".into(),
        method: "POST",
        path: format!("/snapshots/completion/{snapshot_id}"),
        query: Vec::new(),
        headers: vec![
            (
                "x-amz-ChangedBlocksCount".into(),
                changed_blocks.to_string(),
            ),
            ("x-amz-Checksum".into(), checksum.into()),
            ("x-amz-Checksum-Algorithm".into(), "SHA256".into()),
            ("x-amz-Checksum-Aggregation-Method".into(), "LINEAR".into()),
        ],
        body: Vec::new(),
        unsigned_payload: false,
        idempotent: true,
    }
}

/// `StartSnapshot`. Checks the answer: a snapshot id and a usable block size.
pub fn start_snapshot(client: &Client, s: &StartSnapshot) -> Result<Started, Error> {
    let op = "EBS StartSnapshot";
    let call = Call {
        service: "ebs",
        op: op.into(),
        method: "POST",
        path: "/snapshots".into(),
        query: Vec::new(),
        headers: vec![("Content-Type".into(), "application/json".into())],
        body: start_snapshot_body(s).into_bytes(),
        unsigned_payload: false,
        // The client token makes a repeat return the same snapshot.
        idempotent: true,
    };
    let r = client.send(&call)?;
    let started: Started = serde_json::from_slice(&r.body).map_err(|e| Error::Protocol {
        op: op.into(),
        message: format!("{e}: {}", String::from_utf8_lossy(&r.body)),
    })?;
    if started.block_size == 0
        || !started.block_size.is_multiple_of(512)
        || started.block_size > 64 * MIB
    {
        return Err(Error::Protocol {
            op: op.into(),
            message: format!(
                "block size {} is not a multiple of 512 up to 64 MiB",
                started.block_size
            ),
        });
    }
    if !started.snapshot_id.starts_with("snap-") {
        return Err(Error::Protocol {
            op: op.into(),
            message: format!("snapshot id {:?}", started.snapshot_id),
        });
    }
    Ok(started)
}

/// `CompleteSnapshot`; returns the status it answers (`pending` or `completed`).
pub fn complete_snapshot(
    client: &Client,
    snapshot_id: &str,
    uploaded: &Uploaded,
) -> Result<String, Error> {
    let call = complete_call(snapshot_id, uploaded.changed_blocks, &uploaded.checksum);
    let r = client.send(&call)?;
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Answer {
        status: String,
    }
    let a: Answer = serde_json::from_slice(&r.body).map_err(|e| Error::Protocol {
        op: call.op.clone(),
        message: format!("{e}: {}", String::from_utf8_lossy(&r.body)),
    })?;
    if a.status == "error" {
        return Err(Error::Protocol {
            op: call.op,
            message: format!("snapshot {snapshot_id} is in state error"),
        });
    }
    Ok(a.status)
}

/// Write every non-zero block of `path` (of `size` bytes) to the snapshot with `threads`
/// uploads at a time. The whole file is hashed on the way and must hash to `sha256` (hex):
/// else the error says so and the snapshot is left incomplete. `log` gets progress lines.
pub fn upload_blocks(
    client: &Client,
    path: &Path,
    size: u64,
    sha256: &str,
    started: &Started,
    threads: usize,
    log: &dyn Fn(&str),
) -> Result<Uploaded, Error> {
    let io_err = |error| Error::Io {
        path: path.to_path_buf(),
        error,
    };
    let mut file = File::open(path).map_err(io_err)?;
    let block_size = started.block_size as usize;
    let total_blocks = size.div_ceil(block_size as u64);
    let snapshot_id = started.snapshot_id.as_str();

    let (tx, rx) = mpsc::sync_channel::<(u64, Vec<u8>)>(threads.max(1) * 2);
    let rx = Mutex::new(rx);
    let digests = Mutex::new(BTreeMap::new());
    let failed: Mutex<Option<Error>> = Mutex::new(None);
    let abort = AtomicBool::new(false);
    let done_blocks = AtomicU64::new(0);

    let mut hasher = Sha256::new();
    let mut sent = 0u64;
    let mut read_error = None;
    let started_at = Instant::now();
    let mut last_log = Instant::now();
    let progress = |read: u64, sent: u64| {
        format!(
            "{} of {} non-zero blocks written, {} of {} MiB read ({} s)",
            done_blocks.load(Ordering::Relaxed),
            sent,
            read / MIB,
            size / MIB,
            started_at.elapsed().as_secs()
        )
    };

    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads.max(1))
            .map(|_| {
                scope.spawn(|| loop {
                    let next = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                    let Ok((index, block)) = next else { break };
                    if abort.load(Ordering::Relaxed) {
                        continue;
                    }
                    let digest = block_digest(&block);
                    match client.send(&put_block_call(snapshot_id, index, block, &digest)) {
                        Ok(_) => {
                            digests
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .insert(index, digest);
                            done_blocks.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => {
                            abort.store(true, Ordering::Relaxed);
                            failed
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .get_or_insert(e);
                        }
                    }
                })
            })
            .collect();

        let mut pos = 0u64;
        for index in 0..total_blocks {
            if abort.load(Ordering::Relaxed) {
                break;
            }
            let len = (size - pos).min(block_size as u64) as usize;
            let mut block = vec![0u8; block_size];
            if let Err(e) = file.read_exact(&mut block[..len]) {
                read_error = Some(io_err(e));
                break;
            }
            // The last block is padded with zeroes to the block size; the hash covers the
            // file's bytes only.
            hasher.update(&block[..len]);
            pos += len as u64;
            if !is_zero(&block) {
                sent += 1;
                if tx.send((index, block)).is_err() {
                    break;
                }
            }
            if last_log.elapsed() >= PROGRESS_EVERY {
                log(&progress(pos, sent));
                last_log = Instant::now();
            }
        }
        drop(tx);
        while !workers.iter().all(|w| w.is_finished()) {
            std::thread::sleep(Duration::from_millis(50));
            if last_log.elapsed() >= PROGRESS_EVERY {
                log(&progress(pos, sent));
                last_log = Instant::now();
            }
        }
        log(&progress(pos, sent));
    });

    if let Some(e) = failed.into_inner().unwrap_or_else(|e| e.into_inner()) {
        return Err(e);
    }
    if let Some(e) = read_error {
        return Err(e);
    }
    let got = hex::encode(hasher.finalize());
    if got != sha256 {
        return Err(Error::Input(format!(
            "{} changed while it was uploaded (sha256 {got}, build.json says {sha256}); \
             snapshot {snapshot_id} was not completed",
            path.display()
        )));
    }
    let digests = digests.into_inner().unwrap_or_else(|e| e.into_inner());
    Ok(Uploaded {
        changed_blocks: digests.len() as u64,
        checksum: aggregate_checksum(&digests),
        total_blocks,
    })
}

/// Poll `DescribeSnapshots` until the snapshot is `completed`; an `error` state, or still
/// pending after `timeout`, is an error.
pub fn wait_completed(
    client: &Client,
    snapshot_id: &str,
    timeout: Duration,
    log: &dyn Fn(&str),
) -> Result<(), Error> {
    let start = Instant::now();
    let mut delay = Duration::from_secs(1);
    loop {
        let last = match crate::ec2::describe_snapshot(client, snapshot_id) {
            Ok(s) if s.status == "completed" => return Ok(()),
            Ok(s) if s.status == "error" => {
                return Err(Error::Protocol {
                    op: "EC2 DescribeSnapshots".into(),
                    message: format!(
                        "snapshot {snapshot_id} is in state error: {}",
                        s.message.unwrap_or_default()
                    ),
                })
            }
            Ok(s) => match &s.progress {
                Some(p) => format!("{} ({p})", s.status),
                None => s.status.clone(),
            },
            // Not visible to EC2 yet.
            Err(Error::Api { code, .. }) if code == "InvalidSnapshot.NotFound" => {
                "not found yet".to_string()
            }
            Err(e) => return Err(e),
        };
        let waited = start.elapsed();
        if waited >= timeout {
            return Err(Error::Timeout(format!(
                "snapshot {snapshot_id} is still {last} after {} s; it may complete later \
                 (see EC2 DescribeSnapshots) and can then be registered",
                waited.as_secs()
            )));
        }
        log(&format!("snapshot {snapshot_id}: {last}"));
        std::thread::sleep(delay.min(timeout.saturating_sub(waited)));
        delay = (delay * 2).min(Duration::from_secs(15));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_checksums() {
        // sha256 of 512 KiB of zeroes / of "abc", computed with sha256sum | xxd -r -p | base64.
        let zero = vec![0u8; AWS_BLOCK_SIZE];
        assert_eq!(
            base64(&block_digest(&zero)),
            "B4VNL+8pega6gWheZgwzLeNtXRjVRpJ9MNqtbX/aFUE="
        );
        assert_eq!(
            base64(&block_digest(b"abc")),
            "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0="
        );
    }

    #[test]
    fn aggregate_is_over_raw_digests_in_index_order() {
        let a = block_digest(b"a");
        let b = block_digest(b"b");
        let mut m = BTreeMap::new();
        // Inserted out of order: the map orders by index.
        m.insert(9, b);
        m.insert(2, a);
        let mut cat = a.to_vec();
        cat.extend_from_slice(&b);
        assert_eq!(aggregate_checksum(&m), base64(&Sha256::digest(&cat)));
        // Hand-computed: printf a | sha256sum; printf b | sha256sum; the two digests'
        // bytes concatenated | sha256sum | xxd -r -p | base64.
        assert_eq!(
            aggregate_checksum(&m),
            "5aAf7hTg7VxIcU8iGA8lrYNltT+XefedxKPX6Tlj+Uo="
        );
        assert_eq!(
            aggregate_checksum(&BTreeMap::new()),
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
    }

    #[test]
    fn zero_blocks() {
        assert!(is_zero(&[0; 1000]));
        assert!(is_zero(&[]));
        let mut b = vec![0u8; 1003];
        b[1002] = 1;
        assert!(!is_zero(&b));
        b[1002] = 0;
        b[0] = 1;
        assert!(!is_zero(&b));
    }

    #[test]
    fn start_snapshot_json() {
        let s = StartSnapshot {
            volume_size: 1,
            description: "Minimal Linux 1.0.0 (alpha)".into(),
            client_token: client_token("ab"),
            timeout_minutes: 60,
            tags: vec![("Name".into(), "minimal-alpha-1.0.0-hvm".into())],
        };
        assert_eq!(
            start_snapshot_body(&s),
            r#"{"ClientToken":"sha256-ab","Description":"Minimal Linux 1.0.0 (alpha)","Tags":[{"Key":"Name","Value":"minimal-alpha-1.0.0-hvm"}],"Timeout":60,"VolumeSize":1}"#
        );
        assert_eq!(volume_size_gib(0), 1);
        assert_eq!(volume_size_gib(GIB), 1);
        assert_eq!(volume_size_gib(GIB + 1), 2);
    }

    #[test]
    fn block_calls() {
        let c = put_block_call("snap-1", 7, b"abc".to_vec(), &block_digest(b"abc"));
        assert_eq!(
            (c.method, c.path.as_str()),
            ("PUT", "/snapshots/snap-1/blocks/7")
        );
        assert!(c.unsigned_payload && c.idempotent);
        let h: BTreeMap<_, _> = c.headers.iter().cloned().collect();
        assert_eq!(h["x-amz-Data-Length"], "3");
        assert_eq!(
            h["x-amz-Checksum"],
            "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0="
        );
        assert_eq!(h["x-amz-Checksum-Algorithm"], "SHA256");
        let c = complete_call("snap-1", 3, "X=");
        assert_eq!(c.path, "/snapshots/completion/snap-1");
        let h: BTreeMap<_, _> = c.headers.iter().cloned().collect();
        assert_eq!(h["x-amz-ChangedBlocksCount"], "3");
        assert_eq!(h["x-amz-Checksum"], "X=");
        assert_eq!(h["x-amz-Checksum-Aggregation-Method"], "LINEAR");
    }
}
