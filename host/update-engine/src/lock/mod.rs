//! The reboot lock (DESIGN.md "Reboot coordination"; SPECS.md S1, S2): how machines agree that
//! only a few of them reboot at a time, and when.
//!
//! - [`window`]: locksmith's reboot windows, pure arithmetic on a clock passed in (defined in
//!   `contract::update_conf`, where the validators check the same values).
//! - [`semaphore`]: locksmith's semaphore value and its pure operations.
//! - [`etcd`]: that semaphore in etcd v3, compare-and-swap, blocking API ([`EtcdLock`]); optional
//!   holder leases.
//! - [`fleetlock`]: the FleetLock HTTP client ([`FleetLockClient`]).
//! - [`server`]: a FleetLock server on the etcd semaphore (`update-engine lock-server`).
//! - [`reboot_lock`]: the lock as this machine takes it before a reboot: both locks behind one
//!   trait, and the record of its hold the engine keeps in its state.
//!
//! Their command lines (`update-engine lock …` / `locksmithctl`, `lock-server`) are in
//! `crate::cli::locksmithctl`.

pub mod etcd;
pub mod fleetlock;
pub mod reboot_lock;
pub mod semaphore;
pub mod server;
pub use contract::update_conf::window;

pub use etcd::{EtcdConfig, EtcdError, EtcdLock, EtcdSettings, Locked};
pub use fleetlock::{FleetLockClient, FleetLockError};
pub use semaphore::{Semaphore, SemaphoreError};
pub use window::{RebootWindow, WindowError};
