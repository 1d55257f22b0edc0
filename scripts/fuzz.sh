#!/usr/bin/env bash
# The fuzz targets (fuzz/: cargo-fuzz, libFuzzer; fuzz/README.md says what each checks).
#
#   scripts/fuzz.sh build            build every target once (fuzz/target)
#   scripts/fuzz.sh smoke            `make test`: each target FUZZ_SMOKE_SECS seconds (default 7,
#                                    two at a time) on its checked-in corpus, which libFuzzer
#                                    replays in full first: every input ever checked in is a
#                                    regression test. New inputs go to a temporary directory.
#   scripts/fuzz.sh long [TARGET]    `make fuzz`: FUZZ_TIME seconds (default 600) for TARGET, or
#                                    for each target, two at a time; new inputs kept in
#                                    fuzz/work/TARGET
#   scripts/fuzz.sh merge [TARGET]   rewrite the checked-in corpus from it and fuzz/work/TARGET:
#                                    the named seeds and at most 50 found inputs, those that
#                                    reach the most code (fuzz/cmin.py); then commit fuzz/corpus
#
# A crash stops the run with libFuzzer's report and leaves the input in fuzz/artifacts/TARGET/;
# `scripts/fuzz.sh` then exits non-zero. Reproduce with
#   fuzz/target/x86_64-unknown-linux-gnu/release/TARGET fuzz/artifacts/TARGET/crash-…
# and turn the input into a unit test of the crate that crashed before fixing it.
#
# The targets are built without a sanitizer (`-s none`, stable Rust): the code under test is
# safe Rust, where AddressSanitizer finds little that a panic, overflow check or libFuzzer's
# own limits do not, and it costs a nightly toolchain, a build half as long again and runs four
# times slower (README.md, "Fuzzing").
set -uo pipefail
cd "$(dirname "$0")/.."

TRIPLE=x86_64-unknown-linux-gnu
BIN=fuzz/target/$TRIPLE/release
# Each input must finish within this (a hang is a crash), and stay within this memory.
LIMITS=(-timeout=10 -rss_limit_mb=2048)

targets() {
  sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -vx fuzz
}

build() {
  cargo fuzz build --sanitizer none --fuzz-dir fuzz
}

# run TARGET SECONDS WORKDIR [libFuzzer flags...]: fuzz TARGET for SECONDS on WORKDIR (written)
# and its checked-in corpus (read).
run() {
  local target=$1 secs=$2 work=$3
  shift 3
  mkdir -p "$work" "fuzz/artifacts/$target"
  "$BIN/$target" "${LIMITS[@]}" -max_total_time="$secs" -print_final_stats=1 \
    -artifact_prefix="fuzz/artifacts/$target/" "$@" "$work" "fuzz/corpus/$target"
}

# smoke: two targets at a time, each with its log; a table of the results, the logs of failures.
smoke() {
  local secs=${FUZZ_SMOKE_SECS:-7} logs status=0 t result log
  logs=$(mktemp -d)
  for t in $(targets); do
    while (($(jobs -rp | wc -l) >= 2)); do wait -n; done
    (
      run "$t" "$secs" "$logs/$t.work" -seed="${FUZZ_SEED:-1}" > "$logs/$t.log" 2>&1
      echo $? > "$logs/$t.status"
    ) &
  done
  wait
  printf '%-12s %9s %7s %6s  %s\n' target runs exec/s corpus result
  for t in $(targets); do
    log=$logs/$t.log
    result=$(cat "$logs/$t.status" 2>/dev/null || echo "not run")
    [[ $result == 0 ]] && result=ok || result="FAILED ($result)"
    printf '%-12s %9s %7s %6s  %s\n' "$t" \
      "$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")" \
      "$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")" \
      "$(ls "fuzz/corpus/$t" | wc -l)" "$result"
    if [[ $result != ok ]]; then
      status=1
      echo "---- $t: the end of libFuzzer's output"
      tail -n 40 "$log"
      echo "---- the input is in fuzz/artifacts/$t/"
    fi
  done
  rm -rf "$logs"
  return $status
}

# long: one target in the foreground, or every target two at a time, each with its log in
# fuzz/work/TARGET.log; a crash stops that target and fails the run.
long() {
  local secs=${FUZZ_TIME:-600} status=0 t
  if [[ -n ${1:-} ]]; then
    run "$1" "$secs" "fuzz/work/$1" ${FUZZ_SEED:+-seed=$FUZZ_SEED} || status=1
  else
    mkdir -p fuzz/work
    for t in $(targets); do
      while (($(jobs -rp | wc -l) >= 2)); do wait -n || status=1; done
      echo "$t: $secs s, log in fuzz/work/$t.log"
      (
        if run "$t" "$secs" "fuzz/work/$t" ${FUZZ_SEED:+-seed=$FUZZ_SEED} > "fuzz/work/$t.log" 2>&1; then
          echo "$t: done, $(ls "fuzz/work/$t" | wc -l) inputs in fuzz/work/$t"
        else
          echo "$t: FAILED, the input is in fuzz/artifacts/$t/ (fuzz/work/$t.log)"
          exit 1
        fi
      ) &
    done
    while (($(jobs -rp | wc -l) > 0)); do wait -n || status=1; done
  fi
  echo "to keep what reached new code: scripts/fuzz.sh merge${1:+ $1}, then commit fuzz/corpus/"
  return $status
}

# merge: the checked-in corpus becomes its named seeds plus at most FUZZ_CORPUS_MAX (50) of the
# inputs found so far, chosen for the code they reach (fuzz/cmin.py).
merge() {
  local list=${1:-$(targets)} tmp t
  tmp=$(mktemp -d)
  for t in $list; do
    mkdir -p "$tmp/$t" "fuzz/work/$t"
    "$BIN/$t" "${LIMITS[@]}" -merge=1 -merge_control_file="$tmp/$t.control" "$tmp/$t" \
      "fuzz/corpus/$t" "fuzz/work/$t" > "$tmp/$t.log" 2>&1 \
      || { tail -n 20 "$tmp/$t.log"; rm -rf "$tmp"; return 1; }
    python3 fuzz/cmin.py "$tmp/$t.control" "fuzz/corpus/$t" "${FUZZ_CORPUS_MAX:-50}"
  done
  rm -rf "$tmp"
}

case ${1:-smoke} in
  build) build ;;
  smoke) build && smoke ;;
  long) build && long "${2:-}" ;;
  merge) build && merge "${2:-}" ;;
  *) echo "usage: $0 build|smoke|long [TARGET]|merge [TARGET]" >&2; exit 2 ;;
esac
