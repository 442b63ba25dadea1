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

/// Reads the first SSE event of `resp` (the snapshot) as JSON.
async fn first_snapshot(mut resp: reqwest::Response) -> serde_json::Value {
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut buf = String::new();
    while !buf.contains("\n\n") {
        let chunk = tokio::time::timeout(Duration::from_secs(10), resp.chunk()).await.unwrap().unwrap().unwrap();
        buf.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(buf.starts_with("event: status"), "{buf}");
    let data = buf.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
    serde_json::from_str(data).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_takes_a_bearer_token_or_a_single_use_ticket_and_never_a_token_in_its_url() {
    let mut app = spawn_app(Spec { powerdns: false, ..Spec::default() }).await;
    app.wait_for_verified(&w(80, 20, 0), Duration::from_secs(30)).await;
    let url = format!("http://{}/api/v1/stream", app.addr);
    // curl and the CLI: the Authorization header.
    let resp = app.http.get(&url).bearer_auth(&app.tokens.viewer).send().await.unwrap();
    assert_eq!(first_snapshot(resp).await["regions"].as_array().unwrap().len(), 3);

    // Who am I: the dashboard's sign-in check.
    let (code, me) = app.get("/api/v1/whoami").await;
    assert_eq!(
        (code, me["name"].as_str(), me["role"].as_str(), me["authenticated"].as_bool()),
        (200, Some("lab-viewer"), Some("viewer"), Some(true))
    );
    assert_eq!(me["public_reads"], false);
    assert_eq!(app.get_as("/api/v1/whoami", None).await.0, 401);
    assert_eq!(app.get_as("/api/v1/whoami", Some("not-a-token")).await.0, 401);

    // A browser: a ticket, bought with the bearer token, opens the stream once.
    let tickets = format!("http://{}/api/v1/stream/tickets", app.addr);
    assert_eq!(app.http.post(&tickets).send().await.unwrap().status(), 401, "a ticket needs a token");
    let resp = app.http.post(&tickets).bearer_auth(&app.tokens.viewer).send().await.unwrap();
    assert_eq!(resp.status(), 201);
    let body: serde_json::Value = resp.json().await.unwrap();
    let ticket = body["ticket"].as_str().unwrap().to_string();
    assert_eq!(ticket.len(), 64);
    let expires: chrono::DateTime<chrono::Utc> = body["expires_at"].as_str().unwrap().parse().unwrap();
    let left = expires - chrono::Utc::now();
    assert!(left <= chrono::Duration::seconds(30) && left > chrono::Duration::zero(), "{left}");
    let resp = app.http.get(format!("{url}?ticket={ticket}")).send().await.unwrap();
    assert_eq!(first_snapshot(resp).await["regions"].as_array().unwrap().len(), 3);
    // Single use: the same URL again is a 401 with a JSON body saying what to do.
    let again = app.http.get(format!("{url}?ticket={ticket}")).send().await.unwrap();
    assert_eq!(again.status(), 401);
    let err: serde_json::Value = again.json().await.unwrap();
    assert!(err["error"].as_str().unwrap().contains("POST /api/v1/stream/tickets"), "{err}");
    // A ticket belongs to the stream only: it authorises nothing else.
    let resp = app.http.post(&tickets).bearer_auth(&app.tokens.operator).send().await.unwrap();
    let other = resp.json::<serde_json::Value>().await.unwrap()["ticket"].as_str().unwrap().to_string();
    let (code, _) = app.get_as(&format!("/api/v1/status?ticket={other}"), None).await;
    assert_eq!(code, 401);

    // The long-lived token in the URL is gone: no stream without a credential, and a 400 naming the fix.
    let viewer = app.tokens.viewer.clone();
    let resp = app.http.get(format!("{url}?access_token={viewer}")).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let resp = app.http.get(format!("{url}?access_token={viewer}")).bearer_auth(&viewer).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    let err: serde_json::Value = resp.json().await.unwrap();
    assert!(err["error"].as_str().unwrap().contains("access_token` is not accepted"), "{err}");
    assert!(!err.to_string().contains(&viewer), "the token is not echoed");
    app.shutdown().await;
}

fn urlencode(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}
