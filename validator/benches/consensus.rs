//! Consensus core throughput: four real engines in one process, messages
//! delivered at once (no network), blocks full of signed transfers.
//!
//! Prints, for in-memory and redb stores: blocks/s, transfers/s and the mean
//! wall time from a block's proposal to its commit on all four validators; and
//! this machine's ZIP-215 batch-verify rate, the ceiling for transfers/s (every
//! validator checks every signature once). All four engines share this
//! process, so the figures are for the whole 4-validator network on this
//! machine's cores.
//!
//! `cargo bench -p nodus-validator --bench consensus` (NODUS_BENCH_TXS sets the
//! transfers per block, default 1000; NODUS_BENCH_BLOCKS the blocks, default 10).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use nodus_validator::consensus::{Engine, EngineConfig, Input, Output};
use nodus_validator::sim::{self, CHAIN_ID};
use nodus_validator::state::Address;
use nodus_validator::storage::{DiskStore, MemStore, Store};
use nodus_validator::{SignedTx, Tx, TxBody};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn transfers(n: usize) -> Vec<SignedTx> {
    let to = Address::from(sim::account_key(3).public());
    (0..n)
        .map(|i| {
            let sender = sim::account_key(i % 3);
            Tx {
                nonce: (i / 3) as u64,
                fee: sim::FEE,
                body: TxBody::Transfer { to, amount: 1 },
            }
            .sign(CHAIN_ID, &sender)
            .unwrap()
        })
        .collect()
}

fn run<S: Store>(name: &str, stores: Vec<S>, per_block: usize, blocks: usize) {
    let genesis = sim::genesis(4);
    let config = EngineConfig {
        commit_delay_ms: 0,
        ..EngineConfig::default()
    };
    let mut engines: Vec<Engine<S>> = stores
        .into_iter()
        .enumerate()
        .map(|(i, s)| Engine::open(&genesis, sim::validator_key(i), s, config.clone()).unwrap())
        .collect();
    let addresses: Vec<Address> = engines.iter().map(|e| e.address()).collect();
    let mut pool: VecDeque<SignedTx> = transfers(per_block * blocks).into();
    // Virtual time: consensus never waits for a timeout in this run.
    let now = sim::GENESIS_TIME * 1000 + 1_000;
    let mut pending: VecDeque<(usize, Vec<Output>)> = VecDeque::new();
    for (i, e) in engines.iter_mut().enumerate() {
        pending.push_back((i, e.start(now).unwrap()));
    }
    let start = Instant::now();
    let mut proposed_at = Instant::now();
    let mut latencies = Vec::new();
    let mut committed = [0u64; 4];
    let mut txs_done = 0usize;
    while committed.iter().min().copied().unwrap_or(0) < blocks as u64 {
        let Some((i, outputs)) = pending.pop_front() else {
            panic!("consensus stalled at {committed:?}");
        };
        for output in outputs {
            match output {
                Output::Broadcast(message) => {
                    for (j, e) in engines.iter_mut().enumerate() {
                        if j != i {
                            let input = Input::Message {
                                from: addresses[i],
                                message: message.clone(),
                            };
                            pending.push_back((j, e.handle(now, input).unwrap()));
                        }
                    }
                }
                Output::ProposeRequest { height, round, .. } => {
                    let txs: Vec<SignedTx> = pool.drain(..per_block.min(pool.len())).collect();
                    proposed_at = Instant::now();
                    let input = Input::Propose { height, round, txs };
                    pending.push_back((i, engines[i].handle(now, input).unwrap()));
                }
                Output::Decided(d) => {
                    committed[i] = d.block.block.header.height;
                    if i == 0 {
                        txs_done += d.block.block.txs.len();
                    }
                    if committed.iter().all(|h| *h == d.block.block.header.height) {
                        latencies.push(proposed_at.elapsed());
                    }
                }
                Output::Send { .. } | Output::Evidence(_) => {}
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let mean = latencies.iter().sum::<Duration>() / latencies.len().max(1) as u32;
    println!(
        "{name}: {blocks} blocks x {per_block} transfers in {secs:.2} s: {:.1} blocks/s, {:.0} transfers/s, proposal-to-commit-on-all {:.1} ms",
        blocks as f64 / secs,
        txs_done as f64 / secs,
        mean.as_secs_f64() * 1000.0
    );
}

fn batch_verify_rate() {
    let txs = transfers(4096);
    let start = Instant::now();
    let mut n = 0;
    while start.elapsed() < Duration::from_secs(2) {
        let mut batch = nodus_validator::signature::Batch::new();
        for tx in &txs {
            batch.push_statement(tx).unwrap();
        }
        let results = batch.verify(rand::thread_rng());
        assert!(results.iter().all(Result::is_ok));
        n += txs.len();
    }
    println!(
        "ZIP-215 batch verify: {:.0} signatures/s on one core (ceiling for transfers/s: each of the 4 validators checks each once, so /4 on one core, /2 on two)",
        n as f64 / start.elapsed().as_secs_f64()
    );
}

fn main() {
    let per_block = env("NODUS_BENCH_TXS", 1000);
    let blocks = env("NODUS_BENCH_BLOCKS", 10);
    batch_verify_rate();
    run(
        "memory",
        (0..4).map(|_| MemStore::new()).collect(),
        per_block,
        blocks,
    );
    let dir = tempfile::tempdir().unwrap();
    let stores = (0..4)
        .map(|i| DiskStore::open(&dir.path().join(format!("v{i}.redb"))).unwrap())
        .collect();
    run("redb", stores, per_block, blocks);
}
