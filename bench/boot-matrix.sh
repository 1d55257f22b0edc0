#!/usr/bin/env bash
# Boot time of the minimal image on each hardware model the tests boot (tests/tests/hardware.rs),
# next to the virtio/UEFI baseline, in one run: QEMU start to the DHCP lease on the console
# (the disk and NIC drivers loaded, the OS up). Medians of ROUNDS boots, one machine at a time
# (TCG: a second machine would share the cores). BIOS cells boot through SeaBIOS and GRUB;
# pvscsi under UEFI gets the kernel directly (OVMF has no pvscsi driver), as in the tests.
# Run through `make bench-boot` (it builds the tools and the minimal image first).
set -euo pipefail
cd "$(dirname "$0")/.."
IB=target/release/image-builder
OUT=${OUT:-out/minimal}
ROUNDS=${ROUNDS:-3}
LEASE='udhcpc: eth0 bound 10\.0\.2\.15'

usr=$(python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
print(next(p["guid"] for p in r["layout"]["partitions"] if p["label"] == "USR-A"))' "$OUT/build.json")
direct=(-- -kernel "$OUT/vmlinuz" -initrd "$OUT/initrd.img" -append "console=ttyS0 usr=PARTUUID=$usr")

# boot_secs ARGS...: seconds from start to the lease (fails the bench when it never comes).
boot_secs() {
  local t0 t1
  t0=$(date +%s.%N)
  "$IB" run "$OUT/disk.raw" --snapshot --timeout 300 --expect "$LEASE" "$@" >/dev/null 2>&1 ||
    { echo "boot failed: $*" >&2; exit 1; }
  t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc -l
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

cell() {
  local name=$1; shift
  local i times=()
  for ((i = 0; i < ROUNDS; i++)); do times+=("$(boot_secs "$@")"); done
  printf '%s\n' "${times[@]}" | median
}

printf '%-42s %8s %7s\n' "cell (minimal image, TCG)" "boot s" "ratio"
base=$(cell baseline)
printf '%-42s %8.1f %7s\n' "q35 virtio disk + virtio NIC, UEFI" "$base" "1.00x"
while IFS='|' read -r name args kind; do
  # shellcheck disable=SC2086
  if [[ $kind == direct ]]; then t=$(cell "$name" $args "${direct[@]}"); else t=$(cell "$name" $args); fi
  printf '%-42s %8.1f %6.2fx\n' "$name" "$t" "$(echo "$t / $base" | bc -l)"
done <<'CELLS'
q35 virtio disk + virtio NIC, BIOS|--firmware bios|firmware
q35 AHCI + e1000e, UEFI|--disk-bus ahci --nic e1000e|firmware
i440fx IDE + e1000, BIOS|--machine pc --disk-bus ide --nic e1000 --firmware bios|firmware
i440fx AHCI + e1000 (VirtualBox box), BIOS|--machine pc --disk-bus ahci --nic e1000 --firmware bios|firmware
NVMe + igb, UEFI|--disk-bus nvme --nic igb|firmware
USB stick (xHCI) + rtl8139, UEFI|--disk-bus usb --nic rtl8139|firmware
USB stick (xHCI) + rtl8139, BIOS|--disk-bus usb --nic rtl8139 --firmware bios|firmware
MegaRAID SAS + e1000, BIOS|--disk-bus megasas --nic e1000 --firmware bios|firmware
pvscsi + vmxnet3, BIOS|--disk-bus pvscsi --nic vmxnet3 --firmware bios|firmware
pvscsi + vmxnet3, kernel|--disk-bus pvscsi --nic vmxnet3|direct
CELLS
