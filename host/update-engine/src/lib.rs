//! The on-host update engine (DESIGN.md "Update channel repository", "Boot and slots"; issue 3):
//! checks a signed channel, writes the USR slot that did not boot, stages its boot entry with a
//! boot counter (SPECS.md S4), reboots per `REBOOT_STRATEGY`, blesses a healthy slot after boot
//! and notices when the loader rolled back.
//!
//! Modules, upstream first (each uses only those above it):
//!
//! - [`lock`]: the reboot lock: locksmith's etcd semaphore, FleetLock client and server, reboot
//!   windows, and the lock as a machine holds it ([`lock::reboot_lock`]);
//! - [`config`]: `update.conf` (its syntax and keys are `contract::update_conf`'s) and the root
//!   keys; [`Paths`](config::Paths) roots every file;
//! - [`status`]: the state machine and the status document; [`state`]: what persists;
//!   [`request`]: what the command line asks of the running daemon;
//! - [`http`]: the channel client with the workspace's retry policy and resumable payloads;
//! - [`host`]: the machine behind the [`Host`](host::Host) trait; [`policy`]: pure decisions
//!   (jitter, kernel command line);
//! - [`engine`]: check and apply; [`reboot`]: after staging, `REBOOT_STRATEGY` with reboot
//!   windows and locks; [`lifecycle`]: after boot, rollback, the daemon;
//! - [`install`]: `coreos-install`, a release's disk image onto a disk;
//! - [`cli`]: the command lines (`update-engine`, `update_engine_client`, `locksmithctl`,
//!   `coreos-install`).

pub mod cli;
pub mod config;
pub mod engine;
pub mod host;
pub mod http;
pub mod install;
pub mod lifecycle;
pub mod lock;
pub mod policy;
pub mod reboot;
pub mod request;
pub mod state;
pub mod status;

pub use config::{Config, Paths, RebootStrategy};
pub use engine::{CheckOutcome, Engine, EngineError, UpdateOutcome};
pub use host::{FileHost, Host, RealHost, SlotDevice};
pub use status::{Operation, Phase, Status};
