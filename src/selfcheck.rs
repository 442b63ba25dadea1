//! The orchestrator's own liveness and readiness, judged from values. PURE: no clock, no I/O.
//!
//! [`liveness`] (`/healthz`) asks whether the process is worth keeping: the engine completed a
//! cycle within [`ENGINE_STALL_AFTER`] and no critical task is gone. A process that fails it is
//! stuck, and only a restart helps. [`readiness`] (`/readyz`) asks whether this orchestrator can
//! act now: it is live, its store takes writes, every provider worker runs and its last apply did
//! not fail, and the coordination knows a leader (or this is it). Each part says why it fails, so
//! an operator reading the body knows where to look. The API handlers gather the inputs
//! ([`VitalSigns`] from `supervise::Vitals`, the store writer's status, the status snapshot).

use std::time::Duration;

use serde::Serialize;

use crate::breaker::BreakerPhase;
use crate::status::Status;
use crate::store::writer::StoreStatus;
use crate::traffic::applier::{ApplyReport, ApplyResult};

/// The engine is stuck when it has not completed a cycle for this long: 20 of its 250 ms ticks,
/// well above its slowest healthy cycle (a bounded wait or two of 500 ms for the store).
pub const ENGINE_STALL_AFTER: Duration = Duration::from_secs(5);

/// A critical task that ended unexpectedly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoneTask {
    /// Its name.
    pub task: String,
    /// How it ended.
    pub how: String,
}

/// One provider's worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderWorkerSign {
    /// The provider.
    pub provider: String,
    /// Whether the worker panicked and waits to be restarted.
    pub restarting: bool,
}

/// What supervision knows about the tasks, at one instant.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VitalSigns {
    /// Time since the engine last completed a cycle.
    pub engine_idle: Duration,
    /// Critical tasks gone.
    pub gone: Vec<GoneTask>,
    /// Every provider worker started.
    pub providers: Vec<ProviderWorkerSign>,
    /// Restartable tasks waiting to restart, by name.
    pub restarting: Vec<String>,
}

/// One part of a verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Part {
    /// Whether this part is well.
    pub ok: bool,
    /// Why (or why not), for a human.
    pub why: String,
}

impl Part {
    fn new(ok: bool, why: impl Into<String>) -> Self {
        Self { ok, why: why.into() }
    }
}

/// `/healthz`: whether the process is alive in the sense that matters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Liveness {
    /// Both parts are well.
    pub live: bool,
    /// The engine's heartbeat.
    pub engine: Part,
    /// Milliseconds since the engine completed a cycle.
    pub engine_idle_ms: u64,
    /// The critical tasks.
    pub tasks: Part,
}

/// Judges liveness: the engine completed a cycle within `bound`, and no critical task is gone.
pub fn liveness(signs: &VitalSigns, bound: Duration) -> Liveness {
    let idle = signs.engine_idle;
    let engine = if idle <= bound {
        Part::new(true, format!("last cycle completed {} ms ago", idle.as_millis()))
    } else {
        Part::new(
            false,
            format!(
                "no cycle completed for {:.1} s (bound {} s): the engine is stuck",
                idle.as_secs_f64(),
                bound.as_secs()
            ),
        )
    };
    let tasks = if signs.gone.is_empty() {
        Part::new(true, "every critical task runs")
    } else {
        let gone: Vec<String> = signs.gone.iter().map(|g| format!("{} {}", g.task, g.how)).collect();
        Part::new(false, format!("critical task gone: {}", gone.join("; ")))
    };
    Liveness {
        live: engine.ok && tasks.ok,
        engine,
        engine_idle_ms: u64::try_from(idle.as_millis()).unwrap_or(u64::MAX),
        tasks,
    }
}

/// `readyz.store`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StorePart {
    /// Verdict.
    #[serde(flatten)]
    pub part: Part,
    /// Whether the last write succeeded.
    pub reachable: bool,
    /// Writes waiting.
    pub pending: usize,
}

/// One provider in `readyz.providers.each`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProviderPart {
    /// The provider.
    pub provider: String,
    /// Verdict.
    #[serde(flatten)]
    pub part: Part,
}

/// `readyz.providers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProvidersPart {
    /// Verdict over all providers.
    #[serde(flatten)]
    pub part: Part,
    /// Each provider.
    pub each: Vec<ProviderPart>,
}

/// `/readyz`: whether this orchestrator can act now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Readiness {
    /// Every part is well.
    pub ready: bool,
    /// The names of the parts that are not.
    pub failing: Vec<&'static str>,
    /// Liveness, summed up.
    pub engine: Part,
    /// The store.
    pub store: StorePart,
    /// The traffic providers.
    pub providers: ProvidersPart,
    /// Leadership.
    pub coordination: Part,
}

/// Judges readiness from the vital signs, the store writer's status and the status snapshot.
pub fn readiness(signs: &VitalSigns, bound: Duration, store: &StoreStatus, status: &Status) -> Readiness {
    let live = liveness(signs, bound);
    let engine = if live.live {
        Part::new(true, live.engine.why)
    } else {
        let why: Vec<String> = [live.engine, live.tasks].into_iter().filter(|p| !p.ok).map(|p| p.why).collect();
        Part::new(false, why.join("; "))
    };
    let store = store_part(store);
    let providers = providers_part(signs, status);
    let coordination = coordination_part(status);
    let failing: Vec<&'static str> = [
        ("engine", engine.ok),
        ("store", store.part.ok),
        ("providers", providers.part.ok),
        ("coordination", coordination.ok),
    ]
    .into_iter()
    .filter(|(_, ok)| !ok)
    .map(|(name, _)| name)
    .collect();
    Readiness { ready: failing.is_empty(), failing, engine, store, providers, coordination }
}

fn store_part(s: &StoreStatus) -> StorePart {
    let part = if s.reachable {
        Part::new(true, format!("reachable; {} writes pending", s.pending))
    } else {
        let error = s.last_error.as_deref().unwrap_or("no detail");
        Part::new(false, format!("unreachable ({error}); {} writes buffered until it is back", s.pending))
    };
    StorePart { part, reachable: s.reachable, pending: s.pending }
}

fn providers_part(signs: &VitalSigns, status: &Status) -> ProvidersPart {
    let plan = status.plan.as_ref();
    let each: Vec<ProviderPart> = signs
        .providers
        .iter()
        .map(|w| {
            let last = plan.and_then(|p| p.providers.iter().find(|r| r.provider == w.provider));
            ProviderPart { provider: w.provider.clone(), part: provider_verdict(w.restarting, last) }
        })
        .collect();
    let bad: Vec<&str> = each.iter().filter(|p| !p.part.ok).map(|p| p.provider.as_str()).collect();
    let part = if each.is_empty() {
        Part::new(false, "no provider worker is running")
    } else if bad.is_empty() {
        Part::new(true, format!("{} provider(s) well", each.len()))
    } else {
        Part::new(false, format!("failing: {}", bad.join(", ")))
    };
    ProvidersPart { part, each }
}

fn provider_verdict(restarting: bool, last: Option<&ApplyReport>) -> Part {
    if restarting {
        return Part::new(false, "its worker panicked and waits to be restarted");
    }
    let Some(r) = last else { return Part::new(true, "no report for the current plan yet") };
    if r.breaker == BreakerPhase::Open {
        return Part::new(false, format!("circuit breaker open after {} attempt(s)", r.attempts));
    }
    match &r.result {
        ApplyResult::Verified => Part::new(true, format!("verified plan {}", r.plan_id)),
        ApplyResult::Superseded => Part::new(true, "its plan was superseded by a newer one"),
        ApplyResult::Drift { action, .. } => {
            Part::new(true, format!("live weights drifted from the plan ({})", serde_variant(action)))
        }
        ApplyResult::Failed { error, .. } => Part::new(false, format!("last apply failed: {error}")),
        ApplyResult::Refused { error } => Part::new(false, format!("last write refused: {error}")),
        ApplyResult::CircuitOpen { retry_in } => {
            Part::new(false, format!("circuit breaker open; next try in {} ms", retry_in.as_millis()))
        }
    }
}

/// The snake_case name serde gives a unit variant.
fn serde_variant<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

fn coordination_part(status: &Status) -> Part {
    let l = &status.leadership;
    if l.backend == "single" {
        return Part::new(true, format!("single orchestrator: always the leader (epoch {})", l.epoch));
    }
    match &status.coordination.backend {
        None => Part::new(false, "no report from the coordination backend yet"),
        Some(h) if !h.connected => Part::new(
            false,
            format!(
                "etcd session lost since {} ({})",
                h.since.to_rfc3339(),
                h.last_error.as_deref().unwrap_or("no detail")
            ),
        ),
        Some(_) if l.leader => Part::new(true, format!("leader in epoch {}", l.epoch)),
        Some(_) => match &l.holder {
            Some(holder) => Part::new(true, format!("following {holder} (epoch {})", l.epoch)),
            None => Part::new(false, "connected to etcd but no leader is known (an election is under way)"),
        },
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};

    use super::*;
    use crate::coord::{CoordHealth, Leadership};
    use crate::plan::{Epoch, PlanId};
    use crate::region::RegionName;
    use crate::status::{Acting, CoordinationStatus, PlanStatus};

    fn at() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2024-05-01T12:00:00Z").unwrap().with_timezone(&Utc)
    }

    fn status(backend: &'static str, leader: bool, holder: Option<&str>, health: Option<CoordHealth>) -> Status {
        Status {
            generated_at: at(),
            vantage: RegionName::new("primary"),
            leadership: Leadership {
                leader,
                epoch: Epoch(7),
                holder: holder.map(RegionName::new),
                leader_api: None,
                backend,
            },
            regions: vec![],
            plan: None,
            acting: Acting { active: leader, reasons: vec![], decided_at: None },
            alarms: vec![],
            store: StoreStatus::default(),
            drift: vec![],
            failed_over: false,
            writer: RegionName::new("primary"),
            promotion: vec![],
            drill: None,
            operator_hold: None,
            coordination: CoordinationStatus { backend: health, quorum: 1, vantages: vec![] },
        }
    }

    fn etcd(connected: bool) -> CoordHealth {
        CoordHealth {
            backend: "etcd",
            connected,
            since: at(),
            last_error: (!connected).then(|| "connection refused".into()),
            endpoints: vec![],
            requests: 0,
        }
    }

    fn signs(idle_ms: u64, providers: &[(&str, bool)]) -> VitalSigns {
        VitalSigns {
            engine_idle: Duration::from_millis(idle_ms),
            gone: vec![],
            providers: providers
                .iter()
                .map(|(p, r)| ProviderWorkerSign { provider: (*p).into(), restarting: *r })
                .collect(),
            restarting: vec![],
        }
    }

    fn reachable() -> StoreStatus {
        StoreStatus { reachable: true, ..Default::default() }
    }

    fn with_reports(mut st: Status, reports: Vec<(&str, ApplyResult, BreakerPhase)>) -> Status {
        let plan = crate::plan::TrafficPlan {
            id: PlanId::new(),
            epoch: Epoch(7),
            weights: crate::plan::Weights::default(),
            kind: crate::plan::PlanKind::Manual,
            reason: "test".into(),
            reasons: vec![],
            inputs: serde_json::Value::Null,
            decided_at: at(),
        };
        let providers = reports
            .into_iter()
            .map(|(p, result, breaker)| ApplyReport {
                plan_id: plan.id,
                provider: p.into(),
                result,
                attempts: 3,
                elapsed: Duration::ZERO,
                at: at(),
                breaker,
                propagation: None,
                propagation_follows: false,
            })
            .collect();
        st.plan = Some(PlanStatus { plan, recorded: true, providers, verified_at: None });
        st
    }

    #[test]
    fn an_engine_that_cycled_within_the_bound_with_every_task_running_is_live() {
        let l = liveness(&signs(300, &[]), ENGINE_STALL_AFTER);
        assert!(l.live, "{l:?}");
        assert_eq!(l.engine_idle_ms, 300);
    }

    #[test]
    fn an_engine_idle_past_the_bound_is_not_live_and_says_so() {
        let l = liveness(&signs(5_001, &[]), ENGINE_STALL_AFTER);
        assert!(!l.live);
        assert!(!l.engine.ok && l.engine.why.contains("stuck"), "{l:?}");
        assert!(l.tasks.ok);
    }

    #[test]
    fn a_critical_task_gone_makes_the_process_not_live_naming_it() {
        let mut s = signs(10, &[]);
        s.gone.push(GoneTask { task: "applier".into(), how: "panicked: boom".into() });
        let l = liveness(&s, ENGINE_STALL_AFTER);
        assert!(!l.live && l.engine.ok);
        assert!(l.tasks.why.contains("applier panicked: boom"), "{}", l.tasks.why);
    }

    #[test]
    fn all_well_is_ready() {
        let st = with_reports(
            status("single", true, Some("primary"), None),
            vec![("pdns", ApplyResult::Verified, BreakerPhase::Closed)],
        );
        let r = readiness(&signs(10, &[("pdns", false), ("file", false)]), ENGINE_STALL_AFTER, &reachable(), &st);
        assert!(r.ready, "{r:?}");
        assert!(r.failing.is_empty());
        assert_eq!(r.providers.each.len(), 2);
        assert!(r.providers.each[1].part.why.contains("no report"), "{:?}", r.providers.each[1]);
    }

    #[test]
    fn an_unreachable_store_makes_it_unready_naming_the_store_and_its_error() {
        let store =
            StoreStatus { reachable: false, pending: 4, last_error: Some("timed out".into()), ..Default::default() };
        let st = status("single", true, Some("primary"), None);
        let r = readiness(&signs(10, &[("pdns", false)]), ENGINE_STALL_AFTER, &store, &st);
        assert!(!r.ready);
        assert_eq!(r.failing, ["store"]);
        assert!(r.store.part.why.contains("timed out") && r.store.part.why.contains("4 writes"), "{:?}", r.store);
    }

    #[test]
    fn a_failing_open_or_restarting_provider_makes_it_unready_naming_that_provider() {
        let failed = ApplyResult::Failed { error: "HTTP 500".into(), will_retry: true };
        let cases = [
            (false, failed.clone(), BreakerPhase::Closed, "HTTP 500"),
            (false, failed, BreakerPhase::Open, "breaker open"),
            (false, ApplyResult::CircuitOpen { retry_in: Duration::from_secs(3) }, BreakerPhase::Open, "breaker open"),
            (false, ApplyResult::Refused { error: "newer epoch".into() }, BreakerPhase::Closed, "newer epoch"),
            (true, ApplyResult::Verified, BreakerPhase::Closed, "restarted"),
        ];
        for (restarting, result, breaker, needle) in cases {
            let st = with_reports(
                status("single", true, Some("primary"), None),
                vec![("pdns", result.clone(), breaker), ("file", ApplyResult::Verified, BreakerPhase::Closed)],
            );
            let r =
                readiness(&signs(10, &[("pdns", restarting), ("file", false)]), ENGINE_STALL_AFTER, &reachable(), &st);
            assert_eq!(r.failing, ["providers"], "{result:?}");
            assert_eq!(r.providers.part.why, "failing: pdns");
            assert!(r.providers.each[0].part.why.contains(needle), "{:?} lacks {needle}", r.providers.each[0]);
            assert!(r.providers.each[1].part.ok);
        }
    }

    #[test]
    fn coordination_is_ready_when_leading_or_following_a_known_leader_over_a_live_session() {
        let cases = [
            (status("single", true, Some("primary"), None), true, "single"),
            (status("etcd", true, Some("primary"), Some(etcd(true))), true, "leader in epoch 7"),
            (status("etcd", false, Some("standby"), Some(etcd(true))), true, "following standby"),
            (status("etcd", false, None, Some(etcd(true))), false, "no leader"),
            (status("etcd", false, None, Some(etcd(false))), false, "connection refused"),
            (status("etcd", false, None, None), false, "no report"),
        ];
        for (st, ok, needle) in cases {
            let r = readiness(&signs(10, &[("pdns", false)]), ENGINE_STALL_AFTER, &reachable(), &st);
            assert_eq!(r.coordination.ok, ok, "{:?}", r.coordination);
            assert!(r.coordination.why.contains(needle), "{:?} lacks {needle}", r.coordination);
            assert_eq!(r.ready, ok);
        }
    }

    #[test]
    fn a_stuck_engine_makes_it_unready_too() {
        let st = status("single", true, Some("primary"), None);
        let r = readiness(&signs(60_000, &[("pdns", false)]), ENGINE_STALL_AFTER, &reachable(), &st);
        assert_eq!(r.failing, ["engine"]);
        assert!(r.engine.why.contains("stuck"));
    }
}
