//! Sensor rules: a reading against the thresholds the chip reports, or the
//! configured ones that replace them.

use super::{Finding, Level, config::SensorOverride};
use crate::sensors::{Sensor, SensorKind};

/// The limits a reading is judged against.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Limits {
    warn_above: Option<f64>,
    crit_above: Option<f64>,
    warn_below: Option<f64>,
    crit_below: Option<f64>,
}

fn unit(kind: SensorKind) -> &'static str {
    match kind {
        SensorKind::Temperature => "°C",
        SensorKind::Fan => "RPM",
        SensorKind::Voltage => "V",
        SensorKind::Current => "A",
        SensorKind::Power => "W",
        SensorKind::Energy => "J",
        SensorKind::Humidity => "%",
        SensorKind::Intrusion => "",
    }
}

/// A number as people write it: `83`, `1.05`, `0.875`.
pub(super) fn num(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

/// Thresholds the chip reports, minus the ones known to be placeholders.
fn chip_limits(s: &Sensor) -> Limits {
    let mut l = Limits {
        warn_above: s.max,
        crit_above: s.crit,
        warn_below: s.min,
        crit_below: None,
    };
    match s.kind {
        SensorKind::Temperature => {
            // Super-I/O chips report unset temperature limits as 0 °C or as
            // -128/127 °C register defaults; no machine is in trouble at 0 °C, and
            // a low limit only matters for outdoor gear, which sets its own.
            l.warn_above = l.warn_above.filter(|v| *v > 0.0 && *v < 127.0);
            l.crit_above = l.crit_above.filter(|v| *v > 0.0 && *v < 127.0);
            l.warn_below = None;
        }
        SensorKind::Fan => {
            // A fan min of 0 means "no limit"; above-limits do not exist for fans.
            l.warn_above = None;
            l.crit_above = None;
            l.warn_below = l.warn_below.filter(|v| *v > 0.0);
        }
        SensorKind::Voltage => {
            // Super-I/O voltage limits power up as 0 V; a rail whose max is 0 V was
            // never programmed (nct6775 in the node_exporter fixture).
            l.warn_above = l.warn_above.filter(|v| *v != 0.0);
        }
        _ => {}
    }
    // A min above the max is a chip that was never programmed; trust neither.
    if let (Some(lo), Some(hi)) = (l.warn_below, l.warn_above)
        && lo > hi
    {
        l.warn_below = None;
        l.warn_above = None;
    }
    l
}

fn limits(s: &Sensor, overrides: &[SensorOverride]) -> Limits {
    let mut l = chip_limits(s);
    let by_id = format!("{}/{}", s.chip_id, s.sensor);
    let by_chip = format!("{}/{}", s.chip, s.sensor);
    if let Some(o) = overrides
        .iter()
        .find(|o| o.pattern.matches(&by_id) || o.pattern.matches(&by_chip))
    {
        l.warn_above = o.warn_above.or(l.warn_above);
        l.crit_above = o.crit_above.or(l.crit_above);
        l.warn_below = o.warn_below.or(l.warn_below);
        l.crit_below = o.crit_below.or(l.crit_below);
    }
    l
}

/// The component name of a sensor in findings: `sensor <chip_id>/<sensor>`.
pub fn component(s: &Sensor) -> String {
    format!("sensor {}/{}", s.chip_id, s.sensor)
}

/// Judges one sensor. `None` when it is fine or has no reading (a faulted input
/// has no value, and unconnected inputs on Super-I/O chips are routinely faulted,
/// so that alone is not worth a warning).
pub fn judge(s: &Sensor, overrides: &[SensorOverride]) -> Option<Finding> {
    let name = match &s.label {
        Some(l) => format!("{} ({l})", s.sensor),
        None => s.sensor.clone(),
    };
    let u = unit(s.kind);
    let with_unit = |v: f64| {
        if u.is_empty() {
            num(v)
        } else {
            format!("{} {u}", num(v))
        }
    };
    let finding = |level, reason| Finding {
        component: component(s),
        level,
        reason,
    };

    if s.kind == SensorKind::Intrusion {
        let open = s.value.is_some_and(|v| v >= 1.0) || s.alarm == Some(true);
        return open.then(|| finding(Level::Warning, format!("{name} chassis opened")));
    }

    if let Some(v) = s.value {
        let l = limits(s, overrides);
        let checks: [(Option<f64>, bool, Level, &str, &str); 4] = [
            (l.crit_above, true, Level::Critical, "≥", "crit"),
            (l.crit_below, false, Level::Critical, "≤", "lcrit"),
            (l.warn_above, true, Level::Warning, "≥", "max"),
            (l.warn_below, false, Level::Warning, "<", "min"),
        ];
        for (limit, above, level, op, what) in checks {
            let Some(t) = limit else { continue };
            let hit = if above {
                v >= t
            } else if level == Level::Critical {
                v <= t
            } else {
                v < t
            };
            if hit {
                return Some(finding(
                    level,
                    format!("{name} {} {op} {what} {}", with_unit(v), with_unit(t)),
                ));
            }
        }
    }
    // The chip saw something the limits above do not explain (a threshold we
    // could not read, or a reading between samples).
    (s.alarm == Some(true))
        .then(|| finding(Level::Warning, format!("{name} alarm raised by the chip")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::glob::Glob;

    fn sensor(kind: SensorKind, stem: &str, value: Option<f64>) -> Sensor {
        Sensor {
            chip: "nct6775".into(),
            chip_id: "platform/nct6775.656".into(),
            sensor: stem.into(),
            label: None,
            kind,
            value,
            min: None,
            max: None,
            crit: None,
            alarm: None,
        }
    }

    fn reason(s: &Sensor) -> Option<(Level, String)> {
        judge(s, &[]).map(|f| (f.level, f.reason))
    }

    #[test]
    fn temperature_against_max_and_crit() {
        let mut s = sensor(SensorKind::Temperature, "temp2", Some(83.0));
        s.max = Some(80.0);
        s.crit = Some(100.0);
        assert_eq!(
            reason(&s),
            Some((Level::Warning, "temp2 83 °C ≥ max 80 °C".into()))
        );
        s.value = Some(100.0);
        assert_eq!(
            reason(&s),
            Some((Level::Critical, "temp2 100 °C ≥ crit 100 °C".into()))
        );
        s.value = Some(45.5);
        assert_eq!(reason(&s), None);
        assert_eq!(judge(&s, &[]), None);
    }

    #[test]
    fn label_is_shown_and_component_uses_chip_id() {
        let mut s = sensor(SensorKind::Temperature, "temp2", Some(90.0));
        s.label = Some("Core 0".into());
        s.max = Some(80.0);
        let f = judge(&s, &[]).unwrap();
        assert_eq!(f.reason, "temp2 (Core 0) 90 °C ≥ max 80 °C");
        assert_eq!(f.component, "sensor platform/nct6775.656/temp2");
    }

    #[test]
    fn placeholder_temperature_limits_are_ignored() {
        let mut s = sensor(SensorKind::Temperature, "temp7", Some(35.0));
        s.max = Some(0.0);
        s.crit = Some(127.0);
        s.min = Some(127.0);
        assert_eq!(reason(&s), None);
    }

    #[test]
    fn fan_below_min_and_zero_min_means_no_limit() {
        let mut s = sensor(SensorKind::Fan, "fan2", Some(0.0));
        s.min = Some(600.0);
        assert_eq!(
            reason(&s),
            Some((Level::Warning, "fan2 0 RPM < min 600 RPM".into()))
        );
        s.min = Some(0.0);
        assert_eq!(reason(&s), None);
    }

    #[test]
    fn voltage_outside_min_max() {
        let mut s = sensor(SensorKind::Voltage, "in1", Some(1.02));
        s.min = Some(1.1);
        s.max = Some(1.3);
        assert_eq!(
            reason(&s),
            Some((Level::Warning, "in1 1.02 V < min 1.1 V".into()))
        );
        s.value = Some(1.35);
        assert_eq!(
            reason(&s),
            Some((Level::Warning, "in1 1.35 V ≥ max 1.3 V".into()))
        );
        // An unprogrammed chip: min above max.
        s.min = Some(3.0);
        assert_eq!(reason(&s), None);
    }

    #[test]
    fn alarm_flag_alone_warns() {
        let mut s = sensor(SensorKind::Voltage, "in4", Some(5.0));
        s.alarm = Some(true);
        assert_eq!(reason(&s).unwrap().1, "in4 alarm raised by the chip");
        s.value = None;
        assert_eq!(reason(&s).unwrap().0, Level::Warning);
    }

    #[test]
    fn intrusion_and_faulted_sensors() {
        let s = sensor(SensorKind::Intrusion, "intrusion0", Some(1.0));
        assert_eq!(reason(&s).unwrap().1, "intrusion0 chassis opened");
        let s = sensor(SensorKind::Temperature, "temp3", None);
        assert_eq!(reason(&s), None);
    }

    #[test]
    fn overrides_replace_chip_limits_by_chip_name_or_id() {
        let mut s = sensor(SensorKind::Temperature, "temp1", Some(70.0));
        s.max = Some(80.0);
        let o = |p: &str| SensorOverride {
            pattern: Glob::new(p).unwrap(),
            warn_above: Some(65.0),
            crit_above: None,
            warn_below: None,
            crit_below: Some(5.0),
        };
        let f = judge(&s, &[o("nct6775/temp*")]).unwrap();
        assert_eq!(f.reason, "temp1 70 °C ≥ max 65 °C");
        assert!(judge(&s, &[o("platform/nct6775.656/temp1")]).is_some());
        assert!(judge(&s, &[o("coretemp/*")]).is_none());
        s.value = Some(4.0);
        let f = judge(&s, &[o("*")]).unwrap();
        assert_eq!(
            (f.level, f.reason.as_str()),
            (Level::Critical, "temp1 4 °C ≤ lcrit 5 °C")
        );
    }
}
