//! `nodus-validator`: the Nodus proof-of-stake chain.
//!
//! This crate holds the chain's deterministic state machine; consensus through an
//! embedded BFT engine (malachite), the mempool, redb storage and the chain RPC over
//! the `nodus/chain/1` ALPN plug in around it.
//!
//! - [`state::State`]: accounts, stake, farms, nodes, capacity contracts, billing,
//!   uptime, farming rewards and slashing. [`State::apply_block`] takes a
//!   [`BlockHeader`] and the block's [`SignedTx`]s and returns a
//!   [`BlockOutcome`] with the state root and the next validator set.
//! - [`genesis::Genesis`]: the validated genesis file.
//! - [`signature`]: ZIP-215 signature checks, single and batched, that always agree.
//!
//! It deliberately is not node-management code, does no I/O in its core, and does
//! not implement its own consensus algorithm.
//!
//! # Plugging consensus in
//!
//! The consensus glue (malachite) treats a block as the value
//! `(BlockHeader, Vec<SignedTx>, state_root)`:
//!
//! - **Propose**: take transactions the mempool accepted with
//!   [`State::check_txs`] (batched ZIP-215 signature checks), run
//!   [`State::preview`] on them to get the root, and propose the triple.
//! - **Vote**: re-run [`State::preview`] on the proposed header and transactions
//!   and vote for the value only if it succeeds and the root matches
//!   ([`State::apply_block_batched`] gives the same result with one batched
//!   signature check per block). The header's
//!   time must be bounded by the glue (not before the previous block's, not far
//!   ahead of the local clock); the state machine only refuses time going back.
//! - **Decide**: keep the previewed state (or [`State::apply_block`] again), and
//!   store the block, its commit certificate and the state in one write.
//! - **Validators**: [`State::validator_set`] after height `h` is the set for
//!   `h + 1`; [`BlockOutcome::next_validators`] is the same.
//! - **Votes and evidence**: validators sign
//!   [`state::evidence::Vote::signing_bytes`]; two conflicting signed votes the
//!   engine observes become a [`state::evidence::Evidence`], submitted in a
//!   [`TxBody::ReportEvidence`] transaction.
//!
//! ```
//! use nodus_identity::{AccountId, SecretKey};
//! use nodus_validator::{BlockHeader, Genesis, State, state::Address};
//!
//! let validator = SecretKey::from_seed(&[1; 32]);
//! let genesis = Genesis::from_json(&format!(
//!     r#"{{"chain_id": "devnet", "genesis_time": 1000,
//!         "validators": [{{"id": "{}", "stake": 100}}]}}"#,
//!     AccountId::from(validator.public()),
//! ))
//! .unwrap();
//! let mut state = State::from_genesis(&genesis);
//! let header = BlockHeader { height: 1, time: 1001, proposer: Address::from(validator.public()) };
//! let outcome = state.apply_block(&header, &[]).unwrap();
//! assert_eq!(outcome.state_root, state.root());
//! assert_eq!(outcome.next_validators.total_power(), 100);
//! ```

pub mod cli;
pub mod client;
pub mod consensus;
pub mod genesis;
pub mod mempool;
pub mod node;
pub mod rpc;
pub mod signature;
pub mod sim;
pub mod state;
pub mod storage;

pub use genesis::{Genesis, GenesisError};
pub use state::tx::{SignedTx, Tx, TxBody, TxError, TxStatus};
pub use state::{BlockError, BlockHeader, BlockOutcome, State};
