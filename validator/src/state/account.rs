//! Accounts, transfers and fees.
//!
//! An account is a balance and a nonce, keyed by its public key. It comes into
//! being when it first receives tokens. The nonce counts the account's accepted
//! transactions; a transaction must carry exactly the current nonce, so each can
//! be applied once and in the order its sender meant.
//!
//! # Fees
//!
//! A transaction pays its declared fee (at least `min_fee`). `fee_burn_bps` of it,
//! rounded down, is burned; the rest — so the rounding remainder too — goes to the
//! block's proposer, the validators' income. Burning part of it keeps fee
//! manipulation by proposers (padding their own blocks) from being free.

use serde::{Deserialize, Serialize};

use super::math::bps_of;
use super::{Address, Amount, State};

/// An account.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// Spendable balance, base units.
    pub balance: Amount,
    /// The nonce the next transaction from this account must carry.
    pub nonce: u64,
}

/// Why a transfer failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[non_exhaustive]
pub enum AccountError {
    /// Transfers and stake moves of zero are refused (they would only create empty
    /// accounts).
    #[error("Amount must be above zero")]
    ZeroAmount,
    /// Not enough spendable balance.
    #[error("Balance {available} is below the {needed} needed")]
    InsufficientBalance {
        /// What the operation needed.
        needed: Amount,
        /// What the account has.
        available: Amount,
    },
    /// The receiver is not a canonical, usable ed25519 key: nobody could ever
    /// spend what it received, or it aliases another address.
    #[error("Receiver {0} is not a valid key")]
    InvalidReceiver(Address),
    /// The receiver's balance would overflow.
    #[error("Receiving balance would overflow")]
    Overflow,
}

impl State {
    /// Moves `amount` from `from` to `to`. Checks everything before changing
    /// anything.
    pub(crate) fn transfer(
        &mut self,
        from: Address,
        to: Address,
        amount: Amount,
    ) -> Result<(), AccountError> {
        if amount == 0 {
            return Err(AccountError::ZeroAmount);
        }
        if !crate::signature::is_canonical_key(&to.0) {
            return Err(AccountError::InvalidReceiver(to));
        }
        let available = self.balance(&from);
        let new_from = available
            .checked_sub(amount)
            .ok_or(AccountError::InsufficientBalance {
                needed: amount,
                available,
            })?;
        if from == to {
            return Ok(());
        }
        let new_to = self
            .balance(&to)
            .checked_add(amount)
            .ok_or(AccountError::Overflow)?;
        self.accounts.entry(from).or_default().balance = new_from;
        self.accounts.entry(to).or_default().balance = new_to;
        Ok(())
    }

    /// Takes `amount` out of `from`'s balance (it is moving into stake, or being
    /// paid for something the caller credits elsewhere).
    pub(crate) fn debit(&mut self, from: Address, amount: Amount) -> Result<(), AccountError> {
        let available = self.balance(&from);
        let new = available
            .checked_sub(amount)
            .ok_or(AccountError::InsufficientBalance {
                needed: amount,
                available,
            })?;
        if let Some(a) = self.accounts.get_mut(&from) {
            a.balance = new;
        }
        Ok(())
    }

    /// Adds `amount` to `to`'s balance, creating the account if needed. Does
    /// nothing and fails if the balance would overflow.
    pub(crate) fn deposit(&mut self, to: Address, amount: Amount) -> Result<(), AccountError> {
        let new = self
            .balance(&to)
            .checked_add(amount)
            .ok_or(AccountError::Overflow)?;
        if amount > 0 || self.accounts.contains_key(&to) {
            self.accounts.entry(to).or_default().balance = new;
        }
        Ok(())
    }

    /// Charges an already-checked fee: takes it from `payer`, bumps the nonce,
    /// burns the burn share and pays the rest to `proposer`.
    ///
    /// The caller has checked `balance(payer) ≥ fee`. If the proposer's balance
    /// would overflow, its share is burned instead, so supply still adds up.
    pub(crate) fn charge_fee(&mut self, payer: Address, fee: Amount, proposer: Address) {
        let account = self.accounts.entry(payer).or_default();
        account.balance = account.balance.saturating_sub(fee);
        account.nonce = account.nonce.saturating_add(1);
        let burn = bps_of(fee, self.params.fee_burn_bps);
        let tip = fee.saturating_sub(burn); // burn ≤ fee by construction of bps_of
        let burned = match self.deposit(proposer, tip) {
            Ok(()) => burn,
            Err(_) => fee,
        };
        self.supply.burned = self.supply.burned.saturating_add(burned);
    }
}
