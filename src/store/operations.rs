//! SQL of operator control: drills and their timeline, manual operations, the
//! operator hold, idempotency keys, and the audit log read.
//!
//! Writes here are called by [`Store::write`] (through the buffering writer) and
//! are idempotent upserts keyed by orchestrator-chosen ids. Reads serve the API
//! and start-up recovery.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgConnection, Row};
use uuid::Uuid;

use super::{AuditRecord, Store, StoreError, q};
use crate::drill::{DrillEvent, DrillId, DrillRecord, DrillReport, DrillState};
use crate::operation::{HoldRecord, OperationRecord};
use crate::plan::{PlanId, Weights};
use crate::region::RegionName;

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
    .bind(d.state.as_str())
    .bind(d.step.map(|s| s as i32))
    .bind(serde_json::to_value(&d.report).unwrap_or(Value::Null))
    .bind(d.updated_at)
    .bind(d.finished_at)
    .execute(tx)
    .await
    .map_err(q("recording a drill"))?;
    Ok(())
}

pub(super) async fn insert_drill_event(tx: &mut PgConnection, e: &DrillEvent) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO drill_events (id, drill_id, at, kind, step, plan_id, weights, detail)
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8) ON CONFLICT (id) DO NOTHING",
    )
    .bind(e.id)
    .bind(e.drill_id.0)
    .bind(e.at)
    .bind(&e.kind)
    .bind(e.step.map(|s| s as i32))
    .bind(e.plan_id.map(|p| p.0))
    .bind(e.weights.as_ref().and_then(|w| serde_json::to_value(w).ok()))
    .bind(&e.detail)
    .execute(tx)
    .await
    .map_err(q("recording a drill event"))?;
    Ok(())
}

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

fn drill_from_row(r: &sqlx::postgres::PgRow) -> DrillRecord {
    let state: String = r.get("state");
    DrillRecord {
        id: DrillId(r.get("id")),
        requested_at: r.get("requested_at"),
        actor: r.get("actor"),
        spec: serde_json::from_value(r.get("spec")).unwrap_or_else(|_| crate::drill::DrillSpec {
            evacuate: None,
            target: None,
            steps: vec![],
            hold_ms: 0,
            dry_run: r.get("dry_run"),
            reason: r.get("reason"),
            schedule: None,
            planned: Vec::new(),
        }),
        baseline: serde_json::from_value::<Weights>(r.get("baseline")).unwrap_or_default(),
        state: DrillState::parse(&state).unwrap_or(DrillState::Failed),
        step: r.get::<Option<i32>, _>("step").map(|s| s as u32),
        report: serde_json::from_value::<DrillReport>(r.get("report")).unwrap_or_default(),
        updated_at: r.get("updated_at"),
        finished_at: r.get("finished_at"),
    }
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

impl Store {
    /// The newest drills first.
    ///
    /// # Errors
    /// [`StoreError::Query`].
    pub async fn drills(&self, limit: i64) -> Result<Vec<DrillRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM drills ORDER BY requested_at DESC, id LIMIT $1")
            .bind(limit)
            .fetch_all(self.pool())
            .await
            .map_err(q("reading drills"))?;
        Ok(rows.iter().map(drill_from_row).collect())
    }

    /// One drill with its timeline, oldest event first.
    ///
    /// # Errors
    /// [`StoreError::Query`].
    pub async fn drill(&self, id: DrillId) -> Result<Option<(DrillRecord, Vec<DrillEvent>)>, StoreError> {
        let Some(row) = sqlx::query("SELECT * FROM drills WHERE id = $1")
            .bind(id.0)
            .fetch_optional(self.pool())
            .await
            .map_err(q("reading a drill"))?
        else {
            return Ok(None);
        };
        let events = sqlx::query("SELECT * FROM drill_events WHERE drill_id = $1 ORDER BY seq")
            .bind(id.0)
            .fetch_all(self.pool())
            .await
            .map_err(q("reading a drill's timeline"))?
            .into_iter()
            .map(|r| DrillEvent {
                id: r.get("id"),
                drill_id: DrillId(r.get("drill_id")),
                at: r.get("at"),
                kind: r.get("kind"),
                step: r.get::<Option<i32>, _>("step").map(|s| s as u32),
                plan_id: r.get::<Option<Uuid>, _>("plan_id").map(PlanId),
                weights: r.get::<Option<Value>, _>("weights").and_then(|w| serde_json::from_value(w).ok()),
                detail: r.get("detail"),
            })
            .collect();
        Ok(Some((drill_from_row(&row), events)))
    }

    /// Live drills that never finished (the orchestrator stopped mid-drill), newest first.
    ///
    /// # Errors
    /// [`StoreError::Query`].
    pub async fn unfinished_drills(&self) -> Result<Vec<DrillRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM drills WHERE finished_at IS NULL ORDER BY requested_at DESC")
            .fetch_all(self.pool())
            .await
            .map_err(q("reading unfinished drills"))?;
        Ok(rows.iter().map(drill_from_row).collect())
    }

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

    /// The audit log, newest first.
    ///
    /// # Errors
    /// [`StoreError::Query`].
    pub async fn audit(&self, before: Option<DateTime<Utc>>, limit: i64) -> Result<Vec<AuditRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM audit_log WHERE ($1::timestamptz IS NULL OR at < $1) ORDER BY at DESC, id LIMIT $2",
        )
        .bind(before)
        .bind(limit)
        .fetch_all(self.pool())
        .await
        .map_err(q("reading the audit log"))?;
        Ok(rows
            .into_iter()
            .map(|r| AuditRecord {
                id: r.get("id"),
                at: r.get("at"),
                actor: r.get("actor"),
                action: r.get("action"),
                target: r.get("target"),
                outcome: r.get("outcome"),
                request_id: r.get("request_id"),
                details: r.get("details"),
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
        let row = sqlx::query("SELECT fingerprint, status, body FROM idempotency_keys WHERE actor = $1 AND key = $2")
            .bind(actor)
            .bind(key)
            .fetch_one(self.pool())
            .await
            .map_err(q("reading an idempotency key"))?;
        let status: Option<i16> = row.get("status");
        let body: Option<Value> = row.get("body");
        Ok(IdempotencyClaim::Seen {
            fingerprint: row.get("fingerprint"),
            response: status.zip(body).map(|(s, b)| (s as u16, b)),
        })
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
