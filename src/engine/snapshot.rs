//! The status snapshot: the engine's live state as the read model the API shows.
//!
//! Built from the engine's state on every publish (at most every 100 ms unless
//! forced) and sent as `Arc<Status>` on the `watch` channel; readers never lock
//! the engine.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;

use super::Engine;
use crate::plan::Weights;
use crate::status::{
    Acting, AlarmStatus, CheckStatus, CoordinationStatus, LayerStatus, PlanStatus, RegionStatus, Status,
};

impl Engine {
    /// Publishes a snapshot, at most every 100 ms unless `force`.
    pub(super) fn publish(&mut self, now: DateTime<Utc>, force: bool) {
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
        let own = self.own_view(now);
        let verdicts = self.verdicts(&own);
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
                    views: self.vantage_views(&r.name, &own),
                    quorum_note: verdicts.iter().find(|v| v.name == r.name).and_then(|v| v.note.clone()),
                    name: r.name.clone(),
                    role: r.role,
                    health: self.health_with_lag(&r.name).0,
                    since: rt.and_then(|x| x.since),
                    normal_weight: self.config.policy.normal_weight(&r.name),
                    weight: weights.get(&r.name),
                    address: r.address.map(|a| a.to_string()),
                    maintenance: self.maintenance.get(&r.name).cloned(),
                    layers,
                    checks,
                    lag: self.lag.get(&r.name).cloned().filter(|_| r.name != self.writer),
                }
            })
            .collect();
        let failed_over =
            self.config.regions.iter().any(|r| weights.get(&r.name) < self.config.policy.normal_weight(&r.name));
        let (decided_at, reasons) = match &self.decision {
            Some((at, d)) => (Some(*at), d.reasons.clone()),
            None => (None, vec!["starting".to_string()]),
        };
        let mut reasons = reasons;
        if !self.leadership.leader {
            let who = match (&self.leadership.holder, &self.leadership.leader_api) {
                (Some(h), Some(api)) => format!("the leader is {h} ({api}), epoch {}", self.leadership.epoch),
                (Some(h), None) => format!("the leader is {h}, epoch {}", self.leadership.epoch),
                _ => "no leader known".to_string(),
            };
            reasons.insert(0, format!("not the leader ({who}): observing only"));
        }
        Status {
            generated_at: now,
            vantage: self.config.orchestrator.vantage.clone(),
            leadership: self.leadership.clone(),
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
            drill: self.drill.as_ref().map(|d| d.status()).or_else(|| self.synthetic.as_ref().map(|s| s.status())),
            operator_hold: self.hold.clone(),
            writer: self.writer.clone(),
            promotion: self.promotion.clone(),
            coordination: CoordinationStatus {
                backend: self.coord_health(),
                quorum: self.config.policy.quorum,
                vantages: self.config.coordination.vantages.clone(),
            },
        }
    }
}
