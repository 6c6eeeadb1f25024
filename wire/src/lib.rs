//! `nodus-wire`: everything that crosses a Nodus network.
//!
//! Every byte between two Nodus processes goes through this crate:
//!
//! - **Framing** ([`frame`]): a LEB128 length prefix and one postcard body, with a
//!   size limit checked before anything is allocated. [`FrameDecoder`] is the one
//!   sans-IO parser, shared by QUIC, the Unix socket and the fuzz target.
//! - **Authenticated QUIC** ([`quic`], [`tls`]): quinn + rustls, TLS 1.3 with raw
//!   ed25519 public keys (RFC 7250). The client pins the server's key; the server
//!   asks an [`Authorizer`] about every client key, for the protocol the handshake
//!   negotiates (read from the ClientHello by [`tls::client_hello`]), and refuses
//!   unknown ones inside the handshake, also next to a protocol open to every key.
//!   No session resumption and no 0-RTT.
//! - **ALPN routing** ([`Alpn`]): `nodus/console/1`, `nodus/grant/1`, `nodus/chain/1`,
//!   `nodus/workload/1`; a [`Server`] hands each connection to the handler of its
//!   protocol, and unknown protocols fail the handshake.
//! - **Local transport** ([`unix`]): the same frames over a Unix socket, with the
//!   peer's role derived from its kernel credentials (`SO_PEERCRED`).
//! - **Roles** ([`Role`]) as the console protocol carries them.
//! - **The console protocol** ([`console`]): its message types, shared by the
//!   agent and every console.
//!
//! It deliberately holds **no business logic**: it does not know what a console
//! request means, does not read grants or chains (an [`Authorizer`] or
//! [`unix::RolePolicy`] supplied by the agent does), and does not retry on its own
//! except through the explicit [`quic::connect_with_backoff`].
//!
//! The principal types are [`Server`] / [`Client`], which both yield a
//! [`Connection`] carrying the verified peer key, and [`FrameDecoder`].
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use nodus_identity::{PublicKey, SecretKey};
//! use nodus_wire::{Alpn, Client, Refusal, Role, ServerBuilder};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let node = SecretKey::generate()?;
//! let console = SecretKey::generate()?;
//! let known = console.public();
//! let authorizer = move |peer: &PublicKey, _alpn: Alpn| {
//!     if *peer == known { Ok(Role::Operator) } else { Err(Refusal::UnknownKey) }
//! };
//! let server = ServerBuilder::new(&node, Arc::new(authorizer))
//!     .route(Alpn::Console, |conn| async move {
//!         while let Ok(Some((n, reply))) = conn.accept_request::<u32>().await {
//!             let _ = reply.respond(&(n + 1)).await;
//!         }
//!     })
//!     .bind("127.0.0.1:0".parse()?)?;
//!
//! let client = Client::new(&console)?;
//! let conn = client.connect(server.local_addr(), node.public(), Alpn::Console).await?;
//! assert_eq!(conn.role(), Role::Operator);
//! let answer: u32 = conn.request(&41u32).await?;
//! assert_eq!(answer, 42);
//! # Ok(())
//! # }
//! ```

pub mod alpn;
pub mod console;
pub mod frame;
pub mod framed;
pub mod message;
pub mod quic;
pub mod role;
pub mod tls;
pub mod unix;

pub use alpn::{Alpn, UnknownAlpn};
pub use frame::{DEFAULT_MAX_FRAME_LEN, FrameDecoder, FrameError, decode_body, encode_frame};
pub use message::Blob;
pub use quic::{Client, ConnectError, Connection, ErrorCode, Server, ServerBuilder};
pub use role::Role;
pub use tls::{Authorizer, Refusal};
