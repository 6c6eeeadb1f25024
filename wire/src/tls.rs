//! TLS 1.3 with raw ed25519 public keys (RFC 7250) for QUIC, on rustls.
//!
//! Each side presents its bare `SubjectPublicKeyInfo` instead of an X.509
//! certificate: the key *is* the identity, so there is no CA, no expiry and no name
//! to check, only "is this the key I expect" (client side, a pin) and "is this key
//! allowed in" (server side, an [`Authorizer`]).
//!
//! Hardening beyond rustls' defaults, each for a reason:
//!
//! - TLS 1.3 only (QUIC requires it anyway).
//! - Only the ed25519 signature scheme is offered or accepted.
//! - No session resumption and no 0-RTT: a resumed TLS 1.3 session skips the
//!   certificate exchange, so a key revoked since the first connection would get in
//!   without the authorizer being asked again; 0-RTT data is also replayable.
//! - The server's verifier asks the authorizer *during* the handshake, for the ALPN
//!   that the handshake negotiates, so a key refused for that protocol never
//!   completes one (see [`Authorizer`] and [`quic_server_config`]).

pub mod client_hello;
mod per_alpn;

use std::sync::Arc;

use nodus_identity::{PublicKey, SecretKey};
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme,
    client::{
        AlwaysResolvesClientRawPublicKeys, Resumption,
        danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    },
    crypto::CryptoProvider,
    pki_types::{CertificateDer, PrivatePkcs8KeyDer, ServerName, UnixTime},
    server::{
        AlwaysResolvesServerRawPublicKeys, NoServerSessionStorage,
        danger::{ClientCertVerified, ClientCertVerifier},
    },
    sign::CertifiedKey,
};

use crate::{Alpn, Role};

/// The server name the client sends. Peers are identified by key, not by name, and
/// a fixed name keeps the node id out of the clear-text ClientHello.
pub const SERVER_NAME: &str = "nodus";

/// Errors from building TLS configurations.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// rustls refused the key or the protocol settings.
    #[error("TLS configuration refused")]
    Rustls(#[from] rustls::Error),
    /// The rustls configuration lacks the cipher suite QUIC needs for Initial packets.
    #[error("TLS configuration has no QUIC initial cipher suite")]
    Quic(#[from] quinn::crypto::rustls::NoInitialCipherSuite),
}

/// Why an [`Authorizer`] refused a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// The key is not known to this node.
    #[error("Unknown key")]
    UnknownKey,
    /// The key was known but its grant was revoked or has expired.
    #[error("Key revoked or grant expired")]
    Revoked,
    /// The key is known, but not for this protocol.
    #[error("Key not allowed on this protocol")]
    WrongProtocol,
}

/// Decides whether a client key may connect, and with which role.
///
/// The server calls it twice per connection:
///
/// 1. In the TLS handshake, from the client-certificate verifier, for the ALPN the
///    handshake will negotiate. rustls does not tell a verifier which ALPN it
///    chose, so the server reads the client's ALPN list from the ClientHello first
///    ([`client_hello`]) and runs the handshake with a configuration that serves
///    only that protocol and whose verifier asks about exactly it (see
///    [`quic_server_config`]). A refusal fails the handshake with a TLS
///    `access_denied` alert (49): no connection ever exists. This holds on an
///    endpoint that also serves a protocol open to every key, such as
///    [`Alpn::Grant`].
/// 2. Right after the handshake, with the negotiated ALPN, as defence in depth and
///    to pick up a grant revoked in between. A refusal closes the connection with
///    [`ErrorCode::Refused`](crate::quic::ErrorCode::Refused) before any handler
///    sees it; the returned role is sent to the client and exposed on the
///    connection.
///
/// Only a ClientHello the server cannot read (malformed, over
/// [`client_hello::MAX_CLIENT_HELLO_LEN`], or offering none of the served
/// protocols) falls back to a configuration whose verifier admits a key accepted
/// for **any** served protocol; such a hello either fails in rustls as well, or
/// meets step 2.
///
/// It runs on QUIC's I/O path: keep it fast and non-blocking (an in-memory lookup).
pub trait Authorizer: Send + Sync + 'static {
    /// Authorizes `peer` for `alpn`.
    fn authorize(&self, peer: &PublicKey, alpn: Alpn) -> Result<Role, Refusal>;
}

impl<F> Authorizer for F
where
    F: Fn(&PublicKey, Alpn) -> Result<Role, Refusal> + Send + Sync + 'static,
{
    fn authorize(&self, peer: &PublicKey, alpn: Alpn) -> Result<Role, Refusal> {
        self(peer, alpn)
    }
}

/// The crypto provider: rustls' *ring* backend.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Our key as a rustls raw-public-key "certificate" plus signer.
fn certified_key(secret: &SecretKey) -> Result<Arc<CertifiedKey>, TlsError> {
    let pkcs8 = secret.to_pkcs8_der();
    // Borrowing the zeroizing buffer keeps the seed out of non-wiped copies here.
    let der = PrivatePkcs8KeyDer::from(pkcs8.as_slice());
    let signer = rustls::crypto::ring::sign::any_eddsa_type(&der)?;
    let spki = CertificateDer::from(secret.public().to_spki_der().to_vec());
    Ok(Arc::new(CertifiedKey::new(vec![spki], signer)))
}

/// Parses the peer's raw-public-key "certificate".
fn peer_key(end_entity: &CertificateDer<'_>) -> Result<PublicKey, rustls::Error> {
    PublicKey::from_spki_der(end_entity.as_ref())
        .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))
}

/// Checks a TLS 1.3 `CertificateVerify` made with the key in `cert`.
fn verify_tls13(
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
) -> Result<HandshakeSignatureValid, rustls::Error> {
    if dss.scheme != SignatureScheme::ED25519 {
        return Err(rustls::Error::PeerMisbehaved(
            rustls::PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme,
        ));
    }
    let key = peer_key(cert)?;
    let sig = <&[u8; 64]>::try_from(dss.signature())
        .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadSignature))?;
    if key.verify_raw(message, &nodus_identity::Signature::from_bytes(sig)) {
        Ok(HandshakeSignatureValid::assertion())
    } else {
        Err(rustls::Error::InvalidCertificate(
            CertificateError::BadSignature,
        ))
    }
}

fn tls12_refused() -> rustls::Error {
    rustls::Error::PeerIncompatible(rustls::PeerIncompatible::Tls12NotOffered)
}

/// The client's check of the server: exactly the pinned key.
#[derive(Debug)]
struct PinnedServer(PublicKey);

/// The server presented a key other than the pinned one.
#[derive(Debug, thiserror::Error)]
#[error("Server key {found:?} is not the pinned key {pinned:?}")]
struct PinMismatch {
    pinned: PublicKey,
    found: PublicKey,
}

impl ServerCertVerifier for PinnedServer {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let found = peer_key(end_entity)?;
        if found == self.0 {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(CertificateError::Other(
                rustls::OtherError(Arc::new(PinMismatch {
                    pinned: self.0,
                    found,
                })),
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(tls12_refused())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }

    fn requires_raw_public_keys(&self) -> bool {
        true
    }
}

/// The server's check of clients: ask the authorizer.
struct AuthorizingVerifier {
    authorizer: Arc<dyn Authorizer>,
    alpns: Vec<Alpn>,
}

impl std::fmt::Debug for AuthorizingVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthorizingVerifier")
            .field("alpns", &self.alpns)
            .finish_non_exhaustive()
    }
}

impl ClientCertVerifier for AuthorizingVerifier {
    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let key = peer_key(end_entity)?;
        let admitted = self
            .alpns
            .iter()
            .any(|&alpn| self.authorizer.authorize(&key, alpn).is_ok());
        if admitted {
            Ok(ClientCertVerified::assertion())
        } else {
            tracing::info!(peer = ?key, "refused client key in the TLS handshake");
            // Sent to the client as TLS alert 49, access_denied.
            Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(tls12_refused())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }

    fn requires_raw_public_keys(&self) -> bool {
        true
    }
}

/// A signer for our own key, built once and shared by every connection.
#[derive(Clone)]
pub struct LocalIdentity {
    key: Arc<CertifiedKey>,
    public: PublicKey,
}

impl std::fmt::Debug for LocalIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LocalIdentity({:?})", self.public)
    }
}

impl LocalIdentity {
    /// Loads `secret` into a TLS signer.
    pub fn new(secret: &SecretKey) -> Result<Self, TlsError> {
        Ok(Self {
            key: certified_key(secret)?,
            public: secret.public(),
        })
    }

    /// Our public key.
    pub fn public(&self) -> PublicKey {
        self.public
    }
}

/// The rustls client configuration: our key, the pinned server key, and the ALPN
/// identifiers to offer (normally exactly one [`Alpn`]; raw bytes are accepted so
/// tests can offer a protocol Nodus does not know).
pub fn client_tls_config(
    identity: &LocalIdentity,
    server: PublicKey,
    alpn_protocols: Vec<Vec<u8>>,
) -> Result<rustls::ClientConfig, TlsError> {
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PinnedServer(server)))
        .with_client_cert_resolver(Arc::new(AlwaysResolvesClientRawPublicKeys::new(
            identity.key.clone(),
        )));
    config.alpn_protocols = alpn_protocols;
    config.resumption = Resumption::disabled();
    config.enable_early_data = false;
    Ok(config)
}

/// The rustls server configuration: our key, the authorizer, and the ALPNs served.
///
/// Its verifier admits a key that `authorizer` accepts for any of `alpns`: this is
/// the fallback configuration of [`quic_server_config`], which is what servers use.
pub fn server_tls_config(
    identity: &LocalIdentity,
    authorizer: Arc<dyn Authorizer>,
    alpns: &[Alpn],
) -> Result<rustls::ServerConfig, TlsError> {
    let verifier = AuthorizingVerifier {
        authorizer,
        alpns: alpns.to_vec(),
    };
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(Arc::new(verifier))
        .with_cert_resolver(Arc::new(AlwaysResolvesServerRawPublicKeys::new(
            identity.key.clone(),
        )));
    config.alpn_protocols = alpns.iter().map(|a| a.as_bytes().to_vec()).collect();
    // QUIC allows 0 or u32::MAX here; 0 refuses early data.
    config.max_early_data_size = 0;
    config.send_tls13_tickets = 0;
    config.session_storage = Arc::new(NoServerSessionStorage {});
    Ok(config)
}

/// The QUIC server crypto configuration: our key, the authorizer, and the ALPNs
/// served (in order of preference), with the client key authorized in the
/// handshake for the protocol that handshake negotiates.
///
/// It holds one rustls configuration per served ALPN (serving and authorizing just
/// that one) and the combined [`server_tls_config`]. Each connection buffers its
/// Initial CRYPTO bytes until the ClientHello is complete, then runs the handshake
/// with the configuration of the ALPN the combined one would negotiate: the first
/// of `alpns` that the client offers. A hello that offers none of them, or cannot
/// be read, gets the combined configuration (which then refuses it with
/// `no_application_protocol` or a decode error, as before).
pub fn quic_server_config(
    identity: &LocalIdentity,
    authorizer: Arc<dyn Authorizer>,
    alpns: &[Alpn],
) -> Result<Arc<dyn quinn::crypto::ServerConfig>, TlsError> {
    Ok(Arc::new(per_alpn::PerAlpnConfig::new(
        identity, authorizer, alpns,
    )?))
}

/// The peer's key as verified in the handshake, from a quinn connection.
pub(crate) fn verified_peer(conn: &quinn::Connection) -> Option<PublicKey> {
    let certs = conn
        .peer_identity()?
        .downcast::<Vec<CertificateDer<'static>>>()
        .ok()?;
    PublicKey::from_spki_der(certs.first()?.as_ref()).ok()
}

/// The negotiated ALPN identifier, from a quinn connection.
pub(crate) fn negotiated_alpn(conn: &quinn::Connection) -> Option<Vec<u8>> {
    conn.handshake_data()?
        .downcast::<quinn::crypto::rustls::HandshakeData>()
        .ok()?
        .protocol
}
