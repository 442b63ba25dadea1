//! The `drills` and `drill_events` tables: each drill's row, upserted as it
//! moves through its phases, and its timeline, appended in order.
//!
//! Reads map rows with `query_as` into private row structs; the state column
//! decodes into [`DrillState`] (an unknown word is a
//! [`StoreError::BadValue`]), the JSON columns into the drill's own types.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

use super::{Store, StoreError, q};
use crate::drill::{DrillEvent, DrillEventKind, DrillId, DrillRecord, DrillReport, DrillSpec, DrillState};
use crate::plan::{PlanId, Weights};

/// One row of `drills`.
#[derive(sqlx::FromRow)]
struct DrillRow {
    id: Uuid,
    requested_at: DateTime<Utc>,
    actor: String,
    reason: String,
    dry_run: bool,
    spec: Value,
    baseline: Value,
    state: DrillState,
    step: Option<i32>,
    report: Value,
    updated_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
}

/// One row of `drill_events`.
#[derive(sqlx::FromRow)]
struct DrillEventRow {
    id: Uuid,
    drill_id: Uuid,
    at: DateTime<Utc>,
    kind: DrillEventKind,
    step: Option<i32>,
    plan_id: Option<Uuid>,
    weights: Option<Value>,
    detail: String,
}

/// A step index is stored as `integer`; a negative one is not a step.
fn step_index(step: Option<i32>) -> Result<Option<u32>, StoreError> {
    step.map(|s| u32::try_from(s).map_err(|_| StoreError::bad_value("step", s, "step index"))).transpose()
}

impl TryFrom<DrillRow> for DrillRecord {
    type Error = StoreError;

    /// The JSON columns were written from the drill's own types; one that no
    /// longer parses (an older shape) falls back to what the plain columns
    /// still say, rather than hiding the drill.
    fn try_from(r: DrillRow) -> Result<Self, StoreError> {
        let spec = serde_json::from_value(r.spec).unwrap_or_else(|_| DrillSpec {
            evacuate: None,
            target: None,
            steps: vec![],
            hold_ms: 0,
            dry_run: r.dry_run,
            reason: r.reason,
            schedule: None,
            planned: Vec::new(),
            synthetic: false,
        });
        Ok(DrillRecord {
            id: DrillId(r.id),
            requested_at: r.requested_at,
            actor: r.actor,
            spec,
            baseline: serde_json::from_value::<Weights>(r.baseline).unwrap_or_default(),
            state: r.state,
            step: step_index(r.step)?,
            report: serde_json::from_value::<DrillReport>(r.report).unwrap_or_default(),
            updated_at: r.updated_at,
            finished_at: r.finished_at,
        })
    }
}

impl TryFrom<DrillEventRow> for DrillEvent {
    type Error = StoreError;

    fn try_from(r: DrillEventRow) -> Result<Self, StoreError> {
        Ok(DrillEvent {
            id: r.id,
            drill_id: DrillId(r.drill_id),
            at: r.at,
            kind: r.kind,
            step: step_index(r.step)?,
            plan_id: r.plan_id.map(PlanId),
            weights: r.weights.and_then(|w| serde_json::from_value(w).ok()),
            detail: r.detail,
        })
    }
}

/// Converts every row, failing on the first bad one.
fn convert<R, T: TryFrom<R, Error = StoreError>>(rows: Vec<R>) -> Result<Vec<T>, StoreError> {
    rows.into_iter().map(T::try_from).collect()
}

/// Inserts a drill or updates its moving parts (state, step, report, spec, times).
pub(super) async fn upsert_drill(tx: &mut PgConnection, d: &DrillRecord) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO drills (id, requested_at, actor, reason, dry_run, spec, baseline, state, step, report, updated_at, finished_at)
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12)
         ON CONFLICT (id) DO UPDATE SET state = EXCLUDED.state, step = EXCLUDED.step, report = EXCLUDED.report,
             spec = EXCLUDED.spec, updated_at = EXCLUDED.updated_at, finished_at = EXCLUDED.finished_at",
    )
    .bind(d.id.0)
    .bind(d.requested_at)
    .bind(&d.actor)
    .bind(&d.spec.reason)
    .bind(d.spec.dry_run)
    .bind(serde_json::to_value(&d.spec).unwrap_or(Value::Null))
    .bind(serde_json::to_value(&d.baseline).unwrap_or(Value::Null))
    .bind(d.state)
    .bind(d.step.map(|s| s as i32))
    .bind(serde_json::to_value(&d.report).unwrap_or(Value::Null))
    .bind(d.updated_at)
    .bind(d.finished_at)
    .execute(tx)
    .await
    .map_err(q("recording a drill"))?;
    Ok(())
}

/// Appends one entry to a drill's timeline (`seq` keeps the order written).
pub(super) async fn insert_drill_event(tx: &mut PgConnection, e: &DrillEvent) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO drill_events (id, drill_id, at, kind, step, plan_id, weights, detail)
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8) ON CONFLICT (id) DO NOTHING",
    )
    .bind(e.id)
    .bind(e.drill_id.0)
    .bind(e.at)
    .bind(e.kind)
    .bind(e.step.map(|s| s as i32))
    .bind(e.plan_id.map(|p| p.0))
    .bind(e.weights.as_ref().and_then(|w| serde_json::to_value(w).ok()))
    .bind(&e.detail)
    .execute(tx)
    .await
    .map_err(q("recording a drill event"))?;
    Ok(())
}

impl Store {
    /// The newest drills first.
    ///
    /// # Errors
    /// [`StoreError::Query`]; [`StoreError::BadValue`] for a row that does not map.
    pub async fn drills(&self, limit: i64) -> Result<Vec<DrillRecord>, StoreError> {
        let rows: Vec<DrillRow> = sqlx::query_as("SELECT * FROM drills ORDER BY requested_at DESC, id LIMIT $1")
            .bind(limit)
            .fetch_all(self.pool())
            .await
            .map_err(q("reading drills"))?;
        convert(rows)
    }

    /// One drill with its timeline, oldest event first.
    ///
    /// # Errors
    /// [`StoreError::Query`]; [`StoreError::BadValue`] for a row that does not map.
    pub async fn drill(&self, id: DrillId) -> Result<Option<(DrillRecord, Vec<DrillEvent>)>, StoreError> {
        let row: Option<DrillRow> = sqlx::query_as("SELECT * FROM drills WHERE id = $1")
            .bind(id.0)
            .fetch_optional(self.pool())
            .await
            .map_err(q("reading a drill"))?;
        let Some(row) = row else { return Ok(None) };
        let events: Vec<DrillEventRow> = sqlx::query_as("SELECT * FROM drill_events WHERE drill_id = $1 ORDER BY seq")
            .bind(id.0)
            .fetch_all(self.pool())
            .await
            .map_err(q("reading a drill's timeline"))?;
        Ok(Some((DrillRecord::try_from(row)?, convert(events)?)))
    }

    /// Live drills that never finished (the orchestrator stopped mid-drill), newest first.
    ///
    /// # Errors
    /// [`StoreError::Query`]; [`StoreError::BadValue`] for a row that does not map.
    pub async fn unfinished_drills(&self) -> Result<Vec<DrillRecord>, StoreError> {
        let rows: Vec<DrillRow> =
            sqlx::query_as("SELECT * FROM drills WHERE finished_at IS NULL ORDER BY requested_at DESC")
                .fetch_all(self.pool())
                .await
                .map_err(q("reading unfinished drills"))?;
        convert(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_negative_step_in_a_row_is_a_bad_value_not_a_huge_index() {
        assert_eq!(step_index(Some(2)).ok(), Some(Some(2)));
        assert_eq!(step_index(None).ok(), Some(None));
        assert!(matches!(step_index(Some(-1)), Err(StoreError::BadValue { ref column, .. }) if column == "step"));
    }
}
