//! Synthetic-failure drills: the engine's side (see [`crate::drill::synthetic`]).
//!
//! The leader injects the failure into its own probe runners (the `injection` watch)
//! and publishes it in its view; a follower injects what the leader's fresh view
//! carries. From there nothing is special: the probes fail, hysteresis confirms,
//! the quorum forms, `decide` moves traffic and the providers write and read back.
//! This file only watches that path, measures it into the drill's report, lifts the
//! injection after the hold and rolls back once the region's real probes show it up.
//! Every plan sent while the injection holds names the drill in its reason, and the
//! region's observations carry what the probes really found.

use chrono::{DateTime, Utc};
use tracing::{info, warn};

use super::observe::fmt_lag;
use super::{CommandError, Engine, RECORD_WAIT};
use crate::drill::synthetic::{self, Action, Ending, Facts, Figures, Injection, Phase, PlanSeen, Timeouts};
use crate::drill::{self, DrillEventKind, DrillId, DrillRecord, DrillReport, DrillSpec, DrillState};
use crate::health::Health;
use crate::observation::{Observation, Outcome};
use crate::plan::{PlanKind, TrafficPlan, Weights};
use crate::region::RegionName;
use crate::status::DrillStatus;
use crate::store::records::Write;

/// The live synthetic-failure drill.
#[derive(Debug, Clone)]
pub(crate) struct SyntheticDrill {
    /// The drill as recorded.
    pub(crate) record: DrillRecord,
    /// The region whose failure is injected.
    region: RegionName,
    /// The injection while it holds.
    injection: Injection,
    /// Where it is.
    phase: Phase,
    /// When the injection was lifted.
    lifted_at: Option<DateTime<Utc>>,
}

impl SyntheticDrill {
    fn figures(&mut self) -> &mut Figures {
        self.record.report.synthetic.get_or_insert_with(Figures::default)
    }

    /// The dashboard's view.
    pub(crate) fn status(&self) -> DrillStatus {
        DrillStatus {
            id: self.record.id,
            state: self.record.state,
            step: self.record.step,
            steps: 1,
            step_percents: vec![100],
            evacuate: Some(self.region.clone()),
            target: self.record.spec.target.clone(),
            actor: self.record.actor.clone(),
            requested_at: self.record.requested_at,
            hold_until: match self.phase {
                Phase::Holding { until } => Some(until),
                _ => None,
            },
            error_count: self.record.report.error_count,
            synthetic: true,
        }
    }
}

impl Engine {
    /// The injection this orchestrator publishes in its view: the leader's own, while it holds.
    pub(super) fn published_injection(&self) -> Option<Injection> {
        let s = self.synthetic.as_ref()?;
        (self.leadership.leader && s.phase.injecting()).then(|| s.injection.clone())
    }

    /// A follower injects what the leader's fresh view carries, and nothing else; the leader
    /// what its own drill does.
    pub(super) fn follow_injection(&mut self) {
        let want = if self.leadership.leader {
            self.published_injection()
        } else {
            let ttl = self.config.coordination.view_ttl;
            self.leadership
                .holder
                .as_ref()
                .and_then(|h| self.coordination.peers.get(h))
                .filter(|p| p.received.elapsed() < ttl)
                .and_then(|p| p.view.synthetic.clone())
        };
        self.ch.injection.send_if_modified(|cur| {
            if *cur == want {
                return false;
            }
            match &want {
                Some(i) => {
                    info!(drill = %i.drill, region = %i.region, "synthetic failure injected into this vantage's probes")
                }
                None => info!("synthetic failure lifted from this vantage's probes"),
            }
            *cur = want.clone();
            true
        });
        self.metrics.set_synthetic_injected(want.is_some());
    }

    /// The words a health notification or log of `region` carries while its failure is injected.
    pub(super) fn synthetic_note(&self, region: &RegionName) -> Option<String> {
        let i = self.ch.injection.borrow();
        i.as_ref()
            .filter(|i| &i.region == region)
            .map(|i| format!("synthetic failure injected by drill {}, not a real one", i.drill))
    }

    /// Every reason not to start a synthetic drill of `region` now (empty: go).
    fn synthetic_preflight(&self, region: &RegionName) -> Vec<String> {
        let mut why = Vec::new();
        if let Some(b) = self.busy() {
            why.push(format!("{b} is in progress: wait for it or abort it first"));
        }
        if let Some(n) = self.not_normal() {
            why.push(format!("traffic is not on its normal plan: {n}"));
        }
        if self.hold.is_some() {
            why.push("an operator hold pins the weights: release it (POST /api/v1/failback) first".into());
        }
        let inputs = self.inputs();
        for r in &inputs.regions {
            if r.health != Health::Up {
                why.push(format!(
                    "region {} is {}: a synthetic-failure drill runs only while every region is really up",
                    r.name, r.health
                ));
            }
            if r.maintenance {
                why.push(format!("region {} is drained for maintenance", r.name));
            }
        }
        if self.memory.current.get(region) == 0 {
            why.push(format!("{region} serves no traffic: there is nothing for the automation to move"));
        }
        if drill::choose_target(&self.config.policy, &inputs.regions, Some(region)).is_none() {
            why.push(format!("no other region could take {region}'s traffic (up, not drained, within its lag limit)"));
        }
        why
    }

    /// Starts a synthetic-failure drill: recorded, then the failure injected.
    ///
    /// # Errors
    /// [`CommandError::NotLeader`] on a follower; [`CommandError::Refused`] with every
    /// preflight reason.
    pub(super) async fn start_synthetic(
        &mut self,
        spec: DrillSpec,
        actor: String,
        now: DateTime<Utc>,
    ) -> Result<DrillRecord, CommandError> {
        if !self.leadership.leader {
            return Err(self.not_leader());
        }
        let Some(region) = spec.evacuate.clone() else {
            return Err(CommandError::Refused(vec!["name the region whose failure is injected (`evacuate`)".into()]));
        };
        let why = self.synthetic_preflight(&region);
        if !why.is_empty() {
            return Err(CommandError::Refused(why));
        }
        let timeouts = Timeouts::default();
        let injection = Injection {
            drill: DrillId::new(),
            region: region.clone(),
            until: now + timeouts.injection_cap(spec.hold()),
        };
        let record = DrillRecord {
            id: injection.drill,
            requested_at: now,
            actor,
            spec,
            baseline: self.memory.current.clone(),
            state: DrillState::Shifting,
            step: Some(0),
            report: DrillReport {
                synthetic: Some(Figures { injected_at: Some(now), ..Figures::default() }),
                ..DrillReport::default()
            },
            updated_at: now,
            finished_at: None,
        };
        // Recorded before anything is injected.
        let ack = self.store.send_acked(Write::Drill(Box::new(record.clone())));
        let _ = tokio::time::timeout(RECORD_WAIT, ack).await;
        info!(drill = %record.id, %region, actor = %record.actor, "synthetic-failure drill started");
        let lags: Vec<String> = self.lag.values().map(|s| format!("{} {}", s.region, fmt_lag(s))).collect();
        self.synthetic = Some(SyntheticDrill {
            record: record.clone(),
            region: region.clone(),
            injection,
            phase: Phase::Injecting { since: now },
            lifted_at: None,
        });
        let preflight = format!(
            "preflight passed: every region is up; baseline {}{}",
            record.baseline,
            if lags.is_empty() { String::new() } else { format!("; lag {}", lags.join(", ")) }
        );
        self.drill_event(now, DrillEventKind::Preflight, None, None, preflight);
        let detail = format!(
            "synthetic failure of {region} injected into every vantage's probes: detection, quorum, decision and the providers run for real"
        );
        self.drill_event(now, DrillEventKind::Injected, Some(0), None, detail);
        self.follow_injection();
        self.dirty = true;
        Ok(record)
    }

    /// An operator aborts the synthetic drill: the injection is lifted now; the rollback follows
    /// once the region is up again.
    pub(super) fn abort_synthetic(&mut self, actor: &str, reason: &str, now: DateTime<Utc>) -> Option<DrillRecord> {
        let s = self.synthetic.as_ref()?;
        if s.phase.injecting() {
            let ending = Ending { outcome: DrillState::Aborted, why: format!("aborted by {actor}: {reason}") };
            self.lift_injection(ending, now);
        }
        self.synthetic.as_ref().map(|s| s.record.clone())
    }

    /// A plan sent while the failure is injected: the first that takes weight from the region
    /// is the automation's answer. Its reason names the drill.
    pub(super) fn note_synthetic_plan(&mut self, plan: &mut TrafficPlan, before: &Weights) {
        let Some(s) = &mut self.synthetic else { return };
        if !s.phase.injecting() {
            return;
        }
        plan.reason = format!("synthetic-failure drill {}: {}", s.record.id, plan.reason);
        let region = s.region.clone();
        if s.figures().automatic_plan.is_none() && plan.weights.get(&region) < before.get(&region) {
            let decided = s.figures().since_injection(plan.decided_at);
            let f = s.figures();
            f.automatic_plan = Some(plan.id);
            f.decided_ms = decided;
            f.flipped_to = Some(plan.weights.clone());
            s.record.spec.target =
                plan.weights.iter().filter(|(r, _)| **r != region).max_by_key(|(_, w)| *w).map(|(r, _)| r.clone());
        }
    }

    /// Counts the region's probes that failed for real while the failure was injected.
    pub(super) fn note_synthetic_observation(&mut self, obs: &Observation) {
        if let Some(s) = &mut self.synthetic
            && obs.synthetic.is_some_and(|o| o != Outcome::Ok)
        {
            s.figures().real_probe_failures += 1;
        }
    }

    /// DNS answers seen to follow the automation's plan.
    pub(super) fn note_synthetic_propagation(&mut self, plan: crate::plan::PlanId, converged: bool, at: DateTime<Utc>) {
        if let Some(s) = &mut self.synthetic
            && converged
            && s.figures().automatic_plan == Some(plan)
            && s.figures().propagated_ms.is_none()
        {
            let ms = s.figures().since_injection(at);
            s.figures().propagated_ms = ms;
        }
    }

    /// A promotion the automation would request now: not for a synthetic failure.
    pub(super) fn synthetic_blocks_promotion(&mut self, what: String) -> bool {
        let Some(s) = &mut self.synthetic else { return false };
        warn!(drill = %s.record.id, %what, "synthetic-failure drill: no promotion requested");
        s.figures().promotion_skipped = Some(what);
        true
    }

    /// The phase machine's facts now.
    fn synthetic_facts(&self, s: &SyntheticDrill, now: DateTime<Utc>) -> Facts {
        let inputs = self.inputs();
        let region_up = inputs.regions.iter().any(|r| r.name == s.region && r.health == Health::Up);
        let trouble = inputs
            .regions
            .iter()
            .filter(|r| r.name != s.region && r.health != Health::Up && r.health != Health::Unknown)
            .map(|r| format!("region {} is {}", r.name, r.health))
            .next();
        let seen =
            |id| self.plan.as_ref().filter(|p| p.plan.id == id).map(|p| PlanSeen { id, verified_at: p.verified_at });
        let automatic = s
            .record
            .report
            .synthetic
            .as_ref()
            .and_then(|f| f.automatic_plan)
            .map(|id| seen(id).unwrap_or(PlanSeen { id, verified_at: None }));
        let rollback = match &s.phase {
            Phase::RollingBack { plan, .. } => seen(*plan),
            _ => None,
        };
        Facts {
            now,
            automatic,
            rollback,
            region_up,
            trouble,
            hold: chrono::Duration::from_std(s.record.spec.hold()).unwrap_or_default(),
            timeouts: Timeouts::default(),
        }
    }

    /// Advances the synthetic drill by one action; called from `step()`.
    pub(super) async fn drive_synthetic(&mut self, now: DateTime<Utc>) {
        if self.synthetic.is_none() {
            return;
        }
        self.note_synthetic_detection(now);
        let Some(s) = &self.synthetic else { return };
        match synthetic::next(&s.phase, &self.synthetic_facts(s, now)) {
            Action::Wait => {}
            Action::Flipped { at, until } => {
                if let Some(s) = &mut self.synthetic {
                    let rto = s.figures().since_injection(at);
                    s.figures().rto_ms = rto;
                    s.record.report.time_to_shift_ms = rto;
                    s.record.report.steps_verified = 1;
                    s.phase = Phase::Holding { until };
                    s.record.state = DrillState::Holding;
                }
                let plan = self.plan.as_ref().map(|p| (p.plan.id, p.plan.weights.clone()));
                let rto = self.synthetic.as_ref().and_then(|s| s.record.report.synthetic.as_ref()?.rto_ms);
                let detail = format!(
                    "the automation's plan is verified by read-back on every provider {} ms after the injection; holding",
                    rto.map(|r| r.to_string()).unwrap_or_else(|| "?".into())
                );
                self.drill_event(at, DrillEventKind::StepVerified, Some(0), plan, detail);
                self.persist_drill(now);
            }
            Action::Lift(ending) => self.lift_injection(ending, now),
            Action::SendRollback => self.rollback_synthetic(now).await,
            Action::Finish(Ending { outcome, why }) => {
                if let Some(s) = self.synthetic.take() {
                    self.close_drill(s.record, now, outcome, why);
                }
            }
        }
    }

    /// The first time the quorum sees the region down after the injection.
    fn note_synthetic_detection(&mut self, now: DateTime<Utc>) {
        let Some(s) = &self.synthetic else { return };
        if !s.phase.injecting() || s.record.report.synthetic.as_ref().is_some_and(|f| f.detected_ms.is_some()) {
            return;
        }
        let region = s.region.clone();
        let down = self.inputs().regions.iter().any(|r| r.name == region && r.health == Health::Down);
        let at = self.regions.get(&region).and_then(|r| r.since).unwrap_or(now);
        if down && let Some(s) = &mut self.synthetic {
            let ms = s.figures().since_injection(at);
            s.figures().detected_ms = ms;
            let detail = format!("{region} seen down by the quorum of vantages");
            self.drill_event(at, DrillEventKind::Detected, Some(0), None, detail);
        }
    }

    /// Stops injecting; the rollback waits for the region's real probes.
    fn lift_injection(&mut self, ending: Ending, now: DateTime<Utc>) {
        let Some(s) = &mut self.synthetic else { return };
        info!(drill = %s.record.id, region = %s.region, why = %ending.why, "synthetic failure lifted");
        let detail = format!("synthetic failure of {} lifted ({}); waiting for its real probes", s.region, ending.why);
        let kind = if ending.outcome == DrillState::Completed { DrillEventKind::Lifted } else { DrillEventKind::Abort };
        s.phase = Phase::Recovering { since: now, ending };
        s.record.state = DrillState::RollingBack;
        s.lifted_at = Some(now);
        self.follow_injection();
        self.drill_event(now, kind, Some(0), None, detail);
        self.persist_drill(now);
    }

    /// The region is up again: traffic goes back to the baseline (nothing to send when the
    /// automation never moved it).
    async fn rollback_synthetic(&mut self, now: DateTime<Utc>) {
        let Some(s) = &mut self.synthetic else { return };
        let Phase::Recovering { ending, .. } = s.phase.clone() else { return };
        if let Some(lifted) = s.lifted_at {
            s.figures().recovered_ms = Some(drill::millis_between(lifted, now));
        }
        let (id, region, baseline) = (s.record.id, s.region.clone(), s.record.baseline.clone());
        if self.memory.current == baseline {
            if let Some(s) = self.synthetic.take() {
                self.close_drill(s.record, now, ending.outcome, ending.why);
            }
            return;
        }
        // The automation's evacuation of the region and the failover it spent from the budget
        // were the drill's: forgotten with it.
        self.memory.evacuated.remove(&region);
        if let Some(injected) = self.synthetic.as_ref().and_then(|s| s.record.report.synthetic.as_ref()?.injected_at) {
            self.memory.failovers.retain(|t| *t < injected);
        }
        let reason = format!("synthetic-failure drill {id}: {region} is up again, rolling back to the baseline");
        let plan = self.operator_plan(now, baseline, PlanKind::Drill, reason.clone()).await;
        if let Some(s) = &mut self.synthetic {
            s.phase = Phase::RollingBack { plan: plan.id, since: now, ending };
        }
        self.drill_event(now, DrillEventKind::RollbackSent, None, Some((plan.id, plan.weights.clone())), reason);
        self.persist_drill(now);
    }

    /// The rollback verified: its time goes into the report.
    pub(super) fn note_synthetic_verified(&mut self, plan: crate::plan::PlanId, at: DateTime<Utc>) {
        if let Some(s) = &mut self.synthetic
            && let Phase::RollingBack { plan: p, since, .. } = &s.phase
            && *p == plan
        {
            s.record.report.time_to_rollback_ms = Some(drill::millis_between(*since, at));
            self.drill_event(at, DrillEventKind::RollbackVerified, None, None, "rollback verified by read-back".into());
        }
    }
}
