//! Real clients against our servers in network namespaces: busybox udhcpc,
//! tftp-hpa, curl and atftp, dnsmasq as the farm router for proxyDHCP and as a rogue
//! server. Needs root; skips (saying so) without it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{
    net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket},
    path::Path,
    process::{Child, Stdio},
    time::{Duration, Instant},
};

use common::{Segment, Server, have, pattern, root_or_skip, settings};
use dhcproto::{
    Decodable as _, Encodable as _,
    v4::{self, DhcpOption, MessageType, OptionCode},
};
use nodus_netboot::tftp::packet::{self, Packet};

const CLIENT_MAC: [u8; 6] = [0x52, 0x54, 0x00, 0xaa, 0xbb, 0x01];

/// A TFTP root with Debian's iPXE binaries (when installed), a 3 MB file, and a
/// secret beside it with a symlink pointing at it.
fn tftp_root(tmp: &Path) -> Vec<u8> {
    let root = tmp.join("tftp");
    std::fs::create_dir_all(&root).unwrap();
    for f in ["undionly.kpxe", "ipxe.efi", "snponly.efi"] {
        let src = Path::new("/usr/lib/ipxe").join(f);
        if src.exists() {
            std::fs::copy(&src, root.join(f)).unwrap();
        }
    }
    let big = pattern(3_000_000, 3);
    std::fs::write(root.join("big.bin"), &big).unwrap();
    std::fs::write(tmp.join("secret"), b"top secret").unwrap();
    std::os::unix::fs::symlink(tmp.join("secret"), root.join("escape")).unwrap();
    big
}

fn udhcpc_script(tmp: &Path) -> std::path::PathBuf {
    let script = tmp.join("udhcpc.sh");
    let out = tmp.join("udhcpc.env");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n[ \"$1\" = bound ] && env > {}\nexit 0\n",
            out.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    script
}

fn env_of(tmp: &Path) -> std::collections::BTreeMap<String, String> {
    std::fs::read_to_string(tmp.join("udhcpc.env"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

#[test]
fn udhcpc_gets_addresses_and_pxe_boot_file_from_our_dhcp() {
    let name = "udhcpc_gets_addresses_and_pxe_boot_file_from_our_dhcp";
    if !root_or_skip(name) || !have("busybox", name) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    tftp_root(tmp.path());
    let seg = Segment::new("u", &[true, false]);
    let extra = format!(
        "[dhcp]\nrange = \"{}-{}\"\nrouter = \"{}\"\nlease_secs = 600\n",
        seg.addr(100),
        seg.addr(110),
        seg.ip(0)
    );
    let _srv = Server::start(&seg, 0, settings(seg.ip(0), tmp.path(), "dhcp", &extra));
    let script = udhcpc_script(tmp.path());
    let script = script.to_str().unwrap();
    let run = |extra: &[&str]| {
        let mut args = vec![
            "busybox", "udhcpc", "-f", "-q", "-n", "-i", "eth0", "-s", script, "-t", "5", "-T", "1",
        ];
        args.extend_from_slice(extra);
        let out = seg.exec(1, &args).output().unwrap();
        assert!(
            out.status.success(),
            "udhcpc: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        env_of(tmp.path())
    };
    // A plain client: address, mask, router, no boot file.
    let env = run(&[]);
    let ip: Ipv4Addr = env["ip"].parse().unwrap();
    assert!(ip >= seg.addr(100) && ip <= seg.addr(110), "{ip}");
    assert_eq!(env["serverid"], seg.ip(0).to_string());
    assert_eq!(env["subnet"], "255.255.255.0");
    assert_eq!(env["router"], seg.ip(0).to_string());
    assert_eq!(env["lease"], "600");
    assert!(!env.contains_key("boot_file"), "{env:?}");
    // A client announcing itself as BIOS PXE gets the same address and a boot file.
    std::fs::remove_file(tmp.path().join("udhcpc.env")).unwrap();
    let env = run(&["-V", "PXEClient:Arch:00000:UNDI:002001", "-x", "0x5d:0000"]);
    assert_eq!(env["ip"], ip.to_string(), "the lease follows the MAC");
    assert_eq!(env["boot_file"], "undionly.kpxe");
    assert_eq!(env["siaddr"], seg.ip(0).to_string());
    // The lease is on disk, bound; the boot event is logged.
    let leases = std::fs::read_to_string(tmp.path().join("state/leases.json")).unwrap();
    assert!(
        leases.contains(&ip.to_string()) && leases.contains("bound"),
        "{leases}"
    );
    let events = std::fs::read_to_string(tmp.path().join("state/boot-events.jsonl")).unwrap();
    assert!(
        events.contains("\"answered\":\"undionly.kpxe\""),
        "{events}"
    );
}

#[test]
fn tftp_clients_fetch_files_with_options_and_traversal_is_refused() {
    let name = "tftp_clients_fetch_files_with_options_and_traversal_is_refused";
    if !root_or_skip(name) || !have("tftp", name) || !have("curl", name) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let big = tftp_root(tmp.path());
    let seg = Segment::new("t", &[true, true]);
    let _srv = Server::start(&seg, 0, settings(seg.ip(0), tmp.path(), "proxy", ""));
    let srv = seg.ip(0).to_string();
    let out = |n: &str| tmp.path().join(n);
    let fetched = |n: &str| std::fs::read(out(n)).unwrap_or_default();

    // tftp-hpa, lock-step, default 512-byte blocks.
    let o = out("hpa.bin");
    let r = seg
        .exec(
            1,
            &[
                "tftp",
                "-m",
                "binary",
                &srv,
                "-c",
                "get",
                "big.bin",
                o.to_str().unwrap(),
            ],
        )
        .output()
        .unwrap();
    assert!(r.status.success(), "{r:?}");
    assert!(fetched("hpa.bin") == big, "tftp-hpa got a different file");

    // curl with blksize (and tsize, which curl always asks for).
    let o = out("curl.bin");
    let url = format!("tftp://{srv}/big.bin");
    let r = seg
        .exec(
            1,
            &[
                "curl",
                "-sS",
                "--tftp-blksize",
                "1468",
                &url,
                "-o",
                o.to_str().unwrap(),
            ],
        )
        .output()
        .unwrap();
    assert!(r.status.success(), "{r:?}");
    assert!(fetched("curl.bin") == big, "curl got a different file");

    // Debian's iPXE binary, as a PXE ROM would fetch it.
    if Path::new("/usr/lib/ipxe/undionly.kpxe").exists() {
        let o = out("undionly.kpxe");
        let url = format!("tftp://{srv}/undionly.kpxe");
        let r = seg
            .exec(1, &["curl", "-sS", &url, "-o", o.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(r.status.success(), "{r:?}");
        assert_eq!(
            fetched("undionly.kpxe"),
            std::fs::read("/usr/lib/ipxe/undionly.kpxe").unwrap()
        );
    }

    // atftp with RFC 7440 windowsize.
    if have("atftp", name) {
        let o = out("atftp.bin");
        let r = seg
            .exec(
                1,
                &[
                    "atftp",
                    "--option",
                    "windowsize 8",
                    "--option",
                    "blksize 1428",
                    "-g",
                    "-r",
                    "big.bin",
                    "-l",
                    o.to_str().unwrap(),
                    &srv,
                ],
            )
            .output()
            .unwrap();
        assert!(r.status.success(), "{r:?}");
        assert!(fetched("atftp.bin") == big, "atftp got a different file");
    }

    // Our own RFC 7440 client checks windowing on the wire: 8 blocks arrive
    // before it acknowledges anything.
    let srv_addr = SocketAddr::from((seg.ip(0), 69));
    let got = seg
        .spawn(1, move || windowed_fetch(srv_addr, "big.bin", 8, 1024))
        .join()
        .unwrap();
    assert!(got == big, "windowed fetch got a different file");

    // Traversal: `..` is refused, escaping symlinks are refused, and absolute paths
    // stay inside the root.
    for (n, path) in [
        ("t1", "/../secret"),
        ("t2", "/..%2fsecret"),
        ("t3", "/escape"),
        ("t4", "//etc/passwd"),
    ] {
        let o = out(n);
        let url = format!("tftp://{srv}{path}");
        let r = seg
            .exec(
                1,
                &[
                    "curl",
                    "-sS",
                    "--path-as-is",
                    &url,
                    "-o",
                    o.to_str().unwrap(),
                ],
            )
            .output()
            .unwrap();
        assert!(!r.status.success(), "{path} was served");
        assert!(!fetched(n).starts_with(b"top secret") && !fetched(n).starts_with(b"root:"));
    }
    let o = out("t5");
    let r = seg
        .exec(
            1,
            &[
                "tftp",
                "-m",
                "binary",
                &srv,
                "-c",
                "get",
                "../secret",
                o.to_str().unwrap(),
            ],
        )
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&r.stdout).into_owned() + &String::from_utf8_lossy(&r.stderr);
    assert!(text.contains("Error code 2"), "tftp-hpa said {text:?}");
    assert!(!fetched("t5").starts_with(b"top secret"));
    // Writes are refused.
    let r = seg
        .exec(
            1,
            &[
                "tftp",
                "-m",
                "binary",
                &srv,
                "-c",
                "put",
                "/etc/hostname",
                "x",
            ],
        )
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&r.stdout).into_owned() + &String::from_utf8_lossy(&r.stderr);
    assert!(text.contains("Error code 2"), "tftp-hpa put said {text:?}");
    assert!(!tmp.path().join("tftp/x").exists());
}

/// A minimal RFC 7440 client that asserts the server sends whole windows.
fn windowed_fetch(server: SocketAddr, file: &str, window: u16, blksize: u16) -> Vec<u8> {
    let sock = UdpSocket::bind("0.0.0.0:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let (w, b) = (window.to_string(), blksize.to_string());
    let rrq = packet::rrq(file, &[("windowsize", &w), ("blksize", &b), ("tsize", "0")]);
    sock.send_to(&rrq, server).unwrap();
    let mut buf = vec![0u8; 70_000];
    let (n, peer) = sock.recv_from(&mut buf).unwrap();
    let Packet::Oack { options } = Packet::decode(&buf[..n]).unwrap() else {
        panic!("expected OACK")
    };
    assert!(options.contains(&("windowsize", w.as_str())), "{options:?}");
    assert!(options.contains(&("blksize", b.as_str())), "{options:?}");
    sock.connect(peer).unwrap();
    sock.send(&packet::ack(0)).unwrap();
    let mut data = Vec::new();
    let mut expect: u16 = 1;
    loop {
        let mut last = false;
        for i in 0..window {
            let n = sock.recv(&mut buf).unwrap();
            let Packet::Data { block, data: d } = Packet::decode(&buf[..n]).unwrap() else {
                panic!("expected DATA")
            };
            assert_eq!(block, expect, "block {i} of the window");
            data.extend_from_slice(d);
            expect = expect.wrapping_add(1);
            if d.len() < usize::from(blksize) {
                last = true;
                break;
            }
        }
        sock.send(&packet::ack(expect.wrapping_sub(1))).unwrap();
        if last {
            return data;
        }
    }
}

#[test]
fn http_serves_scripts_and_image_with_ranges() {
    let name = "http_serves_scripts_and_image_with_ranges";
    if !root_or_skip(name) || !have("curl", name) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    tftp_root(tmp.path());
    let image = tmp.path().join("image");
    std::fs::create_dir_all(&image).unwrap();
    let initramfs = pattern(1_000_000, 9);
    std::fs::write(image.join("vmlinuz"), pattern(50_000, 1)).unwrap();
    std::fs::write(image.join("initramfs"), &initramfs).unwrap();
    let key = nodus_identity::SecretKey::from_seed(&[3; 32]);
    let m = nodus_netboot::manifest::Manifest::of_dir(&image, "farm-test").unwrap();
    nodus_netboot::manifest::write(&image, &m.sign(&key, "nodus-devnet").unwrap()).unwrap();
    let seg = Segment::new("h", &[true, true]);
    let extra = format!(
        "image = \"{}\"\nchain = [\"{}:7000\"]\nkernel_args = \"console=ttyS0\"\n\
         [[machine]]\nmac = \"52:54:00:aa:bb:01\"\nargs = \"nodus.role=storage\"\n",
        image.display(),
        seg.ip(0)
    );
    let _srv = Server::start(&seg, 0, settings(seg.ip(0), tmp.path(), "proxy", &extra));
    let base = format!("http://{}:8080", seg.ip(0));
    let curl = |args: &[&str]| {
        let mut a = vec!["curl", "-sS"];
        a.extend_from_slice(args);
        seg.exec(1, &a).output().unwrap()
    };
    let script = curl(&[&format!("{base}/boot/52-54-00-AA-BB-01.ipxe")]);
    let script = String::from_utf8(script.stdout).unwrap();
    assert!(script.starts_with("#!ipxe"), "{script}");
    let account = nodus_identity::AccountId::from(key.public()).to_string();
    for want in [
        "nodus.farm=42".to_owned(),
        format!("nodus.chain={}:7000", seg.ip(0)),
        format!("nodus.boot_key={account}"),
        "nodus.role=storage".to_owned(),
        "console=ttyS0".to_owned(),
        format!("kernel {base}/image/vmlinuz"),
    ] {
        assert!(script.contains(&want), "{want} missing from\n{script}");
    }
    // By UUID too.
    let r = curl(&[
        "-f",
        &format!("{base}/boot/00112233-4455-6677-8899-aabbccddeeff.ipxe"),
    ]);
    assert!(r.status.success());
    // Range and Content-Length.
    let r = curl(&[
        "-D",
        "-",
        "-r",
        "1000-1999",
        &format!("{base}/image/initramfs"),
        "-o",
        "/dev/null",
    ]);
    let head = String::from_utf8_lossy(&r.stdout).to_lowercase();
    assert!(head.starts_with("http/1.1 206"), "{head}");
    assert!(head.contains("content-length: 1000"), "{head}");
    assert!(
        head.contains("content-range: bytes 1000-1999/1000000"),
        "{head}"
    );
    let o = tmp.path().join("part");
    let r = curl(&[
        "-r",
        "1000-1999",
        &format!("{base}/image/initramfs"),
        "-o",
        o.to_str().unwrap(),
    ]);
    assert!(r.status.success());
    assert_eq!(std::fs::read(&o).unwrap(), initramfs[1000..2000]);
    let r = curl(&["-I", &format!("{base}/image/initramfs")]);
    let head = String::from_utf8_lossy(&r.stdout).to_lowercase();
    assert!(
        head.contains("content-length: 1000000") && head.contains("accept-ranges: bytes"),
        "{head}"
    );
    let o = tmp.path().join("full");
    assert!(
        curl(&[
            "-f",
            &format!("{base}/image/initramfs"),
            "-o",
            o.to_str().unwrap()
        ])
        .status
        .success()
    );
    assert!(std::fs::read(&o).unwrap() == initramfs);
    // The manifest served verifies against the key on the command line.
    let dl = tmp.path().join("dl");
    std::fs::create_dir_all(&dl).unwrap();
    for f in ["vmlinuz", "initramfs", "manifest"] {
        let o = dl.join(f);
        assert!(
            curl(&[
                "-f",
                &format!("{base}/image/{f}"),
                "-o",
                o.to_str().unwrap()
            ])
            .status
            .success()
        );
    }
    let m = nodus_netboot::manifest::verify_image(
        &dl,
        &key.public(),
        "nodus-devnet",
        nodus_identity::statement::unix_now(),
    )
    .unwrap();
    assert_eq!(m.farm, "farm-test");
    // Refusals.
    let code = |path: &str| {
        let r = curl(&[
            "--path-as-is",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &format!("{base}{path}"),
        ]);
        String::from_utf8_lossy(&r.stdout).into_owned()
    };
    assert_eq!(code("/image/../tftp/big.bin"), "404");
    assert_eq!(code("/ipxe/../secret"), "403");
    assert_eq!(code("/ipxe/escape"), "403");
    assert_eq!(code("/boot/../../etc/passwd.ipxe"), "404");
    assert_eq!(code("/image/initramfs?x"), "200");
    let r = curl(&[
        "-r",
        "2000000-",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &format!("{base}/image/initramfs"),
    ]);
    assert_eq!(String::from_utf8_lossy(&r.stdout), "416");
    let events = std::fs::read_to_string(tmp.path().join("state/boot-events.jsonl")).unwrap();
    assert!(
        events.contains("\"service\":\"http\"") && events.contains("52-54-00-aa-bb-01"),
        "{events}"
    );
}

/// Broadcasts a DHCP request from port 68 and collects replies for `wait`.
fn dhcp_exchange(msg: &v4::Message, wait: Duration) -> Vec<(SocketAddr, v4::Message)> {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
    s.set_reuse_address(true).unwrap();
    s.set_broadcast(true).unwrap();
    s.bind_device(Some(b"eth0")).unwrap();
    s.bind(&SocketAddr::from(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 68)).into())
        .unwrap();
    let sock: UdpSocket = s.into();
    sock.send_to(&msg.to_vec().unwrap(), (Ipv4Addr::BROADCAST, 67))
        .unwrap();
    collect(&sock, msg.xid(), wait)
}

fn collect(sock: &UdpSocket, xid: u32, wait: Duration) -> Vec<(SocketAddr, v4::Message)> {
    let end = Instant::now() + wait;
    let mut out = Vec::new();
    let mut buf = [0u8; 1500];
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        sock.set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        let Ok((n, from)) = sock.recv_from(&mut buf) else {
            break;
        };
        if let Ok(m) = v4::Message::from_bytes(&buf[..n])
            && m.xid() == xid
            && m.opcode() == v4::Opcode::BootReply
        {
            out.push((from, m));
        }
    }
    out
}

fn pxe_discover(xid: u32) -> v4::Message {
    let mut m = v4::Message::new_with_id(
        xid,
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::UNSPECIFIED,
        &CLIENT_MAC,
    );
    m.set_flags(v4::Flags::default().set_broadcast());
    let o = m.opts_mut();
    o.insert(DhcpOption::MessageType(MessageType::Discover));
    o.insert(DhcpOption::ClassIdentifier(
        b"PXEClient:Arch:00007:UNDI:003016".to_vec(),
    ));
    o.insert(DhcpOption::ClientSystemArchitecture(v4::Architecture::BC));
    let mut guid = vec![0u8];
    guid.extend([0x11; 16]);
    o.insert(DhcpOption::ClientMachineIdentifier(guid));
    m
}

fn server_id(m: &v4::Message) -> Option<Ipv4Addr> {
    match m.opts().get(OptionCode::ServerIdentifier) {
        Some(DhcpOption::ServerIdentifier(s)) => Some(*s),
        _ => None,
    }
}

fn fname(m: &v4::Message) -> String {
    m.fname_str()
        .and_then(Result::ok)
        .unwrap_or_default()
        .trim_end_matches('\0')
        .to_owned()
}

/// dnsmasq as the farm router's DHCP server, in host `i`.
fn dnsmasq(seg: &Segment, host: usize, tmp: &Path) -> Child {
    let range = format!(
        "--dhcp-range={},{},255.255.255.0,1h",
        seg.addr(150),
        seg.addr(160)
    );
    let leases = format!("--dhcp-leasefile={}", tmp.join("dnsmasq.leases").display());
    let child = seg
        .exec(
            host,
            &[
                "dnsmasq",
                "--no-daemon",
                "--conf-file=/dev/null",
                "--port=0",
                &range,
                "--interface=eth0",
                "--bind-interfaces",
                &leases,
                "--user=root",
                "--pid-file=",
                "--log-dhcp",
                "--no-ping",
            ],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait (bounded) until dnsmasq has bound the DHCP port.
    for _ in 0..100 {
        let ss = seg.exec(host, &["ss", "-lun"]).output().unwrap();
        if String::from_utf8_lossy(&ss.stdout).contains(":67 ") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child
}

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn proxy_dhcp_beside_dnsmasq_answers_pxe_clients_only() {
    let name = "proxy_dhcp_beside_dnsmasq_answers_pxe_clients_only";
    if !root_or_skip(name) || !have("dnsmasq", name) || !have("busybox", name) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    tftp_root(tmp.path());
    // host 0: router (dnsmasq), host 1: our proxy, host 2: the booting machine.
    let seg = Segment::new("p", &[true, true, false]);
    let _router = Killed(dnsmasq(&seg, 0, tmp.path()));
    let srv = Server::start(&seg, 1, settings(seg.ip(1), tmp.path(), "proxy", ""));

    // A UEFI PXE client: the router gives the address, we give the boot file.
    let replies = seg
        .spawn(2, || {
            dhcp_exchange(&pxe_discover(0xabc1), Duration::from_secs(3))
        })
        .join()
        .unwrap();
    let from_router: Vec<_> = replies
        .iter()
        .filter(|(_, m)| server_id(m) == Some(seg.ip(0)))
        .collect();
    let from_us: Vec<_> = replies
        .iter()
        .filter(|(_, m)| server_id(m) == Some(seg.ip(1)))
        .collect();
    assert_eq!(from_router.len(), 1, "{replies:?}");
    assert_eq!(from_us.len(), 1, "{replies:?}");
    let offered = from_router[0].1.yiaddr();
    assert!(offered >= seg.addr(150) && offered <= seg.addr(160));
    let ours = &from_us[0].1;
    assert_eq!(ours.yiaddr(), Ipv4Addr::UNSPECIFIED);
    assert_eq!(fname(ours), "ipxe.efi");
    assert_eq!(ours.siaddr(), seg.ip(1));
    assert!(matches!(
        ours.opts().get(OptionCode::ClassIdentifier),
        Some(DhcpOption::ClassIdentifier(c)) if c == b"PXEClient"
    ));

    // With the router's address configured, the client asks our BINL port.
    let a = format!("{offered}/24");
    common::sh(&["ip", "-n", &seg.hosts[2], "addr", "add", &a, "dev", "eth0"]);
    let server = SocketAddr::from((seg.ip(1), 4011));
    let ack = seg
        .spawn(2, move || {
            let sock = UdpSocket::bind(SocketAddr::from((offered, 4011))).unwrap();
            let mut req = pxe_discover(0xabc2);
            req.opts_mut()
                .insert(DhcpOption::MessageType(MessageType::Request));
            req.set_ciaddr(offered);
            sock.send_to(&req.to_vec().unwrap(), server).unwrap();
            collect(&sock, 0xabc2, Duration::from_secs(3))
        })
        .join()
        .unwrap();
    assert_eq!(ack.len(), 1, "{ack:?}");
    assert_eq!(ack[0].1.opts().msg_type(), Some(MessageType::Ack));
    assert_eq!(fname(&ack[0].1), "ipxe.efi");
    common::sh(&["ip", "-n", &seg.hosts[2], "addr", "flush", "dev", "eth0"]);

    // A plain client (udhcpc) is served by the router alone.
    let script = udhcpc_script(tmp.path());
    let out = seg
        .exec(
            2,
            &[
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
            ],
        )
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let env = env_of(tmp.path());
    assert_eq!(env["serverid"], seg.ip(0).to_string());
    assert!(!env.contains_key("boot_file"));
    // The router's plain offers are expected in proxy mode: no rogue warning.
    assert!(
        !srv.log_text().contains("another DHCP server"),
        "{}",
        srv.log_text()
    );
    let events = std::fs::read_to_string(tmp.path().join("state/boot-events.jsonl")).unwrap();
    assert!(
        events.contains("\"service\":\"proxy\"") && events.contains("\"service\":\"binl\""),
        "{events}"
    );
}

#[test]
fn a_second_dhcp_server_is_reported() {
    let name = "a_second_dhcp_server_is_reported";
    if !root_or_skip(name) || !have("dnsmasq", name) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    tftp_root(tmp.path());
    let seg = Segment::new("r", &[true, true, false]);
    let _rogue = Killed(dnsmasq(&seg, 0, tmp.path()));
    let extra = format!("[dhcp]\nrange = \"{}-{}\"\n", seg.addr(100), seg.addr(110));
    let srv = Server::start(&seg, 1, settings(seg.ip(1), tmp.path(), "dhcp", &extra));
    let mut m = pxe_discover(0xdd01);
    m.opts_mut().remove(OptionCode::ClassIdentifier);
    let replies = seg
        .spawn(2, move || dhcp_exchange(&m, Duration::from_secs(3)))
        .join()
        .unwrap();
    assert_eq!(replies.len(), 2, "{replies:?}");
    let logs = srv.log_text();
    assert!(logs.contains("another DHCP server"), "{logs}");
    assert!(logs.contains(&seg.ip(0).to_string()), "{logs}");
}
