//! Feeds a sequence of datagrams to the sans-IO DHCP server, in full and in proxy
//! mode, on ports 67, 4011 and 68, with the clock moving between them.
//!
//! The input is a list of records. Each starts with a control byte (port, mode of
//! construction, clock step); then either raw bytes (length-prefixed) or the fields
//! of a DHCP request built from the following bytes — so the fuzzer reaches deep
//! into the PXE/iPXE/HTTP-boot logic without having to rediscover the DHCP header
//! and magic cookie — optionally with a few bytes of the encoding overwritten.
//!
//! Invariants checked: no panic; every reply decodes as a BOOTREPLY carrying the
//! request's xid, the message type it claims and our server identifier; proxy and
//! BINL replies never hand out an address; BINL replies go back to the sender;
//! nothing is sent in answer to port 68; every address offered or acknowledged, and
//! every lease held, is in the pool or reserved for that client.

#![no_main]

use std::{
    collections::BTreeMap,
    net::{Ipv4Addr, SocketAddrV4},
};

use dhcproto::{
    Decodable as _, Encodable as _,
    v4::{self, DhcpOption, MessageType, OptionCode, UnknownOption},
};
use libfuzzer_sys::fuzz_target;
use nodus_netboot::dhcp::{
    Addressing, BootTable, Destination, Leases, Mode, Pool, Port, Server, boot::mac_dashed,
};

const US: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 1);
const FIRST: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 100);
const LAST: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 103);
const RESERVED_MAC: &str = "52-54-00-00-00-99";
const RESERVED_IP: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 50);

fn server(proxy: bool) -> Server {
    let table = BootTable {
        bios: "undionly.kpxe".into(),
        uefi: "ipxe.efi".into(),
        http_base: "http://10.9.0.1:8080".into(),
        user_class: "nodus".into(),
    };
    let mode = if proxy {
        Mode::Proxy
    } else {
        Mode::Dhcp(Addressing {
            pool: Pool {
                first: FIRST,
                last: LAST,
                reservations: BTreeMap::from([(RESERVED_MAC.to_owned(), RESERVED_IP)]),
            },
            netmask: Ipv4Addr::new(255, 255, 255, 0),
            router: Some(US),
            dns: vec![US],
            lease_secs: 600,
        })
    };
    Server::new(US, mode, table, Leases::default()).with_known_servers(vec![US])
}

/// Reads fuzz bytes front to back; runs dry as zeroes.
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }
    fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }
    fn take(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.0.len());
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        a
    }
    fn ip(&mut self) -> Ipv4Addr {
        // Mostly addresses that matter here: ours, the pool's, the reservation.
        match self.u8() % 6 {
            0 => Ipv4Addr::UNSPECIFIED,
            1 => US,
            2 => Ipv4Addr::new(10, 9, 0, 100 + self.u8() % 6),
            3 => RESERVED_IP,
            _ => Ipv4Addr::from(u32::from_be_bytes([
                self.u8(),
                self.u8(),
                self.u8(),
                self.u8(),
            ])),
        }
    }
}

/// A request built from fuzz bytes: the fields a PXE ROM, iPXE or an OS sets.
fn structured(b: &mut Bytes<'_>) -> Vec<u8> {
    let mac_last = b.u8() % 4;
    let mac: Vec<u8> = if mac_last == 3 {
        vec![0x52, 0x54, 0, 0, 0, 0x99]
    } else {
        vec![0x52, 0x54, 0, 0, 0, mac_last]
    };
    let flags = b.u8();
    let mut m = v4::Message::new_with_id(
        u32::from(b.u16()),
        if flags & 1 != 0 {
            b.ip()
        } else {
            Ipv4Addr::UNSPECIFIED
        },
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::UNSPECIFIED,
        if flags & 2 != 0 {
            b.ip()
        } else {
            Ipv4Addr::UNSPECIFIED
        },
        &mac,
    );
    if flags & 4 != 0 {
        m.set_opcode(v4::Opcode::BootReply);
        m.set_yiaddr(b.ip());
    }
    let kind = MessageType::from(b.u8() % 10);
    let o = m.opts_mut();
    o.insert(DhcpOption::MessageType(kind));
    let opts = b.u16();
    if opts & 1 != 0 {
        let class: &[u8] = match b.u8() % 5 {
            0 => b"PXEClient",
            1 => b"PXEClient:Arch:00007:UNDI:003016",
            2 => b"HTTPClient:Arch:00016:UNDI:003001",
            3 => b"PXEClient:Arch:",
            _ => b"HTTPClient",
        };
        o.insert(DhcpOption::ClassIdentifier(class.to_vec()));
    }
    if opts & 2 != 0 {
        o.insert(DhcpOption::ClientSystemArchitecture(
            v4::Architecture::from(b.u16()),
        ));
    }
    if opts & 4 != 0 {
        let n = usize::from(b.u8() % 24);
        o.insert(DhcpOption::UserClass(b.take(n).to_vec()));
    }
    if opts & 8 != 0 {
        let n = usize::from(b.u8() % 8);
        o.insert(DhcpOption::Unknown(UnknownOption::new(
            OptionCode::Unknown(175),
            b.take(n).to_vec(),
        )));
    }
    if opts & 16 != 0 {
        let n = usize::from(b.u8() % 20);
        o.insert(DhcpOption::ClientMachineIdentifier(b.take(n).to_vec()));
    }
    if opts & 32 != 0 {
        o.insert(DhcpOption::RequestedIpAddress(b.ip()));
    }
    if opts & 64 != 0 {
        o.insert(DhcpOption::ServerIdentifier(b.ip()));
    }
    let mut bytes = m.to_vec().unwrap_or_default();
    // A few overwritten bytes reach the decoder's edge cases from a valid start.
    for _ in 0..(opts >> 12) {
        let at = usize::from(b.u16());
        let v = b.u8();
        let len = bytes.len().max(1);
        if let Some(x) = bytes.get_mut(at % len) {
            *x = v;
        }
    }
    if opts & 128 != 0 {
        let cut = usize::from(b.u16());
        bytes.truncate(cut);
    }
    bytes
}

fn in_pool(ip: Ipv4Addr) -> bool {
    (FIRST..=LAST).contains(&ip)
}

fuzz_target!(|data: &[u8]| {
    let mut b = Bytes(data);
    let mut servers = [server(false), server(true)];
    let mut now: u64 = 1_700_000_000;
    for _ in 0..32 {
        if b.0.is_empty() {
            break;
        }
        let ctl = b.u8();
        let port = match ctl % 3 {
            0 => Port::Dhcp,
            1 => Port::Binl,
            _ => Port::Client,
        };
        let proxy = ctl & 4 != 0;
        let bytes = if ctl & 8 != 0 {
            let n = usize::from(b.u16() % 1500);
            b.take(n).to_vec()
        } else {
            structured(&mut b)
        };
        now += u64::from(ctl >> 4) * 20;
        let from = SocketAddrV4::new(Ipv4Addr::new(10, 9, 0, 77), 4011);
        let srv = &mut servers[usize::from(proxy)];
        if ctl & 0x80 != 0 {
            srv.expire(now);
        }
        let out = srv.handle(&bytes, port, from, now);
        if let Some(reply) = out.reply {
            assert_ne!(port, Port::Client, "replied to a watched datagram");
            let req = v4::Message::from_bytes(&bytes).expect("we answered a valid request");
            let r = v4::Message::from_bytes(&reply.packet).expect("our reply decodes");
            assert_eq!(r.opcode(), v4::Opcode::BootReply);
            assert_eq!(r.xid(), req.xid());
            assert_eq!(r.opts().msg_type(), Some(reply.kind));
            assert!(matches!(
                r.opts().get(OptionCode::ServerIdentifier),
                Some(DhcpOption::ServerIdentifier(s)) if *s == US
            ));
            if proxy || port == Port::Binl {
                assert_eq!(r.yiaddr(), Ipv4Addr::UNSPECIFIED, "proxy gave an address");
            }
            if port == Port::Binl {
                assert_eq!(reply.to, Destination::Unicast(from));
            }
            if !proxy
                && port == Port::Dhcp
                && matches!(reply.kind, MessageType::Offer | MessageType::Ack)
            {
                let ip = r.yiaddr();
                let mac = mac_dashed(&req.chaddr()[..usize::from(req.hlen()).min(16)]);
                let ok = if mac == RESERVED_MAC {
                    ip == RESERVED_IP
                } else {
                    in_pool(ip)
                };
                assert!(ok || ip.is_unspecified(), "gave {ip} to {mac}");
            }
        }
        for srv in &servers {
            for l in srv.leases().iter() {
                let ok = if l.mac == RESERVED_MAC {
                    l.ip == RESERVED_IP
                } else {
                    in_pool(l.ip)
                };
                assert!(ok, "lease {l:?} outside the pool or not its reservation");
            }
        }
    }
});
