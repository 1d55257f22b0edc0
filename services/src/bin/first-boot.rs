//! `first-boot`: parses the command line and makes one call into
//! [`services::firstboot::cli::run`], whose value is the exit status.

fn main() {
    let cli = match services::firstboot::cli::parse(std::env::args_os().collect()) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    std::process::exit(services::firstboot::cli::run(cli));
}
