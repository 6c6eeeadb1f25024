//! A DHCPv4 client core (RFC 2131), sans-IO: datagrams and the time in,
//! datagrams, lease events and the next timeout out.
//!
//! States: `Selecting` (DISCOVER, wait for an OFFER) → `Requesting` (REQUEST the
//! offer, wait for ACK) → `Bound` until T1 → `Renewing` (unicast REQUEST to the
//! server) until T2 → `Rebinding` (broadcast REQUEST) until the lease ends →
//! back to `Selecting`. A NAK, or no ACK, also goes back to `Selecting`.
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
    /// The OFFER this REQUEST answers (its lease facts, until the ACK).
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
            State::Selecting | State::Bound => {}
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
                self.bind(lease, false);
            }
            (Some(MessageType::Ack), State::Renewing | State::Rebinding) => {
                let lease = lease_of(&m, server, now);
                let same = self
                    .lease
                    .as_ref()
                    .is_some_and(|l| l.address == lease.address);
                if !same && let Some(old) = self.lease.take() {
                    self.events.push_back(Event::Lost(old));
                }
                self.bind(lease, same);
            }
            (Some(MessageType::Nak), State::Requesting { .. }) => {
                self.xid = self.xid.wrapping_add(1);
                self.delay = FIRST_RETRANSMIT;
                self.discover(now);
            }
            (Some(MessageType::Nak), State::Renewing | State::Rebinding) => {
                self.lose(now);
            }
            _ => {}
        }
    }

    fn bind(&mut self, lease: Lease, renewed: bool) {
        self.timer = lease.acquired + lease.t1;
        self.state = State::Bound;
        self.events.push_back(if renewed {
            Event::Renewed(lease.clone())
        } else {
            Event::Bound(lease.clone())
        });
        self.lease = Some(lease);
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

    /// A minimal server: answers DISCOVER with OFFER and REQUEST with ACK (or NAK).
    struct Server {
        lease_secs: u32,
        nak: bool,
        seen: Vec<(MessageType, Ipv4Addr, Ipv4Addr)>,
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
            let mut r = v4::Message::new_with_id(
                m.xid(),
                Ipv4Addr::UNSPECIFIED,
                ADDR,
                SERVER,
                Ipv4Addr::UNSPECIFIED,
                &MAC,
            );
            r.set_opcode(v4::Opcode::BootReply);
            let o = r.opts_mut();
            o.insert(DhcpOption::MessageType(reply_kind));
            o.insert(DhcpOption::ServerIdentifier(SERVER));
            o.insert(DhcpOption::SubnetMask(Ipv4Addr::new(255, 255, 255, 0)));
            o.insert(DhcpOption::Router(vec![SERVER]));
            o.insert(DhcpOption::AddressLeaseTime(self.lease_secs));
            let mut b = Vec::new();
            r.encode(&mut Encoder::new(&mut b)).unwrap();
            Some(b)
        }
    }

    fn server(lease_secs: u32) -> Server {
        Server {
            lease_secs,
            nak: false,
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
}
