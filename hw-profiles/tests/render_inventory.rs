//! Every bundled profile, rendered to a fake sysfs tree, must inventory through the
//! real agent code to exactly what its `[expect]` section says: the same checks the
//! QEMU harness makes on a booted guest, minus the boot.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test code: a panic is a failure.

use nodus_agent::{hal::SysRoot, inventory};
use nodus_hw_profiles::{Profile, bundled_dir, load_dir, render::render};
use serde_json::Value;

fn inventory_json(profile: &Profile) -> (tempfile::TempDir, Value) {
    let dir = tempfile::tempdir().unwrap();
    render(profile, dir.path()).unwrap();
    let root = SysRoot::at(dir.path()).unwrap();
    let inv = inventory::collect(&root);
    (dir, serde_json::to_value(&inv).unwrap())
}

fn count_kind(inv: &Value, kind: &str) -> u32 {
    inv["disks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["kind"] == kind)
        .count() as u32
}

/// Checks one profile; returns every mismatch rather than stopping at the first.
fn check(profile: &Profile) -> Vec<String> {
    let (_dir, inv) = inventory_json(profile);
    let e = &profile.raw.expect;
    let mut bad = Vec::new();
    let mut expect_eq = |what: &str, want: Option<u64>, got: Option<u64>| {
        if let Some(w) = want
            && Some(w) != got
        {
            bad.push(format!("{what}: expected {w}, got {got:?}"));
        }
    };
    expect_eq("cru", e.cru.map(u64::from), inv["cpu"]["logical"].as_u64());
    expect_eq(
        "ssd_disks",
        e.ssd_disks.map(u64::from),
        Some(count_kind(&inv, "ssd").into()),
    );
    expect_eq(
        "hdd_disks",
        e.hdd_disks.map(u64::from),
        Some(count_kind(&inv, "hdd").into()),
    );
    expect_eq(
        "nvme_disks",
        e.nvme_disks.map(u64::from),
        Some(count_kind(&inv, "nvme").into()),
    );
    expect_eq(
        "unknown_disks",
        e.unknown_disks.map(u64::from),
        Some(count_kind(&inv, "unknown").into()),
    );
    let up = inv["nics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["physical"] == true && n["carrier"] == true)
        .count() as u64;
    expect_eq("nics_up", e.nics_up.map(u64::from), Some(up));
    expect_eq(
        "numa_nodes",
        Some(profile.raw.machine.numa_nodes.into()),
        inv["cpu"]["numa_nodes"].as_u64(),
    );
    expect_eq(
        "sockets",
        Some(profile.raw.machine.sockets.into()),
        inv["cpu"]["sockets"].as_u64(),
    );
    if let Some(mib) = e.memory_mib {
        let got = inv["memory"]["total_bytes"].as_u64().unwrap_or(0) / (1024 * 1024);
        // The kernel keeps part of RAM; accept up to 15 % below the configured size.
        if got > mib || got < mib * 85 / 100 {
            bad.push(format!("memory_mib: expected ~{mib}, got {got}"));
        }
    }
    if let Some(h) = e.health {
        let want = serde_json::to_value(h).unwrap();
        if inv["health"]["status"] != want {
            bad.push(format!(
                "health: expected {want}, got {} ({})",
                inv["health"]["status"], inv["health"]["findings"]
            ));
        }
    }
    for s in &e.sensors {
        let found = inv["sensors"].as_array().unwrap().iter().any(|x| {
            x["kind"] == s.kind.as_str()
                && x["value"]
                    .as_f64()
                    .is_some_and(|v| v >= s.min && v <= s.max)
        });
        if !found {
            bad.push(format!(
                "sensor {} in [{}, {}] not found among {}",
                s.kind, s.min, s.max, inv["sensors"]
            ));
        }
    }
    // Identity and sizes come through unchanged.
    if inv["dmi"]["vendor"] != profile.raw.dmi.vendor.as_str() {
        bad.push(format!("dmi.vendor: got {}", inv["dmi"]["vendor"]));
    }
    for d in &profile.raw.disks {
        let found = inv["disks"].as_array().unwrap().iter().any(|x| {
            x["serial"] == d.serial.as_str() && x["size_bytes"].as_u64() == Some(d.size_gib << 30)
        });
        if !found {
            bad.push(format!(
                "disk {} (serial {}) not listed with its size",
                d.id, d.serial
            ));
        }
    }
    bad
}

#[test]
fn every_bundled_profile_inventories_as_expected() {
    let profiles = load_dir(&bundled_dir()).unwrap();
    assert!(profiles.len() >= 10, "only {} profiles", profiles.len());
    let mut failures = Vec::new();
    for p in &profiles {
        for problem in check(p) {
            failures.push(format!("{}: {problem}", p.name()));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn virtio_disk_is_never_classed_from_its_rotational_flag() {
    let p = Profile::load(&bundled_dir().join("virtio-unknown-disk.toml")).unwrap();
    let (_dir, inv) = inventory_json(&p);
    let vd = inv["disks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "vda")
        .expect("vda listed");
    assert_eq!(vd["rotational"], true);
    assert_eq!(vd["kind"], "unknown", "{vd}");
}

#[test]
fn a_profile_written_from_the_schema_alone_renders() {
    // Written only from SCHEMA.md's key list, as an outside test would.
    let text = r#"
name = "outsider"
description = "written from the schema"
[machine]
cpus = 2
sockets = 1
memory_mib = 1024
numa_nodes = 1
[dmi]
vendor = "Outside"
product = "P"
serial = "S"
board = "B"
bios_version = "1"
[[disks]]
id = "d"
bus = "nvme"
size_gib = 10
rotation_rate = 0
model = "M"
serial = "NV1"
[[nics]]
id = "n"
model = "e1000e"
mac = "02:00:00:00:00:01"
link = "down"
speed_mbps = 1000
[expect]
cru = 2
nvme_disks = 1
nics_up = 0
"#;
    let p = Profile::from_toml(text, "outsider.toml").unwrap();
    assert_eq!(check(&p), Vec::<String>::new());
}
