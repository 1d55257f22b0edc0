//! `coreos-cloudinit`: parses the command line and makes one call into
//! [`cloudinit::cli::run`], whose value is the exit status.

fn main() {
    let cli = match cloudinit::cli::parse(std::env::args_os().collect()) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    std::process::exit(cloudinit::cli::run(cli));
}
