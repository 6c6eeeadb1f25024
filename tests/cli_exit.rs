//! Exit codes of commands other than `nodus id`, as scripts see them.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test code: a panic is a failure.

use std::process::Command;

fn nodus(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_nodus"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

#[test]
fn agent_inventory_with_a_missing_root_exits_6_naming_it() {
    let out = nodus(&["agent", "inventory", "--root", "/no/such/root"]);
    assert_eq!(out.status.code(), Some(6));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/no/such/root"));
}

#[test]
fn netboot_config_missing_is_6_and_invalid_is_5() {
    let out = nodus(&["netboot", "serve", "--config", "/no/such/netboot.toml"]);
    assert_eq!(out.status.code(), Some(6));
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("netboot.toml");
    std::fs::write(&bad, "bogus = 1\n").unwrap();
    let out = nodus(&["netboot", "serve", "--config", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(5));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bogus"));
}

#[test]
fn agent_inventory_json_has_the_contract_keys() {
    let out = nodus(&["--json", "agent", "inventory"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in [
        "dmi", "cpu", "memory", "disks", "nics", "sensors", "power", "capacity", "health",
    ] {
        assert!(v.get(key).is_some(), "missing top-level key {key}");
    }
    assert!(v["cpu"]["logical"].as_u64().unwrap() >= 1);
}
