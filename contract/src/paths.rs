//! Files one program writes and another reads on the machine, relative to the root of the
//! running system (no leading `/`, so callers can root them anywhere, e.g. a test's tempdir).

/// The OS's identity ([`crate::os_release`]), written by the builder.
pub const OS_RELEASE: &str = "usr/lib/os-release";
/// Container Linux's release file (`COREOS_RELEASE_VERSION`, `COREOS_RELEASE_BOARD`), written by
/// the builder for the scripts and tools that read it ([`crate::os_release`]).
pub const COREOS_RELEASE: &str = "usr/share/coreos/release";
/// Container Linux's lsb-release (`DISTRIB_*`), written by the builder; `/etc/lsb-release`
/// links to it.
pub const LSB_RELEASE: &str = "usr/share/coreos/lsb-release";
/// The update engine's defaults ([`crate::update_conf`]), written by the builder.
pub const UPDATE_CONF_DEFAULTS: &str = "usr/share/update-engine/update.conf";
/// Container Linux's place for a machine's update settings, written by its operator or a
/// cloud-config's `write_files`: read over [`UPDATE_CONF_DEFAULTS`] and under [`UPDATE_CONF`].
pub const COREOS_UPDATE_CONF: &str = "etc/coreos/update.conf";
/// The machine's update settings, written by the config agent (cloud-config `coreos.update`,
/// `coreos.locksmith`) or an operator; its keys win over [`COREOS_UPDATE_CONF`]'s.
pub const UPDATE_CONF: &str = "etc/update-engine/update.conf";
/// The channel's root keys baked into the image by the builder (`update.root_keys`).
pub const ROOT_KEYS: &str = "usr/share/update-engine/root.json";
/// The machine's root keys, for an image built without them.
pub const MACHINE_ROOT_KEYS: &str = "etc/update-engine/root.json";
/// On an installed ROOT, the cloud-config `coreos-install -c` copied there (mode 0600), read
/// by the config agent's `install` source on every boot of that machine.
pub const INSTALL_USER_DATA: &str = "var/lib/coreos-install/user_data";
/// On an installed ROOT, the OEM id `coreos-install -o` was given (one line), for the operator
/// and the tools that want to know which platform the disk was installed for.
pub const INSTALL_OEM: &str = "var/lib/coreos-install/oem";
/// The slot `/init` mounted as /usr (`USR-A`/`USR-B`), read by the update engine.
pub const BOOT_SLOT: &str = "run/boot-slot";
/// Written by `/init` instead of [`BOOT_SLOT`] when /usr runs from RAM (a network boot).
pub const BOOT_LIVE: &str = "run/boot-live";
/// In the initramfs: the kernel modules `/init` loads, in order, relative to
/// `/lib/modules/<release>/`. Written by the builder.
pub const INITRD_MODULES: &str = "etc/initrd-modules";
/// In the initramfs, in `/lib/modules/<release>/`: `modules.alias` lines of the kernel's disk
/// controller drivers the initramfs does not carry, so that a boot that finds no disk can
/// name the driver it lacked. Written by the builder.
pub const INITRD_STORAGE_ALIASES: &str = "modules.alias.storage";
/// Where `/init` mounts the disk's OEM partition (read-only), with the platform's
/// `cloud-config.yml` that `oem-cloudinit.service` applies.
pub const OEM_MOUNT: &str = "oem";
/// The OEM partition's cloud-config, relative to the partition's root.
pub const OEM_CLOUD_CONFIG: &str = "cloud-config.yml";
