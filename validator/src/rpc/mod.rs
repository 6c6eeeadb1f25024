//! The chain protocol on ALPN `nodus/chain/1`: what clients and validators say.
//!
//! One QUIC connection per peer, authenticated by its ed25519 key (see
//! `nodus_wire`). Two kinds of traffic share it:
//!
//! - **Requests** ([`Request`] → [`Response`]), one bidirectional stream each:
//!   clients submit transactions and run queries.
//! - **Gossip** ([`Gossip`]), only between validators: an ordered push stream per
//!   connection carrying consensus messages (which include block sync: a
//!   validator that fell behind asks a peer for committed blocks with
//!   [`ConsensusMessage::SyncRequest`]) and transactions the mempool admitted.
//!
//! Who may do what is decided from the connection's verified key: gossip is only
//! taken from keys in the current validator set; anyone may query and submit.
//!
//! The types are postcard-encoded; every enum is append-only (new variants at the
//! end), and incompatible changes bump the ALPN.

use serde::{Deserialize, Serialize};

use crate::consensus::ConsensusMessage;
pub use crate::consensus::{Block, CommittedBlock};
use crate::mempool::MempoolError;
use crate::state::contract::{Contract, ContractId};
use crate::state::farm::{Farm, FarmId, Node};
use crate::state::reward::Farming;
use crate::state::stake::{Stake, ValidatorSet};
use crate::state::tx::{SignedTx, TxStatus};
use crate::state::{Address, Amount, Hash};

/// Most transactions in one [`Request::Submit`].
pub const MAX_SUBMIT_TXS: usize = 4_096;
/// A request on its own stream.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Request {
    /// Submit transactions to the mempool (at most [`MAX_SUBMIT_TXS`]).
    Submit(Vec<SignedTx>),
    /// Read chain state.
    Query(Query),
}

/// What to read.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Query {
    /// Balance, nonce and stake of an account.
    Account(Address),
    /// The validator set for the next height.
    Validators,
    /// A registered node.
    Node(Address),
    /// A farm.
    Farm(FarmId),
    /// Contracts, filtered by node and/or tenant (both `None`: every contract).
    Contracts {
        /// Only contracts on this node.
        node: Option<Address>,
        /// Only contracts of this tenant.
        tenant: Option<Address>,
    },
    /// The last decided height.
    Height,
    /// A decided block with its transactions' receipts.
    Block(u64),
    /// Where a submitted transaction is.
    Tx(Hash),
    /// A node's uptime and rewards: the open epoch so far and the last settled
    /// one.
    Farming(Address),
}

/// Account view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountInfo {
    /// The account.
    pub address: Address,
    /// Spendable balance.
    pub balance: Amount,
    /// Nonce the chain expects next.
    pub nonce: u64,
    /// Nonce a new transaction should use, counting the mempool.
    pub next_nonce: u64,
    /// Staking record, if any.
    pub stake: Option<Stake>,
    /// Amount unbonding.
    pub unbonding: Amount,
}

/// Chain head view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeightInfo {
    /// The chain id, the network every signature on this chain names.
    pub chain_id: String,
    /// Last decided height (0 at genesis).
    pub height: u64,
    /// Its block time.
    pub time: u64,
    /// The state root after it.
    pub state_root: Hash,
}

/// Where a transaction is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxLocation {
    /// Waiting in this validator's mempool.
    Pending,
    /// Decided in a block, with its receipt.
    Included {
        /// The block height.
        height: u64,
        /// What happened.
        status: TxStatus,
    },
    /// Not known here: never seen by this validator, or dropped from its mempool
    /// before any block took it (receipts of decided transactions are kept with
    /// their block for good).
    Unknown,
}

/// A request's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Response {
    /// Per submitted transaction: its id, or why it was refused.
    Submitted(Vec<Result<Hash, MempoolError>>),
    /// [`Query::Account`].
    Account(AccountInfo),
    /// [`Query::Validators`].
    Validators(ValidatorSet),
    /// [`Query::Node`].
    Node(Option<Node>),
    /// [`Query::Farm`].
    Farm(Option<Farm>),
    /// [`Query::Contracts`].
    Contracts(Vec<(ContractId, Contract)>),
    /// [`Query::Height`].
    Height(HeightInfo),
    /// [`Query::Block`]: the block and a receipt per transaction, stored with the
    /// block in the same write.
    Block(Option<(Box<CommittedBlock>, Vec<TxStatus>)>),
    /// [`Query::Tx`].
    Tx(TxLocation),
    /// The request was refused.
    Error(RpcError),
    /// [`Query::Farming`]: `None` when the node is not registered.
    Farming(Option<Farming>),
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[non_exhaustive]
pub enum RpcError {
    /// Too many items in one request.
    #[error("Request too large: {0} items, at most {1}")]
    TooLarge(usize, usize),
    /// The node is shutting down or its core is gone.
    #[error("Validator is not serving")]
    Unavailable,
}

/// Validator-to-validator gossip, on an ordered push stream.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Gossip {
    /// A consensus message (proposals, votes, certificates, block sync).
    Consensus(ConsensusMessage),
    /// Transactions this validator admitted; peers check them again.
    Txs(Vec<SignedTx>),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::reward::EpochResult;

    #[test]
    fn farming_is_appended_and_round_trips() {
        // Postcard encodes a variant as its index: new variants go at the end.
        let q = postcard::to_allocvec(&Query::Farming(Address([7; 32]))).unwrap();
        assert_eq!(q[0], 8);
        let farming = Farming {
            epoch_secs: 20,
            current_epoch: 3,
            current_uptime_secs: 9,
            current_possible_secs: 10,
            last: Some(EpochResult {
                epoch: 2,
                possible_secs: 20,
                uptime_secs: 20,
                reward: u128::MAX,
            }),
        };
        let bytes = postcard::to_allocvec(&Response::Farming(Some(farming))).unwrap();
        assert_eq!(bytes[0], 10);
        match postcard::from_bytes::<Response>(&bytes).unwrap() {
            Response::Farming(Some(f)) => assert_eq!(f, farming),
            other => panic!("{other:?}"),
        }
    }
}
