//! `[expect]` against an inventory document (`agent/INVENTORY.md`): pure
//! functions, so the same checks run on a snapshot from a booted VM and on
//! fixtures in unit tests.

use nodus_hw_profiles::Profile;
use serde_json::Value;

use super::Check;

fn count_kind(inv: &Value, kind: &str) -> u64 {
    inv["disks"]
        .as_array()
        .map_or(0, |d| d.iter().filter(|d| d["kind"] == kind).count() as u64)
}

/// Physical NICs with carrier.
pub fn nics_up(inv: &Value) -> u64 {
    inv["nics"].as_array().map_or(0, |n| {
        n.iter()
            .filter(|n| n["physical"] == true && n["carrier"] == true)
            .count() as u64
    })
}

/// Offered storage: SRU + HRU bytes.
pub fn storage_bytes(inv: &Value) -> u64 {
    let c = &inv["capacity"];
    c["sru_bytes"].as_u64().unwrap_or(0) + c["hru_bytes"].as_u64().unwrap_or(0)
}

/// The disk with this serial, if listed.
pub fn disk_by_serial<'a>(inv: &'a Value, serial: &str) -> Option<&'a Value> {
    inv["disks"]
        .as_array()?
        .iter()
        .find(|d| d["serial"].as_str().map(str::trim) == Some(serial))
}

/// The NIC with this MAC, if listed.
pub fn nic_by_mac<'a>(inv: &'a Value, mac: &str) -> Option<&'a Value> {
    inv["nics"].as_array()?.iter().find(|n| {
        n["mac"]
            .as_str()
            .is_some_and(|m| m.eq_ignore_ascii_case(mac))
    })
}

/// The first health finding whose component is `component` (`disk sda`,
/// `nic eth1`).
pub fn finding_for<'a>(inv: &'a Value, component: &str) -> Option<&'a Value> {
    inv["health"]["findings"]
        .as_array()?
        .iter()
        .find(|f| f["component"].as_str() == Some(component))
}

/// `health.status`.
pub fn health(inv: &Value) -> &str {
    inv["health"]["status"].as_str().unwrap_or("?")
}

/// One check per `[expect]` key present, plus the machine's NUMA node count.
pub fn expect_checks(profile: &Profile, inv: &Value) -> Vec<Check> {
    let e = &profile.raw.expect;
    let mut out = Vec::new();
    let mut eq = |name: &str, want: Option<u64>, got: Option<u64>| {
        if let Some(w) = want {
            out.push(Check::new(
                name,
                Some(w) == got,
                format!(
                    "expected {w}, got {}",
                    got.map_or("none".into(), |g| g.to_string())
                ),
            ));
        }
    };
    eq("cru", e.cru.map(u64::from), inv["cpu"]["logical"].as_u64());
    eq(
        "numa_nodes",
        Some(profile.raw.machine.numa_nodes.into()),
        inv["cpu"]["numa_nodes"].as_u64(),
    );
    eq(
        "ssd_disks",
        e.ssd_disks.map(u64::from),
        Some(count_kind(inv, "ssd")),
    );
    eq(
        "hdd_disks",
        e.hdd_disks.map(u64::from),
        Some(count_kind(inv, "hdd")),
    );
    eq(
        "nvme_disks",
        e.nvme_disks.map(u64::from),
        Some(count_kind(inv, "nvme")),
    );
    eq(
        "unknown_disks",
        e.unknown_disks.map(u64::from),
        Some(count_kind(inv, "unknown")),
    );
    eq("nics_up", e.nics_up.map(u64::from), Some(nics_up(inv)));
    if let Some(mib) = e.memory_mib {
        let got = inv["memory"]["total_bytes"].as_u64().unwrap_or(0) / (1024 * 1024);
        // The kernel keeps part of RAM; up to 15 % below the configured size.
        out.push(Check::new(
            "memory_mib",
            got <= mib && got >= mib * 85 / 100,
            format!("expected {mib} (-15 %), got {got}"),
        ));
    }
    if let Some(h) = e.health {
        let want = serde_json::to_value(h)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        out.push(Check::new(
            "health",
            health(inv) == want,
            format!(
                "expected {want}, got {} {}",
                health(inv),
                inv["health"]["findings"]
            ),
        ));
    }
    for s in &e.sensors {
        let found = inv["sensors"].as_array().and_then(|a| {
            a.iter().find_map(|x| {
                let v = x["value"].as_f64()?;
                (x["kind"] == s.kind.as_str() && v >= s.min && v <= s.max).then_some(v)
            })
        });
        out.push(Check::new(
            &format!("sensor {}", s.kind),
            found.is_some(),
            match found {
                Some(v) => format!("{v} in [{}, {}]", s.min, s.max),
                None => format!("none in [{}, {}] among {}", s.min, s.max, inv["sensors"]),
            },
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile() -> Profile {
        Profile::load(&nodus_hw_profiles::bundled_dir().join("i2c-sensor-board.toml")).unwrap()
    }

    fn inv() -> Value {
        serde_json::json!({
            "cpu": {"logical": 2, "numa_nodes": 1},
            "memory": {"total_bytes": 1_950u64 * 1024 * 1024},
            "disks": [{"name": "sda", "kind": "ssd", "serial": "50026B7782A1B2C3"}],
            "nics": [
                {"name": "eth0", "mac": "52:54:00:12:c0:01", "physical": true, "carrier": true},
                {"name": "lo", "physical": false, "carrier": true}
            ],
            "sensors": [
                {"kind": "temperature", "value": 26.5},
                {"kind": "voltage", "value": 11.98},
                {"kind": "current", "value": 0.4},
                {"kind": "power", "value": 4.792}
            ],
            "capacity": {"sru_bytes": 100, "hru_bytes": 20},
            "health": {"status": "ok", "findings": []}
        })
    }

    #[test]
    fn a_matching_inventory_passes_every_check() {
        let checks = expect_checks(&profile(), &inv());
        assert!(checks.len() >= 10, "{checks:?}");
        assert!(checks.iter().all(|c| c.ok), "{checks:?}");
        assert_eq!(storage_bytes(&inv()), 120);
        assert!(nic_by_mac(&inv(), "52:54:00:12:C0:01").is_some());
        assert!(disk_by_serial(&inv(), "50026B7782A1B2C3").is_some());
    }

    #[test]
    fn each_mismatch_fails_its_own_check() {
        let mut i = inv();
        i["cpu"]["logical"] = 1.into();
        i["memory"]["total_bytes"] = (1_000u64 * 1024 * 1024).into();
        i["nics"][0]["carrier"] = false.into();
        i["sensors"][0]["value"] = 40.0.into();
        i["health"]["status"] = "warning".into();
        i["disks"][0]["kind"] = "unknown".into();
        let failed: Vec<String> = expect_checks(&profile(), &i)
            .into_iter()
            .filter(|c| !c.ok)
            .map(|c| c.name)
            .collect();
        assert_eq!(
            failed,
            [
                "cru",
                "ssd_disks",
                "unknown_disks",
                "nics_up",
                "memory_mib",
                "health",
                "sensor temperature"
            ]
        );
    }
}
