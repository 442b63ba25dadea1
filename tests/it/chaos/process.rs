//! Chaos rows: the orchestrator process SIGKILLed mid-failover and mid-drill, restarted from its
//! store.

use super::*;

/// A real orchestrator process on the test's configuration, to be killed with SIGKILL.
struct Child {
    proc: tokio::process::Child,
    api: SocketAddr,
}

async fn start_child(app: &TestApp, path: &std::path::Path) -> Child {
    let port = fo_lab::process::free_port([127, 0, 0, 1].into());
    let api: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let text = app.config_text.replace("listen = \"127.0.0.1:0\"", &format!("listen = \"{api}\""));
    std::fs::write(path, text).unwrap();
    let proc = tokio::process::Command::new(env!("CARGO_BIN_EXE_failover-orchestrator"))
        .args(["serve", "--config"])
        .arg(path)
        .env(PDNS_KEY_ENV, &app.pdns_key)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(path.with_extension("log")).unwrap())
        .kill_on_drop(true)
        .spawn()
        .expect("start the orchestrator binary");
    Child { proc, api }
}

async fn child_status(http: &reqwest::Client, api: SocketAddr, token: &str) -> Option<serde_json::Value> {
    http.get(format!("http://{api}/api/v1/status")).bearer_auth(token).send().await.ok()?.json().await.ok()
}

async fn wait_child(
    http: &reqwest::Client,
    api: SocketAddr,
    token: &str,
    path: &std::path::Path,
    what: &str,
    pred: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(s) = child_status(http, api, token).await
            && pred(&s)
        {
            return s;
        }
        if Instant::now() > deadline {
            let log = std::fs::read_to_string(path.with_extension("log")).unwrap_or_default();
            let last = child_status(http, api, token).await;
            panic!("timed out waiting for {what}; last status {last:?}; orchestrator log:\n{log}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn plan_is(s: &serde_json::Value, p: i64, st: i64, verified: bool) -> bool {
    let plan = &s["plan"];
    plan["weights"]["primary"] == p && plan["weights"]["standby"] == st && (!verified || !plan["verified_at"].is_null())
}

/// The stored plan `id`: its epoch, weights and whether it was verified.
async fn stored_plan(store: &Store, id: &str) -> (i64, serde_json::Value, bool) {
    let id = uuid::Uuid::parse_str(id).expect("a plan id");
    sqlx::query_as("SELECT epoch, weights, verified_at IS NOT NULL FROM plans WHERE id = $1")
        .bind(id)
        .fetch_optional(store.pool())
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("plan {id} is not in the store"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_orchestrator_killed_mid_failover_resumes_after_restart() {
    // The harness's in-process orchestrator only prepares the store and the zone; real
    // processes take over, so the kill is a real SIGKILL. PowerDNS's API sits behind an HTTP
    // fault injector: while it answers 500 the failover is decided and recorded but cannot be
    // verified, so the kill lands between decision and verification, not by luck of timing.
    let mut app = ready(Spec { provider_proxy: true, ..Spec::default() }).await;
    app.cancel.cancel();
    let task = std::mem::replace(&mut app.task, tokio::spawn(async { Ok(()) }));
    task.await.unwrap().unwrap();
    // The in-process app closed its pool at shutdown: read the store on a new one.
    let store = Store::connect_lazy(&secrecy::SecretString::from(app.direct_store_dsn.clone())).unwrap();
    let dir = std::env::temp_dir().join(format!("fo-chaos-kill-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("regions.toml");
    let http = reqwest::Client::new();
    let (pdns_api, _) = app.provider_faults.as_ref().expect("provider fault injection");

    let mut a = start_child(&app, &path).await;
    let sa = wait_child(&http, a.api, &app.tokens.viewer, &path, "first orchestrator steady and flushed", |s| {
        plan_is(s, 80, 20, true) && s["store"]["pending"] == 0
    })
    .await;
    let epoch_a = sa["leadership"]["epoch"].as_i64().unwrap();
    let m = mark(&store).await;
    pdns_api.set_failing(true);
    app.apps[0].kill().await;
    let decided = wait_child(
        &http,
        a.api,
        &app.tokens.viewer,
        &path,
        "failover decided and recorded, PowerDNS refusing it",
        |s| {
            let plan = &s["plan"];
            let refused = plan["providers"]
                .as_array()
                .is_some_and(|ps| ps.iter().any(|p| p["plan_id"] == plan["id"] && p["result"]["state"] == "failed"));
            plan_is(s, 0, 100, false) && plan["verified_at"].is_null() && plan["recorded"] == true && refused
        },
    )
    .await;
    let plan_a = decided["plan"]["id"].as_str().expect("plan id").to_string();
    a.proc.start_kill().unwrap();
    a.proc.wait().await.unwrap();
    let refused_before_kill = pdns_api.failed();

    // Right after the kill, before any restart: the store holds the decided failover of the
    // killed epoch, and nothing decided since the fault was verified.
    let (epoch, weights, verified) = stored_plan(&store, &plan_a).await;
    assert_eq!((epoch, weights["primary"].as_i64(), verified), (epoch_a, Some(0), false), "plan {plan_a}: {weights}");
    let verified_since: i64 =
        sqlx::query_scalar("SELECT count(*) FROM plans WHERE decided_at >= $1 AND verified_at IS NOT NULL")
            .bind(m.t0)
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(verified_since, 0, "a plan was verified before the kill");

    pdns_api.set_failing(false);
    let mut b = start_child(&app, &path).await;
    let sb = wait_child(&http, b.api, &app.tokens.viewer, &path, "second orchestrator verified the failover", |s| {
        plan_is(s, 0, 100, true)
    })
    .await;
    let epoch_b = sb["leadership"]["epoch"].as_i64().unwrap();
    assert!(epoch_b > epoch_a, "a newer epoch after the restart: {epoch_a} → {epoch_b}");
    let plan_b = sb["plan"]["id"].as_str().expect("plan id").to_string();
    assert_ne!(plan_b, plan_a, "the new epoch decides its own plan");
    let answers = app.dig_many(10).await;
    assert!(answers.iter().all(|x| *x == app.addresses[1]), "{answers:?}");
    wait_child(&http, b.api, &app.tokens.viewer, &path, "store flushed", |s| s["store"]["pending"] == 0).await;
    // On record: the new epoch's failover verified; the killed epoch's plan never was.
    let (epoch, weights, verified) = stored_plan(&store, &plan_b).await;
    assert_eq!((epoch, weights["primary"].as_i64(), verified), (epoch_b, Some(0), true), "plan {plan_b}: {weights}");
    assert!(!stored_plan(&store, &plan_a).await.2, "the killed epoch's plan {plan_a} is not verified");
    let s = seen(&store, &m, &["primary"]).await;
    b.proc.start_kill().unwrap();
    b.proc.wait().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    report_without_false_flips(&Row::from_seen(
        "12 orchestrator killed mid-failover",
        "orchestrator as a process; PowerDNS API answering 500 so the failover cannot be verified",
        "SIGKILL after the failover was decided and recorded, before any verification; restart".into(),
        "restart resumes: failover verified under a newer epoch, recorded; the killed plan stays unverified",
        format!(
            "epoch {epoch_a} → {epoch_b}; plan {} decided, unverified at the kill ({refused_before_kill} API calls refused); plan {} verified",
            &plan_a[..8],
            &plan_b[..8]
        ),
        &s,
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_orchestrator_killed_mid_drill_rolls_back_after_restart() {
    // As above, real processes: a live drill holds traffic on the standby when the
    // orchestrator is SIGKILLed; the next one rolls it back and records it as interrupted.
    let mut app = ready(Spec::default()).await;
    app.cancel.cancel();
    let task = std::mem::replace(&mut app.task, tokio::spawn(async { Ok(()) }));
    task.await.unwrap().unwrap();
    let store = Store::connect_lazy(&secrecy::SecretString::from(app.direct_store_dsn.clone())).unwrap();
    let dir = std::env::temp_dir().join(format!("fo-chaos-drill-kill-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("regions.toml");
    let http = reqwest::Client::new();

    let mut a = start_child(&app, &path).await;
    wait_child(&http, a.api, &app.tokens.viewer, &path, "first orchestrator steady and flushed", |s| {
        plan_is(s, 80, 20, true) && s["store"]["pending"] == 0
    })
    .await;
    let m = mark(&store).await;
    let resp = http
        .post(format!("http://{}/api/v1/drills", a.api))
        .bearer_auth(&app.tokens.operator)
        .json(&serde_json::json!({ "evacuate": "primary", "steps": [100], "hold_seconds": 300, "dry_run": false, "reason": "chaos: kill mid-drill" }))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "drill start: {}", resp.status());
    let drill: serde_json::Value = resp.json().await.unwrap();
    let id = drill["id"].as_str().expect("drill id").to_string();
    wait_child(&http, a.api, &app.tokens.viewer, &path, "drill holding on the standby", |s| plan_is(s, 0, 100, true))
        .await;
    a.proc.start_kill().unwrap();
    a.proc.wait().await.unwrap();

    let mut b = start_child(&app, &path).await;
    wait_child(&http, b.api, &app.tokens.viewer, &path, "rolled back after the restart", |s| plan_is(s, 80, 20, true))
        .await;
    let answers = app.dig_many(20).await;
    assert!(answers.contains(&app.addresses[0]), "DNS answers the primary again: {answers:?}");
    let d = loop {
        let d: serde_json::Value = http
            .get(format!("http://{}/api/v1/drills/{id}", b.api))
            .bearer_auth(&app.tokens.viewer)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if d["state"] == "interrupted" || Utc::now() - m.t0 > chrono::Duration::seconds(60) {
            break d;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(d["state"], "interrupted", "{d}");
    wait_child(&http, b.api, &app.tokens.viewer, &path, "store flushed", |s| s["store"]["pending"] == 0).await;
    // The drill evacuates the primary: it is the one region traffic may leave.
    let s = seen(&store, &m, &["primary"]).await;
    b.proc.start_kill().unwrap();
    b.proc.wait().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    report_without_false_flips(&Row::from_seen(
        "14 orchestrator killed mid-drill",
        "orchestrator as a process, live drill evacuating the primary, holding",
        "SIGKILL while the drill holds 0/100/0, restart".into(),
        "restart rolls the drill back to 80/20 and records it interrupted",
        format!("80/20/0 verified again; drill {} {}", &id[..8], d["state"].as_str().unwrap_or("?")),
        &s,
    ));
}
