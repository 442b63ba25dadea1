//! Request and response bodies of the operator endpoints, as the API (and its OpenAPI document) shows them.
//!
//! Decoupled from the domain types: numbers arrive as they were sent (so a
//! negative duration or a step over 100 % gets a 400 naming the field instead
//! of a type error), and are validated into domain values by the handlers.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /api/v1/drills`
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DrillRequestDto {
    /// The region to evacuate.
    #[schema(example = "primary")]
    pub evacuate: Option<String>,
    /// The region to shift to (default: the first eligible in the failover order).
    pub target: Option<String>,
    /// Percent of the evacuated share moved at each step, increasing, 1–100 (default `[100]`).
    #[schema(example = json!([50, 100]))]
    pub steps: Option<Vec<i64>>,
    /// Hold per step, seconds (default 30).
    #[schema(example = 30)]
    pub hold_seconds: Option<f64>,
    /// Compute and record every step's plan without touching a provider.
    #[serde(default)]
    pub dry_run: bool,
    /// Why (required).
    pub reason: Option<String>,
}

/// `POST /api/v1/drills/{id}/abort`
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AbortRequestDto {
    /// Why.
    pub reason: Option<String>,
}

/// `POST /api/v1/failover`
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FailoverRequestDto {
    /// The region to move all traffic to.
    pub target: String,
    /// Why (required; with `force`, also the recorded reason for accepting the lag).
    pub reason: Option<String>,
    /// Accept a target over its lag limit (needs the admin role).
    #[serde(default)]
    pub force: bool,
}

/// `POST /api/v1/switchover`
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SwitchoverRequestDto {
    /// The region to move all traffic to once its lag is ~0.
    pub target: String,
    /// Why (required).
    pub reason: Option<String>,
    /// How long to wait for the lag to drain, seconds (default 10, at most 25).
    pub timeout_seconds: Option<f64>,
    /// Lag in bytes counted as caught up (default 0).
    pub max_lag_bytes: Option<i64>,
}

/// `POST /api/v1/failback`
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FailbackRequestDto {
    /// Why (required).
    pub reason: Option<String>,
}

/// `POST /api/v1/regions/{name}/maintenance`
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceRequestDto {
    /// true drains the region, false returns it.
    pub drain: bool,
    /// Why (required).
    pub reason: Option<String>,
}

/// What failover, switchover, failback and maintenance return.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OperationDto {
    /// The operation's record id.
    pub operation_id: uuid::Uuid,
    /// The plan it produced (id, weights, reason …), if any.
    #[schema(value_type = Object)]
    pub plan: Option<serde_json::Value>,
    /// The plan's record id (same as `plan.id`).
    pub plan_id: Option<uuid::Uuid>,
    /// The decision's reasons.
    pub reasons: Vec<String>,
}

/// An error.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorDto {
    /// What went wrong and how to fix it.
    pub error: String,
    /// The request field at fault (400).
    pub field: Option<String>,
    /// Every reason for a refusal (409).
    pub reasons: Option<Vec<String>>,
    /// A follower's refusal (409): the region whose orchestrator leads, when known.
    pub leader: Option<String>,
    /// A follower's refusal (409): the leader's API and dashboard URL, when known.
    pub leader_api: Option<String>,
}
