//! SQL of operator control: manual operations, the operator hold, idempotency
//! keys, and the bookkeeping start-up reads (last scheduled run, previous start).
//! Drills live in `store/drills.rs`, the audit log in `store/events.rs`.
//!
//! Writes here are called by [`Store::write`] (through the buffering writer) and
//! are idempotent upserts keyed by orchestrator-chosen ids. Reads serve the API
//! and start-up recovery.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgConnection, Row};
use uuid::Uuid;

use super::{Store, StoreError, q};
use crate::operation::{HoldRecord, OperationRecord};
use crate::plan::PlanId;
use crate::region::RegionName;

pub(super) async fn upsert_operation(tx: &mut PgConnection, o: &OperationRecord) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO operations (id, requested_at, actor, kind, target, reason, state, plan_id, details, updated_at)
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)
         ON CONFLICT (id) DO UPDATE SET state = EXCLUDED.state, plan_id = EXCLUDED.plan_id,
             details = EXCLUDED.details, updated_at = EXCLUDED.updated_at",
    )
    .bind(o.id)
    .bind(o.requested_at)
    .bind(&o.actor)
    .bind(o.kind.as_str())
    .bind(&o.target)
    .bind(&o.reason)
    .bind(o.state.as_str())
    .bind(o.plan_id.map(|p| p.0))
    .bind(&o.details)
    .bind(o.updated_at)
    .execute(tx)
    .await
    .map_err(q("recording an operation"))?;
    Ok(())
}

pub(super) async fn set_hold(tx: &mut PgConnection, h: Option<&HoldRecord>) -> Result<(), StoreError> {
    match h {
        Some(h) => sqlx::query(
            "INSERT INTO operator_hold (id, operation_id, since, weights, reason, lag_override) VALUES (1,$1,$2,$3,$4,$5)
             ON CONFLICT (id) DO UPDATE SET operation_id = EXCLUDED.operation_id, since = EXCLUDED.since,
                 weights = EXCLUDED.weights, reason = EXCLUDED.reason, lag_override = EXCLUDED.lag_override",
        )
        .bind(h.operation_id)
        .bind(h.since)
        .bind(serde_json::to_value(&h.weights).unwrap_or(Value::Null))
        .bind(&h.reason)
        .bind(h.lag_override.as_ref().map(|(r, why)| serde_json::json!({ "region": r, "reason": why })))
        .execute(tx)
        .await,
        None => sqlx::query("DELETE FROM operator_hold").execute(tx).await,
    }
    .map_err(q("recording the operator hold"))?;
    Ok(())
}

/// Outcome of claiming an idempotency key.
#[derive(Debug, Clone, PartialEq)]
pub enum IdempotencyClaim {
    /// The key is new: run the request, then [`Store::idempotency_complete`].
    Claimed,
    /// The key was used before.
    Seen {
        /// Fingerprint of the first request.
        fingerprint: String,
        /// Its response, when it finished: (status, body).
        response: Option<(u16, Value)>,
    },
}

/// A used key, as read back when it is claimed again.
#[derive(sqlx::FromRow)]
struct IdempotencyRow {
    fingerprint: String,
    status: Option<i16>,
    body: Option<Value>,
}

impl TryFrom<IdempotencyRow> for IdempotencyClaim {
    type Error = StoreError;

    fn try_from(r: IdempotencyRow) -> Result<Self, StoreError> {
        let status = r
            .status
            .map(|s| u16::try_from(s).map_err(|_| StoreError::bad_value("status", s, "HTTP status")))
            .transpose()?;
        Ok(IdempotencyClaim::Seen { fingerprint: r.fingerprint, response: status.zip(r.body) })
    }
}

impl Store {
    /// When the scheduled drill `name` last ran (or was skipped), if ever.
    ///
    /// # Errors
    /// [`StoreError::Query`].
    pub async fn last_scheduled_run(&self, name: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        let actor = format!("schedule:{name}");
        sqlx::query_scalar("SELECT max(at) FROM audit_log WHERE actor = $1 AND action LIKE 'schedule.%'")
            .bind(actor)
            .fetch_one(self.pool())
            .await
            .map_err(q("reading the last scheduled run"))
    }

    /// When the previous orchestrator took leadership (before this one bumps the epoch).
    ///
    /// # Errors
    /// [`StoreError::Query`].
    pub async fn previous_start(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        sqlx::query_scalar("SELECT acquired_at FROM leadership WHERE id = 1")
            .fetch_optional(self.pool())
            .await
            .map_err(q("reading the previous start"))
    }

    /// The operator hold, if one is set.
    ///
    /// # Errors
    /// [`StoreError::Query`].
    pub async fn hold(&self) -> Result<Option<HoldRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM operator_hold WHERE id = 1")
            .fetch_optional(self.pool())
            .await
            .map_err(q("reading the operator hold"))?;
        Ok(row.map(|r| HoldRecord {
            operation_id: r.get("operation_id"),
            since: r.get("since"),
            weights: serde_json::from_value(r.get("weights")).unwrap_or_default(),
            reason: r.get("reason"),
            lag_override: r.get::<Option<Value>, _>("lag_override").and_then(|v| {
                Some((RegionName::new(v.get("region")?.as_str()?), v.get("reason")?.as_str()?.to_string()))
            }),
        }))
    }

    /// Settles operations a previous run left open: one still waiting (a switchover
    /// waiting for lag) is marked `interrupted`; one whose plan was sent but not
    /// verified is `resumed` when its plan is the last recorded one (start-up
    /// re-applies it) and `superseded` otherwise. Returns one sentence per operation.
    ///
    /// # Errors
    /// [`StoreError::Query`].
    pub async fn settle_operations(&self, last_plan: Option<PlanId>) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "UPDATE operations SET updated_at = now(),
                 state = CASE WHEN state = 'waiting' THEN 'interrupted'
                              WHEN plan_id = $1 THEN 'resumed' ELSE 'superseded' END
             WHERE state IN ('waiting', 'applied')
             RETURNING id, kind, target, state",
        )
        .bind(last_plan.map(|p| p.0))
        .fetch_all(self.pool())
        .await
        .map_err(q("settling open operations"))?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let state: String = r.get("state");
                let what = match state.as_str() {
                    "interrupted" => {
                        "was interrupted by a restart before it moved traffic; run it again if still wanted"
                    }
                    "resumed" => "was applied but not verified before a restart; its plan is re-applied now",
                    _ => "was applied but not verified before a restart; a newer plan superseded it",
                };
                format!(
                    "{} {} ({}) {what}",
                    r.get::<String, _>("kind"),
                    r.get::<Option<String>, _>("target").unwrap_or_default(),
                    r.get::<Uuid, _>("id")
                )
            })
            .collect())
    }

    /// Claims `(actor, key)` for a request with `fingerprint`, or returns what the first use left.
    ///
    /// # Errors
    /// [`StoreError::Query`].
    pub async fn idempotency_claim(
        &self,
        actor: &str,
        key: &str,
        fingerprint: &str,
    ) -> Result<IdempotencyClaim, StoreError> {
        let inserted = sqlx::query(
            "INSERT INTO idempotency_keys (actor, key, fingerprint, created_at) VALUES ($1,$2,$3, now())
             ON CONFLICT (actor, key) DO NOTHING",
        )
        .bind(actor)
        .bind(key)
        .bind(fingerprint)
        .execute(self.pool())
        .await
        .map_err(q("claiming an idempotency key"))?
        .rows_affected();
        if inserted == 1 {
            return Ok(IdempotencyClaim::Claimed);
        }
        let row: IdempotencyRow =
            sqlx::query_as("SELECT fingerprint, status, body FROM idempotency_keys WHERE actor = $1 AND key = $2")
                .bind(actor)
                .bind(key)
                .fetch_one(self.pool())
                .await
                .map_err(q("reading an idempotency key"))?;
        IdempotencyClaim::try_from(row)
    }

    /// Stores the response of a claimed key.
    ///
    /// # Errors
    /// [`StoreError::Query`].
    pub async fn idempotency_complete(
        &self,
        actor: &str,
        key: &str,
        status: u16,
        body: &Value,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE idempotency_keys SET status = $3, body = $4 WHERE actor = $1 AND key = $2")
            .bind(actor)
            .bind(key)
            .bind(status as i16)
            .bind(body)
            .execute(self.pool())
            .await
            .map_err(q("completing an idempotency key"))?;
        Ok(())
    }

    /// Forgets a claimed key (the request failed in a way a retry may fix).
    ///
    /// # Errors
    /// [`StoreError::Query`].
    pub async fn idempotency_release(&self, actor: &str, key: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM idempotency_keys WHERE actor = $1 AND key = $2 AND status IS NULL")
            .bind(actor)
            .bind(key)
            .execute(self.pool())
            .await
            .map_err(q("releasing an idempotency key"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_finished_key_reads_back_with_its_status_and_body() {
        let row =
            IdempotencyRow { fingerprint: "f".into(), status: Some(201), body: Some(serde_json::json!({"id": 1})) };
        let claim = IdempotencyClaim::try_from(row).expect("valid row");
        assert_eq!(
            claim,
            IdempotencyClaim::Seen { fingerprint: "f".into(), response: Some((201, serde_json::json!({"id": 1}))) }
        );
    }

    #[test]
    fn a_key_still_running_reads_back_without_a_response() {
        let row = IdempotencyRow { fingerprint: "f".into(), status: None, body: None };
        let claim = IdempotencyClaim::try_from(row).expect("valid row");
        assert_eq!(claim, IdempotencyClaim::Seen { fingerprint: "f".into(), response: None });
    }

    #[test]
    fn a_negative_status_is_a_bad_value() {
        let row = IdempotencyRow { fingerprint: "f".into(), status: Some(-1), body: Some(Value::Null) };
        assert!(matches!(IdempotencyClaim::try_from(row), Err(StoreError::BadValue { .. })));
    }
}
