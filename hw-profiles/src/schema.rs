//! The profile schema: a raw serde layer that mirrors the TOML exactly (unknown
//! fields denied), and a validated [`Profile`] built from it with field-named errors.
//!
//! The keys are a contract: tests outside this repository write profiles with them.
//! New keys may be added; the meaning of existing ones never changes. See
//! `hw-profiles/SCHEMA.md` for the prose version.

use std::{collections::BTreeMap, path::Path};

use serde::{Deserialize, Serialize};

/// Why a profile was refused. Every message names the offending field.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProfileError {
    /// The file could not be read.
    #[error("Cannot read profile {path}")]
    Read {
        /// The profile path.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Not valid TOML, or a key is unknown or has the wrong type.
    #[error("Profile {path}: {message}")]
    Syntax {
        /// The profile path (or `<string>`).
        path: String,
        /// The TOML parser's message, which names the key and line.
        message: String,
    },
    /// A value is out of range or inconsistent.
    #[error("Profile {name}: field `{field}` {problem}")]
    Invalid {
        /// The profile's `name`.
        name: String,
        /// The field, e.g. `disks[2].size_gib`.
        field: String,
        /// What is wrong with it.
        problem: String,
    },
}

// ---------------------------------------------------------------------------
// Raw layer: exactly the TOML.
// ---------------------------------------------------------------------------

/// A profile as written.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawProfile {
    /// Short unique name, `[a-z0-9-]+`.
    pub name: String,
    /// One line saying what machine this imitates and why it matters.
    pub description: String,
    /// CPU and memory.
    pub machine: RawMachine,
    /// SMBIOS identity.
    pub dmi: RawDmi,
    /// Block devices.
    #[serde(default)]
    pub disks: Vec<RawDisk>,
    /// Network interfaces.
    #[serde(default)]
    pub nics: Vec<RawNic>,
    /// I2C chips on `i2c-stub` buses.
    #[serde(default)]
    pub i2c: Vec<RawI2c>,
    /// Power truth for the estimate meter.
    pub power: Option<RawPower>,
    /// Faults to inject while running.
    #[serde(default)]
    pub faults: Vec<RawFault>,
    /// What the agent must report.
    pub expect: RawExpect,
}

/// `[machine]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawMachine {
    /// Logical CPUs in total.
    pub cpus: u32,
    /// CPU sockets; `cpus` must divide evenly among them.
    #[serde(default = "one")]
    pub sockets: u32,
    /// Memory in MiB.
    pub memory_mib: u64,
    /// NUMA nodes; sockets and memory are spread evenly over them.
    #[serde(default = "one")]
    pub numa_nodes: u32,
}

fn one() -> u32 {
    1
}

/// `[dmi]`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawDmi {
    /// System vendor (SMBIOS type 1 manufacturer).
    #[serde(default)]
    pub vendor: String,
    /// Product name (type 1).
    #[serde(default)]
    pub product: String,
    /// System serial (type 1).
    #[serde(default)]
    pub serial: String,
    /// Board product (type 2).
    #[serde(default)]
    pub board: String,
    /// BIOS version (type 0).
    #[serde(default)]
    pub bios_version: String,
}

/// `[[disks]]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawDisk {
    /// Id used by faults, unique in the profile.
    pub id: String,
    /// `sata`, `scsi`, `nvme` or `virtio`.
    pub bus: Bus,
    /// Size in GiB (backed by a sparse image, so large sizes cost nothing).
    pub size_gib: u64,
    /// 1 = SSD, 7200 (or any other rpm) = HDD, 0 = unreported.
    #[serde(default)]
    pub rotation_rate: u32,
    /// Model string.
    #[serde(default)]
    pub model: String,
    /// Serial number.
    pub serial: String,
}

/// `[[nics]]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawNic {
    /// Id used by faults, unique in the profile.
    pub id: String,
    /// `virtio` or `e1000e`.
    pub model: NicModel,
    /// MAC address, `xx:xx:xx:xx:xx:xx`.
    pub mac: String,
    /// Link state at boot.
    #[serde(default = "link_up")]
    pub link: Link,
    /// Advertised speed in Mb/s.
    #[serde(default)]
    pub speed_mbps: Option<u32>,
}

fn link_up() -> Link {
    Link::Up
}

/// `[[i2c]]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawI2c {
    /// The i2c-stub bus number.
    pub bus: u8,
    /// 7-bit address.
    pub address: u8,
    /// Chip: `lm75`, `tmp102`, `ina219` or `ina226`.
    pub chip: Chip,
    /// Initial register values: register (decimal or `0x..` string) → 16-bit value.
    #[serde(default)]
    pub registers: BTreeMap<String, u16>,
    /// The shunt resistor of an INA219/INA226, Ω: the agent derives current and
    /// power from the shunt voltage through it. Required for those, refused for
    /// the others.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shunt_ohms: Option<f64>,
}

/// `[power]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawPower {
    /// Draw when idle, W.
    pub idle_watts: f64,
    /// Draw at full load, W.
    pub max_watts: f64,
}

/// `[[faults]]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawFault {
    /// Seconds after the agent is ready.
    pub at_s: f64,
    /// What happens.
    pub action: FaultAction,
    /// The disk or NIC id; absent for `power_button`.
    #[serde(default)]
    pub target: Option<String>,
}

/// `[expect]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawExpect {
    /// Logical CPUs the agent counts.
    pub cru: Option<u32>,
    /// Memory the machine has; the agent's figure must be within 15 % below it
    /// (the kernel keeps some for itself).
    pub memory_mib: Option<u64>,
    /// Disks classed as SATA/SAS SSD.
    pub ssd_disks: Option<u32>,
    /// Disks classed as HDD.
    pub hdd_disks: Option<u32>,
    /// NVMe disks.
    pub nvme_disks: Option<u32>,
    /// Disks whose kind could not be established.
    pub unknown_disks: Option<u32>,
    /// NICs with carrier.
    pub nics_up: Option<u32>,
    /// Overall health.
    pub health: Option<Health>,
    /// Sensor ranges that must be present.
    #[serde(default)]
    pub sensors: Vec<SensorRange>,
}

/// Disk bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Bus {
    /// AHCI SATA.
    Sata,
    /// virtio-scsi.
    Scsi,
    /// NVMe.
    Nvme,
    /// virtio-blk.
    Virtio,
}

/// NIC model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NicModel {
    /// virtio-net (supports `set_link`).
    Virtio,
    /// Intel e1000e (QEMU's `set_link` does not work on it).
    E1000e,
}

/// Link state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Link {
    /// Carrier present.
    Up,
    /// No carrier.
    Down,
}

/// Supported I2C chips.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Chip {
    /// LM75 temperature sensor.
    Lm75,
    /// TMP102 temperature sensor.
    Tmp102,
    /// INA219 power monitor.
    Ina219,
    /// INA226 power monitor.
    Ina226,
}

/// Fault actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultAction {
    /// The disk disappears.
    DiskFail,
    /// The NIC loses carrier.
    LinkDown,
    /// The NIC regains carrier.
    LinkUp,
    /// The NVMe raises its SMART critical warning.
    SmartWarning,
    /// The power button is pressed.
    PowerButton,
}

/// Health levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    /// All fine.
    Ok,
    /// Degraded.
    Warning,
    /// Failed.
    Critical,
}

/// A sensor reading that must be present, within `[min, max]` in SI units.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SensorRange {
    /// The inventory's sensor kind: temperature, fan, voltage, current, power, …
    pub kind: String,
    /// Lowest acceptable value.
    pub min: f64,
    /// Highest acceptable value.
    pub max: f64,
}

// ---------------------------------------------------------------------------
// Validated layer.
// ---------------------------------------------------------------------------

/// A validated profile. Fields keep the raw types; validation guarantees their
/// consistency (unique ids, fault targets exist, topology divides evenly, …).
#[derive(Debug, Clone, Serialize)]
pub struct Profile {
    /// The profile as written, known to be consistent.
    #[serde(flatten)]
    pub raw: RawProfile,
    /// I2C registers parsed to numbers, per chip in `raw.i2c` order.
    #[serde(skip)]
    pub i2c_registers: Vec<BTreeMap<u8, u16>>,
}

/// Largest memory a profile may ask for (QEMU under TCG on a 24 GiB host).
const MAX_MEMORY_MIB: u64 = 16 * 1024;
/// Largest CPU count: TCG runs one host thread per vCPU on a 2-core machine.
const MAX_CPUS: u32 = 64;

impl Profile {
    /// Parses and validates a profile from TOML text; `path` is used in messages.
    pub fn from_toml(text: &str, path: &str) -> Result<Self, ProfileError> {
        let raw: RawProfile = toml::from_str(text).map_err(|e| ProfileError::Syntax {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        Self::try_from(raw)
    }

    /// Reads, parses and validates a profile file.
    pub fn load(path: &Path) -> Result<Self, ProfileError> {
        let text = std::fs::read_to_string(path).map_err(|source| ProfileError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_toml(&text, &path.display().to_string())
    }

    /// The profile's name.
    pub fn name(&self) -> &str {
        &self.raw.name
    }
}

fn parse_register(s: &str) -> Option<u8> {
    let t = s.trim();
    match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => u8::from_str_radix(hex, 16).ok(),
        None => t.parse().ok(),
    }
}

fn valid_mac(mac: &str) -> bool {
    let parts: Vec<&str> = mac.split(':').collect();
    parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()))
        // The low bit of the first octet marks multicast; a NIC cannot have one.
        && u8::from_str_radix(parts[0], 16).is_ok_and(|b| b & 1 == 0)
}

impl TryFrom<RawProfile> for Profile {
    type Error = ProfileError;

    fn try_from(raw: RawProfile) -> Result<Self, Self::Error> {
        let bad = |field: String, problem: String| ProfileError::Invalid {
            name: raw.name.clone(),
            field,
            problem,
        };
        if raw.name.is_empty()
            || !raw
                .name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err(bad("name".into(), "must be non-empty [a-z0-9-]".into()));
        }
        let m = &raw.machine;
        if m.cpus == 0 || m.cpus > MAX_CPUS {
            return Err(bad(
                "machine.cpus".into(),
                format!("must be 1..={MAX_CPUS}"),
            ));
        }
        if m.sockets == 0 || !m.cpus.is_multiple_of(m.sockets) {
            return Err(bad(
                "machine.sockets".into(),
                format!("must divide machine.cpus ({}) evenly", m.cpus),
            ));
        }
        if m.numa_nodes == 0 || !m.cpus.is_multiple_of(m.numa_nodes) {
            return Err(bad(
                "machine.numa_nodes".into(),
                format!("must divide machine.cpus ({}) evenly", m.cpus),
            ));
        }
        if m.memory_mib < 256 || m.memory_mib > MAX_MEMORY_MIB {
            return Err(bad(
                "machine.memory_mib".into(),
                format!("must be 256..={MAX_MEMORY_MIB}"),
            ));
        }
        if !m.memory_mib.is_multiple_of(u64::from(m.numa_nodes)) {
            return Err(bad(
                "machine.memory_mib".into(),
                "must divide evenly among machine.numa_nodes".into(),
            ));
        }

        let mut ids = std::collections::BTreeSet::new();
        for (i, d) in raw.disks.iter().enumerate() {
            if d.id.is_empty() || !ids.insert(d.id.clone()) {
                return Err(bad(
                    format!("disks[{i}].id"),
                    "must be unique and non-empty".into(),
                ));
            }
            if d.size_gib == 0 || d.size_gib > 64 * 1024 {
                return Err(bad(
                    format!("disks[{i}].size_gib"),
                    "must be 1..=65536".into(),
                ));
            }
            if d.serial.is_empty() || d.serial.len() > 20 || !d.serial.is_ascii() {
                // 20 is the ATA IDENTIFY serial field width; QEMU truncates beyond it.
                return Err(bad(
                    format!("disks[{i}].serial"),
                    "must be 1..=20 ASCII characters".into(),
                ));
            }
            if d.bus == Bus::Nvme && d.rotation_rate > 1 {
                return Err(bad(
                    format!("disks[{i}].rotation_rate"),
                    "an NVMe disk cannot spin".into(),
                ));
            }
        }
        for (i, n) in raw.nics.iter().enumerate() {
            if n.id.is_empty() || !ids.insert(n.id.clone()) {
                return Err(bad(
                    format!("nics[{i}].id"),
                    "must be unique among disks and nics".into(),
                ));
            }
            if !valid_mac(&n.mac) {
                return Err(bad(
                    format!("nics[{i}].mac"),
                    format!("{:?} is not a unicast xx:xx:xx:xx:xx:xx address", n.mac),
                ));
            }
        }
        let mut i2c_registers = Vec::new();
        let mut addrs = std::collections::BTreeSet::new();
        for (i, c) in raw.i2c.iter().enumerate() {
            if !(0x03..=0x77).contains(&c.address) {
                return Err(bad(
                    format!("i2c[{i}].address"),
                    "must be a 7-bit address in 0x03..=0x77".into(),
                ));
            }
            if !addrs.insert((c.bus, c.address)) {
                return Err(bad(
                    format!("i2c[{i}].address"),
                    "used twice on one bus".into(),
                ));
            }
            let needs_shunt = matches!(c.chip, Chip::Ina219 | Chip::Ina226);
            match (needs_shunt, c.shunt_ohms) {
                (true, Some(r)) if r.is_finite() && r > 0.0 => {}
                (true, _) => {
                    return Err(bad(
                        format!("i2c[{i}].shunt_ohms"),
                        "INA219/INA226 need a shunt resistance > 0 (ohms)".into(),
                    ));
                }
                (false, Some(_)) => {
                    return Err(bad(
                        format!("i2c[{i}].shunt_ohms"),
                        "only INA219/INA226 have a shunt".into(),
                    ));
                }
                (false, None) => {}
            }
            let mut regs = BTreeMap::new();
            for (k, v) in &c.registers {
                let r = parse_register(k).ok_or_else(|| {
                    bad(
                        format!("i2c[{i}].registers.{k}"),
                        "register must be 0..=255, decimal or 0x hex".into(),
                    )
                })?;
                regs.insert(r, *v);
            }
            i2c_registers.push(regs);
        }
        if let Some(p) = &raw.power
            && !(p.idle_watts >= 0.0 && p.max_watts >= p.idle_watts && p.max_watts.is_finite())
        {
            return Err(bad(
                "power".into(),
                "needs 0 <= idle_watts <= max_watts".into(),
            ));
        }
        for (i, f) in raw.faults.iter().enumerate() {
            if !(f.at_s.is_finite() && f.at_s >= 0.0) {
                return Err(bad(format!("faults[{i}].at_s"), "must be >= 0".into()));
            }
            let needs = match f.action {
                FaultAction::DiskFail | FaultAction::SmartWarning => Some("disk"),
                FaultAction::LinkDown | FaultAction::LinkUp => Some("nic"),
                FaultAction::PowerButton => None,
            };
            match (needs, &f.target) {
                (None, None) => {}
                (None, Some(_)) => {
                    return Err(bad(
                        format!("faults[{i}].target"),
                        "power_button takes no target".into(),
                    ));
                }
                (Some(kind), None) => {
                    return Err(bad(
                        format!("faults[{i}].target"),
                        format!("needs a {kind} id"),
                    ));
                }
                (Some(kind), Some(t)) => {
                    let disk = raw.disks.iter().find(|d| &d.id == t);
                    let ok = match kind {
                        "disk" => disk.is_some_and(|d| {
                            f.action != FaultAction::SmartWarning || d.bus == Bus::Nvme
                        }),
                        _ => raw.nics.iter().any(|n| &n.id == t),
                    };
                    if !ok {
                        return Err(bad(
                            format!("faults[{i}].target"),
                            format!(
                                "{t:?} is not a {kind} of this profile{}",
                                if f.action == FaultAction::SmartWarning {
                                    " (smart_warning needs an NVMe disk)"
                                } else {
                                    ""
                                }
                            ),
                        ));
                    }
                }
            }
        }
        for (i, s) in raw.expect.sensors.iter().enumerate() {
            if s.min.is_nan() || s.max.is_nan() || s.min > s.max {
                return Err(bad(
                    format!("expect.sensors[{i}]"),
                    "needs min <= max".into(),
                ));
            }
        }
        Ok(Self { raw, i2c_registers })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
name = "tiny"
description = "smallest valid profile"
[machine]
cpus = 2
memory_mib = 1024
[dmi]
vendor = "QEMU"
[expect]
cru = 2
"#;

    #[test]
    fn minimal_profile_parses_with_defaults() {
        let p = Profile::from_toml(MINIMAL, "tiny.toml").unwrap();
        assert_eq!(p.raw.machine.sockets, 1);
        assert_eq!(p.raw.machine.numa_nodes, 1);
        assert!(p.raw.disks.is_empty());
    }

    #[test]
    fn unknown_key_is_refused_with_its_name() {
        let text = MINIMAL.replace("cpus = 2", "cpus = 2\ncores = 4");
        let err = Profile::from_toml(&text, "x.toml").unwrap_err().to_string();
        assert!(err.contains("cores"), "{err}");
    }

    #[test]
    fn bad_values_name_the_field() {
        let cases = [
            (
                MINIMAL.replace("cpus = 2", "cpus = 3\nsockets = 2"),
                "machine.sockets",
            ),
            (
                MINIMAL.replace("memory_mib = 1024", "memory_mib = 10"),
                "machine.memory_mib",
            ),
            (
                format!(
                    "{MINIMAL}\n[[nics]]\nid = \"n\"\nmodel = \"virtio\"\nmac = \"01:00:00:00:00:01\"\n"
                ),
                "nics[0].mac",
            ),
            (
                format!(
                    "{MINIMAL}\n[[faults]]\nat_s = 1\naction = \"link_down\"\ntarget = \"nope\"\n"
                ),
                "faults[0].target",
            ),
            (
                format!("{MINIMAL}\n[[i2c]]\nbus = 0\naddress = 0x40\nchip = \"ina219\"\n"),
                "i2c[0].shunt_ohms",
            ),
            (
                format!(
                    "{MINIMAL}\n[[i2c]]\nbus = 0\naddress = 0x48\nchip = \"lm75\"\nshunt_ohms = 0.1\n"
                ),
                "i2c[0].shunt_ohms",
            ),
        ];
        for (text, field) in cases {
            // `[expect]` must stay last in these snippets for TOML scoping; move it.
            let text = text.replace("[expect]\ncru = 2\n", "") + "\n[expect]\ncru = 2\n";
            let err = Profile::from_toml(&text, "x.toml").unwrap_err().to_string();
            assert!(err.contains(field), "expected {field} in: {err}");
        }
    }

    #[test]
    fn smart_warning_needs_an_nvme_target() {
        let text = r#"
name = "t"
description = "d"
[machine]
cpus = 1
memory_mib = 512
[dmi]
[[disks]]
id = "d0"
bus = "sata"
size_gib = 1
serial = "S0"
[[faults]]
at_s = 1
action = "smart_warning"
target = "d0"
[expect]
"#;
        let err = Profile::from_toml(text, "t.toml").unwrap_err().to_string();
        assert!(err.contains("NVMe"), "{err}");
    }

    #[test]
    fn registers_accept_hex_and_decimal() {
        assert_eq!(parse_register("0x48"), Some(0x48));
        assert_eq!(parse_register("7"), Some(7));
        assert_eq!(parse_register("0x100"), None);
        assert_eq!(parse_register("x"), None);
    }
}
