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

/// A console session over QUIC that got through the handshake: the Welcome, the
/// snapshot and its backfilled series are read, live messages follow on `recv`.
pub struct ConsoleSession {
    /// Kept so the connection lives as long as the session.
    pub conn: nodus_wire::Connection,
    /// Requests go here.
    pub send: nodus_wire::quic::SendFrames,
    /// Deltas and responses come from here.
    pub recv: nodus_wire::quic::RecvFrames,
    /// The agent's Welcome.
    pub welcome: nodus_wire::console::Welcome,
    /// The snapshot that followed it.
    pub snapshot: Box<nodus_wire::console::Snapshot>,
}

/// Opens `nodus/console/1` on the agent at `ready` with `key`, asking for
/// `backfill_s` of history; an error says which step failed.
pub async fn open_console(
    ready: &nodus_agent::daemon::Ready,
    key: &nodus_identity::SecretKey,
    backfill_s: u32,
) -> Result<ConsoleSession, String> {
    use nodus_wire::console::{ClientMsg, Hello, ServerMsg, VERSION};
    let client = nodus_wire::Client::new(key).map_err(|e| e.to_string())?;
    let conn = client
        .connect(
            ready.quic,
            ready.node_id.key().to_owned(),
            nodus_wire::Alpn::Console,
        )
        .await
        .map_err(|e| e.to_string())?;
    let (mut send, mut recv) = conn.open_bi().await.map_err(|e| e.to_string())?;
    send.send(&ClientMsg::Hello(Hello {
        version: VERSION,
        capabilities: 0,
        backfill_s,
        client: "test".into(),
    }))
    .await
    .map_err(|e| e.to_string())?;
    let Some(ServerMsg::Welcome(welcome)) = recv.recv().await.map_err(|e| e.to_string())? else {
        return Err("no welcome".into());
    };
    let Some(ServerMsg::Snapshot(snapshot)) = recv.recv().await.map_err(|e| e.to_string())? else {
        return Err("no snapshot".into());
    };
    for _ in 0..snapshot.series {
        let Some(ServerMsg::Series(_)) = recv.recv().await.map_err(|e| e.to_string())? else {
            return Err("series missing".into());
        };
    }
    Ok(ConsoleSession {
        conn,
        send,
        recv,
        welcome,
        snapshot,
    })
}
