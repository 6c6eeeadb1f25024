//! Transactions: what they say, who signs them, and what a refused one costs.
//!
//! A transaction is a [`Tx`] (nonce, fee, body) in a `nodus-identity` signed
//! statement ([`SignedTx`]) with purpose `TRANSACTION` and this chain's id as its
//! network; the statement's signer is the sender. The statement's own random nonce
//! and `issued_at` play no part (the account nonce orders and de-duplicates); an
//! `expires_at`, if set, is honoured against block time.
//!
//! # Refused transactions
//!
//! - **Rejected** ([`TxStatus::Rejected`]): wrong purpose or chain, expired, bad
//!   signature, wrong nonce, fee below `min_fee` or above the balance. Nothing
//!   changes — not even the nonce — and a block may carry such a transaction
//!   without being invalid (the proposer gains nothing from it).
//! - **Failed** ([`TxStatus::Failed`]): the checks above passed but the body could
//!   not be carried out (say, a transfer beyond the balance). The fee is charged and
//!   the nonce advances, so a failing transaction is not free block space; the body
//!   changes nothing.

use nodus_identity::statement::StatementError;
use nodus_identity::statement::purpose;
use nodus_identity::{SecretKey, Signed, Statement};
use serde::{Deserialize, Serialize};

use super::account::AccountError;
use super::contract::{ContractError, ContractId};
use super::evidence::{Evidence, EvidenceError};
use super::farm::{Capacity, FarmApproval, FarmError, NodeRegistration, PowerTarget};
use super::stake::StakeError;
use super::uptime::{UptimeError, UptimeReport};
use super::{Address, Amount, BlockHeader, Event, Hash, State};
use crate::signature::{self, SignatureError};

/// A signed transaction.
pub type SignedTx = Signed<Tx>;

/// The signed content of a transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tx {
    /// Must equal the sender's account nonce.
    pub nonce: u64,
    /// Paid whatever happens to the body (unless the transaction is rejected).
    pub fee: Amount,
    /// What to do.
    pub body: TxBody,
}

/// What a transaction does. Append-only: new variants go at the end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxBody {
    /// Moves balance to another account (created if new).
    Transfer {
        /// Receiver.
        to: Address,
        /// Base units.
        amount: Amount,
    },
    /// Bonds balance as the sender's validator stake.
    Bond {
        /// Base units.
        amount: Amount,
    },
    /// Starts unbonding stake.
    Unbond {
        /// Base units.
        amount: Amount,
    },
    /// Leaves jail after the jail period.
    Unjail,
    /// Creates a farm owned by the sender.
    RegisterFarm {
        /// Display name.
        name: String,
    },
    /// Registers a node: the node's signed request and the farm owner's approval.
    RegisterNode {
        /// Signed by the node key.
        registration: Box<Signed<NodeRegistration>>,
        /// Signed by the farm owner.
        approval: Box<Signed<FarmApproval>>,
    },
    /// Reports new node capacity (signed by the node key, newer than the last).
    UpdateCapacity {
        /// Signed by the node key.
        registration: Box<Signed<NodeRegistration>>,
    },
    /// Sets a node's power target; only the farm owner may.
    SetPowerTarget {
        /// The node.
        node: Address,
        /// The target.
        target: PowerTarget,
    },
    /// Submits a node's signed uptime report.
    ReportUptime {
        /// Signed by the node key.
        report: Box<Signed<UptimeReport>>,
    },
    /// Opens a capacity contract with the sender as tenant.
    CreateContract {
        /// The node.
        node: Address,
        /// Reserved resources.
        resources: Capacity,
        /// Base units per hour.
        price_per_hour: Amount,
    },
    /// Cancels one of the sender's contracts.
    CancelContract {
        /// The contract.
        contract: ContractId,
    },
    /// Submits double-sign evidence.
    ReportEvidence {
        /// The conflicting votes.
        evidence: Box<Evidence>,
    },
}

impl Tx {
    /// Signs the transaction for `chain_id` as `key`'s account, with no expiry.
    pub fn sign(self, chain_id: &str, key: &SecretKey) -> Result<SignedTx, StatementError> {
        Statement::new(purpose::TRANSACTION, chain_id, key.public(), None, self).sign(key)
    }
}

/// Why a transaction was rejected or failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[non_exhaustive]
pub enum TxError {
    /// Signed for another purpose than `TRANSACTION`. Rejected.
    #[error("Statement purpose is {0:?}, not a transaction")]
    WrongPurpose(String),
    /// Signed for another chain. Rejected.
    #[error("Transaction is for chain {0:?}")]
    WrongNetwork(String),
    /// Past its expiry at block time. Rejected.
    #[error("Transaction expired at {0}")]
    Expired(u64),
    /// The signature does not verify. Rejected.
    #[error("Transaction signature: {0}")]
    Signature(#[from] SignatureError),
    /// The sender's key is not canonically encoded or is weak. Rejected.
    #[error("Sender key is not a canonical, usable key")]
    UnusableSigner,
    /// Not the sender's next nonce (a replay, or out of order). Rejected.
    #[error("Nonce {found}, expected {expected}")]
    BadNonce {
        /// The account's nonce.
        expected: u64,
        /// The transaction's.
        found: u64,
    },
    /// Fee below `min_fee`. Rejected.
    #[error("Fee {fee} is below the minimum {min}")]
    FeeTooLow {
        /// `min_fee`.
        min: Amount,
        /// The transaction's fee.
        fee: Amount,
    },
    /// The sender cannot pay the fee. Rejected.
    #[error("Balance {balance} cannot pay the fee {fee}")]
    CannotPayFee {
        /// The fee.
        fee: Amount,
        /// The balance.
        balance: Amount,
    },
    /// Transfer failed.
    #[error(transparent)]
    Account(#[from] AccountError),
    /// Staking failed.
    #[error(transparent)]
    Stake(#[from] StakeError),
    /// Farm or node operation failed.
    #[error(transparent)]
    Farm(#[from] FarmError),
    /// Uptime report refused.
    #[error(transparent)]
    Uptime(#[from] UptimeError),
    /// Contract operation failed.
    #[error(transparent)]
    Contract(#[from] ContractError),
    /// Evidence refused.
    #[error(transparent)]
    Evidence(#[from] EvidenceError),
}

/// What happened to one transaction of a block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxStatus {
    /// Carried out.
    Applied,
    /// Fee charged and nonce advanced; the body changed nothing.
    Failed(TxError),
    /// Nothing changed.
    Rejected(TxError),
}

/// A transaction's id: SHA-256 of its signed bytes and signature.
pub fn tx_id(tx: &SignedTx) -> Result<Hash, SignatureError> {
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    h.update(signature::statement_bytes(tx)?);
    h.update(tx.signature.to_bytes());
    Ok(h.finalize().into())
}

impl State {
    /// Every check that decides rejection, except the signature: for the mempool,
    /// which verifies signatures in batches ([`crate::signature::Batch`]). Returns
    /// the sender.
    pub fn check_tx_unsigned(&self, tx: &SignedTx) -> Result<Address, TxError> {
        let st = &tx.statement;
        if st.purpose != purpose::TRANSACTION {
            return Err(TxError::WrongPurpose(st.purpose.clone()));
        }
        if st.network != self.chain_id {
            return Err(TxError::WrongNetwork(st.network.clone()));
        }
        if let Some(exp) = st.expires_at
            && self.time >= exp
        {
            return Err(TxError::Expired(exp));
        }
        let sender = Address::from(st.signer);
        if !signature::is_canonical_key(&sender.0) {
            return Err(TxError::UnusableSigner);
        }
        let expected = self.nonce(&sender);
        if st.payload.nonce != expected {
            return Err(TxError::BadNonce {
                expected,
                found: st.payload.nonce,
            });
        }
        let fee = st.payload.fee;
        if fee < self.params.min_fee {
            return Err(TxError::FeeTooLow {
                min: self.params.min_fee,
                fee,
            });
        }
        let balance = self.balance(&sender);
        if balance < fee {
            return Err(TxError::CannotPayFee { fee, balance });
        }
        Ok(sender)
    }

    /// Every check that decides rejection, signature included (ZIP-215). Returns
    /// the sender. `Ok` means the transaction would at least pay its fee if it were
    /// next in a block now.
    pub fn check_tx(&self, tx: &SignedTx) -> Result<Address, TxError> {
        let sender = self.check_tx_unsigned(tx)?;
        signature::verify_statement(tx)?;
        Ok(sender)
    }

    /// [`State::check_tx`] for many transactions, with their signatures verified
    /// as one batch (the mempool's path). The verdicts are exactly those of
    /// `check_tx` one by one, in order: ZIP-215 batch and single verification
    /// agree. Each is checked against this state alone, not after the ones before
    /// it (sequencing nonces is the mempool's job). `rng` draws the batch
    /// coefficients; see [`crate::signature::Batch::verify`].
    pub fn check_txs<R: rand::RngCore + rand::CryptoRng>(
        &self,
        txs: &[SignedTx],
        rng: R,
    ) -> Vec<Result<Address, TxError>> {
        let mut results: Vec<Result<Address, TxError>> =
            txs.iter().map(|t| self.check_tx_unsigned(t)).collect();
        let mut batch = signature::Batch::new();
        let mut queued = Vec::new();
        for (i, (t, r)) in txs.iter().zip(results.iter_mut()).enumerate() {
            if r.is_ok() {
                match batch.push_statement(t) {
                    Ok(()) => queued.push(i),
                    Err(e) => *r = Err(e.into()),
                }
            }
        }
        for (i, verdict) in queued.into_iter().zip(batch.verify(rng)) {
            if let (Err(e), Some(r)) = (verdict, results.get_mut(i)) {
                *r = Err(e.into());
            }
        }
        results
    }

    /// Applies one transaction. `signature` is its verdict from a batch check, if
    /// one was made; otherwise the signature is verified here.
    pub(crate) fn apply_tx(
        &mut self,
        header: &BlockHeader,
        tx: &SignedTx,
        signature: Option<Result<(), SignatureError>>,
        events: &mut Vec<Event>,
    ) -> TxStatus {
        let checked = self.check_tx_unsigned(tx).and_then(|sender| {
            signature.unwrap_or_else(|| signature::verify_statement(tx))?;
            Ok(sender)
        });
        let sender = match checked {
            Ok(sender) => sender,
            Err(e) => return TxStatus::Rejected(e),
        };
        self.charge_fee(sender, tx.statement.payload.fee, header.proposer);
        match self.execute(sender, &tx.statement.payload.body, events) {
            Ok(()) => TxStatus::Applied,
            Err(e) => TxStatus::Failed(e),
        }
    }

    /// Carries out a body. Every handler checks before it changes anything, so an
    /// `Err` leaves the state as it was.
    fn execute(
        &mut self,
        sender: Address,
        body: &TxBody,
        events: &mut Vec<Event>,
    ) -> Result<(), TxError> {
        match body {
            TxBody::Transfer { to, amount } => self.transfer(sender, *to, *amount)?,
            TxBody::Bond { amount } => self.bond(sender, *amount)?,
            TxBody::Unbond { amount } => self.unbond(sender, *amount)?,
            TxBody::Unjail => self.unjail(sender)?,
            TxBody::RegisterFarm { name } => {
                let farm = self.register_farm(sender, name)?;
                events.push(Event::FarmRegistered {
                    farm,
                    owner: sender,
                });
            }
            TxBody::RegisterNode {
                registration,
                approval,
            } => {
                let node = self.register_node(registration, approval)?;
                let farm = registration.statement.payload.farm;
                events.push(Event::NodeRegistered { node, farm });
            }
            TxBody::UpdateCapacity { registration } => self.update_capacity(registration)?,
            TxBody::SetPowerTarget { node, target } => {
                self.set_power_target(sender, *node, *target)?
            }
            TxBody::ReportUptime { report } => {
                self.report_uptime(report)?;
            }
            TxBody::CreateContract {
                node,
                resources,
                price_per_hour,
            } => {
                let contract = self.create_contract(sender, *node, *resources, *price_per_hour)?;
                events.push(Event::ContractCreated {
                    contract,
                    tenant: sender,
                    node: *node,
                });
            }
            TxBody::CancelContract { contract } => {
                self.cancel_contract_by_tenant(sender, *contract, events)?
            }
            TxBody::ReportEvidence { evidence } => {
                self.handle_evidence(evidence, events)?;
            }
        }
        Ok(())
    }
}
