//! Live link events from the kernel's `RTNLGRP_LINK` multicast group.
//!
//! The kernel sends `RTM_NEWLINK` to the group whenever a link changes (carrier,
//! operstate, flags, MTU, name) and `RTM_DELLINK` when one goes away, as the
//! change happens (`net/core/rtnetlink.c`, `rtmsg_ifinfo`). Subscribing means a
//! carrier loss reaches the agent within the kernel's notification latency,
//! instead of at the next sysfs poll.

use futures_util::StreamExt;
use netlink_packet_route::{RouteNetlinkMessage, link::LinkFlags};
use rtnetlink::{
    MulticastGroup,
    packet_core::{NetlinkMessage, NetlinkPayload},
    sys::SocketAddr,
};

use super::{NetError, netlink::link_facts};

/// What happened to a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkChange {
    /// Created or changed (`RTM_NEWLINK`).
    Changed,
    /// Removed (`RTM_DELLINK`).
    Removed,
}

/// One link notification.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LinkEvent {
    /// Changed or removed.
    pub change: LinkChange,
    /// Kernel interface index.
    pub ifindex: u32,
    /// Interface name, when the message carries it (it always does for changes).
    pub name: Option<String>,
    /// Carrier (`IFLA_CARRIER`), when present.
    pub carrier: Option<bool>,
    /// Operstate, in sysfs words.
    pub operstate: Option<String>,
    /// Administratively up (`IFF_UP`).
    pub admin_up: bool,
}

impl LinkEvent {
    /// The event a route netlink message describes; `None` for non-link messages.
    pub fn from_message(msg: &RouteNetlinkMessage) -> Option<Self> {
        let (change, link) = match msg {
            RouteNetlinkMessage::NewLink(l) => (LinkChange::Changed, l),
            RouteNetlinkMessage::DelLink(l) => (LinkChange::Removed, l),
            _ => return None,
        };
        let f = link_facts(link);
        Some(Self {
            change,
            ifindex: f.index,
            name: f.name,
            carrier: f.carrier,
            operstate: f.operstate,
            admin_up: link.header.flags.contains(LinkFlags::Up),
        })
    }
}

type Messages =
    futures_util::stream::BoxStream<'static, (NetlinkMessage<RouteNetlinkMessage>, SocketAddr)>;

/// A subscription to link events. Dropping it closes the socket.
pub struct LinkEvents {
    messages: Messages,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for LinkEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkEvents").finish_non_exhaustive()
    }
}

impl LinkEvents {
    /// Joins `RTNLGRP_LINK` in the calling thread's network namespace. Must run
    /// inside a tokio runtime. Events that happen after this returns are delivered.
    pub fn subscribe() -> Result<Self, NetError> {
        // The socket registers with the runtime as it is created.
        let rt = tokio::runtime::Handle::try_current().map_err(|_| NetError::NoRuntime)?;
        let (conn, _handle, messages) =
            rtnetlink::new_multicast_connection(&[MulticastGroup::Link])
                .map_err(NetError::Socket)?;
        let task = rt.spawn(conn);
        Ok(Self {
            messages: messages.boxed(),
            task,
        })
    }

    /// The next link event; `None` when the socket closed.
    pub async fn next(&mut self) -> Option<LinkEvent> {
        while let Some((msg, _)) = self.messages.next().await {
            if let NetlinkPayload::InnerMessage(inner) = &msg.payload
                && let Some(ev) = LinkEvent::from_message(inner)
            {
                return Some(ev);
            }
        }
        None
    }
}

impl Drop for LinkEvents {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use netlink_packet_route::link::{LinkAttribute, LinkMessage, State};

    use super::*;

    #[test]
    fn carrier_loss_message_becomes_an_event() {
        let mut l = LinkMessage::default();
        l.header.index = 9;
        l.header.flags = LinkFlags::Up | LinkFlags::Broadcast;
        l.attributes = vec![
            LinkAttribute::IfName("veth0".into()),
            LinkAttribute::Carrier(0),
            LinkAttribute::OperState(State::LowerLayerDown),
        ];
        let ev = LinkEvent::from_message(&RouteNetlinkMessage::NewLink(l.clone())).unwrap();
        assert_eq!(
            ev,
            LinkEvent {
                change: LinkChange::Changed,
                ifindex: 9,
                name: Some("veth0".into()),
                carrier: Some(false),
                operstate: Some("lowerlayerdown".into()),
                admin_up: true,
            }
        );
        let gone = LinkEvent::from_message(&RouteNetlinkMessage::DelLink(l)).unwrap();
        assert_eq!(gone.change, LinkChange::Removed);
    }

    #[test]
    fn subscribing_outside_a_runtime_is_an_error_not_a_panic() {
        assert!(matches!(LinkEvents::subscribe(), Err(NetError::NoRuntime)));
    }
}
