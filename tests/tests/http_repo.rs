//! Inputs from an HTTP apt repository: the test builds a repository (dists/…/Release,
//! Packages.xz, pool/) from the pool's packages, serves it on loopback, locks and builds from
//! it, and gets the same image as a build from the pool directory.

use std::collections::BTreeMap;

use tests::http::StaticServer;
use tests::{image_builder, init_bin, pool_dir, text, Scratch};

fn make_repository(dir: &std::path::Path) {
    let pool = dir.join("pool/main");
    std::fs::create_dir_all(&pool).unwrap();
    let mut entries = Vec::new();
    for mut c in rootfs::pool::scan(&pool_dir()).unwrap() {
        std::fs::copy(pool_dir().join(&c.filename), pool.join(&c.filename)).unwrap();
        c.filename = format!("pool/main/{}", c.filename);
        entries.push((c, BTreeMap::new()));
    }
    tests::apt::write_index(dir, &entries);
}

#[test]
fn lock_and_build_from_a_loopback_apt_repository() {
    let repo = tempfile::tempdir().unwrap();
    make_repository(repo.path());
    let server = StaticServer::start(repo.path());

    let s = Scratch::new("minimal");
    let spec = s.spec("minimal");
    let spec = spec.to_str().unwrap();
    let committed = std::fs::read_to_string(s.path().join("images/minimal.lock")).unwrap();
    let o = image_builder(
        s.path(),
        &["lock", spec, "--repo", &server.url, "--suite", "bookworm"],
    );
    assert!(o.status.success(), "lock: {}", text(&o));
    let locked = std::fs::read_to_string(s.path().join("images/minimal.lock")).unwrap();
    let hashes = |t: &str| -> Vec<String> {
        let v: serde_json::Value = serde_json::from_str(t).unwrap();
        v["packages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["sha256"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        hashes(&locked),
        hashes(&committed),
        "the repository serves the pinned packages"
    );
    assert!(
        locked.contains(&format!("\"source\": \"{} bookworm\"", server.url)),
        "{locked}"
    );

    let init = init_bin();
    let cache = s.path().join("cache");
    let url = server.url.clone();
    let args = |out: &'static str| {
        vec![
            "build".to_string(),
            spec.to_string(),
            "--out".into(),
            out.into(),
            "--repo".into(),
            url.clone(),
            "--cache".into(),
            cache.to_str().unwrap().into(),
            "--init".into(),
            init.to_str().unwrap().into(),
        ]
    };
    let a: Vec<String> = args("out");
    let o = image_builder(s.path(), &a.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(o.status.success(), "build: {}", text(&o));
    let served = server.hits.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        served >= 4,
        "Release, Packages.xz and three .debs were fetched ({served} requests)"
    );

    // The cache is content-addressed: a second build with the server gone still works.
    drop(server);
    let a: Vec<String> = args("out2");
    let o = image_builder(s.path(), &a.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(o.status.success(), "cached build: {}", text(&o));

    let from_pool = s.build("minimal", "out-pool", &pool_dir());
    assert!(from_pool.status.success(), "{}", text(&from_pool));
    let report = |d: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(s.path().join(d).join("build.json")).unwrap())
            .unwrap()
    };
    assert_eq!(report("out")["artifacts"], report("out-pool")["artifacts"]);
    assert_eq!(report("out2")["artifacts"], report("out-pool")["artifacts"]);
}
