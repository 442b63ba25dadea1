//! The store: the orchestrator's own PostgreSQL. The only module with SQL.
//!
//! Migrations run at start-up. Writes go through the [`writer`], which
//! buffers them in order while the store is unreachable and writes them when
//! it returns, so a store outage never stalls the engine. Every row id is
//! chosen by the orchestrator, which makes a retried write idempotent.

pub mod incidents;
pub mod operations;
pub mod records;
pub mod writer;

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde_json::Value;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Postgres, Row, Transaction};
use uuid::Uuid;

pub use records::{AlarmRecord, AuditRecord, TransitionRecord, Write};

use crate::plan::{Epoch, PlanId, PlanKind, TrafficPlan, Weights};
use crate::probe::postgres::describe;

/// Why a store call failed. Messages carry no DSN.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The DSN could not be parsed.
    #[error("orchestrator.store_dsn is malformed (check the URL syntax)")]
    Dsn,
    /// A query failed.
    #[error("store {context}: {detail}")]
    Query {
        /// What was being done.
        context: &'static str,
        /// Secret-free description.
        detail: String,
        /// The cause.
        #[source]
        source: sqlx::Error,
    },
    /// Migrations failed.
    #[error("store migrations failed: {0}")]
    Migrate(#[source] sqlx::migrate::MigrateError),
}

pub(crate) fn q(context: &'static str) -> impl Fn(sqlx::Error) -> StoreError {
    move |source| StoreError::Query { context, detail: describe(&source), source }
}

/// Handle to the store; cheap to clone (the pool is shared inside).
#[derive(Clone, Debug)]
pub struct Store {
    pool: PgPool,
}

/// One entry of the events timeline.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Event {
    /// Row id.
    pub id: Uuid,
    /// When.
    pub at: DateTime<Utc>,
    /// `transition`, `plan`, `alarm` or `audit`.
    pub kind: String,
    /// Region concerned, if any.
    pub region: Option<String>,
    /// One line for humans.
    pub message: String,
    /// The row's details.
    pub details: Value,
}

/// One point of a lag chart.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LagPoint {
    /// Start of the bucket.
    pub at: DateTime<Utc>,
    /// Largest bytes behind in the bucket.
    pub max_bytes: Option<i64>,
    /// Mean bytes behind.
    pub avg_bytes: Option<f64>,
    /// Largest seconds behind.
    pub max_seconds: Option<f64>,
    /// Mean seconds behind.
    pub avg_seconds: Option<f64>,
    /// Samples in the bucket.
    pub samples: Option<i64>,
}

/// A stored plan.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StoredPlan {
    /// The plan.
    pub plan: TrafficPlan,
    /// Provider name → last apply report.
    pub outcome: Value,
    /// When all providers verified it.
    pub verified_at: Option<DateTime<Utc>>,
}

impl Store {
    /// A store over a lazily connecting pool: no connection is made here.
    ///
    /// # Errors
    /// [`StoreError::Dsn`] when the DSN cannot be parsed.
    pub fn connect_lazy(dsn: &SecretString) -> Result<Self, StoreError> {
        let opts = PgConnectOptions::from_str(dsn.expose_secret())
            .map_err(|_| StoreError::Dsn)?
            .application_name("failover-orchestrator");
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .min_connections(0)
            .acquire_timeout(Duration::from_secs(2))
            .idle_timeout(Duration::from_secs(60))
            .connect_lazy_with(opts);
        Ok(Self { pool })
    }

    /// The pool, for tests and the lag sampler.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Applies pending migrations.
    ///
    /// # Errors
    /// [`StoreError::Migrate`].
    pub async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::migrate!("./migrations").run(&self.pool).await.map_err(StoreError::Migrate)
    }

    /// Whether a trivial query answers.
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    /// Takes the next leadership epoch for `holder` (single-orchestrator mode: every start is a new epoch).
    ///
    /// # Errors
    /// [`StoreError::Query`].
    pub async fn bump_epoch(&self, holder: &str) -> Result<Epoch, StoreError> {
        let row = sqlx::query(
            "INSERT INTO leadership (id, epoch, holder, acquired_at) VALUES (1, 1, $1, now())
             ON CONFLICT (id) DO UPDATE SET epoch = leadership.epoch + 1, holder = $1, acquired_at = now()
             RETURNING epoch",
        )
        .bind(holder)
        .fetch_one(&self.pool)
        .await
        .map_err(q("taking the leadership epoch"))?;
        Ok(Epoch(row.get::<i64, _>(0)))
    }

    /// Performs one buffered write. Idempotent.
    ///
    /// # Errors
    /// [`StoreError::Query`]; the writer keeps the write and retries.
    pub async fn write(&self, w: &Write) -> Result<(), StoreError> {
        let mut tx: Transaction<'_, Postgres> = self.pool.begin().await.map_err(q("opening a transaction"))?;
        match w {
            Write::Incident(i) => incidents::upsert(&mut tx, i).await?,
            Write::Transition(t) => {
                sqlx::query(
                    "INSERT INTO health_transitions (id, at, vantage, region, check_name, layer, from_health, to_health, detail)
                     VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9) ON CONFLICT (id) DO NOTHING",
                )
                .bind(t.id)
                .bind(t.at)
                .bind(&t.vantage)
                .bind(&t.region)
                .bind(&t.check_name)
                .bind(&t.layer)
                .bind(&t.from)
                .bind(&t.to)
                .bind(&t.detail)
                .execute(&mut *tx)
                .await
                .map_err(q("recording a transition"))?;
            }
            Write::Plan { plan, vantage } => {
                sqlx::query(
                    "INSERT INTO plans (id, decided_at, epoch, vantage, kind, weights, reason, reasons, inputs)
                     VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9) ON CONFLICT (id) DO NOTHING",
                )
                .bind(plan.id.0)
                .bind(plan.decided_at)
                .bind(plan.epoch.0)
                .bind(vantage)
                .bind(plan.kind.as_str())
                .bind(serde_json::to_value(&plan.weights).unwrap_or(Value::Null))
                .bind(&plan.reason)
                .bind(serde_json::to_value(&plan.reasons).unwrap_or(Value::Null))
                .bind(&plan.inputs)
                .execute(&mut *tx)
                .await
                .map_err(q("recording a plan"))?;
            }
            Write::PlanOutcome { plan_id, provider, report, verified_at } => {
                sqlx::query(
                    "UPDATE plans SET outcome = outcome || jsonb_build_object($2::text, $3::jsonb),
                            verified_at = COALESCE(verified_at, $4)
                     WHERE id = $1",
                )
                .bind(plan_id.0)
                .bind(provider)
                .bind(report)
                .bind(verified_at)
                .execute(&mut *tx)
                .await
                .map_err(q("recording a plan outcome"))?;
            }
            Write::Alarm(a) => {
                sqlx::query(
                    "INSERT INTO alarms (id, raised_at, kind, region, message) VALUES ($1,$2,$3,$4,$5) ON CONFLICT (id) DO NOTHING",
                )
                .bind(a.id)
                .bind(a.raised_at)
                .bind(&a.kind)
                .bind(&a.region)
                .bind(&a.message)
                .execute(&mut *tx)
                .await
                .map_err(q("recording an alarm"))?;
            }
            Write::AlarmCleared { id, at } => {
                sqlx::query("UPDATE alarms SET cleared_at = COALESCE(cleared_at, $2) WHERE id = $1")
                    .bind(id)
                    .bind(at)
                    .execute(&mut *tx)
                    .await
                    .map_err(q("clearing an alarm"))?;
            }
            Write::Audit(a) => {
                sqlx::query(
                    "INSERT INTO audit_log (id, at, actor, action, target, outcome, request_id, details)
                     VALUES ($1,$2,$3,$4,$5,$6,$7,$8) ON CONFLICT (id) DO NOTHING",
                )
                .bind(a.id)
                .bind(a.at)
                .bind(&a.actor)
                .bind(&a.action)
                .bind(&a.target)
                .bind(&a.outcome)
                .bind(&a.request_id)
                .bind(&a.details)
                .execute(&mut *tx)
                .await
                .map_err(q("recording an audit entry"))?;
            }
            Write::LagSamples(samples) => {
                if !samples.is_empty() {
                    let src = |s: Option<crate::replication::LagSource>| {
                        s.and_then(|s| serde_json::to_value(s).ok()).and_then(|v| v.as_str().map(str::to_string))
                    };
                    let state = |s: &crate::replication::LagSample| {
                        serde_json::to_value(s.state)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_string))
                            .unwrap_or_default()
                    };
                    sqlx::query(
                        "INSERT INTO lag_samples (region, at, bytes, seconds, state, bytes_source, seconds_source)
                         SELECT * FROM UNNEST($1::text[], $2::timestamptz[], $3::bigint[], $4::float8[], $5::text[], $6::text[], $7::text[])",
                    )
                    .bind(samples.iter().map(|s| s.region.to_string()).collect::<Vec<_>>())
                    .bind(samples.iter().map(|s| s.at).collect::<Vec<_>>())
                    .bind(samples.iter().map(|s| s.bytes.map(|b| b.min(i64::MAX as u64) as i64)).collect::<Vec<_>>())
                    .bind(samples.iter().map(|s| s.seconds).collect::<Vec<_>>())
                    .bind(samples.iter().map(state).collect::<Vec<_>>())
                    .bind(samples.iter().map(|s| src(s.bytes_source)).collect::<Vec<_>>())
                    .bind(samples.iter().map(|s| src(s.seconds_source)).collect::<Vec<_>>())
                    .execute(&mut *tx)
                    .await
                    .map_err(q("recording lag samples"))?;
                }
            }
            Write::Maintenance { region, drain } => {
                match drain {
                    Some((since, reason)) => {
                        sqlx::query(
                            "INSERT INTO maintenance (region, since, reason) VALUES ($1,$2,$3)
                         ON CONFLICT (region) DO UPDATE SET since = EXCLUDED.since, reason = EXCLUDED.reason",
                        )
                        .bind(region)
                        .bind(since)
                        .bind(reason)
                        .execute(&mut *tx)
                        .await
                    }
                    None => {
                        sqlx::query("DELETE FROM maintenance WHERE region = $1").bind(region).execute(&mut *tx).await
                    }
                }
                .map_err(q("recording maintenance"))?;
            }
            Write::Drill(d) => operations::upsert_drill(&mut tx, d).await?,
            Write::DrillEvent(e) => operations::insert_drill_event(&mut tx, e).await?,
            Write::Operation(o) => operations::upsert_operation(&mut tx, o).await?,
            Write::Hold(h) => operations::set_hold(&mut tx, h.as_deref()).await?,
        }
        tx.commit().await.map_err(q("committing"))
    }

    /// The most recent plan, to resume from after a restart.
    ///
    /// # Errors
    /// [`StoreError::Query`].
    pub async fn last_plan(&self) -> Result<Option<StoredPlan>, StoreError> {
        let rows = self.plans(1).await?;
        Ok(rows.into_iter().next())
    }

    /// The newest plans first.
    ///
    /// # Errors
    /// [`StoreError::Query`].
    pub async fn plans(&self, limit: i64) -> Result<Vec<StoredPlan>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, decided_at, epoch, kind, weights, reason, reasons, inputs, outcome, verified_at
             FROM plans ORDER BY decided_at DESC, id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(q("reading plans"))?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let kind: String = r.get("kind");
                StoredPlan {
                    plan: TrafficPlan {
                        id: PlanId(r.get("id")),
                        epoch: Epoch(r.get("epoch")),
                        weights: serde_json::from_value::<Weights>(r.get("weights")).unwrap_or_default(),
                        kind: serde_json::from_value::<PlanKind>(Value::String(kind)).unwrap_or(PlanKind::Manual),
                        reason: r.get("reason"),
                        reasons: serde_json::from_value(r.get("reasons")).unwrap_or_default(),
                        inputs: r.get("inputs"),
                        decided_at: r.get("decided_at"),
                    },
                    outcome: r.get("outcome"),
                    verified_at: r.get("verified_at"),
                }
            })
            .collect())
    }

    /// The region last promoted to writer (from the audit log), to resume after a restart.
    ///
    /// # Errors
    /// [`StoreError::Query`].
    pub async fn last_promoted(&self) -> Result<Option<String>, StoreError> {
        sqlx::query_scalar(
            "SELECT target FROM audit_log WHERE action = 'promotion.promote' AND outcome = 'ok' ORDER BY at DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await
        .map_err(q("reading the last promotion"))
    }

    /// Regions in maintenance, to restore after a restart.
    ///
    /// # Errors
    /// [`StoreError::Query`].
    pub async fn maintenance(&self) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query("SELECT region, reason FROM maintenance ORDER BY region")
            .fetch_all(&self.pool)
            .await
            .map_err(q("reading maintenance"))?;
        Ok(rows.into_iter().map(|r| (r.get("region"), r.get("reason"))).collect())
    }

    /// The events timeline, newest first: transitions, plans, alarms and audit entries.
    ///
    /// `before` pages back in time; `region` and `kind` filter.
    ///
    /// # Errors
    /// [`StoreError::Query`].
    pub async fn events(
        &self,
        before: Option<DateTime<Utc>>,
        limit: i64,
        region: Option<&str>,
        kind: Option<&str>,
    ) -> Result<Vec<Event>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM (
                SELECT id, at, 'transition' AS kind, region,
                       region || COALESCE('/' || check_name, '') || ': ' || from_health || ' → ' || to_health
                         || COALESCE(' (' || detail || ')', '') AS message,
                       jsonb_build_object('vantage', vantage, 'check', check_name, 'layer', layer,
                                          'from', from_health, 'to', to_health, 'detail', detail) AS details
                  FROM health_transitions
                UNION ALL
                SELECT id, decided_at, 'plan', NULL, kind || ': ' || reason,
                       jsonb_build_object('weights', weights, 'epoch', epoch, 'reasons', reasons,
                                          'outcome', outcome, 'verified_at', verified_at, 'plan_kind', kind)
                  FROM plans
                UNION ALL
                SELECT id, raised_at, 'alarm', region, message,
                       jsonb_build_object('alarm', kind, 'cleared_at', cleared_at)
                  FROM alarms
                UNION ALL
                SELECT id, at, 'audit', target, actor || ' ' || action || COALESCE(' ' || target, '') || ': ' || outcome,
                       jsonb_build_object('actor', actor, 'action', action, 'request_id', request_id, 'details', details)
                  FROM audit_log
             ) e
             WHERE ($1::timestamptz IS NULL OR at < $1)
               AND ($3::text IS NULL OR region = $3 OR (kind = 'plan' AND details->'weights' ? $3))
               AND ($4::text IS NULL OR kind = $4)
             ORDER BY at DESC, id
             LIMIT $2",
        )
        .bind(before)
        .bind(limit)
        .bind(region)
        .bind(kind)
        .fetch_all(&self.pool)
        .await
        .map_err(q("reading events"))?;
        Ok(rows
            .into_iter()
            .map(|r| Event {
                id: r.get("id"),
                at: r.get("at"),
                kind: r.get("kind"),
                region: r.get("region"),
                message: r.get("message"),
                details: r.get("details"),
            })
            .collect())
    }

    /// Deletes transitions, cleared alarms and outcome-complete plans older than `retention`.
    ///
    /// # Errors
    /// [`StoreError::Query`].
    pub async fn housekeeping(&self, retention: Duration) -> Result<u64, StoreError> {
        let cutoff = Utc::now() - chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::days(7));
        let a = sqlx::query("DELETE FROM health_transitions WHERE at < $1")
            .bind(cutoff)
            .execute(&self.pool)
            .await
            .map_err(q("deleting old transitions"))?
            .rows_affected();
        let b = sqlx::query("DELETE FROM alarms WHERE cleared_at IS NOT NULL AND cleared_at < $1")
            .bind(cutoff)
            .execute(&self.pool)
            .await
            .map_err(q("deleting old alarms"))?
            .rows_affected();
        // Idempotency keys only need to outlive client retries.
        let c = sqlx::query("DELETE FROM idempotency_keys WHERE created_at < now() - interval '1 day'")
            .execute(&self.pool)
            .await
            .map_err(q("deleting old idempotency keys"))?
            .rows_affected();
        Ok(a + b + c)
    }

    /// A lag series for a chart: one point per `step`, from raw samples and (older) minute aggregates.
    ///
    /// # Errors
    /// [`StoreError::Query`].
    pub async fn lag_series(
        &self,
        region: &str,
        since: DateTime<Utc>,
        step: Duration,
    ) -> Result<Vec<LagPoint>, StoreError> {
        let step_s = step.as_secs_f64().max(1.0);
        let rows = sqlx::query(
            "SELECT bucket, max(max_bytes) AS max_bytes, avg(avg_bytes) AS avg_bytes,
                    max(max_seconds) AS max_seconds, avg(avg_seconds) AS avg_seconds, sum(n)::bigint AS samples
               FROM (
                 SELECT date_bin(make_interval(secs => $3), at, 'epoch'::timestamptz) AS bucket,
                        max(bytes) AS max_bytes, avg(bytes)::float8 AS avg_bytes,
                        max(seconds) AS max_seconds, avg(seconds) AS avg_seconds, count(*) AS n
                   FROM lag_samples WHERE region = $1 AND at >= $2 GROUP BY 1
                 UNION ALL
                 SELECT date_bin(make_interval(secs => $3), minute, 'epoch'::timestamptz),
                        max(max_bytes), avg(avg_bytes), max(max_seconds), avg(avg_seconds), sum(samples)
                   FROM lag_minutes WHERE region = $1 AND minute >= $2
                    AND minute < COALESCE((SELECT min(at) FROM lag_samples WHERE region = $1), 'infinity')
                  GROUP BY 1
               ) b
              GROUP BY bucket ORDER BY bucket",
        )
        .bind(region)
        .bind(since)
        .bind(step_s)
        .fetch_all(&self.pool)
        .await
        .map_err(q("reading the lag series"))?;
        Ok(rows
            .into_iter()
            .map(|r| LagPoint {
                at: r.get("bucket"),
                max_bytes: r.get("max_bytes"),
                avg_bytes: r.get("avg_bytes"),
                max_seconds: r.get("max_seconds"),
                avg_seconds: r.get("avg_seconds"),
                samples: r.get("samples"),
            })
            .collect())
    }

    /// Rolls raw lag samples older than `raw_retention` up into per-minute aggregates
    /// (min / max / avg / p95) and deletes them. Returns the raw rows removed.
    ///
    /// # Errors
    /// [`StoreError::Query`].
    pub async fn roll_up_lag(&self, raw_retention: Duration) -> Result<u64, StoreError> {
        let cutoff = Utc::now() - chrono::Duration::from_std(raw_retention).unwrap_or(chrono::Duration::days(1));
        // Whole minutes only, so a minute is never split between raw and aggregate.
        let mut tx = self.pool.begin().await.map_err(q("opening a transaction"))?;
        sqlx::query(
            "INSERT INTO lag_minutes (region, minute, samples, min_bytes, max_bytes, avg_bytes, p95_bytes,
                                      min_seconds, max_seconds, avg_seconds, p95_seconds)
             SELECT region, date_trunc('minute', at), count(*), min(bytes), max(bytes), avg(bytes)::float8,
                    percentile_cont(0.95) WITHIN GROUP (ORDER BY bytes),
                    min(seconds), max(seconds), avg(seconds),
                    percentile_cont(0.95) WITHIN GROUP (ORDER BY seconds)
               FROM lag_samples WHERE at < date_trunc('minute', $1::timestamptz)
              GROUP BY 1, 2
             ON CONFLICT (region, minute) DO NOTHING",
        )
        .bind(cutoff)
        .execute(&mut *tx)
        .await
        .map_err(q("aggregating lag samples"))?;
        let n = sqlx::query("DELETE FROM lag_samples WHERE at < date_trunc('minute', $1::timestamptz)")
            .bind(cutoff)
            .execute(&mut *tx)
            .await
            .map_err(q("deleting raw lag samples"))?
            .rows_affected();
        tx.commit().await.map_err(q("committing"))?;
        Ok(n)
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}
