//! `nodus console`: the command line of the dashboard.

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::str::FromStr;

use ratatui::Terminal;
use ratatui::backend::TestBackend;

use std::sync::Arc;

use nodus_wire::Client;
use nodus_wire::quic::Backoff;

use crate::app::{App, LoadedApproval};
use crate::model::{Inventory, Model, Update};
use crate::source::translate::Translator;
use crate::source::{self, Conversation, DEFAULT_SOCKET, Endpoint, Remote, SourceError};
use crate::term::{self, LoopConfig};
use crate::theme::{Capabilities, Theme};
use crate::view::format;
use crate::{demo, report, view};

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
    /// `--connect` without `--key`.
    #[error("--connect needs --key KEYSTORE (the key this console proves itself with)")]
    NoKey,
    /// The keystore could not be opened.
    #[error(transparent)]
    Keystore(#[from] nodus_identity::cli::Error),
    /// The grant file could not be read.
    #[error("Cannot read grant {path}")]
    ReadGrant {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The grant file is not a grant.
    #[error("{path} is not a grant file: {reason}")]
    BadGrant {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A disk approval file could not be read.
    #[error("Cannot read disk approval {path}")]
    ReadApproval {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A disk approval file is damaged or is not a disk approval.
    #[error("{path} is not a usable disk approval")]
    BadApproval {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: nodus_identity::grant::DiskApprovalFileError,
    },
    /// The QUIC client could not start.
    #[error("Cannot start the QUIC client")]
    Client(#[source] nodus_wire::ConnectError),
    /// The node id in `--connect` is not a valid id.
    #[error("Bad node id {0:?}")]
    NodeId(String),
    /// The data source failed (no terminal: the snapshot could not be read).
    #[error(transparent)]
    Source(#[from] SourceError),
}

/// `nodus console [--connect NODE@HOST:PORT ...] [--key KEYSTORE] [--grant FILE]
/// [--approval FILE ...] [--socket PATH] [--on-node] [--demo FILE]`
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// A remote node over QUIC; repeat for one tab per node. Without it, the
    /// console uses the local agent's Unix socket.
    #[arg(long = "connect", value_name = "NODE@HOST:PORT")]
    pub connect: Vec<Target>,
    /// The keystore whose key authenticates this console to remote nodes.
    #[arg(long, value_name = "KEYSTORE")]
    pub key: Option<PathBuf>,
    /// An owner-signed grant for this console's key (`nodus id grant … --out
    /// FILE`), presented to each node before connecting.
    #[arg(long, value_name = "FILE", requires = "connect")]
    pub grant: Option<PathBuf>,
    /// An owner-signed disk approval (`nodus id approve-disk … --out FILE`);
    /// repeat for several disks. Approving a disk (`a` on the Hardware screen)
    /// attaches the one for that disk's serial and node.
    #[arg(long = "approval", value_name = "FILE")]
    pub approvals: Vec<PathBuf>,
    /// The local agent's Unix socket (without `--connect`).
    #[arg(long, value_name = "PATH", default_value = DEFAULT_SOCKET, conflicts_with = "connect")]
    pub socket: PathBuf,
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
    /// Where the keystore passphrase comes from.
    #[command(flatten)]
    pub pass: nodus_identity::cli::PassphraseArgs,
}

impl Args {
    /// Runs the console. With no terminal on stdout, prints each node's state as
    /// text instead (for scripts and logs).
    pub fn run(self) -> Result<(), Error> {
        if let Some(path) = &self.demo {
            return self.run_demo(path);
        }
        let approvals = self
            .approvals
            .iter()
            .map(|p| read_approval(p))
            .collect::<Result<Vec<_>, _>>()?;
        let runtime = runtime()?;
        runtime.block_on(async {
            let endpoints = self.endpoints()?;
            if !std::io::stdout().is_terminal() {
                for e in &endpoints {
                    let model = snapshot(e).await?;
                    println!("{}", report::text(&model));
                }
                return Ok(());
            }
            interactive_with(endpoints, self.on_node, approvals).await
        })
    }

    /// The data sources the flags name. Must run inside a tokio runtime (the
    /// QUIC client binds its socket).
    pub fn endpoints(&self) -> Result<Vec<Endpoint>, Error> {
        if self.connect.is_empty() {
            return Ok(vec![Endpoint::Local {
                socket: self.socket.clone(),
            }]);
        }
        let key_path = self.key.as_ref().ok_or(Error::NoKey)?;
        let key = nodus_identity::cli::open_keystore(key_path, &self.pass)?;
        let client = Client::new(&key).map_err(Error::Client)?;
        let grant = match &self.grant {
            Some(path) => Some(Arc::new(read_grant(path)?)),
            None => None,
        };
        self.connect
            .iter()
            .map(|t| {
                Ok(Endpoint::Remote(Box::new(Remote {
                    node: t.node.parse().map_err(|_| Error::NodeId(t.node.clone()))?,
                    addr: t.addr.clone(),
                    client: client.clone(),
                    grant: grant.clone(),
                })))
            })
            .collect()
    }

    fn run_demo(&self, path: &std::path::Path) -> Result<(), Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::ReadDemo {
            path: path.to_owned(),
            source,
        })?;
        let inventory = Inventory::from_json(&text).map_err(|source| Error::ParseDemo {
            path: path.to_owned(),
            source,
        })?;
        let app = App::new(demo::model(inventory), self.on_node);
        let theme = Theme::new(Capabilities::from_env());
        if !std::io::stdout().is_terminal() {
            println!("{}", render_text(&app, &theme, 120, 40));
            return Ok(());
        }
        // The demo has no data source: keep the sender so the channel stays open.
        let (_tx, rx) = tokio::sync::mpsc::channel(64);
        runtime()?
            .block_on(term::run(
                app,
                theme,
                rx,
                Vec::new(),
                LoopConfig { wall_clock: false },
            ))
            .map_err(Error::Terminal)
    }
}

/// Reads a grant file (`nodus id grant … --out FILE`) into the bytes a
/// [`nodus_wire::console::GrantOffer`] carries: the postcard encoding of the
/// signed grant.
pub fn read_grant(path: &std::path::Path) -> Result<Vec<u8>, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::ReadGrant {
        path: path.to_owned(),
        source,
    })?;
    let bad = |reason: String| Error::BadGrant {
        path: path.to_owned(),
        reason,
    };
    let grant = nodus_identity::grant::from_file_text(&text).map_err(|e| bad(e.to_string()))?;
    grant.to_bytes().map_err(|e| bad(e.to_string()))
}

/// Reads a disk approval file (`nodus id approve-disk … --out FILE`). Its
/// purpose and signature are checked here; the node checks the rest.
pub fn read_approval(path: &std::path::Path) -> Result<LoadedApproval, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::ReadApproval {
        path: path.to_owned(),
        source,
    })?;
    let bad = |source| Error::BadApproval {
        path: path.to_owned(),
        source,
    };
    let signed = nodus_identity::grant::disk_approval_from_file_text(&text).map_err(bad)?;
    let bytes = signed
        .to_bytes()
        .map_err(|e| bad(nodus_identity::grant::DiskApprovalFileError::Decode(e)))?;
    let s = signed.statement;
    Ok(LoadedApproval {
        node: s.payload.node.to_string(),
        serial: s.payload.serial,
        expires_at: s.expires_at,
        bytes,
    })
}

fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(Error::Terminal)
}

/// Runs the dashboard on this terminal over `endpoints`, one tab each, until
/// the operator quits. Must run inside a tokio runtime.
pub async fn interactive(endpoints: Vec<Endpoint>, on_node: bool) -> Result<(), Error> {
    interactive_with(endpoints, on_node, Vec::new()).await
}

/// [`interactive`], with disk approvals to attach when their disk is approved.
pub async fn interactive_with(
    endpoints: Vec<Endpoint>,
    on_node: bool,
    approvals: Vec<LoadedApproval>,
) -> Result<(), Error> {
    let names = endpoints
        .iter()
        .map(|e| match e {
            Endpoint::Local { .. } => "local agent".to_owned(),
            Endpoint::Remote(r) => format!("{}@{}", format::short_id(&r.node.to_string()), r.addr),
        })
        .collect();
    let mut app = App::with_tabs(names, on_node);
    app.approvals = approvals;
    let theme = Theme::new(Capabilities::from_env());
    let (tx, rx) = tokio::sync::mpsc::channel(1_024);
    let mut requests = Vec::new();
    let mut tasks = Vec::new();
    for (tab, endpoint) in endpoints.into_iter().enumerate() {
        let (req_tx, req_rx) = tokio::sync::mpsc::channel(8);
        requests.push(req_tx);
        tasks.push(tokio::spawn(source::run(
            endpoint,
            tab,
            tx.clone(),
            req_rx,
            Backoff::default(),
        )));
    }
    drop(tx);
    let result = term::run(app, theme, rx, requests, LoopConfig { wall_clock: true }).await;
    for t in tasks {
        t.abort();
    }
    result.map_err(Error::Terminal)
}

/// Connects once and returns the model built from the node's first complete
/// snapshot. Must run inside a tokio runtime.
pub async fn snapshot(endpoint: &Endpoint) -> Result<Model, SourceError> {
    let mut conv = Conversation::open(endpoint, source::hello(0)).await?;
    let mut translator = Translator::new();
    let mut model = Model::default();
    let read = async {
        loop {
            let Some(msg) = conv.reader.recv().await? else {
                return Err(SourceError::Lost("the agent closed the stream".into()));
            };
            let out = translator
                .feed(msg)
                .map_err(|e| SourceError::Protocol(e.to_string()))?;
            for u in out {
                model.apply(u);
            }
            if translator.is_live() {
                return Ok(());
            }
        }
    };
    match tokio::time::timeout(source::CONNECT_TIMEOUT, read).await {
        Ok(r) => r?,
        Err(_) => {
            return Err(SourceError::Unreachable {
                endpoint: endpoint.label(),
                reason: "no snapshot in time".into(),
            });
        }
    }
    model.apply(Update::Connection(crate::model::Connection::Connected));
    Ok(model)
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
            "--approval",
            "sdb.approval",
            "--approval",
            "sdc.approval",
        ])
        .unwrap();
        assert_eq!(cli.args.connect.len(), 2);
        assert_eq!(
            cli.args.approvals,
            [PathBuf::from("sdb.approval"), PathBuf::from("sdc.approval")]
        );
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
