//! Reconnecting with exponential backoff and full jitter.
//!
//! "Full jitter" (AWS Architecture Blog, "Exponential Backoff And Jitter", 2015):
//! attempt `n` waits a uniformly random time in `[0, min(max, base · 2ⁿ)]`. When a
//! node restarts, hundreds of consoles and agents reconnect at once; spreading each
//! wait over the whole window keeps them from arriving in synchronised waves.

use std::{net::SocketAddr, time::Duration};

use nodus_identity::PublicKey;
use rand::Rng;

use super::{Client, ConnectError, Connection};
use crate::Alpn;

/// A backoff schedule. Pure: the caller supplies the random source, so tests use a
/// seeded one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The ceiling of the first wait.
    pub base: Duration,
    /// The largest ceiling; waits never exceed it.
    pub max: Duration,
}

impl Default for Backoff {
    /// 250 ms first ceiling, doubling to at most 30 s: a blip reconnects almost at
    /// once, and a long outage is probed about twice a minute on average.
    fn default() -> Self {
        Self {
            base: Duration::from_millis(250),
            max: Duration::from_secs(30),
        }
    }
}

impl Backoff {
    /// The ceiling of the wait before retry number `attempt` (0-based):
    /// `min(max, base · 2^attempt)`, without overflow for any `attempt`.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt).unwrap_or(u32::MAX);
        self.base
            .checked_mul(factor)
            .map_or(self.max, |d| d.min(self.max))
    }

    /// The wait before retry number `attempt`: uniform in `[0, ceiling(attempt)]`.
    pub fn delay<R: Rng + ?Sized>(&self, attempt: u32, rng: &mut R) -> Duration {
        let ceiling = self.ceiling(attempt);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(rng.gen_range(0..=nanos))
    }
}

/// Connects, retrying transient failures with `backoff` until it succeeds, a
/// non-transient error occurs (see [`ConnectError::is_transient`]), or
/// `max_attempts` attempts have failed (`None`: retry forever).
pub async fn connect_with_backoff(
    client: &Client,
    addr: SocketAddr,
    server_key: PublicKey,
    alpn: Alpn,
    backoff: Backoff,
    max_attempts: Option<u32>,
) -> Result<Connection, ConnectError> {
    let mut attempt = 0u32;
    loop {
        match client.connect(addr, server_key, alpn).await {
            Ok(conn) => return Ok(conn),
            Err(e) if !e.is_transient() => return Err(e),
            Err(e) => {
                attempt = attempt.saturating_add(1);
                if max_attempts.is_some_and(|max| attempt >= max) {
                    return Err(e);
                }
                let wait = backoff.delay(attempt - 1, &mut rand::thread_rng());
                tracing::debug!(%addr, attempt, ?wait, error = %e, "connect failed, retrying");
                tokio::time::sleep(wait).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::{SeedableRng, rngs::StdRng};

    use super::*;

    #[test]
    fn ceilings_double_then_saturate() {
        let b = Backoff {
            base: Duration::from_millis(100),
            max: Duration::from_secs(5),
        };
        let ceilings: Vec<u64> = (0..10).map(|n| b.ceiling(n).as_millis() as u64).collect();
        assert_eq!(
            ceilings,
            [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000, 5000]
        );
        // Huge attempt numbers neither overflow nor panic.
        assert_eq!(b.ceiling(u32::MAX), Duration::from_secs(5));
        assert_eq!(b.ceiling(64), Duration::from_secs(5));
    }

    #[test]
    fn delays_are_full_jitter_and_reproducible() {
        let b = Backoff::default();
        let mut rng = StdRng::seed_from_u64(7);
        let first: Vec<Duration> = (0..50).map(|n| b.delay(n.min(12), &mut rng)).collect();
        let mut rng = StdRng::seed_from_u64(7);
        let again: Vec<Duration> = (0..50).map(|n| b.delay(n.min(12), &mut rng)).collect();
        assert_eq!(first, again, "same seed, same schedule");
        for (n, d) in first.iter().enumerate() {
            assert!(*d <= b.ceiling(n as u32), "attempt {n}: {d:?}");
        }
        // Full jitter spreads over the whole window: with many samples at the
        // 30 s ceiling, some land in the lower and some in the upper half.
        let mut rng = StdRng::seed_from_u64(1);
        let late: Vec<Duration> = (0..200).map(|_| b.delay(20, &mut rng)).collect();
        assert!(late.iter().any(|d| *d < Duration::from_secs(15)));
        assert!(late.iter().any(|d| *d > Duration::from_secs(15)));
        assert!(late.iter().all(|d| *d <= Duration::from_secs(30)));
    }
}
