//! The boot timeline: one console line per boot step, stamped like the kernel's
//! own messages with the seconds since the kernel started, so the serial log of
//! a booted node reads as a timeline (`[   23.090] nodus-init: modules loaded …`,
//! `[   31.200] nodus-agent: first inventory pass done`).
//!
//! The stamp is the guest's clock; the QEMU harness adds the host side (QEMU
//! start → kernel start) when it reports boot-to-ready.

use std::fmt::Display;

/// Seconds since the kernel started (`/proc/uptime`, 10 ms resolution).
pub fn uptime_secs() -> Option<f64> {
    std::fs::read_to_string("/proc/uptime")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The stamp in front of a timeline line: `[   23.090] `, or nothing when the
/// uptime cannot be read.
pub fn stamp() -> String {
    uptime_secs()
        .map(|s| format!("[{s:>9.3}] "))
        .unwrap_or_default()
}

/// Whether this process is part of a node's boot: the init itself, or a service
/// the init started (`NODUS_INIT=1`). Outside a boot, marks print nothing.
pub fn booted() -> bool {
    std::process::id() == 1 || std::env::var_os("NODUS_INIT").is_some_and(|v| v == "1")
}

/// Prints `[ uptime] nodus-<who>: <step>` on standard error when [`booted`].
pub fn mark(who: &str, step: impl Display) {
    if booted() {
        eprintln!("{}nodus-{who}: {step}", stamp());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamp_reads_like_a_kernel_timestamp() {
        // Linux test hosts have /proc/uptime; the stamp is `[ seconds.millis] `.
        let s = stamp();
        if uptime_secs().is_some() {
            assert!(s.starts_with('[') && s.ends_with("] "), "{s:?}");
            let inner = s.trim_start_matches('[').trim_end_matches("] ").trim();
            let (whole, frac) = inner.split_once('.').unwrap_or(("", ""));
            assert!(whole.parse::<u64>().is_ok(), "{s:?}");
            assert_eq!(frac.len(), 3, "{s:?}");
        } else {
            assert_eq!(s, "");
        }
    }
}
