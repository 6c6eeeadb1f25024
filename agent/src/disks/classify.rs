//! Whether a disk is an SSD, an HDD or NVMe, and how sure we are.
//!
//! The kernel's `queue/rotational` flag alone is not trusted: virtio-blk reports 1
//! for every disk, USB bridges usually do too, and RAID controllers report 1 for
//! SSD volumes. Zero-OS nodes lost their SSD capacity to exactly that, and ended up
//! measuring seek times instead. So a disk's kind is decided by the first of these
//! that has an answer ([`decide`]):
//!
//! 1. the board profile ([`DiskProfile`], by serial or by name): the operator knows;
//! 2. a persisted seek-probe result for the disk's serial ([`Store`], written in
//!    managed mode by [`super::probe`]);
//! 3. the transport: NVMe is `nvme`, eMMC/SD is `ssd`;
//! 4. SMART's rotation rate (0 = solid state, N = N RPM), when smartctl answered;
//! 5. the rotational flag, only where it is trustworthy (directly attached
//!    ATA/SAS/SCSI disks; a RAID volume's 0 but not its 1);
//! 6. otherwise `unknown`, with the reason.

use std::{
    collections::BTreeMap,
    io::Write,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

use super::Transport;

/// A disk's kind. JSON names are part of the contract.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiskKind {
    /// Solid-state (SATA/SAS SSD, eMMC).
    Ssd,
    /// Rotating disk.
    Hdd,
    /// NVMe solid-state.
    Nvme,
    /// Not known.
    #[default]
    Unknown,
}

/// Where a disk's kind came from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KindSource {
    /// The board profile's override.
    Profile,
    /// A seek-time probe (persisted by serial, or run in this pass).
    Probe,
    /// The transport (NVMe, eMMC).
    Transport,
    /// SMART's rotation rate.
    SmartRotationRate,
    /// The device's Block Device Characteristics VPD page (0xB1) rotation rate,
    /// read from sysfs when smartctl did not answer.
    VpdRotationRate,
    /// The kernel's rotational flag, on a transport where it is trustworthy.
    Rotational,
    /// The rotational flag exists but is not trusted on this transport.
    UntrustedRotational,
    /// A virtual device (md, dm, loop, ram, zram …): the kind of its backing
    /// storage is not its own.
    Virtual,
    /// Nothing said anything.
    #[default]
    None,
}

/// Why config for disk kinds was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProfileError {
    /// A key was empty.
    #[error("Disk profile field {field}: empty key")]
    EmptyKey {
        /// `by_serial` or `by_name`.
        field: &'static str,
    },
    /// A kind of `unknown` was given, which overrides nothing.
    #[error("Disk profile field {field}: {key} = unknown overrides nothing")]
    UnknownKind {
        /// `by_serial` or `by_name`.
        field: &'static str,
        /// The key.
        key: String,
    },
}

/// Disk kinds from the board profile, as written in config.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiskProfileConfig {
    /// Kind by disk serial number (the serial as inventory reports it). Preferred:
    /// serials survive re-cabling, names do not.
    #[serde(default)]
    pub by_serial: BTreeMap<String, DiskKind>,
    /// Kind by kernel name (`sda`, `vdb`), for disks without a serial (virtio-blk
    /// without `serial=`).
    #[serde(default)]
    pub by_name: BTreeMap<String, DiskKind>,
}

/// Validated board-profile overrides.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiskProfile {
    by_serial: BTreeMap<String, DiskKind>,
    by_name: BTreeMap<String, DiskKind>,
}

impl TryFrom<DiskProfileConfig> for DiskProfile {
    type Error = ProfileError;

    fn try_from(c: DiskProfileConfig) -> Result<Self, Self::Error> {
        for (field, map) in [("by_serial", &c.by_serial), ("by_name", &c.by_name)] {
            for (k, v) in map {
                if k.trim().is_empty() {
                    return Err(ProfileError::EmptyKey { field });
                }
                if *v == DiskKind::Unknown {
                    return Err(ProfileError::UnknownKind {
                        field,
                        key: k.clone(),
                    });
                }
            }
        }
        Ok(Self {
            by_serial: c.by_serial,
            by_name: c.by_name,
        })
    }
}

impl DiskProfile {
    /// The override for a disk, by serial first.
    pub fn lookup(&self, serial: Option<&str>, name: &str) -> Option<DiskKind> {
        serial
            .and_then(|s| self.by_serial.get(s))
            .or_else(|| self.by_name.get(name))
            .copied()
    }
}

/// What the probe found for one disk, as persisted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Classification {
    /// The kind.
    pub kind: DiskKind,
    /// Median read latency of the probe, microseconds.
    pub median_us: u64,
    /// Number of reads.
    pub samples: u32,
    /// When, seconds since the Unix epoch.
    pub probed_at: u64,
}

/// Why the classification store could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The file could not be read or written.
    #[error("Disk classification store {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not what this version writes.
    #[error("Disk classification store {path} is corrupt")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoreFile {
    version: u32,
    disks: BTreeMap<String, Classification>,
}

/// Persisted probe results by disk serial: a small JSON file in the agent's state
/// directory, replaced atomically (write a temporary file, fsync, rename, fsync the
/// directory) so a power cut leaves the old or the new version, never half of one.
#[derive(Debug)]
pub struct Store {
    path: PathBuf,
    disks: BTreeMap<String, Classification>,
}

/// File name of the store inside the state directory.
pub const STORE_FILE: &str = "disk-classes.json";
const STORE_VERSION: u32 = 1;

impl Store {
    /// Opens the store in `state_dir`; a missing file is an empty store.
    pub fn open(state_dir: &Path) -> Result<Self, StoreError> {
        let path = state_dir.join(STORE_FILE);
        let disks = match std::fs::read(&path) {
            Ok(bytes) => {
                let f: StoreFile =
                    serde_json::from_slice(&bytes).map_err(|source| StoreError::Corrupt {
                        path: path.clone(),
                        source,
                    })?;
                f.disks
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(source) => return Err(StoreError::Io { path, source }),
        };
        Ok(Self { path, disks })
    }

    /// The persisted classification for `serial`.
    pub fn get(&self, serial: &str) -> Option<&Classification> {
        self.disks.get(serial)
    }

    /// Records a classification and writes the file.
    pub fn put(&mut self, serial: &str, c: Classification) -> Result<(), StoreError> {
        self.disks.insert(serial.to_owned(), c);
        self.save()
    }

    fn save(&self) -> Result<(), StoreError> {
        let io = |source| StoreError::Io {
            path: self.path.clone(),
            source,
        };
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(io)?;
        let body = serde_json::to_vec_pretty(&StoreFile {
            version: STORE_VERSION,
            disks: self.disks.clone(),
        })
        .map_err(|e| io(std::io::Error::other(e)))?;
        let tmp = self
            .path
            .with_extension(format!("json.tmp.{}", std::process::id()));
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        f.write_all(&body).map_err(io)?;
        f.sync_all().map_err(io)?;
        drop(f);
        std::fs::rename(&tmp, &self.path).map_err(io)?;
        // The rename is only durable once the directory entry is on disk.
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io)?;
        Ok(())
    }
}

/// Everything [`decide`] looks at for one disk.
#[derive(Debug, Clone, Copy)]
pub struct Evidence<'a> {
    /// Kernel name.
    pub name: &'a str,
    /// Serial, if known.
    pub serial: Option<&'a str>,
    /// Transport.
    pub transport: Transport,
    /// The rotational flag.
    pub rotational: Option<bool>,
    /// True for a RAID controller's logical volume.
    pub raid_volume: bool,
    /// SMART rotation rate.
    pub rotation_rate: Option<u32>,
    /// MEDIUM ROTATION RATE from VPD page 0xB1 (SBC-4 §6.6.2): 1 = non-rotating,
    /// 0x0401..=0xFFFE = nominal rpm; `None` when absent or "not reported" (0).
    pub vpd_rotation_rate: Option<u32>,
}

/// The decided kind, its source and a human reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The kind.
    pub kind: DiskKind,
    /// Where it came from.
    pub source: KindSource,
    /// Why, for people.
    pub reason: String,
}

fn d(kind: DiskKind, source: KindSource, reason: impl Into<String>) -> Decision {
    Decision {
        kind,
        source,
        reason: reason.into(),
    }
}

/// Decides a disk's kind; see the module docs for the order.
pub fn decide(ev: &Evidence<'_>, profile: &DiskProfile, store: Option<&Store>) -> Decision {
    if let Some(kind) = profile.lookup(ev.serial, ev.name) {
        return d(kind, KindSource::Profile, "board profile");
    }
    if let Some(c) = ev.serial.and_then(|s| store?.get(s))
        && c.kind != DiskKind::Unknown
    {
        return d(
            c.kind,
            KindSource::Probe,
            format!("seek probe: median read {} µs", c.median_us),
        );
    }
    match ev.transport {
        Transport::Nvme => return d(DiskKind::Nvme, KindSource::Transport, "NVMe"),
        Transport::Mmc => return d(DiskKind::Ssd, KindSource::Transport, "eMMC/SD is flash"),
        t if t.is_virtual() => {
            return d(
                DiskKind::Unknown,
                KindSource::Virtual,
                format!("{} device: kind is its backing storage's", t.name()),
            );
        }
        _ => {}
    }
    match ev.rotation_rate {
        Some(0) => {
            return d(
                DiskKind::Ssd,
                KindSource::SmartRotationRate,
                "SMART: solid state device",
            );
        }
        Some(rpm) if rpm > 1 => {
            return d(
                DiskKind::Hdd,
                KindSource::SmartRotationRate,
                format!("SMART: {rpm} rpm"),
            );
        }
        _ => {}
    }
    // The device's own statement of its medium, independent of the kernel's
    // default-to-rotational flag. A RAID volume's page describes the controller's
    // emulation, so only its "non-rotating" is believed, as with its flag.
    match ev.vpd_rotation_rate {
        Some(1) => {
            return d(
                DiskKind::Ssd,
                KindSource::VpdRotationRate,
                "VPD 0xB1: non-rotating medium",
            );
        }
        Some(rpm @ 0x0401..=0xfffe) if !ev.raid_volume => {
            return d(
                DiskKind::Hdd,
                KindSource::VpdRotationRate,
                format!("VPD 0xB1: {rpm} rpm"),
            );
        }
        _ => {}
    }
    let Some(rot) = ev.rotational else {
        return d(DiskKind::Unknown, KindSource::None, "no rotational flag");
    };
    let untrusted = |why: &str| {
        d(
            DiskKind::Unknown,
            KindSource::UntrustedRotational,
            why.to_owned(),
        )
    };
    match ev.transport {
        Transport::Virtio if rot => untrusted("virtio-blk reports rotational=1 for every disk"),
        Transport::Usb => untrusted("USB bridges do not pass the medium's rotation through"),
        Transport::Xen if rot => untrusted("Xen block devices report rotational=1 for every disk"),
        _ if ev.raid_volume && rot => {
            untrusted("RAID controllers report rotational=1 for SSD volumes")
        }
        _ if rot => d(DiskKind::Hdd, KindSource::Rotational, "rotational=1"),
        _ => d(DiskKind::Ssd, KindSource::Rotational, "rotational=0"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(transport: Transport, rotational: Option<bool>) -> Evidence<'static> {
        Evidence {
            name: "sdx",
            serial: Some("S1"),
            transport,
            rotational,
            raid_volume: false,
            rotation_rate: None,
            vpd_rotation_rate: None,
        }
    }

    #[test]
    fn vpd_rotation_rate_classes_virtio_scsi_disks() {
        let mut e = ev(Transport::Virtio, Some(true));
        e.vpd_rotation_rate = Some(7200);
        let got = decide(&e, &DiskProfile::default(), None);
        assert_eq!(
            (got.kind, got.source),
            (DiskKind::Hdd, KindSource::VpdRotationRate)
        );
        e.vpd_rotation_rate = Some(1);
        assert_eq!(
            decide(&e, &DiskProfile::default(), None).kind,
            DiskKind::Ssd
        );
        // Reserved values say nothing; the untrusted flag rule applies.
        e.vpd_rotation_rate = Some(0x0200);
        assert_eq!(
            decide(&e, &DiskProfile::default(), None).kind,
            DiskKind::Unknown
        );
        // A RAID volume's rpm is the controller's emulation, not the medium.
        let mut r = ev(Transport::Scsi, Some(true));
        r.raid_volume = true;
        r.vpd_rotation_rate = Some(7200);
        assert_eq!(
            decide(&r, &DiskProfile::default(), None).kind,
            DiskKind::Unknown
        );
    }

    #[test]
    fn virtio_rotational_is_not_trusted() {
        let dec = decide(
            &ev(Transport::Virtio, Some(true)),
            &DiskProfile::default(),
            None,
        );
        assert_eq!(
            (dec.kind, dec.source),
            (DiskKind::Unknown, KindSource::UntrustedRotational)
        );
        assert!(dec.reason.contains("virtio"));
    }

    #[test]
    fn raid_volume_one_is_untrusted_but_zero_is_ssd() {
        let mut e = ev(Transport::Scsi, Some(true));
        e.raid_volume = true;
        assert_eq!(
            decide(&e, &DiskProfile::default(), None).kind,
            DiskKind::Unknown
        );
        e.rotational = Some(false);
        assert_eq!(
            decide(&e, &DiskProfile::default(), None).kind,
            DiskKind::Ssd
        );
    }

    #[test]
    fn precedence_profile_then_probe_then_transport_then_smart_then_flag() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        let profile = DiskProfile::try_from(DiskProfileConfig {
            by_serial: [("S1".to_owned(), DiskKind::Hdd)].into(),
            by_name: BTreeMap::new(),
        })
        .unwrap();
        let e = ev(Transport::Nvme, Some(false));
        assert_eq!(decide(&e, &profile, None).source, KindSource::Profile);
        assert_eq!(decide(&e, &profile, None).kind, DiskKind::Hdd);
        store
            .put(
                "S1",
                Classification {
                    kind: DiskKind::Ssd,
                    median_us: 90,
                    samples: 64,
                    probed_at: 1,
                },
            )
            .unwrap();
        let none = DiskProfile::default();
        assert_eq!(decide(&e, &none, Some(&store)).source, KindSource::Probe);
        let mut e2 = ev(Transport::Nvme, Some(false));
        e2.serial = Some("other");
        assert_eq!(
            decide(&e2, &none, Some(&store)).source,
            KindSource::Transport
        );
        let mut e3 = ev(Transport::Ata, Some(false));
        e3.serial = None;
        e3.rotation_rate = Some(7200);
        assert_eq!(decide(&e3, &none, Some(&store)).kind, DiskKind::Hdd);
        e3.rotation_rate = None;
        assert_eq!(decide(&e3, &none, None).source, KindSource::Rotational);
    }

    #[test]
    fn store_round_trips_atomically_and_rejects_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        s.put(
            "SER",
            Classification {
                kind: DiskKind::Hdd,
                median_us: 8000,
                samples: 64,
                probed_at: 5,
            },
        )
        .unwrap();
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            names,
            vec![std::ffi::OsString::from(STORE_FILE)],
            "no temporary file left behind"
        );
        let again = Store::open(dir.path()).unwrap();
        assert_eq!(again.get("SER").unwrap().kind, DiskKind::Hdd);
        std::fs::write(dir.path().join(STORE_FILE), "{garbage").unwrap();
        assert!(matches!(
            Store::open(dir.path()),
            Err(StoreError::Corrupt { .. })
        ));
    }

    #[test]
    fn profile_config_is_validated() {
        let c: DiskProfileConfig = serde_json::from_str(r#"{"by_name": {"vda": "ssd"}}"#).unwrap();
        let p = DiskProfile::try_from(c).unwrap();
        assert_eq!(p.lookup(None, "vda"), Some(DiskKind::Ssd));
        assert!(serde_json::from_str::<DiskProfileConfig>(r#"{"by_nmae": {}}"#).is_err());
        let c: DiskProfileConfig =
            serde_json::from_str(r#"{"by_serial": {"X": "unknown"}}"#).unwrap();
        assert!(
            DiskProfile::try_from(c)
                .unwrap_err()
                .to_string()
                .contains("by_serial")
        );
    }
}
