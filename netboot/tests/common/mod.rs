//! Network namespaces for tests and benchmarks: a segment (a bridge in its own
//! namespace) with hosts (one namespace each, `eth0` on the bridge), torn down on
//! drop. Names are unique per process and call, so tests run in parallel.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::{
    net::Ipv4Addr,
    process::{Command, Output},
    sync::atomic::{AtomicU32, Ordering},
    thread::JoinHandle,
};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// True when we may create namespaces; otherwise prints why the test is skipped.
pub fn root_or_skip(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    println!("SKIPPED {test}: needs root for network namespaces");
    false
}

/// True when `cmd` exists; otherwise prints why the test is skipped.
pub fn have(cmd: &str, test: &str) -> bool {
    let found = ["/usr/bin", "/usr/sbin", "/bin", "/sbin"]
        .iter()
        .any(|d| std::path::Path::new(d).join(cmd).exists());
    if !found {
        println!("SKIPPED {test}: `{cmd}` is not installed (scripts/test.sh installs it)");
    }
    found
}

/// Runs a command and panics with its output when it fails.
pub fn sh(args: &[&str]) -> Output {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// One network segment.
pub struct Segment {
    /// The switch namespace.
    pub switch: String,
    /// Host namespaces, in creation order.
    pub hosts: Vec<String>,
    /// The /24 prefix's third octet: hosts are 10.{a}.{b}.{n}.
    pub net: (u8, u8),
}

impl Segment {
    /// A segment with `n` hosts; host `i` gets 10.a.b.(i+1)/24 unless `addresses`
    /// is false for it (a DHCP client).
    pub fn new(tag: &str, addresses: &[bool]) -> Self {
        let id = std::process::id() % 10_000;
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let base = format!("nb{tag}{id}x{n}");
        let net = (200 + (id % 50) as u8, (n % 250) as u8 + 1);
        let switch = format!("{base}sw");
        sh(&["ip", "netns", "add", &switch]);
        let mut seg = Self {
            switch: switch.clone(),
            hosts: Vec::new(),
            net,
        };
        sh(&["ip", "-n", &switch, "link", "add", "br0", "type", "bridge"]);
        sh(&["ip", "-n", &switch, "link", "set", "br0", "up"]);
        for (i, addr) in addresses.iter().enumerate() {
            let host = format!("{base}h{i}");
            sh(&["ip", "netns", "add", &host]);
            seg.hosts.push(host.clone());
            let port = format!("p{i}");
            sh(&[
                "ip", "-n", &switch, "link", "add", &port, "type", "veth", "peer", "name", "eth0",
                "netns", &host,
            ]);
            sh(&[
                "ip", "-n", &switch, "link", "set", &port, "master", "br0", "up",
            ]);
            sh(&["ip", "-n", &host, "link", "set", "lo", "up"]);
            sh(&["ip", "-n", &host, "link", "set", "eth0", "up"]);
            if *addr {
                let a = format!("{}/24", seg.ip(i));
                sh(&["ip", "-n", &host, "addr", "add", &a, "dev", "eth0"]);
            }
        }
        seg
    }

    /// Host `i`'s static address.
    pub fn ip(&self, i: usize) -> Ipv4Addr {
        Ipv4Addr::new(10, self.net.0, self.net.1, i as u8 + 1)
    }

    /// An address in the segment's /24.
    pub fn addr(&self, last: u8) -> Ipv4Addr {
        Ipv4Addr::new(10, self.net.0, self.net.1, last)
    }

    /// `ip netns exec HOST args…`.
    pub fn exec(&self, host: usize, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.hosts[host]]).args(args);
        c
    }

    /// Adds a host whose link to the switch delays every frame by `one_way` in
    /// each direction. A user-space relay between two TAP devices stands in for
    /// `tc netem`, which not every kernel has (this VM's does not). Returns the
    /// host's index; its address is [`Segment::ip`] as for the others.
    pub fn add_delayed_host(&mut self, one_way: std::time::Duration) -> usize {
        let i = self.hosts.len();
        let host = format!("{}h{i}", self.switch.trim_end_matches("sw"));
        sh(&["ip", "netns", "add", &host]);
        self.hosts.push(host.clone());
        let port = format!("t{i}");
        let inner = self.spawn(i, || open_tap("eth0")).join().unwrap();
        let sw_path = format!("/var/run/netns/{}", self.switch);
        let outer = std::thread::spawn(move || {
            enter(&sw_path);
            open_tap(&port)
        })
        .join()
        .unwrap();
        let port = format!("t{i}");
        sh(&[
            "ip",
            "-n",
            &self.switch,
            "link",
            "set",
            &port,
            "master",
            "br0",
            "up",
        ]);
        sh(&["ip", "-n", &host, "link", "set", "lo", "up"]);
        sh(&["ip", "-n", &host, "link", "set", "eth0", "up"]);
        let a = format!("{}/24", self.ip(i));
        sh(&["ip", "-n", &host, "addr", "add", &a, "dev", "eth0"]);
        pump(
            inner.try_clone().unwrap(),
            outer.try_clone().unwrap(),
            one_way,
        );
        pump(outer, inner, one_way);
        i
    }

    /// Runs `f` on a new thread inside host `i`'s namespace.
    pub fn spawn<T: Send + 'static>(
        &self,
        host: usize,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> JoinHandle<T> {
        let path = format!("/var/run/netns/{}", self.hosts[host]);
        std::thread::spawn(move || {
            enter(&path);
            f()
        })
    }
}

/// Moves the calling thread into a network namespace.
pub fn enter(path: &str) {
    let f = std::fs::File::open(path).unwrap();
    nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
}

impl Drop for Segment {
    fn drop(&mut self) {
        for h in self.hosts.iter().chain(std::iter::once(&self.switch)) {
            let _ = Command::new("ip")
                .args(["netns", "pids", h])
                .output()
                .map(|o| {
                    for pid in String::from_utf8_lossy(&o.stdout).split_whitespace() {
                        let _ = Command::new("kill").arg(pid).status();
                    }
                });
            let _ = Command::new("ip").args(["netns", "del", h]).status();
        }
    }
}

/// Our server running on a thread inside a namespace; stopped on drop.
pub struct Server {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    /// Lines logged by the server (tracing, warn and above).
    pub logs: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
}

#[derive(Clone)]
struct LogBuf(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogBuf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Server {
    /// Starts `nodus netboot serve` with `settings` in host `i`, and waits until
    /// its sockets are bound.
    pub fn start(seg: &Segment, host: usize, settings: nodus_netboot::config::Settings) -> Self {
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
        let logs = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let buf = LogBuf(logs.clone());
        let thread = seg.spawn(host, move || {
            let sub = tracing_subscriber::fmt()
                .with_max_level(tracing::Level::INFO)
                .with_ansi(false)
                .with_writer(move || buf.clone())
                .finish();
            let _guard = tracing::subscriber::set_default(sub);
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let tx = ready_tx.clone();
            rt.block_on(async move {
                tokio::select! {
                    r = nodus_netboot::serve::run(settings, move |_| { let _ = tx.send(Ok(())); }) => {
                        if let Err(e) = r {
                            let _ = ready_tx.send(Err(format!("{e:?}")));
                        }
                    }
                    _ = stop_rx => {}
                }
            });
        });
        match ready_rx.recv_timeout(std::time::Duration::from_secs(20)) {
            Ok(Ok(())) => {}
            other => panic!("server did not start: {other:?}"),
        }
        Self {
            stop: Some(stop_tx),
            thread: Some(thread),
            logs,
        }
    }

    /// What the server logged so far.
    pub fn log_text(&self) -> String {
        String::from_utf8_lossy(&self.logs.lock().unwrap()).into_owned()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Settings for a server at `address` with a TFTP root and state dir under `tmp`.
pub fn settings(
    address: Ipv4Addr,
    tmp: &std::path::Path,
    mode: &str,
    extra: &str,
) -> nodus_netboot::config::Settings {
    let text = format!(
        "interface = \"eth0\"\naddress = \"{address}\"\nmode = \"{mode}\"\nfarm = \"42\"\n\
         state_dir = \"{s}\"\ntftp_root = \"{t}\"\nhttp = \"{address}:8080\"\n{extra}",
        s = tmp.join("state").display(),
        t = tmp.join("tftp").display(),
    );
    let raw: nodus_netboot::config::RawConfig = toml::from_str(&text).unwrap();
    raw.validate(|_| None).unwrap()
}

/// Deterministic file contents.
pub fn pattern(n: usize, seed: u8) -> Vec<u8> {
    let mut x = u32::from(seed) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// Opens (creating) a TAP device in the calling thread's namespace.
fn open_tap(name: &str) -> std::fs::File {
    use nix::libc;
    use std::os::fd::AsRawFd as _;
    /// `_IOW('T', 202, int)`.
    const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
    #[repr(C)]
    struct IfReq {
        name: [u8; 16],
        flags: libc::c_short,
        pad: [u8; 22],
    }
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
        .unwrap();
    let mut req = IfReq {
        name: [0; 16],
        flags: (libc::IFF_TAP | libc::IFF_NO_PI) as libc::c_short,
        pad: [0; 22],
    };
    req.name[..name.len()].copy_from_slice(name.as_bytes());
    // SAFETY: TUNSETIFF reads and writes one `struct ifreq` (40 bytes, matched by
    // `IfReq`) through the pointer, which stays valid for the call.
    let r = unsafe { libc::ioctl(f.as_raw_fd(), TUNSETIFF, &mut req) };
    assert!(
        r >= 0,
        "TUNSETIFF {name}: {}",
        std::io::Error::last_os_error()
    );
    f
}

/// Copies frames from `from` to `to`, each one `delay` after it was read.
fn pump(from: std::fs::File, to: std::fs::File, delay: std::time::Duration) {
    use std::io::{Read as _, Write as _};
    let (tx, rx) = std::sync::mpsc::channel::<(std::time::Instant, Vec<u8>)>();
    std::thread::spawn(move || {
        // Sleeps here are the link's delay: make them end when asked, not up to
        // the default 50 µs timer slack later (twice per lock-step round trip).
        // SAFETY: PR_SET_TIMERSLACK takes an integer and changes only this
        // thread's timer slack.
        unsafe { nix::libc::prctl(nix::libc::PR_SET_TIMERSLACK, 1 as nix::libc::c_ulong) };
        let mut to = to;
        for (at, frame) in rx {
            let now = std::time::Instant::now();
            if at > now {
                std::thread::sleep(at - now);
            }
            if to.write(&frame).is_err() {
                break;
            }
        }
    });
    std::thread::spawn(move || {
        let mut from = from;
        let mut buf = vec![0u8; 65_536];
        loop {
            match from.read(&mut buf) {
                Ok(n) if n > 0 => {
                    if tx
                        .send((std::time::Instant::now() + delay, buf[..n].to_vec()))
                        .is_err()
                    {
                        break;
                    }
                }
                _ => break,
            }
        }
    });
}
