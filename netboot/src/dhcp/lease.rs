//! The address pool and its leases, persisted as one JSON file written atomically.

use std::{
    collections::BTreeMap,
    io::Write as _,
    net::Ipv4Addr,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

/// How long an offered (not yet requested) address is held for its client, seconds.
/// Long enough for a slow PXE ROM to come back with its REQUEST.
pub const OFFER_HOLD_SECS: u64 = 60;

/// How long a declined address is kept out of the pool, seconds (RFC 2131 §3.1.5:
/// someone else answers ARP for it).
pub const DECLINE_HOLD_SECS: u64 = 600;

/// A hardware address: up to 16 bytes, usually a 6-byte MAC.
pub type HwAddr = Vec<u8>;

/// The state of one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaseState {
    /// Offered, waiting for the REQUEST.
    Offered,
    /// Acknowledged: the client uses it.
    Bound,
    /// Declined by a client: in use by someone we do not know.
    Declined,
}

/// One lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lease {
    /// The address.
    pub ip: Ipv4Addr,
    /// The client's hardware address, lower-case hex with dashes.
    pub mac: String,
    /// State.
    pub state: LeaseState,
    /// Unix seconds after which the address is free again.
    pub expires: u64,
}

/// Errors from the lease file.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// Reading or writing the file failed.
    #[error("Lease file {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a lease list.
    #[error("Lease file {path} is not valid")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
}

/// A contiguous pool plus reservations by hardware address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pool {
    /// First address handed out.
    pub first: Ipv4Addr,
    /// Last address handed out (inclusive).
    pub last: Ipv4Addr,
    /// Fixed addresses by MAC (`52-54-00-…` form). These may lie outside the range.
    pub reservations: BTreeMap<String, Ipv4Addr>,
}

/// The lease table.
#[derive(Debug, Clone, Default)]
pub struct Leases {
    by_ip: BTreeMap<Ipv4Addr, Lease>,
}

impl Leases {
    /// Loads the lease file, or an empty table when it does not exist yet.
    pub fn load(path: &Path) -> Result<Self, LeaseError> {
        let text = match std::fs::read(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(source) => {
                return Err(LeaseError::Io {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        let list: Vec<Lease> =
            serde_json::from_slice(&text).map_err(|source| LeaseError::Parse {
                path: path.to_owned(),
                source,
            })?;
        Ok(Self {
            by_ip: list.into_iter().map(|l| (l.ip, l)).collect(),
        })
    }

    /// Writes the table: temporary file, fsync, rename, so a crash leaves the old or
    /// the new file, never half of one.
    pub fn save(&self, path: &Path) -> Result<(), LeaseError> {
        let io = |source| LeaseError::Io {
            path: path.to_owned(),
            source,
        };
        let list: Vec<&Lease> = self.by_ip.values().collect();
        let json = serde_json::to_vec_pretty(&list).map_err(|source| LeaseError::Parse {
            path: path.to_owned(),
            source,
        })?;
        let tmp = path.with_extension("tmp");
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        f.write_all(&json).map_err(io)?;
        f.sync_all().map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)?;
        Ok(())
    }

    /// All leases, by address.
    pub fn iter(&self) -> impl Iterator<Item = &Lease> {
        self.by_ip.values()
    }

    /// The live lease on `ip`, if any.
    pub fn get(&self, ip: Ipv4Addr, now: u64) -> Option<&Lease> {
        self.by_ip.get(&ip).filter(|l| l.expires > now)
    }

    /// The live lease held by `mac`, if any (declined entries do not count).
    pub fn by_mac(&self, mac: &str, now: u64) -> Option<&Lease> {
        self.by_ip
            .values()
            .find(|l| l.mac == mac && l.expires > now && l.state != LeaseState::Declined)
    }

    /// True when `ip` is free for `mac` (unused, expired, or already this client's).
    pub fn free_for(&self, ip: Ipv4Addr, mac: &str, now: u64) -> bool {
        match self.get(ip, now) {
            None => true,
            Some(l) => l.mac == mac && l.state != LeaseState::Declined,
        }
    }

    /// Sets the lease on `ip`.
    pub fn put(&mut self, lease: Lease) {
        self.by_ip.insert(lease.ip, lease);
    }

    /// Frees `ip` if `mac` holds it. Returns whether anything changed.
    pub fn release(&mut self, ip: Ipv4Addr, mac: &str) -> bool {
        if self.by_ip.get(&ip).is_some_and(|l| l.mac == mac) {
            self.by_ip.remove(&ip);
            return true;
        }
        false
    }

    /// Drops expired leases. Returns whether anything changed.
    pub fn expire(&mut self, now: u64) -> bool {
        let before = self.by_ip.len();
        self.by_ip.retain(|_, l| l.expires > now);
        before != self.by_ip.len()
    }
}

impl Pool {
    /// True when `ip` is in the range or reserved for `mac`.
    pub fn may_give(&self, ip: Ipv4Addr, mac: &str) -> bool {
        if let Some(r) = self.reservations.get(mac) {
            return *r == ip;
        }
        self.in_range(ip) && !self.reservations.values().any(|r| *r == ip)
    }

    /// True when `ip` lies in the dynamic range.
    pub fn in_range(&self, ip: Ipv4Addr) -> bool {
        ip >= self.first && ip <= self.last
    }

    /// The address to offer `mac`: its reservation, its current lease, the address it
    /// asked for, or the first free one — in that order.
    pub fn pick(
        &self,
        leases: &Leases,
        mac: &str,
        requested: Option<Ipv4Addr>,
        now: u64,
    ) -> Option<Ipv4Addr> {
        if let Some(r) = self.reservations.get(mac) {
            return leases.free_for(*r, mac, now).then_some(*r);
        }
        if let Some(l) = leases.by_mac(mac, now)
            && self.may_give(l.ip, mac)
        {
            return Some(l.ip);
        }
        if let Some(r) = requested
            && self.may_give(r, mac)
            && leases.free_for(r, mac, now)
        {
            return Some(r);
        }
        let (first, last) = (u32::from(self.first), u32::from(self.last));
        (first..=last)
            .map(Ipv4Addr::from)
            .find(|ip| self.may_give(*ip, mac) && leases.free_for(*ip, mac, now))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn pool() -> Pool {
        Pool {
            first: Ipv4Addr::new(10, 0, 0, 10),
            last: Ipv4Addr::new(10, 0, 0, 11),
            reservations: [("aa-bb".to_owned(), Ipv4Addr::new(10, 0, 0, 50))].into(),
        }
    }

    #[test]
    fn pool_runs_out_and_expired_leases_come_back() {
        let p = pool();
        let mut l = Leases::default();
        for (i, mac) in ["m1", "m2"].iter().enumerate() {
            let ip = p.pick(&l, mac, None, 0).unwrap();
            assert_eq!(ip, Ipv4Addr::new(10, 0, 0, 10 + i as u8));
            l.put(Lease {
                ip,
                mac: (*mac).to_owned(),
                state: LeaseState::Bound,
                expires: 100,
            });
        }
        assert_eq!(p.pick(&l, "m3", None, 50), None);
        assert_eq!(
            p.pick(&l, "m1", None, 50),
            Some(Ipv4Addr::new(10, 0, 0, 10))
        );
        assert_eq!(
            p.pick(&l, "m3", None, 100),
            Some(Ipv4Addr::new(10, 0, 0, 10))
        );
        assert_eq!(
            p.pick(&l, "aa-bb", None, 0),
            Some(Ipv4Addr::new(10, 0, 0, 50))
        );
    }

    #[test]
    fn lease_file_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("leases.json");
        assert_eq!(Leases::load(&path).unwrap().iter().count(), 0);
        let mut l = Leases::default();
        l.put(Lease {
            ip: Ipv4Addr::new(10, 0, 0, 10),
            mac: "m1".into(),
            state: LeaseState::Bound,
            expires: 99,
        });
        l.save(&path).unwrap();
        let back = Leases::load(&path).unwrap();
        assert_eq!(
            back.by_mac("m1", 0).unwrap().ip,
            Ipv4Addr::new(10, 0, 0, 10)
        );
        std::fs::write(&path, b"{").unwrap();
        assert!(matches!(Leases::load(&path), Err(LeaseError::Parse { .. })));
    }
}
