//! `nodus validator …` (init, testnet, run) and, in [`chain`], `nodus chain …`.
//!
//! Passphrases never come from the command line: a `--passphrase-file`, then
//! `$NODUS_PASSPHRASE`. Test networks made by `nodus validator testnet` use
//! [`TESTNET_PASSPHRASE`] when `$NODUS_PASSPHRASE` is unset (the keystore format
//! refuses an empty passphrase, which would make its encryption decorative), and
//! `nodus chain` tries it last, so test keystores need no passphrase at all.

pub mod chain;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use nodus_identity::keystore::KdfParams;
use nodus_identity::{AccountId, Keystore, KeystoreError, Passphrase, SecretKey};
use serde::Serialize;

use crate::genesis::{Genesis, GenesisError, RawAccount, RawGenesis, RawParams, RawValidator};
use crate::node::config::{ConfigError, Endpoint, NodeConfig, RawBlocks, RawConfig, RawMempool};
use crate::node::{self, NodeError};
use crate::storage::DiskStore;

/// Environment variable holding a passphrase (shared with `nodus id`).
pub const PASSPHRASE_ENV: &str = "NODUS_PASSPHRASE";
/// The passphrase of test keystores when `$NODUS_PASSPHRASE` is unset. Public by
/// design: it protects nothing but test money.
pub const TESTNET_PASSPHRASE: &str = "nodus-testnet";
/// Default first port of a test network; validator `i` listens on `base + i`.
pub const DEFAULT_BASE_PORT: u16 = 26_600;
/// Default number of funded test accounts.
pub const DEFAULT_TEST_ACCOUNTS: usize = 4;
/// Balance of each test account: plenty for fees and transfers in benchmarks.
pub const TEST_ACCOUNT_BALANCE: u128 = 1_000_000_000_000_000;
/// Bonded stake of each test validator.
pub const TEST_VALIDATOR_STAKE: u128 = 1_000_000;

/// Subcommands of `nodus validator`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Create a validator key and config (and a one-validator genesis unless
    /// --genesis names one).
    Init {
        /// Directory to write keystore, config (and genesis) into.
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// UDP address to listen on.
        #[arg(long, default_value = "127.0.0.1:26600", value_name = "HOST:PORT")]
        listen: String,
        /// An existing genesis file to use.
        #[arg(long, value_name = "FILE")]
        genesis: Option<PathBuf>,
        /// Chain id of a new genesis.
        #[arg(long, default_value = "devnet")]
        chain_id: String,
        /// Read the keystore passphrase from this file (else $NODUS_PASSPHRASE).
        #[arg(long, value_name = "FILE")]
        passphrase_file: Option<PathBuf>,
    },
    /// Write a local test network: genesis, `D/validator-<i>/config.toml`, and
    /// funded test accounts in `D/accounts/`.
    Testnet {
        /// Number of validators.
        #[arg(long, default_value_t = 4)]
        validators: usize,
        /// Directory to create.
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// Number of funded test accounts.
        #[arg(long, default_value_t = DEFAULT_TEST_ACCOUNTS)]
        accounts: usize,
        /// Host the validators listen on.
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// Port of validator 0; the others follow.
        #[arg(long, default_value_t = DEFAULT_BASE_PORT)]
        base_port: u16,
        /// Chain id.
        #[arg(long, default_value = "testnet")]
        chain_id: String,
    },
    /// Run a validator until SIGTERM or SIGINT.
    Run {
        /// The config file.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
}

/// Errors of `nodus validator` and `nodus chain`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Bad config.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Bad genesis.
    #[error(transparent)]
    Genesis(#[from] GenesisError),
    /// Keystore trouble.
    #[error(transparent)]
    Keystore(#[from] KeystoreError),
    /// No passphrase source.
    #[error("No passphrase: pass --passphrase-file FILE or set NODUS_PASSPHRASE")]
    NoPassphrase,
    /// A file could not be read or written.
    #[error("{path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The target already exists; nothing is overwritten.
    #[error("{0} already exists")]
    Exists(PathBuf),
    /// Bad command-line value.
    #[error("{0}")]
    Usage(String),
    /// The node failed.
    #[error(transparent)]
    Node(#[from] NodeError),
    /// No consensus engine fits this validator set.
    #[error("{0}")]
    NoEngine(String),
    /// No endpoint answered.
    #[error("No endpoint reachable: {0}")]
    Unreachable(String),
    /// The chain refused or failed a request.
    #[error("{0}")]
    Refused(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_owned(),
        source,
    }
}

/// The passphrase from a file, else the environment.
pub fn passphrase(file: Option<&Path>) -> Result<Passphrase, Error> {
    if let Some(path) = file {
        let text = std::fs::read_to_string(path).map_err(io(path))?;
        return Ok(Passphrase::new(text.lines().next().unwrap_or_default()));
    }
    std::env::var(PASSPHRASE_ENV)
        .map(Passphrase::new)
        .map_err(|_| Error::NoPassphrase)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn write_new(path: &Path, text: &str) -> Result<(), Error> {
    if path.exists() {
        return Err(Error::Exists(path.to_owned()));
    }
    std::fs::write(path, text).map_err(io(path))
}

fn print_json<T: Serialize>(v: &T) {
    if let Ok(text) = serde_json::to_string_pretty(v) {
        println!("{text}");
    }
}

/// One validator of a written test network.
#[derive(Debug, Serialize)]
struct TestValidator {
    config: PathBuf,
    endpoint: String,
}

/// One funded test account.
#[derive(Debug, Serialize)]
struct TestAccount {
    keystore: PathBuf,
    id: String,
}

impl Command {
    /// Runs the command; `json` selects machine-readable output.
    pub fn run(self, json: bool) -> Result<(), Error> {
        match self {
            Command::Init {
                dir,
                listen,
                genesis,
                chain_id,
                passphrase_file,
            } => init(
                &dir,
                &listen,
                genesis,
                &chain_id,
                passphrase_file.as_deref(),
                json,
            ),
            Command::Testnet {
                validators,
                dir,
                accounts,
                host,
                base_port,
                chain_id,
            } => testnet(
                validators, &dir, accounts, &host, base_port, &chain_id, json,
            ),
            Command::Run { config } => run(&config, json),
        }
    }
}

fn raw_config(listen: String, peers: Vec<String>, passphrase_file: Option<PathBuf>) -> RawConfig {
    RawConfig {
        keystore: "validator.keystore".into(),
        passphrase_file,
        genesis: "../genesis.json".into(),
        data_dir: "data".into(),
        listen,
        peers,
        mempool: RawMempool::default(),
        blocks: RawBlocks::default(),
        consensus: crate::consensus::EngineConfig::default(),
    }
}

fn write_config(path: &Path, raw: &RawConfig) -> Result<(), Error> {
    let text = toml::to_string(raw).map_err(|e| Error::Usage(e.to_string()))?;
    write_new(path, &text)
}

fn init(
    dir: &Path,
    listen: &str,
    genesis: Option<PathBuf>,
    chain_id: &str,
    passphrase_file: Option<&Path>,
    json: bool,
) -> Result<(), Error> {
    let pass = passphrase(passphrase_file)?;
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let config_path = dir.join("config.toml");
    if config_path.exists() {
        return Err(Error::Exists(config_path));
    }
    let key = SecretKey::generate().map_err(|e| Error::Usage(e.to_string()))?;
    let id = AccountId::from(key.public());
    let genesis_path = match genesis {
        Some(g) => std::fs::canonicalize(&g).map_err(io(&g))?,
        None => {
            let raw = RawGenesis {
                chain_id: chain_id.to_owned(),
                genesis_time: unix_now(),
                params: RawParams::default(),
                accounts: Vec::new(),
                validators: vec![RawValidator {
                    id: id.to_string(),
                    stake: TEST_VALIDATOR_STAKE,
                }],
            };
            Genesis::try_from(raw.clone())?;
            let path = dir.join("genesis.json");
            let text =
                serde_json::to_string_pretty(&raw).map_err(|e| Error::Usage(e.to_string()))?;
            write_new(&path, &text)?;
            path
        }
    };
    Keystore::create(
        &dir.join("validator.keystore"),
        &key,
        &pass,
        KdfParams::DEFAULT,
    )?;
    let mut raw = raw_config(
        listen.to_owned(),
        Vec::new(),
        passphrase_file.map(Path::to_owned),
    );
    raw.genesis = genesis_path;
    write_config(&config_path, &raw)?;
    let endpoint = format!("{id}@{listen}");
    if json {
        print_json(&serde_json::json!({
            "config": config_path, "id": id.to_string(), "endpoint": endpoint,
        }));
    } else {
        println!(
            "validator {id}\nconfig    {}\nendpoint  {endpoint}",
            config_path.display()
        );
    }
    Ok(())
}

fn testnet(
    n: usize,
    dir: &Path,
    accounts: usize,
    host: &str,
    base_port: u16,
    chain_id: &str,
    json: bool,
) -> Result<(), Error> {
    if n == 0 || n > 100 {
        return Err(Error::Usage(
            "--validators must be between 1 and 100".into(),
        ));
    }
    let genesis_path = dir.join("genesis.json");
    if genesis_path.exists() {
        return Err(Error::Exists(genesis_path));
    }
    let from_env = std::env::var(PASSPHRASE_ENV).ok();
    let pass_text = from_env
        .clone()
        .unwrap_or_else(|| TESTNET_PASSPHRASE.to_owned());
    let pass = Passphrase::new(pass_text.clone());
    // The cheapest parameters keystores accept: test keys are opened often.
    let kdf = KdfParams::FLOOR;
    let keys: Vec<SecretKey> = (0..n)
        .map(|_| SecretKey::generate().map_err(|e| Error::Usage(e.to_string())))
        .collect::<Result<_, _>>()?;
    let endpoints: Vec<String> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let port = usize::from(base_port).saturating_add(i);
            format!("{}@{host}:{port}", AccountId::from(k.public()))
        })
        .collect();
    let account_keys: Vec<SecretKey> = (0..accounts)
        .map(|_| SecretKey::generate().map_err(|e| Error::Usage(e.to_string())))
        .collect::<Result<_, _>>()?;
    let raw = RawGenesis {
        chain_id: chain_id.to_owned(),
        genesis_time: unix_now(),
        params: RawParams::default(),
        accounts: account_keys
            .iter()
            .map(|k| RawAccount {
                id: AccountId::from(k.public()).to_string(),
                balance: TEST_ACCOUNT_BALANCE,
            })
            .collect(),
        validators: keys
            .iter()
            .map(|k| RawValidator {
                id: AccountId::from(k.public()).to_string(),
                stake: TEST_VALIDATOR_STAKE,
            })
            .collect(),
    };
    Genesis::try_from(raw.clone())?;
    std::fs::create_dir_all(dir.join("accounts")).map_err(io(dir))?;
    let text = serde_json::to_string_pretty(&raw).map_err(|e| Error::Usage(e.to_string()))?;
    write_new(&genesis_path, &text)?;
    let mut validators = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let vdir = dir.join(format!("validator-{i}"));
        std::fs::create_dir_all(&vdir).map_err(io(&vdir))?;
        Keystore::create(&vdir.join("validator.keystore"), key, &pass, kdf)?;
        let passphrase_file = if from_env.is_none() {
            let p = vdir.join("passphrase");
            write_new(&p, &format!("{pass_text}\n"))?;
            Some(PathBuf::from("passphrase"))
        } else {
            None
        };
        let peers = endpoints
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, e)| e.clone())
            .collect();
        let listen = endpoints
            .get(i)
            .and_then(|e| e.split_once('@'))
            .map(|(_, a)| a.to_owned())
            .unwrap_or_default();
        let config = vdir.join("config.toml");
        write_config(&config, &raw_config(listen, peers, passphrase_file))?;
        validators.push(TestValidator {
            config,
            endpoint: endpoints.get(i).cloned().unwrap_or_default(),
        });
    }
    let mut accts = Vec::new();
    for (j, key) in account_keys.iter().enumerate() {
        let path = dir.join("accounts").join(format!("account-{j}.keystore"));
        Keystore::create(&path, key, &pass, kdf)?;
        accts.push(TestAccount {
            keystore: path,
            id: AccountId::from(key.public()).to_string(),
        });
    }
    if json {
        print_json(&serde_json::json!({ "validators": validators, "accounts": accts }));
    } else {
        for v in &validators {
            println!("validator {}  {}", v.endpoint, v.config.display());
        }
        for a in &accts {
            println!("account   {}  {}", a.id, a.keystore.display());
        }
    }
    Ok(())
}

fn run(config_path: &Path, json: bool) -> Result<(), Error> {
    let config = NodeConfig::load(config_path)?;
    let pass = passphrase(config.passphrase_file.as_deref())?;
    let key = Keystore::open(&config.keystore, &pass)?;
    let genesis = Genesis::load(&config.genesis)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(io(config_path))?;
    rt.block_on(async move {
        std::fs::create_dir_all(&config.data_dir).map_err(io(&config.data_dir))?;
        let store = DiskStore::open(&config.data_dir.join("chain.redb"))
            .map_err(|e| NodeError::Engine(e.into()))?;
        let mut handle = node::start(key, genesis, &config, store).await?;
        let endpoint: Endpoint = handle.endpoint();
        let height = handle.head().borrow().height;
        if json {
            print_json(&serde_json::json!({
                "ready": true, "endpoint": endpoint.to_string(), "height": height,
            }));
        } else {
            println!("ready {endpoint} height {height}");
        }
        let _ = std::io::stdout().flush();
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(io(config_path))?;
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
            _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: shutting down"),
            r = handle.wait() => return r.map_err(Error::from),
        }
        handle.shutdown().await?;
        Ok(())
    })
}
