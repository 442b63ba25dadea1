//! The probe loop of one check: probe on the interval, under a hard timeout, confirm
//! a suspect target with overlapping probes, and send every result to the engine.
//!
//! **Normal pace.** One probe per `interval` (the first one after a random part of the
//! interval, so that many checks do not fire together), one at a time.
//!
//! **Confirmation.** A check becomes suspect when a probe fails or is degraded, when a
//! probe has been outstanding for `fast_interval` without an answer (a target that
//! answers in a millisecond and is silent for 100 ms is suspect), or when a peer nudges
//! it ([`Runner::with_reprobe`]). Then a probe starts every `fast_interval` *without
//! waiting for the earlier ones*, each under its own hard timeout, with at most
//! `max(fall, rise)` in flight, until `max(fall, rise)` probes in a row answered Ok.
//! So a hung target (connections accepted, nothing answered, or a blackholed route) is
//! confirmed down in `timeout + (fall − 1) × fast_interval` from its first silent probe
//! instead of `fall × timeout`, and a refusing one in `fall × fast_interval` as before.
//!
//! **Order.** Results are sent in the order the probes *started* (an earlier probe
//! that is still waiting holds back a later one that already answered), so the
//! engine's fall/rise streaks see one consistent sequence; an Ok anywhere in it
//! resets the failure streak as it always did. Each observation's `at` is the time
//! its result was known, never earlier than the one sent before it.
//!
//! Hedged attempts inside one probe ([`super::attempts`]) are unchanged: a probe fails
//! only when all of its attempts failed, so one lost connection still moves nothing.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt as _;
use futures::stream::FuturesOrdered;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, instrument};

use super::Probe;
use crate::config::CheckConfig;
use crate::drill::synthetic::Injection;
use crate::metrics::Metrics;
use crate::observation::{Observation, Outcome};
use crate::region::Vantage;

/// Runs one check.
pub struct Runner {
    check: CheckConfig,
    probe: Arc<dyn Probe>,
    vantage: Vantage,
    tx: mpsc::Sender<Observation>,
    metrics: Arc<Metrics>,
    reprobe: Option<watch::Receiver<u64>>,
    injection: Option<watch::Receiver<Option<Injection>>>,
}

impl Runner {
    /// A runner for `check` that sends observations on `tx`.
    pub fn new(
        check: CheckConfig,
        probe: Arc<dyn Probe>,
        vantage: Vantage,
        tx: mpsc::Sender<Observation>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self { check, probe, vantage, tx, metrics, reprobe: None, injection: None }
    }

    /// Enters confirmation (a probe at once, not sooner than `fast_interval` after the
    /// last one, then overlapping probes at the fast interval) whenever `reprobe`
    /// changes: a peer has started to see this check's region fail.
    pub fn with_reprobe(mut self, reprobe: watch::Receiver<u64>) -> Self {
        self.reprobe = Some(reprobe);
        self
    }

    /// Reports this check's probes failed while a synthetic-failure drill injects a failure of
    /// its region (`drill::synthetic`); the real outcome goes into the observation and the
    /// probe metrics.
    pub fn with_injection(mut self, injection: watch::Receiver<Option<Injection>>) -> Self {
        self.injection = Some(injection);
        self
    }

    /// Probes until cancelled; cancelling drops every probe in flight.
    ///
    /// The first probe waits a random part of the interval so that many checks do
    /// not fire together. See the module docs for the pace and for confirmation.
    pub async fn run(mut self, cancel: CancellationToken) {
        // Over the whole interval: spread over half of it, thousands of checks would all probe in
        // the first half of every interval, at twice the mean rate.
        let spread = self.check.interval.mul_f64(rand::random::<f64>());
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(spread) => {}
        }
        let mut reprobe = self.reprobe.take();
        let mut pace = Pace::new(&self.check);
        // Probes in flight, yielded in order of start, and their start instants.
        let mut in_flight = FuturesOrdered::new();
        let mut starts = VecDeque::new();
        let mut last_at: Option<DateTime<Utc>> = None;
        loop {
            let now = Instant::now();
            let next = pace.next_start(in_flight.len(), now);
            if next.is_some_and(|t| t <= now) {
                in_flight.push_back(self.tick());
                starts.push_back(now);
                pace.started(now);
                continue;
            }
            let suspect_at = pace.suspect_at(starts.front().copied());
            tokio::select! {
                _ = cancel.cancelled() => return,
                Some(mut obs) = in_flight.next(), if !in_flight.is_empty() => {
                    starts.pop_front();
                    // Known only once every earlier probe is known.
                    if let Some(prev) = last_at {
                        obs.at = obs.at.max(prev);
                    }
                    last_at = Some(obs.at);
                    pace.answered(obs.outcome);
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        sent = self.tx.send(obs) => if sent.is_err() {
                            return; // the engine is gone: shutting down
                        },
                    }
                }
                () = sleep_until(next) => {}
                () = sleep_until(suspect_at) => {
                    debug!(check = %self.check.id, "no answer within the fast interval: confirming");
                    pace.suspect();
                }
                () = nudged(&mut reprobe) => pace.suspect(),
            }
        }
    }

    /// Probes once, under the check's timeout, and classifies the result.
    #[instrument(skip_all, fields(check = %self.check.id))]
    pub(crate) async fn tick(&self) -> Observation {
        let started = Instant::now();
        let result = tokio::time::timeout(self.check.timeout, self.probe.probe()).await;
        // A probe rescued by a later attempt reports that attempt's own latency.
        let latency = result.as_ref().ok().and_then(|r| r.latency).unwrap_or_else(|| started.elapsed());
        let (outcome, error, detail) = match result {
            Err(_) => (
                Outcome::Failed,
                Some(format!("timed out after {}", humantime::format_duration(self.check.timeout))),
                None,
            ),
            Ok(r) if !r.ok => (Outcome::Failed, r.error, r.detail),
            Ok(r) if r.degraded.is_some() => (Outcome::Degraded, r.degraded, r.detail),
            Ok(r) => match self.check.degraded_latency {
                Some(limit) if latency > limit => (
                    Outcome::Degraded,
                    Some(format!("latency {} ms over {} ms", latency.as_millis(), limit.as_millis())),
                    r.detail,
                ),
                _ => (Outcome::Ok, None, r.detail),
            },
        };
        self.metrics.observe_probe(&self.check.id, self.check.layer, latency, outcome);
        debug!(outcome = ?outcome, latency_ms = latency.as_millis() as u64, error = error.as_deref(), "probe");
        let at = Utc::now();
        let injected = self.injection.as_ref().and_then(|rx| rx.borrow().clone());
        let (outcome, error, synthetic) = match injected {
            Some(i) if i.applies(&self.check.id.region, at) => {
                (Outcome::Failed, Some(i.error(error.as_deref())), Some(outcome))
            }
            _ => (outcome, error, None),
        };
        Observation {
            check: self.check.id.clone(),
            layer: self.check.layer,
            outcome,
            latency: round_micros(latency),
            error,
            detail,
            vantage: self.vantage.clone(),
            at,
            synthetic,
        }
    }
}

/// The pace of one check: when its next probe starts, from what it has seen. Pure: the
/// loop passes the instants in.
#[derive(Debug, Clone)]
struct Pace {
    interval: Duration,
    fast: Duration,
    /// `max(fall, rise)`: Ok answers in a row that end a confirmation, and the bound on
    /// probes in flight.
    confirm: u32,
    /// Ok answers still needed before the normal pace resumes; 0 at the normal pace.
    fast_left: u32,
    last_start: Option<Instant>,
}

impl Pace {
    fn new(check: &CheckConfig) -> Self {
        Self {
            interval: check.interval,
            fast: check.fast_interval,
            confirm: check.fall.max(check.rise).max(1),
            fast_left: 0,
            last_start: None,
        }
    }

    /// When the next probe starts (now or earlier: at once) with `in_flight` probes not
    /// yet sent, or None while the bound holds it back. At the normal pace probes never
    /// overlap; in confirmation the probes in flight count towards the Ok answers still
    /// needed, so no more start than can matter, and never more than `confirm` at once.
    fn next_start(&self, in_flight: usize, now: Instant) -> Option<Instant> {
        let (gap, room) = if self.fast_left == 0 {
            (self.interval, in_flight == 0)
        } else {
            (self.fast, in_flight < self.fast_left as usize)
        };
        room.then(|| self.last_start.map_or(now, |t| t + gap))
    }

    /// When the oldest probe in flight (started at `oldest`) has gone unanswered long
    /// enough to make the check suspect; None in confirmation already.
    fn suspect_at(&self, oldest: Option<Instant>) -> Option<Instant> {
        if self.fast_left == 0 { oldest.map(|t| t + self.fast) } else { None }
    }

    fn started(&mut self, at: Instant) {
        self.last_start = Some(at);
    }

    /// Enters (or renews) confirmation.
    fn suspect(&mut self) {
        self.fast_left = self.confirm;
    }

    /// Takes the next result in order of start.
    fn answered(&mut self, outcome: Outcome) {
        if outcome == Outcome::Ok {
            self.fast_left = self.fast_left.saturating_sub(1);
        } else {
            self.suspect();
        }
    }
}

/// Sleeps until `t`; never when there is none.
async fn sleep_until(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

/// Resolves when the re-probe counter changes; never without one (or once its sender is gone).
async fn nudged(reprobe: &mut Option<watch::Receiver<u64>>) {
    if let Some(rx) = reprobe
        && rx.changed().await.is_ok()
    {
        return;
    }
    std::future::pending().await
}

fn round_micros(d: Duration) -> Duration {
    Duration::from_micros(d.as_micros() as u64)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_trait::async_trait;
    use tokio::task::JoinHandle;

    use super::*;
    use crate::config::CheckKind;
    use crate::health::{CheckState, Health, Thresholds};
    use crate::probe::ProbeResult;
    use crate::region::{CheckId, Layer, RegionName};

    #[derive(Debug, Clone, Copy)]
    enum Step {
        /// Connection accepted, nothing answered: only the runner's timeout ends it.
        Hang,
        /// Answers after so many milliseconds, correctly or not.
        After(u64, bool),
    }

    /// A scripted probe: call `i` follows `script[i]` (the last step repeats). Records when
    /// each call started and how many run at once.
    struct Fake {
        script: Vec<Step>,
        starts: Mutex<Vec<Instant>>,
        running: AtomicUsize,
        peak: AtomicUsize,
    }

    impl Fake {
        fn new(script: Vec<Step>) -> Arc<Self> {
            Arc::new(Self { script, starts: Mutex::default(), running: AtomicUsize::new(0), peak: AtomicUsize::new(0) })
        }

        fn starts(&self) -> Vec<Instant> {
            self.starts.lock().unwrap().clone()
        }
    }

    /// Counts a call as running until it is finished or dropped.
    struct Running<'a>(&'a AtomicUsize);

    impl Drop for Running<'_> {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::SeqCst);
        }
    }

    #[async_trait]
    impl Probe for Fake {
        async fn probe(&self) -> ProbeResult {
            let i = {
                let mut starts = self.starts.lock().unwrap();
                starts.push(Instant::now());
                starts.len() - 1
            };
            let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.peak.fetch_max(now, Ordering::SeqCst);
            let _running = Running(&self.running);
            match self.script[i.min(self.script.len() - 1)] {
                Step::Hang => std::future::pending().await,
                Step::After(ms, ok) => {
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    let mut r = if ok { ProbeResult::ok(None) } else { ProbeResult::failed("refused") };
                    r.detail = Some(format!("#{i}"));
                    r
                }
            }
        }
    }

    /// interval 1 s, timeout 800 ms, fast 100 ms, single attempts.
    fn check(fall: u32, rise: u32) -> CheckConfig {
        CheckConfig {
            id: CheckId::new(RegionName::new("primary"), "app"),
            layer: Layer::App,
            kind: CheckKind::Tcp { target: "127.0.0.1:9".into() },
            interval: ms(1000),
            fast_interval: ms(100),
            timeout: ms(800),
            fall,
            rise,
            degraded_latency: None,
            attempts: 1,
        }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn start(probe: Arc<Fake>, check: CheckConfig) -> (mpsc::Receiver<Observation>, CancellationToken, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(64);
        let cancel = CancellationToken::new();
        let runner = Runner::new(check, probe, RegionName::new("here"), tx, Arc::new(Metrics::new()));
        (rx, cancel.clone(), tokio::spawn(runner.run(cancel)))
    }

    async fn next(rx: &mut mpsc::Receiver<Observation>) -> Observation {
        rx.recv().await.expect("the runner sends until cancelled")
    }

    /// Takes `n` observations, each a failure.
    async fn failures(rx: &mut mpsc::Receiver<Observation>, n: usize) {
        for i in 0..n {
            assert_eq!(next(rx).await.outcome, Outcome::Failed, "observation {i}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_hung_target_is_confirmed_in_timeout_plus_fall_minus_one_fast_intervals() {
        let fake = Fake::new(vec![Step::Hang]);
        let (mut rx, cancel, _task) = start(fake.clone(), check(3, 2));
        failures(&mut rx, 3).await;
        let confirmed = fake.starts()[0].elapsed();
        // 800 ms + 2 × 100 ms, not 3 × 800 ms (the timer wheel counts whole milliseconds).
        assert!(confirmed >= ms(1000) && confirmed < ms(1002), "confirmed after {confirmed:?}");
        cancel.cancel();
    }

    #[tokio::test(start_paused = true)]
    async fn results_are_sent_in_order_of_start_even_when_a_later_probe_answers_first() {
        // #0 fails slowly (500 ms: suspect at 100 ms); #1 and #2 answer in 10 ms, long before it.
        let fake = Fake::new(vec![Step::After(500, false), Step::After(10, true)]);
        let (mut rx, cancel, _task) = start(fake.clone(), check(3, 2));
        let first = next(&mut rx).await;
        let held = fake.starts()[0].elapsed();
        let second = next(&mut rx).await;
        let third = next(&mut rx).await;
        assert_eq!(first.detail.as_deref(), Some("#0"));
        assert_eq!(second.detail.as_deref(), Some("#1"));
        assert_eq!(third.detail.as_deref(), Some("#2"));
        assert_eq!(first.outcome, Outcome::Failed);
        assert_eq!(second.outcome, Outcome::Ok);
        // #1 started while #0 was outstanding and answered first, yet waited for it.
        let starts = fake.starts();
        assert!(starts[1] - starts[0] >= ms(100) && starts[1] - starts[0] < ms(102), "{starts:?}");
        assert!(held >= ms(500) && held < ms(502), "#0 known after {held:?}");
        assert!(second.at >= first.at, "the engine sees its observations in time order");
        cancel.cancel();
    }

    #[tokio::test(start_paused = true)]
    async fn a_success_in_the_middle_resets_the_failure_streak() {
        // #0 and #1 hang, #2 answers at once (before either times out), then everything hangs.
        let fake = Fake::new(vec![Step::Hang, Step::Hang, Step::After(1, true), Step::Hang]);
        let (mut rx, cancel, _task) = start(fake, check(3, 2));
        let mut state = CheckState::default();
        let mut outcomes = Vec::new();
        while state.health != Health::Down {
            let obs = next(&mut rx).await;
            outcomes.push(obs.outcome);
            state.observe(obs.outcome, Thresholds { fall: 3, rise: 2 }, obs.at);
        }
        use Outcome::{Failed as F, Ok};
        assert_eq!(outcomes, vec![F, F, Ok, F, F, F], "down only after three failures after the success");
        cancel.cancel();
    }

    #[tokio::test(start_paused = true)]
    async fn probes_in_flight_never_exceed_the_larger_of_fall_and_rise() {
        let fake = Fake::new(vec![Step::Hang]);
        let (mut rx, cancel, _task) = start(fake.clone(), check(3, 5));
        failures(&mut rx, 20).await;
        assert_eq!(fake.peak.load(Ordering::SeqCst), 5, "overlapping, bounded by max(fall, rise)");
        cancel.cancel();
    }

    #[tokio::test(start_paused = true)]
    async fn a_healthy_fast_target_is_probed_at_the_normal_interval_only() {
        let fake = Fake::new(vec![Step::After(1, true)]);
        let (mut rx, cancel, _task) = start(fake.clone(), check(3, 2));
        for _ in 0..10 {
            assert_eq!(next(&mut rx).await.outcome, Outcome::Ok);
        }
        let starts = fake.starts();
        assert_eq!(starts.len(), 10, "no extra probe");
        for pair in starts.windows(2) {
            let gap = pair[1] - pair[0];
            assert!(gap >= ms(1000) && gap < ms(1002), "probes {gap:?} apart");
        }
        assert_eq!(fake.peak.load(Ordering::SeqCst), 1);
        cancel.cancel();
    }

    #[tokio::test(start_paused = true)]
    async fn cancelling_stops_the_probes_in_flight() {
        let fake = Fake::new(vec![Step::Hang]);
        let (_rx, cancel, task) = start(fake.clone(), check(3, 2));
        tokio::time::sleep(ms(1300)).await;
        assert_eq!(fake.running.load(Ordering::SeqCst), 3, "three probes hang at once");
        cancel.cancel();
        task.await.unwrap();
        assert_eq!(fake.running.load(Ordering::SeqCst), 0, "every probe in flight was dropped");
        let started = fake.starts().len();
        tokio::time::sleep(ms(5000)).await;
        assert_eq!(fake.starts().len(), started, "no probe after cancellation");
    }

    #[tokio::test(start_paused = true)]
    async fn a_peer_nudge_probes_at_once_then_confirms_at_the_fast_interval() {
        let fake = Fake::new(vec![Step::After(1, true)]);
        let (tx, rx) = mpsc::channel(64);
        let (nudge, reprobe) = watch::channel(0u64);
        let cancel = CancellationToken::new();
        let runner = Runner::new(check(3, 2), fake.clone(), RegionName::new("here"), tx, Arc::new(Metrics::new()))
            .with_reprobe(reprobe);
        let _task = tokio::spawn(runner.run(cancel.clone()));
        let mut rx = rx;
        next(&mut rx).await;
        tokio::time::sleep(ms(299)).await;
        nudge.send_modify(|n| *n += 1);
        for _ in 0..4 {
            next(&mut rx).await;
        }
        let starts = fake.starts();
        let gaps: Vec<u128> = starts.windows(2).map(|p| (p[1] - p[0]).as_millis()).collect();
        // At once (300 ms after the first), two more at the fast interval (max(fall, rise) = 3
        // Ok in a row confirm), then the normal interval again.
        assert_eq!(gaps, vec![300, 100, 100, 1000], "{starts:?}");
        cancel.cancel();
    }

    #[tokio::test]
    async fn an_injection_reports_its_regions_probes_failed_with_the_real_outcome_kept() {
        let fake = Fake::new(vec![Step::After(0, true)]);
        let (tx, _rx) = mpsc::channel(4);
        let (inject, injection) = watch::channel(None);
        let runner = Runner::new(check(3, 2), fake, RegionName::new("here"), tx, Arc::new(Metrics::new()))
            .with_injection(injection);
        assert_eq!(runner.tick().await.outcome, Outcome::Ok);
        let drill = crate::drill::DrillId::new();
        let until = Utc::now() + chrono::Duration::seconds(60);
        inject.send_replace(Some(Injection { drill, region: RegionName::new("primary"), until }));
        let obs = runner.tick().await;
        assert_eq!((obs.outcome, obs.synthetic), (Outcome::Failed, Some(Outcome::Ok)));
        assert!(obs.error.unwrap().contains(&drill.to_string()));
        // Another region's injection, or one past its deadline, changes nothing.
        inject.send_replace(Some(Injection { drill, region: RegionName::new("dr"), until }));
        assert_eq!(runner.tick().await.synthetic, None);
        let past = Utc::now() - chrono::Duration::seconds(1);
        inject.send_replace(Some(Injection { drill, region: RegionName::new("primary"), until: past }));
        assert_eq!(runner.tick().await.outcome, Outcome::Ok);
    }
}
