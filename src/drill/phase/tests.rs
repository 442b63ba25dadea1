//! One table test per transition of the drill's phase machine.

use chrono::TimeZone;

use super::*;
use crate::plan::PlanId;

fn t(s: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000 + s, 0).single().expect("valid timestamp")
}

fn plan(n: u128) -> PlanId {
    PlanId(uuid::Uuid::from_u128(n))
}

fn up_target() -> Target {
    Target {
        name: RegionName::new("standby"),
        health: Health::Up,
        lag: Some(LagReading { bytes: Some(10), time: None }),
        limit: LagLimit { bytes: Some(1000), time: None },
    }
}

/// Two steps, a 30 s hold, `now` = t(100), the target up and within its lag limit.
fn facts(current: Option<CurrentPlan>) -> Facts {
    Facts {
        current,
        target: Some(up_target()),
        now: t(100),
        hold: Duration::seconds(30),
        steps: 2,
        timeouts: Timeouts::default(),
    }
}

fn sent(id: u128) -> Option<CurrentPlan> {
    Some(CurrentPlan { id: plan(id), verified_at: None })
}

fn verified(id: u128, at: i64) -> Option<CurrentPlan> {
    Some(CurrentPlan { id: plan(id), verified_at: Some(t(at)) })
}

fn shifting(step: u32, id: u128, since: i64) -> Phase {
    Phase::Shifting { step, plan: plan(id), since: t(since) }
}

fn rolling_back(id: Option<u128>, since: i64) -> Phase {
    Phase::RollingBack {
        plan: id.map(plan),
        since: t(since),
        outcome: DrillState::Completed,
        why: "every step held".into(),
    }
}

fn rollback(outcome: DrillState, why: &str) -> Action {
    Action::RollBack(Rollback { outcome, why: why.into() })
}

#[test]
fn step_plan_not_yet_verified_waits() {
    assert_eq!(next(&shifting(0, 1, 95), &facts(sent(1))), Action::Wait);
}

#[test]
fn step_plan_verified_starts_the_hold_from_now() {
    let a = next(&shifting(0, 1, 95), &facts(verified(1, 98)));
    assert_eq!(a, Action::StepVerified { step: 0, at: t(98), hold_until: t(130) });
}

#[test]
fn superseded_step_plan_fails_the_drill() {
    let a = next(&shifting(1, 1, 95), &facts(sent(2)));
    assert_eq!(a, rollback(DrillState::Failed, "step 2's plan was superseded"));
}

#[test]
fn superseded_step_plan_fails_the_drill_even_when_the_newer_plan_is_verified() {
    let a = next(&shifting(0, 1, 95), &facts(verified(2, 99)));
    assert_eq!(a, rollback(DrillState::Failed, "step 1's plan was superseded"));
}

#[test]
fn step_not_verified_within_thirty_seconds_fails_the_drill() {
    let a = next(&shifting(0, 1, 69), &facts(sent(1)));
    assert_eq!(a, rollback(DrillState::Failed, "step 1 was not verified by every provider within 30 s"));
}

#[test]
fn step_exactly_thirty_seconds_old_still_waits() {
    assert_eq!(next(&shifting(0, 1, 70), &facts(sent(1))), Action::Wait);
}

#[test]
fn step_with_no_current_plan_times_out_like_an_unverified_one() {
    assert_eq!(next(&shifting(0, 1, 90), &facts(None)), Action::Wait);
    let a = next(&shifting(0, 1, 60), &facts(None));
    assert_eq!(a, rollback(DrillState::Failed, "step 1 was not verified by every provider within 30 s"));
}

#[test]
fn target_going_down_while_shifting_aborts_the_drill() {
    let mut f = facts(verified(1, 98));
    f.target = Some(Target { health: Health::Down, ..up_target() });
    assert_eq!(next(&shifting(0, 1, 95), &f), rollback(DrillState::Aborted, "target standby became down"));
}

#[test]
fn target_lag_over_its_limit_while_holding_aborts_the_drill() {
    let mut f = facts(verified(1, 98));
    f.target = Some(Target { lag: Some(LagReading { bytes: Some(5000), time: None }), ..up_target() });
    let Action::RollBack(r) = next(&Phase::Holding { step: 0, until: t(200) }, &f) else {
        panic!("expected a rollback");
    };
    assert_eq!(r.outcome, DrillState::Aborted);
    assert!(r.why.starts_with("target standby crossed max_lag_on_failover: "), "{}", r.why);
}

#[test]
fn degraded_target_aborts_the_drill_too() {
    let mut f = facts(verified(1, 98));
    f.target = Some(Target { health: Health::Degraded, ..up_target() });
    let a = next(&Phase::Holding { step: 0, until: t(200) }, &f);
    assert_eq!(a, rollback(DrillState::Aborted, "target standby became degraded"));
}

#[test]
fn drill_without_a_target_is_not_watched() {
    let mut f = facts(verified(1, 98));
    f.target = None;
    assert_eq!(next(&Phase::Holding { step: 0, until: t(200) }, &f), Action::Wait);
}

#[test]
fn hold_not_over_waits() {
    assert_eq!(next(&Phase::Holding { step: 0, until: t(101) }, &facts(verified(1, 98))), Action::Wait);
}

#[test]
fn hold_done_on_a_middle_step_sends_the_next_step() {
    let a = next(&Phase::Holding { step: 0, until: t(100) }, &facts(verified(1, 98)));
    assert_eq!(a, Action::HoldDone { step: 0, then: AfterHold::SendStep(1) });
}

#[test]
fn hold_done_on_last_step_rolls_back_completed() {
    let a = next(&Phase::Holding { step: 1, until: t(90) }, &facts(verified(2, 60)));
    let then = AfterHold::RollBack(Rollback { outcome: DrillState::Completed, why: "every step held".into() });
    assert_eq!(a, Action::HoldDone { step: 1, then });
}

#[test]
fn rollback_waiting_for_its_plan_waits() {
    assert_eq!(next(&rolling_back(None, 0), &facts(verified(1, 98))), Action::Wait);
}

#[test]
fn rollback_not_yet_verified_waits() {
    assert_eq!(next(&rolling_back(Some(3), 90), &facts(sent(3))), Action::Wait);
}

#[test]
fn rollback_verified_finishes_with_its_outcome_and_time() {
    let a = next(&rolling_back(Some(3), 90), &facts(verified(3, 92)));
    assert_eq!(
        a,
        Action::RollbackVerified {
            at: t(92),
            time_to_rollback_ms: 2000,
            outcome: DrillState::Completed,
            why: "every step held".into()
        }
    );
}

#[test]
fn rollback_superseded_by_a_safety_plan_adopts_it() {
    assert_eq!(next(&rolling_back(Some(3), 90), &facts(sent(4))), Action::Adopt(plan(4)));
}

#[test]
fn rollback_not_verified_within_sixty_seconds_fails_the_drill() {
    let a = next(&rolling_back(Some(3), 39), &facts(sent(3)));
    let why = "every step held; the rollback was not verified within 60 s (the applier keeps retrying)";
    assert_eq!(a, Action::RollbackFailed { why: why.into() });
}

#[test]
fn rollback_is_not_aborted_by_a_bad_target() {
    let mut f = facts(sent(3));
    f.target = Some(Target { health: Health::Down, ..up_target() });
    assert_eq!(next(&rolling_back(Some(3), 90), &f), Action::Wait);
}

#[test]
fn timeouts_are_parameters() {
    let mut f = facts(sent(1));
    f.timeouts.step_verify = Duration::seconds(5);
    let a = next(&shifting(0, 1, 94), &f);
    assert_eq!(a, rollback(DrillState::Failed, "step 1 was not verified by every provider within 5 s"));
}

#[test]
fn safety_move_aborts_a_shifting_or_holding_drill() {
    let r = on_safety_move(&Phase::Holding { step: 0, until: t(200) }, "primary is down".into());
    assert_eq!(r, Rollback { outcome: DrillState::Aborted, why: "primary is down".into() });
}

#[test]
fn safety_move_during_a_rollback_keeps_its_outcome() {
    let r = on_safety_move(&rolling_back(Some(3), 90), "primary is down".into());
    assert_eq!(r, Rollback { outcome: DrillState::Completed, why: "every step held".into() });
}

#[test]
fn a_sent_plan_becomes_the_pending_rollback_plan() {
    let mut p = rolling_back(None, 0);
    p.adopt_sent_plan(plan(7), t(50));
    assert_eq!(p, rolling_back(Some(7), 50));
    // A rollback that already has its plan keeps it.
    p.adopt_sent_plan(plan(8), t(60));
    assert_eq!(p, rolling_back(Some(7), 50));
}

#[test]
fn an_interrupted_drill_rolls_back_and_says_where_it_was() {
    let p = Phase::interrupted(DrillState::Holding, Some(1), t(0));
    let why = "the orchestrator restarted while the drill was holding (step 2); rolled back at start-up";
    assert_eq!(p, Phase::RollingBack { plan: None, since: t(0), outcome: DrillState::Interrupted, why: why.into() });
    assert!(p.rolling_back());
    assert_eq!(p.hold_until(), None);
}

#[test]
fn hold_end_is_shown_only_while_holding() {
    assert_eq!(Phase::Holding { step: 0, until: t(9) }.hold_until(), Some(t(9)));
    assert_eq!(shifting(0, 1, 0).hold_until(), None);
}
