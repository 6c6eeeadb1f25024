//! A QUIC server crypto configuration that picks its rustls configuration per
//! connection from the ClientHello's ALPN list, so the client-certificate verifier
//! authorizes for the protocol the handshake negotiates.
//!
//! The session wrapper is the thin adapter around the sans-IO
//! [`client_hello`](super::client_hello) reader: it withholds the Initial CRYPTO
//! bytes from rustls until the hello is complete, decides, then hands every byte,
//! in order, to the session it chose. Before that decision the session it delegates
//! to has read nothing: it is handshaking, has no keys, no transport parameters,
//! no peer and nothing to write, which is what quinn expects of a server that has
//! not seen a whole ClientHello yet.

use std::{any::Any, sync::Arc};

use quinn::crypto::rustls::QuicServerConfig;
use quinn_proto::{
    ConnectionId, Side, TransportError,
    crypto::{
        ExportKeyingMaterialError, HeaderKey, KeyPair, Keys, PacketKey, ServerConfig, Session,
        UnsupportedVersion,
    },
    transport_parameters::TransportParameters,
};

use super::{
    Authorizer, LocalIdentity, TlsError,
    client_hello::{self, Progress},
    server_tls_config,
};
use crate::Alpn;

/// The combined configuration plus one per served ALPN, in preference order.
pub(super) struct PerAlpnConfig {
    /// Serves every ALPN; its verifier admits a key accepted for any of them.
    combined: Arc<QuicServerConfig>,
    /// One configuration per served ALPN, serving and authorizing only it, in the
    /// order of the combined configuration's `alpn_protocols`.
    per_alpn: Vec<(Alpn, Arc<QuicServerConfig>)>,
}

impl PerAlpnConfig {
    /// The configurations for serving `alpns` (in order of preference) with keys
    /// judged by `authorizer`.
    pub(super) fn new(
        identity: &LocalIdentity,
        authorizer: Arc<dyn Authorizer>,
        alpns: &[Alpn],
    ) -> Result<Self, TlsError> {
        let quic = |config: rustls::ServerConfig| QuicServerConfig::try_from(config).map(Arc::new);
        let combined = quic(server_tls_config(identity, authorizer.clone(), alpns)?)?;
        let per_alpn = match alpns {
            // One protocol: the combined configuration is already exact.
            [alpn] => vec![(*alpn, combined.clone())],
            // Same order as the combined `alpn_protocols`, so the choice below is
            // what rustls would negotiate with the combined configuration.
            _ => alpns
                .iter()
                .map(|&alpn| {
                    let one = server_tls_config(identity, authorizer.clone(), &[alpn])?;
                    Ok((alpn, quic(one)?))
                })
                .collect::<Result<_, TlsError>>()?,
        };
        Ok(Self { combined, per_alpn })
    }

    /// The configuration for a connection whose Initial CRYPTO stream starts with
    /// `stream`, or `None` while the ClientHello is incomplete.
    fn choose(&self, stream: &[u8]) -> Option<&Arc<QuicServerConfig>> {
        let hello = match client_hello::read(stream) {
            Ok(Progress::NeedMore) => return None,
            Ok(Progress::Complete(hello)) => hello,
            Err(error) => {
                tracing::debug!(%error, "unreadable ClientHello, using the combined TLS config");
                return Some(&self.combined);
            }
        };
        let offered = hello.alpn.unwrap_or_default();
        // rustls picks the first of its own protocols that the client offers.
        let chosen = self
            .per_alpn
            .iter()
            .find(|(alpn, _)| offered.contains(&alpn.as_bytes()));
        match chosen {
            Some((alpn, config)) => {
                tracing::trace!(%alpn, "TLS config chosen from the ClientHello");
                Some(config)
            }
            None => Some(&self.combined),
        }
    }
}

impl ServerConfig for PerAlpnConfig {
    fn initial_keys(
        &self,
        version: u32,
        dst_cid: &ConnectionId,
    ) -> Result<Keys, UnsupportedVersion> {
        // Every configuration shares the provider, hence the Initial suite.
        self.combined.initial_keys(version, dst_cid)
    }

    fn retry_tag(&self, version: u32, orig_dst_cid: &ConnectionId, packet: &[u8]) -> [u8; 16] {
        self.combined.retry_tag(version, orig_dst_cid, packet)
    }

    fn start_session(
        self: Arc<Self>,
        version: u32,
        params: &TransportParameters,
    ) -> Box<dyn Session> {
        let inner = self.combined.clone().start_session(version, params);
        Box::new(PerAlpnSession {
            config: self,
            version,
            params: *params,
            inner,
            pending: Some(Vec::new()),
        })
    }
}

/// A server session that becomes the session of the configuration chosen from the
/// ClientHello.
struct PerAlpnSession {
    config: Arc<PerAlpnConfig>,
    version: u32,
    params: TransportParameters,
    /// Until the decision, a fresh session of the combined configuration that has
    /// read nothing; afterwards the chosen one.
    inner: Box<dyn Session>,
    /// The CRYPTO bytes withheld so far, until the decision (then `None`).
    pending: Option<Vec<u8>>,
}

impl Session for PerAlpnSession {
    fn initial_keys(&self, dst_cid: &ConnectionId, side: Side) -> Keys {
        self.inner.initial_keys(dst_cid, side)
    }

    fn handshake_data(&self) -> Option<Box<dyn Any>> {
        self.inner.handshake_data()
    }

    fn peer_identity(&self) -> Option<Box<dyn Any>> {
        self.inner.peer_identity()
    }

    fn early_crypto(&self) -> Option<(Box<dyn HeaderKey>, Box<dyn PacketKey>)> {
        self.inner.early_crypto()
    }

    fn early_data_accepted(&self) -> Option<bool> {
        self.inner.early_data_accepted()
    }

    fn is_handshaking(&self) -> bool {
        self.inner.is_handshaking()
    }

    fn read_handshake(&mut self, buf: &[u8]) -> Result<bool, TransportError> {
        let Some(mut pending) = self.pending.take() else {
            return self.inner.read_handshake(buf);
        };
        // The whole hello normally arrives in one piece: read it in place.
        let buffered = !pending.is_empty();
        if buffered {
            pending.extend_from_slice(buf);
        }
        let stream = if buffered { &pending[..] } else { buf };
        let Some(chosen) = self.config.choose(stream) else {
            if !buffered {
                pending.extend_from_slice(buf);
            }
            self.pending = Some(pending);
            return Ok(false);
        };
        if !Arc::ptr_eq(chosen, &self.config.combined) {
            self.inner = chosen.clone().start_session(self.version, &self.params);
        }
        self.inner.read_handshake(stream)
    }

    fn transport_parameters(&self) -> Result<Option<TransportParameters>, TransportError> {
        self.inner.transport_parameters()
    }

    fn write_handshake(&mut self, buf: &mut Vec<u8>) -> Option<Keys> {
        self.inner.write_handshake(buf)
    }

    fn next_1rtt_keys(&mut self) -> Option<KeyPair<Box<dyn PacketKey>>> {
        self.inner.next_1rtt_keys()
    }

    fn is_valid_retry(&self, orig_dst_cid: &ConnectionId, header: &[u8], payload: &[u8]) -> bool {
        self.inner.is_valid_retry(orig_dst_cid, header, payload)
    }

    fn export_keying_material(
        &self,
        output: &mut [u8],
        label: &[u8],
        context: &[u8],
    ) -> Result<(), ExportKeyingMaterialError> {
        self.inner.export_keying_material(output, label, context)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use nodus_identity::{PublicKey, SecretKey};
    use quinn_proto::TransportErrorCode;

    use super::*;
    use crate::{
        Refusal, Role,
        tls::{
            LocalIdentity,
            client_hello::testing::{QUIC_V1, client_session, params},
            quic_server_config,
        },
    };

    const ACCESS_DENIED: u8 = 49;
    const NO_APPLICATION_PROTOCOL: u8 = 120;

    fn key(n: u8) -> SecretKey {
        SecretKey::from_seed(&[n; 32])
    }

    /// A node serving Console (only `known`) and Grant (anyone), recording which
    /// ALPNs the authorizer was asked about.
    struct Node {
        secret: SecretKey,
        config: Arc<dyn ServerConfig>,
        asked: Arc<Mutex<Vec<Alpn>>>,
    }

    impl Node {
        fn new(known: PublicKey, alpns: &[Alpn]) -> Self {
            let secret = key(1);
            let asked = Arc::new(Mutex::new(Vec::new()));
            let log = asked.clone();
            let authorizer = move |peer: &PublicKey, alpn: Alpn| {
                log.lock().unwrap().push(alpn);
                match alpn {
                    Alpn::Grant => Ok(Role::Viewer),
                    _ if *peer == known => Ok(Role::Operator),
                    _ => Err(Refusal::UnknownKey),
                }
            };
            let identity = LocalIdentity::new(&secret).unwrap();
            let config = quic_server_config(&identity, Arc::new(authorizer), alpns).unwrap();
            Self {
                secret,
                config,
                asked,
            }
        }

        fn session(&self) -> Box<dyn Session> {
            self.config.clone().start_session(QUIC_V1, &params())
        }

        fn asked(&self) -> Vec<Alpn> {
            self.asked.lock().unwrap().clone()
        }
    }

    /// Everything a session has to send now, one piece per encryption level.
    fn drain(session: &mut dyn Session) -> Vec<Vec<u8>> {
        let mut flights = Vec::new();
        loop {
            let mut buf = Vec::new();
            let keys = session.write_handshake(&mut buf);
            if buf.is_empty() && keys.is_none() {
                return flights;
            }
            if !buf.is_empty() {
                flights.push(buf);
            }
        }
    }

    /// Runs a handshake between the two sessions, handing the server its input in
    /// pieces of at most `piece` bytes. Returns the server's error, if any.
    fn handshake(
        client: &mut dyn Session,
        server: &mut dyn Session,
        piece: usize,
    ) -> Result<(), TransportError> {
        loop {
            let from_client = drain(client);
            let mut sent = !from_client.is_empty();
            for flight in from_client {
                for bytes in flight.chunks(piece) {
                    server.read_handshake(bytes)?;
                }
            }
            for flight in drain(server) {
                sent = true;
                client.read_handshake(&flight).unwrap();
            }
            if !sent {
                return Ok(());
            }
        }
    }

    fn alert(err: &TransportError) -> TransportErrorCode {
        err.code
    }

    fn negotiated(session: &dyn Session) -> Option<Vec<u8>> {
        session
            .handshake_data()?
            .downcast::<quinn::crypto::rustls::HandshakeData>()
            .ok()?
            .protocol
    }

    #[test]
    fn unknown_key_on_console_is_refused_inside_the_handshake() {
        let node = Node::new(key(2).public(), &[Alpn::Console, Alpn::Grant]);
        let mut client = client_session(&key(3), &node.secret, &[Alpn::Console.as_bytes()]);
        let mut server = node.session();
        let err = handshake(&mut *client, &mut *server, usize::MAX).unwrap_err();
        assert_eq!(
            alert(&err),
            TransportErrorCode::crypto(ACCESS_DENIED),
            "{err:?}"
        );
        assert_eq!(node.asked(), [Alpn::Console], "asked about console only");
    }

    #[test]
    fn unknown_key_on_grant_completes() {
        let node = Node::new(key(2).public(), &[Alpn::Console, Alpn::Grant]);
        let mut client = client_session(&key(3), &node.secret, &[Alpn::Grant.as_bytes()]);
        let mut server = node.session();
        handshake(&mut *client, &mut *server, usize::MAX).unwrap();
        assert!(!server.is_handshaking() && !client.is_handshaking());
        assert_eq!(negotiated(&*server), Some(Alpn::Grant.as_bytes().to_vec()));
        assert_eq!(node.asked(), [Alpn::Grant]);
    }

    #[test]
    fn known_key_on_console_completes_with_the_hello_in_single_bytes() {
        let node = Node::new(key(2).public(), &[Alpn::Console, Alpn::Grant]);
        let mut client = client_session(&key(2), &node.secret, &[Alpn::Console.as_bytes()]);
        let mut server = node.session();
        handshake(&mut *client, &mut *server, 1).unwrap();
        assert!(!server.is_handshaking() && !client.is_handshaking());
        assert_eq!(
            negotiated(&*server),
            Some(Alpn::Console.as_bytes().to_vec())
        );
        assert!(server.peer_identity().is_some());
        assert_eq!(node.asked(), [Alpn::Console]);
    }

    #[test]
    fn nothing_reaches_rustls_before_the_hello_is_complete() {
        let node = Node::new(key(2).public(), &[Alpn::Console, Alpn::Grant]);
        let mut client = client_session(&key(2), &node.secret, &[Alpn::Console.as_bytes()]);
        let hello = drain(&mut *client).remove(0);
        let mut server = node.session();
        for (i, byte) in hello.iter().enumerate().take(hello.len() - 1) {
            assert_eq!(server.read_handshake(&[*byte]), Ok(false), "byte {i}");
            assert!(server.is_handshaking());
            assert!(server.handshake_data().is_none());
            assert_eq!(server.transport_parameters(), Ok(None));
            assert!(
                drain(&mut *server).is_empty(),
                "nothing to send at byte {i}"
            );
        }
        assert_eq!(server.read_handshake(&hello[hello.len() - 1..]), Ok(true));
        assert!(server.transport_parameters().unwrap().is_some());
        assert!(
            !drain(&mut *server).is_empty(),
            "the server flight is ready"
        );
    }

    #[test]
    fn several_offered_alpns_authorize_the_one_rustls_picks() {
        // Our preference order is Console, Grant: rustls would negotiate console,
        // so the key is judged for console although grant admits anyone.
        let node = Node::new(key(2).public(), &[Alpn::Console, Alpn::Grant]);
        let offered = [Alpn::Grant.as_bytes(), Alpn::Console.as_bytes()];
        let mut client = client_session(&key(3), &node.secret, &offered);
        let mut server = node.session();
        let err = handshake(&mut *client, &mut *server, usize::MAX).unwrap_err();
        assert_eq!(alert(&err), TransportErrorCode::crypto(ACCESS_DENIED));
        assert_eq!(node.asked(), [Alpn::Console]);

        // An unknown protocol next to a served one does not change the choice.
        let mut client = client_session(&key(3), &node.secret, &[b"h3", Alpn::Grant.as_bytes()]);
        let mut server = node.session();
        handshake(&mut *client, &mut *server, usize::MAX).unwrap();
        assert_eq!(negotiated(&*server), Some(Alpn::Grant.as_bytes().to_vec()));
    }

    #[test]
    fn no_served_alpn_falls_back_and_is_refused_for_the_protocol() {
        let node = Node::new(key(2).public(), &[Alpn::Console, Alpn::Grant]);
        for offered in [&[][..], &[&b"nodus/console/9"[..]][..]] {
            let mut client = client_session(&key(2), &node.secret, offered);
            let mut server = node.session();
            let err = handshake(&mut *client, &mut *server, usize::MAX).unwrap_err();
            assert_eq!(
                alert(&err),
                TransportErrorCode::crypto(NO_APPLICATION_PROTOCOL),
                "{offered:?}: {err:?}"
            );
        }
        assert!(node.asked().is_empty(), "refused before any key was shown");
    }

    /// Which configuration `choose` picks: `None` while waiting, `Some(None)` for
    /// the combined one, `Some(Some(alpn))` for a per-ALPN one.
    fn choice(config: &PerAlpnConfig, stream: &[u8]) -> Option<Option<Alpn>> {
        let chosen = config.choose(stream)?;
        if Arc::ptr_eq(chosen, &config.combined) {
            return Some(None);
        }
        let (alpn, _) = config
            .per_alpn
            .iter()
            .find(|(_, c)| Arc::ptr_eq(c, chosen))
            .unwrap();
        Some(Some(*alpn))
    }

    #[test]
    fn choice_follows_the_hello() {
        use crate::tls::client_hello::testing::client_hello;
        let identity = LocalIdentity::new(&key(1)).unwrap();
        let anyone = |_: &PublicKey, _: Alpn| Ok(Role::Viewer);
        let config =
            PerAlpnConfig::new(&identity, Arc::new(anyone), &[Alpn::Console, Alpn::Grant]).unwrap();
        let console = client_hello(&[Alpn::Console.as_bytes()]);
        assert_eq!(choice(&config, &console), Some(Some(Alpn::Console)));
        assert_eq!(choice(&config, &console[..console.len() - 1]), None);
        assert_eq!(choice(&config, &[]), None);
        let grant = client_hello(&[b"h3", Alpn::Grant.as_bytes()]);
        assert_eq!(choice(&config, &grant), Some(Some(Alpn::Grant)));
        let both = client_hello(&[Alpn::Grant.as_bytes(), Alpn::Console.as_bytes()]);
        assert_eq!(choice(&config, &both), Some(Some(Alpn::Console)));
        // Everything else goes to the combined configuration, at once.
        for stream in [
            client_hello(&[]),
            client_hello(&[b"nodus/console/9"]),
            vec![2],
            vec![1, 0x10, 0, 0],
            {
                let mut bad = console.clone();
                bad[4 + 2 + 32] = 33; // Session id longer than 32 bytes.
                bad
            },
        ] {
            assert_eq!(
                choice(&config, &stream),
                Some(None),
                "{:?}",
                &stream[..4.min(stream.len())]
            );
        }
    }

    #[test]
    fn single_protocol_servers_use_their_one_config() {
        let node = Node::new(key(2).public(), &[Alpn::Console]);
        let mut client = client_session(&key(3), &node.secret, &[Alpn::Console.as_bytes()]);
        let mut server = node.session();
        let err = handshake(&mut *client, &mut *server, usize::MAX).unwrap_err();
        assert_eq!(alert(&err), TransportErrorCode::crypto(ACCESS_DENIED));
        assert_eq!(node.asked(), [Alpn::Console]);
    }
}
