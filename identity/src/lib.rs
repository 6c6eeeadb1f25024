//! `nodus-identity`: who is who on a Nodus grid.
//!
//! Every node, farmer, operator, tenant and validator is an ed25519 key. This crate
//! holds those keys and everything that is proved with them:
//!
//! - [`SecretKey`] / [`PublicKey`]: key newtypes; the secret zeroizes on drop and
//!   never prints.
//! - [`NodeId`] / [`AccountId`]: the one canonical, checksummed text form (bech32m,
//!   see [`text`] for why).
//! - [`mnemonic`]: 24-word BIP39 backup and restore.
//! - [`keystore`]: the passphrase-sealed key file (argon2id + XChaCha20-Poly1305).
//! - [`statement`]: domain-separated signed statements, so a signature made for one
//!   purpose never verifies for another.
//! - [`grant`]: owner-signed role grants and their revocation list.
//! - [`boot_manifest`]: the signed content manifest of a node's boot image.
//! - [`totp`]: RFC 6238 one-time codes, the second factor that elevates an operator
//!   session.
//!
//! It deliberately does no I/O besides reading and writing its own key files, and
//! knows nothing of networks or chains.
//!
//! ```
//! use nodus_identity::{NodeId, SecretKey};
//! let key = SecretKey::generate().unwrap();
//! let id = NodeId::from(key.public());
//! assert_eq!(id.to_string().parse::<NodeId>().unwrap(), id);
//! ```

pub mod boot_manifest;
#[cfg(feature = "cli")]
pub mod cli;
mod file_text;
pub mod grant;
pub mod key;
pub mod keystore;
pub mod mnemonic;
pub mod statement;
pub mod text;
pub mod totp;

pub use grant::Role;

/// The network (chain id) statements are signed for when nothing else is
/// configured: the local development grid that `nodus devnet` runs.
pub const DEFAULT_NETWORK: &str = "nodus-devnet";
pub use key::{KeyError, PublicKey, SecretKey, Signature};
pub use keystore::{Keystore, KeystoreError, Passphrase};
pub use mnemonic::Mnemonic;
pub use statement::{Signed, Statement};
pub use text::{AccountId, NodeId, ParseIdError};
