//! Synthetic-failure drills: rehearsing the automation without touching the region. PURE.
//!
//! A synthetic drill *injects* a failure of one region into the orchestrator's own
//! observations: every probe of that region still runs, and its result is reported
//! failed (the real outcome kept in the detail). With several orchestrators the
//! leader carries the injection in the view it publishes and every vantage injects
//! it into its own probes, so detection, fall/rise hysteresis, the quorum of
//! vantages, the decision, the providers' writes and read-back and the DNS
//! propagation check all run for real. The drill measures that path (injection →
//! read-back verified is the automation's RTO), holds, lifts the injection, waits
//! for the region's real probes to show it up again and rolls traffic back to the
//! baseline. A database promotion is never requested for a synthetic failover.
//!
//! This file holds the phase machine (phase + facts → next action) and the
//! injection itself; `engine::synthetic` executes the actions. Nothing here reads
//! a clock or does I/O.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{DrillId, DrillState, millis_between};
use crate::plan::{PlanId, Weights};
use crate::region::RegionName;

/// Longest hold after the automation's flip was verified.
pub const MAX_HOLD: Duration = Duration::from_secs(600);
/// Hold when the request names none.
pub const DEFAULT_HOLD: Duration = Duration::from_secs(5);

/// A failure injected into the observations of one region's checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Injection {
    /// The drill that injects it.
    pub drill: DrillId,
    /// The region whose probes are reported failed.
    pub region: RegionName,
    /// Injected until then at the latest, whatever happens to the drill (a safety net for
    /// an orchestrator that lost its leader mid-drill).
    pub until: DateTime<Utc>,
}

impl Injection {
    /// Whether a probe of `region` finished at `at` is reported failed.
    pub fn applies(&self, region: &RegionName, at: DateTime<Utc>) -> bool {
        &self.region == region && at < self.until
    }

    /// The error a probe under the injection reports, with what the probe really saw.
    pub fn error(&self, real: Option<&str>) -> String {
        let real = match real {
            None => "the probe itself answered ok".to_string(),
            Some(e) => format!("the probe itself failed too: {e}"),
        };
        format!("synthetic failure injected by drill {} ({real})", self.drill)
    }
}

/// Bounds on each wait of a synthetic drill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Injection → the automation's plan verified on every provider.
    pub flip: chrono::Duration,
    /// Injection lifted → the region up again by its real probes.
    pub recover: chrono::Duration,
    /// Rollback sent → verified.
    pub rollback: chrono::Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            flip: chrono::Duration::seconds(120),
            recover: chrono::Duration::seconds(180),
            rollback: chrono::Duration::seconds(120),
        }
    }
}

impl Timeouts {
    /// How long an injection may last at most: the flip wait and the hold, with a margin.
    pub fn injection_cap(&self, hold: Duration) -> chrono::Duration {
        self.flip + chrono::Duration::from_std(hold).unwrap_or_default() + chrono::Duration::seconds(30)
    }
}

/// How a synthetic drill ends once traffic is back: its outcome and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ending {
    /// Completed, aborted or failed.
    pub outcome: DrillState,
    /// In a sentence.
    pub why: String,
}

/// Where a live synthetic drill is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// The failure is injected; waiting for the automation to move traffic and verify it.
    Injecting {
        /// Since when.
        since: DateTime<Utc>,
    },
    /// The automation's plan is verified; traffic is held away from the region.
    Holding {
        /// Until when.
        until: DateTime<Utc>,
    },
    /// The injection is lifted; waiting for the region's real probes to show it up.
    Recovering {
        /// Since when.
        since: DateTime<Utc>,
        /// How the drill ends once traffic is back.
        ending: Ending,
    },
    /// The rollback plan (back to the baseline) is sent; waiting for its read-back.
    RollingBack {
        /// The rollback plan.
        plan: PlanId,
        /// Since when.
        since: DateTime<Utc>,
        /// How the drill ends once it is verified.
        ending: Ending,
    },
}

impl Phase {
    /// Whether the failure is still injected in this phase.
    pub fn injecting(&self) -> bool {
        matches!(self, Phase::Injecting { .. } | Phase::Holding { .. })
    }

    /// The drill state shown for this phase.
    pub fn state(&self) -> DrillState {
        match self {
            Phase::Injecting { .. } => DrillState::Shifting,
            Phase::Holding { .. } => DrillState::Holding,
            Phase::Recovering { .. } | Phase::RollingBack { .. } => DrillState::RollingBack,
        }
    }
}

/// A plan as the phase machine sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanSeen {
    /// Its id.
    pub id: PlanId,
    /// When every provider read it back, if they did.
    pub verified_at: Option<DateTime<Utc>>,
}

/// What the phase machine looks at.
#[derive(Debug, Clone, PartialEq)]
pub struct Facts {
    /// Now.
    pub now: DateTime<Utc>,
    /// The automation's plan moving traffic away from the region, once one was sent.
    pub automatic: Option<PlanSeen>,
    /// The current plan, when it is the drill's rollback.
    pub rollback: Option<PlanSeen>,
    /// Whether the region is up again (the quorum verdict of the real probes).
    pub region_up: bool,
    /// A real problem elsewhere (another region not up), described.
    pub trouble: Option<String>,
    /// The hold after the flip.
    pub hold: chrono::Duration,
    /// The bounds.
    pub timeouts: Timeouts,
}

/// What the engine does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Nothing yet.
    Wait,
    /// The automation's plan was verified at `at`: hold until `until`.
    Flipped {
        /// When it was verified.
        at: DateTime<Utc>,
        /// End of the hold.
        until: DateTime<Utc>,
    },
    /// Lift the injection; the drill ends as `ending` once traffic is back.
    Lift(Ending),
    /// The region is up again: send the rollback to the baseline.
    SendRollback,
    /// The drill is over.
    Finish(Ending),
}

/// The next action of a live synthetic drill.
pub fn next(phase: &Phase, f: &Facts) -> Action {
    let ending = |outcome, why: String| Ending { outcome, why };
    match phase {
        Phase::Injecting { since } => {
            if let Some(t) = &f.trouble {
                return Action::Lift(ending(DrillState::Aborted, format!("aborted by a real failure: {t}")));
            }
            if let Some(at) = f.automatic.and_then(|p| p.verified_at) {
                return Action::Flipped { at, until: at.max(f.now) + f.hold };
            }
            if f.now - *since > f.timeouts.flip {
                let seen = if f.automatic.is_some() {
                    "its plan was sent but not verified on every provider"
                } else {
                    "no plan moved traffic away from the region"
                };
                return Action::Lift(ending(
                    DrillState::Failed,
                    format!(
                        "the automation did not flip within {} s of the injection: {seen}",
                        f.timeouts.flip.num_seconds()
                    ),
                ));
            }
            Action::Wait
        }
        Phase::Holding { until } => {
            if let Some(t) = &f.trouble {
                return Action::Lift(ending(DrillState::Aborted, format!("aborted by a real failure: {t}")));
            }
            if f.now >= *until {
                return Action::Lift(ending(
                    DrillState::Completed,
                    "the automation detected the synthetic failure, moved traffic and verified it; rolled back".into(),
                ));
            }
            Action::Wait
        }
        Phase::Recovering { since, ending: e } => {
            if f.region_up {
                return Action::SendRollback;
            }
            if f.now - *since > f.timeouts.recover {
                return Action::Finish(ending(
                    DrillState::Aborted,
                    format!(
                        "the region was not up again {} s after the injection was lifted (a real failure?): the automation keeps traffic where it is. {}",
                        f.timeouts.recover.num_seconds(),
                        e.why
                    ),
                ));
            }
            Action::Wait
        }
        Phase::RollingBack { plan, since, ending: e } => match f.rollback {
            Some(p) if p.id == *plan && p.verified_at.is_some() => Action::Finish(e.clone()),
            Some(p) if p.id == *plan && f.now - *since <= f.timeouts.rollback => Action::Wait,
            Some(_) => Action::Finish(ending(
                DrillState::Failed,
                format!("the rollback was not verified within {} s: {}", f.timeouts.rollback.num_seconds(), e.why),
            )),
            // A newer plan (a real failure's) replaced the rollback: it carries on from there.
            None => Action::Finish(ending(
                DrillState::Aborted,
                format!("a newer plan replaced the rollback (a real failure?): {}", e.why),
            )),
        },
    }
}

/// The measured figures of a synthetic drill, stored in its report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    /// When the failure was injected.
    pub injected_at: Option<DateTime<Utc>>,
    /// Injection → the region seen down by the quorum of vantages, ms.
    pub detected_ms: Option<u64>,
    /// Injection → the automation's plan decided, ms.
    pub decided_ms: Option<u64>,
    /// Injection → the automation's plan verified by read-back on every provider: the RTO, ms.
    pub rto_ms: Option<u64>,
    /// Injection → DNS answers seen to follow the plan, ms.
    pub propagated_ms: Option<u64>,
    /// Injection lifted → the region up again by its real probes, ms.
    pub recovered_ms: Option<u64>,
    /// The automation's plan.
    pub automatic_plan: Option<PlanId>,
    /// The weights it set.
    pub flipped_to: Option<Weights>,
    /// Probes of the region that failed for real while the failure was injected.
    pub real_probe_failures: u64,
    /// A promotion the automation would have requested and did not (synthetic).
    pub promotion_skipped: Option<String>,
}

impl Figures {
    /// Milliseconds from the injection to `at`.
    pub fn since_injection(&self, at: DateTime<Utc>) -> Option<u64> {
        self.injected_at.map(|i| millis_between(i, at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    fn facts(now: i64) -> Facts {
        Facts {
            now: t(now),
            automatic: None,
            rollback: None,
            region_up: false,
            trouble: None,
            hold: chrono::Duration::seconds(5),
            timeouts: Timeouts::default(),
        }
    }

    fn ending(outcome: DrillState) -> Ending {
        Ending { outcome, why: "w".into() }
    }

    #[test]
    fn an_injection_applies_to_its_region_until_its_deadline_only() {
        let i = Injection { drill: DrillId::new(), region: RegionName::new("primary"), until: t(10) };
        assert!(i.applies(&RegionName::new("primary"), t(9)));
        assert!(!i.applies(&RegionName::new("primary"), t(10)));
        assert!(!i.applies(&RegionName::new("standby"), t(9)));
        assert!(i.error(None).contains("synthetic failure injected by drill"));
        assert!(i.error(Some("refused")).contains("failed too: refused"));
    }

    #[test]
    fn the_flip_verified_starts_the_hold_and_the_hold_ends_by_lifting_the_injection() {
        let p = Phase::Injecting { since: t(0) };
        assert_eq!(next(&p, &facts(3)), Action::Wait);
        let sent = Facts { automatic: Some(PlanSeen { id: PlanId::new(), verified_at: None }), ..facts(3) };
        assert_eq!(next(&p, &sent), Action::Wait);
        let verified = Facts { automatic: Some(PlanSeen { id: PlanId::new(), verified_at: Some(t(4)) }), ..facts(4) };
        assert_eq!(next(&p, &verified), Action::Flipped { at: t(4), until: t(9) });
        let hold = Phase::Holding { until: t(9) };
        assert_eq!(next(&hold, &facts(8)), Action::Wait);
        assert!(matches!(next(&hold, &facts(9)), Action::Lift(Ending { outcome: DrillState::Completed, .. })));
    }

    #[test]
    fn no_flip_in_time_fails_and_a_real_failure_aborts() {
        let p = Phase::Injecting { since: t(0) };
        assert!(matches!(next(&p, &facts(121)), Action::Lift(Ending { outcome: DrillState::Failed, .. })));
        let trouble = Facts { trouble: Some("dr is down".into()), ..facts(1) };
        assert!(matches!(next(&p, &trouble), Action::Lift(Ending { outcome: DrillState::Aborted, .. })));
        let hold = Phase::Holding { until: t(9) };
        assert!(matches!(next(&hold, &trouble), Action::Lift(Ending { outcome: DrillState::Aborted, .. })));
    }

    #[test]
    fn the_rollback_waits_for_the_region_up_and_then_for_its_read_back() {
        let rec = Phase::Recovering { since: t(0), ending: ending(DrillState::Completed) };
        assert_eq!(next(&rec, &facts(10)), Action::Wait);
        assert_eq!(next(&rec, &Facts { region_up: true, ..facts(10) }), Action::SendRollback);
        assert!(matches!(next(&rec, &facts(181)), Action::Finish(Ending { outcome: DrillState::Aborted, .. })));
        let id = PlanId::new();
        let rb = Phase::RollingBack { plan: id, since: t(0), ending: ending(DrillState::Completed) };
        let pending = Facts { rollback: Some(PlanSeen { id, verified_at: None }), ..facts(5) };
        assert_eq!(next(&rb, &pending), Action::Wait);
        let done = Facts { rollback: Some(PlanSeen { id, verified_at: Some(t(6)) }), ..facts(6) };
        assert_eq!(next(&rb, &done), Action::Finish(ending(DrillState::Completed)));
        let late = Facts { rollback: Some(PlanSeen { id, verified_at: None }), ..facts(121) };
        assert!(matches!(next(&rb, &late), Action::Finish(Ending { outcome: DrillState::Failed, .. })));
        assert!(matches!(next(&rb, &facts(7)), Action::Finish(Ending { outcome: DrillState::Aborted, .. })));
    }

    #[test]
    fn the_phases_show_as_drill_states_and_only_the_first_two_inject() {
        let e = ending(DrillState::Completed);
        assert!(Phase::Injecting { since: t(0) }.injecting());
        assert!(Phase::Holding { until: t(0) }.injecting());
        assert!(!Phase::Recovering { since: t(0), ending: e.clone() }.injecting());
        assert_eq!(Phase::RollingBack { plan: PlanId::new(), since: t(0), ending: e }.state(), DrillState::RollingBack);
    }
}
