//! The daemon's shared state and its change feed.
//!
//! Every console session reads the same [`Hub`]: the latest inventory (kept both
//! as the typed value and as the JSON document the protocol carries), node facts,
//! the recent event log and stake. Changes go out once, already framed: a delta
//! is encoded a single time and the same bytes are written to every session, so
//! fifty consoles cost fifty socket writes, not fifty serializations.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::{Instant, SystemTime, UNIX_EPOCH},
};

use bytes::Bytes;
use nodus_wire::console::{
    Delta, Event, Level, Mode as WireMode, NodeFacts, Series, ServerMsg, Snapshot, Stake, Units,
};
use tokio::sync::broadcast;

use crate::{inventory::Inventory, inventory::Mode, telemetry::task::Telemetry};

/// Most events kept for new sessions.
pub const EVENT_BACKLOG: usize = 500;

/// Frames buffered per slow session before it is told to start over with a
/// fresh snapshot (about a minute of 1 Hz samples plus events).
const DELTA_BACKLOG: usize = 256;

/// The shared state.
pub struct Hub {
    state: Mutex<State>,
    deltas: broadcast::Sender<Bytes>,
    telemetry: Option<Telemetry>,
    started: Instant,
    max_frame_len: usize,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub").finish_non_exhaustive()
    }
}

struct State {
    facts: NodeFacts,
    inventory: Arc<Inventory>,
    inventory_json: Arc<str>,
    events: VecDeque<Event>,
    next_seq: u64,
    stake: Stake,
    used: Units,
}

/// Unix seconds now.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The wire form of the agent's mode.
pub fn wire_mode(mode: Mode) -> WireMode {
    match mode {
        Mode::Observe => WireMode::Observe,
        Mode::Managed => WireMode::Managed,
    }
}

/// Seconds since boot, from `/proc/uptime`; the agent's own age when unreadable.
fn host_uptime_s(fallback: u64) -> u64 {
    std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|t| t.split('.').next().and_then(|s| s.trim().parse().ok()))
        .unwrap_or(fallback)
}

impl Hub {
    /// A hub for `node_id` starting from `inventory`.
    pub fn new(
        node_id: String,
        mode: Mode,
        farm: Option<u64>,
        inventory: Inventory,
        telemetry: Option<Telemetry>,
    ) -> Self {
        let json = inventory_json(&inventory);
        let facts = NodeFacts {
            node_id,
            farm,
            mode: wire_mode(mode),
            agent_version: env!("CARGO_PKG_VERSION").to_owned(),
            uptime_s: host_uptime_s(0),
            as_of_unix_s: unix_now(),
        };
        Self {
            state: Mutex::new(State {
                facts,
                inventory: Arc::new(inventory),
                inventory_json: json,
                events: VecDeque::new(),
                next_seq: 1,
                stake: Stake::NotConnected,
                used: Units::default(),
            }),
            deltas: broadcast::channel(DELTA_BACKLOG).0,
            telemetry,
            started: Instant::now(),
            max_frame_len: nodus_wire::DEFAULT_MAX_FRAME_LEN,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Subscribes to the framed delta feed. Subscribe *before* taking a
    /// [`snapshot`](Self::snapshot), so nothing falls between the two (a delta
    /// seen twice is harmless: events carry sequence numbers, samples overwrite).
    pub fn subscribe(&self) -> broadcast::Receiver<Bytes> {
        self.deltas.subscribe()
    }

    /// The number of live subscribers (sessions).
    pub fn sessions(&self) -> usize {
        self.deltas.receiver_count()
    }

    /// The current inventory.
    pub fn inventory(&self) -> Arc<Inventory> {
        self.lock().inventory.clone()
    }

    /// The node id text.
    pub fn node_id(&self) -> String {
        self.lock().facts.node_id.clone()
    }

    /// Everything a new session needs, plus `backfill_s` seconds of history.
    pub fn snapshot(&self, backfill_s: u32) -> (Snapshot, Vec<Series>) {
        let series = self.history(backfill_s);
        let mut s = self.lock();
        s.facts.uptime_s = host_uptime_s(self.started.elapsed().as_secs());
        s.facts.as_of_unix_s = unix_now();
        let snap = Snapshot {
            facts: s.facts.clone(),
            inventory_json: s.inventory_json.to_string(),
            used: s.used,
            events: s.events.iter().cloned().collect(),
            stake: s.stake.clone(),
            series: u32::try_from(series.len()).unwrap_or(u32::MAX),
        };
        (snap, series)
    }

    fn history(&self, backfill_s: u32) -> Vec<Series> {
        let Some(t) = &self.telemetry else {
            return Vec::new();
        };
        if backfill_s == 0 {
            return Vec::new();
        }
        let backfill = backfill_s.min(nodus_wire::console::MAX_BACKFILL_S);
        let since = unix_now().saturating_sub(u64::from(backfill));
        t.snapshot(since)
            .series
            .into_iter()
            .map(|h| Series {
                name: h.name,
                start_unix_s: h.fine.start_unix_s,
                step_s: h.fine.step_s,
                values: h.fine.values,
            })
            .collect()
    }

    /// Sends `delta` to every session.
    pub fn publish(&self, delta: Delta) {
        match nodus_wire::encode_frame(&ServerMsg::Delta(delta), self.max_frame_len) {
            // No receivers is fine: nobody is watching.
            Ok(frame) => drop(self.deltas.send(frame)),
            Err(error) => tracing::warn!(%error, "delta too large to send; dropped"),
        }
    }

    /// Records an event and sends it to every session.
    pub fn event(&self, level: Level, source: &str, message: impl Into<String>) -> Event {
        let message = message.into();
        match level {
            Level::Critical | Level::Warning => tracing::warn!(source, %message, "event"),
            _ => tracing::info!(source, %message, "event"),
        }
        let ev = {
            let mut s = self.lock();
            let ev = Event {
                seq: s.next_seq,
                unix_s: unix_now(),
                level,
                source: source.to_owned(),
                message,
            };
            s.next_seq += 1;
            if s.events.len() == EVENT_BACKLOG {
                s.events.pop_front();
            }
            s.events.push_back(ev.clone());
            ev
        };
        self.publish(Delta::Event(ev.clone()));
        ev
    }

    /// Replaces the inventory. Sends it to sessions only when its document
    /// changed, and returns the previous one.
    pub fn set_inventory(&self, inventory: Inventory) -> Arc<Inventory> {
        let json = inventory_json(&inventory);
        let (old, changed) = {
            let mut s = self.lock();
            let changed = *s.inventory_json != *json;
            let old = std::mem::replace(&mut s.inventory, Arc::new(inventory));
            s.inventory_json = json.clone();
            (old, changed)
        };
        if changed {
            self.publish(Delta::Inventory(json.to_string()));
        }
        old
    }

    /// Replaces the stake.
    pub fn set_stake(&self, stake: Stake) {
        let changed = {
            let mut s = self.lock();
            let changed = s.stake != stake;
            s.stake = stake.clone();
            changed
        };
        if changed {
            self.publish(Delta::Stake(stake));
        }
    }

    /// Sends refreshed facts (uptime) to every session.
    pub fn refresh_facts(&self) {
        let facts = {
            let mut s = self.lock();
            s.facts.uptime_s = host_uptime_s(self.started.elapsed().as_secs());
            s.facts.as_of_unix_s = unix_now();
            s.facts.clone()
        };
        self.publish(Delta::Facts(facts));
    }
}

/// The protocol's inventory document. Serializing our own derive-generated
/// struct cannot fail (no maps with non-string keys, no custom serializers that
/// error), so the empty-object fallback is never taken in practice.
fn inventory_json(inv: &Inventory) -> Arc<str> {
    serde_json::to_string(inv)
        .unwrap_or_else(|_| "{}".to_owned())
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hub() -> Hub {
        let dir = tempfile::tempdir().unwrap();
        let root = crate::hal::SysRoot::at(dir.path()).unwrap();
        let inv = crate::inventory::collect_with(&root, &crate::inventory::Options::default());
        Hub::new("node1x".into(), Mode::Observe, None, inv, None)
    }

    fn decode(frame: &Bytes) -> ServerMsg {
        let mut d = nodus_wire::FrameDecoder::new(1 << 20);
        d.feed(frame).unwrap();
        let body = d.poll_frame().unwrap();
        nodus_wire::decode_body(&body).unwrap()
    }

    #[test]
    fn events_are_numbered_kept_and_sent() {
        let h = hub();
        let mut rx = h.subscribe();
        h.event(Level::Info, "test", "e0");
        let ServerMsg::Delta(Delta::Event(first)) = decode(&rx.try_recv().unwrap()) else {
            panic!("not an event");
        };
        assert_eq!(first.seq, 1);
        assert_eq!(first.message, "e0");
        for i in 1..(EVENT_BACKLOG + 3) {
            h.event(Level::Info, "test", format!("e{i}"));
        }
        let (snap, _) = h.snapshot(0);
        assert_eq!(snap.events.len(), EVENT_BACKLOG);
        assert_eq!(snap.events[0].seq, 4);
        // A subscriber that fell this far behind is told so (and resyncs).
        assert!(matches!(
            rx.try_recv(),
            Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_))
        ));
    }

    #[test]
    fn unchanged_inventory_is_not_resent() {
        let h = hub();
        let mut rx = h.subscribe();
        let same = (*h.inventory()).clone();
        h.set_inventory(same.clone());
        assert!(rx.try_recv().is_err(), "an identical inventory went out");
        let mut changed = same;
        changed.cpu.logical = Some(99);
        h.set_inventory(changed);
        let ServerMsg::Delta(Delta::Inventory(json)) = decode(&rx.try_recv().unwrap()) else {
            panic!("not an inventory");
        };
        assert!(json.contains("99"), "{json}");
    }
}
