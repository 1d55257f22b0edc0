//! initramfs /init (placeholder until implemented)
fn main() {}
