//! [`VerifiedTxs`]: ids of transactions whose signature this validator already
//! verified, so checking a proposed block does not verify them again.
//!
//! Every transaction reaching a validator is verified once when it enters the
//! mempool, and then again in every block that carries it (the proposer's own
//! preview, every other validator's proposal check). On a loaded chain that
//! doubled the signature work. The mempool now records what it verified here and
//! the engine's block check skips those signatures.
//!
//! # Why this is consensus-safe
//!
//! A transaction id is SHA-256 over the exact signed bytes (which name the
//! signer's key) followed by the 64-byte signature, see
//! [`tx_id`](crate::state::tx::tx_id). A ZIP-215 verdict is a pure function of
//! (key, message, signature): the same bytes verify the same way every time, in a
//! batch or alone, on any validator. So an id that verified once stands for a
//! signature that verifies, and skipping the check cannot change the block's
//! outcome — only finding a SHA-256 collision could. Only ids whose signature
//! *verified* are recorded; a failure is never cached, and a forgotten id is
//! simply verified again.

use std::collections::{HashSet, VecDeque};

use crate::state::Hash;

/// Default number of ids remembered: twice the mempool's default count bound,
/// so everything a full pool holds is still known when a block carries it.
pub const DEFAULT_VERIFIED_CAPACITY: usize = 2 * crate::mempool::DEFAULT_MAX_TXS;

/// A bounded set of verified transaction ids, oldest forgotten first.
#[derive(Debug, Clone)]
pub struct VerifiedTxs {
    ids: HashSet<Hash>,
    order: VecDeque<Hash>,
    capacity: usize,
    hits: u64,
    misses: u64,
}

impl Default for VerifiedTxs {
    fn default() -> Self {
        Self::new(DEFAULT_VERIFIED_CAPACITY)
    }
}

impl VerifiedTxs {
    /// An empty set holding at most `capacity` ids (at least one).
    pub fn new(capacity: usize) -> Self {
        Self {
            ids: HashSet::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
            hits: 0,
            misses: 0,
        }
    }

    /// Records that the transaction `id` has a signature that verified under
    /// ZIP-215 rules. Call it only after such a check succeeded.
    pub fn insert(&mut self, id: Hash) {
        if !self.ids.insert(id) {
            return;
        }
        self.order.push_back(id);
        while self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.ids.remove(&old);
            }
        }
    }

    /// True if `id` verified before; counts hits and misses.
    pub fn check(&mut self, id: &Hash) -> bool {
        let known = self.ids.contains(id);
        if known {
            self.hits = self.hits.saturating_add(1);
        } else {
            self.misses = self.misses.saturating_add(1);
        }
        known
    }

    /// True if `id` verified before.
    pub fn contains(&self, id: &Hash) -> bool {
        self.ids.contains(id)
    }

    /// Number of ids held.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True when no id is held.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// (hits, misses) of [`VerifiedTxs::check`] so far: how many block
    /// signatures were skipped and how many were verified.
    pub fn stats(&self) -> (u64, u64) {
        (self.hits, self.misses)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oldest_ids_are_forgotten_beyond_the_capacity() {
        let mut v = VerifiedTxs::new(2);
        v.insert([1; 32]);
        v.insert([2; 32]);
        v.insert([1; 32]);
        v.insert([3; 32]);
        assert!(!v.contains(&[1; 32]));
        assert!(v.contains(&[2; 32]) && v.contains(&[3; 32]));
        assert_eq!(v.len(), 2);
        assert!(v.check(&[2; 32]));
        assert!(!v.check(&[9; 32]));
        assert_eq!(v.stats(), (1, 1));
    }
}
