//! End to end in a real terminal: the console in a detached tmux session at
//! 120×40, driven with keys, read back with `capture-pane`.
//!
//! The binary is this crate's `demo` example (integration tests of a library crate
//! cannot name the root package's `nodus` binary), built here with the same cargo
//! and profile; it renders the committed fixture with `--demo`. Skipped, with the
//! reason printed, when tmux is missing (`scripts/test.sh` installs it).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

struct Tmux {
    socket: String,
}

impl Tmux {
    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .unwrap()
    }

    fn capture(&self) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p", "-t", "c"]).stdout).into_owned()
    }

    /// Polls the pane until `pred` holds; the limit only bounds a hang, it is not
    /// a timing assertion.
    fn wait_for(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let pane = self.capture();
            if pred(&pane) {
                return pane;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "waiting for {what}; pane:\n{pane}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "c"];
        args.extend(keys);
        assert!(self.run(&args).status.success());
    }

    fn alive(&self) -> bool {
        self.run(&["has-session", "-t", "c"]).status.success()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

fn demo_binary() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(cargo);
    build.args(["build", "-q", "-p", "nodus-console", "--example", "demo"]);
    if !cfg!(debug_assertions) {
        build.arg("--release");
    }
    assert!(
        build.status().unwrap().success(),
        "building the demo example failed"
    );
    // target/<profile>/deps/<this test> → target/<profile>/examples/demo
    let exe = std::env::current_exe().unwrap();
    exe.parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join("demo")
}

#[test]
fn console_in_tmux_shows_screens_and_quits_on_q() {
    if Command::new("tmux").arg("-V").output().is_err() {
        println!("skipped: tmux is not installed (scripts/test.sh installs it)");
        return;
    }
    let bin = demo_binary();
    let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/inventory.json");
    let tmux = Tmux {
        socket: format!("nodus-console-test-{}", std::process::id()),
    };
    let cmd = format!(
        "env -u NO_COLOR TERM=xterm-256color {} --demo {}",
        bin.display(),
        fixture.display()
    );
    let out = tmux.run(&[
        "new-session",
        "-d",
        "-s",
        "c",
        "-x",
        "120",
        "-y",
        "40",
        &cmd,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let pane = tmux.wait_for("overview", |p| p.contains("Uptime"));
    assert!(pane.contains("node1qgx7d3k5"), "{pane}");
    assert!(
        pane.contains("farm 7") && pane.contains("managed"),
        "{pane}"
    );
    assert!(pane.contains("chain not connected"), "{pane}");
    assert!(pane.contains("▲ warning"), "{pane}");

    // A capture can land mid-redraw on a slow machine, so wait for every
    // expected cell rather than for the section title alone.
    tmux.keys(&["2"]);
    let want = [
        "nvme0n1",
        "Samsung SSD 980 PRO 1TB",
        "eno1",
        "1000 Mb/s",
        "Core 0",
        "83 °C",
    ];
    tmux.wait_for("hardware with every disk, NIC and sensor", |p| {
        want.iter().all(|s| p.contains(s))
    });

    tmux.keys(&["?"]);
    let pane = tmux.wait_for("help", |p| p.contains("Quit the console"));
    assert!(
        pane.contains("Quit the console") && pane.contains("Freeze the display"),
        "{pane}"
    );
    tmux.keys(&["Escape"]);
    tmux.wait_for("help closed", |p| !p.contains("Quit the console"));

    tmux.keys(&["F4"]);
    tmux.wait_for("power with its reading and source", |p| {
        p.contains("Last hour") && p.contains("39.8 W") && p.contains("rapl package-0")
    });

    tmux.keys(&["q"]);
    let start = Instant::now();
    while tmux.alive() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "q did not quit:\n{}",
            tmux.capture()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn on_node_console_does_not_quit() {
    if Command::new("tmux").arg("-V").output().is_err() {
        println!("skipped: tmux is not installed (scripts/test.sh installs it)");
        return;
    }
    let bin = demo_binary();
    let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/inventory.json");
    let tmux = Tmux {
        socket: format!("nodus-console-onnode-{}", std::process::id()),
    };
    let cmd = format!("{} --on-node --demo {}", bin.display(), fixture.display());
    assert!(
        tmux.run(&["new-session", "-d", "-s", "c", "-x", "80", "-y", "24", &cmd])
            .status
            .success()
    );
    tmux.wait_for("overview", |p| p.contains("Uptime"));
    tmux.keys(&["q"]);
    let pane = tmux.wait_for("refusal", |p| p.contains("cannot quit"));
    assert!(tmux.alive(), "{pane}");
    assert!(
        !pane.lines().last().unwrap_or("").contains(" q"),
        "footer offers q:\n{pane}"
    );
}
