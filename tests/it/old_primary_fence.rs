//! The fence against one real PostgreSQL, called directly: who it locks out and which sessions
//! it ends, and that a fence it cannot make changes nothing and says why (privileges, a
//! statement timing out after connecting), while a server that never answers is unreachable.

use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;
use std::time::Duration;

use failover_orchestrator::config::AppRole;
use failover_orchestrator::replication::fence::{FenceError, FenceStage, fence, restore_logins};
use fo_lab::postgres::{PgCluster, PgOptions};
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};

const T: Duration = Duration::from_secs(2);

/// A primary with the application role `app` (and a table it writes), and the roles `extra`.
async fn cluster(name: &str, extra: &str) -> PgCluster {
    let pg = PgCluster::start_primary(name, IpAddr::V4(Ipv4Addr::LOCALHOST), &PgOptions::default()).await.unwrap();
    pg.execute(&format!("CREATE ROLE app LOGIN; CREATE TABLE orders (id int); GRANT ALL ON orders TO app; {extra}"))
        .await
        .unwrap();
    pg
}

fn options(pg: &PgCluster, user: &str) -> PgConnectOptions {
    PgConnectOptions::from_str(&pg.dsn_as(user, "postgres")).unwrap()
}

fn roles(names: &[&str]) -> Vec<AppRole> {
    names.iter().map(|n| AppRole::parse(n).unwrap()).collect()
}

async fn connect_as(pg: &PgCluster, user: &str, application_name: &str) -> Result<PgConnection, sqlx::Error> {
    PgConnection::connect_with(&options(pg, user).application_name(application_name)).await
}

/// The old primary is as the fence found it: `app` logs in and writes, read-only is off.
async fn assert_untouched(pg: &PgCluster) {
    let mut c = connect_as(pg, "app", "client").await.expect("app still logs in");
    sqlx::query("INSERT INTO orders VALUES (1)").execute(&mut c).await.expect("app still writes");
    let ro: String = sqlx::query_scalar("SHOW default_transaction_read_only").fetch_one(&mut c).await.unwrap();
    assert_eq!(ro, "off");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fence_ends_every_app_session_whatever_its_name_and_spares_the_orchestrators_own() {
    let pg = cluster("fence-sessions", "").await;
    // An application client posing as the orchestrator, and the orchestrator's own session.
    let mut posing = connect_as(&pg, "app", "failover-orchestrator-lag").await.unwrap();
    let mut own = connect_as(&pg, "postgres", "failover-orchestrator-probe").await.unwrap();
    let mut other = connect_as(&pg, "postgres", "psql").await.unwrap();

    let fenced = fence(&options(&pg, "postgres"), &roles(&["app"]), T).await.expect("fenced");
    assert_eq!(fenced.locked, roles(&["app"]));
    assert_eq!(fenced.terminated, 2, "the posing app session and the other client: {fenced:?}");

    assert!(sqlx::query("SELECT 1").execute(&mut posing).await.is_err(), "the app session survived");
    assert!(sqlx::query("SELECT 1").execute(&mut other).await.is_err(), "another client session survived");
    sqlx::query("SELECT 1").execute(&mut own).await.expect("the orchestrator's own session is spared");
    let err = connect_as(&pg, "app", "client").await.map(|_| ()).expect_err("app logged in after the fence");
    assert!(err.to_string().contains("not permitted to log in"), "{err}");

    // Fencing again finds the role already locked; the logins come back with restore_logins.
    let again = fence(&options(&pg, "postgres"), &roles(&["app"]), T).await.expect("fenced again");
    assert_eq!(again.already_locked, roles(&["app"]));
    let pool = sqlx::PgPool::connect(&pg.dsn()).await.unwrap();
    restore_logins(&pool, &roles(&["app"]), T).await.expect("logins restored");
    connect_as(&pg, "app", "client").await.expect("app logs in again");
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_orchestrator_role_without_the_privileges_is_refused_and_changes_nothing() {
    // `weak` has no privilege at all; `norole` may do everything but ALTER ROLE (no CREATEROLE).
    let pg = cluster(
        "fence-privileges",
        "CREATE ROLE weak LOGIN; CREATE ROLE norole LOGIN IN ROLE pg_signal_backend;
         GRANT ALTER SYSTEM ON PARAMETER default_transaction_read_only TO norole;
         GRANT EXECUTE ON FUNCTION pg_reload_conf() TO norole",
    )
    .await;
    let e = fence(&options(&pg, "weak"), &roles(&["app"]), T).await.expect_err("fenced without privileges");
    let text = e.to_string();
    assert!(matches!(e, FenceError::Refused { stage: FenceStage::Preflight, .. }), "{text}");
    assert!(text.contains("may not run: ALTER SYSTEM SET default_transaction_read_only"), "{text}");
    assert!(text.contains("GRANT pg_signal_backend TO \"weak\""), "{text}");
    assert_untouched(&pg).await;

    let e = fence(&options(&pg, "norole"), &roles(&["app"]), T).await.expect_err("locked without CREATEROLE");
    let text = e.to_string();
    assert!(matches!(e, FenceError::Refused { stage: FenceStage::Lock, .. }), "{text}");
    assert!(text.contains("lacks the privilege (SQLSTATE 42501)") && text.contains("CREATEROLE"), "{text}");
    assert_untouched(&pg).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fence_that_times_out_after_connecting_is_refused_and_rolled_back() {
    let pg = cluster("fence-timeout", "CREATE ROLE reports LOGIN").await;
    // Another transaction holds app's row in pg_authid: ALTER ROLE app waits behind it.
    let mut holder = pg.connect().await.unwrap();
    sqlx::query("BEGIN").execute(&mut holder).await.unwrap();
    sqlx::query("ALTER ROLE app CONNECTION LIMIT 5").execute(&mut holder).await.unwrap();
    let e = fence(&options(&pg, "postgres"), &roles(&["reports", "app"]), Duration::from_secs(1))
        .await
        .expect_err("fenced behind a lock");
    let text = e.to_string();
    assert!(!e.is_unreachable(), "{text}");
    assert!(text.contains("stopped at lock") && text.contains("(1s) after connecting"), "{text}");
    sqlx::query("ROLLBACK").execute(&mut holder).await.unwrap();
    // All or none: `reports`, locked first, is not locked either.
    connect_as(&pg, "reports", "client").await.expect("reports still logs in");
    assert_untouched(&pg).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_answers_is_unreachable() {
    // A listener nobody accepts on: the TCP handshake completes, PostgreSQL's never does.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    let opts = PgConnectOptions::new().host("127.0.0.1").port(addr.port()).username("postgres");
    let e = fence(&opts, &roles(&["app"]), Duration::from_millis(300)).await.expect_err("fenced nothing");
    assert!(e.is_unreachable(), "{e}");
    assert!(e.to_string().contains("no connection within 300ms"), "{e}");
    // Nothing listening at all: refused at once, unreachable too.
    drop(silent);
    let e = fence(&opts, &roles(&["app"]), Duration::from_secs(2)).await.expect_err("fenced nothing");
    assert!(e.is_unreachable(), "{e}");
}
