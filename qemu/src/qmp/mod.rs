//! A typed, async QMP client over a Unix socket.
//!
//! [`core::QmpCore`] is the sans-IO protocol; [`Qmp`] wires it to a tokio
//! `UnixStream`: one reader task routes replies to the waiting caller by id and
//! events to a broadcast channel. Commands are types implementing [`Command`], so
//! every argument and return value is checked at compile time:
//!
//! ```no_run
//! # async fn f() -> Result<(), nodus_qemu::qmp::QmpError> {
//! use nodus_qemu::qmp::{Qmp, commands::{QueryStatus, SetLink}};
//! let qmp = Qmp::connect("/tmp/vm/qmp.sock".as_ref()).await?;
//! let status = qmp.execute(&QueryStatus).await?;
//! qmp.execute(&SetLink { name: "nic-nic0".into(), up: false }).await?;
//! # Ok(()) }
//! ```

pub mod commands;
pub mod core;

use std::{
    collections::HashMap,
    path::Path,
    sync::{Arc, Mutex},
    time::Duration,
};

use serde::{Serialize, de::DeserializeOwned};
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::{UnixStream, unix::OwnedWriteHalf},
    sync::{broadcast, oneshot},
};

pub use self::core::{Event, ProtocolError, QemuVersion, QmpErrorReply};
use self::core::{Output, QmpCore};

/// How long to wait for the greeting and for each reply. QEMU answers in
/// milliseconds even under TCG; a minute means it is wedged.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(60);

/// A QMP command with typed arguments and return value.
pub trait Command: Serialize {
    /// The command name (`execute`).
    const NAME: &'static str;
    /// What `return` deserializes into.
    type Returns: DeserializeOwned;
}

/// Why a QMP exchange failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QmpError {
    /// Connecting to or using the socket failed.
    #[error("QMP socket")]
    Io(#[from] std::io::Error),
    /// The peer spoke something that is not QMP.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// QEMU refused the command.
    #[error("QMP command {command} failed: {class}: {desc}")]
    Command {
        /// The command name.
        command: &'static str,
        /// QEMU's error class.
        class: String,
        /// QEMU's description.
        desc: String,
    },
    /// The reply did not have the expected shape.
    #[error("QMP reply to {command} has an unexpected shape")]
    Decode {
        /// The command name.
        command: &'static str,
        /// The serde error.
        #[source]
        source: serde_json::Error,
    },
    /// The connection closed (QEMU exited) before the reply came.
    #[error("QMP connection closed")]
    Closed,
    /// No greeting or reply within [`REPLY_TIMEOUT`].
    #[error("QMP peer did not answer in time")]
    Timeout,
}

type Pending = Arc<Mutex<PendingState>>;

#[derive(Default)]
struct PendingState {
    waiting: HashMap<u64, oneshot::Sender<Result<serde_json::Value, QmpErrorReply>>>,
    closed: bool,
}

/// A connected, negotiated QMP session.
pub struct Qmp {
    writer: tokio::sync::Mutex<(OwnedWriteHalf, QmpCoreEncoder)>,
    pending: Pending,
    events: broadcast::Sender<Event>,
    version: QemuVersion,
    reader: tokio::task::JoinHandle<()>,
}

/// The encoding half of the core (ids); the parsing half lives in the reader task.
struct QmpCoreEncoder(QmpCore);

impl std::fmt::Debug for Qmp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Qmp")
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl Qmp {
    /// Connects to a QMP Unix socket, reads the greeting and negotiates
    /// capabilities.
    pub async fn connect(path: &Path) -> Result<Self, QmpError> {
        let stream = UnixStream::connect(path).await?;
        Self::over(stream).await
    }

    /// Runs QMP over an already connected stream (tests use a socket pair).
    pub async fn over(stream: UnixStream) -> Result<Self, QmpError> {
        let (mut rd, wr) = stream.into_split();
        let mut parser = QmpCore::new();
        // Read until the greeting; nothing else may come before it.
        let version = tokio::time::timeout(REPLY_TIMEOUT, async {
            let mut buf = vec![0u8; 8192];
            loop {
                if let Some(out) = parser.poll() {
                    return match out {
                        Output::Greeting(v) => Ok(v),
                        _ => Err(QmpError::Protocol(ProtocolError::NoGreeting)),
                    };
                }
                let n = rd.read(&mut buf).await?;
                if n == 0 {
                    return Err(QmpError::Closed);
                }
                parser.feed(&buf[..n])?;
            }
        })
        .await
        .map_err(|_| QmpError::Timeout)??;

        let pending: Pending = Arc::default();
        let (events, _) = broadcast::channel(256);
        let reader = tokio::spawn(read_loop(rd, parser, pending.clone(), events.clone()));
        let qmp = Self {
            writer: tokio::sync::Mutex::new((wr, QmpCoreEncoder(QmpCore::new()))),
            pending,
            events,
            version,
            reader,
        };
        qmp.execute(&commands::QmpCapabilities).await?;
        Ok(qmp)
    }

    /// QEMU's version from the greeting.
    pub fn version(&self) -> QemuVersion {
        self.version
    }

    /// A receiver for every event from now on.
    pub fn events(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// Executes a typed command and decodes its return value.
    pub async fn execute<C: Command>(&self, cmd: &C) -> Result<C::Returns, QmpError> {
        let args = serde_json::to_value(cmd).map_err(|source| QmpError::Decode {
            command: C::NAME,
            source,
        })?;
        let args = match args {
            serde_json::Value::Null => None,
            v => Some(v),
        };
        let value = self.execute_raw(C::NAME, args).await?;
        // `{}` is how QEMU returns "nothing"; a unit return type accepts it.
        serde_json::from_value(value).map_err(|source| QmpError::Decode {
            command: C::NAME,
            source,
        })
    }

    /// Executes a command by name with untyped arguments.
    pub async fn execute_raw(
        &self,
        name: &'static str,
        args: Option<serde_json::Value>,
    ) -> Result<serde_json::Value, QmpError> {
        let (tx, rx) = oneshot::channel();
        {
            let mut w = self.writer.lock().await;
            let (id, bytes) = w.1.0.encode(name, args);
            {
                let mut p = lock(&self.pending);
                if p.closed {
                    return Err(QmpError::Closed);
                }
                p.waiting.insert(id, tx);
            }
            w.0.write_all(&bytes).await?;
        }
        match tokio::time::timeout(REPLY_TIMEOUT, rx).await {
            Err(_) => Err(QmpError::Timeout),
            Ok(Err(_)) => Err(QmpError::Closed),
            Ok(Ok(Ok(v))) => Ok(v),
            Ok(Ok(Err(e))) => Err(QmpError::Command {
                command: name,
                class: e.class,
                desc: e.desc,
            }),
        }
    }

    /// Waits for the next event named `name`, up to `timeout`.
    pub async fn wait_event(
        rx: &mut broadcast::Receiver<Event>,
        name: &str,
        timeout: Duration,
    ) -> Result<Event, QmpError> {
        tokio::time::timeout(timeout, async {
            loop {
                match rx.recv().await {
                    Ok(e) if e.name == name => return Ok(e),
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return Err(QmpError::Closed),
                }
            }
        })
        .await
        .map_err(|_| QmpError::Timeout)?
    }
}

impl Drop for Qmp {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

fn lock(p: &Pending) -> std::sync::MutexGuard<'_, PendingState> {
    // A poisoned lock only means another task panicked mid-insert; the map is
    // still consistent (single insert/remove operations).
    p.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn read_loop(
    mut rd: tokio::net::unix::OwnedReadHalf,
    mut core: QmpCore,
    pending: Pending,
    events: broadcast::Sender<Event>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match rd.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Err(e) = core.feed(&buf[..n]) {
            tracing::warn!(error = %e, "QMP stream broken");
            break;
        }
        while let Some(out) = core.poll() {
            match out {
                Output::Reply { id, result } => {
                    if let Some(tx) = lock(&pending).waiting.remove(&id) {
                        let _ = tx.send(result);
                    }
                }
                Output::Event(e) => {
                    tracing::debug!(event = %e.name, "QMP event");
                    let _ = events.send(e);
                }
                Output::Greeting(_) => {}
            }
        }
    }
    // Dropping the senders wakes every waiter with `Closed`.
    let mut p = lock(&pending);
    p.closed = true;
    p.waiting.clear();
}

#[cfg(test)]
mod tests {
    use super::*;
    use commands::{QueryStatus, RunState, SetLink, SystemPowerdown};
    use tokio::io::{AsyncBufReadExt as _, BufReader};

    /// A scripted QMP peer: greets, then answers each command from `script` in
    /// order (checking the command name), emitting `events` after the last one.
    async fn fake_peer(
        sock: UnixStream,
        script: Vec<(&'static str, serde_json::Value)>,
        event_after: Option<&'static str>,
    ) -> Vec<serde_json::Value> {
        let (rd, mut wr) = sock.into_split();
        wr.write_all(
            b"{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, \"major\": 7}, \"package\": \"\"}, \"capabilities\": []}}\r\n",
        )
        .await
        .unwrap();
        let mut lines = BufReader::new(rd).lines();
        let mut seen = Vec::new();
        for (name, reply) in script {
            let line = lines.next_line().await.unwrap().unwrap();
            let cmd: serde_json::Value = serde_json::from_str(&line).unwrap();
            assert_eq!(cmd["execute"], name);
            let mut reply = reply;
            reply["id"] = cmd["id"].clone();
            wr.write_all(format!("{reply}\r\n").as_bytes())
                .await
                .unwrap();
            seen.push(cmd);
        }
        if let Some(ev) = event_after {
            wr.write_all(
                format!(
                    "{{\"timestamp\": {{\"seconds\": 1, \"microseconds\": 2}}, \"event\": \"{ev}\"}}\r\n"
                )
                .as_bytes(),
            )
            .await
            .unwrap();
        }
        // Keep the peer open until the client is done reading.
        let _ = lines.next_line().await;
        seen
    }

    #[tokio::test]
    async fn negotiates_and_runs_typed_commands() {
        let (a, b) = UnixStream::pair().unwrap();
        let peer = tokio::spawn(fake_peer(
            b,
            vec![
                ("qmp_capabilities", serde_json::json!({"return": {}})),
                (
                    "query-status",
                    serde_json::json!({"return": {"status": "running", "running": true, "singlestep": false}}),
                ),
                ("set_link", serde_json::json!({"return": {}})),
                ("system_powerdown", serde_json::json!({"return": {}})),
            ],
            Some("POWERDOWN"),
        ));
        let qmp = Qmp::over(a).await.unwrap();
        assert_eq!(qmp.version().major, 7);
        let mut events = qmp.events();
        let st = qmp.execute(&QueryStatus).await.unwrap();
        assert_eq!(st.status, RunState::Running);
        assert!(st.running);
        qmp.execute(&SetLink {
            name: "nic-nic0".into(),
            up: false,
        })
        .await
        .unwrap();
        qmp.execute(&SystemPowerdown).await.unwrap();
        let ev = Qmp::wait_event(&mut events, "POWERDOWN", Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(ev.timestamp, (1, 2));
        drop(qmp);
        let seen = peer.await.unwrap();
        assert_eq!(
            seen[2]["arguments"],
            serde_json::json!({"name": "nic-nic0", "up": false})
        );
        assert!(seen[3].get("arguments").is_none());
    }

    #[tokio::test]
    async fn command_error_carries_class_and_closed_peer_fails_waiters() {
        let (a, b) = UnixStream::pair().unwrap();
        let peer = tokio::spawn(async move {
            let (rd, mut wr) = b.into_split();
            wr.write_all(b"{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 0, \"major\": 8}}, \"capabilities\": []}}\n").await.unwrap();
            let mut lines = BufReader::new(rd).lines();
            let l = lines.next_line().await.unwrap().unwrap();
            let id = serde_json::from_str::<serde_json::Value>(&l).unwrap()["id"].clone();
            wr.write_all(format!("{{\"return\": {{}}, \"id\": {id}}}\n").as_bytes())
                .await
                .unwrap();
            let l = lines.next_line().await.unwrap().unwrap();
            let id = serde_json::from_str::<serde_json::Value>(&l).unwrap()["id"].clone();
            wr.write_all(format!("{{\"error\": {{\"class\": \"DeviceNotFound\", \"desc\": \"no nic\"}}, \"id\": {id}}}\n").as_bytes()).await.unwrap();
            // Read one more command and hang up without answering.
            let _ = lines.next_line().await;
        });
        let qmp = Qmp::over(a).await.unwrap();
        let err = qmp
            .execute(&SetLink {
                name: "x".into(),
                up: true,
            })
            .await
            .unwrap_err();
        assert!(
            matches!(&err, QmpError::Command { class, .. } if class == "DeviceNotFound"),
            "{err:?}"
        );
        let err = qmp.execute(&QueryStatus).await.unwrap_err();
        assert!(matches!(err, QmpError::Closed), "{err:?}");
        peer.await.unwrap();
    }
}
