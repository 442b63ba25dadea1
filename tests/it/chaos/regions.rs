//! Chaos rows: whole regions or their layers failing: the app, PostgreSQL, the standby, DR, a lagging standby.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_primary_app_down_fails_over_with_one_recorded_timeline() {
    let mut app = ready(Spec { fault_proxies: true, ..Spec::default() }).await;
    let m = mark(&app.store).await;
    app.apps[0].kill().await;
    app.wait_for_verified(&w(0, 100, 0), T).await;
    // DNS follows.
    let answers = app.dig_many(10).await;
    assert!(answers.iter().all(|a| *a == app.addresses[1]), "{answers:?}");
    app.wait_for("store flushed", T, |s| s.store.pending == 0).await;
    let s = seen(&app.store, &m, &["primary"]).await;
    let incident = s.incident.clone().expect("the failover is recorded as an incident");
    let steps: Vec<Step> = incident.timeline.iter().map(|m| m.step).collect();
    for step in [
        Step::FirstFailedProbe,
        Step::CheckTransition,
        Step::RegionTransition,
        Step::QuorumReached,
        Step::PlanDecided,
        Step::ProviderWrite,
        Step::ReadBackVerified,
    ] {
        assert!(steps.contains(&step), "{step:?} missing from {steps:?}");
    }
    // The API serves the same timeline, completed by the DNS propagation seen on PowerDNS.
    let deadline = std::time::Instant::now() + T;
    let body = loop {
        let (code, body) = app.get(&format!("/api/v1/incidents/{}", incident.id)).await;
        assert_eq!(code, 200, "{body}");
        if body["timeline"].as_array().is_some_and(|t| t.iter().any(|m| m["step"] == "dns_propagation_seen")) {
            break body;
        }
        assert!(std::time::Instant::now() < deadline, "no DNS propagation step: {body}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert!(body["figures"]["dns_ms"].as_i64().is_some(), "{body}");
    assert_eq!(body["region"], "primary");
    assert!(body["figures"]["flip_ms"].as_i64().is_some(), "{body}");
    let (code, list) = app.get("/api/v1/incidents").await;
    assert_eq!(code, 200);
    assert!(list["incidents"].as_array().unwrap().iter().any(|i| i["id"] == incident.id.to_string()));
    report_without_false_flips(&Row::from_seen(
        "01 primary app down",
        "3 regions, 80/20/0, interval 500 ms, fast 100 ms, fall 3",
        "primary app killed (connection refused)".into(),
        "failover 0/100/0, DNS follows, one incident",
        format!("0/100/0 verified; incident {} steps", incident.timeline.len()),
        &s,
    ));
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_primary_postgres_down_fails_over() {
    let (primary, standby, dr) = replicated("ch-pg").await;
    let dsns = [primary.dsn(), standby.dsn(), dr.dsn()];
    let mut app =
        ready(Spec { region_dsns: Some(dsns), fault_proxies: true, powerdns: false, ..Spec::default() }).await;
    let m = mark(&app.store).await;
    app.pg_proxies[0].set(Faults { refuse: true, reset: true, ..Faults::default() });
    app.wait_for_verified(&w(0, 100, 0), T).await;
    let st = app.status.borrow().clone();
    assert_eq!(st.regions[0].layers[1].health, Some(Health::Down), "middleware layer down");
    app.wait_for("store flushed", T, |s| s.store.pending == 0).await;
    let s = seen(&app.store, &m, &["primary"]).await;
    report_without_false_flips(&Row::from_seen(
        "02 primary PostgreSQL down",
        "real streaming replication, middleware check through a fault proxy",
        "primary database unreachable (refused + reset)".into(),
        "failover 0/100/0 on the middleware layer",
        "0/100/0 verified; app layer still up".into(),
        &s,
    ));
    app.shutdown().await;
    for pg in [dr, standby, primary] {
        pg.stop().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_standby_down_gives_its_share_to_the_primary() {
    let mut app = ready(Spec { powerdns: false, ..Spec::default() }).await;
    let m = mark(&app.store).await;
    app.apps[1].kill().await;
    app.wait_for_verified(&w(100, 0, 0), T).await;
    app.wait_for("store flushed", T, |s| s.store.pending == 0).await;
    // The primary losing any weight would be a false flip: only the standby was faulted.
    let s = seen(&app.store, &m, &["standby"]).await;
    report_without_false_flips(&Row::from_seen(
        "07 standby down",
        "failover order primary, standby, dr",
        "standby app killed".into(),
        "100/0/0: primary keeps serving, takes the standby's share",
        format!("weights {}", app.weights()),
        &s,
    ));
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_dr_down_only_alarms() {
    let mut app = ready(Spec { powerdns: false, ..Spec::default() }).await;
    let m = mark(&app.store).await;
    app.apps[2].kill().await;
    app.wait_for("dr down alarm", T, |s| {
        s.alarms
            .iter()
            .any(|a| a.kind.as_str() == "region_down" && a.region.as_ref().is_some_and(|r| r.as_str() == "dr"))
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(app.weights(), w(80, 20, 0));
    app.wait_for("store flushed", T, |s| s.store.pending == 0).await;
    let s = seen(&app.store, &m, &["dr"]).await;
    assert_eq!(s.plans, 0, "no plan for a region at weight 0");
    assert!(s.alarms.iter().any(|a| a == "region_down:dr"), "{:?}", s.alarms);
    report_without_false_flips(&Row::from_seen(
        "08 DR down",
        "DR at weight 0",
        "DR app killed".into(),
        "no traffic change, alarm",
        format!("weights {}", app.weights()),
        &s,
    ));
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_lagging_standby_and_primary_down_hands_traffic_to_dr() {
    let (primary, standby, dr) = replicated("ch-lag").await;
    let spec = Spec {
        region_dsns: Some([primary.dsn(), standby.dsn(), dr.dsn()]),
        powerdns: false,
        pg_extra: [
            vec!["application_name = \"ch-lag-primary\"".into()],
            vec!["application_name = \"ch-lag-standby\"".into(), "max_lag = \"1s\"".into()],
            vec!["application_name = \"ch-lag-dr\"".into(), "max_lag = \"30s\"".into()],
        ],
        ..Spec::default()
    };
    let mut app = ready(spec).await;
    // The standby stops replaying while the primary keeps writing.
    standby.execute("SELECT pg_wal_replay_pause()").await.unwrap();
    primary
        .execute("CREATE TABLE IF NOT EXISTS chaos_filler (at timestamptz default clock_timestamp())")
        .await
        .unwrap();
    let writer = {
        let dsn = primary.dsn();
        tokio::spawn(async move {
            let pool = PgPool::connect(&dsn).await.unwrap();
            for _ in 0..600 {
                let _ = sqlx::query("INSERT INTO chaos_filler DEFAULT VALUES").execute(&pool).await;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    app.wait_for("standby over its lag limit", T, |s| {
        s.regions[1].lag.as_ref().and_then(|l| l.seconds).is_some_and(|x| x > 2.0)
    })
    .await;
    app.wait_for("store flushed before the fault", T, |s| s.store.pending == 0).await;
    let m = mark(&app.store).await;
    app.apps[0].kill().await;
    app.wait_for_verified(&w(0, 20, 80), T).await;
    app.wait_for("store flushed", T, |s| s.store.pending == 0).await;
    writer.abort();
    // The standby keeps its own 20 (only the primary was faulted) and takes none of the
    // primary's share: the decision said why, as a lag_blocks_failover alarm on the standby.
    let s = seen(&app.store, &m, &["primary"]).await;
    assert!(s.alarms.iter().any(|a| a == "lag_blocks_failover:standby"), "{:?}", s.alarms);
    let (message, plan_reasons): (String, String) = sqlx::query_as(
        "SELECT a.message, p.reasons::text FROM alarms a, plans p
          WHERE a.kind = 'lag_blocks_failover' AND a.region = 'standby' AND a.raised_at >= $1
            AND p.decided_at >= $1 AND (p.weights ->> 'dr')::int = 80
          ORDER BY a.raised_at, p.decided_at LIMIT 1",
    )
    .bind(m.t0)
    .fetch_one(app.store.pool())
    .await
    .expect("the lag alarm and the failover plan onto DR are on record");
    assert!(message.contains("standby cannot take primary's traffic"), "{message}");
    assert!(plan_reasons.contains("standby cannot take primary's traffic"), "{plan_reasons}");
    report_without_false_flips(&Row::from_seen(
        "09 standby lagging + primary down",
        "standby max_lag 1 s, DR max_lag 30 s",
        "standby replay paused (lag > 2 s), then primary app killed".into(),
        "DR takes the primary's share (0/20/80); the lagging standby takes none of it; lag_blocks_failover alarm",
        format!("weights {}; alarm: {message}", app.weights()),
        &s,
    ));
    app.shutdown().await;
    let _ = standby.execute("SELECT pg_wal_replay_resume()").await;
    for pg in [dr, standby, primary] {
        pg.stop().await.unwrap();
    }
}
