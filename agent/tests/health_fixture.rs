//! Health over a real machine's hwmon tree (node_exporter's fixture): what the
//! chips report is judged, placeholders are not, and overrides apply.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test helpers: a panic is a failed test.

mod common;

use nodus_agent::{
    hal::SysRoot,
    health::{Assessor, HealthConfig, HealthConfigRaw, Level},
    inventory,
};

fn fixture() -> (tempfile::TempDir, SysRoot) {
    let dir = tempfile::tempdir().unwrap();
    let src = common::fixtures_dir().join("node-exporter-sys.tar.gz");
    let ok = std::process::Command::new("tar")
        .arg("xzf")
        .arg(&src)
        .arg("-C")
        .arg(dir.path())
        .status()
        .unwrap()
        .success();
    assert!(ok, "unpacking {}", src.display());
    let root = SysRoot::at(dir.path()).unwrap();
    (dir, root)
}

fn reasons(h: &nodus_agent::health::Health) -> Vec<(String, Level, String)> {
    h.findings
        .iter()
        .map(|f| (f.component.clone(), f.level, f.reason.clone()))
        .collect()
}

#[test]
fn node_exporter_machine_is_judged_from_its_own_thresholds() {
    let (_dir, root) = fixture();
    let inv = inventory::collect(&root);
    let h = Assessor::default().assess(&inv, None);
    let got = reasons(&h);
    let has = |component: &str, reason: &str| {
        got.iter()
            .any(|(c, l, r)| c == component && *l == Level::Warning && r == reason)
    };
    // applesmc reports fan minimums; one fan stands still, one is 2 RPM short.
    assert!(
        has(
            "sensor platform/applesmc.768/fan1",
            "fan1 (Left side) 0 RPM < min 2160 RPM"
        ),
        "{got:#?}"
    );
    assert!(
        has(
            "sensor platform/applesmc.768/fan2",
            "fan2 (Right side) 1998 RPM < min 2000 RPM"
        ),
        "{got:#?}"
    );
    // nct6775: both intrusion detectors latched, and in1 has its alarm set. Its
    // max of 0 V is an unprogrammed limit, not the reason.
    assert!(
        has(
            "sensor platform/nct6775.656/intrusion0",
            "intrusion0 chassis opened"
        ),
        "{got:#?}"
    );
    assert!(
        has(
            "sensor platform/nct6775.656/in1",
            "in1 alarm raised by the chip"
        ),
        "{got:#?}"
    );
    // coretemp at 50-55 °C against max 84 °C is fine.
    assert!(
        got.iter().all(|(c, _, _)| !c.contains("coretemp")),
        "{got:#?}"
    );
    assert_eq!(h.status, Level::Warning);
    // The inventory's own health (the stateless default) says the same.
    assert_eq!(inv.health.status, Level::Warning);
}

#[test]
fn overrides_silence_and_escalate() {
    let (_dir, root) = fixture();
    let inv = inventory::collect(&root);
    let raw: HealthConfigRaw = serde_json::from_str(
        r#"{"ignore": ["sensor */intrusion*"],
            "sensors": [{"match": "coretemp/temp*", "warn_above": 50, "crit_above": 55}],
            "levels": [{"component": "sensor platform/applesmc.768/fan1", "level": "critical"}]}"#,
    )
    .unwrap();
    let h = Assessor::new(HealthConfig::try_from(raw).unwrap()).assess(&inv, None);
    let got = reasons(&h);
    assert!(
        got.iter().all(|(c, _, _)| !c.contains("intrusion")),
        "{got:#?}"
    );
    assert_eq!(
        h.level_of("sensor platform/applesmc.768/fan1"),
        Level::Critical
    );
    assert_eq!(
        h.level_of("sensor platform/coretemp.0/temp1"),
        Level::Critical
    );
    assert_eq!(
        h.level_of("sensor platform/coretemp.0/temp5"),
        Level::Warning
    );
    assert_eq!(
        h.level_of("sensor platform/coretemp.0/temp3"),
        Level::Warning
    );
    assert!(
        got.iter()
            .any(|(c, l, r)| c == "sensor platform/coretemp.0/temp1"
                && *l == Level::Critical
                && r.ends_with("55 °C ≥ crit 55 °C")),
        "{got:#?}"
    );
    assert_eq!(h.status, Level::Critical);
}
