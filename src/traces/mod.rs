//! Incident traces: each incident sent once, as one OpenTelemetry trace, over OTLP/HTTP with
//! protobuf bodies (`[traces]`, or the standard `OTEL_EXPORTER_OTLP_*ENDPOINT`; off without
//! an endpoint).
//!
//! The engine hands every incident timeline it stores to its [`TraceSink`] and tells it of
//! every plan it sends; the sink never waits (a full queue drops that snapshot, and the next
//! one carries the whole timeline again). The [`TraceExporter`] task keeps the latest timeline
//! of each incident and sends it, converted by the pure [`spans`], when the incident is over:
//!
//! | the incident                                              | sent                          |
//! |-----------------------------------------------------------|-------------------------------|
//! | verified on every provider, DNS propagation seen          | at once                       |
//! | verified, and no provider checks propagation              | at once                       |
//! | verified, a propagation check follows but reports nothing | after the longest `propagation_timeout` + 5 s |
//! | another plan was sent first (its plan superseded)         | at once, as it stands         |
//! | no new milestone for 10 minutes (a stuck apply)           | then, as it stands            |
//! | still waiting when the engine stops (shutdown)            | then, as it stands            |
//!
//! An incident is sent at most once: its id is remembered, and a later snapshot is ignored.
//! A failed request is tried again twice (after 1 s and 4 s), then dropped and counted in
//! `fo_incident_traces_total{outcome="failed"}`; at shutdown what waits goes in one request,
//! tried once within half of `orchestrator.shutdown_timeout`. The endpoint is only ever logged
//! redacted.
//!
//! The task ends when the engine (the sink's only holder) is gone, after sending what waits;
//! once shutdown has begun a failed request is not tried again.

pub mod spans;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SpanExporter as _;
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};
use uuid::Uuid;

use crate::config::Config;
use crate::incidents::{Incident, Step};
use crate::metrics::Metrics;
use crate::plan::PlanId;
use crate::redact;

/// Incident snapshots the queue holds before new ones are dropped.
const QUEUE: usize = 1024;
/// An incident with no new milestone for this long is sent as it stands.
const QUIET: Duration = Duration::from_secs(600);
/// Past the longest propagation check, before a verified incident goes without it.
const PROPAGATION_MARGIN: Duration = Duration::from_secs(5);
/// Waits before the second and third try of a failed export.
const RETRIES: [Duration; 2] = [Duration::from_secs(1), Duration::from_secs(4)];
/// Incident ids remembered as sent.
const REMEMBER: usize = 4096;
/// How often the deadlines are looked at.
const TICK: Duration = Duration::from_secs(1);

/// What the engine tells the exporter.
enum Feed {
    /// The incident's latest timeline.
    Incident(Box<Incident>),
    /// A plan went to the providers.
    PlanSent(PlanId),
}

/// The engine's end: hands over timelines and plans without ever waiting.
#[derive(Clone)]
pub struct TraceSink {
    tx: mpsc::Sender<Feed>,
    metrics: Arc<Metrics>,
}

impl TraceSink {
    /// The incident's latest timeline (after one of its milestones).
    pub fn incident(&self, incident: &Incident) {
        if self.tx.try_send(Feed::Incident(Box::new(incident.clone()))).is_err() {
            self.metrics.incident_trace("dropped");
            warn!(incident = %incident.id, "trace queue full; this snapshot of the incident is dropped");
        }
    }

    /// A plan was sent: incidents of other plans still waiting are over.
    pub fn plan_sent(&self, plan: PlanId) {
        if self.tx.try_send(Feed::PlanSent(plan)).is_err() {
            warn!(%plan, "trace queue full; waiting incidents go out on their own deadlines");
        }
    }
}

/// Why the exporter could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// The OTLP exporter refused its settings.
    #[error("cannot build the OTLP exporter for {endpoint} (from {from}): {source}")]
    Build {
        /// The endpoint, redacted.
        endpoint: String,
        /// Where it was configured.
        from: &'static str,
        /// The exporter's error.
        #[source]
        source: opentelemetry_otlp::ExporterBuildError,
    },
}

/// The task that converts and sends incident traces.
pub struct TraceExporter {
    feed: mpsc::Receiver<Feed>,
    exporter: opentelemetry_otlp::SpanExporter,
    scope: InstrumentationScope,
    book: Book,
    propagation_wait: Duration,
    /// Bound of one request.
    timeout: Duration,
    /// Bound of the one request at shutdown: within half of `orchestrator.shutdown_timeout`.
    flush_timeout: Duration,
    metrics: Arc<Metrics>,
    /// The endpoint, redacted, for logs.
    endpoint: String,
    /// Cancelled when shutdown begins: no more retries.
    stop: CancellationToken,
}

/// The exporter and its sink when `[traces]` (or the environment) names an endpoint; `None`
/// when traces are off.
///
/// # Errors
/// [`TraceError::Build`] when the OTLP exporter refuses its settings.
pub fn channel(config: &Config, metrics: Arc<Metrics>) -> Result<Option<(TraceExporter, TraceSink)>, TraceError> {
    let Some(t) = &config.traces else { return Ok(None) };
    let endpoint = redact::url(&t.endpoint);
    let mut exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(t.endpoint.clone())
        .with_timeout(t.timeout)
        .build()
        .map_err(|source| TraceError::Build { endpoint: endpoint.clone(), from: t.endpoint_from, source })?;
    exporter.set_resource(
        &Resource::builder_empty()
            .with_service_name(t.service_name.clone())
            .with_attributes([
                KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
                KeyValue::new("failover.vantage", config.orchestrator.vantage.to_string()),
            ])
            .build(),
    );
    let longest_check = config.guards.values().map(|g| g.propagation_timeout).max().unwrap_or_default();
    let (tx, feed) = mpsc::channel(QUEUE);
    let exporter = TraceExporter {
        feed,
        exporter,
        scope: InstrumentationScope::builder("failover-orchestrator").with_version(env!("CARGO_PKG_VERSION")).build(),
        book: Book::default(),
        propagation_wait: longest_check + PROPAGATION_MARGIN,
        timeout: t.timeout,
        flush_timeout: t.timeout.min(config.orchestrator.shutdown_timeout / 2),
        metrics: metrics.clone(),
        endpoint,
        stop: CancellationToken::new(),
    };
    Ok(Some((exporter, TraceSink { tx, metrics })))
}

impl TraceExporter {
    /// Sends incidents as they end, until the engine is gone; then sends what still waits.
    /// Once `stop` is cancelled (shutdown has begun) a failed export is not tried again, so
    /// the task follows the engine out within one request's `timeout`.
    pub async fn run(mut self, stop: CancellationToken) {
        self.stop = stop;
        info!(endpoint = %self.endpoint, "incident traces go over OTLP/HTTP");
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            let ready = tokio::select! {
                feed = self.feed.recv() => match feed {
                    Some(Feed::Incident(i)) => self.book.update(*i, Instant::now().into_std()).into_iter().collect(),
                    Some(Feed::PlanSent(plan)) => self.book.plan_sent(plan),
                    None => break,
                },
                _ = tick.tick() => self.book.due(Instant::now().into_std(), self.propagation_wait),
            };
            for incident in ready {
                self.send(std::slice::from_ref(&incident), &RETRIES, self.timeout).await;
            }
        }
        // What still waits goes in one request, tried once: the exit stays bounded.
        let left = self.book.drain();
        if !left.is_empty() {
            self.send(&left, &[], self.flush_timeout).await;
        }
        if let Err(e) = self.exporter.shutdown() {
            debug!(error = %e, "OTLP exporter shutdown");
        }
        info!(sent_at_shutdown = left.len(), "incident traces flushed");
    }

    /// Sends the traces of `incidents` in one request, trying again after each of `retries`
    /// when it fails, each try bounded by `timeout`.
    async fn send(&self, incidents: &[Incident], retries: &[Duration], timeout: Duration) {
        let spans: Vec<_> = incidents.iter().flat_map(|i| spans::incident_spans(i, &self.scope)).collect();
        let count = spans.len();
        let ids: Vec<String> = incidents.iter().map(|i| i.id.to_string()).collect();
        let mut waits = retries.iter();
        loop {
            let error = match tokio::time::timeout(timeout, self.exporter.export(spans.clone())).await {
                Ok(Ok(())) => {
                    for _ in incidents {
                        self.metrics.incident_trace("sent");
                    }
                    // An incident's trace id is its id.
                    info!(incidents = ?ids, spans = count, "incident traces exported");
                    return;
                }
                // The exporter's message may name the URL: redacted like every other.
                Ok(Err(e)) => redact::text(&e.to_string()),
                Err(_) => format!("no answer within {}", humantime::format_duration(timeout)),
            };
            match waits.next().filter(|_| !self.stop.is_cancelled()) {
                Some(wait) => {
                    debug!(incidents = ?ids, %error, "incident traces not exported; trying again");
                    tokio::select! {
                        _ = self.stop.cancelled() => {}
                        _ = tokio::time::sleep(*wait) => {}
                    }
                }
                None => {
                    for _ in incidents {
                        self.metrics.incident_trace("failed");
                    }
                    warn!(incidents = ?ids, endpoint = %self.endpoint, %error, "incident traces not exported; dropped");
                    return;
                }
            }
        }
    }
}

/// An incident waiting to be sent.
struct Waiting {
    incident: Incident,
    /// When its latest milestone arrived.
    changed: std::time::Instant,
    /// When it was first seen verified on every provider.
    verified: Option<std::time::Instant>,
}

/// Which incidents wait and which were sent: decides when each goes, and that it goes once.
/// Time is an argument.
#[derive(Default)]
struct Book {
    waiting: BTreeMap<Uuid, Waiting>,
    sent: BTreeSet<Uuid>,
    /// `sent` in the order they went, to forget the oldest.
    order: VecDeque<Uuid>,
}

impl Book {
    /// The latest timeline of an incident. Returns it when it is over (it then counts as sent).
    fn update(&mut self, incident: Incident, now: std::time::Instant) -> Option<Incident> {
        let id = incident.id;
        if self.sent.contains(&id) {
            return None;
        }
        if complete(&incident) {
            self.waiting.remove(&id);
            self.mark_sent(id);
            return Some(incident);
        }
        let verified = incident.verified_at.map(|_| now);
        let w = self.waiting.entry(id).or_insert(Waiting { incident: incident.clone(), changed: now, verified });
        w.verified = w.verified.or(verified);
        w.changed = now;
        w.incident = incident;
        None
    }

    /// `plan` went out: every waiting incident of another plan is over.
    fn plan_sent(&mut self, plan: PlanId) -> Vec<Incident> {
        self.take(|w| w.incident.plan_id != Some(plan))
    }

    /// The waiting incidents whose deadline passed at `now`.
    fn due(&mut self, now: std::time::Instant, propagation_wait: Duration) -> Vec<Incident> {
        self.take(|w| {
            w.verified.is_some_and(|v| now.saturating_duration_since(v) >= propagation_wait)
                || now.saturating_duration_since(w.changed) >= QUIET
        })
    }

    /// Every waiting incident (the engine stopped).
    fn drain(&mut self) -> Vec<Incident> {
        self.take(|_| true)
    }

    fn take(&mut self, over: impl Fn(&Waiting) -> bool) -> Vec<Incident> {
        let ids: Vec<Uuid> = self.waiting.iter().filter(|(_, w)| over(w)).map(|(id, _)| *id).collect();
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(w) = self.waiting.remove(&id) {
                self.mark_sent(id);
                out.push(w.incident);
            }
        }
        out
    }

    fn mark_sent(&mut self, id: Uuid) {
        if self.sent.insert(id) {
            self.order.push_back(id);
        }
        while self.order.len() > REMEMBER {
            if let Some(old) = self.order.pop_front() {
                self.sent.remove(&old);
            }
        }
    }
}

/// Verified on every provider, and DNS propagation seen or not to be expected.
fn complete(i: &Incident) -> bool {
    let propagation_follows = i.timeline.iter().any(|m| m.provider.as_ref().is_some_and(|w| w.propagation_follows));
    i.verified_at.is_some() && (i.first(Step::DnsPropagationSeen).is_some() || !propagation_follows)
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::incidents::{Milestone, ProviderWork, WorkOutcome};
    use crate::region::RegionName;

    fn at(ms: i64) -> chrono::DateTime<Utc> {
        Utc.timestamp_millis_opt(1_700_000_000_000 + ms).unwrap()
    }

    fn milestone(step: Step, ms: i64, follows: bool) -> Milestone {
        let provider = (step == Step::ProviderWrite).then(|| ProviderWork {
            provider: "pdns".into(),
            began: at(ms - 5),
            attempts: 1,
            outcome: WorkOutcome::Verified,
            error: None,
            propagation_follows: follows,
        });
        Milestone { step, at: at(ms), detail: String::new(), provider }
    }

    /// An incident of `plan` up to `steps`; verified when the steps include read-back.
    fn incident(id: u128, plan: PlanId, steps: &[Step], follows: bool) -> Incident {
        let timeline: Vec<Milestone> =
            steps.iter().enumerate().map(|(n, s)| milestone(*s, n as i64 * 10, follows)).collect();
        Incident {
            id: Uuid::from_u128(id),
            region: RegionName::new("primary"),
            opened_at: at(0),
            plan_id: Some(plan),
            kind: Some("failover".into()),
            from_weights: None,
            to_weights: None,
            verified_at: steps.contains(&Step::ReadBackVerified).then(|| at(100)),
            timeline,
            synthetic_drill: None,
        }
    }

    const DECIDED: &[Step] = &[Step::FirstFailedProbe, Step::PlanDecided];
    const VERIFIED: &[Step] = &[Step::FirstFailedProbe, Step::PlanDecided, Step::ProviderWrite, Step::ReadBackVerified];
    const PROPAGATED: &[Step] = &[
        Step::FirstFailedProbe,
        Step::PlanDecided,
        Step::ProviderWrite,
        Step::ReadBackVerified,
        Step::DnsPropagationSeen,
    ];

    #[test]
    fn an_incident_goes_once_when_verified_if_no_propagation_check_follows() {
        let (mut book, now, plan) = (Book::default(), Instant::now(), PlanId::new());
        assert!(book.update(incident(1, plan, DECIDED, false), now).is_none(), "not over yet");
        let sent = book.update(incident(1, plan, VERIFIED, false), now).expect("over once verified");
        assert_eq!(sent.verified_at, Some(at(100)));
        // A later snapshot of the same incident (e.g. its DNS step) is not sent again.
        assert!(book.update(incident(1, plan, PROPAGATED, false), now).is_none());
        assert!(book.drain().is_empty());
    }

    #[test]
    fn a_verified_incident_waits_for_its_propagation_step_up_to_the_bound() {
        let (mut book, now, plan) = (Book::default(), Instant::now(), PlanId::new());
        let wait = Duration::from_secs(35);
        assert!(book.update(incident(1, plan, VERIFIED, true), now).is_none(), "propagation follows");
        assert!(book.due(now + Duration::from_secs(34), wait).is_empty());
        let sent = book.update(incident(1, plan, PROPAGATED, true), now + Duration::from_secs(2)).expect("seen");
        assert_eq!(sent.timeline.last().map(|m| m.step), Some(Step::DnsPropagationSeen));
        // Another one whose propagation is never seen goes at the bound, counted from verification.
        assert!(book.update(incident(2, plan, VERIFIED, true), now).is_none());
        assert!(book.update(incident(2, plan, VERIFIED, true), now + Duration::from_secs(20)).is_none());
        let due = book.due(now + wait, wait);
        assert_eq!(due.iter().map(|i| i.id).collect::<Vec<_>>(), [Uuid::from_u128(2)]);
        assert!(book.due(now + wait * 2, wait).is_empty(), "once");
    }

    #[test]
    fn dns_seen_before_every_provider_verified_is_not_the_end() {
        let (mut book, now, plan) = (Book::default(), Instant::now(), PlanId::new());
        let seen_first = incident(1, plan, &[Step::PlanDecided, Step::ProviderWrite, Step::DnsPropagationSeen], true);
        assert!(book.update(seen_first, now).is_none());
    }

    #[test]
    fn a_newer_plan_ends_the_waiting_incidents_of_other_plans() {
        let (mut book, now) = (Book::default(), Instant::now());
        let (old, new) = (PlanId::new(), PlanId::new());
        assert!(book.update(incident(1, old, DECIDED, false), now).is_none());
        assert!(book.update(incident(2, new, DECIDED, false), now).is_none());
        let over = book.plan_sent(new);
        assert_eq!(over.iter().map(|i| i.id).collect::<Vec<_>>(), [Uuid::from_u128(1)]);
        assert!(book.update(incident(1, old, VERIFIED, false), now).is_none(), "already sent");
        // A stuck incident goes after the quiet time; what is left goes at shutdown.
        assert!(book.due(now + QUIET - Duration::from_secs(1), Duration::from_secs(35)).is_empty());
        assert!(book.update(incident(3, new, DECIDED, false), now + QUIET).is_none());
        assert_eq!(book.due(now + QUIET, Duration::from_secs(35)).len(), 1, "incident 2 went quiet");
        assert_eq!(book.drain().iter().map(|i| i.id).collect::<Vec<_>>(), [Uuid::from_u128(3)]);
    }

    fn config(extra: &str) -> Config {
        let text = format!(
            "[orchestrator]\nvantage = \"primary\"\nstore_dsn = \"postgres://fo@127.0.0.1/fo\"\n\
             [[regions]]\nname = \"primary\"\nrole = \"primary\"\nweight = 100\n\
             [[regions.checks]]\nname = \"tcp\"\nlayer = \"infra\"\ntype = \"tcp\"\ntarget = \"127.0.0.1:1\"\n\
             [[regions]]\nname = \"standby\"\nrole = \"standby\"\nweight = 0\n\
             [[regions.checks]]\nname = \"tcp\"\nlayer = \"infra\"\ntype = \"tcp\"\ntarget = \"127.0.0.1:2\"\n\
             [[providers]]\ntype = \"file\"\npath = \"/tmp/plan.json\"\n{extra}"
        );
        Config::parse(&text, "test", &|_| None).expect("valid")
    }

    #[test]
    fn without_an_endpoint_there_is_no_exporter_and_with_one_it_waits_the_longest_check() {
        let metrics = Arc::new(Metrics::new());
        assert!(channel(&config(""), metrics.clone()).expect("off is no error").is_none());
        let on = config("[traces]\notlp_endpoint = \"http://127.0.0.1:4318\"\n");
        let (exporter, _sink) = channel(&on, metrics).expect("built").expect("on");
        // The file provider's guard has the default propagation bound, 30 s.
        assert_eq!(exporter.propagation_wait, Duration::from_secs(30) + PROPAGATION_MARGIN);
        assert_eq!(exporter.endpoint, "http://127.0.0.1:4318/v1/traces");
    }

    #[tokio::test]
    async fn an_unreachable_receiver_costs_the_traces_never_the_engine_and_shutdown_ends_it() {
        let metrics = Arc::new(Metrics::new());
        // Nothing listens on port 1: every request is refused.
        let on = config("[traces]\notlp_endpoint = \"http://127.0.0.1:1\"\n");
        let (exporter, sink) = channel(&on, metrics.clone()).expect("built").expect("on");
        let stop = CancellationToken::new();
        let task = tokio::spawn(exporter.run(stop.clone()));
        // The sink never waits: past the queue's bound, snapshots are dropped and counted.
        let plan = PlanId::new();
        for id in 0..(QUEUE as u128 + 10) {
            sink.incident(&incident(id, plan, VERIFIED, false));
        }
        // Shutdown: no more retries; the task ends once the engine (the sink) is gone.
        stop.cancel();
        drop(sink);
        tokio::time::timeout(Duration::from_secs(120), task).await.expect("the exporter ends").expect("no panic");
        let text = metrics.encode();
        assert!(text.contains("fo_incident_traces_total{outcome=\"dropped\"} 10"), "{text}");
        assert!(text.contains(&format!("fo_incident_traces_total{{outcome=\"failed\"}} {QUEUE}")), "{text}");
        assert!(!text.contains("outcome=\"sent\""), "{text}");
    }

    #[test]
    fn the_sent_ids_are_bounded() {
        let (mut book, now, plan) = (Book::default(), Instant::now(), PlanId::new());
        for id in 0..(REMEMBER as u128 + 10) {
            assert!(book.update(incident(id, plan, VERIFIED, false), now).is_some());
        }
        assert_eq!((book.sent.len(), book.order.len()), (REMEMBER, REMEMBER));
        assert!(!book.sent.contains(&Uuid::from_u128(0)), "the oldest is forgotten");
    }
}
