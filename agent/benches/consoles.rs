//! Agent CPU with many remote consoles: target < 5 % of one core with 50
//! consoles receiving the 1 Hz telemetry feed over QUIC.
//!
//! The agent runs as its own process (`nodus agent run` on a synthetic machine
//! tree), so its CPU time is read from `/proc/<pid>/stat` apart from the
//! consoles'. The same run first measures the agent with no console attached, the
//! baseline its sampling costs anyway.
//!
//! ```text
//! cargo build --release --bin nodus
//! cargo bench -p nodus-agent --bench consoles
//! ```
//!
//! `NODUS_BIN` names another `nodus` binary; `CONSOLES` and `SECONDS` change the
//! load (defaults 50 and 20).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../tests/common/generate.rs"]
mod generate;

use std::{
    io::{BufRead as _, BufReader},
    path::PathBuf,
    process::{Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use nodus_identity::{AccountId, NodeId, SecretKey};
use nodus_wire::{
    Alpn, Client,
    console::{ClientMsg, Hello, ServerMsg, VERSION},
};

fn nodus_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("NODUS_BIN") {
        return p.into();
    }
    // target/<profile>/deps/consoles-HASH → target/<profile>/nodus
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|d| d.parent()).unwrap();
    profile_dir.join("nodus")
}

/// utime + stime of `pid`, seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as f64;
    ticks / hz
}

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let consoles = env_num("CONSOLES", 50) as usize;
    let seconds = env_num("SECONDS", 20);
    let bin = nodus_bin();
    if !bin.exists() {
        eprintln!(
            "no nodus binary at {} (cargo build --release --bin nodus, or set NODUS_BIN)",
            bin.display()
        );
        return;
    }
    let tree = generate::machine(generate::Spec {
        disks: 16,
        nics: 4,
        sensors: 40,
        cpus: 8,
    });
    let state = tempfile::tempdir().unwrap();
    let owner = SecretKey::generate().unwrap();
    let mut agent = Command::new(&bin)
        .env("NODUS_PASSPHRASE", "bench")
        .args([
            "agent",
            "run",
            "--listen",
            "127.0.0.1:0",
            "--socket",
            "none",
        ])
        .args(["--dbus-address", "none", "--owner"])
        .arg(AccountId::from(owner.public()).to_string())
        .arg("--root")
        .arg(tree.path())
        .arg("--state-dir")
        .arg(state.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = agent.id();
    let mut line = String::new();
    BufReader::new(agent.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let field = |k: &str| {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{k}=")))
            .unwrap()
            .to_owned()
    };
    let node: NodeId = field("node").parse().unwrap();
    let addr: std::net::SocketAddr = field("quic").parse().unwrap();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    // Baseline: sampling and inventory with nobody watching.
    std::thread::sleep(Duration::from_secs(3));
    let (c0, t0) = (cpu_seconds(pid), Instant::now());
    std::thread::sleep(Duration::from_secs(seconds));
    let idle = (cpu_seconds(pid) - c0) / t0.elapsed().as_secs_f64();

    let frames = Arc::new(AtomicU64::new(0));
    let connect_start = Instant::now();
    let conns: Vec<_> = rt.block_on(async {
        let mut v = Vec::new();
        for _ in 0..consoles {
            let client = Client::new(&owner).unwrap();
            let conn = client
                .connect(addr, *node.key(), Alpn::Console)
                .await
                .unwrap();
            let (mut send, mut recv) = conn.open_bi().await.unwrap();
            send.send(&ClientMsg::Hello(Hello {
                version: VERSION,
                capabilities: 0,
                backfill_s: 3_600,
                client: "bench".into(),
            }))
            .await
            .unwrap();
            let frames = frames.clone();
            let task = tokio::spawn(async move {
                while let Ok(Some(_m)) = recv.recv::<ServerMsg>().await {
                    frames.fetch_add(1, Ordering::Relaxed);
                }
            });
            v.push((client, conn, send, task));
        }
        v
    });
    let connect_s = connect_start.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_secs(3));
    let (c1, t1, f1) = (
        cpu_seconds(pid),
        Instant::now(),
        frames.load(Ordering::Relaxed),
    );
    std::thread::sleep(Duration::from_secs(seconds));
    let elapsed = t1.elapsed().as_secs_f64();
    let loaded = (cpu_seconds(pid) - c1) / elapsed;
    let rate = (frames.load(Ordering::Relaxed) - f1) as f64 / elapsed / consoles as f64;
    drop(conns);
    let _ = agent.kill();
    let _ = agent.wait();

    println!("agent CPU, share of one core, {seconds} s windows:");
    println!("  no consoles:            {:6.2} %", idle * 100.0);
    println!(
        "  {consoles} consoles:            {:6.2} %   (target < 5 %)",
        loaded * 100.0
    );
    println!(
        "  added by the consoles:  {:6.2} %   ({:.3} % per console)",
        (loaded - idle) * 100.0,
        (loaded - idle) * 100.0 / consoles as f64
    );
    println!("  frames per console/s:  {rate:6.2}");
    println!("  {consoles} connects + snapshots with 1 h backfill took {connect_s:.2} s");
}
