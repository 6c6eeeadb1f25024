//! `nodus devnet`: a grid on one machine for a first look — this host's agent
//! in observe mode, and the console on it.
//!
//! It starts `nodus agent run` as a child (the same binary), with its own node
//! key, an owner key made for the devnet, QUIC on a free loopback port, a Unix
//! socket and no D-Bus, all under one state directory; waits for the agent's
//! ready line; then opens the console over QUIC with the owner key. With no
//! terminal on stdout it prints the node's snapshot as text and exits. The
//! agent child is stopped on every way out.
//!
//! The seam for the local chain (a later issue): [`Devnet::start`] is where the
//! validators start, before the agent, and their endpoints go to the agent as
//! `--chain`; nothing else here needs to change.

use std::io::{BufRead as _, BufReader, IsTerminal as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, bail};
use nodus_identity::{AccountId, Keystore, NodeId, Passphrase, SecretKey, keystore::KdfParams};

/// Passphrase of the devnet's own keys when `$NODUS_PASSPHRASE` is not set: the
/// devnet is a demo on a developer's machine, its keys guard nothing else.
pub(crate) const DEVNET_PASSPHRASE: &str = "nodus-devnet";

/// How long the agent may take to print its ready line (a first inventory with
/// smartctl on many disks takes a while).
const READY_TIMEOUT: Duration = Duration::from_secs(120);

/// `nodus devnet`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct Args {
    /// Where the devnet keeps its keys, agent state, socket and agent log.
    /// Default: $XDG_STATE_HOME/nodus/devnet, else ~/.local/state/nodus/devnet.
    #[arg(long, value_name = "DIR")]
    pub(crate) state_dir: Option<PathBuf>,
    /// Read the hardware under DIR instead of `/` (a fixture tree, for demos).
    #[arg(long, value_name = "DIR")]
    pub(crate) root: Option<PathBuf>,
}

/// What the agent's ready line says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ready {
    /// The node id.
    pub(crate) node: String,
    /// Its QUIC address.
    pub(crate) quic: SocketAddr,
    /// Its socket, if any.
    pub(crate) socket: Option<PathBuf>,
}

/// Parses `nodus-agent ready node=<NodeId> quic=<addr:port> socket=<path>`.
pub(crate) fn parse_ready(line: &str) -> Option<Ready> {
    let rest = line.trim().strip_prefix("nodus-agent ready ")?;
    let (mut node, mut quic, mut socket) = (None, None, None);
    for field in rest.split_whitespace() {
        match field.split_once('=')? {
            ("node", v) => node = Some(v.to_owned()),
            ("quic", v) => quic = v.parse().ok(),
            ("socket", "-") => {}
            ("socket", v) => socket = Some(PathBuf::from(v)),
            _ => {}
        }
    }
    Some(Ready {
        node: node?,
        quic: quic?,
        socket,
    })
}

fn default_state_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("nodus/devnet");
    }
    if let Some(h) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        return PathBuf::from(h).join(".local/state/nodus/devnet");
    }
    std::env::temp_dir().join("nodus-devnet")
}

fn passphrase() -> Passphrase {
    Passphrase::new(
        std::env::var(nodus_identity::cli::PASSPHRASE_ENV)
            .ok()
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| DEVNET_PASSPHRASE.to_owned()),
    )
}

/// The devnet owner's key: created on the first run, reused after.
fn owner_key(path: &Path) -> anyhow::Result<SecretKey> {
    if path.exists() {
        return Keystore::open(path, &passphrase())
            .with_context(|| format!("Cannot open the devnet owner key {}", path.display()));
    }
    let key = SecretKey::generate()?;
    Keystore::create(path, &key, &passphrase(), KdfParams::DEFAULT)
        .with_context(|| format!("Cannot create the devnet owner key {}", path.display()))?;
    Ok(key)
}

/// The running devnet: the agent child, stopped on drop.
pub(crate) struct Devnet {
    agent: Child,
    /// What the agent serves.
    pub(crate) ready: Ready,
    /// The owner key (the console's key).
    pub(crate) owner: SecretKey,
    /// The agent's log file.
    pub(crate) log: PathBuf,
}

impl Devnet {
    /// Starts the devnet's parts and waits until the agent serves.
    pub(crate) fn start(args: &Args) -> anyhow::Result<Self> {
        let dir = args.state_dir.clone().unwrap_or_else(default_state_dir);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("Cannot create {}", dir.display()))?;
        let owner = owner_key(&dir.join("owner.key"))?;
        // Seam: the local chain starts here and its endpoints join the agent's
        // flags below.
        let log = dir.join("agent.log");
        let log_file = std::fs::File::create(&log)
            .with_context(|| format!("Cannot create {}", log.display()))?;
        let exe = std::env::current_exe().context("Cannot find the nodus binary")?;
        let mut cmd = Command::new(exe);
        cmd.args([
            "agent",
            "run",
            "--mode",
            "observe",
            "--listen",
            "127.0.0.1:0",
        ])
        .arg("--socket")
        .arg(dir.join("agent.sock"))
        .args(["--dbus-address", "none"])
        .arg("--key")
        .arg(dir.join("node.key"))
        .arg("--owner")
        .arg(AccountId::from(owner.public()).to_string())
        .arg("--state-dir")
        .arg(dir.join("agent"));
        if let Some(root) = &args.root {
            cmd.arg("--root").arg(root);
        }
        // The agent's logs go to a file: on the terminal they would tear
        // through the dashboard.
        let mut agent = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .context("Cannot start the agent")?;
        let stdout = agent.stdout.take();
        let mut devnet = Devnet {
            agent,
            ready: Ready {
                node: String::new(),
                quic: SocketAddr::from(([127, 0, 0, 1], 0)),
                socket: None,
            },
            owner,
            log,
        };
        let Some(stdout) = stdout else {
            bail!("The agent's stdout is not a pipe");
        };
        // Read the ready line on a thread, so a silent agent times out.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if let Some(r) = parse_ready(&line) {
                    let _ = tx.send(r);
                }
                // Keep draining, so the agent never blocks on a full pipe.
            }
        });
        match rx.recv_timeout(READY_TIMEOUT) {
            Ok(r) => devnet.ready = r,
            Err(_) => {
                let status = devnet.agent.try_wait().ok().flatten();
                bail!(
                    "The agent did not become ready ({}); see {}",
                    status.map_or_else(|| "no ready line in time".to_owned(), |s| s.to_string()),
                    devnet.log.display()
                );
            }
        }
        Ok(devnet)
    }

    /// The console's endpoint: the agent over QUIC with the owner key. Must run
    /// inside a tokio runtime.
    pub(crate) fn endpoint(&self) -> anyhow::Result<nodus_console::source::Endpoint> {
        let node: NodeId = self
            .ready
            .node
            .parse()
            .with_context(|| format!("Agent printed a bad node id {:?}", self.ready.node))?;
        let client = nodus_wire::Client::new(&self.owner)?;
        Ok(nodus_console::source::Endpoint::Remote(Box::new(
            nodus_console::source::Remote {
                node,
                addr: self.ready.quic.to_string(),
                client,
                grant: None,
            },
        )))
    }

    fn stop(&mut self) {
        if let Ok(Some(_)) = self.agent.try_wait() {
            return;
        }
        // SIGTERM is the agent's clean shutdown; SIGKILL if it does not go.
        if let Ok(pid) = i32::try_from(self.agent.id()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        for _ in 0..50 {
            if let Ok(Some(_)) = self.agent.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.agent.kill();
        let _ = self.agent.wait();
    }
}

impl Drop for Devnet {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Args {
    /// Runs the devnet until the console quits (or, with no terminal, prints
    /// the snapshot and returns).
    pub(crate) fn run(self) -> anyhow::Result<()> {
        let devnet = Devnet::start(&self)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        runtime.block_on(async {
            let endpoint = devnet.endpoint()?;
            if !std::io::stdout().is_terminal() {
                let model = nodus_console::cli::snapshot(&endpoint).await?;
                println!("{}", nodus_console::report::text(&model));
                println!(
                    "agent     quic={} socket={} log={}",
                    devnet.ready.quic,
                    devnet
                        .ready
                        .socket
                        .as_ref()
                        .map_or_else(|| "-".to_owned(), |p| p.display().to_string()),
                    devnet.log.display()
                );
                return Ok(());
            }
            nodus_console::cli::interactive(vec![endpoint], false).await?;
            anyhow::Ok(())
        })?;
        drop(devnet);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_line_parses() {
        let r = parse_ready(
            "nodus-agent ready node=node1abc quic=127.0.0.1:40001 socket=/tmp/x/agent.sock\n",
        )
        .unwrap();
        assert_eq!(r.node, "node1abc");
        assert_eq!(r.quic, "127.0.0.1:40001".parse().unwrap());
        assert_eq!(r.socket, Some(PathBuf::from("/tmp/x/agent.sock")));
        assert_eq!(
            parse_ready("nodus-agent ready node=n quic=[::1]:7 socket=-")
                .unwrap()
                .socket,
            None
        );
        assert!(parse_ready("nodus-agent starting").is_none());
        assert!(parse_ready("nodus-agent ready node=n").is_none());
    }
}
