//! The genesis file: chain id, start time, parameters and initial allocations.
//!
//! Two stages, as for every config in Nodus: [`RawGenesis`] is what the JSON file
//! holds (unknown fields are refused, every parameter has a documented default),
//! and [`Genesis`] is the validated form the state machine starts from. Every
//! refusal names the offending field, e.g. `params.epoch_secs: must be above zero`.
//!
//! JSON rather than TOML because amounts are `u128` base units, beyond TOML's
//! 64-bit integers.

use std::collections::BTreeMap;
use std::path::Path;

use nodus_identity::AccountId;
use serde::{Deserialize, Serialize};

use crate::state::{Address, Amount};

/// Longest chain id, in bytes (the statement tag limit).
pub const MAX_CHAIN_ID_LEN: usize = nodus_identity::statement::MAX_TAG_LEN;

/// Default number of validators: large enough for a real grid's federation, small
/// enough that a round's votes stay cheap to gossip and verify.
pub const DEFAULT_MAX_VALIDATORS: u32 = 100;
/// Default minimum bonded stake for a validator seat: one base unit, so a devnet
/// works with any stake; real networks set it.
pub const DEFAULT_MIN_VALIDATOR_STAKE: Amount = 1;
/// Default stake per unit of voting power: 1, so voting power equals bonded stake.
pub const DEFAULT_STAKE_PER_POWER: Amount = 1;
/// Default unbonding period: 7 days of one-second blocks. Stake stays slashable for
/// this long after unbonding, so evidence found late still bites.
pub const DEFAULT_UNBONDING_PERIOD_BLOCKS: u64 = 7 * 86_400;
/// Default evidence age limit: half the unbonding period, so the stake that signed
/// is still there to slash when the evidence lands.
pub const DEFAULT_MAX_EVIDENCE_AGE_BLOCKS: u64 = DEFAULT_UNBONDING_PERIOD_BLOCKS / 2;
/// Default jail time after a double sign: one day of one-second blocks.
pub const DEFAULT_JAIL_PERIOD_BLOCKS: u64 = 86_400;
/// Default slash for a double sign: 5 % of the validator's stake.
pub const DEFAULT_SLASH_FRACTION_BPS: u32 = 500;
/// Default minimum fee per transaction, in base units: prices spam out without
/// bothering real users.
pub const DEFAULT_MIN_FEE: Amount = 1_000;
/// Default share of each fee that is burned: half; the rest pays the proposer.
pub const DEFAULT_FEE_BURN_BPS: u32 = 5_000;
/// Default billing cadence: every 60 blocks (a minute of one-second blocks).
pub const DEFAULT_BILLING_INTERVAL_BLOCKS: u64 = 60;
/// Default grace period for unfunded contracts: one day of one-second blocks, time
/// for a tenant to top up before their workloads go.
pub const DEFAULT_GRACE_PERIOD_BLOCKS: u64 = 86_400;
/// Default reward epoch: one day.
pub const DEFAULT_EPOCH_SECS: u64 = 86_400;
/// Default maximum mint per epoch, reached when every node has full uptime.
pub const DEFAULT_EPOCH_REWARD: Amount = 1_000_000_000_000;
/// Default time an epoch stays open for late uptime reports after it ends: one
/// hour, longer than any agent's retry backoff.
pub const DEFAULT_LATE_REPORT_WINDOW_SECS: u64 = 3_600;
/// Default tolerated clock drift of a node's uptime report against block time: the
/// same five minutes statements tolerate.
pub const DEFAULT_UPTIME_DRIFT_SECS: u64 = nodus_identity::statement::DEFAULT_MAX_SKEW_SECS;

/// Longest epoch accepted (about 116 days); bounds the reward arithmetic.
pub const MAX_EPOCH_SECS: u64 = 10_000_000;
/// Largest capacity weight accepted; bounds the reward arithmetic.
pub const MAX_CAPACITY_WEIGHT: u64 = 1 << 20;

/// Reward weight of each resource, per unit (`cru`: one logical CPU; the others:
/// one GiB, rounded down).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapacityWeights {
    /// Weight of one logical CPU.
    pub cru: u64,
    /// Weight of one GiB of memory.
    pub mru: u64,
    /// Weight of one GiB of SSD.
    pub sru: u64,
    /// Weight of one GiB of HDD.
    pub hru: u64,
}

impl Default for CapacityWeights {
    /// One CPU with 4 GiB is a compute unit, 256 GiB of SSD or 1 TiB of HDD a
    /// storage unit (the agent's capacity model); a compute unit and a storage unit
    /// weigh the same.
    fn default() -> Self {
        Self {
            cru: 512,
            mru: 128,
            sru: 4,
            hru: 1,
        }
    }
}

/// Chain parameters as written in the genesis file. Every field has a default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawParams {
    /// Most validators in the set (top stake wins).
    pub max_validators: u32,
    /// Least bonded stake for a validator seat.
    pub min_validator_stake: Amount,
    /// Bonded stake per unit of voting power.
    pub stake_per_power: Amount,
    /// Blocks between unbonding and the stake becoming spendable.
    pub unbonding_period_blocks: u64,
    /// Oldest evidence accepted, in blocks behind the current height.
    pub max_evidence_age_blocks: u64,
    /// Blocks a double-signing validator stays jailed.
    pub jail_period_blocks: u64,
    /// Share of stake slashed for a double sign, in basis points.
    pub slash_fraction_bps: u32,
    /// Least fee per transaction.
    pub min_fee: Amount,
    /// Share of each fee burned, in basis points; the rest pays the proposer.
    pub fee_burn_bps: u32,
    /// Contracts are billed at every height divisible by this.
    pub billing_interval_blocks: u64,
    /// Blocks an unfunded contract stays in grace before it is cancelled.
    pub grace_period_blocks: u64,
    /// Length of a reward epoch, seconds of block time.
    pub epoch_secs: u64,
    /// Most base units minted as farming rewards per epoch.
    pub epoch_reward: Amount,
    /// Seconds an epoch stays open for late uptime reports after it ends.
    pub late_report_window_secs: u64,
    /// Tolerated clock drift of uptime reports, seconds.
    pub uptime_drift_secs: u64,
    /// Reward weight of each resource.
    pub capacity_weights: CapacityWeights,
}

impl Default for RawParams {
    fn default() -> Self {
        Self {
            max_validators: DEFAULT_MAX_VALIDATORS,
            min_validator_stake: DEFAULT_MIN_VALIDATOR_STAKE,
            stake_per_power: DEFAULT_STAKE_PER_POWER,
            unbonding_period_blocks: DEFAULT_UNBONDING_PERIOD_BLOCKS,
            max_evidence_age_blocks: DEFAULT_MAX_EVIDENCE_AGE_BLOCKS,
            jail_period_blocks: DEFAULT_JAIL_PERIOD_BLOCKS,
            slash_fraction_bps: DEFAULT_SLASH_FRACTION_BPS,
            min_fee: DEFAULT_MIN_FEE,
            fee_burn_bps: DEFAULT_FEE_BURN_BPS,
            billing_interval_blocks: DEFAULT_BILLING_INTERVAL_BLOCKS,
            grace_period_blocks: DEFAULT_GRACE_PERIOD_BLOCKS,
            epoch_secs: DEFAULT_EPOCH_SECS,
            epoch_reward: DEFAULT_EPOCH_REWARD,
            late_report_window_secs: DEFAULT_LATE_REPORT_WINDOW_SECS,
            uptime_drift_secs: DEFAULT_UPTIME_DRIFT_SECS,
            capacity_weights: CapacityWeights::default(),
        }
    }
}

/// Validated chain parameters. Same fields as [`RawParams`]; the constructor
/// guarantees the invariants the state machine's arithmetic relies on, and
/// deserializing (a stored state, say) validates again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawParams", into = "RawParams")]
pub struct Params(RawParams);

impl From<Params> for RawParams {
    fn from(p: Params) -> Self {
        p.0
    }
}

impl Params {
    /// The parameters.
    pub fn get(&self) -> &RawParams {
        &self.0
    }
}

impl std::ops::Deref for Params {
    type Target = RawParams;
    fn deref(&self) -> &RawParams {
        &self.0
    }
}

impl TryFrom<RawParams> for Params {
    type Error = GenesisError;

    fn try_from(p: RawParams) -> Result<Self, GenesisError> {
        let bad = |field: &str, reason: &'static str| {
            Err(GenesisError::Invalid {
                field: format!("params.{field}"),
                reason,
            })
        };
        if p.max_validators == 0 {
            return bad("max_validators", "must be above zero");
        }
        if p.min_validator_stake == 0 {
            return bad("min_validator_stake", "must be above zero");
        }
        if p.stake_per_power == 0 {
            return bad("stake_per_power", "must be above zero");
        }
        if p.min_validator_stake < p.stake_per_power {
            return bad(
                "min_validator_stake",
                "must be at least stake_per_power, so every validator has voting power",
            );
        }
        if p.max_evidence_age_blocks > p.unbonding_period_blocks {
            return bad(
                "max_evidence_age_blocks",
                "must not exceed unbonding_period_blocks, or evidence could outlive the stake",
            );
        }
        if p.slash_fraction_bps > 10_000 {
            return bad("slash_fraction_bps", "must be at most 10000 (100 %)");
        }
        if p.fee_burn_bps > 10_000 {
            return bad("fee_burn_bps", "must be at most 10000 (100 %)");
        }
        if p.billing_interval_blocks == 0 {
            return bad("billing_interval_blocks", "must be above zero");
        }
        if p.epoch_secs == 0 || p.epoch_secs > MAX_EPOCH_SECS {
            return bad("epoch_secs", "must be between 1 and 10000000");
        }
        let w = p.capacity_weights;
        for (name, v) in [
            ("cru", w.cru),
            ("mru", w.mru),
            ("sru", w.sru),
            ("hru", w.hru),
        ] {
            if v > MAX_CAPACITY_WEIGHT {
                return Err(GenesisError::Invalid {
                    field: format!("params.capacity_weights.{name}"),
                    reason: "must be at most 1048576",
                });
            }
        }
        Ok(Self(p))
    }
}

/// A funded account in the genesis file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAccount {
    /// The account id (`acct1…`).
    pub id: String,
    /// Spendable balance, base units.
    pub balance: Amount,
}

/// An initial validator in the genesis file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawValidator {
    /// The validator's account id (`acct1…`); its key also signs consensus votes.
    pub id: String,
    /// Bonded stake, base units (in addition to any balance in `accounts`).
    pub stake: Amount,
}

/// The genesis file as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGenesis {
    /// Chain id: every signature on this chain names it as its network.
    pub chain_id: String,
    /// Unix seconds at genesis; reward epoch 0 starts here and the first block's
    /// time may not be earlier.
    pub genesis_time: u64,
    /// Parameters; omitted fields take their defaults.
    #[serde(default)]
    pub params: RawParams,
    /// Funded accounts.
    #[serde(default)]
    pub accounts: Vec<RawAccount>,
    /// Initial validators; at least one.
    pub validators: Vec<RawValidator>,
}

/// The validated genesis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Genesis {
    /// Chain id.
    pub chain_id: String,
    /// Unix seconds at genesis.
    pub genesis_time: u64,
    /// Parameters.
    pub params: Params,
    /// Balances.
    pub accounts: BTreeMap<Address, Amount>,
    /// Bonded stakes of the initial validators.
    pub validators: BTreeMap<Address, Amount>,
}

/// Why a genesis file was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GenesisError {
    /// The file could not be read.
    #[error("Cannot read genesis file {path}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid genesis JSON (syntax, unknown or missing field).
    #[error("Genesis is not valid JSON")]
    Parse(#[source] serde_json::Error),
    /// A field holds a value the chain cannot start with.
    #[error("{field}: {reason}")]
    Invalid {
        /// Path of the field, e.g. `accounts[2].id`.
        field: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

fn parse_id(field: String, id: &str) -> Result<Address, GenesisError> {
    id.parse::<AccountId>()
        .map(|a| Address::from(*a.key()))
        .map_err(|_| GenesisError::Invalid {
            field,
            reason: "is not a valid account id (acct1…)",
        })
}

impl TryFrom<RawGenesis> for Genesis {
    type Error = GenesisError;

    fn try_from(raw: RawGenesis) -> Result<Self, GenesisError> {
        if raw.chain_id.is_empty()
            || raw.chain_id.len() > MAX_CHAIN_ID_LEN
            || !raw
                .chain_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        {
            return Err(GenesisError::Invalid {
                field: "chain_id".into(),
                reason: "must be 1 to 64 characters of A-Z a-z 0-9 - _ .",
            });
        }
        let params = Params::try_from(raw.params)?;
        let mut supply: Amount = 0;
        let mut accounts = BTreeMap::new();
        for (i, a) in raw.accounts.iter().enumerate() {
            let address = parse_id(format!("accounts[{i}].id"), &a.id)?;
            if accounts.insert(address, a.balance).is_some() {
                return Err(GenesisError::Invalid {
                    field: format!("accounts[{i}].id"),
                    reason: "appears twice",
                });
            }
            supply = supply.checked_add(a.balance).ok_or(GenesisError::Invalid {
                field: format!("accounts[{i}].balance"),
                reason: "total supply overflows",
            })?;
        }
        if raw.validators.is_empty() {
            return Err(GenesisError::Invalid {
                field: "validators".into(),
                reason: "needs at least one validator",
            });
        }
        let mut validators = BTreeMap::new();
        for (i, v) in raw.validators.iter().enumerate() {
            let address = parse_id(format!("validators[{i}].id"), &v.id)?;
            if v.stake < params.min_validator_stake {
                return Err(GenesisError::Invalid {
                    field: format!("validators[{i}].stake"),
                    reason: "is below params.min_validator_stake",
                });
            }
            if validators.insert(address, v.stake).is_some() {
                return Err(GenesisError::Invalid {
                    field: format!("validators[{i}].id"),
                    reason: "appears twice",
                });
            }
            supply = supply.checked_add(v.stake).ok_or(GenesisError::Invalid {
                field: format!("validators[{i}].stake"),
                reason: "total supply overflows",
            })?;
        }
        Ok(Self {
            chain_id: raw.chain_id,
            genesis_time: raw.genesis_time,
            params,
            accounts,
            validators,
        })
    }
}

impl Genesis {
    /// Parses and validates genesis JSON.
    pub fn from_json(text: &str) -> Result<Self, GenesisError> {
        let raw: RawGenesis = serde_json::from_str(text).map_err(GenesisError::Parse)?;
        Self::try_from(raw)
    }

    /// Reads, parses and validates a genesis file.
    pub fn load(path: &Path) -> Result<Self, GenesisError> {
        let text = std::fs::read_to_string(path).map_err(|source| GenesisError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_json(&text)
    }

    /// Total supply at genesis: balances plus bonded stake.
    pub fn supply(&self) -> Amount {
        // Validation summed the same numbers with checked arithmetic.
        self.accounts
            .values()
            .chain(self.validators.values())
            .fold(0, |a: Amount, b| a.saturating_add(*b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nodus_identity::SecretKey;

    fn id(seed: u8) -> String {
        AccountId::from(SecretKey::from_seed(&[seed; 32]).public()).to_string()
    }

    fn json(extra: &str) -> String {
        format!(
            r#"{{"chain_id":"devnet","genesis_time":1000,{extra}
               "accounts":[{{"id":"{}","balance":340282366920938463463374607431768211000}}],
               "validators":[{{"id":"{}","stake":100}}]}}"#,
            id(1),
            id(2)
        )
    }

    #[test]
    fn parses_with_defaults_and_u128_amounts() {
        let g = Genesis::from_json(&json("")).unwrap();
        assert_eq!(g.chain_id, "devnet");
        assert_eq!(g.params.epoch_secs, DEFAULT_EPOCH_SECS);
        assert_eq!(g.supply(), 340282366920938463463374607431768211100);
    }

    #[test]
    fn loads_from_a_file_and_names_a_missing_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("genesis.json");
        std::fs::write(&path, json("")).unwrap();
        assert_eq!(Genesis::load(&path).unwrap().chain_id, "devnet");
        let e = Genesis::load(&dir.path().join("missing.json")).unwrap_err();
        assert!(e.to_string().contains("missing.json"), "{e}");
        // A stored state's parameters are validated again when read back.
        let bad = RawParams {
            epoch_secs: 0,
            ..RawParams::default()
        };
        let bytes = postcard::to_allocvec(&bad).unwrap();
        assert!(postcard::from_bytes::<Params>(&bytes).is_err());
    }

    #[test]
    fn unknown_fields_are_refused() {
        let e = Genesis::from_json(&json(r#""colour":"blue","#)).unwrap_err();
        assert!(matches!(e, GenesisError::Parse(_)), "{e}");
        let e = Genesis::from_json(&json(r#""params":{"epoch_sec":5},"#)).unwrap_err();
        assert!(matches!(e, GenesisError::Parse(_)), "{e}");
    }

    #[test]
    fn errors_name_the_field() {
        let e = Genesis::from_json(&json(r#""params":{"epoch_secs":0},"#)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "params.epoch_secs: must be between 1 and 10000000"
        );
        let e = Genesis::from_json(&json(r#""params":{"slash_fraction_bps":10001},"#)).unwrap_err();
        assert!(e.to_string().starts_with("params.slash_fraction_bps:"));
        let e = Genesis::from_json(&json("").replace(&id(2), &id(2).replace("acct", "node")))
            .unwrap_err();
        assert!(e.to_string().starts_with("validators[0].id:"), "{e}");
        let e = Genesis::from_json(&json("").replace("\"stake\":100", "\"stake\":0")).unwrap_err();
        assert!(e.to_string().starts_with("validators[0].stake:"), "{e}");
        let e = Genesis::from_json(&json("").replace("devnet", "dev net")).unwrap_err();
        assert!(e.to_string().starts_with("chain_id:"), "{e}");
        let e = Genesis::from_json(&json("").replace("211000", "211455")).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("validators[0].stake: total supply"),
            "{e}"
        );
    }
}
