//! Benchmark (a) of issue 3: a full inventory of a generated machine with 64
//! disks, 16 NICs and 100 hwmon sensors. Target: < 10 ms.
//!
//! `CARGO_TARGET_DIR=… cargo bench -p nodus-agent --bench inventory`
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/generate.rs"]
mod generate;

use criterion::{Criterion, criterion_group, criterion_main};
use nodus_agent::{
    hal::{Gaps, SysRoot},
    inventory::{self, Options},
};

fn full_inventory(c: &mut Criterion) {
    let dir = generate::machine(generate::Spec::default());
    let root = SysRoot::at(dir.path()).unwrap();
    let opts = Options::default();
    // Sanity: the tree is what the benchmark claims to measure.
    let inv = inventory::collect_with(&root, &opts);
    assert_eq!(inv.disks.len(), 64);
    assert!(inv.disks.iter().all(|d| d.contents_checked));
    eprintln!(
        "generated machine: {} disks, {} NICs, {} sensors",
        inv.disks.len(),
        inv.nics.len(),
        inv.sensors.len()
    );
    // CPU time (user + system) of this thread per inventory: unlike wall time it
    // does not grow when other processes compete for the cores.
    let whole = || drop(inventory::collect_with(&root, &opts));
    let disks = || {
        drop(nodus_agent::disks::collect(
            &root,
            &opts,
            &mut Gaps::default(),
        ))
    };
    let parts: [(&str, &dyn Fn()); 2] = [("inventory", &whole), ("disks", &disks)];
    for (what, f) in parts {
        let cpu = || {
            let u =
                nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_THREAD).unwrap();
            let t = |v: nix::sys::time::TimeVal| {
                std::time::Duration::new(v.tv_sec() as u64, v.tv_usec() as u32 * 1000)
            };
            t(u.user_time()) + t(u.system_time())
        };
        let n = 50;
        let start = cpu();
        for _ in 0..n {
            f();
        }
        eprintln!(
            "{what}: {:?} CPU per run (mean of {n})",
            (cpu() - start) / n
        );
    }
    c.bench_function("inventory_64_disks_16_nics_100_sensors", |b| {
        b.iter(|| inventory::collect_with(&root, &opts))
    });
    // The parts, to see where the time goes.
    c.bench_function("part_disks_64", |b| {
        b.iter(|| nodus_agent::disks::collect(&root, &opts, &mut Gaps::default()))
    });
    c.bench_function("part_sensors_100", |b| {
        b.iter(|| nodus_agent::sensors::collect(&root, &mut Gaps::default()))
    });
    c.bench_function("part_power", |b| {
        b.iter(|| nodus_agent::power::collect(&root, &mut Gaps::default()))
    });
    c.bench_function("part_nics_16", |b| {
        b.iter(|| nodus_agent::net::collect(&root, &mut Gaps::default()))
    });
}

criterion_group!(benches, full_inventory);
criterion_main!(benches);
