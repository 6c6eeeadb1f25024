//! Full Overview frame at 120×40 on ratatui's `TestBackend` (target: p99 < 1 ms).
//!
//! `cargo bench -p nodus-console --bench render`. Besides criterion's estimate it
//! prints p50/p99 of its own per-frame timings, since the target is a tail: wall
//! time, and the thread's CPU time (on a shared, loaded build machine the wall
//! tail is mostly time the thread spent waiting for a core).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use nix::time::{ClockId, clock_gettime};

fn cpu_now() -> Duration {
    clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID)
        .map(Duration::from)
        .unwrap()
}

use criterion::{Criterion, criterion_group, criterion_main};
use nodus_console::app::App;
use nodus_console::model::Inventory;
use nodus_console::theme::{Capabilities, Theme};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

fn app() -> App {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/inventory.json");
    let inv = Inventory::from_json(&std::fs::read_to_string(path).unwrap()).unwrap();
    App::new(nodus_console::demo::model(inv), false)
}

fn overview(c: &mut Criterion) {
    let app = app();
    let theme = Theme::new(Capabilities::FULL);
    let mut terminal = Terminal::new(TestBackend::new(120, 40)).unwrap();
    // Each draw diffs against the previous buffer like a real terminal; clearing
    // first makes every frame a full repaint, the worst case.
    let frame = |t: &mut Terminal<TestBackend>| {
        t.clear().unwrap();
        t.draw(|f| nodus_console::view::render(&app, &theme, f))
            .unwrap();
    };
    let draw = |t: &mut Terminal<TestBackend>| {
        t.draw(|f| nodus_console::view::render(&app, &theme, f))
            .unwrap();
    };
    let mut diffed: Vec<u128> = (0..5_000)
        .map(|_| {
            let start = Instant::now();
            draw(&mut terminal);
            start.elapsed().as_nanos()
        })
        .collect();
    diffed.sort_unstable();
    let p = |v: &[u128], p: usize| v[v.len() * p / 100] as f64 / 1_000.0;
    println!(
        "overview 120x40 draw (diff against previous frame): p50 {:.1} µs, p99 {:.1} µs",
        p(&diffed, 50),
        p(&diffed, 99)
    );
    let mut cpu: Vec<u128> = (0..5_000)
        .map(|_| {
            let start = cpu_now();
            draw(&mut terminal);
            (cpu_now() - start).as_nanos()
        })
        .collect();
    cpu.sort_unstable();
    println!(
        "overview 120x40 draw, thread CPU time: p50 {:.1} µs, p99 {:.1} µs",
        p(&cpu, 50),
        p(&cpu, 99)
    );
    let mut samples: Vec<u128> = (0..5_000)
        .map(|_| {
            let start = Instant::now();
            frame(&mut terminal);
            start.elapsed().as_nanos()
        })
        .collect();
    samples.sort_unstable();
    let mut full_cpu: Vec<u128> = (0..5_000)
        .map(|_| {
            let start = cpu_now();
            frame(&mut terminal);
            (cpu_now() - start).as_nanos()
        })
        .collect();
    full_cpu.sort_unstable();
    println!(
        "overview 120x40 full frame, thread CPU time: p50 {:.1} µs, p99 {:.1} µs",
        p(&full_cpu, 50),
        p(&full_cpu, 99)
    );
    let pct = |q: usize| p(&samples, q);
    println!(
        "overview 120x40 full frame: p50 {:.1} µs, p99 {:.1} µs over {} frames",
        pct(50),
        pct(99),
        samples.len()
    );
    c.bench_function("overview_120x40_repaint", |b| {
        b.iter(|| frame(&mut terminal))
    });
    c.bench_function("overview_120x40_draw", |b| b.iter(|| draw(&mut terminal)));
}

criterion_group!(benches, overview);
criterion_main!(benches);
