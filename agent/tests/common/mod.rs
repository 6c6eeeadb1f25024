//! Shared by the agent's integration tests and benches: the real-machine fixtures
//! and a generator of synthetic machines.
#![allow(
    dead_code,
    unreachable_pub,
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used
)]

pub mod generate;

use std::path::{Path, PathBuf};

/// `shared/fixtures/sysfs`, next to the repository (as laid out for sessions and CI).
pub fn fixtures_dir() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    for up in manifest.ancestors() {
        let p = up.join("shared/fixtures/sysfs");
        if p.is_dir() {
            return p;
        }
    }
    panic!(
        "shared/fixtures/sysfs not found above {}",
        manifest.display()
    );
}

/// Unpacks the named archives into a fresh temporary directory.
pub fn unpack(archives: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for a in archives {
        let status = std::process::Command::new("tar")
            .arg("xzf")
            .arg(fixtures_dir().join(a))
            .arg("-C")
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(status.success(), "tar xzf {a}");
    }
    dir
}

/// The procfs trees (`sys/` and `proc/` of one machine).
pub fn procfs() -> tempfile::TempDir {
    unpack(&["procfs-sys.tar.gz", "procfs-proc.tar.gz"])
}

/// The node_exporter `sys/` tree.
pub fn node_exporter() -> tempfile::TempDir {
    unpack(&["node-exporter-sys.tar.gz"])
}

/// A daemon running on the test's tokio runtime until `stop` is sent.
pub struct RunningAgent {
    /// What it serves.
    pub ready: nodus_agent::daemon::Ready,
    /// Send to shut it down.
    pub stop: tokio::sync::oneshot::Sender<()>,
    /// Ends once it stopped.
    pub task: tokio::task::JoinHandle<()>,
}

/// Starts `nodus_agent::daemon::run` with `config` and `key` and waits (60 s at
/// most) for it to serve.
pub async fn spawn_agent(
    config: nodus_agent::daemon::config::Config,
    key: nodus_identity::SecretKey,
) -> RunningAgent {
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        nodus_agent::daemon::run(
            config,
            key,
            move |r| {
                let _ = ready_tx.send(r.clone());
            },
            async move {
                let _ = stop_rx.await;
            },
        )
        .await
        .unwrap();
    });
    let ready = tokio::time::timeout(std::time::Duration::from_secs(60), ready_rx)
        .await
        .unwrap()
        .unwrap();
    RunningAgent { ready, stop, task }
}
