//! End to end: probe → decide → shift weights → record, against real PostgreSQL and real PowerDNS.

use std::time::Duration;

use sqlx::Row;

use crate::common::{Spec, spawn_app, w};

const T: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn primary_app_killed_shifts_weights_to_standby_records_plan_and_dns_follows() {
    let mut app = spawn_app(Spec::default()).await;
    app.wait_for_verified(&w(80, 20, 0), T).await;
    // Normal: PowerDNS answers both the primary and the standby.
    let answers = app.dig_many(40).await;
    assert!(answers.contains(&app.addresses[0]), "primary never answered: {answers:?}");
    assert!(!answers.contains(&app.addresses[2]), "dr answered at weight 0: {answers:?}");

    app.apps[0].kill().await;
    app.wait_for_verified(&w(0, 100, 0), T).await;

    // PowerDNS now answers only the standby.
    let answers = app.dig_many(20).await;
    assert_eq!(answers.len(), 20);
    assert!(answers.iter().all(|a| *a == app.addresses[1]), "answers after failover: {answers:?}");

    // The plan, with its reason and inputs, is in PostgreSQL.
    let row = sqlx::query("SELECT kind, reason, weights, epoch, inputs, verified_at FROM plans WHERE kind = 'failover' ORDER BY decided_at DESC LIMIT 1")
        .fetch_one(app.store.pool())
        .await
        .expect("failover plan recorded");
    let reason: String = row.get("reason");
    assert!(reason.contains("primary is down"), "{reason}");
    let weights: serde_json::Value = row.get("weights");
    assert_eq!(weights["standby"], 100);
    let inputs: serde_json::Value = row.get("inputs");
    assert_eq!(inputs["regions"][0]["health"], "down");
    let verified: Option<chrono::DateTime<chrono::Utc>> = row.get("verified_at");
    assert!(verified.is_some(), "verification outcome recorded");
    // And the health transitions that led to it.
    let n: i64 =
        sqlx::query_scalar("SELECT count(*) FROM health_transitions WHERE region = 'primary' AND to_health = 'down'")
            .fetch_one(app.store.pool())
            .await
            .unwrap();
    assert!(n >= 2, "check and region transitions recorded, got {n}");
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn primary_slowed_past_latency_threshold_is_degraded_and_partially_shifted() {
    let mut app = spawn_app(Spec { powerdns: false, ..Spec::default() }).await;
    app.wait_for_verified(&w(80, 20, 0), T).await;
    // Slower than degraded_latency (150 ms), faster than the timeout (450 ms).
    app.apps[0].slow(Duration::from_millis(300));
    app.wait_for_verified(&w(40, 60, 0), T).await;
    let st = app.status.borrow().clone();
    let primary = &st.regions[0];
    assert_eq!(primary.health, failover_orchestrator::health::Health::Degraded);
    assert_eq!(st.plan.as_ref().unwrap().plan.kind, failover_orchestrator::plan::PlanKind::DegradeShift);
    // The file provider wrote the same weights.
    let file: serde_json::Value = serde_json::from_slice(&std::fs::read(&app.plan_file).unwrap()).unwrap();
    assert_eq!(file["weights"]["primary"], 40);
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn primary_recovers_and_traffic_fails_back_in_steps() {
    let mut app = spawn_app(Spec::default()).await;
    app.wait_for_verified(&w(80, 20, 0), T).await;
    app.apps[0].break_health();
    app.wait_for_verified(&w(0, 100, 0), T).await;
    app.apps[0].restore().await.unwrap();
    // Step 40 per dwell: 0 → 40 → 80.
    app.wait_for_verified(&w(40, 60, 0), T).await;
    app.wait_for_verified(&w(80, 20, 0), T).await;
    let kinds: Vec<String> =
        sqlx::query_scalar("SELECT kind FROM plans ORDER BY decided_at").fetch_all(app.store.pool()).await.unwrap();
    let n_failback = kinds.iter().filter(|k| *k == "failback").count();
    assert_eq!(n_failback, 2, "two failback steps, got {kinds:?}");
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_failback_keeps_traffic_on_the_standby() {
    let mut app = spawn_app(Spec { failback: "manual", powerdns: false, ..Spec::default() }).await;
    app.wait_for_verified(&w(80, 20, 0), T).await;
    app.apps[0].break_health();
    app.wait_for_verified(&w(0, 100, 0), T).await;
    app.apps[0].restore().await.unwrap();
    app.wait_for("primary up again", T, |s| s.regions[0].health == failover_orchestrator::health::Health::Up).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(app.weights(), w(0, 100, 0));
    let reasons = app.status.borrow().acting.reasons.clone();
    assert!(reasons.iter().any(|r| r.contains("failback is manual")), "{reasons:?}");
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_failed_probe_moves_nothing() {
    // fall = 5 leaves room for the fast re-probes while the app is briefly broken.
    let mut app = spawn_app(Spec { fall: 5, powerdns: false, ..Spec::default() }).await;
    app.wait_for_verified(&w(80, 20, 0), T).await;
    app.apps[0].break_health();
    // While failing, the decision says why it does not act.
    app.wait_for("a reason for not acting", T, |s| s.acting.reasons.iter().any(|r| r.contains("fall=5 not reached")))
        .await;
    app.apps[0].restore().await.unwrap();
    app.wait_for("failures cleared", T, |s| s.regions[0].checks.iter().all(|c| c.fail_streak == 0)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(app.weights(), w(80, 20, 0));
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM plans WHERE kind <> 'normal'")
        .fetch_one(app.store.pool())
        .await
        .unwrap();
    assert_eq!(n, 0, "no plan besides the start-up one");
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standby_down_gives_its_share_to_the_primary_and_dr_down_only_alarms() {
    let mut app = spawn_app(Spec { powerdns: false, ..Spec::default() }).await;
    app.wait_for_verified(&w(80, 20, 0), T).await;
    app.apps[2].kill().await;
    app.wait_for("dr down alarm", T, |s| {
        s.alarms
            .iter()
            .any(|a| a.kind.as_str() == "region_down" && a.region.as_ref().is_some_and(|r| r.as_str() == "dr"))
    })
    .await;
    assert_eq!(app.weights(), w(80, 20, 0), "DR at weight 0 going down moves nothing");
    app.apps[1].kill().await;
    app.wait_for_verified(&w(100, 0, 0), T).await;
    app.shutdown().await;
}
