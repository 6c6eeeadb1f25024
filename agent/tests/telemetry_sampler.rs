//! The sampler over fixture trees, driven by a virtual clock: the test rewrites the
//! counter files between ticks, exactly as the kernel would, and never sleeps.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test helpers: a panic is a failed test.

mod common;

use std::{fs, path::Path, time::Duration};

use nodus_agent::{
    hal::SysRoot,
    telemetry::{Batch, ClockAnchor, History, Sampler, TelemetryConfig, TelemetryConfigRaw},
};

/// A whole minute, so fine and coarse runs start on round times.
const T0_MS: u64 = 1_699_999_980_000;

struct Machine {
    dir: tempfile::TempDir,
}

impl Machine {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        for d in ["proc", "sys/block/sda", "sys/block/loop0", "sys/class/net"] {
            fs::create_dir_all(dir.path().join(d)).unwrap();
        }
        let m = Self { dir };
        m.write(
            "proc/meminfo",
            "MemTotal: 8000000 kB\nMemFree: 1000000 kB\nMemAvailable: 6000000 kB\n",
        );
        m.stat(&[(100, 1000), (50, 500), (50, 500)]);
        m.disks(0, 0);
        m.nic("eth0", 0, 0);
        // The bonding driver's control file sits among the interfaces.
        m.write("sys/class/net/bonding_masters", "bond0\n");
        m
    }

    fn root(&self) -> SysRoot {
        SysRoot::at(self.dir.path()).unwrap()
    }

    fn write(&self, rel: &str, text: &str) {
        let p = self.dir.path().join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }

    /// `(busy, total)` ticks: the total line first, then each CPU.
    fn stat(&self, cpus: &[(u64, u64)]) {
        let mut s = String::new();
        for (i, (busy, total)) in cpus.iter().enumerate() {
            let name = if i == 0 {
                "cpu ".to_owned()
            } else {
                format!("cpu{}", i - 1)
            };
            // user nice system idle iowait irq softirq steal guest guest_nice
            s += &format!("{name} {busy} 0 0 {} 0 0 0 0 0 0\n", total - busy);
        }
        s += "intr 0\nctxt 0\n";
        self.write("proc/stat", &s);
    }

    fn disks(&self, read_sectors: u64, written_sectors: u64) {
        self.write(
            "proc/diskstats",
            &format!(
                "   7       0 loop0 9 0 999 0 0 0 0 0 0 0 0\n   8       0 sda 10 0 {read_sectors} 0 10 0 {written_sectors} 0 0 0 0\n   8       1 sda1 10 0 {read_sectors} 0 10 0 {written_sectors} 0 0 0 0\n"
            ),
        );
    }

    fn nic(&self, name: &str, rx: u64, tx: u64) {
        self.write(
            &format!("sys/class/net/{name}/statistics/rx_bytes"),
            &format!("{rx}\n"),
        );
        self.write(
            &format!("sys/class/net/{name}/statistics/tx_bytes"),
            &format!("{tx}\n"),
        );
    }

    fn remove_nic(&self, name: &str) {
        fs::remove_dir_all(self.dir.path().join("sys/class/net").join(name)).unwrap();
    }
}

fn config(per_cpu: bool) -> TelemetryConfig {
    TelemetryConfig::try_from(TelemetryConfigRaw {
        per_cpu: Some(per_cpu),
        ..TelemetryConfigRaw::default()
    })
    .unwrap()
}

fn sampler(m: &Machine, per_cpu: bool) -> Sampler {
    let anchor = ClockAnchor {
        mono: Duration::ZERO,
        unix_ms: T0_MS,
    };
    Sampler::new(m.root(), &config(per_cpu), anchor)
}

fn get(b: &Batch, name: &str) -> Option<f64> {
    b.values.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[test]
fn rates_from_rewritten_counters() {
    let m = Machine::new();
    let mut s = sampler(&m, true);

    let first = s.handle_timeout(secs(0)).unwrap();
    assert_eq!(first.unix_s, T0_MS / 1000);
    // Gauges at once, rates only from the second tick.
    assert_eq!(get(&first, "mem.used_bytes"), Some(2_000_000.0 * 1024.0));
    assert_eq!(
        get(&first, "mem.available_bytes"),
        Some(6_000_000.0 * 1024.0)
    );
    assert_eq!(get(&first, "nic.eth0.rx_bps"), None);
    assert_eq!(get(&first, "cpu.busy_pct"), None);

    m.stat(&[(150, 1200), (50, 600), (100, 600)]);
    m.disks(2048, 4096); // 1 MiB read, 2 MiB written
    m.nic("eth0", 125_000, 5_000);
    assert!(s.handle_timeout(Duration::from_millis(999)).is_none());
    let b = s.handle_timeout(secs(1)).unwrap();
    assert_eq!(b.unix_s, T0_MS / 1000 + 1);
    assert_eq!(get(&b, "cpu.busy_pct"), Some(25.0));
    assert_eq!(get(&b, "cpu.0.busy_pct"), Some(0.0));
    assert_eq!(get(&b, "cpu.1.busy_pct"), Some(50.0));
    assert_eq!(get(&b, "disk.sda.read_bps"), Some(1_048_576.0));
    assert_eq!(get(&b, "disk.sda.write_bps"), Some(2_097_152.0));
    assert_eq!(get(&b, "nic.eth0.rx_bps"), Some(125_000.0));
    assert_eq!(get(&b, "nic.eth0.tx_bps"), Some(5_000.0));
    // Partitions and loop devices are not disks.
    assert!(
        b.values
            .iter()
            .all(|(n, _)| !n.contains("sda1") && !n.contains("loop0"))
    );
    assert!(s.last_gaps().0.is_empty(), "{:?}", s.last_gaps());
}

#[test]
fn counter_reset_and_vanished_nic_give_no_rate_not_a_huge_one() {
    let m = Machine::new();
    let mut s = sampler(&m, false);
    m.nic("eth0", 1_000_000, 1_000_000);
    s.handle_timeout(secs(0)).unwrap();

    // The driver was reloaded: counters start again from zero.
    m.nic("eth0", 10, 10);
    let b = s.handle_timeout(secs(1)).unwrap();
    assert_eq!(get(&b, "nic.eth0.rx_bps"), None);
    m.nic("eth0", 1010, 10);
    let b = s.handle_timeout(secs(2)).unwrap();
    assert_eq!(get(&b, "nic.eth0.rx_bps"), Some(1000.0));

    // A workload's veth appears, vanishes, and comes back with other counters.
    m.nic("veth1", 0, 0);
    s.handle_timeout(secs(3)).unwrap();
    m.remove_nic("veth1");
    let b = s.handle_timeout(secs(4)).unwrap();
    assert_eq!(get(&b, "nic.veth1.rx_bps"), None);
    assert!(s.last_gaps().0.is_empty(), "a vanished NIC is not a gap");
    m.nic("veth1", u64::from(u32::MAX), 0);
    let b = s.handle_timeout(secs(5)).unwrap();
    assert_eq!(get(&b, "nic.veth1.rx_bps"), None);
}

#[test]
fn garbage_counter_files_are_gaps_not_panics() {
    let m = Machine::new();
    let mut s = sampler(&m, false);
    m.write("sys/class/net/eth0/statistics/rx_bytes", "lots\n");
    m.write("proc/stat", "cpu garbage\n");
    let b = s.handle_timeout(secs(0)).unwrap();
    assert_eq!(get(&b, "cpu.busy_pct"), None);
    assert!(get(&b, "mem.used_bytes").is_some());
    assert!(
        s.last_gaps().0.iter().any(|g| g.what.contains("eth0")),
        "{:?}",
        s.last_gaps()
    );
}

#[test]
fn ticks_fill_the_history_for_a_late_console() {
    // A 5-minute fine ring and 10 minutes of buckets: the default shape scaled
    // down so the test writes 600 ticks of counter files, not 7200.
    let cfg = TelemetryConfig::try_from(TelemetryConfigRaw {
        fine_span_s: Some(300),
        coarse_span_s: Some(600),
        ..TelemetryConfigRaw::default()
    })
    .unwrap();
    let m = Machine::new();
    let anchor = ClockAnchor {
        mono: Duration::ZERO,
        unix_ms: T0_MS,
    };
    let mut s = Sampler::new(m.root(), &cfg, anchor);
    let mut h = History::new(cfg.history);
    let mut rx = 0u64;
    // 10 min of 1 s ticks; the NIC moves 1000 B/s, with a 1 s burst at t = 150.
    for t in 0..600u64 {
        rx += if t == 150 { 1_000_000 } else { 1000 };
        m.nic("eth0", rx, 0);
        if let Some(batch) = s.handle_timeout(secs(t)) {
            h.record_batch(&batch);
        }
    }
    let t0 = T0_MS / 1000;
    let late = h.series_since("nic.eth0.rx_bps", 0).unwrap();
    // The last 5 min at 1 s, the part before in minute buckets with the burst kept.
    assert_eq!(late.fine.step_s, 1);
    assert_eq!(late.fine.values.len(), 300);
    assert_eq!(late.fine.start_unix_s, t0 + 300);
    assert!(late.fine.values.iter().all(|v| *v == Some(1000.0)));
    assert_eq!(late.coarse.step_s, 60);
    assert_eq!(late.coarse.start_unix_s, t0);
    assert_eq!(late.coarse.buckets.len(), 5);
    let peak = late
        .coarse
        .buckets
        .iter()
        .flatten()
        .map(|b| b.max)
        .fold(0.0, f32::max);
    assert_eq!(peak, 1_000_000.0);
    // The first bucket lacks t0 (no rate on the first tick): 59 samples.
    assert_eq!(late.coarse.buckets[0].unwrap().count, 59);
    // Every series of the machine is in the backfill.
    let snap = h.snapshot(0);
    let names: Vec<&str> = snap.series.iter().map(|s| s.name.as_str()).collect();
    for want in ["mem.used_bytes", "disk.sda.read_bps", "nic.eth0.tx_bps"] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
}

fn unpack(tarball: &str, into: &Path) {
    let src = common::fixtures_dir().join(tarball);
    let ok = std::process::Command::new("tar")
        .arg("xzf")
        .arg(&src)
        .arg("-C")
        .arg(into)
        .status()
        .unwrap()
        .success();
    assert!(ok, "unpacking {}", src.display());
}

#[test]
fn procfs_fixture_samples_without_error() {
    let dir = tempfile::tempdir().unwrap();
    unpack("procfs-proc.tar.gz", dir.path());
    unpack("procfs-sys.tar.gz", dir.path());
    let root = SysRoot::at(dir.path()).unwrap();
    let anchor = ClockAnchor {
        mono: Duration::ZERO,
        unix_ms: T0_MS,
    };
    let mut s = Sampler::new(root, &config(true), anchor);
    s.handle_timeout(secs(0)).unwrap();
    let b = s.handle_timeout(secs(1)).unwrap();
    // Same counters twice: rates are zero, not missing.
    assert_eq!(get(&b, "cpu.busy_pct"), None, "no ticks elapsed, no share");
    assert_eq!(get(&b, "disk.sda.read_bps"), Some(0.0));
    assert!(get(&b, "mem.available_bytes").is_some());
    assert!(!b.values.iter().any(|(n, _)| n.starts_with("disk.ram")));
}

#[test]
fn node_exporter_fixture_gives_sensor_and_rapl_series() {
    let dir = tempfile::tempdir().unwrap();
    unpack("node-exporter-sys.tar.gz", dir.path());
    let root = SysRoot::at(dir.path()).unwrap();
    let anchor = ClockAnchor {
        mono: Duration::ZERO,
        unix_ms: T0_MS,
    };
    let mut s = Sampler::new(root.clone(), &config(false), anchor);
    let first = s.handle_timeout(secs(0)).unwrap();

    // Every sensor with a reading is a series, energy sensors excepted.
    let mut gaps = nodus_agent::hal::Gaps::default();
    let sensors = nodus_agent::sensors::collect(&root, &mut gaps);
    let expected = sensors
        .iter()
        .filter(|x| x.value.is_some() && x.kind != nodus_agent::sensors::SensorKind::Energy)
        .count();
    let got = first
        .values
        .iter()
        .filter(|(n, _)| n.starts_with("sensor."))
        .count();
    assert!(expected > 10, "the fixture has many sensors");
    assert_eq!(got, expected);
    let t = &sensors[0];
    let name = format!("sensor.{}.{}", t.chip_id, t.sensor);
    assert_eq!(get(&first, &name), t.value);

    // RAPL: 10 J more two seconds later is 5 W.
    let rel = "sys/class/powercap/intel-rapl:0/energy_uj";
    let uj: u64 = root.read_parse(rel).unwrap();
    fs::write(dir.path().join(rel), format!("{}\n", uj + 10_000_000)).unwrap();
    let b = s.handle_timeout(secs(2)).unwrap();
    assert_eq!(get(&b, "power.rapl.package-0.watts"), Some(5.0));
}
