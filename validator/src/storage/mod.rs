//! Chain storage: committed blocks, the committed state, the consensus
//! write-ahead log and the double-sign guard.
//!
//! [`Store`] is the one trait the [`Engine`](crate::consensus::Engine) writes
//! through, synchronously: when a method returns `Ok`, what it wrote survives a
//! crash (`kill -9`, power loss). Two backends:
//!
//! - [`DiskStore`]: [`redb`], one file. One write transaction per decided block
//!   holds the block, its commit certificate, the new state, the block's receipts
//!   (one [`TxStatus`] per transaction, indexed by transaction id) and drops that
//!   height's WAL; so after a crash the store is exactly at the last committed
//!   block, receipts included, and the WAL holds the inputs of the height that
//!   was in progress.
//! - [`MemStore`]: the same contract in memory, for simulations and tests.
//!
//! The state is stored whole (postcard) at every commit: simple and exactly
//! what [`State::root`] hashes. An incremental layout can replace it behind this
//! trait when states grow large.

mod disk;
mod memory;

pub use disk::DiskStore;
pub use memory::MemStore;

use malachitebft_core_types::{Round, TimeoutKind};
use serde::{Deserialize, Serialize};

use crate::State;
use crate::consensus::context::{BlockHash, ProposedBlock};
use crate::consensus::message::{CommittedBlock, SignedProposal, SignedVote};
use crate::state::Address;
use crate::state::Hash;
use crate::state::tx::TxStatus;

/// Which message a validator signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum SignStep {
    /// A proposal (first in a round).
    Proposal,
    /// A prevote.
    Prevote,
    /// A precommit (last in a round).
    Precommit,
}

/// One message this validator signed: written (durably) before the signature is
/// made, so a restarted validator knows every (height, round, step) it signed and
/// for what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignRecord {
    /// Height.
    pub height: u64,
    /// Round.
    pub round: u32,
    /// Step.
    pub step: SignStep,
    /// The block signed for (`None`: a nil vote).
    pub value: Option<BlockHash>,
    /// For a proposal: the signed proposal itself, so that after a restart the
    /// validator re-proposes exactly the same block instead of a new one.
    pub proposal: Option<Box<SignedProposal>>,
}

impl SignRecord {
    /// The (height, round, step) slot, in signing order.
    pub fn slot(&self) -> (u64, u32, SignStep) {
        (self.height, self.round, self.step)
    }
}

/// One write-ahead-log entry: an input consensus took for the height in
/// progress, written before consensus acts on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum WalRecord {
    /// A proposal (received, or our own).
    Proposal(SignedProposal),
    /// A vote (received, or our own).
    Vote(SignedVote),
    /// A timeout that fired.
    Timeout {
        /// Which.
        kind: TimeoutKind,
        /// Its round.
        round: Round,
    },
    /// A block whose validity was decided.
    ProposedValue {
        /// Round of the proposal.
        round: Round,
        /// Its POL round.
        valid_round: Round,
        /// Its proposer.
        proposer: Address,
        /// The block.
        block: ProposedBlock,
        /// The verdict.
        valid: bool,
    },
}

/// Why storage failed. Every failure is fatal for the engine: it stops rather
/// than sign without a durable record.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database failed.
    #[error("Database")]
    Database(#[from] redb::Error),
    /// A record did not encode or decode.
    #[error("Record encoding")]
    Codec(#[from] postcard::Error),
    /// The stored data contradicts itself.
    #[error("Store is inconsistent: {0}")]
    Inconsistent(String),
}

/// Durable chain storage; see the [module docs](self).
pub trait Store {
    /// The last committed block and the state after it; `None` for a fresh store
    /// (the chain starts from genesis).
    fn last_committed(&self) -> Result<Option<(State, CommittedBlock)>, StoreError>;

    /// The committed block at `height`, if stored.
    fn block(&self, height: u64) -> Result<Option<CommittedBlock>, StoreError>;

    /// Stores a decided block, its certificate, the state after it and the
    /// block's receipts (one per transaction, in order) in one atomic, durable
    /// write, indexes the block's transactions by id, and drops the WAL and sign
    /// records of heights up to the block's.
    fn commit(
        &mut self,
        block: &CommittedBlock,
        state: &State,
        receipts: &[TxStatus],
    ) -> Result<(), StoreError>;

    /// The receipts of the committed block at `height`, if stored.
    fn receipts(&self, height: u64) -> Result<Option<Vec<TxStatus>>, StoreError>;

    /// Where the transaction `id` was committed: (height, index in the block).
    fn tx_location(&self, id: &Hash) -> Result<Option<(u64, u32)>, StoreError>;

    /// Appends to the WAL of `height`. It must be durable once a later
    /// [`Store::record_signed`] or [`Store::commit`] returns (it may be sooner).
    fn wal_append(&mut self, height: u64, record: &WalRecord) -> Result<(), StoreError>;

    /// The WAL of `height`, in append order.
    fn wal(&self, height: u64) -> Result<Vec<WalRecord>, StoreError>;

    /// Records that this validator is about to sign, durably.
    fn record_signed(&mut self, record: &SignRecord) -> Result<(), StoreError>;

    /// Every sign record kept (heights above the last committed one), in slot
    /// order.
    fn signed(&self) -> Result<Vec<SignRecord>, StoreError>;
}

impl<S: Store + ?Sized> Store for Box<S> {
    fn last_committed(&self) -> Result<Option<(State, CommittedBlock)>, StoreError> {
        (**self).last_committed()
    }
    fn block(&self, height: u64) -> Result<Option<CommittedBlock>, StoreError> {
        (**self).block(height)
    }
    fn commit(
        &mut self,
        block: &CommittedBlock,
        state: &State,
        receipts: &[TxStatus],
    ) -> Result<(), StoreError> {
        (**self).commit(block, state, receipts)
    }
    fn receipts(&self, height: u64) -> Result<Option<Vec<TxStatus>>, StoreError> {
        (**self).receipts(height)
    }
    fn tx_location(&self, id: &Hash) -> Result<Option<(u64, u32)>, StoreError> {
        (**self).tx_location(id)
    }
    fn wal_append(&mut self, height: u64, record: &WalRecord) -> Result<(), StoreError> {
        (**self).wal_append(height, record)
    }
    fn wal(&self, height: u64) -> Result<Vec<WalRecord>, StoreError> {
        (**self).wal(height)
    }
    fn record_signed(&mut self, record: &SignRecord) -> Result<(), StoreError> {
        (**self).record_signed(record)
    }
    fn signed(&self) -> Result<Vec<SignRecord>, StoreError> {
        (**self).signed()
    }
}
