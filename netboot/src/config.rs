//! `nodus netboot serve` configuration: a TOML file ([`RawConfig`], unknown fields
//! refused), overridden by command-line flags, validated into [`Settings`]. Bad
//! values fail at start and name their field.

use std::{
    collections::BTreeMap,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    path::{Path, PathBuf},
    time::Duration,
};

use serde::Deserialize;

use crate::{
    dhcp::{self, Addressing, BootTable, Pool},
    http::{Machine, Scripts, script::normalise_id},
    tftp::Limits,
};

/// Where state (leases, boot-event log) lives when not configured: the usual place
/// for a daemon's variable state.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/nodus/netboot";
/// Where Debian's `ipxe` package puts `undionly.kpxe`, `ipxe.efi` and `snponly.efi`.
pub const DEFAULT_TFTP_ROOT: &str = "/usr/lib/ipxe";
/// HTTP listen address: all interfaces, an unprivileged port.
pub const DEFAULT_HTTP: &str = "0.0.0.0:8080";
/// iPXE for legacy BIOS: the UNDI build, which uses the ROM's own NIC driver.
pub const DEFAULT_BIOS_FILE: &str = "undionly.kpxe";
/// iPXE for x86-64 UEFI, with its own NIC drivers.
pub const DEFAULT_UEFI_FILE: &str = "ipxe.efi";
/// Our iPXE user class; any iPXE that sends it (or `iPXE`) gets its script.
pub const DEFAULT_USER_CLASS: &str = "nodus";
/// Chain id manifests are signed for when none is configured.
pub const DEFAULT_NETWORK: &str = "nodus-devnet";
/// One hour: long enough that renewals are rare, short enough that a machine
/// removed from the farm frees its address the same day.
pub const DEFAULT_LEASE_SECS: u32 = 3600;
/// Standard TFTP port.
pub const DEFAULT_TFTP_PORT: u16 = 69;
/// DHCP retries in the iPXE script (one second apart at most in iPXE's backoff).
pub const DEFAULT_DHCP_RETRIES: u32 = 30;

/// How the DHCP side runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ModeName {
    /// Full DHCP server with a pool.
    Dhcp,
    /// proxyDHCP: the router keeps addressing.
    Proxy,
}

/// The configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Network interface to serve on (DHCP sockets are bound to it).
    pub interface: Option<String>,
    /// `dhcp` or `proxy`.
    pub mode: Option<ModeName>,
    /// Our IPv4 address on the segment; defaults to the interface's first address.
    pub address: Option<Ipv4Addr>,
    /// Directory for leases and the boot-event log.
    pub state_dir: Option<PathBuf>,
    /// Directory served over TFTP (the iPXE binaries).
    pub tftp_root: Option<PathBuf>,
    /// Image directory holding `vmlinuz`, `initramfs` and `manifest`.
    pub image: Option<PathBuf>,
    /// HTTP listen address, `ADDR:PORT`.
    pub http: Option<SocketAddr>,
    /// The HTTP base URL machines use; defaults to `http://{address}:{port}`.
    pub http_url: Option<String>,
    /// The farm id put on every kernel command line: the chain's farm number.
    pub farm: Option<String>,
    /// The chain id (network) manifests are signed for.
    pub network: Option<String>,
    /// Chain endpoints, `HOST:PORT`, put on the kernel command line.
    #[serde(default)]
    pub chain: Vec<String>,
    /// Extra kernel arguments for every machine.
    pub kernel_args: Option<String>,
    /// The netboot public key (`acct1…`) that must have signed the image manifest.
    pub public_key: Option<String>,
    /// TFTP file for legacy BIOS clients.
    pub bios_file: Option<String>,
    /// TFTP file for x86-64 UEFI clients (`ipxe.efi` or `snponly.efi`).
    pub uefi_file: Option<String>,
    /// Our own iPXE user class.
    pub user_class: Option<String>,
    /// Other DHCP servers that are expected on the segment (no warning for them).
    #[serde(default)]
    pub known_dhcp_servers: Vec<Ipv4Addr>,
    /// Full-DHCP settings.
    #[serde(default)]
    pub dhcp: RawDhcp,
    /// TFTP settings.
    #[serde(default)]
    pub tftp: RawTftp,
    /// Per-machine settings.
    #[serde(default, rename = "machine")]
    pub machines: Vec<RawMachine>,
}

/// `[dhcp]`: used in `dhcp` mode.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDhcp {
    /// The pool, `FIRST-LAST`.
    pub range: Option<String>,
    /// Subnet mask handed out (default 255.255.255.0).
    pub netmask: Option<Ipv4Addr>,
    /// Default gateway handed out.
    pub router: Option<Ipv4Addr>,
    /// DNS servers handed out.
    #[serde(default)]
    pub dns: Vec<Ipv4Addr>,
    /// Lease time in seconds.
    pub lease_secs: Option<u32>,
    /// Fixed addresses.
    #[serde(default, rename = "reservation")]
    pub reservations: Vec<RawReservation>,
}

/// `[[dhcp.reservation]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawReservation {
    /// The machine's MAC.
    pub mac: String,
    /// Its address.
    pub ip: Ipv4Addr,
}

/// `[tftp]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTftp {
    /// UDP port (default 69).
    pub port: Option<u16>,
    /// Largest block size granted (default 1468, one Ethernet frame).
    pub max_blksize: Option<u16>,
    /// Largest window size granted (default 64).
    pub max_windowsize: Option<u16>,
}

/// `[[machine]]`: one machine, by MAC or UUID.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMachine {
    /// Its MAC.
    pub mac: Option<String>,
    /// Its SMBIOS UUID.
    pub uuid: Option<String>,
    /// Extra kernel arguments (node arguments) for it.
    #[serde(default)]
    pub args: String,
}

/// A configuration error, naming the field.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("Cannot read config {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML for this schema.
    #[error("Config {path} is invalid")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: toml::de::Error,
    },
    /// A field has a bad value.
    #[error("Config field `{field}`: {reason}")]
    Field {
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
}

fn field(field: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Field {
        field,
        reason: reason.into(),
    }
}

/// Validated settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Interface to bind DHCP to.
    pub interface: Option<String>,
    /// Our address.
    pub address: Ipv4Addr,
    /// DHCP mode with its addressing.
    pub mode: dhcp::Mode,
    /// State directory.
    pub state_dir: PathBuf,
    /// TFTP root.
    pub tftp_root: PathBuf,
    /// TFTP port.
    pub tftp_port: u16,
    /// TFTP limits.
    pub tftp_limits: Limits,
    /// Image directory.
    pub image: Option<PathBuf>,
    /// HTTP listen address.
    pub http: SocketAddr,
    /// Boot-file table.
    pub boot: BootTable,
    /// Script settings.
    pub scripts: Scripts,
    /// The key the manifest must be signed by, if pinned.
    pub public_key: Option<nodus_identity::PublicKey>,
    /// Expected other DHCP servers.
    pub known_dhcp_servers: Vec<Ipv4Addr>,
}

impl RawConfig {
    /// Reads a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source,
        })
    }

    /// Validates into settings. `interface_address` looks up an interface's first
    /// IPv4 address (a parameter so tests need no real interface).
    pub fn validate(
        self,
        interface_address: impl Fn(&str) -> Option<Ipv4Addr>,
    ) -> Result<Settings, ConfigError> {
        let address = match (self.address, &self.interface) {
            (Some(a), _) => a,
            (None, Some(i)) => interface_address(i)
                .ok_or_else(|| field("address", format!("interface {i} has no IPv4 address")))?,
            (None, None) => return Err(field("address", "set it, or set `interface`")),
        };
        let http = match self.http {
            Some(h) => h,
            None => DEFAULT_HTTP
                .parse()
                .map_err(|_| field("http", "bad default"))?,
        };
        let http_url = match self.http_url {
            Some(u) => {
                if !u.starts_with("http://") || u.contains(char::is_whitespace) {
                    return Err(field("http_url", "must be an http:// URL without spaces"));
                }
                u.trim_end_matches('/').to_owned()
            }
            None => {
                let host = match http.ip() {
                    IpAddr::V4(v) if !v.is_unspecified() => v,
                    _ => address,
                };
                format!("http://{host}:{}", http.port())
            }
        };
        let farm = self
            .farm
            .ok_or_else(|| field("farm", "required: the farm id booted machines join"))?;
        check_token("farm", &farm)?;
        // The agent joins the chain's farm by its number (`nodus.farm=`); a name
        // here would boot every machine into an agent that refuses its config.
        if farm.parse::<u64>().is_err() {
            return Err(field(
                "farm",
                format!("{farm:?} is not a farm number (the chain's farm id, e.g. 7)"),
            ));
        }
        let network = self.network.unwrap_or_else(|| DEFAULT_NETWORK.to_owned());
        check_token("network", &network)?;
        for c in &self.chain {
            check_token("chain", c)?;
        }
        let kernel_args = self.kernel_args.unwrap_or_default();
        check_args("kernel_args", &kernel_args)?;
        let public_key = match self.public_key {
            Some(k) => Some(
                *k.parse::<nodus_identity::AccountId>()
                    .map_err(|e| field("public_key", e.to_string()))?
                    .key(),
            ),
            None => None,
        };
        let mut machines = BTreeMap::new();
        for m in self.machines {
            check_args("machine.args", &m.args)?;
            let ids: Vec<&String> = m.mac.iter().chain(m.uuid.iter()).collect();
            if ids.is_empty() {
                return Err(field("machine", "needs `mac` or `uuid`"));
            }
            for id in ids {
                let n = normalise_id(id)
                    .ok_or_else(|| field("machine.mac", format!("{id:?} is not a MAC or UUID")))?;
                machines.insert(
                    n,
                    Machine {
                        args: m.args.clone(),
                    },
                );
            }
        }
        let mode = match self.mode.unwrap_or(ModeName::Proxy) {
            ModeName::Proxy => dhcp::Mode::Proxy,
            ModeName::Dhcp => dhcp::Mode::Dhcp(addressing(self.dhcp)?),
        };
        let user_class = self
            .user_class
            .unwrap_or_else(|| DEFAULT_USER_CLASS.to_owned());
        let boot = BootTable {
            bios: self
                .bios_file
                .unwrap_or_else(|| DEFAULT_BIOS_FILE.to_owned()),
            uefi: self
                .uefi_file
                .unwrap_or_else(|| DEFAULT_UEFI_FILE.to_owned()),
            http_base: http_url.clone(),
            user_class,
        };
        check_token("bios_file", &boot.bios)?;
        check_token("uefi_file", &boot.uefi)?;
        let defaults = Limits::default();
        let tftp_limits = Limits {
            max_blksize: self.tftp.max_blksize.unwrap_or(defaults.max_blksize),
            max_windowsize: self.tftp.max_windowsize.unwrap_or(defaults.max_windowsize),
            timeout: Duration::from_secs(1),
            max_retries: defaults.max_retries,
        };
        if !(8..=65464).contains(&tftp_limits.max_blksize) {
            return Err(field("tftp.max_blksize", "must be 8..=65464"));
        }
        if tftp_limits.max_windowsize == 0 {
            return Err(field("tftp.max_windowsize", "must be at least 1"));
        }
        Ok(Settings {
            interface: self.interface,
            address,
            mode,
            state_dir: self
                .state_dir
                .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR)),
            tftp_root: self
                .tftp_root
                .unwrap_or_else(|| PathBuf::from(DEFAULT_TFTP_ROOT)),
            tftp_port: self.tftp.port.unwrap_or(DEFAULT_TFTP_PORT),
            tftp_limits,
            image: self.image,
            http,
            boot,
            scripts: Scripts {
                base_url: http_url,
                farm,
                network,
                chain: self.chain,
                public_key: None,
                kernel_args,
                machines,
                dhcp_retries: DEFAULT_DHCP_RETRIES,
            },
            public_key,
            known_dhcp_servers: self.known_dhcp_servers,
        })
    }
}

fn addressing(d: RawDhcp) -> Result<Addressing, ConfigError> {
    let range = d
        .range
        .ok_or_else(|| field("dhcp.range", "required in dhcp mode, FIRST-LAST"))?;
    let (first, last) = parse_range(&range).map_err(|r| field("dhcp.range", r))?;
    let mut reservations = BTreeMap::new();
    for r in d.reservations {
        let mac = normalise_id(&r.mac)
            .filter(|m| m.len() == 17)
            .ok_or_else(|| field("dhcp.reservation.mac", format!("{:?} is not a MAC", r.mac)))?;
        reservations.insert(mac, r.ip);
    }
    let lease_secs = d.lease_secs.unwrap_or(DEFAULT_LEASE_SECS);
    if lease_secs < 60 {
        return Err(field("dhcp.lease_secs", "must be at least 60"));
    }
    Ok(Addressing {
        pool: Pool {
            first,
            last,
            reservations,
        },
        netmask: d.netmask.unwrap_or(Ipv4Addr::new(255, 255, 255, 0)),
        router: d.router,
        dns: d.dns,
        lease_secs,
    })
}

/// `10.0.0.100-10.0.0.200` → the two ends.
pub fn parse_range(s: &str) -> Result<(Ipv4Addr, Ipv4Addr), String> {
    let (a, b) = s
        .split_once('-')
        .ok_or_else(|| format!("{s:?} is not FIRST-LAST"))?;
    let a: Ipv4Addr = a
        .trim()
        .parse()
        .map_err(|_| format!("{a:?} is not an IPv4 address"))?;
    let b: Ipv4Addr = b
        .trim()
        .parse()
        .map_err(|_| format!("{b:?} is not an IPv4 address"))?;
    if a > b {
        return Err(format!("{a} comes after {b}"));
    }
    Ok((a, b))
}

/// A value that goes onto the kernel command line or into a URL as one word.
fn check_token(name: &'static str, v: &str) -> Result<(), ConfigError> {
    if v.is_empty() || v.len() > 200 {
        return Err(field(name, "must be 1 to 200 characters"));
    }
    check_args(name, v)?;
    if v.contains(char::is_whitespace) {
        return Err(field(name, "must not contain spaces"));
    }
    Ok(())
}

/// Kernel arguments: printable ASCII, nothing iPXE would expand or split on.
fn check_args(name: &'static str, v: &str) -> Result<(), ConfigError> {
    if v.chars()
        .any(|c| !(c == ' ' || c.is_ascii_graphic()) || matches!(c, '$' | '#' | '"' | '\'' | '\\'))
    {
        return Err(field(
            name,
            "only printable ASCII without $ # quotes or backslashes",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn cfg(text: &str) -> Result<Settings, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|source| ConfigError::Parse {
            path: "t".into(),
            source,
        })?;
        raw.validate(|i| (i == "eth0").then_some(Ipv4Addr::new(10, 0, 0, 1)))
    }

    fn field_of(r: Result<Settings, ConfigError>) -> &'static str {
        match r {
            Err(ConfigError::Field { field, .. }) => field,
            other => panic!("expected a field error, got {other:?}"),
        }
    }

    #[test]
    fn full_config_validates() {
        let s = cfg(r#"
            interface = "eth0"
            mode = "dhcp"
            farm = "7"
            chain = ["10.0.0.2:7000"]
            kernel_args = "console=ttyS0"
            http = "0.0.0.0:8081"
            [dhcp]
            range = "10.0.0.100-10.0.0.150"
            router = "10.0.0.1"
            [[dhcp.reservation]]
            mac = "52:54:00:12:34:56"
            ip = "10.0.0.20"
            [tftp]
            max_windowsize = 16
            [[machine]]
            uuid = "00112233-4455-6677-8899-aabbccddeeff"
            args = "nodus.role=storage"
        "#)
        .unwrap();
        assert_eq!(s.address, Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(s.boot.http_base, "http://10.0.0.1:8081");
        let dhcp::Mode::Dhcp(a) = &s.mode else {
            panic!()
        };
        assert_eq!(
            a.pool.reservations["52-54-00-12-34-56"],
            Ipv4Addr::new(10, 0, 0, 20)
        );
        assert_eq!(s.tftp_limits.max_windowsize, 16);
        assert_eq!(s.scripts.machines.len(), 1);
    }

    #[test]
    fn errors_name_their_field() {
        assert_eq!(field_of(cfg("interface = \"eth0\"")), "farm");
        assert_eq!(field_of(cfg("farm = \"1\"")), "address");
        assert_eq!(
            field_of(cfg("interface = \"eth9\"\nfarm = \"1\"")),
            "address"
        );
        assert_eq!(
            field_of(cfg("interface = \"eth0\"\nfarm = \"1\"\nmode = \"dhcp\"")),
            "dhcp.range"
        );
        assert_eq!(
            field_of(cfg(
                "interface = \"eth0\"\nfarm = \"1\"\nmode = \"dhcp\"\n[dhcp]\nrange = \"10.0.0.9-10.0.0.1\""
            )),
            "dhcp.range"
        );
        assert_eq!(
            field_of(cfg("interface = \"eth0\"\nfarm = \"a b\"")),
            "farm"
        );
        assert_eq!(
            field_of(cfg(
                "interface = \"eth0\"\naddress = \"10.0.0.1\"\nfarm = \"farm-7\""
            )),
            "farm"
        );
        assert_eq!(
            field_of(cfg(
                "interface = \"eth0\"\nfarm = \"1\"\nkernel_args = \"x=${y}\""
            )),
            "kernel_args"
        );
        assert_eq!(
            field_of(cfg(
                "interface = \"eth0\"\nfarm = \"1\"\npublic_key = \"nope\""
            )),
            "public_key"
        );
        assert!(matches!(
            cfg("interface = \"eth0\"\nfarm = \"1\"\ncolour = \"red\""),
            Err(ConfigError::Parse { .. })
        ));
    }
}
