//! Data sources: the agent's console protocol over QUIC (a remote node) or over
//! the agent's Unix socket (this machine), turned into model [`Update`]s.
//!
//! One conversation is one ordered, bidirectional stream of frames: over QUIC the
//! console opens one bidirectional stream and says [`Hello`] first; over the Unix
//! socket the socket itself is the stream. [`Conversation`] hides the difference,
//! [`translate::Translator`] turns what arrives into updates, and [`run`] keeps a
//! conversation going: it reconnects with backoff when the link drops (the model
//! keeps its last state, marked stale) and stops for good when the node refuses
//! this console.

pub mod translate;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nodus_identity::NodeId;
use nodus_wire::console::{
    self as wire, ClientMsg, GrantAnswer, GrantOffer, Hello, Request, ServerMsg,
};
use nodus_wire::framed::{FrameReader, FrameWriter};
use nodus_wire::quic::{Backoff, RecvFrames, SendFrames, StreamError};
use nodus_wire::unix::{LocalConnection, UnixError};
use nodus_wire::{Alpn, Blob, Client, ConnectError, Connection};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;

use crate::model::{Connection as LinkState, Update};
use translate::Translator;

/// The agent's socket when the console runs on the node.
pub const DEFAULT_SOCKET: &str = "/run/nodus/agent.sock";

/// How long one connection attempt may take before it counts as failed. QUIC's
/// own handshake timeout is the idle timeout (a minute), far too long to leave an
/// operator looking at "connecting".
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Seconds of telemetry history a console asks for: the Power chart's hour.
pub const BACKFILL_S: u32 = crate::model::MAX_SERIES_POINTS as u32;

/// Where a node's agent is.
#[derive(Debug, Clone)]
pub enum Endpoint {
    /// The agent's Unix socket on this machine.
    Local {
        /// The socket path.
        socket: PathBuf,
    },
    /// A node's QUIC endpoint.
    Remote(Box<Remote>),
}

/// A node reached over QUIC.
#[derive(Debug, Clone)]
pub struct Remote {
    /// The node, whose key the connection pins.
    pub node: NodeId,
    /// `host:port`, resolved at every attempt.
    pub addr: String,
    /// Our client endpoint (carries this console's key); shared by all tabs.
    pub client: Client,
    /// An owner-signed grant for our key, offered on `nodus/grant/1` before
    /// connecting (the postcard bytes of a `SignedGrant`).
    pub grant: Option<Arc<Vec<u8>>>,
}

impl Endpoint {
    /// A short name for tabs and messages.
    pub fn label(&self) -> String {
        match self {
            Endpoint::Local { socket } => socket.display().to_string(),
            Endpoint::Remote(r) => format!("{}@{}", r.node, r.addr),
        }
    }
}

/// Why a conversation could not start or went on no longer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// The node refused this console's key (unknown key, rejected grant, or a
    /// socket we may not open).
    #[error("Not authorized: {0}")]
    NotAuthorized(String),
    /// The node's key is not the pinned one.
    #[error("Node key mismatch: {0}")]
    KeyMismatch(String),
    /// The address does not resolve.
    #[error("Cannot resolve {addr}")]
    Resolve {
        /// The `host:port`.
        addr: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The node did not answer in time or the link failed.
    #[error("Cannot reach {endpoint}: {reason}")]
    Unreachable {
        /// The endpoint's label.
        endpoint: String,
        /// Why, in words.
        reason: String,
    },
    /// The conversation broke off.
    #[error("Link lost: {0}")]
    Lost(String),
    /// The agent broke the protocol.
    #[error("Protocol error: {0}")]
    Protocol(String),
}

impl SourceError {
    /// Whether retrying cannot help (the node said no, or is not who we think).
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            SourceError::NotAuthorized(_) | SourceError::KeyMismatch(_)
        )
    }

    fn of_connect(endpoint: &str, e: ConnectError) -> Self {
        match e {
            ConnectError::RefusedByServer { reason, .. } | ConnectError::Refused(reason) => {
                SourceError::NotAuthorized(if reason.is_empty() {
                    "the node does not know this key".into()
                } else {
                    reason
                })
            }
            ConnectError::HandshakeFailed { reason, .. } => SourceError::KeyMismatch(reason),
            other => SourceError::Unreachable {
                endpoint: endpoint.to_owned(),
                reason: error_chain(&other),
            },
        }
    }

    fn of_stream(e: StreamError) -> Self {
        if e.peer_error_code() == Some(nodus_wire::ErrorCode::Refused) {
            return SourceError::NotAuthorized(error_chain(&e));
        }
        SourceError::Lost(error_chain(&e))
    }

    fn of_unix(e: UnixError) -> Self {
        SourceError::Lost(error_chain(&e))
    }
}

/// `a: b: c` from an error and its sources.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// The receiving half of a conversation.
#[derive(Debug)]
pub enum Reader {
    /// A QUIC stream (the connection is kept alive by holding it).
    Quic(Box<(RecvFrames, Connection)>),
    /// The Unix socket.
    Local(FrameReader<OwnedReadHalf>),
}

impl Reader {
    /// The next message; `None` when the agent ended the stream cleanly.
    pub async fn recv(&mut self) -> Result<Option<ServerMsg>, SourceError> {
        match self {
            Reader::Quic(q) => q.0.recv().await.map_err(SourceError::of_stream),
            Reader::Local(r) => r
                .recv()
                .await
                .map_err(|e| SourceError::of_unix(UnixError::Framed(e))),
        }
    }
}

/// The sending half of a conversation.
#[derive(Debug)]
pub enum Writer {
    /// A QUIC stream.
    Quic(SendFrames),
    /// The Unix socket.
    Local(FrameWriter<OwnedWriteHalf>),
}

impl Writer {
    /// Sends one message.
    pub async fn send(&mut self, msg: &ClientMsg) -> Result<(), SourceError> {
        match self {
            Writer::Quic(w) => w.send(msg).await.map_err(SourceError::of_stream),
            Writer::Local(w) => w
                .send(msg)
                .await
                .map_err(|e| SourceError::of_unix(UnixError::Framed(e))),
        }
    }
}

/// One conversation with an agent, after [`Hello`] was sent.
#[derive(Debug)]
pub struct Conversation {
    /// Receiving half.
    pub reader: Reader,
    /// Sending half.
    pub writer: Writer,
}

/// The [`Hello`] this console sends.
pub fn hello(backfill_s: u32) -> Hello {
    Hello {
        version: wire::VERSION,
        capabilities: wire::capability::INVENTORY_REFRESH
            | wire::capability::STAKE
            | wire::capability::ACTIONS,
        backfill_s,
        client: concat!("nodus-console ", env!("CARGO_PKG_VERSION")).to_owned(),
    }
}

impl Conversation {
    /// Connects (offering the grant first, if any) and says `hello`, within
    /// [`CONNECT_TIMEOUT`].
    pub async fn open(endpoint: &Endpoint, hello: Hello) -> Result<Self, SourceError> {
        let label = endpoint.label();
        match tokio::time::timeout(CONNECT_TIMEOUT, Self::open_inner(endpoint, hello)).await {
            Ok(r) => r,
            Err(_) => Err(SourceError::Unreachable {
                endpoint: label,
                reason: format!("no answer within {} s", CONNECT_TIMEOUT.as_secs()),
            }),
        }
    }

    async fn open_inner(endpoint: &Endpoint, hello: Hello) -> Result<Self, SourceError> {
        let mut conv = match endpoint {
            Endpoint::Local { socket } => {
                let conn = LocalConnection::connect(socket)
                    .await
                    .map_err(|e| match &e {
                        UnixError::Socket { source, .. }
                            if source.kind() == std::io::ErrorKind::PermissionDenied =>
                        {
                            SourceError::NotAuthorized(format!(
                                "no permission to open {}",
                                socket.display()
                            ))
                        }
                        _ => SourceError::Unreachable {
                            endpoint: endpoint.label(),
                            reason: error_chain(&e),
                        },
                    })?;
                let (r, w) = conn.into_split();
                Conversation {
                    reader: Reader::Local(r),
                    writer: Writer::Local(w),
                }
            }
            Endpoint::Remote(remote) => {
                let addr = resolve(&remote.addr).await?;
                if let Some(grant) = &remote.grant {
                    offer_grant(remote, addr, grant).await?;
                }
                let conn = remote
                    .client
                    .connect(addr, *remote.node.key(), Alpn::Console)
                    .await
                    .map_err(|e| SourceError::of_connect(&endpoint.label(), e))?;
                let (send, recv) = conn.open_bi().await.map_err(SourceError::of_stream)?;
                Conversation {
                    reader: Reader::Quic(Box::new((recv, conn))),
                    writer: Writer::Quic(send),
                }
            }
        };
        conv.writer.send(&ClientMsg::Hello(hello)).await?;
        Ok(conv)
    }
}

async fn resolve(addr: &str) -> Result<std::net::SocketAddr, SourceError> {
    let mut addrs = tokio::net::lookup_host(addr)
        .await
        .map_err(|source| SourceError::Resolve {
            addr: addr.to_owned(),
            source,
        })?;
    addrs.next().ok_or_else(|| SourceError::Resolve {
        addr: addr.to_owned(),
        source: std::io::Error::new(std::io::ErrorKind::NotFound, "no address"),
    })
}

/// Presents our grant on `nodus/grant/1`.
async fn offer_grant(
    remote: &Remote,
    addr: std::net::SocketAddr,
    grant: &[u8],
) -> Result<(), SourceError> {
    let label = format!("{}@{}", remote.node, remote.addr);
    let conn = remote
        .client
        .connect(addr, *remote.node.key(), Alpn::Grant)
        .await
        .map_err(|e| SourceError::of_connect(&label, e))?;
    let (mut send, mut recv) = conn.open_bi().await.map_err(SourceError::of_stream)?;
    send.send(&GrantOffer {
        grant: Blob(grant.to_vec()),
    })
    .await
    .map_err(SourceError::of_stream)?;
    let answer: Option<GrantAnswer> = recv.recv().await.map_err(SourceError::of_stream)?;
    conn.close(nodus_wire::ErrorCode::Closed, "grant presented");
    match answer {
        Some(GrantAnswer::Accepted(_)) => Ok(()),
        Some(GrantAnswer::Rejected(why)) => {
            Err(SourceError::NotAuthorized(format!("grant rejected: {why}")))
        }
        None => Err(SourceError::Protocol(
            "no answer to the grant offer".to_owned(),
        )),
    }
}

/// What [`run`] sends: the tab index and the update.
pub type Tagged = (usize, Update);

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Keeps a conversation with one node going until `updates` closes: connects,
/// forwards updates tagged with `tab`, sends `requests`, and on a dropped link
/// marks the model stale and reconnects with `backoff`. A refusal is final: the
/// model shows it and the source stops.
pub async fn run(
    endpoint: Endpoint,
    tab: usize,
    updates: mpsc::Sender<Tagged>,
    mut requests: mpsc::Receiver<Request>,
    backoff: Backoff,
) {
    let mut attempt = 0u32;
    let mut dropped_at: Option<u64> = None;
    loop {
        match Conversation::open(&endpoint, hello(BACKFILL_S)).await {
            Ok(conv) => {
                attempt = 0;
                // Requests typed while the link was down are not sent later: a
                // reboot asked for minutes ago is not what anyone wants now.
                while requests.try_recv().is_ok() {}
                let end = serve(conv, tab, &updates, &mut requests).await;
                if updates.is_closed() {
                    return;
                }
                tracing::info!(endpoint = %endpoint.label(), error = %end, "console link lost");
                if end.is_final() {
                    let _ = updates
                        .send((tab, Update::Connection(LinkState::Refused(end.to_string()))))
                        .await;
                    return;
                }
                let since = unix_now();
                dropped_at = Some(since);
                if updates
                    .send((
                        tab,
                        Update::Connection(LinkState::Stale {
                            since_unix_s: since,
                        }),
                    ))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            Err(e) if e.is_final() => {
                tracing::info!(endpoint = %endpoint.label(), error = %e, "console refused");
                let _ = updates
                    .send((tab, Update::Connection(LinkState::Refused(e.to_string()))))
                    .await;
                return;
            }
            Err(e) => {
                tracing::debug!(endpoint = %endpoint.label(), error = %e, attempt, "connect failed");
                let state = match dropped_at {
                    Some(since) => LinkState::Stale {
                        since_unix_s: since,
                    },
                    None => LinkState::Connecting,
                };
                if attempt == 0
                    && updates
                        .send((tab, Update::Connection(state)))
                        .await
                        .is_err()
                {
                    return;
                }
                let wait = backoff.delay(attempt, &mut rand::thread_rng());
                attempt = attempt.saturating_add(1);
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = updates.closed() => return,
                }
            }
        }
    }
}

/// Runs one live conversation; returns why it ended.
async fn serve(
    conv: Conversation,
    tab: usize,
    updates: &mpsc::Sender<Tagged>,
    requests: &mut mpsc::Receiver<Request>,
) -> SourceError {
    let Conversation {
        mut reader,
        mut writer,
    } = conv;
    // The reader runs in its own task so a request is never sent while a frame
    // is half read (and the other way round).
    let (msg_tx, mut msg_rx) = mpsc::channel::<Result<ServerMsg, SourceError>>(256);
    let reader_task = tokio::spawn(async move {
        loop {
            let item = match reader.recv().await {
                Ok(Some(m)) => Ok(m),
                Ok(None) => Err(SourceError::Lost("the agent closed the stream".into())),
                Err(e) => Err(e),
            };
            let end = item.is_err();
            if msg_tx.send(item).await.is_err() || end {
                return;
            }
        }
    });
    let mut translator = Translator::new();
    let mut requests_open = true;
    let end = loop {
        tokio::select! {
            msg = msg_rx.recv() => {
                let msg = match msg {
                    Some(Ok(m)) => m,
                    Some(Err(e)) => break e,
                    None => break SourceError::Lost("reader stopped".into()),
                };
                let was_live = translator.is_live();
                let out = match translator.feed(msg) {
                    Ok(out) => out,
                    Err(translate::TranslateError::Goodbye(why)) => {
                        break SourceError::Lost(format!("the agent said goodbye: {why}"));
                    }
                    Err(e) => break SourceError::Protocol(e.to_string()),
                };
                for u in out {
                    if updates.send((tab, u)).await.is_err() {
                        break;
                    }
                }
                if !was_live
                    && translator.is_live()
                    && updates.send((tab, Update::Connection(LinkState::Connected))).await.is_err()
                {
                    break SourceError::Lost("console closed".into());
                }
            }
            req = requests.recv(), if requests_open => match req {
                Some(req) => {
                    if let Err(e) = writer.send(&ClientMsg::Request(req)).await {
                        break e;
                    }
                }
                None => requests_open = false,
            },
            () = updates.closed() => break SourceError::Lost("console closed".into()),
        }
    };
    reader_task.abort();
    end
}
