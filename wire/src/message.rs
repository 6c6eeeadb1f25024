//! Message types that belong to the transport itself.
//!
//! Protocol messages (console, chain, workload) live with their protocols; this
//! module holds only what every protocol shares.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Role;

/// An opaque byte string that postcard encodes as one length-prefixed block.
///
/// A plain `Vec<u8>` goes through serde as a sequence of `u8`, one call per byte;
/// `Blob` uses serde's byte-string path, which is one `memcpy` each way. Use it for
/// bulk payloads (log chunks, file contents, images).
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Blob(pub Vec<u8>);

impl fmt::Debug for Blob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Blob({} bytes)", self.0.len())
    }
}

impl Serialize for Blob {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Blob {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Blob;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a byte string")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Blob, E> {
                Ok(Blob(v.to_vec()))
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Blob, E> {
                Ok(Blob(v))
            }
        }
        d.deserialize_byte_buf(V)
    }
}

/// The first frame a server sends on a new QUIC connection, on the first
/// server-initiated unidirectional stream, once it has authorized the client for
/// the negotiated ALPN.
///
/// It exists because in TLS 1.3 a client finishes its handshake before the server
/// has checked the client's key: without an explicit welcome, a refused client
/// would believe it was connected until the server's close arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    /// The role the server's authorizer gave this client's key.
    pub role: Role,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_is_one_byte_string() {
        let enc = postcard::to_stdvec(&Blob(vec![1, 2, 3])).unwrap();
        assert_eq!(enc, [3, 1, 2, 3]);
        assert_eq!(
            postcard::from_bytes::<Blob>(&enc).unwrap(),
            Blob(vec![1, 2, 3])
        );
    }
}
