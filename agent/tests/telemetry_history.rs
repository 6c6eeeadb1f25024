//! The history's memory budget, proven by filling it: a realistic series count,
//! a full hour at 1 s and a full day of minute buckets.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test helpers: a panic is a failed test.

use nodus_agent::telemetry::{
    History, HistoryShape,
    history::{BUDGET_BYTES_PER_SERIES, DEFAULT_COARSE_SPAN_S, DEFAULT_FINE_SPAN_S},
};

/// Series names like a real server's: CPU, memory, disks, NICs, sensors, power.
fn realistic_names(n: usize) -> Vec<String> {
    let mut v = vec![
        "cpu.busy_pct".to_owned(),
        "mem.used_bytes".to_owned(),
        "mem.available_bytes".to_owned(),
    ];
    let mut i = 0;
    while v.len() < n {
        v.push(match i % 5 {
            0 => format!("disk.nvme{}n1.read_bps", i / 5),
            1 => format!("nic.enp{}s0f1.rx_bps", i / 5),
            2 => format!("sensor.pci0000:00/0000:00:18.{}/temp{}", i / 5, i % 7),
            3 => format!("sensor.platform/nct6775.656/fan{}", i / 5),
            _ => format!("power.rapl.package-{}.watts", i / 5),
        });
        i += 1;
    }
    v
}

#[test]
fn a_full_day_of_200_series_stays_under_budget() {
    const SERIES: usize = 200;
    let names = realistic_names(SERIES);
    let mut h = History::new(HistoryShape::default());
    // A whole minute, so the 24 h are exactly 1440 buckets.
    let t0: u64 = 1_699_999_980;
    let day = u64::from(DEFAULT_COARSE_SPAN_S);
    let hour = u64::from(DEFAULT_FINE_SPAN_S);
    // 23 h at one sample per bucket (memory does not depend on how many samples
    // a bucket saw), then the last hour at full 1 s resolution.
    let mut t = t0;
    while t < t0 + day - hour {
        for (k, n) in names.iter().enumerate() {
            assert!(h.record(n, t, (k as f64) + (t % 97) as f64));
        }
        t += 60;
    }
    for t in (t0 + day - hour)..(t0 + day) {
        for (k, n) in names.iter().enumerate() {
            assert!(h.record(n, t, (k as f64) + (t % 97) as f64));
        }
    }
    assert_eq!(h.len(), SERIES);

    let used = h.accounted_bytes();
    let budget = SERIES * BUDGET_BYTES_PER_SERIES;
    eprintln!("200 series, 1 h fine + 24 h coarse: {used} B accounted, budget {budget} B");
    assert!(used <= budget, "{used} B over the {budget} B budget");
    assert!(used < 8 << 20, "{used} B is not under 8 MiB");

    // And it is all there: the full hour at 1 s, 23 h of buckets before it.
    let s = h.series_since(&names[42], 0).unwrap();
    assert_eq!(s.fine.values.len(), 3600);
    assert!(s.fine.values.iter().all(Option::is_some));
    assert_eq!(s.coarse.buckets.len(), 1380);
    assert_eq!(s.coarse.start_unix_s, t0);
    assert_eq!(s.fine.start_unix_s, t0 + day - hour);

    // Another day of silence evicts everything and gives the memory back.
    assert_eq!(h.evict_stale(t0 + 2 * day + 1), SERIES);
    assert!(h.is_empty());
}
