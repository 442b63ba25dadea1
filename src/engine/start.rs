//! Start-up: the engine built from the configuration and what the store remembered.
//!
//! The last recorded plan, the maintenance list, the operator hold and the
//! writer region are resumed when they still fit the configured regions; a live
//! drill the previous run left unfinished is rolled back by the first plan.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use chrono::Utc;
use tokio::time::Instant;
use tracing::{info, warn};

use super::drill::ActiveDrill;
use super::{CheckRuntime, Engine, EngineChannels, RegionRuntime};
use crate::config::Config;
use crate::decide::Memory;
use crate::drill::DrillRecord;
use crate::health::{CheckState, Health, Thresholds};
use crate::metrics::Metrics;
use crate::operation::HoldRecord;
use crate::plan::{PlanKind, TrafficPlan, Weights};
use crate::region::RegionName;
use crate::store::writer::StoreHandle;
use crate::supervise::Heartbeat;

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
        store: StoreHandle,
        ch: EngineChannels,
        metrics: Arc<Metrics>,
        resume: Resume,
    ) -> Self {
        let checks = config
            .checks()
            .map(|c| {
                let target = c.kind.target();
                (
                    c.id.clone(),
                    CheckRuntime {
                        layer: c.layer,
                        thresholds: Thresholds { fall: c.fall, rise: c.rise },
                        kind: c.kind.type_name(),
                        passive: c.kind.is_passive(),
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
        let leadership = ch.coord.standing.borrow().leadership.clone();
        let mut memory = Memory::normal(&config.policy);
        // etcd's plan is the cluster's; the store's is this orchestrator's own history.
        let published = ch.coord.standing.borrow().plan.clone().map(|p| p.plan);
        if let Some(plan) = published.as_ref().or(resume.plan.as_ref()) {
            if adopt_plan(&mut memory, plan, &config) {
                info!(plan = %plan.id, weights = %plan.weights, "resuming the last plan");
            } else {
                warn!(plan = %plan.id, "last plan does not match the configured regions; starting from normal weights");
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
        // With etcd, another leader may have moved on since: roll back only a drill whose plan is still the cluster's.
        let drill_still_current = published.as_ref().is_none_or(|p| p.kind == PlanKind::Drill);
        let drill = resume.interrupted_drill.filter(|d| fits(&d.baseline) && drill_still_current).map(|d| {
            warn!(drill = %d.id, baseline = %d.baseline, "a drill was interrupted by a restart: rolling back to its baseline");
            memory.current = d.baseline.clone();
            ActiveDrill::interrupted(d, Utc::now())
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
            synthetic: None,
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
            traces: None,
            coordination: Default::default(),
            heartbeat: None,
        }
    }

    /// Beats `heartbeat` after every completed cycle of the loop (liveness, `/healthz`).
    pub fn with_heartbeat(mut self, heartbeat: Heartbeat) -> Self {
        self.heartbeat = Some(heartbeat);
        self
    }
}

/// Makes `plan` the decision memory's current weights if it fits the configured regions;
/// a failover plan's emptied regions count as evacuated (failback rules apply to them).
pub(super) fn adopt_plan(memory: &mut Memory, plan: &TrafficPlan, config: &Config) -> bool {
    let same_regions = plan.weights.0.keys().eq(memory.current.0.keys());
    if !same_regions || plan.weights.total() != 100 {
        return false;
    }
    memory.current = plan.weights.clone();
    memory.last_change = Some(plan.decided_at);
    for (r, w) in plan.weights.iter() {
        if w > 0 {
            memory.evacuated.remove(r);
        } else if plan.kind == PlanKind::Failover && config.policy.region(r).is_some_and(|p| p.normal_weight > 0) {
            memory.evacuated.insert(r.clone());
        }
    }
    true
}
