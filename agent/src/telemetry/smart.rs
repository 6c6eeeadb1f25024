//! SMART counters as telemetry: the values whose growth health's trend rules
//! watch (`disk.<name>.smart_<counter>`).
//!
//! SMART is read by the inventory (smartctl, minutes apart, never waking a
//! sleeping disk), not by the 1 s sampler; whoever runs that poll hands the disks
//! here and records the batch into the same [`History`](super::History).

use super::history::Batch;
use crate::inventory::Disk;

/// The counters of every disk that reported them, as one batch at `unix_s`.
pub fn batch(unix_s: u64, disks: &[Disk]) -> Batch {
    let mut values = Vec::new();
    for d in disks {
        let s = &d.smart;
        let media_errors = s.nvme.as_ref().and_then(|n| n.media_errors);
        for (counter, v) in [
            ("reallocated_sectors", s.reallocated_sectors),
            ("pending_sectors", s.pending_sectors),
            ("offline_uncorrectable", s.offline_uncorrectable),
            ("grown_defects", s.grown_defects),
            ("media_errors", media_errors),
        ] {
            if let Some(v) = v {
                values.push((format!("disk.{}.smart_{counter}", d.name), v as f64));
            }
        }
    }
    Batch { unix_s, values }
}
