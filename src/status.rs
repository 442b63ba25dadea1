//! The status read model: what the engine publishes for the API, SSE and dashboard.
//!
//! Built by the engine after every change and shared as `Arc<Status>` through a
//! `watch` channel; readers never lock the engine.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::alarm::AlarmKind;
use crate::coord::{CoordHealth, Leadership};
use crate::drill::{DrillId, DrillState};
use crate::health::Health;
use crate::lag::LagSample;
use crate::observation::Outcome;
use crate::operation::HoldRecord;
use crate::plan::TrafficPlan;
use crate::region::{Layer, RegionName, Role};
use crate::replication::promotion::PromotionStep;
use crate::store::writer::StoreStatus;
use crate::traffic::applier::ApplyReport;

/// The whole picture.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// When this snapshot was built.
    pub generated_at: DateTime<Utc>,
    /// The region this orchestrator runs in.
    pub vantage: RegionName,
    /// Leadership and epoch.
    pub leadership: Leadership,
    /// One entry per region, in configuration order.
    pub regions: Vec<RegionStatus>,
    /// The current plan and how far it got.
    pub plan: Option<PlanStatus>,
    /// Whether the orchestrator is acting, and why (or why not).
    pub acting: Acting,
    /// Active alarms.
    pub alarms: Vec<AlarmStatus>,
    /// The store writer.
    pub store: StoreStatus,
    /// Providers whose live weights differ from the plan (drift detection).
    pub drift: Vec<ProviderDrift>,
    /// Whether the system is failed over (any region below its normal weight).
    pub failed_over: bool,
    /// The region whose database takes writes.
    pub writer: RegionName,
    /// Steps of the last promotion.
    pub promotion: Vec<PromotionStep>,
    /// The live drill, while one runs or rolls back.
    pub drill: Option<DrillStatus>,
    /// Weights pinned by an operator (manual failover or switchover) until a failback.
    pub operator_hold: Option<HoldRecord>,
    /// The coordination backend (etcd session, endpoints, requests) and the quorum.
    pub coordination: CoordinationStatus,
}

/// `status.coordination`.
#[derive(Debug, Clone, Serialize)]
pub struct CoordinationStatus {
    /// The backend's health (None before the first report).
    pub backend: Option<CoordHealth>,
    /// Vantages that must agree.
    pub quorum: usize,
    /// Regions that run an orchestrator.
    pub vantages: Vec<RegionName>,
}

/// One vantage's view of one region (`status.regions[].views[]`).
#[derive(Debug, Clone, Serialize)]
pub struct VantageView {
    /// The vantage.
    pub vantage: RegionName,
    /// What it sees.
    pub health: Health,
    /// Since when.
    pub since: Option<DateTime<Utc>>,
    /// Whether the view is fresh enough to vote.
    pub fresh: bool,
    /// Milliseconds since this orchestrator received it.
    pub age_ms: Option<u64>,
    /// Failing checks and their errors.
    pub reasons: Vec<String>,
}

/// The live drill, for the dashboard (`status.drill`).
#[derive(Debug, Clone, Serialize)]
pub struct DrillStatus {
    /// Drill id (`GET /api/v1/drills/{id}` has the timeline and report).
    pub id: DrillId,
    /// `shifting`, `holding`, `rolling_back`.
    pub state: DrillState,
    /// Current step, 0-based (None before the first).
    pub step: Option<u32>,
    /// Number of steps.
    pub steps: usize,
    /// Percent of the share moved at each step.
    pub step_percents: Vec<u32>,
    /// The region evacuated, if one is.
    pub evacuate: Option<RegionName>,
    /// The region traffic shifts to.
    pub target: Option<RegionName>,
    /// Who started it.
    pub actor: String,
    /// When it was requested.
    pub requested_at: DateTime<Utc>,
    /// When the current hold ends (while holding).
    pub hold_until: Option<DateTime<Utc>>,
    /// Errors seen so far.
    pub error_count: u64,
    /// A synthetic-failure drill: the automation, not the drill, moves traffic.
    pub synthetic: bool,
}

/// Why the orchestrator does what it does right now.
#[derive(Debug, Clone, Serialize)]
pub struct Acting {
    /// Whether it may apply plans (leader and started).
    pub active: bool,
    /// The decision's reasons, including for not acting.
    pub reasons: Vec<String>,
    /// When the last decision was made.
    pub decided_at: Option<DateTime<Utc>>,
}

/// One region.
#[derive(Debug, Clone, Serialize)]
pub struct RegionStatus {
    /// Every vantage's view of the region, this orchestrator's first.
    pub views: Vec<VantageView>,
    /// The quorum sentence when the vantages disagree or a quorum decided.
    pub quorum_note: Option<String>,
    /// Name.
    pub name: RegionName,
    /// Role.
    pub role: Role,
    /// Combined health.
    pub health: Health,
    /// Since when.
    pub since: Option<DateTime<Utc>>,
    /// Configured weight.
    pub normal_weight: u32,
    /// Current planned weight.
    pub weight: u32,
    /// Address answered by DNS providers.
    pub address: Option<String>,
    /// Drained by an operator, with the reason.
    pub maintenance: Option<String>,
    /// Health per layer (None: no check on that layer).
    pub layers: Vec<LayerStatus>,
    /// Every check.
    pub checks: Vec<CheckStatus>,
    /// Latest replication lag (standby regions with a database).
    pub lag: Option<LagSample>,
}

/// One layer of a region.
#[derive(Debug, Clone, Serialize)]
pub struct LayerStatus {
    /// The layer.
    pub layer: Layer,
    /// Its health, None when the region has no check on it.
    pub health: Option<Health>,
}

/// One check.
#[derive(Debug, Clone, Serialize)]
pub struct CheckStatus {
    /// Name.
    pub name: String,
    /// Layer.
    pub layer: Layer,
    /// `tcp`, `http`, `postgres`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Target, secret-free.
    pub target: String,
    /// Health after hysteresis.
    pub health: Health,
    /// Since when.
    pub since: Option<DateTime<Utc>>,
    /// Last probe result.
    pub last_outcome: Option<Outcome>,
    /// Last probe latency in milliseconds.
    pub last_latency_ms: Option<f64>,
    /// Last error text.
    pub last_error: Option<String>,
    /// When last probed.
    pub last_at: Option<DateTime<Utc>>,
    /// Consecutive failures.
    pub fail_streak: u32,
    /// Threshold to go down.
    pub fall: u32,
    /// Threshold to come back.
    pub rise: u32,
    /// Recent latencies (ms) with outcome, oldest first, for charts.
    pub recent: Vec<(DateTime<Utc>, f64, Outcome)>,
}

/// The current plan.
#[derive(Debug, Clone, Serialize)]
pub struct PlanStatus {
    /// The plan.
    #[serde(flatten)]
    pub plan: TrafficPlan,
    /// Whether it is in the store.
    pub recorded: bool,
    /// Last report per provider.
    pub providers: Vec<ApplyReport>,
    /// When every provider verified it.
    pub verified_at: Option<DateTime<Utc>>,
}

/// An active alarm.
#[derive(Debug, Clone, Serialize)]
pub struct AlarmStatus {
    /// Kind (serialised snake_case).
    pub kind: AlarmKind,
    /// Region concerned.
    pub region: Option<RegionName>,
    /// Message.
    pub message: String,
    /// Since when.
    pub since: DateTime<Utc>,
}

/// A provider whose live state differs from the plan.
#[derive(Debug, Clone, Serialize)]
pub struct ProviderDrift {
    /// Provider name.
    pub provider: String,
    /// What the plan says, as the provider can express it.
    pub expected: crate::plan::Weights,
    /// What it serves.
    pub live: crate::plan::Weights,
    /// Reconcile or report.
    pub action: crate::config::OnDrift,
    /// Since when.
    pub since: DateTime<Utc>,
}
