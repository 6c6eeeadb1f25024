//! The kernel's hwmon sysfs ABI, read through a [`SysRoot`].
//!
//! Reference: the kernel's `Documentation/hwmon/sysfs-interface.rst`. Each chip is a
//! `sys/class/hwmon/hwmonN` directory holding `<type><index>_<item>` files:
//! `temp1_input`, `fan2_min`, `in0_alarm`, `intrusion0_alarm` … Values are integers
//! in fixed units (m°C, RPM, mV, mA, µW, µJ, m%RH), converted here to SI units.
//!
//! Three details of that ABI decide how this file reads it:
//!
//! - `hwmonN` numbers follow module load order and change across reboots, so a
//!   chip is identified by the device it belongs to (`hwmonN/device`, or the
//!   directory the class device sits in), never by `N`.
//! - Drivers written before the hwmon class existed keep their attributes in the
//!   parent device directory (`hwmonN/device/fan1_input`, e.g. `applesmc`); both
//!   places are read, the class directory winning when both have a file.
//! - `_fault` = 1, or an attribute that returns ENODATA ("the sensor read will
//!   return -ENODATA" when disabled, per the ABI), means there is no value. That is
//!   reported as an absent value, never as 0.

use std::collections::{BTreeMap, HashMap};

use super::{Sensor, SensorKind};
use crate::hal::{Gaps, ReadError, SysRoot};

/// The alarm items of the ABI, folded into one flag.
const ALARMS: &[&str] = &[
    "alarm",
    "min_alarm",
    "max_alarm",
    "lcrit_alarm",
    "crit_alarm",
    "emergency_alarm",
];

/// Where the class lists hwmon chips.
const CLASS_DIR: &str = "sys/class/hwmon";

/// Attribute types of the ABI that this module reads, with what they measure and
/// the divisor from the ABI's fixed unit to SI (sysfs-interface.rst, "Naming and
/// data format standards"). The order is the output order within a chip.
const TYPES: &[(&str, SensorKind, f64)] = &[
    // millidegree Celsius
    ("temp", SensorKind::Temperature, 1000.0),
    // revolutions per minute
    ("fan", SensorKind::Fan, 1.0),
    // millivolt
    ("in", SensorKind::Voltage, 1000.0),
    // milliampere
    ("curr", SensorKind::Current, 1000.0),
    // microwatt
    ("power", SensorKind::Power, 1_000_000.0),
    // microjoule
    ("energy", SensorKind::Energy, 1_000_000.0),
    // milli-percent relative humidity
    ("humidity", SensorKind::Humidity, 1000.0),
    // a flag, 1 = chassis opened
    ("intrusion", SensorKind::Intrusion, 1.0),
];

/// Splits an attribute file name `<type><index>[_<item>]` into its parts; `None`
/// for files that are not sensor attributes of a known type (`name`, `uevent`,
/// `pwm1`, `power/` of the PCI device directory …).
pub fn split_attribute(file: &str) -> Option<(usize, u32, &str)> {
    let letters = file.bytes().take_while(u8::is_ascii_lowercase).count();
    let (ty, rest) = file.split_at(letters);
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let (index, item) = rest.split_at(digits);
    let item = match item.strip_prefix('_') {
        Some(item) if !item.is_empty() => item,
        None if item.is_empty() => "",
        _ => return None,
    };
    let index = index.parse().ok()?;
    let ty = TYPES.iter().position(|(name, ..)| *name == ty)?;
    Some((ty, index, item))
}

/// One hwmon class directory before its sensors are read.
struct Chip {
    /// `hwmonN`.
    dir_name: String,
    /// `sys/class/hwmon/hwmonN`.
    rel: String,
    /// The `name` file, if any.
    name: Option<String>,
    /// The device under `sys/devices`, if one could be found.
    device: Option<String>,
}

/// Reads every hwmon chip under `root`.
pub fn collect(root: &SysRoot, gaps: &mut Gaps) -> Vec<Sensor> {
    let entries = match root.list(CLASS_DIR) {
        Ok(e) => e,
        // No hwmon class at all (a container, a procfs-only capture): nothing to say.
        Err(e) if e.is_not_found() => return Vec::new(),
        Err(e) => {
            gaps.push(CLASS_DIR, e);
            return Vec::new();
        }
    };
    let chips: Vec<Chip> = entries
        .into_iter()
        .filter_map(|dir_name| {
            let rel = format!("{CLASS_DIR}/{dir_name}");
            // Entries are symlinks to directories; anything else is not a chip.
            if !root.path(&rel).is_dir() {
                return None;
            }
            let name = read_text(root, &format!("{rel}/name"), gaps)
                .or_else(|| read_text(root, &format!("{rel}/device/name"), gaps));
            let device = device_of(root, &rel, &dir_name);
            Some(Chip {
                dir_name,
                rel,
                name,
                device,
            })
        })
        .collect();
    let ids = chip_ids(&chips);
    let mut sensors = Vec::new();
    for (chip, id) in chips.iter().zip(ids) {
        read_chip(root, chip, &id, gaps, &mut sensors);
    }
    sensors.sort_by(|a, b| {
        (
            a.chip_id.as_str(),
            kind_order(a.kind),
            sensor_index(&a.sensor),
        )
            .cmp(&(
                b.chip_id.as_str(),
                kind_order(b.kind),
                sensor_index(&b.sensor),
            ))
    });
    sensors
}

fn kind_order(kind: SensorKind) -> usize {
    TYPES
        .iter()
        .position(|(_, k, _)| *k == kind)
        .unwrap_or(TYPES.len())
}

fn sensor_index(sensor: &str) -> u32 {
    split_attribute(sensor).map_or(0, |(_, i, _)| i)
}

/// The device a chip belongs to, relative to `sys/devices`: the target of
/// `hwmonN/device` when present, else the directory the class device itself lives
/// in (`<device>/hwmon/hwmonN`, where the hwmon core registers it). Virtual chips
/// (`virtual/hwmon/hwmonN`) have no device.
fn device_of(root: &SysRoot, rel: &str, dir_name: &str) -> Option<String> {
    if let Ok(dev) = root.resolve(&format!("{rel}/device")) {
        return Some(strip_devices(&dev).to_owned());
    }
    let own = root.resolve(rel).ok()?;
    let parent = own.strip_suffix(dir_name)?.strip_suffix("/hwmon/")?;
    let parent = parent.strip_prefix("sys/devices/")?;
    (!parent.starts_with("virtual/") && parent != "virtual").then(|| parent.to_owned())
}

fn strip_devices(path: &str) -> &str {
    path.strip_prefix("sys/devices/").unwrap_or(path)
}

/// Stable identities for `chips`, in the same order: the device path, or the
/// `name` when there is no device, or `hwmonN` as the last resort. Several chips
/// on one device (a Wi-Fi PHY with one hwmon per radio, `asus-nb-wmi` with two)
/// get `/<name>` appended, or `/hwmonN` when even the names collide.
fn chip_ids(chips: &[Chip]) -> Vec<String> {
    let base: Vec<String> = chips
        .iter()
        .map(|c| {
            c.device
                .clone()
                .or_else(|| c.name.clone())
                .unwrap_or_else(|| c.dir_name.clone())
        })
        .collect();
    let mut per_base: HashMap<&str, usize> = HashMap::new();
    let mut per_name: HashMap<(&str, Option<&str>), usize> = HashMap::new();
    for (b, c) in base.iter().zip(chips) {
        *per_base.entry(b).or_default() += 1;
        *per_name.entry((b, c.name.as_deref())).or_default() += 1;
    }
    base.iter()
        .zip(chips)
        .map(|(b, c)| {
            if per_base.get(b.as_str()).copied().unwrap_or(0) <= 1 {
                return b.clone();
            }
            match c.name.as_deref() {
                Some(n) if per_name.get(&(b.as_str(), Some(n))).copied().unwrap_or(0) == 1 => {
                    format!("{b}/{n}")
                }
                _ => format!("{b}/{}", c.dir_name),
            }
        })
        .collect()
}

/// Reads one chip's sensors into `out`.
fn read_chip(root: &SysRoot, chip: &Chip, chip_id: &str, gaps: &mut Gaps, out: &mut Vec<Sensor>) {
    // (type, index) → item → file. The class directory is listed first so its files
    // win over the legacy device directory.
    let mut attrs: BTreeMap<(usize, u32), BTreeMap<String, String>> = BTreeMap::new();
    let dirs = [chip.rel.clone(), format!("{}/device", chip.rel)];
    for (i, dir) in dirs.iter().enumerate() {
        let files = match root.list(dir) {
            Ok(f) => f,
            Err(e) if e.is_not_found() => continue,
            Err(e) => {
                // The device directory is optional; only the chip's own is worth a gap.
                if i == 0 {
                    gaps.push(dir.clone(), e);
                }
                continue;
            }
        };
        for file in files {
            if let Some((ty, index, item)) = split_attribute(&file) {
                attrs
                    .entry((ty, index))
                    .or_default()
                    .entry(item.to_owned())
                    .or_insert_with(|| format!("{dir}/{file}"));
            }
        }
    }
    let chip_name = chip.name.clone().unwrap_or_else(|| chip.dir_name.clone());
    for ((ty, index), items) in attrs {
        let (ty_name, kind, divisor) = TYPES[ty];
        // The item that carries the reading: `input`, or for power meters that only
        // average (ACPI power meter) `average`; an intrusion sensor *is* its alarm.
        let primary = match kind {
            SensorKind::Intrusion => items.get("alarm"),
            SensorKind::Power => items.get("input").or_else(|| items.get("average")),
            _ => items.get("input"),
        };
        let Some(primary) = primary else { continue };
        let scaled = |gaps: &mut Gaps, item: &str| {
            items
                .get(item)
                .and_then(|f| read_number(root, f, gaps))
                .map(|v| v / divisor)
        };
        let flag = |gaps: &mut Gaps, item: &str| {
            items
                .get(item)
                .and_then(|f| read_number(root, f, gaps))
                .map(|v| v != 0.0)
        };
        let mut s = Sensor::new(&chip_name, chip_id, &format!("{ty_name}{index}"), kind);
        s.label = items.get("label").and_then(|f| read_text(root, f, gaps));
        // `_fault` = 1: the reading is meaningless (an open thermal diode, a
        // stopped fan's tachometer), so there is none.
        if !flag(gaps, "fault").unwrap_or(false) {
            s.value = read_number(root, primary, gaps).map(|v| v / divisor);
        }
        s.min = scaled(gaps, "min");
        s.max = scaled(gaps, "max");
        s.crit = scaled(gaps, "crit");
        s.alarm = ALARMS
            .iter()
            .filter_map(|a| flag(gaps, a))
            .reduce(|a, b| a || b);
        out.push(s);
    }
}

/// Reads a numeric attribute. Absent and no-data files are simply `None`; files the
/// kernel refuses or fills with garbage are recorded.
fn read_number(root: &SysRoot, rel: &str, gaps: &mut Gaps) -> Option<f64> {
    match root.read_parse::<f64>(rel) {
        Ok(v) if v.is_finite() => Some(v),
        Ok(_) => None,
        Err(ReadError::NoData(_)) => None,
        Err(e) => gaps.note(rel, Err::<f64, _>(e)),
    }
}

/// Reads a text attribute (`name`, `_label`).
fn read_text(root: &SysRoot, rel: &str, gaps: &mut Gaps) -> Option<String> {
    match root.read_string(rel) {
        Ok(v) => Some(v),
        Err(ReadError::NoData(_)) => None,
        Err(e) => gaps.note(rel, Err::<String, _>(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &std::path::Path, rel: &str, text: &str) {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    fn link(dir: &std::path::Path, rel: &str, target: &str) {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(target, p).unwrap();
    }

    #[test]
    fn splits_attribute_names() {
        assert_eq!(split_attribute("temp1_input"), Some((0, 1, "input")));
        assert_eq!(
            split_attribute("in10_crit_alarm"),
            Some((2, 10, "crit_alarm"))
        );
        assert_eq!(split_attribute("intrusion0_alarm"), Some((7, 0, "alarm")));
        assert_eq!(split_attribute("fan3"), Some((1, 3, "")));
        assert_eq!(split_attribute("power"), None);
        assert_eq!(split_attribute("pwm1_enable"), None);
        assert_eq!(split_attribute("name"), None);
        assert_eq!(split_attribute("temp1_"), None);
        assert_eq!(split_attribute("index5x"), None);
    }

    /// A chip with every kind of attribute, a faulted sensor, a no-data sensor, a
    /// garbage file and a chip without a device link.
    #[test]
    fn converts_units_and_reports_faults_as_absent() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let dev = "sys/devices/pci0000:00/0000:00:18.3";
        link(
            d,
            "sys/class/hwmon/hwmon7",
            "../../devices/pci0000:00/0000:00:18.3/hwmon/hwmon7",
        );
        link(
            d,
            &format!("{dev}/hwmon/hwmon7/device"),
            "../../../0000:00:18.3",
        );
        let h = format!("{dev}/hwmon/hwmon7");
        for (f, v) in [
            ("name", "k10temp\n"),
            ("temp1_input", "45250\n"),
            ("temp1_max", "70000\n"),
            ("temp1_crit", "-5000\n"),
            ("temp1_alarm", "0\n"),
            ("temp1_crit_alarm", "1\n"),
            ("temp1_label", "Tctl\n"),
            ("temp2_input", "99000\n"),
            ("temp2_fault", "1\n"),
            ("temp3_input", "\n"),
            ("fan1_input", "1200\n"),
            ("fan1_min", "300\n"),
            ("in0_input", "1180\n"),
            ("in0_lcrit", "900\n"),
            ("curr1_input", "2500\n"),
            ("power1_average", "12500000\n"),
            ("energy1_input", "3000000\n"),
            ("humidity1_input", "45500\n"),
            ("intrusion0_alarm", "1\n"),
            ("in1_input", "lots\n"),
        ] {
            write(d, &format!("{h}/{f}"), v);
        }
        let root = SysRoot::at(d).unwrap();
        let mut gaps = Gaps::default();
        let s = collect(&root, &mut gaps);
        let get = |name: &str| s.iter().find(|x| x.sensor == name).unwrap();
        assert!(
            s.iter()
                .all(|x| x.chip == "k10temp" && x.chip_id == "pci0000:00/0000:00:18.3")
        );
        let t1 = get("temp1");
        assert_eq!(
            (t1.value, t1.max, t1.crit, t1.alarm),
            (Some(45.25), Some(70.0), Some(-5.0), Some(true))
        );
        assert_eq!(t1.label.as_deref(), Some("Tctl"));
        let t2 = get("temp2");
        assert_eq!(t2.value, None, "faulted");
        assert_eq!(get("temp3").value, None, "no data");
        assert_eq!(
            (get("fan1").value, get("fan1").min),
            (Some(1200.0), Some(300.0))
        );
        assert_eq!(get("in0").value, Some(1.18));
        assert_eq!(get("curr1").value, Some(2.5));
        assert_eq!(get("power1").value, Some(12.5));
        assert_eq!(get("energy1").value, Some(3.0));
        assert_eq!(get("humidity1").value, Some(45.5));
        assert_eq!(get("intrusion0").value, Some(1.0));
        assert_eq!(get("in1").value, None);
        assert_eq!(gaps.0.len(), 1, "{gaps:?}");
        assert!(gaps.0[0].what.ends_with("in1_input"));
    }

    #[test]
    fn legacy_device_attributes_and_chips_sharing_a_device() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // Old driver: attributes and name in the device directory.
        link(
            d,
            "sys/class/hwmon/hwmon2",
            "../../devices/platform/applesmc.768/hwmon/hwmon2",
        );
        link(
            d,
            "sys/devices/platform/applesmc.768/hwmon/hwmon2/device",
            "../../../applesmc.768",
        );
        write(d, "sys/devices/platform/applesmc.768/name", "applesmc\n");
        write(d, "sys/devices/platform/applesmc.768/fan1_input", "2000\n");
        // Two chips on one device, told apart by name.
        for (n, name) in [(5, "asus"), (6, "asus_wmi_sensors")] {
            link(
                d,
                &format!("sys/class/hwmon/hwmon{n}"),
                &format!("../../devices/platform/asus-nb-wmi/hwmon/hwmon{n}"),
            );
            let h = format!("sys/devices/platform/asus-nb-wmi/hwmon/hwmon{n}");
            link(d, &format!("{h}/device"), "../../../asus-nb-wmi");
            write(d, &format!("{h}/name"), name);
            write(d, &format!("{h}/temp1_input"), "40000");
        }
        // A virtual chip: no device, identified by name.
        link(
            d,
            "sys/class/hwmon/hwmon9",
            "../../devices/virtual/hwmon/hwmon9",
        );
        write(d, "sys/devices/virtual/hwmon/hwmon9/name", "acpitz");
        write(d, "sys/devices/virtual/hwmon/hwmon9/temp1_input", "27800");
        let root = SysRoot::at(d).unwrap();
        let mut gaps = Gaps::default();
        let s = collect(&root, &mut gaps);
        let ids: Vec<(&str, &str, &str)> = s
            .iter()
            .map(|x| (x.chip.as_str(), x.chip_id.as_str(), x.sensor.as_str()))
            .collect();
        assert_eq!(
            ids,
            vec![
                ("acpitz", "acpitz", "temp1"),
                ("applesmc", "platform/applesmc.768", "fan1"),
                ("asus", "platform/asus-nb-wmi/asus", "temp1"),
                (
                    "asus_wmi_sensors",
                    "platform/asus-nb-wmi/asus_wmi_sensors",
                    "temp1"
                ),
            ]
        );
        assert_eq!(s[1].value, Some(2000.0));
        assert!(gaps.0.is_empty(), "{gaps:?}");
    }

    /// Half-present and hostile trees: binary junk, NaN, a directory where a
    /// file should be, a dangling device link, a symlink loop. The collector
    /// still completes, reports what it could not read, and panics on nothing.
    #[test]
    fn garbage_tree_completes_with_gaps() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let h = "sys/class/hwmon/hwmon0";
        write(d, &format!("{h}/name"), "junk\n");
        std::fs::write(d.join(h).join("temp1_input"), [0xff, 0xfe, 0x00, 0x41]).unwrap();
        write(d, &format!("{h}/temp2_input"), "NaN\n");
        write(d, &format!("{h}/temp3_input"), "2000000000000000000000\n");
        std::fs::create_dir_all(d.join(h).join("temp4_input")).unwrap();
        link(d, &format!("{h}/device"), "../../../nowhere");
        link(d, "sys/class/hwmon/hwmon1", "hwmon1");
        let root = SysRoot::at(d).unwrap();
        let mut gaps = Gaps::default();
        let s = collect(&root, &mut gaps);
        let values: Vec<(&str, Option<f64>)> =
            s.iter().map(|x| (x.sensor.as_str(), x.value)).collect();
        assert_eq!(
            values,
            [
                ("temp1", None),
                ("temp2", None),
                ("temp3", Some(2e18)),
                ("temp4", None)
            ]
        );
        assert!(s.iter().all(|x| x.chip_id == "junk"), "{s:?}");
        let what: Vec<&str> = gaps.0.iter().map(|g| g.what.as_str()).collect();
        assert!(what.iter().any(|w| w.ends_with("temp1_input")), "{gaps:?}");
        assert!(what.iter().any(|w| w.ends_with("temp4_input")), "{gaps:?}");
    }

    #[test]
    fn no_hwmon_class_is_not_a_gap() {
        let dir = tempfile::tempdir().unwrap();
        let root = SysRoot::at(dir.path()).unwrap();
        let mut gaps = Gaps::default();
        assert!(collect(&root, &mut gaps).is_empty());
        assert!(gaps.0.is_empty());
    }
}
