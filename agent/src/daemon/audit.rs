//! The audit log: one JSON line per action request, allowed or refused, written
//! and synced before the answer leaves the node.
//!
//! It lives in `<state>/audit.log`, is append-only, and doubles as the memory of
//! which request ids already ran, so an action retried after an agent restart is
//! still answered with its first outcome instead of running twice.

use std::{
    collections::HashMap,
    fs::File,
    io::{BufRead as _, Write as _},
    path::{Path, PathBuf},
    sync::Mutex,
};

use nodus_wire::console::{Outcome, RefusalCode, RequestId};
use serde::{Deserialize, Serialize};

/// Request ids remembered for idempotency; the oldest are forgotten first. At
/// one action a second this is more than a day.
const REMEMBERED: usize = 100_000;

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// When, Unix seconds.
    pub unix_s: u64,
    /// Who: `acct1…` for a QUIC peer, `uid=…` for the Unix socket, `dbus`.
    pub peer: String,
    /// The role the peer had when it asked.
    pub role: String,
    /// The request id (hex).
    pub request_id: String,
    /// The action (`identify`, `reboot`, `poweroff`, `approve-disk`).
    pub action: String,
    /// The action's target, when it has one (a disk).
    pub target: Option<String>,
    /// `done` or the refusal code.
    pub result: String,
    /// The message returned to the peer.
    pub message: String,
}

/// Why the audit log could not be used.
#[derive(Debug, thiserror::Error)]
#[error("Cannot write the audit log {path}")]
pub struct AuditError {
    /// The file.
    pub path: PathBuf,
    /// The OS error.
    #[source]
    pub source: std::io::Error,
}

/// The open audit log.
#[derive(Debug)]
pub struct Audit {
    path: PathBuf,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    file: File,
    seen: HashMap<(String, RequestId), Outcome>,
    order: std::collections::VecDeque<(String, RequestId)>,
}

/// The `result` word of an outcome.
pub fn result_word(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Done(_) => "done",
        Outcome::Refused { code, .. } => match code {
            RefusalCode::NotAuthorized => "not_authorized",
            RefusalCode::ObserveMode => "observe_mode",
            RefusalCode::BadConfirmation => "bad_confirmation",
            RefusalCode::NotFound => "not_found",
            RefusalCode::Invalid => "invalid",
            RefusalCode::Failed => "failed",
        },
    }
}

fn parse_id(hex: &str) -> Option<RequestId> {
    let bytes = data_hex(hex)?;
    Some(RequestId(bytes.try_into().ok()?))
}

fn data_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

fn outcome_of(e: &Entry) -> Outcome {
    let code = match e.result.as_str() {
        "done" => return Outcome::Done(e.message.clone()),
        "not_authorized" => RefusalCode::NotAuthorized,
        "observe_mode" => RefusalCode::ObserveMode,
        "bad_confirmation" => RefusalCode::BadConfirmation,
        "not_found" => RefusalCode::NotFound,
        "invalid" => RefusalCode::Invalid,
        _ => RefusalCode::Failed,
    };
    Outcome::Refused {
        code,
        message: e.message.clone(),
    }
}

impl Audit {
    /// Opens (or creates) the log at `path` and remembers the request ids in it.
    /// Damaged lines (a torn write at a crash) are skipped.
    pub fn open(path: &Path) -> Result<Self, AuditError> {
        let err = |source| AuditError {
            path: path.to_owned(),
            source,
        };
        let mut seen = HashMap::new();
        let mut order = std::collections::VecDeque::new();
        if let Ok(f) = File::open(path) {
            for line in std::io::BufReader::new(f).lines() {
                let Ok(line) = line else { break };
                let Ok(e) = serde_json::from_str::<Entry>(&line) else {
                    continue;
                };
                // Refused requests are not remembered: the same id may be retried
                // once the refusal's cause (a wrong token) is fixed.
                if e.result != "done" {
                    continue;
                }
                if let Some(id) = parse_id(&e.request_id) {
                    let key = (e.peer.clone(), id);
                    if seen.insert(key.clone(), outcome_of(&e)).is_none() {
                        order.push_back(key);
                    }
                }
            }
        }
        while order.len() > REMEMBERED {
            if let Some(k) = order.pop_front() {
                seen.remove(&k);
            }
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(err)?;
        Ok(Self {
            path: path.to_owned(),
            inner: Mutex::new(Inner { file, seen, order }),
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The first outcome of `id` from `peer`, if it already ran.
    pub fn replay(&self, peer: &str, id: RequestId) -> Option<Outcome> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.seen.get(&(peer.to_owned(), id)).cloned()
    }

    /// Appends `entry` and syncs it to disk; remembers its id when it was done.
    pub fn record(
        &self,
        entry: &Entry,
        id: RequestId,
        outcome: &Outcome,
    ) -> Result<(), AuditError> {
        let mut line = serde_json::to_string(entry).map_err(|e| AuditError {
            path: self.path.clone(),
            source: std::io::Error::other(e),
        })?;
        line.push('\n');
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let err = |source| AuditError {
            path: self.path.clone(),
            source,
        };
        inner.file.write_all(line.as_bytes()).map_err(err)?;
        inner.file.sync_data().map_err(err)?;
        if matches!(outcome, Outcome::Done(_)) {
            let key = (entry.peer.clone(), id);
            if inner.seen.insert(key.clone(), outcome.clone()).is_none() {
                inner.order.push_back(key);
                if inner.order.len() > REMEMBERED
                    && let Some(old) = inner.order.pop_front()
                {
                    inner.seen.remove(&old);
                }
            }
        }
        Ok(())
    }
}

/// Reads every entry of an audit log (tests and `nodus agent audit`).
pub fn read_all(path: &Path) -> std::io::Result<Vec<Entry>> {
    let text = std::fs::read_to_string(path)?;
    Ok(text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: RequestId, result: &str) -> Entry {
        Entry {
            unix_s: 1,
            peer: "acct1x".into(),
            role: "operator".into(),
            request_id: id.to_string(),
            action: "identify".into(),
            target: None,
            result: result.into(),
            message: "m".into(),
        }
    }

    #[test]
    fn done_ids_survive_reopen_and_refusals_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let a = Audit::open(&path).unwrap();
        let done = RequestId([1; 16]);
        let refused = RequestId([2; 16]);
        a.record(&entry(done, "done"), done, &Outcome::Done("m".into()))
            .unwrap();
        let no = Outcome::Refused {
            code: RefusalCode::BadConfirmation,
            message: "m".into(),
        };
        a.record(&entry(refused, "bad_confirmation"), refused, &no)
            .unwrap();
        drop(a);
        // A torn last line from a crash is skipped, not fatal.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"unix_s\":")
            .unwrap();
        let b = Audit::open(&path).unwrap();
        assert_eq!(b.replay("acct1x", done), Some(Outcome::Done("m".into())));
        assert_eq!(b.replay("acct1x", refused), None);
        assert_eq!(b.replay("acct1other", done), None);
        assert_eq!(read_all(&path).unwrap().len(), 2);
    }
}
