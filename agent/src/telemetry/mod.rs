//! Telemetry: a [`Sampler`] that reads the machine at a fixed interval, and a bounded
//! in-memory [`History`] that a console connecting late backfills its graphs from.
//!
//! It deliberately does not export metrics (no Prometheus endpoint) nor persist
//! anything: the history lives in the agent's memory and reaches consoles over the
//! console protocol (issue 4) as [`HistorySnapshot`] / [`SeriesHistory`].
//!
//! The pieces, each usable alone:
//! - [`counters`] reads `/proc/stat`, `/proc/meminfo`, `/proc/diskstats`,
//!   `/sys/class/net/*/statistics`, sensors and power meters through a
//!   [`SysRoot`](crate::hal::SysRoot) into plain [`Counters`];
//! - [`RateCore`] (sans-IO) turns successive counters into rates;
//! - [`Sampler`] schedules reads on a caller-driven clock and yields [`Batch`]es;
//! - [`History`] keeps them: 1 h at full resolution, 24 h of min/max/mean buckets;
//! - [`task::spawn`] is the thin tokio layer that drives it all in the daemon.
//!
//! ```
//! use std::time::Duration;
//! use nodus_agent::{hal::SysRoot, telemetry::{ClockAnchor, History, Sampler, TelemetryConfig}};
//!
//! let config = TelemetryConfig::default();
//! let anchor = ClockAnchor { mono: Duration::ZERO, unix_ms: 1_700_000_000_000 };
//! let mut sampler = Sampler::new(SysRoot::host(), &config, anchor);
//! let mut history = History::new(config.history);
//! for tick in 0..3 {
//!     let now = Duration::from_secs(tick);
//!     if let Some(batch) = sampler.handle_timeout(now) {
//!         history.record_batch(&batch);
//!     }
//! }
//! let _graphs = history.snapshot(0);
//! ```
//!
//! # Series names
//!
//! `<class>.<device>.<metric>`, or `<class>.<metric>` for machine-wide values. The
//! class and the metric never contain a dot; the device may (`nic.eth0.100.rx_bps`
//! is VLAN `eth0.100`), so split at the first and the last dot.
//!
//! | series | unit | from |
//! |---|---|---|
//! | `cpu.busy_pct` | % of all CPUs | `/proc/stat` deltas (busy = all but idle and iowait) |
//! | `cpu.<n>.busy_pct` | % of CPU n | same, when `per_cpu` is on |
//! | `mem.used_bytes` | bytes | MemTotal − MemAvailable |
//! | `mem.available_bytes` | bytes | MemAvailable |
//! | `disk.<name>.read_bps`, `.write_bps` | bytes/s | `/proc/diskstats` sector deltas, whole disks from `/sys/block` (not loop/ram) |
//! | `nic.<name>.rx_bps`, `.tx_bps` | bytes/s | `/sys/class/net/<name>/statistics/{rx,tx}_bytes` deltas |
//! | `sensor.<chip_id>.<sensor>` | SI unit of the sensor's kind (see [`unit()`]) | [`crate::sensors::collect`] and the board's I2C chips ([`crate::sensors::i2c`]); energy sensors excluded (they are power meters) |
//! | `power.<source>.<name>.watts` | W | the inventory's meters ([`crate::power`]: RAPL, hwmon, power_supply, I2C INA2xx; not IPMI DCMI, which runs `ipmitool`): `watts`, or the rate of `energy_joules` across RAPL wraps |
//! | `disk.<name>.smart_<counter>` | count | [`smart::batch`] from the inventory's SMART poll: `reallocated_sectors`, `pending_sectors`, `offline_uncorrectable`, `grown_defects`, `media_errors`; health's trend rules watch them |

pub mod config;
pub mod counters;
pub mod history;
pub mod rates;
pub mod sampler;
pub mod smart;
pub mod task;

use std::time::Duration;

pub use config::{ConfigError, TelemetryConfig, TelemetryConfigRaw};
pub use counters::Counters;
pub use history::{
    Batch, Bucket, CoarseRun, FineRun, History, HistoryShape, HistorySnapshot, SeriesHistory,
};
pub use rates::RateCore;
pub use sampler::{ClockAnchor, Sampler};

/// Default sampling interval. One second is the resolution operators expect from
/// `top`-like graphs. A sample costs about 0.2–0.3 ms of CPU on a host without
/// hwmon chips and grows with the sensor count (each hwmon sensor is read in full,
/// about ten files); see `agent/benches/telemetry_sample.rs`. At 1 s that is
/// well under 1 % of one core.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);

/// The unit of a series, from its name (see the table in the [module docs](self)),
/// for axis labels. `None` for names outside the scheme.
pub fn unit(series: &str) -> Option<&'static str> {
    let (class, rest) = series.split_once('.')?;
    let metric = rest.rsplit('.').next()?;
    Some(match class {
        "cpu" => "%",
        "mem" => "B",
        "disk" | "nic" if metric.ends_with("_bps") => "B/s",
        "disk" if metric.starts_with("smart_") => "count",
        "power" => "W",
        "sensor" => {
            // hwmon stems: temp1, fan2, in0, curr1, power1, humidity1, intrusion0.
            let stem = metric.trim_end_matches(|c: char| c.is_ascii_digit());
            match stem {
                "temp" => "°C",
                "fan" => "RPM",
                "in" => "V",
                "curr" => "A",
                "power" => "W",
                "energy" => "J",
                "humidity" => "%",
                "intrusion" => "",
                _ => return None,
            }
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::unit;

    #[test]
    fn units_follow_the_naming_scheme() {
        assert_eq!(unit("cpu.busy_pct"), Some("%"));
        assert_eq!(unit("nic.eth0.100.rx_bps"), Some("B/s"));
        assert_eq!(unit("sensor.platform-coretemp.0.temp2"), Some("°C"));
        assert_eq!(unit("sensor.x.in3"), Some("V"));
        assert_eq!(unit("power.rapl.package-0.watts"), Some("W"));
        assert_eq!(unit("disk.sda.smart_reallocated_sectors"), Some("count"));
        assert_eq!(unit("bogus"), None);
    }
}
