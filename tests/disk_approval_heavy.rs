//! The owner's disk approval end to end, through the real `nodus` binary: the
//! owner signs it with `nodus id approve-disk`, an operator presents it with
//! `nodus node approve-disk DISK --approval FILE` to a `nodus agent run` in
//! managed mode, and the agent wipes the disk only when the approval is signed
//! by the owner, for this node, for this disk's serial, and still valid.
//!
//! The machine is synthetic (agent/tests/common/generate.rs): its disks are
//! sparse files under `<root>/dev/`, two of them (`sde`, `sdf`) with a GPT
//! header, so a wipe — or its absence — is checked on real bytes. Heavy tier:
//! several processes (the agent, one `nodus` per step) on loopback QUIC, and the
//! dashboard (`nodus console --approval FILE`) in tmux, which scripts/test.sh
//! installs; that test is skipped with a message when tmux is missing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../agent/tests/common/generate.rs"]
mod generate;

mod common;

use std::io::Read as _;
use std::path::Path;
use std::process::Output;

use common::{Agent, NODUS, PASS, Tmux, code, describe, have, new_key, nodus};
use nodus_identity::grant::{DiskApproval, approve_disk, disk_approval_to_file_text};
use nodus_identity::{Keystore, NodeId, Passphrase, SecretKey};

/// What the agent zeroes at the start of a disk.
const MIB: usize = 1 << 20;

/// The synthetic machine: six disks, `sde` and `sdf` carrying a GPT.
fn machine(root: &Path) {
    generate::build(
        root,
        generate::Spec {
            disks: 6,
            nics: 1,
            sensors: 2,
            cpus: 2,
        },
    );
}

impl Agent {
    /// The serial the inventory reports for disk `name`.
    fn serial(&self, name: &str) -> String {
        let out = nodus()
            .args(["--json", "agent", "inventory", "--root"])
            .arg(&self.root)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", describe(&out));
        let inv: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        inv["disks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["name"] == name)
            .unwrap_or_else(|| panic!("no disk {name}"))["serial"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// `nodus id approve-disk` with the owner's keystore, writing `out`.
    fn owner_approves(&self, node: &str, serial: &str, extra: &[&str], out: &Path) -> Output {
        nodus()
            .args(["--json", "id", "approve-disk", "--keystore"])
            .arg(&self.owner_key)
            .args(["--node", node, "--serial", serial, "--out"])
            .arg(out)
            .args(extra)
            .output()
            .unwrap()
    }

    /// `nodus node approve-disk DISK` as `key` (with its grant).
    fn approve(&self, disk: &str, (key, grant): (&Path, &Path), approval: Option<&Path>) -> Output {
        let mut c = nodus();
        c.args(["--json", "node", "approve-disk", disk, "--connect"])
            .arg(format!("{}@{}", self.node, self.quic))
            .args(["--confirm", &self.node[..13], "--key"])
            .arg(key)
            .arg("--grant")
            .arg(grant);
        if let Some(a) = approval {
            c.arg("--approval").arg(a);
        }
        c.output().unwrap()
    }

    /// The first MiB of disk `name`'s backing file.
    fn head(&self, name: &str) -> Vec<u8> {
        let mut buf = vec![0u8; MIB];
        std::fs::File::open(self.root.join("dev").join(name))
            .unwrap()
            .read_exact(&mut buf)
            .unwrap();
        buf
    }
}

/// Signs a disk approval in process, for what the CLI refuses to make (an
/// expiry in the past) or what only a non-owner key would sign.
fn sign_approval(key: &SecretKey, node: &str, serial: &str, expires_at: u64, out: &Path) {
    let signed = approve_disk(
        key,
        nodus_identity::DEFAULT_NETWORK,
        DiskApproval {
            node: node.parse::<NodeId>().unwrap(),
            serial: serial.to_owned(),
        },
        Some(expires_at),
    )
    .unwrap();
    std::fs::write(out, disk_approval_to_file_text(&signed, None).unwrap()).unwrap();
}

fn message(o: &Output) -> String {
    let v: serde_json::Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|_| panic!("no JSON report: {}", describe(o)));
    v["message"].as_str().unwrap_or_default().to_owned()
}

#[test]
fn heavy_foreign_disk_is_wiped_only_with_the_owners_approval_for_it() {
    let agent = Agent::start(machine);
    let (sde, sdf) = (agent.serial("sde"), agent.serial("sdf"));
    assert_ne!(sde, sdf);
    let original = agent.head("sde");
    assert_eq!(&original[512..520], b"EFI PART", "the fixture has a GPT");
    let untouched = |why: &str| {
        assert!(agent.head("sde") == original, "sde changed after {why}");
    };
    let (op_key, op_grant) = agent.grant("operator");
    let op = (op_key.as_path(), op_grant.as_path());

    // No approval: refused, not authorized (3), nothing written.
    let o = agent.approve("sde", op, None);
    assert_eq!(code(&o), 3, "{}", describe(&o));
    let m = message(&o);
    assert!(m.contains("owner's signed approval"), "{}", describe(&o));
    // … and says what to ask the owner for.
    let ask = format!("--node {} --serial {sde:?} --disk sde", agent.node);
    assert!(m.contains(&ask), "{}", describe(&o));
    untouched("no approval");

    // Signed by the owner, but for another node.
    let other_node = new_key(&agent.path("other-node.key")).node;
    let other = agent.path("other-node.approval");
    let o = agent.owner_approves(&other_node, &sde, &["--disk", "sde"], &other);
    assert_eq!(code(&o), 0, "{}", describe(&o));
    let o = agent.approve("sde", op, Some(&other));
    assert_eq!(code(&o), 3, "{}", describe(&o));
    assert!(
        message(&o).contains(&format!("is for node {other_node}, not this node")),
        "{}",
        describe(&o)
    );
    untouched("an approval for another node");

    // For this node, but for the other disk's serial.
    let wrong_disk = agent.path("sdf.approval");
    let o = agent.owner_approves(&agent.node, &sdf, &[], &wrong_disk);
    assert_eq!(code(&o), 0, "{}", describe(&o));
    let o = agent.approve("sde", op, Some(&wrong_disk));
    assert_eq!(code(&o), 3, "{}", describe(&o));
    assert!(
        message(&o).contains(&format!("names serial {sdf:?}")),
        "{}",
        describe(&o)
    );
    untouched("an approval for another serial");

    // The right node and serial, but expired. The CLI refuses to sign a past
    // expiry (bad input, 5, no file), so this one is signed in process.
    let expired = agent.path("expired.approval");
    let o = agent.owner_approves(
        &agent.node,
        &sde,
        &["--expires", "2001-01-01T00:00:00Z"],
        &expired,
    );
    assert_eq!(code(&o), 5, "{}", describe(&o));
    assert!(!expired.exists());
    let owner = Keystore::open(&agent.owner_key, &Passphrase::new(PASS)).unwrap();
    let past = nodus_identity::statement::unix_now() - 60;
    sign_approval(&owner, &agent.node, &sde, past, &expired);
    let o = agent.approve("sde", op, Some(&expired));
    assert_eq!(code(&o), 3, "{}", describe(&o));
    assert!(message(&o).contains("expired at"), "{}", describe(&o));
    untouched("an expired approval");

    // Right node, serial and time, signed by the operator's own key.
    let operator = Keystore::open(&op_key, &Passphrase::new(PASS)).unwrap();
    let self_signed = agent.path("self-signed.approval");
    let later = nodus_identity::statement::unix_now() + 3600;
    sign_approval(&operator, &agent.node, &sde, later, &self_signed);
    let o = agent.approve("sde", op, Some(&self_signed));
    assert_eq!(code(&o), 3, "{}", describe(&o));
    assert!(message(&o).contains("owner key"), "{}", describe(&o));
    untouched("an approval signed by the operator");

    // A damaged file is bad input (5) and a missing one not found (6), both
    // before anything is sent.
    let damaged = agent.path("damaged.approval");
    std::fs::write(&damaged, "nodus-disk-approval-v1 not*base64\n").unwrap();
    let o = agent.approve("sde", op, Some(&damaged));
    assert_eq!(code(&o), 5, "{}", describe(&o));
    let o = agent.approve("sde", op, Some(&agent.path("nowhere.approval")));
    assert_eq!(code(&o), 6, "{}", describe(&o));
    untouched("unusable approval files");

    // The owner's approval, made with the CLI: the file is text for people
    // plus one signed line, and it is never overwritten.
    let good = agent.path("sde.approval");
    let o = agent.owner_approves(
        &agent.node,
        &sde,
        &["--disk", "sde", "--expires", "2999-01-01T00:00:00Z"],
        &good,
    );
    assert_eq!(code(&o), 0, "{}", describe(&o));
    let text = std::fs::read_to_string(&good).unwrap();
    assert!(text.contains(&sde) && text.contains("sde"), "{text}");
    assert_eq!(
        text.lines().filter(|l| !l.starts_with('#')).count(),
        1,
        "{text}"
    );
    let o = agent.owner_approves(&agent.node, &sde, &[], &good);
    assert_ne!(code(&o), 0, "{}", describe(&o));
    assert_eq!(std::fs::read_to_string(&good).unwrap(), text);

    // A viewer holding the valid approval is still refused: the role comes first.
    let (v_key, v_grant) = agent.grant("viewer");
    let o = agent.approve("sde", (&v_key, &v_grant), Some(&good));
    assert_eq!(code(&o), 3, "{}", describe(&o));
    assert!(message(&o).contains("operator role"), "{}", describe(&o));
    untouched("a viewer's attempt");

    // The operator with it: done, and the first MiB (GPT included) is zeroed.
    let o = agent.approve("sde", op, Some(&good));
    assert_eq!(code(&o), 0, "{}", describe(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["outcome"], "done", "{v}");
    assert!(
        agent.head("sde").iter().all(|b| *b == 0),
        "sde's first MiB is not zero"
    );
    // The approval was for sde's serial only: sdf keeps its GPT.
    assert_eq!(&agent.head("sdf")[512..520], b"EFI PART");
}

#[test]
fn heavy_console_attaches_the_approval_of_the_selected_disk() {
    if !have("tmux") {
        eprintln!("skipping: tmux is not installed (scripts/test.sh installs it)");
        return;
    }
    let agent = Agent::start(machine);
    let (op_key, op_grant) = agent.grant("operator");
    let sde = agent.serial("sde");
    let good = agent.path("sde.approval");
    let o = agent.owner_approves(&agent.node, &sde, &["--disk", "sde"], &good);
    assert_eq!(code(&o), 0, "{}", describe(&o));
    assert_eq!(&agent.head("sde")[512..520], b"EFI PART");
    let token = &agent.node[..13];
    let tmux = Tmux::start(
        "approval",
        &format!(
            "env NODUS_PASSPHRASE={PASS} TERM=xterm-256color {NODUS} console --connect {}@{} \
         --key {} --grant {} --approval {}; sleep 30",
            agent.node,
            agent.quic,
            op_key.display(),
            op_grant.display(),
            good.display()
        ),
    );
    tmux.wait_for("the connected console", |p| {
        p.contains("connected") && p.contains(&agent.node)
    });
    tmux.keys(&["2"]);
    tmux.wait_for("the hardware screen", |p| {
        p.contains("Disks") && p.contains("sde")
    });
    // Select disks with `d` until the approve prompt names sde.
    let mut found = false;
    for _ in 0..8 {
        tmux.keys(&["a"]);
        let pane = tmux.wait_for("the approve prompt", |p| {
            p.contains(&format!("Type {token}"))
        });
        if pane.contains("approve disk sde") {
            // Only sde has an approval loaded, and the prompt says it is attached.
            assert!(pane.contains("owner's"), "{pane}");
            found = true;
            break;
        }
        assert!(!pane.contains("owner's"), "{pane}");
        // Escape on its own: followed at once by `d` a terminal reads Alt-d.
        tmux.keys(&["Escape"]);
        tmux.wait_for("the prompt to close", |p| {
            !p.contains(&format!("Type {token}"))
        });
        tmux.keys(&["d"]);
    }
    assert!(found, "no way to select sde");
    tmux.keys(&["-l", token]);
    tmux.keys(&["Enter"]);
    let pane = tmux.wait_for("the outcome", |p| {
        p.contains(": done") || p.contains("refused")
    });
    assert!(!pane.contains("refused"), "{pane}");
    assert!(
        agent.head("sde").iter().all(|b| *b == 0),
        "sde's first MiB is not zero"
    );
    assert_eq!(&agent.head("sdf")[512..520], b"EFI PART");
}
