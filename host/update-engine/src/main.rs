//! `update-engine` (also `update_engine_client` and `locksmithctl`): parses the command line and
//! makes one call into the library; errors print as `error: …` / `  caused by: …`.

fn main() {
    let cli = match update_engine::cli::parse(std::env::args_os().collect()) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let code = match update_engine::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprint!("{}", util::error::report(e.as_ref()));
            1
        }
    };
    std::process::exit(code);
}
