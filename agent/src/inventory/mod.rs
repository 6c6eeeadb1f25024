//! The typed inventory of one machine: DMI, CPU, memory, disks, NICs, sensors,
//! power meters, capacity and health, read through a [`SysRoot`].
//!
//! Its JSON form (`nodus agent inventory --json`) is a contract; see
//! `agent/INVENTORY.md`.

use serde::Serialize;

use crate::{
    capacity::Capacity,
    hal::{Gaps, SysRoot},
    health::Health,
    net::Nic,
    power::Meter,
    sensors::Sensor,
};

/// DMI identity of the machine. Filled by the inventory work.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Dmi {}

/// CPU topology. Filled by the inventory work.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Cpu {}

/// Memory. Filled by the inventory work.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Memory {}

/// One block device. Filled by the inventory work.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Disk {}

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

/// Collects the inventory under `root`.
pub fn collect(root: &SysRoot) -> Inventory {
    let mut gaps = Gaps::default();
    let nics = crate::net::collect(root, &mut gaps);
    let sensors = crate::sensors::collect(root, &mut gaps);
    let power = crate::power::collect(root, &mut gaps);
    let mut inv = Inventory {
        dmi: Dmi::default(),
        cpu: Cpu::default(),
        memory: Memory::default(),
        disks: Vec::new(),
        nics,
        sensors,
        power,
        capacity: Capacity::default(),
        health: Health::default(),
        gaps,
    };
    inv.health = crate::health::assess(&inv);
    inv
}
