//! Sans-IO: the agent's [`ServerMsg`](nodus_wire::console::ServerMsg)s in, model [`Update`]s out.
//!
//! A snapshot is held back until all of its backfill series have arrived, so the
//! screens switch from the old state to the complete new one in a single update
//! (a remote console starts with full graphs, never with empty ones filling up).

use nodus_wire::console as wire;

use crate::model::{
    ActionState, ActionStatus, Event, Inventory, Level, Mode, NodeFacts, Series, Session, Snapshot,
    StakeInfo, StakeStatus, Units, Update, ValidatorStatus, series_unit,
};

/// Turns one conversation's server messages into updates. Make a new one per
/// connection.
#[derive(Debug, Default)]
pub struct Translator {
    /// A snapshot waiting for its series, and how many are still to come.
    pending: Option<(Box<Snapshot>, u32)>,
    /// Whether the snapshot of this conversation has been delivered.
    live: bool,
}

/// Why a message could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TranslateError {
    /// The inventory JSON does not parse.
    #[error("Agent sent an inventory that is not JSON: {0}")]
    Inventory(String),
    /// A message the protocol does not allow at this point.
    #[error("Agent sent {0} out of order")]
    OutOfOrder(&'static str),
    /// The agent ended the conversation.
    #[error("Agent said goodbye: {0}")]
    Goodbye(String),
}

impl Translator {
    /// A translator for a fresh conversation.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the first complete snapshot has been delivered.
    pub fn is_live(&self) -> bool {
        self.live
    }

    /// The updates one message makes.
    pub fn feed(&mut self, msg: wire::ServerMsg) -> Result<Vec<Update>, TranslateError> {
        match msg {
            wire::ServerMsg::Welcome(w) => Ok(vec![Update::Session(session(&w))]),
            wire::ServerMsg::Snapshot(s) => {
                let s = *s;
                let snap = Snapshot {
                    facts: facts(s.facts),
                    inventory: inventory(&s.inventory_json)?,
                    used: units(s.used),
                    history: Vec::with_capacity(s.series as usize),
                    events: s.events.into_iter().map(event).collect(),
                    stake: stake(s.stake),
                };
                self.pending = Some((Box::new(snap), s.series));
                Ok(self.flush())
            }
            wire::ServerMsg::Series(series) => {
                let Some((snap, left)) = &mut self.pending else {
                    return Err(TranslateError::OutOfOrder("a series outside a snapshot"));
                };
                snap.history.push(Series {
                    unit: series_unit(&series.name).to_owned(),
                    name: series.name,
                    start_unix_s: series.start_unix_s,
                    step_s: series.step_s.max(1),
                    values: series.values,
                });
                *left = left.saturating_sub(1);
                Ok(self.flush())
            }
            wire::ServerMsg::Delta(d) => {
                if self.pending.is_some() {
                    return Err(TranslateError::OutOfOrder("a delta inside a snapshot"));
                }
                Ok(vec![delta(d)?])
            }
            wire::ServerMsg::Response(r) => Ok(vec![Update::Action(response(&r))]),
            wire::ServerMsg::Goodbye(why) => Err(TranslateError::Goodbye(why)),
        }
    }

    fn flush(&mut self) -> Vec<Update> {
        match self.pending.take() {
            Some((snap, 0)) => {
                self.live = true;
                vec![Update::Snapshot(snap)]
            }
            other => {
                self.pending = other;
                Vec::new()
            }
        }
    }
}

/// The session a welcome opens.
pub fn session(w: &wire::Welcome) -> Session {
    Session {
        role: w.role,
        confirm_token: w.confirm_token.clone(),
        actions: w.capabilities & wire::capability::ACTIONS != 0,
    }
}

/// How the console shows a response.
pub fn response(r: &wire::Response) -> ActionStatus {
    let state = match &r.outcome {
        wire::Outcome::Done(msg) => ActionState::Done(msg.clone()),
        wire::Outcome::Refused { message, .. } => ActionState::Refused(message.clone()),
    };
    ActionStatus {
        id: r.id.to_string(),
        what: String::new(),
        state,
    }
}

fn inventory(json: &str) -> Result<Inventory, TranslateError> {
    Inventory::from_json(json).map_err(|e| TranslateError::Inventory(e.to_string()))
}

fn delta(d: wire::Delta) -> Result<Update, TranslateError> {
    Ok(match d {
        wire::Delta::Samples { unix_s, values } => {
            Update::Samples(crate::model::Samples { unix_s, values })
        }
        wire::Delta::Event(e) => Update::Event(event(e)),
        wire::Delta::Inventory(json) => Update::Inventory(Box::new(inventory(&json)?)),
        wire::Delta::Facts(f) => Update::Facts(facts(f)),
        wire::Delta::Stake(s) => Update::Stake(stake(s)),
        wire::Delta::Used(u) => Update::Used(units(u)),
    })
}

/// The model's facts from the wire's.
pub fn facts(f: wire::NodeFacts) -> NodeFacts {
    NodeFacts {
        node_id: f.node_id,
        farm: f.farm,
        mode: match f.mode {
            wire::Mode::Observe => Mode::Observe,
            wire::Mode::Managed => Mode::Managed,
        },
        agent_version: f.agent_version,
        uptime_s: f.uptime_s,
        as_of_unix_s: f.as_of_unix_s,
    }
}

fn units(u: wire::Units) -> Units {
    Units {
        cru: u.cru,
        mru_bytes: u.mru_bytes,
        sru_bytes: u.sru_bytes,
        hru_bytes: u.hru_bytes,
    }
}

fn event(e: wire::Event) -> Event {
    Event {
        seq: e.seq,
        unix_s: e.unix_s,
        level: match e.level {
            wire::Level::Info => Level::Info,
            wire::Level::Ok => Level::Ok,
            wire::Level::Warning => Level::Warning,
            wire::Level::Critical => Level::Critical,
        },
        source: e.source,
        message: e.message,
    }
}

fn stake(s: wire::Stake) -> StakeStatus {
    match s {
        wire::Stake::NotConnected => StakeStatus::NotConnected,
        wire::Stake::Known(k) => StakeStatus::Known(StakeInfo {
            balance: k.balance,
            bonded: k.bonded,
            rewards: k.rewards,
            uptime_ppm: k.uptime_ppm,
            validator: match k.validator {
                wire::ValidatorStatus::None => ValidatorStatus::None,
                wire::ValidatorStatus::Active => ValidatorStatus::Active,
                wire::ValidatorStatus::Waiting => ValidatorStatus::Waiting,
                wire::ValidatorStatus::Jailed => ValidatorStatus::Jailed,
            },
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(series: u32) -> wire::ServerMsg {
        wire::ServerMsg::Snapshot(Box::new(wire::Snapshot {
            facts: wire::NodeFacts {
                node_id: "node1x".into(),
                farm: None,
                mode: wire::Mode::Observe,
                agent_version: "0.1.0".into(),
                uptime_s: 5,
                as_of_unix_s: 100,
            },
            inventory_json: r#"{"cpu": {"logical": 3}}"#.into(),
            used: wire::Units::default(),
            events: vec![],
            stake: wire::Stake::NotConnected,
            series,
        }))
    }

    fn series(name: &str) -> wire::ServerMsg {
        wire::ServerMsg::Series(wire::Series {
            name: name.into(),
            start_unix_s: 90,
            step_s: 1,
            values: vec![Some(1.0); 10],
        })
    }

    #[test]
    fn snapshot_waits_for_its_series() {
        let mut t = Translator::new();
        assert!(t.feed(snapshot(2)).unwrap().is_empty());
        assert!(t.feed(series("cpu.busy_pct")).unwrap().is_empty());
        assert!(!t.is_live());
        let out = t.feed(series("power.rapl.package-0.watts")).unwrap();
        let [Update::Snapshot(s)] = out.as_slice() else {
            panic!("{out:?}")
        };
        assert_eq!(s.history.len(), 2);
        assert_eq!(s.history[1].unit, "W");
        assert_eq!(s.inventory.cpu.logical, Some(3));
        assert!(t.is_live());
        // A snapshot without series is delivered at once.
        assert_eq!(Translator::new().feed(snapshot(0)).unwrap().len(), 1);
    }

    #[test]
    fn out_of_order_and_goodbye_are_errors() {
        let mut t = Translator::new();
        assert!(matches!(
            t.feed(series("x")),
            Err(TranslateError::OutOfOrder(_))
        ));
        t.feed(snapshot(1)).unwrap();
        assert!(matches!(
            t.feed(wire::ServerMsg::Delta(wire::Delta::Used(
                wire::Units::default()
            ))),
            Err(TranslateError::OutOfOrder(_))
        ));
        assert!(matches!(
            t.feed(wire::ServerMsg::Goodbye("bye".into())),
            Err(TranslateError::Goodbye(_))
        ));
    }

    #[test]
    fn refusals_keep_the_agents_words() {
        let r = wire::Response {
            id: wire::RequestId([1; 16]),
            replayed: false,
            outcome: wire::Outcome::Refused {
                code: wire::RefusalCode::ObserveMode,
                message: "observe mode: reboot is refused".into(),
            },
        };
        let a = response(&r);
        assert_eq!(a.id, "01".repeat(16));
        assert_eq!(
            a.state,
            ActionState::Refused("observe mode: reboot is refused".into())
        );
    }
}
