#!/usr/bin/env bash
# `make test`, once the tools are built and the pool is full: every test of the workspace
# through cargo-nextest (.config/nextest.toml: each test in a process of its own, two at a time
# across all binaries, the Vagrant cluster alone), the doc tests through cargo, the fuzz targets
# (scripts/fuzz.sh: one build, then each target a few seconds on its checked-in corpus), then a
# table of each test binary's time and the total wall time -- printed also when tests failed.
# Exits non-zero when anything failed. Arguments are passed to `cargo nextest run` (a filter,
# say); the doc tests and the fuzz targets then do not run.
set -uo pipefail
cd "$(dirname "$0")/.."

# cargo-nextest, at least the version .config/nextest.toml asks for; built from crates.io
# where it is missing (a fresh Debian 12 machine), which takes a few minutes once.
NEXTEST_MIN=0.9.91
have=$(cargo nextest --version 2>/dev/null | awk 'NR == 1 {print $2}')
if [[ -z "$have" ]] || ! printf '%s\n%s\n' "$NEXTEST_MIN" "$have" | sort -V -C; then
  echo "installing cargo-nextest (have: ${have:-none}, need >= $NEXTEST_MIN)"
  cargo install --locked cargo-nextest || exit 1
fi

JUNIT=target/nextest/default/junit.xml
TIMES=$(mktemp)
trap 'rm -f "$TIMES"' EXIT
rm -f "$JUNIT"
now() { date +%s.%N; }

t0=$(now)
cargo nextest run --release --workspace --no-fail-fast "$@"
nextest_status=$?
t1=$(now)
doc_status=0
if [[ $# == 0 ]]; then
  cargo test --release --workspace --doc -q
  doc_status=$?
fi
t2=$(now)
printf 'nextest\t%s\t%s\ndoctests\t%s\t%s\n' "$t0" "$t1" "$t1" "$t2" > "$TIMES"
fuzz_status=0
if [[ $# == 0 ]]; then
  bash scripts/fuzz.sh build
  fuzz_status=$?
  t3=$(now)
  if [[ $fuzz_status == 0 ]]; then
    bash scripts/fuzz.sh smoke
    fuzz_status=$?
  fi
  t4=$(now)
  printf 'fuzz-build\t%s\t%s\nfuzz-run\t%s\t%s\n' "$t2" "$t3" "$t3" "$t4" >> "$TIMES"
fi

python3 scripts/test-report.py "$JUNIT" "$TIMES" "$nextest_status" "$doc_status" "$fuzz_status"
if [[ $nextest_status != 0 || $doc_status != 0 || $fuzz_status != 0 ]]; then
  exit 1
fi
