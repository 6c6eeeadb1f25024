//! Network interfaces: sysfs for the static facts, rtnetlink for addresses, routes
//! and live link events on the host.
//!
//! - [`collect`] reads `sys/class/net` under a [`SysRoot`]: name, MAC, MTU,
//!   operstate, carrier, speed, duplex, driver, physical or virtual. That is all a
//!   captured machine (`--root`) can tell, so it is all `--root` reports.
//! - [`collect_host`] does the same on the live host and merges what only netlink
//!   knows: addresses, and the default routes (a list beside the NICs, each naming
//!   its interface, since a host can have one per family or several by metric).
//! - [`LinkEvents`] subscribes to the kernel's link multicast group
//!   (`RTNLGRP_LINK`), so a carrier change reaches the agent as it happens rather
//!   than at the next poll.
//!
//! This module only observes. Configuring interfaces is the networking module's
//! job, in managed mode.

use serde::Serialize;

use crate::hal::{Gaps, SysRoot};

mod events;
mod netlink;
mod sysfs;

pub use events::{LinkChange, LinkEvent, LinkEvents};
pub use netlink::{NetlinkView, merge};

/// Why netlink could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetError {
    /// The netlink socket could not be opened or bound.
    #[error("Cannot open a netlink socket")]
    Socket(#[source] std::io::Error),
    /// Called outside a tokio runtime, which drives the netlink socket.
    #[error("Netlink needs a tokio runtime")]
    NoRuntime,
    /// The kernel refused or broke off a dump.
    #[error("Netlink {what} dump failed")]
    Dump {
        /// What was being dumped (`links`, `addresses`, `routes`).
        what: &'static str,
        /// The netlink error.
        #[source]
        source: rtnetlink::Error,
    },
}

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

/// A default route (`0.0.0.0/0` or `::/0` in the main table).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DefaultRoute {
    /// The interface the route leaves through.
    pub interface: String,
    /// `inet` or `inet6`.
    pub family: String,
    /// The next hop, absent for a route straight onto the link (point-to-point).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    /// The route's metric (`priority`); lower wins.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metric: Option<u32>,
}

impl Nic {
    /// An interface with nothing known but its name.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            mac: None,
            mtu: None,
            operstate: "unknown".to_owned(),
            carrier: false,
            speed_mbps: None,
            duplex: "unknown".to_owned(),
            driver: None,
            physical: false,
            addresses: Vec::new(),
        }
    }
}

/// Reads NICs under `root`: sysfs only for a captured machine; on the live host
/// the addresses from netlink are merged in as well ([`collect_host_blocking`]).
pub fn collect(root: &SysRoot, gaps: &mut Gaps) -> Vec<Nic> {
    if root.is_host() {
        return collect_host_blocking(gaps).nics;
    }
    sysfs::collect(root, gaps)
}

/// [`collect_host`] for synchronous callers (the inventory command). The netlink
/// dump runs on a private single-threaded runtime in its own thread, so this works
/// both outside and inside an async context (where blocking the caller's runtime
/// thread on a nested runtime would panic).
pub fn collect_host_blocking(gaps: &mut Gaps) -> HostNetwork {
    let worker = std::thread::spawn(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let mut gaps = Gaps::default();
        let host = rt.block_on(collect_host(&mut gaps));
        Ok::<_, std::io::Error>((host, gaps))
    });
    match worker.join() {
        Ok(Ok((host, g))) => {
            gaps.0.extend(g.0);
            host
        }
        Ok(Err(e)) => {
            gaps.push("netlink", format!("Cannot start a runtime: {e}"));
            HostNetwork {
                nics: sysfs::collect(&SysRoot::host(), gaps),
                default_routes: Vec::new(),
            }
        }
        Err(_) => {
            gaps.push("netlink", "The netlink worker panicked");
            HostNetwork {
                nics: sysfs::collect(&SysRoot::host(), gaps),
                default_routes: Vec::new(),
            }
        }
    }
}

/// The live host's network as the inventory reports it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct HostNetwork {
    /// Interfaces, sysfs facts merged with netlink addresses.
    pub nics: Vec<Nic>,
    /// Default routes of the main table, best (lowest metric) first.
    pub default_routes: Vec<DefaultRoute>,
}

/// Reads the live host's NICs: sysfs, then addresses and default routes from
/// rtnetlink. Must run inside a tokio runtime. When netlink is not available (a
/// seccomp-restricted container) the sysfs view is returned and the reason
/// recorded in `gaps`.
pub async fn collect_host(gaps: &mut Gaps) -> HostNetwork {
    let mut nics = sysfs::collect(&SysRoot::host(), gaps);
    match NetlinkView::dump().await {
        Ok(view) => {
            merge(&mut nics, &view);
            HostNetwork {
                nics,
                default_routes: view.default_routes(),
            }
        }
        Err(e) => {
            gaps.push("netlink", e);
            HostNetwork {
                nics,
                default_routes: Vec::new(),
            }
        }
    }
}
