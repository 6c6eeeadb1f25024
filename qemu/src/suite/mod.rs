//! `nodus qemu test`: boot each profile with the node image, check `[expect]`
//! from the snapshot a remote console receives, play `[[faults]]` through QMP and
//! check the agent's reaction. Every check is one [`Check`] (a `PASS`/`FAIL`
//! line).

pub mod expect;

use std::{
    fmt,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use nodus_hw_profiles::{
    Profile,
    schema::{Bus, FaultAction, RawFault},
};
use nodus_identity::{AccountId, Keystore, Passphrase, PublicKey, SecretKey, keystore::KdfParams};
use serde_json::Value;

use crate::{
    agent_view::{AgentView, End, ViewState},
    kernel::KernelPaths,
    qmp::{
        Qmp,
        commands::{DeviceDel, HumanMonitorCommand, QomSet, SetLink, SystemPowerdown},
    },
    serial::{Ready, SerialWatch},
    vm::{Accel, Launch, Serial, Vm, argv::base_cmdline, disk_device, disk_drive, nic_device},
};

/// How long a failed disk may take to show (issue: 10 s).
pub const DISK_FAIL_WITHIN: Duration = Duration::from_secs(10);
/// How long a link loss may take to show (issue: 2 s).
pub const LINK_DOWN_WITHIN: Duration = Duration::from_secs(2);
/// A link coming back; carrier is immediate, so the same order as link loss,
/// with room for the guest's driver to renegotiate.
pub const LINK_UP_WITHIN: Duration = Duration::from_secs(5);
/// A NIC whose link came up gets its DHCP lease, and the agent shows the
/// address at its next inventory pass (every 10 s).
pub const LEASE_WITHIN: Duration = Duration::from_secs(30);
/// A SMART warning is seen when the agent next reads SMART.
pub const SMART_WITHIN: Duration = Duration::from_secs(60);
/// The power button: the agent stops its services and says goodbye.
pub const GOODBYE_WITHIN: Duration = Duration::from_secs(60);
/// …and the guest powers off.
pub const POWEROFF_WITHIN: Duration = Duration::from_secs(90);
/// `[expect]` that does not hold on the first snapshot may settle this long.
/// The inventory is a pass behind the hardware: a NIC that gets carrier as the
/// console connects (an e1000e autonegotiates for seconds) is in the pass its
/// link event triggers, and anything else in the next timed pass (every 10 s).
pub const EXPECT_SETTLE: Duration = Duration::from_secs(10);
/// Connecting over QUIC after the ready line (DHCP may still be finishing).
pub const CONNECT_WITHIN: Duration = Duration::from_secs(60);

/// The passphrase of the throwaway keystores the harness writes (boot key, the
/// console key of `nodus qemu run`). They protect nothing: each lives in a
/// temporary directory for one run.
pub const THROWAWAY_PASSPHRASE: &str = "nodus-qemu";

/// One checked claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// What was checked (`cru`, `disk_fail hdd1` …).
    pub name: String,
    /// Whether it held.
    pub ok: bool,
    /// Expected and observed values.
    pub detail: String,
}

impl Check {
    /// A check result.
    pub fn new(name: &str, ok: bool, detail: impl Into<String>) -> Self {
        Self {
            name: name.to_owned(),
            ok,
            detail: detail.into(),
        }
    }
}

/// A check of one profile, printed as one line.
#[derive(Debug, Clone)]
pub struct Line<'a> {
    /// The profile name.
    pub profile: &'a str,
    /// The check.
    pub check: &'a Check,
}

impl fmt::Display for Line<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {} ({})",
            if self.check.ok { "PASS" } else { "FAIL" },
            self.profile,
            self.check.name,
            self.check.detail
        )
    }
}

/// Why the suite could not even start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SuiteError {
    /// A temporary file or key could not be written.
    #[error("Cannot prepare the image directory")]
    Prepare(#[source] std::io::Error),
    /// The boot key could not be sealed or read.
    #[error("Boot key")]
    Key(#[from] nodus_identity::KeystoreError),
    /// A key could not be generated.
    #[error("Key generation")]
    KeyGen(#[from] nodus_identity::KeyError),
    /// `nodus netboot build-image` failed.
    #[error("Building the node image failed: {0}")]
    Build(String),
    /// The image directory lacks the kernel or initramfs.
    #[error("Image directory {0} has no vmlinuz and initramfs")]
    NotAnImage(PathBuf),
}

/// A node image ready to boot.
#[derive(Debug)]
pub struct Image {
    /// The kernel.
    pub kernel: PathBuf,
    /// The initramfs.
    pub initramfs: PathBuf,
    /// The key the image's manifests are signed with (`nodus.boot_key=`).
    pub boot_key: PublicKey,
    _dir: Option<tempfile::TempDir>,
}

impl Image {
    /// An existing image directory (`vmlinuz`, `initramfs`) signed with `boot_key`.
    pub fn existing(dir: &Path, boot_key: PublicKey) -> Result<Self, SuiteError> {
        let kernel = dir.join("vmlinuz");
        let initramfs = dir.join("initramfs");
        if !kernel.is_file() || !initramfs.is_file() {
            return Err(SuiteError::NotAnImage(dir.to_owned()));
        }
        Ok(Self {
            kernel,
            initramfs,
            boot_key,
            _dir: None,
        })
    }

    /// Builds an image with `nodus netboot build-image` (the `nodus` binary
    /// given), signed with a fresh throwaway boot key.
    pub async fn build(nodus: &Path, kernel: &KernelPaths) -> Result<Self, SuiteError> {
        let dir = tempfile::Builder::new()
            .prefix("nodus-qemu-image-")
            .tempdir()
            .map_err(SuiteError::Prepare)?;
        let key = SecretKey::generate()?;
        let keystore = dir.path().join("boot.key");
        // A throwaway key for one test run: the cheapest KDF the keystore accepts,
        // and a passphrase that only has to be non-empty.
        Keystore::create(
            &keystore,
            &key,
            &Passphrase::new(THROWAWAY_PASSPHRASE),
            KdfParams::FLOOR,
        )?;
        let out = dir.path().join("image");
        let guest_nodus = stripped_copy(nodus, dir.path()).await;
        let res = tokio::process::Command::new(nodus)
            .args(["netboot", "build-image", "--nodus"])
            .arg(&guest_nodus)
            .arg("--kernel")
            .arg(&kernel.kernel)
            .arg("--modules")
            .arg(&kernel.modules)
            .arg("--boot-key")
            .arg(&keystore)
            .arg("--out")
            .arg(&out)
            .env("NODUS_PASSPHRASE", THROWAWAY_PASSPHRASE)
            .output()
            .await
            .map_err(|e| SuiteError::Build(format!("cannot run {}: {e}", nodus.display())))?;
        if !res.status.success() {
            return Err(SuiteError::Build(
                String::from_utf8_lossy(&res.stderr).trim().to_owned(),
            ));
        }
        let mut img = Self::existing(&out, key.public())?;
        img._dir = Some(dir);
        Ok(img)
    }
}

/// A stripped copy of `nodus` for the guest: a dev build carries ~80 MB of line
/// tables, any build several MB of symbols, that the guest's kernel would unpack
/// and the init would hash on every boot under TCG (the init starts the agent
/// without `RUST_BACKTRACE`, so the symbols would serve nothing). Falls back to
/// the binary itself when `strip` (binutils) is missing.
async fn stripped_copy(nodus: &Path, dir: &Path) -> PathBuf {
    let copy = dir.join("nodus");
    let ok = tokio::process::Command::new("strip")
        .arg("--strip-all")
        .arg("-o")
        .arg(&copy)
        .arg(nodus)
        .status()
        .await
        .is_ok_and(|s| s.success());
    if ok {
        copy
    } else {
        tracing::info!("strip unavailable; the image carries nodus with its debug sections");
        nodus.to_owned()
    }
}

/// Suite options.
#[derive(Debug, Clone)]
pub struct Options {
    /// The accelerator.
    pub accel: Accel,
    /// How long the guest may take to print the agent's ready line.
    pub boot_timeout: Duration,
    /// Keep the VM directory (serial log, disks) of a profile with a failure.
    pub keep_failed: bool,
}

/// What one profile's run measured.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Every check, in order.
    pub checks: Vec<Check>,
    /// QEMU start → the agent's snapshot over QUIC.
    pub ready_after: Option<Duration>,
    /// The VM directory kept for a post-mortem.
    pub kept: Option<PathBuf>,
}

impl Outcome {
    /// Whether every check passed (and there was at least one).
    pub fn passed(&self) -> bool {
        !self.checks.is_empty() && self.checks.iter().all(|c| c.ok)
    }
}

/// The kernel command line for `profile` booting `image` with `owner` authorized.
pub fn node_cmdline(profile: &Profile, image: &Image, owner: &PublicKey) -> Vec<String> {
    let mut c = base_cmdline(profile);
    c.push("quiet".into());
    c.push(format!(
        "nodus.boot_key={}",
        AccountId::from(image.boot_key)
    ));
    c.push(format!("nodus.owner={}", AccountId::from(*owner)));
    c.push("nodus.mode=managed".into());
    c
}

/// Console lines after which the guest will never become ready: waiting on
/// would only burn the boot timeout.
fn is_fatal(line: &str) -> bool {
    [
        "reboot: System halted",
        "Kernel panic",
        "reboot: Power down",
    ]
    .iter()
    .any(|m| line.contains(m))
}

/// Boots the node image and connects to the agent: the common start of `test`,
/// `run` and the benchmark. `report` gets the boot checks as they happen.
pub async fn boot_and_connect(
    profile: &Profile,
    image: &Image,
    owner: &SecretKey,
    opts: &Options,
    serial: Serial,
    report: &mut dyn FnMut(&Check),
) -> (Option<Vm>, Option<(Ready, AgentView)>, Vec<Check>) {
    let mut checks = Vec::new();
    let mut push = |c: Check, checks: &mut Vec<Check>| {
        report(&c);
        checks.push(c);
    };
    let launch = Launch {
        kernel: image.kernel.clone(),
        initrd: image.initramfs.clone(),
        cmdline: node_cmdline(profile, image, &owner.public()),
        accel: opts.accel,
        serial,
        quic_port: Some(0),
        paused: true,
    };
    let mut vm = match Vm::start(profile, launch).await {
        Ok(vm) => vm,
        Err(e) => {
            push(Check::new("qemu starts", false, e.to_string()), &mut checks);
            return (None, None, checks);
        }
    };
    let mut watch = SerialWatch::new(vm.serial_log());
    let line = watch
        .wait_for(
            |l| Ready::parse(l).is_some() || is_fatal(l),
            opts.boot_timeout,
            || vm.has_exited(),
        )
        .await;
    let Some(ready) = line.as_deref().and_then(Ready::parse) else {
        let log = std::fs::read_to_string(vm.serial_log()).unwrap_or_default();
        push(
            Check::new(
                "agent ready line on the console",
                false,
                format!(
                    "none ({}); console tail: {}",
                    match &line {
                        Some(l) => format!("guest stopped: {l}"),
                        None => format!("within {:?}", opts.boot_timeout),
                    },
                    crate::vm::tail(&log, 600).replace('\n', " | ")
                ),
            ),
            &mut checks,
        );
        return (Some(vm), None, checks);
    };
    push(
        Check::new(
            "agent ready line on the console",
            true,
            format!(
                "node {} after {:.1} s",
                ready.node,
                vm.started().elapsed().as_secs_f64()
            ),
        ),
        &mut checks,
    );
    let Some(addr) = vm.quic_addr() else {
        push(
            Check::new("agent answers over QUIC", false, "no NIC has link at boot"),
            &mut checks,
        );
        return (Some(vm), None, checks);
    };
    match AgentView::connect(addr, *ready.node.key(), owner, CONNECT_WITHIN).await {
        Ok(view) => {
            push(
                Check::new(
                    "agent answers over QUIC",
                    true,
                    format!(
                        "snapshot via {addr} {:.1} s after QEMU start",
                        view.ready_at.duration_since(vm.started()).as_secs_f64()
                    ),
                ),
                &mut checks,
            );
            (Some(vm), Some((ready, view)), checks)
        }
        Err(e) => {
            push(
                Check::new("agent answers over QUIC", false, e.to_string()),
                &mut checks,
            );
            (Some(vm), None, checks)
        }
    }
}

/// `[expect]` on the first snapshot; if some of it does not hold, on the first
/// inventory within [`EXPECT_SETTLE`] where all of it does (or the last one
/// seen). A check that only held later says how much later.
async fn settled_expect(profile: &Profile, view: &mut AgentView) -> Vec<Check> {
    let first = expect::expect_checks(profile, &view.current().inventory);
    if first.iter().all(|c| c.ok) {
        return first;
    }
    let since = Instant::now();
    let all_hold = |s: &ViewState| {
        expect::expect_checks(profile, &s.inventory)
            .iter()
            .all(|c| c.ok)
    };
    let (Ok(state) | Err(state)) = view.wait_for(all_hold, EXPECT_SETTLE).await;
    let after = since.elapsed().as_secs_f64();
    expect::expect_checks(profile, &state.inventory)
        .into_iter()
        .zip(first)
        .map(|(mut now, then)| {
            if now.ok && !then.ok {
                now.detail = format!(
                    "{}; held {after:.1} s after the first snapshot ({})",
                    now.detail, then.detail
                );
            }
            now
        })
        .collect()
}

/// Runs one profile: boot, `[expect]`, faults. `report` sees each check as it is
/// made.
pub async fn run_profile(
    profile: &Profile,
    image: &Image,
    opts: &Options,
    report: &mut dyn FnMut(&Check),
) -> Outcome {
    let mut out = Outcome::default();
    let owner = match SecretKey::generate() {
        Ok(k) => k,
        Err(e) => {
            let c = Check::new("console key", false, e.to_string());
            report(&c);
            out.checks.push(c);
            return out;
        }
    };
    let (vm, agent, checks) =
        boot_and_connect(profile, image, &owner, opts, Serial::File, report).await;
    out.checks = checks;
    let Some(mut vm) = vm else {
        return out;
    };
    let mut last_inventory = None;
    if let Some((_, mut view)) = agent {
        out.ready_after = Some(view.ready_at.duration_since(vm.started()));
        for c in settled_expect(profile, &mut view).await {
            report(&c);
            out.checks.push(c);
        }
        let mut faults: Vec<&RawFault> = profile.raw.faults.iter().collect();
        faults.sort_by(|a, b| a.at_s.total_cmp(&b.at_s));
        for f in faults {
            let at = view.ready_at + Duration::from_secs_f64(f.at_s);
            tokio::time::sleep_until(at.into()).await;
            let checks = play(profile, f, &mut vm, &mut view).await;
            let stop = f.action == FaultAction::PowerButton;
            for c in checks {
                report(&c);
                out.checks.push(c);
            }
            if stop {
                break;
            }
        }
        last_inventory = Some(view.current().inventory);
    }
    if opts.keep_failed && !out.passed() {
        out.kept = vm.keep_dir();
        if let (Some(dir), Some(inv)) = (&out.kept, &last_inventory) {
            // Best effort: the post-mortem gets the agent's last word too.
            let _ = std::fs::write(dir.join("last-inventory.json"), inv.to_string());
        }
    }
    out
}

/// After a timed check failed, how much longer to watch, so the FAIL line says
/// whether the reaction was late or absent.
const LATE_GRACE: Duration = Duration::from_secs(15);

/// Whether the NIC with `mac` shows an IPv4 address.
fn has_ipv4(inv: &Value, mac: &str) -> bool {
    expect::nic_by_mac(inv, mac).is_some_and(|n| {
        n["addresses"].as_array().is_some_and(|a| {
            a.iter()
                .any(|x| x.as_str().is_some_and(|x| x.contains('.')))
        })
    })
}

/// How many times `line` is in the VM's serial log so far.
fn serial_count(vm: &Vm, line: &str) -> usize {
    std::fs::read_to_string(vm.serial_log())
        .unwrap_or_default()
        .matches(line)
        .count()
}

async fn late(
    view: &mut AgentView,
    failed: bool,
    ok: impl FnMut(&crate::agent_view::ViewState) -> bool,
    t0: Instant,
) -> String {
    if !failed {
        return String::new();
    }
    match view.wait_for(ok, LATE_GRACE).await {
        Ok(_) => format!(" (seen late, after {:.1} s)", t0.elapsed().as_secs_f64()),
        Err(_) => format!(" (not seen {LATE_GRACE:?} later either)"),
    }
}

async fn play(profile: &Profile, f: &RawFault, vm: &mut Vm, view: &mut AgentView) -> Vec<Check> {
    let target = f.target.clone().unwrap_or_default();
    let name = match f.action {
        FaultAction::DiskFail => format!("disk_fail {target}"),
        FaultAction::LinkDown => format!("link_down {target}"),
        FaultAction::LinkUp => format!("link_up {target}"),
        FaultAction::SmartWarning => format!("smart_warning {target}"),
        FaultAction::PowerButton => "power_button".to_owned(),
    };
    let fail = |detail: String| vec![Check::new(&name, false, detail)];
    match f.action {
        FaultAction::DiskFail => {
            let Some(disk) = profile.raw.disks.iter().find(|d| d.id == target) else {
                return fail("no such disk".into());
            };
            let before = view.current().inventory;
            let cap_before = expect::storage_bytes(&before);
            let kname = expect::disk_by_serial(&before, &disk.serial)
                .and_then(|d| d["name"].as_str())
                .map(str::to_owned);
            // AHCI ports cannot unplug: the drive's backend goes instead, and the
            // guest sees a disk that fails every command.
            let res = if disk.bus == Bus::Sata {
                vm.qmp()
                    .execute(&HumanMonitorCommand {
                        command_line: format!("drive_del {}", disk_drive(&disk.id)),
                    })
                    .await
                    .map(|_| ())
            } else {
                vm.qmp()
                    .execute(&DeviceDel {
                        id: disk_device(&disk.id),
                    })
                    .await
                    .map(|_| ())
            };
            if let Err(e) = res {
                return fail(format!("QMP: {e}"));
            }
            let t0 = Instant::now();
            let serial = disk.serial.clone();
            // Seen: the disk is gone, a health finding names it, or it stopped
            // being offered (a SATA disk whose backend went away stays listed but
            // fails every read).
            let seen = |inv: &Value| {
                let entry = expect::disk_by_serial(inv, &serial);
                let flagged = kname
                    .as_deref()
                    .is_some_and(|n| expect::finding_for(inv, &format!("disk {n}")).is_some());
                entry.is_none() || flagged || entry.is_some_and(|d| d["eligible"] == false)
            };
            let ok = |s: &crate::agent_view::ViewState| {
                seen(&s.inventory) && expect::storage_bytes(&s.inventory) < cap_before
            };
            let r = view.wait_for(ok, DISK_FAIL_WITHIN).await;
            let late = late(view, r.is_err(), ok, t0).await;
            match r {
                Ok(s) => vec![Check::new(
                    &name,
                    true,
                    format!(
                        "seen after {:.1} s, storage {} → {} bytes",
                        t0.elapsed().as_secs_f64(),
                        cap_before,
                        expect::storage_bytes(&s.inventory)
                    ),
                )],
                Err(s) => fail(format!(
                    "within {DISK_FAIL_WITHIN:?}: disk seen failed {}, storage {} → {} bytes{late}",
                    seen(&s.inventory),
                    cap_before,
                    expect::storage_bytes(&s.inventory)
                )),
            }
        }
        FaultAction::LinkDown | FaultAction::LinkUp => {
            let up = f.action == FaultAction::LinkUp;
            let Some(nic) = profile.raw.nics.iter().find(|n| n.id == target) else {
                return fail("no such NIC".into());
            };
            // A NIC coming back with an address (its carrier went, the lease
            // stayed) must have that lease checked with the DHCP server (netup's
            // INIT-REBOOT), which the init reports on the serial console.
            let recheck = (up && has_ipv4(&view.current().inventory, &nic.mac))
                .then(|| {
                    expect::nic_by_mac(&view.current().inventory, &nic.mac)
                        .and_then(|n| n["name"].as_str())
                        .map(|iface| {
                            let line = format!("lease confirmed: {iface} ");
                            let before = serial_count(vm, &line);
                            (line, before)
                        })
                })
                .flatten();
            if let Err(e) = vm
                .qmp()
                .execute(&SetLink {
                    name: nic_device(&nic.id),
                    up,
                })
                .await
            {
                return fail(format!("QMP: {e}"));
            }
            let t0 = Instant::now();
            let within = if up { LINK_UP_WITHIN } else { LINK_DOWN_WITHIN };
            let mac = nic.mac.clone();
            let kname = expect::nic_by_mac(&view.current().inventory, &mac)
                .and_then(|n| n["name"].as_str())
                .map(|n| format!("nic {n}"));
            // Seen: the NIC's carrier in the inventory, or (link loss) a health
            // finding about that NIC.
            let ok = |s: &crate::agent_view::ViewState| {
                let carrier =
                    expect::nic_by_mac(&s.inventory, &mac).is_some_and(|n| n["carrier"] == up);
                let finding = kname
                    .as_deref()
                    .and_then(|k| expect::finding_for(&s.inventory, k))
                    .is_some();
                carrier || (!up && finding)
            };
            let r = view.wait_for(ok, within).await;
            let late = late(view, r.is_err(), ok, t0).await;
            match r {
                Ok(_) if up => {
                    let carrier = Check::new(
                        &name,
                        true,
                        format!(
                            "carrier {up} seen after {:.2} s",
                            t0.elapsed().as_secs_f64()
                        ),
                    );
                    // A NIC that had no link at boot is still configured once it
                    // has one: its DHCP lease shows as an IPv4 address.
                    let leased = |s: &crate::agent_view::ViewState| has_ipv4(&s.inventory, &mac);
                    let lease = match view.wait_for(leased, LEASE_WITHIN).await {
                        Ok(s) => Check::new(
                            &format!("{name}: lease"),
                            true,
                            format!(
                                "{} after {:.1} s",
                                expect::nic_by_mac(&s.inventory, &mac)
                                    .map_or_else(String::new, |n| n["addresses"].to_string()),
                                t0.elapsed().as_secs_f64()
                            ),
                        ),
                        Err(_) => Check::new(
                            &format!("{name}: lease"),
                            false,
                            format!("no IPv4 address within {LEASE_WITHIN:?}"),
                        ),
                    };
                    let mut checks = vec![carrier, lease];
                    // A first lease is also an event every console sees
                    // (`network: eth0: IPv4 none -> 10.0.2.15/24`).
                    let iface = expect::nic_by_mac(&view.current().inventory, &mac)
                        .and_then(|n| n["name"].as_str())
                        .map(str::to_owned);
                    if recheck.is_none()
                        && checks[1].ok
                        && let Some(iface) = iface
                    {
                        let want = format!("network: {iface}: IPv4 none -> ");
                        let check = format!("{name}: address event");
                        let seen = |s: &crate::agent_view::ViewState| {
                            s.events.iter().any(|e| e.contains(&want))
                        };
                        checks.push(match view.wait_for(seen, EXPECT_SETTLE).await {
                            Ok(s) => Check::new(
                                &check,
                                true,
                                s.events
                                    .iter()
                                    .find(|e| e.contains(&want))
                                    .cloned()
                                    .unwrap_or_default(),
                            ),
                            Err(s) => Check::new(
                                &check,
                                false,
                                format!("no \"{want}…\" among the agent's events: {:?}", s.events),
                            ),
                        });
                    }
                    if let Some((line, before)) = recheck {
                        let check = format!("{name}: lease re-verified");
                        let deadline = t0 + LEASE_WITHIN;
                        checks.push(loop {
                            if serial_count(vm, &line) > before {
                                break Check::new(
                                    &check,
                                    true,
                                    format!(
                                        "\"{}\" on the console after {:.1} s",
                                        line.trim_end(),
                                        t0.elapsed().as_secs_f64()
                                    ),
                                );
                            }
                            if Instant::now() >= deadline {
                                break Check::new(
                                    &check,
                                    false,
                                    format!(
                                        "no \"{}\" on the console within {LEASE_WITHIN:?}",
                                        line.trim_end()
                                    ),
                                );
                            }
                            tokio::time::sleep(Duration::from_millis(200)).await;
                        });
                    }
                    checks
                }
                Ok(_) => vec![Check::new(
                    &name,
                    true,
                    format!(
                        "carrier {up} seen after {:.2} s",
                        t0.elapsed().as_secs_f64()
                    ),
                )],
                Err(s) => fail(format!(
                    "carrier {up} not seen within {within:?}; agent shows {}{late}",
                    expect::nic_by_mac(&s.inventory, &mac)
                        .map_or("no such NIC".into(), |n| n["carrier"].to_string())
                )),
            }
        }
        FaultAction::SmartWarning => {
            // Bit 0: available spare below threshold, a critical finding.
            if let Err(e) = vm
                .qmp()
                .execute(&QomSet {
                    path: format!("/machine/peripheral/{}", disk_device(&target)),
                    property: "smart_critical_warning".into(),
                    value: 1.into(),
                })
                .await
            {
                return fail(format!("QMP: {e}"));
            }
            let t0 = Instant::now();
            match view
                .wait_for(|s| expect::health(&s.inventory) == "critical", SMART_WITHIN)
                .await
            {
                Ok(_) => vec![Check::new(
                    &name,
                    true,
                    format!("health critical after {:.1} s", t0.elapsed().as_secs_f64()),
                )],
                Err(s) => fail(format!(
                    "health {} after {SMART_WITHIN:?}: {}",
                    expect::health(&s.inventory),
                    s.inventory["health"]["findings"]
                )),
            }
        }
        FaultAction::PowerButton => {
            let mut events = vm.qmp().events();
            if let Err(e) = vm.qmp().execute(&SystemPowerdown).await {
                return fail(format!("QMP: {e}"));
            }
            let t0 = Instant::now();
            let mut checks = Vec::new();
            let r = view.wait_for(|s| s.end.is_some(), GOODBYE_WITHIN).await;
            let end = r.unwrap_or_else(|s| s).end;
            checks.push(Check::new(
                "power_button: agent shuts down cleanly",
                matches!(end, Some(End::Goodbye(_))),
                match &end {
                    Some(End::Goodbye(r)) => {
                        format!("goodbye ({r}) after {:.1} s", t0.elapsed().as_secs_f64())
                    }
                    Some(End::Closed(r)) => format!("closed without goodbye: {r}"),
                    None => format!("still connected after {GOODBYE_WITHIN:?}"),
                },
            ));
            let shutdown = Qmp::wait_event(&mut events, "SHUTDOWN", POWEROFF_WITHIN).await;
            let exited = vm.wait_exit(Duration::from_secs(10)).await;
            checks.push(Check::new(
                "power_button: guest powers off",
                shutdown.as_ref().is_ok_and(|e| e.data["guest"] == true) && exited.is_some(),
                match &shutdown {
                    Ok(e) => format!(
                        "SHUTDOWN {} after {:.1} s, QEMU exited {}",
                        e.data["reason"],
                        t0.elapsed().as_secs_f64(),
                        exited.is_some()
                    ),
                    Err(e) => format!("no SHUTDOWN event: {e}"),
                },
            ));
            checks
        }
    }
}
