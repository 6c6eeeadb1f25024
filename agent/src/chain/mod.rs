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

use nodus_identity::{PublicKey, SecretKey, Statement, statement::purpose};
use nodus_validator::{
    Tx, TxBody,
    node::config::Endpoint,
    rpc::{AccountInfo, Query, Request, Response},
    state::{
        Address,
        farm::{Capacity, FarmApproval, NodeRegistration},
        uptime::UptimeReport,
    },
};
use nodus_wire::{
    Alpn, Client, Connection,
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
/// Largest chain frame accepted (a block with its receipts).
const MAX_FRAME_LEN: usize = 8 << 20;
/// How long one request may take before the next endpoint is tried.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// What the chain client needs.
#[derive(Debug, Clone)]
pub struct ChainConfig {
    /// Validators to talk to.
    pub endpoints: Vec<Endpoint>,
    /// The farmer (owner) whose stake the console shows.
    pub owner: Option<PublicKey>,
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
    /// No validator answered.
    #[error("No validator reachable: {0}")]
    Unreachable(String),
    /// A validator refused or answered something unexpected.
    #[error("Validator answered: {0}")]
    Refused(String),
    /// The approval file is unusable.
    #[error("Farm approval {path}: {why}")]
    Approval {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// Signing failed.
    #[error("Cannot sign: {0}")]
    Sign(String),
}

/// A connection to whichever validator answers.
struct Link {
    client: Client,
    endpoints: Vec<Endpoint>,
    conn: Option<Connection>,
}

impl Link {
    async fn request(&mut self, req: &Request) -> Result<Response, ChainError> {
        let mut errors = Vec::new();
        if let Some(conn) = &self.conn {
            match tokio::time::timeout(REQUEST_TIMEOUT, conn.request::<_, Response>(req)).await {
                Ok(Ok(r)) => return Ok(r),
                Ok(Err(e)) => errors.push(format!("{}: {e}", conn.remote_address())),
                Err(_) => errors.push(format!("{}: timed out", conn.remote_address())),
            }
            self.conn = None;
        }
        for ep in &self.endpoints {
            let conn = match tokio::time::timeout(
                REQUEST_TIMEOUT,
                self.client.connect(ep.addr, ep.key, Alpn::Chain),
            )
            .await
            {
                Ok(Ok(c)) => c,
                Ok(Err(e)) => {
                    errors.push(format!("{}: {e}", ep.addr));
                    continue;
                }
                Err(_) => {
                    errors.push(format!("{}: timed out", ep.addr));
                    continue;
                }
            };
            match tokio::time::timeout(REQUEST_TIMEOUT, conn.request::<_, Response>(req)).await {
                Ok(Ok(r)) => {
                    self.conn = Some(conn);
                    return Ok(r);
                }
                Ok(Err(e)) => errors.push(format!("{}: {e}", ep.addr)),
                Err(_) => errors.push(format!("{}: timed out", ep.addr)),
            }
        }
        Err(ChainError::Unreachable(errors.join("; ")))
    }

    async fn query(&mut self, q: Query) -> Result<Response, ChainError> {
        match self.request(&Request::Query(q)).await? {
            Response::Error(e) => Err(ChainError::Refused(e.to_string())),
            r => Ok(r),
        }
    }

    async fn chain_id(&mut self) -> Result<String, ChainError> {
        match self.query(Query::Height).await? {
            Response::Height(h) => Ok(h.chain_id),
            other => Err(ChainError::Refused(format!("unexpected {other:?}"))),
        }
    }

    async fn account(&mut self, a: Address) -> Result<AccountInfo, ChainError> {
        match self.query(Query::Account(a)).await? {
            Response::Account(i) => Ok(i),
            other => Err(ChainError::Refused(format!("unexpected {other:?}"))),
        }
    }

    async fn submit(&mut self, tx: nodus_validator::SignedTx) -> Result<(), ChainError> {
        match self.request(&Request::Submit(vec![tx])).await? {
            Response::Submitted(mut v) => match v.pop() {
                Some(Ok(_)) => Ok(()),
                Some(Err(e)) => Err(ChainError::Refused(e.to_string())),
                None => Err(ChainError::Refused("empty answer".into())),
            },
            Response::Error(e) => Err(ChainError::Refused(e.to_string())),
            other => Err(ChainError::Refused(format!("unexpected {other:?}"))),
        }
    }
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
    link: Link,
    registered: bool,
    last_report: Option<tokio::time::Instant>,
    contracts: Option<usize>,
}

impl Reporter {
    fn sign(
        &self,
        chain_id: &str,
        nonce: u64,
        body: TxBody,
    ) -> Result<nodus_validator::SignedTx, ChainError> {
        Tx {
            nonce,
            fee: self.cfg.fee,
            body,
        }
        .sign(chain_id, &self.key)
        .map_err(|e| ChainError::Sign(e.to_string()))
    }

    /// One round: register if needed and possible, report uptime when due, read
    /// stake and contracts.
    async fn round(&mut self) -> Result<(), ChainError> {
        let chain_id = self.link.chain_id().await?;
        if !self.registered {
            self.registered = matches!(
                self.link.query(Query::Node(self.me)).await?,
                Response::Node(Some(_))
            );
            if !self.registered {
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
            .map_err(|e| ChainError::Sign(e.to_string()))?;
            let nonce = self.link.account(self.me).await?.next_nonce;
            let tx = self.sign(
                &chain_id,
                nonce,
                TxBody::ReportUptime {
                    report: Box::new(report),
                },
            )?;
            self.link.submit(tx).await?;
            self.last_report = Some(tokio::time::Instant::now());
            self.hub.event(Level::Info, "chain", "uptime reported");
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
        let registration = Statement::new(
            purpose::NODE_REGISTRATION,
            chain_id,
            self.key.public(),
            None,
            NodeRegistration {
                farm: approval.statement.payload.farm,
                capacity: offered(&self.hub),
            },
        )
        .sign(&self.key)
        .map_err(|e| ChainError::Sign(e.to_string()))?;
        let nonce = self.link.account(self.me).await?.next_nonce;
        let tx = self.sign(
            chain_id,
            nonce,
            TxBody::RegisterNode {
                registration: Box::new(registration),
                approval: Box::new(approval),
            },
        )?;
        self.link.submit(tx).await?;
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
            let acct = self.link.account(who).await?;
            let validator = match self.link.query(Query::Validators).await? {
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
            self.hub.set_stake(Stake::Known(StakeInfo {
                balance: acct.balance,
                bonded: acct.stake.as_ref().map_or(0, |s| s.bonded),
                rewards: 0,
                uptime_ppm: 0,
                validator,
            }));
        }
        let n = match self
            .link
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

/// Runs the chain client until `stop`.
pub fn spawn(
    cfg: ChainConfig,
    key: SecretKey,
    hub: Arc<Hub>,
    mut stop: watch::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<()>, ChainError> {
    let mut client = Client::new(&key).map_err(|e| ChainError::Unreachable(e.to_string()))?;
    client.set_max_frame_len(MAX_FRAME_LEN);
    let me = Address::from(key.public());
    let mut c = Reporter {
        link: Link {
            client,
            endpoints: cfg.endpoints.clone(),
            conn: None,
        },
        cfg,
        key,
        me,
        hub,
        registered: false,
        last_report: None,
        contracts: None,
    };
    Ok(tokio::spawn(async move {
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
                    if matches!(e, ChainError::Unreachable(_)) {
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
