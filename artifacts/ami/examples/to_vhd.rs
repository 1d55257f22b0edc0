//! Convert a raw disk to a fixed VHD: `to_vhd RAW OUT SOURCE_DATE_EPOCH`.
//! Drives the writer for `bench/convert.sh`; image-builder is the real caller (it derives the
//! UUID from the spec; here it is fixed).

use std::process::ExitCode;

use ami::vhd::{write_file, VhdOptions};
use diskfmt_testing::{converter_args, finish};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "to_vhd RAW OUT SOURCE_DATE_EPOCH";
    let Some((raw, out)) = converter_args(&args, usage, 1) else {
        return ExitCode::from(2);
    };
    let Some(epoch) = args.get(2).and_then(|e| e.parse().ok()) else {
        eprintln!("usage: {usage}");
        return ExitCode::from(2);
    };
    let opts = VhdOptions::new(epoch, *b"example-vhd-uuid");
    finish(write_file(&raw, &out, &opts), |w| {
        format!("{} bytes, disk {} bytes", w.file_size, w.disk_size)
    })
}
