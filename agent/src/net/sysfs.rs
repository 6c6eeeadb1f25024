//! NIC facts from `sys/class/net/<if>` (the kernel's
//! `Documentation/ABI/testing/sysfs-class-net`).
//!
//! Several attributes are not readable in every state: `carrier`, `speed` and
//! `duplex` return EINVAL while the interface is administratively down, and
//! `speed` is -1 (or `SPEED_UNKNOWN`, 0xffffffff) when the driver does not know.
//! Those are "unknown", not gaps.

use super::Nic;
use crate::hal::{Gaps, ReadError, SysRoot};

/// Where the class lives.
const CLASS_DIR: &str = "sys/class/net";

/// Reads every interface under `root`.
pub(super) fn collect(root: &SysRoot, gaps: &mut Gaps) -> Vec<Nic> {
    let entries = match root.list(CLASS_DIR) {
        Ok(e) => e,
        Err(e) if e.is_not_found() => return Vec::new(),
        Err(e) => {
            gaps.push(CLASS_DIR, e);
            return Vec::new();
        }
    };
    entries
        .into_iter()
        .filter_map(|name| {
            let rel = format!("{CLASS_DIR}/{name}");
            // `bonding_masters` and other plain files live here too.
            root.path(&rel)
                .is_dir()
                .then(|| read_nic(root, &rel, name, gaps))
        })
        .collect()
}

fn read_nic(root: &SysRoot, rel: &str, name: String, gaps: &mut Gaps) -> Nic {
    let attr = |a: &str| format!("{rel}/{a}");
    let mut nic = Nic::new(name);
    nic.mac = quiet(gaps, &attr("address"), root.read_string(&attr("address")))
        .map(|m| m.to_ascii_lowercase());
    nic.mtu = quiet(gaps, &attr("mtu"), root.read_parse(&attr("mtu")));
    if let Some(s) = quiet(
        gaps,
        &attr("operstate"),
        root.read_string(&attr("operstate")),
    ) {
        nic.operstate = s;
    }
    // EINVAL while down: no carrier.
    nic.carrier = root
        .read_parse::<u8>(&attr("carrier"))
        .is_ok_and(|c| c == 1);
    nic.speed_mbps = root
        .read_parse::<i64>(&attr("speed"))
        .ok()
        .filter(|s| *s > 0 && *s < i64::from(u32::MAX))
        .and_then(|s| u32::try_from(s).ok());
    if let Ok(d) = root.read_string(&attr("duplex")) {
        nic.duplex = d;
    }
    nic.driver = root.link_name(&attr("device/driver")).ok();
    nic.physical = root.exists(&attr("device"))
        || root
            .resolve(rel)
            .is_ok_and(|p| p.starts_with("sys/devices/") && !p.starts_with("sys/devices/virtual/"));
    nic
}

/// Absent and no-data attributes are normal for some interface types; only real
/// failures are gaps.
fn quiet<T>(gaps: &mut Gaps, what: &str, r: Result<T, ReadError>) -> Option<T> {
    match r {
        Err(ReadError::NoData(_)) => None,
        r => gaps.note(what, r),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virtual_down_interface_is_unknown_not_a_gap() {
        let dir = tempfile::tempdir().unwrap();
        let v = dir.path().join("sys/devices/virtual/net/br0");
        std::fs::create_dir_all(&v).unwrap();
        for (f, t) in [
            ("address", "AA:BB:CC:00:11:22\n"),
            ("mtu", "9000\n"),
            ("operstate", "down\n"),
            ("speed", "-1\n"),
            ("ifindex", "7\n"),
        ] {
            std::fs::write(v.join(f), t).unwrap();
        }
        std::fs::create_dir_all(dir.path().join("sys/class/net")).unwrap();
        std::os::unix::fs::symlink(
            "../../devices/virtual/net/br0",
            dir.path().join("sys/class/net/br0"),
        )
        .unwrap();
        let root = SysRoot::at(dir.path()).unwrap();
        let mut gaps = Gaps::default();
        let nics = collect(&root, &mut gaps);
        assert_eq!(nics.len(), 1);
        let n = &nics[0];
        assert_eq!(n.mac.as_deref(), Some("aa:bb:cc:00:11:22"));
        assert_eq!((n.mtu, n.speed_mbps), (Some(9000), None));
        assert_eq!(
            (n.operstate.as_str(), n.carrier, n.duplex.as_str()),
            ("down", false, "unknown")
        );
        assert!(!n.physical);
        assert!(gaps.0.is_empty(), "{gaps:?}");
    }
}
