#!/usr/bin/env bash
# Installs what the build and the tests need on a Debian 12 (bookworm) host, as root.
# Idempotent: a second run installs nothing and takes about a second.
set -euo pipefail

need_pkgs=(gdisk dosfstools mtools squashfs-tools e2fsprogs ovmf xz-utils zstd cpio bc ca-certificates curl time
           etcd-server etcd-client protobuf-compiler libprotobuf-dev libxml2-utils vagrant python3-venv
           ipxe-qemu openssh-client vagrant-libvirt libvirt-daemon-system libvirt-clients dnsmasq-base iptables
           kmod genisoimage g++)
need_bins=(sgdisk fsck.fat mcopy mksquashfs e2fsck /usr/share/OVMF/OVMF_CODE_4M.fd xz zstd cpio bc curl /usr/bin/time
           etcd etcdctl protoc /usr/include/google/protobuf/descriptor.proto xmllint vagrant
           /usr/lib/ipxe/qemu/efi-virtio.rom ssh ssh-keygen
           libvirtd virtlogd virtlockd virsh dnsmasq iptables
           /usr/share/doc/vagrant-libvirt
           depmod genisoimage g++)
# moto (the AWS emulator the AMI upload test runs against) is not packaged in Debian 12: it
# lives in a venv of the system python3 at a fixed path, installed with pip's default
# configuration. tests/tests/ami_upload.rs uses the same path.
moto_venv=/opt/image-builder/moto
# COT (the Common OVF Tool, PyPI "cot"): an OVF consumer that is not ours, for the OVA test
# (tests/tests/artifacts.rs uses the same path).
cot_venv=/opt/image-builder/cot

# /dev/kvm as Debian's udev rule leaves it (root:kvm 0660; libvirt-qemu is in kvm): without
# udev it is root's alone, and libvirtd then finds every cached QEMU probe outdated ("KVM was
# enabled when probing ... but it is not available now") and probes all emulators again for
# each machine Vagrant defines (minutes under TCG). The machines themselves run under TCG.
kvm_device() {
  if [[ -c /dev/kvm && $(id -u) == 0 ]] && getent group kvm >/dev/null; then
    chgrp kvm /dev/kvm && chmod 0660 /dev/kvm
  fi
}
kvm_device

# cargo-fuzz, for the fuzz targets `make test` runs (scripts/fuzz.sh; libFuzzer itself is C++,
# built with g++ from need_pkgs). Built from crates.io for the user running this when missing
# (a minute, once); no root needed. The targets build on stable Rust (no sanitizer): no nightly.
CARGO_FUZZ_MIN=0.13.2
have=$(cargo fuzz --version 2>/dev/null | awk 'NR == 1 {print $2}' || true)  # none yet: cargo says 101
if [[ -z "$have" ]] || ! printf '%s\n%s\n' "$CARGO_FUZZ_MIN" "$have" | sort -V -C; then
  echo "installing cargo-fuzz (have: ${have:-none}, need >= $CARGO_FUZZ_MIN)"
  cargo install --locked cargo-fuzz
fi

missing=0
for b in "${need_bins[@]}" qemu-system-x86_64 qemu-img "$moto_venv/bin/moto_server" "$cot_venv/bin/cot"; do
  if [[ "$b" == /* ]]; then [[ -e "$b" ]] || missing=1; else command -v "$b" >/dev/null 2>&1 || missing=1; fi
done
if [[ "$missing" == 0 ]]; then
  exit 0
fi

if [[ $(id -u) != 0 ]]; then
  echo "error: missing host tools; run as root (or install: ${need_pkgs[*]} qemu-system-x86 from bookworm-backports)" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive

# QEMU comes from bookworm-backports: the preinstalled qemu-utils is the backports
# version and conflicts with bookworm's qemu-system-common. The mirror is the one the
# host already uses (read from its sources), never a hard-coded host.
backports=/etc/apt/sources.list.d/image-builder-backports.sources
if ! grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
  uri=""
  if [[ -f /etc/apt/sources.list.d/debian.sources ]]; then
    uri=$(awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
  fi
  if [[ -z "$uri" && -f /etc/apt/sources.list ]]; then
    uri=$(awk '$1=="deb" && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list)
  fi
  if [[ -z "$uri" ]]; then
    echo "error: cannot find the Debian mirror in /etc/apt/sources.list{,.d}" >&2
    exit 1
  fi
  cat > "$backports" <<SRC
Types: deb
URIs: $uri
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
fi

apt-get update -qq
# Packages with services (etcd-server) must not start them on the build host: tests start
# their own etcd on loopback ports.
policy=/usr/sbin/policy-rc.d
if [[ ! -e "$policy" ]]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy"
  chmod 755 "$policy"
  trap 'rm -f "$policy"' EXIT
fi
apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
apt-get install -y -qq --no-install-recommends -t bookworm-backports qemu-system-x86 qemu-utils >/dev/null
if [[ ! -x "$moto_venv/bin/moto_server" ]]; then
  rm -rf "$moto_venv"
  /usr/bin/python3 -m venv "$moto_venv"
  "$moto_venv/bin/pip" install -q 'moto[server]'
fi
if [[ ! -x "$cot_venv/bin/cot" ]]; then
  rm -rf "$cot_venv"
  /usr/bin/python3 -m venv "$cot_venv"
  "$cot_venv/bin/pip" install -q cot
fi
kvm_device
echo "host tools installed"
