//! The console and `nodus node` against a real `nodus agent run` on loopback:
//! the dashboard in tmux (screens, values, an identify and a simulated reboot
//! confirmed with the node's short id, `q` quits), an unknown key's "not
//! authorized" screen, and the action CLI's exit codes for every role.
//!
//! The agent reads a fixture machine (`--root`, the procfs trees of
//! shared/fixtures/sysfs), runs managed with the simulated power backend, so
//! nothing happens to the host. Heavy tier: needs tmux (scripts/test.sh
//! installs it); the tmux test is skipped with a message when it is missing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Stdio;

use common::{Agent, NODUS, PASS, Tmux, code, have, new_key, nodus, unpack_fixture};

#[test]
fn heavy_node_actions_by_role_with_exit_codes() {
    let agent = Agent::start(unpack_fixture);
    let token = agent.short();
    // The owner: everything.
    let o = agent.node_action(&["identify"], &agent.owner_key, None, &token);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["outcome"], "done");
    assert_eq!(v["action"], "identify");
    // An operator through a grant: identify and a (simulated) reboot.
    let (op_key, op_grant) = agent.grant("operator");
    let o = agent.node_action(&["identify"], &op_key, Some(&op_grant), &token);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    // The same request id twice: the second answer is the first, replayed.
    let id = "00112233445566778899aabbccddeeff";
    for replayed in [false, true] {
        let o = agent.node_action(
            &["reboot", "--request-id", id],
            &op_key,
            Some(&op_grant),
            &token,
        );
        assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["replayed"], replayed, "{v}");
    }
    // A wrong confirmation token: bad input (5).
    let o = agent.node_action(&["identify"], &op_key, Some(&op_grant), "node1wrong");
    assert_eq!(code(&o), 5, "{}", String::from_utf8_lossy(&o.stdout));
    // A viewer is refused identify: not authorized (3).
    let (v_key, v_grant) = agent.grant("viewer");
    let o = agent.node_action(&["identify"], &v_key, Some(&v_grant), &token);
    assert_eq!(code(&o), 3, "{}", String::from_utf8_lossy(&o.stdout));
    // An unknown key, no grant: refused at the handshake, also 3.
    let stranger = agent.dir.path().join("stranger.key");
    new_key(&stranger);
    let o = agent.node_action(&["identify"], &stranger, None, &token);
    assert_eq!(code(&o), 3, "{}", String::from_utf8_lossy(&o.stderr));
    // Nobody listening: unreachable (7).
    let dead = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let dead_addr = dead.local_addr().unwrap();
    drop(dead);
    let o = nodus()
        .args(["node", "identify", "--connect"])
        .arg(format!("{}@{dead_addr}", agent.node))
        .args(["--confirm", &token, "--key"])
        .arg(&agent.owner_key)
        .output()
        .unwrap();
    assert_eq!(code(&o), 7, "{}", String::from_utf8_lossy(&o.stderr));
}

fn console_cmd(agent: &Agent, key: &Path) -> String {
    format!(
        "env NODUS_PASSPHRASE={PASS} TERM=xterm-256color {NODUS} console --connect {} --key {}; sleep 30",
        agent.target(),
        key.display()
    )
}

#[test]
fn heavy_console_in_tmux_on_a_real_agent() {
    if !have("tmux") {
        eprintln!("skipping: tmux is not installed (scripts/test.sh installs it)");
        return;
    }
    let agent = Agent::start(unpack_fixture);
    let tmux = Tmux::start("agent", &console_cmd(&agent, &agent.owner_key));
    let short = agent.short();
    // Wait for every expected cell at once: a capture can land mid-redraw.
    tmux.wait_for("the overview with node id, mode and health", |p| {
        p.contains("connected")
            && p.contains("Uptime")
            && p.contains(&agent.node)
            && p.contains("managed")
            && p.contains("Health")
    });
    tmux.keys(&["2"]);
    tmux.wait_for("the hardware screen", |p| {
        p.contains("Disks") && p.contains("Sensors")
    });
    tmux.keys(&["3"]);
    tmux.wait_for("the capacity screen", |p| p.contains("CRU"));
    tmux.keys(&["1", "i"]);
    tmux.wait_for("the confirmation prompt", |p| {
        p.contains(&format!("Type {short}"))
    });
    tmux.keys(&["-l", &short]);
    tmux.keys(&["Enter"]);
    let pane = tmux.wait_for("the identify outcome", |p| {
        p.contains("identify") && p.contains(": done")
    });
    assert!(!pane.contains("refused"), "{pane}");
    // The agent's identify event reaches every console as a banner.
    tmux.wait_for("the identify banner", |p| {
        p.contains("IDENTIFY: this node was asked")
    });
    tmux.keys(&["Escape", "R"]);
    tmux.wait_for("the reboot prompt", |p| {
        p.contains("reboot") && p.contains(&format!("Type {short}"))
    });
    tmux.keys(&["-l", "node1nope"]);
    tmux.keys(&["Enter"]);
    tmux.wait_for("the mismatch", |p| p.contains("does not match"));
    tmux.keys(&["-l", &short]);
    tmux.keys(&["Enter"]);
    tmux.wait_for("the simulated reboot", |p| {
        p.contains("reboot") && p.contains(": done")
    });
    tmux.keys(&["q"]);
    // The console is gone; the shell's `sleep` keeps the pane for inspection.
    tmux.wait_for("the console to quit", |p| !p.contains("Uptime"));
    assert!(tmux.alive());
}

#[test]
fn heavy_unknown_key_sees_not_authorized() {
    if !have("tmux") {
        eprintln!("skipping: tmux is not installed (scripts/test.sh installs it)");
        return;
    }
    let agent = Agent::start(unpack_fixture);
    let stranger = agent.dir.path().join("stranger.key");
    new_key(&stranger);
    let tmux = Tmux::start("refused", &console_cmd(&agent, &stranger));
    let pane = tmux.wait_for("the refusal", |p| p.contains("NOT AUTHORIZED"));
    assert!(pane.contains("--grant FILE"), "{pane}");
    tmux.keys(&["q"]);
    tmux.wait_for("the console to quit", |p| !p.contains("NOT AUTHORIZED"));
}

#[test]
fn heavy_devnet_without_a_tty_prints_the_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    unpack_fixture(&root);
    let out = nodus()
        .args(["devnet", "--state-dir"])
        .arg(dir.path().join("devnet"))
        .arg("--root")
        .arg(&root)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for s in [
        "node      node1",
        "mode      observe",
        "cpu ",
        "memory ",
        "disks ",
        "nics ",
        "capacity  cru",
        "health ",
        "power ",
        "role      owner",
        // The devnet's one-validator chain: the farmer's bond from its genesis.
        "100000.000000 NDS bonded",
        "chain     ",
    ] {
        assert!(text.contains(s), "lacks {s:?}:\n{text}");
    }
    // The agent child is gone: nothing listens on its socket any more.
    let sock = dir.path().join("devnet/agent.sock");
    assert!(
        std::os::unix::net::UnixStream::connect(&sock).is_err(),
        "agent still serving"
    );
}

#[test]
fn heavy_on_node_console_over_the_socket_cannot_quit() {
    if !have("tmux") {
        eprintln!("skipping: tmux is not installed (scripts/test.sh installs it)");
        return;
    }
    let agent = Agent::start(unpack_fixture);
    let sock = agent.dir.path().join("agent.sock");
    // A Linux VT: 16 colours and ASCII glyphs.
    let cmd = format!(
        "env TERM=linux {NODUS} console --on-node --socket {}; sleep 30",
        sock.display()
    );
    let tmux = Tmux::start("onnode", &cmd);
    let pane = tmux.wait_for("the whole overview over the socket", |p| {
        p.contains("connected")
            && p.contains("Uptime")
            && p.contains(&agent.node)
            && p.contains("? help")
    });
    assert!(!pane.contains("q quit"), "{pane}");
    tmux.keys(&["q"]);
    tmux.wait_for("the refusal to quit", |p| p.contains("cannot quit"));
    tmux.keys(&["2"]);
    tmux.wait_for("still running", |p| p.contains("Disks"));
}

#[test]
fn heavy_devnet_in_a_terminal_opens_the_console_and_stops_the_agent() {
    if !have("tmux") {
        eprintln!("skipping: tmux is not installed (scripts/test.sh installs it)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("devnet");
    let cmd = format!(
        "env TERM=xterm-256color {NODUS} devnet --state-dir {}; echo devnet-exit=$?; sleep 30",
        state.display()
    );
    let tmux = Tmux::start("devnet", &cmd);
    let pane = tmux.wait_for("the console on the devnet agent", |p| {
        p.contains("connected") && p.contains("observe")
    });
    assert!(pane.contains("node1"), "{pane}");
    tmux.keys(&["q"]);
    tmux.wait_for("devnet to exit", |p| p.contains("devnet-exit=0"));
    let sock = state.join("agent.sock");
    assert!(
        std::os::unix::net::UnixStream::connect(&sock).is_err(),
        "agent still serving"
    );
}
