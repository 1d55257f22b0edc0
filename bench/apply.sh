#!/usr/bin/env bash
# Side-by-side (issue 3 item 9): the update engine applying a 1 GiB usr.img from a loopback
# `image-builder serve` onto a file-backed slot, against the standard tools doing the same work
# on the same bytes: `curl | tee >(sha256sum) | dd conv=fsync` (download, hash, write, sync).
# Targets: engine throughput >= 0.9x the tool pipeline; engine peak RSS < 32 MiB
# (`/usr/bin/time -v` "Maximum resident set size").
# Run through `make bench-apply` (it builds the tools first). SIZE_MIB overrides the 1 GiB.
set -euo pipefail
cd "$(dirname "$0")/.."
IB=target/release/image-builder
FA=target/release/examples/file_apply
SIZE_MIB=${SIZE_MIB:-1024}
cargo build -q --release -p update-engine --example file_apply

W=$(mktemp -d /var/tmp/bench-apply.XXXXXX)
SERVER=
cleanup() {
  if [ -n "$SERVER" ]; then kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; fi
  rm -rf "$W"
}
trap cleanup EXIT
now() { date +%s.%N; }
secs() { echo "$2 - $1" | bc -l; }

# --- keys, repository, the 1.0.1 release
$IB keygen "$W/root.key" >/dev/null
$IB keygen "$W/signing.key" >/dev/null
$IB init-repo --repo "$W/repo" --root-key "$W/root.key" --signing-key "$W/signing.key" >/dev/null
P=$W/payload
mkdir -p "$P"
head -c "${SIZE_MIB}M" /dev/urandom > "$P/usr.img"
SIZE=$(stat -c %s "$P/usr.img")
echo "kernel 1.0.1" > "$P/vmlinuz"
echo "initrd 1.0.1" > "$P/initrd.img"
printf '{"os_id":"minimal","os_name":"Minimal Linux","version":"1.0.1","channel":"alpha","kernel_release":"6.1.0","usr_partition_size":%s,"files":{}}\n' "$SIZE" > "$P/release.json"
USR_PATH=$($FA publish --repo "$W/repo" --channel alpha --key "$W/signing.key" --version 1.0.1 "$P")
SHA=${USR_PATH##*/}
rm "$P/usr.img" # the repository holds its copy

# --- the server, on a free loopback port
$IB serve "$W/repo" --listen 127.0.0.1:0 2> "$W/serve.log" &
SERVER=$!
for _ in $(seq 100); do grep -q 'on http://' "$W/serve.log" && break; sleep 0.1; done
URL=$(grep -o 'http://[0-9.:]*' "$W/serve.log")
[ -n "$URL" ] || { echo "image-builder serve did not start:" >&2; cat "$W/serve.log" >&2; exit 1; }

# --- the machine: booted from USR-A running 1.0.0, its entry blessed; USR-B a file
R=$W/root ESP=$W/esp
mkdir -p "$R/run" "$R/usr/lib" "$R/usr/share/update-engine" "$ESP/loader/entries" "$ESP/minimal/usr-a"
echo USR-A > "$R/run/boot-slot"
printf 'NAME="Minimal Linux"\nID=minimal\nVERSION_ID=1.0.0\n' > "$R/usr/lib/os-release"
printf 'GROUP=alpha\nSERVER=%s\nREBOOT_STRATEGY=off\n' "$URL" > "$R/usr/share/update-engine/update.conf"
cp "$W/repo/root.json" "$R/usr/share/update-engine/root.json"
echo k > "$ESP/minimal/usr-a/vmlinuz"
echo i > "$ESP/minimal/usr-a/initrd"
cat > "$ESP/loader/entries/minimal-usr-a.conf" <<EOF
title Minimal Linux 1.0.0 (USR-A)
sort-key minimal
version 1.0.0
linux /minimal/usr-a/vmlinuz
initrd /minimal/usr-a/initrd
options console=ttyS0 panic=10 usr=PARTUUID=aaaaaaaa-0000-5000-8000-000000000001
EOF
truncate -s "$SIZE" "$W/usr-a.img" "$W/usr-b.img" "$W/tools-slot.img"

# Warm the page cache for the payload file equally for both runs; flush the set-up's writes.
cat "$W/repo/$USR_PATH" > /dev/null
sync

ROUNDS=${ROUNDS:-3}
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
tools_times=(); engine_times=()
for round in $(seq "$ROUNDS"); do
  # --- the standard tools: download, hash and write in one stream, then sync
  sync
  t0=$(now)
  curl -sSf "$URL/$USR_PATH" | tee >(sha256sum > "$W/tools.sha") \
    | dd of="$W/tools-slot.img" bs=1M conv=notrunc,fsync iflag=fullblock status=none
  t1=$(now)
  sleep 0.2 # the sha256sum process substitution may still be finishing its write
  [ "$(cut -d' ' -f1 "$W/tools.sha")" = "$SHA" ] || { echo "tool pipeline: sha256 mismatch" >&2; exit 1; }
  tools_times+=("$(secs "$t0" "$t1")")

  # --- the update engine (a fresh engine state and no USR-B entry each round)
  rm -rf "$R/var/lib/update-engine" "$ESP/minimal/usr-b"
  rm -f "$ESP"/loader/entries/minimal-usr-b*.conf
  sync
  t0=$(now)
  /usr/bin/time -v -o "$W/time.txt" \
    $FA apply --root "$R" --file-slots "$W/usr-a.img,$W/usr-b.img" --esp "$ESP" > "$W/engine.out"
  t1=$(now)
  engine_times+=("$(secs "$t0" "$t1")")
  grep -q '1.0.1 staged on USR-B' "$W/engine.out" || { cat "$W/engine.out" >&2; exit 1; }
  cmp -s "$W/usr-b.img" "$W/tools-slot.img" || { echo "engine and tools wrote different bytes" >&2; exit 1; }
  ls "$ESP/loader/entries/" | grep -q '^minimal-usr-b+3-0.conf$' || { echo "no staged entry for USR-B" >&2; exit 1; }
  printf 'round %d: tools %.2f s, engine %.2f s\n' "$round" "${tools_times[-1]}" "${engine_times[-1]}"
done
tools=$(median "${tools_times[@]}")
engine=$(median "${engine_times[@]}")
rss_kib=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$W/time.txt")

mib=$(echo "$SIZE / 1048576" | bc -l)
ratio=$(echo "$tools / $engine" | bc -l)
rss_mib=$(echo "$rss_kib / 1024" | bc -l)
printf 'payload             %.0f MiB (sha256 %s...)\n' "$mib" "${SHA:0:12}"
printf 'curl|sha256sum|dd   %7.2f s  %7.1f MiB/s\n' "$tools" "$(echo "$mib / $tools" | bc -l)"
printf 'update-engine       %7.2f s  %7.1f MiB/s\n' "$engine" "$(echo "$mib / $engine" | bc -l)"
printf 'throughput ratio    %.2f (engine/tools, medians of %d rounds; target >= 0.9)\n' "$ratio" "$ROUNDS"
printf 'engine peak RSS     %.1f MiB (target < 32 MiB)\n' "$rss_mib"
