//! `nodus`: one multi-call binary for the whole grid, like busybox.
//!
//! This file only parses the command line and dispatches to the crate that owns
//! each command; it holds no logic of its own. Exit codes are listed in
//! [`exit::Exit`].

mod devnet;
mod exit;

use std::process::ExitCode;

use clap::{CommandFactory as _, Parser, Subcommand};

use crate::exit::Exit;

/// Nodus: self-managing nodes for an edge cloud grid.
#[derive(Debug, Parser)]
#[command(
    name = "nodus",
    version,
    propagate_version = true,
    max_term_width = 100
)]
struct Cli {
    /// Machine-readable JSON output.
    #[arg(long, global = true)]
    json: bool,
    /// Log filter (tracing `EnvFilter` syntax), e.g. `info` or `nodus_wire=debug`.
    /// Logs go to standard error. Defaults to $RUST_LOG, then `warn`.
    #[arg(long, global = true, value_name = "FILTER")]
    log: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Keys: create, show, back up and restore.
    Id {
        #[command(subcommand)]
        cmd: nodus_identity::cli::Command,
    },
    /// The node agent and its hardware view.
    Agent {
        #[command(subcommand)]
        cmd: nodus_agent::cli::Command,
    },
    /// The terminal dashboard, local or remote (`--demo FILE` renders an inventory JSON).
    Console(nodus_console::cli::Args),
    /// One operator action on a node, for scripts (identify, reboot, poweroff, approve-disk).
    Node {
        #[command(subcommand)]
        cmd: nodus_console::node_cli::Command,
    },
    /// A grid on this machine: this host's agent in observe mode and the console on it.
    Devnet(devnet::Args),
    /// Network boot server: DHCP/proxyDHCP, TFTP, HTTP boot, signed images.
    Netboot {
        #[command(subcommand)]
        cmd: nodus_netboot::cli::Command,
    },
    /// Boot hardware profiles in QEMU and check the agent from outside.
    Qemu {
        #[command(subcommand)]
        cmd: nodus_qemu::cli::Command,
    },
    /// The proof-of-stake chain: validator keys, local test networks, running a validator.
    Validator {
        #[command(subcommand)]
        cmd: nodus_validator::cli::Command,
    },
    /// Transactions and queries against a running chain (`--endpoint ID@HOST:PORT`).
    Chain(nodus_validator::cli::chain::Args),
    /// Print a shell completion script.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

fn init_logging(filter: Option<&str>, json: bool) {
    let filter = filter
        .map(str::to_owned)
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| "warn".to_owned());
    let env_filter = tracing_subscriber::EnvFilter::try_new(&filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(env_filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Id { cmd } => cmd.run(cli.json)?,
        Command::Agent { cmd } => cmd.run(cli.json)?,
        Command::Netboot { cmd } => cmd.run(cli.json)?,
        Command::Qemu { cmd } => cmd.run(cli.json)?,
        Command::Console(args) => args.run()?,
        Command::Validator { cmd } => cmd.run(cli.json)?,
        Command::Chain(args) => args.run(cli.json)?,
        Command::Node { cmd } => cmd.run(cli.json)?,
        Command::Devnet(args) => args.run()?,
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "nodus", &mut std::io::stdout());
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    // As PID 1 (`/init` in the boot image) `nodus` is the node's init; it never
    // returns.
    #[cfg(target_os = "linux")]
    if std::process::id() == 1 {
        nodus_agent::boot::run();
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap prints help/version to stdout with success, usage errors to stderr.
            let _ = e.print();
            return if e.use_stderr() {
                Exit::Usage
            } else {
                Exit::Ok
            }
            .into();
        }
    };
    init_logging(cli.log.as_deref(), cli.json);
    match run(cli) {
        Ok(()) => Exit::Ok.into(),
        Err(err) => {
            // `{:#}` prints the whole cause chain: "Cannot access keystore x: No such file".
            eprintln!("error: {err:#}");
            Exit::of(&err).into()
        }
    }
}
