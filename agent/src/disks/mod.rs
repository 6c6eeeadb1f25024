//! Disks, read from sysfs (not udev, which minimal OSes lack): identity, transport,
//! kind, what they hold, whether a pool may take them, and SMART health.
//!
//! The principal type is [`Disk`]. [`collect`] reads every whole block device under
//! `sys/block`; the kind decision is in [`classify`], the first/last-sector checks in
//! [`signature`], the managed-mode seek probe in [`probe`], SMART in
//! [`crate::smart`].
//!
//! A disk is **eligible** for a pool only when it is a real, writable, fixed disk
//! whose contents were checked and hold nothing (or hold foreign data the owner
//! approved wiping) and which nothing is using. Anything else is listed, with the
//! reasons.

pub mod classify;
pub mod probe;
pub mod signature;
mod usage;

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

pub use classify::{DiskKind, DiskProfile, DiskProfileConfig, KindSource};
use signature::{Scan, Signature};

use crate::{
    hal::{Gaps, ReadError, SysRoot},
    health::{Finding, Level},
    inventory::{Mode, Options},
    smart::{ExitBits, NvmeWarnings, Smart, SmartStatus},
};

/// How a disk is attached. JSON names are part of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    /// NVMe (PCIe or fabrics).
    Nvme,
    /// SATA/PATA through libata.
    Ata,
    /// Serial-attached SCSI.
    Sas,
    /// Other SCSI (parallel SCSI, iSCSI, FC, RAID controller volumes, or a SCSI disk
    /// whose path could not be resolved).
    Scsi,
    /// virtio-blk or virtio-scsi.
    Virtio,
    /// USB mass storage.
    Usb,
    /// eMMC / SD.
    Mmc,
    /// Xen virtual block device.
    Xen,
    /// Linux md RAID array.
    Md,
    /// device-mapper (LVM, dm-crypt, multipath …).
    Dm,
    /// Loop device.
    Loop,
    /// RAM disk.
    Ram,
    /// Compressed RAM block device.
    Zram,
    /// Network block device.
    Nbd,
    /// Ceph RBD.
    Rbd,
    /// Could not be told.
    Unknown,
}

impl Transport {
    /// The JSON name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Nvme => "nvme",
            Self::Ata => "ata",
            Self::Sas => "sas",
            Self::Scsi => "scsi",
            Self::Virtio => "virtio",
            Self::Usb => "usb",
            Self::Mmc => "mmc",
            Self::Xen => "xen",
            Self::Md => "md",
            Self::Dm => "dm",
            Self::Loop => "loop",
            Self::Ram => "ram",
            Self::Zram => "zram",
            Self::Nbd => "nbd",
            Self::Rbd => "rbd",
            Self::Unknown => "unknown",
        }
    }

    /// Devices that are built from other storage or from memory.
    pub fn is_virtual(self) -> bool {
        matches!(
            self,
            Self::Md | Self::Dm | Self::Loop | Self::Ram | Self::Zram
        )
    }

    /// Why a pool must never take a device on this transport, if so.
    fn never_eligible(self) -> Option<&'static str> {
        match self {
            Self::Usb => Some("USB device (removable)"),
            Self::Loop => Some("loop device"),
            Self::Ram | Self::Zram => Some("RAM-backed device"),
            Self::Md | Self::Dm => Some("stacked device (md/dm); pools use raw disks"),
            Self::Nbd | Self::Rbd => Some("network block device"),
            _ => None,
        }
    }

    fn has_smart(self) -> bool {
        matches!(self, Self::Nvme | Self::Ata | Self::Sas | Self::Scsi)
    }
}

/// NVMe temperature from the controller's hwmon directory.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DiskTemperature {
    /// Composite temperature, °C.
    pub celsius: Option<f64>,
    /// Warning threshold (`temp1_max`), °C.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// Critical threshold (`temp1_crit`), °C.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crit: Option<f64>,
    /// The controller's alarm flag (`temp1_alarm`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alarm: Option<bool>,
}

/// One whole block device.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Disk {
    /// Kernel name (`sda`, `nvme0n1`, `vda`, `md0`).
    pub name: String,
    /// Size in bytes; `null` when unreadable.
    pub size_bytes: Option<u64>,
    /// ssd, hdd, nvme or unknown.
    pub kind: DiskKind,
    /// Where `kind` came from.
    pub kind_source: KindSource,
    /// Why, for people (e.g. "virtio-blk reports rotational=1 for every disk").
    pub kind_reason: String,
    /// The kernel's `queue/rotational` flag, as read (not trusted alone).
    pub rotational: Option<bool>,
    /// How it is attached.
    pub transport: Transport,
    /// Model string.
    pub model: Option<String>,
    /// Vendor string (SCSI/ATA `device/vendor`).
    pub vendor: Option<String>,
    /// Serial number.
    pub serial: Option<String>,
    /// The sysfs file the serial came from.
    pub serial_source: Option<String>,
    /// Logical sector size in bytes.
    pub logical_block_size: Option<u32>,
    /// The kernel marks the medium removable.
    pub removable: bool,
    /// The kernel marks the device read-only.
    pub read_only: bool,
    /// Partitions (`sda1`, `nvme0n1p1`).
    pub partitions: Vec<String>,
    /// Devices built on this one or its partitions (md arrays, dm targets).
    pub holders: Vec<String>,
    /// Devices this one is built from (md/dm members).
    pub members: Vec<String>,
    /// Where this disk or one of its partitions is mounted or used as swap.
    pub mounts: Vec<String>,
    /// Partition tables and file systems found in the first and last sectors.
    pub signatures: Vec<Signature>,
    /// Whether the contents were checked (the first and last sectors read).
    pub contents_checked: bool,
    /// True when the disk holds data or is used by something.
    pub in_use: bool,
    /// Why it is in use.
    pub in_use_reasons: Vec<String>,
    /// The owner approved wiping this disk (by serial).
    pub approved: bool,
    /// Whether a storage pool may take it.
    pub eligible: bool,
    /// Why not, when not.
    pub ineligible_reasons: Vec<String>,
    /// SMART health.
    pub smart: Smart,
    /// NVMe controller temperature (hwmon).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<DiskTemperature>,
    /// True for a RAID controller's logical volume.
    #[serde(skip)]
    pub raid_volume: bool,
}

impl Disk {
    fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            size_bytes: None,
            kind: DiskKind::Unknown,
            kind_source: KindSource::None,
            kind_reason: String::new(),
            rotational: None,
            transport: Transport::Unknown,
            model: None,
            vendor: None,
            serial: None,
            serial_source: None,
            logical_block_size: None,
            removable: false,
            read_only: false,
            partitions: Vec::new(),
            holders: Vec::new(),
            members: Vec::new(),
            mounts: Vec::new(),
            signatures: Vec::new(),
            contents_checked: false,
            in_use: false,
            in_use_reasons: Vec::new(),
            approved: false,
            eligible: false,
            ineligible_reasons: Vec::new(),
            smart: Smart::status(SmartStatus::NotRun, "not asked"),
            temperature: None,
            raid_volume: false,
        }
    }

    /// Health findings for this disk (SMART, NVMe critical warnings, temperature).
    /// Only problems are returned; an empty list means healthy as far as known.
    pub fn findings(&self) -> Vec<Finding> {
        let mut out = Vec::new();
        let mut add = |level, reason: String| {
            out.push(Finding {
                component: format!("disk {}", self.name),
                level,
                reason,
            })
        };
        let s = &self.smart;
        let bits = s.bits();
        if s.passed == Some(false) || bits.has(ExitBits::DISK_FAILING) {
            add(Level::Critical, "SMART: overall health check FAILED".into());
        }
        if bits.has(ExitBits::PREFAIL_NOW) || !s.failing_attributes.is_empty() {
            let which = if s.failing_attributes.is_empty() {
                String::new()
            } else {
                format!(" ({})", s.failing_attributes.join(", "))
            };
            add(
                Level::Critical,
                format!("SMART: pre-failure attribute at or below threshold{which}"),
            );
        }
        if bits.has(ExitBits::THRESHOLD_PAST) {
            add(
                Level::Warning,
                "SMART: an attribute crossed its threshold in the past".into(),
            );
        }
        if bits.has(ExitBits::ERROR_LOG) {
            add(Level::Warning, "SMART: device error log has entries".into());
        }
        if bits.has(ExitBits::SELF_TEST_ERRORS) {
            add(Level::Warning, "SMART: self-test log has errors".into());
        }
        if s.status == SmartStatus::Ok && bits.has(ExitBits::COMMAND_FAILED) {
            add(
                Level::Warning,
                "SMART: a SMART command failed or returned a bad checksum".into(),
            );
        }
        for (what, v) in [
            ("reallocated sectors", s.reallocated_sectors),
            ("pending sectors", s.pending_sectors),
            ("offline uncorrectable sectors", s.offline_uncorrectable),
            ("grown defects", s.grown_defects),
        ] {
            if let Some(n) = v.filter(|&n| n > 0) {
                add(Level::Warning, format!("SMART: {n} {what}"));
            }
        }
        if let Some(n) = &s.nvme {
            let w = NvmeWarnings(n.critical_warning);
            let bits = [
                (
                    NvmeWarnings::SPARE_LOW,
                    Level::Critical,
                    "available spare below threshold",
                ),
                (
                    NvmeWarnings::TEMPERATURE,
                    Level::Warning,
                    "temperature outside its thresholds",
                ),
                (
                    NvmeWarnings::RELIABILITY_DEGRADED,
                    Level::Critical,
                    "reliability degraded by media errors",
                ),
                (
                    NvmeWarnings::READ_ONLY,
                    Level::Critical,
                    "media is read-only",
                ),
                (
                    NvmeWarnings::VOLATILE_BACKUP_FAILED,
                    Level::Warning,
                    "volatile memory backup failed",
                ),
                (
                    NvmeWarnings::PMR_READ_ONLY,
                    Level::Warning,
                    "persistent memory region is read-only",
                ),
            ];
            for (bit, level, text) in bits {
                if w.0 & bit != 0 {
                    add(level, format!("NVMe critical warning: {text}"));
                }
            }
            if let Some(p) = n.percentage_used.filter(|&p| p >= 100) {
                add(
                    Level::Warning,
                    format!("NVMe: {p}% of rated endurance used"),
                );
            }
            if let Some(m) = n.media_errors.filter(|&m| m > 0) {
                add(Level::Warning, format!("NVMe: {m} media errors"));
            }
        }
        if let Some(t) = &self.temperature {
            let c = t.celsius;
            match (c, t.crit, t.max) {
                (Some(c), Some(crit), _) if c >= crit => add(
                    Level::Critical,
                    format!("temperature {c} °C ≥ crit {crit} °C"),
                ),
                (Some(c), _, Some(max)) if c >= max => {
                    add(Level::Warning, format!("temperature {c} °C ≥ max {max} °C"))
                }
                _ if t.alarm == Some(true) => add(Level::Warning, "temperature alarm".into()),
                _ => {}
            }
        }
        out
    }
}

/// Names of whole disks: `sys/block`, or `sys/class/block` without partitions
/// when a capture has only that.
fn disk_names(root: &SysRoot, gaps: &mut Gaps) -> Vec<(String, String)> {
    match root.list("sys/block") {
        Ok(names) => {
            return names
                .into_iter()
                .map(|n| (format!("sys/block/{n}"), n))
                .collect();
        }
        Err(e) if !e.is_not_found() => gaps.push("sys/block", e),
        Err(_) => {}
    }
    let Ok(names) = root.list("sys/class/block") else {
        return Vec::new();
    };
    names
        .into_iter()
        .filter(|n| !root.exists(&format!("sys/class/block/{n}/partition")))
        .map(|n| (format!("sys/class/block/{n}"), n))
        .collect()
}

fn transport_from_name(name: &str) -> Transport {
    let prefixed = |p: &str| {
        name.strip_prefix(p)
            .is_some_and(|r| r.starts_with(|c: char| c.is_ascii_digit()))
    };
    if name.starts_with("dm-") {
        Transport::Dm
    } else if prefixed("md") {
        Transport::Md
    } else if prefixed("loop") {
        Transport::Loop
    } else if prefixed("zram") {
        Transport::Zram
    } else if prefixed("ram") {
        Transport::Ram
    } else if prefixed("nbd") {
        Transport::Nbd
    } else if prefixed("rbd") {
        Transport::Rbd
    } else if name.starts_with("nvme") {
        Transport::Nvme
    } else if name.starts_with("mmcblk") {
        Transport::Mmc
    } else if name.starts_with("xvd") {
        Transport::Xen
    } else if name.starts_with("vd") {
        Transport::Virtio
    } else if name.starts_with("sd") || name.starts_with("sr") {
        Transport::Scsi
    } else if name.starts_with("hd") {
        Transport::Ata
    } else {
        Transport::Unknown
    }
}

/// The transport from the device's sysfs path, which names every bus it hangs off.
fn transport_from_path(path: &str) -> Option<Transport> {
    let has = |s: &str| path.contains(s);
    Some(if has("/usb") {
        Transport::Usb
    } else if has("/nvme") {
        Transport::Nvme
    } else if has("/virtio") {
        Transport::Virtio
    } else if has("/mmc_host/") {
        Transport::Mmc
    } else if has("/vbd-") {
        Transport::Xen
    } else if has("/ata") {
        Transport::Ata
    } else if has("/end_device-") || has("/sas_") || has("/expander-") {
        Transport::Sas
    } else if has("/target") {
        Transport::Scsi
    } else {
        return None;
    })
}

/// RAID controllers that present logical volumes as SCSI disks.
const RAID_DRIVERS: &[&str] = &[
    "megaraid_sas",
    "hpsa",
    "smartpqi",
    "aacraid",
    "arcmsr",
    "3w-9xxx",
    "3w-sas",
    "megaraid",
    "ips",
    "mpt3sas_ir",
];
const RAID_MODEL_HINTS: &[&str] = &[
    "LOGICAL VOLUME",
    "PERC",
    "VIRTUAL DISK",
    "MR9",
    "RAID",
    "LOGICAL DRIVE",
    "MEGARAID",
];

fn is_raid_volume(
    root: &SysRoot,
    path: Option<&str>,
    vendor: Option<&str>,
    model: Option<&str>,
) -> bool {
    let m = model.unwrap_or("").to_ascii_uppercase();
    let v = vendor.unwrap_or("").to_ascii_uppercase();
    if RAID_MODEL_HINTS.iter().any(|h| m.contains(h))
        || [
            "LSI", "AVAGO", "BROADCOM", "ADAPTEC", "ARECA", "AMCC", "3WARE",
        ]
        .contains(&v.as_str())
    {
        return true;
    }
    // The SCSI host's driver: a volume behind megaraid_sas/hpsa still reports the
    // controller's rotation guess, even in JBOD mode for SSDs (ATA vendor excluded:
    // pass-through disks report their own identity and flag).
    let Some(host) = path.and_then(|p| {
        p.split('/')
            .find(|s| s.starts_with("host") && s[4..].parse::<u32>().is_ok())
    }) else {
        return false;
    };
    root.read_string(&format!("sys/class/scsi_host/{host}/proc_name"))
        .is_ok_and(|d| RAID_DRIVERS.contains(&d.as_str()) && v != "ATA")
}

/// vpd page 0x80 (Unit Serial Number): 4-byte header, then the ASCII serial.
fn vpd_pg80_serial(root: &SysRoot, rel: &str) -> Result<Option<String>, ReadError> {
    let bytes = root.read_bytes(rel)?;
    if bytes.len() <= 4 || bytes[1] != 0x80 {
        return Ok(None);
    }
    let len = (usize::from(bytes[2]) << 8 | usize::from(bytes[3])).min(bytes.len() - 4);
    let s = String::from_utf8_lossy(&bytes[4..4 + len])
        .trim()
        .trim_matches('\0')
        .trim()
        .to_owned();
    Ok((!s.is_empty()).then_some(s))
}

/// MEDIUM ROTATION RATE from the Block Device Characteristics VPD page (0xB1),
/// which the kernel exposes as `device/vpd_pgb1` for SCSI and libata disks: bytes
/// 4–5, big-endian (SBC-4 §6.6.2). 0 ("not reported") and a missing page give `None`.
fn vpd_rotation_rate(root: &SysRoot, name: &str) -> Option<u32> {
    let bytes = root
        .read_bytes(&format!("sys/block/{name}/device/vpd_pgb1"))
        .ok()?;
    if bytes.len() < 6 || bytes[1] != 0xb1 {
        return None;
    }
    let rate = u32::from(u16::from_be_bytes([bytes[4], bytes[5]]));
    (rate != 0).then_some(rate)
}

fn clean(s: String) -> Option<String> {
    let t = s.trim().trim_matches('\0').trim();
    (!t.is_empty() && !crate::inventory::dmi_placeholder(t)).then(|| t.to_owned())
}

/// The static facts of one disk from sysfs.
fn read_disk(root: &SysRoot, dir: &str, name: &str, gaps: &mut Gaps) -> Disk {
    let mut d = Disk::new(name);
    let what = |f: &str| format!("disk {name} {f}");

    d.size_bytes = gaps
        .note(
            &what("size"),
            root.read_parse::<u64>(&format!("{dir}/size")),
        )
        .and_then(|sectors| sectors.checked_mul(512));
    if d.size_bytes.is_none() && !root.exists(&format!("{dir}/size")) {
        gaps.push(what("size"), "not present");
    }
    d.rotational = gaps
        .note(
            &what("rotational"),
            root.read_parse::<u8>(&format!("{dir}/queue/rotational")),
        )
        .map(|r| r != 0);
    d.logical_block_size = gaps.note(
        &what("logical_block_size"),
        root.read_parse::<u32>(&format!("{dir}/queue/logical_block_size")),
    );
    d.removable = root
        .read_parse::<u8>(&format!("{dir}/removable"))
        .is_ok_and(|r| r != 0);
    d.read_only = root
        .read_parse::<u8>(&format!("{dir}/ro"))
        .is_ok_and(|r| r != 0);

    // `sys/block/X` links to `../devices/<every bus on the way>/block/X`.
    let path = root
        .link_text(dir)
        .ok()
        .filter(|p| p.starts_with("devices/"))
        .map(|p| format!("sys/{p}"));
    let by_name = transport_from_name(name);
    d.transport = if by_name.is_virtual() || matches!(by_name, Transport::Nbd | Transport::Rbd) {
        by_name
    } else {
        path.as_deref()
            .and_then(transport_from_path)
            .unwrap_or(by_name)
    };

    let dev = format!("{dir}/device");
    d.model = root
        .read_string(&format!("{dev}/model"))
        .or_else(|_| root.read_string(&format!("{dev}/name")))
        .ok()
        .and_then(clean);
    d.vendor = root
        .read_string(&format!("{dev}/vendor"))
        .ok()
        .and_then(clean);
    // Virtio's `device/vendor` is the PCI vendor id, not a name.
    if d.transport == Transport::Virtio && d.vendor.as_deref().is_some_and(|v| v.starts_with("0x"))
    {
        d.vendor = None;
    }

    for f in ["serial", "device/serial"] {
        if let Some(s) = gaps
            .note(&what(f), root.read_string(&format!("{dir}/{f}")))
            .and_then(clean)
        {
            d.serial = Some(s);
            d.serial_source = Some(f.to_owned());
            break;
        }
    }
    if d.serial.is_none()
        && let Some(s) = gaps
            .note(
                &what("device/vpd_pg80"),
                vpd_pg80_serial(root, &format!("{dev}/vpd_pg80")),
            )
            .flatten()
    {
        d.serial = Some(s);
        d.serial_source = Some("device/vpd_pg80".into());
    }
    if d.serial.is_none() {
        for f in ["device/wwid", "wwid"] {
            if let Some(s) = root.read_string(&format!("{dir}/{f}")).ok().and_then(clean) {
                d.serial = Some(s);
                d.serial_source = Some(f.to_owned());
                break;
            }
        }
    }
    if d.transport == Transport::Nvme {
        nvme_class(root, name, &mut d);
    }
    d.raid_volume = matches!(d.transport, Transport::Scsi | Transport::Sas)
        && is_raid_volume(
            root,
            path.as_deref(),
            d.vendor.as_deref(),
            d.model.as_deref(),
        );

    let list = |sub: &str| root.list(&format!("{dir}/{sub}")).unwrap_or_default();
    d.holders = list("holders");
    // Only stacked devices have members; skipping the (empty) `slaves/` of every
    // plain disk saves a directory read each.
    if !matches!(
        d.transport,
        Transport::Scsi
            | Transport::Ata
            | Transport::Sas
            | Transport::Nvme
            | Transport::Virtio
            | Transport::Usb
            | Transport::Mmc
    ) {
        d.members = list("slaves");
    }
    // md arrays also name their members as `md/dev-NAME`; a trimmed capture may
    // have only those.
    let md = if d.transport == Transport::Md {
        list("md")
    } else {
        Vec::new()
    };
    for m in md.iter().filter_map(|n| n.strip_prefix("dev-")) {
        if !d.members.iter().any(|x| x == m) {
            d.members.push(m.to_owned());
        }
    }
    if let Ok(entries) = root.list(dir) {
        for p in entries {
            if p.starts_with(name) && root.exists(&format!("{dir}/{p}/partition")) {
                for h in list(&format!("{p}/holders")) {
                    if !d.holders.contains(&h) {
                        d.holders.push(h);
                    }
                }
                d.partitions.push(p);
            }
        }
    }
    d
}

/// NVMe namespaces: model/serial from the controller (`sys/class/nvme/nvmeN`), and
/// the controller's hwmon temperature.
fn nvme_class(root: &SysRoot, name: &str, d: &mut Disk) {
    // nvme0n1 → controller nvme0 (namespaces of multipath subsystems are nvme0c0n1
    // under the controller, but the block device is nvme0n1 all the same).
    let ctrl: String = match name.find('n').and_then(|_| name[4..].find('n')) {
        Some(i) => name[..4 + i].to_owned(),
        None => return,
    };
    let base = format!("sys/class/nvme/{ctrl}");
    if d.model.is_none() {
        d.model = root
            .read_string(&format!("{base}/model"))
            .ok()
            .and_then(clean);
    }
    if d.serial.is_none()
        && let Some(s) = root
            .read_string(&format!("{base}/serial"))
            .ok()
            .and_then(clean)
    {
        d.serial = Some(s);
        d.serial_source = Some(format!("{base}/serial"));
    }
    // The hwmon device hangs off the controller (kernel ≥ 5.5) or its PCI device.
    let mut dirs = Vec::new();
    for parent in [
        base.clone(),
        format!("{base}/device"),
        format!("{base}/device/hwmon"),
    ] {
        for n in root.list(&parent).unwrap_or_default() {
            if n.starts_with("hwmon") && n != "hwmon" {
                dirs.push(format!("{parent}/{n}"));
            }
        }
    }
    let Some(h) = dirs.first() else { return };
    let milli = |f: &str| {
        root.read_parse::<i64>(&format!("{h}/{f}"))
            .ok()
            .map(|v| v as f64 / 1000.0)
    };
    let t = DiskTemperature {
        celsius: milli("temp1_input"),
        max: milli("temp1_max"),
        crit: milli("temp1_crit"),
        alarm: root
            .read_parse::<u8>(&format!("{h}/temp1_alarm"))
            .ok()
            .map(|a| a != 0),
    };
    if t != DiskTemperature::default() {
        d.temperature = Some(t);
    }
}

/// A device node with nothing behind it: a detached loop device, an unconfigured
/// zram or RAM disk, an unconnected network block device. The kernel lists
/// eight idle loop devices on most hosts; showing them as 0-byte disks is noise.
/// A real disk reporting 0 bytes (a dead or ejected medium) is kept: that is a
/// fault a farmer must see.
fn is_unattached(d: &Disk) -> bool {
    d.size_bytes == Some(0)
        && matches!(
            d.transport,
            Transport::Loop | Transport::Ram | Transport::Zram | Transport::Nbd
        )
}

/// Reads every disk under `root`, leaving out device nodes with nothing
/// attached (idle loop, RAM, zram and network block devices).
pub fn collect(root: &SysRoot, opts: &Options, gaps: &mut Gaps) -> Vec<Disk> {
    let names = disk_names(root, gaps);
    let mut disks: Vec<Disk> = names
        .iter()
        .map(|(dir, name)| read_disk(root, dir, name, gaps))
        .filter(|d| !is_unattached(d))
        .collect();
    // A member's `holders` and its array's `slaves` say the same thing; trust
    // either, since captures (and half-torn-down arrays) may carry only one side.
    let held: Vec<(String, String)> = disks
        .iter()
        .flat_map(|d| d.members.iter().map(move |m| (m.clone(), d.name.clone())))
        .collect();
    for (member, holder) in held {
        if let Some(d) = disks.iter_mut().find(|d| d.name == member)
            && !d.holders.contains(&holder)
        {
            d.holders.push(holder);
        }
    }

    let store = opts
        .state_dir
        .as_deref()
        .and_then(|dir| match classify::Store::open(dir) {
            Ok(s) => Some(s),
            Err(e) => {
                gaps.push(
                    "disk classification store",
                    crate::inventory::error_chain(&e),
                );
                None
            }
        });
    let mut store = store;

    let used = usage::Usage::read(root, &disks, gaps);
    for d in &mut disks {
        smart(root, opts, d);
        let decision = classify::decide(
            &classify::Evidence {
                name: &d.name,
                serial: d.serial.as_deref(),
                transport: d.transport,
                rotational: d.rotational,
                raid_volume: d.raid_volume,
                rotation_rate: d.smart.rotation_rate,
                vpd_rotation_rate: vpd_rotation_rate(root, &d.name),
            },
            &opts.profile,
            store.as_ref(),
        );
        d.kind = decision.kind;
        d.kind_source = decision.source;
        d.kind_reason = decision.reason;
        if opts.mode == Mode::Managed
            && d.kind == DiskKind::Unknown
            && !d.transport.is_virtual()
            && d.transport.never_eligible().is_none()
        {
            if d.transport == Transport::Virtio {
                // A paravirtual disk's timing is the hypervisor's backing file and
                // page cache, not a medium: a thin qcow2 answers unwritten blocks
                // from metadata in microseconds, whatever it is stored on. The
                // probe would invent an SSD; only the board profile can say.
                d.kind_reason = format!(
                    "{}; not seek-probed: a virtio-blk disk's timing is the \
                     hypervisor's storage, so set its kind in the board profile",
                    d.kind_reason
                );
            } else {
                run_probe(root, opts, d, store.as_mut(), gaps);
            }
        }
        d.mounts = used.mounts_of(d);
        contents(root, d, gaps);
        eligibility(d, &opts.approved_serials);
    }
    disks
}

fn smart(root: &SysRoot, opts: &Options, d: &mut Disk) {
    if !d.transport.has_smart() {
        d.smart = Smart::status(
            SmartStatus::NotRun,
            format!("{} devices have no SMART", d.transport.name()),
        );
        return;
    }
    let Some(runner) = opts.smart.as_deref() else {
        d.smart = Smart::status(SmartStatus::NotRun, "not asked (captured tree)");
        return;
    };
    d.smart = crate::smart::query(runner, &root.path(&format!("dev/{}", d.name)));
}

fn run_probe(
    root: &SysRoot,
    opts: &Options,
    d: &mut Disk,
    store: Option<&mut classify::Store>,
    gaps: &mut Gaps,
) {
    if d.smart.status == SmartStatus::Standby {
        return;
    }
    let path = root.path(&format!("dev/{}", d.name));
    let opened = match &opts.probe_opener {
        Some(open) => open(&path),
        None => {
            probe::DirectDevice::open(&path).map(|dev| Box::new(dev) as Box<dyn probe::SeekDevice>)
        }
    };
    let result = opened
        .map_err(probe::ProbeError::Read)
        .and_then(|mut dev| probe::probe(dev.as_mut()));
    match result {
        Ok(r) => {
            let us = r.median.as_micros() as u64;
            if r.kind == DiskKind::Unknown {
                d.kind_reason = format!(
                    "{}; seek probe inconclusive (median {us} µs)",
                    d.kind_reason
                );
                return;
            }
            d.kind = r.kind;
            d.kind_source = KindSource::Probe;
            d.kind_reason = format!("seek probe: median read {us} µs");
            if let (Some(store), Some(serial)) = (store, d.serial.as_deref()) {
                let c = classify::Classification {
                    kind: r.kind,
                    median_us: us,
                    samples: r.samples,
                    probed_at: std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |t| t.as_secs()),
                };
                if let Err(e) = store.put(serial, c) {
                    gaps.push(
                        format!("disk {} classification", d.name),
                        crate::inventory::error_chain(&e),
                    );
                }
            }
        }
        Err(e) => gaps.push(
            format!("disk {} seek probe", d.name),
            crate::inventory::error_chain(&e),
        ),
    }
}

/// Reads the first and last sectors for signatures, unless the disk sleeps.
fn contents(root: &SysRoot, d: &mut Disk, gaps: &mut Gaps) {
    if d.transport.is_virtual() || d.transport.never_eligible().is_some() {
        return;
    }
    if d.smart.status == SmartStatus::Standby {
        return;
    }
    if root
        .read_string(&format!("sys/block/{}/device/power/runtime_status", d.name))
        .is_ok_and(|s| s == "suspended")
    {
        return;
    }
    let Some(size) = d.size_bytes else { return };
    let rel = format!("dev/{}", d.name);
    let file = match root.open_read(&rel) {
        Ok(f) => f,
        Err(e) => {
            gaps.note::<()>(&format!("disk {} contents", d.name), Err(e));
            return;
        }
    };
    let mut read = |off: u64, buf: &mut [u8]| crate::hal::read_full_at(&file, &rel, off, buf);
    match signature::detect(size, d.logical_block_size.unwrap_or(512), &mut read) {
        Scan::Read(sigs) => {
            d.signatures = sigs;
            d.contents_checked = true;
        }
        Scan::Unreadable(e) => {
            gaps.note::<()>(&format!("disk {} contents", d.name), Err(e));
        }
    }
}

fn eligibility(d: &mut Disk, approved: &BTreeSet<String>) {
    let mut active = Vec::new();
    let mut foreign = Vec::new();
    if !d.mounts.is_empty() {
        active.push(format!("mounted: {}", d.mounts.join(", ")));
    }
    if !d.holders.is_empty() {
        active.push(format!("used by {}", d.holders.join(", ")));
    }
    if !d.partitions.is_empty() {
        foreign.push(format!("partitions: {}", d.partitions.join(", ")));
    }
    for s in &d.signatures {
        foreign.push(s.name().to_owned());
    }
    d.approved = d.serial.as_ref().is_some_and(|s| approved.contains(s));
    d.in_use = !active.is_empty() || !foreign.is_empty();
    d.in_use_reasons = active.iter().chain(&foreign).cloned().collect();

    let mut why = Vec::new();
    if let Some(r) = d.transport.never_eligible() {
        why.push(r.to_owned());
    }
    if d.removable {
        why.push("removable medium".into());
    }
    if d.read_only {
        why.push("read-only".into());
    }
    match d.size_bytes {
        None => why.push("size unknown".into()),
        Some(0) => why.push("empty (size 0)".into()),
        _ => {}
    }
    if why.is_empty() && !d.contents_checked {
        why.push(if d.smart.status == SmartStatus::Standby {
            "contents not checked: disk is in standby".into()
        } else {
            "contents not checked: first/last sectors unreadable".into()
        });
    }
    why.extend(active);
    if !foreign.is_empty() && !d.approved {
        why.push(format!(
            "holds data ({}); needs the owner's approval to wipe",
            foreign.join("; ")
        ));
    }
    d.eligible = why.is_empty();
    d.ineligible_reasons = why;
}

/// Major:minor → disk name, for matching mounts of `/dev/root` and the like.
pub(crate) fn dev_numbers(root: &SysRoot, disks: &[Disk]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for d in disks {
        for n in std::iter::once(&d.name).chain(&d.partitions) {
            let rel = if n == &d.name {
                format!("sys/block/{n}/dev")
            } else {
                format!("sys/block/{}/{n}/dev", d.name)
            };
            if let Ok(mm) = root.read_string(&rel) {
                out.insert(mm, d.name.clone());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transports_from_names_and_paths() {
        assert_eq!(transport_from_name("md127"), Transport::Md);
        assert_eq!(transport_from_name("mdx"), Transport::Unknown);
        assert_eq!(transport_from_name("dm-3"), Transport::Dm);
        assert_eq!(transport_from_name("zram0"), Transport::Zram);
        assert_eq!(transport_from_name("ram0"), Transport::Ram);
        assert_eq!(transport_from_name("vdb"), Transport::Virtio);
        assert_eq!(
            transport_from_path(
                "sys/devices/pci0000:00/0000:00:14.0/usb2/2-1/2-1:1.0/host6/target6:0:0/6:0:0:0/block/sdb"
            ),
            Some(Transport::Usb)
        );
        assert_eq!(
            transport_from_path(
                "sys/devices/pci0000:00/0000:00:17.0/ata3/host2/target2:0:0/2:0:0:0/block/sda"
            ),
            Some(Transport::Ata)
        );
        assert_eq!(
            transport_from_path(
                "sys/devices/pci0000:00/0000:00:02.0/virtio2/host0/target0:0:0/0:0:0:0/block/sda"
            ),
            Some(Transport::Virtio)
        );
        assert_eq!(
            transport_from_path(
                "sys/devices/pci0000:00/0000:00:01.0/0000:01:00.0/host0/port-0:0/end_device-0:0/target0:0:0/0:0:0:0/block/sda"
            ),
            Some(Transport::Sas)
        );
    }

    #[test]
    fn idle_loop_zram_and_nbd_nodes_are_left_out_but_an_empty_real_disk_is_not() {
        let dir = tempfile::tempdir().unwrap();
        for (name, sectors) in [
            ("loop0", "0"),
            ("loop1", "2048"),
            ("zram0", "0"),
            ("nbd0", "0"),
            ("sda", "0"),
        ] {
            let d = dir.path().join("sys/block").join(name);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("size"), format!("{sectors}\n")).unwrap();
        }
        let root = SysRoot::at(dir.path()).unwrap();
        let mut gaps = Gaps::default();
        let mut names: Vec<String> =
            collect(&root, &crate::inventory::Options::default(), &mut gaps)
                .into_iter()
                .map(|d| d.name)
                .collect();
        names.sort();
        assert_eq!(names, ["loop1", "sda"]);
    }

    #[test]
    fn vpd_pg80_is_decoded() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("sys")).unwrap();
        std::fs::write(dir.path().join("sys/pg80"), b"\x00\x80\x00\x0a  ZA1B2C3D").unwrap();
        std::fs::write(dir.path().join("sys/bad"), b"\x00\x83\x00").unwrap();
        let root = SysRoot::at(dir.path()).unwrap();
        assert_eq!(
            vpd_pg80_serial(&root, "sys/pg80").unwrap().as_deref(),
            Some("ZA1B2C3D")
        );
        assert_eq!(vpd_pg80_serial(&root, "sys/bad").unwrap(), None);
    }

    fn disk_with(f: impl FnOnce(&mut Disk)) -> Disk {
        let mut d = Disk::new("sdz");
        d.transport = Transport::Ata;
        d.size_bytes = Some(1 << 40);
        d.serial = Some("SER1".into());
        d.contents_checked = true;
        f(&mut d);
        d
    }

    #[test]
    fn blank_disk_is_eligible_foreign_data_needs_approval_active_use_never() {
        let mut d = disk_with(|_| {});
        eligibility(&mut d, &BTreeSet::new());
        assert!(d.eligible && !d.in_use, "{:?}", d.ineligible_reasons);

        let mut d = disk_with(|d| d.signatures = vec![Signature::Gpt]);
        eligibility(&mut d, &BTreeSet::new());
        assert!(!d.eligible && d.in_use);
        assert!(d.ineligible_reasons[0].contains("approval"));
        let approved: BTreeSet<String> = ["SER1".to_owned()].into();
        eligibility(&mut d, &approved);
        assert!(d.eligible && d.approved && d.in_use);

        let mut d = disk_with(|d| {
            d.signatures = vec![Signature::Ext];
            d.mounts = vec!["/".into()];
        });
        eligibility(&mut d, &approved);
        assert!(
            !d.eligible,
            "a mounted disk is never eligible, approval or not"
        );

        let mut d = disk_with(|d| d.contents_checked = false);
        eligibility(&mut d, &BTreeSet::new());
        assert!(!d.eligible && d.ineligible_reasons[0].contains("contents not checked"));

        let mut d = disk_with(|d| d.transport = Transport::Usb);
        eligibility(&mut d, &BTreeSet::new());
        assert!(!d.eligible);
    }

    #[test]
    fn findings_decode_smart_and_nvme() {
        use crate::smart::NvmeHealth;
        let mut d = disk_with(|_| {});
        assert!(d.findings().is_empty());
        d.smart = Smart::status(SmartStatus::Ok, "");
        d.smart.exit_status = Some(ExitBits::DISK_FAILING | ExitBits::ERROR_LOG);
        d.smart.reallocated_sectors = Some(12);
        d.smart.nvme = Some(NvmeHealth {
            critical_warning: 0b0000_0101,
            ..NvmeHealth::default()
        });
        let f = d.findings();
        let reasons: Vec<_> = f.iter().map(|f| (f.level, f.reason.as_str())).collect();
        assert!(reasons.contains(&(Level::Critical, "SMART: overall health check FAILED")));
        assert!(reasons.contains(&(Level::Warning, "SMART: device error log has entries")));
        assert!(reasons.contains(&(Level::Warning, "SMART: 12 reallocated sectors")));
        assert!(reasons.contains(&(
            Level::Critical,
            "NVMe critical warning: available spare below threshold"
        )));
        assert!(reasons.contains(&(
            Level::Critical,
            "NVMe critical warning: reliability degraded by media errors"
        )));
        assert!(f.iter().all(|f| f.component == "disk sdz"));
        d.smart = Smart::status(SmartStatus::Ok, "");
        d.temperature = Some(DiskTemperature {
            celsius: Some(85.0),
            max: Some(80.0),
            crit: Some(90.0),
            alarm: None,
        });
        assert_eq!(d.findings()[0].level, Level::Warning);
    }
}
