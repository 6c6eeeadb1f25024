//! Choosing the accelerator. KVM hangs on the machines this project is built on,
//! so the default is TCG and KVM is only used after a probe that answers within a
//! short timeout: a QEMU with no machine (`-machine none`) is asked `query-kvm`
//! over QMP, and is killed (its whole process group) if it does not answer.

use std::time::Duration;

use tokio::process::Command;

use crate::{
    qmp::commands::{QueryKvm, Quit},
    vm::{Accel, qemu_program, spawn_in_group},
};

/// How long the probe may take before KVM counts as broken.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// `Kvm` if `/dev/kvm` exists and a probe QEMU reports KVM enabled within
/// [`PROBE_TIMEOUT`]; `Tcg` otherwise.
pub async fn probe_kvm() -> Accel {
    if !std::path::Path::new("/dev/kvm").exists() {
        return Accel::Tcg;
    }
    match tokio::time::timeout(PROBE_TIMEOUT, probe_inner()).await {
        Ok(Some(true)) => Accel::Kvm,
        _ => {
            tracing::info!("KVM probe failed or timed out; using TCG");
            Accel::Tcg
        }
    }
}

async fn probe_inner() -> Option<bool> {
    let dir = tempfile::tempdir().ok()?;
    let sock = dir.path().join("qmp.sock");
    let program = qemu_program();
    let mut cmd = Command::new(&program);
    cmd.args([
        "-machine",
        "none",
        "-accel",
        "kvm",
        "-nodefaults",
        "-display",
        "none",
    ])
    .arg("-qmp")
    .arg(format!("unix:{},server=on,wait=off", sock.display()))
    .stdin(std::process::Stdio::null())
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null());
    // The guard kills the probe's group when this future ends or is dropped by
    // the timeout.
    let (mut child, _group) = spawn_in_group(&mut cmd, &program).ok()?;
    let qmp = loop {
        if let Ok(Some(_)) = child.try_wait() {
            return None;
        }
        if let Ok(q) = crate::qmp::Qmp::connect(&sock).await {
            break q;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let info = qmp.execute(&QueryKvm).await.ok()?;
    let _ = qmp.execute(&Quit).await;
    Some(info.enabled)
}

/// Parses the CLI's `--accel` choice: `auto` probes, the others are taken as is.
pub async fn resolve(choice: AccelChoice) -> Accel {
    match choice {
        AccelChoice::Tcg => Accel::Tcg,
        AccelChoice::Kvm => Accel::Kvm,
        AccelChoice::Auto => probe_kvm().await,
    }
}

/// The `--accel` flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum AccelChoice {
    /// Software emulation (the default: KVM hangs on the build machines).
    #[default]
    Tcg,
    /// KVM without probing.
    Kvm,
    /// KVM if a probe answers within 3 s, else TCG.
    Auto,
}
