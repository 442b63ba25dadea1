//! Operator control: manual failover, failback, maintenance, and the override rule.
//!
//! A live drill and an operator hold are *overrides* of the decision core: while
//! one is in force, [`Engine::guard_operator_override`] suppresses every change
//! `decide` wants except moves toward safety (a region down, degraded or drained).
//! A safety move aborts the drill (the safety plan is its rollback) or releases
//! the hold. Every operator plan goes through [`Engine::operator_plan`], which
//! still lets `decide` apply safety moves on top of the requested weights. Each
//! command is an [`OperationRecord`] tracked until its plan is verified; one
//! operation (or drill) at a time holds the lock.

use chrono::{DateTime, Utc};
use serde_json::json;
use tracing::{info, warn};
use uuid::Uuid;

use super::{CommandError, CommandOutcome, Engine};
use crate::decide::{self, Decision, normal_weights};
use crate::health::Health;
use crate::lag::LagSample;
use crate::operation::{HoldRecord, OperationKind, OperationRecord, OperationState};
use crate::plan::{PlanId, PlanKind, TrafficPlan, Weights};
use crate::region::RegionName;
use crate::store::records::Write;

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
            self.abort_drill_for_safety(&why, now);
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

    /// Advances a waiting switchover and the live drill; called from `step()` on the leader.
    pub(super) async fn drive_operations(&mut self, now: DateTime<Utc>) {
        self.drive_switchover(now).await;
        self.drive_drill(now).await;
        self.drive_synthetic(now).await;
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
    pub(super) fn busy(&self) -> Option<String> {
        if let Some(s) = &self.synthetic {
            return Some(format!("synthetic-failure drill {} ({})", s.record.id, s.record.state));
        }
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
    pub(super) fn not_normal(&self) -> Option<String> {
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

    /// The refusal a follower answers operator commands with: who leads, and at which URL.
    pub(super) fn not_leader(&self) -> CommandError {
        CommandError::NotLeader {
            leader: self.leadership.holder.as_ref().map(|h| h.to_string()),
            api: self.leadership.leader_api.clone(),
        }
    }

    /// Refuses a command on a follower, or while a drill or switchover holds the lock.
    pub(super) fn lock_check(&self) -> Result<(), CommandError> {
        if !self.leadership.leader {
            return Err(self.not_leader());
        }
        match self.busy() {
            Some(b) => {
                Err(CommandError::Refused(vec![format!("{b} holds the operation lock: wait for it or abort it")]))
            }
            None => Ok(()),
        }
    }

    /// Refuses a region that is not configured.
    pub(super) fn known_region(&self, r: &RegionName) -> Result<(), CommandError> {
        if self.config.region(r).is_some() { Ok(()) } else { Err(CommandError::UnknownRegion(r.to_string())) }
    }

    /// A new operation record, `waiting`.
    pub(super) fn operation(
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
    pub(super) fn operation_applied(
        &mut self,
        mut op: OperationRecord,
        plan: &TrafficPlan,
        now: DateTime<Utc>,
    ) -> CommandOutcome {
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

    /// Drains or undrains a region and re-decides at once; the operation is verified at once
    /// when no traffic had to move.
    ///
    /// # Errors
    /// Unknown region, not the leader, or the operation lock is held.
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
            self.store.send(Write::Maintenance { region: region.clone(), drain: Some((now, reason)) });
        } else {
            self.maintenance.remove(&region);
            self.store.send(Write::Maintenance { region: region.clone(), drain: None });
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

    /// Moves all traffic to `target` now and holds it there.
    ///
    /// # Errors
    /// Unknown region, not the leader, the lock is held, or the target is not eligible.
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
    pub(super) fn check_target(
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
        let lag = self.lag.get(target).map(LagSample::reading);
        let mut lag_override = None;
        if let Err(e) = self.config.policy.failover_gate(target, lag.as_ref()) {
            match force {
                Some(f) => lag_override = Some((target.clone(), f.to_string())),
                None => why.push(format!(
                    "target {target} is over max_lag_on_failover ({e}): send `force` with a reason to accept losing that data"
                )),
            }
        }
        if why.is_empty() { Ok(lag_override) } else { Err(CommandError::Refused(why)) }
    }

    /// Pins all traffic on `target` (the operator hold, recorded) and sends the plan.
    pub(super) async fn move_all_to(
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

    /// Releases the hold, forgets the evacuated regions and returns to the normal weights.
    ///
    /// # Errors
    /// Not the leader, or the operation lock is held.
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
}
