//! Chain benchmark: four validators in this process on loopback QUIC, each a full
//! node (malachite engine, mempool, in-memory store), driven by clients over the
//! chain ALPN like any wallet.
//!
//! Measures, in one run:
//! 1. finality latency (submit → the transaction's block is committed), p50/p99,
//!    one transfer at a time;
//! 2. sustained throughput of signed transfers (pre-signed, submitted in batches
//!    to all four validators, counted as committed). While the submissions are
//!    still being sent, the bench also notes each new height as it is seen:
//!    blocks committed during the flood, the transfers they carry, and the
//!    longest gap between commits (from the flood's start to its end) — a chain
//!    that stalls under load and catches up afterwards shows here;
//! 3. this machine's ed25519 batch-verify rate (ed25519-consensus, one core): the
//!    ceiling a chain that verifies every signature can approach, and the ratio;
//! 4. the cost of decoding one signed transfer from its wire bytes, which every
//!    node pays for each transaction it receives in a request, in gossip and in a
//!    proposed block.
//!
//! `cargo bench -p nodus-validator --bench chain`. Knobs: NODUS_BENCH_TXS
//! (default 20000), NODUS_BENCH_SAMPLES (default 40), NODUS_BENCH_WORKERS (tokio
//! worker threads, default 2); NODUS_BENCH_BLOCKS=1 lists each block of the
//! throughput run (transactions, decision round, when it was seen);
//! NODUS_BENCH_PROPOSE_MS overrides the round-0 propose timeout (an experiment:
//! the default is the engine's).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use nodus_identity::{AccountId, SecretKey};
use nodus_validator::consensus::EngineConfig;
use nodus_validator::consensus::engine::DEFAULT_PROPOSE_MS;
use nodus_validator::mempool::MempoolConfig;
use nodus_validator::node::config::{Endpoint, NodeConfig};
use nodus_validator::node::{self, MAX_FRAME_LEN, NodeHandle};
use nodus_validator::rpc::{Query, Request, Response, TxLocation};
use nodus_validator::state::Address;
use nodus_validator::storage::MemStore;
use nodus_validator::{Genesis, SignedTx, Tx, TxBody};
use nodus_wire::{Alpn, Client, Connection};

const CHAIN: &str = "bench";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn free_addr() -> SocketAddr {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn transfer(key: &SecretKey, nonce: u64, to: Address) -> SignedTx {
    Tx {
        nonce,
        fee: 1_000,
        body: TxBody::Transfer { to, amount: 1 },
    }
    .sign(CHAIN, key)
    .unwrap()
}

/// Signatures per second of `ed25519_consensus::batch::Verifier` on one core.
fn batch_verify_rate() -> f64 {
    let n = 1024;
    let items: Vec<_> = (0..n)
        .map(|i| {
            let key = ed25519_consensus::SigningKey::from([(i % 251) as u8 + 1; 32]);
            let msg = format!("message {i}").into_bytes();
            let sig = key.sign(&msg);
            (key.verification_key(), sig, msg)
        })
        .collect();
    let start = Instant::now();
    let mut done = 0usize;
    while start.elapsed() < Duration::from_secs(2) {
        let mut v = ed25519_consensus::batch::Verifier::new();
        for (vk, sig, msg) in &items {
            v.queue(((*vk).into(), *sig, msg.as_slice()));
        }
        v.verify(rand::thread_rng()).unwrap();
        done += n;
    }
    done as f64 / start.elapsed().as_secs_f64()
}

/// Microseconds to decode one signed transfer from its wire bytes (postcard, as
/// in a `Submit` request, transaction gossip or a proposed block): `txs` decoded as
/// one batch over and over for about a second.
fn decode_us_per_tx(txs: &[SignedTx]) -> f64 {
    let bytes = postcard::to_allocvec(txs).unwrap();
    let start = Instant::now();
    let mut done = 0usize;
    while start.elapsed() < Duration::from_secs(1) {
        let back: Vec<SignedTx> = postcard::from_bytes(&bytes).unwrap();
        done += back.len();
    }
    start.elapsed().as_secs_f64() * 1e6 / done as f64
}

/// CPU time this process has used (user + system), from `/proc/self/stat`;
/// `None` where that cannot be read.
fn process_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which is in parentheses and may hold
    // spaces): utime and stime are the 12th and 13th of them, in clock ticks.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split(' ').skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    // Clock ticks are USER_HZ, 100 on Linux (`getconf CLK_TCK`).
    Some(Duration::from_millis((utime + stime) * 10))
}

async fn connect(client: &Client, ep: &Endpoint) -> Connection {
    client.connect(ep.addr, ep.key, Alpn::Chain).await.unwrap()
}

async fn wait_included(conn: &Connection, id: [u8; 32]) -> u64 {
    loop {
        let r: Response = conn.request(&Request::Query(Query::Tx(id))).await.unwrap();
        if let Response::Tx(TxLocation::Included { height, .. }) = r {
            return height;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn main() {
    let workers = env_usize("NODUS_BENCH_WORKERS", 2);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(workers));
}

async fn run(workers: usize) {
    let total = env_usize("NODUS_BENCH_TXS", 20_000);
    let samples = env_usize("NODUS_BENCH_SAMPLES", 40);
    let senders_n = 200usize;
    let validators: Vec<SecretKey> = (0..4).map(|i| SecretKey::from_seed(&[i + 1; 32])).collect();
    let senders: Vec<SecretKey> = (0..senders_n)
        .map(|i| {
            let mut seed = [0u8; 32];
            seed[..8].copy_from_slice(&(i as u64 + 1000).to_le_bytes());
            SecretKey::from_seed(&seed)
        })
        .collect();
    let genesis_time = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let accounts: Vec<String> = senders
        .iter()
        .map(|k| {
            format!(
                r#"{{"id":"{}","balance":1000000000000000}}"#,
                AccountId::from(k.public())
            )
        })
        .collect();
    let vals: Vec<String> = validators
        .iter()
        .map(|k| {
            format!(
                r#"{{"id":"{}","stake":1000000}}"#,
                AccountId::from(k.public())
            )
        })
        .collect();
    let genesis = Genesis::from_json(&format!(
        r#"{{"chain_id":"{CHAIN}","genesis_time":{genesis_time},"accounts":[{}],"validators":[{}]}}"#,
        accounts.join(","),
        vals.join(",")
    ))
    .unwrap();
    let addrs: Vec<SocketAddr> = (0..4).map(|_| free_addr()).collect();
    let endpoints: Vec<Endpoint> = validators
        .iter()
        .zip(&addrs)
        .map(|(k, a)| Endpoint {
            key: k.public(),
            addr: *a,
        })
        .collect();
    let mut nodes: Vec<NodeHandle> = Vec::new();
    for (i, key) in validators.iter().enumerate() {
        let config = NodeConfig {
            keystore: "unused".into(),
            passphrase_file: None,
            genesis: "unused".into(),
            data_dir: "unused".into(),
            listen: addrs[i],
            peers: endpoints
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, e)| e.clone())
                .collect(),
            mempool: MempoolConfig::default(),
            max_block_txs: nodus_validator::node::config::DEFAULT_MAX_BLOCK_TXS,
            max_block_bytes: nodus_validator::node::config::DEFAULT_MAX_BLOCK_BYTES,
            consensus: EngineConfig {
                propose_ms: env_usize("NODUS_BENCH_PROPOSE_MS", DEFAULT_PROPOSE_MS as usize) as u64,
                ..EngineConfig::default()
            },
        };
        nodes.push(
            node::start(key.clone(), genesis.clone(), &config, MemStore::new())
                .await
                .unwrap(),
        );
    }
    let mut client = Client::new(&SecretKey::from_seed(&[99; 32])).unwrap();
    client.set_max_frame_len(MAX_FRAME_LEN);
    let mut conns = Vec::new();
    for ep in &endpoints {
        conns.push(connect(&client, ep).await);
    }
    // Let the chain get going.
    let mut head = nodes[0].head();
    while head.borrow().height < 2 {
        head.changed().await.unwrap();
    }
    let sink = Address::from(SecretKey::from_seed(&[200; 32]).public());

    // 1. Finality latency, one transfer at a time, from an account of its own.
    let mut latencies = Vec::new();
    let lat_key = &senders[0];
    for n in 0..samples as u64 {
        let tx = transfer(lat_key, n, sink);
        let conn = &conns[n as usize % 4];
        let start = Instant::now();
        let r: Response = conn.request(&Request::Submit(vec![tx])).await.unwrap();
        let Response::Submitted(mut ids) = r else {
            panic!("unexpected {r:?}")
        };
        let id = ids.pop().unwrap().unwrap();
        wait_included(conn, id).await;
        latencies.push(start.elapsed());
    }
    latencies.sort();

    // 2. Throughput: pre-signed transfers from the other senders. Like wallets,
    // each sender talks to one validator (sender i to validator i mod 4), so its
    // nonces arrive in order; the validators gossip them to each other.
    let per_sender = total.div_ceil(senders_n - 1);
    let sign_start = Instant::now();
    let mut lanes: Vec<Vec<SignedTx>> = vec![Vec::new(); 4];
    let mut signed = 0usize;
    for nonce in 0..per_sender as u64 {
        for (i, key) in senders[1..].iter().enumerate() {
            if signed < total {
                lanes[i % 4].push(transfer(key, nonce, sink));
                signed += 1;
            }
        }
    }
    let sign_secs = sign_start.elapsed().as_secs_f64();
    let base_height = head.borrow().height;
    let start = Instant::now();
    let cpu_start = process_cpu();
    // While the submitters send, note when each new height is first seen: a chain
    // that stalls under the flood shows long gaps here, however fast it catches up
    // afterwards.
    let (flood_over, mut flood_over_rx) = tokio::sync::oneshot::channel::<()>();
    let mut flood_head = head.clone();
    let watcher = tokio::spawn(async move {
        let mut seen: Vec<(u64, Instant)> = Vec::new();
        loop {
            tokio::select! {
                _ = &mut flood_over_rx => break,
                changed = flood_head.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    let h = flood_head.borrow_and_update().height;
                    if seen.last().is_none_or(|(last, _)| h > *last) {
                        seen.push((h, Instant::now()));
                    }
                }
            }
        }
        seen
    });
    let mut tasks = Vec::new();
    for (lane, conn) in lanes.into_iter().zip(conns.iter().cloned()) {
        tasks.push(tokio::spawn(async move {
            let (mut ok, mut bad) = (0usize, 0usize);
            let mut first_error = None;
            for chunk in lane.chunks(500) {
                let r: Response = conn
                    .request(&Request::Submit(chunk.to_vec()))
                    .await
                    .unwrap();
                match r {
                    Response::Submitted(ids) => {
                        for r in ids {
                            match r {
                                Ok(_) => ok += 1,
                                Err(e) => {
                                    bad += 1;
                                    first_error.get_or_insert(e);
                                }
                            }
                        }
                    }
                    other => panic!("unexpected {other:?}"),
                }
            }
            (ok, bad, first_error)
        }));
    }
    let (mut submitted, mut refused) = (0usize, 0usize);
    for t in tasks {
        let (ok, bad, first_error) = t.await.unwrap();
        submitted += ok;
        refused += bad;
        if let Some(e) = first_error {
            eprintln!("first refusal: {e}");
        }
    }
    let submit_secs = start.elapsed().as_secs_f64();
    let flood_end = Instant::now();
    let flood_cpu = cpu_start
        .zip(process_cpu())
        .map(|(a, b)| b.saturating_sub(a).as_secs_f64());
    let _ = flood_over.send(());
    let flood_seen = watcher.await.unwrap();
    // Commits seen while the flood lasted, and the longest stretch without one
    // (from the flood's start, between commits, to the flood's end).
    let flood_commits = flood_seen
        .last()
        .map_or(0, |(h, _)| h.saturating_sub(base_height));
    let mut flood_gap = Duration::ZERO;
    let mut prev = start;
    for (_, at) in flood_seen.iter().chain(std::iter::once(&(0, flood_end))) {
        flood_gap = flood_gap.max(at.duration_since(prev));
        prev = *at;
    }
    let flood_top = flood_seen.last().map_or(base_height, |(h, _)| *h);
    // Count committed transfers block by block until all admitted ones are in.
    let mut counted = 0usize;
    let mut flood_txs = 0usize;
    let mut per_block: Vec<(u64, usize, u32, f64)> = Vec::new();
    let mut next = base_height + 1;
    let mut last_commit = start;
    let deadline = Instant::now() + Duration::from_secs(300);
    while counted < submitted && Instant::now() < deadline {
        let h = head.borrow().height;
        while next <= h {
            let r: Response = conns[0]
                .request(&Request::Query(Query::Block(next)))
                .await
                .unwrap();
            if let Response::Block(Some((b, _))) = r {
                counted += b.block.txs.len();
                if next <= flood_top {
                    flood_txs += b.block.txs.len();
                }
                if !b.block.txs.is_empty() {
                    last_commit = Instant::now();
                }
                per_block.push((
                    next,
                    b.block.txs.len(),
                    b.certificate.round.as_u32().unwrap_or(0),
                    start.elapsed().as_secs_f64(),
                ));
            }
            next += 1;
        }
        let _ = tokio::time::timeout(Duration::from_millis(200), head.changed()).await;
    }
    let secs = last_commit.duration_since(start).as_secs_f64();
    let blocks = next - base_height - 1;
    let rate = counted as f64 / secs;
    let ceiling = batch_verify_rate();
    let decode_sample: Vec<SignedTx> = (0..2_000u64)
        .map(|i| {
            transfer(
                &senders[1 + (i as usize % (senders_n - 1))],
                per_sender as u64 + i,
                sink,
            )
        })
        .collect();
    let decode_us = decode_us_per_tx(&decode_sample);

    println!("chain bench: 4 validators, one process, loopback QUIC, {workers} tokio workers");
    println!(
        "finality latency ({} transfers, one at a time): p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        latencies.len(),
        percentile(&latencies, 0.5).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies.last().unwrap().as_secs_f64() * 1e3
    );
    println!(
        "throughput: {counted} of {submitted} admitted transfers ({refused} refused) committed in {secs:.2} s over {blocks} blocks = {rate:.0} transfers/s (submission took {submit_secs:.2} s; signing {total} beforehand took {sign_secs:.2} s)"
    );
    println!(
        "during the flood ({submit_secs:.2} s): {flood_commits} blocks committed carrying {flood_txs} transfers; longest gap between commits {:.2} s",
        flood_gap.as_secs_f64()
    );
    if let Some(cpu) = flood_cpu {
        println!(
            "  CPU used by this process during the flood: {cpu:.2} s ({:.2} cores busy on average)",
            cpu / submit_secs
        );
    }
    if std::env::var_os("NODUS_BENCH_BLOCKS").is_some() {
        for (h, n, round, at) in &per_block {
            println!("  block {h}: {n} txs, decided in round {round}, seen at {at:.2} s");
        }
    }
    println!(
        "decode: {decode_us:.2} µs per signed transfer (postcard, a 2,000-transfer batch from {} senders)",
        senders_n - 1
    );
    println!("ceiling: ed25519-consensus batch verify on one core = {ceiling:.0} signatures/s");
    println!(
        "ratio: throughput / one-core batch-verify ceiling = {:.3}",
        rate / ceiling
    );
    for n in nodes {
        let _ = n.shutdown().await;
    }
}
