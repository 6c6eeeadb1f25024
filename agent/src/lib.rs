//! `nodus-agent`: the daemon that runs on every Nodus node.
//!
//! It will hold the hardware layer (sysfs/procfs through a root, netlink, I2C),
//! inventory, capacity, health, telemetry history, storage pools, networking,
//! workloads, the self-healing supervisor, power, the chain client and the agent's
//! APIs (QUIC, Unix socket, D-Bus).
//!
//! It deliberately has no user interface: the console renders what the agent serves.

pub mod api;
pub mod boot;
pub mod capacity;
pub mod chain;
pub mod cli;
pub mod daemon;
pub mod disks;
pub mod hal;
pub mod health;
pub mod inventory;
pub mod net;
pub mod netup;
pub mod power;
pub mod sensors;
pub mod smart;
pub mod telemetry;
