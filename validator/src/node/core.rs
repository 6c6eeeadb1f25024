//! The node's sans-IO core: the consensus [`Engine`] (which owns the committed
//! state and the store) plus the mempool and the query side, fed events with the
//! time, answering with [`Out`]puts the async layer carries out.

use std::collections::VecDeque;

use nodus_identity::SecretKey;
use rand::rngs::OsRng;

use crate::consensus::{Engine, EngineError, Input, Output, UnixMillis};
use crate::mempool::{Admitted, Mempool, MempoolConfig, MempoolError};
use crate::rpc::{
    AccountInfo, Gossip, HeightInfo, MAX_SUBMIT_TXS, Query, Request, Response, RpcError, TxLocation,
};
use crate::state::tx::{SignedTx, TxStatus};
use crate::state::{Address, Hash, State};
use crate::storage::Store;
use crate::{Tx, TxBody};

/// What the async layer must do.
#[derive(Debug, Clone)]
pub enum Out {
    /// Send to every peer validator.
    Gossip(Gossip),
    /// Send to one validator.
    GossipTo(Address, Gossip),
    /// A block was committed (for logs and observers).
    Committed(HeightInfo),
}

/// The core. See the [module docs](self).
pub struct Core<S: Store> {
    key: SecretKey,
    me: Address,
    engine: Engine<S>,
    mempool: Mempool,
    max_block_txs: usize,
    max_block_bytes: usize,
}

impl<S: Store> std::fmt::Debug for Core<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("me", &self.me)
            .field("height", &self.engine.height())
            .field("mempool", &self.mempool.len())
            .finish_non_exhaustive()
    }
}

impl<S: Store> Core<S> {
    /// A core around an opened (not yet started) engine; `key` is the engine's
    /// validator key, which also signs the evidence transactions.
    pub fn new(
        engine: Engine<S>,
        key: SecretKey,
        mempool: MempoolConfig,
        max_block_txs: usize,
        max_block_bytes: usize,
    ) -> Self {
        Self {
            me: Address::from(key.public()),
            key,
            engine,
            mempool: Mempool::new(mempool),
            max_block_txs,
            max_block_bytes,
        }
    }

    /// The committed state.
    pub fn state(&self) -> &State {
        self.engine.state()
    }

    /// The mempool.
    pub fn mempool(&self) -> &Mempool {
        &self.mempool
    }

    /// When [`Core::tick`] must run next.
    pub fn next_deadline(&self) -> Option<UnixMillis> {
        self.engine.next_deadline()
    }

    /// The head as clients see it.
    pub fn head(&self) -> HeightInfo {
        let s = self.engine.state();
        HeightInfo {
            chain_id: s.chain_id().to_owned(),
            height: s.height(),
            time: s.time(),
            state_root: s.root(),
        }
    }

    /// Starts consensus (replaying the engine's WAL).
    pub fn start(&mut self, now: UnixMillis) -> Result<Vec<Out>, EngineError> {
        let outputs = self.engine.start(now)?;
        self.run(outputs, now)
    }

    /// Time passed: fires what is due.
    pub fn tick(&mut self, now: UnixMillis) -> Result<Vec<Out>, EngineError> {
        let outputs = self.engine.handle(now, Input::Tick)?;
        self.run(outputs, now)
    }

    /// Gossip from `from` (authenticated by the transport).
    pub fn on_gossip(
        &mut self,
        from: Address,
        gossip: Gossip,
        now: UnixMillis,
    ) -> Result<Vec<Out>, EngineError> {
        if !self.engine.state().validator_set().contains(&from) {
            tracing::debug!(peer = %from, "gossip from a non-validator ignored");
            return Ok(Vec::new());
        }
        match gossip {
            Gossip::Consensus(message) => {
                let outputs = self.engine.handle(now, Input::Message { from, message })?;
                self.run(outputs, now)
            }
            Gossip::Txs(txs) => {
                // Checked again here: a peer's word is not a signature check.
                let results = self.mempool.insert_batch(self.engine.state(), txs, OsRng);
                self.note_verified(&results);
                Ok(Vec::new())
            }
        }
    }

    /// A request from a client or validator.
    pub fn on_request(&mut self, req: Request) -> (Response, Vec<Out>) {
        let mut out = Vec::new();
        let resp = match req {
            Request::Submit(txs) if txs.len() > MAX_SUBMIT_TXS => {
                Response::Error(RpcError::TooLarge(txs.len(), MAX_SUBMIT_TXS))
            }
            Request::Submit(txs) => {
                let results = self
                    .mempool
                    .insert_batch(self.engine.state(), txs.clone(), OsRng);
                self.note_verified(&results);
                let admitted: Vec<SignedTx> = txs
                    .into_iter()
                    .zip(&results)
                    .filter(|(_, r)| r.is_ok())
                    .map(|(t, _)| t)
                    .collect();
                if !admitted.is_empty() {
                    out.push(Out::Gossip(Gossip::Txs(admitted)));
                }
                Response::Submitted(results.into_iter().map(|r| r.map(|a| a.id)).collect())
            }
            Request::Query(q) => self.query(q),
        };
        (resp, out)
    }

    /// Tells the engine which transactions the mempool just verified, so its
    /// block checks skip their signatures.
    fn note_verified(&mut self, results: &[Result<Admitted, MempoolError>]) {
        for admitted in results.iter().flatten() {
            self.engine.note_verified(admitted.id);
        }
    }

    /// Receipts of a committed block, from the store (they survive restarts).
    fn receipts_of(&self, height: u64) -> Option<Vec<TxStatus>> {
        match self.engine.store().receipts(height) {
            Ok(r) => r,
            Err(error) => {
                tracing::warn!(%error, height, "cannot read receipts");
                None
            }
        }
    }

    /// Where a transaction was committed and its receipt.
    fn committed_tx(&self, id: &Hash) -> Option<(u64, TxStatus)> {
        let (height, i) = match self.engine.store().tx_location(id) {
            Ok(loc) => loc?,
            Err(error) => {
                tracing::warn!(%error, "cannot read the transaction index");
                return None;
            }
        };
        let status = self
            .receipts_of(height)?
            .get(usize::try_from(i).ok()?)?
            .clone();
        Some((height, status))
    }

    fn query(&self, q: Query) -> Response {
        let s = self.engine.state();
        match q {
            Query::Account(a) => Response::Account(AccountInfo {
                address: a,
                balance: s.balance(&a),
                nonce: s.nonce(&a),
                next_nonce: self.mempool.next_nonce(s, &a),
                stake: s.stake(&a).cloned(),
                unbonding: s.unbonding_of(&a),
            }),
            Query::Validators => Response::Validators(s.validator_set()),
            Query::Node(n) => Response::Node(s.node(&n).cloned()),
            Query::Farm(f) => Response::Farm(s.farm(f).cloned()),
            Query::Contracts { node, tenant } => {
                let list: Vec<_> = match node {
                    Some(n) => s.contracts_on(&n).map(|(id, c)| (*id, c.clone())).collect(),
                    None => (1..)
                        .map_while(|id| s.contract(id).map(|c| (id, c.clone())))
                        .collect(),
                };
                Response::Contracts(
                    list.into_iter()
                        .filter(|(_, c)| tenant.is_none_or(|t| c.tenant == t))
                        .collect(),
                )
            }
            Query::Height => Response::Height(self.head()),
            Query::Block(h) => {
                let block = self.engine.store().block(h).ok().flatten();
                let receipts = self.receipts_of(h).unwrap_or_default();
                Response::Block(block.map(|b| (Box::new(b), receipts)))
            }
            Query::Farming(n) => Response::Farming(s.farming(&n)),
            Query::Tx(id) => Response::Tx(match self.committed_tx(&id) {
                Some((height, status)) => TxLocation::Included { height, status },
                None if self.mempool.contains(&id) => TxLocation::Pending,
                None => TxLocation::Unknown,
            }),
        }
    }

    fn run(&mut self, outputs: Vec<Output>, now: UnixMillis) -> Result<Vec<Out>, EngineError> {
        let mut out = Vec::new();
        let mut queue: VecDeque<Output> = outputs.into();
        while let Some(output) = queue.pop_front() {
            match output {
                Output::Broadcast(m) => out.push(Out::Gossip(Gossip::Consensus(m))),
                Output::Send { to, message } => {
                    out.push(Out::GossipTo(to, Gossip::Consensus(message)));
                }
                Output::ProposeRequest { height, round, .. } => {
                    let txs = self.mempool.batch(self.max_block_txs, self.max_block_bytes);
                    tracing::debug!(height, round, txs = txs.len(), "proposing");
                    let more = self
                        .engine
                        .handle(now, Input::Propose { height, round, txs })?;
                    queue.extend(more);
                }
                Output::Decided(decided) => {
                    let block = &decided.block.block;
                    let height = block.header.height;
                    // Receipts and the transaction index were stored with the
                    // block, in the same write.
                    self.mempool.on_block(self.engine.state());
                    tracing::info!(
                        height,
                        txs = block.txs.len(),
                        mempool = self.mempool.len(),
                        "block committed"
                    );
                    out.push(Out::Committed(self.head()));
                }
                Output::Evidence(evidence) => {
                    let state = self.engine.state();
                    let tx = Tx {
                        nonce: self.mempool.next_nonce(state, &self.me),
                        fee: state.params().min_fee,
                        body: TxBody::ReportEvidence { evidence },
                    }
                    .sign(state.chain_id(), &self.key);
                    match tx {
                        Ok(tx) => {
                            let r = self.mempool.insert(state, tx.clone(), OsRng);
                            match r {
                                Ok(admitted) => {
                                    self.engine.note_verified(admitted.id);
                                    out.push(Out::Gossip(Gossip::Txs(vec![tx])));
                                }
                                Err(error) => {
                                    tracing::warn!(%error, "evidence transaction refused");
                                }
                            }
                        }
                        Err(error) => tracing::warn!(%error, "cannot sign evidence"),
                    }
                }
            }
        }
        Ok(out)
    }
}
