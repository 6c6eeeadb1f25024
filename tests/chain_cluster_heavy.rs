//! Heavy: four `nodus validator run` processes on loopback over real QUIC.
//!
//! `nodus validator testnet --validators 4` writes the network; the validators
//! finalize blocks; a `nodus chain tx transfer` shows in `nodus chain query
//! account`; `kill -9` of one validator does not stop finality; restarted, it
//! catches up from its peers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;
use common::first_line;

const NODUS: &str = env!("CARGO_BIN_EXE_nodus");

/// Generous bound for anything to happen on a loaded 2-core CI machine.
const PATIENCE: Duration = Duration::from_secs(120);

fn nodus() -> Command {
    let mut c = Command::new(NODUS);
    c.env_remove("NODUS_PASSPHRASE").env_remove("RUST_LOG");
    c
}

/// Four consecutive free UDP ports on loopback.
fn free_base_port() -> u16 {
    for _ in 0..200 {
        let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
        let base = probe.local_addr().unwrap().port();
        drop(probe);
        if base > 65_000 {
            continue;
        }
        let ok = (0..4).all(|i| UdpSocket::bind(("127.0.0.1", base + i)).is_ok());
        if ok {
            return base;
        }
    }
    panic!("no four consecutive free UDP ports");
}

struct Validator {
    config: PathBuf,
    endpoint: String,
    log: PathBuf,
    child: Option<Child>,
}

impl Validator {
    fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let mut child = nodus()
            .args(["--log", "info", "validator", "run", "--config"])
            .arg(&self.config)
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let line = first_line(&mut child);
        assert!(
            line.starts_with("ready "),
            "no ready line from {}: {line:?}\n{}",
            self.endpoint,
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
        self.child = Some(child);
    }

    fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap(); // SIGKILL
            c.wait().unwrap();
        }
    }
}

impl Drop for Validator {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn json_of(out: &std::process::Output) -> Value {
    assert!(
        out.status.success(),
        "nodus failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn height_at(endpoint: &str) -> Option<u64> {
    let out = nodus()
        .args(["--json", "chain", "query", "height", "--endpoint", endpoint])
        .output()
        .unwrap();
    if !out.status.success() {
        return None;
    }
    serde_json::from_slice::<Value>(&out.stdout).ok()?["height"].as_u64()
}

fn wait_height(endpoint: &str, at_least: u64, logs: &[&Path]) -> u64 {
    let start = Instant::now();
    loop {
        if let Some(h) = height_at(endpoint)
            && h >= at_least
        {
            return h;
        }
        if start.elapsed() > PATIENCE {
            for l in logs {
                eprintln!(
                    "--- {}\n{}",
                    l.display(),
                    std::fs::read_to_string(l).unwrap_or_default()
                );
            }
            panic!("{endpoint} did not reach height {at_least}");
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn balance(endpoints: &[&str], id: &str) -> u128 {
    let mut c = nodus();
    c.args(["--json", "chain", "query", "account", id]);
    for e in endpoints {
        c.args(["--endpoint", e]);
    }
    let v = json_of(&c.output().unwrap());
    v["balance"].as_str().unwrap().parse().unwrap()
}

#[test]
fn heavy_four_validators_finalize_transfer_survive_kill_and_catch_up() {
    let dir = tempfile::tempdir().unwrap();
    let base = free_base_port();
    let out = nodus()
        .args([
            "--json",
            "validator",
            "testnet",
            "--validators",
            "4",
            "--dir",
        ])
        .arg(dir.path())
        .args(["--base-port", &base.to_string()])
        .output()
        .unwrap();
    let net = json_of(&out);
    let accounts = net["accounts"].as_array().unwrap();
    assert!(accounts.len() >= 2);
    let mut validators: Vec<Validator> = net["validators"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, v)| Validator {
            config: PathBuf::from(v["config"].as_str().unwrap()),
            endpoint: v["endpoint"].as_str().unwrap().to_owned(),
            log: dir.path().join(format!("validator-{i}.log")),
            child: None,
        })
        .collect();
    assert_eq!(validators.len(), 4);
    for v in &mut validators {
        v.start();
    }
    let logs: Vec<PathBuf> = validators.iter().map(|v| v.log.clone()).collect();
    let logs: Vec<&Path> = logs.iter().map(PathBuf::as_path).collect();
    let eps: Vec<String> = validators.iter().map(|v| v.endpoint.clone()).collect();

    // 1. Blocks finalize.
    wait_height(&eps[0], 3, &logs);

    // 2. A transfer shows in the receiver's account, read through another validator.
    let sender = accounts[0]["keystore"].as_str().unwrap();
    let receiver = accounts[1]["id"].as_str().unwrap();
    let before = balance(&[&eps[2]], receiver);
    let out = nodus()
        .args([
            "--json", "chain", "tx", "transfer", "--to", receiver, "--amount", "12345",
        ])
        .args([
            "--keystore",
            sender,
            "--endpoint",
            &eps[0],
            "--endpoint",
            &eps[1],
        ])
        .output()
        .unwrap();
    let tx = json_of(&out);
    assert_eq!(tx["status"], "applied", "{tx}");
    let included = tx["height"].as_u64().unwrap();
    wait_height(&eps[2], included, &logs);
    assert_eq!(balance(&[&eps[2]], receiver), before + 12_345);
    // The first endpoint may be down: the client moves on to the next.
    let dead = format!("{}@127.0.0.1:9", eps[0].split('@').next().unwrap());
    assert_eq!(balance(&[&dead, &eps[3]], receiver), before + 12_345);

    // 3. kill -9 one validator: the other three (3 of 4 stake > 2/3) keep finalizing.
    validators[3].kill9();
    let h = height_at(&eps[0]).unwrap();
    wait_height(&eps[0], h + 3, &logs);
    wait_height(&eps[1], h + 3, &logs);

    // 4. Restarted, it catches up with the others.
    validators[3].start();
    let target = height_at(&eps[0]).unwrap();
    wait_height(&eps[3], target, &logs);
    // And keeps following.
    let later = wait_height(&eps[0], target + 2, &logs);
    wait_height(&eps[3], later, &logs);

    // 5. SIGTERM stops a validator cleanly.
    let mut child = validators[0].child.take().unwrap();
    nix_term(child.id());
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "validator exited with {status} after SIGTERM"
    );
}

fn nix_term(pid: u32) {
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn chain_cli_exit_codes_name_the_failure() {
    let dir = tempfile::tempdir().unwrap();
    let code = |args: &[&str]| nodus().args(args).output().unwrap().status.code();
    // Missing config file: not found (6).
    let missing = dir.path().join("nope.toml");
    assert_eq!(
        code(&["validator", "run", "--config", missing.to_str().unwrap()]),
        Some(6)
    );
    // A config with an unknown field: bad input (5).
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "colour = 1\n").unwrap();
    assert_eq!(
        code(&["validator", "run", "--config", bad.to_str().unwrap()]),
        Some(5)
    );
    // A malformed endpoint: usage (2); nobody listening: unreachable (7).
    assert_eq!(
        code(&["chain", "query", "height", "--endpoint", "127.0.0.1:9"]),
        Some(2)
    );
    let id = "acct1p2y05n29e2qk4d83a7ktntwz2wudnq93y6epp0xxl9t4andnq7uqhzazzn";
    let start = Instant::now();
    assert_eq!(
        code(&[
            "chain",
            "query",
            "height",
            "--endpoint",
            &format!("{id}@127.0.0.1:9")
        ]),
        Some(7)
    );
    assert!(start.elapsed() < PATIENCE);
    // testnet refuses to overwrite.
    let net = dir.path().join("net");
    let args = [
        "validator",
        "testnet",
        "--validators",
        "1",
        "--accounts",
        "0",
        "--dir",
    ];
    let mut first = nodus();
    first.args(args).arg(&net);
    assert!(first.output().unwrap().status.success());
    let mut again = nodus();
    again.args(args).arg(&net);
    assert_eq!(again.output().unwrap().status.code(), Some(5));
}

#[test]
fn heavy_one_validator_every_transaction_kind() {
    let dir = tempfile::tempdir().unwrap();
    let base = free_base_port();
    let net = json_of(
        &nodus()
            .args([
                "--json",
                "validator",
                "testnet",
                "--validators",
                "1",
                "--accounts",
                "3",
            ])
            .arg("--dir")
            .arg(dir.path())
            .args(["--base-port", &base.to_string()])
            .output()
            .unwrap(),
    );
    let v = &net["validators"][0];
    let mut validator = Validator {
        config: PathBuf::from(v["config"].as_str().unwrap()),
        endpoint: v["endpoint"].as_str().unwrap().to_owned(),
        log: dir.path().join("validator.log"),
        child: None,
    };
    validator.start();
    let ep = validator.endpoint.clone();
    let acct = |i: usize| {
        (
            net["accounts"][i]["keystore"].as_str().unwrap().to_owned(),
            net["accounts"][i]["id"].as_str().unwrap().to_owned(),
        )
    };
    let (farmer_ks, _) = acct(0);
    let (node_ks, node_id) = acct(1);
    let (tenant_ks, tenant_id) = acct(2);
    let tx = |ks: &str, args: &[&str]| {
        let mut c = nodus();
        c.args(["--json", "chain", "tx"]).args(args);
        c.args(["--keystore", ks, "--endpoint", &ep]);
        let v = json_of(&c.output().unwrap());
        assert_eq!(v["status"], "applied", "{args:?}: {v}");
    };
    let query = |args: &[&str]| {
        let mut c = nodus();
        c.args(["--json", "chain", "query"]).args(args);
        c.args(["--endpoint", &ep]);
        json_of(&c.output().unwrap())
    };

    tx(&farmer_ks, &["register-farm", "--name", "north"]);
    assert_eq!(query(&["farm", "1"])["name"], "north");
    let approval = dir.path().join("approval.json");
    let out = nodus()
        .args([
            "chain",
            "tx",
            "approve-node",
            "--farm",
            "1",
            "--node",
            &node_id,
        ])
        .arg("--out")
        .arg(&approval)
        .args(["--keystore", &farmer_ks, "--endpoint", &ep])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    tx(
        &farmer_ks,
        &[
            "register-node",
            "--node-keystore",
            &node_ks,
            "--farm",
            "1",
            "--approval",
            approval.to_str().unwrap(),
            "--cru",
            "8",
            "--mru",
            "17179869184",
        ],
    );
    let node = query(&["node", &node_id]);
    assert_eq!(node["farm"], 1, "{node}");
    assert_eq!(node["capacity"]["cru"], 8);

    tx(
        &tenant_ks,
        &[
            "create-contract",
            "--node",
            &node_id,
            "--cru",
            "2",
            "--price-per-hour",
            "3600",
        ],
    );
    let contracts = query(&["contracts", "--tenant", &tenant_id]);
    assert_eq!(contracts.as_array().unwrap().len(), 1, "{contracts}");
    assert_eq!(contracts[0]["id"], 1);
    tx(
        &farmer_ks,
        &["set-power-target", "--node", &node_id, "--target", "down"],
    );
    assert_eq!(query(&["node", &node_id])["power_target"], "Down");
    tx(&tenant_ks, &["cancel-contract", "--contract", "1"]);
    let contracts = query(&["contracts", "--node", &node_id]);
    assert!(
        contracts[0]["state"].get("Cancelled").is_some(),
        "{contracts}"
    );

    tx(&tenant_ks, &["bond", "--amount", "5000"]);
    let set = query(&["validators"]);
    assert_eq!(set.as_array().unwrap().len(), 2, "{set}");
    assert_eq!(query(&["account", &tenant_id])["bonded"], "5000");
    tx(&tenant_ks, &["unbond", "--amount", "5000"]);
    assert_eq!(query(&["account", &tenant_id])["unbonding"], "5000");

    let block = query(&["block", "1"]);
    assert_eq!(block["height"], 1);
    assert_eq!(query(&["height"])["chain_id"], "testnet");
}
