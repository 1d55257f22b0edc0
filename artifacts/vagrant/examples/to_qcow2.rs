//! Convert a raw disk to qcow2: `to_qcow2 RAW OUT [--compress] [THREADS]`.
//! Drives the writer for `bench/convert.sh`; image-builder is the real caller.

use std::path::Path;
use std::process::ExitCode;

use vagrant::qcow2::{write_file, Qcow2Options};

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut opts = Qcow2Options::default();
    if let Some(i) = args.iter().position(|a| a == "--compress") {
        args.remove(i);
        opts.compress = true;
    }
    let (raw, out) = match args.as_slice() {
        [raw, out] | [raw, out, _] => (Path::new(raw), Path::new(out)),
        _ => {
            eprintln!("usage: to_qcow2 RAW OUT [--compress] [THREADS]");
            return ExitCode::from(2);
        }
    };
    opts.threads = args.get(2).and_then(|t| t.parse().ok());
    match write_file(raw, out, &opts) {
        Ok(w) => {
            println!("{} bytes, {} clusters", w.file_size, w.clusters);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                eprintln!("  caused by: {s}");
                source = s.source();
            }
            ExitCode::FAILURE
        }
    }
}
