//! The `org.nodus.Agent1` service and the logind power proxy on a private
//! `dbus-daemon`, checked from outside with `busctl` and a zbus client.
//!
//! Heavy tier: needs `dbus-daemon` and `busctl` (scripts/test.sh installs both);
//! skips with a printed reason when either is missing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    io::{BufRead, BufReader},
    os::unix::fs::PermissionsExt,
    path::Path,
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use futures_util::StreamExt;
use nodus_agent::{
    api::dbus::{
        BUS_NAME, BusChoice, DbusError, DbusService, DbusState, IdentifyFailed, IdentifyHook,
        OBJECT_PATH, SYSTEM_BUS_POLICY,
    },
    capacity::Capacity,
    hal::SysRoot,
    health::{Finding, Health, Level},
    inventory::{self, Mode},
    power::logind::{self, Backend},
};
use tokio::sync::mpsc;
use zbus::{connection, interface, proxy};

/// A failure bound, not a wait: every await below completes as soon as its event
/// arrives.
const BOUND: Duration = Duration::from_secs(20);

fn have(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn tools_missing() -> Option<String> {
    ["dbus-daemon", "busctl"]
        .into_iter()
        .find(|c| !have(c))
        .map(|c| format!("skipped: `{c}` not installed (scripts/test.sh installs it)"))
}

/// A private bus: `dbus-daemon --session` on a socket in a temporary directory,
/// killed on drop.
struct PrivateBus {
    child: Child,
    address: String,
    _dir: tempfile::TempDir,
}

impl PrivateBus {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("bus");
        let mut child = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--print-address"])
            .arg(format!("--address=unix:path={}", sock.display()))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        // The daemon prints its address once it listens: reading that line is the
        // readiness signal.
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let address = line.trim().to_owned();
        assert!(address.starts_with("unix:"), "dbus-daemon printed {line:?}");
        Self {
            child,
            address,
            _dir: dir,
        }
    }

    /// A bus with the system bus's deny-by-default rules plus our
    /// [`SYSTEM_BUS_POLICY`], reachable by every user.
    fn start_system_like() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(dir.path().join("org.nodus.Agent1.conf"), SYSTEM_BUS_POLICY).unwrap();
        let config = dir.path().join("bus.conf");
        // The default policy of Debian's system.conf, reduced to what matters here.
        std::fs::write(
            &config,
            format!(
                r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <listen>unix:path={dir}/bus</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus"/>
  </policy>
  <include>{dir}/org.nodus.Agent1.conf</include>
</busconfig>
"#,
                dir = dir.path().display()
            ),
        )
        .unwrap();
        let mut child = Command::new("dbus-daemon")
            .args(["--nofork", "--print-address"])
            .arg(format!("--config-file={}", config.display()))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let address = line.trim().to_owned();
        assert!(address.starts_with("unix:"), "dbus-daemon printed {line:?}");
        Self {
            child,
            address,
            _dir: dir,
        }
    }

    async fn client(&self) -> zbus::Connection {
        connection::Builder::address(self.address.as_str())
            .build()
            .await
            .unwrap()
    }
}

impl Drop for PrivateBus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn busctl(address: &str, args: &[&str]) -> String {
    let out = tokio::process::Command::new("busctl")
        .arg(format!("--address={address}"))
        .args(args)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "busctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

async fn get_property(address: &str, name: &str) -> String {
    busctl(
        address,
        &[
            "get-property",
            BUS_NAME,
            OBJECT_PATH,
            "org.nodus.Agent1",
            name,
        ],
    )
    .await
    .trim()
    .to_owned()
}

fn state(root: &Path, health: Health, power_watts: Option<f64>) -> DbusState {
    let inventory = Arc::new(inventory::collect(&SysRoot::at(root).unwrap()));
    let mut capacity = Capacity {
        cru: 8,
        mru_bytes: 16 << 30,
        sru_bytes: 512 << 30,
        ..Capacity::default()
    };
    capacity.reserved.cru = 1;
    capacity.available.cru = 7;
    DbusState {
        node_id: "node-test-1".into(),
        mode: Mode::Managed,
        health,
        capacity,
        power_watts,
        inventory,
    }
}

/// The client's view of the interface.
#[proxy(
    interface = "org.nodus.Agent1",
    default_service = "org.nodus.Agent1",
    default_path = "/org/nodus/Agent1"
)]
trait Agent1 {
    #[zbus(property)]
    fn health(&self) -> zbus::Result<String>;

    #[zbus(signal, name = "HealthChanged")]
    fn health_transition(&self, old: String, new: String, reason: String) -> zbus::Result<()>;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent1_is_introspectable_serves_properties_and_signals_health() {
    if let Some(why) = tools_missing() {
        println!("{why}");
        return;
    }
    let bus = PrivateBus::start();
    let root = tempfile::tempdir().unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let hook: IdentifyHook = {
        let calls = calls.clone();
        Arc::new(move || {
            calls.fetch_add(1, Ordering::SeqCst);
            Ok(())
        })
    };
    let choice: BusChoice = bus.address.parse().unwrap();
    let handle = DbusService::start(
        choice,
        state(root.path(), Health::default(), Some(42.5)),
        hook,
    )
    .await
    .unwrap();

    // Introspection lists every member.
    let intro = busctl(&bus.address, &["introspect", BUS_NAME, OBJECT_PATH]).await;
    for (member, kind) in [
        (".NodeId", "property"),
        (".Mode", "property"),
        (".Health", "property"),
        (".Capacity", "property"),
        (".PowerWatts", "property"),
        (".Snapshot", "method"),
        (".Identify", "method"),
        (".HealthChanged", "signal"),
    ] {
        let line = intro
            .lines()
            .find(|l| l.split_whitespace().next() == Some(member))
            .unwrap_or_else(|| panic!("{member} missing from introspection:\n{intro}"));
        assert!(line.contains(kind), "{member} is not a {kind}: {line}");
    }
    assert!(intro.contains("org.nodus.Agent1"), "{intro}");

    // Properties.
    assert_eq!(
        get_property(&bus.address, "NodeId").await,
        r#"s "node-test-1""#
    );
    assert_eq!(get_property(&bus.address, "Mode").await, r#"s "managed""#);
    assert_eq!(get_property(&bus.address, "Health").await, r#"s "ok""#);
    assert_eq!(get_property(&bus.address, "PowerWatts").await, "d 42.5");
    let cap = get_property(&bus.address, "Capacity").await;
    assert!(cap.starts_with("a{st} 13 "), "{cap}");
    for kv in [
        r#""cru" 8 "#,
        r#""reserved_cru" 1 "#,
        r#""available_cru" 7 "#,
        r#""mru_bytes" 17179869184 "#,
    ] {
        assert!(cap.contains(kv), "{kv} not in {cap}");
    }

    // Snapshot() is the inventory as JSON.
    let reply = busctl(
        &bus.address,
        &[
            "--json=short",
            "call",
            BUS_NAME,
            OBJECT_PATH,
            "org.nodus.Agent1",
            "Snapshot",
        ],
    )
    .await;
    let reply: serde_json::Value = serde_json::from_str(&reply).unwrap();
    assert_eq!(reply["type"], "s");
    let inv: serde_json::Value = serde_json::from_str(reply["data"][0].as_str().unwrap()).unwrap();
    assert!(inv.get("capacity").is_some(), "{inv}");
    assert!(inv.get("disks").is_some(), "{inv}");

    // Identify() calls the daemon's hook once per call.
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    busctl(
        &bus.address,
        &[
            "call",
            BUS_NAME,
            OBJECT_PATH,
            "org.nodus.Agent1",
            "Identify",
        ],
    )
    .await;
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    // A health change: HealthChanged and PropertiesChanged for Health.
    let client = bus.client().await;
    let proxy = Agent1Proxy::new(&client).await.unwrap();
    let mut transitions = proxy.receive_health_transition().await.unwrap();
    let mut health_prop = proxy.receive_health_changed().await;
    let critical = Health::from_findings(vec![Finding {
        component: "disk sda".into(),
        level: Level::Critical,
        reason: "SMART failing".into(),
    }]);
    handle
        .update(state(root.path(), critical, None))
        .await
        .unwrap();

    let sig = tokio::time::timeout(BOUND, transitions.next())
        .await
        .expect("HealthChanged within the bound")
        .unwrap();
    let args = sig.args().unwrap();
    assert_eq!(args.old(), "ok");
    assert_eq!(args.new(), "critical");
    assert!(args.reason().contains("disk sda"), "{}", args.reason());

    // The property stream may first yield the value cached before the update.
    tokio::time::timeout(BOUND, async {
        loop {
            let change = health_prop.next().await.unwrap();
            if change.get().await.unwrap() == "critical" {
                break;
            }
        }
    })
    .await
    .expect("PropertiesChanged for Health within the bound");

    assert_eq!(
        get_property(&bus.address, "Health").await,
        r#"s "critical""#
    );
    // No meter: NaN, not an error.
    assert_eq!(get_property(&bus.address, "PowerWatts").await, "d nan");

    handle.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identify_hook_failure_reaches_the_caller_and_second_agent_is_refused() {
    if let Some(why) = tools_missing() {
        println!("{why}");
        return;
    }
    let bus = PrivateBus::start();
    let root = tempfile::tempdir().unwrap();
    let hook: IdentifyHook = Arc::new(|| Err(IdentifyFailed("No screen attached".into())));
    let first = DbusService::start(
        bus.address.parse().unwrap(),
        state(root.path(), Health::default(), None),
        hook.clone(),
    )
    .await
    .unwrap();

    let out = tokio::process::Command::new("busctl")
        .arg(format!("--address={}", bus.address))
        .args([
            "call",
            BUS_NAME,
            OBJECT_PATH,
            "org.nodus.Agent1",
            "Identify",
        ])
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("No screen attached"), "{err}");

    let second = DbusService::start(
        bus.address.parse().unwrap(),
        state(root.path(), Health::default(), None),
        hook,
    )
    .await;
    assert!(
        matches!(second, Err(DbusError::Name { .. })),
        "{:?}",
        second.err()
    );
    first.stop().await.unwrap();
}

/// busctl as `nobody`, who is neither root nor in the `nodus` group.
async fn busctl_as_nobody(address: &str, args: &[&str]) -> std::process::Output {
    tokio::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "busctl"])
        .arg(format!("--address={address}"))
        .args(args)
        .output()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn system_bus_policy_lets_root_own_everyone_read_and_only_operators_identify() {
    if let Some(why) = tools_missing() {
        println!("{why}");
        return;
    }
    if !have("setpriv") || !nix::unistd::geteuid().is_root() {
        println!("skipped: needs root and `setpriv` to act as another user");
        return;
    }
    let bus = PrivateBus::start_system_like();
    let root = tempfile::tempdir().unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let hook: IdentifyHook = {
        let calls = calls.clone();
        Arc::new(move || {
            calls.fetch_add(1, Ordering::SeqCst);
            Ok(())
        })
    };
    // Root may own the name under the policy.
    let handle = DbusService::start(
        bus.address.parse().unwrap(),
        state(root.path(), Health::default(), None),
        hook,
    )
    .await
    .unwrap();

    let read = busctl_as_nobody(
        &bus.address,
        &[
            "get-property",
            BUS_NAME,
            OBJECT_PATH,
            "org.nodus.Agent1",
            "Mode",
        ],
    )
    .await;
    assert!(
        read.status.success(),
        "{}",
        String::from_utf8_lossy(&read.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&read.stdout).trim(),
        r#"s "managed""#
    );

    let identify = busctl_as_nobody(
        &bus.address,
        &[
            "call",
            BUS_NAME,
            OBJECT_PATH,
            "org.nodus.Agent1",
            "Identify",
        ],
    )
    .await;
    assert!(!identify.status.success());
    let err = String::from_utf8_lossy(&identify.stderr);
    assert!(err.contains("denied") || err.contains("Access"), "{err}");
    assert_eq!(calls.load(Ordering::SeqCst), 0);

    // Root is an operator.
    busctl(
        &bus.address,
        &[
            "call",
            BUS_NAME,
            OBJECT_PATH,
            "org.nodus.Agent1",
            "Identify",
        ],
    )
    .await;
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    handle.stop().await.unwrap();
}

/// A stand-in for systemd-logind's manager that records the calls it gets.
struct FakeLogind {
    calls: mpsc::UnboundedSender<(&'static str, bool)>,
}

#[interface(name = "org.freedesktop.login1.Manager")]
impl FakeLogind {
    fn reboot(&self, interactive: bool) {
        self.calls.send(("Reboot", interactive)).unwrap();
    }

    fn power_off(&self, interactive: bool) {
        self.calls.send(("PowerOff", interactive)).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn power_goes_through_logind_when_it_owns_its_name() {
    if let Some(why) = tools_missing() {
        println!("{why}");
        return;
    }
    let bus = PrivateBus::start();

    // No logind on the bus yet, and no bus at all: the syscall fallback is chosen
    // (and never built or run here).
    assert!(matches!(
        logind::choose(Some(bus.client().await)).await,
        Backend::Syscall
    ));
    assert!(matches!(logind::choose(None).await, Backend::Syscall));

    let (tx, mut rx) = mpsc::unbounded_channel();
    let _logind = connection::Builder::address(bus.address.as_str())
        .serve_at(logind::LOGIND_PATH, FakeLogind { calls: tx })
        .name(logind::LOGIND_NAME)
        .build()
        .await
        .unwrap();

    let backend = logind::choose(Some(bus.client().await)).await;
    assert!(matches!(backend, Backend::Logind(_)), "{backend:?}");
    let power = backend.into_control();

    power.reboot().await.unwrap();
    let call = tokio::time::timeout(BOUND, rx.recv()).await.unwrap();
    assert_eq!(call, Some(("Reboot", false)));

    power.power_off().await.unwrap();
    let call = tokio::time::timeout(BOUND, rx.recv()).await.unwrap();
    assert_eq!(call, Some(("PowerOff", false)));
}
