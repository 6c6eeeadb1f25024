//! Farms, nodes, node capacity and power targets.
//!
//! A farm belongs to an owner account. A node joins a farm only with two
//! signatures, both checked by the chain (Zero-OS trusted a boot parameter here):
//!
//! 1. the node's own key signs a [`NodeRegistration`] statement (purpose
//!    `NODE_REGISTRATION`) naming the farm and its capacity — so nobody can enrol a
//!    node they do not run;
//! 2. the farm owner signs a [`FarmApproval`] statement (purpose `FARM_APPROVAL`)
//!    naming the farm and the node — so nobody can add nodes to a farm they do not
//!    own.
//!
//! Both must name this chain as their network and must not have expired at the
//! block's time. Any account may submit the pair (it pays the fee).
//!
//! Capacity is what the node reports. A node may later report new capacity with a
//! newer registration statement (a larger `issued_at`, so an old one cannot be
//! replayed), but not below what its open contracts reserve.

use nodus_identity::Signed;
use nodus_identity::statement::purpose;
use serde::{Deserialize, Serialize};

use super::{Address, State};
use crate::signature::{self, SignatureError};

/// Farm number, assigned in order from 1.
pub type FarmId = u64;

/// Longest farm name, in bytes.
pub const MAX_FARM_NAME_LEN: usize = 64;

/// Bytes per GiB, the unit of capacity weights.
const GIB: u64 = 1 << 30;

/// Resources: offered by a node, or reserved by a contract. Units match the
/// agent's capacity model.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capacity {
    /// Logical CPUs.
    pub cru: u32,
    /// Memory, bytes.
    pub mru_bytes: u64,
    /// SSD/NVMe storage, bytes.
    pub sru_bytes: u64,
    /// HDD storage, bytes.
    pub hru_bytes: u64,
}

impl Capacity {
    /// Field-wise sum, `None` on overflow.
    pub fn checked_add(&self, o: &Self) -> Option<Self> {
        Some(Self {
            cru: self.cru.checked_add(o.cru)?,
            mru_bytes: self.mru_bytes.checked_add(o.mru_bytes)?,
            sru_bytes: self.sru_bytes.checked_add(o.sru_bytes)?,
            hru_bytes: self.hru_bytes.checked_add(o.hru_bytes)?,
        })
    }

    /// Field-wise difference, saturating at zero.
    pub fn saturating_sub(&self, o: &Self) -> Self {
        Self {
            cru: self.cru.saturating_sub(o.cru),
            mru_bytes: self.mru_bytes.saturating_sub(o.mru_bytes),
            sru_bytes: self.sru_bytes.saturating_sub(o.sru_bytes),
            hru_bytes: self.hru_bytes.saturating_sub(o.hru_bytes),
        }
    }

    /// True if every field is at most `o`'s.
    pub fn fits_in(&self, o: &Self) -> bool {
        self.cru <= o.cru
            && self.mru_bytes <= o.mru_bytes
            && self.sru_bytes <= o.sru_bytes
            && self.hru_bytes <= o.hru_bytes
    }

    /// True if every field is zero.
    pub fn is_zero(&self) -> bool {
        *self == Self::default()
    }

    /// Reward weight: `cru × w.cru + ⌊mru / GiB⌋ × w.mru + ⌊sru / GiB⌋ × w.sru +
    /// ⌊hru / GiB⌋ × w.hru`. Below 2^56 for any input, since every weight is at
    /// most 2^20 (genesis validation) and every count below 2^34.
    pub fn weight(&self, w: &crate::genesis::CapacityWeights) -> u128 {
        u128::from(self.cru) * u128::from(w.cru)
            + u128::from(self.mru_bytes / GIB) * u128::from(w.mru)
            + u128::from(self.sru_bytes / GIB) * u128::from(w.sru)
            + u128::from(self.hru_bytes / GIB) * u128::from(w.hru)
    }
}

/// What the farmer wants a node's power state to be; power management acts on it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum PowerTarget {
    /// Powered on.
    #[default]
    Up,
    /// Powered off (standby) until needed.
    Down,
}

/// A farm.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Farm {
    /// The owner account: approves nodes, sets power targets, receives rewards and
    /// contract payments.
    pub owner: Address,
    /// Display name.
    pub name: String,
}

/// The last uptime report a node made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastReport {
    /// When the report was made (its statement's `issued_at`), Unix seconds.
    pub timestamp: u64,
    /// Seconds since boot it reported.
    pub uptime_secs: u64,
}

impl LastReport {
    /// The boot time the report implies.
    pub fn boot_time(&self) -> u64 {
        self.timestamp.saturating_sub(self.uptime_secs)
    }
}

/// A registered node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    /// Its farm.
    pub farm: FarmId,
    /// Capacity, as last reported.
    pub capacity: Capacity,
    /// Capacity reserved by open contracts.
    pub reserved: Capacity,
    /// `issued_at` of the registration statement that set `capacity`.
    pub capacity_issued_at: u64,
    /// Block time of registration; uptime before it earns nothing.
    pub registered_at: u64,
    /// What the farmer wants.
    pub power_target: PowerTarget,
    /// Latest uptime report.
    pub last_report: Option<LastReport>,
}

/// Signed by the node key: "register me in this farm with this capacity".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeRegistration {
    /// The farm to join.
    pub farm: FarmId,
    /// The node's capacity.
    pub capacity: Capacity,
}

/// Signed by the farm owner: "this node may join my farm".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FarmApproval {
    /// The farm.
    pub farm: FarmId,
    /// The node's key.
    pub node: Address,
}

/// Why a farm or node transaction failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[non_exhaustive]
pub enum FarmError {
    /// Empty, too long, or with control characters.
    #[error("Farm name must be 1 to 64 bytes without control characters")]
    BadName,
    /// No such farm.
    #[error("No farm {0}")]
    UnknownFarm(FarmId),
    /// No such node.
    #[error("No node {0}")]
    UnknownNode(Address),
    /// The node is registered already.
    #[error("Node {0} is already registered")]
    NodeExists(Address),
    /// The sender (or approval signer) is not the farm's owner.
    #[error("Not the owner of farm {0}")]
    NotFarmOwner(FarmId),
    /// A statement is for another purpose.
    #[error("Statement is for purpose {found:?}, expected {expected:?}")]
    WrongPurpose {
        /// Needed.
        expected: String,
        /// Found.
        found: String,
    },
    /// A statement is for another chain.
    #[error("Statement is for network {0:?}")]
    WrongNetwork(String),
    /// A statement has expired at block time.
    #[error("Statement expired at {0}")]
    Expired(u64),
    /// A statement's signature does not verify.
    #[error("Statement signature: {0}")]
    Signature(#[from] SignatureError),
    /// The node key is not canonically encoded or is weak.
    #[error("Node key is not a canonical, usable key")]
    UnusableNodeKey,
    /// The registration and approval name different farms or nodes.
    #[error("Registration and approval do not match")]
    Mismatch,
    /// A capacity update older than (or as old as) the current one.
    #[error("Capacity report is not newer than the one on chain")]
    StaleCapacity,
    /// New capacity below what open contracts reserve.
    #[error("Capacity is below what open contracts reserve")]
    BelowReserved,
    /// Too many farms (the id counter is exhausted).
    #[error("Farm ids exhausted")]
    Exhausted,
}

/// Checks a statement's purpose, network, expiry and signature at block time `now`.
pub(crate) fn check_statement<T: Serialize>(
    s: &Signed<T>,
    want_purpose: &str,
    chain_id: &str,
    now: u64,
) -> Result<(), FarmError> {
    let st = &s.statement;
    if st.purpose != want_purpose {
        return Err(FarmError::WrongPurpose {
            expected: want_purpose.to_owned(),
            found: st.purpose.clone(),
        });
    }
    if st.network != chain_id {
        return Err(FarmError::WrongNetwork(st.network.clone()));
    }
    if let Some(exp) = st.expires_at
        && now >= exp
    {
        return Err(FarmError::Expired(exp));
    }
    signature::verify_statement(s)?;
    Ok(())
}

impl State {
    pub(crate) fn register_farm(
        &mut self,
        owner: Address,
        name: &str,
    ) -> Result<FarmId, FarmError> {
        if name.is_empty() || name.len() > MAX_FARM_NAME_LEN || name.chars().any(char::is_control) {
            return Err(FarmError::BadName);
        }
        let id = self.next_farm_id;
        let next = id.checked_add(1).ok_or(FarmError::Exhausted)?;
        self.farms.insert(
            id,
            Farm {
                owner,
                name: name.to_owned(),
            },
        );
        self.next_farm_id = next;
        Ok(id)
    }

    pub(crate) fn register_node(
        &mut self,
        registration: &Signed<NodeRegistration>,
        approval: &Signed<FarmApproval>,
    ) -> Result<Address, FarmError> {
        let now = self.time;
        check_statement(
            registration,
            purpose::NODE_REGISTRATION,
            &self.chain_id,
            now,
        )?;
        check_statement(approval, purpose::FARM_APPROVAL, &self.chain_id, now)?;
        let node = Address::from(registration.statement.signer);
        if !signature::is_canonical_key(&node.0) {
            return Err(FarmError::UnusableNodeKey);
        }
        let reg = &registration.statement.payload;
        let ok = &approval.statement.payload;
        if reg.farm != ok.farm || ok.node != node {
            return Err(FarmError::Mismatch);
        }
        let farm = self
            .farms
            .get(&reg.farm)
            .ok_or(FarmError::UnknownFarm(reg.farm))?;
        if Address::from(approval.statement.signer) != farm.owner {
            return Err(FarmError::NotFarmOwner(reg.farm));
        }
        if self.nodes.contains_key(&node) {
            return Err(FarmError::NodeExists(node));
        }
        self.nodes.insert(
            node,
            Node {
                farm: reg.farm,
                capacity: reg.capacity,
                reserved: Capacity::default(),
                capacity_issued_at: registration.statement.issued_at,
                registered_at: now,
                power_target: PowerTarget::Up,
                last_report: None,
            },
        );
        Ok(node)
    }

    pub(crate) fn update_capacity(
        &mut self,
        registration: &Signed<NodeRegistration>,
    ) -> Result<(), FarmError> {
        check_statement(
            registration,
            purpose::NODE_REGISTRATION,
            &self.chain_id,
            self.time,
        )?;
        let id = Address::from(registration.statement.signer);
        let node = self.nodes.get_mut(&id).ok_or(FarmError::UnknownNode(id))?;
        let reg = &registration.statement.payload;
        if reg.farm != node.farm {
            return Err(FarmError::Mismatch);
        }
        if registration.statement.issued_at <= node.capacity_issued_at {
            return Err(FarmError::StaleCapacity);
        }
        if !node.reserved.fits_in(&reg.capacity) {
            return Err(FarmError::BelowReserved);
        }
        node.capacity = reg.capacity;
        node.capacity_issued_at = registration.statement.issued_at;
        Ok(())
    }

    pub(crate) fn set_power_target(
        &mut self,
        sender: Address,
        node: Address,
        target: PowerTarget,
    ) -> Result<(), FarmError> {
        let n = self.nodes.get(&node).ok_or(FarmError::UnknownNode(node))?;
        let farm = self
            .farms
            .get(&n.farm)
            .ok_or(FarmError::UnknownFarm(n.farm))?;
        if farm.owner != sender {
            return Err(FarmError::NotFarmOwner(n.farm));
        }
        if let Some(n) = self.nodes.get_mut(&node) {
            n.power_target = target;
        }
        Ok(())
    }

    /// The owner of `node`'s farm.
    pub fn node_owner(&self, node: &Address) -> Option<Address> {
        let n = self.nodes.get(node)?;
        Some(self.farms.get(&n.farm)?.owner)
    }
}
