//! Convert a raw disk to qcow2: `to_qcow2 RAW OUT [--compress] [THREADS]`.
//! Drives the writer for `bench/convert.sh`; image-builder is the real caller.

use std::process::ExitCode;

use diskfmt_testing::{converter_args, finish};
use vagrant::qcow2::{write_file, Qcow2Options};

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut opts = Qcow2Options::default();
    if let Some(i) = args.iter().position(|a| a == "--compress") {
        args.remove(i);
        opts.compress = true;
    }
    let usage = "to_qcow2 RAW OUT [--compress] [THREADS]";
    let Some((raw, out)) = converter_args(&args, usage, 1) else {
        return ExitCode::from(2);
    };
    opts.threads = args.get(2).and_then(|t| t.parse().ok());
    finish(write_file(&raw, &out, &opts), |w| {
        format!("{} bytes, {} clusters", w.file_size, w.clusters)
    })
}
