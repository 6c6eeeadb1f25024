//! The sans-IO rate core: fed `(counters, now)`, it returns the values to record.
//!
//! It keeps the previous reading of every cumulative counter. A rate needs two
//! readings of the same device; when a counter goes backwards (the device was
//! replaced, the driver reset it, a 32-bit counter wrapped) or the device vanished
//! in between, that tick gives *no* value for it rather than a huge or negative one.
//! The previous readings of devices missing from a tick are forgotten, so a device
//! that comes back starts afresh.

use std::{collections::HashMap, time::Duration};

use super::counters::{Counters, CpuTimes};

/// Previous readings, keyed by series name.
#[derive(Debug, Default)]
pub struct RateCore {
    /// `(counter, when)` for byte counters; `when` is the monotonic time.
    bytes: HashMap<String, (u64, Duration)>,
    /// Energy counters, J.
    energy: HashMap<String, (f64, Duration)>,
    /// CPU times; busy share is a ratio of ticks, so no clock is needed.
    cpu: HashMap<String, CpuTimes>,
}

fn byte_rate(
    prev: &HashMap<String, (u64, Duration)>,
    next: &mut HashMap<String, (u64, Duration)>,
    key: String,
    counter: u64,
    now: Duration,
) -> Option<(String, f64)> {
    let out = match prev.get(&key) {
        Some(&(c0, t0)) if counter >= c0 && now > t0 => Some((
            key.clone(),
            (counter - c0) as f64 / (now - t0).as_secs_f64(),
        )),
        _ => None,
    };
    next.insert(key, (counter, now));
    out
}

fn busy_pct(
    prev: &HashMap<String, CpuTimes>,
    next: &mut HashMap<String, CpuTimes>,
    key: String,
    t: CpuTimes,
) -> Option<(String, f64)> {
    let out = match prev.get(&key) {
        Some(p)
            if t.total > p.total && t.busy >= p.busy && t.total - p.total >= t.busy - p.busy =>
        {
            Some((
                key.clone(),
                100.0 * (t.busy - p.busy) as f64 / (t.total - p.total) as f64,
            ))
        }
        _ => None,
    };
    next.insert(key, t);
    out
}

/// Joules between two readings of a counter that wraps at `max` (RAPL wraps every
/// few tens of minutes at full load). Backwards without a known range, or from
/// beyond the range, is a reset: no delta. Computed in µJ by the RAPL reader's own
/// rule so the two never disagree.
fn energy_delta(before: f64, after: f64, max: Option<f64>) -> Option<f64> {
    let uj = |j: f64| (j * 1e6).round() as u64;
    let max = max.map_or(0, uj);
    crate::power::rapl::energy_delta_uj(uj(before), uj(after), max).map(|d| d as f64 / 1e6)
}

impl RateCore {
    /// An empty core; the first tick gives gauges only.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds one reading taken at monotonic time `now` and returns
    /// `(series name, value)` for everything that has a value this tick.
    pub fn feed(&mut self, c: &Counters, now: Duration) -> Vec<(String, f64)> {
        let mut out = Vec::with_capacity(
            4 + c.per_cpu.len()
                + 2 * (c.disks.len() + c.nics.len())
                + c.gauges.len()
                + c.energy.len(),
        );

        let mut cpu = HashMap::with_capacity(self.cpu.len());
        if let Some(t) = c.cpu {
            out.extend(busy_pct(&self.cpu, &mut cpu, "cpu.busy_pct".to_owned(), t));
        }
        for (n, t) in &c.per_cpu {
            out.extend(busy_pct(
                &self.cpu,
                &mut cpu,
                format!("cpu.{n}.busy_pct"),
                *t,
            ));
        }
        self.cpu = cpu;

        if let Some((total, avail)) = c.mem {
            out.push((
                "mem.used_bytes".to_owned(),
                total.saturating_sub(avail) as f64,
            ));
            out.push(("mem.available_bytes".to_owned(), avail as f64));
        }

        // Rebuilding the map each tick is what forgets vanished devices.
        let mut bytes = HashMap::with_capacity(self.bytes.len());
        for (class, (rd, wr), list) in [
            ("disk", ("read_bps", "write_bps"), &c.disks),
            ("nic", ("rx_bps", "tx_bps"), &c.nics),
        ] {
            for d in list {
                let r = format!("{class}.{}.{rd}", d.name);
                out.extend(byte_rate(&self.bytes, &mut bytes, r, d.read, now));
                let w = format!("{class}.{}.{wr}", d.name);
                out.extend(byte_rate(&self.bytes, &mut bytes, w, d.write, now));
            }
        }
        self.bytes = bytes;

        out.extend(c.gauges.iter().cloned());

        let mut energy = HashMap::with_capacity(self.energy.len());
        for e in &c.energy {
            if let Some(&(j0, t0)) = self.energy.get(&e.series)
                && now > t0
                && let Some(dj) = energy_delta(j0, e.joules, e.max_joules)
            {
                out.push((e.series.clone(), dj / (now - t0).as_secs_f64()));
            }
            energy.insert(e.series.clone(), (e.joules, now));
        }
        self.energy = energy;

        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::counters::{ByteCounters, EnergyCounter};

    fn s(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    fn nic(name: &str, rx: u64, tx: u64) -> ByteCounters {
        ByteCounters {
            name: name.into(),
            read: rx,
            write: tx,
        }
    }

    fn get(out: &[(String, f64)], name: &str) -> Option<f64> {
        out.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
    }

    #[test]
    fn first_tick_has_no_rates_second_has() {
        let mut core = RateCore::new();
        let mut c = Counters {
            nics: vec![nic("eth0", 1000, 0)],
            ..Counters::default()
        };
        assert_eq!(get(&core.feed(&c, s(10)), "nic.eth0.rx_bps"), None);
        c.nics = vec![nic("eth0", 3000, 500)];
        let out = core.feed(&c, s(12));
        assert_eq!(get(&out, "nic.eth0.rx_bps"), Some(1000.0));
        assert_eq!(get(&out, "nic.eth0.tx_bps"), Some(250.0));
    }

    #[test]
    fn counter_going_backwards_gives_no_rate_then_recovers() {
        let mut core = RateCore::new();
        let mut c = Counters {
            disks: vec![nic("sda", u64::from(u32::MAX) - 10, 0)],
            ..Counters::default()
        };
        core.feed(&c, s(1));
        c.disks = vec![nic("sda", 5, 0)]; // a 32-bit wrap or a reset
        assert_eq!(get(&core.feed(&c, s(2)), "disk.sda.read_bps"), None);
        c.disks = vec![nic("sda", 1029, 0)];
        assert_eq!(get(&core.feed(&c, s(3)), "disk.sda.read_bps"), Some(1024.0));
    }

    #[test]
    fn a_device_that_vanishes_and_returns_starts_afresh() {
        let mut core = RateCore::new();
        let with = Counters {
            nics: vec![nic("veth1", 100, 100)],
            ..Counters::default()
        };
        core.feed(&with, s(1));
        core.feed(&Counters::default(), s(2));
        // Back with a new, larger counter: without forgetting, this would be a
        // rate over the gap from a different device.
        let back = Counters {
            nics: vec![nic("veth1", 10_000_000, 0)],
            ..Counters::default()
        };
        assert_eq!(get(&core.feed(&back, s(3)), "nic.veth1.rx_bps"), None);
    }

    #[test]
    fn clock_not_advancing_gives_no_rate() {
        let mut core = RateCore::new();
        let c = Counters {
            nics: vec![nic("eth0", 1, 1)],
            ..Counters::default()
        };
        core.feed(&c, s(5));
        assert_eq!(get(&core.feed(&c, s(5)), "nic.eth0.rx_bps"), None);
    }

    #[test]
    fn cpu_busy_share_from_tick_deltas() {
        let mut core = RateCore::new();
        let mut c = Counters {
            cpu: Some(CpuTimes {
                busy: 100,
                total: 1000,
            }),
            per_cpu: vec![(
                3,
                CpuTimes {
                    busy: 50,
                    total: 500,
                },
            )],
            ..Counters::default()
        };
        core.feed(&c, s(1));
        c.cpu = Some(CpuTimes {
            busy: 150,
            total: 1200,
        });
        c.per_cpu = vec![(
            3,
            CpuTimes {
                busy: 50,
                total: 400,
            },
        )]; // hot-unplugged and back
        let out = core.feed(&c, s(2));
        assert_eq!(get(&out, "cpu.busy_pct"), Some(25.0));
        assert_eq!(get(&out, "cpu.3.busy_pct"), None);
    }

    #[test]
    fn memory_and_gauges_pass_through() {
        let mut core = RateCore::new();
        let c = Counters {
            mem: Some((8000, 3000)),
            gauges: vec![("sensor.x.temp1".into(), 41.5)],
            ..Counters::default()
        };
        let out = core.feed(&c, s(1));
        assert_eq!(get(&out, "mem.used_bytes"), Some(5000.0));
        assert_eq!(get(&out, "mem.available_bytes"), Some(3000.0));
        assert_eq!(get(&out, "sensor.x.temp1"), Some(41.5));
    }

    #[test]
    fn energy_counters_become_watts_across_rapl_wraps() {
        let mut core = RateCore::new();
        let e = |j: f64, max: Option<f64>| Counters {
            energy: vec![EnergyCounter {
                series: "power.rapl.package-0.watts".into(),
                joules: j,
                max_joules: max,
            }],
            ..Counters::default()
        };
        let w = "power.rapl.package-0.watts";
        core.feed(&e(100.0, None), s(1));
        assert_eq!(get(&core.feed(&e(130.0, None), s(3)), w), Some(15.0));
        // Backwards with no known range: a reset, no value.
        assert_eq!(get(&core.feed(&e(2.0, None), s(4)), w), None);
        // With RAPL's range, a wrap is measured across: 262143 J max.
        core.feed(&e(262_140.0, Some(262_143.0)), s(5));
        assert_eq!(
            get(&core.feed(&e(7.0, Some(262_143.0)), s(7)), w),
            Some(5.0)
        );
        // Backwards from beyond the range is a reset even with one.
        core.feed(&e(300_000.0, Some(262_143.0)), s(8));
        assert_eq!(get(&core.feed(&e(1.0, Some(262_143.0)), s(9)), w), None);
    }
}
