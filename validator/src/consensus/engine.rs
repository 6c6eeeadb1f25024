//! [`Engine`]: one validator's consensus, sans-IO, around malachite.
//!
//! The host (a tokio/QUIC node, or the simulator) owns the sockets and the clock.
//! It calls [`Engine::handle`] with the current time and one [`Input`], and gets
//! back the [`Output`]s to carry out, in order. Between inputs it sleeps until
//! [`Engine::next_deadline`] and then calls `handle(now, Input::Tick)`.
//!
//! ```text
//!   host                                   Engine
//!   ────                                   ──────
//!   Engine::open(genesis, key, store, cfg)
//!   engine.start(now)                ──►   restores the last committed block,
//!                                          replays the WAL of the height in progress
//!   peer frame → Input::Message      ──►   Output::Broadcast / Output::Send
//!   sleep until next_deadline()
//!          → Input::Tick             ──►   timeouts fire
//!   Output::ProposeRequest           ◄──   we propose this round: host picks txs
//!          → Input::Propose { txs }  ──►   block built, previewed, proposed
//!   Output::Decided(block, outcome)  ◄──   committed to the store already
//!   Output::Evidence(evidence)       ◄──   host submits a ReportEvidence tx
//! ```
//!
//! # Guarantees
//!
//! - **No double signing.** Before the engine signs anything it writes a
//!   [`SignRecord`] through [`Store::record_signed`] (durable when it returns).
//!   It signs a (height, round, step) slot at most once, and only for one value;
//!   it never signs a slot below the highest it signed; it never signs at or below
//!   the last committed height. A restarted engine reads those records back, so a
//!   crash at any point cannot make it sign a conflicting vote. A refused signature
//!   is logged and the vote simply not sent.
//! - **Commit.** A decided block is applied to the state and written with its
//!   certificate and the new state in one store transaction *before*
//!   [`Output::Decided`] is returned.
//! - **WAL.** Every input consensus acts on for the height in progress is appended
//!   to the store's WAL first (durable at the latest with the next sign record,
//!   see [`Store::wal_append`]); [`Engine::start`] replays it.
//! - **Determinism.** No clock reads, no threads: the same inputs at the same
//!   times give the same outputs. (Block signatures are batch-verified with
//!   OS-random coefficients, which cannot change a verdict under ZIP-215.)
//!
//! # What the engine checks in a proposed block
//!
//! The next height, the parent hash, the proposer (the signer of the proposal),
//! a time not before the previous block's and at most
//! [`EngineConfig::max_future_secs`] ahead of `now`, and a state root equal to the
//! one [`State::preview`] computes. Only then does it vote for it.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use malachitebft_core_consensus::{
    self as mc, ConsensusMsg, Effect, LivenessMsg, LocallyProposedValue, Params, ProposedValue,
    Resumable, Resume, SignedConsensusMsg, ValuePayload, WalEntry,
};
use malachitebft_core_types::{
    CommitCertificate, NilOrVal, Round, SigningProvider, SigningProviderExt, ThresholdParams,
    Timeout, TimeoutKind, Validity, ValueOrigin, VoteType,
};
use nodus_identity::SecretKey;
use serde::{Deserialize, Serialize};
use tracing::{debug, info, warn};

use super::context::{Block, BlockHash, Height, NodusContext, ProposedBlock, Signer, Validators};
use super::message::{CommitCert, CommittedBlock, ConsensusMessage, SignedProposal, SignedVote};
use super::verified::VerifiedTxs;
use crate::genesis::Genesis;
use crate::state::evidence::Evidence;
use crate::state::tx::SignedTx;
use crate::state::{Address, BlockHeader, BlockOutcome, State};
use crate::storage::{SignRecord, SignStep, Store, StoreError, WalRecord};

/// Milliseconds since the Unix epoch: the engine's only notion of time, always
/// passed in by the host.
pub type UnixMillis = u64;

/// Default propose timeout in round 0: long enough for a proposer on a WAN link
/// to build and ship a block, short enough that a dead proposer costs < 1.5 s.
pub const DEFAULT_PROPOSE_MS: u64 = 1_000;
/// Default prevote/precommit timeout in round 0 (waiting for the last votes after
/// 2/3 of any kind arrived).
pub const DEFAULT_VOTE_MS: u64 = 500;
/// Default growth of every timeout per round, so rounds eventually outlast any
/// message delay (partial synchrony).
pub const DEFAULT_DELTA_MS: u64 = 250;
/// Default interval at which a validator re-sends its latest votes (and, as
/// proposer, its proposal): recovers lost messages.
pub const DEFAULT_REBROADCAST_MS: u64 = 500;
/// Default pause between a decision and the next height, which is the minimum
/// block interval (CometBFT's `timeout_commit`). Keeps an idle chain from
/// spinning empty blocks as fast as the network allows.
pub const DEFAULT_COMMIT_DELAY_MS: u64 = 200;
/// Default tolerance for a block time ahead of our clock.
pub const DEFAULT_MAX_FUTURE_SECS: u64 = 15;
/// Default wait after first seeing a peer at a higher height before asking it for
/// blocks: votes for our height may still be on the way.
pub const DEFAULT_SYNC_DELAY_MS: u64 = 500;
/// Future-height proposals kept until we get there.
const MAX_FUTURE_PROPOSALS: usize = 32;
/// Heights of inputs malachite buffers ahead of its current one.
const INPUT_QUEUE_HEIGHTS: usize = 2;

/// Timing and limits of the engine. Build it with [`EngineConfig::default`] and
/// change fields; the node's config file maps onto it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineConfig {
    /// Propose timeout in round 0, ms.
    pub propose_ms: u64,
    /// Prevote and precommit timeouts in round 0, ms.
    pub vote_ms: u64,
    /// Added to every timeout per round, ms.
    pub delta_ms: u64,
    /// Re-send interval of our latest votes, ms.
    pub rebroadcast_ms: u64,
    /// Pause after a decision before the next height starts, ms.
    pub commit_delay_ms: u64,
    /// How far a block time may be ahead of our clock, seconds.
    pub max_future_secs: u64,
    /// Wait before asking a peer that is ahead for blocks, ms (also the retry
    /// interval).
    pub sync_delay_ms: u64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            propose_ms: DEFAULT_PROPOSE_MS,
            vote_ms: DEFAULT_VOTE_MS,
            delta_ms: DEFAULT_DELTA_MS,
            rebroadcast_ms: DEFAULT_REBROADCAST_MS,
            commit_delay_ms: DEFAULT_COMMIT_DELAY_MS,
            max_future_secs: DEFAULT_MAX_FUTURE_SECS,
            sync_delay_ms: DEFAULT_SYNC_DELAY_MS,
        }
    }
}

impl EngineConfig {
    fn timeout_ms(&self, timeout: &Timeout) -> u64 {
        let round = timeout.round.as_u32().map_or(0, u64::from);
        let delta = self.delta_ms.saturating_mul(round);
        match timeout.kind {
            TimeoutKind::Propose => self.propose_ms.saturating_add(delta),
            TimeoutKind::Prevote | TimeoutKind::Precommit => self.vote_ms.saturating_add(delta),
            // Re-sending is cheap and is what recovers lost messages: no growth.
            TimeoutKind::Rebroadcast => self.rebroadcast_ms,
        }
    }
}

/// Something the host hands the engine.
#[derive(Debug, Clone)]
pub enum Input {
    /// A message from the validator `from` (the peer's authenticated key).
    Message {
        /// Who sent it.
        from: Address,
        /// What.
        message: ConsensusMessage,
    },
    /// The host's answer to [`Output::ProposeRequest`]: transactions for the
    /// block (the engine builds the header and the state root).
    Propose {
        /// Height from the request.
        height: u64,
        /// Round from the request.
        round: u32,
        /// Transactions, in order; normally checked with
        /// [`State::check_txs`](crate::State::check_txs) first (rejected ones are
        /// carried but change nothing).
        txs: Vec<SignedTx>,
    },
    /// Time passed: fire whatever is due at `now`.
    Tick,
}

/// A block the chain decided, already durably committed.
#[derive(Debug, Clone)]
pub struct Decided {
    /// The block and its commit certificate.
    pub block: CommittedBlock,
    /// What applying it did (receipts, events, next validators, state root).
    pub outcome: BlockOutcome,
}

/// Something the host must do.
#[derive(Debug, Clone)]
pub enum Output {
    /// Send to every validator peer.
    Broadcast(ConsensusMessage),
    /// Send to one peer.
    Send {
        /// The peer's key.
        to: Address,
        /// What.
        message: ConsensusMessage,
    },
    /// We propose at (`height`, `round`): answer with [`Input::Propose`] before
    /// `deadline` (after it the round moves on without our block).
    ProposeRequest {
        /// Height.
        height: u64,
        /// Round.
        round: u32,
        /// When the propose timeout fires.
        deadline: UnixMillis,
    },
    /// A block was decided and committed; drop its transactions from the mempool.
    Decided(Box<Decided>),
    /// A validator signed two conflicting votes; submit it in a
    /// [`TxBody::ReportEvidence`](crate::TxBody::ReportEvidence) transaction.
    Evidence(Box<Evidence>),
}

/// Why the engine stopped. All are fatal: restart the engine from its store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// Storage failed.
    #[error("Storage failed")]
    Store(#[from] StoreError),
    /// The stored state belongs to another chain.
    #[error("Store holds chain {found}, genesis says {expected}")]
    WrongChain {
        /// From genesis.
        expected: String,
        /// From the store.
        found: String,
    },
    /// The validator set for the next height is empty: the chain cannot go on.
    #[error("No validators for height {0}")]
    NoValidators(u64),
}

/// Why a block was not voted for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BlockInvalid {
    /// Not the next height.
    #[error("Height {found}, expected {expected}")]
    Height {
        /// The next height.
        expected: u64,
        /// The block's.
        found: u64,
    },
    /// Parent hash is not our last block's.
    #[error("Parent is not the last committed block")]
    Parent,
    /// Time too far ahead.
    #[error("Block time {time} is ahead of our clock ({now})")]
    Future {
        /// Block time.
        time: u64,
        /// Our time, seconds.
        now: u64,
    },
    /// The state machine refused the block.
    #[error("Block refused: {0}")]
    Refused(#[from] crate::state::BlockError),
    /// The root does not match.
    #[error("State root mismatch")]
    Root,
}

/// A block we checked, with the state after it.
struct Candidate {
    block: ProposedBlock,
    result: Result<(State, BlockOutcome), BlockInvalid>,
}

type MInput = mc::Input<NodusContext>;

/// Everything except malachite's state, so effect handling can borrow it while
/// malachite's state is borrowed by the coroutine.
struct Inner<S> {
    ctx: NodusContext,
    config: EngineConfig,
    signer: Signer,
    address: Address,
    store: S,
    now: UnixMillis,
    /// Committed state (at `height - 1`).
    state: State,
    last_hash: BlockHash,
    /// The height in progress.
    height: u64,
    validators: Validators,
    /// Malachite timers: (kind, round) → deadline.
    timers: BTreeMap<(u8, i64), (Timeout, UnixMillis)>,
    /// Signed slots at heights above the committed one.
    signed: BTreeMap<(u64, u32, SignStep), SignRecord>,
    /// Inputs queued by effects, processed after the current one.
    queue: VecDeque<MInput>,
    outputs: Vec<Output>,
    replaying: bool,
    decided: Option<CommitCertificate<NodusContext>>,
    fatal: Option<StoreError>,
    candidates: BTreeMap<BlockHash, Candidate>,
    /// First valid vote seen per (round, type, validator) at the height in
    /// progress, to spot equivocation.
    seen_votes: BTreeMap<(u64, u32, u8, Address), SignedVote>,
    reported: BTreeSet<(Address, u64)>,
    future_proposals: Vec<(Address, SignedProposal)>,
    /// When the next height starts (after the commit delay).
    next_height_at: Option<UnixMillis>,
    /// A peer ahead of us, when we next ask it for blocks, and the highest
    /// height in progress seen from a peer.
    behind: Option<(Address, UnixMillis, u64)>,
    /// Our signed proposal for the round in progress, re-sent on rebroadcast.
    own_proposal: Option<SignedProposal>,
    /// The last vote we verified ourselves (so malachite's check is free).
    preverified: Option<SignedVote>,
    /// Transactions whose signatures verified already (in the mempool, or in a
    /// block we checked): block checks skip them.
    verified: VerifiedTxs,
}

/// One validator's consensus; see the [module docs](self).
pub struct Engine<S: Store> {
    consensus: mc::State<NodusContext>,
    inner: Inner<S>,
}

impl<S: Store> std::fmt::Debug for Engine<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("address", &self.inner.address)
            .field("height", &self.inner.height)
            .finish_non_exhaustive()
    }
}

fn timer_key(t: &Timeout) -> (u8, i64) {
    let kind = match t.kind {
        TimeoutKind::Propose => 0,
        TimeoutKind::Prevote => 1,
        TimeoutKind::Precommit => 2,
        TimeoutKind::Rebroadcast => 3,
    };
    (kind, t.round.as_i64())
}

fn vote_code(t: VoteType) -> u8 {
    match t {
        VoteType::Prevote => 0,
        VoteType::Precommit => 1,
    }
}

impl<S: Store> Engine<S> {
    /// Opens the engine for validator `key` on the chain of `genesis`, from
    /// whatever `store` holds (nothing: genesis). Call [`Engine::start`] next.
    pub fn open(
        genesis: &Genesis,
        key: SecretKey,
        store: S,
        config: EngineConfig,
    ) -> Result<Self, EngineError> {
        let (state, last_hash) = match store.last_committed()? {
            Some((state, block)) => (state, block.block.hash()),
            None => (State::from_genesis(genesis), BlockHash::default()),
        };
        if state.chain_id() != genesis.chain_id {
            return Err(EngineError::WrongChain {
                expected: genesis.chain_id.clone(),
                found: state.chain_id().to_owned(),
            });
        }
        let signed = store
            .signed()?
            .into_iter()
            .filter(|r| r.height > state.height())
            .map(|r| (r.slot(), r))
            .collect();
        let height = state.height().saturating_add(1);
        let validators = Validators::from_state(&state.validator_set());
        if validators.validators.is_empty() {
            return Err(EngineError::NoValidators(height));
        }
        let signer = Signer::new(genesis.chain_id.clone(), key);
        let address = signer.address();
        let params = Params {
            initial_height: Height(height),
            initial_validator_set: validators.clone(),
            address,
            threshold_params: ThresholdParams::default(),
            // The proposal message carries the whole block; validity comes from
            // the engine's own check (`ProposalOnly` would mark every block
            // valid unchecked).
            value_payload: ValuePayload::ProposalAndParts,
        };
        let consensus = mc::State::new(NodusContext, params, INPUT_QUEUE_HEIGHTS);
        Ok(Self {
            consensus,
            inner: Inner {
                ctx: NodusContext,
                config,
                signer,
                address,
                store,
                now: 0,
                state,
                last_hash,
                height,
                validators,
                timers: BTreeMap::new(),
                signed,
                queue: VecDeque::new(),
                outputs: Vec::new(),
                replaying: false,
                decided: None,
                fatal: None,
                candidates: BTreeMap::new(),
                seen_votes: BTreeMap::new(),
                reported: BTreeSet::new(),
                future_proposals: Vec::new(),
                next_height_at: None,
                behind: None,
                own_proposal: None,
                preverified: None,
                verified: VerifiedTxs::default(),
            },
        })
    }

    /// Starts consensus at the height after the last committed block and replays
    /// that height's WAL. Call once, right after [`Engine::open`].
    pub fn start(&mut self, now: UnixMillis) -> Result<Vec<Output>, EngineError> {
        self.inner.now = now;
        self.start_height(true)?;
        Ok(std::mem::take(&mut self.inner.outputs))
    }

    /// Handles one input at time `now` (never before the previous call's `now`)
    /// and returns what to do, in order.
    pub fn handle(&mut self, now: UnixMillis, input: Input) -> Result<Vec<Output>, EngineError> {
        self.inner.now = self.inner.now.max(now);
        match input {
            Input::Message { from, message } => self.on_message(from, message)?,
            Input::Propose { height, round, txs } => self.on_propose(height, round, txs)?,
            Input::Tick => self.on_tick()?,
        }
        Ok(std::mem::take(&mut self.inner.outputs))
    }

    /// When the host must call `handle(_, Input::Tick)` next, if anything is
    /// scheduled.
    pub fn next_deadline(&self) -> Option<UnixMillis> {
        let timers = self.inner.timers.values().map(|(_, at)| *at);
        timers
            .chain(self.inner.next_height_at)
            .chain(self.inner.behind.map(|(_, at, _)| at))
            .min()
    }

    /// The committed state (after the last decided block).
    pub fn state(&self) -> &State {
        &self.inner.state
    }

    /// The height consensus is working on (last committed + 1).
    pub fn height(&self) -> u64 {
        self.inner.height
    }

    /// The round in progress (0 before the height starts).
    pub fn round(&self) -> u32 {
        self.consensus.round().as_u32().unwrap_or(0)
    }

    /// Hash of the last committed block (zero at genesis).
    pub fn last_block_hash(&self) -> BlockHash {
        self.inner.last_hash
    }

    /// This validator's key.
    pub fn address(&self) -> Address {
        self.inner.address
    }

    /// The store (for reads: blocks, for queries).
    pub fn store(&self) -> &S {
        &self.inner.store
    }

    /// Records that the transaction with this id has a signature that verified
    /// (the mempool calls this for what it admits), so block checks skip it.
    /// See [`VerifiedTxs`] for why that is consensus-safe.
    pub fn note_verified(&mut self, id: crate::state::Hash) {
        self.inner.verified.insert(id);
    }

    /// Block-check signatures skipped (known verified) and verified so far.
    pub fn signature_stats(&self) -> (u64, u64) {
        self.inner.verified.stats()
    }

    /// Gives the store back (the engine is done).
    pub fn into_store(self) -> S {
        self.inner.store
    }

    // ----- inputs -----

    fn on_message(&mut self, from: Address, message: ConsensusMessage) -> Result<(), EngineError> {
        let height = self.inner.height;
        let msg_height = message.height();
        match message {
            ConsensusMessage::SyncRequest { height: h } => {
                if let Some(block) = self.inner.store.block(h)? {
                    self.inner.outputs.push(Output::Send {
                        to: from,
                        message: ConsensusMessage::SyncResponse(Box::new(block)),
                    });
                }
                return Ok(());
            }
            ConsensusMessage::SyncResponse(block) => return self.on_synced_block(*block),
            _ => {}
        }
        if msg_height > height {
            self.inner.note_ahead(from, msg_height);
        }
        if msg_height < height {
            return Ok(());
        }
        match message {
            ConsensusMessage::Proposal(p) => {
                if msg_height > height {
                    if self.inner.future_proposals.len() < MAX_FUTURE_PROPOSALS {
                        self.inner.future_proposals.push((from, p));
                    }
                    return Ok(());
                }
                self.on_proposal(p)?;
            }
            ConsensusMessage::Vote(v) => {
                if msg_height == height {
                    if !self.inner.check_vote(&v) {
                        return Ok(());
                    }
                    self.inner.preverified = Some(v.clone());
                }
                self.run(MInput::Vote(v.into()))?;
            }
            ConsensusMessage::Polka(c) => self.run(MInput::PolkaCertificate(c.into()))?,
            ConsensusMessage::Round(c) => self.run(MInput::RoundCertificate(c.into()))?,
            ConsensusMessage::SyncRequest { .. } | ConsensusMessage::SyncResponse(_) => {}
        }
        Ok(())
    }

    fn on_proposal(&mut self, p: SignedProposal) -> Result<(), EngineError> {
        let proposal = &p.proposal;
        // Cheap checks before any block is executed: signed by the key it names,
        // and that key is a validator.
        if !self
            .inner
            .validators
            .validators
            .iter()
            .any(|v| v.address == proposal.proposer)
            || !self
                .inner
                .signer
                .verify_signed_proposal(proposal, &p.signature, &proposal.proposer)
        {
            debug!(proposer = %proposal.proposer, "dropping proposal with a bad signature");
            return Ok(());
        }
        let proposed = ProposedValue {
            height: proposal.height,
            round: proposal.round,
            valid_round: proposal.pol_round,
            proposer: proposal.proposer,
            value: proposal.value.clone(),
            validity: Validity::from_bool(
                // A fresh proposal carries its proposer's own block; a re-proposal
                // (POL round set) carries the block some earlier proposer built.
                (proposal.pol_round.is_defined()
                    || proposal.value.block().header.proposer == proposal.proposer)
                    && self.inner.check_block(&proposal.value).is_ok(),
            ),
        };
        self.run(MInput::Proposal(p.into()))?;
        self.run(MInput::ProposedValue(proposed, ValueOrigin::Consensus))
    }

    fn on_propose(
        &mut self,
        height: u64,
        round: u32,
        txs: Vec<SignedTx>,
    ) -> Result<(), EngineError> {
        let inner = &mut self.inner;
        if height != inner.height || Round::new(round) != self.consensus.round() {
            debug!(height, round, "late block from the host, ignored");
            return Ok(());
        }
        let header = BlockHeader {
            height,
            time: (inner.now / 1000).max(inner.state.time()),
            proposer: inner.address,
        };
        let (next, outcome) =
            match preview_batched(&inner.state, &header, &txs, &mut inner.verified) {
                Ok(r) => r,
                Err(e) => {
                    warn!(error = %e, "own block refused by the state machine");
                    return Ok(());
                }
            };
        let block = ProposedBlock::new(Block {
            header,
            parent: inner.last_hash,
            txs,
            state_root: outcome.state_root,
        });
        inner.candidates.insert(
            block.hash(),
            Candidate {
                block: block.clone(),
                result: Ok((next, outcome)),
            },
        );
        self.run(MInput::Propose(LocallyProposedValue::new(
            Height(height),
            Round::new(round),
            block,
        )))
    }

    fn on_tick(&mut self) -> Result<(), EngineError> {
        let now = self.inner.now;
        if self.inner.next_height_at.is_some_and(|at| at <= now) {
            self.inner.next_height_at = None;
            self.start_height(false)?;
        }
        if let Some((peer, at, target)) = self.inner.behind
            && at <= now
        {
            self.inner.behind = Some((
                peer,
                now.saturating_add(self.inner.config.sync_delay_ms),
                target,
            ));
            self.inner.outputs.push(Output::Send {
                to: peer,
                message: ConsensusMessage::SyncRequest {
                    height: self.inner.height,
                },
            });
        }
        loop {
            let due = self
                .inner
                .timers
                .iter()
                .filter(|(_, (_, at))| *at <= now)
                .min_by_key(|(k, (_, at))| (*at, **k))
                .map(|(k, (t, _))| (*k, *t));
            let Some((key, timeout)) = due else { break };
            self.inner.timers.remove(&key);
            if timeout.kind == TimeoutKind::Rebroadcast
                && let Some(p) = &self.inner.own_proposal
                && p.proposal.round == self.consensus.round()
                && p.proposal.height.0 == self.inner.height
                && !self.inner.all_peers_voted_for(&p.proposal)
            {
                self.inner
                    .outputs
                    .push(Output::Broadcast(ConsensusMessage::Proposal(p.clone())));
            }
            self.run(MInput::TimeoutElapsed(timeout))?;
        }
        Ok(())
    }

    fn on_synced_block(&mut self, cb: CommittedBlock) -> Result<(), EngineError> {
        let inner = &mut self.inner;
        if cb.block.header.height != inner.height {
            return Ok(());
        }
        let value = cb.value();
        if cb.certificate.block != value.hash() || cb.certificate.height.0 != inner.height {
            return Ok(());
        }
        let cert: CommitCertificate<NodusContext> = cb.certificate.clone().into();
        if let Err(e) = inner.signer.verify_commit_certificate(
            &inner.ctx,
            &cert,
            &inner.validators,
            ThresholdParams::default(),
        ) {
            warn!(error = %e, "synced block with a bad certificate");
            return Ok(());
        }
        if let Err(e) = inner.check_block(&value) {
            warn!(error = %e, "synced block is invalid");
            return Ok(());
        }
        info!(height = cb.block.header.height, "block synced from a peer");
        self.commit(cert)?;
        // Ask for the next one at once while the peer is ahead.
        if let Some((peer, _, target)) = self.inner.behind {
            self.inner.behind = Some((peer, self.inner.now, target));
        }
        Ok(())
    }

    // ----- malachite -----

    /// Runs one input through malachite, then whatever the effects queued.
    fn run(&mut self, input: MInput) -> Result<(), EngineError> {
        self.inner.queue.push_back(input);
        while let Some(input) = self.inner.queue.pop_front() {
            let inner = &mut self.inner;
            let result: Result<(), mc::Error<NodusContext>> = mc::process!(
                input: input,
                state: &mut self.consensus,
                metrics: &(),
                with: effect => inner.on_effect(effect)
            );
            if let Err(e) = result {
                warn!(error = %e, "consensus input aborted");
            }
            if let Some(e) = self.inner.fatal.take() {
                return Err(e.into());
            }
            if let Some(cert) = self.inner.decided.take() {
                // Malachite decided a value it holds in full; make sure we have
                // its post-state even if our candidate cache lost it.
                if let Some((_, value)) = self.consensus.decided_value()
                    && value.hash() == cert.value_id
                {
                    let _ = self.inner.check_block(&value);
                }
                self.commit(cert)?;
            }
        }
        Ok(())
    }

    /// Applies and stores a decided block, reports it, and schedules the next
    /// height.
    fn commit(&mut self, cert: CommitCertificate<NodusContext>) -> Result<(), EngineError> {
        let inner = &mut self.inner;
        if cert.height.0 != inner.height {
            return Ok(());
        }
        let Some(Candidate {
            block,
            result: Ok((state, outcome)),
        }) = inner.candidates.remove(&cert.value_id)
        else {
            // Cannot happen: malachite decides only values we marked valid, and we
            // mark only candidates we checked. Recover through sync.
            warn!(
                height = inner.height,
                "decided block unknown; waiting for sync"
            );
            return Ok(());
        };
        let committed = CommittedBlock {
            block: block.block().clone(),
            certificate: CommitCert::from(cert),
        };
        inner.store.commit(&committed, &state, &outcome.receipts)?;
        info!(
            height = inner.height,
            hash = %block.hash(),
            txs = committed.block.txs.len(),
            "committed"
        );
        inner.state = state;
        inner.last_hash = block.hash();
        let committed_height = inner.state.height();
        inner.signed.retain(|(h, _, _), _| *h > committed_height);
        inner
            .seen_votes
            .retain(|(h, _, _, _), _| *h > committed_height);
        inner.candidates.clear();
        inner.own_proposal = None;
        // The decided height's timers would only make malachite act on a height
        // that is over.
        inner.timers.clear();
        inner.outputs.push(Output::Decided(Box::new(Decided {
            block: committed,
            outcome,
        })));
        inner.height = inner.state.height().saturating_add(1);
        if inner
            .behind
            .is_some_and(|(_, _, target)| target <= inner.height)
        {
            inner.behind = None;
        }
        if inner.behind.is_none() && inner.config.commit_delay_ms > 0 {
            inner.next_height_at = Some(inner.now.saturating_add(inner.config.commit_delay_ms));
            Ok(())
        } else {
            // Catching up: no pause.
            self.start_height(false)
        }
    }

    fn start_height(&mut self, replay_wal: bool) -> Result<(), EngineError> {
        let inner = &mut self.inner;
        inner.next_height_at = None;
        inner.validators = Validators::from_state(&inner.state.validator_set());
        if inner.validators.validators.is_empty() {
            return Err(EngineError::NoValidators(inner.height));
        }
        inner.timers.clear();
        // Candidates checked during the commit delay are for this height: keep.
        let height = inner.height;
        let validators = inner.validators.clone();
        self.run(MInput::StartHeight(Height(height), validators))?;
        if replay_wal {
            let records = self.inner.store.wal(height)?;
            if !records.is_empty() {
                info!(height, entries = records.len(), "replaying WAL");
            }
            self.inner.replaying = true;
            for record in records {
                let input = match record {
                    WalRecord::Proposal(p) => MInput::Proposal(p.into()),
                    WalRecord::Vote(v) => MInput::Vote(v.into()),
                    WalRecord::Timeout { kind, round } => {
                        MInput::TimeoutElapsed(Timeout::new(round, kind))
                    }
                    WalRecord::ProposedValue {
                        round,
                        valid_round,
                        proposer,
                        block,
                        valid,
                    } => {
                        // Recompute the post-state (needed to commit); the
                        // verdict is the logged one.
                        let _ = self.inner.check_block(&block);
                        MInput::ProposedValue(
                            ProposedValue {
                                height: Height(height),
                                round,
                                valid_round,
                                proposer,
                                value: block,
                                validity: Validity::from_bool(valid),
                            },
                            ValueOrigin::Consensus,
                        )
                    }
                };
                let result = self.run(input);
                if result.is_err() {
                    self.inner.replaying = false;
                    return result;
                }
                if self.inner.height != height {
                    break;
                }
            }
            self.inner.replaying = false;
        }
        let pending: Vec<_> = std::mem::take(&mut self.inner.future_proposals);
        for (from, p) in pending {
            if p.proposal.height.0 == self.inner.height {
                self.on_proposal(p)?;
            } else if p.proposal.height.0 > self.inner.height {
                self.inner.future_proposals.push((from, p));
            }
        }
        Ok(())
    }
}

impl<S: Store> Inner<S> {
    fn note_ahead(&mut self, peer: Address, height: u64) {
        match &mut self.behind {
            None => {
                self.behind = Some((
                    peer,
                    self.now.saturating_add(self.config.sync_delay_ms),
                    height,
                ));
            }
            Some((p, _, target)) => {
                if height > *target {
                    *target = height;
                    *p = peer;
                }
            }
        }
    }

    /// True if every other validator voted for `proposal`'s block in its round:
    /// they all have it, and re-sending a whole block (which each of them would
    /// decode again, keys and all) only costs time.
    fn all_peers_voted_for(&self, proposal: &super::context::Proposal) -> bool {
        let (height, value) = (proposal.height.0, proposal.value.hash());
        let Some(round) = proposal.round.as_u32() else {
            return false;
        };
        self.validators
            .validators
            .iter()
            .filter(|v| v.address != self.address)
            .all(|v| {
                [VoteType::Prevote, VoteType::Precommit].iter().any(|t| {
                    self.seen_votes
                        .get(&(height, round, vote_code(*t), v.address))
                        .is_some_and(|seen| seen.vote.value == NilOrVal::Val(value))
                })
            })
    }

    /// Verifies a vote for the height in progress and looks for a conflicting
    /// one from the same validator. False: drop it.
    fn check_vote(&mut self, v: &SignedVote) -> bool {
        let vote = &v.vote;
        if !self
            .validators
            .validators
            .iter()
            .any(|x| x.address == vote.validator)
            || !self
                .signer
                .verify_signed_vote(vote, &v.signature, &vote.validator)
        {
            return false;
        }
        let Some(round) = vote.round.as_u32() else {
            return false;
        };
        let key = (
            vote.height.0,
            round,
            vote_code(vote.vote_type),
            vote.validator,
        );
        match self.seen_votes.get(&key) {
            None => {
                self.seen_votes.insert(key, v.clone());
            }
            Some(first) if first.vote.value != vote.value => {
                if self.reported.insert((vote.validator, vote.height.0)) {
                    warn!(validator = %vote.validator, height = vote.height.0, first = ?first.vote, second = ?vote, "double sign");
                    self.outputs.push(Output::Evidence(Box::new(Evidence {
                        first: first.to_evidence(),
                        second: v.to_evidence(),
                    })));
                }
            }
            Some(_) => {}
        }
        true
    }

    /// Checks a block for the height in progress. The verdict is cached per
    /// block hash, except "too far in the future", which time can change.
    fn check_block(&mut self, block: &ProposedBlock) -> Result<(), BlockInvalid> {
        if let Some(c) = self.candidates.get(&block.hash())
            && !matches!(c.result, Err(BlockInvalid::Future { .. }))
        {
            return c.result.as_ref().map(|_| ()).map_err(Clone::clone);
        }
        let result = self.execute(block.block());
        if let Err(e) = &result {
            warn!(error = %e, hash = %block.hash(), "invalid block");
        }
        let verdict = result.as_ref().map(|_| ()).map_err(Clone::clone);
        self.candidates.insert(
            block.hash(),
            Candidate {
                block: block.clone(),
                result,
            },
        );
        verdict
    }

    fn execute(&mut self, block: &Block) -> Result<(State, BlockOutcome), BlockInvalid> {
        let expected = self.height;
        if block.header.height != expected {
            return Err(BlockInvalid::Height {
                expected,
                found: block.header.height,
            });
        }
        if block.parent != self.last_hash {
            return Err(BlockInvalid::Parent);
        }
        let now = self.now / 1000;
        if block.header.time > now.saturating_add(self.config.max_future_secs) {
            return Err(BlockInvalid::Future {
                time: block.header.time,
                now,
            });
        }
        let (state, outcome) =
            preview_batched(&self.state, &block.header, &block.txs, &mut self.verified)?;
        if outcome.state_root != block.state_root {
            return Err(BlockInvalid::Root);
        }
        Ok((state, outcome))
    }

    /// The double-sign guard: may we sign `record`? Persists it first if so.
    fn guard(&mut self, record: SignRecord) -> Result<bool, StoreError> {
        if record.height <= self.state.height() {
            return Ok(false);
        }
        let slot = record.slot();
        if let Some(existing) = self.signed.get(&slot) {
            if existing.value != record.value {
                warn!(?slot, signed = ?existing.value, asked = ?record.value, "guard: conflicting value");
            }
            return Ok(existing.value == record.value);
        }
        if let Some(last) = self.signed.keys().next_back()
            && *last > slot
        {
            warn!(?slot, ?last, "guard: slot below the last signed");
        }
        if self
            .signed
            .keys()
            .next_back()
            .is_some_and(|last| *last > slot)
        {
            return Ok(false);
        }
        self.store.record_signed(&record)?;
        self.signed.insert(slot, record);
        Ok(true)
    }

    fn wal(&mut self, record: WalRecord) {
        if self.replaying {
            return;
        }
        if let Err(e) = self.store.wal_append(self.height, &record) {
            self.fatal.get_or_insert(e);
        }
    }

    fn schedule(&mut self, timeout: Timeout) {
        let at = self.now.saturating_add(self.config.timeout_ms(&timeout));
        self.timers.insert(timer_key(&timeout), (timeout, at));
    }

    fn on_effect(
        &mut self,
        effect: Effect<NodusContext>,
    ) -> Result<Resume<NodusContext>, EffectError> {
        Ok(match effect {
            Effect::ResetTimeouts(r) => r.resume_with(()),
            Effect::CancelAllTimeouts(r) => {
                self.timers.clear();
                r.resume_with(())
            }
            Effect::CancelTimeout(t, r) => {
                self.timers.remove(&timer_key(&t));
                r.resume_with(())
            }
            Effect::ScheduleTimeout(t, r) => {
                self.schedule(t);
                r.resume_with(())
            }
            Effect::GetValidatorSet(height, r) => {
                // We know the set of the height in progress only (the engine's
                // state is committed up to the height before it).
                let set = (height.0 == self.state.height().saturating_add(1))
                    .then(|| Validators::from_state(&self.state.validator_set()));
                r.resume_with(set)
            }
            Effect::StartRound(height, round, proposer, _role, r) => {
                debug!(height = height.0, round = %round, %proposer, "round");
                r.resume_with(())
            }
            Effect::PublishConsensusMsg(msg, r) => {
                let message = match msg {
                    SignedConsensusMsg::Vote(v) => ConsensusMessage::Vote(v.into()),
                    SignedConsensusMsg::Proposal(p) => {
                        let p = SignedProposal::from(p);
                        if p.proposal.proposer == self.address {
                            self.own_proposal = Some(p.clone());
                        }
                        ConsensusMessage::Proposal(p)
                    }
                };
                self.outputs.push(Output::Broadcast(message));
                r.resume_with(())
            }
            Effect::PublishLivenessMsg(msg, r) => {
                let message = match msg {
                    LivenessMsg::Vote(v) => ConsensusMessage::Vote(v.into()),
                    LivenessMsg::PolkaCertificate(c) => ConsensusMessage::Polka(c.into()),
                    LivenessMsg::SkipRoundCertificate(c) => ConsensusMessage::Round(c.into()),
                };
                self.outputs.push(Output::Broadcast(message));
                r.resume_with(())
            }
            Effect::RepublishVote(v, r) => {
                self.outputs
                    .push(Output::Broadcast(ConsensusMessage::Vote(v.into())));
                r.resume_with(())
            }
            Effect::RepublishRoundCertificate(c, r) => {
                self.outputs
                    .push(Output::Broadcast(ConsensusMessage::Round(c.into())));
                r.resume_with(())
            }
            Effect::GetValue(height, round, timeout, r) => {
                let stored = round.as_u32().and_then(|rn| {
                    self.signed
                        .get(&(height.0, rn, SignStep::Proposal))
                        .and_then(|rec| rec.proposal.as_ref())
                        .map(|p| p.proposal.value.clone())
                });
                if let Some(value) = stored {
                    // Re-propose exactly what we signed before a restart.
                    let _ = self.check_block(&value);
                    self.queue
                        .push_back(MInput::Propose(LocallyProposedValue::new(
                            height, round, value,
                        )));
                } else if let Some(rn) = round.as_u32() {
                    self.outputs.push(Output::ProposeRequest {
                        height: height.0,
                        round: rn,
                        deadline: self.now.saturating_add(self.config.timeout_ms(&timeout)),
                    });
                }
                r.resume_with(())
            }
            Effect::RestreamProposal(_, _, _, _, _, r) => {
                // The proposal message carries the whole block: nothing to stream.
                r.resume_with(())
            }
            Effect::SyncValue(_, r) => r.resume_with(()),
            Effect::Decide(cert, _, r) => {
                self.decided = Some(cert);
                r.resume_with(())
            }
            Effect::SignVote(vote, r) => {
                let ev = vote.to_evidence_vote();
                let record = SignRecord {
                    height: ev.height,
                    round: ev.round,
                    step: match vote.vote_type {
                        VoteType::Prevote => SignStep::Prevote,
                        VoteType::Precommit => SignStep::Precommit,
                    },
                    value: match vote.value {
                        NilOrVal::Nil => None,
                        NilOrVal::Val(h) => Some(h),
                    },
                    proposal: None,
                };
                match self.guard(record) {
                    Ok(true) => r.resume_with(self.signer.sign_vote(vote)),
                    Ok(false) => {
                        warn!(
                            height = ev.height,
                            round = ev.round,
                            "refusing a conflicting vote"
                        );
                        // Malachite now believes it voted and waits for votes
                        // that, alone, may never come. Time the step out so the
                        // round moves on (prevote step: precommit nil; precommit
                        // step: next round), as if our vote had been lost.
                        if ev.height == self.height {
                            let round = vote.round;
                            self.schedule(match vote.vote_type {
                                VoteType::Prevote => Timeout::prevote(round),
                                VoteType::Precommit => Timeout::precommit(round),
                            });
                        }
                        return Err(EffectError::Refused);
                    }
                    Err(e) => {
                        self.fatal.get_or_insert(e);
                        return Err(EffectError::Refused);
                    }
                }
            }
            Effect::SignProposal(proposal, r) => {
                let Some(round) = proposal.round.as_u32() else {
                    return Err(EffectError::Refused);
                };
                let signed = self.signer.sign_proposal(proposal.clone());
                let record = SignRecord {
                    height: proposal.height.0,
                    round,
                    step: SignStep::Proposal,
                    value: Some(proposal.value.hash()),
                    proposal: Some(Box::new(SignedProposal::from(signed.clone()))),
                };
                // Malachite also signs "implicit" proposals for synced values; we
                // never feed synced values to it, so every proposal here is ours.
                match self.guard(record) {
                    Ok(true) => r.resume_with(signed),
                    Ok(false) => {
                        warn!(
                            height = proposal.height.0,
                            round, "refusing a conflicting proposal"
                        );
                        // The propose timeout was cancelled when the value came;
                        // restore it so the round goes on without our proposal.
                        if proposal.height.0 == self.height {
                            self.schedule(Timeout::propose(proposal.round));
                        }
                        return Err(EffectError::Refused);
                    }
                    Err(e) => {
                        self.fatal.get_or_insert(e);
                        return Err(EffectError::Refused);
                    }
                }
            }
            Effect::VerifySignature(msg, key, r) => {
                let valid = match &msg.message {
                    ConsensusMsg::Vote(v) => {
                        let pre = self.preverified.take();
                        pre.is_some_and(|p| p.vote == *v && p.signature == msg.signature)
                            || self.signer.verify_signed_vote(v, &msg.signature, &key)
                    }
                    ConsensusMsg::Proposal(p) => {
                        self.signer.verify_signed_proposal(p, &msg.signature, &key)
                    }
                };
                r.resume_with(valid)
            }
            Effect::VerifyCommitCertificate(cert, set, thresholds, r) => r.resume_with(
                self.signer
                    .verify_commit_certificate(&self.ctx, &cert, &set, thresholds),
            ),
            Effect::VerifyPolkaCertificate(cert, set, thresholds, r) => r.resume_with(
                self.signer
                    .verify_polka_certificate(&self.ctx, &cert, &set, thresholds),
            ),
            Effect::VerifyRoundCertificate(cert, set, thresholds, r) => r.resume_with(
                self.signer
                    .verify_round_certificate(&self.ctx, &cert, &set, thresholds),
            ),
            Effect::WalAppend(entry, r) => {
                let record = match entry {
                    WalEntry::ConsensusMsg(SignedConsensusMsg::Vote(v)) => {
                        WalRecord::Vote(v.into())
                    }
                    WalEntry::ConsensusMsg(SignedConsensusMsg::Proposal(p)) => {
                        WalRecord::Proposal(p.into())
                    }
                    WalEntry::Timeout(t) => WalRecord::Timeout {
                        kind: t.kind,
                        round: t.round,
                    },
                    WalEntry::ProposedValue(v) => WalRecord::ProposedValue {
                        round: v.round,
                        valid_round: v.valid_round,
                        proposer: v.proposer,
                        block: v.value,
                        valid: v.validity.is_valid(),
                    },
                };
                self.wal(record);
                r.resume_with(())
            }
            Effect::ExtendVote(_, _, _, r) => r.resume_with(None),
            Effect::VerifyVoteExtension(_, _, _, _, _, r) => {
                r.resume_with(Err(mc::VoteExtensionError::InvalidVoteExtension))
            }
        })
    }
}

/// [`State::preview`] with the block's signatures checked in one batch, except
/// those `verified` already knows (see [`VerifiedTxs`] for why skipping them
/// cannot change the outcome).
///
/// The batch's random coefficients come from the OS (an attacker must not
/// know them); the verdicts do not depend on them, as ZIP-215 batch and single
/// verification agree, so the engine's outputs stay a function of its inputs.
fn preview_batched(
    state: &State,
    header: &BlockHeader,
    txs: &[SignedTx],
    verified: &mut VerifiedTxs,
) -> Result<(State, BlockOutcome), crate::state::BlockError> {
    let mut next = state.clone();
    let outcome = next.apply_block_batched_skipping(header, txs, rand::rngs::OsRng, |tx| {
        crate::state::tx::tx_id(tx).is_ok_and(|id| verified.check(&id))
    })?;
    Ok((next, outcome))
}

/// Why an effect was not carried out; malachite then abandons the input.
#[derive(Debug, thiserror::Error)]
enum EffectError {
    /// Signing refused (double-sign guard or storage failure).
    #[error("Signing refused")]
    Refused,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemStore;

    fn single_validator() -> (Genesis, SecretKey) {
        let key = SecretKey::from_seed(&[3; 32]);
        let genesis = Genesis::from_json(&format!(
            r#"{{"chain_id":"unit","genesis_time":1000,
                "validators":[{{"id":"{}","stake":10}}]}}"#,
            nodus_identity::AccountId::from(key.public())
        ))
        .unwrap();
        (genesis, key)
    }

    /// Drives a one-validator engine until it decides `height` or time runs out;
    /// returns every output.
    fn drive<S: Store>(engine: &mut Engine<S>, now: u64, first: Vec<Output>) -> Vec<Output> {
        drive_with(engine, now, first, &[])
    }

    /// [`drive`], proposing `txs` in every block.
    fn drive_with<S: Store>(
        engine: &mut Engine<S>,
        mut now: u64,
        first: Vec<Output>,
        txs: &[SignedTx],
    ) -> Vec<Output> {
        let mut all = Vec::new();
        let mut pending = first;
        for _ in 0..200 {
            let mut next = Vec::new();
            for output in pending {
                if let Output::ProposeRequest { height, round, .. } = &output {
                    let input = Input::Propose {
                        height: *height,
                        round: *round,
                        txs: txs.to_vec(),
                    };
                    next.extend(engine.handle(now, input).unwrap());
                }
                all.push(output);
            }
            if all.iter().any(|o| matches!(o, Output::Decided(_))) {
                break;
            }
            pending = if next.is_empty() {
                now = engine.next_deadline().unwrap().max(now);
                engine.handle(now, Input::Tick).unwrap()
            } else {
                next
            };
        }
        all
    }

    fn funded_validator() -> (Genesis, SecretKey, SecretKey) {
        let key = SecretKey::from_seed(&[3; 32]);
        let alice = SecretKey::from_seed(&[4; 32]);
        let genesis = Genesis::from_json(&format!(
            r#"{{"chain_id":"unit","genesis_time":1000,
                "accounts":[{{"id":"{}","balance":1000000}}],
                "validators":[{{"id":"{}","stake":10}}]}}"#,
            nodus_identity::AccountId::from(alice.public()),
            nodus_identity::AccountId::from(key.public())
        ))
        .unwrap();
        (genesis, key, alice)
    }

    fn transfer(from: &SecretKey, nonce: u64, amount: u128) -> SignedTx {
        crate::Tx {
            nonce,
            fee: 1_000,
            body: crate::TxBody::Transfer {
                to: Address::from(SecretKey::from_seed(&[5; 32]).public()),
                amount,
            },
        }
        .sign("unit", from)
        .unwrap()
    }

    fn decided(outputs: &[Output]) -> &Decided {
        outputs
            .iter()
            .find_map(|o| match o {
                Output::Decided(d) => Some(&**d),
                _ => None,
            })
            .unwrap()
    }

    #[test]
    fn receipts_are_committed_with_the_block_and_survive_reopening_the_disk_store() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chain.redb");
        let (genesis, key, alice) = funded_validator();
        let good = transfer(&alice, 0, 7);
        let replayed = transfer(&alice, 0, 8);
        let mut forged = transfer(&alice, 1, 9);
        forged.statement.payload.fee = 2_000;
        let txs = [good.clone(), replayed.clone(), forged.clone()];
        let store = crate::storage::DiskStore::open(&path).unwrap();
        let mut engine =
            Engine::open(&genesis, key.clone(), store, EngineConfig::default()).unwrap();
        let first = engine.start(1_001_000).unwrap();
        let outputs = drive_with(&mut engine, 1_001_000, first, &txs);
        let receipts = decided(&outputs).outcome.receipts.clone();
        assert_eq!(receipts[0], crate::TxStatus::Applied);
        assert!(matches!(receipts[1], crate::TxStatus::Rejected(_)));
        assert!(matches!(receipts[2], crate::TxStatus::Rejected(_)));
        drop(engine);

        let store = crate::storage::DiskStore::open(&path).unwrap();
        assert_eq!(store.receipts(1).unwrap(), Some(receipts));
        assert_eq!(store.receipts(2).unwrap(), None);
        let id = |t: &SignedTx| crate::state::tx::tx_id(t).unwrap();
        assert_eq!(store.tx_location(&id(&good)).unwrap(), Some((1, 0)));
        assert_eq!(store.tx_location(&id(&replayed)).unwrap(), Some((1, 1)));
        assert_eq!(store.tx_location(&id(&forged)).unwrap(), Some((1, 2)));
        assert_eq!(store.tx_location(&[0; 32]).unwrap(), None);
        // The engine reopens on it and goes on from block 1.
        let engine = Engine::open(&genesis, key, store, EngineConfig::default()).unwrap();
        assert_eq!(engine.state().height(), 1);
    }

    #[test]
    fn signatures_known_verified_are_skipped_with_the_same_outcome() {
        let (genesis, key, alice) = funded_validator();
        let good = transfer(&alice, 0, 7);
        let mut forged = transfer(&alice, 1, 9);
        forged.statement.payload.fee = 2_000;
        let txs = [good.clone(), forged.clone()];
        let run = |known: &[&SignedTx]| {
            let mut engine = Engine::open(
                &genesis,
                key.clone(),
                MemStore::new(),
                EngineConfig::default(),
            )
            .unwrap();
            for t in known {
                engine.note_verified(crate::state::tx::tx_id(t).unwrap());
            }
            let first = engine.start(1_001_000).unwrap();
            let outputs = drive_with(&mut engine, 1_001_000, first, &txs);
            (decided(&outputs).outcome.clone(), engine.signature_stats())
        };
        let (cold, cold_stats) = run(&[]);
        let (warm, warm_stats) = run(&[&good]);
        assert_eq!(cold, warm);
        assert_eq!(cold.receipts[0], crate::TxStatus::Applied);
        // The forged one is verified (and refused) either way.
        assert!(matches!(
            warm.receipts[1],
            crate::TxStatus::Rejected(crate::TxError::Signature(_))
        ));
        assert_eq!(cold_stats, (0, 2));
        assert_eq!(warm_stats, (1, 1));
    }

    #[test]
    fn engine_is_send() {
        fn send<T: Send>() {}
        send::<Engine<MemStore>>();
        send::<Engine<crate::storage::DiskStore>>();
    }

    #[test]
    fn single_validator_decides_and_commits_before_reporting() {
        let (genesis, key) = single_validator();
        let store = MemStore::new();
        let mut engine =
            Engine::open(&genesis, key, store.clone(), EngineConfig::default()).unwrap();
        let first = engine.start(1_001_000).unwrap();
        let outputs = drive(&mut engine, 1_001_000, first);
        let decided = outputs
            .iter()
            .find_map(|o| match o {
                Output::Decided(d) => Some(d),
                _ => None,
            })
            .unwrap();
        assert_eq!(decided.block.block.header.height, 1);
        let (state, block) = store.last_committed().unwrap().unwrap();
        assert_eq!(block, decided.block);
        assert_eq!(state.root(), decided.block.block.state_root);
        assert_eq!(engine.state().height(), 1);
    }

    #[test]
    fn restarted_engine_never_signs_against_its_sign_records() {
        let (genesis, key) = single_validator();
        let mut store = MemStore::new();
        // Before a "crash", the validator prevoted some block X at height 1,
        // round 0, and the WAL was lost.
        let x = BlockHash([9; 32]);
        store
            .record_signed(&SignRecord {
                height: 1,
                round: 0,
                step: SignStep::Prevote,
                value: Some(x),
                proposal: None,
            })
            .unwrap();
        let mut engine =
            Engine::open(&genesis, key, store.clone(), EngineConfig::default()).unwrap();
        let first = engine.start(1_001_000).unwrap();
        let outputs = drive(&mut engine, 1_001_000, first);
        for o in &outputs {
            if let Output::Broadcast(ConsensusMessage::Vote(v)) = o {
                let e = v.vote.to_evidence_vote();
                if (e.height, e.round, e.step) == (1, 0, crate::state::evidence::VoteStep::Prevote)
                {
                    assert_eq!(e.value, Some(x.0), "signed a conflicting prevote");
                }
            }
        }
        // It still decides height 1, in a later round.
        let decided = outputs.iter().find_map(|o| match o {
            Output::Decided(d) => Some(d),
            _ => None,
        });
        let decided = decided.expect("height 1 decided");
        assert!(decided.block.certificate.round.as_u32().unwrap() >= 1);
    }
}
