//! The middleware layer on real streaming replication: primary → standby (sync) → DR (async),
//! and promotion with the old primary's fence: held against an application client, blocking
//! the promotion when it cannot be made, skipped (and said so) when the old primary is gone.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use failover_orchestrator::health::Health;
use failover_orchestrator::replication::promotion::{StepKind, StepOutcome};
use failover_orchestrator::status::Status;
use fo_lab::postgres::{PgCluster, PgOptions};
use sqlx::{Connection, PgConnection};

use crate::common::{Spec, TestApp, spawn_app, w};

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

/// A primary with the application's role and table, a standby and a DR replica of it (the
/// role replicates), names prefixed with `prefix`.
async fn replicated_with_app_role(prefix: &str) -> (PgCluster, PgCluster, PgCluster) {
    let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let primary = PgCluster::start_primary(&format!("{prefix}-primary"), lo, &PgOptions::default()).await.unwrap();
    primary.execute("CREATE ROLE app LOGIN; CREATE TABLE orders (id int); GRANT ALL ON orders TO app").await.unwrap();
    let standby =
        PgCluster::start_standby(&primary, &format!("{prefix}-standby"), lo, &PgOptions::default()).await.unwrap();
    let dr = PgCluster::start_standby(&primary, &format!("{prefix}-dr"), lo, &PgOptions::default()).await.unwrap();
    (primary, standby, dr)
}

/// An orchestrator over the three clusters, promoting the standby and fencing `app_roles`.
async fn spawn_promoting(prefix: &str, dbs: [&PgCluster; 3], app_roles: &str) -> TestApp {
    let spec = Spec {
        region_dsns: Some(dbs.map(|d| d.dsn())),
        powerdns: false,
        pg_extra: [
            vec![format!("application_name = \"{prefix}-primary\"")],
            vec![
                format!("application_name = \"{prefix}-standby\""),
                "max_lag = \"10s\"".into(),
                "promote = true".into(),
            ],
            vec![format!("application_name = \"{prefix}-dr\"")],
        ],
        extra: format!("[replication]\napp_roles = {app_roles}\nfence_timeout = \"3s\"\n"),
        ..Spec::default()
    };
    let mut app = spawn_app(spec).await;
    app.wait_for_verified(&w(80, 20, 0), Duration::from_secs(30)).await;
    app.wait_for("lag known", Duration::from_secs(30), |s| {
        s.regions[1].lag.as_ref().is_some_and(|l| l.bytes == Some(0))
    })
    .await;
    app
}

/// The promotion's steps as (step, outcome).
fn steps(st: &Status) -> Vec<(StepKind, StepOutcome)> {
    st.promotion.iter().map(|p| (p.step, p.outcome)).collect()
}

fn detail(st: &Status, step: StepKind) -> String {
    st.promotion.iter().find(|p| p.step == step).map(|p| p.detail.clone()).unwrap_or_default()
}

async fn in_recovery(db: &PgCluster) -> bool {
    let mut c = db.connect().await.unwrap();
    sqlx::query_scalar("SELECT pg_is_in_recovery()").fetch_one(&mut c).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_locks_the_app_role_out_of_the_old_primary_promotes_the_standby_and_repoints_dr() {
    use StepKind::*;
    use StepOutcome::Ok as Done;
    let (primary, standby, dr) = replicated_with_app_role("pr").await;
    let mut app = spawn_promoting("pr", [&primary, &standby, &dr], "[\"app\"]").await;
    // An application client, connected to the writer before the fence.
    let mut client = PgConnection::connect(&primary.dsn_as("app", "postgres")).await.unwrap();
    sqlx::query("INSERT INTO orders VALUES (1)").execute(&mut client).await.unwrap();

    // The primary's app dies; its database still answers (so it must be fenced).
    app.apps[0].kill().await;
    app.wait_for_verified(&w(0, 100, 0), Duration::from_secs(30)).await;
    app.wait_for("promotion done", Duration::from_secs(60), |s| {
        s.promotion.iter().any(|p| p.step == Track && p.is_ok())
    })
    .await;
    let st = app.status.borrow().clone();
    assert_eq!(st.writer.as_str(), "standby");
    assert_eq!(
        steps(&st),
        [(Gate, Done), (Fence, Done), (Promote, Done), (Unlock, Done), (Repoint, Done), (Track, Done)],
        "{:?}",
        st.promotion
    );
    let fenced = detail(&st, Fence);
    assert!(fenced.contains("application roles app locked (NOLOGIN)"), "{fenced}");
    assert!(fenced.contains("re-clone it as a standby"), "{fenced}");

    // The client that was connected tries to undo the soft fence and write: its session is gone.
    let undo = sqlx::query("SET default_transaction_read_only = off").execute(&mut client).await;
    let write = sqlx::query("INSERT INTO orders VALUES (2)").execute(&mut client).await;
    assert!(undo.is_err() && write.is_err(), "the old session still works: {undo:?} {write:?}");
    // A new connection as the application role is refused.
    let again = PgConnection::connect(&primary.dsn_as("app", "postgres")).await.map(|_| ());
    let err = again.expect_err("the app role logged in to the fenced old primary");
    assert!(err.to_string().contains("not permitted to log in"), "{err}");
    // The second layer holds for other roles too.
    let mut p = primary.connect().await.unwrap();
    let err = sqlx::query("CREATE TABLE split_brain (id int)").execute(&mut p).await.unwrap_err();
    assert!(err.to_string().contains("read-only"), "{err}");
    let written: i64 = sqlx::query_scalar("SELECT count(*) FROM orders").fetch_one(&mut p).await.unwrap();
    assert_eq!(written, 1, "only the write made before the fence is on the old primary");

    // The application logs in to the new primary (its LOGIN given back there) and writes.
    assert!(!in_recovery(&standby).await);
    let mut s = PgConnection::connect(&standby.dsn_as("app", "postgres")).await.unwrap();
    sqlx::query("INSERT INTO orders VALUES (3)").execute(&mut s).await.unwrap();

    // DR follows the new primary: the row written there arrives.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut d = dr.connect().await.unwrap();
    loop {
        let ids: Result<Vec<i32>, _> = sqlx::query_scalar("SELECT id FROM orders ORDER BY id").fetch_all(&mut d).await;
        if ids.as_ref().is_ok_and(|ids| ids == &[1, 3]) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "DR never followed the new primary: {ids:?}");
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
    for want in ["promotion.fence", "promotion.promote", "promotion.unlock"] {
        assert!(actions.iter().any(|a| a == want), "{want} in {actions:?}");
    }
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reachable_old_primary_that_cannot_be_fenced_is_not_promoted_away_from() {
    let (primary, standby, dr) = replicated_with_app_role("nf").await;
    // `ghost` does not exist: the fence cannot lock it, so it cannot hold.
    let mut app = spawn_promoting("nf", [&primary, &standby, &dr], "[\"app\", \"ghost\"]").await;
    app.apps[0].kill().await;
    app.wait_for_verified(&w(0, 100, 0), Duration::from_secs(30)).await;
    app.wait_for("the fence step", Duration::from_secs(60), |s| s.promotion.iter().any(|p| p.step == StepKind::Fence))
        .await;
    let st = app.status.borrow().clone();
    assert_eq!(
        steps(&st),
        [(StepKind::Gate, StepOutcome::Ok), (StepKind::Fence, StepOutcome::Failed)],
        "{:?}",
        st.promotion
    );
    let why = detail(&st, StepKind::Fence);
    assert!(why.contains("reachable but not fenced") && why.contains("ghost do not exist"), "{why}");
    assert!(why.contains("Not promoting") && why.contains("replication.app_roles"), "{why}");
    let alarm = st.alarms.iter().find(|a| a.kind.as_str() == "promotion_failed").expect("promotion_failed alarm");
    assert!(alarm.message.contains("ghost"), "{}", alarm.message);
    assert_eq!(st.writer.as_str(), "primary");
    // No promotion happened, and the refused fence changed nothing: the old primary still takes
    // the application's writes.
    assert!(in_recovery(&standby).await, "the standby was promoted");
    let mut c = PgConnection::connect(&primary.dsn_as("app", "postgres")).await.unwrap();
    sqlx::query("INSERT INTO orders VALUES (1)").execute(&mut c).await.unwrap();
    app.wait_for("store flushed", Duration::from_secs(10), |s| s.store.pending == 0).await;
    let outcome: String = sqlx::query_scalar("SELECT outcome FROM audit_log WHERE action = 'promotion.fence'")
        .fetch_one(app.store.pool())
        .await
        .unwrap();
    assert_eq!(outcome, "failed");
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_old_primary_is_promoted_away_from_and_the_record_says_it_was_not_fenced() {
    let (mut primary, standby, dr) = replicated_with_app_role("nr").await;
    let mut app = spawn_promoting("nr", [&primary, &standby, &dr], "[\"app\"]").await;
    primary.kill();
    app.wait_for_verified(&w(0, 100, 0), Duration::from_secs(30)).await;
    app.wait_for("promotion done", Duration::from_secs(60), |s| {
        s.promotion.iter().any(|p| p.step == StepKind::Track && p.is_ok())
    })
    .await;
    let st = app.status.borrow().clone();
    let fence = st.promotion.iter().find(|p| p.step == StepKind::Fence).expect("fence step");
    assert_eq!(fence.outcome, StepOutcome::Skipped, "{:?}", st.promotion);
    assert!(fence.detail.contains("unreachable") && fence.detail.contains("could not be fenced"), "{}", fence.detail);
    assert!(fence.detail.contains("re-clone it as a standby of standby"), "{}", fence.detail);
    assert_eq!(st.writer.as_str(), "standby");
    assert!(!st.alarms.iter().any(|a| a.kind.as_str() == "promotion_failed"), "{:?}", st.alarms);
    let mut s = PgConnection::connect(&standby.dsn_as("app", "postgres")).await.unwrap();
    sqlx::query("INSERT INTO orders VALUES (1)").execute(&mut s).await.unwrap();
    app.wait_for("store flushed", Duration::from_secs(10), |s| s.store.pending == 0).await;
    let (outcome, details): (String, serde_json::Value) =
        sqlx::query_as("SELECT outcome, details FROM audit_log WHERE action = 'promotion.fence'")
            .fetch_one(app.store.pool())
            .await
            .unwrap();
    assert_eq!(outcome, "skipped");
    assert!(details["detail"].as_str().is_some_and(|d| d.contains("unreachable")), "{details}");
    app.shutdown().await;
}
