//! [`Sampler`]: reads the counters when due and turns them into a [`Batch`].
//!
//! It is time-driven by its caller, quinn-proto style: ask [`Sampler::poll_timeout`]
//! when the next sample is due, call [`Sampler::handle_timeout`] with the current
//! monotonic time. Nothing in here reads a clock or sleeps, so tests drive it with
//! a virtual clock and rewrite fixture counter files between ticks.

use std::time::Duration;

use super::{
    config::TelemetryConfig,
    counters::{self, ReadOptions},
    history::Batch,
    rates::RateCore,
};
use crate::{
    hal::{Gaps, SysRoot},
    sensors::i2c::I2cSource,
};

/// Maps the caller's monotonic clock to wall-clock time, once, at start. History
/// times derive from the monotonic clock through it, so an NTP step neither
/// reorders samples nor leaves a hole in the graphs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockAnchor {
    /// A monotonic reading.
    pub mono: Duration,
    /// The wall-clock time at that reading, Unix milliseconds.
    pub unix_ms: u64,
}

impl ClockAnchor {
    /// Unix seconds at monotonic time `now`.
    pub fn unix_s(&self, now: Duration) -> u64 {
        let since = now.saturating_sub(self.mono).as_millis();
        let ms = u128::from(self.unix_ms) + since;
        u64::try_from(ms / 1000).unwrap_or(u64::MAX)
    }
}

/// Samples the machine at a fixed interval.
#[derive(Debug)]
pub struct Sampler {
    root: SysRoot,
    read: ReadOptions,
    i2c: Option<I2cSource>,
    interval: Duration,
    anchor: ClockAnchor,
    core: RateCore,
    next_due: Duration,
    gaps: Gaps,
}

impl Sampler {
    /// A sampler over `root`; the first sample is due at `anchor.mono`. On the
    /// live host it also samples the board's I2C chips, as the inventory does.
    pub fn new(root: SysRoot, config: &TelemetryConfig, anchor: ClockAnchor) -> Self {
        Self {
            i2c: root.is_host().then(I2cSource::host),
            root,
            read: config.read,
            interval: config.interval,
            anchor,
            core: RateCore::new(),
            next_due: anchor.mono,
            gaps: Gaps::default(),
        }
    }

    /// Samples the I2C chips of `source` too (tests use a fake reader; a fixture
    /// tree has no board file of its own).
    #[must_use]
    pub fn with_i2c(mut self, source: I2cSource) -> Self {
        self.i2c = Some(source);
        self
    }

    /// The interval between samples.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// The monotonic time at which the next sample is due.
    pub fn poll_timeout(&self) -> Duration {
        self.next_due
    }

    /// Takes a sample if one is due at `now`. A caller that was late (a stalled
    /// runtime) gets one sample, not a burst: the schedule skips the missed ticks.
    pub fn handle_timeout(&mut self, now: Duration) -> Option<Batch> {
        if now < self.next_due {
            return None;
        }
        self.next_due += self.interval;
        if self.next_due <= now {
            // Keep the phase: the next due time is the next multiple after now.
            let behind = (now - self.next_due).as_nanos() / self.interval.as_nanos().max(1);
            let skip = u32::try_from(behind + 1).unwrap_or(u32::MAX);
            self.next_due += self.interval.saturating_mul(skip);
        }
        Some(self.sample(now))
    }

    /// Takes a sample now, whatever the schedule.
    pub fn sample(&mut self, now: Duration) -> Batch {
        let mut gaps = Gaps::default();
        let counters = counters::read(&self.root, self.read, self.i2c.as_ref(), &mut gaps);
        self.gaps = gaps;
        Batch {
            unix_s: self.anchor.unix_s(now),
            values: self.core.feed(&counters, now),
        }
    }

    /// What the last sample could not read.
    pub fn last_gaps(&self) -> &Gaps {
        &self.gaps
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn i2c_chips_become_sensor_and_power_series() {
        let dir = tempfile::tempdir().unwrap();
        let root = SysRoot::at(dir.path()).unwrap();
        let source = crate::sensors::i2c::fake_source(
            dir.path(),
            r#"{"chips": [
                {"bus": 1, "address": 72, "model": "lm75", "transfer": "smbus"},
                {"bus": 1, "address": 64, "model": "ina219", "transfer": "smbus",
                 "shunt_ohms": 0.1, "label": "rail"}
            ]}"#,
        );
        let anchor = ClockAnchor {
            mono: Duration::ZERO,
            unix_ms: 0,
        };
        let mut s = Sampler::new(root, &TelemetryConfig::default(), anchor).with_i2c(source);
        let batch = s.sample(Duration::ZERO);
        let value = |name: &str| {
            batch
                .values
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| (v * 1e3).round() / 1e3)
        };
        assert_eq!(value("sensor.i2c-1/0x48.temp1"), Some(26.5), "{batch:?}");
        assert_eq!(value("sensor.i2c-1/0x40.in1"), Some(11.98), "{batch:?}");
        assert_eq!(value("power.i2c.rail.watts"), Some(4.792), "{batch:?}");
        // The INA219's power1 is a sensor series, never a second hwmon meter.
        assert!(
            !batch
                .values
                .iter()
                .any(|(n, _)| n.starts_with("power.hwmon")),
            "{batch:?}"
        );
    }

    #[test]
    fn anchor_maps_monotonic_to_unix_seconds() {
        let a = ClockAnchor {
            mono: Duration::from_secs(100),
            unix_ms: 1_700_000_000_500,
        };
        assert_eq!(a.unix_s(Duration::from_secs(100)), 1_700_000_000);
        assert_eq!(a.unix_s(Duration::from_millis(100_600)), 1_700_000_001);
        assert_eq!(a.unix_s(Duration::from_secs(1)), 1_700_000_000);
    }

    #[test]
    fn schedule_skips_missed_ticks_without_a_burst() {
        let dir = tempfile::tempdir().unwrap();
        let root = SysRoot::at(dir.path()).unwrap();
        let anchor = ClockAnchor {
            mono: Duration::from_secs(10),
            unix_ms: 0,
        };
        let mut s = Sampler::new(root, &TelemetryConfig::default(), anchor);
        assert!(s.handle_timeout(Duration::from_secs(9)).is_none());
        assert!(s.handle_timeout(Duration::from_secs(10)).is_some());
        assert_eq!(s.poll_timeout(), Duration::from_secs(11));
        assert!(s.handle_timeout(Duration::from_millis(10_500)).is_none());
        // Stalled for 5.5 s: one sample, then back on the whole-second phase.
        assert!(s.handle_timeout(Duration::from_millis(16_500)).is_some());
        assert_eq!(s.poll_timeout(), Duration::from_secs(17));
        assert!(s.handle_timeout(Duration::from_millis(16_900)).is_none());
        // An empty root reads nothing, and says so.
        assert!(!s.last_gaps().0.is_empty() || s.sample(Duration::from_secs(20)).values.is_empty());
    }
}
