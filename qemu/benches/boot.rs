//! Boot-to-ready per profile, beside the floor, in one run.
//!
//! - **ready**: QEMU start → the agent's snapshot received over QUIC (the node
//!   image built by `nodus netboot build-image`, as `nodus qemu test` boots it);
//! - **floor**: QEMU start → a busybox `/init` printing a marker, with the same
//!   kernel, the same machine (profile) and the same accelerator.
//!
//! Target: ready ≤ floor + 1.5 s.
//!
//! ```text
//! NODUS_BIN=target/debug/nodus NODUS_TEST_KERNEL_ROOT=target/kernel/root \
//!     cargo bench -p nodus-qemu --bench boot [-- /abs/path/PROFILE.toml ...]
//! ```
//! `NODUS_BENCH_RUNS` (default 1) runs each measurement that many times, reporting
//! the median. `NODUS_GUEST_BIN` (before `NODUS_BIN`) names the `nodus` put in the
//! image, e.g. `target/guest/nodus` from `cargo build --profile guest --bin nodus`.
//! `NODUS_BENCH_INITRAMFS=raw` boots the initramfs decompressed (an experiment:
//! what the kernel's gzip inflate costs under emulation; the init verifies the
//! same content either way).
//! The first run of each profile prints the boot timeline from the stamped
//! console lines, and so does every run whose agent does not answer.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Bench code: a panic is a failure.

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use nodus_hw_profiles::Profile;
use nodus_identity::SecretKey;
use nodus_qemu::{
    initramfs::{FLOOR_MARKER, write_floor_image},
    kernel::{from_unpacked, locate},
    serial::SerialWatch,
    suite::{Image, Options, boot_and_connect},
    vm::{Accel, Launch, Serial, Vm, argv::base_cmdline},
};

fn nodus_bin() -> PathBuf {
    for var in ["NODUS_GUEST_BIN", "NODUS_BIN"] {
        if let Some(p) = std::env::var_os(var) {
            return p.into();
        }
    }
    // target/<profile>/deps/boot-… → target/<profile>/nodus, else target/debug/nodus.
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|d| d.parent()).unwrap();
    let here = profile_dir.join("nodus");
    if here.exists() {
        return here;
    }
    profile_dir.parent().unwrap().join("debug/nodus")
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

async fn floor_once(
    profile: &Profile,
    kernel: &std::path::Path,
    initrd: &std::path::Path,
) -> Duration {
    let mut cmdline = base_cmdline(profile);
    cmdline.push("quiet".into());
    let mut vm = Vm::start(
        profile,
        Launch {
            kernel: kernel.to_owned(),
            initrd: initrd.to_owned(),
            cmdline,
            accel: Accel::Tcg,
            serial: Serial::File,
            quic_port: None,
            paused: true,
        },
    )
    .await
    .unwrap();
    let mut w = SerialWatch::new(vm.serial_log());
    let started = vm.started();
    let line = w
        .wait_for(
            |l| l.contains(FLOOR_MARKER),
            Duration::from_secs(180),
            || vm.has_exited(),
        )
        .await;
    let t = started.elapsed();
    assert!(line.is_some(), "floor image never printed its marker");
    t
}

/// Prints the guest's boot timeline (the init's and the agent's stamped lines)
/// with the host's view: the guest clock starts when the kernel does, so
/// QEMU start → kernel start is about the host ready time minus the guest stamp
/// of the later of the agent's `serving` mark and the init's `network up` (the
/// snapshot arrives a few ms after both).
/// The stamped `nodus-` lines of a serial log: guest seconds since kernel
/// start, and the line from `nodus-` on.
fn stamped_lines(serial: &std::path::Path) -> Vec<(f64, String)> {
    let log = std::fs::read_to_string(serial).unwrap_or_default();
    log.lines()
        .filter(|l| l.contains("nodus-"))
        .filter_map(|l| {
            // `[  12.345] nodus-…`, perhaps after the console's escape sequences.
            let at = l.find("] nodus-")?;
            let open = l[..at].rfind('[')?;
            Some((
                l[open + 1..at].trim().parse().ok()?,
                l[at + 2..].trim().to_owned(),
            ))
        })
        .collect()
}

/// One line per run with the guest's own clock at the main steps (seconds
/// since kernel start): on a host loaded by other work the host-side figures
/// swing by several seconds, these much less.
fn print_steps(serial: &std::path::Path) {
    let stamped = stamped_lines(serial);
    let at = |prefix: &str| {
        stamped
            .iter()
            .find(|(_, l)| l.starts_with(prefix))
            .map_or_else(|| "-".to_owned(), |(t, _)| format!("{t:.2}"))
    };
    eprintln!(
        "  guest s: init {} verified {} modules {} agent {} network {} serving {}",
        at("nodus-init: nodus "),
        at("nodus-init: image verified"),
        at("nodus-init: modules loaded"),
        at("nodus-init: started agent"),
        at("nodus-init: network up"),
        at("nodus-agent: serving"),
    );
}

fn print_timeline(serial: &std::path::Path, ready: Option<Duration>) {
    let stamped = stamped_lines(serial);
    // The snapshot needs both the agent serving and the guest's address.
    let stamp_of = |prefix: &str| {
        stamped
            .iter()
            .find(|(_, l)| l.starts_with(prefix))
            .map(|(t, _)| *t)
    };
    let answered = match (
        stamp_of("nodus-agent: serving"),
        stamp_of("nodus-init: network up"),
    ) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    let offset = ready.zip(answered).map(|(r, s)| r.as_secs_f64() - s);
    match offset {
        Some(o) => eprintln!("  timeline (host s since QEMU start; kernel started at ~{o:.2} s):"),
        None => eprintln!("  timeline (guest s since kernel start):"),
    }
    let mut prev = 0.0;
    for (t, l) in &stamped {
        let mut l = l.clone();
        if l.len() > 100 {
            l.truncate(l.char_indices().nth(100).map_or(l.len(), |(i, _)| i));
            l.push('…');
        }
        eprintln!(
            "  {:>8.2} (+{:>5.2}) {l}",
            t + offset.unwrap_or(0.0),
            t - prev
        );
        prev = *t;
    }
    match ready {
        Some(r) => eprintln!(
            "  {:>8.2}          snapshot received over QUIC",
            r.as_secs_f64()
        ),
        None => eprintln!("  (no snapshot over QUIC)"),
    }
}

async fn ready_once(profile: &Profile, image: &Image, timeline: bool) -> Option<Duration> {
    let owner = SecretKey::generate().unwrap();
    let opts = Options {
        accel: Accel::Tcg,
        boot_timeout: Duration::from_secs(180),
        keep_failed: false,
    };
    let (vm, agent, checks) =
        boot_and_connect(profile, image, &owner, &opts, Serial::File, &mut |_| {}).await;
    let vm = vm?;
    match agent {
        Some((_, view)) => {
            let ready = view.ready_at.duration_since(vm.started());
            if timeline {
                print_timeline(&vm.serial_log(), Some(ready));
            }
            print_steps(&vm.serial_log());
            Some(ready)
        }
        None => {
            for c in checks.iter().filter(|c| !c.ok) {
                eprintln!("  {}: {}", c.name, c.detail);
            }
            // What the guest got to, for finding out why.
            print_timeline(&vm.serial_log(), None);
            None
        }
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // `cargo bench` passes `--bench`; everything else is a profile path.
    let args: Vec<PathBuf> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .map(PathBuf::from)
        .collect();
    let profiles: Vec<Profile> = if args.is_empty() {
        nodus_hw_profiles::load_dir(&nodus_hw_profiles::bundled_dir()).unwrap()
    } else {
        args.iter().map(|p| Profile::load(p).unwrap()).collect()
    };
    let runs: usize = std::env::var("NODUS_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
        .max(1);
    let kernel = match std::env::var_os("NODUS_TEST_KERNEL_ROOT") {
        Some(root) => from_unpacked(&PathBuf::from(root)).unwrap(),
        None => locate(None, None).unwrap(),
    };
    let dir = tempfile::tempdir().unwrap();
    let floor_img = dir.path().join("floor.cpio");
    write_floor_image(&floor_img).unwrap();
    let t = Instant::now();
    let mut image = Image::build(&nodus_bin(), &kernel).await.unwrap();
    eprintln!("image built in {:.1} s", t.elapsed().as_secs_f64());
    if std::env::var_os("NODUS_BENCH_INITRAMFS").is_some_and(|v| v == "raw") {
        let raw = dir.path().join("initramfs.cpio");
        let out = std::process::Command::new("gzip")
            .arg("-dc")
            .arg(&image.initramfs)
            .output()
            .unwrap();
        assert!(out.status.success(), "gzip -dc failed");
        std::fs::write(&raw, out.stdout).unwrap();
        eprintln!(
            "initramfs decompressed for the kernel: {} bytes",
            std::fs::metadata(&raw).unwrap().len()
        );
        image.initramfs = raw;
    }
    println!(
        "{:<24} {:>9} {:>9} {:>9}  target (ready <= floor + 1.5 s)",
        "profile", "floor s", "ready s", "delta s"
    );
    for p in &profiles {
        let mut floors = Vec::new();
        let mut readies = Vec::new();
        for run in 0..runs {
            floors.push(floor_once(p, &kernel.kernel, &floor_img).await);
            eprintln!(
                "{} run {}: floor {:.2} s",
                p.name(),
                run + 1,
                floors[run].as_secs_f64()
            );
            if let Some(r) = ready_once(p, &image, run == 0).await {
                eprintln!(
                    "{} run {}: ready {:.2} s",
                    p.name(),
                    run + 1,
                    r.as_secs_f64()
                );
                readies.push(r);
            }
        }
        let floor = median(floors);
        if readies.is_empty() {
            println!(
                "{:<24} {:>9.2} {:>9} {:>9}  agent not ready",
                p.name(),
                floor.as_secs_f64(),
                "-",
                "-"
            );
            continue;
        }
        let ready = median(readies);
        let delta = ready.as_secs_f64() - floor.as_secs_f64();
        println!(
            "{:<24} {:>9.2} {:>9.2} {:>9.2}  {}",
            p.name(),
            floor.as_secs_f64(),
            ready.as_secs_f64(),
            delta,
            if delta <= 1.5 { "met" } else { "MISSED" }
        );
    }
}
