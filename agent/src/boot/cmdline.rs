//! The kernel command line, as the init reads it: the `nodus.*` keys it owns,
//! typed and checked, and `module.param=value` settings for the modules it loads.
//!
//! The agent's own keys (`nodus.owner`, `nodus.mode`, `nodus.listen`,
//! `nodus.farm`, `nodus.chain`) are left to the agent, which reads /proc/cmdline
//! itself when `NODUS_INIT=1`; this parser only recognises them so it can warn
//! about keys nobody reads.

use std::{collections::BTreeMap, net::Ipv4Addr, str::FromStr};

use nodus_identity::{AccountId, NodeId, PublicKey};

/// The network the boot manifest is checked on when `nodus.network=` is absent:
/// the same default as `nodus netboot build-image --network`.
pub const DEFAULT_NETWORK: &str = "nodus-devnet";

/// Keys the agent reads itself (see /work/contracts.md).
const AGENT_KEYS: &[&str] = &["owner", "mode", "listen", "farm", "chain"];

/// A bad value for one key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Kernel command line: bad {key}={value:?}: {reason}")]
pub struct CmdlineError {
    /// The key, e.g. `nodus.net`.
    pub key: String,
    /// The value given.
    pub value: String,
    /// What is wrong with it.
    pub reason: String,
}

/// An IPv4 address with its prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Cidr {
    /// The address.
    pub address: Ipv4Addr,
    /// Prefix length, 0..=32.
    pub prefix: u8,
}

impl FromStr for Ipv4Cidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (a, p) = s
            .split_once('/')
            .ok_or_else(|| format!("{s:?} has no /prefix"))?;
        let address = a
            .parse()
            .map_err(|_| format!("{a:?} is not an IPv4 address"))?;
        let prefix = p
            .parse::<u8>()
            .ok()
            .filter(|p| *p <= 32)
            .ok_or_else(|| format!("prefix {p:?} is not 0..=32"))?;
        Ok(Self { address, prefix })
    }
}

impl std::fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix)
    }
}

/// How the node gets its address (`nodus.net=`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum NetSetting {
    /// DHCPv4 on the NICs with carrier (the default).
    #[default]
    Dhcp,
    /// A fixed address: `static:<ip/prefix>,<gateway>[,<dns>]`.
    Static {
        /// Address and prefix.
        address: Ipv4Cidr,
        /// Default gateway.
        gateway: Ipv4Addr,
        /// DNS server, if given.
        dns: Option<Ipv4Addr>,
    },
    /// No network bring-up (`none`): the agent stays reachable only locally.
    None,
}

impl FromStr for NetSetting {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "dhcp" => return Ok(Self::Dhcp),
            "none" => return Ok(Self::None),
            _ => {}
        }
        let rest = s
            .strip_prefix("static:")
            .ok_or("expected dhcp, none or static:<ip/prefix>,<gateway>[,<dns>]")?;
        let parts: Vec<&str> = rest.split(',').collect();
        if !(2..=3).contains(&parts.len()) {
            return Err("static needs <ip/prefix>,<gateway>[,<dns>]".to_owned());
        }
        let address: Ipv4Cidr = parts[0].parse()?;
        let gateway = parts[1]
            .parse()
            .map_err(|_| format!("gateway {:?} is not an IPv4 address", parts[1]))?;
        let dns = match parts.get(2) {
            Some(d) => Some(
                d.parse()
                    .map_err(|_| format!("dns {d:?} is not an IPv4 address"))?,
            ),
            None => None,
        };
        Ok(Self::Static {
            address,
            gateway,
            dns,
        })
    }
}

/// Where the on-node console runs (`nodus.console=`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsoleTty {
    /// On this tty (`ttyS0`, `tty1`, …), under /dev.
    Tty(String),
    /// Nowhere.
    None,
}

/// Why the on-node console goes to the screen by default: the serial line is
/// where the kernel and the init log, and a dashboard there would garble them.
pub const DEFAULT_CONSOLE_TTY: &str = "tty1";

impl Default for ConsoleTty {
    fn default() -> Self {
        Self::Tty(DEFAULT_CONSOLE_TTY.to_owned())
    }
}

impl FromStr for ConsoleTty {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "none" {
            return Ok(Self::None);
        }
        let ok =
            s.starts_with("tty") && s.len() > 3 && s.bytes().all(|b| b.is_ascii_alphanumeric());
        if ok {
            Ok(Self::Tty(s.to_owned()))
        } else {
            Err("expected none or a tty name such as ttyS0 or tty1".to_owned())
        }
    }
}

/// What the init takes from the kernel command line.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BootParams {
    /// `nodus.boot_key=`: the key the image's content manifest must be signed by.
    /// `None` when absent: the init then refuses to continue.
    pub boot_key: Option<PublicKey>,
    /// `nodus.network=`: the network (chain id) the manifest is signed for.
    pub network: String,
    /// `nodus.net=`.
    pub net: NetSetting,
    /// `nodus.console=`.
    pub console: ConsoleTty,
    /// `nodus.i2c=` values, one per simulated I2C chip, unparsed: each is
    /// checked on its own by [`super::i2c::parse_entry`] so one bad entry skips
    /// one chip instead of refusing the boot.
    pub i2c: Vec<String>,
    /// `module.param=value` settings, by normalized module name, as modprobe would
    /// pass them (the kernel applies command-line parameters only to built-in
    /// modules; loading a module is the loader's job, and so are its parameters).
    pub module_params: BTreeMap<String, Vec<String>>,
    /// The NIC the machine network-booted from: `BOOTIF=01-aa-bb-…` (the PXE
    /// convention, which iPXE scripts pass) or, without it, `nodus.machine=`
    /// (the MAC our netboot script names the machine by). Its DHCP lease gets
    /// the preferred default route.
    pub boot_nic: Option<[u8; 6]>,
    /// `nodus.*` keys neither the init nor the agent reads.
    pub unknown: Vec<String>,
}

/// A MAC address written with dashes (`aa-bb-cc-dd-ee-ff`), as `BOOTIF` (after
/// its `01-` hardware-type prefix) and `nodus.machine` carry it.
fn parse_dashed_mac(s: &str) -> Result<[u8; 6], String> {
    let bad = || format!("{s:?} is not a MAC address written aa-bb-cc-dd-ee-ff");
    let mut mac = [0u8; 6];
    let mut parts = s.split(['-', ':']);
    for b in &mut mac {
        let part = parts.next().ok_or_else(bad)?;
        if part.len() != 2 {
            return Err(bad());
        }
        *b = u8::from_str_radix(part, 16).map_err(|_| bad())?;
    }
    if parts.next().is_some() {
        return Err(bad());
    }
    Ok(mac)
}

/// Splits a command line into words; double quotes group words (`a="b c"`).
pub fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut any = false;
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            c if c.is_whitespace() && !quoted => {
                if any {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            c => {
                cur.push(c);
                any = true;
            }
        }
    }
    if any {
        out.push(cur);
    }
    out
}

fn parse_key(s: &str) -> Result<PublicKey, String> {
    if let Ok(a) = s.parse::<AccountId>() {
        return Ok(*a.key());
    }
    s.parse::<NodeId>()
        .map(|n| *n.key())
        .map_err(|e| e.to_string())
}

impl BootParams {
    /// Parses a whole command line (the contents of /proc/cmdline).
    pub fn parse(line: &str) -> Result<Self, CmdlineError> {
        let mut p = Self {
            network: DEFAULT_NETWORK.to_owned(),
            ..Self::default()
        };
        let mut bootif = None;
        let mut machine = None;
        for w in words(line) {
            // Words after `--` are the init's own arguments, not parameters.
            if w == "--" {
                break;
            }
            let (key, value) = w.split_once('=').unwrap_or((w.as_str(), ""));
            let bad = |reason: String| CmdlineError {
                key: key.to_owned(),
                value: value.to_owned(),
                reason,
            };
            if let Some(k) = key.strip_prefix("nodus.") {
                match k {
                    "boot_key" => p.boot_key = Some(parse_key(value).map_err(bad)?),
                    "network" => {
                        if value.is_empty() || value.len() > 64 {
                            return Err(bad("expected 1 to 64 bytes".to_owned()));
                        }
                        p.network = value.to_owned();
                    }
                    "net" => p.net = value.parse().map_err(bad)?,
                    "console" => p.console = value.parse().map_err(bad)?,
                    "i2c" => p.i2c.push(value.to_owned()),
                    "machine" => machine = Some(parse_dashed_mac(value).map_err(bad)?),
                    // The outer manifest's URL, for tools that fetch the image;
                    // the init checks the content manifest inside the image.
                    "manifest" => {}
                    k if AGENT_KEYS.contains(&k) => {}
                    _ => p.unknown.push(key.to_owned()),
                }
            } else if key == "BOOTIF" {
                // `01-` is the ARP hardware type of Ethernet. Another boot
                // loader's odd value only loses the route preference, so it is
                // ignored rather than refused.
                let mac = value.strip_prefix("01-").unwrap_or(value);
                bootif = parse_dashed_mac(mac).ok();
            } else if let Some((module, param)) = key.split_once('.')
                && !module.is_empty()
                && !param.is_empty()
                && !value.is_empty()
            {
                p.module_params
                    .entry(module.replace('-', "_"))
                    .or_default()
                    .push(format!("{param}={value}"));
            }
        }
        p.boot_nic = bootif.or(machine);
        Ok(p)
    }

    /// The parameter string for `module` (`a=1 b=2`), empty if none.
    pub fn params_for(&self, module: &str) -> String {
        self.module_params
            .get(&module.replace('-', "_"))
            .map(|v| v.join(" "))
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn key_text() -> String {
        AccountId::from(nodus_identity::SecretKey::from_seed(&[3; 32]).public()).to_string()
    }

    #[test]
    fn the_boot_nic_comes_from_bootif_else_nodus_machine() {
        let mac = [0x52, 0x54, 0x00, 0xaa, 0xbb, 0x01];
        let p = BootParams::parse("BOOTIF=01-52-54-00-aa-bb-01 nodus.manifest=http://x/m").unwrap();
        assert_eq!(p.boot_nic, Some(mac));
        assert!(p.unknown.is_empty(), "{:?}", p.unknown);
        let p = BootParams::parse("nodus.machine=52-54-00-AA-BB-01 BOOTIF=01-52-54-00-aa-bb-02")
            .unwrap();
        assert_eq!(p.boot_nic, Some([0x52, 0x54, 0x00, 0xaa, 0xbb, 0x02]));
        let p = BootParams::parse("nodus.machine=52-54-00-AA-BB-01").unwrap();
        assert_eq!(p.boot_nic, Some(mac));
        // A foreign loader's odd BOOTIF is ignored; our own key must be right.
        let p = BootParams::parse("BOOTIF=52-54-00 nodus.machine=52-54-00-aa-bb-01").unwrap();
        assert_eq!(p.boot_nic, Some(mac));
        assert_eq!(BootParams::parse("BOOTIF=zz").unwrap().boot_nic, None);
        for bad in [
            "52-54-00-aa-bb",
            "52-54-00-aa-bb-01-02",
            "5-54-00-aa-bb-01",
            "xx-54-00-aa-bb-01",
        ] {
            let e = BootParams::parse(&format!("nodus.machine={bad}")).unwrap_err();
            assert_eq!(e.key, "nodus.machine", "{bad}");
        }
    }

    #[test]
    fn a_full_line_parses() {
        let line = format!(
            "BOOT_IMAGE=/vmlinuz console=ttyS0 quiet nodus.boot_key={} nodus.owner=acct1x \
             nodus.net=static:10.0.0.5/24,10.0.0.1,1.1.1.1 nodus.console=ttyS0 \
             i2c_stub.chip_addr=0x48 i2c-stub.foo=\"a b\" nodus.colour=red \
             nodus.i2c=lm75@0:0x48:00=1a80 nodus.i2c=bad -- nodus.net=bad\n",
            key_text()
        );
        let p = BootParams::parse(&line).unwrap();
        assert_eq!(
            p.boot_key.unwrap(),
            nodus_identity::SecretKey::from_seed(&[3; 32]).public()
        );
        assert_eq!(p.network, DEFAULT_NETWORK);
        assert_eq!(
            p.net,
            NetSetting::Static {
                address: Ipv4Cidr {
                    address: Ipv4Addr::new(10, 0, 0, 5),
                    prefix: 24
                },
                gateway: Ipv4Addr::new(10, 0, 0, 1),
                dns: Some(Ipv4Addr::new(1, 1, 1, 1)),
            }
        );
        assert_eq!(p.console, ConsoleTty::Tty("ttyS0".into()));
        assert_eq!(p.params_for("i2c-stub"), "chip_addr=0x48 foo=a b");
        assert_eq!(p.unknown, ["nodus.colour"]);
        // Kept verbatim, in order; a bad entry is the bring-up's to report.
        assert_eq!(p.i2c, ["lm75@0:0x48:00=1a80", "bad"]);
    }

    #[test]
    fn defaults_without_nodus_keys() {
        let p = BootParams::parse("console=ttyS0").unwrap();
        assert_eq!(p.boot_key, None);
        assert_eq!(p.net, NetSetting::Dhcp);
        assert_eq!(p.console, ConsoleTty::Tty("tty1".into()));
        assert!(p.module_params.is_empty());
    }

    #[test]
    fn bad_values_name_their_key() {
        for (line, key) in [
            ("nodus.boot_key=acct1nope", "nodus.boot_key"),
            ("nodus.net=static:10.0.0.5,10.0.0.1", "nodus.net"),
            ("nodus.net=static:10.0.0.5/33,10.0.0.1", "nodus.net"),
            ("nodus.net=static:10.0.0.5/24,gw", "nodus.net"),
            ("nodus.net=wifi", "nodus.net"),
            ("nodus.console=/dev/sda", "nodus.console"),
            ("nodus.network=", "nodus.network"),
        ] {
            let e = BootParams::parse(line).unwrap_err();
            assert_eq!(e.key, key, "{line}");
            assert!(e.to_string().contains(key), "{e}");
        }
    }

    #[test]
    fn words_respect_quotes() {
        assert_eq!(words(" a  b=\"c d\" \"\" e\n"), ["a", "b=c d", "", "e"]);
    }
}
