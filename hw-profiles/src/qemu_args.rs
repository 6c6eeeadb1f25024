//! Turns a profile into the machine part of a `qemu-system-x86_64` argv: CPU
//! topology, NUMA, memory, SMBIOS, disks and NICs. The harness (`nodus-qemu`) adds
//! the kernel, initramfs, serial console, QMP socket and network backends.

use std::path::{Path, PathBuf};

use crate::schema::{Bus, NicModel, Profile};

/// Where the harness keeps per-VM files.
#[derive(Debug, Clone)]
pub struct VmPaths {
    /// Directory holding one disk image per profile disk, named `<id>.qcow2`.
    pub disk_dir: PathBuf,
}

impl VmPaths {
    /// The image path of disk `id`.
    pub fn disk_image(&self, id: &str) -> PathBuf {
        self.disk_dir.join(format!("{id}.qcow2"))
    }
}

/// Escapes a value for QEMU's comma-separated option syntax (`,` is doubled).
fn esc(s: &str) -> String {
    s.replace(',', ",,")
}

fn path_str(p: &Path) -> String {
    esc(&p.display().to_string())
}

/// The machine argv for `profile`. NIC backends are named `net-<id>`; the harness
/// must define a `-netdev … ,id=net-<id>` for each NIC.
pub fn machine_args(profile: &Profile, paths: &VmPaths) -> Vec<String> {
    let p = &profile.raw;
    let m = &p.machine;
    let mut a: Vec<String> = Vec::new();
    fn push(a: &mut Vec<String>, x: &str, y: String) {
        a.push(x.to_owned());
        a.push(y);
    }
    // TCG only: KVM hangs on the build hosts (see the harness for the probe).
    push(&mut a, "-machine", "q35,accel=tcg".into());
    push(&mut a, "-cpu", "max".into());
    push(
        &mut a,
        "-smp",
        format!(
            "cpus={},sockets={},cores={},threads=1",
            m.cpus,
            m.sockets,
            m.cpus / m.sockets
        ),
    );
    push(&mut a, "-m", format!("{}M", m.memory_mib));
    if m.numa_nodes > 1 {
        let per_node_cpus = m.cpus / m.numa_nodes;
        let per_node_mem = m.memory_mib / u64::from(m.numa_nodes);
        for n in 0..m.numa_nodes {
            push(
                &mut a,
                "-object",
                format!("memory-backend-ram,id=mem{n},size={per_node_mem}M"),
            );
            let first = n * per_node_cpus;
            push(
                &mut a,
                "-numa",
                format!(
                    "node,nodeid={n},cpus={first}-{},memdev=mem{n}",
                    first + per_node_cpus - 1
                ),
            );
        }
    }
    let d = &p.dmi;
    push(
        &mut a,
        "-smbios",
        format!(
            "type=0,vendor={},version={}",
            esc(&d.vendor),
            esc(&d.bios_version)
        ),
    );
    push(
        &mut a,
        "-smbios",
        format!(
            "type=1,manufacturer={},product={},serial={}",
            esc(&d.vendor),
            esc(&d.product),
            esc(&d.serial)
        ),
    );
    push(
        &mut a,
        "-smbios",
        format!(
            "type=2,manufacturer={},product={}",
            esc(&d.vendor),
            esc(&d.board)
        ),
    );

    let mut have_scsi = false;
    let mut next_port = 0u32;
    for (i, disk) in p.disks.iter().enumerate() {
        let img = path_str(&paths.disk_image(&disk.id));
        let drive = format!("drive-{}", disk.id);
        push(
            &mut a,
            "-drive",
            format!("if=none,id={drive},file={img},format=qcow2,cache=unsafe"),
        );
        let model = esc(&disk.model);
        let serial = esc(&disk.serial);
        let dev = match disk.bus {
            // q35's built-in AHCI has six ports: ide.0 … ide.5.
            Bus::Sata => format!(
                "ide-hd,drive={drive},bus=ide.{},model={model},serial={serial},rotation_rate={},id=disk-{}",
                sata_port(p, i),
                disk.rotation_rate,
                disk.id
            ),
            Bus::Scsi => {
                if !have_scsi {
                    have_scsi = true;
                    push(&mut a, "-device", "virtio-scsi-pci,id=scsi0".into());
                }
                format!(
                    "scsi-hd,drive={drive},bus=scsi0.0,product={model},serial={serial},rotation_rate={},id=disk-{}",
                    disk.rotation_rate, disk.id
                )
            }
            // PCIe disks sit behind a root port of their own: q35's root bus cannot
            // hot-unplug, and `device_del` (the harness's disk failure) needs it.
            Bus::Nvme => {
                let port = root_port(&mut a, &mut next_port, &disk.id);
                format!(
                    "nvme,drive={drive},serial={serial},bus={port},id=disk-{}",
                    disk.id
                )
            }
            Bus::Virtio => {
                let port = root_port(&mut a, &mut next_port, &disk.id);
                format!(
                    "virtio-blk-pci,drive={drive},serial={serial},bus={port},id=disk-{}",
                    disk.id
                )
            }
        };
        push(&mut a, "-device", dev);
    }
    for nic in &p.nics {
        let model = match nic.model {
            NicModel::Virtio => "virtio-net-pci",
            NicModel::E1000e => "e1000e",
        };
        let mut dev = format!(
            "{model},netdev=net-{id},mac={mac},id=nic-{id}",
            id = nic.id,
            mac = nic.mac
        );
        // virtio-net reports a configured speed to the guest (ethtool, sysfs
        // `speed`); e1000e always reports what its PHY model negotiates.
        if let (NicModel::Virtio, Some(speed)) = (nic.model, nic.speed_mbps) {
            dev.push_str(&format!(",speed={speed},duplex=full"));
        }
        push(&mut a, "-device", dev);
    }
    a
}

/// Adds a `pcie-root-port` for disk `id` and returns its id. Chassis/slot numbers
/// only need to be unique per port.
fn root_port(a: &mut Vec<String>, next: &mut u32, id: &str) -> String {
    *next += 1;
    let port = format!("rp-{id}");
    a.push("-device".to_owned());
    a.push(format!(
        "pcie-root-port,id={port},chassis={n},slot={n}",
        n = *next
    ));
    port
}

/// The AHCI port of SATA disk `index`: SATA disks take ports in profile order.
fn sata_port(p: &crate::schema::RawProfile, index: usize) -> usize {
    p.disks[..index]
        .iter()
        .filter(|d| d.bus == Bus::Sata)
        .count()
}

/// Kernel command-line arguments that set up the profile's I2C chips in the guest:
/// `i2c_stub` with the chip addresses, and one `nodus.i2c=` entry per chip,
/// `<chip>@<bus>:0x<addr>:<reg>=<value>/…[:shunt=<ohms>]` (hex registers and
/// values), from which the `nodus` init seeds the stub's registers and tells the
/// agent which chips to read (`nodus_agent::boot::i2c`). `bus` is the profile's
/// bus index: the init maps bus k to the k-th i2c-stub adapter.
pub fn i2c_kernel_args(profile: &Profile) -> Vec<String> {
    if profile.raw.i2c.is_empty() {
        return Vec::new();
    }
    let addrs: Vec<String> = profile
        .raw
        .i2c
        .iter()
        .map(|c| format!("0x{:02x}", c.address))
        .collect();
    let mut args = vec![format!("i2c_stub.chip_addr={}", addrs.join(","))];
    for (c, regs) in profile.raw.i2c.iter().zip(&profile.i2c_registers) {
        let regs: Vec<String> = regs
            .iter()
            .map(|(r, v)| format!("{r:02x}={v:04x}"))
            .collect();
        let mut entry = format!(
            "nodus.i2c={}@{}:0x{:02x}:{}",
            serde_plain(c.chip),
            c.bus,
            c.address,
            regs.join("/")
        );
        if let Some(ohms) = c.shunt_ohms {
            entry.push_str(&format!(":shunt={ohms}"));
        }
        args.push(entry);
    }
    args
}

fn serde_plain(chip: crate::schema::Chip) -> &'static str {
    use crate::schema::Chip;
    match chip {
        Chip::Lm75 => "lm75",
        Chip::Tmp102 => "tmp102",
        Chip::Ina219 => "ina219",
        Chip::Ina226 => "ina226",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: &str = r#"
name = "t"
description = "d"
[machine]
cpus = 4
sockets = 2
memory_mib = 2048
numa_nodes = 2
[dmi]
vendor = "Acme, Inc."
product = "Box"
serial = "S1"
board = "B1"
bios_version = "1.0"
[[disks]]
id = "a"
bus = "sata"
size_gib = 1
rotation_rate = 7200
model = "HDD"
serial = "SA"
[[disks]]
id = "b"
bus = "nvme"
size_gib = 1
serial = "SB"
[[disks]]
id = "c"
bus = "sata"
size_gib = 1
rotation_rate = 1
serial = "SC"
[[nics]]
id = "n0"
model = "e1000e"
mac = "52:54:00:00:00:01"
[expect]
"#;

    #[test]
    fn argv_has_tcg_topology_numa_smbios_and_devices() {
        let p = Profile::from_toml(P, "t").unwrap();
        let a = machine_args(
            &p,
            &VmPaths {
                disk_dir: "/tmp/vm".into(),
            },
        );
        let joined = a.join(" ");
        assert!(joined.contains("-machine q35,accel=tcg"));
        assert!(joined.contains("cpus=4,sockets=2,cores=2"));
        assert!(joined.contains("node,nodeid=1,cpus=2-3,memdev=mem1"));
        // The comma in the vendor name is escaped for QEMU's option parser.
        assert!(joined.contains("manufacturer=Acme,, Inc."));
        assert!(joined.contains("ide-hd,drive=drive-a,bus=ide.0"));
        assert!(joined.contains("rotation_rate=7200"));
        // The second SATA disk takes the second port even with an NVMe between.
        assert!(joined.contains("ide-hd,drive=drive-c,bus=ide.1"));
        assert!(joined.contains("nvme,drive=drive-b,serial=SB,bus=rp-b"));
        assert!(joined.contains("pcie-root-port,id=rp-b,chassis=1,slot=1"));
        assert!(joined.contains("e1000e,netdev=net-n0,mac=52:54:00:00:00:01"));
        assert!(joined.contains("file=/tmp/vm/a.qcow2"));
    }

    #[test]
    fn i2c_entries_carry_registers_and_shunt() {
        let p = Profile::load(&crate::bundled_dir().join("i2c-sensor-board.toml")).unwrap();
        assert_eq!(
            i2c_kernel_args(&p),
            [
                "i2c_stub.chip_addr=0x48,0x40",
                "nodus.i2c=lm75@0:0x48:00=1a80/02=4b00/03=5000",
                "nodus.i2c=ina219@0:0x40:00=399f/01=0fa0/02=5d98:shunt=0.1",
            ]
        );
    }
}
