//! Staking: bonding, unbonding, the validator set, jail.
//!
//! A validator is an account that bonds stake to itself; its account key also
//! signs its consensus votes. (Delegation is not part of this version.)
//!
//! - **Bond** moves balance into bonded stake at once.
//! - **Unbond** moves bonded stake into the unbonding queue; it returns to the
//!   balance at the first block at or after `height + unbonding_period_blocks`.
//!   While it waits it is still slashable, which is what the period is for.
//! - **Validator set** for the next height: every account with at least
//!   `min_validator_stake` bonded that is not jailed at that height, the top
//!   `max_validators` by bonded stake (ties: lower address first). Voting power is
//!   `bonded / stake_per_power`, rounded down, saturating at `u64::MAX`.
//! - **Jail**: a double-signer is left out of the set until it sends `Unjail`,
//!   which is accepted from height `jailed_until` on (so coming back is a
//!   deliberate act of its operator, not a timer).
//! - **One punishment per jail**: a key can double-sign at several heights before
//!   the evidence of its first offence is committed. The jail covers all of them:
//!   while jailed it is not slashed again, and after `Unjail` at height `u`,
//!   evidence for any height up to `u` is refused ([`Stake::slashable_from`]).
//!   Only an offence committed after it came back slashes again.

use serde::{Deserialize, Serialize};

use super::account::AccountError;
use super::{Address, Amount, Event, State};

/// Staking record of one account.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stake {
    /// Bonded stake, base units.
    pub bonded: Amount,
    /// If jailed: the first height at which `Unjail` is accepted.
    pub jailed_until: Option<u64>,
    /// Double-sign evidence for heights below this slashes nothing: those
    /// offences were committed before (or during) an earlier jail, which already
    /// punished them. Set to the unjail height + 1 when the validator unjails.
    pub slashable_from: u64,
}

impl Stake {
    /// A record with `amount` bonded and no jail.
    pub fn bonded(amount: Amount) -> Self {
        Self {
            bonded: amount,
            jailed_until: None,
            slashable_from: 0,
        }
    }

    /// True while jailed: until an `Unjail` is accepted, which is allowed from
    /// height `jailed_until` on.
    pub fn is_jailed(&self) -> bool {
        self.jailed_until.is_some()
    }

    /// True if an offence at `height` is already covered by a jail (the current
    /// one, or one the validator has served): evidence for it must not slash.
    pub fn covers_offence_at(&self, height: u64) -> bool {
        self.is_jailed() || height < self.slashable_from
    }
}

/// A member of the validator set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidatorInfo {
    /// The validator's key.
    pub address: Address,
    /// Voting power.
    pub power: u64,
    /// Bonded stake behind it.
    pub stake: Amount,
}

/// The validator set for one height, by descending power then ascending address.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidatorSet {
    /// Members, in order.
    pub validators: Vec<ValidatorInfo>,
}

impl ValidatorSet {
    /// True if `address` is a member.
    pub fn contains(&self, address: &Address) -> bool {
        self.validators.iter().any(|v| v.address == *address)
    }

    /// Total voting power (saturating).
    pub fn total_power(&self) -> u64 {
        self.validators
            .iter()
            .fold(0u64, |t, v| t.saturating_add(v.power))
    }
}

/// Why a staking transaction failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[non_exhaustive]
pub enum StakeError {
    /// Balance problem when bonding.
    #[error(transparent)]
    Account(#[from] AccountError),
    /// Unbonding more than is bonded.
    #[error("Bonded stake {bonded} is below the {requested} requested")]
    InsufficientBond {
        /// What was asked.
        requested: Amount,
        /// What is bonded.
        bonded: Amount,
    },
    /// Bonded stake would overflow.
    #[error("Bonded stake would overflow")]
    Overflow,
    /// `Unjail` from a validator that is not jailed.
    #[error("Not jailed")]
    NotJailed,
    /// `Unjail` before the jail time is over.
    #[error("Jailed until height {until}")]
    StillJailed {
        /// First height at which unjailing is allowed.
        until: u64,
    },
}

impl State {
    /// The validator set for the block after the last applied one.
    pub fn validator_set(&self) -> ValidatorSet {
        let p = &self.params;
        let mut candidates: Vec<(&Address, &Stake)> = self
            .stakes
            .iter()
            .filter(|(_, s)| s.bonded >= p.min_validator_stake && !s.is_jailed())
            .collect();
        // Stable order: stake descending, then address ascending (BTreeMap order).
        candidates.sort_by_key(|(_, s)| std::cmp::Reverse(s.bonded));
        let validators = candidates
            .into_iter()
            .take(p.max_validators as usize)
            .map(|(address, s)| ValidatorInfo {
                address: *address,
                power: u64::try_from(s.bonded / p.stake_per_power).unwrap_or(u64::MAX),
                stake: s.bonded,
            })
            .collect();
        ValidatorSet { validators }
    }

    pub(crate) fn bond(&mut self, who: Address, amount: Amount) -> Result<(), StakeError> {
        if amount == 0 {
            return Err(AccountError::ZeroAmount.into());
        }
        let bonded = self.stakes.get(&who).map_or(0, |s| s.bonded);
        let new_bonded = bonded.checked_add(amount).ok_or(StakeError::Overflow)?;
        self.debit(who, amount)?;
        self.stakes.entry(who).or_default().bonded = new_bonded;
        Ok(())
    }

    pub(crate) fn unbond(&mut self, who: Address, amount: Amount) -> Result<(), StakeError> {
        if amount == 0 {
            return Err(AccountError::ZeroAmount.into());
        }
        let bonded = self.stakes.get(&who).map_or(0, |s| s.bonded);
        let rest = bonded
            .checked_sub(amount)
            .ok_or(StakeError::InsufficientBond {
                requested: amount,
                bonded,
            })?;
        let release = self
            .height
            .saturating_add(self.params.unbonding_period_blocks);
        let waiting = self.unbonding.get(&(release, who)).copied().unwrap_or(0);
        let waiting = waiting.checked_add(amount).ok_or(StakeError::Overflow)?;
        self.unbonding.insert((release, who), waiting);
        if let Some(s) = self.stakes.get_mut(&who) {
            s.bonded = rest;
        }
        Ok(())
    }

    pub(crate) fn unjail(&mut self, who: Address) -> Result<(), StakeError> {
        let Some(stake) = self.stakes.get_mut(&who) else {
            return Err(StakeError::NotJailed);
        };
        match stake.jailed_until {
            None => Err(StakeError::NotJailed),
            Some(until) if self.height < until => Err(StakeError::StillJailed { until }),
            Some(_) => {
                stake.jailed_until = None;
                // It votes again from the next height; everything it signed up to
                // here was covered by the jail it served.
                stake.slashable_from = self.height.saturating_add(1);
                Ok(())
            }
        }
    }

    /// Returns matured unbonding amounts to their owners.
    pub(crate) fn release_unbonded(&mut self, events: &mut Vec<Event>) {
        let later = self
            .unbonding
            .split_off(&(self.height.saturating_add(1), Address([0; 32])));
        let due = std::mem::replace(&mut self.unbonding, later);
        for ((_, address), amount) in due {
            if amount == 0 {
                continue; // slashed to nothing
            }
            if self.deposit(address, amount).is_err() {
                // Cannot happen while supply is conserved (a balance never exceeds
                // the supply); keep the amount waiting rather than lose it.
                self.unbonding
                    .insert((self.height.saturating_add(1), address), amount);
                continue;
            }
            events.push(Event::UnbondingReleased { address, amount });
        }
    }

    /// Slashes `bps` of `who`'s bonded and unbonding stake (each rounded down) and
    /// jails it. Returns the amount destroyed.
    ///
    /// The jail is recorded even for a key whose stake is all unbonding (a record
    /// with nothing bonded), so its other offences from before the jail cannot
    /// slash it again.
    pub(crate) fn slash_and_jail(&mut self, who: Address, bps: u32, jailed_until: u64) -> Amount {
        let mut destroyed: Amount = 0;
        let stake = self.stakes.entry(who).or_default();
        let cut = super::math::bps_of(stake.bonded, bps);
        stake.bonded -= cut.min(stake.bonded);
        destroyed = destroyed.saturating_add(cut);
        stake.jailed_until = Some(
            stake
                .jailed_until
                .map_or(jailed_until, |j| j.max(jailed_until)),
        );
        for ((_, address), amount) in self.unbonding.iter_mut() {
            if *address == who {
                let cut = super::math::bps_of(*amount, bps);
                *amount -= cut.min(*amount);
                destroyed = destroyed.saturating_add(cut);
            }
        }
        self.supply.slashed = self.supply.slashed.saturating_add(destroyed);
        destroyed
    }
}
