//! `nodus console`: the command line of the dashboard.

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::str::FromStr;

use ratatui::Terminal;
use ratatui::backend::TestBackend;

use crate::app::App;
use crate::model::Inventory;
use crate::term::{self, LoopConfig};
use crate::theme::{Capabilities, Theme};
use crate::{demo, view};

/// A remote node: `<NodeId>@host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The node id text (`node1…`), checked against the peer's key on connect.
    pub node: String,
    /// `host:port` of its QUIC endpoint.
    pub addr: String,
}

/// A `--connect` value that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TargetError {
    /// No `@` between node id and address.
    #[error("Expected NODE@HOST:PORT")]
    Shape,
    /// The node part is not a `node1…` id.
    #[error("Node id must start with \"node1\"")]
    NodeId,
    /// The address has no port.
    #[error("Address must be HOST:PORT")]
    Addr,
}

impl FromStr for Target {
    type Err = TargetError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (node, addr) = s.split_once('@').ok_or(TargetError::Shape)?;
        if !node.starts_with("node1") || node.len() <= 5 {
            return Err(TargetError::NodeId);
        }
        let (host, port) = addr.rsplit_once(':').ok_or(TargetError::Addr)?;
        if host.is_empty() || port.parse::<u16>().is_err() {
            return Err(TargetError::Addr);
        }
        Ok(Target {
            node: node.to_owned(),
            addr: addr.to_owned(),
        })
    }
}

/// Errors of `nodus console`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The demo file could not be read.
    #[error("Cannot read {path}")]
    ReadDemo {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The demo file is not inventory JSON.
    #[error("{path} is not inventory JSON")]
    ParseDemo {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// The terminal failed.
    #[error("Terminal I/O failed")]
    Terminal(#[source] std::io::Error),
    /// No data source is implemented for this invocation yet.
    #[error("Live data sources (Unix socket, QUIC) are not built yet; use --demo FILE")]
    NoDataSource,
}

/// `nodus console [--connect NODE@HOST:PORT ...] [--key KEYSTORE] [--on-node] [--demo FILE]`
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// A remote node over QUIC; repeat for one tab per node. Without it, the
    /// console uses the local agent's Unix socket.
    #[arg(long = "connect", value_name = "NODE@HOST:PORT")]
    pub connect: Vec<Target>,
    /// The keystore whose key authenticates this console to remote nodes.
    #[arg(long, value_name = "KEYSTORE")]
    pub key: Option<PathBuf>,
    /// The console on the node's own screen: it cannot be quit.
    #[arg(long)]
    pub on_node: bool,
    /// Render a model built from an inventory JSON file (`nodus agent inventory
    /// --json`) with fixed telemetry and events, without an agent.
    #[arg(
        long,
        alias = "from-json",
        value_name = "FILE",
        conflicts_with = "connect"
    )]
    pub demo: Option<PathBuf>,
}

impl Args {
    /// Runs the console. With no terminal on stdout, prints one 120×40 frame as
    /// text instead (for scripts and logs).
    pub fn run(self) -> Result<(), Error> {
        let Some(path) = &self.demo else {
            return Err(Error::NoDataSource);
        };
        let text = std::fs::read_to_string(path).map_err(|source| Error::ReadDemo {
            path: path.clone(),
            source,
        })?;
        let inventory = Inventory::from_json(&text).map_err(|source| Error::ParseDemo {
            path: path.clone(),
            source,
        })?;
        let app = App::new(demo::model(inventory), self.on_node);
        let theme = Theme::new(Capabilities::from_env());
        if !std::io::stdout().is_terminal() {
            println!("{}", render_text(&app, &theme, 120, 40));
            return Ok(());
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(Error::Terminal)?;
        // The demo has no data source: keep the sender so the channel stays open.
        let (_tx, rx) = tokio::sync::mpsc::channel(64);
        runtime
            .block_on(term::run(app, theme, rx, LoopConfig { wall_clock: false }))
            .map_err(Error::Terminal)
    }
}

/// One frame as plain text, `width`×`height`.
pub fn render_text(app: &App, theme: &Theme, width: u16, height: u16) -> String {
    let mut terminal = match Terminal::new(TestBackend::new(width, height)) {
        Ok(t) => t,
        Err(e) => match e {},
    };
    if let Err(e) = terminal.draw(|f| view::render(app, theme, f)) {
        match e {}
    }
    let buf = terminal.backend().buffer();
    let mut out = String::new();
    for y in 0..buf.area.height {
        let mut line = String::new();
        for x in 0..buf.area.width {
            line.push_str(buf[(x, y)].symbol());
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    #[test]
    fn parses_every_flag() {
        let cli = Cli::try_parse_from([
            "console",
            "--connect",
            "node1abc@10.0.0.2:7443",
            "--connect",
            "node1def@[::1]:7443",
            "--key",
            "k.json",
            "--on-node",
        ])
        .unwrap();
        assert_eq!(cli.args.connect.len(), 2);
        assert_eq!(cli.args.connect[1].addr, "[::1]:7443");
        assert!(cli.args.on_node);
        let cli = Cli::try_parse_from(["console", "--from-json", "inv.json"]).unwrap();
        assert_eq!(cli.args.demo, Some(PathBuf::from("inv.json")));
        assert!(Cli::try_parse_from(["console", "--connect", "bob@h:1"]).is_err());
        assert!(Cli::try_parse_from(["console", "--connect", "node1a@host"]).is_err());
        assert!(
            Cli::try_parse_from(["console", "--demo", "x", "--connect", "node1a@h:1"]).is_err()
        );
    }
}
