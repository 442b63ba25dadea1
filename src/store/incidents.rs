//! The `incidents` table: one row per incident, its whole timeline as JSON,
//! upserted at each milestone (so a retried or re-ordered write converges).

use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

use super::{Store, StoreError, q};
use crate::incidents::Incident;

/// Inserts or replaces an incident.
pub(super) async fn upsert(conn: &mut PgConnection, i: &Incident) -> Result<(), StoreError> {
    let body = serde_json::to_value(i).unwrap_or(Value::Null);
    sqlx::query(
        "INSERT INTO incidents (id, region, opened_at, plan_id, kind, verified_at, body)
         VALUES ($1,$2,$3,$4,$5,$6,$7)
         ON CONFLICT (id) DO UPDATE SET plan_id = EXCLUDED.plan_id, kind = EXCLUDED.kind,
             verified_at = COALESCE(incidents.verified_at, EXCLUDED.verified_at),
             body = CASE WHEN incidents.verified_at IS NOT NULL AND EXCLUDED.verified_at IS NULL
                         THEN incidents.body ELSE EXCLUDED.body END",
    )
    .bind(i.id)
    .bind(i.region.as_str())
    .bind(i.opened_at)
    .bind(i.plan_id.map(|p| p.0))
    .bind(&i.kind)
    .bind(i.verified_at)
    .bind(body)
    .execute(conn)
    .await
    .map_err(q("recording an incident"))?;
    Ok(())
}

/// The incident a stored body describes. The body is the whole timeline as
/// JSON, whose shape grows with the code: one an older version wrote that no
/// longer parses is left out of the listing rather than failing it.
fn parse(body: Value) -> Option<Incident> {
    serde_json::from_value(body).ok()
}

impl Store {
    /// The newest incidents first.
    ///
    /// # Errors
    /// [`StoreError::Query`].
    pub async fn incidents(&self, limit: i64) -> Result<Vec<Incident>, StoreError> {
        let bodies: Vec<Value> = sqlx::query_scalar("SELECT body FROM incidents ORDER BY opened_at DESC, id LIMIT $1")
            .bind(limit)
            .fetch_all(self.pool())
            .await
            .map_err(q("listing incidents"))?;
        Ok(bodies.into_iter().filter_map(parse).collect())
    }

    /// One incident.
    ///
    /// # Errors
    /// [`StoreError::Query`].
    pub async fn incident(&self, id: Uuid) -> Result<Option<Incident>, StoreError> {
        let body: Option<Value> = sqlx::query_scalar("SELECT body FROM incidents WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await
            .map_err(q("reading an incident"))?;
        Ok(body.and_then(parse))
    }
}
