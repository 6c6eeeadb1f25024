//! Which boot file a PXE, UEFI-HTTP or iPXE client gets.
//!
//! The decision uses option 93 (client system architecture, RFC 4578 §2.1 and the
//! IANA "Processor Architecture Types" registry), option 60 (vendor class:
//! `PXEClient…` or `HTTPClient…`), option 77 (user class, RFC 3004) and option 175
//! (iPXE's encapsulated options), so an iPXE that already runs is handed its script
//! instead of another copy of iPXE — the classic PXE boot loop.

use dhcproto::v4::{self, DhcpOption, OptionCode};

/// Architecture code of a legacy BIOS PC (IANA: "Intel x86PC").
pub const ARCH_BIOS: u16 = 0;
/// EFI byte code, which x86-64 firmware sends in the wild.
pub const ARCH_EFI_BC: u16 = 7;
/// EFI x86-64.
pub const ARCH_EFI_X64: u16 = 9;
/// x86-64 UEFI HTTP boot.
pub const ARCH_EFI_X64_HTTP: u16 = 16;

/// iPXE's own encapsulated option space (its feature flags live here).
const OPT_IPXE_ENCAP: u8 = 175;

/// What kind of boot client sent a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientKind {
    /// Firmware PXE (`PXEClient`), BIOS or UEFI.
    Pxe,
    /// UEFI HTTP boot (`HTTPClient`).
    Http,
    /// iPXE already running (user class `iPXE`, our own, or option 175).
    Ipxe,
    /// Not a network-boot client (an ordinary DHCP client).
    Plain,
}

/// A network-boot client as read from its request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootClient {
    /// The kind of client.
    pub kind: ClientKind,
    /// Option 93, or the architecture from a `PXEClient:Arch:xxxxx` class string.
    pub arch: Option<u16>,
    /// Option 97 (client machine identifier), the SMBIOS UUID, when sent.
    pub uuid: Option<[u8; 16]>,
    /// Option 97 exactly as received, to echo back (some UEFI firmware requires it).
    pub raw_guid: Option<Vec<u8>>,
}

impl BootClient {
    /// Reads the boot-relevant options of a request. `user_class` is our own iPXE
    /// user class, which also counts as "iPXE is running".
    pub fn from_message(msg: &v4::Message, user_class: &str) -> Self {
        let opts = msg.opts();
        let class = match opts.get(OptionCode::ClassIdentifier) {
            Some(DhcpOption::ClassIdentifier(c)) => c.as_slice(),
            _ => &[],
        };
        let mut arch = match opts.get(OptionCode::ClientSystemArchitecture) {
            Some(DhcpOption::ClientSystemArchitecture(a)) => Some(u16::from(*a)),
            _ => None,
        };
        if arch.is_none() {
            arch = arch_from_class(class);
        }
        let is_ipxe = user_classes(opts)
            .iter()
            .any(|c| c == b"iPXE" || c.as_slice() == user_class.as_bytes())
            || opts.get(OptionCode::Unknown(OPT_IPXE_ENCAP)).is_some();
        let kind = if is_ipxe {
            ClientKind::Ipxe
        } else if class.starts_with(b"HTTPClient") {
            ClientKind::Http
        } else if class.starts_with(b"PXEClient") {
            ClientKind::Pxe
        } else {
            ClientKind::Plain
        };
        let raw_guid = match opts.get(OptionCode::ClientMachineIdentifier) {
            Some(DhcpOption::ClientMachineIdentifier(g)) => Some(g.clone()),
            _ => None,
        };
        // RFC 4578 §2.3: type 0 followed by a 16-byte UUID.
        let uuid = raw_guid.as_ref().and_then(|g| match g.split_first() {
            Some((0, rest)) => <[u8; 16]>::try_from(rest).ok(),
            _ => None,
        });
        Self {
            kind,
            arch,
            uuid,
            raw_guid,
        }
    }

    /// True for any client that network-boots.
    pub fn is_boot_client(&self) -> bool {
        self.kind != ClientKind::Plain
    }
}

/// Option 77 holds one or more user classes. RFC 3004 encodes each as
/// length + data; iPXE and many firmwares send the bare string instead. Accept both.
fn user_classes(opts: &v4::DhcpOptions) -> Vec<Vec<u8>> {
    let Some(DhcpOption::UserClass(raw)) = opts.get(OptionCode::UserClass) else {
        return Vec::new();
    };
    let mut out = vec![raw.clone()];
    let mut rest = raw.as_slice();
    let mut parsed = Vec::new();
    while let Some((&len, tail)) = rest.split_first() {
        let len = usize::from(len);
        if len == 0 || len > tail.len() {
            parsed.clear();
            break;
        }
        parsed.push(tail[..len].to_vec());
        rest = &tail[len..];
    }
    out.extend(parsed);
    out
}

/// `PXEClient:Arch:00007:UNDI:003016` → 7 (the PXE spec's class-string form).
fn arch_from_class(class: &[u8]) -> Option<u16> {
    let s = std::str::from_utf8(class).ok()?;
    let mut parts = s.split(':');
    let _ = parts.next()?;
    if parts.next()? != "Arch" {
        return None;
    }
    parts.next()?.parse().ok()
}

/// What a boot client is told to load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BootAnswer {
    /// A file name on our TFTP server.
    Tftp(String),
    /// An HTTP URL (UEFI HTTP boot, or the iPXE script).
    Url(String),
}

impl BootAnswer {
    /// The text that goes into the `file` field / option 67.
    pub fn file(&self) -> &str {
        match self {
            Self::Tftp(f) | Self::Url(f) => f,
        }
    }
}

/// Why a boot client gets no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// A PXE/HTTP client without any architecture information.
    #[error("Boot client sent no architecture")]
    NoArchitecture,
    /// An architecture the table has no file for.
    #[error("No boot file for architecture {0}")]
    UnknownArchitecture(u16),
    /// Not a network-boot client.
    #[error("Not a network-boot client")]
    NotBootClient,
}

/// The boot-file table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootTable {
    /// TFTP file for legacy BIOS PXE.
    pub bios: String,
    /// TFTP file for x86-64 UEFI PXE (`ipxe.efi` or `snponly.efi`).
    pub uefi: String,
    /// URL base of our HTTP server, e.g. `http://10.0.0.1:8080` (no trailing slash).
    pub http_base: String,
    /// Our own iPXE user class.
    pub user_class: String,
}

impl BootTable {
    /// The URL of the per-machine iPXE script for `mac`.
    pub fn script_url(&self, mac: &[u8]) -> String {
        format!("{}/boot/{}.ipxe", self.http_base, mac_dashed(mac))
    }

    /// Chooses the boot answer for a client with hardware address `mac`.
    pub fn choose(&self, client: &BootClient, mac: &[u8]) -> Result<BootAnswer, Refusal> {
        match client.kind {
            ClientKind::Plain => Err(Refusal::NotBootClient),
            ClientKind::Ipxe => Ok(BootAnswer::Url(self.script_url(mac))),
            ClientKind::Http => match client.arch {
                Some(ARCH_EFI_X64_HTTP) => Ok(BootAnswer::Url(format!(
                    "{}/ipxe/{}",
                    self.http_base, self.uefi
                ))),
                Some(a) => Err(Refusal::UnknownArchitecture(a)),
                None => Err(Refusal::NoArchitecture),
            },
            ClientKind::Pxe => match client.arch {
                Some(ARCH_BIOS) => Ok(BootAnswer::Tftp(self.bios.clone())),
                Some(ARCH_EFI_BC | ARCH_EFI_X64) => Ok(BootAnswer::Tftp(self.uefi.clone())),
                Some(a) => Err(Refusal::UnknownArchitecture(a)),
                None => Err(Refusal::NoArchitecture),
            },
        }
    }
}

/// `52-54-00-12-34-56`: the form used in URLs and logs.
pub fn mac_dashed(mac: &[u8]) -> String {
    let parts: Vec<String> = mac.iter().map(|b| format!("{b:02x}")).collect();
    parts.join("-")
}

/// A UUID in its usual text form. SMBIOS stores the first three fields
/// little-endian (SMBIOS 2.6+, §7.2.1), and PXE firmware sends them that way.
pub fn uuid_text(u: &[u8; 16]) -> String {
    format!(
        "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
        u[3],
        u[2],
        u[1],
        u[0],
        u[5],
        u[4],
        u[7],
        u[6],
        u[8],
        u[9],
        u[10],
        u[11],
        u[12],
        u[13],
        u[14],
        u[15]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_string_carries_architecture() {
        assert_eq!(
            arch_from_class(b"PXEClient:Arch:00007:UNDI:003016"),
            Some(7)
        );
        assert_eq!(arch_from_class(b"PXEClient"), None);
        assert_eq!(arch_from_class(b"PXEClient:Arch:xx"), None);
    }

    #[test]
    fn uuid_text_swaps_the_first_three_fields() {
        let u = [
            0x33, 0x22, 0x11, 0x00, 0x55, 0x44, 0x77, 0x66, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd,
            0xee, 0xff,
        ];
        assert_eq!(uuid_text(&u), "00112233-4455-6677-8899-aabbccddeeff");
    }
}
