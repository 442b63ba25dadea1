//! The chaos scenario suite: one row per scenario (setup, fault, expected outcome), each run
//! against real components — region apps behind fault-injecting proxies, the PostgreSQL store,
//! PowerDNS, real streaming replication — asserting the row's outcome and reporting detection
//! time, plans applied, false flips, alarms raised and records written.
//!
//! Each row is printed to stderr and written to `artifacts/chaos/<row>.json`; `artifacts/chaos.md`
//! is regenerated from every row written so far. Durations are short by default (flapping 20 s,
//! probe loss 20 s, store outage 10 s); `FO_CHAOS_LONG=1` runs the long variants (120 s, 120 s,
//! 30 s). Times are reported, never asserted, except one generous bound relative to the
//! theoretical floor of fast confirmation.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use failover_orchestrator::health::Health;
use failover_orchestrator::incidents::{Incident, Step};
use failover_orchestrator::store::Store;
use fo_lab::faultproxy::Faults;
use fo_lab::postgres::{PgCluster, PgOptions};
use serde::Serialize;
use sqlx::PgPool;

use crate::common::{PDNS_KEY_ENV, Spec, TestApp, spawn_app, w};

const T: Duration = Duration::from_secs(30);

fn long() -> bool {
    std::env::var("FO_CHAOS_LONG").is_ok_and(|v| v == "1")
}

fn secs(short: u64, long_: u64) -> Duration {
    Duration::from_secs(if long() { long_ } else { short })
}

/// One row of the scenario table.
#[derive(Debug, Serialize)]
struct Row {
    scenario: &'static str,
    setup: &'static str,
    fault: String,
    expected: &'static str,
    observed: String,
    /// Fault → region detected down/degraded, from the product's own incident timeline.
    detection_ms: Option<i64>,
    /// Fault → plan verified on every provider.
    flip_ms: Option<i64>,
    plans: i64,
    false_flips: i64,
    alarms: Vec<String>,
    records: i64,
}

/// What the store says happened since `t0`.
struct Seen {
    plans: i64,
    alarms: Vec<String>,
    records: i64,
    incident: Option<Incident>,
}

async fn seen(store: &Store, t0: DateTime<Utc>) -> Seen {
    let pool = store.pool();
    let count = |sql: &'static str| async move {
        sqlx::query_scalar::<_, i64>(sql).bind(t0).fetch_one(pool).await.expect("count rows")
    };
    let plans = count("SELECT count(*) FROM plans WHERE decided_at >= $1").await;
    let records = count(
        "SELECT (SELECT count(*) FROM health_transitions WHERE at >= $1) + (SELECT count(*) FROM plans WHERE decided_at >= $1)
              + (SELECT count(*) FROM alarms WHERE raised_at >= $1) + (SELECT count(*) FROM incidents WHERE opened_at >= $1)
              + (SELECT count(*) FROM audit_log WHERE at >= $1)",
    )
    .await;
    let alarms: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT kind || coalesce(':' || region, '') FROM alarms WHERE raised_at >= $1 ORDER BY 1",
    )
    .bind(t0)
    .fetch_all(pool)
    .await
    .unwrap();
    let incident = store
        .incidents(10)
        .await
        .unwrap()
        .into_iter()
        .filter(|i| i.opened_at >= t0 - chrono::Duration::seconds(1))
        .min_by_key(|i| i.opened_at);
    Seen { plans, alarms, records, incident }
}

fn ms_between(t0: DateTime<Utc>, t: Option<DateTime<Utc>>) -> Option<i64> {
    t.map(|t| (t - t0).num_milliseconds())
}

impl Row {
    /// One call per row, every column named at the call site.
    #[allow(clippy::too_many_arguments)]
    fn from_seen(
        scenario: &'static str,
        setup: &'static str,
        fault: String,
        expected: &'static str,
        observed: String,
        t0: DateTime<Utc>,
        s: &Seen,
        false_flips: i64,
    ) -> Row {
        let i = s.incident.as_ref();
        Row {
            scenario,
            setup,
            fault,
            expected,
            observed,
            detection_ms: i.and_then(|i| ms_between(t0, i.first(Step::RegionTransition))),
            flip_ms: i.and_then(|i| ms_between(t0, i.verified_at)),
            plans: s.plans,
            false_flips,
            alarms: s.alarms.clone(),
            records: s.records,
        }
    }
}

fn artifacts() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("artifacts")
}

fn cell(v: Option<i64>) -> String {
    v.map(|v| format!("{v} ms")).unwrap_or_else(|| "—".into())
}

/// Prints the row and rewrites `artifacts/chaos.md` from every row on disk.
fn report(row: &Row) {
    let dir = artifacts().join("chaos");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{}.json", row.scenario)), serde_json::to_vec_pretty(row).unwrap()).unwrap();
    eprintln!(
        "chaos | {} | {} | expected: {} | observed: {} | detection {} | flip {} | plans {} | false flips {} | alarms {:?} | records {}",
        row.scenario,
        row.fault,
        row.expected,
        row.observed,
        cell(row.detection_ms),
        cell(row.flip_ms),
        row.plans,
        row.false_flips,
        row.alarms,
        row.records
    );
    let mut rows: Vec<serde_json::Value> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| std::fs::read(e.ok()?.path()).ok())
        .filter_map(|b| serde_json::from_slice(&b).ok())
        .collect();
    rows.sort_by_key(|r| r["scenario"].as_str().unwrap_or("").to_string());
    let mut md = String::from(
        "| scenario | setup | fault | expected | observed | detection | flip | plans | false flips | alarms | records |\n|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let ms = |k: &str| r[k].as_i64().map(|v| format!("{v} ms")).unwrap_or_else(|| "—".into());
        let alarms: Vec<&str> = r["alarms"].as_array().into_iter().flatten().filter_map(|a| a.as_str()).collect();
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            r["scenario"].as_str().unwrap_or(""),
            r["setup"].as_str().unwrap_or(""),
            r["fault"].as_str().unwrap_or(""),
            r["expected"].as_str().unwrap_or(""),
            r["observed"].as_str().unwrap_or(""),
            ms("detection_ms"),
            ms("flip_ms"),
            r["plans"],
            r["false_flips"],
            alarms.join(", "),
            r["records"]
        ));
    }
    let _ = std::fs::write(artifacts().join("chaos.md"), md);
}

/// Plans since `t0` that took weight away from `region`.
async fn moves_away_from(pool: &PgPool, region: &str, normal: i64, t0: DateTime<Utc>) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM plans WHERE decided_at >= $1 AND (weights ->> $2)::int < $3")
        .bind(t0)
        .bind(region)
        .bind(normal)
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn ready(spec: Spec) -> TestApp {
    let mut app = spawn_app(spec).await;
    app.wait_for_verified(&w(80, 20, 0), T).await;
    // Let every check settle into `up` before the fault.
    app.wait_for("every region up", T, |s| s.regions.iter().all(|r| r.health == Health::Up)).await;
    app
}

async fn replicated(prefix: &str) -> (PgCluster, PgCluster, PgCluster) {
    let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let primary = PgCluster::start_primary(&format!("{prefix}-primary"), lo, &PgOptions::default()).await.unwrap();
    let standby =
        PgCluster::start_standby(&primary, &format!("{prefix}-standby"), lo, &PgOptions::default()).await.unwrap();
    let dr = PgCluster::start_standby(&primary, &format!("{prefix}-dr"), lo, &PgOptions::default()).await.unwrap();
    (primary, standby, dr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_primary_app_down_fails_over_with_one_recorded_timeline() {
    let mut app = ready(Spec { fault_proxies: true, ..Spec::default() }).await;
    let t0 = Utc::now();
    app.apps[0].kill().await;
    app.wait_for_verified(&w(0, 100, 0), T).await;
    // DNS follows.
    let answers = app.dig_many(10).await;
    assert!(answers.iter().all(|a| *a == app.addresses[1]), "{answers:?}");
    app.wait_for("store flushed", T, |s| s.store.pending == 0).await;
    let s = seen(&app.store, t0).await;
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
    report(&Row::from_seen(
        "01 primary app down",
        "3 regions, 80/20/0, interval 500 ms, fast 100 ms, fall 3",
        "primary app killed (connection refused)".into(),
        "failover 0/100/0, DNS follows, one incident",
        format!("0/100/0 verified; incident {} steps", incident.timeline.len()),
        t0,
        &s,
        0,
    ));
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_primary_postgres_down_fails_over() {
    let (primary, standby, dr) = replicated("ch-pg").await;
    let dsns = [primary.dsn(), standby.dsn(), dr.dsn()];
    let mut app =
        ready(Spec { region_dsns: Some(dsns), fault_proxies: true, powerdns: false, ..Spec::default() }).await;
    let t0 = Utc::now();
    app.pg_proxies[0].set(Faults { refuse: true, reset: true, ..Faults::default() });
    app.wait_for_verified(&w(0, 100, 0), T).await;
    let st = app.status.borrow().clone();
    assert_eq!(st.regions[0].layers[1].health, Some(Health::Down), "middleware layer down");
    app.wait_for("store flushed", T, |s| s.store.pending == 0).await;
    let s = seen(&app.store, t0).await;
    report(&Row::from_seen(
        "02 primary PostgreSQL down",
        "real streaming replication, middleware check through a fault proxy",
        "primary database unreachable (refused + reset)".into(),
        "failover 0/100/0 on the middleware layer",
        "0/100/0 verified; app layer still up".into(),
        t0,
        &s,
        0,
    ));
    app.shutdown().await;
    for pg in [dr, standby, primary] {
        pg.stop().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_primary_slow_is_a_partial_shift_not_a_failover() {
    let mut app = ready(Spec { fault_proxies: true, powerdns: false, ..Spec::default() }).await;
    let t0 = Utc::now();
    // Over degraded_latency (150 ms), under the timeout (450 ms).
    app.proxies[0].set(Faults { latency: Duration::from_millis(120), ..Faults::default() });
    app.wait_for_verified(&w(40, 60, 0), T).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(app.weights(), w(40, 60, 0), "stays a partial shift");
    let failovers = moves_away_from(app.store.pool(), "primary", 40, t0).await;
    assert_eq!(failovers, 0, "never below the degraded share");
    app.wait_for("store flushed", T, |s| s.store.pending == 0).await;
    let s = seen(&app.store, t0).await;
    report(&Row::from_seen(
        "03 primary slow",
        "degraded_latency 150 ms, timeout 450 ms",
        "+120 ms each way on the primary (≈250 ms per probe)".into(),
        "partial shift 40/60/0, no failover",
        "40/60/0 held".into(),
        t0,
        &s,
        failovers,
    ));
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_primary_flapping_changes_traffic_a_bounded_number_of_times() {
    let spec = Spec {
        dwell: Duration::from_secs(3),
        failback_hold: Duration::from_secs(5),
        powerdns: false,
        ..Spec::default()
    };
    let mut app = ready(spec).await;
    let t0 = Utc::now();
    let run = secs(20, 120);
    let started = Instant::now();
    let mut flips = 0;
    while started.elapsed() < run {
        app.apps[0].break_health();
        tokio::time::sleep(Duration::from_secs(2)).await;
        app.apps[0].restore().await.unwrap();
        tokio::time::sleep(Duration::from_secs(2)).await;
        flips += 2;
    }
    app.wait_for("store flushed", T, |s| s.store.pending == 0).await;
    let s = seen(&app.store, t0).await;
    // Healthy for 2 s at a time never reaches the 5 s failback hold: one failover, no ping-pong.
    assert!(s.plans >= 1, "the first failure moves traffic");
    assert!(s.plans <= 2, "{} plans for {flips} health flips", s.plans);
    report(&Row::from_seen(
        "04 primary flapping every 2 s",
        "dwell 3 s, failback hold 5 s",
        format!("primary 503 / 200 every 2 s for {} s ({flips} flips)", run.as_secs()),
        "≤ 2 traffic changes",
        format!("{} plan(s), weights {}", s.plans, app.weights()),
        t0,
        &s,
        0,
    ));
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_thirty_percent_probe_loss_moves_nothing() {
    let mut app = ready(Spec { fault_proxies: true, powerdns: false, ..Spec::default() }).await;
    let t0 = Utc::now();
    app.proxies[0].set(Faults { drop_rate: 0.3, ..Faults::default() });
    let run = secs(20, 120);
    tokio::time::sleep(run).await;
    app.proxies[0].clear();
    let stats = app.proxies[0].stats();
    app.wait_for("store flushed", T, |s| s.store.pending == 0).await;
    let s = seen(&app.store, t0).await;
    let false_flips = moves_away_from(app.store.pool(), "primary", 80, t0).await;
    report(&Row::from_seen(
        "05 30 % probe loss",
        "fall 3, attempts 3 (default, hedged)",
        format!(
            "30 % of connections to the primary blackholed for {} s ({} of {} lost)",
            run.as_secs(),
            stats.blackholed,
            stats.accepted
        ),
        "no traffic change",
        format!("weights {}", app.weights()),
        t0,
        &s,
        false_flips,
    ));
    assert!(stats.blackholed > 10, "the fault was really injected: {stats:?}");
    assert_eq!(false_flips, 0, "lossy probes moved traffic");
    assert_eq!(app.weights(), w(80, 20, 0));
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_three_second_network_hiccup_moves_nothing() {
    // A silent target needs fall × timeout = 5 × 800 ms = 4 s to be confirmed down: longer than
    // a 3 s hiccup, while a refusing target is still confirmed in fall × fast = 0.5 s.
    let spec = Spec {
        fault_proxies: true,
        powerdns: false,
        interval: Duration::from_secs(1),
        timeout: Duration::from_millis(800),
        fall: 5,
        ..Spec::default()
    };
    let mut app = ready(spec).await;
    let t0 = Utc::now();
    app.proxies[0].set(Faults { blackhole: true, ..Faults::default() });
    tokio::time::sleep(Duration::from_secs(3)).await;
    app.proxies[0].clear();
    tokio::time::sleep(Duration::from_secs(4)).await;
    app.wait_for("primary up again", T, |s| s.regions[0].health == Health::Up).await;
    app.wait_for("store flushed", T, |s| s.store.pending == 0).await;
    let s = seen(&app.store, t0).await;
    let false_flips = moves_away_from(app.store.pool(), "primary", 80, t0).await;
    report(&Row::from_seen(
        "06 3 s network hiccup",
        "interval 1 s, timeout 800 ms, fast 100 ms, fall 5",
        "primary blackholed for 3 s".into(),
        "no traffic change",
        format!("weights {}", app.weights()),
        t0,
        &s,
        false_flips,
    ));
    assert_eq!(false_flips, 0, "a 3 s hiccup moved traffic");
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_standby_down_gives_its_share_to_the_primary() {
    let mut app = ready(Spec { powerdns: false, ..Spec::default() }).await;
    let t0 = Utc::now();
    app.apps[1].kill().await;
    app.wait_for_verified(&w(100, 0, 0), T).await;
    app.wait_for("store flushed", T, |s| s.store.pending == 0).await;
    let s = seen(&app.store, t0).await;
    let false_flips = moves_away_from(app.store.pool(), "primary", 80, t0).await;
    assert_eq!(false_flips, 0);
    report(&Row::from_seen(
        "07 standby down",
        "failover order primary, standby, dr",
        "standby app killed".into(),
        "100/0/0: primary keeps serving, takes the standby's share",
        format!("weights {}", app.weights()),
        t0,
        &s,
        false_flips,
    ));
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_dr_down_only_alarms() {
    let mut app = ready(Spec { powerdns: false, ..Spec::default() }).await;
    let t0 = Utc::now();
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
    let s = seen(&app.store, t0).await;
    assert_eq!(s.plans, 0, "no plan for a region at weight 0");
    report(&Row::from_seen(
        "08 DR down",
        "DR at weight 0",
        "DR app killed".into(),
        "no traffic change, alarm",
        format!("weights {}", app.weights()),
        t0,
        &s,
        s.plans,
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
    let t0 = Utc::now();
    app.apps[0].kill().await;
    app.wait_for_verified(&w(0, 20, 80), T).await;
    app.wait_for("store flushed", T, |s| s.store.pending == 0).await;
    let s = seen(&app.store, t0).await;
    writer.abort();
    report(&Row::from_seen(
        "09 standby lagging + primary down",
        "standby max_lag 1 s, DR max_lag 30 s",
        "standby replay paused (lag > 2 s), then primary app killed".into(),
        "DR takes the primary's share (0/20/80); the lagging standby takes none of it",
        format!("weights {}", app.weights()),
        t0,
        &s,
        0,
    ));
    app.shutdown().await;
    let _ = standby.execute("SELECT pg_wal_replay_resume()").await;
    for pg in [dr, standby, primary] {
        pg.stop().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_store_outage_keeps_deciding_and_loses_nothing() {
    let mut app = ready(Spec { store_proxy: true, powerdns: false, ..Spec::default() }).await;
    // A direct pool, not through the proxy, to read what was written.
    let direct = Store::connect_lazy(&secrecy::SecretString::from(app.direct_store_dsn.clone())).unwrap();
    let t0 = Utc::now();
    let outage = secs(10, 30);
    let proxy = app.store_proxy.as_ref().unwrap();
    proxy.set(Faults { refuse: true, reset: true, ..Faults::default() });
    tokio::time::sleep(Duration::from_secs(1)).await;
    app.apps[0].kill().await;
    app.wait_for_verified(&w(0, 100, 0), T).await;
    let plan_id = app.status.borrow().plan.as_ref().unwrap().plan.id;
    app.wait_for("store unreachable", T, |s| !s.store.reachable && s.store.pending > 0).await;
    let pending = app.status.borrow().store.pending;
    tokio::time::sleep(outage.saturating_sub(Duration::from_secs(1))).await;
    app.store_proxy.as_ref().unwrap().clear();
    app.wait_for("buffer flushed", Duration::from_secs(60), |s| s.store.reachable && s.store.pending == 0).await;
    let pool = direct.pool();
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM plans WHERE id = $1 AND verified_at IS NOT NULL")
        .bind(plan_id.0)
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(n, 1, "the failover plan and its verification were written after the outage");
    let s = seen(&direct, t0).await;
    assert!(s.alarms.iter().any(|a| a.starts_with("store_unreachable")), "{:?}", s.alarms);
    let incident = s.incident.as_ref().expect("the incident was written after the outage");
    assert!(incident.verified_at.is_some());
    let downs: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM health_transitions WHERE region = 'primary' AND to_health = 'down' AND at >= $1",
    )
    .bind(t0)
    .fetch_one(pool)
    .await
    .unwrap();
    assert!(downs >= 2, "check and region transitions written, got {downs}");
    report(&Row::from_seen(
        "10 store down",
        "store behind a fault proxy",
        format!("store refused + reset for {} s; primary killed during it", outage.as_secs()),
        "failover from memory, every record written after",
        format!("0/100/0; {pending} writes buffered, all written"),
        t0,
        &s,
        0,
    ));
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_provider_api_errors_and_timeouts_retry_alarm_and_apply() {
    let mut app = ready(Spec { provider_proxy: true, ..Spec::default() }).await;
    let t0 = Utc::now();
    {
        let (http, _) = app.provider_faults.as_ref().unwrap();
        http.set_failing(true);
    }
    app.apps[0].kill().await;
    app.wait_for("provider alarm", T, |s| s.alarms.iter().any(|a| a.kind.as_str() == "provider_failing")).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    {
        let (http, tcp) = app.provider_faults.as_ref().unwrap();
        http.set_failing(false);
        tcp.set(Faults { blackhole: true, ..Faults::default() });
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let failed = {
        let (http, tcp) = app.provider_faults.as_ref().unwrap();
        tcp.clear();
        http.failed()
    };
    app.wait_for_verified(&w(0, 100, 0), Duration::from_secs(60)).await;
    app.wait_for("alarm cleared", T, |s| !s.alarms.iter().any(|a| a.kind.as_str() == "provider_failing")).await;
    let answers = app.dig_many(10).await;
    assert!(answers.iter().all(|a| *a == app.addresses[1]), "{answers:?}");
    app.wait_for("store flushed", T, |s| s.store.pending == 0).await;
    let s = seen(&app.store, t0).await;
    assert!(failed > 0, "the API really failed");
    assert!(s.alarms.iter().any(|a| a.starts_with("provider_failing")), "{:?}", s.alarms);
    report(&Row::from_seen(
        "11 provider API 500s and timeouts",
        "PowerDNS API behind an HTTP 500 injector and a fault proxy",
        format!("primary killed; API answers 500 ({failed} times), then blackholed 3 s"),
        "retries, alarm, eventual apply",
        "0/100/0 verified, DNS follows, alarm cleared".into(),
        t0,
        &s,
        0,
    ));
    app.shutdown().await;
}

/// A real orchestrator process on the test's configuration, to be killed with SIGKILL.
struct Child {
    proc: tokio::process::Child,
    api: SocketAddr,
}

async fn start_child(app: &TestApp, path: &std::path::Path) -> Child {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let api: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let text = app.config_text.replace("listen = \"127.0.0.1:0\"", &format!("listen = \"{api}\""));
    std::fs::write(path, text).unwrap();
    let proc = tokio::process::Command::new(env!("CARGO_BIN_EXE_failover-orchestrator"))
        .args(["serve", "--config"])
        .arg(path)
        .env(PDNS_KEY_ENV, &app.pdns_key)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(path.with_extension("log")).unwrap())
        .kill_on_drop(true)
        .spawn()
        .expect("start the orchestrator binary");
    Child { proc, api }
}

async fn child_status(http: &reqwest::Client, api: SocketAddr, token: &str) -> Option<serde_json::Value> {
    http.get(format!("http://{api}/api/v1/status")).bearer_auth(token).send().await.ok()?.json().await.ok()
}

async fn wait_child(
    http: &reqwest::Client,
    api: SocketAddr,
    token: &str,
    path: &std::path::Path,
    what: &str,
    pred: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(s) = child_status(http, api, token).await {
            if pred(&s) {
                return s;
            }
        }
        if Instant::now() > deadline {
            let log = std::fs::read_to_string(path.with_extension("log")).unwrap_or_default();
            let last = child_status(http, api, token).await;
            panic!("timed out waiting for {what}; last status {last:?}; orchestrator log:\n{log}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn plan_is(s: &serde_json::Value, p: i64, st: i64, verified: bool) -> bool {
    let plan = &s["plan"];
    plan["weights"]["primary"] == p && plan["weights"]["standby"] == st && (!verified || !plan["verified_at"].is_null())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_orchestrator_killed_mid_failover_resumes_after_restart() {
    // The harness's in-process orchestrator only prepares the store and the zone; real
    // processes take over, so the kill is a real SIGKILL.
    let app = ready(Spec::default()).await;
    let mut app = app;
    app.cancel.cancel();
    let task = std::mem::replace(&mut app.task, tokio::spawn(async { Ok(()) }));
    task.await.unwrap().unwrap();
    // The in-process app closed its pool at shutdown: read the store on a new one.
    let store = Store::connect_lazy(&secrecy::SecretString::from(app.direct_store_dsn.clone())).unwrap();
    let dir = std::env::temp_dir().join(format!("fo-chaos-kill-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("regions.toml");
    let http = reqwest::Client::new();

    let mut a = start_child(&app, &path).await;
    let sa =
        wait_child(&http, a.api, &app.tokens.viewer, &path, "first orchestrator steady", |s| plan_is(s, 80, 20, true))
            .await;
    let epoch_a = sa["leadership"]["epoch"].as_i64().unwrap();
    let t0 = Utc::now();
    app.apps[0].kill().await;
    wait_child(&http, a.api, &app.tokens.viewer, &path, "failover decided", |s| plan_is(s, 0, 100, false)).await;
    a.proc.start_kill().unwrap();
    a.proc.wait().await.unwrap();

    let mut b = start_child(&app, &path).await;
    let sb = wait_child(&http, b.api, &app.tokens.viewer, &path, "second orchestrator verified the failover", |s| {
        plan_is(s, 0, 100, true)
    })
    .await;
    let epoch_b = sb["leadership"]["epoch"].as_i64().unwrap();
    assert!(epoch_b > epoch_a, "a newer epoch after the restart");
    let answers = app.dig_many(10).await;
    assert!(answers.iter().all(|x| *x == app.addresses[1]), "{answers:?}");
    wait_child(&http, b.api, &app.tokens.viewer, &path, "store flushed", |s| s["store"]["pending"] == 0).await;
    let s = seen(&store, t0).await;
    let verified: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM plans WHERE decided_at >= $1 AND epoch = $2 AND verified_at IS NOT NULL AND (weights->>'primary')::int = 0",
    )
    .bind(t0)
    .bind(epoch_b)
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert!(verified >= 1 || s.plans >= 1, "the failover is on record");
    b.proc.start_kill().unwrap();
    b.proc.wait().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    report(&Row::from_seen(
        "12 orchestrator killed mid-failover",
        "orchestrator as a process, SIGKILL after the decision",
        "SIGKILL between decision and verification, restart".into(),
        "restart resumes: failover verified under a newer epoch, recorded",
        format!("epoch {epoch_a} → {epoch_b}; 0/100/0 verified; {verified} verified plan(s) of the new epoch"),
        t0,
        &s,
        0,
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_orchestrator_killed_mid_drill_rolls_back_after_restart() {
    // As above, real processes: a live drill holds traffic on the standby when the
    // orchestrator is SIGKILLed; the next one rolls it back and records it as interrupted.
    let mut app = ready(Spec::default()).await;
    app.cancel.cancel();
    let task = std::mem::replace(&mut app.task, tokio::spawn(async { Ok(()) }));
    task.await.unwrap().unwrap();
    let store = Store::connect_lazy(&secrecy::SecretString::from(app.direct_store_dsn.clone())).unwrap();
    let dir = std::env::temp_dir().join(format!("fo-chaos-drill-kill-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("regions.toml");
    let http = reqwest::Client::new();

    let mut a = start_child(&app, &path).await;
    wait_child(&http, a.api, &app.tokens.viewer, &path, "first orchestrator steady", |s| plan_is(s, 80, 20, true))
        .await;
    let t0 = Utc::now();
    let resp = http
        .post(format!("http://{}/api/v1/drills", a.api))
        .bearer_auth(&app.tokens.operator)
        .json(&serde_json::json!({ "evacuate": "primary", "steps": [100], "hold_seconds": 300, "dry_run": false, "reason": "chaos: kill mid-drill" }))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "drill start: {}", resp.status());
    let drill: serde_json::Value = resp.json().await.unwrap();
    let id = drill["id"].as_str().expect("drill id").to_string();
    wait_child(&http, a.api, &app.tokens.viewer, &path, "drill holding on the standby", |s| plan_is(s, 0, 100, true))
        .await;
    a.proc.start_kill().unwrap();
    a.proc.wait().await.unwrap();

    let mut b = start_child(&app, &path).await;
    wait_child(&http, b.api, &app.tokens.viewer, &path, "rolled back after the restart", |s| plan_is(s, 80, 20, true))
        .await;
    let answers = app.dig_many(20).await;
    assert!(answers.contains(&app.addresses[0]), "DNS answers the primary again: {answers:?}");
    let d = loop {
        let d: serde_json::Value = http
            .get(format!("http://{}/api/v1/drills/{id}", b.api))
            .bearer_auth(&app.tokens.viewer)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if d["state"] == "interrupted" || Utc::now() - t0 > chrono::Duration::seconds(60) {
            break d;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(d["state"], "interrupted", "{d}");
    wait_child(&http, b.api, &app.tokens.viewer, &path, "store flushed", |s| s["store"]["pending"] == 0).await;
    let s = seen(&store, t0).await;
    b.proc.start_kill().unwrap();
    b.proc.wait().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    report(&Row::from_seen(
        "14 orchestrator killed mid-drill",
        "orchestrator as a process, live drill evacuating the primary, holding",
        "SIGKILL while the drill holds 0/100/0, restart".into(),
        "restart rolls the drill back to 80/20 and records it interrupted",
        format!("80/20/0 verified again; drill {} {}", &id[..8], d["state"].as_str().unwrap_or("?")),
        t0,
        &s,
        0,
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_fast_confirmation_beats_interval_times_fall() {
    // interval 1 s, fast 100 ms, fall 3: without fast re-probe a hard failure needs ≥ 2 s after the
    // first failed probe (two more intervals); with it, ~200 ms. The bound asserted is the
    // interval-based floor itself — generous for a loaded machine — and the figure is reported.
    let spec = Spec {
        interval: Duration::from_secs(1),
        timeout: Duration::from_millis(800),
        powerdns: false,
        ..Spec::default()
    };
    let mut app = ready(spec).await;
    let t0 = Utc::now();
    app.apps[0].break_health();
    app.wait_for_verified(&w(0, 100, 0), T).await;
    app.wait_for("store flushed", T, |s| s.store.pending == 0).await;
    let s = seen(&app.store, t0).await;
    let i = s.incident.as_ref().expect("incident recorded");
    let confirm = i.ms_to(Step::RegionTransition).expect("region transition on the timeline");
    report(&Row::from_seen(
        "13 fast confirmation",
        "interval 1 s, fast 100 ms, fall 3 (floor without fast re-probe: 2 s after the first failure)",
        "primary answers 503".into(),
        "confirmed well under interval × (fall − 1)",
        format!("first failed probe → down in {confirm} ms"),
        t0,
        &s,
        0,
    ));
    assert!(confirm < 2000, "confirmation took {confirm} ms, no faster than without fast re-probe");
    app.shutdown().await;
}
