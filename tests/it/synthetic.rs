//! Synthetic-failure drills: the automation rehearsed end to end against a healthy region
//! (real probes, hysteresis, decision, PowerDNS write, read-back and propagation), then rolled
//! back; refused while a region is really unhealthy; aborted by an operator.

use std::time::Duration;

use serde_json::json;

use crate::common::{Spec, spawn_app, w};
use crate::drills::kinds;

const T: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_synthetic_failure_of_a_healthy_primary_runs_the_automatic_failover_for_real_and_rolls_back() {
    let mut app = spawn_app(Spec::default()).await;
    app.wait_for_verified(&w(80, 20, 0), T).await;
    let (code, d) = app
        .post(
            "/api/v1/drills",
            json!({ "evacuate": "primary", "synthetic_failure": true, "hold_seconds": 1, "reason": "rehearse the automation" }),
        )
        .await;
    assert_eq!(code, 201, "{d}");
    assert_eq!(d["spec"]["synthetic"], true, "{d}");
    let id = d["id"].as_str().unwrap().to_string();

    // The automation, not the drill, moves traffic: a failover plan, verified on PowerDNS, which
    // then answers only the standby although the primary's app never stopped answering.
    app.wait_for("the synthetic drill holding", T, |s| {
        s.drill.as_ref().is_some_and(|d| d.synthetic && d.state == failover_orchestrator::drill::DrillState::Holding)
    })
    .await;
    assert_eq!(app.weights(), w(0, 100, 0));
    let answers = app.dig_many(10).await;
    assert!(answers.iter().all(|a| *a == app.addresses[1]), "during the synthetic failure: {answers:?}");

    let d = app.wait_drill_finished(&id, T).await;
    assert_eq!(d["state"], "completed", "{d}");
    let k = kinds(&d);
    for want in ["preflight", "injected", "detected", "step_verified", "lifted", "rollback_sent", "rollback_verified"] {
        assert!(k.contains(&want.to_string()), "{want} missing from {k:?}");
    }
    let f = &d["report"]["synthetic"];
    let ms = |k: &str| f[k].as_u64().unwrap_or_else(|| panic!("report.synthetic.{k} missing: {d}"));
    let (detected, decided, rto) = (ms("detected_ms"), ms("decided_ms"), ms("rto_ms"));
    assert!(detected <= decided && decided <= rto, "detection {detected} ≤ decision {decided} ≤ RTO {rto}: {d}");
    assert!(rto > 0, "{d}");
    assert_eq!(f["real_probe_failures"], 0, "the primary really stayed healthy: {d}");
    assert_eq!(f["flipped_to"], json!({ "primary": 0, "standby": 100, "dr": 0 }), "{d}");
    assert!(d["report"]["time_to_rollback_ms"].as_u64().is_some(), "{d}");
    eprintln!("synthetic drill: detected {detected} ms, decided {decided} ms, RTO {rto} ms");

    // Marked synthetic where it was recorded: the automation's plan and the transitions.
    let plan = f["automatic_plan"].as_str().unwrap();
    let (kind, reason): (String, String) = sqlx::query_as("SELECT kind, reason FROM plans WHERE id = $1::text::uuid")
        .bind(plan)
        .fetch_one(app.store.pool())
        .await
        .unwrap();
    assert_eq!(kind, "failover");
    assert!(reason.contains(&format!("synthetic-failure drill {id}")), "{reason}");
    let marked: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM health_transitions WHERE region = 'primary' AND detail LIKE '%synthetic failure injected by drill%'",
    )
    .fetch_one(app.store.pool())
    .await
    .unwrap();
    assert!(marked >= 1, "the primary's check transition names the synthetic failure");
    let (code, inc) = app.get("/api/v1/incidents").await;
    assert_eq!(code, 200, "{inc}");
    let rehearsal = inc["incidents"].as_array().unwrap().iter().find(|i| i["plan_id"] == json!(plan));
    assert_eq!(rehearsal.map(|i| i["synthetic_drill"].clone()), Some(json!(id)), "the incident names the drill: {inc}");

    // Rolled back: normal weights verified, the primary answered again, and another synthetic
    // drill may start at once (the rehearsal spent no failover budget and left no evacuation).
    app.wait_for_verified(&w(80, 20, 0), T).await;
    let answers = app.dig_many(30).await;
    assert!(answers.contains(&app.addresses[0]), "after rollback: {answers:?}");
    assert!(app.status.borrow().drill.is_none());
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_synthetic_drill_is_refused_while_a_region_is_really_down_and_an_abort_lifts_it_and_rolls_back() {
    let mut app = spawn_app(Spec { powerdns: false, ..Spec::default() }).await;
    app.wait_for_verified(&w(80, 20, 0), T).await;

    // Fields the automation decides are refused by name.
    for (field, body) in [
        ("steps", json!({ "evacuate": "primary", "synthetic_failure": true, "steps": [50], "reason": "x" })),
        ("target", json!({ "evacuate": "primary", "synthetic_failure": true, "target": "dr", "reason": "x" })),
        ("dry_run", json!({ "evacuate": "primary", "synthetic_failure": true, "dry_run": true, "reason": "x" })),
        ("evacuate", json!({ "synthetic_failure": true, "target": "dr", "reason": "x" })),
    ] {
        let (code, e) = app.post("/api/v1/drills", body).await;
        assert_eq!(code, 400, "{field}: {e}");
        assert_eq!(e["field"], field, "{e}");
    }

    // The DR region really down: refused, with the reason.
    app.apps[2].break_health();
    app.wait_for("dr down", T, |s| {
        s.regions.iter().any(|r| r.name.as_str() == "dr" && r.health == failover_orchestrator::health::Health::Down)
    })
    .await;
    let (code, e) =
        app.post("/api/v1/drills", json!({ "evacuate": "primary", "synthetic_failure": true, "reason": "x" })).await;
    assert_eq!(code, 409, "{e}");
    let reasons = e["reasons"].to_string();
    assert!(reasons.contains("region dr is down"), "{e}");
    app.apps[2].restore().await.unwrap();
    app.wait_for("dr up", T, |s| s.regions.iter().all(|r| r.health == failover_orchestrator::health::Health::Up)).await;

    // Aborted by an operator while holding: lifted at once, rolled back, recorded as aborted.
    let (code, d) = app
        .post(
            "/api/v1/drills",
            json!({ "evacuate": "primary", "synthetic_failure": true, "hold_seconds": 600, "reason": "x" }),
        )
        .await;
    assert_eq!(code, 201, "{d}");
    let id = d["id"].as_str().unwrap().to_string();
    app.wait_for_verified(&w(0, 100, 0), T).await;
    let (code, a) = app.post(&format!("/api/v1/drills/{id}/abort"), json!({ "reason": "enough" })).await;
    assert_eq!(code, 200, "{a}");
    let d = app.wait_drill_finished(&id, T).await;
    assert_eq!(d["state"], "aborted", "{d}");
    assert!(d["report"]["outcome_reason"].as_str().unwrap().contains("enough"), "{d}");
    assert!(kinds(&d).contains(&"abort".to_string()), "{d}");
    app.wait_for_verified(&w(80, 20, 0), T).await;
    app.shutdown().await;
}
