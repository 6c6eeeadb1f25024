//! Authenticated QUIC endpoints: [`Server`], [`Client`], and the [`Connection`]
//! they both hand out.
//!
//! # Streams
//!
//! - **Request/response** uses one bidirectional stream per request: the client
//!   writes one request frame and finishes its side, the server answers with one
//!   response frame and finishes. Streams are QUIC's own multiplexing, so there are
//!   no request ids, no head-of-line blocking between requests, and a lost or
//!   cancelled request costs exactly one stream.
//! - **Server push** uses unidirectional streams opened by the server: one frame per
//!   stream for events ([`Connection::push`]), or a long-lived stream of many frames
//!   for ordered feeds such as the console's state stream
//!   ([`Connection::open_push_stream`]).
//! - The first server-initiated unidirectional stream carries the
//!   [`Welcome`](crate::message::Welcome); [`Client::connect`] consumes it, so
//!   applications only see the pushes that follow.
//!
//! # Errors on the wire
//!
//! A malformed or oversized frame is a protocol violation: the side that reads it
//! closes the whole connection with [`ErrorCode::MalformedFrame`] or
//! [`ErrorCode::FrameTooLarge`]. Other connections are untouched; every connection
//! has its own task and decoder.

mod backoff;
mod client;
mod connection;
mod server;

use std::{sync::Arc, time::Duration};

pub use backoff::{Backoff, connect_with_backoff};
pub use client::{Client, ConnectError};
pub use connection::{Connection, RecvFrames, Responder, SendFrames, StreamError};
pub use server::{SERVER_RECV_BUFFER, Server, ServerBuilder, ServerError};

/// How often an idle connection sends a keep-alive (a QUIC PING).
///
/// Consumer routers and carrier-grade NATs often drop idle UDP mappings after as
/// little as 30 s (RFC 4787 asks for at least 2 min; many boxes ignore it). Pinging
/// every 10 s keeps the mapping alive with three tries per 30 s window, at a cost of
/// about one small packet each way every 10 s.
pub const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(10);

/// How long a connection may hear nothing before it is declared dead.
///
/// Six keep-alive intervals: a flaky WAN link (LTE handover, DSL resync, Wi-Fi
/// roaming) that drops out for up to about a minute keeps its session, while a
/// peer that is really gone is noticed within a minute. QUIC retransmits the pings,
/// so several consecutive losses are needed before this fires.
pub const MAX_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Application error codes used in QUIC `CONNECTION_CLOSE` and stream resets.
///
/// These numbers are part of the protocol: never renumber, only append.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// Orderly close, nothing wrong.
    Closed,
    /// A frame that does not parse: bad length prefix, bad postcard body, or a
    /// stream that ended mid-frame.
    MalformedFrame,
    /// A frame whose length prefix exceeds the receiver's limit.
    FrameTooLarge,
    /// The authorizer refused the client key for the negotiated protocol.
    Refused,
    /// The server failed internally; the client may retry later.
    Internal,
    /// The peer broke the stream discipline (for example no request on a request
    /// stream).
    ProtocolViolation,
}

impl ErrorCode {
    /// The code's number on the wire.
    pub const fn to_u32(self) -> u32 {
        match self {
            ErrorCode::Closed => 0,
            ErrorCode::MalformedFrame => 1,
            ErrorCode::FrameTooLarge => 2,
            ErrorCode::Refused => 3,
            ErrorCode::Internal => 4,
            ErrorCode::ProtocolViolation => 5,
        }
    }

    /// The code as a QUIC varint.
    pub fn to_varint(self) -> quinn::VarInt {
        quinn::VarInt::from_u32(self.to_u32())
    }

    /// The code for a number received on the wire, if it is one of ours.
    pub fn from_varint(code: quinn::VarInt) -> Option<Self> {
        [
            ErrorCode::Closed,
            ErrorCode::MalformedFrame,
            ErrorCode::FrameTooLarge,
            ErrorCode::Refused,
            ErrorCode::Internal,
            ErrorCode::ProtocolViolation,
        ]
        .into_iter()
        .find(|c| u64::from(c.to_u32()) == code.into_inner())
    }

    /// The code a framing error closes the connection with.
    pub fn for_frame_error(e: &crate::FrameError) -> Self {
        match e {
            crate::FrameError::TooLarge { .. } => ErrorCode::FrameTooLarge,
            _ => ErrorCode::MalformedFrame,
        }
    }
}

/// The transport settings shared by clients and servers.
fn transport_config() -> Arc<quinn::TransportConfig> {
    let mut t = quinn::TransportConfig::default();
    t.keep_alive_interval(Some(KEEP_ALIVE_INTERVAL));
    // 60 s fits a QUIC varint of milliseconds; the conversion cannot fail.
    t.max_idle_timeout(quinn::IdleTimeout::try_from(MAX_IDLE_TIMEOUT).ok());
    Arc::new(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_round_trip_and_are_stable() {
        assert_eq!(ErrorCode::MalformedFrame.to_u32(), 1);
        assert_eq!(ErrorCode::Refused.to_u32(), 3);
        for n in 0..6u32 {
            let code = ErrorCode::from_varint(quinn::VarInt::from_u32(n));
            assert_eq!(code.map(ErrorCode::to_u32), Some(n));
        }
        assert_eq!(ErrorCode::from_varint(quinn::VarInt::from_u32(99)), None);
    }

    #[test]
    fn idle_timeout_outlasts_several_keep_alives() {
        assert!(MAX_IDLE_TIMEOUT >= KEEP_ALIVE_INTERVAL * 3);
    }
}
