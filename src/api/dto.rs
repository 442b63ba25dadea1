//! Request and response bodies of the API, as the API (and its OpenAPI document) shows them.
//!
//! Decoupled from the domain types: numbers arrive as they were sent (so a
//! negative duration or a step over 100 % gets a 400 naming the field instead
//! of a type error), and are validated into domain values by the handlers.
//!
//! Each request field's schema states what the handler refuses: free text holds no control
//! character but tab and line feed ([`TEXT_PATTERN`], the edge rule of [`super::text`]), a
//! reason is 1–500 characters with something other than white space in it
//! ([`REASON_PATTERN`]), numbers carry their ranges, and unknown fields are refused
//! (`additionalProperties: false`, from `deny_unknown_fields`). The response structs below
//! describe the shape a handler serialises (top level and `required` fields); unit tests in
//! [`super::openapi`] check real serialised values against them.

use chrono::{DateTime, Utc};
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, SchemaType, Type};
use utoipa::openapi::{Array, Object};

/// A string free of the control characters [`super::text`] refuses (all but tab and line feed).
pub const TEXT_PATTERN: &str = r"^[^\u0000-\u0008\u000B-\u001F\u007F-\u009F]*$";

/// A reason: free text (as [`TEXT_PATTERN`]) with at least one character that is not white
/// space (Unicode `White_Space`, what `str::trim` strips).
pub const REASON_PATTERN: &str = concat!(
    r"^[^\u0000-\u0008\u000B-\u001F\u007F-\u009F]*",
    r"[^\u0000-\u0020\u007F-\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]",
    r"[^\u0000-\u0008\u000B-\u001F\u007F-\u009F]*$"
);

/// Longest reason, in characters (Unicode scalar values, as JSON Schema counts them).
pub use crate::drill::MAX_REASON_CHARS;

fn string_type(nullable: bool) -> SchemaType {
    if nullable { SchemaType::from_iter([Type::String, Type::Null]) } else { SchemaType::Type(Type::String) }
}

fn reason_of(nullable: bool, description: &str) -> Object {
    ObjectBuilder::new()
        .schema_type(string_type(nullable))
        .min_length(Some(1))
        .max_length(Some(MAX_REASON_CHARS))
        .pattern(Some(REASON_PATTERN))
        .description(Some(description))
        .build()
}

/// A required reason.
fn reason_schema() -> Object {
    reason_of(
        false,
        "Why (required): 1–500 characters, not only white space, no control character but tab and line feed.",
    )
}

/// A region name (the served document lists the configured names as an `enum`).
fn region_schema(nullable: bool, description: &str) -> Object {
    ObjectBuilder::new()
        .schema_type(string_type(nullable))
        .min_length(Some(1))
        .pattern(Some(TEXT_PATTERN))
        .description(Some(description))
        .build()
}

fn evacuate_schema() -> Object {
    region_schema(true, "The region to evacuate (this, `target`, or both).")
}

fn drill_target_schema() -> Object {
    region_schema(true, "The region to shift to (default: the first eligible in the failover order); not `evacuate`.")
}

fn failover_target_schema() -> Object {
    region_schema(false, "The region to move all traffic to.")
}

fn switchover_target_schema() -> Object {
    region_schema(false, "The region to move all traffic to once its lag is ~0.")
}

fn steps_schema() -> Array {
    ArrayBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
        .items(ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(1)).maximum(Some(100)))
        .min_items(Some(1))
        .max_items(Some(100))
        .unique_items(true)
        .description(Some(
            "Percent of the evacuated share moved at each step, 1–100, each once; applied in increasing order \
             (default `[100]`).",
        ))
        .examples([serde_json::json!([50, 100])])
        .build()
}

/// An integer as JSON Schema counts one: `82`, and also `82.0` (a number whose fraction is
/// zero), or the same written in a query string. Anything else is refused naming the field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Whole(pub i64);

impl<'de> Deserialize<'de> for Whole {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(WholeVisitor).map(Whole)
    }
}

struct WholeVisitor;

/// `i64::MAX` as a float rounds up to 2^63, which does not fit: the bound is exclusive.
const I64_END: f64 = 9_223_372_036_854_775_808.0;

impl Visitor<'_> for WholeVisitor {
    type Value = i64;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a whole number")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
        Ok(v)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
        i64::try_from(v).map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &"a whole number up to 2^63 - 1"))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<i64, E> {
        if v.fract() == 0.0 && (-I64_END..I64_END).contains(&v) {
            Ok(v as i64)
        } else {
            Err(E::invalid_value(de::Unexpected::Float(v), &self))
        }
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<i64, E> {
        match v.parse::<i64>() {
            Ok(n) => Ok(n),
            Err(_) => match v.parse::<f64>() {
                Ok(f) if f.is_finite() => self.visit_f64(f),
                _ => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
            },
        }
    }
}

/// `deserialize_with` for an optional [`Whole`] field (give it `#[serde(default)]`).
///
/// # Errors
/// When the value is not a whole number.
pub fn optional_whole<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Option::<Whole>::deserialize(d).map(|o| o.map(|w| w.0))
}

/// `POST /api/v1/drills`
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DrillRequestDto {
    /// The region to evacuate.
    #[schema(schema_with = evacuate_schema)]
    pub evacuate: Option<String>,
    /// The region to shift to (default: the first eligible in the failover order).
    #[schema(schema_with = drill_target_schema)]
    pub target: Option<String>,
    /// Percent of the evacuated share moved at each step, 1–100, each once, applied in
    /// increasing order (default `[100]`).
    #[schema(schema_with = steps_schema)]
    pub steps: Option<Vec<Whole>>,
    /// Hold per step, seconds, 0–21600 (default 30).
    #[schema(example = 30, minimum = 0, maximum = 21600)]
    pub hold_seconds: Option<f64>,
    /// Compute and record every step's plan without touching a provider.
    #[serde(default)]
    pub dry_run: bool,
    /// Rehearse the automation: inject a synthetic failure of `evacuate` into every vantage's
    /// observations, let detection, quorum, decision and the providers move traffic for real,
    /// then lift it and roll back. Takes no `target`, `steps` or `dry_run`; `hold_seconds`
    /// (default 5, at most 600) is the hold after the flip. Refused while any region is unhealthy.
    #[serde(default)]
    pub synthetic_failure: bool,
    /// Why (required).
    #[schema(schema_with = reason_schema)]
    pub reason: String,
}

fn abort_reason_schema() -> Object {
    reason_of(true, "Why (default: \"aborted by an operator\"); when given, as any reason.")
}

/// `POST /api/v1/drills/{id}/abort`
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AbortRequestDto {
    /// Why.
    #[schema(schema_with = abort_reason_schema)]
    pub reason: Option<String>,
}

/// `POST /api/v1/failover`
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FailoverRequestDto {
    /// The region to move all traffic to.
    #[schema(schema_with = failover_target_schema)]
    pub target: String,
    /// Why (required; with `force`, also the recorded reason for accepting the lag).
    #[schema(schema_with = reason_schema)]
    pub reason: String,
    /// Accept a target over its lag limit (needs the admin role).
    #[serde(default)]
    pub force: bool,
}

/// `POST /api/v1/switchover`
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SwitchoverRequestDto {
    /// The region to move all traffic to once its lag is ~0.
    #[schema(schema_with = switchover_target_schema)]
    pub target: String,
    /// Why (required).
    #[schema(schema_with = reason_schema)]
    pub reason: String,
    /// How long to wait for the lag to drain, seconds, 0–25 (default 10).
    #[schema(minimum = 0, maximum = 25)]
    pub timeout_seconds: Option<f64>,
    /// Lag in bytes counted as caught up (default 0).
    #[serde(default, deserialize_with = "optional_whole")]
    #[schema(value_type = Option<i64>, minimum = 0)]
    pub max_lag_bytes: Option<i64>,
}

/// `POST /api/v1/failback`
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FailbackRequestDto {
    /// Why (required).
    #[schema(schema_with = reason_schema)]
    pub reason: String,
}

/// `POST /api/v1/regions/{name}/maintenance`
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceRequestDto {
    /// true drains the region, false returns it.
    pub drain: bool,
    /// Why (required).
    #[schema(schema_with = reason_schema)]
    pub reason: String,
}

/// What failover, switchover, failback and maintenance return.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OperationDto {
    /// The operation's record id.
    pub operation_id: uuid::Uuid,
    /// The plan it produced (id, weights, reason …), if any.
    #[schema(value_type = Option<Object>)]
    pub plan: Option<serde_json::Value>,
    /// The plan's record id (same as `plan.id`).
    pub plan_id: Option<uuid::Uuid>,
    /// The decision's reasons.
    pub reasons: Vec<String>,
}

/// An error: every 4xx and 5xx of the API has this body.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorDto {
    /// What went wrong and how to fix it.
    pub error: String,
    /// The request field at fault (400).
    #[schema(nullable = false)]
    pub field: Option<String>,
    /// The request id (also in the `x-request-id` header), when the error carries it.
    #[schema(nullable = false)]
    pub request_id: Option<String>,
    /// Every reason for a refusal (409).
    #[schema(nullable = false)]
    pub reasons: Option<Vec<String>>,
    /// A follower's refusal (409): the region whose orchestrator leads, when known.
    pub leader: Option<String>,
    /// A follower's refusal (409): the leader's API and dashboard URL, when known.
    pub leader_api: Option<String>,
}

// ---- Response shapes -------------------------------------------------------------------------
// These describe what the handlers serialise (the domain types in `status`, `store`, `drill`,
// `incidents`); nested parts without a struct here are `object` (or any value) in the document.

/// A region's health after hysteresis (`crate::health::Health`).
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum HealthDto {
    /// Every check up.
    Up,
    /// Degraded (slow, or a layer failing below the down threshold).
    Degraded,
    /// Down.
    Down,
    /// Not probed yet.
    Unknown,
}

/// A region's role (`crate::region::Role`).
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RegionRoleDto {
    /// Normally takes most of the traffic.
    Primary,
    /// Same-city standby.
    Standby,
    /// Remote disaster recovery.
    Dr,
}

/// A check's layer (`crate::region::Layer`).
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum LayerDto {
    /// TCP connect, host.
    Infra,
    /// PostgreSQL.
    Middleware,
    /// HTTP endpoint.
    App,
}

/// One probe's outcome (`crate::observation::Outcome`).
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum OutcomeDto {
    /// Answered within its thresholds.
    Ok,
    /// Answered slowly.
    Degraded,
    /// Did not answer, or answered wrong.
    Failed,
}

/// Which table an event comes from (`crate::store::EventKind`).
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum EventKindDto {
    /// A check or region changed health.
    Transition,
    /// A plan was decided.
    Plan,
    /// An alarm was raised.
    Alarm,
    /// An operator (or the system) acted; shown to operators and admins only.
    Audit,
}

/// `status.leadership`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LeadershipDto {
    /// Whether this orchestrator may apply plans.
    pub leader: bool,
    /// The fencing epoch.
    pub epoch: i64,
    /// The region whose orchestrator leads, when known.
    pub holder: Option<String>,
    /// The leader's API URL, when known.
    pub leader_api: Option<String>,
    /// `single` or `etcd`.
    pub backend: String,
}

/// `status.regions[].layers[]`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LayerStatusDto {
    /// The layer.
    pub layer: LayerDto,
    /// Its health; null when the region has no check on it.
    pub health: Option<HealthDto>,
}

/// `status.regions[].checks[]` (top level).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CheckStatusDto {
    /// Name.
    pub name: String,
    /// Layer.
    pub layer: LayerDto,
    /// `tcp`, `http`, `postgres` …
    #[serde(rename = "type")]
    pub kind: String,
    /// Target, secret-free.
    pub target: String,
    /// Health after hysteresis.
    pub health: HealthDto,
    /// Since when.
    pub since: Option<DateTime<Utc>>,
    /// Last probe result.
    pub last_outcome: Option<OutcomeDto>,
    /// Last probe latency, ms.
    pub last_latency_ms: Option<f64>,
    /// Last error text.
    pub last_error: Option<String>,
    /// When last probed.
    pub last_at: Option<DateTime<Utc>>,
    /// Consecutive failures.
    pub fail_streak: u32,
    /// Failures to go down.
    pub fall: u32,
    /// Successes to come back.
    pub rise: u32,
    /// Recent `[at, latency_ms, outcome]`, oldest first.
    #[schema(value_type = Vec<Vec<Value>>)]
    pub recent: Vec<serde_json::Value>,
}

/// `status.regions[]`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RegionStatusDto {
    /// Every vantage's view of the region.
    #[schema(value_type = Vec<Object>)]
    pub views: Vec<serde_json::Value>,
    /// The quorum sentence, when there is one.
    pub quorum_note: Option<String>,
    /// Name.
    pub name: String,
    /// Role.
    pub role: RegionRoleDto,
    /// Combined health.
    pub health: HealthDto,
    /// Since when.
    pub since: Option<DateTime<Utc>>,
    /// Configured weight, 0–100.
    pub normal_weight: u32,
    /// Current planned weight, 0–100.
    pub weight: u32,
    /// Address answered by DNS providers.
    pub address: Option<String>,
    /// Drained by an operator, with the reason.
    pub maintenance: Option<String>,
    /// Health per layer.
    pub layers: Vec<LayerStatusDto>,
    /// Every check.
    pub checks: Vec<CheckStatusDto>,
    /// Latest replication lag (standby regions with a database).
    #[schema(value_type = Option<Object>)]
    pub lag: Option<serde_json::Value>,
}

/// `status.acting`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ActingDto {
    /// Whether it may apply plans.
    pub active: bool,
    /// The decision's reasons.
    pub reasons: Vec<String>,
    /// When the last decision was made.
    pub decided_at: Option<DateTime<Utc>>,
}

/// `GET /api/v1/status` (and each `status` event of the stream): the whole picture.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StatusDto {
    /// When this snapshot was built.
    pub generated_at: DateTime<Utc>,
    /// The region this orchestrator runs in.
    pub vantage: String,
    /// Leadership and epoch.
    pub leadership: LeadershipDto,
    /// One entry per region, in configuration order.
    pub regions: Vec<RegionStatusDto>,
    /// The current plan (id, epoch, weights, kind, reason …, recorded, providers, verified_at).
    #[schema(value_type = Option<Object>)]
    pub plan: Option<serde_json::Value>,
    /// Whether the orchestrator is acting, and why.
    pub acting: ActingDto,
    /// Active alarms (`kind`, `region`, `message`, `since`).
    #[schema(value_type = Vec<Object>)]
    pub alarms: Vec<serde_json::Value>,
    /// The store writer.
    #[schema(value_type = Object)]
    pub store: serde_json::Value,
    /// Providers whose live weights differ from the plan.
    #[schema(value_type = Vec<Object>)]
    pub drift: Vec<serde_json::Value>,
    /// Whether any region is below its normal weight.
    pub failed_over: bool,
    /// The region whose database takes writes.
    pub writer: String,
    /// Steps of the last promotion.
    #[schema(value_type = Vec<Object>)]
    pub promotion: Vec<serde_json::Value>,
    /// The live drill, while one runs or rolls back.
    #[schema(value_type = Option<Object>)]
    pub drill: Option<serde_json::Value>,
    /// Weights pinned by an operator until a failback.
    #[schema(value_type = Option<Object>)]
    pub operator_hold: Option<serde_json::Value>,
    /// The coordination backend and the quorum.
    #[schema(value_type = Object)]
    pub coordination: serde_json::Value,
}

/// One entry of `GET /api/v1/events`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EventDto {
    /// Row id.
    pub id: uuid::Uuid,
    /// When.
    pub at: DateTime<Utc>,
    /// Which table it comes from.
    pub kind: EventKindDto,
    /// Region concerned, if any.
    pub region: Option<String>,
    /// One line for humans.
    pub message: String,
    /// The row's details.
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
}

/// `GET /api/v1/events`: a page, newest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EventsPageDto {
    /// The events.
    pub events: Vec<EventDto>,
    /// Pass as `before` for the next page; null on the last page.
    pub next_before: Option<DateTime<Utc>>,
}

/// One entry of the audit log.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditEntryDto {
    /// Row id.
    pub id: uuid::Uuid,
    /// When.
    pub at: DateTime<Utc>,
    /// Who (token name, `anonymous` or `system`).
    pub actor: String,
    /// What (`drill.start`, `failover`, `POST /api/v1/…` …).
    pub action: String,
    /// On what (region, drill id).
    pub target: Option<String>,
    /// How it ended (`201 Created`, `403 …`).
    pub outcome: String,
    /// The request id.
    pub request_id: Option<String>,
    /// Anything else (reason, ids of the records created).
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
}

/// `GET /api/v1/audit`: a page, newest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditPageDto {
    /// The entries.
    pub entries: Vec<AuditEntryDto>,
    /// Pass as `before` for the next page; null on the last page.
    pub next_before: Option<DateTime<Utc>>,
}

/// A drill as recorded (`GET /api/v1/drills/{id}` adds `timeline`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DrillDto {
    /// Id.
    pub id: uuid::Uuid,
    /// When requested.
    pub requested_at: DateTime<Utc>,
    /// Who (token name, or `schedule:<name>`).
    pub actor: String,
    /// The validated request (evacuate, target, steps, hold_ms, dry_run, reason, planned weights).
    #[schema(value_type = Object)]
    pub spec: serde_json::Value,
    /// The weights before the drill (region → weight).
    #[schema(value_type = Object)]
    pub baseline: serde_json::Value,
    /// Where it is in its life.
    #[schema(value_type = crate::drill::DrillState)]
    pub state: String,
    /// Current or last step (0-based).
    pub step: Option<u32>,
    /// Time to shift and to roll back, errors, max lag and RPO, outcome reason.
    #[schema(value_type = Object)]
    pub report: serde_json::Value,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// When it ended.
    pub finished_at: Option<DateTime<Utc>>,
}

/// `GET /api/v1/drills/{id}`: the drill and its step timeline, oldest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DrillWithTimelineDto {
    /// The drill.
    #[serde(flatten)]
    pub drill: DrillDto,
    /// Every step (`kind`, `at`, `step`, `plan_id`, `weights`, `detail`).
    #[schema(value_type = Vec<Object>)]
    pub timeline: Vec<serde_json::Value>,
}

/// `GET /api/v1/drills`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DrillsPageDto {
    /// Newest first.
    pub drills: Vec<DrillDto>,
}

/// An incident: one failover (or degrade shift, drain, drill) as a timeline.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IncidentDto {
    /// Id.
    pub id: uuid::Uuid,
    /// The region traffic moved away from.
    pub region: String,
    /// When the first milestone happened.
    pub opened_at: DateTime<Utc>,
    /// The plan that moved traffic, once decided.
    pub plan_id: Option<uuid::Uuid>,
    /// Its kind (`failover`, `degrade_shift`, `drain` …).
    pub kind: Option<String>,
    /// Weights before.
    #[schema(value_type = Option<Object>)]
    pub from_weights: Option<serde_json::Value>,
    /// Weights the plan set.
    #[schema(value_type = Option<Object>)]
    pub to_weights: Option<serde_json::Value>,
    /// Every milestone (`step`, `at`, `detail`), in order.
    #[schema(value_type = Vec<Object>)]
    pub timeline: Vec<serde_json::Value>,
    /// When the plan was verified on every provider.
    pub verified_at: Option<DateTime<Utc>>,
    /// Milliseconds from the first milestone to detection, decision, flip and DNS.
    #[schema(value_type = Object)]
    pub figures: serde_json::Value,
    /// The synthetic-failure drill that injected the failure (a rehearsal); null for a real incident.
    pub synthetic_drill: Option<uuid::Uuid>,
}

/// `GET /api/v1/incidents`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IncidentsPageDto {
    /// Newest first.
    pub incidents: Vec<IncidentDto>,
}

/// One point of a lag series.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LagPointDto {
    /// Start of the bucket.
    pub at: DateTime<Utc>,
    /// Largest bytes behind.
    pub bytes: Option<i64>,
    /// Largest seconds behind.
    pub seconds: Option<f64>,
    /// Mean bytes behind.
    pub avg_bytes: Option<f64>,
    /// Mean seconds behind.
    pub avg_seconds: Option<f64>,
    /// Samples in the bucket.
    pub samples: Option<i64>,
}

/// `GET /api/v1/regions/{name}/lag`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LagSeriesDto {
    /// The region.
    pub region: String,
    /// Start of the series.
    pub since: DateTime<Utc>,
    /// Bucket width, seconds.
    pub step: i64,
    /// One point per bucket with samples, oldest first.
    pub points: Vec<LagPointDto>,
    /// The latest sample, when there is one.
    #[schema(value_type = Option<Object>)]
    pub latest: Option<serde_json::Value>,
}

impl From<crate::store::EventKind> for EventKindDto {
    fn from(k: crate::store::EventKind) -> Self {
        use crate::store::EventKind as K;
        match k {
            K::Transition => EventKindDto::Transition,
            K::Plan => EventKindDto::Plan,
            K::Alarm => EventKindDto::Alarm,
            K::Audit => EventKindDto::Audit,
        }
    }
}

impl From<crate::store::Event> for EventDto {
    fn from(e: crate::store::Event) -> Self {
        EventDto {
            id: e.id,
            at: e.at,
            kind: e.kind.into(),
            region: e.region.map(|r| r.as_str().to_string()),
            message: e.message,
            details: e.details,
        }
    }
}

impl From<crate::store::AuditRecord> for AuditEntryDto {
    fn from(a: crate::store::AuditRecord) -> Self {
        AuditEntryDto {
            id: a.id,
            at: a.at,
            actor: a.actor,
            action: a.action,
            target: a.target,
            outcome: a.outcome,
            request_id: a.request_id,
            details: a.details,
        }
    }
}

impl From<crate::store::LagPoint> for LagPointDto {
    fn from(p: crate::store::LagPoint) -> Self {
        LagPointDto {
            at: p.at,
            bytes: p.max_bytes,
            seconds: p.max_seconds,
            avg_bytes: p.avg_bytes,
            avg_seconds: p.avg_seconds,
            samples: p.samples,
        }
    }
}

/// Who the caller is, for `GET /api/v1/whoami`.
#[derive(Debug, Serialize, ToSchema)]
pub struct WhoamiDto {
    /// The token's name; `anonymous` without one (public reads, or no `[auth]` section).
    pub name: String,
    /// What the caller may do.
    pub role: crate::auth::Role,
    /// Whether a token (or stream ticket) identified the caller.
    pub authenticated: bool,
    /// Whether this orchestrator serves reads without a token (`[auth] public_reads`, or no `[auth]`).
    pub public_reads: bool,
}
