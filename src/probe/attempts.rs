//! Quick attempts inside one probe, like TCP retransmits: a probe counts as
//! failed only when every one of its `attempts` failed.
//!
//! Why: with `fall = 3` and no retries, a path that loses 30 % of connections
//! produces three failed probes in a row about once in 37 tries — within
//! minutes at a 500 ms interval, the primary is declared down although it
//! serves. A real outage fails every attempt, so retries cost nothing in
//! detection for a refusing or erroring target, and a lost connection is
//! rescued by the next attempt.
//!
//! How: attempts are *hedged* within the check's single timeout budget. The
//! first starts at once; the next starts as soon as the previous one failed,
//! or when `timeout / attempts` passed without an answer (a lost SYN or
//! request looks exactly like that). Earlier attempts keep running: the first
//! correct answer wins and its own latency is reported, so a rescued probe is
//! not mistaken for a slow target, while a target that is genuinely slow still
//! answers slowly on every attempt and is classified degraded.
//!
//! This wrapper does no I/O of its own; the attempt arithmetic is in
//! [`hedge_delay`] and [`false_down_probability`], which are pure.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt as _;
use futures::stream::FuturesUnordered;
use tokio::time::Instant;

use super::{Probe, ProbeResult};

/// Wraps a probe so that it makes up to `attempts` hedged attempts.
pub struct Attempts {
    inner: Arc<dyn Probe>,
    attempts: u32,
    timeout: Duration,
}

impl Attempts {
    /// `attempts` hedged attempts of `inner` within `timeout` (the check's timeout).
    pub fn new(inner: Arc<dyn Probe>, attempts: u32, timeout: Duration) -> Self {
        Self { inner, attempts: attempts.max(1), timeout }
    }
}

/// Time after which, without an answer, the next attempt is started.
pub fn hedge_delay(timeout: Duration, attempts: u32) -> Duration {
    timeout / attempts.max(1)
}

/// Probability that `fall` probes in a row fail when each connection is lost
/// independently with probability `loss` and each probe makes `attempts`
/// attempts: `loss^(attempts × fall)`. Used to choose the default and in the README.
pub fn false_down_probability(loss: f64, attempts: u32, fall: u32) -> f64 {
    loss.clamp(0.0, 1.0).powi((attempts.max(1) * fall.max(1)) as i32)
}

#[async_trait]
impl Probe for Attempts {
    async fn probe(&self) -> ProbeResult {
        if self.attempts == 1 {
            return self.inner.probe().await;
        }
        let spacing = hedge_delay(self.timeout, self.attempts);
        let mut running = FuturesUnordered::new();
        let mut started = 0u32;
        let mut next_at = Instant::now();
        let mut last_failure: Option<ProbeResult> = None;
        loop {
            if started < self.attempts && (running.is_empty() || Instant::now() >= next_at) {
                let inner = self.inner.clone();
                started += 1;
                running.push(async move {
                    let t0 = Instant::now();
                    let mut r = inner.probe().await;
                    r.latency.get_or_insert(t0.elapsed());
                    r
                });
                next_at = Instant::now() + spacing;
                continue;
            }
            if running.is_empty() {
                let mut r = last_failure.unwrap_or_else(|| ProbeResult::failed("no attempt made"));
                r.error = r.error.map(|e| format!("{e} (all {} attempts failed)", self.attempts));
                return r;
            }
            tokio::select! {
                Some(r) = running.next() => {
                    if r.ok {
                        let mut r = r;
                        if started > 1 {
                            let note = format!("answered with {started} attempt(s) started");
                            r.detail = Some(match r.detail { Some(d) => format!("{d}; {note}"), None => note });
                        }
                        return r;
                    }
                    last_failure = Some(r);
                    // A fast failure (refused, wrong status): the next attempt starts now.
                    next_at = Instant::now();
                }
                _ = tokio::time::sleep_until(next_at), if started < self.attempts => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    /// Answers from a script: (delay, ok) per call, then repeats the last entry.
    struct Scripted {
        calls: AtomicU32,
        script: Vec<(u64, bool)>,
    }

    #[async_trait]
    impl Probe for Scripted {
        async fn probe(&self) -> ProbeResult {
            let i = self.calls.fetch_add(1, Ordering::SeqCst) as usize;
            let (ms, ok) = self.script[i.min(self.script.len() - 1)];
            tokio::time::sleep(Duration::from_millis(ms)).await;
            if ok { ProbeResult::ok(None) } else { ProbeResult::failed("boom") }
        }
    }

    fn wrap(script: Vec<(u64, bool)>, attempts: u32) -> (Arc<Scripted>, Attempts) {
        let inner = Arc::new(Scripted { calls: AtomicU32::new(0), script });
        (inner.clone(), Attempts::new(inner, attempts, Duration::from_millis(300)))
    }

    #[tokio::test(start_paused = true)]
    async fn a_lost_first_attempt_is_rescued_and_reports_the_winner_latency() {
        // First attempt hangs (lost connection), second answers in 5 ms.
        let (inner, p) = wrap(vec![(10_000, true), (5, true)], 3);
        let r = tokio::time::timeout(Duration::from_millis(300), p.probe()).await.unwrap();
        assert!(r.ok);
        assert_eq!(r.latency, Some(Duration::from_millis(5)));
        assert_eq!(inner.calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_refusing_target_fails_after_every_attempt_at_once() {
        let (inner, p) = wrap(vec![(1, false)], 3);
        let t0 = Instant::now();
        let r = p.probe().await;
        assert!(!r.ok);
        assert!(r.error.unwrap().contains("all 3 attempts failed"));
        assert_eq!(inner.calls.load(Ordering::SeqCst), 3);
        assert!(t0.elapsed() < Duration::from_millis(10), "fast failures are retried without waiting");
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_target_still_answers_slowly() {
        // Every attempt takes 200 ms: the first answer wins at 200 ms, reported as such.
        let (_, p) = wrap(vec![(200, true)], 3);
        let r = p.probe().await;
        assert!(r.ok);
        assert_eq!(r.latency, Some(Duration::from_millis(200)));
    }

    #[tokio::test(start_paused = true)]
    async fn one_attempt_is_the_plain_probe() {
        let (inner, p) = wrap(vec![(1, false), (1, true)], 1);
        assert!(!p.probe().await.ok);
        assert_eq!(inner.calls.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn hedges_spread_over_the_timeout() {
        assert_eq!(hedge_delay(Duration::from_millis(450), 3), Duration::from_millis(150));
        assert_eq!(hedge_delay(Duration::from_millis(450), 0), Duration::from_millis(450));
    }

    #[test]
    fn three_attempts_make_a_false_down_at_30_percent_loss_negligible() {
        // Without attempts: one false down in ~37 probe streaks.
        assert!((false_down_probability(0.3, 1, 3) - 0.027).abs() < 1e-9);
        // With three: ~2e-5 per streak.
        assert!(false_down_probability(0.3, 3, 3) < 3e-5);
        assert_eq!(false_down_probability(1.0, 3, 3), 1.0);
        assert_eq!(false_down_probability(0.0, 3, 3), 0.0);
    }
}
