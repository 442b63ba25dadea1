//! The `plans` table: every decided plan, recorded before it is applied, and
//! each provider's apply report merged into it afterwards.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

use super::{Store, StoreError, q};
use crate::plan::{Epoch, PlanId, PlanKind, TrafficPlan, Weights};
use crate::region::Vantage;

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

/// One row of `plans`, as read.
#[derive(sqlx::FromRow)]
struct PlanRow {
    id: Uuid,
    decided_at: DateTime<Utc>,
    epoch: i64,
    kind: PlanKind,
    weights: Value,
    reason: String,
    reasons: Value,
    inputs: Value,
    outcome: Value,
    verified_at: Option<DateTime<Utc>>,
}

impl From<PlanRow> for StoredPlan {
    /// The JSON columns were written from the same types; one that no longer
    /// parses (an older shape) reads as empty rather than hiding every plan.
    fn from(r: PlanRow) -> Self {
        StoredPlan {
            plan: TrafficPlan {
                id: PlanId(r.id),
                epoch: Epoch(r.epoch),
                weights: serde_json::from_value::<Weights>(r.weights).unwrap_or_default(),
                kind: r.kind,
                reason: r.reason,
                reasons: serde_json::from_value(r.reasons).unwrap_or_default(),
                inputs: r.inputs,
                decided_at: r.decided_at,
            },
            outcome: r.outcome,
            verified_at: r.verified_at,
        }
    }
}

/// Records a decided plan, before it is applied.
pub(super) async fn record_plan(
    tx: &mut PgConnection,
    plan: &TrafficPlan,
    vantage: &Vantage,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO plans (id, decided_at, epoch, vantage, kind, weights, reason, reasons, inputs)
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9) ON CONFLICT (id) DO NOTHING",
    )
    .bind(plan.id.0)
    .bind(plan.decided_at)
    .bind(plan.epoch.0)
    .bind(vantage)
    .bind(plan.kind)
    .bind(serde_json::to_value(&plan.weights).unwrap_or(Value::Null))
    .bind(&plan.reason)
    .bind(serde_json::to_value(&plan.reasons).unwrap_or(Value::Null))
    .bind(&plan.inputs)
    .execute(tx)
    .await
    .map_err(q("recording a plan"))?;
    Ok(())
}

/// Merges one provider's apply report into its plan; the first verification time wins.
pub(super) async fn record_outcome(
    tx: &mut PgConnection,
    plan_id: PlanId,
    provider: &str,
    report: &Value,
    verified_at: Option<DateTime<Utc>>,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE plans SET outcome = outcome || jsonb_build_object($2::text, $3::jsonb),
                verified_at = COALESCE(verified_at, $4)
         WHERE id = $1",
    )
    .bind(plan_id.0)
    .bind(provider)
    .bind(report)
    .bind(verified_at)
    .execute(tx)
    .await
    .map_err(q("recording a plan outcome"))?;
    Ok(())
}

impl Store {
    /// The most recent plan, to resume from after a restart.
    ///
    /// # Errors
    /// [`StoreError::Query`]; [`StoreError::BadValue`] when its kind is unknown.
    pub async fn last_plan(&self) -> Result<Option<StoredPlan>, StoreError> {
        let rows = self.plans(1).await?;
        Ok(rows.into_iter().next())
    }

    /// The newest plans first.
    ///
    /// # Errors
    /// [`StoreError::Query`]; [`StoreError::BadValue`] when a plan's kind is unknown.
    pub async fn plans(&self, limit: i64) -> Result<Vec<StoredPlan>, StoreError> {
        let rows: Vec<PlanRow> = sqlx::query_as(
            "SELECT id, decided_at, epoch, kind, weights, reason, reasons, inputs, outcome, verified_at
             FROM plans ORDER BY decided_at DESC, id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(self.pool())
        .await
        .map_err(q("reading plans"))?;
        Ok(rows.into_iter().map(StoredPlan::from).collect())
    }
}
