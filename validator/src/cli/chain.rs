//! `nodus chain …`: transactions and queries against a running chain.
//!
//! Every command reaches the chain through `--endpoint <ValidatorId>@host:port`
//! (repeatable: the next one is tried when one fails) over QUIC ALPN
//! `nodus/chain/1`, and signs with `--keystore`. Queries without a keystore use a
//! throwaway key: reading needs no identity.

use std::path::{Path, PathBuf};
use std::time::Duration;

use nodus_identity::{AccountId, Keystore, NodeId, Passphrase, SecretKey, Signed};
use serde_json::{Value, json};

use super::{Error, TESTNET_PASSPHRASE, passphrase};
use crate::client::{self, Chain, ClientError};
use crate::node::config::Endpoint;
use crate::rpc::{Query, Response};
use crate::state::farm::{Capacity, FarmApproval, PowerTarget};
use crate::state::tx::TxStatus;
use crate::state::{Address, Amount, Hash};
use crate::{Tx, TxBody};

/// `nodus chain` arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A validator to talk to, `<ValidatorId>@host:port`; repeat for fallbacks.
    #[arg(long = "endpoint", value_name = "ID@HOST:PORT", global = true)]
    pub endpoints: Vec<String>,
    /// The keystore that signs (and whose account queries default to).
    #[arg(long, value_name = "PATH", global = true)]
    pub keystore: Option<PathBuf>,
    /// Read the keystore passphrase from this file (else $NODUS_PASSPHRASE, else
    /// the test-network passphrase).
    #[arg(long, value_name = "FILE", global = true)]
    pub passphrase_file: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub cmd: Command,
}

/// `nodus chain` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Sign and submit a transaction, then wait until it is in a block.
    Tx(TxArgs),
    /// Read chain state.
    Query {
        /// What to read.
        #[command(subcommand)]
        what: QueryCmd,
    },
}

/// Options shared by every transaction.
#[derive(Debug, clap::Args)]
pub struct TxArgs {
    /// Fee in base units (default: the chain's minimum, 1000).
    #[arg(long, default_value_t = crate::genesis::DEFAULT_MIN_FEE)]
    pub fee: Amount,
    /// Nonce (default: the next one the chain expects, counting its mempool).
    #[arg(long)]
    pub nonce: Option<u64>,
    /// Return after submitting instead of waiting for the block.
    #[arg(long)]
    pub no_wait: bool,
    /// Seconds to wait for the block.
    #[arg(long, default_value_t = 30)]
    pub timeout: u64,
    /// The transaction.
    #[command(subcommand)]
    pub kind: TxKind,
}

/// Capacity flags.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct CapacityArgs {
    /// Logical CPUs.
    #[arg(long, default_value_t = 0)]
    pub cru: u32,
    /// Memory, bytes.
    #[arg(long, default_value_t = 0)]
    pub mru: u64,
    /// SSD storage, bytes.
    #[arg(long, default_value_t = 0)]
    pub sru: u64,
    /// HDD storage, bytes.
    #[arg(long, default_value_t = 0)]
    pub hru: u64,
}

impl From<CapacityArgs> for Capacity {
    fn from(c: CapacityArgs) -> Self {
        Capacity {
            cru: c.cru,
            mru_bytes: c.mru,
            sru_bytes: c.sru,
            hru_bytes: c.hru,
        }
    }
}

/// Power target names.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum PowerArg {
    /// Powered on.
    Up,
    /// Powered off until needed.
    Down,
}

/// The transactions.
#[derive(Debug, clap::Subcommand)]
pub enum TxKind {
    /// Move balance to another account.
    Transfer {
        /// Receiver (`acct1…`).
        #[arg(long)]
        to: String,
        /// Base units.
        #[arg(long)]
        amount: Amount,
    },
    /// Bond balance as validator stake.
    Bond {
        /// Base units.
        #[arg(long)]
        amount: Amount,
    },
    /// Start unbonding stake.
    Unbond {
        /// Base units.
        #[arg(long)]
        amount: Amount,
    },
    /// Create a farm owned by the signer.
    RegisterFarm {
        /// Display name.
        #[arg(long)]
        name: String,
    },
    /// As farm owner, approve a node for the farm (prints the signed approval;
    /// nothing is submitted).
    ApproveNode {
        /// The farm.
        #[arg(long)]
        farm: u64,
        /// The node (`node1…` or `acct1…`).
        #[arg(long)]
        node: String,
        /// Write the approval here instead of standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Register a node: signed by the node key, approved by the farm owner.
    RegisterNode {
        /// The node's keystore (same passphrase rules).
        #[arg(long, value_name = "PATH")]
        node_keystore: PathBuf,
        /// The farm.
        #[arg(long)]
        farm: u64,
        /// The approval file from `approve-node`.
        #[arg(long, value_name = "FILE")]
        approval: PathBuf,
        /// The node's capacity.
        #[command(flatten)]
        capacity: CapacityArgs,
    },
    /// Reserve capacity on a node.
    CreateContract {
        /// The node.
        #[arg(long)]
        node: String,
        /// Base units per hour.
        #[arg(long)]
        price_per_hour: Amount,
        /// What to reserve.
        #[command(flatten)]
        capacity: CapacityArgs,
    },
    /// Cancel one of the signer's contracts.
    CancelContract {
        /// The contract id.
        #[arg(long)]
        contract: u64,
    },
    /// Set a node's power target (farm owner only).
    SetPowerTarget {
        /// The node.
        #[arg(long)]
        node: String,
        /// up or down.
        #[arg(long, value_enum)]
        target: PowerArg,
    },
}

/// The queries.
#[derive(Debug, clap::Subcommand)]
pub enum QueryCmd {
    /// Balance, nonce and stake (default: the --keystore's account).
    Account {
        /// The account (`acct1…`).
        id: Option<String>,
    },
    /// The validator set.
    Validators,
    /// A registered node.
    Node {
        /// The node (`node1…` or `acct1…`).
        id: String,
    },
    /// A farm.
    Farm {
        /// The farm number.
        id: u64,
    },
    /// Capacity contracts.
    Contracts {
        /// Only on this node.
        #[arg(long)]
        node: Option<String>,
        /// Only of this tenant.
        #[arg(long)]
        tenant: Option<String>,
    },
    /// The last decided height.
    Height,
    /// A decided block.
    Block {
        /// Its height.
        height: u64,
    },
    /// Where a submitted transaction is.
    Tx {
        /// Its id (64 hex digits).
        id: String,
    },
    /// A node's uptime ratio and rewards: this epoch so far and the last
    /// settled one.
    Farming {
        /// The node (`node1…` or `acct1…`).
        id: String,
    },
}

fn parse_address(s: &str) -> Result<Address, Error> {
    if let Ok(a) = s.parse::<AccountId>() {
        return Ok(Address::from(*a.key()));
    }
    if let Ok(n) = s.parse::<NodeId>() {
        return Ok(Address::from(*n.key()));
    }
    Err(Error::Usage(format!("{s:?} is not an account or node id")))
}

fn open_key(path: &Path, file: Option<&Path>) -> Result<SecretKey, Error> {
    match passphrase(file) {
        Ok(p) => Ok(Keystore::open(path, &p)?),
        Err(Error::NoPassphrase) => Ok(Keystore::open(path, &Passphrase::new(TESTNET_PASSPHRASE))
            .map_err(|e| {
                tracing::debug!(error = %e, "test passphrase does not open the keystore");
                Error::NoPassphrase
            })?),
        Err(e) => Err(e),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn parse_hash(s: &str) -> Option<Hash> {
    let mut out = [0u8; 32];
    if s.len() != 64 {
        return None;
    }
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Rewrites a serde value for people: keys as `acct1…`, other byte arrays as hex,
/// `u128` amounts as strings (JSON numbers lose precision past 2^53).
fn readable(v: Value, key: &str) -> Value {
    const ADDRESS_KEYS: [&str; 8] = [
        "address",
        "owner",
        "tenant",
        "node",
        "proposer",
        "to",
        "validator",
        "signer",
    ];
    match v {
        Value::Array(items)
            if (items.len() == 32 || items.len() == 64) && items.iter().all(Value::is_u64) =>
        {
            let bytes: Vec<u8> = items
                .iter()
                .filter_map(|x| x.as_u64().and_then(|n| u8::try_from(n).ok()))
                .collect();
            if ADDRESS_KEYS.contains(&key)
                && let Ok(arr) = <[u8; 32]>::try_from(bytes.as_slice())
            {
                return Value::String(Address(arr).to_string());
            }
            Value::String(hex(&bytes))
        }
        Value::Array(items) => Value::Array(items.into_iter().map(|x| readable(x, key)).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, x)| {
                    let x = readable(x, &k);
                    (k, x)
                })
                .collect(),
        ),
        other => other,
    }
}

fn to_json<T: serde::Serialize>(v: &T) -> Value {
    readable(serde_json::to_value(v).unwrap_or(Value::Null), "")
}

/// The shared client on the parsed `--endpoint`s.
fn connect(key: &SecretKey, endpoints: &[String]) -> Result<Chain, Error> {
    let endpoints = endpoints
        .iter()
        .map(|e| {
            e.parse::<Endpoint>()
                .map_err(|e| Error::Usage(e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Chain::new(key, endpoints)?)
}

impl From<ClientError> for Error {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::NoEndpoint => {
                Error::Usage("give at least one --endpoint ID@HOST:PORT".into())
            }
            ClientError::Unreachable(s) => Error::Unreachable(s),
            ClientError::Refused(s) => Error::Refused(s),
            other => Error::Usage(other.to_string()),
        }
    }
}

impl Args {
    /// Runs the command; `json` selects machine-readable output.
    pub fn run(self, json: bool) -> Result<(), Error> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Unreachable(e.to_string()))?;
        rt.block_on(self.run_async(json))
    }

    async fn run_async(self, json: bool) -> Result<(), Error> {
        let key = match &self.keystore {
            Some(path) => Some(open_key(path, self.passphrase_file.as_deref())?),
            None => None,
        };
        let client_key = match &key {
            Some(k) => k.clone(),
            None => SecretKey::generate().map_err(|e| Error::Usage(e.to_string()))?,
        };
        // approve-node is an offline signature; it needs no endpoint.
        if let Command::Tx(TxArgs {
            kind: TxKind::ApproveNode { farm, node, out },
            ..
        }) = &self.cmd
        {
            let key = key.ok_or_else(|| Error::Usage("approve-node needs --keystore".into()))?;
            let chain_id = match self.endpoints.is_empty() {
                true => return Err(Error::Usage("give --endpoint to learn the chain id".into())),
                false => connect(&client_key, &self.endpoints)?.chain_id().await?,
            };
            let approval = client::approve_node(&key, &chain_id, *farm, parse_address(node)?)?;
            let text =
                serde_json::to_string_pretty(&approval).map_err(|e| Error::Usage(e.to_string()))?;
            match out {
                Some(path) => std::fs::write(path, text).map_err(super::io(path))?,
                None => println!("{text}"),
            }
            return Ok(());
        }
        let mut chain = connect(&client_key, &self.endpoints)?;
        match self.cmd {
            Command::Query { what } => query(&mut chain, what, key.as_ref(), json).await,
            Command::Tx(args) => {
                let key = key.ok_or_else(|| Error::Usage("transactions need --keystore".into()))?;
                let passphrase_file = self.passphrase_file.clone();
                submit(&mut chain, &key, args, passphrase_file.as_deref(), json).await
            }
        }
    }
}

async fn submit(
    chain: &mut Chain,
    key: &SecretKey,
    args: TxArgs,
    passphrase_file: Option<&Path>,
    json: bool,
) -> Result<(), Error> {
    let chain_id = chain.chain_id().await?;
    let me = Address::from(key.public());
    let body = match args.kind {
        TxKind::Transfer { to, amount } => TxBody::Transfer {
            to: parse_address(&to)?,
            amount,
        },
        TxKind::Bond { amount } => TxBody::Bond { amount },
        TxKind::Unbond { amount } => TxBody::Unbond { amount },
        TxKind::RegisterFarm { name } => TxBody::RegisterFarm { name },
        TxKind::ApproveNode { .. } => return Err(Error::Usage("approve-node is offline".into())),
        TxKind::RegisterNode {
            node_keystore,
            farm,
            approval,
            capacity,
        } => {
            let node_key = open_key(&node_keystore, passphrase_file)?;
            let text = std::fs::read_to_string(&approval).map_err(super::io(&approval))?;
            let approval: Signed<FarmApproval> = serde_json::from_str(&text)
                .map_err(|e| Error::Usage(format!("{}: {e}", approval.display())))?;
            if approval.statement.payload.farm != farm {
                return Err(Error::Usage(format!(
                    "the approval is for farm {}, not {farm}",
                    approval.statement.payload.farm
                )));
            }
            client::register_node(&node_key, &chain_id, approval, capacity.into())?
        }
        TxKind::CreateContract {
            node,
            price_per_hour,
            capacity,
        } => TxBody::CreateContract {
            node: parse_address(&node)?,
            resources: capacity.into(),
            price_per_hour,
        },
        TxKind::CancelContract { contract } => TxBody::CancelContract { contract },
        TxKind::SetPowerTarget { node, target } => TxBody::SetPowerTarget {
            node: parse_address(&node)?,
            target: match target {
                PowerArg::Up => PowerTarget::Up,
                PowerArg::Down => PowerTarget::Down,
            },
        },
    };
    let nonce = match args.nonce {
        Some(n) => n,
        None => chain.account(me).await?.next_nonce,
    };
    let tx = Tx {
        nonce,
        fee: args.fee,
        body,
    }
    .sign(&chain_id, key)
    .map_err(|e| Error::Usage(e.to_string()))?;
    let id = chain.submit(tx).await?;
    if args.no_wait {
        report(
            json,
            json!({"id": hex(&id), "status": "pending"}),
            &format!("submitted {}", hex(&id)),
        );
        return Ok(());
    }
    let (height, status) = match chain
        .wait_included(id, Duration::from_secs(args.timeout))
        .await
    {
        Err(ClientError::NotIncluded(_)) => {
            return Err(Error::Unreachable(format!(
                "transaction {} not in a block after {} s",
                hex(&id),
                args.timeout
            )));
        }
        other => other?,
    };
    let (word, detail) = match &status {
        TxStatus::Applied => ("applied", String::new()),
        TxStatus::Failed(e) => ("failed", e.to_string()),
        TxStatus::Rejected(e) => ("rejected", e.to_string()),
    };
    report(
        json,
        json!({"id": hex(&id), "height": height, "status": word, "error": detail}),
        &format!("{word} in block {height}: {} {detail}", hex(&id)),
    );
    match status {
        TxStatus::Applied => Ok(()),
        _ => Err(Error::Refused(format!("Transaction {word}: {detail}"))),
    }
}

fn report(json: bool, value: Value, text: &str) {
    if json {
        println!("{value}");
    } else {
        println!("{text}");
    }
}

async fn query(
    chain: &mut Chain,
    what: QueryCmd,
    key: Option<&SecretKey>,
    json: bool,
) -> Result<(), Error> {
    let q = match what {
        QueryCmd::Account { id } => Query::Account(match (id, key) {
            (Some(id), _) => parse_address(&id)?,
            (None, Some(k)) => Address::from(k.public()),
            (None, None) => return Err(Error::Usage("give an account id or --keystore".into())),
        }),
        QueryCmd::Validators => Query::Validators,
        QueryCmd::Node { id } => Query::Node(parse_address(&id)?),
        QueryCmd::Farm { id } => Query::Farm(id),
        QueryCmd::Contracts { node, tenant } => Query::Contracts {
            node: node.as_deref().map(parse_address).transpose()?,
            tenant: tenant.as_deref().map(parse_address).transpose()?,
        },
        QueryCmd::Height => Query::Height,
        QueryCmd::Block { height } => Query::Block(height),
        QueryCmd::Farming { id } => Query::Farming(parse_address(&id)?),
        QueryCmd::Tx { id } => Query::Tx(
            parse_hash(&id)
                .ok_or_else(|| Error::Usage(format!("{id:?} is not a transaction id")))?,
        ),
    };
    let value = match chain.query(q).await? {
        Response::Account(a) => json!({
            "id": a.address.to_string(),
            "balance": a.balance.to_string(),
            "nonce": a.nonce,
            "next_nonce": a.next_nonce,
            "bonded": a.stake.as_ref().map_or(0, |s| s.bonded).to_string(),
            "unbonding": a.unbonding.to_string(),
        }),
        Response::Validators(set) => Value::Array(
            set.validators
                .iter()
                .map(|v| json!({"id": v.address.to_string(), "power": v.power, "stake": v.stake.to_string()}))
                .collect(),
        ),
        Response::Height(h) => json!({
            "chain_id": h.chain_id, "height": h.height, "time": h.time,
            "state_root": hex(&h.state_root),
        }),
        Response::Block(Some((committed, receipts))) => {
            let block = &committed.block;
            json!({
            "height": block.header.height,
            "hash": hex(&block.hash().0),
            "parent": hex(&block.parent.0),
            "round": committed.certificate.round.as_u32(),
            "signatures": committed.certificate.signatures.len(),
            "time": block.header.time,
            "proposer": block.header.proposer.to_string(),
            "state_root": hex(&block.state_root),
            "txs": block.txs.iter().zip(receipts.iter().map(Some).chain(std::iter::repeat(None))).map(|(t, r)| json!({
                "id": crate::state::tx::tx_id(t).map(|h| hex(&h)).unwrap_or_default(),
                "sender": AccountId::from(t.statement.signer).to_string(),
                "nonce": t.statement.payload.nonce,
                "fee": t.statement.payload.fee.to_string(),
                "body": to_json(&t.statement.payload.body),
                "status": r.map(to_json),
            })).collect::<Vec<_>>(),
            })
        }
        Response::Block(None) => Value::Null,
        Response::Tx(loc) => to_json(&loc),
        Response::Farming(None) => Value::Null,
        Response::Farming(Some(f)) => json!({
            "epoch_secs": f.epoch_secs,
            "current_epoch": f.current_epoch,
            "current_uptime_secs": f.current_uptime_secs,
            "current_possible_secs": f.current_possible_secs,
            "current_uptime_ppm": f.current_uptime_ppm(),
            "last": f.last.map(|l| json!({
                "epoch": l.epoch,
                "uptime_secs": l.uptime_secs,
                "possible_secs": l.possible_secs,
                "uptime_ppm": l.uptime_ppm(),
                "reward": l.reward.to_string(),
            })),
        }),
        Response::Node(n) => to_json(&n),
        Response::Farm(f) => to_json(&f),
        Response::Contracts(c) => Value::Array(
            c.iter()
                .map(|(id, c)| {
                    let mut v = to_json(c);
                    if let Value::Object(m) = &mut v {
                        m.insert("id".into(), json!(id));
                    }
                    v
                })
                .collect(),
        ),
        other => return Err(Error::Refused(format!("unexpected answer {other:?}"))),
    };
    if json {
        println!("{value}");
    } else {
        println!(
            "{}",
            serde_json::to_string_pretty(&value).unwrap_or_default()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readable_names_keys_and_hexes_other_bytes() {
        let key = SecretKey::from_seed(&[8; 32]).public();
        let v = json!({"owner": key.as_bytes().to_vec(), "root": vec![0u8; 32], "n": 3});
        let r = readable(v, "");
        assert_eq!(r["owner"], json!(AccountId::from(key).to_string()));
        assert_eq!(r["root"], json!("0".repeat(64)));
        assert_eq!(r["n"], json!(3));
        assert_eq!(parse_hash(&"ab".repeat(32)), Some([0xab; 32]));
        assert!(parse_address("nope").is_err());
    }
}
