//! Double-sign evidence: two conflicting votes signed by one validator key.
//!
//! A [`Vote`] is what a validator signs in a consensus round; its signed bytes are
//! domain-separated (`nodus/vote/v1\0` and the chain id), so no other signature
//! made with the key can pass for a vote. [`Evidence`] holds two [`SignedVote`]s
//! for the same height, round and step with different values. Anyone can check it
//! without trusting the reporter: both signatures must verify (ZIP-215) under the
//! same key.
//!
//! Accepted evidence slashes `slash_fraction_bps` of the validator's bonded *and*
//! unbonding stake (rounded down, destroyed) and jails it for
//! `jail_period_blocks`. One offence is punished once: the chain remembers each
//! punished (validator, height), so the same evidence — or another pair of votes
//! from the same height — submitted again is refused and slashes nothing more.
//! One jail also covers every *other* offence the key committed before it came
//! back: while jailed, and afterwards for any height up to its unjail, evidence is
//! refused with [`EvidenceError::CoveredByJail`] (see
//! [`Stake::slashable_from`](super::stake::Stake::slashable_from)). A key that
//! double-signed at several heights before its first evidence was committed is
//! therefore slashed once, not once per height.
//! Evidence older than `max_evidence_age_blocks` is refused (that limit is below
//! the unbonding period, so the stake that signed is still there).

use nodus_identity::{SecretKey, Signature};
use serde::{Deserialize, Serialize};

use super::{Address, Amount, Event, Hash, State};
use crate::signature::{self, SignatureError};

/// Context of every vote's signed bytes.
pub const VOTE_CONTEXT: &[u8] = b"nodus/vote/v1\0";

/// The voting step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum VoteStep {
    /// First voting step.
    Prevote,
    /// Second voting step.
    Precommit,
}

/// A consensus vote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vote {
    /// Height voted on.
    pub height: u64,
    /// Round within the height.
    pub round: u32,
    /// Step within the round.
    pub step: VoteStep,
    /// The value (block hash) voted for; `None` is a nil vote.
    pub value: Option<Hash>,
}

impl Vote {
    /// The bytes a validator signs for this vote on `chain_id`.
    pub fn signing_bytes(&self, chain_id: &str) -> Vec<u8> {
        let mut b = Vec::with_capacity(VOTE_CONTEXT.len() + chain_id.len() + 52);
        b.extend_from_slice(VOTE_CONTEXT);
        // Chain ids are at most 64 bytes (genesis validation), so this cannot truncate.
        b.extend_from_slice(&(chain_id.len() as u32).to_be_bytes());
        b.extend_from_slice(chain_id.as_bytes());
        b.extend_from_slice(&self.height.to_be_bytes());
        b.extend_from_slice(&self.round.to_be_bytes());
        b.push(match self.step {
            VoteStep::Prevote => 1,
            VoteStep::Precommit => 2,
        });
        match &self.value {
            None => b.push(0),
            Some(h) => {
                b.push(1);
                b.extend_from_slice(h);
            }
        }
        b
    }

    /// Signs the vote with `key` (through `nodus-identity`).
    pub fn sign(self, chain_id: &str, key: &SecretKey) -> SignedVote {
        let signature = key.sign_raw(&self.signing_bytes(chain_id));
        SignedVote {
            vote: self,
            validator: Address::from(key.public()),
            signature,
        }
    }
}

/// A vote with its validator's signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedVote {
    /// The vote.
    pub vote: Vote,
    /// The signing validator's key.
    pub validator: Address,
    /// ed25519 over [`Vote::signing_bytes`].
    pub signature: Signature,
}

impl SignedVote {
    /// Verifies the signature with ZIP-215 rules.
    pub fn verify(&self, chain_id: &str) -> Result<(), SignatureError> {
        signature::verify(
            &self.validator.0,
            &self.vote.signing_bytes(chain_id),
            &self.signature.to_bytes(),
        )
    }
}

/// Proof that a validator signed two different values for one (height, round,
/// step).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// One vote.
    pub first: SignedVote,
    /// The conflicting vote.
    pub second: SignedVote,
}

/// Why evidence was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[non_exhaustive]
pub enum EvidenceError {
    /// The votes are from different keys.
    #[error("Votes are from different validators")]
    DifferentValidators,
    /// The votes are for different heights, rounds or steps.
    #[error("Votes are for different heights, rounds or steps")]
    DifferentSlots,
    /// The votes agree: no offence.
    #[error("Votes are for the same value")]
    SameValue,
    /// A vote's signature does not verify.
    #[error("Vote signature: {0}")]
    Signature(#[from] SignatureError),
    /// For a height the chain has not reached.
    #[error("Evidence for height {height} is ahead of the chain ({current})")]
    FromTheFuture {
        /// Evidence height.
        height: u64,
        /// Current height.
        current: u64,
    },
    /// Older than `max_evidence_age_blocks`.
    #[error("Evidence for height {height} is too old (current {current})")]
    TooOld {
        /// Evidence height.
        height: u64,
        /// Current height.
        current: u64,
    },
    /// The key has no stake to slash.
    #[error("{0} has no stake")]
    NotAValidator(Address),
    /// This offence was punished already.
    #[error("{validator} was already punished for height {height}")]
    AlreadyPunished {
        /// The validator.
        validator: Address,
        /// The height.
        height: u64,
    },
    /// The validator is jailed, or its offence at this height predates a jail it
    /// has served: that jail punished it already.
    #[error("{validator} is or was jailed for offences up to height {height}")]
    CoveredByJail {
        /// The validator.
        validator: Address,
        /// The evidence height.
        height: u64,
    },
}

impl Evidence {
    /// Checks that the evidence proves a double sign on `chain_id`; returns the
    /// offender and the height. Does not look at chain state.
    pub fn verify(&self, chain_id: &str) -> Result<(Address, u64), EvidenceError> {
        let (a, b) = (&self.first, &self.second);
        if a.validator != b.validator {
            return Err(EvidenceError::DifferentValidators);
        }
        if (a.vote.height, a.vote.round, a.vote.step) != (b.vote.height, b.vote.round, b.vote.step)
        {
            return Err(EvidenceError::DifferentSlots);
        }
        if a.vote.value == b.vote.value {
            return Err(EvidenceError::SameValue);
        }
        a.verify(chain_id)?;
        b.verify(chain_id)?;
        Ok((a.validator, a.vote.height))
    }
}

impl State {
    /// Every check [`TxBody::ReportEvidence`](crate::TxBody::ReportEvidence)
    /// makes against the chain, without changing it: `Ok` with the offender and
    /// the height if the evidence would slash now. The mempool and a reporting
    /// validator use it to leave out evidence the chain would refuse.
    pub fn check_evidence(&self, evidence: &Evidence) -> Result<(Address, u64), EvidenceError> {
        let (validator, height) = evidence.verify(&self.chain_id)?;
        let has_stake = self.stakes.get(&validator).is_some_and(|s| s.bonded > 0)
            || self.unbonding.keys().any(|(_, a)| *a == validator);
        if !has_stake {
            return Err(EvidenceError::NotAValidator(validator));
        }
        let current = self.height;
        if height > current {
            return Err(EvidenceError::FromTheFuture { height, current });
        }
        if current - height > self.params.max_evidence_age_blocks {
            return Err(EvidenceError::TooOld { height, current });
        }
        if self.punished.contains(&(validator, height)) {
            return Err(EvidenceError::AlreadyPunished { validator, height });
        }
        if self
            .stakes
            .get(&validator)
            .is_some_and(|s| s.covers_offence_at(height))
        {
            return Err(EvidenceError::CoveredByJail { validator, height });
        }
        Ok((validator, height))
    }

    /// Checks evidence against the chain and punishes the offender; returns the
    /// amount slashed.
    pub(crate) fn handle_evidence(
        &mut self,
        evidence: &Evidence,
        events: &mut Vec<Event>,
    ) -> Result<Amount, EvidenceError> {
        let (validator, height) = self.check_evidence(evidence)?;
        let current = self.height;
        self.punished.insert((validator, height));
        let jailed_until = current.saturating_add(self.params.jail_period_blocks);
        let amount = self.slash_and_jail(validator, self.params.slash_fraction_bps, jailed_until);
        events.push(Event::Slashed {
            validator,
            amount,
            jailed_until,
        });
        Ok(amount)
    }
}
