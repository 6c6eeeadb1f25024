//! Telemetry configuration, in two stages: [`TelemetryConfigRaw`] as written in the
//! agent's TOML (unknown fields refused), then [`TelemetryConfig`], checked, with
//! every default filled in.

use std::time::Duration;

use serde::Deserialize;

use super::{
    DEFAULT_INTERVAL,
    counters::ReadOptions,
    history::{
        DEFAULT_COARSE_SPAN_S, DEFAULT_COARSE_STEP_S, DEFAULT_FINE_SPAN_S, DEFAULT_MAX_SERIES,
        HistoryShape,
    },
};

/// Longest accepted sampling interval: beyond an hour the fine ring would hold a
/// single point and graphs would be empty for most of a day.
const MAX_INTERVAL_S: u32 = 3_600;
/// Largest accepted ring (slots), a week at 1 s: past that the memory budget stops
/// meaning anything.
const MAX_SLOTS: u32 = 7 * 86_400;
/// Most series one may ask for; at ≈ 35 KiB each this is already ≈ 140 MiB.
const MAX_MAX_SERIES: usize = 4_096;

/// The `[telemetry]` section as written. Every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfigRaw {
    /// Seconds between samples (default 1). Also the fine history's resolution.
    #[serde(default)]
    pub interval_s: Option<u32>,
    /// Also record each CPU's busy share (`cpu.<n>.busy_pct`), not just the total
    /// (default false: 2 series per core add up on big machines).
    #[serde(default)]
    pub per_cpu: Option<bool>,
    /// Record hwmon/I2C sensors (default true).
    #[serde(default)]
    pub sensors: Option<bool>,
    /// Record power meters (default true).
    #[serde(default)]
    pub power: Option<bool>,
    /// Seconds of full-resolution history (default 3600); a multiple of
    /// `interval_s` and of `coarse_step_s`.
    #[serde(default)]
    pub fine_span_s: Option<u32>,
    /// Seconds per downsampled bucket (default 60); a multiple of `interval_s`.
    #[serde(default)]
    pub coarse_step_s: Option<u32>,
    /// Seconds of downsampled history (default 86400); a multiple of
    /// `coarse_step_s`.
    #[serde(default)]
    pub coarse_span_s: Option<u32>,
    /// Most series kept (default 512); samples of further series are dropped.
    #[serde(default)]
    pub max_series: Option<usize>,
}

/// Why a telemetry config was refused. Each names the offending field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A value is out of its accepted range.
    #[error("telemetry.{field}: {value} is out of range ({range})")]
    OutOfRange {
        /// The field's name.
        field: &'static str,
        /// The value given.
        value: u64,
        /// The accepted range, in words.
        range: &'static str,
    },
    /// A span or step is not a whole multiple of the one it is built from.
    #[error("telemetry.{field}: {value} is not a multiple of {of} ({of_value})")]
    NotMultiple {
        /// The field's name.
        field: &'static str,
        /// Its value.
        value: u32,
        /// The field it must be a multiple of.
        of: &'static str,
        /// That field's value.
        of_value: u32,
    },
}

/// Checked telemetry settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelemetryConfig {
    /// Time between samples.
    pub interval: Duration,
    /// What each sample reads.
    pub read: ReadOptions,
    /// The history's rings.
    pub history: HistoryShape,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            interval: DEFAULT_INTERVAL,
            read: ReadOptions::default(),
            history: HistoryShape::default(),
        }
    }
}

fn range(
    field: &'static str,
    value: u32,
    lo: u32,
    hi: u32,
    words: &'static str,
) -> Result<u32, ConfigError> {
    if (lo..=hi).contains(&value) {
        Ok(value)
    } else {
        Err(ConfigError::OutOfRange {
            field,
            value: value.into(),
            range: words,
        })
    }
}

fn multiple(
    field: &'static str,
    value: u32,
    of: &'static str,
    of_value: u32,
) -> Result<(), ConfigError> {
    if value.is_multiple_of(of_value) {
        Ok(())
    } else {
        Err(ConfigError::NotMultiple {
            field,
            value,
            of,
            of_value,
        })
    }
}

impl TryFrom<TelemetryConfigRaw> for TelemetryConfig {
    type Error = ConfigError;

    fn try_from(raw: TelemetryConfigRaw) -> Result<Self, Self::Error> {
        let default_interval = DEFAULT_INTERVAL.as_secs() as u32;
        let interval = range(
            "interval_s",
            raw.interval_s.unwrap_or(default_interval),
            1,
            MAX_INTERVAL_S,
            "1..=3600",
        )?;
        let coarse_step = raw.coarse_step_s.unwrap_or(DEFAULT_COARSE_STEP_S);
        let coarse_step = range(
            "coarse_step_s",
            coarse_step,
            interval,
            MAX_INTERVAL_S * 24,
            "interval_s..=86400",
        )?;
        multiple("coarse_step_s", coarse_step, "interval_s", interval)?;
        let fine_span = raw
            .fine_span_s
            .unwrap_or(DEFAULT_FINE_SPAN_S.max(coarse_step));
        let fine_span = range(
            "fine_span_s",
            fine_span,
            coarse_step,
            u32::MAX,
            "at least coarse_step_s",
        )?;
        multiple("fine_span_s", fine_span, "interval_s", interval)?;
        multiple("fine_span_s", fine_span, "coarse_step_s", coarse_step)?;
        let coarse_span = raw
            .coarse_span_s
            .unwrap_or(DEFAULT_COARSE_SPAN_S.max(fine_span));
        let coarse_span = range(
            "coarse_span_s",
            coarse_span,
            fine_span,
            u32::MAX,
            "at least fine_span_s",
        )?;
        multiple("coarse_span_s", coarse_span, "coarse_step_s", coarse_step)?;
        let fine_slots = range(
            "fine_span_s",
            fine_span / interval,
            1,
            MAX_SLOTS,
            "at most a week of samples",
        )?;
        let coarse_slots = range(
            "coarse_span_s",
            coarse_span / coarse_step,
            1,
            MAX_SLOTS,
            "at most 604800 buckets",
        )?;
        let max_series = raw.max_series.unwrap_or(DEFAULT_MAX_SERIES);
        if !(1..=MAX_MAX_SERIES).contains(&max_series) {
            return Err(ConfigError::OutOfRange {
                field: "max_series",
                value: max_series as u64,
                range: "1..=4096",
            });
        }
        let defaults = ReadOptions::default();
        Ok(Self {
            interval: Duration::from_secs(interval.into()),
            read: ReadOptions {
                per_cpu: raw.per_cpu.unwrap_or(defaults.per_cpu),
                sensors: raw.sensors.unwrap_or(defaults.sensors),
                power: raw.power.unwrap_or(defaults.power),
            },
            history: HistoryShape {
                fine_step_s: interval,
                fine_slots,
                coarse_step_s: coarse_step,
                coarse_slots,
                max_series,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<TelemetryConfig, ConfigError> {
        TelemetryConfig::try_from(serde_json::from_str::<TelemetryConfigRaw>(json).unwrap())
    }

    #[test]
    fn empty_config_gives_the_defaults() {
        assert_eq!(parse("{}").unwrap(), TelemetryConfig::default());
        assert_eq!(TelemetryConfig::default().history.fine_slots, 3600);
        assert_eq!(TelemetryConfig::default().history.coarse_slots, 1440);
    }

    #[test]
    fn a_slower_interval_shrinks_the_fine_ring() {
        let c = parse(r#"{"interval_s": 5, "per_cpu": true}"#).unwrap();
        assert_eq!(c.history.fine_slots, 720);
        assert_eq!(c.history.fine_step_s, 5);
        assert!(c.read.per_cpu);
    }

    #[test]
    fn errors_name_the_field() {
        let e = parse(r#"{"interval_s": 0}"#).unwrap_err();
        assert!(e.to_string().starts_with("telemetry.interval_s:"), "{e}");
        let e = parse(r#"{"interval_s": 7}"#).unwrap_err();
        assert!(e.to_string().contains("coarse_step_s"), "{e}");
        let e = parse(r#"{"max_series": 0}"#).unwrap_err();
        assert!(e.to_string().contains("max_series"), "{e}");
        let e = parse(r#"{"coarse_span_s": 100}"#).unwrap_err();
        assert!(e.to_string().contains("coarse_span_s"), "{e}");
    }

    #[test]
    fn unknown_fields_are_refused() {
        assert!(serde_json::from_str::<TelemetryConfigRaw>(r#"{"intervall_s": 1}"#).is_err());
    }
}
