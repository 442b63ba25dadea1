//! The HTTP API: status, events paging and filters, metrics, JSON errors.

use std::time::Duration;

use crate::common::{Spec, spawn_app, w};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_events_metrics_and_errors() {
    let mut app = spawn_app(Spec { powerdns: false, ..Spec::default() }).await;
    app.wait_for_verified(&w(80, 20, 0), Duration::from_secs(30)).await;

    let (code, body) = app.get("/healthz").await;
    assert_eq!(code, 200);
    assert_eq!(body["status"], "ok");

    let (code, st) = app.get("/api/v1/status").await;
    assert_eq!(code, 200);
    let regions = st["regions"].as_array().unwrap();
    assert_eq!(regions.len(), 3);
    assert_eq!(regions[0]["name"], "primary");
    assert_eq!(regions[0]["weight"], 80);
    let layers: Vec<&str> =
        regions[0]["layers"].as_array().unwrap().iter().map(|l| l["layer"].as_str().unwrap()).collect();
    assert_eq!(layers, ["infra", "middleware", "app"]);
    assert!(regions[0]["checks"][0]["last_latency_ms"].is_number());
    assert!(st["plan"]["reason"].as_str().unwrap().contains("start-up"));
    assert!(st["acting"]["reasons"].is_array());
    assert_eq!(st["leadership"]["leader"], true);

    // Make some history: fail over.
    app.apps[0].kill().await;
    app.wait_for_verified(&w(0, 100, 0), Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let (code, ev) = app.get("/api/v1/events?limit=2").await;
    assert_eq!(code, 200);
    let events = ev["events"].as_array().unwrap();
    assert_eq!(events.len(), 2);
    let first_at = events[0]["at"].as_str().unwrap().to_string();
    let second_at = events[1]["at"].as_str().unwrap().to_string();
    assert!(first_at >= second_at, "newest first");
    let next = ev["next_before"].as_str().expect("a next page cursor");
    let (_, page2) = app.get(&format!("/api/v1/events?limit=50&before={}", urlencode(next))).await;
    let page2 = page2["events"].as_array().unwrap();
    assert!(!page2.is_empty());
    assert!(page2.iter().all(|e| e["at"].as_str().unwrap() < next), "second page is older");

    let (_, plans) = app.get("/api/v1/events?kind=plan&limit=10").await;
    let plans = plans["events"].as_array().unwrap();
    assert!(plans.iter().all(|e| e["kind"] == "plan"));
    assert!(plans.iter().any(|e| e["message"].as_str().unwrap().starts_with("failover")), "{plans:?}");
    let (_, tr) = app.get("/api/v1/events?kind=transition&region=primary").await;
    assert!(tr["events"].as_array().unwrap().iter().all(|e| e["region"] == "primary"));

    // Bad input: 400 with a JSON error naming the field.
    let (code, err) = app.get("/api/v1/events?limit=0").await;
    assert_eq!(code, 400);
    assert_eq!(err["field"], "limit");
    let (code, err) = app.get("/api/v1/events?region=mars").await;
    assert_eq!(code, 400);
    assert!(err["error"].as_str().unwrap().contains("mars"));
    let (code, err) = app.get("/api/v1/events?before=yesterday").await;
    assert_eq!(code, 400);
    assert!(err["error"].as_str().unwrap().contains("before"), "{err}");
    let (code, err) = app.get("/api/v1/nope").await;
    assert_eq!(code, 404);
    assert!(err["error"].is_string());

    // Metrics in Prometheus text format.
    let text = app.http.get(format!("http://{}/metrics", app.addr)).send().await.unwrap().text().await.unwrap();
    assert!(text.contains("fo_region_weight{region=\"standby\"} 100"), "{text}");
    assert!(text.contains("fo_probe_latency_seconds_bucket"), "histogram exported");
    assert!(text.contains("fo_plans_applied_total{kind=\"failover\"} 1"), "{text}");
    assert!(text.contains("fo_region_health{region=\"primary\"} 0"));

    // The dashboard is served.
    let page = app.http.get(format!("http://{}/", app.addr)).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("<html"));
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_stream_pushes_snapshots() {
    let mut app = spawn_app(Spec { powerdns: false, ..Spec::default() }).await;
    app.wait_for_verified(&w(80, 20, 0), Duration::from_secs(30)).await;
    let mut resp = app
        .http
        .get(format!("http://{}/api/v1/stream", app.addr))
        .bearer_auth(&app.tokens.viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut buf = String::new();
    while !buf.contains("\n\n") {
        let chunk = tokio::time::timeout(Duration::from_secs(10), resp.chunk()).await.unwrap().unwrap().unwrap();
        buf.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(buf.starts_with("event: status"), "{buf}");
    let data = buf.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
    let st: serde_json::Value = serde_json::from_str(data).unwrap();
    assert_eq!(st["regions"].as_array().unwrap().len(), 3);
    drop(resp);
    app.shutdown().await;
}

fn urlencode(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}
