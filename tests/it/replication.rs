//! The middleware layer on real streaming replication: primary → standby (sync) → DR (async).

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use failover_orchestrator::health::Health;
use fo_lab::postgres::{PgCluster, PgOptions};

use crate::common::{Spec, spawn_app, w};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn primary_database_down_fails_over_to_the_standby() {
    let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let mut primary = PgCluster::start_primary(
        "it-primary",
        lo,
        &PgOptions { synchronous_standby_names: Some("\"it-standby\"".into()), ..PgOptions::default() },
    )
    .await
    .unwrap();
    let standby = PgCluster::start_standby(&primary, "it-standby", lo, &PgOptions::default()).await.unwrap();
    let dr = PgCluster::start_standby(&primary, "it-dr", lo, &PgOptions::default()).await.unwrap();
    let dsns = [primary.dsn(), standby.dsn(), dr.dsn()];
    let mut app = spawn_app(Spec { region_dsns: Some(dsns), powerdns: false, ..Spec::default() }).await;
    app.wait_for_verified(&w(80, 20, 0), Duration::from_secs(30)).await;
    {
        let st = app.status.borrow();
        let db = st.regions[1].checks.iter().find(|c| c.name == "db").expect("middleware check");
        assert_eq!(db.health, Health::Up, "standby database up and in recovery");
        assert_eq!(st.regions[1].layers[1].health, Some(Health::Up));
    }

    primary.kill();
    app.wait_for_verified(&w(0, 100, 0), Duration::from_secs(30)).await;
    let st = app.status.borrow().clone();
    assert_eq!(st.regions[0].layers[1].health, Some(Health::Down), "middleware layer down");
    assert_eq!(st.regions[0].layers[2].health, Some(Health::Up), "the app itself still answers");
    assert_eq!(st.regions[0].health, Health::Down);
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_promotes_the_standby_fences_the_old_primary_and_repoints_dr() {
    let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let primary = PgCluster::start_primary("pr-primary", lo, &PgOptions::default()).await.unwrap();
    let standby = PgCluster::start_standby(&primary, "pr-standby", lo, &PgOptions::default()).await.unwrap();
    let dr = PgCluster::start_standby(&primary, "pr-dr", lo, &PgOptions::default()).await.unwrap();
    let spec = Spec {
        region_dsns: Some([primary.dsn(), standby.dsn(), dr.dsn()]),
        powerdns: false,
        pg_extra: [
            vec!["application_name = \"pr-primary\"".into()],
            vec!["application_name = \"pr-standby\"".into(), "max_lag = \"10s\"".into(), "promote = true".into()],
            vec!["application_name = \"pr-dr\"".into()],
        ],
        ..Spec::default()
    };
    let mut app = spawn_app(spec).await;
    app.wait_for_verified(&w(80, 20, 0), Duration::from_secs(30)).await;
    app.wait_for("lag known", Duration::from_secs(30), |s| {
        s.regions[1].lag.as_ref().is_some_and(|l| l.bytes == Some(0))
    })
    .await;

    // The primary's app dies; its database still answers (so it must be fenced).
    app.apps[0].kill().await;
    app.wait_for_verified(&w(0, 100, 0), Duration::from_secs(30)).await;
    app.wait_for("promotion done", Duration::from_secs(60), |s| s.promotion.iter().any(|p| p.step == "track" && p.ok))
        .await;
    let st = app.status.borrow().clone();
    assert_eq!(st.writer.as_str(), "standby");
    let steps: Vec<(&str, bool)> = st.promotion.iter().map(|p| (p.step.as_str(), p.ok)).collect();
    assert_eq!(
        steps,
        [("gate", true), ("fence", true), ("promote", true), ("repoint", true), ("track", true)],
        "{:?}",
        st.promotion
    );

    // The standby is now writable.
    let mut s = standby.connect().await.unwrap();
    let in_recovery: bool = sqlx::query_scalar("SELECT pg_is_in_recovery()").fetch_one(&mut s).await.unwrap();
    assert!(!in_recovery);
    sqlx::query("CREATE TABLE after_promotion (id int)").execute(&mut s).await.unwrap();
    sqlx::query("INSERT INTO after_promotion VALUES (1)").execute(&mut s).await.unwrap();

    // The fenced old primary refuses writes.
    let mut p = primary.connect().await.unwrap();
    let err = sqlx::query("CREATE TABLE split_brain (id int)").execute(&mut p).await.unwrap_err();
    assert!(err.to_string().contains("read-only"), "{err}");

    // DR follows the new primary: the row written there arrives.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut d = dr.connect().await.unwrap();
    loop {
        let n: Result<i64, _> = sqlx::query_scalar("SELECT count(*) FROM after_promotion").fetch_one(&mut d).await;
        if n.is_ok_and(|n| n == 1) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "DR never followed the new primary");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Every step is in the audit log.
    app.wait_for("store flushed", Duration::from_secs(10), |s| s.store.pending == 0).await;
    let actions: Vec<String> =
        sqlx::query_scalar("SELECT action FROM audit_log WHERE action LIKE 'promotion.%' ORDER BY at")
            .fetch_all(app.store.pool())
            .await
            .unwrap();
    assert_eq!(actions.first().map(String::as_str), Some("promotion.requested"));
    assert!(actions.contains(&"promotion.promote".to_string()), "{actions:?}");
    app.shutdown().await;
}
