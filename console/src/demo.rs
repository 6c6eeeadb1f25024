//! A model built from an inventory JSON file alone, with made-up but fixed
//! telemetry and events: for `--demo FILE` (driving the console in tmux before a
//! daemon exists) and for the snapshot tests, which need the same frame every run.

use crate::model::{
    Connection, Event, Inventory, Level, Mode, Model, NodeFacts, Series, Snapshot, StakeStatus,
    Units, Update, series_unit,
};

/// The demo's wall clock: 2026-01-02 12:00:00 UTC, so "today" has 12 hours.
pub const DEMO_NOW_UNIX_S: u64 = 1_767_355_200;

/// The demo's node id (a well-formed `node1…` text, not a real key).
pub const DEMO_NODE_ID: &str = "node1qgx7d3k5m2n9p4r6t0v8w2z4c6e8g0j2l4n6q8s0u2w4y6a8c0e2f";

/// Twelve hours of 1 s samples would be 43 200 points per series; the demo keeps
/// the model's window.
const HISTORY_S: u64 = crate::model::MAX_SERIES_POINTS as u64;

/// A deterministic wobble in [0, 1): no RNG, so snapshots are stable.
fn wave(i: u64, salt: u64) -> f32 {
    let x = (i
        .wrapping_mul(2_654_435_761)
        .wrapping_add(salt.wrapping_mul(97)))
        % 1_000;
    let slow = ((i as f32) / 300.0 + salt as f32).sin() * 0.5 + 0.5;
    0.7 * slow + 0.3 * (x as f32 / 1_000.0)
}

fn series(name: String, base: f32, span: f32, salt: u64, now: u64) -> Series {
    let start = now + 1 - HISTORY_S;
    let values = (0..HISTORY_S)
        .map(|i| {
            // A gap of a minute, as after an agent restart.
            if (1_800..1_860).contains(&i) {
                None
            } else {
                Some(base + span * wave(i, salt))
            }
        })
        .collect();
    Series {
        unit: series_unit(&name).to_owned(),
        name,
        start_unix_s: start,
        step_s: 1,
        values,
    }
}

/// The demo model: `inventory` plus fixed series, events and facts at
/// [`DEMO_NOW_UNIX_S`].
pub fn model(inventory: Inventory) -> Model {
    let now = DEMO_NOW_UNIX_S;
    let mut history = vec![series("cpu.busy_pct".into(), 10.0, 40.0, 1, now)];
    for (i, p) in inventory.power.iter().enumerate() {
        let base = p.watts.unwrap_or(40.0) as f32 * 0.8;
        history.push(series(
            p.series_name(),
            base,
            base * 0.5,
            10 + i as u64,
            now,
        ));
    }
    for (i, d) in inventory.disks.iter().enumerate() {
        let salt = 20 + i as u64;
        history.push(series(
            format!("disk.{}.read_bps", d.name),
            1.0e6,
            80.0e6,
            salt,
            now,
        ));
        history.push(series(
            format!("disk.{}.write_bps", d.name),
            0.5e6,
            30.0e6,
            salt + 50,
            now,
        ));
    }
    for (i, n) in inventory.nics.iter().enumerate() {
        let salt = 40 + i as u64;
        history.push(series(
            format!("nic.{}.rx_bps", n.name),
            2.0e5,
            9.0e6,
            salt,
            now,
        ));
        history.push(series(
            format!("nic.{}.tx_bps", n.name),
            1.0e5,
            3.0e6,
            salt + 50,
            now,
        ));
    }
    let mut events = vec![
        (
            Level::Info,
            "agent",
            "nodus-agent started in managed mode".to_owned(),
        ),
        (
            Level::Info,
            "inventory",
            format!(
                "{} disks, {} NICs, {} sensors",
                inventory.disks.len(),
                inventory.nics.len(),
                inventory.sensors.len()
            ),
        ),
        (
            Level::Info,
            "chain",
            "chain client not configured; stake unknown".to_owned(),
        ),
    ];
    for f in &inventory.health.findings {
        events.push((f.level, "health", format!("{}: {}", f.component, f.reason)));
    }
    events.push((
        Level::Info,
        "telemetry",
        "history backfilled: 1 h at 1 s".to_owned(),
    ));
    let n = events.len() as u64;
    let events = events
        .into_iter()
        .enumerate()
        .map(|(i, (level, source, message))| Event {
            seq: i as u64 + 1,
            unix_s: now - (n - i as u64) * 97,
            level,
            source: source.to_owned(),
            message,
        })
        .collect();
    let cap = &inventory.capacity;
    let used = Units {
        cru: cap.cru.saturating_sub(cap.reserved.cru) / 2,
        mru_bytes: cap.mru_bytes.saturating_sub(cap.reserved.mru_bytes) / 3,
        sru_bytes: cap.sru_bytes.saturating_sub(cap.reserved.sru_bytes) / 4,
        hru_bytes: cap.hru_bytes.saturating_sub(cap.reserved.hru_bytes) / 5,
    };
    let snapshot = Snapshot {
        facts: NodeFacts {
            node_id: DEMO_NODE_ID.to_owned(),
            farm: Some(7),
            mode: Mode::Managed,
            agent_version: env!("CARGO_PKG_VERSION").to_owned(),
            uptime_s: 3 * 86_400 + 4 * 3_600 + 12 * 60,
            as_of_unix_s: now,
        },
        inventory,
        used,
        history,
        events,
        stake: StakeStatus::NotConnected,
    };
    let mut m = Model::default();
    m.apply(Update::Snapshot(Box::new(snapshot)));
    m.apply(Update::Connection(Connection::Offline));
    m.apply(Update::Clock(now));
    m
}
