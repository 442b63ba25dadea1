//! Operator API: authentication and roles, idempotency, audit, bad input, OpenAPI,
//! manual failover / switchover / failback / maintenance, scheduled drills.

use std::time::Duration;

use serde_json::json;

use crate::common::{Spec, spawn_app, w};

const T: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_roles_idempotency_audit_and_bad_input() {
    let mut app = spawn_app(Spec { powerdns: false, ..Spec::default() }).await;
    app.wait_for_verified(&w(80, 20, 0), T).await;
    let t = app.tokens.clone();

    // 401 without (or with a bad) token, 403 with too low a role; public routes stay public.
    assert_eq!(app.get_as("/api/v1/status", None).await.0, 401);
    assert_eq!(app.get_as("/api/v1/status", Some("nope")).await.0, 401);
    assert_eq!(app.get_as("/api/v1/status", Some(&t.viewer)).await.0, 200);
    assert_eq!(app.get_as("/healthz", None).await.0, 200);
    let (code, doc) = app.get_as("/api/v1/openapi.json", None).await;
    assert_eq!(code, 200);
    assert!(doc["paths"]["/api/v1/drills/{id}/abort"]["post"].is_object(), "{doc}");
    let drill = json!({ "evacuate": "primary", "steps": [50, 100], "dry_run": true, "reason": "idem" });
    let (code, e) = app.post_as("/api/v1/drills", drill.clone(), None, None).await;
    assert_eq!(code, 401, "{e}");
    let (code, e) = app.post_as("/api/v1/drills", drill.clone(), Some(&t.viewer), None).await;
    assert_eq!(code, 403, "{e}");
    assert!(e["error"].as_str().unwrap().contains("viewer"), "{e}");
    assert_eq!(app.get_as("/api/v1/audit", Some(&t.viewer)).await.0, 403);

    // Idempotency-Key: the retry gets the first drill, a reuse with another body is refused.
    let (c1, d1) = app.post_as("/api/v1/drills", drill.clone(), Some(&t.operator), Some("key-1")).await;
    let (c2, d2) = app.post_as("/api/v1/drills", drill.clone(), Some(&t.operator), Some("key-1")).await;
    assert_eq!((c1, c2), (201, 201), "{d1} {d2}");
    assert_eq!(d1["id"], d2["id"]);
    let (_, list) = app.get("/api/v1/drills").await;
    assert_eq!(list["drills"].as_array().unwrap().len(), 1, "one drill, not two: {list}");
    let other = json!({ "evacuate": "primary", "dry_run": true, "reason": "other" });
    assert_eq!(app.post_as("/api/v1/drills", other, Some(&t.operator), Some("key-1")).await.0, 422);

    // Bad input: a 4xx naming the field.
    for (body, field) in [
        (json!({ "evacuate": "primary", "steps": [50, 150], "reason": "x" }), "steps[1]"),
        (json!({ "evacuate": "primary", "hold_seconds": -5, "reason": "x" }), "hold_seconds"),
        (json!({ "evacuate": "mars", "reason": "x" }), "evacuate"),
        (json!({ "evacuate": "primary", "steps": "all", "reason": "x" }), "steps"),
        (json!({ "evacuate": "primary" }), "reason"),
    ] {
        let (code, e) = app.post("/api/v1/drills", body.clone()).await;
        assert_eq!(code, 400, "{body}: {e}");
        assert_eq!(e["field"], field, "{body}: {e}");
    }
    let r = app
        .http
        .post(format!("http://{}/api/v1/failover", app.addr))
        .bearer_auth(&t.operator)
        .header("content-type", "application/json")
        .body("{\"target\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let e: serde_json::Value = r.json().await.unwrap();
    assert_eq!(e["field"], "body", "{e}");
    let (code, e) = app.post("/api/v1/regions/mars/maintenance", json!({ "drain": true, "reason": "x" })).await;
    assert_eq!(code, 404, "{e}");
    assert!(e["error"].as_str().unwrap().contains("mars"));
    let (code, _) = app.post("/api/v1/drills/not-a-uuid/abort", json!({})).await;
    assert_eq!(code, 400);

    // A route refuses what its OpenAPI schema refuses, naming the parameter: an unknown one
    // (the drills list takes no `before`), a malformed time, an id that is not a UUID.
    let op = Some(t.operator.as_str());
    for (path, field) in [
        ("/api/v1/audit?limit=5&colour=red", "colour"),
        ("/api/v1/audit?before=yesterday", "before"),
        ("/api/v1/drills?before=2024-05-01T12:00:00Z", "before"),
        ("/api/v1/drills/not-a-uuid", "id"),
        ("/api/v1/incidents/42", "id"),
        ("/api/v1/events?limit=2.5", "limit"),
    ] {
        let (code, e) = app.get_as(path, op).await;
        assert_eq!((code, e["field"].as_str()), (400, Some(field)), "{path}: {e}");
    }
    // …and accepts what it allows: an integer written as JSON Schema counts one.
    let (code, e) = app.get_as("/api/v1/audit?limit=2.0", op).await;
    assert_eq!(code, 200, "{e}");

    // The audit log has who, what, outcome and request id of every mutation, refusals included.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (code, audit) = app.get_as("/api/v1/audit?limit=100", Some(&t.operator)).await;
    assert_eq!(code, 200, "{audit}");
    let entries = audit["entries"].as_array().unwrap();
    let started: Vec<_> = entries
        .iter()
        .filter(|e| e["action"] == "drill.start" && e["outcome"].as_str().unwrap().starts_with("201"))
        .collect();
    assert_eq!(started.len(), 2, "first call and its replay: {entries:?}");
    assert!(started.iter().all(|e| e["actor"] == "lab-operator" && e["request_id"].is_string()));
    assert!(started.iter().any(|e| e["outcome"].as_str().unwrap().contains("replayed")));
    assert!(
        entries.iter().any(|e| e["actor"] == "lab-viewer" && e["outcome"].as_str().unwrap().starts_with("403")),
        "{entries:?}"
    );
    assert!(entries.iter().any(|e| e["actor"] == "anonymous" && e["outcome"].as_str().unwrap().starts_with("401")));
    // Tokens never appear in it.
    let text = audit.to_string();
    assert!(!text.contains(&t.operator) && !text.contains(&t.viewer));
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_auth_section_reads_are_open_and_mutations_refused() {
    let mut app = spawn_app(Spec { powerdns: false, auth: false, ..Spec::default() }).await;
    app.wait_for_verified(&w(80, 20, 0), T).await;
    assert_eq!(app.get_as("/api/v1/status", None).await.0, 200);
    let (code, e) = app.post_as("/api/v1/failback", json!({ "reason": "x" }), None, None).await;
    assert_eq!(code, 403);
    assert!(e["error"].as_str().unwrap().contains("[auth]"), "{e}");
    // The dashboard's questions: who am I (anonymous, reads public), and a stream ticket (not needed, refused).
    let (code, me) = app.get_as("/api/v1/whoami", Some("any-token")).await;
    assert_eq!(code, 200);
    assert_eq!(
        (me["name"].as_str(), me["authenticated"].as_bool(), me["public_reads"].as_bool()),
        (Some("anonymous"), Some(false), Some(true))
    );
    assert_eq!(app.post_as("/api/v1/stream/tickets", json!({}), None, None).await.0, 403);
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_failover_holds_until_failback_and_maintenance_drains() {
    let mut app = spawn_app(Spec { powerdns: false, ..Spec::default() }).await;
    app.wait_for_verified(&w(80, 20, 0), T).await;

    let (code, out) = app.post("/api/v1/failover", json!({ "target": "standby", "reason": "planned work" })).await;
    assert_eq!(code, 200, "{out}");
    assert_eq!(out["plan"]["weights"]["standby"], 100);
    assert!(out["operation_id"].is_string() && out["plan_id"] == out["plan"]["id"]);
    app.wait_for_verified(&w(0, 100, 0), T).await;
    // Automatic failback (auto mode, 1 s dwell and hold) does not fight the operator.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(app.weights(), w(0, 100, 0));
    assert!(app.status.borrow().operator_hold.is_some());
    // Forcing needs admin.
    let (code, _) = app.post("/api/v1/failover", json!({ "target": "dr", "reason": "x", "force": true })).await;
    assert_eq!(code, 403);

    let (code, out) = app.post("/api/v1/failback", json!({ "reason": "work done" })).await;
    assert_eq!(code, 200, "{out}");
    app.wait_for_verified(&w(80, 20, 0), T).await;
    let state: String = sqlx::query_scalar("SELECT state FROM operations WHERE kind = 'failover'")
        .fetch_one(app.store.pool())
        .await
        .unwrap();
    assert_eq!(state, "verified");

    // Switchover: the standby has no database here, so nothing to wait for.
    let (code, out) = app.post("/api/v1/switchover", json!({ "target": "standby", "reason": "planned" })).await;
    assert_eq!(code, 200, "{out}");
    app.wait_for_verified(&w(0, 100, 0), T).await;
    app.post("/api/v1/failback", json!({ "reason": "back" })).await;
    app.wait_for_verified(&w(80, 20, 0), T).await;

    // Maintenance (the dashboard's request shape).
    let (code, out) =
        app.post("/api/v1/regions/primary/maintenance", json!({ "drain": true, "reason": "kernel" })).await;
    assert_eq!(code, 200, "{out}");
    app.wait_for_verified(&w(0, 100, 0), T).await;
    assert_eq!(app.status.borrow().regions[0].maintenance.as_deref(), Some("kernel"));
    let (code, _) = app.post("/api/v1/regions/primary/maintenance", json!({ "drain": false, "reason": "done" })).await;
    assert_eq!(code, 200);
    app.wait_for("undrained", T, |s| s.regions[0].maintenance.is_none()).await;
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_drills_run_on_the_leader_and_blackouts_skip_them() {
    let extra = r#"
[[schedule.drills]]
name = "often"
cron = "*/2 * * * * *"
timezone = "Europe/Paris"
evacuate = "primary"
steps = [50, 100]
hold = "1s"
dry_run = true

[[schedule.drills]]
name = "never"
cron = "*/2 * * * * *"
evacuate = "primary"
dry_run = true
blackout = ["00:00-23:59", "23:59-00:00"]
"#;
    let mut app = spawn_app(Spec { powerdns: false, extra: extra.into(), ..Spec::default() }).await;
    app.wait_for_verified(&w(80, 20, 0), T).await;
    let deadline = std::time::Instant::now() + T;
    loop {
        let (_, list) = app.get("/api/v1/drills").await;
        let drills = list["drills"].as_array().unwrap().clone();
        if drills.iter().any(|d| d["actor"] == "schedule:often") {
            assert!(drills.iter().all(|d| d["actor"] != "schedule:never"));
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no scheduled drill ran: {list}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (_, audit) = app.get_as("/api/v1/audit?limit=200", Some(&app.tokens.operator)).await;
    let entries = audit["entries"].as_array().unwrap();
    assert!(entries.iter().any(|e| e["actor"] == "schedule:often" && e["action"] == "schedule.run"), "{entries:?}");
    assert!(
        entries.iter().any(|e| e["actor"] == "schedule:never"
            && e["action"] == "schedule.skipped"
            && e["outcome"].as_str().unwrap().contains("blackout")),
        "{entries:?}"
    );
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_drives_the_api_with_tables_and_json() {
    let mut app = spawn_app(Spec { powerdns: false, ..Spec::default() }).await;
    app.wait_for_verified(&w(80, 20, 0), T).await;
    let url = format!("http://{}", app.addr);
    let run = |args: Vec<&str>, token: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_failover-orchestrator"))
            .args(args)
            .env("FO_URL", &url)
            .env("FO_TOKEN", token)
            .output()
            .unwrap()
    };
    let out = run(vec!["status"], &app.tokens.viewer);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text} {}", String::from_utf8_lossy(&out.stderr));
    assert!(text.starts_with("REGION") && text.contains("primary") && text.contains("80/80"), "{text}");

    let out = run(
        vec![
            "--json",
            "drill",
            "start",
            "--evacuate",
            "primary",
            "--steps",
            "50,100",
            "--hold",
            "5s",
            "--dry-run",
            "--reason",
            "cli",
        ],
        &app.tokens.operator,
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let d: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(d["state"], "dry_run");
    assert_eq!(d["spec"]["hold_ms"], 5000);
    let id = d["id"].as_str().unwrap();
    app.wait_drill_finished(id, T).await;
    let out = run(vec!["drill", "status", id], &app.tokens.viewer);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("dry_run") && text.contains("step_planned"), "{text}");
    let out = run(vec!["drill", "list"], &app.tokens.viewer);
    assert!(String::from_utf8_lossy(&out.stdout).contains(id));

    // A refusal exits non-zero with the API's message.
    let out = run(vec!["failover", "--to", "standby", "--reason", "x"], &app.tokens.viewer);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("403"), "{}", String::from_utf8_lossy(&out.stderr));
    app.shutdown().await;
}
