//! The applier: drives every provider toward the latest plan.
//!
//! It watches the engine's desired plan. For each provider, concurrently, it
//! applies the plan, reads it back and compares; on failure it reports, waits
//! (exponential backoff, full jitter) and tries again, until it succeeds, the
//! error is not retryable (stale epoch), or a newer plan supersedes this one.
//! One slow or dead provider never blocks the others. Every attempt's outcome
//! goes back to the engine as an [`ApplyReport`].

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, instrument, warn};

use super::retry::Backoff;
use super::{ProviderError, TrafficProvider, nonzero};
use crate::metrics::Metrics;
use crate::plan::{PlanId, TrafficPlan};

/// How one apply attempt (or the whole apply) ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ApplyResult {
    /// Applied and verified by read-back.
    Verified,
    /// Failed; `will_retry` says whether another attempt follows.
    Failed {
        /// Secret-free error text.
        error: String,
        /// Whether the applier tries again.
        will_retry: bool,
    },
    /// A newer plan replaced this one before it was applied.
    Superseded,
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

/// Applies the latest plan to every provider.
pub struct Applier {
    providers: Vec<Arc<dyn TrafficProvider>>,
    plans: watch::Receiver<Option<TrafficPlan>>,
    reports: mpsc::Sender<ApplyReport>,
    metrics: Arc<Metrics>,
    retry: RetryPolicy,
}

impl Applier {
    /// An applier for `providers`, fed by `plans`, reporting on `reports`.
    pub fn new(
        providers: Vec<Arc<dyn TrafficProvider>>,
        plans: watch::Receiver<Option<TrafficPlan>>,
        reports: mpsc::Sender<ApplyReport>,
        metrics: Arc<Metrics>,
        retry: RetryPolicy,
    ) -> Self {
        Self { providers, plans, reports, metrics, retry }
    }

    /// Applies plans until cancelled. An apply in flight when cancelled is abandoned
    /// after its current attempt (the engine records the last report it got).
    pub async fn run(mut self, cancel: CancellationToken) {
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                changed = self.plans.changed() => if changed.is_err() { return },
            }
            let Some(plan) = self.plans.borrow_and_update().clone() else { continue };
            let jobs = self.providers.iter().map(|p| {
                let rx = self.plans.clone();
                apply_one(
                    p.clone(),
                    plan.clone(),
                    rx,
                    self.reports.clone(),
                    self.metrics.clone(),
                    self.retry,
                    cancel.clone(),
                )
            });
            futures::future::join_all(jobs).await;
        }
    }
}

#[instrument(skip_all, fields(provider = provider.name(), plan = %plan.id))]
async fn apply_one(
    provider: Arc<dyn TrafficProvider>,
    plan: TrafficPlan,
    mut newer: watch::Receiver<Option<TrafficPlan>>,
    reports: mpsc::Sender<ApplyReport>,
    metrics: Arc<Metrics>,
    retry: RetryPolicy,
    cancel: CancellationToken,
) {
    let started = Instant::now();
    let mut backoff = Backoff::new(retry.base, retry.max);
    loop {
        let attempt = tokio::time::timeout(retry.attempt_timeout, attempt(provider.as_ref(), &plan)).await;
        let result = match attempt {
            Ok(r) => r,
            Err(_) => Err(ProviderError::Unreachable {
                provider: provider.name().to_string(),
                detail: format!("attempt timed out after {}", humantime::format_duration(retry.attempt_timeout)),
            }),
        };
        let _ = backoff.next_wait(); // count the attempt
        let attempts = backoff.attempts();
        match result {
            Ok(()) => {
                info!(attempts, elapsed_ms = started.elapsed().as_millis() as u64, weights = %plan.weights, "plan applied and verified");
                let _ = reports
                    .send(ApplyReport {
                        plan_id: plan.id,
                        provider: provider.name().to_string(),
                        result: ApplyResult::Verified,
                        attempts,
                        elapsed: started.elapsed(),
                        at: Utc::now(),
                    })
                    .await;
                return;
            }
            Err(e) => {
                metrics.provider_error(provider.name());
                let will_retry = e.is_retryable();
                warn!(error = %e, attempts, will_retry, "provider apply failed");
                let _ = reports
                    .send(ApplyReport {
                        plan_id: plan.id,
                        provider: provider.name().to_string(),
                        result: ApplyResult::Failed { error: e.to_string(), will_retry },
                        attempts,
                        elapsed: started.elapsed(),
                        at: Utc::now(),
                    })
                    .await;
                if !will_retry {
                    return;
                }
            }
        }
        // `next_wait` above advanced the counter; the wait uses the current ceiling.
        let wait = backoff.ceiling().mul_f64(rand::random::<f64>());
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = newer.changed() => {
                let _ = reports.send(ApplyReport {
                    plan_id: plan.id,
                    provider: provider.name().to_string(),
                    result: ApplyResult::Superseded,
                    attempts,
                    elapsed: started.elapsed(),
                    at: Utc::now(),
                }).await;
                return;
            }
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// Applies once and verifies by read-back.
async fn attempt(provider: &dyn TrafficProvider, plan: &TrafficPlan) -> Result<(), ProviderError> {
    provider.apply(plan).await?;
    let live = provider.read_back().await?;
    let expected = nonzero(&plan.weights);
    if live.weights != expected {
        return Err(ProviderError::Verify { provider: provider.name().to_string(), expected, got: live.weights });
    }
    Ok(())
}
