//! Incident traces over OTLP/HTTP, received by a small axum receiver that decodes the protobuf
//! bodies as a collector would: a real failover of a whole orchestrator (real PowerDNS, the
//! file provider, a real store) is exported as one trace whose id is the incident's, with the
//! span tree incident → detection, apply → apply <provider>, propagation, each child inside its
//! parent, and each span sent exactly once (the shutdown flush included).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;

use crate::common::{Spec, spawn_app, w};

const T: Duration = Duration::from_secs(30);

/// What the receiver got: every decoded request, and the requests it could not take.
#[derive(Clone, Default)]
struct Received {
    requests: Arc<Mutex<Vec<ExportTraceServiceRequest>>>,
    refused: Arc<Mutex<Vec<String>>>,
}

impl Received {
    /// Every span received, with the `service.name` of its resource.
    fn spans(&self) -> Vec<(String, Span)> {
        let requests = self.requests.lock().unwrap();
        let mut out = Vec::new();
        for rs in requests.iter().flat_map(|r| &r.resource_spans) {
            let service = rs.resource.as_ref().and_then(|r| attr(&r.attributes, "service.name")).unwrap_or_default();
            for span in rs.scope_spans.iter().flat_map(|s| &s.spans) {
                out.push((service.clone(), span.clone()));
            }
        }
        out
    }
}

/// `POST /v1/traces`: an OTLP/HTTP receiver for protobuf bodies.
async fn receive(State(r): State<Received>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let content_type = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
    if content_type != "application/x-protobuf" {
        r.refused.lock().unwrap().push(format!("content-type {content_type}"));
        return StatusCode::UNSUPPORTED_MEDIA_TYPE;
    }
    match ExportTraceServiceRequest::decode(body) {
        Ok(req) => {
            r.requests.lock().unwrap().push(req);
            StatusCode::OK
        }
        Err(e) => {
            r.refused.lock().unwrap().push(format!("undecodable body: {e}"));
            StatusCode::BAD_REQUEST
        }
    }
}

async fn start_receiver() -> (String, Received) {
    let r = Received::default();
    let app = Router::new().route("/v1/traces", post(receive)).with_state(r.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, r)
}

/// The value of attribute `key`, as text.
fn attr(attrs: &[KeyValue], key: &str) -> Option<String> {
    let v = attrs.iter().find(|kv| kv.key == key)?.value.as_ref()?.value.as_ref()?;
    Some(match v {
        any_value::Value::StringValue(s) => s.clone(),
        any_value::Value::IntValue(i) => i.to_string(),
        any_value::Value::BoolValue(b) => b.to_string(),
        other => format!("{other:?}"),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_is_exported_as_one_trace_from_first_failed_probe_to_dns_propagation() {
    let (base, received) = start_receiver().await;
    let mut app =
        spawn_app(Spec { extra: format!("\n[traces]\notlp_endpoint = \"{base}\"\n"), ..Spec::default() }).await;
    app.wait_for_verified(&w(80, 20, 0), T).await;
    app.apps[0].break_health();
    app.wait_for_verified(&w(0, 100, 0), T).await;

    // The incident as the API shows it: its id is the trace id.
    let deadline = Instant::now() + Duration::from_secs(60);
    let incident = loop {
        let (code, body) = app.get("/api/v1/incidents").await;
        assert_eq!(code, 200, "{body}");
        let found = body["incidents"].as_array().and_then(|list| {
            list.iter()
                .find(|i| i["region"] == "primary" && i["kind"] == "failover" && i["verified_at"].is_string())
                .cloned()
        });
        if let Some(i) = found {
            break i;
        }
        assert!(Instant::now() < deadline, "no verified failover incident of the primary: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let trace_id = uuid::Uuid::parse_str(incident["id"].as_str().unwrap()).unwrap().as_bytes().to_vec();

    // The export arrives once the incident is over (verified, DNS propagation seen).
    let spans = loop {
        let spans: Vec<(String, Span)> = received.spans().into_iter().filter(|(_, s)| s.trace_id == trace_id).collect();
        if spans.iter().any(|(_, s)| s.name == "propagation") {
            break spans;
        }
        assert!(
            Instant::now() < deadline,
            "no trace with a propagation span for incident {} after 60 s; received {} span(s), refused {:?}",
            incident["id"],
            received.spans().len(),
            received.refused.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(received.refused.lock().unwrap().is_empty(), "{:?}", received.refused.lock().unwrap());
    assert!(spans.iter().all(|(service, _)| service == "failover-orchestrator"), "service.name of the resource");
    let by_name: BTreeMap<&str, &Span> = spans.iter().map(|(_, s)| (s.name.as_str(), s)).collect();
    let names: Vec<&str> = by_name.keys().copied().collect();
    assert_eq!(names, ["apply", "apply file", "apply powerdns", "detection", "incident", "propagation"], "{names:?}");
    assert_eq!(spans.len(), names.len(), "each span once");

    // The tree: parent links.
    let root = by_name["incident"];
    assert!(root.parent_span_id.is_empty(), "the root has no parent");
    for child in ["detection", "apply", "propagation"] {
        assert_eq!(by_name[child].parent_span_id, root.span_id, "{child} under incident");
    }
    for provider in ["apply file", "apply powerdns"] {
        assert_eq!(by_name[provider].parent_span_id, by_name["apply"].span_id, "{provider} under apply");
    }
    // Times: each child inside its parent; detection before the apply.
    for (_, s) in &spans {
        assert!(s.start_time_unix_nano <= s.end_time_unix_nano, "{} starts before it ends", s.name);
        if let Some(p) = spans.iter().map(|(_, p)| p).find(|p| p.span_id == s.parent_span_id) {
            assert!(
                p.start_time_unix_nano <= s.start_time_unix_nano && s.end_time_unix_nano <= p.end_time_unix_nano,
                "{} lies inside {}",
                s.name,
                p.name
            );
        }
    }
    assert!(by_name["detection"].end_time_unix_nano <= by_name["apply"].start_time_unix_nano);
    assert!(by_name["detection"].start_time_unix_nano < by_name["propagation"].end_time_unix_nano);

    // What the spans say.
    assert_eq!(attr(&root.attributes, "failover.region").as_deref(), Some("primary"));
    assert_eq!(attr(&root.attributes, "failover.plan_kind").as_deref(), Some("failover"));
    assert_eq!(attr(&root.attributes, "failover.incident_id").as_deref(), incident["id"].as_str());
    assert_eq!(attr(&root.attributes, "failover.weights_to").as_deref(), Some("dr=0 primary=0 standby=100"));
    assert_eq!(attr(&root.attributes, "failover.verified").as_deref(), Some("true"));
    for provider in ["file", "powerdns"] {
        let s = by_name[format!("apply {provider}").as_str()];
        assert_eq!(attr(&s.attributes, "failover.provider").as_deref(), Some(provider));
        assert_eq!(attr(&s.attributes, "failover.outcome").as_deref(), Some("verified"));
        let attempts: u32 = attr(&s.attributes, "failover.attempts").unwrap().parse().unwrap();
        assert!(attempts >= 1, "{provider}: {attempts} attempt(s)");
    }
    assert_eq!(attr(&by_name["propagation"].attributes, "failover.provider").as_deref(), Some("powerdns"));
    let detection: Vec<&str> = by_name["detection"].events.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(detection.first(), Some(&"first_failed_probe"), "{detection:?}");
    assert!(detection.contains(&"region_transition"), "{detection:?}");
    // Every milestone of the stored timeline (now complete: DNS seen) is one event.
    let stored = loop {
        let (code, body) = app.get(&format!("/api/v1/incidents/{}", incident["id"].as_str().unwrap())).await;
        assert_eq!(code, 200, "{body}");
        let steps: Vec<String> =
            body["timeline"].as_array().unwrap().iter().map(|m| m["step"].as_str().unwrap().to_string()).collect();
        if steps.iter().any(|s| s == "dns_propagation_seen") {
            break steps;
        }
        assert!(Instant::now() < deadline, "the stored timeline has no DNS step: {steps:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut exported: Vec<(u64, String)> =
        spans.iter().flat_map(|(_, s)| s.events.iter().map(|e| (e.time_unix_nano, e.name.clone()))).collect();
    exported.sort();
    assert_eq!(exported.len(), stored.len(), "every milestone is one event: {exported:?} vs {stored:?}");

    // After the shutdown flush, still exactly once: no span of this trace was sent twice.
    app.shutdown().await;
    let after = received.spans().into_iter().filter(|(_, s)| s.trace_id == trace_id).count();
    assert_eq!(after, names.len(), "the incident's spans were sent once");
}
