//! The agent's chain client: it registers the node (with the farmer's signed
//! approval), reports signed uptime on a schedule, watches the contracts on this
//! node, and reads the farmer's stake for the console's Stake screen.
//!
//! It talks `nodus/chain/1` to the validators named in the config or on the
//! kernel command line (`nodus.chain=<ValidatorId>@host:port,…`), trying each in
//! turn. Every failure becomes an event the consoles show and is retried with
//! backoff; the loop never stops on its own, because a node that silently stops
//! reporting loses its farmer's rewards (Zero-OS farmers lost them that way).
//!
//! Uptime reports are transactions signed by the node key, so the node's account
//! pays their fee: the farmer funds it once (`nodus chain tx transfer`), and the
//! console shows "cannot pay the fee" until they do.

use std::{path::PathBuf, sync::Arc, time::Duration};

use nodus_identity::{SecretKey, Statement, statement::purpose};
use nodus_validator::{
    TxBody,
    client::{self, Chain, ClientError},
    node::config::Endpoint,
    rpc::{Query, Response},
    state::{
        Address,
        farm::{Capacity, FarmApproval},
        reward::Farming,
        uptime::UptimeReport,
    },
};
use nodus_wire::{
    console::{Level, Stake, StakeInfo, ValidatorStatus},
    quic::Backoff,
};
use tokio::sync::watch;

use crate::daemon::hub::Hub;

/// Seconds between uptime reports when nothing else is configured: often enough
/// that a missed report or two costs little, rarely enough that fees stay small.
pub const DEFAULT_REPORT_EVERY_S: u64 = 600;
/// Seconds between stake and contract reads.
pub const DEFAULT_WATCH_EVERY_S: u64 = 15;

/// What the chain client needs.
#[derive(Debug, Clone)]
pub struct ChainConfig {
    /// Validators to talk to.
    pub endpoints: Vec<Endpoint>,
    /// The farmer (owner) whose stake the console shows.
    pub owner: Option<nodus_identity::PublicKey>,
    /// The farmer's signed approval (`nodus chain tx approve-node --out F`),
    /// needed once to register.
    pub approval: Option<PathBuf>,
    /// Fee offered per transaction.
    pub fee: u128,
    /// Between uptime reports.
    pub report_every: Duration,
    /// Between stake reads.
    pub watch_every: Duration,
}

/// Why a chain step failed (shown to the farmer, then retried).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChainError {
    /// Talking to the validators failed.
    #[error(transparent)]
    Chain(#[from] ClientError),
    /// The approval file is unusable.
    #[error("Farm approval {path}: {why}")]
    Approval {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
}

/// The uptime ratio the Stake screen shows, parts per million: the last settled
/// epoch's (the one its rewards are for), else the open epoch's so far.
pub fn uptime_ppm(farming: &Farming) -> u32 {
    farming
        .last
        .map_or_else(|| farming.current_uptime_ppm(), |l| l.uptime_ppm())
}

/// Host uptime, seconds.
fn uptime_secs() -> u64 {
    std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|t| t.split('.').next().and_then(|s| s.trim().parse().ok()))
        .unwrap_or(0)
}

/// The capacity the node offers, in the chain's terms.
fn offered(hub: &Hub) -> Capacity {
    let c = &hub.inventory().capacity;
    Capacity {
        cru: c.available.cru,
        mru_bytes: c.available.mru_bytes,
        sru_bytes: c.available.sru_bytes,
        hru_bytes: c.available.hru_bytes,
    }
}

/// The client's state between rounds.
struct Reporter {
    cfg: ChainConfig,
    key: SecretKey,
    me: Address,
    hub: Arc<Hub>,
    chain: Chain,
    registered: bool,
    last_report: Option<tokio::time::Instant>,
    /// Reports accepted since start (the first is announced, the rest are not).
    reports: u64,
    contracts: Option<usize>,
}

impl Reporter {
    /// One round: register if needed and possible, report uptime when due, read
    /// stake and contracts.
    async fn round(&mut self) -> Result<(), ChainError> {
        let chain_id = self.chain.chain_id().await?;
        if !self.registered {
            if let Response::Node(Some(node)) = self.chain.query(Query::Node(self.me)).await? {
                self.registered = true;
                self.hub.event(
                    Level::Ok,
                    "chain",
                    format!("node registered in farm {}", node.farm),
                );
            } else {
                self.register(&chain_id).await?;
            }
        }
        let due = self
            .last_report
            .is_none_or(|t| t.elapsed() >= self.cfg.report_every);
        if self.registered && due {
            let report = Statement::new(
                purpose::UPTIME,
                &chain_id,
                self.key.public(),
                None,
                UptimeReport {
                    uptime_secs: uptime_secs(),
                },
            )
            .sign(&self.key)
            .map_err(|e| ClientError::Sign(e.to_string()))?;
            let body = TxBody::ReportUptime {
                report: Box::new(report),
            };
            self.chain
                .sign_and_submit(&self.key, self.cfg.fee, body)
                .await?;
            self.last_report = Some(tokio::time::Instant::now());
            self.reports = self.reports.saturating_add(1);
            // Every report is a transaction; announcing each would bury the
            // event log on a short schedule. Failures are always announced.
            if self.reports == 1 {
                self.hub.event(Level::Info, "chain", "uptime reported");
            }
            tracing::debug!(reports = self.reports, "uptime reported");
        }
        self.watch().await
    }

    async fn register(&mut self, chain_id: &str) -> Result<(), ChainError> {
        let Some(path) = self.cfg.approval.clone() else {
            return Err(ChainError::Approval {
                path: PathBuf::from("(none)"),
                why: "the node is not registered and no farm approval is configured".into(),
            });
        };
        let bad = |why: String| ChainError::Approval {
            path: path.clone(),
            why,
        };
        let text = std::fs::read_to_string(&path).map_err(|e| bad(e.to_string()))?;
        let approval: nodus_identity::Signed<FarmApproval> =
            serde_json::from_str(&text).map_err(|e| bad(format!("not an approval: {e}")))?;
        if approval.statement.payload.node != self.me {
            return Err(bad("it approves another node".into()));
        }
        let body = client::register_node(&self.key, chain_id, approval, offered(&self.hub))?;
        self.chain
            .sign_and_submit(&self.key, self.cfg.fee, body)
            .await?;
        self.hub.event(
            Level::Info,
            "chain",
            "node registration submitted with the farm's approval",
        );
        Ok(())
    }

    async fn watch(&mut self) -> Result<(), ChainError> {
        if let Some(owner) = self.cfg.owner {
            let who = Address::from(owner);
            let acct = self.chain.account(who).await?;
            let validator = match self.chain.query(Query::Validators).await? {
                Response::Validators(set) => {
                    let jailed = acct.stake.as_ref().is_some_and(|s| s.is_jailed());
                    if jailed {
                        ValidatorStatus::Jailed
                    } else if set.contains(&who) {
                        ValidatorStatus::Active
                    } else if acct.stake.as_ref().is_some_and(|s| s.bonded > 0) {
                        ValidatorStatus::Waiting
                    } else {
                        ValidatorStatus::None
                    }
                }
                _ => ValidatorStatus::None,
            };
            let farming = self.chain.farming(self.me).await?;
            self.hub.set_stake(Stake::Known(StakeInfo {
                balance: acct.balance,
                bonded: acct.stake.as_ref().map_or(0, |s| s.bonded),
                rewards: farming.and_then(|f| f.last).map_or(0, |l| l.reward),
                uptime_ppm: farming.as_ref().map_or(0, uptime_ppm),
                validator,
            }));
        }
        let n = match self
            .chain
            .query(Query::Contracts {
                node: Some(self.me),
                tenant: None,
            })
            .await?
        {
            Response::Contracts(c) => c.len(),
            _ => 0,
        };
        if self.contracts != Some(n) {
            if self.contracts.is_some() || n > 0 {
                self.hub.event(
                    Level::Info,
                    "chain",
                    format!("{n} contract(s) on this node"),
                );
            }
            self.contracts = Some(n);
        }
        Ok(())
    }
}

/// Waits until the node key created at this start is on disk (`None`: it was
/// read from disk). `false`, with a critical event, when writing it failed: the
/// next start would be a different node, so this identity must not join the
/// chain.
async fn key_on_disk(durable: Option<tokio::sync::oneshot::Receiver<bool>>, hub: &Hub) -> bool {
    let Some(rx) = durable else { return true };
    if rx.await.unwrap_or(false) {
        return true;
    }
    hub.event(
        Level::Critical,
        "chain",
        "the node key could not be written to the state directory; not joining the \
         chain with an identity the next start would not have (fix the state \
         directory and restart the agent)",
    );
    false
}

/// Runs the chain client until `stop`, once the node key is on disk
/// (`durable`, see [`crate::daemon::NodeKey`]).
pub fn spawn(
    cfg: ChainConfig,
    key: SecretKey,
    durable: Option<tokio::sync::oneshot::Receiver<bool>>,
    hub: Arc<Hub>,
    mut stop: watch::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<()>, ChainError> {
    let chain = Chain::new(&key, cfg.endpoints.clone())?;
    let me = Address::from(key.public());
    let mut c = Reporter {
        chain,
        cfg,
        key,
        me,
        hub,
        registered: false,
        last_report: None,
        reports: 0,
        contracts: None,
    };
    Ok(tokio::spawn(async move {
        tokio::select! {
            durable = key_on_disk(durable, &c.hub) => if !durable { return },
            _ = stop.changed() => return,
        }
        let backoff = Backoff::default();
        let mut failures: u32 = 0;
        // A seedable RNG: `thread_rng` is not `Send` across the awaits below.
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::from_entropy();
        loop {
            let wait = match c.round().await {
                Ok(()) => {
                    if failures > 0 {
                        c.hub.event(Level::Ok, "chain", "chain reachable again");
                    }
                    failures = 0;
                    c.cfg.watch_every
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    let wait = backoff.delay(failures, &mut rng);
                    c.hub.event(
                        Level::Warning,
                        "chain",
                        format!("{e}; retrying in {} s", wait.as_secs().max(1)),
                    );
                    if matches!(e, ChainError::Chain(ClientError::Unreachable(_))) {
                        c.hub.set_stake(Stake::NotConnected);
                    }
                    wait
                }
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = crate::daemon::stopped(&mut stop) => return,
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use nodus_validator::state::reward::EpochResult;

    use super::*;

    #[tokio::test]
    async fn the_chain_waits_for_the_node_key_on_disk_and_skips_a_lost_one() {
        let dir = tempfile::tempdir().unwrap();
        let root = crate::hal::SysRoot::at(dir.path()).unwrap();
        let inv = crate::inventory::collect_with(&root, &crate::inventory::Options::default());
        let hub = Hub::new(
            "node1x".into(),
            crate::inventory::Mode::Observe,
            None,
            inv,
            None,
        );
        assert!(key_on_disk(None, &hub).await, "a key read from disk");

        // Created at this start, really written: joins the chain.
        let path = dir.path().join("state/node.key");
        let (_, sealing) = crate::daemon::cli::load_or_create_key(&path).unwrap();
        let mut sealing = sealing.unwrap();
        assert!(key_on_disk(sealing.durable(), &hub).await);
        sealing.wait();
        assert!(path.exists());
        assert!(hub.snapshot(0).0.events.is_empty());

        // Its directory is a file: the write fails, so the identity stays off
        // the chain and the farmer is told why.
        std::fs::write(dir.path().join("blocked"), b"").unwrap();
        let lost = dir.path().join("blocked/node.key");
        let (_, sealing) = crate::daemon::cli::load_or_create_key(&lost).unwrap();
        let mut sealing = sealing.unwrap();
        assert!(!key_on_disk(sealing.durable(), &hub).await);
        sealing.wait();
        let events = hub.snapshot(0).0.events;
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(events[0].level, Level::Critical);
        assert!(events[0].message.contains("node key could not be written"));
    }

    #[test]
    fn the_stake_screen_shows_the_settled_epochs_uptime_once_there_is_one() {
        let mut f = Farming {
            epoch_secs: 100,
            current_epoch: 0,
            current_uptime_secs: 30,
            current_possible_secs: 40,
            last: None,
        };
        assert_eq!(uptime_ppm(&f), 750_000);
        f.last = Some(EpochResult {
            epoch: 0,
            possible_secs: 100,
            uptime_secs: 99,
            reward: 5,
        });
        assert_eq!(uptime_ppm(&f), 990_000);
    }
}
