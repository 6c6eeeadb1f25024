//! Signed uptime reports and how they become credited uptime.
//!
//! A node signs an [`UptimeReport`] (purpose `UPTIME`) saying how long it has been
//! up; the statement's `issued_at` is the moment of measurement, `T`, and the
//! implied boot time is `B = T − uptime`. A report is accepted when:
//!
//! - `T ≤ block time + uptime_drift_secs` (not from the future);
//! - `T` is later than the node's previous report (so a report counts once);
//! - it either continues the previous boot session (`|B − B_prev| ≤ drift`, and
//!   uptime grew) or starts a new one that booted after the previous report
//!   (`B ≥ T_prev − drift`): a node cannot claim to have been up at a time it
//!   already reported differently;
//! - `T` falls in an epoch that is not settled yet.
//!
//! # Late reports lose nothing
//!
//! The report credits the interval `[max(B, T_prev, registration), T)` to the
//! epochs it overlaps, by the report's *content*, not by when it lands in a block.
//! An epoch is only settled `late_report_window_secs` after it ends, so a report
//! that spent that long in retries still credits the epoch it describes in full. A
//! node that could not report at all during an outage, but stayed up, recovers the
//! whole interval with its next report, since its uptime proves it was up
//! throughout.

use nodus_identity::Signed;
use nodus_identity::statement::purpose;
use serde::{Deserialize, Serialize};

use super::farm::{FarmError, LastReport, check_statement};
use super::{Address, State};

/// Signed by a node key: "I have been up this long" (as of the statement's
/// `issued_at`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UptimeReport {
    /// Seconds since the node booted.
    pub uptime_secs: u64,
}

/// Why an uptime report was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[non_exhaustive]
pub enum UptimeError {
    /// Purpose, network, expiry or signature.
    #[error("Uptime statement: {0}")]
    Statement(#[source] FarmError),
    /// Signed by a key that is not a registered node.
    #[error("No node {0}")]
    UnknownNode(Address),
    /// Made further in the future than the drift bound allows.
    #[error("Report time {timestamp} is ahead of block time {now} by more than the drift bound")]
    FromTheFuture {
        /// Report time.
        timestamp: u64,
        /// Block time.
        now: u64,
    },
    /// Not newer than the last report, or contradicting it.
    #[error("Report is not monotonic with the node's previous report")]
    NotMonotonic,
    /// Uptime longer than the Unix epoch.
    #[error("Uptime exceeds the report time")]
    Implausible,
    /// Made in an epoch that has already been settled.
    #[error("Report time {timestamp} is in a settled epoch (open from {open_from})")]
    TooLate {
        /// Report time.
        timestamp: u64,
        /// Start of the oldest unsettled epoch.
        open_from: u64,
    },
}

impl State {
    /// Applies an uptime report; returns the seconds credited.
    pub(crate) fn report_uptime(
        &mut self,
        report: &Signed<UptimeReport>,
    ) -> Result<u64, UptimeError> {
        let now = self.time;
        let drift = self.params.uptime_drift_secs;
        check_statement(report, purpose::UPTIME, &self.chain_id, now)
            .map_err(UptimeError::Statement)?;
        let id = Address::from(report.statement.signer);
        let node = self.nodes.get(&id).ok_or(UptimeError::UnknownNode(id))?;
        let timestamp = report.statement.issued_at;
        let uptime_secs = report.statement.payload.uptime_secs;
        if timestamp > now.saturating_add(drift) {
            return Err(UptimeError::FromTheFuture { timestamp, now });
        }
        let boot = timestamp
            .checked_sub(uptime_secs)
            .ok_or(UptimeError::Implausible)?;
        let mut start = boot.max(node.registered_at);
        if let Some(prev) = node.last_report {
            if timestamp <= prev.timestamp {
                return Err(UptimeError::NotMonotonic);
            }
            let same_session = boot.abs_diff(prev.boot_time()) <= drift;
            if same_session && uptime_secs <= prev.uptime_secs {
                return Err(UptimeError::NotMonotonic);
            }
            if !same_session && boot.saturating_add(drift) < prev.timestamp {
                return Err(UptimeError::NotMonotonic);
            }
            start = start.max(prev.timestamp);
        }
        let open_from = self.epoch_start(self.settled_epochs);
        if timestamp <= open_from {
            return Err(UptimeError::TooLate {
                timestamp,
                open_from,
            });
        }
        start = start.max(open_from);
        // Credit [start, timestamp) to each epoch it overlaps.
        let mut credited = 0u64;
        let mut from = start;
        while from < timestamp {
            let epoch = self.epoch_of(from);
            let to = self.epoch_start(epoch.saturating_add(1)).min(timestamp);
            if to <= from {
                break; // only reachable at the end of time (saturated epoch starts)
            }
            let slot = self.uptime_credit.entry((epoch, id)).or_insert(0);
            let add = to - from;
            *slot = slot.saturating_add(add).min(self.params.epoch_secs);
            credited = credited.saturating_add(add);
            from = to;
        }
        if let Some(node) = self.nodes.get_mut(&id) {
            node.last_report = Some(LastReport {
                timestamp,
                uptime_secs,
            });
        }
        Ok(credited)
    }
}
