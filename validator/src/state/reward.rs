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
//!
//! What the chain keeps for a node's farmer after settlement is its
//! [`EpochResult`] for the last epoch it took part in; [`State::farming`] adds
//! the open epoch's credit so far (the Stake screen's numbers).

use serde::{Deserialize, Serialize};

use super::math::mul_div;
use super::{Address, Amount, Event, MAX_EPOCHS_PER_BLOCK, State};

/// Parts per million in a whole.
const PPM: u128 = 1_000_000;

/// A node's result in one settled epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpochResult {
    /// The epoch.
    pub epoch: u64,
    /// Seconds of the epoch the node was registered: its uptime if it never
    /// went down.
    pub possible_secs: u64,
    /// Uptime seconds credited to it.
    pub uptime_secs: u64,
    /// Minted and paid to the farm owner for it.
    pub reward: Amount,
}

impl EpochResult {
    /// `uptime_secs / possible_secs` in parts per million (0 when nothing was
    /// possible).
    pub fn uptime_ppm(&self) -> u32 {
        ratio_ppm(self.uptime_secs, self.possible_secs)
    }
}

/// A node's farming as the chain sees it at the last block: what its farmer
/// reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Farming {
    /// Length of an epoch, seconds.
    pub epoch_secs: u64,
    /// The epoch the last block's time falls in.
    pub current_epoch: u64,
    /// Uptime credited to the current epoch so far (up to the node's last
    /// report).
    pub current_uptime_secs: u64,
    /// Seconds of the current epoch the node has been registered, up to the
    /// last block's time.
    pub current_possible_secs: u64,
    /// The last settled epoch the node took part in, if any.
    pub last: Option<EpochResult>,
}

impl Farming {
    /// The current epoch's uptime ratio so far, parts per million.
    pub fn current_uptime_ppm(&self) -> u32 {
        ratio_ppm(self.current_uptime_secs, self.current_possible_secs)
    }
}

/// `part / whole` in parts per million, at most a million (0 for an empty whole).
fn ratio_ppm(part: u64, whole: u64) -> u32 {
    if whole == 0 {
        return 0;
    }
    let ppm = u128::from(part.min(whole)) * PPM / u128::from(whole);
    // At most PPM, which fits.
    u32::try_from(ppm).unwrap_or(u32::MAX)
}

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
        let start = self.epoch_start(epoch);
        let end = self.epoch_start(epoch.saturating_add(1));
        let secs = self.params.epoch_secs;
        let weights = self.params.capacity_weights;
        let taking_part: Vec<(Address, u128, u64)> = self
            .nodes
            .iter()
            .filter(|(_, n)| n.registered_at < end)
            .map(|(a, n)| {
                let possible = end - n.registered_at.max(start);
                (*a, n.capacity.weight(&weights), possible)
            })
            .collect();
        let total_weight = taking_part
            .iter()
            .fold(0u128, |t, (_, w, _)| t.saturating_add(*w));
        // Weights are below 2^56 and epochs below 2^24 s, so this overflows only
        // beyond 2^48 nodes; then nobody is paid rather than anybody overpaid.
        let denominator = total_weight
            .checked_mul(u128::from(secs))
            .filter(|d| *d > 0);
        let mut minted: u128 = 0;
        for (node, weight, possible_secs) in taking_part {
            let up = self.uptime_credit(epoch, &node).min(secs);
            let share = weight.saturating_mul(u128::from(up));
            let mut reward = denominator
                .and_then(|d| mul_div(self.params.epoch_reward, share, d))
                .unwrap_or(0);
            if reward > 0 {
                match self.node_owner(&node) {
                    Some(owner) if self.deposit(owner, reward).is_ok() => {
                        minted = minted.saturating_add(reward);
                        events.push(Event::NodeRewarded {
                            epoch,
                            node,
                            owner,
                            amount: reward,
                        });
                    }
                    _ => reward = 0,
                }
            }
            self.farming.insert(
                node,
                EpochResult {
                    epoch,
                    possible_secs,
                    uptime_secs: up,
                    reward,
                },
            );
        }
        self.supply.minted = self.supply.minted.saturating_add(minted);
        let later = self
            .uptime_credit
            .split_off(&(epoch.saturating_add(1), Address([0; 32])));
        self.uptime_credit = later;
        events.push(Event::EpochSettled { epoch, minted });
    }

    /// `node`'s farming at the last block, or `None` if it is not registered.
    pub fn farming(&self, node: &Address) -> Option<Farming> {
        let n = self.nodes.get(node)?;
        let current_epoch = self.epoch_of(self.time);
        let from = self.epoch_start(current_epoch).max(n.registered_at);
        Some(Farming {
            epoch_secs: self.params.epoch_secs,
            current_epoch,
            current_uptime_secs: self.uptime_credit(current_epoch, node),
            current_possible_secs: self.time.saturating_sub(from),
            last: self.farming.get(node).copied(),
        })
    }
}

#[cfg(test)]
mod tests {
    use nodus_identity::{AccountId, SecretKey};

    use super::*;
    use crate::state::farm::{Capacity, Farm, Node, PowerTarget};
    use crate::{BlockHeader, Genesis};

    const T0: u64 = 1_000;

    fn addr(seed: u8) -> Address {
        Address::from(SecretKey::from_seed(&[seed; 32]).public())
    }

    fn node(cru: u32, registered_at: u64) -> Node {
        Node {
            farm: 1,
            capacity: Capacity {
                cru,
                mru_bytes: 0,
                sru_bytes: 0,
                hru_bytes: 0,
            },
            reserved: Capacity::default(),
            capacity_issued_at: registered_at,
            registered_at,
            power_target: PowerTarget::Up,
            last_report: None,
        }
    }

    /// Epochs of 100 s from T0, settled 10 s after they end, 999 999 minted at most.
    fn state() -> State {
        let v = SecretKey::from_seed(&[1; 32]).public();
        let g = Genesis::from_json(&format!(
            r#"{{"chain_id":"t","genesis_time":{T0},
                "params":{{"epoch_secs":100,"late_report_window_secs":10,"epoch_reward":999999}},
                "validators":[{{"id":"{}","stake":100}}]}}"#,
            AccountId::from(v)
        ))
        .unwrap();
        let mut s = State::from_genesis(&g);
        s.farms.insert(
            1,
            Farm {
                owner: addr(2),
                name: "rack".into(),
            },
        );
        s
    }

    fn block(s: &mut State, time: u64) -> Vec<Event> {
        let header = BlockHeader {
            height: s.height() + 1,
            time,
            proposer: addr(1),
        };
        s.apply_block(&header, &[]).unwrap().events
    }

    #[test]
    fn settlement_keeps_each_nodes_uptime_and_reward_exactly() {
        let mut s = state();
        let (a, b, c, d) = (addr(11), addr(12), addr(13), addr(14));
        // A: 4 CPUs (weight 2048) all epoch 0; B: 1 CPU (512) from T0+40;
        // C: registered after epoch 0; D: no capacity, weight 0.
        s.nodes.insert(a, node(4, T0));
        s.nodes.insert(b, node(1, T0 + 40));
        s.nodes.insert(c, node(1, T0 + 100));
        s.nodes.insert(d, node(0, T0));
        s.uptime_credit.insert((0, a), 90);
        s.uptime_credit.insert((0, b), 60);
        s.uptime_credit.insert((0, d), 100);
        s.uptime_credit.insert((1, a), 5);

        block(&mut s, T0 + 105);
        // Epoch 1 is open; epoch 0 waits for its late reports.
        assert_eq!(
            s.farming(&a),
            Some(Farming {
                epoch_secs: 100,
                current_epoch: 1,
                current_uptime_secs: 5,
                current_possible_secs: 5,
                last: None,
            })
        );
        assert_eq!(s.farming(&a).unwrap().current_uptime_ppm(), 1_000_000);
        assert_eq!(s.farming(&addr(99)), None);

        let events = block(&mut s, T0 + 110);
        // C takes no part, so W = 2048 + 512 + 0 = 2560.
        // A: ⌊999 999 × 2048 × 90 / (2560 × 100)⌋ = ⌊719 999.28⌋ = 719 999.
        // B: ⌊999 999 × 512 × 60 / (2560 × 100)⌋ = ⌊119 999.88⌋ = 119 999.
        assert_eq!(
            events.last(),
            Some(&Event::EpochSettled {
                epoch: 0,
                minted: 839_998
            })
        );
        assert_eq!(s.balance(&addr(2)), 839_998);
        let fa = s.farming(&a).unwrap();
        assert_eq!(
            fa.last,
            Some(EpochResult {
                epoch: 0,
                possible_secs: 100,
                uptime_secs: 90,
                reward: 719_999
            })
        );
        assert_eq!(fa.last.unwrap().uptime_ppm(), 900_000);
        assert_eq!((fa.current_uptime_secs, fa.current_possible_secs), (5, 10));
        assert_eq!(fa.current_uptime_ppm(), 500_000);
        // B was registered for 60 s of the epoch and up for all of them.
        let lb = s.farming(&b).unwrap().last.unwrap();
        assert_eq!(
            (lb.possible_secs, lb.uptime_secs, lb.reward),
            (60, 60, 119_999)
        );
        assert_eq!(lb.uptime_ppm(), 1_000_000);
        // C took no part; D was up but weighs nothing, so it earned nothing.
        assert_eq!(s.farming(&c).unwrap().last, None);
        assert_eq!(s.farming(&c).unwrap().current_possible_secs, 10);
        assert_eq!(
            s.farming(&d).unwrap().last,
            Some(EpochResult {
                epoch: 0,
                possible_secs: 100,
                uptime_secs: 100,
                reward: 0
            })
        );
        assert!(s.supply_is_conserved());
    }

    #[test]
    fn the_last_result_is_replaced_by_the_next_epochs() {
        let mut s = state();
        let a = addr(11);
        s.nodes.insert(a, node(4, T0));
        s.uptime_credit.insert((0, a), 100);
        block(&mut s, T0 + 110);
        assert_eq!(s.farming(&a).unwrap().last.unwrap().reward, 999_999);
        // Down all of epoch 1: the result says so, and nothing is minted.
        block(&mut s, T0 + 210);
        assert_eq!(
            s.farming(&a).unwrap().last,
            Some(EpochResult {
                epoch: 1,
                possible_secs: 100,
                uptime_secs: 0,
                reward: 0
            })
        );
        assert_eq!(s.supply().minted, 999_999);
    }

    #[test]
    fn ratios_are_capped_and_empty_wholes_are_zero() {
        assert_eq!(ratio_ppm(1, 3), 333_333);
        assert_eq!(ratio_ppm(5, 4), 1_000_000);
        assert_eq!(ratio_ppm(0, 0), 0);
        assert_eq!(ratio_ppm(u64::MAX, u64::MAX), 1_000_000);
    }
}
