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
//! Operator control (drills, manual failover, switchover, failback, maintenance)
//! lives in [`ops`]: a drill or an operator hold overrides the decision except
//! for moves toward safety, which abort the drill (or release the hold).
//!
//! A plan is written to the store (acknowledged, bounded wait) before it is
//! handed to the providers; when the store is down the plan goes out anyway —
//! serving beats bookkeeping — and its record is written once the store returns.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use serde_json::json;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, instrument, warn};
use uuid::Uuid;

use crate::alarm::{AlarmKey, AlarmKind};
use crate::config::{CheckKind, Config, redact_dsn};
use crate::coord::Leadership;
use crate::decide::{self, Decision, Inputs, Memory, RegionInput};
use crate::drill::{DrillId, DrillRecord, DrillSpec};
use crate::health::{self, CheckState, Health, Thresholds};
use crate::metrics::Metrics;
use crate::notify::{NotifyEvent, NotifyKind};
use crate::observation::{Observation, Outcome};
use crate::plan::{PlanId, PlanKind, TrafficPlan, Weights};
use crate::region::{CheckId, Layer, RegionName};
use crate::replication::LagSample;
use crate::replication::promotion::{PromotionStep, ReplicationCommand};
use crate::status::ProviderDrift;
use crate::status::{Acting, AlarmStatus, CheckStatus, LayerStatus, PlanStatus, RegionStatus, Status};
use crate::operation::{HoldRecord, OperationRecord};
use crate::store::records::{AlarmRecord, AuditRecord, TransitionRecord, Write};
use crate::store::writer::StoreHandle;
use crate::traffic::applier::{ApplyReport, ApplyResult};

mod ops;

/// Latencies kept per check for charts.
const RECENT_SAMPLES: usize = 120;
/// How often time-based rules are re-evaluated without new observations.
const TICK: Duration = Duration::from_millis(250);
/// Longest wait for a plan's store acknowledgement before applying it anyway.
const RECORD_WAIT: Duration = Duration::from_millis(500);

/// An operator command, answered on a oneshot.
#[derive(Debug)]
pub enum Command {
    /// Drain (or undrain) a region.
    Maintenance {
        /// The region.
        region: RegionName,
        /// true to drain, false to undrain.
        drain: bool,
        /// Why.
        reason: String,
        /// Who.
        actor: String,
        /// The answer.
        reply: oneshot::Sender<Result<CommandOutcome, CommandError>>,
    },
    /// Start a drill (live or dry run) after its preflight.
    StartDrill {
        /// The validated drill.
        spec: DrillSpec,
        /// Who (token name or `schedule:<name>`).
        actor: String,
        /// The drill as recorded, or why it was refused.
        reply: oneshot::Sender<Result<DrillRecord, CommandError>>,
    },
    /// Abort the running drill now and roll back.
    AbortDrill {
        /// The drill.
        id: DrillId,
        /// Who.
        actor: String,
        /// Why.
        reason: String,
        /// The drill as recorded.
        reply: oneshot::Sender<Result<DrillRecord, CommandError>>,
    },
    /// Move all traffic to `target` and hold it there until a failback.
    Failover {
        /// Where to.
        target: RegionName,
        /// Accept a target over its lag limit, with this reason (recorded).
        force: Option<String>,
        /// Why.
        reason: String,
        /// Who.
        actor: String,
        /// The answer.
        reply: oneshot::Sender<Result<CommandOutcome, CommandError>>,
    },
    /// Planned move: wait (up to `timeout`) until the target's lag is ~0, then fail over to it.
    Switchover {
        /// Where to.
        target: RegionName,
        /// How long to wait for the lag to drain.
        timeout: Duration,
        /// Largest lag in bytes counted as caught up.
        max_lag_bytes: u64,
        /// Why.
        reason: String,
        /// Who.
        actor: String,
        /// The answer (sent when traffic moved or the wait ended).
        reply: oneshot::Sender<Result<CommandOutcome, CommandError>>,
    },
    /// Release an operator hold and return to the normal weights (moves toward safety still apply).
    Failback {
        /// Why.
        reason: String,
        /// Who.
        actor: String,
        /// The answer.
        reply: oneshot::Sender<Result<CommandOutcome, CommandError>>,
    },
}

/// What a command did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CommandOutcome {
    /// The plan it produced, if any.
    pub plan: Option<TrafficPlan>,
    /// The operation's record id (`operations` table).
    pub operation_id: Uuid,
    /// Reasons from the decision.
    pub reasons: Vec<String>,
}

/// Why a command was refused.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum CommandError {
    /// Unknown region.
    #[error("unknown region `{0}`")]
    UnknownRegion(String),
    /// Unknown or finished drill.
    #[error("{0}")]
    NoSuchDrill(String),
    /// This orchestrator is not the leader.
    #[error("this orchestrator is not the leader")]
    NotLeader,
    /// Refused by the current state (another operation holds the lock, preflight failed …).
    #[error("refused: {}", .0.join("; "))]
    Refused(Vec<String>),
    /// The engine is stopping.
    #[error("the engine is shutting down")]
    ShuttingDown,
}

struct CheckRuntime {
    layer: Layer,
    thresholds: Thresholds,
    kind: &'static str,
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

struct ActiveAlarm {
    id: Uuid,
    message: String,
    since: DateTime<Utc>,
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
    drill: Option<ops::ActiveDrill>,
    /// Weights pinned by a manual failover or switchover.
    hold: Option<HoldRecord>,
    /// A switchover waiting for its target's lag to drain.
    switchover: Option<ops::PendingSwitchover>,
    /// Operations whose plan is not yet verified.
    open_ops: Vec<OperationRecord>,
    /// The region whose database takes writes.
    writer: RegionName,
    /// Steps of the last promotion; `promoting` while one runs.
    promotion: Vec<PromotionStep>,
    promoting: bool,
    alarms: BTreeMap<AlarmKey, ActiveAlarm>,
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
}

/// What the engine resumes from after a restart.
#[derive(Debug, Clone, Default)]
pub struct Resume {
    /// The last recorded plan.
    pub plan: Option<TrafficPlan>,
    /// Regions in maintenance, with reasons.
    pub maintenance: Vec<(RegionName, String)>,
    /// The operator hold (manual failover or switchover) in force.
    pub hold: Option<HoldRecord>,
    /// A live drill the previous run left unfinished: rolled back at start-up.
    pub interrupted_drill: Option<DrillRecord>,
    /// The region last promoted to writer, if any.
    pub writer: Option<RegionName>,
}

impl Engine {
    /// Builds the engine; `resume` carries what the store remembered.
    pub fn new(
        config: Arc<Config>,
        leadership: Leadership,
        store: StoreHandle,
        ch: EngineChannels,
        metrics: Arc<Metrics>,
        resume: Resume,
    ) -> Self {
        let checks = config
            .checks()
            .map(|c| {
                let target = match &c.kind {
                    CheckKind::Tcp { target } => target.clone(),
                    CheckKind::Http { url, .. } => url.clone(),
                    CheckKind::Postgres { dsn, .. } => redact_dsn(dsn.expose_secret()),
                };
                (
                    c.id.clone(),
                    CheckRuntime {
                        layer: c.layer,
                        thresholds: Thresholds { fall: c.fall, rise: c.rise },
                        kind: c.kind.type_name(),
                        target,
                        state: CheckState::default(),
                        last: None,
                        recent: VecDeque::new(),
                    },
                )
            })
            .collect();
        let regions = config
            .regions
            .iter()
            .map(|r| (r.name.clone(), RegionRuntime { health: Health::Unknown, since: None }))
            .collect();
        let mut memory = Memory::normal(&config.policy);
        if let Some(plan) = &resume.plan {
            // Resume the last plan if it still fits the configured regions.
            let same_regions = plan.weights.0.keys().eq(memory.current.0.keys());
            if same_regions && plan.weights.total() == 100 {
                memory.current = plan.weights.clone();
                memory.last_change = Some(plan.decided_at);
                if plan.kind == PlanKind::Failover {
                    for (r, w) in plan.weights.iter() {
                        if w == 0 && config.policy.region(r).is_some_and(|p| p.normal_weight > 0) {
                            memory.evacuated.insert(r.clone());
                        }
                    }
                }
                info!(plan = %plan.id, weights = %plan.weights, "resuming the last recorded plan");
            } else {
                warn!(plan = %plan.id, "last recorded plan does not match the configured regions; starting from normal weights");
            }
        }
        let maintenance = resume.maintenance.into_iter().filter(|(r, _)| config.region(r).is_some()).collect();
        let configured: Vec<RegionName> = memory.current.0.keys().cloned().collect();
        let fits = |w: &Weights| w.0.keys().eq(configured.iter()) && w.total() == 100;
        let hold = resume.hold.filter(|h| fits(&h.weights));
        if let Some(h) = &hold {
            info!(weights = %h.weights, reason = %h.reason, "resuming the operator hold");
            memory.current = h.weights.clone();
        }
        let drill = resume.interrupted_drill.filter(|d| fits(&d.baseline)).map(|d| {
            warn!(drill = %d.id, baseline = %d.baseline, "a drill was interrupted by a restart: rolling back to its baseline");
            memory.current = d.baseline.clone();
            ops::ActiveDrill::interrupted(d, Utc::now())
        });
        metrics.set_leader(leadership.leader);
        let writer = resume.writer.clone().filter(|w| config.region(w).is_some()).unwrap_or_else(|| {
            config
                .regions
                .iter()
                .find(|r| r.role == crate::region::Role::Primary)
                .map(|r| r.name.clone())
                .unwrap_or_else(|| RegionName::new("primary"))
        });
        Self {
            config,
            leadership,
            checks,
            regions,
            memory,
            decision: None,
            plan: None,
            maintenance,
            lag: BTreeMap::new(),
            drill,
            hold,
            switchover: None,
            open_ops: Vec::new(),
            writer,
            promotion: Vec::new(),
            promoting: false,
            alarms: BTreeMap::new(),
            drift: BTreeMap::new(),
            store,
            ch,
            metrics,
            started: Instant::now(),
            synced: false,
            dirty: true,
            last_publish: None,
            incidents: crate::incidents::Tracker::new(),
        }
    }

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
                _ = tick.tick() => { self.dirty = true; }
            }
            let now = Utc::now();
            if self.dirty {
                self.dirty = false;
                self.step(now).await;
            }
            self.publish(now, false);
        }
        // Drain: an in-flight plan's last reports are recorded before exit.
        while let Ok(rep) = self.ch.reports.try_recv() {
            self.on_report(rep);
        }
        self.publish(Utc::now(), true);
        info!("engine stopped");
    }

    /// Records the latest lag of a standby; the next decision uses it.
    pub(crate) fn on_lag(&mut self, sample: LagSample) {
        if self.lag.get(&sample.region).is_none_or(|old| old.reading() != sample.reading() || old.state != sample.state)
        {
            self.dirty = true;
        }
        self.note_drill_lag(&sample);
        self.lag.insert(sample.region.clone(), sample);
    }

    fn on_store_status(&mut self) {
        let st = self.store.status();
        let key = AlarmKey::global(AlarmKind::StoreUnreachable);
        let now = Utc::now();
        if !st.reachable {
            self.alarms.entry(key).or_insert_with(|| ActiveAlarm {
                id: Uuid::new_v4(),
                message: format!("the orchestrator's store is unreachable; {} write(s) buffered in memory", st.pending),
                since: now,
            });
        } else {
            // Raised while the store was down: written (raised and cleared) now.
            self.clear_alarm(&key, now);
        }
        if let Some(p) = &mut self.plan {
            if !p.recorded && st.reachable && st.pending == 0 {
                p.recorded = true;
            }
        }
        self.dirty = true;
    }

    /// Feeds one observation through the check's hysteresis.
    #[instrument(skip_all, fields(check = %obs.check))]
    pub(crate) fn on_observation(&mut self, obs: Observation) {
        let Some(rt) = self.checks.get_mut(&obs.check) else {
            warn!("observation for an unknown check");
            return;
        };
        let transition = rt.state.observe(obs.outcome, rt.thresholds, obs.at);
        rt.recent.push_back((obs.at, obs.latency.as_secs_f64() * 1000.0, obs.outcome));
        while rt.recent.len() > RECENT_SAMPLES {
            rt.recent.pop_front();
        }
        let layer = rt.layer;
        rt.last = Some(obs.clone());
        self.incident_probe(&obs);
        self.note_drill_observation(&obs);
        if let Some(t) = transition {
            self.incident_transition(&obs.check.region, Some(&obs.check.name), t.from, t.to, obs.at);
            info!(region = %obs.check.region, check = %obs.check.name, from = %t.from, to = %t.to, error = obs.error.as_deref(), "check health changed");
            self.metrics.set_check_health(&obs.check, layer, t.to);
            self.store.send(Write::Transition(TransitionRecord {
                id: Uuid::new_v4(),
                at: obs.at,
                vantage: self.config.orchestrator.vantage.to_string(),
                region: obs.check.region.to_string(),
                check_name: Some(obs.check.name.clone()),
                layer: Some(layer.to_string()),
                from: t.from.to_string(),
                to: t.to.to_string(),
                detail: obs.error.clone().or(obs.detail.clone()),
            }));
            self.update_region(&obs.check.region, obs.at, obs.error.clone());
            self.dirty = true;
        }
    }

    fn update_region(&mut self, region: &RegionName, at: DateTime<Utc>, detail: Option<String>) {
        let layers = self.layers_of(region);
        let h = health::region_health(&layers);
        let Some(rt) = self.regions.get_mut(region) else { return };
        if rt.health != h {
            info!(region = %region, from = %rt.health, to = %h, "region health changed");
            self.store.send(Write::Transition(TransitionRecord {
                id: Uuid::new_v4(),
                at,
                vantage: self.config.orchestrator.vantage.to_string(),
                region: region.to_string(),
                check_name: None,
                layer: None,
                from: rt.health.to_string(),
                to: h.to_string(),
                detail,
            }));
            let from = rt.health;
            let text = format!("region {region}: {from} → {h}");
            rt.health = h;
            rt.since = Some(at);
            self.metrics.set_region_health(region, h);
            self.notify(
                NotifyKind::Health,
                format!("health:{region}"),
                text,
                at,
                json!({ "region": region, "health": h }),
            );
            self.incident_transition(region, None, from, h, at);
        }
    }

    /// Region health, made at least degraded when its lag is over the `degrade_lag` threshold.
    fn health_with_lag(&self, region: &RegionName) -> (Health, Option<String>) {
        let base = self.regions.get(region).map(|x| x.health).unwrap_or(Health::Unknown);
        let limit = self.config.region(region).and_then(|r| r.postgres.as_ref()).map(|pg| pg.degrade_lag);
        match (limit, self.lag.get(region)) {
            (Some(limit), Some(sample)) if limit.is_set() && base == Health::Up => {
                match limit.admits(Some(&sample.reading())) {
                    Ok(()) => (base, None),
                    Err(why) => (Health::Degraded, Some(format!("{region} degraded by replication lag: {why}"))),
                }
            }
            _ => (base, None),
        }
    }

    fn layers_of(&self, region: &RegionName) -> Vec<(Layer, Option<Health>)> {
        Layer::ALL
            .iter()
            .map(|l| {
                let hs = self
                    .checks
                    .iter()
                    .filter(|(id, rt)| &id.region == region && rt.layer == *l)
                    .map(|(_, rt)| rt.state.health);
                (*l, health::layer_health(hs))
            })
            .collect()
    }

    fn on_report(&mut self, rep: ApplyReport) {
        let Some(cur) = &mut self.plan else { return };
        if cur.plan.id != rep.plan_id {
            // A report for an older plan: recorded, not shown.
            self.store.send(Write::PlanOutcome {
                plan_id: rep.plan_id,
                provider: rep.provider.clone(),
                report: serde_json::to_value(&rep).unwrap_or_default(),
                verified_at: None,
            });
            return;
        }
        if let ApplyResult::Drift { expected, live, action } = &rep.result {
            // Drift is about the live state, not the plan's outcome: alarm, status and metric only.
            self.drift.insert(
                rep.provider.clone(),
                ProviderDrift {
                    provider: rep.provider.clone(),
                    expected: expected.clone(),
                    live: live.clone(),
                    action: *action,
                    since: rep.at,
                },
            );
            self.sync_drift_alarm(rep.at);
            cur_providers_insert(&mut self.plan, rep);
            self.dirty = true;
            return;
        }
        let Some(cur) = &mut self.plan else { return };
        let first_report = !cur.providers.contains_key(&rep.provider);
        cur.providers.insert(rep.provider.clone(), rep.clone());
        let all_verified = self
            .config
            .providers
            .iter()
            .all(|p| cur.providers.get(p.name()).is_some_and(|r| r.result == ApplyResult::Verified));
        let newly_verified = all_verified && cur.verified_at.is_none();
        if newly_verified {
            cur.verified_at = Some(rep.at);
            self.metrics.plan_applied(cur.plan.kind.as_str());
            for (r, w) in cur.plan.weights.iter() {
                self.metrics.set_weight(r, w);
            }
            info!(plan = %cur.plan.id, kind = cur.plan.kind.as_str(), weights = %cur.plan.weights, "plan verified on every provider");
        }
        let verified_at = cur.verified_at;
        let promote_after = (newly_verified && cur.plan.kind == PlanKind::Failover).then(|| cur.plan.weights.clone());
        if let ApplyResult::Failed { error, .. } = &rep.result {
            let msg = format!("provider {} failed to apply plan {}: {error}", rep.provider, rep.plan_id);
            if let Some(d) = &mut self.drill {
                d.record.report.note_error(msg);
            }
        }
        if newly_verified {
            self.on_plan_verified(rep.plan_id, rep.at);
        }
        self.store.send(Write::PlanOutcome {
            plan_id: rep.plan_id,
            provider: rep.provider.clone(),
            report: serde_json::to_value(&rep).unwrap_or_default(),
            verified_at,
        });
        let key = AlarmKey::global(AlarmKind::ProviderFailing);
        let failure = match &rep.result {
            ApplyResult::Failed { error, .. } => Some(format!(
                "provider {} failed to apply plan {}: {error} (attempt {})",
                rep.provider, rep.plan_id, rep.attempts
            )),
            ApplyResult::CircuitOpen { retry_in } => Some(format!(
                "provider {}: circuit breaker open after repeated failures; not called for {}",
                rep.provider,
                humantime::format_duration(Duration::from_secs(retry_in.as_secs()))
            )),
            _ => None,
        };
        if let Some(msg) = failure {
            self.raise_alarm(key, msg, rep.at);
        } else if rep.result == ApplyResult::Verified {
            if self.drift.remove(&rep.provider).is_some() {
                self.sync_drift_alarm(rep.at);
            }
            if all_verified {
                self.clear_alarm(&key, rep.at);
            }
        }
        if let Some(p) = &rep.propagation {
            for i in self.incidents.propagated(rep.plan_id, &rep.provider, p.converged, p.elapsed.as_millis(), rep.at) {
                self.store_incident(i);
            }
            let key = AlarmKey::global(AlarmKind::PropagationSlow);
            if p.converged {
                self.clear_alarm(&key, rep.at);
            } else {
                let late: Vec<String> =
                    p.servers.iter().filter(|s| !s.converged).map(|s| s.server.to_string()).collect();
                let msg = format!(
                    "provider {}: {} did not serve plan {} within {}",
                    rep.provider,
                    late.join(", "),
                    rep.plan_id,
                    humantime::format_duration(p.elapsed)
                );
                self.raise_alarm(key, msg, rep.at);
            }
        }
        self.incident_report(&rep, first_report || rep.result == ApplyResult::Verified, newly_verified);
        if let Some(weights) = promote_after {
            self.maybe_promote(&weights, rep.at);
        }
        self.dirty = true;
    }

    /// After a verified failover: promote the region now taking the writer's share, when
    /// configured to, the old writer is drained, and the RPO gate passes now.
    fn maybe_promote(&mut self, weights: &Weights, at: DateTime<Utc>) {
        if self.promoting || weights.get(&self.writer) > 0 {
            return;
        }
        let Some((target, _)) = weights.iter().filter(|(r, _)| **r != self.writer).max_by_key(|(_, w)| *w) else {
            return;
        };
        let target = target.clone();
        let Some(pg) = self.config.region(&target).and_then(|r| r.postgres.as_ref()) else { return };
        if !pg.promote {
            return;
        }
        let Some(tx) = self.ch.replication.clone() else { return };
        if let Err(why) = pg.max_lag.admits(self.lag.get(&target).map(LagSample::reading).as_ref()) {
            let msg = format!("{target} was not promoted: {why}");
            warn!(%msg, "promotion refused by the RPO gate");
            self.on_promotion_step(PromotionStep::new("gate", &target, false, format!("refused: {why}")));
            return;
        }
        info!(%target, old = %self.writer, "requesting promotion");
        self.promoting = true;
        self.promotion.clear();
        self.store.send(Write::Audit(AuditRecord {
            id: Uuid::new_v4(),
            at,
            actor: "system".into(),
            action: "promotion.requested".into(),
            target: Some(target.to_string()),
            outcome: "accepted".into(),
            request_id: None,
            details: json!({ "old_primary": self.writer }),
        }));
        let cmd = ReplicationCommand::Promote { target, old_primary: self.writer.clone(), reply: None };
        if tx.try_send(cmd).is_err() {
            self.promoting = false;
            warn!("replication actor busy or gone; promotion not requested");
        }
    }

    /// Records one promotion step; a failed step raises `promotion_failed`.
    pub(crate) fn on_promotion_step(&mut self, step: PromotionStep) {
        self.store.send(Write::Audit(AuditRecord {
            id: Uuid::new_v4(),
            at: step.at,
            actor: "system".into(),
            action: format!("promotion.{}", step.step),
            target: Some(step.region.to_string()),
            outcome: if step.ok { "ok".into() } else { "failed".into() },
            request_id: None,
            details: json!({ "detail": step.detail }),
        }));
        if step.step == "promote" && step.ok {
            self.writer = step.region.clone();
        }
        let key = AlarmKey::of_region(AlarmKind::PromotionFailed, step.region.clone());
        if !step.ok && step.step != "fence" {
            self.promoting = false;
            let id = Uuid::new_v4();
            let message = format!("promotion step {} on {} failed: {}", step.step, step.region, step.detail);
            self.store.send(Write::Alarm(AlarmRecord {
                id,
                raised_at: step.at,
                kind: key.kind.to_string(),
                region: key.region.as_ref().map(|r| r.to_string()),
                message: message.clone(),
            }));
            self.alarms.insert(key, ActiveAlarm { id, message, since: step.at });
        }
        if step.step == "track" {
            self.promoting = false;
        }
        self.promotion.push(step);
        self.dirty = true;
    }

    /// Raises (or updates the message of) an alarm; records and notifies when new.
    fn raise_alarm(&mut self, key: AlarmKey, msg: String, at: DateTime<Utc>) {
        match self.alarms.get_mut(&key) {
            Some(a) => a.message = msg,
            None => {
                warn!(kind = %key.kind, message = %msg, "alarm raised");
                let id = Uuid::new_v4();
                self.store.send(Write::Alarm(AlarmRecord {
                    id,
                    raised_at: at,
                    kind: key.kind.to_string(),
                    region: key.region.as_ref().map(|r| r.to_string()),
                    message: msg.clone(),
                }));
                self.notify(
                    NotifyKind::Alarm,
                    format!("alarm:{}:{}", key.kind, key.region_or_dash()),
                    format!("alarm {}: {msg}", key.kind),
                    at,
                    json!({ "kind": key.kind, "region": key.region, "message": msg }),
                );
                self.alarms.insert(key, ActiveAlarm { id, message: msg, since: at });
            }
        }
    }

    /// The `provider_drift` alarm follows the drift map; the metric is set by the applier.
    fn sync_drift_alarm(&mut self, at: DateTime<Utc>) {
        let key = AlarmKey::global(AlarmKind::ProviderDrift);
        if self.drift.is_empty() {
            self.clear_alarm(&key, at);
            return;
        }
        let msg = self
            .drift
            .values()
            .map(|d| format!("{}: serves {} instead of {} ({})", d.provider, d.live, d.expected, d.action.as_str()))
            .collect::<Vec<_>>()
            .join("; ");
        self.raise_alarm(key, format!("weights changed outside the orchestrator: {msg}"), at);
    }

    /// Hands an event to the notifier without waiting; drops it (logged) when the queue is full.
    fn notify(&self, event: NotifyKind, key: String, text: String, at: DateTime<Utc>, details: serde_json::Value) {
        if let Some(tx) = &self.ch.notify {
            if tx.try_send(NotifyEvent { event, key, text, at, details }).is_err() {
                warn!("notification queue full; event dropped");
            }
        }
    }

    fn clear_alarm(&mut self, key: &AlarmKey, at: DateTime<Utc>) {
        if let Some(a) = self.alarms.remove(key) {
            info!(kind = %key.kind, "alarm cleared");
            self.notify(
                NotifyKind::AlarmCleared,
                format!("alarm-cleared:{}:{}", key.kind, key.region_or_dash()),
                format!("alarm {} cleared: {}", key.kind, a.message),
                at,
                json!({ "kind": key.kind, "region": key.region }),
            );
            self.store.send(Write::Alarm(AlarmRecord {
                id: a.id,
                raised_at: a.since,
                kind: key.kind.to_string(),
                region: key.region.as_ref().map(|r| r.to_string()),
                message: a.message,
            }));
            self.store.send(Write::AlarmCleared { id: a.id, at });
        }
    }

    async fn on_command(&mut self, cmd: Command, now: DateTime<Utc>) {
        match cmd {
            Command::Maintenance { region, drain, reason, actor, reply } => {
                let r = self.maintenance_command(region, drain, reason, actor, now).await;
                let _ = reply.send(r);
            }
            Command::StartDrill { spec, actor, reply } => {
                let r = self.start_drill(spec, actor, now).await;
                let _ = reply.send(r);
            }
            Command::AbortDrill { id, actor, reason, reply } => {
                let r = self.abort_drill_command(id, &actor, &reason, now).await;
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

    fn inputs(&self) -> Inputs {
        let regions = self
            .config
            .regions
            .iter()
            .map(|r| {
                let rt = self.regions.get(&r.name);
                let (health, lag_note) = self.health_with_lag(&r.name);
                let mut notes: Vec<String> = lag_note.into_iter().collect();
                for (id, c) in self.checks.iter().filter(|(id, _)| id.region == r.name) {
                    if c.state.fail_streak > 0 && c.state.health != Health::Down {
                        notes.push(format!(
                            "{id} failed {} consecutive probe(s), fall={} not reached",
                            c.state.fail_streak, c.thresholds.fall
                        ));
                    } else if c.state.bad_streak > 0 && c.state.health == Health::Up {
                        notes.push(format!(
                            "{id} slow for {} consecutive probe(s), fall={} not reached",
                            c.state.bad_streak, c.thresholds.fall
                        ));
                    }
                }
                RegionInput {
                    name: r.name.clone(),
                    health,
                    since: rt.and_then(|x| x.since),
                    down_votes: usize::from(health == Health::Down),
                    vantages: 1,
                    lag: self.lag.get(&r.name).map(LagSample::reading),
                    maintenance: self.maintenance.contains_key(&r.name),
                    notes,
                }
            })
            .collect();
        let lag_overrides = self.hold.iter().filter_map(|h| h.lag_override.clone()).collect();
        Inputs { regions, lag_overrides, automation_paused: false }
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
            } else if let Some(d) = &self.drill {
                format!("start-up: rolling back drill {}, interrupted by a restart", d.record.id)
            } else if self.memory.last_change.is_some() {
                "start-up: re-applying the last recorded plan".to_string()
            } else {
                "start-up: applying the configured weights".to_string()
            };
            let plan = TrafficPlan {
                id: PlanId::new(),
                epoch: self.leadership.epoch,
                weights: decision.weights.clone(),
                kind,
                reason,
                reasons: decision.reasons.clone(),
                inputs: json!({ "regions": inputs.regions, "policy_quorum": self.config.policy.quorum }),
                decided_at: now,
            };
            self.send_plan(plan.clone()).await;
            self.synced = true;
            sent = Some(plan);
        }
        self.memory = decision.memory.clone();
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

    async fn send_plan(&mut self, plan: TrafficPlan) {
        info!(plan = %plan.id, kind = plan.kind.as_str(), weights = %plan.weights, reason = %plan.reason, "new plan");
        let ack = self.store.send_acked(Write::Plan {
            plan: Box::new(plan.clone()),
            vantage: self.config.orchestrator.vantage.to_string(),
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

    /// Follows `decide`'s alarms: raises the ones it asks for, clears the ones of its kinds it no
    /// longer asks for (the engine's own kinds are left alone), and sets the metric per kind.
    fn sync_alarms(&mut self, d: &Decision, now: DateTime<Utc>) {
        let wanted: BTreeMap<AlarmKey, String> = d.alarms.iter().map(|a| (a.key(), a.message.clone())).collect();
        let stale: Vec<AlarmKey> =
            self.alarms.keys().filter(|k| k.kind.raised_by_decide() && !wanted.contains_key(*k)).cloned().collect();
        for k in stale {
            self.clear_alarm(&k, now);
        }
        for (k, msg) in wanted {
            self.raise_alarm(k, msg, now);
        }
        for kind in AlarmKind::ALL {
            self.metrics.set_alarms(kind, self.alarms.keys().filter(|k| k.kind == kind).count());
        }
    }

    fn publish(&mut self, now: DateTime<Utc>, force: bool) {
        if !force && self.last_publish.is_some_and(|t| t.elapsed() < Duration::from_millis(100)) {
            return;
        }
        self.last_publish = Some(Instant::now());
        let status = self.snapshot(now);
        self.ch.status.send_replace(Arc::new(status));
    }

    /// Builds the status read model.
    pub(crate) fn snapshot(&self, now: DateTime<Utc>) -> Status {
        let weights: Weights = self.memory.current.clone();
        let regions = self
            .config
            .regions
            .iter()
            .map(|r| {
                let rt = self.regions.get(&r.name);
                let layers =
                    self.layers_of(&r.name).into_iter().map(|(layer, health)| LayerStatus { layer, health }).collect();
                let checks = r
                    .checks
                    .iter()
                    .filter_map(|c| self.checks.get(&c.id).map(|rt| (c, rt)))
                    .map(|(c, rt)| CheckStatus {
                        name: c.id.name.clone(),
                        layer: rt.layer,
                        kind: rt.kind,
                        target: rt.target.clone(),
                        health: rt.state.health,
                        since: rt.state.since,
                        last_outcome: rt.last.as_ref().map(|o| o.outcome),
                        last_latency_ms: rt.last.as_ref().map(|o| o.latency.as_secs_f64() * 1000.0),
                        last_error: rt.last.as_ref().and_then(|o| o.error.clone()),
                        last_at: rt.last.as_ref().map(|o| o.at),
                        fail_streak: rt.state.fail_streak,
                        fall: rt.thresholds.fall,
                        rise: rt.thresholds.rise,
                        recent: rt.recent.iter().cloned().collect(),
                    })
                    .collect();
                RegionStatus {
                    name: r.name.clone(),
                    role: r.role,
                    health: self.health_with_lag(&r.name).0,
                    since: rt.and_then(|x| x.since),
                    normal_weight: r.weight,
                    weight: weights.get(&r.name),
                    address: r.address.map(|a| a.to_string()),
                    maintenance: self.maintenance.get(&r.name).cloned(),
                    layers,
                    checks,
                    lag: self.lag.get(&r.name).cloned().filter(|_| r.name != self.writer),
                }
            })
            .collect();
        let failed_over = self.config.regions.iter().any(|r| weights.get(&r.name) < r.weight);
        let (decided_at, reasons) = match &self.decision {
            Some((at, d)) => (Some(*at), d.reasons.clone()),
            None => (None, vec!["starting".to_string()]),
        };
        let mut reasons = reasons;
        if !self.leadership.leader {
            reasons.insert(0, "not the leader: observing only".to_string());
        }
        Status {
            generated_at: now,
            vantage: self.config.orchestrator.vantage.clone(),
            leadership: self.leadership,
            regions,
            plan: self.plan.as_ref().map(|p| PlanStatus {
                plan: p.plan.clone(),
                recorded: p.recorded,
                providers: p.providers.values().cloned().collect(),
                verified_at: p.verified_at,
            }),
            acting: Acting { active: self.leadership.leader && self.synced, reasons, decided_at },
            alarms: self
                .alarms
                .iter()
                .map(|(key, a)| AlarmStatus {
                    kind: key.kind,
                    region: key.region.clone(),
                    message: a.message.clone(),
                    since: a.since,
                })
                .collect(),
            store: self.store.status(),
            drift: self.drift.values().cloned().collect(),
            failed_over,
            drill: self.drill.as_ref().map(|d| d.status()),
            operator_hold: self.hold.clone(),
            writer: self.writer.clone(),
            promotion: self.promotion.clone(),
        }
    }
}

/// Shows a drift report as the provider's latest report on the current plan.
fn cur_providers_insert(plan: &mut Option<CurrentPlan>, rep: ApplyReport) {
    if let Some(cur) = plan {
        cur.providers.insert(rep.provider.clone(), rep);
    }
}

/// Incident timeline hooks (issue 7): the engine tells the pure tracker what it saw and
/// stores every incident it returns.
impl Engine {
    fn store_incident(&self, incident: crate::incidents::Incident) {
        self.store.send(Write::Incident(Box::new(incident)));
    }

    fn incident_probe(&mut self, obs: &Observation) {
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

    fn incident_transition(
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

    fn incident_plan(&mut self, plan: &TrafficPlan) {
        let quorum = self
            .regions
            .iter()
            .filter(|(_, r)| r.health == Health::Down)
            .map(|(name, _)| (name.clone(), (1, self.config.policy.quorum)))
            .collect();
        let before = self.memory.current.clone();
        for i in self.incidents.plan_decided(plan, &before, &quorum, plan.decided_at) {
            self.store_incident(i);
        }
    }

    fn incident_report(&mut self, rep: &ApplyReport, first_report: bool, all_verified: bool) {
        let outcome = match &rep.result {
            ApplyResult::Verified => format!("verified after {} attempt(s)", rep.attempts),
            ApplyResult::Failed { error, .. } => format!("failed (attempt {}): {error}", rep.attempts),
            ApplyResult::Superseded => "superseded".to_string(),
            ApplyResult::CircuitOpen { retry_in } => {
                format!("circuit open, next probe in {}", humantime::format_duration(*retry_in))
            }
            ApplyResult::Drift { live, .. } => format!("drift: serves {live}"),
        };
        for i in self.incidents.report(rep.plan_id, &rep.provider, &outcome, first_report, all_verified, rep.at) {
            self.store_incident(i);
        }
    }
}
