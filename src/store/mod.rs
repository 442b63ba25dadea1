//! The store: the orchestrator's own PostgreSQL. The only module with SQL.
//!
//! Migrations run at start-up. Writes go through the [`writer`], which
//! buffers them in order while the store is unreachable and writes them when
//! it returns, so a store outage never stalls the engine. Every row id is
//! chosen by the orchestrator, which makes a retried write idempotent.
//!
//! Typed at both edges: records arrive as domain values ([`Write`] holds
//! `Health`, `Layer`, `RegionName`, `PlanKind` …) and the store picks the words
//! stored (`columns`); reads map each query's rows with `query_as` into a
//! private row struct (`PlanRow`, `EventRow`, `DrillRow` …) converted into the
//! read type. A value a row cannot take is a [`StoreError::BadValue`], never a
//! panic. Queries are built at run time (no `.sqlx/` data, no database needed
//! to build) and covered by the integration tests on a real PostgreSQL.
//!
//! One file per table family: `plans`, `events` (transitions, alarms, audit,
//! the timeline), `lag`, `drills`, [`operations`], [`incidents`].

mod columns;
pub mod dead_letters;
mod drills;
mod events;
pub mod incidents;
mod lag;
pub mod operations;
mod plans;
pub mod records;
pub mod writer;

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{PgConnection, Postgres, Transaction};

pub use events::{Event, EventKind};
pub use lag::LagPoint;
pub use plans::StoredPlan;
pub use records::{AlarmRecord, AuditRecord, TransitionRecord, Write};

use crate::pg_error::describe;
use crate::plan::Epoch;
use crate::region::RegionName;
use columns::UnknownText;

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
    /// A row holds a value its domain type cannot take: a kind or state
    /// that names no variant, a negative step index …
    #[error("store row: column `{column}` holds `{value}`, which is not a valid {expected}")]
    BadValue {
        /// The column.
        column: String,
        /// The value found, as text.
        value: String,
        /// What the column should hold.
        expected: &'static str,
    },
    /// Migrations failed.
    #[error("store migrations failed: {0}")]
    Migrate(#[source] sqlx::migrate::MigrateError),
}

impl StoreError {
    /// Whether retrying the same write can never succeed: the store refused its data
    /// (SQLSTATE class 22 data exception, 23 integrity constraint, 54 program limit such as
    /// an oversize value) or the value could not be encoded. Everything else (connection,
    /// timeout, admin shutdown, a read-only or not yet migrated store …) is transient: the
    /// writer keeps the write and retries it in order.
    pub fn is_permanent(&self) -> bool {
        match self {
            StoreError::Query { source, .. } => match source {
                sqlx::Error::Database(db) => {
                    let code = db.code().unwrap_or_default();
                    matches!(code.get(..2), Some("22" | "23" | "54"))
                }
                sqlx::Error::Encode(_) | sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => true,
                _ => false,
            },
            StoreError::BadValue { .. } => true,
            StoreError::Dsn | StoreError::Migrate(_) => false,
        }
    }

    /// A [`StoreError::BadValue`] for `value` found in `column`.
    pub(crate) fn bad_value(column: &str, value: impl ToString, expected: &'static str) -> Self {
        StoreError::BadValue { column: column.to_string(), value: value.to_string(), expected }
    }
}

/// Maps a sqlx error to a [`StoreError`]: a column that failed to decode
/// because its word names no variant becomes [`StoreError::BadValue`], any
/// other failure a [`StoreError::Query`] described without secrets.
pub(crate) fn q(context: &'static str) -> impl Fn(sqlx::Error) -> StoreError {
    move |source| match source {
        sqlx::Error::ColumnDecode { index, source } => match source.downcast::<UnknownText>() {
            // sqlx names the column in Debug form (`"state"`).
            Ok(u) => StoreError::bad_value(index.trim_matches('"'), u.value, u.expected),
            Err(source) => {
                let source = sqlx::Error::ColumnDecode { index, source };
                StoreError::Query { context, detail: describe(&source), source }
            }
        },
        source => StoreError::Query { context, detail: describe(&source), source },
    }
}

/// Drains (`Some((since, reason))`) or undrains (`None`) a region.
async fn set_maintenance(
    tx: &mut PgConnection,
    region: &RegionName,
    drain: Option<&(DateTime<Utc>, String)>,
) -> Result<(), StoreError> {
    match drain {
        Some((since, reason)) => {
            sqlx::query(
                "INSERT INTO maintenance (region, since, reason) VALUES ($1,$2,$3)
                 ON CONFLICT (region) DO UPDATE SET since = EXCLUDED.since, reason = EXCLUDED.reason",
            )
            .bind(region)
            .bind(since)
            .bind(reason)
            .execute(tx)
            .await
        }
        None => sqlx::query("DELETE FROM maintenance WHERE region = $1").bind(region).execute(tx).await,
    }
    .map_err(q("recording maintenance"))?;
    Ok(())
}

/// Handle to the store; cheap to clone (the pool is shared inside).
#[derive(Clone, Debug)]
pub struct Store {
    pool: PgPool,
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
        sqlx::query_scalar(
            "INSERT INTO leadership (id, epoch, holder, acquired_at) VALUES (1, 1, $1, now())
             ON CONFLICT (id) DO UPDATE SET epoch = leadership.epoch + 1, holder = $1, acquired_at = now()
             RETURNING epoch",
        )
        .bind(holder)
        .fetch_one(&self.pool)
        .await
        .map(Epoch)
        .map_err(q("taking the leadership epoch"))
    }

    /// Performs one buffered write. Idempotent.
    ///
    /// # Errors
    /// [`StoreError::Query`]; the writer keeps the write and retries.
    pub async fn write(&self, w: &Write) -> Result<(), StoreError> {
        let mut tx: Transaction<'_, Postgres> = self.pool.begin().await.map_err(q("opening a transaction"))?;
        match w {
            Write::Incident(i) => incidents::upsert(&mut tx, i).await?,
            Write::Transition(t) => events::record_transition(&mut tx, t).await?,
            Write::Plan { plan, vantage } => plans::record_plan(&mut tx, plan, vantage).await?,
            Write::PlanOutcome { plan_id, provider, report, verified_at } => {
                plans::record_outcome(&mut tx, *plan_id, provider, report, *verified_at).await?
            }
            Write::Alarm(a) => events::record_alarm(&mut tx, a).await?,
            Write::AlarmCleared { id, at } => events::clear_alarm(&mut tx, *id, *at).await?,
            Write::Audit(a) => events::record_audit(&mut tx, a).await?,
            Write::LagSamples(samples) => lag::record_samples(&mut tx, samples).await?,
            Write::Maintenance { region, drain } => set_maintenance(&mut tx, region, drain.as_ref()).await?,
            Write::Drill(d) => drills::upsert_drill(&mut tx, d).await?,
            Write::DrillEvent(e) => drills::insert_drill_event(&mut tx, e).await?,
            Write::Operation(o) => operations::upsert_operation(&mut tx, o).await?,
            Write::Hold(h) => operations::set_hold(&mut tx, h.as_deref()).await?,
        }
        tx.commit().await.map_err(q("committing"))
    }

    /// Regions in maintenance, to restore after a restart.
    ///
    /// # Errors
    /// [`StoreError::Query`].
    pub async fn maintenance(&self) -> Result<Vec<(RegionName, String)>, StoreError> {
        sqlx::query_as("SELECT region, reason FROM maintenance ORDER BY region")
            .fetch_all(&self.pool)
            .await
            .map_err(q("reading maintenance"))
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

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_word_naming_no_variant_becomes_a_bad_value_naming_its_column() {
        let decode = sqlx::Error::ColumnDecode {
            index: "\"state\"".into(),
            source: Box::new(UnknownText { expected: "drill state", value: "sleeping".into() }),
        };
        match q("reading drills")(decode) {
            StoreError::BadValue { column, value, expected } => {
                assert_eq!((column.as_str(), value.as_str(), expected), ("state", "sleeping", "drill state"));
            }
            other => panic!("expected BadValue, got {other:?}"),
        }
    }

    #[test]
    fn any_other_decode_failure_stays_a_query_error_with_its_context() {
        let decode = sqlx::Error::ColumnDecode { index: "\"step\"".into(), source: "out of range".into() };
        let e = q("reading drills")(decode);
        assert!(matches!(e, StoreError::Query { context: "reading drills", .. }), "{e:?}");
    }

    #[test]
    fn a_bad_value_message_names_column_value_and_expectation() {
        let e = StoreError::bad_value("step", -1, "step index");
        assert_eq!(e.to_string(), "store row: column `step` holds `-1`, which is not a valid step index");
    }
}
