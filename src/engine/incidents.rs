//! Incident hooks: the engine tells the pure [`crate::incidents::Tracker`] what it saw
//! (failed probes, transitions, plans decided, apply reports) and stores every
//! incident timeline it returns (issue 7); with traces on, each stored timeline and each
//! plan sent also go to the trace exporter (issue 14), which never makes the engine wait.

use chrono::{DateTime, Utc};

use super::Engine;
use crate::health::Health;
use crate::incidents::{ProviderWork, WorkOutcome};
use crate::observation::{Observation, Outcome};
use crate::plan::TrafficPlan;
use crate::region::RegionName;
use crate::store::records::Write;
use crate::traffic::applier::{ApplyReport, ApplyResult};

impl Engine {
    /// Hands every incident timeline and every plan sent to `sink`, to be exported as traces.
    pub fn with_traces(mut self, sink: crate::traces::TraceSink) -> Self {
        self.traces = Some(sink);
        self
    }

    /// Upserts an incident's timeline (and hands it to the trace exporter).
    pub(super) fn store_incident(&mut self, mut incident: crate::incidents::Incident) {
        // A failure a synthetic-failure drill injected is marked as such, in the store and the trace.
        let injected = self.ch.injection.borrow().as_ref().filter(|i| i.region == incident.region).map(|i| i.drill.0);
        let mark = self.incidents.mark_synthetic(&incident.region, injected, incident.id);
        incident.synthetic_drill = incident.synthetic_drill.or(mark).or(injected);
        if let Some(t) = &self.traces {
            t.incident(&incident);
        }
        self.store.send(Write::Incident(Box::new(incident)));
    }

    /// A failed probe may open a candidate; a region clean again forgets a candidate without a plan.
    pub(super) fn incident_probe(&mut self, obs: &Observation) {
        let region = &obs.check.region;
        let up = self.regions.get(region).is_some_and(|r| r.health == Health::Up);
        if obs.outcome != Outcome::Ok {
            if let Some(i) = self.incidents.probe_failed(region, up, &obs.check.name, obs.error.as_deref(), obs.at) {
                self.store_incident(i);
            }
        } else if up
            && self
                .checks
                .iter()
                .filter(|(id, _)| &id.region == region)
                .all(|(_, c)| c.state.fail_streak == 0 && c.state.bad_streak == 0)
        {
            self.incidents.settled(region);
        }
    }

    /// A check (`Some`) or region (`None`) health transition, added to the region's timeline.
    pub(super) fn incident_transition(
        &mut self,
        region: &RegionName,
        check: Option<&str>,
        from: Health,
        to: Health,
        at: DateTime<Utc>,
    ) {
        if let Some(i) = self.incidents.transition(region, check, &from.to_string(), &to.to_string(), at) {
            self.store_incident(i);
        }
    }

    /// A plan was sent: every region it takes weight from gets (or opens) an incident.
    pub(super) fn incident_plan(&mut self, plan: &TrafficPlan) {
        let quorum = self
            .regions
            .iter()
            .filter(|(_, r)| r.health == Health::Down)
            .map(|(name, _)| (name.clone(), (1, self.config.policy.quorum)))
            .collect();
        let before = self.memory.current.clone();
        if let Some(t) = &self.traces {
            t.plan_sent(plan.id);
        }
        for i in self.incidents.plan_decided(plan, &before, &quorum, plan.decided_at) {
            self.store_incident(i);
        }
    }

    /// A provider's report on a plan, and its verification on every provider.
    pub(super) fn incident_report(&mut self, rep: &ApplyReport, first_report: bool, all_verified: bool) {
        let outcome = match &rep.result {
            ApplyResult::Verified => format!("verified after {} attempt(s)", rep.attempts),
            ApplyResult::Failed { error, .. } => format!("failed (attempt {}): {error}", rep.attempts),
            ApplyResult::Superseded => "superseded".to_string(),
            ApplyResult::Refused { error } => format!("refused: {error}"),
            ApplyResult::CircuitOpen { retry_in } => {
                format!("circuit open, next probe in {}", humantime::format_duration(*retry_in))
            }
            ApplyResult::Drift { live, .. } => format!("drift: serves {live}"),
        };
        let work = provider_work(rep);
        for i in self.incidents.report(rep.plan_id, &work, &outcome, first_report, all_verified, rep.at) {
            self.store_incident(i);
        }
    }
}

/// An apply report as the timeline's values: who, since when (its first attempt), how it ended.
fn provider_work(rep: &ApplyReport) -> ProviderWork {
    let (outcome, error) = match &rep.result {
        ApplyResult::Verified => (WorkOutcome::Verified, None),
        ApplyResult::Failed { error, .. } => (WorkOutcome::Failed, Some(error.clone())),
        ApplyResult::Refused { error } => (WorkOutcome::Refused, Some(error.clone())),
        ApplyResult::CircuitOpen { .. } => (WorkOutcome::CircuitOpen, None),
        ApplyResult::Superseded => (WorkOutcome::Superseded, None),
        // Drift reports never reach the timeline (the engine handles them first); shown as failed.
        ApplyResult::Drift { live, .. } => (WorkOutcome::Failed, Some(format!("drift: serves {live}"))),
    };
    let began =
        chrono::Duration::from_std(rep.elapsed).ok().and_then(|d| rep.at.checked_sub_signed(d)).unwrap_or(rep.at);
    ProviderWork {
        provider: rep.provider.clone(),
        began,
        attempts: rep.attempts,
        outcome,
        error,
        propagation_follows: rep.propagation_follows,
    }
}
