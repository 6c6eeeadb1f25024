//! Property tests: random transaction sequences never panic, never overflow,
//! never let a balance go negative (amounts are unsigned and every change is
//! checked, so "negative" would show as a panic or a supply mismatch), conserve
//! supply except for explicit minting, slashing and burning, and never accept a
//! nonce twice.

mod common;

use common::*;
use nodus_identity::SecretKey;
use nodus_identity::statement::purpose;
use nodus_validator::state::Event;
use nodus_validator::state::evidence::{Evidence, Vote, VoteStep};
use nodus_validator::state::farm::PowerTarget;
use nodus_validator::{SignedTx, Tx, TxBody, TxError, TxStatus};
use proptest::prelude::*;

const PROP_PARAMS: &str = r#"{
    "min_fee": 10,
    "fee_burn_bps": 3333,
    "unbonding_period_blocks": 4,
    "max_evidence_age_blocks": 4,
    "jail_period_blocks": 3,
    "slash_fraction_bps": 777,
    "billing_interval_blocks": 3,
    "grace_period_blocks": 6,
    "epoch_secs": 1000,
    "epoch_reward": 1000000007,
    "late_report_window_secs": 100,
    "uptime_drift_secs": 60
}"#;

/// Account keys: 0 owns the farm, 4 is a second validator (never the proposer,
/// so jailing it never halts the chain).
fn accounts() -> Vec<SecretKey> {
    (2..7).map(key).collect()
}

#[derive(Debug, Clone)]
enum Op {
    Transfer {
        from: usize,
        to: usize,
        amount: u128,
    },
    Bond {
        who: usize,
        amount: u128,
    },
    Unbond {
        who: usize,
        amount: u128,
    },
    Unjail {
        who: usize,
    },
    Contract {
        who: usize,
        cru: u32,
        price: u128,
    },
    Cancel {
        who: usize,
        id: u64,
    },
    Uptime {
        back: u64,
        uptime: u64,
    },
    Power {
        who: usize,
        up: bool,
    },
    Evidence {
        back: u64,
        round: u32,
    },
    Replay {
        pick: usize,
    },
    BadNonce {
        who: usize,
        delta: u64,
    },
    LowFee {
        who: usize,
    },
    HugeFee {
        who: usize,
    },
}

fn amount() -> impl Strategy<Value = u128> {
    prop_oneof![
        0..100u128,
        0..1_000_000u128,
        any::<u128>(),
        Just(u128::MAX),
        Just(u128::MAX / 2 + 1),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let who = 0..5usize;
    prop_oneof![
        4 => (who.clone(), 0..5usize, amount()).prop_map(|(from, to, amount)| Op::Transfer { from, to, amount }),
        2 => (who.clone(), amount()).prop_map(|(who, amount)| Op::Bond { who, amount }),
        2 => (who.clone(), amount()).prop_map(|(who, amount)| Op::Unbond { who, amount }),
        1 => who.clone().prop_map(|who| Op::Unjail { who }),
        2 => (who.clone(), 0..6u32, amount()).prop_map(|(who, cru, price)| Op::Contract { who, cru, price }),
        1 => (who.clone(), 0..6u64).prop_map(|(who, id)| Op::Cancel { who, id }),
        3 => (0..400u64, 0..5_000u64).prop_map(|(back, uptime)| Op::Uptime { back, uptime }),
        1 => (who.clone(), any::<bool>()).prop_map(|(who, up)| Op::Power { who, up }),
        1 => (0..6u64, 0..3u32).prop_map(|(back, round)| Op::Evidence { back, round }),
        2 => any::<usize>().prop_map(|pick| Op::Replay { pick }),
        1 => (who.clone(), 1..3u64).prop_map(|(who, delta)| Op::BadNonce { who, delta }),
        1 => who.clone().prop_map(|who| Op::LowFee { who }),
        1 => who.prop_map(|who| Op::HugeFee { who }),
    ]
}

fn blocks() -> impl Strategy<Value = Vec<(u64, Vec<Op>)>> {
    prop::collection::vec(
        (
            prop_oneof![0..3u64, 0..1_500u64],
            prop::collection::vec(op(), 0..6),
        ),
        1..25,
    )
}

struct World {
    chain: Chain,
    keys: Vec<SecretKey>,
    node: SecretKey,
    /// Transactions that were accepted (applied or failed), for replays.
    accepted: Vec<SignedTx>,
}

fn world() -> World {
    let keys = accounts();
    let v = key(1);
    let balances = [1_000_000u128, 50_000, 5_000, u128::MAX / 2, 20_000];
    let funded: Vec<(&SecretKey, u128)> = keys.iter().zip(balances).collect();
    let g = genesis(
        PROP_PARAMS,
        &funded,
        &[(&v, 1_000_000), (&keys[4], 300_000)],
    );
    let mut chain = Chain::new(&g, &v);
    let node = key(21);
    assert_eq!(
        chain.send(
            1,
            &keys[0],
            TxBody::RegisterFarm {
                name: "prop".into()
            }
        ),
        TxStatus::Applied
    );
    assert_eq!(
        chain.send(
            1,
            &keys[0],
            register_node(&keys[0], 1, &node, cap(8, 32, 1000, 4000))
        ),
        TxStatus::Applied
    );
    World {
        chain,
        keys,
        node,
        accepted: Vec::new(),
    }
}

impl World {
    fn build(&self, op: &Op, nonces: &mut [u64]) -> (SignedTx, Option<usize>, bool) {
        let k = &self.keys;
        let mut normal = |who: usize, body: TxBody| {
            let t = tx(&k[who], nonces[who], FEE, body);
            nonces[who] += 1;
            (t, Some(who), false)
        };
        let state = &self.chain.state;
        match op {
            Op::Transfer { from, to, amount } => normal(
                *from,
                TxBody::Transfer {
                    to: addr(&k[*to]),
                    amount: *amount,
                },
            ),
            Op::Bond { who, amount } => normal(*who, TxBody::Bond { amount: *amount }),
            Op::Unbond { who, amount } => normal(*who, TxBody::Unbond { amount: *amount }),
            Op::Unjail { who } => normal(*who, TxBody::Unjail),
            Op::Contract { who, cru, price } => normal(
                *who,
                TxBody::CreateContract {
                    node: addr(&self.node),
                    resources: cap(*cru, 1, 0, 0),
                    price_per_hour: *price,
                },
            ),
            Op::Cancel { who, id } => normal(*who, TxBody::CancelContract { contract: *id }),
            Op::Uptime { back, uptime: up } => {
                let at = state.time().saturating_sub(*back);
                normal(0, uptime(&self.node, at, *up))
            }
            Op::Power { who, up } => normal(
                *who,
                TxBody::SetPowerTarget {
                    node: addr(&self.node),
                    target: if *up {
                        PowerTarget::Up
                    } else {
                        PowerTarget::Down
                    },
                },
            ),
            Op::Evidence { back, round } => {
                let height = state.height().saturating_sub(*back);
                let vote = |v| Vote {
                    height,
                    round: *round,
                    step: VoteStep::Prevote,
                    value: Some([v; 32]),
                };
                let e = Evidence {
                    first: vote(1).sign(CHAIN, &k[4]),
                    second: vote(2).sign(CHAIN, &k[4]),
                };
                normal(
                    1,
                    TxBody::ReportEvidence {
                        evidence: Box::new(e),
                    },
                )
            }
            Op::Replay { pick } => match self.accepted.len() {
                0 => normal(2, TxBody::Unjail),
                n => (self.accepted[pick % n].clone(), None, true),
            },
            Op::BadNonce { who, delta } => (
                tx(&k[*who], nonces[*who] + delta, FEE, TxBody::Unjail),
                None,
                true,
            ),
            Op::LowFee { who } => (
                tx(&k[*who], nonces[*who], FEE - 1, TxBody::Unjail),
                None,
                true,
            ),
            Op::HugeFee { who } => (
                tx(&k[*who], nonces[*who], u128::MAX, TxBody::Unjail),
                None,
                true,
            ),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn random_blocks_conserve_supply_and_never_accept_a_nonce_twice(plan in blocks()) {
        let mut w = world();
        for (dt, ops) in plan {
            let state = &w.chain.state;
            let start_nonces: Vec<u64> = w.keys.iter().map(|k| state.nonce(&addr(k))).collect();
            let mut nonces = start_nonces.clone();
            let built: Vec<_> = ops.iter().map(|op| w.build(op, &mut nonces)).collect();
            let txs: Vec<SignedTx> = built.iter().map(|(t, _, _)| t.clone()).collect();
            let before = w.chain.state.supply();
            let held_before = w.chain.state.circulating().unwrap();
            let jailed_before = w
                .chain
                .state
                .stake(&addr(&w.keys[4]))
                .is_some_and(|s| s.is_jailed());
            // `block` also asserts the supply identity after every block.
            let out = w.chain.block(dt, &txs);
            let state = &w.chain.state;
            prop_assert!(state.circulating().is_some());
            prop_assert!(state.supply_is_conserved());
            let s = state.supply();
            prop_assert_eq!(
                state.circulating().unwrap(),
                s.genesis + s.minted - s.slashed - s.burned
            );
            // What is held changes only by minting (rewards), slashing and burning,
            // and each of those only through its events.
            let minted: u128 = out.events.iter().map(|e| match e {
                Event::NodeRewarded { amount, .. } => *amount,
                _ => 0,
            }).sum();
            let slashes: Vec<u128> = out.events.iter().filter_map(|e| match e {
                Event::Slashed { amount, .. } => Some(*amount),
                _ => None,
            }).collect();
            prop_assert_eq!(s.minted - before.minted, minted);
            prop_assert_eq!(s.slashed - before.slashed, slashes.iter().sum::<u128>());
            prop_assert_eq!(
                state.circulating().unwrap() + (s.slashed - before.slashed) + (s.burned - before.burned),
                held_before + minted
            );
            // One jail, one slash: never twice in a block, never while jailed.
            prop_assert!(slashes.len() <= 1, "{:?}", out.events);
            prop_assert!(!jailed_before || slashes.is_empty(), "{:?}", out.events);
            let mut accepted_per_key = vec![0u64; w.keys.len()];
            for ((t, _, must_reject), status) in built.iter().zip(&out.receipts) {
                if *must_reject {
                    // Replays, skipped or reused nonces, low and unpayable fees.
                    prop_assert!(matches!(status, TxStatus::Rejected(_)), "{:?}", status);
                }
                if let TxStatus::Rejected(TxError::BadNonce { expected, found }) = status {
                    prop_assert_ne!(expected, found);
                }
                if !matches!(status, TxStatus::Rejected(_)) {
                    let who = w.keys.iter().position(|k| k.public() == t.statement.signer).unwrap();
                    accepted_per_key[who] += 1;
                    w.accepted.push(t.clone());
                }
            }
            for (i, k) in w.keys.iter().enumerate() {
                prop_assert_eq!(state.nonce(&addr(k)), start_nonces[i] + accepted_per_key[i]);
            }
            // Reserved capacity matches the open contracts exactly.
            let node = state.node(&addr(&w.node)).unwrap();
            let reserved: u32 = state.open_contracts().map(|(_, c)| c.resources.cru).sum();
            prop_assert_eq!(node.reserved.cru, reserved);
            prop_assert!(node.reserved.fits_in(&node.capacity));
        }
        // Every accepted transaction replayed at the end is rejected.
        let txs = w.accepted.clone();
        let out = w.chain.block(1, &txs);
        for status in out.receipts {
            prop_assert!(matches!(status, TxStatus::Rejected(TxError::BadNonce { .. })), "{:?}", status);
        }
    }

    #[test]
    fn rejected_transactions_change_nothing(plan in blocks(), junk in prop::collection::vec((0..5usize, 0..4u8), 1..8)) {
        let mut w = world();
        for (dt, ops) in plan.into_iter().take(4) {
            let mut nonces: Vec<u64> = w.keys.iter().map(|k| w.chain.state.nonce(&addr(k))).collect();
            let txs: Vec<SignedTx> = ops.iter().map(|op| w.build(op, &mut nonces).0).collect();
            w.chain.block(dt, &txs);
        }
        let bad: Vec<SignedTx> = junk
            .iter()
            .map(|(who, kind)| {
                let k = &w.keys[*who];
                let n = w.chain.state.nonce(&addr(k));
                let body = TxBody::Transfer { to: addr(&w.keys[0]), amount: 1 };
                match kind {
                    0 => tx(k, n + 1, FEE, body),
                    1 => tx(k, n, 1, body),
                    2 => statement(purpose::TRANSACTION, "elsewhere", k, 0, Tx { nonce: n, fee: FEE, body }),
                    _ => {
                        let mut t = tx(k, n, FEE, body);
                        t.statement.payload.fee += 1;
                        t
                    }
                }
            })
            .collect();
        let mut twin = Chain { state: w.chain.state.clone(), proposer: w.chain.proposer };
        let out = w.chain.block(7, &bad);
        prop_assert!(out.receipts.iter().all(|r| matches!(r, TxStatus::Rejected(_))));
        prop_assert_eq!(out.state_root, twin.block(7, &[]).state_root);
    }
}

#[test]
fn mempool_batch_check_agrees_with_single_checks() {
    use rand::SeedableRng;
    let w = world();
    let k = &w.keys;
    let state = &w.chain.state;
    let body = || TxBody::Transfer {
        to: addr(&k[1]),
        amount: 5,
    };
    let good = tx(&k[0], state.nonce(&addr(&k[0])), FEE, body());
    let mut forged = tx(&k[1], state.nonce(&addr(&k[1])), FEE, body());
    forged.statement.payload.fee = 11;
    // Malleated: s + ℓ is a non-canonical scalar, refused by both paths.
    let mut malleated = tx(&k[2], state.nonce(&addr(&k[2])), FEE, body());
    let mut sig = malleated.signature.to_bytes();
    const ELL: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let mut carry = 0u16;
    for i in 0..32 {
        let v = u16::from(sig[32 + i]) + u16::from(ELL[i]) + carry;
        sig[32 + i] = v as u8;
        carry = v >> 8;
    }
    malleated.signature = nodus_identity::Signature::from_bytes(&sig);
    let stale = tx(&k[3], state.nonce(&addr(&k[3])) + 1, FEE, body());
    let good2 = tx(&k[4], state.nonce(&addr(&k[4])), FEE, body());
    let txs = vec![good, forged, malleated, stale, good2];
    let single: Vec<_> = txs.iter().map(|t| state.check_tx(t)).collect();
    let batched = state.check_txs(&txs, rand::rngs::StdRng::seed_from_u64(3));
    assert_eq!(batched, single);
    assert!(single[0].is_ok() && single[4].is_ok());
    assert!(matches!(single[1], Err(TxError::Signature(_))));
    assert!(matches!(single[2], Err(TxError::Signature(_))));
    assert!(matches!(single[3], Err(TxError::BadNonce { .. })));
    // And applying them in a block gives the same verdicts.
    let mut c = Chain {
        state: state.clone(),
        proposer: w.chain.proposer,
    };
    let out = c.block(1, &txs);
    for (r, s) in out.receipts.iter().zip(&single) {
        assert_eq!(matches!(r, TxStatus::Rejected(_)), s.is_err());
    }
    // The block path with all signatures checked in one batch: identical outcome.
    let mut batched_state = state.clone();
    let header = nodus_validator::BlockHeader {
        height: state.height() + 1,
        time: state.time() + 1,
        proposer: w.chain.proposer,
    };
    let out2 = batched_state
        .apply_block_batched(&header, &txs, rand::rngs::StdRng::seed_from_u64(9))
        .unwrap();
    assert_eq!(out2, out);
    assert_eq!(batched_state, c.state);
}

/// Runs a plan on a fresh world and returns the root after every block.
fn roots_of(plan: &[(u64, Vec<Op>)]) -> Vec<[u8; 32]> {
    let mut w = world();
    let mut roots = vec![w.chain.state.root()];
    for (dt, ops) in plan {
        let mut nonces: Vec<u64> = w
            .keys
            .iter()
            .map(|k| w.chain.state.nonce(&addr(k)))
            .collect();
        let built: Vec<_> = ops.iter().map(|op| w.build(op, &mut nonces)).collect();
        let txs: Vec<SignedTx> = built.iter().map(|(t, _, _)| t.clone()).collect();
        let out = w.chain.block(*dt, &txs);
        for ((t, _, _), r) in built.iter().zip(&out.receipts) {
            if !matches!(r, TxStatus::Rejected(_)) {
                w.accepted.push(t.clone());
            }
        }
        roots.push(out.state_root);
    }
    roots
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn same_plan_same_roots(plan in blocks()) {
        prop_assert_eq!(roots_of(&plan), roots_of(&plan));
    }

    /// Corrupted transaction bytes either fail to decode or are handled without a
    /// panic, and never break the supply identity.
    #[test]
    fn corrupted_transactions_never_panic(
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        which in 0..4usize,
    ) {
        let mut w = world();
        let k = &w.keys;
        let n = w.chain.state.nonce(&addr(&k[0]));
        let body = match which {
            0 => TxBody::Transfer { to: addr(&k[1]), amount: 77 },
            1 => register_node(&k[0], 1, &key(22), cap(1, 1, 1, 1)),
            2 => uptime(&w.node, w.chain.state.time(), 10),
            _ => TxBody::CreateContract { node: addr(&w.node), resources: cap(1, 1, 0, 0), price_per_hour: 99 },
        };
        let mut bytes = postcard::to_allocvec(&tx(&k[0], n, FEE, body)).unwrap();
        for (i, b) in flips {
            let i = i.index(bytes.len());
            bytes[i] ^= b;
        }
        if let Ok(t) = postcard::from_bytes::<SignedTx>(&bytes) {
            let out = w.chain.block(1, &[t]);
            prop_assert_eq!(out.receipts.len(), 1);
        }
        prop_assert!(w.chain.state.supply_is_conserved());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// A transaction whose body fails leaves exactly the state a zero transfer
    /// (which always fails, changing nothing) with the same nonce and fee leaves:
    /// the fee is paid and the nonce advances, nothing else.
    #[test]
    fn failed_transactions_only_cost_the_fee(plan in blocks(), last in op()) {
        let mut w = world();
        for (dt, ops) in plan.iter().take(6) {
            let mut nonces: Vec<u64> = w.keys.iter().map(|k| w.chain.state.nonce(&addr(k))).collect();
            let txs: Vec<SignedTx> = ops.iter().map(|op| w.build(op, &mut nonces).0).collect();
            w.chain.block(*dt, &txs);
        }
        let mut nonces: Vec<u64> = w.keys.iter().map(|k| w.chain.state.nonce(&addr(k))).collect();
        let (t, _, _) = w.build(&last, &mut nonces);
        let mut twin = Chain { state: w.chain.state.clone(), proposer: w.chain.proposer };
        let out = w.chain.block(1, std::slice::from_ref(&t));
        if let TxStatus::Failed(_) = &out.receipts[0] {
            let sender = w.keys.iter().find(|k| k.public() == t.statement.signer).unwrap();
            let noop = tx(
                sender,
                t.statement.payload.nonce,
                t.statement.payload.fee,
                TxBody::Transfer { to: addr(&w.keys[0]), amount: 0 },
            );
            let out2 = twin.block(1, &[noop]);
            prop_assert!(matches!(out2.receipts[0], TxStatus::Failed(_)));
            prop_assert_eq!(out.state_root, out2.state_root);
        }
    }
}
