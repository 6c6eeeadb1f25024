//! DHCPv4 and proxyDHCP, sans-IO.
//!
//! [`Server::handle`] takes one datagram, where it arrived and the time, and returns
//! an [`Outcome`]: at most one reply with its destination, an optional boot event
//! and an optional rogue-server warning. It never touches a socket or a clock; the
//! tokio layer in [`io`] does that.
//!
//! Two modes ([`Mode`]): a full server with a pool, leases and reservations, and a
//! proxy that leaves addressing to the farm's router and answers PXE clients only
//! (PXE spec 2.1 §2.2.5, "proxyDHCP"), on port 67 and on port 4011 (BINL).

pub mod boot;
pub mod io;
pub mod lease;

use std::net::{Ipv4Addr, SocketAddrV4};

use dhcproto::{
    Decodable as _, Encodable as _,
    v4::{self, DhcpOption, MessageType, Opcode, OptionCode},
};

pub use crate::events::BootEvent;
pub use boot::{BootAnswer, BootClient, BootTable, ClientKind, Refusal};
pub use lease::{Lease, LeaseState, Leases, Pool};

/// The DHCP server port.
pub const SERVER_PORT: u16 = 67;
/// The DHCP client port.
pub const CLIENT_PORT: u16 = 68;
/// The PXE boot-server (BINL) port.
pub const BINL_PORT: u16 = 4011;

/// Addressing settings of the full server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addressing {
    /// The pool and its reservations.
    pub pool: Pool,
    /// Subnet mask handed out.
    pub netmask: Ipv4Addr,
    /// Default gateway handed out, if any.
    pub router: Option<Ipv4Addr>,
    /// DNS servers handed out.
    pub dns: Vec<Ipv4Addr>,
    /// Lease time, seconds.
    pub lease_secs: u32,
}

impl Addressing {
    /// Whether `ip` belongs on the network this server addresses: the pool's
    /// subnet (`netmask`), or for a relayed request (`giaddr` set) the relay's.
    pub fn on_subnet(&self, ip: Ipv4Addr, giaddr: Ipv4Addr) -> bool {
        let mask = u32::from(self.netmask);
        let reference = if giaddr == Ipv4Addr::UNSPECIFIED {
            self.pool.first
        } else {
            giaddr
        };
        u32::from(ip) & mask == u32::from(reference) & mask
    }
}

/// How the server takes part on the segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// We hand out addresses.
    Dhcp(Addressing),
    /// The router hands out addresses; we answer PXE clients only.
    Proxy,
}

/// Where a datagram arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Port {
    /// The DHCP server port, 67.
    Dhcp,
    /// The BINL port, 4011; replies go back to the sender.
    Binl,
    /// The client port, 68: only watched, for other servers' offers.
    Client,
}

/// Where a reply goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    /// Broadcast on the segment, to the client port.
    Broadcast,
    /// Unicast to this address and port.
    Unicast(SocketAddrV4),
}

/// One reply datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Encoded DHCP message.
    pub packet: Vec<u8>,
    /// Where it goes.
    pub to: Destination,
    /// The message type (for logs and tests).
    pub kind: MessageType,
}

/// Another DHCP server seen answering on the segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RogueServer {
    /// Its server identifier (option 54), or the sender when it gave none.
    pub server_id: Option<Ipv4Addr>,
    /// The address it offered.
    pub offered: Ipv4Addr,
    /// The client it offered to.
    pub client: String,
    /// True when the offer carried PXE boot information.
    pub pxe: bool,
}

/// What handling one datagram produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// The reply to send, if any.
    pub reply: Option<Reply>,
    /// A boot event to log, if the sender is a boot client.
    pub event: Option<BootEvent>,
    /// Another DHCP server's offer.
    pub rogue: Option<RogueServer>,
    /// True when the lease table changed and should be saved.
    pub leases_changed: bool,
}

/// Why a datagram was dropped without reply (for debug logs and tests).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Drop {
    /// Not a DHCP message.
    #[error("Not a DHCP message")]
    Malformed,
    /// No message type option.
    #[error("DHCP message has no type")]
    NoType,
}

/// The sans-IO DHCP / proxyDHCP server.
#[derive(Debug)]
pub struct Server {
    ip: Ipv4Addr,
    mode: Mode,
    boot: BootTable,
    leases: Leases,
    /// Servers we expect on the segment (the router in proxy mode).
    known_servers: Vec<Ipv4Addr>,
}

impl Server {
    /// A server answering as `ip`.
    pub fn new(ip: Ipv4Addr, mode: Mode, boot: BootTable, leases: Leases) -> Self {
        Self {
            ip,
            mode,
            boot,
            leases,
            known_servers: Vec::new(),
        }
    }

    /// Servers whose offers are expected and not worth a warning.
    pub fn with_known_servers(mut self, known: Vec<Ipv4Addr>) -> Self {
        self.known_servers = known;
        self
    }

    /// The lease table.
    pub fn leases(&self) -> &Leases {
        &self.leases
    }

    /// Drops expired leases; returns whether anything changed.
    pub fn expire(&mut self, now: u64) -> bool {
        self.leases.expire(now)
    }

    /// Handles one datagram that arrived on `port` from `from` at Unix time `now`.
    /// Never panics, whatever the bytes.
    pub fn handle(&mut self, bytes: &[u8], port: Port, from: SocketAddrV4, now: u64) -> Outcome {
        match self.try_handle(bytes, port, from, now) {
            Ok(o) => o,
            Err(e) => {
                tracing::debug!(%from, error = %e, "dhcp datagram dropped");
                Outcome::default()
            }
        }
    }

    fn try_handle(
        &mut self,
        bytes: &[u8],
        port: Port,
        from: SocketAddrV4,
        now: u64,
    ) -> Result<Outcome, Drop> {
        let msg = decode(bytes).ok_or(Drop::Malformed)?;
        let kind = msg.opts().msg_type().ok_or(Drop::NoType)?;
        if msg.opcode() == Opcode::BootReply {
            return Ok(self.watch_reply(&msg, kind, from));
        }
        if port == Port::Client {
            return Ok(Outcome::default());
        }
        let client = BootClient::from_message(&msg, &self.boot.user_class);
        match (&self.mode, port) {
            (Mode::Proxy, _) | (Mode::Dhcp(_), Port::Binl) => {
                Ok(self.proxy(&msg, kind, &client, port, from, now))
            }
            (Mode::Dhcp(_), _) => Ok(self.full(&msg, kind, &client, now)),
        }
    }

    /// A reply from a server on the segment: warn unless it is us or expected.
    fn watch_reply(&self, msg: &v4::Message, kind: MessageType, from: SocketAddrV4) -> Outcome {
        if kind != MessageType::Offer {
            return Outcome::default();
        }
        let server_id = match msg.opts().get(OptionCode::ServerIdentifier) {
            Some(DhcpOption::ServerIdentifier(s)) => Some(*s),
            _ => None,
        };
        let sender = server_id.unwrap_or(*from.ip());
        if sender == self.ip || self.known_servers.contains(&sender) {
            return Outcome::default();
        }
        let pxe = matches!(
            msg.opts().get(OptionCode::ClassIdentifier),
            Some(DhcpOption::ClassIdentifier(c)) if c.starts_with(b"PXEClient") || c.starts_with(b"HTTPClient")
        );
        // In proxy mode the router's plain offers are expected; another PXE answer
        // is not. In full mode any other server is a conflict.
        if matches!(self.mode, Mode::Proxy) && !pxe {
            return Outcome::default();
        }
        Outcome {
            rogue: Some(RogueServer {
                server_id,
                offered: msg.yiaddr(),
                client: boot::mac_dashed(chaddr(msg)),
                pxe,
            }),
            ..Outcome::default()
        }
    }

    fn event(
        &self,
        service: &'static str,
        msg: &v4::Message,
        client: &BootClient,
        kind: MessageType,
        answered: String,
        now: u64,
    ) -> Option<BootEvent> {
        client.is_boot_client().then(|| BootEvent {
            time: now,
            service,
            mac: Some(boot::mac_dashed(chaddr(msg))),
            uuid: client.uuid.as_ref().map(boot::uuid_text),
            arch: client.arch,
            peer: None,
            asked: format!("{kind:?} {:?}", client.kind),
            answered,
        })
    }

    /// proxyDHCP: answer PXE clients' DISCOVER (port 67) and REQUEST (port 4011, or
    /// port 67 naming us) with boot information and no address.
    fn proxy(
        &mut self,
        msg: &v4::Message,
        kind: MessageType,
        client: &BootClient,
        port: Port,
        from: SocketAddrV4,
        now: u64,
    ) -> Outcome {
        let service = if port == Port::Binl { "binl" } else { "proxy" };
        if !client.is_boot_client() {
            return Outcome::default();
        }
        let reply_kind = match (kind, port) {
            (MessageType::Discover, Port::Dhcp) => MessageType::Offer,
            (MessageType::Request, Port::Binl) => MessageType::Ack,
            // A client without an address that selects our offer has mistaken it
            // for an address offer (busybox udhcpc sent as `PXEClient` does): an
            // ACK would bind it to 0.0.0.0. NAK it, so it starts over and takes
            // the router's offer (RFC 2131 §4.3.2 lets the named server NAK).
            (MessageType::Request, Port::Dhcp)
                if self.names_us(msg) && msg.ciaddr() == Ipv4Addr::UNSPECIFIED =>
            {
                return self.nak_selecting(msg, client, kind, now);
            }
            // A client that has its address and asks us on port 67 (a PXE boot
            // server request, or INFORM): answer with the boot information.
            (MessageType::Request | MessageType::Inform, Port::Dhcp)
                if self.names_us(msg) || kind == MessageType::Inform =>
            {
                MessageType::Ack
            }
            _ => return Outcome::default(),
        };
        let mac = chaddr(msg);
        let answer = match self.boot.choose(client, mac) {
            Ok(a) => a,
            Err(r) => {
                tracing::warn!(mac = %boot::mac_dashed(mac), arch = ?client.arch, reason = %r, "boot client refused");
                return Outcome {
                    event: self.event(service, msg, client, kind, format!("refused: {r}"), now),
                    ..Outcome::default()
                };
            }
        };
        let mut reply = base_reply(msg, reply_kind, self.ip);
        reply.set_yiaddr(Ipv4Addr::UNSPECIFIED);
        self.add_boot(&mut reply, client, &answer);
        let to = match port {
            Port::Binl => Destination::Unicast(from),
            _ => destination(msg, None),
        };
        Outcome {
            reply: encode(&reply, to, reply_kind),
            event: self.event(service, msg, client, kind, answer.file().to_owned(), now),
            ..Outcome::default()
        }
    }

    /// proxyDHCP's NAK for a client that selected our address-less offer.
    fn nak_selecting(
        &self,
        msg: &v4::Message,
        client: &BootClient,
        kind: MessageType,
        now: u64,
    ) -> Outcome {
        let mut nak = base_reply(msg, MessageType::Nak, self.ip);
        nak.set_yiaddr(Ipv4Addr::UNSPECIFIED);
        nak.opts_mut().insert(DhcpOption::Message(
            "proxyDHCP gives no addresses; take the router's offer".into(),
        ));
        Outcome {
            reply: encode(&nak, Destination::Broadcast, MessageType::Nak),
            event: self.event(
                "proxy",
                msg,
                client,
                kind,
                "nak: selected the proxy's address-less offer".into(),
                now,
            ),
            ..Outcome::default()
        }
    }

    fn names_us(&self, msg: &v4::Message) -> bool {
        matches!(msg.opts().get(OptionCode::ServerIdentifier), Some(DhcpOption::ServerIdentifier(s)) if *s == self.ip)
    }

    /// The full server (RFC 2131 §4.3).
    fn full(
        &mut self,
        msg: &v4::Message,
        kind: MessageType,
        client: &BootClient,
        now: u64,
    ) -> Outcome {
        let Mode::Dhcp(addr) = &self.mode else {
            return Outcome::default();
        };
        let addr = addr.clone();
        let mac_bytes = chaddr(msg).to_vec();
        let mac = boot::mac_dashed(&mac_bytes);
        let requested = match msg.opts().get(OptionCode::RequestedIpAddress) {
            Some(DhcpOption::RequestedIpAddress(r)) => Some(*r),
            _ => None,
        };
        let server_id = match msg.opts().get(OptionCode::ServerIdentifier) {
            Some(DhcpOption::ServerIdentifier(s)) => Some(*s),
            _ => None,
        };
        let mut out = Outcome::default();
        let ip = match kind {
            MessageType::Discover => {
                let Some(ip) = addr.pool.pick(&self.leases, &mac, requested, now) else {
                    tracing::warn!(%mac, "dhcp pool exhausted");
                    return out;
                };
                let bound = self
                    .leases
                    .get(ip, now)
                    .is_some_and(|l| l.state == LeaseState::Bound);
                if !bound {
                    // Offer holds are not saved: they last a minute, and losing
                    // them in a crash costs one retried DISCOVER, while an fsync
                    // per DISCOVER would cap the offer rate at the disk's.
                    self.leases.put(Lease {
                        ip,
                        mac: mac.clone(),
                        state: LeaseState::Offered,
                        expires: now + lease::OFFER_HOLD_SECS,
                    });
                }
                ip
            }
            MessageType::Request => {
                if let Some(s) = server_id
                    && s != self.ip
                {
                    // The client chose another server: drop our offer (§4.3.2).
                    if let Some(l) = self.leases.by_mac(&mac, now)
                        && l.state == LeaseState::Offered
                    {
                        let ip = l.ip;
                        out.leases_changed = self.leases.release(ip, &mac);
                    }
                    return out;
                }
                let wanted = requested
                    .or_else(|| (msg.ciaddr() != Ipv4Addr::UNSPECIFIED).then_some(msg.ciaddr()));
                let ok = wanted.filter(|ip| {
                    addr.pool.may_give(*ip, &mac) && self.leases.free_for(*ip, &mac, now)
                });
                match ok {
                    Some(ip) => {
                        self.leases.put(Lease {
                            ip,
                            mac: mac.clone(),
                            state: LeaseState::Bound,
                            expires: now + u64::from(addr.lease_secs),
                        });
                        out.leases_changed = true;
                        ip
                    }
                    None => {
                        // Only NAK what is ours to judge (§4.3.2, otherwise "the
                        // server SHOULD remain silent"): a selecting client, an
                        // address in our range, or a client verifying its lease
                        // after a reboot or a link change (INIT-REBOOT: option
                        // 50, no ciaddr) with an address from another network,
                        // such as a node whose cable was moved here. Silence
                        // would leave that node on a dead address until its
                        // lease's renewal time.
                        let init_reboot = server_id.is_none()
                            && requested.is_some()
                            && msg.ciaddr() == Ipv4Addr::UNSPECIFIED;
                        let wrong_network =
                            init_reboot && wanted.is_some_and(|w| !addr.on_subnet(w, msg.giaddr()));
                        if server_id.is_some()
                            || wrong_network
                            || wanted.is_some_and(|w| addr.pool.in_range(w))
                        {
                            let mut nak = base_reply(msg, MessageType::Nak, self.ip);
                            nak.set_yiaddr(Ipv4Addr::UNSPECIFIED);
                            if wrong_network && let Some(w) = wanted {
                                tracing::info!(%mac, requested = %w, "dhcp: NAK, the client's address is from another network");
                                nak.opts_mut().insert(DhcpOption::Message(format!(
                                    "{w} is not on this network"
                                )));
                            }
                            out.reply = encode(&nak, Destination::Broadcast, MessageType::Nak);
                        }
                        return out;
                    }
                }
            }
            MessageType::Release => {
                out.leases_changed = self.leases.release(msg.ciaddr(), &mac);
                return out;
            }
            MessageType::Decline => {
                if let Some(r) = requested
                    && self.leases.get(r, now).is_some_and(|l| l.mac == mac)
                {
                    self.leases.put(Lease {
                        ip: r,
                        mac,
                        state: LeaseState::Declined,
                        expires: now + lease::DECLINE_HOLD_SECS,
                    });
                    out.leases_changed = true;
                }
                return out;
            }
            MessageType::Inform => {
                let mut ack = base_reply(msg, MessageType::Ack, self.ip);
                ack.set_yiaddr(Ipv4Addr::UNSPECIFIED);
                add_addressing(&mut ack, &addr, false);
                let to = destination(msg, None);
                out.reply = encode(&ack, to, MessageType::Ack);
                return out;
            }
            _ => return out,
        };
        let reply_kind = if kind == MessageType::Discover {
            MessageType::Offer
        } else {
            MessageType::Ack
        };
        let mut reply = base_reply(msg, reply_kind, self.ip);
        reply.set_yiaddr(ip);
        add_addressing(&mut reply, &addr, true);
        if client.is_boot_client() {
            match self.boot.choose(client, &mac_bytes) {
                Ok(answer) => {
                    self.add_boot(&mut reply, client, &answer);
                    out.event =
                        self.event("dhcp", msg, client, kind, answer.file().to_owned(), now);
                }
                Err(r) => {
                    tracing::warn!(%mac, arch = ?client.arch, reason = %r, "boot client refused");
                    out.event = self.event("dhcp", msg, client, kind, format!("refused: {r}"), now);
                }
            }
        }
        out.reply = encode(&reply, destination(msg, Some(ip)), reply_kind);
        out
    }

    /// Boot file, next server and the PXE vendor options.
    fn add_boot(&self, reply: &mut v4::Message, client: &BootClient, answer: &BootAnswer) {
        reply.set_siaddr(self.ip);
        // The header field holds 128 bytes with its NUL; longer URLs travel in
        // option 67 only (RFC 2132 §9.5).
        if answer.file().len() < 128 {
            reply.set_fname_str(answer.file());
        }
        let opts = reply.opts_mut();
        opts.insert(DhcpOption::BootfileName(answer.file().as_bytes().to_vec()));
        let class: &[u8] = if client.kind == ClientKind::Http {
            b"HTTPClient"
        } else {
            b"PXEClient"
        };
        opts.insert(DhcpOption::ClassIdentifier(class.to_vec()));
        if client.kind == ClientKind::Pxe {
            // PXE spec §2.2.5, option 43 sub-option 6 (discovery control) = 8:
            // "boot from the file name given, skip boot-server discovery". Without it
            // some BIOS ROMs ignore a proxy offer.
            opts.insert(DhcpOption::VendorExtensions(vec![6, 1, 8, 255]));
        }
        if let Some(g) = &client.raw_guid {
            opts.insert(DhcpOption::ClientMachineIdentifier(g.clone()));
        }
    }
}

fn decode(bytes: &[u8]) -> Option<v4::Message> {
    // dhcproto indexes chaddr by hlen; refuse a header that claims more than the
    // 16-byte field before handing it the bytes.
    if bytes.len() < 240 || bytes.get(2).is_none_or(|&hlen| hlen > 16) {
        return None;
    }
    // RFC 2131 §3: options start with the magic cookie; without it this is BOOTP
    // or noise, neither of which we answer.
    if bytes.get(236..240) != Some(&[99, 130, 83, 99][..]) {
        return None;
    }
    if !options_decodable(&bytes[240..]) {
        return None;
    }
    // A second line of defence: dhcproto is not ours, and one panic must not take
    // the boot server down (the check above covers every panic the fuzz target
    // `dhcp_server` found).
    std::panic::catch_unwind(|| v4::Message::from_bytes(bytes))
        .ok()?
        .ok()
}

/// True when no option in `opts` (the area after the magic cookie) breaks a
/// length rule dhcproto 0.14's decoder asserts instead of checking: it indexes
/// and subtracts on these lengths, which panics in debug builds and wraps in
/// release ones. Consecutive instances of one code are concatenated first, as
/// RFC 3396 (and dhcproto) do.
fn options_decodable(opts: &[u8]) -> bool {
    let ok = |code: u8, len: usize| match code {
        80 => len == 0,        // Rapid Commit
        81 => len >= 3,        // Client FQDN: flags, two rcodes, name
        94 => len == 3,        // Client Network Interface
        151 => len >= 1,       // BLQ status code
        152..=155 => len == 4, // BLQ times
        _ => true,
    };
    let mut run: Option<(u8, usize)> = None;
    let mut i = 0;
    // Bounded: every step moves `i` forward by at least one byte.
    while let Some(&code) = opts.get(i) {
        if code == 255 {
            break;
        }
        if code == 0 {
            if let Some((c, len)) = run.take()
                && !ok(c, len)
            {
                return false;
            }
            i += 1;
            continue;
        }
        let Some(&len) = opts.get(i + 1) else { break };
        let len = usize::from(len);
        if i + 2 + len > opts.len() {
            // dhcproto stops at a truncated option; so do we.
            break;
        }
        run = match run {
            Some((c, total)) if c == code => Some((c, total + len)),
            Some((c, total)) => {
                if !ok(c, total) {
                    return false;
                }
                Some((code, len))
            }
            None => Some((code, len)),
        };
        i += 2 + len;
    }
    run.is_none_or(|(c, len)| ok(c, len))
}

fn chaddr(msg: &v4::Message) -> &[u8] {
    let c = msg.chaddr();
    &c[..usize::from(msg.hlen()).min(c.len())]
}

fn base_reply(req: &v4::Message, kind: MessageType, server: Ipv4Addr) -> v4::Message {
    let mut r = v4::Message::default();
    r.set_opcode(Opcode::BootReply)
        .set_xid(req.xid())
        .set_flags(req.flags())
        .set_giaddr(req.giaddr())
        .set_chaddr(chaddr(req))
        .set_htype(req.htype());
    r.opts_mut().insert(DhcpOption::MessageType(kind));
    r.opts_mut().insert(DhcpOption::ServerIdentifier(server));
    r
}

fn add_addressing(reply: &mut v4::Message, addr: &Addressing, lease: bool) {
    let opts = reply.opts_mut();
    opts.insert(DhcpOption::SubnetMask(addr.netmask));
    if let Some(r) = addr.router {
        opts.insert(DhcpOption::Router(vec![r]));
    }
    if !addr.dns.is_empty() {
        opts.insert(DhcpOption::DomainNameServer(addr.dns.clone()));
    }
    if lease {
        opts.insert(DhcpOption::AddressLeaseTime(addr.lease_secs));
        opts.insert(DhcpOption::Renewal(addr.lease_secs / 2));
        opts.insert(DhcpOption::Rebinding(addr.lease_secs / 8 * 7));
    }
}

/// RFC 2131 §4.1: relay → giaddr, renewing client → ciaddr, otherwise broadcast.
/// (Unicasting to a client without an address needs an ARP entry we cannot add
/// portably; broadcasting is always allowed.)
fn destination(msg: &v4::Message, _yiaddr: Option<Ipv4Addr>) -> Destination {
    if msg.giaddr() != Ipv4Addr::UNSPECIFIED {
        Destination::Unicast(SocketAddrV4::new(msg.giaddr(), SERVER_PORT))
    } else if msg.ciaddr() != Ipv4Addr::UNSPECIFIED {
        Destination::Unicast(SocketAddrV4::new(msg.ciaddr(), CLIENT_PORT))
    } else {
        Destination::Broadcast
    }
}

fn encode(msg: &v4::Message, to: Destination, kind: MessageType) -> Option<Reply> {
    match msg.to_vec() {
        Ok(packet) => Some(Reply { packet, to, kind }),
        Err(e) => {
            tracing::warn!(error = %e, "dhcp reply could not be encoded");
            None
        }
    }
}

#[cfg(test)]
mod tests;
