#!/usr/bin/env bash
# Side-by-side: `image-builder build` of images/minimal.yaml against the same disk assembled by
# the standard tools (dpkg-deb, mksquashfs, cpio + zstd, mkfs.vfat + mtools, mke2fs, sgdisk, dd,
# sha256sum) from the same pinned packages, then a second build with nothing changed.
# Targets (issue 2): cold build <= 1.0x the tool pipeline; no-change rebuild <= 0.2x a cold build.
# Run through `make bench` (it builds the tools and fills the pool first).
set -euo pipefail
cd "$(dirname "$0")/.."
IB=target/release/image-builder
SPEC=images/minimal.yaml
POOL=pool
W=$(mktemp -d /tmp/bench.XXXXXX)
trap 'rm -rf "$W"' EXIT
now() { date +%s.%N; }
secs() { echo "$2 - $1" | bc -l; }

# --- image-builder, cold (--force: nothing reused)
t0=$(now)
$IB build $SPEC --out "$W/ib" --pool $POOL --force >/dev/null 2>&1
t1=$(now)
cold=$(secs "$t0" "$t1")

# --- image-builder, nothing changed
t0=$(now)
$IB build $SPEC --out "$W/ib" --pool $POOL 2>/dev/null >/dev/null
t1=$(now)
rebuild=$(secs "$t0" "$t1")

# --- the standard tool pipeline, same inputs, same layout and sizes
KREL=$(ls "$W/ib" >/dev/null; python3 -c "import json;print(json.load(open('$W/ib/build.json'))['kernel_release'])")
EPOCH=1767225600
tools() {
  local T=$W/tools R=$W/tools/root
  mkdir -p "$R"
  for deb in "$POOL"/*.deb; do dpkg-deb -x "$deb" "$R"; done
  # merged /usr, as the builder does
  mkdir -p "$R/usr/bin" "$R/usr/sbin" "$R/usr/lib"
  cp -a "$R/bin/." "$R/usr/bin/" && rm -rf "$R/bin"
  cp -a "$R/lib/." "$R/usr/lib/" && rm -rf "$R/lib"
  mv "$R/boot/vmlinuz-$KREL" "$T/vmlinuz"
  install -D -m644 services/minimal/inittab "$R/usr/share/factory/etc/inittab"
  install -D -m755 services/minimal/rcS "$R/usr/lib/minimal/rcS"
  install -D -m755 services/minimal/udhcpc.script "$R/usr/lib/minimal/udhcpc.script"
  for f in issue passwd group profile; do install -D -m644 services/minimal/$f "$R/usr/share/factory/etc/$f"; done
  install -D -m600 services/minimal/shadow "$R/usr/share/factory/etc/shadow"
  for l in $(sed -n '/^symlinks:/,/^partitions:/p' $SPEC | grep -o '/usr/[a-z]*bin/[^],"]*'); do ln -sf /usr/bin/busybox "$R$l"; done
  printf 'NAME="Minimal Linux"\nID=minimal\nVERSION_ID=1.0.0\n' > "$R/usr/lib/os-release"
  mksquashfs "$R/usr" "$T/usr.img" -comp zstd -noappend -quiet -no-progress -all-root -mkfs-time $EPOCH -all-time $EPOCH >/dev/null
  # initramfs: /init + the same module closure
  local I=$T/initrd
  mkdir -p "$I/etc" "$I/dev" "$I/proc" "$I/sys" "$I/run" "$I/sysroot"
  cp target/x86_64-unknown-linux-gnu/release/init "$I/init"
  zstd -dc "$W/ib/initrd.img" | (cd "$W" && cpio -i --quiet --to-stdout etc/initrd-modules) > "$I/etc/initrd-modules"
  while read -r m; do install -D -m644 "$R/usr/lib/modules/$KREL/$m" "$I/lib/modules/$KREL/$m"; done < "$I/etc/initrd-modules"
  (cd "$I" && find . -mindepth 1 | sort | cpio -o -H newc --quiet -R 0:0 | zstd -19 -q > "$T/initrd.img")
  # ESP
  mkfs.vfat -F 32 -n EFI-SYSTEM -C "$T/esp.img" $((128 * 1024)) >/dev/null
  export MTOOLS_SKIP_CHECK=1
  mmd -i "$T/esp.img" ::/EFI ::/EFI/BOOT ::/loader ::/loader/entries ::/minimal ::/minimal/usr-a
  mcopy -i "$T/esp.img" "$R/usr/lib/systemd/boot/efi/systemd-bootx64.efi" ::/EFI/BOOT/BOOTX64.EFI
  printf 'timeout 0\n' > "$T/loader.conf"; mcopy -i "$T/esp.img" "$T/loader.conf" ::/loader/loader.conf
  printf 'title Minimal\nlinux /minimal/usr-a/vmlinuz\ninitrd /minimal/usr-a/initrd\n' > "$T/entry.conf"
  mcopy -i "$T/esp.img" "$T/entry.conf" "::/loader/entries/minimal-usr-a+3-0.conf"
  mcopy -i "$T/esp.img" "$T/vmlinuz" ::/minimal/usr-a/vmlinuz
  mcopy -i "$T/esp.img" "$T/initrd.img" ::/minimal/usr-a/initrd
  # ROOT and OEM
  mkdir -p "$T/rootfs/etc" "$T/rootfs/usr" "$T/rootfs/tmp"; ln -s usr/bin "$T/rootfs/bin"
  E2FSPROGS_FAKE_TIME=$EPOCH mke2fs -q -F -t ext4 -b 4096 -L ROOT -d "$T/rootfs" "$T/root.img" 128M >/dev/null
  E2FSPROGS_FAKE_TIME=$EPOCH mke2fs -q -F -t ext4 -b 4096 -L OEM "$T/oem.img" 32M >/dev/null
  # GPT and disk
  truncate -s 804M "$T/disk.raw"
  sgdisk -n1:1M:+128M -t1:EF00 -c1:EFI-SYSTEM -n2:0:+2M -t2:EF02 -c2:BIOS-BOOT \
         -n3:0:+256M -t3:5DFBF5F4-2848-4BAC-AA5E-0D9A20B745A6 -c3:USR-A \
         -n4:0:+256M -t4:5DFBF5F4-2848-4BAC-AA5E-0D9A20B745A6 -c4:USR-B \
         -n6:0:+32M -t6:8300 -c6:OEM -n9:0:+128M -t9:3884DD41-8582-4404-B9A8-E9B84F2DF50E -c9:ROOT \
         "$T/disk.raw" >/dev/null
  dd if="$T/esp.img" of="$T/disk.raw" bs=1M seek=1 conv=notrunc,sparse status=none
  dd if="$T/usr.img" of="$T/disk.raw" bs=1M seek=131 conv=notrunc,sparse status=none
  dd if="$T/oem.img" of="$T/disk.raw" bs=1M seek=643 conv=notrunc,sparse status=none
  dd if="$T/root.img" of="$T/disk.raw" bs=1M seek=675 conv=notrunc,sparse status=none
  # the equivalent of build.json: a sha256 of every output
  (cd "$T" && sha256sum disk.raw usr.img vmlinuz initrd.img esp.img root.img oem.img >/dev/null)
}
t0=$(now)
tools
t1=$(now)
pipeline=$(secs "$t0" "$t1")

usr_ib=$(stat -c %s "$W/ib/usr.img"); usr_tools=$(stat -c %s "$W/tools/usr.img")
printf '%-44s %8.2f s\n' "standard tools (dpkg-deb, mksquashfs, ...)" "$pipeline"
printf '%-44s %8.2f s   ratio %.2fx the tools (target <= 1.0)\n' "image-builder build (cold)" "$cold" "$(echo "$cold / $pipeline" | bc -l)"
printf '%-44s %8.2f s   ratio %.2fx a cold build (target <= 0.2)\n' "image-builder build (nothing changed)" "$rebuild" "$(echo "$rebuild / $cold" | bc -l)"
printf '%-44s %8d bytes (mksquashfs: %d)\n' "usr.img (zstd)" "$usr_ib" "$usr_tools"
