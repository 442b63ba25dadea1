//! Observations: one probe result, as data.
//!
//! A probe never returns an error to its caller: a timeout, a refused
//! connection or a wrong status is an [`Observation`] with outcome
//! [`Outcome::Failed`] and the error text. Pure data, no I/O.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::region::{CheckId, Layer, Vantage};

/// What one probe found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Answered correctly within the latency threshold.
    Ok,
    /// Answered correctly but slower than the latency threshold.
    Degraded,
    /// No answer, a wrong answer or a timeout.
    Failed,
}

/// One probe result with where and when it was seen.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Observation {
    /// Which check.
    pub check: CheckId,
    /// The check's layer.
    pub layer: Layer,
    /// The result.
    pub outcome: Outcome,
    /// How long the probe took (up to the timeout).
    #[serde(with = "crate::serde_util::duration")]
    pub latency: Duration,
    /// Why it failed or degraded; `None` when ok.
    pub error: Option<String>,
    /// Extra facts the probe learnt (e.g. `in_recovery=true`).
    pub detail: Option<String>,
    /// Which orchestrator probed.
    pub vantage: Vantage,
    /// When the probe finished.
    pub at: DateTime<Utc>,
    /// Set when a synthetic-failure drill injected this failure: what the probe really found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub synthetic: Option<Outcome>,
}
