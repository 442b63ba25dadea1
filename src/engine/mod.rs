//! The engine: the actor shell around the pure `health` and `decide` modules.
//!
//! It owns the live state: per-check hysteresis, region health, the decision
//! memory, the current plan and its per-provider outcome, maintenance, alarms.
//! Observations, apply reports and operator commands arrive on channels; after
//! each, the engine updates health, re-decides when something changed (and on
//! a periodic tick, for time-based rules such as failback), records
//! transitions, plans and alarms through the store writer, hands new plans to
//! the applier, and publishes an `Arc<Status>` on a `watch` channel.
//!
//! This file holds the actor: its state, the loop and the command dispatch, and
//! `step` (decide, guard the operator's overrides, send the plan, drive the
//! operations). Each concept around it has its own file: `observe`
//! (observations, lag, health, decide's inputs), `reports` (apply reports,
//! verification, drift), `alarms`, `snapshot` (the status read model),
//! `incidents` (timeline hooks), `promotion`, `operator` (manual failover,
//! failback, maintenance, and the rule that a drill or an operator hold overrides
//! the decision except for moves toward safety), `switchover`, `drill`
//! (executing the pure phase machine), `command` and `start`.
//!
//! A plan is written to the store (acknowledged, bounded wait) before it is
//! handed to the providers; when the store is down the plan goes out anyway —
//! serving beats bookkeeping — and its record is written once the store returns.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, instrument, warn};

use crate::alarm::AlarmKey;
use crate::config::Config;
use crate::coord::{Leadership, Links};
use crate::decide::{self, Decision, Memory};
use crate::health::{CheckState, Health, Thresholds};
use crate::lag::LagSample;
use crate::metrics::Metrics;
use crate::notify::{NotifyEvent, NotifyKind};
use crate::observation::{Observation, Outcome};
use crate::operation::{HoldRecord, OperationRecord};
use crate::plan::{PlanId, PlanKind, TrafficPlan};
use crate::region::{CheckId, Layer, RegionName};
use crate::replication::promotion::{PromotionStep, ReplicationCommand};
use crate::status::ProviderDrift;
use crate::status::Status;
use crate::store::records::Write;
use crate::store::writer::StoreHandle;
use crate::supervise::Heartbeat;
use crate::traffic::applier::ApplyReport;

mod alarms;
mod command;
mod coordination;
mod drill;
mod incidents;
mod observe;
mod operator;
mod promotion;
mod reports;
mod snapshot;
mod start;
mod switchover;
mod synthetic;
#[cfg(test)]
mod tests;

pub use command::{Command, CommandError, CommandOutcome};
pub use start::Resume;

/// Latencies kept per check for charts.
const RECENT_SAMPLES: usize = 120;
/// How often time-based rules are re-evaluated without new observations.
const TICK: Duration = Duration::from_millis(250);
/// Longest wait for a plan's store acknowledgement before applying it anyway.
const RECORD_WAIT: Duration = Duration::from_millis(500);

struct CheckRuntime {
    layer: Layer,
    thresholds: Thresholds,
    kind: &'static str,
    /// A passive check (HAProxy's view): counted in its layer only while degraded or down.
    passive: bool,
    target: String,
    state: CheckState,
    last: Option<Observation>,
    recent: VecDeque<(DateTime<Utc>, f64, Outcome)>,
}

struct RegionRuntime {
    health: Health,
    since: Option<DateTime<Utc>>,
}

struct CurrentPlan {
    plan: TrafficPlan,
    recorded: bool,
    providers: BTreeMap<String, ApplyReport>,
    verified_at: Option<DateTime<Utc>>,
}

/// Channels the engine is built from.
pub struct EngineChannels {
    /// Observations from the probe runners.
    pub observations: mpsc::Receiver<Observation>,
    /// Apply reports from the applier.
    pub reports: mpsc::Receiver<ApplyReport>,
    /// Operator commands.
    pub commands: mpsc::Receiver<Command>,
    /// Replication lag samples of the standby regions.
    pub lag: mpsc::Receiver<LagSample>,
    /// Promotion requests to the replication actor (None: no lag collection).
    pub replication: Option<mpsc::Sender<ReplicationCommand>>,
    /// Steps of promotions, as they happen.
    pub promotion_steps: mpsc::Receiver<PromotionStep>,
    /// Where new plans go (the applier watches it).
    pub plans: watch::Sender<Option<TrafficPlan>>,
    /// Where status snapshots go.
    pub status: watch::Sender<Arc<Status>>,
    /// Where notifications go (health transitions, plans, alarms); `None` when none are configured.
    pub notify: Option<mpsc::Sender<NotifyEvent>>,
    /// The coordination backend: standing, peers' views, published plans, own view.
    pub coord: Links,
    /// Per region: bumped to make that region's probe runners probe at once.
    pub reprobe: BTreeMap<RegionName, watch::Sender<u64>>,
    /// A synthetic-failure drill's injection, read by every probe runner.
    pub injection: watch::Sender<Option<crate::drill::synthetic::Injection>>,
}

/// The engine actor.
pub struct Engine {
    config: Arc<Config>,
    leadership: Leadership,
    checks: BTreeMap<CheckId, CheckRuntime>,
    regions: BTreeMap<RegionName, RegionRuntime>,
    memory: Memory,
    decision: Option<(DateTime<Utc>, Decision)>,
    plan: Option<CurrentPlan>,
    maintenance: BTreeMap<RegionName, String>,
    /// Latest lag sample per standby region.
    lag: BTreeMap<RegionName, LagSample>,
    /// The live drill, if one runs (or is being rolled back).
    drill: Option<drill::ActiveDrill>,
    /// The live synthetic-failure drill, if one runs.
    synthetic: Option<synthetic::SyntheticDrill>,
    /// Weights pinned by a manual failover or switchover.
    hold: Option<HoldRecord>,
    /// A switchover waiting for its target's lag to drain.
    switchover: Option<switchover::PendingSwitchover>,
    /// Operations whose plan is not yet verified.
    open_ops: Vec<OperationRecord>,
    /// The region whose database takes writes.
    writer: RegionName,
    /// Steps of the last promotion; `promoting` while one runs.
    promotion: Vec<PromotionStep>,
    promoting: bool,
    alarms: BTreeMap<AlarmKey, alarms::ActiveAlarm>,
    /// Providers whose live state differs from the plan, by name.
    drift: BTreeMap<String, ProviderDrift>,
    store: StoreHandle,
    ch: EngineChannels,
    metrics: Arc<Metrics>,
    started: Instant,
    /// Until the first plan is sent, the providers have not been synchronised.
    synced: bool,
    dirty: bool,
    last_publish: Option<Instant>,
    /// Open incident timelines (issue 7).
    incidents: crate::incidents::Tracker,
    /// Where incident timelines go to be exported as traces (None: traces are off).
    traces: Option<crate::traces::TraceSink>,
    /// Peers, votes, takeover and the suspect-path bookkeeping.
    coordination: coordination::CoordState,
    /// Beaten after every completed cycle (liveness).
    heartbeat: Option<Heartbeat>,
}

impl Engine {
    /// Runs until cancelled. On cancellation, records the apply reports still queued and exits.
    pub async fn run(mut self, cancel: CancellationToken) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut store_status = self.store.subscribe();
        self.publish(Utc::now(), true);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                Some(obs) = self.ch.observations.recv() => self.on_observation(obs),
                Some(rep) = self.ch.reports.recv() => self.on_report(rep),
                Some(cmd) = self.ch.commands.recv() => self.on_command(cmd, Utc::now()).await,
                Some(sample) = self.ch.lag.recv() => self.on_lag(sample),
                Some(step) = self.ch.promotion_steps.recv() => self.on_promotion_step(step),
                Ok(()) = store_status.changed() => { self.on_store_status(); }
                Ok(()) = self.ch.coord.standing.changed() => self.on_standing(Utc::now()),
                Ok(()) = self.ch.coord.peers.changed() => self.on_peers(),
                Some(p) = self.ch.coord.plans.recv() => self.on_published_plan(p, Utc::now()),
                Ok(()) = self.ch.coord.health.changed() => self.on_coord_health(Utc::now()),
                _ = tick.tick() => { self.dirty = true; }
            }
            let now = Utc::now();
            if self.dirty {
                self.dirty = false;
                self.step(now).await;
            }
            self.publish(now, false);
            if let Some(h) = &self.heartbeat {
                h.beat();
            }
        }
        // Drain: an in-flight plan's last reports are recorded before exit.
        while let Ok(rep) = self.ch.reports.try_recv() {
            self.on_report(rep);
        }
        self.publish(Utc::now(), true);
        info!("engine stopped");
    }

    /// Hands an event to the notifier without waiting; drops it (logged) when the queue is full.
    fn notify(&self, event: NotifyKind, key: String, text: String, at: DateTime<Utc>, details: serde_json::Value) {
        if let Some(tx) = &self.ch.notify
            && tx.try_send(NotifyEvent { event, key, text, at, details }).is_err()
        {
            warn!("notification queue full; event dropped");
        }
    }

    /// Runs one operator command and sends its answer (a switchover answers later).
    async fn on_command(&mut self, cmd: Command, now: DateTime<Utc>) {
        match cmd {
            Command::Maintenance { region, drain, reason, actor, reply } => {
                let r = self.maintenance_command(region, drain, reason, actor, now).await;
                let _ = reply.send(r);
            }
            Command::StartDrill { spec, actor, reply } => {
                let r = if spec.synthetic {
                    self.start_synthetic(spec, actor, now).await
                } else {
                    self.start_drill(spec, actor, now).await
                };
                let _ = reply.send(r);
            }
            Command::AbortDrill { id, actor, reason, reply } => {
                let r = match self.synthetic.as_ref().filter(|s| s.record.id == id) {
                    Some(_) => self.abort_synthetic(&actor, &reason, now).ok_or_else(|| {
                        CommandError::NoSuchDrill(format!("drill {id} is not running (finished, or never started)"))
                    }),
                    None => self.abort_drill_command(id, &actor, &reason, now).await,
                };
                let _ = reply.send(r);
            }
            Command::Failover { target, force, reason, actor, reply } => {
                let r = self.failover_command(target, force, reason, actor, now).await;
                let _ = reply.send(r);
            }
            Command::Switchover { target, timeout, max_lag_bytes, reason, actor, reply } => {
                self.switchover_command(target, timeout, max_lag_bytes, reason, actor, reply, now).await;
            }
            Command::Failback { reason, actor, reply } => {
                let r = self.failback_command(reason, actor, now).await;
                let _ = reply.send(r);
            }
        }
    }

    /// Decides, and acts on the decision. Returns the plan sent, if any.
    #[instrument(skip_all)]
    pub(crate) async fn step(&mut self, now: DateTime<Utc>) -> Option<TrafficPlan> {
        let inputs = self.inputs();
        let startup_grace =
            self.config.checks().map(|c| c.interval * (c.rise + 1) + c.timeout).max().unwrap_or(Duration::from_secs(5));
        let any_unknown = inputs.regions.iter().any(|r| r.health == Health::Unknown && !r.maintenance);
        if !self.synced && any_unknown && self.started.elapsed() < startup_grace {
            let reasons = vec![format!(
                "starting: waiting for every region's first observations (up to {})",
                humantime::format_duration(startup_grace)
            )];
            self.decision = Some((
                now,
                Decision {
                    weights: self.memory.current.clone(),
                    changed: false,
                    kind: PlanKind::Normal,
                    reasons,
                    moves: vec![],
                    alarms: vec![],
                    memory: self.memory.clone(),
                },
            ));
            return None;
        }
        let mut decision = decide::decide(&self.config.policy, &inputs, &self.memory, now);
        self.sync_alarms(&decision, now);
        if self.leadership.leader && self.synced {
            self.guard_operator_override(&mut decision, now);
        }
        let mut sent = None;
        if !self.leadership.leader {
            // Followers observe only.
        } else if decision.changed || !self.synced {
            let kind = if decision.changed {
                decision.kind
            } else if self.drill.is_some() {
                PlanKind::Drill
            } else if self.memory.last_change.is_some() {
                PlanKind::Manual
            } else {
                PlanKind::Normal
            };
            let reason = if decision.changed {
                decision.summary()
            } else if let Some(why) = self.coordination.takeover.take() {
                why
            } else if let Some(d) = &self.drill {
                format!("start-up: rolling back drill {}, interrupted by a restart", d.record.id)
            } else if self.memory.last_change.is_some() {
                "start-up: re-applying the last recorded plan".to_string()
            } else {
                "start-up: applying the configured weights".to_string()
            };
            let mut plan = TrafficPlan {
                id: PlanId::new(),
                epoch: self.leadership.epoch,
                weights: decision.weights.clone(),
                kind,
                reason,
                reasons: decision.reasons.clone(),
                inputs: json!({ "regions": inputs.regions, "policy_quorum": self.config.policy.quorum }),
                decided_at: now,
            };
            let before = self.memory.current.clone();
            self.note_synthetic_plan(&mut plan, &before);
            self.send_plan(plan.clone()).await;
            self.synced = true;
            sent = Some(plan);
        }
        if self.leadership.leader {
            self.memory = decision.memory.clone();
        }
        self.follow_injection();
        self.publish_view(now);
        self.track_suspect_paths(now);
        for (r, w) in decision.weights.iter() {
            if self.plan.as_ref().is_some_and(|p| p.verified_at.is_some()) {
                self.metrics.set_weight(r, w);
            }
        }
        self.decision = Some((now, decision));
        if let Some(p) = &sent {
            self.adopt_rollback_plan(p.id, now);
        }
        if self.leadership.leader && self.synced {
            self.drive_operations(now).await;
        }
        sent
    }

    /// Records the plan (bounded wait for the store's acknowledgement), makes it the current
    /// plan, notifies, and hands it to the applier.
    async fn send_plan(&mut self, plan: TrafficPlan) {
        info!(plan = %plan.id, kind = plan.kind.as_str(), weights = %plan.weights, reason = %plan.reason, "new plan");
        let ack = self.store.send_acked(Write::Plan {
            plan: Box::new(plan.clone()),
            vantage: self.config.orchestrator.vantage.clone(),
        });
        let recorded = matches!(tokio::time::timeout(RECORD_WAIT, ack).await, Ok(Ok(())));
        if !recorded {
            warn!(plan = %plan.id, "plan not yet recorded (store slow or down); applying anyway, record is buffered");
        }
        self.incident_plan(&plan);
        self.plan = Some(CurrentPlan { plan: plan.clone(), recorded, providers: BTreeMap::new(), verified_at: None });
        self.notify(
            NotifyKind::Plan,
            format!("plan:{}", plan.weights),
            format!("new {} plan: {} ({})", plan.kind.as_str(), plan.weights, plan.reason),
            plan.decided_at,
            json!({ "plan_id": plan.id, "epoch": plan.epoch, "weights": plan.weights, "reason": plan.reason }),
        );
        if self.ch.plans.send(Some(plan)).is_err() {
            error!("applier is gone; plan not applied");
        }
    }
}
