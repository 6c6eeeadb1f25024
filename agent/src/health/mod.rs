//! Health: every component is ok, warning or critical, with a reason.
//!
//! Judgements come first from what the hardware itself reports (hwmon `max`,
//! `crit`, `min`, alarm flags; SMART; link carrier), then from the operator's
//! overrides ([`HealthConfig`]: replaced thresholds, ignored components, changed
//! levels), and from rules over telemetry history (a SMART counter that keeps
//! rising). It deliberately reads no hardware itself: it judges an
//! [`Inventory`] and, optionally, a telemetry [`History`].
//!
//! [`Assessor`] is the entry point; [`assess`] is the stateless default used by a
//! one-shot `nodus agent inventory`.
//!
//! Component names: `sensor <chip_id>/<sensor>`, `nic <name>`, `disk <name>`,
//! `storage` (the node as a whole).

pub mod config;
pub mod glob;
pub mod sensor;

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

pub use config::{HealthConfig, HealthConfigError, HealthConfigRaw};

use crate::{inventory::Inventory, net::Nic, telemetry::History};

/// Severity, ordered so the worst of several is their maximum.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// Working as expected.
    #[default]
    Ok,
    /// Degraded or approaching a limit.
    Warning,
    /// Failed or past a limit.
    Critical,
}

/// The health of one component.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The component, e.g. `sensor coretemp/temp2`, `disk sda`, `nic eth0`.
    pub component: String,
    /// Its level.
    pub level: Level,
    /// Why, e.g. `temp2 83 °C ≥ max 80 °C`.
    pub reason: String,
}

/// The machine's health.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Health {
    /// The worst level of all findings.
    pub status: Level,
    /// Every finding that is not ok, worst first, then by component.
    pub findings: Vec<Finding>,
}

impl Health {
    /// Builds the summary from findings: drops ok ones, sorts, takes the worst.
    pub fn from_findings(mut findings: Vec<Finding>) -> Self {
        findings.retain(|f| f.level != Level::Ok);
        findings.sort_by(|a, b| {
            b.level
                .cmp(&a.level)
                .then_with(|| a.component.cmp(&b.component))
        });
        findings.dedup();
        Self {
            status: findings.iter().map(|f| f.level).max().unwrap_or_default(),
            findings,
        }
    }

    /// The level of `component`: its worst finding, or ok.
    pub fn level_of(&self, component: &str) -> Level {
        self.findings
            .iter()
            .filter(|f| f.component == component)
            .map(|f| f.level)
            .max()
            .unwrap_or_default()
    }
}

/// Assesses the inventory with the default config and no memory of earlier
/// passes.
pub fn assess(inv: &Inventory) -> Health {
    Assessor::default().assess(inv, None)
}

/// Judges inventories, remembering what it needs between passes (which NICs have
/// had a carrier, so losing it is news).
#[derive(Debug, Clone, Default)]
pub struct Assessor {
    config: HealthConfig,
    had_carrier: BTreeSet<String>,
}

impl Assessor {
    /// An assessor with `config`.
    pub fn new(config: HealthConfig) -> Self {
        Self {
            config,
            had_carrier: BTreeSet::new(),
        }
    }

    /// Its config.
    pub fn config(&self) -> &HealthConfig {
        &self.config
    }

    /// Judges `inv` and, when given, the telemetry `history` (trend rules).
    pub fn assess(&mut self, inv: &Inventory, history: Option<&History>) -> Health {
        let mut raw = Vec::new();
        raw.extend(
            inv.sensors
                .iter()
                .filter_map(|s| sensor::judge(s, &self.config.sensors)),
        );
        // SMART, NVMe warnings and disk temperature are judged by the disk itself.
        raw.extend(inv.disks.iter().flat_map(crate::inventory::Disk::findings));
        let eligible = inv.disks.iter().filter(|d| d.eligible).count();
        raw.extend(storage_findings(
            inv.capacity.sru_bytes,
            inv.disks.len(),
            eligible,
            &self.config,
        ));
        for nic in &inv.nics {
            raw.extend(self.nic(nic));
        }
        if let Some(h) = history {
            raw.extend(trend_findings(h, &self.config.trends));
        }
        Health::from_findings(self.apply_overrides(raw))
    }

    fn nic(&mut self, nic: &Nic) -> Option<Finding> {
        if !nic.physical {
            // Bridges, veths and tunnels come and go with workloads; their links
            // follow the physical ones, which are judged.
            return None;
        }
        if nic.carrier {
            self.had_carrier.insert(nic.name.clone());
            return None;
        }
        // An unused port without a cable is normal on a four-port server. A port
        // is in use if it had carrier before, carries addresses, or the kernel
        // says its lower layer (a bond/bridge member) went down.
        let in_use = self.had_carrier.contains(&nic.name)
            || !nic.addresses.is_empty()
            || nic.operstate == "up"
            || nic.operstate == "lowerlayerdown";
        in_use.then(|| Finding {
            component: format!("nic {}", nic.name),
            level: Level::Warning,
            reason: "carrier lost".to_owned(),
        })
    }

    fn apply_overrides(&self, raw: Vec<Finding>) -> Vec<Finding> {
        raw.into_iter()
            .filter(|f| !self.config.ignore.iter().any(|g| g.matches(&f.component)))
            .map(|mut f| {
                for o in &self.config.levels {
                    if o.component.matches(&f.component) && o.from.is_none_or(|l| l == f.level) {
                        f.level = o.level;
                    }
                }
                f
            })
            .collect()
    }
}

/// The component a series belongs to: `disk.sda.smart_x` → `disk sda`; names
/// without a device (`cpu.busy_pct`) give the class alone.
fn series_component(series: &str) -> String {
    let (class, rest) = series.split_once('.').unwrap_or((series, ""));
    match rest.rsplit_once('.') {
        Some((device, _metric)) => format!("{class} {device}"),
        None => class.to_owned(),
    }
}

fn human_window(s: u64) -> String {
    match s {
        s if s % 86_400 == 0 => format!("{} d", s / 86_400),
        s if s % 3_600 == 0 => format!("{} h", s / 3_600),
        s if s % 60 == 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

/// Findings from trend rules over `history`: a matching series that rose by at
/// least the rule's `min_rise` within its window.
pub fn trend_findings(history: &History, rules: &[config::TrendRule]) -> Vec<Finding> {
    let mut out = Vec::new();
    if rules.is_empty() {
        return out;
    }
    for name in history.names() {
        for rule in rules.iter().filter(|r| r.series.matches(name)) {
            let Some(t) = history.trend(name, rule.window_s) else {
                continue;
            };
            let rise = f64::from(t.change());
            if rise >= rule.min_rise {
                out.push(Finding {
                    component: series_component(name),
                    level: rule.level,
                    reason: format!(
                        "{} (+{} in {}, now {})",
                        rule.reason,
                        sensor::num(rise),
                        human_window(rule.window_s),
                        sensor::num(f64::from(t.last.1))
                    ),
                });
            }
        }
    }
    out
}

/// The node-level storage finding: Zero-OS's "no ssd" case. A node without SSD or
/// NVMe capacity cannot host workloads (their root file systems and caches need
/// SSD), so it is a warning even though nothing is broken. `disks` and `eligible`
/// are how many block devices the inventory saw and how many a pool may take, so
/// the reason tells "no SSD at all" from "SSDs, but all in use".
pub fn storage_findings(
    sru_bytes: u64,
    disks: usize,
    eligible: usize,
    config: &HealthConfig,
) -> Vec<Finding> {
    if !config.require_ssd || sru_bytes > 0 {
        return Vec::new();
    }
    let reason = match disks {
        0 => "no ssd: no disks found".to_owned(),
        n => format!("no ssd: no eligible SSD/NVMe capacity ({eligible} of {n} disks eligible)"),
    };
    vec![Finding {
        component: "storage".to_owned(),
        level: Level::Warning,
        reason,
    }]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        capacity::Capacity,
        hal::Gaps,
        inventory::{Cpu, Dmi, Memory},
        sensors::{Sensor, SensorKind},
    };

    fn inventory(sensors: Vec<Sensor>, nics: Vec<Nic>) -> Inventory {
        Inventory {
            dmi: Dmi::default(),
            cpu: Cpu::default(),
            memory: Memory::default(),
            disks: Vec::new(),
            nics,
            sensors,
            power: Vec::new(),
            // An SSD's worth, so only the tests about storage see "no ssd".
            capacity: Capacity {
                sru_bytes: 1 << 40,
                ..Capacity::default()
            },
            health: Health::default(),
            gaps: Gaps::default(),
        }
    }

    fn temp(chip: &str, stem: &str, value: f64, max: f64) -> Sensor {
        Sensor {
            chip: chip.into(),
            chip_id: format!("platform/{chip}.0"),
            sensor: stem.into(),
            label: None,
            kind: SensorKind::Temperature,
            value: Some(value),
            min: None,
            max: Some(max),
            crit: None,
            alarm: None,
        }
    }

    fn nic(name: &str, physical: bool, carrier: bool, operstate: &str, addrs: &[&str]) -> Nic {
        Nic {
            name: name.into(),
            mac: None,
            mtu: None,
            operstate: operstate.into(),
            carrier,
            speed_mbps: None,
            duplex: "unknown".into(),
            driver: None,
            physical,
            addresses: addrs.iter().map(|a| (*a).to_owned()).collect(),
        }
    }

    fn config(json: &str) -> HealthConfig {
        HealthConfig::try_from(serde_json::from_str::<HealthConfigRaw>(json).unwrap()).unwrap()
    }

    #[test]
    fn worst_level_wins_and_findings_are_sorted() {
        let mut hot = temp("coretemp", "temp2", 101.0, 80.0);
        hot.crit = Some(100.0);
        let inv = inventory(
            vec![
                temp("acpitz", "temp1", 85.0, 80.0),
                hot,
                temp("x", "temp1", 20.0, 80.0),
            ],
            vec![],
        );
        let h = assess(&inv);
        assert_eq!(h.status, Level::Critical);
        assert_eq!(h.findings.len(), 2);
        assert_eq!(h.findings[0].reason, "temp2 101 °C ≥ crit 100 °C");
        assert_eq!(h.level_of("sensor platform/acpitz.0/temp1"), Level::Warning);
        assert_eq!(h.level_of("sensor platform/x.0/temp1"), Level::Ok);
    }

    #[test]
    fn healthy_machine_is_ok_with_no_findings() {
        let inv = inventory(
            vec![temp("coretemp", "temp1", 40.0, 80.0)],
            vec![nic("eth0", true, true, "up", &[])],
        );
        assert_eq!(assess(&inv), Health::default());
    }

    #[test]
    fn carrier_lost_on_used_physical_nics_only() {
        let inv = inventory(
            vec![],
            vec![
                nic("eth0", true, false, "down", &["10.0.0.2/24"]),
                nic("eth1", true, false, "down", &[]), // spare port, no cable
                nic("veth9", false, false, "down", &["10.1.0.1/24"]),
                nic("eth2", true, false, "lowerlayerdown", &[]),
            ],
        );
        let h = assess(&inv);
        let comps: Vec<&str> = h.findings.iter().map(|f| f.component.as_str()).collect();
        assert_eq!(comps, vec!["nic eth0", "nic eth2"]);
        assert!(h.findings.iter().all(|f| f.reason == "carrier lost"));
    }

    #[test]
    fn carrier_lost_after_having_had_it() {
        let mut a = Assessor::default();
        let up = inventory(vec![], vec![nic("eth1", true, true, "up", &[])]);
        assert_eq!(a.assess(&up, None).status, Level::Ok);
        let down = inventory(vec![], vec![nic("eth1", true, false, "down", &[])]);
        let h = a.assess(&down, None);
        assert_eq!(h.findings[0].component, "nic eth1");
        assert_eq!(h.findings[0].reason, "carrier lost");
    }

    #[test]
    fn ignore_and_level_overrides() {
        let inv = inventory(
            vec![
                temp("acpitz", "temp1", 85.0, 80.0),
                temp("coretemp", "temp1", 85.0, 80.0),
            ],
            vec![nic("eth0", true, false, "down", &["10.0.0.2/24"])],
        );
        let c = config(
            r#"{"ignore": ["sensor platform/acpitz*"],
                "levels": [{"component": "nic eth0", "level": "critical"},
                           {"component": "sensor *coretemp*", "from": "warning", "level": "ok"}]}"#,
        );
        let h = Assessor::new(c).assess(&inv, None);
        assert_eq!(h.findings.len(), 1);
        assert_eq!(h.findings[0].component, "nic eth0");
        assert_eq!(h.status, Level::Critical);
    }

    #[test]
    fn sensor_overrides_from_config() {
        let inv = inventory(vec![temp("coretemp", "temp1", 72.0, 80.0)], vec![]);
        let c = config(
            r#"{"sensors": [{"match": "coretemp/temp*", "warn_above": 70, "crit_above": 90}]}"#,
        );
        let h = Assessor::new(c).assess(&inv, None);
        assert_eq!(h.findings[0].reason, "temp1 72 °C ≥ max 70 °C");
    }

    #[test]
    fn smart_reallocated_sectors_rising_from_history() {
        let mut hist = History::default();
        let t0 = 1_700_000_000;
        // The SMART poller records every 10 minutes; the count grows by 3.
        for i in 0..12u64 {
            let v = if i < 6 { 8.0 } else { 11.0 };
            hist.record("disk.sda.smart_reallocated_sectors", t0 + i * 600, v);
            hist.record("disk.sdb.smart_reallocated_sectors", t0 + i * 600, 2.0);
        }
        let inv = inventory(vec![], vec![]);
        let h = Assessor::default().assess(&inv, Some(&hist));
        assert_eq!(h.findings.len(), 1, "{h:?}");
        assert_eq!(h.findings[0].component, "disk sda");
        assert_eq!(
            h.findings[0].reason,
            "SMART: reallocated sectors rising (+3 in 1 d, now 11)"
        );
        assert_eq!(h.status, Level::Warning);
    }

    #[test]
    fn an_inventory_without_ssd_capacity_warns() {
        let mut inv = inventory(vec![], vec![]);
        inv.capacity.sru_bytes = 0;
        let h = assess(&inv);
        assert_eq!(h.level_of("storage"), Level::Warning);
        assert_eq!(h.findings[0].reason, "no ssd: no disks found");
    }

    #[test]
    fn no_ssd_is_a_storage_warning() {
        let c = HealthConfig::default();
        let f = storage_findings(0, 3, 1, &c);
        assert_eq!(f[0].component, "storage");
        assert_eq!(
            f[0].reason,
            "no ssd: no eligible SSD/NVMe capacity (1 of 3 disks eligible)"
        );
        assert!(storage_findings(1 << 40, 3, 1, &c).is_empty());
        let off = config(r#"{"require_ssd": false}"#);
        assert!(storage_findings(0, 3, 1, &off).is_empty());
    }

    #[test]
    fn json_shape_matches_the_inventory_contract() {
        let h = Health::from_findings(vec![Finding {
            component: "nic eth0".into(),
            level: Level::Warning,
            reason: "carrier lost".into(),
        }]);
        assert_eq!(
            serde_json::to_value(&h).unwrap(),
            serde_json::json!({"status": "warning", "findings": [
                {"component": "nic eth0", "level": "warning", "reason": "carrier lost"}]})
        );
    }

    #[test]
    fn series_components() {
        assert_eq!(
            series_component("disk.sda.smart_pending_sectors"),
            "disk sda"
        );
        assert_eq!(series_component("nic.eth0.100.rx_bps"), "nic eth0.100");
        assert_eq!(series_component("cpu.busy_pct"), "cpu");
    }
}
