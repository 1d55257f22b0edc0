#!/usr/bin/env python3
"""Writes the named seed inputs of each fuzz target into fuzz/corpus/<target>/ (fuzz/README.md).

The seeds are real inputs where the repository has them (the shipped specs and locks, the
cloud-configs of the validator's test suite and of the Vagrant cluster, this host's apt lists
when present) and small hand-made ones otherwise (packages built here with ar and tar, GPT
heads, boot entries, channel documents). Everything else in a corpus directory is what the
fuzzer found and `cargo fuzz cmin` kept. Running this again rewrites the named seeds only.

usage: fuzz/seeds.py
"""
import glob
import hashlib
import io
import json
import os
import struct
import subprocess
import tarfile
import uuid
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "fuzz", "corpus")


def seed(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def read(path):
    with open(os.path.join(ROOT, path), "rb") as f:
        return f.read()


# --- spec and lock -----------------------------------------------------------------------

UPDATE_SPEC = """\
os: {name: Fuzz Linux, id: fuzz, version: 1.2.3, channel: beta, id_like: [coreos]}
source_date_epoch: 1767225600
kernel:
  package: linux-image-6.1.0-56-cloud-amd64
  cmdline: console=ttyS0 panic=10
  initramfs_modules: [virtio_blk, squashfs]
  modules: {exclude: ["*"], include: [drivers/block/, fs/squashfs/squashfs.ko]}
bootloader: {package: systemd-boot-efi, bios: grub-pc-bin, tries: 5, timeout: 2}
packages: [busybox-static, ca-certificates]
resolve: {mode: closure, essential: true, prefer: [mawk], exclude: [usrmerge], index: source}
files: [{src: services/minimal/issue, dst: /usr/share/factory/etc/issue, mode: 0o644}]
units: [{src: services/units/update-engine.service}]
symlinks: [{target: /usr/bin/busybox, links: [/usr/bin/sh]}]
partitions: {esp_mib: 64, usr_mib: 128, oem_mib: 16, root_mib: 64, bios_boot_kib: 1024}
outputs: [raw, qcow2, ova, pxe]
update:
  server: https://updates.example.com/repo
  group: beta
  reboot_strategy: etcd-lock
  root_keys: keys/root.json
  engine: target/update-engine
  locksmith:
    endpoints: [http://10.0.0.1:2379, http://10.0.0.2:2379]
    group: workers
    window_start: Thu 23:00
    window_length: 1h30m
  fleetlock: {url: http://fleetlock.example.com/, group: default}
"""


def spec_and_lock():
    for path in glob.glob(os.path.join(ROOT, "images", "*.yaml")):
        seed("spec", os.path.basename(path), read(path))
    seed("spec", "update.yaml", UPDATE_SPEC)
    # Specs the builder took, whose disk could not boot (/init found no usr=) and whose
    # update.conf the machines read otherwise (image-builder/src/spec.rs tests).
    seed("spec", "regression-cmdline-double-dash.yaml",
         UPDATE_SPEC.replace("cmdline: console=ttyS0 panic=10", "cmdline: console=ttyS0 -- single"))
    seed("spec", "regression-cmdline-quote.yaml",
         UPDATE_SPEC.replace("cmdline: console=ttyS0 panic=10", "cmdline: console=ttyS0 x=\"a"))
    seed("spec", "regression-server-space.yaml",
         UPDATE_SPEC.replace("server: https://updates", "server: \" https://updates").replace("/repo\n", "/repo\"\n", 1))
    seed("lock", "minimal.lock", read("images/minimal.lock"))
    # The closure lock cut to its resolve settings and three packages (the whole is 64 KiB).
    lock = json.loads(read("images/container-host.lock"))
    lock["packages"] = lock["packages"][:3]
    seed("lock", "container-host-head.lock", json.dumps(lock, indent=2) + "\n")


# --- apt: Packages and Release -----------------------------------------------------------

PACKAGES = """\
Package: busybox-static
Source: busybox
Version: 1:1.35.0-4+deb12u1+b1
Installed-Size: 2010
Maintainer: Debian Install System Team <debian-boot@lists.debian.org>
Architecture: amd64
Replaces: busybox
Provides: busybox
Conflicts: busybox
Built-Using: glibc (= 2.36-9+deb12u13)
Description: Standalone rescue shell with tons of builtin utilities
Multi-Arch: foreign
Section: shells
Priority: optional
Filename: pool/main/b/busybox/busybox-static_1.35.0-4+deb12u1+b1_amd64.deb
Size: 876484
SHA256: 0d0b8e9c1c6e1c4c0a2a9d3f4e6b8a0c2e4f6a8b0c2d4e6f8a0b2c4d6e8f0a1b

Package: libc6
Version: 2.36-9+deb12u13
Architecture: amd64
Multi-Arch: same
Priority: optional
Essential: no
Depends: libgcc-s1
Pre-Depends: debconf (>= 0.5) | debconf-2.0
Breaks: hurd (<< 1:0.9.git20220301-2), libc6-dev (<< 2.36-9+deb12u13), nscd (<< 2.36)
Recommends: libidn2-0 (>= 2.0.5~)
Filename: pool/main/g/glibc/libc6_2.36-9+deb12u13_amd64.deb
Size: 2757936
SHA256: 7B7E0A2C4D6E8F0A1B3C5D7E9F1A3B5C7D9E1F3A5B7C9D1E3F5A7B9C1D3E5F7A

Package: mawk
Version: 1.3.4.20200120-3.1
Architecture: amd64
Essential: yes
Priority: required
Provides: awk
Pre-Depends: libc6 (>= 2.34)
Filename: pool/main/m/mawk/mawk_1.3.4.20200120-3.1_amd64.deb
Size: 133000
SHA256: 1f2e3d4c5b6a79881f2e3d4c5b6a79881f2e3d4c5b6a79881f2e3d4c5b6a7988

Package: debconf
Version: 1.5.82
Architecture: all
Multi-Arch: foreign
Priority: important
Depends: perl-base (>= 5.20.1-3~)
Provides: debconf-2.0
Conflicts: apt (<< 0.3.12.1), cdebconf (<< 0.96), debconf-tiny
Filename: pool/main/d/debconf/debconf_1.5.82_all.deb
Size: 121000
SHA256: 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff

Package: libgcc-s1
Version: 12.2.0-14+deb12u1
Architecture: amd64
Depends: gcc-12-base (= 12.2.0-14+deb12u1), libc6 (>= 2.35)
Filename: pool/main/g/gcc-12/libgcc-s1_12.2.0-14+deb12u1_amd64.deb
Size: 49000
SHA256: ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100
"""


def apt_lists():
    seed("packages", "hand.Packages", PACKAGES)
    lists = "/var/lib/apt/lists"
    found = sorted(glob.glob(os.path.join(lists, "*bookworm-updates_main_binary-amd64_Packages*")))
    if found:
        text = subprocess.run(
            ["/usr/lib/apt/apt-helper", "cat-file", found[0]],
            check=True, capture_output=True,
        ).stdout.decode()
        stanzas = [s for s in text.split("\n\n") if s.strip()]
        # A few real paragraphs with relationship fields, versions with epochs and tildes.
        picked = [s for s in stanzas if "Depends:" in s][:4]
        seed("packages", "bookworm-updates.Packages", "\n\n".join(picked) + "\n")
    releases = sorted(glob.glob(os.path.join(lists, "*bookworm-updates_InRelease")))
    if releases:
        seed("release", "bookworm-updates.Release", release_of(read(releases[0]).decode()))
    seed("release", "rendered.Release", RENDERED_RELEASE)


def release_of(inrelease):
    """The Release inside an InRelease, without its PGP armour, SHA256 cut to eight lines."""
    body = inrelease.split("\n\n", 1)[1].split("\n-----BEGIN PGP SIGNATURE-----")[0]
    out, in_sha256, kept = [], False, 0
    for line in body.splitlines():
        if not line.startswith(" "):
            in_sha256 = line.startswith("SHA256:")
            if line.startswith("MD5Sum:"):
                in_sha256 = None
        if in_sha256 is None and (line.startswith(" ") or line.startswith("MD5Sum:")):
            continue
        if in_sha256 and line.startswith(" "):
            kept += 1
            if kept > 8:
                continue
        out.append(line)
    return "\n".join(out) + "\n"


RENDERED_RELEASE = """\
Origin: image-builder
Label: image-builder
Suite: stable
Codename: stable
Architectures: amd64
Components: main
SHA256:
 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855        0 main/binary-amd64/Packages
 5d3ea4f5e1d3f8b9a6c0b0d9e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4      120 main/binary-amd64/Packages.xz
"""


# --- .deb --------------------------------------------------------------------------------

def tar_bytes(entries, compress=None):
    tarfile.RECORDSIZE = 2 * tarfile.BLOCKSIZE  # just the end-of-archive blocks, no 10 KiB records
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as t:
        for name, kind, payload in entries:
            info = tarfile.TarInfo(name)
            info.mtime = 1700000000
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            if kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                t.addfile(info)
            elif kind == "file":
                info.mode, info.size = 0o644, len(payload)
                t.addfile(info, io.BytesIO(payload))
            elif kind == "symlink":
                info.type, info.linkname, info.mode = tarfile.SYMTYPE, payload, 0o777
                t.addfile(info)
            elif kind == "hardlink":
                info.type, info.linkname, info.mode = tarfile.LNKTYPE, payload, 0o644
                t.addfile(info)
    data = buf.getvalue()
    if compress == "gz":
        data = gzip_bytes(data)
    return data


def gzip_bytes(data):
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    out = c.compress(data) + c.flush()
    return out[:4] + b"\0\0\0\0" + out[8:]  # mtime 0: the same bytes every run


def ar_bytes(members):
    out = b"!<arch>\n"
    for name, data in members:
        header = f"{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(data):<10}`\n".encode()
        out += header + data + (b"\n" if len(data) % 2 else b"")
    return out


CONTROL = b"""Package: fuzz-example
Version: 1:2.3-4~deb12u1
Architecture: amd64
Maintainer: Nobody <nobody@example.com>
Depends: libc6 (>= 2.34)
Description: a package for the fuzzer
 More text.
 .
 After a paragraph break.
"""

DATA = [
    ("./", "dir", None),
    ("./usr/", "dir", None),
    ("./usr/bin/", "dir", None),
    ("./usr/bin/tool", "file", b"#!/bin/sh\necho hi\n"),
    ("./usr/bin/alias", "symlink", "tool"),
    ("./usr/bin/twin", "hardlink", "./usr/bin/tool"),
    ("./bin/", "dir", None),
    ("./bin/old", "symlink", "/usr/bin/tool"),
    ("./etc/", "dir", None),
    ("./etc/tool.conf", "file", b"key=value\n"),
    ("./lib/", "dir", None),
    ("./lib/x86_64-linux-gnu/", "dir", None),
    ("./lib/x86_64-linux-gnu/libx.so.1", "file", b"\x7fELF" + bytes(60)),
    ("./var/", "dir", None),
    ("./var/lib/", "dir", None),
    ("./opt/", "dir", None),
    ("./boot/", "dir", None),
    ("./boot/vmlinuz-6.1.0", "file", b"MZ" + bytes(30)),
]


def debs():
    control = tar_bytes([("./", "dir", None), ("./control", "file", CONTROL)])
    seed("deb", "plain.deb", ar_bytes([
        ("debian-binary", b"2.0\n"), ("control.tar", control), ("data.tar", tar_bytes(DATA)),
    ]))
    seed("deb", "gz-with-signature-member.deb", ar_bytes([
        ("debian-binary", b"2.0\n"),
        ("control.tar.gz", gzip_bytes(control)),
        ("_gpgorigin", b"-----BEGIN PGP SIGNATURE-----\n"),
        ("data.tar.gz", tar_bytes(DATA[:6], "gz")),
    ]))
    seed("deb", "empty-data.deb", ar_bytes([
        ("debian-binary", b"2.0\n"), ("control.tar", control), ("data.tar", tar_bytes([])),
    ]))
    # A real one from the pool when it is there: xz members, as Debian builds them.
    for name in ["runit-helper_2.15.2_all.deb"]:
        path = os.path.join(ROOT, "pool", name)
        if os.path.exists(path):
            seed("deb", name, read(path))


# --- cloud-config ------------------------------------------------------------------------

def cloud_configs():
    cases = json.loads(read("cloudconfig/tests/data/cloud-config/cases.json"))
    seen = set()
    for case in cases:
        text = case["config"].encode()
        digest = hashlib.sha1(text).hexdigest()[:12]
        if text and digest not in seen:
            seen.add(digest)
            seed("cloudconfig", f"case-{digest}", text)
    subst = json.loads(read("cloudconfig/tests/data/cloud-config/substitution_cases.json"))
    for case in subst["cases"]:
        seed("cloudconfig", f"substitution-{case['name']}", "#cloud-config\n" + case["input"])
    seed("cloudconfig", "container-host.user-data", read("images/container-host.user-data"))
    seed("cloudconfig", "coreos-vagrant.user-data", read("tests/data/coreos-vagrant/user-data.sample"))
    seed("cloudconfig", "script", "#!/bin/sh\necho $private_ipv4\n")
    seed("cloudconfig", "ignition.json", '{"ignition":{"version":"2.2.0"}}')


# --- channels ----------------------------------------------------------------------------

# RFC 8032, test 1: an ed25519 key pair and its signature of the empty message.
SECRET = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
PUBLIC = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
SIG = ("e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bac"
       "c61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b")
KEY_ID = hashlib.sha256(bytes.fromhex(PUBLIC)).hexdigest()


def canonical(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


MANIFEST = {
    "channel": "alpha", "version": "1.0.1", "sequence": 7, "release_time": 1767225600,
    "expires": 1798761600, "version_floor": "1.0.0",
    "payloads": {
        "usr.img": {"sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "size": 0},
        "release.json": {"sha256": "5d3ea4f5e1d3f8b9a6c0b0d9e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4", "size": 312},
    },
}
KEYSET = {"version": 3, "expires": 1798761600, "keys": [PUBLIC]}
RELEASE_JSON = {
    "os_id": "minimal", "os_name": "Minimal Linux", "version": "1.0.1", "channel": "alpha",
    "kernel_release": "6.1.0-56-amd64", "usr_partition_size": 268435456,
    "files": {"usr.img": {"size": 0, "sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}},
}


def channels():
    sig = canonical({"key_id": KEY_ID, "sig": SIG})
    key_file = canonical({"key_id": KEY_ID, "public": PUBLIC, "secret": SECRET, "type": "ed25519"}) + "\n"
    for target in ("canonical", "manifest"):
        seed(target, "manifest.json", canonical(MANIFEST))
        seed(target, "keys.json", canonical(KEYSET))
        seed(target, "root.json", canonical({"keys": [PUBLIC]}))
    seed("canonical", "escapes.json", canonical({"a\u0001\"\\": ["\t\u007f\u00e9", -9223372036854775808, 18446744073709551615, None, True]}))
    seed("canonical", "manifest.sig", sig)
    seed("manifest", "release.json", json.dumps(RELEASE_JSON, indent=2))
    seed("signature", "keys-sig-public", canonical(KEYSET) + "\0" + sig + "\0" + PUBLIC)
    seed("signature", "keys-sig-secret", canonical(KEYSET) + "\0" + sig + "\0" + key_file)
    seed("signature", "keys-sig-keyid", canonical(KEYSET) + "\0" + sig + "\0" + KEY_ID)


# --- GPT ---------------------------------------------------------------------------------

def guid_le(u):
    return uuid.UUID(u).bytes_le


def gpt_head(entries, count, entry_size=128, sectors_after=0):
    """Protective MBR, primary header and `count` entries at LBA 2 (CRCs right)."""
    array = bytearray(count * entry_size)
    for i, (number, type_guid, guid, first, last, name) in enumerate(entries):
        at = (number - 1) * entry_size
        e = guid_le(type_guid) + guid_le(guid) + struct.pack("<QQQ", first, last, 0)
        e += name.encode("utf-16-le").ljust(72, b"\0")
        array[at:at + 128] = e
    array = bytes(array)
    array_sectors = (len(array) + 511) // 512
    last_lba = 2 + array_sectors + sectors_after + 1000
    h = bytearray(512)
    h[0:8] = b"EFI PART"
    struct.pack_into("<IIIIQQQQ", h, 8, 0x10000, 92, 0, 0, 1, last_lba, 2 + array_sectors, last_lba - 1)
    h[56:72] = guid_le("6f1d2c3a-9b7e-4e21-8a55-0c3e71d2b9f4")
    struct.pack_into("<QIII", h, 72, 2, count, entry_size, zlib.crc32(array))
    struct.pack_into("<I", h, 16, zlib.crc32(bytes(h[:92])))
    mbr = bytearray(512)
    mbr[446:462] = bytes([0, 0, 2, 0, 0xEE, 0xFF, 0xFF, 0xFF]) + struct.pack("<II", 1, last_lba)
    mbr[510:512] = b"\x55\xaa"
    return bytes(mbr) + bytes(h) + array.ljust(array_sectors * 512, b"\0")


ESP = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b"
USR = "5dfbf5f4-2848-4bac-aa5e-0d9a20b745a6"
ROOTFS = "3884dd41-8582-4404-b9a8-e9b84f2df50e"


def gpt():
    parts = [
        (1, ESP, "0d3f0c6e-8f0d-5c55-9d25-2b3e5a2f9a11", 2048, 264191, "EFI-SYSTEM"),
        (3, USR, "6a1f8e3c-2b9d-5e47-8c10-4f7a9d3e2b61", 264192, 788479, "USR-A"),
        (4, USR, "7b2f9e4d-3cae-5f58-9d21-5a8bae4f3c72", 788480, 1312767, "USR-B"),
        (9, ROOTFS, "8c3a0f5e-4dbf-5069-ae32-6b9cbf5a4d83", 1312768, 1574911, "ROOT"),
    ]
    seed("gpt", "builder-head", b"\0" + gpt_head(parts, 128))
    seed("gpt", "sixteen-entries", b"\0" + gpt_head(parts, 16))
    seed("gpt", "fix-crcs", b"\x07" + gpt_head(parts[:2], 4))


# --- boot entries, semaphore, update.conf, OVF --------------------------------------------

ENTRY = (
    "title Minimal Linux 1.0.0 (USR-A)\nsort-key minimal\nversion 1.0.0\n"
    "linux /minimal/usr-a/vmlinuz\ninitrd /minimal/usr-a/initrd\n"
    "options console=tty0 console=ttyS0,115200n8 panic=10 quiet "
    "usr=PARTUUID=0d3f0c6e-8f0d-5c55-9d25-2b3e5a2f9a11\n"
)


def envblk(vars_text):
    text = "# GRUB Environment Block\n" + vars_text
    return text + "#" * (1024 - len(text))


def boot_entries():
    seed("boot_entry", "counted", "minimal-usr-a+3-0.conf\0" + ENTRY + "\0" + envblk("boot_tries_usr_a=xx\n"))
    seed("boot_entry", "blessed", "minimal-usr-b.conf\0" + ENTRY.replace("1.0.0", "1.0.10") + "\0" + envblk(""))
    seed("boot_entry", "continued", "minimal-usr-a+0-3.conf\0"
         + ENTRY.replace("quiet", 'root=PARTLABEL=ROOT init=/sbin/init "a b" -- single')
         + "\0" + envblk("boot_tries_usr_b=x\nmulti=a\\\nb\\\\\n"))
    # A booted entry whose usr= value held a quoted space: the next slot's entry hid its usr=
    # from /init (host/update-engine/src/policy.rs tests).
    seed("boot_entry", "regression-quoted-usr", "minimal-usr-a.conf\0"
         + ENTRY.replace("quiet ", 'quiet usr=PARTUUID=old"a b" ') + "\0")


def semaphores():
    seed("semaphore", "fresh", '{"semaphore":1,"max":1,"holders":null}\0machine-a')
    seed("semaphore", "held", '{"semaphore":0,"max":2,"holders":["machine-a","machine-b"]}\0machine-b')
    seed("semaphore", "escapes", '{"semaphore":2,"max":2,"holders":["\\u003cx\\u003e\\u0026","\\u2028"]}\0\u00e9')
    seed("semaphore", "go-defaults", ' {"holders":[]}\0')


UPDATE_CONF = """\
GROUP=beta
SERVER=https://updates.example.com/repo/
REBOOT_STRATEGY=etcd-lock
LOCKSMITHD_ENDPOINT=http://10.0.0.1:2379, http://10.0.0.2:2379
LOCKSMITHD_GROUP=workers
LOCKSMITHD_REBOOT_WINDOW_START=Thu 23:00
LOCKSMITHD_REBOOT_WINDOW_LENGTH=1h30m
"""


def update_confs():
    seed("update_conf", "spec-defaults", UPDATE_CONF + "\0REBOOT_STRATEGY=best-effort\n\0\x00\x10\x5e\x69\x00\x00\x00\x00")
    seed("update_conf", "container-linux", "# comment\n\nGROUP='stable'\nREBOOT_STRATEGY=\"off\"\n"
         "REBOOT_WINDOW_START=23:00\nREBOOT_WINDOW_LENGTH=1.5h\nCHECK_INTERVAL=3600\nHEALTH_TIMEOUT=600\n"
         "\0ETCD_LOCK_TTL=60\nFLEETLOCK_URL=https://fleetlock.example.com/\nFLEETLOCK_GROUP=default\n\0")


def ovf():
    numbers = struct.pack("<QQQIIB", 38_000_128, 843_055_104, 36_700_160, 2, 1024, 0)
    seed("ovf", "minimal-vmware", b"minimal-1.0.0\0Minimal Linux\x001.0.0\x001.0.0 (alpha)\0minimal-1.0.0-disk1.vmdk\0" + numbers)
    numbers = struct.pack("<QQQIIB", 1 << 40, 1 << 41, 0, 64, 1 << 20, 1)
    # Control characters made the descriptor ill-formed (artifacts/ova/src/ovf.rs tests).
    seed("ovf", "regression-control-characters", b"a\x02b\tc\r\nd\0Minimal\x1bLinux\0" + b"1.0\xef\xbf\xbf\0" * 2 + b"x.vmdk\0" + numbers)
    seed("ovf", "virtualbox-escapes", "box & <co>\0\"Quoted\" 'name'\0\u00e9\0v\0box-disk1.vmdk\0".encode() + numbers)


def main():
    spec_and_lock()
    apt_lists()
    debs()
    cloud_configs()
    channels()
    gpt()
    boot_entries()
    semaphores()
    update_confs()
    ovf()


if __name__ == "__main__":
    main()
