//! Early link-up: the init sets each NIC administratively up as soon as its
//! driver has probed, while the rest of the image is still being verified, so the
//! PHY's autonegotiation (about 3 s for QEMU's e1000e, seconds on real copper)
//! overlaps the boot instead of following it.
//!
//! Security: before the image has verified, nothing of ours may reach the
//! network. A link that is up without an IPv4 address sends nothing over IPv4,
//! but IPv6 would at once give it a link-local address and send duplicate
//! address detection, router solicitations and MLD reports (and take a router's
//! advertised prefix). So each NIC's IPv6 is disabled *before* it goes up, and
//! [`EarlyLinks::release`] restores it once the image has verified; the kernel
//! then starts IPv6 autoconfiguration exactly as when [`super::run`] set the
//! link up (`disable_ipv6` 1 → 0 on an up link is a `NETDEV_UP` for addrconf). A
//! NIC whose IPv6 cannot be disabled stays down; [`super::run`] sets it up after
//! verification as before.
//!
//! It works on a sysfs and a procfs root (the real ones, or fixture trees in
//! tests): the link goes up through `/sys/class/net/<nic>/flags` (the kernel's
//! `dev_change_flags`, as `SIOCSIFFLAGS` does), IPv6 through
//! `/proc/sys/net/ipv6/conf/<nic>/disable_ipv6`. It never adds an address or a
//! route; [`super::run`] still does all of that, and does not depend on seeing
//! the link go up (it sets it up again, which is a no-op, and polls carrier).

use std::path::{Path, PathBuf};

use super::links;

/// `IFF_UP` from `<linux/if.h>`.
const IFF_UP: u64 = 0x1;

/// Why one NIC could not be set up early.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EarlyError {
    /// A sysfs or procfs file could not be read or written.
    #[error("Cannot access {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The link's flags are not a number.
    #[error("Unreadable link flags {0:?}")]
    Flags(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> EarlyError + '_ {
    move |source| EarlyError::Io {
        path: path.to_owned(),
        source,
    }
}

/// A NIC this set up early.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Raised {
    name: String,
    /// `disable_ipv6` as it was before (`None`: the kernel has no IPv6 for it).
    ipv6_was: Option<String>,
}

/// What one [`EarlyLinks::raise_new`] did.
#[derive(Debug, Default)]
pub struct Raise {
    /// NICs set up now.
    pub up: Vec<String>,
    /// NICs left down, and why.
    pub failed: Vec<(String, EarlyError)>,
}

/// What [`EarlyLinks::release`] did, per NIC set up early.
#[derive(Debug)]
pub struct Released {
    /// The NIC.
    pub name: String,
    /// Packets it sent while up before the release (`tx_packets`), when known:
    /// 0 is the evidence that nothing went out before the image verified.
    pub tx_packets: Option<u64>,
    /// Whether it has carrier now.
    pub carrier: bool,
    /// Restoring its IPv6 setting failed.
    pub error: Option<EarlyError>,
}

/// The NICs the init sets up before the image has verified.
///
/// Lifecycle: [`new`](Self::new) → [`raise_new`](Self::raise_new) after each
/// module load (NICs not seen before go up, IPv6 off) → [`release`](Self::release)
/// once the image has verified (IPv6 as it was). A boot that refuses the image
/// never releases: the links stay up with no address and no IPv6.
#[derive(Debug)]
pub struct EarlyLinks {
    sys: PathBuf,
    proc: PathBuf,
    /// Every NIC looked at so far (raised or failed), so each is tried once.
    seen: Vec<String>,
    raised: Vec<Raised>,
}

impl EarlyLinks {
    /// Works on the sysfs root `sys` and the procfs root `proc`.
    pub fn new(sys: &Path, proc: &Path) -> Self {
        Self {
            sys: sys.to_owned(),
            proc: proc.to_owned(),
            seen: Vec::new(),
            raised: Vec::new(),
        }
    }

    /// The host's /sys and /proc.
    pub fn host() -> Self {
        Self::new(Path::new("/sys"), Path::new("/proc"))
    }

    fn ipv6_file(&self, nic: &str) -> PathBuf {
        self.proc
            .join("sys/net/ipv6/conf")
            .join(nic)
            .join("disable_ipv6")
    }

    fn attr(&self, nic: &str, attr: &str) -> PathBuf {
        self.sys.join("class/net").join(nic).join(attr)
    }

    /// Sets every physical NIC (see [`links::physical`]) not looked at before
    /// up, with its IPv6 disabled first.
    pub fn raise_new(&mut self) -> Raise {
        let mut out = Raise::default();
        for nic in links::physical(&self.sys) {
            if self.seen.contains(&nic.name) {
                continue;
            }
            self.seen.push(nic.name.clone());
            match self.raise(&nic.name) {
                Ok(r) => {
                    out.up.push(nic.name);
                    self.raised.push(r);
                }
                Err(e) => out.failed.push((nic.name, e)),
            }
        }
        out
    }

    fn raise(&self, nic: &str) -> Result<Raised, EarlyError> {
        let v6 = self.ipv6_file(nic);
        let ipv6_was = match std::fs::read_to_string(&v6) {
            Ok(s) => Some(s.trim().to_owned()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io(&v6)(e)),
        };
        if ipv6_was.is_some() {
            std::fs::write(&v6, "1").map_err(io(&v6))?;
        }
        let flags_file = self.attr(nic, "flags");
        let up = std::fs::read_to_string(&flags_file)
            .map_err(io(&flags_file))
            .and_then(|s| {
                let t = s.trim();
                u64::from_str_radix(t.trim_start_matches("0x"), 16)
                    .map_err(|_| EarlyError::Flags(t.to_owned()))
            })
            .and_then(|flags| {
                std::fs::write(&flags_file, format!("{:#x}", flags | IFF_UP))
                    .map_err(io(&flags_file))
            });
        if let Err(e) = up {
            // Left down: put IPv6 back as it was, netup raises it later.
            if let Some(was) = &ipv6_was {
                let _ = std::fs::write(&v6, was);
            }
            return Err(e);
        }
        Ok(Raised {
            name: nic.to_owned(),
            ipv6_was,
        })
    }

    /// The NICs set up so far.
    pub fn raised(&self) -> impl Iterator<Item = &str> {
        self.raised.iter().map(|r| r.name.as_str())
    }

    /// Call once the image has verified: gives each early NIC its IPv6 setting
    /// back, and reports what it sent meanwhile.
    pub fn release(self) -> Vec<Released> {
        self.raised
            .iter()
            .map(|r| {
                let tx_packets =
                    std::fs::read_to_string(self.attr(&r.name, "statistics/tx_packets"))
                        .ok()
                        .and_then(|s| s.trim().parse().ok());
                let carrier = links::has_carrier(&self.sys, &r.name);
                let error = r.ipv6_was.as_ref().and_then(|was| {
                    let v6 = self.ipv6_file(&r.name);
                    std::fs::write(&v6, was).map_err(io(&v6)).err()
                });
                Released {
                    name: r.name.clone(),
                    tx_packets,
                    carrier,
                    error,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    struct Tree {
        _dir: tempfile::TempDir,
        sys: PathBuf,
        proc: PathBuf,
    }

    fn tree() -> Tree {
        let dir = tempfile::tempdir().unwrap();
        let sys = dir.path().join("sys");
        let proc = dir.path().join("proc");
        std::fs::create_dir_all(sys.join("class/net")).unwrap();
        std::fs::create_dir_all(proc.join("sys/net/ipv6/conf")).unwrap();
        Tree {
            _dir: dir,
            sys,
            proc,
        }
    }

    /// A NIC as the kernel shows it after its driver probed: down, IPv6 on.
    fn nic(t: &Tree, name: &str, device: bool, ipv6: Option<&str>, index: u32) {
        let d = t.sys.join("class/net").join(name);
        std::fs::create_dir_all(d.join("statistics")).unwrap();
        if device {
            std::fs::create_dir_all(d.join("device")).unwrap();
        }
        std::fs::write(d.join("flags"), "0x1002\n").unwrap();
        std::fs::write(d.join("carrier"), "0\n").unwrap();
        std::fs::write(d.join("statistics/tx_packets"), "0\n").unwrap();
        std::fs::write(d.join("address"), "52:54:00:12:34:56\n").unwrap();
        std::fs::write(d.join("ifindex"), format!("{index}\n")).unwrap();
        if let Some(v) = ipv6 {
            let c = t.proc.join("sys/net/ipv6/conf").join(name);
            std::fs::create_dir_all(&c).unwrap();
            std::fs::write(c.join("disable_ipv6"), format!("{v}\n")).unwrap();
        }
    }

    fn flags(t: &Tree, name: &str) -> String {
        std::fs::read_to_string(t.sys.join("class/net").join(name).join("flags")).unwrap()
    }

    fn ipv6(t: &Tree, name: &str) -> String {
        std::fs::read_to_string(
            t.proc
                .join("sys/net/ipv6/conf")
                .join(name)
                .join("disable_ipv6"),
        )
        .unwrap()
        .trim()
        .to_owned()
    }

    #[test]
    fn nics_go_up_with_ipv6_off_until_release_restores_it() {
        let t = tree();
        nic(&t, "lo", false, Some("0"), 1);
        nic(&t, "eth0", true, Some("0"), 2);
        let mut e = EarlyLinks::new(&t.sys, &t.proc);
        let r = e.raise_new();
        assert_eq!(r.up, ["eth0"]);
        assert!(r.failed.is_empty());
        assert_eq!(flags(&t, "eth0"), "0x1003");
        assert_eq!(ipv6(&t, "eth0"), "1", "IPv6 on while unverified");
        assert_eq!(flags(&t, "lo"), "0x1002\n", "loopback is not a NIC");
        assert_eq!(ipv6(&t, "lo"), "0");

        let released = e.release();
        assert_eq!(released.len(), 1);
        assert_eq!(released[0].name, "eth0");
        assert_eq!(released[0].tx_packets, Some(0));
        assert!(!released[0].carrier);
        assert!(released[0].error.is_none());
        assert_eq!(ipv6(&t, "eth0"), "0");
        assert_eq!(flags(&t, "eth0"), "0x1003", "release leaves the link up");
    }

    #[test]
    fn each_nic_is_raised_once_as_drivers_load() {
        let t = tree();
        let mut e = EarlyLinks::new(&t.sys, &t.proc);
        assert!(e.raise_new().up.is_empty(), "no driver loaded yet");
        nic(&t, "enp0s2", true, Some("0"), 2);
        assert_eq!(e.raise_new().up, ["enp0s2"]);
        // Someone (netup, later) takes it down again: not raised a second time.
        std::fs::write(t.sys.join("class/net/enp0s2/flags"), "0x1002").unwrap();
        nic(&t, "enp0s3", true, Some("0"), 3);
        assert_eq!(e.raise_new().up, ["enp0s3"]);
        assert_eq!(flags(&t, "enp0s2"), "0x1002");
        assert_eq!(e.raised().collect::<Vec<_>>(), ["enp0s2", "enp0s3"]);
    }

    #[test]
    fn an_admin_disabled_ipv6_stays_disabled_after_release() {
        let t = tree();
        nic(&t, "eth0", true, Some("1"), 2);
        let mut e = EarlyLinks::new(&t.sys, &t.proc);
        assert_eq!(e.raise_new().up, ["eth0"]);
        let _ = e.release();
        assert_eq!(ipv6(&t, "eth0"), "1");
    }

    #[test]
    fn without_ipv6_in_the_kernel_the_link_still_goes_up() {
        let t = tree();
        nic(&t, "eth0", true, None, 2);
        let mut e = EarlyLinks::new(&t.sys, &t.proc);
        assert_eq!(e.raise_new().up, ["eth0"]);
        assert_eq!(flags(&t, "eth0"), "0x1003");
        let released = e.release();
        assert!(released[0].error.is_none());
    }

    #[test]
    fn a_nic_whose_ipv6_cannot_be_disabled_stays_down() {
        let t = tree();
        nic(&t, "eth0", true, Some("0"), 2);
        // A directory where the file should be: reads and writes fail.
        let v6 = t.proc.join("sys/net/ipv6/conf/eth0/disable_ipv6");
        std::fs::remove_file(&v6).unwrap();
        std::fs::create_dir(&v6).unwrap();
        let mut e = EarlyLinks::new(&t.sys, &t.proc);
        let r = e.raise_new();
        assert!(r.up.is_empty());
        assert_eq!(r.failed.len(), 1);
        assert!(matches!(r.failed[0].1, EarlyError::Io { .. }));
        assert_eq!(flags(&t, "eth0"), "0x1002\n", "went up with IPv6 on");
        assert!(e.release().is_empty());
    }

    #[test]
    fn unreadable_flags_leave_the_link_down_and_ipv6_as_it_was() {
        let t = tree();
        nic(&t, "eth0", true, Some("0"), 2);
        std::fs::write(t.sys.join("class/net/eth0/flags"), "garbage").unwrap();
        let mut e = EarlyLinks::new(&t.sys, &t.proc);
        let r = e.raise_new();
        assert!(matches!(&r.failed[0].1, EarlyError::Flags(f) if f == "garbage"));
        assert_eq!(ipv6(&t, "eth0"), "0");
    }
}
