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

pub mod genesis;
pub mod signature;
pub mod state;

pub use genesis::{Genesis, GenesisError};
pub use state::tx::{SignedTx, Tx, TxBody, TxError, TxStatus};
pub use state::{BlockError, BlockHeader, BlockOutcome, State};
