#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use dhcproto::v4::{Architecture, UnknownOption};
use proptest::prelude::*;

use super::*;

const US: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 1);
const MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];

fn table() -> BootTable {
    BootTable {
        bios: "undionly.kpxe".into(),
        uefi: "ipxe.efi".into(),
        http_base: "http://10.9.0.1:8080".into(),
        user_class: "nodus".into(),
    }
}

fn addressing() -> Addressing {
    Addressing {
        pool: Pool {
            first: Ipv4Addr::new(10, 9, 0, 100),
            last: Ipv4Addr::new(10, 9, 0, 101),
            reservations: BTreeMap::from([(
                "52-54-00-00-00-99".to_owned(),
                Ipv4Addr::new(10, 9, 0, 50),
            )]),
        },
        netmask: Ipv4Addr::new(255, 255, 255, 0),
        router: Some(US),
        dns: vec![US],
        lease_secs: 3600,
    }
}

fn proxy() -> Server {
    Server::new(US, Mode::Proxy, table(), Leases::default())
}

fn full() -> Server {
    Server::new(US, Mode::Dhcp(addressing()), table(), Leases::default())
}

fn from() -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, CLIENT_PORT)
}

fn request(kind: MessageType, mac: &[u8]) -> v4::Message {
    let mut m = v4::Message::new_with_id(
        0x1234_5678,
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::UNSPECIFIED,
        mac,
    );
    m.set_flags(v4::Flags::default().set_broadcast());
    m.opts_mut().insert(DhcpOption::MessageType(kind));
    m
}

fn guid() -> Vec<u8> {
    let mut g = vec![0u8];
    g.extend(1..=16u8);
    g
}

/// What a BIOS PXE ROM sends (class string with its architecture, option 93 = 0).
fn bios_pxe(kind: MessageType) -> v4::Message {
    let mut m = request(kind, &MAC);
    let o = m.opts_mut();
    o.insert(DhcpOption::ClassIdentifier(
        b"PXEClient:Arch:00000:UNDI:002001".to_vec(),
    ));
    o.insert(DhcpOption::ClientSystemArchitecture(
        Architecture::Intelx86PC,
    ));
    o.insert(DhcpOption::ClientNetworkInterface(1, 2, 1));
    o.insert(DhcpOption::ClientMachineIdentifier(guid()));
    m
}

fn uefi_pxe(arch: u16) -> v4::Message {
    let mut m = request(MessageType::Discover, &MAC);
    let o = m.opts_mut();
    o.insert(DhcpOption::ClassIdentifier(
        format!("PXEClient:Arch:{arch:05}:UNDI:003016").into_bytes(),
    ));
    o.insert(DhcpOption::ClientSystemArchitecture(arch.into()));
    o.insert(DhcpOption::ClientMachineIdentifier(guid()));
    m
}

fn ipxe() -> v4::Message {
    let mut m = request(MessageType::Discover, &MAC);
    let o = m.opts_mut();
    o.insert(DhcpOption::ClassIdentifier(
        b"PXEClient:Arch:00000:UNDI:002001".to_vec(),
    ));
    o.insert(DhcpOption::ClientSystemArchitecture(
        Architecture::Intelx86PC,
    ));
    o.insert(DhcpOption::UserClass(b"iPXE".to_vec()));
    m
}

fn http_client() -> v4::Message {
    let mut m = request(MessageType::Discover, &MAC);
    let o = m.opts_mut();
    o.insert(DhcpOption::ClassIdentifier(
        b"HTTPClient:Arch:00016:UNDI:003001".to_vec(),
    ));
    o.insert(DhcpOption::ClientSystemArchitecture(
        ARCH_EFI_X64_HTTP_ARCH.into(),
    ));
    m
}

const ARCH_EFI_X64_HTTP_ARCH: u16 = boot::ARCH_EFI_X64_HTTP;

fn run(s: &mut Server, m: &v4::Message, port: Port, now: u64) -> Outcome {
    s.handle(&m.to_vec().unwrap(), port, from(), now)
}

fn reply_of(o: &Outcome) -> v4::Message {
    v4::Message::from_bytes(&o.reply.as_ref().expect("a reply").packet).unwrap()
}

fn opt_bytes(m: &v4::Message, code: OptionCode) -> Option<Vec<u8>> {
    match m.opts().get(code)? {
        DhcpOption::ClassIdentifier(b)
        | DhcpOption::BootfileName(b)
        | DhcpOption::VendorExtensions(b)
        | DhcpOption::ClientMachineIdentifier(b) => Some(b.clone()),
        _ => None,
    }
}

#[test]
fn bios_pxe_gets_undionly_from_the_proxy() {
    let o = run(
        &mut proxy(),
        &bios_pxe(MessageType::Discover),
        Port::Dhcp,
        7,
    );
    let r = reply_of(&o);
    assert_eq!(r.opts().msg_type(), Some(MessageType::Offer));
    assert_eq!(r.opcode(), Opcode::BootReply);
    assert_eq!(r.xid(), 0x1234_5678);
    assert_eq!(
        r.yiaddr(),
        Ipv4Addr::UNSPECIFIED,
        "a proxy never gives addresses"
    );
    assert_eq!(r.siaddr(), US);
    assert_eq!(
        r.fname_str().unwrap().unwrap().trim_end_matches('\0'),
        "undionly.kpxe"
    );
    assert_eq!(r.chaddr()[..6], MAC);
    assert_eq!(
        opt_bytes(&r, OptionCode::ClassIdentifier).unwrap(),
        b"PXEClient"
    );
    assert_eq!(
        opt_bytes(&r, OptionCode::VendorExtensions).unwrap(),
        [6, 1, 8, 255]
    );
    assert_eq!(
        opt_bytes(&r, OptionCode::ClientMachineIdentifier).unwrap(),
        guid()
    );
    assert_eq!(o.reply.as_ref().unwrap().to, Destination::Broadcast);
    let ev = o.event.unwrap();
    assert_eq!(ev.mac.as_deref(), Some("52-54-00-12-34-56"));
    assert_eq!(ev.arch, Some(0));
    assert_eq!(ev.answered, "undionly.kpxe");
    assert_eq!(
        ev.uuid.as_deref(),
        Some("04030201-0605-0807-090a-0b0c0d0e0f10")
    );
}

#[test]
fn uefi_pxe_gets_ipxe_efi_for_both_x64_codes() {
    for arch in [boot::ARCH_EFI_BC, boot::ARCH_EFI_X64] {
        let o = run(&mut proxy(), &uefi_pxe(arch), Port::Dhcp, 7);
        let r = reply_of(&o);
        assert_eq!(
            r.fname_str().unwrap().unwrap().trim_end_matches('\0'),
            "ipxe.efi",
            "arch {arch}"
        );
        assert_eq!(o.event.unwrap().arch, Some(arch));
    }
}

#[test]
fn snponly_is_configurable() {
    let mut t = table();
    t.uefi = "snponly.efi".into();
    let mut s = Server::new(US, Mode::Proxy, t, Leases::default());
    let r = reply_of(&run(&mut s, &uefi_pxe(boot::ARCH_EFI_X64), Port::Dhcp, 7));
    assert_eq!(
        r.fname_str().unwrap().unwrap().trim_end_matches('\0'),
        "snponly.efi"
    );
}

#[test]
fn ipxe_gets_its_script_not_another_ipxe() {
    let r = reply_of(&run(&mut proxy(), &ipxe(), Port::Dhcp, 7));
    assert_eq!(
        r.fname_str().unwrap().unwrap().trim_end_matches('\0'),
        "http://10.9.0.1:8080/boot/52-54-00-12-34-56.ipxe"
    );
    // Option 175 alone (iPXE without user class) also breaks the loop.
    let mut m = bios_pxe(MessageType::Discover);
    m.opts_mut().insert(DhcpOption::Unknown(UnknownOption::new(
        OptionCode::Unknown(175),
        vec![0xb1, 0x01, 0x01],
    )));
    let r = reply_of(&run(&mut proxy(), &m, Port::Dhcp, 7));
    assert!(
        r.fname_str()
            .unwrap()
            .unwrap()
            .trim_end_matches('\0')
            .ends_with(".ipxe")
    );
    // Our own user class, in RFC 3004 length-prefixed form.
    let mut m = bios_pxe(MessageType::Discover);
    m.opts_mut()
        .insert(DhcpOption::UserClass(b"\x05nodus".to_vec()));
    let r = reply_of(&run(&mut proxy(), &m, Port::Dhcp, 7));
    assert!(
        r.fname_str()
            .unwrap()
            .unwrap()
            .trim_end_matches('\0')
            .ends_with(".ipxe")
    );
}

#[test]
fn uefi_http_boot_gets_a_url_and_http_class() {
    let r = reply_of(&run(&mut proxy(), &http_client(), Port::Dhcp, 7));
    assert_eq!(
        r.fname_str().unwrap().unwrap().trim_end_matches('\0'),
        "http://10.9.0.1:8080/ipxe/ipxe.efi"
    );
    assert_eq!(
        opt_bytes(&r, OptionCode::ClassIdentifier).unwrap(),
        b"HTTPClient"
    );
    assert_eq!(opt_bytes(&r, OptionCode::VendorExtensions), None);
}

#[test]
fn unknown_architecture_is_refused_and_logged() {
    let o = run(&mut proxy(), &uefi_pxe(11), Port::Dhcp, 7); // ARM64 UEFI
    assert!(o.reply.is_none());
    let ev = o.event.unwrap();
    assert_eq!(ev.arch, Some(11));
    assert!(ev.answered.starts_with("refused"), "{}", ev.answered);
    // A PXE class without any architecture is refused too.
    let mut m = request(MessageType::Discover, &MAC);
    m.opts_mut()
        .insert(DhcpOption::ClassIdentifier(b"PXEClient".to_vec()));
    let o = run(&mut proxy(), &m, Port::Dhcp, 7);
    assert!(o.reply.is_none());
    assert!(o.event.unwrap().answered.contains("no architecture"));
}

#[test]
fn proxy_ignores_ordinary_clients_and_requests_for_the_router() {
    let o = run(
        &mut proxy(),
        &request(MessageType::Discover, &MAC),
        Port::Dhcp,
        7,
    );
    assert_eq!(o, Outcome::default());
    let mut m = bios_pxe(MessageType::Request);
    m.opts_mut()
        .insert(DhcpOption::ServerIdentifier(Ipv4Addr::new(10, 9, 0, 254)));
    assert!(run(&mut proxy(), &m, Port::Dhcp, 7).reply.is_none());
}

/// busybox udhcpc sent as `PXEClient` beside dnsmasq took the proxy's offer,
/// REQUESTed 0.0.0.0 from it, was ACKed and bound to no address.
#[test]
fn proxy_naks_a_client_that_selects_its_addressless_offer() {
    let mut m = bios_pxe(MessageType::Request);
    m.opts_mut().insert(DhcpOption::ServerIdentifier(US));
    m.opts_mut()
        .insert(DhcpOption::RequestedIpAddress(Ipv4Addr::UNSPECIFIED));
    let o = run(&mut proxy(), &m, Port::Dhcp, 7);
    let reply = o.reply.as_ref().expect("a NAK");
    assert_eq!(reply.kind, MessageType::Nak);
    assert_eq!(reply.to, Destination::Broadcast);
    assert_eq!(reply_of(&o).yiaddr(), Ipv4Addr::UNSPECIFIED);
    // With its address, the same client asking us on port 67 gets boot info.
    m.set_ciaddr(Ipv4Addr::new(10, 9, 0, 77));
    m.opts_mut().remove(OptionCode::RequestedIpAddress);
    let o = run(&mut proxy(), &m, Port::Dhcp, 7);
    assert_eq!(o.reply.as_ref().map(|r| r.kind), Some(MessageType::Ack));
    assert_eq!(
        opt_bytes(&reply_of(&o), OptionCode::BootfileName).unwrap(),
        b"undionly.kpxe"
    );
}

/// `msg` encoded, with a raw option (`code`, `data`) added before End.
fn with_raw_option(msg: &v4::Message, code: u8, data: &[u8]) -> Vec<u8> {
    let mut b = msg.to_vec().unwrap();
    assert_eq!(b.pop(), Some(255), "dhcproto ends options with End");
    b.push(code);
    b.push(data.len() as u8);
    b.extend_from_slice(data);
    b.push(255);
    b
}

/// The fuzz target `dhcp_server` found that option 81 (client FQDN) shorter than
/// its three fixed bytes panics dhcproto's decoder (`debug_assert!(len >= 3)`,
/// and `len - 3` wrapping in release builds).
#[test]
fn client_fqdn_shorter_than_its_flags_is_dropped_before_dhcproto() {
    let good = bios_pxe(MessageType::Discover);
    for (code, data) in [
        (81u8, &[1u8][..]),
        (81, &[]),
        (94, &[1, 2]),
        (80, &[1]),
        (151, &[]),
        (152, &[1, 2, 3]),
    ] {
        let bytes = with_raw_option(&good, code, data);
        assert!(!options_decodable(&bytes[240..]), "option {code} {data:?}");
        assert!(decode(&bytes).is_none(), "option {code} {data:?}");
        assert_eq!(run_raw(&mut proxy(), &bytes), Outcome::default());
    }
    // RFC 3396: two instances of option 81 together are long enough.
    let mut bytes = with_raw_option(&good, 81, &[1]);
    bytes.pop();
    bytes.extend_from_slice(&[81, 2, 0, 0, 255]);
    assert!(options_decodable(&bytes[240..]));
    // Well-formed ones pass, and the client is still answered.
    let bytes = with_raw_option(&good, 81, &[1, 0, 0, 4, b'n', b'o', b'd', b'e', 0]);
    assert!(options_decodable(&bytes[240..]));
    assert!(run_raw(&mut proxy(), &bytes).reply.is_some());
}

fn run_raw(s: &mut Server, bytes: &[u8]) -> Outcome {
    s.handle(bytes, Port::Dhcp, from(), 7)
}

#[test]
fn binl_request_on_4011_is_acked_to_the_sender() {
    let mut m = uefi_pxe(boot::ARCH_EFI_X64);
    m.opts_mut()
        .insert(DhcpOption::MessageType(MessageType::Request));
    m.set_ciaddr(Ipv4Addr::new(10, 9, 0, 77));
    let sender = SocketAddrV4::new(Ipv4Addr::new(10, 9, 0, 77), 4011);
    let o = proxy().handle(&m.to_vec().unwrap(), Port::Binl, sender, 7);
    let reply = o.reply.as_ref().unwrap();
    assert_eq!(reply.to, Destination::Unicast(sender));
    assert_eq!(reply.kind, MessageType::Ack);
    assert_eq!(
        reply_of(&o)
            .fname_str()
            .unwrap()
            .unwrap()
            .trim_end_matches('\0'),
        "ipxe.efi"
    );
    assert_eq!(o.event.unwrap().service, "binl");
}

#[test]
fn full_server_offers_acks_and_persists() {
    let mut s = full();
    let o = run(&mut s, &bios_pxe(MessageType::Discover), Port::Dhcp, 1000);
    let offer = reply_of(&o);
    assert_eq!(offer.opts().msg_type(), Some(MessageType::Offer));
    assert_eq!(offer.yiaddr(), Ipv4Addr::new(10, 9, 0, 100));
    assert_eq!(
        offer.fname_str().unwrap().unwrap().trim_end_matches('\0'),
        "undionly.kpxe"
    );
    assert!(matches!(
        offer.opts().get(OptionCode::AddressLeaseTime),
        Some(DhcpOption::AddressLeaseTime(3600))
    ));
    assert!(!o.leases_changed, "offer holds are not persisted");
    let mut req = bios_pxe(MessageType::Request);
    req.opts_mut()
        .insert(DhcpOption::RequestedIpAddress(offer.yiaddr()));
    req.opts_mut().insert(DhcpOption::ServerIdentifier(US));
    let o = run(&mut s, &req, Port::Dhcp, 1001);
    assert!(o.leases_changed);
    let ack = reply_of(&o);
    assert_eq!(ack.opts().msg_type(), Some(MessageType::Ack));
    assert_eq!(ack.yiaddr(), offer.yiaddr());
    let lease = s.leases().by_mac("52-54-00-12-34-56", 1001).unwrap();
    assert_eq!(lease.state, LeaseState::Bound);
    assert_eq!(lease.expires, 1001 + 3600);
    // A second client gets the next address; a third finds the pool empty.
    let o = run(
        &mut s,
        &request(MessageType::Discover, &[2; 6]),
        Port::Dhcp,
        1002,
    );
    assert_eq!(reply_of(&o).yiaddr(), Ipv4Addr::new(10, 9, 0, 101));
    assert!(
        reply_of(&o).fname().is_none(),
        "plain clients get no boot file"
    );
    let o = run(
        &mut s,
        &request(MessageType::Discover, &[3; 6]),
        Port::Dhcp,
        1003,
    );
    assert!(o.reply.is_none());
    // After the offer hold runs out, the third client gets the unclaimed address.
    let o = run(
        &mut s,
        &request(MessageType::Discover, &[3; 6]),
        Port::Dhcp,
        1100,
    );
    assert_eq!(reply_of(&o).yiaddr(), Ipv4Addr::new(10, 9, 0, 101));
}

#[test]
fn reservation_wins_and_wrong_requests_are_nakked() {
    let mut s = full();
    let mac = [0x52, 0x54, 0, 0, 0, 0x99];
    let o = run(
        &mut s,
        &request(MessageType::Discover, &mac),
        Port::Dhcp,
        10,
    );
    assert_eq!(reply_of(&o).yiaddr(), Ipv4Addr::new(10, 9, 0, 50));
    let mut req = request(MessageType::Request, &mac);
    req.opts_mut()
        .insert(DhcpOption::RequestedIpAddress(Ipv4Addr::new(10, 9, 0, 100)));
    req.opts_mut().insert(DhcpOption::ServerIdentifier(US));
    let o = run(&mut s, &req, Port::Dhcp, 11);
    assert_eq!(o.reply.unwrap().kind, MessageType::Nak);
}

#[test]
fn a_client_verifying_a_lease_from_another_network_is_nakked() {
    let mut s = full();
    // INIT-REBOOT (option 50, no ciaddr, no server id) for an address of
    // another subnet: a node moved here. NAK, saying why.
    let mut moved = request(MessageType::Request, &MAC);
    moved
        .opts_mut()
        .insert(DhcpOption::RequestedIpAddress(Ipv4Addr::new(10, 77, 0, 5)));
    let o = run(&mut s, &moved, Port::Dhcp, 10);
    let nak = reply_of(&o);
    assert_eq!(nak.opts().msg_type(), Some(MessageType::Nak));
    assert_eq!(nak.yiaddr(), Ipv4Addr::UNSPECIFIED);
    assert!(matches!(
        nak.opts().get(OptionCode::Message),
        Some(DhcpOption::Message(m)) if m == "10.77.0.5 is not on this network"
    ));
    assert!(!o.leases_changed);

    // On our subnet but outside the pool (another server's, or static): not
    // ours to judge, silence (§4.3.2).
    let mut ours = request(MessageType::Request, &MAC);
    ours.opts_mut()
        .insert(DhcpOption::RequestedIpAddress(Ipv4Addr::new(10, 9, 0, 7)));
    assert!(run(&mut s, &ours, Port::Dhcp, 11).reply.is_none());

    // Relayed: the relay's subnet is the reference, so the same address is
    // right behind a relay on 10.77.0.0/24 (outside our pool, so silence) and
    // wrong behind one on 10.88.0.0/24.
    let mut relayed = moved.clone();
    relayed.set_giaddr(Ipv4Addr::new(10, 77, 0, 1));
    assert!(run(&mut s, &relayed, Port::Dhcp, 12).reply.is_none());
    relayed.set_giaddr(Ipv4Addr::new(10, 88, 0, 1));
    assert_eq!(
        reply_of(&run(&mut s, &relayed, Port::Dhcp, 13))
            .opts()
            .msg_type(),
        Some(MessageType::Nak)
    );

    // A renewing client (ciaddr set, unicast to us) with a foreign address is
    // not an INIT-REBOOT: silence, as before.
    let mut renewing = request(MessageType::Request, &MAC);
    renewing.set_ciaddr(Ipv4Addr::new(10, 77, 0, 5));
    assert!(run(&mut s, &renewing, Port::Dhcp, 14).reply.is_none());
}

#[test]
fn choosing_another_server_frees_our_offer() {
    let mut s = full();
    run(
        &mut s,
        &request(MessageType::Discover, &MAC),
        Port::Dhcp,
        10,
    );
    assert!(s.leases().by_mac("52-54-00-12-34-56", 10).is_some());
    let mut req = request(MessageType::Request, &MAC);
    req.opts_mut()
        .insert(DhcpOption::ServerIdentifier(Ipv4Addr::new(10, 9, 0, 2)));
    let o = run(&mut s, &req, Port::Dhcp, 11);
    assert!(o.reply.is_none());
    assert!(s.leases().by_mac("52-54-00-12-34-56", 11).is_none());
}

#[test]
fn release_and_renewal() {
    let mut s = full();
    let ip = Ipv4Addr::new(10, 9, 0, 100);
    let mut req = request(MessageType::Request, &MAC);
    req.opts_mut().insert(DhcpOption::RequestedIpAddress(ip));
    assert_eq!(
        run(&mut s, &req, Port::Dhcp, 10).reply.unwrap().kind,
        MessageType::Ack
    );
    // Renewal: ciaddr set, unicast back.
    let mut renew = request(MessageType::Request, &MAC);
    renew.set_ciaddr(ip);
    let o = run(&mut s, &renew, Port::Dhcp, 20);
    assert_eq!(
        o.reply.unwrap().to,
        Destination::Unicast(SocketAddrV4::new(ip, CLIENT_PORT))
    );
    let mut rel = request(MessageType::Release, &MAC);
    rel.set_ciaddr(ip);
    assert!(run(&mut s, &rel, Port::Dhcp, 30).leases_changed);
    assert!(s.leases().get(ip, 30).is_none());
}

#[test]
fn long_urls_go_in_option_67_only() {
    let mut t = table();
    t.http_base = format!("http://{}", "h".repeat(200));
    let mut s = Server::new(US, Mode::Proxy, t, Leases::default());
    let r = reply_of(&run(&mut s, &ipxe(), Port::Dhcp, 7));
    assert!(r.fname().is_none());
    assert!(
        opt_bytes(&r, OptionCode::BootfileName)
            .unwrap()
            .ends_with(b".ipxe")
    );
}

#[test]
fn another_servers_offer_is_reported() {
    let mut offer = request(MessageType::Offer, &MAC);
    offer.set_opcode(Opcode::BootReply);
    offer.set_yiaddr(Ipv4Addr::new(10, 9, 0, 200));
    offer
        .opts_mut()
        .insert(DhcpOption::ServerIdentifier(Ipv4Addr::new(10, 9, 0, 254)));
    let bytes = offer.to_vec().unwrap();
    let src = SocketAddrV4::new(Ipv4Addr::new(10, 9, 0, 254), SERVER_PORT);
    let rogue = full().handle(&bytes, Port::Client, src, 1).rogue.unwrap();
    assert_eq!(rogue.server_id, Some(Ipv4Addr::new(10, 9, 0, 254)));
    assert_eq!(rogue.offered, Ipv4Addr::new(10, 9, 0, 200));
    assert!(!rogue.pxe);
    // In proxy mode the router's plain offer is expected …
    assert!(proxy().handle(&bytes, Port::Client, src, 1).rogue.is_none());
    // … but another PXE server is not.
    offer
        .opts_mut()
        .insert(DhcpOption::ClassIdentifier(b"PXEClient".to_vec()));
    let bytes = offer.to_vec().unwrap();
    assert!(
        proxy()
            .handle(&bytes, Port::Client, src, 1)
            .rogue
            .unwrap()
            .pxe
    );
    // Our own offers and known servers are not reported.
    let known = full().with_known_servers(vec![Ipv4Addr::new(10, 9, 0, 254)]);
    let mut known = known;
    assert!(known.handle(&bytes, Port::Client, src, 1).rogue.is_none());
}

#[test]
fn malformed_packets_are_dropped() {
    let mut s = full();
    let good = bios_pxe(MessageType::Discover).to_vec().unwrap();
    let mut cases: Vec<Vec<u8>> = vec![vec![], vec![1], good[..239].to_vec()];
    let mut bad_hlen = good.clone();
    bad_hlen[2] = 200;
    cases.push(bad_hlen);
    let mut bad_cookie = good.clone();
    bad_cookie[236] = 0;
    cases.push(bad_cookie);
    let mut long_opt = good[..240].to_vec();
    long_opt.extend([60, 200, b'P']);
    cases.push(long_opt);
    let mut no_type = request(MessageType::Discover, &MAC);
    no_type.opts_mut().remove(OptionCode::MessageType);
    cases.push(no_type.to_vec().unwrap());
    for c in cases {
        let o = s.handle(&c, Port::Dhcp, from(), 1);
        assert!(o.reply.is_none(), "{c:?}");
    }
    // A packet cut inside an option is read up to the cut (dhcproto is lenient);
    // it must simply not panic.
    let _ = s.handle(&good[..250], Port::Dhcp, from(), 1);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let mut s = full();
        for port in [Port::Dhcp, Port::Binl, Port::Client] {
            let _ = s.handle(&bytes, port, from(), 1);
        }
    }

    #[test]
    fn mutated_real_packets_never_panic(
        flips in proptest::collection::vec((0usize..400, any::<u8>()), 1..8),
        cut in 0usize..400,
    ) {
        let mut bytes = bios_pxe(MessageType::Discover).to_vec().unwrap();
        for (i, b) in flips {
            if let Some(x) = bytes.get_mut(i) { *x = b; }
        }
        bytes.truncate(cut.max(240));
        let mut p = proxy();
        let _ = p.handle(&bytes, Port::Dhcp, from(), 1);
        let _ = full().handle(&bytes, Port::Dhcp, from(), 1);
    }
}
