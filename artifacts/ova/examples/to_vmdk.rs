//! Convert a raw disk to a streamOptimized VMDK: `to_vmdk RAW OUT [THREADS]`.
//! Drives the writer for `bench/convert.sh`; image-builder is the real caller.

use std::path::Path;
use std::process::ExitCode;

use ova::vmdk::{write_file, VmdkOptions};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (raw, out) = match args.as_slice() {
        [raw, out] | [raw, out, _] => (Path::new(raw), Path::new(out)),
        _ => {
            eprintln!("usage: to_vmdk RAW OUT [THREADS]");
            return ExitCode::from(2);
        }
    };
    let name = out.file_name().map(|n| n.to_string_lossy().into_owned());
    let mut opts = VmdkOptions::new(name.unwrap_or_else(|| "disk.vmdk".into()));
    opts.threads = args.get(2).and_then(|t| t.parse().ok());
    match write_file(raw, out, &opts) {
        Ok(w) => {
            println!("{} bytes, cid {:08x}", w.file_size, w.cid);
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
