//! Agent sample → remote console screen over loopback QUIC (target < 50 ms).
//!
//! `cargo bench -p nodus-console --bench latency`. A fake agent (the one the
//! tests use, serving `nodus/console/1` with nodus-wire) pushes one telemetry
//! sample at a time; the console's QUIC data source carries it to the model and
//! the Overview frame is drawn at 120×40 on ratatui's `TestBackend`. Prints
//! p50/p99/max of the time from the agent's send to the drawn frame.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/fake_agent.rs"]
mod fake_agent;

use std::time::{Duration, Instant};

use nodus_console::app::App;
use nodus_console::model::{Connection, Update};
use nodus_console::source::{self, Endpoint, Remote};
use nodus_console::theme::{Capabilities, Theme};
use nodus_identity::SecretKey;
use nodus_wire::quic::Backoff;
use nodus_wire::{Client, Role};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

const SAMPLES: usize = 1_000;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut agent = fake_agent::FakeAgent::new(true);
        let key = SecretKey::generate().unwrap();
        agent.admit(key.public(), Role::Owner);
        let addr = agent.serve_quic("127.0.0.1:0".parse().unwrap());
        let (tx, mut rx) = tokio::sync::mpsc::channel(1_024);
        let (_req_tx, req_rx) = tokio::sync::mpsc::channel(8);
        let endpoint = Endpoint::Remote(Box::new(Remote {
            node: agent.node_id,
            addr: addr.to_string(),
            client: Client::new(&key).unwrap(),
            grant: None,
        }));
        tokio::spawn(source::run(endpoint, 0, tx, req_rx, Backoff::default()));
        let mut app = App::new(Default::default(), false);
        while app.model.connection != Connection::Connected {
            let (_, u) = rx.recv().await.unwrap();
            app.handle_update(u);
        }
        let theme = Theme::new(Capabilities::FULL);
        let mut terminal = Terminal::new(TestBackend::new(120, 40)).unwrap();
        let mut lat = Vec::with_capacity(SAMPLES);
        for i in 0..SAMPLES {
            let value = i as f64;
            let sent = Instant::now();
            agent.sample("power.dcmi.wall.watts", value);
            loop {
                let (_, u) = rx.recv().await.unwrap();
                let hit = matches!(&u, Update::Samples(s) if s.values.iter().any(|(_, v)| *v == value));
                app.handle_update(u);
                if hit {
                    break;
                }
            }
            terminal
                .draw(|f| nodus_console::view::render(&app, &theme, f))
                .unwrap();
            lat.push(sent.elapsed());
            // One sample at a time, at the pace of a busy agent (not a flood).
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        lat.sort_unstable();
        let p = |q: usize| lat[(lat.len() * q / 100).min(lat.len() - 1)].as_secs_f64() * 1_000.0;
        println!(
            "agent sample -> remote console frame (QUIC loopback, {SAMPLES} samples): p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
            p(50),
            p(99),
            lat[lat.len() - 1].as_secs_f64() * 1_000.0
        );
    });
}
