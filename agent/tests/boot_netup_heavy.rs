#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The managed-mode network bring-up against a real DHCP server: our client
//! (`nodus_agent::netup::dhcp_on`) in one network namespace, `dnsmasq` in another,
//! a veth pair between them. The lease's address and default route must appear
//! on the client's interface, as `ip` reports them.
//!
//! Heavy tier: needs root, `ip` and `dnsmasq` (scripts/test.sh installs
//! dnsmasq-base).

use std::{
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

fn have(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn ip(args: &[&str]) {
    let s = Command::new("ip").args(args).status().unwrap();
    assert!(s.success(), "ip {args:?}");
}

fn ns_out(ns: &str, args: &[&str]) -> String {
    let o = Command::new("ip")
        .args(["netns", "exec", ns])
        .args(args)
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Two namespaces joined by a veth pair, and dnsmasq; all removed on drop.
struct Lab {
    srv: String,
    cli: String,
    dnsmasq: Option<Child>,
    _dir: tempfile::TempDir,
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(mut d) = self.dnsmasq.take() {
            let _ = d.kill();
            let _ = d.wait();
        }
        for ns in [&self.srv, &self.cli] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

fn lab() -> Lab {
    let id = std::process::id() % 100_000;
    let srv = format!("nu-srv-{id}");
    let cli = format!("nu-cli-{id}");
    let dir = tempfile::tempdir().unwrap();
    let mut lab = Lab {
        srv: srv.clone(),
        cli: cli.clone(),
        dnsmasq: None,
        _dir: dir,
    };
    ip(&["netns", "add", &srv]);
    ip(&["netns", "add", &cli]);
    ip(&[
        "link", "add", "nuS", "netns", &srv, "type", "veth", "peer", "name", "nuC", "netns", &cli,
    ]);
    ip(&["-n", &srv, "addr", "add", "10.77.0.1/24", "dev", "nuS"]);
    ip(&["-n", &srv, "link", "set", "nuS", "up"]);
    ip(&["-n", &srv, "link", "set", "lo", "up"]);
    ip(&["-n", &cli, "link", "set", "lo", "up"]);
    let leases = lab._dir.path().join("leases");
    lab.dnsmasq = Some(
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &srv,
                "dnsmasq",
                "--no-daemon",
                "--conf-file=/dev/null",
            ])
            .args([
                "--port=0",
                "--interface=nuS",
                "--bind-interfaces",
                "--no-ping",
            ])
            .args(["--dhcp-range=10.77.0.50,10.77.0.60,255.255.255.0,10m"])
            .args(["--dhcp-option=option:router,10.77.0.1"])
            .args(["--dhcp-option=option:dns-server,10.77.0.1"])
            .arg(format!("--dhcp-leasefile={}", leases.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    lab
}

#[test]
fn heavy_dhcp_client_gets_a_lease_from_dnsmasq_and_configures_it() {
    if !have("dnsmasq") || !have("ip") {
        eprintln!("SKIP: needs dnsmasq and ip (scripts/test.sh installs dnsmasq-base)");
        return;
    }
    let lab = lab();
    // The server side starts unplugged: nuC has no carrier, and the client
    // must wait for it instead of burning its DISCOVERs into a dead link.
    ip(&["-n", &lab.srv, "link", "set", "nuS", "down"]);
    let log = Arc::new(Mutex::new(Vec::<String>::new()));
    let log2 = log.clone();
    let cli_path = format!("/var/run/netns/{}", lab.cli);
    // The client runs on a thread inside the client namespace; its netlink and UDP
    // sockets are created there.
    std::thread::spawn(move || {
        let f = std::fs::File::open(&cli_path).unwrap();
        nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let h = nodus_agent::netup::connect().unwrap();
            let r =
                nodus_agent::netup::dhcp_on(&h, "nuC", 1234, move |m| log2.lock().unwrap().push(m))
                    .await;
            eprintln!("dhcp_on ended: {r:?}");
        });
    });
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        !log.lock().unwrap().iter().any(|l| l.contains("network up")),
        "a lease without carrier: {:?}",
        log.lock().unwrap()
    );
    // Plugged in: the lease follows.
    ip(&["-n", &lab.srv, "link", "set", "nuS", "up"]);
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(60)
        && !log.lock().unwrap().iter().any(|l| l.contains("network up"))
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    let lines = log.lock().unwrap().clone();
    assert!(
        lines.iter().any(|l| l.contains("network up: nuC 10.77.0.")),
        "no lease: {lines:?}"
    );
    eprintln!("lease after {:?}: {lines:?}", start.elapsed());
    let addrs = ns_out(&lab.cli, &["ip", "-4", "-o", "addr", "show", "dev", "nuC"]);
    let addr = addrs
        .split_whitespace()
        .find(|w| w.starts_with("10.77.0."))
        .unwrap_or_else(|| panic!("no address on nuC: {addrs}"));
    let host: u8 = addr
        .trim_end_matches("/24")
        .rsplit('.')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (50..=60).contains(&host),
        "{addr} is outside dnsmasq's range"
    );
    assert!(addr.ends_with("/24"), "{addr}");
    let routes = ns_out(&lab.cli, &["ip", "-4", "route", "show", "default"]);
    assert!(
        routes.contains("default via 10.77.0.1 dev nuC") && routes.contains("metric 1234"),
        "no default route with our metric: {routes}"
    );
    // dnsmasq recorded the same lease, for our MAC.
    let ip_only = addr.trim_end_matches("/24");
    let link = ns_out(&lab.cli, &["ip", "-o", "link", "show", "nuC"]);
    let mac = link
        .split_whitespace()
        .skip_while(|w| *w != "link/ether")
        .nth(1)
        .unwrap()
        .to_owned();
    let start = Instant::now();
    let mut leases = String::new();
    while start.elapsed() < Duration::from_secs(10) {
        leases = std::fs::read_to_string(lab._dir.path().join("leases")).unwrap_or_default();
        if leases.contains(ip_only) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let line = leases
        .lines()
        .find(|l| l.contains(ip_only))
        .unwrap_or_else(|| panic!("dnsmasq has no lease for {ip_only}: {leases}"));
    assert!(line.contains(&mac), "lease {line} is not for {mac}");
}
