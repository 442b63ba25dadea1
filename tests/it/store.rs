//! A store outage never stalls the engine: it keeps deciding and applying, buffers
//! its records, and writes every one of them when the store is back.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use fo_lab::postgres::{PgCluster, PgOptions};

use crate::common::{Spec, spawn_app, w};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_outage_buffers_records_and_writes_them_after() {
    let mut pg =
        PgCluster::start_primary("it-outage", IpAddr::V4(Ipv4Addr::LOCALHOST), &PgOptions::default()).await.unwrap();
    pg.create_database("fo").await.unwrap();
    let mut app = spawn_app(Spec { store_dsn: Some(pg.dsn_db("fo")), powerdns: false, ..Spec::default() }).await;
    app.wait_for_verified(&w(80, 20, 0), Duration::from_secs(30)).await;

    pg.kill();
    app.apps[0].kill().await;
    // The failover still happens, from memory.
    app.wait_for_verified(&w(0, 100, 0), Duration::from_secs(30)).await;
    app.wait_for("store reported unreachable", Duration::from_secs(30), |s| !s.store.reachable && s.store.pending > 0)
        .await;
    let st = app.status.borrow().clone();
    assert!(!st.plan.as_ref().unwrap().recorded, "not claimed recorded while the store is down");
    assert!(st.alarms.iter().any(|a| a.kind.as_str() == "store_unreachable"));
    let plan_id = st.plan.as_ref().unwrap().plan.id;

    pg.restart().await.unwrap();
    app.wait_for("buffer flushed", Duration::from_secs(60), |s| s.store.reachable && s.store.pending == 0).await;
    app.wait_for("plan marked recorded", Duration::from_secs(10), |s| s.plan.as_ref().is_some_and(|p| p.recorded))
        .await;

    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM plans WHERE id = $1 AND verified_at IS NOT NULL")
        .bind(plan_id.0)
        .fetch_one(app.store.pool())
        .await
        .unwrap();
    assert_eq!(n, 1, "the failover plan and its verification were written after the outage");
    let downs: i64 =
        sqlx::query_scalar("SELECT count(*) FROM health_transitions WHERE region = 'primary' AND to_health = 'down'")
            .fetch_one(app.store.pool())
            .await
            .unwrap();
    assert!(downs >= 2, "transitions seen during the outage were written, got {downs}");
    let alarm: i64 =
        sqlx::query_scalar("SELECT count(*) FROM alarms WHERE kind = 'store_unreachable' AND cleared_at IS NOT NULL")
            .fetch_one(app.store.pool())
            .await
            .unwrap();
    assert_eq!(alarm, 1, "the outage itself is on record");
    app.shutdown().await;
    pg.stop().await.unwrap();
}
