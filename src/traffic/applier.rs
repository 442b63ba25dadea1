//! The applier: drives every provider toward the latest plan and watches for drift.
//!
//! One worker per provider runs concurrently, so one slow or dead provider never
//! blocks the others. [`Applier::into_workers`] hands out each provider's
//! [`ProviderWorker`], which `app.rs` runs under supervision: a worker that panics
//! is restarted alone (with a fresh breaker, re-applying the latest plan) while the
//! others go on; [`Applier::run`] joins them without supervision. A worker applies each new plan,
//! reads it back and compares; on failure it reports, waits (exponential
//! backoff, full jitter) and tries again until it succeeds, the error is not
//! retryable (stale epoch), or a newer plan supersedes this one. Each worker
//! owns a [`CircuitBreaker`]: while it is open the provider is not called and
//! the report says so. After a verified apply, DNS providers are checked for
//! propagation. Between plans, the worker reads the provider back every
//! `drift_interval` and reports drift (someone changed the weights outside the
//! orchestrator), reconciling it when `on_drift = "reconcile"`. Every outcome
//! goes back to the engine as an [`ApplyReport`].

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tracing::{info, instrument, warn};

use super::propagation::{self, PropagationReport};
use super::{ProviderError, TrafficProvider};
use crate::breaker::{BreakerPhase, CircuitBreaker, Permit};
use crate::config::{OnDrift, ProviderGuard};
use crate::coord::{AlwaysLeader, Fence, FenceError, Standing};
use crate::metrics::Metrics;
use crate::plan::{PlanId, TrafficPlan, Weights};
use crate::retry::Backoff;

/// How one apply attempt (or the whole apply) ended, or what a drift check found.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ApplyResult {
    /// Applied and verified by read-back (also: a drift check found it in sync again).
    Verified,
    /// Failed; `will_retry` says whether another attempt follows.
    Failed {
        /// Secret-free error text.
        error: String,
        /// Whether the applier tries again.
        will_retry: bool,
    },
    /// The provider's circuit breaker is open: it was not called.
    CircuitOpen {
        /// Time until the half-open probe.
        #[serde(with = "crate::serde_util::duration")]
        retry_in: Duration,
    },
    /// A drift check found live weights that differ from the plan.
    Drift {
        /// What the plan says, as the provider can express it.
        expected: Weights,
        /// What the provider serves.
        live: Weights,
        /// What the applier does about it.
        action: OnDrift,
    },
    /// A newer plan replaced this one before it was applied.
    Superseded,
    /// The write was refused for good: the provider holds a newer epoch, or the fence found
    /// that this orchestrator no longer leads. Never retried; recorded and alarmed.
    Refused {
        /// Secret-free error text.
        error: String,
    },
}

/// One provider's outcome for one plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApplyReport {
    /// The plan.
    pub plan_id: PlanId,
    /// The provider.
    pub provider: String,
    /// What happened.
    pub result: ApplyResult,
    /// Attempts so far.
    pub attempts: u32,
    /// Time from the start of the first attempt.
    #[serde(with = "crate::serde_util::duration")]
    pub elapsed: Duration,
    /// When.
    pub at: DateTime<Utc>,
    /// The provider's circuit breaker after this outcome.
    pub breaker: BreakerPhase,
    /// DNS providers: how long until every server served the new answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub propagation: Option<PropagationReport>,
    /// A verified write after which this provider checks DNS propagation: a report with
    /// `propagation` follows.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub propagation_follows: bool,
}

/// Timing of retries.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// First backoff ceiling.
    pub base: Duration,
    /// Largest backoff ceiling.
    pub max: Duration,
    /// Bound on one apply + read-back attempt.
    pub attempt_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            base: Duration::from_millis(200),
            max: Duration::from_secs(10),
            attempt_timeout: Duration::from_secs(10),
        }
    }
}

/// A provider with the settings the applier uses for it.
#[derive(Clone)]
pub struct ProviderSlot {
    /// The provider.
    pub provider: Arc<dyn TrafficProvider>,
    /// Breaker, drift and propagation settings.
    pub guard: ProviderGuard,
}

impl ProviderSlot {
    /// A slot with default settings (no drift checks, default breaker).
    pub fn new(provider: Arc<dyn TrafficProvider>) -> Self {
        Self { provider, guard: ProviderGuard::default() }
    }
}

/// Applies the latest plan to every provider.
pub struct Applier {
    slots: Vec<ProviderSlot>,
    feeds: Feeds,
}

/// What every provider's worker shares: where plans come from and reports go, and the fence.
#[derive(Clone)]
struct Feeds {
    plans: watch::Receiver<Option<TrafficPlan>>,
    reports: mpsc::Sender<ApplyReport>,
    metrics: Arc<Metrics>,
    retry: RetryPolicy,
    fence: Arc<dyn Fence>,
    standing: Option<watch::Receiver<Standing>>,
}

impl Applier {
    /// An applier for `slots`, fed by `plans`, reporting on `reports`.
    pub fn new(
        slots: Vec<ProviderSlot>,
        plans: watch::Receiver<Option<TrafficPlan>>,
        reports: mpsc::Sender<ApplyReport>,
        metrics: Arc<Metrics>,
        retry: RetryPolicy,
    ) -> Self {
        Self { slots, feeds: Feeds { plans, reports, metrics, retry, fence: Arc::new(AlwaysLeader), standing: None } }
    }

    /// Confirms leadership through `fence` before every provider write, and abandons an
    /// apply in flight as soon as `standing` says this orchestrator no longer leads in the
    /// plan's epoch.
    pub fn with_fence(mut self, fence: Arc<dyn Fence>, standing: watch::Receiver<Standing>) -> Self {
        self.feeds.fence = fence;
        self.feeds.standing = Some(standing);
        self
    }

    /// Applies plans and checks drift until cancelled, every provider's worker joined in this
    /// task without supervision (a panic in one ends all). An apply in flight when cancelled is
    /// abandoned after its current attempt (the engine records the last report it got).
    pub async fn run(self, cancel: CancellationToken) {
        let workers = self.into_workers();
        futures::future::join_all(workers.iter().map(|w| w.run(cancel.clone()))).await;
    }

    /// One worker per provider, for the caller to run (and restart) each on its own.
    pub fn into_workers(self) -> Vec<ProviderWorker> {
        self.slots.into_iter().map(|slot| ProviderWorker { slot, feeds: self.feeds.clone() }).collect()
    }
}

/// What one provider's worker is built from; [`ProviderWorker::run`] can be called again after
/// a run panicked.
pub struct ProviderWorker {
    slot: ProviderSlot,
    feeds: Feeds,
}

impl ProviderWorker {
    /// The provider's name.
    pub fn provider(&self) -> &str {
        self.slot.provider.name()
    }

    /// A fresh run (closed breaker, no drift known) that applies the latest plan at once, then
    /// every newer one, and checks drift, until cancelled or the plans' sender is gone.
    pub fn run(&self, cancel: CancellationToken) -> impl std::future::Future<Output = ()> + Send + use<> {
        let f = self.feeds.clone();
        Worker {
            breaker: CircuitBreaker::new(self.slot.guard.breaker),
            slot: self.slot.clone(),
            plans: f.plans,
            reports: f.reports,
            metrics: f.metrics,
            retry: f.retry,
            drifted: None,
            read_failed: false,
            fence: f.fence,
            standing: f.standing,
        }
        .run(cancel)
    }
}

/// How an apply loop ended.
enum Ended {
    Verified,
    GaveUp,
    Superseded,
    Cancelled,
}

struct Worker {
    slot: ProviderSlot,
    breaker: CircuitBreaker,
    plans: watch::Receiver<Option<TrafficPlan>>,
    reports: mpsc::Sender<ApplyReport>,
    metrics: Arc<Metrics>,
    retry: RetryPolicy,
    /// The live weights last reported as drift, while drifted.
    drifted: Option<Weights>,
    /// Whether the last drift check could not read the provider.
    read_failed: bool,
    fence: Arc<dyn Fence>,
    standing: Option<watch::Receiver<Standing>>,
}

impl Worker {
    fn name(&self) -> &str {
        self.slot.provider.name()
    }

    async fn run(mut self, cancel: CancellationToken) {
        let drift_every = self.slot.guard.drift_interval;
        let mut drift_tick = tokio::time::interval(drift_every.unwrap_or(Duration::from_secs(3600)));
        drift_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        drift_tick.reset();
        // Plans sent before this worker started are applied too.
        self.plans.mark_changed();
        let mut current: Option<TrafficPlan> = None;
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                changed = self.plans.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    current = self.plans.borrow_and_update().clone();
                    if let Some(plan) = &current {
                        self.apply(plan, &cancel).await;
                        drift_tick.reset();
                    }
                }
                _ = drift_tick.tick(), if drift_every.is_some() && current.is_some() => {
                    if let Some(plan) = current.clone() {
                        self.check_drift(&plan, &cancel).await;
                    }
                }
            }
        }
    }

    async fn report(&self, plan: &TrafficPlan, result: ApplyResult, attempts: u32, started: Instant) {
        self.report_with(plan, result, attempts, started, None, false).await;
    }

    async fn report_with(
        &self,
        plan: &TrafficPlan,
        result: ApplyResult,
        attempts: u32,
        started: Instant,
        propagation: Option<PropagationReport>,
        propagation_follows: bool,
    ) {
        self.metrics.set_breaker(self.name(), self.breaker.phase());
        // A provider's error text may name its URL with credentials.
        let result = match result {
            ApplyResult::Failed { error, will_retry } => {
                ApplyResult::Failed { error: crate::redact::text(&error), will_retry }
            }
            ApplyResult::Refused { error } => ApplyResult::Refused { error: crate::redact::text(&error) },
            other => other,
        };
        let _ = self
            .reports
            .send(ApplyReport {
                plan_id: plan.id,
                provider: self.name().to_string(),
                result,
                attempts,
                elapsed: started.elapsed(),
                at: Utc::now(),
                breaker: self.breaker.phase(),
                propagation,
                propagation_follows,
            })
            .await;
    }

    /// Applies `plan` until verified, refused, superseded or cancelled.
    #[instrument(skip_all, fields(provider = self.name(), plan = %plan.id))]
    async fn apply(&mut self, plan: &TrafficPlan, cancel: &CancellationToken) -> Ended {
        let started = Instant::now();
        let mut newer = self.plans.clone();
        let mut backoff = Backoff::new(self.retry.base, self.retry.max);
        loop {
            let wait = match self.breaker.allow(Instant::now()) {
                Permit::Refused { retry_at } => {
                    let retry_in = retry_at.saturating_duration_since(Instant::now());
                    warn!(retry_in_ms = retry_in.as_millis() as u64, "circuit open: provider not called");
                    self.report(plan, ApplyResult::CircuitOpen { retry_in }, backoff.attempts(), started).await;
                    retry_in
                }
                Permit::Call => {
                    let mut standing = self.standing.clone();
                    let attempt_started = Instant::now();
                    let result = tokio::select! {
                        r = self.attempt(plan) => r,
                        () = stepped_down(&mut standing, plan) => Err(ProviderError::Fenced {
                            provider: self.name().to_string(),
                            detail: format!("stepped down while applying (epoch {})", plan.epoch),
                            retryable: false,
                        }),
                    };
                    self.metrics.observe_provider_apply(self.name(), attempt_started.elapsed(), result.is_ok());
                    let _ = backoff.next_wait(); // count the attempt
                    let attempts = backoff.attempts();
                    match result {
                        Ok(()) => {
                            self.breaker.on_success();
                            self.drifted = None;
                            self.metrics.set_drift(self.name(), false);
                            info!(attempts, elapsed_ms = started.elapsed().as_millis() as u64, weights = %plan.weights, "plan applied and verified");
                            let target = self.slot.provider.propagation_target(plan);
                            self.report_with(plan, ApplyResult::Verified, attempts, started, None, target.is_some())
                                .await;
                            if let Some(target) = target {
                                self.check_propagation(plan, &target, attempts, started).await;
                            }
                            return Ended::Verified;
                        }
                        Err(e) => {
                            self.metrics.provider_error(self.name());
                            let will_retry = e.is_retryable();
                            if will_retry {
                                self.breaker.on_failure(Instant::now());
                            }
                            warn!(error = %e, attempts, will_retry, breaker = ?self.breaker.phase(), "provider apply failed");
                            let result = if will_retry {
                                ApplyResult::Failed { error: e.to_string(), will_retry }
                            } else {
                                ApplyResult::Refused { error: e.to_string() }
                            };
                            self.report(plan, result, attempts, started).await;
                            if !will_retry {
                                return Ended::GaveUp;
                            }
                            // `next_wait` above advanced the counter; the wait uses the current ceiling.
                            backoff.ceiling().mul_f64(rand::random::<f64>())
                        }
                    }
                }
            };
            let mut standing = self.standing.clone();
            tokio::select! {
                _ = cancel.cancelled() => return Ended::Cancelled,
                _ = newer.changed() => {
                    self.report(plan, ApplyResult::Superseded, backoff.attempts(), started).await;
                    return Ended::Superseded;
                }
                () = stepped_down(&mut standing, plan) => {
                    let error = format!("stepped down: plan of epoch {} abandoned", plan.epoch);
                    warn!(%error, "apply abandoned");
                    self.report(plan, ApplyResult::Refused { error }, backoff.attempts(), started).await;
                    return Ended::GaveUp;
                }
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Applies once and verifies by read-back, under the attempt timeout.
    async fn attempt(&self, plan: &TrafficPlan) -> Result<(), ProviderError> {
        let provider = self.slot.provider.as_ref();
        let work = async {
            // Leadership confirmed (and, with etcd, the plan published) immediately before the write.
            self.fence.confirm(plan).await.map_err(|e| ProviderError::Fenced {
                provider: provider.name().to_string(),
                retryable: matches!(e, FenceError::Unreachable(_)),
                detail: e.to_string(),
            })?;
            provider.apply(plan).await?;
            let live = provider.read_back().await?;
            let expected = provider.expressible(&plan.weights);
            if live.weights != expected {
                return Err(ProviderError::Verify {
                    provider: provider.name().to_string(),
                    expected,
                    got: live.weights,
                });
            }
            Ok(())
        };
        match tokio::time::timeout(self.retry.attempt_timeout, work).await {
            Ok(r) => r,
            Err(_) => Err(ProviderError::Unreachable {
                provider: provider.name().to_string(),
                detail: format!("attempt timed out after {}", humantime::format_duration(self.retry.attempt_timeout)),
            }),
        }
    }

    /// For DNS providers: waits until every server serves the plan (bounded) and reports how long it took.
    async fn check_propagation(
        &self,
        plan: &TrafficPlan,
        target: &propagation::Target,
        attempts: u32,
        started: Instant,
    ) {
        let guard = &self.slot.guard;
        let report = propagation::check(target, &guard.resolvers, guard.propagation_timeout).await;
        if report.converged {
            info!(elapsed_ms = report.elapsed.as_millis() as u64, servers = report.servers.len(), "plan propagated");
        } else {
            let late: Vec<String> =
                report.servers.iter().filter(|s| !s.converged).map(|s| s.server.to_string()).collect();
            warn!(?late, bound = ?guard.propagation_timeout, "plan not propagated within the bound");
        }
        self.report_with(plan, ApplyResult::Verified, attempts, started, Some(report), false).await;
    }

    /// Reads the provider back and compares with the plan; reports drift and
    /// reconciles it when configured to.
    #[instrument(skip_all, fields(provider = self.name(), plan = %plan.id))]
    async fn check_drift(&mut self, plan: &TrafficPlan, cancel: &CancellationToken) {
        let started = Instant::now();
        if let Permit::Refused { .. } = self.breaker.allow(Instant::now()) {
            return; // the open breaker is already reported by the apply loop
        }
        let provider = self.slot.provider.clone();
        let read = tokio::time::timeout(self.retry.attempt_timeout, provider.read_back()).await;
        let live = match read {
            Ok(Ok(live)) => {
                self.breaker.on_success();
                live
            }
            Ok(Err(e)) => {
                self.read_failed(plan, e.to_string(), started).await;
                return;
            }
            Err(_) => {
                self.read_failed(plan, "read-back timed out".into(), started).await;
                return;
            }
        };
        let expected = provider.expressible(&plan.weights);
        if live.weights == expected {
            if self.drifted.take().is_some() || std::mem::take(&mut self.read_failed) {
                info!("provider back in sync with the plan");
                self.metrics.set_drift(self.name(), false);
                self.report(plan, ApplyResult::Verified, 0, started).await;
            }
            return;
        }
        // A newer epoch on the provider means another leader wrote it: never overwrite that.
        let newer_epoch = live.epoch.is_some_and(|e| e > plan.epoch);
        let action = if newer_epoch { OnDrift::Report } else { self.slot.guard.on_drift };
        if self.drifted.as_ref() != Some(&live.weights) {
            warn!(expected = %expected, live = %live.weights, ?action, "provider drift: live weights differ from the plan");
            self.metrics.set_drift(self.name(), true);
            self.report(plan, ApplyResult::Drift { expected, live: live.weights.clone(), action }, 0, started).await;
            self.drifted = Some(live.weights);
        }
        if action == OnDrift::Reconcile {
            self.apply(plan, cancel).await;
        }
    }

    async fn read_failed(&mut self, plan: &TrafficPlan, error: String, started: Instant) {
        self.metrics.provider_error(self.name());
        self.breaker.on_failure(Instant::now());
        warn!(%error, "drift check could not read the provider");
        self.read_failed = true;
        self.report(plan, ApplyResult::Failed { error, will_retry: true }, 0, started).await;
    }
}

/// Resolves when this orchestrator no longer leads in `plan`'s epoch; never without a standing
/// (the single backend) or when the standing's sender is gone.
async fn stepped_down(standing: &mut Option<watch::Receiver<Standing>>, plan: &TrafficPlan) {
    let Some(rx) = standing else { return std::future::pending().await };
    let epoch = plan.epoch;
    if rx.wait_for(|s| !s.leadership.leader || s.leadership.epoch != epoch).await.is_err() {
        std::future::pending::<()>().await;
    }
}
