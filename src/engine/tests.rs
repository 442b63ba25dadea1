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

use super::{CommandError, Engine, EngineChannels, Resume};
use crate::alarm::{AlarmKey, AlarmKind};
use crate::breaker::BreakerPhase;
use crate::config::Config;
use crate::coord::view::{RegionView, View};
use crate::coord::{AlwaysLeader, CoordHealth, Leadership, Links, Peer, Peers, PublishedPlan, Standing};
use crate::drill::{self, DrillRequest, DrillState};
use crate::health::Health;
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
        leadership: leader_in(7),
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
        coordination: crate::status::CoordinationStatus { backend: None, quorum: 1, vantages: vec![] },
    }
}

fn leader_in(epoch: i64) -> Leadership {
    Leadership { leader: true, epoch: Epoch(epoch), holder: Some(rn("primary")), leader_api: None, backend: "single" }
}

/// The coordination backend's ends the tests drive.
struct CoordEnds {
    standing: watch::Sender<Standing>,
    peers: watch::Sender<Arc<Peers>>,
    _plans: mpsc::Sender<PublishedPlan>,
    _view: watch::Receiver<Option<View>>,
    _health: watch::Sender<CoordHealth>,
}

fn coord_links(leadership: Leadership) -> (Links, CoordEnds) {
    let (standing_tx, standing) = watch::channel(Standing { leadership, plan: None });
    let (peers_tx, peers) = watch::channel(Arc::new(Peers::new()));
    let (plans_tx, plans) = mpsc::channel(16);
    let (view, view_rx) = watch::channel(None);
    let (health_tx, health) = watch::channel(CoordHealth {
        backend: "single",
        connected: true,
        since: t(0),
        last_error: None,
        endpoints: vec![],
        requests: 0,
    });
    let links = Links { standing, peers, plans, view, health, fence: Arc::new(AlwaysLeader) };
    (links, CoordEnds { standing: standing_tx, peers: peers_tx, _plans: plans_tx, _view: view_rx, _health: health_tx })
}

/// An engine with its channels' other ends, the in-memory store and the plan watch.
struct Harness {
    engine: Engine,
    store: MemoryWriter,
    plans: watch::Receiver<Option<TrafficPlan>>,
    coord: CoordEnds,
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
        Self::with(&config_text(), leader_in(7))
    }

    fn with(text: &str, leadership: Leadership) -> Self {
        let no_env = |_: &str| None;
        let config = Arc::new(Config::parse(text, "engine-test.toml", &no_env).expect("valid test config"));
        let (store, handle) = MemoryWriter::start();
        let (obs_tx, observations) = mpsc::channel(16);
        let (rep_tx, reports) = mpsc::channel(16);
        let (cmd_tx, commands) = mpsc::channel(16);
        let (_lag_tx, lag) = mpsc::channel(16);
        let (_steps_tx, promotion_steps) = mpsc::channel(16);
        let (plans_tx, plans) = watch::channel(None);
        let (status, _) = watch::channel(Arc::new(empty_status(&config)));
        let (links, coord) = coord_links(leadership);
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
            coord: links,
            reprobe: Default::default(),
            injection: tokio::sync::watch::channel(None).0,
        };
        let engine = Engine::new(config, handle, ch, Arc::new(Metrics::new()), Resume::default());
        Self { engine, store, plans, coord, _senders: (obs_tx, rep_tx, cmd_tx) }
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
            synthetic: None,
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
            propagation_follows: false,
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

/// The test configuration with three vantages on etcd and quorum 2.
fn etcd_config_text() -> String {
    config_text() + "\n[coordination]\nbackend = \"etcd\"\nendpoints = [\"http://127.0.0.1:1\"]\nlease_ttl = \"2s\"\n"
}

fn follower_of(holder: &str, epoch: i64) -> Leadership {
    Leadership { leader: false, epoch: Epoch(epoch), holder: Some(rn(holder)), leader_api: None, backend: "etcd" }
}

/// A peer's view: every region up except those listed.
fn peer(vantage: &str, seen: &[(&str, Health)]) -> (RegionName, Peer) {
    let regions = ["primary", "standby", "dr"]
        .iter()
        .map(|r| {
            let health = seen.iter().find(|(n, _)| n == r).map_or(Health::Up, |(_, h)| *h);
            RegionView { name: rn(r), health, since: Some(t(0)), suspect: health != Health::Up, reasons: vec![] }
        })
        .collect();
    (
        rn(vantage),
        Peer {
            view: View { vantage: rn(vantage), at: t(0), regions, synthetic: None },
            received: tokio::time::Instant::now(),
        },
    )
}

impl Harness {
    /// An etcd-coordinated engine (quorum 2 of 3) that leads in epoch 40, started like [`Harness::started`].
    async fn started_etcd() -> Self {
        let mut lead = leader_in(40);
        lead.backend = "etcd";
        let mut h = Self::with(&etcd_config_text(), lead);
        for r in ["primary", "standby", "dr"] {
            h.observe(r, Outcome::Ok, t(0));
        }
        h.engine.step(t(0)).await.expect("the start-up plan");
        h.apply_all(t(0));
        h
    }

    fn set_peers(&mut self, peers: Vec<(RegionName, Peer)>) {
        self.coord.peers.send_replace(Arc::new(peers.into_iter().collect()));
        self.engine.on_peers();
    }
}

#[tokio::test]
async fn a_region_seen_down_by_one_vantage_of_three_moves_nothing_and_the_reason_names_it() {
    let mut h = Harness::started_etcd().await;
    assert_eq!(h.engine.config.policy.quorum, 2, "a majority of three by default");
    h.set_peers(vec![peer("standby", &[]), peer("dr", &[])]);
    h.observe("primary", Outcome::Failed, t(10));
    assert!(h.engine.step(t(10)).await.is_none(), "a minority must not move traffic");
    let reasons = h.engine.decision.as_ref().expect("a decision").1.reasons.join(" | ");
    assert!(
        reasons.contains("primary: down from primary only (1 of 3 vantages, quorum 2); up from dr, standby"),
        "{reasons}"
    );
}

#[tokio::test]
async fn a_quorum_of_vantages_fails_the_region_over_once() {
    let mut h = Harness::started_etcd().await;
    h.set_peers(vec![peer("standby", &[("primary", Health::Down)]), peer("dr", &[])]);
    h.observe("primary", Outcome::Failed, t(10));
    let plan = h.engine.step(t(10)).await.expect("a failover plan");
    assert_eq!(plan.kind, PlanKind::Failover);
    assert_eq!(plan.epoch, Epoch(40));
    assert_eq!(plan.weights.get(&rn("primary")), 0);
    assert!(h.engine.step(t(11)).await.is_none(), "applied once");
    // Two peers alone (this vantage still sees it up) are a quorum as well.
    let mut h = Harness::started_etcd().await;
    h.set_peers(vec![peer("standby", &[("primary", Health::Down)]), peer("dr", &[("primary", Health::Down)])]);
    let plan = h.engine.step(t(10)).await.expect("a failover plan on the peers' votes");
    assert_eq!(plan.weights.get(&rn("primary")), 0);
}

#[tokio::test]
async fn a_follower_sends_nothing_follows_the_published_plan_and_reapplies_it_when_it_takes_over() {
    let mut h = Harness::with(&etcd_config_text(), follower_of("standby", 40));
    for r in ["primary", "standby", "dr"] {
        h.observe(r, Outcome::Ok, t(0));
    }
    h.set_peers(vec![peer("standby", &[]), peer("dr", &[])]);
    assert!(h.engine.step(t(0)).await.is_none(), "a follower never sends a plan");
    assert!(h.plans.borrow().is_none());
    // The leader publishes a failover plan; the follower records it and follows it.
    let mut leader_plan = h.engine.snapshot(t(0)).plan.map(|p| p.plan).unwrap_or_else(|| TrafficPlan {
        id: crate::plan::PlanId::new(),
        epoch: Epoch(40),
        weights: w(80, 20, 0),
        kind: PlanKind::Normal,
        reason: String::new(),
        reasons: vec![],
        inputs: serde_json::json!({}),
        decided_at: t(0),
    });
    leader_plan.weights = w(0, 100, 0);
    leader_plan.kind = PlanKind::Failover;
    leader_plan.decided_at = t(5);
    h.engine.on_published_plan(PublishedPlan { plan: leader_plan.clone(), leader: rn("standby") }, t(5));
    h.engine.on_published_plan(PublishedPlan { plan: leader_plan.clone(), leader: rn("standby") }, t(5));
    tokio::task::yield_now().await;
    let recorded = h
        .store
        .writes()
        .into_iter()
        .filter(
            |w| matches!(w, Write::Plan { plan, vantage } if plan.id == leader_plan.id && vantage == &rn("standby")),
        )
        .count();
    assert_eq!(recorded, 1, "each published plan is recorded once, under the leader's name");
    assert!(h.engine.step(t(6)).await.is_none());
    // It takes over in a newer epoch: the first plan re-applies the published weights, no traffic change.
    let mut lead = leader_in(55);
    lead.backend = "etcd";
    h.coord.standing.send_replace(Standing {
        leadership: lead,
        plan: Some(PublishedPlan { plan: leader_plan.clone(), leader: rn("standby") }),
    });
    h.engine.on_standing(t(7));
    let plan = h.engine.step(t(7)).await.expect("the new leader's first plan");
    assert_eq!(plan.weights, w(0, 100, 0), "the cluster's plan is carried on");
    assert_eq!(plan.epoch, Epoch(55));
    assert!(plan.reason.contains("took over as leader in epoch 55"), "{}", plan.reason);
    assert!(h.engine.memory.evacuated.contains(&rn("primary")), "a failover's emptied region stays evacuated");
}

#[tokio::test]
async fn a_vantage_alone_seeing_a_region_down_for_a_while_raises_suspect_path_naming_it() {
    let mut h = Harness::started_etcd().await;
    h.set_peers(vec![peer("standby", &[("primary", Health::Down)]), peer("dr", &[])]);
    h.engine.step(t(10)).await;
    assert!(!h.alarm_kinds().contains(&AlarmKind::SuspectPath), "not at once");
    h.engine.step(t(31)).await;
    let alarm = h.engine.alarms.get(&AlarmKey::of_region(AlarmKind::SuspectPath, rn("standby"))).expect("suspect_path");
    assert!(alarm.message.contains("path from standby to primary is suspect"), "{}", alarm.message);
    // The paths agree again: cleared.
    h.set_peers(vec![peer("standby", &[]), peer("dr", &[])]);
    h.engine.step(t(40)).await;
    assert!(!h.alarm_kinds().contains(&AlarmKind::SuspectPath));
}

/// An orchestrator that follows the standby's, which leads in epoch 40 at `http://10.0.2.5:8080`.
fn follower_of_standby_at_its_url() -> Harness {
    let mut h = Harness::with(&etcd_config_text(), follower_of("standby", 40));
    let mut l = follower_of("standby", 40);
    l.leader_api = Some("http://10.0.2.5:8080".into());
    h.coord.standing.send_replace(Standing { leadership: l, plan: None });
    h.engine.on_standing(t(0));
    h
}

#[tokio::test]
async fn a_follower_refuses_operator_commands_naming_the_leader() {
    let h = follower_of_standby_at_its_url();
    let err = h.engine.lock_check().expect_err("a follower refuses");
    assert!(err.to_string().contains("the leader, standby, at http://10.0.2.5:8080"), "{err}");
}

#[tokio::test]
async fn a_follower_refuses_a_drill_naming_the_leader_and_records_nothing() {
    let mut h = follower_of_standby_at_its_url();
    let req = DrillRequest {
        evacuate: Some("primary".into()),
        steps: Some(vec![100]),
        reason: "game day".into(),
        dry_run: true,
        ..Default::default()
    };
    let spec = drill::validate(&h.engine.config.policy, &req).expect("valid drill");
    let err = h.engine.start_drill(spec, "tester".into(), t(1)).await.expect_err("a follower refuses");
    match &err {
        CommandError::NotLeader { leader, api } => {
            assert_eq!(leader.as_deref(), Some("standby"));
            assert_eq!(api.as_deref(), Some("http://10.0.2.5:8080"));
        }
        other => panic!("expected NotLeader, got {other:?}"),
    }
    tokio::task::yield_now().await;
    assert!(!h.store.writes().iter().any(|w| matches!(w, Write::Drill(_))), "no drill recorded");
}

#[tokio::test]
async fn a_refused_write_is_recorded_and_alarmed_until_a_plan_is_verified_again() {
    let mut h = Harness::started().await;
    h.observe("primary", Outcome::Failed, t(10));
    h.engine.step(t(10)).await.expect("a failover plan");
    h.report(
        "a",
        ApplyResult::Refused { error: "a: refused plan from stale epoch 7 (provider is at epoch 9)".into() },
        t(11),
    );
    let alarm = h.engine.alarms.get(&AlarmKey::global(AlarmKind::StaleWriteRefused)).expect("stale_write_refused");
    assert!(alarm.message.contains("refused plan from stale epoch 7"), "{}", alarm.message);
    tokio::task::yield_now().await;
    let recorded = h
        .store
        .writes()
        .into_iter()
        .any(|w| matches!(&w, Write::PlanOutcome { report, .. } if report["result"]["state"] == "refused"));
    assert!(recorded, "the refusal is recorded with the plan's outcome");
    h.apply_all(t(12));
    assert!(!h.alarm_kinds().contains(&AlarmKind::StaleWriteRefused));
}
