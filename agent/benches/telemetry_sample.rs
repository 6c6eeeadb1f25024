//! Benchmark (b): the CPU cost of one telemetry sample on the real host.
//!
//! Target: < 1 ms of CPU per sample. Runs the [`Sampler`] over `/` with a virtual
//! clock (one tick per virtual second, as fast as the host allows), measures the
//! thread's CPU time with `getrusage(RUSAGE_THREAD)` around the loop and reports
//! the mean per sample, for the default config and with per-CPU series on.
//!
//! `cargo bench -p nodus-agent --bench telemetry_sample`

use std::{
    error::Error,
    time::{Duration, Instant},
};

use nix::sys::resource::{UsageWho, getrusage};
use nodus_agent::{
    hal::SysRoot,
    telemetry::{ClockAnchor, History, Sampler, TelemetryConfig, TelemetryConfigRaw},
};

/// Samples per measurement: enough that the 1 µs rusage granularity vanishes.
const SAMPLES: u32 = 2_000;

fn cpu_time() -> Result<Duration, Box<dyn Error>> {
    let u = getrusage(UsageWho::RUSAGE_THREAD)?;
    let d =
        |t: nix::sys::time::TimeVal| Duration::new(t.tv_sec() as u64, (t.tv_usec() * 1000) as u32);
    Ok(d(u.user_time()) + d(u.system_time()))
}

fn run(label: &str, root: SysRoot, raw: TelemetryConfigRaw) -> Result<(), Box<dyn Error>> {
    let config = TelemetryConfig::try_from(raw)?;
    let anchor = ClockAnchor {
        mono: Duration::ZERO,
        unix_ms: 1_700_000_000_000,
    };
    let mut sampler = Sampler::new(root, &config, anchor);
    let mut history = History::new(config.history);
    // Warm up: the first samples create the series and the rate state.
    for t in 0..3 {
        if let Some(b) = sampler.handle_timeout(Duration::from_secs(t)) {
            history.record_batch(&b);
        }
    }
    let series = history.len();

    let (cpu0, wall0) = (cpu_time()?, Instant::now());
    let mut sample_only = Duration::ZERO;
    for t in 3..3 + u64::from(SAMPLES) {
        let c = cpu_time()?;
        let b = sampler.handle_timeout(Duration::from_secs(t));
        sample_only += cpu_time()? - c;
        if let Some(b) = b {
            history.record_batch(&b);
        }
    }
    let (cpu, wall) = (cpu_time()? - cpu0, wall0.elapsed());
    let per = |d: Duration| d.as_secs_f64() * 1e6 / f64::from(SAMPLES);
    println!(
        "{label}: {series} series; per sample: {:.1} µs CPU (sample + record), {:.1} µs CPU (sample alone), {:.1} µs wall",
        per(cpu),
        per(sample_only),
        per(wall),
    );
    let gaps = sampler.last_gaps();
    if !gaps.0.is_empty() {
        println!("  could not read: {gaps:?}");
    }
    Ok(())
}

/// node_exporter's captured machine (11 hwmon chips, RAPL, batteries), unpacked
/// into a temporary directory: this host has no hwmon at all, so this shows what
/// sensors add. `None` when the fixtures are not next to the repository.
fn sensor_rich_root() -> Result<Option<(tempfile::TempDir, SysRoot)>, Box<dyn Error>> {
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let Some(tarball) = manifest
        .ancestors()
        .map(|d| d.join("shared/fixtures/sysfs/node-exporter-sys.tar.gz"))
        .find(|p| p.is_file())
    else {
        return Ok(None);
    };
    let dir = tempfile::tempdir()?;
    let ok = std::process::Command::new("tar")
        .arg("xzf")
        .arg(&tarball)
        .arg("-C")
        .arg(dir.path())
        .status()?
        .success();
    if !ok {
        return Err(format!("could not unpack {}", tarball.display()).into());
    }
    let root = SysRoot::at(dir.path())?;
    Ok(Some((dir, root)))
}

fn main() -> Result<(), Box<dyn Error>> {
    // `cargo bench` passes `--bench`; there is nothing to configure.
    println!("telemetry sample ({SAMPLES} samples each; target < 1000 µs CPU)");
    run(
        "this host, default",
        SysRoot::host(),
        TelemetryConfigRaw::default(),
    )?;
    run(
        "this host, per-CPU",
        SysRoot::host(),
        TelemetryConfigRaw {
            per_cpu: Some(true),
            ..TelemetryConfigRaw::default()
        },
    )?;
    match sensor_rich_root()? {
        Some((_dir, root)) => run(
            "node_exporter fixture (sensors, RAPL)",
            root,
            TelemetryConfigRaw::default(),
        )?,
        None => println!("node_exporter fixture not found; sensor-rich run skipped"),
    }
    Ok(())
}
