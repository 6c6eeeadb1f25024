//! The client endpoint: connects to a pinned server key on one ALPN.

use std::{net::SocketAddr, sync::Arc};

use nodus_identity::{PublicKey, SecretKey};

use super::{Connection, ErrorCode, RecvFrames, StreamError, transport_config};
use crate::{
    Alpn, DEFAULT_MAX_FRAME_LEN,
    message::Welcome,
    tls::{self, LocalIdentity, TlsError},
};

/// QUIC's transport error codes 0x100–0x1ff carry a TLS alert (RFC 9001 §4.8).
const CRYPTO_ERROR_BASE: u64 = 0x100;

/// Errors from connecting.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The TLS configuration could not be built from the key.
    #[error("Cannot build the client's TLS configuration")]
    Tls(#[from] TlsError),
    /// Binding the local UDP socket failed.
    #[error("Cannot bind local UDP socket")]
    Bind(#[source] std::io::Error),
    /// quinn refused to start the connection (bad address, endpoint closed).
    #[error("Cannot start connection")]
    Start(#[from] quinn::ConnectError),
    /// The server aborted the TLS handshake: it refused our key
    /// (`access_denied`, alert 49) or does not speak the ALPN (alert 120).
    #[error("Server refused the TLS handshake (alert {alert}): {reason}")]
    RefusedByServer {
        /// The TLS alert number.
        alert: u8,
        /// The server's reason text.
        reason: String,
    },
    /// We aborted the TLS handshake: typically the server's key is not the pinned
    /// one.
    #[error("TLS handshake failed (alert {alert}): {reason}")]
    HandshakeFailed {
        /// The TLS alert number we sent.
        alert: u8,
        /// What our side found wrong.
        reason: String,
    },
    /// The handshake succeeded but the server's authorizer refused our key for
    /// this protocol ([`ErrorCode::Refused`]).
    #[error("Server refused this key for the protocol: {0}")]
    Refused(String),
    /// The connection failed for another reason (timeout, reset, unreachable).
    #[error("Connection failed")]
    Connection(#[source] quinn::ConnectionError),
    /// The server did not send a valid welcome.
    #[error("Server sent no valid welcome")]
    Welcome(#[source] StreamError),
}

impl ConnectError {
    /// Whether trying again later may succeed: network trouble is transient, a
    /// refusal or a key mismatch is not.
    pub fn is_transient(&self) -> bool {
        matches!(self, ConnectError::Connection(_) | ConnectError::Welcome(_))
    }

    fn from_connection(e: quinn::ConnectionError) -> Self {
        match &e {
            quinn::ConnectionError::ConnectionClosed(close) => {
                let code = u64::from(close.error_code);
                if let Some(alert) = alert_of(code) {
                    return ConnectError::RefusedByServer {
                        alert,
                        reason: String::from_utf8_lossy(&close.reason).into_owned(),
                    };
                }
            }
            quinn::ConnectionError::TransportError(te) => {
                if let Some(alert) = alert_of(u64::from(te.code)) {
                    return ConnectError::HandshakeFailed {
                        alert,
                        reason: te.reason.clone(),
                    };
                }
            }
            quinn::ConnectionError::ApplicationClosed(close)
                if ErrorCode::from_varint(close.error_code) == Some(ErrorCode::Refused) =>
            {
                return ConnectError::Refused(String::from_utf8_lossy(&close.reason).into_owned());
            }
            _ => {}
        }
        ConnectError::Connection(e)
    }
}

/// The TLS alert carried by a QUIC crypto error code.
fn alert_of(code: u64) -> Option<u8> {
    code.checked_sub(CRYPTO_ERROR_BASE)
        .and_then(|a| u8::try_from(a).ok())
}

/// A client endpoint: one UDP socket and our key, for any number of connections.
#[derive(Debug, Clone)]
pub struct Client {
    endpoint: quinn::Endpoint,
    identity: LocalIdentity,
    max_frame_len: usize,
}

impl Client {
    /// A client on an ephemeral UDP port of `0.0.0.0`. Must be called inside a
    /// tokio runtime.
    pub fn new(secret: &SecretKey) -> Result<Self, ConnectError> {
        Self::bind(secret, SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// A client on a chosen local address (use `[::]:0` to reach IPv6 servers).
    pub fn bind(secret: &SecretKey, local: SocketAddr) -> Result<Self, ConnectError> {
        let endpoint = quinn::Endpoint::client(local).map_err(ConnectError::Bind)?;
        Ok(Self {
            endpoint,
            identity: LocalIdentity::new(secret)?,
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
        })
    }

    /// Sets the largest frame body accepted on connections made from now on.
    pub fn set_max_frame_len(&mut self, max: usize) {
        self.max_frame_len = max;
    }

    /// Our public key.
    pub fn public_key(&self) -> PublicKey {
        self.identity.public()
    }

    /// Connects to the server at `addr`, which must present exactly `server_key`,
    /// speaking `alpn`.
    ///
    /// Returns only once the server has authorized us for `alpn` (its welcome has
    /// arrived), so a refusal is always an error here, never a connection that
    /// dies a moment later.
    pub async fn connect(
        &self,
        addr: SocketAddr,
        server_key: PublicKey,
        alpn: Alpn,
    ) -> Result<Connection, ConnectError> {
        let tls =
            tls::client_tls_config(&self.identity, server_key, vec![alpn.as_bytes().to_vec()])?;
        let crypto =
            quinn::crypto::rustls::QuicClientConfig::try_from(tls).map_err(TlsError::from)?;
        let mut config = quinn::ClientConfig::new(Arc::new(crypto));
        config.transport_config(transport_config());
        let conn = self
            .endpoint
            .connect_with(config, addr, tls::SERVER_NAME)?
            .await
            .map_err(ConnectError::from_connection)?;
        // Defence in depth: the verifier already compared the key with the pin.
        let peer = match tls::verified_peer(&conn) {
            Some(peer) if peer == server_key => peer,
            _ => {
                conn.close(ErrorCode::Refused.to_varint(), b"unexpected server key");
                return Err(ConnectError::HandshakeFailed {
                    alert: 42,
                    reason: "server key is not the pinned key".into(),
                });
            }
        };
        let role = match conn.accept_uni().await {
            Ok(recv) => {
                // A welcome is a few bytes; refuse anything bigger.
                let mut frames = RecvFrames::new(recv, conn.clone(), 64);
                match frames.recv::<Welcome>().await {
                    Ok(Some(w)) => w.role,
                    Ok(None) => return Err(ConnectError::Welcome(StreamError::Ended)),
                    Err(StreamError::Connection(e)) => {
                        return Err(ConnectError::from_connection(e));
                    }
                    Err(StreamError::Read(quinn::ReadError::ConnectionLost(e))) => {
                        return Err(ConnectError::from_connection(e));
                    }
                    Err(e) => return Err(ConnectError::Welcome(e)),
                }
            }
            Err(e) => return Err(ConnectError::from_connection(e)),
        };
        Ok(Connection::new(conn, peer, alpn, role, self.max_frame_len))
    }

    /// Closes every connection of this client with [`ErrorCode::Closed`].
    pub fn close(&self) {
        self.endpoint
            .close(ErrorCode::Closed.to_varint(), b"client shutting down");
    }

    /// The underlying quinn endpoint.
    pub fn quinn(&self) -> &quinn::Endpoint {
        &self.endpoint
    }
}
