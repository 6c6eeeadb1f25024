//! The `power_supply` class: AC adapters, USB supplies, UPSes and batteries.
//!
//! Reference: the kernel's `Documentation/ABI/testing/sysfs-class-power` and
//! `Documentation/power/power_supply_class.rst`. Units are µV, µA, µW and µWh;
//! `capacity` is a percentage. A battery that reports no `power_now` is metered as
//! `current_now × voltage_now`, which is what the class defines power to be.

use super::{Meter, PowerSource};
use crate::hal::{Gaps, ReadError, SysRoot};

/// Where the class lives.
const CLASS_DIR: &str = "sys/class/power_supply";

/// J per µWh: 1 µWh = 1e-6 W × 3600 s.
const JOULES_PER_UWH: f64 = 3600.0 / 1e6;

/// Reads every power supply under `root`.
pub fn collect(root: &SysRoot, gaps: &mut Gaps) -> Vec<Meter> {
    let entries = match root.list(CLASS_DIR) {
        Ok(e) => e,
        Err(e) if e.is_not_found() => return Vec::new(),
        Err(e) => {
            gaps.push(CLASS_DIR, e);
            return Vec::new();
        }
    };
    let mut meters = Vec::new();
    for name in entries {
        let rel = format!("{CLASS_DIR}/{name}");
        if !root.path(&rel).is_dir() {
            continue;
        }
        let text = |gaps: &mut Gaps, attr: &str| {
            let path = format!("{rel}/{attr}");
            match root.read_string(&path) {
                Err(ReadError::NoData(_)) => None,
                r => gaps.note(&path, r),
            }
        };
        let num = |gaps: &mut Gaps, attr: &str| {
            let path = format!("{rel}/{attr}");
            match root.read_parse::<f64>(&path) {
                Err(ReadError::NoData(_)) => None,
                r => gaps.note(&path, r),
            }
        };
        let kind = text(gaps, "type");
        let mut m = Meter::new(PowerSource::PowerSupply, name.clone());
        m.device = Some(rel.clone());
        m.online = num(gaps, "online").map(|v| v != 0.0);
        m.volts = num(gaps, "voltage_now").map(|uv| uv / 1e6);
        m.amps = num(gaps, "current_now").map(|ua| ua / 1e6);
        m.watts = num(gaps, "power_now")
            .map(|uw| uw / 1e6)
            .or_else(|| Some(m.volts? * m.amps?));
        if kind.as_deref() == Some("Battery") {
            m.stored_joules = num(gaps, "energy_now").map(|uwh| uwh * JOULES_PER_UWH);
            m.full_joules = num(gaps, "energy_full").map(|uwh| uwh * JOULES_PER_UWH);
            m.capacity_percent = num(gaps, "capacity");
            m.status = text(gaps, "status");
        }
        meters.push(m);
    }
    meters
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn battery_without_power_now_uses_current_times_voltage() {
        let dir = tempfile::tempdir().unwrap();
        let b = dir.path().join("sys/class/power_supply/BAT1");
        std::fs::create_dir_all(&b).unwrap();
        for (f, v) in [
            ("type", "Battery"),
            ("voltage_now", "12000000"),
            ("current_now", "500000"),
            ("energy_now", "1000000"),
            ("status", "Charging"),
            ("capacity", "50"),
        ] {
            std::fs::write(b.join(f), format!("{v}\n")).unwrap();
        }
        let root = SysRoot::at(dir.path()).unwrap();
        let mut gaps = Gaps::default();
        let m = collect(&root, &mut gaps);
        assert_eq!(m.len(), 1);
        assert_eq!(
            (m[0].volts, m[0].amps, m[0].watts),
            (Some(12.0), Some(0.5), Some(6.0))
        );
        assert_eq!(m[0].stored_joules, Some(3600.0));
        assert_eq!(m[0].capacity_percent, Some(50.0));
        assert_eq!(m[0].status.as_deref(), Some("Charging"));
        assert!(gaps.0.is_empty());
    }
}
