//! The live drill's phase machine: phase + facts → the next action. PURE.
//!
//! A live drill goes *shifting* (a step's plan sent, waiting for every provider's
//! read-back) → *holding* (the step verified, the target watched until the hold
//! ends) → the next step, or *rolling back* (the baseline plan sent, waiting for
//! its read-back) → finished. [`next`] looks at where the drill is and what the
//! engine knows now (the current plan and when it was verified, the target's
//! health and lag, `now`) and says what to do; the engine only executes the
//! [`Action`]: sends plans, records the timeline, persists the drill.
//!
//! Nothing here reads a clock, sends a plan or records anything.

use chrono::{DateTime, Duration, Utc};

use super::{DrillState, millis_between};
use crate::health::Health;
use crate::lag::LagReading;
use crate::plan::PlanId;
use crate::policy::LagLimit;
use crate::region::RegionName;

/// Longest wait for a drill step's plan to be verified by every provider.
pub const STEP_VERIFY_TIMEOUT: Duration = Duration::seconds(30);
/// Longest wait for a drill's rollback to be verified before it is reported failed.
pub const ROLLBACK_VERIFY_TIMEOUT: Duration = Duration::seconds(60);

/// Where a live drill is.
#[derive(Debug, Clone, PartialEq)]
pub enum Phase {
    /// Step `step`'s plan was sent at `since`; waiting for its read-back.
    Shifting {
        /// The step, 0-based.
        step: u32,
        /// The plan carrying it.
        plan: PlanId,
        /// When it was sent.
        since: DateTime<Utc>,
    },
    /// Step `step` is verified and held until `until`.
    Holding {
        /// The step, 0-based.
        step: u32,
        /// When the hold ends.
        until: DateTime<Utc>,
    },
    /// Returning to the baseline; the drill then ends as `outcome`, because of `why`.
    RollingBack {
        /// The plan carrying the rollback; `None` until it is sent (start-up, or a
        /// safety move whose plan is the rollback).
        plan: Option<PlanId>,
        /// When the rollback was decided (or its plan sent).
        since: DateTime<Utc>,
        /// How the drill ends once the rollback is verified.
        outcome: DrillState,
        /// Why it ends.
        why: String,
    },
}

impl Phase {
    /// A drill the previous run left at `state` (step `step`): rolled back by the first plan.
    pub fn interrupted(state: DrillState, step: Option<u32>, now: DateTime<Utc>) -> Self {
        let why = format!(
            "the orchestrator restarted while the drill was {state} (step {}); rolled back at start-up",
            step.map(|s| (s + 1).to_string()).unwrap_or_else(|| "-".into())
        );
        Phase::RollingBack { plan: None, since: now, outcome: DrillState::Interrupted, why }
    }

    /// A plan was just sent by the decision loop: it carries a rollback still waiting for one.
    pub fn adopt_sent_plan(&mut self, sent: PlanId, now: DateTime<Utc>) {
        if let Phase::RollingBack { plan: p @ None, since, .. } = self {
            *p = Some(sent);
            *since = now;
        }
    }

    /// When the current hold ends, while holding.
    pub fn hold_until(&self) -> Option<DateTime<Utc>> {
        match self {
            Phase::Holding { until, .. } => Some(*until),
            _ => None,
        }
    }

    /// Whether the drill is returning to its baseline.
    pub fn rolling_back(&self) -> bool {
        matches!(self, Phase::RollingBack { .. })
    }
}

/// How a drill ends once its rollback is verified, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rollback {
    /// The final state.
    pub outcome: DrillState,
    /// The sentence recorded as the outcome's reason.
    pub why: String,
}

/// The drill's target as the engine sees it now.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// The region.
    pub name: RegionName,
    /// Its health (`Unknown` when never observed).
    pub health: Health,
    /// Its latest replication lag.
    pub lag: Option<LagReading>,
    /// Its `max_lag_on_failover`.
    pub limit: LagLimit,
}

/// The current plan: its id and when every provider verified it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CurrentPlan {
    /// The plan.
    pub id: PlanId,
    /// When verified on every provider, once it is.
    pub verified_at: Option<DateTime<Utc>>,
}

/// How long the engine waits for read-backs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// For a step's plan.
    pub step_verify: Duration,
    /// For the rollback's plan.
    pub rollback_verify: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self { step_verify: STEP_VERIFY_TIMEOUT, rollback_verify: ROLLBACK_VERIFY_TIMEOUT }
    }
}

/// Everything [`next`] looks at besides the phase.
#[derive(Debug, Clone, PartialEq)]
pub struct Facts {
    /// The current plan, if one was sent.
    pub current: Option<CurrentPlan>,
    /// The drill's target (None: the drill names none, nothing to watch).
    pub target: Option<Target>,
    /// The only clock.
    pub now: DateTime<Utc>,
    /// The hold per step.
    pub hold: Duration,
    /// The number of steps.
    pub steps: u32,
    /// Read-back timeouts.
    pub timeouts: Timeouts,
}

/// What to do after a hold ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterHold {
    /// Send this step's plan.
    SendStep(u32),
    /// That was the last step: roll back.
    RollBack(Rollback),
}

/// What the engine must do now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Nothing yet.
    Wait,
    /// The step's plan was verified at `at`: count it, hold it until `hold_until`.
    StepVerified {
        /// The step, 0-based.
        step: u32,
        /// When every provider verified it.
        at: DateTime<Utc>,
        /// When the hold ends.
        hold_until: DateTime<Utc>,
    },
    /// The step was held long enough: record it, then go on.
    HoldDone {
        /// The step held, 0-based.
        step: u32,
        /// What follows.
        then: AfterHold,
    },
    /// Stop the drill: send the baseline and end as the rollback says once verified.
    RollBack(Rollback),
    /// The rollback was verified at `at`: the drill ends as `outcome`.
    RollbackVerified {
        /// When every provider verified it.
        at: DateTime<Utc>,
        /// Rollback decided → verified.
        time_to_rollback_ms: u64,
        /// The final state.
        outcome: DrillState,
        /// Why.
        why: String,
    },
    /// The rollback was not verified in time: the drill ends failed, with this reason.
    RollbackFailed {
        /// Why.
        why: String,
    },
    /// A newer plan (a safety move) carries the rollback now: wait for that one.
    Adopt(PlanId),
}

/// Why the drill must stop now (target not up, lag over its limit), if it must.
pub fn watch(target: &Target) -> Option<String> {
    let name = &target.name;
    if target.health != Health::Up {
        return Some(format!("target {name} became {}", target.health));
    }
    target.limit.admits(target.lag.as_ref()).err().map(|e| format!("target {name} crossed max_lag_on_failover: {e}"))
}

/// The next action of a drill at `phase`, given what the engine knows now.
pub fn next(phase: &Phase, f: &Facts) -> Action {
    let abort = || f.target.as_ref().and_then(watch).map(|why| Action::RollBack(aborted(why)));
    match phase {
        Phase::Shifting { step, plan, since } => {
            if let Some(a) = abort() {
                return a;
            }
            match f.current {
                Some(CurrentPlan { id, verified_at: Some(at) }) if id == *plan => {
                    Action::StepVerified { step: *step, at, hold_until: f.now + f.hold }
                }
                Some(CurrentPlan { id, .. }) if id != *plan => {
                    Action::RollBack(failed(format!("step {}'s plan was superseded", step + 1)))
                }
                _ if f.now - *since > f.timeouts.step_verify => Action::RollBack(failed(format!(
                    "step {} was not verified by every provider within {} s",
                    step + 1,
                    f.timeouts.step_verify.num_seconds()
                ))),
                _ => Action::Wait,
            }
        }
        Phase::Holding { step, until } => {
            if let Some(a) = abort() {
                return a;
            }
            if f.now < *until {
                return Action::Wait;
            }
            let then = if step + 1 < f.steps {
                AfterHold::SendStep(step + 1)
            } else {
                AfterHold::RollBack(Rollback { outcome: DrillState::Completed, why: "every step held".into() })
            };
            Action::HoldDone { step: *step, then }
        }
        Phase::RollingBack { plan: Some(plan), since, outcome, why } => match f.current {
            Some(CurrentPlan { id, verified_at: Some(at) }) if id == *plan => Action::RollbackVerified {
                at,
                time_to_rollback_ms: millis_between(*since, at),
                outcome: *outcome,
                why: why.clone(),
            },
            Some(CurrentPlan { id, .. }) if id != *plan => Action::Adopt(id),
            _ if f.now - *since > f.timeouts.rollback_verify => Action::RollbackFailed {
                why: format!(
                    "{why}; the rollback was not verified within {} s (the applier keeps retrying)",
                    f.timeouts.rollback_verify.num_seconds()
                ),
            },
            _ => Action::Wait,
        },
        // The plan carrying the rollback is sent by the decision loop; nothing to watch yet.
        Phase::RollingBack { plan: None, .. } => Action::Wait,
    }
}

/// A real failure moved traffic toward safety during the drill: the safety plan is the
/// rollback. A drill already rolling back keeps the outcome it was heading for.
pub fn on_safety_move(phase: &Phase, detail: String) -> Rollback {
    match phase {
        Phase::RollingBack { outcome, why, .. } => Rollback { outcome: *outcome, why: why.clone() },
        _ => aborted(detail),
    }
}

fn aborted(why: String) -> Rollback {
    Rollback { outcome: DrillState::Aborted, why }
}

fn failed(why: String) -> Rollback {
    Rollback { outcome: DrillState::Failed, why }
}

#[cfg(test)]
mod tests;
