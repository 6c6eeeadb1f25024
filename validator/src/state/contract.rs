//! Capacity contracts: a tenant reserves resources on a node at a price per hour.
//!
//! # Lifecycle
//!
//! ```text
//!  create ──► Active ──(tenant short at billing)──► Grace ──(grace_period_blocks)──► Cancelled
//!               ▲                                     │
//!               └──────(paid up at a later billing)───┘
//!  Active or Grace ──(tenant cancels)──► Cancelled
//! ```
//!
//! # Billing
//!
//! Billing runs inside block processing at every height divisible by
//! `billing_interval_blocks`; it is not a side job a validator could skip. For
//! each open contract it charges the time since it was last billed:
//!
//! ```text
//! due = ⌊(price_per_hour × elapsed_secs + carry) / 3600⌋
//! carry' = (price_per_hour × elapsed_secs + carry) mod 3600
//! ```
//!
//! Rounding is down, and the remainder (`carry`, in base-unit-seconds per hour) is
//! carried into the next bill, so over the contract's life the tenant pays exactly
//! `⌊price × total_secs / 3600⌋` — never more, and never a unit lost to rounding.
//! Payments go to the node's farm owner.
//!
//! If the tenant cannot pay the whole `due`, nothing is charged, the contract goes
//! into grace and the debt keeps growing (the node keeps serving). A later billing
//! that finds the tenant funded charges the whole debt and makes it active again.
//! When grace runs out — or the tenant cancels — the debt is settled with whatever
//! the tenant has, at most `due`, and the rest is written off (reported as
//! `unpaid`).

use serde::{Deserialize, Serialize};

use super::farm::Capacity;
use super::math::mul_div_rem;
use super::{Address, Amount, Event, State};

/// Contract number, assigned in order from 1.
pub type ContractId = u64;

/// Seconds per hour: prices are per hour, block times in seconds.
const SECS_PER_HOUR: u128 = 3_600;

/// Why a contract ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CancelReason {
    /// The tenant cancelled it.
    ByTenant,
    /// Grace ran out without payment.
    Unpaid,
}

/// Where a contract is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ContractState {
    /// Created and paid up.
    Active,
    /// The tenant could not pay at height `since`.
    Grace {
        /// Height at which grace began.
        since: u64,
    },
    /// Ended; its resources are free again.
    Cancelled {
        /// Height at which it ended.
        at: u64,
        /// Why.
        reason: CancelReason,
    },
}

/// A capacity contract.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contract {
    /// Who pays.
    pub tenant: Address,
    /// Where the resources are.
    pub node: Address,
    /// What is reserved.
    pub resources: Capacity,
    /// Base units per hour.
    pub price_per_hour: Amount,
    /// Lifecycle state.
    pub state: ContractState,
    /// Block time up to which it has been billed.
    pub billed_until: u64,
    /// Rounding remainder carried into the next bill (below 3600).
    pub carry: u128,
    /// Total paid so far.
    pub paid: Amount,
}

/// Why a contract transaction failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ContractError {
    /// No such node.
    #[error("No node {0}")]
    UnknownNode(Address),
    /// A contract must reserve something.
    #[error("Contract reserves no resources")]
    NoResources,
    /// The node has not that much free capacity.
    #[error("Node {0} lacks the free capacity")]
    NoCapacity(Address),
    /// The tenant cannot pay the first hour.
    #[error("Balance {available} does not cover one hour ({needed})")]
    Unfunded {
        /// One hour's price.
        needed: Amount,
        /// The tenant's balance.
        available: Amount,
    },
    /// No such contract.
    #[error("No contract {0}")]
    UnknownContract(ContractId),
    /// Only the tenant may cancel.
    #[error("Not the tenant of contract {0}")]
    NotTenant(ContractId),
    /// Already cancelled.
    #[error("Contract {0} is already cancelled")]
    AlreadyCancelled(ContractId),
    /// The id counter is exhausted.
    #[error("Contract ids exhausted")]
    Exhausted,
}

impl Contract {
    /// What is owed at block time `now`, and the carry after paying it. An amount
    /// too large to represent is owed as `Amount::MAX` (no tenant can pay it).
    pub fn due(&self, now: u64) -> (Amount, u128) {
        let elapsed = u128::from(now.saturating_sub(self.billed_until));
        match mul_div_rem(self.price_per_hour, elapsed, SECS_PER_HOUR) {
            Some((q, r)) => {
                let r = r.saturating_add(self.carry); // both below 3600
                (q.saturating_add(r / SECS_PER_HOUR), r % SECS_PER_HOUR)
            }
            None => (Amount::MAX, 0),
        }
    }

    /// True unless cancelled.
    pub fn is_open(&self) -> bool {
        !matches!(self.state, ContractState::Cancelled { .. })
    }
}

impl State {
    pub(crate) fn create_contract(
        &mut self,
        tenant: Address,
        node: Address,
        resources: Capacity,
        price_per_hour: Amount,
    ) -> Result<ContractId, ContractError> {
        let n = self
            .nodes
            .get(&node)
            .ok_or(ContractError::UnknownNode(node))?;
        if resources.is_zero() {
            return Err(ContractError::NoResources);
        }
        let reserved = n
            .reserved
            .checked_add(&resources)
            .filter(|r| r.fits_in(&n.capacity))
            .ok_or(ContractError::NoCapacity(node))?;
        let available = self.balance(&tenant);
        if available < price_per_hour {
            return Err(ContractError::Unfunded {
                needed: price_per_hour,
                available,
            });
        }
        let id = self.next_contract_id;
        let next = id.checked_add(1).ok_or(ContractError::Exhausted)?;
        if let Some(n) = self.nodes.get_mut(&node) {
            n.reserved = reserved;
        }
        self.contracts.insert(
            id,
            Contract {
                tenant,
                node,
                resources,
                price_per_hour,
                state: ContractState::Active,
                billed_until: self.time,
                carry: 0,
                paid: 0,
            },
        );
        self.next_contract_id = next;
        Ok(id)
    }

    pub(crate) fn cancel_contract_by_tenant(
        &mut self,
        sender: Address,
        id: ContractId,
        events: &mut Vec<Event>,
    ) -> Result<(), ContractError> {
        let c = self
            .contracts
            .get(&id)
            .ok_or(ContractError::UnknownContract(id))?;
        if c.tenant != sender {
            return Err(ContractError::NotTenant(id));
        }
        if !c.is_open() {
            return Err(ContractError::AlreadyCancelled(id));
        }
        self.cancel_contract(id, CancelReason::ByTenant, events);
        Ok(())
    }

    /// Moves `amount` from the tenant to the farm owner of the contract's node.
    /// All or nothing; `false` if it cannot be paid.
    fn pay(&mut self, tenant: Address, node: &Address, amount: Amount) -> bool {
        if amount == 0 {
            return true;
        }
        match self.node_owner(node) {
            Some(owner) => self.transfer(tenant, owner, amount).is_ok(),
            None => false,
        }
    }

    fn cancel_contract(&mut self, id: ContractId, reason: CancelReason, events: &mut Vec<Event>) {
        let Some(c) = self.contracts.get(&id).cloned() else {
            return;
        };
        let (due, _) = c.due(self.time);
        let paid = due.min(self.balance(&c.tenant));
        let paid = if self.pay(c.tenant, &c.node, paid) {
            paid
        } else {
            0
        };
        if let Some(n) = self.nodes.get_mut(&c.node) {
            n.reserved = n.reserved.saturating_sub(&c.resources);
        }
        let (height, now) = (self.height, self.time);
        if let Some(c) = self.contracts.get_mut(&id) {
            c.state = ContractState::Cancelled { at: height, reason };
            c.billed_until = now;
            c.carry = 0;
            c.paid = c.paid.saturating_add(paid);
        }
        events.push(Event::ContractCancelled {
            contract: id,
            reason,
            paid,
            unpaid: due.saturating_sub(paid),
        });
    }

    /// Bills every open contract (see the [module docs](self)).
    pub(crate) fn bill_contracts(&mut self, events: &mut Vec<Event>) {
        let open: Vec<ContractId> = self
            .contracts
            .iter()
            .filter(|(_, c)| c.is_open())
            .map(|(id, _)| *id)
            .collect();
        let (height, now, grace) = (self.height, self.time, self.params.grace_period_blocks);
        for id in open {
            let Some(c) = self.contracts.get(&id).cloned() else {
                continue;
            };
            let (due, carry) = c.due(now);
            if self.balance(&c.tenant) >= due && self.pay(c.tenant, &c.node, due) {
                if let Some(c) = self.contracts.get_mut(&id) {
                    c.billed_until = now;
                    c.carry = carry;
                    c.paid = c.paid.saturating_add(due);
                    if matches!(c.state, ContractState::Grace { .. }) {
                        c.state = ContractState::Active;
                        events.push(Event::ContractReactivated { contract: id });
                    }
                }
                if due > 0 {
                    events.push(Event::ContractBilled {
                        contract: id,
                        amount: due,
                    });
                }
                continue;
            }
            match c.state {
                ContractState::Active => {
                    if let Some(c) = self.contracts.get_mut(&id) {
                        c.state = ContractState::Grace { since: height };
                    }
                    events.push(Event::ContractInGrace { contract: id, due });
                }
                ContractState::Grace { since } if height.saturating_sub(since) >= grace => {
                    self.cancel_contract(id, CancelReason::Unpaid, events);
                }
                _ => {}
            }
        }
    }
}
