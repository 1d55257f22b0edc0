//! The initramfs `/init` (PID 1 until it execs the OS init). All logic is in
//! [`services::initrd`]; this only routes every failure, panics included, to a clean halt.

fn main() {
    services::initrd::install_panic_hook();
    let fatal = match services::initrd::run() {
        Ok(never) => match never {},
        Err(fatal) => fatal,
    };
    services::initrd::halt(&fatal)
}
