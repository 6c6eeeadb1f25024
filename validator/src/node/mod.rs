//! The validator process: the sans-IO [`core::Core`] (consensus engine, store,
//! mempool) wired to tokio, QUIC and the real clock.
//!
//! - One task owns the [`core::Core`] and sleeps until the engine's next
//!   deadline; everything else talks to it through a channel, so the core never
//!   needs a lock. Its calls write to the store synchronously (the engine's WAL
//!   and double-sign records are durable before a vote leaves), so they run under
//!   `block_in_place`.
//! - The QUIC endpoint ([`nodus_wire::ServerBuilder`], ALPN `nodus/chain/1`)
//!   admits every key: validator keys (from genesis and the peer list) as
//!   `Operator`, any other as `Tenant`; what a request may do is decided again
//!   from the current validator set.
//! - Two tasks per peer validator each keep an outbound connection, reconnecting
//!   with backoff, and write our gossip to one ordered push stream on it: one for
//!   consensus messages, one for transaction gossip, so votes never wait behind
//!   transactions. The core reads consensus gossip from its own queue first.
//!
//! [`start`] returns a [`NodeHandle`]; [`NodeHandle::shutdown`] stops everything
//! in order (the CLI calls it on SIGTERM).

pub mod config;
pub mod core;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nodus_identity::{PublicKey, SecretKey};
use nodus_wire::{Alpn, Client, Connection, Role, ServerBuilder, quic::Backoff};
use tokio::sync::{mpsc, oneshot, watch};

use self::config::{Endpoint, NodeConfig};
use self::core::{Core, Out};
use crate::Genesis;
use crate::consensus::{Engine, EngineError, UnixMillis};
use crate::rpc::{Gossip, HeightInfo, Request, Response, RpcError};
use crate::state::Address;
use crate::storage::Store;

/// Longest sleep of the core without a deadline: a safety net, the engine
/// always has a timer running.
pub const IDLE_TICK: Duration = Duration::from_secs(1);
/// Gossip queued per peer before new messages are dropped (consensus re-sends on
/// its timeouts; a stuck peer must not grow memory).
pub const PEER_QUEUE: usize = 8_192;
/// Largest frame on the chain ALPN (16 MiB): a proposal carries a whole block,
/// well above the wire's 1 MiB default for interactive protocols.
pub const MAX_FRAME_LEN: usize = 16 << 20;
/// Requests and transaction gossip queued for the core.
const INBOX: usize = 16_384;
/// Consensus messages queued for the core (their own queue, served first).
const CONSENSUS_INBOX: usize = 16_384;

/// Why the node could not start or stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// The consensus engine stopped (storage failure, wrong chain…).
    #[error("Consensus engine stopped")]
    Engine(#[from] EngineError),
    /// The QUIC endpoint could not start.
    #[error("Cannot start the chain endpoint")]
    Server(#[from] nodus_wire::quic::ServerError),
    /// The outbound QUIC client could not start.
    #[error("Cannot start the peer client")]
    Client(#[from] nodus_wire::ConnectError),
    /// The core task ended unexpectedly.
    #[error("Node task failed")]
    Task,
}

enum Input {
    Request {
        req: Request,
        reply: oneshot::Sender<Response>,
    },
    Gossip {
        from: Address,
        gossip: Gossip,
    },
}

/// A running node.
#[derive(Debug)]
pub struct NodeHandle {
    local_addr: SocketAddr,
    public: PublicKey,
    head: watch::Receiver<HeightInfo>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), NodeError>>,
}

impl NodeHandle {
    /// The bound QUIC address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// This node's endpoint, `<ValidatorId>@addr`.
    pub fn endpoint(&self) -> Endpoint {
        Endpoint {
            key: self.public,
            addr: self.local_addr,
        }
    }

    /// Follows the decided head.
    pub fn head(&self) -> watch::Receiver<HeightInfo> {
        self.head.clone()
    }

    /// Stops the node and waits for it; returns the error that stopped it early,
    /// if one did.
    pub async fn shutdown(mut self) -> Result<(), NodeError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task).await.map_err(|_| NodeError::Task)?
    }

    /// Waits until the node stops on its own (an unrecoverable error).
    pub async fn wait(&mut self) -> Result<(), NodeError> {
        (&mut self.task).await.map_err(|_| NodeError::Task)?
    }
}

/// The wall clock in Unix milliseconds: the engine's time base (block times are
/// wall-clock seconds).
fn now_ms() -> UnixMillis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Starts a node on `store`: opens the engine (restoring the last committed
/// block), binds the endpoint, dials the peers. Must be called inside a
/// multi-threaded tokio runtime.
pub async fn start<S: Store + Send + 'static>(
    key: SecretKey,
    genesis: Genesis,
    config: &NodeConfig,
    store: S,
) -> Result<NodeHandle, NodeError> {
    let me = Address::from(key.public());
    let engine = Engine::open(&genesis, key.clone(), store, config.consensus.clone())?;
    let core = Core::new(
        engine,
        key.clone(),
        config.mempool,
        config.max_block_txs,
        config.max_block_bytes,
    );
    let (head_tx, head_rx) = watch::channel(core.head());
    let (inbox_tx, inbox_rx) = mpsc::channel::<Input>(INBOX);
    let (consensus_tx, consensus_rx) = mpsc::channel::<Input>(CONSENSUS_INBOX);

    // Validators we know of: genesis and the configured peers.
    let mut known: Vec<PublicKey> = config.peers.iter().map(|p| p.key).collect();
    known.extend(
        genesis
            .validators
            .keys()
            .filter_map(|a| PublicKey::from_bytes(&a.0).ok()),
    );
    let authorizer = move |peer: &PublicKey, _alpn: Alpn| {
        Ok(if known.contains(peer) {
            Role::Operator
        } else {
            Role::Tenant
        })
    };
    let inbox = inbox_tx.clone();
    let server = ServerBuilder::new(&key, Arc::new(authorizer))
        .route(Alpn::Chain, move |conn| {
            serve(conn, inbox.clone(), consensus_tx.clone())
        })
        .max_frame_len(MAX_FRAME_LEN)
        .bind(config.listen)?;
    let local_addr = server.local_addr();

    let mut client = Client::bind(&key, SocketAddr::from(([0, 0, 0, 0], 0)))?;
    client.set_max_frame_len(MAX_FRAME_LEN);
    let mut peers = HashMap::new();
    for peer in &config.peers {
        if peer.key == key.public() {
            continue;
        }
        // Two connections per peer: consensus messages never queue behind
        // megabytes of transaction gossip on one ordered stream.
        let (consensus, consensus_rx) = mpsc::channel(PEER_QUEUE);
        let (txs, txs_rx) = mpsc::channel(PEER_QUEUE);
        peers.insert(Address::from(peer.key), PeerQueues { consensus, txs });
        tokio::spawn(dial(client.clone(), peer.clone(), consensus_rx));
        tokio::spawn(dial(client.clone(), peer.clone(), txs_rx));
    }
    let (stop_tx, stop_rx) = oneshot::channel();
    let task = tokio::spawn(async move {
        let result = drive(core, inbox_rx, consensus_rx, peers, head_tx, stop_rx).await;
        server.close();
        client.close();
        result
    });
    tracing::info!(validator = %me, addr = %local_addr, "chain endpoint serving");
    Ok(NodeHandle {
        local_addr,
        public: key.public(),
        head: head_rx,
        stop: Some(stop_tx),
        task,
    })
}

/// The core's task: inputs and the engine's deadlines, until stopped.
///
/// Consensus messages and due timers go before requests and transaction gossip
/// (`biased` select): under a flood of submissions the core would otherwise
/// spend seconds verifying transactions while votes and proposals wait behind
/// them, rounds time out, and nothing commits until the flood is over.
async fn drive<S: Store + Send + 'static>(
    mut core: Core<S>,
    mut inbox: mpsc::Receiver<Input>,
    mut consensus: mpsc::Receiver<Input>,
    peers: HashMap<Address, PeerQueues>,
    head: watch::Sender<HeightInfo>,
    mut stop: oneshot::Receiver<()>,
) -> Result<(), NodeError> {
    let out = tokio::task::block_in_place(|| core.start(now_ms()))?;
    dispatch(out, &peers, &head);
    loop {
        let wait = core.next_deadline().map_or(IDLE_TICK, |at| {
            Duration::from_millis(at.saturating_sub(now_ms())).min(IDLE_TICK)
        });
        let deadline = Instant::now() + wait;
        let out = tokio::select! {
            biased;
            _ = &mut stop => break,
            () = tokio::time::sleep_until(deadline.into()) => {
                tokio::task::block_in_place(|| core.tick(now_ms()))?
            }
            Some(Input::Gossip { from, gossip }) = consensus.recv() => {
                tokio::task::block_in_place(|| core.on_gossip(from, gossip, now_ms()))?
            }
            input = inbox.recv() => match input {
                None => break,
                Some(Input::Request { req, reply }) => {
                    let (resp, out) = tokio::task::block_in_place(|| core.on_request(req));
                    let _ = reply.send(resp);
                    out
                }
                Some(Input::Gossip { from, gossip }) => {
                    tokio::task::block_in_place(|| core.on_gossip(from, gossip, now_ms()))?
                }
            },
        };
        dispatch(out, &peers, &head);
    }
    tracing::info!(height = core.state().height(), "node stopped");
    Ok(())
}

/// The outbound queues to one peer validator, each its own connection.
struct PeerQueues {
    /// Consensus messages.
    consensus: mpsc::Sender<Arc<Gossip>>,
    /// Transaction gossip.
    txs: mpsc::Sender<Arc<Gossip>>,
}

impl PeerQueues {
    fn for_gossip(&self, g: &Gossip) -> &mpsc::Sender<Arc<Gossip>> {
        match g {
            Gossip::Consensus(_) => &self.consensus,
            Gossip::Txs(_) => &self.txs,
        }
    }
}

fn dispatch(out: Vec<Out>, peers: &HashMap<Address, PeerQueues>, head: &watch::Sender<HeightInfo>) {
    let send = |tx: &mpsc::Sender<Arc<Gossip>>, g: Arc<Gossip>| {
        if tx.try_send(g).is_err() {
            tracing::debug!("peer queue full or closed; message dropped");
        }
    };
    for o in out {
        match o {
            Out::Gossip(g) => {
                let g = Arc::new(g);
                for queues in peers.values() {
                    send(queues.for_gossip(&g), g.clone());
                }
            }
            Out::GossipTo(to, g) => {
                if let Some(queues) = peers.get(&to) {
                    send(queues.for_gossip(&g), Arc::new(g));
                }
            }
            Out::Committed(info) => {
                head.send_replace(info);
            }
        }
    }
}

/// One inbound connection: gossip streams (read in order) and requests.
/// Consensus gossip goes to the core's priority queue.
async fn serve(conn: Connection, inbox: mpsc::Sender<Input>, consensus: mpsc::Sender<Input>) {
    let peer = Address::from(*conn.peer());
    let gossip_conn = conn.clone();
    let gossip_inbox = inbox.clone();
    tokio::spawn(async move {
        while let Ok(Some(mut stream)) = gossip_conn.accept_push_stream().await {
            let inbox = gossip_inbox.clone();
            let consensus = consensus.clone();
            tokio::spawn(async move {
                loop {
                    match stream.recv::<Gossip>().await {
                        Ok(Some(gossip)) => {
                            let inbox = match gossip {
                                Gossip::Consensus(_) => &consensus,
                                Gossip::Txs(_) => &inbox,
                            };
                            if inbox
                                .send(Input::Gossip { from: peer, gossip })
                                .await
                                .is_err()
                            {
                                return;
                            }
                        }
                        Ok(None) => return,
                        Err(error) => {
                            tracing::debug!(%peer, %error, "gossip stream ended");
                            return;
                        }
                    }
                }
            });
        }
    });
    let result = conn
        .serve_requests(move |req: Request| {
            let inbox = inbox.clone();
            async move {
                let (reply, rx) = oneshot::channel();
                if inbox.send(Input::Request { req, reply }).await.is_err() {
                    return Response::Error(RpcError::Unavailable);
                }
                rx.await.unwrap_or(Response::Error(RpcError::Unavailable))
            }
        })
        .await;
    if let Err(error) = result {
        tracing::debug!(%peer, %error, "connection ended");
    }
}

/// Keeps one outbound connection to a peer validator and feeds it our gossip.
async fn dial(client: Client, peer: Endpoint, mut gossip: mpsc::Receiver<Arc<Gossip>>) {
    let backoff = Backoff {
        base: Duration::from_millis(100),
        max: Duration::from_secs(2),
    };
    loop {
        let conn = match nodus_wire::quic::connect_with_backoff(
            &client,
            peer.addr,
            peer.key,
            Alpn::Chain,
            backoff,
            None,
        )
        .await
        {
            Ok(conn) => conn,
            Err(error) => {
                tracing::warn!(peer = %peer, %error, "cannot reach peer; retrying");
                tokio::time::sleep(backoff.max).await;
                continue;
            }
        };
        let mut stream = match conn.open_push_stream().await {
            Ok(s) => s,
            Err(error) => {
                tracing::debug!(peer = %peer, %error, "cannot open gossip stream");
                continue;
            }
        };
        tracing::info!(peer = %peer, "connected to peer");
        loop {
            let Some(g) = gossip.recv().await else {
                conn.close(nodus_wire::ErrorCode::Closed, "shutting down");
                return;
            };
            if let Err(error) = stream.send(&*g).await {
                tracing::info!(peer = %peer, %error, "peer connection lost");
                break;
            }
        }
    }
}
