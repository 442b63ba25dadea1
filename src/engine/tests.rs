//! Unit tests of the engine: real channels, a fake clock, no database, a fake applier.
//!
//! Time is passed explicitly (`step(now)`, the `at` of observations and reports), the
//! store is an in-memory writer that acknowledges every write, and the "applier" reads
//! the plan the engine published on its `plans` watch and feeds reports back through
//! `on_report`, as the real applier does.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use tokio::sync::{mpsc, watch};

use super::{Engine, EngineChannels, Resume};
use crate::alarm::{AlarmKey, AlarmKind};
use crate::breaker::BreakerPhase;
use crate::config::Config;
use crate::coord::Leadership;
use crate::drill::{self, DrillRequest, DrillState};
use crate::metrics::Metrics;
use crate::observation::{Observation, Outcome};
use crate::plan::{Epoch, PlanKind, TrafficPlan, Weights};
use crate::region::{CheckId, Layer, RegionName};
use crate::status::{Acting, Status};
use crate::store::records::Write;
use crate::store::writer::{MemoryWriter, StoreStatus};
use crate::traffic::applier::{ApplyReport, ApplyResult};

/// Three regions (80 / 20 / 0), one TCP check each going down on the first failure,
/// two file providers so that "verified on every provider" means two reports.
fn config_text() -> String {
    let mut text = String::from(
        r#"
[orchestrator]
vantage = "primary"
listen = "127.0.0.1:0"
store_dsn = "postgres://fo@127.0.0.1:1/fo"

[policy]
failover_order = ["primary", "standby", "dr"]
dwell = "30s"
failback = "manual"
failback_hold = "1m"
"#,
    );
    for (i, (name, weight)) in [("primary", 80), ("standby", 20), ("dr", 0)].into_iter().enumerate() {
        text += &format!(
            "\n[[regions]]\nname = \"{name}\"\nrole = \"{name}\"\nweight = {weight}\n\
             [[regions.checks]]\nname = \"tcp\"\nlayer = \"infra\"\ntype = \"tcp\"\n\
             target = \"127.0.0.1:{}\"\nfall = 1\nrise = 1\n",
            i + 1
        );
    }
    for p in PROVIDERS {
        text += &format!("\n[[providers]]\ntype = \"file\"\nname = \"{p}\"\npath = \"/nonexistent/{p}.json\"\n");
    }
    text
}

const PROVIDERS: [&str; 2] = ["a", "b"];

/// The fake clock: `t(s)` is `s` seconds after a fixed instant.
fn t(s: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000 + s, 0).single().expect("valid timestamp")
}

fn rn(s: &str) -> RegionName {
    RegionName::new(s)
}

fn w(p: u32, s: u32, d: u32) -> Weights {
    Weights::from_pairs([(rn("primary"), p), (rn("standby"), s), (rn("dr"), d)])
}

/// The status published before the engine's first snapshot.
fn empty_status(config: &Config) -> Status {
    Status {
        generated_at: t(0),
        vantage: config.orchestrator.vantage.clone(),
        leadership: Leadership { leader: true, epoch: Epoch(7) },
        regions: Vec::new(),
        plan: None,
        acting: Acting { active: false, reasons: vec!["starting".into()], decided_at: None },
        alarms: Vec::new(),
        store: StoreStatus::default(),
        drift: Vec::new(),
        failed_over: false,
        writer: rn("primary"),
        promotion: Vec::new(),
        drill: None,
        operator_hold: None,
    }
}

/// An engine with its channels' other ends, the in-memory store and the plan watch.
struct Harness {
    engine: Engine,
    store: MemoryWriter,
    plans: watch::Receiver<Option<TrafficPlan>>,
    // Kept so that the engine's receivers stay open.
    _senders: (mpsc::Sender<Observation>, mpsc::Sender<ApplyReport>, mpsc::Sender<super::Command>),
}

impl Harness {
    /// A leading engine whose regions were all seen up at `t(0)`, with the start-up plan
    /// sent and verified on both providers.
    async fn started() -> Self {
        let mut h = Self::new();
        for r in ["primary", "standby", "dr"] {
            h.observe(r, Outcome::Ok, t(0));
        }
        let first = h.engine.step(t(0)).await.expect("the start-up plan");
        assert_eq!(first.kind, PlanKind::Normal);
        h.apply_all(t(0));
        h
    }

    fn new() -> Self {
        let no_env = |_: &str| None;
        let config = Arc::new(Config::parse(&config_text(), "engine-test.toml", &no_env).expect("valid test config"));
        let (store, handle) = MemoryWriter::start();
        let (obs_tx, observations) = mpsc::channel(16);
        let (rep_tx, reports) = mpsc::channel(16);
        let (cmd_tx, commands) = mpsc::channel(16);
        let (_lag_tx, lag) = mpsc::channel(16);
        let (_steps_tx, promotion_steps) = mpsc::channel(16);
        let (plans_tx, plans) = watch::channel(None);
        let (status, _) = watch::channel(Arc::new(empty_status(&config)));
        let ch = EngineChannels {
            observations,
            reports,
            commands,
            lag,
            replication: None,
            promotion_steps,
            plans: plans_tx,
            status,
            notify: None,
        };
        let leadership = Leadership { leader: true, epoch: Epoch(7) };
        let engine = Engine::new(config, leadership, handle, ch, Arc::new(Metrics::new()), Resume::default());
        Self { engine, store, plans, _senders: (obs_tx, rep_tx, cmd_tx) }
    }

    fn observe(&mut self, region: &str, outcome: Outcome, at: DateTime<Utc>) {
        let error = (outcome != Outcome::Ok).then(|| "connection refused".to_string());
        self.engine.on_observation(Observation {
            check: CheckId { region: rn(region), name: "tcp".into() },
            layer: Layer::Infra,
            outcome,
            latency: Duration::from_millis(2),
            error,
            detail: None,
            vantage: rn("primary"),
            at,
        });
    }

    /// The plan the engine last published to the applier.
    fn published(&self) -> TrafficPlan {
        self.plans.borrow().clone().expect("a plan was published")
    }

    /// One provider's report on the published plan.
    fn report(&mut self, provider: &str, result: ApplyResult, at: DateTime<Utc>) {
        let plan = self.published();
        self.engine.on_report(ApplyReport {
            plan_id: plan.id,
            provider: provider.into(),
            result,
            attempts: 1,
            elapsed: Duration::from_millis(5),
            at,
            breaker: BreakerPhase::Closed,
            propagation: None,
        });
    }

    /// The fake applier: every provider applies and reads back the published plan.
    fn apply_all(&mut self, at: DateTime<Utc>) {
        for p in PROVIDERS {
            self.report(p, ApplyResult::Verified, at);
        }
    }

    fn verified_at(&self) -> Option<DateTime<Utc>> {
        self.engine.plan.as_ref().and_then(|p| p.verified_at)
    }

    fn alarm_kinds(&self) -> Vec<AlarmKind> {
        self.engine.alarms.keys().map(|k| k.kind).collect()
    }

    /// Kinds of the drill timeline events written so far, in order.
    async fn drill_events(&self) -> Vec<String> {
        tokio::task::yield_now().await;
        self.store
            .writes()
            .into_iter()
            .filter_map(|w| match w {
                Write::DrillEvent(e) => Some(e.kind.to_string()),
                _ => None,
            })
            .collect()
    }

    /// The last drill row written.
    async fn last_drill_row(&self) -> drill::DrillRecord {
        tokio::task::yield_now().await;
        self.store
            .writes()
            .into_iter()
            .rev()
            .filter_map(|w| match w {
                Write::Drill(d) => Some(*d),
                _ => None,
            })
            .next()
            .expect("a drill row was written")
    }

    async fn start_drill(&mut self, evacuate: &str, hold_seconds: f64, now: DateTime<Utc>) {
        let req = DrillRequest {
            evacuate: Some(evacuate.into()),
            steps: Some(vec![100]),
            hold_seconds: Some(hold_seconds),
            reason: "game day".into(),
            ..Default::default()
        };
        let spec = drill::validate(&self.engine.config.policy, &req).expect("valid drill");
        self.engine.start_drill(spec, "tester".into(), now).await.expect("drill accepted");
    }
}

#[tokio::test]
async fn a_region_seen_down_produces_one_failover_plan_with_the_structured_reason() {
    let mut h = Harness::started().await;
    h.observe("primary", Outcome::Failed, t(10));
    let plan = h.engine.step(t(10)).await.expect("a failover plan");
    assert_eq!(plan.kind, PlanKind::Failover);
    assert_eq!(plan.weights, w(0, 100, 0));
    assert_eq!(plan.reason, "primary is down: moving its 80 points to standby");
    assert_eq!(h.published().id, plan.id);
    let decision = &h.engine.decision.as_ref().expect("a decision").1;
    assert_eq!(decision.moves.len(), 1);
    assert_eq!(decision.moves[0].from, Some(rn("primary")));
    assert_eq!(decision.moves[0].to, rn("standby"));
    assert_eq!(decision.moves[0].points, 80);
    // Nothing changed since: no second plan.
    assert!(h.engine.step(t(11)).await.is_none());
    assert!(h.engine.step(t(12)).await.is_none());
    assert_eq!(h.published().id, plan.id);
}

#[tokio::test]
async fn a_report_verified_on_every_provider_marks_the_plan_verified_and_clears_nothing_else() {
    let mut h = Harness::started().await;
    h.observe("dr", Outcome::Failed, t(5));
    assert!(h.engine.step(t(5)).await.is_none(), "dr serves nothing: no plan, only an alarm");
    h.observe("primary", Outcome::Failed, t(10));
    h.engine.step(t(10)).await.expect("a failover plan");
    let before = h.alarm_kinds();
    assert!(before.contains(&AlarmKind::RegionDown), "{before:?}");
    h.report("a", ApplyResult::Verified, t(11));
    assert_eq!(h.verified_at(), None, "one provider of two is not every provider");
    h.report("b", ApplyResult::Verified, t(12));
    assert_eq!(h.verified_at(), Some(t(12)));
    assert_eq!(h.alarm_kinds(), before, "verification clears no alarm it did not raise");
}

#[tokio::test]
async fn a_failed_report_raises_provider_failing_and_a_later_verified_one_clears_it() {
    let mut h = Harness::started().await;
    h.observe("primary", Outcome::Failed, t(10));
    h.engine.step(t(10)).await.expect("a failover plan");
    h.report("a", ApplyResult::Failed { error: "disk full".into(), will_retry: true }, t(11));
    let key = AlarmKey::global(AlarmKind::ProviderFailing);
    let alarm = h.engine.alarms.get(&key).expect("provider_failing raised");
    assert!(alarm.message.starts_with("provider a failed to apply plan"), "{}", alarm.message);
    // Provider b verifying is not enough: a has not applied the plan yet.
    h.report("b", ApplyResult::Verified, t(12));
    assert!(h.engine.alarms.contains_key(&key));
    h.report("a", ApplyResult::Verified, t(13));
    assert!(!h.engine.alarms.contains_key(&key), "cleared once every provider verified");
    assert_eq!(h.verified_at(), Some(t(13)));
    tokio::task::yield_now().await;
    let cleared = h.store.writes().iter().filter(|w| matches!(w, Write::AlarmCleared { .. })).count();
    assert_eq!(cleared, 1);
}

#[tokio::test]
async fn a_live_drill_walks_shift_verified_hold_rollback_finished() {
    let mut h = Harness::started().await;
    h.start_drill("primary", 10.0, t(100)).await;
    let step = h.published();
    assert_eq!(step.kind, PlanKind::Drill);
    assert_eq!(step.weights, w(0, 100, 0));
    assert_eq!(h.engine.drill.as_ref().map(|d| d.record.state), Some(DrillState::Shifting));

    // Not yet verified: still shifting.
    assert!(h.engine.step(t(101)).await.is_none());
    assert_eq!(h.engine.drill.as_ref().map(|d| d.record.state), Some(DrillState::Shifting));

    // Verified by both providers: holding until 10 s after the step that saw it.
    h.apply_all(t(102));
    h.engine.step(t(103)).await;
    let d = h.engine.drill.as_ref().expect("drill running");
    assert_eq!(d.record.state, DrillState::Holding);
    assert_eq!(d.status().hold_until, Some(t(113)));
    assert_eq!(d.record.report.time_to_shift_ms, Some(2000));

    // The hold is not over yet.
    h.engine.step(t(112)).await;
    assert_eq!(h.engine.drill.as_ref().map(|d| d.record.state), Some(DrillState::Holding));

    // The hold ends: the baseline goes out as the rollback.
    h.engine.step(t(113)).await;
    assert_eq!(h.engine.drill.as_ref().map(|d| d.record.state), Some(DrillState::RollingBack));
    let rollback = h.published();
    assert_eq!(rollback.weights, w(80, 20, 0));
    assert_ne!(rollback.id, step.id);

    // The rollback is verified: the drill is finished and completed.
    h.apply_all(t(115));
    h.engine.step(t(116)).await;
    assert!(h.engine.drill.is_none(), "the drill is over");
    let row = h.last_drill_row().await;
    assert_eq!(row.state, DrillState::Completed);
    assert_eq!(row.report.steps_verified, 1);
    assert_eq!(row.report.time_to_rollback_ms, Some(2000));
    assert_eq!(row.report.outcome_reason.as_deref(), Some("every step held"));
    assert_eq!(
        h.drill_events().await,
        ["preflight", "step_sent", "step_verified", "hold_done", "rollback_sent", "rollback_verified", "finished"]
    );
}

#[tokio::test]
async fn a_safety_move_during_a_drill_aborts_it_and_its_plan_is_the_rollback() {
    let mut h = Harness::started().await;
    h.start_drill("primary", 60.0, t(100)).await;
    h.apply_all(t(101));
    h.engine.step(t(102)).await;
    assert_eq!(h.engine.drill.as_ref().map(|d| d.record.state), Some(DrillState::Holding));

    // The drill's target, now serving everything, goes down: decide moves its share away.
    h.observe("standby", Outcome::Failed, t(110));
    let safety = h.engine.step(t(110)).await.expect("the safety plan");
    assert_eq!(safety.kind, PlanKind::Failover);
    assert_eq!(safety.reason, "standby is down: moving its 100 points to primary");
    assert_eq!(h.engine.drill.as_ref().map(|d| d.record.state), Some(DrillState::RollingBack));

    // The safety plan verified ends the drill, aborted.
    h.apply_all(t(111));
    h.engine.step(t(112)).await;
    assert!(h.engine.drill.is_none());
    let row = h.last_drill_row().await;
    assert_eq!(row.state, DrillState::Aborted);
    let why = row.report.outcome_reason.unwrap_or_default();
    assert!(why.starts_with("aborted by a real failure: standby is down: moving its 100 points to primary"), "{why}");
    let events = h.drill_events().await;
    assert_eq!(events[events.len() - 3..], ["abort", "rollback_verified", "finished"]);
}

#[tokio::test]
async fn the_store_unreachable_alarm_is_raised_and_cleared_from_the_store_status() {
    let mut h = Harness::started().await;
    let key = AlarmKey::global(AlarmKind::StoreUnreachable);
    h.store.set_status(StoreStatus { reachable: false, pending: 3, ..Default::default() });
    h.engine.on_store_status();
    let alarm = h.engine.alarms.get(&key).expect("store_unreachable raised");
    assert_eq!(alarm.message, "the orchestrator's store is unreachable; 3 write(s) buffered in memory");
    let shown = h.engine.snapshot(t(1)).alarms;
    assert_eq!(shown.len(), 1);
    assert_eq!(shown[0].kind, AlarmKind::StoreUnreachable);

    h.store.set_status(StoreStatus { reachable: true, ..Default::default() });
    h.engine.on_store_status();
    assert!(!h.engine.alarms.contains_key(&key));
    tokio::task::yield_now().await;
    let writes = h.store.writes();
    let raised = writes.iter().any(|w| matches!(w, Write::Alarm(a) if a.kind == AlarmKind::StoreUnreachable));
    assert!(raised, "the alarm is recorded once the store is back");
    assert!(writes.iter().any(|w| matches!(w, Write::AlarmCleared { .. })));
}
