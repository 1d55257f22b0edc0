//! What the image builder writes and the machines read back. Each module is one contract with
//! one owner, so the two sides cannot drift apart:
//!
//! - [`slots`]: the USR slots and their Type #1 boot entries with boot counting (SPECS.md S4):
//!   the builder writes the first entry, the update engine stages, blesses and detects rollbacks.

pub mod slots;
