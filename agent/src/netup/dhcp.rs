//! A DHCPv4 client core (RFC 2131), sans-IO: datagrams and the time in,
//! datagrams, lease events and the next timeout out.
//!
//! States: `Selecting` (DISCOVER, wait for an OFFER) → `Requesting` (REQUEST the
//! offer, wait for ACK) → `Bound` until T1 → `Renewing` (unicast REQUEST to the
//! server) until T2 → `Rebinding` (broadcast REQUEST) until the lease ends →
//! back to `Selecting`. A NAK, or no ACK, also goes back to `Selecting`.
//!
//! When the NIC's carrier comes back, the cable may now lead to another switch,
//! VLAN or network, so a lease is not trusted until T1 but checked at once
//! ([`Client::carrier_returned`], RFC 2131 §3.2 and §4.4.2, INIT-REBOOT): the
//! client enters `Rebooting` and broadcasts a REQUEST for its address (option
//! 50, no ciaddr, no server identifier) up to [`REBOOT_REQUESTS`] times. An ACK
//! for the address confirms the lease ([`Event::Confirmed`]); an ACK for another
//! address replaces it ([`Event::Lost`], then [`Event::Bound`]); a NAK loses it
//! and starts over with DISCOVER; silence keeps the lease while it lasts
//! ([`Event::Unverified`], RFC 2131 §3.2: the client may go on using it) and
//! returns to the state its times say. Without a lease, carrier return
//! restarts DISCOVER with the shortest delay.
//!
//! Retransmissions double from [`FIRST_RETRANSMIT`] up to [`MAX_RETRANSMIT`]
//! (RFC 2131 §4.1 starts at 4 s; a booting node starts faster, as most clients
//! do). In `Renewing`/`Rebinding` it retries at half the time left to T2 / the
//! lease end, but not more often than [`MIN_RENEW_RETRY`] (§4.4.5).

use std::{
    collections::VecDeque,
    net::Ipv4Addr,
    time::{Duration, Instant},
};

use dhcproto::{
    Decodable as _, Decoder, Encodable as _, Encoder,
    v4::{self, DhcpOption, MessageType, OptionCode},
};

/// First retransmission delay while selecting or requesting.
pub const FIRST_RETRANSMIT: Duration = Duration::from_secs(1);
/// Longest retransmission delay while selecting.
pub const MAX_RETRANSMIT: Duration = Duration::from_secs(32);
/// REQUESTs sent for one offer before starting over.
pub const MAX_REQUESTS: u32 = 4;
/// Shortest retry interval while renewing or rebinding (RFC 2131 §4.4.5).
pub const MIN_RENEW_RETRY: Duration = Duration::from_secs(60);
/// Lease time assumed when the server gives none.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(3600);
/// REQUESTs sent to verify a lease after the carrier came back, before the
/// client keeps the lease unverified. With the usual doubling from
/// [`FIRST_RETRANSMIT`] (1, 2, 4, 8, 16, 32 s) that is 63 s in all, so the
/// sixth goes out 31 s after the carrier: past the 30 s a switch port running
/// classic spanning tree (listening + learning, 2 × 15 s) drops traffic before
/// it forwards. Where the port forwards at once, the first answer comes within a
/// second; the address stays in use throughout the check.
pub const REBOOT_REQUESTS: u32 = 6;

/// A lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// Our address.
    pub address: Ipv4Addr,
    /// Prefix length from the subnet mask (24 when the server gives none).
    pub prefix: u8,
    /// The default gateway.
    pub router: Option<Ipv4Addr>,
    /// DNS servers.
    pub dns: Vec<Ipv4Addr>,
    /// The server that leased it.
    pub server: Ipv4Addr,
    /// When the ACK arrived.
    pub acquired: Instant,
    /// Lease length.
    pub lease: Duration,
    /// Renewal time (T1), from `acquired`.
    pub t1: Duration,
    /// Rebinding time (T2), from `acquired`.
    pub t2: Duration,
}

/// What happened to the lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A new lease: configure it.
    Bound(Lease),
    /// The same address, renewed (the lease times may have changed).
    Renewed(Lease),
    /// The lease ended or was refused: remove the address.
    Lost(Lease),
    /// After the carrier came back, a server confirmed the address (with new
    /// lease times): keep it.
    Confirmed(Lease),
    /// After the carrier came back, no server answered: the lease is kept,
    /// unverified, until it ends or renewal says otherwise (RFC 2131 §3.2).
    Unverified(Lease),
}

/// Where a datagram goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// 255.255.255.255 or the server (when renewing).
    pub destination: Ipv4Addr,
    /// The DHCP message.
    pub payload: Vec<u8>,
}

/// The client's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Broadcasting DISCOVER.
    Selecting,
    /// Asked for `offer` from `server`; `sent` REQUESTs so far.
    Requesting {
        /// The offered address.
        offer: Ipv4Addr,
        /// The offering server.
        server: Ipv4Addr,
        /// REQUESTs sent.
        sent: u32,
    },
    /// Holding a lease.
    Bound,
    /// Past T1: asking the server directly.
    Renewing,
    /// Past T2: asking any server.
    Rebinding,
    /// The carrier came back while holding a lease: asking any server whether
    /// the address is still right on this network (INIT-REBOOT); `sent`
    /// REQUESTs so far. Left for `Bound` (ACK), `Selecting` (NAK or the lease
    /// ended) or the state the lease's times say (no answer).
    Rebooting {
        /// REQUESTs sent.
        sent: u32,
    },
}

/// The client core.
#[derive(Debug)]
pub struct Client {
    mac: [u8; 6],
    xid: u32,
    state: State,
    lease: Option<Lease>,
    /// When the current retransmission or lease timer fires.
    timer: Instant,
    /// The current retransmission delay.
    delay: Duration,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
}

fn prefix_of(mask: Ipv4Addr) -> u8 {
    u32::from(mask).leading_ones() as u8
}

impl Client {
    /// A client for the NIC `mac`; `xid` seeds transaction ids (random in
    /// practice, fixed in tests). It sends its first DISCOVER at once.
    pub fn new(mac: [u8; 6], xid: u32, now: Instant) -> Self {
        let mut c = Self {
            mac,
            xid,
            state: State::Selecting,
            lease: None,
            timer: now,
            delay: FIRST_RETRANSMIT,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        };
        c.discover(now);
        c
    }

    /// The state.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// The lease held, if any.
    pub fn lease(&self) -> Option<&Lease> {
        self.lease.as_ref()
    }

    fn message(&self, kind: MessageType, ciaddr: Ipv4Addr) -> v4::Message {
        let mut m = v4::Message::new_with_id(
            self.xid,
            ciaddr,
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::UNSPECIFIED,
            &self.mac,
        );
        // No address yet: ask for broadcast replies, which reach a socket on an
        // interface without an address (RFC 2131 §4.1).
        if ciaddr.is_unspecified() {
            m.set_flags(v4::Flags::default().set_broadcast());
        }
        let opts = m.opts_mut();
        opts.insert(DhcpOption::MessageType(kind));
        let mut id = vec![1u8];
        id.extend_from_slice(&self.mac);
        opts.insert(DhcpOption::ClientIdentifier(id));
        opts.insert(DhcpOption::ParameterRequestList(vec![
            OptionCode::SubnetMask,
            OptionCode::Router,
            OptionCode::DomainNameServer,
            OptionCode::AddressLeaseTime,
            OptionCode::Renewal,
            OptionCode::Rebinding,
        ]));
        m
    }

    fn send(&mut self, m: &v4::Message, destination: Ipv4Addr) {
        let mut payload = Vec::with_capacity(300);
        if m.encode(&mut Encoder::new(&mut payload)).is_ok() {
            self.transmits.push_back(Transmit {
                destination,
                payload,
            });
        }
    }

    fn discover(&mut self, now: Instant) {
        self.state = State::Selecting;
        let m = self.message(MessageType::Discover, Ipv4Addr::UNSPECIFIED);
        self.send(&m, Ipv4Addr::BROADCAST);
        self.timer = now + self.delay;
    }

    fn request(&mut self, now: Instant) {
        match self.state.clone() {
            State::Requesting { offer, server, .. } => {
                let mut m = self.message(MessageType::Request, Ipv4Addr::UNSPECIFIED);
                m.opts_mut().insert(DhcpOption::RequestedIpAddress(offer));
                m.opts_mut().insert(DhcpOption::ServerIdentifier(server));
                self.send(&m, Ipv4Addr::BROADCAST);
                self.timer = now + self.delay;
            }
            State::Renewing | State::Rebinding => {
                let Some(l) = self.lease.clone() else {
                    return;
                };
                // RFC 2131 §4.3.2: renewing/rebinding REQUESTs carry ciaddr and
                // neither the server id nor a requested address.
                let m = self.message(MessageType::Request, l.address);
                let dst = if self.state == State::Renewing {
                    l.server
                } else {
                    Ipv4Addr::BROADCAST
                };
                self.send(&m, dst);
                let until = if self.state == State::Renewing {
                    l.acquired + l.t2
                } else {
                    l.acquired + l.lease
                };
                let half = until.saturating_duration_since(now) / 2;
                self.timer = (now + half.max(MIN_RENEW_RETRY)).min(until);
            }
            State::Rebooting { .. } => {
                let Some(address) = self.lease.as_ref().map(|l| l.address) else {
                    return;
                };
                // RFC 2131 §4.3.2 (INIT-REBOOT): no ciaddr and no server id, the
                // address in option 50, broadcast: whichever server runs the
                // network the cable now leads to must answer.
                let mut m = self.message(MessageType::Request, Ipv4Addr::UNSPECIFIED);
                m.opts_mut().insert(DhcpOption::RequestedIpAddress(address));
                self.send(&m, Ipv4Addr::BROADCAST);
                self.timer = now + self.delay;
            }
            State::Selecting | State::Bound => {}
        }
    }

    /// The NIC's carrier came back (a cable plugged in again, a switch
    /// rebooted, a port moved to another VLAN): the network may have changed.
    /// With a lease, checks it at once (`Rebooting`); without one, restarts
    /// DISCOVER with the shortest retransmission delay, so the new link is not
    /// left waiting out a backoff that grew while it was dead. Calling it again
    /// while checking starts the check over.
    pub fn carrier_returned(&mut self, now: Instant) {
        // A fresh transaction: answers to what was sent on the old link are
        // stale.
        self.xid = self.xid.wrapping_add(1);
        self.delay = FIRST_RETRANSMIT;
        self.transmits.clear();
        match &self.lease {
            Some(l) if now.saturating_duration_since(l.acquired) < l.lease => {
                self.state = State::Rebooting { sent: 1 };
                self.request(now);
            }
            Some(_) => self.lose(now),
            None => self.discover(now),
        }
    }

    /// The NIC lost its carrier. Timers keep running (the lease still ends
    /// when it ends, and a send on a dead link just fails); only a check
    /// under way is abandoned, without an event, since nothing can answer it:
    /// [`carrier_returned`](Self::carrier_returned) starts it over.
    pub fn carrier_lost(&mut self, now: Instant) {
        if matches!(self.state, State::Rebooting { .. }) {
            self.transmits.clear();
            self.resume(now);
        }
    }

    /// Back to the state the lease's times say, after a check nobody answered:
    /// `Bound` until T1; past it, `Renewing`/`Rebinding` with the next REQUEST
    /// after [`MIN_RENEW_RETRY`] (the check just went unanswered); past the
    /// end, the lease is lost.
    fn resume(&mut self, now: Instant) {
        let Some(l) = self.lease.clone() else {
            self.delay = FIRST_RETRANSMIT;
            self.discover(now);
            return;
        };
        let age = now.saturating_duration_since(l.acquired);
        if age >= l.lease {
            self.lose(now);
        } else if age >= l.t2 {
            self.state = State::Rebinding;
            self.timer = (now + MIN_RENEW_RETRY).min(l.acquired + l.lease);
        } else if age >= l.t1 {
            self.state = State::Renewing;
            self.timer = (now + MIN_RENEW_RETRY).min(l.acquired + l.t2);
        } else {
            self.state = State::Bound;
            self.timer = l.acquired + l.t1;
        }
    }

    /// Handles a received datagram.
    pub fn handle_datagram(&mut self, bytes: &[u8], now: Instant) {
        let Ok(m) = v4::Message::decode(&mut Decoder::new(bytes)) else {
            return;
        };
        if m.opcode() != v4::Opcode::BootReply
            || m.xid() != self.xid
            || m.chaddr().get(..6) != Some(&self.mac[..])
        {
            return;
        }
        let server = match m.opts().get(OptionCode::ServerIdentifier) {
            Some(DhcpOption::ServerIdentifier(s)) => *s,
            _ => return,
        };
        match (m.opts().msg_type(), self.state.clone()) {
            (Some(MessageType::Offer), State::Selecting) => {
                self.state = State::Requesting {
                    offer: m.yiaddr(),
                    server,
                    sent: 1,
                };
                self.delay = FIRST_RETRANSMIT;
                self.request(now);
            }
            (Some(MessageType::Ack), State::Requesting { offer, .. }) if m.yiaddr() == offer => {
                let lease = lease_of(&m, server, now);
                self.bind(lease, Event::Bound);
            }
            (Some(MessageType::Ack), State::Renewing | State::Rebinding) => {
                let lease = lease_of(&m, server, now);
                self.rebind(lease, Event::Renewed);
            }
            // An ACK without an address is malformed; the next REQUEST may
            // get a proper answer.
            (Some(MessageType::Ack), State::Rebooting { .. }) if !m.yiaddr().is_unspecified() => {
                let lease = lease_of(&m, server, now);
                self.rebind(lease, Event::Confirmed);
            }
            (Some(MessageType::Nak), State::Requesting { .. }) => {
                self.xid = self.xid.wrapping_add(1);
                self.delay = FIRST_RETRANSMIT;
                self.discover(now);
            }
            // On INIT-REBOOT a NAK says the address is wrong for this network
            // (RFC 2131 §4.3.2): start over on it.
            (
                Some(MessageType::Nak),
                State::Renewing | State::Rebinding | State::Rebooting { .. },
            ) => {
                self.lose(now);
            }
            _ => {}
        }
    }

    /// Holds `lease`, announced as `event` (`Bound`, `Renewed`, `Confirmed`).
    fn bind(&mut self, lease: Lease, event: fn(Lease) -> Event) {
        self.timer = lease.acquired + lease.t1;
        self.state = State::Bound;
        self.delay = FIRST_RETRANSMIT;
        self.events.push_back(event(lease.clone()));
        self.lease = Some(lease);
    }

    /// An ACK while holding a lease: the same address continues (`event`);
    /// another one replaces it, announced as `Lost` then `Bound` so the caller
    /// moves the address and the route.
    fn rebind(&mut self, lease: Lease, event: fn(Lease) -> Event) {
        let same = self
            .lease
            .as_ref()
            .is_some_and(|l| l.address == lease.address);
        if same {
            self.bind(lease, event);
        } else {
            if let Some(old) = self.lease.take() {
                self.events.push_back(Event::Lost(old));
            }
            self.bind(lease, Event::Bound);
        }
    }

    fn lose(&mut self, now: Instant) {
        if let Some(old) = self.lease.take() {
            self.events.push_back(Event::Lost(old));
        }
        self.xid = self.xid.wrapping_add(1);
        self.delay = FIRST_RETRANSMIT;
        self.discover(now);
    }

    /// Handles the timer; call at [`poll_timeout`](Self::poll_timeout).
    pub fn handle_timeout(&mut self, now: Instant) {
        if now < self.timer {
            return;
        }
        match self.state.clone() {
            State::Rebooting { sent } => {
                let valid = self
                    .lease
                    .clone()
                    .filter(|l| now.saturating_duration_since(l.acquired) < l.lease);
                if valid.is_none() || sent >= REBOOT_REQUESTS {
                    // Unanswered: the lease stays while it lasts (RFC 2131
                    // §3.2); `resume` loses it when it has ended.
                    if let Some(l) = valid {
                        self.events.push_back(Event::Unverified(l));
                    }
                    self.resume(now);
                } else {
                    self.state = State::Rebooting { sent: sent + 1 };
                    self.delay = (self.delay * 2).min(MAX_RETRANSMIT);
                    self.request(now);
                }
            }
            State::Selecting => {
                self.delay = (self.delay * 2).min(MAX_RETRANSMIT);
                self.discover(now);
            }
            State::Requesting {
                offer,
                server,
                sent,
            } => {
                if sent >= MAX_REQUESTS {
                    self.xid = self.xid.wrapping_add(1);
                    self.delay = FIRST_RETRANSMIT;
                    self.discover(now);
                } else {
                    self.state = State::Requesting {
                        offer,
                        server,
                        sent: sent + 1,
                    };
                    self.delay = (self.delay * 2).min(MAX_RETRANSMIT);
                    self.request(now);
                }
            }
            State::Bound | State::Renewing | State::Rebinding => {
                let Some(l) = self.lease.clone() else {
                    self.discover(now);
                    return;
                };
                let age = now.saturating_duration_since(l.acquired);
                self.state = if age >= l.lease {
                    self.lose(now);
                    return;
                } else if age >= l.t2 {
                    State::Rebinding
                } else {
                    State::Renewing
                };
                self.request(now);
            }
        }
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next lease event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next be called.
    pub fn poll_timeout(&self) -> Instant {
        self.timer
    }
}

fn lease_of(m: &v4::Message, server: Ipv4Addr, now: Instant) -> Lease {
    let opts = m.opts();
    let secs = |code, default: Duration| match opts.get(code) {
        Some(
            DhcpOption::AddressLeaseTime(s) | DhcpOption::Renewal(s) | DhcpOption::Rebinding(s),
        ) => Duration::from_secs(u64::from(*s)),
        _ => default,
    };
    let lease = secs(OptionCode::AddressLeaseTime, DEFAULT_LEASE);
    // RFC 2131 §4.4.5 defaults: T1 = 0.5 × lease, T2 = 0.875 × lease.
    let t2 = secs(OptionCode::Rebinding, lease * 7 / 8).min(lease);
    let t1 = secs(OptionCode::Renewal, lease / 2).min(t2);
    Lease {
        address: m.yiaddr(),
        prefix: match opts.get(OptionCode::SubnetMask) {
            Some(DhcpOption::SubnetMask(mask)) => prefix_of(*mask),
            _ => 24,
        },
        router: match opts.get(OptionCode::Router) {
            Some(DhcpOption::Router(r)) => r.first().copied(),
            _ => None,
        },
        dns: match opts.get(OptionCode::DomainNameServer) {
            Some(DhcpOption::DomainNameServer(d)) => d.clone(),
            _ => Vec::new(),
        },
        server,
        acquired: now,
        lease,
        t1,
        t2,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const MAC: [u8; 6] = [2, 0, 0, 0, 0, 7];
    const SERVER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const ADDR: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 50);

    /// A minimal server: answers DISCOVER with OFFER and REQUEST with ACK (or
    /// NAK), always for `addr`.
    struct Server {
        lease_secs: u32,
        nak: bool,
        addr: Ipv4Addr,
        seen: Vec<(MessageType, Ipv4Addr, Ipv4Addr)>,
    }

    /// A reply as a server builds it; `server_id` `None` leaves option 54 out.
    fn reply(
        xid: u32,
        kind: MessageType,
        yiaddr: Ipv4Addr,
        mac: &[u8; 6],
        server_id: Option<Ipv4Addr>,
        lease_secs: u32,
    ) -> Vec<u8> {
        let mut r = v4::Message::new_with_id(
            xid,
            Ipv4Addr::UNSPECIFIED,
            yiaddr,
            SERVER,
            Ipv4Addr::UNSPECIFIED,
            mac,
        );
        r.set_opcode(v4::Opcode::BootReply);
        let o = r.opts_mut();
        o.insert(DhcpOption::MessageType(kind));
        if let Some(id) = server_id {
            o.insert(DhcpOption::ServerIdentifier(id));
        }
        o.insert(DhcpOption::SubnetMask(Ipv4Addr::new(255, 255, 255, 0)));
        o.insert(DhcpOption::Router(vec![SERVER]));
        o.insert(DhcpOption::AddressLeaseTime(lease_secs));
        let mut b = Vec::new();
        r.encode(&mut Encoder::new(&mut b)).unwrap();
        b
    }

    impl Server {
        fn answer(&mut self, t: &Transmit) -> Option<Vec<u8>> {
            let m = v4::Message::decode(&mut Decoder::new(&t.payload)).unwrap();
            let kind = m.opts().msg_type().unwrap();
            self.seen.push((kind, t.destination, m.ciaddr()));
            let reply_kind = match kind {
                MessageType::Discover => MessageType::Offer,
                MessageType::Request if self.nak => MessageType::Nak,
                MessageType::Request => MessageType::Ack,
                _ => return None,
            };
            Some(reply(
                m.xid(),
                reply_kind,
                self.addr,
                &MAC,
                Some(SERVER),
                self.lease_secs,
            ))
        }
    }

    fn server(lease_secs: u32) -> Server {
        Server {
            lease_secs,
            nak: false,
            addr: ADDR,
            seen: Vec::new(),
        }
    }

    /// Delivers every pending datagram to the server and its answers back.
    fn exchange(c: &mut Client, s: &mut Server, now: Instant, deliver: bool) {
        while let Some(t) = c.poll_transmit() {
            let reply = s.answer(&t);
            if deliver && let Some(r) = reply {
                c.handle_datagram(&r, now);
            }
        }
    }

    #[test]
    fn discover_offer_request_ack_binds_with_the_servers_facts() {
        let t0 = Instant::now();
        let mut c = Client::new(MAC, 42, t0);
        let mut s = server(600);
        exchange(&mut c, &mut s, t0, true);
        let Some(Event::Bound(l)) = c.poll_event() else {
            panic!("not bound")
        };
        assert_eq!(l.address, ADDR);
        assert_eq!(l.prefix, 24);
        assert_eq!(l.router, Some(SERVER));
        assert_eq!(l.t1, Duration::from_secs(300));
        assert_eq!(l.t2, Duration::from_secs(525));
        assert_eq!(c.state(), &State::Bound);
        assert_eq!(c.poll_timeout(), t0 + Duration::from_secs(300));
        assert_eq!(
            s.seen.iter().map(|x| x.0).collect::<Vec<_>>(),
            [MessageType::Discover, MessageType::Request]
        );
        assert!(s.seen.iter().all(|x| x.1 == Ipv4Addr::BROADCAST));
    }

    #[test]
    fn renewal_is_unicast_at_t1_and_keeps_the_address() {
        let t0 = Instant::now();
        let mut c = Client::new(MAC, 1, t0);
        let mut s = server(600);
        exchange(&mut c, &mut s, t0, true);
        let _ = c.poll_event();
        let t1 = c.poll_timeout();
        c.handle_timeout(t1);
        assert_eq!(c.state(), &State::Renewing);
        exchange(&mut c, &mut s, t1, true);
        let last = s.seen.last().unwrap();
        assert_eq!(
            (last.0, last.1, last.2),
            (MessageType::Request, SERVER, ADDR)
        );
        assert!(matches!(c.poll_event(), Some(Event::Renewed(l)) if l.acquired == t1));
        assert_eq!(c.poll_timeout(), t1 + Duration::from_secs(300));
    }

    #[test]
    fn a_silent_server_means_rebinding_then_losing_the_lease() {
        let t0 = Instant::now();
        let mut c = Client::new(MAC, 1, t0);
        let mut s = server(1000);
        exchange(&mut c, &mut s, t0, true);
        let _ = c.poll_event();
        // From now on the server is unreachable: run the virtual clock.
        let mut now = t0;
        let mut states = Vec::new();
        while c.lease().is_some() {
            now = c.poll_timeout();
            c.handle_timeout(now);
            exchange(&mut c, &mut s, now, false);
            states.push(c.state().clone());
        }
        assert!(states.contains(&State::Renewing));
        assert!(states.contains(&State::Rebinding));
        assert_eq!(
            now,
            t0 + Duration::from_secs(1000),
            "lost before the lease ended"
        );
        assert!(matches!(c.poll_event(), Some(Event::Lost(l)) if l.address == ADDR));
        assert_eq!(c.state(), &State::Selecting);
        // Rebinding REQUESTs were broadcast, renewing ones unicast.
        assert!(
            s.seen
                .iter()
                .any(|x| x.0 == MessageType::Request && x.1 == SERVER)
        );
        assert!(
            s.seen
                .iter()
                .any(|x| x.0 == MessageType::Request && x.1 == Ipv4Addr::BROADCAST && x.2 == ADDR)
        );
    }

    #[test]
    fn discover_retransmits_back_off_and_foreign_replies_are_ignored() {
        let t0 = Instant::now();
        let mut c = Client::new(MAC, 9, t0);
        let _ = c.poll_transmit();
        let mut gaps = Vec::new();
        let mut now = t0;
        for _ in 0..8 {
            let next = c.poll_timeout();
            gaps.push(next - now);
            now = next;
            c.handle_timeout(now);
            assert!(c.poll_transmit().is_some());
        }
        assert_eq!(gaps[0], FIRST_RETRANSMIT);
        assert_eq!(gaps[1], FIRST_RETRANSMIT * 2);
        assert_eq!(*gaps.last().unwrap(), MAX_RETRANSMIT);
        // An OFFER for another transaction changes nothing.
        let mut s = server(60);
        let mut other = Client::new(MAC, 1234, now);
        let t = other.poll_transmit().unwrap();
        let offer = s.answer(&t).unwrap();
        c.handle_datagram(&offer, now);
        c.handle_datagram(b"garbage", now);
        assert_eq!(c.state(), &State::Selecting);
    }

    #[test]
    fn a_nak_starts_over() {
        let t0 = Instant::now();
        let mut c = Client::new(MAC, 5, t0);
        let mut s = server(60);
        s.nak = true;
        // DISCOVER → OFFER → REQUEST → NAK, then a fresh DISCOVER is pending.
        for _ in 0..2 {
            let t = c.poll_transmit().unwrap();
            let r = s.answer(&t).unwrap();
            c.handle_datagram(&r, t0);
        }
        assert_eq!(c.state(), &State::Selecting);
        assert!(c.poll_transmit().is_some());
        assert!(c.poll_event().is_none());
    }

    const OTHER: Ipv4Addr = Ipv4Addr::new(192, 168, 5, 77);

    /// A client holding a `lease_secs` lease on ADDR, acquired at the returned
    /// time, with its events drained.
    fn bound(lease_secs: u32) -> (Client, Server, Instant) {
        let t0 = Instant::now();
        let mut c = Client::new(MAC, 77, t0);
        let mut s = server(lease_secs);
        exchange(&mut c, &mut s, t0, true);
        assert!(matches!(c.poll_event(), Some(Event::Bound(_))));
        assert!(c.poll_event().is_none());
        (c, s, t0)
    }

    fn events(c: &mut Client) -> Vec<Event> {
        std::iter::from_fn(|| c.poll_event()).collect()
    }

    fn decode(t: &Transmit) -> v4::Message {
        v4::Message::decode(&mut Decoder::new(&t.payload)).unwrap()
    }

    #[test]
    fn the_check_request_is_broadcast_with_option_50_and_no_ciaddr_or_server_id() {
        let (mut c, _, t0) = bound(3600);
        let now = t0 + Duration::from_secs(100);
        c.carrier_returned(now);
        assert_eq!(c.state(), &State::Rebooting { sent: 1 });
        let t = c.poll_transmit().unwrap();
        assert!(c.poll_transmit().is_none());
        assert_eq!(t.destination, Ipv4Addr::BROADCAST);
        let m = decode(&t);
        assert_eq!(m.opts().msg_type(), Some(MessageType::Request));
        assert_eq!(m.ciaddr(), Ipv4Addr::UNSPECIFIED);
        assert!(
            m.flags().broadcast(),
            "replies must reach a socket that may not own the address"
        );
        assert_eq!(
            m.opts().get(OptionCode::RequestedIpAddress),
            Some(&DhcpOption::RequestedIpAddress(ADDR))
        );
        assert!(m.opts().get(OptionCode::ServerIdentifier).is_none());
        assert_eq!(m.chaddr().get(..6), Some(&MAC[..]));
        // A fresh transaction, not the one that got the lease.
        assert_ne!(m.xid(), 77);
        assert_eq!(c.poll_timeout(), now + FIRST_RETRANSMIT);
    }

    #[test]
    fn an_ack_after_carrier_return_confirms_the_address_with_the_new_times() {
        let (mut c, mut s, t0) = bound(3600);
        let now = t0 + Duration::from_secs(100);
        c.carrier_returned(now);
        exchange(&mut c, &mut s, now, true);
        let ev = events(&mut c);
        let [Event::Confirmed(l)] = ev.as_slice() else {
            panic!("{ev:?}")
        };
        assert_eq!(l.address, ADDR);
        assert_eq!(l.acquired, now);
        assert_eq!(c.state(), &State::Bound);
        assert_eq!(c.lease().map(|l| l.address), Some(ADDR));
        assert_eq!(c.poll_timeout(), now + Duration::from_secs(1800));
        assert_eq!(s.seen.last().unwrap().0, MessageType::Request);
    }

    #[test]
    fn a_nak_after_carrier_return_loses_the_lease_and_discovers_on_the_new_network() {
        let (mut c, mut s, t0) = bound(3600);
        let now = t0 + Duration::from_secs(100);
        s.nak = true;
        c.carrier_returned(now);
        let t = c.poll_transmit().unwrap();
        let nak = s.answer(&t).unwrap();
        c.handle_datagram(&nak, now);
        let ev = events(&mut c);
        assert!(
            matches!(ev.as_slice(), [Event::Lost(l)] if l.address == ADDR),
            "{ev:?}"
        );
        assert_eq!(c.state(), &State::Selecting);
        assert!(c.lease().is_none());
        let t = c.poll_transmit().unwrap();
        assert_eq!(decode(&t).opts().msg_type(), Some(MessageType::Discover));
        // The new network's server leases another address.
        s.nak = false;
        s.addr = OTHER;
        s.answer(&t)
            .map(|offer| c.handle_datagram(&offer, now))
            .unwrap();
        exchange(&mut c, &mut s, now, true);
        let ev = events(&mut c);
        assert!(
            matches!(ev.as_slice(), [Event::Bound(l)] if l.address == OTHER),
            "{ev:?}"
        );
    }

    #[test]
    fn an_ack_for_another_address_after_carrier_return_is_lost_then_bound() {
        let (mut c, mut s, t0) = bound(3600);
        let now = t0 + Duration::from_secs(100);
        s.addr = OTHER;
        c.carrier_returned(now);
        exchange(&mut c, &mut s, now, true);
        let ev = events(&mut c);
        assert!(
            matches!(ev.as_slice(),
                [Event::Lost(old), Event::Bound(new)] if old.address == ADDR && new.address == OTHER),
            "{ev:?}"
        );
        assert_eq!(c.state(), &State::Bound);
        assert_eq!(c.lease().map(|l| l.address), Some(OTHER));
    }

    /// Runs the check with nobody answering; returns the REQUESTs sent and when
    /// the client left `Rebooting`.
    fn unanswered_check(c: &mut Client, from: Instant) -> (Vec<Transmit>, Instant) {
        c.carrier_returned(from);
        let mut sent: Vec<Transmit> = std::iter::from_fn(|| c.poll_transmit()).collect();
        let mut now = from;
        while matches!(c.state(), State::Rebooting { .. }) {
            now = c.poll_timeout();
            c.handle_timeout(now);
            sent.extend(std::iter::from_fn(|| c.poll_transmit()));
        }
        (sent, now)
    }

    #[test]
    fn silence_after_carrier_return_keeps_the_lease_in_the_state_its_times_say() {
        // Lease 1000 s: T1 at 500 s, T2 at 875 s.
        for (at, want) in [
            (100, State::Bound),
            (600, State::Renewing),
            (900, State::Rebinding),
        ] {
            let (mut c, _, t0) = bound(1000);
            let from = t0 + Duration::from_secs(at);
            let (sent, end) = unanswered_check(&mut c, from);
            assert_eq!(sent.len(), REBOOT_REQUESTS as usize, "at {at} s");
            for t in &sent {
                let m = decode(t);
                assert_eq!(t.destination, Ipv4Addr::BROADCAST);
                assert_eq!(
                    m.opts().get(OptionCode::RequestedIpAddress),
                    Some(&DhcpOption::RequestedIpAddress(ADDR))
                );
            }
            // 1, 2, 4, 8, 16, 32 s on the virtual clock, then done.
            assert_eq!(end - from, Duration::from_secs(63), "at {at} s");
            assert_eq!(c.state(), &want, "at {at} s");
            let ev = events(&mut c);
            assert!(
                matches!(ev.as_slice(), [Event::Unverified(l)] if l.address == ADDR && l.acquired == t0),
                "at {at} s: {ev:?}"
            );
            assert_eq!(c.lease().map(|l| l.acquired), Some(t0));
            let next = match want {
                State::Bound => t0 + Duration::from_secs(500),
                // Past T1 the check just went unanswered: the next REQUEST waits
                // the shortest renewal retry, or the lease ends first.
                _ => (end + MIN_RENEW_RETRY).min(t0 + Duration::from_secs(1000)),
            };
            assert_eq!(c.poll_timeout(), next, "at {at} s");
        }
    }

    #[test]
    fn a_lease_that_ends_during_the_check_or_before_it_is_lost() {
        let (mut c, _, t0) = bound(1000);
        let (_, end) = unanswered_check(&mut c, t0 + Duration::from_secs(998));
        assert!(end >= t0 + Duration::from_secs(1000));
        let ev = events(&mut c);
        assert!(
            matches!(ev.as_slice(), [Event::Lost(l)] if l.address == ADDR),
            "{ev:?}"
        );
        assert_eq!(c.state(), &State::Selecting);

        let (mut c, _, t0) = bound(1000);
        c.carrier_returned(t0 + Duration::from_secs(1001));
        assert!(matches!(events(&mut c).as_slice(), [Event::Lost(_)]));
        assert_eq!(c.state(), &State::Selecting);
        let t = c.poll_transmit().unwrap();
        assert_eq!(decode(&t).opts().msg_type(), Some(MessageType::Discover));
    }

    #[test]
    fn carrier_return_before_a_lease_restarts_discover_at_once() {
        // Selecting, with the backoff grown long on a dead link.
        let t0 = Instant::now();
        let mut c = Client::new(MAC, 3, t0);
        let mut now = t0;
        for _ in 0..6 {
            now = c.poll_timeout();
            c.handle_timeout(now);
        }
        while c.poll_transmit().is_some() {}
        assert_eq!(c.poll_timeout() - now, MAX_RETRANSMIT);
        let back = now + Duration::from_secs(3);
        c.carrier_returned(back);
        let t = c.poll_transmit().unwrap();
        assert_eq!(decode(&t).opts().msg_type(), Some(MessageType::Discover));
        assert_eq!(c.state(), &State::Selecting);
        assert_eq!(c.poll_timeout(), back + FIRST_RETRANSMIT);

        // Requesting: the offer came from the old link; start over.
        let mut c = Client::new(MAC, 4, t0);
        let mut s = server(600);
        let t = c.poll_transmit().unwrap();
        c.handle_datagram(&s.answer(&t).unwrap(), t0);
        assert!(matches!(c.state(), State::Requesting { .. }));
        while c.poll_transmit().is_some() {}
        c.carrier_returned(t0);
        assert_eq!(c.state(), &State::Selecting);
        let t = c.poll_transmit().unwrap();
        assert_eq!(decode(&t).opts().msg_type(), Some(MessageType::Discover));
        assert!(c.poll_event().is_none());
    }

    #[test]
    fn foreign_or_malformed_replies_during_the_check_change_nothing() {
        let (mut c, _, t0) = bound(3600);
        let now = t0 + Duration::from_secs(10);
        c.carrier_returned(now);
        let xid = decode(&c.poll_transmit().unwrap()).xid();
        let ack =
            |xid, yiaddr, mac: &[u8; 6], id| reply(xid, MessageType::Ack, yiaddr, mac, id, 60);
        let foreign = [
            b"garbage".to_vec(),
            Vec::new(),
            // The transaction that got the lease, not this one.
            ack(77, OTHER, &MAC, Some(SERVER)),
            // Another client's.
            ack(xid, OTHER, &[2, 0, 0, 0, 0, 8], Some(SERVER)),
            // No server identifier.
            ack(xid, OTHER, &MAC, None),
            // No address.
            ack(xid, Ipv4Addr::UNSPECIFIED, &MAC, Some(SERVER)),
            // Not an answer to a REQUEST.
            reply(xid, MessageType::Offer, OTHER, &MAC, Some(SERVER), 60),
        ];
        for f in &foreign {
            c.handle_datagram(f, now);
        }
        // A request from another client, seen on the wire, is not a reply.
        let mut other = Client::new([2, 0, 0, 0, 0, 9], xid, now);
        c.handle_datagram(&other.poll_transmit().unwrap().payload, now);
        assert_eq!(c.state(), &State::Rebooting { sent: 1 });
        assert!(c.poll_event().is_none());
        assert_eq!(c.lease().map(|l| l.address), Some(ADDR));
        // The real answer still counts.
        c.handle_datagram(&ack(xid, ADDR, &MAC, Some(SERVER)), now);
        assert!(matches!(events(&mut c).as_slice(), [Event::Confirmed(l)] if l.address == ADDR));
    }

    #[test]
    fn carrier_loss_during_the_check_abandons_it_quietly_and_its_return_starts_it_over() {
        let (mut c, mut s, t0) = bound(3600);
        let now = t0 + Duration::from_secs(10);
        c.carrier_returned(now);
        c.carrier_lost(now + Duration::from_millis(500));
        assert_eq!(c.state(), &State::Bound);
        assert!(c.poll_transmit().is_none());
        assert!(c.poll_event().is_none());
        assert_eq!(c.poll_timeout(), t0 + Duration::from_secs(1800));
        // Carrier loss while merely bound changes nothing.
        c.carrier_lost(now);
        assert_eq!(c.state(), &State::Bound);
        let back = now + Duration::from_secs(5);
        c.carrier_returned(back);
        exchange(&mut c, &mut s, back, true);
        assert!(matches!(events(&mut c).as_slice(), [Event::Confirmed(l)] if l.acquired == back));
    }
}
