//! Drills: planned, recorded failover exercises. PURE.
//!
//! A drill shifts traffic in steps (e.g. 50 % then 100 % of the evacuated
//! region's share) onto a target, holds each step while the engine watches
//! probes and lag, and rolls back to the plan it started from. This module
//! holds the judgement: request validation, step planning, the preflight,
//! the state names and the report; [`phase`] is the live drill's phase
//! machine (phase + facts → next action). The engine (`engine::drill`)
//! executes its actions, the store records them step by step, and
//! [`schedule`] turns `[[schedule.drills]]` into runs.
//!
//! Nothing here reads a clock or does I/O.

pub mod phase;
pub mod schedule;
pub mod synthetic;

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::decide::RegionInput;
use crate::health::Health;
use crate::lag::LagReading;
use crate::plan::{PlanId, Weights};
use crate::policy::Policy;
use crate::region::RegionName;

/// Longest hold per step an operator may ask for.
pub const MAX_HOLD: Duration = Duration::from_secs(6 * 3600);

/// Longest reason, in characters.
pub const MAX_REASON_CHARS: usize = 500;
/// Errors kept verbatim in a report (the count goes on).
pub const MAX_REPORTED_ERRORS: usize = 50;

/// Identifies one drill.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DrillId(pub Uuid);

impl DrillId {
    /// A fresh random id.
    pub fn new() -> Self {
        Self(Uuid::new_v4())
    }
}

impl Default for DrillId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for DrillId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A bad field of a request: the API turns it into a 400 naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    /// The offending field (`steps[2]`, `evacuate` …).
    pub field: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

fn bad(field: impl Into<String>, message: impl Into<String>) -> FieldError {
    FieldError { field: field.into(), message: message.into() }
}

/// A drill request as received, before validation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DrillRequest {
    /// The region to evacuate.
    pub evacuate: Option<String>,
    /// The region to shift to (default: the first eligible in the failover order).
    pub target: Option<String>,
    /// Percent of the evacuated share moved at each step, each given once, in any order (default `[100]`).
    pub steps: Option<Vec<i64>>,
    /// Hold per step in seconds (default 30).
    pub hold_seconds: Option<f64>,
    /// Plan and record only.
    pub dry_run: bool,
    /// Inject a synthetic failure of `evacuate` and let the automation move traffic ([`synthetic`]).
    pub synthetic_failure: bool,
    /// Why.
    pub reason: String,
}

/// A validated drill: what to move, in which steps, how long to hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DrillSpec {
    /// The region to evacuate (None: shift from every other region).
    pub evacuate: Option<RegionName>,
    /// The region to shift to (None: chosen at preflight).
    pub target: Option<RegionName>,
    /// Percent of the share moved at each step, increasing, each 1–100.
    pub steps: Vec<u32>,
    /// Hold per step, in milliseconds (kept as a plain number in the store).
    pub hold_ms: u64,
    /// Plan and record only; touch no provider.
    pub dry_run: bool,
    /// Why.
    pub reason: String,
    /// The `[[schedule.drills]]` entry that started it, if any.
    pub schedule: Option<String>,
    /// The weights of each step, planned at preflight from the baseline.
    #[serde(default)]
    pub planned: Vec<Weights>,
    /// A synthetic-failure drill: the automation moves traffic, not the drill's steps.
    #[serde(default)]
    pub synthetic: bool,
}

impl DrillSpec {
    /// The hold per step.
    pub fn hold(&self) -> Duration {
        Duration::from_millis(self.hold_ms)
    }
}

/// Validates a request against the configured regions.
///
/// # Errors
/// The first bad field, named.
pub fn validate(policy: &Policy, req: &DrillRequest) -> Result<DrillSpec, FieldError> {
    let region = |field: &str, v: &Option<String>| -> Result<Option<RegionName>, FieldError> {
        match v {
            None => Ok(None),
            Some(n) if policy.regions.iter().any(|r| r.name.as_str() == n) => Ok(Some(RegionName::new(n.clone()))),
            Some(n) => Err(bad(
                field,
                format!(
                    "unknown region `{n}` (one of {})",
                    policy.regions.iter().map(|r| r.name.as_str()).collect::<Vec<_>>().join(", ")
                ),
            )),
        }
    };
    let evacuate = region("evacuate", &req.evacuate)?;
    let target = region("target", &req.target)?;
    if evacuate.is_none() && target.is_none() {
        return Err(bad("evacuate", "name the region to evacuate (or a `target` to shift to)"));
    }
    if evacuate.is_some() && evacuate == target {
        return Err(bad("target", "must differ from `evacuate`"));
    }
    if req.synthetic_failure {
        return validate_synthetic(req, evacuate, target);
    }
    let raw_steps = req.steps.clone().unwrap_or_else(|| vec![100]);
    if raw_steps.is_empty() {
        return Err(bad("steps", "give at least one step, e.g. [50, 100]"));
    }
    // Each step is a percentage given once; the drill moves through them in increasing order,
    // whatever order they were written in (the API document states them as a set).
    let mut steps = Vec::with_capacity(raw_steps.len());
    for (i, s) in raw_steps.iter().enumerate() {
        if !(1..=100).contains(s) {
            return Err(bad(format!("steps[{i}]"), format!("{s} is outside 1–100 (percent of the share to move)")));
        }
        if raw_steps[..i].contains(s) {
            return Err(bad(format!("steps[{i}]"), format!("{s} is given twice; give each percentage once")));
        }
        steps.push(*s as u32);
    }
    steps.sort_unstable();
    let hold_ms = hold_ms(req.hold_seconds, Duration::from_secs(30), MAX_HOLD)?;
    Ok(DrillSpec {
        evacuate,
        target,
        steps,
        hold_ms,
        dry_run: req.dry_run,
        reason: reason(req)?,
        schedule: None,
        planned: Vec::new(),
        synthetic: false,
    })
}

/// A synthetic-failure drill names the region whose failure is injected, and nothing the
/// automation decides itself (the target, the steps).
fn validate_synthetic(
    req: &DrillRequest,
    evacuate: Option<RegionName>,
    target: Option<RegionName>,
) -> Result<DrillSpec, FieldError> {
    if evacuate.is_none() {
        return Err(bad("evacuate", "name the region whose failure is injected"));
    }
    if target.is_some() {
        return Err(bad(
            "target",
            "leave it out: in a synthetic-failure drill the automation chooses where traffic goes",
        ));
    }
    if req.steps.is_some() {
        return Err(bad(
            "steps",
            "leave it out: in a synthetic-failure drill the automation moves traffic as it would in a real failure",
        ));
    }
    if req.dry_run {
        return Err(bad(
            "dry_run",
            "a synthetic-failure drill runs the real path; for a plan only, drop `synthetic_failure`",
        ));
    }
    Ok(DrillSpec {
        evacuate,
        target: None,
        steps: vec![100],
        hold_ms: hold_ms(req.hold_seconds, synthetic::DEFAULT_HOLD, synthetic::MAX_HOLD)?,
        dry_run: false,
        reason: reason(req)?,
        schedule: None,
        planned: Vec::new(),
        synthetic: true,
    })
}

/// The hold in milliseconds: `default` when not given, at most `max`.
fn hold_ms(seconds: Option<f64>, default: Duration, max: Duration) -> Result<u64, FieldError> {
    let hold = seconds.unwrap_or(default.as_secs_f64());
    if !hold.is_finite() || hold < 0.0 {
        return Err(bad("hold_seconds", format!("{hold} must be a non-negative number of seconds")));
    }
    if hold > max.as_secs_f64() {
        return Err(bad("hold_seconds", format!("{hold} is over the maximum of {} s", max.as_secs())));
    }
    Ok((hold * 1000.0).round() as u64)
}

/// The reason, trimmed; required, and bounded as sent.
fn reason(req: &DrillRequest) -> Result<String, FieldError> {
    // Counted in characters as sent (as the API document's `maxLength`), then kept trimmed.
    if req.reason.chars().count() > MAX_REASON_CHARS {
        return Err(bad("reason", format!("at most {MAX_REASON_CHARS} characters")));
    }
    let reason = req.reason.trim();
    if reason.is_empty() {
        return Err(bad("reason", "say why (it goes into the audit log and the drill record)"));
    }
    Ok(reason.to_string())
}

/// The target when the request named none: the first region in failover order,
/// other than the evacuated one, that is up, not drained and within its lag limit.
pub fn choose_target(policy: &Policy, regions: &[RegionInput], evacuate: Option<&RegionName>) -> Option<RegionName> {
    policy.failover_order.iter().filter(|r| Some(*r) != evacuate).find_map(|name| {
        let r = regions.iter().find(|r| &r.name == name)?;
        let eligible = r.health == Health::Up && !r.maintenance;
        (eligible && policy.failover_gate(name, r.lag.as_ref()).is_ok()).then(|| name.clone())
    })
}

/// The weights of every step: each step moves its percentage of every source's
/// baseline share onto the target (sources: the evacuated region, or every other region).
pub fn plan_steps(
    baseline: &Weights,
    evacuate: Option<&RegionName>,
    target: &RegionName,
    steps: &[u32],
) -> Vec<Weights> {
    steps
        .iter()
        .map(|pct| {
            let mut w = baseline.clone();
            let sources: Vec<RegionName> = match evacuate {
                Some(e) => vec![e.clone()],
                None => baseline.0.keys().filter(|r| *r != target).cloned().collect(),
            };
            for s in &sources {
                let moved = baseline.get(s) * pct.min(&100) / 100;
                w.shift(s, target, moved);
            }
            w
        })
        .collect()
}

/// What the preflight looks at.
#[derive(Debug, Clone)]
pub struct Preflight<'a> {
    /// Whether this orchestrator leads.
    pub leader: bool,
    /// Another drill or operation holding the lock, described.
    pub busy: Option<String>,
    /// Why traffic is not on its normal, verified plan (a real failover in progress), if so.
    pub not_normal: Option<String>,
    /// The target region, as the decision core sees it (None: no eligible target found).
    pub target: Option<&'a RegionInput>,
    /// The policy: the target's RPO gate (`max_lag_on_failover`).
    pub policy: &'a Policy,
    /// The evacuated region's current weight, when one is evacuated.
    pub evacuate_weight: Option<u32>,
}

/// Every reason to refuse a drill (empty: go).
pub fn preflight(p: &Preflight<'_>) -> Vec<String> {
    let mut why = Vec::new();
    if !p.leader {
        why.push("this orchestrator is not the leader: run the drill on the leader".to_string());
    }
    if let Some(b) = &p.busy {
        why.push(format!("{b} is in progress: wait for it or abort it first"));
    }
    if let Some(n) = &p.not_normal {
        why.push(format!("a real failover is in progress: {n}"));
    }
    match p.target {
        None => why.push("no region is eligible as the drill's target (up, not drained, within its lag limit)".into()),
        Some(t) => {
            if t.health != Health::Up {
                why.push(format!("target {} is {}, not up", t.name, t.health));
            }
            if t.maintenance {
                why.push(format!("target {} is drained for maintenance", t.name));
            }
            if let Err(e) = p.policy.failover_gate(&t.name, t.lag.as_ref()) {
                why.push(format!("target {} is over max_lag_on_failover: {e}", t.name));
            }
        }
    }
    if p.evacuate_weight == Some(0) {
        why.push("the evacuated region serves no traffic: there is nothing to shift".into());
    }
    why
}

/// Where a drill is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DrillState {
    /// A step's plan is being applied and verified.
    Shifting,
    /// A step is verified and held while probes and lag are watched.
    Holding,
    /// Returning to the plan the drill started from.
    RollingBack,
    /// Every step held and the rollback was verified.
    Completed,
    /// Stopped early (by an operator, a degraded target, lag, or a real failure) and rolled back.
    Aborted,
    /// A step or the rollback could not be verified.
    Failed,
    /// The orchestrator restarted mid-drill; the drill was rolled back at start-up.
    Interrupted,
    /// Planned and recorded only; no provider was touched.
    DryRun,
}

impl DrillState {
    /// Stable name for storage.
    pub fn as_str(self) -> &'static str {
        match self {
            DrillState::Shifting => "shifting",
            DrillState::Holding => "holding",
            DrillState::RollingBack => "rolling_back",
            DrillState::Completed => "completed",
            DrillState::Aborted => "aborted",
            DrillState::Failed => "failed",
            DrillState::Interrupted => "interrupted",
            DrillState::DryRun => "dry_run",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<DrillState> {
        [
            DrillState::Shifting,
            DrillState::Holding,
            DrillState::RollingBack,
            DrillState::Completed,
            DrillState::Aborted,
            DrillState::Failed,
            DrillState::Interrupted,
            DrillState::DryRun,
        ]
        .into_iter()
        .find(|d| d.as_str() == s)
    }

    /// Whether the drill is over.
    pub fn is_final(self) -> bool {
        !matches!(self, DrillState::Shifting | DrillState::Holding | DrillState::RollingBack)
    }
}

impl fmt::Display for DrillState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The drill's report, filled in as it runs and stored with it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DrillReport {
    /// Request → the first step verified by read-back on every provider, in ms.
    pub time_to_shift_ms: Option<u64>,
    /// Rollback decided → rollback verified, in ms.
    pub time_to_rollback_ms: Option<u64>,
    /// Steps verified.
    pub steps_verified: u32,
    /// Errors seen during the drill (probe failures, provider failures), the first [`MAX_REPORTED_ERRORS`].
    pub errors: Vec<String>,
    /// All errors seen.
    pub error_count: u64,
    /// Largest replication lag of the target seen during the drill, bytes.
    pub max_lag_bytes: Option<u64>,
    /// Largest replication lag of the target seen during the drill, seconds.
    pub max_lag_seconds: Option<f64>,
    /// The data a real failover at the worst moment would have lost (RPO implied by the max lag).
    pub rpo: Option<String>,
    /// Why it ended as it did.
    pub outcome_reason: Option<String>,
    /// A synthetic-failure drill's measured path (detection, decision, RTO, propagation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synthetic: Option<synthetic::Figures>,
}

impl DrillReport {
    /// Notes an error.
    pub fn note_error(&mut self, msg: String) {
        self.error_count += 1;
        if self.errors.len() < MAX_REPORTED_ERRORS {
            self.errors.push(msg);
        }
    }

    /// Notes a lag reading of the target; keeps the maxima and the RPO they imply.
    pub fn note_lag(&mut self, lag: &LagReading) {
        if let Some(b) = lag.bytes {
            self.max_lag_bytes = Some(self.max_lag_bytes.map_or(b, |m| m.max(b)));
        }
        if let Some(t) = lag.time {
            let s = t.as_secs_f64();
            self.max_lag_seconds = Some(self.max_lag_seconds.map_or(s, |m| m.max(s)));
        }
        let parts: Vec<String> = [
            self.max_lag_seconds.map(|s| format!("≤ {s:.3} s of transactions")),
            self.max_lag_bytes.map(|b| format!("≤ {b} bytes of WAL")),
        ]
        .into_iter()
        .flatten()
        .collect();
        if !parts.is_empty() {
            self.rpo = Some(parts.join(", "));
        }
    }
}

/// Milliseconds between two instants (0 when reversed).
pub fn millis_between(from: DateTime<Utc>, to: DateTime<Utc>) -> u64 {
    to.signed_duration_since(from).num_milliseconds().max(0) as u64
}

/// What a drill timeline entry records; stored and shown as its snake_case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DrillEventKind {
    /// The preflight passed (its findings in the detail).
    Preflight,
    /// A dry run's step, planned and not sent.
    StepPlanned,
    /// A step's plan was sent to the providers.
    StepSent,
    /// Every provider read the step's plan back.
    StepVerified,
    /// A step's hold time ended.
    HoldDone,
    /// Every step held: the rollback plan was sent.
    RollbackSent,
    /// The drill was aborted (by an operator, a watch, or a real failure); the rollback follows.
    Abort,
    /// Every provider read the rollback back.
    RollbackVerified,
    /// The drill ended (its outcome in the detail).
    Finished,
    /// A synthetic failure was injected into every vantage's probes.
    Injected,
    /// The quorum of vantages saw the injected region down.
    Detected,
    /// The synthetic failure was lifted.
    Lifted,
}

impl DrillEventKind {
    /// Every kind, in timeline order.
    pub const ALL: [DrillEventKind; 12] = [
        Self::Preflight,
        Self::Injected,
        Self::Detected,
        Self::StepPlanned,
        Self::StepSent,
        Self::StepVerified,
        Self::HoldDone,
        Self::RollbackSent,
        Self::Abort,
        Self::Lifted,
        Self::RollbackVerified,
        Self::Finished,
    ];

    /// The stored and displayed name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Preflight => "preflight",
            Self::StepPlanned => "step_planned",
            Self::StepSent => "step_sent",
            Self::StepVerified => "step_verified",
            Self::HoldDone => "hold_done",
            Self::RollbackSent => "rollback_sent",
            Self::Abort => "abort",
            Self::RollbackVerified => "rollback_verified",
            Self::Finished => "finished",
            Self::Injected => "injected",
            Self::Detected => "detected",
            Self::Lifted => "lifted",
        }
    }
}

impl std::fmt::Display for DrillEventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One entry of a drill's timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DrillEvent {
    /// Row id.
    pub id: Uuid,
    /// The drill.
    pub drill_id: DrillId,
    /// When.
    pub at: DateTime<Utc>,
    /// What happened.
    pub kind: DrillEventKind,
    /// Step index (0-based), when about a step.
    pub step: Option<u32>,
    /// The plan sent, when one was.
    pub plan_id: Option<PlanId>,
    /// The weights of that step or plan.
    pub weights: Option<Weights>,
    /// A sentence.
    pub detail: String,
}

/// A drill as stored: the row the store keeps and the API shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DrillRecord {
    /// Id.
    pub id: DrillId,
    /// When requested.
    pub requested_at: DateTime<Utc>,
    /// Who (token name, or `schedule:<name>`).
    pub actor: String,
    /// The validated request (with the target chosen).
    pub spec: DrillSpec,
    /// The weights before the drill.
    pub baseline: Weights,
    /// State.
    pub state: DrillState,
    /// Current or last step (0-based).
    pub step: Option<u32>,
    /// The report.
    pub report: DrillReport,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// When it ended.
    pub finished_at: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests;
