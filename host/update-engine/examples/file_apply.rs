//! Developer tool for `bench/apply.sh` (issue 3 item 9): apply a channel's release onto a
//! [`FileHost`] (slot devices are plain files, the ESP a directory), and publish a directory of
//! payload files without a `build.json`.
//!
//! ```text
//! file_apply publish --repo DIR --channel NAME --key KEY --version V PAYLOAD_DIR
//!     adds PAYLOAD_DIR/{usr.img,vmlinuz,initrd.img,release.json}, signs the manifest,
//!     prints the URL path of usr.img
//! file_apply apply --root DIR --file-slots A_FILE,B_FILE --esp DIR
//!     `update-engine --root DIR update` with those files as USR-A and USR-B
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicU32;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use channels::{Release, Repo, SecretKey};
use update_engine::config::{load_root_keys, Config, Paths};
use update_engine::engine::{Engine, UpdateOutcome, INITRD_IMG, RELEASE_JSON, USR_IMG, VMLINUZ};
use update_engine::host::{FileHost, SlotDevice};
use update_engine::http::Policy;

const DAY: u64 = 86_400;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `--name VALUE` pairs and positional arguments.
fn options(args: &[String]) -> Result<(BTreeMap<String, String>, Vec<String>)> {
    let mut named = BTreeMap::new();
    let mut positional = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if let Some(name) = a.strip_prefix("--") {
            let v = it
                .next()
                .with_context(|| format!("--{name} needs a value"))?;
            named.insert(name.to_owned(), v.clone());
        } else {
            positional.push(a.clone());
        }
    }
    Ok((named, positional))
}

fn get<'a>(o: &'a BTreeMap<String, String>, name: &str) -> Result<&'a str> {
    o.get(name)
        .map(String::as_str)
        .with_context(|| format!("missing --{name}"))
}

fn publish(args: &[String]) -> Result<()> {
    let (o, pos) = options(args)?;
    let [dir] = pos.as_slice() else {
        bail!("publish: one PAYLOAD_DIR expected");
    };
    let dir = PathBuf::from(dir);
    let repo = PathBuf::from(get(&o, "repo")?);
    let key_path = get(&o, "key")?;
    let key = SecretKey::from_file_text(
        &std::fs::read_to_string(key_path).with_context(|| format!("reading {key_path}"))?,
    )?;
    let mut payloads = BTreeMap::new();
    for name in [USR_IMG, VMLINUZ, INITRD_IMG, RELEASE_JSON] {
        let r = Repo::add_payload_file(&repo, &dir.join(name))
            .with_context(|| format!("adding {name}"))?;
        payloads.insert(name.to_owned(), r);
    }
    let usr_path = payloads[USR_IMG].path();
    let t = now();
    let release = Release {
        channel: get(&o, "channel")?.to_owned(),
        version: get(&o, "version")?.to_owned(),
        release_time: t,
        expires: t + 7 * DAY,
        version_floor: None,
        payloads,
    };
    Repo::publish(&repo, release, &key, t, true)?;
    println!("{usr_path}");
    Ok(())
}

fn apply(args: &[String]) -> Result<()> {
    let (o, _) = options(args)?;
    let paths = Paths::new(get(&o, "root")?);
    let slots: Vec<&str> = get(&o, "file-slots")?.split(',').collect();
    let [a, b] = slots.as_slice() else {
        bail!("--file-slots A_FILE,B_FILE");
    };
    let dev = |p: &str, uuid: &str| SlotDevice {
        path: PathBuf::from(p),
        partuuid: uuid.into(),
    };
    let host = FileHost {
        paths: paths.clone(),
        devices: [
            dev(a, "aaaaaaaa-0000-5000-8000-000000000001"),
            dev(b, "bbbbbbbb-0000-5000-8000-000000000002"),
        ],
        esp: PathBuf::from(get(&o, "esp")?),
        processes: Vec::new(),
        reboots: AtomicU32::new(0),
    };
    let config = Config::load(&paths)
        .usable()
        .context("loading update.conf")?;
    let root_keys = load_root_keys(&paths).context("loading the root keys")?;
    let engine = Engine {
        paths: &paths,
        config: &config,
        root_keys: &root_keys,
        host: &host,
        policy: Policy::CHANNEL,
    };
    match engine.update(now(), &mut |_| {})? {
        UpdateOutcome::UpToDate { version } => bail!("nothing applied: up to date at {version}"),
        UpdateOutcome::Staged { version, slot, .. } => println!("{version} staged on {slot}"),
    }
    Ok(())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("publish") => publish(&args[1..]),
        Some("apply") => apply(&args[1..]),
        _ => bail!("usage: file_apply publish ... | apply ... (see the source)"),
    }
}
