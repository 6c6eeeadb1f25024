//! The agent as a remote console sees it: a QUIC connection on
//! `nodus/console/1` with the test's key (authorized as owner through
//! `nodus.owner=` on the kernel command line), the snapshot, and the live
//! inventory refreshes after it.
//!
//! A background task reads the stream and publishes the latest state on a `watch`
//! channel; checks wait on it with a deadline.

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use nodus_identity::{PublicKey, SecretKey};
use nodus_wire::{
    Alpn, Client,
    console::{ClientMsg, Delta, Hello, ServerMsg, VERSION, capability},
};
use serde_json::Value;
use tokio::sync::watch;

/// Each connection attempt's limit; the guest may still be configuring its
/// address when the first ones go out.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(3);
/// How often a new attempt starts while earlier ones are pending.
const ATTEMPT_EVERY: Duration = Duration::from_millis(250);

/// Why the agent could not be reached.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ViewError {
    /// The QUIC client could not be set up.
    #[error("QUIC client")]
    Client(#[source] nodus_wire::ConnectError),
    /// No attempt succeeded before the deadline.
    #[error("Agent at {addr} did not answer within {after:?}: {last}")]
    Unreachable {
        /// The address tried.
        addr: SocketAddr,
        /// How long we tried.
        after: Duration,
        /// The last error.
        last: String,
    },
    /// The agent's inventory document is not JSON.
    #[error("Agent inventory is not JSON")]
    BadInventory(#[source] serde_json::Error),
}

/// How the conversation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// The agent said goodbye (a clean shutdown), with its reason.
    Goodbye(String),
    /// The stream or connection closed without a goodbye.
    Closed(String),
}

/// What we know about the agent now.
#[derive(Debug, Clone, Default)]
pub struct ViewState {
    /// The latest inventory document.
    pub inventory: Value,
    /// How many inventory documents arrived (snapshot included).
    pub updates: u64,
    /// The agent's events as `source: message`, oldest first: the snapshot's
    /// recent ones, then each new one.
    pub events: Vec<String>,
    /// Set once the conversation is over.
    pub end: Option<End>,
}

/// A live view of one agent.
#[derive(Debug)]
pub struct AgentView {
    rx: watch::Receiver<ViewState>,
    task: tokio::task::JoinHandle<()>,
    _client: Client,
    /// When the snapshot arrived.
    pub ready_at: Instant,
}

impl Drop for AgentView {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl AgentView {
    /// Connects, says hello, and waits for the snapshot, within `within`.
    ///
    /// A new attempt starts every 250 ms while earlier ones are still
    /// pending, and the first to get a snapshot wins: an Initial packet sent
    /// before the guest had its address is lost, and waiting for QUIC to
    /// retransmit it would add up to a second to the measured boot-to-ready.
    pub async fn connect(
        addr: SocketAddr,
        node: PublicKey,
        key: &SecretKey,
        within: Duration,
    ) -> Result<Self, ViewError> {
        let start = Instant::now();
        let client = Client::new(key).map_err(ViewError::Client)?;
        let mut last = String::from("no attempt");
        let mut pending = tokio::task::JoinSet::new();
        let mut next = tokio::time::Instant::now();
        while start.elapsed() < within {
            if tokio::time::Instant::now() >= next {
                let c = client.clone();
                pending.spawn(async move {
                    match tokio::time::timeout(ATTEMPT_TIMEOUT, attempt(&c, addr, node)).await {
                        Ok(r) => r,
                        Err(_) => Err("attempt timed out".to_owned()),
                    }
                });
                next += ATTEMPT_EVERY;
            }
            tokio::select! {
                Some(done) = pending.join_next() => match done {
                    Ok(Ok((inventory, events, send, recv, conn))) => {
                        let ready_at = Instant::now();
                        pending.abort_all();
                        let (tx, rx) = watch::channel(ViewState {
                            inventory,
                            updates: 1,
                            events,
                            end: None,
                        });
                        let task = tokio::spawn(follow(send, recv, conn, tx));
                        return Ok(Self {
                            rx,
                            task,
                            _client: client,
                            ready_at,
                        });
                    }
                    Ok(Err(e)) => last = e,
                    Err(e) => last = e.to_string(),
                },
                _ = tokio::time::sleep_until(next) => {}
            }
        }
        pending.abort_all();
        Err(ViewError::Unreachable {
            addr,
            after: start.elapsed(),
            last,
        })
    }

    /// The state now.
    pub fn current(&self) -> ViewState {
        self.rx.borrow().clone()
    }

    /// Waits until `pred` holds for the state, up to `timeout`; returns the state
    /// that satisfied it, or the last one seen.
    pub async fn wait_for(
        &mut self,
        mut pred: impl FnMut(&ViewState) -> bool,
        timeout: Duration,
    ) -> Result<ViewState, ViewState> {
        let res = tokio::time::timeout(timeout, self.rx.wait_for(|s| pred(s)))
            .await
            .map(|r| r.map(|s| s.clone()));
        match res {
            Ok(Ok(s)) => Ok(s),
            _ => Err(self.current()),
        }
    }
}

type Streams = (
    Value,
    Vec<String>,
    nodus_wire::quic::SendFrames,
    nodus_wire::quic::RecvFrames,
    nodus_wire::Connection,
);

async fn attempt(client: &Client, addr: SocketAddr, node: PublicKey) -> Result<Streams, String> {
    let conn = client
        .connect(addr, node, Alpn::Console)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let (mut send, mut recv) = conn.open_bi().await.map_err(|e| e.to_string())?;
    send.send(&ClientMsg::Hello(Hello {
        version: VERSION,
        capabilities: capability::INVENTORY_REFRESH,
        backfill_s: 0,
        client: format!("nodus-qemu {}", env!("CARGO_PKG_VERSION")),
    }))
    .await
    .map_err(|e| e.to_string())?;
    loop {
        match recv.recv::<ServerMsg>().await {
            Ok(Some(ServerMsg::Snapshot(s))) => {
                let inv = serde_json::from_str(&s.inventory_json)
                    .map_err(|e| format!("inventory JSON: {e}"))?;
                let events = s.events.iter().map(event_line).collect();
                return Ok((inv, events, send, recv, conn));
            }
            Ok(Some(ServerMsg::Goodbye(r))) => return Err(format!("agent said goodbye: {r}")),
            Ok(Some(_)) => {}
            Ok(None) => return Err("stream ended before the snapshot".into()),
            Err(e) => return Err(e.to_string()),
        }
    }
}

async fn follow(
    _send: nodus_wire::quic::SendFrames,
    mut recv: nodus_wire::quic::RecvFrames,
    _conn: nodus_wire::Connection,
    tx: watch::Sender<ViewState>,
) {
    let end = loop {
        match recv.recv::<ServerMsg>().await {
            Ok(Some(ServerMsg::Snapshot(s))) => publish(&tx, &s.inventory_json),
            Ok(Some(ServerMsg::Delta(Delta::Inventory(doc)))) => publish(&tx, &doc),
            Ok(Some(ServerMsg::Delta(Delta::Event(e)))) => {
                tx.send_modify(|s| s.events.push(event_line(&e)));
            }
            Ok(Some(ServerMsg::Goodbye(r))) => break End::Goodbye(r),
            Ok(Some(_)) => {}
            Ok(None) => break End::Closed("stream ended".into()),
            Err(e) => break End::Closed(e.to_string()),
        }
    };
    tx.send_modify(|s| s.end = Some(end));
}

fn event_line(e: &nodus_wire::console::Event) -> String {
    format!("{}: {}", e.source, e.message)
}

fn publish(tx: &watch::Sender<ViewState>, doc: &str) {
    match serde_json::from_str::<Value>(doc) {
        Ok(v) => tx.send_modify(|s| {
            s.inventory = v;
            s.updates += 1;
        }),
        Err(e) => tracing::warn!(error = %e, "agent sent an inventory that is not JSON"),
    }
}
