#!/usr/bin/env bash
# Side-by-side: `image-builder build` of a spec against the same disk assembled by the standard
# tools (sha256sum, dpkg-deb, depmod, mksquashfs, cpio + zstd, mkfs.vfat + mtools, mke2fs,
# sgdisk, dd), then a second build with nothing changed; for the minimal image and the
# container host (SPECS="images/a.yaml ..." picks others).
#
# Both sides get exactly the packages of the spec's lock (images/<name>.lock: package, version,
# sha256, filename), linked from the pool into a directory of their own, whatever else the pool
# holds. Both do the same work: check every package's sha256, unpack them all, merge /usr, add
# the spec's files, units, symlinks and the update engine, index the kernel modules, compress
# /usr (zstd squashfs) without the modules `kernel.modules` leaves out, build the initramfs from
# the same modules with their depmod indexes, the ESP, ROOT and OEM,
# and write them into a GPT disk laid out as build.json's layout. (Our builder also renders
# os-release, boot entries and the unit presets it declares; those are small.)
# Targets (issue 2): cold build <= 1.0x the tool pipeline; no-change rebuild <= 0.2x a cold build.
# Run through `make bench` (it builds the tools and fills the pool first).
set -euo pipefail
cd "$(dirname "$0")/.."
IB=target/release/image-builder
INIT=target/x86_64-unknown-linux-gnu/release/init
POOL=${POOL:-pool}
SPECS=${SPECS:-images/minimal.yaml images/container-host.yaml}
EPOCH=1767225600
W=$(mktemp -d /var/tmp/bench-build.XXXXXX)
trap 'rm -rf "$W"' EXIT
now() { date +%s.%N; }
secs() { echo "$2 - $1" | bc -l; }

# locked_pool SPEC DIR: DIR/ holds a link to each package of SPEC's lock (from $POOL), and
# DIR/SHA256SUMS their hashes as the lock pins them.
locked_pool() {
  python3 - "${1%.yaml}.lock" "$POOL" "$2" <<'PY'
import json, os, sys
lock, pool, out = sys.argv[1:4]
os.makedirs(out)
with open(os.path.join(out, "SHA256SUMS"), "w") as sums:
    for p in json.load(open(lock))["packages"]:
        src = os.path.join(pool, p["filename"])
        if not os.path.isfile(src):
            sys.exit(f"{src} is missing: run `make pool-all`")
        os.symlink(os.path.abspath(src), os.path.join(out, p["filename"]))
        sums.write(f"{p['sha256']}  {p['filename']}\n")
PY
}

# plan SPEC: what the spec adds to the tree, one line each: `file SRC DST MODE`, `unit SRC`,
# `engine SRC`, `link TARGET LINK`.
plan() {
  python3 - "$1" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
def block(key):
    m = re.search(rf"^{key}:\n((?:[ #].*\n|\n)*)", text, re.M)
    return m.group(1) if m else ""
for m in re.finditer(r"\{src: ([^,}]+), dst: ([^,}]+)(?:, mode: 0o([0-7]+))?\}", block("files")):
    print("file", m.group(1), m.group(2), m.group(3) or "644")
for m in re.finditer(r"\{src: ([^,}]+)\}", block("units")):
    print("unit", m.group(1))
m = re.search(r"^  engine: (\S+)", block("update"), re.M)
if m:
    print("engine", m.group(1))
body = "\n".join(l for l in block("symlinks").splitlines() if not l.strip().startswith("#"))
for item in re.split(r"^  - ", body, flags=re.M)[1:]:
    target = re.search(r"target: (\S+)", item).group(1)
    links = re.search(r"links: \[(.*?)\]", item, re.S).group(1)
    for link in links.split(","):
        print("link", target, link.strip().strip('"'))
PY
}

# layout OUT: `number label type-guid offset size` per partition of OUT/build.json, and the
# disk size on the first line.
layout() {
  python3 - "$1/build.json" <<'PY'
import json, sys
l = json.load(open(sys.argv[1]))["layout"]
print(l["size"])
for p in l["partitions"]:
    print(p["number"], p["label"], p["type_guid"], p["offset"], p["size"])
PY
}

# tools NAME LOCKED IB_OUT: the disk of the spec from the packages in LOCKED, with the tools.
# What the spec or our build decided (plan, layout, os-release, the initramfs module list) is
# read before it is timed.
tools() {
  local name=$1 locked=$2 ib=$3
  local T=$W/tools-$name R=$W/tools-$name/root
  mkdir -p "$R"
  (cd "$locked" && sha256sum --quiet -c SHA256SUMS)
  for deb in "$locked"/*.deb; do dpkg-deb -x "$deb" "$R"; done
  # merged /usr, as the builder does
  for d in bin sbin lib lib32 lib64 libx32; do
    if [[ -d "$R/$d" && ! -L "$R/$d" ]]; then
      mkdir -p "$R/usr/$d" && cp -a "$R/$d/." "$R/usr/$d/" && rm -rf "${R:?}/$d"
    fi
    [[ -e "$R/usr/$d" ]] && ln -sfn "usr/$d" "$R/$d"
  done
  mv "$R/boot/vmlinuz-$KREL" "$T/vmlinuz"
  while read -r kind a b c; do
    case $kind in
      file) install -D -m "$c" "$a" "$R$b" ;;
      unit) install -D -m 644 "$a" "$R/usr/lib/systemd/system/${a##*/}" ;;
      engine) install -D -m 755 "$a" "$R/usr/bin/update-engine"
              ln -sf update-engine "$R/usr/bin/update_engine_client"
              ln -sf update-engine "$R/usr/bin/locksmithctl" ;;
      link) mkdir -p "$(dirname "$R$b")"; ln -sfn "$a" "$R$b" ;;
    esac
  done < "$W/$name.plan"
  cp "$W/$name.os-release" "$R/usr/lib/os-release"
  # kernel.modules: the modules the spec leaves out of /usr go (the list is our build's)
  (cd "$R/usr/lib/modules/$KREL" && find . -name '*.ko' | sed 's|^\./||' | sort) > "$T/all-modules"
  comm -23 "$T/all-modules" "$W/$name.usr-modules" | (cd "$R/usr/lib/modules/$KREL" && xargs -r rm -f)
  find "$R/usr/lib/modules/$KREL" -type d -empty -delete
  depmod -b "$R" "$KREL"
  mksquashfs "$R/usr" "$T/usr.img" -comp zstd -noappend -quiet -no-progress -all-root -mkfs-time $EPOCH -all-time $EPOCH >/dev/null
  # initramfs: /init + the same modules, their depmod indexes (coldplug), the same lists
  local I=$T/initrd
  mkdir -p "$I/etc" "$I/dev" "$I/proc" "$I/sys" "$I/run" "$I/sysroot"
  cp "$INIT" "$I/init"
  cp "$W/$name.initrd-modules" "$I/etc/initrd-modules"
  while read -r m; do install -D -m644 "$R/usr/lib/modules/$KREL/$m" "$I/lib/modules/$KREL/$m"; done < "$W/$name.initrd-ko"
  for f in modules.order modules.builtin modules.builtin.modinfo; do cp "$R/usr/lib/modules/$KREL/$f" "$I/lib/modules/$KREL/"; done
  depmod -b "$I" "$KREL"
  cp "$W/$name.storage-aliases" "$I/lib/modules/$KREL/modules.alias.storage"
  (cd "$I" && find . -mindepth 1 | sort | cpio -o -H newc --quiet -R 0:0 | zstd -19 -q > "$T/initrd.img")
  # the partitions: ESP, ROOT, OEM at their sizes in the layout
  local disk_size n label type offset size
  declare -A at sz
  { read -r disk_size
    while read -r n label type offset size; do at[$label]=$offset; sz[$label]=$size; done
  } < "$W/$name.layout"
  mkfs.vfat -F 32 -n EFI-SYSTEM -C "$T/esp.img" $((${sz[EFI-SYSTEM]} / 1024)) >/dev/null
  export MTOOLS_SKIP_CHECK=1
  mmd -i "$T/esp.img" ::/EFI ::/EFI/BOOT ::/loader ::/loader/entries "::/$name" "::/$name/usr-a"
  mcopy -i "$T/esp.img" "$R/usr/lib/systemd/boot/efi/systemd-bootx64.efi" ::/EFI/BOOT/BOOTX64.EFI
  printf 'timeout 0\n' > "$T/loader.conf"; mcopy -i "$T/esp.img" "$T/loader.conf" ::/loader/loader.conf
  printf 'title %s\nlinux /%s/usr-a/vmlinuz\ninitrd /%s/usr-a/initrd\n' "$name" "$name" "$name" > "$T/entry.conf"
  mcopy -i "$T/esp.img" "$T/entry.conf" "::/loader/entries/$name-usr-a+3-0.conf"
  mcopy -i "$T/esp.img" "$T/vmlinuz" "::/$name/usr-a/vmlinuz"
  mcopy -i "$T/esp.img" "$T/initrd.img" "::/$name/usr-a/initrd"
  mkdir -p "$T/rootfs/etc" "$T/rootfs/usr" "$T/rootfs/tmp"; ln -s usr/bin "$T/rootfs/bin"
  E2FSPROGS_FAKE_TIME=$EPOCH mke2fs -q -F -t ext4 -b 4096 -L ROOT -d "$T/rootfs" "$T/root.img" "$((${sz[ROOT]} / 1024))k" >/dev/null
  E2FSPROGS_FAKE_TIME=$EPOCH mke2fs -q -F -t ext4 -b 4096 -L OEM "$T/oem.img" "$((${sz[OEM]} / 1024))k" >/dev/null
  # GPT and disk
  truncate -s "$disk_size" "$T/disk.raw"
  local args=()
  while read -r n label type offset size; do
    args+=(-n "$n:$((offset / 512)):$(((offset + size) / 512 - 1))" -t "$n:$type" -c "$n:$label")
  done < <(tail -n +2 "$W/$name.layout")
  sgdisk "${args[@]}" "$T/disk.raw" >/dev/null
  for part in EFI-SYSTEM:esp USR-A:usr OEM:oem ROOT:root; do
    dd if="$T/${part#*:}.img" of="$T/disk.raw" bs=1M seek="${at[${part%%:*}]}" oflag=seek_bytes conv=notrunc,sparse status=none
  done
  # the equivalent of build.json: a sha256 of every output
  (cd "$T" && sha256sum disk.raw usr.img vmlinuz initrd.img esp.img root.img oem.img >/dev/null)
}

for SPEC in $SPECS; do
  name=$(basename "$SPEC" .yaml)
  locked_pool "$SPEC" "$W/pool-$name"
  count=$(wc -l < "$W/pool-$name/SHA256SUMS")
  mib=$(du -DLsm "$W/pool-$name" | cut -f1)

  # --- image-builder, cold (--force: nothing reused)
  t0=$(now)
  $IB build "$SPEC" --out "$W/ib-$name" --pool "$W/pool-$name" --force >/dev/null 2>&1
  t1=$(now)
  cold=$(secs "$t0" "$t1")

  # --- image-builder, nothing changed
  t0=$(now)
  $IB build "$SPEC" --out "$W/ib-$name" --pool "$W/pool-$name" >/dev/null 2>&1
  t1=$(now)
  rebuild=$(secs "$t0" "$t1")

  # --- the standard tool pipeline, same packages, same layout and sizes
  KREL=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['kernel_release'])" "$W/ib-$name/build.json")
  plan "$SPEC" > "$W/$name.plan"
  layout "$W/ib-$name" > "$W/$name.layout"
  unsquashfs -cat "$W/ib-$name/usr.img" lib/os-release > "$W/$name.os-release"
  zstd -dc "$W/ib-$name/initrd.img" | (cd "$W" && cpio -i --quiet --to-stdout etc/initrd-modules) > "$W/$name.initrd-modules"
  zstd -dc "$W/ib-$name/initrd.img" | (cd "$W" && cpio -i --quiet --to-stdout "lib/modules/$KREL/modules.alias.storage") > "$W/$name.storage-aliases"
  zstd -dc "$W/ib-$name/initrd.img" | cpio -t --quiet | sed -n "s|^lib/modules/$KREL/\(.*\.ko\)\$|\1|p" | sort > "$W/$name.initrd-ko"
  unsquashfs -l "$W/ib-$name/usr.img" | sed -n "s|^squashfs-root/lib/modules/$KREL/\(.*\.ko\)\$|\1|p" | sort > "$W/$name.usr-modules"
  sync
  t0=$(now)
  tools "$name" "$W/pool-$name" "$W/ib-$name"
  t1=$(now)
  pipeline=$(secs "$t0" "$t1")

  usr_ib=$(stat -c %s "$W/ib-$name/usr.img"); usr_tools=$(stat -c %s "$W/tools-$name/usr.img")
  echo "$SPEC: $count packages of ${SPEC%.yaml}.lock ($mib MiB of .deb)"
  printf '%-44s %8.2f s\n' "standard tools (dpkg-deb, mksquashfs, ...)" "$pipeline"
  printf '%-44s %8.2f s   ratio %.2fx the tools (target <= 1.0)\n' "image-builder build (cold)" "$cold" "$(echo "$cold / $pipeline" | bc -l)"
  printf '%-44s %8.2f s   ratio %.2fx a cold build (target <= 0.2)\n' "image-builder build (nothing changed)" "$rebuild" "$(echo "$rebuild / $cold" | bc -l)"
  printf '%-44s %8d bytes (mksquashfs: %d)\n' "usr.img (zstd)" "$usr_ib" "$usr_tools"
  rm -rf "$W/tools-$name" "$W/ib-$name"
done
