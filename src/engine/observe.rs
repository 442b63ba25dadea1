//! Observations and lag: per-check hysteresis, region health, and the inputs `decide` sees.
//!
//! Every probe result goes through its check's fall/rise counters; a check
//! transition recomputes the region's health, records both transitions and
//! marks the engine dirty so the next `step` re-decides. Lag samples are kept
//! per standby; a lag over `degrade_lag` shows the region degraded.

use chrono::{DateTime, Utc};
use serde_json::json;
use tracing::{info, instrument, warn};
use uuid::Uuid;

use super::{Engine, RECENT_SAMPLES};
use crate::decide::{Inputs, RegionInput};
use crate::health::{self, Health};
use crate::lag::LagSample;
use crate::notify::NotifyKind;
use crate::observation::Observation;
use crate::region::{Layer, RegionName};
use crate::store::records::{TransitionRecord, Write};

impl Engine {
    /// Records the latest lag of a standby; the next decision uses it.
    pub(crate) fn on_lag(&mut self, sample: LagSample) {
        if self.lag.get(&sample.region).is_none_or(|old| old.reading() != sample.reading() || old.state != sample.state)
        {
            self.dirty = true;
        }
        self.note_drill_lag(&sample);
        self.metrics.set_lag(&sample.region, &sample.reading());
        self.lag.insert(sample.region.clone(), sample);
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
        self.note_synthetic_observation(&obs);
        if let Some(t) = transition {
            self.incident_transition(&obs.check.region, Some(&obs.check.name), t.from, t.to, obs.at);
            info!(region = %obs.check.region, check = %obs.check.name, from = %t.from, to = %t.to, error = obs.error.as_deref(), "check health changed");
            self.metrics.set_check_health(&obs.check, layer, t.to);
            self.store.send(Write::Transition(TransitionRecord {
                id: Uuid::new_v4(),
                at: obs.at,
                vantage: self.config.orchestrator.vantage.clone(),
                region: obs.check.region.clone(),
                check_name: Some(obs.check.name.clone()),
                layer: Some(layer),
                from: t.from,
                to: t.to,
                detail: obs.error.clone().or(obs.detail.clone()),
            }));
            self.update_region(&obs.check.region, obs.at, obs.error.clone());
            self.dirty = true;
        }
    }

    /// Recomputes a region's health from its layers (exported per layer); records, notifies and
    /// counts a change.
    pub(super) fn update_region(&mut self, region: &RegionName, at: DateTime<Utc>, detail: Option<String>) {
        let layers = self.layers_of(region);
        for (layer, lh) in &layers {
            self.metrics.set_layer_health(region, *layer, *lh);
        }
        let h = health::region_health(&layers);
        let note = self.synthetic_note(region);
        let Some(rt) = self.regions.get_mut(region) else { return };
        if rt.health != h {
            info!(region = %region, from = %rt.health, to = %h, synthetic = note.as_deref(), "region health changed");
            self.store.send(Write::Transition(TransitionRecord {
                id: Uuid::new_v4(),
                at,
                vantage: self.config.orchestrator.vantage.clone(),
                region: region.clone(),
                check_name: None,
                layer: None,
                from: rt.health,
                to: h,
                detail,
            }));
            let from = rt.health;
            let text = match &note {
                Some(n) => format!("region {region}: {from} → {h} ({n})"),
                None => format!("region {region}: {from} → {h}"),
            };
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
    pub(super) fn health_with_lag(&self, region: &RegionName) -> (Health, Option<String>) {
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

    /// The health of each layer of a region (None: no check on that layer). A passive check
    /// counts only while it is degraded or down: its up, or its not knowing yet, is no evidence
    /// of health, so it can make a layer worse and never better.
    pub(super) fn layers_of(&self, region: &RegionName) -> Vec<(Layer, Option<Health>)> {
        Layer::ALL
            .iter()
            .map(|l| {
                let hs = self
                    .checks
                    .iter()
                    .filter(|(id, rt)| &id.region == region && rt.layer == *l)
                    .filter(|(_, rt)| !rt.passive || matches!(rt.state.health, Health::Degraded | Health::Down))
                    .map(|(_, rt)| rt.state.health);
                (*l, health::layer_health(hs))
            })
            .collect()
    }

    /// What `decide` sees now: each region's health (with lag), lag, maintenance and the
    /// notes on checks approaching their fall threshold; the hold's lag override.
    pub(super) fn inputs(&self) -> Inputs {
        let own = self.own_view(Utc::now());
        let verdicts = self.verdicts(&own);
        let regions = self
            .config
            .regions
            .iter()
            .zip(verdicts)
            .map(|(r, verdict)| {
                let rt = self.regions.get(&r.name);
                let (_, lag_note) = self.health_with_lag(&r.name);
                let mut notes: Vec<String> = lag_note.into_iter().collect();
                notes.extend(verdict.note.clone());
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
                    health: verdict.health,
                    since: rt.and_then(|x| x.since),
                    down_votes: verdict.down_votes,
                    vantages: verdict.voters.max(1),
                    lag: self.lag.get(&r.name).map(LagSample::reading),
                    maintenance: self.maintenance.contains_key(&r.name),
                    notes,
                }
            })
            .collect();
        let lag_overrides = self.hold.iter().filter_map(|h| h.lag_override.clone()).collect();
        Inputs { regions, lag_overrides, automation_paused: false }
    }
}

/// A number, or `?` when unknown.
pub(super) fn fmt_opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map(|x| x.to_string()).unwrap_or_else(|| "?".into())
}

/// A lag sample as `<bytes> bytes / <seconds> s`.
pub(super) fn fmt_lag(s: &LagSample) -> String {
    format!("{} bytes / {} s", fmt_opt(s.bytes), fmt_opt(s.seconds.map(|x| format!("{x:.3}"))))
}
