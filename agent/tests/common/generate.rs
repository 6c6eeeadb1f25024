//! Builds a synthetic machine tree (`sys/`, `proc/`, `dev/`) in a directory, laid
//! out like the kernel's: `sys/block/X` and `sys/class/*/X` are symlinks into
//! `sys/devices/...`, drivers are symlinks, `dev/X` is a sparse file of the disk's
//! size (so signature checks read real bytes).
//!
//! Shared by the integration tests (`common::generate`) and the bench (by
//! `#[path]`), each of which uses part of it.
#![allow(unreachable_pub, dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::{
    fs,
    os::unix::fs::symlink,
    path::{Path, PathBuf},
};

/// What to generate.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    /// Whole disks.
    pub disks: usize,
    /// Network interfaces.
    pub nics: usize,
    /// hwmon sensors (spread over chips of 10).
    pub sensors: usize,
    /// Logical CPUs.
    pub cpus: usize,
}

impl Default for Spec {
    fn default() -> Self {
        Self {
            disks: 64,
            nics: 16,
            sensors: 100,
            cpus: 32,
        }
    }
}

/// What kind of disk number `i` is: a fixed mix so every classification path runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GenDisk {
    /// SATA HDD (rotational=1), blank.
    AtaHdd,
    /// SATA SSD (rotational=0), with a GPT.
    AtaSsd,
    /// NVMe namespace, blank.
    Nvme,
    /// virtio-blk (rotational=1), blank.
    Virtio,
}

pub fn disk_kind(i: usize) -> GenDisk {
    match i % 8 {
        0..=3 => GenDisk::AtaHdd,
        4 | 5 => GenDisk::AtaSsd,
        6 => GenDisk::Nvme,
        _ => GenDisk::Virtio,
    }
}

/// Size of disk `i` in bytes (distinct per disk, 1–2 TiB).
pub fn disk_size(i: usize) -> u64 {
    (1u64 << 40) + (i as u64) * (1 << 30)
}

fn w(base: &Path, rel: &str, content: impl AsRef<[u8]>) {
    let p = base.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, content).unwrap();
}

fn ln(base: &Path, rel: &str, target: &str) {
    let p = base.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    symlink(target, p).unwrap();
}

fn sd_name(i: usize) -> String {
    // sda … sdz, sdaa …
    let mut n = i;
    let mut s = Vec::new();
    loop {
        s.push(b'a' + (n % 26) as u8);
        if n < 26 {
            break;
        }
        n = n / 26 - 1;
    }
    s.reverse();
    format!("sd{}", String::from_utf8(s).unwrap())
}

/// Kernel name of disk `i`.
pub fn disk_name(i: usize) -> String {
    match disk_kind(i) {
        GenDisk::Nvme => format!("nvme{}n1", i / 8),
        GenDisk::Virtio => format!("vd{}", (b'a' + (i / 8) as u8) as char),
        _ => sd_name(i),
    }
}

/// Writes the tree under `base` and returns it.
pub fn build(base: &Path, spec: Spec) -> PathBuf {
    // CPU, memory, DMI.
    let mut cpuinfo = String::new();
    for c in 0..spec.cpus {
        let (pkg, core) = (c / (spec.cpus / 2).max(1), (c % (spec.cpus / 2).max(1)) / 2);
        cpuinfo.push_str(&format!(
            "processor\t: {c}\nmodel name\t: Synthetic CPU 9000\nphysical id\t: {pkg}\ncore id\t\t: {core}\n\n"
        ));
        let t = format!("sys/devices/system/cpu/cpu{c}/topology");
        w(
            base,
            &format!("{t}/physical_package_id"),
            format!("{pkg}\n"),
        );
        w(base, &format!("{t}/core_id"), format!("{core}\n"));
    }
    w(base, "proc/cpuinfo", cpuinfo);
    w(
        base,
        "sys/devices/system/cpu/online",
        format!("0-{}\n", spec.cpus - 1),
    );
    w(base, "sys/devices/system/node/online", "0-1\n");
    w(
        base,
        "proc/meminfo",
        "MemTotal:       263856484 kB\nMemFree:  1000 kB\nSwapTotal: 0 kB\n",
    );
    for (f, v) in [
        ("sys_vendor", "Synthetic Inc."),
        ("product_name", "Rack 9000"),
        ("product_serial", "SYN-0001"),
        ("board_name", "SB-1"),
        ("bios_version", "1.2.3"),
        ("bios_date", "01/02/2025"),
        ("chassis_type", "23"),
    ] {
        w(base, &format!("sys/class/dmi/id/{f}"), format!("{v}\n"));
    }
    w(base, "proc/self/mounts", "proc /proc proc rw 0 0\n");
    w(base, "proc/swaps", "Filename\tType\tSize\tUsed\tPriority\n");

    // Disks.
    fs::create_dir_all(base.join("dev")).unwrap();
    for i in 0..spec.disks {
        let name = disk_name(i);
        let kind = disk_kind(i);
        let pci = format!("sys/devices/pci0000:00/0000:00:{:02x}.0", i % 32 + 1);
        let (devpath, dev_rel) = match kind {
            GenDisk::Nvme => {
                let ctrl = format!("nvme{}", i / 8);
                let ctrl_path = format!("{pci}/nvme/{ctrl}");
                w(base, &format!("{ctrl_path}/model"), "Synthetic NVMe 2TB\n");
                w(
                    base,
                    &format!("{ctrl_path}/serial"),
                    format!("NVME{i:05}\n"),
                );
                w(
                    base,
                    &format!("{ctrl_path}/hwmon{}/temp1_input", 100 + i),
                    "41850\n",
                );
                w(
                    base,
                    &format!("{ctrl_path}/hwmon{}/temp1_max", 100 + i),
                    "84850\n",
                );
                ln(
                    base,
                    &format!("sys/class/nvme/{ctrl}"),
                    &format!("../../../{ctrl_path}"),
                );
                (format!("{ctrl_path}/{name}"), "device".to_owned())
            }
            GenDisk::Virtio => (format!("{pci}/virtio{i}/block/{name}"), "device".to_owned()),
            _ => (
                format!("{pci}/ata{i}/host{i}/target{i}:0:0/{i}:0:0:0/block/{name}"),
                "device".to_owned(),
            ),
        };
        w(
            base,
            &format!("{devpath}/size"),
            format!("{}\n", disk_size(i) / 512),
        );
        let rot = matches!(kind, GenDisk::AtaHdd | GenDisk::Virtio) as u8;
        w(
            base,
            &format!("{devpath}/queue/rotational"),
            format!("{rot}\n"),
        );
        w(
            base,
            &format!("{devpath}/queue/logical_block_size"),
            "512\n",
        );
        w(base, &format!("{devpath}/removable"), "0\n");
        w(base, &format!("{devpath}/ro"), "0\n");
        w(base, &format!("{devpath}/dev"), format!("8:{}\n", i * 16));
        fs::create_dir_all(base.join(format!("{devpath}/holders"))).unwrap();
        match kind {
            GenDisk::Nvme => {
                // device → the controller directory.
                ln(base, &format!("{devpath}/{dev_rel}"), "..");
            }
            GenDisk::Virtio => {
                w(base, &format!("{devpath}/serial"), format!("VIRT{i:05}\n"));
                let d = devpath.rsplit_once("/block/").unwrap().0.to_owned();
                ln(
                    base,
                    &format!("{devpath}/{dev_rel}"),
                    &format!("../../../{}", d.rsplit('/').next().unwrap()),
                );
            }
            _ => {
                let scsi = devpath.rsplit_once("/block/").unwrap().0.to_owned();
                w(
                    base,
                    &format!("{scsi}/model"),
                    if kind == GenDisk::AtaHdd {
                        "WDC WD20EFRX\n"
                    } else {
                        "Samsung SSD 870\n"
                    },
                );
                w(base, &format!("{scsi}/vendor"), "ATA\n");
                w(base, &format!("{scsi}/vpd_pg80"), {
                    let s = format!("ATA{i:06}");
                    let mut v = vec![0u8, 0x80, 0, s.len() as u8];
                    v.extend_from_slice(s.as_bytes());
                    v
                });
                ln(base, &format!("{devpath}/{dev_rel}"), "../..");
            }
        }
        ln(
            base,
            &format!("sys/block/{name}"),
            &format!("../{}", devpath.trim_start_matches("sys/")),
        );
        let img = fs::File::create(base.join(format!("dev/{name}"))).unwrap();
        img.set_len(disk_size(i)).unwrap();
        if kind == GenDisk::AtaSsd {
            use std::os::unix::fs::FileExt;
            img.write_all_at(b"EFI PART", 512).unwrap();
        }
    }

    // NICs.
    for n in 0..spec.nics {
        let name = format!("enp{n}s0");
        let dev = format!(
            "sys/devices/pci0000:00/0000:00:1c.{}/0000:{:02x}:00.0",
            n % 8,
            n + 2
        );
        let p = format!("{dev}/net/{name}");
        w(
            base,
            &format!("{p}/address"),
            format!("52:54:00:00:00:{n:02x}\n"),
        );
        w(base, &format!("{p}/mtu"), "1500\n");
        w(
            base,
            &format!("{p}/operstate"),
            if n % 4 == 3 { "down\n" } else { "up\n" },
        );
        w(
            base,
            &format!("{p}/carrier"),
            if n % 4 == 3 { "0\n" } else { "1\n" },
        );
        w(base, &format!("{p}/speed"), "10000\n");
        w(base, &format!("{p}/duplex"), "full\n");
        w(base, &format!("{p}/ifindex"), format!("{}\n", n + 2));
        w(base, &format!("{p}/type"), "1\n");
        fs::create_dir_all(base.join("sys/bus/pci/drivers/ixgbe")).unwrap();
        ln(base, &format!("{p}/device"), "../../");
        ln(
            base,
            &format!("{dev}/driver"),
            "../../../../bus/pci/drivers/ixgbe",
        );
        ln(
            base,
            &format!("sys/class/net/{name}"),
            &format!("../../{}", p.trim_start_matches("sys/")),
        );
    }

    // hwmon: chips of 10 sensors (5 temps, 3 fans, 2 voltages).
    let chips = spec.sensors.div_ceil(10);
    for c in 0..chips {
        let dev = format!("sys/devices/platform/it87.{}", 656 + c);
        let h = format!("{dev}/hwmon/hwmon{c}");
        w(base, &format!("{h}/name"), "it8728\n");
        let mut left = (spec.sensors - c * 10).min(10);
        for t in 1..=5 {
            if left == 0 {
                break;
            }
            w(
                base,
                &format!("{h}/temp{t}_input"),
                format!("{}\n", 30000 + 1000 * t + c),
            );
            w(base, &format!("{h}/temp{t}_max"), "80000\n");
            w(base, &format!("{h}/temp{t}_crit"), "95000\n");
            w(base, &format!("{h}/temp{t}_label"), format!("Temp {t}\n"));
            left -= 1;
        }
        for f in 1..=3 {
            if left == 0 {
                break;
            }
            w(
                base,
                &format!("{h}/fan{f}_input"),
                format!("{}\n", 1200 + 10 * f),
            );
            w(base, &format!("{h}/fan{f}_min"), "300\n");
            left -= 1;
        }
        for v in 0..2 {
            if left == 0 {
                break;
            }
            w(base, &format!("{h}/in{v}_input"), format!("{}\n", 1200 + v));
            left -= 1;
        }
        ln(base, &format!("{h}/device"), "../../");
        ln(
            base,
            &format!("sys/class/hwmon/hwmon{c}"),
            &format!("../../{}", h.trim_start_matches("sys/")),
        );
    }
    base.to_path_buf()
}

/// A tree with `spec` in a new temporary directory.
pub fn machine(spec: Spec) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path(), spec);
    dir
}
