//! The init's supervisor, sans-IO: which child to start, when to restart one
//! that died, and when everything has stopped at shutdown.
//!
//! The caller spawns processes and feeds back pids and exits with the time; the
//! supervisor never touches the OS, so its tests run on a virtual clock.
//!
//! Lifecycle of each service: `Waiting(at)` → start → `Running(pid)` → exit →
//! `Waiting(now + backoff)` …; on shutdown every service becomes `Stopped` once
//! its process exits, and nothing is started again.

use std::time::{Duration, Instant};

/// First restart delay after a crash.
pub const INITIAL_BACKOFF: Duration = Duration::from_millis(500);
/// Longest restart delay: a crashing agent is retried at least this often, so a
/// node recovers by itself once the cause (a disk, the network) goes away.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A service that ran this long is considered healthy again: its next crash
/// restarts it after [`INITIAL_BACKOFF`].
pub const HEALTHY_AFTER: Duration = Duration::from_secs(60);

/// A service's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// To be started at this time.
    Waiting(Instant),
    /// Running with this pid since then.
    Running {
        /// Its pid.
        pid: i32,
        /// When it started.
        since: Instant,
    },
    /// Not running and not to be started (shutdown).
    Stopped,
}

/// One supervised service.
#[derive(Debug, Clone)]
pub struct Service {
    /// Its name, for the console log.
    pub name: &'static str,
    /// Its state.
    pub state: State,
    /// Restarts so far.
    pub restarts: u32,
    /// The delay before the next restart.
    backoff: Duration,
}

/// Something the caller must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Start service `index`, then call [`Supervisor::started`].
    Start(usize),
}

/// What an exit meant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// A service died; it is restarted after this delay.
    Restart {
        /// The service.
        index: usize,
        /// The delay.
        after: Duration,
    },
    /// A service exited during shutdown.
    Stopped(usize),
    /// Not ours: a reaped orphan.
    Orphan,
}

/// The supervisor.
#[derive(Debug, Clone)]
pub struct Supervisor {
    services: Vec<Service>,
    shutting_down: bool,
}

impl Supervisor {
    /// Services to start now, in order.
    pub fn new(names: &[&'static str], now: Instant) -> Self {
        Self {
            services: names
                .iter()
                .map(|&name| Service {
                    name,
                    state: State::Waiting(now),
                    restarts: 0,
                    backoff: INITIAL_BACKOFF,
                })
                .collect(),
            shutting_down: false,
        }
    }

    /// The services.
    pub fn services(&self) -> &[Service] {
        &self.services
    }

    /// The next service due at `now`, if any.
    pub fn poll_action(&mut self, now: Instant) -> Option<Action> {
        if self.shutting_down {
            return None;
        }
        self.services
            .iter()
            .position(|s| matches!(s.state, State::Waiting(at) if at <= now))
            .map(Action::Start)
    }

    /// When [`poll_action`](Self::poll_action) next has something.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.shutting_down {
            return None;
        }
        self.services
            .iter()
            .filter_map(|s| match s.state {
                State::Waiting(at) => Some(at),
                _ => None,
            })
            .min()
    }

    /// Service `index` was started as `pid`.
    pub fn started(&mut self, index: usize, pid: i32, now: Instant) {
        if let Some(s) = self.services.get_mut(index) {
            s.state = State::Running { pid, since: now };
        }
    }

    /// Service `index` could not be started: retried like a crash.
    pub fn failed_to_start(&mut self, index: usize, now: Instant) -> Duration {
        let Some(s) = self.services.get_mut(index) else {
            return Duration::ZERO;
        };
        let after = s.backoff;
        s.backoff = (s.backoff * 2).min(MAX_BACKOFF);
        s.restarts += 1;
        s.state = if self.shutting_down {
            State::Stopped
        } else {
            State::Waiting(now + after)
        };
        after
    }

    /// A process exited (any pid the init reaped).
    pub fn exited(&mut self, pid: i32, now: Instant) -> Exit {
        let Some(index) = self
            .services
            .iter()
            .position(|s| matches!(s.state, State::Running { pid: p, .. } if p == pid))
        else {
            return Exit::Orphan;
        };
        if self.shutting_down {
            self.services[index].state = State::Stopped;
            return Exit::Stopped(index);
        }
        let s = &mut self.services[index];
        if let State::Running { since, .. } = s.state
            && now.saturating_duration_since(since) >= HEALTHY_AFTER
        {
            s.backoff = INITIAL_BACKOFF;
        }
        let after = s.backoff;
        s.backoff = (s.backoff * 2).min(MAX_BACKOFF);
        s.restarts += 1;
        s.state = State::Waiting(now + after);
        Exit::Restart { index, after }
    }

    /// Stops restarting; returns the pids to send SIGTERM to.
    pub fn shutdown(&mut self) -> Vec<i32> {
        self.shutting_down = true;
        let mut pids = Vec::new();
        for s in &mut self.services {
            match s.state {
                State::Running { pid, .. } => pids.push(pid),
                _ => s.state = State::Stopped,
            }
        }
        pids
    }

    /// Whether shutdown was asked and every service has stopped.
    pub fn all_stopped(&self) -> bool {
        self.shutting_down && self.services.iter().all(|s| s.state == State::Stopped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crashes_back_off_exponentially_up_to_the_cap() {
        let t0 = Instant::now();
        let mut s = Supervisor::new(&["agent"], t0);
        let mut now = t0;
        let mut delays = Vec::new();
        for pid in 10..20 {
            assert_eq!(s.poll_action(now), Some(Action::Start(0)));
            s.started(0, pid, now);
            assert_eq!(s.poll_action(now), None);
            now += Duration::from_secs(1);
            let Exit::Restart { index: 0, after } = s.exited(pid, now) else {
                panic!()
            };
            delays.push(after);
            assert_eq!(s.poll_timeout(), Some(now + after));
            assert_eq!(s.poll_action(now), None, "restarted before its backoff");
            now += after;
        }
        assert_eq!(delays[0], INITIAL_BACKOFF);
        assert_eq!(delays[1], INITIAL_BACKOFF * 2);
        assert_eq!(*delays.last().unwrap_or(&Duration::ZERO), MAX_BACKOFF);
        assert_eq!(s.services()[0].restarts, 10);
    }

    #[test]
    fn a_long_healthy_run_resets_the_backoff() {
        let t0 = Instant::now();
        let mut s = Supervisor::new(&["agent"], t0);
        s.started(0, 1, t0);
        let _ = s.exited(1, t0);
        s.started(0, 2, t0 + Duration::from_secs(1));
        let _ = s.exited(2, t0 + Duration::from_secs(2));
        s.started(0, 3, t0 + Duration::from_secs(10));
        let after_long_run = t0 + Duration::from_secs(10) + HEALTHY_AFTER;
        assert_eq!(
            s.exited(3, after_long_run),
            Exit::Restart {
                index: 0,
                after: INITIAL_BACKOFF
            }
        );
    }

    #[test]
    fn orphans_are_not_services_and_shutdown_waits_for_all() {
        let t0 = Instant::now();
        let mut s = Supervisor::new(&["agent", "console"], t0);
        assert_eq!(s.poll_action(t0), Some(Action::Start(0)));
        s.started(0, 100, t0);
        assert_eq!(s.poll_action(t0), Some(Action::Start(1)));
        s.started(1, 101, t0);
        assert_eq!(s.exited(555, t0), Exit::Orphan);
        let mut pids = s.shutdown();
        pids.sort_unstable();
        assert_eq!(pids, [100, 101]);
        assert!(!s.all_stopped());
        assert_eq!(s.exited(100, t0), Exit::Stopped(0));
        assert_eq!(
            s.poll_action(t0 + MAX_BACKOFF),
            None,
            "restarted during shutdown"
        );
        assert!(!s.all_stopped());
        assert_eq!(s.exited(101, t0), Exit::Stopped(1));
        assert!(s.all_stopped());
    }
}
