//! Prometheus metrics, served at `/metrics` in the text exposition format.
//!
//! Updated by the shell (runners, engine, applier, store writer), never by the
//! pure core. The families are atomics inside; sharing `Arc<Metrics>` shares
//! no lock.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::alarm::AlarmKind;
use crate::breaker::BreakerPhase;
use crate::health::Health;
use crate::lag::LagReading;
use crate::observation::Outcome;
use crate::plan::PlanKind;
use crate::region::{CheckId, Layer, RegionName};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CheckLabels {
    region: String,
    check: String,
    layer: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    region: String,
    check: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LayerLabels {
    region: String,
    layer: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RegionLabels {
    region: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProviderLabels {
    provider: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ApplyLabels {
    provider: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TaskLabels {
    task: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LimitLabels {
    limit: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TraceLabels {
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NotifyLabels {
    target: String,
    outcome: String,
}

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// Every metric the orchestrator exports.
pub struct Metrics {
    registry: Registry,
    probe_latency: Family<CheckLabels, Histogram, fn() -> Histogram>,
    probe_outcomes: Family<OutcomeLabels, Counter>,
    check_health: Family<CheckLabels, Gauge>,
    layer_health: Family<LayerLabels, Gauge>,
    region_health: Family<RegionLabels, Gauge>,
    lag_bytes: Family<RegionLabels, Gauge>,
    lag_seconds: Family<RegionLabels, Gauge<f64, AtomicU64>>,
    region_weight: Family<RegionLabels, Gauge>,
    plans_applied: Family<KindLabels, Counter>,
    provider_errors: Family<ProviderLabels, Counter>,
    provider_apply: Family<ApplyLabels, Histogram, fn() -> Histogram>,
    provider_drift: Family<ProviderLabels, Gauge>,
    provider_breaker: Family<ProviderLabels, Gauge>,
    notifications: Family<NotifyLabels, Counter>,
    incident_traces: Family<TraceLabels, Counter>,
    alarms: Family<KindLabels, Gauge>,
    store_pending: Gauge,
    store_dead_letters: Counter,
    store_thinned: Family<KindLabels, Counter>,
    store_spill_entries: Gauge,
    leader: Gauge,
    synthetic_injected: Gauge,
    task_restarts: Family<TaskLabels, Counter>,
    http_auth_refused: Family<ReasonLabels, Counter>,
    http_rate_limited: Family<LimitLabels, Counter>,
    http_streams: Gauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

/// Health as a number: 2 up, 1 degraded, 0 down, -1 unknown.
pub fn health_value(h: Health) -> i64 {
    match h {
        Health::Up => 2,
        Health::Degraded => 1,
        Health::Down => 0,
        Health::Unknown => -1,
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every family.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("fo");
        let probe_latency = Family::<CheckLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        registry.register("probe_latency_seconds", "Probe latency per check", probe_latency.clone());
        let probe_outcomes = Family::<OutcomeLabels, Counter>::default();
        registry.register("probe_outcomes", "Probe results per check and outcome", probe_outcomes.clone());
        let check_health = Family::<CheckLabels, Gauge>::default();
        registry.register("check_health", "Check health: 2 up, 1 degraded, 0 down, -1 unknown", check_health.clone());
        let layer_health = Family::<LayerLabels, Gauge>::default();
        registry.register(
            "layer_health",
            "Layer health (the worst of its checks): 2 up, 1 degraded, 0 down, -1 unknown",
            layer_health.clone(),
        );
        let region_health = Family::<RegionLabels, Gauge>::default();
        registry.register(
            "region_health",
            "Region health: 2 up, 1 degraded, 0 down, -1 unknown",
            region_health.clone(),
        );
        let lag_bytes = Family::<RegionLabels, Gauge>::default();
        registry.register(
            "replication_lag_bytes",
            "Bytes of WAL a standby is behind its primary (no series while unknown)",
            lag_bytes.clone(),
        );
        let lag_seconds = Family::<RegionLabels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "replication_lag_seconds",
            "Seconds a standby is behind its primary (no series while unknown)",
            lag_seconds.clone(),
        );
        let region_weight = Family::<RegionLabels, Gauge>::default();
        registry.register("region_weight", "Current traffic weight per region (percent)", region_weight.clone());
        let plans_applied = Family::<KindLabels, Counter>::default();
        // Every kind from zero, so that `increase()` sees the first failover (a counter series that
        // appears at 1 has no increase in Prometheus).
        // A synthetic-failure drill's failover is `synthetic_failover`, apart from real ones.
        for kind in PlanKind::ALL.iter().map(|k| k.as_str()).chain(["synthetic_failover"]) {
            let _ = plans_applied.get_or_create(&KindLabels { kind: kind.to_string() });
        }
        registry.register(
            "plans_applied",
            "Plans applied and verified, by kind (a synthetic-failure drill's failover: synthetic_failover)",
            plans_applied.clone(),
        );
        let provider_errors = Family::<ProviderLabels, Counter>::default();
        registry.register("provider_errors", "Failed provider calls (apply or read-back)", provider_errors.clone());
        let provider_apply = Family::<ApplyLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        registry.register(
            "provider_apply_seconds",
            "Time of one apply attempt (leadership fence, write, read-back) per provider and outcome (ok, failed)",
            provider_apply.clone(),
        );
        let provider_drift = Family::<ProviderLabels, Gauge>::default();
        registry.register(
            "provider_drift",
            "1 while a provider's live weights differ from the plan (drift check)",
            provider_drift.clone(),
        );
        let provider_breaker = Family::<ProviderLabels, Gauge>::default();
        registry.register(
            "provider_breaker",
            "Provider circuit breaker: 0 closed, 1 half-open, 2 open",
            provider_breaker.clone(),
        );
        let notifications = Family::<NotifyLabels, Counter>::default();
        registry.register(
            "notifications",
            "Notifications by target and outcome (sent, suppressed, failed)",
            notifications.clone(),
        );
        let incident_traces = Family::<TraceLabels, Counter>::default();
        registry.register(
            "incident_traces",
            "Incident traces by outcome: sent (OTLP receiver accepted it), failed (dropped after \
             its retries), dropped (a snapshot the full queue could not take)",
            incident_traces.clone(),
        );
        let alarms = Family::<KindLabels, Gauge>::default();
        registry.register("alarms", "Active alarms by kind", alarms.clone());
        let store_pending = Gauge::default();
        registry.register(
            "store_pending_writes",
            "Store writes buffered while the store is unreachable",
            store_pending.clone(),
        );
        let store_dead_letters = Counter::default();
        registry.register(
            "store_dead_letters",
            "Writes the store refused for good, moved to the dead letters",
            store_dead_letters.clone(),
        );
        let store_thinned = Family::<KindLabels, Counter>::default();
        registry.register(
            "store_thinned",
            "Buffered writes thinned out to make room during a store outage, by kind (lag samples only)",
            store_thinned.clone(),
        );
        let store_spill_entries = Gauge::default();
        registry.register(
            "store_spill_entries",
            "Writes in the local spill file, not yet all in the store",
            store_spill_entries.clone(),
        );
        let leader = Gauge::default();
        registry.register("leader", "1 when this orchestrator is the leader", leader.clone());
        let synthetic_injected = Gauge::default();
        registry.register(
            "synthetic_failure_injected",
            "1 while a synthetic-failure drill's failure is injected into this orchestrator's probes (alerts on failovers can leave such rehearsals out)",
            synthetic_injected.clone(),
        );
        let task_restarts = Family::<TaskLabels, Counter>::default();
        registry.register(
            "task_restarts",
            "Restarts of supervised tasks (probe runners, provider workers) after a panic",
            task_restarts.clone(),
        );
        let http_auth_refused = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "http_auth_refused",
            "API requests refused before their handler: reason missing (no token), invalid (bad token), \
             forbidden (role too low), limited (too many invalid tokens from the address)",
            http_auth_refused.clone(),
        );
        let http_rate_limited = Family::<LimitLabels, Counter>::default();
        registry.register(
            "http_rate_limited",
            "API requests answered 429, by limit (mutations, auth_failures, streams)",
            http_rate_limited.clone(),
        );
        let http_streams = Gauge::default();
        registry.register("http_streams", "Open /api/v1/stream clients", http_streams.clone());
        Self {
            registry,
            probe_latency,
            probe_outcomes,
            check_health,
            layer_health,
            region_health,
            lag_bytes,
            lag_seconds,
            region_weight,
            plans_applied,
            provider_errors,
            provider_apply,
            provider_drift,
            provider_breaker,
            notifications,
            incident_traces,
            alarms,
            store_pending,
            store_dead_letters,
            store_thinned,
            store_spill_entries,
            leader,
            synthetic_injected,
            task_restarts,
            http_auth_refused,
            http_rate_limited,
            http_streams,
        }
    }

    /// Counts an API request refused before its handler (`missing`, `invalid`, `forbidden`, `limited`).
    pub fn http_auth_refused(&self, reason: &str) {
        self.http_auth_refused.get_or_create(&ReasonLabels { reason: reason.to_string() }).inc();
    }

    /// Counts a 429 of the API by limit (`mutations`, `auth_failures`, `streams`).
    pub fn http_rate_limited(&self, limit: &str) {
        self.http_rate_limited.get_or_create(&LimitLabels { limit: limit.to_string() }).inc();
    }

    /// Sets the number of open stream clients.
    pub fn set_http_streams(&self, n: usize) {
        self.http_streams.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// Records one probe.
    pub fn observe_probe(&self, check: &CheckId, layer: Layer, latency: Duration, outcome: Outcome) {
        let l = CheckLabels { region: check.region.to_string(), check: check.name.clone(), layer: layer.to_string() };
        self.probe_latency.get_or_create(&l).observe(latency.as_secs_f64());
        let o = OutcomeLabels {
            region: check.region.to_string(),
            check: check.name.clone(),
            outcome: format!("{outcome:?}").to_ascii_lowercase(),
        };
        self.probe_outcomes.get_or_create(&o).inc();
    }

    /// Sets a check's health.
    pub fn set_check_health(&self, check: &CheckId, layer: Layer, h: Health) {
        let l = CheckLabels { region: check.region.to_string(), check: check.name.clone(), layer: layer.to_string() };
        self.check_health.get_or_create(&l).set(health_value(h));
    }

    /// Sets a region's health.
    pub fn set_region_health(&self, region: &RegionName, h: Health) {
        self.region_health.get_or_create(&RegionLabels { region: region.to_string() }).set(health_value(h));
    }

    /// Sets the health of a region's layer; `None` (a layer without checks) exports nothing.
    pub fn set_layer_health(&self, region: &RegionName, layer: Layer, h: Option<Health>) {
        let l = LayerLabels { region: region.to_string(), layer: layer.to_string() };
        if let Some(h) = h {
            self.layer_health.get_or_create(&l).set(health_value(h));
        } else {
            self.layer_health.remove(&l);
        }
    }

    /// Sets a standby's latest lag. A figure that is unknown removes its series rather than
    /// leaving the last known one standing.
    pub fn set_lag(&self, region: &RegionName, lag: &LagReading) {
        let l = RegionLabels { region: region.to_string() };
        if let Some(b) = lag.bytes {
            self.lag_bytes.get_or_create(&l).set(i64::try_from(b).unwrap_or(i64::MAX));
        } else {
            self.lag_bytes.remove(&l);
        }
        if let Some(t) = lag.time {
            self.lag_seconds.get_or_create(&l).set(t.as_secs_f64());
        } else {
            self.lag_seconds.remove(&l);
        }
    }

    /// Sets a region's current weight.
    pub fn set_weight(&self, region: &RegionName, w: u32) {
        self.region_weight.get_or_create(&RegionLabels { region: region.to_string() }).set(i64::from(w));
    }

    /// Counts an applied plan.
    pub fn plan_applied(&self, kind: &str) {
        self.plans_applied.get_or_create(&KindLabels { kind: kind.to_string() }).inc();
    }

    /// Counts a provider error.
    pub fn provider_error(&self, provider: &str) {
        self.provider_errors.get_or_create(&ProviderLabels { provider: provider.to_string() }).inc();
    }

    /// Records one apply attempt of a provider: how long it took and whether it was verified.
    pub fn observe_provider_apply(&self, provider: &str, elapsed: Duration, verified: bool) {
        let l = ApplyLabels { provider: provider.to_string(), outcome: if verified { "ok" } else { "failed" }.into() };
        self.provider_apply.get_or_create(&l).observe(elapsed.as_secs_f64());
    }

    /// Sets whether a provider has drifted from the plan.
    pub fn set_drift(&self, provider: &str, drifted: bool) {
        self.provider_drift.get_or_create(&ProviderLabels { provider: provider.to_string() }).set(i64::from(drifted));
    }

    /// Sets a provider's circuit breaker phase.
    pub fn set_breaker(&self, provider: &str, phase: BreakerPhase) {
        let v = match phase {
            BreakerPhase::Closed => 0,
            BreakerPhase::HalfOpen => 1,
            BreakerPhase::Open => 2,
        };
        self.provider_breaker.get_or_create(&ProviderLabels { provider: provider.to_string() }).set(v);
    }

    /// Counts a notification outcome (`sent`, `suppressed`, `failed`).
    pub fn notification(&self, target: &str, outcome: &str) {
        self.notifications
            .get_or_create(&NotifyLabels { target: target.to_string(), outcome: outcome.to_string() })
            .inc();
    }

    /// Counts an incident trace outcome (`sent`, `failed`, `dropped`).
    pub fn incident_trace(&self, outcome: &str) {
        self.incident_traces.get_or_create(&TraceLabels { outcome: outcome.to_string() }).inc();
    }

    /// Sets the number of active alarms of a kind.
    pub fn set_alarms(&self, kind: AlarmKind, n: usize) {
        self.alarms.get_or_create(&KindLabels { kind: kind.to_string() }).set(n as i64);
    }

    /// Sets the number of buffered store writes.
    pub fn set_store_pending(&self, n: usize) {
        self.store_pending.set(n as i64);
    }

    /// Counts a dead-lettered write.
    pub fn store_dead_letter(&self) {
        self.store_dead_letters.inc();
    }

    /// Counts `n` writes of `kind` thinned out of the buffer.
    pub fn store_thinned(&self, kind: &str, n: u64) {
        self.store_thinned.get_or_create(&KindLabels { kind: kind.to_string() }).inc_by(n);
    }

    /// Sets the number of writes in the spill file.
    pub fn set_store_spill_entries(&self, n: u64) {
        self.store_spill_entries.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// Sets leadership.
    pub fn set_leader(&self, leader: bool) {
        self.leader.set(i64::from(leader));
    }

    /// Whether a synthetic-failure drill's failure is injected into this orchestrator's probes.
    pub fn set_synthetic_injected(&self, injected: bool) {
        self.synthetic_injected.set(i64::from(injected));
    }

    /// Counts a restart of a supervised task after a panic.
    pub fn task_restarted(&self, task: &str) {
        self.task_restarts.get_or_create(&TaskLabels { task: task.to_string() }).inc();
    }

    /// The text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sample lines of `name` (with its labels), as Prometheus would ingest them.
    fn samples(m: &Metrics, name: &str) -> Vec<String> {
        m.encode()
            .lines()
            .filter(|l| !l.starts_with('#') && l.split(['{', ' ']).next() == Some(name))
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn every_plan_kind_is_exported_at_zero_before_any_plan() {
        let m = Metrics::new();
        let lines = samples(&m, "fo_plans_applied_total");
        // Every kind, and a synthetic-failure drill's failover apart.
        assert_eq!(lines.len(), PlanKind::ALL.len() + 1, "{lines:?}");
        assert!(lines.contains(&"fo_plans_applied_total{kind=\"synthetic_failover\"} 0".to_string()), "{lines:?}");
        assert!(lines.contains(&"fo_plans_applied_total{kind=\"failover\"} 0".to_string()), "{lines:?}");
        m.plan_applied(PlanKind::Failover.as_str());
        assert!(samples(&m, "fo_plans_applied_total").contains(&"fo_plans_applied_total{kind=\"failover\"} 1".into()));
    }

    #[test]
    fn lag_is_exported_per_standby_and_an_unknown_figure_removes_its_series() {
        let m = Metrics::new();
        let standby = RegionName::new("standby");
        m.set_lag(&standby, &LagReading { bytes: Some(4096), time: Some(Duration::from_millis(1500)) });
        assert_eq!(samples(&m, "fo_replication_lag_bytes"), ["fo_replication_lag_bytes{region=\"standby\"} 4096"]);
        assert_eq!(samples(&m, "fo_replication_lag_seconds"), ["fo_replication_lag_seconds{region=\"standby\"} 1.5"]);
        // The primary gone: bytes still known from the standby's own view, time unknown.
        m.set_lag(&standby, &LagReading { bytes: Some(10), time: None });
        assert_eq!(samples(&m, "fo_replication_lag_bytes"), ["fo_replication_lag_bytes{region=\"standby\"} 10"]);
        assert!(samples(&m, "fo_replication_lag_seconds").is_empty(), "{}", m.encode());
        m.set_lag(&standby, &LagReading::default());
        assert!(samples(&m, "fo_replication_lag_bytes").is_empty(), "{}", m.encode());
    }

    #[test]
    fn layer_health_is_exported_per_region_and_layer_and_a_layer_without_checks_is_not() {
        let m = Metrics::new();
        let primary = RegionName::new("primary");
        m.set_layer_health(&primary, Layer::App, Some(Health::Down));
        m.set_layer_health(&primary, Layer::Infra, Some(Health::Up));
        m.set_layer_health(&primary, Layer::Middleware, None);
        let mut lines = samples(&m, "fo_layer_health");
        lines.sort();
        assert_eq!(
            lines,
            [
                "fo_layer_health{region=\"primary\",layer=\"app\"} 0",
                "fo_layer_health{region=\"primary\",layer=\"infra\"} 2"
            ]
        );
        m.set_layer_health(&primary, Layer::App, None);
        assert_eq!(samples(&m, "fo_layer_health"), ["fo_layer_health{region=\"primary\",layer=\"infra\"} 2"]);
    }

    #[test]
    fn provider_apply_attempts_are_a_histogram_per_provider_and_outcome() {
        let m = Metrics::new();
        m.observe_provider_apply("pdns", Duration::from_millis(12), true);
        m.observe_provider_apply("pdns", Duration::from_secs(2), false);
        m.observe_provider_apply("pdns", Duration::from_millis(3), true);
        let count = samples(&m, "fo_provider_apply_seconds_count");
        assert!(
            count.contains(&"fo_provider_apply_seconds_count{provider=\"pdns\",outcome=\"ok\"} 2".into()),
            "{count:?}"
        );
        assert!(count.contains(&"fo_provider_apply_seconds_count{provider=\"pdns\",outcome=\"failed\"} 1".into()));
        let buckets = samples(&m, "fo_provider_apply_seconds_bucket");
        assert!(
            buckets
                .contains(&"fo_provider_apply_seconds_bucket{le=\"0.016\",provider=\"pdns\",outcome=\"ok\"} 2".into()),
            "{buckets:?}"
        );
    }
}
