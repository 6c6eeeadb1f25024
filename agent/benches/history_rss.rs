//! Benchmark (c): resident memory of a process holding a full history, beside
//! Debian's `prometheus-node-exporter` on the same machine, in the same run.
//!
//! Target: < 20 MiB. The process builds what the agent daemon holds: a
//! [`Sampler`] on `/` and a [`History`] of the host's real series, with a full
//! day of minute buckets and then a full hour of real 1 s samples (read from the
//! host at full speed on a virtual clock). It reads its own `VmRSS` from
//! `/proc/self/status`, then does the same for a 200-series machine. Then it
//! starts node_exporter on a loopback port, scrapes `/metrics` once so it has
//! done its work, reads its `VmRSS` and stops it.
//!
//! `cargo bench -p nodus-agent --bench history_rss`

use std::{
    error::Error,
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use nodus_agent::{
    hal::SysRoot,
    telemetry::{ClockAnchor, History, Sampler, TelemetryConfig},
};

const NODE_EXPORTER: &str = "/usr/bin/prometheus-node-exporter";
/// A whole minute, so a day is exactly 1440 buckets.
const T0: u64 = 1_699_999_980;
const DAY: u64 = 86_400;
const HOUR: u64 = 3_600;

fn vm_rss_kib(pid: &str) -> Result<u64, Box<dyn Error>> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .ok_or("no VmRSS line")?;
    Ok(line
        .split_whitespace()
        .nth(1)
        .ok_or("empty VmRSS line")?
        .parse()?)
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// 23 h of one sample per minute for `names`: as much memory as a full day.
fn fill_day(h: &mut History, names: &[String]) {
    let mut t = T0;
    while t < T0 + DAY - HOUR {
        for (k, n) in names.iter().enumerate() {
            h.record(n, t, k as f64 + (t % 89) as f64);
        }
        t += 60;
    }
}

fn node_exporter() -> Result<(), Box<dyn Error>> {
    if !std::path::Path::new(NODE_EXPORTER).exists() {
        println!(
            "node_exporter: NOT MEASURED, {NODE_EXPORTER} is not installed (apt-get install -y prometheus-node-exporter)"
        );
        return Ok(());
    }
    // Let the kernel pick a free port, then hand it over.
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let mut child = Command::new(NODE_EXPORTER)
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let pid = child.id().to_string();
    let result = (|| -> Result<(u64, usize), Box<dyn Error>> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut stream = loop {
            match TcpStream::connect(("127.0.0.1", port)) {
                Ok(s) => break s,
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                Err(e) => return Err(e.into()),
            }
        };
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        stream.write_all(
            format!("GET /metrics HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n").as_bytes(),
        )?;
        let mut body = Vec::new();
        stream.read_to_end(&mut body)?;
        Ok((vm_rss_kib(&pid)?, body.len()))
    })();
    // Stop only the process this bench started.
    let _ = child.kill();
    let _ = child.wait();
    let (rss, bytes) = result?;
    println!(
        "node_exporter (Debian prometheus-node-exporter, after one {bytes}-byte scrape): VmRSS {:.1} MiB",
        mib(rss)
    );
    Ok(())
}

fn main() -> Result<(), Box<dyn Error>> {
    let base = vm_rss_kib("self")?;
    let config = TelemetryConfig::default();
    let mut sampler = Sampler::new(
        SysRoot::host(),
        &config,
        ClockAnchor {
            mono: Duration::ZERO,
            unix_ms: (T0 + DAY - HOUR) * 1000,
        },
    );
    let mut history = History::new(config.history);

    // The host's real series: whatever two samples produce.
    let mut names = Vec::new();
    for t in 0..2 {
        if let Some(b) = sampler.handle_timeout(Duration::from_secs(t)) {
            names = b.values.iter().map(|(n, _)| n.clone()).collect();
        }
    }
    fill_day(&mut history, &names);
    for t in 2..HOUR {
        if let Some(b) = sampler.handle_timeout(Duration::from_secs(t)) {
            history.record_batch(&b);
        }
    }
    let real = vm_rss_kib("self")?;
    println!(
        "agent history, this host's {} series, 1 h at 1 s + 24 h of 1 min buckets: VmRSS {:.1} MiB (process baseline {:.1} MiB; history accounts {:.2} MiB)",
        history.len(),
        mib(real),
        mib(base),
        history.accounted_bytes() as f64 / 1048576.0,
    );

    // A bigger machine: 200 series in all.
    let extra: Vec<String> = (history.len()..200)
        .map(|i| format!("sensor.synthetic/chip{}.temp{}", i / 8, i % 8))
        .collect();
    let mut t_extra = History::new(config.history);
    fill_day(&mut t_extra, &extra);
    for t in (T0 + DAY - HOUR)..(T0 + DAY) {
        for n in &extra {
            t_extra.record(n, t, (t % 61) as f64);
        }
    }
    let big = vm_rss_kib("self")?;
    println!(
        "agent history, 200 series (the above + {} synthetic): VmRSS {:.1} MiB (history accounts {:.2} MiB)",
        extra.len(),
        mib(big),
        (history.accounted_bytes() + t_extra.accounted_bytes()) as f64 / 1048576.0,
    );
    println!("target: < 20 MiB");
    // What a late console's backfill weighs (the console protocol carries it).
    let json = serde_json::to_vec(&history.snapshot(0))?.len()
        + serde_json::to_vec(&t_extra.snapshot(0))?.len();
    println!(
        "backfill snapshot of those 200 series as JSON: {:.1} MiB",
        json as f64 / 1048576.0
    );
    node_exporter()
}
