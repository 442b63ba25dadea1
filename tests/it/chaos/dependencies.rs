//! Chaos rows: the orchestrator's own dependencies failing: its store and a provider's API.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_store_outage_keeps_deciding_and_loses_nothing() {
    let mut app = ready(Spec { store_proxy: true, powerdns: false, ..Spec::default() }).await;
    // A direct pool, not through the proxy, to read what was written.
    let direct = Store::connect_lazy(&secrecy::SecretString::from(app.direct_store_dsn.clone())).unwrap();
    let m = mark(&direct).await;
    let outage = secs(10, 30);
    let proxy = app.store_proxy.as_ref().unwrap();
    proxy.set(Faults { refuse: true, reset: true, ..Faults::default() });
    tokio::time::sleep(Duration::from_secs(1)).await;
    app.apps[0].kill().await;
    app.wait_for_verified(&w(0, 100, 0), T).await;
    let plan_id = app.status.borrow().plan.as_ref().unwrap().plan.id;
    app.wait_for("store unreachable", T, |s| !s.store.reachable && s.store.pending > 0).await;
    let pending = app.status.borrow().store.pending;
    tokio::time::sleep(outage.saturating_sub(Duration::from_secs(1))).await;
    app.store_proxy.as_ref().unwrap().clear();
    app.wait_for("buffer flushed", Duration::from_secs(60), |s| s.store.reachable && s.store.pending == 0).await;
    let pool = direct.pool();
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM plans WHERE id = $1 AND verified_at IS NOT NULL")
        .bind(plan_id.0)
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(n, 1, "the failover plan and its verification were written after the outage");
    let s = seen(&direct, &m, &["primary"]).await;
    assert!(s.alarms.iter().any(|a| a.starts_with("store_unreachable")), "{:?}", s.alarms);
    let incident = s.incident.as_ref().expect("the incident was written after the outage");
    assert!(incident.verified_at.is_some());
    let downs: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM health_transitions WHERE region = 'primary' AND to_health = 'down' AND at >= $1",
    )
    .bind(m.t0)
    .fetch_one(pool)
    .await
    .unwrap();
    assert!(downs >= 2, "check and region transitions written, got {downs}");
    report_without_false_flips(&Row::from_seen(
        "10 store down",
        "store behind a fault proxy",
        format!("store refused + reset for {} s; primary killed during it", outage.as_secs()),
        "failover from memory, every record written after",
        format!("0/100/0; {pending} writes buffered, all written"),
        &s,
    ));
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_provider_api_errors_and_timeouts_retry_alarm_and_apply() {
    let mut app = ready(Spec { provider_proxy: true, ..Spec::default() }).await;
    let m = mark(&app.store).await;
    {
        let (http, _) = app.provider_faults.as_ref().unwrap();
        http.set_failing(true);
    }
    app.apps[0].kill().await;
    app.wait_for("provider alarm", T, |s| s.alarms.iter().any(|a| a.kind.as_str() == "provider_failing")).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    {
        let (http, tcp) = app.provider_faults.as_ref().unwrap();
        http.set_failing(false);
        tcp.set(Faults { blackhole: true, ..Faults::default() });
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let failed = {
        let (http, tcp) = app.provider_faults.as_ref().unwrap();
        tcp.clear();
        http.failed()
    };
    app.wait_for_verified(&w(0, 100, 0), Duration::from_secs(60)).await;
    app.wait_for("alarm cleared", T, |s| !s.alarms.iter().any(|a| a.kind.as_str() == "provider_failing")).await;
    let answers = app.dig_many(10).await;
    assert!(answers.iter().all(|a| *a == app.addresses[1]), "{answers:?}");
    app.wait_for("store flushed", T, |s| s.store.pending == 0).await;
    let s = seen(&app.store, &m, &["primary"]).await;
    assert!(failed > 0, "the API really failed");
    assert!(s.alarms.iter().any(|a| a.starts_with("provider_failing")), "{:?}", s.alarms);
    report_without_false_flips(&Row::from_seen(
        "11 provider API 500s and timeouts",
        "PowerDNS API behind an HTTP 500 injector and a fault proxy",
        format!("primary killed; API answers 500 ({failed} times), then blackholed 3 s"),
        "retries, alarm, eventual apply",
        "0/100/0 verified, DNS follows, alarm cleared".into(),
        &s,
    ));
    app.shutdown().await;
}
