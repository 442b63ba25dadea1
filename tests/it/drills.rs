//! Drills end to end: dry run, live drill through PowerDNS with rollback, auto-abort, restart mid-drill.

use std::time::Duration;

use serde_json::json;

use crate::common::{Spec, spawn_app, w};

const T: Duration = Duration::from_secs(30);

/// Starts a live drill moving all of the primary's share to the standby; returns its id once it holds.
async fn evacuate_primary_and_hold(app: &mut crate::common::TestApp, hold_seconds: u64) -> String {
    let body = json!({ "evacuate": "primary", "hold_seconds": hold_seconds, "reason": "test" });
    let (code, d) = app.post("/api/v1/drills", body).await;
    assert_eq!(code, 201, "{d}");
    app.wait_for_verified(&w(0, 100, 0), T).await;
    app.wait_for("holding", T, |s| {
        s.drill.as_ref().is_some_and(|d| d.state == failover_orchestrator::drill::DrillState::Holding)
    })
    .await;
    d["id"].as_str().unwrap().to_string()
}

/// The kinds of a drill's timeline entries, in order.
pub(crate) fn kinds(d: &serde_json::Value) -> Vec<String> {
    d["timeline"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap().to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_drill_records_every_step_and_touches_no_provider() {
    let mut app = spawn_app(Spec::default()).await;
    app.wait_for_verified(&w(80, 20, 0), T).await;
    let file_before = std::fs::read(&app.plan_file).unwrap();
    let plans_before: i64 = sqlx::query_scalar("SELECT count(*) FROM plans").fetch_one(app.store.pool()).await.unwrap();

    let (code, d) = app
        .post(
            "/api/v1/drills",
            json!({ "evacuate": "primary", "steps": [50, 100], "hold_seconds": 30, "dry_run": true, "reason": "rehearsal" }),
        )
        .await;
    assert_eq!(code, 201, "{d}");
    assert_eq!(d["state"], "dry_run");
    assert_eq!(d["spec"]["target"], "standby");
    assert_eq!(
        d["spec"]["planned"],
        json!([{ "primary": 40, "standby": 60, "dr": 0 }, { "primary": 0, "standby": 100, "dr": 0 }])
    );
    let id = d["id"].as_str().unwrap();
    let d = app.wait_drill_finished(id, T).await;
    let k = kinds(&d);
    assert_eq!(k.iter().filter(|k| *k == "step_planned").count(), 2, "{k:?}");
    assert_eq!(d["timeline"][2]["weights"]["standby"], 100);

    // Nothing was applied: no new plan, the plan file and PowerDNS unchanged.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let plans_after: i64 = sqlx::query_scalar("SELECT count(*) FROM plans").fetch_one(app.store.pool()).await.unwrap();
    assert_eq!(plans_after, plans_before);
    assert_eq!(std::fs::read(&app.plan_file).unwrap(), file_before);
    let answers = app.dig_many(30).await;
    assert!(answers.contains(&app.addresses[0]), "primary still answered: {answers:?}");
    assert_eq!(app.weights(), w(80, 20, 0));
    assert!(app.status.borrow().drill.is_none());
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_drill_shifts_through_powerdns_holds_and_rolls_back() {
    let mut app = spawn_app(Spec::default()).await;
    app.wait_for_verified(&w(80, 20, 0), T).await;
    let (code, d) = app
        .post(
            "/api/v1/drills",
            json!({ "evacuate": "primary", "steps": [50, 100], "hold_seconds": 2, "reason": "game day" }),
        )
        .await;
    assert_eq!(code, 201, "{d}");
    let id = d["id"].as_str().unwrap().to_string();

    // Step 2 holds all traffic on the standby: PowerDNS really answers only the standby.
    app.wait_for("drill holding step 2", T, |s| {
        s.drill
            .as_ref()
            .is_some_and(|d| d.step == Some(1) && d.state == failover_orchestrator::drill::DrillState::Holding)
    })
    .await;
    let answers = app.dig_many(20).await;
    assert!(answers.iter().all(|a| *a == app.addresses[1]), "during the drill: {answers:?}");

    // While it holds, other operations are refused with the reason.
    let (code, e) =
        app.post("/api/v1/drills", json!({ "evacuate": "primary", "dry_run": true, "reason": "second" })).await;
    assert_eq!(code, 409, "{e}");
    assert!(e["reasons"].as_array().unwrap().iter().any(|r| r.as_str().unwrap().contains(&id)), "{e}");
    let (code, e) = app.post("/api/v1/failover", json!({ "target": "dr", "reason": "x" })).await;
    assert_eq!(code, 409, "{e}");
    assert!(e["error"].as_str().unwrap().contains("operation lock"), "{e}");

    let d = app.wait_drill_finished(&id, T).await;
    assert_eq!(d["state"], "completed", "{d}");
    let k = kinds(&d);
    for want in
        ["preflight", "step_sent", "step_verified", "hold_done", "rollback_sent", "rollback_verified", "finished"]
    {
        assert!(k.contains(&want.to_string()), "{want} missing from {k:?}");
    }
    assert_eq!(k.iter().filter(|k| *k == "step_verified").count(), 2);
    assert!(d["report"]["time_to_shift_ms"].as_u64().is_some(), "{d}");
    assert!(d["report"]["time_to_rollback_ms"].as_u64().is_some(), "{d}");
    assert_eq!(d["report"]["steps_verified"], 2);

    // Rolled back: the normal plan is verified and PowerDNS answers the primary again.
    app.wait_for_verified(&w(80, 20, 0), T).await;
    let answers = app.dig_many(30).await;
    assert!(answers.contains(&app.addresses[0]), "after rollback: {answers:?}");
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM plans WHERE kind = 'drill'")
        .fetch_one(app.store.pool())
        .await
        .unwrap();
    assert_eq!(n, 3, "two steps and the rollback recorded as plans");
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drill_aborts_and_rolls_back_by_itself_when_the_target_breaks_mid_hold() {
    let mut app = spawn_app(Spec { powerdns: false, ..Spec::default() }).await;
    app.wait_for_verified(&w(80, 20, 0), T).await;
    let id = evacuate_primary_and_hold(&mut app, 120).await;

    app.apps[1].break_health();
    let d = app.wait_drill_finished(&id, T).await;
    assert_eq!(d["state"], "aborted", "{d}");
    assert!(d["report"]["outcome_reason"].as_str().unwrap().contains("standby"), "{d}");
    assert!(d["report"]["error_count"].as_u64().unwrap() > 0, "probe failures seen during the drill: {d}");
    // The safety move wins: the broken standby gets nothing, the primary everything.
    app.wait_for_verified(&w(100, 0, 0), T).await;
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_mid_drill_rolls_back_and_records_the_drill_as_interrupted() {
    let db = crate::common::fresh_database().await;
    let spec = Spec { store_dsn: Some(db.clone()), powerdns: false, ..Spec::default() };
    let mut app = spawn_app(spec.clone()).await;
    app.wait_for_verified(&w(80, 20, 0), T).await;
    let id = evacuate_primary_and_hold(&mut app, 300).await;
    app.shutdown().await;

    // A new orchestrator on the same store rolls the drill back instead of resuming its plan.
    let mut app = spawn_app(spec).await;
    app.wait_for_verified(&w(80, 20, 0), T).await;
    let reason = app.status.borrow().plan.as_ref().unwrap().plan.reason.clone();
    assert!(reason.contains("rolling back drill") && reason.contains(&id), "{reason}");
    let d = app.wait_drill_finished(&id, T).await;
    assert_eq!(d["state"], "interrupted", "{d}");
    assert!(d["report"]["outcome_reason"].as_str().unwrap().contains("restarted"), "{d}");
    assert!(kinds(&d).contains(&"rollback_verified".to_string()));
    app.shutdown().await;
}
