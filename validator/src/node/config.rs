//! The validator's config file, in two stages: [`RawConfig`] is the TOML as
//! written (unknown fields refused, every field documented), [`NodeConfig`] the
//! validated form the runtime starts from. Relative paths are resolved against the
//! config file's directory, so a config directory can be moved as a whole.

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs as _};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use nodus_identity::{AccountId, PublicKey};
use serde::{Deserialize, Serialize};

use crate::consensus::EngineConfig;
use crate::mempool::{DEFAULT_MAX_BYTES, DEFAULT_MAX_PER_SENDER, DEFAULT_MAX_TXS, MempoolConfig};

/// Default most transactions per block: about half a second of verification on a
/// small validator, so blocks stay well under the one-second finality target.
pub const DEFAULT_MAX_BLOCK_TXS: usize = 2_000;
/// Default most encoded bytes per block (4 MiB), below the wire's frame limit.
pub const DEFAULT_MAX_BLOCK_BYTES: usize = 4 << 20;

/// A validator's address on the network: `<ValidatorId>@host:port`, where the id
/// is the validator's account id (`acct1…`), the key its QUIC endpoint presents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The key the peer must present.
    pub key: PublicKey,
    /// Where it listens.
    pub addr: SocketAddr,
}

/// Why an endpoint string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EndpointError {
    /// No `@` between id and address.
    #[error("Endpoint {0:?} is not <ValidatorId>@host:port")]
    Format(String),
    /// The id is not an account id.
    #[error("Endpoint {0:?} has no valid validator id (acct1…)")]
    Id(String),
    /// The address does not resolve.
    #[error("Endpoint {0:?} has no resolvable host:port")]
    Address(String),
}

impl FromStr for Endpoint {
    type Err = EndpointError;

    fn from_str(s: &str) -> Result<Self, EndpointError> {
        let (id, host) = s
            .split_once('@')
            .ok_or_else(|| EndpointError::Format(s.to_owned()))?;
        let id: AccountId = id.parse().map_err(|_| EndpointError::Id(s.to_owned()))?;
        let addr = host
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .ok_or_else(|| EndpointError::Address(s.to_owned()))?;
        Ok(Self {
            key: *id.key(),
            addr,
        })
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", AccountId::from(self.key), self.addr)
    }
}

/// Mempool bounds in the config file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMempool {
    /// Most pending transactions (default 50000).
    pub max_txs: Option<usize>,
    /// Most pending encoded bytes (default 64 MiB).
    pub max_bytes: Option<usize>,
    /// Most pending transactions per sender (default 10000).
    pub max_per_sender: Option<usize>,
}

/// Block building in the config file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBlocks {
    /// Most transactions this validator puts in a block it proposes (default 5000).
    pub max_txs: Option<usize>,
    /// Most encoded bytes of transactions per proposed block (default 4 MiB).
    pub max_bytes: Option<usize>,
}

/// The config file as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// The validator's keystore (its key signs votes and is its QUIC identity).
    pub keystore: PathBuf,
    /// File whose first line is the keystore passphrase; without it,
    /// $NODUS_PASSPHRASE.
    pub passphrase_file: Option<PathBuf>,
    /// The genesis file (JSON).
    pub genesis: PathBuf,
    /// Directory for the block store and the consensus write-ahead log.
    pub data_dir: PathBuf,
    /// UDP address the QUIC endpoint listens on, `host:port`.
    pub listen: String,
    /// Other validators, `<ValidatorId>@host:port`.
    #[serde(default)]
    pub peers: Vec<String>,
    /// Mempool bounds.
    #[serde(default)]
    pub mempool: RawMempool,
    /// Block building.
    #[serde(default)]
    pub blocks: RawBlocks,
    /// Consensus timeouts (malachite's; every field has a default).
    #[serde(default)]
    pub consensus: EngineConfig,
}

/// The validated config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeConfig {
    /// Keystore path.
    pub keystore: PathBuf,
    /// Passphrase file path, if any.
    pub passphrase_file: Option<PathBuf>,
    /// Genesis path.
    pub genesis: PathBuf,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Listen address.
    pub listen: SocketAddr,
    /// Peers.
    pub peers: Vec<Endpoint>,
    /// Mempool bounds.
    pub mempool: MempoolConfig,
    /// Most transactions per proposed block.
    pub max_block_txs: usize,
    /// Most transaction bytes per proposed block.
    pub max_block_bytes: usize,
    /// Consensus timeouts.
    pub consensus: EngineConfig,
}

/// Why a config was refused. Messages name the field.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("Cannot read config {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Not valid TOML for this schema (syntax, unknown or missing field).
    #[error("Config {path} is invalid")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's complaint, which names the field.
        #[source]
        source: Box<toml::de::Error>,
    },
    /// A field's value is unusable.
    #[error("{field}: {reason}")]
    Invalid {
        /// The field, e.g. `peers[1]`.
        field: String,
        /// What is wrong.
        reason: String,
    },
}

impl RawConfig {
    /// Validates, resolving relative paths against `base` (the config's directory).
    pub fn validate(self, base: &Path) -> Result<NodeConfig, ConfigError> {
        let resolve = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };
        let listen = self
            .listen
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .ok_or_else(|| ConfigError::Invalid {
                field: "listen".into(),
                reason: format!("{:?} is not a resolvable host:port", self.listen),
            })?;
        let peers = self
            .peers
            .iter()
            .enumerate()
            .map(|(i, p)| {
                p.parse::<Endpoint>().map_err(|e| ConfigError::Invalid {
                    field: format!("peers[{i}]"),
                    reason: e.to_string(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let positive = |field: &str, v: Option<usize>, default: usize| match v {
            Some(0) => Err(ConfigError::Invalid {
                field: field.into(),
                reason: "must be above zero".into(),
            }),
            Some(v) => Ok(v),
            None => Ok(default),
        };
        let mempool = MempoolConfig {
            max_txs: positive("mempool.max_txs", self.mempool.max_txs, DEFAULT_MAX_TXS)?,
            max_bytes: positive(
                "mempool.max_bytes",
                self.mempool.max_bytes,
                DEFAULT_MAX_BYTES,
            )?,
            max_per_sender: positive(
                "mempool.max_per_sender",
                self.mempool.max_per_sender,
                DEFAULT_MAX_PER_SENDER,
            )?,
        };
        let max_block_bytes = positive(
            "blocks.max_bytes",
            self.blocks.max_bytes,
            DEFAULT_MAX_BLOCK_BYTES,
        )?;
        if max_block_bytes > super::MAX_FRAME_LEN / 2 {
            return Err(ConfigError::Invalid {
                field: "blocks.max_bytes".into(),
                reason: format!(
                    "must be at most {} (half the chain's frame limit)",
                    super::MAX_FRAME_LEN / 2
                ),
            });
        }
        Ok(NodeConfig {
            keystore: resolve(self.keystore),
            passphrase_file: self.passphrase_file.map(resolve),
            genesis: resolve(self.genesis),
            data_dir: resolve(self.data_dir),
            listen,
            peers,
            mempool,
            max_block_txs: positive("blocks.max_txs", self.blocks.max_txs, DEFAULT_MAX_BLOCK_TXS)?,
            max_block_bytes,
            consensus: self.consensus,
        })
    }
}

impl NodeConfig {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let raw: RawConfig = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            source: Box::new(e),
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        raw.validate(base)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nodus_identity::SecretKey;

    fn id() -> String {
        AccountId::from(SecretKey::from_seed(&[4; 32]).public()).to_string()
    }

    #[test]
    fn endpoint_round_trips_and_names_what_is_wrong() {
        let text = format!("{}@127.0.0.1:7000", id());
        let e: Endpoint = text.parse().unwrap();
        assert_eq!(e.to_string(), text);
        assert!(matches!(
            "127.0.0.1:7000".parse::<Endpoint>(),
            Err(EndpointError::Format(_))
        ));
        assert!(matches!(
            "node1xyz@127.0.0.1:7000".parse::<Endpoint>(),
            Err(EndpointError::Id(_))
        ));
        assert!(matches!(
            format!("{}@nowhere", id()).parse::<Endpoint>(),
            Err(EndpointError::Address(_))
        ));
    }

    #[test]
    fn config_resolves_paths_refuses_unknown_fields_and_names_bad_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        let good = format!(
            "keystore = \"v.keystore\"\ngenesis = \"/g.json\"\ndata_dir = \"data\"\n\
             listen = \"127.0.0.1:0\"\npeers = [\"{}@127.0.0.1:7001\"]\n[mempool]\nmax_txs = 10\n",
            id()
        );
        std::fs::write(&path, &good).unwrap();
        let c = NodeConfig::load(&path).unwrap();
        assert_eq!(c.keystore, dir.path().join("v.keystore"));
        assert_eq!(c.genesis, PathBuf::from("/g.json"));
        assert_eq!(c.mempool.max_txs, 10);
        assert_eq!(c.peers.len(), 1);
        assert_eq!(c.max_block_txs, DEFAULT_MAX_BLOCK_TXS);

        std::fs::write(&path, format!("{good}colour = 1\n")).unwrap();
        let e = NodeConfig::load(&path).unwrap_err();
        assert!(matches!(e, ConfigError::Parse { .. }), "{e}");

        std::fs::write(&path, good.replace("max_txs = 10", "max_txs = 0")).unwrap();
        let e = NodeConfig::load(&path).unwrap_err();
        assert_eq!(e.to_string(), "mempool.max_txs: must be above zero");

        std::fs::write(&path, good.replace("@127.0.0.1:7001", "")).unwrap();
        let e = NodeConfig::load(&path).unwrap_err();
        assert!(e.to_string().starts_with("peers[0]:"), "{e}");
    }
}
