//! Physical NICs and their carrier, from sysfs (a root that tests point at a
//! fixture tree).

use std::path::Path;

/// A NIC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Interface name.
    pub name: String,
    /// Interface index.
    pub index: u32,
    /// MAC address.
    pub mac: [u8; 6],
}

fn read(sys: &Path, name: &str, attr: &str) -> Option<String> {
    std::fs::read_to_string(sys.join("class/net").join(name).join(attr))
        .ok()
        .map(|s| s.trim().to_owned())
}

fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = s.split(':');
    for b in &mut mac {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

/// The interface `name`, if it exists and has a MAC address.
pub fn by_name(sys: &Path, name: &str) -> Option<Link> {
    Some(Link {
        name: name.to_owned(),
        index: read(sys, name, "ifindex")?.parse().ok()?,
        mac: parse_mac(&read(sys, name, "address")?)?,
    })
}

/// NICs backed by a device (not loopback, bridges, veths or tunnels), by name.
pub fn physical(sys: &Path) -> Vec<Link> {
    let Ok(rd) = std::fs::read_dir(sys.join("class/net")) else {
        return Vec::new();
    };
    let mut out: Vec<Link> = rd
        .flatten()
        .filter(|e| e.path().join("device").exists())
        .filter_map(|e| by_name(sys, &e.file_name().to_string_lossy()))
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// Whether the NIC reports carrier (only meaningful once it is up).
pub fn has_carrier(sys: &Path, name: &str) -> bool {
    read(sys, name, "carrier").as_deref() == Some("1")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn nic(sys: &Path, name: &str, device: bool, carrier: &str, mac: &str, index: u32) {
        let d = sys.join("class/net").join(name);
        std::fs::create_dir_all(&d).unwrap();
        if device {
            std::fs::create_dir_all(d.join("device")).unwrap();
        }
        std::fs::write(d.join("carrier"), carrier).unwrap();
        std::fs::write(d.join("address"), mac).unwrap();
        std::fs::write(d.join("ifindex"), format!("{index}\n")).unwrap();
    }

    #[test]
    fn only_device_backed_nics_are_physical_and_carrier_is_read() {
        let d = tempfile::tempdir().unwrap();
        let s = d.path();
        nic(s, "lo", false, "1\n", "00:00:00:00:00:00\n", 1);
        nic(s, "enp0s2", true, "0\n", "52:54:00:12:34:56\n", 2);
        nic(s, "eth0", true, "1\n", "52:54:00:12:34:57\n", 3);
        nic(s, "veth0", false, "1\n", "aa:bb:cc:dd:ee:ff\n", 4);
        let p = physical(s);
        assert_eq!(
            p.iter().map(|l| l.name.as_str()).collect::<Vec<_>>(),
            ["enp0s2", "eth0"]
        );
        assert_eq!(p[1].mac, [0x52, 0x54, 0, 0x12, 0x34, 0x57]);
        assert_eq!(p[1].index, 3);
        assert!(!has_carrier(s, "enp0s2"));
        assert!(has_carrier(s, "eth0"));
        assert_eq!(parse_mac("52:54:00:12:34"), None);
    }
}
