//! Least privilege, limits and headers of the API (issue 13): who sees the audit log, how
//! refused requests are counted and audited, rate limits per client IP, the bound on live
//! streams, security headers on every response, audit retention.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use failover_orchestrator::store::{AuditRecord, Store, Write};
use fo_lab::topology::LabLimits;
use serde_json::{Value, json};

use crate::common::{Spec, TestApp, fresh_database, spawn_app};

const T: Duration = Duration::from_secs(30);

/// A client whose requests come from `127.0.0.<last>` (every 127/8 address is this machine).
fn client_from(last: u8) -> reqwest::Client {
    reqwest::Client::builder().local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))).build().unwrap()
}

fn spec() -> Spec {
    Spec { powerdns: false, ..Spec::default() }
}

/// The audit rows as an operator reads them.
async fn audit_rows(app: &TestApp) -> Vec<Value> {
    let (code, body) = app.get_as("/api/v1/audit?limit=500", Some(&app.tokens.operator)).await;
    assert_eq!(code, 200, "{body}");
    body["entries"].as_array().unwrap().clone()
}

/// Waits until the audit log holds a row satisfying `pred` (writes are buffered).
async fn wait_for_audit(app: &TestApp, what: &str, pred: impl Fn(&Value) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + T;
    loop {
        let rows = audit_rows(app).await;
        if rows.iter().any(&pred) {
            return rows;
        }
        assert!(Instant::now() < deadline, "no audit row for {what}: {rows:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn metric(app: &TestApp, line_start: &str) -> f64 {
    let text = app.http.get(format!("http://{}/metrics", app.addr)).send().await.unwrap().text().await.unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(line_start).and_then(|v| v.trim().parse().ok()))
        .unwrap_or_else(|| panic!("no `{line_start}` in /metrics:\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_carries_the_security_headers() {
    let app = spawn_app(spec()).await;
    let base = format!("http://{}", app.addr);
    let cases = [
        ("/api/v1/status", Some(app.tokens.viewer.as_str()), 200),
        ("/assets/main.js", None, 200),
        ("/", None, 200),
        ("/api/v1/events?limit=0", Some(app.tokens.viewer.as_str()), 400),
        ("/api/v1/status", None, 401),
        ("/no/such/route", None, 404),
    ];
    for (path, token, want) in cases {
        let mut req = app.http.get(format!("{base}{path}"));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status().as_u16(), want, "{path}");
        let h = r.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        // Nothing inline or evaluated, no data: URLs (see guard.rs).
        assert!(csp.contains("script-src 'self';") && csp.contains("style-src 'self';"), "{path}: {csp}");
        for loose in ["unsafe-inline", "unsafe-eval", "data:", "*"] {
            assert!(!csp.contains(loose), "{path}: {loose} in {csp}");
        }
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        // Plain http: no HSTS (it is only meaningful, and only sent, over TLS).
        assert!(h.get("strict-transport-security").is_none(), "{path}");
    }
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_entries_are_for_operators_and_admins_on_every_route() {
    for public_reads in [false, true] {
        let app = spawn_app(Spec { public_reads, ..spec() }).await;
        let t = app.tokens.clone();
        // One audited mutation and one audited refusal.
        let (code, body) =
            app.post("/api/v1/regions/dr/maintenance", json!({ "drain": true, "reason": "audit test" })).await;
        assert_eq!(code, 200, "{body}");
        assert_eq!(app.get_as("/api/v1/audit", Some(&t.viewer)).await.0, 403);
        wait_for_audit(&app, "the maintenance call", |e| e["action"] == "maintenance.drain").await;

        let readers: Vec<(&str, Option<&str>)> = if public_reads {
            vec![("viewer", Some(&t.viewer)), ("anonymous", None)]
        } else {
            vec![("viewer", Some(&t.viewer))]
        };
        for (who, token) in readers {
            // The first transitions and plan land in the store a moment after start.
            let deadline = Instant::now() + T;
            let (body, kinds) = loop {
                let (code, body) = app.get_as("/api/v1/events?limit=500", token).await;
                assert_eq!(code, 200, "{who}: {body}");
                let kinds: Vec<String> = body["events"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| e["kind"].as_str().unwrap().to_string())
                    .collect();
                if !kinds.is_empty() {
                    break (body, kinds);
                }
                assert!(Instant::now() < deadline, "{who} never sees a timeline");
                tokio::time::sleep(Duration::from_millis(100)).await;
            };
            assert!(!kinds.iter().any(|k| k == "audit"), "{who} sees audit rows: {kinds:?}");
            assert!(!body.to_string().contains("audit test"), "{who}: {body}");
            let (code, body) = app.get_as("/api/v1/events?kind=audit", token).await;
            assert_eq!(code, 403, "{who}: {body}");
            assert!(body["error"].as_str().unwrap().contains("operator"), "{who}: {body}");
            let (code, body) = app.get_as("/api/v1/audit", token).await;
            assert!(code == 403 || code == 401, "{who}: {code} {body}");
            assert!(body["error"].is_string(), "{who}: {body}");
        }
        for token in [&t.operator, &t.admin] {
            let (code, body) = app.get_as("/api/v1/events?limit=500", Some(token)).await;
            assert_eq!(code, 200, "{body}");
            assert!(body["events"].as_array().unwrap().iter().any(|e| e["kind"] == "audit"), "{body}");
            let (code, body) = app.get_as("/api/v1/events?kind=audit&limit=500", Some(token)).await;
            assert_eq!(code, 200, "{body}");
            let events = body["events"].as_array().unwrap();
            assert!(!events.is_empty() && events.iter().all(|e| e["kind"] == "audit"), "{body}");
        }
        app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_bad_tokens_is_counted_exactly_and_audited_at_a_bounded_rate() {
    let app = spawn_app(spec()).await;
    const FLOOD: usize = 10_000;
    const WORKERS: usize = 8;
    let started = Instant::now();
    let url = format!("http://{}/api/v1/status", app.addr);
    let mut tasks = Vec::new();
    for _ in 0..WORKERS {
        let (http, url) = (app.http.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..FLOOD / WORKERS {
                let r = http.get(&url).bearer_auth("not-a-token").send().await.unwrap();
                assert_eq!(r.status().as_u16(), 401);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // And reads without any token, a reason of their own.
    for _ in 0..50 {
        assert_eq!(app.get_as("/api/v1/drills", None).await.0, 401);
    }
    let elapsed = started.elapsed();
    assert_eq!(metric(&app, "fo_http_auth_refused_total{reason=\"invalid\"}").await, FLOOD as f64);
    assert_eq!(metric(&app, "fo_http_auth_refused_total{reason=\"missing\"}").await, 50.0);

    let rows = wait_for_audit(&app, "a missing token", |e| e["details"]["refused"] == "missing").await;
    let invalid: Vec<&Value> = rows.iter().filter(|e| e["details"]["refused"] == "invalid").collect();
    // One row per client and reason per 10 s: the first at once, then one per window begun.
    let bound = 1 + (elapsed.as_secs() / 10) as usize + 1;
    assert!(
        !invalid.is_empty() && invalid.len() <= bound,
        "{} rows for {FLOOD} refusals in {elapsed:?}",
        invalid.len()
    );
    for e in &invalid {
        assert_eq!(e["actor"], "anonymous", "{e}");
        assert_eq!(e["details"]["client_ip"], "127.0.0.1", "{e}");
        assert!(e["outcome"].as_str().unwrap().starts_with("401"), "{e}");
        assert_eq!(e["action"], "GET /api/v1/status", "{e}");
    }
    let reported: u64 = invalid.iter().map(|e| e["details"]["suppressed"].as_u64().unwrap()).sum();
    assert!(reported + invalid.len() as u64 <= FLOOD as u64, "{reported}");
    assert!(!rows.iter().any(|e| e.to_string().contains("not-a-token")), "a presented token was stored");
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_failure_limit_a_client_gets_429_before_its_token_is_checked_and_others_do_not() {
    let limits = LabLimits { auth_failures_per_minute: 3, ..LabLimits::default() };
    let app = spawn_app(Spec { limits, ..spec() }).await;
    let status = |http: reqwest::Client, token: Option<String>| {
        let url = format!("http://{}/api/v1/status", app.addr);
        async move {
            let mut req = http.get(url);
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            let r = req.send().await.unwrap();
            let retry = r.headers().get("retry-after").map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
            (r.status().as_u16(), retry, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (a, b) = (client_from(3), client_from(4));
    let operator = Some(app.tokens.operator.clone());
    for _ in 0..3 {
        assert_eq!(status(a.clone(), Some("wrong".into())).await.0, 401);
    }
    let (code, retry, body) = status(a.clone(), Some("wrong".into())).await;
    assert_eq!(code, 429, "{body}");
    assert!(retry.is_some_and(|s| (1..=60).contains(&s)), "{retry:?}");
    assert!(body["error"].as_str().unwrap().contains("limits.auth_failures_per_minute"), "{body}");
    // A valid token from the same address is refused too: its token is not looked at.
    let (code, retry, _) = status(a.clone(), operator.clone()).await;
    assert_eq!((code, retry.is_some()), (429, true));
    // Without a token nothing is guessed: the public probe routes still answer.
    assert_eq!(a.get(format!("http://{}/healthz", app.addr)).send().await.unwrap().status().as_u16(), 200);
    // Another address is not affected.
    assert_eq!(status(b.clone(), operator).await.0, 200);
    assert_eq!(status(b, Some("wrong".into())).await.0, 401);
    assert!(metric(&app, "fo_http_rate_limited_total{limit=\"auth_failures\"}").await >= 2.0);
    let rows = wait_for_audit(&app, "the limited address", |e| e["details"]["refused"] == "limited").await;
    let limited = rows.iter().find(|e| e["details"]["refused"] == "limited").unwrap();
    assert!(limited["outcome"].as_str().unwrap().starts_with("429"), "{limited}");
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutations_past_the_limit_get_429_with_retry_after_and_other_clients_do_not() {
    let limits = LabLimits { mutations_per_minute: 2, ..LabLimits::default() };
    let app = spawn_app(Spec { limits, ..spec() }).await;
    let abort = |http: reqwest::Client| {
        let url = format!("http://{}/api/v1/drills/{}/abort", app.addr, uuid::Uuid::new_v4());
        let token = app.tokens.operator.clone();
        async move {
            let r = http.post(url).bearer_auth(token).json(&json!({})).send().await.unwrap();
            let retry = r.headers().get("retry-after").map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
            (r.status().as_u16(), retry, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (a, b) = (client_from(3), client_from(4));
    for _ in 0..2 {
        let (code, _, body) = abort(a.clone()).await;
        assert!(code != 429 && code < 500, "{code} {body}");
    }
    let (code, retry, body) = abort(a.clone()).await;
    assert_eq!(code, 429, "{body}");
    // One request every 30 s comes back: Retry-After says when, in seconds.
    assert!(retry.is_some_and(|s| (1..=30).contains(&s)), "{retry:?}");
    assert!(body["error"].as_str().unwrap().contains("limits.mutations_per_minute"), "{body}");
    // Reads are not limited, nor is another address.
    assert_eq!(
        a.get(format!("http://{}/api/v1/status", app.addr))
            .bearer_auth(&app.tokens.viewer)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    let (code, _, body) = abort(b).await;
    assert!(code != 429 && code < 500, "{code} {body}");
    assert_eq!(metric(&app, "fo_http_rate_limited_total{limit=\"mutations\"}").await, 1.0);

    // Stream tickets are outside the limit (a dashboard asks one per (re)connect), and neither
    // they nor a method the route does not take (405) are audited.
    for _ in 0..5 {
        let r = a
            .post(format!("http://{}/api/v1/stream/tickets", app.addr))
            .bearer_auth(&app.tokens.viewer)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 201, "{:?}", r.text().await);
    }
    let r = client_from(5)
        .post(format!("http://{}/api/v1/status", app.addr))
        .bearer_auth(&app.tokens.operator)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 405);
    // The aborts are audited (the writer is asynchronous: wait for them), then nothing else.
    let rows = wait_for_audit(&app, "the aborts", |r| r["action"].as_str().is_some_and(|a| a.contains("abort"))).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rows = if rows.len() < 3 { audit_rows(&app).await } else { rows };
    let stray: Vec<&Value> = rows
        .iter()
        .filter(|r| {
            let action = r["action"].as_str().unwrap_or("");
            action.contains("ticket") || action.contains("/api/v1/status")
        })
        .collect();
    assert!(stray.is_empty(), "{stray:?}");
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_streams_are_bounded_and_a_leaving_client_frees_its_place() {
    let limits = LabLimits { max_streams: 2, ..LabLimits::default() };
    let app = spawn_app(Spec { limits, ..spec() }).await;
    let url = format!("http://{}/api/v1/stream", app.addr);
    let open = || {
        // A client of its own per stream, so that dropping the response closes its connection.
        let (http, url, token) = (reqwest::Client::new(), url.clone(), app.tokens.viewer.clone());
        async move { http.get(url).bearer_auth(token).send().await.unwrap() }
    };
    let first = open().await;
    let second = open().await;
    assert_eq!((first.status().as_u16(), second.status().as_u16()), (200, 200));
    let third = open().await;
    assert_eq!(third.status().as_u16(), 429);
    assert!(third.headers()["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
    let body: Value = third.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("limits.max_streams"), "{body}");
    assert_eq!(metric(&app, "fo_http_streams").await, 2.0);
    // The first client leaves; the server notices at its next write and frees the place.
    drop(first);
    let deadline = Instant::now() + T;
    loop {
        let r = open().await;
        if r.status().as_u16() == 200 {
            break;
        }
        assert_eq!(r.status().as_u16(), 429);
        assert!(Instant::now() < deadline, "the place of the client that left was never freed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(second);
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_entries_past_their_retention_are_pruned_and_younger_ones_kept() {
    let dsn = fresh_database().await;
    let store = Store::connect_lazy(&dsn.clone().into()).unwrap();
    store.migrate().await.unwrap();
    let now = chrono::Utc::now();
    let row = |age_minutes: i64, action: &str| AuditRecord {
        id: uuid::Uuid::new_v4(),
        at: now - chrono::Duration::minutes(age_minutes),
        actor: "test".into(),
        action: action.into(),
        target: None,
        outcome: "ok".into(),
        request_id: None,
        details: json!({}),
    };
    store.write(&Write::Audit(row(120, "old"))).await.unwrap();
    store.write(&Write::Audit(row(30, "young"))).await.unwrap();
    store.close().await;
    let app =
        spawn_app(Spec { store_dsn: Some(dsn), audit_retention: Some(Duration::from_secs(3600)), ..spec() }).await;
    let deadline = Instant::now() + T;
    loop {
        let rows = audit_rows(&app).await;
        let actions: Vec<&str> = rows.iter().map(|e| e["action"].as_str().unwrap()).collect();
        assert!(actions.contains(&"young"), "a row inside the retention was pruned: {actions:?}");
        if !actions.contains(&"old") {
            break;
        }
        assert!(Instant::now() < deadline, "the row past the retention is still there: {actions:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_tls_configured_the_api_speaks_https_only_and_sends_hsts() {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert_path, key_path) = (dir.path().join("api.crt"), dir.path().join("api.key"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.key_pair.serialize_pem()).unwrap();
    let app = spawn_app(Spec { tls: Some((cert_path, key_path)), ..spec() }).await;
    let trusting = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap())
        .build()
        .unwrap();
    let port = app.addr.port();
    let r = trusting.get(format!("https://127.0.0.1:{port}/healthz")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["strict-transport-security"], "max-age=31536000");
    let r =
        trusting.get(format!("https://localhost:{port}/api/v1/status")).bearer_auth(&app.tokens.viewer).send().await;
    assert_eq!(r.unwrap().status().as_u16(), 200);
    // Plain http to the same port gets no answer, nor does a client that does not trust the cert.
    assert!(app.http.get(format!("http://127.0.0.1:{port}/healthz")).send().await.is_err());
    assert!(reqwest::Client::new().get(format!("https://127.0.0.1:{port}/healthz")).send().await.is_err());
    app.shutdown().await;
}
