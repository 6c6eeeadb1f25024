//! Command-line surface of `nodus agent`, dispatched from the `nodus` binary.

use std::path::PathBuf;

/// Subcommands of `nodus agent`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Print this machine's hardware inventory.
    Inventory {
        /// Read sysfs/procfs under DIR instead of `/` (a captured machine).
        #[arg(long, value_name = "DIR")]
        root: Option<PathBuf>,
    },
}

/// Errors from `nodus agent` subcommands.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The hardware root could not be opened.
    #[error(transparent)]
    Root(#[from] crate::hal::RootError),
    /// Output could not be written.
    #[error("Cannot write output")]
    Output(#[source] serde_json::Error),
}

impl Command {
    /// Runs the chosen subcommand. `json` selects machine-readable output.
    pub fn run(self, json: bool) -> Result<(), Error> {
        match self {
            Command::Inventory { root } => {
                let root = match root {
                    Some(dir) => crate::hal::SysRoot::at(dir)?,
                    None => crate::hal::SysRoot::host(),
                };
                let inv = crate::inventory::collect(&root);
                let _ = json;
                let text = serde_json::to_string_pretty(&inv).map_err(Error::Output)?;
                println!("{text}");
                Ok(())
            }
        }
    }
}
