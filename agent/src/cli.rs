//! Command-line surface of this crate, dispatched from the `nodus` binary.

/// Subcommands of `nodus agent`. Filled by the issue that builds this crate.
#[derive(Debug, clap::Subcommand)]
pub enum Command {}

impl Command {
    /// Runs the chosen subcommand.
    pub fn run(self) -> Result<(), Error> {
        match self {}
    }
}

/// Errors from `nodus agent` subcommands.
#[derive(Debug, thiserror::Error)]
pub enum Error {}
