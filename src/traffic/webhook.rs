//! The `webhook` provider: every plan POSTed to a URL.
//!
//! A plan is POSTed as JSON ([`WebhookPayload`]) through the crate's
//! [signed POST](crate::signed_post): `X-Failover-Timestamp: <unix seconds>`,
//! `X-Failover-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`,
//! plus `Idempotency-Key: <plan id>` so a receiver can ignore retries.
//! 5xx answers and timeouts are retryable; 4xx answers are rejections.
//!
//! Read-back contract: a webhook cannot be asked what it serves. A 2xx answer
//! *is* the acknowledgement, and `read_back` returns the last plan the receiver
//! acknowledged to this process (nothing after a restart, which makes the
//! applier send the plan again). Drift detection therefore never finds drift
//! here; the receiver owns what it does with the plan.

use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{LiveState, ProviderError, TrafficProvider, nonzero};
use crate::config::WebhookConfig;
use crate::plan::{Epoch, PlanId, PlanKind, TrafficPlan, Weights};
use crate::signed_post::{PostError, post_signed};

/// The JSON document POSTed for a plan.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WebhookPayload {
    /// Always `"plan"`.
    pub event: String,
    /// The plan's id (also the `Idempotency-Key` header).
    pub plan_id: PlanId,
    /// Fencing epoch: a receiver should ignore a plan older than one it applied.
    pub epoch: Epoch,
    /// Plan kind: `normal`, `failover`, `failback`, `manual`, …
    pub kind: PlanKind,
    /// Weight per region, 0–100, summing to 100.
    pub weights: Weights,
    /// One-line reason.
    pub reason: String,
    /// When the plan was decided.
    pub decided_at: DateTime<Utc>,
    /// When this request was sent.
    pub sent_at: DateTime<Utc>,
}

/// POSTs every plan to a URL.
#[derive(Debug)]
pub struct WebhookProvider {
    cfg: WebhookConfig,
    http: reqwest::Client,
    /// What the receiver last acknowledged (2xx), in this process.
    acked: Mutex<Option<LiveState>>,
}

impl WebhookProvider {
    /// A provider for `cfg`.
    ///
    /// # Errors
    /// When the HTTP client cannot be built.
    pub fn new(cfg: WebhookConfig) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder().timeout(cfg.timeout).build()?;
        Ok(Self { cfg, http, acked: Mutex::new(None) })
    }

    /// The JSON body for `plan`.
    pub fn payload(plan: &TrafficPlan) -> WebhookPayload {
        WebhookPayload {
            event: "plan".into(),
            plan_id: plan.id,
            epoch: plan.epoch,
            kind: plan.kind,
            weights: plan.weights.clone(),
            reason: plan.reason.clone(),
            decided_at: plan.decided_at,
            sent_at: Utc::now(),
        }
    }

    fn acked(&self) -> Option<LiveState> {
        self.acked.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[async_trait]
impl TrafficProvider for WebhookProvider {
    fn name(&self) -> &str {
        &self.cfg.name
    }

    async fn apply(&self, plan: &TrafficPlan) -> Result<(), ProviderError> {
        if let Some(live) = self.acked()
            && let Some(epoch) = live.epoch.filter(|e| *e > plan.epoch)
        {
            return Err(ProviderError::StaleEpoch { provider: self.cfg.name.clone(), plan: plan.epoch, live: epoch });
        }
        let body = serde_json::to_vec(&Self::payload(plan))
            .map_err(|e| ProviderError::Malformed { provider: self.cfg.name.clone(), detail: e.to_string() })?;
        let key = plan.id.to_string();
        match post_signed(&self.http, &self.cfg.url, Some(&self.cfg.secret), body, Some(&key)).await {
            Ok(()) => {
                *self.acked.lock().unwrap_or_else(|p| p.into_inner()) =
                    Some(LiveState { weights: nonzero(&plan.weights), epoch: Some(plan.epoch) });
                Ok(())
            }
            Err(e @ PostError::Unreachable(_)) => {
                Err(ProviderError::Unreachable { provider: self.cfg.name.clone(), detail: e.to_string() })
            }
            Err(PostError::Status { status, body }) if status >= 500 || status == 429 => {
                Err(ProviderError::Unreachable {
                    provider: self.cfg.name.clone(),
                    detail: format!("answered {status}: {body}"),
                })
            }
            Err(PostError::Status { status, body }) => Err(ProviderError::Rejected {
                provider: self.cfg.name.clone(),
                status: status.to_string(),
                detail: body,
            }),
        }
    }

    async fn read_back(&self) -> Result<LiveState, ProviderError> {
        Ok(self.acked().unwrap_or(LiveState { weights: Weights::default(), epoch: None }))
    }
}
