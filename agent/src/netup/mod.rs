//! Managed-mode network bring-up: what Zero-OS's boot-time "internet" step does,
//! done by the init so the node is reachable before and while its agent runs.
//!
//! It finds the physical NICs (those with a `device` in sysfs), sets them up
//! (the init may have done so already, before the image verified, with IPv6
//! held off: [`early`]; nothing here depends on seeing the link go up), and
//! then either runs a DHCPv4 client ([`dhcp::Client`], a sans-IO core;
//! [`dhcp_on`] wires it to a UDP socket bound to the NIC) on every NIC, each
//! once it has carrier, or applies `nodus.net=static:…` to the boot NIC (else
//! the first with carrier). Addresses and default routes are set over
//! rtnetlink, one default route per lease, the boot NIC's preferred
//! ([`route_metric`]); leases are renewed for as long as the init runs. It runs
//! inside PID 1, not in the agent, so an agent restart never drops the node's
//! address.
//!
//! While DHCP runs, [`dhcp_on`] follows its NIC's carrier through the kernel's
//! link notifications ([`crate::net::LinkEvents`]). When the carrier comes back
//! (a cable moved to another switch or VLAN, a switch rebooted) the lease is
//! checked with the network's server at once (INIT-REBOOT,
//! [`dhcp::Client::carrier_returned`]) instead of at T1, hours later: the same
//! network confirms it; another one refuses it, and the node takes a lease there
//! within seconds; when no server answers, the node keeps its lease while it
//! lasts.
//!
//! It deliberately does no DNS resolver configuration beyond reporting the
//! servers, no IPv6 (router advertisements configure it in the kernel), and no
//! bridge or workload networking (the agent's `net` owns those).

pub mod dhcp;
pub mod early;
pub mod links;

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddrV4},
    path::Path,
    time::{Duration, Instant},
};

use futures_util::TryStreamExt as _;
use rtnetlink::{Handle, LinkUnspec, RouteMessageBuilder};

use crate::boot::cmdline::NetSetting;

/// How long to wait for a NIC with carrier after setting the NICs up.
pub const CARRIER_WAIT: Duration = Duration::from_secs(10);

/// Why the network could not be brought up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetupError {
    /// The rtnetlink socket could not be opened.
    #[error("Cannot open rtnetlink")]
    Netlink(#[source] std::io::Error),
    /// A netlink request failed.
    #[error("Netlink {what} failed")]
    Request {
        /// What was asked.
        what: &'static str,
        /// The cause.
        #[source]
        source: rtnetlink::Error,
    },
    /// The DHCP socket could not be opened or used.
    #[error("DHCP socket on {iface}")]
    Socket {
        /// The interface.
        iface: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The interface does not exist or has no MAC address.
    #[error("No usable interface {0}")]
    NoInterface(String),
}

/// An rtnetlink connection whose task runs on the current runtime.
pub fn connect() -> Result<Handle, NetupError> {
    let (conn, handle, _) = rtnetlink::new_connection().map_err(NetupError::Netlink)?;
    tokio::spawn(conn);
    Ok(handle)
}

fn req(what: &'static str) -> impl FnOnce(rtnetlink::Error) -> NetupError {
    move |source| NetupError::Request { what, source }
}

/// Looks a link up by name over netlink (right in any network namespace, where
/// /sys may show another's).
pub async fn link_by_name(h: &Handle, name: &str) -> Result<links::Link, NetupError> {
    use netlink_packet_route::link::LinkAttribute;
    let mut req = h.link().get().match_name(name.to_owned()).execute();
    let msg = req
        .try_next()
        .await
        .ok()
        .flatten()
        .ok_or_else(|| NetupError::NoInterface(name.to_owned()))?;
    let mac = msg
        .attributes
        .iter()
        .find_map(|a| match a {
            LinkAttribute::Address(m) => <[u8; 6]>::try_from(m.as_slice()).ok(),
            _ => None,
        })
        .ok_or_else(|| NetupError::NoInterface(name.to_owned()))?;
    Ok(links::Link {
        name: name.to_owned(),
        index: msg.header.index,
        mac,
    })
}

/// Sets a link administratively up.
pub async fn link_up(h: &Handle, index: u32) -> Result<(), NetupError> {
    h.link()
        .set(LinkUnspec::new_with_index(index).up().build())
        .execute()
        .await
        .map_err(req("link up"))
}

/// Adds (or replaces) an IPv4 address on a link.
pub async fn add_address(
    h: &Handle,
    index: u32,
    address: Ipv4Addr,
    prefix: u8,
) -> Result<(), NetupError> {
    h.address()
        .add(index, IpAddr::V4(address), prefix)
        .replace()
        .execute()
        .await
        .map_err(req("address add"))
}

/// Removes an IPv4 address from a link (absent is fine).
pub async fn del_address(h: &Handle, index: u32, address: Ipv4Addr) -> Result<(), NetupError> {
    let mut addrs = h
        .address()
        .get()
        .set_link_index_filter(index)
        .set_address_filter(IpAddr::V4(address))
        .execute();
    while let Some(m) = addrs.try_next().await.map_err(req("address dump"))? {
        h.address()
            .del(m)
            .execute()
            .await
            .map_err(req("address del"))?;
    }
    Ok(())
}

/// The default-route metric of the NIC the machine booted from.
pub const BOOT_NIC_METRIC: u32 = 100;
/// The default-route metric of every other NIC, plus its interface index.
pub const OTHER_NIC_METRIC: u32 = 1000;

/// The metric of `nic`'s default route: the NIC the machine booted from is
/// preferred, then the others by interface index. Each NIC's lease installs its
/// own route, so the node keeps a way out when one link dies, and the one it
/// uses is the same at every boot, whichever lease happens to arrive first.
pub fn route_metric(nic: &links::Link, boot_nic: Option<[u8; 6]>) -> u32 {
    if boot_nic == Some(nic.mac) {
        BOOT_NIC_METRIC
    } else {
        OTHER_NIC_METRIC.saturating_add(nic.index)
    }
}

/// Removes the IPv4 default route via `gateway` on a link with `metric`, if it
/// is still there (the kernel drops it itself with the link's last address).
pub async fn del_default_route(h: &Handle, index: u32, gateway: Ipv4Addr, metric: u32) {
    let route = RouteMessageBuilder::<Ipv4Addr>::new()
        .output_interface(index)
        .gateway(gateway)
        .priority(metric)
        .build();
    // Absent (ESRCH) is the usual answer; any other failure leaves a route
    // that the next lease's `set_default_route` replaces.
    let _ = h.route().del(route).execute().await;
}

/// Sets (or replaces) the IPv4 default route via `gateway` on a link, with
/// `metric` (see [`route_metric`]).
pub async fn set_default_route(
    h: &Handle,
    index: u32,
    gateway: Ipv4Addr,
    metric: u32,
) -> Result<(), NetupError> {
    let route = RouteMessageBuilder::<Ipv4Addr>::new()
        .output_interface(index)
        .gateway(gateway)
        .priority(metric)
        .build();
    h.route()
        .add(route)
        .replace()
        .execute()
        .await
        .map_err(req("default route"))
}

fn xid_seed(mac: [u8; 6]) -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    u32::from_be_bytes([mac[2], mac[3], mac[4], mac[5]]) ^ nanos
}

fn dhcp_socket(iface: &str) -> Result<tokio::net::UdpSocket, NetupError> {
    let err = |source| NetupError::Socket {
        iface: iface.to_owned(),
        source,
    };
    let s = socket2::Socket::new(
        socket2::Domain::IPV4,
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )
    .map_err(err)?;
    // Bound to the NIC, so broadcasts go out of (and replies come in on) this
    // one, even before it has an address.
    s.bind_device(Some(iface.as_bytes())).map_err(err)?;
    s.set_broadcast(true).map_err(err)?;
    s.set_reuse_address(true).map_err(err)?;
    s.set_nonblocking(true).map_err(err)?;
    s.bind(&SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 68).into())
        .map_err(err)?;
    tokio::net::UdpSocket::from_std(s.into()).map_err(err)
}

/// Whether the link reports carrier, over netlink (right in any namespace).
pub async fn has_carrier(h: &Handle, index: u32) -> Result<bool, NetupError> {
    use netlink_packet_route::link::LinkAttribute;
    let mut links = h.link().get().match_index(index).execute();
    let msg = links.try_next().await.map_err(req("link get"))?;
    Ok(msg.is_some_and(|m| {
        m.attributes
            .iter()
            .any(|a| matches!(a, LinkAttribute::Carrier(1)))
    }))
}

/// How often a NIC without carrier is looked at again.
const CARRIER_POLL: Duration = Duration::from_millis(200);

/// How often [`dhcp_on`] reads its NIC's carrier when the kernel's link
/// notifications cannot be had (they always can where rtnetlink works; this
/// only keeps DHCP running if they cannot).
const CARRIER_FALLBACK_POLL: Duration = Duration::from_secs(1);

/// One NIC's carrier, followed through the kernel's link notifications, or by
/// polling if they cannot be subscribed to.
struct CarrierWatch {
    index: u32,
    events: Option<crate::net::LinkEvents>,
    up: bool,
}

impl CarrierWatch {
    /// Subscribes first and reads the carrier after, so no change falls
    /// between the two.
    async fn new(h: &Handle, index: u32) -> Result<Self, NetupError> {
        let events = crate::net::LinkEvents::subscribe().ok();
        let up = has_carrier(h, index).await?;
        Ok(Self { index, events, up })
    }

    /// Waits until the carrier differs from `up` and returns the new
    /// state. Cancel-safe: a change is recorded only as it is returned.
    async fn changed(&mut self, h: &Handle) -> Result<bool, NetupError> {
        loop {
            let now_up = match &mut self.events {
                Some(events) => match events.next().await {
                    Some(ev) if ev.ifindex == self.index => match ev.change {
                        crate::net::LinkChange::Changed => ev.carrier,
                        crate::net::LinkChange::Removed => Some(false),
                    },
                    Some(_) => None,
                    None => {
                        // The subscription closed: poll from now on.
                        self.events = None;
                        Some(has_carrier(h, self.index).await?)
                    }
                },
                None => {
                    tokio::time::sleep(CARRIER_FALLBACK_POLL).await;
                    Some(has_carrier(h, self.index).await?)
                }
            };
            if let Some(up) = now_up
                && up != self.up
            {
                self.up = up;
                return Ok(up);
            }
        }
    }
}

/// Runs DHCP on `iface` for ever: waits for its carrier (a cable plugged in
/// later is picked up then), gets a lease, configures it with a default route
/// of `metric`, renews it. `log` receives one line per lease event and carrier
/// change. When the carrier comes back after a loss, the lease is checked with
/// the server at once ([`dhcp::Client::carrier_returned`]): confirmed, moved
/// to the new network's address and gateway, or kept unverified while it lasts.
pub async fn dhcp_on(
    h: &Handle,
    iface: &str,
    metric: u32,
    log: impl Fn(String),
) -> Result<std::convert::Infallible, NetupError> {
    let nic = link_by_name(h, iface).await?;
    link_up(h, nic.index).await?;
    let mut carrier = CarrierWatch::new(h, nic.index).await?;
    if !carrier.up {
        let wait_up = async {
            while !carrier.changed(h).await? {}
            Ok::<_, NetupError>(())
        };
        let first = tokio::time::timeout(CARRIER_WAIT, wait_up).await;
        match first {
            Ok(r) => r?,
            Err(_) => {
                log(format!(
                    "network: {iface}: no carrier yet; DHCP starts when it comes"
                ));
                while !carrier.changed(h).await? {}
            }
        }
    }
    let sock = dhcp_socket(iface)?;
    let mut c = dhcp::Client::new(nic.mac, xid_seed(nic.mac), Instant::now());
    let mut buf = vec![0u8; 1500];
    loop {
        while let Some(t) = c.poll_transmit() {
            // A send can fail while the link flaps; the timer retransmits.
            let _ = sock
                .send_to(&t.payload, SocketAddrV4::new(t.destination, 67))
                .await;
        }
        while let Some(ev) = c.poll_event() {
            match ev {
                dhcp::Event::Bound(l) => {
                    add_address(h, nic.index, l.address, l.prefix).await?;
                    if let Some(gw) = l.router {
                        set_default_route(h, nic.index, gw, metric).await?;
                    }
                    log(format!(
                        "network up: {iface} {}/{} via {} metric {metric} (dhcp from {}, lease {} s, dns {:?})",
                        l.address,
                        l.prefix,
                        l.router.map_or_else(|| "-".to_owned(), |g| g.to_string()),
                        l.server,
                        l.lease.as_secs(),
                        l.dns
                    ));
                }
                dhcp::Event::Renewed(l) => {
                    log(format!(
                        "lease renewed: {iface} {} for {} s",
                        l.address,
                        l.lease.as_secs()
                    ));
                }
                dhcp::Event::Lost(l) => {
                    del_address(h, nic.index, l.address).await?;
                    if let Some(gw) = l.router {
                        del_default_route(h, nic.index, gw, metric).await;
                    }
                    log(format!("lease lost: {iface} {}", l.address));
                }
                dhcp::Event::Confirmed(l) => {
                    log(format!(
                        "lease confirmed: {iface} {} for {} s (dhcp from {})",
                        l.address,
                        l.lease.as_secs(),
                        l.server
                    ));
                }
                dhcp::Event::Unverified(l) => {
                    // Seconds rather than a date: a freshly booted node's
                    // wall clock may not be set yet.
                    let left = (l.acquired + l.lease).saturating_duration_since(Instant::now());
                    log(format!(
                        "lease unverified: {iface}: no server answered; keeping {} for {} s more, until the lease ends",
                        l.address,
                        left.as_secs()
                    ));
                }
            }
        }
        let deadline = tokio::time::Instant::from_std(c.poll_timeout());
        tokio::select! {
            r = sock.recv_from(&mut buf) => {
                if let Ok((n, _)) = r {
                    c.handle_datagram(&buf[..n], Instant::now());
                }
            }
            _ = tokio::time::sleep_until(deadline) => c.handle_timeout(Instant::now()),
            up = carrier.changed(h) => {
                if up? {
                    match c.lease() {
                        Some(l) => log(format!(
                            "network: {iface}: carrier back; checking {} with the network's DHCP server",
                            l.address
                        )),
                        None => log(format!("network: {iface}: carrier back; DHCP starts over")),
                    }
                    c.carrier_returned(Instant::now());
                } else {
                    log(format!("network: {iface}: carrier lost"));
                    c.carrier_lost(Instant::now());
                }
            }
        }
    }
}

/// Brings the network up as `setting` says, reporting through `log`; with DHCP
/// it keeps running to renew leases. `boot_nic` is the MAC of the NIC the
/// machine network-booted from (`BOOTIF`), if known: its lease gets the
/// preferred default route, and a static setting goes on it.
pub async fn run(
    setting: NetSetting,
    boot_nic: Option<[u8; 6]>,
    log: impl Fn(String) + Send + Sync + 'static,
) {
    if setting == NetSetting::None {
        log("network: none (nodus.net=none)".to_owned());
        return;
    }
    let log = std::sync::Arc::new(log);
    let h = match connect() {
        Ok(h) => h,
        Err(e) => {
            log(format!("network: {e}"));
            return;
        }
    };
    let sys = Path::new("/sys");
    let nics = links::physical(sys);
    if nics.is_empty() {
        log("network: no physical NIC found".to_owned());
        return;
    }
    for n in &nics {
        if let Err(e) = link_up(&h, n.index).await {
            log(format!("network: {}: {e}", n.name));
        }
    }
    match setting {
        NetSetting::Static {
            address,
            gateway,
            dns,
        } => {
            let Some(nic) = static_nic(&h, &nics, boot_nic).await else {
                log(format!(
                    "network: no carrier on {} after {CARRIER_WAIT:?}",
                    nics.iter()
                        .map(|n| n.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
                return;
            };
            let metric = route_metric(&nic, boot_nic);
            let r = async {
                add_address(&h, nic.index, address.address, address.prefix).await?;
                set_default_route(&h, nic.index, gateway, metric).await
            }
            .await;
            match r {
                Ok(()) => log(format!(
                    "network up: {} {address} via {gateway} (static, dns {dns:?})",
                    nic.name
                )),
                Err(e) => log(format!("network: {}: {e}", nic.name)),
            }
        }
        NetSetting::Dhcp => {
            // Every NIC, each as soon as it has carrier: one plugged in (or
            // negotiating) later than the others still gets its lease.
            let mut tasks = Vec::new();
            for nic in nics {
                let h = h.clone();
                let log = log.clone();
                let metric = route_metric(&nic, boot_nic);
                tasks.push(tokio::spawn(async move {
                    let l2 = log.clone();
                    let Err(e) = dhcp_on(&h, &nic.name, metric, move |m| l2(m)).await;
                    log(format!("network: {}: {e}", nic.name));
                }));
            }
            for t in tasks {
                let _ = t.await;
            }
        }
        NetSetting::None => {}
    }
}

/// The NIC a static setting goes on: the boot NIC if it is there, else the
/// first (by name) with carrier within [`CARRIER_WAIT`].
async fn static_nic(
    h: &Handle,
    nics: &[links::Link],
    boot_nic: Option<[u8; 6]>,
) -> Option<links::Link> {
    if let Some(nic) = nics.iter().find(|n| Some(n.mac) == boot_nic) {
        return Some(nic.clone());
    }
    let start = Instant::now();
    while start.elapsed() < CARRIER_WAIT {
        for n in nics {
            if has_carrier(h, n.index).await.unwrap_or(false) {
                return Some(n.clone());
            }
        }
        tokio::time::sleep(CARRIER_POLL).await;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_boot_nic_gets_the_preferred_route_and_the_rest_a_stable_order() {
        let nic = |index, last| links::Link {
            name: format!("eth{index}"),
            index,
            mac: [0x52, 0x54, 0, 0, 0, last],
        };
        let (a, b, c) = (nic(2, 1), nic(3, 2), nic(4, 3));
        let boot = Some(c.mac);
        assert_eq!(route_metric(&c, boot), BOOT_NIC_METRIC);
        let (ma, mb) = (route_metric(&a, boot), route_metric(&b, boot));
        assert!(BOOT_NIC_METRIC < ma && ma < mb, "{ma} {mb}");
        // Without BOOTIF: still one order, by interface index.
        assert!(route_metric(&a, None) < route_metric(&c, None));
        assert_eq!(route_metric(&a, None), route_metric(&a, Some([0; 6])));
    }
}
