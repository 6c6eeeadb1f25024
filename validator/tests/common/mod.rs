//! Helpers for the state machine tests: fixed keys, a genesis, signed
//! transactions and statements with fixed nonces and times (so runs are
//! reproducible), and a tiny chain driver.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use nodus_identity::statement::purpose;
use nodus_identity::{AccountId, SecretKey, Signed, Statement};
use nodus_validator::state::Address;
use nodus_validator::state::farm::{Capacity, FarmApproval, NodeRegistration};
use nodus_validator::state::uptime::UptimeReport;
use nodus_validator::{BlockHeader, BlockOutcome, Genesis, SignedTx, State, Tx, TxBody, TxStatus};
use serde::Serialize;

pub const CHAIN: &str = "testnet";
pub const T0: u64 = 1_800_000_000;
pub const FEE: u128 = 10;
pub const GIB: u64 = 1 << 30;

/// Parameters for tests: small periods, round numbers.
pub const PARAMS: &str = r#"{
    "min_fee": 10,
    "fee_burn_bps": 5000,
    "unbonding_period_blocks": 5,
    "max_evidence_age_blocks": 5,
    "jail_period_blocks": 10,
    "slash_fraction_bps": 1000,
    "billing_interval_blocks": 10,
    "grace_period_blocks": 20,
    "epoch_secs": 1000,
    "epoch_reward": 999999,
    "late_report_window_secs": 100,
    "uptime_drift_secs": 60
}"#;

pub fn key(n: u8) -> SecretKey {
    SecretKey::from_seed(&[n; 32])
}

pub fn addr(k: &SecretKey) -> Address {
    Address::from(k.public())
}

pub fn id(k: &SecretKey) -> String {
    AccountId::from(k.public()).to_string()
}

/// A statement with a fixed nonce, signed by `k`.
pub fn statement<T: Serialize>(
    purpose: &str,
    chain: &str,
    k: &SecretKey,
    issued_at: u64,
    payload: T,
) -> Signed<T> {
    Statement {
        purpose: purpose.to_owned(),
        network: chain.to_owned(),
        signer: k.public(),
        nonce: [0; 16],
        issued_at,
        expires_at: None,
        payload,
    }
    .sign(k)
    .unwrap()
}

pub fn tx(k: &SecretKey, nonce: u64, fee: u128, body: TxBody) -> SignedTx {
    statement(purpose::TRANSACTION, CHAIN, k, 0, Tx { nonce, fee, body })
}

pub fn registration(
    node: &SecretKey,
    farm: u64,
    capacity: Capacity,
    issued_at: u64,
) -> Signed<NodeRegistration> {
    statement(
        purpose::NODE_REGISTRATION,
        CHAIN,
        node,
        issued_at,
        NodeRegistration { farm, capacity },
    )
}

pub fn approval(owner: &SecretKey, farm: u64, node: &SecretKey) -> Signed<FarmApproval> {
    statement(
        purpose::FARM_APPROVAL,
        CHAIN,
        owner,
        0,
        FarmApproval {
            farm,
            node: addr(node),
        },
    )
}

pub fn register_node(owner: &SecretKey, farm: u64, node: &SecretKey, capacity: Capacity) -> TxBody {
    TxBody::RegisterNode {
        registration: Box::new(registration(node, farm, capacity, 1)),
        approval: Box::new(approval(owner, farm, node)),
    }
}

pub fn uptime(node: &SecretKey, at: u64, uptime_secs: u64) -> TxBody {
    TxBody::ReportUptime {
        report: Box::new(statement(
            purpose::UPTIME,
            CHAIN,
            node,
            at,
            UptimeReport { uptime_secs },
        )),
    }
}

pub fn genesis(
    params: &str,
    accounts: &[(&SecretKey, u128)],
    validators: &[(&SecretKey, u128)],
) -> Genesis {
    let accounts: Vec<String> = accounts
        .iter()
        .map(|(k, b)| format!(r#"{{"id":"{}","balance":{b}}}"#, id(k)))
        .collect();
    let validators: Vec<String> = validators
        .iter()
        .map(|(k, s)| format!(r#"{{"id":"{}","stake":{s}}}"#, id(k)))
        .collect();
    Genesis::from_json(&format!(
        r#"{{"chain_id":"{CHAIN}","genesis_time":{T0},"params":{params},
            "accounts":[{}],"validators":[{}]}}"#,
        accounts.join(","),
        validators.join(",")
    ))
    .unwrap()
}

/// Drives a state through blocks proposed by one validator, tracking nonces.
pub struct Chain {
    pub state: State,
    pub proposer: Address,
}

impl Chain {
    pub fn new(genesis: &Genesis, proposer: &SecretKey) -> Self {
        Self {
            state: State::from_genesis(genesis),
            proposer: addr(proposer),
        }
    }

    /// Applies a block `dt` seconds after the previous one.
    pub fn block(&mut self, dt: u64, txs: &[SignedTx]) -> BlockOutcome {
        let header = BlockHeader {
            height: self.state.height() + 1,
            time: self.state.time() + dt,
            proposer: self.proposer,
        };
        let out = self.state.apply_block(&header, txs).unwrap();
        assert!(self.state.supply_is_conserved());
        out
    }

    /// Empty blocks at the same time up to `height − 1`, then one at `time`.
    pub fn advance_to(&mut self, height: u64, time: u64) -> BlockOutcome {
        while self.state.height() + 1 < height {
            self.block(0, &[]);
        }
        let dt = time - self.state.time();
        self.block(dt, &[])
    }

    /// A transaction from `k` with its next nonce and the minimum fee.
    pub fn tx(&self, k: &SecretKey, body: TxBody) -> SignedTx {
        tx(k, self.state.nonce(&addr(k)), FEE, body)
    }

    /// Sends one transaction in its own block `dt` seconds later.
    pub fn send(&mut self, dt: u64, k: &SecretKey, body: TxBody) -> TxStatus {
        let t = self.tx(k, body);
        self.block(dt, &[t]).receipts.remove(0)
    }
}

pub fn cap(cru: u32, mru_gib: u64, sru_gib: u64, hru_gib: u64) -> Capacity {
    Capacity {
        cru,
        mru_bytes: mru_gib * GIB,
        sru_bytes: sru_gib * GIB,
        hru_bytes: hru_gib * GIB,
    }
}
