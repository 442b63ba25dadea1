//! Real streaming replication between temporary clusters.

use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use fo_lab::postgres::{PgCluster, PgOptions};
use sqlx::Connection;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Processes whose command line mentions `needle` (like `pgrep -f`),
/// excluding pgrep itself.
fn pgrep_f(needle: &str) -> String {
    let out = std::process::Command::new("pgrep").args(["-a", "-f", needle]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn wait_no_process(needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let found = pgrep_f(needle);
        if found.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "processes left for {needle}:\n{found}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_row(node: &PgCluster, id: i32) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut conn = node.connect().await.unwrap();
        let v: Option<String> = sqlx::query_scalar("SELECT v FROM t WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut conn)
            .await
            .unwrap_or(None);
        conn.close().await.ok();
        if let Some(v) = v {
            return v;
        }
        assert!(Instant::now() < deadline, "row {id} never reached {}", node.name());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn sync_states(primary: &PgCluster) -> Vec<(String, String, String)> {
    let mut conn = primary.connect().await.unwrap();
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT application_name::text, state::text, sync_state::text \
         FROM pg_stat_replication ORDER BY application_name",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    conn.close().await.ok();
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn primary_with_sync_and_async_standbys() {
    let t = Instant::now();
    let primary = PgCluster::start_primary("primary", ip("127.0.0.1"), &PgOptions::default()).await.unwrap();
    let t_primary = t.elapsed();
    let t = Instant::now();
    let standby = PgCluster::start_standby(&primary, "standby", ip("127.0.0.2"), &PgOptions::default()).await.unwrap();
    let t_standby = t.elapsed();
    let mut dr = PgCluster::start_standby(&primary, "dr", ip("127.0.0.3"), &PgOptions::default()).await.unwrap();
    eprintln!("startup: primary {t_primary:?}, standby {t_standby:?}");

    primary.set_synchronous_standby_names("standby").await.unwrap();
    primary.execute("CREATE TABLE t (id int primary key, v text); INSERT INTO t VALUES (1, 'hello')").await.unwrap();
    assert_eq!(wait_row(&standby, 1).await, "hello");
    assert_eq!(wait_row(&dr, 1).await, "hello");

    // The reload is asynchronous: poll until the walsenders report it.
    let want = vec![
        ("dr".to_string(), "streaming".to_string(), "async".to_string()),
        ("standby".to_string(), "streaming".to_string(), "sync".to_string()),
    ];
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = sync_states(&primary).await;
        if got == want {
            break;
        }
        assert!(Instant::now() < deadline, "pg_stat_replication: {got:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Standbys are read-only and in recovery.
    let mut conn = standby.connect().await.unwrap();
    let rec: bool = sqlx::query_scalar("SELECT pg_is_in_recovery()").fetch_one(&mut conn).await.unwrap();
    assert!(rec);
    conn.close().await.ok();

    // Crash the DR, then stop it: nothing may remain.
    let dr_dir = dr.data_dir().to_path_buf();
    let pid = dr.postmaster_pid().unwrap();
    dr.kill();
    assert!(!dr.is_running());
    assert!(!Path::new(&format!("/proc/{pid}")).exists() || !dr.is_running());
    assert!(dr_dir.exists(), "a crash keeps the data dir");
    dr.stop().await.unwrap();
    wait_no_process(dr_dir.to_str().unwrap()).await;
    assert!(!dr_dir.exists());

    // Writes still work with the sync standby up.
    primary.execute("INSERT INTO t VALUES (2, 'again')").await.unwrap();
    assert_eq!(wait_row(&standby, 2).await, "again");

    let dirs = [primary.data_dir().to_path_buf(), standby.data_dir().to_path_buf()];
    standby.stop().await.unwrap();
    primary.stop().await.unwrap();
    for d in dirs {
        wait_no_process(d.to_str().unwrap()).await;
        assert!(!d.exists());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_and_restart_keeps_data() {
    let mut primary = PgCluster::start_primary("crashy", ip("127.0.0.4"), &PgOptions::default()).await.unwrap();
    primary.execute("CREATE TABLE k (id int); INSERT INTO k VALUES (42)").await.unwrap();
    let port = primary.port();
    primary.kill();
    let t = Instant::now();
    primary.restart().await.unwrap();
    eprintln!("restart after crash: {:?}", t.elapsed());
    assert_eq!(primary.port(), port);
    let mut conn = primary.connect().await.unwrap();
    let v: i32 = sqlx::query_scalar("SELECT id FROM k").fetch_one(&mut conn).await.unwrap();
    assert_eq!(v, 42);
    conn.close().await.ok();
    // Restart of a running server (fast shutdown, same data).
    primary.restart().await.unwrap();
    primary.create_database("app").await.unwrap();
    let mut conn = sqlx::PgConnection::connect(&primary.dsn_db("app")).await.unwrap();
    sqlx::query("SELECT 1").execute(&mut conn).await.unwrap();
    conn.close().await.ok();
    let dir = primary.data_dir().to_path_buf();
    primary.stop().await.unwrap();
    wait_no_process(dir.to_str().unwrap()).await;
    assert!(!dir.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_handles_leave_nothing_behind() {
    let primary = PgCluster::start_primary("dropme", ip("127.0.0.5"), &PgOptions::default()).await.unwrap();
    let standby =
        PgCluster::start_standby(&primary, "dropme_standby", ip("127.0.0.6"), &PgOptions::default()).await.unwrap();
    let dirs = [primary.data_dir().to_path_buf(), standby.data_dir().to_path_buf()];
    drop(standby);
    drop(primary);
    for d in &dirs {
        wait_no_process(d.to_str().unwrap()).await;
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    while dirs.iter().any(|d| d.exists()) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for d in &dirs {
        assert!(!d.exists(), "{} left behind", d.display());
    }
}
