#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Consensus on the deterministic simulator: real engines and state machines,
//! virtual clock, simulated network. See `nodus_validator::sim`.

use nodus_validator::sim::{BALANCE, FEE, STAKE, Sim, SimConfig, account_key, validator_key};
use nodus_validator::state::Address;
use nodus_validator::{Tx, TxBody};

fn addr(k: &nodus_identity::SecretKey) -> Address {
    Address::from(k.public())
}

#[test]
fn four_validators_finalize_and_apply_transfers() {
    let mut sim = Sim::new(SimConfig::default());
    let to = addr(&account_key(1));
    sim.submit_transfer(0, to, 5_000, 0);
    sim.submit_transfer(0, to, 7_000, 1);
    let until = sim.now() + 30_000;
    assert!(sim.run_until(until, |s| s.min_height() >= 10));
    sim.check_safety().unwrap();
    assert_eq!(sim.double_signers(), Vec::<Address>::new());
    for i in 0..4 {
        let state = sim.state(i);
        assert_eq!(state.balance(&to), BALANCE + 12_000);
        assert_eq!(state.nonce(&addr(&account_key(0))), 2);
        assert!(state.supply_is_conserved());
    }
}

#[test]
fn one_of_four_crashed_blocks_keep_finalizing() {
    let mut sim = Sim::new(SimConfig {
        seed: 7,
        ..SimConfig::default()
    });
    sim.crash(3);
    let to = addr(&account_key(1));
    sim.submit_transfer(0, to, 5_000, 0);
    let until = sim.now() + 120_000;
    assert!(sim.run_until(until, |s| (0..3).all(|i| s.height(i) >= 10)));
    sim.check_safety().unwrap();
    assert_eq!(sim.height(3), 0, "the crashed validator committed nothing");
    for i in 0..3 {
        assert_eq!(sim.state(i).balance(&to), BALANCE + 5_000);
    }
}

#[test]
fn crashed_validator_restarts_and_catches_up() {
    let mut sim = Sim::new(SimConfig {
        seed: 8,
        ..SimConfig::default()
    });
    let until = sim.now() + 30_000;
    assert!(sim.run_until(until, |s| s.min_height() >= 3));
    sim.crash(2);
    let until = sim.now() + 60_000;
    assert!(sim.run_until(until, |s| s.height(0) >= 12));
    let lagging = sim.height(2);
    assert!(lagging < 12);
    sim.restart(2);
    let until = sim.now() + 60_000;
    assert!(sim.run_until(until, |s| s.height(2) >= 15));
    sim.check_safety().unwrap();
}

#[test]
fn partition_two_two_stalls_without_fork_and_resumes_after_healing() {
    let mut sim = Sim::new(SimConfig {
        seed: 11,
        ..SimConfig::default()
    });
    let until = sim.now() + 30_000;
    assert!(sim.run_until(until, |s| s.min_height() >= 3));
    sim.partition(&[0, 0, 1, 1]);
    let before = sim.max_height();
    // Nodes of one side may still sync a block the other side of their group
    // already had, but no new height can be decided by half the power.
    sim.run_for(30_000);
    assert_eq!(
        sim.max_height(),
        before,
        "a block was finalized during the partition"
    );
    sim.check_safety().unwrap();
    sim.heal();
    let until = sim.now() + 180_000;
    assert!(
        sim.run_until(until, |s| s.min_height() >= before + 3),
        "no progress after healing: heights {:?}",
        (0..4).map(|i| sim.height(i)).collect::<Vec<_>>()
    );
    sim.check_safety().unwrap();
}

#[test]
fn half_the_messages_lost_with_slow_links_still_finalizes() {
    let mut sim = Sim::new(SimConfig {
        seed: 5,
        latency_ms: 200,
        jitter_ms: 150,
        loss: 0.5,
        ..SimConfig::default()
    });
    let to = addr(&account_key(2));
    sim.submit_transfer(1, to, 1_000, 0);
    let until = sim.now() + 600_000;
    assert!(
        sim.run_until(until, |s| s.min_height() >= 5),
        "heights {:?}",
        (0..4).map(|i| sim.height(i)).collect::<Vec<_>>()
    );
    sim.check_safety().unwrap();
    for i in 0..4 {
        assert_eq!(sim.state(i).balance(&to), BALANCE + 1_000);
    }
}

#[test]
fn validator_key_run_twice_is_slashed_once_and_safety_holds() {
    let mut sim = Sim::new(SimConfig {
        seed: 3,
        ..SimConfig::default()
    });
    let offender = addr(&validator_key(0));
    // A second process with validator 0's key and its own store; a transaction
    // only it knows makes its blocks differ from the first process's.
    let twin = sim.add_node(validator_key(0));
    let tx = sim.sign_tx(
        &account_key(2),
        Tx {
            nonce: 0,
            fee: FEE,
            body: TxBody::Transfer {
                to: addr(&account_key(3)),
                amount: 1,
            },
        },
    );
    sim.submit_to(twin, tx);
    let until = sim.now() + 300_000;
    assert!(
        sim.run_until(until, |s| (1..4)
            .all(|i| s.state(i).stake(&offender).is_some_and(|st| st.is_jailed()))),
        "the double signer was not jailed"
    );
    // Keep going: the three honest validators hold all the power now.
    let jailed_at = sim.min_height();
    let until = sim.now() + 60_000;
    assert!(sim.run_until(until, |s| (1..4).all(|i| s.height(i) >= jailed_at + 5)));
    sim.check_safety().unwrap();
    assert_eq!(sim.double_signers(), vec![offender]);
    let slash = STAKE * 500 / 10_000;
    for i in 1..4 {
        assert_eq!(sim.slashes(i), vec![(offender, slash)], "node {i}");
        let state = sim.state(i);
        assert_eq!(state.stake(&offender).unwrap().bonded, STAKE - slash);
        assert!(!state.validator_set().contains(&offender));
        assert!(state.supply_is_conserved());
    }
}

fn fingerprint(seed: u64) -> (Vec<u64>, [u8; 32], Vec<String>) {
    let mut sim = Sim::new(SimConfig {
        seed,
        latency_ms: 100,
        jitter_ms: 80,
        loss: 0.2,
        ..SimConfig::default()
    });
    for n in 0..5 {
        sim.submit_transfer(0, addr(&account_key(1)), 100 + n, n as u64);
    }
    sim.run_for(60_000);
    sim.check_safety().unwrap();
    let heights: Vec<u64> = (0..4).map(|i| sim.height(i)).collect();
    let h = heights[0];
    let hashes = (1..=h)
        .map(|k| format!("{:?}", sim.block(0, k).unwrap().block.hash()))
        .collect();
    (heights, sim.state(0).root(), hashes)
}

#[test]
fn same_seed_gives_identical_final_state_root() {
    let a = fingerprint(42);
    let b = fingerprint(42);
    assert!(a.0[0] >= 3, "too few blocks to compare: {:?}", a.0);
    assert_eq!(a, b);
}

#[test]
fn validator_restarted_at_random_moments_never_signs_conflicting_votes() {
    use rand::{Rng, SeedableRng};
    let mut sim = Sim::new(SimConfig {
        seed: 21,
        latency_ms: 50,
        jitter_ms: 40,
        ..SimConfig::default()
    });
    let mut rng = rand::rngs::StdRng::seed_from_u64(21);
    for _ in 0..40 {
        sim.run_for(rng.gen_range(50..1_500));
        sim.crash(0);
        sim.run_for(rng.gen_range(0..300));
        sim.restart(0);
    }
    let until = sim.now() + 60_000;
    let target = sim.max_height() + 3;
    assert!(sim.run_until(until, |s| s.min_height() >= target));
    sim.check_safety().unwrap();
    assert_eq!(sim.double_signers(), Vec::<Address>::new());
    assert!(sim.height(0) >= 10, "height {}", sim.height(0));
}
