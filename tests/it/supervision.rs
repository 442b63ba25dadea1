//! Supervision, liveness and readiness, with panics, stalls and returns injected into named tasks
//! through `AppOptions::faults`: a probe runner or provider worker that panics is restarted alone
//! and counted; a critical task that ends fails `App::run` naming it; `/healthz` goes 503 when the
//! engine stalls; `/readyz` names the store when it is down.

use std::time::{Duration, Instant};

use failover_orchestrator::app::AppOptions;
use failover_orchestrator::region::{CheckId, RegionName};
use failover_orchestrator::supervise::{Fault, Faults, SuperviseError, Task};
use failover_orchestrator::traffic::applier::ApplyResult;

use crate::common::{Spec, TestApp, spawn_app_with, w};

/// An orchestrator with a fault hook, its initial plan verified.
async fn start(spec: Spec) -> (TestApp, Faults) {
    let faults = Faults::new();
    let mut app = spawn_app_with(spec, AppOptions { faults: Some(faults.clone()), ..AppOptions::default() }).await;
    app.wait_for_verified(&w(80, 20, 0), Duration::from_secs(30)).await;
    (app, faults)
}

/// Polls `path` (no token: both self-checks are public by default) until `pred` holds on its
/// status code and body; panics with the last answer after 30 s.
async fn poll(
    app: &TestApp,
    path: &str,
    what: &str,
    pred: impl Fn(u16, &serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (code, body) = app.get_as(path, None).await;
        if pred(code, &body) {
            return body;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}; last {path}: {code} {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The value of the `fo_task_restarts_total` sample of `task`, if there is one.
async fn restarts(app: &TestApp, task: &Task) -> Option<u64> {
    let text = app.http.get(format!("http://{}/metrics", app.addr)).send().await.unwrap().text().await.unwrap();
    let prefix = format!("fo_task_restarts_total{{task=\"{task}\"}} ");
    text.lines().find_map(|l| l.strip_prefix(&prefix)).map(|v| v.trim().parse().unwrap())
}

async fn wait_restarts(app: &TestApp, task: &Task, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while restarts(app, task).await != Some(n) {
        assert!(Instant::now() < deadline, "{task} not restarted {n} time(s): {:?}", restarts(app, task).await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_probe_runner_that_panics_is_restarted_counted_and_probes_go_on() {
    let (mut app, faults) = start(Spec { powerdns: false, ..Spec::default() }).await;
    let check = CheckId::new(RegionName::new("primary"), "app");
    let task = Task::Probe(check.clone());
    assert_eq!(restarts(&app, &task).await, None, "nothing restarted yet");

    faults.arm(task.clone(), Fault::Panic);
    wait_restarts(&app, &task, 1).await;
    // The counter moves just before the fresh runner starts: an observation after now is its own.
    let after = chrono::Utc::now();
    app.wait_for("primary/app probed again by its restarted runner", Duration::from_secs(30), |s| {
        s.regions[0].checks.iter().any(|c| c.name == "app" && c.last_at.is_some_and(|at| at > after))
    })
    .await;
    let st = app.status.borrow().clone();
    assert_eq!(st.plan.as_ref().unwrap().plan.weights, w(80, 20, 0), "a probe runner's panic moves no traffic");
    let other = Task::Probe(CheckId::new(RegionName::new("standby"), "app"));
    assert_eq!(restarts(&app, &other).await, None, "only the panicked runner restarted");
    let live = poll(&app, "/healthz", "live", |code, _| code == 200).await;
    assert_eq!(live["status"], "ok");
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_worker_that_panics_restarts_alone_and_every_provider_applies_the_next_plan() {
    let (mut app, faults) = start(Spec::default()).await;
    let names: Vec<String> = app.config.providers.iter().map(|p| p.name().to_string()).collect();
    assert_eq!(names.len(), 2, "PowerDNS and the file provider: {names:?}");
    let victim = names.iter().find(|n| n.as_str() != "file").unwrap().clone();
    let task = Task::Provider(victim.clone());

    faults.arm(task.clone(), Fault::Panic);
    wait_restarts(&app, &task, 1).await;
    assert_eq!(restarts(&app, &Task::Provider("file".into())).await, None, "the file provider never stopped");

    // A failover after the panic: both workers apply and verify it (with the applier of old, the
    // panic had ended every provider's worker and nothing would verify).
    app.apps[0].kill().await;
    app.wait_for_verified(&w(0, 100, 0), Duration::from_secs(30)).await;
    let st = app.status.borrow().clone();
    let reports = &st.plan.as_ref().unwrap().providers;
    for name in &names {
        let r = reports.iter().find(|r| &r.provider == name).unwrap_or_else(|| panic!("no report from {name}"));
        assert_eq!(r.result, ApplyResult::Verified, "{name}: {r:?}");
    }
    let answers = app.dig_many(5).await;
    assert!(
        !answers.is_empty() && answers.iter().all(|a| *a == app.addresses[1]),
        "PowerDNS serves the standby: {answers:?}"
    );
    let ready = poll(&app, "/readyz", "ready after the restart", |code, _| code == 200).await;
    let each = ready["providers"]["each"].as_array().unwrap();
    assert_eq!(each.len(), 2, "{ready}");
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_critical_task_that_panics_or_returns_ends_the_run_with_an_error_naming_it() {
    let cases = [
        (Task::Engine, Fault::Panic, "panicked: fault injected"),
        (Task::Http, Fault::Return, "ended while the orchestrator was running"),
        (Task::Applier, Fault::Panic, "panicked: fault injected"),
    ];
    for (task, fault, how) in cases {
        let (app, faults) = start(Spec { powerdns: false, ..Spec::default() }).await;
        faults.arm(task.clone(), fault);
        // A guard against a hang only: nothing cancels the run, so it ends by itself or never.
        // Generous: the shutdown that follows is bounded by its own timeouts (about 30 s at most).
        let ended = tokio::time::timeout(Duration::from_secs(90), app.task).await;
        let result = ended.unwrap_or_else(|_| panic!("App::run still running after {task} ended")).unwrap();
        let err = result.expect_err("App::run fails when a critical task ends");
        let sup = err.downcast_ref::<SuperviseError>().unwrap_or_else(|| panic!("not a supervision error: {err:#}"));
        assert_eq!(sup.task(), &task);
        let text = format!("{err:#}");
        assert!(text.contains(&format!("`{task}`")) && text.contains(how), "{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_and_readyz_go_503_when_the_engine_stalls() {
    let (app, faults) = start(Spec { powerdns: false, ..Spec::default() }).await;
    // Idle (nothing changes) for longer than the bound: the engine still beats every cycle.
    tokio::time::sleep(failover_orchestrator::selfcheck::ENGINE_STALL_AFTER + Duration::from_secs(1)).await;
    let (code, body) = app.get_as("/healthz", None).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["engine"]["ok"], true);

    faults.arm(Task::Engine, Fault::Stall);
    let body = poll(&app, "/healthz", "healthz 503", |code, _| code == 503).await;
    assert_eq!(body["status"], "failing");
    assert_eq!(body["engine"]["ok"], false);
    assert!(body["engine"]["why"].as_str().unwrap().contains("stuck"), "{body}");
    assert_eq!(body["tasks"]["ok"], true, "a stalled task has not ended");
    let (code, ready) = app.get_as("/readyz", None).await;
    assert_eq!(code, 503, "{ready}");
    assert_eq!(ready["failing"], serde_json::json!(["engine"]));
    // The stalled engine would hold the shutdown to its timeout: drop the run instead.
    app.task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_is_200_when_all_is_well_and_503_naming_the_store_while_it_is_down() {
    let (app, _faults) = start(Spec { powerdns: false, store_proxy: true, ..Spec::default() }).await;
    let ready = poll(&app, "/readyz", "ready", |code, _| code == 200).await;
    assert_eq!(ready["ready"], true);
    assert_eq!(ready["failing"], serde_json::json!([]));
    for part in ["engine", "store", "providers", "coordination"] {
        assert_eq!(ready[part]["ok"], true, "{part}: {ready}");
    }
    assert!(ready["coordination"]["why"].as_str().unwrap().contains("single orchestrator"), "{ready}");

    let proxy = app.store_proxy.as_ref().unwrap();
    proxy.set(fo_lab::faultproxy::Faults { refuse: true, reset: true, ..Default::default() });
    // No write is needed: the idle writer's ping notices the outage.
    let ready = poll(&app, "/readyz", "readyz 503 naming the store", |code, _| code == 503).await;
    assert_eq!(ready["failing"], serde_json::json!(["store"]), "{ready}");
    assert_eq!(ready["store"]["reachable"], false);
    assert!(ready["store"]["why"].as_str().unwrap().contains("unreachable"), "{ready}");
    let (code, live) = app.get_as("/healthz", None).await;
    assert_eq!(code, 200, "a store outage is not a reason to restart: {live}");

    proxy.clear();
    poll(&app, "/readyz", "ready again once the store is back", |code, b| code == 200 && b["store"]["pending"] == 0)
        .await;
    app.shutdown().await;
}
