//! CPU topology from `sys/devices/system/cpu` and `proc/cpuinfo`.
//!
//! sysfs topology is the kernel's own view and works on every architecture, so it
//! wins when it covers every online CPU; `/proc/cpuinfo` (x86 `physical id` /
//! `core id`) fills in when sysfs is partial, as in trimmed captures. The model
//! name only exists in cpuinfo.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::hal::{Gaps, SysRoot};

const CPU_DIR: &str = "sys/devices/system/cpu";
const NODE_DIR: &str = "sys/devices/system/node";

/// CPU topology. Counts are `null` when nothing under the root tells them.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Cpu {
    /// Online logical CPUs (hardware threads).
    pub logical: Option<u32>,
    /// Physical cores (distinct package/core pairs).
    pub cores: Option<u32>,
    /// Populated sockets (distinct physical packages).
    pub sockets: Option<u32>,
    /// Hardware threads per core (`logical / cores`, 2 with SMT on most x86).
    pub threads_per_core: Option<u32>,
    /// Model name as the CPU reports it.
    pub model: Option<String>,
    /// NUMA nodes; 1 on a kernel or machine without NUMA.
    pub numa_nodes: Option<u32>,
    /// Where `cores` and `sockets` came from: `sysfs` or `cpuinfo`.
    pub topology_source: Option<String>,
}

/// Parses a kernel CPU list such as `0-3,8,10-11` into CPU numbers.
pub(crate) fn parse_cpulist(s: &str) -> Option<BTreeSet<u32>> {
    let mut out = BTreeSet::new();
    for part in s.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u32, u32) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
                // A garbled range must not become a four-billion-element loop.
                if b < a || b - a > 65_536 {
                    return None;
                }
                out.extend(a..=b);
            }
            None => {
                out.insert(part.trim().parse().ok()?);
            }
        }
    }
    Some(out)
}

/// One processor block of /proc/cpuinfo.
#[derive(Debug, Default)]
struct CpuinfoEntry {
    package: Option<i64>,
    core: Option<i64>,
}

#[derive(Debug, Default)]
struct Cpuinfo {
    entries: BTreeMap<u32, CpuinfoEntry>,
    model: Option<String>,
}

fn parse_cpuinfo(text: &str) -> Cpuinfo {
    let mut info = Cpuinfo::default();
    let mut current: Option<u32> = None;
    for line in text.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let (k, v) = (k.trim(), v.trim());
        match k {
            "processor" => {
                current = v.parse().ok();
                if let Some(n) = current {
                    info.entries.entry(n).or_default();
                }
            }
            // x86 "model name"; "cpu model" on MIPS; "cpu" on POWER; "uarch" on
            // RISC-V. ARM's "Processor" line names the model on older kernels.
            "model name" | "cpu model" | "cpu" | "uarch" | "Processor"
                if info.model.is_none() && !v.is_empty() =>
            {
                info.model = Some(v.to_owned());
            }
            "physical id" => {
                if let Some(e) = current.and_then(|n| info.entries.get_mut(&n)) {
                    e.package = v.parse().ok();
                }
            }
            "core id" => {
                if let Some(e) = current.and_then(|n| info.entries.get_mut(&n)) {
                    e.core = v.parse().ok();
                }
            }
            _ => {}
        }
    }
    info
}

/// (sockets, cores) from per-CPU (package, core) pairs.
fn count(pairs: &[(i64, i64)]) -> (u32, u32) {
    let sockets: BTreeSet<i64> = pairs.iter().map(|p| p.0).collect();
    let cores: BTreeSet<(i64, i64)> = pairs.iter().copied().collect();
    (sockets.len() as u32, cores.len() as u32)
}

/// Reads the CPU topology under `root`.
pub(super) fn collect(root: &SysRoot, gaps: &mut Gaps) -> Cpu {
    let cpuinfo = gaps
        .note("proc/cpuinfo", root.read_raw("proc/cpuinfo"))
        .map(|t| parse_cpuinfo(&t))
        .unwrap_or_default();

    // Online CPUs: sysfs `online` is authoritative; cpuinfo lists online CPUs too;
    // counting cpuN directories is the last resort (it includes offline ones, so
    // `offline` is subtracted).
    let online = match root.read_string(&format!("{CPU_DIR}/online")) {
        Ok(s) => parse_cpulist(&s).or_else(|| {
            gaps.push(
                format!("{CPU_DIR}/online"),
                format!("unexpected value {s:?}"),
            );
            None
        }),
        Err(e) => {
            gaps.note::<()>(&format!("{CPU_DIR}/online"), Err(e));
            None
        }
    };
    let online = online
        .or_else(|| {
            (!cpuinfo.entries.is_empty()).then(|| cpuinfo.entries.keys().copied().collect())
        })
        .or_else(|| {
            let dirs: BTreeSet<u32> = root
                .list(CPU_DIR)
                .ok()?
                .iter()
                .filter_map(|n| n.strip_prefix("cpu")?.parse().ok())
                .collect();
            let offline = root
                .read_string(&format!("{CPU_DIR}/offline"))
                .ok()
                .and_then(|s| parse_cpulist(&s))
                .unwrap_or_default();
            let on: BTreeSet<u32> = dirs.difference(&offline).copied().collect();
            (!on.is_empty()).then_some(on)
        });

    let mut cpu = Cpu {
        logical: online.as_ref().map(|s| s.len() as u32),
        model: cpuinfo.model.clone(),
        ..Cpu::default()
    };

    if let Some(online) = &online {
        let mut sysfs = Vec::new();
        for n in online {
            let topo = format!("{CPU_DIR}/cpu{n}/topology");
            let pkg = root.read_parse::<i64>(&format!("{topo}/physical_package_id"));
            let core = root.read_parse::<i64>(&format!("{topo}/core_id"));
            if let (Ok(p), Ok(c)) = (pkg, core) {
                sysfs.push((p, c));
            }
        }
        let info: Vec<(i64, i64)> = online
            .iter()
            .filter_map(|n| {
                let e = cpuinfo.entries.get(n)?;
                Some((e.package?, e.core?))
            })
            .collect();
        let (pairs, source) = if sysfs.len() == online.len() {
            (sysfs, "sysfs")
        } else if info.len() == online.len() {
            (info, "cpuinfo")
        } else if sysfs.len() >= info.len() && !sysfs.is_empty() {
            gaps.push(
                "cpu topology",
                format!("known for {} of {} CPUs", sysfs.len(), online.len()),
            );
            (sysfs, "sysfs")
        } else if !info.is_empty() {
            gaps.push(
                "cpu topology",
                format!("known for {} of {} CPUs", info.len(), online.len()),
            );
            (info, "cpuinfo")
        } else {
            (Vec::new(), "")
        };
        if !pairs.is_empty() {
            let (sockets, cores) = count(&pairs);
            cpu.sockets = Some(sockets);
            cpu.cores = Some(cores);
            cpu.topology_source = Some(source.to_owned());
            let logical = online.len() as u32;
            // Only meaningful when the topology covers every CPU.
            if pairs.len() == online.len() && cores > 0 && logical.is_multiple_of(cores) {
                cpu.threads_per_core = Some(logical / cores);
            }
        }
    }

    cpu.numa_nodes = numa_nodes(root, gaps, online.is_some());
    cpu
}

fn numa_nodes(root: &SysRoot, gaps: &mut Gaps, cpus_known: bool) -> Option<u32> {
    if let Ok(s) = root.read_string(&format!("{NODE_DIR}/online"))
        && let Some(set) = parse_cpulist(&s)
        && !set.is_empty()
    {
        return Some(set.len() as u32);
    }
    match root.list(NODE_DIR) {
        Ok(names) => {
            let n = names
                .iter()
                .filter(|n| {
                    n.strip_prefix("node")
                        .is_some_and(|d| d.parse::<u32>().is_ok())
                })
                .count() as u32;
            Some(n.max(1))
        }
        // A kernel built without NUMA has no node directory: one memory node.
        Err(e) if e.is_not_found() => (cpus_known && root.exists(CPU_DIR)).then_some(1),
        Err(e) => {
            gaps.push(NODE_DIR, e);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpulist_parses_ranges_and_rejects_garbage() {
        assert_eq!(parse_cpulist("0-3,8,10-11").unwrap().len(), 7);
        assert_eq!(parse_cpulist("0\n").unwrap().len(), 1);
        assert!(parse_cpulist("3-1").is_none());
        assert!(parse_cpulist("0-4294967295").is_none());
        assert!(parse_cpulist("zero").is_none());
    }

    #[test]
    fn cpuinfo_two_sockets_with_smt() {
        let mut text = String::new();
        for n in 0..8 {
            text.push_str(&format!(
                "processor\t: {n}\nmodel name\t: Test CPU\nphysical id\t: {}\ncore id\t\t: {}\n\n",
                n / 4,
                (n % 4) / 2
            ));
        }
        let info = parse_cpuinfo(&text);
        assert_eq!(info.entries.len(), 8);
        assert_eq!(info.model.as_deref(), Some("Test CPU"));
        let pairs: Vec<_> = info
            .entries
            .values()
            .map(|e| (e.package.unwrap(), e.core.unwrap()))
            .collect();
        assert_eq!(count(&pairs), (2, 4));
    }
}
