//! Consensus: stake-weighted Tendermint from malachite
//! (`informalsystems-malachitebft-core-consensus`), embedded sans-IO.
//!
//! We do not implement a consensus algorithm here: malachite decides. This module
//! supplies what malachite asks of its host — the types ([`context`]), signing
//! and ZIP-215 verification, timers, the write-ahead log, storage, block
//! validation — and wraps it all in [`Engine`], a deterministic state machine a
//! node drives with messages, time and transactions.
//!
//! - [`Engine`]: `handle(now, Input) -> Vec<Output>` and
//!   [`next_deadline`](Engine::next_deadline). See [`engine`] for the protocol.
//! - [`ConsensusMessage`]: what validators send each other (serde; the node
//!   frames it on `nodus/chain/1`).
//! - [`Block`] / [`CommittedBlock`]: the decided value and its certificate.
//!
//! It deliberately is not networking (the node carries [`Output`]s), not a
//! mempool (the host answers [`Output::ProposeRequest`]), and reads no clock.

pub mod context;
pub mod engine;
pub mod message;
pub mod verified;

pub use context::{Block, BlockHash, Height, ProposedBlock};
pub use engine::{
    BlockInvalid, Decided, Engine, EngineConfig, EngineError, Input, Output, UnixMillis,
};
pub use message::{CommitCert, CommittedBlock, ConsensusMessage, SignedProposal, SignedVote};
pub use verified::VerifiedTxs;
