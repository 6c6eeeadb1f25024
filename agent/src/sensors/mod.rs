//! Sensors: the kernel's hwmon ABI and I2C/SMBus chips read through embedded-hal
//! drivers. Values are converted to SI units; a faulted sensor has no value, never 0.
//!
//! Two sources feed the same [`Sensor`] type:
//!
//! - [`hwmon`]: every chip under `sys/class/hwmon`, read through a
//!   [`SysRoot`] so captured machines work like the host
//!   ([`collect`]).
//! - [`i2c`]: chips the kernel has no driver bound for, listed in the board
//!   configuration and read through embedded-hal 1.0 drivers over Linux i2c-dev,
//!   either with combined transfers or through the [`i2c::SmbusI2c`] adapter
//!   ([`i2c::collect`]). The inventory reads them through an
//!   [`i2c::I2cSource`], from the board file [`i2c::BOARD_FILE`].
//!
//! This module deliberately does not judge readings (that is `health`) and does not
//! keep history (that is `telemetry`).

use serde::Serialize;

use crate::hal::{Gaps, SysRoot};

pub mod hwmon;
pub mod i2c;

/// What a sensor measures. The JSON names are part of the inventory contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SensorKind {
    /// °C.
    Temperature,
    /// RPM.
    Fan,
    /// V.
    Voltage,
    /// A.
    Current,
    /// W.
    Power,
    /// J.
    Energy,
    /// % relative humidity.
    Humidity,
    /// Chassis intrusion (1 = opened).
    Intrusion,
}

impl SensorKind {
    /// The SI unit symbol of values of this kind, for human output.
    pub fn unit(self) -> &'static str {
        match self {
            Self::Temperature => "°C",
            Self::Fan => "RPM",
            Self::Voltage => "V",
            Self::Current => "A",
            Self::Power => "W",
            Self::Energy => "J",
            Self::Humidity => "%",
            Self::Intrusion => "",
        }
    }
}

/// One sensor reading with the thresholds the chip reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sensor {
    /// The chip's `name` file (e.g. `coretemp`, `nvme`, `lm75`); `hwmonN` only when
    /// the chip has no `name` at all.
    pub chip: String,
    /// A stable chip identity derived from its device path, not from `hwmonN`:
    /// the device under `/sys/devices` (`platform/coretemp.0`,
    /// `pci0000:00/0000:00:18.3`), with `/<name>` appended when several hwmon chips
    /// share one device; `i2c-<bus>/0x<addr>` for board-configured I2C chips.
    pub chip_id: String,
    /// The hwmon file stem, e.g. `temp1`, `fan2`, `in0`.
    pub sensor: String,
    /// The `_label` text, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// What it measures.
    pub kind: SensorKind,
    /// The reading in SI units; absent when the sensor is faulted or has no data.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// Low threshold, SI units.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// High threshold, SI units.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// Critical threshold, SI units.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crit: Option<f64>,
    /// The chip's alarm flags, combined: true when any of `_alarm`,
    /// `_min_alarm`, `_max_alarm`, `_lcrit_alarm`, `_crit_alarm`,
    /// `_emergency_alarm` is set; absent when the chip has none of them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alarm: Option<bool>,
}

impl Sensor {
    /// A sensor with no reading and no thresholds, for building one field by field.
    pub fn new(chip: &str, chip_id: &str, sensor: &str, kind: SensorKind) -> Self {
        Self {
            chip: chip.to_owned(),
            chip_id: chip_id.to_owned(),
            sensor: sensor.to_owned(),
            label: None,
            kind,
            value: None,
            min: None,
            max: None,
            crit: None,
            alarm: None,
        }
    }
}

/// Reads every hwmon sensor under `root`. Unreadable parts are recorded in `gaps`.
///
/// I2C chips from the board configuration are read separately
/// ([`i2c::I2cSource::collect`], called by the inventory), because they need the
/// configuration and real buses.
pub fn collect(root: &SysRoot, gaps: &mut Gaps) -> Vec<Sensor> {
    hwmon::collect(root, gaps)
}
