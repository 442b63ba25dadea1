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
//!
//! This module holds the row harness; the scenarios are grouped by what fails: [`regions`],
//! [`network`] (the probe path), [`dependencies`] (store, provider API) and [`process`] (the
//! orchestrator process itself killed).

mod dependencies;
mod network;
mod process;
mod regions;

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
