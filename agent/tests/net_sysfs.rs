//! NICs from sysfs: node_exporter's fixture tree must give the same MTU, carrier,
//! speed, operstate, duplex and MAC as node_exporter reports; and on the live host
//! (`collect_host`) every interface and address `ip` lists must be there.

#[path = "sensors_common/mod.rs"]
mod sensors_common;

use std::process::Command;

use nodus_agent::{
    hal::{Gaps, SysRoot},
    net::Nic,
};
use sensors_common::{node_exporter_samples, unpack};

fn nic<'a>(nics: &'a [Nic], name: &str) -> &'a Nic {
    nics.iter()
        .find(|n| n.name == name)
        .unwrap_or_else(|| panic!("no {name} in {nics:#?}"))
}

#[test]
fn sysfs_nics_match_node_exporter() {
    let dir = unpack("node-exporter-sys.tar.gz");
    let root = SysRoot::at(dir.path()).unwrap();
    let mut gaps = Gaps::default();
    let nics = nodus_agent::net::collect(&root, &mut gaps);
    assert!(gaps.0.is_empty(), "{gaps:?}");
    let mut compared = 0;
    for s in node_exporter_samples() {
        let Some(dev) = s.labels.get("device") else {
            continue;
        };
        // The netclass collector's metrics, which come from sysfs (the netdev
        // ones, `lo` among them, come from /proc/net/dev).
        if !matches!(
            s.name.as_str(),
            "node_network_mtu_bytes"
                | "node_network_carrier"
                | "node_network_speed_bytes"
                | "node_network_info"
        ) {
            continue;
        }
        let n = nic(&nics, dev);
        match s.name.as_str() {
            "node_network_mtu_bytes" => assert_eq!(n.mtu.map(f64::from), Some(s.value)),
            "node_network_carrier" => assert_eq!(f64::from(u8::from(n.carrier)), s.value),
            // node_exporter converts Mbit/s to bytes/s.
            "node_network_speed_bytes" => {
                assert_eq!(
                    n.speed_mbps.map(|m| f64::from(m) * 125_000.0),
                    Some(s.value)
                );
            }
            "node_network_info" => {
                assert_eq!(n.operstate, s.labels["operstate"]);
                assert_eq!(n.duplex, s.labels["duplex"]);
                assert_eq!(n.mac.as_deref(), Some(s.labels["address"].as_str()));
            }
            _ => continue,
        }
        compared += 1;
    }
    // bond0 and eth0: mtu, carrier, info each; speed for eth0 only.
    assert_eq!(compared, 7);
    // bond0 reports speed -1: unknown, absent rather than a number.
    assert_eq!(nic(&nics, "bond0").speed_mbps, None);
    // eth0 sits under a PCI device; the bonding directories are virtual.
    assert!(nic(&nics, "eth0").physical);
    assert!(!nic(&nics, "bond0").physical);
    assert!(
        !nics.iter().any(|n| n.name == "bonding_masters"),
        "a plain file is not an interface"
    );
    // No netlink under --root: no addresses.
    assert!(nics.iter().all(|n| n.addresses.is_empty()));
}

/// `ip -o addr` lines as (interface, cidr).
fn ip_addresses() -> Option<Vec<(String, String)>> {
    let out = Command::new("ip")
        .args(["-o", "addr", "show"])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    Some(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                // "2: eth0    inet 10.0.0.5/24 brd … scope global eth0"
                let name = f.get(1)?.split('@').next()?.to_owned();
                Some((name, (*f.get(3)?).to_owned()))
            })
            .collect(),
    )
}

#[tokio::test]
async fn host_nics_have_every_address_ip_lists() {
    let Some(expected) = ip_addresses() else {
        println!("skipped: `ip` is not available");
        return;
    };
    let mut gaps = Gaps::default();
    let host = nodus_agent::net::collect_host(&mut gaps).await;
    assert!(
        !gaps.0.iter().any(|g| g.what == "netlink"),
        "netlink failed: {gaps:?}"
    );
    assert!(host.nics.iter().any(|n| n.name == "lo"));
    for (name, cidr) in &expected {
        let n = nic(&host.nics, name);
        assert!(n.addresses.contains(cidr), "{name} lacks {cidr}: {n:?}");
    }
    // Default routes: the same interfaces `ip route show default` names.
    let out = Command::new("ip")
        .args(["-4", "route", "show", "default"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for line in text.lines().filter(|l| !l.contains(" table ")) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let dev = f
            .iter()
            .position(|w| *w == "dev")
            .map(|i| f[i + 1])
            .unwrap();
        let via = f
            .iter()
            .position(|w| *w == "via")
            .map(|i| f[i + 1].to_owned());
        assert!(
            host.default_routes
                .iter()
                .any(|r| r.interface == dev && r.family == "inet" && r.gateway == via),
            "{line:?} not in {:?}",
            host.default_routes
        );
    }
}

#[test]
fn inventory_collect_on_the_host_includes_addresses() {
    // Outside any runtime: the blocking wrapper brings its own.
    let mut gaps = Gaps::default();
    let nics = nodus_agent::net::collect(&SysRoot::host(), &mut gaps);
    let lo = nic(&nics, "lo");
    assert!(lo.addresses.iter().any(|a| a == "127.0.0.1/8"), "{lo:?}");
}

#[tokio::test]
async fn blocking_collect_works_inside_a_runtime() {
    let mut gaps = Gaps::default();
    let host = nodus_agent::net::collect_host_blocking(&mut gaps);
    assert!(host.nics.iter().any(|n| n.name == "lo"));
    assert!(!gaps.0.iter().any(|g| g.what == "netlink"), "{gaps:?}");
}
