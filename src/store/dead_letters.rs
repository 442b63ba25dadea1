//! Dead letters: writes the store refused for good, kept with the error instead of
//! blocking every write queued behind them.
//!
//! A write is dead-lettered when its failure cannot go away by retrying the same statement
//! (see [`StoreError::is_permanent`]): a data error (SQLSTATE class 22, e.g. a NUL in a text
//! column), a constraint violation (class 23), a program limit (class 54, an oversize
//! value) or a value that cannot be encoded. The payload is the write as JSON text, so a
//! human can see what was refused and write it by hand once fixed.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use uuid::Uuid;

use super::{Store, StoreError, Write, q};

/// One refused write.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// Row id.
    pub id: Uuid,
    /// When it was refused.
    pub at: DateTime<Utc>,
    /// The write's kind (`audit`, `drill` …).
    pub kind: String,
    /// Why the store refused it (secret-free: the SQLSTATE and what was being done).
    pub error: String,
    /// The write as JSON text.
    pub payload: String,
}

impl DeadLetter {
    /// The dead letter of `write`, refused with `error`.
    pub fn new(write: &Write, error: &StoreError, at: DateTime<Utc>) -> Self {
        let payload = serde_json::to_string(write).unwrap_or_else(|e| format!("(not encodable: {e})"));
        Self { id: Uuid::new_v4(), at, kind: write.kind().to_string(), error: error.to_string(), payload }
    }
}

/// Inserts one dead letter.
pub(super) async fn insert(tx: &mut PgConnection, d: &DeadLetter) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO dead_letters (id, at, kind, error, payload) VALUES ($1,$2,$3,$4,$5) ON CONFLICT (id) DO NOTHING",
    )
    .bind(d.id)
    .bind(d.at)
    .bind(&d.kind)
    .bind(&d.error)
    .bind(&d.payload)
    .execute(tx)
    .await
    .map_err(q("recording a dead letter"))?;
    Ok(())
}

impl Store {
    /// Records a dead letter.
    ///
    /// # Errors
    /// [`StoreError::Query`]; the writer then keeps it in the spill directory's file.
    pub async fn record_dead_letter(&self, d: &DeadLetter) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await.map_err(q("recording a dead letter"))?;
        insert(&mut conn, d).await
    }

    /// The newest dead letters first.
    ///
    /// # Errors
    /// [`StoreError::Query`].
    pub async fn dead_letters(&self, limit: i64) -> Result<Vec<DeadLetter>, StoreError> {
        sqlx::query_as::<_, (Uuid, DateTime<Utc>, String, String, String)>(
            "SELECT id, at, kind, error, payload FROM dead_letters ORDER BY at DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map(|rows| {
            rows.into_iter().map(|(id, at, kind, error, payload)| DeadLetter { id, at, kind, error, payload }).collect()
        })
        .map_err(q("reading dead letters"))
    }
}
