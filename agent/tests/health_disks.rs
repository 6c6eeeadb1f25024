//! Disk health end to end: SMART findings from the inventory reach the machine's
//! health, SMART counters recorded as telemetry give "rising" trends, and a
//! machine with no SSD says so.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test helpers: a panic is a failed test.

mod common;

use std::path::Path;

use common::generate::{self, Spec};
use nodus_agent::{
    hal::SysRoot,
    health::{Assessor, Level},
    inventory::{self, Inventory, Options},
    smart::Recorded,
    telemetry::{History, smart},
};

fn recorded(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/common/smart")
            .join(name),
    )
    .unwrap()
}

fn machine_with_smart() -> (tempfile::TempDir, Inventory) {
    let dir = generate::machine(Spec {
        disks: 8,
        nics: 1,
        sensors: 1,
        cpus: 4,
    });
    let dev = |n: &str| {
        dir.path()
            .join("dev")
            .join(n)
            .to_string_lossy()
            .into_owned()
    };
    let runner = Recorded::default()
        .with(&dev("sda"), 64, &recorded("ata_hdd_errorlog.json"))
        .with(&dev("sde"), 24, &recorded("ata_ssd_failing.json"))
        .with(&dev("nvme0n1"), 8, &recorded("nvme_warning.json"));
    let opts = Options {
        smart: Some(Box::new(runner)),
        ..Options::default()
    };
    let inv = inventory::collect_with(&SysRoot::at(dir.path()).unwrap(), &opts);
    (dir, inv)
}

#[test]
fn smart_findings_reach_the_machine_health() {
    let (_dir, inv) = machine_with_smart();
    let h = Assessor::default().assess(&inv, None);
    assert_eq!(h.status, Level::Critical);
    assert_eq!(h.level_of("disk sde"), Level::Critical);
    assert_eq!(h.level_of("disk sda"), Level::Warning);
    assert!(
        h.findings
            .iter()
            .any(|f| f.component == "disk sda" && f.reason == "SMART: 8 reallocated sectors")
    );
    // The inventory's own health is the same judgement.
    assert_eq!(inv.health.status, Level::Critical);
    assert_eq!(inv.health.level_of("disk sde"), Level::Critical);
}

#[test]
fn reallocated_sectors_rising_between_smart_polls() {
    let (_dir, mut inv) = machine_with_smart();
    let mut history = History::default();
    let t0 = 1_700_000_000;
    // The SMART poll every 10 minutes records the counters.
    history.record_batch(&smart::batch(t0, &inv.disks));
    let h = Assessor::default().assess(&inv, Some(&history));
    assert!(
        h.findings.iter().all(|f| !f.reason.contains("rising")),
        "{:#?}",
        h.findings
    );

    let sda = inv.disks.iter_mut().find(|d| d.name == "sda").unwrap();
    assert_eq!(sda.smart.reallocated_sectors, Some(8));
    sda.smart.reallocated_sectors = Some(11);
    history.record_batch(&smart::batch(t0 + 600, &inv.disks));
    let h = Assessor::default().assess(&inv, Some(&history));
    let rising: Vec<_> = h
        .findings
        .iter()
        .filter(|f| f.reason.contains("rising"))
        .collect();
    assert_eq!(rising.len(), 1, "{rising:#?}");
    assert_eq!(rising[0].component, "disk sda");
    assert_eq!(
        rising[0].reason,
        "SMART: reallocated sectors rising (+3 in 1 d, now 11)"
    );
    assert_eq!(rising[0].level, Level::Warning);

    // NVMe media errors are recorded too.
    assert!(history.latest("disk.nvme0n1.smart_media_errors").is_some());
}

#[test]
fn no_ssd_machine_gets_a_storage_warning() {
    let (_dir, inv) = machine_with_smart();
    let has_ssd = inv.capacity.sru_bytes > 0;
    let h = Assessor::default().assess(&inv, None);
    assert_eq!(
        h.level_of("storage") == Level::Warning,
        !has_ssd,
        "{:#?}",
        h.findings
    );

    // Only HDDs: no SSD capacity, and the reason says why the node is less useful.
    let mut hdd_only = inv.clone();
    hdd_only.capacity.sru_bytes = 0;
    let h = Assessor::default().assess(&hdd_only, None);
    let f = h
        .findings
        .iter()
        .find(|f| f.component == "storage")
        .unwrap();
    assert_eq!(f.level, Level::Warning);
    assert!(
        f.reason
            .starts_with("no ssd: no eligible SSD/NVMe capacity ("),
        "{}",
        f.reason
    );
}
