//! powercap RAPL zones (`sys/class/powercap/intel-rapl:*`): cumulative energy
//! counters per package, core, uncore, DRAM and platform (psys).
//!
//! Reference: the kernel's `Documentation/power/powercap/powercap.rst`. Each zone
//! has `name`, `energy_uj` (a counter that wraps to 0 after `max_energy_range_uj`)
//! and sub-zones named `intel-rapl:<pkg>:<n>`. Since Linux 5.10 `energy_uj` is
//! readable by root only (the PLATYPUS power side channel, CVE-2020-8694), so an
//! unprivileged agent lists the zones and says in the gaps that the counter is
//! root-only instead of failing.

use super::{Meter, PowerSource};
use crate::hal::{Gaps, ReadError, SysRoot};

/// Where the powercap class lives.
const CLASS_DIR: &str = "sys/class/powercap";

/// Energy consumed between two readings of a counter that wraps to 0 after
/// `max_range_uj`, in µJ. `None` when the counter went backwards and the wrap point
/// is unknown (0) or smaller than the earlier reading: that is a reset (a reloaded
/// driver, a CPU hot-plug), not a wrap, and no delta can be trusted.
///
/// The kernel derives `energy_uj` from a 32-bit register times the energy unit,
/// so the true step across the wrap is one unit (tens of µJ) more than this; a
/// negligible error next to the several joules per second a package draws.
pub fn energy_delta_uj(before: u64, after: u64, max_range_uj: u64) -> Option<u64> {
    if after >= before {
        return Some(after - before);
    }
    if max_range_uj == 0 || before > max_range_uj {
        return None;
    }
    Some(max_range_uj - before + after)
}

/// Reads every RAPL zone under `root`.
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
    for entry in &entries {
        // Zones are `<control type>:<index>[:<index>]` (`intel-rapl:0`,
        // `intel-rapl:0:1`, `intel-rapl-mmio:0`); the bare control type has no counter.
        let Some((control, indices)) = entry.split_once(':') else {
            continue;
        };
        if !control.contains("rapl") {
            continue;
        }
        let rel = format!("{CLASS_DIR}/{entry}");
        let Some(name) = note(
            gaps,
            &format!("{rel}/name"),
            root.read_string(&format!("{rel}/name")),
        ) else {
            continue;
        };
        // A sub-zone's name (`core`, `dram`) only means something with its parent's.
        let name = match indices.rsplit_once(':') {
            Some((parent, _)) => {
                let parent_rel = format!("{CLASS_DIR}/{control}:{parent}/name");
                match root.read_string(&parent_rel) {
                    Ok(p) => format!("{p}/{name}"),
                    Err(_) => format!("{control}:{parent}/{name}"),
                }
            }
            None => name,
        };
        // Two control types (MSR and MMIO) can both have a `package-0`.
        let name = if control == "intel-rapl" {
            name
        } else {
            format!("{control}/{name}")
        };
        let mut m = Meter::new(PowerSource::Rapl, name);
        m.device = Some(rel.clone());
        let energy = format!("{rel}/energy_uj");
        m.energy_joules = energy_joules(root.read_parse::<u64>(&energy), &energy, gaps);
        let max = format!("{rel}/max_energy_range_uj");
        m.energy_max_joules =
            note(gaps, &max, root.read_parse::<u64>(&max)).map(|uj| uj as f64 / 1e6);
        meters.push(m);
    }
    meters
}

/// The counter in J, or the reason it is missing in `gaps`; a refused read says
/// the file is root-only, which is why it is refused.
fn energy_joules(r: Result<u64, ReadError>, path: &str, gaps: &mut Gaps) -> Option<f64> {
    match r {
        Ok(uj) => Some(uj as f64 / 1e6),
        Err(e @ ReadError::PermissionDenied(_)) => {
            gaps.push(
                path,
                format!("{e} (root only since Linux 5.10, CVE-2020-8694)"),
            );
            None
        }
        Err(e) => note(gaps, path, Err(e)),
    }
}

fn note<T>(gaps: &mut Gaps, what: &str, r: Result<T, ReadError>) -> Option<T> {
    match r {
        Err(ReadError::NoData(_)) => None,
        r => gaps.note(what, r),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delta_without_wrap() {
        assert_eq!(energy_delta_uj(100, 250, 1000), Some(150));
        assert_eq!(energy_delta_uj(5, 5, 0), Some(0));
    }

    #[test]
    fn delta_across_wrap() {
        // 262143328850 is a real package range (fixture `intel-rapl:0`).
        let max = 262_143_328_850;
        assert_eq!(energy_delta_uj(max - 1_000, 500, max), Some(1_500));
        assert_eq!(energy_delta_uj(max, 0, max), Some(0));
    }

    #[test]
    fn backwards_without_known_range_is_a_reset() {
        assert_eq!(energy_delta_uj(500, 100, 0), None);
        assert_eq!(energy_delta_uj(2_000, 100, 1_000), None);
    }

    #[test]
    fn root_only_counter_is_reported_as_such() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let z = dir.path().join("sys/class/powercap/intel-rapl:0");
        std::fs::create_dir_all(&z).unwrap();
        std::fs::write(z.join("name"), "package-0\n").unwrap();
        std::fs::write(z.join("max_energy_range_uj"), "262143328850\n").unwrap();
        std::fs::write(z.join("energy_uj"), "1\n").unwrap();
        std::fs::set_permissions(z.join("energy_uj"), std::fs::Permissions::from_mode(0o000))
            .unwrap();
        let root = SysRoot::at(dir.path()).unwrap();
        let mut gaps = Gaps::default();
        let m = collect(&root, &mut gaps);
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].energy_max_joules, Some(262_143.328_85));
        // Root reads through mode 000; only check the report when we are not root.
        if m[0].energy_joules.is_none() {
            assert!(gaps.0[0].reason.contains("root only"), "{gaps:?}");
        }
        // The classification itself, whoever runs the test.
        let mut gaps = Gaps::default();
        let denied =
            ReadError::PermissionDenied("sys/class/powercap/intel-rapl:0/energy_uj".into());
        assert_eq!(energy_joules(Err(denied), "energy_uj", &mut gaps), None);
        assert_eq!(gaps.0[0].what, "energy_uj");
        assert!(gaps.0[0].reason.contains("root only"), "{gaps:?}");
        assert_eq!(
            energy_joules(Ok(2_500_000), "energy_uj", &mut gaps),
            Some(2.5)
        );
    }
}
