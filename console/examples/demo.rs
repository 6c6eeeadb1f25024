//! `nodus console` without the multi-call binary: the tmux end-to-end test drives
//! this (`cargo build -p nodus-console --example demo`, then
//! `target/debug/examples/demo --demo FILE`), because integration tests of this
//! crate cannot name the root package's `nodus` binary.
#![allow(missing_docs)]

use std::process::ExitCode;

use clap::Parser;

#[derive(Parser)]
#[command(name = "nodus-console-demo")]
struct Cli {
    #[command(flatten)]
    args: nodus_console::cli::Args,
}

fn main() -> ExitCode {
    match Cli::parse().args.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
