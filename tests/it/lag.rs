//! Replication lag on real streaming replication: heartbeat truth when idle, growth while
//! replay is paused, stopped standbys, storage and the chart API, and the RPO gate end to end.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use failover_orchestrator::config::Config;
use failover_orchestrator::lag::reconcile::parse_lsn;
use failover_orchestrator::lag::{LagSample, LagSource, LagState};
use failover_orchestrator::replication::sampler::LagSampler;
use fo_lab::postgres::{PgCluster, PgOptions};
use fo_lab::topology::{ConfigParams, RegionSpec};
use sqlx::Row;

use crate::common::{Spec, spawn_app, w};

/// A primary and two streaming standbys of it (standby and DR), named after `tag`.
pub(crate) struct Topology {
    primary: PgCluster,
    standby: PgCluster,
    dr: PgCluster,
}

pub(crate) async fn topology(tag: &str) -> Topology {
    let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let primary = PgCluster::start_primary(&format!("{tag}-primary"), lo, &PgOptions::default()).await.unwrap();
    let standby =
        PgCluster::start_standby(&primary, &format!("{tag}-standby"), lo, &PgOptions::default()).await.unwrap();
    let dr = PgCluster::start_standby(&primary, &format!("{tag}-dr"), lo, &PgOptions::default()).await.unwrap();
    Topology { primary, standby, dr }
}

fn config(t: &Topology, tag: &str) -> Arc<Config> {
    let regions = [("primary", &t.primary), ("standby", &t.standby), ("dr", &t.dr)]
        .iter()
        .enumerate()
        .map(|(i, (name, pg))| RegionSpec {
            name: name.to_string(),
            role: name.to_string(),
            weight: [80, 20, 0][i],
            address: IpAddr::V4(Ipv4Addr::new(127, 0, 9, i as u8 + 1)),
            app_url: "http://127.0.0.1:9/health".into(),
            tcp_target: "127.0.0.1:9".into(),
            pg_dsn: Some(pg.dsn()),
            pg_expect_recovery: None,
            // pg_basebackup named each standby's WAL receiver after its cluster.
            pg_extra: vec![format!("application_name = \"{tag}-{name}\"")],
            extra_checks: Vec::new(),
        })
        .collect();
    let mut params =
        ConfigParams::new("postgres://unused@127.0.0.1:1/x".into(), "127.0.0.1:0".parse().unwrap(), regions);
    params.file = Some("/tmp/unused-plan.json".into());
    let text = params.to_toml();
    Arc::new(Config::parse(&text, "lag test", &|_| None).unwrap())
}

/// Writes `rows` rows of `pad` bytes on the primary, producing WAL for the standbys to fall behind on.
async fn write_wal(c: &mut sqlx::PgConnection, rows: i32, pad: i32) {
    sqlx::query("CREATE TABLE IF NOT EXISTS filler (id serial primary key, pad text)").execute(&mut *c).await.unwrap();
    sqlx::query("INSERT INTO filler (pad) SELECT repeat('x', $2) FROM generate_series(1, $1)")
        .bind(rows)
        .bind(pad)
        .execute(&mut *c)
        .await
        .unwrap();
}

/// Harness settings over the topology: no PowerDNS, and per-standby `[regions.postgres]` lines.
pub(crate) fn lag_spec(t: &Topology, tag: &str, standby: &[&str], dr: &[&str]) -> Spec {
    let lines = |name: &str, extra: &[&str]| {
        std::iter::once(format!("application_name = \"{tag}-{name}\""))
            .chain(extra.iter().map(|l| l.to_string()))
            .collect::<Vec<_>>()
    };
    Spec {
        region_dsns: Some([t.primary.dsn(), t.standby.dsn(), t.dr.dsn()]),
        powerdns: false,
        pg_extra: [vec![], lines("standby", standby), lines("dr", dr)],
        ..Spec::default()
    }
}

fn of<'a>(samples: &'a [LagSample], region: &str) -> &'a LagSample {
    samples.iter().find(|s| s.region.as_str() == region).unwrap()
}

async fn tick_until(s: &mut LagSampler, what: &str, pred: impl Fn(&[LagSample]) -> bool) -> Vec<LagSample> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let samples = s.tick(chrono::Utc::now()).await;
        if pred(&samples) {
            return samples;
        }
        assert!(Instant::now() < deadline, "{what}: last samples {samples:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lag_is_zero_when_idle_grows_while_paused_and_recovers() {
    crate::common::init_tracing();
    let mut t = topology("lagt").await;
    let cfg = config(&t, "lagt");
    let (tx, _rx) = tokio::sync::mpsc::channel(64);
    let mut sampler = LagSampler::new(&cfg, tx, None).expect("sampler");

    // Golden check of the LSN parser against PostgreSQL's own arithmetic.
    let mut c = t.primary.connect().await.unwrap();
    let row = sqlx::query("SELECT pg_current_wal_lsn()::text AS l, (pg_current_wal_lsn() - '0/0'::pg_lsn)::text AS n")
        .fetch_one(&mut c)
        .await
        .unwrap();
    let text: String = row.get("l");
    let n: String = row.get("n");
    assert_eq!(parse_lsn(&text).unwrap().to_string(), n);

    // Idle: zero bytes and zero seconds, over several heartbeats (the heartbeat table must
    // have reached the standby before the pause below, or seconds would fall back to the
    // primary's replay_lag).
    for _ in 0..4 {
        tick_until(&mut sampler, "heartbeat flowing", |_| true).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let samples = tick_until(&mut sampler, "idle standby at zero", |s| {
        let x = of(s, "standby");
        x.bytes == Some(0) && x.seconds.is_some_and(|v| v < 1.0) && x.state == LagState::Streaming
    })
    .await;
    assert_eq!(of(&samples, "dr").state, LagState::Streaming);
    let mut sc = t.standby.connect().await.unwrap();
    let hb: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("SELECT at FROM failover_orchestrator_heartbeat WHERE id = 1")
            .fetch_optional(&mut sc)
            .await
            .unwrap();
    assert!(hb.is_some(), "the heartbeat row replicates to the standby");

    // Paused replay while the primary writes: bytes and seconds grow, state says paused.
    sqlx::query("SELECT pg_wal_replay_pause()").execute(&mut sc).await.unwrap();
    let paused_at = Instant::now();
    write_wal(&mut c, 20_000, 200).await;
    let samples = tick_until(&mut sampler, "paused standby lags", |s| {
        let x = of(s, "standby");
        x.state == LagState::Paused && x.bytes.is_some_and(|b| b > 1_000_000) && x.seconds.is_some_and(|v| v >= 2.0)
    })
    .await;
    let x = of(&samples, "standby");
    assert_eq!(x.seconds_source, Some(LagSource::Heartbeat), "{x:?}");
    assert!(
        x.seconds.unwrap() <= paused_at.elapsed().as_secs_f64() + 1.0,
        "lag {:?} cannot exceed the pause",
        x.seconds
    );
    // DR kept replaying.
    assert!(of(&samples, "dr").bytes.is_some_and(|b| b < 1_000_000));

    sqlx::query("SELECT pg_wal_replay_resume()").execute(&mut sc).await.unwrap();
    tick_until(&mut sampler, "standby caught up", |s| {
        let x = of(s, "standby");
        x.bytes == Some(0) && x.seconds.is_some_and(|v| v < 1.0) && x.state == LagState::Streaming
    })
    .await;

    // A stopped standby shows `stopped`.
    t.dr.kill();
    tick_until(&mut sampler, "dr stopped", |s| of(s, "dr").state == LagState::Stopped).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lag_is_stored_served_as_a_series_and_gates_failover() {
    let t = topology("lagg").await;
    let spec = lag_spec(&t, "lagg", &["max_lag = \"2s\"", "degrade_lag = \"30s\""], &["max_lag = \"60s\""]);
    let mut app = spawn_app(spec).await;
    app.wait_for_verified(&w(80, 20, 0), Duration::from_secs(30)).await;
    app.wait_for("lag in status", Duration::from_secs(30), |s| {
        s.regions[1].lag.as_ref().is_some_and(|l| l.bytes == Some(0)) && s.regions[2].lag.is_some()
    })
    .await;

    // Stored with batched inserts and served as a chart series.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (code, body) = app.get("/api/v1/regions/standby/lag?step=1").await;
    assert_eq!(code, 200, "{body}");
    let points = body["points"].as_array().unwrap();
    assert!(points.len() >= 2, "{body}");
    assert!(points.iter().all(|p| p["bytes"].is_number() && p["seconds"].is_number()));
    assert_eq!(body["latest"]["region"], "standby");
    let (code, body) = app.get("/api/v1/regions/mars/lag").await;
    assert_eq!(code, 404, "{body}");
    let (code, body) = app.get("/api/v1/regions/standby/lag?step=0").await;
    assert_eq!(code, 400);
    assert_eq!(body["field"], "step");
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM lag_samples WHERE region = 'standby'")
        .fetch_one(app.store.pool())
        .await
        .unwrap();
    assert!(n >= 2);

    // The same-city standby falls past its limit; then the primary dies: DR takes over.
    let mut sc = t.standby.connect().await.unwrap();
    sqlx::query("SELECT pg_wal_replay_pause()").execute(&mut sc).await.unwrap();
    let mut c = t.primary.connect().await.unwrap();
    write_wal(&mut c, 5_000, 100).await;
    app.wait_for("standby over its limit", Duration::from_secs(30), |s| {
        s.regions[1].lag.as_ref().is_some_and(|l| l.seconds.is_some_and(|v| v > 3.0))
    })
    .await;
    app.apps[0].kill().await;
    app.wait_for_verified(&w(0, 20, 80), Duration::from_secs(30)).await;
    // The alarm that said what blocked the same-city standby is on record (it clears once
    // nothing is blocked any more).
    app.wait_for("store flushed", Duration::from_secs(10), |s| s.store.pending == 0).await;
    let blocked: Vec<String> = sqlx::query_scalar("SELECT message FROM alarms WHERE kind = 'lag_blocks_failover'")
        .fetch_all(app.store.pool())
        .await
        .unwrap();
    assert!(blocked.iter().any(|m| m.contains("standby") && m.contains("over by")), "{blocked:?}");
    let reasons: Vec<String> = sqlx::query_scalar("SELECT reasons::text FROM plans WHERE kind = 'failover'")
        .fetch_all(app.store.pool())
        .await
        .unwrap();
    assert!(reasons.iter().any(|r| r.contains("cannot take primary's traffic")), "{reasons:?}");
    app.shutdown().await;
    sqlx::query("SELECT pg_wal_replay_resume()").execute(&mut sc).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_target_within_its_limit_keeps_traffic_and_alarms() {
    let t = topology("lagn").await;
    let spec = lag_spec(&t, "lagn", &["max_lag_bytes = 100000"], &["max_lag_bytes = 100000"]);
    let mut app = spawn_app(spec).await;
    app.wait_for_verified(&w(80, 20, 0), Duration::from_secs(30)).await;
    for pg in [&t.standby, &t.dr] {
        let mut c = pg.connect().await.unwrap();
        sqlx::query("SELECT pg_wal_replay_pause()").execute(&mut c).await.unwrap();
    }
    let mut c = t.primary.connect().await.unwrap();
    write_wal(&mut c, 20_000, 100).await;
    app.wait_for("both over the byte limit", Duration::from_secs(30), |s| {
        s.regions[1..].iter().all(|r| r.lag.as_ref().is_some_and(|l| l.bytes.is_some_and(|b| b > 100_000)))
    })
    .await;
    app.apps[0].kill().await;
    app.wait_for("no target alarm", Duration::from_secs(30), |s| {
        s.alarms.iter().any(|a| a.kind.as_str() == "no_failover_target")
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(app.weights(), w(80, 20, 0), "traffic stays where it is");
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_samples_roll_up_into_minute_aggregates() {
    let dsn = crate::common::fresh_database().await;
    let store = failover_orchestrator::store::Store::connect_lazy(&dsn.into()).unwrap();
    store.migrate().await.unwrap();
    let base = chrono::Utc::now() - chrono::Duration::hours(3);
    let base = base
        - chrono::Duration::seconds(base.timestamp() % 60)
        - chrono::Duration::nanoseconds(base.timestamp_subsec_nanos() as i64);
    // 60 samples in one minute three hours ago: bytes 1..=60, seconds 0.1..=6.0; and one fresh sample.
    let mut samples: Vec<LagSample> = (1..=60)
        .map(|i| LagSample {
            region: failover_orchestrator::region::RegionName::new("standby"),
            at: base + chrono::Duration::seconds(i - 1),
            bytes: Some(i as u64),
            seconds: Some(i as f64 / 10.0),
            state: LagState::Streaming,
            bytes_source: Some(LagSource::Primary),
            seconds_source: Some(LagSource::Heartbeat),
            detail: None,
        })
        .collect();
    let mut fresh = samples[0].clone();
    fresh.at = chrono::Utc::now();
    samples.push(fresh);
    store.write(&failover_orchestrator::store::Write::LagSamples(samples)).await.unwrap();

    let removed = store.roll_up_lag(Duration::from_secs(3600)).await.unwrap();
    assert_eq!(removed, 60, "old raw samples deleted, the fresh one kept");
    let row = sqlx::query("SELECT samples, min_bytes, max_bytes, avg_bytes, p95_bytes, max_seconds FROM lag_minutes WHERE region = 'standby'")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(row.get::<i32, _>("samples"), 60);
    assert_eq!(row.get::<Option<i64>, _>("min_bytes"), Some(1));
    assert_eq!(row.get::<Option<i64>, _>("max_bytes"), Some(60));
    assert_eq!(row.get::<Option<f64>, _>("avg_bytes"), Some(30.5));
    let p95 = row.get::<Option<f64>, _>("p95_bytes").unwrap();
    assert!((p95 - 57.05).abs() < 1e-9, "p95 {p95}");
    assert_eq!(row.get::<Option<f64>, _>("max_seconds"), Some(6.0));
    // Rolling up again changes nothing.
    assert_eq!(store.roll_up_lag(Duration::from_secs(3600)).await.unwrap(), 0);
    // The chart series covers both the aggregate and the raw sample.
    let points =
        store.lag_series("standby", base - chrono::Duration::minutes(1), Duration::from_secs(600)).await.unwrap();
    assert_eq!(points.len(), 2, "{points:?}");
    assert_eq!(points[0].max_bytes, Some(60));
}
