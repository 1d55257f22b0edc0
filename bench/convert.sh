#!/usr/bin/env bash
# Side-by-side (issue 5): our disk-format writers (ova::vmdk, ami::vhd, vagrant::qcow2) against
# `qemu-img convert` on the same disk.raw:
#   vmdk   streamOptimized        qemu-img convert -O vmdk -o subformat=streamOptimized
#   vhd    fixed                  qemu-img convert -O vpc -o subformat=fixed,force_size=on
#   qcow2                         qemu-img convert -O qcow2
#   qcow2  compressed (extra)     qemu-img convert -c -O qcow2
# Target: ratio (qemu-img time / our time) >= 1.0 for each, medians of ROUNDS runs.
# Our writers fsync their output before renaming it into place; qemu-img does not sync, so its
# runs are timed with `sync FILE` after them (the same durability). Outputs are removed before
# every run, and every output is checked with `qemu-img compare` against the raw disk (a
# mismatch fails the script; a ratio below target is only reported).
# Run through `make bench-convert`; RAW=path picks another disk, ROUNDS=n more runs.
set -euo pipefail
cd "$(dirname "$0")/.."
RAW=${RAW:-}
if [ -z "$RAW" ]; then
  for c in out/minimal/disk.raw target/test-images/minimal/disk.raw; do
    if [ -f "$c" ]; then RAW=$c; break; fi
  done
fi
if [ -z "$RAW" ] || [ ! -f "$RAW" ]; then
  echo "no disk.raw (looked in out/minimal and target/test-images/minimal): run 'make image' first, or set RAW=path" >&2
  exit 1
fi
ROUNDS=${ROUNDS:-3}
EPOCH=1767225600
cargo build -q --release -p ova --example to_vmdk -p ami --example to_vhd -p vagrant --example to_qcow2
E=target/release/examples

W=$(mktemp -d /var/tmp/bench-convert.XXXXXX)
trap 'rm -rf "$W"' EXIT
now() { date +%s.%N; }
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }

# time_run OUT CMD...: remove OUT, flush, run CMD (quietly), print the seconds it took.
time_run() {
  local out=$1 t0 t1
  shift
  rm -f "$out"
  sync
  t0=$(now)
  "$@" > /dev/null
  t1=$(now)
  echo "$t1 - $t0" | bc -l
}
qemu_sync() { # qemu-img convert ARGS... OUT, then fsync OUT
  qemu-img convert "$@"
  sync "${@: -1}"
}

# name | our command (output last) | qemu-img convert arguments (output last) | format for compare
pairs=(
  "vmdk|$E/to_vmdk $RAW $W/ours.vmdk|-f raw -O vmdk -o subformat=streamOptimized $RAW $W/qemu.vmdk|vmdk"
  "vhd|$E/to_vhd $RAW $W/ours.vhd $EPOCH|-f raw -O vpc -o subformat=fixed,force_size=on $RAW $W/qemu.vhd|vpc"
  "qcow2|$E/to_qcow2 $RAW $W/ours.qcow2|-f raw -O qcow2 $RAW $W/qemu.qcow2|qcow2"
  "qcow2 -c|$E/to_qcow2 $RAW $W/ours-c.qcow2 --compress|-c -f raw -O qcow2 $RAW $W/qemu-c.qcow2|qcow2"
)

mib=$(echo "$(stat -c %s "$RAW") / 1048576" | bc -l)
alloc=$(echo "$(stat -c %b "$RAW") * $(stat -c %B "$RAW") / 1048576" | bc -l)
printf 'raw disk   %s: %.0f MiB, %.1f MiB allocated; %d rounds, %d CPUs\n' "$RAW" "$mib" "$alloc" "$ROUNDS" "$(nproc)"
fail=0
for pair in "${pairs[@]}"; do
  IFS='|' read -r name ours qemu fmt <<< "$pair"
  read -ra ours <<< "$ours"
  read -ra qemu <<< "$qemu"
  ours_out=${ours[2]}
  qemu_out=${qemu[-1]}
  # One untimed run each: the same warm page cache for both.
  "${ours[@]}" > /dev/null
  qemu-img convert "${qemu[@]}"
  ours_t=(); qemu_t=()
  for _ in $(seq "$ROUNDS"); do
    ours_t+=("$(time_run "$ours_out" "${ours[@]}")")
    qemu_t+=("$(time_run "$qemu_out" qemu_sync "${qemu[@]}")")
  done
  o=$(median "${ours_t[@]}")
  q=$(median "${qemu_t[@]}")
  for out in "$ours_out" "$qemu_out"; do
    if ! qemu-img compare -q -f raw -F "$fmt" "$RAW" "$out"; then
      echo "$name: $out differs from $RAW" >&2
      fail=1
    fi
  done
  ratio=$(echo "$q / $o" | bc -l)
  below=""
  if [ "$(echo "$ratio < 1.0" | bc -l)" = 1 ]; then below="  BELOW TARGET"; fi
  printf '%-9s ours %6.3f s (%5.1f MiB)   qemu-img %6.3f s (%5.1f MiB)   ratio %.2f%s\n' "$name" \
    "$o" "$(echo "$(stat -c %s "$ours_out") / 1048576" | bc -l)" \
    "$q" "$(echo "$(stat -c %s "$qemu_out") / 1048576" | bc -l)" "$ratio" "$below"
done
echo "ratio = qemu-img time / our time, medians; target >= 1.0 (file sizes are apparent sizes)"
exit "$fail"
