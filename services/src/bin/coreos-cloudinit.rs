//! `coreos-cloudinit`: parses the command line and makes one call into
//! [`services::agent::cli::run`], whose value is the exit status.

fn main() {
    let cli = match services::agent::cli::parse(std::env::args_os().collect()) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    std::process::exit(services::agent::cli::run(cli));
}
