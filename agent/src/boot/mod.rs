//! The init: what `nodus` does as PID 1 of a network-booted node.
//!
//! In order, it mounts /proc, /sys, /dev, /run and /tmp and puts its output on
//! /dev/console; parses the kernel command line ([`cmdline`]); verifies every
//! file of the initramfs against the signed manifest and the boot key
//! ([`verify`]), and halts with the reason on the console if anything is off —
//! the agent is then never started; loads the kernel modules listed in the image,
//! dependencies first, meanwhile, setting each NIC up as its driver probes (no
//! address, IPv6 held off until the image has verified:
//! [`crate::netup::early`]); brings up the I2C chips of a simulated board when the
//! command line has `nodus.i2c=` entries ([`i2c`]); brings up the network
//! ([`crate::netup`], in this process so addresses and leases survive agent
//! restarts); then starts and supervises
//! `nodus agent run --mode managed` (with `NODUS_INIT=1`) and the on-node console
//! ([`supervise`]), reaps orphans, and powers off cleanly on SIGTERM, SIGPWR or
//! the power button (reboots on Ctrl-Alt-Del / SIGINT).
//!
//! It deliberately holds no node logic: inventory, capacity and the APIs are the
//! agent's. The system calls sit in their own file; the command-line parser, the
//! verifier and the supervisor are tested without being PID 1.
//!
//! Every line it prints starts with `nodus-init:` so the serial log reads as a
//! boot transcript: `image verified`, `modules loaded`, `network up`, `ready`.

pub mod cmdline;
pub mod i2c;
pub mod supervise;
pub mod timeline;
pub mod verify;

#[cfg(target_os = "linux")]
#[path = "sys_linux.rs"]
mod sys;

#[cfg(target_os = "linux")]
pub use self::linux::run;

#[cfg(target_os = "linux")]
mod linux {
    use std::{
        path::{Path, PathBuf},
        time::{Duration, Instant},
    };

    use super::{
        cmdline::{BootParams, ConsoleTty, NetSetting},
        i2c::{self, StubChip},
        supervise::{Action, Exit, Supervisor},
        sys::{self, End},
        verify,
    };
    use crate::netup::early::EarlyLinks;

    /// The module load list inside the image (written by build-image).
    const MODULE_LIST: &str = "/etc/nodus/modules";
    /// How long services get to stop after SIGTERM before everything is killed.
    const STOP_GRACE: Duration = Duration::from_secs(20);

    fn say(msg: impl std::fmt::Display) {
        // Stamped like the kernel's lines, so the serial log is a boot timeline.
        println!("{}nodus-init: {msg}", super::timeline::stamp());
    }

    /// Prints why, and halts. The agent is never started.
    fn refuse(reason: impl std::fmt::Display) -> ! {
        say(format_args!("REFUSING TO BOOT: {reason}"));
        say("the agent will not be started; halting");
        sys::end(End::Halt)
    }

    /// Sets the NICs that appeared since the last call up, IPv6 held off (see
    /// [`crate::netup::early`]), so their links negotiate while the boot goes on.
    fn raise_links(early: &mut EarlyLinks) {
        let r = early.raise_new();
        if !r.up.is_empty() {
            say(format_args!(
                "link up early: {} (no address, IPv6 off until the image verifies)",
                r.up.join(" ")
            ));
        }
        for (nic, e) in r.failed {
            say(format_args!(
                "link {nic} left down until the image verifies: {}",
                error_chain(&e)
            ));
        }
    }

    /// Loads the listed modules in order; with `early`, sets each NIC up as
    /// soon as its driver has probed (the list loads NIC drivers first).
    fn load_modules(
        params: &BootParams,
        stub_chips: &[StubChip],
        mut early: Option<EarlyLinks>,
    ) -> Option<EarlyLinks> {
        if let Some(e) = early.as_mut() {
            // Drivers built into the kernel have probed already.
            raise_links(e);
        }
        let list = match std::fs::read_to_string(MODULE_LIST) {
            Ok(l) => l,
            Err(e) => {
                say(format_args!("no module list ({e})"));
                return early;
            }
        };
        let (mut ok, mut failed) = (Vec::new(), Vec::new());
        // How long each load took (the kernel probes the devices, waiting for
        // async probes such as SATA ports, inside finit_module): for the timeline.
        let mut took: Vec<(&str, Duration)> = Vec::new();
        let all = Instant::now();
        for line in list.lines() {
            let Some((name, path)) = line.split_once(' ') else {
                continue;
            };
            let mut module_params = params.params_for(name);
            if name == "i2c_stub" && module_params.is_empty() {
                // i2c-stub refuses to load without chip addresses; take them
                // from the `nodus.i2c=` entries, or leave it out.
                if stub_chips.is_empty() {
                    continue;
                }
                module_params = i2c::chip_addr_param(stub_chips);
            }
            let t = Instant::now();
            let loaded = sys::load_module(Path::new(path), &module_params);
            took.push((name, t.elapsed()));
            match loaded {
                Ok(()) => {
                    ok.push(name);
                    if let Some(e) = early.as_mut() {
                        raise_links(e);
                    }
                }
                Err(e) => failed.push(format!("{name} ({e})")),
            }
        }
        say(format_args!("modules loaded: {}", ok.join(" ")));
        took.sort_by_key(|t| std::cmp::Reverse(t.1));
        say(format_args!(
            "modules took {:.2} s, slowest: {}",
            all.elapsed().as_secs_f64(),
            took.iter()
                .take(4)
                .map(|(n, d)| format!("{n} {:.2} s", d.as_secs_f64()))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        if !failed.is_empty() {
            say(format_args!("modules failed: {}", failed.join(", ")));
        }
        early
    }

    /// The image has verified: the early links get their IPv6 back (the kernel
    /// starts autoconfiguration now, as when netup set them up), with what
    /// they sent meanwhile for the record.
    fn release_links(early: EarlyLinks) {
        for r in early.release() {
            let sent = r
                .tx_packets
                .map_or_else(|| "unknown".to_owned(), |n| n.to_string());
            let carrier = if r.carrier {
                "carrier"
            } else {
                "no carrier yet"
            };
            match r.error {
                None => say(format_args!(
                    "link {} released: {carrier}, {sent} packets sent before the image verified",
                    r.name
                )),
                Some(e) => say(format_args!(
                    "link {} released ({carrier}, {sent} packets sent), but its IPv6 setting was not restored: {}",
                    r.name,
                    error_chain(&e)
                )),
            }
        }
    }

    /// Seeds the `nodus.i2c=` chips into i2c-stub and writes the agent's board
    /// file (see [`i2c`]). Every problem is printed; none stops the boot.
    fn bring_up_i2c(chips: &[StubChip]) {
        if chips.is_empty() {
            return;
        }
        let adapters = i2c::stub_adapters(Path::new("/sys"));
        if adapters.is_empty() {
            say("i2c: no i2c-stub adapter (is i2c_stub in the image?); no chips brought up");
            return;
        }
        let up = i2c::bring_up(chips, &adapters, |adapter, address| {
            let dev = format!("/dev/i2c-{adapter}");
            // devtmpfs creates the node when i2c-dev binds the adapter; give it
            // a moment in case that is still under way.
            for _ in 0..20 {
                if Path::new(&dev).exists() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            crate::sensors::i2c::linux::LinuxSmbus::open(adapter, address)
        });
        for line in &up.done {
            say(format_args!("i2c: seeded {line}"));
        }
        for (chip, e) in &up.failed {
            say(format_args!("i2c: skipping {chip}: {e}"));
        }
        let path = Path::new(crate::sensors::i2c::BOARD_FILE);
        match i2c::write_board_file(path, &up.board) {
            Ok(()) => say(format_args!(
                "i2c: {} chip(s) for the agent in {}",
                up.board.chips.len(),
                path.display()
            )),
            Err(e) => say(format_args!("i2c: cannot write {}: {e}", path.display())),
        }
    }

    fn watch_power_buttons(tx: tokio::sync::mpsc::Sender<()>) {
        std::thread::spawn(move || {
            // The button's input device appears shortly after its module loads.
            let mut devs = Vec::new();
            for _ in 0..20 {
                devs = sys::power_buttons(Path::new("/sys"));
                if !devs.is_empty() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(500));
            }
            if devs.is_empty() {
                say("no power button input device; SIGTERM/SIGPWR still power off");
            }
            for dev in devs {
                let tx = tx.clone();
                std::thread::spawn(move || {
                    if sys::wait_power_button(&dev).is_ok() {
                        let _ = tx.blocking_send(());
                    }
                });
            }
        });
    }

    /// The user the on-node console runs as: `nobody`, neither root nor in the
    /// `nodus` group, so the agent's socket gives it the viewer role. Whoever
    /// stands at the node's screen can watch it but not reboot it, power it off
    /// or wipe a disk; those need an operator's key or a root login.
    pub(super) const ON_NODE_CONSOLE_USER: (u32, u32) = (65534, 65534);

    struct Services {
        exe: PathBuf,
        console: Option<PathBuf>,
    }

    impl Services {
        fn start(&self, index: usize) -> std::io::Result<i32> {
            let exe = &self.exe;
            match index {
                0 => sys::spawn(
                    exe,
                    &["agent", "run", "--mode", "managed"],
                    &[("NODUS_INIT", "1"), ("PATH", "/bin"), ("HOME", "/root")],
                    None,
                    None,
                ),
                _ => {
                    let tty = self
                        .console
                        .as_deref()
                        .ok_or(std::io::ErrorKind::NotFound)?;
                    let term = if tty.to_string_lossy().contains("ttyS") {
                        "vt220"
                    } else {
                        "linux"
                    };
                    sys::spawn(
                        exe,
                        &["console", "--on-node"],
                        &[("TERM", term), ("PATH", "/bin"), ("HOME", "/")],
                        Some(tty),
                        Some(ON_NODE_CONSOLE_USER),
                    )
                }
            }
        }
    }

    async fn supervise(params: BootParams) -> End {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut chld), Ok(mut term), Ok(mut int), Ok(mut pwr)) = (
            signal(SignalKind::child()),
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
            signal(SignalKind::from_raw(nix::libc::SIGPWR)),
        ) else {
            refuse("cannot install signal handlers");
        };
        sys::disable_cad();
        let (button_tx, mut button) = tokio::sync::mpsc::channel(1);
        watch_power_buttons(button_tx);

        let net = params.net.clone();
        tokio::spawn(crate::netup::run(net, params.boot_nic, say));

        let services = Services {
            exe: std::env::current_exe().unwrap_or_else(|_| PathBuf::from("/proc/self/exe")),
            console: match &params.console {
                ConsoleTty::Tty(t) => Some(Path::new("/dev").join(t)),
                ConsoleTty::None => None,
            },
        };
        let names: &[&'static str] = if services.console.is_some() {
            &["agent", "console"]
        } else {
            &["agent"]
        };
        let mut sup = Supervisor::new(names, Instant::now());
        let mut ending: Option<(End, Instant)> = None;
        let mut announced = false;
        loop {
            let now = Instant::now();
            while let Some(Action::Start(i)) = sup.poll_action(now) {
                let name = sup.services()[i].name;
                match services.start(i) {
                    Ok(pid) => {
                        sup.started(i, pid, now);
                        say(format_args!("started {name} (pid {pid})"));
                    }
                    Err(e) => {
                        let after = sup.failed_to_start(i, now);
                        say(format_args!("cannot start {name}: {e}; retry in {after:?}"));
                    }
                }
            }
            if !announced {
                announced = true;
                match super::timeline::uptime_secs() {
                    Some(up) => say(format_args!("ready: {up:.2} s since kernel start")),
                    None => say("ready"),
                }
            }
            for pid in sys::reap() {
                match sup.exited(pid, Instant::now()) {
                    Exit::Restart { index, after } => say(format_args!(
                        "{} exited; restarting in {after:?}",
                        sup.services()[index].name
                    )),
                    Exit::Stopped(index) => {
                        say(format_args!("{} stopped", sup.services()[index].name));
                    }
                    Exit::Orphan => {}
                }
            }
            if let Some((how, deadline)) = ending
                && (sup.all_stopped() || Instant::now() >= deadline)
            {
                return how;
            }
            let wake = [sup.poll_timeout(), ending.map(|(_, d)| d)]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            let mut begin = |how: End, why: &str| {
                if ending.is_none() {
                    say(format_args!("{why}: stopping services"));
                    for pid in sup.shutdown() {
                        sys::terminate(pid);
                    }
                    ending = Some((how, Instant::now() + STOP_GRACE));
                }
            };
            tokio::select! {
                _ = chld.recv() => {}
                _ = term.recv() => begin(End::PowerOff, "SIGTERM"),
                _ = pwr.recv() => begin(End::PowerOff, "SIGPWR"),
                _ = int.recv() => begin(End::Reboot, "Ctrl-Alt-Del"),
                Some(()) = button.recv() => begin(End::PowerOff, "power button"),
                _ = tokio::time::sleep_until(wake.into()) => {}
            }
        }
    }

    /// Runs the init. Never returns: the machine ends in power off, reboot or
    /// halt.
    pub fn run() -> ! {
        let failed = sys::mount_early();
        sys::console_stdio();
        say(format_args!("nodus {} starting", env!("CARGO_PKG_VERSION")));
        for f in failed {
            say(format_args!("mount failed: {f}"));
        }
        let line = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
        let params = match BootParams::parse(&line) {
            Ok(p) => p,
            Err(e) => refuse(e),
        };
        for k in &params.unknown {
            say(format_args!("ignoring unknown kernel parameter {k}"));
        }
        let root = Path::new("/");
        let v = match verify::open_manifest(
            root,
            params.boot_key.as_ref(),
            &params.network,
            nodus_identity::statement::unix_now(),
        ) {
            Ok(v) => v,
            Err(e) => refuse(error_chain(&e)),
        };
        // The module list and the modules are checked first, so the kernel loads
        // (and probes) them while the rest of the image, mostly this binary, is
        // hashed: both take seconds under emulation. Nothing is started before
        // the whole image has verified.
        if let Err(e) = v.check_entries(root, verify::is_module_input) {
            refuse(error_chain(&e));
        }
        let stub_chips: Vec<StubChip> = params
            .i2c
            .iter()
            .filter_map(|e| {
                i2c::parse_entry(e)
                    .map_err(|err| say(format_args!("i2c: skipping: {err}")))
                    .ok()
            })
            .collect();
        // NICs go up as their drivers probe, so autonegotiation overlaps the
        // rest of the boot; they get neither an address nor IPv6 before the
        // image has verified (see crate::netup::early).
        let early = (params.net != NetSetting::None).then(EarlyLinks::host);
        std::thread::scope(|s| {
            let loader = s.spawn(|| load_modules(&params, &stub_chips, early));
            if let Err(e) = v
                .check_entries(root, |p| !verify::is_module_input(p))
                .and_then(|()| v.check_nothing_unlisted(root))
            {
                refuse(error_chain(&e));
            }
            say(format_args!(
                "image verified: {} entries, farm {}, signed by {}",
                v.manifest.entries.len(),
                v.manifest.farm,
                nodus_identity::AccountId::from(v.signer)
            ));
            if let Ok(Some(early)) = loader.join() {
                release_links(early);
            }
        });
        bring_up_i2c(&stub_chips);
        let rt = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => refuse(format_args!("cannot start the runtime: {e}")),
        };
        let how = rt.block_on(supervise(params));
        sys::kill_all();
        say(format_args!("{how:?}"));
        sys::end(how)
    }

    fn error_chain(e: &dyn std::error::Error) -> String {
        let mut s = e.to_string();
        let mut src = e.source();
        while let Some(c) = src {
            s.push_str(": ");
            s.push_str(&c.to_string());
            src = c.source();
        }
        s
    }
}
