//! The host plumbing the programs on a machine share (`/init`, `first-boot`, `coreos-cloudinit`
//! and `update-engine`), each module written once:
//!
//! - [`sys`]: thin, safe wrappers over the syscalls `std` does not offer (mount, reboot,
//!   finit_module, loop devices, ...) and [`sys::errno_text`] for messages;
//! - [`blockdev`]: `/sys/class/block/*/uevent` records, probing them, and matching them against
//!   the `usr=`/`root=` arguments of [`contract::cmdline`];
//! - [`gpt`]: reading a disk's GPT, because the 6.1 kernel's uevent has `PARTNAME` but no
//!   `PARTUUID`;
//! - [`vmware`]: VMware's guest RPC over the backdoor port (`guestinfo.*` without VMware Tools).

pub mod blockdev;
pub mod gpt;
pub mod sys;
pub mod vmware;
