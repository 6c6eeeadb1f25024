//! `nodus devnet` end to end: the local chain, the agent registered on it and
//! the console's Stake screen with the chain's numbers.
//!
//! In tmux (120×40, its own server socket) the devnet runs on a fixture machine
//! (`--root`, the procfs trees of shared/fixtures/sysfs); the test presses 5 and
//! polls the Stake screen until the farmer's balance and bond are there, the
//! node is registered, and an epoch has been settled with uptime and a reward;
//! `q` then stops the console, the agent and the chain (the no-terminal path is
//! tests/console_agent_heavy.rs's). Heavy tier: needs tmux (scripts/test.sh installs it); the tmux test is
//! skipped with a message when it is missing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{NODUS, Tmux, have, unpack_fixture};
/// Bounds a hang only: rewards come after the first 20 s epoch and its 5 s
/// late-report window, a few seconds more on a loaded machine.
const PATIENCE: Duration = Duration::from_secs(240);

/// `12.345678 NDS` after `label` on some line of `text`, in micro-NDS.
fn tokens_after(text: &str, label: &str) -> Option<u128> {
    let line = text.lines().find(|l| l.trim_start().starts_with(label))?;
    let rest = line.trim_start().strip_prefix(label)?.trim_start();
    let number = rest.split_whitespace().next()?;
    let (whole, micro) = number.split_once('.')?;
    if micro.len() != 6 {
        return None;
    }
    Some(whole.parse::<u128>().ok()? * 1_000_000 + micro.parse::<u128>().ok()?)
}

/// `99.5 %` after `label`, in tenths of a percent.
fn percent_after(text: &str, label: &str) -> Option<u32> {
    let line = text.lines().find(|l| l.trim_start().starts_with(label))?;
    let rest = line.trim_start().strip_prefix(label)?.trim_start();
    let (number, _) = rest.split_once(" %")?;
    let (whole, tenth) = number.split_once('.')?;
    Some(whole.parse::<u32>().ok()? * 10 + tenth.parse::<u32>().ok()?)
}

#[test]
fn heavy_devnet_stake_screen_shows_the_chains_numbers() {
    if !have("tmux") {
        eprintln!("skipping: tmux is not installed (scripts/test.sh installs it)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    unpack_fixture(&root);
    let state = dir.path().join("devnet");
    let cmd = format!(
        "env -u NODUS_PASSPHRASE TERM=xterm-256color {NODUS} devnet --state-dir {} --root {}; sleep 60",
        state.display(),
        root.display()
    );
    let tmux = Tmux::start("devnet", &cmd);
    let pane = || tmux.capture();
    let start = Instant::now();
    // The console is up once the tab line is drawn; then the Stake screen.
    let mut text = pane();
    while !text.contains("5 Stake") {
        assert!(start.elapsed() < PATIENCE, "no console; pane:\n{text}");
        std::thread::sleep(Duration::from_millis(200));
        text = pane();
    }
    tmux.keys(&["5"]);
    let settled = |t: &str| {
        t.contains("Stake ─")
            && tokens_after(t, "Balance").is_some_and(|b| b > 0)
            && tokens_after(t, "Bonded").is_some_and(|b| b > 0)
            && tokens_after(t, "Rewards").is_some_and(|r| r > 0)
            && percent_after(t, "Uptime").is_some_and(|u| u > 0)
            && t.contains("node registered in farm 1")
    };
    while !settled(&text) {
        assert!(
            start.elapsed() < PATIENCE,
            "the Stake screen never showed a settled epoch; pane:\n{text}\nagent log:\n{}",
            std::fs::read_to_string(state.join("agent.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(500));
        text = pane();
    }
    assert!(!text.contains("not connected"), "{text}");
    assert!(text.contains("active"), "the farmer validates: {text}");
    // Rewards are minted by the chain, so the farmer's balance is the genesis
    // balance less fees plus rewards: it grew past what fees could explain.
    let balance = tokens_after(&text, "Balance").unwrap();
    let rewards = tokens_after(&text, "Rewards").unwrap();
    assert!(balance >= rewards, "{text}");

    // The chain says the same through `nodus chain query farming`: the node id
    // from the header, the endpoint from the agent's config.
    let node = text
        .split_whitespace()
        .find(|w| w.starts_with("node1"))
        .expect("node id in the header");
    let config = std::fs::read_to_string(state.join("agent.toml")).unwrap();
    let endpoint = config
        .split('"')
        .find(|s| s.starts_with("acct1"))
        .expect("chain endpoint in agent.toml");
    let out = Command::new(NODUS)
        .args([
            "--json",
            "chain",
            "query",
            "farming",
            node,
            "--endpoint",
            endpoint,
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let farming: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let reward: u128 = farming["last"]["reward"].as_str().unwrap().parse().unwrap();
    assert!(reward > 0, "{farming}");
    assert!(
        farming["last"]["uptime_ppm"].as_u64().unwrap() > 0,
        "{farming}"
    );
    assert_eq!(farming["epoch_secs"], 20, "{farming}");

    // q quits the console, and the devnet stops its agent and chain.
    tmux.keys(&["q"]);
    let sock = state.join("agent.sock");
    while std::os::unix::net::UnixStream::connect(&sock).is_ok() {
        assert!(start.elapsed() < PATIENCE, "agent still serving after q");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn stake_numbers_parse_as_the_screen_prints_them() {
    let screen = " Balance     999999.998500 NDS\n Rewards     7.500000 NDS last epoch\n Bonded      7.5 NDS\n Uptime      99.5 %\n";
    assert_eq!(tokens_after(screen, "Balance"), Some(999_999_998_500));
    assert_eq!(tokens_after(screen, "Rewards"), Some(7_500_000));
    assert_eq!(percent_after(screen, "Uptime"), Some(995));
    assert_eq!(tokens_after(screen, "Bonded"), None);
}
