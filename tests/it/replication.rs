//! The middleware layer on real streaming replication: primary → standby (sync) → DR (async).

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use failover_orchestrator::health::Health;
use failover_orchestrator::lab::postgres::{PgCluster, PgOptions};

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
