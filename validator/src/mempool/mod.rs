//! The mempool: signed transactions waiting for a block.
//!
//! A transaction enters only if it would pay its fee in the next block once the
//! sender's earlier pending transactions have run: right purpose and chain, not
//! expired, a ZIP-215 signature that verifies (checked in batches through
//! [`State::check_txs`]-style [`signature::Batch`]es, which give exactly the
//! verdicts of single checks), a fee at least `min_fee`, the sender's *next*
//! nonce after those already pending, and a balance that covers every pending fee.
//!
//! The pool is bounded twice: by count ([`MempoolConfig::max_txs`]) and by encoded
//! size ([`MempoolConfig::max_bytes`]). When full, a newcomer that pays a higher
//! fee evicts the cheapest transaction that is last in its sender's queue (evicting
//! an earlier one would strand the ones behind it); otherwise it is refused with
//! [`MempoolError::Full`].
//!
//! Double-sign evidence is deduplicated: a
//! [`ReportEvidence`](crate::TxBody::ReportEvidence) transaction enters only if
//! the chain would slash on it ([`State::check_evidence`]; evidence for the
//! height in progress, which every validator spots at the same time, counts) and
//! no other evidence against the same validator is pending — one jail covers all
//! of that validator's earlier offences, so a second report would only cost its
//! sender the fee ([`MempoolError::EvidencePending`]).
//!
//! [`Mempool::batch`] gives the proposer an ordered batch: each sender's
//! transactions in nonce order, senders interleaved by fee (highest first), ties
//! by arrival. [`Mempool::on_block`] drops what a decided block made stale.
//!
//! Sans-IO like the state machine: no clocks, no tasks; the node runtime owns it.

use std::collections::{BTreeMap, BinaryHeap, HashMap};

use rand::{CryptoRng, RngCore};

use crate::TxBody;
use crate::signature::{self, SignatureError};
use crate::state::evidence::EvidenceError;
use crate::state::tx::{SignedTx, TxError, tx_id};
use crate::state::{Address, Amount, Hash, State};

/// Default most transactions held: about ten full blocks at the benchmark's rate,
/// small enough that re-checking the pool after each block stays cheap.
pub const DEFAULT_MAX_TXS: usize = 50_000;
/// Default most encoded bytes held (64 MiB): bounds memory whatever the sizes.
pub const DEFAULT_MAX_BYTES: usize = 64 << 20;
/// Default most pending transactions per sender: one account cannot fill the pool.
pub const DEFAULT_MAX_PER_SENDER: usize = 10_000;
/// Largest single transaction accepted, encoded (64 KiB): far above any real body
/// (a node registration with two signatures is well under 1 KiB).
pub const MAX_TX_BYTES: usize = 64 << 10;

/// Mempool bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MempoolConfig {
    /// Most transactions held.
    pub max_txs: usize,
    /// Most encoded bytes held.
    pub max_bytes: usize,
    /// Most pending transactions per sender.
    pub max_per_sender: usize,
}

impl Default for MempoolConfig {
    fn default() -> Self {
        Self {
            max_txs: DEFAULT_MAX_TXS,
            max_bytes: DEFAULT_MAX_BYTES,
            max_per_sender: DEFAULT_MAX_PER_SENDER,
        }
    }
}

/// Why a transaction was not admitted (or was evicted).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum MempoolError {
    /// The state machine would reject it (signature, chain, fee, balance…).
    #[error(transparent)]
    Tx(#[from] TxError),
    /// Its nonce is already used on chain or by a pending transaction.
    #[error("Nonce {found} is already used; next is {next}")]
    NonceUsed {
        /// The sender's next free nonce (chain nonce plus pending).
        next: u64,
        /// The transaction's.
        found: u64,
    },
    /// Its nonce leaves a gap after the sender's pending transactions.
    #[error("Nonce {found} leaves a gap; next is {next}")]
    NonceGap {
        /// The sender's next free nonce.
        next: u64,
        /// The transaction's.
        found: u64,
    },
    /// The sender's balance does not cover this fee on top of its pending fees.
    #[error("Balance {balance} cannot pay {pending} of pending fees plus {fee}")]
    CannotPayFees {
        /// Spendable balance on chain.
        balance: Amount,
        /// Fees of the sender's pending transactions.
        pending: Amount,
        /// This transaction's fee.
        fee: Amount,
    },
    /// Exactly this transaction is already pending.
    #[error("Transaction is already pending")]
    Duplicate,
    /// Larger than [`MAX_TX_BYTES`].
    #[error("Transaction is {0} bytes, above the limit")]
    TooLarge(usize),
    /// The sender already has [`MempoolConfig::max_per_sender`] pending.
    #[error("Sender has too many pending transactions")]
    SenderFull,
    /// The pool is full and this fee does not beat the cheapest evictable one.
    #[error("Mempool is full; fee must exceed {min_fee_to_enter}")]
    Full {
        /// The fee of the cheapest transaction that could be evicted.
        min_fee_to_enter: Amount,
    },
    /// Evicted by a transaction paying more.
    #[error("Evicted by a higher-fee transaction")]
    Evicted,
    /// Evidence against this validator is already pending.
    #[error("Evidence against {0} is already pending")]
    EvidencePending(Address),
}

#[derive(Debug, Clone)]
struct Entry {
    tx: SignedTx,
    id: Hash,
    bytes: usize,
    seq: u64,
}

/// Pending transactions of one sender, keyed by nonce, contiguous from the
/// sender's chain nonce.
#[derive(Debug, Default, Clone)]
struct Queue {
    txs: BTreeMap<u64, Entry>,
    fees: Amount,
}

/// The pool. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct Mempool {
    config: MempoolConfig,
    senders: HashMap<Address, Queue>,
    ids: HashMap<Hash, (Address, u64)>,
    /// Offender → id of the pending evidence against it.
    evidence: HashMap<Address, Hash>,
    bytes: usize,
    seq: u64,
}

/// A transaction admitted by [`Mempool::insert_batch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admitted {
    /// Its id.
    pub id: Hash,
    /// Ids of transactions evicted to make room.
    pub evicted: Vec<Hash>,
}

impl Mempool {
    /// An empty pool.
    pub fn new(config: MempoolConfig) -> Self {
        Self {
            config,
            senders: HashMap::new(),
            ids: HashMap::new(),
            evidence: HashMap::new(),
            bytes: 0,
            seq: 0,
        }
    }

    /// Number of pending transactions.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True when nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Encoded bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// True if a transaction with this id is pending.
    pub fn contains(&self, id: &Hash) -> bool {
        self.ids.contains_key(id)
    }

    /// The next nonce `sender` should use: its chain nonce plus what is pending.
    pub fn next_nonce(&self, state: &State, sender: &Address) -> u64 {
        let base = state.nonce(sender);
        self.senders
            .get(sender)
            .and_then(|q| q.txs.keys().next_back())
            .map_or(base, |last| last.saturating_add(1).max(base))
    }

    /// Checks and admits `txs` against `state` (the last decided state), verifying
    /// all their signatures in one batch. Returns one verdict per transaction, in
    /// order; transactions of one sender may arrive in the same batch in nonce
    /// order. `rng` draws the batch coefficients (OS-seeded in production).
    pub fn insert_batch<R: RngCore + CryptoRng>(
        &mut self,
        state: &State,
        txs: Vec<SignedTx>,
        rng: R,
    ) -> Vec<Result<Admitted, MempoolError>> {
        // Stage 1: everything that needs no signature, and the encoding.
        let mut staged: Vec<Result<(SignedTx, Address, Hash, usize), MempoolError>> =
            Vec::with_capacity(txs.len());
        let mut batch = signature::Batch::new();
        let mut queued = Vec::new();
        for (i, tx) in txs.into_iter().enumerate() {
            let pre = self.precheck(state, &tx);
            let pre = pre.and_then(|(sender, id, bytes)| {
                batch
                    .push_statement(&tx)
                    .map_err(|e| MempoolError::Tx(e.into()))?;
                queued.push(i);
                Ok((sender, id, bytes))
            });
            staged.push(pre.map(|(s, id, b)| (tx, s, id, b)));
        }
        // Stage 2: the signatures, as one batch.
        let mut verdicts: Vec<Option<Result<(), SignatureError>>> = vec![None; staged.len()];
        for (i, v) in queued.into_iter().zip(batch.verify(rng)) {
            if let Some(slot) = verdicts.get_mut(i) {
                *slot = Some(v);
            }
        }
        // Stage 3: admit in order (nonces and fees depend on what came before).
        staged
            .into_iter()
            .zip(verdicts)
            .map(|(staged, verdict)| {
                let (tx, sender, id, bytes) = staged?;
                match verdict {
                    Some(Ok(())) => {}
                    Some(Err(e)) => return Err(MempoolError::Tx(e.into())),
                    // Every staged Ok was queued; a missing verdict would be a bug,
                    // and refusing is the safe answer.
                    None => return Err(MempoolError::Tx(SignatureError::Invalid.into())),
                }
                self.admit(state, tx, sender, id, bytes)
            })
            .collect()
    }

    /// Admits one transaction (single signature check). Same rules as
    /// [`Mempool::insert_batch`].
    pub fn insert<R: RngCore + CryptoRng>(
        &mut self,
        state: &State,
        tx: SignedTx,
        rng: R,
    ) -> Result<Admitted, MempoolError> {
        self.insert_batch(state, vec![tx], rng)
            .pop()
            .unwrap_or(Err(MempoolError::Duplicate))
    }

    /// The checks that need neither the signature nor the pool's other entries.
    fn precheck(
        &self,
        state: &State,
        tx: &SignedTx,
    ) -> Result<(Address, Hash, usize), MempoolError> {
        let bytes = postcard::experimental::serialized_size(tx)
            .map_err(|e| MempoolError::Tx(SignatureError::Encoding(e.to_string()).into()))?;
        if bytes > MAX_TX_BYTES {
            return Err(MempoolError::TooLarge(bytes));
        }
        let id = tx_id(tx).map_err(|e| MempoolError::Tx(e.into()))?;
        if self.ids.contains_key(&id) {
            return Err(MempoolError::Duplicate);
        }
        let sender = match state.check_tx_unsigned(tx) {
            Ok(sender) => sender,
            // The state only knows the chain nonce; a later nonce may still follow
            // this sender's pending transactions, and the fee checks that come after
            // the nonce in `check_tx_unsigned` are redone in `admit`.
            Err(TxError::BadNonce { expected, found }) if found > expected => {
                Address::from(tx.statement.signer)
            }
            Err(TxError::BadNonce { expected, found }) => {
                return Err(MempoolError::NonceUsed {
                    next: expected,
                    found,
                });
            }
            Err(e) => return Err(e.into()),
        };
        Ok((sender, id, bytes))
    }

    fn admit(
        &mut self,
        state: &State,
        tx: SignedTx,
        sender: Address,
        id: Hash,
        bytes: usize,
    ) -> Result<Admitted, MempoolError> {
        if self.ids.contains_key(&id) {
            return Err(MempoolError::Duplicate);
        }
        let next = self.next_nonce(state, &sender);
        let nonce = tx.statement.payload.nonce;
        if nonce < next {
            return Err(MempoolError::NonceUsed { next, found: nonce });
        }
        if nonce > next {
            return Err(MempoolError::NonceGap { next, found: nonce });
        }
        let fee = tx.statement.payload.fee;
        let min = state.params().min_fee;
        if fee < min {
            return Err(TxError::FeeTooLow { min, fee }.into());
        }
        let queue = self.senders.get(&sender);
        let pending = queue.map_or(0, |q| q.fees);
        let pending_count = queue.map_or(0, |q| q.txs.len());
        let balance = state.balance(&sender);
        if pending.checked_add(fee).is_none_or(|total| total > balance) {
            return Err(MempoolError::CannotPayFees {
                balance,
                pending,
                fee,
            });
        }
        if pending_count >= self.config.max_per_sender {
            return Err(MempoolError::SenderFull);
        }
        // After the sender's signature verified: checking evidence costs two
        // more signature checks, which an unsigned flood must not buy.
        let offender = match &tx.statement.payload.body {
            TxBody::ReportEvidence { evidence } => {
                let offender = match state.check_evidence(evidence) {
                    Ok((offender, _)) => offender,
                    // Spotted at the height in progress: valid in the next block,
                    // unless a jail already covers it.
                    Err(EvidenceError::FromTheFuture { height, current })
                        if height == current.saturating_add(1) =>
                    {
                        let offender = evidence.first.validator;
                        if state
                            .stake(&offender)
                            .is_some_and(|s| s.covers_offence_at(height))
                        {
                            let e = EvidenceError::CoveredByJail {
                                validator: offender,
                                height,
                            };
                            return Err(TxError::Evidence(e).into());
                        }
                        offender
                    }
                    Err(e) => return Err(TxError::Evidence(e).into()),
                };
                if self.evidence.contains_key(&offender) {
                    return Err(MempoolError::EvidencePending(offender));
                }
                Some(offender)
            }
            _ => None,
        };
        let evicted = self.make_room(bytes, fee, &sender)?;
        self.seq = self.seq.wrapping_add(1);
        let queue = self.senders.entry(sender).or_default();
        queue.fees = queue.fees.saturating_add(fee);
        queue.txs.insert(
            nonce,
            Entry {
                tx,
                id,
                bytes,
                seq: self.seq,
            },
        );
        self.ids.insert(id, (sender, nonce));
        if let Some(offender) = offender {
            self.evidence.insert(offender, id);
        }
        self.bytes = self.bytes.saturating_add(bytes);
        Ok(Admitted { id, evicted })
    }

    /// Evicts cheaper transactions until `bytes` more fit, or fails without
    /// evicting anything.
    fn make_room(
        &mut self,
        bytes: usize,
        fee: Amount,
        sender: &Address,
    ) -> Result<Vec<Hash>, MempoolError> {
        let fits = |count: usize, held: usize, cfg: &MempoolConfig| {
            count < cfg.max_txs && held.saturating_add(bytes) <= cfg.max_bytes
        };
        if fits(self.ids.len(), self.bytes, &self.config) {
            return Ok(Vec::new());
        }
        // Candidates: the last transaction of each other sender, cheapest first.
        let mut tails: Vec<(Amount, std::cmp::Reverse<u64>, Address)> = self
            .senders
            .iter()
            .filter(|(a, _)| *a != sender)
            .filter_map(|(a, q)| {
                q.txs
                    .values()
                    .next_back()
                    .map(|e| (e.tx.statement.payload.fee, std::cmp::Reverse(e.seq), *a))
            })
            .collect();
        tails.sort();
        let (mut count, mut held) = (self.ids.len(), self.bytes);
        let mut victims = Vec::new();
        for (tail_fee, _, addr) in &tails {
            if fits(count, held, &self.config) {
                break;
            }
            if *tail_fee >= fee {
                break;
            }
            if let Some(e) = self
                .senders
                .get(addr)
                .and_then(|q| q.txs.values().next_back())
            {
                count = count.saturating_sub(1);
                held = held.saturating_sub(e.bytes);
                victims.push(*addr);
            }
        }
        if !fits(count, held, &self.config) {
            return Err(MempoolError::Full {
                min_fee_to_enter: tails.first().map_or(0, |t| t.0),
            });
        }
        let mut evicted = Vec::new();
        for addr in victims {
            if let Some(last) = self
                .senders
                .get(&addr)
                .and_then(|q| q.txs.keys().next_back().copied())
                && let Some(e) = self.remove(&addr, last)
            {
                evicted.push(e.id);
            }
        }
        Ok(evicted)
    }

    fn remove(&mut self, sender: &Address, nonce: u64) -> Option<Entry> {
        let queue = self.senders.get_mut(sender)?;
        let entry = queue.txs.remove(&nonce)?;
        queue.fees = queue.fees.saturating_sub(entry.tx.statement.payload.fee);
        if queue.txs.is_empty() {
            self.senders.remove(sender);
        }
        self.ids.remove(&entry.id);
        self.evidence.retain(|_, id| *id != entry.id);
        self.bytes = self.bytes.saturating_sub(entry.bytes);
        Some(entry)
    }

    /// An ordered batch for the proposer: at most `max_txs` transactions and
    /// `max_bytes` encoded bytes; each sender's in nonce order, senders by fee
    /// (highest first) and then arrival. The transactions stay in the pool until
    /// [`Mempool::on_block`] sees them decided.
    pub fn batch(&self, max_txs: usize, max_bytes: usize) -> Vec<SignedTx> {
        // A heap of each sender's next transaction; popping one pushes the
        // sender's following one.
        #[derive(PartialEq, Eq, PartialOrd, Ord)]
        struct Head {
            fee: Amount,
            earlier: std::cmp::Reverse<u64>,
            sender: Address,
            nonce: u64,
        }
        let head = |sender: &Address, e: &Entry| Head {
            fee: e.tx.statement.payload.fee,
            earlier: std::cmp::Reverse(e.seq),
            sender: *sender,
            nonce: e.tx.statement.payload.nonce,
        };
        let mut heap: BinaryHeap<Head> = self
            .senders
            .iter()
            .filter_map(|(a, q)| q.txs.values().next().map(|e| head(a, e)))
            .collect();
        let mut out = Vec::new();
        let mut used = 0usize;
        while let Some(h) = heap.pop() {
            if out.len() >= max_txs {
                break;
            }
            let Some(queue) = self.senders.get(&h.sender) else {
                continue;
            };
            let Some(e) = queue.txs.get(&h.nonce) else {
                continue;
            };
            if used.saturating_add(e.bytes) > max_bytes {
                // This sender's later transactions cannot go without this one.
                continue;
            }
            used = used.saturating_add(e.bytes);
            out.push(e.tx.clone());
            if let Some((_, next)) = queue.txs.range(h.nonce.saturating_add(1)..).next() {
                heap.push(head(&h.sender, next));
            }
        }
        out
    }

    /// Forgets what `state` (just decided) made stale: transactions whose nonce
    /// is used, and those whose sender can no longer pay their fees. Returns how
    /// many were dropped.
    pub fn on_block(&mut self, state: &State) -> usize {
        let mut dropped = 0;
        let senders: Vec<Address> = self.senders.keys().copied().collect();
        for sender in senders {
            let chain_nonce = state.nonce(&sender);
            let stale: Vec<u64> = self
                .senders
                .get(&sender)
                .map(|q| q.txs.range(..chain_nonce).map(|(n, _)| *n).collect())
                .unwrap_or_default();
            for n in stale {
                if self.remove(&sender, n).is_some() {
                    dropped += 1;
                }
            }
            // Fees beyond the balance: drop from the back, so the queue stays
            // contiguous.
            let balance = state.balance(&sender);
            while let Some(q) = self.senders.get(&sender) {
                if q.fees <= balance {
                    break;
                }
                let Some(last) = q.txs.keys().next_back().copied() else {
                    break;
                };
                if self.remove(&sender, last).is_some() {
                    dropped += 1;
                }
            }
            // A gap (the chain skipped none, but a queue that no longer starts at the
            // chain nonce can never be included): drop it whole.
            if let Some(q) = self.senders.get(&sender)
                && q.txs
                    .keys()
                    .next()
                    .is_some_and(|first| *first != chain_nonce)
            {
                let all: Vec<u64> = q.txs.keys().copied().collect();
                for n in all {
                    if self.remove(&sender, n).is_some() {
                        dropped += 1;
                    }
                }
            }
        }
        dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::BlockHeader;
    use crate::{Genesis, Tx, TxBody};
    use nodus_identity::{AccountId, SecretKey};
    use rand::{SeedableRng, rngs::StdRng};

    fn key(seed: u8) -> SecretKey {
        SecretKey::from_seed(&[seed; 32])
    }

    fn addr(seed: u8) -> Address {
        Address::from(key(seed).public())
    }

    fn setup() -> State {
        let v = key(100);
        let genesis = Genesis::from_json(&format!(
            r#"{{"chain_id":"t","genesis_time":1000,
                "accounts":[{{"id":"{}","balance":1000000}},{{"id":"{}","balance":1000000}},
                            {{"id":"{}","balance":2500}}],
                "validators":[{{"id":"{}","stake":100}}]}}"#,
            AccountId::from(key(1).public()),
            AccountId::from(key(2).public()),
            AccountId::from(key(3).public()),
            AccountId::from(v.public()),
        ))
        .unwrap();
        State::from_genesis(&genesis)
    }

    fn transfer(from: u8, nonce: u64, fee: Amount) -> SignedTx {
        Tx {
            nonce,
            fee,
            body: TxBody::Transfer {
                to: addr(9),
                amount: 1,
            },
        }
        .sign("t", &key(from))
        .unwrap()
    }

    fn rng() -> StdRng {
        StdRng::seed_from_u64(3)
    }

    fn report(from: u8, nonce: u64, offender: u8, height: u64, second: u8) -> SignedTx {
        use crate::state::evidence::{Evidence, Vote, VoteStep};
        let vote = |v| Vote {
            height,
            round: 0,
            step: VoteStep::Prevote,
            value: Some([v; 32]),
        };
        Tx {
            nonce,
            fee: 1_000,
            body: TxBody::ReportEvidence {
                evidence: Box::new(Evidence {
                    first: vote(1).sign("t", &key(offender)),
                    second: vote(second).sign("t", &key(offender)),
                }),
            },
        }
        .sign("t", &key(from))
        .unwrap()
    }

    #[test]
    fn evidence_is_deduplicated_and_refused_when_the_chain_would_refuse_it() {
        let state = setup();
        let mut pool = Mempool::new(MempoolConfig::default());
        let offender = addr(100);
        // Spotted at the height in progress (1, the chain is at 0): admitted.
        assert!(pool.insert(&state, report(1, 0, 100, 1, 2), rng()).is_ok());
        // Another report against the same validator, from someone else: one jail
        // covers every earlier offence, so it would only cost its fee.
        assert_eq!(
            pool.insert(&state, report(2, 0, 100, 1, 3), rng()),
            Err(MempoolError::EvidencePending(offender))
        );
        // Not evidence (the same value twice), and from a key with no stake.
        assert_eq!(
            pool.insert(&state, report(2, 0, 100, 1, 1), rng()),
            Err(MempoolError::Tx(TxError::Evidence(
                EvidenceError::SameValue
            )))
        );
        assert_eq!(
            pool.insert(&state, report(2, 0, 3, 1, 2), rng()),
            Err(MempoolError::Tx(TxError::Evidence(
                EvidenceError::NotAValidator(addr(3))
            )))
        );
        // Two heights ahead: not yet.
        assert!(matches!(
            pool.insert(&state, report(2, 0, 100, 2, 2), rng()),
            Err(MempoolError::Tx(TxError::Evidence(
                EvidenceError::FromTheFuture { .. }
            )))
        ));
        // Once the pending report leaves the pool, another may enter.
        let header = BlockHeader {
            height: 1,
            time: 1000,
            proposer: offender,
        };
        let mut next = state.clone();
        let txs = pool.batch(10, 1 << 20);
        assert_eq!(txs.len(), 1);
        next.apply_block(&header, &txs).unwrap();
        pool.on_block(&next);
        assert!(pool.is_empty());
        // The offence at 1 is punished now: a report of it is refused.
        assert!(matches!(
            pool.insert(&next, report(2, 0, 100, 1, 3), rng()),
            Err(MempoolError::Tx(TxError::Evidence(
                EvidenceError::AlreadyPunished { .. }
            )))
        ));
    }

    #[test]
    fn admits_in_nonce_order_and_refuses_replays_and_gaps() {
        let state = setup();
        let mut pool = Mempool::new(MempoolConfig::default());
        let first = transfer(1, 0, 1000);
        let r = pool.insert_batch(
            &state,
            vec![
                first.clone(),
                transfer(1, 1, 1000),
                transfer(1, 1, 1001),
                transfer(1, 3, 1000),
            ],
            rng(),
        );
        assert!(r[0].is_ok() && r[1].is_ok(), "{r:?}");
        assert_eq!(r[2], Err(MempoolError::NonceUsed { next: 2, found: 1 }));
        assert_eq!(r[3], Err(MempoolError::NonceGap { next: 2, found: 3 }));
        assert_eq!(
            pool.insert(&state, first, rng()),
            Err(MempoolError::Duplicate)
        );
        // The same nonce signed again is another transaction, and a replay.
        assert_eq!(
            pool.insert(&state, transfer(1, 0, 1000), rng()),
            Err(MempoolError::NonceUsed { next: 2, found: 0 })
        );
        assert_eq!(pool.next_nonce(&state, &addr(1)), 2);
        assert_eq!(pool.len(), 2);
    }

    #[test]
    fn bad_signature_wrong_chain_and_low_fee_are_refused_with_reasons() {
        let state = setup();
        let mut pool = Mempool::new(MempoolConfig::default());
        let mut forged = transfer(1, 0, 1000);
        forged.statement.payload.fee = 2000;
        let other_chain = Tx {
            nonce: 0,
            fee: 1000,
            body: TxBody::Unjail,
        }
        .sign("other", &key(2))
        .unwrap();
        let r = pool.insert_batch(
            &state,
            vec![
                forged,
                other_chain,
                transfer(2, 0, 999),
                transfer(2, 0, 1000),
            ],
            rng(),
        );
        assert_eq!(
            r[0],
            Err(MempoolError::Tx(TxError::Signature(
                SignatureError::Invalid
            )))
        );
        assert!(matches!(
            r[1],
            Err(MempoolError::Tx(TxError::WrongNetwork(_)))
        ));
        assert!(matches!(
            r[2],
            Err(MempoolError::Tx(TxError::FeeTooLow { .. }))
        ));
        assert!(r[3].is_ok());
    }

    /// The wire decode of a transaction remembers signer keys it accepted
    /// (`PublicKey::from_bytes_cached`); that must change no verdict: a weak or
    /// non-canonical signer is refused at decode every time, with the same error,
    /// and a tampered transaction from a remembered signer still fails its
    /// signature check.
    #[test]
    fn decoding_from_remembered_keys_changes_no_verdict() {
        let state = setup();
        let good = transfer(1, 0, 1000);
        let bytes = postcard::to_allocvec(&good).unwrap();
        let signer = *good.statement.signer.as_bytes();
        let at = bytes
            .windows(32)
            .position(|w| w == signer)
            .expect("the signer's bytes are in the encoding");
        let with_signer = |key: [u8; 32]| {
            let mut b = bytes.clone();
            b[at..at + 32].copy_from_slice(&key);
            b
        };
        let mut weak = [0u8; 32];
        weak[0] = 1;
        let mut y_is_p = [0xffu8; 32];
        y_is_p[0] = 0xed;
        y_is_p[31] = 0x7f;
        let refusal = |key: [u8; 32]| {
            postcard::from_bytes::<SignedTx>(&with_signer(key))
                .unwrap_err()
                .to_string()
        };
        let first = [refusal(weak), refusal(y_is_p), refusal([0xff; 32])];
        for _ in 0..3 {
            // The good signer decodes (and is remembered) in between.
            let back: SignedTx = postcard::from_bytes(&bytes).unwrap();
            assert_eq!(back, good);
            assert_eq!([refusal(weak), refusal(y_is_p), refusal([0xff; 32])], first);
        }
        // Another account's key in place of the signer: decodes (a valid key),
        // but the signature is not theirs.
        let mut pool = Mempool::new(MempoolConfig::default());
        let other: SignedTx =
            postcard::from_bytes(&with_signer(*key(2).public().as_bytes())).unwrap();
        // A raised fee under the remembered signer, through the wire: the
        // signature fails too.
        let mut forged: SignedTx = postcard::from_bytes(&bytes).unwrap();
        forged.statement.payload.fee = 2000;
        let forged: SignedTx =
            postcard::from_bytes(&postcard::to_allocvec(&forged).unwrap()).unwrap();
        let r = pool.insert_batch(&state, vec![other, forged, good], rng());
        let bad_signature = Err(MempoolError::Tx(TxError::Signature(
            SignatureError::Invalid,
        )));
        assert_eq!(r[0], bad_signature);
        assert_eq!(r[1], bad_signature);
        assert!(r[2].is_ok());
    }

    #[test]
    fn batch_and_single_admission_agree() {
        let state = setup();
        let mut forged = transfer(2, 0, 1000);
        forged.statement.payload.nonce = 1;
        let txs = vec![transfer(1, 0, 1000), forged, transfer(2, 0, 1500)];
        let mut a = Mempool::new(MempoolConfig::default());
        let batched = a.insert_batch(&state, txs.clone(), rng());
        let mut b = Mempool::new(MempoolConfig::default());
        let single: Vec<_> = txs
            .into_iter()
            .map(|t| b.insert(&state, t, rng()))
            .collect();
        assert_eq!(batched, single);
        assert_eq!(a.batch(10, usize::MAX), b.batch(10, usize::MAX));
    }

    #[test]
    fn pending_fees_must_fit_the_balance() {
        let state = setup();
        let mut pool = Mempool::new(MempoolConfig::default());
        // Account 3 holds 2500: two fees of 1000 fit, a third does not.
        assert!(pool.insert(&state, transfer(3, 0, 1000), rng()).is_ok());
        assert!(pool.insert(&state, transfer(3, 1, 1000), rng()).is_ok());
        assert_eq!(
            pool.insert(&state, transfer(3, 2, 1000), rng()),
            Err(MempoolError::CannotPayFees {
                balance: 2500,
                pending: 2000,
                fee: 1000
            })
        );
    }

    #[test]
    fn full_pool_evicts_the_cheapest_tail_or_refuses() {
        let state = setup();
        let mut pool = Mempool::new(MempoolConfig {
            max_txs: 2,
            ..MempoolConfig::default()
        });
        let cheap = pool.insert(&state, transfer(1, 0, 1000), rng()).unwrap();
        pool.insert(&state, transfer(2, 0, 3000), rng()).unwrap();
        assert_eq!(
            pool.insert(&state, transfer(3, 0, 1000), rng()),
            Err(MempoolError::Full {
                min_fee_to_enter: 1000
            })
        );
        let rich = pool.insert(&state, transfer(3, 0, 2000), rng()).unwrap();
        assert_eq!(rich.evicted, vec![cheap.id]);
        assert_eq!(pool.len(), 2);
        assert!(!pool.contains(&cheap.id));
        // Byte bound too.
        let one = postcard::experimental::serialized_size(&transfer(1, 0, 1000)).unwrap();
        let mut small = Mempool::new(MempoolConfig {
            max_bytes: one + one / 2,
            ..MempoolConfig::default()
        });
        small.insert(&state, transfer(1, 0, 1000), rng()).unwrap();
        assert!(matches!(
            small.insert(&state, transfer(2, 0, 1000), rng()),
            Err(MempoolError::Full { .. })
        ));
    }

    #[test]
    fn proposer_batch_orders_by_fee_keeps_nonces_and_block_clears() {
        let mut state = setup();
        let mut pool = Mempool::new(MempoolConfig::default());
        for r in pool.insert_batch(
            &state,
            vec![
                transfer(1, 0, 1000),
                transfer(1, 1, 5000),
                transfer(2, 0, 2000),
            ],
            rng(),
        ) {
            r.unwrap();
        }
        let batch = pool.batch(10, usize::MAX);
        let order: Vec<(Address, u64)> = batch
            .iter()
            .map(|t| (Address::from(t.statement.signer), t.statement.payload.nonce))
            .collect();
        assert_eq!(order, vec![(addr(2), 0), (addr(1), 0), (addr(1), 1)]);
        assert_eq!(pool.batch(2, usize::MAX).len(), 2);
        // Apply the first two in a block: those leave, the third stays.
        let header = BlockHeader {
            height: 1,
            time: 1001,
            proposer: addr(100),
        };
        state.apply_block(&header, &batch[..2]).unwrap();
        assert_eq!(pool.on_block(&state), 2);
        assert_eq!(pool.len(), 1);
        assert_eq!(pool.batch(10, usize::MAX), vec![batch[2].clone()]);
    }
}
