//! Replication lag history: raw samples (batched inserts), their roll-up into
//! per-minute aggregates, and the bucketed series a chart reads.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgConnection;

use super::{Store, StoreError, q};
use crate::lag::LagSample;

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

/// One bucket of the series query.
#[derive(sqlx::FromRow)]
struct LagRow {
    bucket: DateTime<Utc>,
    max_bytes: Option<i64>,
    avg_bytes: Option<f64>,
    max_seconds: Option<f64>,
    avg_seconds: Option<f64>,
    samples: Option<i64>,
}

impl From<LagRow> for LagPoint {
    fn from(r: LagRow) -> Self {
        LagPoint {
            at: r.bucket,
            max_bytes: r.max_bytes,
            avg_bytes: r.avg_bytes,
            max_seconds: r.max_seconds,
            avg_seconds: r.avg_seconds,
            samples: r.samples,
        }
    }
}

/// Inserts a batch of samples in one statement (one array per column).
pub(super) async fn record_samples(tx: &mut PgConnection, samples: &[LagSample]) -> Result<(), StoreError> {
    if samples.is_empty() {
        return Ok(());
    }
    // `bytes` is a bigint: a figure past i64::MAX (never seen in practice) is stored saturated.
    let bytes = |s: &LagSample| s.bytes.map(|b| b.min(i64::MAX as u64) as i64);
    sqlx::query(
        "INSERT INTO lag_samples (region, at, bytes, seconds, state, bytes_source, seconds_source)
         SELECT * FROM UNNEST($1::text[], $2::timestamptz[], $3::bigint[], $4::float8[], $5::text[], $6::text[], $7::text[])
         ON CONFLICT (region, at) DO NOTHING",
    )
    .bind(samples.iter().map(|s| s.region.clone()).collect::<Vec<_>>())
    .bind(samples.iter().map(|s| s.at).collect::<Vec<_>>())
    .bind(samples.iter().map(bytes).collect::<Vec<_>>())
    .bind(samples.iter().map(|s| s.seconds).collect::<Vec<_>>())
    .bind(samples.iter().map(|s| s.state).collect::<Vec<_>>())
    .bind(samples.iter().map(|s| s.bytes_source).collect::<Vec<_>>())
    .bind(samples.iter().map(|s| s.seconds_source).collect::<Vec<_>>())
    .execute(tx)
    .await
    .map_err(q("recording lag samples"))?;
    Ok(())
}

impl Store {
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
        let rows: Vec<LagRow> = sqlx::query_as(
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
        .fetch_all(self.pool())
        .await
        .map_err(q("reading the lag series"))?;
        Ok(rows.into_iter().map(LagPoint::from).collect())
    }

    /// Rolls raw lag samples older than `raw_retention` up into per-minute aggregates
    /// (min / max / avg / p95) and deletes them. Returns the raw rows removed.
    ///
    /// # Errors
    /// [`StoreError::Query`].
    pub async fn roll_up_lag(&self, raw_retention: Duration) -> Result<u64, StoreError> {
        let cutoff = Utc::now() - chrono::Duration::from_std(raw_retention).unwrap_or(chrono::Duration::days(1));
        // Whole minutes only, so a minute is never split between raw and aggregate.
        let mut tx = self.pool().begin().await.map_err(q("opening a transaction"))?;
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
}
