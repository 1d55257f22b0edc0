//! `image-builder`: parses the command line and makes one call per subcommand
//! ([`image_builder::commands`]); errors print as `error: …` / `  caused by: …`.

use std::process::ExitCode;

use clap::Parser;
use image_builder::cli::{Cli, Cmd};
use image_builder::commands;

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Cmd::Lock(a) => commands::lock(a),
        Cmd::Fetch(a) => commands::fetch(a),
        Cmd::Build(a) => commands::build(a),
        Cmd::Inspect(a) => commands::inspect(a),
        Cmd::Keygen(a) => commands::keygen(a),
        Cmd::InitRepo(a) => commands::init_repo(a),
        Cmd::Payload(a) => commands::payload(a),
        Cmd::Publish(a) => commands::publish(a),
        Cmd::Promote(a) => commands::promote(a),
        Cmd::VagrantCatalog(a) => commands::vagrant_catalog(a),
        Cmd::AmiUpload(a) => commands::ami_upload(a),
        Cmd::Serve(a) => commands::serve(a),
        Cmd::ValidateConfig(a) => commands::validate_config(a),
        Cmd::Run(a) => commands::run(a),
    };
    result.unwrap_or_else(|e| {
        eprint!("{}", util::error::report(e.as_ref()));
        ExitCode::FAILURE
    })
}
