//! Wire benchmarks on loopback: request/response round trip (with p50/p99), and
//! bulk throughput through our framing against a raw quinn stream on the same kind
//! of connection.
//!
//! Run with `cargo bench -p nodus-wire`. Besides criterion's own report, it prints
//! the RTT percentiles and the framing overhead in one line each.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use bytes::Bytes;
use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use nodus_identity::{PublicKey, SecretKey};
use nodus_wire::{Alpn, Blob, Client, Connection, Refusal, Role, ServerBuilder};
use serde::{Deserialize, Serialize};

/// Bulk volume per iteration and frame size.
const BULK_BYTES: usize = 64 << 20;
const BULK_FRAME: usize = 64 << 10;
/// Round trips recorded for the percentile figures.
const RTT_SAMPLES: usize = 5_000;

#[derive(Serialize, Deserialize)]
enum Msg {
    Ping(u64),
    Bulk(Blob),
}

/// What the framed sink decodes: the same encoding as [`Msg`], but borrowing the
/// bulk bytes from the frame instead of copying them (the pattern for bulk data).
#[derive(Deserialize)]
enum MsgRef<'a> {
    Ping(u64),
    Bulk(&'a [u8]),
}

/// Console ALPN: framed. Reads every frame of a stream, answers with the ping value
/// or the number of bulk bytes.
async fn framed_sink(conn: Connection) {
    while let Ok((mut send, mut recv)) = conn.accept_bi().await {
        tokio::spawn(async move {
            let mut total = 0u64;
            while let Ok(Some(body)) = recv.recv_frame().await {
                match nodus_wire::decode_body::<MsgRef<'_>>(&body) {
                    Ok(MsgRef::Ping(n)) => total = n,
                    Ok(MsgRef::Bulk(b)) => total += b.len() as u64,
                    Err(_) => return,
                }
            }
            let _ = send.send(&total).await;
            let _ = send.finish();
        });
    }
}

/// Chain ALPN: raw quinn. Counts bytes to end of stream, answers with the count.
async fn raw_sink(conn: Connection) {
    while let Ok((mut send, mut recv)) = conn.quinn().accept_bi().await {
        tokio::spawn(async move {
            let mut total = 0u64;
            while let Ok(Some(chunk)) = recv.read_chunk(usize::MAX, true).await {
                total += chunk.bytes.len() as u64;
            }
            let _ = send.write_all(&total.to_le_bytes()).await;
            let _ = send.finish();
        });
    }
}

/// Workload ALPN: raw quinn the ordinary way, copying into a 64 KiB buffer.
async fn raw_copy_sink(conn: Connection) {
    while let Ok((mut send, mut recv)) = conn.quinn().accept_bi().await {
        tokio::spawn(async move {
            let mut total = 0u64;
            let mut buf = vec![0u8; BULK_FRAME];
            while let Ok(Some(n)) = recv.read(&mut buf).await {
                total += n as u64;
            }
            let _ = send.write_all(&total.to_le_bytes()).await;
            let _ = send.finish();
        });
    }
}

struct Setup {
    _server: nodus_wire::Server,
    framed: Connection,
    raw: Connection,
    raw_copy: Connection,
}

async fn setup() -> Setup {
    let node = SecretKey::from_seed(&[1; 32]);
    let me = SecretKey::from_seed(&[2; 32]);
    let known: PublicKey = me.public();
    let authorizer = move |peer: &PublicKey, _: Alpn| {
        if *peer == known {
            Ok(Role::Operator)
        } else {
            Err(Refusal::UnknownKey)
        }
    };
    let server = ServerBuilder::new(&node, Arc::new(authorizer))
        .route(Alpn::Console, framed_sink)
        .route(Alpn::Chain, raw_sink)
        .route(Alpn::Workload, raw_copy_sink)
        .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .unwrap();
    let client = Client::new(&me).unwrap();
    let framed = client
        .connect(server.local_addr(), node.public(), Alpn::Console)
        .await
        .unwrap();
    let raw = client
        .connect(server.local_addr(), node.public(), Alpn::Chain)
        .await
        .unwrap();
    let raw_copy = client
        .connect(server.local_addr(), node.public(), Alpn::Workload)
        .await
        .unwrap();
    Setup {
        _server: server,
        framed,
        raw,
        raw_copy,
    }
}

async fn ping(conn: &Connection, n: u64) {
    let back: u64 = conn.request(&Msg::Ping(n)).await.unwrap();
    assert_eq!(back, n);
}

async fn bulk_framed(conn: &Connection, msg: &Msg) {
    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    for _ in 0..BULK_BYTES / BULK_FRAME {
        send.send(msg).await.unwrap();
    }
    send.finish().unwrap();
    let total: u64 = recv.recv().await.unwrap().unwrap();
    assert_eq!(total as usize, BULK_BYTES);
}

async fn bulk_raw(conn: &Connection, chunk: &Bytes) {
    let (mut send, mut recv) = conn.quinn().open_bi().await.unwrap();
    for _ in 0..BULK_BYTES / BULK_FRAME {
        send.write_chunk(chunk.clone()).await.unwrap();
    }
    send.finish().unwrap();
    let mut total = [0u8; 8];
    recv.read_exact(&mut total).await.unwrap();
    assert_eq!(u64::from_le_bytes(total) as usize, BULK_BYTES);
}

/// CPU time (user + system) this process has used so far.
fn cpu_time() -> Duration {
    use nix::sys::resource::{UsageWho, getrusage};
    let usage = getrusage(UsageWho::RUSAGE_SELF).unwrap();
    let tv = |t: nix::sys::time::TimeVal| {
        Duration::from_secs(t.tv_sec() as u64) + Duration::from_micros(t.tv_usec() as u64)
    };
    tv(usage.user_time()) + tv(usage.system_time())
}

/// Raw quinn as most code uses it: `write_all` from a slice (quinn copies it),
/// `read` into a buffer (copied out).
async fn bulk_raw_copy(conn: &Connection, chunk: &[u8]) {
    let (mut send, mut recv) = conn.quinn().open_bi().await.unwrap();
    for _ in 0..BULK_BYTES / BULK_FRAME {
        send.write_all(chunk).await.unwrap();
    }
    send.finish().unwrap();
    let mut total = [0u8; 8];
    recv.read_exact(&mut total).await.unwrap();
    assert_eq!(u64::from_le_bytes(total) as usize, BULK_BYTES);
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let s = rt.block_on(setup());

    // Round-trip percentiles: criterion reports means, so record each one here.
    let mut rtts = rt.block_on(async {
        for n in 0..500 {
            ping(&s.framed, n).await;
        }
        let mut rtts = Vec::with_capacity(RTT_SAMPLES);
        for n in 0..RTT_SAMPLES as u64 {
            let t = Instant::now();
            ping(&s.framed, n).await;
            rtts.push(t.elapsed());
        }
        rtts
    });
    rtts.sort_unstable();
    println!(
        "rtt: p50 {:?}  p99 {:?}  max {:?}  ({} sequential requests, idle loopback)",
        percentile(&rtts, 0.50),
        percentile(&rtts, 0.99),
        rtts[rtts.len() - 1],
        RTT_SAMPLES
    );

    let mut g = c.benchmark_group("rtt");
    g.bench_function("request_response", |b| {
        b.to_async(&rt).iter(|| ping(&s.framed, 7))
    });
    g.finish();

    // Bulk: the same 64 MiB in 64 KiB pieces, framed and raw, interleaved so both
    // see the same machine load; then criterion's own measurement of each.
    let blob = Msg::Bulk(Blob(vec![0xa5; BULK_FRAME]));
    let bytes = Bytes::from(vec![0xa5; BULK_FRAME]);
    // Each round times the three back to back, in wall time and in CPU time
    // (client and server both live in this process). On a shared machine wall time
    // swings with other people's load; CPU time per byte is what framing really
    // costs, and on an idle machine loopback QUIC is CPU-bound, so its ratio is the
    // throughput ratio. Two baselines: zero-copy quinn (`write_chunk`/`read_chunk`,
    // the strictest) and copying quinn (`write_all`/`read`, the usual).
    const ROUNDS: usize = 7;
    let mut rounds = Vec::with_capacity(ROUNDS);
    let plain = vec![0xa5u8; BULK_FRAME];
    rt.block_on(async {
        bulk_raw(&s.raw, &bytes).await;
        bulk_raw_copy(&s.raw_copy, &plain).await;
        bulk_framed(&s.framed, &blob).await;
        for _ in 0..ROUNDS {
            let (t, cpu) = (Instant::now(), cpu_time());
            bulk_raw(&s.raw, &bytes).await;
            let raw = (t.elapsed(), cpu_time() - cpu);
            let (t, cpu) = (Instant::now(), cpu_time());
            bulk_raw_copy(&s.raw_copy, &plain).await;
            let raw_copy = (t.elapsed(), cpu_time() - cpu);
            let (t, cpu) = (Instant::now(), cpu_time());
            bulk_framed(&s.framed, &blob).await;
            rounds.push([raw, raw_copy, (t.elapsed(), cpu_time() - cpu)]);
        }
    });
    let mib_s = |d: Duration| BULK_BYTES as f64 / (1 << 20) as f64 / d.as_secs_f64();
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let wall = |i: usize| median(rounds.iter().map(|r| mib_s(r[i].0)).collect());
    let per_cpu = |i: usize| median(rounds.iter().map(|r| mib_s(r[i].1)).collect());
    let cost = |base: usize| {
        median(
            rounds
                .iter()
                .map(|r| r[2].1.as_secs_f64() / r[base].1.as_secs_f64() - 1.0)
                .collect(),
        ) * 100.0
    };
    println!(
        "bulk ({ROUNDS} rounds × 64 MiB in 64 KiB frames, medians)\n  \
         wall MiB/s:       framed {:.0}, raw zero-copy {:.0}, raw copying {:.0}\n  \
         MiB per CPU-s:    framed {:.0}, raw zero-copy {:.0}, raw copying {:.0}\n  \
         framing CPU cost: {:+.1} % vs raw zero-copy, {:+.1} % vs raw copying",
        wall(2),
        wall(0),
        wall(1),
        per_cpu(2),
        per_cpu(0),
        per_cpu(1),
        cost(0),
        cost(1),
    );

    let mut g = c.benchmark_group("bulk_64MiB_in_64KiB");
    g.throughput(Throughput::Bytes(BULK_BYTES as u64))
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .measurement_time(Duration::from_secs(8));
    g.bench_function("framed", |b| {
        b.to_async(&rt).iter(|| bulk_framed(&s.framed, &blob))
    });
    g.bench_function("raw_quinn", |b| {
        b.to_async(&rt).iter(|| bulk_raw(&s.raw, &bytes))
    });
    g.bench_function("raw_quinn_copying", |b| {
        b.to_async(&rt).iter(|| bulk_raw_copy(&s.raw_copy, &plain))
    });
    g.finish();
}

criterion_group!(wire, benches);
criterion_main!(wire);
