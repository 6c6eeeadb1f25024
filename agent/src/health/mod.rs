//! Health: every component is ok, warning or critical, with a reason.

use serde::Serialize;

use crate::inventory::Inventory;

/// Severity, ordered so the worst of several is their maximum.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
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
    /// Every finding that is not ok.
    pub findings: Vec<Finding>,
}

/// Assesses the inventory. Filled by the health work.
pub fn assess(inv: &Inventory) -> Health {
    let _ = inv;
    Health::default()
}
