//! `nodus id …` driven as a script would: no prompts, exit codes checked.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test helpers: a panic is a failed test.

use std::{path::Path, process::Command};

fn nodus() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_nodus"));
    c.env_remove("NODUS_PASSPHRASE").env_remove("RUST_LOG");
    c
}

fn json(out: &std::process::Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "status {:?}, stderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("stdout is JSON")
}

fn new_key(path: &Path, pass: &str) -> serde_json::Value {
    json(
        &nodus()
            .args(["--json", "id", "new", "--keystore"])
            .arg(path)
            .env("NODUS_PASSPHRASE", pass)
            .output()
            .unwrap(),
    )
}

#[test]
fn new_then_show_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let ks = dir.path().join("owner.key");
    let created = new_key(&ks, "pw");
    let id = created["id"].as_str().unwrap();
    assert!(id.starts_with("acct1"), "{id}");
    assert!(created["node_id"].as_str().unwrap().starts_with("node1"));
    assert_eq!(created["mnemonic"].as_str().unwrap().split(' ').count(), 24);

    let shown = json(
        &nodus()
            .args(["id", "show", "--json", "--keystore"])
            .arg(&ks)
            .output()
            .unwrap(),
    );
    assert_eq!(shown["id"], created["id"]);
    assert!(
        shown.get("mnemonic").is_none(),
        "show must not reveal words"
    );

    // --verify opens the keystore; the passphrase comes from a file here.
    let pf = dir.path().join("pass");
    std::fs::write(&pf, "pw\n").unwrap();
    let verified = json(
        &nodus()
            .args(["--json", "id", "show", "--verify", "--keystore"])
            .arg(&ks)
            .arg("--passphrase-file")
            .arg(&pf)
            .output()
            .unwrap(),
    );
    assert_eq!(verified["id"], created["id"]);
}

#[test]
fn export_then_restore_gives_the_same_id() {
    let dir = tempfile::tempdir().unwrap();
    let ks = dir.path().join("a.key");
    let created = new_key(&ks, "pw");
    let words = dir.path().join("words");
    let exported = nodus()
        .args(["id", "export-mnemonic", "--keystore"])
        .arg(&ks)
        .env("NODUS_PASSPHRASE", "pw")
        .output()
        .unwrap();
    assert!(exported.status.success());
    std::fs::write(&words, &exported.stdout).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&exported.stdout).trim(),
        created["mnemonic"].as_str().unwrap()
    );

    let restored_ks = dir.path().join("b.key");
    let restored = json(
        &nodus()
            .args(["--json", "id", "restore", "--keystore"])
            .arg(&restored_ks)
            .arg("--mnemonic-file")
            .arg(&words)
            .env("NODUS_PASSPHRASE", "other")
            .output()
            .unwrap(),
    );
    assert_eq!(restored["id"], created["id"]);
}

#[test]
fn exit_codes_are_the_documented_ones() {
    let dir = tempfile::tempdir().unwrap();
    let ks = dir.path().join("k.key");
    new_key(&ks, "right");
    let before = std::fs::read(&ks).unwrap();

    // Wrong passphrase: 4, a clear message, file untouched.
    let out = nodus()
        .args(["id", "export-mnemonic", "--keystore"])
        .arg(&ks)
        .env("NODUS_PASSPHRASE", "wrong")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Wrong passphrase"));
    assert_eq!(std::fs::read(&ks).unwrap(), before);

    // Missing keystore: 6, and the message names the path.
    let missing = dir.path().join("nope.key");
    let out = nodus()
        .args(["id", "show", "--keystore"])
        .arg(&missing)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(6));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope.key"));

    // No passphrase source and no terminal: a usage error, not a hang.
    let out = nodus()
        .args(["id", "new", "--keystore"])
        .arg(dir.path().join("x.key"))
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));

    // Refuses to overwrite an existing keystore.
    let out = nodus()
        .args(["id", "new", "--keystore"])
        .arg(&ks)
        .env("NODUS_PASSPHRASE", "x")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5));
    assert_eq!(std::fs::read(&ks).unwrap(), before);

    // Bad backup words: 5.
    let words = dir.path().join("w");
    std::fs::write(&words, "abandon abandon abandon").unwrap();
    let out = nodus()
        .args(["id", "restore", "--keystore"])
        .arg(dir.path().join("r.key"))
        .arg("--mnemonic-file")
        .arg(&words)
        .env("NODUS_PASSPHRASE", "x")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5));
    assert!(String::from_utf8_lossy(&out.stderr).contains("24"));

    // Unknown flag: 2.
    assert_eq!(
        nodus()
            .args(["id", "show", "--bogus"])
            .output()
            .unwrap()
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn version_and_completions() {
    let out = nodus().arg("--version").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")));
    let out = nodus().args(["completions", "bash"]).output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("export-mnemonic"));
}
