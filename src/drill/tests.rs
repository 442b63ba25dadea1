//! Drill planning, validation, preflight and report: table tests and properties.

use std::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::policy::{Budget, Failback, LagLimit, RegionPolicy};
use crate::region::Role;

fn r(n: &str) -> RegionName {
    RegionName::new(n)
}

fn w(p: u32, s: u32, d: u32) -> Weights {
    Weights::from_pairs([(r("primary"), p), (r("standby"), s), (r("dr"), d)])
}

fn policy() -> Policy {
    let rp = |n: &str, role, weight, max_lag| RegionPolicy { name: r(n), role, normal_weight: weight, max_lag };
    Policy {
        regions: vec![
            rp("primary", Role::Primary, 80, LagLimit::default()),
            rp("standby", Role::Standby, 20, LagLimit { bytes: Some(1000), time: None }),
            rp("dr", Role::Dr, 0, LagLimit::default()),
        ],
        degraded_weight_percent: 50,
        failover_order: vec![r("primary"), r("standby"), r("dr")],
        dwell: Duration::from_secs(30),
        failback: Failback::Auto,
        failback_hold: Duration::from_secs(60),
        failback_step: 20,
        budget: Budget { max: 3, window: Duration::from_secs(3600) },
        quorum: 1,
    }
}

fn input(name: &str, health: Health, lag_bytes: Option<u64>) -> RegionInput {
    RegionInput {
        name: r(name),
        health,
        since: None,
        down_votes: 0,
        vantages: 1,
        lag: lag_bytes.map(|b| LagReading { bytes: Some(b), time: None }),
        maintenance: false,
        notes: vec![],
    }
}

fn req(evacuate: Option<&str>, target: Option<&str>, steps: Option<Vec<i64>>, hold: Option<f64>) -> DrillRequest {
    DrillRequest {
        evacuate: evacuate.map(str::to_string),
        target: target.map(str::to_string),
        steps,
        hold_seconds: hold,
        dry_run: true,
        synthetic_failure: false,
        reason: "game day".into(),
    }
}

fn synthetic(evacuate: Option<&str>) -> DrillRequest {
    DrillRequest { synthetic_failure: true, dry_run: false, ..req(evacuate, None, None, None) }
}

#[test]
fn a_synthetic_drill_names_the_failed_region_and_nothing_the_automation_decides() {
    let p = policy();
    let spec = validate(&p, &synthetic(Some("primary"))).unwrap();
    assert!(spec.synthetic);
    assert_eq!(spec.hold(), super::synthetic::DEFAULT_HOLD);
    assert_eq!(spec.target, None);
    let field = |r: DrillRequest| validate(&p, &r).unwrap_err().field;
    assert_eq!(field(synthetic(None)), "evacuate");
    assert_eq!(field(DrillRequest { target: Some("dr".into()), ..synthetic(Some("primary")) }), "target");
    assert_eq!(field(DrillRequest { steps: Some(vec![50]), ..synthetic(Some("primary")) }), "steps");
    assert_eq!(field(DrillRequest { dry_run: true, ..synthetic(Some("primary")) }), "dry_run");
    assert_eq!(field(DrillRequest { hold_seconds: Some(601.0), ..synthetic(Some("primary")) }), "hold_seconds");
    assert_eq!(field(DrillRequest { reason: " ".into(), ..synthetic(Some("primary")) }), "reason");
}

#[test]
fn evacuating_the_primary_in_two_steps_moves_half_then_all_of_its_share() {
    let steps = plan_steps(&w(80, 20, 0), Some(&r("primary")), &r("standby"), &[50, 100]);
    assert_eq!(steps, vec![w(40, 60, 0), w(0, 100, 0)]);
}

#[test]
fn shifting_to_a_target_takes_from_every_other_region() {
    let steps = plan_steps(&w(80, 20, 0), None, &r("dr"), &[25, 100]);
    assert_eq!(steps, vec![w(60, 15, 25), w(0, 0, 100)]);
}

#[test]
fn validation_names_the_bad_field() {
    let p = policy();
    let cases: Vec<(DrillRequest, &str)> = vec![
        (req(Some("mars"), None, None, None), "evacuate"),
        (req(None, Some("mars"), None, None), "target"),
        (req(None, None, None, None), "evacuate"),
        (req(Some("primary"), Some("primary"), None, None), "target"),
        (req(Some("primary"), None, Some(vec![50, 150]), None), "steps[1]"),
        (req(Some("primary"), None, Some(vec![0]), None), "steps[0]"),
        (req(Some("primary"), None, Some(vec![50, 20, 50]), None), "steps[2]"),
        (req(Some("primary"), None, Some(vec![]), None), "steps"),
        (req(Some("primary"), None, None, Some(-1.0)), "hold_seconds"),
        (req(Some("primary"), None, None, Some(f64::NAN)), "hold_seconds"),
        (DrillRequest { reason: "  ".into(), ..req(Some("primary"), None, None, None) }, "reason"),
        (DrillRequest { reason: format!(" {} ", "x".repeat(499)), ..req(Some("primary"), None, None, None) }, "reason"),
    ];
    for (rq, field) in cases {
        let e = validate(&p, &rq).expect_err(&format!("{rq:?} should be refused"));
        assert_eq!(e.field, field, "{rq:?}: {e}");
    }
    let ok = validate(&p, &req(Some("primary"), Some("standby"), Some(vec![50, 100]), Some(1.5))).unwrap();
    assert_eq!(ok.steps, vec![50, 100]);
    assert_eq!(ok.hold(), Duration::from_millis(1500));
    assert_eq!(validate(&p, &req(Some("primary"), None, None, None)).unwrap().steps, vec![100]);
    // Steps are a set of percentages: written in any order, moved through in increasing order.
    let unordered = validate(&p, &req(Some("primary"), None, Some(vec![100, 25, 50]), None)).unwrap();
    assert_eq!(unordered.steps, vec![25, 50, 100]);
    // A reason is counted in characters, not bytes: 500 three-byte characters pass.
    let wide = DrillRequest { reason: "漢".repeat(500), ..req(Some("primary"), None, None, None) };
    assert_eq!(validate(&p, &wide).unwrap().reason.chars().count(), 500);
}

#[test]
fn the_default_target_is_the_first_up_region_within_its_lag_limit() {
    let p = policy();
    let up =
        [input("primary", Health::Up, None), input("standby", Health::Up, Some(10)), input("dr", Health::Up, None)];
    assert_eq!(choose_target(&p, &up, Some(&r("primary"))), Some(r("standby")));
    let lagging =
        [input("primary", Health::Up, None), input("standby", Health::Up, Some(5000)), input("dr", Health::Up, None)];
    assert_eq!(choose_target(&p, &lagging, Some(&r("primary"))), Some(r("dr")));
    let down =
        [input("primary", Health::Up, None), input("standby", Health::Down, None), input("dr", Health::Degraded, None)];
    assert_eq!(choose_target(&p, &down, Some(&r("primary"))), None);
}

#[test]
fn preflight_refuses_with_every_reason() {
    let target = input("standby", Health::Degraded, Some(5000));
    let pol = policy();
    let why = preflight(&Preflight {
        leader: false,
        busy: Some("drill 1".into()),
        not_normal: Some("primary is down".into()),
        target: Some(&target),
        policy: &pol,
        evacuate_weight: Some(0),
    });
    assert_eq!(why.len(), 6, "{why:?}");
    assert!(why.iter().any(|w| w.contains("not the leader")));
    assert!(why.iter().any(|w| w.contains("drill 1 is in progress")));
    assert!(why.iter().any(|w| w.contains("real failover")));
    assert!(why.iter().any(|w| w.contains("degraded, not up")));
    assert!(why.iter().any(|w| w.contains("max_lag_on_failover") && w.contains("5000 bytes")));
    assert!(why.iter().any(|w| w.contains("nothing to shift")));
}

#[test]
fn preflight_passes_a_healthy_target_within_its_limit() {
    let target = input("standby", Health::Up, Some(10));
    let pol = policy();
    let why = preflight(&Preflight {
        leader: true,
        busy: None,
        not_normal: None,
        target: Some(&target),
        policy: &pol,
        evacuate_weight: Some(80),
    });
    assert!(why.is_empty(), "{why:?}");
}

#[test]
fn the_report_keeps_the_worst_lag_and_the_rpo_it_implies() {
    let mut rep = DrillReport::default();
    rep.note_lag(&LagReading { bytes: Some(100), time: Some(Duration::from_millis(200)) });
    rep.note_lag(&LagReading { bytes: Some(50), time: Some(Duration::from_millis(900)) });
    assert_eq!(rep.max_lag_bytes, Some(100));
    assert_eq!(rep.max_lag_seconds, Some(0.9));
    assert_eq!(rep.rpo.as_deref(), Some("≤ 0.900 s of transactions, ≤ 100 bytes of WAL"));
    for i in 0..(MAX_REPORTED_ERRORS + 5) {
        rep.note_error(format!("e{i}"));
    }
    assert_eq!(rep.errors.len(), MAX_REPORTED_ERRORS);
    assert_eq!(rep.error_count, MAX_REPORTED_ERRORS as u64 + 5);
}

#[test]
fn drill_states_round_trip_their_stored_names() {
    for s in ["shifting", "holding", "rolling_back", "completed", "aborted", "failed", "interrupted", "dry_run"] {
        assert_eq!(DrillState::parse(s).map(|d| d.as_str()), Some(s));
    }
    assert!(DrillState::Completed.is_final());
    assert!(!DrillState::Holding.is_final());
}

proptest! {
    #![proptest_config(crate::proptest_cases::safety())]

    /// Every step keeps the sum at 100, only ever moves weight onto the target,
    /// and the steps move monotonically more.
    #[test]
    fn steps_keep_the_sum_and_move_only_toward_the_target(
        p in 0u32..=100, s_frac in 0u32..=100, raw in proptest::collection::btree_set(1u32..=100, 1..5),
        evac in 0usize..3, offset in 1usize..3,
    ) {
        // The target differs from the evacuated region by construction: a `prop_assume!` here
        // rejected a third of the cases, and at 10 000 cases proptest gave up (too many rejects).
        let tgt = (evac + offset) % 3;
        let s = (100 - p) * s_frac / 100;
        let base = w(p, s, 100 - p - s);
        let names = [r("primary"), r("standby"), r("dr")];
        let steps: Vec<u32> = raw.into_iter().collect();
        for evacuate in [Some(&names[evac]), None] {
            let planned = plan_steps(&base, evacuate, &names[tgt], &steps);
            let mut prev = base.get(&names[tgt]);
            for wts in &planned {
                prop_assert_eq!(wts.total(), 100);
                prop_assert!(wts.get(&names[tgt]) >= prev);
                prev = wts.get(&names[tgt]);
                for n in names.iter().filter(|n| **n != names[tgt]) {
                    prop_assert!(wts.get(n) <= base.get(n));
                }
            }
            // The last step at 100 % empties every source.
            if steps.last() == Some(&100) {
                let last = planned.last().unwrap();
                match evacuate {
                    Some(e) => prop_assert_eq!(last.get(e), 0),
                    None => prop_assert_eq!(last.get(&names[tgt]), 100),
                }
            }
        }
    }
}
