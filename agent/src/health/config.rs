//! Health overrides in two stages: [`HealthConfigRaw`] as written in the agent's
//! TOML `[health]` section (unknown fields refused), then [`HealthConfig`] with
//! compiled patterns and checked thresholds.
//!
//! ```toml
//! [health]
//! ignore = ["nic veth*", "sensor */intrusion0"]
//!
//! [[health.sensors]]
//! match = "coretemp/temp*"      # chip/sensor or chip_id/sensor, exact or glob
//! warn_above = 85.0
//! crit_above = 95.0
//!
//! [[health.levels]]
//! component = "sensor acpitz*"
//! level = "ok"                  # never report this chip
//!
//! [[health.trends]]
//! series = "disk.*.smart_reallocated_sectors"
//! reason = "SMART: reallocated sectors rising"
//! ```

use serde::Deserialize;

use super::{
    Level,
    glob::{Glob, GlobError},
};

/// Default trend window, s: a day, long enough to see a SMART counter move
/// between two smartctl polls, short enough that an old, stable count stops
/// warning a day after it last grew.
pub const DEFAULT_TREND_WINDOW_S: u64 = 86_400;

/// The SMART counters whose growth means a disk is wearing out (Backblaze's drive
/// stats single out reallocated, pending and uncorrectable sectors as the counts
/// that predict failure; NVMe reports the same as media errors).
const DEFAULT_TRENDS: [(&str, &str); 5] = [
    (
        "disk.*.smart_reallocated_sectors",
        "SMART: reallocated sectors rising",
    ),
    (
        "disk.*.smart_pending_sectors",
        "SMART: pending sectors rising",
    ),
    (
        "disk.*.smart_offline_uncorrectable",
        "SMART: uncorrectable sectors rising",
    ),
    ("disk.*.smart_grown_defects", "SMART: grown defects rising"),
    ("disk.*.smart_media_errors", "SMART: media errors rising"),
];

/// Thresholds for sensors whose name matches, replacing what the chip reports.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SensorOverrideRaw {
    /// `chip/sensor` or `chip_id/sensor` (e.g. `coretemp/temp2`,
    /// `platform/coretemp.0/temp*`); `*` and `?` are wildcards.
    #[serde(rename = "match")]
    pub pattern: String,
    /// Warning at or above this value (replaces the chip's `max`).
    #[serde(default)]
    pub warn_above: Option<f64>,
    /// Critical at or above this value (replaces the chip's `crit`).
    #[serde(default)]
    pub crit_above: Option<f64>,
    /// Warning below this value (replaces the chip's `min`).
    #[serde(default)]
    pub warn_below: Option<f64>,
    /// Critical at or below this value (replaces the chip's `lcrit`).
    #[serde(default)]
    pub crit_below: Option<f64>,
}

/// A change of level for findings whose component matches.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LevelOverrideRaw {
    /// Component pattern, e.g. `nic eth1`, `sensor nct6775*`, `disk sd?`.
    pub component: String,
    /// Only change findings at this level (default: any level).
    #[serde(default)]
    pub from: Option<Level>,
    /// The level to report instead; `ok` drops the finding.
    pub level: Level,
}

/// A rule over telemetry history: warn when a series rose within a window.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrendRuleRaw {
    /// Series pattern, e.g. `disk.*.smart_reallocated_sectors`.
    pub series: String,
    /// Seconds to look back (default 86400).
    #[serde(default)]
    pub window_s: Option<u64>,
    /// Smallest rise that counts (default 1, one more bad sector).
    #[serde(default)]
    pub min_rise: Option<f64>,
    /// Level to report (default warning).
    #[serde(default)]
    pub level: Option<Level>,
    /// What to say, e.g. `SMART: reallocated sectors rising`.
    pub reason: String,
}

/// The `[health]` section as written. Every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthConfigRaw {
    /// Components never reported, as patterns (`nic veth*`).
    #[serde(default)]
    pub ignore: Vec<String>,
    /// Sensor thresholds that replace the chip's; the first matching entry wins.
    #[serde(default)]
    pub sensors: Vec<SensorOverrideRaw>,
    /// Level changes, applied in order after every other rule.
    #[serde(default)]
    pub levels: Vec<LevelOverrideRaw>,
    /// Trend rules; when absent, the SMART defaults (reallocated, pending and
    /// uncorrectable sectors, SCSI grown defects, NVMe media errors). An empty
    /// list turns them off.
    #[serde(default)]
    pub trends: Option<Vec<TrendRuleRaw>>,
    /// Warn when the node offers no SSD/NVMe capacity (default true): workloads
    /// need SSD for their root file systems, so such a node is useless to tenants.
    #[serde(default)]
    pub require_ssd: Option<bool>,
}

/// Why a health config was refused. Each names the offending field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HealthConfigError {
    /// A pattern is empty or too long.
    #[error("health.{field}: bad pattern")]
    Pattern {
        /// The field, e.g. `sensors[2].match`.
        field: String,
        /// What is wrong with it.
        #[source]
        source: GlobError,
    },
    /// A threshold is not a finite number, or thresholds contradict each other.
    #[error("health.{field}: {reason}")]
    Threshold {
        /// The field, e.g. `sensors[0].crit_above`.
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// A trend rule is unusable.
    #[error("health.{field}: {reason}")]
    Trend {
        /// The field, e.g. `trends[1].window_s`.
        field: String,
        /// What is wrong.
        reason: &'static str,
    },
}

/// Checked sensor thresholds for matching sensors.
#[derive(Debug, Clone, PartialEq)]
pub struct SensorOverride {
    /// Which sensors.
    pub pattern: Glob,
    /// Warning at or above.
    pub warn_above: Option<f64>,
    /// Critical at or above.
    pub crit_above: Option<f64>,
    /// Warning below.
    pub warn_below: Option<f64>,
    /// Critical at or below.
    pub crit_below: Option<f64>,
}

/// A checked level change.
#[derive(Debug, Clone, PartialEq)]
pub struct LevelOverride {
    /// Which components.
    pub component: Glob,
    /// Only findings at this level.
    pub from: Option<Level>,
    /// The new level.
    pub level: Level,
}

/// A checked trend rule.
#[derive(Debug, Clone, PartialEq)]
pub struct TrendRule {
    /// Which series.
    pub series: Glob,
    /// Look-back, s.
    pub window_s: u64,
    /// Smallest rise that counts.
    pub min_rise: f64,
    /// Level to report.
    pub level: Level,
    /// What to say.
    pub reason: String,
}

/// Checked health settings. [`Default`] is what an empty `[health]` gives.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthConfig {
    /// Components never reported.
    pub ignore: Vec<Glob>,
    /// Sensor thresholds; first match wins.
    pub sensors: Vec<SensorOverride>,
    /// Level changes, in order.
    pub levels: Vec<LevelOverride>,
    /// Trend rules over telemetry.
    pub trends: Vec<TrendRule>,
    /// Warn when there is no SSD/NVMe capacity.
    pub require_ssd: bool,
}

impl Default for HealthConfig {
    fn default() -> Self {
        Self {
            ignore: Vec::new(),
            sensors: Vec::new(),
            levels: Vec::new(),
            trends: default_trends(),
            require_ssd: true,
        }
    }
}

fn default_trends() -> Vec<TrendRule> {
    DEFAULT_TRENDS
        .iter()
        .filter_map(|(series, reason)| {
            Some(TrendRule {
                // The constant patterns are valid; filter_map only to avoid a panic
                // path in non-test code.
                series: Glob::new(series).ok()?,
                window_s: DEFAULT_TREND_WINDOW_S,
                min_rise: 1.0,
                level: Level::Warning,
                reason: (*reason).to_owned(),
            })
        })
        .collect()
}

fn glob(field: String, pattern: &str) -> Result<Glob, HealthConfigError> {
    Glob::new(pattern).map_err(|source| HealthConfigError::Pattern { field, source })
}

fn finite(field: String, v: Option<f64>) -> Result<Option<f64>, HealthConfigError> {
    match v {
        Some(x) if !x.is_finite() => Err(HealthConfigError::Threshold {
            field,
            reason: format!("{x} is not a finite number"),
        }),
        _ => Ok(v),
    }
}

fn ordered(
    field: String,
    lo: Option<f64>,
    hi: Option<f64>,
    what: &str,
) -> Result<(), HealthConfigError> {
    match (lo, hi) {
        (Some(l), Some(h)) if l > h => Err(HealthConfigError::Threshold {
            field,
            reason: format!("{what} ({l} > {h})"),
        }),
        _ => Ok(()),
    }
}

impl TryFrom<HealthConfigRaw> for HealthConfig {
    type Error = HealthConfigError;

    fn try_from(raw: HealthConfigRaw) -> Result<Self, Self::Error> {
        let ignore = raw
            .ignore
            .iter()
            .enumerate()
            .map(|(i, p)| glob(format!("ignore[{i}]"), p))
            .collect::<Result<_, _>>()?;

        let mut sensors = Vec::with_capacity(raw.sensors.len());
        for (i, s) in raw.sensors.iter().enumerate() {
            let f = |name: &str| format!("sensors[{i}].{name}");
            let o = SensorOverride {
                pattern: glob(f("match"), &s.pattern)?,
                warn_above: finite(f("warn_above"), s.warn_above)?,
                crit_above: finite(f("crit_above"), s.crit_above)?,
                warn_below: finite(f("warn_below"), s.warn_below)?,
                crit_below: finite(f("crit_below"), s.crit_below)?,
            };
            if [o.warn_above, o.crit_above, o.warn_below, o.crit_below]
                .iter()
                .all(Option::is_none)
            {
                return Err(HealthConfigError::Threshold {
                    field: f("match"),
                    reason: "no threshold given".to_owned(),
                });
            }
            ordered(
                f("crit_above"),
                o.warn_above,
                o.crit_above,
                "warn_above is above crit_above",
            )?;
            ordered(
                f("warn_below"),
                o.crit_below,
                o.warn_below,
                "crit_below is above warn_below",
            )?;
            ordered(
                f("warn_above"),
                o.warn_below,
                o.warn_above,
                "warn_below is above warn_above",
            )?;
            sensors.push(o);
        }

        let levels = raw
            .levels
            .iter()
            .enumerate()
            .map(|(i, l)| {
                Ok(LevelOverride {
                    component: glob(format!("levels[{i}].component"), &l.component)?,
                    from: l.from,
                    level: l.level,
                })
            })
            .collect::<Result<_, HealthConfigError>>()?;

        let trends = match raw.trends {
            None => default_trends(),
            Some(rules) => {
                let mut out = Vec::with_capacity(rules.len());
                for (i, t) in rules.iter().enumerate() {
                    let f = |name: &str| format!("trends[{i}].{name}");
                    let window_s = t.window_s.unwrap_or(DEFAULT_TREND_WINDOW_S);
                    if window_s == 0 {
                        return Err(HealthConfigError::Trend {
                            field: f("window_s"),
                            reason: "must be at least 1",
                        });
                    }
                    let min_rise = t.min_rise.unwrap_or(1.0);
                    if !(min_rise.is_finite() && min_rise > 0.0) {
                        return Err(HealthConfigError::Trend {
                            field: f("min_rise"),
                            reason: "must be a positive number",
                        });
                    }
                    if t.reason.trim().is_empty() {
                        return Err(HealthConfigError::Trend {
                            field: f("reason"),
                            reason: "must say what is wrong",
                        });
                    }
                    out.push(TrendRule {
                        series: glob(f("series"), &t.series)?,
                        window_s,
                        min_rise,
                        level: t.level.unwrap_or(Level::Warning),
                        reason: t.reason.clone(),
                    });
                }
                out
            }
        };

        Ok(Self {
            ignore,
            sensors,
            levels,
            trends,
            require_ssd: raw.require_ssd.unwrap_or(true),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<HealthConfig, HealthConfigError> {
        HealthConfig::try_from(serde_json::from_str::<HealthConfigRaw>(json).unwrap())
    }

    #[test]
    fn empty_gives_defaults_with_smart_trends() {
        let c = parse("{}").unwrap();
        assert_eq!(c, HealthConfig::default());
        assert_eq!(c.trends.len(), 5);
        assert!(c.require_ssd);
        assert!(parse(r#"{"trends": []}"#).unwrap().trends.is_empty());
    }

    #[test]
    fn a_full_config_parses() {
        let c = parse(
            r#"{"ignore": ["nic veth*"],
                "sensors": [{"match": "coretemp/temp*", "warn_above": 85, "crit_above": 95}],
                "levels": [{"component": "sensor acpitz*", "from": "warning", "level": "ok"}],
                "trends": [{"series": "disk.*.smart_media_errors", "reason": "media errors", "level": "critical"}],
                "require_ssd": false}"#,
        )
        .unwrap();
        assert!(c.ignore[0].matches("nic veth12"));
        assert_eq!(c.sensors[0].crit_above, Some(95.0));
        assert_eq!(c.levels[0].from, Some(Level::Warning));
        assert_eq!(c.trends[0].level, Level::Critical);
        assert!(!c.require_ssd);
    }

    #[test]
    fn errors_name_the_field() {
        let e = parse(r#"{"sensors": [{"match": "x", "warn_above": 90, "crit_above": 80}]}"#)
            .unwrap_err();
        assert!(
            e.to_string().starts_with("health.sensors[0].crit_above:"),
            "{e}"
        );
        let e = parse(r#"{"sensors": [{"match": "x"}]}"#).unwrap_err();
        assert!(
            e.to_string().contains("sensors[0].match: no threshold"),
            "{e}"
        );
        let e = parse(r#"{"ignore": ["ok", ""]}"#).unwrap_err();
        assert_eq!(e.to_string(), "health.ignore[1]: bad pattern");
        let e =
            parse(r#"{"trends": [{"series": "x", "reason": "r", "window_s": 0}]}"#).unwrap_err();
        assert!(e.to_string().contains("trends[0].window_s"), "{e}");
    }

    #[test]
    fn unknown_fields_are_refused_at_every_level() {
        assert!(serde_json::from_str::<HealthConfigRaw>(r#"{"ignored": []}"#).is_err());
        assert!(
            serde_json::from_str::<HealthConfigRaw>(r#"{"sensors": [{"match": "x", "max": 1}]}"#)
                .is_err()
        );
        assert!(
            serde_json::from_str::<HealthConfigRaw>(
                r#"{"levels": [{"component": "x", "level": "bad"}]}"#
            )
            .is_err()
        );
    }
}
