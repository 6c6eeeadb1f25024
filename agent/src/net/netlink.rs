//! What only rtnetlink knows about interfaces: addresses, default routes and link
//! kinds, dumped once and merged into the sysfs view.
//!
//! The conversion from netlink messages ([`NetlinkView::from_messages`]) is kept
//! apart from the socket ([`NetlinkView::dump`]) so it is tested with built
//! messages, without a kernel.

use std::net::IpAddr;

use futures_util::TryStreamExt;
use netlink_packet_route::{
    AddressFamily,
    address::{AddressAttribute, AddressMessage},
    link::{LinkAttribute, LinkMessage, State},
    route::{RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteType},
};
use rtnetlink::RouteMessageBuilder;

use super::{DefaultRoute, NetError, Nic};

/// One link as netlink describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct LinkFacts {
    pub(super) index: u32,
    pub(super) name: Option<String>,
    pub(super) mac: Option<String>,
    pub(super) mtu: Option<u32>,
    pub(super) operstate: Option<String>,
    pub(super) carrier: Option<bool>,
}

/// A snapshot of links, addresses and default routes from one netlink dump.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetlinkView {
    links: Vec<LinkFacts>,
    /// (ifindex, CIDR)
    addresses: Vec<(u32, String)>,
    /// (output ifindex, route with the interface still unnamed)
    default_routes: Vec<(u32, DefaultRoute)>,
}

impl NetlinkView {
    /// Dumps links, addresses and IPv4/IPv6 routes from the kernel over a fresh
    /// rtnetlink socket. Must run inside a tokio runtime.
    pub async fn dump() -> Result<Self, NetError> {
        // The socket registers with the runtime as it is created.
        let rt = tokio::runtime::Handle::try_current().map_err(|_| NetError::NoRuntime)?;
        let (conn, handle, _) = rtnetlink::new_connection().map_err(NetError::Socket)?;
        let task = rt.spawn(conn);
        let result = async {
            let dump_err = |what| move |source| NetError::Dump { what, source };
            let links: Vec<LinkMessage> = handle
                .link()
                .get()
                .execute()
                .try_collect()
                .await
                .map_err(dump_err("links"))?;
            let addrs: Vec<AddressMessage> = handle
                .address()
                .get()
                .execute()
                .try_collect()
                .await
                .map_err(dump_err("addresses"))?;
            let mut routes: Vec<RouteMessage> = handle
                .route()
                .get(RouteMessageBuilder::<std::net::Ipv4Addr>::new().build())
                .execute()
                .try_collect()
                .await
                .map_err(dump_err("routes"))?;
            let v6: Vec<RouteMessage> = handle
                .route()
                .get(RouteMessageBuilder::<std::net::Ipv6Addr>::new().build())
                .execute()
                .try_collect()
                .await
                .map_err(dump_err("routes"))?;
            routes.extend(v6);
            Ok(Self::from_messages(&links, &addrs, &routes))
        }
        .await;
        task.abort();
        result
    }

    /// The default routes, each naming its interface, lowest metric first.
    pub fn default_routes(&self) -> Vec<DefaultRoute> {
        let mut routes: Vec<DefaultRoute> = self
            .default_routes
            .iter()
            .map(|(oif, r)| {
                let mut r = r.clone();
                r.interface = self
                    .links
                    .iter()
                    .find(|l| l.index == *oif)
                    .and_then(|l| l.name.clone())
                    .unwrap_or_else(|| format!("if{oif}"));
                r
            })
            .collect();
        routes.sort_by_key(|r| (r.metric.unwrap_or(0), r.family.clone()));
        routes
    }

    /// Builds the view from dumped messages.
    pub fn from_messages(
        links: &[LinkMessage],
        addrs: &[AddressMessage],
        routes: &[RouteMessage],
    ) -> Self {
        Self {
            links: links.iter().map(link_facts).collect(),
            addresses: addrs.iter().filter_map(address_cidr).collect(),
            default_routes: routes.iter().filter_map(default_route).collect(),
        }
    }
}

/// The facts of one link message (also used for link events).
pub(super) fn link_facts(msg: &LinkMessage) -> LinkFacts {
    let mut f = LinkFacts {
        index: msg.header.index,
        name: None,
        mac: None,
        mtu: None,
        operstate: None,
        carrier: None,
    };
    for a in &msg.attributes {
        match a {
            LinkAttribute::IfName(n) => f.name = Some(n.clone()),
            LinkAttribute::Address(b) if !b.is_empty() => f.mac = Some(format_mac(b)),
            LinkAttribute::Mtu(m) => f.mtu = Some(*m),
            LinkAttribute::OperState(s) => f.operstate = Some(operstate_name(*s).to_owned()),
            LinkAttribute::Carrier(c) => f.carrier = Some(*c != 0),
            _ => {}
        }
    }
    f
}

/// The same words sysfs `operstate` uses (RFC 2863 states, lower case).
fn operstate_name(s: State) -> &'static str {
    match s {
        State::Up => "up",
        State::Down => "down",
        State::LowerLayerDown => "lowerlayerdown",
        State::Testing => "testing",
        State::Dormant => "dormant",
        State::NotPresent => "notpresent",
        _ => "unknown",
    }
}

fn format_mac(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// `addr/prefix` of an address message. For IPv4 `IFA_LOCAL` is the interface's
/// own address and `IFA_ADDRESS` the peer on point-to-point links
/// (`include/uapi/linux/if_addr.h`), so `IFA_LOCAL` wins when both are present.
fn address_cidr(msg: &AddressMessage) -> Option<(u32, String)> {
    let mut addr: Option<IpAddr> = None;
    for a in &msg.attributes {
        match a {
            AddressAttribute::Local(ip) => addr = Some(*ip),
            AddressAttribute::Address(ip) if addr.is_none() => addr = Some(*ip),
            _ => {}
        }
    }
    Some((
        msg.header.index,
        format!("{}/{}", addr?, msg.header.prefix_len),
    ))
}

/// A default unicast route of the main table, with its output interface.
fn default_route(msg: &RouteMessage) -> Option<(u32, DefaultRoute)> {
    let h = &msg.header;
    if h.destination_prefix_length != 0
        || h.kind != RouteType::Unicast
        || !matches!(h.address_family, AddressFamily::Inet | AddressFamily::Inet6)
    {
        return None;
    }
    let mut table = u32::from(h.table);
    let mut oif = None;
    let family = if h.address_family == AddressFamily::Inet {
        "inet"
    } else {
        "inet6"
    };
    let mut route = DefaultRoute {
        interface: String::new(),
        family: family.to_owned(),
        gateway: None,
        metric: None,
    };
    for a in &msg.attributes {
        match a {
            RouteAttribute::Table(t) => table = *t,
            RouteAttribute::Oif(i) => oif = Some(*i),
            RouteAttribute::Priority(p) => route.metric = Some(*p),
            RouteAttribute::Gateway(RouteAddress::Inet(ip)) => route.gateway = Some(ip.to_string()),
            RouteAttribute::Gateway(RouteAddress::Inet6(ip)) => {
                route.gateway = Some(ip.to_string())
            }
            _ => {}
        }
    }
    (table == u32::from(RouteHeader::RT_TABLE_MAIN)).then_some(())?;
    Some((oif?, route))
}

/// Merges a netlink view into NICs read from sysfs. sysfs stays authoritative for
/// what it reports; netlink adds addresses, and interfaces sysfs did not list (a
/// `/sys` mounted from another namespace).
pub fn merge(nics: &mut Vec<Nic>, view: &NetlinkView) {
    for link in &view.links {
        let Some(name) = &link.name else { continue };
        let nic = match nics.iter().position(|n| &n.name == name) {
            Some(p) => &mut nics[p],
            None => {
                let mut n = Nic::new(name.clone());
                n.operstate = link
                    .operstate
                    .clone()
                    .unwrap_or_else(|| "unknown".to_owned());
                n.carrier = link.carrier.unwrap_or(false);
                nics.push(n);
                let last = nics.len() - 1;
                &mut nics[last]
            }
        };
        nic.mac = nic.mac.take().or_else(|| link.mac.clone());
        nic.mtu = nic.mtu.or(link.mtu);
        let mut addrs: Vec<String> = view
            .addresses
            .iter()
            .filter(|(i, _)| *i == link.index)
            .map(|(_, a)| a.clone())
            .collect();
        addrs.sort();
        addrs.dedup();
        nic.addresses = addrs;
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use netlink_packet_route::link::LinkHeader;

    use super::*;

    fn link(index: u32, name: &str) -> LinkMessage {
        let mut m = LinkMessage::default();
        m.header = LinkHeader {
            index,
            ..LinkHeader::default()
        };
        m.attributes = vec![
            LinkAttribute::IfName(name.to_owned()),
            LinkAttribute::Address(vec![0x02, 0xfc, 0, 0, 0, 0x01]),
            LinkAttribute::Mtu(1500),
            LinkAttribute::OperState(State::Up),
            LinkAttribute::Carrier(1),
        ];
        m
    }

    fn addr(index: u32, ip: IpAddr, prefix: u8, local: Option<IpAddr>) -> AddressMessage {
        let mut m = AddressMessage::default();
        m.header.index = index;
        m.header.prefix_len = prefix;
        m.header.family = if ip.is_ipv4() {
            AddressFamily::Inet
        } else {
            AddressFamily::Inet6
        };
        m.attributes.push(AddressAttribute::Address(ip));
        if let Some(l) = local {
            m.attributes.push(AddressAttribute::Local(l));
        }
        m
    }

    fn route(prefix: u8, table: u8, oif: u32, gw: Option<RouteAddress>) -> RouteMessage {
        let mut m = RouteMessage::default();
        m.header.address_family = AddressFamily::Inet;
        m.header.destination_prefix_length = prefix;
        m.header.table = table;
        m.header.kind = RouteType::Unicast;
        m.attributes.push(RouteAttribute::Oif(oif));
        m.attributes.push(RouteAttribute::Priority(100));
        if let Some(g) = gw {
            m.attributes.push(RouteAttribute::Gateway(g));
        }
        m
    }

    #[test]
    fn merges_addresses_and_finds_default_routes() {
        let gw = Ipv4Addr::new(10, 0, 0, 1);
        let view = NetlinkView::from_messages(
            &[link(2, "eth0"), link(5, "veth1")],
            &[
                addr(2, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 5)), 24, None),
                addr(2, IpAddr::V6(Ipv6Addr::LOCALHOST), 128, None),
                // Point-to-point: IFA_ADDRESS is the peer, IFA_LOCAL ours.
                addr(
                    5,
                    IpAddr::V4(Ipv4Addr::new(192, 168, 9, 2)),
                    32,
                    Some(IpAddr::V4(Ipv4Addr::new(192, 168, 9, 1))),
                ),
            ],
            &[
                route(
                    0,
                    RouteHeader::RT_TABLE_MAIN,
                    2,
                    Some(RouteAddress::Inet(gw)),
                ),
                route(24, RouteHeader::RT_TABLE_MAIN, 2, None),
                route(0, 100, 5, Some(RouteAddress::Inet(gw))),
            ],
        );
        let mut eth0 = Nic::new("eth0");
        eth0.mac = Some("02:fc:00:00:00:01".into());
        eth0.physical = true;
        let mut nics = vec![eth0];
        merge(&mut nics, &view);
        assert_eq!(nics.len(), 2, "veth1 comes from netlink alone");
        let e = &nics[0];
        assert_eq!(e.addresses, vec!["10.0.0.5/24", "::1/128"]);
        assert_eq!(
            view.default_routes(),
            vec![DefaultRoute {
                interface: "eth0".into(),
                family: "inet".into(),
                gateway: Some("10.0.0.1".into()),
                metric: Some(100)
            }],
            "only main-table /0 routes; table 100 is not the main table"
        );
        let v = &nics[1];
        assert_eq!((v.name.as_str(), v.carrier), ("veth1", true));
        assert_eq!(v.addresses, vec!["192.168.9.1/32"]);
        assert_eq!(v.mac.as_deref(), Some("02:fc:00:00:00:01"));
    }
}
