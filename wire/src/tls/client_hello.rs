//! A sans-IO reader for the ALPN list of a TLS 1.3 ClientHello, as it arrives in
//! QUIC's Initial-level CRYPTO stream.
//!
//! It exists so the server can choose its TLS configuration, and therefore the
//! client-certificate verifier, *before* rustls sees the hello: rustls does not tell
//! a verifier which ALPN it negotiated (see [`Authorizer`](crate::Authorizer)).
//!
//! QUIC carries TLS handshake messages without the TLS record layer (RFC 9001 §4),
//! so the stream starts directly with the ClientHello's handshake header
//! (RFC 8446 §4):
//!
//! ```text
//! msg_type u8 (= 1)  length u24
//! legacy_version u16  random [32]  legacy_session_id <0..32>
//! cipher_suites <2..2^16-2>  legacy_compression_methods <1..2^8-1>
//! extensions <8..2^16-1>: { type u16, data <0..2^16-1> }*
//! ```
//!
//! The ALPN extension (type 16, RFC 7301 §3.1) holds a u16-length list of
//! u8-length protocol names.
//!
//! [`read`] is a pure function of the bytes received so far: call it again when
//! more arrive. It never panics, never reads past its input and never looks at more
//! than [`MAX_CLIENT_HELLO_LEN`] bytes. It validates only what it needs: the hello
//! itself is judged by rustls afterwards, so a caller treats every error as "no
//! usable ALPN list" and lets the general configuration answer.

/// The largest ClientHello (header included) the reader waits for.
///
/// Our clients send about 300 bytes, and a browser-sized hello with post-quantum
/// key shares stays under 2 KiB. 16 KiB is also quinn's default limit for
/// buffered CRYPTO data, so a larger hello could not be delivered anyway.
pub const MAX_CLIENT_HELLO_LEN: usize = 16 << 10;

/// The TLS handshake message type of a ClientHello.
const CLIENT_HELLO: u8 = 1;
/// The extension type of ALPN (RFC 7301 §3.1).
const EXT_ALPN: u16 = 16;
/// The handshake header: type (1) and length (3).
const HEADER_LEN: usize = 4;
/// The longest legacy session id (RFC 8446 §4.1.2).
const MAX_SESSION_ID_LEN: usize = 32;

/// How far the reader got with the bytes it was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress<'a> {
    /// The ClientHello is not complete yet; call again with more bytes.
    NeedMore,
    /// The whole ClientHello was present and well-formed.
    Complete(ClientHello<'a>),
}

/// What the reader learned from a complete ClientHello.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientHello<'a> {
    /// The offered ALPN protocol names in the client's order, or `None` when the
    /// hello has no ALPN extension.
    pub alpn: Option<Vec<&'a [u8]>>,
    /// The length of the hello, header included: the CRYPTO stream bytes it used.
    pub len: usize,
}

/// Why the bytes are not a usable ClientHello.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientHelloError {
    /// The first handshake message is of another type.
    #[error("Not a ClientHello (handshake message type {0})")]
    NotClientHello(u8),
    /// The hello announces more bytes than [`MAX_CLIENT_HELLO_LEN`].
    #[error("ClientHello of {len} bytes exceeds the {max}-byte limit")]
    TooLarge {
        /// The announced length, header included.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A length field or value inside the hello is inconsistent; names which.
    #[error("Malformed ClientHello: {0}")]
    Malformed(&'static str),
}

/// Reads the ClientHello at the start of `stream`, the Initial-level CRYPTO bytes
/// received so far (in order, from offset 0).
///
/// Bytes after the hello are ignored.
pub fn read(stream: &[u8]) -> Result<Progress<'_>, ClientHelloError> {
    let Some(&msg_type) = stream.first() else {
        return Ok(Progress::NeedMore);
    };
    if msg_type != CLIENT_HELLO {
        return Err(ClientHelloError::NotClientHello(msg_type));
    }
    let Some(header) = stream.get(..HEADER_LEN) else {
        return Ok(Progress::NeedMore);
    };
    let body_len =
        usize::from(header[1]) << 16 | usize::from(header[2]) << 8 | usize::from(header[3]);
    let len = HEADER_LEN + body_len;
    if len > MAX_CLIENT_HELLO_LEN {
        return Err(ClientHelloError::TooLarge {
            len,
            max: MAX_CLIENT_HELLO_LEN,
        });
    }
    let Some(body) = stream.get(HEADER_LEN..len) else {
        return Ok(Progress::NeedMore);
    };
    let alpn = read_body(body)?;
    Ok(Progress::Complete(ClientHello { alpn, len }))
}

/// The ClientHello body: everything is present, so any shortfall is malformed.
fn read_body(body: &[u8]) -> Result<Option<Vec<&[u8]>>, ClientHelloError> {
    let mut r = Reader(body);
    r.take(2, "legacy_version")?;
    r.take(32, "random")?;
    let session_id = r.vec_u8("legacy_session_id")?;
    if session_id.len() > MAX_SESSION_ID_LEN {
        return Err(ClientHelloError::Malformed("legacy_session_id too long"));
    }
    let suites = r.vec_u16("cipher_suites")?;
    if suites.is_empty() || suites.len() % 2 != 0 {
        return Err(ClientHelloError::Malformed("cipher_suites length"));
    }
    if r.vec_u8("legacy_compression_methods")?.is_empty() {
        return Err(ClientHelloError::Malformed(
            "legacy_compression_methods empty",
        ));
    }
    if r.0.is_empty() {
        // A hello without extensions is legal TLS 1.2; it offers no ALPN.
        return Ok(None);
    }
    let mut extensions = Reader(r.vec_u16("extensions")?);
    if !r.0.is_empty() {
        return Err(ClientHelloError::Malformed("bytes after the extensions"));
    }
    let mut alpn = None;
    while !extensions.0.is_empty() {
        let ext_type = extensions.u16("extension type")?;
        let data = extensions.vec_u16("extension data")?;
        if ext_type != EXT_ALPN {
            continue;
        }
        if alpn.is_some() {
            // RFC 8446 §4.2: at most one extension of each type.
            return Err(ClientHelloError::Malformed("ALPN extension repeated"));
        }
        alpn = Some(read_alpn(data)?);
    }
    Ok(alpn)
}

/// The ALPN extension's data: `ProtocolName protocol_name_list<2..2^16-1>`.
fn read_alpn(data: &[u8]) -> Result<Vec<&[u8]>, ClientHelloError> {
    let mut outer = Reader(data);
    let mut list = Reader(outer.vec_u16("ALPN list")?);
    if !outer.0.is_empty() {
        return Err(ClientHelloError::Malformed("bytes after the ALPN list"));
    }
    let mut names = Vec::new();
    while !list.0.is_empty() {
        let name = list.vec_u8("ALPN protocol name")?;
        if name.is_empty() {
            // RFC 7301 §3.1: names are 1..255 bytes.
            return Err(ClientHelloError::Malformed("empty ALPN protocol name"));
        }
        names.push(name);
    }
    Ok(names)
}

/// A bounds-checked cursor over a complete structure.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], ClientHelloError> {
        if n > self.0.len() {
            return Err(ClientHelloError::Malformed(what));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, ClientHelloError> {
        Ok(self.take(1, what)?[0])
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, ClientHelloError> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    /// A u8-length-prefixed vector.
    fn vec_u8(&mut self, what: &'static str) -> Result<&'a [u8], ClientHelloError> {
        let n = self.u8(what)?;
        self.take(usize::from(n), what)
    }

    /// A u16-length-prefixed vector.
    fn vec_u16(&mut self, what: &'static str) -> Result<&'a [u8], ClientHelloError> {
        let n = self.u16(what)?;
        self.take(usize::from(n), what)
    }
}

/// Real ClientHellos for tests: the bytes our own client puts in its first
/// Initial CRYPTO frame.
#[cfg(test)]
pub(crate) mod testing {
    use std::sync::Arc;

    use nodus_identity::SecretKey;
    use quinn_proto::{
        Side,
        crypto::{ClientConfig, Session},
        transport_parameters::TransportParameters,
    };

    use crate::tls::{LocalIdentity, SERVER_NAME, client_tls_config};

    /// QUIC version 1.
    pub(crate) const QUIC_V1: u32 = 1;

    /// Default transport parameters (quinn offers no public constructor, but
    /// decoding an empty list yields the defaults).
    pub(crate) fn params() -> TransportParameters {
        TransportParameters::read(Side::Server, &mut &[][..]).unwrap()
    }

    /// A client session of `client` pinning `server`, offering `alpns`.
    pub(crate) fn client_session(
        client: &SecretKey,
        server: &SecretKey,
        alpns: &[&[u8]],
    ) -> Box<dyn Session> {
        let identity = LocalIdentity::new(client).unwrap();
        let tls = client_tls_config(
            &identity,
            server.public(),
            alpns.iter().map(|a| a.to_vec()).collect(),
        )
        .unwrap();
        let config = Arc::new(quinn::crypto::rustls::QuicClientConfig::try_from(tls).unwrap());
        config
            .start_session(QUIC_V1, SERVER_NAME, &params())
            .unwrap()
    }

    /// The ClientHello a client offering `alpns` sends.
    pub(crate) fn client_hello(alpns: &[&[u8]]) -> Vec<u8> {
        let mut session = client_session(
            &SecretKey::from_seed(&[2; 32]),
            &SecretKey::from_seed(&[1; 32]),
            alpns,
        );
        let mut hello = Vec::new();
        let keys = session.write_handshake(&mut hello);
        assert!(keys.is_none(), "the ClientHello goes out with Initial keys");
        hello
    }
}

#[cfg(test)]
mod tests {
    use super::{testing::client_hello, *};

    const CONSOLE: &[u8] = b"nodus/console/1";
    const GRANT: &[u8] = b"nodus/grant/1";

    fn complete(stream: &[u8]) -> ClientHello<'_> {
        match read(stream) {
            Ok(Progress::Complete(hello)) => hello,
            other => panic!("expected a complete hello, got {other:?}"),
        }
    }

    /// A hand-made hello with the given extensions (type, data).
    fn synthetic(extensions: &[(u16, &[u8])]) -> Vec<u8> {
        let mut ext = Vec::new();
        for (ty, data) in extensions {
            ext.extend_from_slice(&ty.to_be_bytes());
            ext.extend_from_slice(&(data.len() as u16).to_be_bytes());
            ext.extend_from_slice(data);
        }
        let mut body = vec![3, 3];
        body.extend_from_slice(&[7; 32]);
        body.push(0); // No session id.
        body.extend_from_slice(&[0, 2, 0x13, 0x01]); // TLS_AES_128_GCM_SHA256.
        body.extend_from_slice(&[1, 0]); // Null compression.
        body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
        body.extend_from_slice(&ext);
        let len = body.len() as u32;
        let mut hello = vec![CLIENT_HELLO];
        hello.extend_from_slice(&len.to_be_bytes()[1..]);
        hello.extend_from_slice(&body);
        hello
    }

    /// ALPN extension data for `names`.
    fn alpn_ext(names: &[&[u8]]) -> Vec<u8> {
        let mut list = Vec::new();
        for n in names {
            list.push(n.len() as u8);
            list.extend_from_slice(n);
        }
        let mut data = (list.len() as u16).to_be_bytes().to_vec();
        data.extend_from_slice(&list);
        data
    }

    #[test]
    fn reads_one_alpn_from_a_real_hello() {
        let bytes = client_hello(&[CONSOLE]);
        let hello = complete(&bytes);
        assert_eq!(hello.alpn, Some(vec![CONSOLE]));
        assert_eq!(
            hello.len,
            bytes.len(),
            "the hello is the whole first flight"
        );
    }

    #[test]
    fn a_real_hello_without_alpn_has_none() {
        let bytes = client_hello(&[]);
        assert_eq!(complete(&bytes).alpn, None);
    }

    #[test]
    fn reads_several_alpns_in_the_client_order() {
        let bytes = client_hello(&[GRANT, b"h3", CONSOLE]);
        assert_eq!(
            complete(&bytes).alpn,
            Some(vec![GRANT, &b"h3"[..], CONSOLE])
        );
    }

    #[test]
    fn every_truncation_needs_more() {
        let bytes = client_hello(&[CONSOLE, GRANT]);
        for n in 0..bytes.len() {
            assert_eq!(read(&bytes[..n]), Ok(Progress::NeedMore), "cut at {n}");
        }
    }

    #[test]
    fn bytes_after_the_hello_are_ignored() {
        let mut bytes = client_hello(&[CONSOLE]);
        let len = bytes.len();
        bytes.extend_from_slice(&[0xff; 40]);
        let hello = complete(&bytes);
        assert_eq!(hello.len, len);
        assert_eq!(hello.alpn, Some(vec![CONSOLE]));
    }

    #[test]
    fn another_message_type_is_not_a_hello() {
        let mut bytes = client_hello(&[CONSOLE]);
        bytes[0] = 2; // ServerHello.
        assert_eq!(read(&bytes), Err(ClientHelloError::NotClientHello(2)));
        // Known from the first byte on.
        assert_eq!(read(&bytes[..1]), Err(ClientHelloError::NotClientHello(2)));
    }

    #[test]
    fn an_oversized_announcement_is_refused_before_it_arrives() {
        let mut header = vec![CLIENT_HELLO, 0, 0x40, 0];
        assert_eq!(
            read(&header),
            Err(ClientHelloError::TooLarge {
                len: 4 + 0x4000,
                max: MAX_CLIENT_HELLO_LEN
            })
        );
        // Exactly at the limit it waits.
        header[2] = 0x3f;
        header[3] = 0xfc;
        assert_eq!(read(&header), Ok(Progress::NeedMore));
    }

    #[test]
    fn a_shortened_length_field_is_malformed() {
        let mut bytes = client_hello(&[CONSOLE]);
        bytes[3] = bytes[3].wrapping_sub(1);
        if bytes[3] == 0xff {
            bytes[2] -= 1;
        }
        assert!(matches!(read(&bytes), Err(ClientHelloError::Malformed(_))));
    }

    #[test]
    fn synthetic_hellos_match_the_real_layout() {
        let ext = alpn_ext(&[CONSOLE]);
        let bytes = synthetic(&[(0, b"\0\0"), (EXT_ALPN, &ext), (43, b"\x02\x03\x04")]);
        assert_eq!(complete(&bytes).alpn, Some(vec![CONSOLE]));
        assert_eq!(complete(&synthetic(&[])).alpn, None);
    }

    #[test]
    fn repeated_alpn_extension_is_malformed() {
        let ext = alpn_ext(&[CONSOLE]);
        let bytes = synthetic(&[(EXT_ALPN, &ext), (EXT_ALPN, &ext)]);
        assert_eq!(
            read(&bytes),
            Err(ClientHelloError::Malformed("ALPN extension repeated"))
        );
    }

    #[test]
    fn bad_alpn_lists_are_malformed() {
        let empty_name = alpn_ext(&[CONSOLE, b""]);
        let mut overlong_list = alpn_ext(&[CONSOLE]);
        overlong_list[1] += 1;
        let mut trailing = alpn_ext(&[CONSOLE]);
        trailing.push(0);
        let mut name_past_end = alpn_ext(&[CONSOLE]);
        name_past_end[2] += 1;
        for (data, reason) in [
            (&empty_name[..], "empty ALPN protocol name"),
            (&overlong_list[..], "ALPN list"),
            (&trailing[..], "bytes after the ALPN list"),
            (&name_past_end[..], "ALPN protocol name"),
            (&[][..], "ALPN list"),
        ] {
            let bytes = synthetic(&[(EXT_ALPN, data)]);
            assert_eq!(read(&bytes), Err(ClientHelloError::Malformed(reason)));
        }
        // An empty list is well-formed here (rustls refuses it later).
        let bytes = synthetic(&[(EXT_ALPN, &[0, 0])]);
        assert_eq!(complete(&bytes).alpn, Some(vec![]));
    }

    #[test]
    fn bad_fixed_fields_are_malformed() {
        let good = synthetic(&[]);
        // Offsets in the synthetic hello: header 4, version 2, random 32.
        let session_id = 4 + 2 + 32;
        let mut long_session_id = good.clone();
        long_session_id[session_id] = 33;
        let mut odd_suites = good.clone();
        odd_suites[session_id + 2] = 1;
        let mut no_compression = good.clone();
        no_compression[session_id + 5] = 0;
        for bytes in [long_session_id, odd_suites, no_compression] {
            assert!(
                matches!(read(&bytes), Err(ClientHelloError::Malformed(_))),
                "{:?}",
                read(&bytes)
            );
        }
    }

    #[test]
    fn every_single_byte_corruption_is_answered_without_panic() {
        let bytes = client_hello(&[CONSOLE, GRANT]);
        for i in 0..bytes.len() {
            for mask in [0x01, 0x80, 0xff] {
                let mut corrupt = bytes.clone();
                corrupt[i] ^= mask;
                // Any answer is fine; reading past the input or panicking is not.
                if let Ok(Progress::Complete(hello)) = read(&corrupt) {
                    assert!(hello.len <= corrupt.len());
                }
            }
        }
    }
}
