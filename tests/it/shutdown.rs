//! Graceful shutdown in the middle of a failover: every task exits in time and the plan is recorded.

use std::time::{Duration, Instant};

use crate::common::{Spec, spawn_app, w};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_mid_failover_exits_in_time_and_keeps_the_plan() {
    let mut app = spawn_app(Spec::default()).await;
    app.wait_for_verified(&w(80, 20, 0), Duration::from_secs(30)).await;
    app.apps[0].kill().await;
    // As soon as the failover plan is decided (not necessarily verified), stop.
    app.wait_for("failover decided", Duration::from_secs(30), |s| {
        s.plan.as_ref().is_some_and(|p| p.plan.weights == w(0, 100, 0))
    })
    .await;
    let plan_id = app.status.borrow().plan.as_ref().unwrap().plan.id;
    let store = app.store.clone();
    let started = Instant::now();
    app.cancel.cancel();
    let result = tokio::time::timeout(Duration::from_secs(15), app.task).await;
    assert!(result.is_ok(), "orchestrator did not stop within the shutdown bound");
    result.unwrap().unwrap().unwrap();
    let took = started.elapsed();
    // The failover plan is in the store (recorded before it was applied).
    let store2 = failover_orchestrator::store::Store::connect_lazy(&app.config.orchestrator.store_dsn).unwrap();
    drop(store);
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM plans WHERE id = $1")
        .bind(plan_id.0)
        .fetch_one(store2.pool())
        .await
        .unwrap();
    assert_eq!(n, 1, "the in-flight plan was recorded (shutdown took {took:?})");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_resumes_the_recorded_plan() {
    let db = crate::common::fresh_database().await;
    let mut app =
        spawn_app(Spec { store_dsn: Some(db.clone()), powerdns: false, failback: "manual", ..Spec::default() }).await;
    app.wait_for_verified(&w(80, 20, 0), Duration::from_secs(30)).await;
    app.apps[0].kill().await;
    app.wait_for_verified(&w(0, 100, 0), Duration::from_secs(30)).await;
    let epoch1 = app.status.borrow().leadership.epoch;
    app.shutdown().await;

    // A new orchestrator on the same store resumes the failed-over plan, with a newer epoch,
    // and (failback manual) keeps it even though its own primary app is healthy.
    let mut app = spawn_app(Spec { store_dsn: Some(db), powerdns: false, failback: "manual", ..Spec::default() }).await;
    app.wait_for_verified(&w(0, 100, 0), Duration::from_secs(30)).await;
    let st = app.status.borrow().clone();
    assert!(st.leadership.epoch > epoch1);
    assert!(
        st.plan.as_ref().unwrap().plan.reason.contains("re-applying the last recorded plan"),
        "{:?}",
        st.plan.as_ref().unwrap().plan.reason
    );
    app.shutdown().await;
}
