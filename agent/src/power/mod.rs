//! Power meters: RAPL, hwmon power/energy, power_supply, INA2xx over I2C and IPMI
//! DCMI. Every reading names its source.
//!
//! A [`Meter`] is one thing that measures power or energy. Sources differ in what
//! they give: RAPL and hwmon `energyN` are cumulative counters (`energy_joules`,
//! which telemetry turns into watts between two samples, across wraps with
//! [`rapl::energy_delta_uj`]); hwmon `powerN`, batteries, INA2xx chips and the BMC
//! give instantaneous `watts`. This module only reads; it does not integrate or
//! judge, and it does not estimate (no `estimate` meter is produced here).
//!
//! - [`rapl`]: powercap zones (`sys/class/powercap/intel-rapl:*`).
//! - [`power_supply`]: AC adapters and batteries (`sys/class/power_supply`).
//! - [`dcmi`]: `ipmitool dcmi power reading` on hosts with a BMC.
//! - hwmon power and energy sensors ([`from_sensors`]); INA2xx meters come from
//!   [`crate::sensors::i2c::collect`].

use serde::Serialize;

use crate::{
    hal::{Gaps, SysRoot},
    sensors::{Sensor, SensorKind},
};

pub mod dcmi;
pub mod logind;
pub mod power_supply;
pub mod rapl;

/// Where a power reading came from. The JSON names are part of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PowerSource {
    /// powercap RAPL zones.
    Rapl,
    /// hwmon power/energy attributes.
    Hwmon,
    /// `power_supply` class (AC adapters, batteries).
    PowerSupply,
    /// An INA2xx chip over I2C.
    I2c,
    /// IPMI DCMI power reading.
    Dcmi,
    /// A model estimate when nothing measures.
    Estimate,
}

/// One power meter.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Meter {
    /// The source kind.
    pub source: PowerSource,
    /// The meter's name, unique within its source (e.g. `package-0`,
    /// `package-0/core`, `BAT0`, `platform/coretemp.0/power1`, `i2c-1/0x40`).
    pub name: String,
    /// Where it was read: a path relative to the hardware root for sysfs sources,
    /// the I2C bus and address, or `ipmitool` for DCMI.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// Instantaneous power, W.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub watts: Option<f64>,
    /// Cumulative energy, J.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub energy_joules: Option<f64>,
    /// The value at which `energy_joules` wraps to 0 (RAPL `max_energy_range_uj`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub energy_max_joules: Option<f64>,
    /// Voltage, V (batteries, INA2xx bus voltage).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volts: Option<f64>,
    /// Current, A (batteries, INA2xx).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amps: Option<f64>,
    /// Whether an AC adapter or USB supply is connected (`online`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub online: Option<bool>,
    /// A battery's stored energy now, J (`energy_now`). Not cumulative.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stored_joules: Option<f64>,
    /// A battery's stored energy when full, J (`energy_full`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub full_joules: Option<f64>,
    /// A battery's charge, % (`capacity`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capacity_percent: Option<f64>,
    /// A battery's status text (`Charging`, `Discharging`, `Full`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

impl Meter {
    /// A meter with no readings yet.
    pub fn new(source: PowerSource, name: impl Into<String>) -> Self {
        Self {
            source,
            name: name.into(),
            device: None,
            watts: None,
            energy_joules: None,
            energy_max_joules: None,
            volts: None,
            amps: None,
            online: None,
            stored_joules: None,
            full_joules: None,
            capacity_percent: None,
            status: None,
        }
    }
}

/// Reads every power meter under `root`: RAPL, hwmon power/energy, power_supply,
/// and on the live host the BMC's DCMI reading when an IPMI device exists.
/// Unreadable parts are recorded in `gaps`.
pub fn collect(root: &SysRoot, gaps: &mut Gaps) -> Vec<Meter> {
    // hwmon problems are reported by the sensors collector; reading the chips
    // here must not report them twice.
    let hwmon = crate::sensors::hwmon::collect(root, &mut Gaps::default());
    collect_with_hwmon(root, gaps, &hwmon)
}

/// [`collect`] for a caller that has just read the hwmon sensors (the inventory
/// pass): their power and energy channels become meters without walking every
/// chip a second time, which was half the cost of an inventory pass on
/// sensor-rich machines.
pub fn collect_with_hwmon(root: &SysRoot, gaps: &mut Gaps, hwmon: &[Sensor]) -> Vec<Meter> {
    let mut meters = rapl::collect(root, gaps);
    meters.extend(from_sensors(hwmon));
    meters.extend(power_supply::collect(root, gaps));
    if root.is_host() && dcmi::bmc_present(root) {
        meters.extend(dcmi::collect(&dcmi::SystemIpmitool, gaps));
    }
    meters
}

/// hwmon `powerN` (W) and `energyN` (J) sensors as meters.
pub fn from_sensors(sensors: &[Sensor]) -> Vec<Meter> {
    sensors
        .iter()
        .filter_map(|s| {
            let mut m = Meter::new(PowerSource::Hwmon, format!("{}/{}", s.chip_id, s.sensor));
            m.device = Some(s.chip.clone());
            match s.kind {
                SensorKind::Power => m.watts = s.value,
                SensorKind::Energy => m.energy_joules = s.value,
                _ => return None,
            }
            Some(m)
        })
        .collect()
}

/// Average power between two readings of a cumulative energy counter, W; `None`
/// when no time passed or the counter went backwards without a known wrap point.
pub fn average_watts(
    before_j: f64,
    after_j: f64,
    wrap_j: Option<f64>,
    seconds: f64,
) -> Option<f64> {
    if seconds <= 0.0 {
        return None;
    }
    let delta = if after_j >= before_j {
        after_j - before_j
    } else {
        let wrap = wrap_j.filter(|w| *w >= before_j)?;
        wrap - before_j + after_j
    };
    Some(delta / seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hwmon_power_and_energy_become_meters() {
        let mut p = Sensor::new("power_meter", "ACPI0000:00", "power1", SensorKind::Power);
        p.value = Some(180.5);
        let mut e = Sensor::new(
            "amd_energy",
            "platform/amd_energy.0",
            "energy1",
            SensorKind::Energy,
        );
        e.value = Some(1234.0);
        let t = Sensor::new(
            "coretemp",
            "platform/coretemp.0",
            "temp1",
            SensorKind::Temperature,
        );
        let m = from_sensors(&[p, e, t]);
        assert_eq!(m.len(), 2);
        assert_eq!(
            (m[0].source, m[0].name.as_str(), m[0].watts),
            (PowerSource::Hwmon, "ACPI0000:00/power1", Some(180.5))
        );
        assert_eq!((m[1].energy_joules, m[1].watts), (Some(1234.0), None));
    }

    #[test]
    fn average_watts_handles_wrap_and_reset() {
        assert_eq!(average_watts(10.0, 30.0, None, 2.0), Some(10.0));
        assert_eq!(average_watts(90.0, 10.0, Some(100.0), 2.0), Some(10.0));
        assert_eq!(average_watts(90.0, 10.0, None, 2.0), None);
        assert_eq!(average_watts(1.0, 2.0, None, 0.0), None);
    }
}
