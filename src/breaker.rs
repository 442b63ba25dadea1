//! A circuit breaker per traffic provider, as a pure state machine (time is an argument).
//!
//! Closed: calls go through; `threshold` consecutive failures open it.
//! Open: calls are refused until `cool_down` has passed since it opened.
//! Half-open: exactly one probe call goes through; its success closes the
//! breaker, its failure opens it again for another cool-down.
//!
//! The applier owns one breaker per provider and asks [`CircuitBreaker::allow`]
//! before each call; the configuration stage builds each provider's
//! [`BreakerConfig`] and the metrics export its [`BreakerPhase`]. A leaf: it
//! imports nothing of the crate, does no I/O and reads no clock.

use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

/// Where the breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls go through; `failures` consecutive failures so far.
    Closed {
        /// Consecutive failures.
        failures: u32,
    },
    /// Calls are refused until `until`.
    Open {
        /// End of the cool-down.
        until: Instant,
    },
    /// One probe call is in flight (or allowed).
    HalfOpen,
}

/// The breaker's answer to "may I call the provider now?".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permit {
    /// Call it (closed, or the half-open probe).
    Call,
    /// Do not call it; ask again at `retry_at`.
    Refused {
        /// When the cool-down ends.
        retry_at: Instant,
    },
}

/// Thresholds of a breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Consecutive failures that open the breaker (at least 1).
    pub threshold: u32,
    /// How long it stays open before a half-open probe.
    pub cool_down: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self { threshold: 5, cool_down: Duration::from_secs(30) }
    }
}

/// A short name of the state for reports and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerPhase {
    /// Closed.
    Closed,
    /// Open.
    Open,
    /// Half-open.
    HalfOpen,
}

/// One provider's circuit breaker.
#[derive(Debug, Clone)]
pub struct CircuitBreaker {
    config: BreakerConfig,
    state: BreakerState,
}

impl CircuitBreaker {
    /// A closed breaker.
    pub fn new(config: BreakerConfig) -> Self {
        Self {
            config: BreakerConfig { threshold: config.threshold.max(1), ..config },
            state: BreakerState::Closed { failures: 0 },
        }
    }

    /// The current state.
    pub fn state(&self) -> BreakerState {
        self.state
    }

    /// The current phase.
    pub fn phase(&self) -> BreakerPhase {
        match self.state {
            BreakerState::Closed { .. } => BreakerPhase::Closed,
            BreakerState::Open { .. } => BreakerPhase::Open,
            BreakerState::HalfOpen => BreakerPhase::HalfOpen,
        }
    }

    /// Whether a call may go out at `now`. An open breaker whose cool-down has
    /// passed turns half-open and lets this one call through.
    pub fn allow(&mut self, now: Instant) -> Permit {
        match self.state {
            BreakerState::Closed { .. } | BreakerState::HalfOpen => Permit::Call,
            BreakerState::Open { until } if now >= until => {
                self.state = BreakerState::HalfOpen;
                Permit::Call
            }
            BreakerState::Open { until } => Permit::Refused { retry_at: until },
        }
    }

    /// The call succeeded: the breaker closes.
    pub fn on_success(&mut self) {
        self.state = BreakerState::Closed { failures: 0 };
    }

    /// The call failed at `now`: counts toward opening, or re-opens after a failed probe.
    pub fn on_failure(&mut self, now: Instant) {
        self.state = match self.state {
            BreakerState::Closed { failures } if failures + 1 >= self.config.threshold => {
                BreakerState::Open { until: now + self.config.cool_down }
            }
            BreakerState::Closed { failures } => BreakerState::Closed { failures: failures + 1 },
            BreakerState::HalfOpen | BreakerState::Open { .. } => {
                BreakerState::Open { until: now + self.config.cool_down }
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker() -> CircuitBreaker {
        CircuitBreaker::new(BreakerConfig { threshold: 3, cool_down: Duration::from_secs(10) })
    }

    #[test]
    fn stays_closed_below_the_threshold() {
        let now = Instant::now();
        let mut b = breaker();
        b.on_failure(now);
        b.on_failure(now);
        assert_eq!(b.allow(now), Permit::Call);
        assert_eq!(b.state(), BreakerState::Closed { failures: 2 });
    }

    #[test]
    fn a_success_resets_the_failure_count() {
        let now = Instant::now();
        let mut b = breaker();
        b.on_failure(now);
        b.on_failure(now);
        b.on_success();
        b.on_failure(now);
        b.on_failure(now);
        assert_eq!(b.phase(), BreakerPhase::Closed);
    }

    #[test]
    fn opens_after_n_consecutive_failures_and_refuses_until_the_cool_down() {
        let now = Instant::now();
        let mut b = breaker();
        for _ in 0..3 {
            b.on_failure(now);
        }
        assert_eq!(b.phase(), BreakerPhase::Open);
        let until = now + Duration::from_secs(10);
        assert_eq!(b.allow(now), Permit::Refused { retry_at: until });
        assert_eq!(b.allow(now + Duration::from_secs(9)), Permit::Refused { retry_at: until });
    }

    #[test]
    fn half_open_probe_success_closes() {
        let now = Instant::now();
        let mut b = breaker();
        for _ in 0..3 {
            b.on_failure(now);
        }
        assert_eq!(b.allow(now + Duration::from_secs(10)), Permit::Call);
        assert_eq!(b.phase(), BreakerPhase::HalfOpen);
        b.on_success();
        assert_eq!(b.state(), BreakerState::Closed { failures: 0 });
    }

    #[test]
    fn half_open_probe_failure_reopens_for_a_full_cool_down() {
        let now = Instant::now();
        let mut b = breaker();
        for _ in 0..3 {
            b.on_failure(now);
        }
        let probe_at = now + Duration::from_secs(11);
        assert_eq!(b.allow(probe_at), Permit::Call);
        b.on_failure(probe_at);
        assert_eq!(
            b.allow(probe_at + Duration::from_secs(1)),
            Permit::Refused { retry_at: probe_at + Duration::from_secs(10) }
        );
    }

    #[test]
    fn threshold_zero_is_treated_as_one() {
        let now = Instant::now();
        let mut b = CircuitBreaker::new(BreakerConfig { threshold: 0, cool_down: Duration::from_secs(1) });
        b.on_failure(now);
        assert_eq!(b.phase(), BreakerPhase::Open);
    }
}
