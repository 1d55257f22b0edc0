//! Convert a raw disk to a fixed VHD: `to_vhd RAW OUT SOURCE_DATE_EPOCH`.
//! Drives the writer for `bench/convert.sh`; image-builder is the real caller (it derives the
//! UUID from the spec; here it is fixed).

use std::path::Path;
use std::process::ExitCode;

use ami::vhd::{write_file, VhdOptions};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (raw, out, epoch) = match args.as_slice() {
        [raw, out, epoch] => match epoch.parse() {
            Ok(e) => (Path::new(raw), Path::new(out), e),
            Err(_) => return usage(),
        },
        _ => return usage(),
    };
    let opts = VhdOptions::new(epoch, *b"example-vhd-uuid");
    match write_file(raw, out, &opts) {
        Ok(w) => {
            println!("{} bytes, disk {} bytes", w.file_size, w.disk_size);
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

fn usage() -> ExitCode {
    eprintln!("usage: to_vhd RAW OUT SOURCE_DATE_EPOCH");
    ExitCode::from(2)
}
