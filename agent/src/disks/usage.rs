//! Which disks are mounted or used as swap, from `proc/self/mounts` and
//! `proc/swaps` under the root.

use std::collections::BTreeMap;

use super::Disk;
use crate::hal::{Gaps, SysRoot};

/// Mount and swap users, by disk name.
#[derive(Debug, Default)]
pub(super) struct Usage {
    by_disk: BTreeMap<String, Vec<String>>,
}

/// Undoes the octal escapes (`\040` for a space) that the kernel writes in mount
/// tables.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Usage {
    pub(super) fn read(root: &SysRoot, disks: &[Disk], gaps: &mut Gaps) -> Self {
        // Kernel name (disk or partition) → owning disk; dm names → dm-N.
        let mut owner: BTreeMap<String, String> = BTreeMap::new();
        for d in disks {
            owner.insert(d.name.clone(), d.name.clone());
            for p in &d.partitions {
                owner.insert(p.clone(), d.name.clone());
            }
            if d.name.starts_with("dm-")
                && let Ok(n) = root.read_string(&format!("sys/block/{}/dm/name", d.name))
            {
                owner.insert(format!("mapper/{n}"), d.name.clone());
            }
        }
        let numbers = if root.is_host() {
            super::dev_numbers(root, disks)
        } else {
            BTreeMap::new()
        };

        let mut u = Usage::default();
        let mounts = root
            .read_raw("proc/self/mounts")
            .or_else(|_| root.read_raw("proc/mounts"));
        if let Some(text) = gaps.note("proc/self/mounts", mounts) {
            for line in text.lines() {
                let mut f = line.split_whitespace();
                let (Some(src), Some(mp)) = (f.next(), f.next()) else {
                    continue;
                };
                let Some(dev) = src.strip_prefix("/dev/") else {
                    continue;
                };
                let disk = owner.get(dev).cloned().or_else(|| {
                    if numbers.is_empty() {
                        return None;
                    }
                    // `/dev/root` and udev symlinks: match by device number on the
                    // live host.
                    let st = nix::sys::stat::stat(std::path::Path::new(&unescape(mp))).ok()?;
                    let mm = format!(
                        "{}:{}",
                        nix::sys::stat::major(st.st_dev),
                        nix::sys::stat::minor(st.st_dev)
                    );
                    numbers.get(&mm).cloned()
                });
                if let Some(disk) = disk {
                    u.by_disk.entry(disk).or_default().push(unescape(mp));
                }
            }
        }
        if let Some(text) = gaps.note("proc/swaps", root.read_raw("proc/swaps")) {
            for line in text.lines().skip(1) {
                let Some(src) = line.split_whitespace().next() else {
                    continue;
                };
                if let Some(disk) = src.strip_prefix("/dev/").and_then(|d| owner.get(d)) {
                    u.by_disk
                        .entry(disk.clone())
                        .or_default()
                        .push(format!("swap ({})", unescape(src)));
                }
            }
        }
        u
    }

    pub(super) fn mounts_of(&self, d: &Disk) -> Vec<String> {
        let mut v = self.by_disk.get(&d.name).cloned().unwrap_or_default();
        v.sort();
        v.dedup();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn octal_escapes_are_undone() {
        assert_eq!(unescape(r"/mnt/my\040disk"), "/mnt/my disk");
        assert_eq!(unescape(r"/a\\b"), r"/a\\b");
        assert_eq!(unescape(r"/end\04"), r"/end\04");
    }
}
