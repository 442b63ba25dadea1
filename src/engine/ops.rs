//! Operator control inside the engine: drills, manual failover, switchover, failback, maintenance.
//!
//! A live drill and an operator hold are *overrides* of the decision core: while
//! one is in force, [`Engine::guard_operator_override`] suppresses every change
//! `decide` wants except moves toward safety (a region down, degraded or drained).
//! A safety move aborts the drill (the safety plan is its rollback) or releases
//! the hold. Every operator plan goes through [`Engine::operator_plan`], which
//! still lets `decide` apply safety moves on top of the requested weights.
//!
//! The drill lifecycle is driven from `step()` (every tick): send a step's plan,
//! wait for every provider's read-back, hold while watching the target's health
//! and lag, then the next step or the rollback. Each transition is written to the
//! store (drill row and timeline) as it happens, so a restart finds an
//! unfinished drill and rolls it back (see `Resume::interrupted_drill`).

use crate::notify::NotifyKind;
use chrono::{DateTime, Utc};
use serde_json::json;
use tokio::sync::oneshot;
use tracing::{info, warn};
use uuid::Uuid;

use super::{CommandError, CommandOutcome, Engine, RECORD_WAIT};
use crate::decide::{self, Decision, normal_weights};
use crate::drill::{self, DrillEvent, DrillId, DrillRecord, DrillSpec, DrillState, Preflight, millis_between};
use crate::health::Health;
use crate::observation::{Observation, Outcome};
use crate::plan::{PlanId, PlanKind, TrafficPlan, Weights};
use crate::region::RegionName;
use crate::replication::LagSample;
use crate::status::DrillStatus;
use crate::operation::{HoldRecord, OperationKind, OperationRecord, OperationState};
use crate::store::records::Write;

/// Longest wait for a drill step's plan to be verified by every provider.
const STEP_VERIFY_TIMEOUT: chrono::Duration = chrono::Duration::seconds(30);
/// Longest wait for a drill's rollback to be verified before it is reported failed.
const ROLLBACK_VERIFY_TIMEOUT: chrono::Duration = chrono::Duration::seconds(60);
/// Replay lag (seconds) counted as caught up when the bytes figure is unknown.
const SWITCHOVER_MAX_SECONDS: f64 = 0.5;

/// Where a live drill is.
#[derive(Debug, Clone)]
pub(crate) enum Phase {
    Shifting {
        step: u32,
        plan: PlanId,
        since: DateTime<Utc>,
    },
    Holding {
        step: u32,
        until: DateTime<Utc>,
    },
    /// `plan` is None until the plan carrying the rollback is sent (start-up, or a safety move).
    RollingBack {
        plan: Option<PlanId>,
        since: DateTime<Utc>,
        outcome: DrillState,
        why: String,
    },
}

/// The live drill the engine drives.
#[derive(Debug, Clone)]
pub(crate) struct ActiveDrill {
    pub(crate) record: DrillRecord,
    phase: Phase,
}

impl ActiveDrill {
    /// A drill found unfinished at start-up: rolled back by the first plan.
    pub(crate) fn interrupted(mut record: DrillRecord, now: DateTime<Utc>) -> Self {
        let why = format!(
            "the orchestrator restarted while the drill was {} (step {}); rolled back at start-up",
            record.state,
            record.step.map(|s| (s + 1).to_string()).unwrap_or_else(|| "-".into())
        );
        record.state = DrillState::RollingBack;
        Self { record, phase: Phase::RollingBack { plan: None, since: now, outcome: DrillState::Interrupted, why } }
    }

    /// The dashboard's view.
    pub(crate) fn status(&self) -> DrillStatus {
        DrillStatus {
            id: self.record.id,
            state: self.record.state,
            step: self.record.step,
            steps: self.record.spec.steps.len(),
            step_percents: self.record.spec.steps.clone(),
            evacuate: self.record.spec.evacuate.clone(),
            target: self.record.spec.target.clone(),
            actor: self.record.actor.clone(),
            requested_at: self.record.requested_at,
            hold_until: match self.phase {
                Phase::Holding { until, .. } => Some(until),
                _ => None,
            },
            error_count: self.record.report.error_count,
        }
    }

    fn rolling_back(&self) -> bool {
        matches!(self.phase, Phase::RollingBack { .. })
    }
}

/// A switchover waiting for its target's lag to drain.
#[derive(Debug)]
pub(crate) struct PendingSwitchover {
    op: OperationRecord,
    target: RegionName,
    deadline: DateTime<Utc>,
    max_lag_bytes: u64,
    reply: oneshot::Sender<Result<CommandOutcome, CommandError>>,
}

/// Moves toward safety: a region down or degraded loses traffic, a drained one is emptied.
fn is_safety(kind: PlanKind) -> bool {
    matches!(kind, PlanKind::Failover | PlanKind::DegradeShift | PlanKind::Maintenance)
}

impl Engine {
    /// Keeps a drill's or an operator hold's weights against `decide`, except for moves toward safety.
    pub(super) fn guard_operator_override(&mut self, d: &mut Decision, now: DateTime<Utc>) {
        let holder = match (&self.drill, &self.hold) {
            (Some(dr), _) => format!("drill {}", dr.record.id),
            (None, Some(h)) => format!("the operator hold ({})", h.reason),
            (None, None) => return,
        };
        if !d.changed {
            return;
        }
        if is_safety(d.kind) {
            let why = d.summary();
            if let Some(dr) = &mut self.drill {
                warn!(drill = %dr.record.id, why = %why, "a real failure during the drill: aborting it, the safety move wins");
                let detail = format!("aborted by a real failure: {why}; the safety plan is the rollback");
                let (outcome, why) = match &dr.phase {
                    Phase::RollingBack { outcome, why, .. } => (*outcome, why.clone()),
                    _ => (DrillState::Aborted, detail.clone()),
                };
                dr.phase = Phase::RollingBack { plan: None, since: now, outcome, why };
                dr.record.state = DrillState::RollingBack;
                self.drill_event(now, "abort", None, None, detail);
                self.persist_drill(now);
            }
            if self.hold.take().is_some() {
                warn!(why = %why, "a real failure: releasing the operator hold, the safety move wins");
                self.store.send(Write::Hold(None));
            }
        } else {
            d.reasons.push(format!("{holder} holds traffic: not applying `{}` until it ends", d.kind.as_str()));
            d.weights = self.memory.current.clone();
            d.changed = false;
            d.memory = self.memory.clone();
        }
    }

    /// After a plan was sent by `step()`: it carries a pending drill rollback.
    pub(super) fn adopt_rollback_plan(&mut self, plan: PlanId, now: DateTime<Utc>) {
        if let Some(dr) = &mut self.drill {
            if let Phase::RollingBack { plan: p @ None, since, .. } = &mut dr.phase {
                *p = Some(plan);
                *since = now;
            }
        }
    }

    /// Sends `weights` as an operator plan; `decide` may still move toward safety on top of them.
    pub(super) async fn operator_plan(
        &mut self,
        now: DateTime<Utc>,
        weights: Weights,
        kind: PlanKind,
        reason: String,
    ) -> TrafficPlan {
        self.memory.current = weights.clone();
        self.memory.last_change = Some(now);
        let inputs = self.inputs();
        let d = decide::decide(&self.config.policy, &inputs, &self.memory, now);
        let weights = if d.changed && is_safety(d.kind) {
            info!(why = %d.summary(), "a move toward safety on top of the operator's plan");
            self.memory = d.memory.clone();
            d.weights.clone()
        } else {
            weights
        };
        self.memory.current = weights.clone();
        let plan = TrafficPlan {
            id: PlanId::new(),
            epoch: self.leadership.epoch,
            weights,
            kind,
            reason,
            reasons: d.reasons,
            inputs: json!({ "regions": inputs.regions, "policy_quorum": self.config.policy.quorum, "lag_overrides": inputs.lag_overrides }),
            decided_at: now,
        };
        self.send_plan(plan.clone()).await;
        self.synced = true;
        self.dirty = true;
        plan
    }

    /// Who holds the operation lock, described.
    fn busy(&self) -> Option<String> {
        if let Some(d) = &self.drill {
            return Some(format!(
                "drill {} ({}, step {} of {})",
                d.record.id,
                d.record.state,
                d.record.step.map(|s| s + 1).unwrap_or(0),
                d.record.spec.steps.len()
            ));
        }
        self.switchover.as_ref().map(|s| format!("switchover to {} (waiting for its lag to drain)", s.target))
    }

    /// Why traffic is not on its normal, verified plan, if it is not.
    fn not_normal(&self) -> Option<String> {
        let normal = normal_weights(&self.config.policy);
        if let Some(r) = self.regions.iter().find(|(_, r)| r.health == Health::Down) {
            return Some(format!("region {} is down", r.0));
        }
        if self.memory.current != normal {
            return Some(format!("traffic is at {}, not the normal {normal}", self.memory.current));
        }
        match &self.plan {
            None => Some("no plan is applied yet (starting)".into()),
            Some(p) if p.verified_at.is_none() => {
                Some(format!("plan {} is not yet verified by every provider", p.plan.id))
            }
            Some(_) => None,
        }
    }

    fn lock_check(&self) -> Result<(), CommandError> {
        if !self.leadership.leader {
            return Err(CommandError::NotLeader);
        }
        match self.busy() {
            Some(b) => {
                Err(CommandError::Refused(vec![format!("{b} holds the operation lock: wait for it or abort it")]))
            }
            None => Ok(()),
        }
    }

    fn known_region(&self, r: &RegionName) -> Result<(), CommandError> {
        if self.config.region(r).is_some() { Ok(()) } else { Err(CommandError::UnknownRegion(r.to_string())) }
    }

    fn operation(
        &self,
        now: DateTime<Utc>,
        kind: OperationKind,
        target: Option<&RegionName>,
        reason: &str,
        actor: &str,
    ) -> OperationRecord {
        OperationRecord {
            id: Uuid::new_v4(),
            requested_at: now,
            actor: actor.to_string(),
            kind,
            target: target.map(|t| t.to_string()),
            reason: reason.to_string(),
            state: OperationState::Waiting,
            plan_id: None,
            details: json!({}),
            updated_at: now,
        }
    }

    /// Records an operation's plan, and tracks it until verified.
    fn operation_applied(&mut self, mut op: OperationRecord, plan: &TrafficPlan, now: DateTime<Utc>) -> CommandOutcome {
        op.state = OperationState::Applied;
        op.plan_id = Some(plan.id);
        op.updated_at = now;
        self.store.send(Write::Operation(Box::new(op.clone())));
        let id = op.id;
        self.open_ops.push(op);
        CommandOutcome { plan: Some(plan.clone()), operation_id: id, reasons: plan.reasons.clone() }
    }

    /// A plan was verified on every provider: operations and drills waiting for it move on.
    pub(super) fn on_plan_verified(&mut self, plan: PlanId, at: DateTime<Utc>) {
        let (done, open): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.open_ops).into_iter().partition(|o| o.plan_id == Some(plan));
        self.open_ops = open;
        for mut op in done {
            op.state = OperationState::Verified;
            op.updated_at = at;
            self.store.send(Write::Operation(Box::new(op)));
        }
        self.dirty = true;
    }

    pub(super) async fn maintenance_command(
        &mut self,
        region: RegionName,
        drain: bool,
        reason: String,
        actor: String,
        now: DateTime<Utc>,
    ) -> Result<CommandOutcome, CommandError> {
        self.known_region(&region)?;
        self.lock_check()?;
        let op = self.operation(now, OperationKind::Maintenance, Some(&region), &reason, &actor);
        if drain {
            self.maintenance.insert(region.clone(), reason.clone());
            self.store.send(Write::Maintenance { region: region.to_string(), drain: Some((now, reason)) });
        } else {
            self.maintenance.remove(&region);
            self.store.send(Write::Maintenance { region: region.to_string(), drain: None });
        }
        let plan = self.step(now).await;
        let reasons = self.decision.as_ref().map(|(_, d)| d.reasons.clone()).unwrap_or_default();
        match plan {
            Some(p) => Ok(self.operation_applied(op, &p, now)),
            None => {
                let mut op = op;
                op.state = OperationState::Verified;
                op.details = json!({ "drain": drain, "note": "no traffic change was needed" });
                self.store.send(Write::Operation(Box::new(op.clone())));
                Ok(CommandOutcome { plan: None, operation_id: op.id, reasons })
            }
        }
    }

    pub(super) async fn failover_command(
        &mut self,
        target: RegionName,
        force: Option<String>,
        reason: String,
        actor: String,
        now: DateTime<Utc>,
    ) -> Result<CommandOutcome, CommandError> {
        self.known_region(&target)?;
        self.lock_check()?;
        let lag_override = self.check_target(&target, force.as_deref())?;
        let op = self.operation(now, OperationKind::Failover, Some(&target), &reason, &actor);
        Ok(self.move_all_to(op, target, lag_override, now).await)
    }

    /// Whether `target` may take all traffic: up, not drained, within its lag limit (or forced).
    fn check_target(
        &self,
        target: &RegionName,
        force: Option<&str>,
    ) -> Result<Option<(RegionName, String)>, CommandError> {
        let health = self.regions.get(target).map(|r| r.health).unwrap_or(Health::Unknown);
        let mut why = Vec::new();
        if health != Health::Up {
            why.push(format!("target {target} is {health}, not up"));
        }
        if self.maintenance.contains_key(target) {
            why.push(format!("target {target} is drained for maintenance"));
        }
        let limit = self.config.policy.region(target).map(|r| r.max_lag).unwrap_or_default();
        let lag = self.lag.get(target).map(LagSample::reading);
        let mut lag_override = None;
        if let Err(e) = limit.admits(lag.as_ref()) {
            match force {
                Some(f) => lag_override = Some((target.clone(), f.to_string())),
                None => why.push(format!(
                    "target {target} is over max_lag_on_failover ({e}): send `force` with a reason to accept losing that data"
                )),
            }
        }
        if why.is_empty() { Ok(lag_override) } else { Err(CommandError::Refused(why)) }
    }

    async fn move_all_to(
        &mut self,
        mut op: OperationRecord,
        target: RegionName,
        lag_override: Option<(RegionName, String)>,
        now: DateTime<Utc>,
    ) -> CommandOutcome {
        let mut weights = self.memory.current.clone();
        for (r, _) in self.memory.current.iter() {
            weights.set(r, if *r == target { 100 } else { 0 });
        }
        if let Some((r, why)) = &lag_override {
            op.details = json!({ "forced_over_lag_limit": r, "force_reason": why });
        }
        let hold = HoldRecord {
            operation_id: op.id,
            since: now,
            weights: weights.clone(),
            reason: format!("{} to {target} by {}: {}", op.kind, op.actor, op.reason),
            lag_override,
        };
        self.hold = Some(hold.clone());
        self.store.send(Write::Hold(Some(Box::new(hold))));
        let reason = format!("manual {} to {target} by {}: {}", op.kind, op.actor, op.reason);
        let plan = self.operator_plan(now, weights, PlanKind::Manual, reason).await;
        if let Some(h) = &mut self.hold {
            h.weights = plan.weights.clone();
        }
        self.operation_applied(op, &plan, now)
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) async fn switchover_command(
        &mut self,
        target: RegionName,
        timeout: std::time::Duration,
        max_lag_bytes: u64,
        reason: String,
        actor: String,
        reply: oneshot::Sender<Result<CommandOutcome, CommandError>>,
        now: DateTime<Utc>,
    ) {
        let checked = self.known_region(&target).and_then(|()| self.lock_check()).and_then(|()| {
            let health = self.regions.get(&target).map(|r| r.health).unwrap_or(Health::Unknown);
            if health == Health::Up && !self.maintenance.contains_key(&target) {
                Ok(())
            } else {
                Err(CommandError::Refused(vec![format!("target {target} is {health} or drained, not up")]))
            }
        });
        if let Err(e) = checked {
            let _ = reply.send(Err(e));
            return;
        }
        let op = self.operation(now, OperationKind::Switchover, Some(&target), &reason, &actor);
        self.store.send(Write::Operation(Box::new(op.clone())));
        let deadline = now + chrono::Duration::from_std(timeout).unwrap_or(chrono::Duration::seconds(10));
        info!(target = %target, "switchover: waiting for the target's lag to drain");
        self.switchover = Some(PendingSwitchover { op, target, deadline, max_lag_bytes, reply });
        self.drive_switchover(now).await;
    }

    /// Whether the target's lag is ~0; None when it cannot be known yet.
    fn caught_up(&self, target: &RegionName, max_bytes: u64) -> Result<String, String> {
        let has_db = self.config.region(target).is_some_and(|r| r.postgres.is_some());
        if !has_db {
            return Ok(format!("{target} has no database: nothing to wait for"));
        }
        match self.lag.get(target) {
            None => Err(format!("no lag sample from {target} yet")),
            Some(s) => match (s.bytes, s.seconds) {
                (Some(b), _) if b <= max_bytes => Ok(format!("{target} is {b} bytes behind")),
                (None, Some(t)) if t <= SWITCHOVER_MAX_SECONDS => Ok(format!("{target} is {t:.3} s behind")),
                (b, t) => Err(format!("{target} is {} bytes / {} s behind", fmt_opt(b), fmt_opt(t))),
            },
        }
    }

    async fn drive_switchover(&mut self, now: DateTime<Utc>) {
        let Some(sw) = &self.switchover else { return };
        let health = self.regions.get(&sw.target).map(|r| r.health).unwrap_or(Health::Unknown);
        let ready = self.caught_up(&sw.target, sw.max_lag_bytes);
        let verdict = if health != Health::Up {
            Some(Err((OperationState::Refused, format!("target {} became {health} while waiting", sw.target))))
        } else if let Ok(why) = &ready {
            Some(Ok(why.clone()))
        } else if now >= sw.deadline {
            Some(Err((
                OperationState::TimedOut,
                format!(
                    "the lag of {} did not reach ~0 before the timeout ({})",
                    sw.target,
                    ready.err().unwrap_or_default()
                ),
            )))
        } else {
            None
        };
        let Some(verdict) = verdict else { return };
        let Some(sw) = self.switchover.take() else { return };
        match verdict {
            Ok(why) => {
                info!(target = %sw.target, why = %why, "switchover: target caught up, moving traffic");
                let mut op = sw.op;
                op.details = json!({ "caught_up": why });
                let out = self.move_all_to(op, sw.target, None, now).await;
                let _ = sw.reply.send(Ok(out));
            }
            Err((state, why)) => {
                warn!(target = %sw.target, why = %why, "switchover abandoned");
                let mut op = sw.op;
                op.state = state;
                op.details = json!({ "why": why });
                op.updated_at = now;
                self.store.send(Write::Operation(Box::new(op)));
                let _ = sw.reply.send(Err(CommandError::Refused(vec![why])));
            }
        }
    }

    pub(super) async fn failback_command(
        &mut self,
        reason: String,
        actor: String,
        now: DateTime<Utc>,
    ) -> Result<CommandOutcome, CommandError> {
        self.lock_check()?;
        let op = self.operation(now, OperationKind::Failback, None, &reason, &actor);
        if self.hold.take().is_some() {
            self.store.send(Write::Hold(None));
        }
        self.memory.evacuated.clear();
        let normal = normal_weights(&self.config.policy);
        let plan =
            self.operator_plan(now, normal, PlanKind::Failback, format!("manual failback by {actor}: {reason}")).await;
        Ok(self.operation_applied(op, &plan, now))
    }

    pub(super) async fn start_drill(
        &mut self,
        mut spec: DrillSpec,
        actor: String,
        now: DateTime<Utc>,
    ) -> Result<DrillRecord, CommandError> {
        let inputs = self.inputs();
        let policy = &self.config.policy;
        let target =
            spec.target.clone().or_else(|| drill::choose_target(policy, &inputs.regions, spec.evacuate.as_ref()));
        let target_input = target.as_ref().and_then(|t| inputs.regions.iter().find(|r| &r.name == t));
        let baseline = self.memory.current.clone();
        let why = drill::preflight(&Preflight {
            leader: self.leadership.leader,
            busy: self.busy(),
            not_normal: self.not_normal(),
            target: target_input,
            target_limit: target.as_ref().and_then(|t| policy.region(t)).map(|r| r.max_lag).unwrap_or_default(),
            evacuate_weight: spec.evacuate.as_ref().map(|e| baseline.get(e)),
        });
        let Some(target) = target.filter(|_| why.is_empty()) else {
            return Err(CommandError::Refused(why));
        };
        spec.planned = drill::plan_steps(&baseline, spec.evacuate.as_ref(), &target, &spec.steps);
        spec.target = Some(target.clone());
        let dry_run = spec.dry_run;
        let mut record = DrillRecord {
            id: DrillId::new(),
            requested_at: now,
            actor,
            spec,
            baseline,
            state: if dry_run { DrillState::DryRun } else { DrillState::Shifting },
            step: None,
            report: Default::default(),
            updated_at: now,
            finished_at: None,
        };
        let lag = self.lag.get(&target).map(|s| format!(", lag {}", fmt_lag(s))).unwrap_or_default();
        let preflight = format!("preflight passed: target {target} is up{lag}; baseline {}", record.baseline);
        // Recorded before anything moves.
        let ack = self.store.send_acked(Write::Drill(Box::new(record.clone())));
        let _ = tokio::time::timeout(RECORD_WAIT, ack).await;
        info!(drill = %record.id, target = %target, dry_run, actor = %record.actor, "drill started");
        if dry_run {
            self.store.send(Write::DrillEvent(Box::new(event(
                record.id,
                now,
                "preflight",
                None,
                None,
                None,
                preflight,
            ))));
            for (i, w) in record.spec.planned.iter().enumerate() {
                let pct = record.spec.steps[i];
                self.store.send(Write::DrillEvent(Box::new(event(
                    record.id,
                    now,
                    "step_planned",
                    Some(i as u32),
                    Some(PlanId::new()),
                    Some(w.clone()),
                    format!("dry run: step {} would move {pct}% and apply {w}; no provider touched", i + 1),
                ))));
            }
            record.step = Some(record.spec.steps.len().saturating_sub(1) as u32);
            record.report.outcome_reason =
                Some(format!("dry run: {} step(s) planned and recorded, no provider touched", record.spec.steps.len()));
            record.finished_at = Some(now);
            self.store.send(Write::Drill(Box::new(record.clone())));
            return Ok(record);
        }
        self.drill = Some(ActiveDrill {
            record,
            phase: Phase::Holding { step: 0, until: now }, // replaced by the first step below
        });
        self.drill_event(now, "preflight", None, None, preflight);
        self.send_drill_step(0, now).await;
        self.drill
            .as_ref()
            .map(|d| d.record.clone())
            .ok_or_else(|| CommandError::NoSuchDrill("drill ended at once".into()))
    }

    pub(super) async fn abort_drill_command(
        &mut self,
        id: DrillId,
        actor: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<DrillRecord, CommandError> {
        let Some(d) = self.drill.as_ref().filter(|d| d.record.id == id) else {
            return Err(CommandError::NoSuchDrill(format!("drill {id} is not running (finished, or never started)")));
        };
        if !d.rolling_back() {
            self.rollback_drill(now, DrillState::Aborted, format!("aborted by {actor}: {reason}")).await;
        }
        self.drill.as_ref().map(|d| d.record.clone()).ok_or_else(|| CommandError::NoSuchDrill(id.to_string()))
    }

    async fn send_drill_step(&mut self, step: u32, now: DateTime<Utc>) {
        let Some(d) = &self.drill else { return };
        let (id, n) = (d.record.id, d.record.spec.steps.len());
        let Some(weights) = d.record.spec.planned.get(step as usize).cloned() else { return };
        let pct = d.record.spec.steps[step as usize];
        let from = d.record.spec.evacuate.as_ref().map(|e| e.to_string()).unwrap_or_else(|| "the other regions".into());
        let to = d.record.spec.target.as_ref().map(|t| t.to_string()).unwrap_or_default();
        let reason = format!("drill {id}: step {}/{n}: {pct}% of {from}'s share to {to}", step + 1);
        let plan = self.operator_plan(now, weights, PlanKind::Drill, reason.clone()).await;
        if let Some(d) = &mut self.drill {
            d.phase = Phase::Shifting { step, plan: plan.id, since: now };
            d.record.state = DrillState::Shifting;
            d.record.step = Some(step);
        }
        self.drill_event(now, "step_sent", Some(step), Some((plan.id, plan.weights.clone())), reason);
        self.persist_drill(now);
    }

    async fn rollback_drill(&mut self, now: DateTime<Utc>, outcome: DrillState, why: String) {
        let Some(d) = &self.drill else { return };
        let baseline = d.record.baseline.clone();
        let id = d.record.id;
        info!(drill = %id, outcome = %outcome, why = %why, "drill rolling back");
        let plan =
            self.operator_plan(now, baseline, PlanKind::Drill, format!("drill {id}: rolling back ({why})")).await;
        if let Some(d) = &mut self.drill {
            d.phase = Phase::RollingBack { plan: Some(plan.id), since: now, outcome, why: why.clone() };
            d.record.state = DrillState::RollingBack;
        }
        let kind = if outcome == DrillState::Completed { "rollback_sent" } else { "abort" };
        self.drill_event(now, kind, None, Some((plan.id, plan.weights.clone())), why);
        self.persist_drill(now);
    }

    fn finish_drill(&mut self, now: DateTime<Utc>, outcome: DrillState, why: String) {
        let Some(mut d) = self.drill.take() else { return };
        d.record.state = outcome;
        d.record.finished_at = Some(now);
        d.record.updated_at = now;
        d.record.report.outcome_reason = Some(why.clone());
        info!(drill = %d.record.id, outcome = %outcome, why = %why, report = ?d.record.report, "drill finished");
        self.notify(
            NotifyKind::Drill,
            format!("drill:{}:finished", d.record.id),
            format!("drill {} finished: {outcome}: {why}", d.record.id),
            now,
            serde_json::json!({ "drill_id": d.record.id, "outcome": outcome.to_string(), "reason": why }),
        );
        self.store.send(Write::DrillEvent(Box::new(event(
            d.record.id,
            now,
            "finished",
            None,
            None,
            None,
            format!("{outcome}: {why}"),
        ))));
        self.store.send(Write::Drill(Box::new(d.record)));
        self.dirty = true;
    }

    /// Why the drill must stop now (target degraded, lag over the limit), if it must.
    fn drill_watch(&self) -> Option<String> {
        let d = self.drill.as_ref()?;
        let target = d.record.spec.target.as_ref()?;
        let health = self.regions.get(target).map(|r| r.health).unwrap_or(Health::Unknown);
        if health != Health::Up {
            return Some(format!("target {target} became {health}"));
        }
        let limit = self.config.policy.region(target).map(|r| r.max_lag).unwrap_or_default();
        let lag = self.lag.get(target).map(LagSample::reading);
        limit.admits(lag.as_ref()).err().map(|e| format!("target {target} crossed max_lag_on_failover: {e}"))
    }

    /// Advances the drill and a waiting switchover; called from `step()` on the leader.
    pub(super) async fn drive_operations(&mut self, now: DateTime<Utc>) {
        self.drive_switchover(now).await;
        let Some(d) = &self.drill else { return };
        let current = self.plan.as_ref().map(|p| (p.plan.id, p.verified_at));
        let hold = chrono::Duration::from_std(d.record.spec.hold()).unwrap_or(chrono::Duration::zero());
        let steps = d.record.spec.steps.len() as u32;
        let requested_at = d.record.requested_at;
        match d.phase.clone() {
            Phase::Shifting { step, plan, since } => {
                if let Some(why) = self.drill_watch() {
                    return self.rollback_drill(now, DrillState::Aborted, why).await;
                }
                match current {
                    Some((id, Some(at))) if id == plan => {
                        if let Some(d) = &mut self.drill {
                            d.record.report.steps_verified += 1;
                            if step == 0 {
                                d.record.report.time_to_shift_ms = Some(millis_between(requested_at, at));
                            }
                            d.phase = Phase::Holding { step, until: now + hold };
                            d.record.state = DrillState::Holding;
                        }
                        let detail = format!("step {} verified by read-back on every provider; holding", step + 1);
                        self.drill_event(at, "step_verified", Some(step), None, detail);
                        self.persist_drill(now);
                    }
                    Some((id, _)) if id != plan => {
                        self.rollback_drill(
                            now,
                            DrillState::Failed,
                            format!("step {}'s plan was superseded", step + 1),
                        )
                        .await;
                    }
                    _ if now - since > STEP_VERIFY_TIMEOUT => {
                        let why = format!("step {} was not verified by every provider within 30 s", step + 1);
                        self.rollback_drill(now, DrillState::Failed, why).await;
                    }
                    _ => {}
                }
            }
            Phase::Holding { step, until } => {
                if let Some(why) = self.drill_watch() {
                    return self.rollback_drill(now, DrillState::Aborted, why).await;
                }
                if now >= until {
                    self.drill_event(now, "hold_done", Some(step), None, format!("step {} held", step + 1));
                    if step + 1 < steps {
                        self.send_drill_step(step + 1, now).await;
                    } else {
                        self.rollback_drill(now, DrillState::Completed, "every step held".into()).await;
                    }
                }
            }
            Phase::RollingBack { plan: Some(plan), since, outcome, why } => match current {
                Some((id, Some(at))) if id == plan => {
                    if let Some(d) = &mut self.drill {
                        d.record.report.time_to_rollback_ms = Some(millis_between(since, at));
                    }
                    self.drill_event(at, "rollback_verified", None, None, "rollback verified by read-back".into());
                    self.finish_drill(now, outcome, why);
                }
                Some((id, _)) if id != plan => {
                    // A newer plan (a safety move) carries the rollback now.
                    if let Some(d) = &mut self.drill {
                        d.phase = Phase::RollingBack { plan: Some(id), since, outcome, why };
                    }
                }
                _ if now - since > ROLLBACK_VERIFY_TIMEOUT => {
                    let why = format!("{why}; the rollback was not verified within 60 s (the applier keeps retrying)");
                    self.finish_drill(now, DrillState::Failed, why);
                }
                _ => {}
            },
            Phase::RollingBack { plan: None, .. } => {}
        }
    }

    /// Counts a failed or degraded probe as an error seen during the drill.
    pub(super) fn note_drill_observation(&mut self, obs: &Observation) {
        if let Some(d) = &mut self.drill {
            if obs.outcome != Outcome::Ok {
                let what = obs.error.clone().unwrap_or_else(|| format!("{:?}", obs.outcome).to_lowercase());
                d.record.report.note_error(format!("{} {}: {what}", obs.at.format("%H:%M:%S%.3f"), obs.check));
            }
        }
    }

    /// Keeps the worst lag of the drill's target.
    pub(super) fn note_drill_lag(&mut self, sample: &LagSample) {
        if let Some(d) = &mut self.drill {
            if d.record.spec.target.as_ref() == Some(&sample.region) {
                d.record.report.note_lag(&sample.reading());
            }
        }
    }

    fn drill_event(
        &mut self,
        at: DateTime<Utc>,
        kind: &str,
        step: Option<u32>,
        plan: Option<(PlanId, Weights)>,
        detail: String,
    ) {
        let Some(d) = &self.drill else { return };
        let id = d.record.id;
        let (plan_id, weights) = plan.map_or((None, None), |(p, w)| (Some(p), Some(w)));
        self.notify(
            NotifyKind::Drill,
            format!("drill:{id}:{kind}:{}", step.map(|s| s.to_string()).unwrap_or_default()),
            format!("drill {id}: {kind}: {detail}"),
            at,
            serde_json::json!({ "drill_id": id, "event": kind, "step": step, "weights": weights }),
        );
        self.store.send(Write::DrillEvent(Box::new(event(id, at, kind, step, plan_id, weights, detail))));
    }

    fn persist_drill(&mut self, now: DateTime<Utc>) {
        if let Some(d) = &mut self.drill {
            d.record.updated_at = now;
            self.store.send(Write::Drill(Box::new(d.record.clone())));
        }
        self.dirty = true;
    }
}

fn event(
    drill_id: DrillId,
    at: DateTime<Utc>,
    kind: &str,
    step: Option<u32>,
    plan_id: Option<PlanId>,
    weights: Option<Weights>,
    detail: String,
) -> DrillEvent {
    DrillEvent { id: Uuid::new_v4(), drill_id, at, kind: kind.into(), step, plan_id, weights, detail }
}

fn fmt_opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map(|x| x.to_string()).unwrap_or_else(|| "?".into())
}

fn fmt_lag(s: &LagSample) -> String {
    format!("{} bytes / {} s", fmt_opt(s.bytes), fmt_opt(s.seconds.map(|x| format!("{x:.3}"))))
}
