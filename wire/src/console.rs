//! The console protocol, `nodus/console/1`: the agent's state stream and the
//! operator actions, as they cross QUIC or the agent's Unix socket.
//!
//! One conversation is one ordered, bidirectional stream of frames (a QUIC
//! bidirectional stream opened by the client, or the Unix socket itself), so the
//! same code serves both transports:
//!
//! ```text
//! client                                   agent
//!   Hello{version, capabilities, backfill} ─▶
//!                                          ◀─ Welcome{version, role, node}
//!                                          ◀─ Snapshot{facts, inventory, …, series: n}
//!                                          ◀─ Series × n     (history backfill)
//!                                          ◀─ Delta …        (live, until the end)
//!   Request{id, action, confirm}          ─▶
//!                                          ◀─ Response{id, outcome}
//! ```
//!
//! The inventory crosses as the JSON document described in `agent/INVENTORY.md`,
//! not as typed structs: the console reads it tolerantly, so an agent that adds a
//! field never breaks an older console, and the contract has one definition.
//!
//! The enums are append-only; an incompatible change bumps the ALPN (see
//! [`crate::Alpn`]). Authorization is the agent's: every [`Request`] is checked
//! against the role the transport proved for the peer (the verified QUIC key, or
//! the Unix socket's peer credentials), never against anything the message claims.
//!
//! Grants reach a node on their own protocol, `nodus/grant/1` ([`GrantOffer`]): a
//! key the node does not know is refused on `nodus/console/1`, so a new operator
//! first presents the owner-signed grant there, then connects.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{Blob, Role};

/// The protocol version this crate speaks.
pub const VERSION: u16 = 1;

/// Most history a client may ask to be backfilled: one day.
pub const MAX_BACKFILL_S: u32 = 86_400;

/// Longest confirmation token or free-text field accepted in a request.
pub const MAX_TEXT: usize = 256;

/// Capabilities a side may announce; unknown bits are ignored.
pub mod capability {
    /// Understands [`super::Delta::Inventory`] (full inventory refreshes).
    pub const INVENTORY_REFRESH: u32 = 1 << 0;
    /// Understands [`super::Delta::Stake`].
    pub const STAKE: u32 = 1 << 1;
    /// Can run actions ([`super::Request`]).
    pub const ACTIONS: u32 = 1 << 2;
}

/// Messages a client sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ClientMsg {
    /// The first message: who we are and what we want.
    Hello(Hello),
    /// An action.
    Request(Request),
}

/// Messages an agent sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ServerMsg {
    /// The answer to [`Hello`].
    Welcome(Welcome),
    /// Everything at once; `series` [`ServerMsg::Series`] frames follow.
    Snapshot(Box<Snapshot>),
    /// One telemetry series of the backfill.
    Series(Series),
    /// A live change.
    Delta(Delta),
    /// The outcome of a [`Request`].
    Response(Response),
    /// The agent ends the conversation (shutting down, protocol error).
    Goodbye(String),
}

/// The client's opening message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// The client's [`VERSION`].
    pub version: u16,
    /// [`capability`] bits.
    pub capabilities: u32,
    /// Seconds of telemetry history to backfill (clamped to [`MAX_BACKFILL_S`]).
    pub backfill_s: u32,
    /// Client name and version, for the agent's log (`nodus-console 0.1.0`).
    pub client: String,
}

/// The agent's answer to [`Hello`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    /// The agent's [`VERSION`].
    pub version: u16,
    /// [`capability`] bits.
    pub capabilities: u32,
    /// The role the agent gave this peer.
    pub role: Role,
    /// The node id (`node1…`).
    pub node_id: String,
    /// The confirmation token destructive actions need: the node's short id.
    pub confirm_token: String,
}

/// How the agent runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mode {
    /// Read-only: never formats, partitions, mounts, reconfigures or powers off.
    Observe,
    /// Full control of disks, NICs and power.
    Managed,
}

impl Mode {
    /// `observe` or `managed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Observe => "observe",
            Mode::Managed => "managed",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Facts about the node that are not inventory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeFacts {
    /// Node id text (`node1…`).
    pub node_id: String,
    /// Farm id, when registered.
    pub farm: Option<u64>,
    /// Agent mode.
    pub mode: Mode,
    /// Agent version.
    pub agent_version: String,
    /// Host uptime at `as_of_unix_s`, seconds.
    pub uptime_s: u64,
    /// When the facts were taken, Unix seconds.
    pub as_of_unix_s: u64,
}

/// Capacity units in use by workloads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Units {
    /// Logical CPUs.
    pub cru: u64,
    /// Memory, bytes.
    pub mru_bytes: u64,
    /// SSD storage, bytes.
    pub sru_bytes: u64,
    /// HDD storage, bytes.
    pub hru_bytes: u64,
}

/// A severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Level {
    /// Informational.
    Info,
    /// Healthy.
    Ok,
    /// Needs attention.
    Warning,
    /// Broken or about to break.
    Critical,
}

/// One entry of the node's event log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Increasing sequence number.
    pub seq: u64,
    /// When, Unix seconds.
    pub unix_s: u64,
    /// Severity.
    pub level: Level,
    /// What emitted it (`health`, `agent`, `audit` …).
    pub source: String,
    /// The text.
    pub message: String,
}

/// A validator's standing on the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ValidatorStatus {
    /// Not a validator.
    None,
    /// Validating.
    Active,
    /// Bonded but not in the active set.
    Waiting,
    /// Jailed.
    Jailed,
}

/// The farmer's stake, in the chain's smallest unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StakeInfo {
    /// Free balance.
    pub balance: u128,
    /// Bonded stake.
    pub bonded: u128,
    /// Rewards of the last epoch.
    pub rewards: u128,
    /// The node's uptime ratio, parts per million: of the last settled epoch,
    /// or of the current epoch so far before any epoch has settled.
    pub uptime_ppm: u32,
    /// Validator standing.
    pub validator: ValidatorStatus,
}

/// Stake as far as the agent knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Stake {
    /// The agent has no chain client, or it is not connected.
    NotConnected,
    /// Read from the chain.
    Known(StakeInfo),
}

/// One telemetry series: regular steps, gaps as `None`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Series {
    /// Series name, as the agent's telemetry names it (`power:rapl:package-0`).
    pub name: String,
    /// Time of the first value, Unix seconds.
    pub start_unix_s: u64,
    /// Seconds between values.
    pub step_s: u32,
    /// Values.
    pub values: Vec<Option<f32>>,
}

/// The whole state, sent after [`Welcome`] (and whenever the agent decides a
/// client must start over).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Node facts.
    pub facts: NodeFacts,
    /// The inventory document (JSON, `agent/INVENTORY.md`): hardware, capacity,
    /// health, power.
    pub inventory_json: String,
    /// Capacity in use.
    pub used: Units,
    /// Recent events, oldest first.
    pub events: Vec<Event>,
    /// Stake.
    pub stake: Stake,
    /// How many [`ServerMsg::Series`] frames follow.
    pub series: u32,
}

/// A live change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Delta {
    /// Telemetry samples taken at one moment: `(series, value)`.
    Samples {
        /// When, Unix seconds.
        unix_s: u64,
        /// The values.
        values: Vec<(String, f64)>,
    },
    /// A new event.
    Event(Event),
    /// A new inventory document (health, capacity or hardware changed).
    Inventory(String),
    /// Facts changed (mode, farm) or a periodic refresh (uptime).
    Facts(NodeFacts),
    /// Stake changed.
    Stake(Stake),
    /// Capacity in use changed.
    Used(Units),
}

/// A client-chosen id that makes an action idempotent: the agent runs each id
/// once and answers a repeat with the first outcome.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RequestId(pub [u8; 16]);

impl RequestId {
    /// A fresh random id.
    pub fn random() -> Self {
        Self(rand::random())
    }
}

impl fmt::Debug for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RequestId({self})")
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// An operator action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    /// Show a banner on the node's screen and beep, so a person at the rack can
    /// find the machine.
    Identify,
    /// Reboot the node.
    Reboot,
    /// Power the node off.
    PowerOff,
    /// Approve a disk for pool use, which wipes it.
    ApproveDisk {
        /// Kernel name (`sdb`) or serial number.
        disk: String,
        /// The owner-signed approval, required when the disk holds a partition
        /// table or file system the node did not create.
        approval: Option<Blob>,
    },
}

impl Action {
    /// The action's name, as the CLI and the audit log spell it.
    pub fn name(&self) -> &'static str {
        match self {
            Action::Identify => "identify",
            Action::Reboot => "reboot",
            Action::PowerOff => "poweroff",
            Action::ApproveDisk { .. } => "approve-disk",
        }
    }

    /// Whether the action changes the machine (refused in observe mode).
    pub fn is_destructive(&self) -> bool {
        !matches!(self, Action::Identify)
    }

    /// The least role that may run it.
    pub fn required_role(&self) -> Role {
        Role::Operator
    }
}

/// An action request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// Idempotency key.
    pub id: RequestId,
    /// What to do.
    pub action: Action,
    /// The typed confirmation: the node's short id ([`Welcome::confirm_token`]).
    pub confirm: String,
}

/// Why an action was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RefusalCode {
    /// The peer's role does not allow the action.
    NotAuthorized,
    /// The agent runs in observe mode and the action is destructive.
    ObserveMode,
    /// The confirmation token is missing or wrong.
    BadConfirmation,
    /// The target (a disk) does not exist.
    NotFound,
    /// The request is malformed or the target is not eligible.
    Invalid,
    /// The action was allowed but failed.
    Failed,
}

/// The result of a [`Request`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// Done (or started: a reboot answers before it happens).
    Done(String),
    /// Refused, with a message naming what was wrong.
    Refused {
        /// The kind of refusal.
        code: RefusalCode,
        /// Human-readable reason.
        message: String,
    },
}

/// The answer to a [`Request`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    /// The request's id.
    pub id: RequestId,
    /// `true` when this id had already run and `outcome` is the first one.
    pub replayed: bool,
    /// What happened.
    pub outcome: Outcome,
}

/// `nodus/grant/1`: a client offers the owner-signed grant for its own key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantOffer {
    /// The postcard encoding of a `nodus_identity::grant::SignedGrant`.
    pub grant: Blob,
}

/// `nodus/grant/1`: the node's answer to a [`GrantOffer`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum GrantAnswer {
    /// Stored: the key may now connect on `nodus/console/1` with this role.
    Accepted(Role),
    /// Not accepted, and why (wrong node, wrong key, bad signature, revoked …).
    Rejected(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<T: Serialize + for<'de> Deserialize<'de> + PartialEq + fmt::Debug>(v: &T) {
        let bytes = postcard::to_stdvec(v).unwrap();
        assert_eq!(&postcard::from_bytes::<T>(&bytes).unwrap(), v);
    }

    #[test]
    fn messages_round_trip_through_postcard() {
        round_trip(&ClientMsg::Hello(Hello {
            version: VERSION,
            capabilities: capability::ACTIONS,
            backfill_s: 3_600,
            client: "t".into(),
        }));
        round_trip(&ClientMsg::Request(Request {
            id: RequestId([7; 16]),
            action: Action::ApproveDisk {
                disk: "sdb".into(),
                approval: Some(Blob(vec![1, 2])),
            },
            confirm: "node1abc".into(),
        }));
        round_trip(&ServerMsg::Series(Series {
            name: "cpu".into(),
            start_unix_s: 10,
            step_s: 1,
            values: vec![Some(1.5), None],
        }));
        round_trip(&ServerMsg::Delta(Delta::Stake(Stake::Known(StakeInfo {
            balance: u128::MAX,
            bonded: 1,
            rewards: 2,
            uptime_ppm: 999_000,
            validator: ValidatorStatus::Jailed,
        }))));
    }

    #[test]
    fn enum_tags_are_append_only() {
        // Postcard encodes a variant as its index: reordering variants would make
        // old peers misread new frames. These pins fail if someone reorders.
        assert_eq!(postcard::to_stdvec(&Action::Identify).unwrap(), [0]);
        assert_eq!(postcard::to_stdvec(&Action::PowerOff).unwrap(), [2]);
        assert_eq!(postcard::to_stdvec(&RefusalCode::Failed).unwrap(), [5]);
        let goodbye = postcard::to_stdvec(&ServerMsg::Goodbye(String::new())).unwrap();
        assert_eq!(goodbye[0], 5);
    }

    #[test]
    fn only_identify_is_harmless() {
        assert!(!Action::Identify.is_destructive());
        for a in [
            Action::Reboot,
            Action::PowerOff,
            Action::ApproveDisk {
                disk: "sda".into(),
                approval: None,
            },
        ] {
            assert!(a.is_destructive(), "{a:?}");
            assert_eq!(a.required_role(), Role::Operator);
        }
    }
}
