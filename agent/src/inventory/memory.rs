//! Memory size from `proc/meminfo`.

use serde::Serialize;

use crate::hal::{Gaps, SysRoot};

/// Memory.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Memory {
    /// Usable RAM (`MemTotal`): installed memory less what firmware and the kernel
    /// image keep. `null` when `proc/meminfo` is unreadable.
    pub total_bytes: Option<u64>,
    /// Swap configured (`SwapTotal`).
    pub swap_bytes: Option<u64>,
}

/// Value of `key` in meminfo text, in bytes (the file says `kB` and means KiB).
pub(crate) fn meminfo_bytes(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        if k.trim() != key {
            return None;
        }
        let mut it = v.split_whitespace();
        let n: u64 = it.next()?.parse().ok()?;
        match it.next() {
            Some("kB") => n.checked_mul(1024),
            None => Some(n),
            Some(_) => None,
        }
    })
}

/// Reads memory under `root`.
pub(super) fn collect(root: &SysRoot, gaps: &mut Gaps) -> Memory {
    let Some(text) = gaps.note("proc/meminfo", root.read_raw("proc/meminfo")) else {
        return Memory::default();
    };
    let total = meminfo_bytes(&text, "MemTotal");
    if total.is_none() {
        gaps.push("proc/meminfo", "no readable MemTotal line");
    }
    Memory {
        total_bytes: total,
        swap_bytes: meminfo_bytes(&text, "SwapTotal"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_kib_to_bytes_and_garbage() {
        let t = "MemTotal:       15666184 kB\nSwapTotal: 0 kB\nBad: x kB\n";
        assert_eq!(meminfo_bytes(t, "MemTotal"), Some(15_666_184 * 1024));
        assert_eq!(meminfo_bytes(t, "SwapTotal"), Some(0));
        assert_eq!(meminfo_bytes(t, "Bad"), None);
        assert_eq!(meminfo_bytes(t, "Missing"), None);
        assert_eq!(
            meminfo_bytes("MemTotal: 99999999999999999999 kB", "MemTotal"),
            None
        );
    }
}
