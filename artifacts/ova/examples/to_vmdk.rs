//! Convert a raw disk to a streamOptimized VMDK: `to_vmdk RAW OUT [THREADS]`.
//! Drives the writer for `bench/convert.sh`; image-builder is the real caller.

use std::process::ExitCode;

use diskfmt_testing::{converter_args, finish};
use ova::vmdk::{write_file, VmdkOptions};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((raw, out)) = converter_args(&args, "to_vmdk RAW OUT [THREADS]", 1) else {
        return ExitCode::from(2);
    };
    let name = out.file_name().map(|n| n.to_string_lossy().into_owned());
    let mut opts = VmdkOptions::new(name.unwrap_or_else(|| "disk.vmdk".into()));
    opts.threads = args.get(2).and_then(|t| t.parse().ok());
    finish(write_file(&raw, &out, &opts), |w| {
        format!("{} bytes, cid {:08x}", w.file_size, w.cid)
    })
}
