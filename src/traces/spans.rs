//! One incident timeline as one trace: the spans, built from the stored milestones. PURE.
//!
//! The trace id is the incident's UUID (its 16 bytes, so `/api/v1/incidents/{id}` and the
//! tracing backend name the same thing) and every span id is derived from the incident id and
//! the span's place in the tree: the same timeline always gives the same spans. Every time
//! comes from a milestone, so the trace shows exactly the stored timeline:
//!
//! ```text
//! incident              first milestone → last milestone      region, plan, weights, verified
//! ├── detection         first milestone → plan decided        (when a milestone came before the plan)
//! ├── apply             plan decided → read-back verified (else the last provider write)
//! │   └── apply <name>  the provider's first attempt → its last write
//! │                     provider, attempts, outcome, error
//! └── propagation       the DNS provider's check → every server answers
//! ```
//!
//! Each milestone is one event, on the innermost span it belongs to. A child never lies outside
//! its parent: should the wall clock have stepped between two timestamps, the child is clamped.
//!
//! No I/O, no clock reads: values in, values out.

use std::borrow::Cow;
use std::time::SystemTime;

use chrono::{DateTime, Utc};
use opentelemetry::trace::{Event, SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::incidents::{Incident, Milestone, ProviderWork, Step, WorkOutcome};

/// The trace id of an incident: its UUID.
pub fn trace_id(incident: Uuid) -> TraceId {
    TraceId::from_bytes(*incident.as_bytes())
}

/// The id of the span at `path` in an incident's tree: the first 8 bytes of
/// SHA-256(incident id ‖ path), never the invalid all-zero id.
pub fn span_id(incident: Uuid, path: &str) -> SpanId {
    let digest = Sha256::new().chain_update(incident.as_bytes()).chain_update(path.as_bytes()).finalize();
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    if bytes == [0; 8] {
        bytes[7] = 1;
    }
    SpanId::from_bytes(bytes)
}

/// A span being built: where it sits, its interval and what it says.
struct Node {
    path: String,
    name: String,
    parent: Option<usize>,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    attributes: Vec<KeyValue>,
    events: Vec<Event>,
    status: Status,
}

impl Node {
    fn new(path: impl Into<String>, name: impl Into<String>, start: DateTime<Utc>, end: DateTime<Utc>) -> Self {
        Self {
            path: path.into(),
            name: name.into(),
            parent: None,
            start,
            end,
            attributes: Vec::new(),
            events: Vec::new(),
            status: Status::Unset,
        }
    }
}

/// The tree under construction; node 0 is the root.
struct Tree(Vec<Node>);

impl Tree {
    /// Adds `node` under `parent`, clamped into the parent's interval; returns its index.
    fn add(&mut self, parent: usize, mut node: Node) -> usize {
        let (lo, hi) = (self.0[parent].start, self.0[parent].end);
        node.start = node.start.clamp(lo, hi);
        node.end = node.end.clamp(node.start, hi);
        node.parent = Some(parent);
        self.0.push(node);
        self.0.len() - 1
    }
}

/// The spans of `incident`, root first, each parent before its children.
pub fn incident_spans(incident: &Incident, scope: &InstrumentationScope) -> Vec<SpanData> {
    let timeline = &incident.timeline;
    let first = timeline.iter().map(|m| m.at).chain([incident.opened_at]).min().unwrap_or(incident.opened_at);
    let last = timeline.iter().map(|m| m.at).max().unwrap_or(first).max(first);
    let verified = incident.first(Step::ReadBackVerified);
    let mut root = Node::new("incident", "incident", first, last);
    root.attributes = incident_attributes(incident);
    root.status = match verified {
        Some(_) => Status::Ok,
        None => Status::error("the plan was not verified on every provider"),
    };
    let mut tree = Tree(vec![root]);

    let decided = incident.first(Step::PlanDecided);
    let detection = timeline
        .iter()
        .any(|m| is_detection(m.step))
        .then(|| tree.add(0, Node::new("detection", "detection", first, decided.unwrap_or(last))));
    let apply = decided.map(|decided| {
        let last_write = timeline.iter().filter(|m| m.step == Step::ProviderWrite).map(|m| m.at).max();
        let end = verified.or(last_write).unwrap_or(decided);
        let mut node = Node::new("apply", "apply", decided, end);
        if verified.is_none() {
            node.status = Status::error("not every provider verified the plan");
        }
        tree.add(0, node)
    });
    // One span per provider, in the order they first reported.
    let mut providers: Vec<(String, usize)> = Vec::new();
    if let Some(apply) = apply {
        for work in timeline.iter().filter(|m| m.step == Step::ProviderWrite).filter_map(|m| m.provider.as_ref()) {
            if !providers.iter().any(|(name, _)| name == &work.provider) {
                let node = provider_node(&work.provider, timeline);
                providers.push((work.provider.clone(), tree.add(apply, node)));
            }
        }
    }
    let propagation = timeline.iter().find(|m| m.step == Step::DnsPropagationSeen).map(|m| {
        let began = m.provider.as_ref().map(|w| w.began).or(verified).or(decided).unwrap_or(m.at);
        let mut node = Node::new("propagation", "propagation", began, m.at);
        if let Some(w) = &m.provider {
            node.attributes.push(KeyValue::new("failover.provider", w.provider.clone()));
        }
        tree.add(0, node)
    });

    // Every milestone, as an event on the innermost span it belongs to.
    for m in timeline {
        let on = match m.step {
            s if is_detection(s) => detection,
            Step::PlanDecided | Step::ReadBackVerified => apply,
            Step::ProviderWrite => m
                .provider
                .as_ref()
                .and_then(|w| providers.iter().find(|(name, _)| name == &w.provider).map(|(_, i)| *i))
                .or(apply),
            Step::DnsPropagationSeen => propagation,
            _ => None,
        };
        let node = &mut tree.0[on.unwrap_or(0)];
        node.events.push(event(m));
    }
    finish(incident.id, tree, scope)
}

/// The steps that lead up to the decision.
fn is_detection(step: Step) -> bool {
    matches!(step, Step::FirstFailedProbe | Step::CheckTransition | Step::RegionTransition | Step::QuorumReached)
}

/// The root's attributes: what moved, from where, and the headline figures.
fn incident_attributes(i: &Incident) -> Vec<KeyValue> {
    let mut a = vec![
        KeyValue::new("failover.incident_id", i.id.to_string()),
        KeyValue::new("failover.region", i.region.to_string()),
        KeyValue::new("failover.verified", i.verified_at.is_some()),
    ];
    if let Some(plan) = i.plan_id {
        a.push(KeyValue::new("failover.plan_id", plan.to_string()));
    }
    if let Some(drill) = i.synthetic_drill {
        a.push(KeyValue::new("failover.synthetic_drill", drill.to_string()));
    }
    if let Some(kind) = &i.kind {
        a.push(KeyValue::new("failover.plan_kind", kind.clone()));
    }
    if let Some(w) = &i.from_weights {
        a.push(KeyValue::new("failover.weights_from", w.to_string()));
    }
    if let Some(w) = &i.to_weights {
        a.push(KeyValue::new("failover.weights_to", w.to_string()));
    }
    let f = i.figures();
    for (key, ms) in [
        ("failover.detection_ms", f.detection_ms),
        ("failover.decision_ms", f.decision_ms),
        ("failover.flip_ms", f.flip_ms),
        ("failover.dns_ms", f.dns_ms),
    ] {
        if let Some(ms) = ms {
            a.push(KeyValue::new(key, ms));
        }
    }
    a
}

/// The span of one provider's apply: from its first attempt to its last write, with how the
/// last write ended and the latest error it met.
fn provider_node(provider: &str, timeline: &[Milestone]) -> Node {
    let writes: Vec<(&Milestone, &ProviderWork)> = timeline
        .iter()
        .filter(|m| m.step == Step::ProviderWrite)
        .filter_map(|m| m.provider.as_ref().filter(|w| w.provider == provider).map(|w| (m, w)))
        .collect();
    let began = writes.iter().map(|(_, w)| w.began).min();
    let ended = writes.iter().map(|(m, _)| m.at).max();
    let (start, end) = match (began, ended) {
        (Some(b), Some(e)) => (b, e),
        // Not reached (the caller found a write of this provider); an empty span otherwise.
        _ => (DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MIN_UTC),
    };
    let mut node = Node::new(format!("apply/{provider}"), format!("apply {provider}"), start, end);
    node.attributes.push(KeyValue::new("failover.provider", provider.to_string()));
    if let Some((_, last)) = writes.last() {
        node.attributes.push(KeyValue::new("failover.attempts", i64::from(last.attempts)));
        node.attributes.push(KeyValue::new("failover.outcome", last.outcome.as_str()));
        let error = writes.iter().rev().find_map(|(_, w)| w.error.clone());
        if let Some(e) = &error {
            node.attributes.push(KeyValue::new("failover.error", e.clone()));
        }
        node.status = match last.outcome {
            WorkOutcome::Verified | WorkOutcome::Propagated => Status::Ok,
            other => Status::error(error.unwrap_or_else(|| other.as_str().to_string())),
        };
    }
    node
}

/// A milestone as a span event: named after its step, with its detail.
fn event(m: &Milestone) -> Event {
    let mut attributes = vec![KeyValue::new("failover.detail", m.detail.clone())];
    if let Some(w) = &m.provider {
        attributes.push(KeyValue::new("failover.provider", w.provider.clone()));
        attributes.push(KeyValue::new("failover.outcome", w.outcome.as_str()));
    }
    Event::new(m.step.as_str(), SystemTime::from(m.at), attributes, 0)
}

/// The built tree as exportable spans, ids derived from the incident id.
fn finish(incident: Uuid, tree: Tree, scope: &InstrumentationScope) -> Vec<SpanData> {
    let trace = trace_id(incident);
    let ids: Vec<SpanId> = tree.0.iter().map(|n| span_id(incident, &n.path)).collect();
    tree.0
        .into_iter()
        .zip(&ids)
        .map(|(node, id)| {
            let mut events = SpanEvents::default();
            events.events = node.events;
            SpanData {
                span_context: SpanContext::new(trace, *id, TraceFlags::SAMPLED, false, TraceState::default()),
                parent_span_id: node.parent.map_or(SpanId::INVALID, |p| ids[p]),
                parent_span_is_remote: false,
                span_kind: SpanKind::Internal,
                name: Cow::Owned(node.name),
                start_time: SystemTime::from(node.start),
                end_time: SystemTime::from(node.end),
                attributes: node.attributes,
                dropped_attributes_count: 0,
                events,
                links: SpanLinks::default(),
                status: node.status,
                instrumentation_scope: scope.clone(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use opentelemetry::Value;

    use super::*;
    use crate::plan::{PlanId, Weights};
    use crate::region::RegionName;

    fn t(ms: i64) -> DateTime<Utc> {
        Utc.timestamp_millis_opt(1_700_000_000_000 + ms).unwrap()
    }

    fn m(step: Step, at: i64, provider: Option<ProviderWork>) -> Milestone {
        Milestone { step, at: t(at), detail: format!("{} at {at}", step.as_str()), provider }
    }

    fn work(provider: &str, began: i64, attempts: u32, outcome: WorkOutcome, error: Option<&str>) -> ProviderWork {
        ProviderWork {
            provider: provider.into(),
            began: t(began),
            attempts,
            outcome,
            error: error.map(String::from),
            propagation_follows: false,
        }
    }

    fn w(p: u32, s: u32) -> Weights {
        Weights::from_pairs([(RegionName::new("primary"), p), (RegionName::new("standby"), s)])
    }

    /// A failover: detected, decided, pdns failing once then verified, file verified, DNS seen.
    fn failover() -> Incident {
        Incident {
            id: Uuid::from_u128(0x1234_5678_9abc_def0_1234_5678_9abc_def0),
            region: RegionName::new("primary"),
            opened_at: t(0),
            plan_id: Some(PlanId::new()),
            kind: Some("failover".into()),
            from_weights: Some(w(80, 20)),
            to_weights: Some(w(0, 100)),
            timeline: vec![
                m(Step::FirstFailedProbe, 0, None),
                m(Step::CheckTransition, 200, None),
                m(Step::RegionTransition, 200, None),
                m(Step::QuorumReached, 210, None),
                m(Step::PlanDecided, 210, None),
                m(Step::ProviderWrite, 240, Some(work("pdns", 215, 1, WorkOutcome::Failed, Some("503 from the API")))),
                m(Step::ProviderWrite, 250, Some(work("file", 214, 1, WorkOutcome::Verified, None))),
                m(Step::ProviderWrite, 600, Some(work("pdns", 215, 2, WorkOutcome::Verified, None))),
                m(Step::ReadBackVerified, 600, None),
                m(Step::DnsPropagationSeen, 640, Some(work("pdns", 600, 0, WorkOutcome::Propagated, None))),
            ],
            verified_at: Some(t(600)),
            synthetic_drill: None,
        }
    }

    fn scope() -> InstrumentationScope {
        InstrumentationScope::builder("test").build()
    }

    fn attr<'a>(s: &'a SpanData, key: &str) -> Option<&'a Value> {
        s.attributes.iter().find(|kv| kv.key.as_str() == key).map(|kv| &kv.value)
    }

    fn named<'a>(spans: &'a [SpanData], name: &str) -> &'a SpanData {
        spans.iter().find(|s| s.name == name).unwrap_or_else(|| panic!("no span {name}"))
    }

    #[test]
    fn a_failover_is_one_trace_of_detection_apply_per_provider_and_propagation() {
        let i = failover();
        let spans = incident_spans(&i, &scope());
        let names: Vec<&str> = spans.iter().map(|s| s.name.as_ref()).collect();
        assert_eq!(names, ["incident", "detection", "apply", "apply pdns", "apply file", "propagation"]);
        assert!(spans.iter().all(|s| s.span_context.trace_id() == trace_id(i.id)), "one trace");
        let id = |name: &str| named(&spans, name).span_context.span_id();
        let parent = |name: &str| named(&spans, name).parent_span_id;
        assert_eq!(parent("incident"), SpanId::INVALID);
        for child in ["detection", "apply", "propagation"] {
            assert_eq!(parent(child), id("incident"), "{child}");
        }
        assert_eq!((parent("apply pdns"), parent("apply file")), (id("apply"), id("apply")));
        // The times are the milestones'.
        let at = |ms: i64| SystemTime::from(t(ms));
        let times = |name: &str| (named(&spans, name).start_time, named(&spans, name).end_time);
        assert_eq!(times("incident"), (at(0), at(640)));
        assert_eq!(times("detection"), (at(0), at(210)));
        assert_eq!(times("apply"), (at(210), at(600)));
        assert_eq!(times("apply pdns"), (at(215), at(600)));
        assert_eq!(times("apply file"), (at(214), at(250)));
        assert_eq!(times("propagation"), (at(600), at(640)));
        // What each says.
        let root = named(&spans, "incident");
        assert_eq!(attr(root, "failover.region"), Some(&Value::from("primary")));
        assert_eq!(attr(root, "failover.plan_kind"), Some(&Value::from("failover")));
        assert_eq!(attr(root, "failover.weights_to"), Some(&Value::from("primary=0 standby=100")));
        assert_eq!(attr(root, "failover.flip_ms"), Some(&Value::I64(600)));
        assert_eq!(attr(root, "failover.synthetic_drill"), None, "a real failure names no drill");
        assert_eq!(root.status, Status::Ok);
        // A synthetic-failure drill's rehearsal says so on its root span.
        let drill = Uuid::from_u128(42);
        let rehearsal = incident_spans(&Incident { synthetic_drill: Some(drill), ..failover() }, &scope());
        let root = named(&rehearsal, "incident");
        assert_eq!(attr(root, "failover.synthetic_drill"), Some(&Value::from(drill.to_string())));
        let pdns = named(&spans, "apply pdns");
        assert_eq!(attr(pdns, "failover.provider"), Some(&Value::from("pdns")));
        assert_eq!(attr(pdns, "failover.attempts"), Some(&Value::I64(2)));
        assert_eq!(attr(pdns, "failover.outcome"), Some(&Value::from("verified")));
        assert_eq!(attr(pdns, "failover.error"), Some(&Value::from("503 from the API")), "the error it got past");
        assert_eq!(attr(named(&spans, "apply file"), "failover.error"), None);
        // Every milestone is one event, where it belongs.
        let events = |name: &str| named(&spans, name).events.iter().map(|e| e.name.to_string()).collect::<Vec<_>>();
        assert_eq!(spans.iter().map(|s| s.events.len()).sum::<usize>(), i.timeline.len());
        assert_eq!(
            events("detection"),
            ["first_failed_probe", "check_transition", "region_transition", "quorum_reached"]
        );
        assert_eq!(events("apply"), ["plan_decided", "read_back_verified"]);
        assert_eq!(events("apply pdns"), ["provider_write", "provider_write"]);
        assert_eq!(events("propagation"), ["dns_propagation_seen"]);
    }

    #[test]
    fn the_same_incident_gives_the_same_ids_and_another_a_different_trace() {
        let i = failover();
        let a = incident_spans(&i, &scope());
        let b = incident_spans(&i, &scope());
        assert_eq!(a, b);
        let ids: std::collections::HashSet<_> = a.iter().map(|s| s.span_context.span_id()).collect();
        assert_eq!(ids.len(), a.len(), "span ids are distinct");
        assert_eq!(format!("{:032x}", trace_id(i.id)), i.id.simple().to_string(), "found by the incident id");
        let other = Incident { id: Uuid::from_u128(7), ..i };
        let c = incident_spans(&other, &scope());
        assert_ne!(a[0].span_context.trace_id(), c[0].span_context.trace_id());
        assert_ne!(a[0].span_context.span_id(), c[0].span_context.span_id());
    }

    #[test]
    fn an_apply_that_never_verified_ends_at_its_last_write_as_an_error() {
        let mut i = failover();
        i.timeline.truncate(6); // up to pdns's failed first write, at 240
        i.verified_at = None;
        let spans = incident_spans(&i, &scope());
        let names: Vec<&str> = spans.iter().map(|s| s.name.as_ref()).collect();
        assert_eq!(names, ["incident", "detection", "apply", "apply pdns"]);
        let apply = named(&spans, "apply");
        assert_eq!(apply.end_time, SystemTime::from(t(240)));
        assert!(matches!(apply.status, Status::Error { .. }));
        assert!(matches!(named(&spans, "incident").status, Status::Error { .. }));
        let pdns = named(&spans, "apply pdns");
        assert_eq!(attr(pdns, "failover.outcome"), Some(&Value::from("failed")));
        assert_eq!(pdns.status, Status::error("503 from the API"));
    }

    #[test]
    fn a_plan_without_detection_has_no_detection_span_and_a_stepped_clock_stays_inside_the_parent() {
        // A drain: opened at the decision. The provider's start reads before the decision
        // (wall clock stepped back): clamped into its parent.
        let i = Incident {
            timeline: vec![
                m(Step::PlanDecided, 0, None),
                m(Step::ProviderWrite, 30, Some(work("file", -500, 1, WorkOutcome::Verified, None))),
                m(Step::ReadBackVerified, 30, None),
            ],
            verified_at: Some(t(30)),
            ..failover()
        };
        let spans = incident_spans(&i, &scope());
        let names: Vec<&str> = spans.iter().map(|s| s.name.as_ref()).collect();
        assert_eq!(names, ["incident", "apply", "apply file"]);
        for s in &spans {
            assert!(s.start_time <= s.end_time, "{}", s.name);
            if let Some(p) = spans.iter().find(|p| p.span_context.span_id() == s.parent_span_id) {
                assert!(p.start_time <= s.start_time && s.end_time <= p.end_time, "{} inside {}", s.name, p.name);
            }
        }
        assert_eq!(named(&spans, "apply file").start_time, SystemTime::from(t(0)));
    }

    #[test]
    fn a_timeline_stored_without_provider_work_still_converts() {
        // Incidents written before milestones carried their provider's work.
        let mut i = failover();
        for m in &mut i.timeline {
            m.provider = None;
        }
        let spans = incident_spans(&i, &scope());
        let names: Vec<&str> = spans.iter().map(|s| s.name.as_ref()).collect();
        assert_eq!(names, ["incident", "detection", "apply", "propagation"]);
        assert_eq!(spans.iter().map(|s| s.events.len()).sum::<usize>(), i.timeline.len());
        assert_eq!(named(&spans, "propagation").start_time, SystemTime::from(t(600)));
    }
}
