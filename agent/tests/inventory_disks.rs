//! Disks end to end on a generated machine: SMART through recorded smartctl
//! outputs, the managed-mode seek probe with a fake device, persisted
//! classifications and board-profile overrides.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::path::Path;

use common::generate::{self, Spec};
use nodus_agent::{
    disks::{
        DiskKind, DiskProfile, DiskProfileConfig, KindSource,
        probe::{FakeDevice, SeekDevice},
    },
    hal::SysRoot,
    health::Level,
    inventory::{self, Inventory, Mode, Options},
    smart::{self, Recorded, SmartOutput, SmartStatus},
};

fn recorded(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/common/smart")
            .join(name),
    )
    .unwrap()
}

fn parse(name: &str, exit: u8) -> smart::Smart {
    smart::parse(&SmartOutput {
        exit_status: exit,
        stdout: recorded(name).into_bytes(),
    })
}

#[test]
fn ata_hdd_with_error_log() {
    let s = parse("ata_hdd_errorlog.json", 64);
    assert_eq!(s.status, SmartStatus::Ok);
    assert_eq!(s.passed, Some(true));
    assert_eq!(s.rotation_rate, Some(5400));
    assert_eq!(
        (
            s.reallocated_sectors,
            s.pending_sectors,
            s.offline_uncorrectable
        ),
        (Some(8), Some(2), Some(0))
    );
    assert_eq!(s.temperature_celsius, Some(34.0));
    assert_eq!(s.power_on_hours, Some(31415));
    assert_eq!(s.exit_bits, ["error_log_entries"]);
}

#[test]
fn ata_ssd_failing() {
    let s = parse("ata_ssd_failing.json", 24);
    assert_eq!(s.passed, Some(false));
    assert_eq!(s.rotation_rate, Some(0));
    assert_eq!(s.failing_attributes, ["Reallocated_Sector_Ct"]);
    assert_eq!(s.exit_bits, ["disk_failing", "prefail_at_threshold"]);
}

#[test]
fn nvme_critical_warning_decoded() {
    let s = parse("nvme_warning.json", 8);
    let n = s.nvme.as_ref().unwrap();
    assert_eq!(n.critical_warning, 5);
    assert_eq!(
        n.critical_warnings,
        ["available_spare_below_threshold", "reliability_degraded"]
    );
    assert_eq!(
        (
            n.available_spare,
            n.available_spare_threshold,
            n.percentage_used
        ),
        (Some(8), Some(10), Some(103))
    );
    assert_eq!(n.media_errors, Some(3));
    assert_eq!(s.temperature_celsius, Some(48.0));
    let ok = parse("nvme_ok.json", 0);
    assert_eq!(
        ok.nvme.as_ref().unwrap().critical_warnings,
        Vec::<String>::new()
    );
    assert_eq!(ok.passed, Some(true));
}

#[test]
fn standby_is_skipped_not_woken_and_open_failure_is_unavailable() {
    let s = parse("standby.json", 2);
    assert_eq!(s.status, SmartStatus::Standby);
    assert!(s.detail.unwrap().contains("STANDBY"));
    let s = parse("open_failed.json", 2);
    assert_eq!(s.status, SmartStatus::Unavailable);
    assert!(s.detail.unwrap().contains("No such device"));
}

fn runner(dir: &Path) -> Recorded {
    let dev = |n: &str| dir.join("dev").join(n).to_string_lossy().into_owned();
    Recorded::default()
        .with(&dev("sda"), 64, &recorded("ata_hdd_errorlog.json"))
        .with(&dev("sdb"), 2, &recorded("standby.json"))
        .with(&dev("sdc"), 2, &recorded("open_failed.json"))
        .with(&dev("sde"), 24, &recorded("ata_ssd_failing.json"))
        .with(&dev("nvme0n1"), 8, &recorded("nvme_warning.json"))
}

fn small() -> Spec {
    Spec {
        disks: 8,
        nics: 1,
        sensors: 1,
        cpus: 4,
    }
}

fn run(dir: &Path, opts: &Options) -> Inventory {
    inventory::collect_with(&SysRoot::at(dir).unwrap(), opts)
}

#[test]
fn smart_flows_into_disks_kind_and_findings() {
    let dir = generate::machine(small());
    let opts = Options {
        smart: Some(Box::new(runner(dir.path()))),
        ..Options::default()
    };
    let inv = run(dir.path(), &opts);
    let d = |n: &str| inv.disks.iter().find(|d| d.name == n).unwrap();

    // sda: rotational=1 and SMART says 5400 rpm.
    assert_eq!(
        (d("sda").kind, d("sda").kind_source),
        (DiskKind::Hdd, KindSource::SmartRotationRate)
    );
    let f = d("sda").findings();
    assert!(
        f.iter()
            .any(|f| f.reason == "SMART: 8 reallocated sectors" && f.level == Level::Warning)
    );
    assert!(
        f.iter()
            .any(|f| f.reason == "SMART: device error log has entries")
    );

    // sdb sleeps: SMART skipped, and its sectors were not read either (reading
    // would spin it up), so it cannot be offered this pass.
    assert_eq!(d("sdb").smart.status, SmartStatus::Standby);
    assert!(!d("sdb").contents_checked);
    assert!(!d("sdb").eligible);
    assert!(d("sdb").ineligible_reasons[0].contains("standby"));

    assert_eq!(d("sdc").smart.status, SmartStatus::Unavailable);
    // No recording for sdd: as if smartctl were missing; said so, not an error.
    assert_eq!(d("sdd").smart.status, SmartStatus::NotInstalled);
    assert_eq!(d("vda").smart.status, SmartStatus::NotRun);

    let f = d("sde").findings();
    assert!(
        f.iter()
            .any(|f| f.level == Level::Critical && f.reason.contains("FAILED"))
    );
    assert!(f.iter().any(|f| f.reason.contains("Reallocated_Sector_Ct")));

    let f = d("nvme0n1").findings();
    assert!(
        f.iter()
            .any(|f| f.reason == "NVMe critical warning: available spare below threshold")
    );
    assert!(
        f.iter()
            .any(|f| f.reason == "NVMe: 103% of rated endurance used")
    );
    assert!(f.iter().all(|f| f.component == "disk nvme0n1"));

    let json = serde_json::to_value(&inv).unwrap();
    let sdb = json["disks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "sdb")
        .unwrap();
    assert_eq!(sdb["smart"]["status"], "standby");
}

#[test]
fn managed_probe_classifies_persists_and_profile_overrides() {
    let dir = generate::machine(small());
    let state = tempfile::tempdir().unwrap();
    // sda loses its rotational flag: a SATA disk of unknown kind, which the
    // probe may time. vda (virtio, rotational=1) is unknown too, but never
    // probed: its timing would be the hypervisor's storage.
    let sda = std::fs::canonicalize(dir.path().join("sys/block/sda")).unwrap();
    std::fs::remove_file(sda.join("queue/rotational")).unwrap();
    let opts = Options {
        mode: Mode::Managed,
        state_dir: Some(state.path().to_owned()),
        probe_opener: Some(Box::new(|p: &Path| {
            assert!(
                p.ends_with("dev/sda"),
                "only unknown, non-virtio disks are probed, got {}",
                p.display()
            );
            Ok(Box::new(FakeDevice::flash(1 << 40, 80)) as Box<dyn SeekDevice>)
        })),
        ..Options::default()
    };
    let inv = run(dir.path(), &opts);
    let sda = inv.disks.iter().find(|d| d.name == "sda").unwrap();
    assert_eq!(
        (sda.kind, sda.kind_source),
        (DiskKind::Ssd, KindSource::Probe)
    );
    let vda = inv.disks.iter().find(|d| d.name == "vda").unwrap();
    assert_eq!(vda.kind, DiskKind::Unknown);
    assert!(
        vda.kind_reason.contains("not seek-probed"),
        "{}",
        vda.kind_reason
    );
    assert!(state.path().join("disk-classes.json").exists());

    // Observe mode afterwards: no probe, but the persisted result stands.
    let observe = Options {
        state_dir: Some(state.path().to_owned()),
        ..Options::default()
    };
    let inv = run(dir.path(), &observe);
    let sda = inv.disks.iter().find(|d| d.name == "sda").unwrap();
    assert_eq!(
        (sda.kind, sda.kind_source),
        (DiskKind::Ssd, KindSource::Probe)
    );
    assert!(inv.capacity.sru_bytes >= sda.size_bytes.unwrap());

    // The board profile beats the probe.
    let cfg: DiskProfileConfig =
        serde_json::from_str(r#"{"by_serial": {"VIRT00007": "hdd"}}"#).unwrap();
    let profiled = Options {
        state_dir: Some(state.path().to_owned()),
        profile: DiskProfile::try_from(cfg).unwrap(),
        ..Options::default()
    };
    let inv = run(dir.path(), &profiled);
    let vda = inv.disks.iter().find(|d| d.name == "vda").unwrap();
    assert_eq!(
        (vda.kind, vda.kind_source),
        (DiskKind::Hdd, KindSource::Profile)
    );
}

#[test]
fn observe_mode_never_probes() {
    let dir = generate::machine(small());
    let opts = Options {
        probe_opener: Some(Box::new(|_: &Path| panic!("observe mode must not probe"))),
        ..Options::default()
    };
    let inv = run(dir.path(), &opts);
    let vda = inv.disks.iter().find(|d| d.name == "vda").unwrap();
    assert_eq!(vda.kind_source, KindSource::UntrustedRotational);
}

#[test]
fn owner_approval_makes_foreign_data_eligible() {
    let dir = generate::machine(small());
    // sde (i = 4) carries a GPT.
    let mut opts = Options::default();
    let inv = run(dir.path(), &opts);
    let sde = inv.disks.iter().find(|d| d.name == "sde").unwrap();
    assert!(sde.in_use && !sde.eligible);
    opts.approved_serials.insert(sde.serial.clone().unwrap());
    let inv = run(dir.path(), &opts);
    let sde = inv.disks.iter().find(|d| d.name == "sde").unwrap();
    assert!(sde.in_use && sde.approved && sde.eligible);
}

#[test]
fn mounts_swaps_partitions_and_mapper_names_mark_disks_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let b = dir.path();
    let w = |rel: &str, s: &str| {
        let p = b.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, s).unwrap();
    };
    w("sys/block/sda/size", "2097152\n");
    w("sys/block/sda/sda1/partition", "1\n");
    w("sys/block/sda/sda2/partition", "2\n");
    w("sys/block/sda/sda2/holders/dm-0", "");
    w("sys/block/sdb/size", "2097152\n");
    w("sys/block/sdb/sdb1/partition", "1\n");
    w("sys/block/dm-0/size", "1024\n");
    w("sys/block/dm-0/dm/name", "vg-root\n");
    w("sys/block/dm-0/slaves/sda2", "");
    w(
        "proc/self/mounts",
        "/dev/mapper/vg-root / ext4 rw 0 0\n/dev/sda1 /boot/my\\040efi vfat rw 0 0\ntmpfs /tmp tmpfs rw 0 0\n",
    );
    w(
        "proc/swaps",
        "Filename Type Size Used Priority\n/dev/sdb1 partition 1024 0 -2\n",
    );
    let inv = inventory::collect(&SysRoot::at(b).unwrap());
    let d = |n: &str| inv.disks.iter().find(|d| d.name == n).unwrap();
    assert_eq!(d("dm-0").mounts, ["/"]);
    assert_eq!(d("sda").mounts, ["/boot/my efi"]);
    assert_eq!(d("sda").partitions, ["sda1", "sda2"]);
    assert_eq!(d("sda").holders, ["dm-0"]);
    assert_eq!(d("sdb").mounts, ["swap (/dev/sdb1)"]);
    for n in ["sda", "sdb"] {
        assert!(d(n).in_use && !d(n).eligible, "{n}");
    }
    assert!(
        d("sda")
            .in_use_reasons
            .iter()
            .any(|r| r == "mounted: /boot/my efi")
    );
    assert!(d("sda").in_use_reasons.iter().any(|r| r == "used by dm-0"));
}
