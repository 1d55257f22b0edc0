//! `rootfs::version::compare` against the real `dpkg --compare-versions` on thousands of pairs:
//! generated versions built from the pieces that make comparison tricky (`~`, `+`, `.`,
//! letters, leading zeros, epochs, revisions, hyphens inside the upstream version), every
//! version of the host's dpkg database, and each neighbouring pair of all of them in our order
//! (which checks that our order is the one dpkg's pairwise answers imply).
//!
//! One `sh` runs every comparison (about 4000 pairs, 10 s).

use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Stdio};

use rootfs::version::{compare, parse};

/// Pieces a version is built from.
const PIECES: [&str; 18] = [
    "0", "1", "2", "9", "10", "01", "a", "b", "z", "~", "~~", ".", "+", "rc", "deb12u", "+b",
    "~bpo", "-",
];

/// xorshift64: a fixed sequence, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A syntactically valid version made of random pieces.
fn generated(rng: &mut Rng) -> String {
    loop {
        let mut v = String::new();
        if rng.below(4) == 0 {
            v.push_str(["1:", "2:", "10:", "0:", "01:"][rng.below(5)]);
        }
        v.push_str(&rng.below(12).to_string());
        for _ in 0..rng.below(5) {
            v.push_str(PIECES[rng.below(PIECES.len())]);
        }
        if rng.below(3) > 0 {
            v.push('-');
            v.push_str(&rng.below(4).to_string());
            for _ in 0..rng.below(4) {
                v.push_str(PIECES[rng.below(PIECES.len() - 1)]);
            }
        }
        if parse(&v).is_ok() {
            return v;
        }
    }
}

/// Versions of every package the host's dpkg knows.
fn host_versions() -> Vec<String> {
    let out = Command::new("dpkg-query")
        .args(["-W", "-f", "${Version}\n"])
        .output()
        .expect("running dpkg-query (this test needs a Debian host)");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|v| parse(v).is_ok())
        .map(str::to_owned)
        .collect()
}

/// dpkg's answer for each pair, in one shell.
fn dpkg_compare(pairs: &[(String, String)]) -> Vec<Ordering> {
    let mut script = String::new();
    for (a, b) in pairs {
        script.push_str(&format!(
            "if dpkg --compare-versions '{a}' lt '{b}'; then echo lt; \
             elif dpkg --compare-versions '{a}' eq '{b}'; then echo eq; else echo gt; fi\n"
        ));
    }
    let mut child = Command::new("sh")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running sh");
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(script.as_bytes()));
    let out = child.wait_with_output().expect("waiting for sh");
    writer.join().unwrap().expect("writing the script");
    // dpkg complains on stderr about a version it finds malformed: there must be none.
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answers: Vec<Ordering> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| match l {
            "lt" => Ordering::Less,
            "eq" => Ordering::Equal,
            _ => Ordering::Greater,
        })
        .collect();
    assert_eq!(answers.len(), pairs.len());
    answers
}

#[test]
fn agrees_with_dpkg_compare_versions() {
    let mut rng = Rng(0x5eed_d9c6_0bad_cafe);
    let mut versions: BTreeSet<String> = (0..1200).map(|_| generated(&mut rng)).collect();
    versions.extend(host_versions());
    let versions: Vec<String> = versions.into_iter().collect();

    let mut pairs: Vec<(String, String)> = (0..1500)
        .map(|_| {
            let a = &versions[rng.below(versions.len())];
            let b = &versions[rng.below(versions.len())];
            (a.clone(), b.clone())
        })
        .collect();
    // Pairs that differ by one piece: the hard cases.
    for _ in 0..800 {
        let a = &versions[rng.below(versions.len())];
        let b = format!("{a}{}", PIECES[rng.below(PIECES.len() - 1)]);
        if parse(&b).is_ok() {
            pairs.push((a.clone(), b));
        }
    }
    let mut sorted = versions.clone();
    sorted.sort_by(|a, b| compare(a, b));
    pairs.extend(sorted.windows(2).map(|w| (w[0].clone(), w[1].clone())));

    let want = dpkg_compare(&pairs);
    let wrong: Vec<String> = pairs
        .iter()
        .zip(&want)
        .filter(|((a, b), want)| compare(a, b) != **want)
        .map(|((a, b), want)| format!("{a} vs {b}: dpkg says {want:?}, we say {:?}", compare(a, b)))
        .collect();
    assert!(
        wrong.is_empty(),
        "{} of {} pairs differ from dpkg:\n{}",
        wrong.len(),
        pairs.len(),
        wrong.join("\n")
    );
    assert!(pairs.len() > 3000, "only {} pairs", pairs.len());
}
