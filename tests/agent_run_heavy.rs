//! `nodus agent run` as a process: the ready line, `org.nodus.Agent1` on a
//! private `dbus-daemon` checked with `busctl`, exit codes for bad config, and a
//! clean exit on SIGTERM. Also `nodus id grant`, whose file the agent accepts.
//!
//! Heavy tier: needs `dbus-daemon` and `busctl` (scripts/test.sh installs them).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

mod common;

use common::{first_line, have, nodus};

struct Bus {
    child: Child,
    address: String,
    _dir: tempfile::TempDir,
}

impl Bus {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--print-address"])
            .arg(format!("--address=unix:path={}/bus", dir.path().display()))
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let line = first_line(&mut child);
        Self {
            child,
            address: line.trim().to_owned(),
            _dir: dir,
        }
    }
}

impl Drop for Bus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Agent {
    child: Child,
    ready: String,
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_agent(dir: &Path, extra: &[&str]) -> Agent {
    let mut child = nodus()
        .args(["agent", "run", "--listen", "127.0.0.1:0"])
        .arg("--socket")
        .arg(dir.join("agent.sock"))
        .arg("--key")
        .arg(dir.join("node.key"))
        .arg("--state-dir")
        .arg(dir.join("state"))
        .args(extra)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let line = first_line(&mut child);
    Agent {
        child,
        ready: line.trim().to_owned(),
    }
}

fn field<'a>(ready: &'a str, key: &str) -> &'a str {
    ready
        .split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key}= in {ready:?}"))
}

fn busctl(address: &str, args: &[&str]) -> String {
    let out = Command::new("busctl")
        .arg(format!("--address={address}"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "busctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn agent_serves_dbus_and_stops_cleanly_on_sigterm() {
    if !have("dbus-daemon") || !have("busctl") {
        eprintln!("skipped: dbus-daemon or busctl missing (scripts/test.sh installs them)");
        return;
    }
    let bus = Bus::start();
    let dir = tempfile::tempdir().unwrap();
    let mut agent = start_agent(dir.path(), &["--dbus-address", &bus.address]);
    assert!(
        agent.ready.starts_with("nodus-agent ready node=node1"),
        "{:?}",
        agent.ready
    );
    let node = field(&agent.ready, "node").to_owned();
    let quic = field(&agent.ready, "quic");
    assert!(
        quic.starts_with("127.0.0.1:") && !quic.ends_with(":0"),
        "{quic}"
    );
    assert_eq!(
        field(&agent.ready, "socket"),
        dir.path().join("agent.sock").display().to_string()
    );

    let names = busctl(&bus.address, &["list", "--no-pager"]);
    assert!(names.contains("org.nodus.Agent1"), "{names}");
    let intro = busctl(
        &bus.address,
        &[
            "introspect",
            "org.nodus.Agent1",
            "/org/nodus/Agent1",
            "--no-pager",
        ],
    );
    for member in [
        "NodeId",
        "Mode",
        "Health",
        "Capacity",
        "PowerWatts",
        "Snapshot",
        "Identify",
        "HealthChanged",
    ] {
        assert!(intro.contains(member), "{member} missing:\n{intro}");
    }
    let id = busctl(
        &bus.address,
        &[
            "get-property",
            "org.nodus.Agent1",
            "/org/nodus/Agent1",
            "org.nodus.Agent1",
            "NodeId",
        ],
    );
    assert_eq!(id.trim(), format!("s \"{node}\""));
    let mode = busctl(
        &bus.address,
        &[
            "get-property",
            "org.nodus.Agent1",
            "/org/nodus/Agent1",
            "org.nodus.Agent1",
            "Mode",
        ],
    );
    assert_eq!(mode.trim(), "s \"observe\"");
    // Identify over D-Bus lands in the audit-free event log; the call succeeds.
    busctl(
        &bus.address,
        &[
            "call",
            "org.nodus.Agent1",
            "/org/nodus/Agent1",
            "org.nodus.Agent1",
            "Identify",
        ],
    );

    // SIGTERM: exit 0, the socket is removed, the name leaves the bus.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(agent.child.id()).unwrap()),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = agent.child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "agent did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
    assert!(!dir.path().join("agent.sock").exists());
    let names = busctl(&bus.address, &["list", "--no-pager"]);
    assert!(!names.contains("org.nodus.Agent1"), "{names}");

    // The same key comes back on restart: the node's identity persists.
    let again = start_agent(dir.path(), &["--dbus-address", "none"]);
    assert_eq!(field(&again.ready, "node"), node);
}

#[test]
fn bad_config_names_the_field_and_exits_with_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("agent.toml");
    std::fs::write(&cfg, "listen = \"127.0.0.1:0\"\ncolour = \"blue\"\n").unwrap();
    let out = nodus()
        .args(["agent", "run", "--config"])
        .arg(&cfg)
        .args(["--dbus-address", "none"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("colour"), "{err}");

    let out = nodus()
        .args([
            "agent",
            "run",
            "--owner",
            "acct1nothing",
            "--dbus-address",
            "none",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--owner"),
        "{out:?}"
    );

    let out = nodus()
        .args(["agent", "run", "--config", "/nonexistent/agent.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(6), "{out:?}");
}

#[test]
fn id_grant_writes_a_file_the_owner_signed() {
    let dir = tempfile::tempdir().unwrap();
    let owner = dir.path().join("owner.key");
    let op = dir.path().join("op.key");
    for k in [&owner, &op] {
        let s = nodus()
            .args(["id", "new", "--keystore"])
            .arg(k)
            .output()
            .unwrap();
        assert!(s.status.success(), "{s:?}");
    }
    let show = |k: &Path| -> serde_json::Value {
        let out = nodus()
            .args(["--json", "id", "show", "--keystore"])
            .arg(k)
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let op_id = show(&op)["id"].as_str().unwrap().to_owned();
    let node = show(&op)["node_id"].as_str().unwrap().to_owned();
    let grant = dir.path().join("op.grant");
    let out = nodus()
        .args(["id", "grant", "--keystore"])
        .arg(&owner)
        .args(["--to", &op_id, "--role", "operator", "--node", &node])
        .args(["--expires", "2099-01-01T00:00:00Z", "--out"])
        .arg(&grant)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = std::fs::read_to_string(&grant).unwrap();
    let parsed = nodus_identity::grant::from_file_text(&text).unwrap();
    assert_eq!(parsed.statement.payload.grantee.to_string(), op_id);
    assert_eq!(
        parsed.statement.payload.role,
        nodus_identity::Role::Operator
    );
    assert_eq!(parsed.statement.expires_at, Some(4_070_908_800));

    // Never overwritten; the owner role is never granted; a past expiry is refused.
    let again = nodus()
        .args(["id", "grant", "--keystore"])
        .arg(&owner)
        .args(["--to", &op_id, "--role", "viewer", "--node", &node, "--out"])
        .arg(&grant)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert_eq!(std::fs::read_to_string(&grant).unwrap(), text);
    let owner_role = nodus()
        .args(["id", "grant", "--keystore"])
        .arg(&owner)
        .args(["--to", &op_id, "--role", "owner", "--node", &node, "--out"])
        .arg(dir.path().join("x.grant"))
        .output()
        .unwrap();
    assert!(!owner_role.status.success());
    let past = nodus()
        .args(["id", "grant", "--keystore"])
        .arg(&owner)
        .args(["--to", &op_id, "--role", "viewer", "--node", &node])
        .args(["--expires", "2001-01-01T00:00:00Z", "--out"])
        .arg(dir.path().join("y.grant"))
        .output()
        .unwrap();
    assert_eq!(past.status.code(), Some(5), "{past:?}");
    assert!(String::from_utf8_lossy(&past.stderr).contains("--expires"));
}
