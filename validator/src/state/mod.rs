//! The deterministic state machine: what the chain knows, and how a block changes it.
//!
//! [`State`] is pure data in ordered maps. [`State::apply_block`] takes a
//! [`BlockHeader`] (height, time, proposer — agreed by consensus) and the block's
//! transactions, and either refuses the whole block ([`BlockError`], state
//! untouched) or applies it and returns a [`BlockOutcome`]: a receipt per
//! transaction, the events, the validator set for the next height and the
//! [state root](State::root). No clocks, no randomness, no I/O: the same genesis and
//! the same blocks give the same root on every machine.
//!
//! # A block, step by step
//!
//! 1. Header checks: the next height, time not going back, a proposer from the
//!    current validator set.
//! 2. Unbonded stake whose period has run out returns to its owner's balance.
//! 3. Transactions, in order (see [`tx`] for what a refused one costs).
//! 4. Billing of every open contract, when the height is a multiple of
//!    `billing_interval_blocks` — inside block processing, so no validator can skip it.
//! 5. Farming rewards for every epoch whose late-report window has closed.
//! 6. The validator set for the next height, and the state root.
//!
//! # Money
//!
//! Amounts are `u128` base units with checked arithmetic throughout. The supply
//! identity `balances + bonded + unbonding == genesis + minted − slashed − burned`
//! holds after every block ([`State::supply_is_conserved`]): rewards mint, slashing
//! and the burned share of fees destroy, everything else moves.
//!
//! # State root
//!
//! SHA-256 over `nodus/state/v1\0` followed by the postcard encoding of the whole
//! state. Every map is a `BTreeMap`, so the encoding is canonical. It is linear in
//! the state size; an incremental Merkle scheme can replace it behind
//! [`State::root`] once storage (redb) keeps the state on disk.

pub mod account;
pub mod contract;
pub mod evidence;
pub mod farm;
pub mod math;
pub mod reward;
pub mod stake;
pub mod tx;
pub mod uptime;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use nodus_identity::{AccountId, PublicKey};
use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use crate::genesis::{Genesis, Params};
use account::Account;
use contract::{Contract, ContractId, ContractState};
use farm::{Farm, FarmId, Node};
use stake::{Stake, ValidatorSet};
use tx::{SignedTx, TxStatus};

/// An amount of the chain's token, in base units.
pub type Amount = u128;

/// A SHA-256 digest.
pub type Hash = [u8; 32];

/// The context the state root hash starts with; bump it when the encoding changes.
const ROOT_CONTEXT: &[u8] = b"nodus/state/v1\0";

/// Most reward epochs settled in one block; a chain that stood still for longer
/// catches up over the following blocks instead of in one long block.
pub const MAX_EPOCHS_PER_BLOCK: u64 = 16;

/// A key on the chain, as raw public-key bytes: an account, a validator or a node.
/// Ordered, so it can key the state's maps. Displays as an account id.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Address(pub [u8; 32]);

impl From<PublicKey> for Address {
    fn from(key: PublicKey) -> Self {
        Self(*key.as_bytes())
    }
}

impl From<&PublicKey> for Address {
    fn from(key: &PublicKey) -> Self {
        Self(*key.as_bytes())
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match PublicKey::from_bytes(&self.0) {
            Ok(key) => write!(f, "{}", AccountId::from(key)),
            Err(_) => {
                for b in &self.0 {
                    write!(f, "{b:02x}")?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Address({self})")
    }
}

/// What consensus agreed about a block, besides its transactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockHeader {
    /// Height; the first block after genesis is 1.
    pub height: u64,
    /// Block time, Unix seconds (the proposer's, bounded by consensus).
    pub time: u64,
    /// The validator that proposed the block; it receives the unburned fees.
    pub proposer: Address,
}

/// Why a whole block was refused. The state is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BlockError {
    /// Not the next height.
    #[error("Block height {found}, expected {expected}")]
    WrongHeight {
        /// The next height.
        expected: u64,
        /// The block's height.
        found: u64,
    },
    /// Block time before the previous block's (or genesis).
    #[error("Block time {found} is before the previous block time {previous}")]
    TimeWentBack {
        /// The previous block's time.
        previous: u64,
        /// The block's time.
        found: u64,
    },
    /// The proposer is not in the current validator set.
    #[error("Proposer {0} is not a current validator")]
    UnknownProposer(Address),
}

/// Supply bookkeeping: where tokens came from and where they went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Supply {
    /// Supply at genesis.
    pub genesis: Amount,
    /// Minted since genesis (farming rewards).
    pub minted: Amount,
    /// Destroyed by slashing.
    pub slashed: Amount,
    /// Destroyed by fee burning.
    pub burned: Amount,
}

impl Supply {
    /// `genesis + minted − slashed − burned`, or `None` if that is not a valid
    /// amount (which would be a bug).
    pub fn expected(&self) -> Option<Amount> {
        self.genesis
            .checked_add(self.minted)?
            .checked_sub(self.slashed)?
            .checked_sub(self.burned)
    }
}

/// Something that happened in a block, for clients and the agent to follow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Event {
    /// A farm was created.
    FarmRegistered {
        /// Its id.
        farm: FarmId,
        /// Its owner.
        owner: Address,
    },
    /// A node joined a farm.
    NodeRegistered {
        /// The node key.
        node: Address,
        /// Its farm.
        farm: FarmId,
    },
    /// A capacity contract was opened.
    ContractCreated {
        /// Its id.
        contract: ContractId,
        /// The tenant.
        tenant: Address,
        /// The node.
        node: Address,
    },
    /// Unbonded stake became spendable.
    UnbondingReleased {
        /// The owner.
        address: Address,
        /// The amount.
        amount: Amount,
    },
    /// A contract was billed.
    ContractBilled {
        /// The contract.
        contract: ContractId,
        /// Paid by the tenant to the farm owner.
        amount: Amount,
    },
    /// A contract's tenant could not pay; the contract is in grace.
    ContractInGrace {
        /// The contract.
        contract: ContractId,
        /// What was due.
        due: Amount,
    },
    /// A contract in grace was paid up and is active again.
    ContractReactivated {
        /// The contract.
        contract: ContractId,
    },
    /// A contract ended.
    ContractCancelled {
        /// The contract.
        contract: ContractId,
        /// Why.
        reason: contract::CancelReason,
        /// Paid to the farm owner at cancellation.
        paid: Amount,
        /// Owed but not paid (the tenant ran out).
        unpaid: Amount,
    },
    /// A node earned farming rewards for an epoch.
    NodeRewarded {
        /// The epoch.
        epoch: u64,
        /// The node.
        node: Address,
        /// The farm owner who received it.
        owner: Address,
        /// Minted and paid.
        amount: Amount,
    },
    /// An epoch was settled.
    EpochSettled {
        /// The epoch.
        epoch: u64,
        /// Total minted for it.
        minted: Amount,
    },
    /// A validator was slashed and jailed for double signing.
    Slashed {
        /// The validator.
        validator: Address,
        /// Stake destroyed.
        amount: Amount,
        /// Jailed until this height.
        jailed_until: u64,
    },
}

/// The result of applying a block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockOutcome {
    /// The block's height.
    pub height: u64,
    /// One status per transaction, in order.
    pub receipts: Vec<TxStatus>,
    /// What happened, in order.
    pub events: Vec<Event>,
    /// The validators for the next height.
    pub next_validators: ValidatorSet,
    /// The state root after the block.
    pub state_root: Hash,
}

/// The whole chain state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    chain_id: String,
    genesis_time: u64,
    params: Params,
    /// Height of the last applied block; 0 before the first.
    height: u64,
    /// Time of the last applied block (genesis time before the first).
    time: u64,
    accounts: BTreeMap<Address, Account>,
    stakes: BTreeMap<Address, Stake>,
    /// (release height, owner) → amount waiting out its unbonding period.
    unbonding: BTreeMap<(u64, Address), Amount>,
    farms: BTreeMap<FarmId, Farm>,
    next_farm_id: FarmId,
    nodes: BTreeMap<Address, Node>,
    contracts: BTreeMap<ContractId, Contract>,
    next_contract_id: ContractId,
    /// (epoch, node) → seconds of uptime credited to that epoch.
    uptime_credit: BTreeMap<(u64, Address), u64>,
    /// Epochs before this one have been settled.
    settled_epochs: u64,
    /// node → its result in the last settled epoch it took part in.
    farming: BTreeMap<Address, reward::EpochResult>,
    /// (validator, height) pairs already punished for double signing.
    punished: BTreeSet<(Address, u64)>,
    supply: Supply,
}

impl State {
    /// The state at genesis.
    pub fn from_genesis(genesis: &Genesis) -> Self {
        let accounts = genesis
            .accounts
            .iter()
            .map(|(a, b)| {
                (
                    *a,
                    Account {
                        balance: *b,
                        nonce: 0,
                    },
                )
            })
            .collect();
        let stakes = genesis
            .validators
            .iter()
            .map(|(a, s)| (*a, Stake::bonded(*s)))
            .collect();
        Self {
            chain_id: genesis.chain_id.clone(),
            genesis_time: genesis.genesis_time,
            params: genesis.params.clone(),
            height: 0,
            time: genesis.genesis_time,
            accounts,
            stakes,
            unbonding: BTreeMap::new(),
            farms: BTreeMap::new(),
            next_farm_id: 1,
            nodes: BTreeMap::new(),
            contracts: BTreeMap::new(),
            next_contract_id: 1,
            uptime_credit: BTreeMap::new(),
            settled_epochs: 0,
            farming: BTreeMap::new(),
            punished: BTreeSet::new(),
            supply: Supply {
                genesis: genesis.supply(),
                ..Supply::default()
            },
        }
    }

    /// Applies a block. On `Err` nothing changed; on `Ok` the state is at
    /// `header.height`.
    pub fn apply_block(
        &mut self,
        header: &BlockHeader,
        txs: &[SignedTx],
    ) -> Result<BlockOutcome, BlockError> {
        self.apply_block_with(header, txs, None)
    }

    /// [`State::apply_block`], with every transaction signature verified up front
    /// in one batch. The outcome is identical (ZIP-215 batch and single
    /// verification agree); only faster for full blocks. `rng` draws the batch
    /// coefficients and must be unpredictable to transaction senders (OS-seeded).
    pub fn apply_block_batched<R: rand::RngCore + rand::CryptoRng>(
        &mut self,
        header: &BlockHeader,
        txs: &[SignedTx],
        rng: R,
    ) -> Result<BlockOutcome, BlockError> {
        self.apply_block_batched_skipping(header, txs, rng, |_| false)
    }

    /// [`State::apply_block_batched`], leaving out of the batch every transaction
    /// for which `verified` returns true: it counts as correctly signed.
    /// `verified` must answer true only for a transaction whose exact signed bytes
    /// and signature verified under ZIP-215 rules before (the engine keys such a
    /// cache by [`tx::tx_id`], which hashes both); then the outcome is identical.
    pub fn apply_block_batched_skipping<R: rand::RngCore + rand::CryptoRng>(
        &mut self,
        header: &BlockHeader,
        txs: &[SignedTx],
        rng: R,
        mut verified: impl FnMut(&SignedTx) -> bool,
    ) -> Result<BlockOutcome, BlockError> {
        let mut batch = crate::signature::Batch::new();
        let mut verdicts: Vec<Result<(), crate::signature::SignatureError>> =
            Vec::with_capacity(txs.len());
        let mut queued = Vec::new();
        for (i, tx) in txs.iter().enumerate() {
            if verified(tx) {
                verdicts.push(Ok(()));
                continue;
            }
            match batch.push_statement(tx) {
                Ok(()) => {
                    queued.push(i);
                    verdicts.push(Ok(()));
                }
                Err(e) => verdicts.push(Err(e)),
            }
        }
        for (i, verdict) in queued.into_iter().zip(batch.verify(rng)) {
            if let Some(slot) = verdicts.get_mut(i) {
                *slot = verdict;
            }
        }
        self.apply_block_with(header, txs, Some(&verdicts))
    }

    fn apply_block_with(
        &mut self,
        header: &BlockHeader,
        txs: &[SignedTx],
        signatures: Option<&[Result<(), crate::signature::SignatureError>]>,
    ) -> Result<BlockOutcome, BlockError> {
        let expected = self.height.saturating_add(1);
        if header.height != expected {
            return Err(BlockError::WrongHeight {
                expected,
                found: header.height,
            });
        }
        if header.time < self.time {
            return Err(BlockError::TimeWentBack {
                previous: self.time,
                found: header.time,
            });
        }
        if !self.validator_set().contains(&header.proposer) {
            return Err(BlockError::UnknownProposer(header.proposer));
        }
        self.height = header.height;
        self.time = header.time;
        let mut events = Vec::new();
        self.release_unbonded(&mut events);
        let receipts = txs
            .iter()
            .enumerate()
            .map(|(i, tx)| {
                let signature = signatures.and_then(|s| s.get(i)).cloned();
                self.apply_tx(header, tx, signature, &mut events)
            })
            .collect();
        if header
            .height
            .is_multiple_of(self.params.billing_interval_blocks)
        {
            self.bill_contracts(&mut events);
        }
        self.settle_epochs(&mut events);
        // Offences older than the evidence age limit can no longer be reported, so
        // their records are no longer needed to refuse a second punishment.
        let max_age = self.params.max_evidence_age_blocks;
        self.punished
            .retain(|(_, h)| header.height.saturating_sub(*h) <= max_age);
        Ok(BlockOutcome {
            height: header.height,
            receipts,
            events,
            next_validators: self.validator_set(),
            state_root: self.root(),
        })
    }

    /// Applies a block to a copy, leaving `self` as it is: what a validator runs to
    /// check a proposal before voting for it, and a proposer to learn the root.
    pub fn preview(
        &self,
        header: &BlockHeader,
        txs: &[SignedTx],
    ) -> Result<(State, BlockOutcome), BlockError> {
        let mut next = self.clone();
        let outcome = next.apply_block(header, txs)?;
        Ok((next, outcome))
    }

    /// The state root: see the [module docs](self#state-root).
    pub fn root(&self) -> Hash {
        let mut hasher = sha2::Sha256::new();
        hasher.update(ROOT_CONTEXT);
        // Every type in the state serializes infallibly with postcard (no maps with
        // non-serializable keys, no `serialize_any`), so an error here is a bug.
        #[allow(clippy::expect_used)]
        let bytes = postcard::to_allocvec(self).expect("state encodes");
        hasher.update(&bytes);
        hasher.finalize().into()
    }

    /// The chain id.
    pub fn chain_id(&self) -> &str {
        &self.chain_id
    }

    /// The chain parameters.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// Height of the last applied block (0 at genesis).
    pub fn height(&self) -> u64 {
        self.height
    }

    /// Time of the last applied block (genesis time at genesis).
    pub fn time(&self) -> u64 {
        self.time
    }

    /// Supply bookkeeping.
    pub fn supply(&self) -> Supply {
        self.supply
    }

    /// Sum of every balance, bonded stake and unbonding amount, or `None` on
    /// overflow.
    pub fn circulating(&self) -> Option<Amount> {
        let mut total: Amount = 0;
        for a in self.accounts.values() {
            total = total.checked_add(a.balance)?;
        }
        for s in self.stakes.values() {
            total = total.checked_add(s.bonded)?;
        }
        for u in self.unbonding.values() {
            total = total.checked_add(*u)?;
        }
        Some(total)
    }

    /// True when everything held adds up to `genesis + minted − slashed − burned`.
    pub fn supply_is_conserved(&self) -> bool {
        matches!((self.circulating(), self.supply.expected()), (Some(a), Some(b)) if a == b)
    }

    /// The account at `address`, if it exists.
    pub fn account(&self, address: &Address) -> Option<&Account> {
        self.accounts.get(address)
    }

    /// Spendable balance of `address` (0 for unknown accounts).
    pub fn balance(&self, address: &Address) -> Amount {
        self.accounts.get(address).map_or(0, |a| a.balance)
    }

    /// The next nonce `address` must use.
    pub fn nonce(&self, address: &Address) -> u64 {
        self.accounts.get(address).map_or(0, |a| a.nonce)
    }

    /// Staking record of `address`.
    pub fn stake(&self, address: &Address) -> Option<&Stake> {
        self.stakes.get(address)
    }

    /// Amount `address` has unbonding, in total.
    pub fn unbonding_of(&self, address: &Address) -> Amount {
        self.unbonding
            .iter()
            .filter(|((_, a), _)| a == address)
            .fold(0, |t: Amount, (_, v)| t.saturating_add(*v))
    }

    /// A farm.
    pub fn farm(&self, id: FarmId) -> Option<&Farm> {
        self.farms.get(&id)
    }

    /// A node.
    pub fn node(&self, id: &Address) -> Option<&Node> {
        self.nodes.get(id)
    }

    /// A contract.
    pub fn contract(&self, id: ContractId) -> Option<&Contract> {
        self.contracts.get(&id)
    }

    /// Contracts on `node`, cancelled ones included.
    pub fn contracts_on(&self, node: &Address) -> impl Iterator<Item = (&ContractId, &Contract)> {
        let node = *node;
        self.contracts.iter().filter(move |(_, c)| c.node == node)
    }

    /// Open (active or in grace) contracts.
    pub fn open_contracts(&self) -> impl Iterator<Item = (&ContractId, &Contract)> {
        self.contracts
            .iter()
            .filter(|(_, c)| !matches!(c.state, ContractState::Cancelled { .. }))
    }

    /// Uptime seconds credited to `node` in an unsettled `epoch`.
    pub fn uptime_credit(&self, epoch: u64, node: &Address) -> u64 {
        self.uptime_credit
            .get(&(epoch, *node))
            .copied()
            .unwrap_or(0)
    }

    /// Number of settled epochs (the next epoch to settle).
    pub fn settled_epochs(&self) -> u64 {
        self.settled_epochs
    }

    /// Start of `epoch`, Unix seconds (saturating).
    pub fn epoch_start(&self, epoch: u64) -> u64 {
        self.genesis_time
            .saturating_add(epoch.saturating_mul(self.params.epoch_secs))
    }

    /// The epoch that contains time `t` (epoch 0 for times before genesis).
    pub fn epoch_of(&self, t: u64) -> u64 {
        t.saturating_sub(self.genesis_time) / self.params.epoch_secs
    }
}
