//! The `webhook` provider, and the signed POST that notifications share.
//!
//! A plan is POSTed as JSON ([`WebhookPayload`]) with two headers:
//! `X-Failover-Timestamp: <unix seconds>` and
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
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::{LiveState, ProviderError, TrafficProvider, nonzero};
use crate::config::WebhookConfig;
use crate::plan::{Epoch, PlanId, PlanKind, TrafficPlan, Weights};

/// Header carrying the signature.
pub const SIGNATURE_HEADER: &str = "X-Failover-Signature";
/// Header carrying the timestamp that is signed with the body.
pub const TIMESTAMP_HEADER: &str = "X-Failover-Timestamp";

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

/// `sha256=<hex>` over `<timestamp>.<body>`.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(secret).unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Checks a signature in constant time (for receivers, and the tests).
pub fn verify(secret: &[u8], timestamp: i64, body: &[u8], signature: &str) -> bool {
    let Some(hex_sig) = signature.strip_prefix("sha256=") else { return false };
    let Ok(tag) = hex::decode(hex_sig) else { return false };
    let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(secret) else { return false };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&tag).is_ok()
}

/// Why a signed POST failed.
#[derive(Debug, thiserror::Error)]
pub enum PostError {
    /// No answer (connection refused, timeout).
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// A non-2xx answer.
    #[error("answered {status}: {body}")]
    Status {
        /// HTTP status.
        status: u16,
        /// Start of the body.
        body: String,
    },
}

impl PostError {
    /// Whether a retry may help: timeouts, connection errors, 5xx and 429.
    pub fn is_retryable(&self) -> bool {
        match self {
            PostError::Unreachable(_) => true,
            PostError::Status { status, .. } => *status >= 500 || *status == 429,
        }
    }
}

/// POSTs `body` as JSON, signed with `secret` when given.
///
/// # Errors
/// [`PostError`]; the error text never contains the secret.
pub async fn post_signed(
    http: &reqwest::Client,
    url: &str,
    secret: Option<&SecretString>,
    body: Vec<u8>,
    idempotency_key: Option<&str>,
) -> Result<(), PostError> {
    let ts = Utc::now().timestamp();
    let mut req = http
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(TIMESTAMP_HEADER, ts.to_string());
    if let Some(secret) = secret {
        req = req.header(SIGNATURE_HEADER, sign(secret.expose_secret().as_bytes(), ts, &body));
    }
    if let Some(key) = idempotency_key {
        req = req.header("Idempotency-Key", key);
    }
    let resp = req.body(body).send().await.map_err(|e| {
        let what = if e.is_timeout() {
            "timed out"
        } else if e.is_connect() {
            "connection failed"
        } else {
            "request failed"
        };
        PostError::Unreachable(what.into())
    })?;
    if resp.status().is_success() {
        return Ok(());
    }
    let status = resp.status().as_u16();
    let body = resp.text().await.unwrap_or_default().chars().take(200).collect();
    Err(PostError::Status { status, body })
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
        if let Some(live) = self.acked() {
            if let Some(epoch) = live.epoch.filter(|e| *e > plan.epoch) {
                return Err(ProviderError::StaleEpoch {
                    provider: self.cfg.name.clone(),
                    plan: plan.epoch,
                    live: epoch,
                });
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_covers_timestamp_and_body() {
        let sig = sign(b"k", 1_700_000_000, b"{\"a\":1}");
        assert!(sig.starts_with("sha256="));
        assert_eq!(sig.len(), "sha256=".len() + 64);
        assert!(verify(b"k", 1_700_000_000, b"{\"a\":1}", &sig));
        assert!(!verify(b"k", 1_700_000_001, b"{\"a\":1}", &sig), "another timestamp");
        assert!(!verify(b"k", 1_700_000_000, b"{\"a\":2}", &sig), "another body");
        assert!(!verify(b"other", 1_700_000_000, b"{\"a\":1}", &sig), "another key");
    }

    #[test]
    fn signature_matches_a_known_vector() {
        // Computed independently: printf '1.x' | openssl dgst -sha256 -hmac key
        assert_eq!(sign(b"key", 1, b"x"), "sha256=fc4913c41a7bf793267e2a384f3261c9436ec2cd097bd745e7b0d99113f510ec");
    }

    #[test]
    fn server_errors_and_timeouts_are_retryable_client_errors_are_not() {
        assert!(PostError::Unreachable("x".into()).is_retryable());
        assert!(PostError::Status { status: 503, body: String::new() }.is_retryable());
        assert!(!PostError::Status { status: 400, body: String::new() }.is_retryable());
    }
}
