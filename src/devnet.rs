//! `nodus devnet`: a grid on one machine for a first look — a one-validator
//! local chain, this host's agent in observe mode registered on it, and the
//! console on the agent.
//!
//! Everything lives under one state directory:
//!
//! 1. **Keys.** `owner.key` is the devnet farmer: it owns the farm, is the
//!    chain's only validator, and is the console's key. `node.key` is the
//!    agent's node key (made here first, so the genesis can fund it).
//! 2. **Chain.** A fresh chain on every start, in this process: genesis in
//!    `chain/genesis.json`, blocks in `chain/chain.redb` (redb), QUIC on a free
//!    loopback port. The farmer registers farm 1 and signs the node's approval
//!    (`chain/approval.json`) exactly as `nodus chain tx register-farm` and
//!    `approve-node` do.
//! 3. **Agent.** `nodus agent run` as a child (the same binary), with a config
//!    (`agent.toml`) naming the chain, the approval and a short uptime report
//!    interval; QUIC on a free loopback port, a Unix socket, no D-Bus. Its log
//!    goes to `agent.log`. It registers the node, reports uptime and feeds the
//!    Stake screen.
//! 4. **Console** over QUIC with the owner key. With no terminal on stdout it
//!    prints the node's snapshot as text, once the chain's numbers are in, and
//!    exits.
//!
//! The agent child and the chain are stopped on every way out.
//!
//! # The devnet chain's parameters
//!
//! Short epochs so farming rewards show within a minute; everything else is the
//! chain's default (see `nodus_validator::genesis`).
//!
//! | parameter | devnet | why |
//! |---|---|---|
//! | chain id | `nodus-devnet` | |
//! | block interval | 1 s (`commit_delay_ms` 1000) | a lively but cheap chain |
//! | `epoch_secs` | [`EPOCH_SECS`] = 20 | rewards every 20 s |
//! | `late_report_window_secs` | [`LATE_REPORT_WINDOW_SECS`] = 5 | an epoch settles 5 s after it ends |
//! | `epoch_reward` | [`EPOCH_REWARD`] = 1000 NDS | at most minted per epoch |
//! | farmer balance | [`FARMER_BALANCE`] = 1 000 000 NDS | |
//! | farmer's validator stake | [`FARMER_STAKE`] = 100 000 NDS | the only validator |
//! | node balance | [`NODE_BALANCE`] = 1000 NDS | pays its transaction fees |
//! | agent `uptime_report_s` | [`UPTIME_REPORT_S`] = 5 | |
//! | agent `chain_fee` | the chain's minimum fee | |
//!
//! So the first rewards arrive at the first block after 25 s of chain time
//! (epoch 0, with the uptime the node reported since it registered), and every
//! 20 s after.

use std::io::{BufRead as _, BufReader, IsTerminal as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use nodus_identity::{AccountId, Keystore, NodeId, Passphrase, SecretKey, keystore::KdfParams};
use nodus_validator::client::{self, Chain};
use nodus_validator::genesis::{DEFAULT_MIN_FEE, RawAccount, RawGenesis, RawParams, RawValidator};
use nodus_validator::node::{self, NodeHandle, config::Endpoint, config::NodeConfig};
use nodus_validator::state::{Address, Amount};
use nodus_validator::{Genesis, TxBody, TxStatus};

/// Passphrase of the devnet's own keys when `$NODUS_PASSPHRASE` is not set: the
/// devnet is a demo on a developer's machine, its keys guard nothing else.
pub(crate) const DEVNET_PASSPHRASE: &str = "nodus-devnet";

/// How long the agent may take to print its ready line (a first inventory with
/// smartctl on many disks takes a while).
const READY_TIMEOUT: Duration = Duration::from_secs(120);

/// Chain id of the devnet chain.
pub(crate) const CHAIN_ID: &str = "nodus-devnet";
/// Reward epoch, seconds: short, so rewards show within a minute.
pub(crate) const EPOCH_SECS: u64 = 20;
/// Seconds an epoch waits for late uptime reports: one report interval.
pub(crate) const LATE_REPORT_WINDOW_SECS: u64 = 5;
/// Most minted per epoch: 1000 NDS (amounts are micro-NDS).
pub(crate) const EPOCH_REWARD: Amount = 1_000_000_000;
/// The farmer's spendable balance at genesis: 1 000 000 NDS.
pub(crate) const FARMER_BALANCE: Amount = 1_000_000_000_000;
/// The farmer's bonded validator stake at genesis: 100 000 NDS.
pub(crate) const FARMER_STAKE: Amount = 100_000_000_000;
/// The node's balance at genesis, for its fees: 1000 NDS.
pub(crate) const NODE_BALANCE: Amount = 1_000_000_000;
/// The agent's uptime report interval, seconds (equal to the late window, so a
/// report is never late for its epoch).
pub(crate) const UPTIME_REPORT_S: u64 = 5;
// A report every interval is never late for the epoch it describes.
const _: () = assert!(UPTIME_REPORT_S <= LATE_REPORT_WINDOW_SECS);
/// The devnet's farm: the chain's first, as farm ids count from 1.
pub(crate) const DEVNET_FARM: u64 = 1;
/// Pause between blocks, ms: one block a second.
const BLOCK_INTERVAL_MS: u64 = 1_000;
/// How long farm registration may take to land in a block.
const TX_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the snapshot (no terminal) waits for the agent to read the chain.
const STAKE_TIMEOUT: Duration = Duration::from_secs(60);

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

fn passphrase() -> String {
    std::env::var(nodus_identity::cli::PASSPHRASE_ENV)
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| DEVNET_PASSPHRASE.to_owned())
}

/// A devnet key (`what`: owner or node): created on the first run, reused
/// after. Returns the passphrase that opens it: a node key an older devnet let
/// the agent make has the agent's unattended one.
fn devnet_key(path: &Path, what: &str) -> anyhow::Result<(SecretKey, String)> {
    let pass = passphrase();
    if path.exists() {
        let error = match Keystore::open(path, &Passphrase::new(pass.clone())) {
            Ok(key) => return Ok((key, pass)),
            Err(e) => e,
        };
        let unattended = nodus_agent::daemon::cli::UNATTENDED_PASSPHRASE;
        if let Ok(key) = Keystore::open(path, &Passphrase::new(unattended.to_owned())) {
            return Ok((key, unattended.to_owned()));
        }
        return Err(anyhow::Error::new(error).context(format!(
            "Cannot open the devnet {what} key {}",
            path.display()
        )));
    }
    let key = SecretKey::generate()?;
    Keystore::create(
        path,
        &key,
        &Passphrase::new(pass.clone()),
        KdfParams::DEFAULT,
    )
    .with_context(|| format!("Cannot create the devnet {what} key {}", path.display()))?;
    Ok((key, pass))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The devnet genesis: the farmer funded and the only validator, the node
/// funded for its fees, short epochs (see the [module docs](self)).
pub(crate) fn genesis(farmer: &SecretKey, node: &SecretKey, genesis_time: u64) -> RawGenesis {
    RawGenesis {
        chain_id: CHAIN_ID.to_owned(),
        genesis_time,
        params: RawParams {
            epoch_secs: EPOCH_SECS,
            late_report_window_secs: LATE_REPORT_WINDOW_SECS,
            epoch_reward: EPOCH_REWARD,
            ..RawParams::default()
        },
        accounts: vec![
            RawAccount {
                id: AccountId::from(farmer.public()).to_string(),
                balance: FARMER_BALANCE,
            },
            RawAccount {
                id: AccountId::from(node.public()).to_string(),
                balance: NODE_BALANCE,
            },
        ],
        validators: vec![RawValidator {
            id: AccountId::from(farmer.public()).to_string(),
            stake: FARMER_STAKE,
        }],
    }
}

/// The devnet's agent config: the chain, the farm's approval, a short report
/// interval.
pub(crate) fn agent_config(endpoint: &Endpoint, approval: &Path) -> String {
    format!(
        "# Written by nodus devnet on every start.\n\
         farm = {DEVNET_FARM}\n\
         chain = [{:?}]\n\
         chain_approval = {:?}\n\
         chain_fee = {DEFAULT_MIN_FEE}\n\
         uptime_report_s = {UPTIME_REPORT_S}\n",
        endpoint.to_string(),
        approval.display().to_string(),
    )
}

/// Starts the chain in this process on `rt`, registers the farm and writes the
/// node's approval. Returns the node handle, its endpoint and the approval's
/// path.
fn start_chain(
    rt: &tokio::runtime::Runtime,
    dir: &Path,
    farmer: &SecretKey,
    node_key: &SecretKey,
) -> anyhow::Result<(NodeHandle, Endpoint, PathBuf)> {
    // A fresh chain every time: its genesis time is now, so epochs start now.
    let chain_dir = dir.join("chain");
    if chain_dir.exists() {
        std::fs::remove_dir_all(&chain_dir)
            .with_context(|| format!("Cannot clear {}", chain_dir.display()))?;
    }
    std::fs::create_dir_all(&chain_dir)
        .with_context(|| format!("Cannot create {}", chain_dir.display()))?;
    let raw = genesis(farmer, node_key, unix_now());
    let genesis_path = chain_dir.join("genesis.json");
    std::fs::write(&genesis_path, serde_json::to_string_pretty(&raw)?)
        .with_context(|| format!("Cannot write {}", genesis_path.display()))?;
    let genesis = Genesis::try_from(raw).context("The devnet genesis is invalid")?;
    let config = NodeConfig {
        keystore: dir.join("owner.key"),
        passphrase_file: None,
        genesis: genesis_path,
        data_dir: chain_dir.clone(),
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        peers: Vec::new(),
        mempool: nodus_validator::mempool::MempoolConfig::default(),
        max_block_txs: nodus_validator::node::config::DEFAULT_MAX_BLOCK_TXS,
        max_block_bytes: nodus_validator::node::config::DEFAULT_MAX_BLOCK_BYTES,
        consensus: nodus_validator::consensus::EngineConfig {
            commit_delay_ms: BLOCK_INTERVAL_MS,
            ..nodus_validator::consensus::EngineConfig::default()
        },
    };
    let store_path = chain_dir.join("chain.redb");
    let store = nodus_validator::storage::DiskStore::open(&store_path)
        .with_context(|| format!("Cannot open {}", store_path.display()))?;
    let handle = rt
        .block_on(node::start(farmer.clone(), genesis, &config, store))
        .context("Cannot start the devnet validator")?;
    let endpoint = handle.endpoint();
    let approval = chain_dir.join("approval.json");
    let setup = rt.block_on(async {
        let mut chain = Chain::new(farmer, vec![endpoint.clone()])?;
        let body = TxBody::RegisterFarm {
            name: "devnet".into(),
        };
        let id = chain.sign_and_submit(farmer, DEFAULT_MIN_FEE, body).await?;
        let (_, status) = chain.wait_included(id, TX_TIMEOUT).await?;
        if status != TxStatus::Applied {
            bail!("Registering the devnet farm failed: {status:?}");
        }
        let farm = DEVNET_FARM;
        let approved = client::approve_node(
            farmer,
            &chain.chain_id().await?,
            farm,
            Address::from(node_key.public()),
        )?;
        std::fs::write(&approval, serde_json::to_string_pretty(&approved)?)
            .with_context(|| format!("Cannot write {}", approval.display()))?;
        anyhow::Ok(())
    });
    if let Err(e) = setup {
        let _ = rt.block_on(handle.shutdown());
        return Err(e);
    }
    Ok((handle, endpoint, approval))
}

/// The running devnet: the chain and the agent child, stopped on drop.
pub(crate) struct Devnet {
    agent: Option<Child>,
    chain: Option<NodeHandle>,
    rt: tokio::runtime::Handle,
    /// The chain's endpoint.
    pub(crate) chain_endpoint: Endpoint,
    /// What the agent serves.
    pub(crate) ready: Ready,
    /// The owner key (the console's key).
    pub(crate) owner: SecretKey,
    /// The agent's log file.
    pub(crate) log: PathBuf,
}

impl Devnet {
    /// Starts the devnet's parts (the chain on `rt`) and waits until the agent
    /// serves.
    pub(crate) fn start(args: &Args, rt: &tokio::runtime::Runtime) -> anyhow::Result<Self> {
        let dir = args.state_dir.clone().unwrap_or_else(default_state_dir);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("Cannot create {}", dir.display()))?;
        let (owner, _) = devnet_key(&dir.join("owner.key"), "owner")?;
        // Made here, not by the agent, so the genesis can fund it; the agent
        // is told its passphrase.
        let (node_key, node_pass) = devnet_key(&dir.join("node.key"), "node")?;
        let (chain, chain_endpoint, approval) = start_chain(rt, &dir, &owner, &node_key)?;
        let log = dir.join("agent.log");
        let mut devnet = Devnet {
            agent: None,
            chain: Some(chain),
            rt: rt.handle().clone(),
            chain_endpoint,
            ready: Ready {
                node: String::new(),
                quic: SocketAddr::from(([127, 0, 0, 1], 0)),
                socket: None,
            },
            owner,
            log,
        };
        let config = dir.join("agent.toml");
        std::fs::write(&config, agent_config(&devnet.chain_endpoint, &approval))
            .with_context(|| format!("Cannot write {}", config.display()))?;
        let log_file = std::fs::File::create(&devnet.log)
            .with_context(|| format!("Cannot create {}", devnet.log.display()))?;
        let exe = std::env::current_exe().context("Cannot find the nodus binary")?;
        let mut cmd = Command::new(exe);
        cmd.env(nodus_identity::cli::PASSPHRASE_ENV, node_pass)
            .args(["agent", "run", "--config"])
            .arg(&config)
            .args(["--mode", "observe", "--listen", "127.0.0.1:0"])
            .arg("--socket")
            .arg(dir.join("agent.sock"))
            .args(["--dbus-address", "none"])
            .arg("--key")
            .arg(dir.join("node.key"))
            .arg("--owner")
            .arg(AccountId::from(devnet.owner.public()).to_string())
            .arg("--state-dir")
            .arg(dir.join("agent"));
        if let Some(root) = &args.root {
            cmd.arg("--root").arg(root);
        }
        // The agent's logs go to a file: on the terminal they would tear
        // through the dashboard.
        let agent = devnet.agent.insert(
            cmd.stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(log_file)
                .spawn()
                .context("Cannot start the agent")?,
        );
        let Some(stdout) = agent.stdout.take() else {
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
                let status = agent.try_wait().ok().flatten();
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
        if let Some(agent) = self.agent.take() {
            stop_child(agent);
        }
        if let Some(chain) = self.chain.take()
            && let Err(e) = self.rt.block_on(chain.shutdown())
        {
            tracing::warn!(error = %e, "devnet chain stopped with an error");
        }
    }
}

/// Stops the agent: SIGTERM (its clean shutdown), then SIGKILL if it does not go.
fn stop_child(mut agent: Child) {
    if let Ok(Some(_)) = agent.try_wait() {
        return;
    }
    if let Ok(pid) = i32::try_from(agent.id()) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
    for _ in 0..50 {
        if let Ok(Some(_)) = agent.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = agent.kill();
    let _ = agent.wait();
}

impl Drop for Devnet {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The snapshot once the agent has read the chain (or the last one after
/// [`STAKE_TIMEOUT`]: the chain's absence is then part of the picture).
async fn snapshot_with_stake(
    endpoint: &nodus_console::source::Endpoint,
) -> anyhow::Result<nodus_console::model::Model> {
    let deadline = tokio::time::Instant::now() + STAKE_TIMEOUT;
    loop {
        let model = nodus_console::cli::snapshot(endpoint).await?;
        let known = matches!(model.stake, nodus_console::model::StakeStatus::Known(_));
        if known || tokio::time::Instant::now() >= deadline {
            return Ok(model);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

impl Args {
    /// Runs the devnet until the console quits (or, with no terminal, prints
    /// the snapshot and returns).
    pub(crate) fn run(self) -> anyhow::Result<()> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let devnet = Devnet::start(&self, &runtime)?;
        runtime.block_on(async {
            let endpoint = devnet.endpoint()?;
            if !std::io::stdout().is_terminal() {
                let model = snapshot_with_stake(&endpoint).await?;
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
                println!("chain     {} id={CHAIN_ID}", devnet.chain_endpoint);
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

    #[test]
    fn genesis_funds_the_farmer_and_node_with_short_epochs() {
        let farmer = SecretKey::from_seed(&[1; 32]);
        let node = SecretKey::from_seed(&[2; 32]);
        let g = Genesis::try_from(genesis(&farmer, &node, 1_000)).unwrap();
        assert_eq!(g.chain_id, CHAIN_ID);
        assert_eq!(g.params.epoch_secs, 20);
        assert_eq!(g.params.late_report_window_secs, 5);
        assert_eq!(g.params.epoch_reward, 1_000_000_000);
        let (f, n) = (Address::from(farmer.public()), Address::from(node.public()));
        assert_eq!(g.accounts.get(&f), Some(&FARMER_BALANCE));
        assert_eq!(g.accounts.get(&n), Some(&NODE_BALANCE));
        assert_eq!(g.validators.get(&f), Some(&FARMER_STAKE));
        assert_eq!(g.validators.len(), 1);
    }

    #[test]
    fn agent_config_is_one_the_agent_accepts() {
        let dir = tempfile::tempdir().unwrap();
        let endpoint = Endpoint {
            key: SecretKey::from_seed(&[3; 32]).public(),
            addr: "127.0.0.1:4000".parse().unwrap(),
        };
        let path = dir.path().join("agent.toml");
        let approval = dir.path().join("a \"quoted\" dir/approval.json");
        std::fs::write(&path, agent_config(&endpoint, &approval)).unwrap();
        let raw = nodus_agent::daemon::config::load_file(&path).unwrap();
        assert_eq!(raw.chain, Some(vec![endpoint.to_string()]));
        assert_eq!(raw.chain_approval, Some(approval));
        assert_eq!(raw.chain_fee, Some(DEFAULT_MIN_FEE));
        assert_eq!(raw.uptime_report_s, Some(UPTIME_REPORT_S));
        assert_eq!(raw.farm, Some(DEVNET_FARM));
    }
}
