//! The build's inputs: the lockfile that pins every package ([`lock`]), computing it from a
//! spec and a package source ([`resolve`], `image-builder lock`), and the sources packages
//! come from, verified against the lock before use ([`source`]: a pool directory or an HTTP apt
//! repository; `image-builder fetch` fills a pool).

pub mod lock;
pub mod resolve;
pub mod source;

pub use lock::{LockedPackage, Lockfile};
pub use source::InputSource;
