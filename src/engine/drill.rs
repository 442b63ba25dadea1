//! Drill execution: the engine's side of a live drill.
//!
//! The pure phase machine ([`crate::drill::phase`]) decides what a live drill does
//! next from its phase, the current plan and its verification time, the target's
//! health and lag, and `now`; this file only executes its [`Action`]s: it sends
//! step and rollback plans (through [`Engine::operator_plan`]), records every
//! transition in the drill's timeline and row, and notifies. It is driven from
//! `step()` on every tick. Each transition is written to the store as it happens,
//! so a restart finds an unfinished drill and rolls it back (see
//! `Resume::interrupted_drill`).

use chrono::{DateTime, Utc};
use tracing::{info, warn};
use uuid::Uuid;

use super::observe::fmt_lag;
use super::{CommandError, Engine, RECORD_WAIT};
use crate::drill::phase::{self, Action, AfterHold, Facts, Phase, Rollback, Target, Timeouts};
use crate::drill::{
    self, DrillEvent, DrillEventKind, DrillId, DrillRecord, DrillSpec, DrillState, Preflight, millis_between,
};
use crate::health::Health;
use crate::lag::LagSample;
use crate::notify::NotifyKind;
use crate::observation::{Observation, Outcome};
use crate::plan::{PlanId, PlanKind, Weights};
use crate::status::DrillStatus;
use crate::store::records::Write;

/// The live drill the engine drives.
#[derive(Debug, Clone)]
pub(crate) struct ActiveDrill {
    /// The drill as recorded.
    pub(crate) record: DrillRecord,
    /// Where it is.
    phase: Phase,
}

impl ActiveDrill {
    /// A drill found unfinished at start-up: rolled back by the first plan.
    pub(crate) fn interrupted(mut record: DrillRecord, now: DateTime<Utc>) -> Self {
        let phase = Phase::interrupted(record.state, record.step, now);
        record.state = DrillState::RollingBack;
        Self { record, phase }
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
            hold_until: self.phase.hold_until(),
            error_count: self.record.report.error_count,
            synthetic: false,
        }
    }
}

impl Engine {
    /// A real failure moved traffic toward safety during the drill: the safety plan is its
    /// rollback (sent by `step()`), the drill ends aborted unless it was already rolling back.
    pub(super) fn abort_drill_for_safety(&mut self, why: &str, now: DateTime<Utc>) {
        let Some(dr) = &mut self.drill else { return };
        warn!(drill = %dr.record.id, why = %why, "a real failure during the drill: aborting it, the safety move wins");
        let detail = format!("aborted by a real failure: {why}; the safety plan is the rollback");
        let Rollback { outcome, why } = phase::on_safety_move(&dr.phase, detail.clone());
        dr.phase = Phase::RollingBack { plan: None, since: now, outcome, why };
        dr.record.state = DrillState::RollingBack;
        self.drill_event(now, DrillEventKind::Abort, None, None, detail);
        self.persist_drill(now);
    }

    /// After a plan was sent by `step()`: it carries a pending drill rollback.
    pub(super) fn adopt_rollback_plan(&mut self, plan: PlanId, now: DateTime<Utc>) {
        if let Some(dr) = &mut self.drill {
            dr.phase.adopt_sent_plan(plan, now);
        }
    }

    /// What the phase machine looks at, from the engine's state now.
    pub(super) fn drill_facts(&self, d: &ActiveDrill, now: DateTime<Utc>) -> Facts {
        let target = d.record.spec.target.as_ref().map(|t| Target {
            name: t.clone(),
            health: self.regions.get(t).map(|r| r.health).unwrap_or(Health::Unknown),
            lag: self.lag.get(t).map(LagSample::reading),
            limit: self.config.policy.max_lag(t),
        });
        Facts {
            current: self.plan.as_ref().map(|p| phase::CurrentPlan { id: p.plan.id, verified_at: p.verified_at }),
            target,
            now,
            hold: chrono::Duration::from_std(d.record.spec.hold()).unwrap_or(chrono::Duration::zero()),
            steps: d.record.spec.steps.len() as u32,
            timeouts: Timeouts::default(),
        }
    }

    /// Advances the live drill by one action of its phase machine; called from `step()`.
    pub(super) async fn drive_drill(&mut self, now: DateTime<Utc>) {
        let Some(d) = &self.drill else { return };
        match phase::next(&d.phase, &self.drill_facts(d, now)) {
            Action::Wait => {}
            Action::StepVerified { step, at, hold_until } => {
                if let Some(d) = &mut self.drill {
                    d.record.report.steps_verified += 1;
                    if step == 0 {
                        d.record.report.time_to_shift_ms = Some(millis_between(d.record.requested_at, at));
                    }
                    d.phase = Phase::Holding { step, until: hold_until };
                    d.record.state = DrillState::Holding;
                }
                let detail = format!("step {} verified by read-back on every provider; holding", step + 1);
                self.drill_event(at, DrillEventKind::StepVerified, Some(step), None, detail);
                self.persist_drill(now);
            }
            Action::HoldDone { step, then } => {
                self.drill_event(now, DrillEventKind::HoldDone, Some(step), None, format!("step {} held", step + 1));
                match then {
                    AfterHold::SendStep(next) => self.send_drill_step(next, now).await,
                    AfterHold::RollBack(rollback) => self.rollback_drill(now, rollback).await,
                }
            }
            Action::RollBack(rollback) => self.rollback_drill(now, rollback).await,
            Action::RollbackVerified { at, time_to_rollback_ms, outcome, why } => {
                if let Some(d) = &mut self.drill {
                    d.record.report.time_to_rollback_ms = Some(time_to_rollback_ms);
                }
                self.drill_event(
                    at,
                    DrillEventKind::RollbackVerified,
                    None,
                    None,
                    "rollback verified by read-back".into(),
                );
                self.finish_drill(now, outcome, why);
            }
            Action::RollbackFailed { why } => self.finish_drill(now, DrillState::Failed, why),
            Action::Adopt(id) => {
                // A newer plan (a safety move) carries the rollback now.
                if let Some(ActiveDrill { phase: Phase::RollingBack { plan, .. }, .. }) = &mut self.drill {
                    *plan = Some(id);
                }
            }
        }
    }

    /// Runs the preflight, records the drill before anything moves, then either records a dry
    /// run's planned steps or sends the first step.
    ///
    /// # Errors
    /// [`CommandError::NotLeader`] on a follower; [`CommandError::Refused`] with every
    /// preflight reason.
    pub(super) async fn start_drill(
        &mut self,
        mut spec: DrillSpec,
        actor: String,
        now: DateTime<Utc>,
    ) -> Result<DrillRecord, CommandError> {
        // A follower answers as it does every operator command, naming the leader; its other
        // preflight reasons would describe its own view of a plan it never applies.
        if !self.leadership.leader {
            return Err(self.not_leader());
        }
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
            policy,
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
                DrillEventKind::Preflight,
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
                    DrillEventKind::StepPlanned,
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
        self.drill_event(now, DrillEventKind::Preflight, None, None, preflight);
        self.send_drill_step(0, now).await;
        self.drill
            .as_ref()
            .map(|d| d.record.clone())
            .ok_or_else(|| CommandError::NoSuchDrill("drill ended at once".into()))
    }

    /// An operator aborts the running drill: it rolls back now (no-op when already rolling back).
    ///
    /// # Errors
    /// [`CommandError::NoSuchDrill`] when `id` is not the running drill.
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
        if !d.phase.rolling_back() {
            let why = format!("aborted by {actor}: {reason}");
            self.rollback_drill(now, Rollback { outcome: DrillState::Aborted, why }).await;
        }
        self.drill.as_ref().map(|d| d.record.clone()).ok_or_else(|| CommandError::NoSuchDrill(id.to_string()))
    }

    /// Sends step `step`'s planned weights and starts waiting for their read-back.
    pub(super) async fn send_drill_step(&mut self, step: u32, now: DateTime<Utc>) {
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
        self.drill_event(now, DrillEventKind::StepSent, Some(step), Some((plan.id, plan.weights.clone())), reason);
        self.persist_drill(now);
    }

    /// Sends the baseline as the rollback plan; the drill ends as `rollback` says once verified.
    pub(super) async fn rollback_drill(&mut self, now: DateTime<Utc>, rollback: Rollback) {
        let Rollback { outcome, why } = rollback;
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
        let kind = if outcome == DrillState::Completed { DrillEventKind::RollbackSent } else { DrillEventKind::Abort };
        self.drill_event(now, kind, None, Some((plan.id, plan.weights.clone())), why);
        self.persist_drill(now);
    }

    /// Ends the drill: final state and reason recorded, notified, the lock released.
    pub(super) fn finish_drill(&mut self, now: DateTime<Utc>, outcome: DrillState, why: String) {
        let Some(d) = self.drill.take() else { return };
        self.close_drill(d.record, now, outcome, why);
    }

    /// Records a drill's end (state, reason, timeline entry) and notifies.
    pub(super) fn close_drill(
        &mut self,
        mut record: DrillRecord,
        now: DateTime<Utc>,
        outcome: DrillState,
        why: String,
    ) {
        record.state = outcome;
        record.finished_at = Some(now);
        record.updated_at = now;
        record.report.outcome_reason = Some(why.clone());
        info!(drill = %record.id, outcome = %outcome, why = %why, report = ?record.report, "drill finished");
        self.notify(
            NotifyKind::Drill,
            format!("drill:{}:finished", record.id),
            format!("drill {} finished: {outcome}: {why}", record.id),
            now,
            serde_json::json!({ "drill_id": record.id, "outcome": outcome.to_string(), "reason": why }),
        );
        self.store.send(Write::DrillEvent(Box::new(event(
            record.id,
            now,
            DrillEventKind::Finished,
            None,
            None,
            None,
            format!("{outcome}: {why}"),
        ))));
        self.store.send(Write::Drill(Box::new(record)));
        self.dirty = true;
    }

    /// Counts a failed or degraded probe as an error seen during the drill.
    pub(super) fn note_drill_observation(&mut self, obs: &Observation) {
        if let Some(d) = &mut self.drill
            && obs.outcome != Outcome::Ok
        {
            let what = obs.error.clone().unwrap_or_else(|| format!("{:?}", obs.outcome).to_lowercase());
            d.record.report.note_error(format!("{} {}: {what}", obs.at.format("%H:%M:%S%.3f"), obs.check));
        }
    }

    /// Keeps the worst lag of the drill's target.
    pub(super) fn note_drill_lag(&mut self, sample: &LagSample) {
        if let Some(d) = &mut self.drill
            && d.record.spec.target.as_ref() == Some(&sample.region)
        {
            d.record.report.note_lag(&sample.reading());
        }
    }

    /// Appends one entry to the running drill's timeline (stored and notified).
    pub(super) fn drill_event(
        &mut self,
        at: DateTime<Utc>,
        kind: DrillEventKind,
        step: Option<u32>,
        plan: Option<(PlanId, Weights)>,
        detail: String,
    ) {
        let Some(id) = self.drill.as_ref().map(|d| d.record.id).or(self.synthetic.as_ref().map(|s| s.record.id)) else {
            return;
        };
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

    /// Writes the running drill's row as it is now.
    pub(super) fn persist_drill(&mut self, now: DateTime<Utc>) {
        let record = self.drill.as_mut().map(|d| &mut d.record).or(self.synthetic.as_mut().map(|s| &mut s.record));
        if let Some(r) = record {
            r.updated_at = now;
            self.store.send(Write::Drill(Box::new(r.clone())));
        }
        self.dirty = true;
    }
}

/// One timeline entry with a fresh id.
pub(super) fn event(
    drill_id: DrillId,
    at: DateTime<Utc>,
    kind: DrillEventKind,
    step: Option<u32>,
    plan_id: Option<PlanId>,
    weights: Option<Weights>,
    detail: String,
) -> DrillEvent {
    DrillEvent { id: Uuid::new_v4(), drill_id, at, kind, step, plan_id, weights, detail }
}
