//! A deterministic simulation of a validator network, for tests.
//!
//! [`Sim`] runs several real [`Engine`]s (each on its own [`MemStore`] and
//! [`State`]) in one thread, on a virtual clock, over a simulated network with
//! seeded latency, loss and partitions. Nothing sleeps: the simulation jumps
//! from one event (a message delivery or an engine deadline) to the next. The
//! same seed and the same calls give the same run, bit for bit.
//!
//! Each node's host is minimal: it answers [`Output::ProposeRequest`] with its
//! mempool, turns [`Output::Evidence`] into a `ReportEvidence` transaction signed
//! by its own validator key, and records every [`Output::Decided`].
//!
//! ```
//! use nodus_validator::sim::{Sim, SimConfig};
//!
//! let mut sim = Sim::new(SimConfig { validators: 4, ..SimConfig::default() });
//! sim.run_for(10_000);
//! assert!(sim.min_height() >= 2);
//! sim.check_safety().unwrap();
//! ```

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use nodus_identity::statement::purpose;
use nodus_identity::{AccountId, SecretKey, Signed, Statement};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::consensus::{
    BlockHash, CommittedBlock, ConsensusMessage, Engine, EngineConfig, Input, Output, UnixMillis,
};
use crate::genesis::Genesis;
use crate::state::evidence::Evidence;
use crate::state::tx::{SignedTx, Tx, TxBody};
use crate::state::{Address, Amount, Event, State};
use crate::storage::{MemStore, Store};

/// Chain id of simulated chains.
pub const CHAIN_ID: &str = "sim";
/// Genesis time of simulated chains, Unix seconds.
pub const GENESIS_TIME: u64 = 1_700_000_000;
/// Stake of each simulated validator.
pub const STAKE: Amount = 1_000_000;
/// Spendable balance of each simulated validator and test account.
pub const BALANCE: Amount = 1_000_000_000;
/// Fee of the transactions the simulation builds.
pub const FEE: Amount = 1_000;

/// How the simulated network behaves and what runs on it.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// RNG seed: latency, loss.
    pub seed: u64,
    /// Number of validator keys.
    pub validators: usize,
    /// Mean one-way latency, ms.
    pub latency_ms: u64,
    /// Latency is uniform in `latency_ms ± jitter_ms`.
    pub jitter_ms: u64,
    /// Probability that a message is lost.
    pub loss: f64,
    /// Engine timing.
    pub engine: EngineConfig,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            seed: 1,
            validators: 4,
            latency_ms: 20,
            jitter_ms: 10,
            loss: 0.0,
            engine: EngineConfig::default(),
        }
    }
}

/// One simulated validator process.
struct Node {
    key: SecretKey,
    address: Address,
    store: MemStore,
    engine: Option<Engine<MemStore>>,
    mempool: Vec<SignedTx>,
    /// Evidence seen, waiting to be put into one of our blocks.
    evidence: Vec<Evidence>,
    /// Every block this node committed, by height.
    committed: BTreeMap<u64, BlockHash>,
    /// Partition group; nodes in different groups cannot talk.
    group: u32,
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Delivery {
    at: UnixMillis,
    seq: u64,
    to: usize,
    from: Address,
    message: MessageBox,
}

/// Messages ordered by nothing (the heap orders deliveries by time and
/// sequence only).
#[derive(Debug)]
struct MessageBox(ConsensusMessage);

impl PartialEq for MessageBox {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl Eq for MessageBox {}
impl PartialOrd for MessageBox {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for MessageBox {
    fn cmp(&self, _: &Self) -> std::cmp::Ordering {
        std::cmp::Ordering::Equal
    }
}

/// A safety violation: two nodes committed different blocks at one height.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Fork at height {height}: node {a} and node {b} committed different blocks")]
pub struct Fork {
    /// The height.
    pub height: u64,
    /// One node.
    pub a: usize,
    /// The other.
    pub b: usize,
}

/// The simulation; see the [module docs](self).
pub struct Sim {
    config: SimConfig,
    genesis: Genesis,
    keys: Vec<SecretKey>,
    nodes: Vec<Node>,
    now: UnixMillis,
    rng: StdRng,
    queue: BinaryHeap<Reverse<Delivery>>,
    seq: u64,
    tx_seq: u64,
    /// Every vote any node sent: (validator, height, round, step) → values.
    votes: BTreeMap<(Address, u64, i64, u8), Vec<Option<BlockHash>>>,
}

impl std::fmt::Debug for Sim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sim")
            .field("now", &self.now)
            .field("nodes", &self.nodes.len())
            .finish_non_exhaustive()
    }
}

/// The key of simulated validator `i` (also a funded account).
pub fn validator_key(i: usize) -> SecretKey {
    let mut seed = [0x5a; 32];
    seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
    SecretKey::from_seed(&seed)
}

/// The key of simulated test account `i` (funded, not a validator).
pub fn account_key(i: usize) -> SecretKey {
    let mut seed = [0xac; 32];
    seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
    SecretKey::from_seed(&seed)
}

/// The number of funded test accounts in a simulated genesis.
pub const ACCOUNTS: usize = 4;

/// The genesis of a simulated chain with `n` validators.
pub fn genesis(n: usize) -> Genesis {
    let id = |k: &SecretKey| AccountId::from(k.public()).to_string();
    let mut accounts: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"id":"{}","balance":{BALANCE}}}"#,
                id(&validator_key(i))
            )
        })
        .collect();
    accounts.extend(
        (0..ACCOUNTS).map(|i| format!(r#"{{"id":"{}","balance":{BALANCE}}}"#, id(&account_key(i)))),
    );
    let validators: Vec<String> = (0..n)
        .map(|i| format!(r#"{{"id":"{}","stake":{STAKE}}}"#, id(&validator_key(i))))
        .collect();
    let text = format!(
        r#"{{"chain_id":"{CHAIN_ID}","genesis_time":{GENESIS_TIME},
            "params":{{"max_evidence_age_blocks":1000,"jail_period_blocks":1000,
                       "unbonding_period_blocks":2000}},
            "accounts":[{}],"validators":[{}]}}"#,
        accounts.join(","),
        validators.join(",")
    );
    // The text is built here from valid ids and amounts; a failure is a bug in
    // this function.
    #[allow(clippy::expect_used)]
    Genesis::from_json(&text).expect("simulated genesis is valid")
}

impl Sim {
    /// A network of `config.validators` validators, all up, in one partition,
    /// started at genesis time.
    pub fn new(config: SimConfig) -> Self {
        let genesis = genesis(config.validators);
        let keys: Vec<SecretKey> = (0..config.validators).map(validator_key).collect();
        let rng = StdRng::seed_from_u64(config.seed);
        let mut sim = Self {
            config,
            genesis,
            keys: keys.clone(),
            nodes: Vec::new(),
            now: GENESIS_TIME * 1000,
            rng,
            queue: BinaryHeap::new(),
            seq: 0,
            tx_seq: 0,
            votes: BTreeMap::new(),
        };
        for key in keys {
            sim.add_node(key);
        }
        sim
    }

    /// Adds (and starts) another process running validator key `key` — for a
    /// key run twice, pass an existing validator's key. Returns its index.
    pub fn add_node(&mut self, key: SecretKey) -> usize {
        let address = Address::from(key.public());
        self.nodes.push(Node {
            key,
            address,
            store: MemStore::new(),
            engine: None,
            mempool: Vec::new(),
            evidence: Vec::new(),
            committed: BTreeMap::new(),
            group: 0,
        });
        let i = self.nodes.len() - 1;
        self.restart(i);
        i
    }

    /// The virtual time, Unix ms.
    pub fn now(&self) -> UnixMillis {
        self.now
    }

    /// Number of nodes (processes).
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// True if there are no nodes.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Validator key `i`.
    pub fn key(&self, i: usize) -> &SecretKey {
        &self.keys[i]
    }

    /// Stops node `i` abruptly (its store survives, as a disk would).
    pub fn crash(&mut self, i: usize) {
        self.nodes[i].engine = None;
    }

    /// (Re)starts node `i` from its store.
    pub fn restart(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        // The simulated genesis and stores are consistent by construction.
        #[allow(clippy::expect_used)]
        let mut engine = Engine::open(
            &self.genesis,
            node.key.clone(),
            node.store.clone(),
            self.config.engine.clone(),
        )
        .expect("engine opens");
        #[allow(clippy::expect_used)]
        let outputs = engine.start(self.now).expect("engine starts");
        node.engine = Some(engine);
        self.carry_out(i, outputs);
    }

    /// Puts nodes into partition groups: `groups[i]` for node `i`. Messages
    /// between groups are dropped (also those already in flight).
    pub fn partition(&mut self, groups: &[u32]) {
        for (node, g) in self.nodes.iter_mut().zip(groups) {
            node.group = *g;
        }
    }

    /// Heals every partition.
    pub fn heal(&mut self) {
        for node in &mut self.nodes {
            node.group = 0;
        }
    }

    /// Sets the message loss probability from now on.
    pub fn set_loss(&mut self, loss: f64) {
        self.config.loss = loss;
    }

    /// Submits a transfer of `amount` from test account `from` to `to` into
    /// every node's mempool. The statement's nonce and time come from the
    /// simulation, so runs stay deterministic.
    pub fn submit_transfer(&mut self, from: usize, to: Address, amount: Amount, nonce: u64) {
        let tx = self.sign_tx(
            &account_key(from),
            Tx {
                nonce,
                fee: FEE,
                body: TxBody::Transfer { to, amount },
            },
        );
        for node in &mut self.nodes {
            node.mempool.push(tx.clone());
        }
    }

    /// Submits `tx` into node `i`'s mempool only.
    pub fn submit_to(&mut self, i: usize, tx: SignedTx) {
        self.nodes[i].mempool.push(tx);
    }

    /// Signs `tx` as `key` with a deterministic statement nonce.
    pub fn sign_tx(&mut self, key: &SecretKey, tx: Tx) -> SignedTx {
        self.tx_seq += 1;
        let mut nonce = [0u8; 16];
        nonce[..8].copy_from_slice(&self.tx_seq.to_le_bytes());
        let statement = Statement {
            purpose: purpose::TRANSACTION.to_owned(),
            network: CHAIN_ID.to_owned(),
            signer: key.public(),
            nonce,
            issued_at: self.now / 1000,
            expires_at: None,
            payload: tx,
        };
        // Transactions hold only encodable data and short tags.
        #[allow(clippy::expect_used)]
        let signed: Signed<Tx> = statement.sign(key).expect("transaction signs");
        signed
    }

    /// Runs for `ms` of virtual time.
    pub fn run_for(&mut self, ms: u64) {
        let until = self.now.saturating_add(ms);
        self.run_until(until, |_| false);
    }

    /// Runs until `done(self)` holds (checked after every event) or the virtual
    /// time reaches `until`; true if `done` held.
    pub fn run_until(&mut self, until: UnixMillis, mut done: impl FnMut(&Sim) -> bool) -> bool {
        loop {
            if done(self) {
                return true;
            }
            let next_delivery = self.queue.peek().map(|Reverse(d)| d.at);
            let next_deadline = self
                .nodes
                .iter()
                .enumerate()
                .filter_map(|(i, n)| n.engine.as_ref()?.next_deadline().map(|t| (t, i)))
                .min();
            let next = match (next_delivery, next_deadline) {
                (None, None) => None,
                (Some(d), None) => Some((d, None)),
                (None, Some((t, i))) => Some((t, Some(i))),
                (Some(d), Some((t, i))) => {
                    if t < d {
                        Some((t, Some(i)))
                    } else {
                        Some((d, None))
                    }
                }
            };
            let Some((at, tick)) = next else {
                self.now = until;
                return false;
            };
            if at > until {
                self.now = until;
                return false;
            }
            self.now = self.now.max(at);
            match tick {
                Some(i) => self.step(i, Input::Tick),
                None => {
                    let Some(Reverse(d)) = self.queue.pop() else {
                        continue;
                    };
                    let from_group = self
                        .nodes
                        .iter()
                        .find(|n| n.address == d.from)
                        .map_or(0, |n| n.group);
                    if self.nodes[d.to].group != from_group {
                        continue;
                    }
                    self.step(
                        d.to,
                        Input::Message {
                            from: d.from,
                            message: d.message.0,
                        },
                    );
                }
            }
        }
    }

    fn step(&mut self, i: usize, input: Input) {
        let now = self.now;
        let Some(engine) = self.nodes[i].engine.as_mut() else {
            return;
        };
        // The in-memory store does not fail; an error here is a bug worth a
        // loud test failure.
        #[allow(clippy::expect_used)]
        let outputs = engine.handle(now, input).expect("engine step");
        self.carry_out(i, outputs);
    }

    fn carry_out(&mut self, i: usize, outputs: Vec<Output>) {
        for output in outputs {
            match output {
                Output::Broadcast(message) => {
                    let from = self.nodes[i].address;
                    if let ConsensusMessage::Vote(v) = &message {
                        let vote = v.vote.to_evidence_vote();
                        let value = vote.value.map(BlockHash);
                        let seen = self
                            .votes
                            .entry((from, vote.height, v.vote.round.as_i64(), vote.step as u8))
                            .or_default();
                        if !seen.contains(&value) {
                            seen.push(value);
                        }
                    }
                    for j in 0..self.nodes.len() {
                        if j != i {
                            self.send(j, from, message.clone());
                        }
                    }
                }
                Output::Send { to, message } => {
                    let from = self.nodes[i].address;
                    let targets: Vec<usize> = (0..self.nodes.len())
                        .filter(|j| *j != i && self.nodes[*j].address == to)
                        .collect();
                    for j in targets {
                        self.send(j, from, message.clone());
                    }
                }
                Output::ProposeRequest { height, round, .. } => {
                    let txs = self.block_txs(i);
                    self.step(i, Input::Propose { height, round, txs });
                }
                Output::Decided(decided) => {
                    let node = &mut self.nodes[i];
                    let block = &decided.block.block;
                    node.committed.insert(block.header.height, block.hash());
                    let state = node.engine.as_ref().map(|e| e.state());
                    node.mempool.retain(|tx| {
                        !block.txs.contains(tx)
                            && state.is_none_or(|s| {
                                tx.statement.payload.nonce
                                    >= s.nonce(&Address::from(tx.statement.signer))
                            })
                    });
                    if let Some(s) = state {
                        node.evidence.retain(|e| {
                            !s.stake(&e.first.validator).is_some_and(|st| st.is_jailed())
                        });
                    }
                }
                Output::Evidence(evidence) => self.nodes[i].evidence.push(*evidence),
            }
        }
    }

    /// The transactions node `i` puts in a block: its mempool, plus one
    /// evidence report per offender that is not jailed yet.
    fn block_txs(&mut self, i: usize) -> Vec<SignedTx> {
        let node = &self.nodes[i];
        let Some(state) = node.engine.as_ref().map(|e| e.state()) else {
            return Vec::new();
        };
        let mut txs = node.mempool.clone();
        let mut nonce = state.nonce(&node.address);
        let mut offenders = Vec::new();
        let mut reports = Vec::new();
        for e in &node.evidence {
            let offender = e.first.validator;
            if offenders.contains(&offender)
                || state.stake(&offender).is_some_and(|s| s.is_jailed())
            {
                continue;
            }
            offenders.push(offender);
            reports.push(Tx {
                nonce,
                fee: FEE,
                body: TxBody::ReportEvidence {
                    evidence: Box::new(*e),
                },
            });
            nonce += 1;
        }
        let key = node.key.clone();
        for tx in reports {
            let signed = self.sign_tx(&key, tx);
            txs.push(signed);
        }
        txs
    }

    fn send(&mut self, to: usize, from: Address, message: ConsensusMessage) {
        if self.config.loss > 0.0 && self.rng.gen_bool(self.config.loss.clamp(0.0, 1.0)) {
            return;
        }
        let jitter = self.config.jitter_ms.min(self.config.latency_ms);
        let low = self.config.latency_ms - jitter;
        let high = self.config.latency_ms + jitter;
        let latency = if high > low {
            self.rng.gen_range(low..=high)
        } else {
            low
        };
        self.seq += 1;
        self.queue.push(Reverse(Delivery {
            at: self.now.saturating_add(latency),
            seq: self.seq,
            to,
            from,
            message: MessageBox(message),
        }));
    }

    /// Node `i`'s engine, if it is up.
    pub fn engine(&self, i: usize) -> Option<&Engine<MemStore>> {
        self.nodes[i].engine.as_ref()
    }

    /// Node `i`'s store.
    pub fn store(&self, i: usize) -> &MemStore {
        &self.nodes[i].store
    }

    /// The last committed height of node `i` (from its store, so also for a
    /// crashed node).
    pub fn height(&self, i: usize) -> u64 {
        self.nodes[i]
            .store
            .last_committed()
            .ok()
            .flatten()
            .map_or(0, |(s, _)| s.height())
    }

    /// The lowest committed height among running nodes.
    pub fn min_height(&self) -> u64 {
        (0..self.nodes.len())
            .filter(|i| self.nodes[*i].engine.is_some())
            .map(|i| self.height(i))
            .min()
            .unwrap_or(0)
    }

    /// The highest committed height among all nodes.
    pub fn max_height(&self) -> u64 {
        (0..self.nodes.len())
            .map(|i| self.height(i))
            .max()
            .unwrap_or(0)
    }

    /// Node `i`'s committed state (from its store; genesis if none).
    pub fn state(&self, i: usize) -> State {
        self.nodes[i]
            .store
            .last_committed()
            .ok()
            .flatten()
            .map_or_else(|| State::from_genesis(&self.genesis), |(s, _)| s)
    }

    /// Node `i`'s committed block at `height`.
    pub fn block(&self, i: usize, height: u64) -> Option<CommittedBlock> {
        self.nodes[i].store.block(height).ok().flatten()
    }

    /// Every `Slashed` event in node `i`'s committed blocks.
    pub fn slashes(&self, i: usize) -> Vec<(Address, Amount)> {
        let mut state = State::from_genesis(&self.genesis);
        let mut out = Vec::new();
        for h in 1..=self.height(i) {
            let Some(b) = self.block(i, h) else { break };
            let Ok(outcome) = state.apply_block(&b.block.header, &b.block.txs) else {
                break;
            };
            for e in outcome.events {
                if let Event::Slashed {
                    validator, amount, ..
                } = e
                {
                    out.push((validator, amount));
                }
            }
        }
        out
    }

    /// Validators that sent two different votes for one (height, round, step).
    pub fn double_signers(&self) -> Vec<Address> {
        let mut out: Vec<Address> = self
            .votes
            .iter()
            .filter(|(_, values)| values.len() > 1)
            .map(|((a, _, _, _), _)| *a)
            .collect();
        out.dedup();
        out
    }

    /// Checks that no two nodes committed different blocks at any height (every
    /// block each node ever reported as decided, and every block in its store).
    pub fn check_safety(&self) -> Result<(), Fork> {
        let mut seen: BTreeMap<u64, (usize, BlockHash)> = BTreeMap::new();
        for (i, node) in self.nodes.iter().enumerate() {
            let mut blocks = node.committed.clone();
            for h in 1..=self.height(i) {
                if let Some(b) = self.block(i, h) {
                    blocks.insert(h, b.block.hash());
                }
            }
            for (h, hash) in blocks {
                match seen.get(&h) {
                    Some((j, other)) if *other != hash => {
                        return Err(Fork {
                            height: h,
                            a: *j,
                            b: i,
                        });
                    }
                    Some(_) => {}
                    None => {
                        seen.insert(h, (i, hash));
                    }
                }
            }
        }
        Ok(())
    }
}
