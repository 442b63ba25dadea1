//! Apply reports: per-provider outcomes of the current plan, verification and drift.
//!
//! The applier reports every attempt. A plan is *verified* once every configured
//! provider read it back; then its weights become the metrics' weights, operations
//! and drills waiting for it move on, and a verified failover may promote the new
//! writer. Failures raise `provider_failing`, drift raises `provider_drift`, slow
//! DNS propagation raises `propagation_slow`; reports for older plans are only
//! recorded.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tracing::info;

use super::{CurrentPlan, Engine};
use crate::alarm::{AlarmKey, AlarmKind};
use crate::plan::PlanKind;
use crate::status::ProviderDrift;
use crate::store::records::Write;
use crate::traffic::applier::{ApplyReport, ApplyResult};

impl Engine {
    /// One provider's report: recorded; on the current plan also shown, checked for
    /// verification on every provider, and turned into alarms and incident milestones.
    pub(super) fn on_report(&mut self, rep: ApplyReport) {
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
            // A synthetic-failure drill's failover is counted apart, so that alerts on real
            // failovers leave rehearsals out.
            let synthetic = self.synthetic.as_ref().and_then(|s| s.record.report.synthetic.as_ref()?.automatic_plan);
            let kind = if synthetic == Some(cur.plan.id) { "synthetic_failover" } else { cur.plan.kind.as_str() };
            self.metrics.plan_applied(kind);
            for (r, w) in cur.plan.weights.iter() {
                self.metrics.set_weight(r, w);
            }
            info!(plan = %cur.plan.id, kind = cur.plan.kind.as_str(), weights = %cur.plan.weights, "plan verified on every provider");
        }
        let verified_at = cur.verified_at;
        let promote_after = (newly_verified && cur.plan.kind == PlanKind::Failover).then(|| cur.plan.weights.clone());
        if let ApplyResult::Failed { error, .. } | ApplyResult::Refused { error } = &rep.result {
            let msg = format!("provider {} failed to apply plan {}: {error}", rep.provider, rep.plan_id);
            if let Some(d) = &mut self.drill {
                d.record.report.note_error(msg);
            }
        }
        if let ApplyResult::Refused { error } = &rep.result {
            let msg = format!(
                "write of plan {} (epoch {}) to {} refused: {error}",
                rep.plan_id,
                self.plan.as_ref().map_or(0, |p| p.plan.epoch.0),
                rep.provider
            );
            tracing::warn!(%msg, "stale write refused");
            self.raise_alarm(AlarmKey::global(AlarmKind::StaleWriteRefused), msg, rep.at);
        }
        if newly_verified {
            self.on_plan_verified(rep.plan_id, rep.at);
            self.note_synthetic_verified(rep.plan_id, rep.at);
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
                self.clear_alarm(&AlarmKey::global(AlarmKind::StaleWriteRefused), rep.at);
            }
        }
        if let Some(p) = &rep.propagation {
            self.note_synthetic_propagation(rep.plan_id, p.converged, rep.at);
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

    /// The `provider_drift` alarm follows the drift map; the metric is set by the applier.
    pub(super) fn sync_drift_alarm(&mut self, at: DateTime<Utc>) {
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
}

/// Shows a drift report as the provider's latest report on the current plan.
fn cur_providers_insert(plan: &mut Option<CurrentPlan>, rep: ApplyReport) {
    if let Some(cur) = plan {
        cur.providers.insert(rep.provider.clone(), rep);
    }
}
