//! Real data: the RAPL and power-supply readings node_exporter reports for its
//! fixture tree must come out of our power collector with the same values.

#[path = "sensors_common/mod.rs"]
mod sensors_common;

use nodus_agent::{
    hal::{Gaps, SysRoot},
    power::{Meter, PowerSource},
};
use sensors_common::{node_exporter_samples, unpack};

fn meter<'a>(meters: &'a [Meter], source: PowerSource, device_suffix: &str) -> &'a Meter {
    meters
        .iter()
        .find(|m| {
            m.source == source
                && m.device
                    .as_deref()
                    .is_some_and(|d| d.ends_with(device_suffix))
        })
        .unwrap_or_else(|| panic!("no {source:?} meter at {device_suffix}: {meters:#?}"))
}

/// Watt-hours from our joules: node_exporter reports µWh / 1e6 directly, we
/// report J (µWh × 0.0036), so allow for the one rounding of the product.
fn wh(j: Option<f64>) -> Option<f64> {
    j.map(|j| j / 3600.0)
}

#[test]
fn rapl_and_power_supply_match_node_exporter() {
    let dir = unpack("node-exporter-sys.tar.gz");
    let root = SysRoot::at(dir.path()).unwrap();
    let mut gaps = Gaps::default();
    let meters = nodus_agent::power::collect(&root, &mut gaps);
    assert!(gaps.0.is_empty(), "{gaps:?}");

    let mut compared = 0;
    for s in node_exporter_samples() {
        let v = s.value;
        if let Some(zone) = s.name.strip_prefix("node_rapl_") {
            // node_rapl_<name>_joules_total{path=".../intel-rapl:0"}
            let path = &s.labels["path"];
            let dir = path.rsplit('/').next().unwrap();
            let m = meter(&meters, PowerSource::Rapl, &format!("/{dir}"));
            assert_eq!(m.energy_joules, Some(v), "{}", s.name);
            let name = zone.strip_suffix("_joules_total").unwrap();
            assert!(m.name.contains(name), "{} vs {}", m.name, name);
            compared += 1;
            continue;
        }
        let Some(metric) = s.name.strip_prefix("node_power_supply_") else {
            continue;
        };
        let supply = &s.labels["power_supply"];
        let m = meter(&meters, PowerSource::PowerSupply, &format!("/{supply}"));
        assert_eq!(&m.name, supply);
        let (ours, exact) = match metric {
            "online" => (m.online.map(|b| f64::from(u8::from(b))), true),
            "power_watt" => (m.watts, true),
            "voltage_volt" => (m.volts, true),
            "capacity" => (m.capacity_percent, true),
            "energy_watthour" => (wh(m.stored_joules), false),
            "energy_full" => (wh(m.full_joules), false),
            // Design values, cycle count, presence and the info line are
            // inventory trivia we do not meter.
            "info" | "cyclecount" | "present" | "energy_full_design" | "voltage_min_design" => {
                continue;
            }
            other => panic!("unexpected power_supply metric {other}"),
        };
        let ours = ours.unwrap_or_else(|| panic!("{metric} of {supply} missing"));
        if exact {
            assert_eq!(ours, v, "{metric} of {supply}");
        } else {
            assert!(
                (ours - v).abs() <= v.abs() * 1e-12,
                "{metric} of {supply}: {ours} vs {v}"
            );
        }
        compared += 1;
    }
    // 2 RAPL zones; AC online; BAT0 power, voltage, capacity, energy now and full.
    assert_eq!(compared, 8);
    let core = meter(&meters, PowerSource::Rapl, "/intel-rapl:0:0");
    assert_eq!(core.name, "package-0/core");
    assert_eq!(core.energy_max_joules, Some(262_143.328_85));
}
