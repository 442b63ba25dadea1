//! Coordination in the engine: leadership changes, the peers' views and the
//! quorum view decide acts on, plans published by the leader, and the alarms
//! about a suspect path or a lost etcd session.
//!
//! A follower keeps its decision memory on the leader's published plans (and
//! records each in its own store), so that when it takes over it carries the
//! cluster's plan on instead of its own guess. When a peer sees a region start
//! failing that this orchestrator sees healthy, the region's probes run at once,
//! so a quorum costs little time.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tracing::{info, warn};

use super::Engine;
use super::start::adopt_plan;
use crate::alarm::{AlarmKey, AlarmKind};
use crate::coord::view::{QuorumRegion, RegionView, View, Voter, quorum_view};
use crate::coord::{CoordHealth, Peers, PublishedPlan};
use crate::health::Health;
use crate::plan::PlanId;
use crate::region::RegionName;
use crate::status::VantageView;
use crate::store::records::Write;

/// How long one vantage may see a region down alone before its path is called suspect.
const SUSPECT_AFTER: chrono::Duration = chrono::Duration::seconds(20);

/// The engine's coordination state.
#[derive(Default)]
pub(super) struct CoordState {
    /// The latest views of the other orchestrators.
    pub(super) peers: Arc<Peers>,
    /// A new leader's reason for its first plan ("took over …").
    pub(super) takeover: Option<String>,
    /// The last plan id seen published (to record each once).
    last_published: Option<PlanId>,
    /// (vantage, region) → since when that vantage alone sees the region down.
    lonely_down: BTreeMap<(RegionName, RegionName), DateTime<Utc>>,
    /// (vantage, region) pairs whose suspicion already made this orchestrator re-probe.
    nudged: BTreeSet<(RegionName, RegionName)>,
    /// The backend's health, as last seen.
    health: Option<CoordHealth>,
}

impl Engine {
    /// Leadership changed: a new leader carries etcd's plan on and re-applies it in its epoch.
    pub(super) fn on_standing(&mut self, now: DateTime<Utc>) {
        let standing = self.ch.coord.standing.borrow_and_update().clone();
        let was = self.leadership.leader;
        self.leadership = standing.leadership.clone();
        self.metrics.set_leader(self.leadership.leader);
        self.follow_injection();
        if self.leadership.leader && !was {
            if let Some(p) = &standing.plan {
                adopt_plan(&mut self.memory, &p.plan, &self.config);
                self.coordination.takeover = Some(format!(
                    "took over as leader in epoch {}: re-applying the current plan {} (decided by {})",
                    self.leadership.epoch, self.memory.current, p.leader
                ));
            }
            info!(epoch = %self.leadership.epoch, weights = %self.memory.current, "leading: (re-)applying the current plan in the new epoch");
            self.synced = false;
            self.audit_system("leadership.acquired", format!("leader in epoch {}", self.leadership.epoch), now);
        } else if was && !self.leadership.leader {
            warn!(holder = ?self.leadership.holder, "no longer the leader: observing only");
            self.audit_system("leadership.lost", "stepped down: observing only".into(), now);
        }
        self.dirty = true;
    }

    /// New peer views: re-probe regions a peer has started to suspect, and re-decide.
    pub(super) fn on_peers(&mut self) {
        let peers = self.ch.coord.peers.borrow_and_update().clone();
        let mut suspected = BTreeSet::new();
        for (vantage, peer) in peers.iter() {
            for r in &peer.view.regions {
                if r.suspect || matches!(r.health, Health::Down | Health::Degraded) {
                    suspected.insert((vantage.clone(), r.name.clone()));
                }
            }
        }
        for key in &suspected {
            let region = &key.1;
            let mine_ok = self.regions.get(region).is_some_and(|r| r.health == Health::Up)
                && !self.checks.iter().any(|(id, c)| &id.region == region && c.state.fail_streak > 0);
            if mine_ok
                && !self.coordination.nudged.contains(key)
                && let Some(tx) = self.ch.reprobe.get(region)
            {
                tx.send_modify(|n| *n += 1);
                info!(%region, vantage = %key.0, "a peer suspects the region: probing it now");
            }
        }
        self.coordination.nudged = suspected;
        self.coordination.peers = peers;
        self.follow_injection();
        self.dirty = true;
    }

    /// A plan published in etcd: recorded in this orchestrator's store once; a follower's
    /// decision memory follows it.
    pub(super) fn on_published_plan(&mut self, p: PublishedPlan, _now: DateTime<Utc>) {
        if self.coordination.last_published == Some(p.plan.id) {
            return;
        }
        self.coordination.last_published = Some(p.plan.id);
        let own = self.plan.as_ref().is_some_and(|c| c.plan.id == p.plan.id);
        if own {
            return; // recorded when it was sent
        }
        info!(plan = %p.plan.id, leader = %p.leader, epoch = %p.plan.epoch, weights = %p.plan.weights, "plan published by the leader");
        self.store.send(Write::Plan { plan: Box::new(p.plan.clone()), vantage: p.leader.clone() });
        if !self.leadership.leader {
            adopt_plan(&mut self.memory, &p.plan, &self.config);
            self.plan = Some(super::CurrentPlan {
                plan: p.plan,
                recorded: true,
                providers: BTreeMap::new(),
                verified_at: None,
            });
        }
        self.dirty = true;
    }

    /// The etcd session came or went: `coordination_lost` while it is gone.
    pub(super) fn on_coord_health(&mut self, now: DateTime<Utc>) {
        let h = self.ch.coord.health.borrow_and_update().clone();
        let key = AlarmKey::global(AlarmKind::CoordinationLost);
        if h.connected {
            self.clear_alarm(&key, now);
        } else if h.backend == "etcd" {
            let why = h.last_error.clone().unwrap_or_else(|| "not connected yet".into());
            self.raise_alarm(
                key,
                format!(
                    "no session with the etcd majority ({why}): this orchestrator neither leads nor votes; the providers keep the last plan"
                ),
                now,
            );
        }
        self.coordination.health = Some(h);
        self.dirty = true;
    }

    /// This orchestrator's own view of every region.
    pub(super) fn own_view(&self, now: DateTime<Utc>) -> View {
        let regions = self
            .config
            .regions
            .iter()
            .map(|r| {
                let (health, lag_note) = self.health_with_lag(&r.name);
                let mut reasons: Vec<String> = lag_note.into_iter().collect();
                let mut suspect = false;
                for (id, c) in self.checks.iter().filter(|(id, _)| id.region == r.name) {
                    if c.state.fail_streak > 0 || c.state.health == Health::Down {
                        suspect = true;
                        let err = c.last.as_ref().and_then(|o| o.error.clone()).unwrap_or_default();
                        reasons.push(format!("{}: {err}", id.name));
                    }
                }
                RegionView {
                    name: r.name.clone(),
                    health,
                    since: self.regions.get(&r.name).and_then(|x| x.since),
                    suspect,
                    reasons,
                }
            })
            .collect();
        View {
            vantage: self.config.orchestrator.vantage.clone(),
            at: now,
            regions,
            synthetic: self.published_injection(),
        }
    }

    /// Sends the own view to the backend when its content changed (the backend heartbeats it).
    pub(super) fn publish_view(&mut self, now: DateTime<Utc>) {
        let view = self.own_view(now);
        self.ch.coord.view.send_if_modified(|cur| match cur {
            Some(c) if c.same_content(&view) => false,
            _ => {
                *cur = Some(view);
                true
            }
        });
    }

    /// The quorum verdict on every region from the fresh views (own included).
    pub(super) fn verdicts(&self, own: &View) -> Vec<QuorumRegion> {
        let ttl = self.config.coordination.view_ttl;
        let mut voters = vec![Voter { view: own, fresh: true }];
        for (vantage, p) in self.coordination.peers.iter() {
            if self.config.coordination.vantages.contains(vantage) {
                voters.push(Voter { view: &p.view, fresh: p.received.elapsed() < ttl });
            }
        }
        let names: Vec<RegionName> = self.config.regions.iter().map(|r| r.name.clone()).collect();
        let configured = if self.config.coordination.backend == crate::config::Backend::Single {
            1
        } else {
            self.config.coordination.vantages.len()
        };
        quorum_view(&names, &voters, self.config.policy.quorum, configured)
    }

    /// Every vantage's view of `region`, own first, for the status page.
    pub(super) fn vantage_views(&self, region: &RegionName, own: &View) -> Vec<VantageView> {
        let ttl = self.config.coordination.view_ttl;
        let mut out = Vec::new();
        let mut push = |v: &View, fresh: bool, age_ms: Option<u64>| {
            if let Some(r) = v.region(region) {
                out.push(VantageView {
                    vantage: v.vantage.clone(),
                    health: r.health,
                    since: r.since,
                    fresh,
                    age_ms,
                    reasons: r.reasons.clone(),
                });
            }
        };
        push(own, true, Some(0));
        for p in self.coordination.peers.values() {
            let age = p.received.elapsed();
            push(&p.view, age < ttl, Some(age.as_millis() as u64));
        }
        out
    }

    /// Raises `suspect_path` when one vantage alone has seen a region down for a while that
    /// every other fresh vantage sees up; clears it when they agree again.
    pub(super) fn track_suspect_paths(&mut self, now: DateTime<Utc>) {
        if self.config.coordination.vantages.len() < 2 {
            return;
        }
        let own = self.own_view(now);
        let verdicts = self.verdicts(&own);
        let mut lonely = BTreeSet::new();
        for v in &verdicts {
            if v.down_votes >= 1 && v.down_votes < self.config.policy.quorum && !v.up_from.is_empty() {
                for vantage in &v.down_from {
                    lonely.insert((vantage.clone(), v.name.clone()));
                }
            }
        }
        self.coordination.lonely_down.retain(|k, _| lonely.contains(k));
        for k in &lonely {
            self.coordination.lonely_down.entry(k.clone()).or_insert(now);
        }
        let mut suspects: BTreeMap<RegionName, String> = BTreeMap::new();
        for ((vantage, region), since) in &self.coordination.lonely_down {
            if now.signed_duration_since(*since) >= SUSPECT_AFTER {
                let up: Vec<String> = verdicts
                    .iter()
                    .find(|v| &v.name == region)
                    .map(|v| v.up_from.iter().map(|x| x.to_string()).collect())
                    .unwrap_or_default();
                suspects.insert(
                    vantage.clone(),
                    format!(
                        "{vantage} has seen {region} down since {} while {} see it up: the path from {vantage} to {region} is suspect",
                        since.format("%H:%M:%S"),
                        up.join(", ")
                    ),
                );
            }
        }
        let raised: Vec<AlarmKey> = self.alarms.keys().filter(|k| k.kind == AlarmKind::SuspectPath).cloned().collect();
        for k in raised {
            if !k.region.as_ref().is_some_and(|r| suspects.contains_key(r)) {
                self.clear_alarm(&k, now);
            }
        }
        for (vantage, msg) in suspects {
            self.raise_alarm(AlarmKey::of_region(AlarmKind::SuspectPath, vantage), msg, now);
        }
    }

    /// The backend's health for the status page.
    pub(super) fn coord_health(&self) -> Option<CoordHealth> {
        self.coordination.health.clone().or_else(|| Some(self.ch.coord.health.borrow().clone()))
    }

    fn audit_system(&self, action: &str, outcome: String, at: DateTime<Utc>) {
        self.store.send(Write::Audit(crate::store::AuditRecord {
            id: uuid::Uuid::new_v4(),
            at,
            actor: format!("system:{}", self.config.orchestrator.vantage),
            action: action.into(),
            target: None,
            outcome,
            request_id: None,
            details: serde_json::json!({ "epoch": self.leadership.epoch }),
        }));
    }
}
