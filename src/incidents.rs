//! Incidents: every traffic move away from a region as one timeline. PURE.
//!
//! The engine feeds the [`Tracker`] what it sees: the first failed probe of a
//! region that was up (a *candidate* incident opens), check and region health
//! transitions, the plan decided, the providers' apply reports and the
//! read-back verification. A candidate that clears without a plan moving
//! traffic (one lost packet) is forgotten and never written; one that leads to
//! a plan becomes an [`Incident`] and is returned, after every milestone, for
//! the engine to store. A plan that moves traffic with no candidate (a drill,
//! a drain, an operator's failover) opens its incident at the decision.
//!
//! So the product measures its own detection-to-flip: `first failed probe →
//! read-back verified` of a real incident, with every step in between.
//!
//! No I/O, no clock reads: time is an argument.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::plan::{PlanId, PlanKind, TrafficPlan, Weights};
use crate::region::RegionName;

/// One step of an incident's timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// The first failed (or degraded) probe of a region that was up.
    FirstFailedProbe,
    /// A check of the region changed health.
    CheckTransition,
    /// The region changed health.
    RegionTransition,
    /// Enough vantages agree (with a single orchestrator: its own, quorum 1).
    QuorumReached,
    /// The plan moving traffic was decided.
    PlanDecided,
    /// A provider's first write attempt ended (verified or failed).
    ProviderWrite,
    /// Every provider read the plan back as applied.
    ReadBackVerified,
    /// DNS answers were seen to follow the plan.
    DnsPropagationSeen,
}

impl Step {
    /// The step's name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Step::FirstFailedProbe => "first_failed_probe",
            Step::CheckTransition => "check_transition",
            Step::RegionTransition => "region_transition",
            Step::QuorumReached => "quorum_reached",
            Step::PlanDecided => "plan_decided",
            Step::ProviderWrite => "provider_write",
            Step::ReadBackVerified => "read_back_verified",
            Step::DnsPropagationSeen => "dns_propagation_seen",
        }
    }
}

/// One milestone: a step, when, and what.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Milestone {
    /// What happened.
    pub step: Step,
    /// When.
    pub at: DateTime<Utc>,
    /// Details (check, from → to, provider, attempts …).
    pub detail: String,
    /// The provider's work, as values, on the steps that are one provider's doing
    /// (`provider_write`, `dns_propagation_seen`); absent on the others and in timelines
    /// stored before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<ProviderWork>,
}

/// What one provider did for a milestone: which provider, since when, how it ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderWork {
    /// The provider's name.
    pub provider: String,
    /// When this work began: the provider's first apply attempt of the plan, or the start of
    /// its propagation check (after its verified write).
    pub began: DateTime<Utc>,
    /// Apply attempts so far (0 for a propagation check).
    pub attempts: u32,
    /// How it ended.
    pub outcome: WorkOutcome,
    /// The secret-free error of a write that failed or was refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// A verified write whose provider checks DNS propagation next: a
    /// `dns_propagation_seen` step may follow.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub propagation_follows: bool,
}

/// How a provider's work for a milestone ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkOutcome {
    /// Written and read back as planned.
    Verified,
    /// An attempt failed; the applier retries.
    Failed,
    /// Refused for good (stale epoch, no longer leading).
    Refused,
    /// Not called: its circuit breaker is open.
    CircuitOpen,
    /// A newer plan replaced this one first.
    Superseded,
    /// Every DNS server (and resolver) answers the plan.
    Propagated,
}

impl WorkOutcome {
    /// The outcome's name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkOutcome::Verified => "verified",
            WorkOutcome::Failed => "failed",
            WorkOutcome::Refused => "refused",
            WorkOutcome::CircuitOpen => "circuit_open",
            WorkOutcome::Superseded => "superseded",
            WorkOutcome::Propagated => "propagated",
        }
    }
}

/// A failover (or degrade shift, drain, drill) as one timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    /// Id.
    pub id: Uuid,
    /// The region traffic moved away from.
    pub region: RegionName,
    /// When the first milestone happened.
    pub opened_at: DateTime<Utc>,
    /// The plan that moved traffic, once decided.
    pub plan_id: Option<PlanId>,
    /// Its kind (`failover`, `degrade_shift`, `drain` …).
    pub kind: Option<String>,
    /// Weights before and after.
    pub from_weights: Option<Weights>,
    /// Weights the plan set.
    pub to_weights: Option<Weights>,
    /// Every milestone, in order.
    pub timeline: Vec<Milestone>,
    /// When the plan was verified on every provider (the incident's flip).
    pub verified_at: Option<DateTime<Utc>>,
    /// The synthetic-failure drill that injected the failure: a rehearsal, not a real incident.
    #[serde(default)]
    pub synthetic_drill: Option<Uuid>,
}

impl Incident {
    fn open(region: &RegionName, at: DateTime<Utc>) -> Self {
        Self {
            id: Uuid::new_v4(),
            region: region.clone(),
            opened_at: at,
            plan_id: None,
            kind: None,
            from_weights: None,
            to_weights: None,
            timeline: Vec::new(),
            verified_at: None,
            synthetic_drill: None,
        }
    }

    fn push(&mut self, step: Step, at: DateTime<Utc>, detail: impl Into<String>) {
        self.timeline.push(Milestone { step, at, detail: detail.into(), provider: None });
    }

    fn push_work(&mut self, step: Step, at: DateTime<Utc>, detail: impl Into<String>, work: &ProviderWork) {
        self.timeline.push(Milestone { step, at, detail: detail.into(), provider: Some(work.clone()) });
    }

    /// The first time `step` happened.
    pub fn first(&self, step: Step) -> Option<DateTime<Utc>> {
        self.timeline.iter().find(|m| m.step == step).map(|m| m.at)
    }

    /// Milliseconds from the first milestone to `step`, if it happened.
    pub fn ms_to(&self, step: Step) -> Option<i64> {
        self.first(step).map(|t| (t - self.opened_at).num_milliseconds())
    }

    /// The headline figures: milliseconds from the first failed probe to detection
    /// (region down or degraded), decision and verified flip.
    pub fn figures(&self) -> Figures {
        Figures {
            detection_ms: self.ms_to(Step::RegionTransition),
            decision_ms: self.ms_to(Step::PlanDecided),
            flip_ms: self.ms_to(Step::ReadBackVerified),
            dns_ms: self.ms_to(Step::DnsPropagationSeen),
        }
    }
}

/// Milliseconds from an incident's first milestone to each headline step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Figures {
    /// To the region's health transition.
    pub detection_ms: Option<i64>,
    /// To the plan decision.
    pub decision_ms: Option<i64>,
    /// To read-back verification on every provider.
    pub flip_ms: Option<i64>,
    /// To DNS answers following.
    pub dns_ms: Option<i64>,
}

/// Open candidates and incidents, per region.
#[derive(Debug, Clone, Default)]
pub struct Tracker {
    /// Candidates (no plan yet) and incidents waiting for verification.
    open: BTreeMap<RegionName, Incident>,
    /// Recently verified incidents, kept for the DNS propagation step that follows.
    verified: Vec<Incident>,
}

/// Verified incidents kept waiting for their DNS propagation step.
const KEEP_VERIFIED: usize = 16;

impl Tracker {
    /// An empty tracker.
    pub fn new() -> Self {
        Self::default()
    }

    /// Open incidents and candidates.
    pub fn open(&self) -> impl Iterator<Item = &Incident> {
        self.open.values()
    }

    /// Marks the open incident of `region` as injected by synthetic-failure drill `drill`; every
    /// copy returned from then on carries the mark. Returns the mark of incident `id`.
    pub fn mark_synthetic(&mut self, region: &RegionName, drill: Option<Uuid>, id: Uuid) -> Option<Uuid> {
        if let Some(d) = drill
            && let Some(i) = self.open.get_mut(region)
        {
            i.synthetic_drill.get_or_insert(d);
        }
        self.open.values().find(|i| i.id == id).and_then(|i| i.synthetic_drill)
    }

    /// A probe of `region` failed (or was slow) while the region was `region_up`.
    /// Opens a candidate on the first one; returns the incident to store if it has a plan.
    pub fn probe_failed(
        &mut self,
        region: &RegionName,
        region_up: bool,
        check: &str,
        error: Option<&str>,
        at: DateTime<Utc>,
    ) -> Option<Incident> {
        if self.open.contains_key(region) || !region_up {
            return None;
        }
        let mut i = Incident::open(region, at);
        i.push(Step::FirstFailedProbe, at, format!("{check}: {}", error.unwrap_or("failed")));
        self.open.insert(region.clone(), i);
        None
    }

    /// A check (`Some(name)`) or the region (`None`) changed health.
    /// Returns the incident to store when it already has a plan.
    pub fn transition(
        &mut self,
        region: &RegionName,
        check: Option<&str>,
        from: &str,
        to: &str,
        at: DateTime<Utc>,
    ) -> Option<Incident> {
        let bad = matches!(to, "down" | "degraded");
        let i = match self.open.get_mut(region) {
            Some(i) => i,
            // A region that degrades without a failed probe (e.g. lag): open at the transition.
            None if bad && check.is_none() => self.open.entry(region.clone()).or_insert(Incident::open(region, at)),
            None => return None,
        };
        match check {
            Some(c) => i.push(Step::CheckTransition, at, format!("{c}: {from} → {to}")),
            None => i.push(Step::RegionTransition, at, format!("{from} → {to}")),
        }
        i.plan_id.is_some().then(|| i.clone())
    }

    /// The region is clean again (every check ok, region up): a candidate without a plan
    /// was a blip and is forgotten.
    pub fn settled(&mut self, region: &RegionName) {
        if self.open.get(region).is_some_and(|i| i.plan_id.is_none()) {
            self.open.remove(region);
        }
    }

    /// A plan was decided. Every region whose weight it lowers gets (or opens) an incident
    /// carrying the plan; `quorum` is `(votes, needed)` for regions decided down.
    /// Returns the incidents to store.
    pub fn plan_decided(
        &mut self,
        plan: &TrafficPlan,
        before: &Weights,
        quorum: &BTreeMap<RegionName, (usize, usize)>,
        at: DateTime<Utc>,
    ) -> Vec<Incident> {
        let mut out = Vec::new();
        // Returning traffic (failback) and start-up plans are not incidents.
        if matches!(plan.kind, PlanKind::Failback | PlanKind::Normal) {
            return out;
        }
        for (region, w) in plan.weights.iter() {
            if w >= before.get(region) {
                continue;
            }
            let i = self.open.entry(region.clone()).or_insert_with(|| Incident::open(region, at));
            if i.plan_id.is_some() {
                // A second step of the same move (e.g. degraded, then down): a new incident.
                *i = Incident::open(region, at);
            }
            if let Some((votes, needed)) = quorum.get(region) {
                i.push(Step::QuorumReached, at, format!("{votes} of {needed} vantage(s) see {region} down"));
            }
            i.push(
                Step::PlanDecided,
                at,
                format!("{}: {} → {} ({})", plan.kind.as_str(), before, plan.weights, plan.reason),
            );
            i.plan_id = Some(plan.id);
            i.kind = Some(plan.kind.as_str().to_string());
            i.from_weights = Some(before.clone());
            i.to_weights = Some(plan.weights.clone());
            out.push(i.clone());
        }
        out
    }

    /// A provider reported on a plan: `work` says what it did, `outcome` in words. `all_verified`
    /// is true once every provider verified it; the incident is then complete and closed.
    /// Returns the incidents to store.
    pub fn report(
        &mut self,
        plan: PlanId,
        work: &ProviderWork,
        outcome: &str,
        first_report: bool,
        all_verified: bool,
        at: DateTime<Utc>,
    ) -> Vec<Incident> {
        let regions: Vec<RegionName> =
            self.open.iter().filter(|(_, i)| i.plan_id == Some(plan)).map(|(r, _)| r.clone()).collect();
        let mut out = Vec::new();
        for r in regions {
            let Some(i) = self.open.get_mut(&r) else { continue };
            if first_report {
                i.push_work(Step::ProviderWrite, at, format!("{}: {outcome}", work.provider), work);
            }
            if all_verified && i.verified_at.is_none() {
                i.push(Step::ReadBackVerified, at, "every provider read the plan back");
                i.verified_at = Some(at);
                out.push(i.clone());
                if let Some(done) = self.open.remove(&r) {
                    self.verified.push(done);
                    if self.verified.len() > KEEP_VERIFIED {
                        self.verified.remove(0);
                    }
                }
            } else if first_report {
                out.push(i.clone());
            }
        }
        out
    }
}

impl Tracker {
    /// A DNS provider saw every authoritative server (and resolver) serve `plan` at `at`
    /// (`converged`), or gave up. Adds the last step to the incidents of that plan;
    /// returns them to store.
    pub fn propagated(
        &mut self,
        plan: PlanId,
        provider: &str,
        converged: bool,
        elapsed_ms: u128,
        at: DateTime<Utc>,
    ) -> Vec<Incident> {
        let mut out = Vec::new();
        let work = ProviderWork {
            provider: provider.to_string(),
            began: ms_before(at, elapsed_ms),
            attempts: 0,
            outcome: WorkOutcome::Propagated,
            error: None,
            propagation_follows: false,
        };
        for i in self.verified.iter_mut().chain(self.open.values_mut()).filter(|i| i.plan_id == Some(plan)) {
            if converged && i.first(Step::DnsPropagationSeen).is_none() {
                i.push_work(
                    Step::DnsPropagationSeen,
                    at,
                    format!("{provider}: every server answers the new plan ({elapsed_ms} ms after the write)"),
                    &work,
                );
                out.push(i.clone());
            }
        }
        out
    }
}

/// `at` less `ms` milliseconds; `at` itself when that is out of range.
fn ms_before(at: DateTime<Utc>, ms: u128) -> DateTime<Utc> {
    i64::try_from(ms)
        .ok()
        .and_then(chrono::Duration::try_milliseconds)
        .and_then(|d| at.checked_sub_signed(d))
        .unwrap_or(at)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use serde_json::json;

    use super::*;
    use crate::plan::Epoch;

    fn t(ms: i64) -> DateTime<Utc> {
        Utc.timestamp_millis_opt(1_700_000_000_000 + ms).unwrap()
    }

    fn w(p: u32, s: u32) -> Weights {
        Weights::from_pairs([(RegionName::new("primary"), p), (RegionName::new("standby"), s)])
    }

    fn verified(provider: &str, began: DateTime<Utc>) -> ProviderWork {
        ProviderWork {
            provider: provider.into(),
            began,
            attempts: 1,
            outcome: WorkOutcome::Verified,
            error: None,
            propagation_follows: false,
        }
    }

    fn plan(weights: Weights, at: DateTime<Utc>) -> TrafficPlan {
        TrafficPlan {
            id: PlanId::new(),
            epoch: Epoch(1),
            weights,
            kind: PlanKind::Failover,
            reason: "primary is down".into(),
            reasons: vec![],
            inputs: json!({}),
            decided_at: at,
        }
    }

    #[test]
    fn a_failover_is_one_timeline_from_first_failed_probe_to_verified() {
        let p = RegionName::new("primary");
        let mut tr = Tracker::new();
        assert!(tr.probe_failed(&p, true, "app", Some("503"), t(0)).is_none());
        assert!(tr.probe_failed(&p, true, "app", Some("503"), t(100)).is_none(), "only the first opens");
        assert!(tr.transition(&p, Some("app"), "up", "down", t(200)).is_none(), "not stored before a plan");
        tr.transition(&p, None, "up", "down", t(200));
        let pl = plan(w(0, 100), t(210));
        let quorum = BTreeMap::from([(p.clone(), (1, 1))]);
        let stored = tr.plan_decided(&pl, &w(80, 20), &quorum, t(210));
        assert_eq!(stored.len(), 1);
        let stored = tr.report(pl.id, &verified("pdns", t(220)), "verified", true, false, t(300));
        assert_eq!(stored.len(), 1);
        let stored = tr.report(pl.id, &verified("file", t(220)), "verified", true, true, t(320));
        let i = &stored[0];
        let steps: Vec<Step> = i.timeline.iter().map(|m| m.step).collect();
        assert_eq!(
            steps,
            vec![
                Step::FirstFailedProbe,
                Step::CheckTransition,
                Step::RegionTransition,
                Step::QuorumReached,
                Step::PlanDecided,
                Step::ProviderWrite,
                Step::ProviderWrite,
                Step::ReadBackVerified
            ]
        );
        let f = i.figures();
        assert_eq!((f.detection_ms, f.decision_ms, f.flip_ms), (Some(200), Some(210), Some(320)));
        assert_eq!(tr.open().count(), 0, "closed once verified");
        // DNS propagation, seen after verification, completes the same timeline once.
        let stored = tr.propagated(pl.id, "pdns", true, 40, t(360));
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].timeline.last().map(|m| m.step), Some(Step::DnsPropagationSeen));
        // The provider steps carry their work as values: who, since when, how it ended.
        let writes: Vec<&ProviderWork> = stored[0]
            .timeline
            .iter()
            .filter(|m| m.step == Step::ProviderWrite)
            .filter_map(|m| m.provider.as_ref())
            .collect();
        assert_eq!(writes.iter().map(|w| w.provider.as_str()).collect::<Vec<_>>(), ["pdns", "file"]);
        let seen = stored[0].timeline.last().and_then(|m| m.provider.clone()).unwrap();
        assert_eq!((seen.provider.as_str(), seen.began, seen.outcome), ("pdns", t(320), WorkOutcome::Propagated));
        assert!(stored[0].timeline.iter().filter(|m| m.step == Step::PlanDecided).all(|m| m.provider.is_none()));
        // Every step is in this timeline: each one's name is the name it is stored under.
        for m in &stored[0].timeline {
            assert_eq!(serde_json::to_value(m.step).unwrap(), json!(m.step.as_str()));
        }
        assert_eq!(stored[0].figures().dns_ms, Some(360));
        assert!(tr.propagated(pl.id, "pdns", true, 40, t(400)).is_empty(), "recorded once");
        assert!(tr.propagated(PlanId::new(), "pdns", true, 40, t(400)).is_empty(), "other plans untouched");
    }

    #[test]
    fn a_blip_without_a_plan_is_forgotten() {
        let p = RegionName::new("primary");
        let mut tr = Tracker::new();
        tr.probe_failed(&p, true, "app", None, t(0));
        tr.settled(&p);
        assert_eq!(tr.open().count(), 0);
    }

    #[test]
    fn a_region_already_down_opens_nothing_on_more_failures() {
        let p = RegionName::new("primary");
        let mut tr = Tracker::new();
        tr.probe_failed(&p, false, "app", None, t(0));
        assert_eq!(tr.open().count(), 0);
    }

    #[test]
    fn a_plan_without_a_candidate_opens_its_own_incident() {
        // A drain or a drill: no failed probe, still one timeline.
        let mut tr = Tracker::new();
        let pl = plan(w(0, 100), t(0));
        let stored = tr.plan_decided(&pl, &w(80, 20), &BTreeMap::new(), t(0));
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].timeline[0].step, Step::PlanDecided);
    }

    #[test]
    fn a_timeline_stored_before_provider_work_existed_still_reads() {
        let old = json!({ "step": "provider_write", "at": "2024-01-01T00:00:00Z", "detail": "pdns: verified" });
        let m: Milestone = serde_json::from_value(old).unwrap();
        assert_eq!(m.provider, None);
        // And a milestone without provider work is stored as before.
        assert!(serde_json::to_value(&m).unwrap().get("provider").is_none());
    }

    #[test]
    fn a_propagation_time_out_of_range_begins_at_the_step_itself() {
        assert_eq!(ms_before(t(0), u128::MAX), t(0));
        assert_eq!(ms_before(t(500), 200), t(300));
    }

    #[test]
    fn outcome_names_are_the_stored_names() {
        use WorkOutcome::*;
        for o in [Verified, Failed, Refused, CircuitOpen, Superseded, Propagated] {
            assert_eq!(serde_json::to_value(o).unwrap(), json!(o.as_str()));
        }
    }

    #[test]
    fn a_failback_opens_no_incident() {
        let mut tr = Tracker::new();
        let mut pl = plan(w(80, 20), t(0));
        pl.kind = PlanKind::Failback;
        assert!(tr.plan_decided(&pl, &w(40, 60), &BTreeMap::new(), t(0)).is_empty());
        assert_eq!(tr.open().count(), 0);
    }
}
