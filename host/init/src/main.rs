//! The initramfs `/init` (PID 1 until it execs the OS init). All logic is in the [`init`]
//! library; this only routes every failure, panics included, to a clean halt.

fn main() {
    init::install_panic_hook();
    let fatal = match init::run() {
        Ok(never) => match never {},
        Err(fatal) => fatal,
    };
    init::halt(&fatal)
}
