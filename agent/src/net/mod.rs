//! Network interfaces: sysfs for the static facts, rtnetlink for addresses, routes
//! and live link events on the host.

use serde::Serialize;

use crate::hal::{Gaps, SysRoot};

/// One network interface. Field names are part of the inventory contract.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Nic {
    /// Interface name.
    pub name: String,
    /// MAC address, lowercase colon form.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// MTU in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    /// Kernel operstate (`up`, `down`, `unknown`, …).
    pub operstate: String,
    /// Whether the link has carrier.
    pub carrier: bool,
    /// Link speed; absent when unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub speed_mbps: Option<u32>,
    /// `full`, `half` or `unknown`.
    pub duplex: String,
    /// Kernel driver name, if bound.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    /// True for a NIC backed by a device, false for virtual ones (bridges, veth, lo).
    pub physical: bool,
    /// Addresses in CIDR form.
    pub addresses: Vec<String>,
}

/// Reads NICs from sysfs under `root`.
pub fn collect(root: &SysRoot, gaps: &mut Gaps) -> Vec<Nic> {
    let _ = (root, gaps);
    Vec::new()
}
