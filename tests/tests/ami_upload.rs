//! `image-builder ami-upload` against local endpoints, checked independently of the uploader.
//!
//! - moto (`moto_server` from the venv `scripts/setup-host.sh` makes) on a loopback port: the
//!   upload of a real build's `ami` output, then, through moto's own API with boto3 (a helper
//!   script run by the venv's python), the snapshot's block list against the disk's non-zero
//!   blocks, a sample of the blocks read back against the disk's bytes, the completed snapshot
//!   and the registered image; through moto's request recorder, every request as sent: each
//!   block's body, index and checksum headers, the aggregate checksum and block count of
//!   `CompleteSnapshot`, and the `RegisterImage` parameters (moto keeps only the name and
//!   description of an image). moto answers a block size of 512 bytes (AWS: 512 KiB), so this
//!   upload makes ~74,000 requests and takes minutes.
//! - A scripted fake endpoint (AWS's 512 KiB blocks, a last block shorter than that, a
//!   transient 503, a `RegisterImage` error), a closed port, a corrupted disk, missing
//!   configuration: one clear error each, nothing registered.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::Read;
use std::net::TcpStream;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tests::{
    assert_clean_failure, free_port, image_builder_bin, sha256_file, shared_variant_build, text,
};

/// Where `scripts/setup-host.sh` installs moto.
const MOTO_VENV: &str = "/opt/image-builder/moto";
const BASE: &str = "minimal_1.0.0_ami";
const REGION: &str = "us-east-1";

fn moto_bin(name: &str) -> PathBuf {
    let p = Path::new(MOTO_VENV).join("bin").join(name);
    assert!(
        p.exists(),
        "{} is missing: run scripts/setup-host.sh (make setup), which installs moto[server] \
         into {MOTO_VENV}",
        p.display()
    );
    p
}

/// Talks to moto with boto3: the recorder, the EBS and EC2 read calls.
const HELPER: &str = r#"
import base64, hashlib, json, sys, urllib.parse, urllib.request
import boto3

url = sys.argv[2]

def client(service):
    return boto3.client(service, region_name="us-east-1", endpoint_url=url,
                        aws_access_key_id="testing", aws_secret_access_key="testing")

def recorder(action):
    req = urllib.request.Request(url + "/moto-api/recorder/" + action, method="POST")
    urllib.request.urlopen(req, timeout=60).read()

cmd = sys.argv[1]
if cmd == "start-recording":
    # A fresh, existing recording file: downloading a recording that was never written fails.
    recorder("reset-recording")
    recorder(cmd)
elif cmd == "stop-recording":
    recorder(cmd)
elif cmd == "recording":
    # One JSON line per recorded request: method, path, lower-case headers, body digest, the
    # x-amz-Checksum header decoded to hex, and the body itself unless it is a block.
    data = urllib.request.urlopen(url + "/moto-api/recorder/download-recording", timeout=300).read()
    with open(sys.argv[3], "w") as out:
        for line in data.decode().splitlines():
            if not line.strip():
                continue
            e = json.loads(line)
            body = e.get("body") or ""
            raw = base64.b64decode(body) if e.get("body_encoded") else body.encode()
            u = urllib.parse.urlsplit(e["url"])
            headers = {k.lower(): v for k, v in e["headers"].items()}
            rec = {"method": e["method"], "path": u.path, "query": u.query, "headers": headers,
                   "body_len": len(raw), "body_sha256": hashlib.sha256(raw).hexdigest()}
            if "x-amz-checksum" in headers:
                rec["checksum_hex"] = base64.b64decode(headers["x-amz-checksum"]).hex()
            if "/blocks/" not in u.path:
                rec["body"] = raw.decode("utf-8", "replace")
                if headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
                    rec["form"] = dict(urllib.parse.parse_qsl(rec["body"]))
            out.write(json.dumps(rec) + "\n")
elif cmd == "facts":
    snapshot, image, stride, out = sys.argv[3], sys.argv[4], int(sys.argv[5]), sys.argv[6]
    ebs, ec2 = client("ebs"), client("ec2")
    blocks, token, kw = {}, None, {}
    while True:
        page = ebs.list_snapshot_blocks(SnapshotId=snapshot, **kw)
        for b in page["Blocks"]:
            blocks[b["BlockIndex"]] = b["BlockToken"]
        if not page.get("NextToken"):
            break
        kw = {"NextToken": page["NextToken"]}
    indices = sorted(blocks)
    sample = sorted(set(indices[::stride] + indices[-1:]))
    read = {}
    for i in sample:
        b = ebs.get_snapshot_block(SnapshotId=snapshot, BlockIndex=i, BlockToken=blocks[i])
        data = b["BlockData"].read()
        read[str(i)] = {"len": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    facts = {
        "block_size": page["BlockSize"],
        "volume_size": page["VolumeSize"],
        "indices": indices,
        "read": read,
        "snapshots": ec2.describe_snapshots(SnapshotIds=[snapshot])["Snapshots"],
        "images": ec2.describe_images(ImageIds=[image])["Images"],
    }
    with open(out, "w") as f:
        json.dump(facts, f, default=str)
else:
    sys.exit("unknown command " + cmd)
"#;

/// A moto_server on a free loopback port, killed on drop (also when the test fails).
struct Moto {
    child: Child,
    url: String,
    dir: tempfile::TempDir,
}

impl Moto {
    fn start() -> Moto {
        let server = moto_bin("moto_server");
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let log = File::create(dir.path().join("moto.log")).unwrap();
        std::fs::write(dir.path().join("helper.py"), HELPER).unwrap();
        let child = Command::new(server)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .current_dir(dir.path())
            .env("MOTO_RECORDER_FILEPATH", dir.path().join("recording"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting moto_server");
        let mut moto = Moto {
            child,
            url: format!("http://127.0.0.1:{port}"),
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = moto.child.try_wait() {
                panic!("moto_server exited ({status}):\n{}", moto.log());
            }
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "moto_server did not listen:\n{}",
                moto.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        moto
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("moto.log")).unwrap_or_default()
    }

    /// Run the helper script with the venv's python.
    fn helper(&self, args: &[&str]) {
        let o = Command::new(moto_bin("python"))
            .arg(self.dir.path().join("helper.py"))
            .arg(args[0])
            .arg(&self.url)
            .args(&args[1..])
            .output()
            .expect("running the venv's python");
        assert!(o.status.success(), "helper {args:?} failed:\n{}", text(&o));
    }

    /// Every request recorded since `start-recording`.
    fn recording(&self) -> Vec<serde_json::Value> {
        let out = self.dir.path().join("recording.jsonl");
        self.helper(&["recording", out.to_str().unwrap()]);
        std::fs::read_to_string(&out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A build of the minimal spec with `outputs: [ami]`, under `target/test-images/minimal-ami`
/// (reused when nothing changed), shared with the other tests of the run.
fn shared_build() -> PathBuf {
    shared_variant_build("minimal", "minimal-ami", "outputs: [raw]", "outputs: [ami]")
}

/// `image-builder ami-upload BUILD_DIR --region us-east-1 ARGS` with dummy credentials (or
/// none) and nothing else of AWS's from the environment.
fn ami_upload(build_dir: &Path, args: &[&str], credentials: bool) -> Output {
    let mut cmd = Command::new(image_builder_bin());
    cmd.arg("ami-upload")
        .arg(build_dir)
        .args(["--region", REGION])
        .args(args);
    for v in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_ENDPOINT_URL",
        "AWS_PROFILE",
    ] {
        cmd.env_remove(v);
    }
    if credentials {
        cmd.env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing");
    }
    cmd.output().expect("running image-builder ami-upload")
}

/// The value after `label` on a line of stdout (`snapshot snap-…`).
fn field(o: &Output, label: &str) -> String {
    let stdout = String::from_utf8_lossy(&o.stdout);
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(label).map(|v| v.trim().to_string()))
        .unwrap_or_else(|| panic!("no {label:?} line in:\n{}", text(o)))
}

/// The non-zero blocks of a file: index → sha256 (hex), the last block padded with zeroes.
fn nonzero_blocks(path: &Path, block_size: usize) -> BTreeMap<u64, String> {
    let mut f = File::open(path).unwrap();
    let mut out = BTreeMap::new();
    let mut block = vec![0u8; block_size];
    for index in 0.. {
        block.fill(0);
        let mut n = 0;
        while n < block_size {
            match f.read(&mut block[n..]).unwrap() {
                0 => break,
                k => n += k,
            }
        }
        if n == 0 {
            break;
        }
        if block.iter().any(|&b| b != 0) {
            out.insert(index, hex::encode(Sha256::digest(&block)));
        }
    }
    out
}

fn header<'a>(r: &'a serde_json::Value, name: &str) -> &'a str {
    r["headers"][name]
        .as_str()
        .unwrap_or_else(|| panic!("no {name} header in {r}"))
}

fn assert_signed(r: &serde_json::Value, service: &str) {
    let auth = header(r, "authorization");
    let scope = format!("/{REGION}/{service}/aws4_request, SignedHeaders=");
    assert!(
        auth.starts_with("AWS4-HMAC-SHA256 Credential=testing/") && auth.contains(&scope),
        "{auth}"
    );
    for h in ["host", "x-amz-date"] {
        assert!(auth.contains(h), "{h} not signed: {auth}");
    }
}

#[test]
fn uploads_registers_and_reads_back_through_moto() {
    let out = shared_build();
    let img = out.join(format!("{BASE}.img"));
    let registered = out.join(format!("{BASE}.registered.json"));
    let _ = std::fs::remove_file(&registered);
    let moto = Moto::start();
    moto.helper(&["start-recording"]);

    let t = Instant::now();
    let o = ami_upload(&out, &["--endpoint-url", &moto.url], true);
    let took = t.elapsed();
    assert!(
        o.status.success(),
        "ami-upload failed:\n{}\nmoto:\n{}",
        text(&o),
        moto.log()
    );
    eprintln!("ami-upload to moto took {} s", took.as_secs());
    let snapshot = field(&o, "snapshot");
    let image = field(&o, "image");
    assert!(
        snapshot.starts_with("snap-") && image.starts_with("ami-"),
        "{}",
        text(&o)
    );
    moto.helper(&["stop-recording"]);

    // What moto holds, read through its API.
    let facts_path = moto.dir.path().join("facts.json");
    moto.helper(&[
        "facts",
        &snapshot,
        &image,
        "97",
        facts_path.to_str().unwrap(),
    ]);
    let facts: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&facts_path).unwrap()).unwrap();
    let block_size = facts["block_size"].as_u64().unwrap() as usize;
    assert_eq!(
        block_size, 512,
        "moto's block size changed: update the module docs"
    );
    let want = nonzero_blocks(&img, block_size);
    let listed: Vec<u64> = facts["indices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i.as_u64().unwrap())
        .collect();
    assert_eq!(
        listed,
        want.keys().copied().collect::<Vec<_>>(),
        "the snapshot's blocks are not the disk's non-zero blocks"
    );
    let read = facts["read"].as_object().unwrap();
    // The helper reads every 97th listed block and the last one.
    let n = want.len();
    let sampled = n.div_ceil(97) + usize::from(!(n - 1).is_multiple_of(97));
    assert_eq!(read.len(), sampled, "blocks read back of {n}");
    let f = File::open(&img).unwrap();
    for (index, got) in read {
        let i: u64 = index.parse().unwrap();
        let mut block = vec![0u8; block_size];
        f.read_exact_at(&mut block, i * block_size as u64).unwrap();
        assert_eq!(got["len"], block_size, "block {i}");
        assert_eq!(
            got["sha256"].as_str().unwrap(),
            hex::encode(Sha256::digest(&block)),
            "block {i} read back differs from the disk"
        );
    }
    let snap = &facts["snapshots"][0];
    assert_eq!(snap["SnapshotId"], snapshot.as_str());
    assert_eq!(snap["State"], "completed");
    assert_eq!(snap["VolumeSize"], 1);
    assert_eq!(snap["Description"], "Minimal Linux 1.0.0 (alpha)");
    let ami = &facts["images"][0];
    assert_eq!(ami["ImageId"], image.as_str());
    assert_eq!(ami["Name"], "minimal-alpha-1.0.0-hvm");
    assert_eq!(ami["Description"], "Minimal Linux 1.0.0 (alpha)");

    // Every request as sent.
    let recording = moto.recording();
    let kind = |r: &serde_json::Value| -> String {
        let path = r["path"].as_str().unwrap();
        match (r["method"].as_str().unwrap(), path) {
            ("POST", "/snapshots") => "start".into(),
            ("PUT", p) if p.contains("/blocks/") => "put".into(),
            ("POST", p) if p.starts_with("/snapshots/completion/") => "complete".into(),
            ("POST", "/") => r["form"]["Action"].as_str().unwrap_or("?").into(),
            (m, p) => format!("{m} {p}"),
        }
    };
    let kinds: Vec<String> = recording.iter().map(kind).collect();
    let first = |k: &str| kinds.iter().position(|x| x == k);
    let last = |k: &str| kinds.iter().rposition(|x| x == k);
    assert_eq!(
        kinds.first().map(String::as_str),
        Some("start"),
        "{kinds:?}"
    );
    assert_eq!(kinds.last().map(String::as_str), Some("RegisterImage"));
    let complete = first("complete").expect("CompleteSnapshot sent");
    assert!(
        last("put").unwrap() < complete,
        "a block after CompleteSnapshot"
    );
    let describe = first("DescribeSnapshots").expect("DescribeSnapshots sent");
    assert!(complete < describe);
    for k in &kinds {
        assert!(
            [
                "start",
                "put",
                "complete",
                "DescribeSnapshots",
                "RegisterImage"
            ]
            .contains(&k.as_str()),
            "unexpected request {k}"
        );
    }
    for k in ["start", "complete", "RegisterImage"] {
        assert_eq!(kinds.iter().filter(|x| *x == k).count(), 1, "{k}");
    }

    let start = &recording[0];
    assert_signed(start, "ebs");
    let body: serde_json::Value = serde_json::from_str(start["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["VolumeSize"], 1);
    assert_eq!(body["Description"], "Minimal Linux 1.0.0 (alpha)");
    assert_eq!(body["Timeout"], 60);
    assert_eq!(
        body["ClientToken"],
        format!("sha256-{}", sha256_file(&img)).as_str()
    );
    assert_eq!(
        body["Tags"],
        serde_json::json!([{"Key": "Name", "Value": "minimal-alpha-1.0.0-hvm"}])
    );

    let prefix = format!("/snapshots/{snapshot}/blocks/");
    let mut put = BTreeSet::new();
    for r in recording.iter().filter(|r| kind(r) == "put") {
        let path = r["path"].as_str().unwrap();
        let i: u64 = path
            .strip_prefix(&prefix)
            .unwrap_or_else(|| panic!("{path}"))
            .parse()
            .unwrap();
        let sha = r["body_sha256"].as_str().unwrap();
        assert_eq!(
            Some(sha),
            want.get(&i).map(String::as_str),
            "block {i}'s body"
        );
        assert_eq!(
            r["checksum_hex"].as_str(),
            Some(sha),
            "block {i}'s x-amz-Checksum"
        );
        assert_eq!(header(r, "x-amz-checksum-algorithm"), "SHA256");
        assert_eq!(header(r, "x-amz-data-length"), "512");
        assert_eq!(r["body_len"], 512);
        assert_eq!(header(r, "x-amz-content-sha256"), "UNSIGNED-PAYLOAD");
        assert_signed(r, "ebs");
        put.insert(i);
    }
    assert_eq!(put.len(), want.len(), "every non-zero block sent");

    let c = &recording[complete];
    assert_eq!(
        c["path"],
        format!("/snapshots/completion/{snapshot}").as_str()
    );
    assert_eq!(
        header(c, "x-amz-changedblockscount"),
        want.len().to_string()
    );
    assert_eq!(header(c, "x-amz-checksum-algorithm"), "SHA256");
    assert_eq!(header(c, "x-amz-checksum-aggregation-method"), "LINEAR");
    let mut linear = Sha256::new();
    for sha in want.values() {
        linear.update(hex::decode(sha).unwrap());
    }
    assert_eq!(
        c["checksum_hex"].as_str().unwrap(),
        hex::encode(linear.finalize()),
        "CompleteSnapshot's aggregate checksum"
    );

    let reg = &recording[last("RegisterImage").unwrap()];
    assert_signed(reg, "ec2");
    let form: BTreeMap<String, String> = serde_json::from_value(reg["form"].clone()).unwrap();
    let want_form: BTreeMap<String, String> = [
        ("Action", "RegisterImage"),
        ("Version", "2016-11-15"),
        ("Name", "minimal-alpha-1.0.0-hvm"),
        ("Description", "Minimal Linux 1.0.0 (alpha)"),
        ("Architecture", "x86_64"),
        ("VirtualizationType", "hvm"),
        ("EnaSupport", "true"),
        ("SriovNetSupport", "simple"),
        ("BootMode", "uefi"),
        ("ImdsSupport", "v2.0"),
        ("RootDeviceName", "/dev/xvda"),
        ("BlockDeviceMapping.1.DeviceName", "/dev/xvda"),
        ("BlockDeviceMapping.1.Ebs.SnapshotId", &snapshot),
        ("BlockDeviceMapping.1.Ebs.VolumeSize", "1"),
        ("BlockDeviceMapping.1.Ebs.VolumeType", "gp3"),
        ("BlockDeviceMapping.1.Ebs.DeleteOnTermination", "true"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(form, want_form);

    // The record: the build's request with the snapshot filled in, plus the image id.
    let mut want_json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join(format!("{BASE}.json"))).unwrap())
            .unwrap();
    want_json["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"] = snapshot.as_str().into();
    want_json["ImageId"] = image.as_str().into();
    let got: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&registered).unwrap()).unwrap();
    assert_eq!(got, want_json);
}

/// A copy of the build's ami files in a scratch directory: build.json, the RegisterImage input,
/// and `img` as the disk (its size and sha256 written into build.json when `record` says so).
fn scratch_build(img: &[u8], record: bool) -> tempfile::TempDir {
    let out = shared_build();
    let dir = tempfile::tempdir().unwrap();
    let json = format!("{BASE}.json");
    std::fs::copy(out.join(&json), dir.path().join(&json)).unwrap();
    let mut report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("build.json")).unwrap()).unwrap();
    if record {
        report["artifacts"][format!("{BASE}.img")] = serde_json::json!({
            "size": img.len(),
            "sha256": hex::encode(Sha256::digest(img)),
        });
    }
    std::fs::write(dir.path().join("build.json"), report.to_string()).unwrap();
    std::fs::write(dir.path().join(format!("{BASE}.img")), img).unwrap();
    dir
}

#[test]
fn corrupted_disk_is_refused_before_any_request() {
    let out = shared_build();
    let dir = tempfile::tempdir().unwrap();
    for f in ["build.json", &format!("{BASE}.json")] {
        std::fs::copy(out.join(f), dir.path().join(f)).unwrap();
    }
    let img = dir.path().join(format!("{BASE}.img"));
    let cp = Command::new("cp")
        .arg("--sparse=always")
        .arg(out.join(format!("{BASE}.img")))
        .arg(&img)
        .output()
        .unwrap();
    assert!(cp.status.success(), "{}", text(&cp));
    // One byte of the first partition's area flipped.
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&img)
        .unwrap();
    let mut byte = [0u8];
    f.read_exact_at(&mut byte, 1 << 20).unwrap();
    f.write_all_at(&[!byte[0]], 1 << 20).unwrap();
    drop(f);

    let moto = Moto::start();
    moto.helper(&["start-recording"]);
    let o = ami_upload(dir.path(), &["--endpoint-url", &moto.url], true);
    assert_clean_failure(&o, "differs from build.json");
    assert!(text(&o).contains("nothing was uploaded"), "{}", text(&o));
    let recording = moto.recording();
    assert!(recording.is_empty(), "requests sent: {recording:?}");
    assert!(!dir.path().join(format!("{BASE}.registered.json")).exists());
}

#[test]
fn configuration_errors() {
    let out = shared_build();
    let o = ami_upload(&out, &["--endpoint-url", "http://127.0.0.1:9"], false);
    assert_clean_failure(&o, "missing AWS credentials");
    assert!(text(&o).contains("AWS_ACCESS_KEY_ID"), "{}", text(&o));

    // A build without the ami output.
    let dir = tempfile::tempdir().unwrap();
    let mut report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("build.json")).unwrap()).unwrap();
    report["outputs"].as_object_mut().unwrap().remove("ami");
    std::fs::write(dir.path().join("build.json"), report.to_string()).unwrap();
    let o = ami_upload(dir.path(), &["--endpoint-url", "http://127.0.0.1:9"], true);
    assert_clean_failure(&o, "lists no ami output: add ami to the spec's outputs");

    let o = ami_upload(
        &out,
        &["--endpoint-url", "ftp://127.0.0.1:9", "--no-register"],
        true,
    );
    assert_clean_failure(&o, "endpoint URL");
    let o = ami_upload(
        &out,
        &["--name", "a*b", "--endpoint-url", "http://127.0.0.1:9"],
        true,
    );
    assert_clean_failure(&o, "AMI name \"a*b\"");
}

#[test]
fn closed_port_is_one_clear_error() {
    let dir = scratch_build(&[1u8; 4096], true);
    let port = free_port();
    let o = ami_upload(
        dir.path(),
        &["--endpoint-url", &format!("http://127.0.0.1:{port}")],
        true,
    );
    assert_clean_failure(
        &o,
        &format!("EBS StartSnapshot: http://127.0.0.1:{port}/snapshots"),
    );
    let t = text(&o);
    assert!(
        t.contains("refused") && t.contains("after 6 attempts"),
        "{t}"
    );
}

/// One request the fake endpoint saw.
struct Seen {
    method: String,
    path: String,
    /// Names lower-cased.
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

/// A scripted EBS + EC2 endpoint on loopback: AWS's 512 KiB blocks, one 503 on the first
/// block upload, DescribeSnapshots pending then completed, RegisterImage refused.
fn fake_aws(
    seen: Arc<Mutex<Vec<Seen>>>,
) -> (String, std::thread::JoinHandle<()>, Arc<tiny_http::Server>) {
    let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
    let url = format!("http://{}", server.server_addr().to_ip().unwrap());
    let s = server.clone();
    let thread = std::thread::spawn(move || {
        let mut failed_once = false;
        let mut describes = 0;
        for mut req in s.incoming_requests() {
            let mut body = Vec::new();
            req.as_reader().read_to_end(&mut body).unwrap();
            let headers: BTreeMap<String, String> = req
                .headers()
                .iter()
                .map(|h| {
                    (
                        h.field.as_str().as_str().to_ascii_lowercase(),
                        h.value.to_string(),
                    )
                })
                .collect();
            let method = req.method().as_str().to_string();
            let path = req.url().to_string();
            seen.lock().unwrap().push(Seen {
                method: method.clone(),
                path: path.clone(),
                headers,
                body: body.clone(),
            });
            let form = String::from_utf8_lossy(&body).to_string();
            let (status, ctype, answer): (u16, &str, String) = match (method.as_str(), path.as_str()) {
                ("POST", "/snapshots") => (
                    201,
                    "application/json",
                    r#"{"SnapshotId":"snap-0fake","BlockSize":524288,"Status":"pending","VolumeSize":1}"#.into(),
                ),
                ("PUT", _) if !failed_once => {
                    failed_once = true;
                    (503, "application/json", r#"{"message":"slow down"}"#.into())
                }
                ("PUT", _) => (201, "application/json", "{}".into()),
                ("POST", "/snapshots/completion/snap-0fake") => {
                    (202, "application/json", r#"{"Status":"pending"}"#.into())
                }
                ("POST", "/") if form.contains("Action=DescribeSnapshots") => {
                    describes += 1;
                    let status = if describes == 1 { "pending" } else { "completed" };
                    (200, "text/xml", format!(
                        "<DescribeSnapshotsResponse><snapshotSet><item><snapshotId>snap-0fake</snapshotId>\
                         <status>{status}</status><progress>50%</progress></item></snapshotSet></DescribeSnapshotsResponse>"
                    ))
                }
                ("POST", "/") if form.contains("Action=RegisterImage") => (
                    400,
                    "text/xml",
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error>\
                     <Code>InvalidAMIName.Duplicate</Code><Message>AMI name minimal-alpha-1.0.0-hvm \
                     is already in use by AMI ami-0123</Message></Error></Errors>\
                     <RequestID>r</RequestID></Response>"
                        .into(),
                ),
                _ => (404, "text/plain", "no such thing".into()),
            };
            let resp = tiny_http::Response::from_string(answer)
                .with_status_code(status)
                .with_header(
                    tiny_http::Header::from_bytes(&b"Content-Type"[..], ctype.as_bytes()).unwrap(),
                );
            let _ = req.respond(resp);
        }
    });
    (url, thread, server)
}

#[test]
fn fake_endpoint_errors_and_aws_block_size() {
    // 10 whole 512 KiB blocks and a short one: data in blocks 0, 1, 6 and the last.
    const KIB512: usize = 512 << 10;
    let mut img = vec![0u8; 10 * KIB512 + 1000];
    img[..KIB512 + 10].fill(0xa5);
    img[6 * KIB512 + 77] = 1;
    let n = img.len();
    img[n - 1] = 0xff;
    let dir = scratch_build(&img, true);

    let run = |args: &[&str]| {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (url, thread, server) = fake_aws(seen.clone());
        let mut all = vec!["--endpoint-url", &url];
        all.extend_from_slice(args);
        let o = ami_upload(dir.path(), &all, true);
        server.unblock();
        thread.join().unwrap();
        let seen = std::mem::take(&mut *seen.lock().unwrap());
        (o, seen)
    };

    // Only the snapshot: no RegisterImage sent, nothing recorded.
    let (o, seen) = run(&["--no-register", "--threads", "2"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(field(&o, "snapshot"), "snap-0fake");
    assert!(!String::from_utf8_lossy(&o.stdout).contains("image"));
    assert!(!seen
        .iter()
        .any(|r| String::from_utf8_lossy(&r.body).contains("Action=RegisterImage")));
    assert!(!dir.path().join(format!("{BASE}.registered.json")).exists());

    let (o, seen) = run(&[]);
    assert_clean_failure(
        &o,
        "EC2 RegisterImage: InvalidAMIName.Duplicate: AMI name minimal-alpha-1.0.0-hvm is \
         already in use by AMI ami-0123 (HTTP 400)",
    );
    assert!(!dir.path().join(format!("{BASE}.registered.json")).exists());

    let mut blocks: BTreeMap<u64, &Vec<u8>> = BTreeMap::new();
    let mut puts = 0;
    for Seen {
        method,
        path,
        headers,
        body,
    } in seen.iter()
    {
        if method != "PUT" {
            continue;
        }
        puts += 1;
        let i: u64 = path
            .strip_prefix("/snapshots/snap-0fake/blocks/")
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(body.len(), KIB512, "block {i} is padded to the block size");
        assert_eq!(headers["x-amz-data-length"], KIB512.to_string());
        assert_eq!(headers["x-amz-checksum-algorithm"], "SHA256");
        assert_eq!(
            headers["x-amz-checksum"],
            base64(&Sha256::digest(body)),
            "block {i}"
        );
        blocks.insert(i, body);
    }
    // One block sent twice: after the 503.
    assert_eq!(puts, 5);
    assert_eq!(blocks.keys().copied().collect::<Vec<_>>(), [0, 1, 6, 10]);
    for (&i, body) in &blocks {
        let from = i as usize * KIB512;
        let to = (from + KIB512).min(n);
        assert_eq!(&body[..to - from], &img[from..to], "block {i}");
        assert!(
            body[to - from..].iter().all(|&b| b == 0),
            "block {i}'s padding"
        );
    }
    let complete = seen
        .iter()
        .find(|r| r.method == "POST" && r.path.starts_with("/snapshots/completion/"))
        .expect("CompleteSnapshot");
    assert_eq!(complete.path, "/snapshots/completion/snap-0fake");
    let headers = &complete.headers;
    assert_eq!(headers["x-amz-changedblockscount"], "4");
    let mut linear = Sha256::new();
    for body in blocks.values() {
        linear.update(Sha256::digest(body));
    }
    assert_eq!(headers["x-amz-checksum"], base64(&linear.finalize()));
    let describes = seen
        .iter()
        .filter(|r| String::from_utf8_lossy(&r.body).contains("Action=DescribeSnapshots"))
        .count();
    assert_eq!(describes, 2, "waited for completed");
}

/// Standard base64 (the test's own, checked against RFC 4648).
fn base64(data: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = String::new();
    for &b in data {
        bits = bits << 8 | u32::from(b);
        n += 8;
        while n >= 6 {
            n -= 6;
            out.push(A[(bits >> n & 63) as usize] as char);
        }
    }
    if n > 0 {
        out.push(A[(bits << (6 - n) & 63) as usize] as char);
    }
    while !out.len().is_multiple_of(4) {
        out.push('=');
    }
    out
}

#[test]
fn base64_of_the_test() {
    assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    assert_eq!(base64(b"fooba"), "Zm9vYmE=");
    assert_eq!(base64(b"foob"), "Zm9vYg==");
    // RFC 4648 says nothing of the empty digest; sha256("") is well known.
    assert_eq!(
        base64(&Sha256::digest(b"")),
        "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
    );
}
