//! Capacity offered to the grid: raw resource units (CRU, MRU, SRU, HRU), what the
//! node keeps for itself, what is left for tenants, and the grid units derived
//! from that. Computed from an [`Inventory`](crate::inventory::Inventory) only, so
//! it is a pure function and tested with plain values.
//!
//! - **CRU**: online logical CPUs.
//! - **MRU**: usable memory (`MemTotal`).
//! - **SRU**: bytes of eligible SSD and NVMe disks.
//! - **HRU**: bytes of eligible HDDs, plus eligible disks whose kind is unknown
//!   (reported separately as `unclassified_bytes`). Counting an unknown disk as
//!   HDD promises only the slowest class of storage, which the disk certainly
//!   meets; the seek probe or the board profile moves it to SRU once known.
//!
//! The reservation and the unit sizes are explained on their constants and in
//! `agent/INVENTORY.md`.

use serde::Serialize;

use crate::disks::{Disk, DiskKind};

const GIB: u64 = 1 << 30;

/// Memory kept for the system: at least this much. The agent, the kernel's page
/// tables and slab, network buffers and the storage stack need about 1–1.5 GiB on
/// a busy node regardless of its size; 2 GiB leaves headroom so tenant OOMs never
/// start with the node's own services.
pub const MEMORY_RESERVE_MIN: u64 = 2 * GIB;
/// …or this share of memory, whichever is larger: page tables, per-CPU caches and
/// the page cache that keeps pools fast all grow with memory.
pub const MEMORY_RESERVE_PERCENT: u64 = 10;
/// Nodes with at least this many logical CPUs keep one for the system: the agent's
/// health and uptime reports, networking and storage checksums must not starve when
/// tenants saturate every CPU (missed uptime reports cost the farmer rewards).
/// Smaller nodes keep none, since one CPU would be a quarter or more of what they
/// sell; there the system relies on its higher cgroup CPU weight instead.
pub const CPU_RESERVE_FROM: u32 = 8;
/// One more reserved CPU per this many logical CPUs (interrupt and softirq load grows
/// with the NICs and disks big machines carry).
pub const CPU_RESERVE_PER: u32 = 64;
/// Storage kept for the system (node state, logs, the workload image cache), taken
/// from SSD when there is enough, else from HDD.
pub const STORAGE_RESERVE: u64 = 32 * GIB;
/// One compute unit: 1 logical CPU with 4 GiB of memory (the 1:4 ratio of general
/// purpose cloud instances).
pub const CU_MEMORY: u64 = 4 * GIB;
/// One storage unit is 1 TiB of HDD…
pub const SU_HDD: u64 = 1 << 40;
/// …or 256 GiB of SSD (about the same purchase cost per byte class, 4:1).
pub const SU_SSD: u64 = 256 * GIB;

/// Raw resource units.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Resources {
    /// Logical CPUs.
    pub cru: u32,
    /// Memory, bytes.
    pub mru_bytes: u64,
    /// SSD/NVMe storage, bytes.
    pub sru_bytes: u64,
    /// HDD storage, bytes.
    pub hru_bytes: u64,
}

/// Grid capacity units derived from the available resources.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct GridUnits {
    /// Compute units: `min(cru, mru / 4 GiB)`, two decimals, rounded down.
    pub cu: f64,
    /// Storage units: `hru / 1 TiB + sru / 256 GiB`, two decimals, rounded down.
    pub su: f64,
}

/// Capacity offered to the grid.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Capacity {
    /// Logical CPUs.
    pub cru: u32,
    /// Memory, bytes.
    pub mru_bytes: u64,
    /// Eligible SSD/NVMe bytes.
    pub sru_bytes: u64,
    /// Eligible HDD bytes, including `unclassified_bytes`.
    pub hru_bytes: u64,
    /// The part of `hru_bytes` on disks whose kind is unknown.
    pub unclassified_bytes: u64,
    /// What the system keeps.
    pub reserved: Resources,
    /// What is left for tenants: the totals less `reserved`.
    pub available: Resources,
    /// Grid units of `available`.
    pub units: GridUnits,
}

fn floor2(x: f64) -> f64 {
    (x * 100.0).floor() / 100.0
}

/// Memory the system keeps out of `total`.
pub fn memory_reserve(total: u64) -> u64 {
    (total / 100 * MEMORY_RESERVE_PERCENT)
        .max(MEMORY_RESERVE_MIN)
        .min(total)
}

/// Logical CPUs the system keeps out of `logical`.
pub fn cpu_reserve(logical: u32) -> u32 {
    if logical >= CPU_RESERVE_FROM {
        1 + logical / CPU_RESERVE_PER
    } else {
        0
    }
}

/// Computes capacity from CPU count, memory and disks.
pub fn compute(logical_cpus: Option<u32>, memory_bytes: Option<u64>, disks: &[Disk]) -> Capacity {
    let cru = logical_cpus.unwrap_or(0);
    let mru = memory_bytes.unwrap_or(0);
    let (mut sru, mut hru, mut unclassified) = (0u64, 0u64, 0u64);
    for d in disks.iter().filter(|d| d.eligible) {
        let size = d.size_bytes.unwrap_or(0);
        match d.kind {
            DiskKind::Ssd | DiskKind::Nvme => sru = sru.saturating_add(size),
            DiskKind::Hdd => hru = hru.saturating_add(size),
            DiskKind::Unknown => {
                hru = hru.saturating_add(size);
                unclassified = unclassified.saturating_add(size);
            }
        }
    }
    let (res_sru, res_hru) = if sru >= 2 * STORAGE_RESERVE {
        (STORAGE_RESERVE, 0)
    } else if hru >= 2 * STORAGE_RESERVE {
        (0, STORAGE_RESERVE)
    } else {
        // Too little storage to sell any after the system's share: keep it all.
        (sru, hru)
    };
    let reserved = Resources {
        cru: cpu_reserve(cru),
        mru_bytes: memory_reserve(mru),
        sru_bytes: res_sru,
        hru_bytes: res_hru,
    };
    let available = Resources {
        cru: cru - reserved.cru,
        mru_bytes: mru - reserved.mru_bytes,
        sru_bytes: sru - reserved.sru_bytes,
        hru_bytes: hru - reserved.hru_bytes,
    };
    let units = GridUnits {
        cu: floor2((available.cru as f64).min(available.mru_bytes as f64 / CU_MEMORY as f64)),
        su: floor2(
            available.hru_bytes as f64 / SU_HDD as f64 + available.sru_bytes as f64 / SU_SSD as f64,
        ),
    };
    Capacity {
        cru,
        mru_bytes: mru,
        sru_bytes: sru,
        hru_bytes: hru,
        unclassified_bytes: unclassified,
        reserved,
        available,
        units,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_reserve_is_max_of_ten_percent_and_two_gib() {
        assert_eq!(memory_reserve(8 * GIB), 2 * GIB);
        assert_eq!(memory_reserve(64 * GIB), 64 * GIB / 100 * 10);
        assert_eq!(memory_reserve(GIB), GIB, "never more than there is");
        assert_eq!(memory_reserve(0), 0);
    }

    #[test]
    fn cpu_reserve_steps() {
        assert_eq!(
            [2, 4, 7, 8, 63, 64, 128].map(cpu_reserve),
            [0, 0, 0, 1, 1, 2, 3]
        );
    }

    #[test]
    fn empty_machine_is_zero_not_a_panic() {
        let c = compute(None, None, &[]);
        assert_eq!(c.available, Resources::default());
        assert_eq!(c.units, GridUnits::default());
    }

    #[test]
    fn units_follow_the_available_resources() {
        // 16 CPUs, 64 GiB: 15 CPUs and 57.6 GiB available → min(15, 14.4) = 14.4 CU.
        let c = compute(Some(16), Some(64 * GIB), &[]);
        assert_eq!(c.available.cru, 15);
        assert_eq!(c.units.cu, 14.4);
    }
}
