//! Renders a profile into a fake `sys/` + `proc/` tree laid out as a Linux 6.x guest
//! under QEMU q35 would show it, so the agent's hardware layer can be tested against
//! every profile without booting anything.
//!
//! The layout follows the kernel's real one, symlinks included: `sys/block/sda` points
//! into `sys/devices/pci0000:00/…/ata1/host0/target0:0:0/0:0:0:0/block/sda`, so a
//! reader that derives the transport from the device path sees what it would see on
//! the guest. Values the guest kernel would invent (dev numbers, ifindex) are
//! deterministic functions of the profile.

use std::{
    fmt::Write as _,
    fs, io,
    os::unix::fs::symlink,
    path::{Path, PathBuf},
};

use crate::schema::{Bus, Chip, Link, NicModel, Profile};

/// Why rendering failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RenderError {
    /// Writing the tree failed.
    #[error("Cannot write fake sysfs at {path}")]
    Io {
        /// The file being written.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

/// Fraction of configured memory a guest kernel reports as MemTotal: the rest goes
/// to the kernel image, page tables and firmware reservations.
const MEMTOTAL_PERCENT: u64 = 97;

/// The PCI slot of the AHCI controller on q35 (00:1f.2), where SATA disks hang.
const AHCI_PCI: &str = "0000:00:1f.2";

struct Tree<'a> {
    root: &'a Path,
}

impl Tree<'_> {
    fn write(&self, rel: &str, content: impl AsRef<[u8]>) -> Result<(), RenderError> {
        let path = self.root.join(rel);
        let io = |source| RenderError::Io {
            path: path.clone(),
            source,
        };
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(io)?;
        }
        fs::write(&path, content).map_err(io)
    }

    fn line(&self, rel: &str, value: impl std::fmt::Display) -> Result<(), RenderError> {
        self.write(rel, format!("{value}\n"))
    }

    fn mkdir(&self, rel: &str) -> Result<(), RenderError> {
        let path = self.root.join(rel);
        fs::create_dir_all(&path).map_err(|source| RenderError::Io { path, source })
    }

    /// Creates `link` (relative to the root) pointing at `target` (relative to the
    /// root), using a relative link target as sysfs does.
    fn link(&self, link: &str, target: &str) -> Result<(), RenderError> {
        let path = self.root.join(link);
        let io = |source| RenderError::Io {
            path: path.clone(),
            source,
        };
        let parent = path.parent().unwrap_or(self.root);
        fs::create_dir_all(parent).map_err(io)?;
        let depth = Path::new(link).components().count().saturating_sub(1);
        let rel_target = format!("{}{}", "../".repeat(depth), target);
        let _ = fs::remove_file(&path);
        symlink(rel_target, &path).map_err(io)
    }
}

/// Disk names the guest kernel would give, in profile order.
pub fn disk_names(profile: &Profile) -> Vec<String> {
    let (mut sd, mut vd, mut nvme) = (0u32, 0u32, 0u32);
    profile
        .raw
        .disks
        .iter()
        .map(|d| match d.bus {
            Bus::Sata | Bus::Scsi => {
                let n = letters(sd);
                sd += 1;
                format!("sd{n}")
            }
            Bus::Virtio => {
                let n = letters(vd);
                vd += 1;
                format!("vd{n}")
            }
            Bus::Nvme => {
                let n = nvme;
                nvme += 1;
                format!("nvme{n}n1")
            }
        })
        .collect()
}

/// `a`, `b`, …, `z`, `aa`, `ab`, … as the sd driver names disks.
fn letters(mut i: u32) -> String {
    let mut out = Vec::new();
    loop {
        out.push(b'a' + (i % 26) as u8);
        if i < 26 {
            break;
        }
        i = i / 26 - 1;
    }
    out.reverse();
    String::from_utf8_lossy(&out).into_owned()
}

/// Interface names a guest without udev renaming uses: eth0, eth1, … in order.
pub fn nic_names(profile: &Profile) -> Vec<String> {
    (0..profile.raw.nics.len())
        .map(|i| format!("eth{i}"))
        .collect()
}

/// Renders `profile` under `root` (which must exist and should be empty).
pub fn render(profile: &Profile, root: &Path) -> Result<(), RenderError> {
    let t = Tree { root };
    dmi(profile, &t)?;
    cpus(profile, &t)?;
    disks(profile, &t)?;
    nics(profile, &t)?;
    i2c(profile, &t)?;
    Ok(())
}

fn dmi(p: &Profile, t: &Tree<'_>) -> Result<(), RenderError> {
    let d = &p.raw.dmi;
    let base = "sys/devices/virtual/dmi/id";
    for (file, value) in [
        ("sys_vendor", &d.vendor),
        ("product_name", &d.product),
        ("product_serial", &d.serial),
        ("board_name", &d.board),
        ("board_vendor", &d.vendor),
        ("bios_version", &d.bios_version),
        ("bios_vendor", &d.vendor),
    ] {
        t.line(&format!("{base}/{file}"), value)?;
    }
    t.link("sys/class/dmi/id", base)
}

fn cpus(p: &Profile, t: &Tree<'_>) -> Result<(), RenderError> {
    let m = &p.raw.machine;
    let per_socket = m.cpus / m.sockets;
    let per_node = m.cpus / m.numa_nodes;
    let last = m.cpus - 1;
    t.line("sys/devices/system/cpu/online", format!("0-{last}"))?;
    t.line("sys/devices/system/cpu/present", format!("0-{last}"))?;
    t.line("sys/devices/system/cpu/possible", format!("0-{last}"))?;
    let mut cpuinfo = String::new();
    for cpu in 0..m.cpus {
        let socket = cpu / per_socket;
        let core = cpu % per_socket;
        let dir = format!("sys/devices/system/cpu/cpu{cpu}");
        t.line(&format!("{dir}/topology/physical_package_id"), socket)?;
        t.line(&format!("{dir}/topology/core_id"), core)?;
        t.line(&format!("{dir}/topology/thread_siblings_list"), cpu)?;
        let first = socket * per_socket;
        t.line(
            &format!("{dir}/topology/core_siblings_list"),
            format!("{first}-{}", first + per_socket - 1),
        )?;
        t.line(&format!("{dir}/online"), 1)?;
        let _ = write!(
            cpuinfo,
            "processor\t: {cpu}\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 85\n\
             model name\t: QEMU Virtual CPU version 2.5+\nphysical id\t: {socket}\n\
             siblings\t: {per_socket}\ncore id\t\t: {core}\ncpu cores\t: {per_socket}\n\
             flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep lm\n\n"
        );
    }
    t.write("proc/cpuinfo", cpuinfo)?;
    let node_mem_kib = m.memory_mib * 1024 / u64::from(m.numa_nodes);
    for node in 0..m.numa_nodes {
        let first = node * per_node;
        let dir = format!("sys/devices/system/node/node{node}");
        t.line(
            &format!("{dir}/cpulist"),
            format!("{first}-{}", first + per_node - 1),
        )?;
        t.write(
            &format!("{dir}/meminfo"),
            format!("Node {node} MemTotal:       {node_mem_kib} kB\n"),
        )?;
    }
    t.line(
        "sys/devices/system/node/online",
        format!("0-{}", m.numa_nodes - 1),
    )?;
    let total_kib = m.memory_mib * 1024 * MEMTOTAL_PERCENT / 100;
    t.write(
        "proc/meminfo",
        format!(
            "MemTotal:       {total_kib} kB\nMemFree:        {} kB\nMemAvailable:   {} kB\n\
             Buffers:               0 kB\nCached:                0 kB\nSwapTotal:             0 kB\n",
            total_kib * 9 / 10,
            total_kib * 9 / 10
        ),
    )?;
    // An empty mount table: a freshly booted node has nothing of the disks mounted.
    t.write(
        "proc/self/mounts",
        "proc /proc proc rw 0 0\nsysfs /sys sysfs rw 0 0\n",
    )
}

/// The 0x80 VPD page (unit serial number) as the kernel exposes it: a 4-byte header
/// then the ASCII serial (SPC-5 §7.7.16).
fn vpd_pg80(serial: &str) -> Vec<u8> {
    let mut v = vec![0x00, 0x80, 0x00, serial.len().min(255) as u8];
    v.extend_from_slice(&serial.as_bytes()[..serial.len().min(255)]);
    v
}

/// The 0xB1 VPD page (Block Device Characteristics, SBC-4 §6.6.2) as the kernel
/// exposes it in `vpd_pgb1`: bytes 4–5 hold the medium rotation rate (0 = not
/// reported, 1 = non-rotating, otherwise rpm). QEMU's SCSI and ATA emulation fill it
/// from the `rotation_rate` property.
fn vpd_pgb1(rotation_rate: u32) -> Vec<u8> {
    let mut v = vec![0u8; 64];
    v[1] = 0xb1;
    v[3] = 0x3c;
    let rate = u16::try_from(rotation_rate).unwrap_or(u16::MAX);
    v[4..6].copy_from_slice(&rate.to_be_bytes());
    v
}

/// Creates `dev/<name>` as a sparse, zero-filled file of the disk's size: a blank
/// disk, as a fresh qcow2 image looks to the guest.
fn blank_device(t: &Tree<'_>, name: &str, bytes: u64) -> Result<(), RenderError> {
    let path = t.root.join("dev").join(name);
    let io = |source| RenderError::Io {
        path: path.clone(),
        source,
    };
    fs::create_dir_all(t.root.join("dev")).map_err(io)?;
    let f = fs::File::create(&path).map_err(io)?;
    f.set_len(bytes).map_err(io)
}

fn disks(p: &Profile, t: &Tree<'_>) -> Result<(), RenderError> {
    let names = disk_names(p);
    let (mut scsi_host, mut nvme_ctrl, mut virtio_dev) = (0u32, 0u32, 0u32);
    let mut pci_slot = 3u32;
    for (i, (d, name)) in p.raw.disks.iter().zip(&names).enumerate() {
        let sectors = d.size_gib * 1024 * 1024 * 2;
        let rotational = match d.bus {
            Bus::Nvme => 0,
            Bus::Virtio => 1, // virtio-blk always reports 1; the point of the profile.
            Bus::Sata | Bus::Scsi => u8::from(d.rotation_rate != 1),
        };
        let (dev_dir, block_dir) = match d.bus {
            Bus::Sata => {
                let h = scsi_host;
                scsi_host += 1;
                let dev = format!(
                    "sys/devices/pci0000:00/{AHCI_PCI}/ata{}/host{h}/target{h}:0:0/{h}:0:0:0",
                    i + 1
                );
                t.line(&format!("{dev}/vendor"), "ATA     ")?;
                t.line(&format!("{dev}/model"), &d.model)?;
                t.write(&format!("{dev}/vpd_pg80"), vpd_pg80(&d.serial))?;
                t.write(&format!("{dev}/vpd_pgb1"), vpd_pgb1(d.rotation_rate))?;
                t.line(
                    &format!("{dev}/wwid"),
                    format!("t10.ATA     {:<40}{}", d.model, d.serial),
                )?;
                t.line(&format!("sys/class/scsi_host/host{h}/proc_name"), "ahci")?;
                let block = format!("{dev}/block/{name}");
                (dev, block)
            }
            Bus::Scsi => {
                let h = scsi_host;
                scsi_host += 1;
                let slot = pci_slot;
                pci_slot += 1;
                let dev = format!(
                    "sys/devices/pci0000:00/0000:00:{slot:02x}.0/virtio{virtio_dev}/host{h}/target{h}:0:0/{h}:0:0:0"
                );
                virtio_dev += 1;
                t.line(&format!("{dev}/vendor"), "QEMU    ")?;
                t.line(&format!("{dev}/model"), &d.model)?;
                t.write(&format!("{dev}/vpd_pg80"), vpd_pg80(&d.serial))?;
                t.line(
                    &format!("sys/class/scsi_host/host{h}/proc_name"),
                    "virtio_scsi",
                )?;
                let block = format!("{dev}/block/{name}");
                (dev, block)
            }
            Bus::Nvme => {
                let c = nvme_ctrl;
                nvme_ctrl += 1;
                let slot = pci_slot;
                pci_slot += 1;
                let ctrl = format!("sys/devices/pci0000:00/0000:00:{slot:02x}.0/nvme/nvme{c}");
                t.line(&format!("{ctrl}/model"), &d.model)?;
                t.line(&format!("{ctrl}/serial"), &d.serial)?;
                t.line(&format!("{ctrl}/firmware_rev"), "1.0")?;
                t.line(&format!("{ctrl}/transport"), "pcie")?;
                t.link(&format!("sys/class/nvme/nvme{c}"), &ctrl)?;
                let block = format!("{ctrl}/{name}");
                t.line(
                    &format!("{block}/wwid"),
                    format!("nvme.1b36-{}-{}-00000001", hex(&d.serial), hex(&d.model)),
                )?;
                (ctrl, block)
            }
            Bus::Virtio => {
                let slot = pci_slot;
                pci_slot += 1;
                let dev = format!("sys/devices/pci0000:00/0000:00:{slot:02x}.0/virtio{virtio_dev}");
                virtio_dev += 1;
                t.line(&format!("{dev}/vendor"), "0x1af4")?;
                t.line(&format!("{dev}/device"), "0x0002")?;
                let block = format!("{dev}/block/{name}");
                t.line(&format!("{block}/serial"), &d.serial)?;
                (dev, block)
            }
        };
        t.line(&format!("{block_dir}/size"), sectors)?;
        blank_device(t, name, sectors * 512)?;
        t.line(&format!("{block_dir}/queue/rotational"), rotational)?;
        t.line(&format!("{block_dir}/queue/logical_block_size"), 512)?;
        t.line(&format!("{block_dir}/queue/physical_block_size"), 512)?;
        t.line(&format!("{block_dir}/removable"), 0)?;
        t.line(&format!("{block_dir}/ro"), 0)?;
        let major = match d.bus {
            Bus::Sata | Bus::Scsi => 8,
            Bus::Virtio => 253,
            Bus::Nvme => 259,
        };
        t.line(&format!("{block_dir}/dev"), format!("{major}:{}", i * 16))?;
        t.line(
            &format!("{block_dir}/stat"),
            "0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0",
        )?;
        t.mkdir(&format!("{block_dir}/holders"))?;
        t.link(&format!("{block_dir}/device"), &dev_dir)?;
        t.link(&format!("sys/block/{name}"), &block_dir)?;
        t.link(&format!("sys/class/block/{name}"), &block_dir)?;
    }
    Ok(())
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

fn nics(p: &Profile, t: &Tree<'_>) -> Result<(), RenderError> {
    let lo = "sys/devices/virtual/net/lo";
    for (f, v) in [
        ("address", "00:00:00:00:00:00"),
        ("mtu", "65536"),
        ("operstate", "unknown"),
        ("carrier", "1"),
        ("type", "772"),
        ("ifindex", "1"),
    ] {
        t.line(&format!("{lo}/{f}"), v)?;
    }
    t.link("sys/class/net/lo", lo)?;
    for (i, (n, name)) in p.raw.nics.iter().zip(nic_names(p)).enumerate() {
        let slot = 0x10 + i as u32;
        let pci = format!("sys/devices/pci0000:00/0000:00:{slot:02x}.0");
        let (dev, driver, netdir) = match n.model {
            NicModel::Virtio => {
                let dev = format!("{pci}/virtio{}", 100 + i);
                let netdir = format!("{dev}/net/{name}");
                (dev, "virtio_net", netdir)
            }
            NicModel::E1000e => {
                let netdir = format!("{pci}/net/{name}");
                (pci.clone(), "e1000e", netdir)
            }
        };
        t.line(&format!("{dev}/uevent"), format!("DRIVER={driver}"))?;
        t.mkdir(&format!("sys/bus/pci/drivers/{driver}"))?;
        t.link(
            &format!("{dev}/driver"),
            &format!("sys/bus/pci/drivers/{driver}"),
        )?;
        let up = n.link == Link::Up;
        t.line(&format!("{netdir}/address"), n.mac.to_ascii_lowercase())?;
        t.line(&format!("{netdir}/mtu"), 1500)?;
        t.line(
            &format!("{netdir}/operstate"),
            if up { "up" } else { "down" },
        )?;
        t.line(&format!("{netdir}/carrier"), u8::from(up))?;
        t.line(&format!("{netdir}/type"), 1)?;
        t.line(&format!("{netdir}/ifindex"), i + 2)?;
        match (up, n.speed_mbps) {
            (true, Some(s)) => {
                t.line(&format!("{netdir}/speed"), s)?;
                t.line(&format!("{netdir}/duplex"), "full")?;
            }
            // The kernel reports -1 / unknown when there is no link or no speed.
            _ => {
                t.line(&format!("{netdir}/speed"), -1)?;
                t.line(&format!("{netdir}/duplex"), "unknown")?;
            }
        }
        for stat in ["rx_bytes", "tx_bytes", "rx_packets", "tx_packets"] {
            t.line(&format!("{netdir}/statistics/{stat}"), 0)?;
        }
        t.link(&format!("{netdir}/device"), &dev)?;
        t.link(&format!("sys/class/net/{name}"), &netdir)?;
    }
    Ok(())
}

/// Reading of a 16-bit big-endian register pair as the chip's kernel driver would
/// report it through hwmon (milli-units), or `None` when the register is unset.
fn i2c(p: &Profile, t: &Tree<'_>) -> Result<(), RenderError> {
    for (idx, (c, regs)) in p.raw.i2c.iter().zip(&p.i2c_registers).enumerate() {
        let dev = format!(
            "sys/devices/platform/i2c-stub/i2c-{bus}/{bus}-{addr:04x}",
            bus = c.bus,
            addr = c.address
        );
        let hw = format!("{dev}/hwmon/hwmon{}", 10 + idx);
        let name = match c.chip {
            Chip::Lm75 => "lm75",
            Chip::Tmp102 => "tmp102",
            Chip::Ina219 => "ina219",
            Chip::Ina226 => "ina226",
        };
        t.line(&format!("{dev}/name"), name)?;
        t.line(&format!("{hw}/name"), name)?;
        let reg = |r: u8| regs.get(&r).copied();
        match c.chip {
            // LM75: register 0 is temperature, 9 significant bits, 0.5 °C LSB,
            // left-aligned in 16 bits (datasheet table 7): °C = i16 / 256.
            Chip::Lm75 => {
                if let Some(v) = reg(0) {
                    t.line(
                        &format!("{hw}/temp1_input"),
                        i32::from(v as i16) * 1000 / 256,
                    )?;
                }
                t.line(&format!("{hw}/temp1_max"), 80_000)?;
                t.line(&format!("{hw}/temp1_max_hyst"), 75_000)?;
            }
            // TMP102: 12-bit, 0.0625 °C LSB, left-aligned (datasheet §7.5.1).
            Chip::Tmp102 => {
                if let Some(v) = reg(0) {
                    t.line(
                        &format!("{hw}/temp1_input"),
                        i32::from((v as i16) >> 4) * 625 / 10,
                    )?;
                }
            }
            // INA219: bus voltage register 2, bits 15..3, 4 mV LSB; shunt register 1,
            // 10 µV LSB (datasheet §8.6.3).
            Chip::Ina219 => {
                if let Some(v) = reg(2) {
                    t.line(&format!("{hw}/in1_input"), i32::from(v >> 3) * 4)?;
                }
                if let Some(v) = reg(1) {
                    t.line(&format!("{hw}/in0_input"), i32::from(v as i16) / 100)?;
                }
            }
            // INA226: bus voltage register 2, 1.25 mV LSB; shunt register 1, 2.5 µV LSB.
            Chip::Ina226 => {
                if let Some(v) = reg(2) {
                    t.line(&format!("{hw}/in1_input"), u32::from(v) * 125 / 100)?;
                }
                if let Some(v) = reg(1) {
                    t.line(
                        &format!("{hw}/in0_input"),
                        i32::from(v as i16) * 25 / 10_000,
                    )?;
                }
            }
        }
        // The kernel's ina2xx driver derives current and power from the shunt
        // voltage and its `shunt_resistor` (µΩ): curr1 in mA, power1 in µW.
        let lsb = match c.chip {
            // (shunt µV, bus mV) per LSB, as above.
            Chip::Ina219 => Some((10.0, 4.0, 3)),
            Chip::Ina226 => Some((2.5, 1.25, 0)),
            Chip::Lm75 | Chip::Tmp102 => None,
        };
        if let (Some((shunt_lsb, bus_lsb, bus_shift)), Some(ohms), Some(shunt), Some(bus)) =
            (lsb, c.shunt_ohms, reg(1), reg(2))
        {
            let shunt_uv = f64::from(shunt as i16) * shunt_lsb;
            let bus_mv = f64::from(bus >> bus_shift) * bus_lsb;
            let ma = shunt_uv / ohms / 1000.0;
            t.line(&format!("{hw}/shunt_resistor"), (ohms * 1e6).round())?;
            t.line(&format!("{hw}/curr1_input"), ma.round())?;
            t.line(&format!("{hw}/power1_input"), (ma * bus_mv).round())?;
        }
        t.link(&format!("{hw}/device"), &dev)?;
        t.link(&format!("sys/class/hwmon/hwmon{}", 10 + idx), &hw)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sd_names_follow_the_kernel() {
        assert_eq!(letters(0), "a");
        assert_eq!(letters(25), "z");
        assert_eq!(letters(26), "aa");
        assert_eq!(letters(27), "ab");
        assert_eq!(letters(701), "zz");
        assert_eq!(letters(702), "aaa");
    }

    #[test]
    fn vpd_b1_carries_the_rotation_rate() {
        let p = vpd_pgb1(7200);
        assert_eq!((p[1], u16::from_be_bytes([p[4], p[5]])), (0xb1, 7200));
        assert_eq!(u16::from_be_bytes([vpd_pgb1(1)[4], vpd_pgb1(1)[5]]), 1);
    }

    #[test]
    fn vpd_page_has_header_and_serial() {
        assert_eq!(vpd_pg80("AB"), vec![0, 0x80, 0, 2, b'A', b'B']);
    }
}
