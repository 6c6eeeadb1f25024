//! proxyDHCP beside a real farm router: dnsmasq hands out addresses, our server in
//! proxy mode hands PXE clients their boot file, and BINL (port 4011) answers.
//!
//! - `pxe_rom_client_*`: a client that does what a PXE ROM does (PXE spec 2.1
//!   §2.2): DISCOVER with options 60/93/97, collect the router's and the proxy's
//!   offers, REQUEST the router's address, ask the proxy on port 4011, fetch the
//!   boot file over TFTP from the proxy's `siaddr`.
//! - `udhcpc_*`: busybox udhcpc announcing itself as `PXEClient` still gets its
//!   address from the router, and is not confused by the proxy's address-less offer.
//! - `ipxe_rom_*`: an unmodified QEMU machine (SeaBIOS + the NIC's iPXE ROM) boots
//!   the trivial image with its address from dnsmasq and its script from us.
//!
//! Needs root and dnsmasq (and busybox, QEMU, … for the last two); skips, saying
//! which is missing, otherwise.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod pxe;

use std::{
    net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket},
    path::Path,
    process::{Child, Stdio},
    time::{Duration, Instant},
};

use common::{Segment, Server, have, root_or_skip, settings};
use dhcproto::{
    Decodable as _, Encodable as _,
    v4::{self, DhcpOption, MessageType, OptionCode},
};
use nodus_netboot::tftp::packet::{self, Packet};

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// dnsmasq as the farm router: DHCP only (no DNS, no PXE), range .150–.160,
/// itself as the gateway. Its log goes to `tmp/dnsmasq.log`.
fn router(seg: &Segment, host: usize, tmp: &Path) -> Killed {
    let range = format!(
        "--dhcp-range={},{},255.255.255.0,1h",
        seg.addr(150),
        seg.addr(160)
    );
    let leases = format!("--dhcp-leasefile={}", tmp.join("dnsmasq.leases").display());
    let log = format!("--log-facility={}", tmp.join("dnsmasq.log").display());
    let gateway = format!("--dhcp-option=option:router,{}", seg.ip(host));
    let child = seg
        .exec(
            host,
            &[
                "dnsmasq",
                "--no-daemon",
                "--conf-file=/dev/null",
                "--port=0",
                &range,
                &gateway,
                "--interface=eth0",
                "--bind-interfaces",
                &leases,
                &log,
                "--log-dhcp",
                "--user=root",
                "--pid-file=",
                "--no-ping",
            ],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Bounded wait until it has bound the DHCP port.
    for _ in 0..100 {
        let ss = seg.exec(host, &["ss", "-lun"]).output().unwrap();
        if String::from_utf8_lossy(&ss.stdout).contains(":67 ") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Killed(child)
}

const ROM_MAC: [u8; 6] = [0x52, 0x54, 0x00, 0xd0, 0x0d, 0x01];

/// What a UEFI x86-64 PXE ROM puts in its DHCP messages.
fn pxe_message(kind: MessageType, xid: u32) -> v4::Message {
    let mut m = v4::Message::new_with_id(
        xid,
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::UNSPECIFIED,
        &ROM_MAC,
    );
    m.set_flags(v4::Flags::default().set_broadcast());
    let o = m.opts_mut();
    o.insert(DhcpOption::MessageType(kind));
    o.insert(DhcpOption::ClassIdentifier(
        b"PXEClient:Arch:00007:UNDI:003016".to_vec(),
    ));
    o.insert(DhcpOption::ClientSystemArchitecture(v4::Architecture::BC));
    o.insert(DhcpOption::ClientNetworkInterface(1, 3, 16));
    let mut guid = vec![0u8];
    guid.extend(0x20..0x30u8);
    o.insert(DhcpOption::ClientMachineIdentifier(guid));
    o.insert(DhcpOption::ParameterRequestList(vec![
        OptionCode::SubnetMask,
        OptionCode::Router,
        OptionCode::ServerIdentifier,
        OptionCode::ClassIdentifier,
        OptionCode::BootfileName,
        OptionCode::VendorExtensions,
    ]));
    m
}

/// The client's socket: port 68 on `eth0`, broadcast allowed.
fn client_socket() -> UdpSocket {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
    s.set_reuse_address(true).unwrap();
    s.set_broadcast(true).unwrap();
    s.bind_device(Some(b"eth0")).unwrap();
    s.bind(&SocketAddr::from(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 68)).into())
        .unwrap();
    s.into()
}

/// Replies to `xid` arriving within `wait`.
fn collect(sock: &UdpSocket, xid: u32, wait: Duration) -> Vec<v4::Message> {
    let end = Instant::now() + wait;
    let mut out = Vec::new();
    let mut buf = [0u8; 1500];
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        sock.set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        let Ok(n) = sock.recv(&mut buf) else {
            break;
        };
        if let Ok(m) = v4::Message::from_bytes(&buf[..n])
            && m.xid() == xid
            && m.opcode() == v4::Opcode::BootReply
        {
            out.push(m);
        }
    }
    out
}

fn server_id(m: &v4::Message) -> Option<Ipv4Addr> {
    match m.opts().get(OptionCode::ServerIdentifier) {
        Some(DhcpOption::ServerIdentifier(s)) => Some(*s),
        _ => None,
    }
}

fn boot_file(m: &v4::Message) -> Option<String> {
    match m.opts().get(OptionCode::BootfileName) {
        Some(DhcpOption::BootfileName(f)) => Some(String::from_utf8_lossy(f).into_owned()),
        _ => None,
    }
}

/// A lock-step TFTP read with blksize 1468, as PXE ROMs do it.
fn tftp_get(server: Ipv4Addr, file: &str) -> Vec<u8> {
    let sock = UdpSocket::bind("0.0.0.0:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let rrq = packet::rrq(file, &[("blksize", "1468"), ("tsize", "0")]);
    sock.send_to(&rrq, (server, 69)).unwrap();
    let mut buf = vec![0u8; 2000];
    let mut data = Vec::new();
    let mut expect: u16 = 1;
    let mut blksize = 512;
    loop {
        let (n, from) = sock.recv_from(&mut buf).expect("TFTP server went quiet");
        match Packet::decode(&buf[..n]).unwrap() {
            Packet::Oack { options } => {
                for (k, v) in options {
                    if k == "blksize" {
                        blksize = v.parse().unwrap();
                    }
                }
                sock.send_to(&packet::ack(0), from).unwrap();
            }
            Packet::Data { block, data: d } => {
                if block == expect {
                    data.extend_from_slice(d);
                    expect = expect.wrapping_add(1);
                }
                sock.send_to(&packet::ack(block), from).unwrap();
                if block == expect.wrapping_sub(1) && d.len() < blksize {
                    return data;
                }
            }
            other => panic!("TFTP: {other:?}"),
        }
    }
}

#[test]
fn pxe_rom_client_gets_address_from_dnsmasq_and_boot_file_from_proxy_and_binl() {
    let name = "pxe_rom_client_gets_address_from_dnsmasq_and_boot_file_from_proxy_and_binl";
    if !root_or_skip(name) || !have("dnsmasq", name) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    pxe::tftp_root(tmp.path());
    let efi = std::fs::read(tmp.path().join("tftp/ipxe.efi"));
    // host 0: the router (dnsmasq), host 1: our proxy, host 2: the booting machine.
    let seg = Segment::new("x", &[true, true, false]);
    let _router = router(&seg, 0, tmp.path());
    let srv = Server::start(&seg, 1, settings(seg.ip(1), tmp.path(), "proxy", ""));
    let (router_ip, proxy_ip) = (seg.ip(0), seg.ip(1));

    let (offers, acks, binl, file) = seg
        .spawn(2, move || {
            let sock = client_socket();
            // DISCOVER; a PXE ROM waits for proxy offers beside the address offer.
            let discover = pxe_message(MessageType::Discover, 0x5e01);
            sock.send_to(&discover.to_vec().unwrap(), (Ipv4Addr::BROADCAST, 67))
                .unwrap();
            let offers = collect(&sock, 0x5e01, Duration::from_secs(3));
            let address = offers
                .iter()
                .find(|m| server_id(m) == Some(router_ip))
                .map(v4::Message::yiaddr);
            let Some(address) = address else {
                return (offers, Vec::new(), Vec::new(), Vec::new());
            };
            // REQUEST the router's address; the proxy must stay silent.
            let mut req = pxe_message(MessageType::Request, 0x5e02);
            req.opts_mut()
                .insert(DhcpOption::ServerIdentifier(router_ip));
            req.opts_mut()
                .insert(DhcpOption::RequestedIpAddress(address));
            sock.send_to(&req.to_vec().unwrap(), (Ipv4Addr::BROADCAST, 67))
                .unwrap();
            let acks = collect(&sock, 0x5e02, Duration::from_secs(2));
            // Bind the address, then ask the boot server on 4011 from port 68.
            common::sh(&["ip", "addr", "add", &format!("{address}/24"), "dev", "eth0"]);
            let mut binl_req = pxe_message(MessageType::Request, 0x5e03);
            binl_req.set_ciaddr(address);
            binl_req.set_flags(v4::Flags::default());
            sock.send_to(&binl_req.to_vec().unwrap(), (proxy_ip, 4011))
                .unwrap();
            let binl = collect(&sock, 0x5e03, Duration::from_secs(2));
            // And fetch what it named, from where it said.
            let file = binl
                .first()
                .and_then(boot_file)
                .map(|f| tftp_get(binl[0].siaddr(), &f))
                .unwrap_or_default();
            (offers, acks, binl, file)
        })
        .join()
        .unwrap();

    let from_router: Vec<_> = offers
        .iter()
        .filter(|m| server_id(m) == Some(router_ip))
        .collect();
    let from_proxy: Vec<_> = offers
        .iter()
        .filter(|m| server_id(m) == Some(proxy_ip))
        .collect();
    assert_eq!(from_router.len(), 1, "router offers: {offers:?}");
    assert_eq!(from_proxy.len(), 1, "proxy offers: {offers:?}");
    let address = from_router[0].yiaddr();
    assert!(
        address >= seg.addr(150) && address <= seg.addr(160),
        "{address}"
    );
    assert_eq!(boot_file(from_router[0]), None, "the router knows no PXE");
    let ours = from_proxy[0];
    assert_eq!(
        ours.yiaddr(),
        Ipv4Addr::UNSPECIFIED,
        "a proxy gives no address"
    );
    assert_eq!(ours.siaddr(), proxy_ip);
    assert_eq!(boot_file(ours).as_deref(), Some("ipxe.efi"));
    assert!(matches!(
        ours.opts().get(OptionCode::ClassIdentifier),
        Some(DhcpOption::ClassIdentifier(c)) if c == b"PXEClient"
    ));
    // The GUID is echoed (some UEFI firmware insists).
    assert!(
        ours.opts()
            .get(OptionCode::ClientMachineIdentifier)
            .is_some()
    );

    assert_eq!(acks.len(), 1, "one ACK, the router's: {acks:?}");
    assert_eq!(acks[0].opts().msg_type(), Some(MessageType::Ack));
    assert_eq!(server_id(&acks[0]), Some(router_ip));
    assert_eq!(acks[0].yiaddr(), address);

    assert_eq!(binl.len(), 1, "BINL answers once: {binl:?}");
    assert_eq!(binl[0].opts().msg_type(), Some(MessageType::Ack));
    assert_eq!(binl[0].yiaddr(), Ipv4Addr::UNSPECIFIED);
    assert_eq!(boot_file(&binl[0]).as_deref(), Some("ipxe.efi"));
    if let Ok(efi) = efi {
        assert!(file == efi, "TFTP delivered a different ipxe.efi");
    }

    let events = std::fs::read_to_string(tmp.path().join("state/boot-events.jsonl")).unwrap();
    for want in [
        "\"service\":\"proxy\"",
        "\"service\":\"binl\"",
        "\"service\":\"tftp\"",
        "52-54-00-d0-0d-01",
    ] {
        assert!(events.contains(want), "{want} missing from\n{events}");
    }
    // dnsmasq saw the whole exchange too, and handed out the address.
    let log = std::fs::read_to_string(tmp.path().join("dnsmasq.log")).unwrap_or_default();
    assert!(
        log.contains(&format!("DHCPACK(eth0) {address}")),
        "dnsmasq log:\n{log}"
    );
    assert!(
        !srv.log_text().contains("another DHCP server"),
        "{}",
        srv.log_text()
    );
}

#[test]
fn udhcpc_as_pxeclient_takes_the_routers_address_beside_the_proxy() {
    let name = "udhcpc_as_pxeclient_takes_the_routers_address_beside_the_proxy";
    if !root_or_skip(name) || !have("dnsmasq", name) || !have("busybox", name) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    pxe::tftp_root(tmp.path());
    let seg = Segment::new("y", &[true, true, false]);
    let _router = router(&seg, 0, tmp.path());
    let _srv = Server::start(&seg, 1, settings(seg.ip(1), tmp.path(), "proxy", ""));
    let script = tmp.path().join("udhcpc.sh");
    let env = tmp.path().join("udhcpc.env");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n[ \"$1\" = bound ] && env > {}\nexit 0\n",
            env.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let out = seg
        .exec(
            2,
            &[
                // Bounded: a NAKed udhcpc starts over until it takes the router's
                // offer, but never forever.
                "timeout",
                "60",
                "busybox",
                "udhcpc",
                "-f",
                "-q",
                "-n",
                "-i",
                "eth0",
                "-s",
                script.to_str().unwrap(),
                "-t",
                "5",
                "-T",
                "1",
                "-V",
                "PXEClient:Arch:00000:UNDI:002001",
                "-x",
                "0x5d:0000",
            ],
        )
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let env: std::collections::BTreeMap<String, String> = std::fs::read_to_string(&env)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    assert_eq!(env["serverid"], seg.ip(0).to_string(), "{env:?}");
    let ip: Ipv4Addr = env["ip"].parse().unwrap();
    assert!(ip >= seg.addr(150) && ip <= seg.addr(160), "{ip}");
    assert_eq!(env["router"], seg.ip(0).to_string());
    // The proxy did answer it (it is a PXE client), with the BIOS boot file.
    let events = std::fs::read_to_string(tmp.path().join("state/boot-events.jsonl")).unwrap();
    assert!(
        events.contains("\"service\":\"proxy\"") && events.contains("undionly.kpxe"),
        "{events}"
    );
}

#[test]
fn ipxe_rom_boots_with_address_from_dnsmasq_and_script_from_proxy() {
    let test = "ipxe_rom_boots_with_address_from_dnsmasq_and_script_from_proxy";
    let Some(kernel) = pxe::prerequisites(test, false) else {
        return;
    };
    if !have("dnsmasq", test) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    pxe::tftp_root(tmp.path());
    let image = tmp.path().join("image");
    pxe::trivial_image(&image, &kernel);
    let seg = Segment::new("z", &[true, true]);
    let _router = router(&seg, 0, tmp.path());
    let extra = format!(
        "image = \"{}\"\nkernel_args = \"console=ttyS0 panic=-1\"\n",
        image.display()
    );
    let srv = Server::start(&seg, 1, settings(seg.ip(1), tmp.path(), "proxy", &extra));
    let mac = "52:54:00:e2:e0:03";
    let mut vm = pxe::Vm::boot(&seg, tmp.path(), mac, false);
    let (line, took) = match vm.wait_for(pxe::MARKER) {
        Ok(x) => x,
        Err(why) => {
            let log = std::fs::read_to_string(tmp.path().join("dnsmasq.log")).unwrap_or_default();
            panic!(
                "{}\n--- dnsmasq ---\n{log}",
                pxe::diagnose(&vm, tmp.path(), &srv, &why)
            )
        }
    };
    eprintln!(
        "{test}: iPXE ROM via dnsmasq + proxy → /init in {:.1} s (TCG)",
        took.as_secs_f64()
    );
    let dashed = mac.replace(':', "-");
    assert!(line.contains(&format!("nodus.machine={dashed}")), "{line}");
    assert!(
        line.contains(&format!(
            "nodus.manifest=http://{}:8080/image/manifest",
            seg.ip(1)
        )),
        "{line}"
    );
    // dnsmasq gave the address, we gave the script. (iPXE takes the file name
    // from the proxy offer and does not ask port 4011; the ROM-like client above
    // covers BINL.)
    let log = std::fs::read_to_string(tmp.path().join("dnsmasq.log")).unwrap_or_default();
    assert!(
        log.contains("DHCPACK(eth0)") && log.contains(mac),
        "dnsmasq log:\n{log}"
    );
    let events = std::fs::read_to_string(tmp.path().join("state/boot-events.jsonl")).unwrap();
    for want in [
        "\"service\":\"proxy\"".to_owned(),
        format!("GET /boot/{dashed}.ipxe"),
        "GET /image/initramfs".to_owned(),
    ] {
        assert!(events.contains(&want), "{want} missing from\n{events}");
    }
}
