//! The thin async layer: a tokio task that drives a [`Sampler`] on the runtime's
//! clock and records into a shared [`History`].
//!
//! All logic lives in the sans-IO pieces; this file only supplies `now`, runs the
//! file reads off the async workers (a slow hwmon chip or ACPI thermal zone can
//! take milliseconds per read), and publishes each batch for live consoles.

use std::{
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use tokio::{
    sync::{broadcast, watch},
    task::JoinHandle,
    time::Instant,
};

use super::{
    config::TelemetryConfig,
    history::{Batch, History},
    sampler::{ClockAnchor, Sampler},
};
use crate::hal::SysRoot;

/// Batches kept for a slow subscriber before it starts missing some (it then
/// sees a `Lagged` error and can backfill from the history). A minute at 1 s.
const LIVE_BACKLOG: usize = 64;

/// Why the task ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// `stop` turned true or its sender was dropped.
    Requested,
    /// A sample panicked (a bug); telemetry stops, the rest of the agent goes on.
    SamplerPanicked,
}

/// What the running task shares with the rest of the agent.
#[derive(Debug, Clone)]
pub struct Telemetry {
    /// The history; lock it briefly (a snapshot copy) and never across an await.
    pub history: Arc<Mutex<History>>,
    /// Every batch as it is recorded, for live console updates.
    pub live: broadcast::Sender<Arc<Batch>>,
}

impl Telemetry {
    /// A snapshot of every series since `since_unix_s`, for a console's backfill.
    /// A poisoned lock (a panic elsewhere while holding it) still holds
    /// consistent rings, so it is read anyway.
    pub fn snapshot(&self, since_unix_s: u64) -> super::HistorySnapshot {
        self.history
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .snapshot(since_unix_s)
    }
}

fn unix_ms_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Starts sampling `root` on the current tokio runtime until `stop` turns true
/// (or its sender is dropped). Returns the shared state and the task.
pub fn spawn(
    root: SysRoot,
    config: TelemetryConfig,
    mut stop: watch::Receiver<bool>,
) -> (Telemetry, JoinHandle<Stopped>) {
    let start = Instant::now();
    let anchor = ClockAnchor {
        mono: Duration::ZERO,
        unix_ms: unix_ms_now(),
    };
    let shared = Telemetry {
        history: Arc::new(Mutex::new(History::new(config.history))),
        live: broadcast::channel(LIVE_BACKLOG).0,
    };
    let out = shared.clone();
    let evict_every = u64::from(config.history.coarse_step_s);
    let task = tokio::spawn(async move {
        let mut sampler = Sampler::new(root, &config, anchor);
        let mut last_evict = 0;
        loop {
            let due = start + sampler.poll_timeout();
            tokio::select! {
                _ = tokio::time::sleep_until(due) => {}
                _ = stop.wait_for(|v| *v) => return Stopped::Requested,
            }
            let now = start.elapsed();
            let Ok((s, batch)) = tokio::task::spawn_blocking(move || {
                let mut s = sampler;
                let b = s.handle_timeout(now);
                (s, b)
            })
            .await
            else {
                return Stopped::SamplerPanicked;
            };
            sampler = s;
            let Some(batch) = batch else { continue };
            {
                let mut h = shared
                    .history
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                h.record_batch(&batch);
                if batch.unix_s >= last_evict + evict_every {
                    h.evict_stale(batch.unix_s);
                    last_evict = batch.unix_s;
                }
            }
            // No subscriber is fine: consoles come and go.
            let _ = shared.live.send(Arc::new(batch));
        }
    });
    (out, task)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn samples_until_stopped() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("proc")).unwrap();
        std::fs::write(
            dir.path().join("proc/meminfo"),
            "MemTotal: 100 kB\nMemAvailable: 40 kB\n",
        )
        .unwrap();
        let root = SysRoot::at(dir.path()).unwrap();
        let (stop_tx, stop_rx) = watch::channel(false);
        let (t, task) = spawn(root, TelemetryConfig::default(), stop_rx);
        let mut live = t.live.subscribe();
        // The first sample is due at once; no waiting on the clock.
        let batch = live.recv().await.unwrap();
        assert_eq!(
            batch
                .values
                .iter()
                .find(|(n, _)| n == "mem.used_bytes")
                .map(|(_, v)| *v),
            Some(61_440.0)
        );
        assert!(
            t.snapshot(0)
                .series
                .iter()
                .any(|s| s.name == "mem.used_bytes")
        );
        stop_tx.send(true).unwrap();
        assert_eq!(task.await.unwrap(), Stopped::Requested);
    }
}
