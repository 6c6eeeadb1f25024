//! Farming rewards, settled per epoch.
//!
//! Epoch `k` covers block time `[genesis + k·epoch_secs, genesis + (k+1)·epoch_secs)`
//! and is settled by the first block whose time is at least its end plus
//! `late_report_window_secs` (see [`super::uptime`] for why the wait).
//!
//! Every node registered before the epoch's end takes part. With `w` a node's
//! capacity weight ([`super::farm::Capacity::weight`]), `W` the sum over taking
//! part nodes, `u` its credited uptime seconds and `E = epoch_secs`, `M =
//! epoch_reward`:
//!
//! ```text
//! reward = ⌊ M × (w × u) / (W × E) ⌋
//! ```
//!
//! computed exactly (256-bit intermediate), paid to the farm owner and minted. So a
//! node earns its capacity share of `M` scaled by its uptime fraction `u / E`, and
//! does not earn more when other nodes are down (nobody gains from knocking a
//! neighbour offline). `M` is the most minted per epoch, reached when every node is
//! up all epoch; the rounding remainders and the shares of downtime are simply not
//! minted, so `minted` always equals what was paid.
//!
//! Capacity is taken as it is at settlement.

use super::math::mul_div;
use super::{Address, Event, MAX_EPOCHS_PER_BLOCK, State};

impl State {
    /// Settles every epoch whose late-report window has closed by this block's
    /// time, at most [`MAX_EPOCHS_PER_BLOCK`] per block.
    pub(crate) fn settle_epochs(&mut self, events: &mut Vec<Event>) {
        for _ in 0..MAX_EPOCHS_PER_BLOCK {
            let epoch = self.settled_epochs;
            let closes = self
                .epoch_start(epoch.saturating_add(1))
                .saturating_add(self.params.late_report_window_secs);
            if self.time < closes || epoch == u64::MAX {
                return;
            }
            self.settle_epoch(epoch, events);
            self.settled_epochs = epoch + 1;
        }
    }

    fn settle_epoch(&mut self, epoch: u64, events: &mut Vec<Event>) {
        let end = self.epoch_start(epoch.saturating_add(1));
        let secs = self.params.epoch_secs;
        let weights = self.params.capacity_weights;
        let taking_part: Vec<(Address, u128)> = self
            .nodes
            .iter()
            .filter(|(_, n)| n.registered_at < end)
            .map(|(a, n)| (*a, n.capacity.weight(&weights)))
            .collect();
        let total_weight = taking_part
            .iter()
            .fold(0u128, |t, (_, w)| t.saturating_add(*w));
        // Weights are below 2^56 and epochs below 2^24 s, so this overflows only
        // beyond 2^48 nodes; then nobody is paid rather than anybody overpaid.
        let denominator = total_weight.checked_mul(u128::from(secs));
        let mut minted: u128 = 0;
        if let Some(denominator) = denominator.filter(|d| *d > 0) {
            for (node, weight) in taking_part {
                let up = self.uptime_credit(epoch, &node).min(secs);
                let share = weight.saturating_mul(u128::from(up));
                let reward = mul_div(self.params.epoch_reward, share, denominator).unwrap_or(0);
                if reward == 0 {
                    continue;
                }
                let Some(owner) = self.node_owner(&node) else {
                    continue;
                };
                if self.deposit(owner, reward).is_ok() {
                    minted = minted.saturating_add(reward);
                    events.push(Event::NodeRewarded {
                        epoch,
                        node,
                        owner,
                        amount: reward,
                    });
                }
            }
        }
        self.supply.minted = self.supply.minted.saturating_add(minted);
        let later = self
            .uptime_credit
            .split_off(&(epoch.saturating_add(1), Address([0; 32])));
        self.uptime_credit = later;
        events.push(Event::EpochSettled { epoch, minted });
    }
}
