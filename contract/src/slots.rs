//! USR slots and their boot entries, shared by the image builder (which writes the first entry)
//! and the update engine (which stages, blesses and detects rollbacks).

pub mod entry;
pub mod grub;
pub mod table;

pub use entry::{
    parse_file_name, BootCounter, BootEntry, Slot, BOOT_TRIES, ENTRIES_DIR, USR_A, USR_B,
};
pub use table::{parse_entry, version_key, EntryInfo, SlotTable};
