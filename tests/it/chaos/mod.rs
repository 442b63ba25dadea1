//! The chaos scenario suite: one row per scenario (setup, fault, expected outcome), each run
//! against real components — region apps behind fault-injecting proxies, the PostgreSQL store,
//! PowerDNS, real streaming replication — asserting the row's outcome and reporting detection
//! time, plans applied, false flips, alarms raised and records written.
//!
//! Every column is measured, never written down: detection and flip from the product's incident
//! timeline; plans, alarms and false flips from the rows of the `plans` and `alarms` tables of the
//! test's own database; records as the rows every table of that database gained from the fault
//! on ([`mark`] counts them before the fault, [`seen`] after). A false flip is a plan that took
//! a region the scenario did not fault below its weight before the fault, or took traffic from a
//! faulted one after giving it some back (ping-pong); every row asserts there was none.
//!
//! Each row is printed to stderr and written to `artifacts/chaos/<row>.json`; `artifacts/chaos.md`
//! is regenerated from every row written so far. Durations are short by default (flapping 20 s,
//! probe loss 20 s, store outage 10 s); `FO_CHAOS_LONG=1` runs the long variants (120 s, 120 s,
//! 30 s). Times are reported, never asserted, except one generous bound relative to the
//! theoretical floor of fast confirmation.
//!
//! This module holds the row harness; the scenarios are grouped by what fails: [`regions`],
//! [`network`] (the probe path), [`dependencies`] (store, provider API) and [`process`] (the
//! orchestrator process itself killed).

mod dependencies;
mod network;
mod process;
mod regions;

use std::collections::BTreeMap;
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
    /// `records` per table (tables that gained no row left out).
    records_by_table: BTreeMap<String, i64>,
}

/// The moment of the fault: its time and the row count of every table of the test's database.
struct Mark {
    t0: DateTime<Utc>,
    rows: BTreeMap<String, i64>,
}

/// Row count of every table of the database behind `pool` (sqlx's own bookkeeping left out).
async fn table_rows(pool: &PgPool) -> BTreeMap<String, i64> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables
          WHERE table_schema = 'public' AND table_type = 'BASE TABLE' AND table_name <> '_sqlx_migrations'",
    )
    .fetch_all(pool)
    .await
    .expect("list the store's tables");
    assert!(tables.iter().any(|t| t == "plans"), "the store's tables: {tables:?}");
    let mut rows = BTreeMap::new();
    for t in tables {
        let sql = format!("SELECT count(*) FROM \"{}\"", t.replace('"', "\"\""));
        let n: i64 = sqlx::query_scalar(&sql).fetch_one(pool).await.expect("count a table's rows");
        rows.insert(t, n);
    }
    rows
}

/// Marks the fault's start; call it once the store has flushed what came before.
async fn mark(store: &Store) -> Mark {
    let rows = table_rows(store.pool()).await;
    Mark { t0: Utc::now(), rows }
}

/// What the store says happened since the mark.
struct Seen {
    t0: DateTime<Utc>,
    plans: i64,
    false_flips: i64,
    alarms: Vec<String>,
    records: i64,
    records_by_table: BTreeMap<String, i64>,
    incident: Option<Incident>,
}

/// Reads the store after the scenario; `faulted` names the regions the scenario's fault may
/// legitimately take traffic from.
async fn seen(store: &Store, m: &Mark, faulted: &[&str]) -> Seen {
    let pool = store.pool();
    let t0 = m.t0;
    let plans: i64 =
        sqlx::query_scalar("SELECT count(*) FROM plans WHERE decided_at >= $1").bind(t0).fetch_one(pool).await.unwrap();
    let records_by_table: BTreeMap<String, i64> = table_rows(pool)
        .await
        .into_iter()
        .map(|(t, n)| {
            let gained = n - m.rows.get(&t).copied().unwrap_or(0);
            (t, gained)
        })
        .filter(|(_, gained)| *gained > 0)
        .collect();
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
    Seen {
        t0,
        plans,
        false_flips: false_flips(pool, t0, faulted).await,
        alarms,
        records: records_by_table.values().sum(),
        records_by_table,
        incident,
    }
}

/// Weights of a stored plan, region → percent.
type StoredWeights = BTreeMap<String, i64>;

/// The false flips among the plans decided since `t0`, against the plan in force before it.
async fn false_flips(pool: &PgPool, t0: DateTime<Utc>, faulted: &[&str]) -> i64 {
    let plans: Vec<(serde_json::Value, bool)> =
        sqlx::query_as("SELECT weights, decided_at >= $1 FROM plans ORDER BY decided_at, epoch")
            .bind(t0)
            .fetch_all(pool)
            .await
            .unwrap();
    let weights = |v: &serde_json::Value| -> StoredWeights { serde_json::from_value(v.clone()).expect("plan weights") };
    let baseline = plans.iter().rev().find(|(_, since)| !since).map(|(w, _)| weights(w));
    count_false_flips(baseline, plans.iter().filter(|(_, since)| *since).map(|(w, _)| weights(w)), faulted)
}

/// Counts the plans that took a region not in `faulted` below its `baseline` weight, or took
/// weight from a faulted region after an earlier plan of the sequence had given it weight back
/// (ping-pong). Traffic returning from an unfaulted region toward its baseline (a failback) is
/// no false flip. Without a `baseline`, the first plan is the baseline.
fn count_false_flips(
    baseline: Option<StoredWeights>,
    plans: impl IntoIterator<Item = StoredWeights>,
    faulted: &[&str],
) -> i64 {
    let mut plans = plans.into_iter();
    let Some(baseline) = baseline.or_else(|| plans.next()) else { return 0 };
    let mut prev = baseline.clone();
    let mut given_back: Vec<String> = Vec::new();
    let mut flips = 0;
    for next in plans {
        let mut false_flip = false;
        for (region, w) in &next {
            let was = prev.get(region).copied().unwrap_or(0);
            let normal = baseline.get(region).copied().unwrap_or(0);
            let ok_to_lose = faulted.contains(&region.as_str());
            if *w < was && ((!ok_to_lose && *w < normal) || (ok_to_lose && given_back.contains(region))) {
                false_flip = true;
            }
            if *w > was && ok_to_lose && !given_back.contains(region) {
                given_back.push(region.clone());
            }
        }
        flips += i64::from(false_flip);
        prev = next;
    }
    flips
}

fn ms_between(t0: DateTime<Utc>, t: Option<DateTime<Utc>>) -> Option<i64> {
    t.map(|t| (t - t0).num_milliseconds())
}

impl Row {
    /// One call per row: the scenario's words, and every figure from what the store saw.
    fn from_seen(
        scenario: &'static str,
        setup: &'static str,
        fault: String,
        expected: &'static str,
        observed: String,
        s: &Seen,
    ) -> Row {
        let i = s.incident.as_ref();
        Row {
            scenario,
            setup,
            fault,
            expected,
            observed,
            detection_ms: i.and_then(|i| ms_between(s.t0, i.first(Step::RegionTransition))),
            flip_ms: i.and_then(|i| ms_between(s.t0, i.verified_at)),
            plans: s.plans,
            false_flips: s.false_flips,
            alarms: s.alarms.clone(),
            records: s.records,
            records_by_table: s.records_by_table.clone(),
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
    eprintln!("chaos | {} | records by table {:?}", row.scenario, row.records_by_table);
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

/// Reports the row, then fails the test if any plan was a false flip.
fn report_without_false_flips(row: &Row) {
    report(row);
    assert_eq!(row.false_flips, 0, "{}: a plan took traffic it should not have: {row:?}", row.scenario);
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
    // Everything before the fault is in the store, so that `mark` counts from the fault on.
    app.wait_for("store flushed before the fault", T, |s| s.store.pending == 0).await;
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

#[test]
fn false_flips_count_moves_off_unfaulted_regions_and_ping_pong_but_not_failover_or_failback() {
    let w =
        |p: i64, s: i64, d: i64| StoredWeights::from([("primary".into(), p), ("standby".into(), s), ("dr".into(), d)]);
    let normal = Some(w(80, 20, 0));
    // Failover off the faulted primary, then failback in steps (the standby returns to its
    // 20): none is false.
    assert_eq!(count_false_flips(normal.clone(), [w(0, 100, 0), w(40, 60, 0), w(80, 20, 0)], &["primary"]), 0);
    // A failback that overshoots, taking the unfaulted standby below its 20: false.
    assert_eq!(count_false_flips(normal.clone(), [w(0, 100, 0), w(100, 0, 0)], &["primary"]), 1);
    // The same failover when the scenario faulted nothing (probe loss): one false flip.
    assert_eq!(count_false_flips(normal.clone(), [w(0, 100, 0)], &[]), 1);
    // Traffic taken from the standby the scenario did not fault.
    assert_eq!(count_false_flips(normal.clone(), [w(0, 100, 0), w(0, 0, 100)], &["primary"]), 1);
    // Ping-pong: failed over, given back, taken again.
    assert_eq!(count_false_flips(normal.clone(), [w(0, 100, 0), w(40, 60, 0), w(0, 100, 0)], &["primary"]), 1);
    // Without a plan before the fault, the first plan is the baseline.
    assert_eq!(count_false_flips(None, [w(80, 20, 0), w(100, 0, 0)], &["standby"]), 0);
    assert_eq!(count_false_flips(None, Vec::new(), &[]), 0);
}
