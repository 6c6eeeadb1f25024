#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The managed-mode network bring-up against a real DHCP server: our client
//! (`nodus_agent::netup::dhcp_on`) in one network namespace, `dnsmasq` in another,
//! a veth pair between them. The lease's address and default route must appear
//! on the client's interface, as `ip` reports them; when the server side's link
//! goes down and up again, the client must check its lease at once (INIT-REBOOT):
//! kept on the same network, replaced when the link now leads to another subnet.
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

/// A subnet dnsmasq serves on the server side: `BASE.1/24` is the server and
/// gateway, the pool is `BASE.50`–`BASE.60`.
struct Net {
    /// The first three octets, e.g. `10.77.0`.
    base: &'static str,
    /// dnsmasq's lease time (`10m`, `1h`).
    lease: &'static str,
    /// `--dhcp-authoritative`: NAK requests for addresses not on this subnet.
    authoritative: bool,
}

/// Subnet A, as the first test has always used it.
const NET_A: Net = Net {
    base: "10.77.0",
    lease: "10m",
    authoritative: false,
};

/// Two namespaces joined by a veth pair, and dnsmasq; all removed on drop.
struct Lab {
    srv: String,
    cli: String,
    dnsmasq: Option<Child>,
    /// dnsmasq starts so far; names each run's lease and log files.
    runs: u32,
    _dir: tempfile::TempDir,
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.stop_dnsmasq();
        for ns in [&self.srv, &self.cli] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

impl Lab {
    fn stop_dnsmasq(&mut self) {
        if let Some(mut d) = self.dnsmasq.take() {
            let _ = d.kill();
            let _ = d.wait();
        }
    }

    /// The current dnsmasq's lease file.
    fn leases(&self) -> std::path::PathBuf {
        self._dir.path().join(format!("leases-{}", self.runs))
    }

    /// The current dnsmasq's log (`--log-dhcp`), for failure messages.
    fn dnsmasq_log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join(format!("dnsmasq-{}.log", self.runs)))
            .unwrap_or_default()
    }

    /// (Re)starts dnsmasq for `net` on the server side, readdressing `nuS`
    /// first, and waits until it listens on port 67.
    fn serve(&mut self, net: &Net) {
        self.stop_dnsmasq();
        self.runs += 1;
        let srv = self.srv.clone();
        ip(&["-n", &srv, "addr", "flush", "dev", "nuS"]);
        ip(&[
            "-n",
            &srv,
            "addr",
            "add",
            &format!("{}.1/24", net.base),
            "dev",
            "nuS",
        ]);
        let log = self._dir.path().join(format!("dnsmasq-{}.log", self.runs));
        let mut cmd = Command::new("ip");
        cmd.args([
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
            "--log-dhcp",
        ])
        .arg(format!(
            "--dhcp-range={b}.50,{b}.60,255.255.255.0,{}",
            net.lease,
            b = net.base
        ))
        .arg(format!("--dhcp-option=option:router,{}.1", net.base))
        .arg(format!("--dhcp-option=option:dns-server,{}.1", net.base))
        .arg(format!("--dhcp-leasefile={}", self.leases().display()))
        .arg(format!("--log-facility={}", log.display()));
        if net.authoritative {
            cmd.arg("--dhcp-authoritative");
        }
        self.dnsmasq = Some(
            cmd.stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let listening = wait_until(Duration::from_secs(10), || {
            ns_out(&srv, &["ss", "-Hnul"]).contains(":67 ")
        });
        assert!(listening, "dnsmasq does not listen: {}", self.dnsmasq_log());
    }
}

/// Polls `ok` every 100 ms until it holds or `limit` has passed; whether it held.
fn wait_until(limit: Duration, mut ok: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if ok() {
            return true;
        }
        if start.elapsed() >= limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn lab() -> Lab {
    lab_serving(&NET_A)
}

fn lab_serving(net: &Net) -> Lab {
    let id = std::process::id() % 100_000;
    let srv = format!("nu-srv-{id}");
    let cli = format!("nu-cli-{id}");
    let dir = tempfile::tempdir().unwrap();
    let mut lab = Lab {
        srv: srv.clone(),
        cli: cli.clone(),
        dnsmasq: None,
        runs: 0,
        _dir: dir,
    };
    ip(&["netns", "add", &srv]);
    ip(&["netns", "add", &cli]);
    ip(&[
        "link", "add", "nuS", "netns", &srv, "type", "veth", "peer", "name", "nuC", "netns", &cli,
    ]);
    ip(&["-n", &srv, "link", "set", "nuS", "up"]);
    ip(&["-n", &srv, "link", "set", "lo", "up"]);
    ip(&["-n", &cli, "link", "set", "lo", "up"]);
    lab.serve(net);
    lab
}

/// The log lines of our client.
type Log = Arc<Mutex<Vec<String>>>;

/// Runs `task` on a thread of its own inside network namespace `ns`, on a
/// single-threaded runtime, so the sockets it creates are that namespace's.
fn spawn_in_namespace<F>(ns: &str, task: impl FnOnce() -> F + Send + 'static)
where
    F: std::future::Future<Output = ()>,
{
    let path = format!("/var/run/netns/{ns}");
    std::thread::spawn(move || {
        let f = std::fs::File::open(&path).unwrap();
        nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(task());
    });
}

/// Runs `dhcp_on(nuC, metric 1234)` inside the client namespace; returns its
/// log.
fn start_client(lab: &Lab) -> Log {
    let log = Arc::new(Mutex::new(Vec::<String>::new()));
    let log2 = log.clone();
    spawn_in_namespace(&lab.cli, move || async move {
        let h = nodus_agent::netup::connect().unwrap();
        let r = nodus_agent::netup::dhcp_on(&h, "nuC", 1234, move |m| log2.lock().unwrap().push(m))
            .await;
        eprintln!("dhcp_on ended: {r:?}");
    });
    log
}

fn lines(log: &Log) -> Vec<String> {
    log.lock().unwrap().clone()
}

/// Waits (at most 20 s) for a log line containing `part`; returns it.
fn wait_line(lab: &Lab, log: &Log, part: &str) -> String {
    wait_line_within(lab, log, part, Duration::from_secs(20))
}

/// Waits at most `limit` for a log line containing `part`; returns it.
fn wait_line_within(lab: &Lab, log: &Log, part: &str, limit: Duration) -> String {
    let mut found = None;
    wait_until(limit, || {
        found = lines(log).into_iter().find(|l| l.contains(part));
        found.is_some()
    });
    found.unwrap_or_else(|| {
        panic!(
            "no log line with {part:?}: {:?}\ndnsmasq: {}",
            lines(log),
            lab.dnsmasq_log()
        )
    })
}

/// The IPv4 addresses (CIDR) on the client's nuC.
fn client_addrs(lab: &Lab) -> Vec<String> {
    let out = ns_out(&lab.cli, &["ip", "-4", "-o", "addr", "show", "dev", "nuC"]);
    out.lines()
        .filter_map(|l| {
            l.split_whitespace()
                .skip_while(|w| *w != "inet")
                .nth(1)
                .map(str::to_owned)
        })
        .collect()
}

/// The address a "network up: nuC A/24 via …" line reports.
fn leased(line: &str) -> String {
    line.split_whitespace()
        .nth(3)
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_owned()
}

fn set_server_link(lab: &Lab, state: &str) {
    ip(&["-n", &lab.srv, "link", "set", "nuS", state]);
}

#[test]
fn heavy_dhcp_client_gets_a_lease_from_dnsmasq_and_configures_it() {
    if !have("dnsmasq") || !have("ip") || !have("ss") {
        eprintln!("SKIP: needs dnsmasq, ip and ss (scripts/test.sh installs dnsmasq-base)");
        return;
    }
    let lab = lab();
    // The server side starts unplugged: nuC has no carrier, and the client
    // must wait for it instead of burning its DISCOVERs into a dead link.
    set_server_link(&lab, "down");
    let log = start_client(&lab);
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
        leases = std::fs::read_to_string(lab.leases()).unwrap_or_default();
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

/// The carrier tests: a 1 h lease (T1 at 30 min), so within their waits
/// only the carrier-return check can explain a lease event.
const LONG: &str = "1h";

/// A client leased on 10.77.0.0/24 (a `LONG` lease from dnsmasq,
/// `authoritative` or not) whose cable was then pulled: the lab, the client's
/// log, and the leased address (CIDR, the only one on `nuC`). `None`, after
/// saying why, where the tools are missing.
fn leased_then_unplugged(authoritative: bool) -> Option<(Lab, Log, String)> {
    if !have("dnsmasq") || !have("ip") || !have("ss") {
        eprintln!("SKIP: needs dnsmasq, ip and ss (scripts/test.sh installs dnsmasq-base)");
        return None;
    }
    let lab = lab_serving(&Net {
        base: "10.77.0",
        lease: LONG,
        authoritative,
    });
    let log = start_client(&lab);
    let addr = leased(&wait_line(&lab, &log, "network up: nuC 10.77.0."));
    assert_eq!(client_addrs(&lab), std::slice::from_ref(&addr));
    set_server_link(&lab, "down");
    wait_line(&lab, &log, "network: nuC: carrier lost");
    Some((lab, log, addr))
}

#[test]
fn heavy_carrier_return_on_the_same_network_confirms_the_lease() {
    let Some((lab, log, addr)) = leased_then_unplugged(true) else {
        return;
    };
    let ip_only = addr.trim_end_matches("/24").to_owned();
    set_server_link(&lab, "up");
    wait_line(
        &lab,
        &log,
        &format!("network: nuC: carrier back; checking {ip_only}"),
    );
    let confirmed = wait_line(&lab, &log, &format!("lease confirmed: nuC {ip_only} for "));
    eprintln!("{:?}", lines(&log));
    assert!(confirmed.contains("(dhcp from 10.77.0.1)"), "{confirmed}");

    // Same address, same route; nothing was lost or bound again.
    assert_eq!(client_addrs(&lab), [addr]);
    let all = lines(&log);
    assert!(!all.iter().any(|l| l.starts_with("lease lost")), "{all:?}");
    assert_eq!(
        all.iter().filter(|l| l.starts_with("network up:")).count(),
        1,
        "{all:?}"
    );
    let routes = ns_out(&lab.cli, &["ip", "-4", "route", "show", "default"]);
    assert!(
        routes.contains("default via 10.77.0.1 dev nuC") && routes.contains("metric 1234"),
        "{routes}"
    );
    // dnsmasq acknowledged the address twice: the first lease and the check
    // (its log is written as it goes; give it a moment).
    let acked = format!("DHCPACK(nuS) {ip_only}");
    let twice = wait_until(Duration::from_secs(10), || {
        lab.dnsmasq_log().matches(&acked).count() >= 2
    });
    assert!(twice, "{}", lab.dnsmasq_log());
}

#[test]
fn heavy_carrier_return_on_another_network_moves_the_lease_at_once() {
    let Some((mut lab, log, old)) = leased_then_unplugged(true) else {
        return;
    };
    let old_ip = old.trim_end_matches("/24").to_owned();
    // The cable now leads to subnet B, whose server knows nothing of A.
    lab.serve(&Net {
        base: "10.78.0",
        lease: LONG,
        authoritative: true,
    });
    set_server_link(&lab, "up");

    wait_line(&lab, &log, &format!("lease lost: nuC {old_ip}"));
    let up = wait_line(&lab, &log, "network up: nuC 10.78.0.");
    assert!(up.contains("via 10.78.0.1 metric 1234"), "{up}");
    let new = leased(&up);
    eprintln!("{:?}", lines(&log));
    let moved = wait_until(Duration::from_secs(20), || {
        client_addrs(&lab) == [new.clone()]
    });
    assert!(moved, "addresses on nuC: {:?}", client_addrs(&lab));
    let routes = ns_out(&lab.cli, &["ip", "-4", "route", "show", "default"]);
    assert!(
        routes.contains("default via 10.78.0.1 dev nuC") && routes.contains("metric 1234"),
        "{routes}"
    );
    assert!(
        !routes.contains("10.77.0.1"),
        "the old gateway stayed: {routes}"
    );
    // B's server refused A's address: that NAK, not T1, moved the node.
    let nak = format!("DHCPNAK(nuS) {old_ip}");
    let refused = wait_until(Duration::from_secs(10), || lab.dnsmasq_log().contains(&nak));
    assert!(refused, "{}", lab.dnsmasq_log());
}

/// Serves DHCP for `base.0/24` (pool `base.100`–`base.110`, router `base.1`)
/// with Nodus's own netboot server, on a thread inside the server namespace,
/// after readdressing `nuS`. dnsmasq is stopped first.
fn serve_with_nodus_netboot(lab: &mut Lab, base: &str) {
    use nodus_netboot::{
        dhcp::{Addressing, BootTable, Leases, Mode, Pool, Server, io::DhcpService},
        events::EventLog,
    };
    lab.stop_dnsmasq();
    ip(&["-n", &lab.srv, "addr", "flush", "dev", "nuS"]);
    ip(&[
        "-n",
        &lab.srv,
        "addr",
        "add",
        &format!("{base}.1/24"),
        "dev",
        "nuS",
    ]);
    let at = |last: u8| {
        format!("{base}.{last}")
            .parse::<std::net::Ipv4Addr>()
            .unwrap()
    };
    let addressing = Addressing {
        pool: Pool {
            first: at(100),
            last: at(110),
            reservations: Default::default(),
        },
        netmask: std::net::Ipv4Addr::new(255, 255, 255, 0),
        router: Some(at(1)),
        dns: vec![at(1)],
        lease_secs: 3600,
    };
    let table = BootTable {
        bios: "undionly.kpxe".into(),
        uefi: "ipxe.efi".into(),
        http_base: format!("http://{base}.1:8080"),
        user_class: "nodus".into(),
    };
    let service = DhcpService {
        server: Server::new(at(1), Mode::Dhcp(addressing), table, Leases::default()),
        interface: Some("nuS".into()),
        lease_file: None,
        binl: false,
        watch: false,
        log: EventLog::tracing_only(),
    };
    let (bound_tx, bound_rx) = std::sync::mpsc::channel();
    spawn_in_namespace(&lab.srv, move || async move {
        let sockets = service.bind();
        let _ = bound_tx.send(sockets.as_ref().map(|_| ()).map_err(|e| e.to_string()));
        if let Ok(sockets) = sockets {
            // Ends with the namespace (the socket fails) or the process.
            let _ = service.serve_on(sockets).await;
        }
    });
    bound_rx
        .recv_timeout(Duration::from_secs(10))
        .unwrap()
        .unwrap();
}

#[test]
fn heavy_carrier_return_onto_a_nodus_netboot_network_moves_the_lease() {
    // Leased on A from dnsmasq; the cable then moves to B, which a farm's
    // `nodus netboot serve` addresses. Our server must refuse A's address
    // (RFC 2131 §4.3.2, wrong network) so the node moves now, not at T1.
    let Some((mut lab, log, old)) = leased_then_unplugged(false) else {
        return;
    };
    let old_ip = old.trim_end_matches("/24").to_owned();
    serve_with_nodus_netboot(&mut lab, "10.79.0");
    set_server_link(&lab, "up");

    wait_line(&lab, &log, &format!("lease lost: nuC {old_ip}"));
    let up = wait_line(&lab, &log, "network up: nuC 10.79.0.");
    assert!(up.contains("via 10.79.0.1 metric 1234"), "{up}");
    let new = leased(&up);
    let moved = wait_until(Duration::from_secs(20), || {
        client_addrs(&lab) == [new.clone()]
    });
    assert!(moved, "addresses on nuC: {:?}", client_addrs(&lab));
    assert!(
        !lines(&log).iter().any(|l| l.contains("lease unverified")),
        "the server stayed silent: {:?}",
        lines(&log)
    );
}

#[test]
fn heavy_carrier_return_with_no_server_keeps_the_lease_unverified() {
    let Some((mut lab, log, addr)) = leased_then_unplugged(true) else {
        return;
    };
    let ip_only = addr.trim_end_matches("/24").to_owned();
    // The link comes back, but nothing answers DHCP on it any more.
    lab.stop_dnsmasq();
    set_server_link(&lab, "up");
    // The check lasts REBOOT_REQUESTS doublings from 1 s (63 s), then gives up.
    let kept = wait_line_within(
        &lab,
        &log,
        &format!("lease unverified: nuC: no server answered; keeping {ip_only} for "),
        Duration::from_secs(90),
    );
    eprintln!("{:?}", lines(&log));
    // Seconds left of the 1 h lease, not a fresh one.
    let left: u64 = kept
        .split(" for ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no seconds in {kept:?}"));
    assert!(left > 3000 && left < 3600, "{kept}");
    assert_eq!(client_addrs(&lab), std::slice::from_ref(&addr));
    let all = lines(&log);
    assert!(!all.iter().any(|l| l.starts_with("lease lost")), "{all:?}");
    let routes = ns_out(&lab.cli, &["ip", "-4", "route", "show", "default"]);
    assert!(routes.contains("default via 10.77.0.1 dev nuC"), "{routes}");
}
