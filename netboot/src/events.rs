//! The boot-event log: one JSON object per line, appended as machines ask for things.

use std::{
    fs::File,
    io::Write as _,
    net::IpAddr,
    path::Path,
    sync::{Arc, Mutex},
};

use serde::Serialize;

/// One line of the boot-event log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BootEvent {
    /// Unix seconds.
    pub time: u64,
    /// Which service saw it: `dhcp`, `proxy`, `binl`, `tftp` or `http`.
    pub service: &'static str,
    /// Client hardware address (`52-54-00-…`), when known.
    pub mac: Option<String>,
    /// Client SMBIOS UUID, when known.
    pub uuid: Option<String>,
    /// Client architecture (option 93), when known.
    pub arch: Option<u16>,
    /// The client's IP address, for TFTP and HTTP.
    pub peer: Option<IpAddr>,
    /// What was asked.
    pub asked: String,
    /// What was answered, or why nothing was.
    pub answered: String,
}

/// Appends boot events to a file (and to the tracing log). Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct EventLog {
    file: Option<Arc<Mutex<File>>>,
}

impl EventLog {
    /// Appends to `path`, creating it.
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(Self {
            file: Some(Arc::new(Mutex::new(f))),
        })
    }

    /// Logs to tracing only.
    pub fn tracing_only() -> Self {
        Self::default()
    }

    /// Records one event. A failed write is logged, never fatal: the log is for
    /// people, booting matters more.
    pub fn record(&self, ev: &BootEvent) {
        tracing::info!(
            service = ev.service,
            mac = ev.mac.as_deref(),
            uuid = ev.uuid.as_deref(),
            arch = ev.arch,
            peer = ?ev.peer,
            asked = %ev.asked,
            answered = %ev.answered,
            "boot event"
        );
        let Some(file) = &self.file else { return };
        let Ok(mut line) = serde_json::to_vec(ev) else {
            return;
        };
        line.push(b'\n');
        // A poisoned lock only means another writer panicked mid-line; keep going.
        let mut f = file.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = f.write_all(&line) {
            tracing::warn!(error = %e, "boot-event log write failed");
        }
    }
}

/// The current Unix time in seconds.
pub fn unix_now() -> u64 {
    nodus_identity::statement::unix_now()
}
