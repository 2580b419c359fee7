//! The `tether` binary: command line, configuration, daemon composition, admin API, demo.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = tether::cli::Cli::parse();
    match tether::commands::execute(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("tether: {e:#}");
            ExitCode::FAILURE
        }
    }
}
