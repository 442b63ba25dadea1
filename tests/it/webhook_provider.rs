//! The webhook provider and notifications against a small axum receiver that
//! verifies the HMAC signature: signed plans, retries on 5xx, the read-back
//! contract (what the receiver acknowledged), deduplicated notifications, and
//! several providers at once with one down (plan outcome per provider).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use failover_orchestrator::config::{NotificationConfig, WebhookConfig};
use failover_orchestrator::metrics::Metrics;
use failover_orchestrator::notify::{Notifier, NotifyEvent, NotifyKind};
use failover_orchestrator::signed_post::{SIGNATURE_HEADER, TIMESTAMP_HEADER, verify};
use failover_orchestrator::traffic::applier::{Applier, ApplyResult, ProviderSlot, RetryPolicy};
use failover_orchestrator::traffic::webhook::{WebhookPayload, WebhookProvider};
use failover_orchestrator::traffic::{TrafficProvider, nonzero};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::common::{Spec, init_tracing, plan, spawn_app, unique, w};

const SECRET: &str = "fo-webhook-test-secret-9f8e7d";

#[derive(Clone, Default)]
struct Receiver {
    /// Bodies whose signature verified.
    bodies: Arc<Mutex<Vec<serde_json::Value>>>,
    /// Requests with a bad or missing signature.
    rejected: Arc<Mutex<u32>>,
    /// Answer 503 to this many requests first.
    fail_first: Arc<Mutex<u32>>,
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let ts: i64 = headers.get(TIMESTAMP_HEADER).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()).unwrap_or(0);
    let sig = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !verify(SECRET.as_bytes(), ts, &body, sig) || (chrono::Utc::now().timestamp() - ts).abs() > 300 {
        *r.rejected.lock().unwrap() += 1;
        return StatusCode::UNAUTHORIZED;
    }
    {
        let mut f = r.fail_first.lock().unwrap();
        if *f > 0 {
            *f -= 1;
            return StatusCode::SERVICE_UNAVAILABLE;
        }
    }
    r.bodies.lock().unwrap().push(serde_json::from_slice(&body).unwrap());
    StatusCode::NO_CONTENT
}

async fn start_receiver(fail_first: u32) -> (String, Receiver) {
    let r = Receiver::default();
    *r.fail_first.lock().unwrap() = fail_first;
    let app = Router::new().route("/hook", post(receive)).with_state(r.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, r)
}

fn webhook(url: &str, secret: &str) -> WebhookConfig {
    WebhookConfig {
        name: "hook".into(),
        url: url.into(),
        secret: secret.to_string().into(),
        timeout: Duration::from_secs(2),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plans_are_posted_signed_retried_on_5xx_and_read_back_as_acknowledged() {
    init_tracing();
    let (url, recv) = start_receiver(2).await;
    let provider = Arc::new(WebhookProvider::new(webhook(&url, SECRET)).unwrap());
    assert!(provider.read_back().await.unwrap().weights.0.is_empty(), "nothing acknowledged yet");

    let (plans_tx, plans_rx) = watch::channel(None);
    let (reports_tx, mut reports) = mpsc::channel(16);
    let retry =
        RetryPolicy { base: Duration::from_millis(20), max: Duration::from_millis(50), ..RetryPolicy::default() };
    let applier =
        Applier::new(vec![ProviderSlot::new(provider.clone())], plans_rx, reports_tx, Arc::new(Metrics::new()), retry);
    let cancel = CancellationToken::new();
    let task = tokio::spawn(applier.run(cancel.clone()));
    let p1 = plan(7, w(60, 40, 0));
    plans_tx.send(Some(p1.clone())).unwrap();
    let mut results = Vec::new();
    loop {
        let rep = tokio::time::timeout(Duration::from_secs(10), reports.recv()).await.unwrap().unwrap();
        results.push(rep.result.clone());
        if rep.result == ApplyResult::Verified {
            assert_eq!(rep.attempts, 3, "two 503s, then accepted");
            break;
        }
    }
    assert!(matches!(&results[0], ApplyResult::Failed { will_retry: true, .. }), "{results:?}");
    cancel.cancel();
    task.await.unwrap();

    let bodies = recv.bodies.lock().unwrap().clone();
    assert_eq!(bodies.len(), 1);
    let got: WebhookPayload = serde_json::from_value(bodies[0].clone()).unwrap();
    assert_eq!(got.plan_id, p1.id);
    assert_eq!(got.weights, p1.weights);
    assert_eq!(got.event, "plan");
    assert_eq!(*recv.rejected.lock().unwrap(), 0);
    let live = provider.read_back().await.unwrap();
    assert_eq!(live.weights, nonzero(&w(60, 40, 0)), "read-back is what the receiver acknowledged");

    // A wrong secret is refused by the receiver (401, not retried) and the error does not contain the secret.
    let bad = WebhookProvider::new(webhook(&url, "another-secret-abc")).unwrap();
    let err = bad.apply(&plan(8, w(100, 0, 0))).await.unwrap_err();
    assert!(!err.is_retryable() || err.to_string().contains("401"), "{err}");
    assert!(!err.to_string().contains("another-secret-abc") && !err.to_string().contains(SECRET), "{err}");
    assert_eq!(*recv.rejected.lock().unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flapping_notifications_are_deduplicated_and_counted() {
    init_tracing();
    let (url, recv) = start_receiver(0).await;
    let (tx, rx) = mpsc::channel(64);
    let cfg = NotificationConfig {
        name: "slack".into(),
        url,
        secret: Some(SECRET.to_string().into()),
        dedup_window: Duration::from_secs(60),
        timeout: Duration::from_secs(2),
    };
    let metrics = Arc::new(Metrics::new());
    let notifier = Notifier::new(vec![cfg], rx, metrics.clone()).unwrap();
    let cancel = CancellationToken::new();
    let task = tokio::spawn(notifier.run(cancel.clone()));
    let ev = |key: &str, text: &str| NotifyEvent {
        event: NotifyKind::Health,
        key: key.into(),
        text: text.into(),
        at: chrono::Utc::now(),
        details: serde_json::json!({}),
    };
    for i in 0..6 {
        let to = if i % 2 == 0 { "down" } else { "up" };
        tx.send(ev("health:primary", &format!("region primary: → {to}"))).await.unwrap();
    }
    tx.send(ev("alarm:region_down:primary", "alarm region_down")).await.unwrap();
    // Wait until both distinct keys arrived, then check nothing else did.
    for _ in 0..100 {
        if recv.bodies.lock().unwrap().len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let bodies = recv.bodies.lock().unwrap().clone();
    assert_eq!(bodies.len(), 2, "{bodies:?}");
    assert_eq!(bodies[0]["text"], "region primary: → down", "Slack-compatible text field");
    assert_eq!(bodies[0]["event"], "health");
    assert_eq!(bodies[1]["key"], "alarm:region_down:primary");
    let m = metrics.encode();
    assert!(m.contains("fo_notifications_total{target=\"slack\",outcome=\"suppressed\"} 5"), "{m}");
    cancel.cancel();
    task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_one_provider_down_the_others_apply_and_the_plan_record_says_which() {
    let secret_file = std::env::temp_dir().join(format!("fo-test-webhook-secret-{}", unique()));
    std::fs::write(&secret_file, "dead-webhook-secret-5c4b3a").unwrap();
    // Nothing listens on port 9 of loopback: this provider is down.
    let extra = format!(
        "[[providers]]\ntype = \"webhook\"\nname = \"down-hook\"\nurl = \"http://127.0.0.1:9/hook\"\nsecret_file = \"{}\"\ntimeout = \"300ms\"\nbreaker_failures = 2\nbreaker_cool_down = \"1s\"\n",
        secret_file.display()
    );
    let mut app = spawn_app(Spec { powerdns: false, extra, ..Spec::default() }).await;
    app.wait_for("file verified, webhook failing", Duration::from_secs(20), |s| {
        s.plan.as_ref().is_some_and(|p| {
            let by = |n: &str| p.providers.iter().find(|r| r.provider == n).map(|r| r.result.clone());
            by("file") == Some(ApplyResult::Verified)
                && matches!(by("down-hook"), Some(ApplyResult::Failed { .. } | ApplyResult::CircuitOpen { .. }))
        })
    })
    .await;
    let st = app.status.borrow().clone();
    let alarm = st.alarms.iter().find(|a| a.kind.as_str() == "provider_failing").expect("provider_failing alarm");
    assert!(alarm.message.contains("down-hook"), "{}", alarm.message);
    assert!(!alarm.message.contains("dead-webhook-secret-5c4b3a"));
    // The breaker opens after two failures; the status says so.
    app.wait_for("circuit open on the dead webhook", Duration::from_secs(20), |s| {
        s.plan.as_ref().is_some_and(|p| {
            p.providers.iter().any(|r| r.provider == "down-hook" && matches!(r.result, ApplyResult::CircuitOpen { .. }))
        })
    })
    .await;
    let (_, body) = app.get("/api/v1/status").await;
    assert!(!body.to_string().contains("dead-webhook-secret-5c4b3a"), "no secret in API output");

    // The plan record in PostgreSQL has one outcome per provider: which succeeded, which did not.
    let mut outcome = serde_json::Value::Null;
    for _ in 0..50 {
        let plans = app.store.plans(1).await.unwrap();
        outcome = plans[0].outcome.clone();
        if outcome.get("file").is_some() && outcome.get("down-hook").is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(outcome["file"]["result"]["state"], "verified", "{outcome}");
    let hook = outcome["down-hook"]["result"]["state"].as_str().unwrap_or_default().to_string();
    assert!(hook == "failed" || hook == "circuit_open", "{outcome}");
    assert!(!outcome.to_string().contains("dead-webhook-secret-5c4b3a"));
    app.shutdown().await;
    let _ = std::fs::remove_file(secret_file);
}
