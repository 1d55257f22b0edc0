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
            let mut last = e.to_string();
            eprintln!("error: {last}");
            for cause in e.chain().skip(1) {
                let text = cause.to_string();
                // Library errors often repeat their source's text; print each cause once.
                if !last.contains(&text) {
                    eprintln!("  caused by: {text}");
                }
                last = text;
            }
            1
        }
    };
    std::process::exit(code);
}
