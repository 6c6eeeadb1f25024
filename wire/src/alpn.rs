//! The application protocols Nodus speaks over QUIC, one ALPN per protocol and
//! major version (RFC 7301).
//!
//! Incompatible changes to a protocol bump its version and therefore its ALPN, so a
//! peer that does not speak the new version is refused in the TLS handshake instead
//! of misreading frames later.

use std::{fmt, str::FromStr};

/// One Nodus application protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Alpn {
    /// The console protocol: dashboard state stream and operator actions.
    Console,
    /// The chain protocol: agents and validators talking to the ledger.
    Chain,
    /// The workload protocol: tenants managing their own workloads on a node.
    Workload,
    /// Grant presentation: a key the node does not know yet offers the owner-signed
    /// grant that names it, and nothing else. Kept apart from the console protocol
    /// so that an unknown key never reaches a console handler.
    Grant,
}

/// An ALPN identifier that is not one of [`Alpn`]'s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Unknown application protocol {0:?}")]
pub struct UnknownAlpn(pub String);

impl Alpn {
    /// Every protocol, in a fixed order.
    pub const ALL: [Alpn; 4] = [Alpn::Console, Alpn::Chain, Alpn::Workload, Alpn::Grant];

    /// The identifier sent in the TLS ALPN extension.
    pub const fn as_bytes(self) -> &'static [u8] {
        self.as_str().as_bytes()
    }

    /// The identifier as text.
    pub const fn as_str(self) -> &'static str {
        match self {
            Alpn::Console => "nodus/console/1",
            Alpn::Chain => "nodus/chain/1",
            Alpn::Workload => "nodus/workload/1",
            Alpn::Grant => "nodus/grant/1",
        }
    }

    /// Looks up the protocol named by an ALPN identifier.
    pub fn from_bytes(id: &[u8]) -> Result<Self, UnknownAlpn> {
        Self::ALL
            .into_iter()
            .find(|a| a.as_bytes() == id)
            .ok_or_else(|| UnknownAlpn(String::from_utf8_lossy(id).into_owned()))
    }
}

impl fmt::Display for Alpn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Alpn {
    type Err = UnknownAlpn;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_bytes(s.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_round_trip_and_unknown_is_refused() {
        for a in Alpn::ALL {
            assert_eq!(Alpn::from_bytes(a.as_bytes()), Ok(a));
            assert_eq!(a.to_string().parse::<Alpn>(), Ok(a));
        }
        assert_eq!(Alpn::Console.as_str(), "nodus/console/1");
        assert!(Alpn::from_bytes(b"nodus/console/2").is_err());
        assert!(Alpn::from_bytes(b"h3").is_err());
    }
}
