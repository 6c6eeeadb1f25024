//! The inventory over real-machine captures (`shared/fixtures/sysfs`) and over a
//! generated machine: every value asserted here was read from the fixture files.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use nodus_agent::{
    disks::{DiskKind, KindSource, Transport},
    hal::SysRoot,
    inventory::{self, Inventory},
};

fn inv_at(dir: &std::path::Path) -> Inventory {
    inventory::collect(&SysRoot::at(dir).unwrap())
}

fn disk<'a>(inv: &'a Inventory, name: &str) -> &'a nodus_agent::disks::Disk {
    inv.disks
        .iter()
        .find(|d| d.name == name)
        .unwrap_or_else(|| panic!("no disk {name}"))
}

#[test]
fn procfs_tree_inventories_block_devices() {
    let dir = common::procfs();
    let inv = inv_at(dir.path());
    let names: Vec<&str> = inv.disks.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "dm-0", "dm-1", "dm-2", "md0", "md1", "md10", "md4", "md5", "md6", "md7", "md8", "sda",
            "sdb", "sdc", "sdd", "sde"
        ]
    );

    // sys/block/sda/size = 3750748848 sectors, queue/rotational = 1.
    let sda = disk(&inv, "sda");
    assert_eq!(sda.size_bytes, Some(3_750_748_848 * 512));
    assert_eq!(sda.rotational, Some(true));
    assert_eq!(sda.transport, Transport::Scsi);
    assert_eq!(
        (sda.kind, sda.kind_source),
        (DiskKind::Hdd, KindSource::Rotational)
    );
    // dm-0/slaves/sda: sda is held by the LVM volume.
    assert_eq!(sda.holders, ["dm-0"]);
    assert!(sda.in_use && !sda.eligible);

    // dm-1 (mpathA) is built on sdb and sdc; 104857600 sectors.
    let dm1 = disk(&inv, "dm-1");
    assert_eq!(dm1.transport, Transport::Dm);
    assert_eq!(dm1.size_bytes, Some(104_857_600 * 512));
    assert_eq!(dm1.members, ["sdb", "sdc"]);
    assert_eq!(disk(&inv, "sdc").holders, ["dm-1"]);

    for d in inv
        .disks
        .iter()
        .filter(|d| d.name.starts_with("md") || d.name.starts_with("dm-"))
    {
        assert!(!d.eligible, "{} must not be eligible", d.name);
        assert_eq!(d.kind_source, KindSource::Virtual, "{}", d.name);
    }
    // md10/md/dev-sd{u,v,w,x}.
    let mut m = disk(&inv, "md10").members.clone();
    m.sort();
    assert_eq!(m, ["sdu", "sdv", "sdw", "sdx"]);
    // The trimmed capture has no md sizes, no dm-0 size and no sdb..sde sizes:
    // listed as gaps, not errors.
    assert!(inv.gaps.0.iter().any(|g| g.what == "disk md0 size"));
    assert!(inv.gaps.0.iter().any(|g| g.what == "disk sdb size"));
    // No dev/ in the capture: contents unknown, so nothing is eligible.
    assert!(inv.disks.iter().all(|d| !d.eligible));

    // proc/cpuinfo: 8 × i7-8650U, physical id 0, core ids 0-3; sysfs topology
    // covers only cpu0-2, so cpuinfo is used. sys/devices/system/node: node1, node2.
    assert_eq!(inv.cpu.logical, Some(8));
    assert_eq!(inv.cpu.cores, Some(4));
    assert_eq!(inv.cpu.sockets, Some(1));
    assert_eq!(inv.cpu.threads_per_core, Some(2));
    assert_eq!(
        inv.cpu.model.as_deref(),
        Some("Intel(R) Core(TM) i7-8650U CPU @ 1.90GHz")
    );
    assert_eq!(inv.cpu.numa_nodes, Some(2));
    assert_eq!(inv.cpu.topology_source.as_deref(), Some("cpuinfo"));
    // MemTotal: 15666184 kB.
    assert_eq!(inv.memory.total_bytes, Some(15_666_184 * 1024));

    assert_eq!(inv.dmi.vendor.as_deref(), Some("Dell Inc."));
    assert_eq!(inv.dmi.product.as_deref(), Some("PowerEdge R6515"));
    assert_eq!(inv.dmi.serial.as_deref(), Some("7N62AI2"));
    assert_eq!(inv.dmi.board.name.as_deref(), Some("07PXPY"));
    assert_eq!(inv.dmi.bios.version.as_deref(), Some("2.2.4"));
    assert_eq!(inv.dmi.chassis.kind, Some(23));

    assert_eq!(inv.capacity.cru, 8);
    assert_eq!(inv.capacity.mru_bytes, 15_666_184 * 1024);
    assert_eq!((inv.capacity.sru_bytes, inv.capacity.hru_bytes), (0, 0));
    // The INVENTORY.md example: 8 CPUs keep 1; 14.9 GiB keeps the 2 GiB floor;
    // 7 CPUs and 12.9 GiB available make min(7, 3.23) CU.
    assert_eq!(inv.capacity.reserved.cru, 1);
    assert_eq!(inv.capacity.reserved.mru_bytes, 2 << 30);
    assert_eq!(inv.capacity.available.mru_bytes, 13_894_688_768);
    assert_eq!(inv.capacity.units.cu, 3.23);
}

#[test]
fn node_exporter_tree_dmi_matches_node_exporter() {
    let dir = common::node_exporter();
    let inv = inv_at(dir.path());
    // node_dmi_info in node-exporter-e2e-output.txt.
    let text = std::fs::read_to_string(common::fixtures_dir().join("node-exporter-e2e-output.txt"))
        .unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("node_dmi_info{"))
        .unwrap();
    let label = |k: &str| {
        let start = line.find(&format!("{k}=\"")).unwrap() + k.len() + 2;
        line[start..].split('"').next().unwrap().to_owned()
    };
    assert_eq!(inv.dmi.vendor, Some(label("system_vendor")));
    assert_eq!(inv.dmi.product, Some(label("product_name")));
    assert_eq!(inv.dmi.serial, Some(label("product_serial")));
    assert_eq!(inv.dmi.uuid, Some(label("product_uuid")));
    assert_eq!(inv.dmi.board.serial, Some(label("board_serial")));
    assert_eq!(inv.dmi.bios.date, Some(label("bios_date")));
    assert_eq!(inv.dmi.family, Some(label("product_family")));
    // sys/devices/system/cpu/online = 0-3.
    assert_eq!(inv.cpu.logical, Some(4));
    assert!(inv.disks.iter().any(|d| d.name == "sda"));
}

#[test]
fn json_has_the_contract_keys() {
    let dir = common::procfs();
    let v = serde_json::to_value(inv_at(dir.path())).unwrap();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    for k in [
        "dmi", "cpu", "memory", "disks", "nics", "sensors", "power", "capacity", "health", "gaps",
    ] {
        assert!(keys.contains(&k), "top-level {k}");
    }
    for d in v["disks"].as_array().unwrap() {
        for k in [
            "name",
            "size_bytes",
            "kind",
            "kind_source",
            "rotational",
            "transport",
            "model",
            "serial",
            "eligible",
            "in_use",
        ] {
            assert!(d.get(k).is_some(), "disk key {k} in {d}");
        }
    }
    for k in ["logical", "cores", "sockets", "model", "numa_nodes"] {
        assert!(v["cpu"].get(k).is_some(), "cpu {k}");
    }
    assert!(v["memory"].get("total_bytes").is_some());
    for k in ["cru", "mru_bytes", "sru_bytes", "hru_bytes", "reserved"] {
        assert!(v["capacity"].get(k).is_some(), "capacity {k}");
    }
    assert_eq!(v["disks"][11]["kind"], "hdd");
    assert_eq!(v["disks"][11]["transport"], "scsi");
}

#[test]
fn generated_machine_classifies_and_counts_capacity() {
    use common::generate::{self, GenDisk, Spec};
    let spec = Spec::default();
    let dir = generate::machine(spec);
    let inv = inv_at(dir.path());
    assert_eq!(inv.disks.len(), spec.disks);
    assert_eq!(inv.cpu.logical, Some(32));
    assert_eq!(inv.cpu.sockets, Some(2));
    assert_eq!(inv.cpu.cores, Some(16));
    assert_eq!(inv.cpu.topology_source.as_deref(), Some("sysfs"));
    let (mut sru, mut hru) = (0, 0);
    for i in 0..spec.disks {
        let d = disk(&inv, &generate::disk_name(i));
        assert_eq!(d.size_bytes, Some(generate::disk_size(i)));
        assert!(d.contents_checked, "{}", d.name);
        match generate::disk_kind(i) {
            GenDisk::AtaHdd => {
                assert_eq!((d.transport, d.kind), (Transport::Ata, DiskKind::Hdd));
                assert_eq!(d.serial.as_deref(), Some(format!("ATA{i:06}").as_str()));
                assert_eq!(d.serial_source.as_deref(), Some("device/vpd_pg80"));
                assert!(d.eligible, "{}: {:?}", d.name, d.ineligible_reasons);
                hru += d.size_bytes.unwrap();
            }
            GenDisk::AtaSsd => {
                assert_eq!(d.kind, DiskKind::Ssd);
                assert!(d.in_use && !d.eligible, "GPT on it");
                assert!(d.in_use_reasons.iter().any(|r| r.contains("GPT")));
            }
            GenDisk::Nvme => {
                assert_eq!(
                    (d.transport, d.kind, d.kind_source),
                    (Transport::Nvme, DiskKind::Nvme, KindSource::Transport)
                );
                assert_eq!(d.model.as_deref(), Some("Synthetic NVMe 2TB"));
                assert_eq!(d.serial.as_deref(), Some(format!("NVME{i:05}").as_str()));
                let t = d.temperature.as_ref().unwrap();
                assert_eq!((t.celsius, t.max), (Some(41.85), Some(84.85)));
                assert!(d.eligible);
                sru += d.size_bytes.unwrap();
            }
            GenDisk::Virtio => {
                assert_eq!(
                    (d.transport, d.kind, d.kind_source),
                    (
                        Transport::Virtio,
                        DiskKind::Unknown,
                        KindSource::UntrustedRotational
                    )
                );
                assert!(d.kind_reason.contains("virtio"));
                assert!(d.eligible);
                hru += d.size_bytes.unwrap();
            }
        }
    }
    assert_eq!(inv.capacity.sru_bytes, sru);
    assert_eq!(inv.capacity.hru_bytes, hru);
    assert!(inv.capacity.unclassified_bytes > 0);
}
