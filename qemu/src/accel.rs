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
    probe_with(&qemu_program(), PROBE_TIMEOUT).await
}

/// Probes KVM with `program` as QEMU, giving up after `timeout`: `Kvm` only if
/// it answers `query-kvm` with KVM enabled in time. The probe's process group is
/// killed whatever happens.
pub async fn probe_with(program: &str, timeout: Duration) -> Accel {
    match tokio::time::timeout(timeout, probe_inner(program)).await {
        Ok(Some(true)) => Accel::Kvm,
        _ => {
            tracing::info!("KVM probe failed or timed out; using TCG");
            Accel::Tcg
        }
    }
}

async fn probe_inner(program: &str) -> Option<bool> {
    let dir = tempfile::tempdir().ok()?;
    let sock = dir.path().join("qmp.sock");
    let mut cmd = Command::new(program);
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
    let (mut child, _group) = spawn_in_group(&mut cmd, program).ok()?;
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    /// A stand-in for a QEMU whose KVM hangs: it writes its pid, then never opens
    /// its QMP socket (like `-accel kvm` stuck in the kernel).
    fn hanging_qemu(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
        let pid_file = dir.join("pid");
        let script = dir.join("qemu-hangs");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\necho $$ > {}\nexec sleep 600\n",
                pid_file.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        (script, pid_file)
    }

    #[tokio::test]
    async fn a_hanging_kvm_probe_falls_back_to_tcg_and_leaves_nothing_running() {
        let dir = tempfile::tempdir().unwrap();
        let (script, pid_file) = hanging_qemu(dir.path());
        let accel = probe_with(script.to_str().unwrap(), Duration::from_secs(2)).await;
        assert_eq!(accel, Accel::Tcg);
        let pid: u32 = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // The group was SIGKILLed when the probe gave up; give the kernel a moment.
        let mut gone = false;
        for _ in 0..100 {
            if !crate::vm::is_running(pid) {
                gone = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(gone, "the hanging probe (pid {pid}) outlived the timeout");
    }

    #[tokio::test]
    async fn a_qemu_that_exits_at_once_means_tcg() {
        assert_eq!(
            probe_with("false", Duration::from_secs(5)).await,
            Accel::Tcg
        );
        assert_eq!(
            probe_with("/nonexistent/qemu", Duration::from_secs(5)).await,
            Accel::Tcg
        );
    }
}
