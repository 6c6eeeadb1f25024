//! One console conversation, the same over QUIC and the Unix socket.
//!
//! The session waits for `Hello`, answers `Welcome`, sends the snapshot and the
//! history backfill, then forwards the hub's framed deltas while it runs the
//! client's requests. Requests run in their own tasks so a slow wipe never stalls
//! the live feed; their answers join the outgoing stream in completion order.
//! A session that falls too far behind the feed is sent a fresh snapshot rather
//! than being dropped.

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use nodus_wire::console::{ClientMsg, Hello, Level, ServerMsg, VERSION, Welcome, capability};
use tokio::sync::{broadcast::error::RecvError, mpsc};

use super::{
    actions::{Actions, Peer},
    hub::Hub,
};

/// Longest client name shown in the event log.
const MAX_CLIENT_NAME: usize = 64;

/// The client's self-chosen name, made safe to show on other consoles: control
/// characters (escape sequences) become `?` and it is cut to
/// [`MAX_CLIENT_NAME`] characters.
fn printable(client: &str) -> String {
    let mut out: String = client
        .chars()
        .take(MAX_CLIENT_NAME)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if client.chars().count() > MAX_CLIENT_NAME {
        out.push('…');
    }
    out
}

/// How long a client has to say `Hello`.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// Requests one session may have running at once; more wait in the socket.
const MAX_INFLIGHT: usize = 8;

/// Why a session ended abnormally.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The transport failed.
    #[error("Transport failed: {0}")]
    Transport(String),
    /// The client sent something other than `Hello` first, or timed out.
    #[error("Client did not say hello: {0}")]
    NoHello(String),
    /// The client speaks an incompatible version.
    #[error("Client speaks console protocol version {0}, this agent {VERSION}")]
    Version(u16),
}

/// The outgoing half of a conversation.
pub trait Outgoing: Send {
    /// Sends one message.
    fn send(
        &mut self,
        msg: &ServerMsg,
    ) -> impl std::future::Future<Output = Result<(), SessionError>> + Send;
    /// Sends one already-encoded frame.
    fn send_frame(
        &mut self,
        frame: &Bytes,
    ) -> impl std::future::Future<Output = Result<(), SessionError>> + Send;
}

/// The incoming half of a conversation.
pub trait Incoming: Send {
    /// The next message; `None` when the client ended the conversation.
    fn recv(
        &mut self,
    ) -> impl std::future::Future<Output = Result<Option<ClientMsg>, SessionError>> + Send;
}

fn transport(e: impl std::fmt::Display) -> SessionError {
    SessionError::Transport(e.to_string())
}

impl Outgoing for nodus_wire::quic::SendFrames {
    async fn send(&mut self, msg: &ServerMsg) -> Result<(), SessionError> {
        nodus_wire::quic::SendFrames::send(self, msg)
            .await
            .map_err(transport)
    }
    async fn send_frame(&mut self, frame: &Bytes) -> Result<(), SessionError> {
        self.send_encoded(frame.clone()).await.map_err(transport)
    }
}

impl Incoming for nodus_wire::quic::RecvFrames {
    async fn recv(&mut self) -> Result<Option<ClientMsg>, SessionError> {
        nodus_wire::quic::RecvFrames::recv(self)
            .await
            .map_err(transport)
    }
}

impl<W: tokio::io::AsyncWrite + Unpin + Send> Outgoing for nodus_wire::framed::FrameWriter<W> {
    async fn send(&mut self, msg: &ServerMsg) -> Result<(), SessionError> {
        nodus_wire::framed::FrameWriter::send(self, msg)
            .await
            .map_err(transport)
    }
    async fn send_frame(&mut self, frame: &Bytes) -> Result<(), SessionError> {
        self.send_encoded(frame).await.map_err(transport)
    }
}

impl<R: tokio::io::AsyncRead + Unpin + Send> Incoming for nodus_wire::framed::FrameReader<R> {
    async fn recv(&mut self) -> Result<Option<ClientMsg>, SessionError> {
        nodus_wire::framed::FrameReader::recv(self)
            .await
            .map_err(transport)
    }
}

/// What a session needs from the daemon.
#[derive(Debug, Clone)]
pub struct Context {
    /// Shared state.
    pub hub: Arc<Hub>,
    /// Action runner.
    pub actions: Arc<Actions>,
    /// The node's short id.
    pub confirm_token: String,
    /// Stops every session on shutdown.
    pub stop: tokio::sync::watch::Receiver<bool>,
}

async fn send_snapshot<O: Outgoing>(
    out: &mut O,
    hub: &Hub,
    backfill_s: u32,
) -> Result<(), SessionError> {
    let (snap, series) = hub.snapshot(backfill_s);
    out.send(&ServerMsg::Snapshot(Box::new(snap))).await?;
    for s in series {
        out.send(&ServerMsg::Series(s)).await?;
    }
    Ok(())
}

/// Runs one conversation until the client leaves, the transport fails, or the
/// daemon stops.
pub async fn run<O: Outgoing, I: Incoming + 'static>(
    ctx: Context,
    peer: Peer,
    mut out: O,
    mut inc: I,
) -> Result<(), SessionError> {
    let hello: Hello = match tokio::time::timeout(HELLO_TIMEOUT, inc.recv()).await {
        Err(_) => return Err(SessionError::NoHello("timed out".into())),
        Ok(Ok(Some(ClientMsg::Hello(h)))) => h,
        Ok(Ok(Some(other))) => {
            let _ = out
                .send(&ServerMsg::Goodbye("expected Hello first".into()))
                .await;
            return Err(SessionError::NoHello(format!("{other:?}")));
        }
        Ok(Ok(None)) => return Ok(()),
        Ok(Err(e)) => return Err(e),
    };
    if hello.version != VERSION {
        let _ = out
            .send(&ServerMsg::Goodbye(format!(
                "this agent speaks console protocol {VERSION}, not {}",
                hello.version
            )))
            .await;
        return Err(SessionError::Version(hello.version));
    }
    // Who watches or operates the node is part of its history: the event reaches
    // every console, the new one included (it is in the snapshot), and the hub
    // writes it to the log, once.
    ctx.hub.event(
        Level::Info,
        "console",
        format!(
            "{} attached as {} ({})",
            peer.label,
            peer.role,
            printable(&hello.client)
        ),
    );
    let capabilities = capability::INVENTORY_REFRESH
        | capability::STAKE
        | if peer.role.covers(nodus_identity::Role::Operator) {
            capability::ACTIONS
        } else {
            0
        };
    out.send(&ServerMsg::Welcome(Welcome {
        version: VERSION,
        capabilities,
        role: peer.role,
        node_id: ctx.hub.node_id(),
        confirm_token: ctx.confirm_token.clone(),
    }))
    .await?;
    let mut feed = ctx.hub.subscribe();
    send_snapshot(&mut out, &ctx.hub, hello.backfill_s).await?;

    // Requests are read on their own task, so a half-read frame is never lost
    // to a `select!` that picked another branch.
    let (req_tx, mut req_rx) = mpsc::channel(MAX_INFLIGHT);
    let reader = tokio::spawn(async move {
        loop {
            match inc.recv().await {
                Ok(Some(ClientMsg::Request(r))) => {
                    if req_tx.send(Ok(r)).await.is_err() {
                        return;
                    }
                }
                Ok(Some(ClientMsg::Hello(_))) => {}
                Ok(None) => return,
                Err(e) => {
                    let _ = req_tx.send(Err(e)).await;
                    return;
                }
            }
        }
    });
    let (resp_tx, mut resp_rx) = mpsc::channel(MAX_INFLIGHT);
    let mut stop = ctx.stop.clone();
    let result = loop {
        tokio::select! {
            delta = feed.recv() => match delta {
                Ok(frame) => {
                    if let Err(e) = out.send_frame(&frame).await {
                        break Err(e);
                    }
                }
                Err(RecvError::Lagged(n)) => {
                    tracing::debug!(peer = %peer.label, missed = n, "slow console; resending snapshot");
                    feed = ctx.hub.subscribe();
                    if let Err(e) = send_snapshot(&mut out, &ctx.hub, hello.backfill_s).await {
                        break Err(e);
                    }
                }
                Err(RecvError::Closed) => break Ok(()),
            },
            req = req_rx.recv() => match req {
                Some(Ok(req)) => {
                    let actions = ctx.actions.clone();
                    let peer = peer.clone();
                    let tx = resp_tx.clone();
                    tokio::spawn(async move {
                        let resp = actions.handle(&peer, req).await;
                        let _ = tx.send(resp).await;
                    });
                }
                Some(Err(e)) => break Err(e),
                None => break Ok(()),
            },
            Some(resp) = resp_rx.recv() => {
                if let Err(e) = out.send(&ServerMsg::Response(resp)).await {
                    break Err(e);
                }
            }
            () = super::stopped(&mut stop) => {
                let _ = out.send(&ServerMsg::Goodbye("agent shutting down".into())).await;
                break Ok(());
            }
        }
    };
    reader.abort();
    // Answers of requests still running are delivered if the client is still
    // there: an action that ran must not lose its answer to a closing feed.
    drop(resp_tx);
    while let Ok(Some(resp)) = tokio::time::timeout(Duration::from_secs(2), resp_rx.recv()).await {
        if out.send(&ServerMsg::Response(resp)).await.is_err() {
            break;
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_names_lose_escape_sequences_and_length() {
        assert_eq!(printable("nodus-console 0.1.0"), "nodus-console 0.1.0");
        assert_eq!(printable("evil\x1b[2J\x07"), "evil?[2J?");
        let long = "x".repeat(200);
        let shown = printable(&long);
        assert_eq!(shown.chars().count(), MAX_CLIENT_NAME + 1);
        assert!(shown.ends_with('…'));
    }
}
