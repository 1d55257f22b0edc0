#!/usr/bin/env bash
# Issue 6: the container host's USR image size (target <= 300 MiB) and its TCG boot time to
# SSH-ready (first boot, configured from fw_cfg: ssh as core answers), side by side with the
# minimal image's boot to its login prompt on the same machine and QEMU, medians of ROUNDS.
# Run through `make bench-container-host` (builds both images first).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
IB=target/release/image-builder
CH=out/container-host
MIN=out/minimal
TMP=$(mktemp -d)
trap 'pkill -P $$ 2>/dev/null || true; rm -rf "$TMP"' EXIT

ssh-keygen -q -t ed25519 -N "" -f "$TMP/key"
printf '#cloud-config\nhostname: bench\nssh_authorized_keys:\n  - %s\n' "$(cat "$TMP/key.pub")" >"$TMP/user-data"

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# Seconds from QEMU's start until `ssh core@` runs a command on a fresh copy of the disk.
boot_ssh() {
  local p; p=$(port)
  local start; start=$(date +%s.%N)
  "$IB" run "$CH/disk.raw" --snapshot --memory 1536 --timeout 900 --forward "tcp:$p:22" -- \
    -fw_cfg "name=opt/com.coreos/config,file=$TMP/user-data" >"$TMP/console" 2>&1 &
  local pid=$!
  until ssh -q -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
      -o ConnectTimeout=2 -i "$TMP/key" -p "$p" core@127.0.0.1 true 2>/dev/null; do
    kill -0 "$pid" 2>/dev/null || { echo "container host VM exited:" >&2; tail -20 "$TMP/console" >&2; exit 1; }
    sleep 0.5
  done
  local end; end=$(date +%s.%N)
  kill "$pid"; wait "$pid" 2>/dev/null || true
  pkill -f "qemu-system-x86_64.*$CH/disk.raw" 2>/dev/null || true
  echo "$end - $start" | bc
}

# Seconds until the minimal image's login prompt.
boot_login() {
  local start; start=$(date +%s.%N)
  "$IB" run "$MIN/disk.raw" --snapshot --timeout 300 --expect 'login:' >/dev/null 2>&1
  local end; end=$(date +%s.%N)
  echo "$end - $start" | bc
}

usr=$(stat -c %s "$CH/usr.img")
echo "container-host USR image: $((usr / 1048576)) MiB (target <= 300 MiB)"
ch=(); mi=()
for _ in $(seq "$ROUNDS"); do
  ch+=("$(boot_ssh)")
  mi+=("$(boot_login)")
done
ch_med=$(printf '%s\n' "${ch[@]}" | median)
mi_med=$(printf '%s\n' "${mi[@]}" | median)
printf 'boot to SSH-ready, container host (first boot, TCG): %6.1f s  (runs: %s)\n' "$ch_med" "${ch[*]}"
printf 'boot to login prompt, minimal image (TCG):          %6.1f s  (runs: %s)\n' "$mi_med" "${mi[*]}"
