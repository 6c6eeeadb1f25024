//! Guest paths the profile suite does not take, each on a small machine with the
//! real node image under TCG:
//!
//! - `nodus qemu run PROFILE`: it prints the agent's QUIC address and NodeId,
//!   the owner's console key it prints reaches the agent there, and SIGINT takes
//!   the VM's process group down with it;
//! - a static address from `nodus.net=static:…`, the agent reached over QUIC
//!   through the host forward;
//! - Ctrl-Alt-Del: the init stops the agent cleanly (a goodbye to the console)
//!   and the machine goes down.
//!
//! Each test skips, saying why, when the kernel or QEMU is missing (the test
//! script installs both).
#![allow(clippy::unwrap_used, clippy::expect_used)] // Test code: a panic is a failure.

use std::{
    io::{BufRead as _, BufReader},
    path::PathBuf,
    process::{Command, Stdio},
    time::Duration,
};

use nodus_hw_profiles::Profile;
use nodus_identity::{AccountId, Keystore, Passphrase, SecretKey};
use nodus_qemu::{
    agent_view::{AgentView, End},
    kernel::{KernelPaths, from_unpacked, locate},
    qmp::commands::HumanMonitorCommand,
    serial::{Ready, SerialWatch},
    suite::{Image, node_cmdline},
    vm::{Accel, Launch, Serial, Vm},
};

/// The smallest machine the node image is happy on: one virtio disk and one
/// virtio NIC with link.
const PROFILE: &str = r#"
name = "guest-heavy"
description = "small machine for the guest-path tests"
[machine]
cpus = 2
memory_mib = 1024
[dmi]
vendor = "Nodus Test"
[[disks]]
id = "vd0"
bus = "virtio"
size_gib = 4
rotation_rate = 1
serial = "VD0"
[[nics]]
id = "nic0"
model = "virtio"
mac = "52:54:00:00:bb:01"
[expect]
"#;

/// The guest's ready line, then QUIC.
const BOOT_WITHIN: Duration = Duration::from_secs(150);

fn kernel() -> Option<KernelPaths> {
    let k = match std::env::var_os("NODUS_TEST_KERNEL_ROOT") {
        Some(root) => from_unpacked(&PathBuf::from(root)).ok(),
        None => locate(None, None).ok(),
    };
    if k.is_none() {
        eprintln!(
            "SKIP: no Debian kernel (set NODUS_TEST_KERNEL_ROOT or run `nodus qemu fetch-kernel`)"
        );
        return None;
    }
    let qemu = nodus_qemu::vm::qemu_program();
    if Command::new(&qemu).arg("--version").output().is_err() {
        eprintln!("SKIP: {qemu} missing (scripts/test.sh installs qemu-system-x86)");
        return None;
    }
    k
}

/// The `nodus` binary: `$NODUS_BIN`, else the one built beside this test.
fn nodus_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("NODUS_BIN") {
        return p.into();
    }
    // target/<profile>/deps/guest_heavy-… → target/<profile>/nodus
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().unwrap().parent().unwrap().join("nodus");
    assert!(
        bin.exists(),
        "{} not built (cargo build --bin nodus)",
        bin.display()
    );
    bin
}

/// The `nodus` that goes into the image: `$NODUS_GUEST_BIN` (an optimised
/// build boots faster under emulation), else [`nodus_bin`].
fn guest_bin() -> PathBuf {
    std::env::var_os("NODUS_GUEST_BIN").map_or_else(nodus_bin, PathBuf::from)
}

fn profile() -> Profile {
    Profile::from_toml(PROFILE, "guest-heavy.toml").unwrap()
}

async fn boot(k: &KernelPaths, extra: &[String]) -> (Vm, Image, SecretKey) {
    let image = Image::build(&guest_bin(), k).await.unwrap();
    let owner = SecretKey::generate().unwrap();
    let p = profile();
    let mut cmdline = node_cmdline(&p, &image, &owner.public());
    cmdline.extend(extra.iter().cloned());
    let vm = Vm::start(
        &p,
        Launch {
            kernel: image.kernel.clone(),
            initrd: image.initramfs.clone(),
            cmdline,
            accel: Accel::Tcg,
            serial: Serial::File,
            quic_port: Some(0),
            paused: true,
        },
    )
    .await
    .unwrap();
    (vm, image, owner)
}

fn log(vm: &Vm) -> String {
    std::fs::read_to_string(vm.serial_log()).unwrap_or_default()
}

async fn wait_line(vm: &mut Vm, w: &mut SerialWatch, what: &str, within: Duration) -> String {
    let line = w
        .wait_for(|l| l.contains(what), within, || vm.has_exited())
        .await;
    match line {
        Some(l) => l,
        None => panic!("no {what:?} on the console; serial log:\n{}", log(vm)),
    }
}

/// Waits for the agent's ready line and connects to it as `owner`.
async fn connect_when_ready(vm: &mut Vm, w: &mut SerialWatch, owner: &SecretKey) -> AgentView {
    let ready = wait_line(vm, w, "nodus-agent ready", BOOT_WITHIN).await;
    let ready = Ready::parse(&ready).unwrap();
    AgentView::connect(
        vm.quic_addr().unwrap(),
        *ready.node.key(),
        owner,
        Duration::from_secs(60),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}; serial log:\n{}", log(vm)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_static_address_from_the_command_line_reaches_the_agent() {
    let Some(k) = kernel() else { return };
    // The user network's forward goes to 10.0.2.15, so that is the static
    // address; the console line says which way it was configured.
    let (mut vm, _image, owner) =
        boot(&k, &["nodus.net=static:10.0.2.15/24,10.0.2.2".to_owned()]).await;
    let mut w = SerialWatch::new(vm.serial_log());
    let up = wait_line(&mut vm, &mut w, "network up:", BOOT_WITHIN).await;
    assert!(
        up.contains("10.0.2.15/24 via 10.0.2.2 (static"),
        "not the static setting: {up}"
    );
    assert!(!log(&vm).contains("dhcp from"), "{}", log(&vm));
    let view = connect_when_ready(&mut vm, &mut w, &owner).await;
    let inv = view.current().inventory;
    let ips = inv.to_string();
    assert!(
        ips.contains("10.0.2.15"),
        "inventory lacks the address: {ips}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_on_node_console_runs_and_is_only_a_viewer() {
    let Some(k) = kernel() else { return };
    // The init starts the on-node console on tty1 (the default `nodus.console`)
    // as `nobody`; the agent names each console that attaches, with its role.
    let (mut vm, _image, owner) = boot(&k, &[]).await;
    let mut w = SerialWatch::new(vm.serial_log());
    let mut view = connect_when_ready(&mut vm, &mut w, &owner).await;
    let state = view
        .wait_for(
            |s| {
                s.events
                    .iter()
                    .any(|e| e.starts_with("console: uid=") && e.contains("nodus-console"))
            },
            Duration::from_secs(120),
        )
        .await
        .unwrap_or_else(|s| panic!("no on-node console attached: {:?}\n{}", s.events, log(&vm)));
    let local: Vec<_> = state
        .events
        .iter()
        .filter(|e| e.starts_with("console: uid="))
        .collect();
    assert!(
        local
            .iter()
            .all(|e| e.starts_with("console: uid=65534 attached as viewer")),
        "the on-node console is not an unprivileged viewer: {local:?}"
    );
    let me = AccountId::from(owner.public()).to_string();
    assert!(
        state
            .events
            .iter()
            .any(|e| e.contains(&format!("{me} attached as owner"))),
        "our own session is not named: {:?}",
        state.events
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_ctrl_alt_del_stops_the_agent_cleanly_and_ends_the_machine() {
    let Some(k) = kernel() else { return };
    let (mut vm, _image, owner) = boot(&k, &[]).await;
    let mut w = SerialWatch::new(vm.serial_log());
    let mut view = connect_when_ready(&mut vm, &mut w, &owner).await;
    // The keyboard's Ctrl-Alt-Del; the init disabled the kernel's own handling,
    // so it arrives as SIGINT to PID 1.
    vm.qmp()
        .execute(&HumanMonitorCommand {
            command_line: "sendkey ctrl-alt-delete".into(),
        })
        .await
        .unwrap();
    wait_line(
        &mut vm,
        &mut w,
        "Ctrl-Alt-Del: stopping services",
        Duration::from_secs(60),
    )
    .await;
    let end = view
        .wait_for(|s| s.end.is_some(), Duration::from_secs(60))
        .await
        .unwrap_or_else(|s| panic!("no end of the session: {s:?}\n{}", log(&vm)));
    assert!(
        matches!(end.end, Some(End::Goodbye(_))),
        "the agent did not say goodbye: {:?}",
        end.end
    );
    wait_line(&mut vm, &mut w, "agent stopped", Duration::from_secs(60)).await;
    // `-no-reboot`: the machine going down ends QEMU.
    assert!(
        vm.wait_exit(Duration::from_secs(60)).await.is_some(),
        "QEMU still runs; serial log:\n{}",
        log(&vm)
    );
}

/// The pids of `pid`'s children.
fn children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for t in tasks.flatten() {
        if let Ok(s) = std::fs::read_to_string(t.path().join("children")) {
            out.extend(s.split_whitespace().filter_map(|p| p.parse::<u32>().ok()));
        }
    }
    out
}

#[test]
fn heavy_qemu_run_prints_address_and_node_and_sigint_stops_the_vm() {
    let Some(k) = kernel() else { return };
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("guest-heavy.toml");
    std::fs::write(&profile, PROFILE).unwrap();
    let mut child = Command::new(nodus_bin())
        .args(["qemu", "run"])
        .arg(&profile)
        .arg("--kernel")
        .arg(&k.kernel)
        .arg("--modules")
        .arg(&k.modules)
        .args(["--boot-timeout", "150"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    let mut agent_line = None;
    let mut line = String::new();
    while stderr.read_line(&mut line).unwrap_or(0) > 0 {
        seen.push_str(&line);
        if line.contains("[nodus qemu] agent ") {
            agent_line = Some(line.trim().to_owned());
            break;
        }
        line.clear();
    }
    let Some(agent_line) = agent_line else {
        let _ = child.kill();
        panic!("no agent line from `nodus qemu run`:\n{seen}");
    };
    // "[nodus qemu] agent node1… at quic 127.0.0.1:P; owner console key PATH (passphrase "…")"
    let word_after = |w: &str| -> String {
        let mut it = agent_line.split_whitespace();
        it.find(|x| *x == w);
        it.next()
            .unwrap_or_else(|| panic!("no {w} in {agent_line}"))
            .trim_end_matches([';', ','])
            .to_owned()
    };
    let node: nodus_identity::NodeId = word_after("agent").parse().unwrap();
    let addr: std::net::SocketAddr = word_after("quic").parse().unwrap();
    let keystore = PathBuf::from(word_after("key"));
    let owner = Keystore::open(
        &keystore,
        &Passphrase::new(nodus_qemu::suite::THROWAWAY_PASSPHRASE),
    )
    .unwrap();
    // What it printed is what a console uses.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let view = rt
        .block_on(AgentView::connect(
            addr,
            *node.key(),
            &owner,
            Duration::from_secs(60),
        ))
        .unwrap_or_else(|e| panic!("{e}; `nodus qemu run` said:\n{seen}"));
    assert!(view.current().inventory.is_object());
    drop(view);

    let qemu: Vec<u32> = children(child.id())
        .into_iter()
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/comm"))
                .is_ok_and(|c| c.trim().starts_with("qemu-system"))
        })
        .collect();
    assert_eq!(qemu.len(), 1, "expected one QEMU child, got {qemu:?}");
    let qemu = qemu[0];
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "interrupted run exited 0");
    let mut gone = false;
    for _ in 0..100 {
        if !nodus_qemu::vm::is_running(qemu) {
            gone = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        gone,
        "QEMU (pid {qemu}) outlived `nodus qemu run` after SIGINT"
    );
    // Its whole process group is gone too (no helper left behind). A killed
    // member may linger as a zombie until whoever inherited it reaps it (slow on
    // a loaded machine); a zombie runs nothing, so only live members count.
    let mut live = group_members(qemu);
    for _ in 0..100 {
        if live.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
        live = group_members(qemu);
    }
    assert!(
        live.is_empty(),
        "process group {qemu} still has live members {live:?}"
    );
}

/// Live (not zombie) processes whose process group is `pgid`, from `/proc`.
fn group_members(pgid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            // After the parenthesised name: state, ppid, pgrp, ...
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
                let mut f = s.rsplit(')').next().unwrap_or("").split_whitespace();
                let state = f.next();
                let pgrp = f.nth(1).and_then(|g| g.parse::<u32>().ok());
                state != Some("Z") && pgrp == Some(pgid)
            })
        })
        .collect()
}
