//! `first-boot`: parses the command line and makes one call into
//! [`first_boot::cli::run`], whose value is the exit status.

fn main() {
    let cli = match first_boot::cli::parse(std::env::args_os().collect()) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    std::process::exit(first_boot::cli::run(cli));
}
