//! The daemon's configuration, in two stages: [`RawConfig`] is the TOML file as
//! written (every field optional, unknown fields refused), [`Config`] is the
//! validated runtime form.
//!
//! Three sources fill it, strongest first: command-line flags ([`Overrides`]), the
//! kernel command line's `nodus.*` parameters ([`KernelParams`], read only when the
//! agent was booted over the network: it is PID 1 or was started by the `nodus`
//! init with `NODUS_INIT=1`), then the file. Whatever none of them sets takes the
//! named default below, which depends on whether the node was booted (managed,
//! listening on every address) or the agent was started by hand on an ordinary
//! host (observe, loopback only).

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    str::FromStr,
};

use nodus_identity::{AccountId, PublicKey};
use serde::Deserialize;

use crate::{
    api::dbus::BusChoice,
    health::{HealthConfig, HealthConfigRaw},
    inventory::Mode,
    telemetry::{TelemetryConfig, TelemetryConfigRaw},
};

/// QUIC port of the console protocol when none is configured.
pub const DEFAULT_PORT: u16 = 7447;
/// Listen address when started by hand: loopback, so a developer's agent is not
/// reachable from the network unless they ask for it.
pub const DEFAULT_LISTEN_BY_HAND: &str = "127.0.0.1:7447";
/// Listen address on a booted node: every address, since the console is remote.
pub const DEFAULT_LISTEN_BOOTED: &str = "0.0.0.0:7447";
/// The Unix socket of the local console.
pub const DEFAULT_SOCKET: &str = "/run/nodus/agent.sock";
/// Persistent state (node key, grants, audit log, probe results) when running as
/// root: the FHS place for a daemon's state.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/nodus";
/// Group whose members get the operator role on the Unix socket.
pub const DEFAULT_SOCKET_GROUP: &str = "nodus";
/// Seconds between full inventory passes. Telemetry samples every second; the
/// inventory (sysfs walk, SMART) is heavier and changes rarely, and link or disk
/// events trigger a pass early.
pub const DEFAULT_INVENTORY_INTERVAL_S: u64 = 10;
/// Shortest allowed inventory interval: below this a SMART-heavy machine would
/// spend its time in smartctl.
const MIN_INVENTORY_INTERVAL_S: u64 = 1;
/// Environment variable the `nodus` init sets for the agent it starts.
pub const INIT_ENV: &str = "NODUS_INIT";
/// Environment variable naming another file to read instead of `/proc/cmdline`
/// (tests, and hosts that pass parameters some other way).
pub const CMDLINE_ENV: &str = "NODUS_CMDLINE";

/// How power actions are carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PowerBackend {
    /// logind over the system bus when it runs, otherwise sync + reboot(2).
    System,
    /// Nothing happens to the machine: the action is audited and reported as
    /// done. For tests and demos on a developer's machine; never the default.
    Simulated,
}

/// The TOML file as written.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// `observe` or `managed`.
    pub mode: Option<Mode>,
    /// QUIC listen address, `ADDR:PORT`.
    pub listen: Option<String>,
    /// Unix socket path; `""` or `none` disables the socket.
    pub socket: Option<PathBuf>,
    /// Group whose members are operators on the socket (default `nodus`; ignored
    /// when the group does not exist: then only root is).
    pub socket_group: Option<String>,
    /// D-Bus: `system`, `none`, or a bus address (`unix:path=…`).
    pub dbus: Option<String>,
    /// The node key's keystore; created on first start.
    pub key: Option<PathBuf>,
    /// The owner's account (`acct1…`): full rights, and the signer grants must
    /// carry.
    pub owner: Option<String>,
    /// Read the hardware under this directory instead of `/`.
    pub root: Option<PathBuf>,
    /// Persistent state directory.
    pub state_dir: Option<PathBuf>,
    /// The network (chain id) grants and statements are checked against.
    pub network: Option<String>,
    /// The farm this node belongs to.
    pub farm: Option<u64>,
    /// Seconds between inventory passes.
    pub inventory_interval_s: Option<u64>,
    /// `system` or `simulated`.
    pub power_backend: Option<PowerBackend>,
    /// Where identify writes its banner and bell (a tty such as `/dev/tty0`).
    /// Unset by hand; `/dev/tty0` on a booted node.
    pub identify_tty: Option<PathBuf>,
    /// Validators of the chain, `<ValidatorId>@host:port`; none: no chain client.
    pub chain: Option<Vec<String>>,
    /// The farmer's signed approval file for registering this node
    /// (`nodus chain tx approve-node --out F`).
    pub chain_approval: Option<PathBuf>,
    /// Fee offered per chain transaction, base units.
    pub chain_fee: Option<u128>,
    /// Seconds between signed uptime reports.
    pub uptime_report_s: Option<u64>,
    /// Telemetry sampling and history.
    pub telemetry: Option<TelemetryConfigRaw>,
    /// Health thresholds and overrides.
    pub health: Option<HealthConfigRaw>,
}

/// Settings from command-line flags; each one beats the file and the kernel
/// command line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `--mode`.
    pub mode: Option<Mode>,
    /// `--listen`.
    pub listen: Option<String>,
    /// `--socket`.
    pub socket: Option<PathBuf>,
    /// `--dbus-address`.
    pub dbus: Option<String>,
    /// `--key`.
    pub key: Option<PathBuf>,
    /// `--owner`.
    pub owner: Option<String>,
    /// `--root`.
    pub root: Option<PathBuf>,
    /// `--state-dir`.
    pub state_dir: Option<PathBuf>,
}

/// The `nodus.*` parameters of a kernel command line that the agent reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KernelParams {
    /// `nodus.owner=`.
    pub owner: Option<String>,
    /// `nodus.mode=`.
    pub mode: Option<String>,
    /// `nodus.listen=`.
    pub listen: Option<String>,
    /// `nodus.farm=`.
    pub farm: Option<String>,
    /// `nodus.chain=` (comma-separated endpoints; kept for the chain client).
    pub chain: Vec<String>,
}

impl KernelParams {
    /// Picks the agent's parameters out of a kernel command line. Other
    /// parameters (the kernel's own, and `nodus.*` keys the init reads) are
    /// ignored; quoting follows the kernel's rule (double quotes group spaces).
    pub fn parse(cmdline: &str) -> Self {
        let mut out = Self::default();
        for word in split_cmdline(cmdline) {
            let Some((key, value)) = word.split_once('=') else {
                continue;
            };
            let value = value.to_owned();
            match key {
                "nodus.owner" => out.owner = Some(value),
                "nodus.mode" => out.mode = Some(value),
                "nodus.listen" => out.listen = Some(value),
                "nodus.farm" => out.farm = Some(value),
                "nodus.chain" => {
                    out.chain = value
                        .split(',')
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect();
                }
                _ => {}
            }
        }
        out
    }
}

/// Splits a kernel command line into words, honouring double quotes the way the
/// kernel's `next_arg` does (quotes group, and are removed).
fn split_cmdline(s: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in s.chars() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => {
                if !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    words
}

/// Whether this process was booted as a node: PID 1, or started by the init.
pub fn booted() -> bool {
    std::process::id() == 1 || std::env::var_os(INIT_ENV).is_some_and(|v| v == "1")
}

/// Reads the kernel command line's agent parameters when [`booted`]; otherwise
/// (a developer's host) none, so a stray `nodus.owner` on a workstation's kernel
/// line never changes who owns a hand-started agent.
pub fn kernel_params() -> Result<KernelParams, ConfigError> {
    if !booted() {
        return Ok(KernelParams::default());
    }
    let path = std::env::var_os(CMDLINE_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/proc/cmdline"));
    let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
        path: path.clone(),
        source,
    })?;
    Ok(KernelParams::parse(&text))
}

/// A bad configuration value; the message names the field and where it came
/// from.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A file could not be read.
    #[error("Cannot read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML of the expected shape (unknown keys included).
    #[error("Config file {path} is invalid")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the parser said (it names the key and line).
        #[source]
        source: toml::de::Error,
    },
    /// One field has a bad value.
    #[error("{field} = {value:?}: {why}")]
    Field {
        /// The field, spelled as in its source (`listen`, `nodus.owner`, `--owner`).
        field: String,
        /// The value given.
        value: String,
        /// What is wrong with it.
        why: String,
    },
    /// The `[telemetry]` section is invalid.
    #[error("[telemetry] is invalid")]
    Telemetry(#[source] crate::telemetry::ConfigError),
    /// The `[health]` section is invalid.
    #[error("[health] is invalid")]
    Health(#[source] crate::health::config::HealthConfigError),
}

/// The validated configuration the daemon runs with.
#[derive(Debug, Clone)]
pub struct Config {
    /// Observe or managed.
    pub mode: Mode,
    /// QUIC listen address.
    pub listen: SocketAddr,
    /// Unix socket path; `None` disables it.
    pub socket: Option<PathBuf>,
    /// Operator group on the socket.
    pub socket_group: String,
    /// Which D-Bus to serve on.
    pub dbus: BusChoice,
    /// Node keystore path.
    pub key: PathBuf,
    /// The owner key, when configured. Without one only the Unix socket (and
    /// nothing remote) can act: no grant can verify.
    pub owner: Option<PublicKey>,
    /// Hardware root; `None` is the live host.
    pub root: Option<PathBuf>,
    /// State directory.
    pub state_dir: PathBuf,
    /// Network id for statements.
    pub network: String,
    /// Farm id.
    pub farm: Option<u64>,
    /// The chain client's settings; `None` without validators.
    pub chain: Option<crate::chain::ChainConfig>,
    /// Seconds between inventory passes.
    pub inventory_interval_s: u64,
    /// How power actions are carried out.
    pub power_backend: PowerBackend,
    /// Identify's tty.
    pub identify_tty: Option<PathBuf>,
    /// Telemetry.
    pub telemetry: TelemetryConfig,
    /// Health.
    pub health: HealthConfig,
    /// Whether the node was booted by the `nodus` init.
    pub booted: bool,
}

/// Reads and parses a config file.
pub fn load_file(path: &Path) -> Result<RawConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    toml::from_str(&text).map_err(|source| ConfigError::Parse {
        path: path.to_owned(),
        source,
    })
}

fn field(field: &str, value: &str, why: impl Into<String>) -> ConfigError {
    ConfigError::Field {
        field: field.to_owned(),
        value: value.to_owned(),
        why: why.into(),
    }
}

fn parse_mode(name: &str, v: &str) -> Result<Mode, ConfigError> {
    match v {
        "observe" => Ok(Mode::Observe),
        "managed" => Ok(Mode::Managed),
        _ => Err(field(name, v, "expected observe or managed")),
    }
}

fn parse_owner(name: &str, v: &str) -> Result<PublicKey, ConfigError> {
    AccountId::from_str(v.trim())
        .map(|a| *a.key())
        .map_err(|e| field(name, v, e.to_string()))
}

fn parse_listen(name: &str, v: &str) -> Result<SocketAddr, ConfigError> {
    SocketAddr::from_str(v.trim()).map_err(|_| {
        field(
            name,
            v,
            "expected ADDR:PORT, e.g. 0.0.0.0:7447 or [::1]:7447",
        )
    })
}

/// The state directory when nothing sets one: [`DEFAULT_STATE_DIR`] for root,
/// otherwise `$XDG_STATE_HOME/nodus` (or `~/.local/state/nodus`), so an
/// unprivileged developer's agent still has somewhere to keep its key.
fn default_state_dir() -> PathBuf {
    if nix::unistd::Uid::effective().is_root() {
        return PathBuf::from(DEFAULT_STATE_DIR);
    }
    if let Some(x) = std::env::var_os("XDG_STATE_HOME") {
        return PathBuf::from(x).join("nodus");
    }
    match std::env::var_os("HOME") {
        Some(h) => PathBuf::from(h).join(".local/state/nodus"),
        None => PathBuf::from(DEFAULT_STATE_DIR),
    }
}

/// The chain settings of the file.
struct FileChain {
    endpoints: Vec<String>,
    approval: Option<PathBuf>,
    fee: Option<u128>,
    report_s: Option<u64>,
}

/// Builds the chain client's config: endpoints from the kernel command line win
/// over the file's.
fn chain_config(
    kernel: &KernelParams,
    file: &FileChain,
    owner: Option<PublicKey>,
) -> Result<Option<crate::chain::ChainConfig>, ConfigError> {
    let (name, list) = if kernel.chain.is_empty() {
        ("chain", &file.endpoints)
    } else {
        ("nodus.chain", &kernel.chain)
    };
    if list.is_empty() {
        return Ok(None);
    }
    let endpoints = list
        .iter()
        .map(|e| {
            e.parse::<nodus_validator::node::config::Endpoint>()
                .map_err(|err| field(name, e, err.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let report_s = file
        .report_s
        .unwrap_or(crate::chain::DEFAULT_REPORT_EVERY_S);
    if report_s == 0 {
        return Err(field("uptime_report_s", "0", "must be at least 1"));
    }
    Ok(Some(crate::chain::ChainConfig {
        endpoints,
        owner,
        approval: file.approval.clone(),
        fee: file
            .fee
            .unwrap_or(nodus_validator::genesis::DEFAULT_MIN_FEE),
        report_every: std::time::Duration::from_secs(report_s),
        watch_every: std::time::Duration::from_secs(
            crate::chain::DEFAULT_WATCH_EVERY_S.min(report_s),
        ),
    }))
}

impl Config {
    /// Merges the three sources (flags, kernel command line, file) and validates
    /// the result. `booted` selects the defaults.
    pub fn resolve(
        file: RawConfig,
        kernel: KernelParams,
        flags: Overrides,
        booted: bool,
    ) -> Result<Self, ConfigError> {
        let mode = match (flags.mode, &kernel.mode, file.mode) {
            (Some(m), _, _) => m,
            (None, Some(m), _) => parse_mode("nodus.mode", m)?,
            (None, None, Some(m)) => m,
            (None, None, None) if booted => Mode::Managed,
            (None, None, None) => Mode::Observe,
        };
        let listen = match (&flags.listen, &kernel.listen, &file.listen) {
            (Some(v), _, _) => parse_listen("--listen", v)?,
            (None, Some(v), _) => parse_listen("nodus.listen", v)?,
            (None, None, Some(v)) => parse_listen("listen", v)?,
            (None, None, None) if booted => parse_listen("listen", DEFAULT_LISTEN_BOOTED)?,
            (None, None, None) => parse_listen("listen", DEFAULT_LISTEN_BY_HAND)?,
        };
        let owner = match (&flags.owner, &kernel.owner, &file.owner) {
            (Some(v), _, _) => Some(parse_owner("--owner", v)?),
            (None, Some(v), _) => Some(parse_owner("nodus.owner", v)?),
            (None, None, Some(v)) => Some(parse_owner("owner", v)?),
            (None, None, None) => None,
        };
        let farm = match (&kernel.farm, file.farm) {
            (Some(v), _) => Some(
                v.parse::<u64>()
                    .map_err(|_| field("nodus.farm", v, "expected a farm number"))?,
            ),
            (None, f) => f,
        };
        let socket = flags
            .socket
            .or(file.socket)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET));
        // `none` (flag or file) or `""` (file) turns the socket off.
        let socket =
            (!socket.as_os_str().is_empty() && socket.as_os_str() != "none").then_some(socket);
        let dbus_text = flags
            .dbus
            .or(file.dbus)
            .unwrap_or_else(|| "system".to_owned());
        let dbus = BusChoice::from_str(&dbus_text)
            .map_err(|e| field("dbus", &dbus_text, e.to_string()))?;
        let state_dir = flags
            .state_dir
            .or(file.state_dir)
            .unwrap_or_else(default_state_dir);
        let key = flags
            .key
            .or(file.key)
            .unwrap_or_else(|| state_dir.join("node.key"));
        let inventory_interval_s = file
            .inventory_interval_s
            .unwrap_or(DEFAULT_INVENTORY_INTERVAL_S);
        if inventory_interval_s < MIN_INVENTORY_INTERVAL_S {
            return Err(field(
                "inventory_interval_s",
                &inventory_interval_s.to_string(),
                format!("must be at least {MIN_INVENTORY_INTERVAL_S}"),
            ));
        }
        let network = file
            .network
            .unwrap_or_else(|| nodus_identity::DEFAULT_NETWORK.to_owned());
        if network.is_empty() || network.len() > 64 {
            return Err(field("network", &network, "must be 1 to 64 characters"));
        }
        let file_chain = FileChain {
            endpoints: file.chain.clone().unwrap_or_default(),
            approval: file.chain_approval.clone(),
            fee: file.chain_fee,
            report_s: file.uptime_report_s,
        };
        let telemetry = TelemetryConfig::try_from(file.telemetry.unwrap_or_default())
            .map_err(ConfigError::Telemetry)?;
        let health =
            HealthConfig::try_from(file.health.unwrap_or_default()).map_err(ConfigError::Health)?;
        Ok(Self {
            mode,
            listen,
            socket,
            socket_group: file
                .socket_group
                .unwrap_or_else(|| DEFAULT_SOCKET_GROUP.to_owned()),
            dbus,
            key,
            owner,
            root: flags.root.or(file.root),
            state_dir,
            network,
            farm,
            chain: chain_config(&kernel, &file_chain, owner)?,
            inventory_interval_s,
            power_backend: file.power_backend.unwrap_or(PowerBackend::System),
            identify_tty: file
                .identify_tty
                .or_else(|| booted.then(|| PathBuf::from("/dev/tty0"))),
            telemetry,
            health,
            booted,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWNER: &str = "acct1";

    fn owner_text() -> String {
        AccountId::from(nodus_identity::SecretKey::from_seed(&[9; 32]).public()).to_string()
    }

    #[test]
    fn kernel_params_pick_only_nodus_keys_and_honour_quotes() {
        let p = KernelParams::parse(
            "BOOT_IMAGE=/vmlinuz console=ttyS0 nodus.owner=acct1x \"nodus.listen=[::]:7447\" \
             nodus.chain=a@h:1,b@h:2 nodus.boot_key=zzz nodus.farm=7",
        );
        assert_eq!(p.owner.as_deref(), Some("acct1x"));
        assert_eq!(p.listen.as_deref(), Some("[::]:7447"));
        assert_eq!(p.chain, ["a@h:1", "b@h:2"]);
        assert_eq!(p.farm.as_deref(), Some("7"));
        assert_eq!(p.mode, None);
    }

    #[test]
    fn flags_beat_kernel_beat_file_and_defaults_follow_boot() {
        let file: RawConfig = toml::from_str(
            "mode = \"managed\"\nlisten = \"127.0.0.1:1\"\nsocket = \"\"\ndbus = \"none\"",
        )
        .unwrap();
        let kernel = KernelParams {
            listen: Some("127.0.0.1:2".into()),
            ..KernelParams::default()
        };
        let flags = Overrides {
            mode: Some(Mode::Observe),
            ..Overrides::default()
        };
        let c = Config::resolve(file.clone(), kernel, flags, false).unwrap();
        assert_eq!(c.mode, Mode::Observe);
        assert_eq!(c.listen.port(), 2);
        assert_eq!(c.socket, None);
        let none = Overrides {
            socket: Some(PathBuf::from("none")),
            ..Overrides::default()
        };
        let c =
            Config::resolve(RawConfig::default(), KernelParams::default(), none, false).unwrap();
        assert_eq!(c.socket, None);
        let c = Config::resolve(
            RawConfig::default(),
            KernelParams::default(),
            Overrides::default(),
            true,
        )
        .unwrap();
        assert_eq!(c.mode, Mode::Managed);
        assert_eq!(c.listen.to_string(), DEFAULT_LISTEN_BOOTED);
        assert_eq!(c.identify_tty.as_deref(), Some(Path::new("/dev/tty0")));
        let c = Config::resolve(
            RawConfig::default(),
            KernelParams::default(),
            Overrides::default(),
            false,
        )
        .unwrap();
        assert_eq!(c.mode, Mode::Observe);
        assert_eq!(c.listen.to_string(), DEFAULT_LISTEN_BY_HAND);
        assert_eq!(c.power_backend, PowerBackend::System);
    }

    #[test]
    fn bad_values_name_their_field() {
        let err = |file: &str, kernel: KernelParams, flags: Overrides| {
            let raw: RawConfig = toml::from_str(file).unwrap();
            Config::resolve(raw, kernel, flags, false)
                .unwrap_err()
                .to_string()
        };
        let e = err(
            "",
            KernelParams {
                owner: Some(OWNER.into()),
                ..KernelParams::default()
            },
            Overrides::default(),
        );
        assert!(e.starts_with("nodus.owner = \"acct1\""), "{e}");
        let e = err(
            "listen = \"nowhere\"",
            KernelParams::default(),
            Overrides::default(),
        );
        assert!(e.starts_with("listen = \"nowhere\""), "{e}");
        let e = err(
            "inventory_interval_s = 0",
            KernelParams::default(),
            Overrides::default(),
        );
        assert!(e.contains("inventory_interval_s"), "{e}");
        let e = err(
            "",
            KernelParams {
                mode: Some("chaos".into()),
                ..KernelParams::default()
            },
            Overrides::default(),
        );
        assert!(e.contains("nodus.mode"), "{e}");
        let ok = Config::resolve(
            RawConfig::default(),
            KernelParams::default(),
            Overrides {
                owner: Some(owner_text()),
                ..Overrides::default()
            },
            false,
        )
        .unwrap();
        assert!(ok.owner.is_some());
    }

    #[test]
    fn unknown_keys_are_refused_by_name() {
        let e = toml::from_str::<RawConfig>("colour = \"blue\"").unwrap_err();
        assert!(e.to_string().contains("colour"), "{e}");
    }
}
