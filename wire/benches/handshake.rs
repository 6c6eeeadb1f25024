//! Handshake cost of the per-ALPN server configuration against the plain combined
//! one, on loopback, in the same run; and the ClientHello ALPN reader alone.
//!
//! Run with `cargo bench -p nodus-wire --bench handshake`. Besides criterion's
//! report it prints one line with the medians of interleaved rounds (wall and CPU
//! time per handshake) and their ratio.
//!
//! A handshake here is: client `connect` until both sides are established (the
//! server has verified the client key and finished). Both servers serve Console and
//! Grant with the same authorizer; the client offers Console with a known key.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::{
    hint::black_box,
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use criterion::{Criterion, criterion_group, criterion_main};
use nodus_identity::{PublicKey, SecretKey};
use nodus_wire::{
    Alpn, Refusal, Role,
    tls::{self, LocalIdentity, client_hello},
};
use quinn_proto::crypto::ClientConfig as _;

/// Handshakes per configuration and round in the interleaved comparison.
const PER_ROUND: usize = 50;
const ROUNDS: usize = 9;

/// One round: (wall, CPU) seconds per handshake, per-ALPN then combined.
type Round = [(f64, f64); 2];

struct Bench {
    client: quinn::Endpoint,
    client_config: quinn::ClientConfig,
    per_alpn: Server,
    combined: Server,
}

/// A raw quinn server endpoint that reports each established connection.
struct Server {
    endpoint: quinn::Endpoint,
    established: tokio::sync::mpsc::UnboundedReceiver<quinn::Connection>,
}

impl Server {
    fn start(crypto: Arc<dyn quinn::crypto::ServerConfig>) -> Self {
        let config = quinn::ServerConfig::with_crypto(crypto);
        let endpoint =
            quinn::Endpoint::server(config, SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
        let (tx, established) = tokio::sync::mpsc::unbounded_channel();
        let accept = endpoint.clone();
        tokio::spawn(async move {
            while let Some(incoming) = accept.accept().await {
                let tx = tx.clone();
                tokio::spawn(async move {
                    if let Ok(conn) = incoming.await {
                        let _ = tx.send(conn);
                    }
                });
            }
        });
        Self {
            endpoint,
            established,
        }
    }
}

fn setup() -> Bench {
    let node = SecretKey::from_seed(&[1; 32]);
    let me = SecretKey::from_seed(&[2; 32]);
    let known = me.public();
    let authorizer = Arc::new(move |peer: &PublicKey, alpn: Alpn| match alpn {
        Alpn::Grant => Ok(Role::Viewer),
        _ if *peer == known => Ok(Role::Operator),
        _ => Err(Refusal::UnknownKey),
    });
    let alpns = [Alpn::Console, Alpn::Grant];
    let identity = LocalIdentity::new(&node).unwrap();
    let per_alpn = tls::quic_server_config(&identity, authorizer.clone(), &alpns).unwrap();
    let combined = Arc::new(
        quinn::crypto::rustls::QuicServerConfig::try_from(
            tls::server_tls_config(&identity, authorizer, &alpns).unwrap(),
        )
        .unwrap(),
    );
    let client_tls = tls::client_tls_config(
        &LocalIdentity::new(&me).unwrap(),
        node.public(),
        vec![Alpn::Console.as_bytes().to_vec()],
    )
    .unwrap();
    let client_config = quinn::ClientConfig::new(Arc::new(
        quinn::crypto::rustls::QuicClientConfig::try_from(client_tls).unwrap(),
    ));
    Bench {
        client: quinn::Endpoint::client(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap(),
        client_config,
        per_alpn: Server::start(per_alpn),
        combined: Server::start(combined),
    }
}

/// One handshake against `server`, until both sides are established.
async fn handshake(b: &mut Bench, per_alpn: bool) {
    let server = if per_alpn {
        &mut b.per_alpn
    } else {
        &mut b.combined
    };
    let addr = server.endpoint.local_addr().unwrap();
    let conn = b
        .client
        .connect_with(b.client_config.clone(), addr, tls::SERVER_NAME)
        .unwrap()
        .await
        .unwrap();
    let accepted = server.established.recv().await.unwrap();
    conn.close(0u32.into(), b"");
    accepted.close(0u32.into(), b"");
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

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// A real ClientHello offering the console protocol.
fn real_client_hello() -> Vec<u8> {
    let node = SecretKey::from_seed(&[1; 32]);
    let me = SecretKey::from_seed(&[2; 32]);
    let client_tls = tls::client_tls_config(
        &LocalIdentity::new(&me).unwrap(),
        node.public(),
        vec![Alpn::Console.as_bytes().to_vec()],
    )
    .unwrap();
    let config = Arc::new(quinn::crypto::rustls::QuicClientConfig::try_from(client_tls).unwrap());
    let params = quinn_proto::transport_parameters::TransportParameters::read(
        quinn_proto::Side::Server,
        &mut &[][..],
    )
    .unwrap();
    let mut session = config.start_session(1, tls::SERVER_NAME, &params).unwrap();
    let mut hello = Vec::new();
    session.write_handshake(&mut hello);
    hello
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut b = rt.block_on(async { setup() });

    // Interleaved rounds so both configurations see the same machine load.
    let mut rounds = Vec::with_capacity(ROUNDS);
    rt.block_on(async {
        for _ in 0..PER_ROUND {
            handshake(&mut b, true).await;
            handshake(&mut b, false).await;
        }
        for _ in 0..ROUNDS {
            let mut round = [(0.0, 0.0); 2];
            for (i, per_alpn) in [(0, true), (1, false)] {
                let (t, cpu) = (Instant::now(), cpu_time());
                for _ in 0..PER_ROUND {
                    handshake(&mut b, per_alpn).await;
                }
                round[i] = (
                    t.elapsed().as_secs_f64() / PER_ROUND as f64,
                    (cpu_time() - cpu).as_secs_f64() / PER_ROUND as f64,
                );
            }
            rounds.push(round);
        }
    });
    let wall = |i: usize| median(rounds.iter().map(|r| r[i].0).collect());
    let cpu = |i: usize| median(rounds.iter().map(|r| r[i].1).collect());
    let ratio = |f: fn(&Round) -> f64| median(rounds.iter().map(f).collect());
    println!(
        "handshake ({ROUNDS} rounds × {PER_ROUND} per config, medians, client+server in this process)\n  \
         wall per handshake: per-ALPN {:.0} µs, combined {:.0} µs, ratio {:.3}\n  \
         CPU per handshake:  per-ALPN {:.0} µs, combined {:.0} µs, ratio {:.3}",
        wall(0) * 1e6,
        wall(1) * 1e6,
        ratio(|r| r[0].0 / r[1].0),
        cpu(0) * 1e6,
        cpu(1) * 1e6,
        ratio(|r| r[0].1 / r[1].1),
    );

    let mut g = c.benchmark_group("handshake");
    g.bench_function("per_alpn", |bench| {
        bench.iter(|| rt.block_on(handshake(&mut b, true)))
    });
    g.bench_function("combined", |bench| {
        bench.iter(|| rt.block_on(handshake(&mut b, false)))
    });
    g.finish();

    let hello = real_client_hello();
    c.bench_function("client_hello_read", |bench| {
        bench.iter(|| client_hello::read(black_box(&hello)).unwrap())
    });
}

criterion_group!(handshake_benches, benches);
criterion_main!(handshake_benches);
