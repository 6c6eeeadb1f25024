//! The typed inventory of one machine: DMI, CPU, memory, disks, NICs, sensors,
//! power meters, capacity and health, read through a [`SysRoot`].
//!
//! Its JSON form (`nodus agent inventory --json`) is a contract; see
//! `agent/INVENTORY.md`. Collection never fails and never panics: what could not
//! be read is listed in [`Inventory::gaps`] and the rest is reported.
//!
//! ```no_run
//! let root = nodus_agent::hal::SysRoot::host();
//! let inv = nodus_agent::inventory::collect(&root);
//! println!("{} disks, {:?} CPUs", inv.disks.len(), inv.cpu.logical);
//! ```

mod cpu;
mod dmi;
mod memory;

use std::{collections::BTreeSet, path::PathBuf};

use serde::Serialize;

pub use cpu::Cpu;
pub use dmi::{Bios, Board, Chassis, Dmi};
pub use memory::Memory;

pub use crate::disks::Disk;
use crate::{
    capacity::Capacity,
    disks::{DiskProfile, probe::SeekDevice},
    hal::{Gaps, SysRoot},
    health::Health,
    net::Nic,
    power::Meter,
    sensors::{Sensor, i2c::I2cSource},
    smart::SmartRunner,
};

/// Whether the agent may act on the hardware (see DESIGN.md, "Modes").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Read-only: inventory reads sysfs, procfs and the first/last sectors of disks.
    #[default]
    Observe,
    /// Full control: inventory may also run the seek probe on disks whose kind is
    /// unknown and persist the result.
    Managed,
}

/// Opens a device for the seek probe (the real one opens `O_DIRECT`; tests pass a
/// fake).
pub type ProbeOpener = Box<dyn Fn(&std::path::Path) -> std::io::Result<Box<dyn SeekDevice>>>;

/// Inputs of an inventory pass beyond the root.
#[derive(Default)]
pub struct Options {
    /// Observe or managed.
    pub mode: Mode,
    /// The agent's state directory, where probe results are persisted by serial.
    /// `None`: nothing persisted is read or written.
    pub state_dir: Option<PathBuf>,
    /// Disk kinds from the board profile.
    pub profile: DiskProfile,
    /// Serials of disks the owner approved wiping (the signed approval flow sets
    /// this; here it is a plain input).
    pub approved_serials: BTreeSet<String>,
    /// How to run smartctl; `None` skips SMART (captured trees).
    pub smart: Option<Box<dyn SmartRunner>>,
    /// How to open a device for the seek probe; `None` uses `O_DIRECT` on `dev/NAME`.
    pub probe_opener: Option<ProbeOpener>,
    /// The board's I2C sensor chips (configured, never probed); `None` reads
    /// none. Their temperatures, voltages, currents and power join the hwmon
    /// sensors, and each INA2xx also becomes an `i2c` power meter.
    pub i2c: Option<I2cSource>,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("mode", &self.mode)
            .field("state_dir", &self.state_dir)
            .field("profile", &self.profile)
            .field("approved_serials", &self.approved_serials)
            .field("smart", &self.smart.is_some())
            .field("probe_opener", &self.probe_opener.is_some())
            .field("i2c", &self.i2c)
            .finish()
    }
}

impl Options {
    /// The defaults for `root`: observe mode, and real smartctl and the I2C
    /// chips of [`crate::sensors::i2c::BOARD_FILE`] only on the live host (on a
    /// captured tree the devices are not this machine's).
    pub fn for_root(root: &SysRoot) -> Self {
        Self {
            smart: root
                .is_host()
                .then(|| Box::new(crate::smart::Smartctl::default()) as Box<dyn SmartRunner>),
            i2c: root.is_host().then(I2cSource::host),
            ..Self::default()
        }
    }
}

/// Everything the agent knows about the machine's hardware at one moment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Inventory {
    /// DMI identity.
    pub dmi: Dmi,
    /// CPU topology.
    pub cpu: Cpu,
    /// Memory.
    pub memory: Memory,
    /// Block devices.
    pub disks: Vec<Disk>,
    /// Network interfaces.
    pub nics: Vec<Nic>,
    /// Sensors.
    pub sensors: Vec<Sensor>,
    /// Power meters.
    pub power: Vec<Meter>,
    /// Capacity offered to the grid.
    pub capacity: Capacity,
    /// Health of every component.
    pub health: Health,
    /// What could not be read.
    pub gaps: Gaps,
}

/// Collects the inventory under `root` with [`Options::for_root`].
pub fn collect(root: &SysRoot) -> Inventory {
    collect_with(root, &Options::for_root(root))
}

/// Collects the inventory under `root`.
pub fn collect_with(root: &SysRoot, opts: &Options) -> Inventory {
    let mut gaps = Gaps::default();
    if !root.exists("sys") && !root.exists("proc") {
        gaps.push("root", "neither sys/ nor proc/ exists under the root");
    }
    let dmi = dmi::collect(root, &mut gaps);
    let cpu = cpu::collect(root, &mut gaps);
    let memory = memory::collect(root, &mut gaps);
    let disks = crate::disks::collect(root, opts, &mut gaps);
    let nics = crate::net::collect(root, &mut gaps);
    let mut sensors = crate::sensors::collect(root, &mut gaps);
    // Meters from hwmon sensors only: an INA2xx's own meter (source `i2c`)
    // comes with its readings, and must not appear twice.
    let mut power = crate::power::collect_with_hwmon(root, &mut gaps, &sensors);
    if let Some(src) = &opts.i2c {
        let i2c = src.collect(&mut gaps);
        sensors.extend(i2c.sensors);
        power.extend(i2c.meters);
    }
    let capacity = crate::capacity::compute(cpu.logical, memory.total_bytes, &disks);
    let mut inv = Inventory {
        dmi,
        cpu,
        memory,
        disks,
        nics,
        sensors,
        power,
        capacity,
        health: Health::default(),
        gaps,
    };
    inv.health = crate::health::assess(&inv);
    inv
}

/// True for an SMBIOS/identity string that carries no information ("To Be Filled
/// By O.E.M.", all zeros …).
pub(crate) fn dmi_placeholder(s: &str) -> bool {
    dmi::is_placeholder(s)
}

/// An error and its sources on one line, for gap reasons.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::{
        power::PowerSource,
        sensors::{SensorKind, i2c::fake_source as i2c_source},
    };

    #[test]
    fn configured_i2c_chips_join_the_sensors_and_meters() {
        let dir = tempfile::tempdir().unwrap();
        let root = SysRoot::at(dir.path()).unwrap();
        let opts = Options {
            i2c: Some(i2c_source(
                dir.path(),
                r#"{"chips": [
                    {"bus": 1, "address": 72, "model": "lm75", "transfer": "smbus"},
                    {"bus": 1, "address": 64, "model": "ina219", "transfer": "smbus",
                     "shunt_ohms": 0.1, "label": "12V rail"}
                ]}"#,
            )),
            ..Options::default()
        };
        let inv = collect_with(&root, &opts);
        let got: Vec<(&str, &str, SensorKind, f64)> = inv
            .sensors
            .iter()
            .map(|s| {
                (
                    s.chip_id.as_str(),
                    s.sensor.as_str(),
                    s.kind,
                    (s.value.unwrap() * 1e4).round() / 1e4,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("i2c-1/0x48", "temp1", SensorKind::Temperature, 26.5),
                ("i2c-1/0x40", "in1", SensorKind::Voltage, 11.98),
                ("i2c-1/0x40", "curr1", SensorKind::Current, 0.4),
                ("i2c-1/0x40", "power1", SensorKind::Power, 4.792),
            ]
        );
        // The INA219 is one `i2c` meter, not also a second one from its power1.
        assert_eq!(inv.power.len(), 1, "{:?}", inv.power);
        assert_eq!(inv.power[0].source, PowerSource::I2c);
        assert_eq!(inv.power[0].name, "12V rail");
        // The JSON the console and the QEMU checks read.
        let json = serde_json::to_value(&inv).unwrap();
        assert_eq!(json["sensors"][2]["kind"], "current");
    }

    #[test]
    fn a_bad_board_file_is_a_gap_and_no_file_is_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let root = SysRoot::at(dir.path()).unwrap();
        let opts = Options {
            i2c: Some(i2c_source(
                dir.path(),
                r#"{"chips": [{"bus": 0, "address": 64, "model": "ina219"}]}"#,
            )),
            ..Options::default()
        };
        let inv = collect_with(&root, &opts);
        assert!(inv.sensors.is_empty());
        let gap = inv.gaps.0.iter().find(|g| g.what == "i2c board").unwrap();
        assert!(gap.reason.contains("chips[0].shunt_ohms"), "{}", gap.reason);

        let mut src = i2c_source(dir.path(), "{}");
        src.board_file = dir.path().join("absent.json");
        let opts = Options {
            i2c: Some(src),
            ..Options::default()
        };
        let inv = collect_with(&root, &opts);
        assert!(inv.sensors.is_empty());
        assert!(
            !inv.gaps.0.iter().any(|g| g.what.contains("i2c")),
            "{:?}",
            inv.gaps
        );
    }
}
