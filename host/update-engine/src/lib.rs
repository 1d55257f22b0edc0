//! The on-host update engine (DESIGN.md "Update channel repository", "Boot and slots"; issue 3):
//! checks a signed channel, writes the USR slot that did not boot, stages its boot entry with a
//! boot counter (SPECS.md S4), reboots per `REBOOT_STRATEGY`, blesses a healthy slot after boot
//! and notices when the loader rolled back.
//!
//! - [`config`]: `update.conf` and the root keys; [`Paths`](config::Paths) roots every file.
//! - [`host`]: the machine behind the [`Host`](host::Host) trait.
//! - [`http`]: the channel client with its retry policy and resumable payload streaming.
//! - [`engine`]: check and apply; [`lifecycle`]: after boot, rollback, daemon.
//! - [`status`]: the state machine and the status document; [`state`]: what persists.
//! - [`policy`]: pure decisions (jitter, kernel command line); [`cli`]: the command line.
//! - [`reboot`]: after staging, `REBOOT_STRATEGY` with reboot windows and locks.
//! - [`lock`]: the reboot lock: locksmith's etcd semaphore, FleetLock client and server, reboot
//!   windows.

pub mod cli;
pub mod config;
pub mod engine;
pub mod host;
pub mod http;
pub mod lifecycle;
pub mod lock;
pub mod policy;
pub mod reboot;
pub mod state;
pub mod status;

pub use config::{Config, Paths, RebootStrategy};
pub use engine::{CheckOutcome, Engine, EngineError, UpdateOutcome};
pub use host::{FileHost, Host, RealHost, SlotDevice};
pub use status::{Operation, Phase, Status};
