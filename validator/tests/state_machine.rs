//! Scenario tests of the state machine with exact, hand-computed amounts.

mod common;

use common::*;
use nodus_identity::statement::purpose;
use nodus_validator::state::account::AccountError;
use nodus_validator::state::contract::{CancelReason, ContractState};
use nodus_validator::state::evidence::{Evidence, EvidenceError, Vote, VoteStep};
use nodus_validator::state::farm::{FarmError, PowerTarget};
use nodus_validator::state::stake::StakeError;
use nodus_validator::state::uptime::UptimeError;
use nodus_validator::state::{Address, Event};
use nodus_validator::{BlockError, BlockHeader, TxBody, TxError, TxStatus};

#[test]
fn transfer_pays_fee_half_burned_half_to_proposer() {
    let (v, a, b) = (key(1), key(2), key(3));
    let mut c = Chain::new(&genesis(PARAMS, &[(&a, 1_000)], &[(&v, 100)]), &v);
    let st = c.send(
        1,
        &a,
        TxBody::Transfer {
            to: addr(&b),
            amount: 300,
        },
    );
    assert_eq!(st, TxStatus::Applied);
    // a: 1000 − 300 − fee 10 = 690. b: 300. Fee: ⌊10 × 5000 / 10000⌋ = 5 burned, 5 to v.
    assert_eq!(c.state.balance(&addr(&a)), 690);
    assert_eq!(c.state.balance(&addr(&b)), 300);
    assert_eq!(c.state.balance(&addr(&v)), 5);
    assert_eq!(c.state.supply().burned, 5);
    assert_eq!(c.state.nonce(&addr(&a)), 1);
}

#[test]
fn odd_fee_rounds_the_burn_down_and_tips_the_remainder() {
    let (v, a) = (key(1), key(2));
    let mut c = Chain::new(&genesis(PARAMS, &[(&a, 1_000)], &[(&v, 100)]), &v);
    let t = tx(
        &a,
        0,
        15,
        TxBody::Transfer {
            to: addr(&v),
            amount: 1,
        },
    );
    c.block(1, &[t]);
    // Fee 15: burn ⌊15 × 0.5⌋ = 7, proposer 8, plus the 1 transferred.
    assert_eq!(c.state.supply().burned, 7);
    assert_eq!(c.state.balance(&addr(&v)), 9);
    assert_eq!(c.state.balance(&addr(&a)), 1_000 - 15 - 1);
}

#[test]
fn replayed_nonce_is_rejected_and_changes_nothing() {
    let (v, a, b) = (key(1), key(2), key(3));
    let g = genesis(PARAMS, &[(&a, 1_000)], &[(&v, 100)]);
    let mut c = Chain::new(&g, &v);
    let t = tx(
        &a,
        0,
        FEE,
        TxBody::Transfer {
            to: addr(&b),
            amount: 300,
        },
    );
    assert_eq!(
        c.block(1, std::slice::from_ref(&t)).receipts,
        vec![TxStatus::Applied]
    );
    // Replaying the same signed transaction, in a later block or the same one.
    let mut twin = Chain {
        state: c.state.clone(),
        proposer: c.proposer,
    };
    let out = c.block(1, std::slice::from_ref(&t));
    assert_eq!(
        out.receipts,
        vec![TxStatus::Rejected(TxError::BadNonce {
            expected: 1,
            found: 0
        })]
    );
    // A rejected transaction leaves the state exactly as an empty block would.
    assert_eq!(out.state_root, twin.block(1, &[]).state_root);
    assert_eq!(c.state.balance(&addr(&b)), 300);

    let mut d = Chain::new(&g, &v);
    let out = d.block(1, &[t.clone(), t]);
    assert_eq!(out.receipts[0], TxStatus::Applied);
    assert!(matches!(
        out.receipts[1],
        TxStatus::Rejected(TxError::BadNonce { .. })
    ));
}

#[test]
fn rejections_fee_and_chain_and_signature() {
    let (v, a, b) = (key(1), key(2), key(3));
    let mut c = Chain::new(&genesis(PARAMS, &[(&a, 1_000)], &[(&v, 100)]), &v);
    let body = || TxBody::Transfer {
        to: addr(&b),
        amount: 1,
    };
    let low_fee = tx(&a, 0, 9, body());
    let too_poor = tx(&b, 0, FEE, body());
    let other_chain = statement(
        purpose::TRANSACTION,
        "mainnet",
        &a,
        0,
        nodus_validator::Tx {
            nonce: 0,
            fee: FEE,
            body: body(),
        },
    );
    let wrong_purpose = statement(
        purpose::GRANT,
        CHAIN,
        &a,
        0,
        nodus_validator::Tx {
            nonce: 0,
            fee: FEE,
            body: body(),
        },
    );
    let mut forged = tx(&a, 0, FEE, body());
    forged.statement.payload.fee = 11;
    let before = c.state.clone();
    let out = c.block(1, &[low_fee, too_poor, other_chain, wrong_purpose, forged]);
    assert_eq!(
        out.receipts,
        vec![
            TxStatus::Rejected(TxError::FeeTooLow { min: 10, fee: 9 }),
            TxStatus::Rejected(TxError::CannotPayFee {
                fee: 10,
                balance: 0
            }),
            TxStatus::Rejected(TxError::WrongNetwork("mainnet".into())),
            TxStatus::Rejected(TxError::WrongPurpose(purpose::GRANT.into())),
            TxStatus::Rejected(TxError::Signature(
                nodus_validator::signature::SignatureError::Invalid
            )),
        ]
    );
    assert_eq!(c.state.balance(&addr(&a)), before.balance(&addr(&a)));
    assert_eq!(c.state.nonce(&addr(&a)), 0);
}

#[test]
fn failed_body_charges_fee_and_nonce_only() {
    let (v, a, b) = (key(1), key(2), key(3));
    let mut c = Chain::new(&genesis(PARAMS, &[(&a, 1_000)], &[(&v, 100)]), &v);
    let st = c.send(
        1,
        &a,
        TxBody::Transfer {
            to: addr(&b),
            amount: 995,
        },
    );
    // 995 + fee 10 > 1000: the fee is paid first, then 990 is left for the body.
    assert_eq!(
        st,
        TxStatus::Failed(TxError::Account(AccountError::InsufficientBalance {
            needed: 995,
            available: 990
        }))
    );
    assert_eq!(c.state.balance(&addr(&a)), 990);
    assert_eq!(c.state.nonce(&addr(&a)), 1);
    assert!(c.state.account(&addr(&b)).is_none());
    // Tokens sent to a key nobody can sign for (here the identity point, a weak
    // key) could never be spent again: refused.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let nowhere = Address(identity);
    assert_eq!(
        c.send(
            1,
            &a,
            TxBody::Transfer {
                to: nowhere,
                amount: 1
            }
        ),
        TxStatus::Failed(TxError::Account(AccountError::InvalidReceiver(nowhere)))
    );
    assert_eq!(c.state.balance(&addr(&a)), 980);
    let st = c.send(
        1,
        &a,
        TxBody::Transfer {
            to: addr(&b),
            amount: u128::MAX,
        },
    );
    assert!(matches!(
        st,
        TxStatus::Failed(TxError::Account(AccountError::InsufficientBalance { .. }))
    ));
}

#[test]
fn block_errors_leave_state_untouched() {
    let (v, a) = (key(1), key(2));
    let mut c = Chain::new(&genesis(PARAMS, &[(&a, 1_000)], &[(&v, 100)]), &v);
    c.block(5, &[]);
    let root = c.state.root();
    let h = |height, time, proposer| BlockHeader {
        height,
        time,
        proposer,
    };
    assert_eq!(
        c.state.apply_block(&h(3, T0 + 10, addr(&v)), &[]),
        Err(BlockError::WrongHeight {
            expected: 2,
            found: 3
        })
    );
    assert_eq!(
        c.state.apply_block(&h(2, T0 + 4, addr(&v)), &[]),
        Err(BlockError::TimeWentBack {
            previous: T0 + 5,
            found: T0 + 4
        })
    );
    assert_eq!(
        c.state.apply_block(&h(2, T0 + 6, addr(&a)), &[]),
        Err(BlockError::UnknownProposer(addr(&a)))
    );
    assert_eq!(c.state.root(), root);
}

#[test]
fn bonding_unbonding_and_validator_set() {
    let (v, a, b) = (key(1), key(2), key(3));
    let params = PARAMS.replace(
        "\"min_fee\": 10",
        "\"min_fee\": 10, \"max_validators\": 2, \"min_validator_stake\": 50",
    );
    let mut c = Chain::new(
        &genesis(&params, &[(&a, 1_000), (&b, 1_000)], &[(&v, 100)]),
        &v,
    );
    assert_eq!(
        c.send(1, &a, TxBody::Bond { amount: 40 }),
        TxStatus::Applied
    );
    // Below the minimum stake: not a validator yet.
    assert!(!c.state.validator_set().contains(&addr(&a)));
    assert_eq!(
        c.send(1, &a, TxBody::Bond { amount: 160 }),
        TxStatus::Applied
    );
    assert_eq!(
        c.send(1, &b, TxBody::Bond { amount: 100 }),
        TxStatus::Applied
    );
    // Top 2 by stake: a (200), then v and b tie at 100 and the lower address wins.
    let set = c.state.validator_set();
    let first_of_tie = addr(&v).min(addr(&b));
    assert_eq!(
        set.validators
            .iter()
            .map(|x| (x.address, x.power))
            .collect::<Vec<_>>(),
        vec![(addr(&a), 200), (first_of_tie, 100)]
    );
    assert_eq!(set.total_power(), 300);
    // Unbond 150 at height 4: released at height 4 + 5 = 9.
    assert_eq!(
        c.send(1, &a, TxBody::Unbond { amount: 150 }),
        TxStatus::Applied
    );
    assert_eq!(c.state.stake(&addr(&a)).unwrap().bonded, 50);
    assert_eq!(c.state.unbonding_of(&addr(&a)), 150);
    assert_eq!(
        c.send(1, &a, TxBody::Unbond { amount: 51 }),
        TxStatus::Failed(TxError::Stake(StakeError::InsufficientBond {
            requested: 51,
            bonded: 50
        }))
    );
    let balance = c.state.balance(&addr(&a));
    c.advance_to(8, T0 + 20);
    assert_eq!(c.state.balance(&addr(&a)), balance);
    let out = c.block(1, &[]);
    assert_eq!(out.height, 9);
    assert!(out.events.contains(&Event::UnbondingReleased {
        address: addr(&a),
        amount: 150
    }));
    assert_eq!(c.state.balance(&addr(&a)), balance + 150);
    assert_eq!(c.state.unbonding_of(&addr(&a)), 0);
}

fn farm_with_node() -> (Chain, [nodus_identity::SecretKey; 4]) {
    let (v, owner, node, tenant) = (key(1), key(11), key(21), key(31));
    let mut c = Chain::new(
        &genesis(PARAMS, &[(&owner, 1_000), (&tenant, 10_000)], &[(&v, 100)]),
        &v,
    );
    assert_eq!(
        c.send(
            1,
            &owner,
            TxBody::RegisterFarm {
                name: "farm one".into()
            }
        ),
        TxStatus::Applied
    );
    assert_eq!(
        c.send(
            1,
            &owner,
            register_node(&owner, 1, &node, cap(8, 16, 512, 0))
        ),
        TxStatus::Applied
    );
    (c, [v, owner, node, tenant])
}

#[test]
fn node_registration_needs_the_farm_owners_approval() {
    let (v, owner, node, stranger) = (key(1), key(11), key(21), key(12));
    let mut c = Chain::new(
        &genesis(PARAMS, &[(&owner, 1_000), (&stranger, 1_000)], &[(&v, 100)]),
        &v,
    );
    c.send(
        1,
        &owner,
        TxBody::RegisterFarm {
            name: "farm one".into(),
        },
    );
    let cap = cap(4, 8, 0, 0);
    let reg = || Box::new(registration(&node, 1, cap, 1));
    let cases: Vec<(TxBody, FarmError)> = vec![
        // Approved by someone who does not own the farm (here, the node itself).
        (
            TxBody::RegisterNode {
                registration: reg(),
                approval: Box::new(approval(&node, 1, &node)),
            },
            FarmError::NotFarmOwner(1),
        ),
        (
            TxBody::RegisterNode {
                registration: reg(),
                approval: Box::new(approval(&stranger, 1, &node)),
            },
            FarmError::NotFarmOwner(1),
        ),
        // The owner's signature, but made for another purpose.
        (
            TxBody::RegisterNode {
                registration: reg(),
                approval: Box::new(statement(
                    purpose::NODE_REGISTRATION,
                    CHAIN,
                    &owner,
                    0,
                    nodus_validator::state::farm::FarmApproval {
                        farm: 1,
                        node: addr(&node),
                    },
                )),
            },
            FarmError::WrongPurpose {
                expected: purpose::FARM_APPROVAL.into(),
                found: purpose::NODE_REGISTRATION.into(),
            },
        ),
        // The owner's approval for another chain.
        (
            TxBody::RegisterNode {
                registration: reg(),
                approval: Box::new(statement(
                    purpose::FARM_APPROVAL,
                    "mainnet",
                    &owner,
                    0,
                    nodus_validator::state::farm::FarmApproval {
                        farm: 1,
                        node: addr(&node),
                    },
                )),
            },
            FarmError::WrongNetwork("mainnet".into()),
        ),
        // The node's request for another chain.
        (
            TxBody::RegisterNode {
                registration: Box::new(statement(
                    purpose::NODE_REGISTRATION,
                    "mainnet",
                    &node,
                    1,
                    nodus_validator::state::farm::NodeRegistration {
                        farm: 1,
                        capacity: cap,
                    },
                )),
                approval: Box::new(approval(&owner, 1, &node)),
            },
            FarmError::WrongNetwork("mainnet".into()),
        ),
        // An approval for a different node.
        (
            TxBody::RegisterNode {
                registration: reg(),
                approval: Box::new(approval(&owner, 1, &stranger)),
            },
            FarmError::Mismatch,
        ),
        // A forged approval (payload changed after signing).
        (
            TxBody::RegisterNode {
                registration: reg(),
                approval: Box::new({
                    let mut a = approval(&owner, 1, &stranger);
                    a.statement.payload.node = addr(&node);
                    a
                }),
            },
            FarmError::Signature(nodus_validator::signature::SignatureError::Invalid),
        ),
    ];
    for (body, err) in cases {
        assert_eq!(
            c.send(1, &stranger, body),
            TxStatus::Failed(TxError::Farm(err))
        );
        assert!(c.state.node(&addr(&node)).is_none());
    }
    let ok = register_node(&owner, 1, &node, cap);
    assert_eq!(c.send(1, &stranger, ok.clone()), TxStatus::Applied);
    let n = c.state.node(&addr(&node)).unwrap();
    assert_eq!(
        (n.farm, n.capacity, n.power_target),
        (1, cap, PowerTarget::Up)
    );
    assert_eq!(
        c.send(1, &stranger, ok),
        TxStatus::Failed(TxError::Farm(FarmError::NodeExists(addr(&node))))
    );
}

#[test]
fn power_target_and_capacity_updates() {
    let (mut c, [_, owner, node, tenant]) = farm_with_node();
    let set = |t| TxBody::SetPowerTarget {
        node: addr(&node),
        target: t,
    };
    assert_eq!(
        c.send(1, &tenant, set(PowerTarget::Down)),
        TxStatus::Failed(TxError::Farm(FarmError::NotFarmOwner(1)))
    );
    assert_eq!(c.send(1, &owner, set(PowerTarget::Down)), TxStatus::Applied);
    assert_eq!(
        c.state.node(&addr(&node)).unwrap().power_target,
        PowerTarget::Down
    );
    // Reserve 4 CPUs, then try to shrink below that.
    let create = TxBody::CreateContract {
        node: addr(&node),
        resources: cap(4, 0, 0, 0),
        price_per_hour: 0,
    };
    assert_eq!(c.send(1, &tenant, create), TxStatus::Applied);
    let update = |cpus, at| TxBody::UpdateCapacity {
        registration: Box::new(registration(&node, 1, cap(cpus, 16, 512, 0), at)),
    };
    assert_eq!(
        c.send(1, &tenant, update(3, 2)),
        TxStatus::Failed(TxError::Farm(FarmError::BelowReserved))
    );
    assert_eq!(c.send(1, &tenant, update(16, 2)), TxStatus::Applied);
    // The same (or an older) report again is stale.
    assert_eq!(
        c.send(1, &tenant, update(32, 2)),
        TxStatus::Failed(TxError::Farm(FarmError::StaleCapacity))
    );
    assert_eq!(c.state.node(&addr(&node)).unwrap().capacity.cru, 16);
}

#[test]
fn billing_grace_reactivation_and_cancellation_exact_amounts() {
    let (mut c, [_, owner, node, tenant]) = farm_with_node();
    let (o, t) = (addr(&owner), addr(&tenant));
    let funder = key(12);
    // Height 3, time T0+3: a contract at 1000 units/hour for 2 CPUs and 4 GiB.
    let create = TxBody::CreateContract {
        node: addr(&node),
        resources: cap(2, 4, 0, 0),
        price_per_hour: 1_000,
    };
    assert_eq!(c.send(1, &tenant, create), TxStatus::Applied);
    assert_eq!(c.state.height(), 3);
    assert_eq!(
        c.state.node(&addr(&node)).unwrap().reserved,
        cap(2, 4, 0, 0)
    );
    assert_eq!(c.state.balance(&t), 10_000 - 10);

    let billed = |out: &nodus_validator::BlockOutcome| {
        out.events.iter().find_map(|e| match e {
            Event::ContractBilled {
                contract: 1,
                amount,
            } => Some(*amount),
            _ => None,
        })
    };
    let owner_before = c.state.balance(&o);
    // Height 10, 1000 s later: 1000 × 1000 = 1 000 000 unit-seconds;
    // ⌊1 000 000 / 3600⌋ = 277, carry 1 000 000 − 277 × 3600 = 2800.
    let out = c.advance_to(10, T0 + 3 + 1_000);
    assert_eq!(billed(&out), Some(277));
    assert_eq!(c.state.contract(1).unwrap().carry, 2_800);
    // Height 20, 1000 s more: 1 000 000 + 2800 = 1 002 800 → 278, carry 2000.
    assert_eq!(billed(&c.advance_to(20, T0 + 2_003)), Some(278));
    // Height 30: 1 002 000 → 278, carry 1200. Total 833 = ⌊3 000 000 / 3600⌋: no
    // unit lost or gained to rounding.
    assert_eq!(billed(&c.advance_to(30, T0 + 3_003)), Some(278));
    assert_eq!(c.state.contract(1).unwrap().paid, 833);
    assert_eq!(c.state.balance(&o), owner_before + 833);
    assert_eq!(c.state.balance(&t), 9_990 - 833);

    // The tenant moves all but 100 away (fee 10) at height 31.
    let t_balance = c.state.balance(&t);
    assert_eq!(
        c.send(
            0,
            &tenant,
            TxBody::Transfer {
                to: addr(&funder),
                amount: t_balance - 110
            }
        ),
        TxStatus::Applied
    );
    assert_eq!(c.state.balance(&t), 100);
    // Height 40: due (1 000 000 + 1200) / 3600 → 278 > 100: grace, nothing charged.
    let out = c.advance_to(40, T0 + 4_003);
    assert!(out.events.contains(&Event::ContractInGrace {
        contract: 1,
        due: 278
    }));
    assert_eq!(
        c.state.contract(1).unwrap().state,
        ContractState::Grace { since: 40 }
    );
    assert_eq!(c.state.balance(&t), 100);
    // Height 50: due ⌊2 001 200 / 3600⌋ = 555, still short, 10 < 20 blocks of grace.
    let out = c.advance_to(50, T0 + 5_003);
    assert!(!out.events.contains(&Event::ContractInGrace {
        contract: 1,
        due: 555
    }));
    assert_eq!(
        c.state.contract(1).unwrap().state,
        ContractState::Grace { since: 40 }
    );
    // Refill 1000 at height 51. Height 60: 3000 s unbilled: ⌊3 001 200 / 3600⌋ = 833,
    // carry 3 001 200 − 2 998 800 = 2400. Paid in full; active again.
    assert_eq!(
        c.send(
            0,
            &funder,
            TxBody::Transfer {
                to: t,
                amount: 1_000
            }
        ),
        TxStatus::Applied
    );
    let owner_before = c.state.balance(&o);
    let out = c.advance_to(60, T0 + 6_003);
    assert_eq!(billed(&out), Some(833));
    assert!(
        out.events
            .contains(&Event::ContractReactivated { contract: 1 })
    );
    assert_eq!(c.state.contract(1).unwrap().state, ContractState::Active);
    assert_eq!(c.state.contract(1).unwrap().carry, 2_400);
    assert_eq!(c.state.balance(&o), owner_before + 833);
    assert_eq!(c.state.balance(&t), 1_100 - 833);
    // Height 70: ⌊1 002 400 / 3600⌋ = 278 > 267: grace since 70.
    c.advance_to(70, T0 + 7_003);
    assert_eq!(
        c.state.contract(1).unwrap().state,
        ContractState::Grace { since: 70 }
    );
    // Height 80: still in grace (10 blocks). Height 90: 20 blocks: cancelled.
    // Due ⌊(3 000 000 + 2400) / 3600⌋ = 834; the tenant's 267 is paid, 567 unpaid.
    c.advance_to(80, T0 + 8_003);
    let owner_before = c.state.balance(&o);
    let out = c.advance_to(90, T0 + 9_003);
    assert!(out.events.contains(&Event::ContractCancelled {
        contract: 1,
        reason: CancelReason::Unpaid,
        paid: 267,
        unpaid: 567
    }));
    assert_eq!(
        c.state.contract(1).unwrap().state,
        ContractState::Cancelled {
            at: 90,
            reason: CancelReason::Unpaid
        }
    );
    assert_eq!(c.state.balance(&t), 0);
    assert_eq!(c.state.balance(&o), owner_before + 267);
    assert_eq!(c.state.contract(1).unwrap().paid, 833 + 833 + 267);
    // Capacity is free again, and later billing ignores the contract.
    assert_eq!(
        c.state.node(&addr(&node)).unwrap().reserved,
        cap(0, 0, 0, 0)
    );
    let out = c.advance_to(100, T0 + 10_003);
    assert!(
        out.events
            .iter()
            .all(|e| matches!(e, Event::EpochSettled { .. })),
        "{:?}",
        out.events
    );
}

#[test]
fn tenant_cancel_settles_pro_rata_and_capacity_limits_hold() {
    let (mut c, [_, _, node, tenant]) = farm_with_node();
    let n = addr(&node);
    let too_big = TxBody::CreateContract {
        node: n,
        resources: cap(9, 0, 0, 0),
        price_per_hour: 1,
    };
    assert_eq!(
        c.send(1, &tenant, too_big),
        TxStatus::Failed(TxError::Contract(
            nodus_validator::state::contract::ContractError::NoCapacity(n)
        ))
    );
    let create = TxBody::CreateContract {
        node: n,
        resources: cap(8, 0, 0, 0),
        price_per_hour: 3_600,
    };
    let out = c.block(1, &[c.tx(&tenant, create)]);
    assert_eq!(out.receipts, vec![TxStatus::Applied]);
    assert_eq!(
        out.events,
        vec![Event::ContractCreated {
            contract: 1,
            tenant: addr(&tenant),
            node: n
        }]
    );
    let create = TxBody::CreateContract {
        node: n,
        resources: cap(1, 0, 0, 0),
        price_per_hour: 1,
    };
    assert!(matches!(c.send(1, &tenant, create), TxStatus::Failed(_)));
    // Contract 1 from time T0+4 (height 4); cancelled at height 6, time T0+4+1+7 = T0+12:
    // 8 s × 3600 / 3600 = 8 units.
    assert_eq!(c.state.height(), 5);
    let before = c.state.balance(&addr(&tenant));
    let out = c.block(7, &[c.tx(&tenant, TxBody::CancelContract { contract: 1 })]);
    assert_eq!(out.receipts, vec![TxStatus::Applied]);
    assert!(out.events.contains(&Event::ContractCancelled {
        contract: 1,
        reason: CancelReason::ByTenant,
        paid: 8,
        unpaid: 0
    }));
    assert_eq!(c.state.balance(&addr(&tenant)), before - 10 - 8);
    assert_eq!(
        c.send(1, &tenant, TxBody::CancelContract { contract: 1 }),
        TxStatus::Failed(TxError::Contract(
            nodus_validator::state::contract::ContractError::AlreadyCancelled(1)
        ))
    );
}

#[test]
fn farming_rewards_exact_with_a_late_report() {
    let (v, f1, f2, na, nb) = (key(1), key(11), key(12), key(21), key(22));
    let mut c = Chain::new(
        &genesis(PARAMS, &[(&f1, 1_000), (&f2, 1_000)], &[(&v, 100)]),
        &v,
    );
    let b1 = [
        c.tx(&f1, TxBody::RegisterFarm { name: "one".into() }),
        c.tx(&f2, TxBody::RegisterFarm { name: "two".into() }),
    ];
    let out = c.block(1, &b1);
    assert_eq!(
        out.events,
        vec![
            Event::FarmRegistered {
                farm: 1,
                owner: addr(&f1)
            },
            Event::FarmRegistered {
                farm: 2,
                owner: addr(&f2)
            },
        ]
    );
    // Weights (defaults: cru 512, mru 128 per GiB): A = 4×512 + 8×128 = 3072,
    // B = 2×512 = 1024; W = 4096. Both registered at T0+1, in epoch 0 = [T0, T0+1000).
    let b2 = [
        c.tx(&f1, register_node(&f1, 1, &na, cap(4, 8, 0, 0))),
        c.tx(&f2, register_node(&f2, 2, &nb, cap(2, 0, 0, 0))),
    ];
    assert_eq!(
        c.block(0, &b2).events,
        vec![
            Event::NodeRegistered {
                node: addr(&na),
                farm: 1
            },
            Event::NodeRegistered {
                node: addr(&nb),
                farm: 2
            },
        ]
    );
    // B booted at T0+151 and reports at T0+251: credits [T0+151, T0+251) = 100 s.
    assert_eq!(
        c.send(250, &f1, uptime(&nb, T0 + 251, 100)),
        TxStatus::Applied
    );
    assert_eq!(c.state.uptime_credit(0, &addr(&nb)), 100);
    // A has been up long before registering: credit starts at registration,
    // [T0+1, T0+501) = 500 s.
    assert_eq!(
        c.send(250, &f1, uptime(&na, T0 + 501, 10_000)),
        TxStatus::Applied
    );
    assert_eq!(c.state.uptime_credit(0, &addr(&na)), 500);
    // A reports again in epoch 1: [T0+501, T0+1000) = 499 s to epoch 0, 1 s to epoch 1.
    assert_eq!(
        c.send(500, &f1, uptime(&na, T0 + 1_001, 10_500)),
        TxStatus::Applied
    );
    assert_eq!(c.state.uptime_credit(0, &addr(&na)), 999);
    assert_eq!(c.state.uptime_credit(1, &addr(&na)), 1);
    // B's report made at T0+999 lands late, at T0+1050, after epoch 0 ended but
    // inside the 100 s window: it still credits [T0+251, T0+999) = 748 s to epoch 0.
    assert_eq!(
        c.send(49, &f1, uptime(&nb, T0 + 999, 848)),
        TxStatus::Applied
    );
    assert_eq!(c.state.uptime_credit(0, &addr(&nb)), 848);
    assert_eq!(c.state.settled_epochs(), 0);
    // Epoch 0 settles at the first block at or after T0 + 1000 + 100.
    let (b1_before, b2_before) = (c.state.balance(&addr(&f1)), c.state.balance(&addr(&f2)));
    let out = c.block(50, &[]);
    assert_eq!(c.state.time(), T0 + 1_100);
    assert_eq!(c.state.settled_epochs(), 1);
    // A: ⌊999 999 × 3072 × 999 / (4096 × 1000)⌋ = ⌊749 249.25…⌋ = 749 249.
    // B: ⌊999 999 × 1024 × 848 / (4096 × 1000)⌋ = ⌊211 999.79…⌋ = 211 999.
    // Minted 961 248; the rest (downtime shares and rounding) is never minted.
    assert!(out.events.contains(&Event::NodeRewarded {
        epoch: 0,
        node: addr(&na),
        owner: addr(&f1),
        amount: 749_249
    }));
    assert!(out.events.contains(&Event::NodeRewarded {
        epoch: 0,
        node: addr(&nb),
        owner: addr(&f2),
        amount: 211_999
    }));
    assert!(out.events.contains(&Event::EpochSettled {
        epoch: 0,
        minted: 961_248
    }));
    assert_eq!(c.state.balance(&addr(&f1)), b1_before + 749_249);
    assert_eq!(c.state.balance(&addr(&f2)), b2_before + 211_999);
    assert_eq!(c.state.supply().minted, 961_248);
    assert_eq!(c.state.uptime_credit(0, &addr(&na)), 0);
    assert_eq!(c.state.uptime_credit(1, &addr(&na)), 1);
    // A report describing the settled epoch is now too late.
    assert_eq!(
        c.send(1, &f2, uptime(&nb, T0 + 1_000, 849)),
        TxStatus::Failed(TxError::Uptime(UptimeError::TooLate {
            timestamp: T0 + 1_000,
            open_from: T0 + 1_000
        }))
    );
}

#[test]
fn uptime_reports_must_be_monotonic_and_not_from_the_future() {
    let (mut c, [_, owner, node, _]) = farm_with_node();
    let now = c.state.time(); // T0 + 2
    let fails = |st: TxStatus| match st {
        TxStatus::Failed(TxError::Uptime(e)) => e,
        other => panic!("{other:?}"),
    };
    // Drift bound is 60 s against the block time (this block: now + 1).
    assert!(matches!(
        fails(c.send(1, &owner, uptime(&node, now + 62, 10))),
        UptimeError::FromTheFuture { .. }
    ));
    assert_eq!(
        c.send(1, &owner, uptime(&node, now + 2, 100)),
        TxStatus::Applied
    );
    // Same instant again (a replay) and an earlier one are refused.
    assert_eq!(
        fails(c.send(1, &owner, uptime(&node, now + 2, 100))),
        UptimeError::NotMonotonic
    );
    assert_eq!(
        fails(c.send(1, &owner, uptime(&node, now + 1, 99))),
        UptimeError::NotMonotonic
    );
    // Claiming a boot long before the one already reported is refused.
    assert_eq!(
        fails(c.send(1, &owner, uptime(&node, now + 10, 5_000))),
        UptimeError::NotMonotonic
    );
    // Claiming a reboot before the previous report's time is refused too.
    assert_eq!(
        fails(c.send(1, &owner, uptime(&node, now + 10, 50))),
        UptimeError::NotMonotonic
    );
    // A real reboot after the last report is fine and credits only the new session.
    let before = c.state.uptime_credit(0, &addr(&node));
    assert_eq!(
        c.send(100, &owner, uptime(&node, now + 100, 5)),
        TxStatus::Applied
    );
    assert_eq!(c.state.uptime_credit(0, &addr(&node)), before + 5);
    // Signed for another purpose: refused.
    let wrong = TxBody::ReportUptime {
        report: Box::new(statement(
            purpose::GRANT,
            CHAIN,
            &node,
            now + 200,
            nodus_validator::state::uptime::UptimeReport { uptime_secs: 105 },
        )),
    };
    assert!(matches!(
        fails(c.send(100, &owner, wrong)),
        UptimeError::Statement(FarmError::WrongPurpose { .. })
    ));
}

fn double_sign(k: &nodus_identity::SecretKey, height: u64, round: u32) -> Evidence {
    let vote = |v| Vote {
        height,
        round,
        step: VoteStep::Precommit,
        value: Some([v; 32]),
    };
    Evidence {
        first: vote(1).sign(CHAIN, k),
        second: vote(2).sign(CHAIN, k),
    }
}

#[test]
fn double_sign_slashes_exactly_once_and_jails() {
    let (v1, v2, reporter) = (key(1), key(2), key(3));
    let params = PARAMS.replace("\"jail_period_blocks\": 10", "\"jail_period_blocks\": 30");
    let mut c = Chain::new(
        &genesis(
            &params,
            &[(&reporter, 1_000), (&v2, 1_000)],
            &[(&v1, 1_000_000), (&v2, 500_000)],
        ),
        &v1,
    );
    // v2 unbonds 100 000 at height 1: unbonding stake is slashable too.
    assert_eq!(
        c.send(1, &v2, TxBody::Unbond { amount: 100_000 }),
        TxStatus::Applied
    );
    assert!(c.state.validator_set().contains(&addr(&v2)));
    let ev = double_sign(&v2, 1, 0);
    let report = |e: Evidence| TxBody::ReportEvidence {
        evidence: Box::new(e),
    };
    // Height 2: 10 % of 400 000 bonded + 10 % of 100 000 unbonding = 50 000.
    let out = c.block(1, &[c.tx(&reporter, report(ev))]);
    assert_eq!(out.receipts, vec![TxStatus::Applied]);
    assert!(out.events.contains(&Event::Slashed {
        validator: addr(&v2),
        amount: 50_000,
        jailed_until: 32
    }));
    assert_eq!(c.state.stake(&addr(&v2)).unwrap().bonded, 360_000);
    assert_eq!(c.state.unbonding_of(&addr(&v2)), 90_000);
    assert_eq!(c.state.supply().slashed, 50_000);
    assert!(!out.next_validators.contains(&addr(&v2)));
    // The same evidence again, reversed, or another pair for the same height: no
    // second slash.
    let again = [
        ev,
        Evidence {
            first: ev.second,
            second: ev.first,
        },
        double_sign(&v2, 1, 3),
    ];
    for e in again {
        assert_eq!(
            c.send(1, &reporter, report(e)),
            TxStatus::Failed(TxError::Evidence(EvidenceError::AlreadyPunished {
                validator: addr(&v2),
                height: 1
            }))
        );
    }
    assert_eq!(c.state.supply().slashed, 50_000);
    assert_eq!(c.state.stake(&addr(&v2)).unwrap().bonded, 360_000);
    // Not evidence: same value, different steps, different keys, forged, no stake.
    // Each is built at the current height, so age is never the reason.
    let refuse = |c: &mut Chain, e: Evidence, err: EvidenceError| {
        assert_eq!(
            c.send(1, &reporter, report(e)),
            TxStatus::Failed(TxError::Evidence(err))
        );
    };
    let h = c.state.height();
    let ev1 = double_sign(&v1, h, 0);
    refuse(
        &mut c,
        Evidence {
            first: ev1.first,
            second: ev1.first,
        },
        EvidenceError::SameValue,
    );
    let h = c.state.height();
    refuse(
        &mut c,
        Evidence {
            first: double_sign(&v1, h, 0).first,
            second: double_sign(&v2, h, 0).second,
        },
        EvidenceError::DifferentValidators,
    );
    let h = c.state.height();
    let mut other_step = double_sign(&v1, h, 0);
    other_step.second = Vote {
        step: VoteStep::Prevote,
        ..other_step.second.vote
    }
    .sign(CHAIN, &v1);
    refuse(&mut c, other_step, EvidenceError::DifferentSlots);
    let h = c.state.height();
    let mut forged = double_sign(&v1, h, 0);
    forged.second.vote.value = Some([9; 32]);
    refuse(
        &mut c,
        forged,
        EvidenceError::Signature(nodus_validator::signature::SignatureError::Invalid),
    );
    let h = c.state.height();
    refuse(
        &mut c,
        double_sign(&reporter, h, 0),
        EvidenceError::NotAValidator(addr(&reporter)),
    );
    assert_eq!(c.state.stake(&addr(&v1)).unwrap().bonded, 1_000_000);
    assert_eq!(
        c.send(1, &reporter, report(double_sign(&v1, 99, 0))),
        TxStatus::Failed(TxError::Evidence(EvidenceError::FromTheFuture {
            height: 99,
            current: c.state.height()
        }))
    );
    // Jailed until height 32: unjail refused before, accepted then, and back in
    // the set.
    c.advance_to(30, c.state.time() + 1);
    assert_eq!(
        c.send(1, &v2, TxBody::Unjail),
        TxStatus::Failed(TxError::Stake(StakeError::StillJailed { until: 32 }))
    );
    assert!(!c.state.validator_set().contains(&addr(&v2)));
    assert_eq!(c.send(1, &v2, TxBody::Unjail), TxStatus::Applied);
    assert!(c.state.validator_set().contains(&addr(&v2)));
    assert_eq!(
        c.send(1, &v2, TxBody::Unjail),
        TxStatus::Failed(TxError::Stake(StakeError::NotJailed))
    );
    // Evidence older than 5 blocks is refused.
    assert_eq!(
        c.send(1, &reporter, report(double_sign(&v2, 2, 0))),
        TxStatus::Failed(TxError::Evidence(EvidenceError::TooOld {
            height: 2,
            current: 34
        }))
    );
    assert_eq!(c.state.supply().slashed, 50_000);
}

#[test]
fn double_signs_at_several_heights_before_the_jail_are_slashed_once() {
    let (v1, v2, reporter) = (key(1), key(2), key(3));
    let mut c = Chain::new(
        &genesis(
            PARAMS,
            &[(&reporter, 1_000), (&v2, 1_000)],
            &[(&v1, 1_000_000), (&v2, 500_000)],
        ),
        &v1,
    );
    let report = |e: Evidence| TxBody::ReportEvidence {
        evidence: Box::new(e),
    };
    let covered = |height| {
        TxStatus::Failed(TxError::Evidence(EvidenceError::CoveredByJail {
            validator: addr(&v2),
            height,
        }))
    };
    // v2 signs two values at heights 1, 2 and 3; the chain is at 3.
    c.advance_to(3, c.state.time() + 1);
    // Block 4: the offence at height 2 slashes 10 % of 500 000 and jails until 14.
    let out = c.block(1, &[c.tx(&reporter, report(double_sign(&v2, 2, 0)))]);
    assert_eq!(out.receipts, vec![TxStatus::Applied]);
    assert!(out.events.contains(&Event::Slashed {
        validator: addr(&v2),
        amount: 50_000,
        jailed_until: 14
    }));
    assert_eq!(c.state.stake(&addr(&v2)).unwrap().bonded, 450_000);
    // The same offence again is still "already punished"; the earlier and the later
    // offence from before the jail are covered by it: no second or third slash.
    assert_eq!(
        c.send(1, &reporter, report(double_sign(&v2, 2, 1))),
        TxStatus::Failed(TxError::Evidence(EvidenceError::AlreadyPunished {
            validator: addr(&v2),
            height: 2
        }))
    );
    assert_eq!(
        c.send(1, &reporter, report(double_sign(&v2, 1, 0))),
        covered(1)
    );
    assert_eq!(
        c.send(1, &reporter, report(double_sign(&v2, 3, 0))),
        covered(3)
    );
    // Signing twice while jailed (height 7, not a validator then): nothing.
    assert_eq!(
        c.send(1, &reporter, report(double_sign(&v2, 7, 0))),
        covered(7)
    );
    assert_eq!(c.state.supply().slashed, 50_000);
    assert_eq!(c.state.stake(&addr(&v2)).unwrap().bonded, 450_000);
    // Unjailed at height 14; it votes again from 15.
    c.advance_to(13, c.state.time() + 1);
    assert_eq!(c.send(1, &v2, TxBody::Unjail), TxStatus::Applied);
    assert_eq!(c.state.height(), 14);
    assert_eq!(c.state.stake(&addr(&v2)).unwrap().slashable_from, 15);
    // An offence during the jail is still covered after it…
    assert_eq!(
        c.send(1, &reporter, report(double_sign(&v2, 13, 0))),
        covered(13)
    );
    assert_eq!(
        c.send(1, &reporter, report(double_sign(&v2, 14, 0))),
        covered(14)
    );
    // …one after coming back slashes again: 10 % of 450 000.
    let out = c.block(1, &[c.tx(&reporter, report(double_sign(&v2, 15, 0)))]);
    assert_eq!(out.receipts, vec![TxStatus::Applied]);
    assert!(out.events.contains(&Event::Slashed {
        validator: addr(&v2),
        amount: 45_000,
        jailed_until: 27
    }));
    assert_eq!(c.state.stake(&addr(&v2)).unwrap().bonded, 405_000);
    assert_eq!(c.state.supply().slashed, 95_000);
    // Each refused report cost the reporter its fee and nothing else.
    assert_eq!(c.state.balance(&addr(&reporter)), 1_000 - 8 * FEE);
}

#[test]
fn a_key_with_only_unbonding_stake_is_jailed_so_its_other_offences_do_not_slash() {
    let (v1, v2, reporter) = (key(1), key(2), key(3));
    let mut c = Chain::new(
        &genesis(
            PARAMS,
            &[(&reporter, 1_000), (&v2, 1_000)],
            &[(&v1, 1_000_000), (&v2, 200_000)],
        ),
        &v1,
    );
    let report = |e: Evidence| TxBody::ReportEvidence {
        evidence: Box::new(e),
    };
    // Height 1: v2 unbonds everything (released at 6).
    assert_eq!(
        c.send(1, &v2, TxBody::Unbond { amount: 200_000 }),
        TxStatus::Applied
    );
    assert_eq!(c.state.stake(&addr(&v2)).unwrap().bonded, 0);
    c.advance_to(2, c.state.time() + 1);
    // Height 3: its offence at 1 slashes 10 % of the 200 000 unbonding.
    let out = c.block(1, &[c.tx(&reporter, report(double_sign(&v2, 1, 0)))]);
    assert_eq!(out.receipts, vec![TxStatus::Applied]);
    assert_eq!(c.state.unbonding_of(&addr(&v2)), 180_000);
    assert!(c.state.stake(&addr(&v2)).unwrap().is_jailed());
    // Its offence at 2 is covered by that jail.
    assert_eq!(
        c.send(1, &reporter, report(double_sign(&v2, 2, 0))),
        TxStatus::Failed(TxError::Evidence(EvidenceError::CoveredByJail {
            validator: addr(&v2),
            height: 2
        }))
    );
    assert_eq!(c.state.unbonding_of(&addr(&v2)), 180_000);
    assert_eq!(c.state.supply().slashed, 20_000);
}

#[test]
fn same_inputs_same_root_different_inputs_different_root() {
    let (v, a, b) = (key(1), key(2), key(3));
    let g = genesis(PARAMS, &[(&a, 1_000)], &[(&v, 100)]);
    let run = |amount: u128| {
        let mut c = Chain::new(&g, &v);
        let mut roots = vec![c.state.root()];
        roots.push(
            c.block(
                1,
                &[tx(
                    &a,
                    0,
                    FEE,
                    TxBody::Transfer {
                        to: addr(&b),
                        amount,
                    },
                )],
            )
            .state_root,
        );
        roots.push(
            c.block(
                1,
                &[tx(&a, 1, FEE, TxBody::RegisterFarm { name: "f".into() })],
            )
            .state_root,
        );
        roots.push(c.block(2_000, &[]).state_root);
        assert_eq!(*roots.last().unwrap(), c.state.root());
        roots
    };
    assert_eq!(run(5), run(5));
    let (x, y) = (run(5), run(6));
    assert_eq!(x[0], y[0]);
    for i in 1..x.len() {
        assert_ne!(x[i], y[i]);
    }
    // Another genesis, another root; the same block at another time, another root.
    let g2 = genesis(PARAMS, &[(&a, 1_001)], &[(&v, 100)]);
    assert_ne!(nodus_validator::State::from_genesis(&g2).root(), x[0]);
    let mut c = Chain::new(&g, &v);
    assert_ne!(
        c.block(2, &[]).state_root,
        Chain::new(&g, &v).block(1, &[]).state_root
    );
    // Preview computes the same outcome without touching the state.
    let header = nodus_validator::BlockHeader {
        height: c.state.height() + 1,
        time: c.state.time() + 3,
        proposer: c.proposer,
    };
    let before = c.state.root();
    let (next, preview) = c.state.preview(&header, &[]).unwrap();
    assert_eq!(c.state.root(), before);
    assert_eq!(preview.state_root, next.root());
    assert_eq!(c.state.apply_block(&header, &[]).unwrap(), preview);
    // A copy made by a binary round trip (as storage will keep it) has the same root.
    let bytes = postcard::to_allocvec(&c.state).unwrap();
    let back: nodus_validator::State = postcard::from_bytes(&bytes).unwrap();
    assert_eq!(back.root(), c.state.root());
    let _ = Address([0; 32]);
}
