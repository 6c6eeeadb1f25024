//! The server endpoint: authorizes clients and routes connections by ALPN.

use std::{collections::BTreeMap, future::Future, net::SocketAddr, pin::Pin, sync::Arc};

use nodus_identity::SecretKey;

use super::{Connection, ErrorCode, transport_config};
use crate::{
    Alpn, DEFAULT_MAX_FRAME_LEN,
    message::Welcome,
    tls::{self, Authorizer, LocalIdentity, TlsError},
};

/// The server's UDP receive buffer, asked of the kernel (which caps it at
/// `net.core.rmem_max`).
///
/// When a node restarts, every console and agent reconnects within the same
/// second. Linux's default (`rmem_default`, 208 KiB) holds only about 90 padded
/// 1200-byte Initial packets; each one dropped costs its client a full probe
/// timeout (about 1 s) before it retries. 2 MiB absorbs about a thousand.
pub const SERVER_RECV_BUFFER: usize = 2 << 20;

/// Errors from starting a server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The TLS configuration could not be built from the key.
    #[error("Cannot build the server's TLS configuration")]
    Tls(#[from] TlsError),
    /// No handler was registered: the server would refuse everyone.
    #[error("No protocol handler registered")]
    NoRoutes,
    /// Binding the UDP socket failed.
    #[error("Cannot bind UDP socket {addr}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

type BoxFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;
type Handler = Arc<dyn Fn(Connection) -> BoxFuture + Send + Sync + 'static>;

/// Builds a [`Server`]: its key, its authorizer, one handler per ALPN.
pub struct ServerBuilder {
    identity: Result<LocalIdentity, TlsError>,
    authorizer: Arc<dyn Authorizer>,
    routes: BTreeMap<Alpn, Handler>,
    max_frame_len: usize,
}

impl std::fmt::Debug for ServerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerBuilder")
            .field("alpns", &self.routes.keys().collect::<Vec<_>>())
            .field("max_frame_len", &self.max_frame_len)
            .finish_non_exhaustive()
    }
}

impl ServerBuilder {
    /// A server presenting `secret`'s public key and admitting whom `authorizer`
    /// accepts.
    pub fn new(secret: &SecretKey, authorizer: Arc<dyn Authorizer>) -> Self {
        Self {
            identity: LocalIdentity::new(secret),
            authorizer,
            routes: BTreeMap::new(),
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
        }
    }

    /// Serves `alpn`: each authorized connection that negotiated it is handed to
    /// `handler` in its own task. Registering an ALPN twice replaces the handler.
    pub fn route<F, Fut>(mut self, alpn: Alpn, handler: F) -> Self
    where
        F: Fn(Connection) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let handler: Handler = Arc::new(move |conn| Box::pin(handler(conn)));
        self.routes.insert(alpn, handler);
        self
    }

    /// The largest frame body accepted (default [`DEFAULT_MAX_FRAME_LEN`]).
    pub fn max_frame_len(mut self, max: usize) -> Self {
        self.max_frame_len = max;
        self
    }

    /// Binds the UDP socket and starts accepting in a background task. Must be
    /// called inside a tokio runtime.
    pub fn bind(self, addr: SocketAddr) -> Result<Server, ServerError> {
        if self.routes.is_empty() {
            return Err(ServerError::NoRoutes);
        }
        let identity = self.identity?;
        let alpns: Vec<Alpn> = self.routes.keys().copied().collect();
        let crypto = tls::quic_server_config(&identity, self.authorizer.clone(), &alpns)?;
        let mut config = quinn::ServerConfig::with_crypto(crypto);
        config.transport_config(transport_config());
        let bind_err = |source| ServerError::Bind { addr, source };
        let socket = std::net::UdpSocket::bind(addr).map_err(bind_err)?;
        if let Err(error) = nix::sys::socket::setsockopt(
            &socket,
            nix::sys::socket::sockopt::RcvBuf,
            &SERVER_RECV_BUFFER,
        ) {
            tracing::warn!(%error, "cannot enlarge the UDP receive buffer");
        }
        let endpoint = quinn::Endpoint::new(
            quinn::EndpointConfig::default(),
            Some(config),
            socket,
            Arc::new(quinn::TokioRuntime),
        )
        .map_err(bind_err)?;
        let local_addr = endpoint.local_addr().map_err(bind_err)?;
        let shared = Arc::new(Shared {
            authorizer: self.authorizer,
            routes: self.routes,
            max_frame_len: self.max_frame_len,
        });
        let task = tokio::spawn(accept_loop(endpoint.clone(), shared));
        Ok(Server {
            endpoint,
            local_addr,
            public: identity.public(),
            task,
        })
    }
}

struct Shared {
    authorizer: Arc<dyn Authorizer>,
    routes: BTreeMap<Alpn, Handler>,
    max_frame_len: usize,
}

/// A running server endpoint. Dropping it closes the endpoint and every
/// connection on it.
#[derive(Debug)]
pub struct Server {
    endpoint: quinn::Endpoint,
    local_addr: SocketAddr,
    public: nodus_identity::PublicKey,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// The bound UDP address (with the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The key this server presents; clients pin it.
    pub fn public_key(&self) -> nodus_identity::PublicKey {
        self.public
    }

    /// Closes every connection with [`ErrorCode::Closed`] and stops accepting.
    pub fn close(&self) {
        self.endpoint
            .close(ErrorCode::Closed.to_varint(), b"server shutting down");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.close();
        self.task.abort();
    }
}

async fn accept_loop(endpoint: quinn::Endpoint, shared: Arc<Shared>) {
    while let Some(incoming) = endpoint.accept().await {
        tokio::spawn(handle_incoming(incoming, shared.clone()));
    }
}

/// One connection from first packet to handler: handshake (where the TLS verifier
/// already asked the authorizer about the negotiated ALPN), the same question again
/// (defence in depth, and a grant revoked in between), welcome, handler.
async fn handle_incoming(incoming: quinn::Incoming, shared: Arc<Shared>) {
    let remote = incoming.remote_address();
    let conn = match incoming.await {
        Ok(conn) => conn,
        Err(error) => {
            tracing::debug!(%remote, %error, "handshake failed");
            return;
        }
    };
    let (Some(peer), Some(alpn)) = (
        tls::verified_peer(&conn),
        tls::negotiated_alpn(&conn).and_then(|id| Alpn::from_bytes(&id).ok()),
    ) else {
        // rustls only completes a handshake with a verified raw key and an ALPN
        // from our list, so this is unreachable unless that contract changes.
        conn.close(ErrorCode::Internal.to_varint(), b"no verified key or ALPN");
        return;
    };
    let (Some(handler), role) = (
        shared.routes.get(&alpn).cloned(),
        shared.authorizer.authorize(&peer, alpn),
    ) else {
        conn.close(ErrorCode::Internal.to_varint(), b"no handler");
        return;
    };
    let role = match role {
        Ok(role) => role,
        Err(refusal) => {
            tracing::info!(%remote, ?peer, %alpn, %refusal, "refused client after handshake");
            conn.close(
                ErrorCode::Refused.to_varint(),
                refusal.to_string().as_bytes(),
            );
            return;
        }
    };
    let conn = Connection::new(conn, peer, alpn, role, shared.max_frame_len);
    let welcome = async {
        let mut s = conn.open_push_stream().await?;
        s.send(&Welcome { role }).await?;
        s.finish()
    };
    if let Err(error) = welcome.await {
        tracing::debug!(%remote, %error, "client left before the welcome");
        return;
    }
    tracing::debug!(%remote, ?peer, %alpn, %role, "client connected");
    handler(conn).await;
}
