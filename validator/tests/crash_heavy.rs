#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Crash test: a chain process (four real `Engine`s, each on its own redb
//! `DiskStore`, wired in-process, real clock) is killed with SIGKILL at random moments of its
//! commit path, 50 times. After every kill each store must still hold every
//! block its validator reported as committed, its state must match its last
//! block, and over all runs no validator may have let two different votes (or
//! proposals) for one (height, round, step) out.
//!
//! The child is this same test binary, re-run with `NODUS_CRASH_CHILD` set so
//! that `heavy_chain_child` runs the chain instead of returning.

use std::collections::{BTreeMap, VecDeque};
use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nodus_identity::{AccountId, SecretKey};
use nodus_validator::consensus::{ConsensusMessage, Engine, EngineConfig, Input, Output};
use nodus_validator::state::Address;
use nodus_validator::storage::{DiskStore, Store};
use nodus_validator::{Genesis, Tx, TxBody};
use rand::{Rng, SeedableRng};

const CHILD_ENV: &str = "NODUS_CRASH_CHILD";
const KILLS: usize = 50;

/// Validators of the chain; all run in the one child process.
const VALIDATORS: usize = 4;

fn validator(i: usize) -> SecretKey {
    SecretKey::from_seed(&[7 + i as u8; 32])
}

fn account() -> SecretKey {
    SecretKey::from_seed(&[99; 32])
}

fn genesis() -> Genesis {
    let id = |k: &SecretKey| AccountId::from(k.public()).to_string();
    let validators: Vec<String> = (0..VALIDATORS)
        .map(|i| format!(r#"{{"id":"{}","stake":1000}}"#, id(&validator(i))))
        .collect();
    Genesis::from_json(&format!(
        r#"{{"chain_id":"crash","genesis_time":1700000000,
            "accounts":[{{"id":"{}","balance":1000000000000}}],
            "validators":[{}]}}"#,
        id(&account()),
        validators.join(",")
    ))
    .unwrap()
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// Appends a line and syncs it: a line in these logs is something that left
/// the process.
fn log(path: &Path, line: &str) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(line.as_bytes()).unwrap();
    f.write_all(b"\n").unwrap();
    f.sync_data().unwrap();
}

/// The chain process: four validators, each with its own redb store, wired
/// by an in-process queue; runs until killed. A message is logged (synced) by
/// its sender before any other validator can see it.
fn run_chain(dir: &Path) -> ! {
    let config = EngineConfig {
        commit_delay_ms: 2,
        ..EngineConfig::default()
    };
    let mut engines: Vec<Engine<DiskStore>> = (0..VALIDATORS)
        .map(|i| {
            let store = DiskStore::open(&dir.join(format!("v{i}.redb"))).unwrap();
            Engine::open(&genesis(), validator(i), store, config.clone()).unwrap()
        })
        .collect();
    let addresses: Vec<Address> = engines.iter().map(|e| e.address()).collect();
    let mut pending: VecDeque<(usize, Vec<Output>)> = VecDeque::new();
    for (i, e) in engines.iter_mut().enumerate() {
        pending.push_back((i, e.start(now_ms()).unwrap()));
    }
    let sender = account();
    loop {
        while let Some((i, outputs)) = pending.pop_front() {
            for output in outputs {
                match output {
                    Output::Broadcast(message) => {
                        log_sent(dir, i, &message);
                        for (j, engine) in engines.iter_mut().enumerate() {
                            if j != i {
                                let input = Input::Message {
                                    from: addresses[i],
                                    message: message.clone(),
                                };
                                let out = engine.handle(now_ms(), input).unwrap();
                                pending.push_back((j, out));
                            }
                        }
                    }
                    Output::Send { to, message } => {
                        if let Some(j) = addresses.iter().position(|a| *a == to) {
                            let input = Input::Message {
                                from: addresses[i],
                                message,
                            };
                            let out = engines[j].handle(now_ms(), input).unwrap();
                            pending.push_back((j, out));
                        }
                    }
                    Output::Decided(d) => {
                        let b = &d.block.block;
                        log(
                            &dir.join(format!("decided-{i}.log")),
                            &format!("{} {}", b.header.height, hex(b.hash().0)),
                        );
                    }
                    Output::ProposeRequest { height, round, .. } => {
                        let nonce = engines[i].state().nonce(&Address::from(sender.public()));
                        let tx = Tx {
                            nonce,
                            fee: 1_000,
                            body: TxBody::Transfer {
                                to: addresses[i],
                                // Differs at every attempt, so a validator that
                                // forgot what it proposed would propose something
                                // else after a restart.
                                amount: u128::from(now_ms() % 997) + 1,
                            },
                        }
                        .sign("crash", &sender)
                        .unwrap();
                        let input = Input::Propose {
                            height,
                            round,
                            txs: vec![tx],
                        };
                        let out = engines[i].handle(now_ms(), input).unwrap();
                        pending.push_back((i, out));
                    }
                    Output::Evidence(_) => panic!("an honest validator double-signed"),
                }
            }
        }
        let next = engines.iter().filter_map(|e| e.next_deadline()).min();
        if let Some(at) = next {
            let now = now_ms();
            if at > now {
                std::thread::sleep(Duration::from_millis(at - now));
            }
        }
        let now = now_ms();
        for (i, e) in engines.iter_mut().enumerate() {
            if e.next_deadline().is_some_and(|at| at <= now) {
                pending.push_back((i, e.handle(now, Input::Tick).unwrap()));
            }
        }
    }
}

/// Logs a signed message validator `i` is about to send, as
/// "height round step value".
fn log_sent(dir: &Path, i: usize, message: &ConsensusMessage) {
    let line = match message {
        ConsensusMessage::Vote(v) => {
            let e = v.vote.to_evidence_vote();
            let value = e.value.map(hex).unwrap_or_else(|| "nil".into());
            format!("{} {} {:?} {value}", e.height, e.round, e.step)
        }
        ConsensusMessage::Proposal(p) => format!(
            "{} {} Proposal {}",
            p.proposal.height.0,
            p.proposal.round.as_i64(),
            hex(p.proposal.value.hash().0)
        ),
        _ => return,
    };
    log(&dir.join(format!("sent-{i}.log")), &line);
}

fn hex(b: [u8; 32]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn heavy_chain_child() {
    // Only does something when the parent test starts this binary as the chain.
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        run_chain(Path::new(&dir));
    }
}

fn spawn(dir: &Path) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "heavy_chain_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn read_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Checks validator `i`'s store against what the process reported; returns
/// its height.
fn check_store(dir: &Path, i: usize, previous_height: u64) -> u64 {
    let store = DiskStore::open(&dir.join(format!("v{i}.redb"))).unwrap();
    let (state, last) = store
        .last_committed()
        .unwrap()
        .map(|(s, b)| (Some(s), Some(b)))
        .unwrap_or((None, None));
    let height = state.as_ref().map_or(0, |s| s.height());
    assert!(
        height >= previous_height,
        "store went back from {previous_height} to {height}"
    );
    if let (Some(state), Some(last)) = (&state, &last) {
        assert_eq!(
            state.root(),
            last.block.state_root,
            "state is not the last block's"
        );
        assert!(state.supply_is_conserved());
    }
    for line in read_lines(&dir.join(format!("decided-{i}.log"))) {
        let (h, hash) = line.split_once(' ').unwrap();
        let h: u64 = h.parse().unwrap();
        let block = store
            .block(h)
            .unwrap()
            .unwrap_or_else(|| panic!("validator {i}: committed block {h} lost"));
        assert_eq!(
            hex(block.block.hash().0),
            hash,
            "validator {i}: block {h} changed"
        );
    }
    height
}

fn check_no_conflicting_signatures(path: &Path) {
    let mut slots: BTreeMap<String, String> = BTreeMap::new();
    for line in read_lines(path) {
        let (slot, value) = line.rsplit_once(' ').unwrap();
        if let Some(previous) = slots.insert(slot.to_owned(), value.to_owned()) {
            assert_eq!(previous, value, "conflicting signatures for {slot}");
        }
    }
}

fn dir() -> PathBuf {
    tempfile::tempdir().unwrap().keep()
}

/// Checks every validator; returns their heights.
fn check_all(dir: &Path, heights: &[u64]) -> Vec<u64> {
    let now: Vec<u64> = (0..VALIDATORS)
        .map(|i| check_store(dir, i, heights[i]))
        .collect();
    for i in 0..VALIDATORS {
        check_no_conflicting_signatures(&dir.join(format!("sent-{i}.log")));
    }
    // No fork: the validators agree on every height two of them committed.
    let mut hashes: BTreeMap<u64, String> = BTreeMap::new();
    for i in 0..VALIDATORS {
        for line in read_lines(&dir.join(format!("decided-{i}.log"))) {
            let (h, hash) = line.split_once(' ').unwrap();
            let h: u64 = h.parse().unwrap();
            if let Some(other) = hashes.insert(h, hash.to_owned()) {
                assert_eq!(other, hash, "fork at height {h}");
            }
        }
    }
    now
}

#[test]
fn heavy_kill_nine_during_commits_never_loses_a_block_or_double_signs() {
    let dir = dir();
    let mut rng = rand::rngs::StdRng::seed_from_u64(now_ms());
    let mut heights = vec![0; VALIDATORS];
    for _ in 0..KILLS {
        let mut child = spawn(&dir);
        std::thread::sleep(Duration::from_millis(rng.gen_range(50..600)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        heights = check_all(&dir, &heights);
    }
    // A last, calm run: the chain goes on from where the kills left it.
    let before = *heights.iter().min().unwrap();
    let mut child = spawn(&dir);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        let done = (0..VALIDATORS).all(|i| {
            let lines = read_lines(&dir.join(format!("decided-{i}.log")));
            lines
                .last()
                .and_then(|l| l.split_once(' '))
                .and_then(|(h, _)| h.parse::<u64>().ok())
                .is_some_and(|h| h > before + 3)
        });
        if done {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    heights = check_all(&dir, &heights);
    assert!(
        heights.iter().all(|h| *h > before),
        "no progress after the kills: {heights:?}"
    );
    eprintln!("crash test: {KILLS} kills, final heights {heights:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
