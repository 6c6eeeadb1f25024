//! Raw counters: one read of the kernel's cumulative counters and gauges through a
//! [`SysRoot`], turned into plain data for the [rate core](super::rates).
//!
//! The parsers are pure functions over file text so they can be tested on strings;
//! [`read`] is the only part that touches files.

use crate::hal::{Gaps, SysRoot};

/// Cumulative CPU time of one CPU (or all), in clock ticks (USER_HZ).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuTimes {
    /// Ticks spent doing anything but idle and iowait.
    pub busy: u64,
    /// All ticks. `guest` and `guest_nice` are left out: the kernel already counts
    /// them in `user` and `nice` (proc(5)).
    pub total: u64,
}

/// Cumulative byte counters of one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ByteCounters {
    /// Device name (`sda`, `eth0`).
    pub name: String,
    /// Bytes read / received.
    pub read: u64,
    /// Bytes written / sent.
    pub write: u64,
}

/// A cumulative energy counter, J.
#[derive(Debug, Clone, PartialEq)]
pub struct EnergyCounter {
    /// The series name its power goes to (`power.rapl.package-0.watts`).
    pub series: String,
    /// Joules since some start.
    pub joules: f64,
    /// Where the counter wraps to 0 (RAPL `max_energy_range_uj`), when known.
    pub max_joules: Option<f64>,
}

/// Everything one sampler tick reads.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counters {
    /// All CPUs together (`cpu` line of `/proc/stat`).
    pub cpu: Option<CpuTimes>,
    /// Per CPU, by number; empty unless per-CPU sampling is on.
    pub per_cpu: Vec<(u32, CpuTimes)>,
    /// `(MemTotal, MemAvailable)`, bytes.
    pub mem: Option<(u64, u64)>,
    /// Per disk, from `/proc/diskstats`.
    pub disks: Vec<ByteCounters>,
    /// Per NIC, from `/sys/class/net/*/statistics`.
    pub nics: Vec<ByteCounters>,
    /// Instantaneous values recorded as they are: `(series name, value)`.
    pub gauges: Vec<(String, f64)>,
    /// Energy counters whose rate becomes a power series.
    pub energy: Vec<EnergyCounter>,
}

/// What to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadOptions {
    /// Read per-CPU times as well as the total.
    pub per_cpu: bool,
    /// Read hwmon sensors (through [`crate::sensors::collect`]).
    pub sensors: bool,
    /// Read power meters (through [`crate::power::collect`]).
    pub power: bool,
}

impl Default for ReadOptions {
    fn default() -> Self {
        Self {
            per_cpu: false,
            sensors: true,
            power: true,
        }
    }
}

fn cpu_times(fields: &[&str]) -> Option<CpuTimes> {
    // user nice system idle iowait irq softirq steal [guest guest_nice]; older
    // kernels have fewer columns, so take what is there.
    let n: Vec<u64> = fields
        .iter()
        .take(8)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    if n.len() < 4 {
        return None;
    }
    let total: u64 = n.iter().sum();
    let idle = n[3] + n.get(4).copied().unwrap_or(0);
    Some(CpuTimes {
        busy: total - idle,
        total,
    })
}

/// Parses `/proc/stat`: the total and, when `per_cpu`, each `cpuN` line.
pub fn parse_stat(text: &str, per_cpu: bool) -> (Option<CpuTimes>, Vec<(u32, CpuTimes)>) {
    let mut total = None;
    let mut each = Vec::new();
    for line in text.lines() {
        let mut it = line.split_ascii_whitespace();
        let Some(key) = it.next() else { continue };
        let Some(rest) = key.strip_prefix("cpu") else {
            // The cpu lines come first; stop at the first other line.
            break;
        };
        let fields: Vec<&str> = it.collect();
        if rest.is_empty() {
            total = cpu_times(&fields);
            if !per_cpu {
                break;
            }
        } else if let (Ok(n), Some(t)) = (rest.parse(), cpu_times(&fields)) {
            each.push((n, t));
        }
    }
    (total, each)
}

/// Parses `/proc/meminfo` into `(MemTotal, MemAvailable)` bytes. Kernels before
/// 3.14 lack MemAvailable; then free + buffers + cached is the old approximation.
pub fn parse_meminfo(text: &str) -> Option<(u64, u64)> {
    let (mut total, mut avail, mut free, mut buffers, mut cached) = (None, None, None, None, None);
    for line in text.lines() {
        let mut it = line.split_ascii_whitespace();
        let (Some(key), Some(val)) = (it.next(), it.next()) else {
            continue;
        };
        let Ok(kib) = val.parse::<u64>() else {
            continue;
        };
        let slot = match key {
            "MemTotal:" => &mut total,
            "MemAvailable:" => &mut avail,
            "MemFree:" => &mut free,
            "Buffers:" => &mut buffers,
            "Cached:" => &mut cached,
            _ => continue,
        };
        *slot = Some(kib * 1024);
    }
    let avail = avail.or_else(|| Some(free? + buffers.unwrap_or(0) + cached.unwrap_or(0)))?;
    Some((total?, avail))
}

/// Parses `/proc/diskstats` into bytes read/written. `keep` decides which device
/// names are disks (the caller passes the `/sys/block` listing, which has whole
/// disks only). Sectors here are always 512 bytes, whatever the device's sector size
/// (Documentation/admin-guide/iostats.rst).
pub fn parse_diskstats(text: &str, keep: impl Fn(&str) -> bool) -> Vec<ByteCounters> {
    let mut out = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_ascii_whitespace().collect();
        // major minor name reads merged sectors_read ms writes merged sectors_written …
        if f.len() < 10 || !keep(f[2]) {
            continue;
        }
        if let (Ok(r), Ok(w)) = (f[5].parse::<u64>(), f[9].parse::<u64>()) {
            out.push(ByteCounters {
                name: f[2].to_owned(),
                read: r.saturating_mul(512),
                write: w.saturating_mul(512),
            });
        }
    }
    out
}

/// True for block devices whose throughput is noise: RAM disks and idle loop
/// devices are listed in `/sys/block` on every host (snap alone adds a dozen).
fn is_pseudo_disk(name: &str) -> bool {
    name.starts_with("loop") || name.starts_with("ram")
}

/// The series-name segment for a power source (`rapl`, `power_supply`, …): the
/// same snake_case name as in the inventory JSON.
fn source_name(source: crate::power::PowerSource) -> String {
    match serde_json::to_value(source) {
        Ok(serde_json::Value::String(s)) => s,
        _ => "unknown".to_owned(),
    }
}

/// Reads every counter under `root`, plus the configured I2C chips when `i2c` is
/// given (the live host's board file; see [`crate::sensors::i2c`]). What cannot be
/// read is left out and noted in `gaps`; a tick never fails as a whole.
pub fn read(
    root: &SysRoot,
    opts: ReadOptions,
    i2c: Option<&crate::sensors::i2c::I2cSource>,
    gaps: &mut Gaps,
) -> Counters {
    let mut c = Counters::default();

    if let Some(text) = gaps.note("proc/stat", root.read_raw("proc/stat")) {
        (c.cpu, c.per_cpu) = parse_stat(&text, opts.per_cpu);
    }
    if let Some(text) = gaps.note("proc/meminfo", root.read_raw("proc/meminfo")) {
        c.mem = parse_meminfo(&text);
    }
    if let Some(text) = gaps.note("proc/diskstats", root.read_raw("proc/diskstats")) {
        // Without a /sys/block listing (a procfs-only tree) every device counts,
        // partitions included: better too much than nothing.
        let disks = root.list("sys/block").ok();
        c.disks = parse_diskstats(&text, |n| {
            !is_pseudo_disk(n) && disks.as_ref().is_none_or(|d| d.iter().any(|x| x == n))
        });
    }
    if let Some(names) = gaps.note("sys/class/net", root.list("sys/class/net")) {
        for name in names {
            let base = format!("sys/class/net/{name}/statistics");
            // Not every entry is an interface: the bonding driver puts a
            // `bonding_masters` file here.
            if !root.exists(&base) {
                continue;
            }
            let rx = root.read_parse::<u64>(&format!("{base}/rx_bytes"));
            let tx = root.read_parse::<u64>(&format!("{base}/tx_bytes"));
            match (rx, tx) {
                (Ok(read), Ok(write)) => c.nics.push(ByteCounters { name, read, write }),
                // A NIC that vanished between the listing and the read (veth of a
                // stopped workload) is not worth a gap.
                (Err(e), _) | (_, Err(e)) if e.is_not_found() => {}
                (Err(e), _) | (_, Err(e)) => gaps.push(format!("nic {name} statistics"), e),
            }
        }
    }
    // hwmon is read once and serves both sensors and hwmon power meters
    // ([`crate::power::collect`] would read every chip a second time).
    let sensors = if opts.sensors || opts.power {
        crate::sensors::collect(root, gaps)
    } else {
        Vec::new()
    };
    // The board's I2C chips are read once too: their temperatures, voltages and
    // currents are sensor series, each INA2xx is also an `i2c` power meter. Kept
    // apart from `sensors` so an INA2xx's `power1` is not a second hwmon meter.
    let i2c = match i2c {
        Some(src) if opts.sensors || opts.power => src.collect(gaps),
        _ => crate::sensors::i2c::I2cReadings::default(),
    };
    if opts.sensors {
        for s in sensors.iter().chain(&i2c.sensors) {
            // Energy sensors are cumulative; they become watts as power meters.
            if s.kind == crate::sensors::SensorKind::Energy {
                continue;
            }
            if let Some(v) = s.value {
                c.gauges
                    .push((format!("sensor.{}.{}", s.chip_id, s.sensor), v));
            }
        }
    }
    if opts.power {
        // The same meters as the inventory's, less IPMI DCMI: that runs ipmitool
        // and waits on the BMC, far too slow for a 1 s tick.
        let mut meters = crate::power::rapl::collect(root, gaps);
        meters.extend(crate::power::from_sensors(&sensors));
        meters.extend(i2c.meters);
        meters.extend(crate::power::power_supply::collect(root, gaps));
        for m in meters {
            let series = format!("power.{}.{}.watts", source_name(m.source), m.name);
            match (m.watts, m.energy_joules) {
                (Some(w), _) => c.gauges.push((series, w)),
                (None, Some(joules)) => c.energy.push(EnergyCounter {
                    series,
                    joules,
                    max_joules: m.energy_max_joules,
                }),
                (None, None) => {}
            }
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_total_and_per_cpu() {
        let text = "cpu  10 0 10 70 10 0 0 0 5 0\ncpu0 5 0 5 35 5 0 0 0 0 0\ncpu1 5 0 5 35 5 0 0 0 0 0\nintr 1 2\n";
        let (t, each) = parse_stat(text, true);
        assert_eq!(
            t,
            Some(CpuTimes {
                busy: 20,
                total: 100
            })
        );
        assert_eq!(each.len(), 2);
        assert_eq!(
            each[1],
            (
                1,
                CpuTimes {
                    busy: 10,
                    total: 50
                }
            )
        );
        assert!(parse_stat(text, false).1.is_empty());
    }

    #[test]
    fn stat_garbage_gives_nothing() {
        assert_eq!(parse_stat("cpu x y z\n", false), (None, vec![]));
        assert_eq!(parse_stat("", true), (None, vec![]));
    }

    #[test]
    fn meminfo_prefers_memavailable_and_falls_back() {
        let new = "MemTotal: 1000 kB\nMemFree: 100 kB\nMemAvailable: 600 kB\n";
        assert_eq!(parse_meminfo(new), Some((1_024_000, 614_400)));
        let old = "MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 50 kB\nCached: 250 kB\n";
        assert_eq!(parse_meminfo(old), Some((1_024_000, 409_600)));
        assert_eq!(parse_meminfo("nonsense"), None);
    }

    #[test]
    fn diskstats_counts_512_byte_sectors() {
        let text =
            "   8       0 sda 100 0 8 0 50 0 16 0 0 0 0\n   8       1 sda1 1 0 2 0 1 0 2 0 0 0 0\n";
        let d = parse_diskstats(text, |n| n == "sda");
        assert_eq!(
            d,
            vec![ByteCounters {
                name: "sda".into(),
                read: 4096,
                write: 8192
            }]
        );
    }
}
