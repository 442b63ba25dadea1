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
    // Not in the store, but durable: the spill file holds what waits (so `recorded` may be
    // true once the writer knew the store was down when the plan came).
    let spill = st.store.spill.as_ref().expect("the tests configure a spill directory");
    assert!(spill.entries as usize >= st.store.pending, "every waiting write is in the spill file: {spill:?}");
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

/// Typed records go in and typed rows come back: a transition's healths and
/// layer, a plan's kind, a region name, each stored under the word the API
/// shows; a word that names no kind reads as a `BadValue` naming its column.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_records_round_trip_and_an_unknown_kind_in_a_row_is_a_bad_value() {
    use failover_orchestrator::health::Health;
    use failover_orchestrator::plan::PlanKind;
    use failover_orchestrator::region::{Layer, RegionName};
    use failover_orchestrator::store::{EventKind, Store, StoreError, TransitionRecord, Write};
    use secrecy::SecretString;

    let dsn = crate::common::fresh_database().await;
    let store = Store::connect_lazy(&SecretString::from(dsn)).unwrap();
    store.migrate().await.unwrap();
    let primary = RegionName::new("primary");
    let transition = TransitionRecord {
        id: uuid::Uuid::new_v4(),
        at: chrono::Utc::now(),
        vantage: RegionName::new("standby"),
        region: primary.clone(),
        check_name: Some("pg".into()),
        layer: Some(Layer::Middleware),
        from: Health::Up,
        to: Health::Degraded,
        detail: Some("slow".into()),
    };
    store.write(&Write::Transition(transition.clone())).await.unwrap();
    let mut plan = crate::common::plan(3, w(0, 100, 0));
    plan.kind = PlanKind::DegradeShift;
    // timestamptz keeps microseconds.
    plan.decided_at = chrono::SubsecRound::trunc_subsecs(plan.decided_at, 6);
    store.write(&Write::Plan { plan: Box::new(plan.clone()), vantage: RegionName::new("standby") }).await.unwrap();
    store
        .write(&Write::Maintenance { region: primary.clone(), drain: Some((chrono::Utc::now(), "patching".into())) })
        .await
        .unwrap();

    let (layer, from, to): (String, String, String) =
        sqlx::query_as("SELECT layer, from_health, to_health FROM health_transitions WHERE id = $1")
            .bind(transition.id)
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!((layer.as_str(), from.as_str(), to.as_str()), ("middleware", "up", "degraded"));
    let events = store.events(None, 10, Some("primary"), Some(EventKind::Transition), true).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].region.as_ref(), Some(&primary));
    assert_eq!(events[0].message, "primary/pg: up → degraded (slow)");
    assert_eq!(serde_json::to_value(&events[0]).unwrap()["kind"], "transition");
    let stored = store.last_plan().await.unwrap().expect("the plan");
    assert_eq!(stored.plan, plan);
    assert_eq!(store.maintenance().await.unwrap(), vec![(primary.clone(), "patching".to_string())]);

    sqlx::query("UPDATE plans SET kind = 'teleport' WHERE id = $1")
        .bind(plan.id.0)
        .execute(store.pool())
        .await
        .unwrap();
    match store.plans(10).await {
        Err(StoreError::BadValue { column, value, expected }) => {
            assert_eq!((column.as_str(), value.as_str(), expected), ("kind", "teleport", "plan kind"));
        }
        other => panic!("expected a BadValue, got {other:?}"),
    }
    store.close().await;
}
