//! Real data: every hwmon temperature, fan and voltage reading (and its
//! thresholds, alarms and label) that node_exporter reports for its own fixture
//! tree must come out of our collector with the same value.

mod sensors_common;

use std::collections::{BTreeMap, BTreeSet};

use nodus_agent::hal::{Gaps, SysRoot};
use sensors_common::{node_exporter_samples, unpack};

/// node_exporter's `chip` label → our `chip_id` for this tree.
///
/// node_exporter names a chip `<parent dir>_<device dir>` of the `device` link
/// target, cleaned to `[a-z0-9_]`, else its `name` file, else `hwmonN`, and adds
/// the `name` when several chips share a device (`collector/hwmon_linux.go`,
/// `hwmonName` and `Update`). We keep the whole device path under `/sys/devices`
/// instead, and find the device of a chip without a `device` link (`nct6779`) from
/// where its class directory sits; so the two naming schemes are mapped by hand.
const CHIPS: &[(&str, &str)] = &[
    ("platform_coretemp_0", "platform/coretemp.0"),
    ("platform_coretemp_1", "platform/coretemp.1"),
    ("platform_applesmc_768", "platform/applesmc.768"),
    ("nct6779", "platform/nct6775.656"),
    ("hwmon4", "hwmon4"),
    (
        "ieee80211_phy0_mt7996_phy0_0",
        "platform/soc/18000000.wifi/ieee80211/phy0/mt7996_phy0_0",
    ),
    (
        "ieee80211_phy0_mt7996_phy0_1",
        "platform/soc/18000000.wifi/ieee80211/phy0/mt7996_phy0_1",
    ),
    (
        "ieee80211_phy0_mt7996_phy0_2",
        "platform/soc/18000000.wifi/ieee80211/phy0/mt7996_phy0_2",
    ),
];

/// node_exporter metric → the field of our JSON sensor that must equal it.
const FIELDS: &[(&str, &str)] = &[
    ("node_hwmon_temp_celsius", "value"),
    ("node_hwmon_temp_max_celsius", "max"),
    ("node_hwmon_temp_crit_celsius", "crit"),
    // Our `alarm` folds every `_*alarm` item; these chips' temperatures have
    // `_crit_alarm` as their only one.
    ("node_hwmon_temp_crit_alarm_celsius", "alarm"),
    ("node_hwmon_fan_rpm", "value"),
    ("node_hwmon_fan_min_rpm", "min"),
    ("node_hwmon_fan_max_rpm", "max"),
    ("node_hwmon_fan_alarm", "alarm"),
    ("node_hwmon_in_volts", "value"),
    ("node_hwmon_in_min_volts", "min"),
    ("node_hwmon_in_max_volts", "max"),
    ("node_hwmon_in_alarm", "alarm"),
    ("node_hwmon_intrusion_alarm", "value"),
];

fn as_number(v: &serde_json::Value) -> Option<f64> {
    match v {
        serde_json::Value::Bool(b) => Some(f64::from(u8::from(*b))),
        v => v.as_f64(),
    }
}

#[test]
fn hwmon_matches_node_exporter_value_by_value() {
    let dir = unpack("node-exporter-sys.tar.gz");
    let root = SysRoot::at(dir.path()).unwrap();
    let mut gaps = Gaps::default();
    let sensors = nodus_agent::sensors::collect(&root, &mut gaps);
    // Compare through the JSON contract, as outside tools see it.
    let json = serde_json::to_value(&sensors).unwrap();
    let ours: BTreeMap<(String, String), &serde_json::Value> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let key = (
                s["chip_id"].as_str().unwrap().to_owned(),
                s["sensor"].as_str().unwrap().to_owned(),
            );
            (key, s)
        })
        .collect();
    assert_eq!(ours.len(), sensors.len(), "duplicate chip_id/sensor pairs");
    let chips: BTreeMap<&str, &str> = CHIPS.iter().copied().collect();
    let fields: BTreeMap<&str, &str> = FIELDS.iter().copied().collect();

    let mut compared = 0;
    let mut expected_readings = BTreeSet::new();
    for s in node_exporter_samples() {
        let Some(chip) = s.labels.get("chip") else {
            continue;
        };
        let (Some(field), Some(sensor)) = (fields.get(s.name.as_str()), s.labels.get("sensor"))
        else {
            continue;
        };
        let chip_id = chips
            .get(chip.as_str())
            .unwrap_or_else(|| panic!("node_exporter chip {chip} not mapped"));
        let ours = ours
            .get(&(chip_id.to_string(), sensor.clone()))
            .unwrap_or_else(|| panic!("{chip_id} {sensor} missing, node_exporter has {s:?}"));
        let got = ours.get(*field).and_then(as_number);
        assert_eq!(
            got,
            Some(s.value),
            "{} {chip} {sensor}: ours {ours}",
            s.name
        );
        if *field == "value" {
            expected_readings.insert((chip_id.to_string(), sensor.clone()));
        }
        compared += 1;
    }
    // Every sample of the metrics above: 15 temperatures (51 samples with max,
    // crit and crit_alarm), 3 fans (9), 2 voltages (8) and 2 intrusion flags.
    assert_eq!(compared, 70, "number of node_exporter samples compared");

    // And nothing extra: every temperature, fan, voltage and intrusion reading we
    // report is one node_exporter reports.
    let reported: BTreeSet<(String, String)> = sensors
        .iter()
        .filter(|s| s.value.is_some())
        .map(|s| (s.chip_id.clone(), s.sensor.clone()))
        .collect();
    assert_eq!(reported, expected_readings);

    // Labels too.
    for s in node_exporter_samples()
        .iter()
        .filter(|s| s.name == "node_hwmon_sensor_label")
    {
        if s.labels["sensor"].starts_with("freq") {
            continue; // frequency sensors are not part of our ABI subset
        }
        let key = (
            chips[s.labels["chip"].as_str()].to_owned(),
            s.labels["sensor"].clone(),
        );
        assert_eq!(ours[&key]["label"], s.labels["label"].as_str(), "{key:?}");
    }

    // Chip names are the `name` file (from the device directory for the old
    // applesmc driver), or `hwmonN` when there is none.
    let chip_of = |id: &str| {
        sensors
            .iter()
            .find(|s| s.chip_id == id)
            .unwrap()
            .chip
            .as_str()
    };
    assert_eq!(chip_of("platform/coretemp.0"), "coretemp");
    assert_eq!(chip_of("platform/applesmc.768"), "applesmc");
    assert_eq!(chip_of("platform/nct6775.656"), "nct6779");
    assert_eq!(chip_of("hwmon4"), "hwmon4");
    assert!(gaps.0.is_empty(), "{gaps:?}");

    // And the inventory (`nodus agent inventory --json --root`) carries exactly
    // these sensors.
    let inv = serde_json::to_value(nodus_agent::inventory::collect(&root)).unwrap();
    assert_eq!(inv["sensors"], json);
}
