//! Small pieces every crate of the workspace needs, written once:
//!
//! - [`fs`]: files that appear whole or not at all ([`fs::write_atomic`], [`fs::AtomicFile`]);
//! - [`retry`]: the one HTTP retry policy (which failures, what backoff, when to give up);
//! - [`base64`]: standard base64 encoding;
//! - [`time`]: seconds since the Unix epoch as a UTC date and time (no clock read);
//! - [`error`]: an error and its causes as one line, or as the `error:` / `caused by:` report
//!   every binary prints.
//!
//! Nothing here knows about images, channels or machines.

pub mod base64;
pub mod error;
pub mod fs;
pub mod retry;
pub mod time;
